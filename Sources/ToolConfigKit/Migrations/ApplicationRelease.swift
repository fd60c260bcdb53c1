/// Which releases of the application a database can belong to, from its ledger (sqlx's up to
/// v0.0.45, sea-orm's from v0.0.46, and the newest migration in it) and the scheme of its stored
/// values (v2 from v0.0.59, which also upgrades tenants' values at start). `migrate status` and
/// the rotation report show it: an operator rotating a v0.0.45 installation must also rotate its
/// secrets file, and one on v0.0.59 needs its legacy values upgraded.
public struct ApplicationRelease: Sendable, Codable, Equatable {
    /// sqlx, sea-orm, or nil (no ledger of the application's).
    public var ledger: String?
    /// The newest of the application's migrations in the ledger.
    public var newestMigration: String?
    /// The releases it fits: "v0.0.40 - v0.0.45", "v0.0.59 or later", "unknown".
    public var releases: String
    /// Whether those releases read scheme v2 (v0.0.59 on, which also refuses v1 outside
    /// tenants); nil when the range spans both.
    public var readsV2: Bool?
    /// Whether those releases keep secrets in `$BODHI_HOME/secrets.yaml` too (up to v0.0.45).
    public var hasSecretsFile: Bool
    /// How the range was told, or why not.
    public var basis: String

    /// sea-orm's ledger: the application's from v0.0.46 on (sqlx's `_sqlx_migrations` before).
    public static let seaORMLedger = "seaql_migrations"

    /// The application's sqlx migrations (v0.0.40 to v0.0.45, as sqlx names them), by version:
    /// an `_sqlx_migrations` holding one of them is the application's.
    static let sqlxMigrations: [Int64: String] = [
        1: "download-requests", 2: "pending-access-requests", 3: "create api tokens", 4: "api models",
        5: "api model forward all", 6: "model metadata", 7: "toolsets config", 8: "user aliases",
        9: "app access requests", 10: "mcp servers", 11: "mcp auth headers", 12: "mcp oauth", 13: "settings", 14: "apps"
    ]

    /// The application's sea-orm migrations in order, with the release that first shipped each
    /// where it is known (from the releases' table eras; `fixtures/app-eras/releases.json`).
    static let seaORMMigrations: [(name: String, firstRelease: Int?)] = [
        ("m20250101_000000_extensions", 46), ("m20250101_000001_download_requests", 46), ("m20250101_000002_api_model_aliases", 46),
        ("m20250101_000003_model_metadata", 46), ("m20250101_000004_access_requests", 46), ("m20250101_000005_api_tokens", 46),
        ("m20250101_000006_toolsets", 46), ("m20250101_000007_app_toolset_configs", 46), ("m20250101_000008_user_aliases", 46),
        ("m20250101_000009_app_access_requests", 46), ("m20250101_000010_mcp_servers", 46), ("m20250101_000011_mcp_auth_headers", 46),
        ("m20250101_000012_mcp_oauth", 46), ("m20250101_000013_settings", 46), ("m20250101_000014_tenants", 46),
        ("m20250101_000015_tenants_users", nil), ("m20250101_000016_mcp_auth_redesign", 47), ("m20250101_000017_drop_toolsets", 49),
        ("m20250101_000018_drop_mcp_tools_columns", nil), ("m20250101_000019_drop_models_cache", nil),
        ("m20250101_000020_api_alias_extra_fields", nil), ("m20250101_000021_api_model_oauth_credentials", 53),
        ("m20250101_000022_model_router_aliases", nil), ("m20250101_000023_api_alias_name", nil),
        ("m20250101_000024_download_archived_at", nil),
        ("m20250101_000025_token_grants", nil), ("m20250101_000026_drop_app_access_request_flow_columns", nil),
        ("m20250101_000027_app_access_request_source_id", nil)
    ]
    /// The last release with sqlx; the first with scheme v2.
    static let lastSQLxRelease = 45, firstV2Release = 59

    /// From the ledgers' contents and the stored values' schemes (`tenantsV1`: tenants still
    /// holds v1 values, which v0.0.59 upgrades when it starts).
    static func detect(
        sqlxEntries: [(version: Int64, description: String)]?, seaORMVersions: [String]?,
        schemes: [SecretScheme: Int], tenantsV1: Bool
    ) -> ApplicationRelease {
        let v2 = (schemes[.v2] ?? 0) > 0
        if let applied = seaORMVersions {
            let known = Set(seaORMMigrations.map(\.name))
            let newest = applied.max()
            if let unknown = applied.filter({ !known.contains($0) }).max() {
                return ApplicationRelease(
                    ledger: "sea-orm", newestMigration: newest, releases: "newer than v0.0.\(firstV2Release)", readsV2: true,
                    hasSecretsFile: false,
                    basis: "the ledger holds \(unknown), which toolcfg does not know: a release after v0.0.\(firstV2Release)")
            }
            // Shipped by the newest applied migration's release at the earliest; before the first
            // later migration's release.
            guard let newestIndex = seaORMMigrations.lastIndex(where: { applied.contains($0.name) }) else {
                return ApplicationRelease(
                    ledger: "sea-orm", newestMigration: newest, releases: "unknown", readsV2: nil, hasSecretsFile: false,
                    basis: "a sea-orm ledger without the application's migrations")
            }
            let low = seaORMMigrations[...newestIndex].compactMap(\.firstRelease).max() ?? 46
            var high = seaORMMigrations[(newestIndex + 1)...].compactMap(\.firstRelease).min().map { $0 - 1 }
            var basis = "sea-orm ledger, newest \(newest ?? "none")"
            if high == nil {
                // Every migration up to v0.0.59's: the values tell v0.0.58 from v0.0.59.
                if v2 {
                    return ApplicationRelease(
                        ledger: "sea-orm", newestMigration: newest, releases: "v0.0.\(firstV2Release) or later", readsV2: true,
                        hasSecretsFile: false,
                        basis: basis + "; values in scheme v2")
                }
                if tenantsV1 {
                    high = firstV2Release - 1
                    basis += "; tenants' secrets still in scheme v1 (v0.0.\(firstV2Release) upgrades them at start)"
                } else {
                    basis += (schemes[.v1] ?? 0) > 0 ? "; values in scheme v1 only" : "; no stored values tell the scheme"
                }
            }
            let releases = high.map { low == $0 ? "v0.0.\(low)" : "v0.0.\(low) - v0.0.\($0)" } ?? "v0.0.\(low) or later"
            return ApplicationRelease(
                ledger: "sea-orm", newestMigration: newest, releases: releases,
                readsV2: high.map { $0 >= firstV2Release }, hasSecretsFile: false, basis: basis)
        }
        if let entries = sqlxEntries, let newest = entries.filter({ sqlxMigrations[$0.version] == $0.description }).map(\.version).max() {
            return ApplicationRelease(
                ledger: "sqlx", newestMigration: "\(newest) \(sqlxMigrations[newest] ?? "")",
                releases: "v0.0.40 - v0.0.\(lastSQLxRelease)", readsV2: false, hasSecretsFile: true,
                basis: "sqlx ledger with the application's migrations"
                    + (v2 ? "; yet values in scheme v2, which no sqlx release wrote" : ""))
        }
        return ApplicationRelease(
            ledger: nil, newestMigration: nil, releases: "unknown", readsV2: nil, hasSecretsFile: false,
            basis: sqlxEntries == nil ? "no ledger of the application's" : "a sqlx ledger without the application's migrations")
    }
}

extension ApplicationRelease {
    /// Reads the ledgers, and counts the stored values' schemes (every group the map can account
    /// for; a read of each ciphertext column) unless given the counts (`values`: a rotation has
    /// just read every value).
    public static func detect(_ database: any DatabaseReader, values: StoredSchemes? = nil) throws -> ApplicationRelease {
        let store = database.ledgerReader()
        let ledger = MigrationLedger(store: store)
        // A _sqlx_migrations of another shape is no ledger of the application's (migrate refuses it).
        let sqlx = try ledger.exists ? (try? store.ledgerEntries())?.map { ($0.version, $0.description) } : nil
        // What the values say only where every row of them can be read (row-level security
        // hides some from a role; a WITHOUT ROWID table cannot be scanned by row): else the ledger alone.
        var stored = values
        if stored == nil {
            do {
                try database.requireEveryRowVisible(in: database.secretGroups(lenient: true).map(\.table).uniqued())
                stored = try database.storedSchemes()
            } catch {
                stored = nil
            }
        }
        var release = detect(
            sqlxEntries: sqlx, seaORMVersions: try store.seaORMLedger()?.map(\.version),
            schemes: [.v1: stored?.count(.v1) ?? 0, .v2: stored?.count(.v2) ?? 0],
            tenantsV1: (stored?.byTable[SecretColumnMap.legacyReadableTable]?[.v1] ?? 0) > 0)
        if stored == nil { release.basis += "; the stored values could not all be read, so their schemes are not counted" }
        return release
    }
}
