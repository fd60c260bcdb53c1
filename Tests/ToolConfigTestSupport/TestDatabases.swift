import Foundation
import Testing
import ToolConfigKit

// The databases the suites start from, built in one place.

/// A new SQLite database at `path` (or the existing one there), migrated up to 0007, holding a
/// keyless row for each (user_id, tool_id) of `rows`, enabled, created at 1 and updated at 2.
@discardableResult
package func migratedDatabase(at path: String, rows: [(String, String)] = []) throws -> SQLiteConnection {
    let connection = try SQLiteConnection(path: path, mode: .readWriteCreate)
    _ = try Migrator(database: connection, migrations: try .embedded()).up()
    if !rows.isEmpty {
        try connection.writeTransaction {
            let insert = try connection.prepare(
                "INSERT INTO user_tool_configs (user_id, tool_id, enabled, created_at, updated_at) VALUES (?1, ?2, 1, 1, 2)")
            for (user, tool) in rows { try insert.run([.text(user), .text(tool)]) }
        }
    }
    return connection
}

/// A database as the application leaves it before 0007: its own tables (api_model_aliases with
/// encrypted keys) and a sqlx ledger with versions 1 to 6 that have no file in toolcfg's folder.
package func makeApplicationDatabase(at path: String) throws {
    let connection = try SQLiteConnection(path: path, mode: .readWriteCreate)
    try connection.migrationStore().createLedgerIfMissing()
    try connection.execute(
        """
        CREATE TABLE api_model_aliases (
            id TEXT PRIMARY KEY,
            api_format TEXT NOT NULL DEFAULT 'openai',
            base_url TEXT NOT NULL,
            models_json TEXT NOT NULL,
            encrypted_api_key TEXT NOT NULL,
            salt TEXT NOT NULL,
            nonce TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE app_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE downloads (id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL);
        INSERT INTO downloads (url) VALUES ('https://example.invalid/model.gguf');
        """)
    let master = try key(TestMasterKeys.valid)
    let insert = try connection.prepare(
        "INSERT INTO api_model_aliases VALUES (?1, 'openai', 'https://api.example.invalid/v1', '[]', ?2, ?3, ?4, 1700000000, 1700000000)")
    for index in 1...3 {
        let secret = try SecretCipher.encrypt("sk-alias-\(index)", masterKey: master)
        try insert.run([.text("alias-\(index)"), .text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)])
    }
    let ledger = try connection.prepare(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES (?1, ?2, "
            + "'2025-01-0' || ?1 || ' 10:00:00', 1, ?3, 1000)"
    )
    for version in Int64(1)...6 {
        try ledger.run([.integer(version), .text("app migration \(version)"), .blob(Digest.sha384(Array("app \(version)".utf8)))])
    }
}

/// A database as the application leaves it (api_model_aliases with NOT NULL triples, its ledger
/// 1..6) migrated up to 0007, with user_tool_configs rows; every plaintext is remembered by
/// "table/id" so a test can check that rotation kept them.
package final class KeyedDatabase {
    package static let aliases = "api_model_aliases"
    package static let configs = "user_tool_configs"

    package let path: String
    /// "table/id" -> plaintext, for the rows that have a key.
    package private(set) var plaintexts: [String: String] = [:]
    /// Rows with a key, by table.
    package private(set) var keyed: [String: Int] = [:]

    package var keyedTotal: Int { keyed.values.reduce(0, +) }

    /// Encrypts with toolcfg's own cipher, on two threads.
    package static func swiftEncryptor(_ master: MasterKey) -> ([String]) throws -> [StoredSecret] {
        { plaintexts in
            let slots = UnsafeMutableBufferPointer<StoredSecret?>.allocate(capacity: plaintexts.count)
            slots.initialize(repeating: nil)
            defer {
                _ = slots.deinitialize()
                slots.deallocate()
            }
            nonisolated(unsafe) let output = slots
            DispatchQueue.concurrentPerform(iterations: 2) { half in
                for index in stride(from: half, to: plaintexts.count, by: 2) {
                    output[index] = try? SecretCipher.encrypt(plaintexts[index], masterKey: master)
                }
            }
            return try slots.map { try #require($0) }
        }
    }

    /// Encrypts with the independent implementation (scripts/peers/crypto_peer.py, Python cryptography).
    package static func peerEncryptor(_ master: MasterKey) -> ([String]) throws -> [StoredSecret] {
        { plaintexts in
            let result = try cryptoPeer("encrypt", ["master_key": master.base64Text, "plaintexts": plaintexts]) as? [[String: String]]
            let triples = try #require(result)
            try #require(triples.count == plaintexts.count)
            return triples.map { StoredSecret(encryptedAPIKey: $0["encrypted_api_key"]!, salt: $0["salt"]!, nonce: $0["nonce"]!) }
        }
    }

    /// `aliases` (at least 3) api_model_aliases rows and `rows` user_tool_configs rows with ids
    /// 1...rows, all keyed under `master` except the user_tool_configs ids for which `noKey` holds.
    package init(
        at path: String, master: MasterKey, aliases: Int = 3, rows: Int, noKey: (Int) -> Bool = { _ in false },
        plaintext: (String, Int) -> String = KeyedDatabase.defaultPlaintext,
        encrypt: (([String]) throws -> [StoredSecret])? = nil
    ) throws {
        precondition(aliases >= 3)
        self.path = path
        try makeApplicationDatabase(at: path)
        let connection = try migratedDatabase(at: path)
        defer { connection.close() }

        let aliasPlaintexts = (1...aliases).map { plaintext(Self.aliases, $0) }
        let configIDs = (0..<rows).map { $0 + 1 }
        let keyedIDs = configIDs.filter { !noKey($0) }
        let configPlaintexts = keyedIDs.map { plaintext(Self.configs, $0) }
        let all = aliasPlaintexts + configPlaintexts
        let secrets = try (encrypt ?? Self.swiftEncryptor(master))(all)

        try connection.writeTransaction {
            // makeApplicationDatabase's three aliases are re-encrypted under `master`.
            let updateAlias = try connection.prepare(
                "UPDATE api_model_aliases SET encrypted_api_key = ?2, salt = ?3, nonce = ?4 WHERE id = ?1")
            let insertAlias = try connection.prepare(
                "INSERT INTO api_model_aliases VALUES (?1, 'openai', 'https://api.example.invalid/v1', '[]', ?2, ?3, ?4, 1700000000, "
                    + "1700000000)"
            )
            for index in 1...aliases {
                let secret = secrets[index - 1]
                try (index <= 3 ? updateAlias : insertAlias).run([
                    .text("alias-\(index)"), .text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)
                ])
                plaintexts["\(Self.aliases)/alias-\(index)"] = aliasPlaintexts[index - 1]
            }
            let insert = try connection.prepare(
                """
                INSERT INTO user_tool_configs (id, user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1700000000 + ?1, 1700000100 + ?1)
                """)
            var next = aliases
            for id in configIDs {
                var values: [SQLiteStatement.Value] = [
                    .integer(Int64(id)), .text("user-\(id / 3)"), .text("tool-\(id % 3)"), .integer(Int64(id % 2))
                ]
                if noKey(id) {
                    values += [.null, .null, .null]
                } else {
                    let secret = secrets[next]
                    plaintexts["\(Self.configs)/\(id)"] = all[next]
                    values += [.text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)]
                    next += 1
                }
                try insert.run(values)
            }
        }
        keyed = [Self.aliases: aliases, Self.configs: keyedIDs.count]
    }

    package static func defaultPlaintext(_ table: String, _ index: Int) -> String {
        "sk-\(table == aliases ? "alias" : "tool")-\(index)-\(Digest.hex(SecureRandom.bytes(12)))"
    }

    package func connection(_ mode: SQLiteConnection.OpenMode = .readWrite) throws -> SQLiteConnection {
        try SQLiteConnection(path: path, mode: mode)
    }
}
