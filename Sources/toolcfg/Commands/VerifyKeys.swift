import ArgumentParser
import Foundation
import ToolConfigKit

struct VerifyKeys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-keys",
        abstract: "Check that every stored secret decrypts under the master key, and that no salt or nonce repeats.",
        usage: "toolcfg verify-keys [--db <PATH|URL>] [<options>]",
        discussion: help(
            """
            Every column group of every table is checked (as rotate finds them; --secret-columns \
            declares more), each value in its scheme, with counts of v1 and v2 values and the \
            legacy (v1) values outside tenants that an application of v0.0.59 or later refuses. \
            With --new-master-key-file (or TOOLCFG_NEW_MASTER_KEY) it also counts values under \
            the new key, so a half-rotated database shows at a glance. Exit 65 when any value is \
            malformed, decrypts under no given key, or shares a salt or nonce.
            """,
            examples: [
                "toolcfg verify-keys --db app.db --master-key-file master.key",
                "toolcfg verify-keys --db app.db --master-key-file old.key \\\n      --new-master-key-file new.key --json"
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var secretColumns: SecretColumnsOption
    @Option(
        name: .long,
        help: ArgumentHelp("Also check the secrets file of releases up to v0.0.45 ($BODHI_HOME/secrets.yaml).", valueName: "PATH"))
    var secretsFile: String?
    @Option(name: .long, help: ArgumentHelp("Name at most N rows per list (problems, legacy values); 0 names every one.", valueName: "N"))
    var list = KeyVerifier.defaultListLimit
    @OptionGroup var jobs: JobsOption
    @OptionGroup var masterKey: MasterKeyOption
    @OptionGroup var newKey: NewKeyOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if list < 0 { throw ValidationError("--list must be 0 (every row) or more") }
        try refuseTwoFromStandardInput(
            masterKey.masterKeyFile, masterKey.masterKeyTextFile, newKey.newMasterKeyFile, newKey.newMasterKeyTextFile)
    }

    func run() throws {
        let console = output.console
        let key = try masterKey.requireMasterKey(console)
        let newMasterKey = try newKey.masterKey(console)
        let connection = try database.openReader()
        let report = try console.withProgress {
            try KeyVerifier(
                database: connection, masterKey: key, newKey: newMasterKey, jobs: jobs.count, columns: try secretColumns.map(),
                secretsFile: secretsFile, listLimit: list == 0 ? nil : list
            )
            .run(progress: $0)
        }
        let failure = report.ok ? nil : Self.failure(report)
        if output.json {
            try console.report(report, failure: failure)
        } else {
            VerifyKeysOutput.describe(report, console: console)
        }
        if let failure { throw ReportedFailure(error: failure) }
    }

    static func failure(_ report: KeyVerifier.Report) -> CheckFailed {
        let neither = report.groups.reduce(0) { $0 + $1.underNeither }, malformed = report.groups.reduce(0) { $0 + $1.malformed }
        var context = ErrorContext(database: report.database)
        if let first = report.problems.first {
            context.table = first.table
            context.rowID = first.rowID
            context.field = first.column
        }
        let file = report.secretsFile?.under == "neither" ? ", the secrets file under no given key" : ""
        return CheckFailed(
            message:
                "keys NOT OK: \(neither) under no given key, \(malformed) malformed, \(report.reusedSalts) reused salt(s), "
                + "\(report.reusedNonces) reused nonce(s)\(file)",
            errorContext: context)
    }
}
