/// A table's stored secrets in SQLite, addressed by rowid.
final class SQLiteSecretStore: SecretStore {
    let table: EncryptedTable
    private let connection: SQLiteConnection

    init(_ connection: SQLiteConnection, table: EncryptedTable) {
        self.connection = connection
        self.table = table
    }

    /// rowid, the row's id as text, the triple: what `SecretRow(reading:)` reads.
    private var columns: String {
        let id = table.idColumn.map { "CAST(\(quotedIdentifier($0)) AS TEXT)" } ?? "NULL"
        return "rowid, \(id), encrypted_api_key, salt, nonce"
    }

    func count() throws -> Int {
        Int(try connection.queryInt64("SELECT count(*) FROM \(table.quotedName)") ?? 0)
    }

    func scan(pageSize: Int, _ body: ([SecretRow]) throws -> Void) throws {
        let page = try connection.prepare("SELECT \(columns) FROM \(table.quotedName) WHERE rowid > ?1 ORDER BY rowid LIMIT \(pageSize)")
        var after: Int64 = .min
        while true {
            try page.bind(.integer(after), at: 1)
            var rows: [SecretRow] = []
            while try page.step() { rows.append(SecretRow(reading: page)) }
            page.reset()
            guard let last = rows.last else { return }
            try body(rows)
            after = last.rowID
        }
    }

    func sample(_ count: Int) throws -> [SecretRow] {
        guard count > 0, let bounds = try connection.prepare("SELECT min(rowid), max(rowid) FROM \(table.quotedName)")
                .firstRow({ $0.isNull(0) ? nil : ($0.int64(0), $0.int64(1)) }) ?? nil else { return [] }
        let next = try connection.prepare("""
            SELECT \(columns) FROM \(table.quotedName)
            WHERE rowid >= ?1 AND encrypted_api_key IS NOT NULL AND salt IS NOT NULL AND nonce IS NOT NULL
            ORDER BY rowid LIMIT 1
            """)
        var rows: [SecretRow] = []
        let step = (bounds.1 - bounds.0) / Int64(count)
        for index in 0..<Int64(count) {
            if let row = try next.firstRow({ SecretRow(reading: $0) }, binding: [.integer(bounds.0 + step * index)]),
               !rows.contains(where: { $0.rowID == row.rowID }) {
                rows.append(row)
            }
        }
        return rows
    }

    func rows(_ references: [RowReference]) throws -> [SecretRow?] {
        guard let first = references.map(\.rowID).min(), let last = references.map(\.rowID).max() else { return [] }
        let range = try connection.prepare("SELECT \(columns) FROM \(table.quotedName) WHERE rowid >= ?1 AND rowid <= ?2 ORDER BY rowid")
        try range.bind([.integer(first), .integer(last)])
        var found: [Int64: SecretRow] = [:]
        while try range.step() { found[range.int64(0)] = SecretRow(reading: range) }
        return references.map { found[$0.rowID] }
    }

    func countRows(with part: TriplePart, equalTo value: String, acrossAlso others: [EncryptedTable]) throws -> Int {
        Int(try connection.queryInt64(table.countingSQL(part, acrossAlso: others, parameter: "?1"), [.text(value)]) ?? 0)
    }

    func setSecret(_ secret: StoredSecret, of row: RowReference) throws {
        try connection.prepare("UPDATE \(table.quotedName) SET encrypted_api_key = ?1, salt = ?2, nonce = ?3 WHERE rowid = ?4")
            .run([.text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce), .integer(row.rowID)])
    }

    func makeRotationStage(index: Int) throws -> any RotationStaging {
        try SQLiteRotationStage(connection, table: table, index: index)
    }
}

extension SecretRow {
    /// Columns 0...4 as `SQLiteSecretStore` selects them: rowid, id as text, the triple.
    init(reading statement: SQLiteStatement) {
        self.init(rowID: statement.int64(0), id: statement.text(1),
                  encryptedAPIKey: statement.text(2), salt: statement.text(3), nonce: statement.text(4))
    }
}
