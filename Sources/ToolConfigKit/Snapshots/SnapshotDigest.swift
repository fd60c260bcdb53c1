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

    public func add(_ record: SnapshotRecord) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        func field(_ text: String?) {
            guard let text else { bytes.append(0); return }
            let utf8 = Array(text.utf8)
            bytes.append(1)
            withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: utf8)
        }
        field(record.id.map(String.init))
        field(record.userID)
        field(record.toolID)
        field(record.enabled ? "1" : "0")
        field(record.createdAt.map(String.init))
        field(record.updatedAt.map(String.init))
        switch record.key {
        case .none: field("none")
        case .plaintext(let key): field("plaintext"); field(key)
        case .encrypted(let secret): field("encrypted"); field(secret.encryptedAPIKey); field(secret.salt); field(secret.nonce)
        case .sealed(let sealed): field("sealed"); field(sealed)
        }
        EVP_DigestUpdate(context, bytes, bytes.count)
        count += 1
    }

    /// "sha256:<hex>"; the digest can be read once.
    public func finish() -> String {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return "sha256:" + Digest.hex(out)
    }
}
