/* kernels/cuda/gemm.cu: linear (nn.Linear) and matmul (1x1 convolutions) on cuBLAS,
 * fp32 in and out with fp32 accumulation (the handle is in CUBLAS_DEFAULT_MATH, so no
 * TF32), the bias added by a second, memory-bound pass.
 *
 * cuBLAS is column-major. A row-major [R, C] matrix is the column-major [C, R] matrix
 * with leading dimension C, i.e. its transpose, so each product is written for the
 * transposed result:
 *   linear: y[M,N] = x[M,K] · w[N,K]ᵀ   <=>   yᵀ[N,M] = w · xᵀ  = op_T(wᵀ) · xᵀ
 *   matmul: c[M,N] = a[M,K] · b[K,N]    <=>   cᵀ[N,M] = bᵀ · aᵀ */
#include "cuda_common.cuh"

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
        /* C[N,M] (ld N) = op_T(A) · B with A = w seen as [K,N] (ld K), B = x seen as [K,M] (ld K) */
        if (CUBLAS_CHECK(c, cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w, K, x, K, &zero, y, N)))
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
        /* C[N,M] (ld N) = A · B with A = b seen as [N,K] (ld N), B = a seen as [K,M] (ld K) */
        if (CUBLAS_CHECK(c, cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, b, N, a, K, &zero, cm, N)))
            return;
        if (bias) add_channel_launch(c, cm, cm, bias, M, N); /* c[m, n] += bias[m] */
    }
    CUDA_OP_DONE(c, "matmul");
}
