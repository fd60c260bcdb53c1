/// `user_tool_configs` in SQLite.
final class SQLiteToolConfigStore: ToolConfigStore {
    private let connection: SQLiteConnection

    init(_ connection: SQLiteConnection) throws {
        try ToolConfigTable.checkShape(connection)
        self.connection = connection
    }

    func isEmpty() throws -> Bool {
        try connection.queryInt64("SELECT EXISTS (SELECT 1 FROM user_tool_configs)") == 0
    }

    func makeWriter() throws -> any ImportTarget {
        try SQLiteImportWriter(connection: connection)
    }

    func makeStage(file: String) throws -> any ImportStaging {
        try SQLiteImportStage(connection, file: file)
    }

    func dropSecondaryIndexes() throws -> [String] {
        try ToolConfigTable.dropSecondaryIndexes(connection)
    }

    func rebuildIndexes(_ definitions: [String]) throws {
        // The index builds sort in memory up to the cache size: keep that small.
        try connection.useCache(kibibytes: 2000)
        for sql in definitions { try connection.execute(sql, context: "rebuilding an index") }
    }
}
