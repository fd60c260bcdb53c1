import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// An import must not leave the table under two master keys: the key it encrypts or checks with
/// is first tried on the keys already stored.
@Suite("Import master-key check")
struct ImportKeyCheckTests {
    /// Each test (each case of one) gets its own: Swift Testing makes a new suite value for it.
    let folder: TemporaryFolder

    init() throws {
        folder = try TemporaryFolder()
    }

    static func importArguments(_ db: String, _ input: String, key: String?) -> [String] {
        ["import", "--db", db, "--in", input, "--json"] + (key.map { ["--master-key-file", $0] } ?? [])
    }

    @Test(
        """
        after a rotation, an import under the old key is refused with 65, names the key's fingerprint, and writes nothing; \
        --allow-other-master-key overrides
        """
    )
    func oldKeyAfterRotationIsRefused() throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 30)
        _ = try KeyRotator(database: try database.connection(), options: .init(oldKey: old, newKey: new, jobs: 2)).run()
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key")
        // Two rows the import updates and one it inserts, all with plaintext keys.
        let input = try EngineSnapshots.write(
            "user_id,tool_id,api_key\nuser-1,tool-1,sk-one\nuser-2,tool-2,sk-two\nnew-user,t,sk-new\n", folder, "in.csv")
        let before = try RotationFixtures.logicalState(database.path)

        let refused = try toolcfg(Self.importArguments(database.path, input, key: oldFile))
        #expect(refused.status == 65, "\(refused.stderr)")
        #expect(refused.stderr.contains(old.fingerprint) && refused.stderr.contains("--allow-other-master-key"), "\(refused.stderr)")
        #expect(refused.stderr.contains("opens none of the"))
        let error = try RotationFixtures.json(refused.stdout)
        #expect(error["ok"] as? Bool == false && error["exit_status"] as? Int == 65)
        #expect(try RotationFixtures.logicalState(database.path) == before)
        let dryRun = try toolcfg(Self.importArguments(database.path, input, key: oldFile) + ["--dry-run"])
        #expect(dryRun.status == 65, "a dry run must refuse as the import would")

        let forced = try toolcfg(Self.importArguments(database.path, input, key: oldFile) + ["--allow-other-master-key"])
        #expect(forced.status == 0, "\(forced.stderr)")
        let report = try RotationFixtures.json(forced.stdout)
        #expect(report["stored_keys_opened"] as? Int == 0 && (report["stored_keys_tried"] as? Int ?? 0) > 16)
        #expect(report["inserted"] as? Int == 1 && report["updated"] as? Int == 2)
    }

    @Test("the right key goes through, and a sample of every table with keys is what it is tried on")
    func rightKeyGoesThrough() throws {
        let master = try key(TestMasterKeys.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: master, aliases: 40, rows: 100)
        let keyFile = try RotationFixtures.keyFile(master, folder, "master.key")
        let input = try EngineSnapshots.write("user_id,tool_id,api_key\nnew-user,t,sk-new\n", folder, "in.csv")
        let result = try toolcfg(Self.importArguments(database.path, input, key: keyFile))
        #expect(result.status == 0, "\(result.stderr)")
        let report = try RotationFixtures.json(result.stdout)
        // Two tables, up to 16 rows each; once a key has opened, nothing more is tried.
        let tried = report["stored_keys_tried"] as? Int ?? 0
        #expect(tried >= 1 && tried <= 2 * MasterKeyCheck.samplePerTable)
        #expect(report["stored_keys_opened"] as? Int == tried)
        #expect(report["unchecked_keys"] as? Int == 0)
    }

    @Test("keys under another master key in api_model_aliases alone are enough to refuse an import into an empty user_tool_configs")
    func sampleCoversEveryTable() throws {
        let application = MasterKey.generate(), other = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: application, rows: 1)
        try database.connection().execute("DELETE FROM user_tool_configs")
        let otherFile = try RotationFixtures.keyFile(other, folder, "other.key")
        let input = try EngineSnapshots.write("user_id,tool_id,api_key\nnew-user,t,sk-new\n", folder, "in.csv")
        let result = try toolcfg(Self.importArguments(database.path, input, key: otherFile))
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("api_model_aliases"))
    }

    @Test("into a database without any stored key, any master key is accepted: there is nothing to disagree with")
    func noStoredKeys() throws {
        try migratedDatabase(at: folder.path("empty.db"), rows: [("a", "b")])
        let keyFile = try RotationFixtures.keyFile(MasterKey.generate(), folder, "master.key")
        let input = try EngineSnapshots.write("user_id,tool_id,api_key\na,b,sk-a\n", folder, "in.csv")
        let result = try toolcfg(Self.importArguments(folder.path("empty.db"), input, key: keyFile))
        #expect(result.status == 0, "\(result.stderr)")
        let report = try RotationFixtures.json(result.stdout)
        #expect(report["stored_keys_tried"] as? Int == 0 && report["updated"] as? Int == 1)
    }

    @Test("encrypted triples imported without a master key are counted as unchecked, on stderr and in --json", arguments: [false, true])
    func uncheckedTriplesAreReported(json: Bool) throws {
        let master = try key(TestMasterKeys.valid)
        let connection = try migratedDatabase(at: folder.path("t.db"))
        let secrets = try (1...3).map { try SecretCipher.encrypt("sk-\($0)", masterKey: master) }
        let input = try EngineSnapshots.write(
            "user_id,tool_id,encrypted_api_key,salt,nonce\n"
                + secrets.enumerated().map {
                    "u\($0.offset),t,\($0.element.encryptedAPIKey),\($0.element.salt),\($0.element.nonce)\n"
                }.joined() + "u9,t,,,\n", folder, "in.csv")
        var arguments = ["import", "--db", folder.path("t.db"), "--in", input]
        if json { arguments.append("--json") }
        let result = try toolcfg(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("3 encrypted key(s) were imported without being checked"), "\(result.stderr)")
        if json { #expect(try RotationFixtures.json(result.stdout)["unchecked_keys"] as? Int == 3) }
        // With the master key the same triples are checked, and none is unchecked.
        try connection.execute("DELETE FROM user_tool_configs")
        let keyFile = try RotationFixtures.keyFile(master, folder, "master.key")
        let checked = try toolcfg(Self.importArguments(folder.path("t.db"), input, key: keyFile))
        #expect(checked.status == 0, "\(checked.stderr)")
        #expect(try RotationFixtures.json(checked.stdout)["unchecked_keys"] as? Int == 0)
        #expect(!checked.stderr.contains("without being checked"))
    }

    @Test(
        """
        triples without a master key into a database holding keys in any table are refused (64), dry run included, nothing written; \
        --allow-unchecked-keys imports them
        """
    )
    func uncheckedTriplesIntoKeyedDatabaseAreRefused() throws {
        let master = try key(TestMasterKeys.valid)
        // Only api_model_aliases holds keys: user_tool_configs' one row has none.
        let database = try KeyedDatabase(at: folder.path("app.db"), master: master, rows: 1, noKey: { _ in true })
        let secret = try SecretCipher.encrypt("sk-new", masterKey: MasterKey.generate())
        let input = try EngineSnapshots.write(
            "user_id,tool_id,encrypted_api_key,salt,nonce\nnew,t,\(secret.encryptedAPIKey),\(secret.salt),\(secret.nonce)\n",
            folder, "in.csv")
        let before = try RotationFixtures.logicalState(database.path)
        for extra in [[], ["--dry-run"]] {
            let refused = try toolcfg(Self.importArguments(database.path, input, key: nil) + extra)
            #expect(refused.status == 64, "\(extra): \(refused.stderr)")
            #expect(
                refused.stderr.contains("--allow-unchecked-keys") && refused.stderr.contains(KeyedDatabase.aliases), "\(refused.stderr)")
            #expect(try RotationFixtures.json(refused.stdout)["exit_status"] as? Int == 64)
        }
        #expect(try RotationFixtures.logicalState(database.path) == before)
        // A file whose triples change nothing writes no unchecked key: allowed.
        let nothing = try EngineSnapshots.write("user_id,tool_id\nuser-1,tool-1\n", folder, "none.csv")
        #expect(try toolcfg(Self.importArguments(database.path, nothing, key: nil)).status == 0)

        let allowed = try toolcfg(Self.importArguments(database.path, input, key: nil) + ["--allow-unchecked-keys"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(try RotationFixtures.json(allowed.stdout)["unchecked_keys"] as? Int == 1)
        #expect(allowed.stderr.contains("1 encrypted key(s) were imported without being checked"), "\(allowed.stderr)")
    }

    @Test(
        "imported triples are checked in groups: each one that does not open under the master key is named by its line, the others go in",
        arguments: [1, 15, 16, 17, 37])
    func groupedTripleCheck(records: Int) throws {
        let master = try key(TestMasterKeys.valid), other = MasterKey.generate()
        let connection = try migratedDatabase(at: folder.path("t.db"))
        // Every third record under another key, every seventh tampered with (its last byte flipped).
        var text = "user_id,tool_id,encrypted_api_key,salt,nonce\n"
        var bad: [Int] = []
        for index in 0..<records {
            var secret = try SecretCipher.encrypt("sk-\(index)", masterKey: index % 3 == 2 ? other : master)
            if index % 7 == 6 {
                var sealed = try Base64.decode(secret.encryptedAPIKey, field: "encrypted_api_key")
                sealed[sealed.count - 1] ^= 1
                secret.encryptedAPIKey = Base64.encode(sealed)
            }
            if index % 3 == 2 || index % 7 == 6 { bad.append(index + 2) }
            text += "u\(index),t,\(secret.encryptedAPIKey),\(secret.salt),\(secret.nonce)\n"
        }
        let input = try EngineSnapshots.write(text, folder, "in.csv")
        let options = Importer.Options(input: input, format: .csv, maxErrors: 100, masterKey: master, jobs: 2)
        let error = thrownError { _ = try Importer(database: connection, options: options).run() }
        if bad.isEmpty {
            #expect(error == nil, "\(String(describing: error))")
            #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == Int64(records))
            return
        }
        let lines = (error as? SnapshotErrors)?.errors.map { $0.location.line ?? 0 } ?? [(error as? SnapshotError)?.location.line ?? 0]
        #expect(lines == bad)
        let fields = (error as? SnapshotErrors)?.errors.map { $0.location.field } ?? [(error as? SnapshotError)?.location.field]
        #expect(fields.allSatisfy { $0 == "encrypted_api_key" })
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 0)
    }
}
