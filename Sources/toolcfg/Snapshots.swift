import ArgumentParser
import Foundation
import ToolConfigKit

extension SnapshotFormat: ExpressibleByArgument {}
extension KeyMode: ExpressibleByArgument {}
extension Importer.ConflictPolicy: ExpressibleByArgument {}

func snapshotFormat(_ explicit: SnapshotFormat?, path: String) throws -> SnapshotFormat {
    if let explicit { return explicit }
    if let inferred = SnapshotFormat(path: path) { return inferred }
    throw ValidationError(path == "-" ? "--format is required with standard input or output" : "cannot tell the format of \(path) from its extension: give --format csv|json|jsonl")
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export user_tool_configs as CSV, JSON or JSON Lines.",
        discussion: help("""
            --keys encrypted (default) writes the stored triple and needs no master key; plaintext \
            decrypts with the master key and must be asked for; sealed re-seals each key under a \
            passphrase (Argon2id) so the file can be restored into a database with another master \
            key; omit writes no secret material. Files holding secrets are created 0600. With \
            --out - and --json, the report goes to standard error (standard output holds the data).
            """, examples: [
                "toolcfg export --db app.db --out backup.json --verify",
                "toolcfg export --db app.db --out backup.jsonl --keys sealed \\\n      --master-key-file master.key --passphrase-file passphrase",
                "toolcfg export --db app.db --format csv --out - --keys omit \\\n      --where tool_id=builtin-exa-web-search",
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .long, help: "csv, json or jsonl (default: from the --out extension).") var format: SnapshotFormat?
    @Option(name: .long, help: ArgumentHelp("Output file, or - for standard output.", valueName: "FILE")) var out: String = "-"
    @Option(name: .long, help: "encrypted, plaintext, sealed or omit.") var keys: KeyMode = .encrypted
    @Option(name: .customLong("where"), help: ArgumentHelp("Only rows matching FIELD=VALUE (field user_id or tool_id).", valueName: "FIELD=VALUE"))
    var conditions: [String] = []
    @Option(name: .long, help: ArgumentHelp("Only rows of this tool_id.", valueName: "TOOL_ID")) var tool: String?
    @Flag(name: .long, help: "Replace an existing --out file (atomically).") var force = false
    @Flag(name: .long, help: "Read the file back and prove it holds exactly the exported rows.") var verify = false
    @Option(name: .long, help: ArgumentHelp("Argon2id memory for --keys sealed, in MiB.", valueName: "MIB")) var sealMemory: UInt32 = 64
    @Option(name: .long, help: ArgumentHelp("Argon2id passes for --keys sealed.", valueName: "N")) var sealIterations: UInt32 = 3
    @OptionGroup var jobs: JobsOption
    @OptionGroup var masterKey: MasterKeyOption
    @OptionGroup var passphrase: PassphraseOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try refuseTwoFromStandardInput(masterKey.masterKeyFile, passphrase.passphraseFile)
    }

    func run() throws {
        let console = output.console
        let format = try snapshotFormat(format, path: out)
        var userID: String?
        var toolID = tool
        for condition in conditions {
            let parts = condition.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["user_id", "tool_id"].contains(parts[0]) else {
                throw ValidationError("--where takes user_id=VALUE or tool_id=VALUE")
            }
            if parts[0] == "user_id" { userID = parts[1] } else { toolID = parts[1] }
        }
        let connection = try database.open(.readOnly)
        let options = Exporter.Options(
            output: out, format: format, keys: keys,
            masterKey: keys == .plaintext || keys == .sealed ? try masterKey.masterKey() : nil,
            passphrase: keys == .sealed ? try passphrase.passphrase() : nil,
            sealingCost: .init(memoryKiB: sealMemory * 1024, iterations: sealIterations, lanes: Argon2id.Parameters.recommended.lanes),
            userID: userID, toolID: toolID, overwrite: force, verify: verify, jobs: jobs.count)
        let report = try console.withProgress { try Exporter(connection: connection, options: options).run(progress: $0) }
        if output.json { return try console.report(report, toStandardError: out == "-") }
        console.note("exported \(report.rows) row\(report.rows == 1 ? "" : "s") (\(report.keys.rawValue) keys) to \(out == "-" ? "standard output" : out)\(report.digest.map { ", \($0)" } ?? "")\(report.verified ? ", verified" : "")")
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a CSV, JSON or JSON Lines snapshot into user_tool_configs, all or nothing.",
        discussion: help("""
            Every record is validated; plaintext api_key values are encrypted under the master key; \
            rows are upserted on (user_id, tool_id), keeping their id and created_at. The first error \
            (or the first --max-errors) fails the import and nothing is written. With a master key or \
            passphrase, the keys are encrypted or checked before the write lock is taken, and the \
            lock is held only to write. A master key that opens none of the keys already stored \
            (tried on a sample of every table with keys and on the rows the import touches) is \
            refused unless --allow-other-master-key is given.
            """, examples: [
                "toolcfg import --db app.db --in onboarding.csv --master-key-file master.key",
                "toolcfg import --db app.db --in backup.json --dry-run --json",
                "cat rows.jsonl | toolcfg import --db app.db --format jsonl --in - \\\n      --on-conflict skip",
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .long, help: "csv, json or jsonl (default: from the --in extension).") var format: SnapshotFormat?
    @Option(name: .customLong("in"), help: ArgumentHelp("Input file, or - for standard input.", valueName: "FILE")) var input: String = "-"
    @Option(name: .long, help: "update, skip or fail when a row exists with other contents.") var onConflict: Importer.ConflictPolicy = .update
    @Flag(name: .long, help: "Validate and report what would change; write nothing.") var dryRun = false
    @Option(name: .long, help: ArgumentHelp("Collect up to N errors before failing.", valueName: "N")) var maxErrors: Int = 1
    @Flag(name: .long, help: "Import although the master key opens none of the keys already stored (they are under another key).")
    var allowOtherMasterKey = false
    @OptionGroup var jobs: JobsOption
    @OptionGroup var masterKey: MasterKeyOption
    @OptionGroup var passphrase: PassphraseOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if maxErrors < 1 { throw ValidationError("--max-errors must be at least 1") }
        try refuseTwoFromStandardInput(input, masterKey.masterKeyFile, passphrase.passphraseFile)
    }

    func run() throws {
        let console = output.console
        let format = try snapshotFormat(format, path: input)
        let connection = try database.open(.readWrite)
        let options = Importer.Options(input: input, format: format, onConflict: onConflict, dryRun: dryRun, maxErrors: maxErrors,
                                       masterKey: try masterKey.masterKey(), passphrase: try passphrase.passphrase(),
                                       allowOtherMasterKey: allowOtherMasterKey, jobs: jobs.count)
        let report = try console.withProgress { try Importer(connection: connection, options: options).run(progress: $0) }
        if report.uncheckedKeys > 0 {
            console.note("\(report.uncheckedKeys) encrypted key(s) were \(report.dryRun ? "to be " : "")imported without being checked: give --master-key-file (or TOOLCFG_MASTER_KEY) to prove they open under the application's master key")
        }
        if let tried = report.storedKeysTried, let opened = report.storedKeysOpened, opened < tried {
            console.note("\(tried - opened) of \(tried) stored key(s) tried did not open under the master key \(report.masterKeyFingerprint ?? ""): run verify-keys")
        }
        if output.json { return try console.report(report) }
        let prefix = report.dryRun ? "dry run, nothing written: would have " : ""
        console.note("\(prefix)read \(report.records) records: \(report.inserted) inserted, \(report.updated) updated, \(report.unchanged) unchanged, \(report.skipped) skipped"
            + (report.duplicates > 0 ? ", \(report.duplicates) duplicate(s)" : "")
            + (report.integrityChecked ? "; row count and digest verified" : "")
            + (report.masterKeyFingerprint.map { "; master key \($0)" } ?? ""))
        if report.changedDuringImport > 0 {
            console.note("\(report.changedDuringImport) pair(s) written by the application while the file was read were decided again under the lock")
        }
        if !report.dryRun { console.note(String(format: "write lock held %.3f s of %.1f s", report.writeLockSeconds, report.elapsedSeconds)) }
    }
}
