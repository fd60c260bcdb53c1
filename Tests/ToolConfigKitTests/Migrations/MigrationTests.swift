import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("Migrations and the sqlx ledger")
struct MigrationTests {
    static let seedObjects = [
        "index idx_user_tool_configs_enabled", "index idx_user_tool_configs_tool_id",
        "index idx_user_tool_configs_user_id", "table user_tool_configs"
    ]

    @Test(
        "the built-in migrations are byte for byte the files of migrations/ (SQLite) and migrations/postgres/",
        arguments: ["", "postgres"])
    func embeddedEqualsFiles(_ subfolder: String) throws {
        let folder = subfolder.isEmpty ? Repository.migrations : Repository.migrations.appendingPathComponent(subfolder)
        let embedded = try subfolder.isEmpty ? MigrationSet.embedded() : MigrationSet.embeddedPostgres()
        let files = try MigrationSet.load(folder: folder.path)
        let sqlOnDisk = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(embedded.migrations.flatMap { [$0.up.fileName] + ($0.down.map { [$0.fileName] } ?? []) }.sorted() == sqlOnDisk)
        #expect(embedded.migrations == files.migrations)
        for migration in embedded.migrations {
            let onDisk = try Data(contentsOf: folder.appendingPathComponent(migration.up.fileName))
            #expect(migration.checksum == Digest.sha384([UInt8](onDisk)))
        }
        #expect(embedded.migrations.map(\.version) == [7])
        #expect(embedded.migrations.first?.description == "tools config")
    }

    @Test(
        "file names are read as sqlx reads them",
        arguments: [
            ("0007_tools_config.up.sql", 7, "tools config", "up"),
            ("0007_tools_config.down.sql", 7, "tools config", "down"),
            ("20240101120000_add_x.sql", 20240101120000, "add x", "simple"),
            ("3_a_b_c.up.sql", 3, "a b c", "up")
        ] as [(String, Int64, String, String)])
    func fileNames(_ name: String, version: Int64, description: String, kind: String) throws {
        let parsed = try #require(MigrationFileName(name))
        #expect(parsed.version == version)
        #expect(parsed.description == description)
        #expect("\(parsed.kind)" == kind)
    }

    @Test("names sqlx ignores are ignored", arguments: ["abc_x.sql", "0_x.sql", "7.sql", "7_x.txt", "README.md", "-1_x.sql"])
    func ignoredNames(_ name: String) {
        #expect(MigrationFileName(name) == nil)
    }

    /// What each engine shows of the built-in migration and of sqlx's ledger, in its own words.
    struct EngineShapes {
        /// The relations after `up`, and after `down` (only the ledger, with SQLite's counter table).
        var upped: [String], downed: [String]
        /// sqlx's ledger, column by column: name, type, NOT NULL, default, part of the primary key.
        var ledger: [String]
        var upFile: URL

        init(_ engine: DatabaseEngine) {
            switch engine {
            case .sqlite:
                upped =
                    MigrationTests.seedObjects.prefix(3) + ["table _sqlx_migrations", "table sqlite_sequence", "table user_tool_configs"]
                downed = ["table _sqlx_migrations", "table sqlite_sequence"]
                ledger = [
                    "version BIGINT 0 - 1", "description TEXT 1 - 0", "installed_on TIMESTAMP 1 CURRENT_TIMESTAMP 0",
                    "success BOOLEAN 1 - 0", "checksum BLOB 1 - 0", "execution_time BIGINT 1 - 0"
                ]
                upFile = Repository.migrations.appendingPathComponent("0007_tools_config.up.sql")
            case .postgresql:
                upped = [
                    "S user_tool_configs_id_seq", "i _sqlx_migrations_pkey", "i idx_user_tool_configs_enabled",
                    "i idx_user_tool_configs_tool_id", "i idx_user_tool_configs_user_id", "i user_tool_configs_pkey",
                    "i user_tool_configs_user_id_tool_id_key", "r _sqlx_migrations", "r user_tool_configs"
                ]
                downed = ["i _sqlx_migrations_pkey", "r _sqlx_migrations"]
                ledger = [
                    "version bigint NO - 1", "description text NO - 0", "installed_on timestamp with time zone NO now() 0",
                    "success boolean NO - 0", "checksum bytea NO - 0", "execution_time bigint NO - 0"
                ]
                upFile = Repository.migrations.appendingPathComponent("postgres/0007_tools_config.up.sql")
            }
        }

        static func ledger(_ connection: any Database, _ engine: DatabaseEngine) throws -> [String] {
            let sql =
                switch engine {
                case .sqlite:
                    """
                    SELECT name, type, "notnull", coalesce(dflt_value, '-'), pk FROM pragma_table_info('_sqlx_migrations') ORDER BY cid
                    """
                case .postgresql:
                    """
                    SELECT column_name, data_type, is_nullable, coalesce(column_default, '-'),
                      (SELECT count(*) FROM information_schema.table_constraints c JOIN information_schema.key_column_usage k
                       USING (constraint_schema, constraint_name)
                       WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_name = '_sqlx_migrations'
                         AND k.column_name = columns.column_name)
                    FROM information_schema.columns
                    WHERE table_name = '_sqlx_migrations' ORDER BY ordinal_position
                    """
                }
            return try textRows(connection, sql).map { $0.map { $0 ?? "NULL" }.joined(separator: " ") }
        }
    }

    @Test(
        """
        up on an empty database creates exactly the seed's objects and sqlx's own ledger, recording version 7 with the file's \
        checksum; up again does nothing; down leaves only the ledger, empty
        """,
        arguments: ScratchDatabase.engines)
    func emptyDatabase(_ engine: DatabaseEngine) throws {
        let scratch = try ScratchDatabase(engine, migrated: false)
        defer { scratch.drop() }
        let connection = try scratch.connect()
        let expected = EngineShapes(engine)
        let migrator = Migrator(database: connection, migrations: try connection.migrationStore().builtInMigrations())
        let report = try migrator.up()
        #expect(report.steps.map(\.version) == [7])
        #expect(report.database == scratch.reportedName)
        #expect(try relations(connection) == expected.upped)
        #expect(try EngineShapes.ledger(connection, engine) == expected.ledger)
        let entry = try #require(try MigrationLedger(database: connection).entries().first)
        #expect(entry.version == 7 && entry.description == "tools config" && entry.success)
        #expect(entry.checksum == Digest.sha384(Array(try Data(contentsOf: expected.upFile))))
        #expect(entry.executionTime > 0)
        let columns = try connection.migrationStore().columnNames(of: "user_tool_configs")
        #expect(columns == ["id", "user_id", "tool_id", "enabled", "encrypted_api_key", "salt", "nonce", "created_at", "updated_at"])

        #expect(try migrator.up().steps.isEmpty)
        #expect(try migrator.down().steps.map(\.version) == [7])
        #expect(try relations(connection) == expected.downed)
        #expect(try MigrationLedger(database: connection).entries().isEmpty)
        #expect(try migrator.up().steps.map(\.version) == [7])
    }

    @Test(
        "on the application's database: 1..6 are left alone, 7 is added and removed, and the database is as before",
        arguments: ScratchDatabase.engines)
    func applicationDatabase(_ engine: DatabaseEngine) throws {
        let scratch = try ScratchDatabase(engine, migrated: false)
        defer { scratch.drop() }
        try scratch.loadApplicationDatabaseBefore0007()
        let connection = try scratch.connect()
        let before = try DatabaseState(connection)
        let migrator = Migrator(database: connection, migrations: try connection.migrationStore().builtInMigrations())
        #expect(try migrator.status().entries.map(\.state) == Array(repeating: .missingFile, count: 6) + [.pending])

        #expect(try migrator.up().steps.map(\.version) == [7])
        #expect(try MigrationLedger(database: connection).entries().map(\.version) == Array(1...7))
        #expect(try migrator.status().entries.map(\.state) == Array(repeating: .missingFile, count: 6) + [.applied])
        // Exactly 0007's objects are added; every other table (SQLite's counter table included)
        // keeps its rows, and the application's tables their shape.
        let upped = try DatabaseState(connection)
        let shapes = EngineShapes(engine)
        #expect(Set(before.relations).isSubset(of: upped.relations))
        #expect(Set(upped.relations).subtracting(before.relations) == Set(shapes.upped).subtracting(shapes.downed))
        #expect(before.rows.keys.contains("api_model_aliases") && before.rows.keys.contains("_sqlx_migrations"))
        for (table, rows) in before.rows where table != "_sqlx_migrations" {
            #expect(upped.rows[table] == rows, "\(table)")
        }
        for table in ["api_model_aliases", "app_settings", "downloads"] {
            let shape = try #require(before.fingerprint.tables.first { $0.name == table })
            #expect(upped.fingerprint.tables.first { $0.name == table } == shape)
        }

        #expect(try migrator.down().steps.map(\.version) == [7])
        #expect(try DatabaseState(connection) == before)

        // Reverting the application's own versions is refused before anything runs.
        _ = try migrator.up()
        let error = thrownError { _ = try migrator.down(to: 0) }
        #expect("\(error.map(String.init(describing:)) ?? "")".contains("migration 6"))
        #expect(try MigrationLedger(database: connection).entries().map(\.version) == Array(1...7))
    }

    @Test(
        """
        a dirty ledger row is refused for up and down, and allowed with allowDirty; a drifted checksum is refused, explained, \
        and allowed with allowDrift; on either engine
        """,
        arguments: ScratchDatabase.engines)
    func dirtyAndDrift(_ engine: DatabaseEngine) throws {
        let database = try ScratchDatabase(engine, migrated: false)
        defer { database.drop() }
        let connection = try database.connect()
        let builtIn = try connection.migrationStore().builtInMigrations()
        let migrator = Migrator(database: connection, migrations: builtIn)
        _ = try migrator.up()
        try connection.execute("UPDATE _sqlx_migrations SET success = false", context: nil)
        for run in [{ _ = try migrator.up() }, { _ = try migrator.down() }] as [() throws -> Void] {
            let error = try #require(thrownError(run) as? MigrationError)
            #expect(error.description.contains("dirty") && error.exitStatus == .dataError, "\(error)")
        }
        #expect(try migrator.status().entries.first?.state == .dirty)
        #expect(try Migrator(database: connection, migrations: builtIn, options: .init(allowDirty: true)).down().steps.count == 1)

        _ = try migrator.up()
        let otherChecksum = engine == .sqlite ? "randomblob(48)" : "'\\x00'::bytea"
        try connection.execute("UPDATE _sqlx_migrations SET checksum = \(otherChecksum) WHERE version = 7", context: nil)
        let error = try #require(thrownError { _ = try migrator.down() } as? MigrationError)
        #expect(error.exitStatus == .dataError)
        #expect(error.description.contains("checksum mismatch"))
        let status = try migrator.status()
        #expect(status.entries.first?.state == .drifted)
        #expect(status.entries.first?.drift == nil)
        #expect(try connection.migrationStore().tableExists("user_tool_configs"))
        let allowed = Migrator(database: connection, migrations: builtIn, options: .init(allowDrift: true))
        #expect(try allowed.down().steps.map(\.version) == [7])
        #expect(!(try connection.migrationStore().tableExists("user_tool_configs")))
    }

    @Test(
        "drift of only line endings, byte order mark or trailing newline is named as such",
        arguments: [
            ("CRLF", "line endings"), ("BOM", "byte order mark"), ("trailing", "newline")
        ])
    func falseDrift(_ change: String, expected: String) throws {
        let folder = try TemporaryFolder()
        let original = String(
            decoding: try Data(contentsOf: Repository.migrations.appendingPathComponent("0007_tools_config.up.sql")), as: UTF8.self)
        let rewritten =
            switch change {
            case "CRLF": original.replacingOccurrences(of: "\n", with: "\r\n")
            case "BOM": "\u{FEFF}" + original
            default: original + "\n\n"
            }
        let migrations = try migrationsFolder(folder, ["0007_tools_config.up.sql": rewritten])
        let connection = try SQLiteConnection(path: folder.path("a.db"), mode: .readWriteCreate)
        _ = try Migrator(database: connection, migrations: try .embedded()).up()
        let status = try Migrator(database: connection, migrations: try .load(folder: migrations)).status()
        #expect(status.entries.first?.state == .drifted)
        let explanation = try #require(status.entries.first?.drift)
        #expect(explanation.contains("only the byte order mark, line endings or trailing newlines differ"))
        #expect(explanation.contains(expected))
        let error = try #require(thrownError { _ = try Migrator(database: connection, migrations: try .load(folder: migrations)).up() })
        #expect("\(error)".contains(expected))
    }

    static let foreignLedgers = [
        "CREATE TABLE seaql_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY, run_on TIMESTAMP)",
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, dirty BOOLEAN NOT NULL)",
        "CREATE TABLE \"__EFMigrationsHistory\" (\"MigrationId\" TEXT PRIMARY KEY)",
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, name TEXT)"
    ]

    @Test(
        """
        another tool's ledger, or a _sqlx_migrations of another shape, is refused and nothing is written; \
        the application's sea-orm ledger is read by status; on either engine
        """,
        arguments: ScratchDatabase.engines, foreignLedgers)
    func foreignLedger(_ engine: DatabaseEngine, _ sql: String) throws {
        let database = try ScratchDatabase(engine, migrated: false)
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute(sql, context: nil)
        let before = try SchemaFingerprint.capture(connection)
        let migrator = Migrator(database: connection, migrations: try connection.migrationStore().builtInMigrations())
        let seaORM = sql.contains("seaql_migrations")
        var runs: [() throws -> Void] = [{ _ = try migrator.up() }, { _ = try migrator.down() }]
        if !seaORM { runs.append { _ = try migrator.status() } }
        for run in runs {
            let error = try #require(thrownError(run) as? MigrationError)
            #expect(error.exitStatus == .dataError)
        }
        if seaORM {
            try connection.execute(
                "INSERT INTO seaql_migrations VALUES ('m20250101_000000_extensions', 1767225600), ('m20250101_000014_tenants', 1767225601)",
                context: nil)
            let status = try migrator.status()
            #expect(
                status.ledger == "sea-orm" && status.entries.isEmpty
                    && status.seaORMMigrations?.map(\.version).last == "m20250101_000014_tenants")
            #expect(status.applicationRelease.releases == "v0.0.46" && status.applicationRelease.ledger == "sea-orm")
            try connection.execute("DELETE FROM seaql_migrations", context: nil)
            // A sea-orm ledger with none of the application's migrations tells no release.
            #expect(
                try migrator.status().applicationRelease.releases == "unknown" && (try migrator.status().applicationRelease.readsV2) == nil)
        }
        let after = try SchemaFingerprint.capture(connection)
        #expect(after == before, "\(after.differences(from: before))")
    }

    @Test(
        "a failing migration rolls back with its ledger row and names file and line, on either engine", arguments: ScratchDatabase.engines)
    func failingMigration(_ engine: DatabaseEngine) throws {
        let database = try ScratchDatabase(engine, migrated: false)
        defer { database.drop() }
        let folder = try TemporaryFolder()
        let migrations = try migrationsFolder(
            folder,
            [
                "0001_first.up.sql": "CREATE TABLE first (x int);\n",
                "0001_first.down.sql": "DROP TABLE first;\n",
                "0002_broken.up.sql": "CREATE TABLE second (x int);\n\nINSERT INTO missing VALUES (1);\n",
                "0002_broken.down.sql": "DROP TABLE second;\n"
            ])
        let connection = try database.connect()
        let migrator = Migrator(database: connection, migrations: try .load(folder: migrations))
        let error = try #require(thrownError { _ = try migrator.up() } as? MigrationError)
        let engineSays = engine == .sqlite ? "no such table: missing" : "relation \"missing\" does not exist (SQLSTATE 42P01)"
        #expect(error.description.contains("0002_broken.up.sql, line 3: \(engineSays)"), "\(error)")
        #expect(error.exitStatus == .dataError && error.errorContext.file == "0002_broken.up.sql")
        #expect(error.errorContext.database == database.reportedName)
        // Migration 1 committed on its own; 2 left no table and no ledger row.
        #expect(try MigrationLedger(database: connection).entries().map(\.version) == [1])
        #expect(!(try connection.migrationStore().tableExists("second")))
    }

    @Test("--to and --steps select versions; a missing down file or unknown version is refused up front")
    func targets() throws {
        let folder = try TemporaryFolder()
        let migrations = try migrationsFolder(
            folder,
            [
                "1_a.up.sql": "CREATE TABLE a (x);", "1_a.down.sql": "DROP TABLE a;",
                "2_b.up.sql": "CREATE TABLE b (x);", "2_b.down.sql": "DROP TABLE b;",
                "3_c.up.sql": "CREATE TABLE c (x);", "3_c.down.sql": "DROP TABLE c;",
                "4_d.sql": "CREATE TABLE d (x);"
            ])
        let connection = try SQLiteConnection(path: folder.path("a.db"), mode: .readWriteCreate)
        let migrator = Migrator(database: connection, migrations: try .load(folder: migrations))
        #expect(try migrator.up(to: 2).steps.map(\.version) == [1, 2])
        #expect(thrownError { _ = try migrator.up(to: 9) } is MigrationError)
        #expect(try migrator.up().steps.map(\.version) == [3, 4])
        let noDown = try #require(thrownError { _ = try migrator.down() } as? MigrationError)
        #expect(noDown.description.contains("no .down.sql"))
        #expect(try MigrationLedger(database: connection).entries().count == 4)
        try connection.execute("DELETE FROM _sqlx_migrations WHERE version = 4; DROP TABLE d;")
        #expect(try migrator.down(steps: 2).steps.map(\.version) == [3, 2])
        #expect(try migrator.down(to: 0).steps.map(\.version) == [1])
        #expect(try relations(connection) == ["table _sqlx_migrations"])
    }

    @Test(
        "a down that would drop or empty tables holding rows is refused, says which and how many, and changes nothing",
        arguments: ScratchDatabase.engines, [(nil, nil), (0, nil), (nil, 2)] as [(Int64?, Int?)])
    func downKeepsRows(_ engine: DatabaseEngine, to bounds: (target: Int64?, steps: Int?)) throws {
        let (target, steps) = bounds
        let folder = try TemporaryFolder()
        let migrations = try migrationsFolder(
            folder,
            [
                "1_a.up.sql": "CREATE TABLE a (x TEXT); INSERT INTO a VALUES ('1'), ('2');", "1_a.down.sql": "DROP TABLE a;",
                "2_b.up.sql": "CREATE TABLE b (x TEXT);", "2_b.down.sql": "DROP TABLE b;",
                "3_c.up.sql": "CREATE TABLE c (x TEXT); INSERT INTO a VALUES ('3');",
                "3_c.down.sql": "DELETE FROM a WHERE x = '3'; DROP TABLE c;"
            ])
        let scratch = try ScratchDatabase(engine, migrated: false)
        defer { scratch.drop() }
        let connection = try scratch.connect()
        let migrator = Migrator(database: connection, migrations: try .load(folder: migrations))
        _ = try migrator.up()
        try connection.execute("INSERT INTO c VALUES ('kept'), ('kept too'); INSERT INTO b VALUES ('1');", context: nil)
        // One step reverts c (2 rows dropped, 1 row of a deleted); two add b; to 0 adds a's 2 rows.
        let expected: [DataLoss] =
            switch (target, steps) {
            case (0?, _):
                [
                    DataLoss(table: "a", rows: 3, dropped: true), DataLoss(table: "b", rows: 1, dropped: true),
                    DataLoss(table: "c", rows: 2, dropped: true)
                ]
            case (_, 2?):
                [
                    DataLoss(table: "a", rows: 1, dropped: false), DataLoss(table: "b", rows: 1, dropped: true),
                    DataLoss(table: "c", rows: 2, dropped: true)
                ]
            default: [DataLoss(table: "a", rows: 1, dropped: false), DataLoss(table: "c", rows: 2, dropped: true)]
            }
        let before = try DatabaseState(connection)

        let refused = try #require(thrownError { _ = try migrator.down(to: target, steps: steps) } as? MigrationError)
        #expect(refused.exitStatus == .usage)
        guard case .wouldLoseRows(let loss) = refused else { Issue.record("\(refused)"); return }
        #expect(loss == expected)
        #expect(refused.description.contains("drop c (2 rows)") && refused.description.contains("--yes"), "\(refused)")

        let dryRun = try migrator.down(to: target, steps: steps, dryRun: true)
        #expect(dryRun.dryRun && dryRun.dataLoss == expected)
        #expect(
            dryRun.steps.first?.sql == "DELETE FROM a WHERE x = '3'; DROP TABLE c;" && dryRun.steps.allSatisfy { $0.elapsedSeconds == nil })
        #expect(dryRun.appliedVersions == [1, 2, 3])
        #expect(try DatabaseState(connection) == before)
        #expect(!connection.isInTransaction)

        let done = try migrator.down(to: target, steps: steps, allowDataLoss: true)
        #expect(done.dataLoss == expected && !done.dryRun)
        #expect(done.steps.count == (target == 0 ? 3 : steps ?? 1))
        let dropped = Set(expected.filter(\.dropped).map(\.table))
        #expect(try relations(connection).filter { dropped.contains(String($0.split(separator: " ").last ?? "")) }.isEmpty)
    }

    @Test(
        "the built-in down with rows in user_tool_configs is refused with the count, a dry run changes nothing, allowed it drops the table",
        arguments: ScratchDatabase.engines)
    func builtInDownKeepsRows(_ engine: DatabaseEngine) throws {
        let scratch = try ScratchDatabase(engine)
        defer { scratch.drop() }
        let connection = try scratch.connect()
        let migrator = Migrator(database: connection, migrations: try connection.migrationStore().builtInMigrations())
        try connection.execute(
            "INSERT INTO user_tool_configs (user_id, tool_id, created_at, updated_at) VALUES ('a', 't', 1, 1), ('b', 't', 1, 1)",
            context: nil)
        let before = try DatabaseState(connection)
        let expected = [DataLoss(table: "user_tool_configs", rows: 2, dropped: true)]
        let refused = try #require(thrownError { _ = try migrator.down() } as? MigrationError)
        guard case .wouldLoseRows(let loss) = refused else { Issue.record("\(refused)"); return }
        #expect(loss == expected && refused.exitStatus == .usage)
        let dryRun = try migrator.down(dryRun: true)
        #expect(dryRun.dryRun && dryRun.dataLoss == expected && dryRun.steps.first?.sql != nil)
        #expect(try DatabaseState(connection) == before)
        #expect(!connection.isInTransaction)
        #expect(try migrator.down(allowDataLoss: true).dataLoss == expected)
        #expect(try relations(connection) == EngineShapes(engine).downed)
    }

    @Test("a down that takes no rows needs no --yes")
    func downWithoutRows() throws {
        let folder = try TemporaryFolder()
        let connection = try SQLiteConnection(path: folder.path("a.db"), mode: .readWriteCreate)
        let migrator = Migrator(database: connection, migrations: try .embedded())
        _ = try migrator.up()
        try connection.execute(
            "INSERT INTO user_tool_configs (user_id, tool_id, created_at, updated_at) VALUES ('u', 't', 1, 1); "
                + "DELETE FROM user_tool_configs;"
        )
        let report = try migrator.down()
        #expect(report.steps.map(\.version) == [7] && report.dataLoss == [])
    }

    @Test("duplicate versions and a down file without an up are refused when loading")
    func badFolders() throws {
        let folder = try TemporaryFolder()
        let duplicate = try migrationsFolder(folder, ["1_a.sql": "SELECT 1;", "01_b.sql": "SELECT 1;"])
        #expect(thrownError { _ = try MigrationSet.load(folder: duplicate) } is MigrationError)
        let orphan = try migrationsFolder(folder, ["1_a.down.sql": "SELECT 1;"])
        #expect(thrownError { _ = try MigrationSet.load(folder: orphan) } is MigrationError)
        #expect(thrownError { _ = try MigrationSet.load(folder: folder.path("absent")) } is MigrationError)
    }

    @Test(
        "a -- no-transaction migration runs outside a transaction, as sqlx runs it; unmarked, the engine refuses it; on either engine",
        arguments: ScratchDatabase.engines)
    func noTransaction(_ engine: DatabaseEngine) throws {
        let database = try ScratchDatabase(engine, migrated: false)
        defer { database.drop() }
        let folder = try TemporaryFolder()
        // What each engine refuses inside a transaction.
        let (statement, refusal) =
            engine == .sqlite
            ? ("VACUUM;\n", "cannot VACUUM from within a transaction")
            : ("CREATE INDEX CONCURRENTLY t_x ON t (x);\n", "cannot run inside a transaction block")
        let connection = try database.connect()
        let unmarked = try migrationsFolder(folder, ["1_t.up.sql": "CREATE TABLE t (x int);", "2_outside.up.sql": statement])
        let refused = thrownError { _ = try Migrator(database: connection, migrations: try .load(folder: unmarked)).up() }
        #expect("\(refused.map(String.init(describing:)) ?? "")".contains(refusal), "\(String(describing: refused))")
        let marked = try migrationsFolder(
            folder, ["1_t.up.sql": "CREATE TABLE t (x int);", "2_outside.up.sql": "-- no-transaction\n" + statement])
        #expect(try Migrator(database: connection, migrations: try .load(folder: marked)).up().steps.map(\.version) == [2])
        #expect(try MigrationLedger(database: connection).entries().map(\.version) == [1, 2])
        if engine == .postgresql { #expect(try SchemaFingerprint.capture(connection).objects.contains { $0.name == "t_x" }) }
    }
}
