import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The progress events operations send: named phases in order, totals known up front (rows
/// counted before the work, the input file's bytes), counts that only grow and end at the total.
@Suite("Progress events")
struct ProgressTests {
    final class Recorder {
        var events: [ProgressEvent] = []
        func record(_ event: ProgressEvent) { events.append(event) }

        /// Phases in the order they started.
        var phases: [ProgressEvent.Phase] {
            events.reduce(into: []) { phases, event in if phases.last != event.phase { phases.append(event.phase) } }
        }

        func of(_ phase: ProgressEvent.Phase) -> [ProgressEvent] { events.filter { $0.phase == phase } }

        /// Within the phase: one unit and one total throughout, counts that never go down, and
        /// the last at `end`.
        func expectSteady(
            _ phase: ProgressEvent.Phase, unit: ProgressEvent.Unit, total: Int?, end: Int,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            let events = of(phase)
            #expect(events.count >= 2, "\(phase): \(events)", sourceLocation: sourceLocation)
            #expect(events.allSatisfy { $0.unit == unit && $0.total == total }, "\(phase): \(events)", sourceLocation: sourceLocation)
            #expect(events.first?.done == 0, sourceLocation: sourceLocation)
            #expect(
                zip(events, events.dropFirst()).allSatisfy { $0.done <= $1.done }, "\(phase): \(events)", sourceLocation: sourceLocation)
            #expect(events.last?.done == end, "\(phase): \(events)", sourceLocation: sourceLocation)
        }
    }

    /// A migrated database with `rows` keyless rows over three tools.
    static func database(_ folder: TemporaryFolder, rows: Int) throws -> SQLiteConnection {
        try migratedDatabase(at: folder.path("p.db"), rows: (0..<rows).map { ("user-\($0)", "tool-\($0 % 3)") })
    }

    @Test(
        "export counts the rows up front, filter included, and counts them written, then verified", arguments: [nil, "tool-1"] as [String?])
    func export(tool: String?) throws {
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder, rows: 2500)
        let expected = tool == nil ? 2500 : 833
        let recorder = Recorder()
        let report = try Exporter(
            database: connection, options: .init(output: folder.path("out.jsonl"), format: .jsonl, toolID: tool, verify: true)
        )
        .run(progress: recorder.record)
        #expect(report.rows == expected)
        #expect(recorder.phases == [.writing, .verifying])
        recorder.expectSteady(.writing, unit: .rows, total: expected, end: expected)
        recorder.expectSteady(.verifying, unit: .rows, total: expected, end: expected)
    }

    @Test("import counts the input file's bytes, to its size, then rebuilds the indexes of an empty table", arguments: [false, true])
    func importBytes(filled: Bool) throws {
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder, rows: filled ? 10 : 0)
        var csv = "user_id,tool_id,enabled\n"
        for index in 0..<3000 { csv += "importer-\(index),tool-\(index % 7),\(index % 2)\n" }
        let path = folder.path("in.csv")
        try Data(csv.utf8).write(to: URL(fileURLWithPath: path))
        let recorder = Recorder()
        let report = try Importer(database: connection, options: .init(input: path, format: .csv)).run(progress: recorder.record)
        #expect(report.inserted == 3000)
        #expect(recorder.phases == (filled ? [.reading] : [.reading, .rebuildingIndexes]))
        recorder.expectSteady(.reading, unit: .bytes, total: csv.utf8.count, end: csv.utf8.count)
    }

    @Test("rotate names its phases: backup, deriving keys over the rows of every table counted first, writing, verifying")
    func rotate() throws {
        let folder = try TemporaryFolder()
        let old = try key(TestMasterKeys.valid), new = MasterKey.generate()
        let database = try KeyedDatabase(at: folder.path("r.db"), master: old, rows: 1200, noKey: { $0 % 100 != 0 })
        let total = 1200 + 3
        let recorder = Recorder()
        let options = KeyRotator.Options(oldKey: old, newKey: new, backupPath: folder.path("backup.db"), jobs: 2)
        _ = try KeyRotator(database: try database.connection(), options: options).run(progress: recorder.record)
        #expect(recorder.phases == [.backup, .derivingKeys, .writing, .verifying])
        recorder.expectSteady(.derivingKeys, unit: .rows, total: total, end: total)

        let checker = Recorder()
        let report = try KeyVerifier(database: try database.connection(.readOnly), masterKey: new, jobs: 2).run(progress: checker.record)
        #expect(report.ok)
        #expect(checker.phases == [.checkingKeys])
        checker.expectSteady(.checkingKeys, unit: .rows, total: total, end: total)
    }
}
