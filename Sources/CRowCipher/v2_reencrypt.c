// A scheme-v2 value's whole re-encryption in C. In Swift, each value was three base64 decodes
// and three encodes into fresh arrays and strings, two row keys in wiped buffers and three
// AES-GCM calls with their arrays: per value, the Swift runtime's allocations and reference
// counts cost more than the cryptography itself (1M values: 5.1 s of CPU on the derivation
// threads, 2.9 s of it in the Swift runtime, libc and toolcfg's own code; perf). Here nothing is
// allocated; the verifying open reuses the new row key's schedule. What this path declines (see
// the header) goes through the Swift path, which tells the cases apart and words the errors.
#include "CRowCipher.h"
#include "CFastPBKDF2.h"
#include <openssl/err.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Each byte's value in the alphabet, 0xFF for any other.
static const uint8_t values[256] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3E, 0xFF, 0xFF, 0xFF, 0x3F,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
    0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x32, 0x33, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
};

// Canonical standard base64 with padding, as Base64.swift accepts it (and never more): the
// decoded length, or -1 when it is not, or does not fit `capacity`.
static long decode(const uint8_t *in, size_t len, uint8_t *out, size_t capacity) {
    if (len % 4 != 0) return -1;
    if (len == 0) return 0;
    size_t padding = in[len - 1] == '=' ? (in[len - 2] == '=' ? 2 : 1) : 0;
    size_t body = len - padding, count = len / 4 * 3 - padding;
    if (count > capacity) return -1;
    uint8_t bad = 0;
    size_t o = 0, i = 0;
    for (; i + 4 <= body; i += 4) {
        uint8_t a = values[in[i]], b = values[in[i + 1]], c = values[in[i + 2]], d = values[in[i + 3]];
        bad |= a | b | c | d;
        uint32_t group = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        out[o++] = (uint8_t)(group >> 16);
        out[o++] = (uint8_t)(group >> 8);
        out[o++] = (uint8_t)group;
    }
    if (bad & 0xC0) return -1;
    if (padding) {
        uint8_t a = values[in[i]], b = values[in[i + 1]], c = padding == 1 ? values[in[i + 2]] : 0;
        if ((a | b | c) & 0xC0) return -1;
        // The bits that padding leaves unused must be zero.
        if ((padding == 1 && (c & 0x03)) || (padding == 2 && (b & 0x0F))) return -1;
        uint32_t group = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        out[o++] = (uint8_t)(group >> 16);
        if (padding == 1) out[o++] = (uint8_t)(group >> 8);
    }
    return (long)count;
}

static size_t encode(const uint8_t *in, size_t len, uint8_t *out) {
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t g = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[g >> 18];
        out[o++] = alphabet[g >> 12 & 0x3F];
        out[o++] = alphabet[g >> 6 & 0x3F];
        out[o++] = alphabet[g & 0x3F];
    }
    if (i < len) {
        int two = len - i == 2;
        uint32_t g = (uint32_t)in[i] << 16 | (two ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = alphabet[g >> 18];
        out[o++] = alphabet[g >> 12 & 0x3F];
        out[o++] = two ? alphabet[g >> 6 & 0x3F] : '=';
        out[o++] = '=';
    }
    return o;
}

enum { SALT = 32, NONCE = 12, TAG = 16, MAX_SEALED = TOOLCFG_V2_MAX_PLAINTEXT + TAG };

int toolcfg_v2_reencrypt(EVP_CIPHER_CTX *context, const EVP_CIPHER *cipher,
                         const uint8_t old_kek[32], const uint8_t new_kek[32],
                         const uint8_t *info, size_t info_len,
                         const uint8_t *ciphertext, size_t ciphertext_len,
                         const uint8_t *salt, size_t salt_len,
                         const uint8_t *nonce, size_t nonce_len,
                         const uint8_t fresh[44],
                         uint8_t *out_ciphertext, size_t out_capacity, size_t *out_ciphertext_len,
                         uint8_t out_salt[TOOLCFG_V2_SALT_TEXT], uint8_t out_nonce[TOOLCFG_V2_NONCE_TEXT]) {
    uint8_t old_salt[SALT], old_nonce[NONCE], sealed[MAX_SEALED];
    if (decode(salt, salt_len, old_salt, SALT) != SALT || decode(nonce, nonce_len, old_nonce, NONCE) != NONCE) return 0;
    long sealed_len = decode(ciphertext, ciphertext_len, sealed, MAX_SEALED);
    if (sealed_len < TAG || out_capacity < toolcfg_v2_out_capacity(ciphertext_len)) return 0;
    size_t text_len = (size_t)sealed_len - TAG;

    uint8_t old_key[32], new_key[32], plaintext[TOOLCFG_V2_MAX_PLAINTEXT], check[TOOLCFG_V2_MAX_PLAINTEXT];
    uint8_t resealed[MAX_SEALED], scratch[TAG];
    int ok = 0, length = 0;
    if (!toolcfg_hkdf_sha256_32_x2(old_salt, old_kek, fresh, new_kek, info, info_len, old_key, new_key)) {
        toolcfg_hkdf_sha256_32(old_salt, SALT, old_kek, 32, info, info_len, old_key);
        toolcfg_hkdf_sha256_32(fresh, SALT, new_kek, 32, info, info_len, new_key);
    }
    // A context that holds the cipher already is not given it again (a lookup on every init).
    const EVP_CIPHER *init_cipher = EVP_CIPHER_CTX_get0_cipher(context) == cipher ? NULL : cipher;

    // Open under the old row key.
    if (EVP_DecryptInit_ex(context, init_cipher, NULL, old_key, old_nonce) != 1
        || EVP_DecryptUpdate(context, plaintext, &length, sealed, (int)text_len) != 1
        || EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, TAG, sealed + text_len) != 1
        || EVP_DecryptFinal_ex(context, scratch, &length) != 1) {
        ERR_clear_error();
        goto done;
    }
    // The application stores text; anything but ASCII is checked as UTF-8 on the Swift path.
    for (size_t i = 0; i < text_len; i++) if (plaintext[i] & 0x80) goto done;

    // Seal under the new row key with the fresh nonce.
    const uint8_t *new_nonce = fresh + SALT;
    if (EVP_EncryptInit_ex(context, NULL, NULL, new_key, new_nonce) != 1
        || EVP_EncryptUpdate(context, resealed, &length, plaintext, (int)text_len) != 1
        || EVP_EncryptFinal_ex(context, scratch, &length) != 1
        || EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, TAG, resealed + text_len) != 1) {
        ERR_clear_error();
        goto done;
    }
    // The result must open under the new row key (GCM's key schedule serves both directions, so
    // only the nonce is set again) and give the same plaintext.
    if (EVP_DecryptInit_ex(context, NULL, NULL, NULL, new_nonce) != 1
        || EVP_DecryptUpdate(context, check, &length, resealed, (int)text_len) != 1
        || EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, TAG, resealed + text_len) != 1
        || EVP_DecryptFinal_ex(context, scratch, &length) != 1
        || memcmp(check, plaintext, text_len) != 0) {
        ERR_clear_error();
        goto done;
    }
    memcpy(out_ciphertext, "v2:", 3);
    *out_ciphertext_len = 3 + encode(resealed, text_len + TAG, out_ciphertext + 3);
    encode(fresh, SALT, out_salt);
    encode(new_nonce, NONCE, out_nonce);
    ok = 1;
done:
    toolcfg_secure_zero(old_key, sizeof old_key);
    toolcfg_secure_zero(new_key, sizeof new_key);
    toolcfg_secure_zero(plaintext, text_len);
    toolcfg_secure_zero(check, text_len);
    return ok;
}
