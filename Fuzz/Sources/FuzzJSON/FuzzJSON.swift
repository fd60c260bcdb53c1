import CFuzzDriver
import Foundation
import ToolConfigKit

/// Any bytes as a .json snapshot: the reader and validator must end in a result or a thrown
/// error, never a crash, a hang or unbounded memory.
@main
enum Fuzz {
    static func main() {
        exit(toolcfg_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
            guard let data else { return 0 }
            testOne(UnsafeBufferPointer(start: data, count: size))
            return 0
        })
    }
}

func testOne(_ input: UnsafeBufferPointer<UInt8>) {
    _ = try? SnapshotValidator.validate(Array(input), format: .json)
}
