import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension SnapshotsTests {
    // MARK: - 3. Collected errors

    @Test(
        "maxErrors collects several errors with their lines and still writes nothing, key errors too; on either engine",
        arguments: ScratchDatabase.engines)
    func collectedErrors(_ engine: DatabaseEngine) throws {
        let folder = try TemporaryFolder()
        let master = try SnapshotFixtures.master()
        let db = try ToolConfigTestDatabases.make(engine, folder)
        defer { db.drop() }
        func importFile(_ path: String, maxErrors: Int) throws {
            _ = try EngineSnapshots.importFile(db.database, path, .csv, master: master, maxErrors: maxErrors)
        }
        try db.insert("seed-user", "tool-a", enabled: true, key: "sk-seed", master: master, createdAt: 1000, updatedAt: 2000)
        let path = try EngineSnapshots.write(
            """
            user_id,tool_id,enabled,created_at
            a,t,yes,1
            b,t,1,x
            c,t,1,1
            ,t,1,1
            d,t,2,1
            e,t,1,-1
            f,t,1,1
            g,t,nope,1

            """, folder, "errors.csv")
        let before = try db.dump()

        let five = thrownError { try importFile(path, maxErrors: 5) }
        let collected = try #require(five as? SnapshotErrors, "\(String(describing: five))")
        #expect(collected.errors.map(\.location.line) == [2, 3, 5, 6, 7])
        #expect(collected.errors.map(\.location.field) == ["enabled", "created_at", "user_id", "enabled", "created_at"])
        #expect(collected.stoppedEarly)
        #expect(collected.exitStatus == .dataError)
        #expect(collected.description.contains("\(path):3 (record 2): field created_at"))
        #expect(collected.description.contains("nothing was written"))
        #expect(try db.dump() == before)

        let all = thrownError { try importFile(path, maxErrors: 100) }
        let every = try #require(all as? SnapshotErrors)
        #expect(every.errors.map(\.location.line) == [2, 3, 5, 6, 7, 9])
        #expect(!every.stoppedEarly)
        #expect(try db.dump() == before)

        // Errors found while resolving keys (triples that do not decrypt) are collected too.
        let foreign = MasterKey.generate()
        var lines = [Self.tripleHeader]
        for index in 0..<4 {
            let secret = try SecretCipher.encrypt("sk-\(index)", masterKey: index == 1 ? master : foreign)
            lines.append(Self.tripleRow("k\(index)", secret))
        }
        let keysPath = try EngineSnapshots.write(lines.joined(separator: "\n") + "\n", folder, "keys.csv")
        let keyErrors = try #require(thrownError { try importFile(keysPath, maxErrors: 5) } as? SnapshotErrors)
        #expect(keyErrors.errors.map(\.location.line) == [2, 4, 5])
        #expect(keyErrors.errors.allSatisfy { $0.location.field == "encrypted_api_key" })
        #expect(try db.dump() == before)
    }

    @Test("the first error reported is the first one in the file, also when a syntax error follows a bad value")
    func errorsInFileOrder() throws {
        let folder = try TemporaryFolder()
        let db = try SnapshotFixtures.SQLiteFile(folder)
        let path = folder.path("mixed.csv")
        try SnapshotFixtures.write("user_id,tool_id,enabled\na,t,yes\nb,t,1\nc,\"t,1\nd,t,0\n", to: path)
        let before = try db.dump()
        let single = thrownError { _ = try SnapshotFixtures.importFile(db, path, .csv, master: nil) }
        let several = thrownError { _ = try SnapshotFixtures.importFile(db, path, .csv, master: nil, maxErrors: 5) }
        #expect(try db.dump() == before)
        #expect(SnapshotFixtures.firstSnapshotError(single)?.location.line == 2, "\(String(describing: single))")
        #expect((several as? SnapshotErrors)?.errors.map(\.location.line) == [2, 4], "\(String(describing: several))")
    }

    // MARK: - 4. Dry run, re-import, skip

    @Test(
        "dry run reports the counts and writes nothing; re-import is unchanged; skip and fail policies; on either engine",
        arguments: ScratchDatabase.engines)
    func dryRunAndPolicies(_ engine: DatabaseEngine) throws {
        let folder = try TemporaryFolder()
        let master = try SnapshotFixtures.master()
        let db = try ToolConfigTestDatabases.make(engine, folder)
        defer { db.drop() }
        func importFile(
            _ path: String, _ format: SnapshotFormat = .csv, onConflict: Importer.ConflictPolicy = .update, dryRun: Bool = false
        ) throws -> Importer.Report {
            try EngineSnapshots.importFile(db.database, path, format, master: master, onConflict: onConflict, dryRun: dryRun)
        }
        try db.insert("seed-user", "tool-a", enabled: true, key: "sk-seed-a", master: master, createdAt: 1000, updatedAt: 2000)
        try db.insert("seed-user", "tool-b", enabled: false, key: nil, master: master, createdAt: 1000, updatedAt: 2000)
        let path = try EngineSnapshots.write(
            """
            user_id,tool_id,enabled,api_key,updated_at
            seed-user,tool-a,1,sk-seed-a,2000
            seed-user,tool-b,1,,3000
            new-user,tool-a,0,sk-new,

            """, folder, "changes.csv")
        let before = try db.dump()

        let dry = try importFile(path, dryRun: true)
        #expect(dry.dryRun)
        #expect((dry.records, dry.inserted, dry.updated, dry.unchanged, dry.skipped) == (3, 1, 1, 1, 0))
        if engine == .postgresql { #expect(dry.writeLockSeconds == 0) }
        #expect(try db.dump() == before)

        let real = try importFile(path)
        #expect(!real.dryRun)
        #expect((real.records, real.inserted, real.updated, real.unchanged, real.skipped) == (3, 1, 1, 1, 0))
        let afterImport = try db.dump()
        #expect(afterImport[0] == before[0], "the unchanged row was rewritten")
        #expect(
            try db.plainRows(master) == [
                SnapshotFixtures.PlainRow(
                    userID: "new-user", toolID: "tool-a", enabled: false, createdAt: SnapshotFixtures.now, updatedAt: SnapshotFixtures.now,
                    key: "sk-new"),
                SnapshotFixtures.PlainRow(
                    userID: "seed-user", toolID: "tool-a", enabled: true, createdAt: 1000, updatedAt: 2000, key: "sk-seed-a"),
                SnapshotFixtures.PlainRow(userID: "seed-user", toolID: "tool-b", enabled: true, createdAt: 1000, updatedAt: 3000, key: nil)
            ])

        for policy in Importer.ConflictPolicy.allCases {
            let again = try importFile(path, onConflict: policy)
            #expect((again.inserted, again.updated, again.unchanged, again.skipped) == (0, 0, 3, 0), "\(policy)")
            #expect(try db.dump() == afterImport)
        }

        let conflicting = try EngineSnapshots.write(
            """
            user_id,tool_id,enabled,api_key,updated_at
            seed-user,tool-a,0,sk-other,5000
            new-user,tool-a,0,sk-new,
            brand-new,tool-z,1,,

            """, folder, "conflicting.csv")
        let skipDry = try importFile(conflicting, onConflict: .skip, dryRun: true)
        #expect((skipDry.inserted, skipDry.updated, skipDry.unchanged, skipDry.skipped) == (1, 0, 1, 1))
        #expect(try db.dump() == afterImport)
        let skip = try importFile(conflicting, onConflict: .skip)
        #expect((skip.inserted, skip.updated, skip.unchanged, skip.skipped) == (1, 0, 1, 1))
        let rows = try db.plainRows(master)
        #expect(rows.first { $0.userID == "seed-user" && $0.toolID == "tool-a" }?.key == "sk-seed-a")
        #expect(rows.contains { $0.userID == "brand-new" })
        let beforeFail = try db.dump()
        let failed = try #require(thrownError { _ = try importFile(conflicting, onConflict: .fail) } as? SnapshotError)
        #expect(failed.location.line == 2 && failed.message.contains("on-conflict fail"))
        #expect(try db.dump() == beforeFail)

        // An identical duplicate inside one file is counted, not refused.
        let duplicates = try EngineSnapshots.write(
            "{\"user_id\":\"twice\",\"tool_id\":\"t\",\"enabled\":true}\n{\"user_id\":\"twice\",\"tool_id\":\"t\",\"enabled\":1}\n",
            folder, "duplicates.jsonl")
        let duplicateReport = try importFile(duplicates, .jsonl)
        #expect((duplicateReport.inserted, duplicateReport.duplicates) == (1, 1))
    }

    // MARK: - 5. Files from Python's csv and json modules

    static let pythonWriter = #"""
        import csv, json, os, sys
        request = json.load(sys.stdin)
        folder, records = request["folder"], request["records"]
        columns = ["api_key", "updated_at", "tool_id", "enabled", "user_id", "created_at"]
        for name, encoding in (("py.csv", "utf-8"), ("py-bom.csv", "utf-8-sig")):
            with open(os.path.join(folder, name), "w", newline="", encoding=encoding) as f:
                writer = csv.writer(f)
                writer.writerow(columns)
                for record in records:
                    writer.writerow([record.get(c) for c in columns])
        with open(os.path.join(folder, "py.json"), "w", encoding="ascii") as f:
            json.dump(records, f)
        with open(os.path.join(folder, "py.jsonl"), "w", encoding="ascii") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
        """#

    @Test(
        "files written by Python's csv and json modules import with the values Python wrote",
        arguments: ["py.csv", "py-bom.csv", "py.json", "py.jsonl"])
    func pythonFiles(_ name: String) throws {
        let folder = try TemporaryFolder()
        let master = try SnapshotFixtures.master()
        let records: [[String: Any]] = SnapshotFixtures.samples.map { s in
            [
                "user_id": s.userID, "tool_id": s.toolID, "enabled": s.enabled, "created_at": s.createdAt,
                "updated_at": s.updatedAt, "api_key": s.key.map { $0 as Any } ?? NSNull()
            ]
        }
        let request = try JSONSerialization.data(withJSONObject: ["folder": folder.url.path, "records": records])
        let python = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", Self.pythonWriter], stdin: request)
        try #require(python.status == 0, "python3 failed: \(python.stderr)")

        let path = folder.path(name)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let format = try #require(SnapshotFormat(path: path))
        // The files have the shapes claimed: CRLF rows, a BOM, \u escapes with surrogate pairs.
        switch name {
        case "py.csv":
            #expect(bytes.starts(with: Array("api_key,updated_at".utf8)))
            #expect(String(decoding: bytes, as: UTF8.self).contains("\r\n"))
            #expect(String(decoding: bytes, as: UTF8.self).contains(",True,"))
        case "py-bom.csv":
            #expect(bytes.starts(with: [0xEF, 0xBB, 0xBF]))
        default:
            #expect(bytes.allSatisfy { $0 < 0x80 })
            #expect(String(decoding: bytes, as: UTF8.self).contains("\\ud83d\\udd11"))
        }

        let db = try SnapshotFixtures.SQLiteFile(folder)
        let report = try SnapshotFixtures.importFile(db, path, format, master: master)
        #expect(report.inserted == SnapshotFixtures.samples.count)
        #expect(report.integrityChecked == false)
        #expect(try db.plainRows(master) == SnapshotFixtures.sorted(SnapshotFixtures.samples.map(SnapshotFixtures.PlainRow.init)))
    }
}
