import Dispatch

/// Maps a batch on all cores (CPU-bound key derivations), keeping the input order. Each slot of
/// the result is written by exactly one iteration, so the shared buffer has no data race.
public enum ParallelMap {
    /// `chunks`: how many iterations share the items (default four per job).
    static func map<T: Sendable, R: Sendable>(_ items: [T], jobs: Int, chunks: Int? = nil, _ transform: @Sendable (T) -> R) -> [R] {
        guard jobs > 1, items.count > 1 else { return items.map(transform) }
        let results = Slots<R>(count: items.count)
        let chunks = min(chunks ?? jobs * 4, items.count)
        items.withUnsafeBufferPointer { input in
            nonisolated(unsafe) let input = input
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                var index = chunk * items.count / chunks
                let end = (chunk + 1) * items.count / chunks
                while index < end {
                    results.set(index, transform(input[index]))
                    index += 1
                }
            }
        }
        return results.collect()
    }

    /// Maps a batch `size` neighbours at a time on all cores, keeping the input order (the last
    /// group may be smaller). For work whose items share a computation: derivations run sixteen
    /// or two at a time (`SecretCipher.decrypt` on an array). Each group is an iteration of its
    /// own (about 0.6 ms of derivations): with a few large chunks, a page's last chunk left the
    /// other core idle, 3-6 % of a verify-keys' wall time, 2-5 % faster without (150,000 rows).
    static func mapInGroups<T: Sendable, R: Sendable>(_ items: [T], size: Int, jobs: Int, _ transform: @Sendable ([T]) -> [R]) -> [R] {
        let starts = Array(stride(from: 0, to: items.count, by: size))
        return map(starts, jobs: jobs, chunks: starts.count) { start in
            transform(Array(items[start..<min(start + size, items.count)]))
        }.flatMap { $0 }
    }

    /// Fixed slots written once each from concurrent iterations. Raw memory allocated up front,
    /// not an Array: `Array.withUnsafeMutableBufferPointer` moves the array out of its variable
    /// for the duration of the call, so two threads calling it at once race on the array itself.
    private final class Slots<R>: @unchecked Sendable {
        private let storage: UnsafeMutableBufferPointer<R>
        private let count: Int

        init(count: Int) {
            self.count = count
            storage = .allocate(capacity: count)
        }

        /// Each index is initialised exactly once, by one thread.
        func set(_ index: Int, _ value: R) {
            (storage.baseAddress! + index).initialize(to: value)
        }

        /// After every index was set (concurrentPerform has returned).
        func collect() -> [R] { Array(storage) }

        deinit {
            storage.baseAddress!.deinitialize(count: count)
            storage.deallocate()
        }
    }

    public static var defaultJobs: Int { max(1, System.coreCount) }
}

/// Work started now on another thread, its result waited for later.
final class Deferred<Value: Sendable>: @unchecked Sendable {
    // `value` is written once, before `done` is signalled, and read only after waiting for it.
    private let done = DispatchSemaphore(value: 0)
    private var value: Value?

    init(_ work: @escaping @Sendable () -> Value) {
        DispatchQueue.global().async {
            self.value = work()
            self.done.signal()
        }
    }

    /// Blocks until the work is done; again, returns at once.
    func wait() -> Value {
        done.wait()
        done.signal()
        return value!
    }
}

/// A value that is not `Sendable` handed to one other thread (a `Deferred`'s work) and back:
/// the sender touches it again only after that work is done (`Deferred.wait()`), so it is never
/// used by two threads at once.
struct Handoff<Value>: @unchecked Sendable {
    let value: Value

    init(_ value: Value) { self.value = value }
}

enum System {
    static var coreCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}

import Foundation
