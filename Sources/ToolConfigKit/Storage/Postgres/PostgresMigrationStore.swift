import Foundation

/// Migrations on PostgreSQL: sqlx-postgres's ledger, its advisory lock, scripts through the simple
/// query protocol (as sqlx runs them), rehearsals inside a transaction that is rolled back.
final class PostgresMigrationStore: MigrationStore {
    let connection: PostgresConnection

    init(_ connection: PostgresConnection) {
        self.connection = connection
    }

    var database: any Database { connection }

    func builtInMigrations() throws(MigrationError) -> MigrationSet { try .embeddedPostgres() }

    func tableExists(_ name: String) throws -> Bool {
        try connection.query(
            "SELECT 1 FROM pg_class WHERE oid = to_regclass(quote_ident($1)) AND relkind IN ('r', 'p')",
            [.text(name)], context: "looking for table \(name)"
        ).count > 0
    }

    func columnNames(of table: String) throws -> [String] {
        let rows = try connection.query(
            """
            SELECT attname FROM pg_attribute
            WHERE attrelid = to_regclass(quote_ident($1)) AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """, [.text(table)], context: "reading the columns of \(table)")
        return (0..<rows.count).map { rows.text($0, 0) ?? "" }
    }

    // MARK: ledger

    /// sqlx-postgres's CREATE TABLE, word for word.
    static let ledgerSQL = """
        CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
            success BOOLEAN NOT NULL,
            checksum BYTEA NOT NULL,
            execution_time BIGINT NOT NULL
        );
        """

    func createLedgerIfMissing() throws {
        try connection.execute(Self.ledgerSQL, context: "creating \(MigrationLedger.tableName)")
    }

    func seaORMLedger() throws -> [(version: String, appliedAt: Int64?)]? {
        guard try tableExists(ApplicationRelease.seaORMLedger) else { return nil }
        let rows = try connection.query(
            "SELECT version::text, applied_at::bigint FROM \(ApplicationRelease.seaORMLedger) ORDER BY version",
            context: "reading \(ApplicationRelease.seaORMLedger)")
        return try (0..<rows.count).map { (rows.text($0, 0) ?? "", try rows.int64($0, 1)) }
    }

    func ledgerEntries() throws -> [LedgerEntry] {
        let rows = try connection.query(
            """
            SELECT version, description, installed_on::text, success, checksum, execution_time
            FROM _sqlx_migrations ORDER BY version
            """, context: "reading \(MigrationLedger.tableName)")
        return try (0..<rows.count).map { row in
            LedgerEntry(
                version: try rows.int64(row, 0) ?? 0,
                description: rows.text(row, 1) ?? "",
                installedOn: rows.text(row, 2) ?? "",
                success: try rows.bool(row, 3) ?? false,
                checksum: try rows.bytes(row, 4) ?? [],
                executionTime: try rows.int64(row, 5) ?? 0)
        }
    }

    func recordInLedger(_ migration: Migration) throws {
        try connection.query(
            """
            INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time )
            VALUES ( $1, $2, TRUE, $3, -1 )
            """, [.integer(migration.version), .text(migration.description), .bytes(migration.checksum)],
            context: "recording migration \(migration.version) in \(MigrationLedger.tableName)")
    }

    func setExecutionTime(version: Int64, nanoseconds: Int64) throws {
        try connection.query(
            "UPDATE _sqlx_migrations SET execution_time = $1 WHERE version = $2",
            [.integer(nanoseconds), .integer(version)], context: "recording the execution time of migration \(version)")
    }

    func removeFromLedger(version: Int64) throws {
        try connection.query(
            "DELETE FROM _sqlx_migrations WHERE version = $1", [.integer(version)],
            context: "removing migration \(version) from \(MigrationLedger.tableName)")
    }

    // MARK: scripts, lock, rehearsal

    func execute(_ sql: String, context: String?) throws { try connection.execute(sql, context: context) }
    var isInTransaction: Bool { connection.isInTransaction }

    /// sqlx's advisory lock for this database (`PostgresMigrationLock`), waited for up to the
    /// session's lock timeout, and released however `body` ends.
    func withMigrationLock<T>(_ body: () throws -> T) throws -> T {
        let name = try connection.queryText("SELECT current_database()", context: "naming the migration lock") ?? ""
        let id = PostgresMigrationLock.id(database: name)
        do throws(PostgresError) {
            try connection.advisoryLock(id)
        } catch {
            var failure = error
            if failure.sqlState == "55P03" {
                failure.context =
                    "waiting for the migration lock (sqlx's advisory lock \(id)), which another migrator holds "
                    + "(the application's sqlx, or another toolcfg)"
            }
            throw failure
        }
        defer { _ = try? connection.advisoryUnlock(id) }
        return try body()
    }

    /// Inside one transaction that is rolled back, under the migration lock: PostgreSQL's DDL is
    /// transactional, so the database is left exactly as it was (sequences aside: a `nextval`
    /// that a migration itself calls is never rolled back). The locks the scripts take on live
    /// tables are held until the rollback.
    func rehearse<T>(_ body: (any MigrationStore) throws -> T) throws -> T {
        try withMigrationLock { try connection.transaction(.rolledBackWrite) { try body(self) } }
    }

    // MARK: row counts

    func rowCounts() throws -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for table in try userTables() where table.name != MigrationLedger.tableName {
            counts[table.name] =
                try connection.queryInt64(
                    "SELECT count(*) FROM \(table.quotedName)",
                    context: "counting the rows of \(table.name)") ?? 0
        }
        return counts
    }
}
