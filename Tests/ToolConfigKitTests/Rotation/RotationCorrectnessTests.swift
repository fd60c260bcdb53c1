import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension RotationTests {
    // MARK: 1. against the independent implementation

    @Test(
        """
        rotates triples written by Python cryptography in both tables (a dry run first); Python opens every key under the new key, \
        the old key none, every other column is as it was; a rerun finds every row already rotated and changes nothing
        """,
        arguments: ScratchDatabase.engines)
    func crossImplementation(_ engine: DatabaseEngine) throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let special = CrossImplementationTests.plaintexts
        let database = try KeyedTestDatabase(
            engine, in: folder, master: old, aliases: 12, rows: 40, noKey: { $0 > 8 && $0 % 4 == 0 },
            plaintext: { table, index in
                table == KeyedDatabase.configs && index <= special.count ? special[index - 1] : KeyedDatabase.defaultPlaintext(table, index)
            },
            encrypt: KeyedDatabase.peerEncryptor(old))
        defer { database.drop() }
        let tableNames = [KeyedDatabase.aliases, KeyedDatabase.configs]
        let triplesBefore = try tableNames.map { try database.triples($0) }
        let stateBefore = try database.state(), columnsBefore = try database.state(withTriples: false)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        let arguments = RotationFixtures.rotateArguments(database.argument, old: oldFile, new: newFile) + ["--jobs", "2", "--json"]

        let dry = try toolcfg(arguments + ["--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(RotationFixtures.tables(try RotationFixtures.json(dry.stdout))[KeyedDatabase.configs]?["rotated"] as? Int == 32)
        #expect(try database.state() == stateBefore, "the dry run changed the database")

        // The rotation from the command line, its rerun in the library: both paths on each engine.
        let run = try toolcfg(arguments)
        #expect(run.status == 0, "\(run.stderr)")
        let report = try RotationFixtures.json(run.stdout)
        let tables = RotationFixtures.tables(report)
        #expect(Set(tables.keys) == Set(tableNames))
        let counts = tables.mapValues { group in ["rows", "rotated", "already_rotated", "empty"].map { group[$0] as? Int ?? -1 } }
        #expect(counts == [KeyedDatabase.aliases: [12, 12, 0, 0], KeyedDatabase.configs: [40, 32, 0, 8]])
        #expect(report["verified_after_commit"] as? Int == 44 && report["dry_run"] as? Bool == false && report["backup_file"] == nil)
        #expect((report["write_lock_seconds"] as? Double ?? -1) > 0)
        #expect(
            report["master_key_fingerprint"] as? String == old.fingerprint
                && report["new_master_key_fingerprint"] as? String == new.fingerprint)

        for (table, rowsBefore) in zip(tableNames, triplesBefore) {
            let rowsAfter = try database.triples(table)
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
        // The old key opens nothing any more; everything but the triples is as it was.
        let verified = try database.verify(old: old, new: new)
        #expect(verified.groups.allSatisfy { $0.underMasterKey == 0 && $0.underNewMasterKey == database.keyed[$0.table] })
        #expect(try database.state(withTriples: false) == columnsBefore, "a column besides the triples changed")

        let rotated = try database.state()
        let again = try KeyRotator(
            database: try database.open(), options: .init(oldKey: old, newKey: new, jobs: RotationFixtures.inProcessJobs)
        ).run()
        for group in again.groups {
            #expect(group.rotated == 0 && group.alreadyRotated == database.keyed[group.table], "\(group)")
            #expect(group.empty == (group.table == KeyedDatabase.configs ? 8 : 0) && group.rows == group.alreadyRotated + group.empty)
        }
        #expect(again.verifiedAfterCommit == 0 && !again.dryRun && again.backupFile == nil)
        #expect(try database.state() == rotated, "the second run rewrote rows")
        try database.expectPlaintexts(under: new)
    }

    @Test("rotation keeps every column but the triple, in both tables")
    func otherColumnsKept() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
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
        _ = try KeyRotator(database: connection, options: .init(oldKey: old, newKey: new, jobs: RotationFixtures.inProcessJobs)).run()
        connection.close()
        #expect(try others() == before)
        try RotationFixtures.expectPlaintexts(database, under: new)
    }

    // MARK: 2. failures change nothing

    enum Failure: String, CaseIterable, CustomTestStringConvertible {
        case wrongOldKey = "wrong old key"
        case corruptedRow = "one corrupted row"
        case partialTriple = "a partial triple"
        case malformedSalt = "a 31-byte salt"
        case malformedAlias = "a short nonce in the other table"
        case foreignConfig = "a row under another key"
        var testDescription: String { rawValue }
    }

    @Test(
        "a failing rotate exits 65, names table and row, shows no secret, leaves no backup, and changes nothing",
        arguments: ScratchDatabase.engines, Failure.allCases)
    func failureChangesNothing(_ engine: DatabaseEngine, _ failure: Failure) throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate(), other = MasterKey.generate()
        let database = try KeyedTestDatabase(engine, in: folder, master: old, rows: 50, noKey: { $0 % 10 == 0 })
        defer { database.drop() }
        let oldFile = try RotationFixtures.keyFile(failure == .wrongOldKey ? other : old, folder, "old.key")
        let newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        var location: (table: String, id: String)
        var rowTriple: StoredSecret?
        switch failure {
        case .wrongOldKey:
            location = (KeyedDatabase.aliases, "alias-1")
        case .corruptedRow:
            location = (KeyedDatabase.configs, "25")
            let row = try #require(try database.secret(location.table, id: location.id))
            var characters = Array(row.encryptedAPIKey)
            let middle = characters.count / 2
            characters[middle] = characters[middle] == "A" ? "B" : "A"
            rowTriple = row
            try database.set(location.table, id: location.id, "encrypted_api_key", to: String(characters))
        case .partialTriple:
            location = (KeyedDatabase.configs, "31")
            try database.set(location.table, id: location.id, "nonce", to: nil)
        case .malformedSalt:
            location = (KeyedDatabase.configs, "44")
            try database.set(location.table, id: location.id, "salt", to: Base64.encode(SecureRandom.bytes(31)))
        case .malformedAlias:
            location = (KeyedDatabase.aliases, "alias-2")
            try database.set(location.table, id: location.id, "nonce", to: "short")
        case .foreignConfig:
            location = (KeyedDatabase.configs, "33")
            let foreign = try SecretCipher.encrypt("sk-foreign-key-of-another", masterKey: other)
            for (column, value) in [("encrypted_api_key", foreign.encryptedAPIKey), ("salt", foreign.salt), ("nonce", foreign.nonce)] {
                try database.set(location.table, id: location.id, column, to: value)
            }
        }
        let expectedLocation = "\(location.table) row id \(location.id)"
        let before = try database.state()

        for extra in [[], ["--json"]] {
            let backup = folder.path("backup\(extra.count)")
            let result = try toolcfg(
                RotationFixtures.rotateArguments(database.argument, old: oldFile, new: newFile) + ["--jobs", "2", "--backup", backup]
                    + extra)
            #expect(result.status == 65, "\(failure.rawValue) \(extra): \(result.stderr)")
            #expect(result.stderr.contains(expectedLocation), "\(result.stderr)")
            #expect(result.stderr.contains("nothing was changed"), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: backup), "a failed rotation left its backup behind")
            if extra.isEmpty {
                #expect(result.stdout.isEmpty, "a failed rotation printed a report: \(result.stdout)")
            } else {
                // The --json contract's error object: where, as values; the message as on stderr.
                let object = try RotationFixtures.json(result.stdout)
                let error = object["error"] as? [String: Any]
                #expect(object["ok"] as? Bool == false && object["exit_status"] as? Int == 65, "\(result.stdout)")
                #expect(error?["table"] as? String == location.table, "\(result.stdout)")
                if let rowID = try database.rowID(location.table, id: location.id) {
                    #expect((error?["row_id"] as? NSNumber)?.int64Value == rowID, "\(result.stdout)")
                }
                #expect((error?["message"] as? String).map(result.stderr.contains) == true, "\(result.stdout)")
            }
            let leaks = RotationFixtures.leaks(
                in: result.stdout + result.stderr, keys: [("old key", old), ("new key", new), ("given old key", other)],
                plaintexts: database.plaintexts.merging(["foreign": "sk-foreign-key-of-another"]) { a, _ in a })
            #expect(leaks.isEmpty, "\(leaks)")
            if let rowTriple {
                #expect(!result.stderr.contains(rowTriple.salt) && !result.stderr.contains(String(rowTriple.encryptedAPIKey.prefix(12))))
            }
            #expect(try database.state() == before, "\(failure.rawValue): the database changed")
        }
        // And the library says the same, with the error's fields.
        let error = thrownError {
            _ = try KeyRotator(
                database: try database.open(),
                options: .init(oldKey: failure == .wrongOldKey ? other : old, newKey: new, jobs: RotationFixtures.inProcessJobs)
            ).run()
        }
        let rotationError = try #require(error as? RotationError, "\(String(describing: error))")
        #expect("\(rotationError.table) \(rotationError.row)" == expectedLocation)
        #expect(rotationError.rolledBack)
        #expect(try database.state() == before)
    }

    /// Whether a plain write to `path` is refused; root ignores the mode bits.

    @Test("a read-only database file fails with 74 and stays unchanged")
    func readOnlyDatabase() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 20)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        let before = try RotationFixtures.logicalState(database.path)
        // Without write access to the file or the folder, SQLite can create neither a WAL nor a
        // shared-memory file, nor write the database.
        chmod(database.path, 0o444)
        chmod(folder.url.path, 0o555)
        defer {
            chmod(folder.url.path, 0o755)
            chmod(database.path, 0o644)
        }
        let user = try WriteRefusingUser(database: database.path, owning: [folder.url.path, database.path, oldFile, newFile])
        let result = try user.toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile))
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderr.contains(database.path), "\(result.stderr)")
        let leaks = RotationFixtures.leaks(
            in: result.stdout + result.stderr, keys: [("old key", old), ("new key", new)], plaintexts: database.plaintexts)
        #expect(leaks.isEmpty, "\(leaks)")
        #expect(try RotationFixtures.logicalState(database.path) == before)
    }

    // MARK: 3. idempotence and resumption

    /// Rotates, then puts back the pre-rotation triples of some rows (a copy restored in part):
    /// the result is a database half under the old key and half under the new one.
    static func halfRotated(_ folder: TemporaryFolder, old: MasterKey, new: MasterKey) throws -> (KeyedDatabase, restored: [String: Int]) {
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, aliases: 6, rows: 60, noKey: { $0 % 6 == 0 })
        let copy = folder.path("before-rotation.db")
        try database.connection(.readOnly).backup(to: copy)
        _ = try KeyRotator(
            database: try database.connection(), options: .init(oldKey: old, newKey: new, jobs: RotationFixtures.inProcessJobs)
        ).run()
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
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let (database, restored) = try Self.halfRotated(folder, old: old, new: new)

        let report = try KeyRotator(
            database: try database.connection(), options: .init(oldKey: old, newKey: new, jobs: RotationFixtures.inProcessJobs)
        )
        .run()
        for table in report.groups {
            #expect(table.rotated == restored[table.table], "\(table)")
            #expect(table.alreadyRotated == (database.keyed[table.table] ?? 0) - (restored[table.table] ?? 0), "\(table)")
        }
        #expect(report.verifiedAfterCommit == 12)

        let verify = try KeyVerifier(database: try database.connection(.readOnly), masterKey: new, jobs: RotationFixtures.inProcessJobs)
            .run()
        #expect(verify.ok)
        for table in verify.groups {
            #expect(table.underMasterKey == database.keyed[table.table] && table.underNeither == 0 && table.malformed == 0, "\(table)")
        }
        try RotationFixtures.expectPlaintexts(database, under: new)
    }

    @Test("a row under neither key fails the run with RotationError and changes nothing")
    func rowUnderNeitherKey() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate(), third = MasterKey.generate()
        let (database, _) = try Self.halfRotated(folder, old: old, new: new)
        let stranger = try SecretCipher.encrypt("sk-under-a-third-key", masterKey: third)
        try RotationFixtures.update(
            database.path, KeyedDatabase.configs, id: "40", "encrypted_api_key = ?2, salt = ?3, nonce = ?4",
            [.text(stranger.encryptedAPIKey), .text(stranger.salt), .text(stranger.nonce)])
        let before = try RotationFixtures.logicalState(database.path)
        let connection = try database.connection()
        let error = thrownError {
            _ = try KeyRotator(database: connection, options: .init(oldKey: old, newKey: new, jobs: RotationFixtures.inProcessJobs)).run()
        }
        let rotationError = try #require(error as? RotationError, "\(String(describing: error))")
        #expect(rotationError.table == KeyedDatabase.configs && rotationError.row == "row id 40")
        #expect(rotationError.exitStatus == .dataError)
        #expect(rotationError.description.contains(old.fingerprint) && rotationError.description.contains(new.fingerprint))
        #expect(!connection.isInTransaction)
        connection.close()
        #expect(try RotationFixtures.logicalState(database.path) == before)
    }
}
