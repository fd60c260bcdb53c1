import ArgumentParser
import Foundation
import ToolConfigKit

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
