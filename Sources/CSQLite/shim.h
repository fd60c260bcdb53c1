#ifndef TOOLCFG_CSQLITE_SHIM_H
#define TOOLCFG_CSQLITE_SHIM_H
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
// SQLITE_TRANSIENT is a macro casting -1 to a function pointer; Swift cannot import it.
static inline sqlite3_destructor_type toolcfg_sqlite_transient(void) { return SQLITE_TRANSIENT; }

// toolcfg_digest(...): an aggregate whose result depends on the rows it sees, not their order:
// "<rows>:<sum of the rows' 64-bit hashes, mod 2^64, in hex>". Each row's hash is FNV-1a over its
// values as text, each ended by 0x1f (NULL as 0x1e 0x1f), then MurmurHash3's finaliser. In C: a
// Swift callback per row made the read-back of 1M rows twice as slow as the scan itself.
struct toolcfg_digest_state { uint64_t rows, sum; };

static inline void toolcfg_digest_step(sqlite3_context *context, int count, sqlite3_value **values) {
    struct toolcfg_digest_state *state = sqlite3_aggregate_context(context, sizeof *state);
    if (!state) return;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < count; i++) {
        if (sqlite3_value_type(values[i]) == SQLITE_NULL) {
            h = (h ^ 0x1e) * 0x100000001b3ULL;
        } else {
            const unsigned char *text = sqlite3_value_text(values[i]);
            int length = sqlite3_value_bytes(values[i]);
            for (int j = 0; j < length; j++) h = (h ^ text[j]) * 0x100000001b3ULL;
        }
        h = (h ^ 0x1f) * 0x100000001b3ULL;
    }
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ULL; h ^= h >> 33;
    state->rows += 1;
    state->sum += h;
}

static inline void toolcfg_digest_final(sqlite3_context *context) {
    struct toolcfg_digest_state *state = sqlite3_aggregate_context(context, 0);
    char text[48];
    snprintf(text, sizeof text, "%llu:%llx", state ? (unsigned long long)state->rows : 0ULL, state ? (unsigned long long)state->sum : 0ULL);
    sqlite3_result_text(context, text, -1, SQLITE_TRANSIENT);
}

static inline int toolcfg_create_digest_function(sqlite3 *db) {
    return sqlite3_create_function_v2(db, "toolcfg_digest", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, NULL,
                                      toolcfg_digest_step, toolcfg_digest_final, NULL);
}
#endif
