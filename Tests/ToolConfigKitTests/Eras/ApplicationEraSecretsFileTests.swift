import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension ApplicationEraTests {
    // MARK: 4. the secrets file's crash order

    enum CrashAt: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case staged = "secrets-file-staged"
        case committed = "database-committed"
        var testDescription: String { rawValue }
    }

    struct Launched {
        var killed: Bool
        var status: Int32
        var stderr: String
        /// From start to exit, in microseconds.
        var elapsed: Double
    }

    /// Runs toolcfg with `environment` added; `killAfter` microseconds, SIGKILLs it if it still runs.
    static func launch(
        _ arguments: [String], environment extra: [String: String] = [:], killAfter: UInt32? = nil,
        folder: TemporaryFolder
    ) throws -> Launched {
        var environment = ProcessInfo.processInfo.environment
        for name in ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE", "TOOLCFG_TEST_CRASH_AT"] {
            environment[name] = nil
        }
        environment.merge(extra) { _, new in new }
        let stderrPath = folder.path("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let process = Process()
        process.executableURL = Repository.toolcfg
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        let clock = ContinuousClock()
        let started = clock.now
        try process.run()
        if let killAfter {
            usleep(killAfter)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let elapsed = clock.now - started
        let killed = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
        return Launched(
            killed: killed, status: process.terminationStatus,
            stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "",
            elapsed: Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12)
    }

    @Test(
        """
        v0.0.45, SIGKILL at each crash point of rotate --secrets-file: the state left is the documented one, \
        and the same command again finishes it
        """,
        arguments: CrashAt.allCases)
    func secretsFileCrashOrder(_ point: CrashAt) throws {
        // 0660: a mode the usual umask (022) would cut, so a staged copy created without setting
        // its mode explicitly shows here.
        let installation = try Installation(.v45, .sqlite, secretsFileMode: 0o660)
        let new = MasterKey.generate()
        let newFile = try installation.keyFile(new, "new.key")
        let command = installation.rotate(from: installation.masterFile, to: newFile) + ["--secrets-file", installation.secretsFile]
        let side = installation.secretsFile + ".toolcfg-rotating"

        let crashed = try Self.launch(command, environment: ["TOOLCFG_TEST_CRASH_AT": point.rawValue], folder: installation.folder)
        #expect(
            crashed.killed,
            "rotate did not die of SIGKILL at \(point.rawValue) (a DEBUG build is needed): exit \(crashed.status): \(crashed.stderr)")
        switch point {
        case .staged:
            // Before the commit: the old key everywhere, the new file written beside the old one.
            try installation.expectPeerOpensEverything(under: installation.master, secretsFile: installation.secretsFile)
            #expect(FileManager.default.fileExists(atPath: side), "no \(side) after a crash once it was staged")
            if FileManager.default.fileExists(atPath: side) {
                // What was staged is the file under the new key, complete and synced.
                let staged = try installation.peer(new, secretsFile: side).report["secrets_file"] as? [String: Any]
                #expect(
                    staged?["opened"] as? Bool == true && staged?["digest"] as? String == installation.secretsManifest.digest,
                    "\(staged ?? [:])")
            }
        case .committed:
            // After the commit, before the rename: the database under the new key, the file under the old.
            try installation.expectPeerOpensEverything(under: new)
            let file =
                try installation.peer(installation.master, secretsFile: installation.secretsFile).report["secrets_file"] as? [String: Any]
            #expect(file?["opened"] as? Bool == true && file?["digest"] as? String == installation.secretsManifest.digest, "\(file ?? [:])")
        }
        #expect(Self.mode(installation.secretsFile) == 0o660)

        // The same command again, without the crash: everything under the new key.
        let rerun = try Self.launch(command, folder: installation.folder)
        #expect(!rerun.killed && rerun.status == 0, "the rerun: exit \(rerun.status): \(rerun.stderr)")
        try installation.expectPeerOpensEverything(under: new, secretsFile: installation.secretsFile)
        try installation.expectPeerOpensNothing(under: installation.master, secretsFile: installation.secretsFile)
        #expect(!FileManager.default.fileExists(atPath: side), "\(side) left behind after the rerun")
        #expect(
            Self.mode(installation.secretsFile) == 0o660,
            "the secrets file's mode changed from 660 to \(Self.octal(Self.mode(installation.secretsFile))) (umask on the staged copy?)"
        )
    }

    @Test(
        """
        v0.0.45, rotate --secrets-file killed at random moments: the file is never ahead of the database, \
        and a rerun always ends under one key
        """,
        .timeLimit(.minutes(3)))
    func secretsFileRandomKills() throws {
        let installation = try Installation(.v45, .sqlite)
        var old = installation.master, new = MasterKey.generate()
        var oldFile = installation.masterFile, newFile = try installation.keyFile(new, "new.key")
        let side = installation.secretsFile + ".toolcfg-rotating"
        func command(_ from: String, _ to: String) -> [String] {
            installation.rotate(from: from, to: to) + ["--secrets-file", installation.secretsFile]
        }

        // Uninterrupted runs there and back on a twin time the whole command; every later run that
        // does the whole work and is not killed times it again. The load of the tests beside this
        // one comes and goes (a run took 213 to 942 ms under AddressSanitizer), so the kills aim
        // at the median of the last five.
        let twin = try Installation(.v45, .sqlite)
        let twinNew = try twin.keyFile(new, "new.key")
        var timed = try [(twin.masterFile, twinNew), (twinNew, twin.masterFile)].map { from, to in
            let run = try Self.launch(twin.rotate(from: from, to: to) + ["--secrets-file", twin.secretsFile], folder: twin.folder)
            #expect(run.status == 0 && !run.killed, "\(run.stderr)")
            return run.elapsed
        }
        var whole: Double { timed.suffix(5).sorted()[(timed.suffix(5).count - 1) / 2] }

        /// Where the database's values and the file are: "old", "new" or "mixed".
        func where_() throws -> (database: String, file: String) {
            let result = try toolcfg([
                "verify-keys", "--db", installation.db, "--master-key-file", oldFile, "--new-master-key-file", newFile,
                "--secrets-file", installation.secretsFile, "--json"
            ])
            guard result.status == 0,
                let report = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            else {
                let reason = "verify-keys exited \(result.status): \(result.stderr)"
                return (reason, reason)
            }
            let groups = installation.manifest.groups, found = Self.groups(report)
            let allOld = groups.allSatisfy { found[$0.name]?["under_master_key"] as? Int == $0.values }
            let allNew = groups.allSatisfy { found[$0.name]?["under_new_master_key"] as? Int == $0.values }
            let file = (report["secrets_file"] as? [String: Any])?["under"] as? String
            return (
                allOld ? "old" : allNew ? "new" : "mixed: \(report["groups"] ?? "")",
                file == "master_key" ? "old" : file == "new_master_key" ? "new" : "\(file ?? "unreadable")"
            )
        }

        var log: [String] = []
        var killedRunning = 0
        // At least 8 rounds, and on until 3 kills landed while rotate ran (at most 20).
        var iterations = 0
        for iteration in 1...20 where iteration <= 8 || killedRunning < 3 {
            iterations = iteration
            // Odd runs are killed anywhere; even ones in the last sixth and a little beyond, where
            // the commit and the rename are.
            let wholeNow = max(5_000, whole)
            let delay = UInt32(
                iteration % 2 == 1
                    ? Double.random(in: 1_000...wholeNow)
                    : Double.random(in: wholeNow * 5 / 6...wholeNow * 1.1))
            let run = try Self.launch(command(oldFile, newFile), killAfter: delay, folder: installation.folder)
            if run.killed {
                killedRunning += 1
            } else {
                #expect(run.status == 0, "iteration \(iteration): exit \(run.status): \(run.stderr)")
                timed.append(run.elapsed)
            }
            let state = try where_()
            log.append(
                "\(iteration): \(delay / 1000) of \(Int(wholeNow) / 1000) ms, \(run.killed ? "killed" : "exited \(run.status)"), "
                    + "database \(state.database), file \(state.file)"
            )
            #expect(state.database == "old" || state.database == "new", "iteration \(iteration): \(state.database)")
            #expect(state.file == "old" || state.file == "new", "iteration \(iteration): the file is \(state.file)")
            #expect(
                !(state.file == "new" && state.database == "old"),
                "iteration \(iteration): the file was renamed before the database committed")

            let rerun = try Self.launch(command(oldFile, newFile), folder: installation.folder)
            #expect(!rerun.killed && rerun.status == 0, "iteration \(iteration), the rerun: exit \(rerun.status): \(rerun.stderr)")
            if state.database == "old" && state.file == "old" && rerun.status == 0 { timed.append(rerun.elapsed) }
            let after = try where_()
            #expect(
                after.database == "new" && after.file == "new",
                "iteration \(iteration), after the rerun: database \(after.database), file \(after.file)")
            #expect(!FileManager.default.fileExists(atPath: side), "iteration \(iteration): \(side) left behind")
            guard after.database == "new" && after.file == "new" else { break }
            swap(&old, &new)
            swap(&oldFile, &newFile)
        }
        print("secrets file kills: \(killedRunning) of \(iterations) killed while running; \(log.joined(separator: "; "))")
        #expect(killedRunning >= 2, "only \(killedRunning) of \(iterations) kills landed while rotate ran: \(log)")
        try installation.expectPeerOpensEverything(under: old, secretsFile: installation.secretsFile)
        #expect(Self.mode(installation.secretsFile) == 0o640)
    }
}
