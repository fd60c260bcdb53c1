import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Tables with several column groups, rotated on both engines: the application's
/// `mcp_oauth_tokens` (an access and a refresh token, either may be NULL; a text key) and a table
/// of three groups found by the naming rule (an integer key). PostgreSQL writes every group of a
/// row in one UPDATE, each group under its own compare-and-swap.
@Suite("Rotation of tables with several column groups")
struct MultiGroupRotationTests {
    /// A table: its name, its key's SQL type, its groups (ciphertext, salt, nonce), how many rows
    /// it starts with, and which of them hold which group.
    struct Shape: Sendable, CustomTestStringConvertible {
        var table: String
        var key: String
        var groups: [[String]]
        var rows: Int
        var holds: @Sendable (_ row: Int, _ group: Int) -> Bool
        var testDescription: String { "\(table) (\(groups.count) groups, \(key) key)" }

        func holding(_ group: Int) -> Int { (1...rows).filter { holds($0, group) }.count }
        var holdingAny: Int { (1...rows).filter { row in groups.indices.contains { holds(row, $0) } }.count }
    }

    static let access = ["encrypted_access_token", "access_token_salt", "access_token_nonce"]
    static let refresh = ["encrypted_refresh_token", "refresh_token_salt", "refresh_token_nonce"]
    /// Rows 1-20 hold both groups, 21-25 only the access token, 26-28 only the refresh token.
    static let tokens = Shape(
        table: "mcp_oauth_tokens", key: "TEXT", groups: [access, refresh], rows: 28,
        holds: { row, group in group == 0 ? row <= 25 : row <= 20 || row > 25 })
    /// Every row holds alpha, the even ones beta, every third gamma; row 7 none.
    static let three = Shape(
        table: "three_secrets", key: "INTEGER", groups: ["alpha", "beta", "gamma"].map { ["encrypted_\($0)", "\($0)_salt", "\($0)_nonce"] },
        rows: 12, holds: { row, group in row != 7 && [true, row % 2 == 0, row % 3 == 0][group] })

    let old = MasterKey.generate(), new = MasterKey.generate()

    /// The plaintext each row's group holds, by group's ciphertext column and row id.
    final class Expected {
        var plaintexts: [String: [String: String]] = [:]
    }

    /// Sets row `id`'s group (`columns`) of `table` to a new value under `key`, or to NULL;
    /// returns the SQL. Groups alternate schemes: v2 for the first, v1 for the second, and so on.
    static func set(
        _ columns: [String], of id: Int, in table: String = tokens.table, to plaintext: String?, under key: MasterKey,
        scheme: SecretScheme, _ expected: Expected
    ) throws -> String {
        expected.plaintexts[columns[0], default: [:]]["\(id)"] = plaintext
        guard let plaintext else {
            return "UPDATE \(table) SET \(columns.map { "\($0) = NULL" }.joined(separator: ", ")) WHERE id = '\(id)'"
        }
        let secret = try SecretCipher.encrypt(plaintext, masterKey: key, scheme: scheme)
        let values = [secret.encryptedAPIKey, secret.salt, secret.nonce]
        return "UPDATE \(table) SET \(zip(columns, values).map { "\($0) = '\($1)'" }.joined(separator: ", ")) WHERE id = '\(id)'"
    }

    static func scheme(of group: Int) -> SecretScheme { group % 2 == 0 ? .v2 : .v1 }

    /// The table of `shape` with its rows' groups under `old`; `row_updates` counts the UPDATEs of
    /// its rows (a trigger).
    func make(_ engine: DatabaseEngine, _ shape: Shape = tokens, _ expected: Expected) throws -> ScratchDatabase {
        let scratch = try ScratchDatabase(engine)
        let database = try scratch.connect()
        let columns = shape.groups.joined().map { "\($0) TEXT" }.joined(separator: ", ")
        var statements = ["CREATE TABLE \(shape.table) (id \(shape.key) PRIMARY KEY, \(columns))", "CREATE TABLE row_updates (n INTEGER)"]
        statements.append("INSERT INTO row_updates VALUES (0)")
        switch engine {
        case .sqlite:
            statements.append("CREATE TRIGGER counted AFTER UPDATE ON \(shape.table) BEGIN UPDATE row_updates SET n = n + 1; END")
        case .postgresql:
            statements.append(
                "CREATE FUNCTION counted() RETURNS trigger LANGUAGE plpgsql AS "
                    + "$$ BEGIN UPDATE row_updates SET n = n + 1; RETURN NULL; END $$"
            )
            statements.append("CREATE TRIGGER counted AFTER UPDATE ON \(shape.table) FOR EACH ROW EXECUTE FUNCTION counted()")
        }
        for id in 1...shape.rows {
            statements.append("INSERT INTO \(shape.table) (id) VALUES ('\(id)')")
            for (index, group) in shape.groups.enumerated() where shape.holds(id, index) {
                statements.append(
                    try Self.set(
                        group, of: id, in: shape.table, to: "sk-\(group[0])-\(id)", under: old, scheme: Self.scheme(of: index), expected))
            }
        }
        statements.append("UPDATE row_updates SET n = 0")
        for statement in statements { try database.execute(statement, context: nil) }
        return scratch
    }

    /// Every value of `table` opens under the new key and holds what was last written to it.
    func expectUnderNewKey(_ scratch: ScratchDatabase, _ expected: Expected, table: String = tokens.table) throws {
        let database = try scratch.connect()
        for group in try database.secretGroups() where group.table == table {
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

    static let quietCases = ScratchDatabase.engines.flatMap { engine in [tokens, three].map { (engine, $0) } }

    @Test("every value of every group is rotated; PostgreSQL rewrites each row once, SQLite once per group", arguments: quietCases)
    func quiet(_ engine: DatabaseEngine, _ shape: Shape) throws {
        let expected = Expected()
        let scratch = try make(engine, shape, expected)
        defer { scratch.drop() }
        let report = try KeyRotator(database: try scratch.connect(), options: .init(oldKey: old, newKey: new, jobs: 2)).run()
        for (index, columns) in shape.groups.enumerated() {
            let group = try #require(report.groups.first { $0.columns == columns })
            #expect(group.rows == shape.rows && group.rotated == shape.holding(index), "\(group)")
            #expect(group.empty == shape.rows - shape.holding(index) && group.changedDuringRotation == 0, "\(group)")
        }
        #expect(report.verifiedAfterCommit == report.total.rotated)
        let rewrites = engine == .postgresql ? shape.holdingAny : shape.groups.indices.reduce(0) { $0 + shape.holding($1) }
        #expect(try Self.count(scratch) == rewrites)
        try expectUnderNewKey(scratch, expected, table: shape.table)
    }

    @Test(
        "with --make-room, a two-group table gets room for one new version of each row (fillfactor 50); every row is rewritten in place",
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
    func makeRoom() throws {
        let expected = Expected()
        let scratch = try make(.postgresql, Self.tokens, expected)
        defer { scratch.drop() }
        guard case .postgres(let url) = scratch.location else { return }
        let server = try PostgresConnection(url: url)
        // --make-room refuses a table with update triggers (they would act on its moves).
        try server.execute("DROP TRIGGER counted ON \(Self.tokens.table)")
        func pages() throws -> [String: Int64] {
            let rows = try server.query("SELECT id, (ctid::text::point)[0]::bigint FROM \(Self.tokens.table)")
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
        let scratch = try make(engine, Self.tokens, expected)
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
                "INSERT INTO \(Self.tokens.table) (id) VALUES ('30')",
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

    @Test(
        "the read-back's table digests are split between two threads by rows, the largest groups first",
        arguments: [
            ([500, 250, 250], [0]), ([100], [0]), ([], []), ([10, 30, 20, 40], [3, 0]), ([6, 5, 4, 3], [0, 3]),
            ([1, 1, 100], [2])
        ] as [([Int], [Int])])
    func readBackSplit(rows: [Int], chosen: [Int]) {
        #expect(KeyRotator.largerHalf(of: rows) == chosen)
    }
}
