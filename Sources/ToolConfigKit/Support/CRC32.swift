/// CRC-32/ISO-HDLC (zlib's, Python's `zlib.crc32`): what sqlx hashes a database name with for its
/// migration lock. Hand-written from the standard table: the one use is a name of a few bytes,
/// once per migrate, and Swift on Linux has no zlib module without a new system target.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        return crc
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        ~bytes.reduce(~UInt32(0)) { crc, byte in table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    }
}
