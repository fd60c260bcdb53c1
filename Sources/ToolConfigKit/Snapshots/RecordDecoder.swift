/// Turns a raw record into a validated SnapshotRecord, by the rules of the contract: required
/// non-empty ids, booleans, integer timestamps, and an api_key OR a complete encrypted triple
/// (base64, salt 32 bytes, nonce 12, ciphertext at least the tag), never both.
/// CSV gives text, where an empty cell means "absent"; JSON gives typed values.
struct RecordDecoder {
    let format: SnapshotFormat
    /// The key mode a file's header declared, if any: its records must match it.
    let declaredKeys: KeyMode?

    /// Timestamps beyond year 9999 are a mistake (milliseconds, most likely).
    static let maximumTimestamp: Int64 = 253_402_300_799

    func decode(_ raw: RawRecord) throws(SnapshotError) -> SnapshotRecord {
        var values = FieldValues()
        if let slots = raw.slots {
            for (slot, value) in zip(slots, raw.values) { values[slot] = value }
        } else {
            for (name, value) in zip(raw.names, raw.values) {
                guard let slot = FieldSlot(name: name) else {
                    throw SnapshotError(raw.location.with(field: String(name.prefix(64))), "unknown field")
                }
                values[slot] = value
            }
        }
        let at = raw.location
        let userID = try requiredText(.userID, values, at)
        let toolID = try requiredText(.toolID, values, at)
        var record = SnapshotRecord(userID: userID, toolID: toolID)
        record.id = try integer(.id, values, at, minimum: 1)
        record.enabled = try boolean(.enabled, values, at)
        record.createdAt = try integer(.createdAt, values, at, minimum: 0, maximum: Self.maximumTimestamp)
        record.updatedAt = try integer(.updatedAt, values, at, minimum: 0, maximum: Self.maximumTimestamp)

        // An empty api_key ("" in JSON, a quoted "" in CSV) is a key; null or an empty CSV cell is none.
        let apiKey = try optionalText(.apiKey, values, at, emptyIsAbsent: false)
        let encrypted = try optionalText(.encryptedAPIKey, values, at)
        let salt = try optionalText(.salt, values, at)
        let nonce = try optionalText(.nonce, values, at)
        let sealed = try optionalText(.sealedAPIKey, values, at)
        let hasTriple = encrypted != nil || salt != nil || nonce != nil
        if (apiKey != nil ? 1 : 0) + (hasTriple ? 1 : 0) + (sealed != nil ? 1 : 0) > 1 {
            throw SnapshotError(
                at.with(field: SnapshotField.apiKey),
                "a record carries either api_key, or encrypted_api_key/salt/nonce, or sealed_api_key, never more than one")
        }
        if let apiKey {
            record.key = .plaintext(apiKey)
        } else if hasTriple {
            guard let encrypted, let salt, let nonce else {
                let missing = encrypted == nil ? SnapshotField.encryptedAPIKey : salt == nil ? SnapshotField.salt : SnapshotField.nonce
                throw SnapshotError(at.with(field: missing), "missing: an encrypted key needs encrypted_api_key, salt and nonce together")
            }
            let secret = StoredSecret(encryptedAPIKey: encrypted, salt: salt, nonce: nonce)
            do {
                try secret.validate()
            } catch {
                let field =
                    [SnapshotField.salt, SnapshotField.nonce].first { error.description.hasPrefix($0 + ":") }
                    ?? SnapshotField.encryptedAPIKey
                throw SnapshotError(at.with(field: field), String(error.description.drop(while: { $0 != ":" }).dropFirst(2)))
            }
            record.key = .encrypted(secret)
        } else if let sealed {
            record.key = .sealed(sealed)
        }
        if let declaredKeys {
            let actual: KeyMode? =
                switch record.key {
                case .none: nil
                case .plaintext: .plaintext
                case .encrypted: .encrypted
                case .sealed: .sealed
                }
            if let actual, actual != declaredKeys {
                throw SnapshotError(
                    at.with(
                        field: actual == .plaintext
                            ? SnapshotField.apiKey : actual == .sealed ? SnapshotField.sealedAPIKey : SnapshotField.encryptedAPIKey),
                    "a \(actual.rawValue) key in a snapshot whose header declares keys \(declaredKeys.rawValue)")
            }
        } else if case .sealed = record.key {
            throw SnapshotError(
                at.with(field: SnapshotField.sealedAPIKey), "a sealed key outside a sealed snapshot (no sealing parameters to open it)")
        }
        return record
    }

    private func requiredText(_ slot: FieldSlot, _ values: FieldValues, _ at: SnapshotLocation) throws(SnapshotError) -> String {
        guard let text = try optionalText(slot, values, at) else {
            throw SnapshotError(at.with(field: slot.name), values[slot] == nil ? "missing (required)" : "empty (required)")
        }
        return text
    }

    /// Text, or nil when absent, null or (unless `emptyIsAbsent` is false) empty.
    private func optionalText(
        _ slot: FieldSlot, _ values: FieldValues, _ at: SnapshotLocation,
        emptyIsAbsent: Bool = true
    ) throws(SnapshotError) -> String? {
        switch values[slot] {
        case nil, .null?: return nil
        case .text(let text)?: return text.isEmpty && emptyIsAbsent ? nil : text
        case let other?: throw SnapshotError(at.with(field: slot.name), "expected a string, found \(describe(other))")
        }
    }

    private func boolean(_ slot: FieldSlot, _ values: FieldValues, _ at: SnapshotLocation) throws(SnapshotError) -> Bool {
        switch values[slot] {
        case nil, .null?: return false
        case .bool(let b)?: return b
        case .integer(0)?: return false
        case .integer(1)?: return true
        // "0" and "1" (what exports write) first: they need no lowercased copy.
        case .text("0")? where format == .csv: return false
        case .text("1")? where format == .csv: return true
        case .text(let text)? where format == .csv:
            switch text.lowercased() {
            case "", "0", "false": return false
            case "1", "true": return true
            default: throw SnapshotError(at.with(field: slot.name), "expected 1, 0, true or false, found \(quoted(text))")
            }
        case let other?:
            throw SnapshotError(
                at.with(field: slot.name),
                format == .csv ? "expected 1, 0, true or false" : "expected true or false (or 0/1), found \(describe(other))")
        }
    }

    private func integer(
        _ slot: FieldSlot, _ values: FieldValues, _ at: SnapshotLocation,
        minimum: Int64, maximum: Int64 = .max
    ) throws(SnapshotError) -> Int64? {
        let value: Int64
        switch values[slot] {
        case nil, .null?: return nil
        case .integer(let i)?: value = i
        case .text(let text)? where format == .csv:
            if text.isEmpty { return nil }
            guard let parsed = Self.decimal(text) else {
                throw SnapshotError(at.with(field: slot.name), "expected an integer, found \(quoted(text))")
            }
            value = parsed
        case let other?:
            throw SnapshotError(at.with(field: slot.name), "expected an integer, found \(describe(other))")
        }
        guard value >= minimum, value <= maximum else {
            throw SnapshotError(at.with(field: slot.name), "\(value) is out of range (\(minimum)...\(maximum))")
        }
        return value
    }

    private func describe(_ value: FieldValue) -> String {
        switch value {
        case .text: "a string"
        case .integer: "an integer"
        case .bool: "a boolean"
        case .null: "null"
        case .unsupported(let kind): kind
        }
    }

    private func quoted(_ text: String) -> String {
        "\"" + String(text.prefix(40)) + (text.count > 40 ? "...\"" : "\"")
    }
}

/// Strict decimal text: an optional "-" and digits, nothing else (Int64(_:) also takes "+").
/// Parsed by hand because it runs three times per row of million-row imports.
extension RecordDecoder {
    static func decimal(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { bytes -> Int64? in
            let negative = bytes.first == UInt8(ascii: "-")
            let digits = negative ? UnsafeBufferPointer(rebasing: bytes.dropFirst()) : bytes
            guard !digits.isEmpty else { return nil }
            var magnitude: UInt64 = 0
            for byte in digits {
                let digit = byte &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                let (shifted, overflowed) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, carried) = shifted.addingReportingOverflow(UInt64(digit))
                guard !overflowed, !carried else { return nil }
                magnitude = sum
            }
            // Int64's range is one wider below zero: 9223372036854775808 is valid only negated.
            if negative { return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil }
            return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
        }
    }
}

/// The snapshot fields, as positions in FieldValues. Readers that know their columns up front
/// (CSV) map them once per file, so records are decoded without comparing names.
enum FieldSlot: Int, CaseIterable, Sendable {
    case id, userID, toolID, enabled, apiKey, encryptedAPIKey, salt, nonce, sealedAPIKey, createdAt, updatedAt

    var name: String {
        switch self {
        case .id: SnapshotField.id
        case .userID: SnapshotField.userID
        case .toolID: SnapshotField.toolID
        case .enabled: SnapshotField.enabled
        case .apiKey: SnapshotField.apiKey
        case .encryptedAPIKey: SnapshotField.encryptedAPIKey
        case .salt: SnapshotField.salt
        case .nonce: SnapshotField.nonce
        case .sealedAPIKey: SnapshotField.sealedAPIKey
        case .createdAt: SnapshotField.createdAt
        case .updatedAt: SnapshotField.updatedAt
        }
    }

    init?(name: String) {
        switch name {
        case SnapshotField.id: self = .id
        case SnapshotField.userID: self = .userID
        case SnapshotField.toolID: self = .toolID
        case SnapshotField.enabled: self = .enabled
        case SnapshotField.apiKey: self = .apiKey
        case SnapshotField.encryptedAPIKey: self = .encryptedAPIKey
        case SnapshotField.salt: self = .salt
        case SnapshotField.nonce: self = .nonce
        case SnapshotField.sealedAPIKey: self = .sealedAPIKey
        case SnapshotField.createdAt: self = .createdAt
        case SnapshotField.updatedAt: self = .updatedAt
        default: return nil
        }
    }
}

/// A record's values by field, inline rather than in a dictionary or array: decoding runs once
/// per row of million-row imports, and hashing names and allocating showed in profiles.
struct FieldValues {
    private var values = InlineArray<11, FieldValue?>(repeating: nil)

    subscript(slot: FieldSlot) -> FieldValue? {
        get { values[slot.rawValue] }
        set { values[slot.rawValue] = newValue }
    }
}
