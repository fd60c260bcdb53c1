#ifndef TOOLCFG_DIGEST_HASH_H
#define TOOLCFG_DIGEST_HASH_H
#include <stddef.h>
#include <stdint.h>

// One row's hash for toolcfg_digest: FNV-1a over its values as text, each ended by 0x1f (NULL as
// 0x1e 0x1f), then MurmurHash3's finaliser. Shared by the SQL aggregate and the stage file's digest,
// whose results are compared.
static inline uint64_t toolcfg_digest_start(void) { return 0xcbf29ce484222325ULL; }

/// A value: `null` for SQL NULL, else its text's `length` bytes.
static inline uint64_t toolcfg_digest_value(uint64_t h, int null, const unsigned char *text, size_t length) {
    if (null) {
        h = (h ^ 0x1e) * 0x100000001b3ULL;
    } else {
        for (size_t j = 0; j < length; j++) h = (h ^ text[j]) * 0x100000001b3ULL;
    }
    return (h ^ 0x1f) * 0x100000001b3ULL;
}

static inline uint64_t toolcfg_digest_end(uint64_t h) {
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ULL; h ^= h >> 33;
    return h;
}
#endif
