/// What an import carries from batch to batch: errors so far, and where its decisions go.
struct ImportState {
    let options: Importer.Options
    let sealer: SnapshotSealer?
    let target: any ImportTarget
    var errors: [SnapshotError] = []
    /// Whether the master key opens the stored keys (with a master key only).
    var keyCheck = MasterKeyCheck()
    /// Into an empty table every record is new unless its pair was seen before in the file: the
    /// reader thread marks such records `certainlyNew` (see PairFilter) and they skip the lookup.
    let tableWasEmpty: Bool
    let earlierLine: @Sendable (SnapshotRecord) -> Int?

    init(
        options: Importer.Options, sealer: SnapshotSealer?, target: any ImportTarget, tableWasEmpty: Bool,
        earlierLine: @escaping @Sendable (SnapshotRecord) -> Int?
    ) {
        self.options = options
        self.sealer = sealer
        self.target = target
        self.tableWasEmpty = tableWasEmpty
        self.earlierLine = earlierLine
    }

    typealias Item = ImportItem

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
        user.withUTF8 {
            hasher.combine($0.count); hasher.combine(bytes: UnsafeRawBufferPointer($0))
        }
        tool.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// Decides every record of one batch and hands the decisions to the target; the producer
    /// guarantees no pair appears in the batch twice.
    mutating func apply(_ batch: [Item], report: inout Importer.Report) throws {
        // The rows of the batch's pairs, looked up together (certainly new records need none).
        var found = [FoundRow?](repeating: nil, count: batch.count)
        let lookups = batch.indices.filter { !batch[$0].certainlyNew }
        if !lookups.isEmpty {
            for (index, row) in zip(lookups, try target.findAll(lookups.map { batch[$0] })) { found[index] = row }
        }
        let masterKey = options.masterKey
        let sealer = self.sealer
        if let masterKey, !keyCheck.settled {
            let stored = zip(batch, found).compactMap { item, found -> (String, String, StoredSecret)? in
                guard let found, !found.fromThisImport, let secret = found.row.secret else { return nil }
                return (ToolConfigTable.name, "row id \(found.row.id) (\(item.location))", secret)
            }
            try keyCheck.tryKeys(stored, masterKey: masterKey, jobs: options.jobs)
        }
        // Key derivations go to all cores ahead of the decisions. Without a master key or sealer
        // there are none (stored triples are only checked for shape), and each record's key is
        // resolved inline: no copies of the batch, no arrays of results.
        var resolutions: [KeyResolution] = []
        if masterKey != nil || sealer != nil {
            let work = zip(batch, found).map { item, row in
                var item = item
                item.existing = row?.row.secret
                return item
            }
            resolutions = Self.resolveAll(work, masterKey: masterKey, scheme: options.encryptionScheme, sealer: sealer, jobs: options.jobs)
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
                    try target.insertNew(batch[index..<runEnd], now: options.now)
                    report.inserted += runEnd - index
                    report.uncheckedKeys += batch[index..<runEnd].count { $0.record.storedSecret != nil }
                }
                continue
            }
            let item = batch[index]
            let existing = found[index]
            let resolution =
                resolutions.isEmpty
                ? Self.resolveKey(item, existing: existing?.row.secret, masterKey: nil, scheme: options.encryptionScheme, sealer: nil)
                : resolutions[index]
            if case .failed(let error) = resolution {
                errors.append(error)
                continue
            }
            guard errors.isEmpty else { continue }
            let record = item.record
            let intent = Self.intent(of: record, resolution, existing: existing?.row.secret)
            let sameKey = if case .keep = resolution { true } else { false }
            let action = ImportAction.decide(
                enabled: record.enabled, updatedAt: record.updatedAt, sameKey: sameKey,
                existing: existing?.row, policy: options.onConflict)
            if let existing, existing.fromThisImport {
                if action == .unchanged {
                    report.duplicates += 1
                } else {
                    let earlier = earlierLine(record).map { " (line \($0))" } ?? ""
                    errors.append(
                        SnapshotError(
                            item.location.with(field: SnapshotField.userID),
                            "the pair (user_id, tool_id) already appeared earlier in this file\(earlier) with different contents"))
                }
                continue
            }
            switch (action, existing) {
            case (.insert?, _):
                try target.insert(item, intent: intent, now: options.now)
            case (.update?, let existing?):
                try target.update(item, intent: intent, over: existing.row, now: options.now)
            case (let kept?, let existing?):
                try target.keep(item, intent: intent, row: existing.row, as: kept, now: options.now)
            case (nil, let existing):
                errors.append(Self.conflict(item.location, rowID: existing?.row.id ?? 0))
                continue
            case (_, nil):
                continue  // only .insert decides without an existing row
            }
            action?.count(in: &report, by: 1)
            if masterKey == nil, intent.mode == .triple, action == .insert || action == .update { report.uncheckedKeys += 1 }
        }
        if errors.isEmpty { try target.endBatch() }
    }

    /// An existing row with other contents under `--on-conflict fail`.
    static func conflict(_ location: SnapshotLocation, rowID: Int64, meanwhile: Bool = false) -> SnapshotError {
        SnapshotError(
            location.with(field: SnapshotField.userID),
            "a row for this (user_id, tool_id) exists with different contents (row id "
                + "\(rowID)\(meanwhile ? ", written by another connection since the import read the table" : ""); --on-conflict fail)"
        )
    }

    /// The key a record leaves in its row, from its resolution: a plaintext key that the row
    /// already holds keeps the stored triple, which opens to the same plaintext.
    static func intent(of record: SnapshotRecord, _ resolution: KeyResolution, existing: StoredSecret?) -> KeyIntent {
        switch record.key {
        case .none:
            return KeyIntent(mode: .keep, secret: nil)
        case .encrypted(let secret):
            return KeyIntent(mode: .triple, secret: secret)
        case .plaintext, .sealed:
            if case .set(let secret) = resolution { return KeyIntent(mode: .plaintext, secret: secret ?? existing) }
            return KeyIntent(mode: .plaintext, secret: existing)
        }
    }

    /// Resolves a batch's keys on all cores, deriving row keys together wherever the records
    /// allow (groups of `SecretCipher.groupSize`, derived on the selected PBKDF2 kernel):
    /// stored triples to check under the master key are decrypted in such groups, and plaintext
    /// keys going into new rows (the onboarding case) are encrypted in such groups under fresh
    /// salts. Anything else (a key to compare with the one stored, a sealed key) goes one by one.
    static func resolveAll(
        _ items: [Item], masterKey: MasterKey?, scheme: Result<SecretScheme, UsageError>, sealer: SnapshotSealer?,
        jobs: Int
    ) -> [KeyResolution] {
        var resolutions = [KeyResolution?](repeating: nil, count: items.count)
        if let masterKey {
            let checked = items.indices.filter { items[$0].record.storedSecret != nil }
            let secrets = checked.map { items[$0].record.storedSecret! }
            let opened = ParallelMap.mapInGroups(secrets, size: SecretCipher.groupSize, jobs: jobs) {
                SecretCipher.decrypt($0, masterKey: masterKey)
            }
            for (index, result) in zip(checked, opened) {
                let item = items[index]
                resolutions[index] =
                    switch result {
                    case .success: item.record.storedSecret == item.existing ? .keep : .set(item.record.storedSecret)
                    case .failure(let error): .failed(notOpening(item, error, masterKey))
                    }
            }
            let fresh = items.indices.filter { items[$0].existing == nil && items[$0].plaintextKey != nil }
            let sealed = ParallelMap.mapInGroups(fresh.map { items[$0] }, size: SecretCipher.groupSize, jobs: jobs) {
                encryptFresh($0, masterKey: masterKey, scheme: scheme)
            }
            for (index, resolution) in zip(fresh, sealed) { resolutions[index] = resolution }
        }
        let rest = items.indices.filter { resolutions[$0] == nil }
        let resolved = ParallelMap.map(rest, jobs: jobs) { resolveKey(items[$0], masterKey: masterKey, scheme: scheme, sealer: sealer) }
        for (index, resolution) in zip(rest, resolved) { resolutions[index] = resolution }
        return resolutions.map { $0! }
    }

    /// Plaintext keys for new rows, encrypted under fresh salts whose (v1) row keys are derived
    /// together, in the installation's scheme.
    static func encryptFresh(_ items: [Item], masterKey: MasterKey, scheme chosen: Result<SecretScheme, UsageError>) -> [KeyResolution] {
        let scheme: SecretScheme
        switch chosen {
        case .success(let chosen): scheme = chosen
        case .failure(let error):
            return items.map { .failed(SnapshotError($0.location.with(field: SnapshotField.apiKey), error.message, exitStatus: .usage)) }
        }
        let salts = items.map { _ in SecureRandom.bytes(StoredSecret.saltLength) }
        let rowKeys: [SecureBytes] =
            if scheme == .v1 {
                SecretCipher.rowKeys(salts.map { (masterKey, $0) })
            } else {
                salts.map { SecretCipher.rowKey(masterKey: masterKey, salt: $0, scheme: scheme) }
            }
        return items.indices.map { index -> KeyResolution in
            do throws(SecretError) {
                return .set(
                    try SecretCipher.encrypt(
                        items[index].plaintextKey!, rowKey: rowKeys[index], salt: salts[index],
                        nonce: SecureRandom.bytes(StoredSecret.nonceLength), scheme: scheme
                    ).encoded)
            } catch {
                return .failed(SnapshotError(items[index].location.with(field: SnapshotField.apiKey), error.description))
            }
        }
    }

    /// A stored triple from the file that does not open under the master key.
    static func notOpening(_ item: Item, _ error: SecretError, _ masterKey: MasterKey) -> SnapshotError {
        SnapshotError(
            item.location.with(field: SnapshotField.encryptedAPIKey),
            "\(error.description) (master key fingerprint \(masterKey.fingerprint))")
    }

    /// Encrypts a plaintext key (unless the row already holds the same key), checks an imported
    /// triple against the master key when one is given, or opens a sealed key.
    static func resolveKey(_ item: Item, masterKey: MasterKey?, scheme: Result<SecretScheme, UsageError>, sealer: SnapshotSealer?)
        -> KeyResolution
    {
        resolveKey(item, existing: item.existing, masterKey: masterKey, scheme: scheme, sealer: sealer)
    }

    /// Plaintext is encrypted in `scheme`, the installation's (see `InstallationScheme`).
    static func resolveKey(
        _ item: Item, existing: StoredSecret?, masterKey: MasterKey?, scheme: Result<SecretScheme, UsageError>,
        sealer: SnapshotSealer?
    ) -> KeyResolution {
        func sameAsStored(_ plaintext: String) -> Bool {
            guard let existing, let masterKey, let stored = try? SecretCipher.decrypt(existing, masterKey: masterKey) else { return false }
            // Bytes, not String ==: Swift's equality is canonical equivalence, and "café" in NFC
            // and NFD are different keys to the service that receives them.
            return stored.utf8.elementsEqual(plaintext.utf8)
        }
        func encrypt(_ plaintext: String) -> KeyResolution {
            guard let masterKey else {
                return .failed(
                    SnapshotError(
                        item.location.with(field: SnapshotField.apiKey),
                        "a plaintext key needs the master key to be encrypted: give --master-key-file or TOOLCFG_MASTER_KEY",
                        exitStatus: .usage))
            }
            if sameAsStored(plaintext) { return .keep }
            let chosen: SecretScheme
            switch scheme {
            case .success(let scheme): chosen = scheme
            case .failure(let error):
                return .failed(SnapshotError(item.location.with(field: SnapshotField.apiKey), error.message, exitStatus: .usage))
            }
            do throws(SecretError) {
                return .set(try SecretCipher.encrypt(plaintext, masterKey: masterKey, scheme: chosen))
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
                do throws(SecretError) {
                    _ = try SecretCipher.decrypt(secret, masterKey: masterKey)
                } catch {
                    return .failed(notOpening(item, error, masterKey))
                }
            }
            return secret == existing ? .keep : .set(secret)
        case .sealed(let sealed):
            guard let sealer else {
                return .failed(
                    SnapshotError(item.location.with(field: SnapshotField.sealedAPIKey), "a sealed key but no sealing parameters"))
            }
            do {
                return encrypt(try sealer.open(sealed, userID: item.record.userID, toolID: item.record.toolID))
            } catch {
                return .failed(
                    SnapshotError(
                        item.location.with(field: SnapshotField.sealedAPIKey),
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
