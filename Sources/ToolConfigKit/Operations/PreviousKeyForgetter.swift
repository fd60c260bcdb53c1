import Foundation

/// `forget-old-key`: drops the keyring's `secret_key.previous` entry that a rotation's switch
/// kept. Given the database, only once no secret opens under that key alone (the application may
/// have written under it between the rotation and its restart: the catch-up rotation re-encrypts
/// those first).
public struct PreviousKeyForgetter {
    public struct Report: Sendable, Codable {
        public var service: String
        /// The entry dropped (or looked for).
        public var entry: String
        public var forgotten: Bool
        public var previousKeyFingerprint: String?
        /// The application's current key, when the database was checked.
        public var masterKeyFingerprint: String?
        public var database: String?
        /// Secrets checked in the database: every one opens under the current key.
        public var valuesChecked: Int?
    }

    let service: String
    let database: (any DatabaseReader)?
    let columns: SecretColumnMap
    let secretsFile: String?
    let jobs: Int

    public init(
        service: String, database: (any DatabaseReader)?, columns: SecretColumnMap = SecretColumnMap(), secretsFile: String? = nil,
        jobs: Int = ParallelMap.defaultJobs
    ) {
        self.service = service
        self.database = database
        self.columns = columns
        self.secretsFile = secretsFile
        self.jobs = jobs
    }

    public func run(progress: ProgressHandler = { _ in }) throws -> Report {
        let previous = KeyringEntry.previous(service: service)
        var report = Report(service: service, entry: previous.description, forgotten: false)
        guard let old = try previous.masterKey() else { return report }
        report.previousKeyFingerprint = old.fingerprint
        if let database {
            let current = try KeyringEntry.application(service: service).requireMasterKey()
            report.masterKeyFingerprint = current.fingerprint
            report.database = database.location
            let check = try KeyVerifier(
                database: database, masterKey: current, newKey: old, jobs: jobs, columns: columns, secretsFile: secretsFile
            )
            .run(progress: progress)
            let underOld = check.groups.reduce(0) { $0 + $1.underNewMasterKey } + (check.secretsFile?.under == "new_master_key" ? 1 : 0)
            let broken = check.groups.reduce(0) { $0 + $1.underNeither + $1.malformed } + (check.secretsFile?.under == "neither" ? 1 : 0)
            if underOld > 0 || broken > 0 {
                throw OldKeyStillNeeded(
                    service: service, database: database.location, previous: old.fingerprint, underPrevious: underOld, broken: broken)
            }
            report.valuesChecked = check.groups.reduce(0) { $0 + $1.underMasterKey }
        }
        report.forgotten = try previous.remove()
        return report
    }
}

/// forget-old-key refused: the database still holds secrets that only the previous key opens.
public struct OldKeyStillNeeded: ToolcfgError {
    public var service: String
    public var database: String
    public var previous: String
    public var underPrevious: Int
    public var broken: Int
    public var exitStatus: ExitStatus { .dataError }
    public var errorContext: ErrorContext { ErrorContext(database: database) }

    public var description: String {
        if underPrevious == 0 {
            return
                "not forgetting the previous key \(previous): \(broken) secret(s) in \(database) open under neither keyring key; "
                + "run verify-keys"
        }
        return "not forgetting the previous key \(previous): \(underPrevious) secret(s) in \(database) still open only under it"
            + (broken > 0 ? " (and \(broken) under neither key)" : "")
            + "; re-encrypt them first: toolcfg rotate --db \(database) --master-key-keyring '\(service)' --new-master-key-keyring "
            + "'\(service)'"
    }
}
