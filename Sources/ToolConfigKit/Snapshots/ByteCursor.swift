/// Writes bytes straight into the spare room of a `CursorBuffer`. An export appends dozens of
/// short runs per record; through `Array.append(contentsOf:)` each cost a call, a uniqueness
/// check and a call to memmove (about 15 % of a JSON export's time, measured), here a bounds check
/// and a copy. A write that does not fit sets `overflowed`, and the buffer's `write` grows and
/// runs the writer again.
struct ByteCursor {
    private let base: UnsafeMutablePointer<UInt8>
    private let end: Int
    fileprivate(set) var position: Int
    fileprivate(set) var overflowed = false

    fileprivate init(_ buffer: UnsafeMutableBufferPointer<UInt8>, position: Int) {
        base = buffer.baseAddress!
        end = buffer.count
        self.position = position
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        guard position < end else { overflowed = true; return }
        base[position] = byte
        position += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        let count = bytes.count
        guard count <= end - position else { overflowed = true; return }
        guard let source = bytes.baseAddress else { return }
        let target = base + position
        // Most runs are short (a field name, an id, a nonce): two overlapping 8-byte moves or a
        // byte loop beat a call to memmove.
        if count >= 8 && count <= 16 {
            let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(target)
            let head = from.loadUnaligned(as: UInt64.self), tail = from.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            to.storeBytes(of: head, as: UInt64.self)
            to.storeBytes(of: tail, toByteOffset: count - 8, as: UInt64.self)
        } else if count < 8 {
            for index in 0..<count { target[index] = source[index] }
        } else {
            target.update(from: source, count: count)
        }
        position += count
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }
}

/// Bytes written through a `ByteCursor`: zero-filled storage with a count of the bytes in use.
struct CursorBuffer {
    private var storage: [UInt8]
    private(set) var count = 0

    init(capacity: Int) {
        storage = [UInt8](repeating: 0, count: max(capacity, 64))
    }

    /// Runs `body` with a cursor at the end of the bytes in use; if it ran out of room, doubles
    /// the storage and runs it again from the same place (writers write whole records, so a
    /// retry writes the same bytes).
    mutating func write(_ body: (inout ByteCursor) -> Void) {
        while true {
            let start = count
            let end = storage.withUnsafeMutableBufferPointer { buffer -> Int? in
                var cursor = ByteCursor(buffer, position: start)
                body(&cursor)
                return cursor.overflowed ? nil : cursor.position
            }
            if let end {
                count = end
                return
            }
            storage.append(contentsOf: repeatElement(0, count: storage.count))
        }
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    /// The bytes in use, leaving the buffer empty with storage of the same size.
    mutating func take() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: storage.count)
        swap(&bytes, &storage)
        bytes.removeLast(bytes.count - count)
        count = 0
        return bytes
    }

    mutating func removeAll() { count = 0 }
}
