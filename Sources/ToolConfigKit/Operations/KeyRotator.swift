import Foundation

/// Re-encrypts every stored secret of every column group (`SecretColumnMap`: every table, every
/// group, refused when a column looks like a secret no group accounts for) under a new master
/// key, in each value's scheme or the one asked for, beside a live application that gives up on
/// the write lock after a few seconds. The expensive work happens before the lock, and the lock
/// is held only to write:
///
/// 0. With `makeRoom` (PostgreSQL), rows get room on their pages to be rewritten in place, in
///    short transactions that change no value (`PostgresRoomMaker`).
/// 1. Snapshot, no write lock: in one read transaction (in WAL mode a reader never blocks the
///    application's writes) each triple is decrypted under the old key and encrypted under the
///    new one with a fresh salt and nonce, on all cores, and checked to open under the new key;
///    the results go to the stage (`RotationStaging`: SQLite, a file of the rotation's own read by
///    functions in step with the write phase's UPDATE; PostgreSQL, temporary tables). `--backup`
///    copies this snapshot.
/// 2. Write phase, one write transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the tables locked
///    against other writers, never readers): the staged triples are written with a
///    compare-and-swap per row (only where the row still holds the triple that was read); the
///    rows the application inserted, changed or gave a key since the snapshot are redone; a
///    scan proves that every keyed row holds a triple known to open under the new key; the
///    commit is made with `synchronous=FULL`.
/// 3. The rotated rows are read back through a new connection.
///
/// A value that already opens under the new key, in the scheme it is to end in, counts as already
/// rotated (so a second run, or a resumed one, ends in the same state); a value that opens under
/// neither key, or a group some of whose columns are NULL, fails the whole run, and nothing is
/// written. With the same key as old and new, a rotation changes only the scheme (an upgrade to
/// v2 in place).
public struct KeyRotator {
    public struct Options: Sendable {
        public var oldKey: MasterKey
        public var newKey: MasterKey
        public var dryRun: Bool
        public var backupPath: String?
        public var jobs: Int
        /// PostgreSQL: give every keyed row room on its page first (see `SecretStore.roomMaker`).
        public var makeRoom: Bool
        /// The scheme every value is written in; nil keeps each value's own.
        public var scheme: SecretScheme?
        /// Where the secrets are: the application's groups, the naming rule, and the groups the
        /// operator declared.
        public var columns: SecretColumnMap
        /// The sqlx era's `secrets.yaml`, rotated with the database (see `SecretsFileRotation`).
        public var secretsFile: String?
        /// Runs after the snapshot and before the write phase: where a new key only this run holds
        /// is stored to survive a crash (`RotationKeys.stage`), after the checks that refuse a run.
        public var beforeWriting: @Sendable () throws -> Void = {}
        /// `--backup-dir`: a backup named for the database, the time and the old key, in this
        /// folder (see `BackupDirectory`); exclusive with `backupPath`.
        public var backupDirectory: String?
        /// With `backupDirectory`: after a successful rotation, keep the newest N of the
        /// database's backups there and remove the older ones.
        public var keepBackups: Int?
        /// Signals, checked at safe points up to the commit (see `Interruption`).
        public var interruption = Interruption()

        public init(
            oldKey: MasterKey, newKey: MasterKey, dryRun: Bool = false, backupPath: String? = nil,
            jobs: Int = ParallelMap.defaultJobs, makeRoom: Bool = false, scheme: SecretScheme? = nil,
            columns: SecretColumnMap = SecretColumnMap(), secretsFile: String? = nil
        ) {
            self.secretsFile = secretsFile
            self.oldKey = oldKey
            self.newKey = newKey
            self.dryRun = dryRun
            self.backupPath = backupPath
            self.jobs = max(1, jobs)
            self.makeRoom = makeRoom
            self.scheme = scheme
            self.columns = columns
        }

        /// The backup asked for: one file, or a folder with how many of its backups to keep.
        /// Checked before any key is read or made, as well as by `requireSomethingToDo`.
        public static func requireOneBackup(path: String?, directory: String?, keep: Int?) throws {
            if path != nil && directory != nil { throw UsageError("--backup and --backup-dir exclude each other: give one") }
            if let keep {
                guard directory != nil else { throw UsageError("--keep-backups needs --backup-dir (the folder whose backups it prunes)") }
                guard keep >= 1 else { throw UsageError("--keep-backups must be at least 1 (the backup this run makes)") }
            }
        }

        /// The same key as old and new only changes the scheme: refused unless one is asked for.
        public func requireSomethingToDo() throws {
            try Self.requireOneBackup(path: backupPath, directory: backupDirectory, keep: keepBackups)
            if oldKey.material == newKey.material && scheme == nil {
                throw UsageError(
                    "the new master key is the same as the current one (fingerprint \(oldKey.fingerprint)): "
                        + "give another key, or --scheme v2 (or v1) to change only the scheme of the stored values in place")
            }
        }
    }

    /// One column group's counts.
    public struct GroupReport: Sendable, Codable {
        public var table: String
        /// The ciphertext, salt and nonce columns.
        public var columns: [String]
        /// Rows in the snapshot.
        public var rows: Int
        /// Values this run re-encrypted and committed.
        public var rotated: Int
        /// Values found under the new key (in the scheme asked for) already.
        public var alreadyRotated: Int
        /// Rows whose group is NULL in the snapshot.
        public var empty: Int
        /// Rows the application inserted, changed or gave a key between the snapshot and the
        /// write lock: handled again inside it.
        public var changedDuringRotation: Int
        /// Rows read in the snapshot that the application deleted (or cleared the key of) before
        /// the write lock: nothing to write.
        public var removedDuringRotation: Int
        /// What --make-room found and did before the snapshot (absent without it).
        public var room: RoomReport?
    }

    /// Every group's counts added up.
    public struct Totals: Sendable, Codable {
        public var groups: Int
        public var tables: Int
        public var rows: Int
        public var rotated: Int
        public var alreadyRotated: Int
        public var empty: Int
    }

    /// What a rotation did to the secrets file.
    public struct SecretsFileReport: Sendable, Codable {
        public var file: String
        /// "rotated" (or to be, in a dry run) or "already_rotated".
        public var outcome: String
    }

    public struct Report: Sendable, Codable {
        public var database: String
        /// The current (old) key's, as --master-key-file names it.
        public var masterKeyFingerprint: String
        public var newMasterKeyFingerprint: String
        public var dryRun: Bool
        /// The scheme the values were written in: "keep" (each its own), "v1" or "v2".
        public var scheme: String
        public var groups: [GroupReport]
        public var total: Totals
        /// The secrets file, when given: rotated, or already under the new key.
        public var secretsFile: SecretsFileReport?
        /// The releases of the application the database fits.
        public var applicationRelease: ApplicationRelease
        /// What the operator must know that is no error (a secrets file the run did not cover).
        public var warnings: [String]
        public var backupFile: String?
        /// With a backup folder: whether this run created it.
        public var backupDirectoryCreated: Bool?
        /// With `keepBackups`: the older backups of the database this run removed from the folder.
        public var backupsRemoved: [String]?
        /// How long the write lock was held: what the application felt (0 for a dry run).
        public var writeLockSeconds: Double
        public var elapsedSeconds: Double
        /// Rotated rows read back after the commit through a new connection and found as written.
        public var verifiedAfterCommit: Int
        /// Rotated rows whose key the application wrote again after the commit (it still opens
        /// under the old or the new key): a rotation after the application has switched keys
        /// picks up the ones it wrote under the old key. Deleted rows are in neither count.
        public var changedAfterCommit: Int
        public var nextStep: String
        /// What the operator does next, one step a line, in the form of the keys given (set by
        /// `RotationKeys.nextSteps`).
        public var nextSteps: [String]?
    }

    /// Rows per page of the snapshot's scan, the write phase's scans and the read-back: 4,096,
    /// not 512, saved PostgreSQL's round trips (1M v2 values: 18.6 -> 16.2 s) and SQLite's
    /// per-page hand-offs (7.6 -> 6.9 s); a page in flight is about a megabyte.
    static let pageSize = 4096
    /// How long the rotation waits for the secrets file's lock (the application holds it while
    /// it rewrites the file, a moment).
    static let secretsFileLockTimeout = Duration.seconds(10)
    /// The write phase's page cache, in KiB. Rewriting a million rows' triples touches some 40,000
    /// table pages; with 8, 16 or 32 MiB of cache the write phase took the same time (1.34, 1.47,
    /// 1.40 s for the update of 1M rows, measured), and 32 MiB put a 1M-row rotation at 70 MiB RSS.
    static let writeCacheKiB = 8192

    let database: any Database
    let options: Options
    /// Runs between the snapshot and the write phase: tests write there as the application would.
    var betweenPhases: () throws -> Void = {}
    /// Runs between the commit and the read-back: tests write there as the application would.
    var afterCommit: () throws -> Void = {}
    /// From how many rotated rows of a table the report passes on the engine's advice for a
    /// shorter write phase (at 50,000 a write phase takes about half a second or more).
    var adviceAfterRows = 50_000

    public init(database: any Database, options: Options) {
        self.database = database
        self.options = options
    }

    enum Outcome: Sendable {
        case rotated(StoredSecret)
        case alreadyRotated
        case noKey
        case failed(String)
    }

    public func run(progress: ProgressHandler = { _ in }) throws -> Report {
        try options.requireSomethingToDo()
        try options.interruption.begin()
        let clock = ContinuousClock()
        let started = clock.now
        var stages: [any RotationStaging] = []
        var succeeded = false, commitUnknown = false
        var madeBackup: String?, createdFolders: [String] = []
        defer {
            for stage in stages { stage.drop() }
            // A rotation that failed or was interrupted leaves no copy of the old keys behind
            // (only the copy it made: an existing file at that path was refused, never touched),
            // nor the backup folder it made, so the same command runs again.
            if !succeeded {
                // Kept when the commit's outcome is unknown: it may be the only copy of the
                // secrets as they were before a rotation that did commit.
                if let madeBackup, !commitUnknown { unlink(madeBackup) }
                BackupDirectory.removeCreated(createdFolders)
            }
        }

        // The staging tables come first: a read-only snapshot may write temporary tables but
        // not create them (PostgreSQL).
        let groups = try database.secretGroups(options.columns)
        let tables = groups.map(\.table).uniqued()
        try database.requireEveryRowVisible(in: tables)
        let stores = try groups.map(database.secretStore)
        // The ledger's word now (the values' schemes are counted as the snapshot reads them).
        let ledgerRelease = try ApplicationRelease.detect(database, values: StoredSchemes())
        if ledgerRelease.ledger == "sqlx", options.scheme == .v2 {
            throw UsageError(
                "--scheme v2: this database is of the sqlx era (\(ledgerRelease.releases)), whose application cannot read scheme v2; "
                    + "nothing was changed"
            )
        }
        // The secrets file is read and checked before anything changes.
        let secretsFile = try options.secretsFile.map { try SecretsFileRotation(path: $0, oldKey: options.oldKey, newKey: options.newKey) }
        defer { secretsFile?.abandon() }
        let backupFolder = options.backupDirectory.map(BackupDirectory.init)
        let backupNaming = try backupFolder.map { _ in try database.backupNaming() }
        if let backupFolder { createdFolders = try backupFolder.prepare() }
        // 0. Room for in-place rewrites, in short transactions of its own, before the snapshot;
        // every table checked before any is changed. One pass per table (its first group's
        // store), for the rows that hold any of its groups.
        let firstOfTable = groups.indices.filter { index in groups.firstIndex { $0.table == groups[index].table } == index }
        let roomMakers =
            options.makeRoom
            ? try firstOfTable.map { index in
                (index, try stores[index].roomMaker(groupsOfTable: groups.filter { $0.table == groups[index].table }))
            } : []
        if !roomMakers.isEmpty && !options.dryRun { try refuseBeforeMakingRoom(stores) }
        var rooms = [RoomReport?](repeating: nil, count: stores.count)
        for (index, maker) in roomMakers { rooms[index] = try maker.run(dryRun: options.dryRun, progress: progress) }
        try options.interruption.check()  // rows moved for room hold the same data: nothing to undo
        if !options.dryRun {
            for (index, store) in stores.enumerated() { stages.append(try store.makeRotationStage(index: index)) }
        }

        // 1. The snapshot: read, derive and stage, holding no lock the application waits for.
        // The staged rows stay in the temporary tables when the read transaction ends.
        var reports: [GroupReport] = []
        var values = StoredSchemes()
        var snapshotMark: String?
        try database.transaction(.read) {
            snapshotMark = try database.snapshotMark()
            if let backupPath = options.backupPath {
                progress(ProgressEvent(.backup))
                try database.backup(to: backupPath, tables: tables)
                madeBackup = backupPath
            } else if let backupFolder, let backupNaming {
                progress(ProgressEvent(.backup))
                madeBackup = try backupFolder.write(
                    database: backupNaming.database, at: Date(), fingerprint: options.oldKey.fingerprint,
                    fileExtension: backupNaming.fileExtension
                ) { try database.backup(to: $0, tables: tables) }
            }
            CrashPoint.reach("backup-written", pausingFor: options.interruption)
            try options.interruption.check()
            let totalRows = try stores.reduce(0) { $0 + (try $1.count()) }
            progress(ProgressEvent(.derivingKeys, total: totalRows))
            var processed = 0
            for (index, store) in stores.enumerated() {
                let group = store.group
                let stage = options.dryRun ? nil : stages[index]
                var report = GroupReport(
                    table: group.table, columns: group.columns, rows: 0, rotated: 0, alreadyRotated: 0, empty: 0,
                    changedDuringRotation: 0, removedDuringRotation: 0, room: rooms[index])
                var schemes = [0, 0]  // v1, v2
                func record(_ rows: [SecretRow], _ outcomes: [Outcome]) throws {
                    for (row, outcome) in zip(rows, outcomes) {
                        report.rows += 1
                        if let secret = row.secret { schemes[secret.scheme == .v2 ? 1 : 0] += 1 }
                        switch outcome {
                        case .noKey:
                            report.empty += 1
                        case .alreadyRotated:
                            report.alreadyRotated += 1
                            try stage?.stageKept(row.reference, row.secret!)
                        case .failed(let reason):
                            throw RotationError(group: group, row: row, reason: reason)
                        case .rotated(let secret):
                            report.rotated += 1
                            try stage?.stageRotation(row.reference, old: row.secret!, new: secret)
                        }
                    }
                    processed += rows.count
                    progress(ProgressEvent(.derivingKeys, done: processed, total: totalRows))
                    try options.interruption.check()
                }
                // A page's derivations run on the other threads while this one reads the next
                // page and stages the one before (1M v2 values: the reads and the stage's writes
                // were a third of the phase, with the derivations waiting).
                var pending: (rows: [SecretRow], outcomes: Deferred<[Outcome]>)?
                do {
                    try store.scan(pageSize: Self.pageSize) { rows in
                        let previous = pending
                        pending = (rows, Deferred { [options] in Self.rotateAll(rows, options: options) })
                        if let previous { try record(previous.rows, previous.outcomes.wait()) }
                    }
                } catch {
                    // Never fail with a page's derivations still running: the process exits on
                    // the error, and OpenSSL's cleanup at exit would pull its locks from under
                    // them (a segfault, seen when the server cut the connection mid-stage).
                    _ = pending?.outcomes.wait()
                    throw error
                }
                if let pending { try record(pending.rows, pending.outcomes.wait()) }
                values.byTable[group.table, default: [:]][.v1, default: 0] += schemes[0]
                values.byTable[group.table, default: [:]][.v2, default: 0] += schemes[1]
                reports.append(report)
            }
        }
        // Every old and new key, and each decrypted value for a moment, has been in memory.
        CrashPoint.reach("keys-derived")
        let release = try ApplicationRelease.detect(database, values: values)
        guard !options.dryRun else {
            succeeded = true
            return report(
                reports, release: release, secretsFile: secretsFile, lock: .zero, elapsed: clock.now - started, verified: 0,
                changedAfterCommit: 0, backup: madeBackup, backupFolderCreated: !createdFolders.isEmpty)
        }

        for stage in stages { try stage.finishStaging() }
        try options.beforeWriting()
        try betweenPhases()
        try options.interruption.check()
        // 2. The write phase: one transaction, as short as the writes themselves, committed with
        // synchronous=FULL (durable when it matters).
        try database.makeCommitsDurable()
        try database.useCache(kibibytes: Self.writeCacheKiB)
        defer { database.useDefaultCache() }
        progress(ProgressEvent(.writing))
        // The secrets file's new text beside it, synced, before the commit; under its lock
        // until it is renamed into place after the commit.
        try secretsFile?.stage(waitingUpTo: Self.secretsFileLockTimeout)
        var lock = Duration.zero
        do {
            try database.transaction(.write, lockHeld: { lock = $0 }) {
                try database.lockForWriting(tables)
                // A group added (or dropped) since they were listed would be left out.
                let now = try database.secretGroups(options.columns)
                guard now == groups else {
                    throw TablesChangedDuringRotation(database: database.location, before: groups.map(\.label), now: now.map(\.label))
                }
                // Nobody committed since the snapshot: no row can hold anything but what was read.
                let quiet = try snapshotMark.map { try !database.writtenSince($0, in: tables) } ?? false
                let applied = try Self.applyUnchanged(stages)
                for (index, stage) in stages.enumerated() {
                    try write(stage, applied: applied[index], into: &reports[index], quiet: quiet)
                    try options.interruption.check()
                }
                // The last safe point: a signal from here on lets the rotation finish (exit 0).
                CrashPoint.reach("write-phase", pausingFor: options.interruption)
                try options.interruption.commitBegins()
            }
        } catch let error as any EngineError where error.leftCommitUnknown {
            commitUnknown = true
            throw error
        }
        succeeded = true
        CrashPoint.reach("database-committed", pausingFor: options.interruption)
        do {
            try secretsFile?.install()
        } catch var error as SecretsFileError {
            error.reason =
                "the database is committed under the new key, but the file is not: \(error.reason); run the same command again to finish"
            throw error
        }

        // 3. Read back what was committed.
        try afterCommit()
        progress(ProgressEvent(.verifying))
        var verified = 0, changedAfterCommit = 0
        do {
            let reader = try database.openReader()
            let readers = try stages.map { try reader.secretReader(for: $0.group) }
            // The tables' digests on two connections at once: another thread takes the larger
            // groups through a second reader while this one takes the stages' digests and the
            // rest (1M v2 values on SQLite: the read-back 0.6 s with every table digest on one
            // thread). A digest that fails, on either side, is nil, and that group is read back
            // row by row, where the error surfaces. Without a second connection (the server's
            // limit, say), all of them here.
            let second = try? database.openReader()
            let elsewhere = second == nil ? [] : Set(Self.largerHalf(of: reports.map(\.rows)))
            let handoff = Handoff(
                try stages.indices.filter(elsewhere.contains).compactMap { index in
                    try second.map { (index: index, reader: try $0.secretReader(for: stages[index].group)) }
                })
            let committedElsewhere = Deferred { handoff.value.map { ($0.index, try? $0.reader.digest()) } }
            let written = stages.map { try? $0.digest() }
            var found = stages.indices.map { elsewhere.contains($0) ? nil : try? readers[$0].digest() }
            for (index, digest) in committedElsewhere.wait() { found[index] = digest }
            for index in stages.indices {
                let matching = written[index] != nil && written[index] == found[index]
                let counts = try readBack(stages[index], rotated: reports[index].rotated, through: readers[index], digestsMatch: matching)
                verified += counts.verified
                changedAfterCommit += counts.changed
            }
        } catch let error as any ToolcfgError where !(error is RotationError) {
            // The server or the file went away after the commit: the rotation stands, unchecked.
            throw ReadBackError(database: database.location, cause: error)
        }
        // Advice only: a failure to get it must not fail a committed rotation.
        let advice = zip(stores, reports).compactMap { store, table in
            table.rotated >= adviceAfterRows ? (try? store.writePhaseAdvice()) ?? nil : nil
        }
        var result = report(
            reports, release: release, secretsFile: secretsFile, lock: lock, elapsed: clock.now - started, verified: verified,
            changedAfterCommit: changedAfterCommit, advice: advice, backup: madeBackup,
            backupFolderCreated: !createdFolders.isEmpty)
        // Older backups go only once this one stands for a committed, verified rotation.
        if let backupFolder, let backupNaming, let keep = options.keepBackups {
            let pruned = backupFolder.prune(
                database: backupNaming.database, fileExtension: backupNaming.fileExtension, keep: keep, current: madeBackup)
            result.backupsRemoved = pruned.removed
            result.warnings += pruned.problems
        }
        return result
    }

    /// The indices of groups of about half the rows together, the largest groups first (a
    /// greedy split of `rows` between two threads).
    static func largerHalf(of rows: [Int]) -> [Int] {
        var mine = 0, other = 0
        var chosen: [Int] = []
        for index in rows.indices.sorted(by: { rows[$0] > rows[$1] }) {
            if mine <= other {
                mine += rows[index]
                chosen.append(index)
            } else {
                other += rows[index]
            }
        }
        return chosen
    }

    /// Before rows are moved to make room: what the read phase would refuse, looked for on a
    /// sample of each table (a wrong old key, a row under neither key) and the backup's path, so
    /// that a run refused for them has changed nothing.
    private func refuseBeforeMakingRoom(_ stores: [any SecretStore]) throws {
        if let backupPath = options.backupPath { try PrivateFile.requireAbsent(backupPath) }
        for store in stores {
            let rows = try store.sample(MasterKeyCheck.samplePerTable)
            for (row, outcome) in zip(rows, rotateAll(rows)) {
                if case .failed(let reason) = outcome {
                    throw RotationError(group: store.group, row: row, reason: reason)
                }
            }
        }
    }

    /// A page's outcomes, in row order, on all cores, in groups of the selected kernel's lanes
    /// (`SecretCipher.groupSize`): sixteen rows' old and new row keys in two sixteen-lane calls,
    /// two rows' in two paired calls, or one row's two keys one after the other.
    private func rotateAll(_ rows: [SecretRow]) -> [Outcome] {
        Self.rotateAll(rows, options: options)
    }

    private static func rotateAll(_ rows: [SecretRow], options: Options) -> [Outcome] {
        ParallelMap.mapInGroups(rows, size: SecretCipher.groupSize, jobs: options.jobs) { group in
            rotate(group, oldKey: options.oldKey, newKey: options.newKey, scheme: options.scheme)
        }
    }

    /// Inside the write transaction: every stage's compare-and-swap writes (`applyUnchanged`),
    /// the groups of one table in one statement where the engine can (each row rewritten once,
    /// not once per group), and how many each wrote, in the stages' order.
    static func applyUnchanged(_ stages: [any RotationStaging]) throws -> [Int] {
        var applied = [Int?](repeating: nil, count: stages.count)
        for index in stages.indices where applied[index] == nil {
            let together = stages.indices.filter { $0 > index && stages[$0].group.table == stages[index].group.table }
            if !together.isEmpty, let counts = try stages[index].applyUnchanged(togetherWith: together.map { stages[$0] }) {
                for (position, count) in zip([index] + together, counts) { applied[position] = count }
            } else {
                applied[index] = try stages[index].applyUnchanged()
            }
        }
        return applied.map { $0 ?? 0 }
    }

    /// Inside the write transaction, after the stage's compare-and-swap writes (`applied` of
    /// them): the rows changed since the snapshot. When nothing was committed since the snapshot
    /// (`quiet`) and every staged triple was written, every keyed row holds its staged triple by
    /// construction, and the scan for rows changed meanwhile is skipped.
    private func write(_ stage: any RotationStaging, applied: Int, into report: inout GroupReport, quiet: Bool) throws {
        let group = stage.group
        let store = try database.secretStore(for: group)
        let staged = report.rotated
        if quiet && applied == staged { return }
        report.rotated = applied
        var leftStaged = 0
        var after: RowReference?
        while true {
            let leftovers = try stage.leftovers(after: after, limit: Self.pageSize)
            guard let last = leftovers.last else { break }
            for (leftover, outcome) in zip(leftovers, rotateAll(leftovers.map(\.row))) {
                let row = leftover.row
                report.changedDuringRotation += 1
                switch leftover.stagedRotation {
                case true?: leftStaged += 1
                case false?: report.alreadyRotated -= 1
                case nil: break
                }
                switch outcome {
                case .noKey:
                    break  // leftovers hold a key; kept for completeness
                case .alreadyRotated:
                    report.alreadyRotated += 1
                    try stage.stageKept(row.reference, row.secret!)
                case .failed(let reason):
                    throw RotationError(
                        group: group, row: row, reason: "\(reason) (written by another connection since the rotation read it)")
                case .rotated(let secret):
                    report.rotated += 1
                    try store.setSecret(secret, of: row.reference)
                    try stage.stageRotation(row.reference, old: row.secret!, new: secret)
                }
            }
            after = last.row.reference
        }
        report.removedDuringRotation = staged - applied - leftStaged
    }

    /// After the commit, reads every rotated row back through `reader` (nothing from the writing
    /// connection's cache) and compares it with what was written: first as one digest of the
    /// table against one of the stage (`digestsMatch`: every one of the `rotated` rows is as
    /// written), else row by row. A row whose key the application wrote again since the commit is
    /// counted, not failed, when it opens under one of the two keys; anything else means the
    /// commit did not store what was written.
    private func readBack(_ stage: any RotationStaging, rotated: Int, through reader: any SecretReader, digestsMatch: Bool) throws -> (
        verified: Int, changed: Int
    ) {
        if digestsMatch { return (rotated, 0) }
        let group = stage.group
        var verified = 0, changed = 0
        var after: RowReference?
        while true {
            let written = try stage.rotated(after: after, limit: Self.pageSize)
            guard let last = written.last else { break }
            for ((_, secret), row) in zip(written, try reader.rows(written.map(\.row))) {
                // A row deleted, or whose key was cleared, has nothing left to re-encrypt.
                guard let row, let current = row.secret else { continue }
                if current == secret {
                    verified += 1
                    continue
                }
                guard [options.oldKey, options.newKey].contains(where: { (try? SecretCipher.decrypt(current, masterKey: $0)) != nil })
                else {
                    throw RotationError(
                        group: group, row: row,
                        reason: "committed, but reading it back shows a value that opens under neither key; run verify-keys",
                        rolledBack: false)
                }
                changed += 1
            }
            after = last.row
        }
        return (verified, changed)
    }

    private func report(
        _ groups: [GroupReport], release: ApplicationRelease, secretsFile: SecretsFileRotation?, lock: Duration,
        elapsed: Duration, verified: Int, changedAfterCommit: Int, advice: [String] = [], backup: String?,
        backupFolderCreated: Bool
    ) -> Report {
        let total = Totals(
            groups: groups.count, tables: groups.map(\.table).uniqued().count, rows: groups.reduce(0) { $0 + $1.rows },
            rotated: groups.reduce(0) { $0 + $1.rotated }, alreadyRotated: groups.reduce(0) { $0 + $1.alreadyRotated },
            empty: groups.reduce(0) { $0 + $1.empty })
        let scheme = options.scheme.map { " in scheme \($0.rawValue)" } ?? ""
        // Never "every" while the sqlx era's secrets file, not given, may hold secrets too.
        let fileLeft = release.hasSecretsFile && secretsFile == nil
        let secrets =
            "\(fileLeft ? "every secret of the database" : "every stored secret") (\(total.rotated + total.alreadyRotated) in "
            + "\(total.groups) column group\(total.groups == 1 ? "" : "s") of \(total.tables) "
            + "table\(total.tables == 1 ? "" : "s")\(secretsFile == nil ? "" : ", and the secrets file")"
            + "\(fileLeft ? "; not the secrets file" : "")"
        var next: String
        if options.dryRun {
            next =
                "dry run: nothing was written; \(fileLeft ? "every secret of the database" : "every stored secret") "
                + "opens under the current or the new key"
        } else if options.oldKey.material == options.newKey.material {
            next = "\(secrets)) is now\(scheme) under the same master key \(options.newKey.fingerprint)"
        } else if fileLeft {
            next =
                "\(secrets)) is now\(scheme) under the new master key \(options.newKey.fingerprint): do not switch the application to it "
                + "until rotate --secrets-file PATH has run with the same keys (the application reads the file at start); keep the old key "
                + "\(options.oldKey.fingerprint) until then"
        } else {
            // What to do next, in the form of the keys given, is the front end's (next_steps).
            next =
                "\(secrets)) is now\(scheme) under the new master key \(options.newKey.fingerprint)"
                + (backup.map { "; the backup \($0) needs the old key" } ?? "")
        }
        var warnings: [String] = []
        if fileLeft {
            warnings.append(
                "this database is of the sqlx era (\(release.releases)), whose installations also keep secrets under the master key in "
                    + "$BODHI_HOME/secrets.yaml: \(options.dryRun ? "give" : "it was not rotated; run rotate again with") "
                    + "--secrets-file PATH, "
                    + "or the application will not start on the new key")
        }
        if options.scheme == .v2 && release.readsV2 == false {
            warnings.append(
                "the application this database fits (\(release.releases)) cannot read scheme v2: "
                    + "move it to v0.0.\(ApplicationRelease.firstV2Release) or later before it starts on these values")
        }
        if options.scheme == .v1 && release.readsV2 == true {
            warnings.append("the application this database fits (\(release.releases)) refuses scheme v1 everywhere but tenants (HTTP 422)")
        }
        if secretsFile != nil && !options.dryRun && options.oldKey.material != options.newKey.material {
            next +=
                "; the application rewrites secrets.yaml under the key it runs on: stop it before switching, "
                + "and if it wrote the file since, "
                + "run this rotation again before it starts on the new key"
        }
        if !options.dryRun {
            if changedAfterCommit > 0 {
                next +=
                    "; \(changedAfterCommit) rotated value(s) were written again by the application after the commit: "
                    + "once it runs on the new key, run rotate again to re-encrypt any it wrote under the old key"
            }
            if !advice.isEmpty {
                next += String(format: "; the write lock was held %.2f s: ", lock.inSeconds) + advice.joined(separator: "; ")
            }
        }
        return Report(
            database: database.location, masterKeyFingerprint: options.oldKey.fingerprint,
            newMasterKeyFingerprint: options.newKey.fingerprint,
            dryRun: options.dryRun, scheme: options.scheme?.rawValue ?? "keep", groups: groups, total: total,
            secretsFile: secretsFile.map { SecretsFileReport(file: $0.path, outcome: $0.outcome.rawValue) }, applicationRelease: release,
            warnings: warnings, backupFile: backup, backupDirectoryCreated: options.backupDirectory == nil ? nil : backupFolderCreated,
            writeLockSeconds: lock.inSeconds, elapsedSeconds: elapsed.inSeconds, verifiedAfterCommit: verified,
            changedAfterCommit: changedAfterCommit, nextStep: next)
    }

    /// Rotates a group of rows: v2 values that stay v2 under another key in one C call each
    /// (`reencryptV2`); of the others, v1 values that all decode and stay v1 get their old and new
    /// row keys together on the selected kernel (`SecretCipher.rowKeys`), any other row goes
    /// alone. The fresh salts and nonces come from one call to the random generator (OpenSSL 3.0
    /// asks the kernel for the process id on every call: 5 % of a v2 rotation's CPU time with two
    /// calls a row, perf).
    static func rotate(_ rows: [SecretRow], oldKey: MasterKey, newKey: MasterKey, scheme: SecretScheme? = nil) -> [Outcome] {
        guard let context = try? AESGCM.Context() else { return rows.map { _ in .failed("no AES-GCM context (out of memory)") } }
        let random = SecureRandom.bytes(rows.count * freshBytes)
        let fresh = rows.indices.map { random[$0 * freshBytes..<($0 + 1) * freshBytes] }
        // Scheme v2 values that stay v2 under another key: one C call each; the rest (all of a
        // page of v1 values) as below, together.
        var outcomes = reencryptV2(rows, oldKey: oldKey, newKey: newKey, scheme: scheme, fresh: fresh, context: context)
        let rest = rows.indices.filter { outcomes[$0] == nil }
        let others = rotate(
            rest.map { rows[$0] }, fresh: rest.map { fresh[$0] }, oldKey: oldKey, newKey: newKey, scheme: scheme, context: context)
        for (index, outcome) in zip(rest, others) { outcomes[index] = outcome }
        return outcomes.map { $0! }
    }

    /// Rows the C path did not take, `fresh` their new salts and nonces: a group of v1 values
    /// that stay v1 gets its row keys together on the selected kernel, any other row goes alone.
    private static func rotate(
        _ rows: [SecretRow], fresh: [ArraySlice<UInt8>], oldKey: MasterKey, newKey: MasterKey, scheme: SecretScheme?,
        context: AESGCM.Context
    ) -> [Outcome] {
        let triples = rows.map(\.triple)
        let decoded = triples.compactMap { triple -> DecodedSecret? in if case .decoded(let secret) = triple { secret } else { nil } }
        guard decoded.count == rows.count, rows.count > 1, scheme ?? .v1 == .v1, decoded.allSatisfy({ $0.scheme == .v1 }) else {
            return triples.indices.map {
                rotate(triples[$0], oldKey: oldKey, newKey: newKey, scheme: scheme, fresh: fresh[$0], context: context)
            }
        }
        // Every old row key, then every new one, together on the selected kernel: a group of
        // sixteen rows is two sixteen-lane calls, a group of two is two paired calls.
        let keys = SecretCipher.rowKeys(
            decoded.map { (oldKey, $0.salt) } + fresh.map { (newKey, Array($0.prefix(StoredSecret.saltLength))) })
        let oldRowKeys = keys[..<rows.count].map { $0 }, newRowKeys = keys[rows.count...].map { $0 }
        return decoded.indices.map { lane in
            reencrypt(
                decoded[lane], oldRowKey: oldRowKeys[lane], newRowKey: newRowKeys[lane], fresh: fresh[lane], oldKey: oldKey, newKey: newKey,
                target: .v1, context: context)
        }
    }

    /// Each v2 value that stays v2 under a new key, re-encrypted by `AESGCM.Context.reencryptV2`;
    /// nil for every other row, and for a value that path declines.
    private static func reencryptV2(
        _ rows: [SecretRow], oldKey: MasterKey, newKey: MasterKey, scheme: SecretScheme?, fresh: [ArraySlice<UInt8>],
        context: AESGCM.Context
    ) -> [Outcome?] {
        guard scheme != .v1, oldKey.material != newKey.material, rows.contains(where: { $0.secret?.scheme == .v2 }) else {
            return rows.map { _ in nil }
        }
        return oldKey.keyEncryptionKey.withBytes { oldKEK in
            newKey.keyEncryptionKey.withBytes { newKEK in
                rows.indices.map { index in
                    guard let secret = rows[index].secret else { return nil }
                    return context.reencryptV2(secret, oldKEK: oldKEK, newKEK: newKEK, fresh: fresh[index]).map { .rotated($0) }
                }
            }
        }
    }

    /// A fresh salt and nonce, one after the other.
    static let freshBytes = StoredSecret.saltLength + StoredSecret.nonceLength

    /// Decrypts under the old key and re-encrypts under the new one (in `scheme`, else the
    /// value's own), proving the result opens with the derived key at hand; or recognises a value
    /// already under the new key in that scheme.
    static func rotate(_ row: SecretRow, oldKey: MasterKey, newKey: MasterKey, scheme: SecretScheme? = nil) -> Outcome {
        rotate([row], oldKey: oldKey, newKey: newKey, scheme: scheme)[0]
    }

    /// One value, `fresh` its new salt and nonce.
    private static func rotate(
        _ triple: SecretRow.Triple, oldKey: MasterKey, newKey: MasterKey, scheme: SecretScheme?, fresh: ArraySlice<UInt8>,
        context: AESGCM.Context
    ) -> Outcome {
        let decoded: DecodedSecret
        switch triple {
        case .none: return .noKey
        case .malformed(let reason): return .failed(reason)
        case .decoded(let secret): decoded = secret
        }
        let target = scheme ?? decoded.scheme
        // Both row keys at once: two v1 keys interleaved on the SHA extensions cost about one.
        let (oldRowKey, newRowKey) = SecretCipher.rowKeys(
            (oldKey, decoded.salt, decoded.scheme),
            (newKey, Array(fresh.prefix(StoredSecret.saltLength)), target))
        return reencrypt(
            decoded, oldRowKey: oldRowKey, newRowKey: newRowKey, fresh: fresh, oldKey: oldKey, newKey: newKey, target: target,
            context: context)
    }

    /// With the row key of the stored salt under the old master key (in the value's scheme), and
    /// the row key of a fresh salt under the new one (in `target`); `context` is the calling
    /// thread's.
    static func reencrypt(
        _ decoded: DecodedSecret, oldRowKey: SecureBytes, newRowKey: SecureBytes, fresh: ArraySlice<UInt8>,
        oldKey: MasterKey, newKey: MasterKey, target: SecretScheme, context: AESGCM.Context
    ) -> Outcome {
        let salt = Array(fresh.prefix(StoredSecret.saltLength)), nonce = Array(fresh.suffix(StoredSecret.nonceLength))
        var plaintext: [UInt8] = []
        defer { AESGCM.wipe(&plaintext) }
        do throws(SecretError) {
            plaintext = try oldRowKey.withBytes { key throws(SecretError) in
                try context.open(key: key, nonce: decoded.nonce, sealed: decoded.sealed)
            }
            if oldKey.material == newKey.material && decoded.scheme == target { return .alreadyRotated }
        } catch .authenticationFailed {
            guard let text = try? SecretCipher.decrypt(decoded, masterKey: newKey) else {
                return .failed("decrypts under neither the old key (\(oldKey.fingerprint)) nor the new key (\(newKey.fingerprint))")
            }
            // Under the new key already; in another scheme it is still to be rewritten.
            if decoded.scheme == target { return .alreadyRotated }
            plaintext = Array(text.utf8)
        } catch {
            return .failed(error.description)
        }
        // As decrypting does: the application stores text.
        guard String(validating: plaintext, as: UTF8.self) != nil else { return .failed(SecretError.plaintextNotUTF8.description) }
        do {
            let sealed = try newRowKey.withBytes { key throws(SecretError) in try context.seal(key: key, nonce: nonce, plaintext: plaintext)
            }
            var check = try newRowKey.withBytes { key throws(SecretError) in try context.open(key: key, nonce: nonce, sealed: sealed) }
            defer { AESGCM.wipe(&check) }
            guard check == plaintext else { return .failed("the re-encrypted value did not open under the new key") }
            return .rotated(DecodedSecret(sealed: sealed, salt: salt, nonce: nonce, scheme: target).encoded)
        } catch {
            return .failed(error.description)
        }
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
