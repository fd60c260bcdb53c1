import Foundation

/// The forms a master key can be given in on the command line, one key's worth (the current key,
/// or rotate's new key); exactly one may be set. Without any, the key comes from the
/// environment variable of its kind (base64 text), as before.
public struct MasterKeyForms: Sendable, Equatable {
    /// Base64 text of the 32 bytes in a file (`-`: standard input).
    public var file: String?
    /// The name of an environment variable holding the application's text form.
    public var environmentVariable: String?
    /// A file holding the application's text form (bare, or as a `BODHI_ENCRYPTION_KEY=` line).
    public var textFile: String?
    /// The application's keyring entry of this service.
    public var keyringService: String?

    public init(file: String? = nil, environmentVariable: String? = nil, textFile: String? = nil, keyringService: String? = nil) {
        self.file = file
        self.environmentVariable = environmentVariable
        self.textFile = textFile
        self.keyringService = keyringService
    }

    /// The flags given, by their names for `kind`.
    func given(_ kind: SecretKind) -> [String] {
        let prefix = kind == .newMasterKey ? "--new-master-key" : "--master-key"
        return [(file, "-file"), (environmentVariable, "-env"), (textFile, "-text-file"), (keyringService, "-keyring")]
            .compactMap { value, suffix in value == nil ? nil : prefix + suffix }
    }

    /// Exactly one form, or none: two are refused (exit 64), naming both.
    public func requireAtMostOne(_ kind: SecretKind) throws(SecretError) {
        let flags = given(kind)
        if flags.count > 1 { throw .conflictingKeyForms(secret: kind.name, flags: flags) }
    }

    public var isEmpty: Bool { self == MasterKeyForms() }
}

/// The application's text form of the key (`BODHI_ENCRYPTION_KEY`): the key is SHA-256 of the
/// text's UTF-8 bytes, and the texts the application refuses are refused here too.
public enum ApplicationKeyText {
    public static let variable = "BODHI_ENCRYPTION_KEY"
    public static let minimumBytes = 20
    /// The placeholders of the application's sample configuration, refused by it at start.
    public static let placeholders: Set<String> = ["your-strong-encryption-key-here", "your-encryption-key-here"]

    public static func masterKey(text: String, source: SecretSource) throws(SecretError) -> MasterKey {
        guard !text.isEmpty else { throw .refusedKeyText(source: source, reason: "it is empty") }
        if placeholders.contains(text) {
            throw .refusedKeyText(source: source, reason: "it is the placeholder of the application's sample configuration")
        }
        var bytes = Array(text.utf8)
        defer { AESGCM.wipe(&bytes) }
        guard bytes.count >= minimumBytes else {
            throw .refusedKeyText(source: source, reason: "it is \(bytes.count) bytes; the application needs at least \(minimumBytes)")
        }
        var digest = Digest.sha256(bytes)
        defer { AESGCM.wipe(&digest) }
        return try MasterKey(material: SecureBytes(digest), source: source)
    }

    /// A new random text fit for the variable: 32 random bytes as URL-safe base64 without padding
    /// (43 characters, nothing a shell or an env file needs quoted).
    public static func generate() -> String {
        let material = SecureBytes(count: 32) { SecureRandom.fill($0) }
        let standard = material.withBytes { Base64.encode($0) }
        return String(
            standard.compactMap { character -> Character? in
                switch character {
                case "+": "-"
                case "/": "_"
                case "=": nil
                default: character
                }
            })
    }

    /// The text a key text file holds: the whole file less one trailing newline, or the value of
    /// its one `BODHI_ENCRYPTION_KEY=` line when it reads as an env file (docker's --env-file:
    /// blank lines and `#` comments skipped, other variables allowed, the value taken verbatim).
    static func text(ofFile contents: String, path: String) throws(SecretError) -> String {
        var bare = Substring(contents)
        if bare.last == "\n" || bare.last == "\r\n" { bare = bare.dropLast() }
        let prefix = variable + "="
        if !bare.contains(where: \.isNewline) && !bare.hasPrefix(prefix) { return String(bare) }
        var values: [(line: Int, value: Substring)] = []
        // "\r\n" is one Character in Swift: split on it as on "\n" (docker reads lines as bufio does).
        for (index, rawLine) in contents.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .enumerated()
        {
            var line = rawLine.drop(while: { $0 == " " || $0 == "\t" })
            if line.last == "\r" { line = line.dropLast() }
            if line.allSatisfy(\.isWhitespace) || line.hasPrefix("#") { continue }
            if line.hasPrefix(prefix) { values.append((index + 1, line.dropFirst(prefix.count))) }
        }
        guard let first = values.first else {
            throw .unusableKeyTextFile(
                path: path, reason: "it holds several lines and none is \(prefix)VALUE (a bare key text is one line)")
        }
        guard values.count == 1 else {
            throw .unusableKeyTextFile(
                path: path, reason: "\(variable) is set on lines \(values.map { String($0.line) }.joined(separator: ", ")); give one")
        }
        if let quote = first.value.first, quote == "\"" || quote == "'" {
            throw .unusableKeyTextFile(
                path: path,
                reason: "line \(first.line): the value is quoted; docker's --env-file keeps quotes as part of the value, "
                    + "so the application's key would include them: remove the quotes")
        }
        return String(first.value)
    }
}

extension SecretInput {
    /// The key from the one form given in `forms`, else from the environment variable of `kind`
    /// (base64 text); nil when there is neither.
    public static func masterKey(
        _ kind: SecretKind = .masterKey, forms: MasterKeyForms,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecretError) -> MasterKey? {
        try forms.requireAtMostOne(kind)
        if let name = forms.environmentVariable {
            guard let value = environment[name], !value.isEmpty else {
                throw .refusedKeyText(
                    source: .textEnvironment(name), reason: environment[name] == nil ? "the variable is not set" : "it is empty")
            }
            return try ApplicationKeyText.masterKey(text: value, source: .textEnvironment(name))
        }
        if let path = forms.textFile {
            guard let (contents, source) = try readText(kind, filePath: path, environment: environment) else { return nil }
            let textSource: SecretSource = source == .standardInput ? source : .textFile(path)
            return try ApplicationKeyText.masterKey(text: try ApplicationKeyText.text(ofFile: contents, path: path), source: textSource)
        }
        if let service = forms.keyringService {
            return try KeyringEntry.application(service: service).requireMasterKey()
        }
        return try masterKey(kind, filePath: forms.file, environment: environment)
    }

    public static func requireMasterKey(
        _ kind: SecretKind = .masterKey, forms: MasterKeyForms,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecretError) -> MasterKey {
        guard let key = try masterKey(kind, forms: forms, environment: environment) else {
            throw .missing(secret: kind.name, flag: kind.flag, environmentVariable: kind.environmentVariable)
        }
        return key
    }

    /// A warning when a key file (or key text file) is readable by its group or others: anyone
    /// who can read it has the key. Nil for standard input, or a file only its owner reads.
    public static func looseModeWarning(forKeyFile path: String?) -> String? {
        guard let path, path != "-" else { return nil }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & 0o077 != 0 else { return nil }
        return
            "the key file \(path) is readable by \(info.st_mode & 0o007 != 0 ? "every user" : "its group") "
            + "(mode \(String(info.st_mode & 0o777, radix: 8))): "
            + "chmod 600 \(path)"
    }
}
