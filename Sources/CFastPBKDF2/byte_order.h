// SHA-256's big-endian words, read from and written to bytes: shared by the PBKDF2 and HKDF
// kernels of this target (not part of its public header).
#ifndef TOOLCFG_BYTE_ORDER_H
#define TOOLCFG_BYTE_ORDER_H
#include <stdint.h>

static inline uint32_t load_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

#endif
