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

/// sqlx's migration ledger, read and written exactly as sqlx does on each engine (the SQL is the
/// store's), so the application's own `sqlx::migrate!` and toolcfg see the same state.
public struct MigrationLedger {
    public static let tableName = "_sqlx_migrations"

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
        ("databasechangelog", "Liquibase")
    ]

    let store: any LedgerReader

    public init(database: any DatabaseReader) {
        self.init(store: database.ledgerReader())
    }

    init(store: any LedgerReader) {
        self.store = store
    }

    public var exists: Bool {
        get throws { try store.tableExists(Self.tableName) }
    }

    /// Refuses a database migrated by another tool, or a `_sqlx_migrations` of another shape.
    public func checkOwnership() throws {
        for (table, tool) in Self.foreignLedgers where try store.tableExists(table) {
            throw MigrationError.foreignLedger(table: table, tool: tool)
        }
        // golang-migrate's table has a generic name; its `dirty` column identifies it.
        if try store.tableExists("schema_migrations"), try store.columnNames(of: "schema_migrations").contains("dirty") {
            throw MigrationError.foreignLedger(table: "schema_migrations", tool: "golang-migrate")
        }
        if try exists {
            let columns = try store.columnNames(of: Self.tableName)
            let missing = Self.expectedColumns.filter { !columns.contains($0) }
            if !missing.isEmpty {
                throw MigrationError.malformedLedger(reason: "it lacks the column(s) \(missing.joined(separator: ", "))")
            }
        }
    }

    public func entries() throws -> [LedgerEntry] {
        try exists ? store.ledgerEntries() : []
    }
}
