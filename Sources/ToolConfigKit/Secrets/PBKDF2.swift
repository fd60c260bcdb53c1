import CFastPBKDF2
import COpenSSL
import Dispatch
import Foundation

/// PBKDF2-HMAC-SHA256, the row-key derivation of the stored-secret format.
public enum PBKDF2 {
    /// The fast path (CFastPBKDF2): HMAC states precomputed once, two block compressions per
    /// iteration. Used by every operation.
    public static func deriveKey(
        password: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer,
        iterations: Int, into output: UnsafeMutableRawBufferPointer
    ) {
        let ok = toolcfg_pbkdf2_hmac_sha256(
            password.baseAddress?.assumingMemoryBound(to: UInt8.self), password.count,
            salt.baseAddress?.assumingMemoryBound(to: UInt8.self), salt.count,
            UInt32(iterations),
            output.baseAddress?.assumingMemoryBound(to: UInt8.self), output.count)
        precondition(ok == 1, "PBKDF2 called with zero iterations or an empty output")
    }

    /// Whether this CPU runs two derivations interleaved on the SHA extensions.
    public static let hasSHAExtensions = toolcfg_sha_ni_available() == 1

    /// Two 32-byte derivations at once: interleaved on the SHA extensions (about the cost of one
    /// on its own), or one after the other where the CPU lacks them.
    public static func deriveKeyPair(
        passwordA: UnsafeRawBufferPointer, saltA: UnsafeRawBufferPointer,
        passwordB: UnsafeRawBufferPointer, saltB: UnsafeRawBufferPointer, iterations: Int,
        intoA outA: UnsafeMutableRawBufferPointer, intoB outB: UnsafeMutableRawBufferPointer
    ) {
        precondition(outA.count == 32 && outB.count == 32)
        let done =
            hasSHAExtensions
            && toolcfg_pbkdf2_hmac_sha256_x2(
                passwordA.baseAddress?.assumingMemoryBound(to: UInt8.self), passwordA.count,
                saltA.baseAddress?.assumingMemoryBound(to: UInt8.self), saltA.count,
                passwordB.baseAddress?.assumingMemoryBound(to: UInt8.self), passwordB.count,
                saltB.baseAddress?.assumingMemoryBound(to: UInt8.self), saltB.count,
                UInt32(iterations),
                outA.baseAddress?.assumingMemoryBound(to: UInt8.self), outB.baseAddress?.assumingMemoryBound(to: UInt8.self)) == 1
        if !done {
            deriveKey(password: passwordA, salt: saltA, iterations: iterations, into: outA)
            deriveKey(password: passwordB, salt: saltB, iterations: iterations, into: outB)
        }
    }

    /// Whether this CPU runs sixteen derivations at once in the lanes of AVX-512 registers.
    public static let hasAVX512 = toolcfg_avx512_available() == 1

    /// Sixteen 32-byte derivations with one password and a salt each, in the lanes of AVX-512
    /// registers (see sha256_avx512.c), into 16 x 32 bytes of `out`. Returns false, writing
    /// nothing, where the CPU lacks AVX-512.
    public static func deriveKeys16(
        password: UnsafeRawBufferPointer, salts: [[UInt8]], iterations: Int,
        into out: UnsafeMutableRawBufferPointer
    ) -> Bool {
        precondition(salts.count == 16 && out.count == 16 * 32)
        guard hasAVX512 else { return false }
        let joined = salts.flatMap { $0 }
        return joined.withUnsafeBufferPointer { bytes in
            var saltPointers: [UnsafePointer<UInt8>?] = [], offset = 0
            for salt in salts {
                saltPointers.append(bytes.baseAddress.map { $0 + offset })
                offset += salt.count
            }
            let passwordPointer = password.baseAddress?.assumingMemoryBound(to: UInt8.self)
            let outPointers = (0..<16).map { Optional(out.baseAddress!.assumingMemoryBound(to: UInt8.self) + 32 * $0) }
            return toolcfg_pbkdf2_hmac_sha256_x16(
                Array(repeating: passwordPointer, count: 16), Array(repeating: password.count, count: 16),
                saltPointers, salts.map(\.count), UInt32(iterations), outPointers) == 1
        }
    }

    /// Convenience over arrays, for tests and benchmarks: nil where the CPU lacks AVX-512.
    public static func deriveKeys16(password: [UInt8], salts: [[UInt8]], iterations: Int) -> [[UInt8]]? {
        var out = [UInt8](repeating: 0, count: 16 * 32)
        let done = password.withUnsafeBytes { p in
            out.withUnsafeMutableBytes { deriveKeys16(password: p, salts: salts, iterations: iterations, into: $0) }
        }
        return done ? (0..<16).map { Array(out[32 * $0..<32 * ($0 + 1)]) } : nil
    }

    /// Convenience over arrays, for tests and benchmarks.
    public static func deriveKeyPair(
        _ a: (password: [UInt8], salt: [UInt8]), _ b: (password: [UInt8], salt: [UInt8]),
        iterations: Int
    ) -> ([UInt8], [UInt8]) {
        var outA = [UInt8](repeating: 0, count: 32), outB = [UInt8](repeating: 0, count: 32)
        a.password.withUnsafeBytes { pa in
            a.salt.withUnsafeBytes { sa in
                b.password.withUnsafeBytes { pb in
                    b.salt.withUnsafeBytes { sb in
                        outA.withUnsafeMutableBytes { oa in
                            outB.withUnsafeMutableBytes { ob in
                                deriveKeyPair(
                                    passwordA: pa, saltA: sa, passwordB: pb, saltB: sb, iterations: iterations, intoA: oa, intoB: ob)
                            }
                        }
                    }
                }
            }
        }
        return (outA, outB)
    }

    // MARK: Kernels, and the one chosen by measuring them

    /// One of CFastPBKDF2's PBKDF2-HMAC-SHA256 kernels. Which is fastest depends on the CPU (the
    /// SHA unit's latency, AVX-512's width and clock, whether two threads share one core), so
    /// `selection` times each supported one at first use instead of trusting CPUID alone.
    public enum Kernel: String, Sendable, CaseIterable, CustomStringConvertible {
        /// One derivation at a time over OpenSSL's block function (which uses the SHA extensions
        /// itself where the CPU has them). Runs everywhere.
        case scalar = "scalar"
        /// Two derivations interleaved on the x86 SHA extensions (sha256_ni.c).
        case shaNIPair = "sha-ni-x2"
        /// Sixteen derivations in the 32-bit lanes of AVX-512 registers (sha256_avx512.c).
        case avx512x16 = "avx512-x16"

        /// Derivations per call.
        public var lanes: Int {
            switch self {
            case .scalar: 1
            case .shaNIPair: 2
            case .avx512x16: 16
            }
        }

        /// Whether this CPU (and OS) can run it.
        public var isSupported: Bool {
            switch self {
            case .scalar: true
            case .shaNIPair: PBKDF2.hasSHAExtensions
            case .avx512x16: PBKDF2.hasAVX512
            }
        }

        public var description: String { rawValue }

        /// The kernels this CPU can run, narrowest first.
        public static var supported: [Kernel] { allCases.filter(\.isSupported) }
    }

    /// Names a kernel to use instead of the measured choice (benchmarks, comparisons):
    /// `TOOLCFG_PBKDF2_KERNEL=scalar|sha-ni-x2|avx512-x16`. A name that is unknown or that this
    /// CPU cannot run is ignored (`Selection.ignoredRequest` says so) and the measured choice runs.
    public static let kernelVariable = "TOOLCFG_PBKDF2_KERNEL"

    /// The kernel every grouped derivation of this process uses, and why.
    public struct Selection: Sendable {
        /// The kernel in use.
        public let kernel: Kernel
        /// Whether `TOOLCFG_PBKDF2_KERNEL` chose it (then nothing was measured).
        public let forced: Bool
        /// Derivations per second on one thread, per supported kernel, as measured at first use
        /// (empty when forced).
        public let measuredRates: [Kernel: Double]
        /// A `TOOLCFG_PBKDF2_KERNEL` value that was not used, with the reason.
        public let ignoredRequest: String?

        /// From a `TOOLCFG_PBKDF2_KERNEL` value (nil or empty: none) and the kernels' rates
        /// (`measure` runs only when no valid kernel is named).
        static func make(request: String?, supported: [Kernel], measure: () -> [Kernel: Double]) -> Selection {
            var ignored: String?
            if let request, !request.isEmpty {
                if let kernel = Kernel(rawValue: request), supported.contains(kernel) {
                    return Selection(kernel: kernel, forced: true, measuredRates: [:], ignoredRequest: nil)
                }
                ignored =
                    Kernel(rawValue: request) == nil
                    ? "\(kernelVariable)=\(request): no such kernel (\(Kernel.allCases.map(\.rawValue).joined(separator: ", ")))"
                    : "\(kernelVariable)=\(request): this CPU cannot run it (it can run "
                        + "\(supported.map(\.rawValue).joined(separator: ", ")))"
            }
            let rates = measure()
            let fastest = supported.max { (rates[$0] ?? 0) < (rates[$1] ?? 0) } ?? .scalar
            return Selection(kernel: fastest, forced: false, measuredRates: rates, ignoredRequest: ignored)
        }

        /// For a remainder of `count` (< 16) derivations on the sixteen-lane kernel: whether one
        /// padded sixteen-lane call is quicker than the narrower kernels.
        func padsRemainder(_ count: Int) -> Bool {
            guard kernel == .avx512x16 else { return false }
            let narrow = PBKDF2.hasSHAExtensions ? Kernel.shaNIPair : .scalar
            guard let wide = measuredRates[.avx512x16], let other = measuredRates[narrow], wide > 0, other > 0 else { return count >= 8 }
            return Double(count) / other > 16 / wide
        }
    }

    /// Chosen once per process, at first use: the named kernel, else the one measured fastest
    /// (`measureAtStart`, a few milliseconds). A static `let` is initialised lazily and once,
    /// whichever thread gets there first.
    public static let selection: Selection = Selection.make(
        request: ProcessInfo.processInfo.environment[kernelVariable], supported: Kernel.supported, measure: measureAtStart)

    /// The kernel in use (see `selection`).
    public static var kernel: Kernel { selection.kernel }

    /// Each supported kernel's derivations per second on this thread: three rounds going round
    /// the kernels (so a change in the machine's speed falls on all), about 0.7 ms each per
    /// round, keeping each kernel's quickest call (the least disturbed by other work).
    static func measureAtStart() -> [Kernel: Double] {
        let kernels = Kernel.supported
        var best: [Kernel: Double] = [:]
        for kernel in kernels { _ = timeCall(kernel) }  // warm up: code and data in cache
        for _ in 0..<3 {
            for kernel in kernels {
                let start = DispatchTime.now().uptimeNanoseconds
                repeat {
                    let seconds = timeCall(kernel)
                    best[kernel] = min(best[kernel] ?? .infinity, seconds)
                } while DispatchTime.now().uptimeNanoseconds - start < 700_000
            }
        }
        return best.reduce(into: [:]) { rates, entry in rates[entry.key] = Double(entry.key.lanes) / max(entry.value, 1e-9) }
    }

    /// The seconds one call of `kernel` takes (fixed, non-secret inputs, 1,000 iterations).
    private static func timeCall(_ kernel: Kernel) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        runCalls(kernel, count: 1)
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// `count` calls of `kernel` on fixed inputs (measuring only).
    private static func runCalls(_ kernel: Kernel, count: Int) {
        let password = [UInt8](repeating: 0x5a, count: 32), salt = [UInt8](repeating: 0xa5, count: 32)
        var out = [UInt8](repeating: 0, count: 32 * kernel.lanes)
        password.withUnsafeBytes { p in
            salt.withUnsafeBytes { s in
                out.withUnsafeMutableBytes { o in
                    for _ in 0..<count {
                        deriveKeys(
                            passwords: Array(repeating: p, count: kernel.lanes), salts: Array(repeating: s, count: kernel.lanes),
                            iterations: StoredSecret.iterations, kernel: kernel, padsRemainder: { _ in false }, into: o)
                    }
                }
            }
        }
    }

    /// Derivations per second of `kernel` on `threads` threads at once, each running it for
    /// about `seconds` (benchmarks: `toolcfg kdf-kernels`; 1,000 iterations, 32-byte output).
    public static func measureRate(_ kernel: Kernel, threads: Int = 1, seconds: Double = 0.5) -> Double {
        precondition(kernel.isSupported && threads >= 1)
        let start = DispatchTime.now().uptimeNanoseconds
        let calls = ParallelMap.map(Array(0..<threads), jobs: threads) { _ in
            let begin = DispatchTime.now().uptimeNanoseconds
            var calls = 0
            repeat {
                runCalls(kernel, count: 1)
                calls += 1
            } while Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9 < seconds
            return calls
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Double(calls.reduce(0, +) * kernel.lanes) / elapsed
    }

    /// Derivations of 32 bytes, the i-th of `passwords[i]` and `salts[i]` into bytes 32 i ..< 32 i + 32
    /// of `out`, on `kernel` (by default the selected one): full groups of its lanes, then what
    /// remains on the narrower kernels (or, on sixteen lanes, one padded call where that is quicker).
    public static func deriveKeys(
        passwords: [UnsafeRawBufferPointer], salts: [UnsafeRawBufferPointer], iterations: Int,
        kernel: Kernel? = nil, into out: UnsafeMutableRawBufferPointer
    ) {
        let kernel = kernel ?? self.kernel
        deriveKeys(
            passwords: passwords, salts: salts, iterations: iterations, kernel: kernel,
            padsRemainder: { kernel == selection.kernel ? selection.padsRemainder($0) : $0 >= 8 }, into: out)
    }

    private static func deriveKeys(
        passwords: [UnsafeRawBufferPointer], salts: [UnsafeRawBufferPointer], iterations: Int,
        kernel: Kernel, padsRemainder: (Int) -> Bool, into out: UnsafeMutableRawBufferPointer
    ) {
        let count = passwords.count
        precondition(salts.count == count && out.count == 32 * count && kernel.isSupported && iterations > 0)
        func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? { buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) }
        func output(_ index: Int) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(rebasing: out[32 * index..<32 * (index + 1)])
        }
        var next = 0
        if kernel == .avx512x16 {
            while count - next >= 16 || (count > next && padsRemainder(count - next)) {
                let real = min(16, count - next)
                // Padded lanes repeat the last derivation and write into scratch, wiped after.
                withUnsafeTemporaryAllocation(byteCount: 32 * 16, alignment: 16) { scratch in
                    let lanes = (0..<16).map { next + min($0, real - 1) }
                    let outs = (0..<16).map { lane -> UnsafeMutablePointer<UInt8>? in
                        (lane < real ? output(next + lane).baseAddress! : scratch.baseAddress! + 32 * lane).assumingMemoryBound(
                            to: UInt8.self)
                    }
                    let ok = toolcfg_pbkdf2_hmac_sha256_x16(
                        lanes.map { bytes(passwords[$0]) }, lanes.map { passwords[$0].count },
                        lanes.map { bytes(salts[$0]) }, lanes.map { salts[$0].count }, UInt32(iterations), outs)
                    toolcfgSecureZero(scratch)
                    precondition(ok == 1, "the sixteen-lane PBKDF2 kernel refused its input")
                }
                next += real
            }
        }
        if kernel != .scalar && hasSHAExtensions {
            while count - next >= 2 {
                let a = next, b = next + 1
                let ok = toolcfg_pbkdf2_hmac_sha256_x2(
                    bytes(passwords[a]), passwords[a].count, bytes(salts[a]), salts[a].count,
                    bytes(passwords[b]), passwords[b].count, bytes(salts[b]), salts[b].count,
                    UInt32(iterations), output(a).baseAddress!.assumingMemoryBound(to: UInt8.self),
                    output(b).baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(ok == 1, "the paired PBKDF2 kernel refused its input")
                next += 2
            }
        }
        while next < count {
            deriveKey(password: passwords[next], salt: salts[next], iterations: iterations, into: output(next))
            next += 1
        }
    }

    /// Convenience over arrays, for tests and benchmarks: one 32-byte key per (password, salt).
    public static func deriveKeys(_ inputs: [(password: [UInt8], salt: [UInt8])], iterations: Int, kernel: Kernel? = nil) -> [[UInt8]] {
        var out = [UInt8](repeating: 0, count: 32 * inputs.count)
        func borrow(_ index: Int, _ passwords: [UnsafeRawBufferPointer], _ salts: [UnsafeRawBufferPointer]) {
            guard index < inputs.count else {
                out.withUnsafeMutableBytes {
                    deriveKeys(passwords: passwords, salts: salts, iterations: iterations, kernel: kernel, into: $0)
                }
                return
            }
            inputs[index].password.withUnsafeBytes { p in
                inputs[index].salt.withUnsafeBytes { s in borrow(index + 1, passwords + [p], salts + [s]) }
            }
        }
        borrow(0, [], [])
        return (0..<inputs.count).map { Array(out[32 * $0..<32 * ($0 + 1)]) }
    }

    /// OpenSSL's own PKCS5_PBKDF2_HMAC: the independent reference the fast path is tested against.
    public static func referenceDeriveKey(
        password: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer,
        iterations: Int, into output: UnsafeMutableRawBufferPointer
    ) {
        let ok = PKCS5_PBKDF2_HMAC(
            password.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(password.count),
            salt.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(salt.count),
            Int32(iterations), EVP_sha256(),
            Int32(output.count), output.baseAddress?.assumingMemoryBound(to: UInt8.self))
        precondition(ok == 1, "PKCS5_PBKDF2_HMAC failed")
    }

    /// Convenience over arrays, for tests and benchmarks.
    public static func deriveKey(
        password: [UInt8], salt: [UInt8], iterations: Int, length: Int,
        reference: Bool = false
    ) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        password.withUnsafeBytes { p in
            salt.withUnsafeBytes { s in
                out.withUnsafeMutableBytes { o in
                    if reference {
                        referenceDeriveKey(password: p, salt: s, iterations: iterations, into: o)
                    } else {
                        deriveKey(password: p, salt: s, iterations: iterations, into: o)
                    }
                }
            }
        }
        return out
    }
}
