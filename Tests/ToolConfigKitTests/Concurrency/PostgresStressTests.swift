import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The stress workload on the real PostgreSQL server, where writers run in parallel: the correct
/// write keeps every invariant at 0 with threads and with processes, each wrong write is caught,
/// the log's sequence is the commit order, a lock wait past the timeout is a busy writer error,
/// and the integrity check finds an index that lost a row. Short runs with a fixed seed; nothing
/// here asserts on time.
@Suite("Stress on PostgreSQL", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresStressTests {
    static func migratedDatabase() throws -> ScratchPostgresDatabase {
        let database = try ScratchPostgresDatabase()
        _ = try Migrator(database: try database.connect(), migrations: try .embeddedPostgres()).up()
        return database
    }

    static func run(
        _ database: ScratchPostgresDatabase, writers: Int = 4, operations: Int = 300, write: StressWriteMode = .correct,
        launch: StressTest.Writers = .threads, busyTimeout: Duration = .seconds(10)
    ) throws -> StressTest.Report {
        try StressTest(
            location: .postgres(database.url),
            options: .init(
                writers: writers, operations: operations, pairs: 8, seed: StressTests.seed, write: write,
                busyTimeout: busyTimeout, launch: launch)
        ).run()
    }

    @Test(
        "each wrong write with threads and with processes is caught (the correct one: the Stress suite, on both engines)",
        arguments: StressWriteMode.allCases.filter { $0 != .correct }, StressTests.launches)
    func modes(_ write: StressWriteMode, _ launch: StressTest.Writers) throws {
        let database = try Self.migratedDatabase()
        defer { database.drop() }
        let report = try Self.run(database, write: write, launch: launch)
        let counts = report.invariants
        #expect(report.engine == .postgresql && report.database == database.url.redacted)
        if case .processes = launch { #expect(report.mode == "processes") } else { #expect(report.mode == "threads") }
        try StressTests.expectAccounted(report, database.connect())
        #expect(report.integrityCheck.contains("amcheck bt_index_check"), "\(report.integrityCheck)")
        #expect(counts.duplicatePairs == 0 && counts.integrityFailures == 0, "\(report.problems)")
        #expect(!report.ok)
        switch write {
        case .correct:
            Issue.record("the correct write is the Stress suite's test")
        case .wrongReplace:
            // A delete and an insert give the row a new id at every update; the locking still holds.
            #expect(counts.idChanges > 0)
            #expect(counts.writerErrors == 0 && counts.lostUpdates == 0, "\(report.problems)")
        case .wrongDeferred:
            // A snapshot read without a lock: the write fails with 40001 when another writer
            // committed to the pair's row since, and logging never fails. (Where the row was
            // deleted since, the stale write inserts it again: lost updates may come too.)
            #expect(counts.writerErrors > 0)
            #expect(report.busyErrors == counts.writerErrors)
            #expect(report.problems.contains { $0.contains("SQLSTATE 40001") }, "\(report.problems)")
            #expect(!report.problems.contains { $0.contains("logging the write") }, "\(report.problems)")
            #expect(counts.idChanges == 0)
        case .wrongSplit:
            // A read without FOR UPDATE under READ COMMITTED: writes built on it overwrite others.
            #expect(counts.lostUpdates > 0)
            #expect(report.problems.contains { $0.contains("did not see that write") }, "\(report.problems)")
        }
        #expect(report.ok == (write == .correct))
    }

    /// Errors thrown on the test's own threads, collected.
    final class Failures: @unchecked Sendable {
        private let lock = NSLock()
        private var errors: [String] = []

        func record(_ body: () throws -> Void) {
            do { try body() } catch { lock.withLock { errors.append("\(error)") } }
        }

        var all: [String] { lock.withLock { errors } }
    }

    /// Polls `condition` until it holds, for at most `limit` seconds (a bound, not a measurement).
    static func eventually(limit: Double = 30, _ condition: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(limit)
        while Date() < end {
            if try condition() { return true }
            usleep(10_000)
        }
        return try condition()
    }

    @Test("the log's sequence is the commit order: a write takes its number only after every write that took an earlier one has committed")
    func commitOrder() throws {
        let database = try Self.migratedDatabase()
        defer { database.drop() }
        try database.connect().stressStore().reset()
        let url = database.url
        // Two different pairs, so no row lock stands between the two writers: only the log's.
        let first = StressLog.pair(0), second = StressLog.pair(1)
        let failures = Failures()
        let firstLogged = DispatchSemaphore(value: 0), commitFirst = DispatchSemaphore(value: 0)
        let firstDone = DispatchSemaphore(value: 0), secondDone = DispatchSemaphore(value: 0)
        func write(_ pair: StressPair, writer: Int, between: @escaping @Sendable () -> Void) -> @Sendable () -> Void {
            {
                failures.record {
                    let connection = try PostgresConnection(url: url).stressStore().writer(.correct)
                    try connection.write(.upsert, pair, lockTaken: { _ in }) { _ in
                        let id = try connection.upsert(pair, enabled: true, token: "w\(writer).0", createdAt: 0, version: 1)
                        try connection.log(
                            StressLoggedWrite(
                                writer: writer, counter: 0, pair: pair, operation: .upsert, version: 1,
                                rowID: id, token: "w\(writer).0"))
                        between()
                    }
                }
            }
        }
        let firstWriter = write(first, writer: 0) {
            firstLogged.signal()
            commitFirst.wait()
        }
        Thread.detachNewThread {
            firstWriter()
            firstDone.signal()
        }
        guard firstLogged.wait(timeout: .now() + 60) == .success else {
            Issue.record("the first writer never logged: \(failures.all)")
            return
        }
        // The first writer has logged and not committed: the second writes its own pair, then waits
        // to log, on the commit-order lock, for as long as the first stays uncommitted.
        let secondWriter = write(second, writer: 1) {}
        Thread.detachNewThread {
            secondWriter()
            secondDone.signal()
        }
        let observer = try database.connect()
        let waiting = try Self.eventually {
            try observer.queryInt64("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == 1
        }
        #expect(waiting, "the second writer never waited for the commit-order lock")
        #expect(secondDone.wait(timeout: .now()) == .timedOut, "the second writer logged before the first committed")
        #expect(try observer.queryInt64("SELECT count(*) FROM \(StressLog.table)") == 0)
        // It waits before taking its number: the first writer's is still the last one taken.
        #expect(
            try observer.queryInt64("SELECT pg_sequence_last_value(pg_get_serial_sequence('\(StressLog.table)', 'seq')::regclass)") == 1)
        commitFirst.signal()
        firstDone.wait()
        secondDone.wait()
        #expect(failures.all.isEmpty, "\(failures.all)")
        let log = try observer.query("SELECT writer FROM \(StressLog.table) ORDER BY seq")
        #expect((0..<log.count).map { try? log.int64($0, 0) } == [0, 1])
    }

    @Test("a writer that waits for a lock past --busy-timeout fails its operation with 55P03, counted as busy")
    func lockTimeout() throws {
        let database = try Self.migratedDatabase()
        defer { database.drop() }
        // Another session holds the lock every write takes to log itself, for the whole run.
        let holder = try database.connect()
        try holder.query("SELECT pg_advisory_lock(\(PostgresStressStore.commitOrderLock))")
        let report = try Self.run(database, writers: 1, operations: 6, busyTimeout: .milliseconds(100))
        #expect(report.invariants.writerErrors == report.upserts + report.deletes && report.invariants.writerErrors > 0)
        #expect(report.busyErrors == report.invariants.writerErrors)
        #expect(report.committedWrites == 0 && !report.ok)
        #expect(report.problems.contains { $0.contains("SQLSTATE 55P03") && $0.contains("lock timeout 100 ms") }, "\(report.problems)")
    }

    @Test("the checker finds a duplicate pair hidden from the unique index, and amcheck the index that lost the row")
    func integrity() throws {
        let database = try Self.migratedDatabase()
        defer { database.drop() }
        #expect(try Self.run(database, writers: 2, operations: 100).ok)
        let connection = try database.connect()
        // A row inserted while the unique index was not being maintained: the index lacks it.
        try connection.execute(
            """
            UPDATE pg_index SET indisready = false WHERE indexrelid = 'user_tool_configs_user_id_tool_id_key'::regclass;
            INSERT INTO user_tool_configs (user_id, tool_id, created_at, updated_at)
                SELECT user_id, tool_id, 0, 0 FROM user_tool_configs ORDER BY id LIMIT 1;
            UPDATE pg_index SET indisready = true WHERE indexrelid = 'user_tool_configs_user_id_tool_id_key'::regclass;
            """)
        let findings = try StressChecker(store: try connection.stressStore()).run()
        #expect(findings.duplicatePairs == 1)
        #expect(findings.integrityFailures == 1)
        #expect(
            findings.problems.contains {
                $0.contains("user_tool_configs_user_id_tool_id_key") && $0.contains("lacks matching index tuple")
            },
            "\(findings.problems)")
        // Without the unique index, the check says so (and the table is refused for the next run).
        try connection.execute("ALTER TABLE user_tool_configs DROP CONSTRAINT user_tool_configs_user_id_tool_id_key")
        #expect(PostgresStressStore(connection).checkIntegrity().problems.contains { $0.contains("no valid UNIQUE(user_id, tool_id)") })
        let refused = try #require(thrownError { _ = try connection.stressStore() } as? TableShapeError)
        #expect(refused.exitStatus == .dataError && refused.message.contains("UNIQUE(user_id, tool_id)"))
    }

    @Test("without amcheck (a role that may not create it) the integrity check says so and checks the rest")
    func withoutAmcheck() throws {
        let database = try Self.migratedDatabase()
        defer { database.drop() }
        let role = "toolcfg_stress_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        let admin = try database.connect()
        try admin.execute(
            """
            CREATE ROLE \(role) LOGIN;
            ALTER SCHEMA public OWNER TO \(role);
            ALTER TABLE user_tool_configs OWNER TO \(role);
            """)
        defer { try? PostgresConnection(url: database.url).execute("DROP OWNED BY \(role); DROP ROLE IF EXISTS \(role)") }
        let url = try PostgresURL(database.url.text.replacingOccurrences(of: "postgresql://postgres@", with: "postgresql://\(role)@"))
        let report = try StressTest(location: .postgres(url), options: .init(writers: 2, operations: 50, seed: StressTests.seed)).run()
        #expect(report.ok, "\(report.problems)")
        #expect(report.integrityCheck.hasPrefix("amcheck not available (permission denied"), "\(report.integrityCheck)")
        #expect(try admin.queryInt64("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'") == 0)
    }

    @Test(
        """
        toolcfg stress on a PostgreSQL URL: JSON reports valid against the schema, exit 65 through a wrong write, \
        refusals of unfit databases
        """
    )
    func commandLine() throws {
        let database = try Self.migratedDatabase()
        defer { database.drop() }
        let url = database.url.text
        var outputs: [JSONReportTests.Output] = []
        for extra in [[], ["--processes"], ["--upsert", "wrong-split"]] {
            let arguments = ["stress", "--db", url, "--writers", "3", "--ops", "150", "--pairs", "4", "--seed", "9", "--json"] + extra
            let result = try toolcfg(arguments)
            let wrong = extra.contains("--upsert")
            #expect(result.status == (wrong ? 65 : 0), "\(result.stderr)")
            outputs.append(.init(kind: "stress", arguments: arguments, result: result, json: result.stdout))
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(report["ok"] as? Bool == !wrong && report["engine"] as? String == "postgresql")
            #expect(report["database"] as? String == database.url.redacted && report["operations"] as? Int == 450)
            #expect(report["mode"] as? String == (extra == ["--processes"] ? "processes" : "threads"))
        }
        try JSONReportTests.validate(outputs)

        let human = try toolcfg(["stress", "--db", url, "--writers", "2", "--ops", "100", "--upsert", "wrong-replace"])
        #expect(human.status == 65 && human.stdout.isEmpty)
        #expect(human.stderr.contains("id changes") && human.stderr.contains("NOT OK") && human.stderr.contains("the pair's row lock"))

        // A table with other rows is not a scratch database: refused before anything is written.
        let connection = try database.connect()
        try connection.execute("INSERT INTO user_tool_configs (user_id, tool_id, created_at, updated_at) VALUES ('alice', 'exa', 0, 0)")
        let logBefore = try connection.queryInt64("SELECT count(*) FROM \(StressLog.table)")
        let refused = try toolcfg(["stress", "--db", url, "--ops", "10"])
        #expect(refused.status == 64 && refused.stderr.contains("scratch database"), "\(refused.stderr)")
        #expect(try connection.queryInt64("SELECT count(*) FROM \(StressLog.table)") == logBefore)
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs WHERE user_id = 'alice'") == 1)

        let empty = try ScratchPostgresDatabase()
        defer { empty.drop() }
        let unmigrated = try toolcfg(["stress", "--db", empty.url.text, "--ops", "10"])
        #expect(unmigrated.status == 65 && unmigrated.stderr.contains("migrate up"), "\(unmigrated.stderr)")
    }

    @Test("writer processes get the database in their environment: a URL with a password in TOOLCFG_DB works and is never shown")
    func processesWithPassword() throws {
        let database = try Self.migratedDatabase()
        defer { database.drop() }
        let password = try PostgresTestServer.password()
        let tcp = try PostgresURL(try PostgresTestServer.required(PostgresTestServer.tcpURL, "TOOLCFG_TEST_POSTGRES_TCP_URL"))
            .replacingDatabase(with: database.name)
        let withPassword = tcp.text.replacingOccurrences(of: "postgresql://postgres@", with: "postgresql://postgres:\(password)@")
        #expect(try PostgresURL(withPassword).carriesPassword)
        let result = try toolcfg(
            ["stress", "--writers", "2", "--ops", "50", "--processes", "--json"], environment: ["TOOLCFG_DB": withPassword])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.contains(password) && !result.stderr.contains(password))
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(report?["mode"] as? String == "processes" && (report?["database"] as? String)?.contains(":***@") == true)
    }
}
