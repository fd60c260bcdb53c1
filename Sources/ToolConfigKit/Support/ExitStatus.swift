/// Process exit statuses from sysexits.h, as the command-line contract fixes them.
public enum ExitStatus: Int32, Sendable, Codable {
    case success = 0
    case usage = 64
    case dataError = 65
    case noInput = 66
    case software = 70
    case ioError = 74
    case temporaryFailure = 75
    case noPermission = 77
}

/// Every error the library throws: it says what went wrong and where (file, line, field, table,
/// row id) and never includes a secret's value; the front end maps it to an exit status.
public protocol ToolcfgError: Error, CustomStringConvertible, Sendable {
    var exitStatus: ExitStatus { get }
}
