/// What the stress run writes besides the table: its key space of (user_id, tool_id) pairs and the
/// write log, a table in the same database that every write transaction appends to, so the
/// checker knows, for each pair, which write committed last and what the row must hold. Each
/// engine creates and writes the log in its own SQL (its `StressStore`); its sequence is the
/// commit order on both.
///
/// The log and the stress rows are kept after a run, for inspection; the next run clears both.
enum StressLog {
    static let table = "_toolcfg_stress_log"

    /// Every stress row's user_id starts with this; the run refuses a table with other rows.
    static let userPrefix = "toolcfg-stress-"

    /// Pair `index` of the key space: four tools per user.
    static func pair(_ index: Int) -> StressPair {
        StressPair(user: "\(userPrefix)\(index / 4)", tool: "tool-\(index % 4)")
    }
}
