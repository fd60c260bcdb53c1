import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

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
        try Data("user_id,tool_id,api_key\nu1,t1,\(plaintexts[0])\nu2,t2,\(plaintexts[1])\n".utf8).write(
            to: URL(fileURLWithPath: onboarding))
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
        try run(
            "export sealed",
            [
                "export", "--db", db, "--out", folder.path("s.jsonl"), "--keys", "sealed", "--seal-memory", "8",
                "--seal-iterations", "1", "--master-key-file", masterFile, "--passphrase-file", passFile, "--json"
            ])
        try run(
            "import sealed, wrong passphrase",
            [
                "import", "--db", db, "--in", folder.path("s.jsonl"), "--master-key-file", masterFile,
                "--passphrase-file", wrongPassFile
            ])
        try run("import encrypted, wrong master key", ["import", "--db", db, "--in", folder.path("e.json"), "--master-key-file", otherFile])
        try run(
            "export plaintext, wrong master key",
            [
                "export", "--db", db, "--format", "jsonl", "--out", folder.path("p.jsonl"),
                "--keys", "plaintext", "--master-key-file", otherFile
            ])
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

    @Test(
        "secrets are never taken from argv: no option accepts a key or passphrase value",
        arguments: [
            "--master-key", "--new-master-key", "--passphrase", "--key"
        ])
    func noSecretOptions(_ option: String) throws {
        let result = try toolcfg(["rotate", "--db", "x.db", option, MasterKey.generate().base64Text])
        #expect(result.status == 64)
        #expect(result.stderr.contains("Unknown option"))
    }

    // MARK: files that hold secrets

    /// A database with one row under `master`, and the key, new key and passphrase files beside
    /// it; outputs go to `out/`, which holds nothing else.
    static func secretOutputs(_ folder: TemporaryFolder) throws -> (db: String, out: String, commands: [(String, [String])]) {
        let master = MasterKey.generate()
        let db = folder.path("app.db"), out = folder.path("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        let keyFile = folder.path("master.key"), newKeyFile = folder.path("new.key"), passFile = folder.path("pass")
        try Data((master.base64Text + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))
        try Data((MasterKey.generate().base64Text + "\n").utf8).write(to: URL(fileURLWithPath: newKeyFile))
        try Data("a passphrase for the test".utf8).write(to: URL(fileURLWithPath: passFile))
        let input = folder.path("in.csv")
        try Data("user_id,tool_id,api_key\nu1,t1,sk-FILEMODE-0001\n".utf8).write(to: URL(fileURLWithPath: input))
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        #expect(try toolcfg(["import", "--db", db, "--in", input, "--master-key-file", keyFile]).status == 0)
        let export = ["export", "--db", db, "--out"]
        return (
            db, out,
            [
                ("keygen", ["keygen", "--out", out + "/master.key"]),
                ("keygen --force", ["keygen", "--out", out + "/master.key", "--force"]),
                ("export encrypted", export + [out + "/e.json", "--verify"]),
                ("export --force", export + [out + "/e.json", "--force"]),
                ("export plaintext", export + [out + "/p.csv", "--keys", "plaintext", "--master-key-file", keyFile]),
                (
                    "export sealed",
                    export + [
                        out + "/s.jsonl", "--keys", "sealed", "--seal-memory", "8", "--seal-iterations", "1",
                        "--master-key-file", keyFile, "--passphrase-file", passFile
                    ]
                ),
                (
                    "rotate --backup",
                    [
                        "rotate", "--db", db, "--master-key-file", keyFile, "--new-master-key-file", newKeyFile,
                        "--backup", out + "/before.db"
                    ]
                )
            ]
        )
    }

    /// Runs toolcfg with the umask cleared, so the mode it asks for at creation is the mode the
    /// file gets: only 0600 from open(2) itself, or a chmod afterwards, can end in 0600.
    static func withoutUmask(_ prefix: [String], _ arguments: [String]) throws -> ProcessResult {
        try runProcess(
            URL(fileURLWithPath: "/bin/sh"), ["-c", "umask 000; exec \"$@\"", "sh"] + prefix + [Repository.toolcfg.path] + arguments,
            removing: ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE"])
    }

    @Test("with no umask at all, every file holding secrets ends up 0600: keygen, export (encrypted, plaintext, sealed), rotate --backup")
    func secretFilesWithoutUmask() throws {
        let folder = try TemporaryFolder()
        let (_, out, commands) = try Self.secretOutputs(folder)
        for (name, arguments) in commands {
            let result = try Self.withoutUmask([], arguments)
            #expect(result.status == 0, "\(name): \(result.stderr)")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: out)
        #expect(Set(files) == ["master.key", "e.json", "p.csv", "s.jsonl", "before.db"], "\(files)")
        for file in files {
            let mode = try FileManager.default.attributesOfItem(atPath: out + "/" + file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file): \(String(mode ?? -1, radix: 8))")
        }
    }

    /// Whether strace can trace a child here (scripts/bootstrap.sh installs it; some containers
    /// forbid ptrace).
    static let straceWorks: Bool =
        (try? runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["strace", "-f", "-o", "/dev/null", "true"]).status) == 0

    @Test(
        "every file holding secrets is created 0600 by open(2) itself, never chmod-ed after, journal of the backup included (strace)",
        .enabled(if: straceWorks, "strace cannot trace children here"))
    func secretFilesCreatedPrivate() throws {
        let folder = try TemporaryFolder()
        let (_, out, commands) = try Self.secretOutputs(folder)
        for (name, arguments) in commands {
            let trace = folder.path("trace")
            let result = try Self.withoutUmask(
                [
                    "strace", "-f", "-y", "-qq", "-o", trace,
                    "-e", "trace=open,openat,creat,chmod,fchmod,fchmodat"
                ], arguments)
            #expect(result.status == 0, "\(name): \(result.stderr)")
            // Calls on files in out/ (strace -y names a descriptor's file too).
            let calls = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").filter { $0.contains(out + "/") }
            let creations = calls.filter { $0.contains("O_CREAT") || $0.contains("creat(") }
            #expect(!creations.isEmpty, "\(name): no file created in out/ was traced")
            for call in creations {
                #expect(call.contains(", 0600)"), "\(name): created with another mode: \(call)")
            }
            for call in calls where call.contains("chmod") {
                Issue.record("\(name): a mode changed after creation: \(call)")
            }
            if name == "rotate --backup" {
                #expect(creations.contains { $0.contains("before.db-journal\"") }, "the backup's journal was not seen: \(creations)")
            }
        }
    }

    #if DEBUG
        /// A 32-byte buffer that held key material and was zeroed before it was freed.
        static let wipedKey = WipeObserver.Wipe(count: 32, heldNonzero: true, zeroed: true)
        /// The locked page of its own that a master key is kept in (`SecureBytes(locking:)`).
        static let wipedLockedPage = WipeObserver.Wipe(count: Int(sysconf(Int32(_SC_PAGESIZE))), heldNonzero: true, zeroed: true)

        @Test("key material and plaintexts are zeroed before their memory is freed: master key, row keys, Argon2 key, decrypted bytes")
        func wipedAfterUse() throws {
            // 25 bytes, a length no key has, so its wipes are told apart from the keys'.
            let plaintext = "sk-WIPE-0123456789abcdefg"
            let master = MasterKey.generate(), newKey = MasterKey.generate()

            let parsed = try WipeObserver.observe { _ = try MasterKey(text: TestMasterKeys.valid, source: .generated) }
            #expect(
                parsed == [Self.wipedKey, Self.wipedLockedPage],
                "parsing and releasing a master key: the decoded bytes, then its locked copy")

            var stored: StoredSecret?
            let encrypted = try WipeObserver.observe { stored = try SecretCipher.encrypt(plaintext, masterKey: master) }
            let secret = try #require(stored)
            #expect(encrypted.filter { $0 == Self.wipedKey }.count == 1, "encrypt: the row key: \(encrypted)")
            #expect(encrypted.contains { $0.count == 25 && $0.heldNonzero }, "encrypt: the plaintext bytes: \(encrypted)")

            var opened: String?
            let decrypted = try WipeObserver.observe { opened = try SecretCipher.decrypt(secret, masterKey: master) }
            #expect(opened == plaintext)
            #expect(decrypted.filter { $0 == Self.wipedKey }.count == 1, "decrypt: the row key: \(decrypted)")
            #expect(decrypted.contains { $0.count == 25 && $0.heldNonzero }, "decrypt: the opened bytes: \(decrypted)")

            // A rotation derives both row keys at once (the interleaved path) and checks its result.
            let rotated = WipeObserver.observe {
                let outcome = KeyRotator.rotate(
                    SecretRow(rowID: 1, id: "1", secret: secret, partial: false), oldKey: master, newKey: newKey)
                guard case .rotated = outcome else { Issue.record("rotate: \(outcome)"); return }
            }
            #expect(rotated.filter { $0 == Self.wipedKey }.count == 2, "rotate: the old and new row keys: \(rotated)")
            #expect(rotated.filter { $0.count == 25 && $0.heldNonzero }.count >= 2, "rotate: the plaintext and its check: \(rotated)")

            // A sealed export's Argon2id key and passphrase go when the sealer goes.
            let sealing = try WipeObserver.observe {
                let sealer = try SnapshotSealer(
                    passphrase: SecureBytes(Array("a passphrase".utf8)), cost: .init(memoryKiB: 64, iterations: 1, lanes: 1))
                opened = try sealer.open(try sealer.seal(plaintext, userID: "u", toolID: "t"), userID: "u", toolID: "t")
            }
            #expect(opened == plaintext)
            #expect(sealing.filter { $0 == Self.wipedKey }.count == 1, "sealing: the Argon2id key: \(sealing)")
            #expect(sealing.contains { $0.count == 12 && $0.heldNonzero }, "sealing: the passphrase: \(sealing)")
            #expect(
                sealing.filter { $0.count == 25 && $0.heldNonzero }.count >= 2, "sealing: seal's and open's plaintext bytes: \(sealing)")

            for wipes in [parsed, encrypted, decrypted, rotated, sealing] {
                #expect(wipes.allSatisfy { $0.zeroed }, "a buffer was not all zeros after its wipe: \(wipes)")
            }
        }
    #endif
}

/// Key material in memory: no core file and no ptrace by the same user (`ProcessHardening`), and
/// long-lived keys in locked pages.
@Suite("Secrets in memory")
struct SecretsInMemoryTests {
    /// Runs `command` in `folder` under bash with core files allowed (the soft limit raised to the
    /// hard one), as an operator's shell may have it.
    static func withCoresAllowed(_ command: String, in folder: TemporaryFolder, environment: [String: String] = [:]) throws -> ProcessResult
    {
        try runProcess(
            URL(fileURLWithPath: "/bin/bash"), ["-c", "ulimit -S -c $(ulimit -H -c) 2>/dev/null; cd '\(folder.url.path)' && \(command)"],
            environment: environment)
    }

    static func cores(in folder: TemporaryFolder) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.url.path)) ?? []).filter { $0.hasPrefix("core") }
    }

    @Test(
        "a rotation that crashes holding every key writes no core file: it was not dumpable, with a core limit of 0",
        .disabled(if: Sanitizer.running != nil, "a sanitizer's runtime handles the abort and core files itself (ASan turns core dumps off)")
    )
    func crashWritesNoCore() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("app.db")
        for name in ["old", "new"] { #expect(try toolcfg(["keygen", "--out", folder.path(name)]).status == 0) }
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        try Data("user_id,tool_id,api_key\nu1,t1,sk-one\nu2,t1,sk-two\n".utf8).write(to: URL(fileURLWithPath: folder.path("in.csv")))
        #expect(try toolcfg(["import", "--db", db, "--in", folder.path("in.csv"), "--master-key-file", folder.path("old")]).status == 0)

        // The control: where cores are written at all, a process that aborts leaves one here.
        let control = try Self.withCoresAllowed("exec python3 -c 'import os; os.abort()'", in: folder)
        #expect(control.status != 0)
        let controlLeftOne = !Self.cores(in: folder).isEmpty
        for core in Self.cores(in: folder) { try FileManager.default.removeItem(atPath: folder.path(core)) }

        let crashed = try Self.withCoresAllowed(
            "exec '\(Repository.toolcfg.path)' rotate --db app.db --master-key-file old --new-master-key-file new",
            in: folder, environment: ["TOOLCFG_TEST_CRASH_AT": "keys-derived:abort"])
        #expect(crashed.status != 0)
        // Not dumpable, no core allowed, and both master keys in locked pages (root may lock any).
        let state = try #require(
            crashed.stderr.firstMatch(of: /dumpable=(\d) core-limit=(\d+) locked-key-pages=(\d+)/), "\(crashed.stderr)")
        #expect(state.1 == "0" && state.2 == "0", "\(crashed.stderr)")
        if getuid() == 0 { #expect(Int(state.3)! >= 2, "\(crashed.stderr)") }
        #expect(Self.cores(in: folder).isEmpty, "a core file was written (the control \(controlLeftOne ? "did" : "did not") leave one)")
        // Nothing was written: every key still opens under the old key.
        #expect(try toolcfg(["verify-keys", "--db", db, "--master-key-file", folder.path("old")]).status == 0)
    }

    @Test(
        "a locked copy of key material holds its bytes in a locked page",
        .disabled(if: Sanitizer.running != nil, "the sanitizers' runtimes intercept mlock and make it a no-op"))
    func lockedPages() throws {
        func lockedKiB() throws -> Int {
            let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmLck:") })
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])!
        }
        let before = try lockedKiB()
        var key: SecureBytes? = SecureBytes(locking: SecureBytes(Array(repeating: 7, count: 32)))
        #expect(key!.withBytes { Array($0) } == Array(repeating: 7, count: 32))
        // Other tests may lock keys at the same time: at least this one's page is counted.
        #expect(try lockedKiB() >= before + 4, "VmLck did not grow")
        #expect(ProcessHardening.lockedKeyPages >= 1)
        key = nil
        _ = key
    }
}
