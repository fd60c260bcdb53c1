/// Checks a database after a stress run against its write log, in one read transaction. Each
/// finding is a count that must be 0:
/// - duplicate pairs: (user_id, tool_id) pairs with more than one row;
/// - id changes: an update that gave the pair's row another id (a delete and a re-insert
///   legitimately start a new incarnation with a new id; within one incarnation the id is fixed);
/// - lost updates: a committed write that did not build on the write committed before it to the
///   same pair (its version is not the previous one + 1), or a pair whose final row is not its
///   last committed write (or that has a row after its last committed delete);
/// - integrity failures: lines of `PRAGMA integrity_check` other than "ok".
struct StressChecker {
    struct Findings: Sendable {
        var duplicatePairs = 0
        var idChanges = 0
        var lostUpdates = 0
        var integrityFailures = 0
        var loggedWrites = 0
        var finalRows = 0
        /// The first problems found, described.
        var problems: [String] = []

        mutating func problem(_ text: String) {
            if problems.count < 20 { problems.append(text) }
        }
    }

    struct Pair: Hashable, Comparable {
        var user: String
        var tool: String
        static func < (a: Pair, b: Pair) -> Bool { (a.user, a.tool) < (b.user, b.tool) }
        var label: String { "(\(user), \(tool))" }
    }

    /// What the log says a pair holds: the current incarnation's id and version and the last token.
    struct Expected {
        var id: Int64?
        var version: Int64 = 0
        var token: String?
        var lastSeq: Int64 = 0
    }

    struct Row {
        var id: Int64
        var token: String?
        var version: Int64
    }

    let connection: SQLiteConnection

    func run() throws -> Findings {
        var findings = Findings()
        // One snapshot for the log and the rows.
        try connection.transaction(.read) {

            findings.duplicatePairs = Int(try connection.queryInt64(
                "SELECT count(*) FROM (SELECT 1 FROM user_tool_configs GROUP BY user_id, tool_id HAVING count(*) > 1)") ?? 0)

            var expected: [Pair: Expected] = [:]
            let log = try connection.prepare(StressLog.selectSQL)
            while try log.step() {
                findings.loggedWrites += 1
                let seq = log.int64(0)
                let pair = Pair(user: log.text(3) ?? "", tool: log.text(4) ?? "")
                let entry = "seq \(seq) (writer \(log.int64(1)), operation \(log.int64(2)))"
                var state = expected[pair] ?? Expected()
                if log.text(5) == "delete" {
                    state = Expected(lastSeq: seq)
                } else {
                    let version = log.int64(6)
                    let id: Int64? = log.isNull(7) ? nil : log.int64(7)
                    if version != state.version + 1 {
                        findings.lostUpdates += 1
                        findings.problem("\(pair.label): \(entry) wrote version \(version) over version \(state.version) (committed at seq \(state.lastSeq)): it did not see that write")
                    }
                    if let before = state.id, id != before {
                        findings.idChanges += 1
                        findings.problem("\(pair.label): \(entry) changed the row's id from \(before) to \(id.map(String.init) ?? "none")")
                    }
                    state = Expected(id: id, version: version, token: log.text(8), lastSeq: seq)
                }
                expected[pair] = state
            }

            var rows: [Pair: [Row]] = [:]
            let select = try connection.prepare(StressLog.rowsSQL)
            while try select.step() {
                findings.finalRows += 1
                rows[Pair(user: select.text(1) ?? "", tool: select.text(2) ?? ""), default: []]
                    .append(Row(id: select.int64(0), token: select.text(3), version: select.int64(4)))
            }

            for pair in Set(expected.keys).union(rows.keys).sorted() {
                let state = expected[pair] ?? Expected()
                let present = rows[pair] ?? []
                guard let token = state.token else {
                    if !present.isEmpty {
                        findings.lostUpdates += 1
                        findings.problem("\(pair.label) has a row (id \(present[0].id)) but its last committed write (seq \(state.lastSeq)) deleted it, or it was never written")
                    }
                    continue
                }
                guard let row = present.first(where: { $0.token == token && $0.version == state.version }) else {
                    findings.lostUpdates += 1
                    let found = present.first.map { "\($0.token ?? "NULL") version \($0.version)" } ?? "no row"
                    findings.problem("\(pair.label) holds \(found), not its last committed write \(token) version \(state.version) (seq \(state.lastSeq))")
                    continue
                }
                if let id = state.id, row.id != id {
                    findings.idChanges += 1
                    findings.problem("\(pair.label) ends with id \(row.id), not the id \(id) its last write left")
                }
            }
        }

        do {
            let integrity = try connection.prepare("PRAGMA integrity_check")
            while try integrity.step() {
                let line = integrity.text(0) ?? ""
                if line != "ok" {
                    findings.integrityFailures += 1
                    findings.problem("integrity_check: \(line)")
                }
            }
        } catch {
            findings.integrityFailures += 1
            findings.problem("integrity_check could not finish: \(error.message)")
        }
        return findings
    }
}
