import Foundation

/// Where SQLite keeps an import's and a rotation's staging tables: files of their own (deleted on
/// open), in the first of SQLITE_TMPDIR, TMPDIR, /var/tmp, /usr/tmp and /tmp that is a writable
/// folder, as SQLite's unix VFS chooses. `--temp-dir` sets SQLITE_TMPDIR, before any connection
/// opens: SQLite reads the variables once, at its first temporary file. (PostgreSQL keeps its
/// staging tables on the server, in its temp_tablespaces.)
public enum TemporaryStorage {
    /// Makes `directory` SQLite's temporary folder for this process.
    public static func use(_ directory: String) throws(TemporaryStorageError) {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder), isFolder.boolValue else {
            throw TemporaryStorageError(directory: directory, reason: "no such folder")
        }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw TemporaryStorageError(directory: directory, reason: "not a folder this user can write in")
        }
        setenv("SQLITE_TMPDIR", directory, 1)
    }

    /// The folder SQLite writes its temporary files to, as it would choose it now.
    public static var sqliteDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        let candidates = [environment["SQLITE_TMPDIR"], environment["TMPDIR"], "/var/tmp", "/usr/tmp", "/tmp"].compactMap { $0 }
        return candidates.first { path in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
                && access(path, W_OK | X_OK) == 0
        } ?? "."
    }

    /// Runs a write to a staging table; its failure says what was being staged, and where.
    @discardableResult
    static func staging<T>(_ what: @autoclosure () -> String, _ write: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        do {
            return try write()
        } catch var error {
            error.context =
                error.context ?? "\(what()) in SQLite's temporary storage (\(sqliteDirectory); --temp-dir chooses another folder)"
            throw error
        }
    }
}

/// `--temp-dir` names a folder that cannot hold SQLite's temporary files.
public struct TemporaryStorageError: ToolcfgError {
    public var directory: String
    public var reason: String
    public var exitStatus: ExitStatus { .cannotCreate }
    public var description: String { "--temp-dir \(directory): \(reason)" }
    public var errorContext: ErrorContext { ErrorContext(file: directory) }
}
