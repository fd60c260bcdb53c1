import Foundation

/// Receives SIGINT and SIGTERM on a thread of its own (`sigwait`) instead of letting them kill the
/// process mid-write: they are blocked in the calling thread, and so in every thread it starts
/// afterwards, and handed to an `Interruption`. Started from the main thread before any other
/// thread exists, for the commands that check one (rotate, import).
public enum SignalWatcher {
    /// `beforeBegin` runs on the watcher's thread for a signal that arrives before the operation
    /// began (see `Interruption.receive`): it ends the process.
    public static func start(_ interruption: Interruption, beforeBegin: @escaping @Sendable (Int32) -> Void) {
        var signals = interruptSignals
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        startThread(name: "toolcfg-signals") {
            var signals = interruptSignals
            while true {
                var signal: Int32 = 0
                guard sigwait(&signals, &signal) == 0 else { continue }
                if interruption.receive(signal) { beforeBegin(signal) }
            }
        }
    }

    private static var interruptSignals: sigset_t {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        return signals
    }
}
