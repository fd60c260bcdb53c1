/// Checks every stored secret of every column group (`SecretColumnMap`, refused when a column
/// looks like a secret no group accounts for): that it is well formed and decrypts under the
/// master key in its scheme (and, when given, counts those under a new key, so a half-rotated
/// database shows at a glance), that no salt or nonce repeats across the population, which would
/// mean the random generator that made them was broken; and counts the values of each scheme,
/// naming the legacy (v1) values that an application of v0.0.59 or later refuses.
public struct KeyVerifier {
    public struct GroupReport: Sendable, Codable {
        public var table: String
        /// The ciphertext, salt and nonce columns.
        public var columns: [String]
        public var rows: Int
        public var empty: Int
        public var underMasterKey: Int
        public var underNewMasterKey: Int
        public var underNeither: Int
        public var malformed: Int
        /// Well-formed values of each scheme.
        public var v1: Int
        public var v2: Int
        /// v1 values outside tenants: an application of v0.0.59 or later refuses them (HTTP 422).
        public var legacy: Int
    }

    public struct Problem: Sendable, Codable {
        public var table: String
        /// The rowid (user_tool_configs' id).
        public var rowID: Int64
        /// The table's own id when it is not the rowid (api_model_aliases' text id).
        public var id: String?
        /// The group's ciphertext column.
        public var column: String
        public var problem: String
    }

    public struct Report: Sendable, Codable {
        public var database: String
        public var masterKeyFingerprint: String
        public var newMasterKeyFingerprint: String?
        public var groups: [GroupReport]
        public var reusedSalts: Int
        public var reusedNonces: Int
        /// The first problems found (at most 20), by table and row, never with values.
        public var problems: [Problem]
        /// The first legacy values (at most 20): v1 outside tenants, which an application of
        /// v0.0.59 or later refuses until `rotate --scheme v2` upgrades them.
        public var legacyValues: [Problem]
        /// The secrets file, when given.
        public var secretsFile: SecretsFileCheck?
        /// The releases of the application the database fits.
        public var applicationRelease: ApplicationRelease
        public var ok: Bool
    }

    /// Which key the secrets file opens under.
    public struct SecretsFileCheck: Sendable, Codable {
        public var file: String
        /// "master_key", "new_master_key" or "neither".
        public var under: String
    }

    let database: any DatabaseReader
    let masterKey: MasterKey
    let newKey: MasterKey?
    let jobs: Int
    let columns: SecretColumnMap
    let secretsFile: String?
    /// How many rows the report names per list (problems, legacy values); nil names every one.
    let listLimit: Int?

    /// The rows a report names per list unless asked otherwise.
    public static let defaultListLimit = 20

    public init(
        database: any DatabaseReader, masterKey: MasterKey, newKey: MasterKey? = nil, jobs: Int = ParallelMap.defaultJobs,
        columns: SecretColumnMap = SecretColumnMap(), secretsFile: String? = nil, listLimit: Int? = defaultListLimit
    ) {
        self.secretsFile = secretsFile
        self.listLimit = listLimit
        self.database = database
        self.masterKey = masterKey
        self.newKey = newKey
        self.jobs = max(1, jobs)
        self.columns = columns
    }

    enum Finding: Sendable, Equatable {
        case noKey, master, new, neither, malformed(String)
    }

    public func run(progress: ProgressHandler = { _ in }) throws -> Report {
        var reports: [GroupReport] = []
        var problems: [Problem] = [], legacyValues: [Problem] = []
        var salts = RepeatFinder(), nonces = RepeatFinder()
        var reusedSalts = 0, reusedNonces = 0
        var processed = 0
        let file = try secretsFile.map { path in
            let secret = try SecretsFileRotation.read(path).secret
            let under = [(masterKey, "master_key"), (newKey, "new_master_key")].first { key, _ in
                key.map { (try? SecretCipher.decrypt(secret, masterKey: $0)) != nil } ?? false
            }?.1
            return SecretsFileCheck(file: path, under: under ?? "neither")
        }
        var release: ApplicationRelease?
        var values = StoredSchemes()
        // One consistent snapshot.
        try database.readTransaction {
            let groups = try database.secretGroups(columns)
            try database.requireEveryRowVisible(in: groups.map(\.table).uniqued())
            let stores = try groups.map(database.secretReader)
            let total = try stores.reduce(0) { $0 + (try $1.count()) }
            progress(ProgressEvent(.checkingKeys, total: total))
            for store in stores {
                let group = store.group
                var report = GroupReport(
                    table: group.table, columns: group.columns, rows: 0, empty: 0, underMasterKey: 0, underNewMasterKey: 0,
                    underNeither: 0, malformed: 0, v1: 0, v2: 0, legacy: 0)
                // A page's findings are worked out on the other threads while the next page is
                // read (the scan is a few percent of the time, the derivations the rest).
                func consume(_ rows: [SecretRow], _ triples: [SecretRow.Triple], _ findings: [Finding]) throws {
                    for (row, (finding, triple)) in zip(rows, zip(findings, triples)) {
                        report.rows += 1
                        let named = Problem(
                            table: group.table, rowID: row.rowID, id: row.id == String(row.rowID) ? nil : row.id, column: group.ciphertext,
                            problem: "")
                        func problem(_ text: String) {
                            if problems.count < listLimit ?? .max {
                                var found = named
                                (found.column, found.problem) = group.naming(text)
                                problems.append(found)
                            }
                        }
                        switch finding {
                        case .noKey: report.empty += 1
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
                        switch decoded.scheme {
                        case .v2: report.v2 += 1
                        case .v1:
                            report.v1 += 1
                            if group.table != SecretColumnMap.legacyReadableTable {
                                report.legacy += 1
                                if legacyValues.count < listLimit ?? .max {
                                    var legacy = named
                                    legacy.problem =
                                        "a legacy (v1) value: an application of v0.0.59 or later refuses it until rotate --scheme v2 "
                                        + "upgrades it"
                                    legacyValues.append(legacy)
                                }
                            }
                        }
                        // A repeat is confirmed across every table: a salt shared by two tables' rows counts too.
                        if try salts.repeats(
                            secret.salt, decoded: decoded.salt,
                            confirm: {
                                try store.countRows(with: .salt, equalTo: secret.salt, acrossAlso: groups) > 1
                            })
                        {
                            reusedSalts += 1
                            problem("its salt is used by another row")
                        }
                        if try nonces.repeats(
                            secret.nonce, decoded: decoded.nonce,
                            confirm: {
                                try store.countRows(with: .nonce, equalTo: secret.nonce, acrossAlso: groups) > 1
                            })
                        {
                            reusedNonces += 1
                            problem("its nonce is used by another row")
                        }
                    }
                    processed += rows.count
                    progress(ProgressEvent(.checkingKeys, done: processed, total: total))
                }
                var pending: (rows: [SecretRow], triples: [SecretRow.Triple], findings: Deferred<[Finding]>)?
                try store.scan(pageSize: KeyRotator.pageSize) { rows in
                    let triples = rows.map(\.triple)
                    let next = (
                        rows, triples,
                        Deferred { [masterKey, newKey, jobs] in Self.check(triples, masterKey: masterKey, newKey: newKey, jobs: jobs) }
                    )
                    if let page = pending {
                        pending = nil
                        try consume(page.rows, page.triples, page.findings.wait())
                    }
                    pending = next
                }
                if let page = pending { try consume(page.rows, page.triples, page.findings.wait()) }
                values.byTable[group.table, default: [:]][.v1, default: 0] += report.v1
                values.byTable[group.table, default: [:]][.v2, default: 0] += report.v2
                reports.append(report)
            }
            // The schemes as this scan counted them, not a second scan of every ciphertext.
            release = try ApplicationRelease.detect(database, values: values)
        }
        let ok =
            reports.allSatisfy { $0.underNeither == 0 && $0.malformed == 0 }
            && reusedSalts == 0 && reusedNonces == 0 && file?.under != "neither"
        return Report(
            database: database.location, masterKeyFingerprint: masterKey.fingerprint, newMasterKeyFingerprint: newKey?.fingerprint,
            groups: reports, reusedSalts: reusedSalts, reusedNonces: reusedNonces, problems: problems, legacyValues: legacyValues,
            secretsFile: file, applicationRelease: release!, ok: ok)
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

    /// Salts (or nonces) seen so far. They are random: their first 8 bytes serve as their hash,
    /// and a repeat of those is confirmed against the whole value (`confirm`, a count over the
    /// tables) before it counts. A value confirmed once is known: each is counted against the
    /// tables once, not once per row that holds it (a million rows sharing one salt made a
    /// million scans).
    struct RepeatFinder {
        private var seen = Set<UInt64>()
        private var confirmed = Set<String>()

        /// Whether `text` (decoding to `decoded`) repeats a value seen before.
        mutating func repeats(_ text: String, decoded: [UInt8], confirm: () throws -> Bool) rethrows -> Bool {
            let prefix = decoded.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard !seen.insert(prefix).inserted else { return false }
            guard try confirmed.contains(text) || confirm() else { return false }
            confirmed.insert(text)
            return true
        }
    }
}
