import ArgumentParser
import Foundation
import ToolConfigKit

struct MigrateVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove that every down migration undoes its up, exactly, leaving the databases as they were.",
        usage: "toolcfg migrate verify (--db <PATH|URL> | --fixtures <DIR>) [<options>]",
        discussion: help(
            """
            For each database (--db, or every fixture of --fixtures DIR): a pending migration goes \
            up, down (the database must be as before, ledger included) and up again (as after the \
            first up); an applied one goes down and up again (as before). An up script run again \
            where its objects exist, and a down script run again where they are gone, must change \
            nothing. An SQLite database is verified on a copy; a PostgreSQL one inside one \
            transaction that is rolled back (its DDL is transactional), under sqlx's migration lock: \
            on a live database, the tables the scripts touch stay locked until the rollback. \
            --fixtures DIR takes SQLite databases (*.db, *.sqlite, *.sqlite3) and PostgreSQL \
            fixtures (*.sql, scripts that build a database); each *.sql is loaded into a scratch \
            database created on the server of --server URL (or of TOOLCFG_DB, when it holds a \
            PostgreSQL URL) and dropped afterwards. Exit 65 when any check fails.
            """,
            examples: [
                "toolcfg migrate verify --fixtures fixtures",
                "toolcfg migrate verify --fixtures fixtures/postgres --server 'postgresql://postgres@/postgres?host=/run/postgresql'",
                "toolcfg migrate verify --db copy-of-production.db --json",
                "TOOLCFG_DB=postgresql://app@db.example/app_staging toolcfg migrate verify"
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @Option(
        name: .long,
        help: ArgumentHelp(
            "A folder of fixtures: SQLite databases (*.db, *.sqlite, *.sqlite3) and PostgreSQL scripts (*.sql).",
            valueName: "DIR"))
    var fixtures: String?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The PostgreSQL server for the *.sql fixtures, a postgresql:// URL without a password (or TOOLCFG_DB): "
                + "scratch databases are created and dropped there.",
            valueName: "URL"))
    var server: String?
    @OptionGroup var folder: MigrationFolderOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if database.db != nil && fixtures != nil { throw ValidationError("give --db or --fixtures, not both") }
        if server != nil && fixtures == nil { throw ValidationError("--server is for the PostgreSQL fixtures of --fixtures") }
    }

    func run() throws {
        let console = output.console
        let check = ReversibilityCheck(migrations: try folder.loadGiven())
        var databases: [ReversibilityCheck.DatabaseReport] = []
        if let fixtures {
            let all = try FixtureDatabase.all(in: fixtures)
            if all.isEmpty { throw ValidationError("no \(FixtureDatabase.kinds) fixtures in \(fixtures)") }
            let server = all.contains(where: \.needsServer) ? try postgresServer(for: fixtures) : nil
            databases = all.map { check.verify(fixture: $0, server: server, busyTimeout: database.timeout) }
        } else {
            guard let given = try database.openGiven(.readOnly) else { throw ValidationError("give --db PATH|URL or --fixtures DIR") }
            databases = [check.verify(database: given)]
        }
        let report = check.report(databases)
        let failed = report.databases.filter { !$0.ok }
        let failure = failed.first.map {
            CheckFailed(
                message: "\(failed.count) of \(report.databases.count) database(s) failed the reversibility check",
                errorContext: ErrorContext(database: $0.database))
        }
        if output.json {
            try console.report(report, failure: failure)
        } else {
            ReversibilityOutput.describe(report, console: console)
        }
        if let failure { throw ReportedFailure(error: failure) }
    }

    /// --server, else TOOLCFG_DB when it holds a PostgreSQL URL (the environment's may carry a password).
    func postgresServer(for fixtures: String) throws -> DatabaseLocation {
        if let server {
            let location = try DatabaseLocation(server, origin: .argument)
            guard location.engine == .postgresql else { throw UsageError("--server takes a postgresql:// URL, not \(server)") }
            return location
        }
        // --db is refused beside --fixtures: a location given is TOOLCFG_DB's.
        if let location = try database.givenLocation(), location.engine == .postgresql { return location }
        throw UsageError(
            "\(fixtures) holds PostgreSQL fixtures (*.sql): give --server postgresql://... (a server where toolcfg may create and drop "
                + "scratch databases) or set TOOLCFG_DB to one"
        )
    }
}
