import Dispatch

/// Maps a batch on all cores (CPU-bound key derivations), keeping the input order. Each slot of
/// the result is written by exactly one iteration, so the shared buffer has no data race.
public enum ParallelMap {
    static func map<T: Sendable, R: Sendable>(_ items: [T], jobs: Int, _ transform: @Sendable (T) -> R) -> [R] {
        guard jobs > 1, items.count > 1 else { return items.map(transform) }
        let results = Slots<R>(count: items.count)
        let chunks = min(jobs * 4, items.count)
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

    /// Maps a batch two neighbours at a time on all cores, keeping the input order: `pair` takes
    /// items 0 and 1, 2 and 3, ...; `single` an odd last one. For work whose two halves share one
    /// computation (two PBKDF2 derivations interleaved cost about one).
    static func mapInPairs<T: Sendable, R: Sendable>(_ items: [T], jobs: Int, pair: @Sendable (T, T) -> (R, R),
                                                     single: @Sendable (T) -> R) -> [R] {
        let halves = map(Array(stride(from: 0, to: items.count, by: 2)), jobs: jobs) { index -> (R, R?) in
            guard index + 1 < items.count else { return (single(items[index]), nil) }
            let (first, second) = pair(items[index], items[index + 1])
            return (first, second)
        }
        var results: [R] = []
        results.reserveCapacity(items.count)
        for (first, second) in halves {
            results.append(first)
            if let second { results.append(second) }
        }
        return results
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

enum System {
    static var coreCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}

import Foundation
