import ArgumentParser
import Foundation
import ToolConfigKit

struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The SQLite database (or set TOOLCFG_DB).", valueName: "PATH"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for another writer's lock before giving up (exit 75).", valueName: "SECONDS"))
    var busyTimeout: Double = 10

    func path() throws -> String {
        if let db { return db }
        if let fromEnvironment = ProcessInfo.processInfo.environment["TOOLCFG_DB"], !fromEnvironment.isEmpty { return fromEnvironment }
        throw ValidationError("no database given: use --db PATH or set TOOLCFG_DB")
    }

    func open(_ mode: SQLiteConnection.OpenMode) throws -> SQLiteConnection {
        let path = try path()
        return try reporting {
            try SQLiteConnection(path: path, mode: mode, options: .init(busyTimeout: .milliseconds(Int64(busyTimeout * 1000))))
        }
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print a machine-readable JSON report on standard output.")
    var json = false
}

/// Runs library code, turning its typed errors into a message on stderr and the contract's exit status.
func reporting<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as any ToolcfgError {
        Console.error(error.description)
        throw ExitCode(error.exitStatus.rawValue)
    }
}

enum Console {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("toolcfg: error: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }

    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    static func json(_ value: some Encodable) throws {
        out(try encoded(value))
    }

    static func jsonToStandardError(_ value: some Encodable) throws {
        FileHandle.standardError.write(Data((try encoded(value) + "\n").utf8))
    }

    private static func encoded(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
