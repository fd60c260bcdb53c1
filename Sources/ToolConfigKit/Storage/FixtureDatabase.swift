import Foundation

/// A committed fixture of either engine, opened as `any Database`: an SQLite file (only read), or
/// a PostgreSQL script loaded into a scratch database on a server (dropped afterwards).
public enum FixtureDatabase: Sendable, Hashable {
    case sqliteFile(path: String)
    case postgresScript(path: String)

    /// The fixtures of a folder by name: SQLite files (*.db, *.sqlite, *.sqlite3), then PostgreSQL
    /// scripts (*.sql).
    public static func all(in folder: String) throws -> [FixtureDatabase] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        } catch {
            throw MigrationError.unreadableFolder(path: folder, reason: SecretInput.reason(error))
        }
        func paths(_ suffixes: [String]) -> [String] {
            names.filter { name in suffixes.contains(where: name.hasSuffix) }.map {
                URL(fileURLWithPath: folder).appendingPathComponent($0).path
            }
        }
        return paths([".db", ".sqlite", ".sqlite3"]).map { .sqliteFile(path: $0) } + paths([".sql"]).map { .postgresScript(path: $0) }
    }

    /// The file names accepted, for messages.
    public static let kinds = "*.db, *.sqlite, *.sqlite3 or *.sql"

    public var path: String {
        switch self {
        case .sqliteFile(let path), .postgresScript(let path): path
        }
    }

    /// A script needs a server to be loaded on.
    public var needsServer: Bool {
        if case .postgresScript = self { true } else { false }
    }

    /// Runs `body` on the fixture's database. `server` (a PostgreSQL location, where toolcfg may
    /// create and drop databases) is used for a script only.
    public func withDatabase<T>(server: DatabaseLocation?, busyTimeout: Duration, _ body: (any Database) throws -> T) throws -> T {
        switch self {
        case .sqliteFile(let path):
            return try body(SQLiteConnection(path: path, mode: .readOnly, options: .init(busyTimeout: busyTimeout)))
        case .postgresScript(let path):
            guard case .postgres(let url) = server else {
                throw UsageError("\(path) is a PostgreSQL fixture: it needs a postgresql:// server")
            }
            let script: String
            do {
                script = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw MigrationError.unreadableFixture(path: path, reason: SecretInput.reason(error))
            }
            return try PostgresConnection.withScratchDatabase(on: url, options: .init(lockTimeout: busyTimeout)) { connection in
                try connection.transaction { try connection.execute(script, context: "loading the fixture \(path)") }
                return try body(connection)
            }
        }
    }
}
