/// The ledgers as stored, what telling a release or a status needs: reads only.
public protocol LedgerReader: AnyObject {
    /// A table of that unqualified name, as the engine resolves it.
    func tableExists(_ name: String) throws -> Bool
    func columnNames(of table: String) throws -> [String]
    /// sqlx's `_sqlx_migrations` by version; the table exists.
    func ledgerEntries() throws -> [LedgerEntry]
    /// sea-orm's ledger (`seaql_migrations`, the application's from v0.0.46), its versions in
    /// order with when each was applied (Unix seconds); nil when the database has none.
    func seaORMLedger() throws -> [(version: String, appliedAt: Int64?)]?
}

/// What migrations need of a database engine, in its own dialect: sqlx's ledger as sqlx writes it
/// there, migration scripts, the lock sqlx holds while migrating, the schema fingerprint and row
/// counts. The migrator, the ledger's rules and the reversibility check (Migrations/) are written
/// once over it.
public protocol MigrationStore: LedgerReader {
    /// The database it works on, for transactions and its location.
    var database: any Database { get }

    /// This engine's migrations as built into toolcfg (`migrations/` or `migrations/postgres/`).
    func builtInMigrations() throws(MigrationError) -> MigrationSet

    // sqlx's `_sqlx_migrations`, exactly as sqlx creates, reads and writes it on this engine.
    func createLedgerIfMissing() throws
    /// success TRUE and execution_time -1, as sqlx records a migration in its own transaction.
    func recordInLedger(_ migration: Migration) throws
    /// After the commit, as sqlx does: losing it to a crash is harmless.
    func setExecutionTime(version: Int64, nanoseconds: Int64) throws
    func removeFromLedger(version: Int64) throws

    /// Runs a script of statements; an error names `context` (the file) and the line.
    func execute(_ sql: String, context: String?) throws
    /// Inside a transaction (a rehearsal's): `atomically` nests as a savepoint.
    var isInTransaction: Bool { get }

    /// Holds sqlx's migration lock while `body` runs, so toolcfg and the application never
    /// migrate at once: PostgreSQL's advisory lock (waiting up to the lock timeout, then exit 75).
    /// SQLite has none: each migration takes the write lock, as sqlx's SQLite migrator relies on.
    func withMigrationLock<T>(_ body: () throws -> T) throws -> T

    /// Runs `body` on a state of the database that is thrown away afterwards, leaving the
    /// database as it was: SQLite works on a copy in a temporary folder, PostgreSQL inside one
    /// transaction (its DDL is transactional) that is rolled back, under the migration lock.
    func rehearse<T>(_ body: (any MigrationStore) throws -> T) throws -> T

    /// Every schema object, table and row, for telling whether a down undid its up.
    func fingerprint() throws -> SchemaFingerprint

    /// Rows of every table but the engine's own and the ledger, by table name.
    func rowCounts() throws -> [String: Int64]
}

extension MigrationStore {
    public func run(_ script: MigrationScript) throws {
        try execute(script.sql, context: script.fileName)
    }

    /// All of `body` or none of it: a write transaction, or inside a transaction a savepoint
    /// (a failed statement then spoils only the savepoint, which is rolled back).
    public func atomically<T>(_ body: () throws -> T) throws -> T {
        try database.inSavepoint(body)
    }
}
