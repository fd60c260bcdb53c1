/// How a command opens its database. Only SQLite acts on it (a file opened read-only, or created);
/// a PostgreSQL database exists before toolcfg connects, and the server's privileges decide what a
/// session may do.
public enum DatabaseOpenMode: Sendable {
    case readOnly
    case readWrite
    /// Creates the file if it does not exist (migrate up on a new database).
    case readWriteCreate
}

extension DatabaseLocation {
    /// Opens the database the location names: an SQLite file, or a session on a PostgreSQL server.
    /// `busyTimeout` is how long a statement waits for another's lock before failing with exit 75:
    /// SQLite's busy timeout, PostgreSQL's `lock_timeout`.
    public func open(mode: DatabaseOpenMode, busyTimeout: Duration) throws -> any Database {
        switch self {
        case .sqlite(let path):
            try SQLiteConnection(path: path, mode: mode, options: .init(busyTimeout: busyTimeout))
        case .postgres(let url):
            try PostgresConnection(url: url, options: .init(lockTimeout: busyTimeout))
        }
    }
}
