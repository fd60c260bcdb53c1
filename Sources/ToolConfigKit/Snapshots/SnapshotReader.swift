/// Yields the records of a snapshot one at a time.
protocol SnapshotReader: AnyObject {
    var fileName: String { get }
    /// The bytes it reads from (how far it has come, for progress).
    var source: ByteSource { get }
    /// The JSON / JSON Lines header, when the file has one (bare files and CSV do not).
    var header: SnapshotHeader? { get }
    /// The count and digest that close a JSON / JSON Lines snapshot, known after the last record.
    var trailer: SnapshotTrailer? { get }
    func next() throws -> RawRecord?
}

enum SnapshotReaders {
    static func open(path: String, format: SnapshotFormat) throws -> any SnapshotReader {
        let source = try ByteSource(path: path)
        return try make(source, format)
    }

    static func make(_ source: ByteSource, _ format: SnapshotFormat) throws -> any SnapshotReader {
        switch format {
        case .csv: try CSVSnapshotReader(source: source)
        case .json: try JSONSnapshotReader(source: source)
        case .jsonl: try JSONLinesSnapshotReader(source: source)
        }
    }
}
