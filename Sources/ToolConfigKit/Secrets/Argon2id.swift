import CArgon2

/// Argon2id (RFC 9106) through libargon2, version 0x13, for keys derived from a passphrase.
public enum Argon2id {
    public struct Parameters: Sendable, Hashable, Codable {
        /// Memory in KiB.
        public var memoryKiB: UInt32
        public var iterations: UInt32
        public var lanes: UInt32

        public init(memoryKiB: UInt32, iterations: UInt32, lanes: UInt32) {
            self.memoryKiB = memoryKiB
            self.iterations = iterations
            self.lanes = lanes
        }

        /// RFC 9106's second recommended option: m = 64 MiB, t = 3, p = 4.
        public static let recommended = Parameters(memoryKiB: 64 * 1024, iterations: 3, lanes: 4)
        /// What a file may ask for before it is refused rather than obeyed.
        public static let maximumMemoryKiB: UInt32 = 1024 * 1024
        public static let maximumIterations: UInt32 = 64
        public static let maximumLanes: UInt32 = 64

        /// Parameters read from an untrusted file: refuse the weak and the absurd alike.
        public func validated() throws(SecretError) -> Parameters {
            if memoryKiB > Self.maximumMemoryKiB {
                throw .unsafeArgon2Parameters(reason: "memory \(memoryKiB) KiB is above the 1 GiB cap")
            }
            if iterations > Self.maximumIterations {
                throw .unsafeArgon2Parameters(reason: "\(iterations) passes is above the cap of \(Self.maximumIterations)")
            }
            if lanes == 0 || lanes > Self.maximumLanes {
                throw .unsafeArgon2Parameters(reason: "\(lanes) lanes is outside 1...\(Self.maximumLanes)")
            }
            if iterations < 1 || memoryKiB < 8 * lanes {
                throw .unsafeArgon2Parameters(reason: "t=\(iterations), m=\(memoryKiB) KiB, p=\(lanes) is below libargon2's minimum")
            }
            return self
        }
    }

    public static func deriveKey(
        passphrase: SecureBytes, salt: [UInt8], parameters: Parameters,
        length: Int = 32
    ) throws(SecretError) -> SecureBytes {
        let checked = try parameters.validated()
        var status: Int32 = 0
        let key = SecureBytes(count: length) { out in
            status = passphrase.withBytes { password in
                argon2id_hash_raw(
                    checked.iterations, checked.memoryKiB, checked.lanes,
                    password.baseAddress, password.count, salt, salt.count,
                    out.baseAddress, out.count)
            }
        }
        guard status == ARGON2_OK.rawValue else {
            throw .cryptoFailure(operation: "argon2id: " + String(cString: argon2_error_message(status)))
        }
        return key
    }
}
