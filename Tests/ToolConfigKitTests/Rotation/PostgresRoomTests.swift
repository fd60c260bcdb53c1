import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// `rotate --make-room` (PostgresRoomMaker): room on the pages so that the write phase rewrites
/// rows in place, made in short transactions that change no value.
@Suite("Making room on PostgreSQL", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresRoomTests {
    /// 800 configs fill some twenty pages (fillfactor 100, as inserts leave them).
    static let rows = 800

    /// Each row's page, by table and key.
    static func pages(_ connection: PostgresConnection) throws -> [String: Int64] {
        let rows = try connection.query(
            """
            SELECT 'a/' || id, (ctid::text::point)[0]::bigint FROM api_model_aliases
            UNION ALL SELECT 'c/' || id, (ctid::text::point)[0]::bigint FROM user_tool_configs
            """)
        return try Dictionary(uniqueKeysWithValues: (0..<rows.count).map { (rows.text($0, 0) ?? "", try rows.int64($0, 1) ?? -1) })
    }

    static func fillfactor(_ connection: PostgresConnection, of table: String = "user_tool_configs") throws -> String? {
        try connection.queryText("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = $1", [.text(table)])
    }

    static func expectUnchanged(
        _ database: PostgresKeyedDatabase, _ dump: [String], _ pages: [String: Int64],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(try database.dump() == dump, "a value changed", sourceLocation: sourceLocation)
        #expect(try Self.pages(database.connection) == pages, "a row moved", sourceLocation: sourceLocation)
        #expect(try Self.fillfactor(database.connection) == nil, "the fillfactor was set", sourceLocation: sourceLocation)
        #expect(
            try Self.fillfactor(database.connection, of: "api_model_aliases") == nil, "the fillfactor was set",
            sourceLocation: sourceLocation)
    }

    @Test(
        "with --make-room the write phase rewrites every row on the page it is on (in place); without it, a packed table's rows all move",
        arguments: [true, false])
    func writePhaseRewritesInPlace(_ makeRoom: Bool) throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: Self.rows, noKey: { $0 % 10 == 0 })
        defer { database.drop() }
        let before = try database.dump(), otherColumns = try database.dump(withTriples: false)
        var rotator = KeyRotator(
            database: try database.base.scratch.connect(), options: .init(oldKey: old, newKey: new, jobs: 2, makeRoom: makeRoom))
        var pagesBeforeWriting: [String: Int64] = [:]
        rotator.betweenPhases = {
            pagesBeforeWriting = try Self.pages(database.connection)
            // Room made, nothing else: every value as it was.
            #expect(try database.dump() == before, "making room changed a value")
        }
        let report = try rotator.run()
        let after = try Self.pages(database.connection)
        let configs = try #require(report.groups.first { $0.table == KeyedDatabase.configs })
        let movedByTheWrite = after.filter { pagesBeforeWriting[$0.key] != $0.value && $0.key.hasPrefix("c/") }
        if makeRoom {
            let room = try #require(configs.room)
            #expect(room.fillfactorBefore == 100 && room.fillfactor == 50 && room.rowsLeftWithoutRoom == 0)
            #expect(room.rowsWithoutRoom > 600 && room.rowsMoved == room.rowsWithoutRoom && room.batches >= 1, "\(room)")
            #expect(movedByTheWrite.isEmpty, "\(movedByTheWrite.count) rows left their page in the write phase")
            #expect(try Self.fillfactor(database.connection) == "fillfactor=50")
        } else {
            #expect(configs.room == nil)
            #expect(try Self.fillfactor(database.connection) == nil)
            // All but those of the last page, which the inserts left partly empty.
            #expect(
                movedByTheWrite.count > configs.rotated * 9 / 10,
                "a packed table's rewritten rows go to other pages: \(movedByTheWrite.count) of \(configs.rotated)")
        }
        #expect(try database.dump(withTriples: false) == otherColumns)
        try database.expectPlaintexts(under: new)
    }

    @Test(
        """
        --make-room from the command line: a dry run counts and changes nothing; the run reports what it moved (valid against the \
        schema); a rerun moves nothing
        """
    )
    func commandLine() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: Self.rows)
        defer { database.drop() }
        let before = try database.dump(), pagesBefore = try Self.pages(database.connection)

        let dry = try PostgresRotationTests.rotate(database, folder, old: old, new: new, ["--make-room", "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let dryRoom = RotationFixtures.tables(try RotationFixtures.json(dry.stdout))[KeyedDatabase.configs]?["room"] as? [String: Any]
        #expect(
            (dryRoom?["rows_without_room"] as? Int ?? 0) > 600 && dryRoom?["rows_moved"] as? Int == 0
                && dryRoom?["fillfactor"] as? Int == 100, "\(dryRoom ?? [:])")
        try Self.expectUnchanged(database, before, pagesBefore)

        let run = try PostgresRotationTests.rotate(database, folder, old: old, new: new, ["--make-room"])
        #expect(run.status == 0, "\(run.stderr)")
        let room = RotationFixtures.tables(try RotationFixtures.json(run.stdout))[KeyedDatabase.configs]?["room"] as? [String: Any]
        #expect(
            room?["rows_moved"] as? Int == dryRoom?["rows_without_room"] as? Int && room?["rows_left_without_room"] as? Int == 0,
            "\(room ?? [:])")
        try JSONReportTests.validate([
            .init(kind: "rotate", arguments: [], result: dry, json: dry.stdout),
            .init(kind: "rotate", arguments: [], result: run, json: run.stdout)
        ])
        try database.expectPlaintexts(under: new)

        let text = try toolcfg(
            RotationFixtures.rotateArguments(
                database.url.text, old: try RotationFixtures.keyFile(new, folder, "n.key"),
                new: try RotationFixtures.keyFile(old, folder, "o.key")) + ["--make-room"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(
            text.stderr.contains("user_tool_configs: 0 keyed rows without room on their page, fillfactor 50, 0 moved in 0 transactions"),
            "\(text.stderr)")
        try database.expectPlaintexts(under: old)
    }

    enum Refusal: String, CaseIterable {
        case updateTrigger, rule, indexOnTriple, uniqueNonce, partitioned, notOwner
    }

    @Test(
        """
        --make-room is refused (64) before any table changes: update triggers, rules, an index on a triple column, a partitioned table, \
        a role not the owner
        """,
        arguments: Refusal.allCases)
    func refusals(_ refusal: Refusal) throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: 200)
        defer { database.drop() }
        var url = database.url.text, role: String?
        defer { if let role { try? database.connection.execute("DROP OWNED BY \(role); DROP ROLE \(role)") } }
        let expected: String
        switch refusal {
        case .updateTrigger:
            try database.connection.execute(
                """
                CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
                    AS $$ BEGIN NEW.updated_at := NEW.updated_at + 1; RETURN NEW; END $$;
                CREATE TRIGGER touch_updated_at BEFORE UPDATE ON user_tool_configs FOR EACH ROW EXECUTE FUNCTION touch();
                """)
            expected = "update triggers (touch_updated_at)"
        case .rule:
            try database.connection.execute(
                """
                CREATE TABLE config_changes (id bigint);
                CREATE RULE log_change AS ON UPDATE TO user_tool_configs DO ALSO INSERT INTO config_changes VALUES (NEW.id);
                """)
            expected = "rules (log_change)"
        case .indexOnTriple:
            try database.connection.execute(
                "CREATE INDEX configs_with_keys ON user_tool_configs (user_id) WHERE encrypted_api_key IS NOT NULL")
            expected = "indexes on its secret columns encrypted_api_key, salt, nonce (configs_with_keys)"
        case .uniqueNonce:  // a constraint's index: its columns are recorded on the constraint
            try database.connection.execute("ALTER TABLE user_tool_configs ADD UNIQUE (nonce)")
            expected = "(user_tool_configs_nonce_key)"
        case .partitioned:
            try database.connection.execute(
                """
                CREATE TABLE zz_parted (id bigint PRIMARY KEY, encrypted_api_key text, salt text, nonce text) PARTITION BY RANGE (id);
                CREATE TABLE zz_parted_1 PARTITION OF zz_parted FOR VALUES FROM (0) TO (1000);
                """)
            expected = "zz_parted is partitioned"
        case .notOwner:
            let name = "toolcfg_room_\(UInt32.random(in: 0...UInt32.max))"
            try database.connection.execute(
                "CREATE ROLE \(name) LOGIN; GRANT SELECT, UPDATE ON api_model_aliases, user_tool_configs TO \(name)")
            role = name
            url += (url.contains("?") ? "&" : "?") + "user=\(name)"
            expected = "belongs to another role"
        }
        let before = try database.dump(), pagesBefore = try Self.pages(database.connection)
        let refused = try toolcfg(
            RotationFixtures.rotateArguments(
                url, old: try RotationFixtures.keyFile(old, folder, "o.key"),
                new: try RotationFixtures.keyFile(new, folder, "n.key")) + ["--make-room"])
        #expect(
            refused.status == 64 && refused.stderr.contains(expected) && refused.stderr.contains("nothing changed"), "\(refused.stderr)")
        try Self.expectUnchanged(database, before, pagesBefore)
        try database.expectPlaintexts(under: old)
    }

    @Test("a wrong old key (65) or a backup path already taken (74) is refused before any row is moved", arguments: [false, true])
    func refusedBeforeMoving(_ backupTaken: Bool) throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: Self.rows)
        defer { database.drop() }
        let before = try database.dump(), pagesBefore = try Self.pages(database.connection)
        let backup = folder.path("before.sql")
        if backupTaken { try Data("keep me".utf8).write(to: URL(fileURLWithPath: backup)) }
        let refused = try PostgresRotationTests.rotate(
            database, folder, old: backupTaken ? old : MasterKey.generate(), new: new,
            ["--make-room", "--backup", backup])
        #expect(refused.status == (backupTaken ? 74 : 65), "\(refused.stderr)")
        #expect(refused.stderr.contains(backupTaken ? "the file exists" : "decrypts under neither"), "\(refused.stderr)")
        try Self.expectUnchanged(database, before, pagesBefore)
        if backupTaken {
            #expect(try String(contentsOfFile: backup, encoding: .utf8) == "keep me")
        } else {
            #expect(!FileManager.default.fileExists(atPath: backup), "a refused rotation left a backup")
        }
    }

    @Test(
        """
        batches of whole pages, sized by the rows they move; VACUUM lets moved rows fill the emptied pages; \
        rows with values kept out of line (TOAST) get room too; a second pass finds nothing to move
        """
    )
    func batchesAndVacuum() throws {
        let old = try key(TestMasterKeys.valid)
        // api_model_aliases, keyed by text, has a column no index covers: one row in fifty gets
        // 6 KB there that does not compress, stored out of line.
        let database = try PostgresKeyedDatabase(master: old, aliases: 2_000, rows: 10)
        defer { database.drop() }
        try database.connection.execute(
            """
            UPDATE api_model_aliases SET models_json = (SELECT string_agg(md5(id || g::text), '') FROM generate_series(1, 190) g)
            WHERE right(id, 2) = '50'
            """)
        try database.connection.execute("VACUUM FULL api_model_aliases")
        let pageCount = "SELECT pg_relation_size('api_model_aliases') / current_setting('block_size')::int"
        let before = try database.dump(), pagesBefore = try database.connection.queryInt64(pageCount) ?? 0
        let groups = try database.connection.secretGroups().filter { $0.table == KeyedDatabase.aliases }
        var maker = try PostgresRoomMaker(connection: database.connection, groups: groups)
        maker.firstBatchRows = 100
        maker.batchRows = 50...150
        let report = try maker.run(dryRun: false) { _ in }
        #expect(
            report.rowsWithoutRoom > 1_900 && report.rowsMoved == report.rowsWithoutRoom && report.rowsLeftWithoutRoom == 0, "\(report)")
        #expect(report.batches >= report.rowsMoved / 150 && report.batches <= report.rowsMoved / 50 + 1, "\(report)")
        #expect(try database.dump() == before, "making room changed a value")
        let pagesAfter = try database.connection.queryInt64(pageCount) ?? 0
        #expect(
            Double(pagesAfter) <= 2.6 * Double(pagesBefore), "\(pagesBefore) pages became \(pagesAfter): the emptied pages were not reused")
        let again = try PostgresRoomMaker(connection: database.connection, groups: groups).run(dryRun: false) { _ in }
        #expect(again.rowsWithoutRoom == 0 && again.rowsMoved == 0 && again.batches == 0, "\(again)")
    }

    @Test(
        """
        a row the application holds is skipped by the moves, never waited for; the rotation then waits for it as always and its write \
        stands
        """
    )
    func heldRowIsSkipped() throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: Self.rows)
        defer { database.drop() }
        let holder = try database.base.scratch.connect()
        try holder.execute("BEGIN; UPDATE user_tool_configs SET enabled = NOT enabled WHERE id = 3")
        // A 1 s lock timeout: moves that waited for the held row would fail with 55P03.
        var rotator = KeyRotator(
            database: try database.base.scratch.connect(.init(lockTimeout: .seconds(1))),
            options: .init(oldKey: old, newKey: new, jobs: 2, makeRoom: true))
        rotator.betweenPhases = { try holder.execute("COMMIT") }
        let report = try rotator.run()
        let room = try #require(report.groups.first { $0.table == KeyedDatabase.configs }?.room)
        #expect(room.rowsMoved == room.rowsWithoutRoom - 1 && room.rowsWithoutRoom > 600, "\(room)")
        try database.expectPlaintexts(under: new)
        #expect(
            try database.connection.queryText("SELECT enabled::text FROM user_tool_configs WHERE id = 3") == "false",
            "the application's flip was lost")
    }
}
