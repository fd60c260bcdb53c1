/// A record as writers and the digest see it: its values in export order and its fields in the
/// digest's canonical order. `SnapshotRecord` is one; `StoredRow`, a row of the export query read
/// in place, is the other (exports of stored keys never build Strings per row).
protocol ExportRecord {
    /// The values in the order of `SnapshotField.exported(keys)`.
    func forEachValue(keys: KeyMode, _ body: (ExportValue) -> Void)
    /// id, user_id, tool_id, enabled ("1"/"0"), created_at, updated_at, then the key: "none", or
    /// "plaintext" + key, "encrypted" + the triple, "sealed" + the sealed key.
    func forEachDigestField(_ body: (ExportValue) -> Void)
}

/// One value to write. `.bytes` is UTF-8 read in place (valid only during the visit).
enum ExportValue {
    case null, integer(Int64), text(String), bool(Bool), bytes(UnsafeBufferPointer<UInt8>)
}

/// Writes records one at a time in one of the snapshot formats.
protocol SnapshotWriter {
    func begin(_ header: SnapshotHeader) throws
    func write(_ record: some ExportRecord) throws
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
}

extension SnapshotRecord: ExportRecord {
    func forEachValue(keys: KeyMode, _ body: (ExportValue) -> Void) {
        body(id.map(ExportValue.integer) ?? .null)
        body(.text(userID))
        body(.text(toolID))
        body(.bool(enabled))
        switch (keys, key) {
        case (.encrypted, .encrypted(let secret)): body(.text(secret.encryptedAPIKey)); body(.text(secret.salt)); body(.text(secret.nonce))
        case (.encrypted, _): body(.null); body(.null); body(.null)
        case (.plaintext, .plaintext(let key)): body(.text(key))
        case (.sealed, .sealed(let sealed)): body(.text(sealed))
        case (.plaintext, _), (.sealed, _): body(.null)
        case (.omit, _): break
        }
        body(createdAt.map(ExportValue.integer) ?? .null)
        body(updatedAt.map(ExportValue.integer) ?? .null)
    }

    func forEachDigestField(_ body: (ExportValue) -> Void) {
        body(id.map(ExportValue.integer) ?? .null)
        body(.text(userID))
        body(.text(toolID))
        body(.text(enabled ? "1" : "0"))
        body(createdAt.map(ExportValue.integer) ?? .null)
        body(updatedAt.map(ExportValue.integer) ?? .null)
        switch key {
        case .none: body(.text("none"))
        case .plaintext(let key): body(.text("plaintext")); body(.text(key))
        case .encrypted(let secret):
            body(.text("encrypted")); body(.text(secret.encryptedAPIKey)); body(.text(secret.salt)); body(.text(secret.nonce))
        case .sealed(let sealed): body(.text("sealed")); body(.text(sealed))
        }
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

    func write(_ record: some ExportRecord) throws {
        try sink.withBuffer { out in
            var first = true
            record.forEachValue(keys: keys) { value in
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                switch value {
                case .null: break
                case .integer(let i): DecimalText.append(i, to: &out)
                case .bool(let b): out.append(b ? UInt8(ascii: "1") : UInt8(ascii: "0"))
                case .text(var text): text.withUTF8 { Self.appendField($0, to: &out) }
                case .bytes(let bytes): Self.appendField(bytes, to: &out)
                }
            }
            out.append(0x0D)
            out.append(0x0A)
        }
    }

    static func appendField(_ utf8: UnsafeBufferPointer<UInt8>, to out: inout ByteCursor) {
        let needsQuotes = needsQuoting(utf8)
        // An empty string is written "" so that it reads back as empty, not as no value.
        guard needsQuotes || utf8.isEmpty else { return out.append(utf8) }
        out.append(UInt8(ascii: "\""))
        for byte in utf8 {
            if byte == UInt8(ascii: "\"") { out.append(byte) }
            out.append(byte)
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Whether a field holds LF, CR, '"' or ','. Eight bytes at a time (SWAR: a byte equal to c
    /// makes (w ^ c*0x01..01) have a zero byte), since this scan runs over every exported byte.
    static func needsQuoting(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasZeroByte(_ v: UInt64) -> Bool { (v &- ones) & ~v & highs != 0 }
        var index = 0
        if let base = utf8.baseAddress {
            let raw = UnsafeRawPointer(base)
            while index + 8 <= utf8.count {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if hasZeroByte(word ^ (ones &* 0x0A)) || hasZeroByte(word ^ (ones &* 0x0D))
                    || hasZeroByte(word ^ (ones &* 0x22)) || hasZeroByte(word ^ (ones &* 0x2C))
                {
                    return true
                }
                index += 8
            }
        }
        while index < utf8.count {
            switch utf8[index] {
            case 0x0A, 0x0D, 0x22, 0x2C: return true
            default: index += 1
            }
        }
        return false
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
    /// What goes before each exported field's value, as UTF-8: `{"id":`, then `,"user_id":`, ...,
    /// in one array (`prefixEnds[i]` is where the i-th ends): an array per field cost a retain and
    /// a release per value written.
    private let prefixes: [UInt8]
    private let prefixEnds: [Int]

    init(sink: OutputSink, keys: KeyMode, lines: Bool) {
        self.sink = sink
        self.keys = keys
        self.lines = lines
        let fields = SnapshotField.exported(keys).enumerated().map { index, name in
            Array(((index == 0 ? "{" : ",") + JSONText.quote(name) + ":").utf8)
        }
        prefixes = fields.flatMap { $0 }
        prefixEnds = fields.reduce(into: []) { ends, field in ends.append((ends.last ?? 0) + field.count) }
    }

    func begin(_ header: SnapshotHeader) throws {
        var text =
            "{\"format\":\"\(SnapshotHeader.formatName)\",\"version\":\(SnapshotHeader.formatVersion),\"keys\":\"\(header.keys.rawValue)\""
        if let sealing = header.sealing {
            text += ",\"sealing\":{" + sealing.json.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }
        try sink.append(lines ? text + "}\n" : text + ",\"rows\":[")
    }

    func write(_ record: some ExportRecord) throws {
        let separator = lines || first ? nil : UInt8(ascii: ",")
        first = false
        try sink.withBuffer { out in
            // JSON: the array's records one per line, "\n" before the first and ",\n" before the rest.
            if !lines {
                if let separator { out.append(separator) }
                out.append(0x0A)
            }
            var index = 0
            prefixes.withUnsafeBufferPointer { prefixes in
                prefixEnds.withUnsafeBufferPointer { ends in
                    record.forEachValue(keys: keys) { value in
                        out.append(UnsafeBufferPointer(rebasing: prefixes[(index == 0 ? 0 : ends[index - 1])..<ends[index]]))
                        index += 1
                        Self.append(value, to: &out)
                    }
                }
            }
            out.append(UInt8(ascii: "}"))
            if lines { out.append(0x0A) }
        }
    }

    @inline(__always)
    private static func append(_ value: ExportValue, to out: inout ByteCursor) {
        switch value {
        case .null: out.append(JSONText.null)
        case .integer(let i): DecimalText.append(i, to: &out)
        case .bool(let b): out.append(b ? JSONText.true : JSONText.false)
        case .text(var text): text.withUTF8 { JSONText.appendQuoted($0, to: &out) }
        case .bytes(let bytes): JSONText.appendQuoted(bytes, to: &out)
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
    static let null = Array("null".utf8), `true` = Array("true".utf8), `false` = Array("false".utf8)

    /// A JSON string literal: quotes, backslashes and control characters escaped, the rest as UTF-8.
    static func quote(_ text: String) -> String {
        var out = CursorBuffer(capacity: text.utf8.count * 6 + 2)
        var text = text
        out.write { cursor in text.withUTF8 { appendQuoted($0, to: &cursor) } }
        return out.withBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// Runs of bytes that need no escape go out in one copy each; `plainLength` finds them.
    static func appendQuoted(_ utf8: UnsafeBufferPointer<UInt8>, to out: inout ByteCursor) {
        out.append(UInt8(ascii: "\""))
        var start = 0
        while true {
            let end = start + plainLength(UnsafeBufferPointer(rebasing: utf8[start...]))
            if end > start { out.append(UnsafeBufferPointer(rebasing: utf8[start..<end])) }
            guard end < utf8.count else { break }
            appendEscaped(utf8[end], to: &out)
            start = end + 1
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ byte: UInt8, to out: inout ByteCursor) {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
        case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
        case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            out.append([
                UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 15)]
            ])
        }
    }

    /// How many leading bytes need no escape (none is '"', '\\' or below 0x20). Eight bytes at a
    /// time (SWAR, as `CSVSnapshotWriter.needsQuoting`): this scan runs over every exported byte.
    static func plainLength(_ utf8: UnsafeBufferPointer<UInt8>) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        // A byte below n (n <= 0x80) sets its high bit in (w - n*ones) & ~w & highs; a byte equal
        // to c is a zero byte of w ^ c*ones. Exact as a yes/no for the whole word.
        @inline(__always) func hasZeroByte(_ v: UInt64) -> Bool { (v &- ones) & ~v & highs != 0 }
        @inline(__always) func hasControl(_ v: UInt64) -> Bool { (v &- ones &* 0x20) & ~v & highs != 0 }
        var index = 0
        if let base = utf8.baseAddress {
            let raw = UnsafeRawPointer(base)
            while index + 8 <= utf8.count {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if hasControl(word) || hasZeroByte(word ^ (ones &* 0x22)) || hasZeroByte(word ^ (ones &* 0x5C)) { break }
                index += 8
            }
        }
        while index < utf8.count {
            switch utf8[index] {
            case 0..<0x20, 0x22, 0x5C: return index
            default: index += 1
            }
        }
        return index
    }
}

/// Decimal digits of an integer as ASCII, without an intermediate String.
enum DecimalText {
    /// Calls `body` with the digits (after a minus sign when negative).
    @inline(__always)
    static func withDigits<R>(_ value: Int64, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        var magnitude = value.magnitude
        // At most 19 digits and a sign.
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &digits) { raw in
            raw.withMemoryRebound(to: UInt8.self) { buffer in
                var start = buffer.count
                repeat {
                    start -= 1
                    buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                } while magnitude > 0
                if value < 0 {
                    start -= 1
                    buffer[start] = UInt8(ascii: "-")
                }
                return body(UnsafeBufferPointer(rebasing: buffer[start...]))
            }
        }
    }

    @inline(__always)
    static func append(_ value: Int64, to out: inout ByteCursor) {
        withDigits(value) { out.append($0) }
    }
}
