import ArgumentParser
import Foundation
import ToolConfigKit

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply, revert and inspect migrations, with sqlx's _sqlx_migrations table as the ledger.",
        subcommands: [MigrateUp.self, MigrateDown.self, MigrateStatus.self, MigrateVerify.self]
    )
}

struct MigrationFolderOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Use the migration files of this folder instead of the built-in ones.", valueName: "DIR"))
    var migrations: String?

    func load() throws -> MigrationSet {
        try migrations.map { try MigrationSet.load(folder: $0) } ?? MigrationSet.embedded()
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

struct MigrateUp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Apply pending migrations (all, or up to and including --to). Creates the database file if needed.",
        discussion: help("Each migration runs in its own transaction with its ledger row, as sqlx runs it.", examples: [
            "toolcfg migrate up --db app.db",
            "toolcfg migrate up --db app.db --to 7 --json",
        ])
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var folder: MigrationFolderOption
    @OptionGroup var safety: MigrationSafetyOptions
    @Option(name: .long, help: ArgumentHelp("Stop after this version.", valueName: "VERSION"))
    var to: Int64?
    @OptionGroup var output: OutputOptions

    func run() throws {
        let connection = try database.open(.readWriteCreate)
        let report = try Migrator(connection: connection, migrations: try folder.load(), options: safety.options).up(to: to)
        try MigrationOutput.run(report, console: output.console)
    }
}

struct MigrateDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Revert applied migrations, newest first: one by default, --steps N, or all above --to VERSION (0 for all).",
        discussion: help("""
            A revert that would drop or empty tables holding rows says which and how many, and is \
            refused (exit 64) unless given --yes. --dry-run shows the scripts that would run and \
            the rows they would take, and changes nothing.
            """, examples: [
                "toolcfg migrate down --db app.db --dry-run",
                "toolcfg migrate down --db app.db --to 0 --yes",
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
        let connection = try database.open(.readWrite)
        let report = try Migrator(connection: connection, migrations: try folder.load(), options: safety.options)
            .down(to: to, steps: steps, dryRun: dryRun, allowDataLoss: yes)
        try MigrationOutput.run(report, console: output.console)
    }
}

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

struct MigrateVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove on copies of databases that every down migration undoes its up, exactly.",
        discussion: help("""
            For each database (--db, or every *.db of --fixtures DIR), on a copy: a pending migration \
            goes up, down (the database must be as before, ledger included) and up again (as after \
            the first up); an applied one goes down and up again (as before). An up script run again \
            where its objects exist, and a down script run again where they are gone, must change \
            nothing. The databases given are only read. Exit 65 when any check fails.
            """, examples: [
                "toolcfg migrate verify --fixtures fixtures",
                "toolcfg migrate verify --db copy-of-production.db --json",
            ])
    )

    @Option(name: .long, help: ArgumentHelp("One database to verify on (or set TOOLCFG_DB).", valueName: "PATH")) var db: String?
    @Option(name: .long, help: ArgumentHelp("A folder of fixture databases (*.db, *.sqlite, *.sqlite3).", valueName: "DIR")) var fixtures: String?
    @OptionGroup var folder: MigrationFolderOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if db != nil && fixtures != nil { throw ValidationError("give --db or --fixtures, not both") }
    }

    func run() throws {
        let console = output.console
        let paths: [String]
        if let fixtures {
            paths = try ReversibilityCheck.fixtures(in: fixtures)
        } else if let db = db ?? ProcessInfo.processInfo.environment["TOOLCFG_DB"] {
            guard FileManager.default.fileExists(atPath: db) else { throw DatabaseError(code: 14, message: "no such database file", path: db) }
            paths = [db]
        } else {
            throw ValidationError("give --db PATH or --fixtures DIR")
        }
        if paths.isEmpty { throw ValidationError("no *.db, *.sqlite or *.sqlite3 files in \(fixtures ?? "")") }
        let report = ReversibilityCheck(migrations: try folder.load()).verify(paths)
        let failed = report.databases.filter { !$0.ok }
        let failure = failed.first.map {
            CheckFailed(message: "\(failed.count) of \(report.databases.count) database(s) failed the reversibility check",
                        errorContext: ErrorContext(database: $0.database))
        }
        if output.json {
            try console.report(report, failure: failure)
        } else {
            for database in report.databases {
                Console.out("\(database.ok ? "ok  " : "FAIL") \(database.database)")
                if let error = database.error { Console.out("     \(error)") }
                for step in database.steps {
                    Console.out("     \(step.ok ? "ok  " : "FAIL") \(step.version) \(step.description) (\(step.cycle))")
                    for failure in step.failures { Console.out("          \(failure)") }
                    for note in step.notes { Console.out("          note: \(note)") }
                }
            }
            console.note("\(report.databases.count - failed.count) of \(report.databases.count) database(s) passed")
        }
        if let failure { throw ReportedFailure(error: failure) }
    }
}

enum MigrationOutput {
    static func run(_ report: MigrationRunReport, console: Console) throws {
        if console.json { return try console.report(report) }
        let verb = report.dryRun ? "would revert" : report.direction == .up ? "applied" : "reverted"
        if report.steps.isEmpty {
            console.note("nothing to do: \(report.direction == .up ? "no pending migration" : "no migration to revert")")
        }
        for step in report.steps {
            console.note("\(verb) \(step.version) \(step.description) (\(step.file)\(step.elapsedSeconds.map { ", " + format($0) } ?? ""))")
            if let sql = step.sql {
                let lines = sql.split(separator: "\n", omittingEmptySubsequences: false).reversed().drop { $0.isEmpty }.reversed()
                console.note(lines.map { "    " + $0 }.joined(separator: "\n"))
            }
        }
        let loss = report.dataLoss ?? []
        for table in loss {
            let verb = report.dryRun ? (table.dropped ? "would drop" : "would delete rows of") : (table.dropped ? "dropped" : "deleted rows of")
            console.note("\(verb) \(table.table): \(table.rows) row\(table.rows == 1 ? "" : "s")")
        }
        if report.dryRun {
            console.note("dry run: nothing was changed" + (loss.isEmpty ? "" : "; the revert needs --yes"))
        }
        let versions = report.appliedVersions.map(String.init).joined(separator: ", ")
        console.note("ledger \(report.dryRun ? "still" : "now") holds: \(versions.isEmpty ? "no version" : versions)")
    }

    static func render(_ report: MigrationStatusReport) -> String {
        var lines = ["database: \(report.database)", "migrations: \(report.migrations)"]
        if !report.ledgerExists { lines.append("ledger: none yet (no _sqlx_migrations table)") }
        let header = ["VERSION", "STATE", "DESCRIPTION", "INSTALLED ON", "DOWN"]
        var rows = report.entries.map { entry in
            [String(entry.version), entry.state.rawValue, entry.description, entry.installedOn ?? "-", entry.file == nil ? "-" : (entry.reversible ? "yes" : "no")]
        }
        rows.insert(header, at: 0)
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces))
        }
        for entry in report.entries where entry.state == .drifted {
            lines.append("drift in \(entry.version): \(entry.drift ?? "the file's contents changed since it was applied")")
        }
        for entry in report.entries where entry.state == .missingFile {
            lines.append("note: \(entry.version) is in the ledger with no file here (the application's own migration); it is left alone")
        }
        let states: [MigrationStatusReport.State] = [.applied, .pending, .dirty, .drifted, .missingFile]
        lines.append(states.map { "\(report.count($0)) \($0.rawValue)" }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    static func format(_ seconds: Double) -> String {
        seconds >= 0.001 ? String(format: "%.1f ms", seconds * 1e3) : String(format: "%.0f µs", seconds * 1e6)
    }
}
