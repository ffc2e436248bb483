/*
 * sha256.c -- SHA-256 (FIPS 180-4) of a byte string, as lowercase hex.
 *
 * The content fingerprint that keys the schema cache. A cache hit costs one
 * pass of this over the bytes, so the compression loop is kept tight: the
 * message schedule is computed in place in a 16-word ring.
 */
#include <string.h>

#include "dynpb.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(DP_NO_SHA_NI)
#define DP_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline uint32_t load_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Compresses nblocks 64-byte blocks at p into the state h[8]. */
static void compress(uint32_t h[8], const unsigned char *p, size_t nblocks) {
    while (nblocks--) {
        uint32_t w[16];
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
        uint32_t e = h[4], f = h[5], g = h[6], k = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t wi;
            if (i < 16) {
                wi = w[i] = load_be32(p + 4 * i);
            } else {
                uint32_t w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
                uint32_t s0 = ROR(w15, 7) ^ ROR(w15, 18) ^ (w15 >> 3);
                uint32_t s1 = ROR(w2, 17) ^ ROR(w2, 19) ^ (w2 >> 10);
                wi = w[i & 15] += s0 + w[(i - 7) & 15] + s1;
            }
            uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
                          ((e & f) ^ (~e & g)) + K[i] + wi;
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
                          ((a & b) ^ (a & c) ^ (b & c));
            k = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d;
        h[4] += e; h[5] += f; h[6] += g; h[7] += k;
        p += 64;
    }
}

#ifdef DP_SHA_NI
/* Does this CPU have the SHA extensions (and SSE4.1, SSSE3 they need here)?
   CPUID can cost microseconds in a virtual machine, so this is asked once
   per lua_State (luaopen_dynpb keeps the answer in dp_state), never per hash
   and never in a C global. */
static int have_sha_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 29) & 1;
}

/* compress() with the SHA-NI instructions: two rounds per sha256rnds2, the
   message schedule by sha256msg1/msg2. The state is kept as ABEF/CDGH. */
__attribute__((target("sha,sse4.1,ssse3")))
static void compress_ni(uint32_t h[8], const unsigned char *p, size_t nblocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i t = _mm_loadu_si128((const __m128i *)&h[0]);        /* DCBA */
    __m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]);       /* HGFE */
    t = _mm_shuffle_epi32(t, 0xB1);                             /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);                           /* EFGH */
    __m128i s0 = _mm_alignr_epi8(t, s1, 8);                     /* ABEF */
    s1 = _mm_blend_epi16(s1, t, 0xF0);                          /* CDGH */
    while (nblocks--) {
        __m128i abef = s0, cdgh = s1, w[4];
        for (int g = 0; g < 16; g++) {
            __m128i m;
            if (g < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
            } else {
                __m128i x = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
                x = _mm_add_epi32(x, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
                m = _mm_sha256msg2_epu32(x, w[(g + 3) & 3]);
            }
            w[g & 3] = m;
            __m128i k = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&K[4 * g]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, k);
            s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(k, 0x0E));
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
        p += 64;
    }
    t = _mm_shuffle_epi32(s0, 0x1B);                            /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);                           /* DCHG */
    s0 = _mm_blend_epi16(t, s1, 0xF0);                          /* DCBA */
    s1 = _mm_alignr_epi8(s1, t, 8);                             /* HGFE */
    _mm_storeu_si128((__m128i *)&h[0], s0);
    _mm_storeu_si128((__m128i *)&h[4], s1);
}
#endif

int dp_sha256_fast(void) {
#ifdef DP_SHA_NI
    return have_sha_ni();
#else
    return 0;
#endif
}

void dp_sha256_hex(const void *data, size_t len, char out[65], int fast) {
    static const char hex[] = "0123456789abcdef";
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t full = len / 64;
    void (*fn)(uint32_t *, const unsigned char *, size_t) = compress;
#ifdef DP_SHA_NI
    if (fast) fn = compress_ni;
#else
    (void)fast;
#endif
    fn(h, p, full);

    /* final block(s): rest, 0x80, zeros, 64-bit big-endian bit length */
    unsigned char tail[128];
    size_t rest = len - full * 64;
    memset(tail, 0, sizeof tail);
    if (rest) memcpy(tail, p + full * 64, rest);
    tail[rest] = 0x80;
    size_t tlen = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
    fn(h, tail, tlen / 64);

    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++)
            out[i * 8 + j] = hex[(h[i] >> (28 - 4 * j)) & 15];
    out[64] = '\0';
}
