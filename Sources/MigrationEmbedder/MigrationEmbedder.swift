// Build-time tool: embeds the migration SQL files into ToolConfigKit as Swift source, byte for byte
// (base64), so the installed binary runs exactly the files of migrations/ from any directory.
// Usage: MigrationEmbedder OUTPUT.swift VARIABLE FILE.sql...
import Foundation

@main
enum MigrationEmbedder {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard arguments.count >= 2, let output = arguments.first, let variable = arguments.dropFirst().first else {
            FileHandle.standardError.write(Data("usage: MigrationEmbedder OUTPUT.swift VARIABLE FILE.sql...\n".utf8))
            exit(64)
        }
        let inputs = arguments.dropFirst(2).sorted { ($0 as NSString).lastPathComponent < ($1 as NSString).lastPathComponent }

        var source = """
            // Generated at build time by MigrationEmbedder from a migrations folder. Do not edit.
            // Each entry is a file name and its exact bytes in base64.
            let \(variable): [(name: String, base64: String)] = [

            """
        for path in inputs {
            guard let bytes = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("MigrationEmbedder: cannot read \(path)\n".utf8))
                exit(66)
            }
            let name = (path as NSString).lastPathComponent
            source += "    (name: \(String(reflecting: name)), base64: \"\(bytes.base64EncodedString())\"),\n"
        }
        source += "]\n"

        do {
            // Rewrite only when the content changes, so an unchanged folder does not trigger a recompile.
            if let existing = FileManager.default.contents(atPath: output), existing == Data(source.utf8) { exit(0) }
            try Data(source.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            FileHandle.standardError.write(Data("MigrationEmbedder: cannot write \(output): \(error)\n".utf8))
            exit(74)
        }
    }
}
