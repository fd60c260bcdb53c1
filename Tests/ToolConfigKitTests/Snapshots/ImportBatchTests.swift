import CSQLite
import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Imports larger than one batch (512 records), where a repeated pair is found through the
/// database or the filter of seen pairs rather than inside one batch.
@Suite("Import across batches")
struct ImportBatchTests {
    static func csv(_ rows: Int, repeating: (at: Int, of: Int, enabled: String)? = nil) -> String {
        var text = "user_id,tool_id,enabled\n"
        for index in 1...rows {
            if let repeating, index == repeating.at {
                text += "user-\(repeating.of),tool-\(repeating.of % 7),\(repeating.enabled)\n"
            } else {
                text += "user-\(index),tool-\(index % 7),\(index % 2)\n"
            }
        }
        return text
    }

    static func database(_ folder: TemporaryFolder, preexisting: Int = 0) throws -> SQLiteConnection {
        try migratedDatabase(at: folder.path("b.db"), rows: (0..<preexisting).map { ("old-\($0)", "t") })
    }

    static func run(_ connection: SQLiteConnection, _ folder: TemporaryFolder, _ text: String) throws -> Importer.Report {
        let path = folder.path("in-\(UUID().uuidString.prefix(6)).csv")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return try Importer(database: connection, options: .init(input: path, format: .csv, now: 5)).run()
    }

    @Test("a conflicting repeat 1,200 records later is refused with both lines, into an empty or a filled table", arguments: [0, 3])
    func conflictAcrossBatches(preexisting: Int) throws {
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder, preexisting: preexisting)
        // Record 1,203 repeats record 3 (user-3 has enabled 1) with enabled 0.
        let error = try #require(
            thrownError { _ = try Self.run(connection, folder, Self.csv(1500, repeating: (1203, 3, "0"))) } as? SnapshotError)
        #expect(error.location.line == 1204)
        #expect(error.message.contains("(line 4)"))
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == Int64(preexisting))
    }

    @Test("an identical repeat across batches is counted as a duplicate and written once", arguments: [0, 3])
    func identicalAcrossBatches(preexisting: Int) throws {
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder, preexisting: preexisting)
        let report = try Self.run(connection, folder, Self.csv(1500, repeating: (1203, 3, "1")))
        #expect(report.inserted == 1499)
        #expect(report.duplicates == 1)
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == Int64(1499 + preexisting))
        // Runs of new rows around the repeat still go in in file order.
        let users = try connection.prepare("SELECT user_id FROM user_tool_configs WHERE user_id LIKE 'user-%' ORDER BY id")
        var order: [String] = []
        while try users.step() { order.append(users.text(0) ?? "") }
        #expect(order == (1...1500).filter { $0 != 1203 }.map { "user-\($0)" })
        // Importing the same file again changes nothing.
        let again = try Self.run(connection, folder, Self.csv(1500, repeating: (1203, 3, "1")))
        #expect(again.unchanged == 1499 && again.inserted == 0 && again.duplicates == 1)
    }

    @Test("the filter of seen pairs never forgets a pair")
    func filterHasNoFalseNegatives() {
        var filter = PairFilter()
        var hashes: [UInt64] = []
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let hash = generator.next() as UInt64
            hashes.append(hash)
            _ = filter.insert(hash)
        }
        #expect(hashes.allSatisfy { !filter.insert($0) })
    }

    @Test(
        "into an empty table every column of every row lands in file order, in whole statements of 64 rows and in the rest",
        arguments: [1, 63, 64, 65, 512 + 129])
    func bulkRowsInFileOrder(rows: Int) throws {
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder)
        // Valid shapes: a 32-byte salt, a 12-byte nonce, 20 bytes of ciphertext (not decrypted
        // without a master key); every third row has no key, so NULLs go through the same path.
        func triple(_ index: Int) -> (String, String, String)? {
            guard index % 3 != 0 else { return nil }
            let byte = UInt8(index % 256)
            return (
                Base64.encode([UInt8](repeating: byte, count: 20)), Base64.encode([UInt8](repeating: byte &+ 1, count: 32)),
                Base64.encode([UInt8](repeating: byte &+ 2, count: 12))
            )
        }
        var text = "user_id,tool_id,enabled,encrypted_api_key,salt,nonce,created_at,updated_at\n"
        var expected: [String] = []
        for index in 1...rows {
            let key = triple(index)
            // Descending users, so file order is not the unique index's order.
            text +=
                "\"user-\(rows - index)-x,y\"\"z\",tool-\(index % 5),\(index % 2),"
                + "\(key?.0 ?? ""),\(key?.1 ?? ""),\(key?.2 ?? ""),\(1000 + index),\(2000 + index)\n"
            expected.append(
                [
                    "user-\(rows - index)-x,y\"z", "tool-\(index % 5)", "\(index % 2)", key?.0 ?? "-", key?.1 ?? "-", key?.2 ?? "-",
                    "\(1000 + index)", "\(2000 + index)"
                ].joined(separator: "|"))
        }
        let report = try Self.run(connection, folder, text)
        #expect(report.inserted == rows)
        let statement = try connection.prepare(
            """
            SELECT id, user_id || '|' || tool_id || '|' || enabled || '|' || coalesce(encrypted_api_key, '-') || '|' ||
                   coalesce(salt, '-') || '|' || coalesce(nonce, '-') || '|' || created_at || '|' || updated_at
            FROM user_tool_configs ORDER BY id
            """)
        var stored: [String] = []
        var ids: [Int64] = []
        while try statement.step() {
            ids.append(statement.int64(0))
            stored.append(statement.text(1) ?? "")
        }
        #expect(ids == (1...Int64(rows)).map { $0 })
        #expect(stored == expected)
    }

    @Test("a row that is not new after all fails the many-row insert and rolls back the whole transaction")
    func bulkInsertConflictRollsBack() throws {
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder, preexisting: 1)
        let writer = try SQLiteImportWriter(connection: connection)
        try connection.execute("BEGIN IMMEDIATE")
        func items(_ users: [String]) -> [ImportState.Item] {
            users.enumerated().map { index, user in
                ImportState.Item(
                    record: SnapshotRecord(userID: user, toolID: "t"), location: SnapshotLocation(file: "f", line: index + 2),
                    pairHash: 0, certainlyNew: true)
            }
        }
        try writer.insertNew(items(["a", "b", "c"])[...], now: 1)  // fewer than a statement's rows: one by one
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 4)
        // The last record of a whole statement repeats the pair that was there before.
        let users = (1..<SQLiteImportWriter.rowsPerStatement).map { "new-\($0)" } + ["old-0"]
        let error = try #require(thrownError { try writer.insertNew(items(users)[...], now: 1) } as? SQLiteError)
        #expect(error.code == SQLITE_CONSTRAINT)
        #expect(!connection.isInTransaction)
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 1)
    }

    @Test("plaintext keys imported in sixteens, in pairs and one by one decrypt in Python to what the file held")
    func plaintextKeysDecryptInPython() throws {
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder)
        let master = MasterKey.generate()
        // 37: two groups of sixteen (AVX-512), then pairs and one alone.
        let keys = (1...37).map { "sk-pair-\($0)-" + String(repeating: "é", count: $0 % 13) }
        let csv = "user_id,tool_id,api_key\n" + keys.enumerated().map { "u\($0.offset),t,\($0.element)" }.joined(separator: "\n") + "\n"
        let path = folder.path("keys.csv")
        try Data(csv.utf8).write(to: URL(fileURLWithPath: path))
        let report = try Importer(database: connection, options: .init(input: path, format: .csv, masterKey: master)).run()
        #expect(report.inserted == 37)
        let rows = try connection.prepare("SELECT encrypted_api_key, salt, nonce FROM user_tool_configs ORDER BY id")
        var secrets: [[String: String]] = []
        while try rows.step() {
            secrets.append(["encrypted_api_key": rows.text(0)!, "salt": rows.text(1)!, "nonce": rows.text(2)!])
        }
        #expect(try cryptoPeer("decrypt", ["master_key": master.base64Text, "secrets": secrets]) as? [String] == keys)
        #expect(Set(secrets.map { $0["salt"]! }).count == 37)
    }

    static func indexes(_ connection: SQLiteConnection) throws -> [String] {
        let statement = try connection.prepare(
            "SELECT name || ': ' || coalesce(sql, '') FROM sqlite_master WHERE type = 'index' ORDER BY name")
        var rows: [String] = []
        while try statement.step() { rows.append(statement.text(0) ?? "") }
        return rows
    }

    @Test("an import into an empty table leaves exactly the same indexes, whether it succeeds or fails")
    func indexesSurvive() throws {
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder)
        try connection.execute("CREATE INDEX idx_user_created ON user_tool_configs(user_id, created_at) WHERE enabled = 1")
        let before = try Self.indexes(connection)
        #expect(before.count == 6)  // 3 of 0007, one of ours, and the two UNIQUE / PRIMARY KEY autoindexes
        _ = thrownError { _ = try Self.run(connection, folder, Self.csv(1500, repeating: (1203, 3, "0"))) }
        #expect(try Self.indexes(connection) == before)
        _ = try Self.run(connection, folder, Self.csv(1500))
        #expect(try Self.indexes(connection) == before)
        #expect(try connection.queryText("PRAGMA integrity_check") == "ok")
        #expect(
            try connection.queryInt64(
                "SELECT count(*) FROM user_tool_configs INDEXED BY idx_user_tool_configs_user_id WHERE user_id = 'user-77'") == 1)
    }
}

@Suite("CSV quoting")
struct CSVQuotingTests {
    /// Quoted fields with line breaks, quotes and multi-byte text, over several 64 KiB chunks, so
    /// runs of plain bytes and quoted runs end at every kind of chunk boundary.
    @Test("the reader takes fields across chunk boundaries whole and counts lines inside quotes", arguments: [0, 1, 7, 4093])
    func fieldsAcrossChunks(shift: Int) throws {
        let folder = try TemporaryFolder()
        var text = "user_id,tool_id,enabled\n" + String(repeating: "\n", count: shift % 3)
        var expected: [(user: String, tool: String)] = []
        var line = 2 + shift % 3
        var firstLines: [Int] = []
        var index = 0
        while text.utf8.count < 5 * ByteSource.chunkSize {
            index += 1
            let breaks = index % 4
            let user =
                "u\(index)-" + String(repeating: "é", count: (index * 37 + shift) % 300) + String(repeating: "\n", count: breaks) + "\"end"
            let tool = String(repeating: "t", count: (index * 101 + shift) % 700)
            text += "\"\(user.replacingOccurrences(of: "\"", with: "\"\""))\",\(tool.isEmpty ? "\"\"" : tool),1\r\n"
            expected.append((user, tool))
            firstLines.append(line)
            line += 1 + breaks
        }
        text += "u-last,t,maybe\n"
        let path = folder.path("chunks.csv")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let reader = try CSVSnapshotReader(source: ByteSource(path: path))
        for (position, want) in expected.enumerated() {
            let raw = try #require(try reader.next())
            let values = raw.values.map { value -> String in if case .text(let t) = value { t } else { "<null>" } }
            #expect(values == [want.user, want.tool, "1"], "record \(position + 1)")
            #expect(raw.location.line == firstLines[position], "record \(position + 1)")
        }
        // The line number of an error after all that is the physical line.
        let last = try #require(try reader.next())
        let error = #expect(throws: SnapshotError.self) { _ = try RecordDecoder(format: .csv, declaredKeys: nil).decode(last) }
        #expect(error?.location.line == line)
        #expect(error?.location.field == SnapshotField.enabled)
        #expect(try reader.next() == nil)
    }

    @Test("integers in CSV: exactly an optional minus and up to 19 digits within Int64, like a strict Int64(text)")
    func decimalMatchesReference() {
        func reference(_ text: String) -> Int64? {
            let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
            guard !digits.isEmpty, digits.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
            return Int64(text)
        }
        let fixed = [
            "0", "-0", "007", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
            "+1", "", "-", "--1", "1-", "1e3", " 1", "1 ", "12345678901234567890", "00000000000000000001",
            "000000000000000000009223372036854775807", "-00000000000000000000009223372036854775808", "٣", "1\u{0}"
        ]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("-+0123456789 a99999")
        let random = (0..<20_000).map { _ in
            String((0..<Int.random(in: 0...24, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
        }
        for text in fixed + random {
            #expect(RecordDecoder.decimal(text) == reference(text), "\(text.debugDescription)")
        }
    }

    @Test("the word-at-a-time quoting check agrees with a byte-by-byte one at every position and length")
    func swarAgrees() {
        for length in 0..<40 {
            for position in -1..<length {
                for special in [UInt8(0x0A), 0x0D, 0x22, 0x2C, 0x2B, 0x2D, 0x8A, 0xAC] {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    if position >= 0 { bytes[position] = special }
                    let expected = bytes.contains { [0x0A, 0x0D, 0x22, 0x2C].contains($0) }
                    #expect(bytes.withUnsafeBufferPointer { CSVSnapshotWriter.needsQuoting($0) } == expected)
                }
            }
        }
    }
}
