import Foundation
import ToolConfigKit

/// What proves a database of either engine unchanged: its fingerprint (the library's own), its
/// ledger with the timing columns the fingerprint leaves out, its relations, and every table's
/// rows as text (the engine's bookkeeping tables included; SQLite's values with their storage
/// class, so 1 and '1' differ), read through the engine's own client.
package struct DatabaseState: Equatable {
    package var fingerprint: SchemaFingerprint
    package var ledger: [LedgerEntry]
    package var relations: [String]
    package var rows: [String: [[String?]]]

    package init(_ database: any Database) throws {
        fingerprint = try SchemaFingerprint.capture(database)
        ledger = try MigrationLedger(database: database).entries()
        relations = try ToolConfigTestSupport.relations(database)
        var rows: [String: [[String?]]] = [:]
        for relation in relations where ["table ", "r ", "p "].contains(where: relation.hasPrefix) {
            let table = String(relation.drop { $0 != " " }.dropFirst())
            rows[table] = try textRows(database, "SELECT * FROM \(quotedIdentifier(table))", typed: true)
                .sorted { $0.map { $0 ?? "\u{0}NULL" }.lexicographicallyPrecedes($1.map { $0 ?? "\u{0}NULL" }) }
        }
        self.rows = rows
    }
}

/// A query's rows as text through the engine's own client: NULL as nil, SQLite's blobs as hex;
/// `typed`, SQLite's values prefixed by their storage class ("i:1", "t:1").
package func textRows(_ database: any DatabaseReader, _ sql: String, typed: Bool = false) throws -> [[String?]] {
    if let connection = database as? PostgresConnection {
        let rows = try connection.query(sql)
        return (0..<rows.count).map { row in (0..<rows.columnCount).map { rows.text(row, $0) } }
    }
    guard let connection = database as? SQLiteConnection else { preconditionFailure("an engine the tests do not know") }
    let statement = try connection.prepare(sql)
    var rows: [[String?]] = []
    while try statement.step() {
        rows.append(
            (0..<statement.columnCount).map { column -> String? in
                let (kind, text): (String, String?) =
                    switch statement.value(column) {
                    case .null: ("", nil)
                    case .integer(let value): ("i:", "\(value)")
                    case .real(let value): ("r:", "\(value)")
                    case .text(let text): ("t:", text)
                    case .blob(let bytes): ("b:", Digest.hex(bytes))
                    }
                return typed ? text.map { kind + $0 } : text
            })
    }
    return rows
}

/// Every relation as "kind name", in the engine's own words: SQLite's sqlite_master types (its
/// automatic indexes left out), PostgreSQL's pg_class kinds in the public schema.
package func relations(_ database: any DatabaseReader) throws -> [String] {
    if database is PostgresConnection {
        return try textRows(
            database,
            """
            SELECT c.relkind::text || ' ' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' ORDER BY 1
            """
        ).compactMap { $0.first ?? nil }
    }
    return try textRows(
        database, "SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_autoindex_%' ORDER BY type, name"
    ).compactMap { $0.first ?? nil }
}
