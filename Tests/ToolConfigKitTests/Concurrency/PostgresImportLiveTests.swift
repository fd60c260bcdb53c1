import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// On PostgreSQL: what another session writes between an import's read snapshot and its write
/// phase, the master-key check, the stored-secret stores and verify-keys, and moving an
/// installation between SQLite and PostgreSQL through the command line.
@Suite(
    "PostgreSQL imports beside the application, and stored keys", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresImportLiveTests {
    static let master = { try! key(TestMasterKeys.valid) }()
    /// fixtures/postgres' master key (scripts/build_fixtures.py: bytes 0...31).
    static let fixtureKey = { try! MasterKey(text: Data(0..<32).base64EncodedString(), source: .generated) }()

    @Test("without any key work the import stages too, and a pair written meanwhile is decided again")
    func stagedWithoutKeyWork() throws {
        let folder = try TemporaryFolder()
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        try LiveWriterTests.addTwelveRows(to: database, master: Self.master)
        let application = try ApplicationSession(database.location, master: Self.master)
        let triple = try SecretCipher.encrypt("sk-file", masterKey: Self.master)
        let input = try EngineSnapshots.write(
            """
            user_id,tool_id,enabled,encrypted_api_key,salt,nonce
            fresh,t,1,\(triple.encryptedAPIKey),\(triple.salt),\(triple.nonce)
            user-0,tool-1,0,,,
            other,t,0,,,

            """, folder, "in.csv")
        var options = Importer.Options(input: input, format: .csv, jobs: 2)
        options.allowUncheckedKeys = true  // into a keyed table: the path under test, not the refusal
        var importer = Importer(database: database.connection, options: options)
        var staged: Int64?
        importer.betweenPhases = {
            staged = try database.connection.queryInt64("SELECT count(*) FROM pg_temp.toolcfg_import")
            try application.insert("fresh", "t", key: "k-app")  // insert -> update
            try application.delete(1)  // update -> insert
        }
        let report = try importer.run()
        #expect(staged == 3)
        #expect((report.inserted, report.updated, report.unchanged, report.changedDuringImport, report.uncheckedKeys) == (2, 1, 0, 2, 1))
        let pairs = try database.pairs(under: Self.master)
        #expect(pairs["fresh/t"] == ApplicationRow(plaintext: "sk-file", enabled: 1))
        #expect(pairs["user-0/tool-1"] == ApplicationRow(plaintext: nil, enabled: 0))
        #expect(pairs["other/t"] == ApplicationRow(plaintext: nil, enabled: 0))
        #expect(try database.count() == 14)
    }

    // MARK: the master-key check

    @Test(
        """
        a master key that opens none of the stored keys is refused with 65 and writes nothing, dry run included; \
        --allow-other-master-key overrides
        """
    )
    func otherMasterKeyIsRefused() throws {
        let folder = try TemporaryFolder()
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        try LiveWriterTests.addTwelveRows(to: database, master: Self.master)
        let other = MasterKey.generate()
        let otherFile = try RotationFixtures.keyFile(other, folder, "other.key")
        let input = try EngineSnapshots.write("user_id,tool_id,api_key\nuser-0,tool-1,sk-one\nnew-user,t,sk-new\n", folder, "in.csv")
        let before = try database.dump()
        let arguments = ["import", "--db", database.url.text, "--in", input, "--master-key-file", otherFile, "--json"]
        for extra in [[], ["--dry-run"]] {
            let refused = try toolcfg(arguments + extra)
            #expect(refused.status == 65, "\(refused.stderr)")
            #expect(refused.stderr.contains(other.fingerprint) && refused.stderr.contains("opens none of the"), "\(refused.stderr)")
            #expect(try database.dump() == before)
        }
        let forced = try toolcfg(arguments + ["--allow-other-master-key"])
        #expect(forced.status == 0, "\(forced.stderr)")
        let report = try RotationFixtures.json(forced.stdout)
        #expect(report["stored_keys_opened"] as? Int == 0 && (report["stored_keys_tried"] as? Int ?? 0) >= 1)
        #expect(report["inserted"] as? Int == 1 && report["updated"] as? Int == 1)
    }

    @Test(
        """
        keys under another master key in api_model_aliases (a table keyed by text) alone are enough to refuse an import into an empty \
        user_tool_configs
        """
    )
    func sampleCoversTextKeyedTables() throws {
        let folder = try TemporaryFolder()
        let database = try PostgresToolConfigDatabase(fixture: "app-after-0007.sql")
        defer { database.drop() }
        try database.connection.execute("DELETE FROM user_tool_configs")
        let input = try EngineSnapshots.write("user_id,tool_id,api_key\nnew-user,t,sk-new\n", folder, "in.csv")
        let other = try RotationFixtures.keyFile(MasterKey.generate(), folder, "other.key")
        let refused = try toolcfg(["import", "--db", database.url.text, "--in", input, "--master-key-file", other])
        #expect(refused.status == 65 && refused.stderr.contains("api_model_aliases row id alias-"), "\(refused.stderr)")
        #expect(try database.count() == 0)
        let right = try RotationFixtures.keyFile(Self.fixtureKey, folder, "right.key")
        let accepted = try toolcfg(["import", "--db", database.url.text, "--in", input, "--master-key-file", right, "--json"])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(try RotationFixtures.json(accepted.stdout)["stored_keys_opened"] as? Int ?? 0 >= 1)
        #expect(try database.plainRows(Self.fixtureKey).map(\.key) == ["sk-new"])
    }

    // MARK: stored secrets and verify-keys

    @Test(
        """
        the secret stores scan, sample and address rows by an integer key, by position for a text key, \
        and by position for a table without one
        """
    )
    func secretStores() throws {
        let database = try PostgresToolConfigDatabase(fixture: "app-after-0007.sql")
        defer { database.drop() }
        let connection = database.connection
        try connection.execute(
            """
            CREATE TABLE keyed_without_id (note text, encrypted_api_key text, salt text, nonce text);
            INSERT INTO keyed_without_id
                SELECT 'n' || g, 'k' || g, 's' || g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, 9) g;
            """)
        for table in try connection.secretGroups() {
            try connection.transaction(.read) {
                let store = try connection.secretStore(for: table)
                var scanned: [SecretRow] = []
                try store.scan(pageSize: 2) { scanned += $0 }
                #expect(scanned.count == (try store.count()), "\(table.table)")
                let ids = scanned.map(\.rowID)
                #expect(ids == ids.sorted() && Set(ids).count == ids.count, "\(table.table): \(ids)")
                if table.table != "keyed_without_id" {
                    let middle = try store.rows(Array(scanned[1...(ids.count - 2)].map(\.reference).reversed()))
                    #expect(
                        middle.map { $0?.id } == scanned[1...(ids.count - 2)].reversed().map(\.id)
                            && middle.map { $0?.secret } == scanned[1...(ids.count - 2)].reversed().map(\.secret), "\(table.table)")
                    #expect(try store.rows([RowReference(rowID: -5, id: "no such row")]).map { $0 == nil } == [true])
                } else {
                    #expect(thrownError { _ = try store.rows([scanned[0].reference]) } is TableShapeError)
                }
                let sample = try store.sample(16)
                #expect(
                    !sample.isEmpty
                        && sample.allSatisfy { row in
                            row.secret != nil && scanned.contains { $0.rowID == row.rowID && $0.secret == row.secret }
                        })
                #expect((1...2).contains(try store.sample(2).count))
                let salt = try #require(scanned.compactMap(\.secret).first).salt
                #expect(try store.countRows(with: .salt, equalTo: salt, acrossAlso: try connection.secretGroups()) == 1)
            }
        }
        let aliases = try connection.secretStore(
            for: SecretColumnGroup(
                table: "api_model_aliases", ciphertext: "encrypted_api_key", salt: "salt",
                nonce: "nonce", idColumn: "id"))
        let scanned = try connection.transaction(.read) { () -> [SecretRow] in
            var rows: [SecretRow] = []
            try aliases.scan(pageSize: 10) { rows += $0 }
            return rows
        }
        #expect(scanned.map(\.rowID) == [1, 2, 3] && scanned.map(\.id) == ["alias-1", "alias-2", "alias-3"])
        try aliases.setSecret(StoredSecret(encryptedAPIKey: "e", salt: "s", nonce: "n"), of: scanned[1].reference)
        #expect(try connection.queryText("SELECT encrypted_api_key || salt || nonce FROM api_model_aliases WHERE id = 'alias-2'") == "esn")
        let tools = try connection.secretStore(
            for: SecretColumnGroup(
                table: "user_tool_configs", ciphertext: "encrypted_api_key", salt: "salt",
                nonce: "nonce", idColumn: "id"))
        let firstID = try #require(try connection.queryInt64("SELECT min(id) FROM user_tool_configs"))
        try tools.setSecret(
            StoredSecret(encryptedAPIKey: "e", salt: "s", nonce: "n"), of: RowReference(rowID: firstID, id: String(firstID)))
        #expect(try connection.queryText("SELECT salt FROM user_tool_configs WHERE id = $1", [.integer(firstID)]) == "s")
    }

    @Test("verify-keys on PostgreSQL counts what SQLite counts for the same fixture, and names bad rows by their ids")
    func verifyKeys() throws {
        let folder = try TemporaryFolder()
        let database = try PostgresToolConfigDatabase(fixture: "app-after-0007.sql")
        defer { database.drop() }
        let keyFile = try RotationFixtures.keyFile(Self.fixtureKey, folder, "fixture.key")
        let sqliteCopy = folder.path("app.db")
        try FileManager.default.copyItem(
            atPath: Repository.root.appendingPathComponent("fixtures/app-after-0007.db").path, toPath: sqliteCopy)
        let onSQLite = try toolcfg(["verify-keys", "--db", sqliteCopy, "--master-key-file", keyFile, "--json"])
        let onPostgres = try toolcfg(["verify-keys", "--db", database.url.text, "--master-key-file", keyFile, "--json"])
        #expect(onSQLite.status == 0 && onPostgres.status == 0, "\(onSQLite.stderr) \(onPostgres.stderr)")
        let tables = RotationFixtures.tables(try RotationFixtures.json(onPostgres.stdout))
        #expect(tables.keys.sorted() == ["api_model_aliases", "user_tool_configs"])
        for (name, table) in RotationFixtures.tables(try RotationFixtures.json(onSQLite.stdout)) {
            for count in ["rows", "empty", "under_master_key", "under_neither", "malformed"] {
                #expect(tables[name]?[count] as? Int == table[count] as? Int, "\(name) \(count)")
            }
        }
        // A malformed alias and a salt shared across the two tables.
        try database.connection.execute(
            """
            UPDATE api_model_aliases SET nonce = 'short' WHERE id = 'alias-2';
            UPDATE user_tool_configs SET salt = (SELECT salt FROM api_model_aliases WHERE id = 'alias-1'),
                encrypted_api_key = (SELECT encrypted_api_key FROM api_model_aliases WHERE id = 'alias-1'),
                nonce = (SELECT nonce FROM api_model_aliases WHERE id = 'alias-1')
            WHERE id = (SELECT min(id) FROM user_tool_configs WHERE salt IS NOT NULL);
            """)
        let bad = try toolcfg(["verify-keys", "--db", database.url.text, "--master-key-file", keyFile, "--json"])
        #expect(bad.status == 65, "\(bad.stderr)")
        let report = try RotationFixtures.json(bad.stdout)
        #expect(report["ok"] as? Bool == false)
        #expect(RotationFixtures.tables(report)["api_model_aliases"]?["malformed"] as? Int == 1)
        #expect(report["reused_salts"] as? Int == 1 && report["reused_nonces"] as? Int == 1)
        let problems = report["problems"] as? [[String: Any]] ?? []
        #expect(problems.contains { $0["table"] as? String == "api_model_aliases" && $0["id"] as? String == "alias-2" }, "\(problems)")
    }

    // MARK: moving an installation

    /// user_id, tool_id, enabled (0/1), the triple, created_at, updated_at of every row in id
    /// order, as text: what a move must carry over exactly.
    static func sqliteRows(_ path: String) throws -> [[String?]] {
        let connection = try SQLiteConnection(path: path, mode: .readOnly)
        let statement = try connection.prepare(
            """
            SELECT user_id, tool_id, CAST(enabled != 0 AS TEXT), encrypted_api_key, salt, nonce,
                   CAST(created_at AS TEXT), CAST(updated_at AS TEXT)
            FROM user_tool_configs ORDER BY id
            """)
        var rows: [[String?]] = []
        while try statement.step() { rows.append((0..<8).map { statement.text(Int32($0)) }) }
        return rows
    }

    /// The same read by psycopg, the independent client.
    static func postgresRows(_ url: PostgresURL) throws -> [[String?]] {
        let read =
            try postgresPeer(
                "read", url,
                """
                SELECT user_id, tool_id, enabled::int::text, encrypted_api_key, salt, nonce, created_at::text, updated_at::text
                FROM user_tool_configs ORDER BY id
                """) as? [[Any]] ?? []
        return read.map { $0.map { $0 as? String } }
    }

    /// `export --db FROM --out - --format jsonl | import --db TO --in - --format jsonl`, keys
    /// still encrypted, through a shell pipe; the import's JSON report.
    static func move(from: String, to: String, extra: [String] = []) throws -> [String: Any] {
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let tool = quoted(Repository.toolcfg.path)
        let command =
            "set -o pipefail; \(tool) export --db \(quoted(from)) --out - --format jsonl -q | \(tool) import --db \(quoted(to)) "
            + "--in - --format jsonl --json "
            + extra.map(quoted).joined(separator: " ")
        let result = try runProcess(
            URL(fileURLWithPath: "/bin/bash"), ["-c", command],
            removing: ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE"])
        #expect(result.status == 0, "\(result.stderr)")
        return try RotationFixtures.json(result.stdout)
    }

    @Test("moving an installation SQLite -> PostgreSQL -> SQLite through export | import carries every row with its key intact")
    func moveBothWays() throws {
        let folder = try TemporaryFolder()
        let source = try KeyedDatabase(at: folder.path("app.db"), master: Self.master, rows: 1300, noKey: { $0 % 10 == 0 })
        // Gaps in the ids, awkward text, and rows of several batches.
        let sourceConnection = try source.connection()
        try sourceConnection.execute(
            """
            DELETE FROM user_tool_configs WHERE id % 97 = 0;
            UPDATE user_tool_configs SET user_id = user_id || ' \\t"é中🔑' || char(9, 10, 13) WHERE id % 11 = 0;
            """)
        sourceConnection.close()
        let rows = try Self.sqliteRows(source.path)
        let database = try PostgresToolConfigDatabase()
        defer { database.drop() }
        let keyFile = try RotationFixtures.keyFile(Self.master, folder, "master.key")

        let there = try Self.move(from: source.path, to: database.url.text, extra: ["--master-key-file", keyFile])
        #expect(there["inserted"] as? Int == rows.count && there["integrity_checked"] as? Bool == true)
        #expect(there["unchecked_keys"] as? Int == 0)
        #expect(try Self.postgresRows(database.url) == rows)

        let back = folder.path("back.db")
        let migrate = try toolcfg(["migrate", "up", "--db", back])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        let returned = try Self.move(from: database.url.text, to: back)
        #expect(returned["inserted"] as? Int == rows.count && returned["unchecked_keys"] as? Int == rows.filter { $0[3] != nil }.count)
        #expect(try Self.sqliteRows(back) == rows)
        // Every key opens to the plaintext it had in the first database.
        let pairs = try LiveWriterTests.pairs(back, under: Self.master)
        #expect(pairs.values.filter { $0.plaintext != nil }.allSatisfy { $0.plaintext?.hasPrefix("sk-tool-") == true })
        #expect(pairs.count == rows.count)
    }
}
