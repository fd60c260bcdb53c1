import ArgumentParser
import Foundation
import ToolConfigKit

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
                "toolcfg export --db postgresql://app@db.example/app --out backup.jsonl --verify",
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
        try refuseTwoFromStandardInput(masterKey.masterKeyFile, masterKey.masterKeyTextFile, passphrase.passphraseFile)
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
        let connection = try database.openEitherEngine(.readOnly)
        let options = Exporter.Options(
            output: out, format: format, keys: keys,
            masterKey: keys == .plaintext || keys == .sealed ? try masterKey.masterKey(output.console) : nil,
            passphrase: keys == .sealed ? try passphrase.passphrase() : nil,
            sealingCost: .init(memoryKiB: sealMemory * 1024, iterations: sealIterations, lanes: Argon2id.Parameters.recommended.lanes),
            userID: userID, toolID: toolID, overwrite: force, verify: verify, jobs: jobs.count, countsRows: console.showsProgress)
        let report = try console.withProgress { try Exporter(database: connection, options: options).run(progress: $0) }
        if output.json { return try console.report(report, toStandardError: out == "-") }
        console.note("exported \(count(report.rows, "row")) (\(report.keys.rawValue) keys) to \(out == "-" ? "standard output" : out)\(report.digest.map { ", \($0)" } ?? "")\(report.verified ? ", verified" : "")")
    }
}
