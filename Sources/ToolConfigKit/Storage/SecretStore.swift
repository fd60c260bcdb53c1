/// The stored secrets of one column group (see `SecretColumnGroup`), row by row, in the order of
/// the rows' keys: what reading them needs (`SecretStore` adds the writes).
public protocol SecretReader: AnyObject {
    var group: SecretColumnGroup { get }

    func count() throws -> Int

    /// Every row with its triple (or none), a page at a time. Keyset pages rather than one cursor,
    /// so writes made between pages cannot disturb the scan.
    func scan(pageSize: Int, _ body: ([SecretRow]) throws -> Void) throws

    /// Up to `count` rows that hold a whole triple, spread evenly over the table.
    func sample(_ count: Int) throws -> [SecretRow]

    /// The rows these references name, as they are now, in the same order (nil for a row that
    /// is gone).
    func rows(_ references: [RowReference]) throws -> [SecretRow?]

    /// How many rows, in this group and the others given, hold `value` as their salt (or nonce):
    /// a salt or nonce used twice means a broken random generator.
    func countRows(with part: TriplePart, equalTo value: String, acrossAlso others: [SecretColumnGroup]) throws -> Int

    /// How many of the group's values are in each scheme (by their ciphertexts' prefix).
    func schemeCounts() throws -> [SecretScheme: Int]

    /// A digest of every row holding any part of the group (its key and the three values),
    /// independent of the rows' order; equal to the stage's `digest` exactly when the table holds
    /// what was staged. nil where the store has none.
    func digest() throws -> String?
}

/// A group's secrets, read and written.
public protocol SecretStore: SecretReader {
    /// Writes a row's group and nothing else.
    func setSecret(_ secret: StoredSecret, of row: RowReference) throws

    /// A rotation's staging area for this table, private to this connection (see RotationStaging).
    func makeRotationStage(index: Int) throws -> any RotationStaging

    /// How the operator could make a rotation's write phase of this group's table shorter, when
    /// the engine knows a way (PostgreSQL: room on the pages for rows rewritten in place); else nil.
    func writePhaseAdvice() throws -> String?

    /// What gives every row of this group's table that holds any of `groups` (the table's groups)
    /// room on its page to be rewritten in place (PostgreSQL, `rotate --make-room`), once the
    /// table has been checked for what would make that wrong or useless; throws a refusal
    /// otherwise. Nothing changes until it runs. An engine that rewrites rows in place anyway
    /// refuses.
    func roomMaker(groupsOfTable groups: [SecretColumnGroup]) throws -> any RoomMaking
}

extension SecretStore {
    public func writePhaseAdvice() throws -> String? { nil }

    public func roomMaker(groupsOfTable groups: [SecretColumnGroup]) throws -> any RoomMaking {
        throw UsageError("--make-room is for PostgreSQL: SQLite rewrites a row's key in place, so its write phase needs no room made")
    }
}

/// Makes room on one table's pages (see `SecretStore.roomMaker`), outside any transaction of the
/// rotation; `dryRun` only counts. The data do not change.
public protocol RoomMaking {
    func run(dryRun: Bool, progress: ProgressHandler) throws -> RoomReport
}

/// What `rotate --make-room` found and did in one table.
public struct RoomReport: Sendable, Codable, Equatable {
    public var fillfactorBefore: Int
    public var fillfactor: Int
    /// Keyed rows on pages without room for their rewrite, before the pass.
    public var rowsWithoutRoom: Int
    /// Rows rewritten as they were to make room: nearly all onto other pages (a few onto their
    /// own, where room was freed meanwhile).
    public var rowsMoved: Int
    /// The short transactions that moved them.
    public var batches: Int
    /// The longest of those: the longest an application write to a moved row could wait.
    public var longestBatchSeconds: Double
    /// Keyed rows still without room after the pass: rows the application held (skipped, not
    /// waited for) on pages that stayed full, or wrote back onto full pages meanwhile.
    public var rowsLeftWithoutRoom: Int
}

/// A rotation's results for one table, kept apart from the table until the write phase: each
/// staged row holds the triple the write phase must leave in the row, either a re-encrypted
/// triple together with the one it replaces (a rotation) or the triple that stays (kept: the row
/// was already under the new key).
public protocol RotationStaging: AnyObject {
    var group: SecretColumnGroup { get }

    /// The row's triple `old`, read from the snapshot, is to become `new`.
    func stageRotation(_ row: RowReference, old: StoredSecret, new: StoredSecret) throws

    /// The row's triple stays as it is (already under the new key).
    func stageKept(_ row: RowReference, _ current: StoredSecret) throws

    /// In the write transaction: writes each staged triple whose row still holds the triple the
    /// snapshot had (a compare-and-swap per row) and returns how many. Only the three secret
    /// columns are written, so the application's own changes to other columns stand.
    func applyUnchanged() throws -> Int

    /// `applyUnchanged` of this stage and of `others` (stages of the other groups of its table,
    /// made by the same store's connection) in one statement, so that each row is rewritten once:
    /// the counts in order, this stage's first. nil where the engine writes a group at a time.
    func applyUnchanged(togetherWith others: [any RotationStaging]) throws -> [Int]?

    /// In the write transaction, after `applyUnchanged`: up to `limit` rows after `row` that hold
    /// any part of a triple other than the staged one (rows the application inserted, changed or
    /// gave a key since the snapshot). None left means every keyed row holds exactly its staged
    /// triple: the check before the commit.
    func leftovers(after row: RowReference?, limit: Int) throws -> [RotationLeftover]

    /// Staged rows rotated by this run, after `row` in key order, a page at a time.
    func rotated(after row: RowReference?, limit: Int) throws -> [(row: RowReference, secret: StoredSecret)]

    /// The digest of every staged row with the triple it is to hold (see `SecretStore.digest`).
    func digest() throws -> String?

    /// Between the snapshot and the write phase: every row of the snapshot is staged; the stage
    /// gets ready for the write phase's lookups (an index, statistics; SQLite: its file's
    /// functions), outside its lock. Rows staged after it are the write phase's own (rows changed
    /// since the snapshot).
    func finishStaging() throws

    func drop()
}

extension RotationStaging {
    public func finishStaging() throws {}

    public func applyUnchanged(togetherWith others: [any RotationStaging]) throws -> [Int]? { nil }
}

/// A keyed row that does not hold its staged triple, and what had been staged for it: a
/// rotation (true), the triple kept (false) or nothing (nil: a row inserted or given a key since
/// the snapshot).
public struct RotationLeftover {
    public var row: SecretRow
    public var stagedRotation: Bool?
}

/// Names one row of a table with the triple, the way its store addresses it: SQLite by rowid; a
/// store whose table is keyed by a text `id` by that id.
public struct RowReference: Sendable, Hashable {
    public var rowID: Int64
    public var id: String?
}

/// One row's stored secret, as rotation and verification read it.
public struct SecretRow: Sendable {
    /// The row's key in its table (SQLite's rowid).
    public var rowID: Int64
    /// The `id` column's value, for messages.
    public var id: String?
    /// nil when all three columns are NULL (no key); a partial triple is kept for the error.
    public var secret: StoredSecret?
    public var partial: Bool
    /// Of a partial group, the parts that are NULL: "ciphertext", "salt", "nonce".
    var nullParts: [String] = []

    public var label: String { id.map { "row id \($0)" } ?? "rowid \(rowID)" }

    public var reference: RowReference { RowReference(rowID: rowID, id: id) }

    /// What the row's triple is: none, decoded bytes, or malformed with the reason why. Rotation
    /// and verify-keys judge rows by the same rule.
    enum Triple {
        case none
        case decoded(DecodedSecret)
        case malformed(String)
    }

    var triple: Triple {
        if partial {
            return .malformed(
                "its \(nullParts.joined(separator: " and ")) \(nullParts.count == 1 ? "is" : "are") "
                    + "NULL but the rest of its group is not (a corrupt row)"
            )
        }
        guard let secret else { return .none }
        do {
            return .decoded(try secret.decoded())
        } catch {
            return .malformed(error.description)
        }
    }

}

extension SecretRow {
    /// A row from its three columns as read: all NULL is no key, some NULL a partial triple.
    init(rowID: Int64, id: String?, encryptedAPIKey: String?, salt: String?, nonce: String?) {
        self.rowID = rowID
        self.id = id
        if let encryptedAPIKey, let salt, let nonce {
            secret = StoredSecret(encryptedAPIKey: encryptedAPIKey, salt: salt, nonce: nonce)
            partial = false
        } else {
            secret = nil
            partial = encryptedAPIKey != nil || salt != nil || nonce != nil
            if partial { nullParts = [("ciphertext", encryptedAPIKey), ("salt", salt), ("nonce", nonce)].filter { $0.1 == nil }.map(\.0) }
        }
    }
}
