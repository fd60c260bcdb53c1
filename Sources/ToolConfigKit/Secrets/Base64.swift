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
}
