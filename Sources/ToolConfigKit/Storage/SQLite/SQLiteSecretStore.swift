/// A column group's stored secrets in SQLite, addressed by rowid.
final class SQLiteSecretStore: SecretStore {
    let group: SecretColumnGroup
    private let connection: SQLiteConnection
    private var table: String { group.quotedTable }

    /// Refuses a WITHOUT ROWID table: its rows have no rowid to address them by.
    init(_ connection: SQLiteConnection, group: SecretColumnGroup) throws {
        self.connection = connection
        self.group = group
        let withoutRowID =
            try connection.queryInt64(
                "SELECT count(*) FROM sqlite_master WHERE name = ?1 AND sql LIKE '%WITHOUT ROWID%'",
                [.text(group.table)]) ?? 0
        if withoutRowID > 0 {
            throw TableShapeError(
                path: connection.path,
                message: "table \(group.table) holds secrets but is WITHOUT ROWID, which toolcfg cannot address row by row")
        }
    }

    /// rowid, the row's id as text, the group: what `SecretRow(reading:)` reads.
    private var columns: String { Self.columns(of: group, prefix: "") }

    /// The same of the table under the alias `prefix` ("t.").
    static func columns(of group: SecretColumnGroup, prefix: String) -> String {
        let id = group.idColumn.map { "CAST(\(prefix)\(quotedIdentifier($0)) AS TEXT)" } ?? "NULL"
        return "\(prefix)rowid, \(id), " + group.quotedColumns(prefix).joined(separator: ", ")
    }

    func count() throws -> Int {
        Int(try connection.queryInt64("SELECT count(*) FROM \(table)") ?? 0)
    }

    func scan(pageSize: Int, _ body: ([SecretRow]) throws -> Void) throws {
        let page = try connection.prepare("SELECT \(columns) FROM \(table) WHERE rowid >= ?1 ORDER BY rowid LIMIT \(pageSize)")
        var from: Int64? = .min
        while let start = from {
            try page.bind(.integer(start), at: 1)
            var rows: [SecretRow] = []
            while try page.step() { rows.append(SecretRow(reading: page)) }
            page.reset()
            guard let last = rows.last else { return }
            try body(rows)
            from = Self.from(after: last.rowID)
        }
    }

    /// Where a page in rowid order starts after the row `after` (nil: the first page, from the
    /// lowest rowid there is, -2^63 included); nil when nothing can come after it.
    static func from(after: Int64?) -> Int64? {
        guard let after else { return .min }
        return after < .max ? after + 1 : nil
    }

    func sample(_ count: Int) throws -> [SecretRow] {
        guard count > 0,
            let bounds = try connection.prepare("SELECT min(rowid), max(rowid) FROM \(table)")
                .firstRow({ $0.isNull(0) ? nil : ($0.int64(0), $0.int64(1)) }) ?? nil
        else { return [] }
        let next = try connection.prepare(
            "SELECT \(columns) FROM \(table) WHERE rowid >= ?1 AND \(group.hasTriple()) ORDER BY rowid LIMIT 1")
        var rows: [SecretRow] = []
        let step = (bounds.1 - bounds.0) / Int64(count)
        for index in 0..<Int64(count) {
            if let row = try next.firstRow({ SecretRow(reading: $0) }, binding: [.integer(bounds.0 + step * index)]),
                !rows.contains(where: { $0.rowID == row.rowID })
            {
                rows.append(row)
            }
        }
        return rows
    }

    func rows(_ references: [RowReference]) throws -> [SecretRow?] {
        guard let first = references.map(\.rowID).min(), let last = references.map(\.rowID).max() else { return [] }
        let range = try connection.prepare("SELECT \(columns) FROM \(table) WHERE rowid >= ?1 AND rowid <= ?2 ORDER BY rowid")
        try range.bind([.integer(first), .integer(last)])
        var found: [Int64: SecretRow] = [:]
        while try range.step() { found[range.int64(0)] = SecretRow(reading: range) }
        return references.map { found[$0.rowID] }
    }

    func countRows(with part: TriplePart, equalTo value: String, acrossAlso others: [SecretColumnGroup]) throws -> Int {
        Int(try connection.queryInt64(group.countingSQL(part, acrossAlso: others, parameter: "?1"), [.text(value)]) ?? 0)
    }

    func schemeCounts() throws -> [SecretScheme: Int] {
        try connection.prepare(group.schemeCountingSQL).firstRow { [.v1: Int($0.int64(0)), .v2: Int($0.int64(1))] } ?? [:]
    }

    func digest() throws -> String? {
        try connection.createDigestFunction()
        return try connection.queryText(
            "SELECT toolcfg_digest(rowid, \(group.quotedColumns().joined(separator: ", "))) FROM \(table) WHERE \(group.hasAnyPart())")
    }

    func setSecret(_ secret: StoredSecret, of row: RowReference) throws {
        let set = group.quotedColumns().enumerated().map { "\($1) = ?\($0 + 1)" }.joined(separator: ", ")
        try connection.prepare("UPDATE \(table) SET \(set) WHERE rowid = ?4")
            .run([.text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce), .integer(row.rowID)])
    }

    func makeRotationStage(index: Int) throws -> any RotationStaging {
        try SQLiteRotationStage(connection, group: group, index: index)
    }
}

extension SecretRow {
    /// Columns 0...4 as `SQLiteSecretStore` selects them: rowid, id as text, the group.
    init(reading statement: SQLiteStatement) {
        self.init(
            rowID: statement.int64(0), id: statement.text(1),
            encryptedAPIKey: statement.text(2), salt: statement.text(3), nonce: statement.text(4))
    }
}
