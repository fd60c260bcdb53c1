/// Checks every stored secret of every table: that it is well formed and decrypts under the
/// master key (and, when given, counts those under a new key, so a half-rotated database shows
/// at a glance), and that no salt or nonce repeats across the population, which would mean the
/// random generator that made them was broken.
public struct KeyVerifier {
    public struct TableReport: Sendable, Codable {
        public var table: String
        public var rows: Int
        public var noKey: Int
        public var underMasterKey: Int
        public var underNewMasterKey: Int
        public var underNeither: Int
        public var malformed: Int
    }

    public struct Problem: Sendable, Codable {
        public var table: String
        /// The rowid (user_tool_configs' id).
        public var rowID: Int64
        /// The table's own id when it is not the rowid (api_model_aliases' text id).
        public var id: String?
        public var problem: String
    }

    public struct Report: Sendable, Codable {
        public var database: String
        public var masterKeyFingerprint: String
        public var newMasterKeyFingerprint: String?
        public var tables: [TableReport]
        public var reusedSalts: Int
        public var reusedNonces: Int
        /// The first problems found (at most 20), by table and row, never with values.
        public var problems: [Problem]
        public var ok: Bool
    }

    let database: any Database
    let masterKey: MasterKey
    let newKey: MasterKey?
    let jobs: Int

    public init(database: any Database, masterKey: MasterKey, newKey: MasterKey? = nil, jobs: Int = ParallelMap.defaultJobs) {
        self.database = database
        self.masterKey = masterKey
        self.newKey = newKey
        self.jobs = max(1, jobs)
    }

    enum Finding: Sendable {
        case noKey, master, new, neither, malformed(String)
    }

    public func run(progress: ProgressHandler = { _ in }) throws -> Report {
        var reports: [TableReport] = []
        var problems: [Problem] = []
        // Salts and nonces are random: their first 8 bytes serve as their hash. A repeat of those
        // is confirmed against the whole value before it is counted.
        var salts = Set<UInt64>(), nonces = Set<UInt64>()
        var reusedSalts = 0, reusedNonces = 0
        var processed = 0
        // One consistent snapshot.
        try database.transaction(.read) {
            let tables = try database.encryptedTables()
            let stores = try tables.map(database.secretStore)
            let total = try stores.reduce(0) { $0 + (try $1.count()) }
            progress(ProgressEvent(.checkingKeys, total: total))
            for store in stores {
                let table = store.table
                var report = TableReport(table: table.name, rows: 0, noKey: 0, underMasterKey: 0, underNewMasterKey: 0, underNeither: 0, malformed: 0)
                try store.scan(pageSize: KeyRotator.pageSize) { rows in
                    let findings = ParallelMap.map(rows, jobs: jobs) { [masterKey, newKey] row in Self.check(row, masterKey: masterKey, newKey: newKey) }
                    for (row, finding) in zip(rows, findings) {
                        report.rows += 1
                        func problem(_ text: String) {
                            if problems.count < 20 {
                                problems.append(Problem(table: table.name, rowID: row.rowID, id: row.id == String(row.rowID) ? nil : row.id, problem: text))
                            }
                        }
                        switch finding {
                        case .noKey: report.noKey += 1
                        case .master: report.underMasterKey += 1
                        case .new: report.underNewMasterKey += 1
                        case .neither:
                            report.underNeither += 1
                            problem("decrypts under no key given")
                        case .malformed(let reason):
                            report.malformed += 1
                            problem(reason)
                        }
                        guard let secret = row.secret, let decoded = try? secret.decoded() else { continue }
                        // A repeat is confirmed across every table: a salt shared by two tables' rows counts too.
                        if !salts.insert(Self.prefix(decoded.salt)).inserted, try store.countRows(withSalt: secret.salt, acrossAlso: tables) > 1 {
                            reusedSalts += 1
                            problem("its salt is used by another row")
                        }
                        if !nonces.insert(Self.prefix(decoded.nonce)).inserted, try store.countRows(withNonce: secret.nonce, acrossAlso: tables) > 1 {
                            reusedNonces += 1
                            problem("its nonce is used by another row")
                        }
                    }
                    processed += rows.count
                    progress(ProgressEvent(.checkingKeys, done: processed, total: total))
                }
                reports.append(report)
            }
        }
        let ok = reports.allSatisfy { $0.underNeither == 0 && $0.malformed == 0 }
            && reusedSalts == 0 && reusedNonces == 0
        return Report(database: database.location, masterKeyFingerprint: masterKey.fingerprint, newMasterKeyFingerprint: newKey?.fingerprint,
                      tables: reports, reusedSalts: reusedSalts, reusedNonces: reusedNonces, problems: problems, ok: ok)
    }

    static func check(_ row: SecretRow, masterKey: MasterKey, newKey: MasterKey?) -> Finding {
        let decoded: DecodedSecret
        switch row.triple {
        case .none: return .noKey
        case .malformed(let reason): return .malformed(reason)
        case .decoded(let triple): decoded = triple
        }
        if (try? SecretCipher.decrypt(decoded, masterKey: masterKey)) != nil { return .master }
        if let newKey, (try? SecretCipher.decrypt(decoded, masterKey: newKey)) != nil { return .new }
        return .neither
    }

    static func prefix(_ bytes: [UInt8]) -> UInt64 {
        bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

}
