/// Reads JSON Lines: one record per line, optionally framed by toolcfg's header line first and a
/// trailer line (`{"end":true,"row_count":N,"digest":"sha256:..."}`) last; a bare
/// record-per-line file from another system is accepted too. Blank lines are skipped.
final class JSONLinesSnapshotReader: SnapshotReader {
    private let scanner: JSONScanner
    var fileName: String { scanner.source.name }
    var source: ByteSource { scanner.source }
    private(set) var header: SnapshotHeader?
    private(set) var trailer: SnapshotTrailer?
    private var recordIndex = 0
    private var pending: RawRecord?

    init(source: ByteSource) throws {
        scanner = JSONScanner(source: source)
        try source.skipByteOrderMark()
        // A header, if any, is the first line.
        if let (line, members) = try readLine() {
            if members.contains(where: { $0.0 == "format" }) {
                header = try SnapshotHeader(members: members, location: SnapshotLocation(file: fileName, line: line))
            } else {
                pending = try record(line: line, members: members)
            }
        }
    }

    /// The next line's object and its line number; nil at the end of the file.
    private func readLine() throws -> (Int, [(String, JSONValue)])? {
        while let byte = try scanner.source.peek(), byte == 0x0A || byte == 0x0D || byte == 0x20 || byte == 0x09 {
            _ = try scanner.source.next()
        }
        guard let first = try scanner.source.peek() else { return nil }
        let line = scanner.source.line
        guard first == UInt8(ascii: "{") else {
            throw SnapshotError(SnapshotLocation(file: fileName, line: line), "each line must hold one JSON object")
        }
        let members = try scanner.object(depth: 0)
        // Only spaces may follow the object on its line.
        while let byte = try scanner.source.peek(), byte == 0x20 || byte == 0x09 || byte == 0x0D {
            _ = try scanner.source.next()
        }
        if let byte = try scanner.source.peek(), byte != 0x0A {
            throw SnapshotError(SnapshotLocation(file: fileName, line: line), "more than one JSON value on one line")
        }
        return (line, members)
    }

    private func record(line: Int, members: [(String, JSONValue)]) throws -> RawRecord {
        recordIndex += 1
        return RawRecord(
            location: SnapshotLocation(file: fileName, line: line, record: recordIndex),
            names: members.map(\.0), values: members.map(\.1.asField), slots: nil)
    }

    func next() throws -> RawRecord? {
        if let pending {
            self.pending = nil
            return pending
        }
        guard trailer == nil else {
            if let (line, _) = try readLine() {
                throw SnapshotError(SnapshotLocation(file: fileName, line: line), "a line after the trailer")
            }
            return nil
        }
        guard let (line, members) = try readLine() else { return nil }
        if members.contains(where: { $0.0 == "end" }) {
            guard members.first(where: { $0.0 == "end" })?.1 == .bool(true) else {
                throw SnapshotError(SnapshotLocation(file: fileName, line: line, field: "end"), "the trailer's end must be true")
            }
            trailer = try SnapshotTrailer(members: members.filter { $0.0 != "end" }, location: SnapshotLocation(file: fileName, line: line))
            return try next()
        }
        if members.contains(where: { $0.0 == "format" }) {
            throw SnapshotError(SnapshotLocation(file: fileName, line: line), "a header line that is not the first line")
        }
        return try record(line: line, members: members)
    }
}
