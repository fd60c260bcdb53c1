import CPostgres
import Foundation

/// COPY in both directions, streamed: rows go to the server 64 KiB at a time, and come back
/// one row per call, so memory stays flat whatever the row count.
extension PostgresConnection {
    /// Runs `COPY ... FROM STDIN` (text format: the default, with no FORMAT option) and lets
    /// `body` write the rows. An error thrown by `body` abandons the copy (the server discards
    /// every row of it) and is rethrown; a row the server refuses fails the copy when it ends.
    /// Returns the row count the server reports.
    @discardableResult
    public func copyIn(_ sql: String, context: String? = nil, _ body: (PostgresCopyWriter) throws -> Void) throws -> Int64 {
        let context = context ?? Self.abbreviate(sql)
        let handle = try openHandle(context: context)
        PQclear(try checked(PQexec(handle, sql), accepting: [PGRES_COPY_IN], context: context, script: sql))
        let writer = PostgresCopyWriter(connection: self, handle: handle, context: context)
        do {
            try body(writer)
            try writer.flush()
        } catch {
            if !writer.ended { _ = try? endCopyIn(handle, failure: "toolcfg abandoned the copy", context: context) }
            throw error
        }
        writer.ended = true
        return try endCopyIn(handle, failure: nil, context: context)
    }

    /// Sends `rows` to a `COPY ... FROM STDIN` that stays open when this returns, so that the
    /// server stores them while the caller prepares the next ones: the next call with the same
    /// `sql` adds to it, and any other statement of the session ends it first (and fails with
    /// its error, if the server refused a row). A failure rolls back as `copyIn`'s does.
    public func copyInOpen(_ sql: String, context: String, _ rows: PostgresCopyText) throws(PostgresError) {
        if openCopy?.sql != sql {
            let handle = try openHandle(context: context)
            PQclear(try checked(PQexec(handle, sql), accepting: [PGRES_COPY_IN], context: context, script: sql))
            openCopy = (sql, context)
        }
        guard let handle, !rows.bytes.isEmpty else { return }
        let status = rows.bytes.withUnsafeBytes { bytes in
            PQputCopyData(handle, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }
        if status != 1 {
            // The server already left the copy: its result says why.
            try endOpenCopy()
            throw PostgresError(result: nil, connection: handle, database: url.redacted, context: context)
        }
    }

    /// Ends the copy `copyInOpen` left open, if any.
    func endOpenCopy() throws(PostgresError) {
        guard let copy = openCopy, let handle else { return }
        openCopy = nil
        _ = try endCopyIn(handle, failure: nil, context: copy.context)
    }

    /// Ends it so that the server discards its rows (an error is on its way anyway).
    func abandonOpenCopy() {
        guard let copy = openCopy, let handle else { return }
        openCopy = nil
        _ = try? endCopyIn(handle, failure: "toolcfg abandoned the copy", context: copy.context)
    }

    /// Runs `COPY ... TO STDOUT` and hands `body` each row as it arrives. In text format (the
    /// default) `PostgresCopyRow` reads its fields; in any format `line` holds the row as sent.
    /// An error thrown by `body` cancels the copy and is rethrown. Returns the row count.
    @discardableResult
    public func copyOut(_ sql: String, context: String? = nil, _ body: (PostgresCopyRow) throws -> Void) throws -> Int64 {
        let context = context ?? Self.abbreviate(sql)
        let handle = try openHandle(context: context)
        PQclear(try checked(PQexec(handle, sql), accepting: [PGRES_COPY_OUT], context: context, script: sql))
        let row = PostgresCopyRow(database: url.redacted)
        while true {
            var data: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &data, 0)
            guard length > 0, let data else { break }  // -1: done, -2: failed (the result says why)
            // The row is read where libpq put it, and freed once the body is done with it.
            row.load(UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: Int(length)))
            do {
                try body(row)
                PQfreemem(data)
            } catch {
                PQfreemem(data)
                abandonCopyOut(handle)
                throw error
            }
        }
        return try copyOutcome(handle, context: context)
    }

    /// Ends a COPY FROM STDIN: with `failure`, the server abandons it.
    func endCopyIn(_ handle: OpaquePointer, failure: String?, context: String) throws(PostgresError) -> Int64 {
        // -1 when libpq already left the copy (the server refused a row): the result says why.
        _ = PQputCopyEnd(handle, failure)
        return try copyOutcome(handle, context: context)
    }

    /// The result that closes a COPY, and the row count it reports.
    private func copyOutcome(_ handle: OpaquePointer, context: String) throws(PostgresError) -> Int64 {
        var outcome: Result<Int64, PostgresError>?
        while let result = PQgetResult(handle) {
            if outcome == nil {
                outcome =
                    PQresultStatus(result) == PGRES_COMMAND_OK
                    ? .success(Int64(String(cString: PQcmdTuples(result))) ?? 0)
                    : .failure(error(result, context: context))
            }
            PQclear(result)
        }
        return try (outcome ?? .failure(error(nil, context: context))).get()
    }

    /// Stops a COPY TO STDOUT that nobody reads any more: cancels it, then drains what was on the way.
    func abandonCopyOut(_ handle: OpaquePointer) {
        if let cancel = PQgetCancel(handle) {
            var message = [CChar](repeating: 0, count: 256)
            _ = PQcancel(cancel, &message, Int32(message.count))
            PQfreeCancel(cancel)
        }
        var data: UnsafeMutablePointer<CChar>?
        while PQgetCopyData(handle, &data, 0) > 0 {
            PQfreemem(data)
            data = nil
        }
        while let result = PQgetResult(handle) { PQclear(result) }
    }

    /// Leaves a COPY that a statement started unexpectedly (`checked` refused its status).
    func abandonCopy(_ status: ExecStatusType) {
        guard let handle else { return }
        if status == PGRES_COPY_IN {
            _ = try? endCopyIn(handle, failure: "toolcfg expected no COPY here", context: "abandoning a COPY")
        } else {
            abandonCopyOut(handle)
        }
    }
}

/// Rows in PostgreSQL's COPY text format: fields separated by tabs, NULL as `\N`, backslash,
/// tab, newline and carriage return escaped. Append a row's fields in the table's column order,
/// then call `endRow`. A value: rows can be encoded ahead of their COPY (an import's batch) and
/// sent whole with `PostgresConnection.copyInOpen`.
public struct PostgresCopyText {
    public private(set) var bytes: [UInt8] = []
    public private(set) var rowCount: Int64 = 0
    private var fieldsInRow = 0

    public init(capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    public var isEmpty: Bool { rowCount == 0 && fieldsInRow == 0 }

    public mutating func append(_ text: String?) {
        startField()
        guard var text else {
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(UInt8(ascii: "N"))
            return
        }
        text.withUTF8 { Self.escape($0, into: &bytes) }
    }

    public mutating func append(_ integer: Int64) {
        startField()
        DecimalText.withDigits(integer) { bytes.append(contentsOf: $0) }
    }

    public mutating func append(_ bool: Bool) {
        startField()
        bytes.append(bool ? UInt8(ascii: "t") : UInt8(ascii: "f"))
    }

    /// An integer, or NULL.
    public mutating func append(_ integer: Int64?) {
        guard let integer else { return append(nil as String?) }
        append(integer)
    }

    /// A boolean, or NULL.
    public mutating func append(_ bool: Bool?) {
        guard let bool else { return append(nil as String?) }
        append(bool)
    }

    public mutating func endRow() {
        bytes.append(UInt8(ascii: "\n"))
        fieldsInRow = 0
        rowCount += 1
    }

    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        rowCount = 0
        fieldsInRow = 0
    }

    private mutating func startField() {
        if fieldsInRow > 0 { bytes.append(UInt8(ascii: "\t")) }
        fieldsInRow += 1
    }

    /// A field without anything to escape (the common case: ids, base64) goes in with one copy,
    /// found eight bytes at a time (as `CSVSnapshotWriter.needsQuoting` does).
    private static func escape(_ field: UnsafeBufferPointer<UInt8>, into bytes: inout [UInt8]) {
        guard needsEscapes(field) else { return bytes.append(contentsOf: field) }
        var runStart = 0
        for (index, byte) in field.enumerated() {
            let escaped: UInt8
            switch byte {
            case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
            case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
            case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
            case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
            default: continue
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: field[runStart..<index]))
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(escaped)
            runStart = index + 1
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: field[runStart...]))
    }

    /// Whether the field holds a backslash, tab, newline or carriage return.
    static func needsEscapes(_ field: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasZeroByte(_ v: UInt64) -> Bool { (v &- ones) & ~v & highs != 0 }
        var index = 0
        if let base = field.baseAddress {
            let raw = UnsafeRawPointer(base)
            while index + 8 <= field.count {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if hasZeroByte(word ^ (ones &* 0x5C)) || hasZeroByte(word ^ (ones &* 0x09))
                    || hasZeroByte(word ^ (ones &* 0x0A)) || hasZeroByte(word ^ (ones &* 0x0D))
                {
                    return true
                }
                index += 8
            }
        }
        while index < field.count {
            switch field[index] {
            case 0x5C, 0x09, 0x0A, 0x0D: return true
            default: index += 1
            }
        }
        return false
    }
}

/// Sends the rows of a `COPY ... FROM STDIN` (see `PostgresCopyText` for the format), 64 KiB at
/// a time. Valid only inside `copyIn`'s body.
public final class PostgresCopyWriter {
    /// Buffered bytes are sent to the server 64 KiB at a time, as the snapshot readers read.
    static let flushSize = 1 << 16

    private unowned let connection: PostgresConnection
    private let handle: OpaquePointer
    private let context: String
    private var buffer = PostgresCopyText(capacity: flushSize + 4096)
    /// Rows ended so far.
    public private(set) var rowCount: Int64 = 0
    /// The copy was ended (by `copyIn`, or here when the server refused data).
    var ended = false

    init(connection: PostgresConnection, handle: OpaquePointer, context: String) {
        self.connection = connection
        self.handle = handle
        self.context = context
    }

    public func append(_ text: String?) { buffer.append(text) }
    public func append(_ integer: Int64) { buffer.append(integer) }
    public func append(_ bool: Bool) { buffer.append(bool) }

    public func endRow() throws(PostgresError) {
        buffer.endRow()
        rowCount += 1
        if buffer.bytes.count >= Self.flushSize { try flush() }
    }

    public func appendRow(_ fields: [String?]) throws(PostgresError) {
        for field in fields { append(field) }
        try endRow()
    }

    /// Sends what is buffered. A row the server refuses surfaces only when the copy ends: libpq
    /// leaves the server's error unread until then (PostgreSQL 15), so a bad row early in a
    /// long stream costs the sending of the rest. Validate before copying.
    func flush() throws(PostgresError) {
        guard !buffer.bytes.isEmpty, !ended else { return }
        defer { buffer.removeAll() }
        let status = buffer.bytes.withUnsafeBytes { bytes in
            PQputCopyData(handle, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }
        guard status == 1 else {
            ended = true
            _ = try connection.endCopyIn(handle, failure: nil, context: context)
            throw PostgresError(result: nil, connection: handle, database: connection.url.redacted, context: context)
        }
    }
}

/// One row of a `COPY ... TO STDOUT`, reused for every row: read it inside the body of
/// `copyOut`, where it points into libpq's buffer (no copy). In text format, fields are read by
/// index from 0, NULL as nil; in binary format, with `readBinaryFields`.
public final class PostgresCopyRow {
    /// The row as the server sent it (in text format, without its final newline).
    private var raw = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
    /// The message as the server sent it: in binary format a final 0x0A is data.
    private var message = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
    /// In binary format the first message starts with the file header.
    private var headerPending = true
    /// The fields of `raw`, found on the first read of one.
    private var fields: [UnsafeBufferPointer<UInt8>?] = []
    private var fieldsFound = false
    /// Where fields with escapes are written undone: at least as large as the row (undoing
    /// escapes never makes text longer), so every field of a row fits.
    private var scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1024)
    private let database: String

    init(database: String) {
        self.database = database
    }

    deinit { scratch.deallocate() }

    func load(_ bytes: UnsafeBufferPointer<UInt8>) {
        message = bytes
        let count = bytes.last == UInt8(ascii: "\n") ? bytes.count - 1 : bytes.count
        raw = UnsafeBufferPointer(rebasing: bytes[0..<count])
        fieldsFound = false
        if scratch.count < count {
            scratch.deallocate()
            scratch = .allocate(capacity: max(count, scratch.count * 2))
        }
    }

    /// The row as sent, without its final newline (a copy).
    public var line: [UInt8] { Array(raw) }

    /// Every field's bytes with the text format's escapes undone, nil for NULL, valid only until
    /// the body of `copyOut` returns. One pass over the row, with the row's state read once: an
    /// export reads every field of a million rows this way (reading them one by one through this
    /// class's properties cost a third of its time in exclusivity checks).
    public func readFields(into fields: inout [UnsafeBufferPointer<UInt8>?]) {
        fields.removeAll(keepingCapacity: true)
        let raw = self.raw, scratch = self.scratch
        guard let base = raw.baseAddress, raw.count > 0 else { return fields.append(raw) }
        let backslash = Int32(UInt8(ascii: "\\"))
        let escaped = memchr(base, backslash, raw.count) != nil
        var start = 0, used = 0
        while true {
            let end =
                memchr(base + start, Int32(UInt8(ascii: "\t")), raw.count - start).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) }
                ?? raw.count
            let field = UnsafeBufferPointer(rebasing: raw[start..<end])
            if field.count == 2 && field[0] == UInt8(ascii: "\\") && field[1] == UInt8(ascii: "N") {
                fields.append(nil)
            } else if escaped, memchr(base + start, backslash, field.count) != nil {
                let first = used
                Self.unescape(field) { byte in
                    scratch[used] = byte
                    used += 1
                }
                fields.append(UnsafeBufferPointer(rebasing: scratch[first..<used]))
            } else {
                fields.append(field)
            }
            guard end < raw.count else { return }
            start = end + 1
        }
    }

    /// In binary format (`COPY ... TO STDOUT (FORMAT binary)`): the fields of the row, nil for
    /// NULL, as the server sent them (integers big-endian), valid only until the body of `copyOut`
    /// returns; false for the trailer that ends the data. Binary rows need no escapes undone and
    /// no integers parsed, and the server sends them for less than text (an export's hot path).
    public func readBinaryFields(into fields: inout [UnsafeBufferPointer<UInt8>?]) throws(PostgresError) -> Bool {
        fields.removeAll(keepingCapacity: true)
        let bytes = message
        guard let base = bytes.baseAddress else { throw binaryMismatch("an empty message") }
        let raw = UnsafeRawPointer(base)
        func int32(_ offset: Int) -> Int { Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self))) }
        var offset = 0
        if headerPending {
            // "PGCOPY\n\377\r\n\0", flags, the length of a header extension, the extension.
            guard bytes.count >= 19, bytes.starts(with: [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00]) else {
                throw binaryMismatch("no binary COPY header")
            }
            offset = 19 + int32(15)
            headerPending = false
        }
        guard offset + 2 <= bytes.count else { throw binaryMismatch("a row cut short") }
        let count = Int(Int16(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int16.self)))
        offset += 2
        if count == -1 { return false }
        for _ in 0..<max(count, 0) {
            guard offset + 4 <= bytes.count else { throw binaryMismatch("a row cut short") }
            let length = int32(offset)
            offset += 4
            if length == -1 {
                fields.append(nil)
                continue
            }
            guard length >= 0, offset + length <= bytes.count else { throw binaryMismatch("a field cut short") }
            fields.append(UnsafeBufferPointer(rebasing: bytes[offset..<(offset + length)]))
            offset += length
        }
        return true
    }

    /// A binary integer field (int8, int4 or int2), big-endian.
    static func integer(binary bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard let base = bytes.baseAddress else { return nil }
        let raw = UnsafeRawPointer(base)
        switch bytes.count {
        case 8: return Int64(bigEndian: raw.loadUnaligned(as: Int64.self))
        case 4: return Int64(Int32(bigEndian: raw.loadUnaligned(as: Int32.self)))
        case 2: return Int64(Int16(bigEndian: raw.loadUnaligned(as: Int16.self)))
        default: return nil
        }
    }

    private func binaryMismatch(_ what: String) -> PostgresError {
        PostgresError(kind: .client, message: "a binary COPY message with \(what)", database: database, context: "reading a COPY row")
    }

    public var fieldCount: Int {
        findFields()
        return fields.count
    }

    public func isNull(_ field: Int) -> Bool { bytes(field) == nil }

    /// The field's bytes with the text format's escapes undone, nil for NULL: valid only until
    /// the body of `copyOut` returns.
    public func bytes(_ field: Int) -> UnsafeBufferPointer<UInt8>? {
        findFields()
        precondition(field >= 0 && field < fields.count, "field \(field) outside a COPY row of \(fields.count)")
        return fields[field]
    }

    public func text(_ field: Int) -> String? {
        bytes(field).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Read from the bytes, without a String in between.
    public func int64(_ field: Int) throws(PostgresError) -> Int64? {
        guard let bytes = bytes(field) else { return nil }
        guard let value = Self.int64(bytes) else { throw mismatch(field, "an integer") }
        return value
    }

    public func bool(_ field: Int) throws(PostgresError) -> Bool? {
        guard let bytes = bytes(field) else { return nil }
        guard let value = Self.bool(bytes) else { throw mismatch(field, "a boolean") }
        return value
    }

    /// An optional minus and decimal digits within Int64, as PostgreSQL writes integers.
    static func int64(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        let negative = bytes.first == UInt8(ascii: "-")
        var index = negative ? 1 : 0
        guard index < bytes.count else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (next, carried) = negative ? times.subtractingReportingOverflow(Int64(digit)) : times.addingReportingOverflow(Int64(digit))
            guard !overflowed, !carried else { return nil }
            value = next
            index += 1
        }
        return value
    }

    /// `t` or `f`, as PostgreSQL writes booleans.
    static func bool(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard bytes.count == 1 else { return nil }
        return bytes[0] == UInt8(ascii: "t") ? true : bytes[0] == UInt8(ascii: "f") ? false : nil
    }

    private func findFields() {
        guard !fieldsFound else { return }
        readFields(into: &fields)
        fieldsFound = true
    }

    /// Undoes the text format's escapes: \b \f \n \r \t \v, \\ and any other \c as c, and the
    /// octal (\123) and hex (\x4F) forms that COPY FROM accepts.
    static func unescape(_ raw: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        unescape(raw) { out.append($0) }
        return out
    }

    static func unescape<Bytes: RandomAccessCollection<UInt8>>(_ raw: Bytes, _ emit: (UInt8) -> Void) where Bytes.Index == Int {
        var index = raw.startIndex
        func digit(_ byte: UInt8, radix: UInt8) -> UInt8? {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            return value < radix ? value : nil
        }
        while index < raw.endIndex {
            let byte = raw[index]
            index += 1
            guard byte == UInt8(ascii: "\\"), index < raw.endIndex else {
                emit(byte)
                continue
            }
            let escaped = raw[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "b"): emit(0x08)
            case UInt8(ascii: "f"): emit(0x0c)
            case UInt8(ascii: "n"): emit(0x0a)
            case UInt8(ascii: "r"): emit(0x0d)
            case UInt8(ascii: "t"): emit(0x09)
            case UInt8(ascii: "v"): emit(0x0b)
            case UInt8(ascii: "x") where index < raw.endIndex && digit(raw[index], radix: 16) != nil:
                var value: UInt8 = 0
                for _ in 0..<2 where index < raw.endIndex {
                    guard let d = digit(raw[index], radix: 16) else { break }
                    value = value &* 16 &+ d
                    index += 1
                }
                emit(value)
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = escaped - UInt8(ascii: "0")
                for _ in 0..<2 where index < raw.endIndex {
                    guard let d = digit(raw[index], radix: 8) else { break }
                    value = value &* 8 &+ d
                    index += 1
                }
                emit(value)
            default: emit(escaped)
            }
        }
    }

    private func mismatch(_ field: Int, _ expected: String) -> PostgresError {
        PostgresError(
            kind: .client, message: "field \(field + 1) of a COPY row is not \(expected)", database: database, context: "reading a COPY row"
        )
    }
}
