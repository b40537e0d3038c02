/* convert/dtype.c: float32 -> float16 / bfloat16 with round-to-nearest-even. See dtype.h. */
#include "convert/dtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float32 -> IEEE half, round to nearest even; overflow gives inf, NaN stays NaN. */
static uint16_t convert_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x1ff);  /* quiet NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00;   /* >= 65520: rounds to inf (65504 is odd) */
    uint32_t e = ax >> 23;
    if (e < 113) {
        /* half subnormal: value / 2^-24 rounded; e = 0..112 (below 2^-14) */
        if (e < 102) return sign;   /* below 2^-25: rounds to +-0 */
        uint32_t m = (ax & 0x7fffff) | 0x800000, shift = 126 - e;
        uint32_t q = m >> shift, r = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (r > half || (r == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t h = ((e - 112) << 10) | ((ax >> 13) & 0x3ff), r = ax & 0x1fff;
    if (r > 0x1000 || (r == 0x1000 && (h & 1))) h++;   /* a carry moves into the exponent */
    return sign | (uint16_t)h;
}

/* float32 -> bfloat16 (the upper 16 bits), round to nearest even; NaN stays NaN. */
uint16_t convert_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

int convert_tensor_values(const st_tensor *t, st_dtype target, void **out, size_t *nbytes, char *err) {
    size_t cnt = (size_t)t->numel;
    *out = NULL;
    float *f32 = malloc((cnt ? cnt : 1) * sizeof *f32);
    void *dst = target == ST_F32 ? (void *)f32 : malloc((cnt ? cnt : 1) * 2);
    if (!f32 || !dst) {
        free(f32);
        if (dst != f32) free(dst);
        snprintf(err, SAMC_ERRMSG, "out of memory converting '%s' (%zu values)", t->name, cnt);
        return -1;
    }
    if (st_read_f32(t, f32, err) != 0) {
        free(f32);
        if (dst != f32) free(dst);
        return -1;
    }
    if (target != ST_F32) {
        uint16_t *h = dst;
        for (size_t k = 0; k < cnt; k++) h[k] = target == ST_F16 ? convert_f32_to_f16(f32[k]) : convert_f32_to_bf16(f32[k]);
        free(f32);
    }
    *out = dst;
    *nbytes = cnt * st_dtype_size(target);
    return 0;
}
