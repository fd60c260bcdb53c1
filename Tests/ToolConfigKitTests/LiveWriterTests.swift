import Foundation
import Testing
@testable import ToolConfigKit

/// What the application believes a user_tool_configs row holds.
struct ApplicationRow: Equatable {
    var plaintext: String?
    var enabled: Int64
}

/// Stands in for the live application: its own connection with sqlx-sqlite's 5 s busy timeout,
/// short write transactions, keys encrypted under the master key it runs on. It keeps a model
/// of what it wrote, so a test can prove that no write was lost.
final class ApplicationWriter: @unchecked Sendable {
    let connection: SQLiteConnection
    let master: MasterKey
    /// Rows of user_tool_configs by id, as the application wrote them.
    var rows: [Int64: ApplicationRow]
    var writes = 0
    var failures: [String] = []
    var longestWait: Duration = .zero
    private var next = 0

    init(path: String, master: MasterKey, rows: [Int64: ApplicationRow]) throws {
        connection = try SQLiteConnection(path: path, options: .init(busyTimeout: .seconds(5)))
        self.master = master
        self.rows = rows
    }

    /// The model of a RotationDatabase's user_tool_configs as built (enabled = id % 2).
    static func model(of database: RotationDatabase, rows: Int) -> [Int64: ApplicationRow] {
        Dictionary(uniqueKeysWithValues: (1...rows).map { id in
            (Int64(id), ApplicationRow(plaintext: database.plaintexts["\(RotationDatabase.configs)/\(id)"], enabled: Int64(id % 2)))
        })
    }

    private func transaction(_ body: () throws -> Void) {
        let clock = ContinuousClock()
        let started = clock.now
        do {
            try connection.execute("BEGIN IMMEDIATE")
            longestWait = max(longestWait, clock.now - started)
            try body()
            try connection.execute("COMMIT")
            writes += 1
        } catch {
            if connection.isInTransaction { try? connection.execute("ROLLBACK") }
            failures.append("\(error)")
        }
    }

    private func uniquePlaintext(_ kind: String) -> String {
        next += 1
        return "sk-app-\(kind)-\(next)-\(Digest.hex(SecureRandom.bytes(6)))"
    }

    func insert(under key: MasterKey? = nil) {
        let plaintext = uniquePlaintext("insert")
        transaction {
            let secret = try SecretCipher.encrypt(plaintext, masterKey: key ?? master)
            try connection.prepare("""
                INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
                VALUES (?1, 'app-tool', 1, ?2, ?3, ?4, 1800000000, 1800000000)
                """).run([.text("app-user-\(next)"), .text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)])
            rows[connection.lastInsertRowID] = ApplicationRow(plaintext: plaintext, enabled: 1)
        }
    }

    /// Gives the row a new key (or none), encrypted under `key` (default: the application's).
    func setKey(_ id: Int64, under key: MasterKey? = nil, clear: Bool = false) {
        let plaintext = clear ? nil : uniquePlaintext("key")
        transaction {
            let secret = try plaintext.map { try SecretCipher.encrypt($0, masterKey: key ?? master) }
            try connection.prepare("UPDATE user_tool_configs SET encrypted_api_key = ?2, salt = ?3, nonce = ?4, updated_at = updated_at + 1 WHERE id = ?1")
                .run([.integer(id), secret.map { .text($0.encryptedAPIKey) } ?? .null, secret.map { .text($0.salt) } ?? .null, secret.map { .text($0.nonce) } ?? .null])
            if connection.changes == 1 { rows[id]?.plaintext = plaintext }
        }
    }

    func flip(_ id: Int64) {
        transaction {
            try connection.prepare("UPDATE user_tool_configs SET enabled = 1 - enabled WHERE id = ?1").run([.integer(id)])
            if connection.changes == 1, let row = rows[id] { rows[id]?.enabled = 1 - row.enabled }
        }
    }

    func delete(_ id: Int64) {
        transaction {
            try connection.prepare("DELETE FROM user_tool_configs WHERE id = ?1").run([.integer(id)])
            rows[id] = nil
        }
    }

    /// One write of a random kind on a random row.
    func randomWrite() {
        guard let id = rows.keys.randomElement() else { return insert() }
        switch Int.random(in: 0..<100) {
        case ..<30: setKey(id)
        case ..<55: flip(id)
        case ..<75: insert()
        case ..<85: delete(id)
        default: setKey(id, clear: true)
        }
    }

    /// Every row of the table is the model's, and every key opens under `key` to the model's plaintext.
    func expectTable(under key: MasterKey, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reader = try SQLiteConnection(path: connection.path, mode: .readOnly)
        defer { reader.close() }
        let statement = try reader.prepare("SELECT id, enabled, encrypted_api_key, salt, nonce FROM user_tool_configs ORDER BY id")
        var stored: [Int64: ApplicationRow] = [:]
        while try statement.step() {
            let secret = ToolConfigTable.secret(statement, first: 2)
            let plaintext = secret.map { (try? SecretCipher.decrypt($0, masterKey: key)) ?? "<does not open>" }
            stored[statement.int64(0)] = ApplicationRow(plaintext: plaintext, enabled: statement.int64(1))
        }
        let wrong = rows.filter { stored[$0.key] != $0.value }.map { "id \($0.key)" } + stored.keys.filter { rows[$0] == nil }.map { "extra id \($0)" }
        #expect(wrong.isEmpty, "rows differing from what the application wrote: \(wrong.sorted().prefix(10))", sourceLocation: sourceLocation)
    }
}

@Suite("Live application writers")
struct LiveWriterTests {
    @Test("rows the application inserts, re-keys, deletes, clears or flips between the snapshot and the write lock are all handled")
    func rotationRedoesWritesMadeMeanwhile() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let database = try RotationDatabase(at: folder.path("app.db"), master: old, rows: 30, noKey: { $0 % 10 == 0 })
        let application = try ApplicationWriter(path: database.path, master: old, rows: ApplicationWriter.model(of: database, rows: 30))
        let connection = try database.connection()
        var rotator = KeyRotator(connection: connection, options: .init(oldKey: old, newKey: new, jobs: 2))
        rotator.betweenPhases = {
            for _ in 1...3 { application.insert() }
            application.setKey(1)
            application.setKey(2)
            application.setKey(3, under: new)  // an application already switched to the new key
            application.setKey(10)             // a row without a key gets one
            application.delete(4)
            application.delete(5)
            application.setKey(6, clear: true)
            application.flip(7)
            application.flip(8)
        }
        let report = try rotator.run()
        #expect(application.failures.isEmpty, "\(application.failures)")
        let configs = try #require(report.tables.first { $0.table == RotationDatabase.configs })
        #expect(configs.rows == 30 && configs.noKey == 3)
        #expect(configs.rotated == 27, "21 unchanged rows, 3 inserted and 3 re-keyed under the old key")
        #expect(configs.alreadyRotated == 1)
        #expect(configs.changedDuringRotation == 7)
        #expect(configs.removedDuringRotation == 3)
        #expect(report.writeLockSeconds > 0 && report.writeLockSeconds <= report.elapsedSeconds)
        #expect(report.verifiedAfterCommit == 27 + 3 && report.changedAfterCommit == 0)
        try application.expectTable(under: new)
        let verifier = try KeyVerifier(connection: connection, masterKey: new, jobs: 2).run()
        #expect(verifier.ok)
    }

    @Test("a row written meanwhile under neither key fails the rotation, which then changes nothing")
    func rotationRefusesAForeignRowWrittenMeanwhile() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate(), foreign = MasterKey.generate()
        let database = try RotationDatabase(at: folder.path("app.db"), master: old, rows: 20)
        let application = try ApplicationWriter(path: database.path, master: old, rows: ApplicationWriter.model(of: database, rows: 20))
        let connection = try database.connection()
        var rotator = KeyRotator(connection: connection, options: .init(oldKey: old, newKey: new, jobs: 2))
        rotator.betweenPhases = {
            application.flip(2)
            application.setKey(9, under: foreign)
        }
        let error = thrownError { _ = try rotator.run() }
        let rotation = try #require(error as? RotationError)
        #expect(rotation.table == RotationDatabase.configs && rotation.row == "row id 9" && rotation.rolledBack)
        #expect(application.failures.isEmpty)
        // Every row but the foreign one still opens under the old key, and the flip stands.
        application.rows[9] = nil
        try application.connection.execute("DELETE FROM user_tool_configs WHERE id = 9")
        try application.expectTable(under: old)
    }

    @Test("an application writing throughout a rotation loses nothing; after a rerun every key opens under the new key", .timeLimit(.minutes(2)))
    func rotationBesideAWritingApplication() throws {
        let folder = try TemporaryFolder()
        let old = try key(MasterKeyTests.valid), new = MasterKey.generate()
        let rows = 1500
        let database = try RotationDatabase(at: folder.path("app.db"), master: old, rows: rows, noKey: { $0 % 50 == 0 })
        let application = try ApplicationWriter(path: database.path, master: old, rows: ApplicationWriter.model(of: database, rows: rows))
        let oldFile = try RotationTests.keyFile(old, folder, "old.key"), newFile = try RotationTests.keyFile(new, folder, "new.key")

        let stop = DispatchSemaphore(value: 0), stopped = DispatchSemaphore(value: 0)
        Thread {
            // A write every few milliseconds until told to stop.
            while stop.wait(timeout: .now() + .milliseconds(3)) == .timedOut { application.randomWrite() }
            stopped.signal()
        }.start()
        let rotation = try toolcfg(RotationTests.rotateArguments(database.path, old: oldFile, new: newFile) + ["--jobs", "2", "--json"])
        stop.signal()
        stopped.wait()
        #expect(rotation.status == 0, "\(rotation.stderr)")
        #expect(application.failures.isEmpty, "\(application.failures.prefix(3))")
        #expect(application.writes > 20, "the application wrote only \(application.writes) times during the rotation")
        let report = try RotationTests.json(rotation.stdout)
        let changed = RotationTests.tables(report)[RotationDatabase.configs]?["changed_during_rotation"] as? Int ?? -1
        print("live rotation: \(application.writes) application writes, longest wait \(application.longestWait), \(changed) rows redone in the write phase, write lock held \(report["write_lock_seconds"] ?? "?") s")

        // Rows the application wrote after the commit are still under the old key: a second run,
        // as after switching the application, re-encrypts them and keeps the rest.
        let rerun = try KeyRotator(connection: try database.connection(), options: .init(oldKey: old, newKey: new, jobs: 2)).run()
        #expect(rerun.tables.allSatisfy { $0.changedDuringRotation == 0 })
        try application.expectTable(under: new)
    }
}
