import CSQLite
import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The rotation's stage on SQLite (`SQLiteRotationStage`, `SQLiteStageFile`): the snapshot's rows
/// in a file read by the write phase's functions in step with the table's scan, rows staged again
/// in the write phase in a table that wins over the file. The rotation suites drive it end to end;
/// these pin what they cannot see: a walk in another order, texts past the file's buffers, the
/// digest and the read-back's pages with rows staged twice.
@Suite("SQLite rotation stage")
struct SQLiteRotationStageTests {
    let folder: TemporaryFolder
    let connection: SQLiteConnection
    let group = SecretColumnGroup(table: "t", ciphertext: "c", salt: "s", nonce: "n", idColumn: "id")

    init() throws {
        folder = try TemporaryFolder()
        connection = try SQLiteConnection(path: folder.path("stage.db"), mode: .readWriteCreate)
        try connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, c TEXT, s TEXT, n TEXT, other TEXT)")
        // An index on the secret columns: a planner free to scan it would walk the rows out of
        // rowid order.
        try connection.execute("CREATE INDEX t_secret ON t (c, s, n)")
    }

    private func secret(_ tag: String, _ rowID: Int64) -> StoredSecret {
        StoredSecret(encryptedAPIKey: "\(tag)-key-\(rowID)", salt: "\(tag)-salt-\(rowID)", nonce: "\(tag)-nonce-\(rowID)")
    }

    private func insert(_ rowID: Int64, _ value: StoredSecret?) throws {
        let parts: [SQLiteStatement.Value] = [value?.encryptedAPIKey, value?.salt, value?.nonce].map { $0.map { .text($0) } ?? .null }
        try connection.prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4, 'x')").run([.integer(rowID)] + parts)
    }

    private func current(_ rowID: Int64) throws -> StoredSecret? {
        try SQLiteSecretStore(connection, group: group).rows([RowReference(rowID: rowID, id: nil)])[0]?.secret
    }

    private func stage() throws -> SQLiteRotationStage {
        try #require(try SQLiteSecretStore(connection, group: group).makeRotationStage(index: 7) as? SQLiteRotationStage)
    }

    @Test("the write phase writes exactly the rows still holding their snapshot's triple, whatever the order the functions are asked in")
    func compareAndSwap() throws {
        // Rows 1...300 with gaps: every 5th is empty, every 7th is kept (already rotated), every
        // 11th is changed by the application after the snapshot.
        let rows = (1...300).map { Int64($0 * 3) }
        for rowID in rows { try insert(rowID, rowID % 5 == 0 ? nil : secret("old", rowID)) }
        let stage = try stage()
        defer { stage.drop() }
        for rowID in rows where rowID % 5 != 0 {
            if rowID % 7 == 0 {
                try stage.stageKept(RowReference(rowID: rowID, id: nil), secret("old", rowID))
            } else {
                try stage.stageRotation(RowReference(rowID: rowID, id: nil), old: secret("old", rowID), new: secret("new", rowID))
            }
        }
        for rowID in rows where rowID % 11 == 0 && rowID % 5 != 0 {
            try connection.prepare("UPDATE t SET c = 'app' WHERE id = ?1").run([.integer(rowID)])
        }
        try stage.finishStaging()
        // Asked backwards and then forwards, as a planner's other order would: the walk starts
        // again from the file's start and still finds each row.
        let backwards = try connection.prepare("SELECT id, toolcfg_stage7_matches(id, c, s, n) FROM t ORDER BY id DESC")
        var matching: [Int64] = []
        while try backwards.step() {
            if backwards.int64(1) == 1 { matching.append(backwards.int64(0)) }
        }
        let expected = rows.filter { $0 % 5 != 0 && $0 % 7 != 0 && $0 % 11 != 0 }
        #expect(matching.sorted() == expected)

        try connection.execute("BEGIN IMMEDIATE")
        let rewound = stage.rewinds
        #expect(try stage.applyUnchanged() == expected.count)
        // The UPDATE walks the file once (twice when SQLite runs it in two passes), never back
        // and forth.
        #expect(stage.rewinds - rewound <= 1)
        for rowID in rows {
            let found = try current(rowID)
            if rowID % 5 == 0 {
                #expect(found == nil, "row \(rowID)")
            } else if rowID % 11 == 0 {
                #expect(found?.encryptedAPIKey == "app", "row \(rowID)")
            } else {
                #expect(found == secret(rowID % 7 == 0 ? "old" : "new", rowID), "row \(rowID)")
            }
        }
        // The rows changed meanwhile are the leftovers, told apart as staged for a rotation or kept.
        let beforeLeftovers = stage.rewinds
        let leftovers = try stage.leftovers(after: nil, limit: 1000)
        #expect(stage.rewinds - beforeLeftovers <= 1)
        #expect(leftovers.map(\.row.rowID) == rows.filter { $0 % 11 == 0 && $0 % 5 != 0 })
        #expect(leftovers.allSatisfy { $0.stagedRotation == ($0.row.rowID % 7 != 0) })
        try connection.execute("ROLLBACK")
    }

    @Test("texts past the file's buffers, empty texts and kept rows come back as staged, and the digest matches the table's")
    func longAndEmptyTexts() throws {
        let long = String(repeating: "k", count: 300_000), longer = String(repeating: "m", count: 1_500_000)
        // With the lowest and highest rowids there are, and a negative one, as SQLite allows them.
        let staged: [(Int64, StoredSecret, rotate: Bool)] = [
            (.min, secret("new", .min), true),
            (-5, secret("kept", -5), false),
            (1, StoredSecret(encryptedAPIKey: "", salt: "", nonce: ""), true),
            (2, StoredSecret(encryptedAPIKey: long, salt: "s", nonce: "n"), true),
            (3, secret("kept", 3), false),
            (4, StoredSecret(encryptedAPIKey: longer, salt: long, nonce: ""), true),
            (5, secret("new", 5), true),
            (.max, secret("new", .max), true)
        ]
        let stage = try stage()
        defer { stage.drop() }
        for (rowID, value, rotate) in staged {
            try insert(rowID, rotate ? secret("old", rowID) : value)
            if rotate {
                try stage.stageRotation(RowReference(rowID: rowID, id: nil), old: secret("old", rowID), new: value)
            } else {
                try stage.stageKept(RowReference(rowID: rowID, id: nil), value)
            }
        }
        var scanned: [Int64] = []
        try SQLiteSecretStore(connection, group: group).scan(pageSize: 2) { scanned += $0.map(\.rowID) }
        #expect(scanned == staged.map(\.0))
        try stage.finishStaging()
        let rotated = try stage.rotated(after: nil, limit: 10)
        #expect(rotated.map(\.row.rowID) == [.min, 1, 2, 4, 5, .max])
        #expect(rotated.map(\.secret) == staged.filter(\.rotate).map(\.1))
        try connection.execute("BEGIN IMMEDIATE")
        #expect(try stage.applyUnchanged() == 6)
        try connection.execute("COMMIT")
        for (rowID, value, _) in staged { #expect(try current(rowID) == value, "row \(rowID)") }
        let table = try SQLiteSecretStore(connection, group: group).digest()
        let stageDigest = try stage.digest()
        #expect(table != nil && stageDigest == table)
    }

    @Test("rows staged again in the write phase win over the file in the digest and the read-back's pages")
    func stagedAgain() throws {
        // Rows 8 and 22 are already under the new key (kept): 8 comes right after the first page.
        let rows = Array(Int64(1)...40), kept: Set<Int64> = [8, 22]
        for rowID in rows { try insert(rowID, secret(kept.contains(rowID) ? "kept" : "old", rowID)) }
        let stage = try stage()
        defer { stage.drop() }
        for rowID in rows {
            if kept.contains(rowID) {
                try stage.stageKept(RowReference(rowID: rowID, id: nil), secret("kept", rowID))
            } else {
                try stage.stageRotation(RowReference(rowID: rowID, id: nil), old: secret("old", rowID), new: secret("new", rowID))
            }
        }
        try stage.finishStaging()
        try connection.execute("BEGIN IMMEDIATE")
        #expect(try stage.applyUnchanged() == 38)
        // As the write phase redoes rows changed meanwhile: 41 is new, 10 and 12-15 (two of them
        // ending a page) and 20 rotated again, 30 kept, 35 deleted (still staged, so the digests
        // differ and the read-back goes by pages).
        let again: [Int64] = [10, 12, 13, 14, 15, 20, 41]
        try insert(41, secret("again", 41))
        for rowID in again {
            try SQLiteSecretStore(connection, group: group).setSecret(secret("again", rowID), of: RowReference(rowID: rowID, id: nil))
            try stage.stageRotation(RowReference(rowID: rowID, id: nil), old: secret("old", rowID), new: secret("again", rowID))
        }
        try SQLiteSecretStore(connection, group: group).setSecret(secret("kept", 30), of: RowReference(rowID: 30, id: nil))
        try stage.stageKept(RowReference(rowID: 30, id: nil), secret("kept", 30))
        try connection.execute("COMMIT")
        #expect(try stage.leftovers(after: nil, limit: 100).isEmpty)

        let table = try SQLiteSecretStore(connection, group: group).digest()
        let staged = try stage.digest()
        #expect(table != nil && staged == table)
        try connection.execute("DELETE FROM t WHERE id = 35")
        let afterDelete = try SQLiteSecretStore(connection, group: group).digest()
        let stagedAfterDelete = try stage.digest()
        #expect(afterDelete != nil && afterDelete != table && stagedAfterDelete == staged)

        // Pages of 7 through the file and the table together, in rowid order, the file read once
        // (two rows staged again fall in one page).
        let rewound = stage.rewinds
        var pages: [[(row: RowReference, secret: StoredSecret)]] = []
        var after: RowReference?
        while true {
            let page = try stage.rotated(after: after, limit: 7)
            guard let last = page.last else { break }
            pages.append(page)
            after = last.row
        }
        #expect(pages.dropLast().allSatisfy { $0.count == 7 })
        #expect(stage.rewinds == rewound)
        let all = pages.flatMap { $0 }
        #expect(all.map(\.row.rowID) == rows.filter { $0 != 30 && !kept.contains($0) } + [41])
        for (row, value) in all {
            #expect(value == secret(again.contains(row.rowID) ? "again" : "new", row.rowID), "row \(row.rowID)")
        }
    }

    @Test("rows are staged in ascending rowid: an append out of order, or after the file is finished, is refused")
    func order() throws {
        let file = try SQLiteStageFile(database: "stage.db")
        try file.append(5, rotate: true, old: secret("old", 5), new: secret("new", 5))
        let repeated = #expect(throws: SQLiteError.self) { try file.append(5, rotate: true, old: secret("old", 5), new: secret("new", 5)) }
        #expect(repeated?.code == SQLITE_MISUSE)
        #expect(throws: SQLiteError.self) { try file.append(3, rotate: false, old: nil, new: secret("new", 3)) }
        try file.finish()
        #expect(throws: SQLiteError.self) { try file.append(9, rotate: false, old: nil, new: secret("new", 9)) }
        #expect(try file.next(from: .min) { _, _ in true }?.rowID == 5)
        #expect(try file.next(from: 6) { _, _ in true } == nil)
    }

    @Test("dropping the stage removes its functions: nothing is left to read a closed file")
    func dropRemovesFunctions() throws {
        try insert(1, secret("old", 1))
        let stage = try stage()
        try stage.stageRotation(RowReference(rowID: 1, id: nil), old: secret("old", 1), new: secret("new", 1))
        try stage.finishStaging()
        #expect(try connection.queryInt64("SELECT toolcfg_stage7_matches(id, c, s, n) FROM t") == 1)
        stage.drop()
        #expect(throws: SQLiteError.self) { try connection.queryInt64("SELECT toolcfg_stage7_matches(id, c, s, n) FROM t") }
    }
}
