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
