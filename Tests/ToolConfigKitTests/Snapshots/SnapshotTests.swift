import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Export and import of `user_tool_configs` snapshots (CSV, JSON, JSON Lines): round trips in every
/// key mode, a corpus of malformed files that must change nothing and name the line and field,
/// collected errors, dry runs, files written by Python, and the command-line surface.
@Suite("Snapshots")
struct SnapshotsTests {
    @Test("every contract field has exactly one decoder slot, found again by its name")
    func fieldSlots() {
        #expect(Set(FieldSlot.allCases.map(\.name)) == SnapshotField.all)
        #expect(FieldSlot.allCases.allSatisfy { FieldSlot(name: $0.name) == $0 })
        #expect(FieldSlot(name: "ID") == nil && FieldSlot(name: "user_id ") == nil)
    }
}
