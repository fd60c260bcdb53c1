import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// `toolcfg check-backup`: a snapshot proved sound with no database, and every way a backup can
/// be damaged (cut anywhere, a field changed, a record moved, the wrong passphrase) refused with
/// 65 and where, never 0.
@Suite("Backup check")
struct BackupCheckTests {
    /// A database of `rows` rows with keys, exported as `name` with `keys`.
    final class Backups {
        let folder: TemporaryFolder
        let passphrase: String

        init(rows: Int = 40) throws {
            folder = try TemporaryFolder()
            passphrase = folder.path("passphrase")
            try Data("correct horse battery staple\n".utf8).write(to: URL(fileURLWithPath: passphrase))
            #expect(try toolcfg(["keygen", "--out", path("master.key")]).status == 0)
            #expect(try toolcfg(["migrate", "up", "--db", path("app.db")]).status == 0)
            var csv = "user_id,tool_id,enabled,api_key\n"
            for index in 0..<rows { csv += "user-\(index),tool-\(index % 3),\(index % 2),sk-\(index)\n" }
            try Data(csv.utf8).write(to: URL(fileURLWithPath: path("in.csv")))
            let imported = try toolcfg(["import", "--db", path("app.db"), "--in", path("in.csv"), "--master-key-file", path("master.key")])
            #expect(imported.status == 0, "\(imported.stderr)")
        }

        func path(_ name: String) -> String { folder.path(name) }

        func export(_ name: String, keys: KeyMode) throws -> String {
            var arguments = ["export", "--db", path("app.db"), "--out", path(name), "--keys", keys.rawValue, "--seal-memory", "8"]
            if keys == .sealed || keys == .plaintext { arguments += ["--master-key-file", path("master.key")] }
            if keys == .sealed { arguments += ["--passphrase-file", passphrase] }
            let result = try toolcfg(arguments)
            #expect(result.status == 0, "\(result.stderr)")
            return path(name)
        }

        func check(_ file: String, passphrase: Bool = true, extra: [String] = []) throws -> ProcessResult {
            try toolcfg(["check-backup", file] + (passphrase ? ["--passphrase-file", self.passphrase] : []) + extra)
        }
    }

    @Test(
        "a sound backup passes in every format and key mode, and the report counts it",
        arguments: [
            ("b.json", KeyMode.encrypted), ("b.jsonl", .encrypted), ("b.json", .sealed), ("b.jsonl", .sealed), ("b.jsonl", .omit)
        ])
    func soundBackups(name: String, keys: KeyMode) throws {
        let backups = try Backups()
        let file = try backups.export(name, keys: keys)
        let result = try backups.check(file, extra: ["--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(report?["records"] as? Int == 40 && report?["row_count"] as? Int == 40)
        #expect(report?["keyed_records"] as? Int == (keys == .omit ? 0 : 40))
        #expect(report?["sealed_keys_opened"] as? Int == (keys == .sealed ? 40 : 0))
        #expect(report?["keys"] as? String == keys.rawValue)
        // Without --json the same in words, on standard error.
        let human = try backups.check(file)
        #expect(
            human.status == 0 && human.stdout.isEmpty && human.stderr.contains("a sound toolcfg snapshot: 40 records"), "\(human.stderr)")
    }

    @Test("a backup cut at any byte is refused with 65, never passed", arguments: ["b.json", "b.jsonl"])
    func truncatedAnywhere(name: String) throws {
        let backups = try Backups(rows: 12)
        let whole = try Data(contentsOf: URL(fileURLWithPath: try backups.export(name, keys: .sealed)))
        var generator = SystemRandomNumberGenerator()
        // Every line end, and random cuts within lines.
        var cuts = whole.indices.filter { whole[$0] == UInt8(ascii: "\n") }.map { $0 + 1 }.filter { $0 < whole.count }
        cuts += (0..<12).map { _ in Int.random(in: 1..<whole.count, using: &generator) }
        // A cut that leaves out only the last line's end leaves every record whole (a random cut
        // there failed this test about once in 200 runs): not a truncation.
        let whitespace = Set(" \t\r\n".utf8)
        for cut in Set(cuts) where !whole[cut...].allSatisfy(whitespace.contains) {
            let file = backups.path("cut-\(cut).\(name.split(separator: ".").last!)")
            try whole.prefix(cut).write(to: URL(fileURLWithPath: file))
            let result = try backups.check(file)
            #expect(result.status == 65, "cut at \(cut) of \(whole.count): \(result.status) \(result.stderr)")
            #expect(result.stderr.hasPrefix("toolcfg: error: \(file)"), "\(result.stderr)")
        }
    }

    @Test("an altered record is refused: a moved sealed key names its line, other fields fail the digest")
    func alteredRecords() throws {
        let backups = try Backups(rows: 6)
        let file = try backups.export("b.jsonl", keys: .sealed)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(
            String.init)
        func variant(_ name: String, line: Int, _ change: (String) -> String) throws -> String {
            var copy = lines
            copy[line - 1] = change(copy[line - 1])
            #expect(copy != lines, "\(name): the change changed nothing")
            let path = backups.path(name)
            try Data(copy.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        // Line 1 is the header; record 3 is on line 4.
        let moved = try backups.check(try variant("moved.jsonl", line: 4) { $0.replacingOccurrences(of: "\"user-2\"", with: "\"user-9\"") })
        #expect(moved.status == 65 && moved.stderr.contains("moved.jsonl:4 (record 3): field sealed_api_key"), "\(moved.stderr)")
        let enabled = try backups.check(
            try variant("enabled.jsonl", line: 3) {
                $0.contains("\"enabled\":true")
                    ? $0.replacingOccurrences(of: "\"enabled\":true", with: "\"enabled\":false")
                    : $0.replacingOccurrences(of: "\"enabled\":false", with: "\"enabled\":true")
            })
        #expect(enabled.status == 65 && enabled.stderr.contains("field digest") && enabled.stderr.contains("altered"), "\(enabled.stderr)")
        let count = try backups.check(
            try variant("count.jsonl", line: lines.count - 1) {
                $0.replacingOccurrences(of: "\"row_count\":6", with: "\"row_count\":7")
            })
        #expect(count.status == 65 && count.stderr.contains("row_count"), "\(count.stderr)")
        let invalid = try backups.check(try variant("invalid.jsonl", line: 2) { $0.replacingOccurrences(of: "\"user-0\"", with: "\"\"") })
        #expect(invalid.status == 65 && invalid.stderr.contains("invalid.jsonl:2 (record 1): field user_id"), "\(invalid.stderr)")
    }

    @Test("what cannot be checked is refused: no passphrase (64), a wrong one, a file without header (65), no file (66)")
    func refusals() throws {
        let backups = try Backups(rows: 3)
        let sealed = try backups.export("b.json", keys: .sealed)
        let noPassphrase = try backups.check(sealed, passphrase: false)
        #expect(noPassphrase.status == 64 && noPassphrase.stderr.contains("--passphrase-file"), "\(noPassphrase.stderr)")
        try Data("another passphrase\n".utf8).write(to: URL(fileURLWithPath: backups.path("wrong")))
        let wrong = try toolcfg(["check-backup", sealed, "--passphrase-file", backups.path("wrong")])
        #expect(wrong.status == 65 && wrong.stderr.contains("the passphrase does not open this snapshot"), "\(wrong.stderr)")
        let csv = try backups.check(backups.path("in.csv"))
        #expect(csv.status == 65 && csv.stderr.contains("nothing proves it complete"), "\(csv.stderr)")
        let bare = backups.path("bare.jsonl")
        try Data("{\"user_id\":\"u\",\"tool_id\":\"t\"}\n".utf8).write(to: URL(fileURLWithPath: bare))
        #expect(try backups.check(bare).status == 65)
        #expect(try backups.check(backups.path("absent.json")).status == 66)
        // Standard input, with the format given.
        let piped = try toolcfg(
            ["check-backup", "-", "--format", "json", "--passphrase-file", backups.passphrase],
            stdin: try Data(contentsOf: URL(fileURLWithPath: sealed)))
        #expect(piped.status == 0, "\(piped.stderr)")
    }

    @Test("an import warns that a JSON Lines file without header and trailer proves nothing complete")
    func bareJSONLinesImportWarns() throws {
        let backups = try Backups(rows: 1)
        let bare = backups.path("bare.jsonl")
        try Data("{\"user_id\":\"u\",\"tool_id\":\"t\"}\n".utf8).write(to: URL(fileURLWithPath: bare))
        let imported = try toolcfg(["import", "--db", backups.path("app.db"), "--in", bare, "--json"])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr.contains("toolcfg: warning: \(bare) has no toolcfg header and trailer"), "\(imported.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(imported.stdout.utf8)) as? [String: Any]
        #expect((report?["warnings"] as? [String])?.count == 1)
        // A toolcfg snapshot carries both: no warning.
        let framed = try toolcfg(["import", "--db", backups.path("app.db"), "--in", try backups.export("b.jsonl", keys: .encrypted)])
        #expect(framed.status == 0 && !framed.stderr.contains("warning"), "\(framed.stderr)")
    }
}
