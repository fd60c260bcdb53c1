/// The statements an import runs on its connection.
final class ImportWriter {
    private let lookup: SQLiteStatement
    private let upsert: SQLiteStatement
    private let insertMany: SQLiteStatement
    private let insertOne: SQLiteStatement
    static let rowsPerStatement = 64

    init(connection: SQLiteConnection) throws {
        lookup = try connection.prepare(ToolConfigTable.lookupSQL)
        upsert = try connection.prepare(ToolConfigTable.upsertSQL)
        insertMany = try connection.prepare(ToolConfigTable.insertNewSQL(rows: Self.rowsPerStatement))
        insertOne = try connection.prepare(ToolConfigTable.insertNewSQL(rows: 1))
    }

    /// Writes new rows whose keys go in as they are, `rowsPerStatement` rows per statement (the
    /// rest one by one, alike): one statement per row spent about 10 % more of SQLite's time, in
    /// opening cursors and seeking again to where the last row went (measured with 1M rows).
    /// A failure has rolled back the whole transaction (OR ROLLBACK): the import must end.
    func writeNew(_ items: ArraySlice<ImportState.Item>, now: Int64) throws {
        var start = items.startIndex
        while start < items.endIndex {
            let count = items.endIndex - start >= Self.rowsPerStatement ? Self.rowsPerStatement : 1
            let statement = count == 1 ? insertOne : insertMany
            defer { statement.reset(keepingBindings: true) }
            for offset in 0..<count {
                let record = items[start + offset].record
                try bind(record, secret: record.storedSecret, now: now, to: statement, first: Int32(offset * 8 + 1))
            }
            _ = try statement.step()
            start += count
        }
    }

    private func bind(_ record: SnapshotRecord, secret: StoredSecret?, now: Int64, to statement: SQLiteStatement, first: Int32) throws {
        try statement.bind(record.userID, at: first)
        try statement.bind(record.toolID, at: first + 1)
        try statement.bind(record.enabled ? 1 : 0, at: first + 2)
        try statement.bind(secret?.encryptedAPIKey, at: first + 3)
        try statement.bind(secret?.salt, at: first + 4)
        try statement.bind(secret?.nonce, at: first + 5)
        try statement.bind(record.createdAt ?? now, at: first + 6)
        try statement.bind(record.updatedAt ?? now, at: first + 7)
    }

    func existing(userID: String, toolID: String) throws -> ToolConfigTable.Row? {
        defer { lookup.reset() }
        try lookup.bind(userID, at: 1)
        try lookup.bind(toolID, at: 2)
        guard try lookup.step() else { return nil }
        return ToolConfigTable.Row(id: lookup.int64(0), enabled: lookup.int64(1) != 0, secret: ToolConfigTable.secret(lookup, first: 2),
                                   createdAt: lookup.int64(5), updatedAt: lookup.int64(6))
    }

    /// Inserts or updates by (user_id, tool_id). No RETURNING clause: measured with SQLite 3.40,
    /// it made the upsert issue ~14 pwrite calls per row (2.9M for 200k rows, against 56k
    /// without it), 4x the time of the whole import.
    func write(_ record: SnapshotRecord, secret: StoredSecret?, now: Int64) throws {
        defer { upsert.reset(keepingBindings: true) }
        try bind(record, secret: secret, now: now, to: upsert, first: 1)
        _ = try upsert.step()
    }
}

/// What an import carries from batch to batch: errors so far, and enough to tell a row this
/// import already wrote (a pair repeated in the file) from one that was there before.
struct ImportState {
    let options: Importer.Options
    let sealer: SnapshotSealer?
    let writer: ImportWriter
    var errors: [SnapshotError] = []
    /// Into an empty table every record is new unless its pair was seen before in the file: the
    /// reader thread marks such records `certainlyNew` (see PairFilter) and they skip the lookup.
    let tableWasEmpty: Bool
    /// Rows inserted by this import have ids above this; AUTOINCREMENT never reuses one.
    let maxIDAtStart: Int64
    /// Rows that existed before the import and that a record has already updated or confirmed.
    var touchedExisting = Set<Int64>()
    let earlierLine: @Sendable (SnapshotRecord) -> Int?

    init(options: Importer.Options, sealer: SnapshotSealer?, connection: SQLiteConnection,
         earlierLine: @escaping @Sendable (SnapshotRecord) -> Int?) throws {
        self.options = options
        self.sealer = sealer
        self.earlierLine = earlierLine
        writer = try ImportWriter(connection: connection)
        maxIDAtStart = try connection.queryInt64("SELECT max(id) FROM user_tool_configs") ?? 0
        tableWasEmpty = try connection.queryInt64("SELECT EXISTS (SELECT 1 FROM user_tool_configs)") == 0
    }

    struct Item: Sendable {
        var record: SnapshotRecord
        var location: SnapshotLocation
        var pairHash: UInt64
        /// Set by the reader when the table was empty and no earlier record had this pair.
        var certainlyNew = false
        var existing: StoredSecret? = nil
    }

    /// The key a record leaves in its row, worked out off the writer's thread.
    enum KeyResolution: Sendable {
        /// The row keeps its stored triple (same key, or the record carries none).
        case keep
        case set(StoredSecret?)
        case failed(SnapshotError)
    }

    static func pairHash(_ record: SnapshotRecord) -> UInt64 {
        var hasher = Hasher()
        var user = record.userID, tool = record.toolID
        user.withUTF8 { hasher.combine($0.count); hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        tool.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// Applies one batch; the producer guarantees no pair appears in it twice.
    mutating func apply(_ batch: [Item], report: inout Importer.Report) throws {
        var rows: [ToolConfigTable.Row?] = []
        rows.reserveCapacity(batch.count)
        for item in batch {
            rows.append(item.certainlyNew ? nil : try writer.existing(userID: item.record.userID, toolID: item.record.toolID))
        }
        let masterKey = options.masterKey
        let sealer = self.sealer
        // Key derivations go to all cores ahead of the writes. Without a master key or sealer
        // there are none (stored triples are only checked for shape), and each record's key is
        // resolved inline: no copies of the batch, no arrays of results.
        var resolutions: [KeyResolution] = []
        if masterKey != nil || sealer != nil {
            let work = zip(batch, rows).map { item, row in
                var item = item
                item.existing = row?.secret
                return item
            }
            // Two records per task, so two new keys can be derived together (see resolvePair).
            let pairs = stride(from: 0, to: work.count, by: 2).map { Array(work[$0..<min($0 + 2, work.count)]) }
            resolutions = ParallelMap.map(pairs, jobs: options.jobs) { pair in
                pair.count == 2 ? Self.resolvePair(pair[0], pair[1], masterKey: masterKey, sealer: sealer)
                                : [Self.resolveKey(pair[0], masterKey: masterKey, sealer: sealer)]
            }.flatMap { $0 }
        }

        // The bulk case, an import into an empty table with no key to encrypt or check: runs of
        // new rows whose stored triple (or none) goes in as it is, many rows per statement. Run
        // by run, so a pair the filter cannot vouch for costs its own lookup and nothing more.
        func goesInAsIs(_ index: Int) -> Bool {
            masterKey == nil && sealer == nil && batch[index].certainlyNew && batch[index].record.key.isStoredAsIs
        }
        var runEnd = batch.startIndex
        for index in batch.indices where index >= runEnd {
            if goesInAsIs(index) {
                runEnd = index + 1
                while runEnd < batch.endIndex, goesInAsIs(runEnd) { runEnd += 1 }
                if errors.isEmpty {
                    try writer.writeNew(batch[index..<runEnd], now: options.now)
                    report.inserted += runEnd - index
                }
                continue
            }
            let item = batch[index]
            let row = rows[index]
            let resolution = resolutions.isEmpty
                ? Self.resolveKey(item, existing: row?.secret, masterKey: nil, sealer: nil)
                : resolutions[index]
            if case .failed(let error) = resolution {
                errors.append(error)
                continue
            }
            guard errors.isEmpty else { continue }
            let record = item.record
            guard let row else {
                let secret: StoredSecret? = if case .set(let s) = resolution { s } else { nil }
                try writer.write(record, secret: secret, now: options.now)
                report.inserted += 1
                continue
            }
            let sameKey = if case .keep = resolution { true } else { false }
            let identical = sameKey && row.enabled == record.enabled && (record.updatedAt == nil || record.updatedAt == row.updatedAt)
            if row.id > maxIDAtStart || touchedExisting.contains(row.id) {
                if identical {
                    report.duplicates += 1
                } else {
                    let earlier = earlierLine(record).map { " (line \($0))" } ?? ""
                    errors.append(SnapshotError(item.location.with(field: SnapshotField.userID),
                                                "the pair (user_id, tool_id) already appeared earlier in this file\(earlier) with different contents"))
                }
                continue
            }
            touchedExisting.insert(row.id)
            if identical {
                report.unchanged += 1
                continue
            }
            switch options.onConflict {
            case .skip:
                report.skipped += 1
            case .fail:
                errors.append(SnapshotError(item.location.with(field: SnapshotField.userID),
                                            "a row for this (user_id, tool_id) exists with different contents (row id \(row.id); --on-conflict fail)"))
            case .update:
                let secret: StoredSecret? = switch resolution {
                case .keep: row.secret
                case .set(let s): s ?? row.secret
                case .failed: nil
                }
                try writer.write(record, secret: secret, now: options.now)
                report.updated += 1
            }
        }
    }

    /// Encrypts plaintext keys (unless the row already holds the same key), checks imported
    /// triples against the master key when one is given, and opens sealed keys.
    /// Two records whose plaintext keys go into new rows (the onboarding case) get their row keys
    /// derived together, interleaved on the SHA extensions: about the cost of one. Anything else
    /// is resolved one by one.
    static func resolvePair(_ a: Item, _ b: Item, masterKey: MasterKey?, sealer: SnapshotSealer?) -> [KeyResolution] {
        func newPlaintext(_ item: Item) -> String? {
            guard item.existing == nil, case .plaintext(let key) = item.record.key else { return nil }
            return key
        }
        guard let masterKey, let first = newPlaintext(a), let second = newPlaintext(b) else {
            return [resolveKey(a, masterKey: masterKey, sealer: sealer), resolveKey(b, masterKey: masterKey, sealer: sealer)]
        }
        let salts = (SecureRandom.bytes(StoredSecret.saltLength), SecureRandom.bytes(StoredSecret.saltLength))
        let (keyA, keyB) = SecretCipher.rowKeys((masterKey, salts.0), (masterKey, salts.1))
        return [(first, keyA, salts.0, a), (second, keyB, salts.1, b)].map { plaintext, rowKey, salt, item -> KeyResolution in
            do throws(SecretError) {
                return .set(try SecretCipher.encrypt(plaintext, rowKey: rowKey, salt: salt, nonce: SecureRandom.bytes(StoredSecret.nonceLength)).encoded)
            } catch {
                return .failed(SnapshotError(item.location.with(field: SnapshotField.apiKey), error.description))
            }
        }
    }

    static func resolveKey(_ item: Item, masterKey: MasterKey?, sealer: SnapshotSealer?) -> KeyResolution {
        resolveKey(item, existing: item.existing, masterKey: masterKey, sealer: sealer)
    }

    static func resolveKey(_ item: Item, existing: StoredSecret?, masterKey: MasterKey?, sealer: SnapshotSealer?) -> KeyResolution {
        func sameAsStored(_ plaintext: String) -> Bool {
            guard let existing, let masterKey, let stored = try? SecretCipher.decrypt(existing, masterKey: masterKey) else { return false }
            // Bytes, not String ==: Swift's equality is canonical equivalence, and "café" in NFC
            // and NFD are different keys to the service that receives them.
            return stored.utf8.elementsEqual(plaintext.utf8)
        }
        func encrypt(_ plaintext: String) -> KeyResolution {
            guard let masterKey else {
                return .failed(SnapshotError(item.location.with(field: SnapshotField.apiKey), "a plaintext key needs the master key to be encrypted: give --master-key-file or TOOLCFG_MASTER_KEY", exitStatus: .usage))
            }
            if sameAsStored(plaintext) { return .keep }
            do {
                return .set(try SecretCipher.encrypt(plaintext, masterKey: masterKey))
            } catch {
                return .failed(SnapshotError(item.location.with(field: SnapshotField.apiKey), error.description))
            }
        }
        switch item.record.key {
        case .none:
            // No key in the record: an existing row keeps its key, a new row has none.
            return .keep
        case .plaintext(let plaintext):
            return encrypt(plaintext)
        case .encrypted(let secret):
            if let masterKey {
                do {
                    _ = try SecretCipher.decrypt(secret, masterKey: masterKey)
                } catch {
                    return .failed(SnapshotError(item.location.with(field: SnapshotField.encryptedAPIKey),
                                                 "\(error.description) (master key fingerprint \(masterKey.fingerprint))"))
                }
            }
            return secret == existing ? .keep : .set(secret)
        case .sealed(let sealed):
            guard let sealer else {
                return .failed(SnapshotError(item.location.with(field: SnapshotField.sealedAPIKey), "a sealed key but no sealing parameters"))
            }
            do {
                return encrypt(try sealer.open(sealed, userID: item.record.userID, toolID: item.record.toolID))
            } catch {
                return .failed(SnapshotError(item.location.with(field: SnapshotField.sealedAPIKey),
                                             "does not open under the passphrase: altered, or moved from another user or tool"))
            }
        }
    }

    /// A toolcfg snapshot must end with a trailer whose count and digest match what was read.
    mutating func checkIntegrity(header: SnapshotHeader?, trailer: SnapshotTrailer?, digest: SnapshotDigest?, file: String) -> Bool {
        let actual = digest.map { SnapshotTrailer(rowCount: $0.count, digest: $0.finish()) }
        do {
            return try SnapshotTrailer.check(trailer, header: header, actual: actual, file: file)
        } catch {
            errors.append(error)
            return false
        }
    }
}

/// A Bloom filter over 64-bit pair hashes: 8 MiB of bits, resident from the start (the array
/// is written with zeros). Each hash sets four bits in one 64-bit word, so an insert costs one
/// cache miss where four independent probes cost four (about 0.3 s per million rows, measured).
/// Near 1M pairs about 1 in 9,000 lookups is needless; near 10M, about 1 in 20 (simulated). A
/// Set of the hashes would hold 16 MiB at 1M pairs.
struct PairFilter {
    private var words = [UInt64](repeating: 0, count: 1 << 20)

    /// Adds the hash; true if it was certainly not there before.
    mutating func insert(_ hash: UInt64) -> Bool {
        let word = Int(truncatingIfNeeded: hash & (1 << 20 - 1))
        let bits = hash >> 20
        let flags: UInt64 = 1 << (bits & 63) | 1 << (bits >> 6 & 63) | 1 << (bits >> 12 & 63) | 1 << (bits >> 18 & 63)
        let old = words[word]
        words[word] = old | flags
        return old & flags != flags
    }
}
