/* kernels/cuda/cuda_common.cuh: what every .cu file of kernels/cuda/ shares: the backend state,
 * checked-call macros, the op declarations (one stem per op, the CPU twin is
 * <op>_ref in kernels/cpu_ref.c) and a few warp helpers.
 *
 * Library code never exits: a failed CUDA / cuBLAS call records the first error with
 * file:line into the backend state, the op returns, and samc_ops.sync reports it.
 * SAMC_CUDA_SYNC=1 (read at create) synchronizes after every op so that an
 * asynchronous fault is pinned to the op that caused it. */
#ifndef SAMC_CUDA_COMMON_CUH
#define SAMC_CUDA_COMMON_CUH
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "kernels/ops.h"
}

typedef struct {
    int device;
    cudaStream_t stream;      /* every op, copy and cuBLAS call goes here, in order */
    cublasHandle_t blas;
    void *blas_workspace;     /* given to cuBLAS once so it never allocates mid-forward */
    int sm_count;
    int cc;                   /* compute capability as 10 * major + minor (86 = sm_86) */
    char device_name[64];
    size_t smem_optin;        /* largest dynamic shared memory one block may opt into */
    /* Reduced precision (set_precision, gemm.cu); precision SAMC_OPS_FP32 until set. */
    samc_ops_precision precision;
    const float *w_base;      /* the registered fp32 weight block: w_n floats */
    size_t w_n;
    void *w_lowp;             /* its bf16 / fp16 copy, same element offsets */
    void *act_lowp;           /* scratch for the activation operand of one GEMM chunk */
    size_t act_cap;           /* its size in elements */
    int sync_each_op;         /* SAMC_CUDA_SYNC=1 */
    /* The pipeline (pipeline.cu): time marks, graphs, device memory at the start. */
    cudaEvent_t marks[SAMC_OPS_MARKS];
    cudaGraphExec_t graphs[SAMC_OPS_GRAPHS];
    int capturing;            /* 1 + the slot being recorded, 0 when none */
    int use_graphs;           /* the graphs switch (variants: GRAPHS on / off) */
    size_t mem_at_start, mem_total;
    int failed;               /* an error was recorded; it stays (CUDA faults are sticky) */
    char err[512];
} samc_cuda_ctx;

static inline samc_cuda_ctx *cuda_ctx(const samc_ops *o) { return (samc_cuda_ctx *)o->ctx; }

/* ---- errors (cuda_check.cu, the bottom file: it calls no other file of kernels/cuda/) ---- */
/* Records "file:line: what: detail" as the backend's error unless one is already there.
 * Returns -1 so call sites can `return cuda_fail(...)`. */
int cuda_fail(samc_cuda_ctx *c, const char *file, int line, const char *what, const char *detail);
int cuda_check_rt(samc_cuda_ctx *c, cudaError_t e, const char *file, int line, const char *call);
int cuda_check_blas(samc_cuda_ctx *c, cublasStatus_t s, const char *file, int line, const char *call);
/* After an op's last launch: the launch status (cudaGetLastError) and, with
 * SAMC_CUDA_SYNC=1, a stream synchronize, both charged to `op`. 0 or -1. */
int cuda_op_done(samc_cuda_ctx *c, const char *op, const char *file, int line);

/* 0 on success, -1 (error recorded) otherwise; usable as `if (CUDA_CHECK(...)) return;`. */
#define CUDA_CHECK(c, call) cuda_check_rt((c), (call), __FILE__, __LINE__, #call)
#define CUBLAS_CHECK(c, call) cuda_check_blas((c), (call), __FILE__, __LINE__, #call)
#define CUDA_OP_DONE(c, op) cuda_op_done((c), (op), __FILE__, __LINE__)

/* Grid for a grid-stride loop over n items with `threads` per block: enough blocks to
 * fill the device several times over, never more than the items need. */
static inline unsigned cuda_blocks_for(const samc_cuda_ctx *c, size_t n, int threads) {
    size_t want = (n + (size_t)threads - 1) / (size_t)threads;
    size_t cap = (size_t)(c->sm_count > 0 ? c->sm_count : 1) * 32;
    if (want > cap) want = cap;
    return (unsigned)(want ? want : 1);
}

/* variants.cu: the value of switch `name` (kernels/cuda/variants.txt) for this device
 * into out; 0, or -1 (error recorded) for an unknown switch or a value not listed. */
int cuda_variant(samc_cuda_ctx *c, const char *name, char *out, size_t n);

/* ---- ops (signatures of samc_ops; pointers are device pointers) ------------------- */
/* pipeline.cu: pinned host memory, asynchronous copies, time marks, graphs, memory */
int pipeline_cuda_prepare(samc_cuda_ctx *c);
void pipeline_cuda_release(samc_cuda_ctx *c);
void pipeline_cuda_fill(samc_ops *o);
/* preprocess.cu, maskpost.cu */
void preprocess_cuda(const samc_ops *o, const uint8_t *rgb, int w, int h, const samc_resize_taps *t, float *out, int S);
void mask_stats_cuda(const samc_ops *o, const samc_mask_post_args *a);
void mask_runs_cuda(const samc_ops *o, const samc_mask_post_args *a, int k0, int k1, uint32_t *runs);
/* gemm.cu */
void linear_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M, int N, int K);
void matmul_cuda(const samc_ops *o, const float *a, const float *b, const float *bias, float *c, int M, int N, int K);
int set_precision_cuda(const samc_ops *o, samc_ops_precision p, const float *weights, size_t n_weights, char *err);
void gemm_cuda_release(samc_cuda_ctx *c); /* frees what set_precision allocated */
/* attention.cu */
void attention_cuda(const samc_ops *o, const samc_attention_args *a);
int attention_cuda_prepare(samc_cuda_ctx *c);
/* norm.cu */
void layer_norm_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int rows,
                     int dim, float eps);
void layer_norm2d_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int C, int HW,
                       float eps);
/* elementwise.cu */
void gelu_cuda(const samc_ops *o, float *x, size_t n);
void relu_cuda(const samc_ops *o, float *x, size_t n);
void sigmoid_cuda(const samc_ops *o, float *x, size_t n);
void copy_cuda(const samc_ops *o, float *dst, const float *src, size_t n);
void add_cuda(const samc_ops *o, float *dst, const float *a, const float *b, size_t n, size_t nb);
void add_channel_cuda(const samc_ops *o, float *dst, const float *a, const float *v, int C, int HW);
void transpose_cuda(const samc_ops *o, const float *src, float *dst, int batch, int R, int C);
/* Launch-only forms (no cuda_op_done) for ops that end in a bias pass. */
void add_launch(samc_cuda_ctx *c, float *dst, const float *a, const float *b, size_t n, size_t nb);
void add_channel_launch(samc_cuda_ctx *c, float *dst, const float *a, const float *v, int C, int HW);
/* conv.cu */
void conv2d_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int Cin, int H,
                 int W, int Cout, int kh, int kw, int stride, int pad);
void conv_transpose2x2_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y,
                            int Cin, int H, int W, int Cout);
/* layout.cu */
void window_partition_cuda(const samc_ops *o, const float *x, float *win, int H, int W, int C, int wh, int ww);
void window_unpartition_add_cuda(const samc_ops *o, const float *win, const float *shortcut, float *out, int H,
                                 int W, int C, int wh, int ww, int nwx);
void maxpool2x2_cuda(const samc_ops *o, const float *x, float *y, int n, int H, int W, int C,
                     ptrdiff_t pixel_stride);
void upsample_nearest2x_add_cuda(const samc_ops *o, float *dst, const float *src, int C, int h, int w);
void upsample_bilinear_cuda(const samc_ops *o, const float *low, float *out, int n, int ls, int w, int h);
/* sam3_ops.cu: fills the table's SAM3 entries (attention_biased, rope, group_norm,
 * roi_align, grid_sample, box_rpb_bias) */
void sam3_ops_cuda_register(samc_ops *o);

/* ---- device helpers ------------------------------------------------------------------ */
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

#endif
