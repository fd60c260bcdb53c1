/// What `--db` (or `TOOLCFG_DB`) names: an SQLite file, or a PostgreSQL database by its libpq URL
/// (`postgres://` or `postgresql://`). Its description never shows a password.
public enum DatabaseLocation: Sendable, Hashable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresURL)

    /// Where the value came from: argv is readable by every user of the machine (`ps`, `/proc`),
    /// the environment only by the user, so only the environment may carry a password.
    public enum Origin: Sendable {
        case argument
        case environment
    }

    public init(_ value: String, origin: Origin) throws(DatabaseLocationError) {
        guard PostgresURL.isPostgresURL(value) else {
            self = .sqlite(path: value)
            return
        }
        let url = try PostgresURL(value)
        if origin == .argument, url.carriesPassword { throw .passwordInArgument(url: url.redacted) }
        self = .postgres(url)
    }

    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let url): url.redacted
        }
    }
}
