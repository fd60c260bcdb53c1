import CFastPBKDF2
import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The rotation's fast path for scheme-v2 values (`AESGCM.Context.reencryptV2`, in C): what it
/// takes comes out exactly as the general path would write it, and everything else it declines,
/// so that the general path decides (and words) the outcome.
@Suite("Scheme v2 re-encryption in C")
struct V2ReencryptionTests {
    let old = MasterKey.generate(), new = MasterKey.generate()

    /// The fast path on one value, with `fresh` as its new salt and nonce.
    func reencrypt(_ secret: StoredSecret, fresh: [UInt8]) throws -> StoredSecret? {
        let context = try AESGCM.Context()
        return old.keyEncryptionKey.withBytes { oldKEK in
            new.keyEncryptionKey.withBytes { newKEK in
                context.reencryptV2(secret, oldKEK: oldKEK, newKEK: newKEK, fresh: fresh[...])
            }
        }
    }

    static func ascii(_ count: Int) -> String {
        String((0..<count).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789-_".randomElement()! })
    }

    @Test(
        "two row keys at once are the two derived one by one (or refused without the SHA extensions), for every info that fits a block",
        arguments: [0, 1, 15, 53, 54])
    func pairedHKDF(_ infoLength: Int) {
        for _ in 0..<32 {
            let inputs = (0..<4).map { _ in SecureRandom.bytes(32) }
            let info = SecureRandom.bytes(infoLength)
            var a = [UInt8](repeating: 0, count: 32), b = a
            let paired = toolcfg_hkdf_sha256_32_x2(inputs[0], inputs[1], inputs[2], inputs[3], info, info.count, &a, &b)
            if toolcfg_sha_ni_available() == 1 {
                #expect(paired == 1)
                #expect(a == HKDF.deriveKey(salt: inputs[0], inputKey: inputs[1], info: info))
                #expect(b == HKDF.deriveKey(salt: inputs[2], inputKey: inputs[3], info: info))
            } else {
                #expect(paired == 0)
            }
        }
        // An info too long for one block is refused, whatever the CPU.
        var out = [UInt8](repeating: 0, count: 32), other = out
        let long = [UInt8](repeating: 0x61, count: 55), key = SecureRandom.bytes(32)
        #expect(toolcfg_hkdf_sha256_32_x2(key, key, key, key, long, long.count, &out, &other) == 0)
    }

    @Test(
        "a value it takes opens under the new key, in scheme v2, with the fresh salt and nonce",
        arguments: [0, 1, 2, 3, 15, 16, 29, 30, 31, 64, 100, 1000, 4096])
    func takes(_ length: Int) throws {
        let plaintext = Self.ascii(length)
        let secret = try SecretCipher.encrypt(plaintext, masterKey: old, scheme: .v2)
        let fresh = SecureRandom.bytes(KeyRotator.freshBytes)
        let written = try #require(try reencrypt(secret, fresh: fresh))
        #expect(written.scheme == .v2)
        #expect(written.salt == Base64.encode(fresh.prefix(32)) && written.nonce == Base64.encode(fresh.suffix(12)))
        #expect(try SecretCipher.decrypt(written, masterKey: new) == plaintext)
        // Byte for byte what the Swift path writes with the same salt and nonce (AES-GCM is
        // deterministic given key, nonce and plaintext).
        let decoded = try secret.decoded()
        let swift = KeyRotator.reencrypt(
            decoded, oldRowKey: SecretCipher.rowKey(masterKey: old, salt: decoded.salt, scheme: .v2),
            newRowKey: SecretCipher.rowKey(masterKey: new, salt: Array(fresh.prefix(32)), scheme: .v2), fresh: fresh[...],
            oldKey: old, newKey: new, target: .v2, context: try AESGCM.Context())
        guard case .rotated(let expected) = swift else {
            Issue.record("the Swift path gave \(swift)")
            return
        }
        #expect(written == expected)
    }

    @Test("a page mixing v2 and v1 values: each is rotated in its own scheme (the v1 values together, as a page of them alone)")
    func mixedPage() throws {
        let plaintexts = (0..<40).map { "sk-mixed-\($0)-" + Self.ascii($0) }
        let rows = try plaintexts.enumerated().map { index, plaintext in
            let secret = try SecretCipher.encrypt(plaintext, masterKey: old, scheme: index % 3 == 0 ? .v1 : .v2)
            return SecretRow(rowID: Int64(index), id: nil, encryptedAPIKey: secret.encryptedAPIKey, salt: secret.salt, nonce: secret.nonce)
        }
        for (index, outcome) in KeyRotator.rotate(rows, oldKey: old, newKey: new).enumerated() {
            guard case .rotated(let written) = outcome else {
                Issue.record("row \(index): \(outcome)")
                continue
            }
            #expect(written.scheme == (index % 3 == 0 ? .v1 : .v2))
            #expect(try SecretCipher.decrypt(written, masterKey: new) == plaintexts[index])
        }
    }

    struct Declined: Sendable, CustomTestStringConvertible {
        var testDescription: String
        /// The stored value, from a fresh v2 value `valid` of the plaintext under the old key
        /// and the two keys.
        var make: @Sendable (_ valid: StoredSecret, _ old: MasterKey, _ new: MasterKey) throws -> StoredSecret
        var plaintext = "sk-declined-0123456789abcdef"
        /// What the general path makes of it: "rotated", "kept" or the start of the failure.
        var outcome: String
    }

    /// The base64 text with the bits that its padding leaves unused set: the same bytes to a
    /// lenient decoder, refused by a canonical one.
    static func withTrailingBits(_ text: String) -> String {
        var bytes = Array(text.utf8)
        let last = bytes.lastIndex { $0 != UInt8(ascii: "=") }!
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        bytes[last] = alphabet[alphabet.firstIndex(of: bytes[last])! | 1]
        return String(decoding: bytes, as: UTF8.self)
    }

    static func with(_ secret: StoredSecret, ciphertext: String? = nil, salt: String? = nil, nonce: String? = nil) -> StoredSecret {
        StoredSecret(encryptedAPIKey: ciphertext ?? secret.encryptedAPIKey, salt: salt ?? secret.salt, nonce: nonce ?? secret.nonce)
    }

    static let declined: [Declined] = [
        Declined(
            testDescription: "a plaintext longer than 4,096 bytes", make: { v, _, _ in v }, plaintext: ascii(4097), outcome: "rotated"),
        Declined(
            testDescription: "a plaintext that is not ASCII", make: { v, _, _ in v }, plaintext: "sk-ключ-🔑", outcome: "rotated"),
        Declined(
            testDescription: "a value under the new key already",
            make: { _, _, new in try SecretCipher.encrypt("sk-declined-0123456789abcdef", masterKey: new, scheme: .v2) }, outcome: "kept"),
        Declined(
            testDescription: "a value under neither key",
            make: { _, _, _ in try SecretCipher.encrypt("sk-declined", masterKey: .generate(), scheme: .v2) },
            outcome: "decrypts under neither"),
        Declined(
            testDescription: "a ciphertext with one byte changed",
            make: { v, _, _ in
                var sealed = try v.decoded()
                sealed.sealed[0] ^= 1
                return sealed.encoded
            }, outcome: "decrypts under neither"),
        Declined(
            testDescription: "a v1 value", make: { _, old, _ in try SecretCipher.encrypt("sk-v1", masterKey: old) }, outcome: "rotated"),
        Declined(
            testDescription: "a salt whose padding hides set bits", make: { v, _, _ in with(v, salt: withTrailingBits(v.salt)) },
            outcome: "salt"),
        Declined(
            testDescription: "a ciphertext whose two padding characters hide set bits",
            make: { v, _, _ in with(v, ciphertext: withTrailingBits(v.encryptedAPIKey)) }, plaintext: ascii(30),
            outcome: "encrypted_api_key"),
        Declined(
            testDescription: "a ciphertext whose padding character hides set bits",
            make: { v, _, _ in with(v, ciphertext: withTrailingBits(v.encryptedAPIKey)) }, plaintext: ascii(31),
            outcome: "encrypted_api_key"),
        Declined(
            testDescription: "a salt of 31 bytes", make: { v, _, _ in with(v, salt: Base64.encode(SecureRandom.bytes(31))) },
            outcome: "salt"),
        Declined(
            testDescription: "a nonce of 13 bytes", make: { v, _, _ in with(v, nonce: Base64.encode(SecureRandom.bytes(13))) },
            outcome: "nonce"),
        Declined(
            testDescription: "a ciphertext shorter than a tag",
            make: { v, _, _ in with(v, ciphertext: "v2:" + Base64.encode(SecureRandom.bytes(15))) }, outcome: "encrypted_api_key"),
        Declined(testDescription: "a bare prefix", make: { v, _, _ in with(v, ciphertext: "v2:") }, outcome: "encrypted_api_key"),
        // Texts a lenient decoder reads as the same bytes: the value would open, so only a
        // canonical decoder declines them.
        Declined(
            testDescription: "the URL alphabet in the nonce",
            make: { _, old, _ in
                // Bytes whose base64 holds both '+' and '/': "+/+/" three times, then "AAAA".
                let nonce = [UInt8]([0xFB, 0xFF, 0xBF, 0xFB, 0xFF, 0xBF, 0xFB, 0xFF, 0xBF, 0, 0, 0])
                let valid = try SecretCipher.encrypt(
                    "sk-declined-0123456789abcdef", masterKey: old, salt: SecureRandom.bytes(32), nonce: nonce, scheme: .v2
                ).encoded
                return with(valid, nonce: String(valid.nonce.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 }))
            }, outcome: "nonce"),
        Declined(
            testDescription: "a salt without its padding", make: { v, _, _ in with(v, salt: String(v.salt.dropLast())) }, outcome: "salt"),
        Declined(
            testDescription: "four spaces in the ciphertext",
            make: { v, _, _ in with(v, ciphertext: "v2:    " + v.encryptedAPIKey.dropFirst(3)) }, outcome: "encrypted_api_key"),
        Declined(
            testDescription: "line breaks in the salt",
            make: { v, _, _ in with(v, salt: v.salt.prefix(20) + "\r\n\r\n" + v.salt.dropFirst(20)) }, outcome: "salt"),
        Declined(
            testDescription: "a nonce without its last character",
            make: { v, _, _ in with(v, nonce: String(v.nonce.dropLast())) }, outcome: "nonce")
    ]

    @Test("what it declines, the general path decides, also in a page of values it takes", arguments: declined)
    func declines(_ test: Declined) throws {
        let valid = try SecretCipher.encrypt(test.plaintext, masterKey: old, scheme: .v2)
        let stored = try test.make(valid, old, new)
        #expect(try reencrypt(stored, fresh: SecureRandom.bytes(KeyRotator.freshBytes)) == nil)

        let good = try SecretCipher.encrypt("sk-good", masterKey: old, scheme: .v2)
        let rows = [good, stored, good].enumerated().map { index, secret in
            SecretRow(rowID: Int64(index), id: nil, encryptedAPIKey: secret.encryptedAPIKey, salt: secret.salt, nonce: secret.nonce)
        }
        let outcomes = KeyRotator.rotate(rows, oldKey: old, newKey: new)
        for index in [0, 2] {
            guard case .rotated(let written) = outcomes[index] else {
                Issue.record("row \(index): \(outcomes[index])")
                continue
            }
            #expect(try SecretCipher.decrypt(written, masterKey: new) == "sk-good")
        }
        switch (outcomes[1], test.outcome) {
        case (.rotated(let written), "rotated"):
            #expect(written.scheme == stored.scheme)
            #expect(try SecretCipher.decrypt(written, masterKey: new) == SecretCipher.decrypt(stored, masterKey: old))
        case (.alreadyRotated, "kept"):
            break
        case (.failed(let reason), let expected) where reason.contains(expected):
            break
        default:
            Issue.record("\(test.testDescription): got \(outcomes[1]), expected \(test.outcome)")
        }
    }
}
