import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// sqlx's lock id for each name, as Python's zlib computes the CRC.
func pythonLockIDs(_ names: [String]) throws -> [Int64] {
    let script = "import sys, zlib\nfor name in sys.argv[1:]: print(0x3d32ad9e * zlib.crc32(name.encode()))"
    let result = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script] + names)
    #expect(result.status == 0, "\(result.stderr)")
    return result.stdout.split(separator: "\n").compactMap { Int64($0) }
}

@Suite("sqlx's migration lock id")
struct MigrationLockIDTests {
    @Test("CRC-32/ISO-HDLC gives the standard check value and zlib's results")
    func crc32() throws {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        let names = ["postgres", "toolcfg", "app", "a", "ünïcödé", String(repeating: "long name ", count: 30)]
        let python = try pythonLockIDs(names)
        #expect(python.count == names.count)
        for (name, expected) in zip(names, python) {
            #expect(PostgresMigrationLock.id(database: name) == expected, "\(name)")
            #expect(Int64(CRC32.checksum(name.utf8)) * 0x3d32_ad9e == expected)
        }
    }
}

@Suite("PostgreSQL migrations", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresMigrationTests {
    static let upFile = Repository.migrations.appendingPathComponent("postgres/0007_tools_config.up.sql")

    @Test("each engine's store picks its own built-in migrations")
    func builtInSets() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let postgres = try database.connect().migrationStore().builtInMigrations()
        #expect(postgres.migrations == (try MigrationSet.embeddedPostgres()).migrations)
        let sqlite = try SQLiteConnection(path: ":memory:", mode: .readWriteCreate).migrationStore().builtInMigrations()
        #expect(sqlite.migrations == (try MigrationSet.embedded()).migrations)
        #expect(postgres.migrations.map(\.checksum) != sqlite.migrations.map(\.checksum))
    }

    @Test(
        """
        the catalogs' fingerprint names columns (type, NOT NULL, default), constraints, indexes, sequences, views, functions, \
        enums and rows
        """
    )
    func fingerprintDifferences() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute(
            """
            CREATE TABLE t (a int NOT NULL DEFAULT 1, b text, CONSTRAINT t_a_positive CHECK (a > 0));
            CREATE INDEX t_a ON t (a);
            INSERT INTO t VALUES (1, 'x');
            CREATE SEQUENCE s;
            CREATE VIEW v AS SELECT a FROM t;
            CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';
            CREATE TYPE mood AS ENUM ('ok');
            """)
        let before = try SchemaFingerprint.capture(connection)
        #expect(try SchemaFingerprint.capture(connection) == before)
        try connection.execute(
            """
            ALTER TABLE t ADD COLUMN c int;
            ALTER TABLE t ALTER COLUMN a SET DEFAULT 2;
            ALTER TABLE t ALTER COLUMN b SET NOT NULL;
            ALTER TABLE t DROP CONSTRAINT t_a_positive, ADD CONSTRAINT t_a_positive CHECK (a < 100);
            DROP INDEX t_a;
            CREATE INDEX t_a ON t (a, b);
            UPDATE t SET b = 'y';
            SELECT nextval('s');
            CREATE OR REPLACE VIEW v AS SELECT a, b FROM t;
            CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';
            """)
        try connection.execute("ALTER TYPE mood ADD VALUE 'great'")
        let found = try SchemaFingerprint.capture(connection).differences(from: before).map(\.description)
        for expected in [
            "table t column: c integer is new",
            "table t column: a integer NOT NULL DEFAULT 1 is gone", "table t column: a integer NOT NULL DEFAULT 2 is new",
            "table t column: b text is gone", "table t column: b text NOT NULL is new",
            "constraint t_a_positive on t: SQL differs: before CHECK ((a > 0)), now CHECK ((a < 100))",
            "table t index t_a: index definition changed",
            "table t rows: same count (1), different contents",
            "sequence s value: no entry before, 1 now",
            "enum mood: SQL differs: before 'ok', now 'ok', 'great'"
        ] {
            #expect(found.contains(expected), "\(expected) in \(found)")
        }
        for prefix in ["index t_a: SQL differs", "view v: SQL differs", "function f(): SQL differs"] {
            #expect(found.contains { $0.hasPrefix(prefix) }, "\(prefix) in \(found)")
        }
    }

    @Test("every script runs holding sqlx's advisory lock with sqlx's id, released afterwards")
    func lockHeldWhileMigrating() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let id = try #require(try pythonLockIDs([database.name]).first)
        let check = """
            DO $$ BEGIN
              IF NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                             AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = \(id)) THEN
                RAISE EXCEPTION 'the migration lock is not held';
              END IF;
            END $$;
            """
        let folder = try TemporaryFolder()
        let migrations = try migrationsFolder(folder, ["1_check.up.sql": check, "1_check.down.sql": check])
        let connection = try database.connect()
        let migrator = Migrator(database: connection, migrations: try .load(folder: migrations))
        #expect(try migrator.up().steps.map(\.version) == [1])
        #expect(try advisoryLocks(connection, granted: true) == 0)
        #expect(try migrator.down().steps.map(\.version) == [1])
        #expect(try advisoryLocks(connection, granted: true) == 0)
    }

    @Test("a second migrator waits for the lock and proceeds when it is released; past --busy-timeout it fails with 75, changing nothing")
    func secondMigratorWaits() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let holder = try database.connect()
        try holder.advisoryLock(try #require(try pythonLockIDs([database.name]).first))

        let quick = try toolcfg(["migrate", "up", "--db", database.url.text, "--busy-timeout", "0.3"])
        #expect(quick.status == 75, "\(quick.stderr)")
        #expect(quick.stderr.contains("waiting for the migration lock") && quick.stderr.contains("another migrator"), "\(quick.stderr)")
        #expect(try relations(holder).isEmpty)

        let waiting = Process()
        waiting.executableURL = Repository.toolcfg
        waiting.arguments = ["migrate", "up", "--db", database.url.text, "--busy-timeout", "120", "--json"]
        let output = Pipe(), errors = Pipe()
        waiting.standardOutput = output
        waiting.standardError = errors
        try waiting.run()
        // Until toolcfg waits for the lock (a deadline for the condition, not a measurement).
        let deadline = ContinuousClock.now + .seconds(60)
        while try advisoryLocks(holder, granted: false) == 0, waiting.isRunning, ContinuousClock.now < deadline {
            usleep(20_000)
        }
        #expect(try advisoryLocks(holder, granted: false) == 1)
        #expect(waiting.isRunning)
        #expect(try relations(holder).isEmpty)
        #expect(try holder.advisoryUnlock(try #require(try pythonLockIDs([database.name]).first)))
        waiting.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(waiting.terminationStatus == 0, "\(stderr)")
        let report = try JSONSerialization.jsonObject(with: output.fileHandleForReading.readDataToEndOfFile()) as? [String: Any]
        #expect(report?["applied_versions"] as? [Int] == [7])
        #expect(try MigrationLedger(database: holder).entries().map(\.version) == [7])
    }
}
