import CSQLite

/// A rotation's staging area in SQLite. The snapshot's rows go to a file of their own in SQLite's
/// temporary folder (`SQLiteStageFile`: without a name, so a kill leaves nothing behind), in rowid
/// order, which the write phase's statements read through functions that walk it in step with
/// their scan of the table. Rows staged again inside the write phase (changed since the snapshot)
/// go to a table keyed by rowid in a private temporary database of the rotation's own connection
/// (`SQLiteConnection.attachScratch`), where they win over the file. None of it takes a lock on
/// the main database, so the application keeps writing while the keys are derived, and a million
/// rows cost disk, not RAM.
final class SQLiteRotationStage: RotationStaging {
    let group: SecretColumnGroup
    private let connection: SQLiteConnection
    private var file: SQLiteStageFile?
    /// The functions over `file`: `<functions>_matches`, `_new`, `_holds`, `_staged`.
    private let functions: String
    private var finished = false
    private var lastStaged: Int64?
    /// The write phase's table, and the rowids staged in it.
    private let table: String
    private let insert: SQLiteStatement
    private var restaged = Set<Int64>()

    init(_ connection: SQLiteConnection, group: SecretColumnGroup, index: Int) throws {
        self.connection = connection
        self.group = group
        functions = "toolcfg_stage\(index)"
        table = "\(SQLiteConnection.scratchSchema).toolcfg_rotation_\(index)"
        try connection.attachScratch()
        try connection.execute(
            """
            DROP TABLE IF EXISTS \(table);
            CREATE TABLE \(table) (
                rid INTEGER PRIMARY KEY, rotate INTEGER NOT NULL,
                new_key TEXT NOT NULL, new_salt TEXT NOT NULL, new_nonce TEXT NOT NULL)
            """, context: "creating the rotation's staging table")
        insert = try connection.prepare("INSERT OR REPLACE INTO \(table) VALUES (?1, ?2, ?3, ?4, ?5)")
        file = try TemporaryStorage.staging("staging the rotated secrets of \(group.label)") { () throws(SQLiteError) in
            try SQLiteStageFile(database: connection.path)
        }
    }

    func stageRotation(_ row: RowReference, old: StoredSecret, new: StoredSecret) throws {
        try stage(row.rowID, rotate: true, old: old, new: new)
    }

    func stageKept(_ row: RowReference, _ current: StoredSecret) throws {
        try stage(row.rowID, rotate: false, old: nil, new: current)
    }

    private func stage(_ rowID: Int64, rotate: Bool, old: StoredSecret?, new: StoredSecret) throws {
        try TemporaryStorage.staging("staging the rotated secrets of \(group.label)") { () throws(SQLiteError) in
            if !finished {
                // The snapshot's scan is ordered by rowid: a step down means a damaged B-tree.
                if let lastStaged, rowID <= lastStaged {
                    throw SQLiteError(
                        code: SQLITE_CORRUPT,
                        message: "\(group.table) gave rowid \(rowID) after rowid \(lastStaged) in a scan ordered by rowid: "
                            + "the database file is damaged (PRAGMA integrity_check says where)", path: connection.path,
                        context: "reading \(group.label)")
                }
                try openFile().append(rowID, rotate: rotate, old: old, new: new)
                lastStaged = rowID
                return
            }
            try insert.run([.integer(rowID), .integer(rotate ? 1 : 0), .text(new.encryptedAPIKey), .text(new.salt), .text(new.nonce)])
            restaged.insert(rowID)
        }
    }

    private func openFile() throws(SQLiteError) -> SQLiteStageFile {
        guard let file else { throw SQLiteError(code: SQLITE_MISUSE, message: "the stage was dropped", path: connection.path) }
        return file
    }

    func finishStaging() throws {
        guard !finished else { return }
        let file = try openFile()
        try TemporaryStorage.staging("staging the rotated secrets of \(group.label)") { () throws(SQLiteError) in try file.finish() }
        try connection.registerStageFunctions(of: file, prefix: functions)
        finished = true
    }

    /// One UPDATE whose values come from the file, read in step with the table's scan in rowid
    /// order: NOT INDEXED keeps the scan in that order (an index scan would send the walk back
    /// to the file's start at every step down).
    func applyUnchanged() throws -> Int {
        try finishStaging()
        let (key, salt, nonce) = group.quotedParts
        try connection.execute(
            """
            UPDATE \(group.quotedTable) NOT INDEXED
            SET \(key) = \(functions)_new(rowid, 0), \(salt) = \(functions)_new(rowid, 1), \(nonce) = \(functions)_new(rowid, 2)
            WHERE \(functions)_matches(rowid, \(key), \(salt), \(nonce))
            """, context: "writing the rotated secrets of \(group.label)")
        return connection.changes
    }

    func leftovers(after row: RowReference?, limit: Int) throws -> [RotationLeftover] {
        try finishStaging()
        let (key, salt, nonce) = group.quotedParts
        let page = try connection.prepare(
            """
            SELECT \(SQLiteSecretStore.columns(of: group, prefix: "t.")),
                   CASE WHEN s.rid IS NULL THEN \(functions)_staged(t.rowid) ELSE s.rotate END
            FROM \(group.quotedTable) AS t NOT INDEXED LEFT JOIN \(table) AS s ON s.rid = t.rowid
            WHERE t.rowid >= ?1 AND \(group.hasAnyPart("t."))
              AND NOT coalesce(
                CASE WHEN s.rid IS NULL THEN \(functions)_holds(t.rowid, t.\(key), t.\(salt), t.\(nonce))
                     ELSE t.\(key) IS s.new_key COLLATE BINARY AND t.\(salt) IS s.new_salt COLLATE BINARY
                          AND t.\(nonce) IS s.new_nonce COLLATE BINARY END, 0)
            ORDER BY t.rowid LIMIT \(limit)
            """)
        guard let from = SQLiteSecretStore.from(after: row?.rowID) else { return [] }
        try page.bind(from, at: 1)
        var rows: [RotationLeftover] = []
        while try page.step() {
            rows.append(RotationLeftover(row: SecretRow(reading: page), stagedRotation: page.isNull(5) ? nil : page.int64(5) != 0))
        }
        return rows
    }

    func rotated(after row: RowReference?, limit: Int) throws -> [(row: RowReference, secret: StoredSecret)] {
        try finishStaging()
        guard let from = SQLiteSecretStore.from(after: row?.rowID) else { return [] }
        let page = try connection.prepare(
            "SELECT rid, new_key, new_salt, new_nonce FROM \(table) WHERE rotate = 1 AND rid >= ?1 ORDER BY rid LIMIT \(limit)")
        try page.bind(from, at: 1)
        var fromTable: [(rowID: Int64, secret: StoredSecret)] = []
        while try page.step() {
            fromTable.append(
                (page.int64(0), StoredSecret(encryptedAPIKey: page.text(1) ?? "", salt: page.text(2) ?? "", nonce: page.text(3) ?? "")))
        }
        // The file's rows merged in, in rowid order, read no further than the page needs: the next
        // page starts past every row read here, so the file is read once over all the pages.
        let file = try openFile(), restaged = self.restaged
        let include = { (rowID: Int64, rotate: Bool) in rotate && !restaged.contains(rowID) }
        var nextInFile = try file.next(from: from, where: include)
        var merged: [(row: RowReference, secret: StoredSecret)] = []
        var fromTableTaken = 0
        while merged.count < limit {
            let nextInTable = fromTableTaken < fromTable.count ? fromTable[fromTableTaken] : nil
            if let inFile = nextInFile, nextInTable.map({ inFile.rowID < $0.rowID }) ?? true {
                merged.append((RowReference(rowID: inFile.rowID, id: nil), inFile.secret))
                nextInFile = inFile.rowID < .max ? try file.next(from: inFile.rowID + 1, where: include) : nil
            } else if let inTable = nextInTable {
                merged.append((RowReference(rowID: inTable.rowID, id: nil), inTable.secret))
                fromTableTaken += 1
            } else {
                break
            }
        }
        return merged
    }

    /// How often the stage file's readers went back to its start (tests: a scan in rowid order
    /// needs none).
    var rewinds: Int64 { file?.rewinds ?? 0 }

    /// The file's rows but those staged again, and the table's, as one `toolcfg_digest` text:
    /// "<rows>:<sum of the rows' hashes, mod 2^64, in hex>".
    func digest() throws -> String? {
        try finishStaging()
        try connection.createDigestFunction()
        let fromFile = try openFile().digest(skipping: Array(restaged))
        guard let text = try connection.queryText("SELECT toolcfg_digest(rid, new_key, new_salt, new_nonce) FROM \(table)"),
            let separator = text.firstIndex(of: ":"), let rows = UInt64(text[..<separator]),
            let sum = UInt64(text[text.index(after: separator)...], radix: 16)
        else { return nil }
        return "\(fromFile.rows + rows):\(String(fromFile.sum &+ sum, radix: 16))"
    }

    func drop() {
        closeFile()
        connection.detachScratch()
    }

    /// The functions go with the file (each holds it open until SQLite drops it).
    private func closeFile() {
        if let file { connection.unregisterStageFunctions(of: file, prefix: functions) }
        file = nil
    }

    deinit { closeFile() }
}
