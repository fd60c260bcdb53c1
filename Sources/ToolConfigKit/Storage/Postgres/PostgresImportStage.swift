import Foundation

/// An import's staging area on PostgreSQL: a temporary table of the import's own session, with
/// the columns of SQLite's stage. It is created before the read snapshot (a read-only transaction
/// creates no table, but may write a temporary one); each batch's decisions go, when the batch
/// ends, to one `COPY ... FROM STDIN` that stays open while the next batches are read, and a
/// batch's lookups are one query over the stage and the table. A temporary table is never WAL-logged, and is gone with the session. Only
/// what will be
/// stored is staged: triples, never a plaintext key. The staged pair compares in the "C" collation
/// (bytes): the same equality as the table's deterministic one (checkShape), without the locale's
/// comparisons in every insert into the stage's unique index; a join with the table's columns
/// names the table's collation, so that the table's index serves it.
final class PostgresImportStage: ImportStaging {
    private static let name = "pg_temp.toolcfg_import"
    /// Staged columns, in the order the COPY writes them (seq, the file order, comes first).
    private static let columns = """
        seq, user_id, tool_id, action, enabled, key_mode, new_key, new_salt, new_nonce, created_at, updated_at,
        updated_at_given, line, record, existing_id, was_enabled, was_key, was_salt, was_nonce, was_created_at, was_updated_at
        """
    /// What `staged(_:_:first:)` reads, from a stage aliased `s`.
    private static let stagedColumns = """
        s.seq, s.user_id, s.tool_id, s.action, s.enabled, s.key_mode, s.new_key, s.new_salt, s.new_nonce, s.updated_at,
        s.updated_at_given, s.line, s.record, s.existing_id, s.was_enabled, s.was_key, s.was_salt, s.was_nonce, s.was_created_at,
        s.was_updated_at
        """
    private static let rowColumns = "id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at"

    private let connection: PostgresConnection
    private let file: String
    private var sequence: Int64 = 0
    /// The batch's decisions, encoded for the COPY that ends it.
    private var batch = PostgresCopyText(capacity: 1 << 17)

    init(_ connection: PostgresConnection, file: String) throws {
        self.connection = connection
        self.file = file
        try connection.useLargeTemporaryBuffers()
        try connection.execute(
            """
            DROP TABLE IF EXISTS \(Self.name);
            CREATE TEMP TABLE toolcfg_import (
                seq BIGINT PRIMARY KEY, user_id TEXT COLLATE "C" NOT NULL, tool_id TEXT COLLATE "C" NOT NULL,
                action INTEGER NOT NULL, enabled BOOLEAN NOT NULL, key_mode INTEGER NOT NULL,
                new_key TEXT, new_salt TEXT, new_nonce TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                updated_at_given BOOLEAN NOT NULL, line BIGINT, record BIGINT,
                existing_id BIGINT, was_enabled BOOLEAN, was_key TEXT, was_salt TEXT, was_nonce TEXT,
                was_created_at BIGINT, was_updated_at BIGINT,
                UNIQUE (user_id, tool_id));
            """, context: "creating the import's staging table")
    }

    func drop() {
        try? connection.execute("DROP TABLE IF EXISTS \(Self.name)")
    }

    // MARK: staging (before the write lock, in the read snapshot)

    /// Each pair's staged decision if it has one, else its row in the table: one query per batch.
    private static let lookupSQL = """
        SELECT p.n, \(stagedColumns), t.id, t.enabled, t.encrypted_api_key, t.salt, t.nonce, t.created_at, t.updated_at
        FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p (user_id, tool_id, n)
        LEFT JOIN \(name) AS s ON s.user_id = p.user_id AND s.tool_id = p.tool_id
        LEFT JOIN \(ToolConfigTable.name) AS t ON s.seq IS NULL AND t.user_id = p.user_id AND t.tool_id = p.tool_id
        WHERE s.seq IS NOT NULL OR t.id IS NOT NULL
        """

    func find(userID: String, toolID: String) throws -> FoundRow? {
        try lookUp([(userID, toolID)])[0]
    }

    func findAll(_ items: [ImportItem]) throws -> [FoundRow?] {
        for item in items { try Self.refuseNUL(item) }
        return try lookUp(items.map { ($0.record.userID, $0.record.toolID) })
    }

    private func lookUp(_ pairs: [(userID: String, toolID: String)]) throws -> [FoundRow?] {
        let rows = try connection.prepare(Self.lookupSQL)
            .run([.textArray(pairs.map(\.userID)), .textArray(pairs.map(\.toolID))], context: "looking up the pairs of a batch")
        var found = [FoundRow?](repeating: nil, count: pairs.count)
        for row in 0..<rows.count {
            let index = Int(try rows.int64(row, 0) ?? 0) - 1
            if let staged = try staged(rows, row, first: 1) {
                found[index] = FoundRow(row: staged.result, fromThisImport: true)
            } else if let current = try ToolConfigTable.row(rows, row, first: 21) {
                found[index] = FoundRow(row: current, fromThisImport: false)
            }
        }
        return found
    }

    func stage(_ item: borrowing ImportItem, _ action: ImportAction, intent: KeyIntent, existing: ToolConfigTable.Row?, now: Int64) throws {
        try Self.refuseNUL(item)
        sequence += 1
        Self.encode(sequence, item, action, intent, existing, now: now, into: &batch)
    }

    /// One staged row, in the order of `columns`. Static on an inout buffer: one access to the
    /// stored buffer per row rather than per field.
    private static func encode(
        _ seq: Int64, _ item: borrowing ImportItem, _ action: ImportAction, _ intent: borrowing KeyIntent,
        _ existing: ToolConfigTable.Row?, now: Int64, into row: inout PostgresCopyText
    ) {
        row.append(seq)
        row.append(item.record.userID)
        row.append(item.record.toolID)
        row.append(action.rawValue)
        row.append(item.record.enabled)
        row.append(intent.mode.rawValue)
        row.append(intent.secret?.encryptedAPIKey)
        row.append(intent.secret?.salt)
        row.append(intent.secret?.nonce)
        row.append(item.record.createdAt ?? now)
        row.append(item.record.updatedAt ?? now)
        row.append(item.record.updatedAt != nil)
        row.append(item.location.line.map(Int64.init))
        row.append(item.location.record.map(Int64.init))
        row.append(existing?.id)
        row.append(existing?.enabled)
        row.append(existing?.secret?.encryptedAPIKey)
        row.append(existing?.secret?.salt)
        row.append(existing?.secret?.nonce)
        row.append(existing?.createdAt)
        row.append(existing?.updatedAt)
        row.endRow()
    }

    /// PostgreSQL's text cannot hold U+0000 (SQLite's can): refused at the record, before any
    /// statement would fail without saying where.
    private static func refuseNUL(_ item: borrowing ImportItem) throws {
        func holdsNUL(_ text: String) -> Bool {
            text.utf8.withContiguousStorageIfAvailable { bytes in bytes.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false }
                ?? text.utf8.contains(0)
        }
        if holdsNUL(item.record.userID) { throw nulError(item.location, SnapshotField.userID) }
        if holdsNUL(item.record.toolID) { throw nulError(item.location, SnapshotField.toolID) }
    }

    private static func nulError(_ location: SnapshotLocation, _ field: String) -> SnapshotError {
        SnapshotError(location.with(field: field), "holds the character U+0000 (NUL), which PostgreSQL cannot store in text")
    }

    /// The batch's decisions go to a COPY that stays open while the next batches are read (the
    /// server stores them meanwhile) and ends before the next lookup, or the end of the read.
    func endBatch() throws {
        guard !batch.isEmpty else { return }
        defer { batch.removeAll() }
        try connection.copyInOpen("COPY \(Self.name) (\(Self.columns)) FROM STDIN", context: "staging the import's rows", batch)
    }

    /// The staged decision at columns `first`... of `stagedColumns`, or nil when there is none.
    private func staged(_ rows: PostgresRows, _ row: Int, first: Int) throws -> StagedImport? {
        guard let seq = try rows.int64(row, first) else { return nil }
        return StagedImport(
            seq: seq, userID: rows.text(row, first + 1) ?? "", toolID: rows.text(row, first + 2) ?? "",
            action: ImportAction(rawValue: try rows.int64(row, first + 3) ?? 0) ?? .insert, enabled: try rows.bool(row, first + 4) ?? false,
            intent: KeyIntent(
                mode: KeyIntent.Mode(rawValue: try rows.int64(row, first + 5) ?? 0) ?? .keep,
                secret: ToolConfigTable.secret(rows, row, first: first + 6)),
            updatedAt: try rows.int64(row, first + 9) ?? 0, updatedAtGiven: try rows.bool(row, first + 10) ?? false,
            location: SnapshotLocation(
                file: file, line: try rows.int64(row, first + 11).map(Int.init),
                record: try rows.int64(row, first + 12).map(Int.init)),
            existing: try ToolConfigTable.row(rows, row, first: first + 13))
    }

    // MARK: the write phase (inside the write transaction)

    /// Application writers wait from here to the commit; readers never do.
    /// Pairs whose table row is not what the snapshot showed: a row the import acts on changed
    /// or vanished, or a pair it inserts exists now.
    private static let changedSQL = """
        SELECT \(stagedColumns) FROM \(name) AS s WHERE s.seq IN (
            SELECT s.seq FROM \(name) AS s LEFT JOIN \(ToolConfigTable.name) AS t ON t.id = s.existing_id
            WHERE s.existing_id IS NOT NULL AND (t.id IS NULL OR t.user_id IS DISTINCT FROM s.user_id
                OR t.tool_id IS DISTINCT FROM s.tool_id OR t.enabled IS DISTINCT FROM s.was_enabled
                OR t.encrypted_api_key IS DISTINCT FROM s.was_key OR t.salt IS DISTINCT FROM s.was_salt
                OR t.nonce IS DISTINCT FROM s.was_nonce OR t.created_at IS DISTINCT FROM s.was_created_at
                OR t.updated_at IS DISTINCT FROM s.was_updated_at)
            UNION ALL
            SELECT s.seq FROM \(name) AS s JOIN \(ToolConfigTable.name) AS t
                ON t.user_id = s.user_id COLLATE "default" AND t.tool_id = s.tool_id COLLATE "default"
            WHERE s.existing_id IS NULL)
        ORDER BY s.seq
        """

    func changedSinceSnapshot() throws -> [StagedImport] {
        let rows = try connection.query(Self.changedSQL, context: "finding the pairs written since the snapshot")
        return try (0..<rows.count).compactMap { try staged(rows, $0, first: 0) }
    }

    func currentRow(userID: String, toolID: String) throws -> ToolConfigTable.Row? {
        let rows = try connection.prepare("SELECT \(Self.rowColumns) FROM \(ToolConfigTable.name) WHERE user_id = $1 AND tool_id = $2")
            .run([.text(userID), .text(toolID)], context: "reading a row written since the snapshot")
        return rows.count == 0 ? nil : try ToolConfigTable.row(rows, 0, first: 0)
    }

    func restage(_ seq: Int64, as action: ImportAction, over current: ToolConfigTable.Row?) throws {
        func text(_ value: String?) -> PostgresValue { value.map { .text($0) } ?? .null }
        try connection.query(
            """
            UPDATE \(Self.name) SET action = $2, existing_id = $3, was_enabled = $4, was_key = $5, was_salt = $6, was_nonce = $7,
                was_created_at = $8, was_updated_at = $9 WHERE seq = $1
            """,
            [
                .integer(seq), .integer(action.rawValue), current.map { .integer($0.id) } ?? .null,
                current.map { .boolean($0.enabled) } ?? .null,
                text(current?.secret?.encryptedAPIKey), text(current?.secret?.salt), text(current?.secret?.nonce),
                current.map { .integer($0.createdAt) } ?? .null, current.map { .integer($0.updatedAt) } ?? .null
            ], context: "deciding a pair again")
    }

    /// New rows with one INSERT ... SELECT in file order (ids given in that order; no id is ever
    /// given explicitly, so the identity's sequence stays right), updates with one UPDATE ...
    /// FROM by id, which leaves id and created_at as they are. Two statements rather than one
    /// INSERT ... ON CONFLICT DO UPDATE: every pair's fate was decided (and decided again under
    /// the lock), so new rows need no speculative insertion, and the counts are those decisions.
    func applyStaged() throws {
        // The rows in seq order through the stage's primary key (the heap was filled in that
        // order) rather than a sort of every staged row through temporary files.
        try connection.execute(
            """
            SET LOCAL enable_sort = off;
            INSERT INTO \(ToolConfigTable.name) (\(ToolConfigTable.writtenColumns))
            SELECT user_id, tool_id, enabled, new_key, new_salt, new_nonce, created_at, updated_at FROM \(Self.name)
            WHERE action = \(ImportAction.insert.rawValue) ORDER BY seq
            """, context: "writing the new rows")
        try connection.execute(
            """
            UPDATE \(ToolConfigTable.name) AS t SET enabled = s.enabled,
                encrypted_api_key = CASE s.key_mode WHEN 0 THEN t.encrypted_api_key ELSE s.new_key END,
                salt = CASE s.key_mode WHEN 0 THEN t.salt ELSE s.new_salt END,
                nonce = CASE s.key_mode WHEN 0 THEN t.nonce ELSE s.new_nonce END,
                updated_at = s.updated_at
            FROM \(Self.name) AS s WHERE s.action = \(ImportAction.update.rawValue) AND t.id = s.existing_id
            """, context: "writing the updated rows")
    }
}
