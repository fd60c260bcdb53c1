/// How a stored secret's row key comes from the master key. The application wrote v1 up to
/// v0.0.58 and writes v2 from v0.0.59; the ciphertext column tells which (`v2:` + base64).
public enum SecretScheme: String, Sendable, Codable, CaseIterable, Comparable {
    /// Row key = PBKDF2-HMAC-SHA256(master key, row salt, 1000 iterations).
    case v1
    /// Row key = HKDF-SHA256(salt: row salt, ikm: KEK, info "bodhiapp:row:v2"), where KEK =
    /// PBKDF2-HMAC-SHA256(master key, "bodhiapp:kek:v2", 600,000 iterations), once per key.
    case v2

    static let v2Prefix = "v2:"

    /// The scheme of a ciphertext column's value: v2 exactly when it starts with `v2:`.
    public init(ciphertext: String) {
        self = ciphertext.utf8.starts(with: Self.v2Prefix.utf8) ? .v2 : .v1
    }

    public static func < (lhs: SecretScheme, rhs: SecretScheme) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One stored secret as the database keeps it: three columns of standard base64 (the ciphertext
/// with `v2:` before it in scheme v2).
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

    public var scheme: SecretScheme { SecretScheme(ciphertext: encryptedAPIKey) }

    /// The ciphertext's base64, without the scheme's prefix.
    private var ciphertextBase64: String {
        scheme == .v2 ? String(encryptedAPIKey.utf8.dropFirst(SecretScheme.v2Prefix.utf8.count))! : encryptedAPIKey
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
        guard nonceLength == Self.nonceLength else {
            throw .wrongLength(field: "nonce", expected: "\(Self.nonceLength)", actual: nonceLength)
        }
        let sealedLength = try length(ciphertextBase64, "encrypted_api_key")
        guard sealedLength >= AESGCM.tagLength else {
            throw .wrongLength(field: "encrypted_api_key", expected: "at least \(AESGCM.tagLength)", actual: sealedLength)
        }
    }

    /// The decoded bytes, checked for shape: salt 32 bytes, nonce 12, ciphertext at least a tag.
    public func decoded() throws(SecretError) -> DecodedSecret {
        let salt = try Base64.decode(salt, field: "salt", length: Self.saltLength)
        let nonce = try Base64.decode(nonce, field: "nonce", length: Self.nonceLength)
        let sealed = try Base64.decode(ciphertextBase64, field: "encrypted_api_key")
        guard sealed.count >= AESGCM.tagLength else {
            throw .wrongLength(field: "encrypted_api_key", expected: "at least \(AESGCM.tagLength)", actual: sealed.count)
        }
        return DecodedSecret(sealed: sealed, salt: salt, nonce: nonce, scheme: scheme)
    }
}

/// A stored secret's bytes, after base64 and length checks.
public struct DecodedSecret: Sendable, Hashable {
    public var sealed: [UInt8]
    public var salt: [UInt8]
    public var nonce: [UInt8]
    public var scheme: SecretScheme = .v1

    public var encoded: StoredSecret {
        StoredSecret(
            encryptedAPIKey: (scheme == .v2 ? SecretScheme.v2Prefix : "") + Base64.encode(sealed), salt: Base64.encode(salt),
            nonce: Base64.encode(nonce))
    }
}

/// The application's encrypt / decrypt (crates/services/src/db/encryption.rs): a row key from
/// the master key and the row's salt (scheme v1 or v2, see `SecretScheme`), then AES-256-GCM with
/// the row's nonce, no AAD.
public enum SecretCipher {
    /// Derives the row key of a salt under a master key, in a scheme.
    public static func rowKey(masterKey: MasterKey, salt: [UInt8], scheme: SecretScheme = .v1) -> SecureBytes {
        SecureBytes(count: AESGCM.keyLength) { out in
            switch scheme {
            case .v1:
                masterKey.material.withBytes { password in
                    salt.withUnsafeBytes { PBKDF2.deriveKey(password: password, salt: $0, iterations: StoredSecret.iterations, into: out) }
                }
            case .v2:
                masterKey.keyEncryptionKey.withBytes { kek in
                    salt.withUnsafeBytes { HKDF.deriveKey(salt: $0, inputKey: kek, info: MasterKey.rowInfoV2, into: out) }
                }
            }
        }
    }

    /// Two row keys at once: two v1 keys together on the selected kernel (`PBKDF2.deriveKeys`:
    /// interleaved on the SHA extensions, about the cost of one), any other pair one after the
    /// other (a v2 row key costs a few microseconds).
    public static func rowKeys(
        _ a: (masterKey: MasterKey, salt: [UInt8], scheme: SecretScheme),
        _ b: (masterKey: MasterKey, salt: [UInt8], scheme: SecretScheme)
    ) -> (SecureBytes, SecureBytes) {
        guard a.scheme == .v1, b.scheme == .v1 else {
            return (
                rowKey(masterKey: a.masterKey, salt: a.salt, scheme: a.scheme),
                rowKey(masterKey: b.masterKey, salt: b.salt, scheme: b.scheme)
            )
        }
        let keys = rowKeys([(a.masterKey, a.salt), (b.masterKey, b.salt)])
        return (keys[0], keys[1])
    }

    /// v1 row keys, one per (master key, salt), derived together on the selected kernel
    /// (`PBKDF2.kernel`: sixteen or two at once where the CPU allows).
    public static func rowKeys(_ inputs: [(masterKey: MasterKey, salt: [UInt8])]) -> [SecureBytes] {
        guard !inputs.isEmpty else { return [] }
        let all = SecureBytes(count: inputs.count * AESGCM.keyLength) { out in
            // The distinct master keys' bytes borrowed at once (a rotation has two).
            var masters: [SecureBytes] = []
            for input in inputs where !masters.contains(where: { $0 === input.masterKey.material }) {
                masters.append(input.masterKey.material)
            }
            func borrow(_ index: Int, _ passwords: [UnsafeRawBufferPointer]) {
                guard index == masters.count else {
                    masters[index].withBytes { borrow(index + 1, passwords + [$0]) }
                    return
                }
                let joined = inputs.flatMap(\.salt)
                joined.withUnsafeBytes { bytes in
                    var offset = 0
                    let salts = inputs.map { input in
                        defer { offset += input.salt.count }
                        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + input.salt.count])
                    }
                    let keyPasswords = inputs.map { input in passwords[masters.firstIndex { $0 === input.masterKey.material }!] }
                    PBKDF2.deriveKeys(passwords: keyPasswords, salts: salts, iterations: StoredSecret.iterations, into: out)
                }
            }
            borrow(0, [])
        }
        return all.withBytes { bytes in
            (0..<inputs.count).map { lane in SecureBytes(bytes[AESGCM.keyLength * lane..<AESGCM.keyLength * (lane + 1)]) }
        }
    }

    /// Sixteen v1 row keys at once, one master key and sixteen salts (`rowKeys` on the selected
    /// kernel); nil unless there are sixteen salts.
    public static func rowKeys16(masterKey: MasterKey, salts: [[UInt8]]) -> [SecureBytes]? {
        guard salts.count == 16 else { return nil }
        return rowKeys(salts.map { (masterKey, $0) })
    }

    /// Encrypts with a fresh random salt and nonce.
    public static func encrypt(_ plaintext: String, masterKey: MasterKey, scheme: SecretScheme = .v1) throws(SecretError) -> StoredSecret {
        try encrypt(
            plaintext, masterKey: masterKey,
            salt: SecureRandom.bytes(StoredSecret.saltLength),
            nonce: SecureRandom.bytes(StoredSecret.nonceLength), scheme: scheme
        ).encoded
    }

    /// Encrypts with a given salt and nonce (test vectors; callers otherwise use fresh ones).
    public static func encrypt(
        _ plaintext: String, masterKey: MasterKey, salt: [UInt8], nonce: [UInt8],
        scheme: SecretScheme = .v1
    ) throws(SecretError) -> DecodedSecret {
        try encrypt(plaintext, rowKey: rowKey(masterKey: masterKey, salt: salt, scheme: scheme), salt: salt, nonce: nonce, scheme: scheme)
    }

    /// Encrypts with a row key already derived for `salt` in `scheme`.
    public static func encrypt(
        _ plaintext: String, rowKey key: SecureBytes, salt: [UInt8], nonce: [UInt8],
        scheme: SecretScheme = .v1
    ) throws(SecretError) -> DecodedSecret {
        var bytes = Array(plaintext.utf8)
        defer { AESGCM.wipe(&bytes) }
        let sealed = try key.withBytes { k throws(SecretError) in try AESGCM.seal(key: k, nonce: nonce, plaintext: bytes) }
        return DecodedSecret(sealed: sealed, salt: salt, nonce: nonce, scheme: scheme)
    }

    public static func decrypt(_ secret: StoredSecret, masterKey: MasterKey) throws(SecretError) -> String {
        try decrypt(secret.decoded(), masterKey: masterKey)
    }

    /// In the secret's own scheme.
    public static func decrypt(_ secret: DecodedSecret, masterKey: MasterKey) throws(SecretError) -> String {
        try decrypt(secret, rowKey: rowKey(masterKey: masterKey, salt: secret.salt, scheme: secret.scheme))
    }

    /// Two secrets decrypted under one master key, their row keys derived together (see
    /// `rowKeys`). Each result is exactly what `decrypt(_:masterKey:)` gives for that secret alone.
    public static func decryptPair(
        _ a: DecodedSecret, _ b: DecodedSecret,
        masterKey: MasterKey
    ) -> (Result<String, SecretError>, Result<String, SecretError>) {
        let (keyA, keyB) = rowKeys((masterKey, a.salt, a.scheme), (masterKey, b.salt, b.scheme))
        return (
            Result { () throws(SecretError) in try decrypt(a, rowKey: keyA) },
            Result { () throws(SecretError) in try decrypt(b, rowKey: keyB) }
        )
    }

    /// The same for stored (base64) triples: a triple that fails its shape check gets that
    /// error, as `decrypt(_:masterKey:)` would give, and the other is decrypted alone.
    public static func decryptPair(
        _ a: StoredSecret, _ b: StoredSecret,
        masterKey: MasterKey
    ) -> (Result<String, SecretError>, Result<String, SecretError>) {
        let results = decrypt([a, b], masterKey: masterKey)
        return (results[0], results[1])
    }

    /// How many secrets `decrypt(_:masterKey:)` on an array takes at once, for batching across
    /// threads: sixteen (a multiple of the selected kernel's lanes, `PBKDF2.kernel`), so that a
    /// group's fixed costs (its AES-GCM context, its arrays) fall on many rows whichever kernel runs.
    public static var groupSize: Int { (16 + PBKDF2.kernel.lanes - 1) / PBKDF2.kernel.lanes * PBKDF2.kernel.lanes }

    /// Secrets decrypted under one master key: the v1 row keys derived together on the selected
    /// kernel (`rowKeys`), v2 keys one by one (cheap). Each result is exactly what
    /// `decrypt(_:masterKey:)` gives that secret alone.
    public static func decrypt(_ secrets: [DecodedSecret], masterKey: MasterKey) -> [Result<String, SecretError>] {
        var results = [Result<String, SecretError>](repeating: .failure(.authenticationFailed), count: secrets.count)
        var v1: [Int] = []
        for (index, secret) in secrets.enumerated() {
            if secret.scheme == .v1 {
                v1.append(index)
            } else {
                results[index] = Result { () throws(SecretError) in try decrypt(secret, masterKey: masterKey) }
            }
        }
        let keys = rowKeys(v1.map { (masterKey, secrets[$0].salt) })
        // One AES-GCM context for the group (a new one is an allocation, a wipe and a free).
        let context = v1.count > 1 ? try? AESGCM.Context() : nil
        for (key, index) in zip(keys, v1) {
            results[index] = Result { () throws(SecretError) in
                guard let context else { return try decrypt(secrets[index], rowKey: key) }
                var bytes = try key.withBytes { k throws(SecretError) in
                    try context.open(key: k, nonce: secrets[index].nonce, sealed: secrets[index].sealed)
                }
                defer { AESGCM.wipe(&bytes) }
                guard let text = String(validating: bytes, as: UTF8.self) else { throw .plaintextNotUTF8 }
                return text
            }
        }
        return results
    }

    /// The same for stored (base64) triples: one that fails its shape check gets that error and
    /// costs no derivation.
    public static func decrypt(_ secrets: [StoredSecret], masterKey: MasterKey) -> [Result<String, SecretError>] {
        let decoded = secrets.map { secret in Result { () throws(SecretError) in try secret.decoded() } }
        var opened = decrypt(decoded.compactMap { try? $0.get() }, masterKey: masterKey)[...]
        return decoded.map { result in
            switch result {
            case .success: opened.removeFirst()
            case .failure(let error): .failure(error)
            }
        }
    }

    /// Decrypts with a row key already derived for this secret's salt.
    public static func decrypt(_ secret: DecodedSecret, rowKey key: SecureBytes) throws(SecretError) -> String {
        try key.withBytes { k throws(SecretError) in try decrypt(secret, key: k) }
    }

    private static func decrypt(_ secret: DecodedSecret, key: UnsafeRawBufferPointer) throws(SecretError) -> String {
        var bytes = try AESGCM.open(key: key, nonce: secret.nonce, sealed: secret.sealed)
        defer { AESGCM.wipe(&bytes) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .plaintextNotUTF8 }
        return text
    }
}
