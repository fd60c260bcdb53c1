import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Inputs built to exhaust memory or time: each must end in a clear error, in bounded memory,
/// with the database unchanged.
@Suite("Hostile inputs")
struct HostileInputTests {
    /// Each test (each case of one) gets its own: Swift Testing makes a new suite value for it.
    let folder: TemporaryFolder

    init() throws {
        folder = try TemporaryFolder()
    }

    static func database(_ folder: TemporaryFolder) throws -> SQLiteConnection {
        try migratedDatabase(at: folder.path("h.db"), rows: [("keep", "t")])
    }

    /// Writes `size` bytes made by `chunk` without holding them all in memory.
    static func write(_ path: String, prefix: String, chunk: [UInt8], count: Int, suffix: String) throws {
        try #require(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.write(contentsOf: Data(prefix.utf8))
        let block = Data((0..<max(1, 65536 / max(chunk.count, 1))).flatMap { _ in chunk })
        var written = 0
        while written < count {
            try handle.write(contentsOf: block)
            written += block.count / max(chunk.count, 1)
        }
        try handle.write(contentsOf: Data(suffix.utf8))
    }

    static func importError(_ connection: SQLiteConnection, _ path: String, _ format: SnapshotFormat) -> (any Error)? {
        thrownError { _ = try Importer(database: connection, options: .init(input: path, format: format)).run() }
    }

    @Test(
        "a 64 MiB single line, a 10 million column header, deep nesting, a 10,000-digit number",
        arguments: [
            "long line", "wide header", "deep JSON", "long number", "long JSON string", "long field of doubled quotes"
        ])
    func boundedErrors(_ kind: String) throws {
        let connection = try Self.database(folder)
        let path = folder.path("hostile")
        let format: SnapshotFormat
        let expected: String
        switch kind {
        case "long line":
            try Self.write(path, prefix: "user_id,tool_id\nu,", chunk: Array("x".utf8), count: 64 << 20, suffix: "\n")
            (format, expected) = (.csv, "longer than")
        case "wide header":
            try Self.write(path, prefix: "user_id", chunk: Array(",user_id".utf8), count: 10_000_000, suffix: "\n")
            (format, expected) = (.csv, "more than 64 fields")
        case "deep JSON":
            try Self.write(path, prefix: "[{\"user_id\":", chunk: Array("[".utf8), count: 1_000_000, suffix: "")
            (format, expected) = (.json, "nested deeper")
        case "long number":
            try Self.write(
                path, prefix: "[{\"user_id\":\"u\",\"tool_id\":\"t\",\"created_at\":", chunk: Array("9".utf8), count: 10_000, suffix: "}]")
            (format, expected) = (.json, "number longer")
        case "long field of doubled quotes":
            // Each "" is one byte of the field: 2 MiB of them is a 1 MiB field and then some.
            try Self.write(
                path, prefix: "user_id,tool_id\nu,\"", chunk: Array("\"\"".utf8), count: SnapshotLimits.fieldBytes + 16, suffix: "\"\n")
            (format, expected) = (.csv, "a field longer than \(SnapshotLimits.fieldBytes) bytes")
        default:
            try Self.write(path, prefix: "{\"user_id\":\"", chunk: Array("a".utf8), count: 8 << 20, suffix: "\"}\n")
            (format, expected) = (.jsonl, "string longer")
        }
        let error = try #require(Self.importError(connection, path, format) as? SnapshotError)
        #expect(error.message.contains(expected), "\(error)")
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 1)
    }

    @Test("a JSON snapshot whose trailer claims a billion rows is refused as truncated or altered")
    func billionRows() throws {
        let connection = try Self.database(folder)
        let path = folder.path("claims.json")
        try Data(
            ("{\"format\":\"toolcfg-snapshot\",\"version\":1,\"keys\":\"omit\",\"rows\":[\n{\"user_id\":\"u\",\"tool_id\":\"t\"}\n],"
                + "\"row_count\":1000000000,\"digest\":\"sha256:00\"}\n").utf8
        )
        .write(to: URL(fileURLWithPath: path))
        let error = try #require(Self.importError(connection, path, .json) as? SnapshotError)
        #expect(error.message.contains("1000000000 rows"))
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 1)
    }

    @Test("a sealed snapshot asking for 4 GiB of Argon2 memory is refused before any is taken")
    func argonBomb() throws {
        let connection = try Self.database(folder)
        let path = folder.path("bomb.jsonl")
        try Data(
            ("{\"format\":\"toolcfg-snapshot\",\"version\":1,\"keys\":\"sealed\",\"sealing\":{\"kdf\":\"argon2id\",\"version\":19,"
                + "\"memory_kib\":4194304,\"iterations\":3,\"lanes\":4,\"salt\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"check\":\"AA==\"}}\n").utf8
        )
        .write(to: URL(fileURLWithPath: path))
        let options = Importer.Options(
            input: path, format: .jsonl, masterKey: MasterKey.generate(), passphrase: SecureBytes(Array("pass".utf8)))
        let error = try #require(thrownError { _ = try Importer(database: connection, options: options).run() } as? SnapshotError)
        #expect(error.message.contains("1 GiB cap"), "\(error)")
    }

    @Test(
        "a user_tool_configs of the wrong shape is refused by import, export and the CLI, and left alone",
        arguments: [
            "CREATE TABLE user_tool_configs (id INTEGER PRIMARY KEY, user_id TEXT, tool_id TEXT)",
            "CREATE TABLE user_tool_configs (id INTEGER PRIMARY KEY, user_id TEXT, tool_id TEXT, enabled INTEGER, encrypted_api_key TEXT, "
                + "salt TEXT, nonce TEXT, created_at INTEGER, updated_at INTEGER)",
            // 'user-a' and 'USER-A' are one pair to SQLite here, two to the import.
            "CREATE TABLE user_tool_configs (id INTEGER PRIMARY KEY, user_id TEXT COLLATE NOCASE, tool_id TEXT, enabled INTEGER, "
                + "encrypted_api_key TEXT, salt TEXT, nonce TEXT, created_at INTEGER, updated_at INTEGER, UNIQUE(user_id, tool_id))",
            """
            CREATE TABLE user_tool_configs (id INTEGER PRIMARY KEY, user_id TEXT, tool_id TEXT, enabled INTEGER,
                                            encrypted_api_key TEXT, salt TEXT, nonce TEXT, created_at INTEGER, updated_at INTEGER);
            CREATE UNIQUE INDEX partial_pair ON user_tool_configs(user_id, tool_id) WHERE enabled = 1;
            """
        ])
    func wrongShape(_ sql: String) throws {
        let db = folder.path("w.db")
        try SQLiteConnection(path: db, mode: .readWriteCreate).execute(sql)
        let input = folder.path("in.csv")
        try Data("user_id,tool_id\nu,t\n".utf8).write(to: URL(fileURLWithPath: input))
        let imported = try toolcfg(["import", "--db", db, "--in", input])
        #expect(imported.status == 65, "\(imported.stderr)")
        #expect(imported.stderr.contains("user_tool_configs"))
        let exported = try toolcfg(["export", "--db", db, "--format", "csv", "--out", "-"])
        #expect(exported.status == 65)
        #expect(try SQLiteConnection(path: db).queryInt64("SELECT count(*) FROM user_tool_configs") == 0)
    }

    @Test(
        "a database file that is not SQLite is refused by every command with exit 65 and left exactly as it was",
        arguments: [
            "text", "random bytes", "a truncated SQLite file"
        ])
    func notSQLite(_ kind: String) throws {
        let db = folder.path("app.db")
        let bytes: Data
        switch kind {
        case "text":
            bytes = Data(String(repeating: "user_id,tool_id,api_key\nalice,search,sk-not-a-database\n", count: 100).utf8)
        case "random bytes":
            bytes = Data(SecureRandom.bytes(8192))
        default:
            // The first page of a real database: a valid header over a schema that is cut off.
            _ = try Self.database(folder)
            bytes = try Data(contentsOf: URL(fileURLWithPath: folder.path("h.db"))).prefix(4096)
        }
        try bytes.write(to: URL(fileURLWithPath: db))
        let keyFile = folder.path("k"), newKeyFile = folder.path("n")
        try Data((MasterKey.generate().base64Text + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))
        try Data((MasterKey.generate().base64Text + "\n").utf8).write(to: URL(fileURLWithPath: newKeyFile))
        let input = folder.path("in.csv")
        try Data("user_id,tool_id\nu,t\n".utf8).write(to: URL(fileURLWithPath: input))
        let commands: [[String]] = [
            ["migrate", "up"], ["migrate", "status"], ["migrate", "verify"],
            ["import", "--in", input, "--master-key-file", keyFile],
            ["export", "--format", "csv", "--out", folder.path("out.csv"), "--keys", "omit"],
            ["rotate", "--master-key-file", keyFile, "--new-master-key-file", newKeyFile, "--backup", folder.path("backup.db")],
            ["verify-keys", "--master-key-file", keyFile]
        ]
        for command in commands {
            let result = try toolcfg(command + ["--db", db])
            #expect(result.status == 65, "\(command): \(result.stderr)")
            if command.first != "migrate" || command.last != "verify" {
                let expected = kind == "a truncated SQLite file" ? "malformed" : "not an SQLite database"
                #expect(result.stderr.contains(expected), "\(command): \(result.stderr)")
            }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: db)) == bytes, "the file changed")
        #expect(!FileManager.default.fileExists(atPath: folder.path("out.csv")))
        #expect(!FileManager.default.fileExists(atPath: folder.path("backup.db")))
        if kind != "a truncated SQLite file" {
            // Not recognised at all, so SQLite made no journal or WAL beside it. (A file with a
            // real WAL-mode header gets an empty -wal and -shm when read, as any reader makes.)
            let beside = try FileManager.default.contentsOfDirectory(atPath: folder.url.path).filter { $0.hasPrefix("app.db") }
            #expect(beside == ["app.db"])
        }
    }

    @Test(
        """
        a symbolic link as the output of export --out, keygen --out and rotate --backup is refused, with or without --force, \
        and nothing is written through it
        """,
        arguments: ["export", "keygen", "rotate --backup"], ["dangling", "to a file"])
    func symlinkOutputs(_ command: String, _ link: String) throws {
        let connection = try Self.database(folder)
        let master = MasterKey.generate()
        try connection.execute("DELETE FROM user_tool_configs")
        let secret = try SecretCipher.encrypt("sk-symlink-0001", masterKey: master)
        try connection.prepare(
            "INSERT INTO user_tool_configs (user_id, tool_id, enabled, encrypted_api_key, salt, nonce, created_at, updated_at) "
                + "VALUES ('u', 't', 1, ?1, ?2, ?3, 1, 1)"
        )
        .run([.text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)])
        let keyFile = folder.path("k"), newKeyFile = folder.path("n")
        try Data((master.base64Text + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))
        try Data((MasterKey.generate().base64Text + "\n").utf8).write(to: URL(fileURLWithPath: newKeyFile))
        let target = folder.path("target"), path = folder.path("link")
        if link == "to a file" { try Data("precious".utf8).write(to: URL(fileURLWithPath: target)) }
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
        let before = try connection.queryText("SELECT encrypted_api_key FROM user_tool_configs")

        let runs: [[String]] =
            switch command {
            case "export":
                [
                    ["export", "--db", folder.path("h.db"), "--out", path, "--format", "json"],
                    ["export", "--db", folder.path("h.db"), "--out", path, "--format", "json", "--force"]
                ]
            case "keygen": [["keygen", "--out", path], ["keygen", "--out", path, "--force"]]
            default:
                [
                    [
                        "rotate", "--db", folder.path("h.db"), "--master-key-file", keyFile, "--new-master-key-file", newKeyFile,
                        "--backup", path
                    ]
                ]
            }
        for arguments in runs {
            let result = try toolcfg(arguments)
            #expect(result.status == 74, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("symbolic link"), "\(arguments): \(result.stderr)")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: path) == target, "the link itself was replaced")
            if link == "to a file" {
                #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious")
            } else {
                #expect(!FileManager.default.fileExists(atPath: target))
            }
        }
        // Nothing else appeared beside it (no temporary file left), and the rotation did not run.
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: folder.url.path))
        #expect(names.subtracting(["h.db", "h.db-wal", "h.db-shm", "k", "n", "link", "target"]).isEmpty, "\(names)")
        #expect(try connection.queryText("SELECT encrypted_api_key FROM user_tool_configs") == before)
    }

    // MARK: unbounded input through a pipe

    struct Streamed {
        var result: ProcessResult
        var sent: Int
        var seconds: Double
        var peakRSSKiB: Int
    }

    /// `toolcfg import --in -` with its standard input a pipe that `produce` fills, up to `limit`
    /// bytes, under GNU time for the child's peak RSS (from wait4, so it is exact).
    static func streamedImport(
        _ folder: TemporaryFolder, format: String, limit: Int,
        _ produce: @escaping @Sendable (PipeFeeder) throws -> Void
    ) throws -> Streamed {
        let rssFile = folder.path("rss"), stdoutFile = folder.path("stdout"), stderrFile = folder.path("stderr")
        for file in [stdoutFile, stderrFile] { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        let feeder = PipeFeeder(limit: limit)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        process.arguments = [
            "-f", "%M", "-o", rssFile, Repository.toolcfg.path, "import", "--db", folder.path("h.db"), "--in", "-", "--format", format
        ]
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TOOLCFG_") }
        process.standardInput = feeder.pipe
        process.standardOutput = FileHandle(forWritingAtPath: stdoutFile)
        process.standardError = FileHandle(forWritingAtPath: stderrFile)
        let clock = ContinuousClock(), start = clock.now
        try process.run()
        feeder.start(produce)
        process.waitUntilExit()
        let sent = feeder.sent()
        let elapsed = clock.now - start
        let rss = try String(contentsOfFile: rssFile, encoding: .utf8)
        let peak = Int(rss.split(separator: "\n").last { Int($0) != nil } ?? "") ?? -1
        return Streamed(
            result: ProcessResult(
                status: process.terminationStatus,
                stdout: try String(contentsOfFile: stdoutFile, encoding: .utf8),
                stderr: try String(contentsOfFile: stderrFile, encoding: .utf8)),
            sent: sent, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            peakRSSKiB: peak)
    }

    @Test(
        "a 1 GiB single line on standard input ends in a clear error after about 1 MiB, in bounded memory, with nothing changed",
        .timeLimit(.minutes(2)), arguments: ["csv field", "jsonl string", "jsonl whitespace"])
    func endlessLine(_ kind: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/time") else {
            Issue.record("GNU time (/usr/bin/time, installed by scripts/bootstrap.sh) measures the child's peak memory")
            return
        }
        let connection = try Self.database(folder)
        let (format, prefix, byte, expected): (String, String, UInt8, String) =
            switch kind {
            case "csv field": ("csv", "user_id,tool_id\nu,", UInt8(ascii: "x"), "a field longer than \(SnapshotLimits.fieldBytes) bytes")
            case "jsonl string": ("jsonl", "{\"user_id\":\"", UInt8(ascii: "a"), "a string longer than \(SnapshotLimits.fieldBytes) bytes")
            default: ("jsonl", "{\"user_id\":\"u\",", UInt8(ascii: " "), "more than \(SnapshotLimits.whitespaceBytes) bytes of whitespace")
            }
        let gib = 1 << 30
        let run = try Self.streamedImport(folder, format: format, limit: gib) { feeder in
            try feeder.write(prefix)
            let block = [UInt8](repeating: byte, count: 1 << 16)
            while true { try feeder.write(block) }
        }
        print("endless line (\(kind)): \(run.sent) bytes in, \(run.seconds) s, peak RSS \(run.peakRSSKiB) KiB")
        #expect(run.result.status == 65, "\(run.result.stderr)")
        #expect(run.result.stderr.contains("<stdin>:2") || run.result.stderr.contains("<stdin>:1"), "\(run.result.stderr)")
        #expect(run.result.stderr.contains(expected), "\(run.result.stderr)")
        // The reader stops at the bound; the pipe and the last chunk hold a little more.
        #expect(run.sent < 8 << 20, "\(run.sent) bytes went in before the import gave up")
        #expect(run.peakRSSKiB > 0 && run.peakRSSKiB < 256 << 10, "peak RSS \(run.peakRSSKiB) KiB")
        #expect(run.seconds < 30, "\(run.seconds) s")
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 1)
        #expect(try connection.queryText("SELECT user_id FROM user_tool_configs") == "keep")
    }

    @Test(
        "a JSON Lines record of nested arrays, each within the width and depth bounds, stops at 64 values in bounded memory",
        .timeLimit(.minutes(2)))
    func nestedArraysLine() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/time") else {
            Issue.record("GNU time (/usr/bin/time, installed by scripts/bootstrap.sh) measures the child's peak memory")
            return
        }
        let connection = try Self.database(folder)
        // A tree of arrays 64 wide and 5 deep: 2 GiB of "[0,0,...]" in one line. Each array is
        // within the bounds, and the parser once kept every value, about 25 bytes of memory for
        // each 2 of input; 64 MiB is enough to show it (1.6 GB then), and safe if it comes back.
        let leaf = Array(("[" + Array(repeating: "0", count: 64).joined(separator: ",") + "]").utf8)
        @Sendable func tree(_ depth: Int, _ feeder: PipeFeeder) throws {
            guard depth > 0 else { return try feeder.write(leaf) }
            try feeder.write("[")
            for index in 0..<64 {
                if index > 0 { try feeder.write(",") }
                try tree(depth - 1, feeder)
            }
            try feeder.write("]")
        }
        let run = try Self.streamedImport(folder, format: "jsonl", limit: 64 << 20) { feeder in
            try feeder.write("{\"user_id\":\"u\",\"tool_id\":\"t\",\"x\":")
            try tree(4, feeder)
            try feeder.write("}\n")
        }
        print("nested arrays: \(run.sent) bytes in, \(run.seconds) s, peak RSS \(run.peakRSSKiB) KiB")
        #expect(run.result.status == 65, "\(run.result.stderr)")
        #expect(run.result.stderr.contains("more than \(SnapshotLimits.values) JSON values in one record"), "\(run.result.stderr)")
        #expect(run.sent < 8 << 20, "\(run.sent) bytes went in before the import gave up")
        #expect(run.peakRSSKiB > 0 && run.peakRSSKiB < 256 << 10, "peak RSS \(run.peakRSSKiB) KiB")
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 1)
    }
}
