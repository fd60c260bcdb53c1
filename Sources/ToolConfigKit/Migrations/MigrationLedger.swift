/// One row of sqlx's `_sqlx_migrations`.
public struct LedgerEntry: Sendable, Hashable, Codable {
    public var version: Int64
    public var description: String
    public var installedOn: String
    public var success: Bool
    public var checksum: [UInt8]
    /// Nanoseconds; -1 while sqlx (or toolcfg) has not yet recorded it.
    public var executionTime: Int64
}

/// sqlx's migration ledger, read and written exactly as sqlx does, so the application's own
/// `sqlx::migrate!` and toolcfg see the same state.
public struct MigrationLedger {
    public static let tableName = "_sqlx_migrations"

    static let createSQL = """
        CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );
        """

    static let expectedColumns = ["version", "description", "installed_on", "success", "checksum", "execution_time"]

    /// Ledgers of other migration tools: a database that has one is not ours to migrate.
    static let foreignLedgers: [(table: String, tool: String)] = [
        ("seaql_migrations", "sea-orm"),
        ("__diesel_schema_migrations", "diesel"),
        ("refinery_schema_history", "refinery"),
        ("flyway_schema_history", "Flyway"),
        ("goose_db_version", "goose"),
        ("knex_migrations", "knex"),
        ("_prisma_migrations", "Prisma"),
        ("atlas_schema_revisions", "Atlas"),
        ("__EFMigrationsHistory", "Entity Framework"),
        ("databasechangelog", "Liquibase"),
    ]

    let connection: SQLiteConnection

    public init(connection: SQLiteConnection) {
        self.connection = connection
    }

    public var exists: Bool {
        get throws(DatabaseError) { try connection.tableExists(Self.tableName) }
    }

    /// Refuses a database migrated by another tool, or a `_sqlx_migrations` of another shape.
    public func checkOwnership() throws {
        for (table, tool) in Self.foreignLedgers where try connection.tableExists(table) {
            throw MigrationError.foreignLedger(table: table, tool: tool)
        }
        // golang-migrate's table has a generic name; its `dirty` column identifies it.
        if try connection.tableExists("schema_migrations"), try connection.columnNames(of: "schema_migrations").contains("dirty") {
            throw MigrationError.foreignLedger(table: "schema_migrations", tool: "golang-migrate")
        }
        if try exists {
            let columns = try connection.columnNames(of: Self.tableName)
            let missing = Self.expectedColumns.filter { !columns.contains($0) }
            if !missing.isEmpty {
                throw MigrationError.malformedLedger(reason: "it lacks the column(s) \(missing.joined(separator: ", "))")
            }
        }
    }

    public func entries() throws(DatabaseError) -> [LedgerEntry] {
        guard try exists else { return [] }
        let statement = try connection.prepare("""
            SELECT version, description, installed_on, success, checksum, execution_time
            FROM _sqlx_migrations ORDER BY version
            """)
        var rows: [LedgerEntry] = []
        while try statement.step() {
            rows.append(LedgerEntry(
                version: statement.int64(0),
                description: statement.text(1) ?? "",
                installedOn: statement.text(2) ?? "",
                success: statement.int64(3) != 0,
                checksum: statement.blob(4) ?? [],
                executionTime: statement.int64(5)))
        }
        return rows
    }

    func createIfMissing() throws(DatabaseError) {
        try connection.execute(Self.createSQL, context: "creating \(Self.tableName)")
    }

    /// As sqlx does: success TRUE and execution_time -1, in the migration's own transaction.
    func record(_ migration: Migration) throws(DatabaseError) {
        try connection.prepare("""
            INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time )
            VALUES ( ?1, ?2, TRUE, ?3, -1 )
            """).run([.integer(migration.version), .text(migration.description), .blob(migration.checksum)])
    }

    /// After commit, as sqlx does; losing it to a crash is harmless.
    func setExecutionTime(version: Int64, nanoseconds: Int64) throws(DatabaseError) {
        try connection.prepare("UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2")
            .run([.integer(nanoseconds), .integer(version)])
    }

    func remove(version: Int64) throws(DatabaseError) {
        try connection.prepare("DELETE FROM _sqlx_migrations WHERE version = ?1").run([.integer(version)])
    }
}
