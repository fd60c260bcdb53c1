import CRowCipher

extension AESGCM.Context {
    /// A scheme-v2 value re-encrypted from the KEK `oldKEK` to `newKEK` in one C call
    /// (`toolcfg_v2_reencrypt`, which says why), with `fresh` (the new salt, then the new nonce)
    /// and the result checked to open under the new row key; nil when the value is not for this
    /// path (it does not decode, does not open under the old key, is not ASCII), and the caller
    /// takes the general one, which tells those cases apart.
    func reencryptV2(
        _ secret: StoredSecret, oldKEK: UnsafeRawBufferPointer, newKEK: UnsafeRawBufferPointer, fresh: ArraySlice<UInt8>
    ) -> StoredSecret? {
        precondition(fresh.count == KeyRotator.freshBytes && oldKEK.count == 32 && newKEK.count == 32)
        var ciphertext = secret.encryptedAPIKey, salt = secret.salt, nonce = secret.nonce
        let prefix = SecretScheme.v2Prefix.utf8.count
        return ciphertext.withUTF8 { ciphertext -> StoredSecret? in
            // Longer than the base64 of the longest plaintext the C path takes: declined before
            // any buffer is sized from it.
            let longest = (Int(TOOLCFG_V2_MAX_PLAINTEXT) + AESGCM.tagLength + 2) / 3 * 4
            guard ciphertext.count > prefix, ciphertext.count - prefix <= longest, ciphertext.starts(with: SecretScheme.v2Prefix.utf8)
            else { return nil }
            let body = UnsafeBufferPointer(rebasing: ciphertext[prefix...])
            let capacity = toolcfg_v2_out_capacity(body.count)
            let saltText = Int(TOOLCFG_V2_SALT_TEXT), nonceText = Int(TOOLCFG_V2_NONCE_TEXT)
            return salt.withUTF8 { salt in
                nonce.withUTF8 { nonce in
                    fresh.withUnsafeBufferPointer { fresh in
                        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity + saltText + nonceText) { out in
                            var length = 0
                            let written = toolcfg_v2_reencrypt(
                                context, AESGCM.cipher.pointer,
                                oldKEK.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                newKEK.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                MasterKey.rowInfoV2, MasterKey.rowInfoV2.count,
                                body.baseAddress, body.count, salt.baseAddress, salt.count, nonce.baseAddress, nonce.count,
                                fresh.baseAddress, out.baseAddress, capacity, &length,
                                out.baseAddress! + capacity, out.baseAddress! + capacity + saltText)
                            guard written == 1 else { return nil }
                            func text(_ start: Int, _ count: Int) -> String {
                                String(decoding: UnsafeBufferPointer(rebasing: out[start..<start + count]), as: UTF8.self)
                            }
                            return StoredSecret(
                                encryptedAPIKey: text(0, length), salt: text(capacity, saltText),
                                nonce: text(capacity + saltText, nonceText))
                        }
                    }
                }
            }
        }
    }
}
