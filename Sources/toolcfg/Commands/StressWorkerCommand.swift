import ArgumentParser
import Foundation
import ToolConfigKit

/// One writer process of `toolcfg stress --processes` (internal).
struct StressWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: StressWorker.subcommand,
        abstract: "One writer of toolcfg stress --processes (internal).",
        shouldDisplay: false
    )

    @Option(name: .long, help: "The writer's plan, as JSON.") var plan: String

    func run() throws {
        try StressWorker.serve(
            plan: plan, database: ProcessInfo.processInfo.environment[StressWorker.databaseVariable],
            send: { Console.out($0) }, waitForStart: { while readLine() != nil {} })
    }
}
