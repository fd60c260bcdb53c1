import Foundation
import Testing
import ToolConfigKit

/// Paths of the repository, found from this file so tests run from any directory.
package enum Repository {
    /// Tests/ToolConfigTestSupport/TestSupport.swift, three levels below the root.
    package static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    package static let migrations = root.appendingPathComponent("migrations")
    package static let scripts = root.appendingPathComponent("scripts")
    package static let vectors = root.deletingLastPathComponent().appendingPathComponent("shared/vectors/bodhi-crypto-vectors.json")

    /// The toolcfg executable built beside the test bundle.
    package static var toolcfg: URL {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("toolcfg")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder.deleteLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug/toolcfg")
    }
}

/// A master key's stored text (base64 of 32 bytes) for tests that need one valid key.
package enum TestMasterKeys {
    package static let valid = "LcbtwdpNs0RkP9B9MjdrxQxjQY/LyFouXRnvzchBLlA="
}

/// A fresh folder per test, removed when the value goes away.
package final class TemporaryFolder {
    package let url: URL

    package init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("toolcfg-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    package func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

package struct ProcessResult {
    package var status: Int32
    package var stdout: String
    package var stderr: String

    package init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs a program with the given standard input and environment additions.
package func runProcess(
    _ executable: URL, _ arguments: [String], stdin: Data = Data(),
    environment: [String: String] = [:], removing: [String] = []
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for key in removing { env[key] = nil }
    env.merge(environment) { _, new in new }
    process.environment = env
    let input = Pipe(), output = Pipe(), error = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    try process.run()
    // Read both pipes concurrently so a large output cannot block the child; the semaphore
    // hands the bytes over (and orders the accesses, for ThreadSanitizer).
    final class Box: @unchecked Sendable { var data = Data() }
    let errorBox = Box()
    let done = DispatchSemaphore(value: 0)
    let errorHandle = error.fileHandleForReading
    Thread {
        errorBox.data = errorHandle.readDataToEndOfFile()
        done.signal()
    }.start()
    input.fileHandleForWriting.write(stdin)
    try input.fileHandleForWriting.close()
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    done.wait()
    let errorData = errorBox.data
    return ProcessResult(
        status: process.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errorData, as: UTF8.self))
}

package func toolcfg(_ arguments: [String], stdin: Data = Data(), environment: [String: String] = [:]) throws -> ProcessResult {
    try runProcess(
        Repository.toolcfg, arguments, stdin: stdin, environment: environment,
        removing: ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE"])
}

/// Runs scripts/peers/crypto_peer.py (Python's `cryptography`) with a JSON request.
package func cryptoPeer(_ mode: String, _ request: [String: Any]) throws -> Any {
    let python = URL(fileURLWithPath: "/usr/bin/env")
    let result = try runProcess(
        python, ["python3", Repository.scripts.appendingPathComponent("peers/crypto_peer.py").path, mode],
        stdin: try JSONSerialization.data(withJSONObject: request))
    guard result.status == 0 else {
        Issue.record("crypto_peer.py \(mode) failed: \(result.stderr)")
        throw CancellationError()
    }
    return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8), options: [.fragmentsAllowed])
}

package func key(_ base64: String) throws -> MasterKey {
    try MasterKey(text: base64, source: .generated)
}

/// The error a body throws, or nil; erases typed throws so tests can inspect any error.
package func thrownError(_ body: () throws -> Void) -> (any Error)? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// Feeds a child's standard input from a thread, up to `limit` bytes, stopping when the child
/// closes its end: `sent` then tells how much got in before the reader gave up.
package final class PipeFeeder: @unchecked Sendable {
    package struct Stop: Error {}

    package let pipe = Pipe()
    private let limit: Int
    private var buffer: [UInt8] = []
    private let finished = DispatchSemaphore(value: 0)
    // Written only by the feeding thread, read after `finished` is signalled.
    private var written = 0

    package init(limit: Int) {
        self.limit = limit
        buffer.reserveCapacity(1 << 16)
    }

    /// Starts the thread; `produce` calls `write` until it has nothing more or `write` throws.
    package func start(_ produce: @escaping @Sendable (PipeFeeder) throws -> Void) {
        Thread {
            // A write to a pipe nobody reads raises SIGPIPE, which would end the whole test
            // process; blocked on this thread only, the write fails with EPIPE instead.
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
            if (try? produce(self)) != nil { try? self.flush() }
            try? self.pipe.fileHandleForWriting.close()
            self.finished.signal()
        }.start()
    }

    package func write(_ text: String) throws { try write(Array(text.utf8)) }

    package func write(_ bytes: [UInt8]) throws {
        buffer += bytes
        if buffer.count >= 1 << 16 { try flush() }
    }

    private func flush() throws {
        let fd = pipe.fileHandleForWriting.fileDescriptor
        var offset = 0
        defer { buffer.removeAll(keepingCapacity: true) }
        while offset < buffer.count {
            guard written < limit else { throw Stop() }
            let n = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Stop()  // EPIPE: the reader is gone
            }
            offset += n
            written += n
        }
    }

    /// Waits for the thread to end; the bytes that went into the pipe.
    package func sent() -> Int {
        finished.wait()
        return written
    }
}

/// The sanitizer the suite runs under (scripts/ci/sanitize.sh sets TOOLCFG_TEST_SANITIZER), or nil.
package enum Sanitizer {
    package static let running = ProcessInfo.processInfo.environment["TOOLCFG_TEST_SANITIZER"]
}

/// Runs toolcfg as a user whom the mode bits stop from writing `database` (made 0444, its folder
/// 0555 by the caller): this user, or, under root (whom mode bits stop from nothing), nobody
/// through setpriv. Cancels the test where neither can be had.
package struct WriteRefusingUser {
    private var prefix: [String] = []

    package init(database: String, owning paths: [String]) throws {
        guard Self.canWrite(database) else { return }  // the mode bits stop this user already
        let setpriv = "/usr/bin/setpriv"
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: setpriv) else {
            try Test.cancel("writes to a 0444 file succeed here (root?), and there is no setpriv to drop privileges")
        }
        let nobody: uid_t = 65534
        for path in paths { chown(path, nobody, gid_t(nobody)) }
        prefix = [setpriv, "--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", "--"]
        let probe = try runProcess(URL(fileURLWithPath: setpriv), Array(prefix.dropFirst()) + ["/bin/sh", "-c", "exec 3>>\"$0\"", database])
        let runs = try runProcess(URL(fileURLWithPath: setpriv), Array(prefix.dropFirst()) + [Repository.toolcfg.path, "--help"])
        guard probe.status != 0, runs.status == 0 else {
            try Test.cancel(
                "running as root, and nobody either can write the 0444 file or cannot run toolcfg: the database cannot be made read-only"
            )
        }
    }

    private static func canWrite(_ path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_APPEND)
        if fd >= 0 { close(fd) }
        return fd >= 0
    }

    package func toolcfg(_ arguments: [String]) throws -> ProcessResult {
        guard let setpriv = prefix.first else { return try ToolConfigTestSupport.toolcfg(arguments) }
        return try runProcess(
            URL(fileURLWithPath: setpriv), Array(prefix.dropFirst()) + [Repository.toolcfg.path] + arguments,
            removing: ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE"])
    }
}

/// What `dump` prints for a value: every stored property, the way a leak would show.
package func dumped(_ value: Any) -> String {
    var text = ""
    dump(value, to: &text)
    return text
}
