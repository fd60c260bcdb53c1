import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The PBKDF2 kernels behind every grouped derivation (`PBKDF2.Kernel`), and the choice among
/// them (`PBKDF2.selection`). Speed is the benchmarks' business (scripts/bench.sh pbkdf2): these
/// check only that whichever kernel is chosen, every key is the reference's.
@Suite("PBKDF2 kernels and their selection")
struct SecretPBKDF2KernelTests {
    @Test("the selected kernel is one this CPU runs, and every measured rate belongs to a supported kernel")
    func selectionIsSupported() {
        let selection = PBKDF2.selection
        #expect(PBKDF2.Kernel.supported.contains(selection.kernel))
        #expect(PBKDF2.Kernel.supported.contains(.scalar))
        #expect(Set(selection.measuredRates.keys).isSubset(of: Set(PBKDF2.Kernel.supported)))
        if !selection.forced {
            #expect(Set(selection.measuredRates.keys) == Set(PBKDF2.Kernel.supported))
            #expect(selection.measuredRates.values.allSatisfy { $0 > 0 })
        }
        #expect(SecretCipher.groupSize >= 16 && SecretCipher.groupSize % selection.kernel.lanes == 0)
    }

    /// A request, the kernels the CPU runs and made-up rates; the kernel chosen, whether the
    /// request was used, and whether it was reported as ignored.
    typealias Choice = (
        request: String?, supported: [PBKDF2.Kernel], rates: [PBKDF2.Kernel: Double], kernel: PBKDF2.Kernel, forced: Bool, ignored: Bool
    )
    static let choices: [Choice] =
        [
            (
                nil, [.scalar, .shaNIPair, .avx512x16], [.scalar: 8_000, .shaNIPair: 23_000, .avx512x16: 36_000], .avx512x16, false,
                false
            ),
            (
                nil, [.scalar, .shaNIPair, .avx512x16], [.scalar: 8_000, .shaNIPair: 26_000, .avx512x16: 22_000], .shaNIPair, false,
                false
            ),
            (nil, [.scalar, .shaNIPair], [.scalar: 8_000, .shaNIPair: 20_000], .shaNIPair, false, false),
            (nil, [.scalar], [.scalar: 3_000], .scalar, false, false),
            ("", [.scalar, .shaNIPair], [.scalar: 9_000, .shaNIPair: 2_000], .scalar, false, false),
            ("scalar", [.scalar, .shaNIPair, .avx512x16], [:], .scalar, true, false),
            ("avx512-x16", [.scalar, .shaNIPair, .avx512x16], [:], .avx512x16, true, false),
            ("avx512-x16", [.scalar, .shaNIPair], [.scalar: 8_000, .shaNIPair: 20_000], .shaNIPair, false, true),
            ("fastest", [.scalar, .shaNIPair], [.scalar: 8_000, .shaNIPair: 20_000], .shaNIPair, false, true)
        ]

    @Test(
        "a kernel is chosen by its measured rate, or by TOOLCFG_PBKDF2_KERNEL when this CPU runs the one it names",
        arguments: choices.indices)
    func choice(_ index: Int) {
        let choice = Self.choices[index]
        var measured = false
        let selection = PBKDF2.Selection.make(request: choice.request, supported: choice.supported) {
            measured = true
            return choice.rates
        }
        #expect(selection.kernel == choice.kernel)
        #expect(selection.forced == choice.forced)
        #expect(measured == !choice.forced, "nothing is measured when a kernel is named")
        #expect((selection.ignoredRequest != nil) == choice.ignored)
        if choice.ignored { #expect(selection.ignoredRequest?.contains(PBKDF2.kernelVariable) == true) }
    }

    @Test(
        "each supported kernel derives the reference's keys for random passwords, salts, counts and iterations",
        arguments: PBKDF2.Kernel.supported)
    func kernelMatchesReference(_ kernel: PBKDF2.Kernel) {
        // Counts around the lane widths (full groups, remainders, padded groups), two or three
        // passwords mixed in one call as a rotation's old and new keys are.
        for count in [1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33] {
            let passwords = (0..<Int.random(in: 1...3)).map { _ in SecureRandom.bytes([0, 1, 32, 64, 65, 100][Int.random(in: 0..<6)]) }
            let inputs = (0..<count).map { _ in
                (password: passwords.randomElement()!, salt: SecureRandom.bytes([0, 1, 32, 55, 56, 64, 65, 119][Int.random(in: 0..<8)]))
            }
            let iterations = count == 16 || count == 3 ? 1000 : Int.random(in: 1...5)
            let keys = PBKDF2.deriveKeys(inputs, iterations: iterations, kernel: kernel)
            #expect(keys.count == count)
            for (input, key) in zip(inputs, keys) {
                #expect(
                    key
                        == PBKDF2.deriveKey(
                            password: input.password, salt: input.salt, iterations: iterations, length: 32,
                            reference: true),
                    "\(kernel): \(count) derivations, password \(input.password.count) B, salt \(input.salt.count) B, c=\(iterations)")
            }
        }
    }

    @Test("each supported kernel reproduces the shared vectors' row keys", arguments: PBKDF2.Kernel.supported)
    func kernelReproducesVectors(_ kernel: PBKDF2.Kernel) throws {
        let vectors = VectorFile.shared.vectors
        try #require(!vectors.isEmpty, "the shared vectors (\(Repository.vectors.path)) are missing")
        let inputs = try vectors.map { vector in
            (password: try Base64.decode(vector.master_key, field: "master_key"), salt: try Base64.decode(vector.salt, field: "salt"))
        }
        let keys = PBKDF2.deriveKeys(inputs, iterations: StoredSecret.iterations, kernel: kernel)
        for (vector, key) in zip(vectors, keys) {
            #expect(Digest.hex(key) == vector.derived_key_hex, "\(kernel): \(vector.testDescription)")
        }
    }

    @Test("grouped decryption and rotation give the same keys as one secret at a time")
    func groupedRowKeysMatchSingle() throws {
        let old = MasterKey.generate(), new = MasterKey.generate()
        let salts = (0..<37).map { _ in SecureRandom.bytes(StoredSecret.saltLength) }
        let inputs = salts.map { (masterKey: old, salt: $0) } + salts.prefix(20).map { (masterKey: new, salt: $0) }
        let keys = SecretCipher.rowKeys(inputs)
        #expect(keys.count == inputs.count)
        for (input, key) in zip(inputs, keys) {
            #expect(key == SecretCipher.rowKey(masterKey: input.masterKey, salt: input.salt))
        }
    }
}
