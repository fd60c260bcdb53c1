import Foundation
import Testing
import ToolConfigKit

/// A keyed database of either engine behind one face, for the rotation tests that run on both
/// (`@Test(arguments: ScratchDatabase.engines)`): `KeyedDatabase` (an SQLite file as the
/// application leaves it) or `PostgresKeyedDatabase` (its PostgreSQL fixture), each with
/// `aliases` api_model_aliases rows ("alias-N") and `rows` user_tool_configs rows (ids 1...rows).
package final class KeyedTestDatabase {
    package let engine: DatabaseEngine
    private let sqlite: KeyedDatabase?
    private let postgres: PostgresKeyedDatabase?

    package init(
        _ engine: DatabaseEngine, in folder: TemporaryFolder, master: MasterKey, aliases: Int = 3, rows: Int,
        noKey: (Int) -> Bool = { _ in false }, plaintext: (String, Int) -> String = KeyedDatabase.defaultPlaintext,
        encrypt: (([String]) throws -> [StoredSecret])? = nil
    ) throws {
        self.engine = engine
        switch engine {
        case .sqlite:
            sqlite = try KeyedDatabase(
                at: folder.path("app.db"), master: master, aliases: aliases, rows: rows, noKey: noKey, plaintext: plaintext,
                encrypt: encrypt)
            postgres = nil
        case .postgresql:
            sqlite = nil
            postgres = try PostgresKeyedDatabase(
                master: master, aliases: aliases, rows: rows, noKey: noKey, plaintext: plaintext, encrypt: encrypt)
        }
    }

    package func drop() { postgres?.drop() }

    /// What `--db` takes.
    package var argument: String { sqlite?.path ?? postgres!.url.textWithPassword }
    /// "table/id" -> plaintext, for the rows that have a key.
    package var plaintexts: [String: String] { sqlite?.plaintexts ?? postgres!.plaintexts }
    /// Rows with a key, by table.
    package var keyed: [String: Int] { sqlite?.keyed ?? postgres!.keyed }

    /// The test server's session on PostgreSQL, for checks of the server's own catalog.
    package var postgresConnection: PostgresConnection? { postgres?.connection }

    /// The live application on this database: its rows as built, keys under `master`.
    package func application(master: MasterKey, rows: Int) throws -> any ApplicationStandIn {
        if let sqlite {
            return try ApplicationWriter(path: sqlite.path, master: master, rows: ApplicationWriter.model(of: sqlite, rows: rows))
        }
        return try PostgresApplication(postgres!, master: master, rows: rows)
    }

    package func open() throws -> any Database {
        let location: DatabaseLocation = sqlite.map { .sqlite(path: $0.path) } ?? .postgres(postgres!.url)
        return try location.open(mode: .readWrite, busyTimeout: .seconds(10))
    }

    /// Everything a rotation that fails must leave as it was: SQLite's schema and every table's
    /// rows; on PostgreSQL every column of both tables and the id sequence. Without the triples:
    /// what one that commits must leave as it was.
    package func state(withTriples: Bool = true) throws -> [String] {
        if let sqlite {
            let state = try RotationFixtures.logicalState(
                sqlite.path, without: withTriples ? [] : ["encrypted_api_key", "salt", "nonce"])
            return state.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        }
        return try postgres!.dump(withTriples: withTriples)
    }

    /// The stored triples of `table` by id, in key order, as an independent reader sees them:
    /// the test's own SQLite connection, or psycopg.
    package func triples(_ table: String) throws -> [(id: String, secret: StoredSecret?)] {
        if let sqlite {
            let connection = try sqlite.connection(.readOnly)
            defer { connection.close() }
            return try RotationFixtures.storedTriples(connection, table)
        }
        let rows = try #require(
            try postgresPeer("read", postgres!.url, "SELECT id::text, encrypted_api_key, salt, nonce FROM \(table) ORDER BY id") as? [[Any]]
        )
        return rows.map { row in
            let parts = row.dropFirst().map { $0 as? String }
            let secret = parts.allSatisfy { $0 != nil } ? StoredSecret(encryptedAPIKey: parts[0]!, salt: parts[1]!, nonce: parts[2]!) : nil
            return (row[0] as? String ?? "", secret)
        }
    }

    /// Sets one column of the row of `table` whose id reads `id`; nil writes NULL.
    package func set(_ table: String, id: String, _ column: String, to value: String?) throws {
        if let sqlite {
            try RotationFixtures.update(sqlite.path, table, id: id, "\(column) = ?2", [value.map { .text($0) } ?? .null])
            return
        }
        let result = try postgres!.connection.query(
            "UPDATE \(table) SET \(column) = $2 WHERE id::text = $1", [.text(id), value.map { .text($0) } ?? .null])
        #expect(result.affectedRows == 1)
    }

    package func secret(_ table: String, id: String) throws -> StoredSecret? {
        try triples(table).first { $0.id == id }?.secret
    }

    /// The row id a report names for the row: SQLite's rowid; on PostgreSQL an integer key's
    /// value, and nil for a text key (its stand-in is a position within one transaction).
    package func rowID(_ table: String, id: String) throws -> Int64? {
        if let sqlite {
            return try SQLiteConnection(path: sqlite.path, mode: .readOnly).queryInt64(
                "SELECT rowid FROM \(table) WHERE id = ?1", [.text(id)])
        }
        return table == KeyedDatabase.configs ? Int64(id) : nil
    }

    /// What verify-keys finds, in-process, with both keys; on SQLite after an integrity check
    /// (the open recovers a killed writer's WAL first, as the next run would).
    package func verify(old: MasterKey, new: MasterKey) throws -> KeyVerifier.Report {
        if let sqlite {
            let connection = try sqlite.connection()
            defer { connection.close() }
            #expect(try connection.queryText("PRAGMA integrity_check") == "ok")
        }
        return try KeyVerifier(database: try open(), masterKey: old, newKey: new, jobs: RotationFixtures.inProcessJobs).run()
    }

    /// Every keyed row opens under `key` to its plaintext.
    package func expectPlaintexts(under key: MasterKey, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if let sqlite { return try RotationFixtures.expectPlaintexts(sqlite, under: key, sourceLocation: sourceLocation) }
        try postgres!.expectPlaintexts(under: key, sourceLocation: sourceLocation)
    }
}
