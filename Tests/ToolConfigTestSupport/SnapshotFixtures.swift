import Foundation
import Testing
import ToolConfigKit

/// What the snapshot tests share: sample rows with every awkward value, a migrated SQLite file
/// with its own insert and dump, and source files written independently of the library's writers.
package enum SnapshotFixtures {
    /// One record as the tests write it into a source file (plaintext key) and expect back.
    package struct Sample: Sendable {
        package var userID: String
        package var toolID: String
        package var enabled: Bool
        package var createdAt: Int64
        package var updatedAt: Int64
        package var key: String?
    }

    /// Values with unicode (emoji with ZWJ and variation selectors, CJK, Cyrillic, NFD and NFC twins),
    /// commas, double quotes, CR/LF and bare CR, control characters and leading/trailing spaces in
    /// user_id, tool_id and api_key; one row without a key; the timestamp bounds 0 and year 9999.
    package static let samples: [Sample] = [
        Sample(
            userID: "  alice  ", toolID: "builtin-exa-web-search", enabled: true,
            createdAt: 1_700_000_000, updatedAt: 1_700_000_100, key: "sk-live, \"quoted\" key "),
        Sample(
            userID: "Борис Годунов", toolID: "工具/搜索", enabled: false,
            createdAt: 1_600_000_000, updatedAt: 1_600_000_001, key: "ключ\r\nline two\nline three"),
        Sample(
            userID: "user,with,commas", toolID: "tool \"quoted\"", enabled: true,
            createdAt: 0, updatedAt: 253_402_300_799, key: "  🔑 emoji 🎉 key  "),
        Sample(
            userID: "multi\r\nline\nuser", toolID: " spaced tool ", enabled: false,
            createdAt: 1, updatedAt: 2, key: "carriage\rreturn,\"and\" 中文密钥"),
        Sample(
            userID: "e\u{301}-decomposed", toolID: "\u{e9}-precomposed", enabled: true,
            createdAt: 1_234_567_890, updatedAt: 1_234_567_891, key: nil),
        // Canonically equivalent to the row above (NFC instead of NFD) but other bytes: another row.
        Sample(
            userID: "\u{e9}-decomposed", toolID: "\u{e9}-precomposed", enabled: false,
            createdAt: 7, updatedAt: 8, key: "NFC twin"),
        Sample(
            userID: "👩‍💻 dev", toolID: "🛠️", enabled: false,
            createdAt: 42, updatedAt: 43, key: "\ttab\tkey\u{1}ctl \"\"")
    ]

    package static let now: Int64 = 1_750_000_000
    package static let cheapSealing = Argon2id.Parameters(memoryKiB: 8 * 1024, iterations: 1, lanes: 1)
    package static let passphraseText = "correct horse battery staple"
    package static func passphrase(_ text: String = passphraseText) -> SecureBytes { SecureBytes(Array(text.utf8)) }
    package static func master() throws -> MasterKey { try key(TestMasterKeys.valid) }

    /// A row as stored, with its key decrypted. Compared byte for byte (Swift's String equality
    /// would treat NFC and NFD as equal and hide a normalisation).
    package struct PlainRow: Equatable, CustomStringConvertible {
        package var id: Int64
        package var userID: String
        package var toolID: String
        package var enabled: Bool
        package var createdAt: Int64
        package var updatedAt: Int64
        package var key: String?

        package static func == (a: PlainRow, b: PlainRow) -> Bool {
            Array(a.userID.utf8) == Array(b.userID.utf8) && Array(a.toolID.utf8) == Array(b.toolID.utf8)
                && a.enabled == b.enabled && a.createdAt == b.createdAt && a.updatedAt == b.updatedAt
                && a.key.map { Array($0.utf8) } == b.key.map { Array($0.utf8) }
        }

        package var description: String {
            "(\(userID.debugDescription), \(toolID.debugDescription), \(enabled), \(createdAt), \(updatedAt), "
                + "\(key?.debugDescription ?? "no key"))"
        }

        package init(id: Int64 = 0, userID: String, toolID: String, enabled: Bool, createdAt: Int64, updatedAt: Int64, key: String?) {
            self.id = id
            self.userID = userID
            self.toolID = toolID
            self.enabled = enabled
            self.createdAt = createdAt
            self.updatedAt = updatedAt
            self.key = key
        }

        package init(_ sample: Sample) {
            self.init(
                userID: sample.userID, toolID: sample.toolID, enabled: sample.enabled,
                createdAt: sample.createdAt, updatedAt: sample.updatedAt, key: sample.key)
        }

        package func withoutKey() -> PlainRow { var copy = self; copy.key = nil; return copy }
    }

    package static func sorted(_ rows: [PlainRow]) -> [PlainRow] {
        rows.sorted { a, b in
            Array(a.userID.utf8) != Array(b.userID.utf8)
                ? Array(a.userID.utf8).lexicographicallyPrecedes(Array(b.userID.utf8))
                : Array(a.toolID.utf8).lexicographicallyPrecedes(Array(b.toolID.utf8))
        }
    }

    /// A fresh migrated database.
    package final class SQLiteFile {
        package let path: String
        package let connection: SQLiteConnection

        package init(_ folder: TemporaryFolder, _ name: String = "t.db") throws {
            path = folder.path(name)
            connection = try migratedDatabase(at: path)
        }

        /// Inserts a row directly, the way the application would store it.
        package func insert(
            _ userID: String, _ toolID: String, enabled: Bool, key: String?, master: MasterKey,
            createdAt: Int64 = 1000, updatedAt: Int64 = 2000
        ) throws {
            let secret = try key.map { try SecretCipher.encrypt($0, masterKey: master) }
            let statement = try connection.prepare(
                """
                INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                """)
            try statement.run([
                .text(userID), .text(toolID), .integer(enabled ? 1 : 0),
                secret.map { .text($0.encryptedAPIKey) } ?? .null, secret.map { .text($0.salt) } ?? .null,
                secret.map { .text($0.nonce) } ?? .null, .integer(createdAt), .integer(updatedAt)
            ])
        }

        /// Every column of every row (type and bytes), and the AUTOINCREMENT counter.
        package func dump() throws -> [String] {
            let columns = ["id", "user_id", "tool_id", "enabled", "encrypted_api_key", "salt", "nonce", "created_at", "updated_at"]
            let expression = columns.map { "typeof(\($0)) || ':' || quote(CAST(\($0) AS BLOB))" }.joined(separator: " || '|' || ")
            var lines: [String] = []
            let rows = try connection.prepare("SELECT \(expression) FROM user_tool_configs ORDER BY id")
            while try rows.step() { lines.append(rows.text(0) ?? "NULL ROW") }
            let sequence = try connection.prepare("SELECT name || '=' || seq FROM sqlite_sequence ORDER BY name")
            while try sequence.step() { lines.append("sequence " + (sequence.text(0) ?? "")) }
            return lines
        }

        /// The stored triples by (user_id, tool_id), as text.
        package func triples() throws -> [String] {
            var out: [String] = []
            let statement = try connection.prepare(
                "SELECT hex(user_id), hex(tool_id), encrypted_api_key, salt, nonce FROM user_tool_configs ORDER BY user_id, tool_id")
            while try statement.step() {
                out.append((0..<5).map { statement.text($0) ?? "NULL" }.joined(separator: "|"))
            }
            return out
        }

        /// Rows with keys decrypted, sorted by (user_id, tool_id) bytes.
        package func plainRows(_ master: MasterKey) throws -> [PlainRow] {
            var rows: [PlainRow] = []
            let statement = try connection.prepare(
                "SELECT id, user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at FROM user_tool_configs")
            while try statement.step() {
                var key: String?
                if let secret = ToolConfigTable.secret(statement, first: 4) {
                    key = try SecretCipher.decrypt(secret, masterKey: master)
                }
                rows.append(
                    PlainRow(
                        id: statement.int64(0), userID: statement.text(1) ?? "", toolID: statement.text(2) ?? "",
                        enabled: statement.int64(3) != 0, createdAt: statement.int64(7), updatedAt: statement.int64(8), key: key))
            }
            return SnapshotFixtures.sorted(rows)
        }
    }

    // MARK: - Writing test input (independently of the library's writers)

    package static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    package static func jsonObject(_ sample: Sample) -> String {
        var members = [
            "\"user_id\":" + jsonString(sample.userID), "\"tool_id\":" + jsonString(sample.toolID),
            "\"enabled\":\(sample.enabled)", "\"created_at\":\(sample.createdAt)", "\"updated_at\":\(sample.updatedAt)"
        ]
        if let key = sample.key { members.append("\"api_key\":" + jsonString(key)) }
        return "{" + members.joined(separator: ", ") + "}"
    }

    /// A plaintext onboarding file: CSV with CRLF and a column order unlike toolcfg's, a bare
    /// JSON array laid out over several lines, or bare JSON Lines.
    package static func sourceFile(_ samples: [Sample], _ format: SnapshotFormat) -> String {
        switch format {
        case .csv:
            var lines = ["tool_id,api_key,updated_at,user_id,enabled,created_at"]
            for (index, s) in samples.enumerated() {
                let enabled = s.enabled ? (index % 2 == 0 ? "true" : "1") : (index % 2 == 0 ? "FALSE" : "0")
                lines.append(
                    [csvField(s.toolID), s.key.map(csvField) ?? "", "\(s.updatedAt)", csvField(s.userID), enabled, "\(s.createdAt)"]
                        .joined(separator: ","))
            }
            return lines.joined(separator: "\r\n") + "\r\n"
        case .json:
            return "[\n  " + samples.map(jsonObject).joined(separator: ",\n  ") + "\n]\n"
        case .jsonl:
            return samples.map(jsonObject).joined(separator: "\n") + "\n"
        }
    }

    package static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    package static func importFile(
        _ db: SQLiteFile, _ path: String, _ format: SnapshotFormat, master: MasterKey?,
        passphrase: SecureBytes? = nil, onConflict: Importer.ConflictPolicy = .update,
        dryRun: Bool = false, maxErrors: Int = 1
    ) throws -> Importer.Report {
        try Importer(
            database: db.connection,
            options: Importer.Options(
                input: path, format: format, onConflict: onConflict, dryRun: dryRun, maxErrors: maxErrors,
                masterKey: master, passphrase: passphrase, now: now)
        ).run()
    }

    package static func export(
        _ db: SQLiteFile, to path: String, _ format: SnapshotFormat, keys: KeyMode, master: MasterKey?,
        passphrase: SecureBytes? = passphrase(), overwrite: Bool = false, verify: Bool = false
    ) throws -> Exporter.Report {
        try Exporter(
            database: db.connection,
            options: Exporter.Options(
                output: path, format: format, keys: keys, masterKey: master, passphrase: keys == .sealed ? passphrase : nil,
                sealingCost: cheapSealing, overwrite: overwrite, verify: verify)
        ).run()
    }

    package static func permissions(_ path: String) throws -> Int? {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
    }

    /// The first SnapshotError of what an import threw.
    package static func firstSnapshotError(_ error: (any Error)?) -> SnapshotError? {
        (error as? SnapshotError) ?? (error as? SnapshotErrors)?.errors.first
    }
}
