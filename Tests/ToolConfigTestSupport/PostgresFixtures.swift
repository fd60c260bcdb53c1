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

/// Advisory locks of the database held by other sessions, or waited for (`granted` false).
package func advisoryLocks(_ connection: PostgresConnection, granted: Bool) throws -> Int64 {
    try connection.queryInt64(
        """
        SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = $1
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """, [.boolean(granted)]) ?? 0
}
