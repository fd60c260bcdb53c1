import CPostgres

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
            row.load(UnsafeRawBufferPointer(start: data, count: Int(length)))
            PQfreemem(data)
            do {
                try body(row)
            } catch {
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
                outcome = PQresultStatus(result) == PGRES_COMMAND_OK
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

/// Writes the rows of a `COPY ... FROM STDIN` in PostgreSQL's text format: fields separated by
/// tabs, NULL as `\N`, backslash, tab, newline and carriage return escaped. Append a row's
/// fields in the table's column order, then call `endRow`. Valid only inside `copyIn`'s body.
public final class PostgresCopyWriter {
    /// Buffered bytes are sent to the server 64 KiB at a time, as the snapshot readers read.
    static let flushSize = 1 << 16

    private unowned let connection: PostgresConnection
    private let handle: OpaquePointer
    private let context: String
    private var buffer: [UInt8] = []
    private var fieldsInRow = 0
    /// Rows ended so far.
    public private(set) var rowCount: Int64 = 0
    /// The copy was ended (by `copyIn`, or here when the server refused data).
    var ended = false

    init(connection: PostgresConnection, handle: OpaquePointer, context: String) {
        self.connection = connection
        self.handle = handle
        self.context = context
        buffer.reserveCapacity(Self.flushSize + 4096)
    }

    public func append(_ text: String?) {
        startField()
        guard var text else {
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(UInt8(ascii: "N"))
            return
        }
        text.withUTF8 { Self.escape($0, into: &buffer) }
    }

    public func append(_ integer: Int64) {
        startField()
        buffer.append(contentsOf: String(integer).utf8)
    }

    public func append(_ bool: Bool) {
        startField()
        buffer.append(bool ? UInt8(ascii: "t") : UInt8(ascii: "f"))
    }

    public func endRow() throws(PostgresError) {
        buffer.append(UInt8(ascii: "\n"))
        fieldsInRow = 0
        rowCount += 1
        if buffer.count >= Self.flushSize { try flush() }
    }

    public func appendRow(_ fields: [String?]) throws(PostgresError) {
        for field in fields { append(field) }
        try endRow()
    }

    private func startField() {
        if fieldsInRow > 0 { buffer.append(UInt8(ascii: "\t")) }
        fieldsInRow += 1
    }

    /// Static, on an inout buffer: one exclusivity check of the class property per field
    /// instead of one per run of bytes (those checks showed up in profiles of 1M-row copies).
    private static func escape(_ bytes: UnsafeBufferPointer<UInt8>, into buffer: inout [UInt8]) {
        var runStart = 0
        for (index, byte) in bytes.enumerated() {
            let escaped: UInt8
            switch byte {
            case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
            case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
            case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
            case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
            default: continue
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(escaped)
            runStart = index + 1
        }
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
    }

    /// Sends what is buffered. A row the server refuses surfaces only when the copy ends: libpq
    /// leaves the server's error unread until then (PostgreSQL 15), so a bad row early in a
    /// long stream costs the sending of the rest. Validate before copying.
    func flush() throws(PostgresError) {
        guard !buffer.isEmpty, !ended else { return }
        let status = buffer.withUnsafeBytes { bytes in
            PQputCopyData(handle, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }
        buffer.removeAll(keepingCapacity: true)
        guard status == 1 else {
            ended = true
            _ = try connection.endCopyIn(handle, failure: nil, context: context)
            throw PostgresError(result: nil, connection: handle, database: connection.url.redacted, context: context)
        }
    }
}

/// One row of a `COPY ... TO STDOUT`, reused for every row: read it inside the body of
/// `copyOut`. In text format, fields are read by index from 0, NULL as nil.
public final class PostgresCopyRow {
    /// The row as the server sent it, without its final newline.
    public private(set) var line: [UInt8] = []
    private var fields: [Range<Int>] = []
    private var fieldsFound = false
    private let database: String

    init(database: String) {
        self.database = database
        line.reserveCapacity(1024)
    }

    func load(_ bytes: UnsafeRawBufferPointer) {
        line.removeAll(keepingCapacity: true)
        let count = bytes.last == UInt8(ascii: "\n") ? bytes.count - 1 : bytes.count
        line.append(contentsOf: bytes.prefix(count))
        fieldsFound = false
    }

    public var fieldCount: Int {
        findFields()
        return fields.count
    }

    public func isNull(_ field: Int) -> Bool {
        let range = self.range(field)
        return range.count == 2 && line[range.lowerBound] == UInt8(ascii: "\\") && line[range.lowerBound + 1] == UInt8(ascii: "N")
    }

    public func text(_ field: Int) -> String? {
        if isNull(field) { return nil }
        let raw = line[range(field)]
        guard raw.contains(UInt8(ascii: "\\")) else { return String(decoding: raw, as: UTF8.self) }
        return String(decoding: Self.unescape(raw), as: UTF8.self)
    }

    public func int64(_ field: Int) throws(PostgresError) -> Int64? {
        try PostgresText.read(text(field), { Int64($0) }, "an integer") { mismatch(field, $0) }
    }

    public func bool(_ field: Int) throws(PostgresError) -> Bool? {
        try PostgresText.read(text(field), PostgresText.bool, "a boolean") { mismatch(field, $0) }
    }

    private func range(_ field: Int) -> Range<Int> {
        findFields()
        precondition(field >= 0 && field < fields.count, "field \(field) outside a COPY row of \(fields.count)")
        return fields[field]
    }

    private func findFields() {
        guard !fieldsFound else { return }
        Self.split(line, into: &fields)
        fieldsFound = true
    }

    /// Static, on an inout array, for the same reason as `PostgresCopyWriter.escape`.
    private static func split(_ line: [UInt8], into fields: inout [Range<Int>]) {
        fields.removeAll(keepingCapacity: true)
        var start = 0
        for (index, byte) in line.enumerated() where byte == UInt8(ascii: "\t") {
            fields.append(start..<index)
            start = index + 1
        }
        fields.append(start..<line.count)
    }

    /// Undoes the text format's escapes: \b \f \n \r \t \v, \\ and any other \c as c, and the
    /// octal (\123) and hex (\x4F) forms that COPY FROM accepts.
    static func unescape(_ raw: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
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
                out.append(byte)
                continue
            }
            let escaped = raw[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "v"): out.append(0x0b)
            case UInt8(ascii: "x") where index < raw.endIndex && digit(raw[index], radix: 16) != nil:
                var value: UInt8 = 0
                for _ in 0..<2 where index < raw.endIndex {
                    guard let d = digit(raw[index], radix: 16) else { break }
                    value = value &* 16 &+ d
                    index += 1
                }
                out.append(value)
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = escaped - UInt8(ascii: "0")
                for _ in 0..<2 where index < raw.endIndex {
                    guard let d = digit(raw[index], radix: 8) else { break }
                    value = value &* 8 &+ d
                    index += 1
                }
                out.append(value)
            default: out.append(escaped)
            }
        }
        return out
    }

    private func mismatch(_ field: Int, _ expected: String) -> PostgresError {
        PostgresError(kind: .client, message: "field \(field + 1) of a COPY row is not \(expected)", database: database, context: "reading a COPY row")
    }
}
