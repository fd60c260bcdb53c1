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

    func count(userID: String?, toolID: String?) throws -> Int {
        let filter: [SQLiteStatement.Value] = [userID, toolID].compactMap { $0 }.map { .text($0) }
        return Int(try connection.queryInt64(ToolConfigTable.countSQL(userID: userID != nil, toolID: toolID != nil), filter) ?? 0)
    }

    func forEachRow(userID: String?, toolID: String?, omitKeys: Bool, _ body: (StoredRow) throws -> Void) throws {
        let statement = try connection.prepare(ToolConfigTable.selectSQL(userID: userID != nil, toolID: toolID != nil))
        try statement.bind([userID, toolID].compactMap { $0 }.map { .text($0) })
        while try statement.step() { try body(StoredRow(statement, omitKeys: omitKeys)) }
    }

    var stagesEveryImport: Bool { false }

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
        connection.useDefaultCache()
        for sql in definitions { try connection.execute(sql, context: "rebuilding an index") }
    }
}

extension StoredRow {
    /// The current row of `ToolConfigTable.selectSQL`, read in place (valid until the statement
    /// steps again): id, user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at,
    /// updated_at.
    init(_ statement: SQLiteStatement, omitKeys: Bool) {
        /// ASCII text goes out as the bytes SQLite holds; anything else through a String, so
        /// invalid UTF-8 in the database is repaired exactly as the record path repairs it.
        func text(_ column: Int32) -> ExportValue {
            statement.withText(column) { bytes -> ExportValue in
                Self.isASCII(bytes) ? .bytes(bytes) : .text(String(decoding: bytes, as: UTF8.self))
            } ?? .null
        }
        func integer(_ column: Int32) -> ExportValue {
            statement.isNull(column) ? .null : .integer(statement.int64(column))
        }
        id = integer(0)
        userID = text(1)
        toolID = text(2)
        enabled = statement.int64(3) != 0
        let hasKey = !omitKeys && !statement.isNull(4) && !statement.isNull(5) && !statement.isNull(6)
        key = hasKey ? (text(4), text(5), text(6)) : nil
        createdAt = integer(7)
        updatedAt = integer(8)
    }
}
