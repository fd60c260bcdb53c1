import FuzzSupport
import ToolConfigKit

/// Any bytes as a .csv snapshot: the reader and validator must end in a result or a thrown
/// error, never a crash, a hang or unbounded memory.
@main
enum Fuzz {
    static func main() { runFuzzer(testOne) }
}

func testOne(_ input: UnsafeBufferPointer<UInt8>) {
    _ = try? SnapshotValidator.validate(Array(input), format: .csv)
}
