/// One record of an import, decoded and located in its file.
public struct ImportItem: Sendable {
    var record: SnapshotRecord
    var location: SnapshotLocation
    var pairHash: UInt64
    /// Set by the reader when the table was empty and no earlier record had this pair.
    var certainlyNew = false
    var existing: StoredSecret? = nil

    /// The record's plaintext key, when it carries one.
    var plaintextKey: String? {
        if case .plaintext(let key) = record.key { key } else { nil }
    }
}

/// What an import decides for a record's pair.
public enum ImportAction: Int64, Sendable {
    case insert = 1
    case update = 2
    case unchanged = 3
    case skipped = 4
}

/// What a record asks its row's key to be, once the key work is done.
public struct KeyIntent: Sendable {
    public enum Mode: Int64, Sendable {
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
public struct FoundRow {
    var row: ToolConfigTable.Row
    /// An earlier record of this import wrote or confirmed it: the pair repeats in the file.
    var fromThisImport: Bool
}

/// Where an import's decisions go: straight into the table under the write lock
/// (`ImportWriter`), or into a stage that a short write phase applies later (`ImportStage`).
public protocol ImportTarget: AnyObject {
    func find(userID: String, toolID: String) throws -> FoundRow?
    /// The rows found for the pairs of several records, in their order: one round trip where an
    /// engine answers them together (PostgreSQL), else one `find` each.
    func findAll(_ items: [ImportItem]) throws -> [FoundRow?]
    /// Rows known to be new whose stored triple (or none) goes in as it is.
    func insertNew(_ items: ArraySlice<ImportItem>, now: Int64) throws
    func insert(_ item: ImportItem, intent: KeyIntent, now: Int64) throws
    func update(_ item: ImportItem, intent: KeyIntent, over row: ToolConfigTable.Row, now: Int64) throws
    /// The row stays as it is (unchanged or skipped), and its pair now belongs to this import.
    func keep(_ item: ImportItem, intent: KeyIntent, row: ToolConfigTable.Row, as action: ImportAction, now: Int64) throws
    /// Every record of a batch has been decided: a target that holds a batch's rows back (to
    /// send them together) writes them now.
    func endBatch() throws
}

extension ImportTarget {
    public func findAll(_ items: [ImportItem]) throws -> [FoundRow?] {
        try items.map { try find(userID: $0.record.userID, toolID: $0.record.toolID) }
    }

    public func endBatch() throws {}
}

/// An import's decisions, staged apart from the table while the file is read against a read
/// snapshot, then written in a short write phase. Each staged row keeps the state its table row
/// had in the snapshot, so the write phase can tell which pairs the application wrote since.
public protocol ImportStaging: ImportTarget {
    /// Stages one decision: the record, what becomes of it, its key, and the row it acts on as
    /// the snapshot showed it (nil for a new pair). The import's four writes all come here.
    func stage(_ item: borrowing ImportItem, _ action: ImportAction, intent: KeyIntent, existing: ToolConfigTable.Row?, now: Int64) throws

    /// In the write transaction: the staged pairs whose table row is not what the snapshot showed
    /// (a row the import acts on changed or vanished, or a pair it inserts exists now).
    func changedSinceSnapshot() throws -> [StagedImport]

    /// The pair's row as the table holds it now.
    func currentRow(userID: String, toolID: String) throws -> ToolConfigTable.Row?

    /// Records a new decision for a staged pair against its row as it is now.
    func restage(_ seq: Int64, as action: ImportAction, over current: ToolConfigTable.Row?) throws

    /// In the write transaction: writes the staged rows, new ones in file order (ids given in that
    /// order), updates by id keeping id and created_at, and the stored key where the record
    /// carries none.
    func applyStaged() throws

    func drop()
}

extension ImportStaging {
    public func insertNew(_ items: ArraySlice<ImportItem>, now: Int64) throws {
        for index in items.indices {
            let secret = items[index].record.storedSecret
            try stage(
                items[index], .insert, intent: KeyIntent(mode: secret == nil ? .keep : .triple, secret: secret), existing: nil, now: now)
        }
    }

    public func insert(_ item: ImportItem, intent: KeyIntent, now: Int64) throws {
        try stage(item, .insert, intent: intent, existing: nil, now: now)
    }

    public func update(_ item: ImportItem, intent: KeyIntent, over row: ToolConfigTable.Row, now: Int64) throws {
        try stage(item, .update, intent: intent, existing: row, now: now)
    }

    public func keep(_ item: ImportItem, intent: KeyIntent, row: ToolConfigTable.Row, as action: ImportAction, now: Int64) throws {
        try stage(item, action, intent: intent, existing: row, now: now)
    }
}

/// A staged pair, as the write phase decides it again.
public struct StagedImport {
    var seq: Int64
    var userID: String
    var toolID: String
    var action: ImportAction
    var enabled: Bool
    var intent: KeyIntent
    var updatedAt: Int64
    var updatedAtGiven: Bool
    var location: SnapshotLocation
    /// The pair's row as the snapshot (or the last decision) saw it.
    var existing: ToolConfigTable.Row?

    /// The row as this import leaves it: what a later record of the same pair is compared with.
    var result: ToolConfigTable.Row {
        guard action == .insert || action == .update else { return existing! }
        return ToolConfigTable.Row(
            id: existing?.id ?? 0, enabled: enabled, secret: intent.secret ?? existing?.secret,
            createdAt: existing?.createdAt ?? 0, updatedAt: updatedAt)
    }
}
