/// A rotation's staging area on PostgreSQL: a temporary table of the rotation's own session, keyed
/// by the table's one-column primary key. It is created, with its key, before the read snapshot
/// (a read-only transaction may write a temporary table but not create one); the snapshot's rows
/// go to it with `COPY ... FROM STDIN`, 64 KiB of rows at a time (each COPY ends when the next
/// page is read). No ANALYZE: the merge join by key is planned without statistics, and loading
/// in key order costs what building the key afterwards did (1M rows: 0.73 s against 0.76 s with
/// the index and statistics built after). A temporary table is never WAL-logged and is gone with
/// the session, so a killed rotation leaves nothing behind. Rows staged in the write phase (the
/// few the application changed meanwhile) are upserted.
final class PostgresRotationStage: RotationStaging {
    /// How the stage names the table's rows: its primary key column and type, and how a row's
    /// reference carries the key.
    struct Key {
        /// The quoted column.
        var column: String
        var type: String
        /// An integer key travels in `RowReference.rowID`, any other as text in `RowReference.id`.
        var isInteger: Bool
        /// The row's `SecretRow.id`, from the table aliased `t`.
        var idExpression: String

        /// `expression` (the key of a row) as a reference carries it: a text key as the store's
        /// `SecretRow.id` has it (a char(n) key without its padding).
        func selected(_ expression: String) -> String {
            isInteger ? expression : "CAST(\(expression) AS TEXT)"
        }

        func value(_ row: RowReference) -> PostgresValue {
            isInteger ? .integer(row.rowID) : .text(row.id ?? "")
        }

        func reference(_ rows: PostgresRows, _ row: Int, _ column: Int) throws -> RowReference {
            isInteger ? RowReference(rowID: try rows.int64(row, column) ?? 0, id: nil) : RowReference(rowID: 0, id: rows.text(row, column))
        }
    }

    let group: SecretColumnGroup
    private let connection: PostgresConnection
    private let key: Key
    private let name: String
    /// Rows staged but not yet sent, and whether the snapshot's rows have all been sent.
    private var pending = PostgresCopyText(capacity: PostgresCopyWriter.flushSize + 4096)
    private var finished = false

    init(_ connection: PostgresConnection, group: SecretColumnGroup, key: Key, index: Int) throws {
        self.connection = connection
        self.group = group
        self.key = key
        name = "pg_temp.toolcfg_rotation_\(index)"
        try connection.useLargeTemporaryBuffers()
        try connection.execute(
            """
            DROP TABLE IF EXISTS \(name);
            CREATE TEMP TABLE toolcfg_rotation_\(index) (
                k \(key.type) PRIMARY KEY, rotate BOOLEAN NOT NULL,
                old_key TEXT, old_salt TEXT, old_nonce TEXT,
                new_key TEXT NOT NULL, new_salt TEXT NOT NULL, new_nonce TEXT NOT NULL);
            """, context: "creating the rotation's staging table for \(group.label)")
    }

    func stageRotation(_ row: RowReference, old: StoredSecret, new: StoredSecret) throws {
        try stage(row, rotate: true, old: old, new: new)
    }

    func stageKept(_ row: RowReference, _ current: StoredSecret) throws {
        try stage(row, rotate: false, old: nil, new: current)
    }

    private func stage(_ row: RowReference, rotate: Bool, old: StoredSecret?, new: StoredSecret) throws {
        guard !finished else {
            try connection.prepare(
                """
                INSERT INTO \(name) VALUES ($1::\(key.type), $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (k) DO UPDATE SET
                    rotate = excluded.rotate, old_key = excluded.old_key, old_salt = excluded.old_salt, old_nonce = excluded.old_nonce,
                    new_key = excluded.new_key, new_salt = excluded.new_salt, new_nonce = excluded.new_nonce
                """
            ).run(
                [
                    key.value(row), .boolean(rotate), old.map { .text($0.encryptedAPIKey) } ?? .null, old.map { .text($0.salt) } ?? .null,
                    old.map { .text($0.nonce) } ?? .null, .text(new.encryptedAPIKey), .text(new.salt), .text(new.nonce)
                ],
                context: "staging a rotated secret of \(group.label)")
            return
        }
        if key.isInteger { pending.append(row.rowID) } else { pending.append(row.id) }
        pending.append(rotate)
        pending.append(old?.encryptedAPIKey)
        pending.append(old?.salt)
        pending.append(old?.nonce)
        pending.append(new.encryptedAPIKey)
        pending.append(new.salt)
        pending.append(new.nonce)
        pending.endRow()
        if pending.bytes.count >= PostgresCopyWriter.flushSize { try send() }
    }

    /// One COPY (ended by the session's next statement) rather than a round trip per row.
    private func send() throws {
        try connection.copyInOpen("COPY \(name) FROM STDIN", context: "staging the rotated secrets of \(group.label)", pending)
        pending.removeAll()
    }

    func finishStaging() throws {
        guard !finished else { return }
        try send()
        finished = true
    }

    /// Joined by key (a merge join), never hashed: a stage bigger than work_mem makes a hash join
    /// of many batches, whose UPDATE then fetches the rows to rewrite in no order at all,
    /// reading and writing back most pages many times over once the table outgrows the server's
    /// buffers (1M rows after --make-room: the UPDATE 10.8 s against 2.6 s, measured). The
    /// setting is put back for the rest of the write transaction.
    func applyUnchanged() throws -> Int {
        let (secret, salt, nonce) = group.quotedParts
        return try withoutHashJoins {
            try connection.query(
                """
                UPDATE \(group.quotedTable) AS t
                SET \(secret) = s.new_key, \(salt) = s.new_salt, \(nonce) = s.new_nonce
                FROM \(name) AS s
                WHERE s.rotate AND t.\(key.column) = s.k
                  AND t.\(secret) = s.old_key AND t.\(salt) = s.old_salt AND t.\(nonce) = s.old_nonce
                """, context: "writing the rotated secrets of \(group.label)"
            ).affectedRows
        }
    }

    /// The groups of one table in one UPDATE: each row is rewritten once, where one UPDATE per
    /// group made a new version of it per group (a table of 250,000 rows with two groups: 2.28 s
    /// against 3.25 s for the two UPDATEs, measured). The stages are joined by key (a full join:
    /// a row may hold one group and not the other), each group's columns change where its own
    /// compare-and-swap holds, and the rows come back with which groups took their staged triple.
    func applyUnchanged(togetherWith others: [any RotationStaging]) throws -> [Int]? {
        let stages = [self] + others.compactMap { $0 as? PostgresRotationStage }
        guard stages.count == others.count + 1,
            stages.allSatisfy({ $0.connection === connection && $0.group.table == group.table && $0.key.column == key.column })
        else { return nil }
        let aliases = stages.indices.map { "s\($0)" }
        func triple(_ index: Int, equals prefix: String) -> String {
            let (secret, salt, nonce) = stages[index].group.quotedParts
            let s = aliases[index]
            return
                "\(s).rotate AND t.\(secret) = \(s).\(prefix)_key AND t.\(salt) = \(s).\(prefix)_salt AND t.\(nonce) = \(s).\(prefix)_nonce"
        }
        let assignments = stages.indices.flatMap { index in
            let (secret, salt, nonce) = stages[index].group.quotedParts
            return [(secret, "key"), (salt, "salt"), (nonce, "nonce")].map { column, part in
                "\(column) = CASE WHEN \(triple(index, equals: "old")) THEN \(aliases[index]).new_\(part) ELSE t.\(column) END"
            }
        }
        // The key of the first `count` stages' joined row.
        let keys = { (count: Int) in
            count == 1 ? "s0.k" : "coalesce(" + aliases.prefix(count).map { "\($0).k" }.joined(separator: ", ") + ")"
        }
        let from = stages.indices.map { index in
            index == 0
                ? "\(stages[0].name) AS s0" : "FULL JOIN \(stages[index].name) AS \(aliases[index]) ON \(aliases[index]).k = \(keys(index))"
        }
        let anyUnchanged = stages.indices.map { "(\(triple($0, equals: "old")))" }.joined(separator: " OR ")
        let sql = """
            WITH written AS (
                UPDATE \(group.quotedTable) AS t SET \(assignments.joined(separator: ", "))
                FROM \(from.joined(separator: " "))
                WHERE t.\(key.column) = \(keys(stages.count)) AND (\(anyUnchanged))
                RETURNING \(stages.indices.map { "(\(triple($0, equals: "new"))) AS w\($0)" }.joined(separator: ", "))
            )
            SELECT \(stages.indices.map { "count(*) FILTER (WHERE w\($0))" }.joined(separator: ", ")) FROM written
            """
        let labels = stages.map(\.group.label).joined(separator: " and ")
        return try withoutHashJoins {
            let rows = try connection.query(sql, context: "writing the rotated secrets of \(labels)")
            return try stages.indices.map { Int(try rows.int64(0, $0) ?? 0) }
        }
    }

    /// Runs `body` with hash joins off for the rest of the statement's plan (see `applyUnchanged`),
    /// then puts the setting back for the rest of the write transaction.
    private func withoutHashJoins<T>(_ body: () throws -> T) throws -> T {
        let context = "planning the write of \(group.label)"
        // set_config(..., true) is SET LOCAL; the row's first column is the setting before it.
        let setting =
            try connection.queryText(
                "SELECT current_setting('enable_hashjoin'), set_config('enable_hashjoin', 'off', true)",
                context: context) ?? "on"
        let result = try body()
        try connection.query("SELECT set_config('enable_hashjoin', $1, true)", [.text(setting)], context: context)
        return result
    }

    func leftovers(after row: RowReference?, limit: Int) throws -> [RotationLeftover] {
        let (secret, salt, nonce) = group.quotedParts
        let rows = try connection.query(
            """
            SELECT \(key.selected("t.\(key.column)")), \(key.idExpression), t.\(secret), t.\(salt), t.\(nonce), s.rotate
            FROM \(group.quotedTable) AS t LEFT JOIN \(name) AS s ON s.k = t.\(key.column)
            WHERE ($1::\(key.type) IS NULL OR t.\(key.column) > $1::\(key.type)) AND \(group.hasAnyPart("t."))
              AND (s.k IS NULL OR t.\(secret) IS DISTINCT FROM s.new_key OR t.\(salt) IS DISTINCT FROM s.new_salt
                   OR t.\(nonce) IS DISTINCT FROM s.new_nonce)
            ORDER BY t.\(key.column) LIMIT \(limit)
            """, [row.map(key.value) ?? .null], context: "finding the secrets of \(group.label) written since the snapshot")
        return try (0..<rows.count).map { index in
            let reference = try key.reference(rows, index, 0)
            let secretRow = SecretRow(
                rowID: reference.rowID, id: rows.text(index, 1), encryptedAPIKey: rows.text(index, 2),
                salt: rows.text(index, 3), nonce: rows.text(index, 4))
            return RotationLeftover(row: secretRow, stagedRotation: try rows.bool(index, 5))
        }
    }

    func rotated(after row: RowReference?, limit: Int) throws -> [(row: RowReference, secret: StoredSecret)] {
        let rows = try connection.query(
            """
            SELECT \(key.selected("k")), new_key, new_salt, new_nonce FROM \(name)
            WHERE rotate AND ($1::\(key.type) IS NULL OR k > $1::\(key.type)) ORDER BY k LIMIT \(limit)
            """, [row.map(key.value) ?? .null], context: "reading back the rotated secrets of \(group.label)")
        return try (0..<rows.count).map { index in
            (
                try key.reference(rows, index, 0),
                StoredSecret(encryptedAPIKey: rows.text(index, 1) ?? "", salt: rows.text(index, 2) ?? "", nonce: rows.text(index, 3) ?? "")
            )
        }
    }

    func digest() throws -> String? {
        try connection.queryText(
            Self.digestSQL(key: "k", columns: ["new_key", "new_salt", "new_nonce"], from: name),
            context: "reading back the staged secrets of \(group.label)")
    }

    /// A digest of rows that does not depend on their order: the count and the exact sum of each
    /// row's 64-bit hash (the server's own text hash, of its key as text and its values, NULL
    /// marked). Both sides are computed on one server in one run, so the hash need not be
    /// stable across versions. (md5 in its place: 0.79 s for 1M rows against 0.24 s.)
    static func digestSQL(key: String, columns: [String], from: String) -> String {
        let row = "concat_ws(E'\\x1f', \(key)::text, " + columns.map { "coalesce(\($0), E'\\x1e')" }.joined(separator: ", ") + ")"
        return "SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(\(row), 0)::numeric), 0)::text FROM \(from)"
    }

    func drop() {
        connection.abandonOpenCopy()
        try? connection.execute("DROP TABLE IF EXISTS \(name)")
    }
}
