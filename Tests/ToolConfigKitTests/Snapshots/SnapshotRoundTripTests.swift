import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension SnapshotsTests {
    // MARK: - 1. Round trips

    static let roundTripModes: [(SnapshotFormat, KeyMode)] = SnapshotFormat.allCases.flatMap { format in
        KeyMode.allCases.map { (format, $0) }
    }

    @Test(
        "round trip: import, export, import into a fresh database gives the same rows; on either engine",
        arguments: ScratchDatabase.engines, roundTripModes)
    func roundTrip(_ engine: DatabaseEngine, _ mode: (SnapshotFormat, KeyMode)) throws {
        let (format, keys) = mode
        let folder = try TemporaryFolder()
        let master = try SnapshotFixtures.master()
        let source = try ToolConfigTestDatabases.make(engine, folder, "source.db")
        defer { source.drop() }
        let input = try EngineSnapshots.write(
            SnapshotFixtures.sourceFile(SnapshotFixtures.samples, format), folder, "input.\(format.rawValue)")
        let first = try EngineSnapshots.importFile(source.database, input, format, master: master)
        #expect(first.records == SnapshotFixtures.samples.count)
        #expect(first.inserted == SnapshotFixtures.samples.count)
        let sourceRows = try source.plainRows(master)
        #expect(sourceRows == SnapshotFixtures.sorted(SnapshotFixtures.samples.map(SnapshotFixtures.PlainRow.init)))

        let exported = folder.path("export.\(format.rawValue)")
        if format == .csv && keys == .sealed {
            let error = thrownError { _ = try EngineSnapshots.export(source.database, to: exported, format, keys: keys, master: master) }
            #expect(error is UsageError, "\(String(describing: error))")
            #expect(!FileManager.default.fileExists(atPath: exported))
            return
        }
        let report = try EngineSnapshots.export(source.database, to: exported, format, keys: keys, master: master, verify: true)
        #expect(report.rows == SnapshotFixtures.samples.count)
        #expect(report.verified)
        if keys.holdsSecrets {
            #expect(try SnapshotFixtures.permissions(exported) == 0o600)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.url.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)

        // Sealed snapshots travel to a database with another master key; plaintext ones may too.
        let targetKey = keys == .encrypted ? master : MasterKey.generate()
        let target = try ToolConfigTestDatabases.make(engine, folder, "target.db")
        defer { target.drop() }
        let second = try EngineSnapshots.importFile(
            target.database, exported, format, master: targetKey, passphrase: keys == .sealed ? SnapshotFixtures.passphrase() : nil)
        #expect(second.inserted == SnapshotFixtures.samples.count)
        #expect(second.integrityChecked == (format != .csv))
        #expect(second.keys == (format == .csv ? nil : keys))
        let targetRows = try target.plainRows(targetKey)
        #expect(targetRows == (keys == .omit ? sourceRows.map { $0.withoutKey() } : sourceRows))
        // Ids are given in file order, which is the source's id order.
        #expect(targetRows.map(\.id) == sourceRows.map(\.id))
        if keys == .encrypted, let source = source as? SnapshotFixtures.SQLiteFile, let target = target as? SnapshotFixtures.SQLiteFile {
            #expect(try target.triples() == source.triples())
        }
        // Exporting the copy in the same mode gives the same file, byte for byte (same ids, same
        // order, triples copied as they are): a second round trip changes nothing.
        if keys == .encrypted || keys == .omit {
            let againPath = folder.path("again.\(format.rawValue)")
            let again = try EngineSnapshots.export(target.database, to: againPath, format, keys: keys, master: nil)
            #expect(again.rows == report.rows)
            #expect(try Data(contentsOf: URL(fileURLWithPath: againPath)) == Data(contentsOf: URL(fileURLWithPath: exported)))
        }
    }

    @Test("an update keeps the row's id and created_at, and changes the rest")
    func updateKeepsIdentity() throws {
        let folder = try TemporaryFolder()
        let master = try SnapshotFixtures.master()
        let db = try SnapshotFixtures.SQLiteFile(folder)
        let input = folder.path("first.jsonl")
        try SnapshotFixtures.write(SnapshotFixtures.sourceFile(SnapshotFixtures.samples, .jsonl), to: input)
        _ = try SnapshotFixtures.importFile(db, input, .jsonl, master: master)
        let before = try db.plainRows(master)

        let changed = SnapshotFixtures.samples.map { sample -> SnapshotFixtures.Sample in
            var copy = sample
            copy.enabled.toggle()
            copy.createdAt = 5
            copy.updatedAt = 1_800_000_000
            copy.key = (sample.key ?? "") + "-rotated"
            return copy
        }
        let second = folder.path("second.csv")
        try SnapshotFixtures.write(SnapshotFixtures.sourceFile(changed, .csv), to: second)
        let report = try SnapshotFixtures.importFile(db, second, .csv, master: master)
        #expect(report.updated == SnapshotFixtures.samples.count)
        #expect(report.inserted == 0)
        let after = try db.plainRows(master)
        #expect(after.map(\.id) == before.map(\.id))
        #expect(after.map(\.createdAt) == before.map(\.createdAt))
        #expect(
            after
                == SnapshotFixtures.sorted(changed.map(SnapshotFixtures.PlainRow.init)).enumerated().map { index, row in
                    var copy = row
                    copy.createdAt = before[index].createdAt
                    return copy
                })
        #expect(try db.connection.queryInt64("SELECT count(*) FROM user_tool_configs") == Int64(SnapshotFixtures.samples.count))
    }

    @Test("--keys omit writes no plaintext and no stored triple value", arguments: SnapshotFormat.allCases)
    func omitHoldsNoSecrets(format: SnapshotFormat) throws {
        let folder = try TemporaryFolder()
        let master = try SnapshotFixtures.master()
        let db = try SnapshotFixtures.SQLiteFile(folder)
        let plaintexts = ["sk-omit-check-0001", "ключ-omit-0002", "🔑-omit-0003"]
        for (index, plaintext) in plaintexts.enumerated() {
            try db.insert("user-\(index)", "tool", enabled: true, key: plaintext, master: master)
        }
        let output = folder.path("omit.\(format.rawValue)")
        let report = try SnapshotFixtures.export(db, to: output, format, keys: .omit, master: nil)
        #expect(report.rows == plaintexts.count)
        let text = try String(contentsOfFile: output, encoding: .utf8)
        for plaintext in plaintexts { #expect(!text.contains(plaintext)) }
        for triple in try db.triples() {
            for value in triple.split(separator: "|").dropFirst(2) {
                #expect(!text.contains(value), "stored value \(value) in the omit export")
            }
        }
        for name in ["api_key", "salt", "nonce", "sealed"] { #expect(!text.contains(name)) }
        #expect(text.contains("user-2"))
        if format != .csv { #expect(text.contains("\"keys\":\"omit\"")) }
    }

    @Test("keys are compared byte for byte: a canonically equivalent key with other bytes replaces the stored one")
    func keyComparisonIsByteExact() throws {
        let folder = try TemporaryFolder()
        let master = try SnapshotFixtures.master()
        let db = try SnapshotFixtures.SQLiteFile(folder)
        try db.insert("user", "tool", enabled: true, key: "cafe\u{301}", master: master, updatedAt: 2000)
        let path = folder.path("nfc.csv")
        try SnapshotFixtures.write("user_id,tool_id,enabled,api_key,updated_at\nuser,tool,1,caf\u{e9},2000\n", to: path)
        let report = try SnapshotFixtures.importFile(db, path, .csv, master: master)
        let stored = try db.plainRows(master).map { Array(($0.key ?? "").utf8) }
        #expect((report.updated, report.unchanged) == (1, 0))
        #expect(stored == [Array("caf\u{e9}".utf8)])
    }

    @Test("a stored empty key survives a plaintext export with --verify and its import", arguments: SnapshotFormat.allCases)
    func emptyStoredKey(format: SnapshotFormat) throws {
        let folder = try TemporaryFolder()
        let master = try SnapshotFixtures.master()
        let db = try SnapshotFixtures.SQLiteFile(folder)
        try db.insert("user", "empty-key", enabled: true, key: "", master: master)
        try db.insert("user", "real-key", enabled: true, key: "sk-real", master: master)
        let out = folder.path("empty.\(format.rawValue)")
        _ = try SnapshotFixtures.export(db, to: out, format, keys: .plaintext, master: master, verify: true)
        let target = try SnapshotFixtures.SQLiteFile(folder, "target.db")
        _ = try SnapshotFixtures.importFile(target, out, format, master: master)
        let rows = try target.plainRows(master)
        #expect(rows.count == 2)
        // JSON tells "" from null; CSV tells a quoted "" (an empty key) from an empty cell (none).
        #expect(rows.first?.key == "")
    }
}
