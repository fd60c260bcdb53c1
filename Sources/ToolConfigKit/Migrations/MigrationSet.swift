import Foundation

/// The migrations toolcfg runs: by default the files of `migrations/` embedded at build time,
/// or the files of a folder given with `--migrations DIR`.
public struct MigrationSet: Sendable {
    public enum Origin: Sendable, CustomStringConvertible {
        case embedded
        case folder(String)

        public var description: String {
            switch self {
            case .embedded: "built in"
            case .folder(let path): path
            }
        }
    }

    public let origin: Origin
    /// Sorted by version.
    public let migrations: [Migration]

    public func migration(version: Int64) -> Migration? {
        migrations.first { $0.version == version }
    }

    /// The SQL files embedded into the library from the package's `migrations/` folder.
    public static func embedded() throws(MigrationError) -> MigrationSet {
        let files = embeddedMigrationFiles.map { file in
            (name: file.name, bytes: [UInt8](Data(base64Encoded: file.base64) ?? Data()))
        }
        return try MigrationSet(files: files, origin: .embedded)
    }

    public static func load(folder: String) throws(MigrationError) -> MigrationSet {
        let url = URL(fileURLWithPath: folder)
        var files: [(name: String, bytes: [UInt8])] = []
        do {
            for name in try FileManager.default.contentsOfDirectory(atPath: folder) where MigrationFileName(name) != nil {
                let fileURL = url.appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: fileURL.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                    continue
                }
                files.append((name, [UInt8](try Data(contentsOf: fileURL))))
            }
        } catch {
            throw .unreadableFolder(path: folder, reason: SecretInput.reason(error))
        }
        return try MigrationSet(files: files, origin: .folder(folder))
    }

    public init(files: [(name: String, bytes: [UInt8])], origin: Origin) throws(MigrationError) {
        self.origin = origin
        var ups: [Int64: (MigrationFileName, MigrationScript)] = [:]
        var downs: [Int64: MigrationScript] = [:]
        for (name, bytes) in files.sorted(by: { $0.name < $1.name }) {
            guard let parsed = MigrationFileName(name) else { continue }
            guard let sql = String(validating: bytes, as: UTF8.self) else {
                throw .invalidFile(file: name, reason: "not valid UTF-8")
            }
            let script = MigrationScript(fileName: name, bytes: bytes, sql: sql)
            switch parsed.kind {
            case .simple, .up:
                if let existing = ups[parsed.version] {
                    throw .duplicateVersion(version: parsed.version, files: [existing.1.fileName, name])
                }
                ups[parsed.version] = (parsed, script)
            case .down:
                if let existing = downs[parsed.version] {
                    throw .duplicateVersion(version: parsed.version, files: [existing.fileName, name])
                }
                downs[parsed.version] = script
            }
        }
        for (version, down) in downs where ups[version] == nil {
            throw .downWithoutUp(version: version, file: down.fileName)
        }
        migrations = ups.keys.sorted().map { version in
            let (name, up) = ups[version]!
            return Migration(version: version, description: name.description, up: up, down: downs[version])
        }
    }
}
