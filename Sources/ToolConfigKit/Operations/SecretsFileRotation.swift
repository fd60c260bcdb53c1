import Foundation

/// `rotate --secrets-file`: the sqlx era's `secrets.yaml` re-encrypted under the new key with a
/// fresh salt and nonce, in step with the database, so that no crash leaves it behind:
///
/// 1. read phase: read and decrypted under the old key (or found under the new one already: a
///    rerun), before the database is touched;
/// 2. `stage`, before the database commit: an exclusive lock on the file, as the application
///    takes it (flock, fs2's lock) before it rewrites the file; the file read again (the
///    application may have rewritten it meanwhile) and its new text written and synced beside
///    it (`<file>.toolcfg-rotating`, the old file's mode and owner);
/// 3. `install`, after the commit: renamed into place, the folder synced, the lock let go.
///
/// A crash before the commit leaves the old key everywhere and a stray file beside (a rerun
/// writes it again); after it, the database under the new key and the file under the old one,
/// which a rerun of the same command re-encrypts. The application waits for the lock only while
/// the database's write phase runs.
final class SecretsFileRotation {
    enum Outcome: String, Sendable, Codable {
        case rotated
        case alreadyRotated = "already_rotated"
    }

    let path: String
    private let oldKey: MasterKey
    private let newKey: MasterKey
    private(set) var outcome: Outcome
    private var lock: FileHandle?
    private var staged = false

    var sidePath: String { path + ".toolcfg-rotating" }

    /// Step 1: reads and checks the file.
    init(path: String, oldKey: MasterKey, newKey: MasterKey) throws {
        self.path = path
        self.oldKey = oldKey
        self.newKey = newKey
        outcome = .rotated
        outcome = try rotated(try Self.read(path)).outcome
    }

    static func read(_ path: String) throws -> SecretsFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SecretsFileError(path: path, line: nil, reason: SecretInput.reason(error), exitStatus: .noInput)
        }
        return try parse(data, path: path)
    }

    static func parse(_ data: Data, path: String) throws -> SecretsFile {
        guard let text = String(data: data, encoding: .utf8) else {
            throw SecretsFileError(path: path, line: nil, reason: "not UTF-8 text")
        }
        return try SecretsFile(parsing: text, path: path)
    }

    /// The file's new contents (nil when it is under the new key already), or why it has none.
    private func rotated(_ file: SecretsFile) throws -> (outcome: Outcome, text: String?) {
        let row = SecretRow(
            rowID: 0, id: nil, encryptedAPIKey: file.secret.encryptedAPIKey, salt: file.secret.salt, nonce: file.secret.nonce)
        // Always v1: no release with a secrets file reads anything else.
        switch KeyRotator.rotate(row, oldKey: oldKey, newKey: newKey, scheme: .v1) {
        case .rotated(let secret): return (.rotated, file.text(with: secret))
        case .alreadyRotated: return (.alreadyRotated, nil)
        case .noKey: return (.alreadyRotated, nil)
        case .failed(let reason): throw SecretsFileError(path: path, line: nil, reason: "\(reason); nothing was changed")
        }
    }

    /// Step 2, just before the database's write phase.
    func stage(waitingUpTo timeout: Duration) throws {
        let handle = try lockFile(timeout: timeout)
        lock = handle
        // Read through the locked descriptor: the file the application may rewrite is this one.
        let data: Data
        do {
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw SecretsFileError(path: path, line: nil, reason: SecretInput.reason(error), exitStatus: .ioError)
        }
        let (outcome, text) = try rotated(try Self.parse(data, path: path))
        self.outcome = outcome
        guard let text else { return }
        var info = stat()
        guard fstat(handle.fileDescriptor, &info) == 0 else { throw failure("cannot read its mode", errno) }
        unlink(sidePath)  // a stray copy of an interrupted run: ours, by its name
        let fd = open(sidePath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, info.st_mode & 0o7777)
        guard fd >= 0 else { throw failure("cannot create \(sidePath)", errno) }
        let side = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            // The application's user must still read it when toolcfg runs as root; the mode given
            // to open(2) went through the umask.
            if fchown(fd, info.st_uid, info.st_gid) != 0 && geteuid() == 0 {
                throw failure("cannot give \(sidePath) the file's owner", errno)
            }
            if fchmod(fd, info.st_mode & 0o7777) != 0 { throw failure("cannot give \(sidePath) the file's mode", errno) }
            try side.write(contentsOf: Data(text.utf8))
            try side.synchronize()
            try side.close()
        } catch {
            unlink(sidePath)
            if let error = error as? SecretsFileError { throw error }
            throw SecretsFileError(path: sidePath, line: nil, reason: SecretInput.reason(error), exitStatus: .ioError)
        }
        staged = true
        CrashPoint.reach("secrets-file-staged")
    }

    /// Step 3, after the database's commit.
    func install() throws {
        defer { unlock() }
        guard staged else { return }
        guard rename(sidePath, path) == 0 else { throw failure("cannot rename \(sidePath) into place", errno) }
        staged = false
        let folder = open(
            (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent,
            O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            fsync(folder)
            close(folder)
        }
    }

    /// When the database did not commit: the old file stays, the copy beside it goes.
    func abandon() {
        if staged { unlink(sidePath) }
        staged = false
        unlock()
    }

    private func unlock() {
        guard let lock else { return }
        flock(lock.fileDescriptor, LOCK_UN)
        try? lock.close()
        self.lock = nil
    }

    /// flock's exclusive lock, asked for without blocking every few milliseconds until `timeout`,
    /// on the file that is at the path once it is held (a file renamed over it meanwhile is
    /// opened and locked again).
    private func lockFile(timeout: Duration) throws -> FileHandle {
        let deadline = ContinuousClock.now + timeout
        while true {
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw failure("cannot open it", errno) }
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            while flock(fd, LOCK_EX | LOCK_NB) != 0 {
                guard errno == EWOULDBLOCK, ContinuousClock.now < deadline else {
                    throw SecretsFileError(
                        path: path, line: nil,
                        reason:
                            "another process (the application?) held its lock past the busy timeout; nothing was changed: run rotate again",
                        exitStatus: .temporaryFailure)
                }
                usleep(5_000)
            }
            var held = stat(), atPath = stat()
            guard fstat(fd, &held) == 0, lstat(path, &atPath) == 0 else { throw failure("cannot read its identity", errno) }
            if held.st_dev == atPath.st_dev && held.st_ino == atPath.st_ino { return handle }
        }
    }

    private func failure(_ what: String, _ code: Int32) -> SecretsFileError {
        SecretsFileError(path: path, line: nil, reason: "\(what): \(String(cString: strerror(code)))", exitStatus: .ioError)
    }
}

/// Where a test build stops dead, to prove what a crash there leaves behind: `TOOLCFG_TEST_CRASH_AT`
/// names the point; `NAME:abort` crashes with SIGABRT instead of SIGKILL (a signal that dumps
/// core, after saying on stderr whether the process may). `TOOLCFG_TEST_PAUSE_AT` names a point
/// where the process says so on stderr and waits for a signal (delivered to `interruption`), so a
/// test interrupts it there without timing. Compiled out of release builds.
enum CrashPoint {
    static func reach(_ name: String, pausingFor interruption: Interruption? = nil) {
        #if DEBUG
            if let interruption, ProcessInfo.processInfo.environment["TOOLCFG_TEST_PAUSE_AT"] == name {
                FileHandle.standardError.write(Data("toolcfg-test: paused at \(name)\n".utf8))
                interruption.waitForSignal()
                FileHandle.standardError.write(Data("toolcfg-test: resumed at \(name)\n".utf8))
            }
            switch ProcessInfo.processInfo.environment["TOOLCFG_TEST_CRASH_AT"] {
            case name:
                kill(getpid(), SIGKILL)
            case name + ":abort":
                var limit = rlimit()
                getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit)
                let state =
                    "dumpable=\(ProcessHardening.isDumpable ? 1 : 0) core-limit=\(limit.rlim_cur) "
                    + "locked-key-pages=\(ProcessHardening.lockedKeyPages)"
                FileHandle.standardError.write(Data("toolcfg-test: \(state)\n".utf8))
                abort()
            default:
                break
            }
        #endif
    }
}
