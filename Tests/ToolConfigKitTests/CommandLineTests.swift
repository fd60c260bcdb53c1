import Foundation
import Testing
@testable import ToolConfigKit

/// The `toolcfg` executable as scripts and cron jobs call it: flags, exit statuses, stdout/stderr.
@Suite("Command line")
struct CommandLineTests {
    @Test("keygen --out creates a 0600 key file and refuses to overwrite it")
    func keygenFile() throws {
        let folder = try TemporaryFolder()
        let path = folder.path("master.key")
        let first = try toolcfg(["keygen", "--out", path])
        #expect(first.status == 0)
        #expect(first.stdout.isEmpty)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let generated = try MasterKey(text: text, source: .file(path))
        #expect(first.stderr.contains(generated.fingerprint))
        #expect(!first.stderr.contains(generated.base64Text))

        let second = try toolcfg(["keygen", "--out", path])
        #expect(second.status == 74)
        #expect(second.stderr.contains("exists; use --force"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == text)

        let forced = try toolcfg(["keygen", "--out", path, "--force", "--json"])
        #expect(forced.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(forced.stdout.utf8)) as? [String: Any]
        let replaced = try MasterKey(text: try String(contentsOfFile: path, encoding: .utf8), source: .file(path))
        #expect(report?["master_key_fingerprint"] as? String == replaced.fingerprint)
        #expect(report?["master_key"] == nil)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
    }

    @Test("keygen without --out prints a usable key on stdout and its fingerprint on stderr")
    func keygenStdout() throws {
        let result = try toolcfg(["keygen"])
        #expect(result.status == 0)
        let generated = try MasterKey(text: result.stdout, source: .standardInput)
        #expect(result.stderr.contains(generated.fingerprint))
    }

    @Test("keygen --out refuses a symbolic link")
    func keygenSymlink() throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createSymbolicLink(atPath: folder.path("link"), withDestinationPath: folder.path("target"))
        let result = try toolcfg(["keygen", "--out", folder.path("link")])
        #expect(result.status != 0)
        #expect(!FileManager.default.fileExists(atPath: folder.path("target")))
    }

    @Test("migrate up, status, down from another working directory, with --json reports")
    func migrateCycle() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("cli.db")
        let up = try toolcfg(["migrate", "up", "--db", db, "--json"])
        #expect(up.status == 0, "\(up.stderr)")
        let upReport = try JSONSerialization.jsonObject(with: Data(up.stdout.utf8)) as? [String: Any]
        #expect(upReport?["applied_versions"] as? [Int] == [7])

        let status = try toolcfg(["migrate", "status", "--json"], environment: ["TOOLCFG_DB": db])
        #expect(status.status == 0)
        let statusReport = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let entries = statusReport?["entries"] as? [[String: Any]]
        #expect(entries?.first?["state"] as? String == "applied")

        let human = try toolcfg(["migrate", "status", "--db", db])
        #expect(human.stdout.contains("tools config"))
        #expect(human.stdout.contains("1 applied, 0 pending"))

        let down = try toolcfg(["migrate", "down", "--db", db, "--steps", "1"])
        #expect(down.status == 0)
        #expect(down.stderr.contains("reverted 7"))
        let pending = try toolcfg(["migrate", "status", "--db", db])
        #expect(pending.stdout.contains("0 applied, 1 pending"))
    }

    @Test("--migrations DIR overrides the built-in files")
    func migrationsOverride() throws {
        let folder = try TemporaryFolder()
        let migrations = try migrationsFolder(folder, ["1_only.up.sql": "CREATE TABLE only_one (x);", "1_only.down.sql": "DROP TABLE only_one;"])
        let db = folder.path("o.db")
        #expect(try toolcfg(["migrate", "up", "--db", db, "--migrations", migrations]).status == 0)
        let connection = try SQLiteConnection(path: db)
        #expect(try connection.tableExists("only_one"))
        #expect(!(try connection.tableExists("user_tool_configs")))
    }

    @Test("exit statuses: usage 64, bad data 65, missing input 66, busy 75", arguments: [
        (["migrate", "status"], 64),
        (["migrate", "down", "--db", "DB", "--to", "0", "--steps", "1"], 64),
        (["migrate", "status", "--db", "ABSENT"], 66),
        (["migrate", "status", "--db", "TEXT"], 65),
        (["migrate", "up", "--db", "DB", "--to", "99"], 64),
        (["migrate", "up", "--db", "DB", "--migrations", "ABSENT"], 66),
        (["frobnicate"], 64),
    ] as [([String], Int32)])
    func exitStatuses(_ arguments: [String], expected: Int32) throws {
        let folder = try TemporaryFolder()
        try Data("plain text, not a database at all; long enough for a header".utf8).write(to: folder.url.appendingPathComponent("text"))
        let resolved = arguments.map { argument in
            switch argument {
            case "DB": folder.path("db")
            case "ABSENT": folder.path("absent")
            case "TEXT": folder.path("text")
            default: argument
            }
        }
        let result = try toolcfg(resolved)
        #expect(result.status == expected, "\(resolved): \(result.stderr)")
        #expect(!result.stderr.isEmpty)
    }

    @Test("a writer blocked past --busy-timeout exits 75")
    func busyExit() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("busy.db")
        let holder = try SQLiteConnection(path: db, mode: .readWriteCreate)
        try holder.execute("BEGIN IMMEDIATE; CREATE TABLE lock_holder (x);")
        let result = try toolcfg(["migrate", "up", "--db", db, "--busy-timeout", "0.2"])
        #expect(result.status == 75, "\(result.stderr)")
        try holder.execute("ROLLBACK")
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
    }

    @Test("a drifted database is refused with exit 65 and allowed with --allow-drift")
    func driftExit() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("d.db")
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        try SQLiteConnection(path: db).execute("UPDATE _sqlx_migrations SET checksum = x'00'")
        let refused = try toolcfg(["migrate", "down", "--db", db])
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("--allow-drift"))
        #expect(try toolcfg(["migrate", "down", "--db", db, "--allow-drift"]).status == 0)
    }

    @Test("export --out - --json keeps the data on stdout and puts the report on stderr")
    func exportReportWithDataOnStdout() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("r.db")
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        try SQLiteConnection(path: db).execute("INSERT INTO user_tool_configs (user_id, tool_id, enabled, created_at, updated_at) VALUES ('u', 't', 1, 1, 2)")
        let result = try toolcfg(["export", "--db", db, "--format", "jsonl", "--out", "-", "--json"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.first?.hasPrefix("{\"format\":\"toolcfg-snapshot\"") == true)
        let report = try JSONSerialization.jsonObject(with: Data(result.stderr.utf8)) as? [String: Any]
        #expect(report?["rows"] as? Int == 1)
    }
}
