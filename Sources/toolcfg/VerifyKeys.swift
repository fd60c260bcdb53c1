import ArgumentParser
import Foundation
import ToolConfigKit

struct VerifyKeys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-keys",
        abstract: "Check that every stored key decrypts under the master key, and that no salt or nonce repeats.",
        discussion: help("""
            With --new-master-key-file (or TOOLCFG_NEW_MASTER_KEY) it also counts keys under the \
            new key, so a half-rotated database shows at a glance. Exit 65 when any key is \
            malformed, decrypts under no given key, or shares a salt or nonce.
            """, examples: [
                "toolcfg verify-keys --db app.db --master-key-file master.key",
                "toolcfg verify-keys --db app.db --master-key-file old.key \\\n      --new-master-key-file new.key --json",
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var jobs: JobsOption
    @OptionGroup var masterKey: MasterKeyOption
    @OptionGroup var newKey: NewKeyOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try refuseTwoFromStandardInput(masterKey.masterKeyFile, newKey.newMasterKeyFile)
    }

    func run() throws {
        let console = output.console
        let key = try masterKey.requireMasterKey()
        let newMasterKey = try SecretInput.masterKey(.newMasterKey, filePath: newKey.newMasterKeyFile)
        let connection = try database.openEitherEngine(.readOnly)
        let report = try console.withProgress {
            try KeyVerifier(database: connection, masterKey: key, newKey: newMasterKey, jobs: jobs.count).run(progress: $0)
        }
        let failure = report.ok ? nil : Self.failure(report)
        if output.json {
            try console.report(report, failure: failure)
        } else {
            for table in report.tables {
                var line = "\(table.table): \(table.rows) rows, \(table.underMasterKey) under \(report.masterKeyFingerprint)"
                if let new = report.newMasterKeyFingerprint { line += ", \(table.underNewMasterKey) under \(new)" }
                line += ", \(table.noKey) without a key, \(table.underNeither) under no given key, \(table.malformed) malformed"
                console.note(line)
            }
            console.note("reused salts: \(report.reusedSalts), reused nonces: \(report.reusedNonces)")
            for problem in report.problems {
                console.note("  \(problem.table) row id \(problem.id ?? String(problem.rowID)): \(problem.problem)")
            }
            if report.ok { console.note("ok") }
        }
        if let failure { throw ReportedFailure(error: failure) }
    }

    static func failure(_ report: KeyVerifier.Report) -> CheckFailed {
        let neither = report.tables.reduce(0) { $0 + $1.underNeither }, malformed = report.tables.reduce(0) { $0 + $1.malformed }
        var context = ErrorContext(database: report.database)
        if let first = report.problems.first {
            context.table = first.table
            context.rowID = first.rowID
        }
        return CheckFailed(message: "keys NOT OK: \(neither) under no given key, \(malformed) malformed, \(report.reusedSalts) reused salt(s), \(report.reusedNonces) reused nonce(s)",
                           errorContext: context)
    }
}
