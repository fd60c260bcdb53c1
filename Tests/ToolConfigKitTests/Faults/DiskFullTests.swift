import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// A full disk under every path that writes a file: the staging tables in SQLite's temporary
/// storage (import, rotate), a rotation's backup folder, an export, a new database (migrate up),
/// the sqlx era's secrets file with its database, and a database that grows (import). Each runs
/// with its folder on a filesystem that fills at one of several sizes: the command ends 0 or 74
/// saying what filled, leaves every file it did not finish as it was (no partial file, every
/// secret under one key), and the same command succeeds once there is room.
@Suite("Disk full")
struct DiskFullTests {
    /// A folder on a filesystem of a given size, for one command: a tmpfs mounted in a mount
    /// namespace of the command's own (root, where `unshare -m` is allowed), seeded with the files
    /// of `seed` and copied out to `after` when the command ends; elsewhere the folder itself,
    /// with every file the command writes limited to that size (RLIMIT_FSIZE, SIGXFSZ ignored, so
    /// a write fails with EFBIG as it would with ENOSPC).
    struct FillingFolder {
        static let mounts: Bool =
            getuid() == 0
            && ((try? runProcess(URL(fileURLWithPath: "/usr/bin/unshare"), ["-m", "true"]).status) ?? 1) == 0
        let folder: TemporaryFolder
        var seed: String { folder.path("seed") }
        var mountPoint: String { folder.path("full") }
        var after: String { folder.path("after") }

        init() throws {
            folder = try TemporaryFolder()
            for path in [seed, mountPoint, after] {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            }
        }

        /// `arguments` name files in the filling folder by `mountPoint`.
        func toolcfg(bytes: Int, _ arguments: [String]) throws -> ProcessResult {
            let script = """
                set -u
                size=$1 full=$2 seed=$3 after=$4; shift 4
                if [ "$MOUNTS" = 1 ]; then
                  mount -t tmpfs -o size=$size,mode=0755 toolcfg-disk-full "$full" || exit 90
                  cp -a "$seed/." "$full/" || exit 91
                  "$@"; status=$?
                else
                  cp -a "$seed/." "$full/" || exit 91
                  (trap '' XFSZ; ulimit -f $(( size / 1024 )); exec "$@"); status=$?
                fi
                rm -rf "$after"; mkdir "$after"; cp -a "$full/." "$after/"
                exit $status
                """
            let launcher = Self.mounts ? ["/usr/bin/unshare", "-m", "/bin/bash"] : ["/bin/bash"]
            let result = try runProcess(
                URL(fileURLWithPath: launcher[0]),
                Array(launcher.dropFirst()) + [
                    "-c", script, "bash", String(bytes),
                    mountPoint, seed, after, Repository.toolcfg.path
                ] + arguments,
                environment: ["MOUNTS": Self.mounts ? "1" : "0"])
            #expect(result.status != 90 && result.status != 91, "the filling folder could not be made: \(result.stderr)")
            return result
        }

        /// What the folder held after the command, by name.
        func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: after)) ?? []).sorted() }
        func bytes(_ name: String) -> Data? { FileManager.default.contents(atPath: after + "/" + name) }
    }

    /// A full disk's words, as the OS, SQLite or toolcfg give them.
    static func saysFull(_ stderr: String) -> Bool {
        ["No space left on device", "File too large", "database or disk is full"].contains { stderr.contains($0) }
    }

    /// Sizes from too small for anything to ample; the command must fail at the first.
    static let sizes = [16 << 10, 96 << 10, 384 << 10, 1536 << 10, 64 << 20]

    /// A migrated database of `rows` keyed rows under `old.key`, with `new.key` beside it.
    static func keyedDatabase(in folder: TemporaryFolder, at path: String, rows: Int, keyLength: Int = 40) throws {
        for name in ["old.key", "new.key"] where !FileManager.default.fileExists(atPath: folder.path(name)) {
            #expect(try ToolConfigTestSupport.toolcfg(["keygen", "--out", folder.path(name)]).status == 0)
        }
        #expect(try ToolConfigTestSupport.toolcfg(["migrate", "up", "--db", path]).status == 0)
        if rows > 0 {
            let csv =
                "user_id,tool_id,api_key\n"
                + (0..<rows).map { "user-\($0),tool-\($0 % 5),sk-\(String(repeating: "x", count: keyLength))-\($0)\n" }.joined()
            try Data(csv.utf8).write(to: URL(fileURLWithPath: folder.path("rows.csv")))
            #expect(
                try ToolConfigTestSupport.toolcfg([
                    "import", "--db", path, "--in", folder.path("rows.csv"), "--master-key-file", folder.path("old.key")
                ]).status == 0)
        }
    }

    /// Every row of user_tool_configs, as a reader sees them.
    static func rows(_ db: String) throws -> String? {
        try SQLiteConnection(path: db, mode: .readOnly).queryText(
            """
            SELECT group_concat(id || ',' || user_id || ',' || tool_id || ',' || coalesce(encrypted_api_key, '') || ',' || updated_at, '|')
            FROM (SELECT * FROM user_tool_configs ORDER BY id)
            """)
    }

    static func opens(_ db: String, under key: String, _ extra: [String] = []) throws -> Bool {
        try ToolConfigTestSupport.toolcfg(["verify-keys", "--db", db, "--master-key-file", key] + extra).status == 0
    }

    /// Runs `arguments` with `--temp-dir` on the filling folder at each size until one succeeds:
    /// the smallest must fail; each failure is 74, says the disk is full and names the folder
    /// after `naming` (where it is a real filesystem), leaves no file there, and `database` as it was.
    static func expectStagingFills(
        _ filling: FillingFolder, _ arguments: [String], database: String, unchanged before: Data, naming: String
    ) throws {
        var failed = 0
        for size in sizes {
            let result = try filling.toolcfg(bytes: size, arguments + ["--temp-dir", filling.mountPoint])
            #expect([0, 74].contains(result.status), "\(size) bytes: exit \(result.status): \(result.stderr)")
            #expect(filling.files().isEmpty, "\(size) bytes: left \(filling.files()) in the temporary folder")
            guard result.status == 74 else { break }
            failed += 1
            #expect(saysFull(result.stderr), "\(size) bytes: \(result.stderr)")
            if FillingFolder.mounts { #expect(result.stderr.contains(naming + filling.mountPoint), "\(result.stderr)") }
            #expect(try Data(contentsOf: URL(fileURLWithPath: database)) == before, "\(size) bytes: the database changed")
        }
        #expect(failed >= 1, "the smallest folder must be too small")
    }

    @Test("an import whose staging table fills SQLite's temporary folder (--temp-dir) ends 74 naming it, and changes nothing")
    func importStaging() throws {
        let filling = try FillingFolder()
        let db = filling.folder.path("app.db")
        try Self.keyedDatabase(in: filling.folder, at: db, rows: 0)
        // Staged rows beyond SQLite's page cache (2 MiB), so that they reach the temporary file.
        let csv = "user_id,tool_id,api_key\n" + (0..<3000).map { "u\($0),t,sk-\(String(repeating: "y", count: 1200))-\($0)\n" }.joined()
        try Data(csv.utf8).write(to: URL(fileURLWithPath: filling.folder.path("in.csv")))
        let before = try Data(contentsOf: URL(fileURLWithPath: db))
        let arguments = ["import", "--db", db, "--in", filling.folder.path("in.csv"), "--master-key-file", filling.folder.path("old.key")]
        try Self.expectStagingFills(
            filling, arguments, database: db, unchanged: before,
            naming: "staging the import's rows in SQLite's temporary storage (")
        let rerun = try ToolConfigTestSupport.toolcfg(arguments)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(try SQLiteConnection(path: db).queryInt64("SELECT count(*) FROM user_tool_configs") == 3000)
    }

    @Test("a rotation whose staging tables fill SQLite's temporary folder ends 74 naming it, every secret under the old key")
    func rotationStaging() throws {
        let filling = try FillingFolder()
        let db = filling.folder.path("app.db")
        // Staged values beyond SQLite's page cache (2 MiB), so that they reach the temporary file.
        try Self.keyedDatabase(in: filling.folder, at: db, rows: 3000, keyLength: 1200)
        let before = try Data(contentsOf: URL(fileURLWithPath: db))
        let arguments = [
            "rotate", "--db", db, "--master-key-file", filling.folder.path("old.key"), "--new-master-key-file",
            filling.folder.path("new.key")
        ]
        try Self.expectStagingFills(filling, arguments, database: db, unchanged: before, naming: "SQLite's temporary storage (")
        #expect(try ToolConfigTestSupport.toolcfg(arguments).status == 0)
        #expect(try Self.opens(db, under: filling.folder.path("new.key")))
    }

    @Test("a rotation whose backup fills its folder (--backup-dir, --backup) ends 74 and leaves no backup and no journal")
    func rotationBackup() throws {
        let filling = try FillingFolder()
        let db = filling.folder.path("app.db")
        try Self.keyedDatabase(in: filling.folder, at: db, rows: 3000)
        let before = try Data(contentsOf: URL(fileURLWithPath: db))
        let keys = ["--master-key-file", filling.folder.path("old.key"), "--new-master-key-file", filling.folder.path("new.key")]
        for (index, size) in Self.sizes.prefix(3).enumerated() {
            let backup =
                index % 2 == 0 ? ["--backup-dir", filling.mountPoint + "/backups"] : ["--backup", filling.mountPoint + "/before.db"]
            let result = try filling.toolcfg(bytes: size, ["rotate", "--db", db] + keys + backup)
            #expect(result.status == 74, "\(size) bytes \(backup[0]): exit \(result.status): \(result.stderr)")
            #expect(Self.saysFull(result.stderr) && result.stderr.contains("writing the backup"), "\(result.stderr)")
            #expect(filling.files().isEmpty, "\(size) bytes \(backup[0]): left \(filling.files())")
            #expect(try Data(contentsOf: URL(fileURLWithPath: db)) == before, "\(size) bytes: the database changed")
        }
        let rerun = try filling.toolcfg(bytes: 64 << 20, ["rotate", "--db", db] + keys + ["--backup-dir", filling.mountPoint + "/backups"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(filling.files() == ["backups"])
        #expect(try Self.opens(db, under: filling.folder.path("new.key")))
    }

    @Test("an export that fills its folder ends 74 naming the file, and leaves no partial file")
    func export() throws {
        let filling = try FillingFolder()
        let db = filling.folder.path("app.db")
        try Self.keyedDatabase(in: filling.folder, at: db, rows: 3000)
        for format in ["csv", "json", "jsonl"] {
            for size in Self.sizes.prefix(3) {
                let out = filling.mountPoint + "/backup.\(format)"
                let result = try filling.toolcfg(bytes: size, ["export", "--db", db, "--out", out])
                #expect(result.status == 74, "\(format) \(size) bytes: exit \(result.status): \(result.stderr)")
                #expect(Self.saysFull(result.stderr) && result.stderr.contains(out), "\(result.stderr)")
                #expect(filling.files().isEmpty, "\(format) \(size) bytes: left \(filling.files())")
            }
        }
    }

    @Test("migrate up of a new database on a full disk ends 74 and leaves no file; with room it creates it")
    func migrateUp() throws {
        let filling = try FillingFolder()
        var failed = 0
        for size in [4 << 10, 8 << 10, 12 << 10] {
            let result = try filling.toolcfg(bytes: size, ["migrate", "up", "--db", filling.mountPoint + "/app.db"])
            #expect([0, 74].contains(result.status), "\(size) bytes: exit \(result.status): \(result.stderr)")
            if result.status == 74 {
                failed += 1
                #expect(Self.saysFull(result.stderr), "\(result.stderr)")
                #expect(filling.files().isEmpty, "\(size) bytes: left \(filling.files())")
            }
        }
        #expect(failed >= 1, "the smallest filesystem must be too small")
        let result = try filling.toolcfg(bytes: 4 << 20, ["migrate", "up", "--db", filling.mountPoint + "/app.db"])
        #expect(result.status == 0, "\(result.stderr)")
        let status = try ToolConfigTestSupport.toolcfg(["migrate", "status", "--db", filling.after + "/app.db", "--json"])
        #expect(status.status == 0 && status.stdout.contains("\"applied\""), "\(status.stdout)")
    }

    @Test("an import into a database on a full disk ends 74, the database byte for byte as it was")
    func importGrowing() throws {
        let filling = try FillingFolder()
        try Self.keyedDatabase(in: filling.folder, at: filling.seed + "/app.db", rows: 200)
        let before = try Data(contentsOf: URL(fileURLWithPath: filling.seed + "/app.db"))
        let csv = "user_id,tool_id,api_key\n" + (0..<3000).map { "v\($0),t,sk-\(String(repeating: "z", count: 60))-\($0)\n" }.joined()
        try Data(csv.utf8).write(to: URL(fileURLWithPath: filling.folder.path("more.csv")))
        let arguments = [
            "import", "--db", filling.mountPoint + "/app.db", "--in", filling.folder.path("more.csv"), "--master-key-file",
            filling.folder.path("old.key")
        ]
        let room = before.count
        // Read from a copy: a reader of the seed would add its -shm to the seed.
        try FileManager.default.copyItem(atPath: filling.seed + "/app.db", toPath: filling.folder.path("reference.db"))
        let rowsBefore = try Self.rows(filling.folder.path("reference.db"))
        for extra in [8 << 10, 64 << 10, 256 << 10] {
            let result = try filling.toolcfg(bytes: room + extra, arguments)
            #expect(result.status == 74, "\(extra) bytes free: exit \(result.status): \(result.stderr)")
            #expect(Self.saysFull(result.stderr), "\(result.stderr)")
            // What a reader sees, write-ahead log included (SQLite may keep -wal and -shm when a
            // full disk stops its checkpoint at close; uncommitted frames in them count for nothing).
            #expect(try Self.rows(filling.after + "/app.db") == rowsBefore, "\(extra) bytes free: the rows changed")
        }
        let result = try filling.toolcfg(bytes: 64 << 20, arguments)
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test("v0.0.45: a rotation with --secrets-file on a full disk leaves the database and the file under one key, and the rerun finishes")
    func secretsFile() throws {
        let filling = try FillingFolder()
        let eras = Repository.root.appendingPathComponent("fixtures/app-eras")
        try FileManager.default.copyItem(atPath: eras.appendingPathComponent("v0.0.45.db").path, toPath: filling.seed + "/app.db")
        try FileManager.default.copyItem(atPath: eras.appendingPathComponent("secrets.yaml").path, toPath: filling.seed + "/secrets.yaml")
        #expect(try ToolConfigTestSupport.toolcfg(["keygen", "--out", filling.folder.path("new.key")]).status == 0)
        let oldKey = eras.appendingPathComponent("master.key").path, newKey = filling.folder.path("new.key")
        let seedSize = try FileManager.default.contentsOfDirectory(atPath: filling.seed)
            .reduce(0) { $0 + ((try FileManager.default.attributesOfItem(atPath: filling.seed + "/" + $1)[.size] as? Int) ?? 0) }
        let arguments = [
            "rotate", "--db", filling.mountPoint + "/app.db", "--secrets-file", filling.mountPoint + "/secrets.yaml",
            "--master-key-file", oldKey, "--new-master-key-file", newKey
        ]
        for extra in [4 << 10, 16 << 10, 48 << 10, 128 << 10] {
            let result = try filling.toolcfg(bytes: seedSize + extra, arguments)
            #expect([0, 74].contains(result.status), "\(extra) bytes free: exit \(result.status): \(result.stderr)")
            // Whatever the outcome, the database and the file are both under one key, the same.
            let db = filling.after + "/app.db", file = ["--secrets-file", filling.after + "/secrets.yaml"]
            let underOld = try Self.opens(db, under: oldKey, file), underNew = try Self.opens(db, under: newKey, file)
            #expect(underOld != underNew, "\(extra) bytes free, exit \(result.status): under the old key \(underOld), the new \(underNew)")
            if result.status == 74 { #expect(Self.saysFull(result.stderr), "\(result.stderr)") }
            if result.status == 0 { break }
        }
        // The rerun on what the last run left, with room.
        try FileManager.default.removeItem(atPath: filling.seed)
        try FileManager.default.copyItem(atPath: filling.after, toPath: filling.seed)
        let rerun = try filling.toolcfg(bytes: 64 << 20, arguments)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(try Self.opens(filling.after + "/app.db", under: newKey, ["--secrets-file", filling.after + "/secrets.yaml"]))
    }
}
