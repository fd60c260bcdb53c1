import Foundation
import Testing
import ToolConfigKit

/// The PostgreSQL server of the tests: scripts/test.sh starts one (scripts/pg.sh) and passes
/// its URLs in the environment. Without them the PostgreSQL suites are skipped, with the reason
/// shown, except in CI, where they run and fail: CI must never pass without PostgreSQL.
/// (The suites do not start a server themselves: a test process killed midway would leave it
/// running, and scripts/test.sh already stops it however a run ends.)
package enum PostgresTestServer {
    package static let environment = ProcessInfo.processInfo.environment
    /// Unix socket, trusted.
    package static let url = environment["TOOLCFG_TEST_POSTGRES_URL"]
    /// 127.0.0.1, with the password in `passwordFile` (a PGPASSFILE).
    package static let tcpURL = environment["TOOLCFG_TEST_POSTGRES_TCP_URL"]
    package static let passwordFile = environment["TOOLCFG_TEST_POSTGRES_PASSFILE"]
    static let isCI = environment["CI"] == "true"
    package static let shouldRun = url != nil || isCI
    package static let skipReason: Comment =
        "no PostgreSQL server: run scripts/test.sh, or export TOOLCFG_TEST_POSTGRES_URL=$(scripts/pg.sh start)"

    struct Missing: Error, CustomStringConvertible {
        var variable: String
        var description: String { "\(variable) is not set: scripts/test.sh starts the server (scripts/pg.sh) and sets it" }
    }

    package static func required(_ value: String?, _ variable: String) throws -> String {
        guard let value else { throw Missing(variable: variable) }
        return value
    }

    /// The password scripts/pg.sh generated for `tcpURL` (the last field of its PGPASSFILE line).
    package static func password() throws -> String {
        let file = try required(passwordFile, "TOOLCFG_TEST_POSTGRES_PASSFILE")
        let line = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").first ?? ""
        return String(line.split(separator: ":", maxSplits: 4).last ?? "")
    }
}

/// A database of its own for one test, created on the test server; `drop()` (in a `defer`, so
/// the value lives as long as the test) removes it with any session still in it.
package final class ScratchPostgresDatabase {
    package let name: String
    package let url: PostgresURL
    private let server: PostgresURL

    package init() throws {
        server = try PostgresURL(try PostgresTestServer.required(PostgresTestServer.url, "TOOLCFG_TEST_POSTGRES_URL"))
        name = "toolcfg_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try PostgresConnection(url: server).execute("CREATE DATABASE \(name)")
        url = try server.replacingDatabase(with: name)
    }

    package func connect(_ options: PostgresConnection.Options = .init()) throws -> PostgresConnection {
        try PostgresConnection(url: url, options: options)
    }

    package func drop() { try? PostgresConnection(url: server).execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
}

/// Runs scripts/peers/postgres_peer.py (psycopg 3): `read` returns the rows of a query as JSON values.
package func postgresPeer(_ mode: String, _ url: PostgresURL, _ argument: String, stdin: Data = Data()) throws -> Any {
    let result = try runProcess(
        URL(fileURLWithPath: "/usr/bin/env"),
        ["python3", Repository.scripts.appendingPathComponent("peers/postgres_peer.py").path, mode, url.textWithPassword, argument],
        stdin: stdin)
    guard result.status == 0 else {
        Issue.record("postgres_peer.py \(mode) failed: \(result.stderr)")
        throw CancellationError()
    }
    return mode == "read" ? try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) : []
}
