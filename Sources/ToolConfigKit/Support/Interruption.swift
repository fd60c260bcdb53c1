import Glibc
import Synchronization

/// A SIGINT or SIGTERM, as the operation that received it sees it: checked at safe points (between
/// pages, before and inside the write transaction, never after the commit), so that an interrupted
/// command rolls back and removes what it started instead of dying half-way. `SignalWatcher`
/// delivers the signals; an operation that is given none never sees one.
public final class Interruption: Sendable {
    private enum Phase: Int { case waiting = 0, running = 1, abandoned = 2 }
    private let phase = Atomic<Int>(Phase.waiting.rawValue)
    private let received = Atomic<Int32>(0)

    public init() {}

    /// The first signal received, if any.
    public var signal: Int32? {
        let value = received.load(ordering: .acquiring)
        return value == 0 ? nil : value
    }

    /// Records `signal`. True when no operation has begun: nothing has been written, and the
    /// receiver ends the process itself (the command may be blocked reading a key from a terminal).
    public func receive(_ signal: Int32) -> Bool {
        _ = received.compareExchange(expected: 0, desired: signal, ordering: .acquiringAndReleasing)
        return phase.compareExchange(expected: Phase.waiting.rawValue, desired: Phase.abandoned.rawValue, ordering: .acquiringAndReleasing).exchanged
    }

    /// An operation starts: from now on signals are left to its safe points.
    public func begin() throws(Interrupted) {
        let (_, was) = phase.compareExchange(expected: Phase.waiting.rawValue, desired: Phase.running.rawValue, ordering: .acquiringAndReleasing)
        if was == Phase.abandoned.rawValue, let signal { throw Interrupted(signal: signal) }
    }

    /// A safe point: throws when a signal has arrived.
    public func check() throws(Interrupted) {
        if let signal { throw Interrupted(signal: signal) }
    }

    /// Test hook (`TOOLCFG_TEST_PAUSE_AT`): waits for a signal, so that a test can send one at a
    /// known point without timing.
    func waitForSignal() {
        while signal == nil { usleep(1000) }
    }
}

/// A command stopped by SIGINT (exit 130) or SIGTERM (143) before it committed anything.
public struct Interrupted: ToolcfgError {
    public var signal: Int32

    public init(signal: Int32) {
        self.signal = signal
    }

    public var exitStatus: ExitStatus { signal == SIGTERM ? .terminated : .interrupted }

    public var description: String {
        "interrupted by \(signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : "signal \(signal)") before anything was committed: "
            + "nothing was changed (a transaction in progress was rolled back, a backup it had started removed); the same command can run again"
    }
}
