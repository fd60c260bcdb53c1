/// The errors of opening and shaping databases, whatever the engine. (Each engine's own error,
/// SQLite's DatabaseError and PostgreSQL's PostgresError, lives with the C library it wraps.)

public struct TableShapeError: ToolcfgError {
    public var path: String
    public var message: String
    public var exitStatus: ExitStatus { .dataError }
    public var description: String { "database \(path) \(message)" }
    public var errorContext: ErrorContext { ErrorContext(database: path) }
}

/// A `--db` value that cannot be used. Exit 64: the command line has to change.
public enum DatabaseLocationError: ToolcfgError, Equatable {
    /// The URL (shown redacted) carries a password and came from argv.
    case passwordInArgument(url: String)
    /// libpq's parser refused the URL (shown redacted), for `reason`.
    case invalidPostgresURL(url: String, reason: String)

    public var exitStatus: ExitStatus { .usage }

    public var description: String {
        switch self {
        case .passwordInArgument(let url):
            "--db \(url) carries a password, and every user of this machine can read a command's arguments: "
                + "give the password in PGPASSWORD or a password file (PGPASSFILE, or ~/.pgpass), "
                + "or the whole URL in TOOLCFG_DB"
        case .invalidPostgresURL(let url, let reason):
            "--db \(url) is not a PostgreSQL URL libpq accepts: \(reason)"
        }
    }
}

/// A job toolcfg does not do on PostgreSQL yet: refused (exit 64) rather than pretended. On
/// PostgreSQL, the migrate commands and stress work; the stores that export, import, rotate and
/// verify-keys need are still to come.
public struct NotYetOnPostgres: ToolcfgError, Equatable {
    /// The redacted URL.
    public var database: String
    /// What does not work yet, e.g. "this command" or "reading and writing stored keys".
    public var what: String

    public init(database: String, what: String) {
        self.database = database
        self.what = what
    }

    public var exitStatus: ExitStatus { .usage }
    public var errorContext: ErrorContext { ErrorContext(database: database) }

    public var description: String {
        "database \(database): \(what) does not work on PostgreSQL yet; on PostgreSQL, toolcfg runs only "
            + "migrate up, down, status and verify, and stress, for now"
    }
}
