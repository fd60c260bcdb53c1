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

    /// Fixed slots written once each from concurrent iterations.
    private final class Slots<R>: @unchecked Sendable {
        private var storage: [R?]

        init(count: Int) { storage = Array(repeating: nil, count: count) }

        func set(_ index: Int, _ value: R) {
            storage.withUnsafeMutableBufferPointer { $0[index] = value }
        }

        func collect() -> [R] { storage.map { $0! } }
    }

    public static var defaultJobs: Int { max(1, System.coreCount) }
}

enum System {
    static var coreCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}

import Foundation
