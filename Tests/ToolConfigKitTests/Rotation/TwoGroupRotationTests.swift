import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// A table with two column groups (the application's `mcp_oauth_tokens`: an access and a
/// refresh token, either may be NULL), rotated on both engines: PostgreSQL writes both groups of
/// a row in one UPDATE, each group under its own compare-and-swap.
@Suite("Rotation of a table with two column groups")
struct TwoGroupRotationTests {
    static let table = "mcp_oauth_tokens"
    static let access = ["encrypted_access_token", "access_token_salt", "access_token_nonce"]
    static let refresh = ["encrypted_refresh_token", "refresh_token_salt", "refresh_token_nonce"]

    let old = MasterKey.generate(), new = MasterKey.generate()

    /// The plaintext each row's group holds, by group's ciphertext column and row id.
    final class Expected {
        var plaintexts: [String: [String: String]] = [:]
    }

    /// Sets row `id`'s group (`columns`) to a new value under `key`, or to NULL; returns the SQL.
    static func set(
        _ columns: [String], of id: Int, to plaintext: String?, under key: MasterKey, scheme: SecretScheme, _ expected: Expected
    ) throws -> String {
        expected.plaintexts[columns[0], default: [:]]["\(id)"] = plaintext
        guard let plaintext else {
            return "UPDATE \(table) SET \(columns.map { "\($0) = NULL" }.joined(separator: ", ")) WHERE id = '\(id)'"
        }
        let secret = try SecretCipher.encrypt(plaintext, masterKey: key, scheme: scheme)
        let values = [secret.encryptedAPIKey, secret.salt, secret.nonce]
        return "UPDATE \(table) SET \(zip(columns, values).map { "\($0) = '\($1)'" }.joined(separator: ", ")) WHERE id = '\(id)'"
    }

    /// mcp_oauth_tokens with rows 1-20 holding both groups, 21-25 only the access token (v2) and
    /// 26-28 only the refresh token (v1), all under `old`; `row_updates` counts the UPDATEs of
    /// its rows (a trigger).
    func make(_ engine: DatabaseEngine, _ expected: Expected) throws -> ScratchDatabase {
        let scratch = try ScratchDatabase(engine)
        let database = try scratch.connect()
        let columns = (Self.access + Self.refresh).map { "\($0) TEXT" }.joined(separator: ", ")
        var statements = ["CREATE TABLE \(Self.table) (id TEXT PRIMARY KEY, \(columns))", "CREATE TABLE row_updates (n INTEGER)"]
        statements.append("INSERT INTO row_updates VALUES (0)")
        switch engine {
        case .sqlite:
            statements.append("CREATE TRIGGER counted AFTER UPDATE ON \(Self.table) BEGIN UPDATE row_updates SET n = n + 1; END")
        case .postgresql:
            statements.append(
                "CREATE FUNCTION counted() RETURNS trigger LANGUAGE plpgsql AS "
                    + "$$ BEGIN UPDATE row_updates SET n = n + 1; RETURN NULL; END $$"
            )
            statements.append("CREATE TRIGGER counted AFTER UPDATE ON \(Self.table) FOR EACH ROW EXECUTE FUNCTION counted()")
        }
        for id in 1...28 {
            statements.append("INSERT INTO \(Self.table) (id) VALUES ('\(id)')")
            if id <= 25 { statements.append(try Self.set(Self.access, of: id, to: "sk-access-\(id)", under: old, scheme: .v2, expected)) }
            if id <= 20 || id > 25 {
                statements.append(try Self.set(Self.refresh, of: id, to: "sk-refresh-\(id)", under: old, scheme: .v1, expected))
            }
        }
        statements.append("UPDATE row_updates SET n = 0")
        for statement in statements { try database.execute(statement, context: nil) }
        return scratch
    }

    /// Every value opens under the new key and holds what was last written to it.
    func expectUnderNewKey(_ scratch: ScratchDatabase, _ expected: Expected) throws {
        let database = try scratch.connect()
        for group in try database.secretGroups() where group.table == Self.table {
            var found: [String: String] = [:]
            try database.secretReader(for: group).scan(pageSize: 100) { rows in
                for row in rows { if let secret = row.secret { found[row.id ?? ""] = try SecretCipher.decrypt(secret, masterKey: new) } }
            }
            #expect(found == expected.plaintexts[group.ciphertext] ?? [:], "\(group.label)")
        }
    }

    func groups(_ report: KeyRotator.Report) throws -> (access: KeyRotator.GroupReport, refresh: KeyRotator.GroupReport) {
        let access = try #require(report.groups.first { $0.columns == Self.access })
        let refresh = try #require(report.groups.first { $0.columns == Self.refresh })
        return (access, refresh)
    }

    static func count(_ scratch: ScratchDatabase) throws -> Int {
        switch scratch.location {
        case .sqlite(let path): Int(try SQLiteConnection(path: path).queryInt64("SELECT n FROM row_updates") ?? -1)
        case .postgres(let url): Int(try PostgresConnection(url: url).queryInt64("SELECT n FROM row_updates") ?? -1)
        }
    }

    @Test(
        "every value of both groups is rotated; PostgreSQL rewrites each row once, SQLite once per group",
        arguments: ScratchDatabase.engines)
    func quiet(_ engine: DatabaseEngine) throws {
        let expected = Expected()
        let scratch = try make(engine, expected)
        defer { scratch.drop() }
        let report = try KeyRotator(database: try scratch.connect(), options: .init(oldKey: old, newKey: new, jobs: 2)).run()
        let (access, refresh) = try groups(report)
        #expect(access.rows == 28 && access.rotated == 25 && access.empty == 3 && access.changedDuringRotation == 0, "\(access)")
        #expect(refresh.rows == 28 && refresh.rotated == 23 && refresh.empty == 5 && refresh.changedDuringRotation == 0, "\(refresh)")
        #expect(report.verifiedAfterCommit == report.total.rotated)
        #expect(try Self.count(scratch) == (engine == .postgresql ? 28 : 25 + 23))
        try expectUnderNewKey(scratch, expected)
    }

    @Test(
        "with --make-room, a two-group table gets room for one new version of each row (fillfactor 50); every row is rewritten in place",
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
    func makeRoom() throws {
        let expected = Expected()
        let scratch = try make(.postgresql, expected)
        defer { scratch.drop() }
        guard case .postgres(let url) = scratch.location else { return }
        let server = try PostgresConnection(url: url)
        // --make-room refuses a table with update triggers (they would act on its moves).
        try server.execute("DROP TRIGGER counted ON \(Self.table)")
        func pages() throws -> [String: Int64] {
            let rows = try server.query("SELECT id, (ctid::text::point)[0]::bigint FROM \(Self.table)")
            return try Dictionary(uniqueKeysWithValues: (0..<rows.count).map { (rows.text($0, 0) ?? "", try rows.int64($0, 1) ?? -1) })
        }
        var rotator = KeyRotator(database: try scratch.connect(), options: .init(oldKey: old, newKey: new, jobs: 2, makeRoom: true))
        var beforeWriting: [String: Int64] = [:]
        rotator.betweenPhases = { beforeWriting = try pages() }
        let report = try rotator.run()
        let room = try #require(report.groups.first { $0.columns == Self.access }?.room)
        #expect(room.fillfactor == 50 && room.rowsLeftWithoutRoom == 0 && room.rowsMoved > 0, "\(room)")
        // Room for one version a row: two UPDATEs, one per group, would have moved rows.
        #expect(try pages() == beforeWriting, "the write phase moved rows")
        try expectUnderNewKey(scratch, expected)
    }

    @Test(
        "a group the application changed between the snapshot and the write phase is redone, and the row's other group still rotates",
        arguments: ScratchDatabase.engines)
    func changedMeanwhile(_ engine: DatabaseEngine) throws {
        let expected = Expected()
        let scratch = try make(engine, expected)
        defer { scratch.drop() }
        let application = try scratch.connect()
        var rotator = KeyRotator(database: try scratch.connect(), options: .init(oldKey: old, newKey: new, jobs: 2))
        rotator.betweenPhases = { [old, new] in
            let writes = [
                // Row 3's access token re-keyed under the old key; row 4's refresh token under the new.
                try Self.set(Self.access, of: 3, to: "sk-access-3b", under: old, scheme: .v2, expected),
                try Self.set(Self.refresh, of: 4, to: "sk-refresh-4b", under: new, scheme: .v1, expected),
                // Row 22 gains a refresh token; row 5 loses its own.
                try Self.set(Self.refresh, of: 22, to: "sk-refresh-22", under: old, scheme: .v1, expected),
                try Self.set(Self.refresh, of: 5, to: nil, under: old, scheme: .v1, expected),
                "INSERT INTO \(Self.table) (id) VALUES ('30')",
                try Self.set(Self.access, of: 30, to: "sk-access-30", under: old, scheme: .v2, expected),
                try Self.set(Self.refresh, of: 30, to: "sk-refresh-30", under: old, scheme: .v1, expected)
            ]
            for write in writes { try application.execute(write, context: nil) }
        }
        let report = try rotator.run()
        let (access, refresh) = try groups(report)
        // Access: 25 staged, row 3 no longer as read; rows 3 and 30 redone.
        #expect(access.rotated == 26 && access.changedDuringRotation == 2 && access.removedDuringRotation == 0, "\(access)")
        // Refresh: 23 staged, rows 4 and 5 no longer as read; rows 4 (kept), 22 and 30 redone; row 5 cleared.
        #expect(
            refresh.rotated == 23 && refresh.alreadyRotated == 1 && refresh.changedDuringRotation == 3
                && refresh.removedDuringRotation == 1, "\(refresh)")
        try expectUnderNewKey(scratch, expected)
    }
}
