import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("Migration reversibility")
struct ReversibilityTests {
    static let fixtures = Repository.root.appendingPathComponent("fixtures").path
    static let up = String(
        decoding: try! Data(contentsOf: Repository.migrations.appendingPathComponent("0007_tools_config.up.sql")), as: UTF8.self)
    static let down = String(
        decoding: try! Data(contentsOf: Repository.migrations.appendingPathComponent("0007_tools_config.down.sql")), as: UTF8.self)

    static func digest(_ path: String) throws -> [UInt8] { Digest.sha256(try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func sqliteFiles(in folder: String) throws -> [String] {
        try FixtureDatabase.all(in: folder).filter { !$0.needsServer }.map(\.path)
    }

    @Test("the committed fixtures hold exactly what scripts/build_fixtures.py builds")
    func fixturesAreReproducible() throws {
        let folder = try TemporaryFolder()
        let result = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", Repository.scripts.appendingPathComponent("build_fixtures.py").path, folder.path("rebuilt")])
        #expect(result.status == 0, "\(result.stderr)")
        let committed = try Self.sqliteFiles(in: Self.fixtures)
        let rebuilt = try Self.sqliteFiles(in: folder.path("rebuilt"))
        #expect(committed.map { ($0 as NSString).lastPathComponent } == rebuilt.map { ($0 as NSString).lastPathComponent })
        #expect(committed.count == 4)
        for (a, b) in zip(committed, rebuilt) {
            let left = try SchemaFingerprint.capture(SQLiteConnection(path: a, mode: .readOnly))
            let right = try SchemaFingerprint.capture(SQLiteConnection(path: b, mode: .readOnly))
            #expect(left == right, "\(a): \(right.differences(from: left))")
        }
        // PostgreSQL's fixtures are scripts: the same bytes.
        let scripts = try FixtureDatabase.all(in: Self.fixtures + "/postgres").filter(\.needsServer).map(\.path)
        #expect(scripts.map { ($0 as NSString).lastPathComponent } == PostgresFixtures.names.sorted())
        for script in scripts {
            let rebuilt = folder.path("rebuilt/postgres/" + (script as NSString).lastPathComponent)
            #expect(try Self.digest(script) == Self.digest(rebuilt), "\(script)")
        }
    }

    @Test("the real migrations pass on every fixture, which stay untouched")
    func realMigrationsPass() throws {
        let paths = try Self.sqliteFiles(in: Self.fixtures)
        let before = try paths.map(Self.digest)
        let report = ReversibilityCheck(migrations: try .embedded()).verify(paths)
        for fixture in report.databases {
            #expect(fixture.ok, "\(fixture.database): \(fixture.error ?? "") \(fixture.steps.flatMap(\.failures))")
            #expect(fixture.steps.map(\.version) == [7])
        }
        #expect(try paths.map(Self.digest) == before)
        // SQLite's AUTOINCREMENT table and sqlx's ledger are named for what they are, not failed.
        let empty = try #require(report.databases.first { $0.database.hasSuffix("empty.db") })
        #expect(empty.steps[0].notes.contains { $0.contains("sqlite_sequence") && $0.contains("AUTOINCREMENT") })
        #expect(empty.steps[0].notes.contains { $0.contains("_sqlx_migrations") })
        // On a database that has 0007 with rows, the cycle is down-up and the lost rows are expected.
        let after = try #require(report.databases.first { $0.database.hasSuffix("app-after-0007.db") })
        #expect(after.steps[0].cycle == "down-up")
        #expect(after.steps[0].notes.contains { $0.contains("user_tool_configs rows: 6 before, 0 now") })
    }

    /// 0007 as it is, and a 0008 that adds an index to its table but whose down forgets it.
    static func forgetfulPair(_ folder: TemporaryFolder) throws -> String {
        try migrationsFolder(
            folder,
            [
                "0007_tools_config.up.sql": up,
                "0007_tools_config.down.sql": down,
                "0008_updated_index.up.sql": "CREATE INDEX IF NOT EXISTS idx_user_tool_configs_updated ON user_tool_configs(updated_at);\n",
                "0008_updated_index.down.sql": "-- forgot: DROP INDEX idx_user_tool_configs_updated;\n"
            ])
    }

    @Test("a down that forgets an index is caught, naming the index", arguments: ["empty.db", "app-before-0007.db", "app-after-0007.db"])
    func forgottenIndex(_ fixture: String) throws {
        let folder = try TemporaryFolder()
        let report = ReversibilityCheck(migrations: try .load(folder: try Self.forgetfulPair(folder))).verify(Self.fixtures + "/" + fixture)
        #expect(!report.ok)
        #expect(report.steps.map(\.version) == [7, 8])
        #expect(report.steps.first { $0.version == 7 }?.ok == true)
        let failures: [String] = report.steps.first(where: { $0.version == 8 })?.failures ?? []
        #expect(failures.contains("down does not undo up: index idx_user_tool_configs_updated: present now, absent before"), "\(failures)")
        #expect(
            failures.contains(
                "down does not undo up: table user_tool_configs index idx_user_tool_configs_updated: new index on (updated_at)"),
            "\(failures)")
    }

    @Test("a down that drops its own table but forgets the index statements is fine: the indexes go with the table")
    func indexesGoWithTheirTable() throws {
        let folder = try TemporaryFolder()
        let migrations = try migrationsFolder(
            folder,
            [
                "0007_tools_config.up.sql": Self.up,
                "0007_tools_config.down.sql": "DROP TABLE IF EXISTS user_tool_configs;\n"
            ])
        #expect(ReversibilityCheck(migrations: try .load(folder: migrations)).verify(Self.fixtures + "/app-before-0007.db").ok)
    }

    @Test("a down that drops a table its up did not create is caught, naming the table and its lost rows")
    func foreignDrop() throws {
        let folder = try TemporaryFolder()
        let migrations = try migrationsFolder(
            folder,
            [
                "0007_tools_config.up.sql": Self.up,
                "0007_tools_config.down.sql": Self.down + "DROP TABLE IF EXISTS app_settings;\n"
            ])
        let check = ReversibilityCheck(migrations: try .load(folder: migrations))
        let report = check.verify(Self.fixtures + "/app-before-0007.db")
        #expect(!report.ok)
        let failures = report.steps.flatMap(\.failures)
        #expect(failures.contains { $0 == "down does not undo up: table app_settings: present before, absent now" }, "\(failures)")
        // Applied already: the down-up cycle names it too.
        let applied = check.verify(Self.fixtures + "/app-after-0007.db")
        #expect(applied.steps.flatMap(\.failures).contains { $0.contains("table app_settings: present before, absent now") })
    }

    @Test("a down that deletes rows of another table is caught")
    func foreignRows() throws {
        let folder = try TemporaryFolder()
        let migrations = try migrationsFolder(
            folder,
            [
                "0007_tools_config.up.sql": Self.up,
                "0007_tools_config.down.sql": Self.down + "DELETE FROM downloads WHERE id = (SELECT max(id) FROM downloads);\n"
            ])
        let report = ReversibilityCheck(migrations: try .load(folder: migrations)).verify(Self.fixtures + "/app-before-0007.db")
        let failures = report.steps.flatMap(\.failures)
        #expect(failures.contains("down does not undo up: table downloads rows: 2 before, 1 now"), "\(failures)")
        #expect(failures.contains("down run again on a database without its objects: table downloads rows: 1 before, 0 now"), "\(failures)")
    }

    @Test("a migration without a down, or an up that fails when run again, is reported as such")
    func missingDownAndStrictUp() throws {
        let folder = try TemporaryFolder()
        let strict = try migrationsFolder(
            folder,
            [
                "0007_tools_config.up.sql": Self.up.replacingOccurrences(of: "IF NOT EXISTS ", with: ""),
                "0007_tools_config.down.sql": Self.down
            ])
        let report = ReversibilityCheck(migrations: try .load(folder: strict)).verify(Self.fixtures + "/empty.db")
        #expect(report.ok)
        #expect(report.steps[0].notes.contains { $0.contains("fails and rolls back") && $0.contains("already exists") })
        let noDown = try migrationsFolder(folder, ["0007_tools_config.up.sql": Self.up])
        let missing = ReversibilityCheck(migrations: try .load(folder: noDown)).verify(Self.fixtures + "/empty.db")
        #expect(!missing.ok)
        #expect(missing.steps[0].failures == ["no down migration (0007_tools_config.up.sql has no .down.sql)"])
    }

    @Test("fingerprint differences name the column, the index and the rows")
    func differences() throws {
        let folder = try TemporaryFolder()
        let connection = try SQLiteConnection(path: folder.path("d.db"), mode: .readWriteCreate)
        try connection.execute("CREATE TABLE t (a INTEGER, b TEXT); CREATE INDEX t_a ON t(a); INSERT INTO t VALUES (1, 'x');")
        let before = try SchemaFingerprint.capture(connection)
        try connection.execute("ALTER TABLE t ADD COLUMN c INTEGER; DROP INDEX t_a; CREATE INDEX t_a ON t(a, b); UPDATE t SET b = 'y';")
        let found = try SchemaFingerprint.capture(connection).differences(from: before).map(\.description)
        #expect(found.contains("table t column: c INTEGER is new"))
        #expect(found.contains("table t index t_a: index definition changed"))
        #expect(found.contains("table t rows: same count (1), different contents"))
        #expect(found.contains { $0.hasPrefix("table t: SQL differs") })
    }

    @Test("migrate verify through the command line: exit 0 and a JSON report on the fixtures, 65 on a broken pair")
    func commandLine() throws {
        let good = try toolcfg(["migrate", "verify", "--fixtures", Self.fixtures, "--json"])
        #expect(good.status == 0, "\(good.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(good.stdout.utf8)) as? [String: Any]
        #expect((report?["databases"] as? [[String: Any]])?.count == 4)
        let folder = try TemporaryFolder()
        let bad = try toolcfg(["migrate", "verify", "--db", Self.fixtures + "/empty.db", "--migrations", try Self.forgetfulPair(folder)])
        #expect(bad.status == 65)
        #expect(bad.stderr.contains("FAIL 8 updated index (up-down-up)") && bad.stdout.isEmpty)
        #expect(bad.stderr.contains("index idx_user_tool_configs_updated: present now, absent before"))
    }
}
