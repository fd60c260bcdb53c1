import Foundation
import PackagePlugin

/// Embeds the package's migration SQL into the target that uses this plugin: SQLite's
/// `migrations/*.sql` as `embeddedMigrationFiles`, PostgreSQL's `migrations/postgres/*.sql` as
/// `embeddedPostgresMigrationFiles`.
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let sets = [
            (folder: "migrations", variable: "embeddedMigrationFiles"),
            (folder: "migrations/postgres", variable: "embeddedPostgresMigrationFiles")
        ]
        return try sets.map { set in
            let folder = context.package.directoryURL.appending(path: set.folder)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            let inputs = names.filter { $0.hasSuffix(".sql") }.sorted().map { folder.appending(path: $0) }
            let output = context.pluginWorkDirectoryURL.appending(path: "\(set.variable).swift")
            return .buildCommand(
                displayName: "Embedding \(inputs.count) migration files of \(set.folder)",
                executable: try context.tool(named: "MigrationEmbedder").url,
                arguments: [output.path, set.variable] + inputs.map(\.path),
                inputFiles: inputs,
                outputFiles: [output]
            )
        }
    }
}
