/// Reads and validates a whole snapshot held in memory, without a database: every record
/// decoded by the import's rules, and a toolcfg snapshot's row count and digest checked. What the
/// fuzz targets drive, and a quick check for callers that hold a file's bytes.
public enum SnapshotValidator {
    public struct Summary: Sendable, Equatable {
        public var records: Int
        public var keys: KeyMode?
        public var integrityChecked: Bool
    }

    public static func validate(_ bytes: [UInt8], format: SnapshotFormat, name: String = "<memory>") throws -> Summary {
        let reader = try SnapshotReaders.make(ByteSource(bytes: bytes, name: name), format)
        let decoder = RecordDecoder(format: format, declaredKeys: reader.header?.keys)
        let digest = SnapshotDigest()
        while let raw = try reader.next() {
            digest.add(try decoder.decode(raw))
        }
        guard let trailer = reader.trailer else {
            if reader.header != nil { throw SnapshotError(SnapshotLocation(file: name), "the snapshot has a header but no trailer: truncated") }
            return Summary(records: digest.count, keys: nil, integrityChecked: false)
        }
        let count = digest.count
        guard trailer == SnapshotTrailer(rowCount: count, digest: digest.finish()) else {
            throw SnapshotError(SnapshotLocation(file: name, field: "digest"), "the records do not match the trailer's row count and digest")
        }
        return Summary(records: count, keys: reader.header?.keys, integrityChecked: true)
    }
}
