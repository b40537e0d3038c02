/* tests/cuda_sim/include/cudasim_lowp.h: __half and __nv_bfloat16 for the simulator: the
 * 16-bit storage types and their round-to-nearest-even conversions, bit-exact with the
 * device's __float2half_rn / __float2bfloat16_rn (overflow to infinity, subnormal halves,
 * NaN kept NaN). Included by cuda_fp16.h and cuda_bf16.h. */
#ifndef CUDASIM_LOWP_H
#define CUDASIM_LOWP_H
#include <stdint.h>
#include <string.h>

struct __half {
    uint16_t __x;
};
struct __nv_bfloat16 {
    uint16_t __x;
};
typedef __half half;
typedef __nv_bfloat16 nv_bfloat16;

namespace cudasim {
static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float f32_from(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Keeps the high 16 bits, rounding on the low 16: above half up, exactly half to even. */
static inline uint16_t bf16_bits_rn(float f) {
    uint32_t u = f32_bits(f), hi = u >> 16, lo = u & 0xffffu;
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(hi | 0x0040u); /* NaN stays a (quiet) NaN */
    if (lo > 0x8000u || (lo == 0x8000u && (hi & 1u))) hi++;              /* may carry into inf: correct */
    return (uint16_t)hi;
}

/* m >> s rounded to nearest, ties to even (s >= 1). */
static inline uint32_t shift_rne(uint32_t m, int s) {
    if (s > 31) return 0;
    uint32_t q = m >> s, rem = m & ((1u << s) - 1u), half = 1u << (s - 1);
    return q + (rem > half || (rem == half && (q & 1u)));
}

static inline uint16_t f16_bits_rn(float f) {
    uint32_t u = f32_bits(f), a = u & 0x7fffffffu;
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);         /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);         /* >= 65520 rounds past 65504: inf */
    int e = (int)(a >> 23);                                          /* biased fp32 exponent */
    uint32_t m = (a & 0x7fffffu) | 0x800000u;                        /* 24-bit significand */
    if (e >= 113)                                                    /* 2^-14 and up: normal half */
        return (uint16_t)(sign | (((uint32_t)(e - 112) << 10) + shift_rne(m, 13) - 0x400u));
    if (e < 90) return sign;                                         /* below 2^-37 (and fp32 subnormals): 0 */
    return (uint16_t)(sign | shift_rne(m, 126 - e));                 /* units of 2^-24 */
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 31) return f32_from(sign | 0x7f800000u | (m << 13));
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact in fp32 */
        float v = (float)m * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return f32_from(sign | ((e + 112) << 23) | (m << 13));
}
} // namespace cudasim

static inline __half __float2half_rn(float f) { return __half{ cudasim::f16_bits_rn(f) }; }
static inline __half __float2half(float f) { return __float2half_rn(f); }
static inline float __half2float(__half h) { return cudasim::f16_to_f32(h.__x); }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{ cudasim::bf16_bits_rn(f) }; }
static inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
static inline float __bfloat162float(__nv_bfloat16 b) { return cudasim::f32_from((uint32_t)b.__x << 16); }
#endif
