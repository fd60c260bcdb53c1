import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("Live application writers")
struct LiveWriterTests {
    /// Each test (each case of one) gets its own: Swift Testing makes a new suite value for it.
    let folder: TemporaryFolder

    init() throws {
        folder = try TemporaryFolder()
    }

    @Test(
        "rows the application inserts, re-keys, deletes, clears or flips between the snapshot and the write phase are all handled",
        arguments: ScratchDatabase.engines)
    func rotationRedoesWritesMadeMeanwhile(_ engine: DatabaseEngine) throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedTestDatabase(engine, in: folder, master: old, rows: 30, noKey: { $0 % 10 == 0 })
        defer { database.drop() }
        let application = try database.application(master: old, rows: 30)
        var rotator = KeyRotator(database: try database.open(), options: .init(oldKey: old, newKey: new, jobs: 2))
        rotator.betweenPhases = { application.writeBetweenRotationPhases(newKey: new) }
        try application.expectRedone(try rotator.run(), newKey: new)
        let verifier = try KeyVerifier(database: try database.open(), masterKey: new, jobs: 2).run()
        #expect(verifier.ok)
        if let server = database.postgresConnection {
            // The stages went with the rotation, not only with its session.
            #expect(try server.queryInt64("SELECT count(*) FROM pg_class WHERE relname LIKE 'toolcfg_rotation_%'") == 0)
        }
    }

    @Test(
        """
        rows the application re-keys or deletes after the commit are counted by the read-back (its digest differs, \
        so it goes row by row), not failed
        """,
        arguments: ScratchDatabase.engines)
    func readBackCountsWritesAfterTheCommit(_ engine: DatabaseEngine) throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedTestDatabase(engine, in: folder, master: old, rows: 30, noKey: { $0 % 10 == 0 })
        defer { database.drop() }
        let application = try database.application(master: old, rows: 30)
        var rotator = KeyRotator(database: try database.open(), options: .init(oldKey: old, newKey: new, jobs: 2))
        rotator.afterCommit = {
            application.setKey(3, under: old, clear: false)
            application.delete(5)
        }
        let report = try rotator.run()
        #expect(report.total.rotated == 30 && report.verifiedAfterCommit == 28 && report.changedAfterCommit == 1, "\(report)")
        // Without writes after the commit the digests agree and every rotated row counts.
        application.setKey(3, under: new, clear: false)
        let quiet = try KeyRotator(database: try database.open(), options: .init(oldKey: new, newKey: MasterKey.generate(), jobs: 2)).run()
        #expect(quiet.verifiedAfterCommit == quiet.total.rotated && quiet.changedAfterCommit == 0 && quiet.total.rotated == 29, "\(quiet)")
    }

    @Test("a row written meanwhile under neither key fails the rotation, which then changes nothing")
    func rotationRefusesAForeignRowWrittenMeanwhile() throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate(), foreign = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 20)
        let application = try ApplicationWriter(path: database.path, master: old, rows: ApplicationWriter.model(of: database, rows: 20))
        let connection = try database.connection()
        var rotator = KeyRotator(database: connection, options: .init(oldKey: old, newKey: new, jobs: 2))
        rotator.betweenPhases = {
            application.flip(2)
            application.setKey(9, under: foreign)
        }
        let error = thrownError { _ = try rotator.run() }
        let rotation = try #require(error as? RotationError)
        #expect(rotation.table == KeyedDatabase.configs && rotation.row == "row id 9" && rotation.rolledBack)
        #expect(application.failures.isEmpty)
        // Every row but the foreign one still opens under the old key, and the flip stands.
        application.rows[9] = nil
        try application.connection.execute("DELETE FROM user_tool_configs WHERE id = 9")
        try application.expectTable(under: old)
    }

    /// Each engine without flags; PostgreSQL also with --make-room, which moves rows while the
    /// application writes.
    static let besideCases: [(DatabaseEngine, [String])] = ScratchDatabase.engines.flatMap { engine in
        engine == .postgresql ? [(engine, []), (engine, ["--make-room"])] : [(engine, [])]
    }

    @Test(
        """
        an application writing throughout a rotation (on PostgreSQL with and without --make-room) loses nothing and waits only for \
        the write phase or one move; after a rerun every key opens under the new key
        """,
        .timeLimit(.minutes(2)), arguments: besideCases)
    func rotationBesideAWritingApplication(_ engine: DatabaseEngine, _ extra: [String]) throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let rows = 1500
        let database = try KeyedTestDatabase(engine, in: folder, master: old, rows: rows, noKey: { $0 % 50 == 0 })
        defer { database.drop() }
        let application = try database.application(master: old, rows: rows)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")

        let rotation = try application.writing {
            try toolcfg(RotationFixtures.rotateArguments(database.argument, old: oldFile, new: newFile) + ["--jobs", "2", "--json"] + extra)
        }
        #expect(rotation.status == 0, "\(rotation.stderr)")
        #expect(application.failures.isEmpty, "\(application.failures.prefix(3))")
        #expect(application.writes > 20, "the application wrote only \(application.writes) times during the rotation")
        let report = try RotationFixtures.json(rotation.stdout)
        let changed = RotationFixtures.tables(report)[KeyedDatabase.configs]?["changed_during_rotation"] as? Int ?? -1
        print(
            "live rotation on \(engine) \(extra): \(application.writes) application writes, longest wait \(application.longestWait), "
                + "\(changed) rows redone in the write phase, write lock held \(report["write_lock_seconds"] ?? "?") s of "
                + "\(report["elapsed_seconds"] ?? "?") s"
        )

        // Rows the application wrote after the commit are still under the old key: a second run,
        // as after switching the application, re-encrypts them and keeps the rest.
        let rerun = try KeyRotator(database: try database.open(), options: .init(oldKey: old, newKey: new, jobs: 2)).run()
        #expect(rerun.groups.allSatisfy { $0.changedDuringRotation == 0 })
        try application.expectTable(under: new, sourceLocation: #_sourceLocation)
    }

    // MARK: import

    /// user_id, tool_id -> (plaintext, enabled) of every row, keys opened under `key`.
    static func pairs(_ path: String, under key: MasterKey) throws -> [String: ApplicationRow] {
        let reader = try SQLiteConnection(path: path, mode: .readOnly)
        defer { reader.close() }
        let statement = try reader.prepare(
            "SELECT user_id || '/' || tool_id, enabled, encrypted_api_key, salt, nonce FROM user_tool_configs")
        var rows: [String: ApplicationRow] = [:]
        while try statement.step() {
            let plaintext = ToolConfigTable.secret(statement, first: 2).map {
                (try? SecretCipher.decrypt($0, masterKey: key)) ?? "<does not open>"
            }
            rows[statement.text(0) ?? ""] = ApplicationRow(plaintext: plaintext, enabled: statement.int64(1))
        }
        return rows
    }

    /// Rows 1...12 (into an empty table) as the application lays them out: id -> (user-(id/3),
    /// tool-(id%3)), enabled id % 2, each keyed under `master` with the plaintext "sk-<id>".
    static func addTwelveRows(to database: any ToolConfigTestDatabase, master: MasterKey) throws {
        for id in 1...12 {
            try database.insert(
                "user-\(id / 3)", "tool-\(id % 3)", enabled: id % 2 == 1, key: "sk-\(id)", master: master, createdAt: 1_700_000_000,
                updatedAt: 1_700_000_100)
        }
    }

    static func twelveRows(_ engine: DatabaseEngine, _ folder: TemporaryFolder, master: MasterKey) throws -> any ToolConfigTestDatabase {
        let database = try ToolConfigTestDatabases.make(engine, folder)
        try addTwelveRows(to: database, master: master)
        return database
    }

    @Test(
        "pairs the application writes between the snapshot and the write phase are decided again, and the counts stay exact",
        arguments: ScratchDatabase.engines)
    func importDecidesAgainWhatChangedMeanwhile(_ engine: DatabaseEngine) throws {
        let master = try key(TestMasterKeys.valid)
        let database = try Self.twelveRows(engine, folder, master: master)
        defer { database.drop() }
        let application = try ApplicationSession(database.location, master: master)
        let input = try EngineSnapshots.write(
            """
            user_id,tool_id,enabled,api_key
            new-a,t,1,k-a-file
            user-1,tool-1,0,k-4-file
            user-1,tool-2,1,sk-5
            user-2,tool-0,1,k-6-file
            new-b,t,0,k-b-file
            new-c,t,1,k-c

            """, folder)
        var importer = Importer(database: database.database, options: .init(input: input, format: .csv, masterKey: master, jobs: 2))
        importer.betweenPhases = {
            try application.insert("new-a", "t", key: "k-a-app")  // the import's insert becomes an update
            try application.delete(4)  // its update becomes an insert
            try application.flip(5)  // unchanged becomes an update
            try application.insert("new-c", "t", key: "k-c")  // an insert becomes unchanged
            try application.flip(7)  // not in the file: stands
            try application.insert("app-user", "app-tool", key: "k-app")  // not in the file: stands
        }
        let report = try importer.run()
        #expect(report.records == 6)
        #expect((report.inserted, report.updated, report.unchanged, report.skipped) == (2, 3, 1, 0))
        #expect(report.changedDuringImport == 4)
        #expect(report.writeLockSeconds > 0 && report.writeLockSeconds <= report.elapsedSeconds)

        var expected: [String: ApplicationRow] = [:]
        for id in 1...12 where ![4, 5, 6].contains(id) {
            expected["user-\(id / 3)/tool-\(id % 3)"] = ApplicationRow(
                plaintext: "sk-\(id)", enabled: Int64((id % 2 == 1) != (id == 7) ? 1 : 0))
        }
        expected["user-1/tool-1"] = ApplicationRow(plaintext: "k-4-file", enabled: 0)
        expected["user-1/tool-2"] = ApplicationRow(plaintext: "sk-5", enabled: 1)
        expected["user-2/tool-0"] = ApplicationRow(plaintext: "k-6-file", enabled: 1)
        expected["new-a/t"] = ApplicationRow(plaintext: "k-a-file", enabled: 1)
        expected["new-b/t"] = ApplicationRow(plaintext: "k-b-file", enabled: 0)
        expected["new-c/t"] = ApplicationRow(plaintext: "k-c", enabled: 1)
        expected["app-user/app-tool"] = ApplicationRow(plaintext: "k-app", enabled: 1)
        #expect(try database.pairs(under: master) == expected)
        if let server = (database as? PostgresToolConfigDatabase)?.connection {
            // The staging table went with the import.
            #expect(try server.queryInt64("SELECT count(*) FROM pg_class WHERE relname = 'toolcfg_import'") == 0)
        }
    }

    @Test(
        "a row the application changes meanwhile so that it conflicts under --on-conflict fail fails the import, which writes nothing",
        arguments: ScratchDatabase.engines)
    func importFailPolicySeesChangesMadeMeanwhile(_ engine: DatabaseEngine) throws {
        let master = try key(TestMasterKeys.valid)
        let database = try Self.twelveRows(engine, folder, master: master)
        defer { database.drop() }
        let application = try ApplicationSession(database.location, master: master)
        let input = try EngineSnapshots.write("user_id,tool_id,enabled,api_key\nnew-a,t,1,k-a\nuser-1,tool-2,1,sk-5\n", folder)
        var importer = Importer(
            database: database.database, options: .init(input: input, format: .csv, onConflict: .fail, masterKey: master, jobs: 2))
        var afterApplication: [String] = []
        importer.betweenPhases = {
            try application.flip(5)
            afterApplication = try database.dump()
        }
        let error = try #require(thrownError { _ = try importer.run() } as? SnapshotError)
        #expect(error.location.line == 3 && error.location.field == "user_id")
        #expect(error.message.contains("since the import read the table"))
        // Nothing of the import, everything of the application.
        #expect(try database.dump() == afterApplication && afterApplication.count > 1)
    }

    @Test(
        "an application writing throughout an import of plaintext keys loses nothing, and every imported row is there",
        .timeLimit(.minutes(2)))
    func importBesideAWritingApplication() throws {
        let master = try key(TestMasterKeys.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: master, rows: 300)
        let application = try ApplicationWriter(path: database.path, master: master, rows: ApplicationWriter.model(of: database, rows: 300))
        let keyFile = try RotationFixtures.keyFile(master, folder, "master.key")
        let records = 1500
        var text = "user_id,tool_id,enabled,api_key\n"
        for index in 1...records { text += "import-\(index),tool,\(index % 2),sk-import-\(index)\n" }
        let input = try EngineSnapshots.write(text, folder)

        let result = try application.writing {
            try toolcfg(["import", "--db", database.path, "--in", input, "--master-key-file", keyFile, "--jobs", "2", "--json"])
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(application.failures.isEmpty, "\(application.failures.prefix(3))")
        #expect(application.writes > 20, "the application wrote only \(application.writes) times during the import")
        let report = try RotationFixtures.json(result.stdout)
        #expect(report["inserted"] as? Int == records && report["changed_during_import"] as? Int == 0)
        print(
            "live import: \(application.writes) application writes, longest wait \(application.longestWait), "
                + "write lock held \(report["write_lock_seconds"] ?? "?") s of \(report["elapsed_seconds"] ?? "?") s"
        )
        try application.expectTable(under: master, skipping: "import-")
        let stored = try Self.pairs(database.path, under: master).filter { $0.key.hasPrefix("import-") }
        #expect(stored.count == records)
        #expect(
            (1...records).allSatisfy { stored["import-\($0)/tool"] == ApplicationRow(plaintext: "sk-import-\($0)", enabled: Int64($0 % 2)) }
        )
    }

    @Test(
        "an import's staged rows hold triples that open to the file's keys, and never a plaintext key; the stage goes with the import",
        arguments: ScratchDatabase.engines)
    func stagedImportHoldsNoPlaintext(_ engine: DatabaseEngine) throws {
        let master = try key(TestMasterKeys.valid)
        let database = try ToolConfigTestDatabases.make(engine, folder)
        defer { database.drop() }
        let stage = engine == .sqlite ? "temp.toolcfg_import" : "pg_temp.toolcfg_import"
        let plaintexts = (1...40).map { "sk-never-staged-\($0)-\(Digest.hex(SecureRandom.bytes(8)))" }
        let input = try EngineSnapshots.write(
            "user_id,tool_id,api_key\n" + plaintexts.enumerated().map { "u\($0.offset),t,\($0.element)\n" }.joined(), folder)
        var importer = Importer(database: database.database, options: .init(input: input, format: .csv, masterKey: master, jobs: 2))
        var staged: [String] = []
        var opened: [String] = []
        importer.betweenPhases = {
            // The stage is a temporary table of the importer's own connection.
            staged = try database.textRows("SELECT * FROM \(stage) ORDER BY seq").map { $0.map { $0 ?? "NULL" }.joined(separator: "|") }
            opened = try database.textRows("SELECT new_key, new_salt, new_nonce FROM \(stage) ORDER BY seq").map { triple in
                let secret = StoredSecret(encryptedAPIKey: triple[0] ?? "", salt: triple[1] ?? "", nonce: triple[2] ?? "")
                return try SecretCipher.decrypt(secret, masterKey: master)
            }
        }
        let report = try importer.run()
        #expect(report.inserted == 40 && staged.count == 40 && opened == plaintexts)
        let text = staged.joined(separator: "\n")
        #expect(!plaintexts.contains { text.contains($0) }, "a plaintext key was staged")
        let stageLeft =
            engine == .sqlite
            ? "SELECT count(*) FROM temp.sqlite_master WHERE name = 'toolcfg_import'"
            : "SELECT count(*) FROM pg_class WHERE relname = 'toolcfg_import'"
        #expect(try database.textRows(stageLeft) == [["0"]], "the stage outlived the import")
    }

    @Test(
        "stored triples without a master key go straight in under the lock, or staged first with shortLock, with exact counts either way",
        arguments: [false, true])
    func shortLockStagesStoredTriples(shortLock: Bool) throws {
        let master = try key(TestMasterKeys.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: master, rows: 6)
        let application = try ApplicationWriter(path: database.path, master: master, rows: ApplicationWriter.model(of: database, rows: 6))
        let secrets = try (1...3).map { try SecretCipher.encrypt("sk-staged-\($0)", masterKey: master) }
        let input = try EngineSnapshots.write(
            "user_id,tool_id,enabled,encrypted_api_key,salt,nonce\n"
                + secrets.enumerated().map {
                    "new-\($0.offset),t,1,\($0.element.encryptedAPIKey),\($0.element.salt),\($0.element.nonce)\n"
                }.joined(), folder)
        var options = Importer.Options(input: input, format: .csv, shortLock: shortLock, jobs: 2)
        options.allowUncheckedKeys = true  // into a keyed database: the path under test, not the refusal
        var importer = Importer(database: try database.connection(), options: options)
        var between = 0
        importer.betweenPhases = {
            between += 1
            application.insert(pair: ("new-1", "t"), plaintext: "sk-staged-2")  // the file's second record, meanwhile
        }
        let report = try importer.run()
        #expect(between == (shortLock ? 1 : 0))
        #expect(report.records == 3 && report.uncheckedKeys == 3)
        #expect((report.inserted, report.updated) == (shortLock ? (2, 1) : (3, 0)))
        #expect(report.changedDuringImport == (shortLock ? 1 : 0))
        #expect(report.writeLockSeconds > 0 && report.writeLockSeconds <= report.elapsedSeconds)
    }
}
