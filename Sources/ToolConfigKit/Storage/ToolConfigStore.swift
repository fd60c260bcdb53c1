/// `user_tool_configs`, as export needs it (`ToolConfigStore` adds what import writes with). A
/// store is made only for a table of the shape of migration 0007; anything else is refused
/// before a row is read.
public protocol ToolConfigReader: AnyObject {
    func isEmpty() throws -> Bool

    /// Rows (for one user and/or one tool when given).
    func count(userID: String?, toolID: String?) throws -> Int

    /// Every row in id order (for one user and/or one tool when given), read in place: a
    /// `StoredRow` is valid only during its call. `omitKeys` skips reading the triples.
    func forEachRow(userID: String?, toolID: String?, omitKeys: Bool, _ body: (StoredRow) throws -> Void) throws
}

/// `user_tool_configs`, read and written.
public protocol ToolConfigStore: ToolConfigReader {
    /// Whether an import stages its rows even when it has no key work to do: PostgreSQL's norm
    /// (write into a temporary table, then into the table in a short write transaction). SQLite
    /// writes such rows straight into the table (`makeWriter`) rather than twice.
    var stagesEveryImport: Bool { get }

    /// Writes rows straight into the table, inside the write transaction.
    func makeWriter() throws -> any ImportTarget

    /// A staging area for an import read against a read snapshot (`file` names records in it);
    /// made before that snapshot's transaction begins (PostgreSQL creates no table inside a
    /// read-only transaction).
    func makeStage(file: String) throws -> any ImportStaging

    /// Drops the table's non-unique indexes, for a bulk load into an empty table, and returns
    /// what `rebuildIndexes` needs to create them again. Inside a write transaction.
    func dropSecondaryIndexes() throws -> [String]

    func rebuildIndexes(_ definitions: [String]) throws
}
