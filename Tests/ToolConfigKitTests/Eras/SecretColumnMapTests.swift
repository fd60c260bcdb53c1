import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Where the secrets are: the application's groups, the naming rule, declared groups, and the
/// refusal of what none of them accounts for. Pure: tables as the catalogs describe them.
@Suite("Secret column groups")
struct SecretColumnMapTests {
    static func table(_ name: String, _ columns: [String], notNull: Set<String> = [], key: [String] = ["id"]) -> TableColumns {
        TableColumns(table: name, columns: columns.map { .init(name: $0, notNull: notNull.contains($0)) }, primaryKey: key)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var why: String
        var columns: [String]
        /// (ciphertext, salt, nonce, origin) expected, in order; nil: refused.
        var groups: [(String, String, String, SecretColumnGroup.Origin)]?
        var testDescription: String { why }
    }

    static let cases: [Case] = [
        Case(
            why: "encrypted_X with X_salt / X_nonce", columns: ["id", "encrypted_token", "token_salt", "token_nonce"],
            groups: [("encrypted_token", "token_salt", "token_nonce", .namingRule)]),
        Case(
            why: "encrypted_X with salt_X / nonce_X",
            columns: ["id", "encrypted_client_secret", "salt_client_secret", "nonce_client_secret"],
            groups: [("encrypted_client_secret", "salt_client_secret", "nonce_client_secret", .namingRule)]),
        Case(
            why: "encrypted_X with <first word>_salt", columns: ["id", "encrypted_access_token", "access_salt", "access_nonce"],
            groups: [("encrypted_access_token", "access_salt", "access_nonce", .namingRule)]),
        Case(
            why: "encrypted_X with a bare salt and nonce", columns: ["id", "encrypted_api_key", "salt", "nonce"],
            groups: [("encrypted_api_key", "salt", "nonce", .namingRule)]),
        Case(
            why: "two groups in one table, the second claiming its own columns",
            columns: [
                "id", "encrypted_access_token", "access_token_salt", "access_token_nonce",
                "encrypted_refresh_token", "refresh_token_salt", "refresh_token_nonce"
            ],
            groups: [
                ("encrypted_access_token", "access_token_salt", "access_token_nonce", .namingRule),
                ("encrypted_refresh_token", "refresh_token_salt", "refresh_token_nonce", .namingRule)
            ]),
        Case(
            why: "case does not matter", columns: ["ID", "Encrypted_Token", "TOKEN_SALT", "Token_Nonce"],
            groups: [("Encrypted_Token", "TOKEN_SALT", "Token_Nonce", .namingRule)]),
        Case(
            why: "two salts would pair: ambiguous, refused", columns: ["id", "encrypted_token", "token_salt", "salt", "token_nonce"],
            groups: nil),
        Case(why: "no nonce to pair: refused", columns: ["id", "encrypted_api_key", "salt"], groups: nil),
        Case(
            why: "salt-like and nonce-like columns without a ciphertext: refused",
            columns: ["id", "payload", "payload_salt", "payload_nonce"],
            groups: nil),
        Case(why: "a salt alone (a password hash's) is no secret group", columns: ["id", "password_hash", "password_salt"], groups: []),
        Case(why: "no secret-like column at all", columns: ["id", "name", "created_at"], groups: []),
        Case(why: "a column just named encrypted_ is not a ciphertext", columns: ["id", "encrypted_"], groups: [])
    ]

    @Test("the naming rule pairs exactly one salt and one nonce, or the table is refused", arguments: cases)
    func namingRule(_ test: Case) throws {
        let table = Self.table("things", test.columns)
        guard let expected = test.groups else {
            let error = try #require(thrownError { _ = try SecretColumnMap().groups(in: [table]) } as? UnaccountedSecretColumnsError)
            #expect(error.exitStatus == .dataError && error.tables.map(\.table) == ["things"])
            #expect(error.description.contains("--secret-columns things:"), "\(error)")
            #expect(try SecretColumnMap().groups(in: [table], lenient: true).isEmpty)
            return
        }
        let groups = try SecretColumnMap().groups(in: [table])
        #expect(groups.map { [$0.ciphertext, $0.salt, $0.nonce] } == expected.map { [$0.0, $0.1, $0.2] })
        #expect(groups.map(\.origin) == expected.map(\.3))
        #expect(groups.allSatisfy { $0.table == "things" && $0.idColumn == "id" })
    }

    @Test("every group of the application is found in its own tables, as the application's")
    func applicationGroups() throws {
        var tables: [String: [String]] = [:]
        for known in SecretColumnMap.application { tables[known.table, default: ["id"]] += [known.ciphertext, known.salt, known.nonce] }
        let groups = try SecretColumnMap().groups(in: tables.map { Self.table($0.key, $0.value) })
        #expect(groups.count == SecretColumnMap.application.count)
        #expect(groups.allSatisfy { $0.origin == .application })
        #expect(
            Set(groups.map { "\($0.table).\($0.ciphertext)" }) == Set(SecretColumnMap.application.map { "\($0.table).\($0.ciphertext)" }))
    }

    @Test("a group is nullable unless all three columns are NOT NULL; rows are named by the one-column primary key")
    func nullabilityAndKey() throws {
        let required = Self.table(
            "aliases", ["alias_id", "encrypted_api_key", "salt", "nonce"], notNull: ["encrypted_api_key", "salt", "nonce"],
            key: ["alias_id"])
        let optional = Self.table(
            "tokens", ["encrypted_token", "token_salt", "token_nonce", "id"], notNull: ["encrypted_token", "token_salt"],
            key: ["a", "b"])
        let groups = try SecretColumnMap().groups(in: [required, optional])
        #expect(groups.map(\.nullable) == [false, true])
        #expect(groups.map(\.idColumn) == ["alias_id", "id"])
    }

    @Test("--secret-columns declares a group the rule cannot pair, and overrides the rule for its ciphertext")
    func declared() throws {
        let table = Self.table("vault", ["id", "encrypted_token", "token_salt", "salt", "iv"])
        let map = SecretColumnMap(declared: [try SecretColumnDeclaration(parsing: "vault:encrypted_token,salt,iv")])
        let groups = try map.groups(in: [table])
        #expect(groups.map { [$0.ciphertext, $0.salt, $0.nonce] } == [["encrypted_token", "salt", "iv"]] && groups[0].origin == .declared)
        // Without the declaration the two salts make the rule's pairing ambiguous.
        #expect(thrownError { _ = try SecretColumnMap().groups(in: [table]) } is UnaccountedSecretColumnsError)
        // token_salt left over is harmless alone; beside a nonce-like column it is refused.
        let left = Self.table("vault", ["id", "encrypted_token", "token_salt", "salt", "iv", "spare_nonce"])
        #expect(thrownError { _ = try map.groups(in: [left]) } is UnaccountedSecretColumnsError)
    }

    @Test("two --secret-columns sharing a column are refused (64), naming both: one of them would be left out unseen")
    func declaredOverlap() throws {
        let table = Self.table("vault", ["id", "token", "token_salt", "token_iv", "other", "other_iv"])
        let map = SecretColumnMap(declared: [
            try SecretColumnDeclaration(parsing: "vault:token,token_salt,token_iv"),
            try SecretColumnDeclaration(parsing: "vault:other,TOKEN_SALT,other_iv")
        ])
        let error = try #require(thrownError { _ = try map.groups(in: [table]) } as? UsageError)
        #expect(
            error.message.contains("vault:other,TOKEN_SALT,other_iv and vault:token,token_salt,token_iv share TOKEN_SALT"),
            "\(error.message)")
    }

    @Test("a reason about a part of a value names the group's own column")
    func reasonsNameTheGroupsColumns() {
        let group = SecretColumnGroup(
            table: "tenants", ciphertext: "encrypted_client_secret", salt: "salt_client_secret", nonce: "nonce_client_secret")
        #expect(
            group.naming("nonce: decodes to 10 bytes, expected 12") == (
                "nonce_client_secret", "nonce_client_secret: decodes to 10 bytes, expected 12"
            ))
        #expect(group.naming("encrypted_api_key: not canonical standard base64 with padding").column == "encrypted_client_secret")
        #expect(group.naming("decrypts under neither key") == ("encrypted_client_secret", "decrypts under neither key"))
    }

    @Test(
        "--secret-columns is refused (64) when malformed or naming what the database lacks",
        arguments: [
            ("vault", "expected TABLE:CIPHERTEXT,SALT,NONCE"),
            ("vault:a,b", "expected TABLE:CIPHERTEXT,SALT,NONCE"),
            ("vault:a,,c", "expected TABLE:CIPHERTEXT,SALT,NONCE"),
            ("vault:a,a,c", "three different columns"),
            ("nowhere:encrypted_token,salt,iv", "no table nowhere"),
            ("vault:encrypted_token,salt,missing", "no column missing")
        ])
    func declaredRefusals(_ text: String, _ expected: String) throws {
        let table = Self.table("vault", ["id", "encrypted_token", "salt", "iv"])
        let error = thrownError { _ = try SecretColumnMap(declared: [try SecretColumnDeclaration(parsing: text)]).groups(in: [table]) }
        let usage = try #require(error as? UsageError)
        #expect(usage.exitStatus == .usage && usage.message.contains(expected), "\(usage.message)")
    }
}
