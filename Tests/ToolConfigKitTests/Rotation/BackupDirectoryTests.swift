import Foundation
import Synchronization
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// `rotate --backup-dir` / `--keep-backups`, the cleanup of a failed or interrupted rotation, and
/// SIGINT / SIGTERM during rotate and import (a test-only pause point, `TOOLCFG_TEST_PAUSE_AT`,
/// holds the process at a known place until the signal arrives: no timing).
@Suite("Backup directory")
struct BackupDirectoryTests {
    static let fingerprint = "0123456789abcdef"
    static let date = Date(timeIntervalSince1970: 1_767_225_600 + 3_723)  // 2026-01-01 01:02:03 UTC

    /// A keyed SQLite database with key files for its key and another.
    final class Scene {
        let folder: TemporaryFolder
        let old = MasterKey.generate(), new = MasterKey.generate()
        let database: KeyedDatabase
        let oldFile: String, newFile: String
        var db: String { database.path }
        var backups: String { folder.path("backups") }

        init(rows: Int = 40) throws {
            folder = try TemporaryFolder()
            database = try KeyedDatabase(at: folder.path("app.db"), master: old, rows: rows)
            oldFile = try RotationFixtures.keyFile(old, folder, "old.key")
            newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        }

        func rotate(_ extra: [String], old: String? = nil, new: String? = nil) throws -> ProcessResult {
            try toolcfg(RotationFixtures.rotateArguments(db, old: old ?? oldFile, new: new ?? newFile) + ["--json"] + extra)
        }

        func files(_ path: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        }
    }

    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    // MARK: the library type

    @Test("names: database, UTC time and fingerprint; a database name is made one file name; the pattern reads back only its own names")
    func naming() {
        let name = BackupDirectory.fileName(database: "bodhi", at: Self.date, fingerprint: Self.fingerprint, fileExtension: "db")
        #expect(name == "bodhi-20260101T010203Z-0123456789abcdef.db")
        #expect(
            BackupDirectory.fileName(database: "my db/x", at: Self.date, fingerprint: Self.fingerprint, fileExtension: "sql", sequence: 3)
                == "my_db_x-20260101T010203Z-0123456789abcdef-3.sql")
        #expect(
            BackupDirectory.entry(name, database: "bodhi", fileExtension: "db")
                == .init(name: name, timestamp: "20260101T010203Z", sequence: 1))
        #expect(
            BackupDirectory.entry("bodhi-20260101T010203Z-0123456789abcdef-2.db", database: "bodhi", fileExtension: "db")?.sequence == 2)
        for other in [
            "bodhi-20260101T010203Z-0123456789abcdef.sql", "bodhi-prod-20260101T010203Z-0123456789abcdef.db",
            "bodhi-20260101T010203Z-0123456789ABCDEF.db", "bodhi-2026010T010203Z-0123456789abcdef.db",
            "bodhi-20260101T010203Z-0123456789abcdef-1.db", "bodhi-20260101T010203Z-0123456789abcdef-x.db",
            "bodhi-notes.db", "bodhi.db", "xbodhi-20260101T010203Z-0123456789abcdef.db"
        ] {
            #expect(BackupDirectory.entry(other, database: "bodhi", fileExtension: "db") == nil, "\(other)")
        }
        #expect(
            BackupDirectory.entry("bodhi-prod-20260101T010203Z-0123456789abcdef.db", database: "bodhi-prod", fileExtension: "db") != nil)
    }

    @Test("a name taken gets -2, -3: the file there is never written over")
    func clash() throws {
        let folder = try TemporaryFolder()
        let directory = BackupDirectory(path: folder.path("b"))
        #expect(try directory.prepare() == [folder.path("b")])
        #expect(try Self.mode(folder.path("b")) == 0o700)
        let first = folder.path("b/app-20260101T010203Z-0123456789abcdef.db")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: first))
        var written: [String] = []
        for _ in 0..<2 {
            written.append(
                try directory.write(database: "app", at: Self.date, fingerprint: Self.fingerprint, fileExtension: "db") { path in
                    Glibc.close(try PrivateFile.create(path))
                })
        }
        #expect(
            written.map { ($0 as NSString).lastPathComponent }
                == ["app-20260101T010203Z-0123456789abcdef-2.db", "app-20260101T010203Z-0123456789abcdef-3.db"])
        #expect(try String(contentsOfFile: first, encoding: .utf8) == "keep me")
        // Another error than a taken name is not retried under another name.
        #expect(throws: (any Error).self) {
            try directory.write(database: "app", at: Self.date, fingerprint: Self.fingerprint, fileExtension: "db") { _ in
                throw UsageError("disk full")
            }
        }
        #expect(try directory.prepare().isEmpty, "an existing folder is not created again")
    }

    @Test("pruning keeps the newest N of the database and the run's own file, and touches nothing else")
    func pruning() throws {
        let folder = try TemporaryFolder()
        let directory = BackupDirectory(path: folder.path("b"))
        _ = try directory.prepare()
        func name(_ seconds: Double, sequence: Int = 1, database: String = "app", ext: String = "db") -> String {
            BackupDirectory.fileName(
                database: database, at: Self.date.addingTimeInterval(seconds), fingerprint: Self.fingerprint,
                fileExtension: ext, sequence: sequence)
        }
        let ours = [name(0), name(86_400), name(86_400, sequence: 2), name(2 * 86_400)]
        let others = [name(0, database: "other"), name(0, ext: "sql"), "app-notes.txt", "app-20260101T010203Z-key.db", "README"]
        for file in ours + others { try Data().write(to: URL(fileURLWithPath: folder.path("b/" + file))) }
        // A folder and a link with a backup's name are not backups.
        let linked = name(-86_400), folderNamed = name(-2 * 86_400)
        try FileManager.default.createSymbolicLink(atPath: folder.path("b/" + linked), withDestinationPath: folder.path("b/README"))
        try FileManager.default.createDirectory(atPath: folder.path("b/" + folderNamed), withIntermediateDirectories: false)

        #expect(try directory.backups(of: "app", fileExtension: "db").map(\.name) == ours)
        let pruned = directory.prune(database: "app", fileExtension: "db", keep: 2, current: folder.path("b/" + ours[3]))
        #expect(pruned.removed == Array(ours[0..<2]) && pruned.problems.isEmpty)
        #expect(
            Set(try FileManager.default.contentsOfDirectory(atPath: folder.path("b")))
                == Set(Array(ours[2...]) + others + [linked, folderNamed]))
        // The run's own file stays even when another name sorts after it.
        let again = directory.prune(database: "app", fileExtension: "db", keep: 1, current: folder.path("b/" + ours[2]))
        #expect(again.removed == [ours[3]])
    }

    // MARK: the command line, SQLite

    @Test(
        "--backup-dir creates the folder 0700 and a 0600 backup named for the database and the old key; the backup opens under the old key")
    func backupDirectory() throws {
        let scene = try Scene()
        let target = scene.folder.path("backups/nested")
        let run = try scene.rotate(["--backup-dir", target])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try RotationFixtures.json(run.stdout)
        #expect(report["backup_directory_created"] as? Bool == true && report["backups_removed"] == nil, "\(report)")
        let files = scene.files(target)
        #expect(files.count == 1)
        let file = try #require(files.first)
        #expect(file.hasPrefix("app-") && file.hasSuffix("-\(scene.old.fingerprint).db"), "\(file)")
        #expect(BackupDirectory.entry(file, database: "app", fileExtension: "db") != nil)
        #expect(report["backup_file"] as? String == target + "/" + file)
        #expect(try Self.mode(target) == 0o700 && Self.mode(scene.backups) == 0o700 && Self.mode(target + "/" + file) == 0o600)
        let backup = try toolcfg(["verify-keys", "--db", target + "/" + file, "--master-key-file", scene.oldFile])
        #expect(backup.status == 0, "\(backup.stderr)")
        try RotationFixtures.expectPlaintexts(scene.database, under: scene.new)

        // The same folder again: not created this time.
        let back = try scene.rotate(["--backup-dir", target], old: scene.newFile, new: scene.oldFile)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try RotationFixtures.json(back.stdout)["backup_directory_created"] as? Bool == false)
        #expect(scene.files(target).filter { $0.hasSuffix(".db") }.count == 2, "\(scene.files(target))")
    }

    @Test("--keep-backups N removes the database's older backups after the rotation, never other files")
    func keepBackups() throws {
        let scene = try Scene()
        var made: [String] = []
        for index in 0..<3 {
            let (old, new) = index % 2 == 0 ? (scene.oldFile, scene.newFile) : (scene.newFile, scene.oldFile)
            let run = try scene.rotate(["--backup-dir", scene.backups, "--keep-backups", "2"], old: old, new: new)
            #expect(run.status == 0, "\(run.stderr)")
            let report = try RotationFixtures.json(run.stdout)
            made.append(try #require(report["backup_file"] as? String))
            #expect(report["backups_removed"] as? [String] == (index < 2 ? [] : [(made[0] as NSString).lastPathComponent]), "\(report)")
            if index == 0 {
                for other in ["notes.txt", "other-20200101T000000Z-0123456789abcdef.db", "app-20200101T000000Z-0123456789abcdef.sql"] {
                    try Data().write(to: URL(fileURLWithPath: scene.backups + "/" + other))
                }
            }
        }
        #expect(
            scene.files(scene.backups)
                == (made[1...].map { ($0 as NSString).lastPathComponent }
                + ["app-20200101T000000Z-0123456789abcdef.sql", "notes.txt", "other-20200101T000000Z-0123456789abcdef.db"]).sorted())
        #expect(try toolcfg(["verify-keys", "--db", made[2], "--master-key-file", scene.oldFile]).status == 0)
    }

    @Test(
        """
        usage: --backup with --backup-dir, --keep-backups without --backup-dir or under 1 are refused (64); \
        a folder that cannot be made is 73; nothing changes
        """
    )
    func refusals() throws {
        let scene = try Scene()
        for (extra, status) in [
            (["--backup", scene.folder.path("x.db"), "--backup-dir", scene.backups], Int32(64)),
            (["--keep-backups", "2"], 64), (["--backup-dir", scene.backups, "--keep-backups", "0"], 64)
        ] {
            let run = try scene.rotate(extra)
            #expect(run.status == status, "\(extra): \(run.stderr)")
        }
        try Data().write(to: URL(fileURLWithPath: scene.folder.path("plain-file")))
        for target in [scene.folder.path("plain-file"), scene.folder.path("plain-file/below")] {
            let run = try scene.rotate(["--backup-dir", target])
            #expect(run.status == 73, "\(run.stderr)")
            #expect(try RotationFixtures.json(run.stdout)["exit_status"] as? Int == 73)
        }
        #expect(
            !FileManager.default.fileExists(atPath: scene.backups) && !FileManager.default.fileExists(atPath: scene.folder.path("x.db")))
        try RotationFixtures.expectPlaintexts(scene.database, under: scene.old)
    }

    @Test("a failed rotation removes the backup it started and the folder it made; the same command then succeeds")
    func failureRemovesTheBackup() throws {
        let scene = try Scene()
        let wrong = try RotationFixtures.keyFile(MasterKey.generate(), scene.folder, "wrong.key")
        for extra in [["--backup-dir", scene.backups + "/new"], ["--backup", scene.folder.path("before.db")]] {
            let failed = try scene.rotate(extra, old: wrong)
            #expect(failed.status == 65, "\(failed.stderr)")
            #expect(
                !FileManager.default.fileExists(atPath: scene.backups)
                    && !FileManager.default.fileExists(atPath: scene.folder.path("before.db")))
        }
        let run = try scene.rotate(["--backup", scene.folder.path("before.db")])
        #expect(run.status == 0, "\(run.stderr)")
    }

    // MARK: signals

    /// Runs toolcfg until it says it paused at `point`, sends `signal`, and waits for it to end.
    /// With `again`, once it says it resumed, sends the signal a second time. `input`, when given,
    /// is written to its standard input, which stays open (a stalled pipe) until it ends. A run
    /// that ends without pausing is recorded as an issue.
    static func interrupted(_ arguments: [String], at point: String, signal: Int32, again: Bool = false, input: String? = nil) throws
        -> ProcessResult
    {
        let process = Process()
        process.executableURL = Repository.toolcfg
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for name in ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE", "TOOLCFG_TEST_CRASH_AT"] {
            environment[name] = nil
        }
        environment["TOOLCFG_TEST_PAUSE_AT"] = point
        process.environment = environment
        let output = Pipe(), error = Pipe(), stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        process.standardOutput = output
        process.standardError = error
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        final class Box: @unchecked Sendable {
            var data = Data()
            let finished = Mutex(false)
        }
        let outputBox = Box()
        let done = DispatchSemaphore(value: 0)
        let outputHandle = output.fileHandleForReading
        Thread {
            outputBox.data = outputHandle.readDataToEndOfFile()
            done.signal()
        }.start()
        var errorData = Data()
        /// Reads standard error until `text`; false at its end without it.
        func readUntil(_ text: String) -> Bool {
            while errorData.range(of: Data(text.utf8)) == nil {
                let chunk = error.fileHandleForReading.availableData
                if chunk.isEmpty { return false }
                errorData.append(chunk)
            }
            return true
        }
        if readUntil("toolcfg-test: paused at \(point)\n") {
            kill(process.processIdentifier, signal)
            if again, readUntil("toolcfg-test: resumed at \(point)\n") {
                kill(process.processIdentifier, signal)
                // Only against a hang: a process the second signal did not end is killed (and
                // its status, SIGKILL's, fails the test) rather than waited for forever.
                let pid = process.processIdentifier, ended = outputBox
                DispatchQueue.global().asyncAfter(deadline: .now() + 120) { if !ended.finished.withLock({ $0 }) { kill(pid, SIGKILL) } }
            }
        } else {
            Issue.record("toolcfg ended without pausing at \(point): \(String(decoding: errorData, as: UTF8.self))")
        }
        errorData.append(error.fileHandleForReading.readDataToEndOfFile())
        process.waitUntilExit()
        outputBox.finished.withLock { $0 = true }
        try? stdin.fileHandleForWriting.close()
        done.wait()
        return ProcessResult(
            status: process.terminationStatus, stdout: String(decoding: outputBox.data, as: UTF8.self),
            stderr: String(decoding: errorData, as: UTF8.self))
    }

    enum PausePoint: String, CaseIterable {
        case afterBackup = "backup-written"
        case inWritePhase = "write-phase"
    }

    @Test(
        """
        SIGINT (130) or SIGTERM (143) before the commit: rolled back, the file byte-identical, no backup left; \
        the same command then succeeds
        """,
        arguments: PausePoint.allCases, [SIGINT, SIGTERM])
    func interruptedBeforeTheCommit(_ point: PausePoint, _ signal: Int32) throws {
        let scene = try Scene()
        var outputs: [JSONReportTests.Output] = []
        let before = try Data(contentsOf: URL(fileURLWithPath: scene.db))
        for backup in [["--backup-dir", scene.backups, "--keep-backups", "1"], ["--backup", scene.folder.path("before.db")]] {
            let arguments = RotationFixtures.rotateArguments(scene.db, old: scene.oldFile, new: scene.newFile) + ["--json"] + backup
            let run = try Self.interrupted(arguments, at: point.rawValue, signal: signal)
            let status: Int32 = signal == SIGINT ? 130 : 143
            #expect(run.status == status, "\(run.stderr)")
            #expect(
                run.stderr.contains("interrupted by \(signal == SIGINT ? "SIGINT" : "SIGTERM") before anything was committed"),
                "\(run.stderr)")
            let report = try RotationFixtures.json(run.stdout)
            #expect(report["ok"] as? Bool == false && report["exit_status"] as? Int == Int(status))
            outputs.append(.init(kind: "failure", arguments: arguments, result: run, json: run.stdout))
            #expect(try Data(contentsOf: URL(fileURLWithPath: scene.db)) == before)
            #expect(
                !FileManager.default.fileExists(atPath: scene.backups)
                    && !FileManager.default.fileExists(atPath: scene.folder.path("before.db")))
            try RotationFixtures.expectPlaintexts(scene.database, under: scene.old)
        }
        let rerun = try scene.rotate(["--backup", scene.folder.path("before.db")])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        outputs.append(.init(kind: "rotate", arguments: [], result: rerun, json: rerun.stdout))
        try JSONReportTests.validate(outputs)
        try RotationFixtures.expectPlaintexts(scene.database, under: scene.new)
    }

    @Test("a signal after the commit lets the rotation finish: exit 0, every secret under the new key, the backup kept")
    func signalAfterTheCommit() throws {
        let scene = try Scene()
        let arguments = RotationFixtures.rotateArguments(scene.db, old: scene.oldFile, new: scene.newFile) + ["--backup-dir", scene.backups]
        let run = try Self.interrupted(arguments, at: "database-committed", signal: SIGTERM)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("SIGTERM arrived after the commit: the command finished"), "\(run.stderr)")
        try RotationFixtures.expectPlaintexts(scene.database, under: scene.new)
        #expect(scene.files(scene.backups).count == 1)
    }

    @Test("a second signal ends an import waiting on a stalled pipe at once: exit 143, nothing written")
    func stalledImport() throws {
        let scene = try Scene(rows: 5)
        let before = try RotationFixtures.logicalState(scene.db)
        let rows = "user_id,tool_id,enabled\n" + (0..<20).map { "stalled-\($0),t,1\n" }.joined()
        let run = try Self.interrupted(
            ["import", "--db", scene.db, "--in", "-", "--format", "csv"], at: "import-reading", signal: SIGTERM,
            again: true, input: rows)
        #expect(run.status == 143, "\(run.stderr)")
        #expect(run.stderr.contains("interrupted by SIGTERM"), "\(run.stderr)")
        #expect(try RotationFixtures.logicalState(scene.db) == before)
    }

    @Test("an interrupted import rolls back: exit 130, nothing written")
    func interruptedImport() throws {
        let scene = try Scene(rows: 5)
        let csv = scene.folder.path("in.csv")
        try Data(("user_id,tool_id,api_key\n" + (0..<50).map { "new-\($0),tool,sk-new-\($0)\n" }.joined()).utf8).write(
            to: URL(fileURLWithPath: csv))
        let before = try Data(contentsOf: URL(fileURLWithPath: scene.db))
        let run = try Self.interrupted(
            ["import", "--db", scene.db, "--in", csv, "--master-key-file", scene.oldFile], at: "import-written", signal: SIGINT)
        #expect(run.status == 130, "\(run.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: scene.db)) == before)
        let again = try toolcfg(["import", "--db", scene.db, "--in", csv, "--master-key-file", scene.oldFile, "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try RotationFixtures.json(again.stdout)["inserted"] as? Int == 50)
    }
}

@Suite("Backup directory on PostgreSQL", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresBackupDirectoryTests {
    @Test(
        """
        --backup-dir on PostgreSQL: <database name>-<time>-<old key>.sql, pruned by --keep-backups; \
        SIGTERM in the write phase leaves the tables and the folder as they were
        """
    )
    func sqlBackups() throws {
        let folder = try TemporaryFolder()
        let old = MasterKey.generate(), new = MasterKey.generate()
        let database = try PostgresKeyedDatabase(master: old, rows: 20)
        defer { database.drop() }
        let backups = folder.path("backups")
        let before = try database.dump()
        let oldFile = try RotationFixtures.keyFile(old, folder, "old.key"), newFile = try RotationFixtures.keyFile(new, folder, "new.key")
        let arguments =
            RotationFixtures.rotateArguments(database.url.text, old: oldFile, new: newFile) + [
                "--backup-dir", backups, "--keep-backups", "1"
            ]
        let interrupted = try BackupDirectoryTests.interrupted(arguments, at: "write-phase", signal: SIGTERM)
        #expect(interrupted.status == 143, "\(interrupted.stderr)")
        #expect(try database.dump() == before)
        #expect(!FileManager.default.fileExists(atPath: backups))

        let run = try toolcfg(arguments + ["--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let name = try database.connection.queryText("SELECT current_database()") ?? ""
        let files = try FileManager.default.contentsOfDirectory(atPath: backups)
        #expect(files.count == 1 && files[0].hasPrefix(name + "-") && files[0].hasSuffix("-\(old.fingerprint).sql"), "\(files)")
        #expect(BackupDirectory.entry(files[0], database: name, fileExtension: "sql") != nil)
        try database.expectPlaintexts(under: new)

        let back = try toolcfg(
            RotationFixtures.rotateArguments(database.url.text, old: newFile, new: oldFile)
                + ["--backup-dir", backups, "--keep-backups", "1", "--json"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try RotationFixtures.json(back.stdout)["backups_removed"] as? [String] == files)
        let left = try FileManager.default.contentsOfDirectory(atPath: backups)
        #expect(left.count == 1 && left[0].hasSuffix("-\(new.fingerprint).sql"), "\(left)")
    }
}
