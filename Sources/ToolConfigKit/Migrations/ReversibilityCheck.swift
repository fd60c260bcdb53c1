import Foundation

/// Proves that every migration's down undoes its up, exactly, on a state of the database that is
/// thrown away afterwards (`MigrationStore.rehearse`: SQLite on a copy, PostgreSQL inside one
/// transaction that is rolled back): for a pending migration, fingerprint, up, fingerprint, down
/// (must equal the first, ledger included), up again (must equal the second); for one the
/// database already has, the same cycle from the other end (down, then up must give back the
/// start). Along the way, the up script run again on a database that has its objects, and the
/// down script run again on one that no longer has them, must change nothing. The database given
/// is left exactly as it was.
public struct ReversibilityCheck {
    public struct Step: Sendable, Codable {
        public var version: Int64
        public var description: String
        /// "up-down-up" for a pending migration, "down-up" for one already applied.
        public var cycle: String
        public var ok: Bool
        /// What made the check fail, each naming the object, table, column, index or rows.
        public var failures: [String]
        /// Bookkeeping differences and other observations that are not failures.
        public var notes: [String]
    }

    public struct DatabaseReport: Sendable, Codable {
        public var database: String
        public var ok: Bool
        public var error: String?
        public var steps: [Step]
    }

    public struct Report: Sendable, Codable {
        public var migrations: String
        public var databases: [DatabaseReport]
        public var ok: Bool { databases.allSatisfy(\.ok) }
    }

    /// nil: each database's engine's built-in migrations.
    let migrations: MigrationSet?

    public init(migrations: MigrationSet? = nil) {
        self.migrations = migrations
    }

    public func report(_ databases: [DatabaseReport]) -> Report {
        Report(migrations: migrations?.origin.description ?? MigrationSet.Origin.embedded.description, databases: databases)
    }

    // MARK: verifying

    /// SQLite files, each only read.
    public func verify(_ paths: [String]) -> Report {
        report(paths.map(verify))
    }

    /// An SQLite file, only read.
    public func verify(_ path: String) -> DatabaseReport {
        verify(fixture: .sqliteFile(path: path), server: nil)
    }

    /// A fixture of either engine, named by its file (a script is loaded into a scratch database
    /// on `server`, dropped afterwards).
    public func verify(fixture: FixtureDatabase, server: DatabaseLocation?, busyTimeout: Duration = .seconds(10)) -> DatabaseReport {
        do {
            return try fixture.withDatabase(server: server, busyTimeout: busyTimeout) { database in
                var report = verify(database: database)
                report.database = fixture.path
                return report
            }
        } catch {
            return DatabaseReport(database: fixture.path, ok: false, error: "\(error)", steps: [])
        }
    }

    /// Any database, left exactly as it was.
    public func verify(database: any Database) -> DatabaseReport {
        do {
            let source = database.migrationStore()
            let migrations = try self.migrations ?? source.builtInMigrations()
            let steps = try source.rehearse { store in
                let migrator = Migrator(store: store, migrations: migrations)
                let applied = try migrator.preflight()
                var steps: [Step] = []
                for migration in migrations.migrations.reversed() where applied[migration.version] != nil {
                    steps.append(try cycle(migration, applied: true, store, migrator))
                }
                for migration in migrations.migrations where applied[migration.version] == nil {
                    steps.append(try cycle(migration, applied: false, store, migrator))
                }
                return steps
            }
            return DatabaseReport(database: database.location, ok: steps.allSatisfy(\.ok), error: nil, steps: steps)
        } catch {
            return DatabaseReport(database: database.location, ok: false, error: "\(error)", steps: [])
        }
    }

    private func cycle(_ migration: Migration, applied: Bool, _ store: any MigrationStore, _ migrator: Migrator) throws -> Step {
        var step = Step(
            version: migration.version, description: migration.description, cycle: applied ? "down-up" : "up-down-up",
            ok: true, failures: [], notes: [])
        guard let down = migration.down else {
            step.ok = false
            step.failures.append("no down migration (\(migration.up.fileName) has no .down.sql)")
            return step
        }
        func compare(_ expected: SchemaFingerprint, _ what: String, owned: Set<String> = []) throws {
            for difference in try store.fingerprint().differences(from: expected, owned: owned) {
                if difference.expected {
                    step.notes.append("\(difference)")
                } else {
                    step.ok = false
                    step.failures.append("\(what): \(difference)")
                }
            }
        }
        /// A script run again where it has already run must change nothing (or fail and roll back).
        func rerun(_ script: MigrationScript, _ what: String) throws {
            let before = try store.fingerprint()
            do {
                try store.atomically { try store.run(script) }
            } catch let error as any EngineError {
                step.notes.append("\(what): it fails and rolls back (\(error.reason)), which is harmless")
                return
            }
            try compare(before, what)
        }

        if applied {
            let start = try store.fingerprint()
            try rerun(migration.up, "up run again on a database that has its objects")
            _ = try migrator.revert(migration, down: down)
            let reverted = try store.fingerprint()
            try rerun(down, "down run again on a database without its objects")
            _ = try migrator.apply(migration)
            // The tables this migration owns: the down drops them and the up creates them again.
            // Their rows (and indexes added to them by hand) cannot come back: noted, not failed.
            let names = { (print: SchemaFingerprint) in Set(print.objects.filter { $0.type == "table" }.map(\.name)) }
            let owned = names(start).subtracting(names(reverted)).intersection(names(try store.fingerprint()))
            try compare(start, "down then up does not give back the database", owned: owned)
        } else {
            let start = try store.fingerprint()
            _ = try migrator.apply(migration)
            let upped = try store.fingerprint()
            try rerun(migration.up, "up run again on a database that has its objects")
            _ = try migrator.revert(migration, down: down)
            try compare(start, "down does not undo up")
            try rerun(down, "down run again on a database without its objects")
            _ = try migrator.apply(migration)
            try compare(upped, "up after down does not give the same database as the first up")
        }
        return step
    }
}
