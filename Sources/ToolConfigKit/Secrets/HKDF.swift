import CFastPBKDF2

/// HKDF-SHA256 (RFC 5869), the row-key derivation of scheme v2, on the same hand-written HMAC as
/// PBKDF2 (see toolcfg_hkdf_sha256_32 for why).
public enum HKDF {
    /// 32 bytes of output key material into `output` (exactly 32 bytes).
    public static func deriveKey(
        salt: UnsafeRawBufferPointer, inputKey: UnsafeRawBufferPointer, info: [UInt8],
        into output: UnsafeMutableRawBufferPointer
    ) {
        precondition(output.count == 32, "HKDF here gives 32 bytes")
        let ok = info.withUnsafeBufferPointer { info in
            toolcfg_hkdf_sha256_32(
                salt.baseAddress?.assumingMemoryBound(to: UInt8.self), salt.count,
                inputKey.baseAddress?.assumingMemoryBound(to: UInt8.self), inputKey.count,
                info.baseAddress, info.count, output.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
        precondition(ok == 1, "HKDF called without an output")
    }

    /// Convenience over arrays, for tests.
    public static func deriveKey(salt: [UInt8], inputKey: [UInt8], info: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        salt.withUnsafeBytes { s in
            inputKey.withUnsafeBytes { k in
                out.withUnsafeMutableBytes { deriveKey(salt: s, inputKey: k, info: info, into: $0) }
            }
        }
        return out
    }
}
