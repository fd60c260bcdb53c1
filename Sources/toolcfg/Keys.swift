import ArgumentParser
import Foundation
import ToolConfigKit

struct NewKeyOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("File holding the new master key, - for stdin; or set TOOLCFG_NEW_MASTER_KEY.", valueName: "PATH"))
    var newMasterKeyFile: String?
}

struct Rotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-encrypt every stored key under a new master key, in one transaction.",
        discussion: """
            Every table with encrypted_api_key, salt and nonce columns is rotated. The keys are \
            derived and encrypted from a read snapshot while the application keeps writing; the \
            write lock is held only to write them (with a compare-and-swap per row) and to redo \
            the rows the application changed meanwhile. A row already under the new key counts \
            as rotated (a second run changes nothing); a row under neither key fails the run and \
            nothing is written. The commit is made with synchronous=FULL and the rotated rows are \
            read back before success is reported.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @Flag(name: .long, help: "Decrypt everything and report; write nothing.") var dryRun = false
    @Option(name: .long, help: ArgumentHelp("Write a consistent copy (0600) of the database as the rotation read it.", valueName: "PATH"))
    var backup: String?
    @Option(name: .long, help: ArgumentHelp("Threads for the key derivations (default: the core count).", valueName: "N"))
    var jobs: Int = ParallelMap.defaultJobs
    @OptionGroup var secrets: SecretOptions
    @OptionGroup var newKey: NewKeyOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if secrets.masterKeyFile == "-" && newKey.newMasterKeyFile == "-" {
            throw ValidationError("only one secret can come from standard input")
        }
    }

    func run() throws {
        let oldKey = try reporting { try SecretInput.requireMasterKey(filePath: secrets.masterKeyFile) }
        let newMasterKey = try reporting { try SecretInput.requireMasterKey(.newMasterKey, filePath: newKey.newMasterKeyFile) }
        if oldKey.material == newMasterKey.material {
            // Refused before the database is even opened.
            Console.error("the new master key is the same as the current one (fingerprint \(oldKey.fingerprint))")
            throw ExitCode(ExitStatus.usage.rawValue)
        }
        let connection = try database.open(dryRun ? .readOnly : .readWrite)
        let options = KeyRotator.Options(oldKey: oldKey, newKey: newMasterKey, dryRun: dryRun, backupPath: backup, jobs: jobs)
        let report = try reporting { try KeyRotator(connection: connection, options: options).run(progress: progressReporter("checked")) }
        if output.json { return try Console.json(report) }
        for table in report.tables {
            var line = "\(table.table): \(table.rows) rows, \(table.rotated) \(dryRun ? "to rotate" : "rotated"), \(table.alreadyRotated) already under the new key, \(table.noKey) without a key"
            if table.changedDuringRotation > 0 { line += ", \(table.changedDuringRotation) written by the application meanwhile and redone" }
            if table.removedDuringRotation > 0 { line += ", \(table.removedDuringRotation) deleted meanwhile" }
            Console.note(line)
        }
        if let backup = report.backup { Console.note("backup of the state the rotation read: \(backup)") }
        if !dryRun {
            Console.note(String(format: "write lock held %.3f s of %.1f s", report.writeLockSeconds, report.elapsedSeconds))
            Console.note("read back after commit: \(report.verifiedAfterCommit) rotated rows as written"
                + (report.changedAfterCommit > 0 ? ", \(report.changedAfterCommit) written again by the application since" : ""))
        }
        Console.note("\(report.oldKeyFingerprint) -> \(report.newKeyFingerprint): \(report.nextStep)")
    }
}

struct VerifyKeys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-keys",
        abstract: "Check that every stored key decrypts under the master key, and that no salt or nonce repeats.",
        discussion: "With --new-master-key-file (or TOOLCFG_NEW_MASTER_KEY) it also counts keys under the new key, so a half-rotated database shows at a glance. Exit 65 when any key is malformed, decrypts under no given key, or shares a salt or nonce."
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .long, help: ArgumentHelp("Threads for the key derivations.", valueName: "N")) var jobs: Int = ParallelMap.defaultJobs
    @OptionGroup var secrets: SecretOptions
    @OptionGroup var newKey: NewKeyOption
    @OptionGroup var output: OutputOptions

    func run() throws {
        let masterKey = try reporting { try SecretInput.requireMasterKey(filePath: secrets.masterKeyFile) }
        let newMasterKey = try reporting { try SecretInput.masterKey(.newMasterKey, filePath: newKey.newMasterKeyFile) }
        let connection = try database.open(.readOnly)
        let report = try reporting { try KeyVerifier(connection: connection, masterKey: masterKey, newKey: newMasterKey, jobs: jobs).run(progress: progressReporter("checked")) }
        if output.json {
            try Console.json(report)
        } else {
            for table in report.tables {
                var line = "\(table.table): \(table.rows) rows, \(table.underMasterKey) under \(report.masterKeyFingerprint)"
                if let new = report.newKeyFingerprint { line += ", \(table.underNewKey) under \(new)" }
                line += ", \(table.noKey) without a key, \(table.underNeither) under no given key, \(table.malformed) malformed"
                Console.note(line)
            }
            Console.note("reused salts: \(report.reusedSalts), reused nonces: \(report.reusedNonces)")
            for problem in report.problems { Console.note("  \(problem.table) \(problem.row): \(problem.problem)") }
            Console.note(report.ok ? "ok" : "NOT OK")
        }
        if !report.ok { throw ExitCode(ExitStatus.dataError.rawValue) }
    }
}
