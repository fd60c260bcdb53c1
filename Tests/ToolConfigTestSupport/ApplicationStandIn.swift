import Foundation
import Testing
import ToolConfigKit

/// What the application believes a user_tool_configs row holds.
package struct ApplicationRow: Equatable {
    package var plaintext: String?
    package var enabled: Int64

    package init(plaintext: String?, enabled: Int64) {
        self.plaintext = plaintext
        self.enabled = enabled
    }

    /// user_tool_configs of a keyed test database as built: ids 1...rows, enabled = id % 2, the
    /// plaintexts by "table/id".
    package static func model(_ plaintexts: [String: String], rows: Int) -> [Int64: ApplicationRow] {
        Dictionary(
            uniqueKeysWithValues: (1...rows).map { id in
                (Int64(id), ApplicationRow(plaintext: plaintexts["\(KeyedDatabase.configs)/\(id)"], enabled: Int64(id % 2)))
            })
    }
}

/// What a stand-in for the live application does on either engine: its writes, each in a
/// transaction of its own and recorded in `rows` when it lands, and from them a random write and
/// a thread that keeps writing.
package protocol ApplicationStandIn: AnyObject, Sendable {
    /// Rows of user_tool_configs by id, as the application wrote them.
    var rows: [Int64: ApplicationRow] { get }
    /// A new row with a key under the application's master key.
    func insertKeyed()
    /// Every write made so far that failed.
    var failures: [String] { get }
    /// Writes that landed, and the longest any of them waited for its lock.
    var writes: Int { get }
    var longestWait: Duration { get }
    /// Every row of the table is the model's, its key opening under `key` to the model's plaintext.
    func expectTable(under key: MasterKey, sourceLocation: SourceLocation) throws
    /// Gives the row a new key (or none), encrypted under `key` (nil: the application's).
    func setKey(_ id: Int64, under key: MasterKey?, clear: Bool)
    func flip(_ id: Int64)
    func delete(_ id: Int64)
}

extension ApplicationStandIn {
    /// One write of a random kind on a random row.
    func randomWrite() {
        guard let id = rows.keys.randomElement() else { return insertKeyed() }
        switch Int.random(in: 0..<100) {
        case ..<30: setKey(id, under: nil, clear: false)
        case ..<55: flip(id)
        case ..<75: insertKeyed()
        case ..<85: delete(id)
        default: setKey(id, under: nil, clear: true)
        }
    }

    /// What the tests of a rotation's write phase write between its phases, on 30 rows of which
    /// 10, 20 and 30 have no key: 3 inserts, re-keys under the old key (1, 2) and under the new
    /// one (3: an application already switched), a key given (10), deletes (4, 5), a key cleared
    /// (6), flips (7, 8).
    package func writeBetweenRotationPhases(newKey: MasterKey) {
        for _ in 1...3 { insertKeyed() }
        setKey(1, under: nil, clear: false)
        setKey(2, under: nil, clear: false)
        setKey(3, under: newKey, clear: false)
        setKey(10, under: nil, clear: false)
        delete(4)
        delete(5)
        setKey(6, under: nil, clear: true)
        flip(7)
        flip(8)
    }

    /// The rotation after those writes redid exactly them, and the table is what the
    /// application wrote, every key under the new key.
    package func expectRedone(_ report: KeyRotator.Report, newKey: MasterKey, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(failures.isEmpty, "\(failures)", sourceLocation: sourceLocation)
        let configs = try #require(report.groups.first { $0.table == KeyedDatabase.configs }, sourceLocation: sourceLocation)
        #expect(configs.rows == 30 && configs.empty == 3, sourceLocation: sourceLocation)
        #expect(configs.rotated == 27, "21 unchanged rows, 3 inserted and 3 re-keyed under the old key", sourceLocation: sourceLocation)
        #expect(
            configs.alreadyRotated == 1 && configs.changedDuringRotation == 7 && configs.removedDuringRotation == 3,
            sourceLocation: sourceLocation)
        #expect(report.writeLockSeconds > 0 && report.writeLockSeconds <= report.elapsedSeconds, sourceLocation: sourceLocation)
        #expect(report.verifiedAfterCommit == 27 + 3 && report.changedAfterCommit == 0, sourceLocation: sourceLocation)
        try expectTable(under: newKey, sourceLocation: sourceLocation)
    }

    /// Runs `body` while a thread makes a random write every few milliseconds, as a busy
    /// application would; the writes stop before this returns.
    package func writing<T>(during body: () throws -> T) rethrows -> T {
        let stop = DispatchSemaphore(value: 0), stopped = DispatchSemaphore(value: 0)
        Thread {
            while stop.wait(timeout: .now() + .milliseconds(3)) == .timedOut { self.randomWrite() }
            stopped.signal()
        }.start()
        defer {
            stop.signal()
            stopped.wait()
        }
        return try body()
    }
}

/// Stands in for the live application: its own connection with sqlx-sqlite's 5 s busy timeout,
/// short write transactions, keys encrypted under the master key it runs on. It keeps a model
/// of what it wrote, so a test can prove that no write was lost.
package final class ApplicationWriter: ApplicationStandIn, @unchecked Sendable {
    package let connection: SQLiteConnection
    package let master: MasterKey
    /// Rows of user_tool_configs by id, as the application wrote them.
    package var rows: [Int64: ApplicationRow]
    package var writes = 0
    package var failures: [String] = []
    package var longestWait: Duration = .zero
    private var next = 0

    package init(path: String, master: MasterKey, rows: [Int64: ApplicationRow]) throws {
        connection = try SQLiteConnection(path: path, options: .init(busyTimeout: .seconds(5)))
        self.master = master
        self.rows = rows
    }

    /// The model of a KeyedDatabase's user_tool_configs as built (enabled = id % 2).
    package static func model(of database: KeyedDatabase, rows: Int) -> [Int64: ApplicationRow] {
        ApplicationRow.model(database.plaintexts, rows: rows)
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

    package func insert(under key: MasterKey? = nil, pair: (String, String)? = nil, plaintext given: String? = nil) {
        let plaintext = given ?? uniquePlaintext("insert")
        let (user, tool) = pair ?? ("app-user-\(next)", "app-tool")
        transaction {
            let secret = try SecretCipher.encrypt(plaintext, masterKey: key ?? master)
            try connection.prepare(
                """
                INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at)
                VALUES (?1, ?2, 1, ?3, ?4, ?5, 1800000000, 1800000000)
                """
            ).run([.text(user), .text(tool), .text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)])
            rows[connection.lastInsertRowID] = ApplicationRow(plaintext: plaintext, enabled: 1)
        }
    }

    /// Gives the row a new key (or none), encrypted under `key` (default: the application's).
    package func setKey(_ id: Int64, under key: MasterKey? = nil, clear: Bool = false) {
        let plaintext = clear ? nil : uniquePlaintext("key")
        transaction {
            let secret = try plaintext.map { try SecretCipher.encrypt($0, masterKey: key ?? master) }
            try connection.prepare(
                "UPDATE user_tool_configs SET encrypted_api_key = ?2, salt = ?3, nonce = ?4, updated_at = updated_at + 1 WHERE id = ?1"
            )
            .run([
                .integer(id), secret.map { .text($0.encryptedAPIKey) } ?? .null, secret.map { .text($0.salt) } ?? .null,
                secret.map { .text($0.nonce) } ?? .null
            ])
            if connection.changes == 1 { rows[id]?.plaintext = plaintext }
        }
    }

    package func flip(_ id: Int64) {
        transaction {
            try connection.prepare("UPDATE user_tool_configs SET enabled = 1 - enabled WHERE id = ?1").run([.integer(id)])
            if connection.changes == 1, let row = rows[id] { rows[id]?.enabled = 1 - row.enabled }
        }
    }

    package func delete(_ id: Int64) {
        transaction {
            try connection.prepare("DELETE FROM user_tool_configs WHERE id = ?1").run([.integer(id)])
            rows[id] = nil
        }
    }

    package func insertKeyed() { insert() }

    /// Every row of the table (but those of users starting with `skipping`) is the model's, and
    /// every key opens under `key` to the model's plaintext.
    package func expectTable(under key: MasterKey, sourceLocation: SourceLocation) throws {
        try expectTable(under: key, skipping: "\u{0}", sourceLocation: sourceLocation)
    }

    package func expectTable(under key: MasterKey, skipping: String = "\u{0}", sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reader = try SQLiteConnection(path: connection.path, mode: .readOnly)
        defer { reader.close() }
        let statement = try reader.prepare(
            "SELECT id, enabled, encrypted_api_key, salt, nonce FROM user_tool_configs WHERE substr(user_id, 1, length(?1)) "
                + "!= ?1 ORDER BY id"
        )
        try statement.bind(.text(skipping), at: 1)
        var stored: [Int64: ApplicationRow] = [:]
        while try statement.step() {
            let secret = ToolConfigTable.secret(statement, first: 2)
            let plaintext = secret.map { (try? SecretCipher.decrypt($0, masterKey: key)) ?? "<does not open>" }
            stored[statement.int64(0)] = ApplicationRow(plaintext: plaintext, enabled: statement.int64(1))
        }
        let wrong =
            rows.filter { stored[$0.key] != $0.value }.map { "id \($0.key)" }
            + stored.keys.filter { rows[$0] == nil }.map { "extra id \($0)" }
        #expect(
            wrong.isEmpty, "rows differing from what the application wrote: \(wrong.sorted().prefix(10))", sourceLocation: sourceLocation)
    }
}
