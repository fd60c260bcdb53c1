/// Process exit statuses from sysexits.h, as the command-line contract fixes them.
public enum ExitStatus: Int32, Sendable, Codable {
    case success = 0
    case usage = 64
    case dataError = 65
    case noInput = 66
    /// A service is not there: the keyring entry asked for, or the kernel's key service.
    case unavailable = 69
    case software = 70
    /// A folder for output could not be created.
    case cannotCreate = 73
    case ioError = 74
    case temporaryFailure = 75
    case noPermission = 77
    /// 128 + the signal's number, as a shell reports a command a signal ended.
    case interrupted = 130
    case terminated = 143
}

/// Every error the library throws: it says what went wrong and where (file, line, field, table,
/// row id) and never includes a secret's value; the front end maps it to an exit status.
public protocol ToolcfgError: Error, CustomStringConvertible, Sendable {
    var exitStatus: ExitStatus { get }
    /// Where the error is, as separate values for machine-readable reports (the description says
    /// the same in words). Only the parts that apply are set.
    var errorContext: ErrorContext { get }
}

extension ToolcfgError {
    public var errorContext: ErrorContext { ErrorContext() }
}

/// Where an error is: the file (snapshot, key file, migration file, output) and the line, record
/// and field in it; or the database, table and row.
public struct ErrorContext: Sendable, Equatable, Codable {
    public var database: String?
    public var file: String?
    public var line: Int?
    public var record: Int?
    public var field: String?
    public var table: String?
    public var rowID: Int64?

    public init(
        database: String? = nil, file: String? = nil, line: Int? = nil, record: Int? = nil, field: String? = nil,
        table: String? = nil, rowID: Int64? = nil
    ) {
        self.database = database
        self.file = file
        self.line = line
        self.record = record
        self.field = field
        self.table = table
        self.rowID = rowID
    }
}
