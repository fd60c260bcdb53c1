import ArgumentParser
import Foundation
import ToolConfigKit

extension StressWriteMode: ExpressibleByArgument {}

struct Stress: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run concurrent upserts on a scratch database and check that none was duplicated, re-keyed or lost.",
        usage: "toolcfg stress [--db <PATH|URL>] [--writers <N>] [--ops <N>] [<options>]",
        discussion: help(
            """
            N writers (threads with their own connections, or with --processes separate toolcfg \
            processes) each run M operations on a small key space of --pairs (user_id, tool_id) \
            pairs: 70% upserts (read-modify-write in BEGIN IMMEDIATE; on PostgreSQL under the \
            pair's row lock, SELECT ... FOR UPDATE), 20% reads, 10% deletes. \
            Every write is logged in _toolcfg_stress_log in the same transaction; at the end the \
            table is checked against the log. The database must be migrated and hold no rows but \
            those of earlier stress runs; the stress rows and the log are kept for inspection and \
            cleared by the next run. A writer that waits past --busy-timeout is a writer error, \
            like any other. Exit 0 when every invariant count is 0, 65 otherwise. \
            --upsert wrong-replace|wrong-deferred|wrong-split is a self-test of the checker: it \
            writes the wrong way on purpose, and the run must fail.
            """,
            examples: [
                "toolcfg stress --db scratch.db --writers 8 --ops 2000",
                "toolcfg stress --db scratch.db --writers 8 --ops 2000 --processes --json",
                "toolcfg stress --db postgresql://app@db.example/scratch --writers 16 --ops 2000"
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @Option(name: .long, help: ArgumentHelp("Concurrent writers.", valueName: "N")) var writers: Int = 4
    @Option(name: .long, help: ArgumentHelp("Operations per writer.", valueName: "N")) var ops: Int = 1000
    @Option(name: .long, help: ArgumentHelp("(user_id, tool_id) pairs the writers share.", valueName: "K")) var pairs: Int = 8
    @Option(name: .long, help: ArgumentHelp("Seed of the writers' operations (default: random, shown in the report).", valueName: "S"))
    var seed: UInt64?
    @Flag(name: .long, help: "Writers as separate toolcfg processes instead of threads.") var processes = false
    @Option(
        name: .long,
        help: ArgumentHelp(
            "correct, or a deliberately wrong write to self-test the checker: wrong-replace, wrong-deferred, wrong-split.",
            valueName: "MODE"))
    var upsert: StressWriteMode = .correct
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if writers < 1 || ops < 1 || pairs < 1 { throw ValidationError("--writers, --ops and --pairs must be at least 1") }
    }

    func run() throws {
        let console = output.console
        let location = try database.location()
        let launch: StressTest.Writers = processes ? .processes(executable: Self.executablePath) : .threads
        let options = StressTest.Options(
            writers: writers, operations: ops, pairs: pairs, seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)),
            write: upsert, busyTimeout: database.timeout, launch: launch)
        let report = try StressTest(location: location, options: options).run()
        let failure =
            report.ok
            ? nil
            : CheckFailed(
                message: "stress NOT OK: \(report.invariants.total) invariant violation(s)",
                errorContext: ErrorContext(database: report.database))
        if output.json {
            try console.report(report, failure: failure)
        } else {
            StressOutput.describe(report, console: console)
        }
        if let failure { throw ReportedFailure(error: failure) }
    }

    /// This executable, for the writer processes.
    static var executablePath: String {
        Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}
