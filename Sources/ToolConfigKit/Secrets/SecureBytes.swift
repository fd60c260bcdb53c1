import CFastPBKDF2

/// Fixed bytes of key material, never mutated after creation and overwritten with zeros when the
/// last reference goes away. Swift arrays may be copied where we cannot see it, so key material
/// lives here instead, and callers borrow it through `withBytes`.
public final class SecureBytes: @unchecked Sendable {
    // Immutable after init (the only write is the wipe in deinit), hence safe to share.
    private let storage: UnsafeMutableRawBufferPointer

    public init(_ bytes: some Collection<UInt8>) {
        storage = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        _ = storage.initializeMemory(as: UInt8.self, from: bytes)
        count = bytes.count
    }

    /// Fills `count` bytes by calling `fill` once with the buffer (random generation, derivation).
    public init<E: Error>(count: Int, fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        storage = .allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        self.count = count
        do {
            try fill(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        } catch {
            toolcfg_secure_zero(storage.baseAddress, storage.count)
            storage.deallocate()
            throw error
        }
    }

    public let count: Int

    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    deinit {
        toolcfg_secure_zero(storage.baseAddress, storage.count)
        storage.deallocate()
    }
}

extension SecureBytes: Equatable {
    /// Constant-time comparison, so key checks leak nothing through timing.
    public static func == (lhs: SecureBytes, rhs: SecureBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withBytes { a in
            rhs.withBytes { b in
                var difference: UInt8 = 0
                for i in 0..<a.count { difference |= a[i] ^ b[i] }
                return difference == 0
            }
        }
    }
}

/// Overwrites a buffer with zeros in a way the optimiser keeps.
func toolcfgSecureZero(_ buffer: UnsafeMutableRawBufferPointer) {
    toolcfg_secure_zero(buffer.baseAddress, buffer.count)
}
