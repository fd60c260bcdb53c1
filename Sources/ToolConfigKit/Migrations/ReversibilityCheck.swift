import Foundation

/// Proves on a copy of a database that every migration's down undoes its up, exactly:
/// for a pending migration, fingerprint, up, fingerprint, down (must equal the first, ledger
/// included), up again (must equal the second); for one the database already has, the same cycle
/// from the other end (down, then up must give back the start). Along the way, the up script run
/// again on a database that has its objects, and the down script run again on one that no longer
/// has them, must change nothing. The database given is only read.
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

    let migrations: MigrationSet

    public init(migrations: MigrationSet) {
        self.migrations = migrations
    }

    /// The fixture databases of a folder (*.db, *.sqlite, *.sqlite3), by name.
    public static func fixtures(in folder: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw MigrationError.unreadableFolder(path: folder, reason: SecretInput.reason(error))
        }
        return names.filter { [".db", ".sqlite", ".sqlite3"].contains(where: $0.hasSuffix) }.sorted()
            .map { URL(fileURLWithPath: folder).appendingPathComponent($0).path }
    }

    public func verify(_ paths: [String]) -> Report {
        Report(migrations: migrations.origin.description, databases: paths.map(verify))
    }

    public func verify(_ path: String) -> DatabaseReport {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("toolcfg-verify-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            let copy = scratch.appendingPathComponent("copy.db").path
            // The online backup copies a consistent state even of a live WAL database, and only reads it.
            try SQLiteConnection(path: path, mode: .readOnly).backup(to: copy)
            let connection = try SQLiteConnection(path: copy)
            let migrator = Migrator(connection: connection, migrations: migrations)
            let applied = try migrator.preflight()
            var steps: [Step] = []
            for migration in migrations.migrations.reversed() where applied[migration.version] != nil {
                steps.append(try cycle(migration, applied: true, connection, migrator))
            }
            for migration in migrations.migrations where applied[migration.version] == nil {
                steps.append(try cycle(migration, applied: false, connection, migrator))
            }
            return DatabaseReport(database: path, ok: steps.allSatisfy(\.ok), error: nil, steps: steps)
        } catch {
            return DatabaseReport(database: path, ok: false, error: "\(error)", steps: [])
        }
    }

    private func cycle(_ migration: Migration, applied: Bool, _ connection: SQLiteConnection, _ migrator: Migrator) throws -> Step {
        var step = Step(version: migration.version, description: migration.description, cycle: applied ? "down-up" : "up-down-up",
                        ok: true, failures: [], notes: [])
        guard let down = migration.down else {
            step.ok = false
            step.failures.append("no down migration (\(migration.up.fileName) has no .down.sql)")
            return step
        }
        func compare(_ expected: SchemaFingerprint, _ what: String, owned: Set<String> = []) throws {
            for difference in try SchemaFingerprint.capture(connection).differences(from: expected, owned: owned) {
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
            let before = try SchemaFingerprint.capture(connection)
            do {
                try connection.writeTransaction { try connection.execute(script.sql, context: script.fileName) }
            } catch let error as DatabaseError {
                step.notes.append("\(what): it fails and rolls back (\(error.message)), which is harmless")
                return
            }
            try compare(before, what)
        }

        if applied {
            let start = try SchemaFingerprint.capture(connection)
            try rerun(migration.up, "up run again on a database that has its objects")
            _ = try migrator.revert(migration, down: down)
            let reverted = try SchemaFingerprint.capture(connection)
            try rerun(down, "down run again on a database without its objects")
            _ = try migrator.apply(migration)
            // The tables this migration owns: the down drops them and the up creates them again.
            // Their rows (and indexes added to them by hand) cannot come back: noted, not failed.
            let names = { (print: SchemaFingerprint) in Set(print.objects.filter { $0.type == "table" }.map(\.name)) }
            let owned = names(start).subtracting(names(reverted)).intersection(names(try SchemaFingerprint.capture(connection)))
            try compare(start, "down then up does not give back the database", owned: owned)
        } else {
            let start = try SchemaFingerprint.capture(connection)
            _ = try migrator.apply(migration)
            let upped = try SchemaFingerprint.capture(connection)
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
