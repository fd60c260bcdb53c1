/// The statements an import runs on its connection.
final class ImportWriter {
    private let lookup: SQLiteStatement
    private let upsert: SQLiteStatement
    private let connection: SQLiteConnection

    init(connection: SQLiteConnection) throws {
        self.connection = connection
        lookup = try connection.prepare(ToolConfigTable.lookupSQL)
        upsert = try connection.prepare(ToolConfigTable.upsertSQL)
    }

    func existing(userID: String, toolID: String) throws -> ToolConfigTable.Row? {
        defer { lookup.reset() }
        try lookup.bind([.text(userID), .text(toolID)])
        guard try lookup.step() else { return nil }
        return ToolConfigTable.Row(id: lookup.int64(0), enabled: lookup.int64(1) != 0, secret: ToolConfigTable.secret(lookup, first: 2),
                                   createdAt: lookup.int64(5), updatedAt: lookup.int64(6))
    }

    /// Inserts or updates by (user_id, tool_id); returns the rowid of an insert. No RETURNING
    /// clause: measured with SQLite 3.40, it made the upsert issue ~14 pwrite calls per row
    /// (2.9M for 200k rows, against 56k without it), 4x the time of the whole import.
    func write(_ record: SnapshotRecord, secret: StoredSecret?, now: Int64) throws -> Int64 {
        defer { upsert.reset() }
        try upsert.bind([.text(record.userID), .text(record.toolID), .integer(record.enabled ? 1 : 0),
                         secret.map { .text($0.encryptedAPIKey) } ?? .null, secret.map { .text($0.salt) } ?? .null,
                         secret.map { .text($0.nonce) } ?? .null,
                         .integer(record.createdAt ?? now), .integer(record.updatedAt ?? now)])
        _ = try upsert.step()
        return connection.lastInsertRowID
    }
}

/// What an import carries from batch to batch: errors so far, the digest of the records read,
/// and which rows this import has already written (to catch a pair repeated in the file).
struct ImportState {
    let options: Importer.Options
    let fileName: String
    let sealer: SnapshotSealer?
    let decoder: RecordDecoder
    var errors: [SnapshotError] = []
    let digest = SnapshotDigest()
    /// Row id -> line (or record index) of the record that wrote or confirmed it.
    var touched: [Int64: Int32] = [:]

    init(options: Importer.Options, fileName: String, sealer: SnapshotSealer?, decoder: RecordDecoder) {
        self.options = options
        self.fileName = fileName
        self.sealer = sealer
        self.decoder = decoder
    }

    struct Item: Sendable {
        var record: SnapshotRecord
        var location: SnapshotLocation
        var existing: StoredSecret?
    }

    /// The key a record leaves in its row, worked out off the writer's thread.
    enum KeyResolution: Sendable {
        /// The row keeps its stored triple (same key, or the record carries none).
        case keep
        case set(StoredSecret?)
        case failed(SnapshotError)
    }

    mutating func process(_ raws: [RawRecord], writer: ImportWriter, report: inout Importer.Report) throws {
        var items: [Item] = []
        for raw in raws {
            report.records += 1
            do {
                let record = try decoder.decode(raw)
                digest.add(record)
                items.append(Item(record: record, location: raw.location))
            } catch {
                errors.append(error)
                if errors.count >= options.maxErrors { return }
            }
        }
        guard errors.isEmpty else { return }
        // A pair repeated inside one batch is handled in the next round, after the first is written.
        var start = 0
        while start < items.count {
            var pairs = Set<[String]>()
            var end = start
            while end < items.count, pairs.insert([items[end].record.userID, items[end].record.toolID]).inserted { end += 1 }
            try apply(Array(items[start..<end]), writer: writer, report: &report)
            if !errors.isEmpty { return }
            start = end
        }
    }

    private mutating func apply(_ batch: [Item], writer: ImportWriter, report: inout Importer.Report) throws {
        var items = batch
        var rows: [ToolConfigTable.Row?] = []
        for index in items.indices {
            let row = try writer.existing(userID: items[index].record.userID, toolID: items[index].record.toolID)
            items[index].existing = row?.secret
            rows.append(row)
        }
        let masterKey = options.masterKey
        let sealer = self.sealer
        let resolutions = ParallelMap.map(items, jobs: options.jobs) { Self.resolveKey($0, masterKey: masterKey, sealer: sealer) }

        for (index, item) in items.enumerated() {
            let resolution = resolutions[index]
            if case .failed(let error) = resolution {
                errors.append(error)
                if errors.count >= options.maxErrors { return }
                continue
            }
            guard errors.isEmpty else { continue }
            let line = Int32(clamping: item.location.line ?? item.location.record ?? 0)
            let record = item.record
            guard let row = rows[index] else {
                let secret: StoredSecret? = if case .set(let s) = resolution { s } else { nil }
                touched[try writer.write(record, secret: secret, now: options.now)] = line
                report.inserted += 1
                continue
            }
            let identical = row.enabled == record.enabled && (record.updatedAt == nil || record.updatedAt == row.updatedAt)
                && { if case .keep = resolution { true } else { false } }()
            if let earlier = touched[row.id] {
                if identical {
                    report.duplicates += 1
                } else {
                    errors.append(SnapshotError(item.location.with(field: SnapshotField.userID),
                                                "the pair (user_id, tool_id) already appeared on line \(earlier) of this file with different contents"))
                }
                continue
            }
            touched[row.id] = line
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
                _ = try writer.write(record, secret: secret, now: options.now)
                report.updated += 1
            }
        }
    }

    /// Encrypts plaintext keys (unless the row already holds the same key), checks imported
    /// triples against the master key when one is given, and opens sealed keys.
    static func resolveKey(_ item: Item, masterKey: MasterKey?, sealer: SnapshotSealer?) -> KeyResolution {
        func sameAsStored(_ plaintext: String) -> Bool {
            guard let existing = item.existing, let masterKey, let stored = try? SecretCipher.decrypt(existing, masterKey: masterKey) else { return false }
            // Bytes, not String ==: Swift's equality is canonical equivalence, and "café" in NFC
            // and NFD are different keys to the service that receives them.
            return stored.utf8.elementsEqual(plaintext.utf8)
        }
        func encrypt(_ plaintext: String) -> KeyResolution {
            guard let masterKey else {
                return .failed(SnapshotError(item.location.with(field: SnapshotField.apiKey), "a plaintext key needs the master key to be encrypted: give --master-key-file or TOOLCFG_MASTER_KEY"))
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
            return secret == item.existing ? .keep : .set(secret)
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
    mutating func checkIntegrity(header: SnapshotHeader?, trailer: SnapshotTrailer?) -> Bool {
        let location = SnapshotLocation(file: fileName)
        guard let trailer else {
            if header != nil {
                errors.append(SnapshotError(location, "the snapshot has a header but no trailer with row_count and digest: the file is truncated"))
            }
            return false
        }
        let count = digest.count
        let actual = digest.finish()
        if trailer.rowCount != count {
            errors.append(SnapshotError(location.with(field: "row_count"), "the trailer says \(trailer.rowCount) rows but the file holds \(count): truncated or altered"))
        } else if trailer.digest != actual {
            errors.append(SnapshotError(location.with(field: "digest"), "the records do not match the trailer's digest: the file was altered"))
        }
        return errors.isEmpty
    }
}
