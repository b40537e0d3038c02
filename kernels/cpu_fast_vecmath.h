/* kernels/cpu_fast_vecmath.h: the vector exp, erf and GELU of cpu_fast, written once
 * for both instruction sets. A kernel file defines the VM_* operations for its vector
 * type (cpu_fast_avx2.c: __m256, cpu_fast_avx512.c: __m512) and includes this file;
 * every lane then goes through the same sequence of IEEE operations whatever the vector
 * width, so the AVX-512 table's results are those of the AVX2 table, bit for bit.
 *
 * Needed: VM_T (vector), VM_M (comparison result), VM_FN(name) (the function names of
 * this width), VM_SET1, VM_ADD, VM_MUL, VM_DIV, VM_MAX, VM_MIN, VM_FMADD(a, b, c) = a·b+c,
 * VM_FNMADD(a, b, c) = c-a·b, VM_AND, VM_OR, VM_XOR, VM_ANDNOT(a, b) = ~a & b (bitwise),
 * VM_ROUND (to nearest, ties to even), VM_LDEXP(p, n) = p·2^n for integral n (adds n to
 * the exponent field), VM_LE, VM_GE (ordered compares), VM_SELECT(m, yes, no).
 * The template part has no include guard: each kernel file includes it once, for its
 * own width. */

#ifndef SAMC_CPU_FAST_VECMATH_ONCE
#define SAMC_CPU_FAST_VECMATH_ONCE
#include <immintrin.h>
#include <math.h>
/* Horizontal sum and max of 8 lanes in one fixed order; the AVX-512 kernels reduce their
 * 16 lanes to 8 in the AVX2 kernels' order first, then call these. */
static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/* expf to about 1.5 ulp on [-87.3, 88]: e^x = 2^n · e^r, |r| <= ln2/2, with a degree-7
 * polynomial for e^r (1 + r + r²·p(r), p fitted by weighted least squares for this
 * project). Inputs below -87.3 return e^-87.3 (~1e-38) instead of a denormal or zero:
 * harmless for softmax weights and erf tails, the only users. */
static inline VM_T VM_FN(exp)(VM_T x) {
    x = VM_MAX(x, VM_SET1(-87.3f));
    x = VM_MIN(x, VM_SET1(88.0f));
    VM_T n = VM_ROUND(VM_MUL(x, VM_SET1(1.44269504088896341f)));
    VM_T r = VM_FNMADD(n, VM_SET1(0.693145751953125f), x);
    r = VM_FNMADD(n, VM_SET1(1.428606765330187e-06f), r);
    VM_T p = VM_SET1(0.00019790043006651103f);
    p = VM_FMADD(p, r, VM_SET1(0.001394572900608182f));
    p = VM_FMADD(p, r, VM_SET1(0.00833350233733654f));
    p = VM_FMADD(p, r, VM_SET1(0.04166628047823906f));
    p = VM_FMADD(p, r, VM_SET1(0.1666666567325592f));
    p = VM_FMADD(p, r, VM_SET1(0.5f));
    p = VM_FMADD(p, VM_MUL(r, r), r);
    p = VM_ADD(p, VM_SET1(1.0f));
    return VM_LDEXP(p, n);
}

/* erf to about 1.5e-7 absolute (fitted for this project by weighted least squares):
 *   |x| <= 1:     x · A(x²), A of degree 6
 *   1 < |x| < 4:  1 - e^(-x²) · B(u), u = (1/|x| - 0.625) / 0.375 in [-1, 1], B of degree 10
 *                 (erfc(x)·e^(x²) is smooth and slowly varying in 1/x)
 *   |x| >= 4:     ±1 (erf(4) rounds to 1 in float). */
static inline VM_T VM_FN(erf)(VM_T x) {
    const VM_T sign = VM_SET1(-0.0f), one = VM_SET1(1.0f);
    VM_T ax = VM_ANDNOT(sign, x);
    VM_T z = VM_MUL(ax, ax);
    VM_T pa = VM_SET1(7.85492011345923e-05f);
    pa = VM_FMADD(pa, z, VM_SET1(-0.0008010495221242309f));
    pa = VM_FMADD(pa, z, VM_SET1(0.005188359878957272f));
    pa = VM_FMADD(pa, z, VM_SET1(-0.026853827759623528f));
    pa = VM_FMADD(pa, z, VM_SET1(0.1128358542919159f));
    pa = VM_FMADD(pa, z, VM_SET1(-0.3761262595653534f));
    pa = VM_FMADD(pa, z, VM_SET1(1.1283791065216064f));
    VM_T ra = VM_MUL(ax, pa);

    VM_T t = VM_DIV(one, VM_MAX(ax, one));
    VM_T u = VM_FMADD(t, VM_SET1(1.0f / 0.375f), VM_SET1(-0.625f / 0.375f));
    VM_T pb = VM_SET1(-2.0213506104482803e-06f);
    pb = VM_FMADD(pb, u, VM_SET1(3.802164428634569e-06f));
    pb = VM_FMADD(pb, u, VM_SET1(2.2742447072232608e-06f));
    pb = VM_FMADD(pb, u, VM_SET1(-2.8045820727129467e-05f));
    pb = VM_FMADD(pb, u, VM_SET1(0.00011978763359365985f));
    pb = VM_FMADD(pb, u, VM_SET1(-0.00034813955426216125f));
    pb = VM_FMADD(pb, u, VM_SET1(0.0004615156794898212f));
    pb = VM_FMADD(pb, u, VM_SET1(0.002308027818799019f));
    pb = VM_FMADD(pb, u, VM_SET1(-0.024243032559752464f));
    pb = VM_FMADD(pb, u, VM_SET1(0.14335641264915466f));
    pb = VM_FMADD(pb, u, VM_SET1(0.3059529960155487f));
    VM_T rb = VM_FNMADD(VM_FN(exp)(VM_XOR(z, sign)), pb, one);

    VM_T r = VM_SELECT(VM_LE(ax, one), ra, rb);
    r = VM_SELECT(VM_GE(ax, VM_SET1(4.0f)), one, r);
    return VM_OR(r, VM_AND(x, sign));
}

/* 0.5·x·(1 + erf(x/√2)), the operation order of the reference. */
static inline VM_T VM_FN(gelu)(VM_T x) {
    VM_T e = VM_FN(erf)(VM_MUL(x, VM_SET1((float)M_SQRT1_2)));
    return VM_MUL(VM_MUL(VM_SET1(0.5f), x), VM_ADD(VM_SET1(1.0f), e));
}
