/// `user_tool_configs` on PostgreSQL. Exports stream through `COPY (SELECT ...) TO STDOUT` in
/// binary format, read in place in libpq's buffer; imports always stage (`PostgresImportStage`).
final class PostgresToolConfigStore: ToolConfigStore {
    private let connection: PostgresConnection
    /// Text from a UTF8 database is valid UTF-8 (the server checks what it stores); only a
    /// SQL_ASCII one may hold other bytes, which an export repairs as SQLite's does.
    private let textIsUTF8: Bool

    init(_ connection: PostgresConnection) throws {
        try ToolConfigTable.checkShape(connection)
        self.connection = connection
        textIsUTF8 = connection.parameterStatus("server_encoding") == "UTF8"
    }

    /// Writing every row twice (a temporary table, then the table) is the PostgreSQL norm: the
    /// copy into the stage runs before the write transaction, which then stays short.
    var stagesEveryImport: Bool { true }

    func isEmpty() throws -> Bool {
        try connection.query("SELECT EXISTS (SELECT 1 FROM \(ToolConfigTable.name))", context: "looking for rows").bool(0, 0) != true
    }

    func count(userID: String?, toolID: String?) throws -> Int {
        let filter: [PostgresValue] = [userID, toolID].compactMap { $0 }.map { .text($0) }
        return Int(
            try connection.queryInt64(
                ToolConfigTable.postgresCountSQL(userID: userID != nil, toolID: toolID != nil), filter,
                context: "counting the rows of \(ToolConfigTable.name)") ?? 0)
    }

    func forEachRow(userID: String?, toolID: String?, omitKeys: Bool, _ body: (StoredRow) throws -> Void) throws {
        let sql = try ToolConfigTable.copySelectSQL(connection, userID: userID, toolID: toolID, omitKeys: omitKeys)
        var fields: [UnsafeBufferPointer<UInt8>?] = []
        fields.reserveCapacity(ToolConfigTable.columns.count)
        let textIsUTF8 = self.textIsUTF8
        try connection.copyOut(sql, context: "reading the rows of \(ToolConfigTable.name)") { row in
            guard try row.readBinaryFields(into: &fields) else { return }
            try body(try StoredRow(fields, textIsUTF8: textIsUTF8, database: connection.url.redacted))
        }
    }

    /// Never called: PostgreSQL stages every import (`stagesEveryImport`).
    func makeWriter() throws -> any ImportTarget {
        throw PostgresError(
            kind: .client, message: "imports on PostgreSQL always stage their rows", database: connection.url.redacted,
            context: "opening an import")
    }

    func makeStage(file: String) throws -> any ImportStaging {
        try PostgresImportStage(connection, file: file)
    }

    func dropSecondaryIndexes() throws -> [String] {
        try ToolConfigTable.dropSecondaryIndexes(connection)
    }

    /// Each index sorted in memory rather than through temporary files: up to 256 MB for this
    /// transaction when the server allows less (1M rows: 2.85 s with the default 64 MB, 1.9 s).
    func rebuildIndexes(_ definitions: [String]) throws {
        try connection.execute(
            """
            SELECT set_config('maintenance_work_mem', '256MB', true)
            WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('256MB')
            """, context: "sizing the index builds")
        for sql in definitions { try connection.execute(sql, context: "rebuilding an index") }
    }
}

extension StoredRow {
    /// A row of `ToolConfigTable.copySelectSQL` as `PostgresCopyRow.readBinaryFields` reads it, in
    /// place (valid while the COPY's body runs): id, user_id, tool_id, enabled, encrypted_api_key,
    /// salt, nonce, created_at, updated_at. Built as SQLite's store builds it, so both engines
    /// export the same rows as the same bytes.
    init(_ fields: [UnsafeBufferPointer<UInt8>?], textIsUTF8: Bool, database: String) throws {
        guard fields.count == ToolConfigTable.columns.count else {
            throw PostgresError(
                kind: .client, message: "a COPY row of \(fields.count) fields, not \(ToolConfigTable.columns.count)",
                database: database, context: "reading the rows of \(ToolConfigTable.name)")
        }
        /// UTF-8 text goes out as the bytes received; from a SQL_ASCII database anything but ASCII
        /// goes through a String, which repairs it as SQLite's store does.
        func text(_ field: Int) -> ExportValue {
            guard let bytes = fields[field] else { return .null }
            return textIsUTF8 || Self.isASCII(bytes) ? .bytes(bytes) : .text(String(decoding: bytes, as: UTF8.self))
        }
        func integer(_ field: Int) throws -> ExportValue {
            guard let bytes = fields[field] else { return .null }
            guard let value = PostgresCopyRow.integer(binary: bytes) else { throw Self.mismatch(field, "an integer", database) }
            return .integer(value)
        }
        id = try integer(0)
        userID = text(1)
        toolID = text(2)
        guard let enabled = fields[3], enabled.count == 1 else { throw Self.mismatch(3, "a boolean", database) }
        self.enabled = enabled[0] != 0
        key = fields[4] == nil || fields[5] == nil || fields[6] == nil ? nil : (text(4), text(5), text(6))
        createdAt = try integer(7)
        updatedAt = try integer(8)
    }

    private static func mismatch(_ field: Int, _ expected: String, _ database: String) -> PostgresError {
        PostgresError(
            kind: .client, message: "column \(ToolConfigTable.columns[field]) is not \(expected)", database: database,
            context: "reading the rows of \(ToolConfigTable.name)")
    }
}
