import ArgumentParser
import Foundation
import ToolConfigKit

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply, revert and inspect migrations (SQLite or PostgreSQL), with sqlx's _sqlx_migrations table as the ledger.",
        subcommands: [MigrateUp.self, MigrateDown.self, MigrateStatus.self, MigrateVerify.self]
    )
}

struct MigrationFolderOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Use the migration files of this folder instead of the built-in ones (SQLite's, or PostgreSQL's for a postgresql:// database).",
            valueName: "DIR"))
    var migrations: String?

    /// The folder's migrations; nil without --migrations.
    func loadGiven() throws -> MigrationSet? {
        try migrations.map { try MigrationSet.load(folder: $0) }
    }

    /// The folder's migrations, or the built-in ones of the database's engine.
    func load(for database: any Database) throws -> MigrationSet {
        try loadGiven() ?? database.migrationStore().builtInMigrations()
    }
}

/// Only for the commands that change the database: status and verify never refuse.
struct MigrationSafetyOptions: ParsableArguments {
    @Flag(name: .long, help: "Proceed although a ledger row has success = 0 (after repairing the schema by hand).")
    var allowDirty = false

    @Flag(name: .long, help: "Proceed although an applied migration's checksum differs from its file.")
    var allowDrift = false

    var options: Migrator.Options { .init(allowDirty: allowDirty, allowDrift: allowDrift) }
}
