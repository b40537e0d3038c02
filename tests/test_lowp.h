/* tests/test_lowp.h: float32 -> bfloat16 / float16 -> float32 on the host, rounding to
 * nearest even as the CUDA backend's conversion does (__float2bfloat16_rn,
 * __float2half_rn after clamping to +-65504), so a test can build the exact inputs the
 * reduced-precision GEMMs multiply (test_backend_ops.c) or emulate them on the CPU
 * (test_golden.c). */
#ifndef SAMC_TEST_LOWP_H
#define SAMC_TEST_LOWP_H
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float test_round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) return x; /* inf, NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                 /* ties to even on bit 16 */
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* float16: 11 significant bits for normal values (|x| >= 2^-14), a fixed quantum of
 * 2^-24 below; the backend clamps to the largest finite value instead of overflowing. */
static inline float test_round_fp16(float x) {
    if (x != x || x == 0.0f) return x;
    if (x > 65504.0f) return 65504.0f;
    if (x < -65504.0f) return -65504.0f;
    int e;
    frexpf(x, &e);                     /* |x| in [2^(e-1), 2^e) */
    int q = e - 11 < -24 ? -24 : e - 11;
    return ldexpf(nearbyintf(ldexpf(x, -q)), q);
}

/* p: 1 bf16, 2 fp16 (the values of samc_precision / samc_ops_precision), else unchanged. */
static inline float test_round_lowp(float x, int p) {
    return p == 1 ? test_round_bf16(x) : p == 2 ? test_round_fp16(x) : x;
}

static inline void test_round_lowp_buf(float *dst, const float *src, size_t n, int p) {
    for (size_t i = 0; i < n; i++) dst[i] = test_round_lowp(src[i], p);
}

#endif
