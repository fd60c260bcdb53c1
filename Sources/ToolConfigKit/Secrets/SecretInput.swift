import Foundation

/// The secrets of the command-line contract: each from a file flag (`-` for standard input) or an
/// environment variable, never from argv.
public enum SecretKind: Sendable {
    case masterKey, newMasterKey, passphrase

    public var flag: String {
        switch self {
        case .masterKey: "--master-key-file"
        case .newMasterKey: "--new-master-key-file"
        case .passphrase: "--passphrase-file"
        }
    }

    public var environmentVariable: String {
        switch self {
        case .masterKey: "TOOLCFG_MASTER_KEY"
        case .newMasterKey: "TOOLCFG_NEW_MASTER_KEY"
        case .passphrase: "TOOLCFG_PASSPHRASE"
        }
    }

    var name: String {
        switch self {
        case .masterKey: "master key"
        case .newMasterKey: "new master key"
        case .passphrase: "passphrase"
        }
    }
}

public enum SecretInput {
    /// A secret file is a line of text; anything this large is not one.
    static let maximumFileSize = 64 * 1024

    /// Reads the secret's text from the file flag if given, else from the environment variable.
    /// Returns nil when neither is present.
    public static func readText(
        _ kind: SecretKind, filePath: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecretError) -> (text: String, source: SecretSource)? {
        if let filePath {
            let source: SecretSource = filePath == "-" ? .standardInput : .file(filePath)
            let data: Data
            do {
                if filePath == "-" {
                    data = try FileHandle.standardInput.readToEnd() ?? Data()
                } else {
                    let attributes = try FileManager.default.attributesOfItem(atPath: filePath)
                    if let size = attributes[.size] as? Int, size > maximumFileSize {
                        throw SecretError.unreadable(
                            source: source, reason: "it is \(size) bytes, too large to be a key or passphrase file")
                    }
                    data = try Data(contentsOf: URL(fileURLWithPath: filePath))
                }
            } catch let error as SecretError {
                throw error
            } catch {
                throw .unreadable(source: source, reason: Self.reason(error))
            }
            guard data.count <= maximumFileSize else {
                throw .unreadable(source: source, reason: "more than \(maximumFileSize) bytes, too large to be a key or passphrase")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw .unreadable(source: source, reason: "it is not UTF-8 text")
            }
            return (text, source)
        }
        if let value = environment[kind.environmentVariable] {
            return (value, .environment(kind.environmentVariable))
        }
        return nil
    }

    public static func masterKey(
        _ kind: SecretKind = .masterKey, filePath: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecretError) -> MasterKey? {
        guard let (text, source) = try readText(kind, filePath: filePath, environment: environment) else { return nil }
        return try MasterKey(text: text, source: source)
    }

    public static func requireMasterKey(
        _ kind: SecretKind = .masterKey, filePath: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecretError) -> MasterKey {
        guard let key = try masterKey(kind, filePath: filePath, environment: environment) else {
            throw .missing(secret: kind.name, flag: kind.flag, environmentVariable: kind.environmentVariable)
        }
        return key
    }

    static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        switch nsError.code {
        case NSFileReadNoSuchFileError: return "no such file"
        case NSFileReadNoPermissionError: return "permission denied"
        default: return nsError.localizedDescription
        }
    }
}
