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
