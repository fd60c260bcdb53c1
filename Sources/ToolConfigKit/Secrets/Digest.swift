import COpenSSL
import Foundation

/// One-shot digests through OpenSSL.
public enum Digest {
    public static func sha384(_ bytes: some ContiguousBytes) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(SHA384_DIGEST_LENGTH))
        bytes.withUnsafeBytes { input in
            _ = SHA384(input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count, &out)
        }
        return out
    }

    public static func sha256(_ bytes: some ContiguousBytes) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBytes { input in
            _ = SHA256(input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count, &out)
        }
        return out
    }

    public static func hmacSHA256(key: UnsafeRawBufferPointer, message: some ContiguousBytes) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        var length: UInt32 = 0
        message.withUnsafeBytes { input in
            _ = HMAC(
                EVP_sha256(), key.baseAddress, Int32(key.count),
                input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count, &out, &length)
        }
        return out
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Incremental SHA-256 (OpenSSL EVP) for data that arrives in pieces.
final class SHA256Stream {
    private let context: OpaquePointer

    init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ bytes: UnsafeRawBufferPointer) {
        EVP_DigestUpdate(context, bytes.baseAddress, bytes.count)
    }

    /// The digest; the stream can be finished once.
    func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return out
    }
}
