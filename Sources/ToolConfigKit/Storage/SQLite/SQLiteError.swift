import CSQLite

/// An SQLite failure, with the database path and what was being done.
public struct SQLiteError: EngineError, Equatable {
    /// The primary result code (SQLITE_BUSY, SQLITE_CONSTRAINT, ...).
    public var code: Int32
    public var extendedCode: Int32
    public var message: String
    public var path: String
    public var context: String?

    public init(code: Int32, extendedCode: Int32? = nil, message: String, path: String, context: String? = nil) {
        self.code = code & 0xff
        self.extendedCode = extendedCode ?? code
        self.message = message
        self.path = path
        self.context = context
    }

    public var isBusy: Bool { code == SQLITE_BUSY || code == SQLITE_LOCKED }

    public var exitStatus: ExitStatus {
        switch code {
        case SQLITE_BUSY, SQLITE_LOCKED: .temporaryFailure
        case SQLITE_CANTOPEN: .noInput
        case SQLITE_NOTADB, SQLITE_CORRUPT, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_TOOBIG: .dataError
        case SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_PERM, SQLITE_PROTOCOL: .ioError
        default: .software
        }
    }

    public var errorContext: ErrorContext { ErrorContext(database: path) }

    public var database: String { path }
    public var reason: String { (context.map { "\($0): " } ?? "") + message }

    public var description: String {
        var text = "database \(path): \(reason)"
        if isBusy { text += " (the database stayed locked by another writer past the busy timeout)" }
        return text
    }
}
