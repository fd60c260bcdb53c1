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

    public var engine: DatabaseEngine {
        if case .postgres = self { .postgresql } else { .sqlite }
    }

    /// The value that opens it again, a PostgreSQL URL's password included: for processes that
    /// get it in their environment (never in argv), as the stress writers do.
    public var openingText: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let url): url.text
        }
    }
}

/// The engines toolcfg speaks, as reports name them.
public enum DatabaseEngine: String, Sendable, Codable {
    case sqlite
    case postgresql

    /// What a writer of one pair waits on: BEGIN IMMEDIATE takes SQLite's one write lock, an
    /// upsert on PostgreSQL the pair's row lock.
    public var pairWriteLock: String {
        switch self {
        case .sqlite: "BEGIN IMMEDIATE"
        case .postgresql: "the pair's row lock"
        }
    }
}
