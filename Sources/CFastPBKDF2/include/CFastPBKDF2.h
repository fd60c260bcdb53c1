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

/// Overwrites a buffer in a way the compiler may not remove.
void toolcfg_secure_zero(void *p, size_t n);

#endif
