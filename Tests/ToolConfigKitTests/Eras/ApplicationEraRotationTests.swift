import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

extension ApplicationEraTests {
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
        v0.0.58 on PostgreSQL: --make-room gives each table room for one new version of each row (fillfactor 50, also with two \
        groups, which one UPDATE writes), and the rotation covers every group
        """,
        .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
    func makeRoomForEveryTable() throws {
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
        #expect(groupsPerTable.values.contains { $0 > 1 }, "no table with two groups: \(groupsPerTable)")
        for table in groupsPerTable.keys {
            #expect(fillfactors[table] == 50, "\(table): \(fillfactors[table] ?? -1)")
            let stored = try installation.queryText("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = '\(table)'")
            #expect(stored == "fillfactor=50", "\(table): \(stored ?? "none")")
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
}
