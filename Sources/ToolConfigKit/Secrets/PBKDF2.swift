import CFastPBKDF2
import COpenSSL

/// PBKDF2-HMAC-SHA256, the row-key derivation of the stored-secret format.
public enum PBKDF2 {
    /// The fast path (CFastPBKDF2): HMAC states precomputed once, two block compressions per
    /// iteration. Used by every operation.
    public static func deriveKey(password: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer,
                                 iterations: Int, into output: UnsafeMutableRawBufferPointer) {
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
    public static func deriveKeyPair(passwordA: UnsafeRawBufferPointer, saltA: UnsafeRawBufferPointer,
                                     passwordB: UnsafeRawBufferPointer, saltB: UnsafeRawBufferPointer, iterations: Int,
                                     intoA outA: UnsafeMutableRawBufferPointer, intoB outB: UnsafeMutableRawBufferPointer) {
        precondition(outA.count == 32 && outB.count == 32)
        let done = hasSHAExtensions && toolcfg_pbkdf2_hmac_sha256_x2(
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
    public static func deriveKeys16(password: UnsafeRawBufferPointer, salts: [[UInt8]], iterations: Int,
                                    into out: UnsafeMutableRawBufferPointer) -> Bool {
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
            return toolcfg_pbkdf2_hmac_sha256_x16(Array(repeating: passwordPointer, count: 16), Array(repeating: password.count, count: 16),
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
    public static func deriveKeyPair(_ a: (password: [UInt8], salt: [UInt8]), _ b: (password: [UInt8], salt: [UInt8]),
                                     iterations: Int) -> ([UInt8], [UInt8]) {
        var outA = [UInt8](repeating: 0, count: 32), outB = [UInt8](repeating: 0, count: 32)
        a.password.withUnsafeBytes { pa in
            a.salt.withUnsafeBytes { sa in
                b.password.withUnsafeBytes { pb in
                    b.salt.withUnsafeBytes { sb in
                        outA.withUnsafeMutableBytes { oa in
                            outB.withUnsafeMutableBytes { ob in
                                deriveKeyPair(passwordA: pa, saltA: sa, passwordB: pb, saltB: sb, iterations: iterations, intoA: oa, intoB: ob)
                            }
                        }
                    }
                }
            }
        }
        return (outA, outB)
    }

    /// OpenSSL's own PKCS5_PBKDF2_HMAC: the independent reference the fast path is tested against.
    public static func referenceDeriveKey(password: UnsafeRawBufferPointer, salt: UnsafeRawBufferPointer,
                                          iterations: Int, into output: UnsafeMutableRawBufferPointer) {
        let ok = PKCS5_PBKDF2_HMAC(
            password.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(password.count),
            salt.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(salt.count),
            Int32(iterations), EVP_sha256(),
            Int32(output.count), output.baseAddress?.assumingMemoryBound(to: UInt8.self))
        precondition(ok == 1, "PKCS5_PBKDF2_HMAC failed")
    }

    /// Convenience over arrays, for tests and benchmarks.
    public static func deriveKey(password: [UInt8], salt: [UInt8], iterations: Int, length: Int,
                                 reference: Bool = false) -> [UInt8] {
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
