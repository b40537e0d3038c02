/* kernels/cpu_fast_avx512.c: the AVX-512 inner kernels of cpu_fast (see
 * cpu_fast_kernels.h). Compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma
 * (the Makefile rule for kernels/ files ending in _avx512.c) and only called after
 * cpu_fast.c has checked that the CPU supports all of them.
 *
 * The gain is the GEMM micro-kernel: one zmm holds a whole 16-wide row of a panel, so
 * the tile is AVX512_MR rows by two panels (32 columns) with two accumulators per row;
 * each k step is two B loads, then per row one broadcast of A feeding two FMAs (with
 * one panel per tile the broadcasts kept the load ports busier than the FMA units:
 * 5184 x 1024 x 1024 on one core went from 130 to 152 GFLOP/s). Every element of C is
 * the same chain as in the AVX2 kernel (acc = 0; acc = fma(a[i][k], b[k][j], acc) for k
 * in order; then + C when accumulating, + bias_n[j], + bias_m[i]), so results are
 * bit-identical to the AVX2 table's. The softmax pieces and GELU run 16 lanes with the
 * AVX2 kernels' exp/erf (one source, kernels/cpu_fast_vecmath.h) and reduction orders;
 * the other entries are the AVX2 kernels themselves. */
#include "kernels/cpu_fast_kernels.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* 12 rows (GEMM_MC (144) and ATT_QB (48) are multiples of it) by up to 32 columns. */
#define AVX512_MR 12

/* One row tile of MR rows by NP panels of 16 columns (NP = 1 or 2). The second panel
 * sits kc rows after the first (bp + kc·ldb), as packed panels do. With two panels each
 * broadcast of A feeds two FMAs: per k, 2 loads of B + MR broadcasts for 2·MR FMAs,
 * which keeps the FMA units busy where one panel (1 load + MR broadcasts for MR FMAs)
 * waits on the load ports. 24 accumulators + 2 B vectors + 1 broadcast fit 32 zmm. */
static inline __attribute__((always_inline)) void ukernel_rows(
    const int MR, const int NP, int kc, const float *a, ptrdiff_t lda, const float *bp, ptrdiff_t ldb,
    float *c, ptrdiff_t ldc, int nr, int accumulate, const float *bias_n, const float *bias_m) {
    __m512 acc[AVX512_MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
        for (int p = 0; p < NP; p++) acc[i][p] = _mm512_setzero_ps();
    /* The C tile is touched only after the k loop: start bringing it in now. */
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
        for (int p = 0; p < NP; p++) _mm_prefetch((const char *)(c + i * ldc + 16 * p), _MM_HINT_T0);
    /* Rows in threes off one pointer each (p, p + lda, p + 2·lda are all one addressing
     * mode away), so the loop keeps 4 row pointers in registers rather than 12. */
    const float *p0 = a, *p3 = a + 3 * lda, *p6 = a + 6 * lda, *p9 = a + 9 * lda;
    const ptrdiff_t l1 = lda, l2 = 2 * lda, bnext = (ptrdiff_t)kc * ldb;
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp);
        __m512 b1 = NP > 1 ? _mm512_loadu_ps(bp + bnext) : b0;
        bp += ldb;
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            const float *pg = i < 3 ? p0 : i < 6 ? p3 : i < 9 ? p6 : p9;
            const float *ap = i % 3 == 0 ? pg : i % 3 == 1 ? pg + l1 : pg + l2;
            __m512 av = _mm512_set1_ps(*ap);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            if (NP > 1) acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
        p0++; p3++; p6++; p9++;
    }
#pragma GCC unroll 2
    for (int p = 0; p < NP; p++) {
        int np_cols = nr - 16 * p;
        __mmask16 m = np_cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << np_cols) - 1);
        __m512 bn = bias_n ? _mm512_maskz_loadu_ps(m, bias_n + 16 * p) : _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            float *cr = c + i * ldc + 16 * p;
            __m512 v = acc[i][p];
            if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, cr));
            if (bias_n) v = _mm512_add_ps(v, bn);
            if (bias_m) v = _mm512_add_ps(v, _mm512_set1_ps(bias_m[i]));
            _mm512_mask_storeu_ps(cr, m, v);
        }
    }
}

static void ukernel_avx512(int kc, const float *a, ptrdiff_t lda, const float *bp, ptrdiff_t ldb,
                           float *c, ptrdiff_t ldc, int mr, int nr, int accumulate,
                           const float *bias_n, const float *bias_m) {
    if (nr > 16) {
#define ROWS(n) case n: ukernel_rows(n, 2, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
        switch (mr) {
        ROWS(12) ROWS(11) ROWS(10) ROWS(9) ROWS(8) ROWS(7) ROWS(6) ROWS(5) ROWS(4) ROWS(3) ROWS(2)
        default: ukernel_rows(1, 2, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
        }
#undef ROWS
        return;
    }
#define ROWS(n) case n: ukernel_rows(n, 1, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
    switch (mr) {
    ROWS(12) ROWS(11) ROWS(10) ROWS(9) ROWS(8) ROWS(7) ROWS(6) ROWS(5) ROWS(4) ROWS(3) ROWS(2)
    default: ukernel_rows(1, 1, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
    }
#undef ROWS
}

/* ---------------------------------------------------------------- exp, erf, softmax pieces */

/* exp512, erf512, gelu512: the AVX2 table's functions lane for lane. */
#include "kernels/cpu_fast_vm512.h"

static inline __mmask16 lanes(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }
static inline __m256 lo8(__m512 v) { return _mm512_castps512_ps256(v); }
static inline __m256 hi8(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

static void gelu_avx512(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = lanes((int)(n - i));
        _mm512_mask_storeu_ps(x + i, m, gelu512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* The running max of the AVX2 kernel is per lane, and max is exact in any order, so 16
 * lanes folded to 8 give the same value. */
static float scale_max_avx512(float *s, int n, float scale) {
    __m512 sc = _mm512_set1_ps(scale), mx = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = lanes(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + i), sc);
        _mm512_mask_storeu_ps(s + i, m, v);
        mx = _mm512_mask_max_ps(mx, m, mx, v);
    }
    return hmax(_mm256_max_ps(lo8(mx), hi8(mx)));
}

/* The sum keeps the AVX2 kernel's single 8-lane accumulator and its order: each 16-wide
 * exp adds its low 8 lanes, then its high 8 (lanes past n are zero, and adding +0 to
 * the positive partial sums changes nothing). */
static float exp_sum_avx512(float *s, int n, float mval) {
    __m512 mv = _mm512_set1_ps(mval);
    __m256 sum = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = lanes(n - i);
        __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + i), mv)));
        _mm512_mask_storeu_ps(s + i, m, e);
        sum = _mm256_add_ps(sum, lo8(e));
        if (n - i > 8) sum = _mm256_add_ps(sum, hi8(e));
    }
    return hsum(sum);
}

static void scale_avx512(float *x, int n, float f) {
    __m512 fv = _mm512_set1_ps(f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = lanes(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), fv));
    }
}

const samc_fast_kernels samc_fast_kernels_avx512 = {
    .isa = "avx512",
    .mr = AVX512_MR,
    .nr = 32,
    .copy_a = 1,
    .gemm_ukernel = ukernel_avx512,
    SAMC_FAST_AVX2_SHARED_ENTRIES,
    .gelu = gelu_avx512, .scale_max = scale_max_avx512, .exp_sum = exp_sum_avx512, .scale = scale_avx512,
};
#endif
