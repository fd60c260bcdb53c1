/// The state of every version known to the files or the ledger.
public struct MigrationStatusReport: Sendable, Codable {
    public enum State: String, Sendable, Codable {
        /// In the ledger with success and the file's checksum.
        case applied
        /// A file not yet in the ledger.
        case pending
        /// In the ledger with success = 0: a migration failed part way.
        case dirty
        /// In the ledger with a checksum that differs from the file.
        case drifted
        /// In the ledger with no file here: typically the application's own earlier migrations.
        case missingFile = "missing-file"
    }

    public struct Entry: Sendable, Codable {
        public var version: Int64
        public var description: String
        public var state: State
        public var file: String?
        public var reversible: Bool
        public var installedOn: String?
        /// The ledger's execution_time (nanoseconds there), in seconds.
        public var executionTimeSeconds: Double?
        public var checksum: String?
        /// For drifted entries: why the checksum differs, when it is only line endings and the like.
        public var drift: String?
    }

    /// One row of the application's sea-orm ledger.
    public struct SeaORMEntry: Sendable, Codable {
        public var version: String
        /// Unix seconds, as sea-orm records them.
        public var appliedAt: Int64?
    }

    public var database: String
    public var migrations: String
    /// Whether `_sqlx_migrations` exists.
    public var ledgerExists: Bool
    /// The ledger read: "sqlx" (toolcfg's and the application's up to v0.0.45) or "sea-orm"
    /// (the application's from v0.0.46, read only: migrate up and down refuse it).
    public var ledger: String
    /// sqlx's entries, by version (empty for a sea-orm ledger).
    public var entries: [Entry]
    /// The sea-orm ledger's rows, for a database that has one.
    public var seaORMMigrations: [SeaORMEntry]?
    /// The releases of the application the database fits.
    public var applicationRelease: ApplicationRelease

    public func count(_ state: State) -> Int { entries.filter { $0.state == state }.count }
    public var isUpToDate: Bool { entries.allSatisfy { $0.state == .applied || $0.state == .missingFile } }
}

/// What one `migrate up` or `migrate down` did, or with `dryRun` would do.
public struct MigrationRunReport: Sendable, Codable {
    public enum Direction: String, Sendable, Codable { case up, down }

    public struct Step: Sendable, Codable {
        public var version: Int64
        public var description: String
        public var file: String
        /// nil in a dry run, where nothing ran.
        public var elapsedSeconds: Double?
        /// The script that would run (dry run only).
        public var sql: String?
    }

    public var database: String
    public var migrations: String
    public var direction: Direction
    public var dryRun: Bool
    public var steps: [Step]
    /// Rows the steps take with them (down only; nil for up): what `--yes` agrees to.
    public var dataLoss: [DataLoss]?
    /// Versions of the ledger after the run.
    public var appliedVersions: [Int64]
}

/// Rows of one table that down migrations would remove.
public struct DataLoss: Sendable, Codable, Equatable {
    public var table: String
    public var rows: Int64
    /// True when the table itself goes; false when it stays with fewer rows.
    public var dropped: Bool

    public init(table: String, rows: Int64, dropped: Bool) {
        self.table = table
        self.rows = rows
        self.dropped = dropped
    }
}
