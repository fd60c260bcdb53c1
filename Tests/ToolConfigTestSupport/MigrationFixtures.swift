import Foundation
import ToolConfigKit

/// Writes a migrations folder for a test.
package func migrationsFolder(_ folder: TemporaryFolder, _ files: [String: String]) throws -> String {
    let path = folder.path("migrations-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: path).appendingPathComponent(name)) }
    return path
}
