import ArgumentParser
import Foundation
import Synchronization
import ToolConfigKit

/// Where a command's words go: reports and data on standard output, messages and progress on
/// standard error (unless --quiet), errors on standard error always.
struct Console {
    var json = false
    var quiet = false

    static let errorPrefix = "toolcfg: error: "

    func note(_ message: String) {
        if !quiet { Self.write(message + "\n", to: FileHandle.standardError) }
    }

    /// Something the operator must act on that is no error: on standard error even with
    /// --json (the report carries it too), silenced only by --quiet.
    func warn(_ message: String) {
        if !quiet { Self.write("toolcfg: warning: " + message + "\n", to: FileHandle.standardError) }
    }

    /// "write lock held 0.002 s of 0.041 s": both to the same precision (a lock of 0.002 s "of
    /// 0.0 s" read as a lock longer than the run).
    static func writeLock(held: Double, of elapsed: Double) -> String {
        String(format: "write lock held %.3f s of %.3f s", held, elapsed)
    }

    static func out(_ text: String) {
        write(text.hasSuffix("\n") ? text : text + "\n", to: FileHandle.standardOutput)
    }

    static func error(_ message: String) {
        write(errorPrefix + message + "\n", to: FileHandle.standardError)
    }

    private static func write(_ text: String, to handle: FileHandle) {
        handle.write(Data(text.utf8))
    }

    /// Progress goes to a terminal only, and not with --quiet.
    var showsProgress: Bool { !quiet && isatty(STDERR_FILENO) == 1 }

    /// Runs an operation with a progress line on standard error when it is a terminal (and not
    /// --quiet); the line is ended before anything else is printed, error or summary.
    func withProgress<T>(_ body: (ProgressHandler) throws -> T) rethrows -> T {
        guard showsProgress else { return try body { _ in } }
        let renderer = ProgressRenderer(columns: Self.terminalColumns)
        do {
            let result = try body(renderer.show)
            renderer.finish()
            return result
        } catch {
            renderer.abandon()
            throw error
        }
    }

    private static var terminalColumns: Int {
        var size = winsize()
        return ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 80
    }

    /// Prints `report` as the --json contract says: one object with "ok", and on failure
    /// "exit_status" and "error" beside the report's own fields.
    func report(_ report: some Encodable, failure: (any ToolcfgError)? = nil, toStandardError: Bool = false) throws {
        let text = try JSONReport(report: report, failure: failure.map { ReportFailure($0) }).render()
        Self.write(text + "\n", to: toStandardError ? FileHandle.standardError : FileHandle.standardOutput)
    }
}

/// The one shape of every --json output: the report's fields, "ok", and on failure the exit
/// status and an error object.
struct JSONReport<Report: Encodable>: Encodable {
    var report: Report?
    var failure: ReportFailure?

    enum Key: String, CodingKey { case ok, exitStatus, error }

    func encode(to encoder: any Encoder) throws {
        try report?.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(failure == nil, forKey: .ok)
        try container.encodeIfPresent(failure?.exitStatus, forKey: .exitStatus)
        try container.encodeIfPresent(failure?.error, forKey: .error)
    }

    func render() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

struct ReportFailure {
    var exitStatus: Int32
    var error: ErrorObject

    init(_ error: any ToolcfgError) {
        exitStatus = error.exitStatus.rawValue
        self.error = ErrorObject(error)
    }

    init(exitStatus: Int32, message: String) {
        self.exitStatus = exitStatus
        error = ErrorObject(message: message, context: ErrorContext())
    }
}

/// The error's message, and as keys of their own where it is: only those that apply.
struct ErrorObject: Encodable {
    var message: String
    var context: ErrorContext
    /// Each error of an import that collected several (--max-errors).
    var errors: [ErrorObject]?

    init(message: String, context: ErrorContext, errors: [ErrorObject]? = nil) {
        self.message = message
        self.context = context
        self.errors = errors
    }

    init(_ error: any ToolcfgError) {
        let many = (error as? SnapshotErrors)?.errors
        self.init(message: error.description, context: error.errorContext, errors: many?.map { ErrorObject($0) })
    }

    enum Key: String, CodingKey { case message, errors }

    func encode(to encoder: any Encoder) throws {
        try context.encode(to: encoder)  // database, file, line, record, field, table, row_id
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(message, forKey: .message)
        try container.encodeIfPresent(errors, forKey: .errors)
    }
}

/// A failure whose JSON report (with "ok": false) is already printed: only the message is left
/// to say, on standard error.
struct ReportedFailure: Error {
    var error: any ToolcfgError
}

/// A check that ran to the end and found problems (verify-keys, stress, migrate verify): the
/// report says what, this says that it failed.
struct CheckFailed: ToolcfgError {
    var message: String
    var errorContext = ErrorContext()
    var exitStatus: ExitStatus { .dataError }
    var description: String { message }
}

/// Ends the process for an error from anywhere: the message on standard error under one prefix,
/// and with --json the contract's error object too, then the exit status.
enum FailureExit {
    private static let exiting = Atomic<Bool>(false)

    static func exit(_ error: any Error, command: (any ParsableCommand)?, arguments: [String]) -> Never {
        // The signal watcher's thread and the main thread may both fail the command: one message.
        if exiting.exchange(true, ordering: .acquiringAndReleasing) { while true { pause() } }
        let json = arguments.contains("--json")
        // With the data on standard output, export's report (and so its error) goes to standard error.
        let toStandardError = (command as? Export)?.out == "-"
        let failure: ReportFailure
        switch error {
        case let reported as ReportedFailure:
            Console.error(reported.error.description)
            Glibc.exit(reported.error.exitStatus.rawValue)
        case let exit as ExitCode:
            Glibc.exit(exit.rawValue)
        case let error as any ToolcfgError:
            Console.error(error.description)
            failure = .init(error)
        default:
            let status = Toolcfg.exitCode(for: error)
            // Help, --version and completion scripts are not failures: ArgumentParser prints them.
            if status == .success { Toolcfg.exit(withError: error) }
            var text = Toolcfg.fullMessage(for: error)
            if text.hasPrefix("Error: ") { text.removeFirst("Error: ".count) }
            // ArgumentParser shows the root's usage for a validation error thrown by run(): the
            // command's own is what helps.
            if error is ValidationError, let command, let path = commandPath(to: type(of: command)) {
                text =
                    "\(Toolcfg.message(for: error))\nUsage: \(Toolcfg.usageString(for: type(of: command)))\n"
                    + "  See '\(path.joined(separator: " ")) --help' for more information."
            }
            FileHandle.standardError.write(Data((Console.errorPrefix + text + (text.hasSuffix("\n") ? "" : "\n")).utf8))
            // ArgumentParser's usage errors are 64; anything else unforeseen is an internal error (70).
            failure = .init(
                exitStatus: status == .failure ? ExitStatus.software.rawValue : status.rawValue, message: Toolcfg.message(for: error))
        }
        if json, let text = try? JSONReport<Never>(report: nil, failure: failure).render() {
            (toStandardError ? FileHandle.standardError : FileHandle.standardOutput).write(Data((text + "\n").utf8))
        }
        Glibc.exit(failure.exitStatus)
    }

    /// The command names from the root to `target` ("toolcfg", "migrate", "up").
    private static func commandPath(to target: any ParsableCommand.Type, from root: any ParsableCommand.Type = Toolcfg.self) -> [String]? {
        if root == target { return [root._commandName] }
        for sub in root.configuration.subcommands {
            if let path = commandPath(to: target, from: sub) { return [root._commandName] + path }
        }
        return nil
    }
}

/// "1 record", "2 records".
func count(_ number: some BinaryInteger, _ noun: String) -> String {
    "\(number) \(noun)\(number == 1 ? "" : "s")"
}
