import Foundation

/// The concurrency stress test of the upsert: N writers (threads with their own connections, or
/// processes) each run M operations over a small key space of K pairs so they collide
/// constantly; then `StressChecker` compares the table with the write log. The run needs a
/// migrated database whose user_tool_configs holds no rows but earlier stress rows. Either engine:
/// what differs (the SQL, how a write takes its lock, the integrity check) is its `StressStore`.
public struct StressTest {
    public enum Writers: Sendable {
        case threads
        /// Each writer is `executable stress-worker` (the toolcfg executable itself).
        case processes(executable: String)
    }

    public struct Options: Sendable {
        public var writers: Int
        public var operations: Int
        public var pairs: Int
        public var seed: UInt64
        public var write: StressWriteMode
        public var busyTimeout: Duration
        public var launch: Writers

        public init(
            writers: Int = 4, operations: Int = 1000, pairs: Int = 8, seed: UInt64 = 1, write: StressWriteMode = .correct,
            busyTimeout: Duration = .seconds(10), launch: Writers = .threads
        ) {
            self.writers = writers
            self.operations = operations
            self.pairs = pairs
            self.seed = seed
            self.write = write
            self.busyTimeout = busyTimeout
            self.launch = launch
        }
    }

    /// Each count must be 0 for the run to pass.
    public struct Invariants: Sendable, Codable, Equatable {
        public var duplicatePairs = 0
        public var idChanges = 0
        public var lostUpdates = 0
        /// Errors any writer's operation ended with, SQLITE_BUSY included.
        public var writerErrors = 0
        public var integrityFailures = 0

        public var total: Int { duplicatePairs + idChanges + lostUpdates + writerErrors + integrityFailures }
    }

    public struct Report: Sendable, Codable {
        public var database: String
        /// "sqlite" or "postgresql".
        public var engine: DatabaseEngine
        public var mode: String
        public var write: StressWriteMode
        public var writers: Int
        public var operationsPerWriter: Int
        public var pairs: Int
        public var seed: UInt64
        /// The write log, kept in the database after the run (the next run clears it).
        public var logTable: String
        public var operations: Int
        public var upserts: Int
        public var reads: Int
        public var deletes: Int
        public var committedWrites: Int
        public var busyErrors: Int
        public var finalRows: Int
        public var elapsedSeconds: Double
        public var operationsPerSecond: Double
        public var latency: Latencies
        /// Write transactions whose lock (BEGIN IMMEDIATE; PostgreSQL: the pair's) waited more than
        /// 1 ms for another writer.
        public var lockWaits: Int
        public var invariants: Invariants
        /// What the engine's integrity check covered.
        public var integrityCheck: String
        /// The first writer errors and invariant violations, described.
        public var problems: [String]
        public var ok: Bool
    }

    public struct Latencies: Sendable, Codable {
        public var upsert: LatencySummary
        public var read: LatencySummary
        public var delete: LatencySummary
        /// Taking the write lock alone, the wait for other writers included: SQLite's BEGIN
        /// IMMEDIATE; on PostgreSQL the pair's row lock (SELECT ... FOR UPDATE, or the insert
        /// that claims a pair without a row).
        public var lockAcquisition: LatencySummary
    }

    let location: DatabaseLocation
    let options: Options

    public init(location: DatabaseLocation, options: Options) {
        self.location = location
        self.options = options
    }

    /// An SQLite file.
    public init(path: String, options: Options) {
        self.init(location: .sqlite(path: path), options: options)
    }

    public func run() throws -> Report {
        guard options.writers >= 1, options.operations >= 1, options.pairs >= 1 else {
            throw StressError.badOptions("--writers, --ops and --pairs must be at least 1")
        }
        let database = try location.open(mode: .readWrite, busyTimeout: options.busyTimeout)
        let store = try database.stressStore()
        let foreign = try store.foreignRowCount()
        if foreign > 0 { throw StressError.notScratch(path: database.location, rows: foreign) }
        try store.reset()

        let timeout = options.busyTimeout.components
        let plans = (0..<options.writers).map { writer in
            StressPlan(
                busyTimeoutMilliseconds: timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000,
                writer: writer, operations: options.operations, pairs: options.pairs, seed: options.seed, write: options.write)
        }
        let results: [StressWriterResult]
        switch options.launch {
        case .threads: results = try Self.runThreads(plans, location: location)
        case .processes(let executable): results = try StressWorker.run(executable: executable, location: location, plans: plans)
        }
        let findings = try StressChecker(store: store).run()
        return report(results, findings)
    }

    func report(_ results: [StressWriterResult], _ findings: StressChecker.Findings) -> Report {
        let invariants = Invariants(
            duplicatePairs: findings.duplicatePairs, idChanges: findings.idChanges, lostUpdates: findings.lostUpdates,
            writerErrors: results.reduce(0) { $0 + $1.errors }, integrityFailures: findings.integrityFailures)
        let elapsed = Double((results.map(\.endNanoseconds).max() ?? 0) - (results.map(\.startNanoseconds).min() ?? 0)) / 1e9
        let operations = options.writers * options.operations
        let mode = if case .processes = options.launch { "processes" } else { "threads" }
        return Report(
            database: location.description, engine: location.engine, mode: mode, write: options.write, writers: options.writers,
            operationsPerWriter: options.operations, pairs: options.pairs, seed: options.seed, logTable: StressLog.table,
            operations: operations,
            upserts: results.reduce(0) { $0 + $1.upserts }, reads: results.reduce(0) { $0 + $1.reads },
            deletes: results.reduce(0) { $0 + $1.deletes }, committedWrites: findings.loggedWrites,
            busyErrors: results.reduce(0) { $0 + $1.busyErrors }, finalRows: findings.finalRows,
            elapsedSeconds: elapsed, operationsPerSecond: elapsed > 0 ? Double(operations) / elapsed : 0,
            latency: Latencies(
                upsert: LatencySummary(results.flatMap(\.upsertLatencies)),
                read: LatencySummary(results.flatMap(\.readLatencies)),
                delete: LatencySummary(results.flatMap(\.deleteLatencies)),
                lockAcquisition: LatencySummary(results.flatMap(\.lockLatencies))),
            lockWaits: results.reduce(0) { $0 + $1.lockWaits }, invariants: invariants, integrityCheck: findings.integrityCheck,
            problems: Array(results.flatMap(\.errorMessages).prefix(10)) + findings.problems.prefix(10), ok: invariants.total == 0)
    }

    /// One thread per writer (not a pool: all N must run at once), each opening its own
    /// connection; they start together once all are ready.
    static func runThreads(_ plans: [StressPlan], location: DatabaseLocation) throws -> [StressWriterResult] {
        let slots = Slots(count: plans.count)
        let ready = DispatchSemaphore(value: 0), start = DispatchSemaphore(value: 0), finished = DispatchGroup()
        for (index, plan) in plans.enumerated() {
            finished.enter()
            Thread.detachNewThread {
                defer { finished.leave() }
                let writer: StressWriter
                do {
                    writer = try StressWriter(plan: plan, location: location)
                } catch {
                    slots.set(index, .failure(error))
                    ready.signal()
                    return
                }
                ready.signal()
                start.wait()
                slots.set(index, .success(writer.run()))
            }
        }
        for _ in plans { ready.wait() }
        for _ in plans { start.signal() }
        finished.wait()
        return try slots.collect()
    }

    private final class Slots: @unchecked Sendable {
        private let lock = NSLock()
        private var storage: [Result<StressWriterResult, any Error>?]

        init(count: Int) { storage = Array(repeating: nil, count: count) }

        func set(_ index: Int, _ value: Result<StressWriterResult, any Error>) {
            lock.withLock { storage[index] = value }
        }

        func collect() throws -> [StressWriterResult] {
            try lock.withLock { try storage.map { try $0!.get() } }
        }
    }
}

/// p50, p99 and max of a set of durations, in seconds (nearest rank over the sorted samples).
public struct LatencySummary: Sendable, Codable, Equatable {
    public var count: Int
    public var p50Seconds: Double
    public var p99Seconds: Double
    public var maxSeconds: Double

    init(_ nanoseconds: [UInt64]) {
        let sorted = nanoseconds.sorted()
        func rank(_ fraction: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = min(sorted.count - 1, max(0, Int((fraction * Double(sorted.count)).rounded(.up)) - 1))
            return Double(sorted[index]) / 1e9
        }
        count = sorted.count
        p50Seconds = rank(0.50)
        p99Seconds = rank(0.99)
        maxSeconds = rank(1.0)
    }
}
