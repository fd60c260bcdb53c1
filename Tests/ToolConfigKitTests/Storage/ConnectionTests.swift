import CSQLite
import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("SQLite connection layer")
struct ConnectionTests {
    /// Each test (each case of one) gets its own: Swift Testing makes a new suite value for it.
    let folder: TemporaryFolder

    init() throws {
        folder = try TemporaryFolder()
    }

    @Test("a writing connection switches the file to WAL once a write has committed, not before; foreign keys are on")
    func pragmas() throws {
        let connection = try SQLiteConnection(path: folder.path("a.db"), mode: .readWriteCreate)
        #expect(try connection.queryInt64("PRAGMA foreign_keys") == 1)
        try connection.execute("CREATE TABLE t (x)")
        let before = try Data(contentsOf: URL(fileURLWithPath: folder.path("a.db")))
        // A write that fails (rolled back) leaves the file as it was, journal mode included.
        #expect(throws: (any Error).self) { try connection.writeTransaction { try connection.execute("INSERT INTO missing VALUES (1)") } }
        #expect(try connection.queryText("PRAGMA journal_mode") == "delete")
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder.path("a.db"))) == before)
        try connection.writeTransaction { try connection.execute("INSERT INTO t VALUES (1)") }
        #expect(try connection.queryText("PRAGMA journal_mode") == "wal")
    }

    @Test("a write transaction is timed without SQLite's automatic checkpoint, which runs right after, when the WAL is as large")
    func checkpointAfterTheLock() throws {
        let path = folder.path("c.db")
        let connection = try SQLiteConnection(path: path, mode: .readWriteCreate)
        try connection.writeTransaction { try connection.execute("CREATE TABLE t (x BLOB)") }
        #expect(try connection.queryText("PRAGMA journal_mode") == "wal")
        func mainFileSize() throws -> Int { try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0 }
        // Under the automatic checkpoint's 1,000 pages: no checkpoint, the pages stay in the WAL.
        let before = try mainFileSize()
        try connection.transaction(.write, lockHeld: { _ in }) {
            try connection.execute(Self.insertingBlobs(10, of: 2000))
        }
        #expect(try mainFileSize() == before)
        // 3,000 pages: still in the WAL when the lock's time is taken, in the database file after.
        var whenTimed = 0
        try connection.transaction(.write, lockHeld: { _ in whenTimed = (try? mainFileSize()) ?? -1 }) {
            try connection.execute(Self.insertingBlobs(3000, of: 4000))
        }
        #expect(whenTimed == before)
        #expect(try mainFileSize() > 3000 * 4000)
        #expect(try connection.queryInt64("PRAGMA wal_autocheckpoint") == 1000)
        // A write that fails puts the automatic checkpoint back too.
        #expect(throws: SQLiteError.self) {
            try connection.transaction(.write, lockHeld: { _ in }) { try connection.execute("INSERT INTO missing VALUES (1)") }
        }
        #expect(try connection.queryInt64("PRAGMA wal_autocheckpoint") == 1000)
    }

    static func insertingBlobs(_ count: Int, of bytes: Int) -> String {
        """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(count))
        INSERT INTO t SELECT zeroblob(\(bytes)) FROM n
        """
    }

    @Test("a writer waits for the lock, then fails with exit 75 past the busy timeout")
    func busy() throws {
        let holder = try SQLiteConnection(path: folder.path("a.db"), mode: .readWriteCreate)
        try holder.execute("CREATE TABLE t (x)")
        try holder.execute("BEGIN IMMEDIATE")
        let waiter = try SQLiteConnection(path: folder.path("a.db"), options: .init(busyTimeout: .milliseconds(100)))
        let error = try #require(
            thrownError { try waiter.writeTransaction { try waiter.execute("INSERT INTO t VALUES (1)") } } as? SQLiteError)
        #expect(error.isBusy)
        #expect(error.exitStatus == .temporaryFailure)
        try holder.execute("ROLLBACK")
        try waiter.writeTransaction { try waiter.execute("INSERT INTO t VALUES (1)") }
        #expect(try holder.queryInt64("SELECT count(*) FROM t") == 1)
    }

    @Test("missing file, non-SQLite file and read-only file map to the contract's exit statuses")
    func openErrors() throws {
        let missing = try #require(thrownError { _ = try SQLiteConnection(path: folder.path("none.db")) } as? SQLiteError)
        #expect(missing.exitStatus == .noInput)
        #expect(!FileManager.default.fileExists(atPath: folder.path("none.db")))

        try Data("this is not a database, just text that is long enough to have a header".utf8).write(
            to: folder.url.appendingPathComponent("text.db"))
        let notADatabase = try #require(thrownError { _ = try SQLiteConnection(path: folder.path("text.db")) } as? SQLiteError)
        #expect(notADatabase.code == SQLITE_NOTADB)
        #expect(notADatabase.exitStatus == .dataError)

        let path = folder.path("ro.db")
        try SQLiteConnection(path: path, mode: .readWriteCreate).execute("CREATE TABLE t (x)")
        let reader = try SQLiteConnection(path: path, mode: .readOnly)
        let readOnly = try #require(thrownError { try reader.execute("INSERT INTO t VALUES (1)") } as? SQLiteError)
        #expect(readOnly.exitStatus == .ioError)
    }

    /// Leaves `path` with a hot journal: Python's sqlite3 (another SQLite build) spills a large
    /// transaction into the file, journal synced, and dies before it commits.
    static func dieMidCommit(_ path: String) throws {
        let script = """
            import os, sqlite3, sys
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute("PRAGMA cache_size = 1")
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t SELECT randomblob(1000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE "
                + "i < 2000) SELECT i FROM n)")
            os._exit(9)
            """
        let died = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, path])
        #expect(died.status == 9, "\(died.stderr)")
        #expect(FileManager.default.fileExists(atPath: path + "-journal"), "the writer left no journal")
    }

    @Test(
        """
        a hot journal from a writer that died mid-commit: a reader rolls it back and reads the last commit; \
        a user who cannot write gets 74 and why
        """
    )
    func hotJournal() throws {
        let path = folder.path("app.db")
        #expect(try toolcfg(["migrate", "up", "--db", path]).status == 0)
        // In rollback-journal mode, as the application's files are until something switches them.
        try SQLiteConnection(path: path, options: .init(journalModeWAL: false))
            .execute("PRAGMA journal_mode = DELETE; CREATE TABLE t (x); INSERT INTO t VALUES ('committed')")
        let committed = try Data(contentsOf: URL(fileURLWithPath: path))

        try Self.dieMidCommit(path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) != committed, "the writer's spill did not reach the file")
        let reader = try SQLiteConnection(path: path, mode: .readOnly)
        #expect(try reader.queryInt64("SELECT count(*) FROM t") == 1)
        #expect(!FileManager.default.fileExists(atPath: path + "-journal"))
        #expect(try SQLiteConnection(path: path).queryText("PRAGMA integrity_check") == "ok")

        // Through the CLI, as a user who may not write the file: refused, with the reason and the
        // way out, and the journal is left for a writer.
        try Self.dieMidCommit(path)
        chmod(path, 0o444)
        chmod(folder.url.path, 0o555)
        defer {
            chmod(folder.url.path, 0o755)
            chmod(path, 0o644)
        }
        let user = try WriteRefusingUser(database: path, owning: [folder.url.path, path, path + "-journal"])
        let export = try user.toolcfg(["export", "--db", path, "--out", "-", "--format", "jsonl"])
        #expect(export.status == 74, "\(export.stderr)")
        #expect(
            export.stderr.contains("died mid-commit") && export.stderr.contains("run the command as a user who may write it"),
            "\(export.stderr)")
        #expect(FileManager.default.fileExists(atPath: path + "-journal"))
        chmod(folder.url.path, 0o755)
        chmod(path, 0o644)
        let exported = try toolcfg(["export", "--db", path, "--out", "-", "--format", "jsonl"])
        #expect(exported.status == 0, "\(exported.stderr)")
    }
}
