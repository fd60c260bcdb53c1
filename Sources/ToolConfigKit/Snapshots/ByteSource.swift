import Foundation

/// Buffered bytes from a file or standard input, read in 64 KiB chunks so a reader holds one
/// chunk and one record however large the file is. Counts lines for error messages.
final class ByteSource {
    static let chunkSize = 64 * 1024

    /// The name errors use: the path, or "<stdin>".
    let name: String
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private var buffer: [UInt8]
    private var index = 0
    private var count = 0
    private var finished = false
    /// 1-based line of the next byte.
    private(set) var line = 1
    private var bytesRead = 0
    /// The input's size when it is a regular file (standard input redirected from one too), for
    /// progress; nil for a pipe.
    let size: Int?

    /// Bytes handed out so far: how far into the input its reader is.
    var bytesConsumed: Int { bytesRead - (count - index) }

    init(path: String) throws {
        if path == "-" {
            name = "<stdin>"
            descriptor = STDIN_FILENO
            ownsDescriptor = false
            size = Self.regularFileSize(STDIN_FILENO)
        } else {
            name = path
            var info = stat()
            if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                throw SnapshotIOError(path: path, reason: "is a directory", missing: false)
            }
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                let code = errno
                throw SnapshotIOError(path: path, reason: String(cString: strerror(code)), missing: code == ENOENT)
            }
            ownsDescriptor = true
            size = Self.regularFileSize(descriptor)
        }
        buffer = [UInt8](repeating: 0, count: Self.chunkSize)
    }

    private static func regularFileSize(_ descriptor: Int32) -> Int? {
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    /// Reads from bytes in memory (tests, and a line already split off).
    init(bytes: [UInt8], name: String) {
        self.name = name
        descriptor = -1
        ownsDescriptor = false
        buffer = bytes
        count = bytes.count
        bytesRead = bytes.count
        size = bytes.count
        finished = true
    }

    deinit {
        if ownsDescriptor { close(descriptor) }
    }

    private func refill() throws -> Bool {
        guard !finished else { return false }
        while true {
            let n = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, Self.chunkSize) }
            if n > 0 {
                index = 0
                count = n
                bytesRead += n
                return true
            }
            if n == 0 {
                finished = true
                return false
            }
            if errno == EINTR { continue }
            throw SnapshotIOError(path: name, reason: String(cString: strerror(errno)), missing: false)
        }
    }

    @inline(__always)
    func next() throws -> UInt8? {
        if index == count, try !refill() { return nil }
        let byte = buffer[index]
        index += 1
        if byte == 0x0A { line += 1 }
        return byte
    }

    @inline(__always)
    func peek() throws -> UInt8? {
        if index == count, try !refill() { return nil }
        return buffer[index]
    }

    /// Appends the bytes from here up to the next one that `stops` (left unread) or the end of
    /// input, counting the line feeds passed over; stops early once `field` holds more than
    /// `limit` bytes (by up to one chunk: callers check the length after). A CSV field is a run of plain bytes: taking it a chunk at a time
    /// instead of
    /// one `next()` per byte halved the reader's time per row.
    @inline(__always)
    func appendRun(to field: inout [UInt8], limit: Int, stops: (UInt8) -> Bool) throws {
        while field.count <= limit {
            if index == count, try !refill() { return }
            var end = index
            var lineFeeds = 0
            buffer.withUnsafeBufferPointer { bytes in
                while end < count, !stops(bytes[end]) {
                    if bytes[end] == 0x0A { lineFeeds += 1 }
                    end += 1
                }
                field.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<end]))
            }
            line += lineFeeds
            index = end
            if end < count { return }
        }
    }

    /// Skips a UTF-8 byte order mark at the very start.
    func skipByteOrderMark() throws {
        guard try peek() == 0xEF else { return }
        // The three bytes may straddle a chunk boundary only if the chunk were under 3 bytes,
        // which happens only with a tiny pipe write; handle it byte by byte.
        let marks: [UInt8] = [0xEF, 0xBB, 0xBF]
        var taken: [UInt8] = []
        for mark in marks {
            guard try peek() == mark else {
                if !taken.isEmpty { throw SnapshotError(SnapshotLocation(file: name, line: 1), "a broken UTF-8 byte order mark") }
                return
            }
            taken.append(try next()!)
        }
    }
}
