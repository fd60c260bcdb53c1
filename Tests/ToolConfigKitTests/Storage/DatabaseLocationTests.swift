import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

@Suite("--db values: SQLite paths and PostgreSQL URLs")
struct DatabaseLocationTests {
    @Test(
        "paths are SQLite, postgres:// and postgresql:// URLs are PostgreSQL",
        arguments: [
            ("app.db", false), ("/var/lib/app/app.db", false), (":memory:", false), ("./postgres://x", false),
            ("POSTGRES://host/db", false), ("postgresql://", true), ("postgres://host/db", true),
            ("postgresql://alice@db.example:5433/app?sslmode=require", true),
            ("postgresql://postgres@/toolcfg?host=/tmp/pg%20dir/socket&port=5432", true),
            ("postgresql://h1:5432,h2:5433/app?target_session_attrs=read-write", true),
            ("postgresql://[::1]:5432/app", true)
        ])
    func kinds(_ value: String, isPostgres: Bool) throws {
        let location = try DatabaseLocation(value, origin: .argument)
        switch location {
        case .sqlite(let path): #expect(!isPostgres && path == value)
        case .postgres(let url): #expect(isPostgres && url.redacted == value && url.carriesPassword == false)
        }
        #expect(location.description == value)
    }

    @Test("the parts libpq reads from a URL")
    func parts() throws {
        let url = try PostgresURL("postgresql://alice:pw@db.example:5433/app%20db?sslmode=require")
        #expect(url.user == "alice" && url.host == "db.example" && url.port == "5433" && url.database == "app db")
        let bare = try PostgresURL("postgres://")
        #expect(bare.user == nil && bare.host == nil && bare.database == nil)
    }

    /// (URL with a password, the password, the redacted form)
    static let secretURLs: [(String, String, String)] = [
        ("postgresql://alice:s3cret-pass@db/app", "s3cret-pass", "postgresql://alice:***@db/app"),
        (
            "postgres://alice:p%40ss%2Fw%3Ard@db:5432/app?sslmode=require", "p%40ss%2Fw%3Ard",
            "postgres://alice:***@db:5432/app?sslmode=require"
        ),
        ("postgresql://alice@db/app?password=hunter2-long", "hunter2-long", "postgresql://alice@db/app?password=***"),
        (
            "postgresql:///app?host=/run/pg&password=a%26b-secret&port=5432", "a%26b-secret",
            "postgresql:///app?host=/run/pg&password=***&port=5432"
        ),
        ("postgresql://db/app?%70assword=encoded-key-name", "encoded-key-name", "postgresql://db/app?%70assword=***"),
        ("postgresql://alice@db/app?sslpassword=key-file-secret", "key-file-secret", "postgresql://alice@db/app?sslpassword=***"),
        (
            "postgresql://alice:first-secret@db/app?password=second-secret", "second-secret",
            "postgresql://alice:***@db/app?password=***"
        )
    ]

    @Test(
        "a password in argv is refused with exit 64 and a pointer to the safe ways; the environment may hold one",
        arguments: secretURLs)
    func passwordInArgv(_ value: String, password: String, redacted: String) throws {
        let refused = thrownError { _ = try DatabaseLocation(value, origin: .argument) } as? DatabaseLocationError
        #expect(refused == .passwordInArgument(url: redacted))
        #expect(refused?.exitStatus == .usage)
        for pointer in ["PGPASSWORD", "PGPASSFILE", "~/.pgpass", "TOOLCFG_DB"] {
            #expect(refused?.description.contains(pointer) == true)
        }
        let location = try DatabaseLocation(value, origin: .environment)
        guard case .postgres(let url) = location else {
            Issue.record("\(value) not read as PostgreSQL")
            return
        }
        #expect(url.carriesPassword && url.redacted == redacted)
        for shown in [
            location.description, "\(location)", String(reflecting: location), String(reflecting: url), dumped(location),
            refused?.description ?? ""
        ] {
            #expect(!shown.contains(password), "\(shown)")
            #expect(!shown.contains(password.removingPercentEncoding ?? password), "\(shown)")
        }
    }

    @Test("an empty password is no password")
    func emptyPassword() throws {
        let location = try DatabaseLocation("postgresql://alice:@db/app", origin: .argument)
        #expect(location.description == "postgresql://alice:***@db/app")
    }

    @Test(
        "a URL libpq refuses is a usage error that does not echo the password",
        arguments: [
            ("postgresql://alice:pass%zzword@db/app", "pass"), ("postgresql://alice@db/app?password=x%zzsecret", "secret"),
            ("postgresql://alice:secret-part@[::1/app", "secret-part"), ("postgresql://db/app?no_such_option=1", "no_such_option")
        ])
    func invalid(_ value: String, hidden: String) {
        let error = thrownError { _ = try DatabaseLocation(value, origin: .environment) } as? DatabaseLocationError
        guard case .invalidPostgresURL(let url, let reason)? = error else {
            Issue.record("\(value) was not refused: \(String(describing: error))")
            return
        }
        #expect(error?.exitStatus == .usage)
        #expect(!reason.isEmpty)
        if hidden != "no_such_option" {
            #expect(!url.contains(hidden) && !reason.contains(hidden), "\(url): \(reason)")
        }
    }

    @Test("another database on the same server keeps the host, options and password")
    func replacingDatabase() throws {
        let cases = [
            ("postgresql://postgres@/toolcfg?host=/tmp/x&port=5", "postgresql://postgres@/other_db?host=/tmp/x&port=5"),
            ("postgresql://alice:pw@db:5432", "postgresql://alice:***@db:5432/other_db"),
            ("postgresql://db?sslmode=disable", "postgresql://db/other_db?sslmode=disable")
        ]
        for (original, expected) in cases {
            let url = try PostgresURL(original).replacingDatabase(with: "other_db")
            #expect(url.redacted == expected)
            #expect(url.database == "other_db")
        }
        #expect(try PostgresURL("postgres://h/a").replacingDatabase(with: "with space/and?query").database == "with space/and?query")
    }
}
