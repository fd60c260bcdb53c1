import ArgumentParser
import Glibc
import ToolConfigKit

/// A command whose operation checks `processInterruption` at its safe points: SIGINT and SIGTERM
/// roll it back (exit 130, 143) instead of killing it mid-write. The other commands keep the
/// signals' default action.
protocol InterruptibleCommand: ParsableCommand {}

/// The signals this process received, for the one operation it runs.
let processInterruption = Interruption()

extension Console {
    static func signalAfterCommit(_ signal: Int32) -> String {
        "\(signal == SIGTERM ? "SIGTERM" : "SIGINT") arrived after the commit: the command finished, and its changes stand"
    }
}
