/// Checks a database after a stress run against its write log, in one read transaction. Each
/// finding is a count that must be 0:
/// - duplicate pairs: (user_id, tool_id) pairs with more than one row;
/// - id changes: an update that gave the pair's row another id (a delete and a re-insert
///   legitimately start a new incarnation with a new id; within one incarnation the id is fixed);
/// - lost updates: a committed write that did not build on the write committed before it to the
///   same pair (its version is not the previous one + 1), or a pair whose final row is not its
///   last committed write (or that has a row after its last committed delete);
/// - integrity failures: what the engine's own check found (SQLite: lines of `PRAGMA
///   integrity_check` other than "ok"; PostgreSQL: amcheck, see `PostgresStressStore`).
struct StressChecker {
    struct Findings: Sendable {
        var duplicatePairs = 0
        var idChanges = 0
        var lostUpdates = 0
        var integrityFailures = 0
        var loggedWrites = 0
        var finalRows = 0
        /// What the engine's integrity check covered.
        var integrityCheck = ""
        /// The first problems found, described.
        var problems: [String] = []

        mutating func problem(_ text: String) {
            if problems.count < 20 { problems.append(text) }
        }
    }

    /// What the log says a pair holds: the current incarnation's id and version and the last token.
    struct Expected {
        var id: Int64?
        var version: Int64 = 0
        var token: String?
        var lastSeq: Int64 = 0
    }

    let store: any StressStore

    func run() throws -> Findings {
        var findings = Findings()
        // One snapshot for the log and the rows.
        try store.database.transaction(.read) {
            findings.duplicatePairs = try store.duplicatePairs()

            var expected: [StressPair: Expected] = [:]
            try store.forEachLogEntry { entry in
                findings.loggedWrites += 1
                let seq = entry.seq, write = entry.write, pair = write.pair
                let label = "seq \(seq) (writer \(write.writer), operation \(write.counter))"
                var state = expected[pair] ?? Expected()
                if write.operation == .delete {
                    state = Expected(lastSeq: seq)
                } else {
                    let version = write.version ?? 0
                    if version != state.version + 1 {
                        findings.lostUpdates += 1
                        findings.problem(
                            "\(pair.label): \(label) wrote version \(version) over version \(state.version) "
                                + "(committed at seq \(state.lastSeq)): it did not see that write"
                        )
                    }
                    if let before = state.id, write.rowID != before {
                        findings.idChanges += 1
                        findings.problem(
                            "\(pair.label): \(label) changed the row's id from \(before) to \(write.rowID.map(String.init) ?? "none")")
                    }
                    state = Expected(id: write.rowID, version: version, token: write.token, lastSeq: seq)
                }
                expected[pair] = state
            }

            var rows: [StressPair: [StressRow]] = [:]
            try store.forEachStressRow { row in
                findings.finalRows += 1
                rows[row.pair, default: []].append(row)
            }

            for pair in Set(expected.keys).union(rows.keys).sorted() {
                let state = expected[pair] ?? Expected()
                let present = rows[pair] ?? []
                guard let token = state.token else {
                    if !present.isEmpty {
                        findings.lostUpdates += 1
                        findings.problem(
                            "\(pair.label) has a row (id \(present[0].id)) but its last committed write (seq \(state.lastSeq)) "
                                + "deleted it, or it was never written"
                        )
                    }
                    continue
                }
                guard let row = present.first(where: { $0.token == token && $0.version == state.version }) else {
                    findings.lostUpdates += 1
                    let found = present.first.map { "\($0.token ?? "NULL") version \($0.version)" } ?? "no row"
                    findings.problem(
                        "\(pair.label) holds \(found), not its last committed write \(token) version \(state.version) "
                            + "(seq \(state.lastSeq))"
                    )
                    continue
                }
                if let id = state.id, row.id != id {
                    findings.idChanges += 1
                    findings.problem("\(pair.label) ends with id \(row.id), not the id \(id) its last write left")
                }
            }
        }

        let integrity = store.checkIntegrity()
        findings.integrityCheck = integrity.checked
        for line in integrity.problems {
            findings.integrityFailures += 1
            findings.problem(line)
        }
        return findings
    }
}
