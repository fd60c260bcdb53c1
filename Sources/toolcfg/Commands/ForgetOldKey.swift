import ArgumentParser
import Foundation
import ToolConfigKit

struct ForgetOldKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget-old-key",
        abstract: "Drop the old master key a rotation kept in the keyring (secret_key.previous).",
        usage: "toolcfg forget-old-key [--keyring [<SERVICE>]] [--db <PATH|URL>] [<opts>]",
        discussion: help(
            """
            A rotation that switches the keyring keeps the old key until this command: the \
            application may write under it until it restarts on the new one, and the catch-up \
            rotation needs it to re-encrypt those values. With --db (or TOOLCFG_DB) it refuses \
            (exit 65) while any secret still opens only under the old key. A rerun of a rotation \
            never drops the old key on its own. The service is "Bodhi App" unless --keyring (or \
            --master-key-keyring) names another.
            """,
            examples: [
                "toolcfg forget-old-key --keyring --db app.db",
                "toolcfg forget-old-key --keyring 'Bodhi App - Dev'"
            ])
    )

    @Option(
        name: .long,
        help: ArgumentHelp("The keyring service (default \"\(KeyringEntry.defaultService)\" when no value follows).", valueName: "SERVICE"))
    var keyring: String?
    @Option(name: .long, help: ArgumentHelp("The same as --keyring.", valueName: "SERVICE"))
    var masterKeyKeyring: String?
    @OptionGroup var database: DatabaseOptions
    @Option(name: .long, help: ArgumentHelp("Also check the secrets file of releases up to v0.0.45.", valueName: "PATH"))
    var secretsFile: String?
    @OptionGroup var secretColumns: SecretColumnsOption
    @OptionGroup var jobs: JobsOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if keyring != nil && masterKeyKeyring != nil { throw ValidationError("give the service once: --keyring or --master-key-keyring") }
    }

    func run() throws {
        let console = output.console
        let service = keyring ?? masterKeyKeyring ?? KeyringEntry.defaultService
        // Without a database, nothing is checked (the report says so).
        let connection = try database.givenLocation()?.openReader(busyTimeout: database.timeout)
        let report = try console.withProgress {
            try PreviousKeyForgetter(
                service: service, database: connection, columns: try secretColumns.map(), secretsFile: secretsFile,
                jobs: jobs.count
            ).run(progress: $0)
        }
        if output.json { return try console.report(report) }
        if !report.forgotten {
            console.note("no \(report.entry) to forget: nothing was changed")
            return
        }
        let checked =
            report.valuesChecked.map {
                ", after checking that all \($0) secret(s) of \(report.database ?? "") open under the current key "
                    + "\(report.masterKeyFingerprint ?? "")"
            } ?? ""
        console.note("forgot the previous key \(report.previousKeyFingerprint ?? "") (\(report.entry))\(checked)")
        if report.database == nil {
            console.note("no database was checked (--db): any secret still under that key cannot be opened any more")
        }
    }
}
