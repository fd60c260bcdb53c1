#ifndef TOOLCFG_CROWCIPHER_H
#define TOOLCFG_CROWCIPHER_H
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

/// The longest plaintext the fast path takes (longer values take the general path).
#define TOOLCFG_V2_MAX_PLAINTEXT 4096
/// The new salt's and nonce's base64 lengths.
#define TOOLCFG_V2_SALT_TEXT 44
#define TOOLCFG_V2_NONCE_TEXT 16

/// Re-encrypts one stored scheme-v2 secret from one KEK to another, start to end in C: strict
/// canonical base64 decoding of the three columns (salt 32 bytes, nonce 12, ciphertext at least a
/// tag), both HKDF row keys, AES-256-GCM open under the old row key, seal under the new one with
/// `fresh` (32 bytes of new salt, then 12 of new nonce), and an open of the result under the new
/// row key that must give the same plaintext; then the new columns as base64 (the ciphertext with
/// its "v2:" prefix). `ciphertext` is the column's text without the prefix; `cipher` is
/// AES-256-GCM, `context` the calling thread's.
///
/// Returns 1 when it wrote the new columns; 0 when the value is not for this path (a column that
/// does not decode or has the wrong length, a value that does not open under the old key, a
/// plaintext that is not ASCII or longer than TOOLCFG_V2_MAX_PLAINTEXT, an OpenSSL failure), and
/// the caller takes the general path, which tells these cases apart. The row keys and plaintexts
/// in its own buffers are wiped before it returns; `context` keeps the new row key's schedule
/// until its next use or free, as the Swift path's context does.
int toolcfg_v2_reencrypt(EVP_CIPHER_CTX *context, const EVP_CIPHER *cipher,
                         const uint8_t old_kek[32], const uint8_t new_kek[32],
                         const uint8_t *info, size_t info_len,
                         const uint8_t *ciphertext, size_t ciphertext_len,
                         const uint8_t *salt, size_t salt_len,
                         const uint8_t *nonce, size_t nonce_len,
                         const uint8_t fresh[44],
                         uint8_t *out_ciphertext, size_t out_capacity, size_t *out_ciphertext_len,
                         uint8_t out_salt[TOOLCFG_V2_SALT_TEXT], uint8_t out_nonce[TOOLCFG_V2_NONCE_TEXT]);

/// The capacity `out_ciphertext` needs for a ciphertext column of `ciphertext_len` base64
/// characters (without the prefix): the prefix and the same length again.
static inline size_t toolcfg_v2_out_capacity(size_t ciphertext_len) { return ciphertext_len + 3; }

#endif
