/// Where a secret came from, for error messages that help without echoing the value.
public enum SecretSource: Sendable, Equatable, CustomStringConvertible {
    case file(String)
    case standardInput
    case environment(String)
    /// The application's text form (`BODHI_ENCRYPTION_KEY`), whose SHA-256 is the key.
    case textEnvironment(String)
    case textFile(String)
    /// A kernel keyring entry, by its description.
    case keyring(String)
    case generated

    public var description: String {
        switch self {
        case .file(let path): "file \(path)"
        case .standardInput: "standard input"
        case .environment(let name): "environment variable \(name)"
        case .textEnvironment(let name): "environment variable \(name) (key text)"
        case .textFile(let path): "key text file \(path)"
        case .keyring(let description): "keyring entry \"\(description)\""
        case .generated: "a generated key"
        }
    }
}

public enum SecretError: ToolcfgError, Equatable {
    /// No flag and no environment variable supplied the secret.
    case missing(secret: String, flag: String, environmentVariable: String)
    case unreadable(source: SecretSource, reason: String)
    /// The key text is not valid base64 or does not decode to 32 bytes. Never carries the text.
    case invalidMasterKey(source: SecretSource, reason: String)
    case emptyPassphrase(source: SecretSource)
    /// A key text the application itself would refuse (empty, under 20 bytes, a placeholder).
    case refusedKeyText(source: SecretSource, reason: String)
    /// A key text file that is neither a bare text nor an env file with one usable line.
    case unusableKeyTextFile(path: String, reason: String)
    /// Two forms given for one key.
    case conflictingKeyForms(secret: String, flags: [String])
    case keyringEntryMissing(description: String, searched: String)
    case keyringUnavailable(description: String, reason: String)
    /// A stored column is not canonical standard base64 with padding.
    case invalidBase64(field: String)
    case wrongLength(field: String, expected: String, actual: Int)
    /// AES-GCM refused the ciphertext: wrong master key, or the triple was altered.
    case authenticationFailed
    case plaintextNotUTF8
    case cryptoFailure(operation: String)
    case unsafeArgon2Parameters(reason: String)

    public var exitStatus: ExitStatus {
        switch self {
        case .missing: .usage
        case .unreadable: .noInput
        case .refusedKeyText, .conflictingKeyForms: .usage
        case .keyringEntryMissing, .keyringUnavailable: .unavailable
        case .cryptoFailure: .software
        default: .dataError
        }
    }

    public var errorContext: ErrorContext {
        switch self {
        case .unreadable(.file(let path), _), .invalidMasterKey(.file(let path), _), .emptyPassphrase(.file(let path)),
            .unreadable(.textFile(let path), _), .refusedKeyText(.textFile(let path), _), .unusableKeyTextFile(let path, _):
            ErrorContext(file: path)
        case .invalidBase64(let field), .wrongLength(let field, _, _):
            ErrorContext(field: field)
        default:
            ErrorContext()
        }
    }

    public var description: String {
        switch self {
        case .missing(let secret, let flag, let variable) where flag.hasSuffix("master-key-file"):
            "no \(secret) given: use \(flag) PATH (base64; - for standard input), \(flag.dropLast(5))-env NAME or "
                + "\(flag.dropLast(5))-text-file PATH (the application's BODHI_ENCRYPTION_KEY text), "
                + "\(flag.dropLast(5))-keyring [SERVICE], or set \(variable)"
        case .missing(let secret, let flag, let variable):
            "no \(secret) given: use \(flag) PATH (or - for standard input) or set \(variable)"
        case .unreadable(let source, let reason):
            "cannot read the secret from \(source): \(reason)"
        case .invalidMasterKey(let source, let reason):
            "the master key from \(source) is not usable: \(reason) (expected standard base64 of exactly 32 bytes)"
        case .emptyPassphrase(let source):
            "the passphrase from \(source) is empty"
        case .refusedKeyText(let source, let reason):
            "the master key text from \(source) is refused, as the application refuses it: \(reason)"
        case .unusableKeyTextFile(let path, let reason):
            "the key text file \(path) is not usable: \(reason)"
        case .conflictingKeyForms(let secret, let flags):
            "the \(secret) is given in two forms (\(flags.joined(separator: " and "))): give exactly one"
        case .keyringEntryMissing(let description, let searched):
            "no keyring entry \"\(description)\" (key type user) in \(searched)"
        case .keyringUnavailable(let description, let reason):
            "cannot use the keyring entry \"\(description)\": \(reason)"
        case .invalidBase64(let field):
            "\(field): not canonical standard base64 with padding"
        case .wrongLength(let field, let expected, let actual):
            "\(field): decodes to \(actual) bytes, expected \(expected)"
        case .authenticationFailed:
            "the encrypted key does not decrypt under this master key (wrong key, or the ciphertext, salt or nonce was altered)"
        case .plaintextNotUTF8:
            "the decrypted key is not valid UTF-8"
        case .cryptoFailure(let operation):
            "OpenSSL failed in \(operation)"
        case .unsafeArgon2Parameters(let reason):
            "refusing the Argon2id parameters: \(reason)"
        }
    }
}
