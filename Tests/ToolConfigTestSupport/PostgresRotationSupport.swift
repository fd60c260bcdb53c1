import Foundation
import Testing
import ToolConfigKit

/// The application's PostgreSQL database (fixtures/postgres/app-after-0007.sql, migrated) with
/// `aliases` api_model_aliases rows (keyed by text: "alias-N") and `rows` user_tool_configs rows
/// (ids 1...rows, enabled = id % 2), keyed under `master` but for the configs where `noKey` holds.
package final class PostgresKeyedDatabase {
    package let base: PostgresToolConfigDatabase
    package var url: PostgresURL { base.url }
    package var connection: PostgresConnection { base.connection }
    /// "table/id" -> plaintext, for the rows that have a key.
    package private(set) var plaintexts: [String: String] = [:]
    /// Rows with a key, by table.
    package private(set) var keyed: [String: Int] = [:]

    package init(
        master: MasterKey, aliases: Int = 3, rows: Int, noKey: (Int) -> Bool = { _ in false },
        plaintext: (String, Int) -> String = KeyedDatabase.defaultPlaintext, encrypt: (([String]) throws -> [StoredSecret])? = nil
    ) throws {
        base = try PostgresToolConfigDatabase(fixture: "app-after-0007.sql")
        let encrypt = encrypt ?? KeyedDatabase.swiftEncryptor(master)
        try connection.execute("DELETE FROM api_model_aliases; DELETE FROM user_tool_configs")
        let aliasPlaintexts = (1...aliases).map { plaintext(KeyedDatabase.aliases, $0) }
        let keyedIDs = (1...rows).filter { !noKey($0) }
        let configPlaintexts = keyedIDs.map { plaintext(KeyedDatabase.configs, $0) }
        let secrets = try encrypt(aliasPlaintexts + configPlaintexts)
        try connection.copyIn(
            "COPY api_model_aliases (id, base_url, models_json, encrypted_api_key, salt, nonce, created_at, updated_at) FROM STDIN"
        ) { copy in
            for (index, secret) in secrets.prefix(aliases).enumerated() {
                try copy.appendRow([
                    "alias-\(index + 1)", "https://a\(index).example.invalid/v1", "[]", secret.encryptedAPIKey, secret.salt, secret.nonce,
                    "1700000000", "1700000001"
                ])
                plaintexts["\(KeyedDatabase.aliases)/alias-\(index + 1)"] = aliasPlaintexts[index]
            }
        }
        var secretOf: [Int: StoredSecret] = [:]
        for (id, secret) in zip(keyedIDs, secrets.dropFirst(aliases)) { secretOf[id] = secret }
        try connection.copyIn(
            "COPY user_tool_configs (id, user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at) FROM STDIN"
        ) { copy in
            for id in 1...rows {
                let secret = secretOf[id]
                try copy.appendRow([
                    String(id), "user-\(id)", "tool-\(id % 5)", id % 2 == 1 ? "t" : "f", secret?.encryptedAPIKey, secret?.salt,
                    secret?.nonce, "1700000000", "1700000002"
                ])
            }
        }
        try connection.execute("SELECT setval('user_tool_configs_id_seq', \(rows))")
        for (id, plaintext) in zip(keyedIDs, configPlaintexts) { plaintexts["\(KeyedDatabase.configs)/\(id)"] = plaintext }
        keyed = [KeyedDatabase.aliases: aliases, KeyedDatabase.configs: keyedIDs.count]
    }

    package func drop() { base.drop() }

    /// Every column of every row of both tables, in key order, as text: what a rotation that
    /// changes nothing must leave as it was (and one that commits must leave but for the triples).
    package func dump(withTriples: Bool = true) throws -> [String] {
        func rows(_ sql: String) throws -> [String] {
            let rows = try connection.query(sql)
            return (0..<rows.count).map { rows.text($0, 0) ?? "" }
        }
        let triple = withTriples ? "quote_nullable(encrypted_api_key), quote_nullable(salt), quote_nullable(nonce)" : "''"
        return try rows(
            "SELECT concat_ws('|', id, api_format, base_url, models_json, quote_nullable(prefix), \(triple), created_at, updated_at) "
                + "FROM api_model_aliases ORDER BY id"
        )
            + rows(
                "SELECT concat_ws('|', id, user_id, tool_id, enabled, \(triple), created_at, updated_at) FROM user_tool_configs ORDER BY id"
            )
            + rows("SELECT 'sequence ' || last_value FROM user_tool_configs_id_seq")
    }

    /// How many keyed rows of each table open under each key (KeyVerifier through a session of its own).
    package func counts(old: MasterKey, new: MasterKey) throws -> [String: (old: Int, new: Int, neither: Int)] {
        let reader = try base.scratch.connect()
        defer { reader.close() }
        let report = try KeyVerifier(database: reader, masterKey: old, newKey: new, jobs: 2).run()
        return Dictionary(
            uniqueKeysWithValues: report.groups.map {
                ($0.table, ($0.underMasterKey, $0.underNewMasterKey, $0.underNeither + $0.malformed))
            })
    }

    /// True when every keyed row of both tables opens under `key`, to its plaintext.
    package func expectPlaintexts(under key: MasterKey, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let rows = try connection.query(
            """
            SELECT 'api_model_aliases/' || id, encrypted_api_key, salt, nonce FROM api_model_aliases
            UNION ALL SELECT 'user_tool_configs/' || id, encrypted_api_key, salt, nonce FROM user_tool_configs
                      WHERE encrypted_api_key IS NOT NULL
            """)
        var opened: [String: String] = [:]
        for row in 0..<rows.count {
            let secret = try #require(ToolConfigTable.secret(rows, row, first: 1))
            opened[rows.text(row, 0) ?? ""] = (try? SecretCipher.decrypt(secret, masterKey: key)) ?? "<does not open>"
        }
        #expect(
            opened == plaintexts, "\(opened.filter { plaintexts[$0.key] != $0.value }.keys.sorted().prefix(5))",
            sourceLocation: sourceLocation)
    }
}

/// Stands in for the live application on PostgreSQL: its own session with a 5 s lock_timeout,
/// autocommit writes to user_tool_configs, keys under the master key it runs on, and a model of
/// what it wrote.
package final class PostgresApplication: ApplicationStandIn, @unchecked Sendable {
    package let connection: PostgresConnection
    package let master: MasterKey
    package var rows: [Int64: ApplicationRow]
    package var writes = 0
    package var failures: [String] = []
    package var longestWait: Duration = .zero
    private var next = 0

    package init(_ database: PostgresKeyedDatabase, master: MasterKey, rows: Int) throws {
        connection = try database.base.scratch.connect(.init(lockTimeout: .seconds(5)))
        self.master = master
        self.rows = ApplicationRow.model(database.plaintexts, rows: rows)
    }

    /// One statement, timed; the rows it touched.
    private func write(_ sql: String, _ parameters: [PostgresValue]) -> PostgresRows? {
        let clock = ContinuousClock()
        let started = clock.now
        do {
            let result = try connection.query(sql, parameters)
            longestWait = max(longestWait, clock.now - started)
            writes += 1
            return result
        } catch {
            failures.append("\(error)")
            return nil
        }
    }

    private func uniquePlaintext(_ kind: String) -> String {
        next += 1
        return "sk-app-\(kind)-\(next)-\(Digest.hex(SecureRandom.bytes(6)))"
    }

    private static func triple(_ secret: StoredSecret?) -> [PostgresValue] {
        [secret.map { .text($0.encryptedAPIKey) } ?? .null, secret.map { .text($0.salt) } ?? .null, secret.map { .text($0.nonce) } ?? .null]
    }

    package func insert(under key: MasterKey? = nil) {
        let plaintext = uniquePlaintext("insert")
        guard let secret = try? SecretCipher.encrypt(plaintext, masterKey: key ?? master) else { return failures.append("encrypt") }
        if let inserted = write(
            """
            INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
            VALUES ($1, 'app-tool', true, $2, $3, $4, 1800000000, 1800000000) RETURNING id
            """, [.text("app-user-\(next)")] + Self.triple(secret)), let id = try? inserted.int64(0, 0)
        {
            rows[id] = ApplicationRow(plaintext: plaintext, enabled: 1)
        }
    }

    package func setKey(_ id: Int64, under key: MasterKey? = nil, clear: Bool = false) {
        let plaintext = clear ? nil : uniquePlaintext("key")
        let secret = plaintext.flatMap { try? SecretCipher.encrypt($0, masterKey: key ?? master) }
        if let updated = write(
            "UPDATE user_tool_configs SET encrypted_api_key = $2, salt = $3, nonce = $4, updated_at = updated_at + 1 WHERE id = $1",
            [.integer(id)] + Self.triple(secret)), updated.affectedRows == 1
        {
            rows[id]?.plaintext = plaintext
        }
    }

    package func flip(_ id: Int64) {
        if let updated = write("UPDATE user_tool_configs SET enabled = NOT enabled WHERE id = $1", [.integer(id)]),
            updated.affectedRows == 1, let row = rows[id]
        {
            rows[id]?.enabled = 1 - row.enabled
        }
    }

    package func delete(_ id: Int64) {
        if write("DELETE FROM user_tool_configs WHERE id = $1", [.integer(id)]) != nil { rows[id] = nil }
    }

    package func insertKeyed() { insert() }

    /// Every row of user_tool_configs is the model's, its key opening under `key` to the model's plaintext.
    package func expectTable(under key: MasterKey, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try connection.query("SELECT id, enabled, encrypted_api_key, salt, nonce FROM user_tool_configs")
        var stored: [Int64: ApplicationRow] = [:]
        for row in 0..<result.count {
            let plaintext = ToolConfigTable.secret(result, row, first: 2).map {
                (try? SecretCipher.decrypt($0, masterKey: key)) ?? "<does not open>"
            }
            stored[try result.int64(row, 0) ?? 0] = ApplicationRow(plaintext: plaintext, enabled: try result.bool(row, 1) == true ? 1 : 0)
        }
        let wrong =
            rows.filter { stored[$0.key] != $0.value }.map { "id \($0.key)" }
            + stored.keys.filter { rows[$0] == nil }.map { "extra id \($0)" }
        #expect(
            wrong.isEmpty, "rows differing from what the application wrote: \(wrong.sorted().prefix(10))", sourceLocation: sourceLocation)
    }
}
