import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("PostgreSQL as a Database", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresDatabaseTests {
    /// A test master key's environment, so that a command gets as far as its database.
    static let keys = [
        "TOOLCFG_MASTER_KEY": TestMasterKeys.valid, "TOOLCFG_NEW_MASTER_KEY": Data((32..<64).map { UInt8($0) }).base64EncodedString()
    ]

    /// The commands that take a database besides migrate and stress, with what they need besides
    /// the database to get that far.
    static let working: [[String]] = [
        ["rotate"],
        ["export", "--format", "csv", "--out", "/nonexistent/out.csv"],
        ["import", "--format", "csv", "--in", "-"],
        ["verify-keys"]
    ]

    @Test("--db and TOOLCFG_DB open either engine")
    func opensEitherEngine() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let folder = try TemporaryFolder()
        let sqlite = try DatabaseLocation(folder.path("a.db"), origin: .argument).open(mode: .readWriteCreate, busyTimeout: .seconds(1))
        #expect(sqlite is SQLiteConnection && sqlite.location == folder.path("a.db"))
        let postgres = try DatabaseLocation(database.url.text, origin: .argument).open(mode: .readOnly, busyTimeout: .milliseconds(1500))
        let connection = try #require(postgres as? PostgresConnection)
        #expect(postgres.location == database.url.redacted)
        #expect(try connection.queryText("SHOW lock_timeout") == "1500ms")
    }

    @Test("read, write and rolled-back transactions, durable commits and a read-only reader")
    func transactions() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        let db: any Database = connection
        try connection.execute("CREATE TABLE t (x int)")
        try db.transaction(.write) { try connection.execute("INSERT INTO t VALUES (1)") }
        try db.transaction(.rolledBackWrite) { try connection.execute("INSERT INTO t VALUES (2)") }
        #expect(try connection.queryInt64("SELECT count(*) FROM t") == 1)
        let other = try database.connect()
        // A read is one snapshot from its start: a row committed meanwhile is not in it.
        let seen = try db.transaction(.read) {
            try other.execute("INSERT INTO t VALUES (3)")
            return try connection.queryInt64("SELECT count(*) FROM t")
        }
        #expect(seen == 1)
        let readOnly = thrownError { try db.transaction(.read) { try connection.execute("INSERT INTO t VALUES (4)") } } as? PostgresError
        #expect(readOnly?.sqlState == "25006")
        var held: Duration?
        try db.transaction(.write, lockHeld: { held = $0 }) { try connection.execute("INSERT INTO t VALUES (5)") }
        #expect(held != nil && !connection.isInTransaction)

        // A snapshot's mark: rows written since are always seen (rows written before it may be
        // too, while a transaction of the cluster older than them runs, as the other tests'
        // do: that only costs the rotation its scan).
        try other.execute("CREATE TABLE u (x int); CREATE TABLE v (x int)")
        let mark = try #require(try db.transaction(.read) { try db.snapshotMark() })
        let empty = try db.transaction(.write) { try db.writtenSince(mark, in: ["u", "v"]) }
        #expect(!empty)
        try other.execute("INSERT INTO u VALUES (6)")
        let (both, vOnly) = try db.transaction(.write) { (try db.writtenSince(mark, in: ["u", "v"]), try db.writtenSince(mark, in: ["v"])) }
        #expect(both && !vOnly)
        // A row written inside a savepoint (a subtransaction) counts as well.
        let later = try #require(try db.transaction(.read) { try db.snapshotMark() })
        try other.execute("BEGIN; SAVEPOINT s; INSERT INTO v VALUES (1); RELEASE SAVEPOINT s; COMMIT")
        let inSavepoint = try db.transaction(.write) { try db.writtenSince(later, in: ["v"]) }
        #expect(inSavepoint)
        #expect(try SQLiteCommitCounterCheck.movesWithOtherConnections())

        #expect(try connection.queryText("SHOW synchronous_commit") == "off")  // scripts/pg.sh's throwaway setting
        try db.makeCommitsDurable()
        #expect(try connection.queryText("SHOW synchronous_commit") == "on")
        let reader = try #require(try db.openReader() as? PostgresConnection)
        #expect(try reader.queryInt64("SELECT count(*) FROM t") == 3)
        #expect((thrownError { try reader.execute("INSERT INTO t VALUES (6)") } as? PostgresError)?.sqlState == "25006")
    }

    @Test("the column groups holding secrets are found in the search path, with their nullability and key; a half group is refused")
    func secretGroups() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try PostgresFixtures.load("app-after-0007.sql", into: connection)
        try connection.execute(
            """
            CREATE TABLE partial (id int, encrypted_api_key text, salt text);
            CREATE TABLE keyed_without_id (encrypted_api_key text, salt text, nonce text);
            CREATE TABLE tokens (token_id text PRIMARY KEY, encrypted_token text NOT NULL, token_salt text NOT NULL,
                                 token_nonce text NOT NULL);
            CREATE SCHEMA elsewhere;
            CREATE TABLE elsewhere.hidden (encrypted_api_key text, salt text, nonce text);
            """)
        let refusal = try #require(thrownError { _ = try connection.secretGroups() } as? UnaccountedSecretColumnsError)
        #expect(refusal.tables.map(\.table) == ["partial"] && refusal.exitStatus == .dataError)
        #expect(refusal.description.contains("encrypted_api_key") && refusal.description.contains("--secret-columns"))
        try connection.execute("DROP TABLE partial")
        #expect(
            try connection.secretGroups() == [
                SecretColumnGroup(
                    table: "api_model_aliases", ciphertext: "encrypted_api_key", salt: "salt", nonce: "nonce", nullable: false,
                    idColumn: "id", origin: .application),
                SecretColumnGroup(
                    table: "keyed_without_id", ciphertext: "encrypted_api_key", salt: "salt", nonce: "nonce", nullable: true,
                    idColumn: nil, origin: .namingRule),
                SecretColumnGroup(
                    table: "tokens", ciphertext: "encrypted_token", salt: "token_salt", nonce: "token_nonce", nullable: false,
                    idColumn: "token_id", origin: .namingRule),
                SecretColumnGroup(
                    table: "user_tool_configs", ciphertext: "encrypted_api_key", salt: "salt", nonce: "nonce", nullable: true,
                    idColumn: "id", origin: .application)
            ])
        try connection.execute("SET search_path = elsewhere, public")
        #expect(
            try connection.secretGroups().map(\.table) == ["api_model_aliases", "hidden", "keyed_without_id", "tokens", "user_tool_configs"]
        )
    }

    @Test(
        "a password in --db is refused by every command with exit 64 and never shown",
        arguments: [
            ["migrate", "up"], ["migrate", "down"], ["migrate", "status"], ["migrate", "verify"], ["stress", "--ops", "1"]
        ] + working)
    func passwordInArgv(_ command: [String]) throws {
        let secret = "s3cr3t-" + UUID().uuidString
        let url = "postgresql://postgres:\(secret)@127.0.0.1:1/toolcfg"
        for json in [false, true] {
            let result = try toolcfg(command + ["--db", url] + (json ? ["--json"] : []), environment: Self.keys)
            #expect(result.status == 64, "\(command): \(result.stderr)")
            for pointer in ["PGPASSWORD", "PGPASSFILE", "~/.pgpass", "TOOLCFG_DB"] {
                #expect(result.stderr.contains(pointer), "\(command): \(result.stderr)")
            }
            #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret))
            #expect(result.stderr.contains("postgresql://postgres:***@127.0.0.1:1/toolcfg"))
        }
        let server = try toolcfg(["migrate", "verify", "--fixtures", PostgresFixtures.folder.path, "--server", url])
        #expect(server.status == 64 && server.stderr.contains("PGPASSWORD") && !server.stderr.contains(secret), "\(server.stderr)")
    }

    @Test("a password in TOOLCFG_DB, or in a PGPASSFILE, works and never shows, in reports or errors")
    func passwordFromTheEnvironment() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let password = try PostgresTestServer.password()
        let tcp = try PostgresURL(try PostgresTestServer.required(PostgresTestServer.tcpURL, "TOOLCFG_TEST_POSTGRES_TCP_URL"))
            .replacingDatabase(with: database.name)
        let withPassword = tcp.text.replacingOccurrences(of: "postgresql://postgres@", with: "postgresql://postgres:\(password)@")
        let environment = ["TOOLCFG_DB": withPassword, "PGPASSFILE": "/nonexistent"]

        let up = try toolcfg(["migrate", "up", "--json"], environment: environment)
        #expect(up.status == 0, "\(up.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(up.stdout.utf8)) as? [String: Any]
        #expect((report?["database"] as? String)?.contains("postgres:***@127.0.0.1") == true)
        try database.connect().execute("INSERT INTO user_tool_configs (user_id, tool_id, created_at, updated_at) VALUES ('a', 't', 1, 1)")
        let runs = [
            up,
            try toolcfg(["migrate", "status"], environment: environment),
            try toolcfg(["migrate", "down"], environment: environment),
            try toolcfg(["migrate", "down", "--json"], environment: environment),
            try toolcfg(["migrate", "verify", "--json"], environment: environment),
            try toolcfg(
                ["export", "--format", "csv", "--out", "/nonexistent/out.csv"], environment: environment.merging(Self.keys) { a, _ in a })
        ]
        #expect(runs.map(\.status) == [0, 0, 64, 64, 0, 74])
        #expect(runs[2].stderr.contains("would drop user_tool_configs (1 row)"), "\(runs[2].stderr)")
        for run in runs {
            #expect(!run.stdout.contains(password) && !run.stderr.contains(password))
        }
        let passfile = try toolcfg(
            ["migrate", "status", "--db", tcp.text],
            environment: ["PGPASSFILE": try PostgresTestServer.required(PostgresTestServer.passwordFile, "TOOLCFG_TEST_POSTGRES_PASSFILE")])
        #expect(passfile.status == 0, "\(passfile.stderr)")
        #expect(passfile.stderr.contains("7        applied"), "\(passfile.stderr)")
    }
}

/// SQLite's side of `writtenSince`: data_version moves with another connection's commit only.
enum SQLiteCommitCounterCheck {
    static func movesWithOtherConnections() throws -> Bool {
        let folder = try TemporaryFolder()
        let one = try SQLiteConnection(path: folder.path("c.db"), mode: .readWriteCreate),
            two = try SQLiteConnection(path: folder.path("c.db"))
        try one.execute("CREATE TABLE t (x)")
        let mark = try #require(try one.transaction(.read) { try one.snapshotMark() })
        try one.execute("INSERT INTO t VALUES (1)")
        let quietAfterOwn = try one.transaction(.write) { try !one.writtenSince(mark, in: ["t"]) }
        let ownMark = try #require(try one.transaction(.read) { try one.snapshotMark() })
        try two.execute("INSERT INTO t VALUES (2)")
        let seenOther = try one.transaction(.write) { try one.writtenSince(ownMark, in: ["t"]) }
        return quietAfterOwn && seenOther
    }
}
