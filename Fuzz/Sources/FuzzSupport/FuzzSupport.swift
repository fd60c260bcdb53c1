import CFuzzDriver
import Foundation

/// The input handler of this fuzz process. libFuzzer calls back through a C function pointer,
/// which cannot capture, so the handler sits here; it is set once, before libFuzzer starts.
nonisolated(unsafe) private var handler: ((UnsafeBufferPointer<UInt8>) -> Void)?

/// Starts libFuzzer with the process's arguments, feeding every input to `testOne`.
public func runFuzzer(_ testOne: @escaping (UnsafeBufferPointer<UInt8>) -> Void) -> Never {
    handler = testOne
    exit(
        toolcfg_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
            handler?(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size))
            return 0
        })
}
