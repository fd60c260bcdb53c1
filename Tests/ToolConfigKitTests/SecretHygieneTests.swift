import Foundation
import Testing
@testable import ToolConfigKit

/// Every path a secret can take through the command line, failing or not: no key, passphrase,
/// plaintext or stored triple may appear on stdout or stderr, in messages or `--json` reports.
@Suite("Secret hygiene")
struct SecretHygieneTests {
    @Test("no secret value in any output of keygen, import, export, rotate or verify-keys, failing or not")
    func noSecretInOutput() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("h.db")
        let master = MasterKey.generate(), other = MasterKey.generate(), third = MasterKey.generate()
        let masterFile = folder.path("master.key"), otherFile = folder.path("other.key")
        try Data((master.base64Text + "\n").utf8).write(to: URL(fileURLWithPath: masterFile))
        try Data((other.base64Text + "\n").utf8).write(to: URL(fileURLWithPath: otherFile))
        let thirdFile = folder.path("third.key")
        try Data((third.base64Text + "\n").utf8).write(to: URL(fileURLWithPath: thirdFile))
        let passphrase = "correct horse battery staple 4711"
        let passFile = folder.path("pass")
        try Data(passphrase.utf8).write(to: URL(fileURLWithPath: passFile))
        let wrongPassFile = folder.path("wrong-pass")
        try Data("not the passphrase at all".utf8).write(to: URL(fileURLWithPath: wrongPassFile))
        let plaintexts = ["sk-HYGIENE-alpha-00000001", "sk-HYGIENE-beta-00000002"]
        let onboarding = folder.path("onboarding.csv")
        try Data("user_id,tool_id,api_key\nu1,t1,\(plaintexts[0])\nu2,t2,\(plaintexts[1])\n".utf8).write(to: URL(fileURLWithPath: onboarding))
        let typoKey = folder.path("typo.key")
        try Data((String(master.base64Text.dropLast(2)) + "!=\n").utf8).write(to: URL(fileURLWithPath: typoKey))

        var runs: [(String, ProcessResult)] = []
        func run(_ name: String, _ arguments: [String]) throws {
            runs.append((name, try toolcfg(arguments)))
        }
        try run("migrate", ["migrate", "up", "--db", db, "--json"])
        try run("import", ["import", "--db", db, "--in", onboarding, "--master-key-file", masterFile, "--json"])
        try run("import, key with a typo", ["import", "--db", db, "--in", onboarding, "--master-key-file", typoKey])
        try run("export encrypted", ["export", "--db", db, "--out", folder.path("e.json"), "--verify", "--json"])
        try run("export sealed", ["export", "--db", db, "--out", folder.path("s.jsonl"), "--keys", "sealed", "--seal-memory", "8",
                                  "--seal-iterations", "1", "--master-key-file", masterFile, "--passphrase-file", passFile, "--json"])
        try run("import sealed, wrong passphrase", ["import", "--db", db, "--in", folder.path("s.jsonl"), "--master-key-file", masterFile,
                                                    "--passphrase-file", wrongPassFile])
        try run("import encrypted, wrong master key", ["import", "--db", db, "--in", folder.path("e.json"), "--master-key-file", otherFile])
        try run("export plaintext, wrong master key", ["export", "--db", db, "--format", "jsonl", "--out", folder.path("p.jsonl"),
                                                       "--keys", "plaintext", "--master-key-file", otherFile])
        try run("verify-keys, wrong key", ["verify-keys", "--db", db, "--master-key-file", otherFile, "--json"])
        // The rows are under neither of these two keys.
        try run("rotate, wrong old key", ["rotate", "--db", db, "--master-key-file", thirdFile, "--new-master-key-file", otherFile])
        try run("rotate", ["rotate", "--db", db, "--master-key-file", masterFile, "--new-master-key-file", otherFile, "--json"])
        try run("verify-keys", ["verify-keys", "--db", db, "--master-key-file", otherFile, "--new-master-key-file", masterFile, "--json"])
        try run("keygen over an existing file", ["keygen", "--out", masterFile])

        // Every secret in play, and the stored triples (as base64 and their first characters).
        var secrets = [master.base64Text, other.base64Text, third.base64Text, passphrase] + plaintexts
        let rows = try SQLiteConnection(path: db, mode: .readOnly).prepare("SELECT encrypted_api_key, salt, nonce FROM user_tool_configs")
        while try rows.step() { secrets += [rows.text(0)!, rows.text(1)!, rows.text(2)!] }
        secrets += secrets.map { String($0.prefix(12)) }
        #expect(runs.filter { $0.1.status != 0 }.count == 7, "\(runs.map { "\($0.0): \($0.1.status)" })")
        for (name, result) in runs {
            for secret in secrets {
                #expect(!result.stdout.contains(secret), "\(name): stdout shows a secret")
                #expect(!result.stderr.contains(secret), "\(name): stderr shows a secret")
            }
        }
    }

    @Test("secrets are never taken from argv: no option accepts a key or passphrase value", arguments: [
        "--master-key", "--new-master-key", "--passphrase", "--key",
    ])
    func noSecretOptions(_ option: String) throws {
        let result = try toolcfg(["rotate", "--db", "x.db", option, MasterKey.generate().base64Text])
        #expect(result.status == 64)
        #expect(result.stderr.contains("Unknown option"))
    }
}
