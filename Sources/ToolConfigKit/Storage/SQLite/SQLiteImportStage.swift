/// An import's staging area in SQLite: a temporary table on the import's own connection. SQLite's
/// temp database is the connection's own file: writing it takes no lock on the main database, and
/// a kill leaves nothing behind. Only what will be stored is staged: triples, never a plaintext key.
final class SQLiteImportStage: ImportStaging {
    private static let name = "temp.toolcfg_import"
    /// Staged columns, in the order `stage` binds them (seq, the file order, comes first).
    private static let columns = """
        seq, user_id, tool_id, action, enabled, key_mode, new_key, new_salt, new_nonce, created_at, updated_at,
        updated_at_given, line, record, existing_id, was_enabled, was_key, was_salt, was_nonce, was_created_at, was_updated_at
        """

    private let connection: SQLiteConnection
    private let file: String
    private let lookupStaged: SQLiteStatement
    private let lookupTable: SQLiteStatement
    private let insertStaged: SQLiteStatement
    private var sequence: Int64 = 0

    init(_ connection: SQLiteConnection, file: String) throws {
        self.connection = connection
        self.file = file
        try connection.execute(
            """
            DROP TABLE IF EXISTS \(Self.name);
            CREATE TABLE \(Self.name) (
                seq INTEGER PRIMARY KEY, user_id TEXT NOT NULL, tool_id TEXT NOT NULL,
                action INTEGER NOT NULL, enabled INTEGER NOT NULL, key_mode INTEGER NOT NULL,
                new_key TEXT, new_salt TEXT, new_nonce TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
                updated_at_given INTEGER NOT NULL, line INTEGER, record INTEGER,
                existing_id INTEGER, was_enabled INTEGER, was_key TEXT, was_salt TEXT, was_nonce TEXT,
                was_created_at INTEGER, was_updated_at INTEGER,
                UNIQUE (user_id, tool_id));
            """, context: "creating the import's staging table")
        lookupStaged = try connection.prepare("SELECT \(Self.columns) FROM \(Self.name) WHERE user_id = ?1 AND tool_id = ?2")
        lookupTable = try connection.prepare(ToolConfigTable.lookupSQL)
        insertStaged = try connection.prepare(
            "INSERT INTO \(Self.name) (\(Self.columns)) VALUES (\((1...21).map { "?\($0)" }.joined(separator: ", ")))")
    }

    func drop() {
        try? connection.execute("DROP TABLE IF EXISTS \(Self.name)")
    }

    // MARK: staging (before the write lock, in the read snapshot)

    func find(userID: String, toolID: String) throws -> FoundRow? {
        if let staged = try staged(lookupStaged, [.text(userID), .text(toolID)]) {
            return FoundRow(row: staged.result, fromThisImport: true)
        }
        return try currentRow(userID: userID, toolID: toolID).map { FoundRow(row: $0, fromThisImport: false) }
    }

    func stage(_ item: borrowing ImportItem, _ action: ImportAction, intent: KeyIntent, existing: ToolConfigTable.Row?, now: Int64) throws {
        sequence += 1
        let record = item.record
        func text(_ value: String?) -> SQLiteStatement.Value { value.map { .text($0) } ?? .null }
        func integer(_ value: Int64?) -> SQLiteStatement.Value { value.map { .integer($0) } ?? .null }
        let values: [SQLiteStatement.Value] = [
            .integer(sequence), .text(record.userID), .text(record.toolID), .integer(action.rawValue), .integer(record.enabled ? 1 : 0),
            .integer(intent.mode.rawValue), text(intent.secret?.encryptedAPIKey), text(intent.secret?.salt), text(intent.secret?.nonce),
            .integer(record.createdAt ?? now), .integer(record.updatedAt ?? now), .integer(record.updatedAt == nil ? 0 : 1),
            integer(item.location.line.map(Int64.init)), integer(item.location.record.map(Int64.init)),
            integer(existing?.id), integer(existing.map { $0.enabled ? 1 : 0 }), text(existing?.secret?.encryptedAPIKey),
            text(existing?.secret?.salt), text(existing?.secret?.nonce), integer(existing?.createdAt), integer(existing?.updatedAt)
        ]
        try TemporaryStorage.staging("staging the import's rows") { () throws(SQLiteError) in try insertStaged.run(values) }
    }

    private func staged(_ statement: SQLiteStatement, _ values: [SQLiteStatement.Value]) throws -> StagedImport? {
        defer { statement.reset() }
        try statement.bind(values)
        guard try statement.step() else { return nil }
        let existing: ToolConfigTable.Row? =
            statement.isNull(14)
            ? nil
            : ToolConfigTable.Row(
                id: statement.int64(14), enabled: statement.int64(15) != 0, secret: ToolConfigTable.secret(statement, first: 16),
                createdAt: statement.int64(19), updatedAt: statement.int64(20))
        return StagedImport(
            seq: statement.int64(0), userID: statement.text(1) ?? "", toolID: statement.text(2) ?? "",
            action: ImportAction(rawValue: statement.int64(3)) ?? .insert, enabled: statement.int64(4) != 0,
            intent: KeyIntent(
                mode: KeyIntent.Mode(rawValue: statement.int64(5)) ?? .keep, secret: ToolConfigTable.secret(statement, first: 6)),
            updatedAt: statement.int64(10), updatedAtGiven: statement.int64(11) != 0,
            location: SnapshotLocation(
                file: file, line: statement.isNull(12) ? nil : Int(statement.int64(12)),
                record: statement.isNull(13) ? nil : Int(statement.int64(13))),
            existing: existing)
    }

    func currentRow(userID: String, toolID: String) throws -> ToolConfigTable.Row? {
        defer { lookupTable.reset() }
        try lookupTable.bind(userID, at: 1)
        try lookupTable.bind(toolID, at: 2)
        return try lookupTable.step() ? ToolConfigTable.row(lookupTable) : nil
    }

    // MARK: the write phase (inside the write transaction)

    /// Pairs whose table row is not what the snapshot showed: a row the import acts on changed
    /// or vanished, or a pair it inserts exists now.
    private static let changedSQL = """
        SELECT s.seq FROM \(name) AS s LEFT JOIN main.user_tool_configs AS t ON t.id = s.existing_id
        WHERE s.existing_id IS NOT NULL AND (t.id IS NULL OR t.user_id IS NOT s.user_id OR t.tool_id IS NOT s.tool_id
            OR t.enabled IS NOT s.was_enabled OR t.encrypted_api_key IS NOT s.was_key OR t.salt IS NOT s.was_salt
            OR t.nonce IS NOT s.was_nonce OR t.created_at IS NOT s.was_created_at OR t.updated_at IS NOT s.was_updated_at)
        UNION ALL
        SELECT s.seq FROM \(name) AS s JOIN main.user_tool_configs AS t ON t.user_id = s.user_id AND t.tool_id = s.tool_id
        WHERE s.existing_id IS NULL
        """

    func changedSinceSnapshot() throws -> [StagedImport] {
        let changed = try connection.prepare(Self.changedSQL)
        var seqs: [Int64] = []
        while try changed.step() { seqs.append(changed.int64(0)) }
        guard !seqs.isEmpty else { return [] }
        let bySeq = try connection.prepare("SELECT \(Self.columns) FROM \(Self.name) WHERE seq = ?1")
        return try seqs.compactMap { try staged(bySeq, [.integer($0)]) }
    }

    func restage(_ seq: Int64, as action: ImportAction, over current: ToolConfigTable.Row?) throws {
        func text(_ value: String?) -> SQLiteStatement.Value { value.map { .text($0) } ?? .null }
        try connection.prepare(
            """
            UPDATE \(Self.name) SET action = ?2, existing_id = ?3, was_enabled = ?4, was_key = ?5, was_salt = ?6, was_nonce = ?7,
                was_created_at = ?8, was_updated_at = ?9 WHERE seq = ?1
            """
        ).run([
            .integer(seq), .integer(action.rawValue), current.map { .integer($0.id) } ?? .null,
            current.map { .integer($0.enabled ? 1 : 0) } ?? .null, text(current?.secret?.encryptedAPIKey),
            text(current?.secret?.salt), text(current?.secret?.nonce),
            current.map { .integer($0.createdAt) } ?? .null, current.map { .integer($0.updatedAt) } ?? .null
        ])
    }

    func applyStaged() throws {
        // New rows in file order, ids given in that order. OR ROLLBACK: no statement journal, and
        // no pair can conflict any more (changedSinceSnapshot ran under the same lock).
        try connection.execute(
            """
            INSERT OR ROLLBACK INTO main.user_tool_configs (\(ToolConfigTable.writtenColumns))
            SELECT user_id, tool_id, enabled, new_key, new_salt, new_nonce, created_at, updated_at FROM \(Self.name)
            WHERE action = \(ImportAction.insert.rawValue) ORDER BY seq
            """, context: "writing the new rows")
        try connection.execute(
            """
            UPDATE main.user_tool_configs AS t SET enabled = s.enabled,
                encrypted_api_key = CASE s.key_mode WHEN 0 THEN t.encrypted_api_key ELSE s.new_key END,
                salt = CASE s.key_mode WHEN 0 THEN t.salt ELSE s.new_salt END,
                nonce = CASE s.key_mode WHEN 0 THEN t.nonce ELSE s.new_nonce END,
                updated_at = s.updated_at
            FROM \(Self.name) AS s WHERE s.action = \(ImportAction.update.rawValue) AND t.id = s.existing_id
            """, context: "writing the updated rows")
    }
}
