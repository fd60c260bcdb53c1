import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension RotationTests {
    // MARK: 4. dry run, backup, same key

    @Test("--dry-run reports the counts and writes nothing")
    func dryRun() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 30, noKey: { $0 % 3 == 0 })
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        let before = try RotationFixtures.logicalState(database.path)
        let bytesBefore = try Data(contentsOf: URL(fileURLWithPath: database.path))

        let result = try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--dry-run", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try RotationFixtures.json(result.stdout)
        #expect(report["dry_run"] as? Bool == true)
        #expect(report["verified_after_commit"] as? Int == 0)
        let tables = RotationFixtures.tables(report)
        #expect(tables[KeyedDatabase.aliases]?["rotated"] as? Int == 3)
        #expect(tables[KeyedDatabase.configs]?["rotated"] as? Int == 20)
        #expect(tables[KeyedDatabase.configs]?["empty"] as? Int == 10)
        #expect(tables[KeyedDatabase.configs]?["rows"] as? Int == 30)

        let human = try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--dry-run"])
        #expect(human.status == 0)
        #expect(human.stderr.contains("user_tool_configs (encrypted_api_key): 30 rows, 20 to rotate"), "\(human.stderr)")

        #expect(try RotationFixtures.logicalState(database.path) == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: database.path)) == bytesBefore, "the database file's bytes changed")
        try RotationFixtures.expectPlaintexts(database, under: old)
    }

    @Test("--backup writes a 0600 exact copy of the state before rotating, whose keys open under the old key")
    func backup() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 30, noKey: { $0 % 7 == 0 })
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        let before = try RotationFixtures.logicalState(database.path)
        let backup = folder.path("backup.db")

        let result = try toolcfg(
            RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--backup", backup, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try RotationFixtures.json(result.stdout)
        #expect(report["backup_file"] as? String == backup)
        #expect(report["verified_after_commit"] as? Int == database.keyedTotal)
        #expect((try FileManager.default.attributesOfItem(atPath: backup)[.posixPermissions] as? Int) == 0o600)
        #expect(try RotationFixtures.logicalState(backup) == before, "the backup is not the pre-rotation database")
        let underOld = try KeyVerifier(
            database: try SQLiteConnection(path: backup, mode: .readOnly), masterKey: old, newKey: new, jobs: RotationFixtures.inProcessJobs
        ).run()
        #expect(underOld.ok)
        for table in underOld.groups {
            #expect(table.underMasterKey == database.keyed[table.table] && table.underNewMasterKey == 0, "\(table)")
        }
        try RotationFixtures.expectPlaintexts(database, under: new)
    }

    @Test("--backup refuses an existing path: non-zero exit, database and file unchanged")
    func backupExists() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        let existing = folder.path("existing.db")
        try Data("precious\n".utf8).write(to: URL(fileURLWithPath: existing))
        let before = try RotationFixtures.logicalState(database.path)

        let result = try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--backup", existing])
        #expect(result.status != 0)
        #expect(result.stderr.contains(existing), "\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: existing)) == Data("precious\n".utf8))
        #expect(try RotationFixtures.logicalState(database.path) == before)
        try RotationFixtures.expectPlaintexts(database, under: old)
    }

    @Test("the same key as old and new is refused with 64 and changes nothing")
    func sameKey() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), sameFile = try RotationFixtures.keyFile(old, folder, "same.key")
        let before = try RotationFixtures.logicalState(database.path)
        let result = try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: sameFile))
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(old.fingerprint))
        #expect(RotationFixtures.leaks(in: result.stderr, keys: [("key", old)], plaintexts: database.plaintexts).isEmpty)
        #expect(try RotationFixtures.logicalState(database.path) == before)
    }

    @Test("every table with the three columns is rotated, whatever its name, and errors name a table without id by rowid")
    func discoveryByColumns() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        // The application's database before 0007: only api_model_aliases holds keys.
        let appOnly = folder.path("app-only.db")
        try makeApplicationDatabase(at: appOnly)
        let appReport = try KeyRotator(
            database: try SQLiteConnection(path: appOnly), options: .init(oldKey: old, newKey: new, jobs: RotationFixtures.inProcessJobs)
        ).run()
        #expect(appReport.groups.map(\.table) == [KeyedDatabase.aliases])
        #expect(appReport.groups.first?.rotated == 3 && appReport.verifiedAfterCommit == 3)

        // A third table with an awkward name and no id column.
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 5)
        let odd = "legacy \"odd\" keys"
        let plaintexts = (1...4).map { "sk-legacy-\($0)-\(Digest.hex(SecureRandom.bytes(8)))" }
        do {
            let connection = try database.connection()
            try connection.execute(
                "CREATE TABLE \(quotedIdentifier(odd)) (name TEXT, nonce TEXT, salt TEXT, encrypted_api_key TEXT)")
            let insert = try connection.prepare("INSERT INTO \(quotedIdentifier(odd)) VALUES (?1, ?2, ?3, ?4)")
            for (index, plaintext) in plaintexts.enumerated() {
                let secret = try SecretCipher.encrypt(plaintext, masterKey: old)
                try insert.run([.text("k\(index)"), .text(secret.nonce), .text(secret.salt), .text(secret.encryptedAPIKey)])
            }
            connection.close()
        }
        // First a corrupted third row: the error names the table and the rowid.
        try RotationFixtures.update(database.path, odd, id: "k2", by: "name", "salt = ?2", [.text(Base64.encode(SecureRandom.bytes(32)))])
        let before = try RotationFixtures.logicalState(database.path)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        let refused = try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile))
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("\(odd) rowid 3"), "\(refused.stderr)")
        #expect(try RotationFixtures.logicalState(database.path) == before)

        try RotationFixtures.update(database.path, odd, id: "k2", by: "name", "encrypted_api_key = NULL, salt = NULL, nonce = NULL")
        let result = try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let tables = RotationFixtures.tables(try RotationFixtures.json(result.stdout))
        #expect(Set(tables.keys) == [KeyedDatabase.aliases, KeyedDatabase.configs, odd])
        #expect(tables[odd]?["rotated"] as? Int == 3 && tables[odd]?["empty"] as? Int == 1)
        let connection = try database.connection(.readOnly)
        let statement = try connection.prepare(
            "SELECT name, encrypted_api_key, salt, nonce FROM \(quotedIdentifier(odd)) ORDER BY rowid")
        var opened: [String?] = []
        while try statement.step() {
            let secret =
                statement.isNull(1)
                ? nil : StoredSecret(encryptedAPIKey: statement.text(1)!, salt: statement.text(2)!, nonce: statement.text(3)!)
            opened.append(try secret.map { try SecretCipher.decrypt($0, masterKey: new) })
        }
        #expect(opened == [plaintexts[0], plaintexts[1], nil, plaintexts[3]])
        connection.close()
        try RotationFixtures.expectPlaintexts(database, under: new)
    }

    @Test("a database held by another writer past --busy-timeout exits 75 and is unchanged")
    func busy() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        let before = try RotationFixtures.logicalState(database.path)
        let holder = try database.connection()
        try holder.execute("BEGIN IMMEDIATE")
        for extra in [[], ["--backup", folder.path("backup.db")]] {
            let result = try toolcfg(
                RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--busy-timeout", "0.2"] + extra)
            #expect(result.status == 75, "\(extra): \(result.stderr)")
        }
        try holder.execute("ROLLBACK")
        holder.close()
        #expect(try RotationFixtures.logicalState(database.path) == before)
        try RotationFixtures.expectPlaintexts(database, under: old)
    }

    @Test("rotate waits up to --busy-timeout for another writer's lock, with and without --backup")
    func waitsForTheLock() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
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
            results.append(
                try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldKey, new: newKey) + ["--busy-timeout", "10"] + extra))
            while !releaser.isFinished { usleep(1000) }
            holder.close()
        }
        #expect(results[0].status == 0, "without --backup: \(results[0].stderr)")
        #expect(results[1].status == 0, "with --backup: \(results[1].stderr)")
    }

    @Test("a failed rotate --backup leaves no backup behind, so the same command can be run again")
    func failedRotationLeavesNoBackup() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        try RotationFixtures.update(database.path, KeyedDatabase.configs, id: "5", "nonce = NULL")
        let before = try RotationFixtures.logicalState(database.path)
        let backup = folder.path("backup.db")
        let first = try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--backup", backup])
        #expect(first.status == 65, "\(first.stderr)")
        #expect(try RotationFixtures.logicalState(database.path) == before)
        #expect(!FileManager.default.fileExists(atPath: backup), "a failed rotation left its backup")
        // Once the row is repaired, the same command goes through.
        try RotationFixtures.update(database.path, KeyedDatabase.configs, id: "5", "encrypted_api_key = NULL, salt = NULL, nonce = NULL")
        let second = try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--backup", backup])
        #expect(second.status == 0, "\(second.stderr)")
    }

    @Test("verify-keys and rotate --dry-run on many rows without a key do not crash (--jobs 8): ParallelMap's result slots once raced")
    func parallelMapRace() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
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
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        var results: [(String, ProcessResult)] = []
        for run in 1...4 {
            results.append(
                ("verify-keys run \(run)", try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", oldFile, "--jobs", "8"]))
            )
        }
        results.append(
            (
                "rotate --dry-run",
                try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--dry-run", "--jobs", "8"])
            ))
        let failed = results.filter { $0.1.status != 0 }.map { "\($0.0) exited \($0.1.status)" }
        #expect(failed.isEmpty, "\(failed)")
        try RotationFixtures.expectPlaintexts(database, under: old)
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
}
