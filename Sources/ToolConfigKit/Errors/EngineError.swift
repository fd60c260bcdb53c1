/// An error a database engine reports (SQLite's `SQLiteError`, `PostgresError`), as the engine-
/// neutral code above Storage needs it: a failed migration wraps one and says what went wrong.
public protocol EngineError: ToolcfgError {
    /// The database, by path or redacted URL.
    var database: String { get }
    /// What toolcfg was doing (the migration file, and the line in it) and what the engine said,
    /// without the database's name.
    var reason: String { get }
    /// The connection broke while the engine committed: whether it did is unknown.
    var leftCommitUnknown: Bool { get }
    /// The connection to a server was lost (the server rolls back what was not committed).
    var isConnectionLoss: Bool { get }
    /// A database server's disk is full: the statement, and so the transaction, failed.
    var isDiskFull: Bool { get }
}

extension EngineError {
    public var leftCommitUnknown: Bool { false }
    public var isConnectionLoss: Bool { false }
    public var isDiskFull: Bool { false }
}
