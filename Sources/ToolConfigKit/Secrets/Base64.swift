import Foundation

/// Standard base64 with padding, strictly: the application that owns the database decodes with
/// Rust's canonical STANDARD engine, so anything it would reject (missing padding, whitespace,
/// the URL alphabet, non-zero trailing bits) is rejected here too.
public enum Base64 {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
    }

    public static func decode(_ text: String, field: String) throws(SecretError) -> [UInt8] {
        guard let data = Data(base64Encoded: text), data.base64EncodedString() == text else {
            throw .invalidBase64(field: field)
        }
        return [UInt8](data)
    }

    /// Decodes and checks the decoded length against an exact expectation.
    public static func decode(_ text: String, field: String, length: Int) throws(SecretError) -> [UInt8] {
        let bytes = try decode(text, field: field)
        guard bytes.count == length else {
            throw .wrongLength(field: field, expected: "\(length)", actual: bytes.count)
        }
        return bytes
    }

    /// The decoded length of canonical standard base64, or nil: the same acceptance as `decode`
    /// without decoding or allocating (import validates millions of triples it only stores).
    public static func decodedCount(_ text: String) -> Int? {
        var text = text
        return text.withUTF8 { bytes -> Int? in
            guard bytes.count % 4 == 0 else { return nil }
            if bytes.isEmpty { return 0 }
            var padding = 0
            if bytes[bytes.count - 1] == UInt8(ascii: "=") { padding = bytes[bytes.count - 2] == UInt8(ascii: "=") ? 2 : 1 }
            let body = bytes.count - padding
            // One read of the table: each access to a static goes through its lazy initialiser.
            let table = alphabetValue
            for index in 0..<body where table[Int(bytes[index])] == 0xFF { return nil }
            // Canonical: the bits that padding leaves unused must be zero.
            let last = table[Int(bytes[body - 1])]
            if padding == 1, last & 0x03 != 0 { return nil }
            if padding == 2, last & 0x0F != 0 { return nil }
            return bytes.count / 4 * 3 - padding
        }
    }

    private static let alphabetValue: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(byte)] = UInt8(value)
        }
        return table
    }()
}
