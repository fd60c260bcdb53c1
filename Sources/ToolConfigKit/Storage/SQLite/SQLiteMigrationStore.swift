import Foundation

/// Migrations on SQLite: sqlx-sqlite's ledger, scripts through `execute`, rehearsals on a copy.
final class SQLiteMigrationStore: MigrationStore {
    let connection: SQLiteConnection

    init(_ connection: SQLiteConnection) {
        self.connection = connection
    }

    var database: any Database { connection }

    func builtInMigrations() throws(MigrationError) -> MigrationSet { try .embedded() }

    func tableExists(_ name: String) throws -> Bool { try connection.tableExists(name) }
    func columnNames(of table: String) throws -> [String] { try connection.columnNames(of: table) }

    // MARK: ledger

    /// sqlx-sqlite's CREATE TABLE, word for word.
    static let ledgerSQL = """
        CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );
        """

    func createLedgerIfMissing() throws {
        try connection.execute(Self.ledgerSQL, context: "creating \(MigrationLedger.tableName)")
    }

    func seaORMLedger() throws -> [(version: String, appliedAt: Int64?)]? {
        guard try connection.tableExists(ApplicationRelease.seaORMLedger) else { return nil }
        let statement = try connection.prepare("SELECT version, applied_at FROM \(ApplicationRelease.seaORMLedger) ORDER BY version")
        var rows: [(String, Int64?)] = []
        while try statement.step() { rows.append((statement.text(0) ?? "", statement.isNull(1) ? nil : statement.int64(1))) }
        return rows
    }

    func ledgerEntries() throws -> [LedgerEntry] {
        let statement = try connection.prepare(
            """
            SELECT version, description, installed_on, success, checksum, execution_time
            FROM _sqlx_migrations ORDER BY version
            """)
        var rows: [LedgerEntry] = []
        while try statement.step() {
            rows.append(
                LedgerEntry(
                    version: statement.int64(0),
                    description: statement.text(1) ?? "",
                    installedOn: statement.text(2) ?? "",
                    success: statement.int64(3) != 0,
                    checksum: statement.blob(4) ?? [],
                    executionTime: statement.int64(5)))
        }
        return rows
    }

    func recordInLedger(_ migration: Migration) throws {
        try connection.prepare(
            """
            INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time )
            VALUES ( ?1, ?2, TRUE, ?3, -1 )
            """
        ).run([.integer(migration.version), .text(migration.description), .blob(migration.checksum)])
    }

    func setExecutionTime(version: Int64, nanoseconds: Int64) throws {
        try connection.prepare("UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2")
            .run([.integer(nanoseconds), .integer(version)])
    }

    func removeFromLedger(version: Int64) throws {
        try connection.prepare("DELETE FROM _sqlx_migrations WHERE version = ?1").run([.integer(version)])
    }

    // MARK: scripts, lock, rehearsal

    func execute(_ sql: String, context: String?) throws { try connection.execute(sql, context: context) }
    var isInTransaction: Bool { connection.isInTransaction }

    func withMigrationLock<T>(_ body: () throws -> T) throws -> T { try body() }

    /// On a copy made with the online backup, which reads a consistent state even of a live WAL
    /// database and changes nothing in it.
    func rehearse<T>(_ body: (any MigrationStore) throws -> T) throws -> T {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("toolcfg-verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let copy = scratch.appendingPathComponent("copy.db").path
        try connection.backup(to: copy)
        return try body(SQLiteMigrationStore(try SQLiteConnection(path: copy, options: connection.options)))
    }

    // MARK: fingerprint, row counts

    func rowCounts() throws -> [String: Int64] {
        let tables = try connection.prepare(
            """
            SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ?1
            """)
        try tables.bind([.text(MigrationLedger.tableName)])
        var counts: [String: Int64] = [:]
        while try tables.step() {
            let name = tables.text(0) ?? ""
            counts[name] = try connection.queryInt64("SELECT count(*) FROM \(quotedIdentifier(name))") ?? 0
        }
        return counts
    }

    /// Every object of sqlite_master (SQL with whitespace normalised), each table's columns,
    /// indexes and rows (in rowid order), and sqlite_sequence by table.
    /// What SQLite makes on its own: its AUTOINCREMENT counters (never dropped), ANALYZE's
    /// statistics, and the indexes of UNIQUE and PRIMARY KEY constraints.
    static let engine = SchemaFingerprint.Engine(
        bookkeepingTables: [
            "sqlite_sequence":
                "SQLite's own table of AUTOINCREMENT counters, created by the first AUTOINCREMENT table; it can never be dropped",
            "sqlite_stat1": "SQLite's statistics table, created by ANALYZE"
        ],
        counterTable: "sqlite_sequence", automaticIndexPrefix: "sqlite_autoindex_")

    func fingerprint() throws -> SchemaFingerprint {
        let master = try connection.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        var objects: [SchemaFingerprint.Object] = []
        while try master.step() {
            objects.append(
                .init(
                    type: master.text(0) ?? "", name: master.text(1) ?? "", table: master.text(2) ?? "",
                    sql: master.text(3).map(SchemaFingerprint.normalize)))
        }
        var tables: [SchemaFingerprint.Table] = []
        for object in objects where object.type == "table" {
            tables.append(try table(object.name))
        }
        var sequences: [String: Int64] = [:]
        if objects.contains(where: { $0.type == "table" && $0.name == "sqlite_sequence" }) {
            let rows = try connection.prepare("SELECT name, seq FROM sqlite_sequence")
            while try rows.step() { sequences[rows.text(0) ?? ""] = rows.int64(1) }
        }
        return SchemaFingerprint(objects: objects, tables: tables.sorted { $0.name < $1.name }, sequences: sequences, engine: Self.engine)
    }

    private func table(_ name: String) throws -> SchemaFingerprint.Table {
        let info = try connection.prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid")
        try info.bind(.text(name), at: 1)
        var columns: [String] = []
        var names: [String] = []
        while try info.step() {
            let column = info.text(0) ?? ""
            names.append(column)
            columns.append(
                "\(column) \(info.text(1) ?? "")\(info.int64(2) != 0 ? " NOT NULL" : "")"
                    + "\(info.text(3).map { " DEFAULT \($0)" } ?? "")\(info.int64(4) > 0 ? " PK\(info.int64(4))" : "")"
            )
        }
        let list = try connection.prepare("SELECT name, \"unique\", partial FROM pragma_index_list(?1) ORDER BY name")
        try list.bind(.text(name), at: 1)
        var indexes: [SchemaFingerprint.Index] = []
        while try list.step() {
            let indexName = list.text(0) ?? ""
            let info = try connection.prepare("SELECT coalesce(name, '<expression>') FROM pragma_index_info(?1) ORDER BY seqno")
            try info.bind(.text(indexName), at: 1)
            var indexColumns: [String] = []
            while try info.step() { indexColumns.append(info.text(0) ?? "") }
            // Autoindexes are named by creation order, so name them by their columns instead.
            let stableName =
                indexName.hasPrefix("sqlite_autoindex_") ? "(unique constraint on \(indexColumns.joined(separator: ", ")))" : indexName
            indexes.append(.init(name: stableName, unique: list.int64(1) != 0, partial: list.int64(2) != 0, columns: indexColumns))
        }
        // Rows in rowid order (or by every column for WITHOUT ROWID tables), timing columns of the
        // ledger left out.
        let kept = SchemaFingerprint.digestedColumns(of: name, names)
        let hasRowID = (try? connection.prepare("SELECT rowid FROM \(quotedIdentifier(name)) LIMIT 0")) != nil
        let order = hasRowID ? "rowid" : (1...max(1, kept.count)).map(String.init).joined(separator: ", ")
        let select = kept.isEmpty ? "SELECT 1" : "SELECT " + kept.map(quotedIdentifier).joined(separator: ", ")
        let rows = try connection.prepare("\(select) FROM \(quotedIdentifier(name)) ORDER BY \(order)")
        let digest = SHA256Stream()
        var count = 0
        while try rows.step() {
            var bytes: [UInt8] = []
            for column in 0..<rows.columnCount {
                switch rows.value(column) {
                case .null: bytes.append(0)
                case .integer(let i): bytes.append(1); withUnsafeBytes(of: i.bigEndian) { bytes += $0 }
                case .real(let d): bytes.append(2); withUnsafeBytes(of: d.bitPattern.bigEndian) { bytes += $0 }
                case .text(let t):
                    bytes.append(3)
                    withUnsafeBytes(of: UInt32(t.utf8.count).bigEndian) { bytes += $0 }
                    bytes += t.utf8
                case .blob(let b):
                    bytes.append(4)
                    withUnsafeBytes(of: UInt32(b.count).bigEndian) { bytes += $0 }
                    bytes += b
                }
            }
            bytes.withUnsafeBytes { digest.update($0) }
            count += 1
        }
        return .init(name: name, columns: columns, indexes: indexes, rows: count, digest: Digest.hex(digest.finish().prefix(16)))
    }
}

extension SQLiteConnection {
    public func migrationStore() -> any MigrationStore { SQLiteMigrationStore(self) }
}
