/// A rotation's staging area in SQLite: a table keyed by rowid in a private temporary database of
/// the rotation's own connection (`SQLiteConnection.attachScratch`: a file deleted on open, so a
/// kill leaves nothing behind). Writing it takes no lock on the main database, so the application
/// keeps writing while the keys are derived, and a million rows cost disk, not RAM. The stages of
/// one rotation share that database, and dropping one discards it with all of them (they are
/// dropped together, at the rotation's end).
final class SQLiteRotationStage: RotationStaging {
    let group: SecretColumnGroup
    private let connection: SQLiteConnection
    private let name: String
    private let insert: SQLiteStatement

    init(_ connection: SQLiteConnection, group: SecretColumnGroup, index: Int) throws {
        self.connection = connection
        self.group = group
        name = "\(SQLiteConnection.scratchSchema).toolcfg_rotation_\(index)"
        try connection.attachScratch()
        try connection.execute(
            """
            DROP TABLE IF EXISTS \(name);
            CREATE TABLE \(name) (
                rid INTEGER PRIMARY KEY, rotate INTEGER NOT NULL,
                old_key TEXT, old_salt TEXT, old_nonce TEXT,
                new_key TEXT NOT NULL, new_salt TEXT NOT NULL, new_nonce TEXT NOT NULL)
            """, context: "creating the rotation's staging table")
        insert = try connection.prepare("INSERT OR REPLACE INTO \(name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
    }

    func stageRotation(_ row: RowReference, old: StoredSecret, new: StoredSecret) throws {
        try stage(row.rowID, rotate: true, old: old, new: new)
    }

    func stageKept(_ row: RowReference, _ current: StoredSecret) throws {
        try stage(row.rowID, rotate: false, old: nil, new: current)
    }

    private func stage(_ rowID: Int64, rotate: Bool, old: StoredSecret?, new: StoredSecret) throws {
        try insert.bind(rowID, at: 1)
        try insert.bind(rotate ? 1 : 0, at: 2)
        let texts = [old?.encryptedAPIKey, old?.salt, old?.nonce, new.encryptedAPIKey, new.salt, new.nonce]
        try insert.withBorrowedTexts(texts, from: 3) {
            try TemporaryStorage.staging("staging the rotated secrets of \(group.label)") { () throws(SQLiteError) in try insert.step() }
        }
    }

    /// A correlated UPDATE, not UPDATE ... FROM: SQLite runs UPDATE FROM as a join into an
    /// ephemeral table first, whose pages spill and are read back (1M rows with an 8 MiB cache:
    /// 2.5 s against 1.25 s, measured), where this looks each row's stage up by rowid as the
    /// table is walked.
    func applyUnchanged() throws -> Int {
        let (key, salt, nonce) = group.quotedParts
        try connection.execute(
            """
            UPDATE \(group.quotedTable) AS t
            SET (\(key), \(salt), \(nonce)) = (SELECT s.new_key, s.new_salt, s.new_nonce FROM \(name) AS s WHERE s.rid = t.rowid)
            WHERE EXISTS (SELECT 1 FROM \(name) AS s WHERE s.rid = t.rowid AND s.rotate = 1
                          AND s.old_key = t.\(key) AND s.old_salt = t.\(salt) AND s.old_nonce = t.\(nonce))
            """, context: "writing the rotated secrets of \(group.label)")
        return connection.changes
    }

    func leftovers(after row: RowReference?, limit: Int) throws -> [RotationLeftover] {
        let (key, salt, nonce) = group.quotedParts
        let page = try connection.prepare(
            """
            SELECT \(SQLiteSecretStore.columns(of: group, prefix: "t.")), s.rotate
            FROM \(group.quotedTable) AS t LEFT JOIN \(name) AS s ON s.rid = t.rowid
            WHERE t.rowid > ?1 AND \(group.hasAnyPart("t."))
              AND (s.rid IS NULL OR t.\(key) IS NOT s.new_key OR t.\(salt) IS NOT s.new_salt OR t.\(nonce) IS NOT s.new_nonce)
            ORDER BY t.rowid LIMIT \(limit)
            """)
        try page.bind(row?.rowID ?? .min, at: 1)
        var rows: [RotationLeftover] = []
        while try page.step() {
            rows.append(RotationLeftover(row: SecretRow(reading: page), stagedRotation: page.isNull(5) ? nil : page.int64(5) != 0))
        }
        return rows
    }

    func rotated(after row: RowReference?, limit: Int) throws -> [(row: RowReference, secret: StoredSecret)] {
        let page = try connection.prepare(
            "SELECT rid, new_key, new_salt, new_nonce FROM \(name) WHERE rotate = 1 AND rid > ?1 ORDER BY rid LIMIT \(limit)")
        try page.bind(row?.rowID ?? .min, at: 1)
        var rows: [(RowReference, StoredSecret)] = []
        while try page.step() {
            rows.append(
                (
                    RowReference(rowID: page.int64(0), id: nil),
                    StoredSecret(encryptedAPIKey: page.text(1) ?? "", salt: page.text(2) ?? "", nonce: page.text(3) ?? "")
                ))
        }
        return rows
    }

    func digest() throws -> String? {
        try connection.createDigestFunction()
        return try connection.queryText("SELECT toolcfg_digest(rid, new_key, new_salt, new_nonce) FROM \(name)")
    }

    func drop() {
        connection.detachScratch()
    }
}
