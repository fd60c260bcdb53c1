import Foundation

/// The stress workload on PostgreSQL. Unlike SQLite, writers run truly in parallel: PostgreSQL
/// locks rows, not the database, so each write transaction (READ COMMITTED) locks its pair itself
/// before reading it, and writers of different pairs never wait for each other.
///
/// READ COMMITTED with `SELECT ... FOR UPDATE` rather than SERIALIZABLE with retries: with a few
/// pairs shared by many writers almost every write collides, and SERIALIZABLE would abort most of
/// them (40001) to be run again, where a row lock makes them queue once, bounded by lock_timeout
/// (`--busy-timeout`), as BEGIN IMMEDIATE and the busy timeout do on SQLite.
final class PostgresStressStore: StressStore {
    let connection: PostgresConnection

    /// No check of the table's shape here: `PostgresConnection.stressStore()` makes it.
    init(_ connection: PostgresConnection) {
        self.connection = connection
    }

    var database: any Database { connection }

    static let createLogSQL = """
        CREATE TABLE \(StressLog.table) (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the commit order: see insertLogSQL
            writer INTEGER NOT NULL,
            counter INTEGER NOT NULL,          -- the writer's operation number
            user_id TEXT NOT NULL,
            tool_id TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
            version BIGINT,                    -- upsert: the version written (1 for a new row)
            row_id BIGINT,                     -- upsert: the row's id after it; delete: the id removed, NULL if none
            token TEXT,                        -- upsert: the value written, 'w<writer>.<counter>'
            UNIQUE (writer, counter)
        )
        """

    /// The advisory lock every write transaction takes to log itself (a fixed key of its own).
    static let commitOrderLock = "hashtextextended('toolcfg stress log: commit order', 0)"

    /// `seq` must be the commit order, and here transactions commit in parallel: a number taken
    /// from a sequence before the commit is not its place among the commits (a transaction that
    /// took a later number can commit first). So the log entry, the last statement before COMMIT,
    /// first takes a transaction-level advisory lock and only then its number: the lock is held
    /// until the commit has ended, so the next transaction gets its number only after this one
    /// has committed. Whoever holds number n sees every number below it committed (a number
    /// whose transaction rolled back is skipped). Neither the lock nor the sequence depends on a
    /// snapshot, so a REPEATABLE READ writer logs the same way. It costs a short queue at the end
    /// of each write (this statement and the commit), measured in docs/benchmarks.md.
    static let insertLogSQL = """
        WITH commit_order AS MATERIALIZED (SELECT pg_advisory_xact_lock(\(commitOrderLock)))
        INSERT INTO \(StressLog.table) (writer, counter, user_id, tool_id, op, version, row_id, token)
        SELECT $1::integer, $2::integer, $3::text, $4::text, $5::text, $6::bigint, $7::bigint, $8::text FROM commit_order
        """

    func foreignRowCount() throws -> Int {
        Int(try connection.queryInt64(StressSQL.foreignRows, context: "counting rows not written by stress") ?? 0)
    }

    func reset() throws {
        try connection.transaction(isolation: .readCommitted) {
            try connection.execute(StressSQL.deleteStressRows, context: "clearing the stress rows")
            try connection.execute("DROP TABLE IF EXISTS \(StressLog.table)", context: "dropping the stress log")
            try connection.execute(Self.createLogSQL, context: "creating the stress log")
        }
    }

    func writer(_ mode: StressWriteMode) throws -> any StressWriterConnection {
        try PostgresStressWriter(connection, mode: mode)
    }

    /// Counted over the table itself: with index scans off, a unique index that lost an entry
    /// cannot hide a duplicate.
    func duplicatePairs() throws -> Int {
        try connection.execute(
            "SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_bitmapscan = off",
            context: "reading the table without its indexes")
        return Int(
            try connection.queryInt64(
                "SELECT count(*) FROM (SELECT 1 FROM user_tool_configs GROUP BY user_id, tool_id HAVING count(*) > 1) AS duplicates",
                context: "counting duplicate pairs") ?? 0)
    }

    /// Streamed (COPY): the log holds a row per committed write.
    func forEachLogEntry(_ body: (StressLogEntry) throws -> Void) throws {
        try connection.copyOut("COPY (\(StressSQL.selectLog)) TO STDOUT", context: "reading the stress log") { row in
            try body(
                StressLogEntry(
                    seq: try row.int64(0) ?? 0,
                    write: StressLoggedWrite(
                        writer: Int(try row.int64(1) ?? 0), counter: Int(try row.int64(2) ?? 0),
                        pair: StressPair(user: row.text(3) ?? "", tool: row.text(4) ?? ""),
                        operation: row.text(5) == "delete" ? .delete : .upsert, version: try row.int64(6), rowID: try row.int64(7),
                        token: row.text(8))))
        }
    }

    func forEachStressRow(_ body: (StressRow) throws -> Void) throws {
        let rows = try connection.query(StressSQL.selectRows, context: "reading the stress rows")
        for row in 0..<rows.count {
            try body(
                StressRow(
                    id: try rows.int64(row, 0) ?? 0, pair: StressPair(user: rows.text(row, 1) ?? "", tool: rows.text(row, 2) ?? ""),
                    token: rows.text(row, 3), version: try rows.int64(row, 4) ?? 0))
        }
    }

    /// The tables the integrity check reads.
    static let checkedTables = [ToolConfigTable.name, StressLog.table]

    /// amcheck's `bt_index_check` with `heapallindexed` on every B-tree index of the table and the
    /// log (each index's structure, and every row of its table found in it), and that
    /// the UNIQUE(user_id, tool_id) index the upsert relies on is still there and valid. (That
    /// no pair has two rows is `duplicatePairs`, read over the table itself.) amcheck is used when
    /// the database has it, else created for the check inside a transaction that is rolled back,
    /// leaving nothing behind; when neither works (not installed on the server, or the role may
    /// not create it) the report says so and the rest is still checked.
    func checkIntegrity() -> StressIntegrity {
        var problems: [String] = []
        var amcheck = "amcheck"
        do {
            try connection.transaction(isolation: .readCommitted, rollingBack: true) {
                if try Self.uniquePairIndexes(connection) == 0 {
                    problems.append("\(ToolConfigTable.name) has no valid UNIQUE(user_id, tool_id) index any more")
                }
                if let unavailable = try amcheckUnavailable() {
                    amcheck = "amcheck not available (\(unavailable))"
                    return
                }
                let tables = Self.checkedTables.map { "to_regclass('\($0)')" }.joined(separator: ", ")
                let indexes = try connection.query(
                    """
                    SELECT c.relname, c.oid::bigint FROM pg_index i
                    JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
                    WHERE i.indrelid IN (\(tables)) AND am.amname = 'btree' ORDER BY c.relname
                    """, context: "listing the indexes to check")
                for index in 0..<indexes.count {
                    let name = indexes.text(index, 0) ?? ""
                    do {
                        try connection.inSavepoint {
                            try connection.query(
                                "SELECT bt_index_check($1::bigint::oid, true)", [.integer(try indexes.int64(index, 1) ?? 0)],
                                context: "checking index \(name)")
                        }
                    } catch let error as PostgresError {
                        problems.append("amcheck: index \(name): \(error.message)\(error.detail.map { "; \($0)" } ?? "")")
                    }
                }
                amcheck = "amcheck bt_index_check (heapallindexed) of \(indexes.count) indexes"
            }
        } catch {
            problems.append("the integrity check could not finish: \(error)")
        }
        return StressIntegrity(
            checked:
                "\(amcheck) on \(Self.checkedTables.joined(separator: ", ")); the UNIQUE(user_id, tool_id) index valid; "
                + "duplicate pairs counted over the table, not its index",
            problems: problems)
    }

    /// nil when amcheck's functions can be called in this transaction (installed, or created now);
    /// else why not.
    private func amcheckUnavailable() throws -> String? {
        if try connection.queryInt64("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'") ?? 0 > 0 { return nil }
        do {
            try connection.inSavepoint { try connection.execute("CREATE EXTENSION amcheck", context: "creating amcheck for the check") }
            return nil
        } catch let error as PostgresError {
            return error.message
        }
    }

    // MARK: the table's shape

    /// Valid unique indexes over exactly (user_id, tool_id), the whole table, with deterministic
    /// collations (equal means the same bytes, as the upsert's ON CONFLICT needs).
    static func uniquePairIndexes(_ connection: PostgresConnection) throws -> Int64 {
        try connection.queryInt64(
            """
            SELECT count(*) FROM pg_index i
            WHERE i.indrelid = to_regclass('\(ToolConfigTable.name)') AND i.indisunique AND i.indisvalid
              AND i.indpred IS NULL AND i.indexprs IS NULL
              AND i.indnatts = 2  -- indkey is an int2vector, indexed from 0
              AND i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = i.indrelid AND attname = 'user_id')
              AND i.indkey[1] = (SELECT attnum FROM pg_attribute WHERE attrelid = i.indrelid AND attname = 'tool_id')
              AND NOT EXISTS (SELECT 1 FROM unnest(i.indcollation::oid[]) AS c(oid) JOIN pg_collation pc ON pc.oid = c.oid
                              WHERE NOT pc.collisdeterministic)
            """, context: "looking for UNIQUE(user_id, tool_id)") ?? 0
    }

    /// The table of migration 0007 (PostgreSQL's), or a clear refusal.
    static func checkShape(_ connection: PostgresConnection) throws {
        let name = ToolConfigTable.name
        let catalog = PostgresMigrationStore(connection)
        guard try catalog.tableExists(name) else {
            throw TableShapeError(path: connection.location, message: "has no \(name) table; run `toolcfg migrate up` first")
        }
        let present = try catalog.columnNames(of: name)
        let missing = ToolConfigTable.columns.filter { !present.contains($0) }
        if !missing.isEmpty {
            throw TableShapeError(
                path: connection.location,
                message: "\(name) lacks the column(s) \(missing.joined(separator: ", ")); it is not the table of migration 0007")
        }
        if try uniquePairIndexes(connection) == 0 {
            throw TableShapeError(
                path: connection.location,
                message:
                    "\(name) has no UNIQUE(user_id, tool_id) over the whole table with a deterministic collation; "
                    + "upserts would duplicate or merge rows"
            )
        }
    }
}

/// One PostgreSQL stress writer: its own session and prepared statements.
final class PostgresStressWriter: StressWriterConnection {
    private let connection: PostgresConnection
    private let mode: StressWriteMode
    private let lookupStatement: PostgresStatement
    private let versionStatement: PostgresStatement
    private let lockStatement: PostgresStatement
    private let claimStatement: PostgresStatement
    private let upsertStatement: PostgresStatement
    private let deleteStatement: PostgresStatement
    private let logStatement: PostgresStatement

    /// How many times a writer tries to lock a pair that other writers keep inserting and
    /// deleting under it before it gives up (each try waits for the other writer's commit).
    static let lockAttempts = 100

    init(_ connection: PostgresConnection, mode: StressWriteMode) throws(PostgresError) {
        self.connection = connection
        self.mode = mode
        let pair = "user_id = $1 AND tool_id = $2"
        lookupStatement = try connection.prepare(
            "SELECT id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at FROM user_tool_configs WHERE \(pair)")
        versionStatement = try connection.prepare("SELECT id, updated_at FROM user_tool_configs WHERE \(pair)")
        lockStatement = try connection.prepare("SELECT id, updated_at FROM user_tool_configs WHERE \(pair) FOR UPDATE")
        claimStatement = try connection.prepare(
            """
            INSERT INTO user_tool_configs (user_id, tool_id, created_at, updated_at) VALUES ($1, $2, $3, 0)
            ON CONFLICT (user_id, tool_id) DO NOTHING RETURNING id
            """)
        // wrong-replace: PostgreSQL has no INSERT OR REPLACE; its equivalent mistake is a delete
        // and an insert, which gives the row a new id.
        upsertStatement = try connection.prepare(mode == .wrongReplace ? Self.insertSQL : Self.upsertSQL)
        deleteStatement = try connection.prepare("DELETE FROM user_tool_configs WHERE \(pair)")
        logStatement = try connection.prepare(PostgresStressStore.insertLogSQL)
    }

    static let insertSQL = """
        INSERT INTO user_tool_configs (\(ToolConfigTable.writtenColumns))
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id
        """

    /// The table's upsert: a conflict on (user_id, tool_id) updates the row in place.
    static let upsertSQL = """
        INSERT INTO user_tool_configs (\(ToolConfigTable.writtenColumns))
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (user_id, tool_id) DO UPDATE SET
            enabled = excluded.enabled,
            encrypted_api_key = excluded.encrypted_api_key,
            salt = excluded.salt,
            nonce = excluded.nonce,
            updated_at = excluded.updated_at
        RETURNING id
        """

    func read(_ pair: StressPair) throws {
        try lookupStatement.run([.text(pair.user), .text(pair.tool)], context: "reading a pair")
    }

    /// The correct write (and `wrong-replace`'s) locks the pair first (`lockPair`), in READ
    /// COMMITTED. `wrong-split`: an upsert reads before the transaction, without a lock, so two
    /// writers can build on the same version and the later commit overwrites the other's (lost
    /// updates). `wrong-deferred`, mapped to PostgreSQL's own form of that mistake: a REPEATABLE
    /// READ snapshot read without a lock, then the write; when another writer committed to the
    /// pair's row since the snapshot, the write fails at once with 40001 (could not serialize), as
    /// SQLite's lock upgrade fails with SQLITE_BUSY, and no lock timeout helps. Where the row was
    /// deleted since, nothing stops the write: it inserts the row again with a version built on
    /// the deleted one (a lost update, which the checker reports too).
    func write(
        _ operation: StressOperation, _ pair: StressPair, lockTaken: (UInt64) -> Void,
        _ body: (StressVersion?) throws -> Void
    ) throws {
        let readBefore = mode == .wrongSplit && operation == .upsert
        var current = readBefore ? try fetch(versionStatement, pair) : nil
        try connection.transaction(isolation: mode == .wrongDeferred ? .repeatableRead : .readCommitted) {
            let started = Monotonic.nanoseconds()
            if mode == .wrongDeferred {
                current = try fetch(versionStatement, pair)
            } else if !readBefore {
                current = try lockPair(pair)
            }
            lockTaken(Monotonic.nanoseconds() - started)
            try body(current)
        }
    }

    /// Locks the pair until the commit and returns its row, nil when it has none. A row is locked
    /// with `SELECT ... FOR UPDATE` (waiting for its holder's commit; READ COMMITTED then reads
    /// the row as that commit left it). A pair with no row has nothing to lock, and two writers
    /// that both saw it absent would both write version 1: so it is claimed by inserting its row
    /// (ON CONFLICT DO NOTHING), which holds the key as the row lock would: another writer's
    /// insert or claim of the pair waits for this commit. When another writer's row got there
    /// first (the insert did nothing, after waiting for its commit), that row is locked instead.
    /// The claimed row is this transaction's own; the write then updates or deletes it.
    private func lockPair(_ pair: StressPair) throws -> StressVersion? {
        for _ in 0..<Self.lockAttempts {
            if let row = try fetch(lockStatement, pair) { return row }
            let claimed = try claimStatement.run(
                [.text(pair.user), .text(pair.tool), .integer(Int64(Date().timeIntervalSince1970))],
                context: "claiming a pair without a row")
            if claimed.count > 0 { return nil }
        }
        throw PostgresError(
            kind: .client,
            message: "could not lock pair \(pair.label) in \(Self.lockAttempts) tries: other writers kept inserting and deleting it",
            database: connection.location, context: "locking a stress pair")
    }

    private func fetch(_ statement: PostgresStatement, _ pair: StressPair) throws -> StressVersion? {
        let rows = try statement.run(
            [.text(pair.user), .text(pair.tool)], context: statement === lockStatement ? "locking a pair" : "reading a pair")
        guard rows.count > 0 else { return nil }
        return StressVersion(id: try rows.int64(0, 0) ?? 0, version: try rows.int64(0, 1) ?? 0)
    }

    func upsert(_ pair: StressPair, enabled: Bool, token: String, createdAt: Int64, version: Int64) throws -> Int64? {
        if mode == .wrongReplace { try delete(pair) }
        let rows = try upsertStatement.run(
            [
                .text(pair.user), .text(pair.tool), .boolean(enabled), .text(token), .null, .null,
                .integer(createdAt), .integer(version)
            ], context: "upserting")
        return rows.count > 0 ? try rows.int64(0, 0) : nil
    }

    func delete(_ pair: StressPair) throws {
        try deleteStatement.run([.text(pair.user), .text(pair.tool)], context: "deleting")
    }

    func log(_ write: StressLoggedWrite) throws {
        try logStatement.run(
            [
                .integer(Int64(write.writer)), .integer(Int64(write.counter)), .text(write.pair.user), .text(write.pair.tool),
                .text(write.operation.rawValue), write.version.map { .integer($0) } ?? .null,
                write.rowID.map { .integer($0) } ?? .null, write.token.map { .text($0) } ?? .null
            ], context: "logging the write")
    }

    /// PostgreSQL's busy: a lock not obtained within lock_timeout (55P03), a transaction it
    /// refused to serialise (40001) or a deadlock (40P01).
    static let busyStates: Set<String> = ["55P03", "40001", "40P01"]

    func describe(_ error: any Error, waited: UInt64) -> (busy: Bool, message: String) {
        guard let busy = error as? PostgresError, let state = busy.sqlState, Self.busyStates.contains(state) else {
            return (false, "\(error)")
        }
        let timeout =
            connection.options.lockTimeout.map {
                "lock timeout \($0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000) ms"
            } ?? "no lock timeout"
        return (
            true,
            "\(busy.context ?? "database"): \(busy.message) (SQLSTATE \(state) after \(String(format: "%.3f", Double(waited) / 1e6)) ms, "
                + "\(timeout))"
        )
    }
}
