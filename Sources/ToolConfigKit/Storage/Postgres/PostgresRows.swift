import CPostgres
import Foundation

/// The complete result of one query, in text format, read by row and column (both from 0).
/// Typed reads return nil for NULL and throw when the text is not of the type asked for.
/// A result is held in memory whole: stream large reads with `copyOut`.
public final class PostgresRows {
    private let handle: OpaquePointer
    private let database: String

    init(handle: OpaquePointer, database: String) {
        self.handle = handle
        self.database = database
    }

    deinit { PQclear(handle) }

    public var count: Int { Int(PQntuples(handle)) }
    public var columnCount: Int { Int(PQnfields(handle)) }
    /// The rows an INSERT, UPDATE, DELETE, MERGE, COPY, ... touched (0 for other commands).
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }
    /// The command tag, e.g. "INSERT 0 1", "COMMIT" (or "ROLLBACK" when a failed transaction ended).
    public var commandTag: String { String(cString: PQcmdStatus(handle)) }

    public func columnName(_ column: Int) -> String { String(cString: PQfname(handle, Int32(column))) }

    public func columnIndex(_ name: String) -> Int? {
        let index = Int(PQfnumber(handle, quotedIdentifier(name)))
        return index < 0 ? nil : index
    }

    /// The column's type OID (pg_type.oid).
    public func columnType(_ column: Int) -> UInt32 { PQftype(handle, Int32(column)) }

    public func isNull(_ row: Int, _ column: Int) -> Bool {
        check(row, column)
        return PQgetisnull(handle, Int32(row), Int32(column)) == 1
    }

    public func text(_ row: Int, _ column: Int) -> String? {
        if isNull(row, column) { return nil }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        return PQgetvalue(handle, Int32(row), Int32(column)).withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    public func int64(_ row: Int, _ column: Int) throws(PostgresError) -> Int64? {
        try PostgresText.read(text(row, column), { Int64($0) }, "an integer") { mismatch(row, column, $0) }
    }

    public func bool(_ row: Int, _ column: Int) throws(PostgresError) -> Bool? {
        try PostgresText.read(text(row, column), PostgresText.bool, "a boolean") { mismatch(row, column, $0) }
    }

    public func double(_ row: Int, _ column: Int) throws(PostgresError) -> Double? {
        try PostgresText.read(text(row, column), { Double($0) }, "a number") { mismatch(row, column, $0) }
    }

    /// A BYTEA column's bytes (the server sends them as `\x` hex or in the escape format).
    public func bytes(_ row: Int, _ column: Int) throws(PostgresError) -> [UInt8]? {
        if isNull(row, column) { return nil }
        guard columnType(column) == 17 else { throw mismatch(row, column, "bytea") }
        var length = 0
        guard
            let raw = PQgetvalue(handle, Int32(row), Int32(column)).withMemoryRebound(
                to: UInt8.self, capacity: 1,
                {
                    PQunescapeBytea($0, &length)
                })
        else { throw mismatch(row, column, "bytea") }
        defer { PQfreemem(raw) }
        return Array(UnsafeBufferPointer(start: raw, count: length))
    }

    private func check(_ row: Int, _ column: Int) {
        precondition(
            row >= 0 && row < count && column >= 0 && column < columnCount,
            "row \(row), column \(column) outside a result of \(count) x \(columnCount)")
    }

    /// The value itself is not shown: it may be a secret.
    private func mismatch(_ row: Int, _ column: Int, _ expected: String) -> PostgresError {
        PostgresError(
            kind: .client, message: "column \(columnName(column)) of row \(row + 1) is not \(expected) (type OID \(columnType(column)))",
            database: database, context: "reading a result")
    }
}
