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
    }

    public static func write(_ data: Data, to path: String, overwrite: Bool = false, mode: mode_t = 0o600) throws(Failure) {
        let target = overwrite ? path + ".tmp-\(getpid())" : path
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let code = errno
            throw Failure(path: path, reason: code == EEXIST ? "the file exists (refusing to overwrite it)" : String(cString: strerror(code)),
                          exitStatus: .ioError)
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            if overwrite {
                // rename(2) replaces a symbolic link itself, not what it points to.
                guard rename(target, path) == 0 else { throw Failure(path: path, reason: String(cString: strerror(errno)), exitStatus: .ioError) }
            }
        } catch {
            unlink(target)
            if let failure = error as? Failure { throw failure }
            throw Failure(path: path, reason: SecretInput.reason(error), exitStatus: .ioError)
        }
    }
}
