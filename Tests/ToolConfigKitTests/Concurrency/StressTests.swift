import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Concurrent writers on the unique-constraint upsert, and the checker that judges them: the
/// correct write keeps every invariant at 0 with threads and with processes, and each deliberately
/// wrong write makes its invariant count go above 0. Small runs with fixed seeds (a few hundred
/// operations per writer); nothing here asserts on time.
@Suite("Stress")
struct StressTests {
    static let seed: UInt64 = 20_251_126

    static func scratchDatabase(_ folder: TemporaryFolder) throws -> String {
        let path = folder.path("stress.db")
        try migratedDatabase(at: path).close()
        return path
    }

    static func run(
        _ path: String, writers: Int = 4, operations: Int = 300, pairs: Int = 8, write: StressWriteMode = .correct,
        launch: StressTest.Writers = .threads
    ) throws -> StressTest.Report {
        try StressTest(
            path: path,
            options: .init(
                writers: writers, operations: operations, pairs: pairs, seed: seed,
                write: write, launch: launch)
        ).run()
    }

    /// What every run must account for, whatever the write: each operation counted once, and
    /// the log holding exactly the committed writes.
    static func expectAccounted(_ report: StressTest.Report, _ database: any Database) throws {
        #expect(report.upserts + report.reads + report.deletes == report.operations)
        #expect(report.latency.upsert.count == report.upserts)
        #expect(report.latency.read.count == report.reads)
        #expect(try database.migrationStore().rowCounts()[StressLog.table] == Int64(report.committedWrites))
    }

    static let launches: [StressTest.Writers] = [.threads, .processes(executable: Repository.toolcfg.path)]

    @Test(
        "the upsert keeps every invariant at 0 on either engine, with threads and with processes",
        arguments: ScratchDatabase.engines, launches)
    func correct(_ engine: DatabaseEngine, _ launch: StressTest.Writers) throws {
        let database = try ScratchDatabase(engine)
        defer { database.drop() }
        let report = try StressTest(
            location: database.location, options: .init(writers: 4, operations: 300, pairs: 8, seed: Self.seed, launch: launch)
        ).run()
        #expect(report.engine == engine && report.database == database.reportedName)
        #expect(report.invariants == StressTest.Invariants(), "\(report.problems)")
        #expect(report.ok)
        if case .processes = launch { #expect(report.mode == "processes") } else { #expect(report.mode == "threads") }
        try Self.expectAccounted(report, database.connect())
        // No operation failed, so every upsert and delete committed, each in its own transaction.
        #expect(report.committedWrites == report.upserts + report.deletes)
        #expect(report.latency.lockAcquisition.count == report.committedWrites)
        #expect(report.finalRows <= 8 && report.finalRows > 0)
        #expect(report.operationsPerSecond > 0)
        if engine == .postgresql { #expect(report.integrityCheck.contains("amcheck bt_index_check"), "\(report.integrityCheck)") }
    }

    @Test(
        "each deliberately wrong write makes its invariant count go above 0",
        arguments: [StressWriteMode.wrongReplace, .wrongDeferred, .wrongSplit])
    func checkerBites(_ write: StressWriteMode) throws {
        let folder = try TemporaryFolder()
        let path = try Self.scratchDatabase(folder)
        let report = try Self.run(path, write: write)
        let counts = report.invariants
        #expect(!report.ok)
        #expect(counts.duplicatePairs == 0 && counts.integrityFailures == 0)
        switch write {
        case .wrongReplace:
            // Every update of an existing row deletes it and inserts a new id.
            #expect(counts.idChanges > 0)
            #expect(counts.writerErrors == 0)
        case .wrongDeferred:
            // The lock upgrade of a transaction that has read fails at once with SQLITE_BUSY.
            #expect(counts.writerErrors > 0)
            #expect(report.busyErrors == counts.writerErrors)
            #expect(report.problems.contains { $0.contains("SQLITE_BUSY") })
        case .wrongSplit:
            // A write based on a read made before the lock overwrites writes it never saw.
            #expect(counts.lostUpdates > 0)
            #expect(report.problems.contains { $0.contains("did not see that write") })
        case .correct:
            Issue.record("not a wrong write")
        }
        try Self.expectAccounted(report, SQLiteConnection(path: path))
    }

    @Test("a writer process that cannot start or fails before it is ready fails the run, naming the writer")
    func workerFailure() throws {
        let folder = try TemporaryFolder()
        let path = try Self.scratchDatabase(folder)
        for executable in [folder.path("no-such-toolcfg"), "/bin/false"] {
            let error = thrownError { _ = try Self.run(path, writers: 2, operations: 10, launch: .processes(executable: executable)) }
            let stress = try #require(error as? StressError, "\(String(describing: error))")
            #expect(stress.exitStatus == .software)
            #expect(stress.description.contains("stress writer 0 (process)"), "\(stress)")
        }
    }

    @Test("the checker counts duplicates, id changes, lost updates and integrity failures in a crafted database")
    func checkerFindings() throws {
        let folder = try TemporaryFolder()
        let path = folder.path("crafted.db")
        do {
            let connection = try SQLiteConnection(path: path, mode: .readWriteCreate)
            // The table without its UNIQUE(user_id, tool_id), so a duplicate can exist.
            try connection.execute(
                """
                CREATE TABLE user_tool_configs (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, tool_id TEXT NOT NULL,
                    enabled INTEGER NOT NULL DEFAULT 0, encrypted_api_key TEXT, salt TEXT, nonce TEXT,
                    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
                \(SQLiteStressStore.createLogSQL);
                CREATE TABLE other (a, b);
                CREATE INDEX other_a ON other(a);
                INSERT INTO other VALUES (1, 10), (2, 20);
                """)
            let log = try connection.prepare(SQLiteStressStore.insertLogSQL)
            let row = try connection.prepare(
                "INSERT INTO user_tool_configs (id, user_id, tool_id, encrypted_api_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, "
                    + "0, ?5)"
            )
            var counter: Int64 = 0
            func upsert(_ pair: Int, version: Int64, id: Int64, token: String) throws {
                let key = StressLog.pair(pair)
                counter += 1
                try log.run([
                    .integer(0), .integer(counter), .text(key.user), .text(key.tool), .text("upsert"), .integer(version), .integer(id),
                    .text(token)
                ])
            }
            func delete(_ pair: Int, id: Int64) throws {
                let key = StressLog.pair(pair)
                counter += 1
                try log.run([.integer(0), .integer(counter), .text(key.user), .text(key.tool), .text("delete"), .null, .integer(id), .null])
            }
            func final(_ pair: Int, id: Int64, token: String, version: Int64) throws {
                let key = StressLog.pair(pair)
                try row.run([.integer(id), .text(key.user), .text(key.tool), .text(token), .integer(version)])
            }
            // Pair 0: updated, deleted, inserted again with a new id: all legitimate.
            try upsert(0, version: 1, id: 1, token: "w0.1")
            try upsert(0, version: 2, id: 1, token: "w1.1")
            try delete(0, id: 1)
            try upsert(0, version: 1, id: 5, token: "w0.3")
            try final(0, id: 5, token: "w0.3", version: 1)
            // Pair 1: a second row for the pair.
            try upsert(1, version: 1, id: 2, token: "w0.4")
            try final(1, id: 2, token: "w0.4", version: 1)
            try final(1, id: 6, token: "w9.9", version: 1)
            // Pair 2: an update that changed the id.
            try upsert(2, version: 1, id: 3, token: "w0.5")
            try upsert(2, version: 2, id: 7, token: "w1.5")
            try final(2, id: 7, token: "w1.5", version: 2)
            // Pair 3: two writes of version 1 in one incarnation: the second never saw the first.
            try upsert(3, version: 1, id: 4, token: "w0.6")
            try upsert(3, version: 1, id: 4, token: "w1.6")
            try final(3, id: 4, token: "w1.6", version: 1)
            // Pair 4: the row does not hold the last committed write.
            try upsert(4, version: 1, id: 8, token: "w0.7")
            try final(4, id: 8, token: "w0.6", version: 1)
            // Pair 5: deleted last, but its row is still there.
            try upsert(5, version: 1, id: 9, token: "w0.8")
            try delete(5, id: 9)
            try final(5, id: 9, token: "w0.8", version: 1)
            // An index that no longer matches its table: integrity_check reports its rows.
            try connection.execute("PRAGMA writable_schema = ON")
            try connection.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX other_a ON other(b)' WHERE name = 'other_a'")
        }
        let findings = try StressChecker(store: SQLiteStressStore(try SQLiteConnection(path: path))).run()
        #expect(findings.duplicatePairs == 1)
        #expect(findings.idChanges == 1)
        #expect(findings.lostUpdates == 3)
        #expect(findings.integrityFailures >= 1)
        #expect(findings.loggedWrites == 12)
        #expect(findings.finalRows == 7)
        #expect(findings.problems.contains { $0.contains("changed the row's id from 3 to 7") })
        #expect(findings.problems.contains { $0.contains("wrote version 1 over version 1") })
        #expect(findings.problems.contains { $0.contains("missing from index other_a") })
    }

    @Test("the same seed gives every writer the same operations")
    func seeded() throws {
        let folder = try TemporaryFolder()
        let path = try Self.scratchDatabase(folder)
        func mix(_ report: StressTest.Report) -> [Int] { [report.upserts, report.reads, report.deletes] }
        let first = try Self.run(path, writers: 2, operations: 200)
        let second = try Self.run(path, writers: 2, operations: 200)
        #expect(mix(first) == mix(second))
        #expect(second.ok)
        let third = try StressTest(path: path, options: .init(writers: 2, operations: 200, seed: Self.seed + 1)).run()
        #expect(mix(first) != mix(third))
    }

    @Test("toolcfg stress: JSON report and exit 0, exit 65 through a wrong upsert, refusals of unfit databases")
    func commandLine() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("cli.db")
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)

        for extra in [[], ["--processes"]] {
            let result = try toolcfg(
                ["stress", "--db", db, "--writers", "3", "--ops", "150", "--pairs", "4", "--seed", "9", "--json"] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(report["ok"] as? Bool == true)
            #expect(report["mode"] as? String == (extra.isEmpty ? "threads" : "processes"))
            #expect(report["operations"] as? Int == 450)
            #expect(report["log_table"] as? String == "_toolcfg_stress_log")
            let invariants = try #require(report["invariants"] as? [String: Int])
            #expect(invariants == ["duplicate_pairs": 0, "id_changes": 0, "lost_updates": 0, "writer_errors": 0, "integrity_failures": 0])
            let latency = try #require(report["latency"] as? [String: [String: Any]])
            #expect(Set(latency.keys) == ["upsert", "read", "delete", "lock_acquisition"])
            #expect(latency["upsert"]?["p99_seconds"] is Double)
        }

        let human = try toolcfg(["stress", "--db", db, "--writers", "2", "--ops", "100", "--upsert", "wrong-replace"])
        #expect(human.status == 65)
        #expect(human.stdout.isEmpty)
        #expect(human.stderr.contains("id changes") && human.stderr.contains("NOT OK"))

        // A table with other rows is not a scratch database: refused before anything is written.
        let connection = try SQLiteConnection(path: db)
        try connection.execute("INSERT INTO user_tool_configs (user_id, tool_id, created_at, updated_at) VALUES ('alice', 'exa', 0, 0)")
        let refused = try toolcfg(["stress", "--db", db, "--ops", "10"])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("scratch database"))

        let empty = folder.path("empty.db")
        _ = try SQLiteConnection(path: empty, mode: .readWriteCreate)
        let unmigrated = try toolcfg(["stress", "--db", empty, "--ops", "10"])
        #expect(unmigrated.status == 65)
        #expect(unmigrated.stderr.contains("migrate up"))
        #expect(try toolcfg(["stress", "--db", folder.path("missing.db")]).status == 66)
        #expect(try toolcfg(["stress", "--db", db, "--writers", "0"]).status == 64)
    }
}
