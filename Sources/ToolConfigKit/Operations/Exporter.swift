import Foundation

/// Exports `user_tool_configs` as a snapshot: one consistent read transaction, rows by id, one
/// bounded batch in memory at a time; keys as stored, decrypted, sealed, or left out.
public struct Exporter {
    public struct Options: Sendable {
        public var output: String
        public var format: SnapshotFormat
        public var keys: KeyMode
        public var masterKey: MasterKey?
        public var passphrase: SecureBytes?
        public var sealingCost: Argon2id.Parameters
        public var userID: String?
        public var toolID: String?
        public var overwrite: Bool
        public var verify: Bool
        public var jobs: Int
        /// Count the rows first, for the progress's total and ETA: a scan of the table (70-130 ms
        /// for 1M rows on PostgreSQL, some 7 % of the export), so skipped when no progress shows.
        public var countsRows: Bool

        public init(
            output: String, format: SnapshotFormat, keys: KeyMode = .encrypted, masterKey: MasterKey? = nil,
            passphrase: SecureBytes? = nil, sealingCost: Argon2id.Parameters = .recommended,
            userID: String? = nil, toolID: String? = nil, overwrite: Bool = false, verify: Bool = false,
            jobs: Int = ParallelMap.defaultJobs, countsRows: Bool = true
        ) {
            self.output = output
            self.format = format
            self.keys = keys
            self.masterKey = masterKey
            self.passphrase = passphrase
            self.sealingCost = sealingCost
            self.userID = userID
            self.toolID = toolID
            self.overwrite = overwrite
            self.verify = verify
            self.jobs = jobs
            self.countsRows = countsRows
        }
    }

    public struct Report: Sendable, Codable {
        public var database: String
        /// The file written, or "-" for standard output.
        public var file: String
        public var format: SnapshotFormat
        public var keys: KeyMode
        public var rows: Int
        public var bytes: Int
        /// SHA-256 of the records (JSON and JSON Lines, or CSV with --verify).
        public var digest: String?
        public var masterKeyFingerprint: String?
        public var verified: Bool
    }

    static let batchSize = 1024

    let database: any DatabaseReader
    let options: Options

    public init(database: any DatabaseReader, options: Options) {
        self.database = database
        self.options = options
    }

    public func run(progress: ProgressHandler = { _ in }) throws -> Report {
        let options = self.options
        if options.keys == .sealed && options.format == .csv {
            throw UsageError("--keys sealed needs --format json or jsonl (CSV has no header to carry the sealing parameters)")
        }
        if options.verify && options.output == "-" {
            throw UsageError("--verify reads the written file back, so it needs --out FILE, not standard output")
        }
        if options.keys == .plaintext || options.keys == .sealed, options.masterKey == nil {
            throw SecretError.missing(
                secret: "master key", flag: SecretKind.masterKey.flag, environmentVariable: SecretKind.masterKey.environmentVariable)
        }
        try database.requireEveryRowVisible(in: [ToolConfigTable.name])
        let table = try database.toolConfigReader()
        let sealer: SnapshotSealer? =
            try options.keys == .sealed ? SnapshotSealer(passphrase: requirePassphrase(), cost: options.sealingCost) : nil
        let sink = try OutputSink(path: options.output, holdsSecrets: options.keys.holdsSecrets, overwrite: options.overwrite)
        let writer = SnapshotWriters.make(options.format, sink: sink, keys: options.keys)
        // A CSV file has no trailer: its digest is needed only to verify it.
        let digest: SnapshotDigest? = options.format != .csv || options.verify ? SnapshotDigest() : nil
        var rows = 0

        // One read transaction: a consistent snapshot, which never blocks the application's writes.
        try database.readTransaction {
            try writer.begin(SnapshotHeader(keys: options.keys, sealing: sealer?.parameters))
            let total = options.countsRows ? try table.count(userID: options.userID, toolID: options.toolID) : nil
            progress(ProgressEvent(.writing, total: total))
            if options.keys == .encrypted || options.keys == .omit {
                // Stored keys need no crypto: each row goes from the database's buffers to the output.
                try table.forEachRow(userID: options.userID, toolID: options.toolID, omitKeys: options.keys == .omit) { row in
                    try writer.write(row)
                    digest?.include(row)
                    rows += 1
                    if rows % Self.batchSize == 0 { progress(ProgressEvent(.writing, done: rows, total: total)) }
                }
                progress(ProgressEvent(.writing, done: rows, total: total))
                return
            }
            // A batch's keys are opened on all cores while the batch before it is written and the
            // next one read: in turn, reading and writing left both cores idle for 4-6 % of the time.
            var batch: [SnapshotRecord] = []
            batch.reserveCapacity(Self.batchSize)
            var pending: Deferred<Result<[SnapshotRecord], any Error>>?
            func writePending() throws {
                guard let opened = pending?.wait() else { return }
                pending = nil
                let records = try opened.get()
                for record in records {
                    try writer.write(record)
                    digest?.add(record)
                }
                rows += records.count
                progress(ProgressEvent(.writing, done: rows, total: total))
            }
            func flush() throws {
                let next = Deferred { [batch] in Result { try Self.transformKeys(batch, options: options, sealer: sealer) } }
                try writePending()
                pending = next
                batch.removeAll(keepingCapacity: true)
            }
            try table.forEachRow(userID: options.userID, toolID: options.toolID, omitKeys: false) { row in
                batch.append(row.record)
                if batch.count == Self.batchSize { try flush() }
            }
            try flush()
            try writePending()
        }
        let trailer = SnapshotTrailer(rowCount: rows, digest: digest?.finish() ?? "")
        try writer.finish(trailer)
        try sink.commit()

        if options.verify {
            try Self.verify(path: options.output, format: options.format, expected: trailer, sealer: sealer, progress: progress)
        }
        return Report(
            database: database.location, file: options.output, format: options.format, keys: options.keys,
            rows: rows, bytes: sink.bytesWritten, digest: digest == nil ? nil : trailer.digest,
            masterKeyFingerprint: options.masterKey?.fingerprint, verified: options.verify)
    }

    private func requirePassphrase() throws -> SecureBytes {
        guard let passphrase = options.passphrase else {
            throw SecretError.missing(
                secret: "passphrase", flag: SecretKind.passphrase.flag, environmentVariable: SecretKind.passphrase.environmentVariable)
        }
        return passphrase
    }

    /// Decrypts (and seals) a batch's keys on all cores, in groups whose row keys are derived
    /// together (`SecretCipher.decrypt` on an array); a key that will not decrypt names its row,
    /// the first such in id order.
    private static func transformKeys(_ batch: [SnapshotRecord], options: Options, sealer: SnapshotSealer?) throws -> [SnapshotRecord] {
        switch options.keys {
        case .encrypted, .omit:
            preconditionFailure("stored keys are exported row by row")
        case .plaintext, .sealed:
            let masterKey = options.masterKey!
            let keyed = batch.indices.compactMap { index -> (index: Int, secret: StoredSecret)? in
                guard case .encrypted(let secret) = batch[index].key else { return nil }
                return (index, secret)
            }
            @Sendable func transform(_ record: SnapshotRecord, _ opened: Result<String, SecretError>) -> Result<SnapshotRecord, RowError> {
                do throws(SecretError) {
                    var copy = record
                    let plaintext = try opened.get()
                    if let sealer {
                        copy.key = .sealed(try sealer.seal(plaintext, userID: record.userID, toolID: record.toolID))
                    } else {
                        copy.key = .plaintext(plaintext)
                    }
                    return .success(copy)
                } catch {
                    return .failure(RowError(table: ToolConfigTable.name, rowID: record.id ?? 0, cause: error))
                }
            }
            let results = ParallelMap.mapInGroups(keyed, size: SecretCipher.groupSize, jobs: options.jobs) { group in
                zip(group, SecretCipher.decrypt(group.map(\.secret), masterKey: masterKey)).map { entry, opened in
                    transform(batch[entry.index], opened)
                }
            }
            var records = batch
            for (entry, result) in zip(keyed, results) { records[entry.index] = try result.get() }
            return records
        }
    }

    /// Reads the written file back and proves it holds exactly the rows exported: same count,
    /// same digest, and (sealed) every key opens under the passphrase for its own row.
    static func verify(
        path: String, format: SnapshotFormat, expected: SnapshotTrailer, sealer: SnapshotSealer?,
        progress: ProgressHandler = { _ in }
    ) throws {
        var records = 0
        progress(ProgressEvent(.verifying, total: expected.rowCount))
        let read = try SnapshotValidator.validate(ByteSource(path: path), format: format) { record in
            if case .sealed(let sealed) = record.key, let sealer {
                _ = try sealer.open(sealed, userID: record.userID, toolID: record.toolID)
            }
            records += 1
            if records % batchSize == 0 { progress(ProgressEvent(.verifying, done: records, total: expected.rowCount)) }
        }
        progress(ProgressEvent(.verifying, done: records, total: expected.rowCount))
        guard read.records == expected.rowCount, read.digest == expected.digest else {
            throw VerificationError(
                path: path,
                message:
                    "reading the file back gave \(read.records) rows with digest \(read.digest), but \(expected.rowCount) "
                    + "rows with digest \(expected.digest) were exported"
            )
        }
    }
}
