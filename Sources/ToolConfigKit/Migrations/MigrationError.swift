public enum MigrationError: ToolcfgError {
    case unreadableFolder(path: String, reason: String)
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
    case failed(version: Int64, file: String, cause: DatabaseError)

    public var exitStatus: ExitStatus {
        switch self {
        case .unreadableFolder: .noInput
        case .unknownVersion: .usage
        case .failed(_, _, let cause): cause.exitStatus == .temporaryFailure ? .temporaryFailure : .dataError
        default: .dataError
        }
    }

    public var description: String {
        switch self {
        case .unreadableFolder(let path, let reason):
            return "cannot read the migrations folder \(path): \(reason)"
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
            return "the database is dirty: migration \(list) is recorded with success = 0 (a migration failed part way); "
                + "repair the schema by hand, then rerun with --allow-dirty"
        case .drift(let version, let file, let explanation):
            var text = "migration \(version) was applied from different contents than \(file) (checksum mismatch)"
            if let explanation { text += ": \(explanation)" }
            return text + "; rerun with --allow-drift to proceed anyway"
        case .unknownVersion(let version, let direction):
            return "--to \(version): no migration has that version (migrate \(direction))"
        case .fileMissing(let version, let description):
            return "migration \(version) (\(description)) is recorded in the ledger but has no file in the migrations folder, so it cannot be reverted here"
        case .noDownMigration(let version, let file):
            return "migration \(version) (\(file)) has no .down.sql file, so it cannot be reverted"
        case .failed(let version, let file, let cause):
            return "migration \(version) (\(file)) failed and was rolled back: \(cause.context.map { "\($0): " } ?? "")\(cause.message)"
        }
    }
}
