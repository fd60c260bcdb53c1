import CPostgres
import Foundation

/// A PostgreSQL database named by a URL in libpq's URI form (`postgresql://user@host:port/db?...`),
/// checked by libpq's own parser. The password it may carry goes to libpq only: `description`,
/// `debugDescription` and the mirror (`dump`) show `redacted`, where every value libpq itself marks
/// for hiding (`password`, `sslpassword`) reads `***`.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The URL as given, password included.
    let text: String
    public let redacted: String
    /// Whether the URL itself holds a non-empty password (in the user info or as a parameter).
    public let carriesPassword: Bool
    /// The parts libpq read from the URL, secrets left out; nil where the URL leaves the choice
    /// to libpq's defaults (environment variables such as PGUSER, then built-in ones).
    public let user: String?
    public let host: String?
    public let port: String?
    public let database: String?

    /// libpq reads only these two schemes, in lower case.
    public static func isPostgresURL(_ value: String) -> Bool {
        value.hasPrefix("postgresql://") || value.hasPrefix("postgres://")
    }

    public init(_ text: String) throws(DatabaseLocationError) {
        let redacted = Self.redact(text)
        guard Self.isPostgresURL(text) else {
            throw .invalidPostgresURL(url: redacted, reason: "it starts with neither postgres:// nor postgresql://")
        }
        var failure: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(text, &failure) else {
            let reason = failure.map { String(cString: $0) } ?? "out of memory"
            PQfreemem(failure)
            // libpq quotes the offending part of the URL, which may be the password.
            throw .invalidPostgresURL(
                url: redacted, reason: Self.withoutQuotedParts(reason).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        defer { PQconninfoFree(options) }
        var values: [String: String] = [:]
        var carriesPassword = false
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                if Self.isSecret(option.pointee) {
                    carriesPassword = carriesPassword || value.pointee != 0
                } else {
                    values[String(cString: keyword)] = String(cString: value)
                }
            }
            option += 1
        }
        self.text = text
        self.redacted = redacted
        self.carriesPassword = carriesPassword
        user = values["user"]
        host = values["host"] ?? values["hostaddr"]
        port = values["port"]
        database = values["dbname"]
    }

    public var description: String { redacted }
    public var debugDescription: String { "PostgresURL(\(redacted))" }
    public var customMirror: Mirror { Mirror(self, children: ["redacted": redacted], displayStyle: .struct) }

    /// The same server and settings, another database (the tests' scratch databases).
    public func replacingDatabase(with name: String) throws(DatabaseLocationError) -> PostgresURL {
        let parts = Self.split(text)
        let rest = text[parts.hostStart...]
        let hostEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let pathEnd = rest[hostEnd...].firstIndex(of: "?") ?? rest.endIndex
        let encoded = name.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? name
        return try PostgresURL(String(text[..<hostEnd]) + "/" + encoded + text[pathEnd...])
    }

    // MARK: redaction

    /// The keywords libpq shows as `*` (its `dispchar`): the secrets of a connection string.
    static let secretKeywords: Set<String> = {
        var keywords: Set<String> = ["password", "sslpassword"]
        guard let defaults = PQconndefaults() else { return keywords }
        defer { PQconninfoFree(defaults) }
        var option = defaults
        while let keyword = option.pointee.keyword {
            if isSecret(option.pointee) { keywords.insert(String(cString: keyword)) }
            option += 1
        }
        return keywords
    }()

    private static func isSecret(_ option: PQconninfoOption) -> Bool {
        option.dispchar.map { String(cString: $0).contains("*") } ?? false
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// Where libpq finds the user info and the host list: the user info runs from the scheme
    /// to the first `@` met before any `/`, and holds `user[:password]`.
    private static func split(_ text: String) -> (schemeEnd: String.Index, userInfo: Range<String.Index>?, hostStart: String.Index) {
        guard let scheme = text.range(of: "://") else { return (text.startIndex, nil, text.startIndex) }
        let rest = text[scheme.upperBound...]
        if let stop = rest.firstIndex(where: { $0 == "@" || $0 == "/" }), rest[stop] == "@" {
            return (scheme.upperBound, scheme.upperBound..<stop, text.index(after: stop))
        }
        return (scheme.upperBound, nil, scheme.upperBound)
    }

    /// The URL with the password of its user info and the values of secret parameters replaced
    /// by `***`. Textual, following libpq's reading of a URI, so it works on a URL libpq refuses.
    static func redact(_ text: String) -> String {
        let parts = split(text)
        var out = String(text[..<parts.schemeEnd])
        if let userInfo = parts.userInfo {
            let info = text[userInfo]
            out += info.firstIndex(of: ":").map { info[..<$0] + ":***" } ?? String(info)
            out += "@"
        }
        let rest = text[parts.hostStart...]
        guard let question = rest.firstIndex(of: "?") else { return out + rest }
        out += rest[...question]
        let parameters = rest[rest.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false)
        out += parameters.map { parameter -> String in
            guard let equals = parameter.firstIndex(of: "=") else { return String(parameter) }
            let keyword = parameter[..<equals]
            return secretKeywords.contains(keyword.removingPercentEncoding ?? String(keyword)) ? keyword + "=***" : String(parameter)
        }.joined(separator: "&")
        return out
    }

    /// Replaces every "quoted" part of a message with "...".
    static func withoutQuotedParts(_ message: String) -> String {
        var out = "", quoted = false
        for character in message {
            if character == "\"" {
                out += quoted ? "...\"" : "\""
                quoted.toggle()
            } else if !quoted {
                out.append(character)
            }
        }
        return quoted ? out + "...\"" : out
    }
}

extension PostgresURL {
    /// The URL as given, password included, for the tests' peers that connect with it (psycopg);
    /// named so that no one prints it by mistake.
    package var textWithPassword: String { text }
}
