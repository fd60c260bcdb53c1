import Foundation

/// Stress writers as separate processes: the parent runs `toolcfg stress-worker --plan JSON` once
/// per writer, with the database in the worker's environment (`TOOLCFG_DB`: a PostgreSQL URL may
/// carry a password, which must not travel in argv). A worker opens its connection, prepares its
/// statements and prints `ready`; when every worker is ready the parent closes their standard
/// inputs, which starts them all at once; each prints its result as one JSON line and exits 0
/// (errors of its operations are in the result; a worker that cannot start exits non-zero with
/// the reason on stderr).
public enum StressWorker {
    public static let subcommand = "stress-worker"
    static let ready = "ready"

    /// The variable of the worker's environment that holds the database.
    public static let databaseVariable = "TOOLCFG_DB"

    /// The worker's side. `database` is `TOOLCFG_DB` of its environment; `send` writes a line to
    /// standard output; `waitForStart` returns when standard input reaches its end.
    public static func serve(plan json: String, database: String?, send: (String) -> Void, waitForStart: () -> Void) throws {
        let plan: StressPlan
        do {
            plan = try JSONDecoder().decode(StressPlan.self, from: Data(json.utf8))
        } catch {
            throw StressError.badPlan(String(describing: error))
        }
        guard let database, !database.isEmpty else { throw StressError.badPlan("no database: \(databaseVariable) is not set") }
        let writer = try StressWriter(plan: plan, location: try DatabaseLocation(database, origin: .environment))
        send(ready)
        waitForStart()
        let result = writer.run()
        send(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }

    /// The parent's side: starts one process per plan, waits until all are ready, starts them
    /// together and collects their results.
    static func run(executable: String, location: DatabaseLocation, plans: [StressPlan]) throws -> [StressWriterResult] {
        var environment = ProcessInfo.processInfo.environment
        environment[databaseVariable] = location.openingText
        var workers: [Process] = []
        defer { for worker in workers where worker.isRunning { worker.terminate() } }
        var channels: [(input: Pipe, output: Pipe, errors: ErrorCollector)] = []
        for plan in plans {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = [subcommand, "--plan", String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)]
            process.environment = environment
            let input = Pipe(), output = Pipe(), errors = Pipe()
            process.standardInput = input
            process.standardOutput = output
            process.standardError = errors
            do {
                try process.run()
            } catch {
                throw StressError.workerFailed(writer: plan.writer, reason: "cannot start \(executable): \(error.localizedDescription)")
            }
            workers.append(process)
            channels.append((input, output, ErrorCollector(errors.fileHandleForReading)))
        }
        for (index, channel) in channels.enumerated() {
            var line = Data()
            while !line.contains(0x0a) {
                let chunk = channel.output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            if String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) != ready {
                workers[index].waitUntilExit()
                throw StressError.workerFailed(writer: index, reason: failure(workers[index], channel.errors.text()))
            }
        }
        for channel in channels { try? channel.input.fileHandleForWriting.close() }
        var results: [StressWriterResult] = []
        for (index, channel) in channels.enumerated() {
            let data = channel.output.fileHandleForReading.readDataToEndOfFile()
            workers[index].waitUntilExit()
            guard workers[index].terminationReason == .exit, workers[index].terminationStatus == 0,
                let result = try? JSONDecoder().decode(StressWriterResult.self, from: data)
            else {
                throw StressError.workerFailed(writer: index, reason: failure(workers[index], channel.errors.text()))
            }
            results.append(result)
        }
        return results
    }

    private static func failure(_ process: Process, _ stderr: String) -> String {
        let how =
            process.terminationReason == .exit
            ? "exited with status \(process.terminationStatus)" : "was killed by signal \(process.terminationStatus)"
        let message = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        return message.isEmpty ? how : "\(how): \(message)"
    }

    /// Reads a worker's stderr to its end on its own thread, so a chatty worker cannot block.
    private final class ErrorCollector: @unchecked Sendable {
        private let lock = NSLock()
        private let done = DispatchSemaphore(value: 0)
        private var data = Data()

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                let all = handle.readDataToEndOfFile()
                lock.withLock { data = all }
                done.signal()
            }
        }

        func text() -> String {
            done.wait()
            done.signal()
            return lock.withLock { String(decoding: data, as: UTF8.self) }
        }
    }
}
