import ArgumentParser
import Foundation
import ToolConfigKit

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export user_tool_configs as CSV, JSON or JSON Lines.",
        discussion: help(
            """
            --keys encrypted (default) writes the stored triple and needs no master key; plaintext \
            decrypts with the master key and must be asked for; sealed re-seals each key under a \
            passphrase (Argon2id) so the file can be restored into a database with another master \
            key; omit writes no secret material. Files holding secrets are created 0600. With \
            --out - and --json, the report goes to standard error (standard output holds the data).
            """,
            examples: [
                "toolcfg export --db app.db --out backup.json --verify",
                "toolcfg export --db app.db --out backup.jsonl --keys sealed \\\n      --master-key-file master.key --passphrase-file "
                    + "passphrase",
                "toolcfg export --db app.db --format csv --out - --keys omit \\\n      --where tool_id=builtin-exa-web-search",
                "toolcfg export --db postgresql://app@db.example/app --out backup.jsonl --verify"
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .long, help: "csv, json or jsonl (default: from the --out extension).") var format: SnapshotFormat?
    @Option(name: .long, help: ArgumentHelp("Output file, or - for standard output.", valueName: "FILE")) var out: String = "-"
    @Option(name: .long, help: "encrypted, plaintext, sealed or omit.") var keys: KeyMode = .encrypted
    @Option(
        name: .customLong("where"), help: ArgumentHelp("Only rows matching FIELD=VALUE; repeat for both fields.", valueName: "FIELD=VALUE"))
    var conditions: [RowCondition] = []
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
        let userID = conditions.last { $0.field == .userID }?.value
        let toolID = conditions.last { $0.field == .toolID }?.value ?? tool
        let connection = try database.openReader()
        let options = Exporter.Options(
            output: out, format: format, keys: keys,
            masterKey: keys == .plaintext || keys == .sealed ? try masterKey.masterKey(output.console) : nil,
            passphrase: keys == .sealed ? try passphrase.passphrase() : nil,
            sealingCost: .init(memoryKiB: sealMemory * 1024, iterations: sealIterations, lanes: Argon2id.Parameters.recommended.lanes),
            userID: userID, toolID: toolID, overwrite: force, verify: verify, jobs: jobs.count, countsRows: console.showsProgress)
        let report = try console.withProgress { try Exporter(database: connection, options: options).run(progress: $0) }
        if output.json { return try console.report(report, toStandardError: out == "-") }
        console.note(
            "exported \(count(report.rows, "row")) (\(report.keys.rawValue) keys) to "
                + "\(out == "-" ? "standard output" : out)\(report.digest.map { ", \($0)" } ?? "")\(report.verified ? ", verified" : "")"
        )
    }
}

/// One `--where FIELD=VALUE`: a row filter on user_id or tool_id (the last of each field wins).
struct RowCondition: ExpressibleByArgument {
    enum Field: String, CaseIterable {
        case userID = "user_id"
        case toolID = "tool_id"
    }

    let field: Field
    let value: String

    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, let field = Field(rawValue: parts[0]) else { return nil }
        self.field = field
        value = parts[1]
    }

    /// What ArgumentParser shows when a value does not parse.
    static var allValueStrings: [String] { Field.allCases.map { "\($0.rawValue)=VALUE" } }
}
