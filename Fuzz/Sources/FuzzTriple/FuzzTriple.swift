import FuzzSupport
import ToolConfigKit

/// Three newline-separated fields as a stored triple: the base64 and length checks must agree
/// with each other and never crash.
@main
enum Fuzz {
    static func main() { runFuzzer(testOne) }
}

func testOne(_ input: UnsafeBufferPointer<UInt8>) {
    let text = String(decoding: input, as: UTF8.self)
    let parts = text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
    guard parts.count == 3 else { return }
    let secret = StoredSecret(encryptedAPIKey: parts[0], salt: parts[1], nonce: parts[2])
    let checked = (try? secret.validate()) != nil
    let decoded = (try? secret.decoded()) != nil
    precondition(checked == decoded, "validate() and decoded() disagree")
    for part in parts {
        precondition(Base64.decodedCount(part) == (try? Base64.decode(part, field: "f"))?.count, "base64 checks disagree")
    }
}
