import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Values that COPY's text format and CSV must escape, and some that only look escaped.
let awkwardTexts: [String?] = [
    "plain", "", nil, "comma, separated", "\"double\" 'single' quotes", "line\nbreak", "crlf\r\nline",
    "tab\there", "back\\slash", "\\N", "\\.", "ends with backslash\\", "ünïcödé — 日本語 🔑", "e\u{301} combining",
    String(repeating: "long ", count: 2000)
]

@Suite("PostgreSQL client (libpq)", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresConnectionTests {
    // MARK: connecting

    @Test("connects, reports the server's version and speaks to its own database")
    func connects() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        #expect(connection.serverVersion >= 150000)
        #expect(connection.serverVersionText?.hasPrefix("\(connection.serverVersion / 10000).") == true)
        #expect(try connection.queryText("SELECT current_database()") == database.name)
        #expect(try connection.queryText("SHOW client_encoding") == "UTF8")
        #expect(try connection.queryText("SHOW lock_timeout") == "10s")
        connection.close()
        let closed = thrownError { try connection.execute("SELECT 1") } as? PostgresError
        #expect(closed?.kind == .client)
    }

    @Test("a database that cannot be reached is refused with exit 66, naming it")
    func refusesUnreachable() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let folder = try TemporaryFolder()
        let targets = [
            try database.url.replacingDatabase(with: "no_such_database_here"),
            try PostgresURL("postgresql://postgres@/toolcfg?host=\(folder.url.path)&port=1")  // no server there
        ]
        for target in targets {
            let error = thrownError { _ = try PostgresConnection(url: target) } as? PostgresError
            #expect(error?.kind == .connect)
            #expect(error?.exitStatus == .noInput)
            #expect(error?.description.contains(target.redacted) == true)
        }
    }

    @Test("a password travels in the environment's URL, never in argv, and never shows")
    func passwords() throws {
        let password = try PostgresTestServer.password()
        let tcp = try PostgresTestServer.required(PostgresTestServer.tcpURL, "TOOLCFG_TEST_POSTGRES_TCP_URL")
        #expect(password.count >= 16)
        let withPassword = tcp.replacingOccurrences(of: "postgresql://postgres@", with: "postgresql://postgres:\(password)@")
        let refused = thrownError { _ = try DatabaseLocation(withPassword, origin: .argument) } as? DatabaseLocationError
        #expect(refused?.exitStatus == .usage)
        #expect(refused?.description.contains("PGPASSWORD") == true)
        #expect(refused?.description.contains(password) == false)

        guard case .postgres(let url) = try DatabaseLocation(withPassword, origin: .environment) else {
            Issue.record("not read as a PostgreSQL URL")
            return
        }
        let connection = try PostgresConnection(url: url)
        #expect(try connection.queryText("SELECT current_user") == "postgres")
        let wrong = try PostgresURL(
            tcp.replacingOccurrences(of: "postgresql://postgres@", with: "postgresql://postgres:wrong-\(password)@"))
        let denied = thrownError { _ = try PostgresConnection(url: wrong) } as? PostgresError
        #expect(denied?.kind == .connect)
        #expect(denied?.description.contains("password authentication failed") == true)
        let failure = thrownError { try connection.execute("SELECT 1/0") } as? PostgresError
        for text in [
            url.description, String(reflecting: url), "\(url)", denied?.description ?? "", failure?.description ?? "",
            String(reflecting: failure as Any), dumped(url), dumped(connection.url)
        ] {
            #expect(!text.isEmpty && !text.contains(password), "\(text)")
        }
    }

    // MARK: queries

    @Test(
        "parameters of every type go in and come back, NULL included",
        arguments: [
            (PostgresValue.text("héllo"), "text"), (.integer(Int64.min), "bigint"), (.integer(Int64.max), "bigint"),
            (.boolean(true), "boolean"), (.boolean(false), "boolean"), (.double(-2.5e-300), "double precision"),
            (.bytes([0, 1, 0x5c, 0x27, 0xff]), "bytea"), (.bytes([]), "bytea"), (.text(""), "text"), (.null, "text")
        ] as [(PostgresValue, String)])
    func parameters(_ value: PostgresValue, type: String) throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        let rows = try connection.query("SELECT $1::\(type), $1::\(type) IS NULL, pg_typeof($1::\(type))::text", [value])
        #expect(rows.count == 1 && rows.columnCount == 3)
        #expect(try rows.bool(0, 1) == (value == .null))
        #expect(rows.text(0, 2) == type)
        switch value {
        case .null:
            #expect(rows.isNull(0, 0) && rows.text(0, 0) == nil)
            #expect(try rows.int64(0, 0) == nil)
        case .text(let text): #expect(rows.text(0, 0) == text)
        case .integer(let integer): #expect(try rows.int64(0, 0) == integer)
        case .boolean(let bool): #expect(try rows.bool(0, 0) == bool)
        case .double(let double): #expect(try rows.double(0, 0) == double)
        case .bytes(let bytes): #expect(try rows.bytes(0, 0) == bytes)
        }
    }

    @Test("text keeps every Unicode character, counted as the server counts them")
    func unicode() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute("CREATE TABLE t (id serial, value text)")
        let texts = awkwardTexts.compactMap { $0 }
        for text in texts { try connection.query("INSERT INTO t (value) VALUES ($1)", [.text(text)]) }
        let rows = try connection.query("SELECT value, length(value) FROM t ORDER BY id")
        #expect((0..<rows.count).map { rows.text($0, 0) } == texts)
        #expect(try (0..<rows.count).map { try rows.int64($0, 1) } == texts.map { Int64($0.unicodeScalars.count) })
    }

    @Test("results give column names, types, affected rows and command tags")
    func resultShape() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute("CREATE TABLE t (a bigint, b text); INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, NULL)")
        let update = try connection.query("UPDATE t SET b = $1 WHERE a >= $2", [.text("z"), .integer(2)])
        #expect(update.affectedRows == 2 && update.commandTag == "UPDATE 2" && update.count == 0)
        let rows = try connection.query("SELECT a, b AS \"B\" FROM t ORDER BY a")
        #expect(rows.columnName(1) == "B" && rows.columnIndex("B") == 1 && rows.columnIndex("b") == nil)
        #expect(rows.columnType(0) == 20)
        let mismatch = thrownError { _ = try rows.int64(0, 1) } as? PostgresError
        #expect(mismatch?.kind == .client && mismatch?.description.contains("column B of row 1") == true)
    }

    @Test("a prepared statement is parsed once and run with new parameters")
    func preparedStatements() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute("CREATE TABLE t (a bigint PRIMARY KEY, b text)")
        let insert = try connection.prepare("INSERT INTO t VALUES ($1, $2) ON CONFLICT (a) DO UPDATE SET b = excluded.b")
        #expect(try connection.prepare(insert.sql) === insert)
        for (a, b) in [(1, "x"), (2, nil), (1, "y")] as [(Int64, String?)] {
            try insert.run([.integer(a), b.map(PostgresValue.text) ?? .null])
        }
        let rows = try connection.prepare("SELECT b FROM t WHERE a = $1").run([.integer(1)])
        #expect(rows.text(0, 0) == "y")
        #expect(try connection.queryInt64("SELECT count(*) FROM t WHERE b IS NULL") == 1)
    }

    // MARK: errors

    @Test(
        "server errors carry SQLSTATE, fields and the exit status of their kind",
        arguments: [
            ("SELECT 1/0", "22012", ToolConfigKit.ExitStatus.dataError),
            ("INSERT INTO t VALUES (1, 'dup')", "23505", .dataError),
            ("INSERT INTO t VALUES (NULL, 'x')", "23502", .dataError),
            ("SELECT * FROM no_such_table", "42P01", .software),
            ("SELEC 1", "42601", .software),
            ("SET TRANSACTION READ ONLY; INSERT INTO t VALUES (9, 'x')", "25006", .ioError)
        ] as [(String, String, ToolConfigKit.ExitStatus)])
    func serverErrors(_ sql: String, sqlState: String, status: ToolConfigKit.ExitStatus) throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute("CREATE TABLE t (a bigint NOT NULL UNIQUE, b text); INSERT INTO t VALUES (1, 'first')")
        let error = thrownError { try connection.execute(sql, context: "testing") } as? PostgresError
        #expect(error?.kind == .server)
        #expect(error?.sqlState == sqlState)
        #expect(error?.exitStatus == status)
        #expect(error?.description.contains("testing") == true)
        #expect(error?.description.contains(sqlState) == true)
        if sqlState == "23505" {
            #expect(error?.constraint == "t_a_key" && error?.table == "t")
            #expect(error?.detail?.contains("(a)=(1)") == true)
        }
        // The session goes on after an error outside a transaction.
        #expect(try connection.queryInt64("SELECT count(*) FROM t") == 1)
    }

    @Test("a full disk on the server (53100) is exit 74 saying so and what to do, without the server's line of context")
    func diskFull() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        // The server's own words for it (scripts/ci/pg_faults.py fills a real data directory).
        let raise = """
            DO $$ BEGIN RAISE EXCEPTION 'could not extend file "base/1/2": No space left on device'
              USING ERRCODE = '53100', HINT = 'Check free disk space.'; END $$
            """
        let error = thrownError { try connection.execute(raise, context: "staging the rows") } as? PostgresError
        #expect(error?.isDiskFull == true && error?.isConnectionLoss == false)
        #expect(error?.exitStatus == .ioError)
        #expect(error?.serverContext?.contains("line 1") == true)
        let text = error?.description ?? ""
        #expect(text.contains("staging the rows: could not extend file"))
        #expect(text.contains("disk is full") && text.contains("run the same command again"))
        #expect(!text.contains("context:"))
        if let error {
            let migration = MigrationError.failed(version: 7, file: "0007_tools_config.up.sql", cause: error).description
            #expect(migration.contains("disk is full: free space there and run the same command again"))
        }
        // A session the server refuses as it begins carries no SQLSTATE, only the server's words.
        let refused = PostgresError(
            kind: .connect, message: "connection to server failed: FATAL:  could not write init file", database: "db",
            context: "connecting")
        #expect(refused.isDiskFull && refused.exitStatus == .ioError)
        #expect(refused.description.contains("disk is probably full; nothing was begun"))
        let noServer = PostgresError(kind: .connect, message: "connection refused", database: "db", context: "connecting")
        #expect(!noServer.isDiskFull && noServer.exitStatus == .noInput)
        // A server that stopped itself (a new WAL segment found no room) refuses sessions while it recovers.
        let recovering = PostgresError(
            kind: .connect, message: "connection to server failed: FATAL:  the database system is in recovery mode", database: "db",
            context: "connecting")
        #expect(recovering.isServerStartingOrStopping && recovering.exitStatus == .temporaryFailure)
        #expect(recovering.description.contains("recovering from a crash: run the same command again"))
    }

    @Test("a row's values never reach a message: failing rows and COPY lines are cut off")
    func rowValuesHidden() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute("CREATE TABLE t (id bigint NOT NULL, secret text, n bigint)")
        let secret = "sk-live-4f1d6c0e9b"
        let notNull = thrownError { try connection.query("INSERT INTO t VALUES (NULL, $1, 1)", [.text(secret)]) } as? PostgresError
        #expect(notNull?.sqlState == "23502")
        let badCopy =
            thrownError {
                try connection.copyIn("COPY t FROM STDIN") { writer in
                    try writer.appendRow(["1", secret, "not a number"])
                }
            } as? PostgresError
        #expect(badCopy?.sqlState == "22P02")
        #expect(badCopy?.serverContext?.contains("COPY t, line 1, column n") == true)
        for error in [notNull, badCopy] {
            #expect(error != nil)
            #expect(error?.description.contains(secret) == false)
            #expect(String(reflecting: error as Any).contains(secret) == false)
        }
    }

    @Test("a lock held past the lock timeout fails with 55P03, exit 75; advisory locks exclude")
    func locks() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let holder = try database.connect()
        let waiter = try database.connect(.init(lockTimeout: .milliseconds(50)))
        try holder.execute("CREATE TABLE t (a int)")
        try holder.transaction {
            try holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            let error = thrownError { try waiter.execute("SELECT * FROM t") } as? PostgresError
            #expect(error?.sqlState == "55P03")
            #expect(error?.exitStatus == .temporaryFailure && error?.isTemporary == true)
        }
        let key: Int64 = -0x3d32ad9e_1234
        try holder.advisoryLock(key)
        #expect(try waiter.tryAdvisoryLock(key) == false)
        let waited = thrownError { try waiter.advisoryLock(key) } as? PostgresError
        #expect(waited?.sqlState == "55P03")
        #expect(try holder.advisoryUnlock(key))
        #expect(try waiter.withAdvisoryLock(key) { try holder.tryAdvisoryLock(key) } == false)
        #expect(try holder.tryAdvisoryLock(key))
        #expect(try waiter.advisoryUnlock(key) == false)
    }

    // MARK: transactions

    @Test("a transaction commits all or, on any error, nothing")
    func transactions() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute("CREATE TABLE t (a bigint UNIQUE)")
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try connection.transaction {
                try connection.query("INSERT INTO t VALUES (1)")
                #expect(connection.isInTransaction)
                throw Stop()
            }
        }
        #expect(!connection.isInTransaction)
        #expect(try connection.queryInt64("SELECT count(*) FROM t") == 0)
        // A failed statement whose error the body swallowed: COMMIT becomes ROLLBACK, reported.
        let swallowed =
            thrownError {
                try connection.transaction {
                    try connection.query("INSERT INTO t VALUES (2)")
                    _ = try? connection.query("INSERT INTO t VALUES (2)")
                }
            } as? PostgresError
        #expect(swallowed?.description.contains("rolled it back") == true)
        #expect(try connection.queryInt64("SELECT count(*) FROM t") == 0)
        let value = try connection.transaction(isolation: .serializable) {
            try connection.query("INSERT INTO t VALUES (3)")
            return try connection.queryText("SHOW transaction_isolation")
        }
        #expect(value == "serializable")
        #expect(try connection.queryInt64("SELECT count(*) FROM t") == 1)
        let readOnly =
            thrownError {
                try connection.transaction(isolation: .repeatableRead, readOnly: true) {
                    _ = try connection.query("INSERT INTO t VALUES (4)")
                }
            } as? PostgresError
        #expect(readOnly?.sqlState == "25006")
        let nested = thrownError { try connection.transaction { try connection.transaction {} } } as? PostgresError
        #expect(nested?.kind == .client)
    }

    // MARK: COPY

    @Test("COPY in and out keeps commas, quotes, line breaks, tabs, backslashes, NULL and empty strings")
    func copyRoundTrip() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute("CREATE TABLE t (id bigint, value text, flag boolean)")
        // Enough rows to cross several 64 KiB sends.
        let rows = (0..<3000).map { (Int64($0), awkwardTexts[$0 % awkwardTexts.count], $0 % 3 == 0) }
        let copied = try connection.copyIn("COPY t (id, value, flag) FROM STDIN") { writer in
            for (id, value, flag) in rows {
                writer.append(id)
                writer.append(value)
                writer.append(flag)
                try writer.endRow()
            }
            #expect(writer.rowCount == Int64(rows.count))
        }
        #expect(copied == Int64(rows.count))
        let stored = try connection.query("SELECT id, value, flag FROM t ORDER BY id")
        #expect(try (0..<stored.count).map { try stored.int64($0, 0)! } == rows.map(\.0))
        #expect((0..<stored.count).map { stored.text($0, 1) } == rows.map(\.1))
        #expect(try (0..<stored.count).map { try stored.bool($0, 2) } == rows.map(\.2))

        var out: [(Int64, String?, Bool)] = []
        let exported = try connection.copyOut("COPY (SELECT id, value, flag FROM t ORDER BY id) TO STDOUT") { row in
            #expect(row.fieldCount == 3)
            out.append((try row.int64(0)!, row.text(1), try row.bool(2)!))
        }
        #expect(exported == Int64(rows.count))
        #expect(out.map(\.0) == rows.map(\.0) && out.map(\.1) == rows.map(\.1) && out.map(\.2) == rows.map(\.2))

        // CSV goes through as the server writes it, one row per call.
        var lines: [[UInt8]] = []
        try connection.copyOut("COPY (SELECT value FROM t WHERE id < 3 ORDER BY id) TO STDOUT (FORMAT csv)") { lines.append($0.line) }
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["plain", "\"\"", ""])
    }

    @Test(
        "the text format's escapes read back as PostgreSQL writes them",
        arguments: [
            ("a\\tb", "a\tb"), ("\\b\\f\\n\\r\\v", "\u{8}\u{c}\n\r\u{b}"), ("\\\\N", "\\N"), ("\\101\\x42", "AB"), ("\\q", "q")
        ])
    func copyUnescape(_ escaped: String, _ plain: String) {
        #expect(PostgresCopyRow.unescape(ArraySlice(escaped.utf8)) == Array(plain.utf8))
    }

    @Test("COPY is all or nothing: an error of the writer or a refused row leaves the table empty")
    func copyAbandoned() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute("CREATE TABLE t (id bigint NOT NULL, value text)")
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try connection.copyIn("COPY t FROM STDIN") { writer in
                for id in 0..<5000 { try writer.appendRow([String(id), "row"]) }
                throw Stop()
            }
        }
        // A row the server refuses, early in a stream of several sends, fails the whole copy.
        let refused =
            thrownError {
                try connection.copyIn("COPY t FROM STDIN") { writer in
                    try writer.appendRow([nil, "no id"])
                    for id in 0..<20_000 { try writer.appendRow([String(id), String(repeating: "x", count: 100)]) }
                }
            } as? PostgresError
        #expect(refused?.sqlState == "23502")
        #expect(refused?.exitStatus == .dataError)
        #expect(try connection.queryInt64("SELECT count(*) FROM t") == 0)
        // Leaving a COPY TO early cancels it; the session goes on.
        try connection.execute("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 50000) g")
        var seen = 0
        #expect(throws: Stop.self) {
            try connection.copyOut("COPY t TO STDOUT") { _ in
                seen += 1
                if seen == 10 { throw Stop() }
            }
        }
        #expect(seen == 10)
        #expect(try connection.queryInt64("SELECT count(*) FROM t") == 50000)
        // A statement that is not a COPY is refused without leaving the session in a copy.
        let notCopy = thrownError { try connection.copyIn("SELECT 1") { _ in } } as? PostgresError
        #expect(notCopy != nil)
        let unexpected = thrownError { try connection.execute("COPY t TO STDOUT") } as? PostgresError
        #expect(unexpected != nil)
        #expect(try connection.queryInt64("SELECT 1") == 1)
    }

    // MARK: the independent peer

    @Test("psycopg reads what the wrapper wrote, and the wrapper reads what psycopg wrote")
    func psycopgPeer() throws {
        let database = try ScratchPostgresDatabase()
        defer { database.drop() }
        let connection = try database.connect()
        try connection.execute(
            "CREATE TABLE ours (id bigint, value text, flag boolean); CREATE TABLE theirs (id bigint, value text, flag boolean)")
        let rows = awkwardTexts.enumerated().map { (Int64($0.offset), $0.element, $0.offset % 2 == 0) }
        try connection.copyIn("COPY ours FROM STDIN") { writer in
            for row in rows {
                writer.append(row.0)
                writer.append(row.1)
                writer.append(row.2)
                try writer.endRow()
            }
        }
        let read = try postgresPeer("read", database.url, "SELECT id::text AS i, value, flag::text FROM ours ORDER BY id") as? [[Any]]
        let expected: [[String?]] = rows.map { [String($0.0), $0.1, $0.2 ? "true" : "false"] }
        #expect(read?.map { $0.map { $0 as? String } } == expected)

        let json = try JSONSerialization.data(withJSONObject: rows.map { [$0.0, $0.1 ?? NSNull(), $0.2] as [Any] })
        _ = try postgresPeer("write", database.url, "theirs", stdin: json)
        var back: [(Int64, String?, Bool)] = []
        try connection.copyOut("COPY (SELECT * FROM theirs ORDER BY id) TO STDOUT") { row in
            back.append((try row.int64(0)!, row.text(1), try row.bool(2)!))
        }
        #expect(back.map(\.0) == rows.map(\.0) && back.map(\.1) == rows.map(\.1) && back.map(\.2) == rows.map(\.2))
    }
}
