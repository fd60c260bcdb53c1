// Two scheme-v2 row keys at once (a rotation's old and new one): two HKDF-SHA256 derivations
// with 32-byte salts and keys, whose eight block compressions each run in pairs on the SHA
// extensions. Through OpenSSL's SHA256_Update and _Final a row key took 0.59 us, most of it
// outside the compressions; a pair here is about the cost of one there. Checked against
// toolcfg_hkdf_sha256_32 (and so against Python's HKDF) by the test suite.
#include "CFastPBKDF2.h"
#include "byte_order.h"
#include <string.h>

static const uint32_t initial[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static void words_of(const uint8_t block[64], uint32_t w[16]) {
    for (int i = 0; i < 16; i++) w[i] = load_be32(block + 4 * i);
}

// One block: `message` (at most 55 bytes) with SHA-256's padding, after `prefix_len` bytes hashed.
static void padded(const uint8_t *message, size_t len, uint64_t prefix_len, uint32_t w[16]) {
    uint8_t block[64] = {0};
    memcpy(block, message, len);
    block[len] = 0x80;
    uint64_t bits = (prefix_len + len) * 8;
    for (int i = 0; i < 8; i++) block[63 - i] = (uint8_t)(bits >> (8 * i));
    words_of(block, w);
    toolcfg_secure_zero(block, sizeof block);
}

// HMAC-SHA256 under two 32-byte keys of two messages of `len` (at most 55) bytes, as digest words.
static void hmac_x2(const uint8_t key_a[32], const uint8_t key_b[32], const uint8_t *msg_a, const uint8_t *msg_b, size_t len,
                    uint32_t out_a[8], uint32_t out_b[8]) {
    uint8_t pad_a[64], pad_b[64];
    uint32_t wa[16], wb[16], inner_a[8], inner_b[8];
    memcpy(inner_a, initial, sizeof initial);
    memcpy(inner_b, initial, sizeof initial);
    memcpy(out_a, initial, sizeof initial);
    memcpy(out_b, initial, sizeof initial);
    for (int round = 0; round < 2; round++) {
        uint8_t fill = round == 0 ? 0x36 : 0x5c;
        memset(pad_a, fill, 64);
        memset(pad_b, fill, 64);
        for (int i = 0; i < 32; i++) {
            pad_a[i] ^= key_a[i];
            pad_b[i] ^= key_b[i];
        }
        words_of(pad_a, wa);
        words_of(pad_b, wb);
        if (round == 0) toolcfg_sha256_ni_compress2(inner_a, wa, inner_b, wb);
        else toolcfg_sha256_ni_compress2(out_a, wa, out_b, wb);
    }
    padded(msg_a, len, 64, wa);
    padded(msg_b, len, 64, wb);
    toolcfg_sha256_ni_compress2(inner_a, wa, inner_b, wb);
    // The outer message is the inner digest: its bytes, read back as words, are its words.
    memset(wa, 0, sizeof wa);
    memset(wb, 0, sizeof wb);
    memcpy(wa, inner_a, 32);
    memcpy(wb, inner_b, 32);
    wa[8] = wb[8] = 0x80000000u;
    wa[15] = wb[15] = (64 + 32) * 8;
    toolcfg_sha256_ni_compress2(out_a, wa, out_b, wb);
    toolcfg_secure_zero(pad_a, sizeof pad_a);
    toolcfg_secure_zero(pad_b, sizeof pad_b);
    toolcfg_secure_zero(wa, sizeof wa);
    toolcfg_secure_zero(wb, sizeof wb);
    toolcfg_secure_zero(inner_a, sizeof inner_a);
    toolcfg_secure_zero(inner_b, sizeof inner_b);
}

static void bytes_of(const uint32_t h[8], uint8_t out[32]) {
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, h[i]);
}

int toolcfg_hkdf_sha256_32_x2(const uint8_t salt_a[32], const uint8_t ikm_a[32], const uint8_t salt_b[32], const uint8_t ikm_b[32],
                              const uint8_t *info, size_t info_len, uint8_t out_a[32], uint8_t out_b[32]) {
    if (info_len > 54 || !toolcfg_sha_ni_available()) return 0;
    uint32_t ha[8], hb[8];
    uint8_t prk_a[32], prk_b[32], message[55];
    // Extract: PRK = HMAC(salt, IKM). Expand, one block: T(1) = HMAC(PRK, info || 0x01).
    hmac_x2(salt_a, salt_b, ikm_a, ikm_b, 32, ha, hb);
    bytes_of(ha, prk_a);
    bytes_of(hb, prk_b);
    memcpy(message, info, info_len);
    message[info_len] = 1;
    hmac_x2(prk_a, prk_b, message, message, info_len + 1, ha, hb);
    bytes_of(ha, out_a);
    bytes_of(hb, out_b);
    toolcfg_secure_zero(ha, sizeof ha);
    toolcfg_secure_zero(hb, sizeof hb);
    toolcfg_secure_zero(prk_a, sizeof prk_a);
    toolcfg_secure_zero(prk_b, sizeof prk_b);
    return 1;
}
