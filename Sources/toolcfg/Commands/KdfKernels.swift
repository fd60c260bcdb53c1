import ArgumentParser
import Foundation
import ToolConfigKit

/// The PBKDF2 kernels' rates on this CPU and the one this process chose (internal: for
/// scripts/bench.sh pbkdf2).
struct KdfKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kdf-kernels",
        abstract: "Measures each PBKDF2 kernel this CPU runs and names the one toolcfg chose (internal: scripts/bench.sh pbkdf2).",
        discussion: """
            toolcfg times each supported kernel for a few milliseconds at the first key derivation \
            and uses the fastest; \(PBKDF2.kernelVariable)=scalar|sha-ni-x2|avx512-x16 names one instead. \
            Prints one RESULT line per kernel and thread count: derivations per second of \
            PBKDF2-HMAC-SHA256 with 1,000 iterations (scheme v1's row key).
            """,
        shouldDisplay: false
    )

    @Option(name: .long, help: "Seconds each kernel runs per measurement.") var seconds: Double = 0.5
    @Option(name: .long, help: "Thread counts to measure, comma-separated.") var threads: String = "1,2"
    @Option(name: .long, help: "Measurements per kernel and thread count, round-robin; the median is reported.") var runs: Int = 3

    func run() throws {
        let selection = PBKDF2.selection
        if let ignored = selection.ignoredRequest { Console(quiet: false).warn(ignored) }
        let start = selection.measuredRates.map { "\($0.key)=\(Int($0.value.rounded()))/s" }.sorted().joined(separator: " ")
        Console.out("RESULT selected kernel=\(selection.kernel) forced=\(selection.forced)\(start.isEmpty ? "" : " at_start: \(start)")")
        let counts = threads.split(separator: ",").compactMap { Int($0) }.filter { $0 >= 1 }
        for count in counts {
            var rates: [PBKDF2.Kernel: [Double]] = [:]
            for _ in 0..<max(1, runs) {
                for kernel in PBKDF2.Kernel.supported {
                    rates[kernel, default: []].append(PBKDF2.measureRate(kernel, threads: count, seconds: seconds))
                }
            }
            for kernel in PBKDF2.Kernel.supported {
                let sorted = rates[kernel, default: []].sorted()
                let median = sorted[sorted.count / 2]
                Console.out(
                    String(
                        format:
                            "RESULT kernel=%@ lanes=%d threads=%d derivations_per_s=%.0f per_thread=%.0f "
                            + "us_per_derivation_per_thread=%.1f runs=%@",
                        kernel.rawValue, kernel.lanes, count, median, median / Double(count), 1e6 * Double(count) / median,
                        sorted.map { String(format: "%.0f", $0) }.joined(separator: ",")))
            }
        }
    }
}
