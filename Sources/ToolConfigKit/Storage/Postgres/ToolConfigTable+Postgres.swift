/// The PostgreSQL statements of the tool-config table: the table found through the search path,
/// as `encryptedTables` finds it.
extension ToolConfigTable {
    /// The columns and the types an import writes and an export reads: those of
    /// migrations/postgres/0007 (integers of any width are read alike).
    private static let postgresTypes: [String: Set<String>] = [
        "id": integerTypes, "user_id": textTypes, "tool_id": textTypes, "enabled": ["boolean"],
        "encrypted_api_key": textTypes, "salt": textTypes, "nonce": textTypes,
        "created_at": integerTypes, "updated_at": integerTypes
    ]
    private static let integerTypes: Set<String> = ["bigint", "integer", "smallint"]
    private static let textTypes: Set<String> = ["text", "character varying"]

    /// A table of another shape (or none) is refused with a clear message rather than half-used.
    static func checkShape(_ connection: PostgresConnection) throws {
        let database = connection.url.redacted
        let columns = try connection.query(
            """
            SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a
            WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped
            """, [.text(name)], context: "reading the columns of \(name)")
        guard columns.count > 0 else {
            throw TableShapeError(path: database, message: "has no \(name) table; run `toolcfg migrate up` first")
        }
        let present = Dictionary((0..<columns.count).map { (columns.text($0, 0) ?? "", columns.text($0, 1) ?? "") }) { a, _ in a }
        let missing = Self.columns.filter { present[$0] == nil }
        if !missing.isEmpty {
            throw TableShapeError(
                path: database,
                message: "\(name) lacks the column(s) \(missing.joined(separator: ", ")); it is not the table of migration 0007")
        }
        let mistyped = Self.columns.filter { !postgresTypes[$0]!.contains(present[$0]!) }
        if !mistyped.isEmpty {
            throw TableShapeError(
                path: database,
                message: "\(name) has column(s) of other types than migration 0007's: "
                    + mistyped.map { "\($0) \(present[$0]!)" }.joined(separator: ", "))
        }
        // Unique over the whole table with collations that compare bytes: import tells new pairs
        // from known ones by their bytes, and a partial or nondeterministic one would disagree.
        let unique =
            try connection.queryInt64(
                """
                SELECT count(*) FROM pg_index x
                WHERE x.indrelid = to_regclass(quote_ident($1)) AND x.indisunique AND x.indpred IS NULL AND x.indexprs IS NULL
                  AND x.indnkeyatts = 2
                  AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
                       WHERE a.attrelid = x.indrelid AND a.attnum = ANY ((x.indkey::int2[])[0:1])) = ARRAY['tool_id', 'user_id']
                  AND NOT EXISTS (SELECT 1 FROM pg_collation c WHERE c.oid = ANY (x.indcollation::oid[]) AND NOT c.collisdeterministic)
                """, [.text(name)], context: "checking the unique pair of \(name)") ?? 0
        if unique == 0 {
            throw TableShapeError(
                path: database,
                message:
                    "\(name) has no UNIQUE(user_id, tool_id) over the whole table with deterministic collations; "
                    + "upserts would duplicate or merge rows"
            )
        }
    }

    /// Drops the table's indexes that back no constraint, and returns the SQL that creates them
    /// again. DROP INDEX needs the table's ACCESS EXCLUSIVE lock: taken only if no other session
    /// reads the table at that moment (NOWAIT), else nothing is dropped and the rows go into the
    /// indexes as they are (slower, but the application's readers never wait for the load).
    static func dropSecondaryIndexes(_ connection: PostgresConnection) throws -> [String] {
        let indexes = try connection.query(
            """
            SELECT quote_ident(n.nspname) || '.' || quote_ident(i.relname), pg_get_indexdef(i.oid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
            WHERE x.indrelid = to_regclass(quote_ident($1)) AND NOT x.indisunique AND NOT x.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
            ORDER BY i.oid
            """, [.text(name)], context: "reading the indexes of \(name)")
        guard indexes.count > 0 else { return [] }
        do {
            try connection.inSavepoint {
                try connection.execute("LOCK TABLE \(name) IN ACCESS EXCLUSIVE MODE NOWAIT", context: "locking \(name) to drop its indexes")
            }
        } catch let error as PostgresError where error.sqlState == "55P03" {
            return []  // a reader holds the table: the indexes stay
        }
        for row in 0..<indexes.count {
            try connection.execute("DROP INDEX \(indexes.text(row, 0) ?? "")", context: "dropping an index of \(name)")
        }
        return (0..<indexes.count).map { indexes.text($0, 1) ?? "" }
    }

    /// Rows ordered by id in COPY's binary format, optionally for one user and/or one tool (COPY
    /// takes no parameters: the values come as quoted literals). Without keys, the triple's
    /// columns are sent as NULL. Binary rather than text: the server sends integers without
    /// formatting them and text without escaping it, and reading them takes no parsing (1M rows:
    /// 1.18 s against 1.27 s for the server alone, medians of 5, and less client time).
    static func copySelectSQL(_ connection: PostgresConnection, userID: String?, toolID: String?, omitKeys: Bool) throws -> String {
        let columns =
            omitKeys
            ? "id, user_id, tool_id, enabled, NULL, NULL, NULL, created_at, updated_at"
            : selectedColumns
        var conditions: [String] = []
        if let userID { conditions.append("user_id = \(try connection.literal(userID))") }
        if let toolID { conditions.append("tool_id = \(try connection.literal(toolID))") }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return "COPY (SELECT \(columns) FROM \(name)\(filter) ORDER BY id) TO STDOUT (FORMAT binary)"
    }

    /// How many rows `copySelectSQL` yields, with `$1` and `$2` for the user and tool given.
    static func postgresCountSQL(userID: Bool, toolID: Bool) -> String {
        var conditions: [String] = []
        if userID { conditions.append("user_id = $\(conditions.count + 1)") }
        if toolID { conditions.append("tool_id = $\(conditions.count + 1)") }
        return "SELECT count(*) FROM \(name)" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
    }

    /// A row as the PostgreSQL statements here select it from column `first` on: id, enabled, the
    /// triple, created_at, updated_at; nil when the id is NULL (no row).
    static func row(_ rows: PostgresRows, _ row: Int, first: Int) throws -> Row? {
        guard let id = try rows.int64(row, first) else { return nil }
        return Row(
            id: id, enabled: try rows.bool(row, first + 1) ?? false, secret: secret(rows, row, first: first + 2),
            createdAt: try rows.int64(row, first + 5) ?? 0, updatedAt: try rows.int64(row, first + 6) ?? 0)
    }

    /// The triple at columns `first`...`first + 2`; NULL in any column means no key.
    package static func secret(_ rows: PostgresRows, _ row: Int, first: Int) -> StoredSecret? {
        guard let encrypted = rows.text(row, first), let salt = rows.text(row, first + 1), let nonce = rows.text(row, first + 2) else {
            return nil
        }
        return StoredSecret(encryptedAPIKey: encrypted, salt: salt, nonce: nonce)
    }
}
