import COpenSSL

/// Cryptographically secure random bytes from OpenSSL's DRBG.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        fill(&out)
        return out
    }

    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.count > 0 else { return }
        // RAND_bytes fails only when the system entropy source is broken; going on would store
        // secrets under predictable salts and nonces, so stop the process instead.
        precondition(
            RAND_bytes(buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(buffer.count)) == 1,
            "OpenSSL RAND_bytes failed: no secure randomness available")
    }

    public static func fill(_ array: inout [UInt8]) {
        array.withUnsafeMutableBytes { fill($0) }
    }
}
