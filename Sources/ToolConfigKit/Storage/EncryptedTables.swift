/// A table that holds stored secrets: it has the columns encrypted_api_key, salt and nonce
/// (user_tool_configs, and api_model_aliases where the application has it). A master-key
/// rotation that missed one would break the application, so discovery is by columns, not names.
public struct EncryptedTable: Sendable, Hashable, Codable {
    public var name: String
    /// A column that names rows in reports (`id` when the table has one), besides the rowid.
    public var idColumn: String?

    static let secretColumns = ["encrypted_api_key", "salt", "nonce"]

    public static func discover(_ connection: SQLiteConnection) throws -> [EncryptedTable] {
        let tables = try connection.prepare("""
            SELECT name FROM sqlite_master
            WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name
            """)
        var found: [EncryptedTable] = []
        while try tables.step() {
            let name = tables.text(0) ?? ""
            let columns = try connection.columnNames(of: name)
            guard secretColumns.allSatisfy(columns.contains) else { continue }
            let withoutRowID = try connection.queryInt64(
                "SELECT count(*) FROM sqlite_master WHERE name = ?1 AND sql LIKE '%WITHOUT ROWID%'", [.text(name)]) ?? 0
            if withoutRowID > 0 {
                throw TableShapeError(path: connection.path, message: "table \(name) holds secrets but is WITHOUT ROWID, which toolcfg cannot address row by row")
            }
            found.append(EncryptedTable(name: name, idColumn: columns.contains("id") ? "id" : nil))
        }
        return found
    }

    /// Rows in all of these tables, counted before a scan so that progress can show a total.
    static func rowCount(_ connection: SQLiteConnection, _ tables: [EncryptedTable]) throws -> Int {
        try tables.reduce(0) { sum, table in sum + Int(try connection.queryInt64("SELECT count(*) FROM \(table.quotedName)") ?? 0) }
    }

    var quotedName: String { quotedIdentifier(name) }

    /// Up to `limit` rows after `rowid` ?1 (and, when `bounded`, up to rowid ?2), in rowid order:
    /// rowid, the row's id as text, the triple. Keyset pages rather than one cursor, so updates
    /// made meanwhile cannot disturb the scan.
    func pageSQL(limit: Int, bounded: Bool = false) -> String {
        let id = idColumn.map { "CAST(\(quotedIdentifier($0)) AS TEXT)" } ?? "NULL"
        return "SELECT rowid, \(id), encrypted_api_key, salt, nonce FROM \(quotedName) WHERE rowid > ?1\(bounded ? " AND rowid <= ?2" : "") ORDER BY rowid LIMIT \(limit)"
    }

    func updateSQL() -> String {
        "UPDATE \(quotedName) SET encrypted_api_key = ?1, salt = ?2, nonce = ?3 WHERE rowid = ?4"
    }
}

/// One row's stored secret, as rotation and verification read it.
struct SecretRow: Sendable {
    var rowID: Int64
    /// The `id` column's value, for messages.
    var id: String?
    /// nil when all three columns are NULL (no key); a partial triple is kept for the error.
    var secret: StoredSecret?
    var partial: Bool

    var label: String { id.map { "row id \($0)" } ?? "rowid \(rowID)" }

    /// What the row's triple is: none, decoded bytes, or malformed with the reason why. Rotation
    /// and verify-keys judge rows by the same rule.
    enum Triple {
        case none
        case decoded(DecodedSecret)
        case malformed(String)
    }

    var triple: Triple {
        if partial { return .malformed("has only part of the encrypted_api_key/salt/nonce triple") }
        guard let secret else { return .none }
        do {
            return .decoded(try secret.decoded())
        } catch {
            return .malformed(error.description)
        }
    }

    static func read(_ statement: SQLiteStatement) -> SecretRow {
        let values = [statement.text(2), statement.text(3), statement.text(4)]
        let present = values.compactMap { $0 }
        return SecretRow(rowID: statement.int64(0), id: statement.text(1),
                         secret: present.count == 3 ? StoredSecret(encryptedAPIKey: values[0]!, salt: values[1]!, nonce: values[2]!) : nil,
                         partial: !present.isEmpty && present.count < 3)
    }

    /// Every row of a table with its triple, a page at a time.
    static func scan(_ connection: SQLiteConnection, _ table: EncryptedTable, pageSize: Int,
                     _ body: ([SecretRow]) throws -> Void) throws {
        let page = try connection.prepare(table.pageSQL(limit: pageSize))
        var after: Int64 = .min
        while true {
            try page.bind(.integer(after), at: 1)
            var rows: [SecretRow] = []
            while try page.step() { rows.append(read(page)) }
            page.reset()
            guard let last = rows.last else { return }
            try body(rows)
            after = last.rowID
        }
    }
}
