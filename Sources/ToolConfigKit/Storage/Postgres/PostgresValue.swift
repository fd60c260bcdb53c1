import CPostgres

/// A parameter of a query (`$1`, `$2`, ...). Each is sent with its type, in text format except
/// `bytes`, which goes as raw binary (no escaping of BYTEA).
public enum PostgresValue: Sendable, Hashable {
    /// NULL of no stated type: the server infers it from where `$n` stands.
    case null
    case text(String)
    case integer(Int64)
    case boolean(Bool)
    case double(Double)
    case bytes([UInt8])

    /// The type OID sent with the value (pg_type: 25 text, 20 int8, 16 bool, 701 float8, 17 bytea).
    var typeOID: Oid {
        switch self {
        case .null: 0
        case .text: 25
        case .integer: 20
        case .boolean: 16
        case .double: 701
        case .bytes: 17
        }
    }
}

extension PostgresValue {
    /// A text[] in the array's text form (`{"a","b"}`): every element quoted, with its quotes
    /// and backslashes escaped. For a parameter the SQL casts (`$1::text[]`).
    static func textArray(_ elements: [String]) -> PostgresValue {
        var literal: [UInt8] = [UInt8(ascii: "{")]
        for (index, element) in elements.enumerated() {
            if index > 0 { literal.append(UInt8(ascii: ",")) }
            literal.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { literal.append(UInt8(ascii: "\\")) }
                literal.append(byte)
            }
            literal.append(UInt8(ascii: "\""))
        }
        literal.append(UInt8(ascii: "}"))
        return .text(String(decoding: literal, as: UTF8.self))
    }
}

/// Reads a value the server sent in text format, for query results and COPY rows alike: nil for
/// NULL, `mismatch(expected)` when the text is not of the type asked for.
enum PostgresText {
    static func read<T>(
        _ text: String?, _ parse: (String) -> T?, _ expected: String,
        mismatch: (String) -> PostgresError
    ) throws(PostgresError) -> T? {
        guard let text else { return nil }
        guard let value = parse(text) else { throw mismatch(expected) }
        return value
    }

    static func bool(_ text: String) -> Bool? { text == "t" ? true : text == "f" ? false : nil }
}

/// Parameters laid out as libpq takes them: one buffer holding every value, each text value
/// NUL-terminated, with type, length and format arrays beside it.
struct EncodedParameters {
    private var types: [Oid] = []
    private var storage: [UInt8] = []
    private var offsets: [Int] = []  // -1 for NULL
    private var lengths: [Int32] = []
    private var formats: [Int32] = []

    init(_ values: [PostgresValue]) {
        for value in values {
            types.append(value.typeOID)
            var bytes: [UInt8]
            var format: Int32 = 0
            switch value {
            case .null:
                offsets.append(-1)
                lengths.append(0)
                formats.append(0)
                continue
            case .text(let text): bytes = Array(text.utf8)
            case .integer(let integer): bytes = Array(String(integer).utf8)
            case .boolean(let bool): bytes = bool ? [UInt8(ascii: "t")] : [UInt8(ascii: "f")]
            case .double(let double):
                bytes = Array(
                    (double.isNaN ? "NaN" : double == .infinity ? "Infinity" : double == -.infinity ? "-Infinity" : "\(double)").utf8)
            case .bytes(let raw):
                bytes = raw
                format = 1
            }
            offsets.append(storage.count)
            lengths.append(Int32(bytes.count))
            formats.append(format)
            storage += bytes
            storage.append(0)
        }
    }

    var count: Int32 { Int32(types.count) }

    /// Calls `body` with the type, value, length and format arrays.
    func withArrays<R>(
        _ body: (UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) -> R {
        storage.withUnsafeBufferPointer { buffer in
            let base = buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
            let values: [UnsafePointer<CChar>?] = offsets.map { offset in offset < 0 ? nil : base.map { $0 + offset } }
            return types.withUnsafeBufferPointer { types in
                values.withUnsafeBufferPointer { values in
                    lengths.withUnsafeBufferPointer { lengths in
                        formats.withUnsafeBufferPointer { formats in
                            body(types.baseAddress, values.baseAddress, lengths.baseAddress, formats.baseAddress)
                        }
                    }
                }
            }
        }
    }
}
