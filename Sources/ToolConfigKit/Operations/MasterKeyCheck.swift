/// Whether an import's master key is the one the stored keys are under. Encrypting plaintext
/// keys under the wrong master key (the old one after a rotation, say) would leave the table under
/// two keys, and the application unable to open the imported ones; so before anything is written
/// the key is tried on stored keys: a sample spread over every column group of every table, then every
/// existing row the import decides on, until one opens. A key that opens none of them is refused.
struct MasterKeyCheck: Sendable, Codable {
    /// Stored keys tried.
    var checked = 0
    /// Of those, how many opened under the master key.
    var opened = 0
    /// A few of the keys that did not open, for the message: table and row id.
    var refusedBy: [String] = []

    static let samplePerTable = 16

    /// Once one stored key opens, the master key is the application's (or one of its keys, in a
    /// half-rotated database) and nothing more needs trying.
    var settled: Bool { opened > 0 }

    /// Up to `samplePerTable` keyed rows of each encrypted table, spread evenly over it, tried on
    /// all cores. Runs in the import's read snapshot.
    /// Only groups that can be accounted for: the check samples, it rotates nothing.
    mutating func sample(_ database: any Database, masterKey: MasterKey, jobs: Int) throws {
        for group in try database.secretGroups(lenient: true) {
            let rows = try database.secretStore(for: group).sample(Self.samplePerTable)
            try tryKeys(rows.compactMap { row in row.secret.map { (group.table, row.label, $0) } }, masterKey: masterKey, jobs: jobs)
        }
    }

    /// Tries the master key on stored keys (table, row label, triple), on all cores, unless it is
    /// already settled.
    mutating func tryKeys(_ keys: [(table: String, row: String, secret: StoredSecret)], masterKey: MasterKey, jobs: Int) throws {
        guard !settled, !keys.isEmpty else { return }
        let opens = ParallelMap.map(keys.map(\.secret), jobs: jobs) { secret in
            (try? SecretCipher.decrypt(secret, masterKey: masterKey)) != nil
        }
        checked += keys.count
        opened += opens.count { $0 }
        for (key, opened) in zip(keys, opens) where !opened && refusedBy.count < 3 {
            refusedBy.append("\(key.table) \(key.row)")
        }
    }

    /// Throws unless the key opened a stored key, or there was none to try.
    func require(masterKey: MasterKey) throws {
        guard checked > 0, opened == 0 else { return }
        throw MasterKeyMismatchError(fingerprint: masterKey.fingerprint, checked: checked, examples: refusedBy)
    }
}
