import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// The application's PostgreSQL version enables and forces row-level security on its tenant
/// tables: a role without BYPASSRLS sees one tenant's rows, or none. toolcfg must refuse rather
/// than act on a subset as if it were the whole.
@Suite("PostgreSQL row-level security", .enabled(if: PostgresTestServer.shouldRun, PostgresTestServer.skipReason))
struct PostgresRowLevelSecurityTests {
    /// The application's tables with a forced tenant policy on api_model_aliases, two tenants'
    /// rows, and a role of the test's own (no BYPASSRLS; roles belong to the whole server) that
    /// may read and write them. `drop` removes both.
    static func tenantDatabase() throws -> (database: ScratchPostgresDatabase, role: String, drop: () -> Void) {
        let database = try ScratchPostgresDatabase()
        let role = "tenant_" + database.name.suffix(12)
        let owner = try database.connect()
        _ = try Migrator(database: owner, migrations: try .embeddedPostgres()).up()
        let master = try key(TestMasterKeys.valid)
        let secret = try SecretCipher.encrypt("sk-tenant", masterKey: master)
        try owner.execute(
            """
            CREATE TABLE api_model_aliases (
                id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL,
                encrypted_api_key TEXT NOT NULL, salt TEXT NOT NULL, nonce TEXT NOT NULL);
            ALTER TABLE api_model_aliases ENABLE ROW LEVEL SECURITY;
            ALTER TABLE api_model_aliases FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_rows ON api_model_aliases
                USING (tenant_id = current_setting('app.current_tenant_id', true));
            CREATE ROLE \(role) LOGIN;
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \(role);
            """)
        for tenant in ["a", "b"] {
            try owner.query(
                "INSERT INTO api_model_aliases VALUES ($1, $2, $3, $4, $5)",
                [.text("alias-\(tenant)"), .text(tenant), .text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce)])
        }
        owner.close()
        return (
            database, role,
            {
                database.drop()
                try? PostgresConnection(url: try! PostgresURL(PostgresTestServer.url!)).execute("DROP ROLE IF EXISTS \(role)")
            }
        )
    }

    static func connect(_ database: ScratchPostgresDatabase, as role: String) throws -> PostgresConnection {
        try PostgresConnection(url: try PostgresURL(database.url.text + (database.url.text.contains("?") ? "&" : "?") + "user=\(role)"))
    }

    @Test(
        """
        a role without BYPASSRLS is refused (77) by verify-keys, import and rotate, naming the table; \
        a superuser or a BYPASSRLS role is not
        """
    )
    func refusedWithoutBypass() throws {
        let (database, role, drop) = try Self.tenantDatabase()
        defer { drop() }
        let tenant = try Self.connect(database, as: role)
        // What the role would see: nothing at all without a tenant setting.
        #expect(try tenant.queryInt64("SELECT count(*) FROM api_model_aliases") == 0)
        let master = try key(TestMasterKeys.valid)
        let folder = try TemporaryFolder()
        let input = folder.path("in.csv")
        try Data("user_id,tool_id,api_key\nu,t,sk-new\n".utf8).write(to: URL(fileURLWithPath: input))
        let attempts: [(String, () throws -> Void)] = [
            ("verify-keys", { _ = try KeyVerifier(database: tenant, masterKey: master, jobs: 2).run() }),
            (
                "import",
                { _ = try Importer(database: tenant, options: .init(input: input, format: .csv, masterKey: master, jobs: 2)).run() }
            ),
            (
                "rotate",
                { _ = try KeyRotator(database: tenant, options: .init(oldKey: master, newKey: MasterKey.generate(), jobs: 2)).run() }
            )
        ]
        for (name, attempt) in attempts {
            let error = thrownError(attempt) as? RowLevelSecurityError
            #expect(error?.tables == ["api_model_aliases"], "\(name)")
            #expect(error?.exitStatus == .noPermission && error?.description.contains("BYPASSRLS") == true, "\(name)")
        }
        // The table-owning superuser of the test server sees every row: nothing to refuse.
        let owner = try database.connect()
        #expect(thrownError { try owner.requireEveryRowVisible(in: ["api_model_aliases", "user_tool_configs"]) } == nil)
        // And a role given BYPASSRLS is let through.
        try owner.execute("ALTER ROLE \(role) BYPASSRLS")
        let bypassing = try Self.connect(database, as: role)
        #expect(thrownError { try bypassing.requireEveryRowVisible(in: ["api_model_aliases", "user_tool_configs"]) } == nil)
    }

    @Test("security on user_tool_configs itself is refused for export too")
    func toolConfigTableUnderSecurity() throws {
        let (database, role, drop) = try Self.tenantDatabase()
        defer { drop() }
        let owner = try database.connect()
        try owner.execute(
            """
            ALTER TABLE user_tool_configs ENABLE ROW LEVEL SECURITY;
            ALTER TABLE user_tool_configs FORCE ROW LEVEL SECURITY;
            CREATE POLICY own_rows ON user_tool_configs USING (user_id = current_user);
            """)
        let tenant = try Self.connect(database, as: role)
        let error =
            thrownError { try tenant.requireEveryRowVisible(in: [ToolConfigTable.name, "api_model_aliases"]) } as? RowLevelSecurityError
        #expect(error?.tables == ["api_model_aliases", "user_tool_configs"])
        let folder = try TemporaryFolder()
        let export = thrownError { _ = try Exporter(database: tenant, options: .init(output: folder.path("out.csv"), format: .csv)).run() }
        #expect((export as? RowLevelSecurityError)?.tables == ["user_tool_configs"], "\(String(describing: export))")
    }
}
