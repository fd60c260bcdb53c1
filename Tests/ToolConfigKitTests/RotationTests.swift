import Foundation
import Testing
@testable import ToolConfigKit

@Suite("Rotation")
struct RotationTests {
    // MARK: helpers

    /// Threads for KeyRotator and KeyVerifier run inside the test process: the parallel path.
    static let inProcessJobs = 2

    static func keyFile(_ key: MasterKey, _ folder: TemporaryFolder, _ name: String) throws -> String {
        let path = folder.path(name)
        try Data((key.base64Text + "\n").utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    static func rotateArguments(_ db: String, old: String, new: String) -> [String] {
        ["rotate", "--db", db, "--master-key-file", old, "--new-master-key-file", new]
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// Table reports of a JSON report by table name.
    static func tables(_ report: [String: Any]) -> [String: [String: Any]] {
        let tables = report["groups"] as? [[String: Any]] ?? []
        return Dictionary(tables.map { ($0["table"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Names of the secrets found in `text`: each key's base64 (with and without padding, and
    /// its first 16 characters), its hex, each plaintext and the base64 of each plaintext. Never
    /// the values themselves, so a failure message does not spread them either.
    static func leaks(in text: String, keys: [(String, MasterKey)], plaintexts: [String: String], rowKeys: [(String, SecureBytes)] = [])
        -> [String]
    {
        var found: [String] = []
        for (name, key) in keys {
            let base64 = key.base64Text
            let hex = key.material.withBytes { Digest.hex($0) }
            let forms = [
                ("base64", base64), ("unpadded base64", base64.replacingOccurrences(of: "=", with: "")),
                ("base64 prefix", String(base64.prefix(16))), ("hex", hex), ("hex prefix", String(hex.prefix(16)))
            ]
            for (form, value) in forms where text.contains(value) { found.append("\(name) (\(form))") }
        }
        for (name, plaintext) in plaintexts where plaintext.count >= 6 {
            if text.contains(plaintext) { found.append("plaintext of \(name)") }
            let encoded = Base64.encode(Array(plaintext.utf8)).replacingOccurrences(of: "=", with: "")
            if encoded.count >= 8, text.contains(String(encoded.dropLast(2))) { found.append("base64 of the plaintext of \(name)") }
        }
        for (name, rowKey) in rowKeys {
            let (hex, base64) = rowKey.withBytes { (Digest.hex($0), Base64.encode($0)) }
            if text.contains(hex) || text.contains(String(base64.prefix(16))) { found.append("row key of \(name)") }
        }
        return found
    }

    /// Every keyed row decrypts under `key` to the plaintext remembered for it.
    static func expectPlaintexts(_ database: KeyedDatabase, under key: MasterKey, sourceLocation: SourceLocation = #_sourceLocation) throws
    {
        let connection = try database.connection(.readOnly)
        var checked = 0
        for table in [KeyedDatabase.aliases, KeyedDatabase.configs] {
            for row in try Self.storedTriples(connection, table) {
                guard let secret = row.secret else {
                    #expect(
                        database.plaintexts["\(table)/\(row.id)"] == nil, "\(table)/\(row.id) lost its key", sourceLocation: sourceLocation)
                    continue
                }
                let plaintext = try? SecretCipher.decrypt(secret, masterKey: key)
                #expect(
                    plaintext != nil && plaintext == database.plaintexts["\(table)/\(row.id)"], "\(table)/\(row.id)",
                    sourceLocation: sourceLocation)
                checked += 1
            }
        }
        #expect(checked == database.keyedTotal, sourceLocation: sourceLocation)
    }

    static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// Rewrites one row (found by its `id`, or another column) with a SQL assignment list.
    static func update(
        _ path: String, _ table: String, id: String, by column: String = "id", _ assignments: String, _ values: [SQLiteStatement.Value] = []
    ) throws {
        let connection = try SQLiteConnection(path: path)
        defer { connection.close() }
        let statement = try connection.prepare("UPDATE \(quoted(table)) SET \(assignments) WHERE CAST(\(column) AS TEXT) = ?1")
        try statement.run([.text(id)] + values)
        #expect(connection.changes == 1)
    }

    // MARK: 1. against the independent implementation

    @Test("rotates triples written by Python cryptography in both tables; Python opens every key under the new key")
    func crossImplementation() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let special = CrossImplementationTests.plaintexts
        let database = try KeyedDatabase(
            at: folder.path("app.db"), master: old, aliases: 12, rows: 40, noKey: { $0 > 8 && $0 % 4 == 0 },
            plaintext: { table, index in
                table == KeyedDatabase.configs && index <= special.count ? special[index - 1] : KeyedDatabase.defaultPlaintext(table, index)
            },
            encrypt: KeyedDatabase.peerEncryptor(old))
        let before = try database.connection(.readOnly)
        let triplesBefore = try [KeyedDatabase.aliases, KeyedDatabase.configs].map { try Self.storedTriples(before, $0) }
        before.close()
        let stateBefore = try Self.logicalState(database.path)

        let connection = try database.connection()
        let report = try KeyRotator(database: connection, options: .init(oldKey: old, newKey: new, jobs: Self.inProcessJobs)).run()
        connection.close()

        let tables = Dictionary(report.groups.map { ($0.table, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(Set(tables.keys) == [KeyedDatabase.aliases, KeyedDatabase.configs])
        let aliases = try #require(tables[KeyedDatabase.aliases]), configs = try #require(tables[KeyedDatabase.configs])
        #expect((aliases.rows, aliases.rotated, aliases.alreadyRotated, aliases.empty) == (12, 12, 0, 0))
        #expect((configs.rows, configs.rotated, configs.alreadyRotated, configs.empty) == (40, 32, 0, 8))
        #expect(report.verifiedAfterCommit == 44)
        #expect(report.verifiedAfterCommit == report.groups.reduce(0) { $0 + $1.rotated })
        #expect(!report.dryRun && report.backupFile == nil)
        #expect(report.masterKeyFingerprint == old.fingerprint && report.newMasterKeyFingerprint == new.fingerprint)

        let after = try database.connection(.readOnly)
        for (table, rowsBefore) in zip([KeyedDatabase.aliases, KeyedDatabase.configs], triplesBefore) {
            let rowsAfter = try Self.storedTriples(after, table)
            #expect(rowsAfter.map(\.id) == rowsBefore.map(\.id))
            let keyed = rowsAfter.compactMap { row in row.secret.map { (row.id, $0) } }
            #expect(keyed.count == database.keyed[table])
            // The independent implementation opens every rotated key under the new master key.
            let request: [String: Any] = [
                "master_key": new.base64Text,
                "secrets": keyed.map { ["encrypted_api_key": $0.1.encryptedAPIKey, "salt": $0.1.salt, "nonce": $0.1.nonce] }
            ]
            let decrypted = try #require(try cryptoPeer("decrypt", request) as? [String])
            #expect(decrypted == keyed.map { database.plaintexts["\(table)/\($0.0)"] ?? "<none>" }, "\(table)")
            for (was, now) in zip(rowsBefore, rowsAfter) {
                guard let oldSecret = was.secret else {
                    #expect(now.secret == nil, "\(table) \(was.id) gained a key")
                    continue
                }
                let newSecret = try #require(now.secret, "\(table) \(was.id) lost its key")
                #expect(newSecret.salt != oldSecret.salt, "\(table) \(was.id): salt kept")
                #expect(newSecret.nonce != oldSecret.nonce, "\(table) \(was.id): nonce kept")
                #expect(newSecret.encryptedAPIKey != oldSecret.encryptedAPIKey, "\(table) \(was.id): ciphertext kept")
            }
        }
        // The old key opens nothing any more.
        let underOld = try KeyVerifier(database: after, masterKey: old, jobs: Self.inProcessJobs).run()
        #expect(underOld.groups.allSatisfy { $0.underMasterKey == 0 })
        after.close()
        // Everything but the triples is as it was.
        let stateAfter = try Self.logicalState(database.path)
        for (name, digest) in stateBefore where ![KeyedDatabase.aliases, KeyedDatabase.configs].contains(name) {
            #expect(stateAfter[name] == digest, "\(name) changed")
        }
        #expect(Set(stateAfter.keys) == Set(stateBefore.keys))
    }

    @Test("rotation keeps every column but the triple, in both tables")
    func otherColumnsKept() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, aliases: 4, rows: 20, noKey: { $0 % 4 == 0 })
        func others() throws -> [[SQLiteStatement.Value]] {
            let connection = try database.connection(.readOnly)
            defer { connection.close() }
            let statement = try connection.prepare(
                """
                SELECT rowid, id, api_format, base_url, models_json, created_at, updated_at FROM api_model_aliases
                UNION ALL SELECT rowid, id, user_id, tool_id, enabled, created_at, updated_at FROM user_tool_configs ORDER BY 1, 2
                """)
            var rows: [[SQLiteStatement.Value]] = []
            while try statement.step() { rows.append((0..<statement.columnCount).map(statement.value)) }
            return rows
        }
        let before = try others()
        let connection = try database.connection()
        _ = try KeyRotator(database: connection, options: .init(oldKey: old, newKey: new, jobs: Self.inProcessJobs)).run()
        connection.close()
        #expect(try others() == before)
        try Self.expectPlaintexts(database, under: new)
    }

    // MARK: 2. failures change nothing

    enum Failure: String, CaseIterable, CustomTestStringConvertible {
        case wrongOldKey = "wrong old key"
        case corruptedRow = "one corrupted row"
        case partialTriple = "a partial triple"
        case malformedSalt = "a 31-byte salt"
        var testDescription: String { rawValue }
    }

    @Test("a failing rotate exits 65, names table and row, shows no secret, and changes nothing", arguments: Failure.allCases)
    func failureChangesNothing(_ failure: Failure) throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate(), other = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 50, noKey: { $0 % 10 == 0 })
        let oldFile = try Self.keyFile(failure == .wrongOldKey ? other : old, folder, "old.key")
        let newFile = try Self.keyFile(new, folder, "new.key")
        var expectedLocation: String
        var rowTriple: StoredSecret?
        switch failure {
        case .wrongOldKey:
            expectedLocation = "api_model_aliases row id alias-1"
        case .corruptedRow:
            let connection = try database.connection(.readOnly)
            let row = try #require(try Self.storedTriples(connection, KeyedDatabase.configs).first { $0.id == "25" }?.secret)
            connection.close()
            var characters = Array(row.encryptedAPIKey)
            let middle = characters.count / 2
            characters[middle] = characters[middle] == "A" ? "B" : "A"
            rowTriple = row
            try Self.update(database.path, KeyedDatabase.configs, id: "25", "encrypted_api_key = ?2", [.text(String(characters))])
            expectedLocation = "user_tool_configs row id 25"
        case .partialTriple:
            try Self.update(database.path, KeyedDatabase.configs, id: "31", "nonce = NULL")
            expectedLocation = "user_tool_configs row id 31"
        case .malformedSalt:
            try Self.update(database.path, KeyedDatabase.configs, id: "44", "salt = ?2", [.text(Base64.encode(SecureRandom.bytes(31)))])
            expectedLocation = "user_tool_configs row id 44"
        }
        let before = try Self.logicalState(database.path)

        for extra in [[], ["--json"]] {
            let result = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + extra)
            #expect(result.status == 65, "\(failure.rawValue) \(extra): \(result.stderr)")
            #expect(result.stderr.contains(expectedLocation), "\(result.stderr)")
            #expect(result.stderr.contains("nothing was changed"), "\(result.stderr)")
            if extra.isEmpty {
                #expect(result.stdout.isEmpty, "a failed rotation printed a report: \(result.stdout)")
            } else {
                // The --json contract's error object: where, as values; the message as on stderr.
                let object = try Self.json(result.stdout)
                let error = object["error"] as? [String: Any]
                #expect(object["ok"] as? Bool == false && object["exit_status"] as? Int == 65, "\(result.stdout)")
                let rowID = try #require(
                    try SQLiteConnection(path: database.path, mode: .readOnly).queryInt64(
                        "SELECT rowid FROM \(expectedLocation.split(separator: " ")[0]) WHERE id = ?1",
                        [.text(String(expectedLocation.split(separator: " ")[3]))]))
                #expect(error?["table"] as? String == String(expectedLocation.split(separator: " ")[0]), "\(result.stdout)")
                #expect((error?["row_id"] as? NSNumber)?.int64Value == rowID, "\(result.stdout)")
                #expect((error?["message"] as? String).map(result.stderr.contains) == true, "\(result.stdout)")
            }
            let leaks = Self.leaks(
                in: result.stdout + result.stderr, keys: [("old key", old), ("new key", new), ("given old key", other)],
                plaintexts: database.plaintexts)
            #expect(leaks.isEmpty, "\(leaks)")
            if let rowTriple {
                #expect(!result.stderr.contains(rowTriple.salt) && !result.stderr.contains(String(rowTriple.encryptedAPIKey.prefix(12))))
            }
            #expect(try Self.logicalState(database.path) == before, "\(failure.rawValue): the database changed")
        }
        // And the library says the same, with the error's fields.
        let connection = try database.connection()
        let error = thrownError {
            _ = try KeyRotator(
                database: connection, options: .init(oldKey: failure == .wrongOldKey ? other : old, newKey: new, jobs: Self.inProcessJobs)
            ).run()
        }
        let rotationError = try #require(error as? RotationError, "\(String(describing: error))")
        #expect("\(rotationError.table) \(rotationError.row)" == expectedLocation)
        #expect(rotationError.rolledBack)
        connection.close()
        #expect(try Self.logicalState(database.path) == before)
    }

    /// Whether a plain write to `path` is refused; root ignores the mode bits.

    @Test("a read-only database file fails with 74 and stays unchanged")
    func readOnlyDatabase() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 20)
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        let before = try Self.logicalState(database.path)
        // Without write access to the file or the folder, SQLite can create neither a WAL nor a
        // shared-memory file, nor write the database.
        chmod(database.path, 0o444)
        chmod(folder.url.path, 0o555)
        defer {
            chmod(folder.url.path, 0o755)
            chmod(database.path, 0o644)
        }
        let user = try WriteRefusingUser(database: database.path, owning: [folder.url.path, database.path, oldFile, newFile])
        let result = try user.toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile))
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderr.contains(database.path), "\(result.stderr)")
        let leaks = Self.leaks(
            in: result.stdout + result.stderr, keys: [("old key", old), ("new key", new)], plaintexts: database.plaintexts)
        #expect(leaks.isEmpty, "\(leaks)")
        #expect(try Self.logicalState(database.path) == before)
    }

    // MARK: 3. idempotence and resumption

    @Test("a second rotation with the same keys finds every row already rotated and changes nothing")
    func secondRunChangesNothing() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 60, noKey: { $0 % 6 == 0 })
        let options = KeyRotator.Options(oldKey: old, newKey: new, jobs: Self.inProcessJobs)
        let first = try KeyRotator(database: try database.connection(), options: options).run()
        #expect(first.groups.map(\.rotated) == [3, 50])
        let state = try Self.logicalState(database.path)

        let second = try KeyRotator(database: try database.connection(), options: options).run()
        for table in second.groups {
            #expect(table.rotated == 0 && table.alreadyRotated == database.keyed[table.table], "\(table)")
            #expect(table.empty == database.withoutKey[table.table] && table.rows == table.alreadyRotated + table.empty)
        }
        #expect(second.verifiedAfterCommit == 0)
        #expect(try Self.logicalState(database.path) == state, "the second run rewrote rows")
        try Self.expectPlaintexts(database, under: new)
    }

    /// Rotates, then puts back the pre-rotation triples of some rows (a copy restored in part):
    /// the result is a database half under the old key and half under the new one.
    static func halfRotated(_ folder: TemporaryFolder, old: MasterKey, new: MasterKey) throws -> (KeyedDatabase, restored: [String: Int]) {
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, aliases: 6, rows: 60, noKey: { $0 % 6 == 0 })
        let copy = folder.path("before-rotation.db")
        try database.connection(.readOnly).backup(to: copy)
        _ = try KeyRotator(database: try database.connection(), options: .init(oldKey: old, newKey: new, jobs: Self.inProcessJobs)).run()
        let connection = try database.connection()
        defer { connection.close() }
        try connection.execute("ATTACH DATABASE '\(copy)' AS pre")
        try connection.execute(
            """
            UPDATE main.user_tool_configs SET (encrypted_api_key, salt, nonce) =
                (SELECT p.encrypted_api_key, p.salt, p.nonce FROM pre.user_tool_configs p WHERE p.id = user_tool_configs.id)
            WHERE id % 3 = 0;
            UPDATE main.api_model_aliases SET (encrypted_api_key, salt, nonce) =
                (SELECT p.encrypted_api_key, p.salt, p.nonce FROM pre.api_model_aliases p WHERE p.id = api_model_aliases.id)
            WHERE id IN ('alias-2', 'alias-5');
            DETACH DATABASE pre;
            """)
        // ids 3, 9, ..., 57 have a key (multiples of 6 have none): 10 rows.
        return (database, [KeyedDatabase.aliases: 2, KeyedDatabase.configs: 10])
    }

    @Test("a half-rotated database (rows restored under the old key) rotates to every row under the new key")
    func halfRotatedResumes() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let (database, restored) = try Self.halfRotated(folder, old: old, new: new)

        let report = try KeyRotator(database: try database.connection(), options: .init(oldKey: old, newKey: new, jobs: Self.inProcessJobs))
            .run()
        for table in report.groups {
            #expect(table.rotated == restored[table.table], "\(table)")
            #expect(table.alreadyRotated == (database.keyed[table.table] ?? 0) - (restored[table.table] ?? 0), "\(table)")
        }
        #expect(report.verifiedAfterCommit == 12)

        let verify = try KeyVerifier(database: try database.connection(.readOnly), masterKey: new, jobs: Self.inProcessJobs).run()
        #expect(verify.ok)
        for table in verify.groups {
            #expect(table.underMasterKey == database.keyed[table.table] && table.underNeither == 0 && table.malformed == 0, "\(table)")
        }
        try Self.expectPlaintexts(database, under: new)
    }

    @Test("a row under neither key fails the run with RotationError and changes nothing")
    func rowUnderNeitherKey() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate(), third = MasterKey.generate()
        let (database, _) = try Self.halfRotated(folder, old: old, new: new)
        let stranger = try SecretCipher.encrypt("sk-under-a-third-key", masterKey: third)
        try Self.update(
            database.path, KeyedDatabase.configs, id: "40", "encrypted_api_key = ?2, salt = ?3, nonce = ?4",
            [.text(stranger.encryptedAPIKey), .text(stranger.salt), .text(stranger.nonce)])
        let before = try Self.logicalState(database.path)
        let connection = try database.connection()
        let error = thrownError {
            _ = try KeyRotator(database: connection, options: .init(oldKey: old, newKey: new, jobs: Self.inProcessJobs)).run()
        }
        let rotationError = try #require(error as? RotationError, "\(String(describing: error))")
        #expect(rotationError.table == KeyedDatabase.configs && rotationError.row == "row id 40")
        #expect(rotationError.exitStatus == .dataError)
        #expect(rotationError.description.contains(old.fingerprint) && rotationError.description.contains(new.fingerprint))
        #expect(!connection.isInTransaction)
        connection.close()
        #expect(try Self.logicalState(database.path) == before)
    }

    // MARK: 4. dry run, backup, same key

    @Test("--dry-run reports the counts and writes nothing")
    func dryRun() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 30, noKey: { $0 % 3 == 0 })
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        let before = try Self.logicalState(database.path)
        let bytesBefore = try Data(contentsOf: URL(fileURLWithPath: database.path))

        let result = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--dry-run", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try Self.json(result.stdout)
        #expect(report["dry_run"] as? Bool == true)
        #expect(report["verified_after_commit"] as? Int == 0)
        let tables = Self.tables(report)
        #expect(tables[KeyedDatabase.aliases]?["rotated"] as? Int == 3)
        #expect(tables[KeyedDatabase.configs]?["rotated"] as? Int == 20)
        #expect(tables[KeyedDatabase.configs]?["empty"] as? Int == 10)
        #expect(tables[KeyedDatabase.configs]?["rows"] as? Int == 30)

        let human = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--dry-run"])
        #expect(human.status == 0)
        #expect(human.stderr.contains("user_tool_configs (encrypted_api_key): 30 rows, 20 to rotate"), "\(human.stderr)")

        #expect(try Self.logicalState(database.path) == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: database.path)) == bytesBefore, "the database file's bytes changed")
        try Self.expectPlaintexts(database, under: old)
    }

    @Test("--backup writes a 0600 exact copy of the state before rotating, whose keys open under the old key")
    func backup() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 30, noKey: { $0 % 7 == 0 })
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        let before = try Self.logicalState(database.path)
        let backup = folder.path("backup.db")

        let result = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--backup", backup, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try Self.json(result.stdout)
        #expect(report["backup_file"] as? String == backup)
        #expect(report["verified_after_commit"] as? Int == database.keyedTotal)
        #expect((try FileManager.default.attributesOfItem(atPath: backup)[.posixPermissions] as? Int) == 0o600)
        #expect(try Self.logicalState(backup) == before, "the backup is not the pre-rotation database")
        let underOld = try KeyVerifier(
            database: try SQLiteConnection(path: backup, mode: .readOnly), masterKey: old, newKey: new, jobs: Self.inProcessJobs
        ).run()
        #expect(underOld.ok)
        for table in underOld.groups {
            #expect(table.underMasterKey == database.keyed[table.table] && table.underNewMasterKey == 0, "\(table)")
        }
        try Self.expectPlaintexts(database, under: new)
    }

    @Test("--backup refuses an existing path: non-zero exit, database and file unchanged")
    func backupExists() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        let existing = folder.path("existing.db")
        try Data("precious\n".utf8).write(to: URL(fileURLWithPath: existing))
        let before = try Self.logicalState(database.path)

        let result = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--backup", existing])
        #expect(result.status != 0)
        #expect(result.stderr.contains(existing), "\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: existing)) == Data("precious\n".utf8))
        #expect(try Self.logicalState(database.path) == before)
        try Self.expectPlaintexts(database, under: old)
    }

    @Test("the same key as old and new is refused with 64 and changes nothing")
    func sameKey() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try Self.keyFile(old, folder, "old.key"), sameFile = try Self.keyFile(old, folder, "same.key")
        let before = try Self.logicalState(database.path)
        let result = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: sameFile))
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(old.fingerprint))
        #expect(Self.leaks(in: result.stderr, keys: [("key", old)], plaintexts: database.plaintexts).isEmpty)
        #expect(try Self.logicalState(database.path) == before)
    }

    @Test("every table with the three columns is rotated, whatever its name, and errors name a table without id by rowid")
    func discoveryByColumns() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        // The application's database before 0007: only api_model_aliases holds keys.
        let appOnly = folder.path("app-only.db")
        try makeApplicationDatabase(at: appOnly)
        let appReport = try KeyRotator(
            database: try SQLiteConnection(path: appOnly), options: .init(oldKey: old, newKey: new, jobs: Self.inProcessJobs)
        ).run()
        #expect(appReport.groups.map(\.table) == [KeyedDatabase.aliases])
        #expect(appReport.groups.first?.rotated == 3 && appReport.verifiedAfterCommit == 3)

        // A third table with an awkward name and no id column.
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 5)
        let odd = "legacy \"odd\" keys"
        let plaintexts = (1...4).map { "sk-legacy-\($0)-\(Digest.hex(SecureRandom.bytes(8)))" }
        do {
            let connection = try database.connection()
            try connection.execute("CREATE TABLE \(Self.quoted(odd)) (name TEXT, nonce TEXT, salt TEXT, encrypted_api_key TEXT)")
            let insert = try connection.prepare("INSERT INTO \(Self.quoted(odd)) VALUES (?1, ?2, ?3, ?4)")
            for (index, plaintext) in plaintexts.enumerated() {
                let secret = try SecretCipher.encrypt(plaintext, masterKey: old)
                try insert.run([.text("k\(index)"), .text(secret.nonce), .text(secret.salt), .text(secret.encryptedAPIKey)])
            }
            connection.close()
        }
        // First a corrupted third row: the error names the table and the rowid.
        try Self.update(database.path, odd, id: "k2", by: "name", "salt = ?2", [.text(Base64.encode(SecureRandom.bytes(32)))])
        let before = try Self.logicalState(database.path)
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        let refused = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile))
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("\(odd) rowid 3"), "\(refused.stderr)")
        #expect(try Self.logicalState(database.path) == before)

        try Self.update(database.path, odd, id: "k2", by: "name", "encrypted_api_key = NULL, salt = NULL, nonce = NULL")
        let result = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let tables = Self.tables(try Self.json(result.stdout))
        #expect(Set(tables.keys) == [KeyedDatabase.aliases, KeyedDatabase.configs, odd])
        #expect(tables[odd]?["rotated"] as? Int == 3 && tables[odd]?["empty"] as? Int == 1)
        let connection = try database.connection(.readOnly)
        let statement = try connection.prepare("SELECT name, encrypted_api_key, salt, nonce FROM \(Self.quoted(odd)) ORDER BY rowid")
        var opened: [String?] = []
        while try statement.step() {
            let secret =
                statement.isNull(1)
                ? nil : StoredSecret(encryptedAPIKey: statement.text(1)!, salt: statement.text(2)!, nonce: statement.text(3)!)
            opened.append(try secret.map { try SecretCipher.decrypt($0, masterKey: new) })
        }
        #expect(opened == [plaintexts[0], plaintexts[1], nil, plaintexts[3]])
        connection.close()
        try Self.expectPlaintexts(database, under: new)
    }

    @Test("a database held by another writer past --busy-timeout exits 75 and is unchanged")
    func busy() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        let before = try Self.logicalState(database.path)
        let holder = try database.connection()
        try holder.execute("BEGIN IMMEDIATE")
        for extra in [[], ["--backup", folder.path("backup.db")]] {
            let result = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--busy-timeout", "0.2"] + extra)
            #expect(result.status == 75, "\(extra): \(result.stderr)")
        }
        try holder.execute("ROLLBACK")
        holder.close()
        #expect(try Self.logicalState(database.path) == before)
        try Self.expectPlaintexts(database, under: old)
    }

    @Test("rotate waits up to --busy-timeout for another writer's lock, with and without --backup")
    func waitsForTheLock() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        var results: [ProcessResult] = []
        for (index, extra) in [[], ["--backup", folder.path("backup.db")]].enumerated() {
            // Another writer holds the lock for a second; the timeout allows ten.
            nonisolated(unsafe) let holder = try database.connection()
            try holder.execute("BEGIN IMMEDIATE")
            let releaser = Thread {
                usleep(1_000_000)
                try? holder.execute("ROLLBACK")
            }
            releaser.start()
            let (oldKey, newKey) = index == 0 ? (oldFile, newFile) : (newFile, oldFile)
            results.append(try toolcfg(Self.rotateArguments(database.path, old: oldKey, new: newKey) + ["--busy-timeout", "10"] + extra))
            while !releaser.isFinished { usleep(1000) }
            holder.close()
        }
        #expect(results[0].status == 0, "without --backup: \(results[0].stderr)")
        #expect(results[1].status == 0, "with --backup: \(results[1].stderr)")
    }

    @Test("a failed rotate --backup leaves no backup behind, so the same command can be run again")
    func failedRotationLeavesNoBackup() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        try Self.update(database.path, KeyedDatabase.configs, id: "5", "nonce = NULL")
        let before = try Self.logicalState(database.path)
        let backup = folder.path("backup.db")
        let first = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--backup", backup])
        #expect(first.status == 65, "\(first.stderr)")
        #expect(try Self.logicalState(database.path) == before)
        #expect(!FileManager.default.fileExists(atPath: backup), "a failed rotation left its backup")
        // Once the row is repaired, the same command goes through.
        try Self.update(database.path, KeyedDatabase.configs, id: "5", "encrypted_api_key = NULL, salt = NULL, nonce = NULL")
        let second = try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--backup", backup])
        #expect(second.status == 0, "\(second.stderr)")
    }

    @Test("verify-keys and rotate --dry-run on many rows without a key do not crash (--jobs 8): ParallelMap's result slots once raced")
    func parallelMapRace() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        // 60,000 rows without a key: each costs ParallelMap's transform almost nothing, so its
        // threads store their results back to back.
        let connection = try database.connection()
        try connection.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 11 UNION ALL SELECT i + 1 FROM n WHERE i < 60010)
            INSERT INTO user_tool_configs (id, user_id, tool_id, enabled, created_at, updated_at)
            SELECT i, 'bulk-' || i, 'tool', 0, 1700000000, 1700000000 FROM n
            """)
        connection.close()
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        var results: [(String, ProcessResult)] = []
        for run in 1...4 {
            results.append(
                ("verify-keys run \(run)", try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", oldFile, "--jobs", "8"]))
            )
        }
        results.append(
            (
                "rotate --dry-run",
                try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--dry-run", "--jobs", "8"])
            ))
        let failed = results.filter { $0.1.status != 0 }.map { "\($0.0) exited \($0.1.status)" }
        #expect(failed.isEmpty, "\(failed)")
        try Self.expectPlaintexts(database, under: old)
    }

    @Test(
        """
        sixteen rows rotated together on the selected PBKDF2 kernel end as row by row does: rotated (opening to the same key), \
        already rotated, or failed
        """
    )
    func sixteenLaneRotationAgreesWithRowByRow() throws {
        let old = MasterKey.generate(), new = MasterKey.generate(), other = MasterKey.generate()
        for round in 0..<4 {
            let keys = (0..<16).map { lane in [old, new, other][(lane + round) % 3 == 2 && lane % 5 != 0 ? 2 : (lane + round) % 2] }
            let rows = try keys.enumerated().map { lane, master in
                SecretRow(
                    rowID: Int64(lane + 1), id: String(lane + 1), secret: try SecretCipher.encrypt("sk-lane-\(lane)", masterKey: master),
                    partial: false)
            }
            let grouped = KeyRotator.rotate(rows, oldKey: old, newKey: new)
            let single = rows.map { KeyRotator.rotate($0, oldKey: old, newKey: new) }
            #expect(grouped.count == 16)
            for (lane, (a, b)) in zip(grouped, single).enumerated() {
                switch (a, b) {
                case (.rotated(let secret), .rotated):
                    #expect(try SecretCipher.decrypt(secret, masterKey: new) == "sk-lane-\(lane)")
                    #expect(secret.salt != rows[lane].secret!.salt)
                case (.alreadyRotated, .alreadyRotated), (.failed, .failed):
                    break
                default:
                    Issue.record("lane \(lane): grouped \(a), row by row \(b)")
                }
            }
        }
    }

    // MARK: 5. crash safety

    /// Rows such that an uninterrupted `rotate --jobs 2` spends about 0.17 s re-encrypting in
    /// this build, measured on the rotator's own per-row work: about 3000 rows on a fast machine,
    /// fewer in a slow build, so that the test stays short wherever it runs.
    static func crashRows() throws -> Int {
        let old = MasterKey.generate(), new = MasterKey.generate()
        let row = SecretRow(rowID: 1, id: "1", secret: try SecretCipher.encrypt("sk-calibration", masterKey: old), partial: false)
        let clock = ContinuousClock()
        // The fastest of a few batches: other tests share the cores while this one starts.
        let fastest = (0..<5).map { _ in clock.measure { for _ in 0..<20 { _ = KeyRotator.rotate(row, oldKey: old, newKey: new) } } }.min()!
        let perRow = (Double(fastest.components.seconds) + Double(fastest.components.attoseconds) / 1e18) / 20
        return min(3000, max(600, Int(0.17 * 2 / perRow)))
    }

    @Test("SIGKILL at a random moment of rotate leaves every row under one key, the same for all", .timeLimit(.minutes(1)))
    func crashSafety() throws {
        let folder = try TemporaryFolder()
        var old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let rows = try Self.crashRows()
        let database = try KeyedDatabase(at: folder.path("crash.db"), master: old, rows: rows, noKey: { $0 % 100 == 0 })
        var oldFile = try Self.keyFile(old, folder, "a.key"), newFile = try Self.keyFile(new, folder, "b.key")
        var environment = ProcessInfo.processInfo.environment
        for name in ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE"] { environment[name] = nil }

        // Two uninterrupted runs on a twin database (there and back) time the whole command in
        // this build on this machine now: start-up, rotation, commit, read-back, exit. Odd runs
        // are killed anywhere in it; even runs in its last sixth and a little beyond, where the
        // commit is (about 5 % before the end here), so some land after it and some finish. A
        // fixed window missed the commit in every run where the rotation took longer than it.
        let twin = try KeyedDatabase(at: folder.path("twin.db"), master: old, rows: rows, noKey: { $0 % 100 == 0 })
        let clock = ContinuousClock()
        let whole = try [(oldFile, newFile), (newFile, oldFile)].map { from, to in
            let started = clock.now
            let run = try toolcfg(Self.rotateArguments(twin.path, old: from, new: to) + ["--jobs", "2"])
            #expect(run.status == 0, "\(run.stderr)")
            return clock.now - started
        }.min()!
        let wholeMicroseconds = max(20_000, Double(whole.components.seconds) * 1e6 + Double(whole.components.attoseconds) / 1e12)

        var killedRunning = 0, finished = 0, killedAfterCommit = 0
        var log: [String] = []
        for iteration in 1...10 {
            let delay = UInt32(
                iteration % 2 == 1
                    ? Double.random(in: 5_000...wholeMicroseconds)
                    : Double.random(in: wholeMicroseconds * 5 / 6...wholeMicroseconds * 1.1))
            let stderrPath = folder.path("stderr-\(iteration)")
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
            let process = Process()
            process.executableURL = Repository.toolcfg
            process.arguments = Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--jobs", "2"]
            process.environment = environment
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: stderrPath)
            try process.run()
            usleep(delay)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            let killed = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
            let crashed = process.terminationReason == .uncaughtSignal && !killed
            let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            if killed {
                killedRunning += 1
            } else if crashed {
                // A crash of the rotation itself is a failure (the invariants below must hold all the same).
                Issue.record("iteration \(iteration): rotate died of signal \(process.terminationStatus)")
            } else {
                finished += 1
                #expect(
                    process.terminationStatus == 0,
                    "iteration \(iteration): rotate exited \(process.terminationStatus) on its own: \(stderr)")
            }

            let connection = try database.connection()  // recovers the WAL, as the next run would
            #expect(try connection.queryText("PRAGMA integrity_check") == "ok", "iteration \(iteration)")
            let report = try KeyVerifier(database: connection, masterKey: old, newKey: new, jobs: Self.inProcessJobs).run()
            connection.close()
            let allOld = report.groups.allSatisfy { $0.underMasterKey == database.keyed[$0.table] && $0.underNewMasterKey == 0 }
            let allNew = report.groups.allSatisfy { $0.underNewMasterKey == database.keyed[$0.table] && $0.underMasterKey == 0 }
            let counts = report.groups.map {
                "\($0.table): \($0.underMasterKey) old, \($0.underNewMasterKey) new, \($0.underNeither) neither, \($0.malformed) malformed"
            }
            let ended = killed ? "killed" : crashed ? "died of signal \(process.terminationStatus)" : "exited \(process.terminationStatus)"
            log.append("\(iteration): \(delay / 1000) ms, \(ended), \(allNew ? "rotated" : allOld ? "not rotated" : "MIXED")")
            #expect(allOld || allNew, "iteration \(iteration), killed after \(delay / 1000) ms: rows under a mix of keys: \(counts)")
            #expect(report.reusedSalts == 0 && report.reusedNonces == 0)
            #expect(
                killed || crashed || allNew, "iteration \(iteration): rotate succeeded but the rows are not under the new key: \(counts)")
            guard allOld || allNew else { break }
            if allNew {
                if killed || crashed { killedAfterCommit += 1 }
                swap(&old, &new)
                swap(&oldFile, &newFile)
            }
        }
        print(
            "crash safety: \(rows) rows, an uninterrupted run took \(whole); 10 iterations: \(killedRunning) "
                + "killed while running (\(killedAfterCommit) of them after the commit), \(finished) finished; "
                + "\(log.joined(separator: "; "))"
        )
        #expect(killedRunning >= 3, "only \(killedRunning) of 10 kills landed while rotate ran: \(log)")
        try Self.expectPlaintexts(database, under: old)
    }

    // MARK: 6. verify-keys

    @Test("verify-keys prints ok and exits 0 on a healthy database")
    func verifyHealthy() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 20, noKey: { $0 % 4 == 0 })
        let keyFile = try Self.keyFile(old, folder, "old.key")
        let result = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").last == "ok", "\(result.stderr)")
        #expect(result.stderr.contains("user_tool_configs (encrypted_api_key): 20 rows, 15 under \(old.fingerprint)"), "\(result.stderr)")
        let json = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile, "--json"])
        #expect(json.status == 0)
        let report = try Self.json(json.stdout)
        #expect(report["ok"] as? Bool == true && report["reused_salts"] as? Int == 0 && report["reused_nonces"] as? Int == 0)
        #expect(Self.tables(report)[KeyedDatabase.configs]?["empty"] as? Int == 5)
    }

    enum Reuse: String, CaseIterable, CustomTestStringConvertible {
        case salt, nonce
        var testDescription: String { rawValue }
    }

    /// Re-encrypts row `target` of `table` with the given salt or nonce (and a fresh other one),
    /// so it still opens under `master`.
    static func reencrypt(
        _ database: KeyedDatabase, _ table: String, id: String, master: MasterKey,
        salt: String? = nil, nonce: String? = nil
    ) throws {
        let plaintext = try #require(database.plaintexts["\(table)/\(id)"])
        let secret = try SecretCipher.encrypt(
            plaintext, masterKey: master,
            salt: try salt.map { try Base64.decode($0, field: "salt") } ?? SecureRandom.bytes(32),
            nonce: try nonce.map { try Base64.decode($0, field: "nonce") } ?? SecureRandom.bytes(12)
        ).encoded
        try update(
            database.path, table, id: id, "encrypted_api_key = ?2, salt = ?3, nonce = ?4",
            [.text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)])
    }

    @Test("verify-keys reports a salt or nonce used by two rows (both still decrypting) and exits 65", arguments: Reuse.allCases)
    func verifyReuse(_ reuse: Reuse) throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 30, noKey: { $0 % 10 == 0 })
        let source = try #require(
            try Self.storedTriples(try database.connection(.readOnly), KeyedDatabase.configs).first { $0.id == "7" }?.secret)
        try Self.reencrypt(
            database, KeyedDatabase.configs, id: "23", master: old,
            salt: reuse == .salt ? source.salt : nil, nonce: reuse == .nonce ? source.nonce : nil)

        let report = try KeyVerifier(database: try database.connection(.readOnly), masterKey: old, jobs: Self.inProcessJobs).run()
        #expect(!report.ok)
        #expect(report.reusedSalts == (reuse == .salt ? 1 : 0) && report.reusedNonces == (reuse == .nonce ? 1 : 0), "\(report)")
        for table in report.groups { #expect(table.underMasterKey == database.keyed[table.table] && table.malformed == 0, "\(table)") }
        #expect(
            report.problems.contains { $0.table == KeyedDatabase.configs && $0.rowID == 23 && $0.problem.contains(reuse.rawValue) },
            "\(report.problems)")

        let keyFile = try Self.keyFile(old, folder, "old.key")
        let result = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile, "--json"])
        #expect(result.status == 65, "\(result.stderr)")
        let json = try Self.json(result.stdout)
        #expect(json["ok"] as? Bool == false)
        #expect(json[reuse == .salt ? "reused_salts" : "reused_nonces"] as? Int == 1)
        #expect(!result.stdout.contains(reuse == .salt ? source.salt : source.nonce), "the report repeats the reused value")
    }

    @Test("verify-keys reports a salt shared by rows of different tables")
    func verifyReuseAcrossTables() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let source = try #require(try Self.storedTriples(try database.connection(.readOnly), KeyedDatabase.aliases).first?.secret)
        try Self.reencrypt(database, KeyedDatabase.configs, id: "4", master: old, salt: source.salt)
        let report = try KeyVerifier(database: try database.connection(.readOnly), masterKey: old, jobs: Self.inProcessJobs).run()
        for table in report.groups { #expect(table.underMasterKey == database.keyed[table.table], "\(table)") }
        let keyFile = try Self.keyFile(old, folder, "old.key")
        let result = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile])
        #expect(report.reusedSalts == 1, "\(report)")
        #expect(!report.ok)
        #expect(result.status == 65, "\(result.stderr)")
    }

    @Test("verify-keys counts a 31-byte salt as malformed and exits 65")
    func verifyMalformed() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 20)
        try Self.update(database.path, KeyedDatabase.configs, id: "12", "salt = ?2", [.text(Base64.encode(SecureRandom.bytes(31)))])
        let report = try KeyVerifier(database: try database.connection(.readOnly), masterKey: old, jobs: Self.inProcessJobs).run()
        let configs = try #require(report.groups.first { $0.table == KeyedDatabase.configs })
        #expect(configs.malformed == 1 && configs.underMasterKey == 19 && configs.underNeither == 0, "\(configs)")
        #expect(!report.ok)
        #expect(report.problems.map { "\($0.table) \($0.rowID)" } == ["user_tool_configs 12"])
        #expect(report.problems.first?.problem.contains("salt") == true)

        let keyFile = try Self.keyFile(old, folder, "old.key")
        let result = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile])
        #expect(result.status == 65)
        #expect(result.stderr.contains("user_tool_configs row id 12"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").last?.hasPrefix("toolcfg: error: keys NOT OK") == true, "\(result.stderr)")
    }

    @Test("verify-keys with both keys counts a half-rotated database right")
    func verifyHalfRotated() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let (database, restored) = try Self.halfRotated(folder, old: old, new: new)
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")

        // Master key = new, new key = old: most rows under the master key, the restored ones under the other.
        let report = try KeyVerifier(database: try database.connection(.readOnly), masterKey: new, newKey: old, jobs: Self.inProcessJobs)
            .run()
        #expect(report.ok)
        for table in report.groups {
            let keyed = database.keyed[table.table] ?? 0, back = restored[table.table] ?? 0
            #expect(table.underMasterKey == keyed - back && table.underNewMasterKey == back && table.underNeither == 0, "\(table)")
        }

        let result = try toolcfg([
            "verify-keys", "--db", database.path, "--master-key-file", oldFile, "--new-master-key-file", newFile, "--json"
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try Self.json(result.stdout)
        #expect(
            json["master_key_fingerprint"] as? String == old.fingerprint && json["new_master_key_fingerprint"] as? String == new.fingerprint
        )
        let tables = Self.tables(json)
        #expect(tables[KeyedDatabase.aliases]?["under_master_key"] as? Int == 2)
        #expect(tables[KeyedDatabase.aliases]?["under_new_master_key"] as? Int == 4)
        #expect(tables[KeyedDatabase.configs]?["under_master_key"] as? Int == 10)
        #expect(tables[KeyedDatabase.configs]?["under_new_master_key"] as? Int == 40)
        #expect(tables[KeyedDatabase.configs]?["empty"] as? Int == 10)

        // Under the old key alone, the rotated rows are under no given key.
        let oldOnly = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", oldFile, "--json"])
        #expect(oldOnly.status == 65)
        #expect(Self.tables(try Self.json(oldOnly.stdout))[KeyedDatabase.configs]?["under_neither"] as? Int == 40)
    }

    // MARK: 7. secret hygiene

    @Test("rotate and verify-keys --json reports carry no plaintext, master key or row key")
    func reportHygiene() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 20, noKey: { $0 % 5 == 0 })
        let third = MasterKey.generate()
        let oldFile = try Self.keyFile(old, folder, "old.key"), newFile = try Self.keyFile(new, folder, "new.key")
        let thirdFile = try Self.keyFile(third, folder, "third.key")
        let keys = [("old master key", old), ("new master key", new), ("third key", third)]
        func rowKeys(_ master: MasterKey) throws -> [(String, SecureBytes)] {
            let connection = try database.connection(.readOnly)
            defer { connection.close() }
            return try [KeyedDatabase.aliases, KeyedDatabase.configs].flatMap { table in
                try Self.storedTriples(connection, table).compactMap { row in
                    try row.secret.map { ("\(table)/\(row.id)", SecretCipher.rowKey(masterKey: master, salt: try $0.decoded().salt)) }
                }
            }
        }
        var outputs: [(String, ProcessResult)] = []
        let rowKeysBefore = try rowKeys(old)
        outputs.append(
            ("rotate --dry-run", try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--dry-run", "--json"])))
        outputs.append(
            (
                "verify-keys before",
                try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", oldFile, "--new-master-key-file", newFile, "--json"]
                )
            ))
        outputs.append(("rotate", try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--json"])))
        let rowKeysAfter = try rowKeys(new)
        outputs.append(("rotate again", try toolcfg(Self.rotateArguments(database.path, old: oldFile, new: newFile) + ["--json"])))
        outputs.append(
            (
                "verify-keys after",
                try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", newFile, "--new-master-key-file", oldFile, "--json"]
                )
            ))
        outputs.append(
            ("verify-keys wrong key", try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", oldFile, "--json"])))
        outputs.append(("rotate wrong key", try toolcfg(Self.rotateArguments(database.path, old: thirdFile, new: oldFile) + ["--json"])))
        outputs.append(
            (
                "rotate, key on stdin",
                try toolcfg(
                    ["rotate", "--db", database.path, "--master-key-file", "-", "--new-master-key-file", oldFile, "--json"],
                    stdin: Data((new.base64Text + "\n").utf8))
            ))

        let expectedStatus: [String: Int32] = [
            "rotate --dry-run": 0, "verify-keys before": 0, "rotate": 0, "rotate again": 0, "verify-keys after": 0,
            "verify-keys wrong key": 65, "rotate wrong key": 65, "rotate, key on stdin": 0
        ]
        for (name, result) in outputs {
            #expect(result.status == expectedStatus[name], "\(name): \(result.stderr)")
            let leaks = Self.leaks(
                in: result.stdout + "\n" + result.stderr, keys: keys, plaintexts: database.plaintexts,
                rowKeys: rowKeysBefore + rowKeysAfter)
            #expect(leaks.isEmpty, "\(name) shows \(leaks)")
            if result.status == 0 { #expect(!result.stdout.isEmpty && (try? Self.json(result.stdout)) != nil, "\(name)") }
        }
        // The last rotation went back to the old key: everything opens under it again.
        try Self.expectPlaintexts(database, under: old)
    }
}

extension RotationTests {
    /// The stored triples of a table in rowid order, by id (as text).
    static func storedTriples(_ connection: SQLiteConnection, _ table: String) throws -> [(id: String, secret: StoredSecret?)] {
        let statement = try connection.prepare("SELECT CAST(id AS TEXT), encrypted_api_key, salt, nonce FROM \"\(table)\" ORDER BY rowid")
        var rows: [(id: String, secret: StoredSecret?)] = []
        while try statement.step() {
            let parts = [statement.text(1), statement.text(2), statement.text(3)]
            let secret = parts.allSatisfy { $0 != nil } ? StoredSecret(encryptedAPIKey: parts[0]!, salt: parts[1]!, nonce: parts[2]!) : nil
            rows.append((statement.text(0) ?? "", secret))
        }
        return rows
    }

    /// A digest of the schema (`SELECT * FROM sqlite_master`) and of every table's rows in rowid
    /// order, by name: equal states mean a logically unchanged database, and a difference names
    /// the table.
    static func logicalState(_ path: String) throws -> [String: String] {
        let connection = try SQLiteConnection(path: path, mode: .readOnly)
        defer { connection.close() }
        func digest(_ sql: String) throws -> String {
            let statement = try connection.prepare(sql)
            var text = ""
            while try statement.step() {
                for column in 0..<statement.columnCount { text += String(reflecting: statement.value(column)) + "\u{1F}" }
                text += "\u{1E}"
            }
            return Digest.hex(Digest.sha256(Array(text.utf8)))
        }
        var state = ["sqlite_master": try digest("SELECT * FROM sqlite_master ORDER BY rowid")]
        let tables = try connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        var names: [String] = []
        while try tables.step() { names.append(tables.text(0) ?? "") }
        for name in names { state[name] = try digest("SELECT rowid, * FROM \(quoted(name)) ORDER BY rowid") }
        return state
    }
}
