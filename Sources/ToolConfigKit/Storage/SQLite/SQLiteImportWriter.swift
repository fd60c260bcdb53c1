/// Writes an import's rows straight into the table, inside the write transaction: for records
/// whose key costs nothing to check (a stored triple and no master key, or no key), where staging
/// them first would only write every row twice.
final class SQLiteImportWriter: ImportTarget {
    private let lookup: SQLiteStatement
    private let upsert: SQLiteStatement
    private let insertMany: SQLiteStatement
    private let insertOne: SQLiteStatement
    static let rowsPerStatement = 64
    /// Rows inserted by this import have ids above this; AUTOINCREMENT never reuses one.
    private let maxIDAtStart: Int64
    /// Rows that existed before the import and that a record has already updated or confirmed.
    private var touchedExisting = Set<Int64>()

    init(connection: SQLiteConnection) throws {
        lookup = try connection.prepare(ToolConfigTable.lookupSQL)
        upsert = try connection.prepare(ToolConfigTable.upsertSQL)
        insertMany = try connection.prepare(ToolConfigTable.insertNewSQL(rows: Self.rowsPerStatement))
        insertOne = try connection.prepare(ToolConfigTable.insertNewSQL(rows: 1))
        maxIDAtStart = try connection.queryInt64("SELECT max(id) FROM user_tool_configs") ?? 0
    }

    func find(userID: String, toolID: String) throws -> FoundRow? {
        defer { lookup.reset() }
        try lookup.bind(userID, at: 1)
        try lookup.bind(toolID, at: 2)
        guard try lookup.step() else { return nil }
        let row = ToolConfigTable.row(lookup)
        return FoundRow(row: row, fromThisImport: row.id > maxIDAtStart || touchedExisting.contains(row.id))
    }

    /// Writes new rows whose keys go in as they are, `rowsPerStatement` rows per statement (the
    /// rest one by one, alike): one statement per row spent about 10 % more of SQLite's time, in
    /// opening cursors and seeking again to where the last row went (measured with 1M rows).
    /// A failure has rolled back the whole transaction (OR ROLLBACK): the import must end.
    func insertNew(_ items: ArraySlice<ImportItem>, now: Int64) throws {
        var start = items.startIndex
        while start < items.endIndex {
            let count = items.endIndex - start >= Self.rowsPerStatement ? Self.rowsPerStatement : 1
            let statement = count == 1 ? insertOne : insertMany
            defer { statement.reset(keepingBindings: true) }
            for offset in 0..<count {
                let record = items[start + offset].record
                try bind(record, secret: record.storedSecret, now: now, to: statement, first: Int32(offset * 8 + 1))
            }
            _ = try statement.step()
            start += count
        }
    }

    func insert(_ item: ImportItem, intent: KeyIntent, now: Int64) throws {
        try write(item.record, secret: intent.secret, now: now)
    }

    func update(_ item: ImportItem, intent: KeyIntent, over row: ToolConfigTable.Row, now: Int64) throws {
        touchedExisting.insert(row.id)
        try write(item.record, secret: intent.secret ?? row.secret, now: now)
    }

    func keep(_ item: ImportItem, intent: KeyIntent, row: ToolConfigTable.Row, as action: ImportAction, now: Int64) throws {
        touchedExisting.insert(row.id)
    }

    private func bind(_ record: SnapshotRecord, secret: StoredSecret?, now: Int64, to statement: SQLiteStatement, first: Int32) throws {
        try statement.bind(record.userID, at: first)
        try statement.bind(record.toolID, at: first + 1)
        try statement.bind(record.enabled ? 1 : 0, at: first + 2)
        try statement.bind(secret?.encryptedAPIKey, at: first + 3)
        try statement.bind(secret?.salt, at: first + 4)
        try statement.bind(secret?.nonce, at: first + 5)
        try statement.bind(record.createdAt ?? now, at: first + 6)
        try statement.bind(record.updatedAt ?? now, at: first + 7)
    }

    /// Inserts or updates by (user_id, tool_id). No RETURNING clause: measured with SQLite 3.40,
    /// it made the upsert issue ~14 pwrite calls per row (2.9M for 200k rows, against 56k
    /// without it), 4x the time of the whole import.
    private func write(_ record: SnapshotRecord, secret: StoredSecret?, now: Int64) throws {
        defer { upsert.reset(keepingBindings: true) }
        try bind(record, secret: secret, now: now, to: upsert, first: 1)
        _ = try upsert.step()
    }
}
