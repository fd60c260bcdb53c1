#ifndef TOOLCFG_CFASTPBKDF2_H
#define TOOLCFG_CFASTPBKDF2_H
#include <stddef.h>
#include <stdint.h>

/// PBKDF2-HMAC-SHA256 (RFC 8018) for any password, salt, iteration count and output length.
/// Returns 1 on success, 0 on invalid arguments (iterations == 0, out_len == 0).
int toolcfg_pbkdf2_hmac_sha256(const uint8_t *password, size_t password_len,
                               const uint8_t *salt, size_t salt_len,
                               uint32_t iterations,
                               uint8_t *out, size_t out_len);

/// HKDF-SHA256 (RFC 5869) with 32 bytes of output: extract with `salt`, expand with `info`.
/// Returns 1 on success, 0 when `out` is NULL.
int toolcfg_hkdf_sha256_32(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                           const uint8_t *info, size_t info_len, uint8_t out[32]);

/// Two HKDF-SHA256 derivations of 32 bytes with 32-byte salts and input keys and one `info` (at
/// most 54 bytes), interleaved on the SHA extensions: the same bytes as two calls of
/// toolcfg_hkdf_sha256_32. Returns 0 (writing nothing) when the extensions are unavailable or
/// `info` is longer.
int toolcfg_hkdf_sha256_32_x2(const uint8_t salt_a[32], const uint8_t ikm_a[32], const uint8_t salt_b[32], const uint8_t ikm_b[32],
                              const uint8_t *info, size_t info_len, uint8_t out_a[32], uint8_t out_b[32]);

/// Overwrites a buffer in a way the compiler may not remove.
void toolcfg_secure_zero(void *p, size_t n);


/// 1 when the CPU has the x86 SHA extensions (and SSSE3/SSE4.1) that the two-stream path needs.
int toolcfg_sha_ni_available(void);

/// Two SHA-256 block compressions at once; messages are 16 native-order words.
void toolcfg_sha256_ni_compress2(uint32_t ha[8], const uint32_t wa[16], uint32_t hb[8], const uint32_t wb[16]);

/// Two PBKDF2-HMAC-SHA256 derivations of 32 bytes with the same iteration count, interleaved on
/// the SHA extensions. Returns 0 (writing nothing) when they are unavailable or iterations == 0.
int toolcfg_pbkdf2_hmac_sha256_x2(const uint8_t *password_a, size_t password_a_len,
                                  const uint8_t *salt_a, size_t salt_a_len,
                                  const uint8_t *password_b, size_t password_b_len,
                                  const uint8_t *salt_b, size_t salt_b_len,
                                  uint32_t iterations, uint8_t out_a[32], uint8_t out_b[32]);

/// 1 when the CPU has AVX-512F and the OS saves its registers: the sixteen-lane path needs them.
int toolcfg_avx512_available(void);

/// Sixteen PBKDF2-HMAC-SHA256 derivations of 32 bytes with the same iteration count, one in each
/// lane of the AVX-512 registers. Each argument but `iterations` points to sixteen entries, one per
/// derivation. Returns 0 (writing nothing) when AVX-512 is unavailable or iterations == 0.
int toolcfg_pbkdf2_hmac_sha256_x16(const uint8_t *const *passwords, const size_t *password_lens,
                                   const uint8_t *const *salts, const size_t *salt_lens,
                                   uint32_t iterations, uint8_t *const *outs);

/// Makes the process write no core file and refuse ptrace from other processes of its user
/// (RLIMIT_CORE 0, soft and hard; PR_SET_DUMPABLE 0). Returns 0, or the errno of the step that failed.
int toolcfg_forbid_core_dumps(void);

/// PR_GET_DUMPABLE: 1 when the process may dump core or be traced by its user, 0 when not.
int toolcfg_dumpable(void);

#endif
