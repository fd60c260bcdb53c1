import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Rotation into the application's keyring entry, in the tests' own session keyring: the new
/// key kept where it survives a crash before the commit (`secret_key.next`), switched in after the
/// read-back with the old one kept as `secret_key.previous` until forget-old-key; a crash at any
/// point finished by a rerun.
@Suite("Keyring rotation", TestKeyring.trait)
struct KeyringRotationTests {
    static let service = KeyringEntry.defaultService

    /// A database with secrets under `old`, which the keyring's application entry holds.
    final class Scene {
        let folder: TemporaryFolder
        let old = MasterKey.generate()
        let database: KeyedDatabase
        var db: String { database.path }

        init(oldInKeyring: Bool = true) throws {
            folder = try TemporaryFolder()
            database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 4)
            if oldInKeyring { try KeyringEntry.application(service: service).store(old) }
        }

        var application: MasterKey? { get throws { try KeyringEntry.application(service: service).masterKey() } }
        var next: MasterKey? { get throws { try KeyringEntry.next(service: service).masterKey() } }
        var previous: MasterKey? { get throws { try KeyringEntry.previous(service: service).masterKey() } }

        /// Whether every secret of the database opens under `key`.
        func allUnder(_ key: MasterKey) throws -> Bool {
            let connection = try database.connection()
            defer { connection.close() }
            let report = try KeyVerifier(database: connection, masterKey: key).run()
            return report.ok && report.groups.reduce(0) { $0 + $1.underMasterKey } == database.keyedTotal
        }

        func report(_ result: ProcessResult) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        }
    }

    static let generateIntoKeyring = ["--master-key-keyring", "--generate-new-key"]

    @Test("--master-key-keyring --generate-new-key: the entry holds the new key, the old one is kept as .previous, next_steps kept with -q")
    func generateIntoTheKeyring() throws {
        try TestKeyring.run {
            let scene = try Scene()
            let result = try TestKeyring.toolcfg(["rotate", "--db", scene.db, "--json", "-q"] + Self.generateIntoKeyring)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.isEmpty, "\(result.stderr)")
            let report = try scene.report(result)
            let new = try #require(try scene.application)
            #expect(new.material != scene.old.material)
            #expect(report["new_master_key_fingerprint"] as? String == new.fingerprint)
            #expect(try scene.previous?.material == scene.old.material)
            #expect(try scene.next == nil)
            #expect(try scene.allUnder(new))
            let steps = try #require(report["next_steps"] as? [String])
            #expect(steps.count == 4, "\(steps)")
            #expect(steps[0].contains("keyring-rs:secret_key@Bodhi App holds the new key \(new.fingerprint)"))
            #expect(steps[1].contains("restart the application"))
            #expect(steps[2].contains("--master-key-keyring 'Bodhi App' --new-master-key-keyring 'Bodhi App'"))
            #expect(steps[3].contains("toolcfg forget-old-key --keyring 'Bodhi App' --db \(scene.db)"))
            try JSONReportTests.validate([JSONReportTests.Output(kind: "rotate", arguments: [], result: result, json: result.stdout)])

            // A second rotation while .previous holds the first one's old key is refused: the
            // switch would overwrite the only copy of a key the application may still write under.
            let refused = try TestKeyring.toolcfg(["rotate", "--db", scene.db] + Self.generateIntoKeyring)
            #expect(refused.status == 64, "\(refused.stderr)")
            #expect(
                refused.stderr.contains(
                    "keyring-rs:secret_key.previous@Bodhi App still holds the key \(scene.old.fingerprint) of an earlier rotation"),
                "\(refused.stderr)")
            #expect(try scene.previous?.material == scene.old.material && scene.application?.material == new.material && scene.next == nil)
            #expect(try scene.allUnder(new))

            // Once it is forgotten, the next rotation goes ahead; without -q the steps end its report.
            #expect(try TestKeyring.toolcfg(["forget-old-key", "--db", scene.db]).status == 0)
            let human = try TestKeyring.toolcfg(["rotate", "--db", scene.db] + Self.generateIntoKeyring)
            #expect(human.status == 0, "\(human.stderr)")
            #expect(
                human.stderr.contains("next:\n  1. done by this run: keyring-rs:secret_key@Bodhi App holds the new key"), "\(human.stderr)")
            #expect(human.stderr.hasSuffix("--db \(scene.db)\n"), "\(human.stderr)")
            // The second rotation kept the first one's new key as the previous one.
            #expect(try scene.previous?.material == new.material)
        }
    }

    @Test("from the application's environment text into the keyring: the entry is created")
    func environmentIntoKeyring() throws {
        try TestKeyring.run {
            let text = ApplicationKeyText.generate()
            let old = try ApplicationKeyText.masterKey(text: text, source: .generated)
            let folder = try TemporaryFolder()
            let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 3)
            let result = try TestKeyring.toolcfg(
                [
                    "rotate", "--db", database.path, "--master-key-env", "BODHI_ENCRYPTION_KEY", "--new-master-key-keyring",
                    "--generate-new-key", "--json"
                ], environment: ["BODHI_ENCRYPTION_KEY": text])
            #expect(result.status == 0, "\(result.stderr)")
            let new = try #require(try KeyringEntry.application(service: Self.service).masterKey())
            #expect(try KeyringEntry.previous(service: Self.service).masterKey() == nil)
            #expect(try KeyringEntry.next(service: Self.service).masterKey() == nil)
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(report["master_key_fingerprint"] as? String == old.fingerprint)
            #expect(report["new_master_key_fingerprint"] as? String == new.fingerprint)
            let steps = report["next_steps"] as? [String] ?? []
            #expect(steps.first?.contains("remove BODHI_ENCRYPTION_KEY from the application's environment") == true, "\(steps)")
            #expect(steps.contains { $0.contains("--new-master-key-keyring 'Bodhi App' and without --generate-new-key") }, "\(steps)")
            #expect(
                steps.last?.contains("discard the old key \(old.fingerprint) (environment variable BODHI_ENCRYPTION_KEY (key text))")
                    == true, "\(steps)")
            #expect(!steps.contains { $0.contains("forget-old-key") })
            // That catch-up run: the old key from the variable, the new one from the entry.
            let catchUp = try TestKeyring.toolcfg(
                ["rotate", "--db", database.path, "--master-key-env", "BODHI_ENCRYPTION_KEY", "--new-master-key-keyring"],
                environment: ["BODHI_ENCRYPTION_KEY": text])
            #expect(catchUp.status == 0, "\(catchUp.stderr)")
            #expect(catchUp.stderr.contains("0 rotated, \(database.keyedTotal) already under the new key"), "\(catchUp.stderr)")
            #expect(try KeyringEntry.application(service: Self.service).masterKey()?.material == new.material)
        }
    }

    @Test("--generate-new-key --new-master-key-out: a new 0600 file before the commit, never over one")
    func generateIntoFile() throws {
        let folder = try TemporaryFolder()
        let old = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 3)
        let oldFile = folder.path("old.key")
        try PrivateFile.write(Data(old.base64Text.utf8), to: oldFile)
        let out = folder.path("new.key")

        // Refused before anything: no destination, --new-master-key-out without generating, two destinations.
        for (arguments, message) in [
            (["--generate-new-key"], "--generate-new-key needs somewhere to keep the new key"),
            (["--new-master-key-out", out, "--new-master-key-file", oldFile], "--new-master-key-out names where a generated key goes"),
            (["--generate-new-key", "--new-master-key-out", out, "--new-master-key-keyring"], "not both"),
            (["--generate-new-key", "--new-master-key-file", oldFile], "do not give --new-master-key-file too")
        ] {
            let result = try toolcfg(["rotate", "--db", database.path, "--master-key-file", oldFile] + arguments)
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }

        let result = try toolcfg([
            "rotate", "--db", database.path, "--master-key-file", oldFile, "--generate-new-key", "--new-master-key-out", out, "--json"
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let attributes = try FileManager.default.attributesOfItem(atPath: out)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let new = try SecretInput.requireMasterKey(filePath: out, environment: [:])
        let connection = try database.connection()
        defer { connection.close() }
        #expect(try KeyVerifier(database: connection, masterKey: new).run().ok)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["new_master_key_fingerprint"] as? String == new.fingerprint)
        let steps = report["next_steps"] as? [String] ?? []
        #expect(steps.first?.contains("written to \(out)") == true, "\(steps)")
        #expect(steps.contains { $0.contains("--new-master-key-file \(out) in place of --generate-new-key") }, "\(steps)")

        // Killed after the commit: the database is under the file's key, which finishes it.
        let crashedOut = folder.path("crashed.key")
        let crashed = try toolcfg(
            ["rotate", "--db", database.path, "--master-key-file", out, "--generate-new-key", "--new-master-key-out", crashedOut],
            environment: ["TOOLCFG_TEST_CRASH_AT": "database-committed"])
        #expect(crashed.status == SIGKILL, "\(crashed.stderr)")
        let staged = try SecretInput.requireMasterKey(filePath: crashedOut, environment: [:])
        #expect(try KeyVerifier(database: connection, masterKey: staged).run().ok)
        let finished = try toolcfg(["rotate", "--db", database.path, "--master-key-file", out, "--new-master-key-file", crashedOut])
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(finished.stderr.contains("0 rotated, \(database.keyedTotal) already under the new key"), "\(finished.stderr)")

        // A second run would write over it: refused, the file and the database unchanged.
        let before = try Data(contentsOf: URL(fileURLWithPath: database.path))
        let again = try toolcfg([
            "rotate", "--db", database.path, "--master-key-file", out, "--generate-new-key", "--new-master-key-out", out
        ])
        #expect(again.status == 74, "\(again.stderr)")
        #expect(again.stderr.contains("finish that rotation with --new-master-key-file \(out)"), "\(again.stderr)")
        #expect(try SecretInput.requireMasterKey(filePath: out, environment: [:]).material == new.material)
        #expect(try Data(contentsOf: URL(fileURLWithPath: database.path)) == before)
    }

    static let crashPoints = ["keys-derived", "new-key-stored", "database-committed", "keyring-previous-stored", "keyring-switched"]

    @Test("a crash at each step of the switch: the same command again finishes it", arguments: crashPoints)
    func crashThenRerun(point: String) throws {
        try TestKeyring.run {
            let scene = try Scene()
            let command = ["rotate", "--db", scene.db] + Self.generateIntoKeyring
            let crashed = try TestKeyring.toolcfg(command, environment: ["TOOLCFG_TEST_CRASH_AT": point])
            #expect(crashed.status == SIGKILL, "\(point): \(crashed.stderr)")
            let staged = try scene.next
            // Before the new key is stored nothing is staged; from then on, always.
            #expect((staged == nil) == (point == "keys-derived"), "\(point)")
            let committed = ["database-committed", "keyring-previous-stored", "keyring-switched"].contains(point)
            if let staged { #expect(try scene.allUnder(committed ? staged : scene.old), "\(point)") }
            // The application's entry holds the old key until the switch, the new one after it.
            #expect(try scene.application?.material == (point == "keyring-switched" ? staged! : scene.old).material, "\(point)")

            let rerun = try TestKeyring.toolcfg(command + ["--json"])
            #expect(rerun.status == 0, "\(point): \(rerun.stderr)")
            let new = try #require(try scene.application)
            if let staged { #expect(new.material == staged.material, "\(point): the rerun goes on with the staged key") }
            #expect(new.material != scene.old.material)
            #expect(try scene.previous?.material == scene.old.material, "\(point)")
            #expect(try scene.next == nil, "\(point)")
            #expect(try scene.allUnder(new), "\(point)")
            let report = try scene.report(rerun)
            #expect(report["new_master_key_fingerprint"] as? String == new.fingerprint)
            if committed {
                let total = report["total"] as? [String: Any]
                #expect(
                    total?["rotated"] as? Int == 0 && total?["already_rotated"] as? Int == scene.database.keyedTotal, "\(point): \(report)")
            }
        }
    }

    @Test("forget-old-key refuses while a secret opens only under the previous key; the catch-up rotation, then it forgets")
    func forgetOldKey() throws {
        try TestKeyring.run {
            let scene = try Scene()
            #expect(try TestKeyring.toolcfg(["rotate", "--db", scene.db] + Self.generateIntoKeyring).status == 0)
            let new = try #require(try scene.application)
            // The application, not yet restarted, writes a key under the old one.
            let connection = try scene.database.connection()
            let secret = try SecretCipher.encrypt("sk-written-meanwhile", masterKey: scene.old)
            try connection.prepare("UPDATE user_tool_configs SET encrypted_api_key = ?1, salt = ?2, nonce = ?3 WHERE id = 1")
                .run([.text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)])
            connection.close()

            let refused = try TestKeyring.toolcfg(["forget-old-key", "--keyring", "--db", scene.db, "--json"])
            #expect(refused.status == 65, "\(refused.stderr)")
            #expect(refused.stderr.contains("1 secret(s) in \(scene.db) still open only under it"), "\(refused.stderr)")
            #expect(try scene.previous?.material == scene.old.material)

            // The catch-up: from .previous to the application's entry; run twice, it never drops the previous key.
            for expected in [1, 0] {
                let catchUp = try TestKeyring.toolcfg([
                    "rotate", "--db", scene.db, "--master-key-keyring", "--new-master-key-keyring", "--json"
                ])
                #expect(catchUp.status == 0, "\(catchUp.stderr)")
                let report = try scene.report(catchUp)
                #expect((report["total"] as? [String: Any])?["rotated"] as? Int == expected)
                #expect(report["master_key_fingerprint"] as? String == scene.old.fingerprint)
                #expect(report["new_master_key_fingerprint"] as? String == new.fingerprint)
                #expect(try scene.previous?.material == scene.old.material)
                #expect(try scene.application?.material == new.material)
            }
            #expect(try scene.allUnder(new))

            let forgotten = try TestKeyring.toolcfg(["forget-old-key", "--master-key-keyring", "--db", scene.db, "--json"])
            #expect(forgotten.status == 0, "\(forgotten.stderr)")
            let report = try scene.report(forgotten)
            #expect(report["forgotten"] as? Bool == true)
            #expect(report["previous_key_fingerprint"] as? String == scene.old.fingerprint)
            #expect(report["values_checked"] as? Int == scene.database.keyedTotal)
            #expect(try scene.previous == nil)
            #expect(try scene.application?.material == new.material)
            // With no previous key and nothing staged, keyring to keyring has nothing to do: refused.
            let nothingToCatchUp = try TestKeyring.toolcfg(["rotate", "--db", scene.db, "--master-key-keyring", "--new-master-key-keyring"])
            #expect(nothingToCatchUp.status == 64, "\(nothingToCatchUp.stderr)")
            #expect(nothingToCatchUp.stderr.contains("give --generate-new-key to rotate to a new key"), "\(nothingToCatchUp.stderr)")
            // Once more: nothing to forget, nothing changed.
            let nothing = try TestKeyring.toolcfg(["forget-old-key", "--keyring"])
            #expect(
                nothing.status == 0 && nothing.stderr.contains("no keyring-rs:secret_key.previous@Bodhi App to forget"), "\(nothing.stderr)"
            )
            try JSONReportTests.validate(
                [refused, forgotten].map { JSONReportTests.Output(kind: nil, arguments: [], result: $0, json: $0.stdout) })
        }
    }
}
