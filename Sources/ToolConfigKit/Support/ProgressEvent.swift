/// How far a long operation has come, for a front end to show: the phase it is in, how many
/// units of it are done, and the total when it is known before the work starts. Operations send
/// one at each phase's start and then one per batch, on their own thread; how often to draw is
/// the receiver's business.
public struct ProgressEvent: Sendable, Equatable {
    public enum Phase: String, Sendable, CaseIterable {
        case makingRoom = "making room"
        case backup
        case reading
        case derivingKeys = "deriving keys"
        case checkingKeys = "checking keys"
        case writing
        case rebuildingIndexes = "rebuilding indexes"
        case verifying
    }

    public enum Unit: String, Sendable {
        case rows
        case bytes
    }

    public var phase: Phase
    public var done: Int
    /// nil when the size is not known beforehand (a pipe on standard input, a backup).
    public var total: Int?
    public var unit: Unit

    public init(_ phase: Phase, done: Int = 0, total: Int? = nil, unit: Unit = .rows) {
        self.phase = phase
        self.done = done
        self.total = total
        self.unit = unit
    }
}

public typealias ProgressHandler = (ProgressEvent) -> Void
