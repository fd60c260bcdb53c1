import Foundation
import Testing
@testable import ToolConfigKit

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
            masterFile = try RotationTests.keyFile(master, folder, "master.key")
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
            try RotationTests.keyFile(key, folder, name)
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
                return try RotationTests.logicalState(db).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            case .postgres:
                let connection = try #require(connection)
                let state = try PostgresState(connection)
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                let fingerprint = String(decoding: try encoder.encode(state.fingerprint), as: UTF8.self)
                return [fingerprint] + state.rows
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

    // MARK: 1. every era: verify-keys, rotate, the peer, a second run

    @Test(
        """
        each era on SQLite: verify-keys counts as the manifest; rotate to a new key; the peer opens all under it, none under the old; \
        a rerun rotates nothing
        """,
        arguments: Era.allCases)
    func everyEraSQLite(_ era: Era) throws {
        let installation = try Installation(era, .sqlite)
        try Self.rotateToANewKey(installation)
    }

    @Test(
        """
        each era on PostgreSQL: verify-keys counts as the manifest; rotate to a new key; the peer opens all under it, \
        none under the old; a rerun rotates nothing
        """,
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason), arguments: [Era.v58, .v59])
    func everyEraPostgres(_ era: Era) throws {
        let installation = try Installation(era, .postgres)
        defer { installation.drop() }
        try Self.rotateToANewKey(installation)
    }

    static func rotateToANewKey(_ installation: Installation) throws {
        let era = installation.era, manifest = installation.manifest
        let fileArguments = era.hasSecretsFile ? ["--secrets-file", installation.secretsFile] : []
        let new = MasterKey.generate()
        let newFile = try installation.keyFile(new, "new.key")

        // The fixture as it is: every value under its master key, counted as the manifest says.
        let verify = try installation.run(
            "verify-keys", ["verify-keys", "--db", installation.db, "--master-key-file", installation.masterFile] + fileArguments)
        #expect(verify.report["ok"] as? Bool == true)
        installation.expectVerifyCounts(verify.report)
        #expect((verify.report["application_release"] as? [String: Any])?["releases"] as? String == era.releases)
        if era.hasSecretsFile {
            #expect((verify.report["secrets_file"] as? [String: Any])?["under"] as? String == "master_key", "\(verify.report)")
        }

        // Rotated to a fresh key: the report counts every group as the manifest does.
        let rotation = try installation.run("rotate", installation.rotate(from: installation.masterFile, to: newFile) + fileArguments)
        let report = rotation.report
        let groups = Self.groups(report)
        #expect(Set(groups.keys) == Set(manifest.groups.map(\.name)), "the report's groups")
        for group in manifest.groups {
            let reported = groups[group.name] ?? [:]
            #expect(reported["columns"] as? [String] == [group.ciphertext, group.salt, group.nonce], "\(group.name)")
            let counts = ["rows", "rotated", "already_rotated", "empty", "changed_during_rotation", "removed_during_rotation"].map {
                reported[$0] as? Int ?? -1
            }
            #expect(
                counts == [group.rows, group.values, 0, group.null, 0, 0],
                "\(group.name): rows, rotated, already_rotated, empty, changed, removed")
        }
        let total = report["total"] as? [String: Any] ?? [:]
        let totals = ["groups", "tables", "rows", "rotated", "already_rotated", "empty"].map { total[$0] as? Int ?? -1 }
        #expect(
            totals == [
                manifest.groups.count, manifest.tables, manifest.groups.reduce(0) { $0 + $1.rows },
                manifest.groups.reduce(0) { $0 + $1.values }, 0, manifest.groups.reduce(0) { $0 + $1.null }
            ], "total: \(total)")
        #expect(report["verified_after_commit"] as? Int == manifest.groups.reduce(0) { $0 + $1.values })
        #expect(report["scheme"] as? String == "keep")
        #expect(report["warnings"] as? [String] == [], "\(report["warnings"] ?? "none")")
        let release = report["application_release"] as? [String: Any] ?? [:]
        #expect(release["releases"] as? String == era.releases && release["ledger"] as? String == era.ledger, "\(release)")
        if era.hasSecretsFile {
            #expect((report["secrets_file"] as? [String: Any])?["outcome"] as? String == "rotated", "\(report)")
            #expect(!FileManager.default.fileExists(atPath: installation.secretsFile + ".toolcfg-rotating"))
            #expect(
                Self.mode(installation.secretsFile) == 0o640, "the secrets file's mode: \(Self.octal(Self.mode(installation.secretsFile)))")
        }

        // The independent peer: everything under the new key, to the same plaintexts, and in the
        // scheme it was in; nothing under the old one.
        let secretsFile = era.hasSecretsFile ? installation.secretsFile : nil
        try installation.expectPeerOpensEverything(under: new, secretsFile: secretsFile)
        try installation.expectPeerOpensNothing(under: installation.master, secretsFile: secretsFile)

        // The same command again: everything is rotated already; nothing is written.
        let state = try installation.state()
        let fileBytes = try Data(contentsOf: URL(fileURLWithPath: installation.secretsFile))
        let again = try installation.run("rotate", installation.rotate(from: installation.masterFile, to: newFile) + fileArguments).report
        let againGroups = Self.groups(again)
        for group in manifest.groups {
            let reported = againGroups[group.name] ?? [:]
            let counts = ["rows", "rotated", "already_rotated", "empty"].map { reported[$0] as? Int ?? -1 }
            #expect(counts == [group.rows, 0, group.values, group.null], "second run, \(group.name): rows, rotated, already_rotated, empty")
        }
        #expect((again["total"] as? [String: Any])?["rotated"] as? Int == 0, "\(again["total"] ?? "")")
        #expect(again["verified_after_commit"] as? Int == 0)
        if era.hasSecretsFile {
            #expect((again["secrets_file"] as? [String: Any])?["outcome"] as? String == "already_rotated", "\(again)")
        }
        #expect(try installation.state() == state, "the second run changed the database")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: installation.secretsFile)) == fileBytes, "the second run rewrote the secrets file")

        // verify-keys under the new key: every value, in its scheme.
        let after = try installation.run(
            "verify-keys",
            [
                "verify-keys", "--db", installation.db, "--master-key-file", newFile,
                "--new-master-key-file", installation.masterFile
            ] + fileArguments)
        installation.expectVerifyCounts(after.report)
        if era.hasSecretsFile {
            #expect((after.report["secrets_file"] as? [String: Any])?["under"] as? String == "master_key")
        }
        try installation.validateReports()
    }

    // MARK: 2. schemes: the in-place upgrade, and keep

    @Test(
        """
        v0.0.58 on SQLite: --scheme v2 with the same key upgrades every value in place; without --scheme the same key is refused (64), \
        nothing changed
        """
    )
    func upgradeInPlaceSQLite() throws {
        try Self.upgradeInPlace(try Installation(.v58, .sqlite))
    }

    @Test(
        """
        v0.0.58 on PostgreSQL: --scheme v2 with the same key upgrades every value in place; without --scheme the same key is refused \
        (64), nothing changed
        """,
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
    func upgradeInPlacePostgres() throws {
        let installation = try Installation(.v58, .postgres)
        defer { installation.drop() }
        try Self.upgradeInPlace(installation)
    }

    static func upgradeInPlace(_ installation: Installation) throws {
        let manifest = installation.manifest
        let sameKey = installation.rotate(from: installation.masterFile, to: installation.masterFile)
        let before = try installation.state()

        let refused = try installation.run("failure", sameKey, status: 64)
        let message = (refused.report["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(message.contains("same") && message.contains("--scheme"), "\(message)")
        #expect(try installation.state() == before, "a refused same-key rotation changed the database")

        let upgrade = try installation.run("rotate", sameKey + ["--scheme", "v2"]).report
        #expect(upgrade["scheme"] as? String == "v2")
        #expect(
            (upgrade["total"] as? [String: Any])?["rotated"] as? Int == manifest.groups.reduce(0) { $0 + $1.v1 },
            "\(upgrade["total"] ?? "")")
        #expect(
            upgrade["master_key_fingerprint"] as? String == installation.master.fingerprint
                && upgrade["new_master_key_fingerprint"] as? String == installation.master.fingerprint)

        // Every value in v2 now, under the same key, to the same plaintexts.
        try installation.expectPeerOpensEverything(under: installation.master, schemes: { (0, $0.values) })
        let verify = try installation.run(
            "verify-keys", ["verify-keys", "--db", installation.db, "--master-key-file", installation.masterFile]
        ).report
        installation.expectVerifyCounts(verify, schemes: { (0, $0.values) })
        let legacy = (verify["groups"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["legacy"] as? Int ?? -1) }
        #expect(legacy == 0 && (verify["legacy_values"] as? [Any])?.isEmpty == true, "legacy values after the upgrade: \(legacy)")

        // Again: nothing left to upgrade.
        let state = try installation.state()
        let again = try installation.run("rotate", sameKey + ["--scheme", "v2"]).report
        #expect((again["total"] as? [String: Any])?["rotated"] as? Int == 0, "\(again["total"] ?? "")")
        #expect(try installation.state() == state, "a second upgrade rewrote values")
        try installation.validateReports()
    }

    @Test("v0.0.59 on SQLite: rotate --scheme keep to a new key keeps each value's scheme (the legacy v1 values stay v1)")
    func keepSchemeSQLite() throws {
        try Self.keepScheme(try Installation(.v59, .sqlite))
    }

    @Test(
        "v0.0.59 on PostgreSQL: rotate --scheme keep to a new key keeps each value's scheme (the legacy v1 values stay v1)",
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
    func keepSchemePostgres() throws {
        let installation = try Installation(.v59, .postgres)
        defer { installation.drop() }
        try Self.keepScheme(installation)
    }

    @Test(
        """
        v0.0.58 on PostgreSQL: --make-room gives each table room for one new version per group (fillfactor 50, 33 with two groups), \
        and the rotation covers every group
        """,
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
    func makeRoomPerGroups() throws {
        let installation = try Installation(.v58, .postgres)
        defer { installation.drop() }
        let new = MasterKey.generate()
        let newFile = try installation.keyFile(new, "new.key")
        let report = try installation.run("rotate", installation.rotate(from: installation.masterFile, to: newFile) + ["--make-room"])
            .report
        let groups = report["groups"] as? [[String: Any]] ?? []
        var fillfactors: [String: Int] = [:]
        for group in groups {
            guard let table = group["table"] as? String, let room = group["room"] as? [String: Any] else { continue }
            fillfactors[table] = room["fillfactor"] as? Int
        }
        let groupsPerTable = Dictionary(grouping: installation.manifest.groups, by: \.table).mapValues(\.count)
        #expect(Set(fillfactors.keys) == Set(groupsPerTable.keys), "\(fillfactors)")
        for (table, count) in groupsPerTable {
            #expect(fillfactors[table] == 100 / (count + 1), "\(table): \(fillfactors[table] ?? -1)")
            let stored = try installation.queryText("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = '\(table)'")
            #expect(stored == "fillfactor=\(100 / (count + 1))", "\(table): \(stored ?? "none")")
        }
        try installation.expectPeerOpensEverything(under: new)
        try installation.validateReports()
    }

    static func keepScheme(_ installation: Installation) throws {
        let manifest = installation.manifest
        // The fixture has both schemes, and legacy values outside tenants: what keep must keep.
        #expect(manifest.groups.contains { $0.v1 > 0 && $0.table != "tenants" } && manifest.groups.contains { $0.v2 > 0 })
        let new = MasterKey.generate()
        let newFile = try installation.keyFile(new, "new.key")
        let report = try installation.run("rotate", installation.rotate(from: installation.masterFile, to: newFile) + ["--scheme", "keep"])
            .report
        #expect(report["scheme"] as? String == "keep")
        #expect((report["total"] as? [String: Any])?["rotated"] as? Int == manifest.groups.reduce(0) { $0 + $1.values })
        try installation.expectPeerOpensEverything(under: new)
        let verify = try installation.run("verify-keys", ["verify-keys", "--db", installation.db, "--master-key-file", newFile]).report
        installation.expectVerifyCounts(verify)
        let legacy = (verify["groups"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["legacy"] as? Int ?? -1) }
        #expect(legacy == manifest.groups.filter { $0.table != "tenants" }.reduce(0) { $0 + $1.v1 }, "legacy values kept: \(legacy)")
        try installation.validateReports()
    }

    // MARK: 3. the sqlx era

    @Test("v0.0.45 without --secrets-file: rotated, with a warning naming --secrets-file on stderr and in the report's warnings")
    func sqlxEraWarnsWithoutSecretsFile() throws {
        let installation = try Installation(.v45, .sqlite)
        let new = MasterKey.generate()
        let newFile = try installation.keyFile(new, "new.key")
        let ran = try installation.run("rotate", installation.rotate(from: installation.masterFile, to: newFile))
        let warnings = ran.report["warnings"] as? [String] ?? []
        #expect(warnings.count == 1 && warnings.allSatisfy { $0.contains("--secrets-file") }, "\(warnings)")
        #expect(ran.result.stderr.contains("warning") && ran.result.stderr.contains("--secrets-file"), "\(ran.result.stderr)")
        #expect(ran.report["secrets_file"] == nil)
        // Never "every stored secret" while the file may hold some: the next step says not to switch yet.
        let next = ran.report["next_step"] as? String ?? ""
        #expect(!next.contains("every stored secret") && next.contains("not the secrets file") && next.contains("do not switch"), "\(next)")
        try installation.expectPeerOpensEverything(under: new)
        // The file was not touched: still under the old key.
        let file =
            try installation.peer(installation.master, secretsFile: installation.secretsFile).report["secrets_file"] as? [String: Any]
        #expect(file?["opened"] as? Bool == true)
        try installation.validateReports()
    }

    @Test("v0.0.45: --scheme v2 is refused (64), to a new key or the same, and nothing changes")
    func sqlxEraRefusesSchemeV2() throws {
        let installation = try Installation(.v45, .sqlite)
        let newFile = try installation.keyFile(MasterKey.generate(), "new.key")
        let before = try installation.state()
        let fileBefore = try Data(contentsOf: URL(fileURLWithPath: installation.secretsFile))
        for arguments in [
            installation.rotate(from: installation.masterFile, to: newFile) + ["--secrets-file", installation.secretsFile],
            installation.rotate(from: installation.masterFile, to: installation.masterFile)
        ] {
            let refused = try installation.run("failure", arguments + ["--scheme", "v2"], status: 64)
            let message = (refused.report["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains("--scheme v2") && message.contains("sqlx"), "\(message)")
            #expect(try installation.state() == before, "a refused --scheme v2 changed the database")
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: installation.secretsFile)) == fileBefore,
                "a refused --scheme v2 changed the secrets file")
            #expect(!FileManager.default.fileExists(atPath: installation.secretsFile + ".toolcfg-rotating"))
        }
        try installation.expectPeerOpensEverything(under: installation.master, secretsFile: installation.secretsFile)
        try installation.validateReports()
    }

    // MARK: 4. the secrets file's crash order

    enum CrashAt: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case staged = "secrets-file-staged"
        case committed = "database-committed"
        var testDescription: String { rawValue }
    }

    struct Launched {
        var killed: Bool
        var status: Int32
        var stderr: String
        /// From start to exit, in microseconds.
        var elapsed: Double
    }

    /// Runs toolcfg with `environment` added; `killAfter` microseconds, SIGKILLs it if it still runs.
    static func launch(
        _ arguments: [String], environment extra: [String: String] = [:], killAfter: UInt32? = nil,
        folder: TemporaryFolder
    ) throws -> Launched {
        var environment = ProcessInfo.processInfo.environment
        for name in ["TOOLCFG_DB", "TOOLCFG_MASTER_KEY", "TOOLCFG_NEW_MASTER_KEY", "TOOLCFG_PASSPHRASE", "TOOLCFG_TEST_CRASH_AT"] {
            environment[name] = nil
        }
        environment.merge(extra) { _, new in new }
        let stderrPath = folder.path("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let process = Process()
        process.executableURL = Repository.toolcfg
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        let clock = ContinuousClock()
        let started = clock.now
        try process.run()
        if let killAfter {
            usleep(killAfter)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let elapsed = clock.now - started
        let killed = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
        return Launched(
            killed: killed, status: process.terminationStatus,
            stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "",
            elapsed: Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12)
    }

    @Test(
        """
        v0.0.45, SIGKILL at each crash point of rotate --secrets-file: the state left is the documented one, \
        and the same command again finishes it
        """,
        arguments: CrashAt.allCases)
    func secretsFileCrashOrder(_ point: CrashAt) throws {
        // 0660: a mode the usual umask (022) would cut, so a staged copy created without setting
        // its mode explicitly shows here.
        let installation = try Installation(.v45, .sqlite, secretsFileMode: 0o660)
        let new = MasterKey.generate()
        let newFile = try installation.keyFile(new, "new.key")
        let command = installation.rotate(from: installation.masterFile, to: newFile) + ["--secrets-file", installation.secretsFile]
        let side = installation.secretsFile + ".toolcfg-rotating"

        let crashed = try Self.launch(command, environment: ["TOOLCFG_TEST_CRASH_AT": point.rawValue], folder: installation.folder)
        #expect(
            crashed.killed,
            "rotate did not die of SIGKILL at \(point.rawValue) (a DEBUG build is needed): exit \(crashed.status): \(crashed.stderr)")
        switch point {
        case .staged:
            // Before the commit: the old key everywhere, the new file written beside the old one.
            try installation.expectPeerOpensEverything(under: installation.master, secretsFile: installation.secretsFile)
            #expect(FileManager.default.fileExists(atPath: side), "no \(side) after a crash once it was staged")
            if FileManager.default.fileExists(atPath: side) {
                // What was staged is the file under the new key, complete and synced.
                let staged = try installation.peer(new, secretsFile: side).report["secrets_file"] as? [String: Any]
                #expect(
                    staged?["opened"] as? Bool == true && staged?["digest"] as? String == installation.secretsManifest.digest,
                    "\(staged ?? [:])")
            }
        case .committed:
            // After the commit, before the rename: the database under the new key, the file under the old.
            try installation.expectPeerOpensEverything(under: new)
            let file =
                try installation.peer(installation.master, secretsFile: installation.secretsFile).report["secrets_file"] as? [String: Any]
            #expect(file?["opened"] as? Bool == true && file?["digest"] as? String == installation.secretsManifest.digest, "\(file ?? [:])")
        }
        #expect(Self.mode(installation.secretsFile) == 0o660)

        // The same command again, without the crash: everything under the new key.
        let rerun = try Self.launch(command, folder: installation.folder)
        #expect(!rerun.killed && rerun.status == 0, "the rerun: exit \(rerun.status): \(rerun.stderr)")
        try installation.expectPeerOpensEverything(under: new, secretsFile: installation.secretsFile)
        try installation.expectPeerOpensNothing(under: installation.master, secretsFile: installation.secretsFile)
        #expect(!FileManager.default.fileExists(atPath: side), "\(side) left behind after the rerun")
        #expect(
            Self.mode(installation.secretsFile) == 0o660,
            "the secrets file's mode changed from 660 to \(Self.octal(Self.mode(installation.secretsFile))) (umask on the staged copy?)"
        )
    }

    @Test(
        """
        v0.0.45, rotate --secrets-file killed at random moments: the file is never ahead of the database, \
        and a rerun always ends under one key
        """,
        .timeLimit(.minutes(1)))
    func secretsFileRandomKills() throws {
        let installation = try Installation(.v45, .sqlite)
        var old = installation.master, new = MasterKey.generate()
        var oldFile = installation.masterFile, newFile = try installation.keyFile(new, "new.key")
        let side = installation.secretsFile + ".toolcfg-rotating"
        func command(_ from: String, _ to: String) -> [String] {
            installation.rotate(from: from, to: to) + ["--secrets-file", installation.secretsFile]
        }

        // One uninterrupted run there and back on a twin times the whole command; every later run
        // that does the whole work and is not killed times it again (the load of the tests beside
        // this one comes and goes).
        let twin = try Installation(.v45, .sqlite)
        let twinNew = try twin.keyFile(new, "new.key")
        var whole = try [(twin.masterFile, twinNew), (twinNew, twin.masterFile)].map { from, to in
            let run = try Self.launch(twin.rotate(from: from, to: to) + ["--secrets-file", twin.secretsFile], folder: twin.folder)
            #expect(run.status == 0 && !run.killed, "\(run.stderr)")
            return run.elapsed
        }.min()!

        /// Where the database's values and the file are: "old", "new" or "mixed".
        func where_() throws -> (database: String, file: String) {
            let result = try toolcfg([
                "verify-keys", "--db", installation.db, "--master-key-file", oldFile, "--new-master-key-file", newFile,
                "--secrets-file", installation.secretsFile, "--json"
            ])
            guard result.status == 0,
                let report = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            else {
                let reason = "verify-keys exited \(result.status): \(result.stderr)"
                return (reason, reason)
            }
            let groups = installation.manifest.groups, found = Self.groups(report)
            let allOld = groups.allSatisfy { found[$0.name]?["under_master_key"] as? Int == $0.values }
            let allNew = groups.allSatisfy { found[$0.name]?["under_new_master_key"] as? Int == $0.values }
            let file = (report["secrets_file"] as? [String: Any])?["under"] as? String
            return (
                allOld ? "old" : allNew ? "new" : "mixed: \(report["groups"] ?? "")",
                file == "master_key" ? "old" : file == "new_master_key" ? "new" : "\(file ?? "unreadable")"
            )
        }

        var log: [String] = []
        var killedRunning = 0
        let iterations = 8
        for iteration in 1...iterations {
            // Odd runs are killed anywhere; even ones in the last sixth and a little beyond, where
            // the commit and the rename are.
            let wholeNow = max(5_000, whole)
            let delay = UInt32(
                iteration % 2 == 1
                    ? Double.random(in: 1_000...wholeNow)
                    : Double.random(in: wholeNow * 5 / 6...wholeNow * 1.1))
            let run = try Self.launch(command(oldFile, newFile), killAfter: delay, folder: installation.folder)
            if run.killed {
                killedRunning += 1
            } else {
                #expect(run.status == 0, "iteration \(iteration): exit \(run.status): \(run.stderr)")
                whole = run.elapsed
            }
            let state = try where_()
            log.append(
                "\(iteration): \(delay / 1000) of \(Int(wholeNow) / 1000) ms, \(run.killed ? "killed" : "exited \(run.status)"), "
                    + "database \(state.database), file \(state.file)"
            )
            #expect(state.database == "old" || state.database == "new", "iteration \(iteration): \(state.database)")
            #expect(state.file == "old" || state.file == "new", "iteration \(iteration): the file is \(state.file)")
            #expect(
                !(state.file == "new" && state.database == "old"),
                "iteration \(iteration): the file was renamed before the database committed")

            let rerun = try Self.launch(command(oldFile, newFile), folder: installation.folder)
            #expect(!rerun.killed && rerun.status == 0, "iteration \(iteration), the rerun: exit \(rerun.status): \(rerun.stderr)")
            if state.database == "old" && state.file == "old" && rerun.status == 0 { whole = rerun.elapsed }
            let after = try where_()
            #expect(
                after.database == "new" && after.file == "new",
                "iteration \(iteration), after the rerun: database \(after.database), file \(after.file)")
            #expect(!FileManager.default.fileExists(atPath: side), "iteration \(iteration): \(side) left behind")
            guard after.database == "new" && after.file == "new" else { break }
            swap(&old, &new)
            swap(&oldFile, &newFile)
        }
        print("secrets file kills: \(killedRunning) of \(iterations) killed while running; \(log.joined(separator: "; "))")
        #expect(killedRunning >= 2, "only \(killedRunning) of \(iterations) kills landed while rotate ran: \(log)")
        try installation.expectPeerOpensEverything(under: old, secretsFile: installation.secretsFile)
        #expect(Self.mode(installation.secretsFile) == 0o640)
    }

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
