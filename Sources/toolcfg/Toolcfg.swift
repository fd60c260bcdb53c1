import ArgumentParser
import Foundation
import ToolConfigKit

@main
struct Toolcfg: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "toolcfg",
        abstract: "Operate on the per-user tool settings of an application's SQLite database.",
        discussion: help(
            """
            Secrets never travel in argv: the master key comes from --master-key-file PATH (base64; \
            - for standard input) or TOOLCFG_MASTER_KEY, --master-key-env NAME or \
            --master-key-text-file PATH (the application's BODHI_ENCRYPTION_KEY text), or \
            --master-key-keyring [SERVICE] (the application's keyring entry). --db also reads TOOLCFG_DB. Row keys (PBKDF2) \
            are derived on the kernel measured fastest on this CPU at the first derivation (a few \
            milliseconds); TOOLCFG_PBKDF2_KERNEL=scalar|sha-ni-x2|avx512-x16 names one instead, for \
            benchmarks (an unknown or unsupported name is ignored). With --json every \
            command prints one JSON object on standard output, "ok": false with the exit status \
            and the error when it fails. Exit status follows sysexits.h: 64 usage, 65 bad input \
            data, 66 input missing, 69 unavailable (a keyring entry), 73 cannot create a folder, 74 I/O \
            error, 75 database busy; 130 and 143 when SIGINT or SIGTERM stopped rotate or import before \
            the commit (nothing changed).
            """,
            examples: [
                "toolcfg keygen --out master.key",
                "toolcfg migrate up --db app.db",
                "toolcfg import --db app.db --in onboarding.csv --master-key-file master.key",
                "toolcfg --generate-completion-script bash > /etc/bash_completion.d/toolcfg"
            ]),
        version: version,
        subcommands: [
            Keygen.self, Migrate.self, Export.self, Import.self, CheckBackup.self, Rotate.self, ForgetOldKey.self, VerifyKeys.self,
            Stress.self,
            StressWorkerCommand.self, KdfKernels.self
        ]
    )

    /// ArgumentParser's main, but every failure (its own parse errors included) goes through
    /// FailureExit: one message prefix, and the --json error object.
    static func main() {
        let arguments = OptionalKeyringValue.fillDefaults(Array(CommandLine.arguments.dropFirst()))
        // Before any key is read: no core file, no ptrace by the same user (see ProcessHardening).
        if let problem = ProcessHardening.forbidCoreDumps() {
            Console(quiet: arguments.contains("-q") || arguments.contains("--quiet")).warn(problem)
        }
        var command: (any ParsableCommand)?
        do {
            var parsed = try parseAsRoot(arguments)
            command = parsed
            // Before the command starts any thread, so that every thread has them blocked and only
            // the watcher receives them; one before the operation began ends the process here.
            if parsed is any InterruptibleCommand {
                SignalWatcher.start(processInterruption) { FailureExit.exit(Interrupted(signal: $0), command: nil, arguments: arguments) }
            }
            try parsed.run()
        } catch {
            FailureExit.exit(error, command: command, arguments: arguments)
        }
    }
}

/// A command's help text: what it does, then examples to copy.
func help(_ text: String, examples: [String]) -> String {
    text + "\n\nExamples:\n" + examples.map { "  " + $0 }.joined(separator: "\n")
}
