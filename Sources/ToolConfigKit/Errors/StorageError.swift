/// The errors of opening and shaping databases, whatever the engine. (Each engine's own error,
/// SQLite's SQLiteError and PostgreSQL's PostgresError, lives with the C library it wraps.)

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

/// Row-level security would hide rows of these tables from the connecting role: an operation
/// that saw only some tenants' rows would report them as the whole, or rotate only their keys.
public struct RowLevelSecurityError: ToolcfgError, Equatable {
    public var database: String
    public var role: String
    public var tables: [String]

    public var exitStatus: ExitStatus { .noPermission }
    public var description: String {
        "database \(database): row-level security would hide rows of \(tables.joined(separator: ", ")) from \(role), so toolcfg "
            + "would see only some tenants' rows and act on them as if they were all; connect as a role that bypasses it "
            + "(a superuser, or one given BYPASSRLS: ALTER ROLE name BYPASSRLS) and run the command again; nothing was read or changed"
    }
    public var errorContext: ErrorContext { ErrorContext(database: database, table: tables.first) }
}
