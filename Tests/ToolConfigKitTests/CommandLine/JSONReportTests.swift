import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The --json contract, on the real command line: every command's report, succeeding and
/// failing, is one JSON object valid against schemas/report.schema.json (checked by Python's
/// jsonschema through scripts/ci/check_reports.py), with "ok", and on failure the exit status the
/// process exits with and the message it prints on stderr.
@Suite("JSON reports")
struct JSONReportTests {
    /// One command's output and what it must be.
    struct Output {
        var kind: String?
        var arguments: [String]
        var result: ProcessResult
        var json: String
    }

    /// A database with two rows under `mk`, a second key `mk2`, and the files the commands use.
    final class Scene {
        let folder: TemporaryFolder
        let db: String
        var outputs: [Output] = []

        init() throws {
            folder = try TemporaryFolder()
            db = folder.path("app.db")
            try Data("user_id,tool_id,api_key\nu1,t1,sk-one\nu2,t1,sk-two\n".utf8).write(to: URL(fileURLWithPath: path("plain.csv")))
            try Data("user_id,tool_id,enabled\n,t1,1\nu2,,1\nu3,t3,maybe\n".utf8).write(to: URL(fileURLWithPath: path("bad.csv")))
        }

        func path(_ name: String) -> String { folder.path(name) }

        /// Runs toolcfg (with --json added) and keeps its JSON output: stdout, or stderr when
        /// standard output carries the data.
        @discardableResult
        func run(_ kind: String?, _ arguments: [String], status: Int32 = 0, reportOnStandardError: Bool = false) throws -> [String: Any] {
            let result = try toolcfg(arguments + ["--json"])
            #expect(result.status == status, "\(arguments): \(result.stderr)")
            let json = reportOnStandardError ? result.stderr : result.stdout
            outputs.append(Output(kind: kind, arguments: arguments, result: result, json: json))
            let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
            #expect(object?["ok"] as? Bool == (status == 0), "\(arguments): \(json)")
            if status != 0 {
                // The process's status, and the message it printed on stderr.
                #expect(object?["exit_status"] as? Int == Int(status), "\(arguments): \(json)")
                let message = (object?["error"] as? [String: Any])?["message"] as? String
                #expect(message.map { result.stderr.contains("toolcfg: error: " + $0) } == true, "\(arguments): \(result.stderr)")
            }
            return object ?? [:]
        }
    }

    /// Feeds every output to scripts/ci/check_reports.py; its problems become this test's issues.
    static func validate(_ outputs: [Output]) throws {
        let cases = outputs.map { ["kind": $0.kind ?? NSNull(), "output": $0.json] as [String: Any] }
        let python = URL(fileURLWithPath: "/usr/bin/env")
        let result = try runProcess(
            python, ["python3", Repository.scripts.appendingPathComponent("ci/check_reports.py").path],
            stdin: try JSONSerialization.data(withJSONObject: cases))
        #expect(result.status == 0, "schema check failed:\n\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("\(outputs.count) output(s) checked, 0 problem(s)"), "\(result.stderr)")
    }

    @Test("every command's --json report, succeeding or failing, is valid against the schema")
    func everyReportMatchesTheSchema() throws {
        let scene = try Scene()
        let db = scene.db
        let mk = scene.path("mk"), mk2 = scene.path("mk2")
        try scene.run("keygen", ["keygen", "--out", mk])
        try scene.run("keygen", ["keygen", "--out", mk2])
        try scene.run("keygen", ["keygen"])
        try scene.run("migrate-run", ["migrate", "up", "--db", db])
        try scene.run("migrate-status", ["migrate", "status", "--db", db])
        try scene.run("import", ["import", "--db", db, "--in", scene.path("plain.csv"), "--master-key-file", mk, "--dry-run"])
        try scene.run("import", ["import", "--db", db, "--in", scene.path("plain.csv"), "--master-key-file", mk])
        try scene.run("export", ["export", "--db", db, "--out", scene.path("backup.json"), "--verify"])
        try scene.run("export", ["export", "--db", db, "--format", "csv", "--out", "-", "--keys", "omit"], reportOnStandardError: true)
        try scene.run("check-backup", ["check-backup", scene.path("backup.json")])
        try scene.run("failure", ["check-backup", scene.path("plain.csv")], status: 65)
        try scene.run("verify-keys", ["verify-keys", "--db", db, "--master-key-file", mk, "--new-master-key-file", mk2])
        try scene.run("rotate", ["rotate", "--db", db, "--master-key-file", mk, "--new-master-key-file", mk2, "--dry-run"])
        try scene.run(
            "rotate", ["rotate", "--db", db, "--master-key-file", mk, "--new-master-key-file", mk2, "--backup", scene.path("before.db")])
        try scene.run("failure", ["rotate", "--db", db, "--master-key-file", mk2, "--new-master-key-file", mk, "--make-room"], status: 64)
        // A check that runs to the end and fails keeps its report beside the error.
        let notOK = try scene.run("verify-keys", ["verify-keys", "--db", db, "--master-key-file", mk], status: 65)
        let problems = notOK["problems"] as? [[String: Any]]
        #expect(
            problems?.count == 2 && problems?.allSatisfy { $0["row_id"] is Int && $0["table"] as? String == "user_tool_configs" } == true)
        try scene.run(
            "rotate",
            [
                "rotate", "--db", db, "--master-key-file", mk2, "--new-master-key-file", mk, "--backup-dir", scene.path("backups"),
                "--keep-backups", "1"
            ])
        try scene.run(
            "failure",
            ["rotate", "--db", db, "--master-key-file", mk, "--new-master-key-file", mk2, "--backup-dir", scene.path("plain.csv")],
            status: 73)
        // Triples exported under mk, now rewritten under fresh salts: unchecked updates into a keyed table.
        try scene.run("failure", ["import", "--db", db, "--in", scene.path("backup.json")], status: 64)
        try scene.run("migrate-verify", ["migrate", "verify", "--fixtures", Repository.root.appendingPathComponent("fixtures").path])
        try scene.run("migrate-run", ["migrate", "down", "--db", db, "--dry-run"])
        try scene.run("failure", ["migrate", "down", "--db", db], status: 64)
        try scene.run("migrate-run", ["migrate", "down", "--db", db, "--yes"])

        let scratch = scene.path("scratch.db")
        #expect(try toolcfg(["migrate", "up", "--db", scratch]).status == 0)
        try scene.run("stress", ["stress", "--db", scratch, "--writers", "2", "--ops", "30", "--seed", "1"])
        try scene.run(
            "stress", ["stress", "--db", scratch, "--writers", "2", "--ops", "60", "--seed", "1", "--upsert", "wrong-replace"], status: 65)

        // Failures before any report: usage (ArgumentParser's own and ours), missing input, I/O, bad data.
        try scene.run("failure", ["import", "--db", db, "--bogus"], status: 64)
        try scene.run("failure", ["migrate", "down", "--db", db, "--to", "0", "--steps", "1"], status: 64)
        try scene.run("failure", ["migrate", "status", "--db", scene.path("absent.db")], status: 66)
        try scene.run("failure", ["keygen", "--out", mk], status: 74)
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        let many = try scene.run("failure", ["import", "--db", db, "--in", scene.path("bad.csv"), "--max-errors", "5"], status: 65)
        let error = many["error"] as? [String: Any]
        #expect((error?["errors"] as? [[String: Any]])?.map { $0["line"] as? Int } == [2, 3, 4], "\(many)")
        #expect(
            error?["file"] as? String == scene.path("bad.csv") && error?["line"] as? Int == 2 && error?["field"] as? String == "user_id")

        try Self.validate(scene.outputs)
    }

    @Test("the schema bites: reports with an old field name, a string row id or no ok are refused")
    func schemaRefusesOldShapes() throws {
        let fingerprint = "0123456789abcdef"
        let cases: [(String, String)] = [
            ("keygen", #"{"ok": true, "file": "k", "fingerprint": "\#(fingerprint)"}"#),
            ("keygen", #"{"file": "k", "master_key_fingerprint": "\#(fingerprint)"}"#),
            ("failure", #"{"ok": false, "exit_status": 65, "error": {"message": "x", "row_id": "row id 1"}}"#),
            ("failure", #"{"ok": false, "exit_status": 65}"#),
            (
                "migrate-status",
                #"{"ok": true, "database": "a.db", "migrations": "built in", "ledger_exists": true, "entries": "#
                    + #"[{"version": 7, "description": "d", "state": "applied", "reversible": true, "execution_time_nanoseconds": 5}]}"#
            )
        ]
        for (kind, json) in cases {
            let python = URL(fileURLWithPath: "/usr/bin/env")
            let input = try JSONSerialization.data(withJSONObject: [["kind": kind, "output": json]])
            let result = try runProcess(
                python, ["python3", Repository.scripts.appendingPathComponent("ci/check_reports.py").path], stdin: input)
            #expect(result.status == 1, "accepted: \(json)")
        }
    }

    @Test("a missing master key exits 64 from every command that needs one, with the same message")
    func missingMasterKey() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("m.db")
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        let csv = folder.path("plain.csv")
        try Data("user_id,tool_id,api_key\nu1,t1,sk-one\n".utf8).write(to: URL(fileURLWithPath: csv))
        let commands: [[String]] = [
            ["import", "--db", db, "--in", csv],
            ["export", "--db", db, "--out", folder.path("x.csv"), "--keys", "plaintext"],
            ["rotate", "--db", db],
            ["verify-keys", "--db", db]
        ]
        for command in commands {
            let result = try toolcfg(command)
            #expect(result.status == 64, "\(command): \(result.stderr)")
            #expect(
                result.stderr.hasPrefix("toolcfg: error: ") && result.stderr.contains("--master-key-file"), "\(command): \(result.stderr)")
        }
    }
}
