import Foundation

/// How a stress writer writes. `correct` is the project's own way; the others are deliberately
/// wrong, a self-test of the checker: a run through them must fail.
public enum StressWriteMode: String, Sendable, Codable, CaseIterable {
    /// Lock, read the pair's version, the table's upsert (ON CONFLICT DO UPDATE), log. The lock:
    /// SQLite's write lock taken up front (BEGIN IMMEDIATE); on PostgreSQL the pair's row lock
    /// (SELECT ... FOR UPDATE in READ COMMITTED).
    case correct
    /// As correct, but INSERT OR REPLACE (on PostgreSQL, which has none: a delete and an insert):
    /// an update deletes the row and inserts a new id.
    case wrongReplace = "wrong-replace"
    /// A deferred transaction (BEGIN) that reads, then writes: the lock upgrade fails with
    /// SQLITE_BUSY when another writer committed since the read, and the busy timeout cannot help.
    /// On PostgreSQL a REPEATABLE READ snapshot read without a lock: the write fails with 40001.
    case wrongDeferred = "wrong-deferred"
    /// The read in its own transaction (on PostgreSQL: without FOR UPDATE), the write in a later
    /// one: writes based on a stale read overwrite ones they never saw (lost updates).
    case wrongSplit = "wrong-split"
}

/// What one writer does: everything needed to run it in a thread or in another process, but
/// the database, which a writer process gets in its environment (`StressWorker`).
struct StressPlan: Sendable, Codable {
    var busyTimeoutMilliseconds: Int64
    var writer: Int
    var operations: Int
    var pairs: Int
    var seed: UInt64
    var write: StressWriteMode
}

/// One writer's counts and latency samples (nanoseconds), as it sends them back.
struct StressWriterResult: Sendable, Codable {
    var writer: Int
    var upserts = 0
    var reads = 0
    var deletes = 0
    var committed = 0
    var errors = 0
    var busyErrors = 0
    /// The first few errors, with the operation they ended.
    var errorMessages: [String] = []
    /// Write transactions whose lock took longer than `StressWriter.lockWaitThreshold`.
    var lockWaits = 0
    var startNanoseconds: UInt64 = 0
    var endNanoseconds: UInt64 = 0
    var upsertLatencies: [UInt64] = []
    var readLatencies: [UInt64] = []
    var deleteLatencies: [UInt64] = []
    var lockLatencies: [UInt64] = []

    init(writer: Int) { self.writer = writer }
}

/// One writer with its own connection, on the thread (or in the process) that created it.
/// Each operation picks a pair of the small key space at random (seeded): 70 % upserts, 20 %
/// reads, 10 % deletes (an upsert of a deleted pair inserts it again, with a new id). Every write
/// is a read-modify-write of the pair's version, logged in the same transaction; how the
/// transaction takes its lock (or, in a wrong mode, fails to) is the engine's `StressWriterConnection`.
final class StressWriter {
    static let lockWaitThreshold: UInt64 = 1_000_000  // 1 ms: an uncontended lock takes microseconds

    let plan: StressPlan
    private let connection: any StressWriterConnection
    private var random: SplitMix64
    private var result: StressWriterResult

    init(plan: StressPlan, location: DatabaseLocation) throws {
        self.plan = plan
        let database = try location.open(mode: .readWrite, busyTimeout: .milliseconds(plan.busyTimeoutMilliseconds))
        connection = try database.stressStore().writer(plan.write)
        random = SplitMix64(seed: plan.seed &+ UInt64(plan.writer + 1) &* 0x9E37_79B9_7F4A_7C15)
        result = StressWriterResult(writer: plan.writer)
    }

    func run() -> StressWriterResult {
        result.upsertLatencies.reserveCapacity(plan.operations)
        result.startNanoseconds = Monotonic.nanoseconds()
        for counter in 0..<plan.operations {
            let pair = StressLog.pair(Int(random.next() % UInt64(plan.pairs)))
            let roll = random.next() % 100
            let started = Monotonic.nanoseconds()
            do {
                switch roll {
                case ..<20:
                    result.reads += 1
                    defer { result.readLatencies.append(Monotonic.nanoseconds() - started) }
                    try connection.read(pair)
                case ..<30:
                    result.deletes += 1
                    defer { result.deleteLatencies.append(Monotonic.nanoseconds() - started) }
                    try deleteRow(pair, counter: counter)
                default:
                    result.upserts += 1
                    defer { result.upsertLatencies.append(Monotonic.nanoseconds() - started) }
                    try upsertRow(pair, counter: counter)
                }
            } catch {
                result.errors += 1
                let (busy, message) = connection.describe(error, waited: Monotonic.nanoseconds() - started)
                if busy { result.busyErrors += 1 }
                if result.errorMessages.count < 5 {
                    result.errorMessages.append("writer \(plan.writer), operation \(counter): \(message)")
                }
            }
        }
        result.endNanoseconds = Monotonic.nanoseconds()
        return result
    }

    private func upsertRow(_ pair: StressPair, counter: Int) throws {
        try writing(.upsert, pair) { current in
            let next = (current?.version ?? 0) + 1
            let token = "w\(plan.writer).\(counter)"
            let id = try connection.upsert(
                pair, enabled: counter % 2 == 1, token: token, createdAt: Int64(Date().timeIntervalSince1970), version: next)
            try connection.log(
                StressLoggedWrite(
                    writer: plan.writer, counter: counter, pair: pair, operation: .upsert,
                    version: next, rowID: id, token: token))
        }
    }

    private func deleteRow(_ pair: StressPair, counter: Int) throws {
        try writing(.delete, pair) { current in
            try connection.delete(pair)
            try connection.log(
                StressLoggedWrite(
                    writer: plan.writer, counter: counter, pair: pair, operation: .delete,
                    version: nil, rowID: current?.id, token: nil))
        }
    }

    /// Runs `body` in the engine's write transaction for the pair; times the wait for its lock.
    private func writing(_ operation: StressOperation, _ pair: StressPair, _ body: (StressVersion?) throws -> Void) throws {
        try connection.write(
            operation, pair,
            lockTaken: { waited in
                result.lockLatencies.append(waited)
                if waited > Self.lockWaitThreshold { result.lockWaits += 1 }
            }, body)
        result.committed += 1
    }
}

/// A small seeded generator (SplitMix64): the same seed gives every writer the same operations.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// CLOCK_MONOTONIC is one clock for the whole machine, so timestamps from writer processes compare.
enum Monotonic {
    static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
