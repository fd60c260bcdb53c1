import CPostgres
import Foundation

/// A PostgreSQL failure: the server's SQLSTATE and fields when the server reported it, the
/// database by its redacted URL, and what toolcfg was doing. It never holds a password, nor the
/// row values that the server puts in some messages (see `withoutRowValues`).
public struct PostgresError: EngineError, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No session could be opened: no server there, refused, authentication failed, no
        /// such database.
        case connect
        /// The server reported an error (see `sqlState`).
        case server
        /// An open session broke (server gone, network down).
        case connectionLost
        /// toolcfg misused the session or could not read a value; no SQLSTATE.
        case client
    }

    public var kind: Kind
    /// Five characters, e.g. 23505 (unique violation); nil when the server sent none.
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var hint: String?
    /// The server's CONTEXT (the call stack of a function, the line of a COPY).
    public var serverContext: String?
    public var table: String?
    public var column: String?
    public var constraint: String?
    /// The line, counted from 1, of a script where the error points (syntax and name errors).
    public var line: Int?
    /// The redacted URL.
    public var database: String
    /// What toolcfg was doing.
    public var context: String?

    public init(
        kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, hint: String? = nil,
        serverContext: String? = nil, table: String? = nil, column: String? = nil, constraint: String? = nil,
        line: Int? = nil, database: String, context: String? = nil
    ) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail.map(Self.withoutRowValues)
        self.hint = hint
        self.serverContext = serverContext.map(Self.withoutRowValues)
        self.table = table
        self.column = column
        self.constraint = constraint
        self.line = line
        self.database = database
        self.context = context
    }

    /// Transient: the same work may succeed later (lock or statement timeout, deadlock,
    /// serialization failure, server starting or overloaded).
    public var isTemporary: Bool { exitStatus == .temporaryFailure }

    /// The session ended under toolcfg: the server stopped or restarted, an administrator ended
    /// the backend (pg_terminate_backend), or the network dropped. The server rolls back what the
    /// session had not committed, so the same command can simply run again (exit 75).
    public var isConnectionLoss: Bool {
        if kind == .connectionLost { return true }
        guard kind == .server, let sqlState else { return false }
        // connection_exception (08...), admin_shutdown, crash_shutdown
        return sqlState.hasPrefix("08") || sqlState == "57P01" || sqlState == "57P02"
    }

    public var leftCommitUnknown: Bool { isConnectionLoss && context == "committing" }

    /// A session refused because the server is starting, stopping or recovering from a crash
    /// (libpq gives no SQLSTATE there, only the server's words): it will accept one shortly.
    public var isServerStartingOrStopping: Bool {
        kind == .connect
            && ["is starting up", "is in recovery mode", "is shutting down", "is not yet accepting connections"].contains {
                message.contains("the database system " + $0)
            }
    }

    /// disk_full: the server could not extend a file of its data directory. The statement
    /// failed, and with it the transaction, so nothing was committed. A session refused as it
    /// began carries no SQLSTATE: there the server's words for a full disk tell.
    public var isDiskFull: Bool {
        switch kind {
        case .server: sqlState == "53100"
        case .connect: message.contains("could not write init file") || message.contains("No space left on device")
        default: false
        }
    }

    public var exitStatus: ExitStatus {
        if isConnectionLoss { return .temporaryFailure }
        if isDiskFull { return .ioError }
        switch kind {
        case .connect: return isServerStartingOrStopping ? .temporaryFailure : .noInput
        case .connectionLost: return .temporaryFailure
        case .client: return .software
        case .server: break
        }
        let state = sqlState ?? ""
        switch state {
        // serialization_failure, deadlock_detected, lock_not_available (lock_timeout, NOWAIT),
        // query_canceled (statement_timeout), cannot_connect_now, too_many_connections
        case "40001", "40P01", "55P03", "57014", "57P03", "53300": return .temporaryFailure
        case "3D000": return .noInput  // invalid_catalog_name: no such database
        case "25006": return .ioError  // read_only_sql_transaction (a standby)
        case "XX001", "XX002": return .dataError  // data_corrupted, index_corrupted
        case "42501": return .noPermission  // insufficient_privilege
        default: break
        }
        switch state.prefix(2) {
        case "22", "23": return .dataError  // data exception, integrity constraint violation
        case "08", "57", "53", "58": return .ioError  // connection, shutdown, resources (disk full), system
        case "28": return .noPermission  // invalid authorization
        default: return .software
        }
    }

    public var description: String {
        var text = "database \(database): \(reason)"
        if let hint { text += "; hint: \(hint)" }
        // A COPY's line in the context is a line of toolcfg's own stream, not at fault when the
        // disk filled: `context` already says what was being written.
        if let serverContext, !isDiskFull { text += "; context: \(serverContext.replacingOccurrences(of: "\n", with: "; "))" }
        if isDiskFull {
            text +=
                kind == .connect
                ? "; the PostgreSQL server could not write to its data directory as the session began, so its disk is "
                    + "probably full; nothing was begun: free space there and run the same command again"
                : "; the PostgreSQL server's disk is full (its data directory), so the transaction was rolled back and "
                    + "nothing was changed: free space there and run the same command again"
        }
        if isConnectionLoss {
            text +=
                context == "committing"
                ? "; the connection was lost during the commit, so whether it committed is unknown (a backup this run wrote is "
                    + "kept): run the same command again "
                    + "once the server accepts connections (a rotation finishes or finds every secret under the new key; before "
                    + "importing again, see with export whether the rows arrived)"
                : "; the connection to the server was lost, and the server rolls back what was not committed, so nothing "
                    + "was changed: run the same command again once the server accepts connections"
        } else if isServerStartingOrStopping {
            text += "; the server is starting, stopping or recovering from a crash: run the same command again once it accepts connections"
        } else if isTemporary {
            text += " (the database was busy or refused for now: try again later)"
        }
        return text
    }

    /// What toolcfg was doing, the line, and what the server said (SQLSTATE and detail).
    public var reason: String {
        var text = [context, line.map { "line \($0)" }].compactMap { $0 }.joined(separator: ", ")
        if !text.isEmpty { text += ": " }
        text += message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += "; \(detail)" }
        return text
    }

    /// PostgreSQL quotes a whole failing row in "Failing row contains (...)" details and a
    /// COPY's failing line or field in its context: in this table those can be keys. Both are
    /// cut off; the table, column and line number stay.
    static func withoutRowValues(_ text: String) -> String {
        if text.hasPrefix("Failing row contains") { return "the failing row is not shown" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            guard line.hasPrefix("COPY "), let quote = line.range(of: ": \"") else { return line }
            return line[..<quote.lowerBound]
        }.joined(separator: "\n")
    }
}

extension PostgresError {
    /// The error a failed result carries, or the connection's when there is no result.
    init(result: OpaquePointer?, connection: OpaquePointer?, database: String, context: String?, script: String? = nil) {
        func field(_ code: UInt8) -> String? {
            guard let result, let value = PQresultErrorField(result, Int32(code)) else { return nil }
            return String(cString: value)
        }
        let sqlState = field(UInt8(ascii: "C"))
        let primary = field(UInt8(ascii: "M"))
        let fallback = result.flatMap { PQresultErrorMessage($0) }.map { String(cString: $0) } ?? ""
        var message = primary ?? (fallback.isEmpty ? Self.connectionMessage(connection) : fallback)
        message = message.trimmingCharacters(in: .whitespacesAndNewlines)
        let broken = connection.map { PQstatus($0) == CONNECTION_BAD } ?? true
        let kind: Kind = sqlState != nil ? .server : (broken || Self.saysConnectionLost(message) ? .connectionLost : .client)
        var line: Int?
        if let script, let position = field(UInt8(ascii: "P")).flatMap(Int.init), position > 0 {
            // A position counts characters from 1 in the statement text as sent.
            line = 1 + script.unicodeScalars.prefix(position - 1).reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
        }
        self.init(
            kind: kind, sqlState: sqlState, message: message, detail: field(UInt8(ascii: "D")),
            hint: field(UInt8(ascii: "H")), serverContext: field(UInt8(ascii: "W")),
            table: field(UInt8(ascii: "t")), column: field(UInt8(ascii: "c")),
            constraint: field(UInt8(ascii: "n")), line: line, database: database, context: context)
    }

    /// libpq's words for a session that broke, for the calls (a COPY's) after which its status
    /// may not say so yet.
    static func saysConnectionLost(_ message: String) -> Bool {
        [
            "server closed the connection unexpectedly", "no connection to the server", "connection to server was lost",
            "could not send data to server", "could not receive data from server", "SSL SYSCALL error"
        ].contains { message.contains($0) }
    }

    static func connectionMessage(_ connection: OpaquePointer?) -> String {
        guard let connection, let message = PQerrorMessage(connection) else { return "out of memory" }
        let text = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "unknown error" : text
    }
}
