import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The exact bytes an export writes: escapes, unicode, invalid UTF-8 in the database, key order,
/// integers at their bounds, rows without a key or with part of one, header, trailer and digest.
/// Backups written before must keep importing, and two exports of the same rows must stay
/// identical, so the expected files (fixtures/export-format) were written by the exporter as it
/// was before its writers were made faster (commit 14c5191); they are not recomputed here.
@Suite("Snapshot output format")
struct SnapshotOutputFormatTests {
    /// Four rows meant to reach every branch of the writers: escapes at the edges of the 8-byte
    /// words the scanners read, control characters, DEL, U+2028, emoji, bytes that are not UTF-8.
    static func database(_ folder: TemporaryFolder) throws -> SnapshotFixtures.SQLiteFile {
        let db = try SnapshotFixtures.SQLiteFile(folder)
        let master = try SnapshotFixtures.master()
        func triple(_ plaintext: String, _ first: UInt8) throws -> StoredSecret {
            try SecretCipher.encrypt(
                plaintext, masterKey: master, salt: (0..<32).map { first &+ $0 }, nonce: (0..<12).map { first &+ $0 &* 3 }
            ).encoded
        }
        let pin = try triple("sk-\"pin\"\\ключ\n", 1), empty = try triple("", 7)
        let insert = try db.connection.prepare(
            """
            INSERT INTO user_tool_configs (id, user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            """)
        try insert.run([
            .integer(1), .text("q\"b\\s/t\tn\nr\r"), .text("c\u{01}\u{1F}\u{7F} é 中文 🔑 \u{2028}"), .integer(1),
            .text(pin.encryptedAPIKey), .text(pin.salt), .text(pin.nonce), .integer(-5), .integer(.max)
        ])
        try insert.run([.integer(2), .text(""), .text("placeholder"), .integer(2), .null, .null, .null, .integer(0), .integer(.min)])
        try db.connection.execute("UPDATE user_tool_configs SET tool_id = CAST(X'66FF6F' AS TEXT) WHERE id = 2")
        try insert.run([
            .integer(3), .text("plain-ascii-user-0123456789"), .text("builtin-exa-web-search"), .integer(0),
            .text(pin.encryptedAPIKey), .text(pin.salt), .null, .integer(1_700_000_000), .integer(1_700_000_001)
        ])
        try insert.run([
            .integer(4), .text("abcdefgh\"ijklmno\\pqrstuv\u{1}"), .text("t"), .integer(1),
            .text(empty.encryptedAPIKey), .text(empty.salt), .text(empty.nonce), .integer(1), .integer(2)
        ])
        return db
    }

    /// fixtures/export-format/KEYS.FORMAT
    static func expected(_ format: SnapshotFormat, _ keys: KeyMode) throws -> Data {
        try Data(contentsOf: Repository.root.appendingPathComponent("fixtures/export-format/\(keys.rawValue).\(format.rawValue)"))
    }

    @Test(
        "export writes exactly the bytes it wrote before the writers were made faster (fixtures/export-format)",
        arguments: SnapshotFormat.allCases, [KeyMode.encrypted, .plaintext, .omit])
    func pinnedBytes(format: SnapshotFormat, keys: KeyMode) throws {
        let folder = try TemporaryFolder()
        let db = try Self.database(folder)
        let path = folder.path("out")
        _ = try SnapshotFixtures.export(db, to: path, format, keys: keys, master: try SnapshotFixtures.master())
        let written = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(written == (try Self.expected(format, keys)), "\(String(decoding: written, as: UTF8.self))")
    }

    @Test("the word-at-a-time scans agree with byte-by-byte ones at every position and length")
    func wordScansAgree() {
        for length in 0..<40 {
            for position in -1..<length {
                for special in [UInt8(0x00), 0x09, 0x1F, 0x20, 0x21, 0x22, 0x5B, 0x5C, 0x5D, 0x7F, 0x80, 0x9F, 0xA2, 0xDC, 0xFF] {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    if position >= 0 { bytes[position] = special }
                    let plain = bytes.firstIndex { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C } ?? length
                    #expect(bytes.withUnsafeBufferPointer { JSONText.plainLength($0) } == plain, "\(bytes)")
                    #expect(bytes.withUnsafeBufferPointer { StoredRow.isASCII($0) } == bytes.allSatisfy { $0 < 0x80 }, "\(bytes)")
                }
            }
        }
    }

    @Test("JSON strings are escaped as a byte-by-byte writer escapes them, on random bytes")
    func escapesAgree() {
        /// The writer before it copied runs of plain bytes at once.
        func reference(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = [0x22]
            for byte in bytes {
                switch byte {
                case 0x22, 0x5C: out += [0x5C, byte]
                case 0x0A: out += Array(#"\n"#.utf8)
                case 0x0D: out += Array(#"\r"#.utf8)
                case 0x09: out += Array(#"\t"#.utf8)
                case 0..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
                default: out.append(byte)
                }
            }
            return out + [0x22]
        }
        var generator = SystemRandomNumberGenerator()
        // Mostly plain text with escapes sprinkled in, so runs of every length occur.
        let alphabet: [UInt8] = Array("abc xyz/é".utf8) + [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F, 0x22, 0x5C, 0x7F, 0xFF]
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...70, using: &generator)).map { _ in
                Int.random(in: 0..<8, using: &generator) == 0 ? alphabet.randomElement(using: &generator)! : UInt8(ascii: "m")
            }
            // The smallest buffer, so that long strings run out of room and are written again.
            var out = CursorBuffer(capacity: 0)
            out.write { cursor in bytes.withUnsafeBufferPointer { JSONText.appendQuoted($0, to: &cursor) } }
            #expect(out.withBytes { Array($0) } == reference(bytes), "\(bytes)")
        }
    }

    @Test("a cursor buffer holds exactly what was written, across runs out of room, short and long copies, and take()")
    func cursorBuffer() {
        var generator = SystemRandomNumberGenerator()
        var buffer = CursorBuffer(capacity: 10)
        var expected: [UInt8] = [], taken: [UInt8] = []
        for round in 0..<300 {
            // Pieces of 0 to 40 bytes (the copy takes other paths below 8, from 8 to 16, above
            // 16) and now and then one much larger than the storage.
            let pieces = (0..<Int.random(in: 0...5, using: &generator)).map { _ in
                (0..<(round % 50 == 7 ? 5000 : Int.random(in: 0...40, using: &generator))).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
            }
            buffer.write { cursor in
                for piece in pieces {
                    cursor.append(UInt8(truncatingIfNeeded: piece.count))
                    cursor.append(piece)
                }
            }
            for piece in pieces { expected += [UInt8(truncatingIfNeeded: piece.count)] + piece }
            if round % 97 == 0 {
                taken += buffer.take()
                #expect(buffer.count == 0)
            }
        }
        #expect(taken + buffer.withBytes { Array($0) } == expected)
    }

    @Test(
        "records larger than the output buffer are written whole, between ordinary ones",
        arguments: SnapshotFormat.allCases, [KeyMode.plaintext, .encrypted])
    func largeRecords(format: SnapshotFormat, keyMode: KeyMode) throws {
        let folder = try TemporaryFolder()
        let db = try SnapshotFixtures.SQLiteFile(folder)
        let master = try SnapshotFixtures.master()
        // 300,000 bytes each, escaped to up to 6x that in JSON: past the 128 KiB buffer and its doubling.
        let large = [String(repeating: "x", count: 300_000), String(repeating: "\u{1}\"", count: 150_000)]
        for index in 0..<6 {
            try db.insert("user-\(index)", index % 3 == 1 ? large[index / 3] : "tool", enabled: true, key: "sk-\(index)", master: master)
        }
        let path = folder.path("out")
        _ = try SnapshotFixtures.export(db, to: path, format, keys: keyMode, master: master)
        let reader = try SnapshotReaders.open(path: path, format: format)
        let decoder = RecordDecoder(format: format, declaredKeys: reader.header?.keys)
        var records: [SnapshotRecord] = []
        while let raw = try reader.next() { records.append(try decoder.decode(raw)) }
        let users: [String] = (0..<6).map { "user-\($0)" }
        let tools: [String] = (0..<6).map { $0 % 3 == 1 ? large[$0 / 3] : "tool" }
        let keys: [String] = (0..<6).map { "sk-\($0)" }
        #expect(records.map(\.userID) == users)
        #expect(records.map(\.toolID) == tools)
        let opened = try records.map { record -> String? in
            switch record.key {
            case .plaintext(let key): key
            case .encrypted(let secret): try SecretCipher.decrypt(secret, masterKey: master)
            default: nil
            }
        }
        #expect(opened == keys)
    }
}
