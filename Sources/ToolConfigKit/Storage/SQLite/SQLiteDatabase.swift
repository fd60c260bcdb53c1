import Foundation

/// An SQLite connection is the SQLite implementation of `Database`.
extension SQLiteConnection: Database {
    public var location: String { path }

    /// data_version: fixed for the length of a read transaction, changed by any other
    /// connection's commit (never by this connection's own).
    public func snapshotMark() throws -> String? {
        try queryInt64("PRAGMA data_version").map(String.init)
    }

    /// The database has one write lock, so any other commit at all counts.
    public func writtenSince(_ mark: String, in tables: [String]) throws -> Bool {
        try snapshotMark() != mark
    }

    public func makeCommitsDurable() throws {
        try execute("PRAGMA synchronous = FULL")
    }

    public func useCache(kibibytes: Int) throws {
        try execute("PRAGMA cache_size = -\(kibibytes)")
    }

    /// Every table but SQLite's own, with its columns and primary key (one query for all).
    public func tableColumns() throws -> [TableColumns] {
        let rows = try prepare(
            """
            SELECT m.name, c.name, c."notnull", c.pk FROM sqlite_master AS m, pragma_table_info(m.name) AS c
            WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, c.cid
            """)
        var columns: [(table: String, column: String, notNull: Bool, keyPosition: Int64?)] = []
        while try rows.step() {
            // pragma_table_info's pk is the column's position in the key, 0 when not in it.
            columns.append((rows.text(0) ?? "", rows.text(1) ?? "", rows.int64(2) != 0, rows.int64(3) > 0 ? rows.int64(3) : nil))
        }
        return TableColumns.collect(columns)
    }

    /// SQLite has no row-level security: every connection sees every row.
    public func requireEveryRowVisible(in tables: [String]) throws {}

    /// BEGIN IMMEDIATE took the database's write lock already.
    public func lockForWriting(_ tables: [String]) throws {}

    public func secretStore(for group: SecretColumnGroup) throws -> any SecretStore {
        try SQLiteSecretStore(self, group: group)
    }

    /// The whole file, whatever `tables` says: a database file is restored whole.
    public func backup(to path: String, tables: [String]) throws {
        try backup(to: path)
    }

    public func backupNaming() throws -> (database: String, fileExtension: String) {
        (URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, "db")
    }

    public func toolConfigStore() throws -> any ToolConfigStore {
        try SQLiteToolConfigStore(self)
    }

    public func openReader() throws -> any DatabaseReader {
        try SQLiteConnection(path: path, mode: .readOnly, options: options)
    }

    public func stressStore() throws -> any StressStore {
        try ToolConfigTable.checkShape(self)
        return SQLiteStressStore(self)
    }
}
