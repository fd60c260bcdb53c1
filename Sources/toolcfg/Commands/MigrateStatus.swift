import ArgumentParser
import Foundation
import ToolConfigKit

struct MigrateStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show applied, pending, dirty, drifted and missing-file versions.",
        usage: "toolcfg migrate status [--db <PATH|URL>] [<options>]",
        discussion: help(
            "Only reads the database.",
            examples: [
                "toolcfg migrate status --db app.db",
                "TOOLCFG_DB=app.db toolcfg migrate status --json",
                "toolcfg migrate status --db 'postgresql://app@db.example:5432/app'"
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var folder: MigrationFolderOption
    @OptionGroup var output: OutputOptions

    func run() throws {
        let connection = try database.openEitherEngine(.readOnly)
        let report = try Migrator(database: connection, migrations: try folder.load(for: connection)).status()
        if output.json { return try output.console.report(report) }
        // A report for people: on standard error with the other commands' (the data is --json).
        output.console.note(MigrationOutput.render(report))
    }
}
