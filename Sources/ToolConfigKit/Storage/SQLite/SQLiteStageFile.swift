import CSQLite
import CSQLiteFunctions
import Foundation

/// A rotation's staged rows of one column group on SQLite, in a file without a name in SQLite's
/// temporary folder (`TemporaryStorage`): appended in rowid order during the snapshot, then read
/// by the write phase's UPDATE through SQL functions that walk it in step with the table's scan
/// (stage_file.c says why a file and not a table). Failures are `SQLiteError`s of the database
/// the stage belongs to (SQLITE_FULL when the folder is full), so they read like the engine's own.
final class SQLiteStageFile {
    private let file: OpaquePointer
    private let database: String

    init(database: String) throws(SQLiteError) {
        self.database = database
        var error: Int32 = 0
        guard let file = toolcfg_stage_file_create(TemporaryStorage.sqliteDirectory, &error) else {
            throw Self.error(error, database: database, context: nil)
        }
        self.file = file
    }

    deinit { toolcfg_stage_file_close(file) }

    /// A row's six texts one after the other, and their lengths: reused from row to row. Only the
    /// staging thread touches them, a million times a rotation: the dynamic exclusivity checks
    /// were a tenth of that thread's samples (perf).
    @exclusivity(unchecked) private var bytes: [UInt8] = []
    @exclusivity(unchecked) private var lengths = [Int](repeating: 0, count: 6)

    /// Rows come in ascending rowid; `old` is nil for a row kept as it is.
    func append(_ rowID: Int64, rotate: Bool, old: StoredSecret?, new: StoredSecret) throws(SQLiteError) {
        bytes.removeAll(keepingCapacity: true)
        add(old?.encryptedAPIKey, 0)
        add(old?.salt, 1)
        add(old?.nonce, 2)
        add(new.encryptedAPIKey, 3)
        add(new.salt, 4)
        add(new.nonce, 5)
        let status = bytes.withUnsafeBytes { texts in
            toolcfg_stage_file_append(file, rowID, rotate ? 1 : 0, texts.baseAddress?.assumingMemoryBound(to: CChar.self), lengths)
        }
        if status != 0 { throw Self.error(status, database: database, context: nil) }
    }

    private func add(_ text: String?, _ index: Int) {
        let before = bytes.count
        if let text { bytes.append(contentsOf: text.utf8) }
        lengths[index] = bytes.count - before
    }

    /// Ends the appends: what is buffered reaches the file.
    func finish() throws(SQLiteError) {
        let status = toolcfg_stage_file_finish(file)
        if status != 0 { throw Self.error(status, database: database, context: nil) }
    }

    /// Registers `prefix`_matches, _new, _holds and _staged on the connection (see
    /// CSQLiteFunctions.h); `unregister` removes them, before the file goes.
    func register(on handle: OpaquePointer, prefix: String) -> Int32 {
        toolcfg_stage_file_register(handle, file, prefix)
    }

    func unregister(on handle: OpaquePointer, prefix: String) {
        toolcfg_stage_file_unregister(handle, prefix)
    }

    /// The first row from rowid `from` on, in rowid order, that `include` keeps; nil when none is
    /// left. Asked with a higher `from` each time, it reads the file once from start to end: the
    /// rows it skips are stepped over, not sought past, so `include` must skip the same rows on
    /// every call until a lower `from`.
    func next(from: Int64, where include: (_ rowID: Int64, _ rotate: Bool) -> Bool) throws(SQLiteError) -> (
        rowID: Int64, secret: StoredSecret
    )? {
        var row = toolcfg_stage_row()
        var status = toolcfg_stage_file_next_from(file, from, &row)
        while status == 1 {
            if include(row.rowid, row.rotate != 0) {
                return (row.rowid, StoredSecret(encryptedAPIKey: Self.text(row, 3), salt: Self.text(row, 4), nonce: Self.text(row, 5)))
            }
            status = toolcfg_stage_file_step(file, &row)
        }
        if status < 0 { throw Self.error(-status, database: database, context: "reading the rotation's stage file") }
        return nil
    }

    /// How often the functions or `next` went back to the file's start (see CSQLiteFunctions.h).
    var rewinds: Int64 { toolcfg_stage_file_rewinds(file) }

    private static func text(_ row: toolcfg_stage_row, _ index: Int) -> String {
        let (pointer, length) =
            switch index {
            case 3: (row.texts.3, row.lengths.3)
            case 4: (row.texts.4, row.lengths.4)
            default: (row.texts.5, row.lengths.5)
            }
        guard let pointer else { return "" }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    /// The count and hash sum of toolcfg_digest over every row (its rowid and the triple it is to
    /// hold) but those in `skipping`.
    func digest(skipping: [Int64]) throws(SQLiteError) -> (rows: UInt64, sum: UInt64) {
        var rows: UInt64 = 0, sum: UInt64 = 0
        let skip = skipping.sorted()
        let status = toolcfg_stage_file_digest(file, skip, skip.count, &rows, &sum)
        if status != 0 { throw Self.error(status, database: database, context: "reading the rotation's stage file") }
        return (rows, sum)
    }

    private static func error(_ code: Int32, database: String, context: String?) -> SQLiteError {
        SQLiteError(
            code: toolcfg_stage_file_result_code(code), message: String(cString: strerror(code)), path: database, context: context)
    }
}
