/// An SQL identifier in double quotes, inner quotes doubled: the one quoting rule of both engines,
/// for names that come from the database (tables, columns, indexes) rather than from code.
package func quotedIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
