/// What an import decides for a record's pair.
enum ImportAction: Int64, Sendable {
    case insert = 1
    case update = 2
    case unchanged = 3
    case skipped = 4

    /// The decision for a record against the row its pair has (nil: none), or nil when the
    /// policy is `fail` and the row differs. `sameKey`: the row already holds the record's key.
    static func decide(enabled: Bool, updatedAt: Int64?, sameKey: Bool, existing: ToolConfigTable.Row?,
                       policy: Importer.ConflictPolicy) -> ImportAction? {
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

/// What a record asks its row's key to be, once the key work is done.
struct KeyIntent: Sendable {
    enum Mode: Int64, Sendable {
        /// The record carries no key: an existing row keeps its own, a new row has none.
        case keep = 0
        /// A stored triple given as it is: the same key is the same bytes.
        case triple = 1
        /// A plaintext (or sealed) key, encrypted under the master key: the same key is the same
        /// plaintext, whatever salt and nonce encrypt it.
        case plaintext = 2
    }

    var mode: Mode
    /// The triple the row should hold (nil with `keep`).
    var secret: StoredSecret?
}

/// The row an import finds for a pair.
struct FoundRow {
    var row: ToolConfigTable.Row
    /// An earlier record of this import wrote or confirmed it: the pair repeats in the file.
    var fromThisImport: Bool
}

/// Where an import's decisions go: straight into the table under the write lock
/// (`ImportWriter`), or into a stage that a short write phase applies later (`ImportStage`).
protocol ImportTarget: AnyObject {
    func find(userID: String, toolID: String) throws -> FoundRow?
    /// Rows known to be new whose stored triple (or none) goes in as it is.
    func insertNew(_ items: ArraySlice<ImportState.Item>, now: Int64) throws
    func insert(_ item: ImportState.Item, intent: KeyIntent, now: Int64) throws
    func update(_ item: ImportState.Item, intent: KeyIntent, over row: ToolConfigTable.Row, now: Int64) throws
    /// The row stays as it is (unchanged or skipped), and its pair now belongs to this import.
    func keep(_ item: ImportState.Item, intent: KeyIntent, row: ToolConfigTable.Row, as action: ImportAction, now: Int64) throws
}
