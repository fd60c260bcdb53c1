import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Schemes v1 and v2 in rotation and import: what each value becomes, and which scheme an import
/// writes.
@Suite("Schemes")
struct SchemeTests {
    enum Under: String, CaseIterable, Sendable { case old, new, neither }

    struct Case: Sendable, CustomTestStringConvertible {
        var stored: SecretScheme
        var under: Under
        var asked: SecretScheme?
        var sameKey = false
        /// "rotated v1" / "rotated v2", "kept", "failed".
        var expected: String
        var testDescription: String {
            "a \(stored) value under the \(under) key, --scheme \(asked?.rawValue ?? "keep")\(sameKey ? ", same key" : ""): \(expected)"
        }
    }

    static let cases: [Case] = [
        Case(stored: .v1, under: .old, asked: nil, expected: "rotated v1"),
        Case(stored: .v2, under: .old, asked: nil, expected: "rotated v2"),
        Case(stored: .v1, under: .old, asked: .v2, expected: "rotated v2"),
        Case(stored: .v2, under: .old, asked: .v1, expected: "rotated v1"),
        Case(stored: .v1, under: .new, asked: nil, expected: "kept"),
        Case(stored: .v2, under: .new, asked: .v2, expected: "kept"),
        Case(stored: .v1, under: .new, asked: .v2, expected: "rotated v2"),
        Case(stored: .v1, under: .neither, asked: nil, expected: "failed"),
        Case(stored: .v2, under: .neither, asked: .v2, expected: "failed"),
        Case(stored: .v1, under: .old, asked: .v2, sameKey: true, expected: "rotated v2"),
        Case(stored: .v2, under: .old, asked: .v2, sameKey: true, expected: "kept"),
        Case(stored: .v2, under: .old, asked: .v1, sameKey: true, expected: "rotated v1")
    ]

    @Test("a value is rotated into the scheme asked for (else its own), kept when already under the new key in it", arguments: cases)
    func outcome(_ test: Case) throws {
        let old = MasterKey.generate(), new = test.sameKey ? old : MasterKey.generate()
        let key =
            switch test.under {
            case .old: old;
            case .new: new;
            case .neither: MasterKey.generate()
            }
        let plaintext = "sk-\(test.stored)-\(Digest.hex(SecureRandom.bytes(6)))"
        let secret = try SecretCipher.encrypt(plaintext, masterKey: key, scheme: test.stored)
        let row = SecretRow(rowID: 1, id: nil, encryptedAPIKey: secret.encryptedAPIKey, salt: secret.salt, nonce: secret.nonce)
        // Row by row, and in a group as a page is rotated (sixteen lanes where the CPU has them).
        let outcomes =
            [KeyRotator.rotate(row, oldKey: old, newKey: new, scheme: test.asked)]
            + KeyRotator.rotate(Array(repeating: row, count: 16), oldKey: old, newKey: new, scheme: test.asked)
        for outcome in outcomes {
            switch (outcome, test.expected) {
            case (.rotated(let written), let expected) where expected.hasPrefix("rotated"):
                #expect("rotated \(written.scheme)" == expected)
                #expect(try SecretCipher.decrypt(written, masterKey: new) == plaintext)
                #expect(written.salt != secret.salt && written.nonce != secret.nonce)
            case (.alreadyRotated, "kept"), (.failed, "failed"):
                break
            default:
                Issue.record("\(test): got \(outcome)")
            }
        }
    }

    @Test("the same key as old and new is refused without --scheme, before anything is read")
    func sameKeyNeedsScheme() throws {
        let key = MasterKey.generate()
        #expect(throws: UsageError.self) { try KeyRotator.Options(oldKey: key, newKey: key).requireSomethingToDo() }
        try KeyRotator.Options(oldKey: key, newKey: key, scheme: .v2).requireSomethingToDo()
    }

    /// A database whose tables hold `v1` and `v2` values, with the ledger of `era`.
    static func database(_ folder: TemporaryFolder, v1: Int, v2: Int, seaORM: Bool, master: MasterKey) throws -> SQLiteConnection {
        let connection = try migratedDatabase(at: folder.path("app.db"))
        if seaORM { try connection.execute("CREATE TABLE seaql_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)") }
        let insert = try connection.prepare(
            """
            INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
            VALUES (?1, 'tool', 1, ?2, ?3, ?4, 1, 1)
            """)
        for index in 0..<(v1 + v2) {
            let secret = try SecretCipher.encrypt("sk-\(index)", masterKey: master, scheme: index < v1 ? .v1 : .v2)
            try insert.run([.text("user-\(index)"), .text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)])
        }
        return connection
    }

    struct ImportCase: Sendable, CustomTestStringConvertible {
        var v1: Int, v2: Int, seaORM: Bool, asked: SecretScheme?
        /// The scheme chosen, or the start of the refusal ("usage:" up front, "record:" when a key needs one).
        var expected: String
        var testDescription: String {
            "\(v1) v1, \(v2) v2, \(seaORM ? "sea-orm" : "sqlx") ledger, --scheme \(asked?.rawValue ?? "none"): \(expected)"
        }
    }

    @Test(
        "an import encrypts in the scheme of the stored values; mixed, or none under sea-orm: --scheme decides; a contrary one is refused",
        arguments: [
            ImportCase(v1: 3, v2: 0, seaORM: true, asked: nil, expected: "v1"),
            ImportCase(v1: 0, v2: 3, seaORM: true, asked: nil, expected: "v2"),
            ImportCase(v1: 0, v2: 3, seaORM: true, asked: .v2, expected: "v2"),
            ImportCase(v1: 0, v2: 0, seaORM: false, asked: nil, expected: "v1"),
            ImportCase(v1: 0, v2: 0, seaORM: true, asked: nil, expected: "record: no stored value tells"),
            ImportCase(v1: 0, v2: 0, seaORM: true, asked: .v2, expected: "v2"),
            ImportCase(v1: 2, v2: 2, seaORM: true, asked: nil, expected: "record: the stored values are in both schemes"),
            ImportCase(v1: 2, v2: 2, seaORM: true, asked: .v2, expected: "v2"),
            ImportCase(v1: 3, v2: 0, seaORM: true, asked: .v2, expected: "usage: --scheme v2: every stored value (3) is in scheme v1")
        ])
    func importScheme(_ test: ImportCase) throws {
        let folder = try TemporaryFolder()
        let master = MasterKey.generate()
        let connection = try Self.database(folder, v1: test.v1, v2: test.v2, seaORM: test.seaORM, master: master)
        let input = folder.path("in.csv")
        try "user_id,tool_id,api_key\nnew-user,tool,sk-imported\n".write(toFile: input, atomically: true, encoding: .utf8)
        let options = Importer.Options(input: input, format: .csv, masterKey: master, jobs: 2, scheme: test.asked)
        let outcome = Result { try Importer(database: connection, options: options).run() }
        switch outcome {
        case .success:
            let stored = try #require(
                try connection.queryText("SELECT encrypted_api_key FROM user_tool_configs WHERE user_id = 'new-user'"))
            #expect(SecretScheme(ciphertext: stored).rawValue == test.expected)
        case .failure(let error as ToolcfgError):
            #expect(error.exitStatus == .usage, "\(error)")
            let (kind, text) =
                test.expected.hasPrefix("usage:") ? ("usage", test.expected.dropFirst(7)) : ("record", test.expected.dropFirst(8))
            #expect(error.description.contains(text), "\(kind): \(error)")
            #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs WHERE user_id = 'new-user'") == 0)
        case .failure(let error):
            Issue.record("\(error)")
        }
    }
}
