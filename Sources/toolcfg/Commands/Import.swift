import ArgumentParser
import Foundation
import ToolConfigKit

struct Import: InterruptibleCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a CSV, JSON or JSON Lines snapshot into user_tool_configs, all or nothing.",
        discussion: help(
            """
            Every record is validated; plaintext api_key values are encrypted under the master key; \
            rows are upserted on (user_id, tool_id), keeping their id and created_at. The first error \
            (or the first --max-errors) fails the import and nothing is written. With a master key or \
            passphrase, the keys are encrypted or checked before the write lock is taken, and the \
            lock is held only to write. A master key that opens none of the keys already stored \
            (tried on a sample of every table with keys and on the rows the import touches) is \
            refused unless --allow-other-master-key is given. Encrypted keys imported without a \
            master key are refused (exit 64) into a database that holds keys already, unless \
            --allow-unchecked-keys is given. SIGINT or SIGTERM before the commit rolls the import \
            back (exit 130, 143).
            """,
            examples: [
                "toolcfg import --db app.db --in onboarding.csv --master-key-file master.key",
                "toolcfg import --db app.db --in backup.json --dry-run --json",
                "cat rows.jsonl | toolcfg import --db app.db --format jsonl --in - \\\n      --on-conflict skip",
                "toolcfg export --db app.db --out - --format jsonl \\\n      | toolcfg import --db postgresql://app@db.example/app --in - "
                    + "--format jsonl"
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .long, help: "csv, json or jsonl (default: from the --in extension).") var format: SnapshotFormat?
    @Option(name: .customLong("in"), help: ArgumentHelp("Input file, or - for standard input.", valueName: "FILE")) var input: String = "-"
    @Option(name: .long, help: "update, skip or fail when a row exists with other contents.") var onConflict: Importer.ConflictPolicy =
        .update
    @Flag(name: .long, help: "Validate and report what would change; write nothing.") var dryRun = false
    @Option(name: .long, help: ArgumentHelp("Collect up to N errors before failing.", valueName: "N")) var maxErrors: Int = 1
    @Flag(name: .long, help: "Import although the master key opens none of the keys already stored (they are under another key).")
    var allowOtherMasterKey = false
    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Import encrypted keys without a master key into a database that holds keys already "
                + "(nothing then checks they are under its key).")
    )
    var allowUncheckedKeys = false
    @Option(name: .long, help: "v1 or v2: the scheme plaintext keys are encrypted in, where the stored values do not tell (none, or both).")
    var scheme: SecretScheme?
    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Stage the rows before taking the write lock even without key work: a shorter lock (about 0.6x) "
                + "for a longer import (about 1.6x).")
    )
    var shortLock = false
    @OptionGroup var jobs: JobsOption
    @OptionGroup var masterKey: MasterKeyOption
    @OptionGroup var passphrase: PassphraseOption
    @OptionGroup var temporaryFolder: TemporaryFolderOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if maxErrors < 1 { throw ValidationError("--max-errors must be at least 1") }
        try refuseTwoFromStandardInput(input, masterKey.masterKeyFile, masterKey.masterKeyTextFile, passphrase.passphraseFile)
    }

    func run() throws {
        let console = output.console
        let format = try snapshotFormat(format, path: input)
        try temporaryFolder.apply(database)
        let connection = try database.openEitherEngine(.readWrite)
        var options = Importer.Options(
            input: input, format: format, onConflict: onConflict, dryRun: dryRun, maxErrors: maxErrors,
            masterKey: try masterKey.masterKey(console), passphrase: try passphrase.passphrase(),
            allowOtherMasterKey: allowOtherMasterKey, shortLock: shortLock, jobs: jobs.count, scheme: scheme)
        options.allowUncheckedKeys = allowUncheckedKeys
        options.interruption = processInterruption
        let report = try console.withProgress { try Importer(database: connection, options: options).run(progress: $0) }
        if report.uncheckedKeys > 0 {
            console.note(
                "\(report.uncheckedKeys) encrypted key(s) were \(report.dryRun ? "to be " : "")imported without being checked: "
                    + "give the master key (--master-key-file, --master-key-env, --master-key-text-file, --master-key-keyring, "
                    + "or TOOLCFG_MASTER_KEY) to prove they open under the application's master key"
            )
        }
        if let tried = report.storedKeysTried, let opened = report.storedKeysOpened, opened < tried {
            console.note(
                "\(tried - opened) of \(tried) stored key(s) tried did not open under the master key "
                    + "\(report.masterKeyFingerprint ?? ""): run verify-keys"
            )
        }
        for warning in report.warnings { console.warn(warning) }
        if let signal = processInterruption.signal { console.note(Console.signalAfterCommit(signal)) }
        if output.json { return try console.report(report) }
        ImportOutput.describe(report, console: console)
    }
}
