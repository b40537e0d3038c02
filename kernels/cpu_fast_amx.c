/* kernels/cpu_fast_amx.c: cpu_fast's bf16 GEMM on Intel AMX (Sapphire Rapids and later),
 * for --precision bf16 on the CPU (cpu_fast.c: set_precision, gemm_rect_amx). Compiled
 * with -mamx-tile -mamx-bf16 -mavx512f -mavx512bw -mavx512vl -mavx512bf16 (the Makefile
 * rule for kernels/ files ending in _amx.c) and only called after samc_fast_amx_usable
 * said yes.
 *
 * Why: the fp32 GEMM micro-kernels already run near the FMA units' limit (2 x 16 FMAs a
 * cycle per core); one TDPBF16PS does 16 x 16 x 32 multiply-adds, 16 times that rate.
 * The inputs are rounded to bf16 (round to nearest even, as the CUDA backend's bf16 and
 * torch.autocast's are), products and sums are fp32.
 *
 * Layouts (all set up by the packers below, so the tile loads are plain strided reads):
 *   A: rows of bf16, kcp values each (kcp: the K block rounded up to 32, zeros past kc),
 *      row stride lda values; a tile is 16 rows x 32 values (64 bytes).
 *   B: a panel of 16 columns in the "VNNI" pairing the instruction wants: row r holds,
 *      for each column j, the two values of k = 2r and 2r + 1 side by side; kcp / 2 rows
 *      of 64 bytes; a tile is 16 rows (32 values of k). Two panels side by side in memory
 *      (the second kcp·16 values after the first) give a 32-column tile pair.
 *   C: fp32, four 16 x 16 accumulator tiles (tmm0..3), A tiles tmm4..5, B tiles tmm6..7.
 *
 * Determinism: each element of C is, for each K block in order, the same sequence of
 * tile products (the hardware's fixed pairwise order within one), then + bias_n, +
 * bias_m: the same bits for any thread count and task split. */
#include "kernels/cpu_fast_kernels.h"
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Linux's request for the AMX tile data state (arch/x86/include/uapi/asm/prctl.h). */
#define SAMC_ARCH_REQ_XCOMP_PERM 0x1023
#define SAMC_XFEATURE_XTILEDATA 18

int samc_fast_amx_usable(char *why, size_t n) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 22))) {
        snprintf(why, n, "this CPU has no AMX-BF16 matrix unit (Intel Xeon 4th generation, Sapphire Rapids, or later)");
        return 0;
    }
    unsigned a1 = 0, b1, c1, d1;
    if (!__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) || !(a1 & (1u << 5)) ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl")) {
        snprintf(why, n, "this CPU has AMX but not AVX512-BF16 / AVX512BW / AVX512VL");
        return 0;
    }
    /* The OS must save the tile state (XCR0 bits 17, 18) and grant it to this process. */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) {
        snprintf(why, n, "the operating system does not enable the AMX tile state (XCR0)");
        return 0;
    }
    if (syscall(SYS_arch_prctl, SAMC_ARCH_REQ_XCOMP_PERM, SAMC_XFEATURE_XTILEDATA) != 0) {
        snprintf(why, n, "the kernel refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM; Linux 5.16 or later)");
        return 0;
    }
    return 1;
}

/* Palette 1, all eight tiles 16 rows x 64 bytes (the layouts above). Per thread: each
 * GEMM rectangle loads it on its own thread and releases it at the end. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tilecfg;

/* A constant, not a local filled in a loop: GCC 12 does not see _tile_loadconfig read
 * its argument and dropped the stores to a local one. */
static const amx_tilecfg tilecfg __attribute__((aligned(64))) = {
    .palette = 1,
    .colsb = { 64, 64, 64, 64, 64, 64, 64, 64 },
    .rows = { 16, 16, 16, 16, 16, 16, 16, 16 },
};

void samc_fast_amx_begin(void) { _tile_loadconfig(&tilecfg); }

void samc_fast_amx_end(void) { _tile_release(); }

/* 32 fp32 -> 32 bf16 (round to nearest even), lanes past n read as 0. */
static inline __m512i cvt32(const float *src, int n) {
    __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << (n > 0 ? n : 0)) - 1);
    __mmask16 m1 = n >= 32 ? 0xffff : (__mmask16)((1u << (n > 16 ? n - 16 : 0)) - 1);
    __m512 lo = _mm512_maskz_loadu_ps(m0, src), hi = _mm512_maskz_loadu_ps(m1, src + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

void samc_fast_amx_pack_a(const float *a, ptrdiff_t lda, int mr, int kc, uint16_t *dst, int ldd) {
    int kcp = (kc + 31) / 32 * 32, mrp = (mr + 15) / 16 * 16;
    for (int i = 0; i < mrp; i++) {
        const float *src = a + (ptrdiff_t)i * lda;
        uint16_t *d = dst + (ptrdiff_t)i * ldd;
        for (int k = 0; k < kcp; k += 32)
            _mm512_storeu_si512(d + k, i < mr ? cvt32(src + k, kc - k) : _mm512_setzero_si512());
    }
}

void samc_fast_amx_pack_b(const float *panel, int kc, uint16_t *dst) {
    /* Row r of the result interleaves rows 2r and 2r+1 of the panel: lane 2j takes
     * column j of row 2r (the low half of the conversion), lane 2j+1 column j of row
     * 2r+1 (the high half). */
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    int kcp = (kc + 31) / 32 * 32;
    for (int k = 0; k < kcp; k += 2) {
        __m512 r0 = k < kc ? _mm512_loadu_ps(panel + (size_t)k * SAMC_GEMM_NR) : _mm512_setzero_ps();
        __m512 r1 = k + 1 < kc ? _mm512_loadu_ps(panel + (size_t)(k + 1) * SAMC_GEMM_NR) : _mm512_setzero_ps();
        __m512i v = (__m512i)_mm512_cvtne2ps_pbh(r1, r0);
        _mm512_storeu_si512(dst + (size_t)k * SAMC_GEMM_NR, _mm512_permutexvar_epi16(idx, v));
    }
}

/* 2^t for t <= 126 (t = n + r, n = round(t), |r| <= 1/2): 1 + r·(a1 + r·(a2 + r·(a3 + r·a4)))
 * (fitted by weighted least squares for this project: relative error 3.1e-6, 600 times
 * below a bf16 rounding), scaled by 2^n with scalef, which goes to 0 below 2^-149; t
 * below -150 (-inf from a masked key) is clamped there first. */
static inline __m512 exp2_bf16(__m512 t) {
    t = _mm512_max_ps(t, _mm512_set1_ps(-150.0f));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(0.00960043165832758f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.055916860699653625f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.24023717641830444f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.6931220293045044f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* GELU for the bf16 phase, whose next product rounds it to bf16 anyway: x·Φ(x) with
 * Φ(x) = 1 - q/2 (x >= 0) or q/2 (x < 0), q = erfc(|x|/√2) by Abramowitz & Stegun 7.1.26
 * (t = 1/(1 + p·z), q = t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))·e^(-z²), within 1.5e-7
 * of erfc), the reciprocal by rcp14 and one Newton step, e^(-z²) by exp2_bf16: no
 * division and about half the fp32 table's operations (its erf has two branches, a
 * division and a full-precision exp); within 4e-7·(|x| + 1) of the exact GELU (measured
 * on [-30, 30]: at most 6.3e-7), far below the bf16 rounding of the next product. */
static inline __m512 gelu_bf16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    __m512 d = _mm512_fmadd_ps(z, _mm512_set1_ps(0.3275911f), one);
    __m512 t = _mm512_rcp14_ps(d);
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    /* e^(-z²) = 2^(-z²·log2 e) */
    __m512 e = exp2_bf16(_mm512_mul_ps(_mm512_mul_ps(z, z), _mm512_set1_ps(-1.44269504088896341f)));
    __m512 hq = _mm512_mul_ps(_mm512_mul_ps(p, e), half);
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 phi = _mm512_mask_blend_ps(neg, _mm512_sub_ps(one, hq), hq);
    return _mm512_mul_ps(x, phi);
}

void samc_fast_amx_gelu(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, gelu_bf16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, gelu_bf16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

float samc_fast_amx_max_row(const float *s, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + i));
    if (i < n) mx = _mm512_mask_max_ps(mx, (__mmask16)((1u << (n - i)) - 1), mx, _mm512_maskz_loadu_ps((__mmask16)((1u << (n - i)) - 1), s + i));
    return _mm512_reduce_max_ps(mx);
}

float samc_fast_amx_exp_row(const float *s, int n, float c, float off, uint16_t *dst) {
    const __m512 cv = _mm512_set1_ps(c), ov = _mm512_set1_ps(off);
    __m512 sum = _mm512_setzero_ps();
    int np = (n + 31) / 32 * 32;
    for (int i = 0; i < np; i += 32) {
        int k = n - i;
        __mmask16 m0 = k >= 16 ? 0xffff : (__mmask16)((1u << (k > 0 ? k : 0)) - 1);
        __mmask16 m1 = k >= 32 ? 0xffff : (__mmask16)((1u << (k > 16 ? k - 16 : 0)) - 1);
        __m512 lo = _mm512_maskz_mov_ps(m0, exp2_bf16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m0, s + i), cv, ov)));
        __m512 hi = _mm512_maskz_mov_ps(m1, exp2_bf16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m1, s + i + 16), cv, ov)));
        sum = _mm512_add_ps(sum, _mm512_add_ps(lo, hi));
        _mm512_storeu_si512(dst + i, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
    return _mm512_reduce_add_ps(sum);
}

/* C's tile (ti, tj) of an mr x nr block: its rows and columns inside the block. */
static inline int tile_rows(int mr, int ti) { int r = mr - 16 * ti; return r > 16 ? 16 : r; }
static inline int tile_cols(int nr, int tj) { int c = nr - 16 * tj; return c > 16 ? 16 : c; }

/* One accumulator tile in from C (accumulating) or zeroed; partial tiles go through t. */
#define TILE_IN(T, ti, tj)                                                                        \
    do {                                                                                          \
        int rr = tile_rows(mr, ti), cc = tile_cols(nr, tj);                                       \
        float *cp = c + (ptrdiff_t)(16 * ti) * ldc + 16 * tj;                                     \
        if (!accumulate) _tile_zero(T);                                                           \
        else if (rr == 16 && cc == 16) _tile_loadd(T, cp, (int)(ldc * sizeof(float)));            \
        else {                                                                                    \
            memset(t, 0, sizeof t);                                                               \
            for (int i = 0; i < rr; i++) memcpy(t[i], cp + (ptrdiff_t)i * ldc, cc * sizeof(float)); \
            _tile_loadd(T, t, 64);                                                                \
        }                                                                                         \
    } while (0)

/* One accumulator tile out to C, + bias_n, + bias_m on the last K block. (Starting the
 * sums from the bias instead, by a stride-0 tile load of the bias row, was measured
 * slower: 5184 x 4736 x 1024 went from 28 to 33 ms, 65536 x 144 x 576 from 13 to 15.) */
#define TILE_OUT(T, ti, tj)                                                                       \
    do {                                                                                          \
        int rr = tile_rows(mr, ti), cc = tile_cols(nr, tj);                                       \
        float *cp = c + (ptrdiff_t)(16 * ti) * ldc + 16 * tj;                                     \
        if (rr == 16 && cc == 16) _tile_stored(T, cp, (int)(ldc * sizeof(float)));                \
        else {                                                                                    \
            _tile_stored(T, t, 64);                                                               \
            for (int i = 0; i < rr; i++) memcpy(cp + (ptrdiff_t)i * ldc, t[i], cc * sizeof(float)); \
        }                                                                                         \
        if (bias_n || bias_m) add_bias(cp, ldc, rr, cc, bias_n ? bias_n + 16 * tj : NULL,          \
                                       bias_m ? bias_m + 16 * ti : NULL);                         \
    } while (0)

static void add_bias(float *c, ptrdiff_t ldc, int rows, int cols, const float *bn, const float *bm) {
    __mmask16 m = (__mmask16)((1u << cols) - 1);
    __m512 vb = bn ? _mm512_maskz_loadu_ps(m, bn) : _mm512_setzero_ps();
    for (int i = 0; i < rows; i++) {
        float *row = c + (ptrdiff_t)i * ldc;
        __m512 v = _mm512_maskz_loadu_ps(m, row);
        if (bn) v = _mm512_add_ps(v, vb);
        if (bm) v = _mm512_add_ps(v, _mm512_set1_ps(bm[i]));
        _mm512_mask_storeu_ps(row, m, v);
    }
}

void samc_fast_amx_tiles(int kc, const uint16_t *a, int lda, const uint16_t *bp, float *c, ptrdiff_t ldc,
                         int mr, int nr, int accumulate, const float *bias_n, const float *bias_m) {
    float t[16][16] __attribute__((aligned(64)));
    int kcp = (kc + 31) / 32 * 32, two_m = mr > 16, two_n = nr > 16;
    const uint16_t *a1 = a + (ptrdiff_t)16 * lda, *b1 = bp + (size_t)kcp * SAMC_GEMM_NR;
    const int sa = lda * 2;
    TILE_IN(0, 0, 0);
    if (two_n) TILE_IN(1, 0, 1);
    if (two_m) TILE_IN(2, 1, 0);
    if (two_m && two_n) TILE_IN(3, 1, 1);
    /* Four shapes, each its own loop so that the tile numbers are constants. */
    if (two_m && two_n) {
        for (int k = 0; k < kcp; k += 32) {
            _tile_loadd(4, a + k, sa);
            _tile_loadd(6, bp + (size_t)k * SAMC_GEMM_NR, 64);
            _tile_loadd(7, b1 + (size_t)k * SAMC_GEMM_NR, 64);
            _tile_loadd(5, a1 + k, sa);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    } else if (two_n) {
        for (int k = 0; k < kcp; k += 32) {
            _tile_loadd(4, a + k, sa);
            _tile_loadd(6, bp + (size_t)k * SAMC_GEMM_NR, 64);
            _tile_loadd(7, b1 + (size_t)k * SAMC_GEMM_NR, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
        }
    } else if (two_m) {
        for (int k = 0; k < kcp; k += 32) {
            _tile_loadd(4, a + k, sa);
            _tile_loadd(5, a1 + k, sa);
            _tile_loadd(6, bp + (size_t)k * SAMC_GEMM_NR, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(2, 5, 6);
        }
    } else {
        for (int k = 0; k < kcp; k += 32) {
            _tile_loadd(4, a + k, sa);
            _tile_loadd(6, bp + (size_t)k * SAMC_GEMM_NR, 64);
            _tile_dpbf16ps(0, 4, 6);
        }
    }
    /* the biases only with the last K block: the caller passes them then */
    TILE_OUT(0, 0, 0);
    if (two_n) TILE_OUT(1, 0, 1);
    if (two_m) TILE_OUT(2, 1, 0);
    if (two_m && two_n) TILE_OUT(3, 1, 1);
}

#else /* not x86-64: no AMX */
#include <stdio.h>
int samc_fast_amx_usable(char *why, size_t n) {
    snprintf(why, n, "AMX is an x86-64 instruction set");
    return 0;
}
void samc_fast_amx_begin(void) {}
void samc_fast_amx_end(void) {}
void samc_fast_amx_pack_a(const float *a, ptrdiff_t lda, int mr, int kc, uint16_t *dst, int ldd) {}
void samc_fast_amx_pack_b(const float *panel, int kc, uint16_t *dst) {}
float samc_fast_amx_max_row(const float *s, int n) { return 0.0f; }
void samc_fast_amx_gelu(float *x, size_t n) {}
float samc_fast_amx_exp_row(const float *s, int n, float c, float off, uint16_t *dst) { return 0.0f; }
void samc_fast_amx_tiles(int kc, const uint16_t *a, int lda, const uint16_t *bp, float *c, ptrdiff_t ldc,
                         int mr, int nr, int accumulate, const float *bias_n, const float *bias_m) {}
#endif
