import Foundation
import Testing
import ToolConfigKit

/// What the rotation tests share: key files, the command's arguments and JSON report, the leak
/// check, and the stored triples and logical state of an SQLite file read independently of the
/// rotator.
package enum RotationFixtures {
    /// Threads for KeyRotator and KeyVerifier run inside the test process: the parallel path.
    package static let inProcessJobs = 2

    package static func keyFile(_ key: MasterKey, _ folder: TemporaryFolder, _ name: String) throws -> String {
        let path = folder.path(name)
        try Data((key.base64Text + "\n").utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    package static func rotateArguments(_ db: String, old: String, new: String) -> [String] {
        ["rotate", "--db", db, "--master-key-file", old, "--new-master-key-file", new]
    }

    package static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// Table reports of a JSON report by table name.
    package static func tables(_ report: [String: Any]) -> [String: [String: Any]] {
        let tables = report["groups"] as? [[String: Any]] ?? []
        return Dictionary(tables.map { ($0["table"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Names of the secrets found in `text`: each key's base64 (with and without padding, and
    /// its first 16 characters), its hex, each plaintext and the base64 of each plaintext. Never
    /// the values themselves, so a failure message does not spread them either.
    package static func leaks(
        in text: String, keys: [(String, MasterKey)], plaintexts: [String: String], rowKeys: [(String, SecureBytes)] = []
    )
        -> [String]
    {
        var found: [String] = []
        for (name, key) in keys {
            let base64 = key.base64Text
            let hex = key.material.withBytes { Digest.hex($0) }
            let forms = [
                ("base64", base64), ("unpadded base64", base64.replacingOccurrences(of: "=", with: "")),
                ("base64 prefix", String(base64.prefix(16))), ("hex", hex), ("hex prefix", String(hex.prefix(16)))
            ]
            for (form, value) in forms where text.contains(value) { found.append("\(name) (\(form))") }
        }
        for (name, plaintext) in plaintexts where plaintext.count >= 6 {
            if text.contains(plaintext) { found.append("plaintext of \(name)") }
            let encoded = Base64.encode(Array(plaintext.utf8)).replacingOccurrences(of: "=", with: "")
            if encoded.count >= 8, text.contains(String(encoded.dropLast(2))) { found.append("base64 of the plaintext of \(name)") }
        }
        for (name, rowKey) in rowKeys {
            let (hex, base64) = rowKey.withBytes { (Digest.hex($0), Base64.encode($0)) }
            if text.contains(hex) || text.contains(String(base64.prefix(16))) { found.append("row key of \(name)") }
        }
        return found
    }

    /// Every keyed row decrypts under `key` to the plaintext remembered for it.
    package static func expectPlaintexts(_ database: KeyedDatabase, under key: MasterKey, sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        let connection = try database.connection(.readOnly)
        var checked = 0
        for table in [KeyedDatabase.aliases, KeyedDatabase.configs] {
            for row in try Self.storedTriples(connection, table) {
                guard let secret = row.secret else {
                    #expect(
                        database.plaintexts["\(table)/\(row.id)"] == nil, "\(table)/\(row.id) lost its key", sourceLocation: sourceLocation)
                    continue
                }
                let plaintext = try? SecretCipher.decrypt(secret, masterKey: key)
                #expect(
                    plaintext != nil && plaintext == database.plaintexts["\(table)/\(row.id)"], "\(table)/\(row.id)",
                    sourceLocation: sourceLocation)
                checked += 1
            }
        }
        #expect(checked == database.keyedTotal, sourceLocation: sourceLocation)
    }

    /// Rewrites one row (found by its `id`, or another column) with a SQL assignment list.
    package static func update(
        _ path: String, _ table: String, id: String, by column: String = "id", _ assignments: String, _ values: [SQLiteStatement.Value] = []
    ) throws {
        let connection = try SQLiteConnection(path: path)
        defer { connection.close() }
        let statement = try connection.prepare("UPDATE \(quotedIdentifier(table)) SET \(assignments) WHERE CAST(\(column) AS TEXT) = ?1")
        try statement.run([.text(id)] + values)
        #expect(connection.changes == 1)
    }

    /// The stored triples of a table in rowid order, by id (as text).
    package static func storedTriples(_ connection: SQLiteConnection, _ table: String) throws -> [(id: String, secret: StoredSecret?)] {
        let statement = try connection.prepare(
            "SELECT CAST(id AS TEXT), encrypted_api_key, salt, nonce FROM \(quotedIdentifier(table)) ORDER BY rowid")
        var rows: [(id: String, secret: StoredSecret?)] = []
        while try statement.step() { rows.append((statement.text(0) ?? "", ToolConfigTable.secret(statement, first: 1))) }
        return rows
    }

    /// A digest of the schema (`SELECT * FROM sqlite_master`) and of every table's rows in rowid
    /// order, by name: equal states mean a logically unchanged database, and a difference names
    /// the table.
    package static func logicalState(_ path: String, without columns: Set<String> = []) throws -> [String: String] {
        let connection = try SQLiteConnection(path: path, mode: .readOnly)
        defer { connection.close() }
        func digest(_ sql: String) throws -> String {
            let statement = try connection.prepare(sql)
            var text = ""
            while try statement.step() {
                for column in 0..<statement.columnCount { text += String(reflecting: statement.value(column)) + "\u{1F}" }
                text += "\u{1E}"
            }
            return Digest.hex(Digest.sha256(Array(text.utf8)))
        }
        var state = ["sqlite_master": try digest("SELECT * FROM sqlite_master ORDER BY rowid")]
        let tables = try connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        var names: [String] = []
        while try tables.step() { names.append(tables.text(0) ?? "") }
        for name in names {
            var kept = "*"
            if !columns.isEmpty {
                let info = try connection.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                try info.bind([.text(name)])
                var names: [String] = []
                while try info.step() { names.append(info.text(0) ?? "") }
                kept = names.filter { !columns.contains($0) }.map(quotedIdentifier).joined(separator: ", ")
            }
            state[name] = try digest("SELECT rowid, \(kept) FROM \(quotedIdentifier(name)) ORDER BY rowid")
        }
        return state
    }
}
