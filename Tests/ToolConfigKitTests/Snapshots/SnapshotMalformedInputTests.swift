import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension SnapshotsTests {
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
            let db = try SnapshotFixtures.SQLiteFile(folder, name + ".db")
            try db.insert("helper-1", "tool-x", enabled: true, key: Self.plaintexts[0], master: master, createdAt: 10, updatedAt: 11)
            try db.insert("helper-2", "tool-x", enabled: false, key: Self.plaintexts[1], master: master, createdAt: 20, updatedAt: 21)
            try db.insert("helper-3", "tool-y", enabled: true, key: Self.plaintexts[2], master: master, createdAt: 30, updatedAt: 31)
            let path = folder.path(name + "." + format.rawValue)
            _ = try SnapshotFixtures.export(
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
        let master = try SnapshotFixtures.master()
        let db = try SnapshotFixtures.SQLiteFile(folder)
        try db.insert("seed-user", "tool-a", enabled: true, key: CaseKit.plaintexts[4], master: master)
        try db.insert("seed-user", "tool-b", enabled: false, key: nil, master: master)
        let kit = CaseKit(folder: folder, master: master)
        let bytes = try c.build(kit)
        let path = folder.path("input.\(c.format.rawValue)")
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let before = try db.dump()
        let error = thrownError {
            _ = try SnapshotFixtures.importFile(
                db, path, c.format, master: c.withMasterKey ? master : nil,
                passphrase: SnapshotFixtures.passphrase(c.passphrase), onConflict: c.onConflict)
        }
        #expect(try db.dump() == before, "the database changed")
        #expect(db.connection.isInTransaction == false)
        guard let error else {
            Issue.record("the import of \(c.name) succeeded")
            return
        }
        #expect((error as? any ToolcfgError)?.exitStatus == c.exitStatus, "\(error)")
        guard let first = SnapshotFixtures.firstSnapshotError(error) else {
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
}
