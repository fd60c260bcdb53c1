import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

struct Vector: Decodable, Sendable, CustomTestStringConvertible {
    var master_key: String
    var plaintext: String
    var salt: String
    var nonce: String
    var encrypted_api_key: String
    var derived_key_hex: String
    var why: String?

    var testDescription: String { why ?? "plaintext of \(plaintext.utf8.count) bytes" }
}

struct VectorFile: Decodable {
    var vectors: [Vector]
    var must_fail: [Vector]

    static func load() throws -> VectorFile {
        try JSONDecoder().decode(VectorFile.self, from: Data(contentsOf: Repository.vectors))
    }

    /// Empty when the file is missing; `vectorsPresent` then fails with the path.
    static let shared = (try? load()) ?? VectorFile(vectors: [], must_fail: [])
}

/// Scheme v2's vectors and the secrets file's, in `bodhi-crypto-v2-vectors.json`.
struct V2Vector: Decodable, Sendable, CustomTestStringConvertible {
    var master_key: String
    var plaintext: String
    var salt: String
    var nonce: String
    var encrypted_value: String
    var kek_hex: String
    var row_key_hex: String

    var testDescription: String { "v2, plaintext of \(plaintext.utf8.count) bytes" }
}

struct V2VectorFile: Decodable {
    struct Scheme: Decodable { var vectors: [V2Vector] }
    struct SecretsFileVector: Decodable {
        var master_key: String
        var file: String
        var secrets: [String: String]
    }

    var v2: Scheme
    var secrets_file: SecretsFileVector

    static let path = Repository.vectors.deletingLastPathComponent().appendingPathComponent("bodhi-crypto-v2-vectors.json")
    static func load() throws -> V2VectorFile { try JSONDecoder().decode(V2VectorFile.self, from: Data(contentsOf: path)) }
    static let shared = try? load()
}

@Suite("Stored-secret format")
struct SecretFormatTests {
    /// Every part of a v2 vector, derived and sealed here.
    static func expectReproduced(_ v: V2Vector, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let master = try key(v.master_key)
        #expect(master.keyEncryptionKey.withBytes { Digest.hex($0) } == v.kek_hex, sourceLocation: sourceLocation)
        let salt = try Base64.decode(v.salt, field: "salt", length: 32)
        let nonce = try Base64.decode(v.nonce, field: "nonce", length: 12)
        #expect(
            SecretCipher.rowKey(masterKey: master, salt: salt, scheme: .v2).withBytes { Digest.hex($0) } == v.row_key_hex,
            sourceLocation: sourceLocation)
        let sealed = try SecretCipher.encrypt(v.plaintext, masterKey: master, salt: salt, nonce: nonce, scheme: .v2)
        let stored = StoredSecret(encryptedAPIKey: v.encrypted_value, salt: v.salt, nonce: v.nonce)
        #expect(sealed.encoded == stored, sourceLocation: sourceLocation)
        let decoded = try stored.decoded()
        #expect(stored.scheme == .v2 && decoded == sealed, sourceLocation: sourceLocation)
        #expect(try SecretCipher.decrypt(stored, masterKey: master) == v.plaintext, sourceLocation: sourceLocation)
        // The same bytes without the prefix are a v1 value, which the v1 row key does not open.
        let unprefixed = StoredSecret(encryptedAPIKey: String(v.encrypted_value.dropFirst(3)), salt: v.salt, nonce: v.nonce)
        #expect(throws: SecretError.authenticationFailed, sourceLocation: sourceLocation) {
            try SecretCipher.decrypt(unprefixed, masterKey: master)
        }
    }

    @Test(
        "reproduces every shared v2 vector: KEK, row key, ciphertext with its prefix, and plaintext",
        arguments: V2VectorFile.shared?.v2.vectors ?? [])
    func v2Vector(_ v: V2Vector) throws {
        try Self.expectReproduced(v)
    }

    @Test("the shared v2 vectors are present; the KEK is derived once per key and shared by its copies")
    func v2VectorsPresent() throws {
        let file = try V2VectorFile.load()
        #expect(file.v2.vectors.count >= 4)
        let master = MasterKey.generate(), copy = master
        #expect(master.keyEncryptionKey === copy.keyEncryptionKey)
        #expect(MasterKey.generate().keyEncryptionKey != master.keyEncryptionKey)
    }

    @Test("the shared secrets-file vector opens to its map's YAML, and writing it again with its salt and nonce gives its data")
    func secretsFileVector() throws {
        let vector = try V2VectorFile.load().secrets_file
        let file = try SecretsFile(parsing: vector.file, path: "secrets.yaml")
        #expect(file.text(with: file.secret) == vector.file)
        let master = try key(vector.master_key)
        let text = try SecretCipher.decrypt(file.secret, masterKey: master)
        for (name, value) in vector.secrets {
            // The application's YAML of a string map: each entry there under its name.
            #expect(text.contains("\(name):"), "\(name)")
            if !value.contains("\n") { #expect(text.contains("\(name): \(value)")) }
        }
        let decoded = try file.secret.decoded()
        let again = try SecretCipher.encrypt(text, masterKey: master, salt: decoded.salt, nonce: decoded.nonce)
        #expect(again.encoded == file.secret)
    }

    @Test(
        "secrets files the application would not have written are refused with the line at fault",
        arguments: [
            ("salt: a\nnonce: b\n", "no data"),
            ("salt: a\nnonce: b\ndata: c\nsalt: d\n", "line 4: salt appears twice"),
            ("salt: a\nnonce: b\ndata: c\nextra: d\n", "line 4: unexpected key extra"),
            ("  salt: a\n", "line 1: expected"),
            ("salt: a\nnonce: b\ndata: v2:c\n", "scheme v1")
        ])
    func secretsFileRefusals(_ text: String, _ expected: String) throws {
        let error = try #require(thrownError { _ = try SecretsFile(parsing: text, path: "s.yaml") } as? SecretsFileError)
        #expect(error.description.contains(expected) && error.exitStatus == .dataError, "\(error)")
    }

    @Test("a secrets file's layout is kept: key order, quotes dropped, comments and a document start allowed")
    func secretsFileLayout() throws {
        let file = try SecretsFile(parsing: "---\n# written by hand\nnonce: 'n'\ndata: \"d\"\r\nsalt: s\n", path: "s.yaml")
        #expect(file.secret == StoredSecret(encryptedAPIKey: "d", salt: "s", nonce: "n"))
        #expect(file.text(with: StoredSecret(encryptedAPIKey: "D", salt: "S", nonce: "N")) == "nonce: N\ndata: D\nsalt: S\n")
    }

    @Test("HKDF-SHA256 matches RFC 5869's test case 1 (first 32 bytes)")
    func hkdfRFC5869() {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let salt: [UInt8] = Array(0x00...0x0c)
        let info: [UInt8] = Array(0xf0...0xf9)
        #expect(
            Digest.hex(HKDF.deriveKey(salt: salt, inputKey: ikm, info: info))
                == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf")
    }

    @Test("the shared crypto vectors are present and complete")
    func vectorsPresent() throws {
        let file = try VectorFile.load()
        #expect(file.vectors.count >= 6)
        #expect(file.must_fail.count >= 2)
    }

    @Test("reproduces every vector: row key, ciphertext and plaintext", arguments: VectorFile.shared.vectors)
    func vector(_ v: Vector) throws {
        let master = try key(v.master_key)
        let salt = try Base64.decode(v.salt, field: "salt", length: 32)
        let nonce = try Base64.decode(v.nonce, field: "nonce", length: 12)
        let rowKey = SecretCipher.rowKey(masterKey: master, salt: salt)
        #expect(rowKey.withBytes { Digest.hex($0) } == v.derived_key_hex)
        let sealed = try SecretCipher.encrypt(v.plaintext, masterKey: master, salt: salt, nonce: nonce)
        #expect(sealed.encoded == StoredSecret(encryptedAPIKey: v.encrypted_api_key, salt: v.salt, nonce: v.nonce))
        let stored = StoredSecret(encryptedAPIKey: v.encrypted_api_key, salt: v.salt, nonce: v.nonce)
        #expect(try SecretCipher.decrypt(stored, masterKey: master) == v.plaintext)
    }

    @Test("rejects every must_fail vector with authenticationFailed", arguments: VectorFile.shared.must_fail)
    func mustFail(_ v: Vector) throws {
        let stored = StoredSecret(encryptedAPIKey: v.encrypted_api_key, salt: v.salt, nonce: v.nonce)
        #expect(throws: SecretError.authenticationFailed) { try SecretCipher.decrypt(stored, masterKey: try key(v.master_key)) }
    }

    @Test("any single altered byte of ciphertext, tag, salt or nonce is refused")
    func tamperEveryByte() throws {
        let master = MasterKey.generate()
        let decoded = try SecretCipher.encrypt(
            "sk-tamper-me", masterKey: master, salt: SecureRandom.bytes(32), nonce: SecureRandom.bytes(12))
        for index in decoded.sealed.indices {
            var altered = decoded
            altered.sealed[index] ^= 0x01
            #expect(throws: SecretError.authenticationFailed) { try SecretCipher.decrypt(altered, masterKey: master) }
        }
        for index in [0, 31] {
            var altered = decoded
            altered.salt[index] ^= 0x80
            #expect(throws: SecretError.authenticationFailed) { try SecretCipher.decrypt(altered, masterKey: master) }
        }
        var altered = decoded
        altered.nonce[11] ^= 0x01
        #expect(throws: SecretError.authenticationFailed) { try SecretCipher.decrypt(altered, masterKey: master) }
    }

    @Test("fresh salt and nonce on every encryption")
    func freshRandomness() throws {
        let master = MasterKey.generate()
        let secrets = try (0..<50).map { _ in try SecretCipher.encrypt("same", masterKey: master) }
        #expect(Set(secrets.map(\.salt)).count == 50)
        #expect(Set(secrets.map(\.nonce)).count == 50)
        for secret in secrets { #expect(try SecretCipher.decrypt(secret, masterKey: master) == "same") }
    }

    @Test(
        "shape checks: salt 32, nonce 12, ciphertext at least the tag",
        arguments: [
            (
                StoredSecret(
                    encryptedAPIKey: Base64.encode([UInt8](repeating: 1, count: 16)), salt: Base64.encode([UInt8](repeating: 1, count: 31)),
                    nonce: Base64.encode([UInt8](repeating: 1, count: 12))), "salt"
            ),
            (
                StoredSecret(
                    encryptedAPIKey: Base64.encode([UInt8](repeating: 1, count: 16)), salt: Base64.encode([UInt8](repeating: 1, count: 32)),
                    nonce: Base64.encode([UInt8](repeating: 1, count: 16))), "nonce"
            ),
            (
                StoredSecret(
                    encryptedAPIKey: Base64.encode([UInt8](repeating: 1, count: 15)), salt: Base64.encode([UInt8](repeating: 1, count: 32)),
                    nonce: Base64.encode([UInt8](repeating: 1, count: 12))), "encrypted_api_key"
            ),
            (
                StoredSecret(
                    encryptedAPIKey: "not base64!", salt: Base64.encode([UInt8](repeating: 1, count: 32)),
                    nonce: Base64.encode([UInt8](repeating: 1, count: 12))), "encrypted_api_key"
            )
        ])
    func shapes(_ secret: StoredSecret, field: String) {
        do {
            _ = try secret.decoded()
            Issue.record("accepted a malformed \(field)")
        } catch {
            #expect(error.description.hasPrefix(field + ":"))
        }
    }

    @Test(
        "base64 is strict: canonical standard alphabet with padding only",
        arguments: [
            ("AAAA", true), ("AA==", true), ("", true),
            ("AA", false), ("AA=", false), ("AB==", false), ("A-_A", false), ("AA AA", false), ("AAAA\n", false), ("====", false)
        ])
    func base64Strictness(_ text: String, valid: Bool) {
        #expect(((try? Base64.decode(text, field: "f")) != nil) == valid)
        #expect((Base64.decodedCount(text) != nil) == valid)
    }

    @Test(
        """
        the hand-written base64 agrees with Foundation's (canonical round trip) on random and mutated inputs; \
        the check and the secret decoder agree with decoding
        """
    )
    func base64CountAgrees() throws {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ ".utf8)
        func secret(_ text: Substring) -> [UInt8]? { Base64.decodeSecret(text)?.withBytes { Array($0) } }
        // The reference: Foundation decodes, and canonical text is exactly what it encodes back.
        func reference(_ text: String) -> [UInt8]? {
            guard let data = Data(base64Encoded: text), data.base64EncodedString() == text else { return nil }
            return [UInt8](data)
        }
        for length in 0..<40 {
            let bytes = SecureRandom.bytes(length)
            let text = Base64.encode(bytes)
            #expect(text == Data(bytes).base64EncodedString())
            #expect(try Base64.decode(text, field: "f") == bytes)
            #expect(Base64.decodedCount(text) == length)
            #expect(secret(Substring(text)) == bytes)
            // A slice of a longer string, as the master-key parser passes it.
            #expect(secret(Substring(text + "\n").dropLast()) == bytes)
            var mutated = Array(text.utf8)
            guard !mutated.isEmpty else { continue }
            for _ in 0..<8 {
                mutated[Int.random(in: 0..<mutated.count)] = alphabet.randomElement()!
                let candidate = String(decoding: mutated, as: UTF8.self)
                let decoded = try? Base64.decode(candidate, field: "f")
                #expect(decoded == reference(candidate), "\(candidate)")
                #expect(Base64.decodedCount(candidate) == decoded?.count, "\(candidate)")
                #expect(secret(Substring(candidate)) == decoded, "\(candidate)")
            }
        }
    }

    @Test("fast PBKDF2 equals OpenSSL's PKCS5_PBKDF2_HMAC over varied inputs")
    func fastMatchesReference() {
        var generator = SystemRandomNumberGenerator()
        // Lengths straddle the HMAC block (64) and the SHA-256 output (32) boundaries.
        for _ in 0..<150 {
            let password = SecureRandom.bytes(Int.random(in: 0...130, using: &generator))
            let salt = SecureRandom.bytes(Int.random(in: 0...100, using: &generator))
            let iterations = Int.random(in: 1...40, using: &generator)
            let length = Int.random(in: 1...100, using: &generator)
            let fast = PBKDF2.deriveKey(password: password, salt: salt, iterations: iterations, length: length)
            let reference = PBKDF2.deriveKey(password: password, salt: salt, iterations: iterations, length: length, reference: true)
            #expect(fast == reference, "password \(password.count) B, salt \(salt.count) B, c=\(iterations), dkLen=\(length)")
        }
        let master = SecureRandom.bytes(32), salt = SecureRandom.bytes(32)
        #expect(
            PBKDF2.deriveKey(password: master, salt: salt, iterations: 1000, length: 32)
                == PBKDF2.deriveKey(password: master, salt: salt, iterations: 1000, length: 32, reference: true))
    }

    @Test("two interleaved derivations equal OpenSSL's, one by one, over varied passwords and salts")
    func pairMatchesReference() {
        for round in 0..<40 {
            let a = (
                password: SecureRandom.bytes([0, 1, 32, 63, 64, 65, 100][round % 7]),
                salt: SecureRandom.bytes(round % 5 == 0 ? 0 : 32 + round)
            )
            let b = (password: SecureRandom.bytes(32), salt: SecureRandom.bytes(round))
            let iterations = [1, 2, 3, 1000][round % 4]
            let (x, y) = PBKDF2.deriveKeyPair(a, b, iterations: iterations)
            #expect(x == PBKDF2.deriveKey(password: a.password, salt: a.salt, iterations: iterations, length: 32, reference: true))
            #expect(y == PBKDF2.deriveKey(password: b.password, salt: b.salt, iterations: iterations, length: 32, reference: true))
        }
        let vector = VectorFile.shared.vectors.first
        if let vector {
            let master = try! Base64.decode(vector.master_key, field: "k"), salt = try! Base64.decode(vector.salt, field: "s")
            let (x, _) = PBKDF2.deriveKeyPair((master, salt), (master, salt), iterations: 1000)
            #expect(Digest.hex(x) == vector.derived_key_hex)
        }
    }

    @Test(
        "sixteen derivations in AVX-512 lanes equal OpenSSL's, one by one, over varied passwords, salts and iteration counts",
        .enabled(if: PBKDF2.hasAVX512, "the sixteen-lane path runs only where the CPU has AVX-512"))
    func sixteenMatchReference() throws {
        for round in 0..<12 {
            let password = SecureRandom.bytes([0, 1, 32, 63, 64, 65, 100, 200][round % 8])
            // Salts of every length class in one call: empty, short, one block, several blocks.
            let salts = (0..<16).map { lane in
                SecureRandom.bytes([0, 1, 32, 55, 56, 63, 64, 65, 100, 32, 32, 32, 7, 119, 120, 32][(lane + round) % 16])
            }
            let iterations = [1, 2, 3, 1000][round % 4]
            let keys = try #require(PBKDF2.deriveKeys16(password: password, salts: salts, iterations: iterations))
            for (salt, key) in zip(salts, keys) {
                #expect(
                    key == PBKDF2.deriveKey(password: password, salt: salt, iterations: iterations, length: 32, reference: true),
                    "password \(password.count) B, salt \(salt.count) B, c=\(iterations)")
            }
        }
    }

    @Test("PBKDF2-HMAC-SHA256 published vectors")
    func publishedPBKDF2() {
        let cases: [(String, String, Int, Int, String)] = [
            ("password", "salt", 1, 32, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"),
            ("password", "salt", 2, 32, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"),
            ("password", "salt", 4096, 32, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"),
            (
                "passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 40,
                "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9"
            )
        ]
        for (password, salt, iterations, length, expected) in cases {
            let derived = PBKDF2.deriveKey(password: Array(password.utf8), salt: Array(salt.utf8), iterations: iterations, length: length)
            #expect(Digest.hex(derived) == expected)
        }
    }

    @Test("Argon2id refuses parameters outside the caps")
    func argon2Caps() {
        let cases: [Argon2id.Parameters] = [
            .init(memoryKiB: 2 * 1024 * 1024, iterations: 3, lanes: 4),
            .init(memoryKiB: 65536, iterations: 1000, lanes: 4),
            .init(memoryKiB: 65536, iterations: 3, lanes: 0),
            .init(memoryKiB: 4, iterations: 3, lanes: 4)
        ]
        for parameters in cases {
            #expect(throws: SecretError.self) { try parameters.validated() }
        }
        #expect((try? Argon2id.Parameters.recommended.validated()) != nil)
    }
}
