/// Bounds on what a reader accepts, so a hostile or broken file (a 1 GB line, a header with
/// millions of columns, deep nesting, a 10,000-digit number) ends in a clear error in bounded
/// memory instead of exhausting it. Every legitimate snapshot is far inside them.
enum SnapshotLimits {
    /// Longest single field or JSON string, in bytes.
    static let fieldBytes = 1 << 20
    /// Most fields in one CSV row or JSON record (the contract has 11 names).
    static let fields = 64
    /// Deepest JSON nesting (a snapshot needs 3).
    static let depth = 16
    /// Longest JSON number literal.
    static let numberLength = 32
}
