/// RFC 4180 CSV with a header row naming the fields in any order. Quoted fields may hold commas,
/// quotes ("") and line breaks; a UTF-8 byte order mark and CRLF or LF line ends are accepted;
/// blank lines are skipped. Anything else (a quote inside an unquoted field, text after a closing
/// quote, a quote never closed, a bare CR, a NUL byte, invalid UTF-8, a row with the wrong number
/// of fields) is an error naming the line. As in PostgreSQL's CSV, an empty unquoted cell is "no
/// value" and a quoted "" is an empty string (an empty api_key, say).
///
/// Hand-written rather than a package: measured on this machine kind (dependency-notes.md),
/// CSV.swift reads 1M rows at 69k rows/s and swallows the rest of a file after an unbalanced
/// quote; SwiftCSV loads the whole file into one String (1.08 GB for 1M rows) and drops trailing
/// empty fields. This reader streams 64 KiB at a time and is fuzzed against Python's csv module.
final class CSVSnapshotReader: SnapshotReader {
    let source: ByteSource
    let columns: [String]
    private let slots: [FieldSlot]
    var fileName: String { source.name }
    let header: SnapshotHeader? = nil
    let trailer: SnapshotTrailer? = nil
    private var recordIndex = 0
    private var field: [UInt8] = []

    init(source: ByteSource) throws {
        self.source = source
        try source.skipByteOrderMark()
        var names: [String] = []
        var slots: [FieldSlot] = []
        var rowFields: [FieldValue] = []
        // The header row: first non-blank row.
        while true {
            guard let line = try Self.readRow(source, field: &field, into: &rowFields, names: nil) else {
                throw SnapshotError(
                    SnapshotLocation(file: source.name, line: 1), "the file is empty: a header row naming the fields is required")
            }
            if rowFields.count == 1, rowFields[0] == .null { continue }
            names = rowFields.map { if case .text(let name) = $0 { name } else { "" } }
            let location = SnapshotLocation(file: source.name, line: line)
            var seen = Set<String>()
            for name in names {
                guard let slot = FieldSlot(name: name) else {
                    throw SnapshotError(
                        location.with(field: name.isEmpty ? "(empty)" : String(name.prefix(64))),
                        "unknown column in the header; the known fields are \(SnapshotField.all.sorted().joined(separator: ", "))")
                }
                guard seen.insert(name).inserted else {
                    throw SnapshotError(location.with(field: name), "the column appears twice in the header")
                }
                slots.append(slot)
            }
            try Self.checkRequiredColumns(slots, at: location)
            break
        }
        columns = names
        self.slots = slots
    }

    /// A column every record needs is missing from the header: said once, at the header, rather
    /// than again for every record.
    static func checkRequiredColumns(_ slots: [FieldSlot], at header: SnapshotLocation) throws(SnapshotError) {
        for required in [FieldSlot.userID, .toolID] where !slots.contains(required) {
            throw SnapshotError(header.with(field: required.name), "the header has no \(required.name) column, which every record needs")
        }
        let triple: [FieldSlot] = [.encryptedAPIKey, .salt, .nonce]
        if let present = triple.first(where: slots.contains), let absent = triple.first(where: { !slots.contains($0) }) {
            throw SnapshotError(
                header.with(field: absent.name),
                "the header has \(present.name) but no \(absent.name) column: an encrypted key needs encrypted_api_key, "
                    + "salt and nonce together"
            )
        }
    }

    func next() throws -> RawRecord? {
        while true {
            var rowFields: [FieldValue] = []  // the record keeps it
            rowFields.reserveCapacity(columns.count)
            guard let line = try Self.readRow(source, field: &field, into: &rowFields, names: columns) else { return nil }
            if rowFields.count == 1, rowFields[0] == .null, columns.count > 1 { continue }
            recordIndex += 1
            let location = SnapshotLocation(file: source.name, line: line, record: recordIndex)
            guard rowFields.count == columns.count else {
                throw SnapshotError(location, "\(rowFields.count) field(s), but the header names \(columns.count)")
            }
            return RawRecord(location: location, names: columns, values: rowFields, slots: slots)
        }
    }

    /// Reads one row into `fields` and returns the line it starts on; nil at the end of the file.
    /// A field is null when empty and unquoted. `names` labels fields in errors when known.
    static func readRow(_ source: ByteSource, field: inout [UInt8], into fields: inout [FieldValue], names: [String]?) throws -> Int? {
        let line = source.line
        guard try source.peek() != nil else { return nil }
        fields.removeAll(keepingCapacity: true)
        var quoted = false
        func location(_ index: Int) -> SnapshotLocation {
            let name = names.flatMap { index < $0.count ? $0[index] : nil }
            return SnapshotLocation(file: source.name, line: line, field: name)
        }
        func finish() throws {
            guard fields.count < SnapshotLimits.fields else {
                throw SnapshotError(SnapshotLocation(file: source.name, line: line), "more than \(SnapshotLimits.fields) fields in one row")
            }
            guard let text = Self.text(field) else {
                throw SnapshotError(location(fields.count), "invalid UTF-8")
            }
            fields.append(text.isEmpty && !quoted ? .null : .text(text))
            field.removeAll(keepingCapacity: true)
            quoted = false
        }
        field.removeAll(keepingCapacity: true)
        var atFieldStart = true
        while true {
            guard let byte = try source.next() else {
                try finish()
                return line
            }
            switch byte {
            case UInt8(ascii: ","):
                try finish()
                atFieldStart = true
                continue
            case UInt8(ascii: "\n"):
                try finish()
                return line
            case UInt8(ascii: "\r"):
                guard try source.next() == UInt8(ascii: "\n") else {
                    throw SnapshotError(location(fields.count), "a carriage return not followed by a line feed outside quotes")
                }
                try finish()
                return line
            case UInt8(ascii: "\"") where atFieldStart:
                quoted = true
                let quoteLine = source.line
                while true {
                    try source.appendRun(to: &field, limit: SnapshotLimits.fieldBytes) { $0 == UInt8(ascii: "\"") || $0 == 0 }
                    if field.count > SnapshotLimits.fieldBytes {
                        throw SnapshotError(location(fields.count), "a field longer than \(SnapshotLimits.fieldBytes) bytes")
                    }
                    guard let inner = try source.next() else {
                        throw SnapshotError(
                            SnapshotLocation(file: source.name, line: quoteLine, field: location(fields.count).field),
                            "unbalanced quote: the quoted field that starts on line \(quoteLine) never closes")
                    }
                    if inner == UInt8(ascii: "\"") {
                        if try source.peek() == UInt8(ascii: "\"") {
                            _ = try source.next()
                            field.append(inner)
                            continue
                        }
                        break
                    }
                    throw SnapshotError(location(fields.count), "a NUL byte")
                }
                // After the closing quote only a separator or the end of the row may follow.
                switch try source.peek() {
                case nil, UInt8(ascii: ","), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                    atFieldStart = false
                default:
                    throw SnapshotError(location(fields.count), "text after the closing quote of a quoted field")
                }
                continue
            case UInt8(ascii: "\""):
                throw SnapshotError(location(fields.count), "a quote inside an unquoted field (quote the whole field and double the quote)")
            case 0:
                throw SnapshotError(location(fields.count), "a NUL byte")
            default:
                field.append(byte)
                try source.appendRun(to: &field, limit: SnapshotLimits.fieldBytes) {
                    $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\"") || $0 == 0
                }
                if field.count > SnapshotLimits.fieldBytes {
                    throw SnapshotError(location(fields.count), "a field longer than \(SnapshotLimits.fieldBytes) bytes")
                }
            }
            atFieldStart = false
        }
    }

    /// UTF-8 bytes as a String, nil when invalid. Pure ASCII (nearly every field: ids, base64)
    /// takes a direct path; the generic validating initializer cost ~8 % of an import.
    @inline(__always)
    static func text(_ bytes: [UInt8]) -> String? {
        var ascii = true
        for byte in bytes where byte >= 0x80 {
            ascii = false
            break
        }
        return ascii ? String(decoding: bytes, as: UTF8.self) : String(validating: bytes, as: UTF8.self)
    }
}
