import Foundation

/// Imports a snapshot into `user_tool_configs` all-or-nothing: every record is validated, keys
/// are encrypted (or checked) on all cores, and rows are upserted in one `BEGIN IMMEDIATE`
/// transaction that commits only if the whole file was good (and, for a toolcfg snapshot, its
/// row count and digest match). Any error rolls everything back.
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
        public var now: Int64
        public var jobs: Int

        public init(input: String, format: SnapshotFormat, onConflict: ConflictPolicy = .update, dryRun: Bool = false,
                    maxErrors: Int = 1, masterKey: MasterKey? = nil, passphrase: SecureBytes? = nil,
                    now: Int64 = Int64(Date().timeIntervalSince1970), jobs: Int = ParallelMap.defaultJobs) {
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
        public var input: String
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
    }

    static let batchSize = 512

    let connection: SQLiteConnection
    let options: Options

    public init(connection: SQLiteConnection, options: Options) {
        self.connection = connection
        self.options = options
    }

    public func run(progress: (Int) -> Void = { _ in }) throws -> Report {
        try ToolConfigTable.checkShape(connection)
        let reader = try SnapshotReaders.open(path: options.input, format: options.format)
        let header = reader.header
        if header?.keys == .plaintext || header?.keys == .sealed, options.masterKey == nil {
            throw SecretError.missing(secret: "master key (to encrypt the imported keys)", flag: SecretKind.masterKey.flag,
                                      environmentVariable: SecretKind.masterKey.environmentVariable)
        }
        var sealer: SnapshotSealer?
        if let sealing = header?.sealing {
            guard let passphrase = options.passphrase else {
                throw SecretError.missing(secret: "passphrase (the snapshot is sealed)", flag: SecretKind.passphrase.flag,
                                          environmentVariable: SecretKind.passphrase.environmentVariable)
            }
            sealer = try Self.openSealing(sealing, passphrase: passphrase, file: reader.fileName)
        }
        var state = ImportState(options: options, fileName: reader.fileName, sealer: sealer,
                                decoder: RecordDecoder(format: options.format, declaredKeys: header?.keys))
        var report = Report(database: connection.path, input: reader.fileName, format: options.format, keys: header?.keys,
                            records: 0, inserted: 0, updated: 0, unchanged: 0, skipped: 0, duplicates: 0,
                            dryRun: options.dryRun, integrityChecked: false, masterKeyFingerprint: options.masterKey?.fingerprint)

        try connection.execute("BEGIN IMMEDIATE", context: "taking the write lock")
        defer { if connection.isInTransaction { try? connection.execute("ROLLBACK") } }
        let writer = try ImportWriter(connection: connection)
        var raws: [RawRecord] = []
        var finished = false
        while !finished && state.errors.count < options.maxErrors {
            raws.removeAll(keepingCapacity: true)
            var syntaxError: SnapshotError?
            while raws.count < Self.batchSize {
                do {
                    guard let raw = try reader.next() else { finished = true; break }
                    raws.append(raw)
                } catch let error as SnapshotError {
                    // A syntax error ends reading: nothing after it can be trusted. It is reported
                    // after the errors of the records before it, so errors stay in file order.
                    syntaxError = error
                    finished = true
                    break
                }
            }
            try state.process(raws, writer: writer, report: &report)
            if let syntaxError { state.errors.append(syntaxError) }
            progress(report.records)
        }
        if state.errors.isEmpty {
            report.integrityChecked = state.checkIntegrity(header: header, trailer: reader.trailer)
        }
        if !state.errors.isEmpty {
            let errors = Array(state.errors.prefix(options.maxErrors))
            if errors.count == 1 { throw errors[0] }
            throw SnapshotErrors(errors: errors, stoppedEarly: state.errors.count >= options.maxErrors)
        }
        // A dry run validated and wrote everything, and now forgets it.
        try connection.execute(options.dryRun ? "ROLLBACK" : "COMMIT", context: "committing")
        return report
    }

    private static func openSealing(_ sealing: SealingParameters, passphrase: SecureBytes, file: String) throws -> SnapshotSealer {
        let result = Result { () throws(SecretError) in try SnapshotSealer(passphrase: passphrase, parameters: sealing) }
        if case .failure(.authenticationFailed) = result {
            throw SnapshotError(SnapshotLocation(file: file, line: 1, field: "sealing"), "the passphrase does not open this snapshot")
        }
        return try result.get()
    }
}
