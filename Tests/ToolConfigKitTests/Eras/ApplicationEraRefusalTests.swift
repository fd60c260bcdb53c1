import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension ApplicationEraTests {
    // MARK: 5. fail closed

    static let tokens = [("tok-1", "sk-token-one"), ("tok-2", "sk-token-two ünïcode")]

    @Test(
        """
        v0.0.58 on SQLite: a ciphertext column the naming rule cannot pair is refused (65, nothing changed); \
        declared with --secret-columns it is rotated
        """
    )
    func unaccountedColumnSQLite() throws {
        try Self.unaccountedColumn(try Installation(.v58, .sqlite))
    }

    @Test(
        """
        v0.0.58 on PostgreSQL: a ciphertext column the naming rule cannot pair is refused (65, nothing changed); \
        declared with --secret-columns it is rotated
        """,
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
    func unaccountedColumnPostgres() throws {
        let installation = try Installation(.v58, .postgres)
        defer { installation.drop() }
        try Self.unaccountedColumn(installation)
    }

    static func unaccountedColumn(_ installation: Installation) throws {
        // Two salt candidates for encrypted_token (token_salt and salt_token): no pairing.
        try installation.execute(
            "CREATE TABLE user_tokens (id TEXT PRIMARY KEY, encrypted_token TEXT, token_salt TEXT, salt_token TEXT, token_nonce TEXT)")
        var inserts: [String] = []
        for (id, plaintext) in Self.tokens {
            let secret = try SecretCipher.encrypt(plaintext, masterKey: installation.master)
            inserts.append(
                "INSERT INTO user_tokens (id, encrypted_token, token_salt, token_nonce) VALUES ('\(id)', '\(secret.encryptedAPIKey)', "
                    + "'\(secret.salt)', '\(secret.nonce)')"
            )
        }
        inserts.append("INSERT INTO user_tokens (id) VALUES ('tok-3')")
        for insert in inserts { try installation.execute(insert) }
        let new = MasterKey.generate()
        let newFile = try installation.keyFile(new, "new.key")
        let before = try installation.state()

        for (kind, arguments) in [
            ("failure", installation.rotate(from: installation.masterFile, to: newFile)),
            ("failure", ["verify-keys", "--db", installation.db, "--master-key-file", installation.masterFile])
        ] {
            let refused = try installation.run(kind, arguments, status: 65)
            let error = refused.report["error"] as? [String: Any] ?? [:]
            let message = error["message"] as? String ?? ""
            #expect(
                message.contains("user_tokens") && message.contains("encrypted_token") && message.contains("--secret-columns"),
                "\(arguments[0]): \(message)")
            #expect(error["table"] as? String == "user_tokens" && error["field"] as? String == "encrypted_token", "\(error)")
            #expect(try installation.state() == before, "\(arguments[0]) refused but changed the database")
        }

        let declared =
            installation.rotate(from: installation.masterFile, to: newFile) + [
                "--secret-columns", "user_tokens:encrypted_token,token_salt,token_nonce"
            ]
        let report = try installation.run("rotate", declared).report
        let group = Self.groups(report)["user_tokens/encrypted_token"]
        #expect(group?["columns"] as? [String] == ["encrypted_token", "token_salt", "token_nonce"], "\(report["groups"] ?? "")")
        let counts = ["rows", "rotated", "already_rotated", "empty"].map { group?[$0] as? Int ?? -1 }
        #expect(counts == [3, 2, 0, 1], "user_tokens: rows, rotated, already_rotated, empty")
        #expect((report["total"] as? [String: Any])?["groups"] as? Int == installation.manifest.groups.count + 1)

        // The peer, told of the group: it opens under the new key, to the plaintexts written.
        let groupsFile = installation.folder.path("groups.json")
        try JSONSerialization.data(withJSONObject: [
            [
                "table": "user_tokens", "ciphertext": "encrypted_token", "salt": "token_salt",
                "nonce": "token_nonce", "primary_key": "id"
            ]
        ])
        .write(to: URL(fileURLWithPath: groupsFile))
        let records = Self.tokens.map { "user_tokens\t\($0.0)\tencrypted_token\t\($0.1)\n" }.sorted().joined()
        let digest = Digest.hex(Digest.sha256(Array(records.utf8)))
        let (status, peer) = try installation.peer(new, groups: groupsFile)
        #expect(status == 0 && peer["ok"] as? Bool == true, "\(peer)")
        let tokens = Self.groups(peer)["user_tokens/encrypted_token"] ?? [:]
        #expect(["rows", "null", "v1", "failed"].map { tokens[$0] as? Int ?? -1 } == [3, 1, 2, 0], "\(tokens)")
        #expect(tokens["plaintext_digest"] as? String == digest)
        for known in installation.manifest.groups {
            #expect(Self.groups(peer)[known.name]?["plaintext_digest"] as? String == known.plaintextDigest, "\(known.name)")
        }
        let underOld = Self.groups(try installation.peer(installation.master, groups: groupsFile).report)["user_tokens/encrypted_token"]
        #expect(underOld?["failed"] as? Int == 2, "\(underOld ?? [:])")
        try installation.validateReports()
    }

    @Test("v0.0.58 on SQLite: a group half NULL (ciphertext set, nonce NULL) is refused (65) naming table, row and column; nothing changed")
    func halfNullGroupSQLite() throws {
        try Self.halfNullGroup(try Installation(.v58, .sqlite))
    }

    @Test(
        """
        v0.0.58 on PostgreSQL: a group half NULL (ciphertext set, nonce NULL) is refused (65) naming table, row and column; \
        nothing changed
        """,
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
    func halfNullGroupPostgres() throws {
        let installation = try Installation(.v58, .postgres)
        defer { installation.drop() }
        try Self.halfNullGroup(installation)
    }

    static func halfNullGroup(_ installation: Installation) throws {
        // mcp_oauth_tokens: the refresh token's group is nullable, the access token's is not.
        #expect(installation.manifest.groups.first { $0.name == "mcp_oauth_tokens/encrypted_refresh_token" }?.nullable == true)
        let id = try #require(try installation.queryText("SELECT min(id) FROM mcp_oauth_tokens WHERE encrypted_refresh_token IS NOT NULL"))
        try installation.execute(
            "UPDATE mcp_oauth_tokens SET refresh_token_nonce = NULL WHERE id = '\(id)' AND encrypted_refresh_token IS NOT NULL")
        let peer = Self.groups(try installation.peer(installation.master).report)["mcp_oauth_tokens/encrypted_refresh_token"]
        try #require(peer?["half_null"] as? Int == 1, "the fixture has no such row: \(peer ?? [:])")
        let newFile = try installation.keyFile(MasterKey.generate(), "new.key")
        let before = try installation.state()

        let refused = try installation.run("failure", installation.rotate(from: installation.masterFile, to: newFile), status: 65)
        let error = refused.report["error"] as? [String: Any] ?? [:]
        let message = error["message"] as? String ?? ""
        #expect(message.contains("mcp_oauth_tokens") && message.contains(id) && message.contains("encrypted_refresh_token"), "\(message)")
        #expect(error["table"] as? String == "mcp_oauth_tokens" && error["field"] as? String == "encrypted_refresh_token", "\(error)")
        #expect(try installation.state() == before, "a refused rotation changed the database")
        try installation.validateReports()
    }

    // MARK: 6. migrate status

    @Test("the committed era fixtures are what scripts/build_app_fixtures.py builds (its self-check of the secrets-file vector included)")
    func fixturesAreReproducible() throws {
        let folder = try TemporaryFolder()
        let result = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", Repository.scripts.appendingPathComponent("build_app_fixtures.py").path, folder.path("rebuilt")])
        #expect(result.status == 0, "\(result.stderr)")
        for name in ["manifest.json", "releases.json", "secrets.yaml", "master.key", "postgres/v0.0.58.sql", "postgres/v0.0.59.sql"] {
            #expect(
                try ReversibilityTests.digest(Self.fixtures.appendingPathComponent(name).path)
                    == ReversibilityTests.digest(folder.path("rebuilt/\(name)")),
                "\(name)")
        }
        for era in Era.allCases {
            let committed = try SchemaFingerprint.capture(
                SQLiteConnection(path: Self.fixtures.appendingPathComponent("\(era.rawValue).db").path, mode: .readOnly))
            let rebuilt = try SchemaFingerprint.capture(SQLiteConnection(path: folder.path("rebuilt/\(era.rawValue).db"), mode: .readOnly))
            #expect(committed == rebuilt, "\(era): \(rebuilt.differences(from: committed))")
        }
    }

    @Test("migrate status --json on each SQLite era: the ledger and the application's releases")
    func migrateStatusSQLite() throws {
        for era in Era.allCases {
            try Self.migrateStatus(try Installation(era, .sqlite))
        }
    }

    @Test(
        "migrate status --json on each PostgreSQL era: the ledger and the application's releases",
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
    func migrateStatusPostgres() throws {
        for era in [Era.v58, .v59] {
            let installation = try Installation(era, .postgres)
            defer { installation.drop() }
            try Self.migrateStatus(installation)
        }
    }

    static func migrateStatus(_ installation: Installation) throws {
        let era = installation.era
        let before = try installation.state()
        let report = try installation.run("migrate-status", ["migrate", "status", "--db", installation.db]).report
        #expect(report["ledger"] as? String == era.ledger, "\(era): \(report["ledger"] ?? "none")")
        let release = report["application_release"] as? [String: Any] ?? [:]
        #expect(release["releases"] as? String == era.releases, "\(era): \(release)")
        #expect(
            release["ledger"] as? String == era.ledger && release["has_secrets_file"] as? Bool == era.hasSecretsFile, "\(era): \(release)")
        let versions = installation.manifest.ledgerVersions.map(\.text)
        if era.ledger == "sqlx" {
            #expect((report["entries"] as? [[String: Any]] ?? []).map { String($0["version"] as? Int ?? -1) } == versions, "\(era)")
        } else {
            #expect((report["sea_orm_migrations"] as? [[String: Any]] ?? []).map { $0["version"] as? String ?? "" } == versions, "\(era)")
        }
        #expect(try installation.state() == before, "migrate status changed the database")
        try installation.validateReports()
    }
}
