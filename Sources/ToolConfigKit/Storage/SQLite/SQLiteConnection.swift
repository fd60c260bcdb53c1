import CSQLite
import CSQLiteFunctions
import Foundation

/// One SQLite connection, set up the same way for every command: WAL, a busy timeout, foreign keys
/// on, and writes inside `BEGIN IMMEDIATE` so a writer takes the lock up front and waits for it,
/// instead of failing with SQLITE_BUSY when a deferred transaction tries to upgrade.
/// Not Sendable: a connection belongs to the thread that opened it.
public final class SQLiteConnection {
    public typealias OpenMode = DatabaseOpenMode

    public struct Options: Sendable {
        public var busyTimeout: Duration
        public var journalModeWAL: Bool

        public init(busyTimeout: Duration = .seconds(10), journalModeWAL: Bool = true) {
            self.busyTimeout = busyTimeout
            self.journalModeWAL = journalModeWAL
        }
    }

    public let path: String
    public let mode: OpenMode
    public let options: Options
    private var handle: OpaquePointer?
    /// Kept alive here: SQLite holds an unretained pointer to it.
    private var busyWait: BusyWait
    /// The WAL's size after a write transaction's commit (see `transaction`); kept alive here, as
    /// `busyWait` is.
    private let commitFrames = CommitFrames()

    public init(path: String, mode: OpenMode = .readWrite, options: Options = Options()) throws(SQLiteError) {
        self.path = path
        self.mode = mode
        self.options = options
        busyWait = BusyWait(timeout: options.busyTimeout)
        if mode != .readWriteCreate, path != ":memory:", !FileManager.default.fileExists(atPath: path) {
            // The common cause is a new installation or a mistyped path: say how a database is made.
            throw SQLiteError(
                code: SQLITE_CANTOPEN, message: "no such database file (toolcfg migrate up --db PATH creates a new one)", path: path)
        }
        let flags: Int32 =
            switch mode {
            case .readOnly: SQLITE_OPEN_READONLY
            case .readWrite: SQLITE_OPEN_READWRITE
            case .readWriteCreate: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
            }
        var db: OpaquePointer?
        let status = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        handle = db
        guard status == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            handle = nil
            throw SQLiteError(code: status, message: message, path: path, context: "opening")
        }
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_handler(
            db,
            { context, attempt in
                Unmanaged<BusyWait>.fromOpaque(context!).takeUnretainedValue().shouldRetry(attempt: attempt) ? 1 : 0
            }, Unmanaged.passUnretained(busyWait).toOpaque())
        // The first statement reads the header: a file that is not SQLite fails here, clearly.
        do throws(SQLiteError) {
            try readHeader()
        } catch  where error.code == SQLITE_NOTADB {
            throw SQLiteError(code: error.code, extendedCode: error.extendedCode, message: "the file is not an SQLite database", path: path)
        } catch  where error.extendedCode == Self.readOnlyRollback && mode == .readOnly {
            // A writer (the application's or ours) died mid-commit and left a hot journal, which a
            // read-only connection may not roll back. Any writing connection does so on its first
            // read, the application's next start included; it restores the last committed state.
            try Self.rollBackHotJournal(path, busyTimeout: options.busyTimeout)
            try readHeader()
        }
        // Setting WAL needs no lock when it is already set; asking only when needed keeps
        // concurrent openers from contending for it. It is a write (the file's header changes), so
        // it waits until a write transaction has committed: a command that fails, before its write
        // or in it, leaves the file byte for byte as it was.
        if options.journalModeWAL, mode != .readOnly, path != ":memory:" {
            wantsWAL = try queryText("PRAGMA journal_mode")?.lowercased() != "wal"
        }
    }

    /// SQLITE_READONLY_ROLLBACK, a C macro Swift does not import.
    private static let readOnlyRollback = SQLITE_READONLY | 3 << 8

    private func readHeader() throws(SQLiteError) {
        try execute("PRAGMA foreign_keys = ON")
        _ = try queryInt64("SELECT count(*) FROM sqlite_master")
    }

    private static func rollBackHotJournal(_ path: String, busyTimeout: Duration) throws(SQLiteError) {
        do {
            // Opening reads the header, which rolls the journal back under an exclusive lock.
            try SQLiteConnection(path: path, mode: .readWrite, options: Options(busyTimeout: busyTimeout, journalModeWAL: false)).close()
        } catch  where error.code == SQLITE_READONLY || error.code == SQLITE_CANTOPEN || error.code == SQLITE_PERM {
            throw SQLiteError(
                code: SQLITE_READONLY, extendedCode: Self.readOnlyRollback,
                message: "a writer that died mid-commit left \(path)-journal, which must be rolled back before the file can be read, "
                    + "and this user cannot write the database (\(error.message)): run the command as a user who may write it, "
                    + "or start the application once",
                path: path)
        }
    }

    /// Whether the file is to be switched to WAL after the first write that commits.
    private var wantsWAL = false

    /// Best effort: the data is committed either way, and WAL only spares readers and writers
    /// each other's locks next time.
    private func switchToWALAfterWriting() {
        guard wantsWAL, !isInTransaction else { return }
        wantsWAL = false
        _ = try? queryText("PRAGMA journal_mode = WAL")
    }

    deinit { close() }

    public func close() {
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    // MARK: errors

    func error(_ status: Int32, context: String?) -> SQLiteError {
        let message = Self.message(of: handle, status: status)
        let extended = handle.map { sqlite3_extended_errcode($0) } ?? status
        return SQLiteError(code: status, extendedCode: extended, message: message, path: path, context: context)
    }

    /// SQLite's message for a failure of `handle`; for an I/O failure with the OS's reason, since
    /// "disk I/O error" alone does not say that a disk filled (or which limit was hit).
    static func message(of handle: OpaquePointer?, status: Int32) -> String {
        guard let handle else { return String(cString: sqlite3_errstr(status)) }
        let message = String(cString: sqlite3_errmsg(handle))
        let primary = status & 0xff, osError = sqlite3_system_errno(handle)
        guard primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN, osError != 0 else { return message }
        return message + " (\(String(cString: strerror(osError))))"
    }

    /// The context is built only on failure: binds run millions of times per import.
    @inline(__always)
    func check(_ status: Int32, context: @autoclosure () -> String?) throws(SQLiteError) {
        guard status == SQLITE_OK else { throw error(status, context: context()) }
    }

    // MARK: statements

    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else {
            throw error(status, context: nil)
        }
        return SQLiteStatement(handle: statement, connection: self, sql: sql)
    }

    /// Runs every statement of a script in order. A failure names the line where the failing
    /// statement starts, counted from 1 in `sql`.
    public func execute(_ sql: String, context: String? = nil) throws(SQLiteError) {
        let bytes = Array(sql.utf8) + [0]
        var failure: SQLiteError?
        bytes.withUnsafeBufferPointer { buffer in
            let start = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var cursor: UnsafePointer<CChar>? = start
            while let current = cursor, current.pointee != 0 {
                var statement: OpaquePointer?
                var tail: UnsafePointer<CChar>?
                var status = sqlite3_prepare_v2(handle, current, -1, &statement, &tail)
                if status == SQLITE_OK, let statement {
                    repeat { status = sqlite3_step(statement) } while status == SQLITE_ROW
                    if status == SQLITE_DONE { status = SQLITE_OK }
                }
                if status != SQLITE_OK {
                    let first = Self.firstToken(in: bytes, from: current - start)
                    let line = bytes[..<first].reduce(1) { $1 == 0x0a ? $0 + 1 : $0 }
                    // A line number only means something in a script of several statements (a
                    // migration); of a single statement it would blame a line, not the data.
                    let others =
                        first > Self.firstToken(in: bytes, from: 0)
                        || tail.map { Self.firstToken(in: bytes, from: $0 - start) < bytes.count - 1 } == true
                    let where_ = [context, others ? "line \(line)" : nil].compactMap { $0 }.joined(separator: ", ")
                    failure = self.error(status, context: where_.isEmpty ? nil : where_)
                    sqlite3_finalize(statement)
                    return
                }
                sqlite3_finalize(statement)
                cursor = tail
            }
        }
        if let failure { throw failure }
    }

    /// Skips whitespace and comments, so an error points at the statement, not the gap before it.
    static func firstToken(in bytes: [UInt8], from offset: Int) -> Int {
        var i = offset
        let end = bytes.count
        while i < end {
            switch bytes[i] {
            case 0x20, 0x09, 0x0a, 0x0d:
                i += 1
            case 0x2d where i + 1 < end && bytes[i + 1] == 0x2d:  // -- to end of line
                while i < end, bytes[i] != 0x0a { i += 1 }
            case 0x2f where i + 1 < end && bytes[i + 1] == 0x2a:  // /* ... */
                i += 2
                while i + 1 < end, !(bytes[i] == 0x2a && bytes[i + 1] == 0x2f) { i += 1 }
                i = min(i + 2, end)
            default:
                return i
            }
        }
        return min(offset, end)
    }

    public func queryInt64(_ sql: String, _ values: [SQLiteStatement.Value] = []) throws(SQLiteError) -> Int64? {
        let statement = try prepare(sql)
        try statement.bind(values)
        return try statement.step() && !statement.isNull(0) ? statement.int64(0) : nil
    }

    public func queryText(_ sql: String, _ values: [SQLiteStatement.Value] = []) throws(SQLiteError) -> String? {
        let statement = try prepare(sql)
        try statement.bind(values)
        return try statement.step() ? statement.text(0) : nil
    }

    /// Registers `toolcfg_digest(...)` on this connection (once; see digest.c): an aggregate over
    /// rows whose result depends on the rows, not their order, so two connections can compare
    /// what they see with one scan each (`SecretStore.digest`). Not a cryptographic digest: it
    /// guards against a commit that did not store what was written, not against an adversary.
    func createDigestFunction() throws(SQLiteError) {
        guard !hasDigestFunction else { return }
        try check(toolcfg_create_digest_function(handle), context: "registering toolcfg_digest")
        hasDigestFunction = true
    }

    private var hasDigestFunction = false

    /// Registers the functions a rotation's write phase reads `file` through, named from `prefix`
    /// (see `SQLiteStageFile`); `unregisterStageFunctions` removes them.
    func registerStageFunctions(of file: SQLiteStageFile, prefix: String) throws(SQLiteError) {
        guard let handle else { throw error(SQLITE_MISUSE, context: "registering the stage's functions") }
        try check(file.register(on: handle, prefix: prefix), context: "registering the stage's functions")
    }

    func unregisterStageFunctions(of file: SQLiteStageFile, prefix: String) {
        if let handle { file.unregister(on: handle, prefix: prefix) }
    }

    /// A private temporary database attached to this connection as `scratchSchema`: SQLite
    /// opens a file for an empty name and unlinks it at once, so a kill leaves nothing, and
    /// detaching it discards every table in it at once, where DROP TABLE walks each table's pages
    /// (a rotation's stage of 1M rows: 1.2 s). Not inside a transaction (SQLite refuses).
    func attachScratch() throws(SQLiteError) {
        guard try queryInt64("SELECT count(*) FROM pragma_database_list WHERE name = ?1", [.text(Self.scratchSchema)]) == 0 else { return }
        try execute("ATTACH DATABASE '' AS \(Self.scratchSchema)", context: "attaching a temporary database")
    }

    /// Discards the scratch database and all in it, if attached.
    func detachScratch() {
        try? execute("DETACH DATABASE \(Self.scratchSchema)")
    }

    static let scratchSchema = "toolcfg_scratch"

    /// Creates `path` as an empty file (an empty SQLite database) if nothing is there, atomically
    /// (O_EXCL): true when this call made it, so that it is this run's to remove on failure and
    /// never a file another process created at the same moment.
    public static func createEmptyFile(at path: String) -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return false }
        Glibc.close(descriptor)
        return true
    }

    /// Removes a database file and the files SQLite keeps beside it; for a file this run created
    /// and no connection has open.
    public static func removeDatabaseFiles(at path: String) {
        for file in [path, path + "-journal", path + "-wal", path + "-shm"] { unlink(file) }
    }

    public var changes: Int { Int(sqlite3_changes64(handle)) }
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    // MARK: transactions

    /// Runs `body` in a transaction of the given kind (see `Database.transaction`): a read
    /// snapshot is `BEGIN` with a first read, so that it starts now rather than at the body's
    /// first statement; a write takes the lock up front with `BEGIN IMMEDIATE`.
    @discardableResult
    public func transaction<T>(_ kind: TransactionKind, lockHeld: (Duration) -> Void, _ body: () throws -> T) throws -> T {
        let clock = ContinuousClock()
        switch kind {
        case .read:
            try execute("BEGIN")
            _ = try queryInt64("SELECT count(*) FROM sqlite_master")
        case .write, .rolledBackWrite:
            try execute("BEGIN IMMEDIATE", context: "taking the write lock")
        case .deferredWrite:
            try execute("BEGIN DEFERRED")
        }
        let started = clock.now
        // SQLite's automatic checkpoint runs inside COMMIT, once the write lock is given up (a
        // PASSIVE one: the application's writers go on meanwhile). It is run right after the lock
        // is timed instead, so that the time reported is what the application waited (1M
        // rotated values: about 0.2 s of checkpoint).
        let checkpointEvery = kind == .write ? holdCheckpoint() : nil
        do {
            let result = try body()
            try execute(kind == .rolledBackWrite ? "ROLLBACK" : "COMMIT", context: kind == .read ? nil : "committing")
            lockHeld(clock.now - started)
            if let checkpointEvery { releaseCheckpoint(every: checkpointEvery, runningItNow: true) }
            if kind == .write || kind == .deferredWrite { switchToWALAfterWriting() }
            return result
        } catch {
            if isInTransaction { try? execute("ROLLBACK") }
            if let checkpointEvery { releaseCheckpoint(every: checkpointEvery, runningItNow: false) }
            throw error
        }
    }

    /// The automatic checkpoint's setting (pages), read at the first write transaction and kept:
    /// nothing else sets it on this connection, and `releaseCheckpoint` puts back this value (a
    /// stress run's writers commit thousands of small transactions, each read it again). 0, which
    /// it also reads while another WAL hook is set or when it cannot be read, leaves it alone.
    private lazy var autoCheckpointPages = Int32(clamping: (try? queryInt64("PRAGMA wal_autocheckpoint")) ?? 0)

    /// Replaces the automatic checkpoint with a hook that only records the WAL's size after the
    /// commit; returns the automatic checkpoint's setting (pages), nil when it is off.
    private func holdCheckpoint() -> Int32? {
        let pages = autoCheckpointPages
        guard let handle, pages > 0 else { return nil }
        commitFrames.count = 0
        sqlite3_wal_hook(
            handle,
            { context, _, schema, frames in
                if let schema, strcmp(schema, "main") == 0 {
                    Unmanaged<CommitFrames>.fromOpaque(context!).takeUnretainedValue().count = frames
                }
                return SQLITE_OK
            }, Unmanaged.passUnretained(commitFrames).toOpaque())
        return pages
    }

    /// Puts the automatic checkpoint back and, when the commit left the WAL at least that large,
    /// runs the checkpoint it would have run (a failed one changes nothing, as SQLite's own).
    private func releaseCheckpoint(every pages: Int32, runningItNow: Bool) {
        guard let handle else { return }
        sqlite3_wal_autocheckpoint(handle, pages)
        if runningItNow && pages > 0 && commitFrames.count >= pages {
            sqlite3_wal_checkpoint_v2(handle, "main", SQLITE_CHECKPOINT_PASSIVE, nil, nil)
        }
    }

    /// The WAL's size after a commit, as SQLite's WAL hook reports it.
    private final class CommitFrames {
        var count: Int32 = 0
    }

    /// `transaction(.write, body)`.
    public func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try transaction(.write, lockHeld: { _ in }, body)
    }

    /// Copies the whole database, as this connection sees it now, into a new file at `path`
    /// (created 0600, never over an existing file) with SQLite's online backup. Inside a write
    /// transaction that has changed nothing yet, the copy is exactly the state before the changes.
    public func backup(to path: String) throws {
        // An existing file or link is an output problem (74), not missing input.
        Glibc.close(try PrivateFile.create(path))
        // SQLite gives its journal beside the copy the copy's own mode (0600); it must not
        // follow a link put there since.
        var destination: OpaquePointer?
        var status = sqlite3_open_v2(path, &destination, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, nil)
        defer { sqlite3_close_v2(destination) }
        if status == SQLITE_OK, let backup = sqlite3_backup_init(destination, "main", handle, "main") {
            status = sqlite3_backup_step(backup, -1)
            let finished = sqlite3_backup_finish(backup)
            if status == SQLITE_DONE { status = finished }
        } else if status == SQLITE_OK {
            status = sqlite3_errcode(destination)
        }
        guard status == SQLITE_OK || status == SQLITE_DONE else {
            let message = Self.message(of: destination, status: status)
            // Closed first: an open copy would leave its journal behind (a full disk does).
            sqlite3_close_v2(destination)
            destination = nil
            for leftover in [path, path + "-journal"] { unlink(leftover) }
            throw SQLiteError(code: status, message: message, path: path, context: "writing the backup")
        }
    }

    /// Table and view names in the main schema.
    public func tableExists(_ name: String) throws(SQLiteError) -> Bool {
        try queryInt64("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [.text(name)]) ?? 0 > 0
    }

    public func columnNames(of table: String) throws(SQLiteError) -> [String] {
        let statement = try prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        try statement.bind(.text(table), at: 1)
        var names: [String] = []
        while try statement.step() { names.append(statement.text(0) ?? "") }
        return names
    }
}

/// Waits for a lock another connection holds, up to the busy timeout, trying again every
/// millisecond. SQLite's own busy timeout sleeps in growing steps up to 100 ms, so under steady
/// contention one writer keeps the lock in bursts while the others sleep: the stress test saw
/// single waits of 9 s, and failures past a 10 s timeout. Polling this often keeps the longest
/// wait near 0.2 s there, at the same throughput.
final class BusyWait {
    let timeout: Duration
    private var started = ContinuousClock.now

    init(timeout: Duration) {
        self.timeout = timeout
    }

    /// Called by SQLite with 0 for the first try of each wait.
    func shouldRetry(attempt: Int32) -> Bool {
        if attempt == 0 { started = ContinuousClock.now }
        guard ContinuousClock.now - started < timeout else { return false }
        usleep(1000)
        return true
    }
}
