import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("Rotation on PostgreSQL", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresRotationTests {
    static func rotate(_ database: PostgresKeyedDatabase, _ folder: TemporaryFolder, old: MasterKey, new: MasterKey, _ extra: [String] = [])
        throws -> ProcessResult
    {
        let oldFile = try RotationFixtures.keyFile(old, folder, "old-\(old.fingerprint).key")
        let newFile = try RotationFixtures.keyFile(new, folder, "new-\(new.fingerprint).key")
        return try toolcfg(
            RotationFixtures.rotateArguments(database.url.text, old: oldFile, new: newFile) + ["--jobs", "2", "--json"] + extra)
    }

    @Test("--backup writes a 0600 script of both tables as the rotation read them; psql restores it exactly; an existing path is refused")
    func backupRestores() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, aliases: 4, rows: 30, noKey: { $0 % 7 == 0 })
        defer { database.drop() }
        try database.connection.execute("UPDATE user_tool_configs SET user_id = E'tab\\there \\\\ \"é\" 🔑\\nnewline' WHERE id = 3")
        let before = try database.dump()
        let backup = folder.path("before.sql")
        let run = try Self.rotate(database, folder, old: old, new: new, ["--backup", backup])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try RotationFixtures.json(run.stdout)["backup_file"] as? String == backup)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: backup)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        #expect(try database.dump() != before)

        let existing = try Self.rotate(database, folder, old: new, new: old, ["--backup", backup])
        #expect(existing.status == 74, "\(existing.stderr)")
        try database.expectPlaintexts(under: new)

        // The application wrote since: the restore puts back the rows as they were read.
        try database.connection.execute(
            "INSERT INTO user_tool_configs (user_id, tool_id, enabled, created_at, updated_at) VALUES ('late', 't', true, 1, 1)")
        let restore = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["psql", "-X", "-q", "-d", database.url.text, "-f", backup])
        #expect(restore.status == 0 && restore.stderr.isEmpty, "\(restore.stderr)")
        let restored = try database.dump()
        #expect(restored.dropLast() == before.dropLast(), "the restored rows differ")
        try database.expectPlaintexts(under: old)

        // Into a new database (the application's schema, its sequence at the start): the ids
        // come back and the sequence moves past them.
        let elsewhere = try PostgresToolConfigDatabase(fixture: "app-after-0007.sql")
        defer { elsewhere.drop() }
        try elsewhere.connection.execute("ALTER SEQUENCE user_tool_configs_id_seq RESTART WITH 1")
        let intoNew = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["psql", "-X", "-q", "-d", elsewhere.url.text, "-f", backup])
        #expect(intoNew.status == 0 && intoNew.stderr.isEmpty, "\(intoNew.stderr)")
        #expect(try elsewhere.connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 30)
        #expect(try elsewhere.connection.queryInt64("SELECT last_value FROM user_tool_configs_id_seq") == 30)
        try elsewhere.insert("after-restore", "t", enabled: true, secret: nil)
    }

    @Test(
        """
        a transaction holding a row past --busy-timeout fails the rotation with 75 and changes nothing; \
        one that ends in time is waited for
        """
    )
    func waitsForTheApplicationsLock() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: 20)
        defer { database.drop() }
        let holder = try database.base.scratch.connect()
        try holder.execute("BEGIN; UPDATE user_tool_configs SET enabled = NOT enabled WHERE id = 5")
        let before = try database.dump()
        let refused = try Self.rotate(database, folder, old: old, new: new, ["--busy-timeout", "1"])
        #expect(refused.status == 75, "\(refused.stderr)")
        #expect(refused.stderr.contains("waiting for the write lock"), "\(refused.stderr)")
        #expect(try database.dump() == before)

        nonisolated(unsafe) let application = holder  // used by that one thread only from here on
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(500)) { try? application.execute("COMMIT") }
        let waited = try Self.rotate(database, folder, old: old, new: new, ["--busy-timeout", "10"])
        #expect(waited.status == 0, "\(waited.stderr)")
        try database.expectPlaintexts(under: new)
        #expect(
            try database.connection.queryText("SELECT enabled::text FROM user_tool_configs WHERE id = 5") == "false",
            "the application's flip was lost")
    }

    @Test("a big rotation of a table packed full passes on how to make the write phase shorter; with room on its pages, it does not")
    func adviceOnPackedTables() throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: 20)
        defer { database.drop() }
        func rotate(_ from: MasterKey, _ to: MasterKey, adviceAfter rows: Int) throws -> String {
            var rotator = KeyRotator(database: try database.base.scratch.connect(), options: .init(oldKey: from, newKey: to, jobs: 2))
            rotator.adviceAfterRows = rows
            return try rotator.run().nextStep
        }
        let packed = try rotate(old, new, adviceAfter: 20)
        #expect(packed.contains("user_tool_configs is packed full (fillfactor 100)") && packed.contains("--make-room"), "\(packed)")
        #expect(!packed.contains("api_model_aliases is packed"), "3 rows are below the threshold: \(packed)")
        #expect(!(try rotate(new, old, adviceAfter: 21)).contains("fillfactor"))
        try database.connection.execute("ALTER TABLE user_tool_configs SET (fillfactor = 50)")
        #expect(!(try rotate(old, new, adviceAfter: 1)).contains("user_tool_configs is packed"))
        try database.expectPlaintexts(under: new)
    }

    @Test(
        """
        rows keyed by awkward text (quotes, backslashes, commas, braces, NULL-like, multi-byte) are staged, \
        written and read back by their keys
        """
    )
    func awkwardTextKeys() throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, aliases: 8, rows: 4)
        defer { database.drop() }
        let ids = ["a\"b", "back\\slash", "com,ma", "{brace}", "NULL", "\\N", "tab\tnew\nline", "é 中文 🔑"]
        for (index, id) in ids.enumerated() {
            try database.connection.query("UPDATE api_model_aliases SET id = $1 WHERE id = $2", [.text(id), .text("alias-\(index + 1)")])
        }
        let report = try KeyRotator(database: try database.base.scratch.connect(), options: .init(oldKey: old, newKey: new, jobs: 2)).run()
        #expect(report.verifiedAfterCommit == 12 && report.groups.allSatisfy { $0.rotated == $0.rows })
        let counts = try database.counts(old: old, new: new)
        #expect(counts[KeyedDatabase.aliases]?.new == 8 && counts[KeyedDatabase.configs]?.new == 4)
        let stored = try database.connection.query("SELECT id FROM api_model_aliases ORDER BY id")
        #expect(Set((0..<stored.count).compactMap { stored.text($0, 0) }) == Set(ids))
    }

    @Test(
        """
        an application transaction holding a row FOR UPDATE when the write phase starts finishes first, then the rotation: no deadlock, \
        its write stands
        """
    )
    func forUpdateWriter() throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: 20)
        defer { database.drop() }
        let application = try database.base.scratch.connect()
        nonisolated(unsafe) let writer = application  // the finishing thread's only, once started
        var rotator = KeyRotator(
            database: try database.base.scratch.connect(.init(lockTimeout: .seconds(10))), options: .init(oldKey: old, newKey: new, jobs: 2)
        )
        let finished = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: (any Error)?  // written by that thread before it signals, read after
        rotator.betweenPhases = {
            try application.execute("BEGIN; SELECT * FROM user_tool_configs WHERE id = 5 FOR UPDATE")
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(700)) {
                do { try writer.execute("UPDATE user_tool_configs SET enabled = NOT enabled WHERE id = 5; COMMIT") } catch {
                    failure = error
                }
                finished.signal()
            }
        }
        let report = try rotator.run()
        finished.wait()
        #expect(failure == nil, "the application's write failed: \(String(describing: failure))")
        #expect(report.groups.first { $0.table == KeyedDatabase.configs }?.rotated == 20)
        #expect(try database.connection.queryText("SELECT enabled::text FROM user_tool_configs WHERE id = 5") == "false")
        try database.expectPlaintexts(under: new)
    }

    @Test("while a long application transaction keeps the write phase waiting, the application's other writes are not held up behind it")
    func waitingDoesNotStallOtherWrites() throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: 20)
        defer { database.drop() }
        let holder = try database.base.scratch.connect()
        try holder.execute("BEGIN; UPDATE user_tool_configs SET enabled = NOT enabled WHERE id = 5")
        let url = database.url
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<KeyRotator.Report, any Error>?  // set by the thread before it signals
        Thread {
            outcome = Result {
                try KeyRotator(database: try PostgresConnection(url: url), options: .init(oldKey: old, newKey: new, jobs: 2)).run()
            }
            done.signal()
        }.start()
        // The rotation is soon waiting for its lock; the application goes on writing other rows.
        let application = try database.base.scratch.connect()
        let clock = ContinuousClock()
        var longest = Duration.zero
        for _ in 0..<15 {
            Thread.sleep(forTimeInterval: 0.1)
            let started = clock.now
            try application.execute("UPDATE user_tool_configs SET enabled = NOT enabled WHERE id = 7")
            longest = max(longest, clock.now - started)
        }
        #expect(done.wait(timeout: .now()) == .timedOut, "the rotation did not wait for the open transaction")
        try holder.execute("COMMIT")
        done.wait()
        let report = try #require(try outcome?.get())
        #expect(longest < .milliseconds(600), "an application write waited \(longest) behind the rotation's lock request")
        #expect(report.groups.first { $0.table == KeyedDatabase.configs }?.rotated == 20)
        #expect(
            try database.connection.queryText("SELECT string_agg(enabled::text, ',' ORDER BY id) FROM user_tool_configs WHERE id IN (5, 7)")
                == "false,false")
        try database.expectPlaintexts(under: new)
    }

    @Test("a table with keys added between the snapshot and the write phase stops the rotation (75) before it writes anything")
    func tablesChangedMeanwhile() throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: 10)
        defer { database.drop() }
        let before = try database.dump()
        var rotator = KeyRotator(database: try database.base.scratch.connect(), options: .init(oldKey: old, newKey: new, jobs: 2))
        rotator.betweenPhases = {
            try database.connection.execute(
                "CREATE TABLE later_keys (id bigint PRIMARY KEY, encrypted_api_key text, salt text, nonce text)")
        }
        let error = try #require(thrownError { _ = try rotator.run() } as? TablesChangedDuringRotation)
        #expect(
            error.exitStatus == .temporaryFailure && error.now.contains { $0.hasPrefix("later_keys ") }
                && !error.before.contains { $0.hasPrefix("later_keys ") })
        #expect(try database.dump() == before)
    }

    @Test("a table keyed by char(n), over several pages, with rows changed between the phases, rotates by its keys")
    func charKeyedTableOverPages() throws {
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: 3)
        defer { database.drop() }
        let secrets = try KeyedDatabase.swiftEncryptor(old)((0..<700).map { "sk-char-\($0)" })
        try database.connection.execute("CREATE TABLE char_keyed (id char(12) PRIMARY KEY, encrypted_api_key text, salt text, nonce text)")
        try database.connection.copyIn("COPY char_keyed FROM STDIN") { copy in
            for (index, secret) in secrets.enumerated() {
                try copy.appendRow([String(format: "k%05d", index), secret.encryptedAPIKey, secret.salt, secret.nonce])
            }
        }
        var rotator = KeyRotator(database: try database.base.scratch.connect(), options: .init(oldKey: old, newKey: new, jobs: 2))
        rotator.betweenPhases = {
            let rekeyed = try SecretCipher.encrypt("sk-char-rekeyed", masterKey: old)
            try database.connection.query(
                "UPDATE char_keyed SET encrypted_api_key = $1, salt = $2, nonce = $3 WHERE id = 'k00600'",
                [.text(rekeyed.encryptedAPIKey), .text(rekeyed.salt), .text(rekeyed.nonce)])
            try database.connection.execute("DELETE FROM char_keyed WHERE id = 'k00001'")
        }
        let report = try rotator.run()
        let table = try #require(report.groups.first { $0.table == "char_keyed" })
        #expect(table.rows == 700 && table.rotated == 699 && table.changedDuringRotation == 1 && table.removedDuringRotation == 1)
        #expect(report.verifiedAfterCommit == 699 + 3 + 3)
        let rows = try database.connection.query("SELECT id, encrypted_api_key, salt, nonce FROM char_keyed ORDER BY id")
        var opened: [String] = []
        for row in 0..<rows.count {
            let secret = try #require(ToolConfigTable.secret(rows, row, first: 1))
            opened.append((try? SecretCipher.decrypt(secret, masterKey: new)) ?? "<does not open>")
        }
        #expect(opened == (0..<700).filter { $0 != 1 }.map { $0 == 600 ? "sk-char-rekeyed" : "sk-char-\($0)" })
    }

    @Test("a table with the triple but no one-column primary key is refused before anything is read or written")
    func refusesAnUnaddressableTable() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: 5)
        defer { database.drop() }
        try database.connection.execute("CREATE TABLE keyed_without_id (note text, encrypted_api_key text, salt text, nonce text)")
        let before = try database.dump()
        let result = try Self.rotate(database, folder, old: old, new: new)
        #expect(result.status == 65 && result.stderr.contains("keyed_without_id has no one-column primary key"), "\(result.stderr)")
        #expect(try database.dump() == before)
    }
}
