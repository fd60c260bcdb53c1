import Foundation

/// Imports a snapshot into `user_tool_configs` all-or-nothing: every record is validated, keys
/// are encrypted (or checked) on all cores, and rows are upserted in one `BEGIN IMMEDIATE`
/// transaction that commits only if the whole file was good (and, for a toolcfg snapshot, its
/// row count and digest match). Any error rolls everything back.
///
/// With key work to do (a master key or a passphrase given), reading, validating, encrypting,
/// checking and deciding every record happen before the write lock, against a read snapshot, and
/// the decisions are staged (`ImportStage`); the write lock is then held only to write them, and
/// to decide again the few pairs the application wrote since. Without key work a row costs no
/// more to decide than to write, so the rows go straight into the table inside the transaction,
/// and staging them would only write them twice, unless the store stages every import (PostgreSQL,
/// where the write transaction stays short that way).
public struct Importer {
    public enum ConflictPolicy: String, Sendable, Codable, CaseIterable {
        /// Update the existing row (keeping its id and created_at).
        case update
        /// Leave the existing row as it is.
        case skip
        /// Fail the import if a row exists with different contents.
        case fail
    }

    public struct Options: Sendable {
        public var input: String
        public var format: SnapshotFormat
        public var onConflict: ConflictPolicy
        public var dryRun: Bool
        public var maxErrors: Int
        public var masterKey: MasterKey?
        public var passphrase: SecureBytes?
        /// Import although the master key opens none of the stored keys it is tried on.
        public var allowOtherMasterKey: Bool
        /// Import encrypted triples without a master key into a database that holds keys already
        /// (nothing then proves they are under the same key as the stored ones).
        public var allowUncheckedKeys = false
        /// Signals, checked between batches and before the commit (see `Interruption`).
        public var interruption = Interruption()
        /// Stage the rows before taking the write lock even when they need no key work: a shorter
        /// lock for a longer import (see `run`).
        public var shortLock: Bool
        public var now: Int64
        public var jobs: Int
        /// `--scheme`: the scheme to encrypt plaintext keys in; nil takes the installation's.
        public var scheme: SecretScheme?
        /// What plaintext keys are encrypted in, decided when the import starts (see
        /// `InstallationScheme`): the reason none could be chosen fails a record that needs one.
        var encryptionScheme: Result<SecretScheme, UsageError> = .success(.v1)

        public init(
            input: String, format: SnapshotFormat, onConflict: ConflictPolicy = .update, dryRun: Bool = false,
            maxErrors: Int = 1, masterKey: MasterKey? = nil, passphrase: SecureBytes? = nil, allowOtherMasterKey: Bool = false,
            shortLock: Bool = false,
            now: Int64 = Int64(Date().timeIntervalSince1970), jobs: Int = ParallelMap.defaultJobs, scheme: SecretScheme? = nil
        ) {
            self.scheme = scheme
            self.allowOtherMasterKey = allowOtherMasterKey
            self.shortLock = shortLock
            self.input = input
            self.format = format
            self.onConflict = onConflict
            self.dryRun = dryRun
            self.maxErrors = max(1, maxErrors)
            self.masterKey = masterKey
            self.passphrase = passphrase
            self.now = now
            self.jobs = jobs
        }
    }

    public struct Report: Sendable, Codable {
        public var database: String
        /// The file read, or "-" for standard input.
        public var file: String
        public var format: SnapshotFormat
        public var keys: KeyMode?
        public var records: Int
        public var inserted: Int
        public var updated: Int
        public var unchanged: Int
        public var skipped: Int
        /// Records repeating an earlier record of the same file with identical contents.
        public var duplicates: Int
        public var dryRun: Bool
        /// True when the file carried a row count and digest and both matched.
        public var integrityChecked: Bool
        public var masterKeyFingerprint: String?
        /// How long the write lock was held: what the application felt (0 for a dry run).
        public var writeLockSeconds: Double = 0
        public var elapsedSeconds: Double = 0
        /// Pairs the application wrote between the read snapshot and the write lock, decided
        /// again under the lock.
        public var changedDuringImport: Int = 0
        /// Stored keys the master key was tried on before writing, and how many it opened (nil
        /// without a master key).
        public var storedKeysTried: Int?
        public var storedKeysOpened: Int?
        /// Encrypted triples written as the file gave them without a master key to check that
        /// they open: the application may not be able to read them.
        public var uncheckedKeys: Int = 0
        /// What the operator must know that is no error (a file nothing proves complete).
        public var warnings: [String] = []
    }

    static let batchSize = 512

    let database: any Database
    let options: Options
    /// Runs between the read snapshot and the write phase of a staged import: tests write there
    /// as the application would.
    var betweenPhases: () throws -> Void = {}

    public init(database: any Database, options: Options) {
        self.database = database
        self.options = options
    }

    public func run(progress: ProgressHandler = { _ in }) throws -> Report {
        // A second signal ends an import at once: it may wait on a stalled pipe, where no safe
        // point comes, and nothing it wrote before the commit outlives the process.
        try options.interruption.begin(repeatEndsProcess: true)
        // The import decides every pair against the rows it sees, and tries the master key on
        // stored keys of every table: all of them must be seen whole.
        try database.requireEveryRowVisible(in: ([ToolConfigTable.name] + database.secretGroups(lenient: true).map(\.table)).uniqued())
        var options = self.options
        if options.masterKey != nil { options.encryptionScheme = try InstallationScheme.decide(database, asked: options.scheme) }
        let table = try database.toolConfigStore()
        let reader = try SnapshotReaders.open(path: options.input, format: options.format)
        let header = reader.header
        if header?.keys == .plaintext || header?.keys == .sealed, options.masterKey == nil {
            throw SecretError.missing(
                secret: "master key (to encrypt the imported keys)", flag: SecretKind.masterKey.flag,
                environmentVariable: SecretKind.masterKey.environmentVariable)
        }
        var sealer: SnapshotSealer?
        if let sealing = header?.sealing {
            guard let passphrase = options.passphrase else {
                throw SecretError.missing(
                    secret: "passphrase (the snapshot is sealed)", flag: SecretKind.passphrase.flag,
                    environmentVariable: SecretKind.passphrase.environmentVariable)
            }
            sealer = try Self.openSealing(sealing, passphrase: passphrase, file: reader.fileName)
        }
        var report = Report(
            database: database.location, file: options.input, format: options.format, keys: header?.keys,
            records: 0, inserted: 0, updated: 0, unchanged: 0, skipped: 0, duplicates: 0,
            dryRun: options.dryRun, integrityChecked: false, masterKeyFingerprint: options.masterKey?.fingerprint)

        let clock = ContinuousClock()
        let started = clock.now
        // A larger page cache for the one big transaction (default 2 MiB): fewer pages of the
        // table's four indexes spill and are read back.
        try database.useCache(kibibytes: 16384)
        defer { database.useDefaultCache() }
        // Staged: the file is read in a read snapshot, and the write lock taken afterwards (a dry
        // run never takes it). Straight: all in one write transaction, for rows that need no key
        // work: 1M stored triples took 6.1 s with the lock held throughout, against 9.8 s staged
        // with a 3.6 s lock (measured), so staging them is the operator's choice (`shortLock`),
        // unless the store always stages (PostgreSQL).
        let staged = options.dryRun || options.shortLock || options.masterKey != nil || sealer != nil || table.stagesEveryImport
        let stage = staged ? try table.makeStage(file: reader.fileName) : nil
        defer { stage?.drop() }
        var lock = Duration.zero
        try database.transaction(staged ? .read : .write, lockHeld: { lock = staged ? .zero : $0 }) {
            let target: any ImportTarget = try stage ?? table.makeWriter()
            var state = ImportState(
                options: options, sealer: sealer, target: target, tableWasEmpty: try table.isEmpty(),
                earlierLine: { [input = options.input, format = options.format] in
                    Self.firstLine(of: $0, in: input, format: format)
                })
            // Into an empty table, the secondary indexes are dropped and built again after the
            // rows are in, inside the same transaction: sorting once is cheaper than a million
            // random index inserts (4.5 s against 5.7 s of SQLite's time for 1M rows, measured).
            // The unique index that the upsert needs stays. Any failure rolls the indexes back
            // with the rows.
            let deferredIndexes = state.tableWasEmpty && !staged ? try table.dropSecondaryIndexes() : []
            try read(reader, header: header, into: &state, report: &report, progress: progress)
            if let masterKey = options.masterKey {
                report.storedKeysTried = state.keyCheck.checked
                report.storedKeysOpened = state.keyCheck.opened
                if !options.allowOtherMasterKey { try state.keyCheck.require(masterKey: masterKey) }
            }
            try rebuild(deferredIndexes, of: table, progress: progress)
            if staged { try options.interruption.check() } else { try options.interruption.commitBegins() }
        }
        if let stage, !options.dryRun {
            try betweenPhases()
            try options.interruption.check()
            progress(ProgressEvent(.writing))
            try database.transaction(.write, lockHeld: { lock = $0 }) {
                try database.lockForWriting([ToolConfigTable.name])
                let deferredIndexes = try table.isEmpty() ? try table.dropSecondaryIndexes() : []
                report.changedDuringImport = try decideAgain(stage, report: &report)
                try stage.applyStaged()
                try rebuild(deferredIndexes, of: table, progress: progress)
                CrashPoint.reach("import-written", pausingFor: options.interruption)
                try options.interruption.commitBegins()
            }
        }
        report.writeLockSeconds = lock.inSeconds
        report.elapsedSeconds = (clock.now - started).inSeconds
        return report
    }

    /// Reads, validates and decides every record, handing the decisions to the state's target.
    /// Reading and validating run on their own thread, a bounded number of batches ahead of this
    /// one, which owns the connection and the transaction. Throws the first errors in file order.
    private func read(
        _ reader: any SnapshotReader, header: SnapshotHeader?, into state: inout ImportState,
        report: inout Report, progress: ProgressHandler
    ) throws {
        if let masterKey = options.masterKey { try state.keyCheck.sample(database, masterKey: masterKey, jobs: options.jobs) }
        let keyedTables = options.masterKey == nil && !options.allowUncheckedKeys ? try tablesHoldingKeys() : []
        let inputSize = reader.source.size
        CrashPoint.reach("import-reading", pausingFor: options.interruption)
        progress(ProgressEvent(.reading, total: inputSize, unit: .bytes))
        let producer = RecordProducer(
            reader: reader, decoder: RecordDecoder(format: options.format, declaredKeys: header?.keys),
            tracksNewPairs: state.tableWasEmpty)
        let channel = BatchChannel<RecordProducer.Batch>(capacity: 4)
        startThread(name: "toolcfg-import-reader") { producer.run(into: channel, batchSize: Self.batchSize) }
        defer {
            channel.cancel()
            channel.waitUntilFinished()
        }
        var ended: (any Error)?
        while let batch = channel.take() {
            report.records += batch.count
            state.errors += batch.errors
            if state.errors.isEmpty { try state.apply(batch.items, report: &report) }
            if report.uncheckedKeys > 0 && !keyedTables.isEmpty {
                throw UncheckedKeysRefused(file: reader.fileName, keyedTables: keyedTables)
            }
            try options.interruption.check()
            if let end = batch.endError {
                if let error = end as? SnapshotError { state.errors.append(error) } else { ended = end }
            }
            if state.errors.count >= options.maxErrors || ended != nil { break }
            progress(ProgressEvent(.reading, done: batch.bytesConsumed, total: inputSize, unit: .bytes))
        }
        channel.cancel()
        channel.waitUntilFinished()
        if let ended { throw ended }
        if state.errors.isEmpty {
            report.integrityChecked = state.checkIntegrity(
                header: header, trailer: producer.trailer, digest: producer.digest, file: reader.fileName)
        }
        if !state.errors.isEmpty { throw Self.failure(state.errors, maxErrors: options.maxErrors) }
        // A bare JSON Lines file can lose its last lines and still parse: nothing shows it.
        if options.format == .jsonl && header == nil {
            report.warnings.append(
                "\(reader.fileName) has no toolcfg header and trailer line, so nothing proves that it is complete "
                    + "(a file cut after any line still reads as valid); toolcfg export writes both")
        }
    }

    /// The tables of the database that hold a stored key in any of their column groups.
    private func tablesHoldingKeys() throws -> [String] {
        try database.secretGroups(lenient: true).filter { !(try database.secretStore(for: $0).sample(1).isEmpty) }.map(\.table).uniqued()
    }

    /// Creates the indexes dropped for a load into an empty table, inside its transaction.
    private func rebuild(_ indexes: [String], of table: any ToolConfigStore, progress: ProgressHandler) throws {
        guard !indexes.isEmpty else { return }
        progress(ProgressEvent(.rebuildingIndexes))
        try table.rebuildIndexes(indexes)
    }

    /// Under the write lock: decides again, against the table as it is now, every staged pair the
    /// application wrote since the snapshot, and keeps the report's counts exact. Returns how many.
    private func decideAgain(_ stage: any ImportStaging, report: inout Report) throws -> Int {
        let changed = try stage.changedSinceSnapshot()
        for staged in changed {
            let current = try stage.currentRow(userID: staged.userID, toolID: staged.toolID)
            guard
                let action = ImportAction.decide(
                    enabled: staged.enabled, updatedAt: staged.updatedAtGiven ? staged.updatedAt : nil,
                    sameKey: staged.intent.isHeld(by: current?.secret, masterKey: options.masterKey),
                    existing: current, policy: options.onConflict)
            else {
                throw ImportState.conflict(staged.location, rowID: current?.id ?? 0, meanwhile: true)
            }
            staged.action.count(in: &report, by: -1)
            action.count(in: &report, by: 1)
            try stage.restage(staged.seq, as: action, over: current)
        }
        return changed.count
    }

    /// The first errors in file order, as one error or several.
    static func failure(_ all: [SnapshotError], maxErrors: Int) -> any Error {
        func position(_ error: SnapshotError) -> (Int, Int) { (error.location.record ?? .max, error.location.line ?? 0) }
        let errors = all.sorted { position($0) < position($1) }.prefix(maxErrors)
        if errors.count == 1 { return errors[errors.startIndex] }
        return SnapshotErrors(errors: Array(errors), stoppedEarly: all.count >= maxErrors)
    }

    /// The line of the first record for (user_id, tool_id) in a file, found by reading it again:
    /// only needed for the message of a failing import, so nothing is kept per row meanwhile.
    static func firstLine(of record: SnapshotRecord, in path: String, format: SnapshotFormat) -> Int? {
        guard path != "-", let reader = try? SnapshotReaders.open(path: path, format: format) else { return nil }
        while let raw = try? reader.next() {
            let fields = zip(raw.names, raw.values)
            let user = fields.first { $0.0 == SnapshotField.userID }?.1
            let tool = fields.first { $0.0 == SnapshotField.toolID }?.1
            if case .text(let u)? = user, case .text(let t)? = tool,
                u.utf8.elementsEqual(record.userID.utf8), t.utf8.elementsEqual(record.toolID.utf8)
            {
                return raw.location.line ?? raw.location.record
            }
        }
        return nil
    }

    static func openSealing(_ sealing: SealingParameters, passphrase: SecureBytes, file: String) throws -> SnapshotSealer {
        let result = Result { () throws(SecretError) in try SnapshotSealer(passphrase: passphrase, parameters: sealing) }
        if case .failure(.authenticationFailed) = result {
            throw SnapshotError(SnapshotLocation(file: file, line: 1, field: "sealing"), "the passphrase does not open this snapshot")
        }
        return try result.get()
    }
}
