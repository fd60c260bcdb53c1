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

    enum Finding: Sendable, Equatable {
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
            try database.requireEveryRowVisible(in: tables.map(\.name))
            let stores = try tables.map(database.secretStore)
            let total = try stores.reduce(0) { $0 + (try $1.count()) }
            progress(ProgressEvent(.checkingKeys, total: total))
            for store in stores {
                let table = store.table
                var report = TableReport(table: table.name, rows: 0, noKey: 0, underMasterKey: 0, underNewMasterKey: 0, underNeither: 0, malformed: 0)
                try store.scan(pageSize: KeyRotator.pageSize) { rows in
                    let triples = rows.map(\.triple)
                    let findings = Self.check(triples, masterKey: masterKey, newKey: newKey, jobs: jobs)
                    for (row, (finding, triple)) in zip(rows, zip(findings, triples)) {
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
                        guard case .decoded(let decoded) = triple, let secret = row.secret else { continue }
                        // A repeat is confirmed across every table: a salt shared by two tables' rows counts too.
                        if !salts.insert(Self.prefix(decoded.salt)).inserted, try store.countRows(with: .salt, equalTo: secret.salt, acrossAlso: tables) > 1 {
                            reusedSalts += 1
                            problem("its salt is used by another row")
                        }
                        if !nonces.insert(Self.prefix(decoded.nonce)).inserted, try store.countRows(with: .nonce, equalTo: secret.nonce, acrossAlso: tables) > 1 {
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

    /// A page's findings, in row order. Triples are tried under the master key in groups whose
    /// row keys are derived together (`SecretCipher.decrypt` on an array), and those that fail
    /// under the new key, again in groups: a row is `.master` if it opens under the master key,
    /// else `.new` if under the new key.
    static func check(_ triples: [SecretRow.Triple], masterKey: MasterKey, newKey: MasterKey?, jobs: Int) -> [Finding] {
        var findings: [Finding] = []
        var candidates: [(index: Int, secret: DecodedSecret)] = []
        for (index, triple) in triples.enumerated() {
            switch triple {
            case .none: findings.append(.noKey)
            case .malformed(let reason): findings.append(.malformed(reason))
            case .decoded(let secret):
                findings.append(.neither)
                candidates.append((index, secret))
            }
        }
        func opened(_ candidates: [(index: Int, secret: DecodedSecret)], under key: MasterKey) -> [Bool] {
            ParallelMap.mapInGroups(candidates.map(\.secret), size: SecretCipher.groupSize, jobs: jobs) { group in
                SecretCipher.decrypt(group, masterKey: key).map { (try? $0.get()) != nil }
            }
        }
        var unopened: [(index: Int, secret: DecodedSecret)] = []
        for (candidate, opens) in zip(candidates, opened(candidates, under: masterKey)) {
            if opens { findings[candidate.index] = .master } else { unopened.append(candidate) }
        }
        if let newKey, !unopened.isEmpty {
            for (candidate, opens) in zip(unopened, opened(unopened, under: newKey)) where opens { findings[candidate.index] = .new }
        }
        return findings
    }

    static func prefix(_ bytes: [UInt8]) -> UInt64 {
        bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}
