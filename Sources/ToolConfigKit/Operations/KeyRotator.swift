import Foundation

/// Re-encrypts every stored secret of every table that has them under a new master key, in one
/// `BEGIN IMMEDIATE` transaction committed with `synchronous=FULL`. Each triple is decrypted
/// under the old key, encrypted under the new one with a fresh salt and nonce, and checked to
/// open under the new key before it is written. A row that already opens under the new key is
/// counted as already rotated (so a second run, or a resumed one, ends in the same state); a
/// row that opens under neither fails the whole run, and nothing is written.
public struct KeyRotator {
    public struct Options: Sendable {
        public var oldKey: MasterKey
        public var newKey: MasterKey
        public var dryRun: Bool
        public var backupPath: String?
        public var jobs: Int

        public init(oldKey: MasterKey, newKey: MasterKey, dryRun: Bool = false, backupPath: String? = nil,
                    jobs: Int = ParallelMap.defaultJobs) {
            self.oldKey = oldKey
            self.newKey = newKey
            self.dryRun = dryRun
            self.backupPath = backupPath
            self.jobs = max(1, jobs)
        }
    }

    public struct TableReport: Sendable, Codable {
        public var table: String
        public var rows: Int
        public var rotated: Int
        public var alreadyRotated: Int
        public var noKey: Int
    }

    public struct Report: Sendable, Codable {
        public var database: String
        /// The current (old) key's, as --master-key-file names it.
        public var masterKeyFingerprint: String
        public var newMasterKeyFingerprint: String
        public var dryRun: Bool
        public var tables: [TableReport]
        public var backupFile: String?
        /// Rows whose stored triple was read back after the commit and found as written.
        public var verifiedAfterCommit: Int
        public var nextStep: String
    }

    static let pageSize = 512

    let connection: SQLiteConnection
    let options: Options

    public init(connection: SQLiteConnection, options: Options) {
        self.connection = connection
        self.options = options
    }

    enum Outcome: Sendable {
        case rotated(StoredSecret)
        case alreadyRotated
        case noKey
        case failed(String)
    }

    public func run(progress: ProgressHandler = { _ in }) throws -> Report {
        guard options.oldKey.material != options.newKey.material else {
            throw UsageError("the new master key is the same as the current one (fingerprint \(options.oldKey.fingerprint))")
        }
        let tables = try EncryptedTable.discover(connection)
        var reports: [TableReport] = []
        // The rotated rows, digested with their new triples as they are written, and their rowids
        // (8 bytes a row, in rowid order): after the commit they are read back and compared.
        let expected = RowStateDigest()
        var rotatedRowIDs: [String: [Int64]] = [:]
        var processed = 0

        if !options.dryRun {
            // Durable when it matters: the commit waits for the disk.
            try connection.execute("PRAGMA synchronous = FULL")
        }
        var committed = false, madeBackup = false
        defer {
            if connection.isInTransaction { try? connection.execute("ROLLBACK") }
            // A rotation that did not commit leaves no copy of the old keys behind (only the copy
            // it made: an existing file at that path was refused, never touched).
            if madeBackup, !committed, !options.dryRun, let backupPath = options.backupPath { unlink(backupPath) }
        }
        if options.backupPath != nil { progress(ProgressEvent(.backup)) }
        try begin(lockingWith: tables.first, madeBackup: &madeBackup)
        let totalRows = try EncryptedTable.rowCount(connection, tables)
        progress(ProgressEvent(.derivingKeys, total: totalRows))
        for table in tables {
            var report = TableReport(table: table.name, rows: 0, rotated: 0, alreadyRotated: 0, noKey: 0)
            let update = try connection.prepare(table.updateSQL())
            try SecretRow.scan(connection, table, pageSize: Self.pageSize) { rows in
                let outcomes = ParallelMap.map(rows, jobs: options.jobs) { [options] row in
                    Self.rotate(row, oldKey: options.oldKey, newKey: options.newKey)
                }
                for (row, outcome) in zip(rows, outcomes) {
                    report.rows += 1
                    switch outcome {
                    case .noKey:
                        report.noKey += 1
                    case .alreadyRotated:
                        report.alreadyRotated += 1
                    case .failed(let reason):
                        throw RotationError(table: table.name, row: row.label, rowID: row.rowID, reason: reason)
                    case .rotated(let secret):
                        report.rotated += 1
                        if !options.dryRun {
                            try update.run([.text(secret.encryptedAPIKey), .text(secret.salt), .text(secret.nonce), .integer(row.rowID)])
                            expected.add(row.rowID, secret)
                            rotatedRowIDs[table.name, default: []].append(row.rowID)
                        }
                    }
                }
                processed += rows.count
                progress(ProgressEvent(.derivingKeys, done: processed, total: totalRows))
            }
            reports.append(report)
        }
        if options.dryRun {
            try connection.execute("ROLLBACK")
        } else {
            try connection.execute("COMMIT", context: "committing the rotation")
            committed = true
        }
        if !options.dryRun { progress(ProgressEvent(.verifying)) }
        let verified = options.dryRun ? 0 : try verifyCommitted(tables, rotated: rotatedRowIDs, expected: expected.finish())
        let total = reports.reduce(0) { $0 + $1.rotated + $1.alreadyRotated }
        let next = options.dryRun
            ? "dry run: nothing was written; every key opens under the current or the new key"
            : "every stored key (\(total)) is now under the new master key \(options.newKey.fingerprint): switch the application to it; keep the old key \(options.oldKey.fingerprint) until the application runs on the new one\(options.backupPath.map { " (the backup \($0) still needs the old key)" } ?? "")"
        return Report(database: connection.path, masterKeyFingerprint: options.oldKey.fingerprint, newMasterKeyFingerprint: options.newKey.fingerprint,
                      dryRun: options.dryRun, tables: reports, backupFile: options.backupPath, verifiedAfterCommit: verified, nextStep: next)
    }

    /// Opens the transaction; with a backup, first a read snapshot that the backup copies, then
    /// the write lock taken on that same snapshot (a no-op write). If another writer committed in
    /// between, taking the lock fails, and the backup is made again: so the backup is exactly the
    /// state the rotation starts from. (SQLite refuses a backup from a connection that holds the
    /// write lock, so the order cannot be the other way round.)
    private func begin(lockingWith table: EncryptedTable?, madeBackup: inout Bool) throws {
        guard let backupPath = options.backupPath else {
            try connection.execute(options.dryRun ? "BEGIN" : "BEGIN IMMEDIATE", context: "taking the write lock")
            return
        }
        // SQLite does not call the busy handler when a read transaction asks for the write lock,
        // so this loop waits for it, up to the connection's busy timeout.
        let deadline = ContinuousClock.now + connection.options.busyTimeout
        while true {
            try connection.execute("BEGIN")
            _ = try connection.queryInt64("SELECT count(*) FROM sqlite_master")  // starts the snapshot
            try connection.backup(to: backupPath)
            madeBackup = true
            guard !options.dryRun, let table else { return }
            let locked = Result { () throws(DatabaseError) in
                try connection.execute("UPDATE \(table.quotedName) SET rowid = rowid WHERE 0", context: "taking the write lock")
            }
            guard case .failure(let error) = locked else { return }
            try connection.execute("ROLLBACK")
            unlink(backupPath)
            madeBackup = false
            guard error.isBusy, ContinuousClock.now < deadline else { throw error }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// Decrypts under the old key and re-encrypts under the new one, proving the result opens
    /// with the derived key at hand; or recognises a row already under the new key.
    static func rotate(_ row: SecretRow, oldKey: MasterKey, newKey: MasterKey) -> Outcome {
        let decoded: DecodedSecret
        switch row.triple {
        case .none: return .noKey
        case .malformed(let reason): return .failed(reason)
        case .decoded(let triple): decoded = triple
        }
        let salt = SecureRandom.bytes(StoredSecret.saltLength), nonce = SecureRandom.bytes(StoredSecret.nonceLength)
        // Both row keys at once: interleaved on the SHA extensions they cost about one.
        let (oldRowKey, rowKey) = SecretCipher.rowKeys((oldKey, decoded.salt), (newKey, salt))
        let opened = Result { () throws(SecretError) in try SecretCipher.decrypt(decoded, rowKey: oldRowKey) }
        guard case .success(let plaintext) = opened else {
            if case .failure(let error) = opened, error != .authenticationFailed { return .failed(error.description) }
            if (try? SecretCipher.decrypt(decoded, masterKey: newKey)) != nil { return .alreadyRotated }
            return .failed("decrypts under neither the old key (\(oldKey.fingerprint)) nor the new key (\(newKey.fingerprint))")
        }
        do {
            var bytes = Array(plaintext.utf8)
            defer { AESGCM.wipe(&bytes) }
            let sealed = try rowKey.withBytes { key throws(SecretError) in try AESGCM.seal(key: key, nonce: nonce, plaintext: bytes) }
            var check = try rowKey.withBytes { key throws(SecretError) in try AESGCM.open(key: key, nonce: nonce, sealed: sealed) }
            defer { AESGCM.wipe(&check) }
            guard check == bytes else { return .failed("the re-encrypted key did not open under the new key") }
            return .rotated(DecodedSecret(sealed: sealed, salt: salt, nonce: nonce).encoded)
        } catch {
            return .failed(error.description)
        }
    }

    /// After the commit, reads every rotated row back and checks it holds exactly the triple that
    /// was written (and proven to open under the new key). Returns the number of rows checked.
    private func verifyCommitted(_ tables: [EncryptedTable], rotated: [String: [Int64]], expected: [UInt8]) throws -> Int {
        // A new connection: nothing from this one's page cache, only what the file and its WAL hold.
        let connection = try SQLiteConnection(path: self.connection.path, mode: .readOnly, options: self.connection.options)
        let actual = RowStateDigest()
        for table in tables {
            guard let rowIDs = rotated[table.name], !rowIDs.isEmpty else { continue }
            var next = 0
            try SecretRow.scan(connection, table, pageSize: Self.pageSize) { rows in
                for row in rows where next < rowIDs.count && row.rowID == rowIDs[next] {
                    actual.add(row.rowID, row.secret)
                    next += 1
                }
            }
            if next < rowIDs.count { actual.add(-1, nil) }  // a rotated row is gone
        }
        let count = actual.count
        guard actual.finish() == expected else {
            throw RotationError(table: tables.map(\.name).joined(separator: ", "), row: "(rotated rows)",
                                reason: "committed, but reading back shows rotated rows that differ from what was written (another writer changed them since the commit?); run verify-keys",
                                rolledBack: false)
        }
        return count
    }
}

/// SHA-256 over (rowid, triple or none) of rows in order.
final class RowStateDigest {
    private let stream = SHA256Stream()
    private(set) var count = 0

    func add(_ rowID: Int64, _ secret: StoredSecret?) {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: rowID.bigEndian) { bytes.append(contentsOf: $0) }
        if let secret {
            for part in [secret.encryptedAPIKey, secret.salt, secret.nonce] {
                withUnsafeBytes(of: UInt32(part.utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
                bytes.append(contentsOf: part.utf8)
            }
        } else {
            bytes.append(0)
        }
        bytes.withUnsafeBytes { stream.update($0) }
        count += 1
    }

    func finish() -> [UInt8] { stream.finish() }
}

public struct RotationError: ToolcfgError {
    public var table: String
    public var row: String
    /// The row's rowid (its id in user_tool_configs); nil when the error is about many rows.
    public var rowID: Int64? = nil
    public var reason: String
    /// False only for a failure found after the commit.
    public var rolledBack = true

    public var exitStatus: ExitStatus { .dataError }
    public var description: String { "\(table) \(row): \(reason)\(rolledBack ? "; nothing was changed" : "")" }
    public var errorContext: ErrorContext { ErrorContext(table: table, rowID: rowID) }
}
