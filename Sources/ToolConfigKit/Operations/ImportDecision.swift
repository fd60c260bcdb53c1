/// The rules an import decides a record by, the same before the write lock and, for pairs the
/// application wrote meanwhile, under it.
extension ImportAction {
    /// The decision for a record against the row its pair has (nil: none), or nil when the
    /// policy is `fail` and the row differs. `sameKey`: the row already holds the record's key.
    static func decide(
        enabled: Bool, updatedAt: Int64?, sameKey: Bool, existing: ToolConfigTable.Row?,
        policy: Importer.ConflictPolicy
    ) -> ImportAction? {
        guard let existing else { return .insert }
        if sameKey, existing.enabled == enabled, updatedAt == nil || updatedAt == existing.updatedAt { return .unchanged }
        switch policy {
        case .update: return .update
        case .skip: return .skipped
        case .fail: return nil
        }
    }

    func count(in report: inout Importer.Report, by delta: Int) {
        switch self {
        case .insert: report.inserted += delta
        case .update: report.updated += delta
        case .unchanged: report.unchanged += delta
        case .skipped: report.skipped += delta
        }
    }
}

extension KeyIntent {
    /// Whether a row holding `stored` already holds the key this intent asks for.
    func isHeld(by stored: StoredSecret?, masterKey: MasterKey?) -> Bool {
        switch mode {
        case .keep:
            return true
        case .triple:
            return stored == secret
        case .plaintext:
            guard let stored, let wanted = secret, let masterKey,
                let a = try? SecretCipher.decrypt(stored, masterKey: masterKey),
                let b = try? SecretCipher.decrypt(wanted, masterKey: masterKey)
            else { return false }
            // Bytes, not String ==: canonically equivalent keys with other bytes are other keys.
            return a.utf8.elementsEqual(b.utf8)
        }
    }
}
