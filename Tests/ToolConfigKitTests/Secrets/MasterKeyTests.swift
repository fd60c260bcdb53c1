import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("Master keys")
struct MasterKeyTests {
    static let valid = TestMasterKeys.valid

    @Test("accepts the stored form, with at most one trailing newline", arguments: [valid, valid + "\n", valid + "\r\n"])
    func accepts(_ text: String) throws {
        let master = try MasterKey(text: text, source: .file("k"))
        #expect(master.base64Text == Self.valid)
    }

    @Test(
        "refuses anything else, without echoing it",
        arguments: [
            "", "\n", valid + "\n\n", " " + valid, valid.replacingOccurrences(of: "/", with: "_"),
            String(valid.dropLast()), Base64.encode([UInt8](repeating: 7, count: 31)), Base64.encode([UInt8](repeating: 7, count: 33)),
            "c2VjcmV0LXBhc3N3b3JkLXRoYXQtaXMtbm90LWEta2V5", valid + "\n" + valid,
            // From the fuzzer (fuzz-artifacts/masterkey): a byte and 46 NULs.
            ")" + String(repeating: "\u{0}", count: 46)
        ])
    func refuses(_ text: String) {
        do {
            _ = try MasterKey(text: text, source: .environment("TOOLCFG_MASTER_KEY"))
            Issue.record("accepted an invalid key")
        } catch {
            #expect(error.exitStatus == .dataError)
            #expect(error.description.contains("TOOLCFG_MASTER_KEY"))
            let core = text.trimmingCharacters(in: .whitespacesAndNewlines)
            // Compared as bytes: Foundation's contains stops at a NUL.
            if core.count >= 4 {
                #expect(Array(error.description.utf8).firstRange(of: Array(core.prefix(8).utf8)) == nil, "the message repeats the key text")
            }
        }
    }

    @Test("fingerprint: HMAC-SHA256 of a fixed label, first 8 bytes, computed independently with Python's hmac")
    func fingerprint() throws {
        #expect(try MasterKey(text: Self.valid, source: .generated).fingerprint == "075fe1366e3c3724")
        let a = MasterKey.generate(), b = MasterKey.generate()
        #expect(a.fingerprint != b.fingerprint)
        #expect(!a.fingerprint.contains(a.base64Text.prefix(6)))
    }

    @Test("generated keys are 32 random bytes in canonical base64")
    func generate() throws {
        let keys = (0..<20).map { _ in MasterKey.generate().base64Text }
        #expect(Set(keys).count == 20)
        for text in keys { #expect(try Base64.decode(text, field: "key").count == 32) }
    }

    @Test("a file flag wins over the environment; the environment is used otherwise")
    func sources() throws {
        let folder = try TemporaryFolder()
        let other = MasterKey.generate().base64Text
        try (Self.valid + "\n").write(toFile: folder.path("key"), atomically: true, encoding: .utf8)
        let environment = ["TOOLCFG_MASTER_KEY": other]
        let fromFile = try SecretInput.requireMasterKey(filePath: folder.path("key"), environment: environment)
        #expect(fromFile.base64Text == Self.valid)
        #expect(fromFile.source == .file(folder.path("key")))
        let fromEnvironment = try SecretInput.requireMasterKey(filePath: nil, environment: environment)
        #expect(fromEnvironment.base64Text == other)
        let newKey = try SecretInput.masterKey(.newMasterKey, filePath: nil, environment: ["TOOLCFG_NEW_MASTER_KEY": other])
        #expect(newKey?.base64Text == other)
        #expect(try SecretInput.masterKey(filePath: nil, environment: [:]) == nil)
    }

    @Test("missing, unreadable and oversized key files are clear errors")
    func errors() throws {
        let folder = try TemporaryFolder()
        #expect(throws: SecretError.missing(secret: "master key", flag: "--master-key-file", environmentVariable: "TOOLCFG_MASTER_KEY")) {
            try SecretInput.requireMasterKey(filePath: nil, environment: [:])
        }
        do {
            _ = try SecretInput.requireMasterKey(filePath: folder.path("absent"), environment: [:])
            Issue.record("read an absent file")
        } catch {
            #expect(error.exitStatus == .noInput)
            #expect(error.description.contains("absent"))
        }
        try Data(repeating: 0x41, count: 100_000).write(to: folder.url.appendingPathComponent("big"))
        #expect(throws: SecretError.self) { try SecretInput.requireMasterKey(filePath: folder.path("big"), environment: [:]) }
    }
}
