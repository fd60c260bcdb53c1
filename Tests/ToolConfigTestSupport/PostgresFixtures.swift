import Foundation
import ToolConfigKit

/// The PostgreSQL fixture scripts (fixtures/postgres), written by scripts/build_fixtures.py.
package enum PostgresFixtures {
    package static let folder = Repository.root.appendingPathComponent("fixtures/postgres")
    package static let names = ["empty.sql", "app-before-0007.sql", "app-after-0007.sql", "app-after-0007-extras.sql"]

    /// fixtures/postgres/NAME, loaded into the connection's database in one transaction.
    package static func load(_ name: String, into connection: PostgresConnection) throws {
        let script = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
        try connection.transaction { try connection.execute(script, context: name) }
    }
}

/// Every relation (table, index, sequence, view) of the public schema, as "kind name".
package func postgresRelations(_ connection: PostgresConnection) throws -> [String] {
    let rows = try connection.query(
        """
        SELECT c.relkind::text || ' ' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' ORDER BY 1
        """)
    return (0..<rows.count).compactMap { rows.text($0, 0) }
}

/// What proves a PostgreSQL database unchanged: its fingerprint, its ledger with the timing
/// columns the fingerprint leaves out, and every table's rows as text.
package struct PostgresState: Equatable {
    package var fingerprint: SchemaFingerprint
    package var ledger: [LedgerEntry]
    package var rows: [String]

    package init(_ connection: PostgresConnection) throws {
        fingerprint = try SchemaFingerprint.capture(connection)
        ledger = try MigrationLedger(database: connection).entries()
        rows = try fingerprint.tables.map { table in
            try connection.queryText(
                "SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), '') FROM \(quotedIdentifier(table.name)) t") ?? ""
        }
    }
}

/// Advisory locks of the database held by other sessions, or waited for (`granted` false).
package func advisoryLocks(_ connection: PostgresConnection, granted: Bool) throws -> Int64 {
    try connection.queryInt64(
        """
        SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = $1
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """, [.boolean(granted)]) ?? 0
}
