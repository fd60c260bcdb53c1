public enum StressError: ToolcfgError {
    case badOptions(String)
    case notScratch(path: String, rows: Int)
    case badPlan(String)
    case workerFailed(writer: Int, reason: String)

    public var exitStatus: ExitStatus {
        switch self {
        case .badOptions, .notScratch: .usage
        case .badPlan, .workerFailed: .software
        }
    }

    public var errorContext: ErrorContext {
        if case .notScratch(let path, _) = self { return ErrorContext(database: path, table: ToolConfigTable.name) }
        return ErrorContext()
    }

    public var description: String {
        switch self {
        case .badOptions(let message): message
        case .notScratch(let path, let rows):
            "database \(path): user_tool_configs holds \(rows) row(s) not written by a stress run; "
                + "stress writes and deletes rows constantly, so give it a scratch database (toolcfg migrate up --db scratch.db)"
        case .badPlan(let reason): "stress-worker: unreadable plan: \(reason)"
        case .workerFailed(let writer, let reason): "stress writer \(writer) (process) \(reason)"
        }
    }
}
