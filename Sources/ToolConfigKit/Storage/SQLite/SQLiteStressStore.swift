import Foundation

/// The stress workload on SQLite: one writer at a time holds the database's write lock, taken up
/// front by BEGIN IMMEDIATE, so the read-modify-write inside it sees the last committed write; the
/// log's AUTOINCREMENT sequence is the commit order.
final class SQLiteStressStore: StressStore {
    let connection: SQLiteConnection

    /// No check of the table's shape here: `SQLiteConnection.stressStore()` makes it.
    init(_ connection: SQLiteConnection) {
        self.connection = connection
    }

    var database: any Database { connection }

    /// `seq` is the commit order: write transactions are serialised by SQLite's write lock, and
    /// AUTOINCREMENT hands out max + 1 inside the transaction that holds it.
    static let createLogSQL = """
        CREATE TABLE \(StressLog.table) (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            writer INTEGER NOT NULL,
            counter INTEGER NOT NULL,          -- the writer's operation number
            user_id TEXT NOT NULL,
            tool_id TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
            version INTEGER,                   -- upsert: the version written (1 for a new row)
            row_id INTEGER,                    -- upsert: the row's id after it; delete: the id removed, NULL if none
            token TEXT,                        -- upsert: the value written, 'w<writer>.<counter>'
            UNIQUE (writer, counter)
        )
        """

    static let insertLogSQL = """
        INSERT INTO \(StressLog.table) (writer, counter, user_id, tool_id, op, version, row_id, token)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
        """

    func foreignRowCount() throws -> Int {
        Int(try connection.queryInt64(StressSQL.foreignRows) ?? 0)
    }

    func reset() throws {
        try connection.writeTransaction {
            try connection.execute(StressSQL.deleteStressRows)
            try connection.execute("DROP TABLE IF EXISTS \(StressLog.table)")
            try connection.execute(Self.createLogSQL)
        }
    }

    func writer(_ mode: StressWriteMode) throws -> any StressWriterConnection {
        try SQLiteStressWriter(connection, mode: mode)
    }

    func duplicatePairs() throws -> Int {
        Int(
            try connection.queryInt64(
                "SELECT count(*) FROM (SELECT 1 FROM user_tool_configs GROUP BY user_id, tool_id HAVING count(*) > 1)") ?? 0)
    }

    func forEachLogEntry(_ body: (StressLogEntry) throws -> Void) throws {
        let log = try connection.prepare(StressSQL.selectLog)
        while try log.step() {
            try body(
                StressLogEntry(
                    seq: log.int64(0),
                    write: StressLoggedWrite(
                        writer: Int(log.int64(1)), counter: Int(log.int64(2)),
                        pair: StressPair(user: log.text(3) ?? "", tool: log.text(4) ?? ""),
                        operation: log.text(5) == "delete" ? .delete : .upsert, version: log.isNull(6) ? nil : log.int64(6),
                        rowID: log.isNull(7) ? nil : log.int64(7), token: log.text(8))))
        }
    }

    func forEachStressRow(_ body: (StressRow) throws -> Void) throws {
        let select = try connection.prepare(StressSQL.selectRows)
        while try select.step() {
            try body(
                StressRow(
                    id: select.int64(0), pair: StressPair(user: select.text(1) ?? "", tool: select.text(2) ?? ""),
                    token: select.text(3), version: select.int64(4)))
        }
    }

    /// Lines of `PRAGMA integrity_check` other than "ok".
    func checkIntegrity() -> StressIntegrity {
        var problems: [String] = []
        do {
            let integrity = try connection.prepare("PRAGMA integrity_check")
            while try integrity.step() {
                let line = integrity.text(0) ?? ""
                if line != "ok" { problems.append("integrity_check: \(line)") }
            }
        } catch {
            problems.append("integrity_check could not finish: \(error.message)")
        }
        return StressIntegrity(checked: "PRAGMA integrity_check", problems: problems)
    }
}

/// One SQLite stress writer: its own connection and prepared statements.
final class SQLiteStressWriter: StressWriterConnection {
    private let connection: SQLiteConnection
    private let mode: StressWriteMode
    private let version: SQLiteStatement
    private let lookup: SQLiteStatement
    private let upsert: SQLiteStatement
    private let delete: SQLiteStatement
    private let log: SQLiteStatement

    init(_ connection: SQLiteConnection, mode: StressWriteMode) throws(SQLiteError) {
        self.connection = connection
        self.mode = mode
        version = try connection.prepare("SELECT id, updated_at FROM user_tool_configs WHERE user_id = ?1 AND tool_id = ?2")
        lookup = try connection.prepare(ToolConfigTable.lookupSQL)
        upsert = try connection.prepare(mode == .wrongReplace ? Self.replaceSQL : ToolConfigTable.upsertSQL)
        delete = try connection.prepare("DELETE FROM user_tool_configs WHERE user_id = ?1 AND tool_id = ?2")
        log = try connection.prepare(SQLiteStressStore.insertLogSQL)
    }

    /// The wrong upsert of `wrong-replace`.
    static let replaceSQL = """
        INSERT OR REPLACE INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
        """

    func read(_ pair: StressPair) throws {
        defer { lookup.reset() }
        try lookup.bind([.text(pair.user), .text(pair.tool)])
        _ = try lookup.step()
    }

    /// BEGIN IMMEDIATE takes the write lock up front (`wrong-deferred`: a deferred BEGIN, which
    /// asks for it only at the first write); the pair is read after it (`wrong-split`: an upsert
    /// reads before, outside the transaction).
    func write(
        _ operation: StressOperation, _ pair: StressPair, lockTaken: (UInt64) -> Void,
        _ body: (StressVersion?) throws -> Void
    ) throws {
        let readBefore = mode == .wrongSplit && operation == .upsert
        var current = readBefore ? try currentVersion(pair) : nil
        let started = Monotonic.nanoseconds()
        try connection.transaction(mode == .wrongDeferred ? .deferredWrite : .write, lockHeld: { _ in }) {
            lockTaken(Monotonic.nanoseconds() - started)
            if !readBefore { current = try currentVersion(pair) }
            try body(current)
        }
    }

    func upsert(_ pair: StressPair, enabled: Bool, token: String, createdAt: Int64, version: Int64) throws -> Int64? {
        try upsert.run([
            .text(pair.user), .text(pair.tool), .integer(enabled ? 1 : 0), .text(token), .null, .null,
            .integer(createdAt), .integer(version)
        ])
        return try currentVersion(pair)?.id
    }

    func delete(_ pair: StressPair) throws {
        try delete.run([.text(pair.user), .text(pair.tool)])
    }

    func log(_ write: StressLoggedWrite) throws {
        try log.run([
            .integer(Int64(write.writer)), .integer(Int64(write.counter)), .text(write.pair.user), .text(write.pair.tool),
            .text(write.operation.rawValue), write.version.map { .integer($0) } ?? .null,
            write.rowID.map { .integer($0) } ?? .null, write.token.map { .text($0) } ?? .null
        ])
    }

    /// The pair's row id and version (updated_at), or nil when it has no row.
    private func currentVersion(_ pair: StressPair) throws -> StressVersion? {
        defer { version.reset() }
        try version.bind([.text(pair.user), .text(pair.tool)])
        return try version.step() ? StressVersion(id: version.int64(0), version: version.int64(1)) : nil
    }

    func describe(_ error: any Error, waited: UInt64) -> (busy: Bool, message: String) {
        guard let busy = error as? SQLiteError, busy.isBusy else { return (false, "\(error)") }
        // The wait tells a timeout from SQLite's immediate refusal when a transaction that has read
        // tries to write while another writer holds the lock or has committed since the read
        // (SQLITE_BUSY_SNAPSHOT).
        let name = busy.extendedCode == 517 ? "SQLITE_BUSY_SNAPSHOT" : "SQLITE_BUSY"
        let timeout = connection.options.busyTimeout.components
        let timeoutMilliseconds = timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000
        return (
            true,
            "\(busy.context ?? "database"): \(busy.message) (\(name) after \(String(format: "%.3f", Double(waited) / 1e6)) ms, "
                + "busy timeout \(timeoutMilliseconds) ms)"
        )
    }
}
