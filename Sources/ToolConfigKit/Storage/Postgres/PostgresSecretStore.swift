/// A table's stored secrets on PostgreSQL, read in the transaction's snapshot (verify-keys, an
/// import's master-key check, a rotation's read phase), and rewritten by key (a rotation).
///
/// PostgreSQL has no rowid, so `SecretRow.rowID` stands in for one:
/// - a table whose primary key is one integer column (user_tool_configs' id) uses its value;
/// - any other table (api_model_aliases, keyed by `id TEXT`; a table with a composite key or none,
///   ordered by its ctid) is read in the order of its key, and a row's rowID is its position in
///   that order, from 1, as the snapshot sees it. Within one snapshot it names one row, which is
///   all a scan, a sample or a check needs; across transactions it may not (rows before it come
///   and go), so such a rowID is never kept beyond the transaction. A one-column key's own value
///   is in `SecretRow.id`, and `rows(_:)` and `setSecret` find rows by it; a table with no such
///   key cannot be rewritten.
final class PostgresSecretStore: SecretStore {
    let group: SecretColumnGroup
    private let connection: PostgresConnection
    private let key: RowKey
    /// The table's name, quoted.
    private var table: String { group.quotedTable }
    /// The group's columns, quoted and joined.
    private var triple: String { group.quotedColumns().joined(separator: ", ") }

    private enum RowKey {
        /// A one-column integer primary key (the quoted column): rowID is its value.
        case integer(String)
        /// The SQL expression rows are ordered by (a quoted column, or ctid), and its type, for
        /// pages that start after a key: rowID is the position in that order.
        case ordinal(String, type: String)
    }

    init(_ connection: PostgresConnection, group: SecretColumnGroup) throws {
        self.connection = connection
        self.group = group
        let primary = try connection.query(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index x
            JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey::int2[])
            WHERE x.indrelid = to_regclass(quote_ident($1)) AND x.indisprimary
            """, [.text(group.table)], context: "reading the primary key of \(group.table)")
        if primary.count == 1, let column = primary.text(0, 0), let type = primary.text(0, 1) {
            key =
                ["bigint", "integer", "smallint"].contains(type)
                ? .integer(quotedIdentifier(column)) : .ordinal(quotedIdentifier(column), type: type)
        } else {
            key = .ordinal("ctid", type: "tid")
        }
    }

    /// The key (as text for an ordinal key), the row's id as text, the group. Named apart from
    /// the table's columns, so that ORDER BY a column never means an output column.
    private var columns: String {
        "\(keyExpression)\(isOrdinal ? "::text" : "") AS toolcfg_key, \(idExpression) AS toolcfg_id, \(triple)"
    }

    /// The row's name in `SecretRow.id`: the key itself for a one-column key that is not an
    /// integer (its reference), else the table's id column.
    private var idExpression: String { idExpression(of: "") }

    /// The same, of the table under the alias `prefix` ("t.").
    private func idExpression(of prefix: String) -> String {
        if case .ordinal(let expression, _) = key, expression != "ctid" { return "CAST(\(prefix)\(expression) AS TEXT)" }
        return group.idColumn.map { "CAST(\(prefix)\(quotedIdentifier($0)) AS TEXT)" } ?? "NULL"
    }

    /// A table keyed otherwise than by one column: its rows have no address that lasts beyond a
    /// snapshot, so they cannot be rewritten safely.
    private var unaddressable: TableShapeError {
        TableShapeError(
            path: connection.url.redacted,
            message: "table \(group.table) has no one-column primary key: toolcfg cannot address its rows to rewrite them on PostgreSQL")
    }

    private var keyExpression: String {
        switch key {
        case .integer(let column): column
        case .ordinal(let expression, _): expression
        }
    }

    private var isOrdinal: Bool {
        if case .ordinal = key { true } else { false }
    }

    /// Rows of `columns`, their rowIDs being their keys or `firstOrdinal`, `firstOrdinal + 1`, ...
    private func secretRows(_ rows: PostgresRows, firstOrdinal: Int64 = 1, ordinalColumn: Int? = nil) throws -> [SecretRow] {
        try (0..<rows.count).map { row in
            let rowID: Int64 =
                switch key {
                case .integer: try rows.int64(row, 0) ?? 0
                case .ordinal: try ordinalColumn.map { try rows.int64(row, $0) ?? 0 } ?? firstOrdinal + Int64(row)
                }
            return SecretRow(
                rowID: rowID, id: rows.text(row, 1), encryptedAPIKey: rows.text(row, 2), salt: rows.text(row, 3), nonce: rows.text(row, 4))
        }
    }

    func count() throws -> Int {
        Int(try connection.queryInt64("SELECT count(*) FROM \(table)", context: "counting the rows of \(group.table)") ?? 0)
    }

    /// Keyset pages in the snapshot: each page starts after the last key of the one before.
    func scan(pageSize: Int, _ body: ([SecretRow]) throws -> Void) throws {
        let context = "reading the secrets of \(group.label)"
        var after: PostgresValue?
        var ordinal: Int64 = 1
        while true {
            let rows: PostgresRows
            switch (key, after) {
            case (_, nil):
                rows = try connection.query("SELECT \(columns) FROM \(table) ORDER BY \(keyExpression) LIMIT \(pageSize)", context: context)
            case (.integer(let column), let last?):
                rows = try connection.prepare("SELECT \(columns) FROM \(table) WHERE \(column) > $1 ORDER BY \(column) LIMIT \(pageSize)")
                    .run([last], context: context)
            case (.ordinal(let expression, let type), let last?):
                rows = try connection.prepare(
                    "SELECT \(columns) FROM \(table) WHERE \(expression) > $1::\(type) ORDER BY \(expression) LIMIT \(pageSize)"
                )
                .run([last], context: context)
            }
            guard rows.count > 0 else { return }
            try body(try secretRows(rows, firstOrdinal: ordinal))
            ordinal += Int64(rows.count)
            after = isOrdinal ? .text(rows.text(rows.count - 1, 0) ?? "") : .integer(try rows.int64(rows.count - 1, 0) ?? 0)
        }
    }

    /// One query: for an integer key, the first keyed row at or after each of `count` points
    /// spread from the smallest key to the largest (as SQLite's store picks them); for an ordinal
    /// key, the first keyed row of each of `count` equal runs of the keyed rows.
    func sample(_ count: Int) throws -> [SecretRow] {
        guard count > 0 else { return [] }
        let context = "sampling the secrets of \(group.label)"
        var rows: [SecretRow]
        switch key {
        case .integer(let column):
            rows = try secretRows(
                try connection.query(
                    """
                    SELECT r.* FROM (SELECT min(\(column)) AS low, max(\(column)) AS high FROM \(table)) AS b,
                        generate_series(0, $1 - 1) AS g (i),
                        LATERAL (SELECT \(columns) FROM \(table)
                                 WHERE \(column) >= b.low + (b.high - b.low) / $1 * g.i AND \(group.hasTriple())
                                 ORDER BY \(column) LIMIT 1) AS r
                    ORDER BY g.i
                    """, [.integer(Int64(count))], context: context))
        case .ordinal(let expression, _):
            let secret = group.quotedColumns()
            rows = try secretRows(
                try connection.query(
                    """
                    SELECT DISTINCT ON (bucket) k, i, c, s, n, ordinal FROM (
                        SELECT *, ntile($1::integer) OVER (ORDER BY ordinal) AS bucket FROM (
                            SELECT \(expression)::text AS k, \(idExpression) AS i, \(secret[0]) AS c, \(secret[1]) AS s, \(secret[2]) AS n,
                                   row_number() OVER (ORDER BY \(expression)) AS ordinal
                            FROM \(table)) AS numbered
                        WHERE c IS NOT NULL AND s IS NOT NULL AND n IS NOT NULL) AS keyed
                    ORDER BY bucket, ordinal
                    """, [.integer(Int64(count))], context: context), ordinalColumn: 5)
        }
        var seen = Set<Int64>()
        rows.removeAll { !seen.insert($0.rowID).inserted }
        return rows
    }

    /// By the integer key, or by the key's value (`RowReference.id`) for a table keyed by one
    /// column of another type. A table keyed otherwise has no lasting row address here.
    func rows(_ references: [RowReference]) throws -> [SecretRow?] {
        guard !references.isEmpty else { return [] }
        let context = "reading the secrets of \(group.label)"
        let lookup = try keyLookup(references)
        let rows = try secretRows(
            try connection.query("SELECT \(columns) FROM \(table) WHERE \(lookup.condition)", [lookup.keys], context: context))
        var found: [String: SecretRow] = [:]
        for row in rows { found[lookup.name(row.reference)] = row }
        return references.map { found[lookup.name($0)] }
    }

    /// The condition that picks rows by their references' keys (`$1`, an array), and how a
    /// reference names its key.
    private func keyLookup(_ references: [RowReference]) throws -> (condition: String, keys: PostgresValue, name: (RowReference) -> String)
    {
        switch key {
        case .integer(let column):
            return (
                "\(column) = ANY ($1::bigint[])", .text("{" + references.map { String($0.rowID) }.joined(separator: ",") + "}"),
                { String($0.rowID) }
            )
        case .ordinal(let expression, let type) where expression != "ctid":
            return ("\(expression) = ANY ($1::\(type)[])", .textArray(references.map { $0.id ?? "" }), { $0.id ?? "" })
        case .ordinal:
            throw unaddressable
        }
    }
    func countRows(with part: TriplePart, equalTo value: String, acrossAlso others: [SecretColumnGroup]) throws -> Int {
        Int(
            try connection.queryInt64(
                group.countingSQL(part, acrossAlso: others, parameter: "$1"), [.text(value)],
                context: "counting the rows that share a \(part.rawValue)") ?? 0)
    }

    func schemeCounts() throws -> [SecretScheme: Int] {
        let counts = try connection.query(group.schemeCountingSQL, context: "counting the schemes of \(group.label)")
        return [.v1: Int(try counts.int64(0, 0) ?? 0), .v2: Int(try counts.int64(0, 1) ?? 0)]
    }

    /// Each row's hash, summed: see `PostgresRotationStage.digestSQL`. A table without a
    /// lasting row address (ctid) has none.
    func digest() throws -> String? {
        let keyColumn: String
        switch key {
        case .integer(let column): keyColumn = column
        case .ordinal(let expression, _) where expression != "ctid": keyColumn = expression
        case .ordinal: return nil
        }
        return try connection.queryText(
            PostgresRotationStage.digestSQL(
                key: keyColumn, columns: group.quotedColumns(),
                from: "\(table) WHERE \(group.hasAnyPart())"),
            context: "reading back \(group.label)")
    }

    func setSecret(_ secret: StoredSecret, of row: RowReference) throws {
        let lookup = try keyLookup([row])
        let set = group.quotedColumns().enumerated().map { "\($1) = $\($0 + 2)" }.joined(separator: ", ")
        try connection.query(
            "UPDATE \(table) SET \(set) WHERE \(lookup.condition)",
            [lookup.keys, .text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)],
            context: "writing a secret of \(group.label)")
    }

    /// A table filled to its pages' end (fillfactor 100, the default) has no room for a row's
    /// new version where the row is: each rewrite goes to another page and into every index
    /// (docs/postgresql.md: about 12 µs a row against 2.2 in place).
    /// Only where --make-room would help: not when it would be refused (an index on the triple
    /// rules out rewrites in place whatever the room).
    func writePhaseAdvice() throws -> String? {
        guard let maker = try? PostgresRoomMaker(connection: connection, groups: [group]), maker.fillfactor > 60 else { return nil }
        return "\(group.table) is packed full (fillfactor \(maker.fillfactor)), so each rotated row went to another page and into every "
            + "index: the next rotation with --make-room gives its rows room first, in short transactions, and then rewrites them in "
            + "place, with a write phase 3-5x shorter (docs/postgresql.md: how long the write phase is on PostgreSQL)"
    }

    func roomMaker(groupsOfTable groups: [SecretColumnGroup]) throws -> any RoomMaking {
        if case .ordinal("ctid", _) = key { throw unaddressable }
        return try PostgresRoomMaker(connection: connection, groups: groups)
    }

    func makeRotationStage(index: Int) throws -> any RotationStaging {
        let stageKey: PostgresRotationStage.Key
        switch key {
        case .integer(let column):
            stageKey = .init(column: column, type: "bigint", isInteger: true, idExpression: idExpression(of: "t."))
        case .ordinal(let column, let type) where column != "ctid":
            stageKey = .init(column: column, type: type, isInteger: false, idExpression: idExpression(of: "t."))
        case .ordinal:
            throw unaddressable
        }
        return try PostgresRotationStage(connection, group: group, key: stageKey, index: index)
    }
}
