import Foundation

/// A JSON value as snapshot readers need it: numbers are integers (a snapshot has no fractions).
enum JSONValue: Equatable {
    case string(String)
    case integer(Int64)
    case fraction(String)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.fraction(let a), .fraction(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.null, .null): true
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    var kind: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .fraction: "a number with a fraction or exponent"
        case .bool: "a boolean"
        case .null: "null"
        case .array: "an array"
        case .object: "an object"
        }
    }

    var asField: FieldValue {
        switch self {
        case .string(let s): .text(s)
        case .integer(let i): .integer(i)
        case .bool(let b): .bool(b)
        case .null: .null
        default: .unsupported(kind)
        }
    }
}

/// A strict, streaming JSON tokenizer over a ByteSource (RFC 8259), with the bounds of
/// SnapshotLimits. Errors carry the line where they were found.
struct JSONScanner {
    let source: ByteSource

    func error(_ message: String, field: String? = nil, record: Int? = nil) -> SnapshotError {
        SnapshotError(SnapshotLocation(file: source.name, line: source.line, record: record, field: field), message)
    }

    func skipWhitespace() throws {
        var run = 0
        while let byte = try source.peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            _ = try source.next()
            run += 1
            if run > SnapshotLimits.whitespaceBytes {
                throw error("more than \(SnapshotLimits.whitespaceBytes) bytes of whitespace in a row")
            }
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    func peekToken() throws -> UInt8? {
        try skipWhitespace()
        return try source.peek()
    }

    func expect(_ byte: UInt8, _ what: String) throws {
        try skipWhitespace()
        guard let found = try source.next() else { throw error("the JSON ends early: expected \(what)") }
        guard found == byte else { throw error("expected \(what), found \(Self.describe(found))") }
    }

    /// One value, holding at most `SnapshotLimits.values` values inside it.
    func value(depth: Int = 0) throws -> JSONValue {
        var budget = SnapshotLimits.values
        return try value(depth: depth, budget: &budget)
    }

    /// One object (a record), holding at most `SnapshotLimits.values` values, nested ones included.
    func object(depth: Int) throws -> [(String, JSONValue)] {
        var budget = SnapshotLimits.values
        return try object(depth: depth, budget: &budget)
    }

    /// `budget` is what the enclosing record may still hold; every value spends one.
    private func value(depth: Int, budget: inout Int) throws -> JSONValue {
        guard depth < SnapshotLimits.depth else { throw error("JSON nested deeper than \(SnapshotLimits.depth) levels") }
        budget -= 1
        guard budget >= 0 else { throw error("more than \(SnapshotLimits.values) JSON values in one record, nested ones included") }
        guard let byte = try peekToken() else { throw error("the JSON ends early: expected a value") }
        switch byte {
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "{"): return .object(try object(depth: depth, budget: &budget))
        case UInt8(ascii: "["):
            _ = try source.next()
            var items: [JSONValue] = []
            if try peekToken() == UInt8(ascii: "]") { _ = try source.next(); return .array(items) }
            while true {
                items.append(try value(depth: depth + 1, budget: &budget))
                guard items.count <= SnapshotLimits.fields else {
                    throw error("an array of more than \(SnapshotLimits.fields) items inside a record")
                }
                guard let separator = try peekToken() else { throw error("the JSON ends early inside an array") }
                _ = try source.next()
                if separator == UInt8(ascii: "]") { return .array(items) }
                guard separator == UInt8(ascii: ",") else { throw error("expected , or ] in an array, found \(Self.describe(separator))") }
            }
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("expected a JSON value, found \(Self.describe(byte))")
        }
    }

    /// An object's members in order; duplicate names are an error.
    private func object(depth: Int, budget: inout Int) throws -> [(String, JSONValue)] {
        try expect(UInt8(ascii: "{"), "{")
        var members: [(String, JSONValue)] = []
        var names = Set<String>()
        if try peekToken() == UInt8(ascii: "}") { _ = try source.next(); return members }
        while true {
            guard try peekToken() == UInt8(ascii: "\"") else { throw error("expected a member name in quotes") }
            let name = try string()
            guard names.insert(name).inserted else { throw error("the member appears twice in one object", field: name) }
            try expect(UInt8(ascii: ":"), ": after a member name")
            members.append((name, try value(depth: depth + 1, budget: &budget)))
            guard members.count <= SnapshotLimits.fields else { throw error("an object with more than \(SnapshotLimits.fields) members") }
            guard let separator = try peekToken() else { throw error("the JSON ends early inside an object") }
            _ = try source.next()
            if separator == UInt8(ascii: "}") { return members }
            guard separator == UInt8(ascii: ",") else { throw error("expected , or } in an object, found \(Self.describe(separator))") }
        }
    }

    func string() throws -> String {
        try expect(UInt8(ascii: "\""), "a string")
        var bytes: [UInt8] = []
        while true {
            guard let byte = try source.next() else { throw error("the JSON ends inside a string") }
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: bytes, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                return text
            case UInt8(ascii: "\\"):
                guard let escape = try source.next() else { throw error("the JSON ends inside a string") }
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(escape)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard try source.next() == UInt8(ascii: "\\"), try source.next() == UInt8(ascii: "u") else {
                            throw error("an unpaired UTF-16 surrogate in a \\u escape")
                        }
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("an unpaired UTF-16 surrogate in a \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("an unpaired UTF-16 surrogate in a \\u escape")
                    }
                    if scalar == 0 { throw error("a NUL character (\\u0000) in a string") }
                    bytes.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default:
                    throw error("an invalid escape \\\(Self.describe(escape)) in a string")
                }
            case 0:
                throw error("a NUL byte in a string")
            case 0x01...0x1F:
                throw error("an unescaped control character in a string")
            default:
                bytes.append(byte)
            }
            if bytes.count > SnapshotLimits.fieldBytes { throw error("a string longer than \(SnapshotLimits.fieldBytes) bytes") }
        }
    }

    private func hex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = try source.next(), let digit = Self.hexDigit(byte) else { throw error("an invalid \\u escape") }
            value = value << 4 | digit
        }
        return value
    }

    private static func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    private func literal(_ word: String) throws {
        for expected in word.utf8 {
            guard try source.next() == expected else { throw error("invalid literal: expected \(word)") }
        }
    }

    private func number() throws -> JSONValue {
        var text: [UInt8] = []
        while let byte = try source.peek(),
            byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        {
            text.append(byte)
            _ = try source.next()
            guard text.count <= SnapshotLimits.numberLength else {
                throw error("a number longer than \(SnapshotLimits.numberLength) characters")
            }
        }
        let literal = String(decoding: text, as: UTF8.self)
        let digits = text.first == UInt8(ascii: "-") ? text.dropFirst() : text[...]
        let integerShape =
            !digits.isEmpty && digits.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            && (digits.count == 1 || digits.first != UInt8(ascii: "0"))
        if integerShape {
            guard let value = Int64(literal) else { throw error("the integer \(literal) is out of range") }
            return .integer(value)
        }
        guard literal.wholeMatch(of: /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/) != nil else {
            throw error("an invalid number")
        }
        return .fraction(literal)
    }

    static func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : String(format: "byte 0x%02X", byte)
    }
}
