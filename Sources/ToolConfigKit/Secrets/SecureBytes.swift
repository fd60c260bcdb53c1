import CFastPBKDF2
import Glibc
import Synchronization
#if DEBUG
    import Foundation
#endif

/// Fixed bytes of key material, never mutated after creation and overwritten with zeros when the
/// last reference goes away. Swift arrays may be copied where we cannot see it, so key material
/// lives here instead, and callers borrow it through `withBytes`.
public final class SecureBytes: @unchecked Sendable {
    // Immutable after init (the only write is the wipe in deinit), hence safe to share.
    private let storage: UnsafeMutableRawBufferPointer
    /// Whether `storage` is a page of its own held in RAM by mlock (never written to swap).
    private let locked: Bool

    public init(_ bytes: some Collection<UInt8>) {
        storage = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        _ = storage.initializeMemory(as: UInt8.self, from: bytes)
        count = bytes.count
        locked = false
    }

    /// A copy of `other` in a page of its own, locked in RAM where the system allows it (mlock; a
    /// refusal, such as RLIMIT_MEMLOCK reached, leaves it an ordinary page). For key material that
    /// lives as long as the process works: master keys, v2's KEKs, a snapshot's sealing key.
    /// A page each, since munlock is not counted: two keys sharing a page would unlock each other.
    public init(locking other: SecureBytes) {
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)
        count = other.count
        let size = (max(count, 1) + page - 1) / page * page
        storage = .allocate(byteCount: size, alignment: page)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        locked = mlock(storage.baseAddress, size) == 0
        if locked { SecureBytes.lockedPages.add(size / page, ordering: .relaxed) }
        other.withBytes { _ = storage.initializeMemory(as: UInt8.self, from: $0) }
    }

    /// Pages of key material locked in RAM right now (tests and reports).
    static let lockedPages = Atomic<Int>(0)

    /// Fills `count` bytes by calling `fill` once with the buffer (random generation, derivation).
    public init<E: Error>(count: Int, fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        storage = .allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        self.count = count
        locked = false
        do {
            try fill(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        } catch {
            toolcfgSecureZero(storage)
            storage.deallocate()
            throw error
        }
    }

    public let count: Int

    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    deinit {
        toolcfgSecureZero(storage)
        if locked {
            munlock(storage.baseAddress, storage.count)
            SecureBytes.lockedPages.subtract(storage.count / max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096), ordering: .relaxed)
        }
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

/// Overwrites a buffer with zeros in a way the optimiser keeps. Every wipe of key material or
/// plaintext goes through here, so the test hook below sees all of them.
func toolcfgSecureZero(_ buffer: UnsafeMutableRawBufferPointer) {
    #if DEBUG
        let observer = WipeObserver.current
        let held = observer != nil && buffer.contains { $0 != 0 }
    #endif
    toolcfg_secure_zero(buffer.baseAddress, buffer.count)
    #if DEBUG
        observer?.record(.init(count: buffer.count, heldNonzero: held, zeroed: buffer.allSatisfy { $0 == 0 }))
    #endif
}

#if DEBUG
    /// Test hook (debug builds only): sees each buffer right after it is zeroed and before it is
    /// freed, since reading a SecureBytes after its deinit would be a use after free. Bound to the
    /// current task, so tests running in parallel do not see each other's wipes.
    final class WipeObserver: @unchecked Sendable {
        struct Wipe: Equatable {
            var count: Int
            /// Whether the buffer held any nonzero byte before the wipe (it held something).
            var heldNonzero: Bool
            /// Whether every byte was zero right after it.
            var zeroed: Bool
        }

        @TaskLocal static var current: WipeObserver?

        private let lock = NSLock()
        private var recorded: [Wipe] = []

        var wipes: [Wipe] { lock.withLock { recorded } }

        func record(_ wipe: Wipe) {
            lock.withLock { recorded.append(wipe) }
        }

        /// The wipes that `body` caused on this task.
        static func observe(_ body: () throws -> Void) rethrows -> [Wipe] {
            let observer = WipeObserver()
            try $current.withValue(observer) { try body() }
            return observer.wipes
        }
    }
#endif
