import ArgumentParser
import Foundation
import ToolConfigKit

extension SnapshotFormat: ExpressibleByArgument {}

extension KeyMode: ExpressibleByArgument {}

extension Importer.ConflictPolicy: ExpressibleByArgument {}

func snapshotFormat(_ explicit: SnapshotFormat?, path: String) throws -> SnapshotFormat {
    if let explicit { return explicit }
    if let inferred = SnapshotFormat(path: path) { return inferred }
    throw ValidationError(
        path == "-"
            ? "--format is required with standard input or output"
            : "cannot tell the format of \(path) from its extension: give --format csv|json|jsonl")
}
