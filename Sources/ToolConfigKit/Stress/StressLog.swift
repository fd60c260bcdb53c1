/// What the stress run writes besides the table: its key space of (user_id, tool_id) pairs and the
/// write log, a table in the same database that every write transaction appends to, so the
/// checker knows, for each pair, which write committed last and what the row must hold.
///
/// The log and the stress rows are kept after a run, for inspection; the next run clears both.
enum StressLog {
    static let table = "_toolcfg_stress_log"

    /// Every stress row's user_id starts with this; the run refuses a table with other rows.
    static let userPrefix = "toolcfg-stress-"

    /// Pair `index` of the key space: four tools per user.
    static func pair(_ index: Int) -> (user: String, tool: String) {
        ("\(userPrefix)\(index / 4)", "tool-\(index % 4)")
    }

    /// `seq` is the commit order: write transactions are serialised by SQLite's write lock, and
    /// AUTOINCREMENT hands out max + 1 inside the transaction that holds it.
    static let createSQL = """
        CREATE TABLE \(table) (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            writer INTEGER NOT NULL,
            counter INTEGER NOT NULL,          -- the writer's operation number
            user_id TEXT NOT NULL,
            tool_id TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
            version INTEGER,                   -- upsert: the version written (1 for a new row)
            row_id INTEGER,                    -- upsert: the row's id after it; delete: the id removed, NULL if none
            token TEXT,                        -- upsert: the value written, 'w<writer>.<counter>'
            UNIQUE (writer, counter)
        )
        """

    static let insertSQL = """
        INSERT INTO \(table) (writer, counter, user_id, tool_id, op, version, row_id, token)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
        """

    static let selectSQL = "SELECT seq, writer, counter, user_id, tool_id, op, version, row_id, token FROM \(table) ORDER BY seq"

    /// Stress rows live in user_tool_configs: the token in encrypted_api_key (salt and nonce NULL:
    /// placeholders, not secrets) and the row's version in updated_at.
    static let rowsSQL = """
        SELECT id, user_id, tool_id, encrypted_api_key, updated_at FROM user_tool_configs
        WHERE user_id LIKE '\(userPrefix)%' ORDER BY id
        """

    static let foreignRowsSQL = "SELECT count(*) FROM user_tool_configs WHERE user_id NOT LIKE '\(userPrefix)%'"

    /// Clears what a previous run left and creates an empty log, in one write transaction.
    static func reset(_ connection: SQLiteConnection) throws {
        try connection.writeTransaction {
            try connection.execute("DELETE FROM user_tool_configs WHERE user_id LIKE '\(userPrefix)%'")
            try connection.execute("DROP TABLE IF EXISTS \(table)")
            try connection.execute(createSQL)
        }
    }
}
