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
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "kernels/ops.h"
}

/* What a range of a block's elements holds (lowp.cu): fp32 values (at base + 4 i), 16-bit
 * values (at base + 2 i), or bytes a write of the other type overwrote. */
enum { CUDA_F32 = 0, CUDA_LP = 1, CUDA_BAD = 2 };
typedef struct {
    size_t s, e; /* elements [s, e) */
    int type;
} cuda_range;

/* A block of device memory that the table's alloc returned (lowp.cu keeps them sorted),
 * with the ranges written since set_precision (sorted, disjoint). */
typedef struct {
    uintptr_t base;
    size_t bytes;
    cuda_range *r;
    int nr, cap;
} cuda_block;

/* A tensor of the op table as a kernel sees it: fp32 values at p, or 16-bit ones. */
typedef struct {
    void *p;
    int f32;
} cuda_arg;

/* One step of a graph's precision map (lowp.cu), recorded while it is captured: a read
 * of elements [p, p + n) in type `type`, or a write of them in that type. Replaying the
 * steps in order at each launch leaves the map as the captured run left it. */
typedef struct {
    const void *p;
    size_t n;
    int type, write;
    const char *op;
} cuda_map_step;
typedef struct {
    cuda_map_step *s;
    int n, cap;
    int phase;               /* the activation precision at the capture's end (-1: none) */
    unsigned long long gen;  /* the map's generation when this graph's steps last held */
} cuda_map_log;

/* How a 16-bit linear / linear_act runs (switch GEMM, variants.txt): cublasGemmEx + the own
 * epilogue pass; cublasLtMatmul with the bias / ReLU / residual epilogue (GELU a pass);
 * our tensor-core GEMM with the whole epilogue (gemm_tc.cu); or cuBLASLt for every product
 * but those followed by GELU, which take ours. */
enum { CUDA_GEMM_GEMMEX, CUDA_GEMM_LT, CUDA_GEMM_TC, CUDA_GEMM_LT_TC };

enum { CUDA_OP_READS = 16 }; /* more reads than an op makes: the oldest are dropped */

/* The kernel variants in force (variants.cu, from variants.txt): each the index of its value. */
typedef struct {
    int attn;         /* ATTN: 0 tc, 1 fma */
    int attn_bq128;   /* ATTN_BQ: 0 64, 1 128 */
    int splitkv_off;  /* SPLITKV: 0 auto, 1 off */
    int decoder_lowp; /* DECODER: 0 fp32, 1 lowp */
    int gemm;         /* GEMM: a cuda_gemm_variant */
    int conv_direct;  /* CONV: 0 gemm, 1 direct */
} cuda_switches;

struct gemm_lt_plan; /* gemm.cu: one cached cuBLASLt matmul (descriptors + algorithm) */

typedef struct {
    int device;
    cudaStream_t stream;      /* every op, copy and cuBLAS call goes here, in order */
    cublasHandle_t blas;
    void *blas_workspace;     /* given to cuBLAS once so it never allocates mid-forward; */
    size_t blas_ws_bytes;     /* cuBLASLt's workspace too (same stream: never both at once) */
    cublasLtHandle_t lt;      /* GEMM=lt only (gemm.cu): cuBLASLt, and its plans per shape */
    cublasLtMatmulPreference_t lt_pref;
    struct gemm_lt_plan *lt_plans;
    int lt_n_plans, lt_next;  /* plans in use; the next to reuse once all are */
    int sm_count;
    int cc;                   /* compute capability as 10 * major + minor (86 = sm_86) */
    char device_name[64];
    size_t smem_optin;        /* largest dynamic shared memory one block may opt into */
    /* Reduced precision (set_precision, lowp.cu; kernels/cuda/NOTES.md, "16-bit
     * activations"); precision SAMC_OPS_FP32 until set. */
    samc_ops_precision precision;
    const float *w_base;      /* the registered fp32 weight block: w_n floats */
    size_t w_n;
    void *w_lowp;             /* its bf16 / fp16 copy, same element offsets */
    const float *s_base;      /* the 16-bit-only weights (weights16_region): stand-ins */
    size_t s_n;               /* s_base[0 .. s_n), never mapped, for s_lowp's values */
    void *s_lowp;
    int tracking;             /* set_precision(bf16 | fp16) was called: blocks record types */
    samc_ops_precision lp_type; /* the 16-bit format of CUDA_LP ranges */
    int phase;                /* what ops write now: CUDA_LP or CUDA_F32 (activation_precision) */
    void *scratch;            /* conversion scratch (downloads, GEMM operands, attention */
    size_t scratch_bytes;     /* partials): SAMC_CUDA_LOWP_SCRATCH_BYTES */
    cuda_block *blocks;       /* every live block of alloc, sorted by base */
    int n_blocks, cap_blocks;
    cuda_range *rtmp;         /* lowp.cu's work list */
    size_t rtmp_cap;
    /* The activation ranges the op being issued has read (lowp.cu: a write of the other
     * type whose bytes cover one of them is refused: the kernel would overwrite its own
     * input while reading it); cleared when the op is done (cuda_op_done). */
    struct { int block; size_t s, e; int type; } op_reads[CUDA_OP_READS];
    int n_op_reads;
    cuda_switches sw;         /* kernel variants (variants.cu), read at create */
    float *att_ws;            /* split-KV partial results (attention.cu), allocated at create */
    size_t att_ws_floats;
    int sync_each_op;         /* SAMC_CUDA_SYNC=1 */
    /* The pipeline (pipeline.cu): time marks, graphs, device memory at the start. */
    cudaEvent_t marks[SAMC_OPS_MARKS];
    cudaGraphExec_t graphs[SAMC_OPS_GRAPHS];
    int capturing;            /* 1 + the slot being recorded, 0 when none */
    cuda_map_log map_log[SAMC_OPS_GRAPHS]; /* each graph's precision-map steps (lowp.cu) */
    unsigned long long map_gen; /* counts the map's writes: unchanged since a graph ran? */
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

/* 1 when the device has tensor cores for the backend's 16-bit format (fp16 from sm_70,
 * bf16 from sm_80): the condition of every tensor-core path (attention_tc.cu, gemm_tc.cu,
 * conv.cu's GEMMs). */
static inline int cuda_tc16(const samc_cuda_ctx *c) { return c->cc >= (c->lp_type == SAMC_OPS_BF16 ? 80 : 70); }

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
/* variants.cu: every switch of the backend (GRAPHS, ATTN, ATTN_BQ, SPLITKV, DECODER, GEMM) into
 * c->use_graphs and c->sw, at create; 0 or -1 (error recorded). */
int cuda_variants_read(samc_cuda_ctx *c);

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
void linear_act_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M, int N, int K,
                     samc_act act, const float *r);
void matmul_cuda(const samc_ops *o, const float *a, const float *b, const float *bias, float *c, int M, int N, int K);
/* GEMM=lt / lt_tc: the cuBLASLt handle, preference and plan cache (at create); their release */
int gemm_cuda_prepare(samc_cuda_ctx *c);
void gemm_cuda_release(samc_cuda_ctx *c);
/* lowp.cu: reduced precision and the memory views it needs */
int set_precision_cuda(const samc_ops *o, samc_ops_precision p, const float *weights, size_t n_weights, char *err);
int weights16_region_cuda(const samc_ops *o, const float *standin, size_t n, char *err);
void weights16_upload_cuda(const samc_ops *o, const float *dst, const float *host_src, size_t n);
/* Whether p is a stand-in of a 16-bit-only weight (no fp32 copy: only its 16-bit values,
 * through cuda_rd16, may be read). */
int cuda_is_standin(const samc_cuda_ctx *c, const void *p);
void activation_precision_cuda(const samc_ops *o, int reduced);
void lowp_release(samc_cuda_ctx *c); /* at destroy: frees what set_precision and the block table hold */
/* alloc / free record every block (cuda_backend.cu); 0, or -1 when the table cannot grow. */
int cuda_blocks_add(samc_cuda_ctx *c, void *p, size_t bytes);
void cuda_blocks_remove(samc_cuda_ctx *c, void *p);
/* upload / download in the reduced modes: converting to / from the 16-bit values of an
 * activation block. 1 when done here (bf16 / fp16), 0 when the plain copy applies.
 * `async`: the host memory is page-locked (host_alloc) and stays valid until the next
 * sync, so nothing waits for the stream (upload_async / download_async, also inside a
 * graph's capture); else the copy is done when it returns. */
int lowp_upload(samc_cuda_ctx *c, void *dst, const void *host_src, size_t bytes, int async);
int lowp_download(samc_cuda_ctx *c, void *host_dst, const void *src, size_t bytes, int async);
/* Graphs and the precision map: the steps of slot's capture are recorded from begin to
 * end; launch replays them (a read in another type than captured is an error naming the
 * op: the graph would misread it); drop forgets them. */
void lowp_graph_begin(samc_cuda_ctx *c, int slot);
void lowp_graph_end(samc_cuda_ctx *c, int slot);
int lowp_graph_launch(samc_cuda_ctx *c, int slot);
void lowp_graph_drop(samc_cuda_ctx *c, int slot);
/* attention.cu, attention_tc.cu */
void attention_cuda(const samc_ops *o, const samc_attention_args *a);
int attention_cuda_prepare(samc_cuda_ctx *c);  /* at create: kernel attributes, split-KV workspace */
void attention_cuda_release(samc_cuda_ctx *c); /* at destroy */
int attention_tc_prepare(samc_cuda_ctx *c);
int attention_tc_launch(samc_cuda_ctx *c, const samc_attention_args *a, const void *q, const void *k, const void *v,
                        cuda_arg out, int warps8);
/* gemm_tc.cu: y[M,N] = act(x[M,K] · w[N,K]ᵀ + bias) + r on the tensor cores, x and w 16-bit of the
 * backend's format (bias [N], r [M,N]: fp32 or 16-bit, p NULL when absent; y fp32 or
 * 16-bit). 1 when launched; 0 when it does not apply (no tensor cores for the format,
 * before set_precision, an empty product): the caller takes cuBLAS. */
int gemm_tc_launch(samc_cuda_ctx *c, int M, int N, int K, const void *x, const void *w, cuda_arg y, cuda_arg bias,
                   cuda_arg r, int act);
/* gemm.cu, also for the products of other files (conv.cu): C[m, n] (column-major, ld ldc)
 * = op(A) · op(B) with 16-bit A, B of the backend's format (cublasGemmEx, fp32 sums), C
 * 16-bit (c16) or fp32; 0, or -1 with the error recorded. And the pass after it: y[M, N] =
 * act(y + bias) + r in place, bias per column or (bias_per_row) per row. */
int gemm16(samc_cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, int lda,
           const void *B, int ldb, void *C, int c16, int ldc);
void gemm_epilogue(samc_cuda_ctx *c, cuda_arg y, cuda_arg bias, int bias_per_row, int act, cuda_arg r, int M, int N);
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
/* Launch-only forms (no cuda_op_done) for ops that end in a bias pass or an activation. */
void gelu_launch(samc_cuda_ctx *c, float *x, size_t n);
void relu_launch(samc_cuda_ctx *c, float *x, size_t n);
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

/* ---- element types of the reduced modes ------------------------------------------------ */
/* Kernels are templates over T, the element type of activations: float in fp32 (the
 * instantiation whose arithmetic is the original kernel's), __nv_bfloat16 / __half in the
 * reduced modes. Values are always widened to float for arithmetic and rounded once to T
 * on the store (fp16 clamps to +-65504, so a large activation saturates instead of
 * becoming inf and then NaN downstream). */
__host__ __device__ __forceinline__ float lp_f(float v) { return v; }
__host__ __device__ __forceinline__ float lp_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__host__ __device__ __forceinline__ float lp_f(__half v) { return __half2float(v); }
__device__ __forceinline__ void lp_put(float *p, float v) { *p = v; }
__device__ __forceinline__ void lp_put(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void lp_put(__half *p, float v) {
    v = v > 65504.0f ? 65504.0f : v < -65504.0f ? -65504.0f : v;
    *p = __float2half_rn(v);
}

/* An activation of kernels/ops.h on an fp32 value: nn.GELU() (approximate='none': 0.5 x
 * (1 + erf(x / sqrt 2)), the expression of kernels/cpu_ref.c), ReLU with the reference's
 * test (NaN maps to 0), or none. */
__device__ __forceinline__ float cuda_act(float v, int act) {
    if (act == SAMC_ACT_GELU) return 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f));
    if (act == SAMC_ACT_RELU) return v > 0.0f ? v : 0.0f;
    return v;
}

/* T from float, rounded to nearest (fp16 clamped as lp_put). */
template <class T> __device__ __forceinline__ T lp_from(float v);
template <> __device__ __forceinline__ float lp_from<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 lp_from<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half lp_from<__half>(float v) {
    return __float2half_rn(v > 65504.0f ? 65504.0f : v < -65504.0f ? -65504.0f : v);
}

/* A kernel input read element by element: fp32 (every input in fp32 mode; weights, and
 * activations written in an fp32 phase or uploaded, in the reduced modes) or T (16-bit
 * activations). The test is uniform across a launch. at(k) is the view k elements on. */
template <class T> struct cuda_src {
    const void *p;
    int f32;
    __device__ __forceinline__ float operator[](size_t i) const {
        return f32 ? ((const float *)p)[i] : lp_f(((const T *)p)[i]);
    }
    __device__ __forceinline__ cuda_src at(ptrdiff_t k) const {
        return cuda_src{ f32 ? (const void *)((const float *)p + k) : (const void *)((const T *)p + k), f32 };
    }
};
/* A kernel output: fp32 or T, rounded once on the store. */
template <class T> struct cuda_dst {
    void *p;
    int f32;
    __device__ __forceinline__ void put(size_t i, float v) const {
        if (f32) ((float *)p)[i] = v;
        else lp_put((T *)p + i, v);
    }
    __device__ __forceinline__ float get(size_t i) const { return f32 ? ((const float *)p)[i] : lp_f(((const T *)p)[i]); }
    __device__ __forceinline__ cuda_dst at(ptrdiff_t k) const {
        return cuda_dst{ f32 ? (void *)((float *)p + k) : (void *)((T *)p + k), f32 };
    }
};
template <class T> static inline cuda_src<T> src_of(cuda_arg a) { return cuda_src<T>{ a.p, a.f32 }; }
template <class T> static inline cuda_dst<T> dst_of(cuda_arg a) { return cuda_dst<T>{ a.p, a.f32 }; }

/* Calls f(T()) with T the backend's 16-bit format (float before any set_precision: then
 * every tensor is fp32 and each kernel is its fp32 original). Op launchers are written
 * once as a generic lambda: cuda_by_type(c, [&](auto t) { using T = decltype(t); ... }). */
template <class F> static inline void cuda_by_type(const samc_cuda_ctx *c, F f) {
    if (!c->tracking) f(0.0f);
    else if (c->lp_type == SAMC_OPS_BF16) f(__nv_bfloat16());
    else f(__half());
}

/* Where the tensor [p, p + n) of an op lives and in which type (lowp.cu). Before any
 * set_precision every tensor is itself, fp32. After it:
 *   cuda_rd       an input: weights are fp32; an activation is what was last written there;
 *                 a 16-bit-only weight's stand-in is an error (it has no fp32 values);
 *   cuda_rd16     an input as 16-bit values (a weight's copy, a 16-bit-only weight, a
 *                 16-bit activation), or NULL when it is fp32 (the op converts it, or
 *                 takes its fp32 path);
 *   cuda_wr       an output, in the type of the phase (activation_precision); recorded;
 *   cuda_wr_like  an output in the type of input `in` (ops in place keep the type).
 * A pointer outside every block of this backend, a range of mixed or destroyed values,
 * or an output inside the weight block records an error naming `op` and gives
 * p = NULL: the op then returns. A NULL pointer stays NULL (f32 = 1). */
cuda_arg cuda_rd(samc_cuda_ctx *c, const float *p, size_t n, const char *op);
const void *cuda_rd16(samc_cuda_ctx *c, const float *p, size_t n, const char *op);
cuda_arg cuda_wr(samc_cuda_ctx *c, float *p, size_t n, const char *op);
cuda_arg cuda_wr_like(samc_cuda_ctx *c, float *p, size_t n, cuda_arg in, const char *op);
/* An output the kernel writes as fp32 whatever the phase (preprocess, mask scratch). */
cuda_arg cuda_wr_f32(samc_cuda_ctx *c, float *p, size_t n, const char *op);
/* An input the kernel can only read as fp32 (mask post-processing): the pointer, or NULL
 * with an error naming op when the map says it holds 16-bit values. */
const float *cuda_rd_f32(samc_cuda_ctx *c, const float *p, size_t n, const char *op);
/* 1 when p lies in the registered weight block (its fp32 values and a 16-bit copy). */
int cuda_is_weight(const samc_cuda_ctx *c, const void *p);
/* dst (n values of the 16-bit format) = src (fp32), and back; launched on the stream. */
void cuda_narrow(samc_cuda_ctx *c, void *dst, const float *src, size_t n);
void cuda_widen(samc_cuda_ctx *c, float *dst, const void *src, size_t n);
/* The elements a strided attention view spans (from element 0 of its first row). */
static inline size_t cuda_span(int batch, ptrdiff_t sb, int heads, ptrdiff_t sh, int rows, ptrdiff_t st, int d) {
    return (size_t)((batch - 1) * sb + (heads - 1) * sh + (ptrdiff_t)(rows - 1) * st + d);
}
/* The largest samc_att_split offset of the indices [0, count) (strides >= 0): at the last
 * index, or at the end of the last complete row before it. */
static inline ptrdiff_t cuda_split_max(int count, int n, ptrdiff_t s_in, ptrdiff_t s_out) {
    ptrdiff_t m = samc_att_split(count - 1, n, s_in, s_out);
    if (n > 0 && count > n) {
        ptrdiff_t r = samc_att_split((count - 1) / n * n - 1, n, s_in, s_out);
        if (r > m) m = r;
    }
    return m;
}
/* The same with the window geometry of samc_attention_args (kernels/ops.h). */
static inline size_t cuda_span_win(int batch, int nx, ptrdiff_t sb, ptrdiff_t sby, int heads, ptrdiff_t sh, int rows,
                                   int tw, ptrdiff_t st, ptrdiff_t sty, int d) {
    return (size_t)(cuda_split_max(batch, nx, sb, sby) + (heads - 1) * sh + cuda_split_max(rows, tw, st, sty) + d);
}

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
