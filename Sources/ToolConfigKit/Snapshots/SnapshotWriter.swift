/// Writes records one at a time in one of the snapshot formats.
protocol SnapshotWriter {
    func begin(_ header: SnapshotHeader) throws
    func write(_ record: SnapshotRecord) throws
    func finish(_ trailer: SnapshotTrailer) throws
}

enum SnapshotWriters {
    static func make(_ format: SnapshotFormat, sink: OutputSink, keys: KeyMode) -> any SnapshotWriter {
        switch format {
        case .csv: CSVSnapshotWriter(sink: sink, keys: keys)
        case .json: JSONSnapshotWriter(sink: sink, keys: keys, lines: false)
        case .jsonl: JSONSnapshotWriter(sink: sink, keys: keys, lines: true)
        }
    }

    /// Calls `body` with the record's values in the order of `SnapshotField.exported(keys)`
    /// (a visitor rather than an array: no allocation per row).
    @inline(__always)
    static func forEachValue(_ record: SnapshotRecord, keys: KeyMode, _ body: (Value) -> Void) {
        body(record.id.map(Value.integer) ?? .null)
        body(.text(record.userID))
        body(.text(record.toolID))
        body(.bool(record.enabled))
        switch (keys, record.key) {
        case (.encrypted, .encrypted(let secret)): body(.text(secret.encryptedAPIKey)); body(.text(secret.salt)); body(.text(secret.nonce))
        case (.encrypted, _): body(.null); body(.null); body(.null)
        case (.plaintext, .plaintext(let key)): body(.text(key))
        case (.sealed, .sealed(let sealed)): body(.text(sealed))
        case (.plaintext, _), (.sealed, _): body(.null)
        case (.omit, _): break
        }
        body(record.createdAt.map(Value.integer) ?? .null)
        body(record.updatedAt.map(Value.integer) ?? .null)
    }

    enum Value {
        case null, integer(Int64), text(String), bool(Bool)
    }
}

/// RFC 4180: CRLF line ends; a field is quoted (quotes doubled) when it holds a comma, quote, CR
/// or LF, as Python's csv module does by default.
final class CSVSnapshotWriter: SnapshotWriter {
    let sink: OutputSink
    let keys: KeyMode

    init(sink: OutputSink, keys: KeyMode) {
        self.sink = sink
        self.keys = keys
    }

    func begin(_ header: SnapshotHeader) throws {
        try sink.append(SnapshotField.exported(keys).joined(separator: ",") + "\r\n")
    }

    func write(_ record: SnapshotRecord) throws {
        try sink.withBuffer { out in
            var first = true
            SnapshotWriters.forEachValue(record, keys: keys) { value in
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                switch value {
                case .null: break
                case .integer(let i): DecimalText.append(i, to: &out)
                case .bool(let b): out.append(b ? UInt8(ascii: "1") : UInt8(ascii: "0"))
                case .text(let text): Self.appendField(text, to: &out)
                }
            }
            out.append(0x0D)
            out.append(0x0A)
        }
    }

    static func appendField(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { utf8 in
            // The four bytes that force quoting (LF, CR, '"', ',') are all below 0x2D: one compare
            // and one bit test per byte.
            let special: UInt64 = 1 << 0x0A | 1 << 0x0D | 1 << 0x22 | 1 << 0x2C
            var needsQuotes = false
            for byte in utf8 where byte < 0x2D && (special >> UInt64(byte)) & 1 == 1 {
                needsQuotes = true
                break
            }
            // An empty string is written "" so that it reads back as empty, not as no value.
            guard needsQuotes || utf8.isEmpty else { return out.append(contentsOf: utf8) }
            out.append(UInt8(ascii: "\""))
            for byte in utf8 {
                if byte == UInt8(ascii: "\"") { out.append(byte) }
                out.append(byte)
            }
            out.append(UInt8(ascii: "\""))
        }
    }

    func finish(_ trailer: SnapshotTrailer) throws {}
}

/// toolcfg's JSON document (header, `rows`, then `row_count` and `digest`) or JSON Lines (a header
/// line, one record per line, a trailer line). Keys in a fixed order and `/` unescaped, so two
/// exports of the same rows are byte-identical and diff cleanly.
final class JSONSnapshotWriter: SnapshotWriter {
    let sink: OutputSink
    let keys: KeyMode
    let lines: Bool
    private var first = true
    /// `"name"` of each exported field, as UTF-8.
    private let names: [[UInt8]]

    init(sink: OutputSink, keys: KeyMode, lines: Bool) {
        self.sink = sink
        self.keys = keys
        self.lines = lines
        names = SnapshotField.exported(keys).map { Array(JSONText.quote($0).utf8) }
    }

    func begin(_ header: SnapshotHeader) throws {
        var text = "{\"format\":\"\(SnapshotHeader.formatName)\",\"version\":\(SnapshotHeader.formatVersion),\"keys\":\"\(header.keys.rawValue)\""
        if let sealing = header.sealing {
            text += ",\"sealing\":{" + sealing.json.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }
        try sink.append(lines ? text + "}\n" : text + ",\"rows\":[")
    }

    func write(_ record: SnapshotRecord) throws {
        if !lines { try sink.append(first ? "\n" : ",\n") }
        first = false
        try sink.withBuffer { out in
            out.append(UInt8(ascii: "{"))
            var index = 0
            SnapshotWriters.forEachValue(record, keys: keys) { value in
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: names[index])
                out.append(UInt8(ascii: ":"))
                index += 1
                switch value {
                case .null: out.append(contentsOf: "null".utf8)
                case .integer(let i): DecimalText.append(i, to: &out)
                case .bool(let b): out.append(contentsOf: b ? "true".utf8 : "false".utf8)
                case .text(let s): JSONText.appendQuoted(s, to: &out)
                }
            }
            out.append(UInt8(ascii: "}"))
            if lines { out.append(0x0A) }
        }
    }

    func finish(_ trailer: SnapshotTrailer) throws {
        if lines {
            try sink.append("{\"end\":true,\"row_count\":\(trailer.rowCount),\"digest\":\"\(trailer.digest)\"}\n")
        } else {
            try sink.append("\n],\"row_count\":\(trailer.rowCount),\"digest\":\"\(trailer.digest)\"}\n")
        }
    }
}

enum JSONText {
    /// A JSON string literal: quotes, backslashes and control characters escaped, the rest as UTF-8.
    static func quote(_ text: String) -> String {
        var out: [UInt8] = []
        appendQuoted(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { utf8 in
            out.append(UInt8(ascii: "\""))
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(byte)
                case UInt8(ascii: "\\"): out.append(byte); out.append(byte)
                case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 15)]])
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
    }
}

/// Decimal digits of an integer appended as ASCII, without an intermediate String.
enum DecimalText {
    @inline(__always)
    static func append(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }
}
