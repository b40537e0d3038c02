/* kernels/cpu_fast_kernels.h: the inner-kernel table each instruction set provides to
 * cpu_fast.c (drivers, threading, portable kernels); cpu_fast_avx2.c is the AVX2+FMA one,
 * cpu_fast_avx512.c the AVX-512 one (its own GEMM micro-kernel, the AVX2 kernels for the
 * rest).
 * Not part of the public interface.
 *
 * The drivers block the work and hand small pieces to a table of inner kernels; there
 * is one table per instruction set and the one the CPU supports is chosen at create
 * time. Every inner kernel computes each output element with the same sequence of
 * operations wherever that element falls in a block or a vector (edges and tails go
 * through the same vector code with masks), so results are bit-identical for any
 * thread count and any task split. */
#ifndef SAMC_CPU_FAST_KERNELS_H
#define SAMC_CPU_FAST_KERNELS_H
#include "kernels/ops.h"
#include <stddef.h>
#include <stdint.h>

/* GEMM register block: the micro-kernel produces an mr x nr tile of C, mr and nr at most
 * the table's own tile height and width (6 x 16 for the scalar and AVX2 tables,
 * SAMC_GEMM_MR x SAMC_GEMM_NR; 12 x 32 for AVX-512). The drivers read both from the
 * table; every table's packed panels are 16 wide, a 32-wide tile reads two of them. Each element of C
 * is the same k-ordered chain of FMAs (then + C, + bias_n, + bias_m) in every table that
 * has FMA, so the tile shape changes speed, never bits. */
#define SAMC_GEMM_MR 6
#define SAMC_GEMM_NR 16

typedef struct {
    const char *isa;
    /* Tile height of gemm_ukernel: the most rows one call takes. */
    int mr;
    /* Tile width: the most columns one call takes, SAMC_GEMM_NR (one panel) or
     * 2·SAMC_GEMM_NR (two panels, the second kc rows after the first). */
    int nr;
    /* Nonzero: the GEMM driver copies each block of A rows to a buffer with a short row
     * stride before the micro-kernel reads it (a tall tile's rows K floats apart can
     * exceed L1's ways); only where the copy is exact, so results do not change. */
    int copy_a;
    /* C[mr x nr] = (accumulate ? C : 0) + A[mr x kc] · B[kc x nr] (+ bias_n[j]) (+ bias_m[i])
     * A row i at a + i*lda, contiguous in k. B row k of columns 0..15 is the 16 floats
     * at bp + k*ldb (a packed panel has ldb = 16; all 16 must be readable, those past nr
     * are ignored); columns 16..31 (nr > 16) are the next panel, at bp + (kc + k)*ldb.
     * C row i at c + i*ldc. 1 <= mr <= the table's mr, 1 <= nr <= its nr; bias_n (per column,
     * nr values) and bias_m (per row, mr values) may be NULL. */
    void (*gemm_ukernel)(int kc, const float *a, ptrdiff_t lda, const float *bp, ptrdiff_t ldb,
                         float *c, ptrdiff_t ldc, int mr, int nr, int accumulate,
                         const float *bias_n, const float *bias_m);
    /* Pack B[kc x nc] into ceil(nc/16) panels of kc rows x 16 floats, zero past nc:
     * pack_rows for B(k,n) = b[k*ldb + n], pack_cols for B(k,n) = b[n*ldb + k]. */
    void (*pack_rows)(const float *b, ptrdiff_t ldb, int kc, int nc, float *dst);
    void (*pack_cols)(const float *b, ptrdiff_t ldb, int kc, int nc, float *dst);
    /* dst[c*ldd + r] = src[r*lds + c] for r < rows, c < cols. */
    void (*transpose)(const float *src, ptrdiff_t lds, int rows, int cols, float *dst, ptrdiff_t ldd);
    /* Attention rows for very few keys (n_kv <= 16, head_dim <= 64: the mask decoder's
     * image->token attention), 8 queries per vector lane group; NULL when the table
     * has none (the blocked path then runs). q/k/v/out point at row 0 of one head. */
    void (*att_small_kv)(const float *q, ptrdiff_t q_st, const float *k, ptrdiff_t k_st,
                         const float *v, ptrdiff_t v_st, float *out, ptrdiff_t o_st,
                         int n_q, int n_kv, int hd, float scale);
    /* s[i] *= scale for i < n; returns the max of the scaled values. */
    float (*scale_max)(float *s, int n, float scale);
    /* s[i] = exp(s[i] - m); returns their sum. */
    float (*exp_sum)(float *s, int n, float m);
    /* x[i] *= f */
    void (*scale)(float *x, int n, float f);
    /* Exact-erf GELU in place. */
    void (*gelu)(float *x, size_t n);
    /* LayerNorm over the last dim for `rows` rows of `dim`. */
    void (*layer_norm_rows)(const float *x, const float *w, const float *b, float *y,
                            int rows, int dim, float eps);
    /* LayerNorm2d for pixels [p0, p1) of x[C, HW]. */
    void (*layer_norm2d_span)(const float *x, const float *w, const float *b, float *y,
                              int C, int HW, int p0, int p1, float eps);
    /* x = x > 0 ? x : 0 (NaN and -0 give +0, as the comparison does). */
    void (*relu)(float *x, size_t n);
    /* dst = a + b element-wise (dst may be a or b). */
    void (*add)(float *dst, const float *a, const float *b, size_t n);
    /* s += b; returns the max of the new s. */
    float (*add_max)(float *s, const float *b, int n);
    /* GroupNorm: one group's mean and 1/sqrt(var + eps) (double sums; the order may differ
     * from the reference's, the result depends on n and the values only), and one
     * channel's (x - mean)·inv·w + b in the reference's operations and order. */
    void (*group_stats)(const float *x, size_t n, float eps, double *mean, double *inv);
    void (*group_apply)(const float *x, float *y, int n, double mean, double inv, float w, float b);
    /* The rotary embedding of one head of 2·half values (pairs re, im) by c[half], s[half]:
     * the reference's operations (samc_ref_rope_head), the same bits. */
    void (*rope_head)(float *p, const float *c, const float *s, int half);
} samc_fast_kernels;

#if defined(__x86_64__) || defined(__i386__)
#define SAMC_FAST_HAVE_AVX2_BUILD 1
extern const samc_fast_kernels samc_fast_kernels_avx2;
extern const samc_fast_kernels samc_fast_kernels_avx512;
/* The AVX2 kernels the AVX-512 table shares (one copy of each, bit-identical results). */
void samc_fast_pack_rows_avx2(const float *b, ptrdiff_t ldb, int kc, int nc, float *dst);
void samc_fast_pack_cols_avx2(const float *b, ptrdiff_t ldb, int kc, int nc, float *dst);
void samc_fast_transpose_avx2(const float *src, ptrdiff_t lds, int rows, int cols, float *dst, ptrdiff_t ldd);
void samc_fast_att_small_kv_avx2(const float *q, ptrdiff_t q_st, const float *k, ptrdiff_t k_st,
                                 const float *v, ptrdiff_t v_st, float *out, ptrdiff_t o_st,
                                 int n_q, int n_kv, int hd, float scale);
void samc_fast_layer_norm_rows_avx2(const float *x, const float *w, const float *b, float *y,
                                    int rows, int dim, float eps);
void samc_fast_layer_norm2d_span_avx2(const float *x, const float *w, const float *b, float *y,
                                      int C, int HW, int p0, int p1, float eps);
void samc_fast_relu_avx2(float *x, size_t n);
void samc_fast_add_avx2(float *dst, const float *a, const float *b, size_t n);
float samc_fast_add_max_avx2(float *s, const float *b, int n);
void samc_fast_group_stats_avx2(const float *x, size_t n, float eps, double *mean, double *inv);
void samc_fast_group_apply_avx2(const float *x, float *y, int n, double mean, double inv, float w, float b);
void samc_fast_rope_head_avx2(float *p, const float *c, const float *s, int half);
/* Those shared entries, for both tables' initialisers (scale_max, exp_sum, scale and gelu
 * are the AVX2 table's only: the AVX-512 table has its own, same bits). */
#define SAMC_FAST_AVX2_SHARED_ENTRIES \
    .pack_rows = samc_fast_pack_rows_avx2, .pack_cols = samc_fast_pack_cols_avx2, \
    .transpose = samc_fast_transpose_avx2, .att_small_kv = samc_fast_att_small_kv_avx2, \
    .layer_norm_rows = samc_fast_layer_norm_rows_avx2, .layer_norm2d_span = samc_fast_layer_norm2d_span_avx2, \
    .relu = samc_fast_relu_avx2, .add = samc_fast_add_avx2, .add_max = samc_fast_add_max_avx2, \
    .group_stats = samc_fast_group_stats_avx2, .group_apply = samc_fast_group_apply_avx2, \
    .rope_head = samc_fast_rope_head_avx2
#endif

/* bf16 GEMMs on Intel AMX (cpu_fast_amx.c; --precision bf16 on the CPU). */
/* 1 when this CPU and OS can run them (AMX-TILE, AMX-BF16, AVX512-BF16, the tile state
 * enabled and granted to the process: the grant is asked for here), else 0 and why. */
int samc_fast_amx_usable(char *why, size_t n);
/* Load the tile configuration on this thread / release the tiles. */
void samc_fast_amx_begin(void);
void samc_fast_amx_end(void);
/* mr rows of kc fp32 values (row stride lda) -> bf16 rows of kcp = kc rounded up to 32
 * values (zeros past kc), row stride ldd; rows mr .. mr rounded up to 16 are zeros. */
void samc_fast_amx_pack_a(const float *a, ptrdiff_t lda, int mr, int kc, uint16_t *dst, int ldd);
/* One packed fp32 panel (kc rows x 16 columns, pack_rows / pack_cols) -> the bf16 pair
 * layout of an AMX B tile: kcp / 2 rows of 16 (k, k+1) pairs, zeros past kc. */
void samc_fast_amx_pack_b(const float *panel, int kc, uint16_t *dst);
/* GELU in the bf16 phase (its consumer rounds it to bf16): within 4e-7·(|x| + 1) of the
 * exact one, without the fp32 table's division. */
void samc_fast_amx_gelu(float *x, size_t n);
/* The max of s[0, n). */
float samc_fast_amx_max_row(const float *s, int n);
/* Softmax numerators straight into a pack_a row: dst[i] = bf16(2^(s[i]·c - off)) for
 * i < n (c = scale·log2 e, off = the reference max·log2 e: the scaling of the scores
 * folded in; 2^t to 3.1e-6 relative, below a bf16 rounding), zeros up to n rounded to
 * 32; returns the sum of the fp32 values. */
float samc_fast_amx_exp_row(const float *s, int n, float c, float off, uint16_t *dst);
/* C[mr x nr] = (accumulate ? C : 0) + A · B (+ bias_n[j]) (+ bias_m[i]) for mr, nr <= 32:
 * A the bf16 rows of pack_a (row stride lda, at least mr rounded up to 16 rows), B one
 * or two pack_b panels one after the other (kcp·16 values apart). */
void samc_fast_amx_tiles(int kc, const uint16_t *a, int lda, const uint16_t *bp, float *c, ptrdiff_t ldc,
                         int mr, int nr, int accumulate, const float *bias_n, const float *bias_m);

/* For tests and benchmarks: create with a named kernel table ("avx512", "avx2+fma" or
 * "scalar"; "avx2" names the AVX2 one too) instead of the one the CPU dispatch would
 * pick. NULL when that table cannot run here (the CPU lacks its instructions). */
samc_ops *samc_ops_cpu_fast_create_isa(int n_threads, const char *isa);

#endif
