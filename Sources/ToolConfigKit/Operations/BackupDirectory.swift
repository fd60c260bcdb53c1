import Foundation

/// The folder a scheduled rotation keeps its backups in (`rotate --backup-dir`): one file per run,
/// `<database>-<UTC time YYYYMMDDTHHMMSSZ>-<old key fingerprint>.<db|sql>`, never over another
/// file (a name taken gets `-2`, `-3`, ...), so the same cron line runs every night; and the
/// pruning that keeps the newest N of one database, touching only names of that pattern.
public struct BackupDirectory: Sendable {
    public var path: String

    public init(path: String) {
        self.path = path
    }

    /// A backup's name parts, as read back from the folder.
    public struct Entry: Sendable, Equatable {
        public var name: String
        /// YYYYMMDDTHHMMSSZ: sorts as the time it names.
        public var timestamp: String
        /// 1 for the first backup of its second, 2 for `-2`, ...
        public var sequence: Int
        /// The file's modification time (ns): orders backups of the same second under other keys.
        public var modified: Int64 = 0
    }

    public struct Failure: ToolcfgError {
        public var path: String
        public var reason: String
        public var exitStatus: ExitStatus = .cannotCreate
        public var description: String { "backup folder \(path): \(reason); nothing was changed" }
        public var errorContext: ErrorContext { ErrorContext(file: path) }
    }

    /// Creates the folder (0700, and any missing parent) when absent. Returns the folders it made,
    /// outermost first, for `removeCreated` after a run that left nothing in them.
    public func prepare() throws(Failure) -> [String] {
        var missing: [String] = []
        var folder = URL(fileURLWithPath: path).standardized.path
        var info = stat()
        while stat(folder, &info) != 0 {
            guard errno == ENOENT else { throw Failure(path: path, reason: String(cString: strerror(errno))) }
            missing.insert(folder, at: 0)
            let parent = (folder as NSString).deletingLastPathComponent
            guard parent != folder, !parent.isEmpty else { break }
            folder = parent
        }
        if missing.isEmpty {
            guard (info.st_mode & S_IFMT) == S_IFDIR else { throw Failure(path: path, reason: "exists and is not a folder") }
            guard access(path, W_OK | X_OK) == 0 else {
                throw Failure(path: path, reason: "not writable: \(String(cString: strerror(errno)))")
            }
            return []
        }
        for (index, folder) in missing.enumerated() where mkdir(folder, 0o700) != 0 && errno != EEXIST {
            let reason = String(cString: strerror(errno))
            Self.removeCreated(Array(missing[..<index]))
            throw Failure(path: path, reason: "cannot be created (\(folder): \(reason))")
        }
        return missing
    }

    /// Removes the folders `prepare` made, innermost first, as long as they are empty.
    public static func removeCreated(_ folders: [String]) {
        for folder in folders.reversed() where rmdir(folder) != 0 { break }
    }

    /// `<database>-<UTC time>-<fingerprint>[-N].<fileExtension>`: the database's name with any
    /// character outside letters, digits, `.`, `_` and `-` made `_`, so that it stays one file name.
    public static func fileName(database: String, at date: Date, fingerprint: String, fileExtension: String, sequence: Int = 1) -> String {
        "\(safeName(database))-\(timestamp(date))-\(fingerprint)\(sequence > 1 ? "-\(sequence)" : "").\(fileExtension)"
    }

    /// Runs `write` on the first free name for this run's backup and returns the path it wrote.
    /// `write` creates the file exclusively (O_EXCL), so a name taken meanwhile is never
    /// overwritten: it is refused, and the next suffix is tried.
    public func write(
        database: String, at date: Date, fingerprint: String, fileExtension: String,
        _ write: (String) throws -> Void
    ) throws -> String {
        for sequence in 1...Self.maxSequence {
            let file = (path as NSString).appendingPathComponent(
                Self.fileName(
                    database: database, at: date, fingerprint: fingerprint,
                    fileExtension: fileExtension, sequence: sequence))
            do {
                try write(file)
                return file
            } catch let failure as PrivateFile.Failure
                where failure.reason == PrivateFile.existsReason || failure.reason == PrivateFile.linkReason
            {
                continue
            }
        }
        throw Failure(path: path, reason: "\(Self.maxSequence) backups of \(database) in the same second", exitStatus: .ioError)
    }

    static let maxSequence = 1000

    /// The backups of `database` in the folder (regular files named by the pattern, whatever
    /// key made them), oldest first.
    public func backups(of database: String, fileExtension: String) throws -> [Entry] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw Failure(path: path, reason: "cannot be listed: \(SecretInput.reason(error))", exitStatus: .ioError)
        }
        return names.compactMap { name in
            var info = stat()
            guard var entry = Self.entry(name, database: database, fileExtension: fileExtension),
                lstat((path as NSString).appendingPathComponent(name), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG
            else { return nil }
            entry.modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            return entry
        }.sorted { ($0.timestamp, $0.sequence, $0.modified) < ($1.timestamp, $1.sequence, $1.modified) }
    }

    /// Removes all but the newest `keep` backups of `database`, `current` (the file this run wrote,
    /// a path) always among those kept. Returns the names removed, and why any could not be (the
    /// run has succeeded by then: a warning, not an error).
    public func prune(database: String, fileExtension: String, keep: Int, current: String?) -> (removed: [String], problems: [String]) {
        let entries: [Entry]
        do {
            entries = try backups(of: database, fileExtension: fileExtension)
        } catch {
            return ([], ["older backups were not removed: \(error)"])
        }
        var removed: [String] = [], problems: [String] = []
        let currentName = current.map { ($0 as NSString).lastPathComponent }
        let others = entries.filter { $0.name != currentName }
        for entry in others.dropLast(max(1, keep) - (currentName == nil ? 0 : 1)) {
            if unlink((path as NSString).appendingPathComponent(entry.name)) == 0 {
                removed.append(entry.name)
            } else {
                problems.append("could not remove the old backup \(entry.name): \(String(cString: strerror(errno)))")
            }
        }
        return (removed, problems)
    }

    /// The name's parts when it is a backup of `database` with that extension, else nil.
    static func entry(_ name: String, database: String, fileExtension: String) -> Entry? {
        let prefix = safeName(database) + "-", suffix = "." + fileExtension
        guard name.hasPrefix(prefix), name.hasSuffix(suffix), name.count > prefix.count + suffix.count else { return nil }
        let parts = name.dropFirst(prefix.count).dropLast(suffix.count).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let time = parts[0], fingerprint = parts[1]
        let digits = Set("0123456789"), hex = Set("0123456789abcdef")
        guard time.count == 16,
            time.enumerated().allSatisfy({ index, character in
                index == 8 ? character == "T" : index == 15 ? character == "Z" : digits.contains(character)
            })
        else { return nil }
        guard fingerprint.count == 16, fingerprint.allSatisfy(hex.contains) else { return nil }
        var sequence = 1
        if parts.count == 3 {
            guard let number = Int(parts[2]), number >= 2, String(number) == parts[2] else { return nil }
            sequence = number
        }
        return Entry(name: name, timestamp: String(time), sequence: sequence)
    }

    static func safeName(_ database: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        let name = String(database.map { allowed.contains($0) ? $0 : "_" })
        return name.isEmpty ? "database" : name
    }

    static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}
