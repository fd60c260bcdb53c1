import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// contrib/systemd/toolcfg-rotate-docker, the monthly rotation of a Docker installation, run as
/// its timer runs it against a stand-in application (scripts/peers/stand_in_app.py) that takes its key
/// from the env file at start and writes secrets under it every 20 ms.
@Suite("Scheduled rotation")
struct ScheduledRotationTests {
    /// An installation: the database, the env file the container reads, the folders the script
    /// keeps its state and backups in, and the stand-in application.
    final class Installation {
        let folder: TemporaryFolder
        var db: String { folder.path("bodhi.sqlite") }
        var keyFile: String { folder.path("encryption-key.env") }
        var state: String { folder.path("state") }
        var backups: String { folder.path("backups") }
        var app: String { folder.path("app") }
        static let script = Repository.root.appendingPathComponent("contrib/systemd/toolcfg-rotate-docker")
        static let standIn = Repository.scripts.appendingPathComponent("peers/stand_in_app.py").path

        init(rows: Int = 30) throws {
            folder = try TemporaryFolder()
            try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
            let text = try toolcfg(["keygen", "--form", "text"])
            #expect(text.status == 0, "\(text.stderr)")
            // A compose env file: the switch must keep its other lines.
            try Data(
                ("# bodhi\nBODHI_LOG_LEVEL=info\n"
                    + "BODHI_ENCRYPTION_KEY=\(text.stdout.trimmingCharacters(in: .whitespacesAndNewlines))\nBODHI_PORT=1135\n").utf8
            )
            .write(to: URL(fileURLWithPath: keyFile))
            #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
            let csv = "user_id,tool_id,api_key\n" + (0..<rows).map { "user-\($0),tool,sk-\($0)\n" }.joined()
            try Data(csv.utf8).write(to: URL(fileURLWithPath: folder.path("in.csv")))
            let imported = try toolcfg(["import", "--db", db, "--in", folder.path("in.csv"), "--master-key-text-file", keyFile])
            #expect(imported.status == 0, "\(imported.stderr)")
        }

        func standIn(_ command: String) -> String {
            "python3 '\(Self.standIn)' \(command) '\(db)' '\(keyFile)' '\(app)'"
        }

        /// Runs the script as the timer does, with `restart` as the command that recreates the
        /// container.
        func rotate(restart: String? = nil, keep: Int = 6) throws -> ProcessResult {
            try runProcess(
                URL(fileURLWithPath: "/bin/bash"), [Self.script.path],
                environment: [
                    "TOOLCFG": Repository.toolcfg.path, "TOOLCFG_DB": db, "BODHI_KEY_ENV_FILE": keyFile,
                    "RESTART_COMMAND": restart ?? standIn("restart"), "BACKUP_DIR": backups, "KEEP_BACKUPS": String(keep),
                    "STATE_DIR": state
                ])
        }

        func verify() throws -> ProcessResult {
            try toolcfg(["verify-keys", "--db", db, "--master-key-text-file", keyFile, "--json"])
        }

        func files(_ folder: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        }
    }

    @Test("a monthly run beside the live application leaves every secret, its writes included, under the new key")
    func beside() throws {
        let installation = try Installation()
        #expect(try runProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", installation.standIn("start")]).status == 0)
        defer { _ = try? runProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", installation.standIn("stop")]) }
        let before = try String(contentsOfFile: installation.keyFile, encoding: .utf8)
        let first = try installation.rotate()
        #expect(first.status == 0, "\(first.stderr)")
        let after = try String(contentsOfFile: installation.keyFile, encoding: .utf8)
        #expect(after != before, "the env file was switched")
        #expect(
            after.hasPrefix("# bodhi\nBODHI_LOG_LEVEL=info\nBODHI_ENCRYPTION_KEY=") && after.hasSuffix("\nBODHI_PORT=1135\n"),
            "its other lines kept: \(after.count) characters")
        #expect(first.stderr.contains("catching up") && first.stderr.contains("done: every secret is under the key"), "\(first.stderr)")
        // One backup, named for the database and the old key, which is kept beside it.
        let backups = installation.files(installation.backups)
        #expect(backups.count == 1 && backups[0].hasPrefix("bodhi-") && backups[0].hasSuffix(".db"), "\(backups)")
        let kept = installation.files(installation.state + "/previous-keys")
        #expect(kept.count == 1 && backups[0].hasSuffix("-\(kept[0].dropLast(4)).db"), "\(kept) \(backups)")
        #expect(!FileManager.default.fileExists(atPath: installation.state + "/rotation"))

        // The application keeps writing under the new key after its restart; stop it, then check.
        Thread.sleep(forTimeInterval: 0.3)
        _ = try runProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", installation.standIn("stop")])
        let verified = try installation.verify()
        #expect(verified.status == 0, "\(verified.stdout)")
        let report = try JSONSerialization.jsonObject(with: Data(verified.stdout.utf8)) as? [String: Any]
        let rows = ((report?["groups"] as? [[String: Any]])?.first?["rows"] as? Int) ?? 0
        #expect(rows > 30, "the stand-in's rows are counted too: \(rows)")
        let log = (try? String(contentsOfFile: installation.app + "/log", encoding: .utf8)) ?? ""
        let writes = ((try? String(contentsOfFile: installation.app + "/writes", encoding: .utf8)) ?? "").split(separator: "\n").compactMap
        { Int($0) }
        #expect(writes.count == 2 && writes.allSatisfy { $0 > 0 }, "it wrote before and after its restart: \(writes); its log: \(log)")

        // Next month: a new key again; with one backup kept, the first and its old key go.
        let second = try installation.rotate(restart: "true", keep: 1)
        #expect(second.status == 0, "\(second.stderr)")
        let now = installation.files(installation.backups)
        #expect(now.count == 1 && now != backups, "\(now)")
        #expect(
            installation.files(installation.state + "/previous-keys") == [String(now[0].split(separator: "-").last!.dropLast(3)) + ".env"],
            "\(installation.files(installation.state + "/previous-keys"))")
        #expect(try installation.verify().status == 0)
    }

    @Test("a second run while one holds the lock is refused with 75 and changes nothing")
    func oneAtATime() throws {
        let installation = try Installation(rows: 5)
        try FileManager.default.createDirectory(atPath: installation.state, withIntermediateDirectories: true)
        let before = try String(contentsOfFile: installation.keyFile, encoding: .utf8)
        // flock(1) holds the script's lock file while the second run starts.
        let holder = try runProcess(
            URL(fileURLWithPath: "/usr/bin/flock"),
            [
                installation.state + "/lock", "-c",
                "TOOLCFG='\(Repository.toolcfg.path)' TOOLCFG_DB='\(installation.db)' BODHI_KEY_ENV_FILE='\(installation.keyFile)' "
                    + "RESTART_COMMAND=true BACKUP_DIR='\(installation.backups)' STATE_DIR='\(installation.state)' bash "
                    + "'\(Installation.script.path)'"
            ])
        #expect(holder.status == 75, "\(holder.stderr)")
        #expect(holder.stderr.contains("another rotation is running"), "\(holder.stderr)")
        #expect(try String(contentsOfFile: installation.keyFile, encoding: .utf8) == before)
        #expect(installation.files(installation.backups).isEmpty)
    }

    @Test("a run that fails after the switch (the container does not come back) is finished by the next")
    func interruptedAfterTheSwitch() throws {
        let installation = try Installation(rows: 5)
        let failed = try installation.rotate(restart: "exit 3")
        #expect(failed.status != 0, "\(failed.stderr)")
        #expect(FileManager.default.fileExists(atPath: installation.state + "/rotation/new.env"))
        // The database and the env file already hold the new key; the old one waits for the catch-up.
        #expect(try installation.verify().status == 0)
        let rerun = try installation.rotate(restart: "true")
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("already holds the new key"), "\(rerun.stderr)")
        #expect(installation.files(installation.backups).count == 1, "no second rotation, no second backup")
        #expect(!FileManager.default.fileExists(atPath: installation.state + "/rotation"))
    }

    @Test("a run killed at any step leaves a state that the next run finishes", arguments: [0.05, 0.2, 0.4, 0.7, 1.0])
    func killedAnywhere(after seconds: Double) throws {
        let installation = try Installation(rows: 200)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Installation.script.path]
        process.environment = ProcessInfo.processInfo.environment.merging([
            "TOOLCFG": Repository.toolcfg.path, "TOOLCFG_DB": installation.db, "BODHI_KEY_ENV_FILE": installation.keyFile,
            "RESTART_COMMAND": "sleep 0.3", "BACKUP_DIR": installation.backups, "STATE_DIR": installation.state
        ]) { _, new in new }
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: seconds)
        // Foundation starts the script in a process group of its own: killed with everything it
        // started (toolcfg, the restart command), as a power cut or `systemctl kill` would.
        let group = getpgid(process.processIdentifier)
        #expect(group == process.processIdentifier || group == -1, "-1: it had already ended")
        kill(-process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let rerun = try installation.rotate(restart: "true")
        #expect(rerun.status == 0, "killed after \(seconds) s: \(rerun.stderr)")
        #expect(try installation.verify().status == 0, "killed after \(seconds) s")
    }
}
