import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("PostgreSQL migration files", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresMigrationFileTests {
    @Test("PostgreSQL's set has SQLite's versions and descriptions")
    func sameVersions() throws {
        let postgres = try MigrationSet.embeddedPostgres(), sqlite = try MigrationSet.embedded()
        #expect(postgres.migrations.map(\.version) == sqlite.migrations.map(\.version))
        #expect(postgres.migrations.map(\.description) == sqlite.migrations.map(\.description))
        #expect(postgres.migrations.allSatisfy { $0.down != nil })
    }

    @Test("0007 makes SQLite's table in PostgreSQL's types; again changes nothing; its down leaves no trace")
    func upAndDown() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        let migration = try #require(try MigrationSet.embeddedPostgres().migration(version: 7))
        let empty = try relations(connection)
        try connection.transaction { try connection.execute(migration.up.sql, context: migration.up.fileName) }

        let columns = try connection.query(
            """
            SELECT column_name, data_type, is_nullable, coalesce(column_default, ''), is_identity, identity_generation
            FROM information_schema.columns WHERE table_name = 'user_tool_configs' ORDER BY ordinal_position
            """)
        let shape = (0..<columns.count).map { row in (0..<6).map { columns.text(row, $0) ?? "-" }.joined(separator: " ") }
        #expect(
            shape == [
                "id bigint NO  YES BY DEFAULT",
                "user_id text NO  NO -", "tool_id text NO  NO -",
                "enabled boolean NO false NO -",
                "encrypted_api_key text YES  NO -", "salt text YES  NO -", "nonce text YES  NO -",
                "created_at bigint NO  NO -", "updated_at bigint NO  NO -"
            ])
        let unique = try connection.queryText(
            """
            SELECT string_agg(a.attname, ',' ORDER BY k.ordinality) FROM pg_constraint c
            CROSS JOIN unnest(c.conkey) WITH ORDINALITY k(attnum, ordinality)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = 'user_tool_configs'::regclass AND c.contype = 'u'
            """)
        #expect(unique == "user_id,tool_id")

        // The same column names, NOT NULLs and named indexes as SQLite's migration.
        let sqlite = try SQLiteConnection(path: ":memory:", mode: .readWriteCreate)
        try sqlite.execute(try #require(try MigrationSet.embedded().migration(version: 7)).up.sql)
        let sqliteColumns = try sqlite.prepare("SELECT name, \"notnull\" OR pk FROM pragma_table_info('user_tool_configs') ORDER BY cid")
        var sqliteShape: [String] = []
        while try sqliteColumns.step() {
            sqliteShape.append("\(sqliteColumns.text(0) ?? "") \(sqliteColumns.int64(1) == 1 ? "NO" : "YES")")
        }
        #expect(sqliteShape == (0..<columns.count).map { "\(columns.text($0, 0) ?? "") \(columns.text($0, 2) ?? "")" })
        let sqliteIndexes = try relations(sqlite).filter { $0.hasPrefix("index ") }.map { "i " + $0.dropFirst(6) }
        let created = try relations(connection)
        #expect(
            created
                == (sqliteIndexes + [
                    "S user_tool_configs_id_seq", "i user_tool_configs_pkey",
                    "i user_tool_configs_user_id_tool_id_key", "r user_tool_configs"
                ]).sorted())

        // The application's row (id: i64, enabled: bool, timestamps: i64) goes in and the
        // identity numbers it, and a row with an explicit id keeps it.
        let id = try connection.queryInt64(
            """
            INSERT INTO user_tool_configs (user_id, tool_id, enabled, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $4) RETURNING id
            """, [.text("alice"), .text("builtin-exa-web-search"), .boolean(true), .integer(1_705_257_600)])
        #expect(id == 1)
        try connection.query("INSERT INTO user_tool_configs (id, user_id, tool_id, created_at, updated_at) VALUES (42, 'bob', 't', 0, 0)")
        let duplicate =
            thrownError {
                try connection.query(
                    "INSERT INTO user_tool_configs (user_id, tool_id, created_at, updated_at) VALUES ('alice', 'builtin-exa-web-search', "
                        + "0, 0)"
                )
            } as? PostgresError
        #expect(duplicate?.sqlState == "23505" && duplicate?.constraint == "user_tool_configs_user_id_tool_id_key")

        try connection.transaction { try connection.execute(migration.up.sql) }
        #expect(try relations(connection) == created)
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 2)

        let down = try #require(migration.down)
        try connection.transaction { try connection.execute(down.sql, context: down.fileName) }
        #expect(try relations(connection) == empty)
        try connection.transaction { try connection.execute(down.sql) }
        #expect(try relations(connection) == empty)
    }
}
