import Foundation

/// How a stress writer writes. `correct` is the project's own way; the others are deliberately
/// wrong, a self-test of the checker: a run through them must fail.
public enum StressWriteMode: String, Sendable, Codable, CaseIterable {
    /// BEGIN IMMEDIATE, read the pair's version, the table's upsert (ON CONFLICT DO UPDATE), log.
    case correct
    /// As correct, but INSERT OR REPLACE: an update deletes the row and inserts a new id.
    case wrongReplace = "wrong-replace"
    /// A deferred transaction (BEGIN) that reads, then writes: the lock upgrade fails with
    /// SQLITE_BUSY when another writer committed since the read, and the busy timeout cannot help.
    case wrongDeferred = "wrong-deferred"
    /// The read in its own transaction, the write in a later BEGIN IMMEDIATE: writes based on a
    /// stale read overwrite ones they never saw (lost updates).
    case wrongSplit = "wrong-split"
}

/// What one writer does: everything needed to run it in a thread or in another process.
struct StressPlan: Sendable, Codable {
    var database: String
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
    /// Write transactions whose BEGIN took longer than `StressWriter.lockWaitThreshold`.
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
/// is a read-modify-write of the pair's version, logged in the same transaction.
final class StressWriter {
    static let lockWaitThreshold: UInt64 = 1_000_000  // 1 ms: an uncontended BEGIN IMMEDIATE takes microseconds

    let plan: StressPlan
    private let connection: SQLiteConnection
    private let version: SQLiteStatement
    private let read: SQLiteStatement
    private let upsert: SQLiteStatement
    private let delete: SQLiteStatement
    private let log: SQLiteStatement
    private var random: SplitMix64
    private var result: StressWriterResult

    init(plan: StressPlan) throws(DatabaseError) {
        self.plan = plan
        connection = try SQLiteConnection(path: plan.database, mode: .readWrite,
                                          options: .init(busyTimeout: .milliseconds(plan.busyTimeoutMilliseconds)))
        version = try connection.prepare("SELECT id, updated_at FROM user_tool_configs WHERE user_id = ?1 AND tool_id = ?2")
        read = try connection.prepare(ToolConfigTable.lookupSQL)
        upsert = try connection.prepare(plan.write == .wrongReplace ? Self.replaceSQL : ToolConfigTable.upsertSQL)
        delete = try connection.prepare("DELETE FROM user_tool_configs WHERE user_id = ?1 AND tool_id = ?2")
        log = try connection.prepare(StressLog.insertSQL)
        random = SplitMix64(seed: plan.seed &+ UInt64(plan.writer + 1) &* 0x9E37_79B9_7F4A_7C15)
        result = StressWriterResult(writer: plan.writer)
    }

    /// The wrong upsert of `wrong-replace`.
    static let replaceSQL = """
        INSERT OR REPLACE INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
        """

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
                    try readRow(pair)
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
                let busy = (error as? DatabaseError).flatMap { $0.isBusy ? $0 : nil }
                if busy != nil { result.busyErrors += 1 }
                if result.errorMessages.count < 5 {
                    let waited = Double(Monotonic.nanoseconds() - started) / 1e6
                    let message = busy.map { busy in
                        // The wait tells a timeout from SQLite's immediate refusal when a transaction
                        // that has read tries to write while another writer holds the lock or has
                        // committed since the read (SQLITE_BUSY_SNAPSHOT).
                        let name = busy.extendedCode == 517 ? "SQLITE_BUSY_SNAPSHOT" : "SQLITE_BUSY"
                        return "\(busy.context ?? "database"): \(busy.message) (\(name) after \(String(format: "%.3f", waited)) ms, busy timeout \(plan.busyTimeoutMilliseconds) ms)"
                    } ?? "\(error)"
                    result.errorMessages.append("writer \(plan.writer), operation \(counter): \(message)")
                }
            }
        }
        result.endNanoseconds = Monotonic.nanoseconds()
        return result
    }

    private func readRow(_ pair: (user: String, tool: String)) throws {
        defer { read.reset() }
        try read.bind([.text(pair.user), .text(pair.tool)])
        _ = try read.step()
    }

    private func upsertRow(_ pair: (user: String, tool: String), counter: Int) throws {
        var current: Int64?
        if plan.write == .wrongSplit { current = try currentVersion(pair).version }
        try writing {
            if plan.write != .wrongSplit { current = try currentVersion(pair).version }
            let next = (current ?? 0) + 1
            let token = "w\(plan.writer).\(counter)"
            try upsert.run([.text(pair.user), .text(pair.tool), .integer(Int64(counter % 2)), .text(token), .null, .null,
                            .integer(Int64(Date().timeIntervalSince1970)), .integer(next)])
            let id = try currentVersion(pair).id
            try log.run([.integer(Int64(plan.writer)), .integer(Int64(counter)), .text(pair.user), .text(pair.tool),
                         .text("upsert"), .integer(next), id.map { .integer($0) } ?? .null, .text(token)])
        }
    }

    private func deleteRow(_ pair: (user: String, tool: String), counter: Int) throws {
        try writing {
            let existing = try currentVersion(pair).id
            try delete.run([.text(pair.user), .text(pair.tool)])
            try log.run([.integer(Int64(plan.writer)), .integer(Int64(counter)), .text(pair.user), .text(pair.tool),
                         .text("delete"), .null, existing.map { .integer($0) } ?? .null, .null])
        }
    }

    /// The pair's row id and version (updated_at), or nils when it has no row.
    private func currentVersion(_ pair: (user: String, tool: String)) throws -> (id: Int64?, version: Int64?) {
        defer { version.reset() }
        try version.bind([.text(pair.user), .text(pair.tool)])
        return try version.step() ? (version.int64(0), version.int64(1)) : (nil, nil)
    }

    /// Runs `body` in a write transaction that takes the lock up front (BEGIN IMMEDIATE), except
    /// in `wrong-deferred`; times the wait for the lock.
    private func writing(_ body: () throws -> Void) throws {
        let started = Monotonic.nanoseconds()
        try connection.transaction(plan.write == .wrongDeferred ? .deferredWrite : .write) {
            let waited = Monotonic.nanoseconds() - started
            result.lockLatencies.append(waited)
            if waited > Self.lockWaitThreshold { result.lockWaits += 1 }
            try body()
        }
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
