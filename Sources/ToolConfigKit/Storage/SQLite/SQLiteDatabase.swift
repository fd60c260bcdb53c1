import Foundation

/// An SQLite connection is the SQLite implementation of `Database`.
extension SQLiteConnection: Database {
    public var location: String { path }

    public func makeCommitsDurable() throws {
        try execute("PRAGMA synchronous = FULL")
    }

    public func useCache(kibibytes: Int) throws {
        try execute("PRAGMA cache_size = -\(kibibytes)")
    }

    public func encryptedTables() throws -> [EncryptedTable] {
        let tables = try prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        var found: [EncryptedTable] = []
        while try tables.step() {
            let name = tables.text(0) ?? ""
            let columns = try columnNames(of: name)
            guard EncryptedTable.secretColumns.allSatisfy(columns.contains) else { continue }
            let withoutRowID = try queryInt64("SELECT count(*) FROM sqlite_master WHERE name = ?1 AND sql LIKE '%WITHOUT ROWID%'", [.text(name)]) ?? 0
            if withoutRowID > 0 {
                throw TableShapeError(path: path, message: "table \(name) holds secrets but is WITHOUT ROWID, which toolcfg cannot address row by row")
            }
            found.append(EncryptedTable(name: name, idColumn: columns.contains("id") ? "id" : nil))
        }
        return found
    }

    /// SQLite has no row-level security: every connection sees every row.
    public func requireEveryRowVisible(in tables: [String]) throws {}

    /// BEGIN IMMEDIATE took the database's write lock already.
    public func lockForWriting(_ tables: [String]) throws {}

    public func secretStore(for table: EncryptedTable) throws -> any SecretStore {
        SQLiteSecretStore(self, table: table)
    }

    public func toolConfigStore() throws -> any ToolConfigStore {
        try SQLiteToolConfigStore(self)
    }

    public func openReader() throws -> any Database {
        try SQLiteConnection(path: path, mode: .readOnly, options: options)
    }

    public func stressStore() throws -> any StressStore {
        try ToolConfigTable.checkShape(self)
        return SQLiteStressStore(self)
    }
}
