import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Decryption of several rows at once (row keys derived together: sixteen in AVX-512 lanes, or
/// two interleaved on the SHA extensions): the primitives, the grouping of a batch, verify-keys'
/// findings and export's plaintext and sealed keys, each against the one-row-at-a-time path on
/// varied triples: odd counts, malformed triples, rows under another key, no key, plaintexts that
/// are not UTF-8.
@Suite("Grouped decryption")
struct GroupedDecryptionTests {
    /// Kinds of stored triple, as verify-keys and export meet them.
    enum Kind: CaseIterable {
        case master, newKey, otherKey, emptyPlaintext, notUTF8, notUTF8UnderNewKey, tampered
        case noKey, partial, badBase64, shortSalt, shortNonce, shortCiphertext
    }

    struct Keys {
        let master = MasterKey.generate()
        let new = MasterKey.generate()
        let other = MasterKey.generate()
    }

    /// A stored triple of the kind (nil for none); `partial` is a row with only two columns.
    static func secret(_ kind: Kind, _ keys: Keys, index: Int) throws -> StoredSecret? {
        func sealed(_ plaintext: [UInt8], under master: MasterKey) throws -> StoredSecret {
            let salt = SecureRandom.bytes(32), nonce = SecureRandom.bytes(12)
            let rowKey = SecretCipher.rowKey(masterKey: master, salt: salt)
            let bytes = try rowKey.withBytes { key throws(SecretError) in try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext) }
            return DecodedSecret(sealed: bytes, salt: salt, nonce: nonce).encoded
        }
        let plaintext = Array("sk-\(index)-ключ-🔑".utf8)
        switch kind {
        case .master: return try sealed(plaintext, under: keys.master)
        case .newKey: return try sealed(plaintext, under: keys.new)
        case .otherKey: return try sealed(plaintext, under: keys.other)
        case .emptyPlaintext: return try sealed([], under: keys.master)
        case .notUTF8: return try sealed([0xFF, 0xFE, UInt8(index & 0x7F)], under: keys.master)
        case .notUTF8UnderNewKey: return try sealed([0xC3], under: keys.new)
        case .tampered:
            var decoded = try sealed(plaintext, under: keys.master).decoded()
            decoded.sealed[index % decoded.sealed.count] ^= 0x01
            return decoded.encoded
        case .noKey: return nil
        case .partial, .badBase64:
            var stored = try sealed(plaintext, under: keys.master)
            stored.salt = "not base64!"
            return stored
        case .shortSalt:
            let good = try sealed(plaintext, under: keys.master)
            return StoredSecret(encryptedAPIKey: good.encryptedAPIKey, salt: Base64.encode(SecureRandom.bytes(31)), nonce: good.nonce)
        case .shortNonce:
            let good = try sealed(plaintext, under: keys.master)
            return StoredSecret(encryptedAPIKey: good.encryptedAPIKey, salt: good.salt, nonce: Base64.encode(SecureRandom.bytes(11)))
        case .shortCiphertext:
            let good = try sealed(plaintext, under: keys.master)
            return StoredSecret(encryptedAPIKey: Base64.encode(SecureRandom.bytes(15)), salt: good.salt, nonce: good.nonce)
        }
    }

    static func row(_ kind: Kind, _ keys: Keys, index: Int) throws -> SecretRow {
        SecretRow(
            rowID: Int64(index + 1), id: "\(index + 1)", secret: kind == .partial ? nil : try secret(kind, keys, index: index),
            partial: kind == .partial)
    }

    static func alone(_ secret: StoredSecret, _ master: MasterKey) -> Result<String, SecretError> {
        Result { () throws(SecretError) in try SecretCipher.decrypt(secret, masterKey: master) }
    }

    @Test("decryptPair gives each of two triples exactly what decrypt gives it alone, for every pair of kinds and both orders")
    func pairEqualsAlone() throws {
        let keys = Keys()
        let secrets = try Kind.allCases.enumerated().compactMap { index, kind in
            kind == .partial ? nil : try Self.secret(kind, keys, index: index)
        }
        var compared = 0
        for master in [keys.master, keys.new] {
            for a in secrets {
                for b in secrets {
                    let (first, second) = SecretCipher.decryptPair(a, b, masterKey: master)
                    #expect(first == Self.alone(a, master))
                    #expect(second == Self.alone(b, master))
                    guard let x = try? a.decoded(), let y = try? b.decoded() else { continue }
                    let (firstDecoded, secondDecoded) = SecretCipher.decryptPair(x, y, masterKey: master)
                    #expect(firstDecoded == first)
                    #expect(secondDecoded == second)
                    compared += 1
                }
            }
        }
        // Every result kind took part: plaintexts, and each kind of failure.
        let outcomes = Set(
            secrets.map { Self.alone($0, keys.master) }.map { result -> String in
                switch result {
                case .success: "opened"
                case .failure(.authenticationFailed): "authentication failed"
                case .failure(.plaintextNotUTF8): "not UTF-8"
                case .failure(.invalidBase64): "invalid base64"
                case .failure(.wrongLength): "wrong length"
                case .failure: "other"
                }
            })
        #expect(outcomes == ["opened", "authentication failed", "not UTF-8", "invalid base64", "wrong length"])
        #expect(compared > 0)
    }

    @Test(
        """
        decrypt on an array gives each triple exactly what decrypt gives it alone, for random arrays of every length up to three groups \
        of sixteen
        """
    )
    func groupEqualsAlone() throws {
        let keys = Keys()
        var generator = SystemRandomNumberGenerator()
        let kinds = Kind.allCases.filter { $0 != .partial && $0 != .noKey }
        for count in Array(0...20) + [31, 32, 33, 47, 48] {
            // Mostly keys that open, so that whole groups of sixteen do; every kind somewhere.
            let secrets = try (0..<count).map { index in
                try Self.secret(index % 5 == 4 ? kinds.randomElement(using: &generator)! : .master, keys, index: index)!
            }
            for master in [keys.master, keys.new] {
                let alone = secrets.map { Self.alone($0, master) }
                #expect(SecretCipher.decrypt(secrets, masterKey: master) == alone, "\(count) triples")
                let decodable = secrets.filter { (try? $0.decoded()) != nil }
                #expect(
                    SecretCipher.decrypt(try decodable.map { try $0.decoded() }, masterKey: master)
                        == decodable.map { Self.alone($0, master) },
                    "\(decodable.count) decoded triples")
            }
        }
    }

    @Test(
        "mapInGroups hands each run of neighbours to one call, the last one shorter, in order, for any count, size and jobs",
        arguments: [1, 2, 3, 8])
    func mapInGroupsOrder(jobs: Int) {
        for size in [1, 2, 16] {
            for count in 0...41 {
                let items = Array(0..<count)
                // Each item comes back with the first item of its group.
                let mapped = ParallelMap.mapInGroups(items, size: size, jobs: jobs) { group in group.map { [group[0], $0] } }
                #expect(mapped == items.map { [$0 - $0 % size, $0] }, "size \(size), count \(count)")
            }
        }
    }

    /// verify-keys' verdict on one row, one derivation at a time: how it judged rows before pairing.
    static func findingAlone(_ row: SecretRow, _ keys: Keys, withNewKey: Bool) -> KeyVerifier.Finding {
        switch row.triple {
        case .none: return .noKey
        case .malformed(let reason): return .malformed(reason)
        case .decoded(let decoded):
            if (try? SecretCipher.decrypt(decoded, masterKey: keys.master)) != nil { return .master }
            if withNewKey, (try? SecretCipher.decrypt(decoded, masterKey: keys.new)) != nil { return .new }
            return .neither
        }
    }

    @Test(
        "verify-keys' paired findings equal those of one row at a time, on random pages of every kind, with and without the new key",
        arguments: [1, 2, 5])
    func verifierFindings(jobs: Int) throws {
        let keys = Keys()
        var generator = SystemRandomNumberGenerator()
        for count in [0, 1, 2, 3, 7, 38, 101] {
            let rows = try (0..<count).map { index in
                // Every kind in the first pages, then random ones.
                try Self.row(
                    index < Kind.allCases.count ? Kind.allCases[index] : Kind.allCases.randomElement(using: &generator)!, keys, index: index
                )
            }
            for withNewKey in [false, true] {
                let paired = KeyVerifier.check(rows.map(\.triple), masterKey: keys.master, newKey: withNewKey ? keys.new : nil, jobs: jobs)
                let alone = rows.map { Self.findingAlone($0, keys, withNewKey: withNewKey) }
                #expect(paired == alone, "\(count) rows, new key \(withNewKey)")
            }
        }
    }

    /// A database with `kinds` in id order, and the plaintext each row's key decrypts to alone.
    static func database(_ folder: TemporaryFolder, _ kinds: [Kind], _ keys: Keys) throws -> (
        SnapshotFixtures.SQLiteFile, [Int64: Result<String, SecretError>]
    ) {
        let db = try SnapshotFixtures.SQLiteFile(folder)
        let insert = try db.connection.prepare(
            """
            INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
            VALUES (?1, 't', 1, ?2, ?3, ?4, 1, 2)
            """)
        var expected: [Int64: Result<String, SecretError>] = [:]
        try db.connection.execute("BEGIN")
        for (index, kind) in kinds.enumerated() {
            let secret = try Self.secret(kind, keys, index: index)
            let partial = kind == .partial
            try insert.run([
                .text("user-\(index)"), secret.map { .text($0.encryptedAPIKey) } ?? .null,
                secret.map { .text($0.salt) } ?? .null, partial ? .null : secret.map { .text($0.nonce) } ?? .null
            ])
            if let secret, !partial { expected[Int64(index + 1)] = Self.alone(secret, keys.master) }
        }
        try db.connection.execute("COMMIT")
        return (db, expected)
    }

    /// The records of an exported JSON Lines file, with sealed keys opened.
    static func exportedKeys(_ path: String, passphrase: SecureBytes) throws -> [Int64: KeyMaterial] {
        let reader = try SnapshotReaders.open(path: path, format: .jsonl)
        let decoder = RecordDecoder(format: .jsonl, declaredKeys: reader.header?.keys)
        let sealer = try reader.header?.sealing.map { try SnapshotSealer(passphrase: passphrase, parameters: $0) }
        var keys: [Int64: KeyMaterial] = [:]
        while let raw = try reader.next() {
            let record = try decoder.decode(raw)
            if case .sealed(let sealed) = record.key, let sealer {
                keys[record.id!] = .plaintext(try sealer.open(sealed, userID: record.userID, toolID: record.toolID))
            } else {
                keys[record.id!] = record.key
            }
        }
        return keys
    }

    @Test(
        "export --keys plaintext and sealed give every row the key it decrypts to alone, across batches and with an odd number of keys",
        arguments: [KeyMode.plaintext, .sealed], [1, 3])
    func exportKeys(keys mode: KeyMode, jobs: Int) throws {
        let folder = try TemporaryFolder()
        let keys = Keys()
        // 1,102 rows (more than one batch of 1,024), every third without a key: 735 keys.
        let kinds = (0..<1102).map { index -> Kind in index % 3 == 1 ? .noKey : index % 7 == 0 ? .emptyPlaintext : .master }
        let (db, expected) = try Self.database(folder, kinds, keys)
        #expect(expected.count % 2 == 1)
        let path = folder.path("out.jsonl")
        let report = try Exporter(
            database: db.connection,
            options: Exporter.Options(
                output: path, format: .jsonl, keys: mode, masterKey: keys.master, passphrase: SnapshotFixtures.passphrase(),
                sealingCost: SnapshotFixtures.cheapSealing, jobs: jobs)
        ).run()
        #expect(report.rows == kinds.count)
        let exported = try Self.exportedKeys(path, passphrase: SnapshotFixtures.passphrase())
        #expect(exported.count == kinds.count)
        for (id, key) in exported {
            if let alone = expected[id] {
                #expect(key == .plaintext(try alone.get()), "row id \(id)")
            } else {
                #expect(key == KeyMaterial.none, "row id \(id)")
            }
        }
    }

    @Test(
        "a paired export fails on the first row in id order whose key does not decrypt alone, with that row's error, and writes nothing",
        arguments: [Kind.otherKey, .tampered, .notUTF8, .badBase64, .shortSalt, .shortCiphertext], [KeyMode.plaintext, .sealed])
    func exportFailure(bad: Kind, keys mode: KeyMode) throws {
        let folder = try TemporaryFolder()
        let keys = Keys()
        // The bad rows at odd and even places among the keyed ones, in one pair and across pairs.
        var kinds = (0..<45).map { index -> Kind in index % 4 == 3 ? .noKey : .master }
        for index in [12, 13, 30] { kinds[index] = bad }
        let (db, expected) = try Self.database(folder, kinds, keys)
        let firstFailure = expected.filter { (try? $0.value.get()) == nil }.min { $0.key < $1.key }!
        let path = folder.path("out.jsonl")
        for jobs in [1, 2] {
            let error = thrownError {
                _ = try Exporter(
                    database: db.connection,
                    options: Exporter.Options(
                        output: path, format: .jsonl, keys: mode, masterKey: keys.master, passphrase: SnapshotFixtures.passphrase(),
                        sealingCost: SnapshotFixtures.cheapSealing, jobs: jobs)
                ).run()
            }
            let rowError = try #require(error as? RowError, "\(String(describing: error))")
            #expect(rowError.rowID == firstFailure.key)
            #expect(Result<String, SecretError>.failure(rowError.cause) == firstFailure.value)
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }
}
