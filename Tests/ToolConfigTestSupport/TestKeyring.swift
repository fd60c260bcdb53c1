import Foundation
import Testing
import ToolConfigKit

/// The keyring tests' own kernel keyring: `run` executes its body on a thread of its own that has
/// joined a new, empty session keyring (a thread's keyrings are its own), so the toolcfg
/// processes it starts inherit that keyring, and nothing reaches the user's.
/// TOOLCFG_TEST_KEYRING_SESSION_ONLY (and `KeyringEntry.sessionOnlyInProcess` in this process)
/// keeps them off the user's persistent keyring too.
package enum TestKeyring {
    static let sessionOnly = "TOOLCFG_TEST_KEYRING_SESSION_ONLY"

    /// Whether this machine's kernel gives a thread a session keyring of its own.
    package static let available: Bool = (try? run { true }) == true

    /// Where the keyring is missing the tests run only in CI, and fail there with the reason.
    package static var enabled: Bool { available || ProcessInfo.processInfo.environment["CI"] == "true" }
    package static var trait: ConditionTrait {
        .enabled(if: enabled, "the kernel keyring is not available here (and CI is not set, where it fails)")
    }

    struct Unavailable: Error, CustomStringConvertible {
        var reason: String
        var description: String {
            "the kernel keyring is not available here (\(reason)): the keyring tests need the kernel key service "
                + "(keyctl_join_session_keyring)"
        }
    }

    /// The body and its outcome, handed between the threads (the semaphore orders the accesses).
    private final class Handoff<T>: @unchecked Sendable {
        package var body: () throws -> T
        package var result: Result<T, any Error>?
        package init(_ body: @escaping () throws -> T) { self.body = body }
    }

    package static func run<T>(_ body: @escaping () throws -> T) throws -> T {
        // This process's own keyring calls too (an environment change would race other tests).
        KeyringEntry.sessionOnlyInProcess.store(true, ordering: .relaxed)
        let handoff = Handoff(body)
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            do throws(SecretError) {
                try KeyringEntry.joinNewSessionKeyring()
            } catch {
                handoff.result = .failure(Unavailable(reason: error.description))
                return
            }
            handoff.result = Result { try handoff.body() }
        }.start()
        done.wait()
        return try handoff.result!.get()
    }

    /// toolcfg with the keyring tests' environment (call from inside `run`).
    package static func toolcfg(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try ToolConfigTestSupport.toolcfg(arguments, environment: environment.merging([sessionOnly: "1"]) { new, _ in new })
    }
}
