/// Where a secret came from, for error messages that help without echoing the value.
public enum SecretSource: Sendable, Equatable, CustomStringConvertible {
    case file(String)
    case standardInput
    case environment(String)
    case generated

    public var description: String {
        switch self {
        case .file(let path): "file \(path)"
        case .standardInput: "standard input"
        case .environment(let name): "environment variable \(name)"
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
        case .cryptoFailure: .software
        default: .dataError
        }
    }

    public var errorContext: ErrorContext {
        switch self {
        case .unreadable(.file(let path), _), .invalidMasterKey(.file(let path), _), .emptyPassphrase(.file(let path)):
            ErrorContext(file: path)
        case .invalidBase64(let field), .wrongLength(let field, _, _):
            ErrorContext(field: field)
        default:
            ErrorContext()
        }
    }

    public var description: String {
        switch self {
        case .missing(let secret, let flag, let variable):
            "no \(secret) given: use \(flag) PATH (or - for standard input) or set \(variable)"
        case .unreadable(let source, let reason):
            "cannot read the secret from \(source): \(reason)"
        case .invalidMasterKey(let source, let reason):
            "the master key from \(source) is not usable: \(reason) (expected standard base64 of exactly 32 bytes)"
        case .emptyPassphrase(let source):
            "the passphrase from \(source) is empty"
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
