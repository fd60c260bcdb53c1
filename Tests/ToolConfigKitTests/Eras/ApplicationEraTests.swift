import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The application's own databases of each era (fixtures/app-eras: v0.0.45 of the sqlx era with its
/// secrets.yaml, v0.0.58 of sea-orm in scheme v1, v0.0.59 with scheme v2 beside legacy v1 values;
/// the last two on PostgreSQL too), driven through the command line, with the independent Python
/// checker scripts/peers/app_secrets_peer.py opening every value and fixtures/app-eras/manifest.json
/// saying what must be there. Each test works on its own copy (a temporary folder, a scratch
/// PostgreSQL database).
@Suite("Application eras")
struct ApplicationEraTests {
    // MARK: the fixtures

    enum Era: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case v45 = "v0.0.45", v58 = "v0.0.58", v59 = "v0.0.59"

        var testDescription: String { rawValue }
        /// The ledger migrate status and the reports name.
        var ledger: String { self == .v45 ? "sqlx" : "sea-orm" }
        /// application_release.releases.
        var releases: String {
            switch self {
            case .v45: "v0.0.40 - v0.0.45"
            case .v58: "v0.0.53 - v0.0.58"
            case .v59: "v0.0.59 or later"
            }
        }
        var hasSecretsFile: Bool { self == .v45 }
    }

    enum Engine: String, Sendable {
        case sqlite, postgres
    }

    /// fixtures/app-eras/manifest.json.
    struct Manifest: Decodable, Sendable {
        struct Group: Decodable, Sendable {
            var table: String
            var ciphertext: String
            var salt: String
            var nonce: String
            var primaryKey: String
            var nullable: Bool
            var rows: Int
            var null: Int
            var v1: Int
            var v2: Int
            var plaintextDigest: String

            var name: String { "\(table)/\(ciphertext)" }
            var values: Int { v1 + v2 }
        }

        /// A ledger version: an integer (sqlx) or a name (sea-orm).
        struct LedgerVersion: Decodable, Sendable, Equatable {
            var text: String

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let number = try? container.decode(Int.self) { text = String(number) } else { text = try container.decode(String.self) }
            }
        }

        struct Database: Decodable, Sendable {
            var engine: String
            var release: String
            var ledger: String
            var ledgerVersions: [LedgerVersion]
            var groups: [Group]
            var plaintextDigest: String

            var tables: Int { Set(groups.map(\.table)).count }
        }

        struct SecretsFile: Decodable, Sendable {
            var path: String
            var keys: [String]
            var digest: String
        }

        var databases: [String: Database]
        var secretsFile: SecretsFile
    }

    static let fixtures = Repository.root.appendingPathComponent("fixtures/app-eras")

    static func manifest() throws -> Manifest {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Manifest.self, from: Data(contentsOf: fixtures.appendingPathComponent("manifest.json")))
    }

    static func fixtureKey() throws -> MasterKey {
        try key(
            String(contentsOf: fixtures.appendingPathComponent("master.key"), encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines))
    }

    static func json(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        try #require(
            try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)",
            sourceLocation: sourceLocation)
    }

    static func groups(_ report: [String: Any]) -> [String: [String: Any]] {
        let groups = report["groups"] as? [[String: Any]] ?? []
        return Dictionary(
            groups.map { group -> (String, [String: Any]) in
                let ciphertext = (group["columns"] as? [String])?.first ?? group["ciphertext"] as? String ?? ""
                return ("\(group["table"] as? String ?? "")/\(ciphertext)", group)
            }, uniquingKeysWith: { a, _ in a })
    }

    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    static func octal(_ mode: mode_t?) -> String { mode.map { String($0, radix: 8) } ?? "none" }

    // MARK: one copy of one era

    /// An era's database copied for one test (an SQLite file in a temporary folder, or a scratch
    /// PostgreSQL database loaded from the fixture's script), its secrets file beside it, the
    /// fixture's master key in a file, and the --json outputs of the commands run on it, validated
    /// against the schema at the end.
    final class Installation {
        let era: Era
        let engine: Engine
        let folder: TemporaryFolder
        let db: String
        let manifest: Manifest.Database
        let secretsManifest: Manifest.SecretsFile
        let master: MasterKey
        let masterFile: String
        /// A copy of fixtures/app-eras/secrets.yaml (the sqlx era's file; beside any era, unused there).
        let secretsFile: String
        private let scratch: ScratchPostgresDatabase?
        let connection: PostgresConnection?
        private var outputs: [JSONReportTests.Output] = []

        init(_ era: Era, _ engine: Engine, secretsFileMode: mode_t = 0o640) throws {
            self.era = era
            self.engine = engine
            folder = try TemporaryFolder()
            let all = try ApplicationEraTests.manifest()
            let name = engine == .sqlite ? "\(era.rawValue).db" : "postgres/\(era.rawValue).sql"
            manifest = try #require(all.databases[name], "manifest.json has no \(name)")
            secretsManifest = all.secretsFile
            master = try ApplicationEraTests.fixtureKey()
            masterFile = try RotationFixtures.keyFile(master, folder, "master.key")
            secretsFile = folder.path("secrets.yaml")
            try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent("secrets.yaml").path, toPath: secretsFile)
            chmod(secretsFile, secretsFileMode)
            switch engine {
            case .sqlite:
                db = folder.path("\(era.rawValue).db")
                try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent(name).path, toPath: db)
                scratch = nil
                connection = nil
            case .postgres:
                let scratch = try ScratchPostgresDatabase()
                self.scratch = scratch
                do {
                    let connection = try scratch.connect()
                    self.connection = connection
                    let script = try String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8)
                    try connection.transaction { try connection.execute(script, context: name) }
                } catch {
                    scratch.drop()
                    throw error
                }
                db = scratch.url.text
            }
        }

        func drop() {
            connection?.close()
            scratch?.drop()
        }

        func keyFile(_ key: MasterKey, _ name: String) throws -> String {
            try RotationFixtures.keyFile(key, folder, name)
        }

        func rotate(from old: String, to new: String) -> [String] {
            ["rotate", "--db", db, "--master-key-file", old, "--new-master-key-file", new]
        }

        struct Ran {
            var result: ProcessResult
            var report: [String: Any]
        }

        /// Runs toolcfg with --json; expects `status`, one JSON object on stdout (on failure: ok
        /// false, the exit status, the message as on stderr), and keeps it for the schema check.
        @discardableResult
        func run(
            _ kind: String?, _ arguments: [String], status: Int32 = 0, environment: [String: String] = [:],
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws -> Ran {
            let result = try toolcfg(arguments + ["--json"], environment: environment)
            #expect(
                result.status == status, "\(arguments.dropFirst(3).prefix(8)): exit \(result.status): \(result.stderr)",
                sourceLocation: sourceLocation)
            outputs.append(JSONReportTests.Output(kind: kind, arguments: arguments, result: result, json: result.stdout))
            let report = try ApplicationEraTests.json(result.stdout, sourceLocation: sourceLocation)
            #expect(report["ok"] as? Bool == (status == 0), "\(result.stdout)", sourceLocation: sourceLocation)
            if status != 0 {
                #expect(report["exit_status"] as? Int == Int(status), "\(result.stdout)", sourceLocation: sourceLocation)
                let message = (report["error"] as? [String: Any])?["message"] as? String
                #expect(
                    message.map { result.stderr.contains("toolcfg: error: " + $0) } == true, "\(result.stderr)",
                    sourceLocation: sourceLocation)
            }
            return Ran(result: result, report: report)
        }

        /// Every --json output of this test against schemas/report.schema.json.
        func validateReports() throws {
            guard !outputs.isEmpty else { return }
            try JSONReportTests.validate(outputs)
        }

        /// scripts/peers/app_secrets_peer.py under `key`: its exit status and report.
        func peer(
            _ key: MasterKey, secretsFile: String? = nil, groups: String? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws -> (status: Int32, report: [String: Any]) {
            var arguments = [
                "python3", Repository.scripts.appendingPathComponent("peers/app_secrets_peer.py").path, "--db", db, "--key-env",
                "ERAS_PEER_KEY"
            ]
            if let secretsFile { arguments += ["--secrets-file", secretsFile] }
            if let groups { arguments += ["--groups", groups] }
            let result = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), arguments, environment: ["ERAS_PEER_KEY": key.base64Text])
            #expect(
                result.status == 0 || result.status == 1, "app_secrets_peer.py failed: \(result.stderr)", sourceLocation: sourceLocation)
            return (result.status, try ApplicationEraTests.json(result.stdout, sourceLocation: sourceLocation))
        }

        /// The peer opens every value of every group of the manifest under `key`, to the
        /// manifest's plaintexts (each group's digest and the whole), and the secrets file when
        /// given; each group's schemes are `schemes` (default: the manifest's).
        func expectPeerOpensEverything(
            under key: MasterKey, secretsFile: String? = nil, schemes: ((Manifest.Group) -> (v1: Int, v2: Int))? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let (status, report) = try peer(key, secretsFile: secretsFile, sourceLocation: sourceLocation)
            #expect(
                status == 0 && report["ok"] as? Bool == true, "the peer does not open everything under \(key.fingerprint): \(report)",
                sourceLocation: sourceLocation)
            #expect(report["plaintext_digest"] as? String == manifest.plaintextDigest, "plaintext digest", sourceLocation: sourceLocation)
            let found = ApplicationEraTests.groups(report)
            #expect(Set(found.keys) == Set(manifest.groups.map(\.name)), sourceLocation: sourceLocation)
            for group in manifest.groups {
                let peer = found[group.name] ?? [:]
                let expected: (v1: Int, v2: Int) = schemes?(group) ?? (group.v1, group.v2)
                let counts = ["rows", "null", "v1", "v2", "failed", "half_null"].map { peer[$0] as? Int ?? -1 }
                #expect(
                    counts == [group.rows, group.null, expected.v1, expected.v2, 0, 0],
                    "\(group.name): rows, null, v1, v2, failed, half_null",
                    sourceLocation: sourceLocation)
                #expect(
                    peer["plaintext_digest"] as? String == group.plaintextDigest, "\(group.name): plaintext digest",
                    sourceLocation: sourceLocation)
            }
            if secretsFile != nil {
                let file = report["secrets_file"] as? [String: Any] ?? [:]
                #expect(
                    file["opened"] as? Bool == true, "the secrets file does not open under \(key.fingerprint): \(file)",
                    sourceLocation: sourceLocation)
                #expect(file["digest"] as? String == secretsManifest.digest, "the secrets file's digest", sourceLocation: sourceLocation)
            }
        }

        /// The peer opens no value (and not the secrets file, when given) under `key`.
        func expectPeerOpensNothing(under key: MasterKey, secretsFile: String? = nil, sourceLocation: SourceLocation = #_sourceLocation)
            throws
        {
            let (status, report) = try peer(key, secretsFile: secretsFile, sourceLocation: sourceLocation)
            #expect(status == 1 && report["ok"] as? Bool == false, "exit \(status)", sourceLocation: sourceLocation)
            let found = ApplicationEraTests.groups(report)
            for group in manifest.groups {
                let peer = found[group.name] ?? [:]
                let counts = ["rows", "null", "v1", "v2", "failed"].map { peer[$0] as? Int ?? -1 }
                #expect(
                    counts == [group.rows, group.null, 0, 0, group.values],
                    "\(group.name) under \(key.fingerprint): rows, null, v1, v2, failed",
                    sourceLocation: sourceLocation)
            }
            if secretsFile != nil {
                let file = report["secrets_file"] as? [String: Any] ?? [:]
                #expect(file["opened"] as? Bool == false, "the secrets file opens under \(key.fingerprint)", sourceLocation: sourceLocation)
            }
        }

        /// verify-keys' groups against the manifest: rows, empty, v1, v2, and every value under
        /// `under` ("under_master_key" or "under_new_master_key").
        func expectVerifyCounts(
            _ report: [String: Any], under: String = "under_master_key", schemes: ((Manifest.Group) -> (v1: Int, v2: Int))? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            let found = ApplicationEraTests.groups(report)
            #expect(Set(found.keys) == Set(manifest.groups.map(\.name)), "verify-keys' groups", sourceLocation: sourceLocation)
            for group in manifest.groups {
                let verify = found[group.name] ?? [:]
                let expected: (v1: Int, v2: Int) = schemes?(group) ?? (group.v1, group.v2)
                #expect(
                    verify["columns"] as? [String] == [group.ciphertext, group.salt, group.nonce], "\(group.name): columns",
                    sourceLocation: sourceLocation)
                let counts = ["rows", "empty", "v1", "v2", under, "under_neither", "malformed"].map { verify[$0] as? Int ?? -1 }
                #expect(
                    counts == [group.rows, group.null, expected.v1, expected.v2, group.values, 0, 0],
                    "\(group.name): rows, empty, v1, v2, \(under), under_neither, malformed", sourceLocation: sourceLocation)
            }
        }

        /// Every table's rows and the schema: what a refused command must leave as it was.
        func state() throws -> [String] {
            switch engine {
            case .sqlite:
                return try RotationFixtures.logicalState(db).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            case .postgres:
                let connection = try #require(connection)
                let state = try DatabaseState(connection)
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                let fingerprint = String(decoding: try encoder.encode(state.fingerprint), as: UTF8.self)
                return [fingerprint] + state.rows.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            }
        }

        /// The first column of the first row of a query on the copy.
        func queryText(_ sql: String) throws -> String? {
            switch engine {
            case .sqlite:
                let connection = try SQLiteConnection(path: db, mode: .readOnly)
                defer { connection.close() }
                return try connection.queryText(sql)
            case .postgres:
                return try #require(connection).queryText(sql)
            }
        }

        /// Runs SQL on the copy (for the fail-closed cases).
        func execute(_ sql: String) throws {
            switch engine {
            case .sqlite:
                let connection = try SQLiteConnection(path: db)
                defer { connection.close() }
                try connection.execute(sql)
            case .postgres:
                try #require(connection).execute(sql)
            }
        }
    }
}
