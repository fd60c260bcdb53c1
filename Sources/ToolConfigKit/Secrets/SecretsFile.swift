import Foundation

/// The application's secrets file (`$BODHI_HOME/secrets.yaml`, releases up to v0.0.45): a YAML
/// mapping of `salt`, `nonce` and `data`, each standard base64; `data` is AES-256-GCM, under the
/// row key PBKDF2-HMAC-SHA256(master key, salt, 1000) with that nonce, of the YAML text of the
/// application's string map (`app_reg_info`, `app_status`), ciphertext || tag: scheme v1 of a
/// stored secret, with `data` as its ciphertext.
///
/// toolcfg never parses the text inside: a rotation re-encrypts its exact bytes, so whatever the
/// application wrote comes back as it was. The mapping around it is read strictly (each of the
/// three keys once, plain or quoted values, blank lines, comments and a `---` allowed) and
/// written back with its keys in the order the file had them.
public struct SecretsFile: Sendable, Equatable {
    public static let keys = ["salt", "nonce", "data"]

    /// The three values as a stored secret (scheme v1, `data` as the ciphertext).
    public var secret: StoredSecret
    /// The keys in the order the file has them.
    var order: [String]

    public init(secret: StoredSecret, order: [String] = SecretsFile.keys) {
        self.secret = secret
        self.order = order
    }

    /// Reads the file's text; `path` is for messages.
    public init(parsing text: String, path: String) throws(SecretsFileError) {
        var values: [String: String] = [:]
        var order: [String] = []
        // isNewline: "\r\n" is one Character in Swift.
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") || (index == 0 && trimmed == "---") { continue }
            guard let colon = line.firstIndex(of: ":"), line.first?.isWhitespace == false else {
                throw SecretsFileError(path: path, line: index + 1, reason: "expected `key: value` (salt, nonce or data)")
            }
            let key = String(line[..<colon])
            guard Self.keys.contains(key) else {
                throw SecretsFileError(
                    path: path, line: index + 1, reason: "unexpected key \(key): a secrets file holds only salt, nonce and data")
            }
            guard values[key] == nil else { throw SecretsFileError(path: path, line: index + 1, reason: "\(key) appears twice") }
            var value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let quote = value.first, quote == "'" || quote == "\"", value.last == quote {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
            order.append(key)
        }
        let missing = Self.keys.filter { values[$0] == nil }
        guard missing.isEmpty else {
            throw SecretsFileError(
                path: path, line: nil, reason: "no \(missing.joined(separator: ", ")): not the application's secrets file")
        }
        self.init(secret: StoredSecret(encryptedAPIKey: values["data"]!, salt: values["salt"]!, nonce: values["nonce"]!), order: order)
        guard secret.scheme == .v1 else { throw SecretsFileError(path: path, line: nil, reason: "data is not base64 of scheme v1") }
    }

    /// The file's text with `secret`'s values, keys in the order read.
    public func text(with secret: StoredSecret) -> String {
        let values = ["salt": secret.salt, "nonce": secret.nonce, "data": secret.encryptedAPIKey]
        return order.map { "\($0): \(values[$0]!)\n" }.joined()
    }
}

/// A secrets file that is not what the application writes, or cannot be read or written.
public struct SecretsFileError: ToolcfgError {
    public var path: String
    public var line: Int?
    public var reason: String
    public var exitStatus: ExitStatus = .dataError

    public var description: String { "secrets file \(path)\(line.map { ", line \($0)" } ?? ""): \(reason)" }
    public var errorContext: ErrorContext { ErrorContext(file: path, line: line) }
}
