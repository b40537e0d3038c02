/* kernels/cuda/gemm.cu: linear (nn.Linear), linear_act (+ activation + residual) and matmul
 * (1x1 convolutions) on cuBLAS.
 *
 * fp32 (fp32 mode; in the reduced modes while the model keeps fp32 activations):
 * cublasSgemm, fp32 in and out with fp32 accumulation (the handle is in
 * CUBLAS_DEFAULT_MATH, so no TF32), the bias added by a second, memory-bound pass, and
 * linear_act's activation and residual by the element-wise kernels: the same kernels in
 * the same order as the unfused ops, so the bits are those of linear + gelu + add.
 * 16-bit activations (lowp.cu): the operands are 16-bit already (activations are stored
 * so, weights have their copy), so each product is one cublasGemmEx with 16-bit A, B and
 * C, CUBLAS_COMPUTE_32F (tensor cores, fp32 accumulation, one rounding on the store),
 * then at most one epilogue pass over the 16-bit output doing bias, activation and
 * residual together. An fp32 operand (an upload) is converted through the scratch first,
 * in chunks when large; a 16-bit operand of an fp32 product is widened so.
 * Switch GEMM=lt (variants.txt): a 16-bit linear / linear_act is one cublasLtMatmul per
 * chunk instead, its epilogue adding the bias (ReLU too) and its C the residual (beta 1);
 * GELU stays the own pass (cuBLASLt's GELU epilogue is the tanh approximation).
 * Switch GEMM=tc: every 16-bit linear / linear_act is our tensor-core GEMM with bias,
 * activation (GELU's erf form too) and residual in its store (gemm_tc.cu); GEMM=lt_tc:
 * cuBLASLt as GEMM=lt, but a linear_act with GELU (the MLPs' first linear) takes ours.
 * A weight kept in 16 bits only (a stand-in, ops.h weights16_region) has no fp32 values:
 * its product is the 16-bit one in the fp32 phase too (the fp32 activation converted into
 * the scratch per call, fp32 output, fp32 accumulation), then the epilogue pass.
 *
 * cuBLAS is column-major. A row-major [R, C] matrix is the column-major [C, R] matrix
 * with leading dimension C, i.e. its transpose, so each product is written for the
 * transposed result:
 *   linear: y[M,N] = x[M,K] · w[N,K]ᵀ   <=>   yᵀ[N,M] = w · xᵀ  = op_T(wᵀ) · xᵀ
 *   matmul: c[M,N] = a[M,K] · b[K,N]    <=>   cᵀ[N,M] = bᵀ · aᵀ */
#include "kernels/cuda/cuda_common.cuh"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the epilogue pass over a 16-bit product ----------------------------------------- */

/* y[m, n] = act(y[m, n] + bias) + r[m, n] over a dense [M, N] y, bias per column (linear)
 * or per row (matmul). One read and one write of y (+ one read of r): 2-byte elements,
 * so 4-6 bytes per output and no arithmetic to speak of: memory-bound. */
template <class T, class I>
__global__ void gemm_epilogue_kernel(cuda_dst<T> y, cuda_src<T> bias, int bias_per_row, int act, cuda_src<T> r, I M,
                                     I N) {
    const I n = M * N;
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        float v = y.get(i);
        if (bias.p) v += bias[bias_per_row ? i / N : i % N];
        v = cuda_act(v, act);
        if (r.p) v = r[i] + v;
        y.put(i, v);
    }
}

void gemm_epilogue(samc_cuda_ctx *c, cuda_arg y, cuda_arg bias, int bias_per_row, int act, cuda_arg r, int M, int N) {
    size_t n = (size_t)M * N;
    if (!n || (!bias.p && !act && !r.p)) return;
    unsigned blocks = cuda_blocks_for(c, n, 256);
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        if (n <= (size_t)UINT32_MAX / 2)
            gemm_epilogue_kernel<T, uint32_t><<<blocks, 256, 0, c->stream>>>(
                dst_of<T>(y), src_of<T>(bias), bias_per_row, act, src_of<T>(r), (uint32_t)M, (uint32_t)N);
        else
            gemm_epilogue_kernel<T, size_t><<<blocks, 256, 0, c->stream>>>(
                dst_of<T>(y), src_of<T>(bias), bias_per_row, act, src_of<T>(r), (size_t)M, (size_t)N);
    });
}

/* ---- operands -------------------------------------------------------------------------- */

/* dst[r, col] (dense [rows, cols], fp32 or 16-bit as to_lowp) = src[r * src_ld + col]: a
 * column slice of a wider row-major matrix, converted. Rows along y, columns along x. */
template <class T>
__global__ void convert_2d_kernel(void *dst, int to_lowp, const void *src, int rows, int cols, size_t src_ld) {
    for (int r = blockIdx.y; r < rows; r += gridDim.y)
        for (int col = blockIdx.x * blockDim.x + threadIdx.x; col < cols; col += gridDim.x * blockDim.x) {
            size_t i = (size_t)r * src_ld + col, o = (size_t)r * cols + col;
            if (to_lowp) lp_put((T *)dst + o, ((const float *)src)[i]);
            else ((float *)dst)[o] = lp_f(((const T *)src)[i]);
        }
}

static void convert_2d(samc_cuda_ctx *c, void *dst, int to_lowp, const void *src, int rows, int cols, size_t src_ld) {
    if (rows <= 0 || cols <= 0) return;
    dim3 grid((unsigned)((cols + 255) / 256 < 8 ? (cols + 255) / 256 : 8), (unsigned)(rows < 65535 ? rows : 65535));
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        convert_2d_kernel<T><<<grid, 256, 0, c->stream>>>(dst, to_lowp, src, rows, cols, src_ld);
    });
}

/* An operand [rows, cols] (row-major, ld) in the wanted form: 16 bits (lowp) or fp32.
 * Its own memory when it is so already; else converted into the scratch at byte offset
 * *used (which grows). NULL when the scratch is too small (the caller chunks) or on an
 * error. */
static const void *operand(samc_cuda_ctx *c, const float *p, int rows, int cols, size_t ld, int lowp, size_t *used,
                           const char *op) {
    size_t n = (size_t)(rows - 1) * ld + (size_t)cols;
    if (lowp) {
        const void *p16 = cuda_rd16(c, p, n, op);
        if (p16 || c->failed) return p16;
    } else if (cuda_is_weight(c, p)) {
        return p;
    }
    cuda_arg a = cuda_rd(c, p, n, op);
    if (!a.p) return NULL;
    if (a.f32 && !lowp) return a.p;
    size_t bytes = (size_t)rows * cols * (lowp ? 2 : 4), at = (*used + 255) & ~(size_t)255;
    if (at + bytes > c->scratch_bytes) return NULL;
    *used = at + bytes;
    void *dst = (char *)c->scratch + at;
    convert_2d(c, dst, lowp, a.p, rows, cols, ld);
    return dst;
}

static void too_large(samc_cuda_ctx *c, const char *op, int M, int N, int K) {
    char d[128];
    snprintf(d, sizeof d, "M=%d N=%d K=%d: the operands to convert do not fit the scratch", M, N, K);
    cuda_fail(c, __FILE__, __LINE__, op, d);
}

int gemm16(samc_cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, int lda,
           const void *B, int ldb, void *C, int c16, int ldc) {
    const float one = 1.0f, zero = 0.0f;
    cudaDataType_t t = c->lp_type == SAMC_OPS_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    return CUBLAS_CHECK(c, cublasGemmEx(c->blas, ta, tb, m, n, k, &one, A, t, lda, B, t, ldb, &zero, C,
                                        c16 ? t : CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* ---- cuBLASLt (switch GEMM=lt) -------------------------------------------------------- */

/* What a 16-bit linear folds into cublasLtMatmul: D = epilogue(A · B + beta C), the
 * epilogue adding the bias (16-bit, as D) and, for ReLU, clamping; C = the residual with
 * beta 1 (C and D may differ). cuBLASLt adds C before its epilogue's activation, so the
 * residual is folded only without one. GELU is never folded: cuBLASLt's GELU epilogue is
 * the tanh approximation, nn.GELU() the erf one (cuda_act): it stays our own pass, or
 * (GEMM=lt_tc) the product goes to gemm_tc.cu. */
typedef struct {
    const void *bias; /* 16-bit [N] or NULL */
    const void *r;    /* 16-bit [M, N] (the residual, C) or NULL */
    int relu;
} gemm_lt_fold;

/* What our tensor-core GEMM (gemm_tc.cu, GEMM=tc / lt_tc) folds into its store: all of
 * linear_act's epilogue, bias, activation and residual, fp32 or 16-bit. */
typedef struct {
    cuda_arg bias, r; /* p NULL when absent */
    int act;
} gemm_tc_fold;

/* One cached matmul: the key (shape, epilogue, C read or not, the 16-bit type, the
 * operands' alignments), its descriptors and the heuristic's algorithm, or ok = 0 when
 * cuBLASLt has none (the caller then takes cublasGemmEx and the own pass). */
struct gemm_lt_plan {
    int m, n, k, epi, beta1, type, align, ok;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, cd;
    cublasLtMatmulAlgo_t algo;
};
enum { GEMM_LT_PLANS = 128 }; /* SAM2.1 large + SAM3 use far fewer shapes */

static int lt_check(samc_cuda_ctx *c, cublasStatus_t s, int line, const char *op, const char *call) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    char what[256];
    snprintf(what, sizeof what, "%.60s: %.180s", op, call);
    return cuda_check_blas(c, s, __FILE__, line, what);
}
/* a cuBLASLt call checked, the error naming the op (linear / linear_act) and the call */
#define LT_CHECK(c, op, call) lt_check((c), (call), __LINE__, (op), #call)

int gemm_cuda_prepare(samc_cuda_ctx *c) {
    if (c->sw.gemm != CUDA_GEMM_LT && c->sw.gemm != CUDA_GEMM_LT_TC) return 0;
    const uint64_t ws = c->blas_ws_bytes;
    c->lt_plans = (gemm_lt_plan *)calloc(GEMM_LT_PLANS, sizeof *c->lt_plans);
    if (!c->lt_plans) return cuda_fail(c, __FILE__, __LINE__, "GEMM=lt", "out of host memory for the plans");
    return LT_CHECK(c, "GEMM=lt", cublasLtCreate(&c->lt)) ||
           LT_CHECK(c, "GEMM=lt", cublasLtMatmulPreferenceCreate(&c->lt_pref)) ||
           LT_CHECK(c, "GEMM=lt", cublasLtMatmulPreferenceSetAttribute(
                                      c->lt_pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
}

static void lt_plan_clear(gemm_lt_plan *p) {
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    if (p->a) cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) cublasLtMatrixLayoutDestroy(p->b);
    if (p->cd) cublasLtMatrixLayoutDestroy(p->cd);
    memset(p, 0, sizeof *p);
}

void gemm_cuda_release(samc_cuda_ctx *c) {
    for (int i = 0; c->lt_plans && i < c->lt_n_plans; i++) lt_plan_clear(&c->lt_plans[i]);
    free(c->lt_plans);
    c->lt_plans = NULL;
    if (c->lt_pref) cublasLtMatmulPreferenceDestroy(c->lt_pref);
    if (c->lt) cublasLtDestroy(c->lt);
    c->lt_pref = NULL;
    c->lt = NULL;
}

/* The alignment cuBLASLt may assume of p: its largest power-of-two divisor up to 256 (the
 * preference's default, which a chunk's or a slice's pointer need not meet), as log2. */
static int align_log2(const void *p) {
    uintptr_t u = (uintptr_t)p | 256;
    int l = 0;
    while (!(u & 1)) u >>= 1, l++;
    return l;
}

/* The plan for D[m,n] = epi(op_T(A)[m,k] · B[k,n] + beta1 · C), A [k,m] (ld k), B [k,n]
 * (ld k), C = D layout (ld m), all of the 16-bit type: found, or made (descriptors and
 * the heuristic's first algorithm; the oldest plan reused once all are taken). C is D
 * when beta is 0 (unread). NULL on an error (recorded). */
static gemm_lt_plan *lt_plan(samc_cuda_ctx *c, int m, int n, int k, int epi, int beta1, const void *A, const void *B,
                             const void *C, const void *D, const char *op) {
    int type = c->lp_type == SAMC_OPS_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    int la = align_log2(A), lb = align_log2(B), lc = align_log2(C), ld = align_log2(D);
    int align = la | lb << 4 | lc << 8 | ld << 12;
    for (int i = 0; i < c->lt_n_plans; i++) {
        gemm_lt_plan *p = &c->lt_plans[i];
        if (p->m == m && p->n == n && p->k == k && p->epi == epi && p->beta1 == beta1 && p->type == type &&
            p->align == align)
            return p;
    }
    gemm_lt_plan *p;
    if (c->lt_n_plans < GEMM_LT_PLANS) {
        p = &c->lt_plans[c->lt_n_plans++];
    } else {
        p = &c->lt_plans[c->lt_next];
        c->lt_next = (c->lt_next + 1) % GEMM_LT_PLANS;
        lt_plan_clear(p);
    }
    p->m = m, p->n = n, p->k = k, p->epi = epi, p->beta1 = beta1, p->type = type, p->align = align;
    const cudaDataType_t t = (cudaDataType_t)type;
    const int32_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N, e = epi;
    const uint32_t al[4] = { 1u << la, 1u << lb, 1u << lc, 1u << ld };
    cublasLtMatmulHeuristicResult_t h;
    int found = 0;
    if (LT_CHECK(c, op, cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F)) ||
        LT_CHECK(c, op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta)) ||
        LT_CHECK(c, op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb)) ||
        LT_CHECK(c, op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e)) ||
        LT_CHECK(c, op, cublasLtMatrixLayoutCreate(&p->a, t, (uint64_t)k, (uint64_t)m, k)) ||
        LT_CHECK(c, op, cublasLtMatrixLayoutCreate(&p->b, t, (uint64_t)k, (uint64_t)n, k)) ||
        LT_CHECK(c, op, cublasLtMatrixLayoutCreate(&p->cd, t, (uint64_t)m, (uint64_t)n, m)))
        return NULL;
    for (int i = 0; i < 4; i++)
        if (LT_CHECK(c, op, cublasLtMatmulPreferenceSetAttribute(
                                c->lt_pref,
                                (cublasLtMatmulPreferenceAttributes_t)(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES + i),
                                &al[i], sizeof al[i])))
            return NULL;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(c->lt, p->desc, p->a, p->b, p->cd, p->cd, c->lt_pref, 1, &h,
                                                      &found);
    /* no algorithm for this shape / epilogue / alignment: a plan that says so */
    if (s == CUBLAS_STATUS_NOT_SUPPORTED || (s == CUBLAS_STATUS_SUCCESS && found < 1)) return p;
    if (LT_CHECK(c, op, s)) return NULL;
    p->algo = h.algo;
    p->ok = 1;
    return p;
}

/* D[m,n] (column-major, ld m; the linear's y chunk) = f.relu?(op_T(A) · B + f.bias) +
 * f.r, A = w [k,m] (ld k), B = x chunk [k,n] (ld k), everything 16-bit. 1 when cuBLASLt
 * has no algorithm for it (nothing ran: the caller takes GemmEx), 0 done, -1 error. */
static int gemm_lt(samc_cuda_ctx *c, int m, int n, int k, const void *A, const void *B, void *D, const void *bias,
                   const void *r, int relu, const char *op) {
    int epi = relu ? (bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                   : (bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    gemm_lt_plan *p = lt_plan(c, m, n, k, epi, r != NULL, A, B, r ? r : D, D, op);
    if (!p) return -1;
    if (!p->ok) return 1;
    const float one = 1.0f, beta = r ? 1.0f : 0.0f;
    if (bias && LT_CHECK(c, op, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                               sizeof bias)))
        return -1;
    /* C = the residual (beta 1) or, unread with beta 0, D itself */
    return LT_CHECK(c, op, cublasLtMatmul(c->lt, p->desc, &one, A, p->a, B, p->b, &beta, r ? r : D, p->cd, D, p->cd,
                                          &p->algo, c->blas_workspace, c->blas_ws_bytes, c->stream))
               ? -1
               : 0;
}

/* y = bias broadcast (or zeros) when K == 0: the product is empty. */
static void fill_empty_product(samc_cuda_ctx *c, float *y, const float *bias, int M, int N, int bias_per_row) {
    size_t n = (size_t)M * N;
    if (!bias) {
        cuda_arg out = cuda_wr(c, y, n, "linear / matmul");
        if (out.p) CUDA_CHECK(c, cudaMemsetAsync(out.p, 0, n * (out.f32 ? 4 : 2), c->stream));
        return;
    }
    if (bias_per_row) add_channel_launch(c, y, NULL, bias, M, N);
    else add_launch(c, y, NULL, bias, n, (size_t)N);
}

/* ---- linear -------------------------------------------------------------------------- */

/* fp32: cublasSgemm on fp32 operands, then the bias pass (the original op). */
static void linear_fp32(samc_cuda_ctx *c, const float *x, const float *w, const float *b, float *y, int M, int N,
                        int K) {
    const float one = 1.0f, zero = 0.0f;
    /* C[N,M] (ld N) = op_T(A) · B with A = w seen as [K,N] (ld K), B = x seen as [K,M] (ld K) */
    if (CUBLAS_CHECK(c, cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w, K, x, K, &zero, y, N)))
        return;
    if (b) add_launch(c, y, y, b, (size_t)M * N, (size_t)N); /* y[m, n] += b[n] */
}

/* The product in the precision of the phase: 16-bit operands (GemmEx) when activations are
 * 16-bit or the weight is 16-bit only, fp32 ones (Sgemm) otherwise; the output in the
 * phase's type; x in row chunks when it must be converted and does not fit the scratch
 * whole. With `fold` (GEMM=lt, 16-bit output), each chunk is one cublasLtMatmul that
 * also does fold's bias, ReLU and residual, or, where cuBLASLt has no algorithm for it,
 * GemmEx and an own pass over the chunk for them. Returns the output (already recorded),
 * or p = NULL. */
static cuda_arg linear_product(samc_cuda_ctx *c, const float *x, const float *w, float *y, int M, int N, int K,
                               const gemm_lt_fold *fold, const gemm_tc_fold *tc, const char *op) {
    int lowp = c->phase == CUDA_LP || cuda_is_standin(c, w);
    size_t used = 0;
    const void *wv = operand(c, w, N, K, (size_t)K, lowp, &used, op);
    if (!wv) {
        if (!c->failed) too_large(c, op, M, N, K);
        return cuda_arg{ NULL, 1 };
    }
    cuda_arg out = cuda_wr(c, y, (size_t)M * N, op);
    if (!out.p) return out;
    size_t base = used;
    int rows = M;
    for (int m0 = 0; m0 < M && !c->failed; m0 += rows) {
        used = base;
        const void *xv = NULL;
        while (!(xv = operand(c, x + (size_t)m0 * K, rows < M - m0 ? rows : M - m0, K, (size_t)K, lowp, &used, op)) &&
               !c->failed && rows > 8)
            rows = (rows / 2 + 7) & ~7; /* a multiple of 8 rows keeps each chunk's output aligned */
        if (!xv) {
            if (!c->failed) too_large(c, op, M, N, K);
            return cuda_arg{ NULL, 1 };
        }
        int mc = rows < M - m0 ? rows : M - m0;
        char *yv = (char *)out.p + (size_t)m0 * N * (out.f32 ? 4 : 2);
        const float one = 1.0f, zero = 0.0f;
        /* fold (the 16-bit phase only: lowp, 16-bit output): cuBLASLt first, with the
         * chunk's rows of the residual */
        const void *rv = fold && fold->r ? (const char *)fold->r + (size_t)m0 * N * 2 : NULL;
        int lt = fold ? gemm_lt(c, N, mc, K, wv, xv, yv, fold->bias, rv, fold->relu, op) : 1;
        if (lt < 0) return cuda_arg{ NULL, 1 };
        if (lt == 0) continue;
        /* tc: our tensor-core GEMM with the whole epilogue (the chunk's rows of the residual) */
        cuda_arg tr = { NULL, 1 };
        if (tc && tc->r.p) tr = cuda_arg{ (char *)tc->r.p + (size_t)m0 * N * (tc->r.f32 ? 4 : 2), tc->r.f32 };
        if (tc && lowp && gemm_tc_launch(c, mc, N, K, xv, wv, cuda_arg{ yv, out.f32 }, tc->bias, tr, tc->act))
            continue;
        /* C[N,mc] (ld N) = op_T(A) · B, A = w as [K,N] (ld K), B = a chunk of x as [K,mc] (ld K) */
        if (lowp ? gemm16(c, CUBLAS_OP_T, CUBLAS_OP_N, N, mc, K, wv, K, xv, K, yv, !out.f32, N)
                 : CUBLAS_CHECK(c, cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, mc, K, &one, (const float *)wv, K,
                                               (const float *)xv, K, &zero, (float *)yv, N)))
            return cuda_arg{ NULL, 1 };
        /* fold, but no cuBLASLt algorithm for this chunk: what fold holds, as a pass over it;
         * tc on a device without tensor cores for the format: its epilogue so */
        if (fold)
            gemm_epilogue(c, cuda_arg{ yv, 0 }, cuda_arg{ (void *)fold->bias, 0 }, 0,
                          fold->relu ? SAMC_ACT_RELU : SAMC_ACT_NONE, cuda_arg{ (void *)rv, 0 }, mc, N);
        if (tc) gemm_epilogue(c, cuda_arg{ yv, out.f32 }, tc->bias, 0, tc->act, tr, mc, N);
    }
    return out;
}

/* linear / linear_act once set_precision has been called. */
static void linear_typed(samc_cuda_ctx *c, const float *x, const float *w, const float *b, float *y, int M, int N,
                         int K, int act, const float *r, const char *op) {
    cuda_arg bias = cuda_rd(c, b, (size_t)N, op), res = cuda_rd(c, r, (size_t)M * N, op);
    if ((b && !bias.p) || (r && !res.p)) return;
    if (c->phase == CUDA_F32 && !cuda_is_standin(c, w) && cuda_rd(c, x, (size_t)M * K, op).f32 &&
        (cuda_is_weight(c, w) || cuda_rd(c, w, (size_t)N * K, op).f32)) {
        /* fp32 activations with fp32 operands: exactly the fp32 mode's sequence */
        if (!cuda_wr(c, y, (size_t)M * N, op).p) return;
        linear_fp32(c, x, w, b, y, M, N, K);
        if (act == SAMC_ACT_RELU) relu_launch(c, y, (size_t)M * N);
        else if (act == SAMC_ACT_GELU) gelu_launch(c, y, (size_t)M * N);
        if (r) add_launch(c, y, r, y, (size_t)M * N, (size_t)M * N);
        return;
    }
    const int g = c->sw.gemm;
    if ((c->phase == CUDA_LP || cuda_is_standin(c, w)) &&
        (g == CUDA_GEMM_TC || (g == CUDA_GEMM_LT_TC && act == SAMC_ACT_GELU))) {
        /* ours: one kernel for the product and everything after it (also for a 16-bit-only
         * weight in the fp32 phase: SAM3's linears, fp32 x converted, fp32 y) */
        gemm_tc_fold t = { bias, res, act };
        linear_product(c, x, w, y, M, N, K, NULL, &t, op);
        return;
    }
    if (c->phase == CUDA_LP && (g == CUDA_GEMM_LT || g == CUDA_GEMM_LT_TC)) {
        /* GEMM=lt: the bias (its 16-bit copy), ReLU after it, and the residual without an
         * activation go into cuBLASLt's epilogue; what is left (GELU, an fp32 residual or
         * bias) is the own pass, in the same order: bias, activation, residual */
        gemm_lt_fold f = { b ? cuda_rd16(c, b, (size_t)N, op) : NULL, NULL, 0 };
        if (c->failed) return;
        f.relu = act == SAMC_ACT_RELU && (f.bias || !b);
        if (r && act == SAMC_ACT_NONE && !res.f32) f.r = res.p;
        cuda_arg out = linear_product(c, x, w, y, M, N, K, &f, NULL, op);
        if (out.p)
            gemm_epilogue(c, out, f.bias ? cuda_arg{ NULL, 1 } : bias, 0, f.relu ? SAMC_ACT_NONE : act,
                          f.r ? cuda_arg{ NULL, 1 } : res, M, N);
        return;
    }
    cuda_arg out = linear_product(c, x, w, y, M, N, K, NULL, NULL, op);
    if (out.p) gemm_epilogue(c, out, bias, 0, act, res, M, N);
}

void linear_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M, int N,
                 int K) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) fill_empty_product(c, y, b, M, N, 0);
    else if (c->tracking) linear_typed(c, x, w, b, y, M, N, K, SAMC_ACT_NONE, NULL, "linear");
    else linear_fp32(c, x, w, b, y, M, N, K);
    CUDA_OP_DONE(c, "linear");
}

void linear_act_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M, int N,
                     int K, samc_act act, const float *r) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (M <= 0 || N <= 0) return;
    size_t n = (size_t)M * N;
    if (K > 0 && c->tracking) {
        linear_typed(c, x, w, b, y, M, N, K, act, r, "linear_act");
    } else {
        /* the unfused sequence: linear, then the activation in place, then y = r + y */
        if (K <= 0) fill_empty_product(c, y, b, M, N, 0);
        else linear_fp32(c, x, w, b, y, M, N, K);
        if (act == SAMC_ACT_RELU) relu_launch(c, y, n);
        else if (act == SAMC_ACT_GELU) gelu_launch(c, y, n);
        if (r) add_launch(c, y, r, y, n, n);
    }
    CUDA_OP_DONE(c, "linear_act");
}

/* ---- matmul -------------------------------------------------------------------------- */

/* c[M,N] = a[M,K] · b[K,N] once set_precision has been called; b (the activation: the map)
 * in column chunks when it must be converted and does not fit the scratch whole. */
static void matmul_typed(samc_cuda_ctx *c, const float *a, const float *b, const float *bias, float *cm, int M, int N,
                         int K) {
    const char *op = "matmul";
    int lowp = c->phase == CUDA_LP || cuda_is_standin(c, a);
    cuda_arg bs = cuda_rd(c, bias, (size_t)M, op);
    size_t used = 0;
    const void *av = operand(c, a, M, K, (size_t)K, lowp, &used, op);
    if (!av || (bias && !bs.p)) {
        if (!c->failed) too_large(c, op, M, N, K);
        return;
    }
    cuda_arg out = cuda_wr(c, cm, (size_t)M * N, op);
    if (!out.p) return;
    size_t base = used, es = out.f32 ? 4 : 2;
    int cols = N;
    for (int n0 = 0; n0 < N && !c->failed; n0 += cols) {
        used = base;
        const void *bv = NULL;
        while (!(bv = operand(c, b + n0, K, cols < N - n0 ? cols : N - n0, (size_t)N, lowp, &used, op)) &&
               !c->failed && cols > 8)
            cols = (cols / 2 + 7) & ~7;
        if (!bv) {
            if (!c->failed) too_large(c, op, M, N, K);
            return;
        }
        int nc = cols < N - n0 ? cols : N - n0;
        /* converted chunks are dense [K, nc]; an operand used in place keeps ld N */
        int ldb = (const char *)bv >= (const char *)c->scratch &&
                          (const char *)bv < (const char *)c->scratch + c->scratch_bytes ? nc : N;
        const float one = 1.0f, zero = 0.0f;
        /* C[nc,M] (ld N, from column n0) = A · B, A = b chunk as [nc,K] (ld ldb), B = a as [K,M] (ld K) */
        if (lowp ? gemm16(c, CUBLAS_OP_N, CUBLAS_OP_N, nc, M, K, bv, ldb, av, K, (char *)out.p + n0 * es, !out.f32, N)
                 : CUBLAS_CHECK(c, cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, nc, M, K, &one, (const float *)bv,
                                               ldb, (const float *)av, K, &zero, (float *)out.p + n0, N)))
            return;
    }
    if (!lowp && bias && bs.f32) add_channel_launch(c, cm, cm, bias, M, N); /* the fp32 op's bias pass */
    else gemm_epilogue(c, out, bs, 1, SAMC_ACT_NONE, cuda_arg{ NULL, 1 }, M, N);
}

void matmul_cuda(const samc_ops *o, const float *a, const float *b, const float *bias, float *cm, int M, int N,
                 int K) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        fill_empty_product(c, cm, bias, M, N, 1);
    } else if (c->tracking) {
        matmul_typed(c, a, b, bias, cm, M, N, K);
    } else {
        const float one = 1.0f, zero = 0.0f;
        /* C[N,M] (ld N) = A · B with A = b seen as [N,K] (ld N), B = a seen as [K,M] (ld K) */
        if (CUBLAS_CHECK(c, cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, b, N, a, K, &zero, cm, N)))
            return;
        if (bias) add_channel_launch(c, cm, cm, bias, M, N); /* c[m, n] += bias[m] */
    }
    CUDA_OP_DONE(c, "matmul");
}
