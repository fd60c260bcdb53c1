/// What reading a database needs, and nothing that writes: what read-only opens and
/// `Database.openReader()` hand out, and what export and verify-keys work on. Each engine
/// (Storage/SQLite, Storage/Postgres) implements it with its own SQL.
public protocol DatabaseReader: AnyObject {
    /// Where the database is, for reports and messages (never a password).
    var location: String { get }

    /// Runs `body` in one read snapshot (a `.read` transaction).
    @discardableResult
    func readTransaction<T>(_ body: () throws -> T) throws -> T

    /// In a read transaction: a mark of what its snapshot has seen, for `writtenSince`; nil
    /// where the engine cannot tell.
    func snapshotMark() throws -> String?

    /// How much page cache the work ahead may use, in KiB (a hint an engine may ignore).
    func useCache(kibibytes: Int) throws

    /// The tables that hold rows (not views), with their columns and primary keys: what
    /// `SecretColumnMap` finds the secrets in.
    func tableColumns() throws -> [TableColumns]

    /// Throws unless this connection sees every row of `tables`: an operation that read a subset
    /// (row-level security keeping one tenant's rows) would report it as the whole, or rotate
    /// some tenants' keys and leave the others' under the old master key.
    func requireEveryRowVisible(in tables: [String]) throws

    func secretReader(for group: SecretColumnGroup) throws -> any SecretReader

    /// `user_tool_configs` to read, refused unless it has the shape of migration 0007.
    func toolConfigReader() throws -> any ToolConfigReader

    /// sqlx's and sea-orm's ledgers, to read.
    func ledgerReader() -> any LedgerReader

    /// A consistent copy, as the current read transaction sees it, in a new file (0600) at `path`:
    /// of the whole database (SQLite: a database file), or of `tables`, those that hold stored
    /// secrets (PostgreSQL: a script that psql restores).
    func backup(to path: String, tables: [String]) throws

    /// What backups of this database are named after in a backup folder (`BackupDirectory`): the
    /// SQLite file's base name without its extension, or the PostgreSQL database's name; and the
    /// extension of what `backup` writes.
    func backupNaming() throws -> (database: String, fileExtension: String)
}

/// A database toolcfg works on, read and written: the interface the operations speak. They never
/// see an engine's SQL: each engine implements this and the stores it hands out with its own.
public protocol Database: DatabaseReader {
    /// Runs a script of statements of the engine's SQL; an error names `context`.
    func execute(_ sql: String, context: String?) throws
    /// A transaction (or an engine's implicit one) is open on this connection.
    var isInTransaction: Bool { get }

    /// Runs `body` in a transaction of the given kind: every transaction goes through here. A
    /// failure rolls back and leaves no transaction open. `lockHeld` receives how long the write
    /// lock was held, from the moment it was taken to the end of the commit.
    @discardableResult
    func transaction<T>(_ kind: TransactionKind, lockHeld: (Duration) -> Void, _ body: () throws -> T) throws -> T

    /// In a write transaction, before its first write, with `tables` locked against writers:
    /// whether another connection may have written to `tables` since the snapshot `mark` came
    /// from. False only when certain nothing was: a rotation then skips its scan for rows
    /// changed meanwhile.
    func writtenSince(_ mark: String, in tables: [String]) throws -> Bool

    /// From now on the commits of this connection wait for the disk.
    func makeCommitsDurable() throws

    func secretStore(for group: SecretColumnGroup) throws -> any SecretStore

    /// In a write transaction, before its first write: from here to the commit the application's
    /// writes to `tables` wait, so that what the transaction checks stays true until it commits.
    /// (SQLite's write transaction holds the database's one write lock from its start already.)
    func lockForWriting(_ tables: [String]) throws

    /// `user_tool_configs`, refused unless it has the shape of migration 0007.
    func toolConfigStore() throws -> any ToolConfigStore

    /// A second connection to the same database, read-only: it sees only what was committed.
    func openReader() throws -> any DatabaseReader

    /// What the migrations need of this engine: sqlx's ledger, scripts, the migration lock, the
    /// schema fingerprint.
    func migrationStore() -> any MigrationStore

    /// What the stress workload needs of this engine (its write log, locking, integrity check),
    /// refused unless `user_tool_configs` has the shape of migration 0007.
    func stressStore() throws -> any StressStore
}

extension Database {
    // A writer reads through its own stores.
    public func readTransaction<T>(_ body: () throws -> T) throws -> T { try transaction(.read, body) }
    public func secretReader(for group: SecretColumnGroup) throws -> any SecretReader { try secretStore(for: group) }
    public func toolConfigReader() throws -> any ToolConfigReader { try toolConfigStore() }
    public func ledgerReader() -> any LedgerReader { migrationStore() }
}

extension DatabaseReader {
    /// How many stored values of each scheme the groups hold (those the map can account for):
    /// what tells an installation's scheme and release.
    public func storedSchemes() throws -> StoredSchemes {
        var counts = StoredSchemes()
        for group in try secretGroups(lenient: true) {
            for (scheme, count) in try secretReader(for: group).schemeCounts() {
                counts.byTable[group.table, default: [:]][scheme, default: 0] += count
            }
        }
        return counts
    }

    /// Where this database keeps secrets (see `SecretColumnMap`): refused when a column looks
    /// like a secret that no group accounts for, unless `lenient`.
    public func secretGroups(_ map: SecretColumnMap = SecretColumnMap(), lenient: Bool = false) throws -> [SecretColumnGroup] {
        try map.groups(in: tableColumns(), lenient: lenient)
    }

    /// SQLite's own page cache size (2 MiB), which `useCache` returns to after a big transaction.
    public func useDefaultCache() {
        try? useCache(kibibytes: 2000)
    }
}

extension Database {
    @discardableResult
    public func transaction<T>(_ kind: TransactionKind, _ body: () throws -> T) throws -> T {
        try transaction(kind, lockHeld: { _ in }, body)
    }

    /// All of `body` or none of it: inside an open transaction a savepoint, which a failure
    /// (a failed statement included) rolls back to and releases, spoiling nothing before it;
    /// otherwise a write transaction of its own. What `body` sets with SET LOCAL is undone
    /// with it, or kept.
    @discardableResult
    public func inSavepoint<T>(_ body: () throws -> T) throws -> T {
        guard isInTransaction else { return try transaction(.write, body) }
        try execute("SAVEPOINT toolcfg_savepoint", context: nil)
        do {
            let result = try body()
            try execute("RELEASE SAVEPOINT toolcfg_savepoint", context: nil)
            return result
        } catch {
            try? execute("ROLLBACK TO SAVEPOINT toolcfg_savepoint; RELEASE SAVEPOINT toolcfg_savepoint", context: nil)
            throw error
        }
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

/// Stored values by scheme, by table.
public struct StoredSchemes: Sendable {
    public var byTable: [String: [SecretScheme: Int]] = [:]

    /// Every table's values of `scheme`.
    public func count(_ scheme: SecretScheme) -> Int {
        byTable.values.reduce(0) { $0 + ($1[scheme] ?? 0) }
    }
}
