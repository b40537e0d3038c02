/* kernels/cpu_fast_avx2.c: the AVX2+FMA inner kernels of cpu_fast (see cpu_fast.h).
 * Compiled with -mavx2 -mfma (the Makefile rule for kernels/ files ending in _avx2.c)
 * and only called after cpu_fast.c has checked that the CPU supports both.
 *
 * Arithmetic tails run through the same vector code with masked loads and stores,
 * never a scalar remainder loop, so an element's result does not depend on where it
 * falls (pure copies such as packing may use scalar tails). Masked stores are slow on
 * AMD Zen, so full vectors use plain loads and stores. */
#include "kernels/cpu_fast_kernels.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* Lanes [0, n) set, n in [0, 8]. */
static inline __m256i tail_mask(int n) {
    static const int32_t m[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}


/* ---------------------------------------------------------------- GEMM micro-kernel */

/* 6 x 16 tile: 12 accumulators, two B vectors, one broadcast A value: 15 of the 16 ymm
 * registers. MR is a compile-time constant in each instantiation below. */
static inline __attribute__((always_inline)) void ukernel_rows(
    const int MR, int kc, const float *a, ptrdiff_t lda, const float *bp, ptrdiff_t ldb, float *c,
    ptrdiff_t ldc, int nr, int accumulate, const float *bias_n, const float *bias_m) {
    __m256 acc[SAMC_GEMM_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const float *ar[SAMC_GEMM_MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) ar[i] = a + i * lda;
    /* The C tile is touched only after the k loop: start bringing it in now. */
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);
    }
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        bp += ldb;
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(ar[i] + k);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    if (nr == SAMC_GEMM_NR) {
        __m256 bn0 = _mm256_setzero_ps(), bn1 = _mm256_setzero_ps();
        if (bias_n) { bn0 = _mm256_loadu_ps(bias_n); bn1 = _mm256_loadu_ps(bias_n + 8); }
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float *cr = c + i * ldc;
            __m256 v0 = acc[i][0], v1 = acc[i][1];
            if (accumulate) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8)); }
            if (bias_n) { v0 = _mm256_add_ps(v0, bn0); v1 = _mm256_add_ps(v1, bn1); }
            if (bias_m) { __m256 bb = _mm256_set1_ps(bias_m[i]); v0 = _mm256_add_ps(v0, bb); v1 = _mm256_add_ps(v1, bb); }
            _mm256_storeu_ps(cr, v0);
            _mm256_storeu_ps(cr + 8, v1);
        }
    } else {
        __m256i m0 = tail_mask(nr < 8 ? nr : 8), m1 = tail_mask(nr > 8 ? nr - 8 : 0);
        __m256 bn0 = _mm256_setzero_ps(), bn1 = _mm256_setzero_ps();
        if (bias_n) { bn0 = _mm256_maskload_ps(bias_n, m0); bn1 = _mm256_maskload_ps(bias_n + 8, m1); }
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float *cr = c + i * ldc;
            __m256 v0 = acc[i][0], v1 = acc[i][1];
            if (accumulate) { v0 = _mm256_add_ps(v0, _mm256_maskload_ps(cr, m0)); v1 = _mm256_add_ps(v1, _mm256_maskload_ps(cr + 8, m1)); }
            if (bias_n) { v0 = _mm256_add_ps(v0, bn0); v1 = _mm256_add_ps(v1, bn1); }
            if (bias_m) { __m256 bb = _mm256_set1_ps(bias_m[i]); v0 = _mm256_add_ps(v0, bb); v1 = _mm256_add_ps(v1, bb); }
            _mm256_maskstore_ps(cr, m0, v0);
            _mm256_maskstore_ps(cr + 8, m1, v1);
        }
    }
}

static void ukernel_avx2(int kc, const float *a, ptrdiff_t lda, const float *bp, ptrdiff_t ldb,
                         float *c, ptrdiff_t ldc, int mr, int nr, int accumulate,
                         const float *bias_n, const float *bias_m) {
    switch (mr) {
    case 6: ukernel_rows(6, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
    case 5: ukernel_rows(5, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
    case 4: ukernel_rows(4, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
    case 3: ukernel_rows(3, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
    case 2: ukernel_rows(2, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
    default: ukernel_rows(1, kc, a, lda, bp, ldb, c, ldc, nr, accumulate, bias_n, bias_m); break;
    }
}

/* ---------------------------------------------------------------- packing */

/* B(k,n) = b[k*ldb + n] -> panels [nc/16][kc][16]. */
void samc_fast_pack_rows_avx2(const float *b, ptrdiff_t ldb, int kc, int nc, float *dst) {
    for (int p = 0; p < nc; p += SAMC_GEMM_NR) {
        int nr = nc - p < SAMC_GEMM_NR ? nc - p : SAMC_GEMM_NR;
        const float *src = b + p;
        if (nr == SAMC_GEMM_NR) {
            for (int k = 0; k < kc; k++, dst += SAMC_GEMM_NR, src += ldb) {
                _mm256_storeu_ps(dst, _mm256_loadu_ps(src));
                _mm256_storeu_ps(dst + 8, _mm256_loadu_ps(src + 8));
            }
        } else {
            __m256i m0 = tail_mask(nr < 8 ? nr : 8), m1 = tail_mask(nr > 8 ? nr - 8 : 0);
            for (int k = 0; k < kc; k++, dst += SAMC_GEMM_NR, src += ldb) {
                _mm256_storeu_ps(dst, _mm256_maskload_ps(src, m0));
                _mm256_storeu_ps(dst + 8, _mm256_maskload_ps(src + 8, m1));
            }
        }
    }
}

static inline void transpose8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* dst[c*ldd + r] = src[r*lds + c]: 8x8 register transposes, scalar edges. */
void samc_fast_transpose_avx2(const float *src, ptrdiff_t lds, int rows, int cols, float *dst, ptrdiff_t ldd) {
    int r8 = rows & ~7, c8 = cols & ~7;
    for (int r = 0; r < r8; r += 8) {
        for (int c = 0; c < c8; c += 8) {
            __m256 v[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(src + (r + i) * lds + c);
            transpose8(v);
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (c + i) * ldd + r, v[i]);
        }
        for (int c = c8; c < cols; c++)
            for (int i = 0; i < 8; i++) dst[c * ldd + r + i] = src[(r + i) * lds + c];
    }
    for (int r = r8; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c];
}

/* B(k,n) = b[n*ldb + k] -> panels [nc/16][kc][16]: 8x8 register transposes, rows past
 * nc read as zero, a k tail through masked loads. */
void samc_fast_pack_cols_avx2(const float *b, ptrdiff_t ldb, int kc, int nc, float *dst) {
    for (int p = 0; p < nc; p += SAMC_GEMM_NR) {
        for (int half = 0; half < 2; half++) {
            int n0 = p + 8 * half;
            int rows = nc - n0 < 8 ? (nc - n0 > 0 ? nc - n0 : 0) : 8;
            const float *src[8];
            for (int j = 0; j < 8; j++) src[j] = b + (ptrdiff_t)(n0 + (j < rows ? j : 0)) * ldb;
            float *d = dst + 8 * half;
            int k = 0;
            for (; k + 8 <= kc; k += 8) {
                __m256 r[8];
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) r[j] = j < rows ? _mm256_loadu_ps(src[j] + k) : _mm256_setzero_ps();
                transpose8(r);
#pragma GCC unroll 8
                for (int t = 0; t < 8; t++) _mm256_storeu_ps(d + (size_t)(k + t) * SAMC_GEMM_NR, r[t]);
            }
            if (k < kc) {
                __m256i m = tail_mask(kc - k);
                __m256 r[8];
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) r[j] = j < rows ? _mm256_maskload_ps(src[j] + k, m) : _mm256_setzero_ps();
                transpose8(r);
                for (int t = 0; k + t < kc; t++) _mm256_storeu_ps(d + (size_t)(k + t) * SAMC_GEMM_NR, r[t]);
            }
        }
        dst += (size_t)kc * SAMC_GEMM_NR;
    }
}

/* ---------------------------------------------------------------- exp, erf */

/* exp256, erf256, gelu256 (kernels/cpu_fast_vecmath.h, shared with the AVX-512 table). */
#define VM_T __m256
#define VM_M __m256
#define VM_FN(name) name##256
#define VM_SET1 _mm256_set1_ps
#define VM_ADD _mm256_add_ps
#define VM_MUL _mm256_mul_ps
#define VM_DIV _mm256_div_ps
#define VM_MAX _mm256_max_ps
#define VM_MIN _mm256_min_ps
#define VM_FMADD _mm256_fmadd_ps
#define VM_FNMADD _mm256_fnmadd_ps
#define VM_AND _mm256_and_ps
#define VM_OR _mm256_or_ps
#define VM_XOR _mm256_xor_ps
#define VM_ANDNOT _mm256_andnot_ps
#define VM_ROUND(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VM_LDEXP(p, n) \
    _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23)))
#define VM_LE(a, b) _mm256_cmp_ps(a, b, _CMP_LE_OQ)
#define VM_GE(a, b) _mm256_cmp_ps(a, b, _CMP_GE_OQ)
#define VM_SELECT(m, yes, no) _mm256_blendv_ps(no, yes, m)
#include "kernels/cpu_fast_vecmath.h"

static void samc_fast_gelu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu256(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask((int)(n - i));
        _mm256_maskstore_ps(x + i, m, gelu256(_mm256_maskload_ps(x + i, m)));
    }
}

/* ---------------------------------------------------------------- attention, few keys */

/* Queries across the 8 lanes: q rows are transposed to qᵀ[d] vectors, then for each key
 * s_j = Σ_d qᵀ[d]·k[j][d] (k broadcast), the softmax runs across keys as plain vector
 * ops, oᵀ[d] = Σ_j p_j·v[j][d], and oᵀ is transposed back to rows. Each query's result
 * depends only on its own lane. */
void samc_fast_att_small_kv_avx2(const float *q, ptrdiff_t q_st, const float *k, ptrdiff_t k_st,
                              const float *v, ptrdiff_t v_st, float *out, ptrdiff_t o_st,
                              int n_q, int n_kv, int hd, float scale) {
    __m256 qt[64], s[16];
    int nd = (hd + 7) / 8;
    const __m256 sc = _mm256_set1_ps(scale);
    for (int i0 = 0; i0 < n_q; i0 += 8) {
        int nrow = n_q - i0 < 8 ? n_q - i0 : 8;
        for (int db = 0; db < nd; db++) {
            int nt = hd - 8 * db < 8 ? hd - 8 * db : 8;
            __m256i dm = tail_mask(nt);
            __m256 r[8];
            for (int t = 0; t < 8; t++) {
                const float *qr = q + (i0 + t) * q_st + 8 * db;
                r[t] = t >= nrow ? _mm256_setzero_ps() : nt == 8 ? _mm256_loadu_ps(qr) : _mm256_maskload_ps(qr, dm);
            }
            transpose8(r);
            for (int t = 0; t < 8; t++) qt[8 * db + t] = r[t];
        }
        /* Four keys at a time: independent FMA chains hide the FMA latency. */
        int j = 0;
        for (; j + 4 <= n_kv; j += 4) {
            const float *k0 = k + j * k_st, *k1 = k0 + k_st, *k2 = k1 + k_st, *k3 = k2 + k_st;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int d = 0; d < hd; d++) {
                a0 = _mm256_fmadd_ps(qt[d], _mm256_broadcast_ss(k0 + d), a0);
                a1 = _mm256_fmadd_ps(qt[d], _mm256_broadcast_ss(k1 + d), a1);
                a2 = _mm256_fmadd_ps(qt[d], _mm256_broadcast_ss(k2 + d), a2);
                a3 = _mm256_fmadd_ps(qt[d], _mm256_broadcast_ss(k3 + d), a3);
            }
            s[j] = _mm256_mul_ps(a0, sc);
            s[j + 1] = _mm256_mul_ps(a1, sc);
            s[j + 2] = _mm256_mul_ps(a2, sc);
            s[j + 3] = _mm256_mul_ps(a3, sc);
        }
        for (; j < n_kv; j++) {
            const float *kj = k + j * k_st;
            __m256 acc = _mm256_setzero_ps();
            for (int d = 0; d < hd; d++) acc = _mm256_fmadd_ps(qt[d], _mm256_broadcast_ss(kj + d), acc);
            s[j] = _mm256_mul_ps(acc, sc);
        }
        __m256 mx = _mm256_set1_ps(-INFINITY);
        for (j = 0; j < n_kv; j++) mx = _mm256_max_ps(mx, s[j]);
        __m256 sum = _mm256_setzero_ps();
        for (j = 0; j < n_kv; j++) {
            s[j] = exp256(_mm256_sub_ps(s[j], mx));
            sum = _mm256_add_ps(sum, s[j]);
        }
        __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), sum);
        for (int db = 0; db < nd; db++) {
            /* Eight output dims at a time, one chain each. */
            int nt = hd - 8 * db < 8 ? hd - 8 * db : 8;
            const float *vb = v + 8 * db;
            ptrdiff_t vs = v_st;
            float vtail[16 * 8];
            if (nt < 8) { /* a partial block of dims: zero-padded copy, same loop below */
                for (j = 0; j < n_kv; j++)
                    for (int t = 0; t < 8; t++) vtail[8 * j + t] = t < nt ? vb[j * v_st + t] : 0.0f;
                vb = vtail;
                vs = 8;
            }
            __m256 r[8];
#pragma GCC unroll 8
            for (int t = 0; t < 8; t++) r[t] = _mm256_setzero_ps();
            for (j = 0; j < n_kv; j++) {
                const float *vj = vb + j * vs;
#pragma GCC unroll 8
                for (int t = 0; t < 8; t++) r[t] = _mm256_fmadd_ps(s[j], _mm256_broadcast_ss(vj + t), r[t]);
            }
#pragma GCC unroll 8
            for (int t = 0; t < 8; t++) r[t] = _mm256_mul_ps(r[t], inv);
            transpose8(r);
            /* Masked stores are slow on AMD: only for a partial block of dims. */
            if (nt == 8) {
                for (int t = 0; t < nrow; t++) _mm256_storeu_ps(out + (i0 + t) * o_st + 8 * db, r[t]);
            } else {
                __m256i dm = tail_mask(nt);
                for (int t = 0; t < nrow; t++) _mm256_maskstore_ps(out + (i0 + t) * o_st + 8 * db, dm, r[t]);
            }
        }
    }
}

/* ---------------------------------------------------------------- softmax pieces */

static float samc_fast_scale_max_avx2(float *s, int n, float scale) {
    __m256 sc = _mm256_set1_ps(scale), mx = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + i), sc);
        _mm256_storeu_ps(s + i, v);
        mx = _mm256_max_ps(mx, v);
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(s + i, m), sc);
        _mm256_maskstore_ps(s + i, m, v);
        mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, _mm256_castsi256_ps(m)));
    }
    return hmax(mx);
}

static float samc_fast_exp_sum_avx2(float *s, int n, float mval) {
    __m256 mv = _mm256_set1_ps(mval), sum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + i), mv));
        _mm256_storeu_ps(s + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 e = exp256(_mm256_sub_ps(_mm256_maskload_ps(s + i, m), mv));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(s + i, m, e);
        sum = _mm256_add_ps(sum, e);
    }
    return hsum(sum);
}

static void samc_fast_scale_avx2(float *x, int n, float f) {
    __m256 fv = _mm256_set1_ps(f);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), fv));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), fv));
    }
}

/* ---------------------------------------------------------------- element-wise */

/* x = x > 0 ? x : 0. max_ps(x, 0) returns its second operand for NaN and for -0, as the
 * comparison does, so the bits are the reference's; no branch on the sign (a scalar
 * loop's compare-and-jump mispredicts on half the values of a feature map). */
void samc_fast_relu_avx2(float *x, size_t n) {
    __m256 z = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_max_ps(_mm256_loadu_ps(x + i), z));
    if (i < n) {
        __m256i m = tail_mask((int)(n - i));
        _mm256_maskstore_ps(x + i, m, _mm256_max_ps(_mm256_maskload_ps(x + i, m), z));
    }
}

/* dst = a + b; dst may be a or b. */
void samc_fast_add_avx2(float *dst, const float *a, const float *b, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    if (i < n) {
        __m256i m = tail_mask((int)(n - i));
        _mm256_maskstore_ps(dst + i, m, _mm256_add_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m)));
    }
}

/* s += b; returns the max of the new s (-inf when all are -inf). */
float samc_fast_add_max_avx2(float *s, const float *b, int n) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(s + i), _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(s + i, v);
        mx = _mm256_max_ps(mx, v);
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_add_ps(_mm256_maskload_ps(s + i, m), _mm256_maskload_ps(b + i, m));
        _mm256_maskstore_ps(s + i, m, v);
        mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, _mm256_castsi256_ps(m)));
    }
    return hmax(mx);
}

/* GroupNorm's statistics of one group's n values, in double as the reference
 * (samc_ref_group_stats), summed in four lanes of two vectors instead of one chain (the
 * chain's add latency bounded it at a value per 4 cycles), reduced in a fixed order:
 * the result depends on n and the values only. Two passes: mean, then centred squares. */
void samc_fast_group_stats_avx2(const float *x, size_t n, float eps, double *mean, double *inv) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    __m256i tm = tail_mask((int)(n - i));
    if (i < n) {
        __m256 v = _mm256_maskload_ps(x + i, tm);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double l[8];
    _mm256_storeu_pd(l, s0);
    _mm256_storeu_pd(l + 4, s1);
    double sum = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
    double mu = sum / (double)n;
    __m256d mv = _mm256_set1_pd(mu), q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), mv);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), mv);
        q0 = _mm256_add_pd(q0, _mm256_mul_pd(d0, d0));
        q1 = _mm256_add_pd(q1, _mm256_mul_pd(d1, d1));
    }
    if (i < n) {
        /* lanes past n: (0 - mu) masked to 0 before squaring */
        __m256 v = _mm256_maskload_ps(x + i, tm);
        __m256i t0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(tm));
        __m256i t1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(tm, 1));
        __m256d d0 = _mm256_and_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), mv), _mm256_castsi256_pd(t0));
        __m256d d1 = _mm256_and_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), mv), _mm256_castsi256_pd(t1));
        q0 = _mm256_add_pd(q0, _mm256_mul_pd(d0, d0));
        q1 = _mm256_add_pd(q1, _mm256_mul_pd(d1, d1));
    }
    _mm256_storeu_pd(l, q0);
    _mm256_storeu_pd(l + 4, q1);
    double sq = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
    *mean = mu;
    *inv = 1.0 / sqrt(sq / (double)n + eps);
}

/* GroupNorm's y = (x - mean) * inv * w + b for one channel, the reference's operations
 * in its order (samc_ref_group_apply): the same bits. */
void samc_fast_group_apply_avx2(const float *x, float *y, int n, double mean, double inv, float w, float b) {
    __m256 m = _mm256_set1_ps((float)mean), s = _mm256_set1_ps((float)inv), wv = _mm256_set1_ps(w),
           bv = _mm256_set1_ps(b);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), s), wv);
        _mm256_storeu_ps(y + i, _mm256_add_ps(v, bv));
    }
    if (i < n) {
        __m256i tm = tail_mask(n - i);
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, tm), m), s), wv);
        _mm256_maskstore_ps(y + i, tm, _mm256_add_ps(v, bv));
    }
}

/* The rotary embedding of one head's hd = 2·half values (pairs re, im):
 * re' = re·c - im·s, im' = re·s + im·c, as the reference's separate products and sum
 * (p·c + swap(p)·(∓s) per lane: the same two roundings, so its bits), 4 pairs a vector,
 * the tail by the reference itself. */
void samc_fast_rope_head_avx2(float *p, const float *c, const float *s, int half) {
    const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m256 flip = _mm256_setr_ps(-0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f);
    int i = 0;
    for (; i + 4 <= half; i += 4) {
        __m256 v = _mm256_loadu_ps(p + 2 * i);
        __m256 cv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(c + i)), dup);
        __m256 sv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(s + i)), dup);
        __m256 sw = _mm256_permute_ps(v, 0xB1); /* im, re per pair */
        _mm256_storeu_ps(p + 2 * i, _mm256_add_ps(_mm256_mul_ps(v, cv), _mm256_mul_ps(sw, _mm256_xor_ps(sv, flip))));
    }
    samc_ref_rope_head(p + 2 * i, c + i, s + i, half - i);
}

/* ---------------------------------------------------------------- layer norms */

/* nn.LayerNorm over each row: two passes (mean, then centred variance) as the
 * reference, vector partial sums reduced in a fixed order. */
void samc_fast_layer_norm_rows_avx2(const float *x, const float *w, const float *b, float *y,
                                 int rows, int dim, float eps) {
    int full = dim & ~7, rem = dim - full;
    __m256i tm = tail_mask(rem);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        __m256 s = _mm256_setzero_ps();
        for (int i = 0; i < full; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(xr + i));
        if (rem) s = _mm256_add_ps(s, _mm256_maskload_ps(xr + full, tm));
        float mean = hsum(s) / (float)dim;
        __m256 mv = _mm256_set1_ps(mean), v = _mm256_setzero_ps();
        for (int i = 0; i < full; i += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + i), mv);
            v = _mm256_fmadd_ps(d, d, v);
        }
        if (rem) {
            __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + full, tm), mv), _mm256_castsi256_ps(tm));
            v = _mm256_fmadd_ps(d, d, v);
        }
        float inv = 1.0f / sqrtf(hsum(v) / (float)dim + eps);
        __m256 iv = _mm256_set1_ps(inv);
        for (int i = 0; i < full; i += 8) {
            __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), mv), iv);
            _mm256_storeu_ps(yr + i, _mm256_fmadd_ps(d, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
        }
        if (rem) {
            __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + full, tm), mv), iv);
            _mm256_maskstore_ps(yr + full, tm,
                                _mm256_fmadd_ps(d, _mm256_maskload_ps(w + full, tm), _mm256_maskload_ps(b + full, tm)));
        }
    }
}

/* LayerNorm2d (sam2 modeling/sam2_utils.py) on 16 pixels at p of x[C, HW], two vectors
 * so that each channel row is read in whole cache lines. FULL: all 16 present (plain
 * loads and stores), else masks m0/m1. */
static inline __attribute__((always_inline)) void ln2d_block(
    const int FULL, const float *xp, const float *w, const float *b, float *yp, int C, int HW,
    __m256i m0, __m256i m1, float eps) {
#define LD(ptr, m) (FULL ? _mm256_loadu_ps(ptr) : _mm256_maskload_ps(ptr, m))
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (int c = 0; c < C; c++) {
        s0 = _mm256_add_ps(s0, LD(xp + (size_t)c * HW, m0));
        s1 = _mm256_add_ps(s1, LD(xp + (size_t)c * HW + 8, m1));
    }
    __m256 cf = _mm256_set1_ps((float)C);
    __m256 mean0 = _mm256_div_ps(s0, cf), mean1 = _mm256_div_ps(s1, cf);
    __m256 v0 = _mm256_setzero_ps(), v1 = _mm256_setzero_ps();
    for (int c = 0; c < C; c++) {
        __m256 d0 = _mm256_sub_ps(LD(xp + (size_t)c * HW, m0), mean0);
        __m256 d1 = _mm256_sub_ps(LD(xp + (size_t)c * HW + 8, m1), mean1);
        v0 = _mm256_fmadd_ps(d0, d0, v0);
        v1 = _mm256_fmadd_ps(d1, d1, v1);
    }
    __m256 e = _mm256_set1_ps(eps), one = _mm256_set1_ps(1.0f);
    __m256 i0 = _mm256_div_ps(one, _mm256_sqrt_ps(_mm256_add_ps(_mm256_div_ps(v0, cf), e)));
    __m256 i1 = _mm256_div_ps(one, _mm256_sqrt_ps(_mm256_add_ps(_mm256_div_ps(v1, cf), e)));
    for (int c = 0; c < C; c++) {
        __m256 wc = _mm256_set1_ps(w[c]), bc = _mm256_set1_ps(b[c]);
        __m256 d0 = _mm256_mul_ps(_mm256_sub_ps(LD(xp + (size_t)c * HW, m0), mean0), i0);
        __m256 d1 = _mm256_mul_ps(_mm256_sub_ps(LD(xp + (size_t)c * HW + 8, m1), mean1), i1);
        if (FULL) {
            _mm256_storeu_ps(yp + (size_t)c * HW, _mm256_fmadd_ps(d0, wc, bc));
            _mm256_storeu_ps(yp + (size_t)c * HW + 8, _mm256_fmadd_ps(d1, wc, bc));
        } else {
            _mm256_maskstore_ps(yp + (size_t)c * HW, m0, _mm256_fmadd_ps(d0, wc, bc));
            _mm256_maskstore_ps(yp + (size_t)c * HW + 8, m1, _mm256_fmadd_ps(d1, wc, bc));
        }
    }
#undef LD
}

void samc_fast_layer_norm2d_span_avx2(const float *x, const float *w, const float *b, float *y,
                                   int C, int HW, int p0, int p1, float eps) {
    for (int p = p0; p < p1; p += 16) {
        int np = p1 - p < 16 ? p1 - p : 16;
        __m256i m0 = tail_mask(np < 8 ? np : 8), m1 = tail_mask(np > 8 ? np - 8 : 0);
        if (np == 16) ln2d_block(1, x + p, w, b, y + p, C, HW, m0, m1, eps);
        else ln2d_block(0, x + p, w, b, y + p, C, HW, m0, m1, eps);
    }
}

const samc_fast_kernels samc_fast_kernels_avx2 = {
    .isa = "avx2+fma",
    .mr = SAMC_GEMM_MR,
    .nr = SAMC_GEMM_NR,
    .gemm_ukernel = ukernel_avx2,
    SAMC_FAST_AVX2_SHARED_ENTRIES,
    .scale_max = samc_fast_scale_max_avx2, .exp_sum = samc_fast_exp_sum_avx2, .scale = samc_fast_scale_avx2,
    .gelu = samc_fast_gelu_avx2,
};
#endif
