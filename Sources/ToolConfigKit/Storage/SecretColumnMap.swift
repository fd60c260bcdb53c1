/// Where a database keeps secrets under the master key: one model for rotate, verify-keys, the
/// import's key check and backups. A rotation that missed a group would leave its secrets under
/// the old key, lost once that key is discarded, so the map fails closed: a column that looks
/// like a secret and that no group accounts for stops the run before anything changes.
///
/// Groups come from, in this order:
/// 1. `--secret-columns TABLE:CIPHERTEXT,SALT,NONCE`, the operator's word (overrides the others
///    for that ciphertext column);
/// 2. the application's known groups (`application`), where the table has those columns;
/// 3. the naming rule, for any other `encrypted_X` column: its salt is the one column present of
///    `X_salt`, `salt_X`, `<first word of X>_salt` or `salt` (the same for the nonce), not already
///    taken by a group; none or several present is no pairing.
/// Then every table is checked: an `encrypted_*` column that is no group's ciphertext, or a table
/// with both salt-like and nonce-like columns (`*salt*`, `*nonce*`) that no group takes, is
/// refused (`UnaccountedSecretColumnsError`).
public struct SecretColumnMap: Sendable {
    /// The application's groups, from its own schema (`app-secrets.md`: BodhiApp v0.0.40 to
    /// v0.0.59), and this toolkit's user_tool_configs. Kept here as data, in one place.
    public static let application: [(table: String, ciphertext: String, salt: String, nonce: String)] = [
        ("api_model_aliases", "encrypted_api_key", "salt", "nonce"),
        ("toolsets", "encrypted_api_key", "salt", "nonce"),
        ("user_tool_configs", "encrypted_api_key", "salt", "nonce"),
        ("tenants", "encrypted_client_secret", "salt_client_secret", "nonce_client_secret"),
        ("mcp_oauth_tokens", "encrypted_access_token", "access_token_salt", "access_token_nonce"),
        ("mcp_oauth_tokens", "encrypted_refresh_token", "refresh_token_salt", "refresh_token_nonce"),
        ("mcp_oauth_config_details", "encrypted_client_secret", "client_secret_salt", "client_secret_nonce"),
        (
            "mcp_oauth_config_details", "encrypted_registration_access_token", "registration_access_token_salt",
            "registration_access_token_nonce"
        ),
        ("mcp_auth_params", "encrypted_value", "value_salt", "value_nonce"),
        // v0.0.46 only (dropped by m016 in v0.0.47).
        ("mcp_auth_headers", "encrypted_header_value", "header_value_salt", "header_value_nonce"),
        ("mcp_oauth_configs", "encrypted_client_secret", "client_secret_salt", "client_secret_nonce"),
        ("mcp_oauth_configs", "encrypted_registration_access_token", "registration_access_token_salt", "registration_access_token_nonce"),
        ("api_model_oauth_credentials", "encrypted_access_token", "access_salt", "access_nonce"),
        ("api_model_oauth_credentials", "encrypted_refresh_token", "refresh_salt", "refresh_nonce")
    ]

    /// The only table whose v1 values an application of v0.0.59 or later still reads (it
    /// upgrades them at start); everywhere else it refuses them.
    public static let legacyReadableTable = "tenants"

    public var declared: [SecretColumnDeclaration]

    public init(declared: [SecretColumnDeclaration] = []) {
        self.declared = declared
    }

    /// The groups of `tables`, by table and then in column order. `lenient` skips what cannot
    /// be accounted for instead of refusing it (a check that only samples, never a rotation).
    public func groups(in tables: [TableColumns], lenient: Bool = false) throws -> [SecretColumnGroup] {
        for declaration in declared {
            guard let table = tables.first(where: { $0.table == declaration.table }) else {
                throw UsageError("--secret-columns \(declaration.text): the database has no table \(declaration.table)")
            }
            let missing = declaration.columns.filter { table.column($0) == nil }
            guard missing.isEmpty else {
                throw UsageError(
                    "--secret-columns \(declaration.text): table \(declaration.table) has no column \(missing.joined(separator: ", "))")
            }
        }
        // Two declarations sharing a column would leave one of them out, unseen.
        for (index, declaration) in declared.enumerated() {
            for other in declared[..<index] where other.table == declaration.table {
                let shared = declaration.columns.filter { column in other.columns.contains { $0.lowercased() == column.lowercased() } }
                guard shared.isEmpty else {
                    throw UsageError(
                        "--secret-columns \(declaration.text) and \(other.text) share \(shared.joined(separator: ", ")): "
                            + "a column holds one group's part"
                    )
                }
            }
        }
        var found: [SecretColumnGroup] = []
        var unaccounted: [UnaccountedSecretColumnsError.Table] = []
        for table in tables {
            let (groups, left) = Self.groups(of: table, declared: declared.filter { $0.table == table.table })
            found += groups
            if let left { unaccounted.append(left) }
        }
        if !unaccounted.isEmpty && !lenient { throw UnaccountedSecretColumnsError(tables: unaccounted) }
        return found
    }

    /// One table's groups, and what in it looks like a secret but belongs to none.
    static func groups(of table: TableColumns, declared: [SecretColumnDeclaration]) -> (
        [SecretColumnGroup], UnaccountedSecretColumnsError.Table?
    ) {
        var groups: [SecretColumnGroup] = []
        var taken = Set<String>()
        func add(_ ciphertext: String, _ salt: String, _ nonce: String, _ origin: SecretColumnGroup.Origin) {
            let names = [ciphertext, salt, nonce].map { table.column($0)?.name ?? $0 }
            guard names.allSatisfy({ !taken.contains($0.lowercased()) }) else { return }
            taken.formUnion(names.map { $0.lowercased() })
            let nullable = names.contains { table.column($0)?.notNull != true }
            let id = table.primaryKey.count == 1 ? table.primaryKey[0] : table.column("id")?.name
            groups.append(
                SecretColumnGroup(
                    table: table.table, ciphertext: names[0], salt: names[1], nonce: names[2], nullable: nullable,
                    idColumn: id, origin: origin))
        }
        for declaration in declared {
            add(declaration.ciphertext, declaration.salt, declaration.nonce, .declared)
        }
        for known in application
        where known.table == table.table
            && [known.ciphertext, known.salt, known.nonce].allSatisfy({ table.column($0) != nil })
        {
            add(known.ciphertext, known.salt, known.nonce, .application)
        }
        var ambiguous: [String] = []
        for column in table.columns where isCiphertextLike(column.name) && !taken.contains(column.name.lowercased()) {
            let subject = String(column.name.dropFirst("encrypted_".count))
            let salt = pairing(for: subject, part: "salt", in: table, taken: taken)
            let nonce = pairing(for: subject, part: "nonce", in: table, taken: taken)
            if salt.count == 1, nonce.count == 1 {
                add(column.name, salt[0], nonce[0], .namingRule)
            } else {
                ambiguous.append("\(column.name): salt \(describe(salt)), nonce \(describe(nonce))")
            }
        }
        let free = table.columns.map(\.name).filter { !taken.contains($0.lowercased()) }
        let ciphertexts = free.filter(isCiphertextLike)
        let salts = free.filter { $0.lowercased().contains("salt") }
        let nonces = free.filter { $0.lowercased().contains("nonce") }
        guard !ciphertexts.isEmpty || (!salts.isEmpty && !nonces.isEmpty) else { return (groups, nil) }
        return (groups, .init(table: table.table, ciphertexts: ciphertexts, salts: salts, nonces: nonces, pairings: ambiguous))
    }

    private static func isCiphertextLike(_ column: String) -> Bool {
        column.lowercased().hasPrefix("encrypted_") && column.count > "encrypted_".count
    }

    /// The columns of `table`, not yet taken, that the naming rule would pair with `encrypted_X`
    /// as its salt (or nonce).
    private static func pairing(for subject: String, part: String, in table: TableColumns, taken: Set<String>) -> [String] {
        let firstWord = subject.split(separator: "_").first.map(String.init) ?? subject
        var candidates: [String] = []
        for name in ["\(subject)_\(part)", "\(part)_\(subject)", "\(firstWord)_\(part)", part] {
            if let column = table.column(name), !taken.contains(column.name.lowercased()), !candidates.contains(column.name) {
                candidates.append(column.name)
            }
        }
        return candidates
    }

    private static func describe(_ candidates: [String]) -> String {
        candidates.isEmpty ? "none found" : candidates.count == 1 ? candidates[0] : "ambiguous (\(candidates.joined(separator: ", ")))"
    }
}

/// One `--secret-columns TABLE:CIPHERTEXT,SALT,NONCE`.
public struct SecretColumnDeclaration: Sendable, Hashable {
    public var table: String
    public var ciphertext: String
    public var salt: String
    public var nonce: String

    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let columns = parts.count == 2 ? parts[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
        guard parts.count == 2, !parts[0].isEmpty, columns.count == 3, columns.allSatisfy({ !$0.isEmpty }) else {
            throw UsageError(
                "--secret-columns \(text): expected TABLE:CIPHERTEXT,SALT,NONCE (e.g. tokens:encrypted_token,token_salt,token_nonce)")
        }
        guard Set(columns.map { $0.lowercased() }).count == 3 else {
            throw UsageError("--secret-columns \(text): the ciphertext, salt and nonce must be three different columns")
        }
        table = String(parts[0])
        (ciphertext, salt, nonce) = (columns[0], columns[1], columns[2])
    }

    var columns: [String] { [ciphertext, salt, nonce] }
    var text: String { "\(table):\(columns.joined(separator: ","))" }
}

/// Columns that look like secrets under the master key and that no group accounts for: a
/// rotation would leave them under the old key, so nothing runs.
public struct UnaccountedSecretColumnsError: ToolcfgError {
    public struct Table: Sendable {
        public var table: String
        public var ciphertexts: [String]
        public var salts: [String]
        public var nonces: [String]
        /// Why the naming rule paired no salt and nonce with a ciphertext column.
        public var pairings: [String]
    }

    public var tables: [Table]

    public var exitStatus: ExitStatus { .dataError }
    public var description: String {
        let each = tables.map { table in
            var parts: [String] = []
            if !table.ciphertexts.isEmpty { parts.append("column \(table.ciphertexts.joined(separator: ", "))") }
            if !table.salts.isEmpty && !table.nonces.isEmpty {
                parts.append("salt-like \(table.salts.joined(separator: ", ")) and nonce-like \(table.nonces.joined(separator: ", "))")
            }
            let why = table.pairings.isEmpty ? "" : " (\(table.pairings.joined(separator: "; ")))"
            return "table \(table.table): \(parts.joined(separator: ", "))\(why)"
        }
        let example =
            tables.first.map {
                "\($0.table):\($0.ciphertexts.first ?? "CIPHERTEXT"),\($0.salts.first ?? "SALT"),\($0.nonces.first ?? "NONCE")"
            } ?? ""
        return "secrets that no known column group accounts for: \(each.joined(separator: "; ")); "
            + "nothing was changed: declare each group with --secret-columns TABLE:CIPHERTEXT,SALT,NONCE (e.g. --secret-columns \(example))"
    }
    public var errorContext: ErrorContext {
        ErrorContext(field: tables.first.flatMap { $0.ciphertexts.first ?? $0.salts.first }, table: tables.first?.table)
    }
}
