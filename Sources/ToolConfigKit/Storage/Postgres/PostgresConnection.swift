import CPostgres
import Foundation

/// One PostgreSQL session through libpq (synchronous): scripts, parameterised queries, prepared
/// statements, transactions, COPY in both directions (PostgresCopy.swift), advisory locks.
/// The session speaks UTF-8 whatever the server's locale, and libpq's notices (NOTICE: ... does
/// not exist, skipping) are dropped rather than printed: the library never prints.
/// Not Sendable: a connection belongs to the thread that opened it.
public final class PostgresConnection {
    public struct Options: Sendable {
        /// How long a statement waits for a lock (row, table, advisory) before failing with
        /// 55P03 (exit 75): `lock_timeout`, the counterpart of SQLite's busy timeout. nil: the
        /// server's setting (by default, forever).
        public var lockTimeout: Duration?
        /// How long connecting may take, unless the URL sets `connect_timeout` itself.
        public var connectTimeout: Duration

        public init(lockTimeout: Duration? = .seconds(10), connectTimeout: Duration = .seconds(10)) {
            self.lockTimeout = lockTimeout
            self.connectTimeout = connectTimeout
        }
    }

    public let url: PostgresURL
    public let options: Options
    /// nil once closed.
    private(set) var handle: OpaquePointer?
    private var preparedStatements: [String: PostgresStatement] = [:]
    /// A `COPY ... FROM STDIN` left open by `copyInOpen`, ended before the next statement.
    var openCopy: (sql: String, context: String)?

    public init(url: PostgresURL, options: Options = Options()) throws(PostgresError) {
        self.url = url
        self.options = options
        // Keywords before `dbname` are defaults the URL may override; those after it win.
        let settings: [(String, String)] = [
            ("connect_timeout", String(max(1, options.connectTimeout.components.seconds))),
            ("dbname", url.text),
            ("client_encoding", "UTF8"),
            ("fallback_application_name", "toolcfg")
        ]
        handle = withCStrings(settings.map(\.0)) { keywords in
            withCStrings(settings.map(\.1)) { values in PQconnectdbParams(keywords, values, 1) }
        }
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            let message = PostgresError.connectionMessage(handle)
            PQfinish(handle)
            self.handle = nil
            throw PostgresError(kind: .connect, message: message, database: url.redacted, context: "connecting")
        }
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        if let timeout = options.lockTimeout {
            try execute("SET lock_timeout = \(Self.milliseconds(timeout))", context: "setting the lock timeout")
        }
    }

    deinit { close() }

    /// A duration as PostgreSQL's timeouts take it: whole milliseconds, at least 1 (0 is none).
    static func milliseconds(_ duration: Duration) -> Int64 {
        max(1, duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    public func close() {
        abandonOpenCopy()
        if let handle { PQfinish(handle) }
        handle = nil
        preparedStatements = [:]
    }

    /// The server's version as one number: 150018 for 15.18.
    public var serverVersion: Int { handle.map { Int(PQserverVersion($0)) } ?? 0 }
    /// The server's version as it reports it, e.g. "15.18 (Debian 15.18-0+deb12u1)".
    public var serverVersionText: String? { parameterStatus("server_version") }

    /// A setting the server reports to every session (server_version, server_encoding, ...).
    public func parameterStatus(_ name: String) -> String? {
        handle.flatMap { PQparameterStatus($0, name) }.map { String(cString: $0) }
    }

    /// Inside a transaction block, failed or not.
    public var isInTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE
    }

    // MARK: errors

    func error(_ result: OpaquePointer?, context: String?, script: String? = nil) -> PostgresError {
        PostgresError(result: result, connection: handle, database: url.redacted, context: context, script: script)
    }

    /// A failure found on this side; a broken session makes it a lost connection.
    func clientError(_ message: String, context: String?) -> PostgresError {
        let broken = handle.map { PQstatus($0) == CONNECTION_BAD } ?? false
        return PostgresError(kind: broken ? .connectionLost : .client, message: message, database: url.redacted, context: context)
    }

    /// The session, for a new statement: a COPY that `copyInOpen` left open ends first (and a
    /// failure of it is thrown here).
    func openHandle(context: String?) throws(PostgresError) -> OpaquePointer {
        guard let handle else { throw clientError("the connection is closed", context: context) }
        try endOpenCopy()
        return handle
    }

    /// Takes a result and throws unless its status is one of `accepted`.
    func checked(_ result: OpaquePointer?, accepting accepted: [ExecStatusType], context: String?, script: String? = nil)
        throws(PostgresError) -> OpaquePointer
    {
        guard let result, accepted.contains(PQresultStatus(result)) else {
            let failure = error(result, context: context, script: script)
            if let result {
                // A COPY started by a statement that was not meant to start one: end it.
                let status = PQresultStatus(result)
                PQclear(result)
                if status == PGRES_COPY_IN || status == PGRES_COPY_OUT { abandonCopy(status) }
            }
            throw failure
        }
        return result
    }

    // MARK: statements

    /// Runs a script of one or more statements (the simple query protocol: no parameters, in
    /// one implicit transaction unless the script manages its own). A failure names the line
    /// the server points at, when it points at one.
    public func execute(_ script: String, context: String? = nil) throws(PostgresError) {
        let handle = try openHandle(context: context)
        let result = try checked(
            PQexec(handle, script), accepting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY],
            context: context, script: script)
        PQclear(result)
    }

    /// Runs one statement with parameters `$1`, `$2`, ... and returns its rows (none for a
    /// command; `affectedRows` tells how many it touched).
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = [], context: String? = nil) throws(PostgresError) -> PostgresRows {
        let handle = try openHandle(context: context)
        let encoded = EncodedParameters(parameters)
        let result = encoded.withArrays { types, values, lengths, formats in
            PQexecParams(handle, sql, encoded.count, types, values, lengths, formats, 0)
        }
        return PostgresRows(
            handle: try checked(
                result, accepting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK],
                context: context ?? Self.abbreviate(sql), script: sql),
            database: url.redacted)
    }

    /// The first column of the first row, or nil when there is no row or it is NULL.
    public func queryText(_ sql: String, _ parameters: [PostgresValue] = [], context: String? = nil) throws(PostgresError) -> String? {
        let rows = try query(sql, parameters, context: context)
        return rows.count > 0 && rows.columnCount > 0 ? rows.text(0, 0) : nil
    }

    public func queryInt64(_ sql: String, _ parameters: [PostgresValue] = [], context: String? = nil) throws(PostgresError) -> Int64? {
        let rows = try query(sql, parameters, context: context)
        return rows.count > 0 && rows.columnCount > 0 ? try rows.int64(0, 0) : nil
    }

    /// `text` as a string literal for SQL that takes no parameters (COPY), quoted by libpq for
    /// this session's encoding and settings.
    public func literal(_ text: String) throws(PostgresError) -> String {
        let handle = try openHandle(context: "quoting a literal")
        let utf8 = Array(text.utf8)
        guard
            let quoted = utf8.withUnsafeBufferPointer({ bytes in
                bytes.withMemoryRebound(to: CChar.self) { PQescapeLiteral(handle, $0.baseAddress, $0.count) }
            })
        else { throw clientError(PostgresError.connectionMessage(handle), context: "quoting a literal") }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }

    /// A statement parsed once by the server and run many times. The same SQL gives the same
    /// statement; it lives as long as the connection (PostgreSQL 15's libpq cannot close one
    /// without a round trip of its own, and a command-line run prepares a handful).
    public func prepare(_ sql: String) throws(PostgresError) -> PostgresStatement {
        if let statement = preparedStatements[sql] { return statement }
        let handle = try openHandle(context: "preparing")
        let name = "toolcfg_\(preparedStatements.count + 1)"
        let result = try checked(
            PQprepare(handle, name, sql, 0, nil), accepting: [PGRES_COMMAND_OK],
            context: "preparing \(Self.abbreviate(sql))", script: sql)
        PQclear(result)
        let statement = PostgresStatement(name: name, sql: sql, connection: self)
        preparedStatements[sql] = statement
        return statement
    }

    // MARK: transactions

    public enum Isolation: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Runs `body` inside `BEGIN ... COMMIT`; any error rolls everything back. A commit that the
    /// server turned into a rollback (the transaction had failed, and `body` swallowed the error)
    /// is an error too. `readOnly` with `.repeatableRead` reads one consistent snapshot.
    /// `rollingBack`: the transaction always ends in a rollback, to see what writes would do.
    public func transaction<T>(
        isolation: Isolation = .readCommitted, readOnly: Bool = false, rollingBack: Bool = false,
        _ body: () throws -> T
    ) throws -> T {
        guard !isInTransaction else { throw clientError("a transaction is already open", context: "beginning a transaction") }
        try execute(
            "BEGIN ISOLATION LEVEL \(isolation.rawValue) \(readOnly ? "READ ONLY" : "READ WRITE")", context: "beginning a transaction")
        do {
            let result = try body()
            if rollingBack {
                try execute("ROLLBACK", context: "rolling back")
                return result
            }
            let commit = try query("COMMIT", context: "committing")
            guard commit.commandTag == "COMMIT" else {
                throw clientError("the transaction had failed, so the server rolled it back", context: "committing")
            }
            return result
        } catch {
            abandonOpenCopy()
            if isInTransaction, let handle { PQclear(PQexec(handle, "ROLLBACK")) }
            throw error
        }
    }

    // MARK: advisory locks (session level, as sqlx's migrator takes them)

    /// Waits for the lock, up to the lock timeout (then 55P03, exit 75).
    public func advisoryLock(_ key: Int64) throws(PostgresError) {
        try query("SELECT pg_advisory_lock($1)", [.integer(key)], context: "taking advisory lock \(key)")
    }

    /// Takes the lock if it is free; false when another session holds it.
    public func tryAdvisoryLock(_ key: Int64) throws(PostgresError) -> Bool {
        try query("SELECT pg_try_advisory_lock($1)", [.integer(key)], context: "trying advisory lock \(key)").bool(0, 0) ?? false
    }

    /// False when this session did not hold the lock.
    @discardableResult
    public func advisoryUnlock(_ key: Int64) throws(PostgresError) -> Bool {
        try query("SELECT pg_advisory_unlock($1)", [.integer(key)], context: "releasing advisory lock \(key)").bool(0, 0) ?? false
    }

    /// Holds the lock while `body` runs, and releases it however `body` ends.
    public func withAdvisoryLock<T>(_ key: Int64, _ body: () throws -> T) throws -> T {
        try advisoryLock(key)
        defer { _ = try? advisoryUnlock(key) }
        return try body()
    }

    static func abbreviate(_ sql: String) -> String {
        let flat = sql.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return "running " + (flat.count > 80 ? String(flat.prefix(77)) + "..." : flat)
    }
}

/// Calls `body` with a NULL-terminated array of C strings, as libpq's keyword arrays are.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
