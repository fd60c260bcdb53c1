/// One stored secret as the database keeps it: three columns of standard base64.
public struct StoredSecret: Sendable, Hashable, Codable {
    public static let saltLength = 32
    public static let nonceLength = 12
    public static let iterations = 1000

    public var encryptedAPIKey: String
    public var salt: String
    public var nonce: String

    public init(encryptedAPIKey: String, salt: String, nonce: String) {
        self.encryptedAPIKey = encryptedAPIKey
        self.salt = salt
        self.nonce = nonce
    }

    /// Checks the shape without decoding: canonical base64, salt 32 bytes, nonce 12, ciphertext
    /// at least a tag. Same errors as `decoded()`.
    public func validate() throws(SecretError) {
        func length(_ text: String, _ field: String) throws(SecretError) -> Int {
            guard let count = Base64.decodedCount(text) else { throw .invalidBase64(field: field) }
            return count
        }
        let saltLength = try length(salt, "salt")
        guard saltLength == Self.saltLength else { throw .wrongLength(field: "salt", expected: "\(Self.saltLength)", actual: saltLength) }
        let nonceLength = try length(nonce, "nonce")
        guard nonceLength == Self.nonceLength else { throw .wrongLength(field: "nonce", expected: "\(Self.nonceLength)", actual: nonceLength) }
        let sealedLength = try length(encryptedAPIKey, "encrypted_api_key")
        guard sealedLength >= AESGCM.tagLength else {
            throw .wrongLength(field: "encrypted_api_key", expected: "at least \(AESGCM.tagLength)", actual: sealedLength)
        }
    }

    /// The decoded bytes, checked for shape: salt 32 bytes, nonce 12, ciphertext at least a tag.
    public func decoded() throws(SecretError) -> DecodedSecret {
        let salt = try Base64.decode(salt, field: "salt", length: Self.saltLength)
        let nonce = try Base64.decode(nonce, field: "nonce", length: Self.nonceLength)
        let sealed = try Base64.decode(encryptedAPIKey, field: "encrypted_api_key")
        guard sealed.count >= AESGCM.tagLength else {
            throw .wrongLength(field: "encrypted_api_key", expected: "at least \(AESGCM.tagLength)", actual: sealed.count)
        }
        return DecodedSecret(sealed: sealed, salt: salt, nonce: nonce)
    }
}

/// A stored secret's bytes, after base64 and length checks.
public struct DecodedSecret: Sendable, Hashable {
    public var sealed: [UInt8]
    public var salt: [UInt8]
    public var nonce: [UInt8]

    public var encoded: StoredSecret {
        StoredSecret(encryptedAPIKey: Base64.encode(sealed), salt: Base64.encode(salt), nonce: Base64.encode(nonce))
    }
}

/// The application's encrypt_api_key / decrypt_api_key: PBKDF2-HMAC-SHA256 x1000 over the master
/// key bytes with the row's salt gives the row key; AES-256-GCM with the row's nonce, no AAD.
public enum SecretCipher {
    /// Derives the per-row key from the master key and a salt.
    public static func rowKey(masterKey: MasterKey, salt: [UInt8]) -> SecureBytes {
        SecureBytes(count: AESGCM.keyLength) { out in
            masterKey.material.withBytes { password in
                salt.withUnsafeBytes { PBKDF2.deriveKey(password: password, salt: $0, iterations: StoredSecret.iterations, into: out) }
            }
        }
    }

    /// Two row keys at once (see `PBKDF2.deriveKeyPair`): a rotation's old and new key.
    public static func rowKeys(_ a: (masterKey: MasterKey, salt: [UInt8]), _ b: (masterKey: MasterKey, salt: [UInt8])) -> (SecureBytes, SecureBytes) {
        var second: SecureBytes?
        let first = SecureBytes(count: AESGCM.keyLength) { outA in
            second = SecureBytes(count: AESGCM.keyLength) { outB in
                a.masterKey.material.withBytes { pa in
                    b.masterKey.material.withBytes { pb in
                        a.salt.withUnsafeBytes { sa in
                            b.salt.withUnsafeBytes { sb in
                                PBKDF2.deriveKeyPair(passwordA: pa, saltA: sa, passwordB: pb, saltB: sb,
                                                     iterations: StoredSecret.iterations, intoA: outA, intoB: outB)
                            }
                        }
                    }
                }
            }
        }
        return (first, second!)
    }

    /// Encrypts with a fresh random salt and nonce.
    public static func encrypt(_ plaintext: String, masterKey: MasterKey) throws(SecretError) -> StoredSecret {
        try encrypt(plaintext, masterKey: masterKey,
                    salt: SecureRandom.bytes(StoredSecret.saltLength),
                    nonce: SecureRandom.bytes(StoredSecret.nonceLength)).encoded
    }

    /// Encrypts with a given salt and nonce (test vectors; callers otherwise use fresh ones).
    public static func encrypt(_ plaintext: String, masterKey: MasterKey, salt: [UInt8], nonce: [UInt8]) throws(SecretError) -> DecodedSecret {
        try encrypt(plaintext, rowKey: rowKey(masterKey: masterKey, salt: salt), salt: salt, nonce: nonce)
    }

    /// Encrypts with a row key already derived for `salt`.
    public static func encrypt(_ plaintext: String, rowKey key: SecureBytes, salt: [UInt8], nonce: [UInt8]) throws(SecretError) -> DecodedSecret {
        var bytes = Array(plaintext.utf8)
        defer { AESGCM.wipe(&bytes) }
        let sealed = try key.withBytes { k throws(SecretError) in try AESGCM.seal(key: k, nonce: nonce, plaintext: bytes) }
        return DecodedSecret(sealed: sealed, salt: salt, nonce: nonce)
    }

    public static func decrypt(_ secret: StoredSecret, masterKey: MasterKey) throws(SecretError) -> String {
        try decrypt(secret.decoded(), masterKey: masterKey)
    }

    public static func decrypt(_ secret: DecodedSecret, masterKey: MasterKey) throws(SecretError) -> String {
        try decrypt(secret, rowKey: rowKey(masterKey: masterKey, salt: secret.salt))
    }

    /// Two secrets decrypted under one master key, their row keys derived together (see
    /// `rowKeys`: about the cost of one derivation). Each result is exactly what
    /// `decrypt(_:masterKey:)` gives for that secret alone.
    public static func decryptPair(_ a: DecodedSecret, _ b: DecodedSecret,
                                   masterKey: MasterKey) -> (Result<String, SecretError>, Result<String, SecretError>) {
        let (keyA, keyB) = rowKeys((masterKey, a.salt), (masterKey, b.salt))
        return (Result { () throws(SecretError) in try decrypt(a, rowKey: keyA) },
                Result { () throws(SecretError) in try decrypt(b, rowKey: keyB) })
    }

    /// The same for stored (base64) triples: a triple that fails its shape check gets that
    /// error, as `decrypt(_:masterKey:)` would give, and the other is decrypted alone.
    public static func decryptPair(_ a: StoredSecret, _ b: StoredSecret,
                                   masterKey: MasterKey) -> (Result<String, SecretError>, Result<String, SecretError>) {
        switch (Result { () throws(SecretError) in try a.decoded() }, Result { () throws(SecretError) in try b.decoded() }) {
        case (.success(let a), .success(let b)):
            return decryptPair(a, b, masterKey: masterKey)
        case (.failure(let error), .success(let b)):
            return (.failure(error), Result { () throws(SecretError) in try decrypt(b, masterKey: masterKey) })
        case (.success(let a), .failure(let error)):
            return (Result { () throws(SecretError) in try decrypt(a, masterKey: masterKey) }, .failure(error))
        case (.failure(let errorA), .failure(let errorB)):
            return (.failure(errorA), .failure(errorB))
        }
    }

    /// Decrypts with a row key already derived for this secret's salt.
    public static func decrypt(_ secret: DecodedSecret, rowKey key: SecureBytes) throws(SecretError) -> String {
        var bytes = try key.withBytes { k throws(SecretError) in try AESGCM.open(key: k, nonce: secret.nonce, sealed: secret.sealed) }
        defer { AESGCM.wipe(&bytes) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .plaintextNotUTF8 }
        return text
    }
}
