import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Export and import on PostgreSQL, against the test server: the same bytes as SQLite's export of
/// the same rows, round trips in every format and key mode, malformed files that change nothing,
/// dry runs and policies, pairs repeated across batches, awkward values through COPY.
@Suite("PostgreSQL export and import", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresSnapshotTests {
    /// Each test (each case of one) gets its own: Swift Testing makes a new suite value for it.
    let folder: TemporaryFolder

    init() throws {
        folder = try TemporaryFolder()
    }

    static let master = { try! key(TestMasterKeys.valid) }()

    // MARK: the bytes of an export

    @Test("export writes the bytes of fixtures/export-format, as SQLite does for the same rows", arguments: SnapshotFormat.allCases)
    func pinnedBytes(format: SnapshotFormat) throws {
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        // SnapshotOutputFormatTests' four rows. PostgreSQL holds no invalid UTF-8, so row 2's
        // tool_id is stored as SQLite's export repairs it (U+FFFD), and enabled 2 is true.
        func triple(_ plaintext: String, _ first: UInt8) throws -> StoredSecret {
            try SecretCipher.encrypt(
                plaintext, masterKey: Self.master, salt: (0..<32).map { first &+ $0 }, nonce: (0..<12).map { first &+ $0 &* 3 }
            ).encoded
        }
        let pin = try triple("sk-\"pin\"\\ключ\n", 1), empty = try triple("", 7)
        try database.insert(
            id: 1, "q\"b\\s/t\tn\nr\r", "c\u{01}\u{1F}\u{7F} é 中文 🔑 \u{2028}", enabled: true, secret: pin, createdAt: -5,
            updatedAt: .max)
        try database.insert(id: 2, "", "f\u{FFFD}o", enabled: true, secret: nil, createdAt: 0, updatedAt: .min)
        try database.insert(
            id: 3, "plain-ascii-user-0123456789", "builtin-exa-web-search", enabled: false, secret: nil,
            createdAt: 1_700_000_000, updatedAt: 1_700_000_001)
        try database.connection.execute(
            "UPDATE user_tool_configs SET encrypted_api_key = '\(pin.encryptedAPIKey)', salt = '\(pin.salt)' WHERE id = 3")
        try database.insert(id: 4, "abcdefgh\"ijklmno\\pqrstuv\u{1}", "t", enabled: true, secret: empty, createdAt: 1, updatedAt: 2)
        for keys in [KeyMode.encrypted, .plaintext, .omit] {
            let path = folder.path("\(keys.rawValue).\(format.rawValue)")
            _ = try EngineSnapshots.export(database.connection, to: path, format, keys: keys, master: Self.master)
            let written = try EngineSnapshots.bytes(path)
            #expect(
                written == (try SnapshotOutputFormatTests.expected(format, keys)), "\(keys): \(String(decoding: written, as: UTF8.self))")
        }
    }

    /// Rows meant to reach every path of a COPY row: escapes of the text format (backslash, tab,
    /// newline, carriage return, the other control characters), `\N` and `\.` as text, empty
    /// strings, multi-byte text, keys partial or missing, integers at their bounds (`importable`:
    /// the bounds an import accepts, 0 to the year 9999).
    static func awkwardRows(_ count: Int, master: MasterKey, importable: Bool = false) throws -> [(
        id: Int64, user: String, tool: String, enabled: Bool, secret: StoredSecret?, created: Int64, updated: Int64
    )] {
        let texts = [
            "plain", "", "\\N", "\\.", "back\\slash", "tab\there", "new\nline", "cr\rlf\r\n", "\u{1}\u{8}\u{B}\u{C}\u{1B}\u{7F}",
            "é 中文 🔑 \u{2028}", "\"quoted\", with commas", " spaced ", "e\u{301}", String(repeating: "long-", count: 300)
        ]
        let secrets = try (0..<4).map { try SecretCipher.encrypt("sk-\($0)-\\\t\n", masterKey: master) }
        return (0..<count).map { index in
            let secret: StoredSecret? = index % 5 == 3 ? nil : secrets[index % secrets.count]
            let created: [Int64] = importable ? [0, 1, 1_700_000_000, 253_402_300_799] : [.min, -1, 0, 1_700_000_000, .max]
            return (
                id: Int64(index * 3 + 1), user: "\(texts[index % texts.count])-\(index)",
                tool: "t" + texts[(index / texts.count) % texts.count],
                enabled: index % 2 == 0, secret: secret, created: created[index % created.count],
                updated: Int64(index) - (importable ? 0 : 7)
            )
        }
    }

    @Test("the same rows in SQLite and PostgreSQL export byte for byte alike, in every format, key mode and filter")
    func sameBytesAsSQLite() throws {
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        let sqlite = try SnapshotFixtures.SQLiteFile(folder)
        let insert = try sqlite.connection.prepare(
            """
            INSERT INTO user_tool_configs (id, user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            """)
        // Enough rows for several 64 KiB pieces of COPY and of the output.
        for row in try Self.awkwardRows(1500, master: Self.master) {
            func text(_ value: String?) -> SQLiteStatement.Value { value.map { .text($0) } ?? .null }
            // Every seventh row has part of a triple: exported as no key by both.
            let nonce = row.id % 7 == 0 ? nil : row.secret?.nonce
            try insert.run([
                .integer(row.id), .text(row.user), .text(row.tool), .integer(row.enabled ? 1 : 0), text(row.secret?.encryptedAPIKey),
                text(row.secret?.salt), text(nonce), .integer(row.created), .integer(row.updated)
            ])
            try database.insert(
                id: row.id, row.user, row.tool, enabled: row.enabled, secret: row.secret, createdAt: row.created, updatedAt: row.updated)
            if nonce == nil, row.secret != nil {
                try database.connection.query("UPDATE user_tool_configs SET nonce = NULL WHERE id = $1", [.integer(row.id)])
            }
        }
        let filters: [(user: String?, tool: String?)] = [
            (nil, nil), (nil, "t\\N"), ("tab\there-5", nil), ("new\nline-6", "tplain"), ("nobody", nil)
        ]
        for format in SnapshotFormat.allCases {
            for keys in [KeyMode.encrypted, .plaintext, .omit] {
                for filter in filters {
                    let a = folder.path("sqlite-\(UUID().uuidString).\(format.rawValue)"),
                        b = folder.path("postgres-\(UUID().uuidString).\(format.rawValue)")
                    let fromSQLite = try EngineSnapshots.export(
                        sqlite.connection, to: a, format, keys: keys, master: Self.master, userID: filter.user, toolID: filter.tool)
                    let fromPostgres = try EngineSnapshots.export(
                        database.connection, to: b, format, keys: keys, master: Self.master, userID: filter.user, toolID: filter.tool)
                    #expect(fromPostgres.rows == fromSQLite.rows)
                    #expect(try EngineSnapshots.bytes(b) == EngineSnapshots.bytes(a), "\(format) \(keys) \(filter)")
                }
            }
        }
        let all = try EngineSnapshots.export(database.connection, to: folder.path("all.csv"), .csv, keys: .omit, master: nil)
        #expect(all.rows == 1500)
    }

    @Test("a database without user_tool_configs, or with a table of another shape, is refused before a row is read")
    func tableShape() throws {
        let scratch = try ScratchPostgresDatabase()
        defer { scratch.drop() }
        let connection = try scratch.connect()
        let columns =
            "id bigint, user_id text, tool_id text, encrypted_api_key text, salt text, nonce text, created_at bigint, updated_at bigint"
        for (sql, message) in [
            ("", "has no user_tool_configs table; run `toolcfg migrate up` first"),
            ("CREATE TABLE user_tool_configs (id bigint, user_id text, tool_id text)", "lacks the column(s) enabled, encrypted_api_key"),
            ("CREATE TABLE user_tool_configs (\(columns), enabled integer, UNIQUE (user_id, tool_id))", "enabled integer"),
            (
                "CREATE TABLE user_tool_configs (\(columns), enabled boolean); CREATE UNIQUE INDEX ON user_tool_configs (user_id, "
                    + "tool_id) WHERE enabled",
                "no UNIQUE(user_id, tool_id)"
            ),
            ("CREATE TABLE user_tool_configs (\(columns), enabled boolean, UNIQUE (user_id))", "no UNIQUE(user_id, tool_id)")
        ] {
            try connection.execute("DROP TABLE IF EXISTS user_tool_configs" + (sql.isEmpty ? "" : "; " + sql))
            let error = try #require(thrownError { _ = try connection.toolConfigStore() } as? TableShapeError, "\(sql)")
            #expect(error.message.contains(message) && error.exitStatus == .dataError, "\(error)")
        }
        // The pair in the other order is the same constraint; narrower integers and varchar read alike.
        try connection.execute(
            """
            DROP TABLE user_tool_configs;
            CREATE TABLE user_tool_configs (id integer, user_id varchar(40), tool_id text, enabled boolean, encrypted_api_key text,
                salt text, nonce text, created_at integer, updated_at smallint, UNIQUE (tool_id, user_id));
            INSERT INTO user_tool_configs VALUES (-7, 'u', 't', true, NULL, NULL, NULL, 2147483647, -32768);
            """)
        _ = try EngineSnapshots.export(connection, to: folder.path("narrow.jsonl"), .jsonl, keys: .encrypted, master: nil)
        let line = try String(contentsOfFile: folder.path("narrow.jsonl"), encoding: .utf8).split(separator: "\n")[1]
        #expect(line.contains("\"id\":-7,") && line.contains("\"created_at\":2147483647,\"updated_at\":-32768"), "\(line)")
    }

    // MARK: round trips

    @Test("an update keeps the row's id and created_at; a record without a key keeps the stored one")
    func updateKeepsIdentity() throws {
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        try database.insert("u", "a", enabled: false, key: "sk-a", master: Self.master, createdAt: 10, updatedAt: 20)
        try database.insert("u", "b", enabled: false, key: "sk-b", master: Self.master, createdAt: 10, updatedAt: 20)
        let before = try database.plainRows(Self.master)
        let input = try EngineSnapshots.write(
            "user_id,tool_id,enabled,api_key,created_at,updated_at\nu,a,1,sk-a2,99,30\nu,b,1,,99,31\n", folder, "in.csv")
        let report = try EngineSnapshots.importFile(database.connection, input, .csv, master: Self.master)
        #expect((report.updated, report.inserted) == (2, 0))
        let after = try database.plainRows(Self.master)
        #expect(after.map(\.id) == before.map(\.id) && after.map(\.createdAt) == [10, 10])
        #expect(after.map(\.key) == ["sk-a2", "sk-b"] && after.map(\.updatedAt) == [30, 31] && after.allSatisfy(\.enabled))
    }

    // MARK: bad input

    @Test("every malformed file of the SQLite corpus is refused the same way and changes nothing")
    func malformedInput() throws {
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        try database.insert("seed-user", "tool-a", enabled: true, key: SnapshotsTests.CaseKit.plaintexts[4], master: Self.master)
        try database.insert("seed-user", "tool-b", enabled: false, key: nil, master: Self.master)
        let kit = SnapshotsTests.CaseKit(folder: folder, master: Self.master)
        let before = try database.dump()
        for c in SnapshotsTests.malformed {
            let path = folder.path("input-\(UUID().uuidString).\(c.format.rawValue)")
            try Data(try c.build(kit)).write(to: URL(fileURLWithPath: path))
            let error = thrownError {
                _ = try EngineSnapshots.importFile(
                    database.connection, path, c.format, master: c.withMasterKey ? Self.master : nil,
                    passphrase: SnapshotFixtures.passphrase(c.passphrase), onConflict: c.onConflict)
            }
            #expect(try database.dump() == before, "\(c.name): the database changed")
            #expect(!database.connection.isInTransaction)
            let first = SnapshotFixtures.firstSnapshotError(error)
            #expect((error as? any ToolcfgError)?.exitStatus == c.exitStatus, "\(c.name): \(String(describing: error))")
            #expect(
                first?.location.file == path && first?.location.line == c.line && first?.location.field == c.field,
                "\(c.name): \(String(describing: error))")
            if let message = c.message { #expect(first?.message.contains(message) == true, "\(c.name): \(String(describing: first))") }
        }
        // No staging table is left behind by any of them.
        #expect(try database.connection.queryInt64("SELECT count(*) FROM pg_class WHERE relname = 'toolcfg_import'") == 0)
    }

    @Test("a NUL character, which PostgreSQL cannot store, is refused at its line and field, and nothing is written", arguments: [0, 2])
    func nulIsRefused(preexisting: Int) throws {
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        for index in 0..<preexisting { try database.insert("old-\(index)", "t", enabled: true, key: nil, master: Self.master) }
        let before = try database.dump()
        // In a pair looked up (a filled table) or certainly new (an empty one), in either field.
        // (JSON's readers refuse \u0000 in any string on either engine; CSV carries it.)
        for (text, field, line) in [
            ("user_id,tool_id\nok,t\nnul\u{0}user,t\n", "user_id", 3), ("user_id,tool_id\nu,\"t\u{0}\"\n", "tool_id", 2)
        ] {
            let path = try EngineSnapshots.write(text, folder, "nul-\(field).csv")
            let error = try #require(
                thrownError { _ = try EngineSnapshots.importFile(database.connection, path, .csv, master: nil) } as? SnapshotError)
            #expect(error.location.line == line && error.location.field == field && error.message.contains("NUL"), "\(error)")
            #expect(error.exitStatus == .dataError)
            #expect(try database.dump() == before)
        }
    }

    @Test("awkward values go through COPY both ways unchanged")
    func awkwardValues() throws {
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        let rows = try Self.awkwardRows(700, master: Self.master, importable: true)
        var text = "user_id,tool_id,enabled,encrypted_api_key,salt,nonce,created_at,updated_at\n"
        for row in rows {
            text +=
                [
                    SnapshotFixtures.csvField(row.user), SnapshotFixtures.csvField(row.tool),
                    row.enabled ? "1" : "0", row.secret?.encryptedAPIKey ?? "", row.secret?.salt ?? "", row.secret?.nonce ?? "",
                    String(row.created), String(row.updated)
                ].joined(separator: ",") + "\n"
        }
        let input = try EngineSnapshots.write(text, folder, "awkward.csv")
        let report = try EngineSnapshots.importFile(database.connection, input, .csv, master: Self.master)
        #expect(report.inserted == rows.count)
        // Read back by psycopg, the independent client, in file order.
        let read = try #require(
            try postgresPeer(
                "read", database.url,
                """
                SELECT user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at::text, updated_at::text
                FROM user_tool_configs ORDER BY id
                """) as? [[Any]])
        #expect(read.count == rows.count)
        for (row, stored) in zip(rows, read) {
            let expected: [String?] = [
                row.user, row.tool, row.enabled ? "true" : "false", row.secret?.encryptedAPIKey, row.secret?.salt,
                row.secret?.nonce, String(row.created), String(row.updated)
            ]
            let got = stored.map { value -> String? in
                if let flag = value as? Bool { return flag ? "true" : "false" }
                return value as? String
            }
            #expect(got.map { $0.map { Array($0.utf8) } } == expected.map { $0.map { Array($0.utf8) } }, "\(row.user.debugDescription)")
        }
        // And out again: what came in, byte for byte.
        let out = folder.path("out.csv")
        _ = try EngineSnapshots.export(database.connection, to: out, .csv, keys: .encrypted, master: nil)
        let sqlite = try SnapshotFixtures.SQLiteFile(folder)
        _ = try EngineSnapshots.importFile(sqlite.connection, input, .csv, master: Self.master)
        let fromSQLite = folder.path("sqlite.csv")
        _ = try EngineSnapshots.export(sqlite.connection, to: fromSQLite, .csv, keys: .encrypted, master: nil)
        #expect(try EngineSnapshots.bytes(out) == EngineSnapshots.bytes(fromSQLite))
    }

    // MARK: decisions

    @Test(
        "a conflicting repeat 1,200 records later is refused with both lines; an identical one is a duplicate written once",
        arguments: [0, 3])
    func repeatsAcrossBatches(preexisting: Int) throws {
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        for index in 0..<preexisting {
            try database.insert("old-\(index)", "t", enabled: true, key: nil, master: Self.master, createdAt: 1, updatedAt: 1)
        }
        let before = try database.dump()
        let conflicting = try EngineSnapshots.write(ImportBatchTests.csv(1500, repeating: (1203, 3, "0")), folder, "conflict.csv")
        let error = try #require(
            thrownError { _ = try EngineSnapshots.importFile(database.connection, conflicting, .csv, master: nil) } as? SnapshotError)
        #expect(error.location.line == 1204 && error.message.contains("(line 4)"), "\(error)")
        #expect(try database.dump() == before)

        let identical = try EngineSnapshots.write(ImportBatchTests.csv(1500, repeating: (1203, 3, "1")), folder, "identical.csv")
        let report = try EngineSnapshots.importFile(database.connection, identical, .csv, master: nil)
        #expect((report.inserted, report.duplicates) == (1499, 1))
        let users = try database.connection.query("SELECT user_id FROM user_tool_configs WHERE user_id LIKE 'user-%' ORDER BY id")
        #expect((0..<users.count).map { users.text($0, 0) ?? "" } == (1...1500).filter { $0 != 1203 }.map { "user-\($0)" })
        let again = try EngineSnapshots.importFile(database.connection, identical, .csv, master: nil)
        #expect((again.unchanged, again.inserted, again.duplicates) == (1499, 0, 1))
        #expect(try database.count() == Int64(1499 + preexisting))
    }

    // MARK: the write phase

    @Test(
        """
        into an empty table the indexes are dropped and rebuilt, and stay exactly as they were, whether the import succeeds or fails; \
        a reader of the table keeps them in place
        """
    )
    func indexesSurvive() throws {
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        try database.connection.execute("CREATE INDEX idx_user_created ON user_tool_configs (user_id, created_at) WHERE enabled")
        let before = try database.indexes()
        #expect(before.count == 6)  // 3 of 0007, ours, the primary key and the unique pair
        let bad = try EngineSnapshots.write(ImportBatchTests.csv(1500, repeating: (1203, 3, "0")), folder, "bad.csv")
        _ = thrownError { _ = try EngineSnapshots.importFile(database.connection, bad, .csv, master: nil) }
        #expect(try database.indexes() == before)
        let good = try EngineSnapshots.write(ImportBatchTests.csv(1500), folder, "good.csv")
        _ = try EngineSnapshots.importFile(database.connection, good, .csv, master: nil)
        #expect(try database.indexes() == before)
        let valid = try database.connection.queryInt64(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'user_tool_configs'::regclass AND indisvalid AND indisready")
        #expect(valid == 6)
        // A session reading the (empty) table holds its lock: the import leaves the indexes alone
        // rather than wait for it, and goes in all the same.
        try database.connection.execute("TRUNCATE user_tool_configs")
        let reader = try database.scratch.connect()
        try reader.execute("BEGIN; SELECT count(*) FROM user_tool_configs")
        let report = try EngineSnapshots.importFile(database.connection, good, .csv, master: nil)
        #expect(report.inserted == 1500)
        try reader.execute("COMMIT")
        #expect(try database.indexes() == before)
    }

    @Test("a writer that holds the table past --busy-timeout fails the import with exit 75 at the write lock; nothing is written")
    func writeLockTimesOut() throws {
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        try database.insert("a", "t", enabled: true, key: nil, master: Self.master)
        let application = try database.scratch.connect()
        try application.execute("BEGIN; UPDATE user_tool_configs SET enabled = false")
        let input = try EngineSnapshots.write("user_id,tool_id,enabled\nb,t,1\n", folder, "in.csv")
        let result = try toolcfg(["import", "--db", database.url.text, "--in", input, "--busy-timeout", "0.5", "--json"])
        #expect(result.status == 75, "\(result.stderr)")
        #expect(result.stderr.contains("write lock on user_tool_configs"), "\(result.stderr)")
        try application.execute("ROLLBACK")
        #expect(try database.count() == 1)
    }
}
