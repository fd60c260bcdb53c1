/// Where in an input file something was found: file, line (CSV, JSON Lines, and JSON too), the
/// record's index (counted from 1) and the field.
public struct SnapshotLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var record: Int?
    public var field: String?

    public init(file: String, line: Int? = nil, record: Int? = nil, field: String? = nil) {
        self.file = file
        self.line = line
        self.record = record
        self.field = field
    }

    public func with(field: String) -> SnapshotLocation {
        var copy = self
        copy.field = field
        return copy
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        if let record { text += " (record \(record))" }
        if let field { text += ": field \(field)" }
        return text
    }
}

/// Bad input in a snapshot file. The message never contains a secret field's value.
public struct SnapshotError: ToolcfgError, Hashable, Codable {
    public var location: SnapshotLocation
    public var message: String
    /// Bad data (65), unless the fault is a missing flag rather than the file (64): a plaintext
    /// key with no master key given fails as every command fails without one.
    public var exitStatus: ExitStatus

    public init(_ location: SnapshotLocation, _ message: String, exitStatus: ExitStatus = .dataError) {
        self.location = location
        self.message = message
        self.exitStatus = exitStatus
    }

    public var description: String { "\(location): \(message)" }
    public var errorContext: ErrorContext {
        ErrorContext(file: location.file, line: location.line, record: location.record, field: location.field)
    }
}

/// Several validation errors collected under `--max-errors`.
public struct SnapshotErrors: ToolcfgError {
    public var errors: [SnapshotError]
    public var stoppedEarly: Bool

    /// The first error's: the one a run with --max-errors 1 would have stopped at.
    public var exitStatus: ExitStatus { errors.first?.exitStatus ?? .dataError }
    public var errorContext: ErrorContext { errors.first?.errorContext ?? ErrorContext() }
    public var description: String {
        var lines = errors.map(\.description)
        lines.append("\(errors.count) error(s)\(stoppedEarly ? " (stopped at --max-errors; there may be more)" : ""); nothing was written")
        return lines.joined(separator: "\n")
    }
}

/// A file that cannot be opened, read or written.
public struct SnapshotIOError: ToolcfgError {
    public var path: String
    public var reason: String
    public var missing: Bool

    public var exitStatus: ExitStatus { missing ? .noInput : .ioError }
    public var description: String { "\(path): \(reason)" }
    public var errorContext: ErrorContext { ErrorContext(file: path) }
}
