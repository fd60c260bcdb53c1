import Foundation

/// A PostgreSQL session is the PostgreSQL implementation of `Database`, with every store the
/// operations need: migrations, stress, the tool-config table (export, import), and stored
/// secrets with a rotation's staging and backups.
extension PostgresConnection: Database {
    public var location: String { url.redacted }

    /// A read is one REPEATABLE READ READ ONLY snapshot, taken at once; a write is READ COMMITTED
    /// (PostgreSQL locks rows, not the database: there is no write lock to take up front, and a
    /// deferred write is the same transaction); a rolled-back write always ends in ROLLBACK.
    /// `lockHeld` gets the transaction's whole time.
    @discardableResult
    public func transaction<T>(_ kind: TransactionKind, lockHeld: (Duration) -> Void, _ body: () throws -> T) throws -> T {
        let clock = ContinuousClock()
        let started = clock.now
        let result =
            switch kind {
            case .read:
                try transaction(isolation: .repeatableRead, readOnly: true) {
                    // The snapshot is taken by the first statement: take it now, as SQLite's read does.
                    try execute("SELECT 1", context: "taking a read snapshot")
                    return try body()
                }
            case .write, .deferredWrite:
                try transaction(isolation: .readCommitted, body)
            case .rolledBackWrite:
                try transaction(isolation: .readCommitted, rollingBack: true, body)
            }
        lockHeld(clock.now - started)
        return result
    }

    /// The snapshot's xmin: every transaction older than it had ended when the snapshot was
    /// taken (a subtransaction's id is newer than its parent's, so the same holds for those).
    public func snapshotMark() throws -> String? {
        try queryText("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", context: "marking the snapshot")
    }

    /// Whether any row of `tables` was written by a transaction no older than the snapshot's
    /// xmin (as `age()` counts, which wraparound does not fool): one scan of each table's row
    /// headers. A deleted row leaves no header, but the rotation's compare-and-swap count sees
    /// it. Conservative: a transaction that began before the snapshot and committed before it
    /// counts too.
    public func writtenSince(_ mark: String, in tables: [String]) throws -> Bool {
        guard let xmin = UInt64(mark) else { return true }
        let xid = PostgresValue.text(String(xmin % (1 << 32)))
        for table in tables {
            let recent = try query(
                "SELECT 1 FROM ONLY \(quotedIdentifier(table)) WHERE age(xmin) <= age($1::xid) LIMIT 1", [xid],
                context: "looking for rows of \(table) written since the snapshot")
            if recent.count > 0 { return true }
        }
        return false
    }

    public func makeCommitsDurable() throws {
        try execute("SET synchronous_commit = on", context: "making commits durable")
    }

    /// The server manages its own cache (shared_buffers): nothing to ask for.
    public func useCache(kibibytes: Int) throws {}

    /// Tables of the schema search path (by the name that finds them there), with their columns
    /// and primary keys, in one query.
    public func tableColumns() throws -> [TableColumns] {
        let rows = try query(
            """
            SELECT c.relname, a.attname, a.attnotnull,
                   array_position((SELECT x.indkey::int2[] FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary), a.attnum)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (current_schemas(false)) AND pg_table_is_visible(c.oid)
            ORDER BY c.relname, a.attnum
            """, context: "reading the tables' columns")
        return TableColumns.collect(
            try (0..<rows.count).map { row in
                (rows.text(row, 0) ?? "", rows.text(row, 1) ?? "", try rows.bool(row, 2) == true, try rows.int64(row, 3))
            })
    }

    /// Row-level security hides rows from this role where a table has it enabled, unless the
    /// role bypasses it (a superuser, or BYPASSRLS) or owns the table without FORCE ROW LEVEL
    /// SECURITY. Any such table is refused, by name, with what to do.
    public func requireEveryRowVisible(in tables: [String]) throws {
        guard !tables.isEmpty else { return }
        let names = tables.indices.map { "to_regclass(quote_ident($\($0 + 1)))" }.joined(separator: ", ")
        let rows = try query(
            """
            SELECT c.relname FROM pg_class c
            WHERE c.oid IN (\(names))
              AND c.relrowsecurity
              AND (c.relforcerowsecurity OR pg_get_userbyid(c.relowner) <> current_user)
              AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
            ORDER BY c.relname
            """, tables.map { .text($0) }, context: "checking row-level security")
        let hidden = (0..<rows.count).compactMap { rows.text($0, 0) }
        if !hidden.isEmpty {
            throw RowLevelSecurityError(database: location, role: url.user ?? "the connecting role", tables: hidden)
        }
    }

    public func secretStore(for group: SecretColumnGroup) throws -> any SecretStore {
        try PostgresSecretStore(self, group: group)
    }

    public func toolConfigStore() throws -> any ToolConfigStore {
        try PostgresToolConfigStore(self)
    }

    /// Takes EXCLUSIVE on the tables, at once: it waits (up to lock_timeout) for the transactions
    /// writing them, or holding rows FOR UPDATE / FOR SHARE, to end, then makes those wait until
    /// the commit, and never plain readers. (SHARE ROW EXCLUSIVE would let a writer's SELECT ...
    /// FOR UPDATE through, whose UPDATE then deadlocks with ours on the row it holds.)
    ///
    /// A lock request that waits also holds up every later request behind it, so while a long
    /// application transaction keeps the tables, waiting at a stretch would stall all of the
    /// application's writes. So it asks in attempts of `lockAttempt`, giving way for
    /// `lockPause` between them, until lock_timeout in all: the application's other writes wait
    /// at most one attempt.
    public func lockForWriting(_ tables: [String]) throws {
        guard !tables.isEmpty else { return }
        let names = tables.joined(separator: ", ")
        let clock = ContinuousClock()
        let deadline = options.lockTimeout.map { clock.now + $0 }
        let attempt = PostgresConnection.milliseconds(Self.lockAttempt)
        while true {
            do {
                // The attempt's short lock_timeout is undone with a failed attempt's savepoint.
                try inSavepoint {
                    try execute("SET LOCAL lock_timeout = \(attempt)", context: "waiting for the write lock on \(names)")
                    try execute("LOCK TABLE \(tables.map(quotedIdentifier).joined(separator: ", ")) IN EXCLUSIVE MODE")
                }
                try execute(
                    "SET LOCAL lock_timeout = \(options.lockTimeout.map(PostgresConnection.milliseconds) ?? 0)",
                    context: "taking the write lock on \(names)")
                return
            } catch let error as PostgresError where error.sqlState == "55P03" && deadline.map({ clock.now + Self.lockPause < $0 }) ?? true
            {
                Thread.sleep(forTimeInterval: Double(Self.lockPause.components.attoseconds) / 1e18)
            } catch var failure as PostgresError {
                failure.context = "waiting for the write lock on \(names)"
                throw failure
            }
        }
    }

    /// One attempt at the write lock, and the pause after a failed one (see `lockForWriting`).
    static let lockAttempt = Duration.milliseconds(100)
    static let lockPause = Duration.milliseconds(50)

    public func backup(to path: String, tables: [String]) throws {
        try PostgresTableBackup(connection: self, tables: tables).write(to: path)
    }

    /// The name the server gives the database (the URL may leave it to PGDATABASE or the user's).
    public func backupNaming() throws -> (database: String, fileExtension: String) {
        (try queryText("SELECT current_database()", context: "naming the backup") ?? "", "sql")
    }

    /// A session's temporary tables live in its own buffers, 8 MB by default: up to 256 MB keeps
    /// a million staged rows out of the kernel's hands (an import of 1M rows: 13.9 s -> 13.1 s,
    /// measured). Only before the session's first temporary table (it has no temporary schema
    /// yet): the server refuses the change after.
    func useLargeTemporaryBuffers() throws(PostgresError) {
        try execute(
            """
            SELECT set_config('temp_buffers', '256MB', false)
            WHERE pg_size_bytes(current_setting('temp_buffers')) < pg_size_bytes('256MB') AND pg_my_temp_schema() = 0
            """, context: "sizing the session's temporary buffers")
    }

    /// A second session whose transactions are read-only.
    public func openReader() throws -> any DatabaseReader {
        try Self.reader(url: url, options: options)
    }

    /// A session whose transactions are read-only: the server refuses what a reader never asks.
    static func reader(url: PostgresURL, options: Options) throws -> PostgresConnection {
        let reader = try PostgresConnection(url: url, options: options)
        try reader.execute("SET default_transaction_read_only = on", context: "opening a reader")
        return reader
    }

    public func migrationStore() -> any MigrationStore { PostgresMigrationStore(self) }

    public func stressStore() throws -> any StressStore {
        try PostgresStressStore.checkShape(self)
        return PostgresStressStore(self)
    }
}
