/// A database toolcfg works on: the interface the operations speak. They never see an engine's
/// SQL: each engine (Storage/SQLite, and PostgreSQL as its stores arrive) implements this and
/// the stores it hands out with its own.
public protocol Database: AnyObject {
    /// Where the database is, for reports and messages (never a password).
    var location: String { get }

    /// Runs `body` in a transaction of the given kind: every transaction goes through here. A
    /// failure rolls back and leaves no transaction open. `lockHeld` receives how long the write
    /// lock was held, from the moment it was taken to the end of the commit.
    @discardableResult
    func transaction<T>(_ kind: TransactionKind, lockHeld: (Duration) -> Void, _ body: () throws -> T) throws -> T

    /// From now on the commits of this connection wait for the disk.
    func makeCommitsDurable() throws

    /// How much page cache the work ahead may use, in KiB (a hint an engine may ignore).
    func useCache(kibibytes: Int) throws

    /// The tables that hold stored secrets, found by their columns (encrypted_api_key, salt,
    /// nonce), so a table the application adds is never missed.
    func encryptedTables() throws -> [EncryptedTable]

    func secretStore(for table: EncryptedTable) throws -> any SecretStore

    /// Throws unless this connection sees every row of `tables`: an operation that read a subset
    /// (row-level security keeping one tenant's rows) would report it as the whole, or rotate
    /// some tenants' keys and leave the others' under the old master key.
    func requireEveryRowVisible(in tables: [String]) throws

    /// In a write transaction, before its first write: from here to the commit the application's
    /// writes to `tables` wait, so that what the transaction checks stays true until it commits.
    /// (SQLite's write transaction holds the database's one write lock from its start already.)
    func lockForWriting(_ tables: [String]) throws

    /// `user_tool_configs`, refused unless it has the shape of migration 0007.
    func toolConfigStore() throws -> any ToolConfigStore

    /// A consistent copy, as the current read transaction sees it, in a new file (0600) at `path`:
    /// of the whole database (SQLite: a database file), or of the tables that hold stored secrets
    /// (PostgreSQL: a script that psql restores).
    func backup(to path: String) throws

    /// A second connection to the same database, read-only: it sees only what was committed.
    func openReader() throws -> any Database

    /// What the migrations need of this engine: sqlx's ledger, scripts, the migration lock, the
    /// schema fingerprint.
    func migrationStore() -> any MigrationStore

    /// What the stress workload needs of this engine (its write log, locking, integrity check),
    /// refused unless `user_tool_configs` has the shape of migration 0007.
    func stressStore() throws -> any StressStore
}

extension Database {
    @discardableResult
    public func transaction<T>(_ kind: TransactionKind, _ body: () throws -> T) throws -> T {
        try transaction(kind, lockHeld: { _ in }, body)
    }
}

/// The transactions toolcfg runs.
public enum TransactionKind: Sendable {
    /// A read snapshot, started at once: it never blocks a writer (SQLite in WAL mode).
    case read
    /// The write lock taken up front, so the body never fails upgrading a read lock, then a commit.
    case write
    /// A write lock taken up front and always rolled back: to see what writes would do.
    case rolledBackWrite
    /// A transaction that reads first and asks for the write lock only when it writes: wrong on
    /// purpose (the stress test's self-check).
    case deferredWrite
}
