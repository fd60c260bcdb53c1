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

    /// The record's values in the order of `SnapshotField.exported(keys)`; nil is "no value".
    static func values(_ record: SnapshotRecord, keys: KeyMode) -> [Value] {
        var values: [Value] = [record.id.map(Value.integer) ?? .null, .text(record.userID), .text(record.toolID), .bool(record.enabled)]
        switch (keys, record.key) {
        case (.encrypted, .encrypted(let secret)): values += [.text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)]
        case (.encrypted, _): values += [.null, .null, .null]
        case (.plaintext, .plaintext(let key)): values.append(.text(key))
        case (.sealed, .sealed(let sealed)): values.append(.text(sealed))
        case (.plaintext, _), (.sealed, _): values.append(.null)
        case (.omit, _): break
        }
        values += [record.createdAt.map(Value.integer) ?? .null, record.updatedAt.map(Value.integer) ?? .null]
        return values
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
        for (index, value) in SnapshotWriters.values(record, keys: keys).enumerated() {
            if index > 0 { sink.append(byte: UInt8(ascii: ",")) }
            switch value {
            case .null: break
            case .integer(let i): try sink.append(String(i))
            case .bool(let b): sink.append(byte: b ? UInt8(ascii: "1") : UInt8(ascii: "0"))
            case .text(let text): try Self.appendField(text, to: sink)
            }
        }
        try sink.append("\r\n")
    }

    static func appendField(_ text: String, to sink: OutputSink) throws {
        let needsQuotes = text.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }
        guard needsQuotes else { return try sink.append(text) }
        try sink.append("\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
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
    private let names: [String]

    init(sink: OutputSink, keys: KeyMode, lines: Bool) {
        self.sink = sink
        self.keys = keys
        self.lines = lines
        names = SnapshotField.exported(keys).map { JSONText.quote($0) }
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
        var text = "{"
        for (index, value) in SnapshotWriters.values(record, keys: keys).enumerated() {
            if index > 0 { text += "," }
            text += names[index] + ":"
            switch value {
            case .null: text += "null"
            case .integer(let i): text += String(i)
            case .bool(let b): text += b ? "true" : "false"
            case .text(let s): text += JSONText.quote(s)
            }
        }
        try sink.append(lines ? text + "}\n" : text + "}")
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
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

import Foundation
