import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The master key in every form the application keeps it: base64 in a file or TOOLCFG_MASTER_KEY,
/// the application's text (BODHI_ENCRYPTION_KEY: its SHA-256 is the key) in a variable or a file,
/// and the keyring entry; one key, one fingerprint, whatever the form.
@Suite("Master key forms")
struct MasterKeyFormTests {
    /// An application key text, the key it yields, and a database of secrets under that key.
    final class Scene {
        let folder: TemporaryFolder
        let text: String
        let key: MasterKey
        let db: String

        init() throws {
            folder = try TemporaryFolder()
            text = "test-key-text-" + Digest.hex(SecureRandom.bytes(12))
            key = try MasterKey(material: SecureBytes(Digest.sha256(Array(text.utf8))), source: .generated)
            db = folder.path("app.db")
            _ = try KeyedDatabase(at: db, master: key, rows: 2)
        }

        func write(_ name: String, _ contents: String, mode: mode_t = 0o600) throws -> String {
            let path = folder.path(name)
            try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
            chmod(path, mode)
            return path
        }
    }

    enum Form: String, CaseIterable, Sendable {
        case base64File, base64Environment, textEnvironment, bareTextFile, textFileWithoutNewline, envFile, keyring, keyringDefaultService
    }

    /// The arguments and environment that give `scene.key` in `form`.
    static func arguments(_ form: Form, _ scene: Scene) throws -> (arguments: [String], environment: [String: String]) {
        switch form {
        case .base64File:
            return (["--master-key-file", try scene.write("key.b64", scene.key.base64Text + "\n")], [:])
        case .base64Environment:
            return ([], ["TOOLCFG_MASTER_KEY": scene.key.base64Text])
        case .textEnvironment:
            return (["--master-key-env", "APP_KEY"], ["APP_KEY": scene.text])
        case .bareTextFile:
            return (["--master-key-text-file", try scene.write("key.txt", scene.text + "\n")], [:])
        case .textFileWithoutNewline:
            return (["--master-key-text-file", try scene.write("key.txt", scene.text)], [:])
        case .envFile:
            let contents = "# the application's env file\n\nBODHI_HOME=/data\n  BODHI_ENCRYPTION_KEY=\(scene.text)\r\nBODHI_PORT=1135\n"
            return (["--master-key-text-file", try scene.write("app.env", contents)], [:])
        case .keyring:
            try KeyringEntry.application(service: "toolcfg test").store(scene.key)
            return (["--master-key-keyring", "toolcfg test"], [:])
        case .keyringDefaultService:
            try KeyringEntry.application(service: KeyringEntry.defaultService).store(scene.key)
            return (["--master-key-keyring"], [:])  // no value: the application's service
        }
    }

    @Test("every form gives the same key, with the fingerprint of its 32 bytes", TestKeyring.trait, arguments: Form.allCases)
    func everyFormGivesTheKey(form: Form) throws {
        try TestKeyring.run {
            let scene = try Scene()
            let (arguments, environment) = try Self.arguments(form, scene)
            // The keyring flag last, then followed by another flag: both take the default service.
            for order in [
                ["verify-keys", "--db", scene.db, "--json"] + arguments, ["verify-keys"] + arguments + ["--db", scene.db, "--json"]
            ] {
                let result = try TestKeyring.toolcfg(order, environment: environment)
                #expect(result.status == 0, "\(form): \(result.stderr)")
                let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
                #expect(report?["master_key_fingerprint"] as? String == scene.key.fingerprint, "\(form)")
                #expect(!result.stderr.contains("readable by"), "\(form): \(result.stderr)")
            }
        }
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        var name: String
        var arguments: [String]
        var environment: [String: String] = [:]
        /// A file written before the run, as `FILE` in the arguments.
        var file: String?
        var status: Int32
        var message: String

        var testDescription: String { name }
    }

    static let refusals: [Refusal] = [
        Refusal(
            name: "unset variable", arguments: ["--master-key-env", "NOT_SET_ANYWHERE"], status: 64,
            message: "NOT_SET_ANYWHERE (key text) is refused, as the application refuses it: the variable is not set"),
        Refusal(
            name: "empty variable", arguments: ["--master-key-env", "APP_KEY"], environment: ["APP_KEY": ""], status: 64,
            message: "it is empty"),
        Refusal(
            name: "19 bytes", arguments: ["--master-key-env", "APP_KEY"], environment: ["APP_KEY": String(repeating: "k", count: 19)],
            status: 64,
            message: "it is 19 bytes; the application needs at least 20"),
        Refusal(
            name: "strong placeholder", arguments: ["--master-key-env", "APP_KEY"],
            environment: ["APP_KEY": "your-strong-encryption-key-here"], status: 64,
            message: "placeholder"),
        Refusal(
            name: "placeholder", arguments: ["--master-key-env", "APP_KEY"], environment: ["APP_KEY": "your-encryption-key-here"],
            status: 64,
            message: "placeholder"),
        Refusal(
            name: "short text file", arguments: ["--master-key-text-file", "FILE"], file: "short\n", status: 64, message: "it is 5 bytes"),
        Refusal(
            name: "placeholder in an env file", arguments: ["--master-key-text-file", "FILE"],
            file: "BODHI_ENCRYPTION_KEY=your-encryption-key-here\n",
            status: 64, message: "placeholder"),
        Refusal(
            name: "quoted value", arguments: ["--master-key-text-file", "FILE"],
            file: "# env\nBODHI_ENCRYPTION_KEY=\"a-quoted-key-text-of-enough-bytes\"\n",
            status: 65, message: "line 2: the value is quoted; docker's --env-file keeps quotes"),
        Refusal(
            name: "two key lines", arguments: ["--master-key-text-file", "FILE"],
            file: "BODHI_ENCRYPTION_KEY=first-key-text-long-enough\nBODHI_ENCRYPTION_KEY=second-key-text-long-enough\n", status: 65,
            message: "BODHI_ENCRYPTION_KEY is set on lines 1, 2; give one"),
        Refusal(
            name: "lines without the key", arguments: ["--master-key-text-file", "FILE"], file: "BODHI_HOME=/data\nBODHI_PORT=1135\n",
            status: 65,
            message: "none is BODHI_ENCRYPTION_KEY=VALUE"),
        Refusal(
            name: "missing keyring entry", arguments: ["--master-key-keyring", "toolcfg absent service"], status: 69,
            message: "no keyring entry \"keyring-rs:secret_key@toolcfg absent service\" (key type user) in the session keyring"),
        Refusal(
            name: "missing default keyring entry", arguments: ["--master-key-keyring"], status: 69,
            message: "no keyring entry \"keyring-rs:secret_key@Bodhi App\""),
        Refusal(
            name: "two forms", arguments: ["--master-key-env", "APP_KEY", "--master-key-keyring"],
            environment: ["APP_KEY": String(repeating: "k", count: 30)],
            status: 64, message: "the master key is given in two forms (--master-key-env and --master-key-keyring): give exactly one"),
        Refusal(
            name: "two new-key forms", arguments: ["--new-master-key-file", "FILE", "--new-master-key-text-file", "FILE"], file: "x\n",
            status: 64,
            message: "the new master key is given in two forms (--new-master-key-file and --new-master-key-text-file)")
    ]

    @Test(
        "texts the application refuses, unusable files, a missing entry and two forms: refused, nothing read", TestKeyring.trait,
        arguments: refusals)
    func refused(refusal: Refusal) throws {
        try TestKeyring.run {
            let scene = try Scene()
            let file = try refusal.file.map { try scene.write("key.txt", $0) }
            let arguments = refusal.arguments.map { $0 == "FILE" ? file! : $0 }
            let before = try Data(contentsOf: URL(fileURLWithPath: scene.db))
            // export takes no new key: the new-key refusals are verify-keys' only.
            let export = ["export", "--db", scene.db, "--keys", "plaintext", "--out", scene.folder.path("out.csv")]
            for command in [["verify-keys", "--db", scene.db]] + (refusal.arguments.contains { $0.hasPrefix("--new-") } ? [] : [export]) {
                let result = try TestKeyring.toolcfg(command + arguments, environment: refusal.environment)
                #expect(result.status == refusal.status, "\(refusal.name) \(command[0]): \(result.stderr)")
                #expect(result.stderr.contains(refusal.message), "\(refusal.name) \(command[0]): \(result.stderr)")
                // The value itself is never echoed.
                for value in refusal.environment.values where !value.isEmpty { #expect(!result.stderr.contains(value)) }
            }
            #expect(!FileManager.default.fileExists(atPath: scene.folder.path("out.csv")))
            #expect(try Data(contentsOf: URL(fileURLWithPath: scene.db)) == before)
        }
    }

    @Test("exactly 20 bytes is accepted, as the application accepts it")
    func twentyBytes() throws {
        let text = String(repeating: "k", count: 20)
        let key = try ApplicationKeyText.masterKey(text: text, source: .textEnvironment("APP_KEY"))
        #expect(key.material == SecureBytes(Digest.sha256(Array(text.utf8))))
        #expect(throws: SecretError.self) {
            try ApplicationKeyText.masterKey(text: String(text.dropLast()), source: .textEnvironment("APP_KEY"))
        }
    }

    @Test(
        "a key file or key text file readable by group or others: a warning, not an error",
        arguments: [("key.b64", "--master-key-file"), ("key.txt", "--master-key-text-file")])
    func looseModeWarns(name: String, flag: String) throws {
        let scene = try Scene()
        let contents = flag == "--master-key-file" ? scene.key.base64Text + "\n" : scene.text + "\n"
        for (mode, warned) in [
            (mode_t(0o644), "readable by every user (mode 644)"), (0o640, "readable by its group (mode 640)"), (0o600, nil), (0o400, nil)
        ] {
            let path = try scene.write(name, contents, mode: mode)
            let result = try toolcfg(["verify-keys", "--db", scene.db, flag, path])
            #expect(result.status == 0, "\(result.stderr)")
            if let warned {
                #expect(
                    result.stderr.contains("toolcfg: warning: the key file \(path) is \(warned): chmod 600 \(path)"), "\(result.stderr)")
            } else {
                #expect(!result.stderr.contains("warning"), "\(result.stderr)")
            }
            // -q silences it as it silences every warning; --json keeps stdout one object.
            let quiet = try toolcfg(["verify-keys", "--db", scene.db, flag, path, "-q"])
            #expect(!quiet.stderr.contains("warning"))
            try FileManager.default.removeItem(atPath: path)
        }
    }

    @Test("keygen --form text: 43 URL-safe characters and the fingerprint of the key they yield")
    func keygenText() throws {
        let folder = try TemporaryFolder()
        let result = try toolcfg(["keygen", "--form", "text", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let text = try #require(report["master_key"] as? String)
        #expect(report["form"] as? String == "text")
        #expect(text.count == 43)
        #expect(text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        let key = try ApplicationKeyText.masterKey(text: text, source: .generated)
        #expect(report["master_key_fingerprint"] as? String == key.fingerprint)
        // Two runs, two texts.
        let again = try toolcfg(["keygen", "--form", "text"])
        #expect(again.stdout.trimmingCharacters(in: .newlines).count == 43 && !again.stdout.contains(text))
        #expect(again.stderr.contains("(of the key this text yields)"))

        // --out: 0600, and the file is a key text file the other commands read.
        let out = folder.path("bodhi-key.txt")
        let written = try toolcfg(["keygen", "--form", "text", "--out", out, "--json"])
        let fileReport = try #require(try JSONSerialization.jsonObject(with: Data(written.stdout.utf8)) as? [String: Any])
        #expect(fileReport["form"] as? String == "text" && fileReport["master_key"] == nil)
        let attributes = try FileManager.default.attributesOfItem(atPath: out)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let db = folder.path("app.db")
        try migratedDatabase(at: db).close()
        let verify = try toolcfg(["verify-keys", "--db", db, "--master-key-text-file", out, "--json"])
        let verifyReport = try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any]
        #expect(verifyReport?["master_key_fingerprint"] as? String == fileReport["master_key_fingerprint"] as? String)
        // The default form is still the key itself.
        let base64 = try toolcfg(["keygen", "--json"])
        let base64Report = try JSONSerialization.jsonObject(with: Data(base64.stdout.utf8)) as? [String: Any]
        #expect(base64Report?["form"] as? String == "base64")
        #expect((try? MasterKey(text: base64Report?["master_key"] as? String ?? "", source: .generated)) != nil)
        try JSONReportTests.validate(
            [result, written, base64].map { JSONReportTests.Output(kind: "keygen", arguments: [], result: $0, json: $0.stdout) })
    }

    struct Advice: Sendable, CustomTestStringConvertible {
        var name: String
        /// Old and new key forms: "env:NAME", "text" (a text file), "base64" (a key file).
        var old: String
        var new: String
        var switchStep: String

        var testDescription: String { name }
    }

    static let advice: [Advice] = [
        Advice(
            name: "variable to text file", old: "env:BODHI_ENCRYPTION_KEY", new: "text",
            switchStep: "set BODHI_ENCRYPTION_KEY in the application's environment (its env file or Docker secret) to the text in {new}"),
        Advice(
            name: "variable to variable", old: "env:APP_KEY", new: "env:NEW_APP_KEY",
            switchStep: "set APP_KEY in the application's environment to the value of NEW_APP_KEY"),
        Advice(
            name: "text file to key file", old: "text", new: "base64",
            switchStep: "the application takes BODHI_ENCRYPTION_KEY as a text it hashes, so this base64 key (file {new}) cannot go there"),
        Advice(
            name: "key file to key file", old: "base64", new: "base64",
            switchStep: "put the base64 text from file {new} where the application keeps its key")
    ]

    @Test(
        "rotation's closing advice: what to switch in the form of the keys given, restart, rotate again, discard; kept in --json with -q",
        arguments: advice)
    func closingAdvice(advice: Advice) throws {
        let scene = try Scene()
        let newText = ApplicationKeyText.generate()
        let newKey = try ApplicationKeyText.masterKey(text: newText, source: .generated)
        var environment: [String: String] = [:]
        func form(_ form: String, _ prefix: String, text: String, key: MasterKey, file: String) throws -> [String] {
            if form.hasPrefix("env:") {
                environment[String(form.dropFirst(4))] = text
                return ["--\(prefix)-env", String(form.dropFirst(4))]
            }
            if form == "text" { return ["--\(prefix)-text-file", try scene.write(file + ".txt", text + "\n")] }
            return ["--\(prefix)-file", try scene.write(file + ".b64", key.base64Text + "\n")]
        }
        let arguments =
            try form(advice.old, "master-key", text: scene.text, key: scene.key, file: "old")
            + form(advice.new, "new-master-key", text: newText, key: newKey, file: "new")
        let newPath = arguments.last!
        let quiet = try toolcfg(["rotate", "--db", scene.db, "--json", "-q"] + arguments, environment: environment)
        #expect(quiet.status == 0, "\(quiet.stderr)")
        #expect(quiet.stderr.isEmpty, "\(quiet.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(quiet.stdout.utf8)) as? [String: Any])
        let steps = try #require(report["next_steps"] as? [String])
        #expect(steps.count == 4, "\(steps)")
        #expect(steps[0].hasPrefix("switch the application to the new key \(newKey.fingerprint): "), "\(steps)")
        #expect(steps[0].contains(advice.switchStep.replacingOccurrences(of: "{new}", with: newPath)), "\(steps[0])")
        #expect(steps[0].hasSuffix("keep a copy of the old key first (a 0600 file): the catch-up run below needs it"))
        #expect(steps[1].hasPrefix("restart the application"))
        #expect(steps[2].hasPrefix("then run the same rotation again with the same two keys"))
        #expect(steps[3].hasPrefix("once that run rotates nothing, discard the old key \(scene.key.fingerprint)"))
        try JSONReportTests.validate([JSONReportTests.Output(kind: "rotate", arguments: arguments, result: quiet, json: quiet.stdout)])

        // The catch-up with the same keys rotates nothing more; its human report ends with the same steps.
        let human = try toolcfg(["rotate", "--db", scene.db] + arguments, environment: environment)
        #expect(human.status == 0, "\(human.stderr)")
        #expect(human.stderr.contains("0 rotated"), "\(human.stderr)")
        #expect(human.stderr.hasSuffix("next:" + steps.enumerated().map { "\n  \($0 + 1). \($1)" }.joined() + "\n"), "\(human.stderr)")
    }

    @Test("import's note on unchecked keys names every key form")
    func importNoteNamesForms() throws {
        let scene = try Scene()
        let snapshot = scene.folder.path("rows.csv")
        let export = try toolcfg(["export", "--db", scene.db, "--keys", "encrypted", "--out", snapshot])
        #expect(export.status == 0, "\(export.stderr)")
        let target = scene.folder.path("target.db")
        try migratedDatabase(at: target).close()
        let result = try toolcfg(["import", "--db", target, "--in", snapshot])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stderr.contains(
                "give the master key (--master-key-file, --master-key-env, --master-key-text-file, --master-key-keyring, "
                    + "or TOOLCFG_MASTER_KEY)"
            ),
            "\(result.stderr)")
    }
}
