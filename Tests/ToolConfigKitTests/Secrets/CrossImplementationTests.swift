import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The application that owns the database is not written in Swift: check the format against an
/// independent implementation (Python's `cryptography`, over OpenSSL) in both directions.
@Suite("Cross-check against Python cryptography")
struct CrossImplementationTests {
    static let plaintexts = [
        "sk-1234567890abcdef", "", "ключ-🔑-密钥", "with,comma \"quote\"\nnewline\r\n",
        String(repeating: "x", count: 4096), "\u{0}nul inside", "exa_" + String(repeating: "a", count: 40)
    ]

    @Test("toolcfg encrypts, Python decrypts", arguments: SecretScheme.allCases)
    func swiftToPython(_ scheme: SecretScheme) throws {
        let master = MasterKey.generate()
        let secrets = try Self.plaintexts.map { try SecretCipher.encrypt($0, masterKey: master, scheme: scheme) }
        #expect(secrets.allSatisfy { $0.scheme == scheme && $0.encryptedAPIKey.hasPrefix("v2:") == (scheme == .v2) })
        let request: [String: Any] = [
            "master_key": master.base64Text,
            "secrets": secrets.map { ["encrypted_api_key": $0.encryptedAPIKey, "salt": $0.salt, "nonce": $0.nonce] }
        ]
        let decrypted = try cryptoPeer("decrypt", request) as? [String]
        #expect(decrypted == Self.plaintexts)
    }

    @Test("Python encrypts, toolcfg decrypts", arguments: SecretScheme.allCases)
    func pythonToSwift(_ scheme: SecretScheme) throws {
        let master = MasterKey.generate()
        let result =
            try cryptoPeer("encrypt", ["master_key": master.base64Text, "plaintexts": Self.plaintexts, "scheme": scheme.rawValue])
            as? [[String: String]]
        let secrets = try #require(result)
        #expect(secrets.count == Self.plaintexts.count)
        for (secret, plaintext) in zip(secrets, Self.plaintexts) {
            let stored = StoredSecret(encryptedAPIKey: secret["encrypted_api_key"]!, salt: secret["salt"]!, nonce: secret["nonce"]!)
            #expect(stored.scheme == scheme)
            #expect(try SecretCipher.decrypt(stored, masterKey: master) == plaintext)
        }
    }

    @Test("v2 vectors made here by Python (random keys, salts, nonces): KEK, row key and ciphertext reproduced exactly")
    func v2VectorsFromPython() throws {
        let cases = try #require(try cryptoPeer("v2cases", ["count": 8]) as? [[String: String]])
        #expect(cases.count == 8)
        for vector in cases {
            let v = V2Vector(
                master_key: vector["master_key"]!, plaintext: vector["plaintext"]!, salt: vector["salt"]!, nonce: vector["nonce"]!,
                encrypted_value: vector["encrypted_value"]!, kek_hex: vector["kek_hex"]!, row_key_hex: vector["row_key_hex"]!)
            try SecretFormatTests.expectReproduced(v)
        }
    }

    @Test("Argon2id through libargon2 equals Python's Argon2id")
    func argon2id() throws {
        let passphrase = Array("correct horse battery staple".utf8)
        let salt = SecureRandom.bytes(16)
        let parameters = Argon2id.Parameters(memoryKiB: 8 * 1024, iterations: 2, lanes: 2)
        let ours = try Argon2id.deriveKey(passphrase: SecureBytes(passphrase), salt: salt, parameters: parameters)
        let theirs =
            try cryptoPeer(
                "argon2id",
                [
                    "passphrase": Base64.encode(passphrase), "salt": Base64.encode(salt),
                    "memory_kib": 8 * 1024, "iterations": 2, "lanes": 2, "length": 32
                ]) as? String
        #expect(ours.withBytes { Digest.hex($0) } == theirs)
    }
}
