import Foundation
import Testing
@testable import ToolConfigKit

/// Inputs built to exhaust memory or time: each must end in a clear error, in bounded memory,
/// with the database unchanged.
@Suite("Hostile inputs")
struct HostileInputTests {
    static func database(_ folder: TemporaryFolder) throws -> SQLiteConnection {
        let connection = try SQLiteConnection(path: folder.path("h.db"), mode: .readWriteCreate)
        _ = try Migrator(connection: connection, migrations: try .embedded()).up()
        try connection.execute("INSERT INTO user_tool_configs (user_id, tool_id, enabled, created_at, updated_at) VALUES ('keep', 't', 1, 1, 1)")
        return connection
    }

    /// Writes `size` bytes made by `chunk` without holding them all in memory.
    static func write(_ path: String, prefix: String, chunk: [UInt8], count: Int, suffix: String) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
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
        thrownError { _ = try Importer(connection: connection, options: .init(input: path, format: format)).run() }
    }

    @Test("a 64 MiB single line, a 10 million column header, deep nesting, a 10,000-digit number", arguments: [
        "long line", "wide header", "deep JSON", "long number", "long JSON string",
    ])
    func boundedErrors(_ kind: String) throws {
        let folder = try TemporaryFolder()
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
            try Self.write(path, prefix: "[{\"user_id\":\"u\",\"tool_id\":\"t\",\"created_at\":", chunk: Array("9".utf8), count: 10_000, suffix: "}]")
            (format, expected) = (.json, "number longer")
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
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder)
        let path = folder.path("claims.json")
        try Data("{\"format\":\"toolcfg-snapshot\",\"version\":1,\"keys\":\"omit\",\"rows\":[\n{\"user_id\":\"u\",\"tool_id\":\"t\"}\n],\"row_count\":1000000000,\"digest\":\"sha256:00\"}\n".utf8)
            .write(to: URL(fileURLWithPath: path))
        let error = try #require(Self.importError(connection, path, .json) as? SnapshotError)
        #expect(error.message.contains("1000000000 rows"))
        #expect(try connection.queryInt64("SELECT count(*) FROM user_tool_configs") == 1)
    }

    @Test("a sealed snapshot asking for 4 GiB of Argon2 memory is refused before any is taken")
    func argonBomb() throws {
        let folder = try TemporaryFolder()
        let connection = try Self.database(folder)
        let path = folder.path("bomb.jsonl")
        try Data("{\"format\":\"toolcfg-snapshot\",\"version\":1,\"keys\":\"sealed\",\"sealing\":{\"kdf\":\"argon2id\",\"version\":19,\"memory_kib\":4194304,\"iterations\":3,\"lanes\":4,\"salt\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"check\":\"AA==\"}}\n".utf8)
            .write(to: URL(fileURLWithPath: path))
        let options = Importer.Options(input: path, format: .jsonl, masterKey: MasterKey.generate(), passphrase: SecureBytes(Array("pass".utf8)))
        let error = try #require(thrownError { _ = try Importer(connection: connection, options: options).run() } as? SnapshotError)
        #expect(error.message.contains("1 GiB cap"), "\(error)")
    }

    @Test("a user_tool_configs of the wrong shape is refused by import, export and the CLI, and left alone", arguments: [
        "CREATE TABLE user_tool_configs (id INTEGER PRIMARY KEY, user_id TEXT, tool_id TEXT)",
        "CREATE TABLE user_tool_configs (id INTEGER PRIMARY KEY, user_id TEXT, tool_id TEXT, enabled INTEGER, encrypted_api_key TEXT, salt TEXT, nonce TEXT, created_at INTEGER, updated_at INTEGER)",
    ])
    func wrongShape(_ sql: String) throws {
        let folder = try TemporaryFolder()
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
}
