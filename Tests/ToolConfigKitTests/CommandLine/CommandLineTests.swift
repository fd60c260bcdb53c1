import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

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
        #expect(human.stderr.contains("tools config") && human.stdout.isEmpty, "reports for people go to standard error")
        #expect(human.stderr.contains("1 applied, 0 pending"))

        let down = try toolcfg(["migrate", "down", "--db", db, "--steps", "1"])
        #expect(down.status == 0)
        #expect(down.stderr.contains("reverted 7"))
        let pending = try toolcfg(["migrate", "status", "--db", db])
        #expect(pending.stderr.contains("0 applied, 1 pending"))
    }

    @Test("--migrations DIR overrides the built-in files")
    func migrationsOverride() throws {
        let folder = try TemporaryFolder()
        let migrations = try migrationsFolder(
            folder, ["1_only.up.sql": "CREATE TABLE only_one (x);", "1_only.down.sql": "DROP TABLE only_one;"])
        let db = folder.path("o.db")
        #expect(try toolcfg(["migrate", "up", "--db", db, "--migrations", migrations]).status == 0)
        let connection = try SQLiteConnection(path: db)
        #expect(try connection.tableExists("only_one"))
        #expect(!(try connection.tableExists("user_tool_configs")))
    }

    @Test(
        "exit statuses: usage 64, bad data 65, missing input 66, busy 75",
        arguments: [
            (["migrate", "status"], 64),
            (["migrate", "down", "--db", "DB", "--to", "0", "--steps", "1"], 64),
            (["migrate", "status", "--db", "ABSENT"], 66),
            (["migrate", "status", "--db", "TEXT"], 65),
            (["migrate", "up", "--db", "DB", "--to", "99"], 64),
            (["migrate", "up", "--db", "DB", "--migrations", "ABSENT"], 66),
            (["frobnicate"], 64)
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
        try SQLiteConnection(path: db).execute(
            "INSERT INTO user_tool_configs (user_id, tool_id, enabled, created_at, updated_at) VALUES ('u', 't', 1, 1, 2)")
        let result = try toolcfg(["export", "--db", db, "--format", "jsonl", "--out", "-", "--json"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.first?.hasPrefix("{\"format\":\"toolcfg-snapshot\"") == true)
        let report = try JSONSerialization.jsonObject(with: Data(result.stderr.utf8)) as? [String: Any]
        #expect(report?["rows"] as? Int == 1)
    }

    @Test(
        """
        export --where FIELD=VALUE filters by user_id, tool_id or both (the last of a field wins, --tool is tool_id); \
        any other field is 64
        """,
        arguments: [
            (["--where", "user_id=u1"], ["u1/t1", "u1/t2"]),
            (["--where", "tool_id=t1"], ["u1/t1", "u2/t1", "with=sign/t1"]),
            (["--where", "user_id=u2", "--where", "tool_id=t1"], ["u2/t1"]),
            (["--where", "tool_id=t2", "--where", "tool_id=t1"], ["u1/t1", "u2/t1", "with=sign/t1"]),
            (["--tool", "t2"], ["u1/t2"]),
            (["--where", "user_id=with=sign"], ["with=sign/t1"]),
            (["--where", "id=1"], []), (["--where", "user_id"], [])
        ])
    func exportWhere(_ filter: [String], expected: [String]) throws {
        let folder = try TemporaryFolder()
        let db = folder.path("w.db")
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        try SQLiteConnection(path: db).execute(
            """
            INSERT INTO user_tool_configs (user_id, tool_id, enabled, created_at, updated_at) VALUES
              ('u1', 't1', 1, 1, 2), ('u1', 't2', 1, 1, 2), ('u2', 't1', 1, 1, 2), ('with=sign', 't1', 1, 1, 2)
            """)
        let result = try toolcfg(["export", "--db", db, "--format", "jsonl", "--out", "-", "--keys", "omit"] + filter)
        guard !expected.isEmpty else {
            #expect(result.status == 64 && result.stderr.contains("'user_id=VALUE' and 'tool_id=VALUE'"), "\(result.stderr)")
            return
        }
        #expect(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").dropFirst().dropLast().compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(rows.map { "\($0["user_id"] as? String ?? "")/\($0["tool_id"] as? String ?? "")" } == expected)
    }

    static let commands: [[String]] = [
        [], ["keygen"], ["migrate"], ["migrate", "up"], ["migrate", "down"], ["migrate", "status"], ["migrate", "verify"],
        ["export"], ["import"], ["rotate"], ["forget-old-key"], ["verify-keys"], ["stress"]
    ]

    @Test("--version prints the version; --generate-completion-script writes a script for the shell")
    func versionAndCompletion() throws {
        let version = try toolcfg(["--version"])
        #expect(version.status == 0 && version.stdout.split(separator: ".").count == 3, "\(version.stdout)")
        for shell in ["bash", "zsh", "fish"] {
            let script = try toolcfg(["--generate-completion-script", shell])
            #expect(script.status == 0 && script.stdout.contains("verify-keys"), "\(shell): \(script.stderr)")
        }
    }

    @Test("every command's help has examples, one default per option, no runs of spaces, and only the options that act")
    func help() throws {
        for command in Self.commands {
            let result = try toolcfg(command + ["--help"])
            #expect(result.status == 0, "\(command)")
            let text = result.stdout
            if command != ["migrate"] {
                #expect(
                    text.contains("Examples:\n  toolcfg ") || text.contains("Examples:\n  cat ")
                        || text.contains("Examples:\n  TOOLCFG_DB"), "\(command): no examples")
            }
            for line in text.split(separator: "\n") {
                #expect(line.ranges(of: "(default:").count <= 1, "\(command): \(line)")
                // An 80-column terminal shows every line whole, usage and examples included.
                #expect(line.count <= 80, "\(command): \(line.count) columns: \(line)")
            }
            // The prose (overview and discussion, before the examples) has no runs of spaces mid-sentence.
            let prose = text.components(separatedBy: "Examples:")[0].components(separatedBy: "USAGE:")[0]
            for line in prose.split(separator: "\n") {
                #expect(!line.drop { $0 == " " }.contains("  "), "\(command): \(line)")
            }
        }
        for command in [["rotate"], ["verify-keys"]] {
            #expect(try !toolcfg(command + ["--help"]).stdout.contains("--passphrase-file"), "\(command)")
        }
        for command in [["migrate", "status"], ["migrate", "verify"]] {
            let text = try toolcfg(command + ["--help"]).stdout
            #expect(!text.contains("--allow-dirty") && !text.contains("--allow-drift"), "\(command)")
        }
        #expect(try toolcfg(["migrate", "down", "--help"]).stdout.contains("--yes"))
    }

    @Test(
        "every error, ArgumentParser's or the tool's, starts with one prefix and shows no SQL",
        arguments: [
            ["frobnicate"], ["import", "--bogus"], ["migrate", "status"], ["rotate", "--db", "DB", "--jobs", "0"],
            ["migrate", "status", "--db", "TEXT"], ["export", "--db", "TEXT", "--out", "-", "--format", "csv"]
        ])
    func errorPrefix(_ arguments: [String]) throws {
        let folder = try TemporaryFolder()
        try Data("plain text, not a database at all; long enough for a header".utf8).write(to: URL(fileURLWithPath: folder.path("text")))
        let result = try toolcfg(arguments.map { $0 == "TEXT" ? folder.path("text") : $0 == "DB" ? folder.path("db") : $0 })
        #expect(result.status == 64 || result.status == 65, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("toolcfg: error: "), "\(result.stderr)")
        #expect(!result.stderr.contains("Error:"), "\(result.stderr)")
        for sql in ["SELECT", "sqlite_master", "PRAGMA", "preparing"] { #expect(!result.stderr.contains(sql), "\(result.stderr)") }
        if arguments.contains("TEXT") { #expect(result.stderr.contains("is not an SQLite database"), "\(result.stderr)") }
    }

    @Test(
        "a usage error found by a subcommand shows that subcommand's usage, not the root's",
        arguments: [
            (["migrate", "up"], "Usage: toolcfg migrate up ", "See 'toolcfg migrate up --help'"),
            (["export", "--db", "x.db", "--out", "-"], "Usage: toolcfg export ", "See 'toolcfg export --help'"),
            (["stress"], "Usage: toolcfg stress ", "See 'toolcfg stress --help'")
        ])
    func subcommandUsage(arguments: [String], usage: String, see: String) throws {
        let result = try toolcfg(arguments)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(usage) && result.stderr.contains(see), "\(result.stderr)")
        #expect(!result.stderr.contains("<subcommand>"), "\(result.stderr)")
    }

    @Test("a missing database says how one is made; migrate up says when it made one; counts and lock times read right")
    func newDatabaseAndWording() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("typo.db")
        let missing = try toolcfg(["export", "--db", db, "--out", "-", "--format", "csv"])
        #expect(
            missing.status == 66 && missing.stderr.contains("no such database file (toolcfg migrate up --db PATH creates a new one)"),
            "\(missing.stderr)")
        let created = try toolcfg(["migrate", "up", "--db", db])
        #expect(created.status == 0 && created.stderr.contains("created a new database file \(db)"), "\(created.stderr)")
        #expect(try !toolcfg(["migrate", "up", "--db", db]).stderr.contains("created"), "an existing file is not new")

        try Data("user_id,tool_id\nu1,t1\n".utf8).write(to: URL(fileURLWithPath: folder.path("one.csv")))
        let imported = try toolcfg(["import", "--db", db, "--in", folder.path("one.csv")])
        #expect(imported.stderr.contains("read 1 record: 1 inserted"), "\(imported.stderr)")
        // Both durations to the same precision: never a lock longer than the run it was part of.
        let lock = try #require(imported.stderr.firstMatch(of: /write lock held (\d+\.\d{3}) s of (\d+\.\d{3}) s/), "\(imported.stderr)")
        #expect(Double(lock.1)! <= Double(lock.2)!)
    }

    @Test("verify-keys names 20 rows per list by default, says how many more, and names all with --list 0")
    func verifyKeysLists() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("v.db"), key = folder.path("k"), other = folder.path("other")
        #expect(try toolcfg(["keygen", "--out", key]).status == 0 && toolcfg(["keygen", "--out", other]).status == 0)
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        try Data(("user_id,tool_id,api_key\n" + (0..<25).map { "u\($0),t,sk-\($0)\n" }.joined()).utf8).write(
            to: URL(fileURLWithPath: folder.path("in.csv")))
        #expect(try toolcfg(["import", "--db", db, "--in", folder.path("in.csv"), "--master-key-file", key]).status == 0)
        // Under the other key, every row is a problem.
        let some = try toolcfg(["verify-keys", "--db", db, "--master-key-file", other])
        #expect(some.status == 65 && some.stderr.components(separatedBy: "decrypts under no key given").count - 1 == 20, "\(some.stderr)")
        #expect(some.stderr.contains("and 5 more (--list 0 names every one"), "\(some.stderr)")
        let all = try toolcfg(["verify-keys", "--db", db, "--master-key-file", other, "--list", "0", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any]
        #expect(all.status == 65 && (report?["problems"] as? [Any])?.count == 25, "\(all.stdout)")
        #expect(try toolcfg(["verify-keys", "--db", db, "--master-key-file", other, "--list", "-1"]).status == 64)
    }

    @Test("--quiet silences messages but not errors")
    func quiet() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("q.db")
        #expect(try toolcfg(["migrate", "up", "--db", db]).stderr.contains("applied 7"))
        let quiet = try toolcfg(["migrate", "up", "--db", db, "--quiet"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        let key = try toolcfg(["keygen", "-q"])
        #expect(key.status == 0 && key.stderr.isEmpty && !key.stdout.isEmpty)
        let failing = try toolcfg(["migrate", "up", "--db", db, "--to", "99", "--quiet"])
        #expect(failing.status == 64 && failing.stderr.hasPrefix("toolcfg: error: "))
    }

    /// Runs toolcfg on a pseudo-terminal (util-linux's script), where its stderr is a TTY.
    static func onTerminal(_ arguments: [String]) throws -> ProcessResult {
        let command = ([Repository.toolcfg.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
        return try runProcess(
            URL(fileURLWithPath: "/usr/bin/script"), ["-q", "-e", "-c", command, "/dev/null"],
            removing: ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE"])
    }

    @Test("on a terminal, progress names its phase with total and percent, and is ended before the summary; --quiet draws none")
    func progressOnTerminal() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("t.db")
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        let connection = try SQLiteConnection(path: db)
        try connection.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO user_tool_configs (user_id, "
                + "tool_id, enabled, created_at, updated_at) SELECT 'u' || i, 't', 1, 1, 2 FROM n"
        )
        connection.close()

        let shown = try Self.onTerminal(["export", "--db", db, "--out", folder.path("out.csv"), "--verify"])
        #expect(shown.status == 0, "\(shown.stdout)")
        let screen = shown.stdout.replacingOccurrences(of: "\r\n", with: "\n")
        #expect(
            screen.contains("writing: 3,000 / 3,000 rows (100%)") || screen.contains("writing: 3,000 rows in"), "\(screen.debugDescription)"
        )
        #expect(screen.contains("\rverifying: 3,000 rows in "), "\(screen.debugDescription)")
        let summary = try #require(screen.range(of: "exported 3000 rows"), "\(screen.debugDescription)")
        #expect(screen[..<summary.lowerBound].hasSuffix("\n"), "the progress line runs into the summary: \(screen.debugDescription)")

        let quiet = try Self.onTerminal(["export", "--db", db, "--out", folder.path("out2.csv"), "--quiet"])
        #expect(quiet.status == 0 && quiet.stdout.isEmpty, "\(quiet.stdout.debugDescription)")
    }

    @Test("migrate down refuses with 64 to drop rows, names table and count; --dry-run shows the SQL; --yes goes ahead")
    func migrateDownGuard() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("g.db")
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        try SQLiteConnection(path: db).execute(
            "INSERT INTO user_tool_configs (user_id, tool_id, created_at, updated_at) VALUES ('u', 't', 1, 1), ('v', 't', 1, 1)")
        for extra in [[], ["--to", "0"], ["--steps", "1"]] {
            let refused = try toolcfg(["migrate", "down", "--db", db] + extra)
            #expect(refused.status == 64, "\(extra): \(refused.stderr)")
            #expect(refused.stderr.contains("drop user_tool_configs (2 rows)") && refused.stderr.contains("--yes"), "\(refused.stderr)")
        }
        let dryRun = try toolcfg(["migrate", "down", "--db", db, "--dry-run"])
        #expect(dryRun.status == 0)
        #expect(
            dryRun.stderr.contains("would revert 7") && dryRun.stderr.contains("    DROP TABLE IF EXISTS user_tool_configs;"),
            "\(dryRun.stderr)")
        #expect(dryRun.stderr.contains("would drop user_tool_configs: 2 rows"), "\(dryRun.stderr)")
        #expect(try toolcfg(["migrate", "status", "--db", db]).stderr.contains("1 applied"))
        let yes = try toolcfg(["migrate", "down", "--db", db, "--yes"])
        #expect(yes.status == 0 && yes.stderr.contains("dropped user_tool_configs: 2 rows"), "\(yes.stderr)")
        #expect(try toolcfg(["migrate", "status", "--db", db]).stderr.contains("0 applied, 1 pending"))
    }

    @Test("a CSV header without a required column is one error at its line, however many records follow")
    func missingColumnOnce() throws {
        let folder = try TemporaryFolder()
        let db = folder.path("c.db")
        #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
        let csv = folder.path("no-user.csv")
        try Data(("tool_id,enabled\n" + String(repeating: "t,1\n", count: 50)).utf8).write(to: URL(fileURLWithPath: csv))
        let result = try toolcfg(["import", "--db", db, "--in", csv, "--max-errors", "100"])
        #expect(result.status == 65)
        #expect(
            result.stderr == "toolcfg: error: \(csv):1: field user_id: the header has no user_id column, which every record needs\n",
            "\(result.stderr)")
    }
}
