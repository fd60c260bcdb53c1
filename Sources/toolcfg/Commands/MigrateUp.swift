import ArgumentParser
import Foundation
import ToolConfigKit

struct MigrateUp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Apply pending migrations (all, or up to and including --to). Creates an SQLite file if needed.",
        usage: "toolcfg migrate up [--db <PATH|URL>] [--to <VERSION>] [<options>]",
        discussion: help(
            """
            Each migration runs in its own transaction with its ledger row, as sqlx runs it. On \
            PostgreSQL, sqlx's advisory lock is held throughout, waited for up to --busy-timeout.
            """,
            examples: [
                "toolcfg migrate up --db app.db",
                "toolcfg migrate up --db app.db --to 7 --json",
                "toolcfg migrate up --db 'postgresql://app@db.example/app?sslmode=require'"
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var folder: MigrationFolderOption
    @OptionGroup var safety: MigrationSafetyOptions
    @Option(name: .long, help: ArgumentHelp("Stop after this version.", valueName: "VERSION"))
    var to: Int64?
    @OptionGroup var output: OutputOptions

    func run() throws {
        let location = try database.location()
        // A mistyped path would silently become a new, empty database: say so when one is made.
        let newFile = location.createFileIfMissing()
        let report: MigrationRunReport
        do {
            let connection = try location.open(mode: .readWriteCreate, busyTimeout: database.timeout)
            report = try Migrator(database: connection, migrations: try folder.load(for: connection), options: safety.options).up(to: to)
        } catch {
            // The file this run made, half-made (a full disk): gone, so the rerun starts afresh.
            if let newFile { DatabaseLocation.removeCreatedFile(newFile) }
            throw error
        }
        if let newFile { output.console.note("created a new database file \(newFile)") }
        try MigrationOutput.run(report, console: output.console)
    }
}
