import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension SnapshotsTests {
    // MARK: - 6. The command line

    static func cliDatabase(_ folder: TemporaryFolder) throws -> SnapshotFixtures.SQLiteFile {
        let db = try SnapshotFixtures.SQLiteFile(folder, "cli.db")
        let master = try SnapshotFixtures.master()
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
        #expect(try SnapshotFixtures.permissions(out) == 0o600)

        let plain = folder.path("plain.jsonl")
        let plaintext = try toolcfg(
            ["export", "--db", db.path, "--out", plain, "--keys", "plaintext", "--verify"],
            environment: ["TOOLCFG_MASTER_KEY": TestMasterKeys.valid])
        #expect(plaintext.status == 0, "\(plaintext.stderr)")
        #expect(!plaintext.stderr.contains("sk-cli-a"))
        #expect(try SnapshotFixtures.permissions(plain) == 0o600)

        let copy = try SnapshotFixtures.SQLiteFile(folder, "copy.db")
        let imported = try toolcfg(["import", "--db", copy.path, "--in", out, "--json"])
        #expect(imported.status == 0, "\(imported.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(imported.stdout.utf8)) as? [String: Any]
        #expect(report?["inserted"] as? Int == 3)
        #expect(report?["integrity_checked"] as? Bool == true)
        #expect(try copy.plainRows(SnapshotFixtures.master()) == db.plainRows(SnapshotFixtures.master()))
    }

    @Test("toolcfg import of a malformed file exits 65, names file:line and field, and changes nothing")
    func cliImportMalformed() throws {
        let folder = try TemporaryFolder()
        let db = try Self.cliDatabase(folder)
        let path = folder.path("bad.csv")
        try SnapshotFixtures.write("user_id,tool_id,enabled\nok,tool,1\nbad,tool,perhaps\n", to: path)
        let before = try db.dump()
        let result = try toolcfg(["import", "--db", db.path, "--in", path])
        #expect(result.status == 65)
        #expect(result.stderr.contains("\(path):3"), "\(result.stderr)")
        #expect(result.stderr.contains("field enabled"), "\(result.stderr)")
        #expect(try db.dump() == before)

        let triple = folder.path("foreign.csv")
        let foreign = try SecretCipher.encrypt("sk-foreign-secret", masterKey: MasterKey.generate())
        try SnapshotFixtures.write("\(Self.tripleHeader)\n\(Self.tripleRow("x", foreign))\n", to: triple)
        let wrongKey = try toolcfg(["import", "--db", db.path, "--in", triple], environment: ["TOOLCFG_MASTER_KEY": TestMasterKeys.valid])
        #expect(wrongKey.status == 65)
        #expect(wrongKey.stderr.contains("\(triple):2"))
        #expect(wrongKey.stderr.contains("field encrypted_api_key"))
        for value in [foreign.encryptedAPIKey, foreign.salt, foreign.nonce, TestMasterKeys.valid] {
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
        #expect(try db.plainRows(SnapshotFixtures.master()).contains { $0.userID == "stdin-user" && $0.enabled })
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
        try SnapshotFixtures.write("precious", to: target)
        let existing = try toolcfg(["export", "--db", db.path, "--out", link, "--force"])
        #expect(existing.status == 74)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious")
    }

    @Test("an existing output file is refused without --force and replaced with it")
    func cliExistingOutput() throws {
        let folder = try TemporaryFolder()
        let db = try Self.cliDatabase(folder)
        let out = folder.path("out.csv")
        try SnapshotFixtures.write("precious", to: out)
        let refused = try toolcfg(["export", "--db", db.path, "--out", out])
        #expect(refused.status == 74, "\(refused.stderr)")
        #expect(refused.stderr.contains("--force"))
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "precious")
        let forced = try toolcfg(["export", "--db", db.path, "--out", out, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.hasPrefix("id,user_id,tool_id,enabled,encrypted_api_key,salt,nonce,created_at,updated_at\r\n"))
        #expect(try SnapshotFixtures.permissions(out) == 0o600)
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
