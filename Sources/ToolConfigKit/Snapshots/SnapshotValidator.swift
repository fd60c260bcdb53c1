/// Reads and validates a whole snapshot without a database: every record decoded by the
/// import's rules, and a toolcfg snapshot's row count and digest checked. What `export --verify`
/// reads its file back with, what the fuzz targets drive, and a quick check for callers that hold
/// a file's bytes.
public enum SnapshotValidator {
    public struct Summary: Sendable, Equatable {
        public var records: Int
        public var keys: KeyMode?
        public var integrityChecked: Bool
        /// The digest of the records read (see `SnapshotDigest`).
        public var digest: String
    }

    public static func validate(_ bytes: [UInt8], format: SnapshotFormat, name: String = "<memory>") throws -> Summary {
        try validate(ByteSource(bytes: bytes, name: name), format: format)
    }

    /// `each` sees every record after it is decoded (to open sealed keys, say).
    static func validate(
        _ source: ByteSource, format: SnapshotFormat,
        each: (SnapshotRecord) throws -> Void = { _ in }
    ) throws -> Summary {
        let reader = try SnapshotReaders.make(source, format)
        let decoder = RecordDecoder(format: format, declaredKeys: reader.header?.keys)
        let digest = SnapshotDigest()
        while let raw = try reader.next() {
            let record = try decoder.decode(raw)
            try each(record)
            digest.add(record)
        }
        let actual = SnapshotTrailer(rowCount: digest.count, digest: digest.finish())
        let checked = try SnapshotTrailer.check(reader.trailer, header: reader.header, actual: actual, file: reader.fileName)
        return Summary(records: actual.rowCount, keys: reader.header?.keys, integrityChecked: checked, digest: actual.digest)
    }
}

extension SnapshotTrailer {
    /// A toolcfg snapshot (one with a header) must end with a trailer whose row count and digest
    /// match what was read (`actual`); a bare file from another system has neither. Returns whether
    /// a trailer was checked.
    static func check(_ trailer: SnapshotTrailer?, header: SnapshotHeader?, actual: SnapshotTrailer?, file: String) throws(SnapshotError)
        -> Bool
    {
        let location = SnapshotLocation(file: file)
        guard header != nil else {
            if trailer != nil { throw SnapshotError(location, "a trailer without the header that starts a toolcfg snapshot") }
            return false
        }
        guard let trailer, let actual else {
            throw SnapshotError(location, "the snapshot has a header but no trailer with row_count and digest: the file is truncated")
        }
        if trailer.rowCount != actual.rowCount {
            throw SnapshotError(
                location.with(field: "row_count"),
                "the trailer says \(trailer.rowCount) rows but the file holds \(actual.rowCount): truncated or altered")
        }
        if trailer.digest != actual.digest {
            throw SnapshotError(location.with(field: "digest"), "the records do not match the trailer's digest: the file was altered")
        }
        return true
    }
}
