/// What the stress workload (Stress/) needs of an engine, in the engine's own SQL: the write log,
/// the read-modify-write of a pair's version with the lock that makes it safe (and the wrong
/// modes that leave it out), the checker's reads and the engine's integrity check. The workload,
/// its invariants, the checker and the report are written once over it.
///
/// `Database.stressStore()` hands one out for a table of migration 0007's shape.
public protocol StressStore: AnyObject {
    /// The connection the store works on (the checker's read transaction, messages).
    var database: any Database { get }

    /// Rows of user_tool_configs that no stress run wrote.
    func foreignRowCount() throws -> Int

    /// Clears what a previous run left (its rows and its log) and creates an empty log, in one
    /// write transaction.
    func reset() throws

    /// One writer's side of the workload on this store's connection, writing the way `mode` says.
    func writer(_ mode: StressWriteMode) throws -> any StressWriterConnection

    // The checker's reads, called inside one read transaction.

    /// Pairs with more than one row.
    func duplicatePairs() throws -> Int
    /// The log in commit order.
    func forEachLogEntry(_ body: (StressLogEntry) throws -> Void) throws
    /// The stress rows, by id.
    func forEachStressRow(_ body: (StressRow) throws -> Void) throws

    /// The engine's own check of its storage, after the run, outside the checker's transaction.
    func checkIntegrity() -> StressIntegrity
}

/// One stress writer's connection (on the thread or in the process that opened it). Every write
/// is one transaction through `write`, which takes the lock the way the mode says and hands its
/// body the pair's row as read under it; the body upserts or deletes and logs.
public protocol StressWriterConnection: AnyObject {
    /// The application's lookup of a pair, in no transaction of its own.
    func read(_ pair: StressPair) throws

    /// Runs `body` in one write transaction for `pair`: `lockTaken` gets how long taking the lock
    /// waited (nanoseconds), then `body` gets the pair's row (nil when it has none), read under
    /// that lock in the correct mode. Any error rolls back.
    func write(
        _ operation: StressOperation, _ pair: StressPair, lockTaken: (UInt64) -> Void,
        _ body: (StressVersion?) throws -> Void) throws

    /// Writes version `version` of the pair (the correct upsert, or the mode's wrong one); returns
    /// the pair's row id after it.
    func upsert(_ pair: StressPair, enabled: Bool, token: String, createdAt: Int64, version: Int64) throws -> Int64?

    /// Deletes the pair's row (the one `write` read, whose id the log records).
    func delete(_ pair: StressPair) throws

    /// Appends the write to the log, in its transaction: the log's sequence is the commit order.
    func log(_ write: StressLoggedWrite) throws

    /// Whether an error that ended an operation is the engine's "busy" (a lock not obtained, a
    /// transaction the engine refused to serialise), and how to describe it. `waited`: how long
    /// the operation ran (nanoseconds), which tells a timeout from an immediate refusal.
    func describe(_ error: any Error, waited: UInt64) -> (busy: Bool, message: String)
}

public enum StressOperation: String, Sendable {
    case upsert
    case delete
}

/// A (user_id, tool_id) pair of the stress key space.
public struct StressPair: Hashable, Comparable, Sendable {
    public var user: String
    public var tool: String

    public init(user: String, tool: String) {
        self.user = user
        self.tool = tool
    }

    public static func < (a: StressPair, b: StressPair) -> Bool { (a.user, a.tool) < (b.user, b.tool) }
    var label: String { "(\(user), \(tool))" }
}

/// A pair's row as a writer reads it: its id, and its version (kept in updated_at).
public struct StressVersion: Sendable {
    public var id: Int64
    public var version: Int64
}

/// What a write transaction appends to the log.
public struct StressLoggedWrite: Sendable {
    public var writer: Int
    /// The writer's operation number.
    public var counter: Int
    public var pair: StressPair
    public var operation: StressOperation
    /// upsert: the version written (1 for a new row).
    public var version: Int64?
    /// upsert: the row's id after it; delete: the id removed, nil if none.
    public var rowID: Int64?
    /// upsert: the value written, "w<writer>.<counter>".
    public var token: String?
}

/// A log entry as the checker reads it: its place in the commit order and the write.
public struct StressLogEntry: Sendable {
    public var seq: Int64
    public var write: StressLoggedWrite
}

/// A stress row as the checker reads it: the token in encrypted_api_key, the version in updated_at.
public struct StressRow: Sendable {
    public var id: Int64
    public var pair: StressPair
    public var token: String?
    public var version: Int64
}

/// The engine's integrity check: what it covered, and one line per problem found.
public struct StressIntegrity: Sendable {
    public var checked: String
    public var problems: [String]
}

/// The SQL both engines share (plain SQL that means the same in each).
enum StressSQL {
    static let foreignRows = "SELECT count(*) FROM user_tool_configs WHERE user_id NOT LIKE '\(StressLog.userPrefix)%'"

    static let deleteStressRows = "DELETE FROM user_tool_configs WHERE user_id LIKE '\(StressLog.userPrefix)%'"

    static let selectLog = "SELECT seq, writer, counter, user_id, tool_id, op, version, row_id, token FROM \(StressLog.table) ORDER BY seq"

    /// Stress rows live in user_tool_configs: the token in encrypted_api_key (salt and nonce NULL:
    /// placeholders, not secrets) and the row's version in updated_at.
    static let selectRows = """
        SELECT id, user_id, tool_id, encrypted_api_key, updated_at FROM user_tool_configs
        WHERE user_id LIKE '\(StressLog.userPrefix)%' ORDER BY id
        """
}
