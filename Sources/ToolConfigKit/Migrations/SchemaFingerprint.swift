import Foundation

/// What a database is, for telling whether a down migration undid its up: every schema object
/// (SQL with whitespace normalised), every table's columns, indexes with their columns, and a
/// digest and count of every table's rows. The ledger's timing columns (installed_on,
/// execution_time) are left out of its digest: they differ every time a migration runs.
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
    /// sqlite_sequence by table name: compared entry by entry, since each belongs to one table.
    public var sequences: [String: Int64]

    /// Tables that SQLite or the migration tool create as a side effect, and that no down
    /// migration drops: present-but-empty on one side and absent on the other is not a difference.
    public static let bookkeeping: [String: String] = [
        "sqlite_sequence": "SQLite's own table of AUTOINCREMENT counters, created by the first AUTOINCREMENT table; it can never be dropped",
        MigrationLedger.tableName: "sqlx's ledger, created by the first migration run; sqlx never drops it",
        "sqlite_stat1": "SQLite's statistics table, created by ANALYZE",
    ]

    static let ledgerVolatileColumns: Set<String> = ["installed_on", "execution_time"]

    public static func capture(_ connection: SQLiteConnection) throws -> SchemaFingerprint {
        let master = try connection.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        var objects: [Object] = []
        while try master.step() {
            objects.append(Object(type: master.text(0) ?? "", name: master.text(1) ?? "", table: master.text(2) ?? "",
                                  sql: master.text(3).map(normalize)))
        }
        var tables: [Table] = []
        for object in objects where object.type == "table" {
            tables.append(try table(object.name, connection))
        }
        var sequences: [String: Int64] = [:]
        if objects.contains(where: { $0.type == "table" && $0.name == "sqlite_sequence" }) {
            let rows = try connection.prepare("SELECT name, seq FROM sqlite_sequence")
            while try rows.step() { sequences[rows.text(0) ?? ""] = rows.int64(1) }
        }
        return SchemaFingerprint(objects: objects, tables: tables.sorted { $0.name < $1.name }, sequences: sequences)
    }

    static func normalize(_ sql: String) -> String {
        sql.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }


    private static func table(_ name: String, _ connection: SQLiteConnection) throws -> Table {
        let info = try connection.prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid")
        try info.bind(.text(name), at: 1)
        var columns: [String] = []
        var names: [String] = []
        while try info.step() {
            let column = info.text(0) ?? ""
            names.append(column)
            columns.append("\(column) \(info.text(1) ?? "")\(info.int64(2) != 0 ? " NOT NULL" : "")\(info.text(3).map { " DEFAULT \($0)" } ?? "")\(info.int64(4) > 0 ? " PK\(info.int64(4))" : "")")
        }
        let list = try connection.prepare("SELECT name, \"unique\", partial FROM pragma_index_list(?1) ORDER BY name")
        try list.bind(.text(name), at: 1)
        var indexes: [Index] = []
        while try list.step() {
            let indexName = list.text(0) ?? ""
            let info = try connection.prepare("SELECT coalesce(name, '<expression>') FROM pragma_index_info(?1) ORDER BY seqno")
            try info.bind(.text(indexName), at: 1)
            var indexColumns: [String] = []
            while try info.step() { indexColumns.append(info.text(0) ?? "") }
            // Autoindexes are named by creation order, so name them by their columns instead.
            let stableName = indexName.hasPrefix("sqlite_autoindex_") ? "(unique constraint on \(indexColumns.joined(separator: ", ")))" : indexName
            indexes.append(Index(name: stableName, unique: list.int64(1) != 0, partial: list.int64(2) != 0, columns: indexColumns))
        }
        // Rows in rowid order (or by every column for WITHOUT ROWID tables), timing columns of the
        // ledger left out.
        let kept = name == MigrationLedger.tableName ? names.filter { !ledgerVolatileColumns.contains($0) } : names
        let hasRowID = (try? connection.prepare("SELECT rowid FROM \(quotedIdentifier(name)) LIMIT 0")) != nil
        let order = hasRowID ? "rowid" : (1...max(1, kept.count)).map(String.init).joined(separator: ", ")
        let select = kept.isEmpty ? "SELECT 1" : "SELECT " + kept.map(quotedIdentifier).joined(separator: ", ")
        let rows = try connection.prepare("\(select) FROM \(quotedIdentifier(name)) ORDER BY \(order)")
        let digest = SHA256Stream()
        var count = 0
        while try rows.step() {
            var bytes: [UInt8] = []
            for column in 0..<rows.columnCount {
                switch rows.value(column) {
                case .null: bytes.append(0)
                case .integer(let i): bytes.append(1); withUnsafeBytes(of: i.bigEndian) { bytes += $0 }
                case .real(let d): bytes.append(2); withUnsafeBytes(of: d.bitPattern.bigEndian) { bytes += $0 }
                case .text(let t):
                    bytes.append(3)
                    withUnsafeBytes(of: UInt32(t.utf8.count).bigEndian) { bytes += $0 }
                    bytes += t.utf8
                case .blob(let b):
                    bytes.append(4)
                    withUnsafeBytes(of: UInt32(b.count).bigEndian) { bytes += $0 }
                    bytes += b
                }
            }
            bytes.withUnsafeBytes { digest.update($0) }
            count += 1
        }
        return Table(name: name, columns: columns, indexes: indexes, rows: count, digest: Digest.hex(digest.finish().prefix(16)))
    }
}

/// How two fingerprints differ, in words: which object, table, column, index or rows.
public struct SchemaDifference: Sendable, Equatable, Codable, CustomStringConvertible {
    public var subject: String
    public var detail: String
    /// Not a failure: bookkeeping no down migration can undo (see `SchemaFingerprint.bookkeeping`),
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
            if object.name.hasPrefix("sqlite_autoindex_") { continue }  // compared through their table's indexes
            if let note = Self.bookkeeping[object.name], object.type == "table", a == nil || b == nil {
                let rows = object.name == "sqlite_sequence" ? 0 : (oldTables[object.name] ?? newTables[object.name])?.rows ?? 0
                out.append(SchemaDifference(subject: key, detail: (a == nil ? "created" : "dropped") + " (\(note)); it holds \(rows) row(s)",
                                            expected: rows == 0))
                continue
            }
            let isOwned = owned.contains(object.table) && object.type != "view"
            switch (a, b) {
            case (nil, _?): out.append(SchemaDifference(subject: key, detail: "present now, absent before", expected: false))
            case (_?, nil): out.append(SchemaDifference(subject: key, detail: "present before, absent now" + (isOwned ? ownedNote : ""), expected: isOwned))
            case (let a?, let b?) where a.sql != b.sql:
                out.append(SchemaDifference(subject: key, detail: "SQL differs: before \(a.sql ?? "none"), now \(b.sql ?? "none")", expected: false))
            default: break
            }
        }
        for name in Set(oldTables.keys).intersection(newTables.keys).sorted() where name != "sqlite_sequence" {
            let (a, b) = (oldTables[name]!, newTables[name]!)
            for column in Set(a.columns).symmetricDifference(b.columns).sorted() {
                out.append(SchemaDifference(subject: "table \(name) column", detail: "\(column) is \(a.columns.contains(column) ? "gone" : "new")", expected: false))
            }
            let oldIndexes = Dictionary(a.indexes.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
            let newIndexes = Dictionary(b.indexes.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
            for index in Set(oldIndexes.keys).union(newIndexes.keys).sorted() where oldIndexes[index] != newIndexes[index] {
                let (x, y) = (oldIndexes[index], newIndexes[index])
                let detail = switch (x, y) {
                case (nil, let y?): "new index on (\(y.columns.joined(separator: ", ")))"
                case (let x?, nil): "index on (\(x.columns.joined(separator: ", "))) is gone" + (owned.contains(name) ? ownedNote : "")
                default: "index definition changed"
                }
                out.append(SchemaDifference(subject: "table \(name) index \(index)", detail: detail, expected: y == nil && owned.contains(name)))
            }
            let rowsExpected = owned.contains(name)
            let note = rowsExpected ? " (the rows of a table this migration creates: its down drops them)" : ""
            if a.rows != b.rows {
                out.append(SchemaDifference(subject: "table \(name) rows", detail: "\(a.rows) before, \(b.rows) now" + note, expected: rowsExpected))
            } else if a.digest != b.digest {
                out.append(SchemaDifference(subject: "table \(name) rows", detail: "same count (\(a.rows)), different contents" + note, expected: rowsExpected))
            }
        }
        // Each sqlite_sequence entry belongs to one table.
        for name in Set(before.sequences.keys).union(sequences.keys).sorted() where before.sequences[name] != sequences[name] {
            let describe = { (value: Int64?) in value.map(String.init) ?? "no entry" }
            out.append(SchemaDifference(subject: "sqlite_sequence entry for \(name)",
                                        detail: "\(describe(before.sequences[name])) before, \(describe(sequences[name])) now",
                                        expected: owned.contains(name)))
        }
        return out
    }
}
