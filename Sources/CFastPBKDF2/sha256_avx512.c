// PBKDF2's iteration loop for sixteen derivations at once, one in each 32-bit lane of the AVX-512
// registers: plain SHA-256 rounds (rotates and three-input logic in single instructions), no SHA
// extensions.
//
// Why: with the SHA extensions, two interleaved derivations took 77-87 us each on the 2-core
// machine while other work shared its cores, against 44 us when it was quiet; the SHA unit is one
// per core. Sixteen lanes on the vector units took 44 us each under that same load (measured in
// one run, scripts/bench.sh decrypt has the end-to-end figures). Used when CPUID and the OS
// report AVX-512F (toolcfg_avx512_available), else the two-stream path runs; the tests compare
// both against OpenSSL's PKCS5_PBKDF2_HMAC.
#include "CFastPBKDF2.h"
#include <stdatomic.h>
#include <stdint.h>

#if defined(__x86_64__)
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

// AVX-512F in the CPU, and the OS saving the opmask and all 32 zmm registers (XCR0 bits 1, 2, 5,
// 6 and 7).
static int detect_avx512(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !((ecx >> 27) & 1)) return 0;  // OSXSAVE
    unsigned int xcr0_low, xcr0_high;
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 0xE6) != 0xE6) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx >> 16) & 1;
}

// Asked once, as toolcfg_sha_ni_available is: CPUID traps to the hypervisor in a virtual machine.
int toolcfg_avx512_available(void) {
    static _Atomic int cached = -1;
    int available = atomic_load_explicit(&cached, memory_order_relaxed);
    if (available < 0) {
        available = detect_avx512();
        atomic_store_explicit(&cached, available, memory_order_relaxed);
    }
    return available;
}

#define TARGET __attribute__((target("avx512f")))
#define ROR(x, n) _mm512_ror_epi32((x), (n))
#define XOR3 0x96  // a ^ b ^ c
#define CHOOSE 0xCA  // (a & b) | (~a & c)
#define MAJORITY 0xE8  // (a & b) | (a & c) | (b & c)

// h <- compress(h, w) for sixteen lanes; w (the block's sixteen words) is used up.
TARGET static inline void compress16(__m512i h[8], __m512i w[16]) {
    __m512i a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
#pragma GCC unroll 64
    for (int i = 0; i < 64; i++) {
        if (i >= 16) {
            __m512i w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
            __m512i s0 = _mm512_ternarylogic_epi32(ROR(w15, 7), ROR(w15, 18), _mm512_srli_epi32(w15, 3), XOR3);
            __m512i s1 = _mm512_ternarylogic_epi32(ROR(w2, 17), ROR(w2, 19), _mm512_srli_epi32(w2, 10), XOR3);
            w[i & 15] = _mm512_add_epi32(_mm512_add_epi32(w[i & 15], s0), _mm512_add_epi32(w[(i - 7) & 15], s1));
        }
        __m512i s1 = _mm512_ternarylogic_epi32(ROR(e, 6), ROR(e, 11), ROR(e, 25), XOR3);
        __m512i t1 = _mm512_add_epi32(_mm512_add_epi32(hh, s1),
                                      _mm512_add_epi32(_mm512_ternarylogic_epi32(e, f, g, CHOOSE),
                                                       _mm512_add_epi32(w[i & 15], _mm512_set1_epi32((int)K[i]))));
        __m512i s0 = _mm512_ternarylogic_epi32(ROR(a, 2), ROR(a, 13), ROR(a, 22), XOR3);
        __m512i t2 = _mm512_add_epi32(s0, _mm512_ternarylogic_epi32(a, b, c, MAJORITY));
        hh = g; g = f; f = e; e = _mm512_add_epi32(d, t1);
        d = c; c = b; b = a; a = _mm512_add_epi32(t1, t2);
    }
    h[0] = _mm512_add_epi32(h[0], a); h[1] = _mm512_add_epi32(h[1], b);
    h[2] = _mm512_add_epi32(h[2], c); h[3] = _mm512_add_epi32(h[3], d);
    h[4] = _mm512_add_epi32(h[4], e); h[5] = _mm512_add_epi32(h[5], f);
    h[6] = _mm512_add_epi32(h[6], g); h[7] = _mm512_add_epi32(h[7], hh);
}

// Word k of sixteen 8-word states, one lane each.
TARGET static inline __m512i lanes(const uint32_t states[16][8], int k) {
    uint32_t words[16];
    for (int lane = 0; lane < 16; lane++) words[lane] = states[lane][k];
    __m512i vector = _mm512_loadu_si512(words);
    toolcfg_secure_zero(words, sizeof words);
    return vector;
}

// Iterations 2..c of PBKDF2 for sixteen derivations (as toolcfg_pbkdf2_ni_loop2 for two): u holds
// U1 (native words) on entry; t receives U1 ^ U2 ^ ... ^ Uc.
TARGET void toolcfg_pbkdf2_avx512_loop16(const uint32_t inner[16][8], const uint32_t outer[16][8],
                                         const uint32_t u[16][8], uint32_t t[16][8], uint32_t iterations) {
    __m512i in[8], out[8], x[8], sum[8];
    for (int k = 0; k < 8; k++) {
        in[k] = lanes(inner, k);
        out[k] = lanes(outer, k);
        x[k] = sum[k] = lanes(u, k);
    }
    // The block after the 32-byte message: 0x80, zeros, and the length, 768 bits.
    const __m512i pad = _mm512_set1_epi32((int)0x80000000u), zero = _mm512_setzero_si512(), length = _mm512_set1_epi32(768);
    for (uint32_t j = 1; j < iterations; j++) {
        __m512i h[8], w[16];
        for (int k = 0; k < 8; k++) { h[k] = in[k]; w[k] = x[k]; }
        w[8] = pad; w[9] = w[10] = w[11] = w[12] = w[13] = w[14] = zero; w[15] = length;
        compress16(h, w);
        for (int k = 0; k < 8; k++) { w[k] = h[k]; h[k] = out[k]; }
        w[8] = pad; w[9] = w[10] = w[11] = w[12] = w[13] = w[14] = zero; w[15] = length;
        compress16(h, w);
        for (int k = 0; k < 8; k++) { x[k] = h[k]; sum[k] = _mm512_xor_si512(sum[k], h[k]); }
    }
    for (int k = 0; k < 8; k++) {
        uint32_t words[16];
        _mm512_storeu_si512(words, sum[k]);
        for (int lane = 0; lane < 16; lane++) t[lane][k] = words[lane];
        toolcfg_secure_zero(words, sizeof words);
    }
}

#else
int toolcfg_avx512_available(void) { return 0; }
void toolcfg_pbkdf2_avx512_loop16(const uint32_t inner[16][8], const uint32_t outer[16][8],
                                  const uint32_t u[16][8], uint32_t t[16][8], uint32_t iterations) {
    (void)inner; (void)outer; (void)u; (void)t; (void)iterations;
}
#endif
