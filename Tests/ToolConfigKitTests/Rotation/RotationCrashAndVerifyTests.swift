import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension RotationTests {
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

    @Test(
        "SIGKILL at a random moment of rotate leaves every row under one key, the same for all", .timeLimit(.minutes(2)),
        arguments: ScratchDatabase.engines)
    func crashSafety(_ engine: DatabaseEngine) throws {
        let folder = try TemporaryFolder()
        var old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let rows = try Self.crashRows()
        let database = try KeyedTestDatabase(engine, in: folder, master: old, rows: rows, noKey: { $0 % 100 == 0 })
        defer { database.drop() }
        var oldFile = try RotationFixtures.keyFile(old, folder, "a.key"), newFile = try RotationFixtures.keyFile(new, folder, "b.key")
        var environment = ProcessInfo.processInfo.environment
        for name in ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE"] { environment[name] = nil }

        // Two uninterrupted runs (there and back) time the whole command in this build on this
        // machine now: start-up, rotation, commit, read-back, exit. Odd runs are killed anywhere
        // in it; even runs in its last sixth and a little beyond, where the commit is (about 5 %
        // before the end on SQLite), so some land after it and some finish. A fixed window missed
        // the commit in every run where the rotation took longer than it.
        let clock = ContinuousClock()
        let whole = try [(oldFile, newFile), (newFile, oldFile)].map { from, to in
            let started = clock.now
            let run = try toolcfg(RotationFixtures.rotateArguments(database.argument, old: from, new: to) + ["--jobs", "2"])
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
            process.arguments = RotationFixtures.rotateArguments(database.argument, old: oldFile, new: newFile) + ["--jobs", "2"]
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

            // SQLite: opening recovers the WAL, as the next run would; PostgreSQL's server has
            // ended the killed session's transaction: committed whole, or not at all.
            let report = try database.verify(old: old, new: new)
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
            "crash safety on \(engine): \(rows) rows, an uninterrupted run took \(whole); 10 iterations: \(killedRunning) "
                + "killed while running (\(killedAfterCommit) of them after the commit), \(finished) finished; "
                + "\(log.joined(separator: "; "))"
        )
        #expect(killedRunning >= 3, "only \(killedRunning) of 10 kills landed while rotate ran: \(log)")
        try database.expectPlaintexts(under: old)
    }

    // MARK: 6. verify-keys

    @Test("verify-keys prints ok and exits 0 on a healthy database")
    func verifyHealthy() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 20, noKey: { $0 % 4 == 0 })
        let keyFile = try RotationFixtures.keyFile(old, folder, "old.key")
        let result = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").last == "ok", "\(result.stderr)")
        #expect(result.stderr.contains("user_tool_configs (encrypted_api_key): 20 rows, 15 under \(old.fingerprint)"), "\(result.stderr)")
        let json = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile, "--json"])
        #expect(json.status == 0)
        let report = try RotationFixtures.json(json.stdout)
        #expect(report["ok"] as? Bool == true && report["reused_salts"] as? Int == 0 && report["reused_nonces"] as? Int == 0)
        #expect(RotationFixtures.tables(report)[KeyedDatabase.configs]?["empty"] as? Int == 5)
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
        try RotationFixtures.update(
            database.path, table, id: id, "encrypted_api_key = ?2, salt = ?3, nonce = ?4",
            [.text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)])
    }

    @Test(
        "verify-keys reports a salt or nonce used by four rows (all still decrypting): three repeats, each counted and named, exit 65",
        arguments: Reuse.allCases)
    func verifyReuse(_ reuse: Reuse) throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 30, noKey: { $0 % 10 == 0 })
        let source = try #require(
            try RotationFixtures.storedTriples(try database.connection(.readOnly), KeyedDatabase.configs).first { $0.id == "7" }?.secret)
        // Three repeats: the first is confirmed against the tables, the others are known repeats.
        for id in ["23", "24", "25"] {
            try Self.reencrypt(
                database, KeyedDatabase.configs, id: id, master: old,
                salt: reuse == .salt ? source.salt : nil, nonce: reuse == .nonce ? source.nonce : nil)
        }

        let report = try KeyVerifier(database: try database.connection(.readOnly), masterKey: old, jobs: RotationFixtures.inProcessJobs)
            .run()
        #expect(!report.ok)
        #expect(report.reusedSalts == (reuse == .salt ? 3 : 0) && report.reusedNonces == (reuse == .nonce ? 3 : 0), "\(report)")
        for table in report.groups { #expect(table.underMasterKey == database.keyed[table.table] && table.malformed == 0, "\(table)") }
        #expect(
            report.problems.filter { $0.table == KeyedDatabase.configs && $0.problem.contains(reuse.rawValue) }.map(\.rowID) == [
                23, 24, 25
            ],
            "\(report.problems)")

        let keyFile = try RotationFixtures.keyFile(old, folder, "old.key")
        let result = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile, "--json"])
        #expect(result.status == 65, "\(result.stderr)")
        let json = try RotationFixtures.json(result.stdout)
        #expect(json["ok"] as? Bool == false)
        #expect(json[reuse == .salt ? "reused_salts" : "reused_nonces"] as? Int == 3)
        #expect(!result.stdout.contains(reuse == .salt ? source.salt : source.nonce), "the report repeats the reused value")
    }

    @Test("verify-keys reports a salt shared by rows of different tables")
    func verifyReuseAcrossTables() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 10)
        let source = try #require(
            try RotationFixtures.storedTriples(try database.connection(.readOnly), KeyedDatabase.aliases).first?.secret)
        try Self.reencrypt(database, KeyedDatabase.configs, id: "4", master: old, salt: source.salt)
        let report = try KeyVerifier(database: try database.connection(.readOnly), masterKey: old, jobs: RotationFixtures.inProcessJobs)
            .run()
        for table in report.groups { #expect(table.underMasterKey == database.keyed[table.table], "\(table)") }
        let keyFile = try RotationFixtures.keyFile(old, folder, "old.key")
        let result = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile])
        #expect(report.reusedSalts == 1, "\(report)")
        #expect(!report.ok)
        #expect(result.status == 65, "\(result.stderr)")
    }

    @Test("verify-keys counts a 31-byte salt as malformed and exits 65")
    func verifyMalformed() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid)
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 20)
        try RotationFixtures.update(
            database.path, KeyedDatabase.configs, id: "12", "salt = ?2", [.text(Base64.encode(SecureRandom.bytes(31)))])
        let report = try KeyVerifier(database: try database.connection(.readOnly), masterKey: old, jobs: RotationFixtures.inProcessJobs)
            .run()
        let configs = try #require(report.groups.first { $0.table == KeyedDatabase.configs })
        #expect(configs.malformed == 1 && configs.underMasterKey == 19 && configs.underNeither == 0, "\(configs)")
        #expect(!report.ok)
        #expect(report.problems.map { "\($0.table) \($0.rowID)" } == ["user_tool_configs 12"])
        #expect(report.problems.first?.problem.contains("salt") == true)

        let keyFile = try RotationFixtures.keyFile(old, folder, "old.key")
        let result = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", keyFile])
        #expect(result.status == 65)
        #expect(result.stderr.contains("user_tool_configs row id 12"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").last?.hasPrefix("toolcfg: error: keys NOT OK") == true, "\(result.stderr)")
    }

    @Test("verify-keys with both keys counts a half-rotated database right")
    func verifyHalfRotated() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let (database, restored) = try Self.halfRotated(folder, old: old, new: new)
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")

        // Master key = new, new key = old: most rows under the master key, the restored ones under the other.
        let report = try KeyVerifier(
            database: try database.connection(.readOnly), masterKey: new, newKey: old, jobs: RotationFixtures.inProcessJobs
        )
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
        let json = try RotationFixtures.json(result.stdout)
        #expect(
            json["master_key_fingerprint"] as? String == old.fingerprint && json["new_master_key_fingerprint"] as? String == new.fingerprint
        )
        let tables = RotationFixtures.tables(json)
        #expect(tables[KeyedDatabase.aliases]?["under_master_key"] as? Int == 2)
        #expect(tables[KeyedDatabase.aliases]?["under_new_master_key"] as? Int == 4)
        #expect(tables[KeyedDatabase.configs]?["under_master_key"] as? Int == 10)
        #expect(tables[KeyedDatabase.configs]?["under_new_master_key"] as? Int == 40)
        #expect(tables[KeyedDatabase.configs]?["empty"] as? Int == 10)

        // Under the old key alone, the rotated rows are under no given key.
        let oldOnly = try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", oldFile, "--json"])
        #expect(oldOnly.status == 65)
        #expect(RotationFixtures.tables(try RotationFixtures.json(oldOnly.stdout))[KeyedDatabase.configs]?["under_neither"] as? Int == 40)
    }

    // MARK: 7. secret hygiene

    @Test("rotate and verify-keys --json reports carry no plaintext, master key or row key")
    func reportHygiene() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: 20, noKey: { $0 % 5 == 0 })
        let third = MasterKey.generate()
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        let thirdFile = try RotationFixtures.keyFile(third, folder, "third.key")
        let keys = [("old master key", old), ("new master key", new), ("third key", third)]
        func rowKeys(_ master: MasterKey) throws -> [(String, SecureBytes)] {
            let connection = try database.connection(.readOnly)
            defer { connection.close() }
            return try [KeyedDatabase.aliases, KeyedDatabase.configs].flatMap { table in
                try RotationFixtures.storedTriples(connection, table).compactMap { row in
                    try row.secret.map { ("\(table)/\(row.id)", SecretCipher.rowKey(masterKey: master, salt: try $0.decoded().salt)) }
                }
            }
        }
        var outputs: [(String, ProcessResult)] = []
        let rowKeysBefore = try rowKeys(old)
        outputs.append(
            (
                "rotate --dry-run",
                try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--dry-run", "--json"])
            ))
        outputs.append(
            (
                "verify-keys before",
                try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", oldFile, "--new-master-key-file", newFile, "--json"]
                )
            ))
        outputs.append(("rotate", try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--json"])))
        let rowKeysAfter = try rowKeys(new)
        outputs.append(
            ("rotate again", try toolcfg(RotationFixtures.rotateArguments(database.path, old: oldFile, new: newFile) + ["--json"])))
        outputs.append(
            (
                "verify-keys after",
                try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", newFile, "--new-master-key-file", oldFile, "--json"]
                )
            ))
        outputs.append(
            ("verify-keys wrong key", try toolcfg(["verify-keys", "--db", database.path, "--master-key-file", oldFile, "--json"])))
        outputs.append(
            ("rotate wrong key", try toolcfg(RotationFixtures.rotateArguments(database.path, old: thirdFile, new: oldFile) + ["--json"])))
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
            let leaks = RotationFixtures.leaks(
                in: result.stdout + "\n" + result.stderr, keys: keys, plaintexts: database.plaintexts,
                rowKeys: rowKeysBefore + rowKeysAfter)
            #expect(leaks.isEmpty, "\(name) shows \(leaks)")
            if result.status == 0 { #expect(!result.stdout.isEmpty && (try? RotationFixtures.json(result.stdout)) != nil, "\(name)") }
        }
        // The last rotation went back to the old key: everything opens under it again.
        try RotationFixtures.expectPlaintexts(database, under: old)
    }
}
