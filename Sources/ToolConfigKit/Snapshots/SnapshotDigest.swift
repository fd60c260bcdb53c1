import COpenSSL

/// SHA-256 over a canonical, length-prefixed encoding of every record, in order: what a JSON or
/// JSON Lines snapshot carries in its trailer, so a truncated or altered backup is detected on
/// import, and what `export --verify` compares against the database.
public final class SnapshotDigest {
    private let context: OpaquePointer
    public private(set) var count = 0

    public init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Encoded records wait here and go to SHA-256 in large pieces: one EVP call per record
    /// would cost more than the hashing itself.
    private var pending: [UInt8] = []
    private static let flushSize = 32 * 1024

    public func add(_ record: SnapshotRecord) {
        // Work on a local buffer: a stored array mutated field by field pays an exclusivity
        // check on every append.
        var bytes: [UInt8] = []
        swap(&bytes, &pending)
        Self.field(record.id, &bytes)
        Self.field(record.userID, &bytes)
        Self.field(record.toolID, &bytes)
        Self.field(record.enabled ? "1" : "0", &bytes)
        Self.field(record.createdAt, &bytes)
        Self.field(record.updatedAt, &bytes)
        switch record.key {
        case .none: Self.field("none", &bytes)
        case .plaintext(let key): Self.field("plaintext", &bytes); Self.field(key, &bytes)
        case .encrypted(let secret):
            Self.field("encrypted", &bytes)
            Self.field(secret.encryptedAPIKey, &bytes)
            Self.field(secret.salt, &bytes)
            Self.field(secret.nonce, &bytes)
        case .sealed(let sealed): Self.field("sealed", &bytes); Self.field(sealed, &bytes)
        }
        swap(&bytes, &pending)
        count += 1
        if pending.count >= Self.flushSize { flush() }
    }

    /// Present fields are 0x01, a 4-byte big-endian length and the UTF-8 bytes; absent ones 0x00.
    @inline(__always)
    private static func field(_ text: String?, _ bytes: inout [UInt8]) {
        guard var text else { bytes.append(0); return }
        text.withUTF8 { utf8 in
            let length = utf8.count
            bytes.append(1)
            bytes.append(UInt8(truncatingIfNeeded: length >> 24))
            bytes.append(UInt8(truncatingIfNeeded: length >> 16))
            bytes.append(UInt8(truncatingIfNeeded: length >> 8))
            bytes.append(UInt8(truncatingIfNeeded: length))
            bytes.append(contentsOf: utf8)
        }
    }

    @inline(__always)
    private static func field(_ number: Int64?, _ bytes: inout [UInt8]) {
        guard let number else { bytes.append(0); return }
        bytes.append(1)
        bytes.append(contentsOf: repeatElement(0, count: 4))
        let start = bytes.count
        DecimalText.append(number, to: &bytes)
        bytes[start - 1] = UInt8(bytes.count - start)  // at most 20 digits and a sign
    }

    private func flush() {
        pending.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        pending.removeAll(keepingCapacity: true)
    }

    /// "sha256:<hex>"; the digest can be read once.
    public func finish() -> String {
        flush()
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return "sha256:" + Digest.hex(out)
    }
}
