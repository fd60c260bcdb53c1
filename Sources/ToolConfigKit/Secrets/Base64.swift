/// Standard base64 with padding, strictly: the application that owns the database decodes with
/// Rust's canonical STANDARD engine, so anything it would reject (missing padding, whitespace,
/// the URL alphabet, non-zero trailing bits) is rejected here too.
///
/// Hand-written rather than Foundation's: every stored secret is three values to decode (and a
/// rotation three to encode), and Foundation's decoder has to be followed by an encode to prove
/// the text canonical; a rotation of 1M v2 values spent 16 % of its CPU time there (perf). One
/// pass over the bytes with a table does both.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let input = Array(bytes)
        guard !input.isEmpty else { return "" }
        let table = alphabet
        return String(unsafeUninitializedCapacity: (input.count + 2) / 3 * 4) { out in
            var o = 0, i = 0
            while i + 3 <= input.count {
                let group = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                out[o] = table[Int(group >> 18)]
                out[o + 1] = table[Int(group >> 12 & 0x3F)]
                out[o + 2] = table[Int(group >> 6 & 0x3F)]
                out[o + 3] = table[Int(group & 0x3F)]
                i += 3
                o += 4
            }
            let rest = input.count - i
            if rest > 0 {
                let group = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                out[o] = table[Int(group >> 18)]
                out[o + 1] = table[Int(group >> 12 & 0x3F)]
                out[o + 2] = rest == 2 ? table[Int(group >> 6 & 0x3F)] : UInt8(ascii: "=")
                out[o + 3] = UInt8(ascii: "=")
                o += 4
            }
            return o
        }
    }

    public static func decode(_ text: String, field: String) throws(SecretError) -> [UInt8] {
        var text = text
        guard
            let bytes = text.withUTF8({ bytes -> [UInt8]? in
                guard let count = decodedCount(bytes) else { return nil }
                // Not through the initializer for none: it writes the count into the shared empty-array
                // storage, a race with every other thread's empty array (ThreadSanitizer reports it).
                guard count > 0 else { return [] }
                return [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                    decode(bytes, into: UnsafeMutableRawBufferPointer(out), count: count)
                    initialized = count
                }
            })
        else { throw .invalidBase64(field: field) }
        return bytes
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
        return text.withUTF8 { decodedCount($0) }
    }

    static func decodedCount(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
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

    /// `count` bytes (what `decodedCount` gave) of text already checked by `decodedCount`.
    private static func decode(_ bytes: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableRawBufferPointer, count: Int) {
        let table = alphabetValue
        var o = 0
        for i in stride(from: 0, to: bytes.count, by: 4) {
            // Padding ('=') is only where decodedCount allowed it; its value counts as 0.
            var group: UInt32 = 0
            for j in 0..<4 { group = group << 6 | UInt32(bytes[i + j] == UInt8(ascii: "=") ? 0 : table[Int(bytes[i + j])]) }
            for k in 0..<3 where o + k < count { out[o + k] = UInt8(truncatingIfNeeded: group >> (16 - 8 * k)) }
            o += 3
        }
    }

    /// Decodes canonical base64 text of a secret straight into wiped-on-release storage, or nil
    /// with the same acceptance as `decode`.
    static func decodeSecret(_ text: Substring) -> SecureBytes? {
        func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> SecureBytes? {
            guard let count = decodedCount(bytes) else { return nil }
            return SecureBytes(count: count) { out in Self.decode(bytes, into: out, count: count) }
        }
        if let result = text.utf8.withContiguousStorageIfAvailable(decode) { return result }
        var copy = Array(text.utf8)
        defer { AESGCM.wipe(&copy) }
        return copy.withUnsafeBufferPointer(decode)
    }

    private static let alphabetValue: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in alphabet.enumerated() {
            table[Int(byte)] = UInt8(value)
        }
        return table
    }()
}
