/// A row of user_tool_configs as an export reads it, in place (valid only while the store hands
/// it over): writer and digest both visit it, so each column is fetched from the database once.
/// Each engine's store builds it from its own row buffer.
public struct StoredRow: ExportRecord {
    let id: ExportValue, userID: ExportValue, toolID: ExportValue
    let enabled: Bool
    /// encrypted_api_key, salt and nonce; nil when any is NULL or keys are omitted.
    let key: (ExportValue, ExportValue, ExportValue)?
    let createdAt: ExportValue, updatedAt: ExportValue

    /// Eight bytes at a time: this check runs over every exported byte.
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            while index + 8 <= bytes.count {
                if raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
                index += 8
            }
        }
        while index < bytes.count {
            if bytes[index] >= 0x80 { return false }
            index += 1
        }
        return true
    }

    func forEachValue(keys: KeyMode, _ body: (ExportValue) -> Void) {
        body(id)
        body(userID)
        body(toolID)
        body(.bool(enabled))
        if keys == .encrypted {
            if let key {
                body(key.0); body(key.1); body(key.2)
            } else {
                body(.null); body(.null); body(.null)
            }
        }
        body(createdAt)
        body(updatedAt)
    }

    func forEachDigestField(_ body: (ExportValue) -> Void) {
        body(id)
        body(userID)
        body(toolID)
        body(.text(enabled ? "1" : "0"))
        body(createdAt)
        body(updatedAt)
        if let key {
            body(.text("encrypted")); body(key.0); body(key.1); body(key.2)
        } else {
            body(.text("none"))
        }
    }

    /// The row as a record, its text copied out (for the exports that decrypt keys).
    var record: SnapshotRecord {
        func string(_ value: ExportValue) -> String {
            switch value {
            case .text(let text): text
            case .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
            case .integer(let number): String(number)
            case .bool(let flag): flag ? "1" : "0"
            case .null: ""
            }
        }
        func integer(_ value: ExportValue) -> Int64? {
            if case .integer(let number) = value { number } else { nil }
        }
        return SnapshotRecord(
            id: integer(id), userID: string(userID), toolID: string(toolID), enabled: enabled,
            createdAt: integer(createdAt), updatedAt: integer(updatedAt),
            key: key.map { .encrypted(StoredSecret(encryptedAPIKey: string($0.0), salt: string($0.1), nonce: string($0.2))) } ?? .none)
    }
}
