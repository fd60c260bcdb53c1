import CSQLite
import Foundation

/// A prepared statement owned by one connection (and so by one thread).
public final class SQLiteStatement {
    private let handle: OpaquePointer
    private unowned let connection: SQLiteConnection
    public let sql: String

    init(handle: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.handle = handle
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    public enum Value: Sendable, Hashable {
        case null
        case integer(Int64)
        case real(Double)
        case text(String)
        case blob([UInt8])
    }

    // MARK: binding (1-based, as SQLite counts)

    public func bind(_ value: Value, at index: Int32) throws(SQLiteError) {
        let status: Int32
        switch value {
        case .null: status = sqlite3_bind_null(handle, index)
        case .integer(let v): status = sqlite3_bind_int64(handle, index, v)
        case .real(let v): status = sqlite3_bind_double(handle, index, v)
        case .text(let v): return try bind(v, at: index)
        case .blob(let v):
            status = v.withUnsafeBytes {
                sqlite3_bind_blob(
                    handle, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), toolcfg_sqlite_transient())
            }
        }
        // Checked here: touching the unowned connection costs a reference-count round trip, paid
        // only on failure.
        if status != SQLITE_OK { throw connection.error(status, context: "binding parameter \(index)") }
    }

    public func bind(_ values: [Value]) throws(SQLiteError) {
        for (offset, value) in values.enumerated() { try bind(value, at: Int32(offset + 1)) }
    }

    public func bind(_ text: String?, at index: Int32) throws(SQLiteError) {
        guard var text else { return try bind(.null, at: index) }
        let status: Int32 = text.withUTF8 { utf8 in
            // A NULL pointer would bind NULL: an empty text gets an empty string, copied.
            guard let base = utf8.baseAddress, !utf8.isEmpty else {
                return sqlite3_bind_text(handle, index, "", 0, toolcfg_sqlite_transient())
            }
            return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text(handle, index, $0, Int32(utf8.count), toolcfg_sqlite_transient())
            }
        }
        // Checked here: touching the unowned connection costs a reference-count round trip, paid
        // only on failure.
        if status != SQLITE_OK { throw connection.error(status, context: "binding parameter \(index)") }
    }

    public func bind(_ integer: Int64, at index: Int32) throws(SQLiteError) {
        try bind(.integer(integer), at: index)
    }

    // MARK: stepping

    /// Advances; true when a row is available.
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        let status = sqlite3_step(handle)
        switch status {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        // No SQL in the message: operators read it, and the statement is the tool's business.
        default: throw connection.error(status, context: nil)
        }
    }

    /// Resets and, unless `keepingBindings`, clears the bound values. A statement whose every
    /// parameter is bound again before each step keeps them: clearing frees the buffers that
    /// SQLite copied text into, and the next binds allocate them again (five mallocs per row of
    /// an import).
    public func reset(keepingBindings: Bool = false) {
        sqlite3_reset(handle)
        if !keepingBindings { sqlite3_clear_bindings(handle) }
    }

    /// Binds, steps once and reads the row with `read`, then resets: nil when there is none.
    public func firstRow<T>(_ read: (SQLiteStatement) -> T, binding values: [Value] = []) throws(SQLiteError) -> T? {
        defer { reset() }
        try bind(values)
        return try step() ? read(self) : nil
    }

    /// Binds, runs to completion and resets: for INSERT/UPDATE/DELETE.
    public func run(_ values: [Value] = []) throws(SQLiteError) {
        defer { reset() }
        try bind(values)
        while try step() {}
    }

    // MARK: columns (0-based)

    public var columnCount: Int32 { sqlite3_column_count(handle) }
    public func columnName(_ index: Int32) -> String { String(cString: sqlite3_column_name(handle, index)) }
    public func isNull(_ index: Int32) -> Bool { sqlite3_column_type(handle, index) == SQLITE_NULL }
    public func int64(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }
    public func double(_ index: Int32) -> Double { sqlite3_column_double(handle, index) }

    public func text(_ index: Int32) -> String? {
        guard let pointer = sqlite3_column_text(handle, index) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// A text column's UTF-8 bytes in place, valid only inside `body`; nil for NULL.
    func withText<R>(_ index: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard let pointer = sqlite3_column_text(handle, index) else { return nil }
        return body(UnsafeBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(handle, index))))
    }

    public func blob(_ index: Int32) -> [UInt8]? {
        if sqlite3_column_type(handle, index) == SQLITE_NULL { return nil }
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let pointer = sqlite3_column_blob(handle, index) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
    }

    public func value(_ index: Int32) -> Value {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_NULL: .null
        case SQLITE_INTEGER: .integer(int64(index))
        case SQLITE_FLOAT: .real(double(index))
        case SQLITE_TEXT: .text(text(index) ?? "")
        default: .blob(blob(index) ?? [])
        }
    }
}
