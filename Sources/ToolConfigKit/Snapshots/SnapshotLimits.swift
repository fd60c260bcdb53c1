/// Bounds on what a reader accepts, so a hostile or broken file (a 1 GB line, a header with
/// millions of columns, deep or wide nesting, a 10,000-digit number) ends in a clear error in bounded
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
    /// Most JSON values in one record or header member, nested ones included. Depth and width
    /// alone let arrays of 64 arrays of 64 ... hold 64^15 values (memory about 25 times the
    /// line's length); a record is flat, so this is as many as a flat record may have fields.
    static let values = fields
    /// Longest run of JSON whitespace: otherwise an endless stream of spaces inside one line
    /// would be read for ever, in constant memory but without an end.
    static let whitespaceBytes = 1 << 20
}
