import ArgumentParser
import Foundation
import ToolConfigKit

struct MigrateStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show applied, pending, dirty, drifted and missing-file versions.",
        discussion: help("Only reads the database.", examples: [
            "toolcfg migrate status --db app.db",
            "TOOLCFG_DB=app.db toolcfg migrate status --json",
        ])
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var folder: MigrationFolderOption
    @OptionGroup var output: OutputOptions

    func run() throws {
        let connection = try database.open(.readOnly)
        let report = try Migrator(connection: connection, migrations: try folder.load()).status()
        if output.json { return try output.console.report(report) }
        Console.out(MigrationOutput.render(report))
    }
}
