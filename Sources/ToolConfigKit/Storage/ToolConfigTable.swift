/// The `user_tool_configs` table of migration 0007: its name, its columns (spelled out here
/// once), and a row as every engine reads it. Each engine's SQL for it lives with the engine.
public enum ToolConfigTable {
    public static let name = "user_tool_configs"
    static let columns = ["id", "user_id", "tool_id", "enabled", "encrypted_api_key", "salt", "nonce", "created_at", "updated_at"]
    /// The columns an insert writes (all but id), comma-separated, in the order of `columns`.
    static let writtenColumns = columns.dropFirst().joined(separator: ", ")
    static let selectedColumns = columns.joined(separator: ", ")

    /// One row as stored.
    public struct Row: Sendable {
        var id: Int64
        var enabled: Bool
        var secret: StoredSecret?
        var createdAt: Int64
        var updatedAt: Int64
    }
}
