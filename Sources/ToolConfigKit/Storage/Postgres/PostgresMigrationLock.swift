/// sqlx's migration lock on PostgreSQL: the session-level advisory lock its migrator holds while it
/// migrates. toolcfg takes the same one, so it and the application never migrate at once.
enum PostgresMigrationLock {
    /// sqlx's `generate_lock_id`: 0x3d32ad9e * crc32(database name) as a signed 64-bit integer.
    /// The product of a 30-bit and a 32-bit number never overflows; wrapping says so anyway.
    static func id(database name: String) -> Int64 {
        0x3d32_ad9e &* Int64(CRC32.checksum(name.utf8))
    }
}
