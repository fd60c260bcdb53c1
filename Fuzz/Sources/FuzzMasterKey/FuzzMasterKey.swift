import FuzzSupport
import Foundation
import ToolConfigKit

/// Any bytes as master-key text: accepted only as 32 bytes of canonical base64, and an error
/// never repeats the text.
@main
enum Fuzz {
    static func main() { runFuzzer(testOne) }
}

func testOne(_ input: UnsafeBufferPointer<UInt8>) {
    let text = String(decoding: input, as: UTF8.self)
    do {
        let key = try MasterKey(text: text, source: .standardInput)
        precondition(key.material.count == 32)
        // The bytes decoded straight into the key's storage encode back to the text given.
        precondition(text.hasPrefix(key.base64Text), "the key decodes to other bytes than the text holds")
    } catch {
        // Bytes, not Foundation's contains: that one stops at a NUL and finds ")" in anything.
        let core = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        precondition(core.count < 8 || Array(error.description.utf8).firstRange(of: core) == nil, "the error repeats the key text")
    }
}
