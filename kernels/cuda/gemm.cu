/* kernels/cuda/gemm.cu: linear (nn.Linear) and matmul (1x1 convolutions) on cuBLAS, the
 * bias added by a second, memory-bound pass.
 *
 * fp32 (default): cublasSgemm, fp32 in and out with fp32 accumulation (the handle is in
 * CUBLAS_DEFAULT_MATH, so no TF32).
 * bf16 / fp16 (set_precision): a product whose weight operand lies in the registered
 * weight block runs as cublasGemmEx with 16-bit A and B, fp32 C and CUBLAS_COMPUTE_32F
 * (tensor cores, fp32 accumulation, fp32 output), the weights from a 16-bit copy made
 * once at registration, the activation operand converted per call into a scratch
 * buffer reserved at registration, in chunks of rows (linear) or columns (matmul) when
 * it does not fit. Any other product (the decoder's activation x activation matmul)
 * stays fp32. The bias pass is fp32 either way.
 *
 * cuBLAS is column-major. A row-major [R, C] matrix is the column-major [C, R] matrix
 * with leading dimension C, i.e. its transpose, so each product is written for the
 * transposed result:
 *   linear: y[M,N] = x[M,K] · w[N,K]ᵀ   <=>   yᵀ[N,M] = w · xᵀ  = op_T(wᵀ) · xᵀ
 *   matmul: c[M,N] = a[M,K] · b[K,N]    <=>   cᵀ[N,M] = bᵀ · aᵀ */
#include "kernels/cuda/cuda_common.cuh"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdio.h>

/* Activation scratch of the reduced modes: 16 Mi elements (32 MiB). The largest
 * activation operand of SAM2.1 at 1024 px (Hiera-L stage 1 mlp.1 input, 65536 x 576 =
 * 37.7 M) then runs in 3 chunks of ~22k rows, each still a large GEMM. */
#define ACT_CAP_ELEMS ((size_t)16 << 20)

/* ---- 16-bit conversion ------------------------------------------------------------- */

__device__ __forceinline__ void store_lowp(__nv_bfloat16 *d, float x) { *d = __float2bfloat16_rn(x); }
/* fp16 tops out at 65504: clamp so that a large activation stays large instead of
 * becoming inf (and NaN in the product); NaN fails both tests and passes through. */
__device__ __forceinline__ void store_lowp(__half *d, float x) {
    x = x > 65504.0f ? 65504.0f : x < -65504.0f ? -65504.0f : x;
    *d = __float2half_rn(x);
}

template <typename T> __global__ void to_lowp_flat(T *dst, const float *src, size_t n) {
    size_t step = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) store_lowp(dst + i, src[i]);
}

/* dst[r, col] (dense, [rows, cols]) = src[r * src_ld + col]: a column slice of a wider
 * row-major matrix. Rows along y, columns along x (coalesced reads and writes). */
template <typename T> __global__ void to_lowp_2d(T *dst, const float *src, int rows, int cols, size_t src_ld) {
    for (int r = blockIdx.y; r < rows; r += gridDim.y)
        for (int col = blockIdx.x * blockDim.x + threadIdx.x; col < cols; col += gridDim.x * blockDim.x)
            store_lowp(dst + (size_t)r * cols + col, src[(size_t)r * src_ld + col]);
}

static void convert_flat(samc_cuda_ctx *c, void *dst, const float *src, size_t n) {
    if (!n) return;
    unsigned blocks = cuda_blocks_for(c, n, 256);
    if (c->precision == SAMC_OPS_BF16)
        to_lowp_flat<<<blocks, 256, 0, c->stream>>>((__nv_bfloat16 *)dst, src, n);
    else
        to_lowp_flat<<<blocks, 256, 0, c->stream>>>((__half *)dst, src, n);
}

static void convert_2d(samc_cuda_ctx *c, void *dst, const float *src, int rows, int cols, size_t src_ld) {
    if (rows <= 0 || cols <= 0) return;
    dim3 grid((unsigned)((cols + 255) / 256 < 8 ? (cols + 255) / 256 : 8), (unsigned)(rows < 65535 ? rows : 65535));
    if (c->precision == SAMC_OPS_BF16)
        to_lowp_2d<<<grid, 256, 0, c->stream>>>((__nv_bfloat16 *)dst, src, rows, cols, src_ld);
    else
        to_lowp_2d<<<grid, 256, 0, c->stream>>>((__half *)dst, src, rows, cols, src_ld);
}

static cudaDataType_t lowp_type(const samc_cuda_ctx *c) {
    return c->precision == SAMC_OPS_BF16 ? CUDA_R_16BF : CUDA_R_16F;
}

/* The 16-bit copy of p[0 .. n) when that range lies inside the registered weight block,
 * else NULL. Compared as integers: p may come from any allocation. */
static const void *lowp_view(const samc_cuda_ctx *c, const float *p, size_t n) {
    if (!c->w_lowp || !p) return NULL;
    uintptr_t base = (uintptr_t)c->w_base, q = (uintptr_t)p;
    if (q < base || (q - base) % sizeof(float)) return NULL;
    size_t off = (q - base) / sizeof(float);
    if (off >= c->w_n || n > c->w_n - off) return NULL;
    return (const char *)c->w_lowp + off * 2;
}

/* How many rows of `len` elements fit the scratch: a multiple of 8 (so that each chunk's
 * output starts 32-byte aligned) unless fewer are needed; 0 if not even one fits. */
static int chunk_len(const samc_cuda_ctx *c, int want, int len) {
    size_t fit = c->act_cap / (size_t)(len > 0 ? len : 1);
    if (fit >= (size_t)want) return want;
    if (fit >= 8) fit -= fit % 8;
    return (int)fit;
}

/* ---- registration ------------------------------------------------------------------ */

static void release_lowp(samc_cuda_ctx *c) {
    if (c->w_lowp) cudaFree(c->w_lowp);
    if (c->act_lowp) cudaFree(c->act_lowp);
    c->w_lowp = c->act_lowp = NULL;
    c->w_base = NULL;
    c->w_n = c->act_cap = 0;
    c->precision = SAMC_OPS_FP32;
}

void gemm_cuda_release(samc_cuda_ctx *c) { release_lowp(c); }

int set_precision_cuda(const samc_ops *o, samc_ops_precision p, const float *weights, size_t n_weights, char *err) {
    samc_cuda_ctx *c = cuda_ctx(o);
    char scratch[512];
    if (!err) err = scratch;
    err[0] = '\0';
    if (c->stream) cudaStreamSynchronize(c->stream); /* nothing queued may still read the old copy */
    release_lowp(c);
    if (p == SAMC_OPS_FP32) return 0;
    if (p != SAMC_OPS_BF16 && p != SAMC_OPS_FP16) {
        snprintf(err, 512, "unknown precision %d", (int)p);
        return -1;
    }
    /* bf16 tensor-core GEMMs arrived with Ampere; fp16 ones run from Volta on, and the
     * issue's floor is Turing (T4). */
    const char *name = p == SAMC_OPS_BF16 ? "bf16" : "fp16";
    int need = p == SAMC_OPS_BF16 ? 80 : 75;
    if (c->cc < need) {
        snprintf(err, 512, "%s needs compute capability %d.%d or newer (sm_%d+); CUDA device %d is %.64s (sm_%d)",
                 name, need / 10, need % 10, need, c->device, c->device_name, c->cc);
        return -1;
    }
    size_t w_bytes = n_weights * 2, a_bytes = ACT_CAP_ELEMS * 2;
    cudaError_t e = n_weights ? cudaMalloc(&c->w_lowp, w_bytes) : cudaSuccess;
    if (e == cudaSuccess) e = cudaMalloc(&c->act_lowp, a_bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(err, 512, "cannot allocate %zu MiB of device memory for the %s weight copy and %zu MiB of %s "
                 "scratch: %s", w_bytes >> 20, name, a_bytes >> 20, name, cudaGetErrorString(e));
        release_lowp(c);
        return -1;
    }
    c->precision = p;
    c->w_base = weights;
    c->w_n = n_weights;
    c->act_cap = ACT_CAP_ELEMS;
    convert_flat(c, c->w_lowp, weights, n_weights);
    if (CUDA_OP_DONE(c, "set_precision") || CUDA_CHECK(c, cudaStreamSynchronize(c->stream))) {
        snprintf(err, 512, "converting %zu weights to %s: %.400s", n_weights, name, c->err);
        release_lowp(c);
        return -1;
    }
    return 0;
}

/* ---- 16-bit products --------------------------------------------------------------- */

/* y[M,N] = x[M,K] · w[N,K]ᵀ with w16 the 16-bit copy of w. 0, -1 (error recorded), or 1:
 * not done (a row of x does not fit the scratch), take the fp32 path. */
static int linear_lowp(samc_cuda_ctx *c, const float *x, const void *w16, float *y, int M, int N, int K) {
    const float one = 1.0f, zero = 0.0f;
    cudaDataType_t t = lowp_type(c);
    const void *x16 = lowp_view(c, x, (size_t)M * K);
    int rows = x16 ? M : chunk_len(c, M, K);
    if (rows <= 0) return 1;
    for (int m0 = 0; m0 < M; m0 += rows) {
        int mc = M - m0 < rows ? M - m0 : rows;
        const void *xb = x16 ? (const void *)((const char *)x16 + (size_t)m0 * K * 2) : c->act_lowp;
        if (!x16) convert_flat(c, c->act_lowp, x + (size_t)m0 * K, (size_t)mc * K);
        /* C[N,mc] (ld N) = op_T(A) · B, A = w16 as [K,N] (ld K), B = chunk of x as [K,mc] (ld K) */
        if (CUBLAS_CHECK(c, cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, mc, K, &one, w16, t, K, xb, t, K,
                                         &zero, y + (size_t)m0 * N, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                                         CUBLAS_GEMM_DEFAULT)))
            return -1;
    }
    return 0;
}

/* c[M,N] = a[M,K] · b[K,N] with a16 the 16-bit copy of a; b in column chunks. */
static int matmul_lowp(samc_cuda_ctx *c, const void *a16, const float *b, float *cm, int M, int N, int K) {
    const float one = 1.0f, zero = 0.0f;
    cudaDataType_t t = lowp_type(c);
    const void *b16 = lowp_view(c, b, (size_t)K * N);
    int cols = b16 ? N : chunk_len(c, N, K);
    if (cols <= 0) return 1;
    for (int n0 = 0; n0 < N; n0 += cols) {
        int nc = N - n0 < cols ? N - n0 : cols;
        const void *bb = b16 ? (const void *)((const char *)b16 + (size_t)n0 * 2) : c->act_lowp;
        int ldb = b16 ? N : nc;
        if (!b16) convert_2d(c, c->act_lowp, b + n0, K, nc, (size_t)N);
        /* C[nc,M] (ld N, from column n0) = A · B, A = chunk of b as [nc,K] (ld ldb),
         * B = a16 as [K,M] (ld K) */
        if (CUBLAS_CHECK(c, cublasGemmEx(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, nc, M, K, &one, bb, t, ldb, a16, t, K,
                                         &zero, cm + n0, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)))
            return -1;
    }
    return 0;
}

/* ---- ops --------------------------------------------------------------------------- */

/* y = bias broadcast (or zeros) when K == 0: the product is empty. */
static void fill_empty_product(samc_cuda_ctx *c, float *y, const float *bias, int M, int N, int bias_per_row) {
    size_t n = (size_t)M * N;
    if (!bias) {
        CUDA_CHECK(c, cudaMemsetAsync(y, 0, n * sizeof(float), c->stream));
        return;
    }
    if (bias_per_row)
        add_channel_launch(c, y, NULL, bias, M, N);
    else
        add_launch(c, y, NULL, bias, n, (size_t)N);
}

void linear_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M, int N,
                 int K) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        fill_empty_product(c, y, b, M, N, 0);
    } else {
        const float one = 1.0f, zero = 0.0f;
        const void *w16 = lowp_view(c, w, (size_t)N * K);
        int rc = w16 ? linear_lowp(c, x, w16, y, M, N, K) : 1;
        if (rc < 0) return;
        /* C[N,M] (ld N) = op_T(A) · B with A = w seen as [K,N] (ld K), B = x seen as [K,M] (ld K) */
        if (rc > 0 &&
            CUBLAS_CHECK(c, cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w, K, x, K, &zero, y, N)))
            return;
        if (b) add_launch(c, y, y, b, (size_t)M * N, (size_t)N); /* y[m, n] += b[n] */
    }
    CUDA_OP_DONE(c, "linear");
}

void matmul_cuda(const samc_ops *o, const float *a, const float *b, const float *bias, float *cm, int M, int N,
                 int K) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        fill_empty_product(c, cm, bias, M, N, 1);
    } else {
        const float one = 1.0f, zero = 0.0f;
        const void *a16 = lowp_view(c, a, (size_t)M * K);
        int rc = a16 ? matmul_lowp(c, a16, b, cm, M, N, K) : 1;
        if (rc < 0) return;
        /* C[N,M] (ld N) = A · B with A = b seen as [N,K] (ld N), B = a seen as [K,M] (ld K) */
        if (rc > 0 &&
            CUBLAS_CHECK(c, cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, b, N, a, K, &zero, cm, N)))
            return;
        if (bias) add_channel_launch(c, cm, cm, bias, M, N); /* c[m, n] += bias[m] */
    }
    CUDA_OP_DONE(c, "matmul");
}
