public enum MigrationError: ToolcfgError {
    case unreadableFolder(path: String, reason: String)
    case unreadableFixture(path: String, reason: String)
    case invalidFile(file: String, reason: String)
    case duplicateVersion(version: Int64, files: [String])
    case downWithoutUp(version: Int64, file: String)
    case foreignLedger(table: String, tool: String)
    case malformedLedger(reason: String)
    case dirty(versions: [Int64])
    case drift(version: Int64, file: String, explanation: String?)
    case unknownVersion(Int64, direction: String)
    case fileMissing(version: Int64, description: String)
    case noDownMigration(version: Int64, file: String)
    /// A script failed on the engine and was rolled back.
    case failed(version: Int64, file: String, cause: any EngineError)
    /// A down that would drop or empty tables holding rows, without the operator's --yes.
    case wouldLoseRows([DataLoss])

    public var exitStatus: ExitStatus {
        switch self {
        case .unreadableFolder, .unreadableFixture: .noInput
        case .unknownVersion, .wouldLoseRows: .usage
        // Busy or cut off (75) and a full disk (74) are the machine's, not the migration's fault.
        case .failed(_, _, let cause): [.temporaryFailure, .ioError].contains(cause.exitStatus) ? cause.exitStatus : .dataError
        default: .dataError
        }
    }

    public var errorContext: ErrorContext {
        switch self {
        case .unreadableFolder(let path, _), .unreadableFixture(let path, _): ErrorContext(file: path)
        case .invalidFile(let file, _), .downWithoutUp(_, let file), .drift(_, let file, _), .noDownMigration(_, let file):
            ErrorContext(file: file)
        case .failed(_, let file, let cause): ErrorContext(database: cause.database, file: file)
        case .foreignLedger(let table, _): ErrorContext(table: table)
        case .wouldLoseRows(let loss) where loss.count == 1: ErrorContext(table: loss[0].table)
        default: ErrorContext()
        }
    }

    public var description: String {
        switch self {
        case .unreadableFolder(let path, let reason):
            return "cannot read the migrations folder \(path): \(reason)"
        case .unreadableFixture(let path, let reason):
            return "cannot read the fixture \(path): \(reason)"
        case .invalidFile(let file, let reason):
            return "migration file \(file): \(reason)"
        case .duplicateVersion(let version, let files):
            return "migration version \(version) appears in more than one file: \(files.joined(separator: ", "))"
        case .downWithoutUp(let version, let file):
            return "migration file \(file): a down migration for version \(version) with no up migration"
        case .foreignLedger(let table, let tool):
            return "this database is migrated by \(tool) (table \(table)), not sqlx: refusing to guess at its state"
        case .malformedLedger(let reason):
            return "the _sqlx_migrations table is not sqlx's: \(reason)"
        case .dirty(let versions):
            let list = versions.map(String.init).joined(separator: ", ")
            return "the database is dirty: migration \(list) is recorded with success = false (a migration failed part way); "
                + "repair the schema by hand, then rerun with --allow-dirty"
        case .drift(let version, let file, let explanation):
            var text = "migration \(version) was applied from different contents than \(file) (checksum mismatch)"
            if let explanation { text += ": \(explanation)" }
            return text + "; rerun with --allow-drift to proceed anyway"
        case .unknownVersion(let version, let direction):
            return "--to \(version): no migration has that version (migrate \(direction))"
        case .fileMissing(let version, let description):
            return
                "migration \(version) (\(description)) is recorded in the ledger but has no file in the migrations folder, "
                + "so it cannot be reverted here"
        case .noDownMigration(let version, let file):
            return "migration \(version) (\(file)) has no .down.sql file, so it cannot be reverted"
        case .failed(let version, let file, let cause):
            if cause.isConnectionLoss {
                // Lost during the commit, it may have committed: the ledger tells, and a rerun goes on from there.
                return "migration \(version) (\(file)) did not finish: \(cause.reason); the connection to the server was lost, "
                    + "and the server rolls back what was not committed: run the same command again once the server accepts "
                    + "connections (migrate status shows where the ledger stands)"
            }
            let again =
                cause.isDiskFull
                ? "; the server's disk is full: free space there and run the same command again"
                : cause.exitStatus == .temporaryFailure ? "; run the same command again" : ""
            return "migration \(version) (\(file)) failed and was rolled back: \(cause.reason)\(again)"
        case .wouldLoseRows(let loss):
            let what = loss.map { "\($0.dropped ? "drop" : "delete rows of") \($0.table) (\($0.rows) row\($0.rows == 1 ? "" : "s"))" }
            return
                "migrate down would \(what.joined(separator: ", ")); nothing was changed: give --yes to go ahead, "
                + "or --dry-run to see what would run"
        }
    }
}
