/// The SQLite statements of the tool-config table.
extension ToolConfigTable {
    /// A table of another shape (or none) is refused with a clear message rather than half-used.
    public static func checkShape(_ connection: SQLiteConnection) throws {
        guard try connection.tableExists(name) else {
            throw TableShapeError(path: connection.path, message: "has no \(name) table; run `toolcfg migrate up` first")
        }
        let present = try connection.columnNames(of: name)
        let missing = columns.filter { !present.contains($0) }
        if !missing.isEmpty {
            throw TableShapeError(
                path: connection.path,
                message: "\(name) lacks the column(s) \(missing.joined(separator: ", ")); it is not the table of migration 0007")
        }
        // Unique over the whole table and comparing bytes: import tells new pairs from known ones
        // by their bytes, and a NOCASE or partial index would make SQLite disagree.
        let unique =
            try connection.queryInt64(
                """
                SELECT count(*) FROM pragma_index_list(?1) l
                WHERE l."unique" = 1 AND l.partial = 0 AND (SELECT group_concat(name || ' ' || coll) FROM
                    (SELECT name, coll FROM pragma_index_xinfo(l.name) WHERE key = 1 ORDER BY seqno)) = 'user_id BINARY,tool_id BINARY'
                """, [.text(name)]) ?? 0
        if unique == 0 {
            throw TableShapeError(
                path: connection.path,
                message:
                    "\(name) has no UNIQUE(user_id, tool_id) over the whole table with the BINARY collation; "
                    + "upserts would duplicate or merge rows"
            )
        }
    }

    /// Drops the table's non-unique indexes (those created by SQL, not the UNIQUE constraint's)
    /// and returns the SQL that creates them again. Call inside a transaction.
    static func dropSecondaryIndexes(_ connection: SQLiteConnection) throws -> [String] {
        let statement = try connection.prepare(
            """
            SELECT m.name, m.sql FROM sqlite_master m JOIN pragma_index_list(?1) l ON l.name = m.name
            WHERE m.type = 'index' AND m.sql IS NOT NULL AND l."unique" = 0 ORDER BY m.rowid
            """)
        try statement.bind([.text(name)])
        var indexes: [(name: String, sql: String)] = []
        while try statement.step() { indexes.append((statement.text(0) ?? "", statement.text(1) ?? "")) }
        for index in indexes {
            try connection.execute("DROP INDEX \(quotedIdentifier(index.name))")
        }
        return indexes.map(\.sql)
    }

    /// Rows ordered by id, optionally for one user and/or one tool.
    static func selectSQL(userID: Bool, toolID: Bool) -> String {
        "SELECT \(selectedColumns) FROM user_tool_configs"
            + filter(userID: userID, toolID: toolID) + " ORDER BY id"
    }

    /// How many rows `selectSQL` yields, with the same parameters.
    static func countSQL(userID: Bool, toolID: Bool) -> String {
        "SELECT count(*) FROM user_tool_configs" + filter(userID: userID, toolID: toolID)
    }

    private static func filter(userID: Bool, toolID: Bool) -> String {
        var conditions: [String] = []
        if userID { conditions.append("user_id = :user") }
        if toolID { conditions.append("tool_id = :tool") }
        return conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
    }

    static let lookupSQL = """
        SELECT id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at
        FROM user_tool_configs WHERE user_id = ?1 AND tool_id = ?2
        """

    /// The upsert: a conflict on (user_id, tool_id) updates the row in place, so it keeps its id
    /// and created_at (INSERT OR REPLACE would delete it and insert a new id).
    static let upsertSQL = """
        INSERT INTO user_tool_configs (\(writtenColumns))
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
        ON CONFLICT(user_id, tool_id) DO UPDATE SET
            enabled = excluded.enabled,
            encrypted_api_key = excluded.encrypted_api_key,
            salt = excluded.salt,
            nonce = excluded.nonce,
            updated_at = excluded.updated_at
        """

    /// Inserts `rows` rows known to be new, 8 parameters per row in the upsert's order. Any
    /// constraint failure rolls back the whole transaction (OR ROLLBACK): an import fails whole
    /// anyway, and so SQLite keeps no statement journal to undo one statement's rows (with the
    /// default ABORT it wrote ~170k pages to one for 1M rows, a third of all its writes).
    static func insertNewSQL(rows: Int) -> String {
        let values = (0..<rows).map { row in "(" + (1...8).map { "?\(row * 8 + $0)" }.joined(separator: ", ") + ")" }
        return """
            INSERT OR ROLLBACK INTO user_tool_configs (\(writtenColumns))
            VALUES \(values.joined(separator: ", "))
            """
    }

    /// A row as `lookupSQL` selects it: id, enabled, the triple, created_at, updated_at.
    static func row(_ statement: SQLiteStatement) -> Row {
        Row(
            id: statement.int64(0), enabled: statement.int64(1) != 0, secret: secret(statement, first: 2),
            createdAt: statement.int64(5), updatedAt: statement.int64(6))
    }

    /// Reads the triple at columns `first`...`first + 2`; NULL in any column means no key.
    package static func secret(_ statement: SQLiteStatement, first: Int32) -> StoredSecret? {
        guard let encrypted = statement.text(first), let salt = statement.text(first + 1), let nonce = statement.text(first + 2) else {
            return nil
        }
        return StoredSecret(encryptedAPIKey: encrypted, salt: salt, nonce: nonce)
    }
}
