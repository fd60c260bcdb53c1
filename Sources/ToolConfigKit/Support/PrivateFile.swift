import Foundation

/// Output files that may hold secrets: created with mode 0600 from the first byte (never chmod
/// after the fact), never through a symbolic link, and never over an existing file unless asked;
/// an allowed overwrite goes through a temporary file and an atomic rename.
public enum PrivateFile {
    public struct Failure: ToolcfgError {
        public var path: String
        public var reason: String
        public var exitStatus: ExitStatus
        public var description: String { "cannot write \(path): \(reason)" }
        public var errorContext: ErrorContext { ErrorContext(file: path) }
    }

    public static func write(_ data: Data, to path: String, overwrite: Bool = false, mode: mode_t = 0o600) throws(Failure) {
        // Refused even with --force, as export does: replacing a link would leave whoever
        // made it pointing at the old file, and nothing is ever written through one.
        if overwrite { try refuseLinkOrSpecial(path) }
        let target = overwrite ? path + ".tmp-\(getpid())" : path
        let fd: Int32
        do throws(Failure) {
            fd = try create(target, reportedAs: path, mode: mode)
        } catch  where error.reason == existsReason {
            throw Failure(path: path, reason: "exists; use --force to replace it", exitStatus: .ioError)
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            if overwrite {
                // rename(2) replaces a symbolic link itself, not what it points to.
                guard rename(target, path) == 0 else {
                    throw Failure(path: path, reason: String(cString: strerror(errno)), exitStatus: .ioError)
                }
            }
        } catch {
            unlink(target)
            if let failure = error as? Failure { throw failure }
            throw Failure(path: path, reason: SecretInput.reason(error), exitStatus: .ioError)
        }
    }

    /// Creates a new file with `mode` (the umask can only narrow it) and returns its descriptor:
    /// never over an existing file or link (O_EXCL), never through a link (O_NOFOLLOW).
    static func create(_ path: String, reportedAs name: String? = nil, mode: mode_t = 0o600) throws(Failure) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let code = errno
            let reason = code == EEXIST ? takenReason(path) ?? existsReason : String(cString: strerror(code))
            throw Failure(path: name ?? path, reason: reason, exitStatus: .ioError)
        }
        return fd
    }

    static let existsReason = "the file exists (refusing to overwrite it)"

    static let linkReason = "is a symbolic link; refusing to write through it"

    /// Why `create` refuses `path`, when something is there: a link, or any other file.
    private static func takenReason(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (info.st_mode & S_IFMT) == S_IFLNK ? linkReason : existsReason
    }

    /// Throws what `create` would throw for a path already taken, before anything else is done.
    static func requireAbsent(_ path: String) throws(Failure) {
        if let reason = takenReason(path) { throw Failure(path: path, reason: reason, exitStatus: .ioError) }
    }

    private static func refuseLinkOrSpecial(_ path: String) throws(Failure) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFLNK {
            throw Failure(path: path, reason: linkReason, exitStatus: .ioError)
        }
        if (info.st_mode & S_IFMT) != S_IFREG {
            throw Failure(path: path, reason: "exists and is not a regular file", exitStatus: .ioError)
        }
    }
}
