import Foundation

/// What a database is, for telling whether a down migration undid its up: every schema object
/// with its definition (as the engine's catalog gives it, whitespace normalised), every table's
/// columns, indexes with their columns, and a digest and count of every table's rows. The
/// ledger's timing columns (installed_on, execution_time) are left out of its digest: they differ
/// every time a migration runs. Each engine captures it (MigrationStore), with what the engine
/// makes on its own (`Engine`).
public struct SchemaFingerprint: Sendable, Equatable, Codable {
    public struct Object: Sendable, Equatable, Codable {
        public var type: String
        public var name: String
        public var table: String
        public var sql: String?
    }

    public struct Index: Sendable, Equatable, Codable {
        public var name: String
        public var unique: Bool
        public var partial: Bool
        public var columns: [String]
    }

    public struct Table: Sendable, Equatable, Codable {
        public var name: String
        public var columns: [String]
        public var indexes: [Index]
        public var rows: Int
        public var digest: String
    }

    /// Sorted by type and name.
    public var objects: [Object]
    /// Sorted by name.
    public var tables: [Table]
    /// Counters, compared entry by entry: by table name where the engine keeps them in a table of
    /// counters (`Engine.counterTable`); else by sequence name, with a `sequence` object that names
    /// the table owning it (those used at least once).
    public var sequences: [String: Int64]
    /// What the engine makes on its own, from the store that captured it.
    public var engine: Engine

    /// What an engine creates as a side effect, for `differences(from:)` to tell apart.
    public struct Engine: Sendable, Equatable, Codable {
        /// Tables the engine creates and no down migration drops, with why: present-but-empty on
        /// one side and absent on the other is not a difference. sqlx's ledger is one everywhere.
        public var bookkeepingTables: [String: String]
        /// The engine's own table of counters, keyed by table name, if it keeps one.
        public var counterTable: String?
        /// The name prefix of indexes the engine makes for a table's constraints, compared
        /// through their table's indexes.
        public var automaticIndexPrefix: String?

        public init(bookkeepingTables: [String: String] = [:], counterTable: String? = nil, automaticIndexPrefix: String? = nil) {
            self.bookkeepingTables = bookkeepingTables.merging([MigrationLedger.tableName: Self.ledgerNote]) { own, _ in own }
            self.counterTable = counterTable
            self.automaticIndexPrefix = automaticIndexPrefix
        }

        static let ledgerNote = "sqlx's ledger, created by the first migration run; sqlx never drops it"
    }

    public init(objects: [Object], tables: [Table], sequences: [String: Int64], engine: Engine) {
        self.objects = objects
        self.tables = tables
        self.sequences = sequences
        self.engine = engine
    }

    static let ledgerVolatileColumns: Set<String> = ["installed_on", "execution_time"]

    /// The fingerprint of a database as it is now (see `MigrationStore.fingerprint`).
    public static func capture(_ database: any Database) throws -> SchemaFingerprint {
        try database.migrationStore().fingerprint()
    }

    static func normalize(_ sql: String) -> String {
        sql.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// The columns whose values go into a table's row digest: all but the ledger's timing columns.
    static func digestedColumns(of table: String, _ columns: [String]) -> [String] {
        table == MigrationLedger.tableName ? columns.filter { !ledgerVolatileColumns.contains($0) } : columns
    }
}

/// How two fingerprints differ, in words: which object, table, column, index or rows.
public struct SchemaDifference: Sendable, Equatable, Codable, CustomStringConvertible {
    public var subject: String
    public var detail: String
    /// Not a failure: bookkeeping no down migration can undo (see `SchemaFingerprint.Engine`),
    /// or what goes with a table the migration itself creates and drops (its rows, and indexes
    /// someone else added to it).
    public var expected: Bool

    public var description: String { "\(subject): \(detail)" }
}

extension SchemaFingerprint {
    /// The differences from `before` to `self`; empty when they are the same database.
    /// `owned`: tables the migration creates, whose rows and dependent objects a down-then-up
    /// cannot give back.
    public func differences(from before: SchemaFingerprint, owned: Set<String> = []) -> [SchemaDifference] {
        var out: [SchemaDifference] = []
        let old = Dictionary(before.objects.map { ("\($0.type) \($0.name)", $0) }, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(objects.map { ("\($0.type) \($0.name)", $0) }, uniquingKeysWith: { a, _ in a })
        let oldTables = Dictionary(before.tables.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newTables = Dictionary(tables.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let ownedNote = " (it belongs to a table this migration creates, and goes with it)"

        for key in Set(old.keys).union(new.keys).sorted() {
            let (a, b) = (old[key], new[key])
            let object = (a ?? b)!
            if let prefix = engine.automaticIndexPrefix, object.name.hasPrefix(prefix) { continue }
            // The index and key of a bookkeeping table come and go with it (PostgreSQL lists them).
            if object.type != "table", engine.bookkeepingTables[object.table] != nil,
                (oldTables[object.table] == nil) != (newTables[object.table] == nil)
            {
                continue
            }
            if let note = engine.bookkeepingTables[object.name], object.type == "table", a == nil || b == nil {
                let rows = object.name == engine.counterTable ? 0 : (oldTables[object.name] ?? newTables[object.name])?.rows ?? 0
                out.append(
                    SchemaDifference(
                        subject: key, detail: (a == nil ? "created" : "dropped") + " (\(note)); it holds \(rows) row(s)",
                        expected: rows == 0))
                continue
            }
            let isOwned = owned.contains(object.table) && object.type != "view"
            switch (a, b) {
            case (nil, _?): out.append(SchemaDifference(subject: key, detail: "present now, absent before", expected: false))
            case (_?, nil):
                out.append(
                    SchemaDifference(subject: key, detail: "present before, absent now" + (isOwned ? ownedNote : ""), expected: isOwned))
            case (let a?, let b?) where a.sql != b.sql:
                out.append(
                    SchemaDifference(
                        subject: key, detail: "SQL differs: before \(a.sql ?? "none"), now \(b.sql ?? "none")", expected: false))
            default: break
            }
        }
        for name in Set(oldTables.keys).intersection(newTables.keys).sorted() where name != engine.counterTable {
            let (a, b) = (oldTables[name]!, newTables[name]!)
            for column in Set(a.columns).symmetricDifference(b.columns).sorted() {
                out.append(
                    SchemaDifference(
                        subject: "table \(name) column", detail: "\(column) is \(a.columns.contains(column) ? "gone" : "new")",
                        expected: false))
            }
            let oldIndexes = Dictionary(a.indexes.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
            let newIndexes = Dictionary(b.indexes.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
            for index in Set(oldIndexes.keys).union(newIndexes.keys).sorted() where oldIndexes[index] != newIndexes[index] {
                let (x, y) = (oldIndexes[index], newIndexes[index])
                let detail =
                    switch (x, y) {
                    case (nil, let y?): "new index on (\(y.columns.joined(separator: ", ")))"
                    case (let x?, nil): "index on (\(x.columns.joined(separator: ", "))) is gone" + (owned.contains(name) ? ownedNote : "")
                    default: "index definition changed"
                    }
                out.append(
                    SchemaDifference(subject: "table \(name) index \(index)", detail: detail, expected: y == nil && owned.contains(name)))
            }
            let rowsExpected = owned.contains(name)
            let note = rowsExpected ? " (the rows of a table this migration creates: its down drops them)" : ""
            if a.rows != b.rows {
                out.append(
                    SchemaDifference(
                        subject: "table \(name) rows", detail: "\(a.rows) before, \(b.rows) now" + note, expected: rowsExpected))
            } else if a.digest != b.digest {
                out.append(
                    SchemaDifference(
                        subject: "table \(name) rows", detail: "same count (\(a.rows)), different contents" + note, expected: rowsExpected))
            }
        }
        // Each counter belongs to one table: a counter table's entry is keyed by it, a sequence
        // object names it.
        let sequenceObjects = Dictionary(
            (before.objects + objects).filter { $0.type == "sequence" }.map { ($0.name, $0) },
            uniquingKeysWith: { a, _ in a })
        for name in Set(before.sequences.keys).union(sequences.keys).sorted() where before.sequences[name] != sequences[name] {
            let describe = { (value: Int64?) in value.map(String.init) ?? "no entry" }
            let sequence = sequenceObjects[name]
            let isOwned = owned.contains(sequence?.table ?? name)
            out.append(
                SchemaDifference(
                    subject: sequence == nil ? "\(engine.counterTable ?? "counter") entry for \(name)" : "sequence \(name) value",
                    detail: "\(describe(before.sequences[name])) before, \(describe(sequences[name])) now" + (isOwned ? ownedNote : ""),
                    expected: isOwned))
        }
        return out
    }
}
