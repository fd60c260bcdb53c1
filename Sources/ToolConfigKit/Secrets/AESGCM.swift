import COpenSSL

/// AES-256-GCM through OpenSSL EVP: output is ciphertext followed by the 16-byte tag.
public enum AESGCM {
    public static let keyLength = 32
    public static let nonceLength = 12
    public static let tagLength = 16

    /// The cipher fetched once: `EVP_aes_256_gcm()` makes OpenSSL 3 look the algorithm up again
    /// on every init (name comparisons under a lock: 8 % of a v2 rotation's CPU time, perf).
    /// GCM's default IV length is the nonce's 12 bytes, so key and nonce go in one init.
    struct Cipher: @unchecked Sendable {
        // Immutable after the fetch; OpenSSL's cipher objects are safe to share across threads.
        let pointer: OpaquePointer?
    }
    static let cipher = Cipher(pointer: EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) ?? EVP_aes_256_gcm())

    public static func seal(
        key: UnsafeRawBufferPointer, nonce: [UInt8], plaintext: [UInt8],
        associatedData: [UInt8] = []
    ) throws(SecretError) -> [UInt8] {
        try Context().seal(key: key, nonce: nonce, plaintext: plaintext, associatedData: associatedData)
    }

    /// Opens ciphertext||tag; a wrong key or any altered byte ends in `.authenticationFailed`.
    public static func open(
        key: UnsafeRawBufferPointer, nonce: [UInt8], sealed: [UInt8],
        associatedData: [UInt8] = []
    ) throws(SecretError) -> [UInt8] {
        try Context().open(key: key, nonce: nonce, sealed: sealed, associatedData: associatedData)
    }

    /// One EVP context for many seals and opens on one thread (a rotation's group of rows): each
    /// new context is an allocation, a wipe and a free (three per rotated value).
    public final class Context {
        let context: OpaquePointer

        public init() throws(SecretError) {
            guard let context = EVP_CIPHER_CTX_new() else { throw .cryptoFailure(operation: "EVP_CIPHER_CTX_new") }
            self.context = context
        }

        deinit { EVP_CIPHER_CTX_free(context) }

        public func seal(
            key: UnsafeRawBufferPointer, nonce: [UInt8], plaintext: [UInt8],
            associatedData: [UInt8] = []
        ) throws(SecretError) -> [UInt8] {
            precondition(key.count == keyLength && nonce.count == nonceLength)
            var output = [UInt8](repeating: 0, count: plaintext.count + tagLength)
            var length: Int32 = 0
            let ok: Bool = output.withUnsafeMutableBufferPointer { out in
                guard EVP_EncryptInit_ex(context, cipher.pointer, nil, key.baseAddress?.assumingMemoryBound(to: UInt8.self), nonce) == 1
                else { return false }
                if !associatedData.isEmpty {
                    guard EVP_EncryptUpdate(context, nil, &length, associatedData, Int32(associatedData.count)) == 1 else { return false }
                }
                guard EVP_EncryptUpdate(context, out.baseAddress, &length, plaintext, Int32(plaintext.count)) == 1,
                    EVP_EncryptFinal_ex(context, out.baseAddress! + plaintext.count, &length) == 1,
                    EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(tagLength), out.baseAddress! + plaintext.count) == 1
                else { return false }
                return true
            }
            guard ok else { throw .cryptoFailure(operation: "AES-256-GCM seal") }
            return output
        }

        /// Opens ciphertext||tag; a wrong key or any altered byte ends in `.authenticationFailed`.
        public func open(
            key: UnsafeRawBufferPointer, nonce: [UInt8], sealed: [UInt8],
            associatedData: [UInt8] = []
        ) throws(SecretError) -> [UInt8] {
            precondition(key.count == keyLength && nonce.count == nonceLength)
            guard sealed.count >= tagLength else {
                throw .wrongLength(field: "encrypted_api_key", expected: "at least \(tagLength)", actual: sealed.count)
            }
            let textLength = sealed.count - tagLength
            var plaintext = [UInt8](repeating: 0, count: textLength)
            var tag = Array(sealed[textLength...])
            var length: Int32 = 0
            let setUp: Bool = plaintext.withUnsafeMutableBufferPointer { out in
                guard EVP_DecryptInit_ex(context, cipher.pointer, nil, key.baseAddress?.assumingMemoryBound(to: UInt8.self), nonce) == 1
                else { return false }
                if !associatedData.isEmpty {
                    guard EVP_DecryptUpdate(context, nil, &length, associatedData, Int32(associatedData.count)) == 1 else { return false }
                }
                return sealed.withUnsafeBufferPointer { input in
                    EVP_DecryptUpdate(context, out.baseAddress, &length, input.baseAddress, Int32(textLength)) == 1
                        && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tagLength), &tag) == 1
                }
            }
            guard setUp else {
                wipe(&plaintext)
                throw .cryptoFailure(operation: "AES-256-GCM open")
            }
            // GCM's final step writes no bytes; it checks the tag.
            var scratch = [UInt8](repeating: 0, count: tagLength)
            var finalLength: Int32 = 0
            guard EVP_DecryptFinal_ex(context, &scratch, &finalLength) == 1 else {
                wipe(&plaintext)
                ERR_clear_error()
                throw .authenticationFailed
            }
            return plaintext
        }
    }

    static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { toolcfgSecureZero($0) }
    }
}
