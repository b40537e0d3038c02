/* kernels/cpu_fast_kernels.h: the inner-kernel table each instruction set provides to
 * cpu_fast.c (drivers, threading, portable kernels); cpu_fast_avx2.c is the AVX2+FMA one.
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

/* GEMM register block: the micro-kernel produces a 6 x 16 tile of C. */
#define SAMC_GEMM_MR 6
#define SAMC_GEMM_NR 16

typedef struct {
    const char *isa;
    /* C[mr x nr] = (accumulate ? C : 0) + A[mr x kc] · B[kc x nr] (+ bias_n[j]) (+ bias_m[i])
     * A row i at a + i*lda, contiguous in k. B row k is the 16 floats at bp + k*ldb
     * (a packed panel has ldb = 16; all 16 must be readable, those past nr are
     * ignored). C row i at c + i*ldc. 1 <= mr <= 6, 1 <= nr <= 16; bias_n (per column,
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
} samc_fast_kernels;

#if defined(__x86_64__) || defined(__i386__)
#define SAMC_FAST_HAVE_AVX2_BUILD 1
extern const samc_fast_kernels samc_fast_kernels_avx2;
#endif

/* For tests and benchmarks: create with a named kernel table ("avx2+fma" or "scalar")
 * instead of the one the CPU dispatch would pick. NULL when that table cannot run here. */
samc_ops *samc_ops_cpu_fast_create_isa(int n_threads, const char *isa);

#endif
