// toolcfg_digest(...): an aggregate whose result depends on the rows it sees, not their order:
// "<rows>:<sum of the rows' 64-bit hashes, mod 2^64, in hex>" (the hash: digest_hash.h). In C: a
// Swift callback per row made the read-back of 1M rows twice as slow as the scan itself.
#include "CSQLiteFunctions.h"
#include "digest_hash.h"
#include <stdio.h>

struct digest_state { uint64_t rows, sum; };

static void digest_step(sqlite3_context *context, int count, sqlite3_value **values) {
    struct digest_state *state = sqlite3_aggregate_context(context, sizeof *state);
    if (!state) return;
    uint64_t h = toolcfg_digest_start();
    for (int i = 0; i < count; i++) {
        if (sqlite3_value_type(values[i]) == SQLITE_NULL) {
            h = toolcfg_digest_value(h, 1, NULL, 0);
        } else {
            const unsigned char *text = sqlite3_value_text(values[i]);
            h = toolcfg_digest_value(h, 0, text, text ? (size_t)sqlite3_value_bytes(values[i]) : 0);
        }
    }
    state->rows += 1;
    state->sum += toolcfg_digest_end(h);
}

static void digest_final(sqlite3_context *context) {
    struct digest_state *state = sqlite3_aggregate_context(context, 0);
    char text[48];
    snprintf(text, sizeof text, "%llu:%llx", state ? (unsigned long long)state->rows : 0ULL, state ? (unsigned long long)state->sum : 0ULL);
    sqlite3_result_text(context, text, -1, SQLITE_TRANSIENT);
}

int toolcfg_create_digest_function(sqlite3 *db) {
    return sqlite3_create_function_v2(db, "toolcfg_digest", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, NULL, digest_step,
                                      digest_final, NULL);
}
