import Foundation
import Testing
@testable import ToolConfigKit

/// Export and import of `user_tool_configs` snapshots (CSV, JSON, JSON Lines): round trips in every
/// key mode, a corpus of malformed files that must change nothing and name the line and field,
/// collected errors, dry runs, files written by Python, and the command-line surface.
@Suite("Snapshots")
struct SnapshotsTests {
    // MARK: - Fixtures

    /// One record as the tests write it into a source file (plaintext key) and expect back.
    struct Sample: Sendable {
        var userID: String
        var toolID: String
        var enabled: Bool
        var createdAt: Int64
        var updatedAt: Int64
        var key: String?
    }

    /// Values with unicode (emoji with ZWJ and variation selectors, CJK, Cyrillic, NFD and NFC twins),
    /// commas, double quotes, CR/LF and bare CR, control characters and leading/trailing spaces in
    /// user_id, tool_id and api_key; one row without a key; the timestamp bounds 0 and year 9999.
    static let samples: [Sample] = [
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

    static let now: Int64 = 1_750_000_000
    static let cheapSealing = Argon2id.Parameters(memoryKiB: 8 * 1024, iterations: 1, lanes: 1)
    static let passphraseText = "correct horse battery staple"
    static func passphrase(_ text: String = passphraseText) -> SecureBytes { SecureBytes(Array(text.utf8)) }
    static func master() throws -> MasterKey { try key(MasterKeyTests.valid) }

    /// A row as stored, with its key decrypted. Compared byte for byte (Swift's String equality
    /// would treat NFC and NFD as equal and hide a normalisation).
    struct PlainRow: Equatable, CustomStringConvertible {
        var id: Int64
        var userID: String
        var toolID: String
        var enabled: Bool
        var createdAt: Int64
        var updatedAt: Int64
        var key: String?

        static func == (a: PlainRow, b: PlainRow) -> Bool {
            Array(a.userID.utf8) == Array(b.userID.utf8) && Array(a.toolID.utf8) == Array(b.toolID.utf8)
                && a.enabled == b.enabled && a.createdAt == b.createdAt && a.updatedAt == b.updatedAt
                && a.key.map { Array($0.utf8) } == b.key.map { Array($0.utf8) }
        }

        var description: String {
            "(\(userID.debugDescription), \(toolID.debugDescription), \(enabled), \(createdAt), \(updatedAt), "
                + "\(key?.debugDescription ?? "no key"))"
        }

        init(id: Int64 = 0, userID: String, toolID: String, enabled: Bool, createdAt: Int64, updatedAt: Int64, key: String?) {
            self.id = id
            self.userID = userID
            self.toolID = toolID
            self.enabled = enabled
            self.createdAt = createdAt
            self.updatedAt = updatedAt
            self.key = key
        }

        init(_ sample: Sample) {
            self.init(
                userID: sample.userID, toolID: sample.toolID, enabled: sample.enabled,
                createdAt: sample.createdAt, updatedAt: sample.updatedAt, key: sample.key)
        }

        func withoutKey() -> PlainRow { var copy = self; copy.key = nil; return copy }
    }

    static func sorted(_ rows: [PlainRow]) -> [PlainRow] {
        rows.sorted { a, b in
            Array(a.userID.utf8) != Array(b.userID.utf8)
                ? Array(a.userID.utf8).lexicographicallyPrecedes(Array(b.userID.utf8))
                : Array(a.toolID.utf8).lexicographicallyPrecedes(Array(b.toolID.utf8))
        }
    }

    /// A fresh migrated database.
    final class Database {
        let path: String
        let connection: SQLiteConnection

        init(_ folder: TemporaryFolder, _ name: String = "t.db") throws {
            path = folder.path(name)
            connection = try migratedDatabase(at: path)
        }

        /// Inserts a row directly, the way the application would store it.
        func insert(
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
        func dump() throws -> [String] {
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
        func triples() throws -> [String] {
            var out: [String] = []
            let statement = try connection.prepare(
                "SELECT hex(user_id), hex(tool_id), encrypted_api_key, salt, nonce FROM user_tool_configs ORDER BY user_id, tool_id")
            while try statement.step() {
                out.append((0..<5).map { statement.text($0) ?? "NULL" }.joined(separator: "|"))
            }
            return out
        }

        /// Rows with keys decrypted, sorted by (user_id, tool_id) bytes.
        func plainRows(_ master: MasterKey) throws -> [PlainRow] {
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
            return SnapshotsTests.sorted(rows)
        }
    }

    // MARK: - Writing test input (independently of the library's writers)

    static func csvField(_ text: String) -> String {
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

    static func jsonObject(_ sample: Sample) -> String {
        var members = [
            "\"user_id\":" + jsonString(sample.userID), "\"tool_id\":" + jsonString(sample.toolID),
            "\"enabled\":\(sample.enabled)", "\"created_at\":\(sample.createdAt)", "\"updated_at\":\(sample.updatedAt)"
        ]
        if let key = sample.key { members.append("\"api_key\":" + jsonString(key)) }
        return "{" + members.joined(separator: ", ") + "}"
    }

    /// A plaintext onboarding file: CSV with CRLF and a column order unlike toolcfg's, a bare
    /// JSON array laid out over several lines, or bare JSON Lines.
    static func sourceFile(_ samples: [Sample], _ format: SnapshotFormat) -> String {
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

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func importFile(
        _ db: Database, _ path: String, _ format: SnapshotFormat, master: MasterKey?,
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

    static func export(
        _ db: Database, to path: String, _ format: SnapshotFormat, keys: KeyMode, master: MasterKey?,
        passphrase: SecureBytes? = passphrase(), overwrite: Bool = false, verify: Bool = false
    ) throws -> Exporter.Report {
        try Exporter(
            database: db.connection,
            options: Exporter.Options(
                output: path, format: format, keys: keys, masterKey: master, passphrase: keys == .sealed ? passphrase : nil,
                sealingCost: cheapSealing, overwrite: overwrite, verify: verify)
        ).run()
    }

    static func permissions(_ path: String) throws -> Int? {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
    }

    /// The first SnapshotError of what an import threw.
    static func firstSnapshotError(_ error: (any Error)?) -> SnapshotError? {
        (error as? SnapshotError) ?? (error as? SnapshotErrors)?.errors.first
    }

    @Test("every contract field has exactly one decoder slot, found again by its name")
    func fieldSlots() {
        #expect(Set(FieldSlot.allCases.map(\.name)) == SnapshotField.all)
        #expect(FieldSlot.allCases.allSatisfy { FieldSlot(name: $0.name) == $0 })
        #expect(FieldSlot(name: "ID") == nil && FieldSlot(name: "user_id ") == nil)
    }

    // MARK: - 1. Round trips

    @Test(
        "round trip: import, export, import into a fresh database gives the same rows",
        arguments: SnapshotFormat.allCases, KeyMode.allCases)
    func roundTrip(format: SnapshotFormat, keys: KeyMode) throws {
        let folder = try TemporaryFolder()
        let master = try Self.master()
        let source = try Database(folder, "source.db")
        let input = folder.path("input.\(format.rawValue)")
        try Self.write(Self.sourceFile(Self.samples, format), to: input)
        let first = try Self.importFile(source, input, format, master: master)
        #expect(first.records == Self.samples.count)
        #expect(first.inserted == Self.samples.count)
        let sourceRows = try source.plainRows(master)
        #expect(sourceRows == Self.sorted(Self.samples.map(PlainRow.init)))

        let exported = folder.path("export.\(format.rawValue)")
        if format == .csv && keys == .sealed {
            let error = thrownError { _ = try Self.export(source, to: exported, format, keys: keys, master: master) }
            #expect(error is UsageError, "\(String(describing: error))")
            #expect(!FileManager.default.fileExists(atPath: exported))
            return
        }
        let report = try Self.export(source, to: exported, format, keys: keys, master: master, verify: true)
        #expect(report.rows == Self.samples.count)
        #expect(report.verified)
        if keys.holdsSecrets {
            #expect(try Self.permissions(exported) == 0o600)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.url.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)

        // Sealed snapshots travel to a database with another master key; plaintext ones may too.
        let targetKey = keys == .encrypted ? master : MasterKey.generate()
        let target = try Database(folder, "target.db")
        let second = try Self.importFile(
            target, exported, format, master: targetKey,
            passphrase: keys == .sealed ? Self.passphrase() : nil)
        #expect(second.inserted == Self.samples.count)
        #expect(second.integrityChecked == (format != .csv))
        #expect(second.keys == (format == .csv ? nil : keys))
        let targetRows = try target.plainRows(targetKey)
        if keys == .omit {
            #expect(targetRows == sourceRows.map { $0.withoutKey() })
        } else {
            #expect(targetRows == sourceRows)
        }
        if keys == .encrypted {
            #expect(try target.triples() == source.triples())
        }
        // Exporting the copy in the same mode gives the same file, byte for byte (same ids, same
        // order, triples copied as they are): a second round trip changes nothing.
        if keys == .encrypted || keys == .omit {
            let againPath = folder.path("again.\(format.rawValue)")
            let again = try Self.export(target, to: againPath, format, keys: keys, master: nil)
            #expect(again.rows == report.rows)
            #expect(try Data(contentsOf: URL(fileURLWithPath: againPath)) == Data(contentsOf: URL(fileURLWithPath: exported)))
        }
    }

    @Test("an update keeps the row's id and created_at, and changes the rest")
    func updateKeepsIdentity() throws {
        let folder = try TemporaryFolder()
        let master = try Self.master()
        let db = try Database(folder)
        let input = folder.path("first.jsonl")
        try Self.write(Self.sourceFile(Self.samples, .jsonl), to: input)
        _ = try Self.importFile(db, input, .jsonl, master: master)
        let before = try db.plainRows(master)

        let changed = Self.samples.map { sample -> Sample in
            var copy = sample
            copy.enabled.toggle()
            copy.createdAt = 5
            copy.updatedAt = 1_800_000_000
            copy.key = (sample.key ?? "") + "-rotated"
            return copy
        }
        let second = folder.path("second.csv")
        try Self.write(Self.sourceFile(changed, .csv), to: second)
        let report = try Self.importFile(db, second, .csv, master: master)
        #expect(report.updated == Self.samples.count)
        #expect(report.inserted == 0)
        let after = try db.plainRows(master)
        #expect(after.map(\.id) == before.map(\.id))
        #expect(after.map(\.createdAt) == before.map(\.createdAt))
        #expect(
            after
                == Self.sorted(changed.map(PlainRow.init)).enumerated().map { index, row in
                    var copy = row
                    copy.createdAt = before[index].createdAt
                    return copy
                })
        #expect(try db.connection.queryInt64("SELECT count(*) FROM user_tool_configs") == Int64(Self.samples.count))
    }

    @Test("--keys omit writes no plaintext and no stored triple value", arguments: SnapshotFormat.allCases)
    func omitHoldsNoSecrets(format: SnapshotFormat) throws {
        let folder = try TemporaryFolder()
        let master = try Self.master()
        let db = try Database(folder)
        let plaintexts = ["sk-omit-check-0001", "ключ-omit-0002", "🔑-omit-0003"]
        for (index, plaintext) in plaintexts.enumerated() {
            try db.insert("user-\(index)", "tool", enabled: true, key: plaintext, master: master)
        }
        let output = folder.path("omit.\(format.rawValue)")
        let report = try Self.export(db, to: output, format, keys: .omit, master: nil)
        #expect(report.rows == plaintexts.count)
        let text = try String(contentsOfFile: output, encoding: .utf8)
        for plaintext in plaintexts { #expect(!text.contains(plaintext)) }
        for triple in try db.triples() {
            for value in triple.split(separator: "|").dropFirst(2) {
                #expect(!text.contains(value), "stored value \(value) in the omit export")
            }
        }
        for name in ["api_key", "salt", "nonce", "sealed"] { #expect(!text.contains(name)) }
        #expect(text.contains("user-2"))
        if format != .csv { #expect(text.contains("\"keys\":\"omit\"")) }
    }

    @Test("keys are compared byte for byte: a canonically equivalent key with other bytes replaces the stored one")
    func keyComparisonIsByteExact() throws {
        let folder = try TemporaryFolder()
        let master = try Self.master()
        let db = try Database(folder)
        try db.insert("user", "tool", enabled: true, key: "cafe\u{301}", master: master, updatedAt: 2000)
        let path = folder.path("nfc.csv")
        try Self.write("user_id,tool_id,enabled,api_key,updated_at\nuser,tool,1,caf\u{e9},2000\n", to: path)
        let report = try Self.importFile(db, path, .csv, master: master)
        let stored = try db.plainRows(master).map { Array(($0.key ?? "").utf8) }
        #expect((report.updated, report.unchanged) == (1, 0))
        #expect(stored == [Array("caf\u{e9}".utf8)])
    }

    @Test("a stored empty key survives a plaintext export with --verify and its import", arguments: SnapshotFormat.allCases)
    func emptyStoredKey(format: SnapshotFormat) throws {
        let folder = try TemporaryFolder()
        let master = try Self.master()
        let db = try Database(folder)
        try db.insert("user", "empty-key", enabled: true, key: "", master: master)
        try db.insert("user", "real-key", enabled: true, key: "sk-real", master: master)
        let out = folder.path("empty.\(format.rawValue)")
        _ = try Self.export(db, to: out, format, keys: .plaintext, master: master, verify: true)
        let target = try Database(folder, "target.db")
        _ = try Self.importFile(target, out, format, master: master)
        let rows = try target.plainRows(master)
        #expect(rows.count == 2)
        // JSON tells "" from null; CSV tells a quoted "" (an empty key) from an empty cell (none).
        #expect(rows.first?.key == "")
    }

    // MARK: - 2. Malformed input

    /// What a malformed case can use to build its file.
    final class CaseKit {
        let folder: TemporaryFolder
        let master: MasterKey
        static let plaintexts = [
            "sk-SECRET-alpha-0001", "sk-SECRET-beta-0002", "sk-SECRET-gamma-0003", "sk-SECRET-triple-0004", "sk-SECRET-seed-a"
        ]
        static let rightPassphrase = "right passphrase"

        init(folder: TemporaryFolder, master: MasterKey) {
            self.folder = folder
            self.master = master
        }

        /// A valid triple under the test's master key (or another).
        func triple(_ plaintext: String = CaseKit.plaintexts[3], master: MasterKey? = nil) throws -> StoredSecret {
            try SecretCipher.encrypt(plaintext, masterKey: master ?? self.master)
        }

        /// A toolcfg export of three rows (keys alpha, beta, gamma) from a helper database.
        func snapshot(_ format: SnapshotFormat, keys: KeyMode) throws -> String {
            let name = "helper-\(UUID().uuidString)"
            let db = try Database(folder, name + ".db")
            try db.insert("helper-1", "tool-x", enabled: true, key: Self.plaintexts[0], master: master, createdAt: 10, updatedAt: 11)
            try db.insert("helper-2", "tool-x", enabled: false, key: Self.plaintexts[1], master: master, createdAt: 20, updatedAt: 21)
            try db.insert("helper-3", "tool-y", enabled: true, key: Self.plaintexts[2], master: master, createdAt: 30, updatedAt: 31)
            let path = folder.path(name + "." + format.rawValue)
            _ = try SnapshotsTests.export(
                db, to: path, format, keys: keys, master: master,
                passphrase: SecureBytes(Array(Self.rightPassphrase.utf8)))
            return try String(contentsOfFile: path, encoding: .utf8)
        }

        static func lines(_ text: String) -> [String] {
            text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
    }

    struct MalformedCase: Sendable, CustomTestStringConvertible {
        var name: String
        var format: SnapshotFormat
        var line: Int?
        var field: String?
        var message: String?
        var onConflict: Importer.ConflictPolicy = .update
        var passphrase: String = CaseKit.rightPassphrase
        var withMasterKey = true
        var exitStatus = ExitStatus.dataError
        /// The line check fails because of a library bug described in the report.
        var build: @Sendable (CaseKit) throws -> [UInt8]

        var testDescription: String { name }
    }

    static func text(_ text: String) -> [UInt8] { Array(text.utf8) }

    static let header = "user_id,tool_id,enabled,api_key"
    static let tripleHeader = "user_id,tool_id,enabled,encrypted_api_key,salt,nonce"

    static func tripleRow(_ userID: String, _ secret: StoredSecret, encrypted: String? = nil, salt: String? = nil, nonce: String? = nil)
        -> String
    {
        "\(userID),tool,1,\(encrypted ?? secret.encryptedAPIKey),\(salt ?? secret.salt),\(nonce ?? secret.nonce)"
    }

    static let malformed: [MalformedCase] = [
        // CSV syntax
        MalformedCase(name: "CSV unbalanced quote", format: .csv, line: 3, field: "tool_id", message: "unbalanced quote") { _ in
            text("\(header)\nu1,t1,1,sk-SECRET-alpha-0001\nu2,\"t2 never closes,0,sk-SECRET-beta-0002\nu3,t3,0,\nu4,t4,1,\n")
        },
        MalformedCase(
            name: "CSV quote inside an unquoted field", format: .csv, line: 3, field: "tool_id", message: "quote inside an unquoted field"
        ) { _ in
            text("\(header)\r\nu1,t1,1,sk-SECRET-alpha-0001\r\nu2,to\"ol,0,sk-SECRET-beta-0002\r\n")
        },
        MalformedCase(
            name: "CSV text after the closing quote (after a multi-line field)", format: .csv, line: 4, field: "tool_id",
            message: "after the closing quote"
        ) { _ in
            text("\(header)\nu1,\"t1\nsecond line\",1,sk-SECRET-alpha-0001\nu2,\"tool\"x,0,sk-SECRET-beta-0002\n")
        },
        MalformedCase(name: "CSV wrong field count", format: .csv, line: 3, field: nil, message: "3 field(s), but the header names 4") {
            _ in
            text("\(header)\nu1,t1,1,sk-SECRET-alpha-0001\nu2,t2,0\n")
        },
        MalformedCase(name: "CSV unknown column", format: .csv, line: 1, field: "colour", message: "unknown column") { _ in
            text("user_id,tool_id,colour\nu1,t1,red\n")
        },
        MalformedCase(name: "CSV duplicate column", format: .csv, line: 1, field: "tool_id", message: "twice") { _ in
            text("user_id,tool_id,enabled,tool_id\nu1,t1,1,t2\n")
        },
        MalformedCase(name: "CSV missing user_id column", format: .csv, line: 1, field: "user_id", message: "no user_id column") { _ in
            text("tool_id,enabled,api_key\nt1,1,sk-SECRET-alpha-0001\n")
        },
        MalformedCase(
            name: "CSV missing tool_id column, header after a blank line", format: .csv, line: 2, field: "tool_id",
            message: "no tool_id column"
        ) { _ in
            text("\nuser_id,enabled\nu1,1\n")
        },
        MalformedCase(
            name: "CSV header with an encrypted key but no nonce column", format: .csv, line: 1, field: "nonce", message: "no nonce column"
        ) { kit in
            let secret = try kit.triple()
            return text("user_id,tool_id,encrypted_api_key,salt\nu1,t1,\(secret.encryptedAPIKey),\(secret.salt)\n")
        },
        MalformedCase(name: "CSV empty user_id", format: .csv, line: 3, field: "user_id", message: "empty") { _ in
            text("\(header)\nu1,t1,1,sk-SECRET-alpha-0001\n\"\",t2,0,sk-SECRET-beta-0002\n")
        },
        MalformedCase(name: "CSV bad boolean", format: .csv, line: 3, field: "enabled", message: "expected 1, 0, true or false") { _ in
            text("\(header)\nu1,t1,1,sk-SECRET-alpha-0001\nu2,t2,yes,sk-SECRET-beta-0002\n")
        },
        MalformedCase(name: "CSV non-integer timestamp", format: .csv, line: 3, field: "created_at", message: "expected an integer") { _ in
            text("user_id,tool_id,created_at\nu1,t1,1700000000\nu2,t2,1700000000.5\n")
        },
        MalformedCase(name: "CSV negative timestamp", format: .csv, line: 2, field: "updated_at", message: "out of range") { _ in
            text("user_id,tool_id,updated_at\nu1,t1,-5\n")
        },
        MalformedCase(name: "CSV invalid UTF-8", format: .csv, line: 3, field: "tool_id", message: "UTF-8") { _ in
            text("\(header)\nu1,t1,1,sk-SECRET-alpha-0001\nu2,t") + [0xFF, 0xFE, 0xC3] + text(",0,\n")
        },
        MalformedCase(name: "CSV NUL byte", format: .csv, line: 2, field: "user_id", message: "NUL") { _ in
            text("\(header)\nu") + [0] + text("1,t1,1,sk-SECRET-alpha-0001\n")
        },
        MalformedCase(name: "CSV bare CR", format: .csv, line: 3, field: "tool_id", message: "carriage return") { _ in
            text("\(header)\r\nu1,t1,1,sk-SECRET-alpha-0001\r\nu2,t\r2,0,\r\n")
        },
        MalformedCase(name: "CSV broken byte order mark", format: .csv, line: 1, field: nil, message: "byte order mark") { _ in
            [0xEF, 0xBB] + text("\(header)\nu1,t1,1,\n")
        },
        // CSV key material
        MalformedCase(name: "bad base64 salt", format: .csv, line: 3, field: "salt", message: "base64") { kit in
            let s = try kit.triple()
            return text("\(tripleHeader)\n\(tripleRow("u1", s))\n\(tripleRow("u2", s, salt: "!!not*base64!!=="))\n")
        },
        MalformedCase(name: "salt of 31 bytes", format: .csv, line: 3, field: "salt", message: "31 bytes") { kit in
            let s = try kit.triple()
            return text(
                "\(tripleHeader)\n\(tripleRow("u1", s))\n\(tripleRow("u2", s, salt: Base64.encode([UInt8](repeating: 9, count: 31))))\n")
        },
        MalformedCase(name: "nonce of 16 bytes", format: .csv, line: 3, field: "nonce", message: "16 bytes") { kit in
            let s = try kit.triple()
            return text(
                "\(tripleHeader)\n\(tripleRow("u1", s))\n\(tripleRow("u2", s, nonce: Base64.encode([UInt8](repeating: 9, count: 16))))\n")
        },
        MalformedCase(name: "ciphertext shorter than the tag", format: .csv, line: 3, field: "encrypted_api_key", message: "15 bytes") {
            kit in
            let s = try kit.triple()
            return text(
                "\(tripleHeader)\n\(tripleRow("u1", s))\n"
                    + "\(tripleRow("u2", s, encrypted: Base64.encode([UInt8](repeating: 9, count: 15))))\n"
            )
        },
        MalformedCase(name: "api_key together with the triple", format: .csv, line: 2, field: "api_key", message: "never more than one") {
            kit in
            let s = try kit.triple()
            return text(
                "user_id,tool_id,api_key,encrypted_api_key,salt,nonce\n"
                    + "u1,t1,sk-SECRET-alpha-0001,\(s.encryptedAPIKey),\(s.salt),\(s.nonce)\n"
            )
        },
        MalformedCase(name: "partial triple", format: .csv, line: 3, field: "nonce", message: "together") { kit in
            let s = try kit.triple()
            return text("\(tripleHeader)\n\(tripleRow("u1", s))\nu2,tool,1,\(s.encryptedAPIKey),\(s.salt),\n")
        },
        MalformedCase(
            name: "encrypted triple under another master key", format: .csv, line: 3, field: "encrypted_api_key",
            message: "does not decrypt"
        ) { kit in
            let good = try kit.triple()
            let foreign = try kit.triple(master: MasterKey.generate())
            return text("\(tripleHeader)\n\(tripleRow("u1", good))\n\(tripleRow("u2", foreign))\n")
        },
        MalformedCase(
            name: "plaintext key without a master key", format: .csv, line: 2, field: "api_key", message: "master key",
            withMasterKey: false,
            exitStatus: .usage
        ) { _ in
            text("\(header)\nu1,t1,1,sk-SECRET-alpha-0001\n")
        },
        // JSON
        MalformedCase(name: "JSON truncated document", format: .json, line: 3, field: nil, message: nil) { kit in
            let lines = CaseKit.lines(try kit.snapshot(.json, keys: .encrypted))
            return text(lines[0] + "\n" + lines[1] + "\n" + String(lines[2].prefix(40)))
        },
        MalformedCase(name: "JSON truncated at a record boundary", format: .json, line: 3, field: nil, message: "ends early") { kit in
            let lines = CaseKit.lines(try kit.snapshot(.json, keys: .encrypted))
            precondition(lines[2].hasSuffix("},"))
            return text(lines[0...1].joined(separator: "\n") + "\n" + lines[2].dropLast())
        },
        MalformedCase(name: "JSON trailing garbage", format: .json, line: 6, field: nil, message: "after the end of the JSON document") {
            kit in
            text(try kit.snapshot(.json, keys: .encrypted) + "garbage\n")
        },
        MalformedCase(
            name: "JSON float timestamp (second record)", format: .json, line: 3, field: "created_at", message: "expected an integer"
        ) { _ in
            text(
                "[\n{\"user_id\":\"u1\",\"tool_id\":\"t1\",\"api_key\":\"sk-SECRET-alpha-0001\",\"created_at\":1700000000},\n"
                    + "{\"user_id\":\"u2\",\"tool_id\":\"t2\",\"created_at\":1700000000.5}\n]\n"
            )
        },
        MalformedCase(name: "JSON nested object value", format: .json, line: 2, field: "tool_id", message: "an object") { _ in
            text("[\n{\"user_id\":\"u1\",\"tool_id\":{\"nested\":\"sk-SECRET-alpha-0001\"}},\n{\"user_id\":\"u2\",\"tool_id\":\"t2\"}\n]\n")
        },
        MalformedCase(name: "JSON duplicate member", format: .json, line: 3, field: "enabled", message: "twice") { _ in
            text(
                "[\n{\"user_id\":\"u1\",\"tool_id\":\"t1\"},\n"
                    + "{\"user_id\":\"u2\",\"tool_id\":\"t2\",\"enabled\":true,\"enabled\":false}\n]\n"
            )
        },
        MalformedCase(name: "JSON unpaired surrogate", format: .json, line: 2, field: nil, message: "surrogate") { _ in
            text("[\n{\"user_id\":\"u\\ud83d1\",\"tool_id\":\"t1\"}\n]\n")
        },
        MalformedCase(name: "JSON snapshot with an altered record (digest)", format: .json, line: nil, field: "digest", message: "digest") {
            kit in
            var lines = CaseKit.lines(try kit.snapshot(.json, keys: .encrypted))
            precondition(lines[2].contains("\"helper-2\""))
            lines[2] = lines[2].replacingOccurrences(of: "\"helper-2\"", with: "\"helper-9\"")
            return text(lines.joined(separator: "\n"))
        },
        MalformedCase(name: "JSON snapshot with a removed record (row_count)", format: .json, line: nil, field: "row_count", message: "row")
        { kit in
            var lines = CaseKit.lines(try kit.snapshot(.json, keys: .encrypted))
            lines.remove(at: 2)
            return text(lines.joined(separator: "\n"))
        },
        MalformedCase(
            name: "sealed snapshot with the wrong passphrase", format: .json, line: 1, field: "sealing", message: "passphrase",
            passphrase: "wrong passphrase"
        ) { kit in
            text(try kit.snapshot(.json, keys: .sealed))
        },
        MalformedCase(name: "sealed header asking for 2 GiB of memory", format: .json, line: 1, field: "sealing", message: "1 GiB") { kit in
            let snapshot = try kit.snapshot(.json, keys: .sealed)
            precondition(snapshot.contains("\"memory_kib\":8192,"))
            return text(snapshot.replacingOccurrences(of: "\"memory_kib\":8192,", with: "\"memory_kib\":2097152,"))
        },
        // JSON Lines
        MalformedCase(name: "JSONL two objects on one line", format: .jsonl, line: 2, field: nil, message: "more than one JSON value") {
            _ in
            text(
                "{\"user_id\":\"u1\",\"tool_id\":\"t1\",\"api_key\":\"sk-SECRET-alpha-0001\"}\n{\"user_id\":\"u2\",\"tool_id\":\"t2\"} "
                    + "{\"user_id\":\"u3\",\"tool_id\":\"t3\"}\n"
            )
        },
        MalformedCase(name: "JSONL record after the trailer", format: .jsonl, line: 6, field: nil, message: "after the trailer") { kit in
            text(try kit.snapshot(.jsonl, keys: .encrypted) + "{\"user_id\":\"late\",\"tool_id\":\"t\"}\n")
        },
        MalformedCase(name: "JSONL snapshot without its trailer (truncated)", format: .jsonl, line: nil, field: nil, message: "truncated") {
            kit in
            let lines = CaseKit.lines(try kit.snapshot(.jsonl, keys: .encrypted))
            return text(lines[0...3].joined(separator: "\n") + "\n")
        },
        MalformedCase(
            name: "sealed key moved to another user's record", format: .jsonl, line: 2, field: "sealed_api_key", message: "does not open"
        ) { kit in
            var lines = CaseKit.lines(try kit.snapshot(.jsonl, keys: .sealed))
            let pattern = /"sealed_api_key":"([^"]+)"/
            let first = try #require(lines[1].firstMatch(of: pattern)).output.1
            let second = try #require(lines[2].firstMatch(of: pattern)).output.1
            lines[1] = lines[1].replacingOccurrences(of: String(first), with: String(second))
            lines[2] = lines[2].replacingOccurrences(of: String(second), with: String(first))
            return text(lines.joined(separator: "\n"))
        },
        // Whole-file rules
        MalformedCase(name: "one bad line among 1,000 good ones", format: .csv, line: 777, field: "enabled", message: "maybe") { _ in
            var lines = ["user_id,tool_id,enabled"]
            for index in 2...1001 { lines.append("bulk-\(index),tool,\(index % 2)") }
            lines[776] = "bulk-777,tool,maybe"
            return text(lines.joined(separator: "\n") + "\n")
        },
        MalformedCase(
            name: "conflicting duplicate pair inside the file", format: .csv, line: 4, field: "user_id",
            message: "already appeared earlier in this file (line 2)"
        ) { _ in
            text("user_id,tool_id,enabled,api_key\ndup,tool,1,sk-SECRET-alpha-0001\nother,tool,0,\ndup,tool,0,sk-SECRET-beta-0002\n")
        },
        MalformedCase(
            name: "--on-conflict fail against an existing different row", format: .csv, line: 3, field: "user_id",
            message: "on-conflict fail",
            onConflict: .fail
        ) { _ in
            text("user_id,tool_id,enabled\nfresh,tool,1\nseed-user,tool-a,0\n")
        }
    ]

    @Test("a malformed file is refused, names its line and field, leaks no secret and changes nothing", arguments: malformed)
    func malformedInput(_ c: MalformedCase) throws {
        let folder = try TemporaryFolder()
        let master = try Self.master()
        let db = try Database(folder)
        try db.insert("seed-user", "tool-a", enabled: true, key: CaseKit.plaintexts[4], master: master)
        try db.insert("seed-user", "tool-b", enabled: false, key: nil, master: master)
        let kit = CaseKit(folder: folder, master: master)
        let bytes = try c.build(kit)
        let path = folder.path("input.\(c.format.rawValue)")
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let before = try db.dump()
        let error = thrownError {
            _ = try Self.importFile(
                db, path, c.format, master: c.withMasterKey ? master : nil,
                passphrase: Self.passphrase(c.passphrase), onConflict: c.onConflict)
        }
        #expect(try db.dump() == before, "the database changed")
        #expect(db.connection.isInTransaction == false)
        guard let error else {
            Issue.record("the import of \(c.name) succeeded")
            return
        }
        #expect((error as? any ToolcfgError)?.exitStatus == c.exitStatus, "\(error)")
        guard let first = Self.firstSnapshotError(error) else {
            Issue.record("not a SnapshotError: \(type(of: error)): \(error)")
            return
        }
        #expect(first.location.file == path)
        #expect(first.location.line == c.line, "\(first)")
        #expect(first.location.field == c.field, "\(first)")
        if let message = c.message {
            #expect(first.message.contains(message), "\(first)")
        }
        // No secret of the file (plaintext keys, base64 values) appears in what the user is shown.
        let description = "\(error)"
        let fileText = String(decoding: bytes, as: UTF8.self)
        var secrets = CaseKit.plaintexts
        secrets += fileText.matches(of: /[A-Za-z0-9+\/]{16,}={0,2}/).map { String($0.output) }
        for secret in secrets {
            #expect(!description.contains(secret), "the error shows a secret value: \(description)")
        }
    }

    // MARK: - 3. Collected errors

    @Test("maxErrors collects several errors with their lines and still writes nothing")
    func collectedErrors() throws {
        let folder = try TemporaryFolder()
        let master = try Self.master()
        let db = try Database(folder)
        try db.insert("seed-user", "tool-a", enabled: true, key: "sk-seed", master: master)
        let path = folder.path("errors.csv")
        try Self.write(
            """
            user_id,tool_id,enabled,created_at
            a,t,yes,1
            b,t,1,x
            c,t,1,1
            ,t,1,1
            d,t,2,1
            e,t,1,-1
            f,t,1,1
            g,t,nope,1

            """, to: path)
        let before = try db.dump()

        let five = thrownError { _ = try Self.importFile(db, path, .csv, master: master, maxErrors: 5) }
        let collected = try #require(five as? SnapshotErrors, "\(String(describing: five))")
        #expect(collected.errors.map(\.location.line) == [2, 3, 5, 6, 7])
        #expect(collected.errors.map(\.location.field) == ["enabled", "created_at", "user_id", "enabled", "created_at"])
        #expect(collected.stoppedEarly)
        #expect(collected.exitStatus == .dataError)
        #expect(collected.description.contains("\(path):3 (record 2): field created_at"))
        #expect(collected.description.contains("nothing was written"))
        #expect(try db.dump() == before)

        let all = thrownError { _ = try Self.importFile(db, path, .csv, master: master, maxErrors: 100) }
        let every = try #require(all as? SnapshotErrors)
        #expect(every.errors.map(\.location.line) == [2, 3, 5, 6, 7, 9])
        #expect(!every.stoppedEarly)
        #expect(try db.dump() == before)

        // Errors found while resolving keys (triples that do not decrypt) are collected too.
        let foreign = MasterKey.generate()
        var lines = [Self.tripleHeader]
        for index in 0..<4 {
            let secret = try SecretCipher.encrypt("sk-\(index)", masterKey: index == 1 ? master : foreign)
            lines.append(Self.tripleRow("k\(index)", secret))
        }
        let keysPath = folder.path("keys.csv")
        try Self.write(lines.joined(separator: "\n") + "\n", to: keysPath)
        let keyErrors = try #require(
            thrownError { _ = try Self.importFile(db, keysPath, .csv, master: master, maxErrors: 5) } as? SnapshotErrors)
        #expect(keyErrors.errors.map(\.location.line) == [2, 4, 5])
        #expect(keyErrors.errors.allSatisfy { $0.location.field == "encrypted_api_key" })
        #expect(try db.dump() == before)
    }

    @Test("the first error reported is the first one in the file, also when a syntax error follows a bad value")
    func errorsInFileOrder() throws {
        let folder = try TemporaryFolder()
        let db = try Database(folder)
        let path = folder.path("mixed.csv")
        try Self.write("user_id,tool_id,enabled\na,t,yes\nb,t,1\nc,\"t,1\nd,t,0\n", to: path)
        let before = try db.dump()
        let single = thrownError { _ = try Self.importFile(db, path, .csv, master: nil) }
        let several = thrownError { _ = try Self.importFile(db, path, .csv, master: nil, maxErrors: 5) }
        #expect(try db.dump() == before)
        #expect(Self.firstSnapshotError(single)?.location.line == 2, "\(String(describing: single))")
        #expect((several as? SnapshotErrors)?.errors.map(\.location.line) == [2, 4], "\(String(describing: several))")
    }

    // MARK: - 4. Dry run, re-import, skip

    @Test("dry run reports the counts and writes nothing; re-import is unchanged; skip and fail policies")
    func dryRunAndPolicies() throws {
        let folder = try TemporaryFolder()
        let master = try Self.master()
        let db = try Database(folder)
        try db.insert("seed-user", "tool-a", enabled: true, key: "sk-seed-a", master: master, createdAt: 1000, updatedAt: 2000)
        try db.insert("seed-user", "tool-b", enabled: false, key: nil, master: master, createdAt: 1000, updatedAt: 2000)
        let path = folder.path("changes.csv")
        try Self.write(
            """
            user_id,tool_id,enabled,api_key,updated_at
            seed-user,tool-a,1,sk-seed-a,2000
            seed-user,tool-b,1,,3000
            new-user,tool-a,0,sk-new,

            """, to: path)
        let before = try db.dump()

        let dry = try Self.importFile(db, path, .csv, master: master, dryRun: true)
        #expect(dry.dryRun)
        #expect((dry.records, dry.inserted, dry.updated, dry.unchanged, dry.skipped) == (3, 1, 1, 1, 0))
        #expect(try db.dump() == before)

        let real = try Self.importFile(db, path, .csv, master: master)
        #expect(!real.dryRun)
        #expect((real.records, real.inserted, real.updated, real.unchanged, real.skipped) == (3, 1, 1, 1, 0))
        let afterImport = try db.dump()
        #expect(afterImport[0] == before[0], "the unchanged row was rewritten")
        #expect(
            try db.plainRows(master) == [
                PlainRow(userID: "new-user", toolID: "tool-a", enabled: false, createdAt: Self.now, updatedAt: Self.now, key: "sk-new"),
                PlainRow(userID: "seed-user", toolID: "tool-a", enabled: true, createdAt: 1000, updatedAt: 2000, key: "sk-seed-a"),
                PlainRow(userID: "seed-user", toolID: "tool-b", enabled: true, createdAt: 1000, updatedAt: 3000, key: nil)
            ])

        for policy in Importer.ConflictPolicy.allCases {
            let again = try Self.importFile(db, path, .csv, master: master, onConflict: policy)
            #expect((again.inserted, again.updated, again.unchanged, again.skipped) == (0, 0, 3, 0), "\(policy)")
            #expect(try db.dump() == afterImport)
        }

        let conflicting = folder.path("conflicting.csv")
        try Self.write(
            """
            user_id,tool_id,enabled,api_key,updated_at
            seed-user,tool-a,0,sk-other,5000
            new-user,tool-a,0,sk-new,
            brand-new,tool-z,1,,

            """, to: conflicting)
        let skipDry = try Self.importFile(db, conflicting, .csv, master: master, onConflict: .skip, dryRun: true)
        #expect((skipDry.inserted, skipDry.updated, skipDry.unchanged, skipDry.skipped) == (1, 0, 1, 1))
        #expect(try db.dump() == afterImport)
        let skip = try Self.importFile(db, conflicting, .csv, master: master, onConflict: .skip)
        #expect((skip.inserted, skip.updated, skip.unchanged, skip.skipped) == (1, 0, 1, 1))
        let rows = try db.plainRows(master)
        #expect(rows.first { $0.userID == "seed-user" && $0.toolID == "tool-a" }?.key == "sk-seed-a")
        #expect(rows.contains { $0.userID == "brand-new" })

        // An identical duplicate inside one file is counted, not refused.
        let duplicates = folder.path("duplicates.jsonl")
        try Self.write(
            "{\"user_id\":\"twice\",\"tool_id\":\"t\",\"enabled\":true}\n{\"user_id\":\"twice\",\"tool_id\":\"t\",\"enabled\":1}\n",
            to: duplicates)
        let duplicateReport = try Self.importFile(db, duplicates, .jsonl, master: master)
        #expect((duplicateReport.inserted, duplicateReport.duplicates) == (1, 1))
    }

    // MARK: - 5. Files from Python's csv and json modules

    static let pythonWriter = #"""
        import csv, json, os, sys
        request = json.load(sys.stdin)
        folder, records = request["folder"], request["records"]
        columns = ["api_key", "updated_at", "tool_id", "enabled", "user_id", "created_at"]
        for name, encoding in (("py.csv", "utf-8"), ("py-bom.csv", "utf-8-sig")):
            with open(os.path.join(folder, name), "w", newline="", encoding=encoding) as f:
                writer = csv.writer(f)
                writer.writerow(columns)
                for record in records:
                    writer.writerow([record.get(c) for c in columns])
        with open(os.path.join(folder, "py.json"), "w", encoding="ascii") as f:
            json.dump(records, f)
        with open(os.path.join(folder, "py.jsonl"), "w", encoding="ascii") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
        """#

    @Test(
        "files written by Python's csv and json modules import with the values Python wrote",
        arguments: ["py.csv", "py-bom.csv", "py.json", "py.jsonl"])
    func pythonFiles(_ name: String) throws {
        let folder = try TemporaryFolder()
        let master = try Self.master()
        let records: [[String: Any]] = Self.samples.map { s in
            [
                "user_id": s.userID, "tool_id": s.toolID, "enabled": s.enabled, "created_at": s.createdAt,
                "updated_at": s.updatedAt, "api_key": s.key.map { $0 as Any } ?? NSNull()
            ]
        }
        let request = try JSONSerialization.data(withJSONObject: ["folder": folder.url.path, "records": records])
        let python = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", Self.pythonWriter], stdin: request)
        try #require(python.status == 0, "python3 failed: \(python.stderr)")

        let path = folder.path(name)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let format = try #require(SnapshotFormat(path: path))
        // The files have the shapes claimed: CRLF rows, a BOM, \u escapes with surrogate pairs.
        switch name {
        case "py.csv":
            #expect(bytes.starts(with: Array("api_key,updated_at".utf8)))
            #expect(String(decoding: bytes, as: UTF8.self).contains("\r\n"))
            #expect(String(decoding: bytes, as: UTF8.self).contains(",True,"))
        case "py-bom.csv":
            #expect(bytes.starts(with: [0xEF, 0xBB, 0xBF]))
        default:
            #expect(bytes.allSatisfy { $0 < 0x80 })
            #expect(String(decoding: bytes, as: UTF8.self).contains("\\ud83d\\udd11"))
        }

        let db = try Database(folder)
        let report = try Self.importFile(db, path, format, master: master)
        #expect(report.inserted == Self.samples.count)
        #expect(report.integrityChecked == false)
        #expect(try db.plainRows(master) == Self.sorted(Self.samples.map(PlainRow.init)))
    }

    // MARK: - 6. The command line

    static func cliDatabase(_ folder: TemporaryFolder) throws -> Database {
        let db = try Database(folder, "cli.db")
        let master = try master()
        try db.insert("cli-user", "tool-a", enabled: true, key: "sk-cli-a", master: master)
        try db.insert("cli-user", "tool-b", enabled: false, key: nil, master: master)
        try db.insert("Юлия", "工具", enabled: true, key: "sk-cli-🔑", master: master)
        return db
    }

    @Test("toolcfg export --verify exits 0 and writes a 0600 file that imports elsewhere")
    func cliExportVerify() throws {
        let folder = try TemporaryFolder()
        let db = try Self.cliDatabase(folder)
        let out = folder.path("snapshot.json")
        let result = try toolcfg(["export", "--db", db.path, "--out", out, "--verify"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("verified"))
        #expect(try Self.permissions(out) == 0o600)

        let plain = folder.path("plain.jsonl")
        let plaintext = try toolcfg(
            ["export", "--db", db.path, "--out", plain, "--keys", "plaintext", "--verify"],
            environment: ["TOOLCFG_MASTER_KEY": MasterKeyTests.valid])
        #expect(plaintext.status == 0, "\(plaintext.stderr)")
        #expect(!plaintext.stderr.contains("sk-cli-a"))
        #expect(try Self.permissions(plain) == 0o600)

        let copy = try Database(folder, "copy.db")
        let imported = try toolcfg(["import", "--db", copy.path, "--in", out, "--json"])
        #expect(imported.status == 0, "\(imported.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(imported.stdout.utf8)) as? [String: Any]
        #expect(report?["inserted"] as? Int == 3)
        #expect(report?["integrity_checked"] as? Bool == true)
        #expect(try copy.plainRows(Self.master()) == db.plainRows(Self.master()))
    }

    @Test("toolcfg import of a malformed file exits 65, names file:line and field, and changes nothing")
    func cliImportMalformed() throws {
        let folder = try TemporaryFolder()
        let db = try Self.cliDatabase(folder)
        let path = folder.path("bad.csv")
        try Self.write("user_id,tool_id,enabled\nok,tool,1\nbad,tool,perhaps\n", to: path)
        let before = try db.dump()
        let result = try toolcfg(["import", "--db", db.path, "--in", path])
        #expect(result.status == 65)
        #expect(result.stderr.contains("\(path):3"), "\(result.stderr)")
        #expect(result.stderr.contains("field enabled"), "\(result.stderr)")
        #expect(try db.dump() == before)

        let triple = folder.path("foreign.csv")
        let foreign = try SecretCipher.encrypt("sk-foreign-secret", masterKey: MasterKey.generate())
        try Self.write("\(Self.tripleHeader)\n\(Self.tripleRow("x", foreign))\n", to: triple)
        let wrongKey = try toolcfg(["import", "--db", db.path, "--in", triple], environment: ["TOOLCFG_MASTER_KEY": MasterKeyTests.valid])
        #expect(wrongKey.status == 65)
        #expect(wrongKey.stderr.contains("\(triple):2"))
        #expect(wrongKey.stderr.contains("field encrypted_api_key"))
        for value in [foreign.encryptedAPIKey, foreign.salt, foreign.nonce, MasterKeyTests.valid] {
            #expect(!wrongKey.stderr.contains(value))
        }
        #expect(try db.dump() == before)
    }

    @Test("--format is required with -, and then standard input and output work")
    func cliFormatWithDash() throws {
        let folder = try TemporaryFolder()
        let db = try Self.cliDatabase(folder)
        let csv = Data("user_id,tool_id,enabled\nstdin-user,tool,1\n".utf8)
        let before = try db.dump()
        let importNoFormat = try toolcfg(["import", "--db", db.path, "--in", "-"], stdin: csv)
        #expect(importNoFormat.status == 64, "\(importNoFormat.stderr)")
        #expect(importNoFormat.stderr.contains("--format"))
        let importDefault = try toolcfg(["import", "--db", db.path], stdin: csv)
        #expect(importDefault.status == 64, "\(importDefault.stderr)")
        #expect(try db.dump() == before)

        let exportNoFormat = try toolcfg(["export", "--db", db.path, "--out", "-"])
        #expect(exportNoFormat.status == 64, "\(exportNoFormat.stderr)")
        #expect(exportNoFormat.stdout.isEmpty)
        #expect(exportNoFormat.stderr.contains("--format"))

        let exported = try toolcfg(["export", "--db", db.path, "--out", "-", "--format", "jsonl", "--keys", "omit"])
        #expect(exported.status == 0, "\(exported.stderr)")
        #expect(exported.stdout.hasPrefix("{\"format\":\"toolcfg-snapshot\""))
        let imported = try toolcfg(["import", "--db", db.path, "--in", "-", "--format", "csv"], stdin: csv)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try db.plainRows(Self.master()).contains { $0.userID == "stdin-user" && $0.enabled })
    }

    @Test("an output path that is a symbolic link is refused, even with --force")
    func cliSymlinkOutput() throws {
        let folder = try TemporaryFolder()
        let db = try Self.cliDatabase(folder)
        let target = folder.path("target.json")
        let link = folder.path("link.json")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        for extra in [[], ["--force"]] {
            let result = try toolcfg(["export", "--db", db.path, "--out", link] + extra)
            #expect(result.status == 74, "\(result.stderr)")
            #expect(result.stderr.contains("symbolic link"))
            #expect(!FileManager.default.fileExists(atPath: target))
        }
        let dangling = try FileManager.default.destinationOfSymbolicLink(atPath: link)
        #expect(dangling == target)
        // A link to an existing file is refused too, and the file is left alone.
        try Self.write("precious", to: target)
        let existing = try toolcfg(["export", "--db", db.path, "--out", link, "--force"])
        #expect(existing.status == 74)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious")
    }

    @Test("an existing output file is refused without --force and replaced with it")
    func cliExistingOutput() throws {
        let folder = try TemporaryFolder()
        let db = try Self.cliDatabase(folder)
        let out = folder.path("out.csv")
        try Self.write("precious", to: out)
        let refused = try toolcfg(["export", "--db", db.path, "--out", out])
        #expect(refused.status == 74, "\(refused.stderr)")
        #expect(refused.stderr.contains("--force"))
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "precious")
        let forced = try toolcfg(["export", "--db", db.path, "--out", out, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.hasPrefix("id,user_id,tool_id,enabled,encrypted_api_key,salt,nonce,created_at,updated_at\r\n"))
        #expect(try Self.permissions(out) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).filter { $0.hasSuffix(".tmp") }.isEmpty)
    }

    @Test("an output in a directory that does not exist is an I/O error (74), not missing input (66)")
    func cliMissingOutputDirectory() throws {
        let folder = try TemporaryFolder()
        let db = try Self.cliDatabase(folder)
        let result = try toolcfg(["export", "--db", db.path, "--out", folder.path("no-such-dir/out.json")])
        #expect(result.status != 0)
        #expect(result.stderr.contains("no-such-dir"))
        #expect(result.status == 74, "\(result.stderr)")
    }
}
