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

extension DatabaseLocation {
    /// Opens the database to read only: an SQLite file opened read-only, or a PostgreSQL session
    /// whose transactions are read-only. What it returns has no method that writes.
    public func openReader(busyTimeout: Duration) throws -> any DatabaseReader {
        switch self {
        case .sqlite(let path):
            try SQLiteConnection(path: path, mode: .readOnly, options: .init(busyTimeout: busyTimeout))
        case .postgres(let url):
            try PostgresConnection.reader(url: url, options: .init(lockTimeout: busyTimeout))
        }
    }

    /// For `migrate up`, which says when it made a database (a mistyped path would otherwise
    /// silently become a new one): an empty SQLite file made where none was, never over one
    /// (O_EXCL); its path, or nil when the file existed or the database is PostgreSQL's.
    public func createFileIfMissing() -> String? {
        guard case .sqlite(let path) = self, SQLiteConnection.createEmptyFile(at: path) else { return nil }
        return path
    }

    /// Removes a file `createFileIfMissing()` made, with its journal, WAL and shared memory.
    public static func removeCreatedFile(_ path: String) {
        SQLiteConnection.removeDatabaseFiles(at: path)
    }

    /// Whether the engine keeps an import's or a rotation's staging tables in local temporary
    /// files (SQLite), which `--temp-dir` places, rather than on a server.
    public var stagesInLocalFiles: Bool {
        if case .sqlite = self { true } else { false }
    }
}
