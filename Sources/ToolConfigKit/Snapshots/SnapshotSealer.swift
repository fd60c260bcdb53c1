/// How a sealed snapshot's key was derived from its passphrase: stored in the header so the file
/// can be opened on another machine, and checked against caps before it is obeyed.
public struct SealingParameters: Sendable, Equatable {
    public var argon2: Argon2id.Parameters
    /// base64 of 16 random bytes.
    public var salt: String
    /// A known value sealed under the derived key, so a wrong passphrase fails at once.
    public var check: String

    static let checkPlaintext = Array("toolcfg sealed snapshot v1".utf8)
    static let checkAssociatedData = Array("toolcfg-snapshot-check".utf8)

    var json: [(String, String)] {
        [
            ("kdf", "\"argon2id\""), ("version", "19"), ("memory_kib", "\(argon2.memoryKiB)"), ("iterations", "\(argon2.iterations)"),
            ("lanes", "\(argon2.lanes)"), ("salt", "\"\(salt)\""), ("check", "\"\(check)\"")
        ]
    }

    init(argon2: Argon2id.Parameters, salt: String, check: String) {
        self.argon2 = argon2
        self.salt = salt
        self.check = check
    }

    init(json value: JSONValue, location: SnapshotLocation) throws {
        guard case .object(let members) = value else { throw SnapshotError(location, "expected an object") }
        let map = Dictionary(members, uniquingKeysWith: { a, _ in a })
        func integer(_ name: String) throws -> UInt32 {
            guard case .integer(let v)? = map[name], v >= 0, v <= Int64(UInt32.max) else {
                throw SnapshotError(location, "\(name): missing or not a non-negative integer")
            }
            return UInt32(v)
        }
        func text(_ name: String) throws -> String {
            guard case .string(let v)? = map[name] else { throw SnapshotError(location, "\(name): missing or not a string") }
            return v
        }
        guard try text("kdf") == "argon2id" else { throw SnapshotError(location, "kdf: only argon2id is supported") }
        guard try integer("version") == 19 else { throw SnapshotError(location, "version: only Argon2 version 19 (0x13) is supported") }
        argon2 = Argon2id.Parameters(
            memoryKiB: try integer("memory_kib"), iterations: try integer("iterations"), lanes: try integer("lanes"))
        do {
            _ = try argon2.validated()
        } catch {
            throw SnapshotError(location, error.description)
        }
        salt = try text("salt")
        check = try text("check")
    }
}

/// Seals each key of a snapshot under one passphrase-derived key (Argon2id, once per file) with
/// AES-256-GCM, binding the record's user_id and tool_id as associated data so a sealed key
/// cannot be moved to another user's row.
public final class SnapshotSealer: Sendable {
    public let parameters: SealingParameters
    private let key: SecureBytes

    /// A new sealing for an export: fresh salt, the given cost.
    public init(passphrase: SecureBytes, cost: Argon2id.Parameters = .recommended) throws(SecretError) {
        let salt = SecureRandom.bytes(16)
        key = SecureBytes(locking: try Argon2id.deriveKey(passphrase: passphrase, salt: salt, parameters: cost))
        let nonce = SecureRandom.bytes(AESGCM.nonceLength)
        let check = try key.withBytes { k throws(SecretError) in
            try AESGCM.seal(
                key: k, nonce: nonce, plaintext: SealingParameters.checkPlaintext, associatedData: SealingParameters.checkAssociatedData)
        }
        parameters = SealingParameters(argon2: cost, salt: Base64.encode(salt), check: Base64.encode(nonce + check))
    }

    /// Opens a sealed snapshot: derives the key from its header and proves the passphrase.
    public init(passphrase: SecureBytes, parameters: SealingParameters) throws(SecretError) {
        self.parameters = parameters
        let salt = try Base64.decode(parameters.salt, field: "sealing.salt")
        guard salt.count >= 16 else { throw .wrongLength(field: "sealing.salt", expected: "at least 16", actual: salt.count) }
        key = SecureBytes(locking: try Argon2id.deriveKey(passphrase: passphrase, salt: salt, parameters: parameters.argon2))
        let check = try Base64.decode(parameters.check, field: "sealing.check")
        guard check.count == AESGCM.nonceLength + SealingParameters.checkPlaintext.count + AESGCM.tagLength else {
            throw .wrongLength(
                field: "sealing.check", expected: "\(AESGCM.nonceLength + SealingParameters.checkPlaintext.count + AESGCM.tagLength)",
                actual: check.count)
        }
        let opened = try key.withBytes { k throws(SecretError) in
            try AESGCM.open(
                key: k, nonce: Array(check.prefix(AESGCM.nonceLength)), sealed: Array(check.dropFirst(AESGCM.nonceLength)),
                associatedData: SealingParameters.checkAssociatedData)
        }
        guard opened == SealingParameters.checkPlaintext else { throw .authenticationFailed }
    }

    static func associatedData(userID: String, toolID: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for part in [userID, toolID] {
            let utf8 = Array(part.utf8)
            withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: utf8)
        }
        return bytes
    }

    public func seal(_ plaintext: String, userID: String, toolID: String) throws(SecretError) -> String {
        let nonce = SecureRandom.bytes(AESGCM.nonceLength)
        var bytes = Array(plaintext.utf8)
        defer { AESGCM.wipe(&bytes) }
        let sealed = try key.withBytes { k throws(SecretError) in
            try AESGCM.seal(key: k, nonce: nonce, plaintext: bytes, associatedData: Self.associatedData(userID: userID, toolID: toolID))
        }
        return Base64.encode(nonce + sealed)
    }

    public func open(_ sealed: String, userID: String, toolID: String) throws(SecretError) -> String {
        let bytes = try Base64.decode(sealed, field: SnapshotField.sealedAPIKey)
        guard bytes.count >= AESGCM.nonceLength + AESGCM.tagLength else {
            throw .wrongLength(
                field: SnapshotField.sealedAPIKey, expected: "at least \(AESGCM.nonceLength + AESGCM.tagLength)", actual: bytes.count)
        }
        var plaintext = try key.withBytes { k throws(SecretError) in
            try AESGCM.open(
                key: k, nonce: Array(bytes.prefix(AESGCM.nonceLength)), sealed: Array(bytes.dropFirst(AESGCM.nonceLength)),
                associatedData: Self.associatedData(userID: userID, toolID: toolID))
        }
        defer { AESGCM.wipe(&plaintext) }
        guard let text = String(validating: plaintext, as: UTF8.self) else { throw .plaintextNotUTF8 }
        return text
    }
}
