// PBKDF2-HMAC-SHA256 over OpenSSL's single-block SHA-256 compression.
//
// Why hand-written: every stored secret costs one derivation of 1000 iterations, and OpenSSL 3.0's
// PKCS5_PBKDF2_HMAC pays provider and EVP overhead on each of its 2000 HMAC calls (~389 us per
// derivation here, against ~121 us for this loop, which is the SHA-NI compression speed itself).
// The HMAC inner and outer states are computed once per derivation; each iteration is then exactly
// two compressions of a pre-padded block, with no allocation and no EVP call in the loop.
// The Swift side keeps PKCS5_PBKDF2_HMAC as a reference and the tests require both to agree.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "CFastPBKDF2.h"
#include "byte_order.h"
#include <openssl/sha.h>

void toolcfg_pbkdf2_ni_loop2(const uint32_t inner_a[8], const uint32_t outer_a[8], const uint32_t u_a[8], uint32_t t_a[8],
                             const uint32_t inner_b[8], const uint32_t outer_b[8], const uint32_t u_b[8], uint32_t t_b[8],
                             uint32_t iterations);
void toolcfg_pbkdf2_avx512_loop16(const uint32_t inner[16][8], const uint32_t outer[16][8],
                                  const uint32_t u[16][8], uint32_t t[16][8], uint32_t iterations);
#include <string.h>

static void state_to_bytes(const SHA256_CTX *c, uint8_t out[32]) {
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, c->h[i]);
}

// glibc's explicit_bzero: memset's vector stores behind a barrier the compiler keeps. A volatile
// byte loop here was 5 % of a v2 rotation's derivation time (the HKDF pair wipes 256 bytes).
void toolcfg_secure_zero(void *p, size_t n) {
    explicit_bzero(p, n);
}

// The HMAC-SHA256 contexts after the padded key block (RFC 2104: a key longer than a block is
// hashed first): every PBKDF2 iteration starts from these two states.
static void hmac_keys(const uint8_t *password, size_t password_len, SHA256_CTX *inner, SHA256_CTX *outer) {
    uint8_t key[64] = {0}, pad[64];
    if (password_len > 64) SHA256(password, password_len, key);
    else if (password_len > 0) memcpy(key, password, password_len);
    for (int i = 0; i < 64; i++) pad[i] = key[i] ^ 0x36;
    SHA256_Init(inner);
    SHA256_Update(inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = key[i] ^ 0x5c;
    SHA256_Init(outer);
    SHA256_Update(outer, pad, 64);
    toolcfg_secure_zero(key, sizeof key);
    toolcfg_secure_zero(pad, sizeof pad);
}

// U1 = HMAC(P, S || INT(i)), from the contexts after the key blocks: the salt has any length, so
// the buffered interface runs once here, before the iteration loop.
static void hmac_u1(const SHA256_CTX *inner, const SHA256_CTX *outer, const uint8_t *salt, size_t salt_len,
                    uint32_t block_index, uint8_t out[32]) {
    uint8_t be_index[4];
    store_be32(be_index, block_index);
    SHA256_CTX work = *inner;
    SHA256_Update(&work, salt, salt_len);
    SHA256_Update(&work, be_index, 4);
    SHA256_Final(out, &work);
    work = *outer;
    SHA256_Update(&work, out, 32);
    SHA256_Final(out, &work);
    toolcfg_secure_zero(&work, sizeof work);
}

int toolcfg_pbkdf2_hmac_sha256(const uint8_t *password, size_t password_len,
                               const uint8_t *salt, size_t salt_len,
                               uint32_t iterations,
                               uint8_t *out, size_t out_len) {
    if (iterations == 0 || out_len == 0 || out == NULL) return 0;

    SHA256_CTX inner, outer, work;
    hmac_keys(password, password_len, &inner, &outer);

    // One padded block holding a 32-byte digest after a 64-byte key block: 96 bytes = 768 bits.
    uint8_t block[64] = {0};
    block[32] = 0x80;
    block[62] = 0x03;
    block[63] = 0x00;

    uint8_t t[32];
    uint32_t block_index = 1;
    size_t written = 0;
    while (written < out_len) {
        // U1 goes into the first 32 bytes; the padding after them is untouched.
        hmac_u1(&inner, &outer, salt, salt_len, block_index, block);
        memcpy(t, block, 32);

        for (uint32_t j = 1; j < iterations; j++) {
            memcpy(work.h, inner.h, sizeof work.h);
            SHA256_Transform(&work, block);
            state_to_bytes(&work, block);
            memcpy(work.h, outer.h, sizeof work.h);
            SHA256_Transform(&work, block);
            state_to_bytes(&work, block);
            for (int k = 0; k < 32; k++) t[k] ^= block[k];
        }

        size_t n = out_len - written < 32 ? out_len - written : 32;
        memcpy(out + written, t, n);
        written += n;
        block_index++;
    }

    toolcfg_secure_zero(block, sizeof block);
    toolcfg_secure_zero(t, sizeof t);
    toolcfg_secure_zero(&inner, sizeof inner);
    toolcfg_secure_zero(&outer, sizeof outer);
    toolcfg_secure_zero(&work, sizeof work);
    return 1;
}

// HMAC key setup and U1 for one derivation: the inner and outer states after the padded key
// block, and U1 as native words.
static void hmac_setup(const uint8_t *password, size_t password_len, const uint8_t *salt, size_t salt_len,
                       uint32_t inner[8], uint32_t outer[8], uint32_t u1[8]) {
    uint8_t digest[32];
    SHA256_CTX ictx, octx;
    hmac_keys(password, password_len, &ictx, &octx);
    memcpy(inner, ictx.h, 32);
    memcpy(outer, octx.h, 32);
    hmac_u1(&ictx, &octx, salt, salt_len, 1, digest);
    for (int i = 0; i < 8; i++) u1[i] = load_be32(digest + 4 * i);
    toolcfg_secure_zero(digest, sizeof digest);
    toolcfg_secure_zero(&ictx, sizeof ictx);
    toolcfg_secure_zero(&octx, sizeof octx);
}

int toolcfg_pbkdf2_hmac_sha256_x2(const uint8_t *password_a, size_t password_a_len,
                                  const uint8_t *salt_a, size_t salt_a_len,
                                  const uint8_t *password_b, size_t password_b_len,
                                  const uint8_t *salt_b, size_t salt_b_len,
                                  uint32_t iterations, uint8_t out_a[32], uint8_t out_b[32]) {
    if (iterations == 0 || !toolcfg_sha_ni_available()) return 0;
    uint32_t inner_a[8], outer_a[8], inner_b[8], outer_b[8];
    uint32_t wa[8], wb[8], ta[8], tb[8];
    hmac_setup(password_a, password_a_len, salt_a, salt_a_len, inner_a, outer_a, wa);
    hmac_setup(password_b, password_b_len, salt_b, salt_b_len, inner_b, outer_b, wb);
    toolcfg_pbkdf2_ni_loop2(inner_a, outer_a, wa, ta, inner_b, outer_b, wb, tb, iterations);
    for (int i = 0; i < 8; i++) {
        store_be32(out_a + 4 * i, ta[i]);
        store_be32(out_b + 4 * i, tb[i]);
    }
    toolcfg_secure_zero(inner_a, sizeof inner_a);
    toolcfg_secure_zero(outer_a, sizeof outer_a);
    toolcfg_secure_zero(inner_b, sizeof inner_b);
    toolcfg_secure_zero(outer_b, sizeof outer_b);
    toolcfg_secure_zero(wa, sizeof wa);
    toolcfg_secure_zero(wb, sizeof wb);
    toolcfg_secure_zero(ta, sizeof ta);
    toolcfg_secure_zero(tb, sizeof tb);
    return 1;
}

int toolcfg_pbkdf2_hmac_sha256_x16(const uint8_t *const *passwords, const size_t *password_lens,
                                   const uint8_t *const *salts, const size_t *salt_lens,
                                   uint32_t iterations, uint8_t *const *outs) {
    if (iterations == 0 || !toolcfg_avx512_available()) return 0;
    uint32_t inner[16][8], outer[16][8], u[16][8], t[16][8];
    for (int lane = 0; lane < 16; lane++) {
        hmac_setup(passwords[lane], password_lens[lane], salts[lane], salt_lens[lane], inner[lane], outer[lane], u[lane]);
    }
    toolcfg_pbkdf2_avx512_loop16(inner, outer, u, t, iterations);
    for (int lane = 0; lane < 16; lane++) {
        for (int i = 0; i < 8; i++) store_be32(outs[lane] + 4 * i, t[lane][i]);
    }
    toolcfg_secure_zero(inner, sizeof inner);
    toolcfg_secure_zero(outer, sizeof outer);
    toolcfg_secure_zero(u, sizeof u);
    toolcfg_secure_zero(t, sizeof t);
    return 1;
}

// HMAC-SHA256 of msg || suffix, on the same key setup as PBKDF2's.
static void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len,
                        const uint8_t *suffix, size_t suffix_len, uint8_t out[32]) {
    SHA256_CTX inner, outer;
    uint8_t digest[32];
    hmac_keys(key, key_len, &inner, &outer);
    SHA256_Update(&inner, msg, msg_len);
    if (suffix_len > 0) SHA256_Update(&inner, suffix, suffix_len);
    SHA256_Final(digest, &inner);
    SHA256_Update(&outer, digest, 32);
    SHA256_Final(out, &outer);
    toolcfg_secure_zero(digest, sizeof digest);
    toolcfg_secure_zero(&inner, sizeof inner);
    toolcfg_secure_zero(&outer, sizeof outer);
}

// Scheme v2's row key is one HKDF per stored secret: OpenSSL 3.0's EVP_KDF pays a provider
// fetch and context setup on each call, several times the eight block compressions themselves.
int toolcfg_hkdf_sha256_32(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                           const uint8_t *info, size_t info_len, uint8_t out[32]) {
    if (out == NULL) return 0;
    uint8_t prk[32];
    const uint8_t counter = 1;
    // RFC 5869: extract (HMAC keyed by the salt), then one block of expand (32 bytes <= HashLen).
    hmac_sha256(salt, salt_len, ikm, ikm_len, NULL, 0, prk);
    hmac_sha256(prk, 32, info, info_len, &counter, 1, out);
    toolcfg_secure_zero(prk, sizeof prk);
    return 1;
}
