import ArgumentParser
import Foundation
import ToolConfigKit

struct MigrateDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Revert applied migrations, newest first: one by default, --steps N, or all above --to VERSION (0 for all).",
        usage: "toolcfg migrate down [--db <PATH|URL>] [--to <V> | --steps <N>] [<opts>]",
        discussion: help(
            """
            A revert that would drop or empty tables holding rows says which and how many, and is \
            refused (exit 64) unless given --yes. --dry-run shows the scripts that would run and \
            the rows they would take, and changes nothing.
            """,
            examples: [
                "toolcfg migrate down --db app.db --dry-run",
                "toolcfg migrate down --db app.db --to 0 --yes",
                "TOOLCFG_DB=postgresql://app@/app toolcfg migrate down --dry-run"
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var folder: MigrationFolderOption
    @OptionGroup var safety: MigrationSafetyOptions
    @Option(name: .long, help: ArgumentHelp("Revert every applied version above this one.", valueName: "VERSION"))
    var to: Int64?
    @Option(name: .long, help: ArgumentHelp("Revert this many of the newest applied versions.", valueName: "N"))
    var steps: Int?
    @Flag(name: .long, help: "Revert even if tables holding rows are dropped or emptied.") var yes = false
    @Flag(name: .long, help: "Show what would run and the rows it would take; change nothing.") var dryRun = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if to != nil, steps != nil { throw ValidationError("give --to or --steps, not both") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let to, to < 0 { throw ValidationError("--to must be 0 or a migration version") }
    }

    func run() throws {
        let connection = try database.openEitherEngine(.readWrite)
        let report = try Migrator(database: connection, migrations: try folder.load(for: connection), options: safety.options)
            .down(to: to, steps: steps, dryRun: dryRun, allowDataLoss: yes)
        try MigrationOutput.run(report, console: output.console)
    }
}
