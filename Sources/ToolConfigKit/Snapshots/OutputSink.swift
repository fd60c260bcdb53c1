import Foundation

/// Where an export goes: standard output, or a file that appears only when complete. A file is
/// written to a temporary name beside the target (mode 0600 when it holds secrets, from the first
/// byte), synced, then renamed over the target, so an interrupted export never leaves a partial
/// file under the real name. The target may not be a symbolic link, and an existing file is
/// replaced only when asked.
final class OutputSink {
    let path: String
    private let descriptor: Int32
    private let temporaryPath: String?
    private var buffer = CursorBuffer(capacity: flushSize + 64 * 1024)
    private(set) var bytesWritten = 0
    static let flushSize = 64 * 1024

    var isStandardOutput: Bool { temporaryPath == nil }

    init(path: String, holdsSecrets: Bool, overwrite: Bool) throws {
        self.path = path
        if path == "-" {
            descriptor = STDOUT_FILENO
            temporaryPath = nil
            return
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFLNK {
                throw SnapshotIOError(path: path, reason: PrivateFile.linkReason, missing: false)
            }
            if (info.st_mode & S_IFMT) != S_IFREG {
                throw SnapshotIOError(path: path, reason: "exists and is not a regular file", missing: false)
            }
            if !overwrite {
                throw SnapshotIOError(path: path, reason: "exists; use --force to replace it", missing: false)
            }
        }
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).toolcfg-\(getpid()).tmp").path
        descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, holdsSecrets ? 0o600 : 0o644)
        guard descriptor >= 0 else {
            // Even "no such file or directory" is an output problem here (74), not missing input.
            throw SnapshotIOError(path: path, reason: String(cString: strerror(errno)), missing: false)
        }
        temporaryPath = temporary
    }

    deinit {
        if let temporaryPath, !committed {
            close(descriptor)
            unlink(temporaryPath)
        }
    }

    func append(_ text: String) throws {
        try withBuffer { $0.append(text) }
    }

    /// Lets a writer put a whole record into the buffer through a cursor (see `CursorBuffer.write`:
    /// `body` may run more than once), then flushes if full.
    @inline(__always)
    func withBuffer(_ body: (inout ByteCursor) -> Void) throws {
        buffer.write(body)
        if buffer.count >= Self.flushSize { try flush() }
    }

    func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SnapshotIOError(path: path == "-" ? "<stdout>" : path, reason: String(cString: strerror(errno)), missing: false)
            }
            offset += n
        }
        bytesWritten += buffer.count
        buffer.removeAll()
    }

    /// Flushes, syncs and moves the file into place. Afterwards the sink is spent.
    func commit() throws {
        try flush()
        guard let temporaryPath else { return }
        guard fsync(descriptor) == 0, rename(temporaryPath, path) == 0 else {
            throw SnapshotIOError(path: path, reason: String(cString: strerror(errno)), missing: false)
        }
        close(descriptor)
        committed = true
    }

    private var committed = false
}
