// toolcfg benchmark suite (ordo-one/benchmark). Run through `scripts/bench.sh [section]` or, from
// Benchmarks/, `swift package benchmark --target ToolcfgBenchmarks`.
//
// Naming: every benchmark name starts with its section ("PBKDF2 ...", later "CSV ...", "Rotation
// ...") so that `swift package benchmark --filter 'PBKDF2.*'` (what scripts/bench.sh does; the
// filter is a regex that must match the WHOLE name) selects one section. Add a new section as
// another `register...Benchmarks()` function called below, plus a section in scripts/bench.sh.

import Benchmark
import ToolConfigKit

let benchmarks: @Sendable () -> Void = {
    registerPBKDF2Benchmarks()
    // registerCSVBenchmarks()       // CSV export/import (later issue)
    // registerRotationBenchmarks()  // key rotation (later issue)
}

// MARK: - PBKDF2

/// Parameters of the stored-secret row key: PBKDF2-HMAC-SHA256, 1000 iterations, 32-byte password,
/// 32-byte salt, 32-byte output. scripts/bench/bench_pbkdf2.py measures exactly the same derivation.
enum PBKDF2Params {
    static let iterations = 1000
    static let length = 32
    static let password: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
    static let salt: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
}

func registerPBKDF2Benchmarks() {
    // One derivation is ~0.1 to 0.5 ms, so one derivation per measured iteration (.one) already has
    // good timer resolution and gives thousands of samples; the inner loop still goes through
    // scaledIterations so a larger scaling factor only needs a change here.
    // Time metrics only: .cpuTotal has 10 ms resolution on Linux (useless per derivation), and
    // malloc counting (.mallocCountTotal) slows the OpenSSL path measurably, because OpenSSL 3.0's
    // PKCS5_PBKDF2_HMAC makes ~4,000 allocations per derivation (the fast path: none in its loop).
    // Nanoseconds keep 3 more digits than whole µs; scripts/bench.sh reads the wall-clock p50 (the
    // median) of each benchmark from the table.
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 50,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 20_000,
        setup: {
            // Both paths must agree before either is worth timing.
            let fast = PBKDF2.deriveKey(
                password: PBKDF2Params.password, salt: PBKDF2Params.salt,
                iterations: PBKDF2Params.iterations, length: PBKDF2Params.length)
            let reference = PBKDF2.deriveKey(
                password: PBKDF2Params.password, salt: PBKDF2Params.salt,
                iterations: PBKDF2Params.iterations, length: PBKDF2Params.length,
                reference: true)
            precondition(fast == reference, "fast PBKDF2 and PKCS5_PBKDF2_HMAC disagree")
        }
    )

    Benchmark("PBKDF2 fast", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(
                PBKDF2.deriveKey(
                    password: PBKDF2Params.password, salt: PBKDF2Params.salt,
                    iterations: PBKDF2Params.iterations, length: PBKDF2Params.length))
        }
    }

    // Two derivations interleaved on the SHA extensions (a rotation's old and new row key):
    // the time is for the pair, so per derivation it is half the p50.
    Benchmark("PBKDF2 pair interleaved", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(
                PBKDF2.deriveKeyPair(
                    (PBKDF2Params.password, PBKDF2Params.salt), (PBKDF2Params.salt, PBKDF2Params.password),
                    iterations: PBKDF2Params.iterations))
        }
    }

    // Sixteen derivations in the lanes of AVX-512 registers (verify-keys and export): the time is
    // for all sixteen, so per derivation it is a sixteenth of the p50. Only where the CPU has it.
    if PBKDF2.hasAVX512 {
        let salts = (0..<16).map { lane in PBKDF2Params.salt.map { $0 &+ UInt8(lane) } }
        Benchmark("PBKDF2 sixteen lanes AVX-512", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(PBKDF2.deriveKeys16(password: PBKDF2Params.password, salts: salts, iterations: PBKDF2Params.iterations))
            }
        }
    }

    Benchmark("PBKDF2 OpenSSL PKCS5", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(
                PBKDF2.deriveKey(
                    password: PBKDF2Params.password, salt: PBKDF2Params.salt,
                    iterations: PBKDF2Params.iterations, length: PBKDF2Params.length,
                    reference: true))
        }
    }
}
