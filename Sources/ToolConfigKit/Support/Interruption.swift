import Glibc
import Synchronization

/// A SIGINT or SIGTERM, as the operation that received it sees it: checked at safe points (between
/// pages, before and inside the write transaction, never after the commit), so that an interrupted
/// command rolls back and removes what it started instead of dying half-way. `SignalWatcher`
/// delivers the signals; an operation that is given none never sees one.
public final class Interruption: Sendable {
    private enum Phase: Int {
        case waiting, running
        /// Running, and a second signal ends the process at once (see `begin`).
        case runningForcible
        /// Past the last safe point: signals are left for after the command.
        case committing
        /// The process is ending on a signal.
        case abandoned
    }
    private let phase = Atomic<Int>(Phase.waiting.rawValue)
    private let received = Atomic<Int32>(0)

    public init() {}

    /// The first signal received, if any.
    public var signal: Int32? {
        let value = received.load(ordering: .acquiring)
        return value == 0 ? nil : value
    }

    /// Records `signal`. True when the receiver must end the process itself: no operation has
    /// begun (nothing has been written; the command may be blocked reading a key from a terminal),
    /// or a second signal reached one that allows it.
    public func receive(_ signal: Int32) -> Bool {
        let first = received.compareExchange(expected: 0, desired: signal, ordering: .acquiringAndReleasing).exchanged
        if move(from: .waiting, to: .abandoned) { return true }
        return !first && move(from: .runningForcible, to: .abandoned)
    }

    /// An operation starts: from now on signals are left to its safe points. With
    /// `repeatEndsProcess`, a second signal ends the process at once, before the commit: for an
    /// operation that may block where no safe point comes (an import reading a pipe that stalls),
    /// whose uncommitted transaction the database then discards and which has no file to remove.
    /// (Options, and so their interruption, may serve several runs in turn.)
    public func begin(repeatEndsProcess: Bool = false) throws(Interrupted) {
        try enter(repeatEndsProcess ? .runningForcible : .running)
    }

    /// A safe point: throws when a signal has arrived.
    public func check() throws(Interrupted) {
        if let signal { throw Interrupted(signal: signal) }
    }

    /// The last safe point, just before the commit: throws when a signal has arrived (or the
    /// process is ending on one); from here on signals wait for the command to finish.
    public func commitBegins() throws(Interrupted) {
        try enter(.committing)
        try check()
    }

    /// Moves to `next` from any phase but `abandoned`, which throws: the process is ending.
    private func enter(_ next: Phase) throws(Interrupted) {
        var current = phase.load(ordering: .acquiring)
        while current != Phase.abandoned.rawValue {
            let (exchanged, now) = phase.compareExchange(expected: current, desired: next.rawValue, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = now
        }
        throw Interrupted(signal: signal ?? SIGINT)
    }

    private func move(from: Phase, to: Phase) -> Bool {
        phase.compareExchange(expected: from.rawValue, desired: to.rawValue, ordering: .acquiringAndReleasing).exchanged
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
            + "nothing was changed (a transaction in progress was rolled back, a backup it had started removed); "
            + "the same command can run again"
    }
}
