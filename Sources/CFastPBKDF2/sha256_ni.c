// SHA-256 block compression with the x86 SHA extensions, two independent streams interleaved.
//
// PBKDF2's iterations are strictly sequential, so one derivation leaves the SHA unit waiting on
// its own latency; two derivations (two rows, or a rotation's old and new key) fed alternately
// keep it busy. Messages arrive as 16 native-order words (the previous digest plus fixed
// padding), so no byte swapping happens inside the 1000-iteration loop.
// Checked against OpenSSL's PKCS5_PBKDF2_HMAC by the test suite; used only when CPUID reports
// the extensions (toolcfg_sha_ni_available), else the SHA256_Transform path runs.
#include "CFastPBKDF2.h"
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static int detect_sha_ni(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    int sse41 = (ecx >> 19) & 1, ssse3 = (ecx >> 9) & 1;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return sse41 && ssse3 && ((ebx >> 29) & 1);
}

// Asked once: CPUID traps to the hypervisor in a virtual machine, and asking on every pair of
// derivations cost 14 % of verify-keys' CPU time here. Threads that race on the first call
// store the same answer.
int toolcfg_sha_ni_available(void) {
    static _Atomic int cached = -1;
    int available = atomic_load_explicit(&cached, memory_order_relaxed);
    if (available < 0) {
        available = detect_sha_ni();
        atomic_store_explicit(&cached, available, memory_order_relaxed);
    }
    return available;
}

#define TARGET __attribute__((target("sha,sse4.1,ssse3")))

// h (8 native words) <- compress(h, w (16 native words)), for streams a and b at once.
TARGET void toolcfg_sha256_ni_compress2(uint32_t ha[8], const uint32_t wa[16], uint32_t hb[8], const uint32_t wb[16]) {
    __m128i a0, a1, b0, b1, ta, tb, ma[4], mb[4], ka, kb;
    // State to the ABEF / CDGH layout the instructions use.
    ta = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&ha[0]), 0xB1);
    a1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&ha[4]), 0x1B);
    a0 = _mm_alignr_epi8(ta, a1, 8);
    a1 = _mm_blend_epi16(a1, ta, 0xF0);
    tb = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&hb[0]), 0xB1);
    b1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&hb[4]), 0x1B);
    b0 = _mm_alignr_epi8(tb, b1, 8);
    b1 = _mm_blend_epi16(b1, tb, 0xF0);
    const __m128i saveA0 = a0, saveA1 = a1, saveB0 = b0, saveB1 = b1;

#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * i]);
        if (i < 4) {
            ma[i] = _mm_loadu_si128((const __m128i *)&wa[4 * i]);
            mb[i] = _mm_loadu_si128((const __m128i *)&wb[4 * i]);
        } else {
            // W[i..i+3] from the four groups before it.
            __m128i xa = _mm_add_epi32(_mm_sha256msg1_epu32(ma[i & 3], ma[(i + 1) & 3]), _mm_alignr_epi8(ma[(i + 3) & 3], ma[(i + 2) & 3], 4));
            __m128i xb = _mm_add_epi32(_mm_sha256msg1_epu32(mb[i & 3], mb[(i + 1) & 3]), _mm_alignr_epi8(mb[(i + 3) & 3], mb[(i + 2) & 3], 4));
            ma[i & 3] = _mm_sha256msg2_epu32(xa, ma[(i + 3) & 3]);
            mb[i & 3] = _mm_sha256msg2_epu32(xb, mb[(i + 3) & 3]);
        }
        ka = _mm_add_epi32(ma[i & 3], k);
        kb = _mm_add_epi32(mb[i & 3], k);
        a1 = _mm_sha256rnds2_epu32(a1, a0, ka);
        b1 = _mm_sha256rnds2_epu32(b1, b0, kb);
        a0 = _mm_sha256rnds2_epu32(a0, a1, _mm_shuffle_epi32(ka, 0x0E));
        b0 = _mm_sha256rnds2_epu32(b0, b1, _mm_shuffle_epi32(kb, 0x0E));
    }
    a0 = _mm_add_epi32(a0, saveA0);
    a1 = _mm_add_epi32(a1, saveA1);
    b0 = _mm_add_epi32(b0, saveB0);
    b1 = _mm_add_epi32(b1, saveB1);
    // Back to h[0..7].
    ta = _mm_shuffle_epi32(a0, 0x1B);
    a1 = _mm_shuffle_epi32(a1, 0xB1);
    _mm_storeu_si128((__m128i *)&ha[0], _mm_blend_epi16(ta, a1, 0xF0));
    _mm_storeu_si128((__m128i *)&ha[4], _mm_alignr_epi8(a1, ta, 8));
    tb = _mm_shuffle_epi32(b0, 0x1B);
    b1 = _mm_shuffle_epi32(b1, 0xB1);
    _mm_storeu_si128((__m128i *)&hb[0], _mm_blend_epi16(tb, b1, 0xF0));
    _mm_storeu_si128((__m128i *)&hb[4], _mm_alignr_epi8(b1, tb, 8));
}

// ---- PBKDF2's iteration loop, two streams, state kept in the instructions' layout ----

// The rounds of one block for two streams. s0/s1: ABEF/CDGH state; m0..m3: the message words.
#define ROUNDS2(a0, a1, b0, b1, am, bm)                                                              \
    do {                                                                                            \
        _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++) {                                     \
            __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * i]);                                \
            if (i >= 4) {                                                                           \
                __m128i xa = _mm_add_epi32(_mm_sha256msg1_epu32(am[i & 3], am[(i + 1) & 3]),        \
                                           _mm_alignr_epi8(am[(i + 3) & 3], am[(i + 2) & 3], 4));   \
                __m128i xb = _mm_add_epi32(_mm_sha256msg1_epu32(bm[i & 3], bm[(i + 1) & 3]),        \
                                           _mm_alignr_epi8(bm[(i + 3) & 3], bm[(i + 2) & 3], 4));   \
                am[i & 3] = _mm_sha256msg2_epu32(xa, am[(i + 3) & 3]);                              \
                bm[i & 3] = _mm_sha256msg2_epu32(xb, bm[(i + 3) & 3]);                              \
            }                                                                                       \
            __m128i ka = _mm_add_epi32(am[i & 3], k), kb = _mm_add_epi32(bm[i & 3], k);             \
            a1 = _mm_sha256rnds2_epu32(a1, a0, ka);                                                 \
            b1 = _mm_sha256rnds2_epu32(b1, b0, kb);                                                 \
            a0 = _mm_sha256rnds2_epu32(a0, a1, _mm_shuffle_epi32(ka, 0x0E));                        \
            b0 = _mm_sha256rnds2_epu32(b0, b1, _mm_shuffle_epi32(kb, 0x0E));                        \
        }                                                                                           \
    } while (0)

TARGET static inline void to_layout(const uint32_t h[8], __m128i *s0, __m128i *s1) {
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1);
    __m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B);
    *s0 = _mm_alignr_epi8(t, u, 8);
    *s1 = _mm_blend_epi16(u, t, 0xF0);
}

// ABEF/CDGH to (h0..h3), (h4..h7): the digest words, which are the next block's first words.
TARGET static inline void from_layout(__m128i s0, __m128i s1, __m128i *lo, __m128i *hi) {
    __m128i t = _mm_shuffle_epi32(s0, 0x1B);
    __m128i u = _mm_shuffle_epi32(s1, 0xB1);
    *lo = _mm_blend_epi16(t, u, 0xF0);
    *hi = _mm_alignr_epi8(u, t, 8);
}

// Iterations 2..c of PBKDF2 for two streams: u holds U1 (native words) on entry; t receives
// U1 ^ U2 ^ ... ^ Uc. inner/outer: the HMAC states after the key block.
TARGET void toolcfg_pbkdf2_ni_loop2(const uint32_t inner_a[8], const uint32_t outer_a[8], const uint32_t u_a[8], uint32_t t_a[8],
                                    const uint32_t inner_b[8], const uint32_t outer_b[8], const uint32_t u_b[8], uint32_t t_b[8],
                                    uint32_t iterations) {
    __m128i ia0, ia1, oa0, oa1, ib0, ib1, ob0, ob1;
    to_layout(inner_a, &ia0, &ia1);
    to_layout(outer_a, &oa0, &oa1);
    to_layout(inner_b, &ib0, &ib1);
    to_layout(outer_b, &ob0, &ob1);
    const __m128i pad2 = _mm_set_epi32(0, 0, 0, (int)0x80000000u), pad3 = _mm_set_epi32(768, 0, 0, 0);
    __m128i ua_lo = _mm_loadu_si128((const __m128i *)&u_a[0]), ua_hi = _mm_loadu_si128((const __m128i *)&u_a[4]);
    __m128i ub_lo = _mm_loadu_si128((const __m128i *)&u_b[0]), ub_hi = _mm_loadu_si128((const __m128i *)&u_b[4]);
    __m128i ta_lo = ua_lo, ta_hi = ua_hi, tb_lo = ub_lo, tb_hi = ub_hi;
    for (uint32_t j = 1; j < iterations; j++) {
        __m128i am[4] = {ua_lo, ua_hi, pad2, pad3}, bm[4] = {ub_lo, ub_hi, pad2, pad3};
        __m128i a0 = ia0, a1 = ia1, b0 = ib0, b1 = ib1;
        ROUNDS2(a0, a1, b0, b1, am, bm);
        from_layout(_mm_add_epi32(a0, ia0), _mm_add_epi32(a1, ia1), &am[0], &am[1]);
        from_layout(_mm_add_epi32(b0, ib0), _mm_add_epi32(b1, ib1), &bm[0], &bm[1]);
        am[2] = pad2; am[3] = pad3; bm[2] = pad2; bm[3] = pad3;
        a0 = oa0; a1 = oa1; b0 = ob0; b1 = ob1;
        ROUNDS2(a0, a1, b0, b1, am, bm);
        from_layout(_mm_add_epi32(a0, oa0), _mm_add_epi32(a1, oa1), &ua_lo, &ua_hi);
        from_layout(_mm_add_epi32(b0, ob0), _mm_add_epi32(b1, ob1), &ub_lo, &ub_hi);
        ta_lo = _mm_xor_si128(ta_lo, ua_lo); ta_hi = _mm_xor_si128(ta_hi, ua_hi);
        tb_lo = _mm_xor_si128(tb_lo, ub_lo); tb_hi = _mm_xor_si128(tb_hi, ub_hi);
    }
    _mm_storeu_si128((__m128i *)&t_a[0], ta_lo); _mm_storeu_si128((__m128i *)&t_a[4], ta_hi);
    _mm_storeu_si128((__m128i *)&t_b[0], tb_lo); _mm_storeu_si128((__m128i *)&t_b[4], tb_hi);
}

#else
void toolcfg_pbkdf2_ni_loop2(const uint32_t inner_a[8], const uint32_t outer_a[8], const uint32_t u_a[8], uint32_t t_a[8],
                             const uint32_t inner_b[8], const uint32_t outer_b[8], const uint32_t u_b[8], uint32_t t_b[8],
                             uint32_t iterations) {
    (void)inner_a; (void)outer_a; (void)u_a; (void)t_a; (void)inner_b; (void)outer_b; (void)u_b; (void)t_b; (void)iterations;
}
int toolcfg_sha_ni_available(void) { return 0; }
void toolcfg_sha256_ni_compress2(uint32_t ha[8], const uint32_t wa[16], uint32_t hb[8], const uint32_t wb[16]) {
    (void)ha; (void)wa; (void)hb; (void)wb;
}
#endif
