/* kernels/ops.h: the small backend interface the model is written against.
 *
 * The SAM2.1 forward pass lives once, in model/, and calls the ops below through a
 * table. Each backend fills the table:
 *   cpu_ref   plain loops in PyTorch layouts: the porting reference (kernels/cpu_ref.c)
 *   cpu_fast  blocked SIMD GEMM / attention on an own pthread pool (kernels/cpu_fast*.c)
 *   cuda      kernels/cuda/ (device pointers; same signatures)
 * Every op of every backend is tested against cpu_ref (tests/test_ops.c).
 *
 * Conventions: float32, row-major, shapes in comments as [dim0, dim1, ...]; "NCHW"
 * tensors are passed without the batch dim (one image) unless stated. No op allocates
 * memory and no op fails: shapes are checked by the model before the call.
 */
#ifndef SAMC_OPS_H
#define SAMC_OPS_H
#include <stddef.h>
#include <stdint.h>

typedef struct samc_ops samc_ops;

/* Multi-head attention over strided views, one call for all (batch, head) pairs:
 *   out[b,h,i,:] = sum_j softmax_j( scale * <q[b,h,i,:], k[b,h,j,:]> ) v[b,h,j,:]
 * Element (b,h,t,d) of X lives at X + b*X_sb + h*X_sh + t*X_st + d (d contiguous).
 * This covers Hiera's packed qkv [tokens, 3, heads, hd] and the decoder's [B, T, heads*hd]
 * without copies. The softmax is the plain max-subtracted one of PyTorch's math path. */
typedef struct {
    int batch, heads, n_q, n_kv, head_dim;
    float scale;
    const float *q; ptrdiff_t q_sb, q_sh, q_st;
    const float *k; ptrdiff_t k_sb, k_sh, k_st;
    const float *v; ptrdiff_t v_sb, v_sh, v_st;
    float *out;     ptrdiff_t o_sb, o_sh, o_st;
} samc_attention_args;

struct samc_ops {
    const char *name;   /* "cpu_ref", "cpu_fast", "cuda" */
    void *ctx;          /* backend state (thread pool, handles); owned by the backend */

    /* nn.Linear: y[M,N] = x[M,K] · w[N,K]ᵀ + b[N] (b may be NULL). */
    void (*linear)(const samc_ops *o, const float *x, const float *w, const float *b,
                   float *y, int M, int N, int K);

    /* Plain product with a per-row bias, for 1x1 convolutions on NCHW maps:
     * c[M,N] = a[M,K] · b[K,N] + bias[M] (bias may be NULL). */
    void (*matmul)(const samc_ops *o, const float *a, const float *b, const float *bias,
                   float *c, int M, int N, int K);

    void (*attention)(const samc_ops *o, const samc_attention_args *a);

    /* nn.LayerNorm over the last dim: y[r,:] = (x[r,:]-mean)/sqrt(var+eps)*w + b,
     * biased variance. In place allowed (y == x). */
    void (*layer_norm)(const samc_ops *o, const float *x, const float *w, const float *b,
                       float *y, int rows, int dim, float eps);

    /* LayerNorm2d: normalise over channels of x[C, HW] for each pixel. In place allowed. */
    void (*layer_norm2d)(const samc_ops *o, const float *x, const float *w, const float *b,
                         float *y, int C, int HW, float eps);

    /* Exact GELU 0.5*x*(1+erf(x/sqrt(2))), in place on n values. */
    void (*gelu)(const samc_ops *o, float *x, size_t n);

    /* nn.Conv2d on one image: x[Cin,H,W], w[Cout,Cin,kh,kw], b[Cout] (may be NULL)
     * -> y[Cout,Ho,Wo], Ho = (H+2*pad-kh)/stride+1, zero padding, groups = 1. */
    void (*conv2d)(const samc_ops *o, const float *x, const float *w, const float *b, float *y,
                   int Cin, int H, int W, int Cout, int kh, int kw, int stride, int pad);

    /* nn.ConvTranspose2d with kernel 2, stride 2 (the decoder's upscaling):
     * x[Cin,H,W], w[Cin,Cout,2,2], b[Cout] -> y[Cout,2H,2W]. */
    void (*conv_transpose2x2)(const samc_ops *o, const float *x, const float *w, const float *b,
                              float *y, int Cin, int H, int W, int Cout);
};

/* Backends. cpu_fast returns NULL when the CPU lacks what it needs (the caller then
 * falls back to cpu_ref); n_threads <= 0 means one per online core. */
const samc_ops *samc_ops_cpu_ref(void);
samc_ops *samc_ops_cpu_fast_create(int n_threads);
void samc_ops_cpu_fast_destroy(samc_ops *o);
/* What the fast path runs with, for `samc version`: "avx2+fma", "scalar". */
const char *samc_ops_cpu_fast_isa(void);

#endif
