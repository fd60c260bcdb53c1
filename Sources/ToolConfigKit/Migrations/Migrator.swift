import Foundation

/// Applies and reverts migrations the way sqlx does: each in its own transaction together with its
/// ledger row, refusing dirty and drifted databases unless told otherwise, holding sqlx's
/// migration lock while it changes anything. Every plan is checked in full before the first
/// migration runs. The same on every engine: what differs is the store's.
public struct Migrator {
    public struct Options: Sendable {
        public var allowDirty: Bool
        public var allowDrift: Bool

        public init(allowDirty: Bool = false, allowDrift: Bool = false) {
            self.allowDirty = allowDirty
            self.allowDrift = allowDrift
        }
    }

    let store: any MigrationStore
    let migrations: MigrationSet
    let options: Options
    let ledger: MigrationLedger

    public init(database: any Database, migrations: MigrationSet, options: Options = Options()) {
        self.init(store: database.migrationStore(), migrations: migrations, options: options)
    }

    init(store: any MigrationStore, migrations: MigrationSet, options: Options = Options()) {
        self.store = store
        self.migrations = migrations
        self.options = options
        self.ledger = MigrationLedger(store: store)
    }

    // MARK: status

    /// A database of the application's sea-orm era is read, not refused: its ledger and release
    /// show (migrate up and down refuse it).
    public func status() throws -> MigrationStatusReport {
        let release = try ApplicationRelease.detect(store.database)
        if let seaORM = try store.seaORMLedger() {
            return MigrationStatusReport(
                database: store.database.location, migrations: migrations.origin.description,
                ledgerExists: try ledger.exists, ledger: "sea-orm", entries: [],
                seaORMMigrations: seaORM.map { .init(version: $0.version, appliedAt: $0.appliedAt) },
                applicationRelease: release)
        }
        try ledger.checkOwnership()
        let entries = try ledger.entries()
        let byVersion = Dictionary(entries.map { ($0.version, $0) }, uniquingKeysWith: { first, _ in first })
        let versions = Set(entries.map(\.version)).union(migrations.migrations.map(\.version)).sorted()
        let rows = versions.map { version -> MigrationStatusReport.Entry in
            let file = migrations.migration(version: version)
            let row = byVersion[version]
            var state: MigrationStatusReport.State
            var drift: String?
            switch (file, row) {
            case (_, let row?) where !row.success: state = .dirty
            case (nil, _?): state = .missingFile
            case (let file?, let row?) where row.checksum != file.checksum:
                state = .drifted
                drift = ChecksumDrift.explain(file: file.up.bytes, recordedChecksum: row.checksum)
            case (_?, _?): state = .applied
            case (_?, nil): state = .pending
            case (nil, nil): preconditionFailure("version from neither files nor ledger")
            }
            return .init(
                version: version,
                description: row?.description ?? file?.description ?? "",
                state: state,
                file: file?.up.fileName,
                reversible: file?.down != nil,
                installedOn: row?.installedOn,
                executionTimeSeconds: row.map { Double($0.executionTime) / 1e9 },
                checksum: (row?.checksum ?? file?.checksum).map { Digest.hex($0) },
                drift: drift)
        }
        return MigrationStatusReport(
            database: store.database.location, migrations: migrations.origin.description,
            ledgerExists: try ledger.exists, ledger: "sqlx", entries: rows, applicationRelease: release)
    }

    /// Refuses to act on a dirty or drifted database unless the options allow it.
    func preflight() throws -> [Int64: LedgerEntry] {
        try ledger.checkOwnership()
        let entries = try ledger.entries()
        let dirty = entries.filter { !$0.success }.map(\.version)
        if !dirty.isEmpty, !options.allowDirty { throw MigrationError.dirty(versions: dirty) }
        if !options.allowDrift {
            for entry in entries {
                guard let file = migrations.migration(version: entry.version), file.checksum != entry.checksum else { continue }
                throw MigrationError.drift(
                    version: entry.version, file: file.up.fileName,
                    explanation: ChecksumDrift.explain(file: file.up.bytes, recordedChecksum: entry.checksum))
            }
        }
        return Dictionary(entries.map { ($0.version, $0) }, uniquingKeysWith: { first, _ in first })
    }

    // MARK: up

    /// Applies every pending migration, or those up to and including `target`.
    public func up(to target: Int64? = nil) throws -> MigrationRunReport {
        if let target, migrations.migration(version: target) == nil {
            throw MigrationError.unknownVersion(target, direction: "up")
        }
        return try store.withMigrationLock {
            let applied = try preflight()
            let pending = migrations.migrations.filter { applied[$0.version] == nil && $0.version <= (target ?? .max) }
            let steps = try pending.map { try apply($0) }
            return try report(.up, steps, dryRun: false, dataLoss: nil)
        }
    }

    /// Runs one up migration with its ledger row, as sqlx does.
    func apply(_ migration: Migration) throws -> MigrationRunReport.Step {
        let started = ContinuousClock.now
        do {
            if migration.runsWithoutTransaction {
                try store.run(migration.up)
                try store.atomically {
                    try store.createLedgerIfMissing()
                    try store.recordInLedger(migration)
                }
            } else {
                try store.atomically {
                    try store.createLedgerIfMissing()
                    try store.run(migration.up)
                    try store.recordInLedger(migration)
                }
            }
        } catch let error as any EngineError {
            throw MigrationError.failed(version: migration.version, file: migration.up.fileName, cause: error)
        }
        let elapsed = Self.nanoseconds(ContinuousClock.now - started)
        try store.setExecutionTime(version: migration.version, nanoseconds: elapsed)
        return .init(
            version: migration.version, description: migration.description, file: migration.up.fileName,
            elapsedSeconds: Double(elapsed) / 1e9)
    }

    /// Runs one down migration and removes its ledger row, in one transaction.
    func revert(_ migration: Migration, down: MigrationScript) throws -> MigrationRunReport.Step {
        let started = ContinuousClock.now
        do {
            try store.atomically {
                try store.run(down)
                try store.removeFromLedger(version: migration.version)
            }
        } catch let error as any EngineError {
            throw MigrationError.failed(version: migration.version, file: down.fileName, cause: error)
        }
        return .init(
            version: migration.version, description: migration.description, file: down.fileName,
            elapsedSeconds: Double(Self.nanoseconds(ContinuousClock.now - started)) / 1e9)
    }

    // MARK: down

    /// Reverts applied migrations newest first: by default one, or `steps` of them, or all above
    /// `target` (0 for all). Every one to revert must have a down file, or nothing runs. Downs
    /// that would drop or empty tables holding rows are refused unless `allowDataLoss`; a dry run
    /// reports the plan and the rows it would take, and changes nothing.
    public func down(to target: Int64? = nil, steps count: Int? = nil, dryRun: Bool = false, allowDataLoss: Bool = false) throws
        -> MigrationRunReport
    {
        try store.withMigrationLock { try downLocked(to: target, steps: count, dryRun: dryRun, allowDataLoss: allowDataLoss) }
    }

    private func downLocked(to target: Int64?, steps count: Int?, dryRun: Bool, allowDataLoss: Bool) throws -> MigrationRunReport {
        let applied = try preflight()
        let newestFirst = applied.keys.sorted(by: >)
        let toRevert: [Int64]
        if let target {
            guard target == 0 || applied[target] != nil || migrations.migration(version: target) != nil else {
                throw MigrationError.unknownVersion(target, direction: "down")
            }
            toRevert = newestFirst.filter { $0 > target }
        } else {
            toRevert = Array(newestFirst.prefix(max(count ?? 1, 0)))
        }
        let plan = try toRevert.map { version throws -> (Migration, MigrationScript) in
            guard let migration = migrations.migration(version: version) else {
                throw MigrationError.fileMissing(version: version, description: applied[version]?.description ?? "")
            }
            guard let down = migration.down else {
                throw MigrationError.noDownMigration(version: version, file: migration.up.fileName)
            }
            return (migration, down)
        }
        let loss = plan.isEmpty ? [] : try dataLoss(of: plan)
        if dryRun {
            let steps = plan.map {
                MigrationRunReport.Step(version: $0.0.version, description: $0.0.description, file: $0.1.fileName, sql: $0.1.sql)
            }
            return try report(.down, steps, dryRun: true, dataLoss: loss)
        }
        if !loss.isEmpty, !allowDataLoss { throw MigrationError.wouldLoseRows(loss) }
        let steps = try plan.map { try revert($0.0, down: $0.1) }
        return try report(.down, steps, dryRun: false, dataLoss: loss)
    }

    /// The rows the down scripts would take with them, found by running them in a transaction
    /// that is then rolled back: exact whatever the SQL does (DROP TABLE, DELETE, a rebuild that
    /// copies only some rows), where reading the scripts would be a guess.
    func dataLoss(of plan: [(Migration, MigrationScript)]) throws -> [DataLoss] {
        let (before, after) = try store.database.transaction(.rolledBackWrite) {
            let before = try store.rowCounts()
            for (migration, down) in plan {
                do {
                    try store.run(down)
                } catch let error as any EngineError {
                    throw MigrationError.failed(version: migration.version, file: down.fileName, cause: error)
                }
            }
            return (before, try store.rowCounts())
        }
        return before.compactMap { table, rows in
            let left = after[table] ?? 0
            return rows > left ? DataLoss(table: table, rows: rows - left, dropped: after[table] == nil) : nil
        }.sorted { $0.table < $1.table }
    }

    private func report(
        _ direction: MigrationRunReport.Direction, _ steps: [MigrationRunReport.Step],
        dryRun: Bool, dataLoss: [DataLoss]?
    ) throws -> MigrationRunReport {
        MigrationRunReport(
            database: store.database.location, migrations: migrations.origin.description, direction: direction,
            dryRun: dryRun, steps: steps, dataLoss: dataLoss, appliedVersions: try ledger.entries().map(\.version))
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}
