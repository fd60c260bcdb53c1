import Foundation
import ToolConfigKit

/// Every table's rows, in a comparable form.
package func contents(_ connection: SQLiteConnection, table: String) throws -> [[SQLiteStatement.Value]] {
    let statement = try connection.prepare("SELECT * FROM \"\(table)\" ORDER BY 1")
    var rows: [[SQLiteStatement.Value]] = []
    while try statement.step() { rows.append((0..<statement.columnCount).map(statement.value)) }
    return rows
}

/// Writes a migrations folder for a test.
package func migrationsFolder(_ folder: TemporaryFolder, _ files: [String: String]) throws -> String {
    let path = folder.path("migrations-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: path).appendingPathComponent(name)) }
    return path
}
