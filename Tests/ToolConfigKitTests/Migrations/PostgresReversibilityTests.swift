import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("PostgreSQL migrate verify", .serialized, .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresReversibilityTests {
    static let up = String(decoding: try! Data(contentsOf: PostgresMigrationTests.upFile), as: UTF8.self)
    static let down = String(
        decoding: try! Data(contentsOf: Repository.migrations.appendingPathComponent("postgres/0007_tools_config.down.sql")),
        as: UTF8.self)

    @Test(
        "verify on a live database passes and leaves it exactly as it was: fingerprint, ledger and rows", arguments: PostgresFixtures.names)
    func liveDatabaseUnchanged(_ fixture: String) throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try PostgresFixtures.load(fixture, into: connection)
        let before = try DatabaseState(connection)
        let report = ReversibilityCheck().verify(database: connection)
        #expect(report.ok, "\(report.error ?? "") \(report.steps.flatMap(\.failures))")
        #expect(report.steps.map(\.version) == [7])
        #expect(report.steps[0].cycle == (fixture.hasPrefix("app-after") ? "down-up" : "up-down-up"))
        #expect(try DatabaseState(connection) == before)
        #expect(!connection.isInTransaction)
        #expect(try advisoryLocks(connection, granted: true) == 0)
    }

    /// 0007 as it is, and a 0008 whose down forgets the index its up creates.
    static func forgetfulPair(_ folder: TemporaryFolder) throws -> String {
        try migrationsFolder(
            folder,
            [
                "0007_tools_config.up.sql": up, "0007_tools_config.down.sql": down,
                "0008_updated_index.up.sql": "CREATE INDEX IF NOT EXISTS idx_user_tool_configs_updated ON user_tool_configs(updated_at);\n",
                "0008_updated_index.down.sql": "-- forgot: DROP INDEX idx_user_tool_configs_updated;\n"
            ])
    }

    @Test("a down that forgets an index, or drops a table its up did not create, is caught by name; the database stays as it was")
    func badDowns() throws {
        let folder = try TemporaryFolder()
        let foreignDrop = try migrationsFolder(
            folder,
            [
                "0007_tools_config.up.sql": Self.up, "0007_tools_config.down.sql": Self.down + "DROP TABLE IF EXISTS app_settings;\n"
            ])
        let cases: [(String, String)] = [
            (try Self.forgetfulPair(folder), "down does not undo up: index idx_user_tool_configs_updated: present now, absent before"),
            (
                try Self.forgetfulPair(folder),
                "down does not undo up: table user_tool_configs index idx_user_tool_configs_updated: new index on (updated_at)"
            ),
            (foreignDrop, "down does not undo up: table app_settings: present before, absent now")
        ]
        for (migrations, failure) in cases {
            let database = try ScratchPostgresDatabase()
            defer { database.drop() }
            let connection = try database.connect()
            try PostgresFixtures.load("app-before-0007.sql", into: connection)
            let before = try DatabaseState(connection)
            let report = ReversibilityCheck(migrations: try .load(folder: migrations)).verify(database: connection)
            #expect(!report.ok)
            #expect(report.steps.flatMap(\.failures).contains(failure), "\(report.steps.flatMap(\.failures))")
            #expect(try DatabaseState(connection) == before)
        }
    }

    @Test("a view on user_tool_configs makes 0007's down fail on PostgreSQL: reported, and rolled back")
    func viewBlocksTheDown() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try PostgresFixtures.load("app-after-0007.sql", into: connection)
        try connection.execute("CREATE VIEW enabled_tools AS SELECT user_id, tool_id FROM user_tool_configs WHERE enabled")
        let before = try DatabaseState(connection)
        let report = ReversibilityCheck().verify(database: connection)
        #expect(!report.ok)
        #expect(
            report.error?.contains("0007_tools_config.down.sql") == true && report.error?.contains("depend on it") == true,
            "\(report.error ?? "")")
        #expect(try DatabaseState(connection) == before)
    }

    /// Scratch databases toolcfg created and did not drop.
    static func leftoverScratchDatabases() throws -> Int64 {
        let server = try PostgresConnection(
            url: try PostgresURL(try PostgresTestServer.required(PostgresTestServer.url, "TOOLCFG_TEST_POSTGRES_URL")))
        return try server.queryInt64("SELECT count(*) FROM pg_database WHERE datname LIKE 'toolcfg\\_scratch\\_%'") ?? 0
    }

    @Test("migrate verify --fixtures fixtures/postgres --server: every fixture passes in a scratch database, dropped afterwards")
    func fixturesThroughTheCommandLine() throws {
        let server = try PostgresTestServer.required(PostgresTestServer.url, "TOOLCFG_TEST_POSTGRES_URL")
        let leftovers = try Self.leftoverScratchDatabases()
        let result = try toolcfg(["migrate", "verify", "--fixtures", PostgresFixtures.folder.path, "--server", server, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let databases = report?["databases"] as? [[String: Any]] ?? []
        #expect(databases.map { ($0["database"] as? String).map { ($0 as NSString).lastPathComponent } } == PostgresFixtures.names.sorted())
        #expect(databases.allSatisfy { $0["ok"] as? Bool == true })
        #expect(try Self.leftoverScratchDatabases() == leftovers)

        // TOOLCFG_DB names the server too; a folder of both kinds verifies both.
        let folder = try TemporaryFolder()
        try FileManager.default.copyItem(
            at: PostgresFixtures.folder.appendingPathComponent("app-before-0007.sql"), to: folder.url.appendingPathComponent("pg.sql"))
        try FileManager.default.copyItem(
            at: Repository.root.appendingPathComponent("fixtures/app-before-0007.db"), to: folder.url.appendingPathComponent("lite.db"))
        let both = try toolcfg(["migrate", "verify", "--fixtures", folder.url.path], environment: ["TOOLCFG_DB": server])
        #expect(both.status == 0, "\(both.stderr)")
        #expect(
            both.stderr.contains("ok   \(folder.path("lite.db"))") && both.stderr.contains("ok   \(folder.path("pg.sql"))"),
            "\(both.stderr)")

        let noServer = try toolcfg(["migrate", "verify", "--fixtures", PostgresFixtures.folder.path])
        #expect(noServer.status == 64)
        #expect(noServer.stderr.contains("--server postgresql://"), "\(noServer.stderr)")
    }

    @Test("migrate verify --db postgresql://... through the command line: 0 when the migrations pass, 65 on a broken pair")
    func liveThroughTheCommandLine() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        try PostgresFixtures.load("app-after-0007.sql", into: try database.connect())
        let good = try toolcfg(["migrate", "verify", "--db", database.url.text])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stderr.contains("ok   7 tools config (down-up)"))
        let folder = try TemporaryFolder()
        let bad = try toolcfg(
            ["migrate", "verify", "--migrations", try Self.forgetfulPair(folder)], environment: ["TOOLCFG_DB": database.url.text])
        #expect(bad.status == 65)
        #expect(bad.stderr.contains("index idx_user_tool_configs_updated: present now, absent before"), "\(bad.stderr)")
    }
}
