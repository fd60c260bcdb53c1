import Foundation
import Testing
import ToolConfigKit

/// A scratch database on the test server migrated to 0007 (optionally loaded from a fixture of
/// fixtures/postgres first), with user_tool_configs read and written through its own session, as
/// the application would. `drop()` in a `defer`.
package final class PostgresToolConfigDatabase {
    package let scratch: ScratchPostgresDatabase
    package let connection: PostgresConnection
    package var url: PostgresURL { scratch.url }

    package init(fixture: String? = nil) throws {
        scratch = try ScratchPostgresDatabase()
        connection = try scratch.connect()
        if let fixture { try PostgresFixtures.load(fixture, into: connection) }
        _ = try Migrator(database: connection, migrations: try .embeddedPostgres()).up()
    }

    package func drop() {
        connection.close()
        scratch.drop()
    }

    /// A row as the application stores it; `id` given or the identity's next.
    package func insert(
        id: Int64? = nil, _ userID: String, _ toolID: String, enabled: Bool, secret: StoredSecret?,
        createdAt: Int64 = 1000, updatedAt: Int64 = 2000
    ) throws {
        func text(_ value: String?) -> PostgresValue { value.map { .text($0) } ?? .null }
        try connection.query(
            """
            INSERT INTO user_tool_configs (id, user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
            VALUES (coalesce($1, nextval(pg_get_serial_sequence('user_tool_configs', 'id'))), $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            [
                id.map { .integer($0) } ?? .null, .text(userID), .text(toolID), .boolean(enabled),
                text(secret?.encryptedAPIKey), text(secret?.salt), text(secret?.nonce), .integer(createdAt), .integer(updatedAt)
            ])
    }

    package func insert(
        _ userID: String, _ toolID: String, enabled: Bool, key: String?, master: MasterKey,
        createdAt: Int64 = 1000, updatedAt: Int64 = 2000
    ) throws {
        try insert(
            userID, toolID, enabled: enabled, secret: try key.map { try SecretCipher.encrypt($0, masterKey: master) },
            createdAt: createdAt, updatedAt: updatedAt)
    }

    /// Every column of every row, the identity's sequence, and the table's indexes: what an
    /// import that fails must leave exactly as it was.
    package func dump() throws -> [String] {
        let rows = try connection.query(
            """
            SELECT concat_ws('|', id, quote_nullable(user_id), quote_nullable(tool_id), enabled, quote_nullable(encrypted_api_key),
                             quote_nullable(salt), quote_nullable(nonce), created_at, updated_at)
            FROM user_tool_configs ORDER BY id
            """)
        let sequence = try connection.query("SELECT last_value || ' ' || is_called FROM user_tool_configs_id_seq")
        return (0..<rows.count).map { rows.text($0, 0) ?? "" } + ["sequence " + (sequence.text(0, 0) ?? "")] + (try indexes())
    }

    /// The table's indexes by name, with their definitions.
    package func indexes() throws -> [String] {
        let rows = try connection.query(
            "SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE tablename = 'user_tool_configs' ORDER BY indexname")
        return (0..<rows.count).map { rows.text($0, 0) ?? "" }
    }

    package func count() throws -> Int64 { try connection.queryInt64("SELECT count(*) FROM user_tool_configs") ?? -1 }

    /// Rows with keys decrypted, sorted by (user_id, tool_id) bytes.
    package func plainRows(_ master: MasterKey) throws -> [SnapshotFixtures.PlainRow] {
        let rows = try connection.query(
            "SELECT id, user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at FROM user_tool_configs")
        return SnapshotFixtures.sorted(
            try (0..<rows.count).map { row in
                let key = try ToolConfigTable.secret(rows, row, first: 4).map { try SecretCipher.decrypt($0, masterKey: master) }
                return SnapshotFixtures.PlainRow(
                    id: try rows.int64(row, 0) ?? 0, userID: rows.text(row, 1) ?? "", toolID: rows.text(row, 2) ?? "",
                    enabled: try rows.bool(row, 3) ?? false, createdAt: try rows.int64(row, 7) ?? 0,
                    updatedAt: try rows.int64(row, 8) ?? 0, key: key)
            })
    }
}

/// Import and export through the library on any engine, as the snapshot tests run them.
package enum EngineSnapshots {
    package static func importFile(
        _ database: any Database, _ path: String, _ format: SnapshotFormat, master: MasterKey?,
        passphrase: SecureBytes? = nil, onConflict: Importer.ConflictPolicy = .update, dryRun: Bool = false,
        maxErrors: Int = 1, allowOtherMasterKey: Bool = false
    ) throws -> Importer.Report {
        try Importer(
            database: database,
            options: Importer.Options(
                input: path, format: format, onConflict: onConflict, dryRun: dryRun, maxErrors: maxErrors, masterKey: master,
                passphrase: passphrase, allowOtherMasterKey: allowOtherMasterKey, now: SnapshotFixtures.now, jobs: 2)
        ).run()
    }

    package static func export(
        _ database: any Database, to path: String, _ format: SnapshotFormat, keys: KeyMode, master: MasterKey?,
        userID: String? = nil, toolID: String? = nil, verify: Bool = false
    ) throws -> Exporter.Report {
        try Exporter(
            database: database,
            options: Exporter.Options(
                output: path, format: format, keys: keys, masterKey: master,
                passphrase: keys == .sealed ? SnapshotFixtures.passphrase() : nil,
                sealingCost: SnapshotFixtures.cheapSealing, userID: userID, toolID: toolID, verify: verify, jobs: 2)
        ).run()
    }

    package static func write(_ text: String, _ folder: TemporaryFolder, _ name: String = "in.csv") throws -> String {
        let path = folder.path(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    package static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }
}

/// A migrated `user_tool_configs` of either engine that tests write and read the way the
/// application does: what lets one snapshot test run on both (`EngineSnapshots` drives the
/// library through `database`).
package protocol ToolConfigTestDatabase: AnyObject {
    var database: any Database { get }
    /// Where it is, for another session (the application's) or the command line.
    var location: DatabaseLocation { get }
    func insert(
        _ userID: String, _ toolID: String, enabled: Bool, key: String?, master: MasterKey, createdAt: Int64, updatedAt: Int64) throws
    /// Every column of every row and the id counter: what a write that fails must leave as it was.
    func dump() throws -> [String]
    func plainRows(_ master: MasterKey) throws -> [SnapshotFixtures.PlainRow]
    func drop()
}

extension SnapshotFixtures.SQLiteFile: ToolConfigTestDatabase {
    package var database: any Database { connection }
    package var location: DatabaseLocation { .sqlite(path: path) }
    package func drop() {}
}

extension PostgresToolConfigDatabase: ToolConfigTestDatabase {
    package var database: any Database { connection }
    package var location: DatabaseLocation { .postgres(url) }
}

extension ToolConfigTestDatabase {
    /// The rows of a query on `database`'s own connection (its temporary tables included), as text.
    package func textRows(_ sql: String) throws -> [[String?]] { try ToolConfigTestSupport.textRows(database, sql) }

    /// user_id/tool_id -> (plaintext under `master`, enabled) of every row.
    package func pairs(under master: MasterKey) throws -> [String: ApplicationRow] {
        Dictionary(
            uniqueKeysWithValues: try plainRows(master).map {
                ("\($0.userID)/\($0.toolID)", ApplicationRow(plaintext: $0.key, enabled: $0.enabled ? 1 : 0))
            })
    }
}

/// The application on a session of its own, on either engine: short autocommitted writes, in
/// SQL that both take (the values are the test's own, inlined).
package struct ApplicationSession {
    package let database: any Database
    package let master: MasterKey

    package init(_ location: DatabaseLocation, master: MasterKey) throws {
        database = try location.open(mode: .readWrite, busyTimeout: .seconds(5))
        self.master = master
    }

    package func insert(_ user: String, _ tool: String, key plaintext: String) throws {
        let secret = try SecretCipher.encrypt(plaintext, masterKey: master)
        try database.execute(
            """
            INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
            VALUES ('\(user)', '\(tool)', true, '\(secret.encryptedAPIKey)', '\(secret.salt)', '\(secret.nonce)', 1800000000, 1800000000)
            """, context: "the application's insert")
    }

    package func flip(_ id: Int64) throws {
        try database.execute("UPDATE user_tool_configs SET enabled = NOT enabled WHERE id = \(id)", context: "the application's flip")
    }

    package func delete(_ id: Int64) throws {
        try database.execute("DELETE FROM user_tool_configs WHERE id = \(id)", context: "the application's delete")
    }
}

package enum ToolConfigTestDatabases {
    /// A new one of `engine` (an SQLite file `name` in `folder`); `drop()` in a `defer`.
    package static func make(_ engine: DatabaseEngine, _ folder: TemporaryFolder, _ name: String = "t.db") throws
        -> any ToolConfigTestDatabase
    {
        engine == .sqlite ? try SnapshotFixtures.SQLiteFile(folder, name) : try PostgresToolConfigDatabase()
    }
}
