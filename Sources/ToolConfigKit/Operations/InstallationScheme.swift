/// The scheme an import encrypts plaintext keys in: the one the installation's stored values are
/// in, so that the application reads what is imported (v0.0.58 cannot read v2; v0.0.59 refuses
/// v1 outside tenants). When the values do not tell (none, or both schemes), the ledger may: a
/// sqlx-era database is v1 (sea-orm and v2 came later); else the operator says with `--scheme`.
enum InstallationScheme {
    /// The scheme to encrypt in, or why none can be chosen (a usage error when a key has to be
    /// encrypted). `asked` is `--scheme`; asking for the scheme the values are not in is refused
    /// at once.
    static func decide(_ database: any Database, asked: SecretScheme?) throws -> Result<SecretScheme, UsageError> {
        let values = try database.storedSchemes()
        let (v1, v2) = (values.count(.v1), values.count(.v2))
        let stored: SecretScheme? = v1 > 0 && v2 == 0 ? .v1 : v2 > 0 && v1 == 0 ? .v2 : nil
        if let asked {
            if let stored, stored != asked {
                throw UsageError(
                    "--scheme \(asked.rawValue): every stored value (\(stored == .v1 ? v1 : v2)) is in scheme \(stored.rawValue), "
                        + "which is what the application reads; importing \(asked.rawValue) values would leave some it "
                        + (asked == .v2 ? "cannot read (v0.0.58 and before)" : "refuses (v0.0.59 and later)")
                        + ". Leave --scheme out, or first rotate --scheme \(asked.rawValue) with the same key; nothing was written")
            }
            return .success(asked)
        }
        if let stored { return .success(stored) }
        if v1 > 0 {
            return .failure(
                UsageError(
                    "the stored values are in both schemes (\(v1) v1, \(v2) v2), so the installation's scheme is unclear: "
                        + "give --scheme v2 for an application of v0.0.59 or later, v1 for an earlier one"))
        }
        if try !database.tableColumns().contains(where: { $0.table == ApplicationRelease.seaORMLedger }) { return .success(.v1) }
        return .failure(
            UsageError(
                "no stored value tells the installation's scheme, and its ledger (sea-orm) is that of v0.0.46 or later, "
                    + "which may write either: give --scheme v2 for an application of v0.0.59 or later, v1 for an earlier one"))
    }
}
