/* loader/sha256.c: SHA-256 as specified in FIPS 180-4, section 6.2.
 *
 * The portable compression function is written for clarity (~170 MB/s). Hashing a
 * 900 MB checkpoint with it takes over 5 s, so on x86 CPUs with the SHA extensions the
 * same rounds run on sha256rnds2/sha256msg1/sha256msg2 (~1.5 GB/s), chosen at run time
 * from CPUID; both give identical digests (tests/test_pt.c runs the vectors on both). */
#include "loader/sha256.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define SHA256_HAVE_X86 1
#endif

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block_portable(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

#ifdef SHA256_HAVE_X86
/* The state lives in two registers as the instructions want it: ABEF and CDGH.
 * Each sha256rnds2 does two rounds; msg1/msg2 extend the schedule four words at a time:
 * W[t..t+3] = msg2(msg1(W[t-16..], W[t-12..]) + W[t-7..t-4], W[t-4..]). */
__attribute__((target("sha,sse4.1,ssse3")))
static void sha256_blocks_shani(uint32_t h[8], const uint8_t *p, size_t nblocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i t = _mm_loadu_si128((const __m128i *)&h[0]);     /* A B C D (lane 0 first) */
    __m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]);    /* E F G H */
    t = _mm_shuffle_epi32(t, 0xB1);                           /* B A D C */
    s1 = _mm_shuffle_epi32(s1, 0x1B);                         /* H G F E */
    __m128i s0 = _mm_alignr_epi8(t, s1, 8);                   /* F E B A = ABEF */
    s1 = _mm_blend_epi16(s1, t, 0xF0);                        /* H G D C = CDGH */
    for (; nblocks; nblocks--, p += 64) {
        __m128i abef = s0, cdgh = s1, w[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            __m128i x;
            if (g < 4) {
                x = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
            } else {
                x = _mm_sha256msg1_epu32(w[g % 4], w[(g + 1) % 4]);
                x = _mm_add_epi32(x, _mm_alignr_epi8(w[(g + 3) % 4], w[(g + 2) % 4], 4));
                x = _mm_sha256msg2_epu32(x, w[(g + 3) % 4]);
            }
            w[g % 4] = x;
            __m128i m = _mm_add_epi32(x, _mm_loadu_si128((const __m128i *)&sha256_k[4 * g]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, m);
            s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(m, 0x0E));
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }
    t = _mm_shuffle_epi32(s0, 0x1B);                          /* A B E F */
    s1 = _mm_shuffle_epi32(s1, 0xB1);                         /* G H C D */
    _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(t, s1, 0xF0));   /* A B C D */
    _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(s1, t, 8));      /* E F G H */
}

static int cpu_has_sha(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int sha = (b >> 29) & 1;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return sha && (c & bit_SSE4_1) && (c & bit_SSSE3);
}
#endif

static int accel_allowed = 1;

int sha256_use_accel(int enable) {
    accel_allowed = enable != 0;
#ifdef SHA256_HAVE_X86
    return accel_allowed && cpu_has_sha();
#else
    return 0;
#endif
}

static void sha256_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks) {
#ifdef SHA256_HAVE_X86
    static int has = -1;   /* benign race: every thread computes the same value */
    if (has < 0) has = cpu_has_sha();
    if (has && accel_allowed) { sha256_blocks_shani(h, p, nblocks); return; }
#endif
    for (; nblocks; nblocks--, p += 64) sha256_block_portable(h, p);
}

void sha256_init(sha256_ctx *c) {
    static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(c->h, h0, sizeof h0);
    c->n_bytes = 0;
    c->fill = 0;
}

void sha256_update(sha256_ctx *c, const void *data, size_t n) {
    const uint8_t *p = data;
    c->n_bytes += n;
    if (c->fill) {
        size_t take = 64 - c->fill < n ? 64 - c->fill : n;
        memcpy(c->block + c->fill, p, take);
        c->fill += take; p += take; n -= take;
        if (c->fill < 64) return;
        sha256_blocks(c->h, c->block, 1);
        c->fill = 0;
    }
    sha256_blocks(c->h, p, n / 64);
    p += n / 64 * 64;
    n %= 64;
    memcpy(c->block, p, n);
    c->fill = n;
}

void sha256_final(sha256_ctx *c, uint8_t digest[32]) {
    uint64_t bits = c->n_bytes * 8;
    uint8_t pad[72] = { 0x80 };
    /* Pad with 0x80, zeros, then the 64-bit big-endian bit length, to a block boundary. */
    size_t npad = (c->fill < 56 ? 56 - c->fill : 120 - c->fill);
    for (int i = 0; i < 8; i++) pad[npad + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t keep = c->n_bytes;
    sha256_update(c, pad, npad + 8);
    c->n_bytes = keep;
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(c->h[i] >> 24); digest[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(c->h[i] >> 8); digest[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void sha256(const void *data, size_t n, uint8_t digest[32]) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, n);
    sha256_final(&c, digest);
}

void sha256_to_hex(const uint8_t digest[32], char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) { hex[2 * i] = digits[digest[i] >> 4]; hex[2 * i + 1] = digits[digest[i] & 15]; }
    hex[64] = 0;
}

void sha256_hex(const void *data, size_t n, char hex[65]) {
    uint8_t d[32];
    sha256(data, n, d);
    sha256_to_hex(d, hex);
}
