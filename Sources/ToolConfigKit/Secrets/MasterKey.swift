import Foundation

/// The application's master key: 32 random bytes, kept as standard base64 text with padding.
public struct MasterKey: Sendable {
    public static let byteCount = 32
    private static let fingerprintLabel = Array("toolcfg master-key fingerprint v1".utf8)

    public let material: SecureBytes
    public let source: SecretSource
    /// Keys derived from this one, shared by every copy: scheme v2's KEK costs 600,000 PBKDF2
    /// iterations, so it is derived once per key per process.
    private let derived = DerivedKeys()

    /// Scheme v2's KEK salt and the row key's HKDF info (crates/services/src/db/encryption.rs).
    static let kekSaltV2 = Array("bodhiapp:kek:v2".utf8)
    static let kekIterationsV2 = 600_000
    static let rowInfoV2 = Array("bodhiapp:row:v2".utf8)

    /// Scheme v2's key-encryption key: PBKDF2-HMAC-SHA256(key, "bodhiapp:kek:v2", 600,000), 32
    /// bytes, derived at first use (about 70 ms) and kept for the key's lifetime.
    public var keyEncryptionKey: SecureBytes {
        derived.kek {
            let made = SecureBytes(count: 32) { out in
                material.withBytes { password in
                    Self.kekSaltV2.withUnsafeBytes {
                        PBKDF2.deriveKey(password: password, salt: $0, iterations: Self.kekIterationsV2, into: out)
                    }
                }
            }
            return SecureBytes(locking: made)
        }
    }

    public init(material: SecureBytes, source: SecretSource) throws(SecretError) {
        guard material.count == Self.byteCount else {
            throw .invalidMasterKey(source: source, reason: "it decodes to \(material.count) bytes, not \(Self.byteCount)")
        }
        // Held as long as the process works with the key: in a locked page (never swapped out).
        self.material = SecureBytes(locking: material)
        self.source = source
    }

    /// Parses key text as the application stores it; one trailing newline (LF or CRLF) is allowed.
    /// Errors say what is wrong with the text without repeating any of it.
    public init(text: String, source: SecretSource) throws(SecretError) {
        var trimmed = Substring(text)
        // "\r\n" is a single Character in Swift.
        if trimmed.last == "\n" || trimmed.last == "\r\n" { trimmed = trimmed.dropLast() }
        guard !trimmed.isEmpty else { throw .invalidMasterKey(source: source, reason: "it is empty") }
        if trimmed.contains(where: { $0.isWhitespace }) {
            throw .invalidMasterKey(source: source, reason: "it contains whitespace or more than one line")
        }
        guard let material = Base64.decodeSecret(trimmed) else {
            throw .invalidMasterKey(
                source: source, reason: "it is not canonical standard base64 with padding (\(trimmed.count) characters)")
        }
        try self.init(material: material, source: source)
    }

    /// A fresh key from OpenSSL's secure random generator.
    public static func generate() -> MasterKey {
        let material = SecureBytes(count: byteCount) { SecureRandom.fill($0) }
        // The length is right by construction.
        return try! MasterKey(material: material, source: .generated)
    }

    /// The key as the application stores it. Only for writing a new key out; never logged.
    public var base64Text: String {
        material.withBytes { Base64.encode($0) }
    }

    /// Identifies the key in reports without revealing it: the first 8 bytes of
    /// HMAC-SHA256(key, fixed label), as hex. Same key, same fingerprint, on every machine.
    public var fingerprint: String {
        let mac = material.withBytes { Digest.hmacSHA256(key: $0, message: Self.fingerprintLabel) }
        return Digest.hex(mac.prefix(8))
    }
}

/// See `MasterKey.keyEncryptionKey`. Behind an NSLock (a pthread mutex), not Synchronization's
/// Mutex (a futex on Linux): ThreadSanitizer sees the ordering the first gives and not the
/// other's, and reported two derivation threads asking for a new key's KEK at once as a race.
private final class DerivedKeys: @unchecked Sendable {
    private let lock = NSLock()
    private var kek: SecureBytes?

    /// The KEK, made by `make` at the first call.
    func kek(_ make: () -> SecureBytes) -> SecureBytes {
        lock.lock()
        defer { lock.unlock() }
        if let kek { return kek }
        let made = make()
        kek = made
        return made
    }
}
