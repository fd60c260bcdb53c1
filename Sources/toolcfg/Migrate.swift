import ArgumentParser
import Foundation
import ToolConfigKit

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply, revert and inspect migrations, with sqlx's _sqlx_migrations table as the ledger.",
        subcommands: [MigrateUp.self, MigrateDown.self, MigrateStatus.self, MigrateVerify.self]
    )
}

struct MigrationOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Use the migration files of this folder instead of the built-in ones.", valueName: "DIR"))
    var migrations: String?

    @Flag(name: .long, help: "Proceed although a ledger row has success = 0 (after repairing the schema by hand).")
    var allowDirty = false

    @Flag(name: .long, help: "Proceed although an applied migration's checksum differs from its file.")
    var allowDrift = false

    func migrator(on connection: SQLiteConnection) throws -> Migrator {
        let set = try reporting { try migrations.map { try MigrationSet.load(folder: $0) } ?? MigrationSet.embedded() }
        return Migrator(connection: connection, migrations: set, options: .init(allowDirty: allowDirty, allowDrift: allowDrift))
    }
}

struct MigrateUp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Apply pending migrations (all, or up to and including --to). Creates the database file if needed."
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var options: MigrationOptions
    @Option(name: .long, help: ArgumentHelp("Stop after this version.", valueName: "VERSION"))
    var to: Int64?
    @OptionGroup var output: OutputOptions

    func run() throws {
        let connection = try database.open(.readWriteCreate)
        let report = try reporting { try options.migrator(on: connection).up(to: to) }
        try MigrationOutput.run(report, json: output.json)
    }
}

struct MigrateDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Revert applied migrations, newest first: one by default, --steps N, or all above --to VERSION (0 for all)."
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var options: MigrationOptions
    @Option(name: .long, help: ArgumentHelp("Revert every applied version above this one.", valueName: "VERSION"))
    var to: Int64?
    @Option(name: .long, help: ArgumentHelp("Revert this many of the newest applied versions.", valueName: "N"))
    var steps: Int?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if to != nil, steps != nil { throw ValidationError("give --to or --steps, not both") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let to, to < 0 { throw ValidationError("--to must be 0 or a migration version") }
    }

    func run() throws {
        let connection = try database.open(.readWrite)
        let report = try reporting { try options.migrator(on: connection).down(to: to, steps: steps) }
        try MigrationOutput.run(report, json: output.json)
    }
}

struct MigrateStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show applied, pending, dirty, drifted and missing-file versions."
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var options: MigrationOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let connection = try database.open(.readOnly)
        let report = try reporting { try options.migrator(on: connection).status() }
        if output.json { return try Console.json(report) }
        Console.out(MigrationOutput.render(report))
    }
}

struct MigrateVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove on copies of databases that every down migration undoes its up, exactly.",
        discussion: """
            For each database (--db, or every *.db of --fixtures DIR), on a copy: a pending migration             goes up, down (the database must be as before, ledger included) and up again (as after             the first up); an applied one goes down and up again (as before). An up script run again             where its objects exist, and a down script run again where they are gone, must change             nothing. The databases given are only read. Exit 65 when any check fails.
            """
    )

    @Option(name: .long, help: ArgumentHelp("One database to verify on (or set TOOLCFG_DB).", valueName: "PATH")) var db: String?
    @Option(name: .long, help: ArgumentHelp("A folder of fixture databases (*.db, *.sqlite, *.sqlite3).", valueName: "DIR")) var fixtures: String?
    @OptionGroup var options: MigrationOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if db != nil && fixtures != nil { throw ValidationError("give --db or --fixtures, not both") }
    }

    func run() throws {
        let paths: [String] = try reporting {
            if let fixtures { return try ReversibilityCheck.fixtures(in: fixtures) }
            if let db = db ?? ProcessInfo.processInfo.environment["TOOLCFG_DB"] {
                guard FileManager.default.fileExists(atPath: db) else { throw DatabaseError(code: 14, message: "no such database file", path: db) }
                return [db]
            }
            throw UsageError("give --db PATH or --fixtures DIR")
        }
        if paths.isEmpty { throw ValidationError("no *.db, *.sqlite or *.sqlite3 files in \(fixtures ?? "")") }
        let set = try reporting { try options.migrations.map { try MigrationSet.load(folder: $0) } ?? MigrationSet.embedded() }
        let report = ReversibilityCheck(migrations: set).verify(paths)
        if output.json {
            try Console.json(report)
        } else {
            for fixture in report.fixtures {
                Console.out("\(fixture.ok ? "ok  " : "FAIL") \(fixture.fixture)")
                if let error = fixture.error { Console.out("     \(error)") }
                for step in fixture.steps {
                    Console.out("     \(step.ok ? "ok  " : "FAIL") \(step.version) \(step.description) (\(step.cycle))")
                    for failure in step.failures { Console.out("          \(failure)") }
                    for note in step.notes { Console.out("          note: \(note)") }
                }
            }
            let failed = report.fixtures.filter { !$0.ok }.count
            Console.note("\(report.fixtures.count - failed) of \(report.fixtures.count) database(s) passed")
        }
        if !report.ok { throw ExitCode(ExitStatus.dataError.rawValue) }
    }
}

enum MigrationOutput {
    static func run(_ report: MigrationRunReport, json: Bool) throws {
        if json { return try Console.json(report) }
        let verb = report.direction == .up ? "applied" : "reverted"
        if report.steps.isEmpty {
            Console.note("nothing to do: \(report.direction == .up ? "no pending migration" : "no migration to revert")")
        }
        for step in report.steps {
            Console.note("\(verb) \(step.version) \(step.description) (\(step.file), \(format(step.elapsedNanoseconds)))")
        }
        let versions = report.appliedVersions.map(String.init).joined(separator: ", ")
        Console.note("ledger now holds: \(versions.isEmpty ? "no version" : versions)")
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

    static func format(_ nanoseconds: Int64) -> String {
        nanoseconds >= 1_000_000 ? String(format: "%.1f ms", Double(nanoseconds) / 1e6) : String(format: "%.0f µs", Double(nanoseconds) / 1e3)
    }
}
