/// Reads a JSON snapshot one record at a time: either toolcfg's document (a header, the records
/// in `rows`, then `row_count` and `digest`) or a bare top-level array of records, as other
/// systems write them. Decoding a whole 1M-element array at once peaks at 4x the file size, so
/// the records are parsed from the stream as they come.
final class JSONSnapshotReader: SnapshotReader {
    private let scanner: JSONScanner
    var fileName: String { scanner.source.name }
    var source: ByteSource { scanner.source }
    private(set) var header: SnapshotHeader?
    private(set) var trailer: SnapshotTrailer?
    private var recordIndex = 0
    private var inArray = true
    private var firstElement = true
    private let isDocument: Bool

    init(source: ByteSource) throws {
        scanner = JSONScanner(source: source)
        try source.skipByteOrderMark()
        switch try scanner.peekToken() {
        case UInt8(ascii: "["):
            _ = try source.next()
            isDocument = false
        case UInt8(ascii: "{"):
            isDocument = true
            _ = try source.next()
            try readHeaderMembers()
        case nil:
            throw scanner.error("the file is empty")
        case let byte?:
            throw scanner.error("expected a JSON object or array, found \(JSONScanner.describe(byte))")
        }
    }

    /// Members before `rows`: format, version, keys, sealing.
    private func readHeaderMembers() throws {
        var members: [(String, JSONValue)] = []
        while true {
            guard try scanner.peekToken() == UInt8(ascii: "\"") else {
                throw scanner.error("expected the member \"rows\" holding the records")
            }
            let name = try scanner.string()
            try scanner.expect(UInt8(ascii: ":"), ": after a member name")
            if name == "rows" {
                try scanner.expect(UInt8(ascii: "["), "[ opening the rows array")
                header = try SnapshotHeader(members: members, location: SnapshotLocation(file: fileName, line: 1))
                return
            }
            guard ["format", "version", "keys", "sealing"].contains(name) else {
                throw scanner.error("unknown header member (expected format, version, keys, sealing, then rows)", field: name)
            }
            members.append((name, try scanner.value(depth: 1)))
            try scanner.expect(UInt8(ascii: ","), ", after a header member")
        }
    }

    func next() throws -> RawRecord? {
        guard inArray else { return nil }
        guard let byte = try scanner.peekToken() else {
            throw scanner.error("the JSON ends early: the array of records is not closed (truncated file?)")
        }
        if byte == UInt8(ascii: "]") {
            _ = try scanner.source.next()
            inArray = false
            try finishDocument()
            return nil
        }
        if !firstElement {
            try scanner.expect(UInt8(ascii: ","), ", between records")
        }
        firstElement = false
        recordIndex += 1
        let opening = try scanner.peekToken()
        let line = scanner.source.line
        guard opening == UInt8(ascii: "{") else {
            throw SnapshotError(SnapshotLocation(file: fileName, line: line, record: recordIndex), "a record must be a JSON object")
        }
        let members = try scanner.object(depth: 1)
        return RawRecord(
            location: SnapshotLocation(file: fileName, line: line, record: recordIndex),
            names: members.map(\.0), values: members.map(\.1.asField), slots: nil)
    }

    /// After the records: `row_count` and `digest` for a document, then nothing but whitespace.
    private func finishDocument() throws {
        if isDocument {
            var members: [(String, JSONValue)] = []
            while try scanner.peekToken() == UInt8(ascii: ",") {
                _ = try scanner.source.next()
                let name = try scanner.string()
                guard ["row_count", "digest"].contains(name) else {
                    throw scanner.error("unknown member after rows (expected row_count and digest)", field: name)
                }
                try scanner.expect(UInt8(ascii: ":"), ": after a member name")
                members.append((name, try scanner.value(depth: 1)))
            }
            try scanner.expect(UInt8(ascii: "}"), "} closing the snapshot")
            trailer = try SnapshotTrailer(members: members, location: SnapshotLocation(file: fileName, line: scanner.source.line))
        }
        if let extra = try scanner.peekToken() {
            throw scanner.error("unexpected \(JSONScanner.describe(extra)) after the end of the JSON document")
        }
    }
}

extension SnapshotHeader {
    init(members: [(String, JSONValue)], location: SnapshotLocation) throws {
        let map = Dictionary(members, uniquingKeysWith: { a, _ in a })
        guard map["format"] == .string(Self.formatName) else {
            throw SnapshotError(location.with(field: "format"), "expected \"\(Self.formatName)\"")
        }
        guard map["version"] == .integer(Int64(Self.formatVersion)) else {
            throw SnapshotError(
                location.with(field: "version"), "unsupported snapshot version (this toolcfg reads version \(Self.formatVersion))")
        }
        guard case .string(let text)? = map["keys"], let keys = KeyMode(rawValue: text) else {
            throw SnapshotError(location.with(field: "keys"), "expected one of encrypted, plaintext, sealed, omit")
        }
        var sealing: SealingParameters?
        if let value = map["sealing"], value != .null {
            sealing = try SealingParameters(json: value, location: location.with(field: "sealing"))
        }
        guard (keys == .sealed) == (sealing != nil) else {
            throw SnapshotError(
                location.with(field: "sealing"),
                keys == .sealed
                    ? "a sealed snapshot needs its sealing parameters" : "sealing parameters in a snapshot whose keys are not sealed")
        }
        self.init(keys: keys, sealing: sealing)
    }
}

extension SnapshotTrailer {
    init(members: [(String, JSONValue)], location: SnapshotLocation) throws {
        let map = Dictionary(members, uniquingKeysWith: { a, _ in a })
        guard case .integer(let count)? = map["row_count"], count >= 0 else {
            throw SnapshotError(location.with(field: "row_count"), "missing or not a non-negative integer (truncated file?)")
        }
        guard case .string(let digest)? = map["digest"], digest.hasPrefix("sha256:") else {
            throw SnapshotError(location.with(field: "digest"), "missing or not a sha256: digest (truncated file?)")
        }
        self.init(rowCount: Int(count), digest: digest)
    }
}
