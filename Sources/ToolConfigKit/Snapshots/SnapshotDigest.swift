/// SHA-256 over a canonical, length-prefixed encoding of every record, in order: what a JSON or
/// JSON Lines snapshot carries in its trailer, so a truncated or altered backup is detected on
/// import, and what `export --verify` compares against the database.
public final class SnapshotDigest {
    private let stream = SHA256Stream()
    public private(set) var count = 0

    public init() {}

    /// Encoded records wait here and go to SHA-256 in large pieces: one EVP call per record
    /// would cost more than the hashing itself.
    private var pending: [UInt8] = []
    private static let flushSize = 32 * 1024

    func include(_ record: some ExportRecord) {
        // Work on a local buffer: a stored array mutated field by field pays an exclusivity
        // check on every append.
        var bytes: [UInt8] = []
        swap(&bytes, &pending)
        record.forEachDigestField { value in
            switch value {
            case .null: bytes.append(0)
            case .integer(let number):
                Self.header(length: 0, &bytes)
                let start = bytes.count
                DecimalText.append(number, to: &bytes)
                bytes[start - 1] = UInt8(bytes.count - start)  // at most 20 digits and a sign
            case .bool(let flag): Self.field(flag ? [UInt8(ascii: "1")] : [UInt8(ascii: "0")], &bytes)
            case .text(var text): text.withUTF8 { Self.field($0, &bytes) }
            case .bytes(let utf8): Self.field(utf8, &bytes)
            }
        }
        swap(&bytes, &pending)
        count += 1
        if pending.count >= Self.flushSize { flush() }
    }

    public func add(_ record: SnapshotRecord) {
        include(record)
    }

    /// Present fields are 0x01, a 4-byte big-endian length and the UTF-8 bytes; absent ones 0x00.
    @inline(__always)
    private static func field(_ utf8: some Collection<UInt8>, _ bytes: inout [UInt8]) {
        header(length: utf8.count, &bytes)
        bytes.append(contentsOf: utf8)
    }

    /// 0x01 and the big-endian length, appended at once (five appends cost five checks).
    @inline(__always)
    private static func header(length: Int, _ bytes: inout [UInt8]) {
        let word = (1 | UInt64(UInt32(truncatingIfNeeded: length).bigEndian) << 8).littleEndian
        withUnsafeBytes(of: word) { $0.withMemoryRebound(to: UInt8.self) { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: $0[0..<5])) } }
    }

    private func flush() {
        pending.withUnsafeBytes { stream.update($0) }
        pending.removeAll(keepingCapacity: true)
    }

    /// "sha256:<hex>"; the digest can be read once.
    public func finish() -> String {
        flush()
        return "sha256:" + Digest.hex(stream.finish())
    }
}
