/* tests/cuda_sim/test_sim.cu: the simulator's own tests (make sim-test). CUDA C++ compiled
 * by tests/cuda_sim/cu2cpp like the backend, and linked with the simulator's runtime.
 *
 * What the simulator must give kernels (warp shuffles and votes, barrier reductions,
 * wmma, cuBLASLt epilogues, stream capture and graph replay, events) is checked against
 * host arithmetic; what it must catch (a missing barrier, divergent barriers and warp
 * operations, a deadlock, shared and global memory past its end, too much dynamic shared
 * memory, bad launch configurations, bad cuBLAS arguments, operations forbidden during
 * capture) must come back as the CUDA error a GPU gives, with a message naming it.
 * cudaDeviceReset clears the sticky error after each deliberate fault. */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>
#include "tests/test.h"

/* ------------------------------------------------------------------ helpers */

static float *dev_upload(const float *h, size_t n) {
    float *d = NULL;
    CHECK(cudaMalloc((void **)&d, n * sizeof(float)) == cudaSuccess);
    if (d && h) CHECK(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
    return d;
}

static void dev_download(float *h, const float *d, size_t n) {
    CHECK(cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
}

/* The sticky error a deliberate fault left, checked for its code and a word of its
 * message, then cleared. */
static void expect_fault(cudaError_t want, const char *word, const char *what) {
    cudaError_t e = cudaDeviceSynchronize();
    const char *msg = cudaGetErrorString(e);
    CHECKF(e == want, "%s: got %s (%s), want %s", what, cudaGetErrorName(e), msg, cudaGetErrorName(want));
    CHECKF(strstr(msg, word) != NULL, "%s: message \"%s\" lacks \"%s\"", what, msg, word);
    if (e != cudaSuccess) printf("  caught %s: %s\n", what, msg);
    cudaDeviceReset();
}

static unsigned lcg(unsigned *s) { return *s = *s * 1664525u + 1013904223u; }
static float frand(unsigned *s) { return (float)(lcg(s) >> 8) / 8388608.0f - 1.0f; }

/* ------------------------------------------------------------------ warp operations */

__global__ void shuffle_kernel(int *out) {
    int lane = threadIdx.x & 31, v = lane * 10 + (int)threadIdx.x / 32;
    int *o = out + threadIdx.x * 8;
    o[0] = __shfl_xor_sync(0xffffffffu, v, 5);
    o[1] = __shfl_down_sync(0xffffffffu, v, 3);
    o[2] = __shfl_up_sync(0xffffffffu, v, 2, 8);
    o[3] = __shfl_sync(0xffffffffu, v, 7, 16);
    o[4] = (int)__ballot_sync(0xffffffffu, lane % 3 == 0);
    o[5] = __any_sync(0xffffffffu, lane == 31) + 2 * __all_sync(0xffffffffu, lane < 31);
    o[6] = __syncthreads_count(threadIdx.x % 4 == 0);
    o[7] = __syncthreads_and(threadIdx.x < 1000) + 2 * __syncthreads_or(threadIdx.x == 63);
}

static void test_warp_ops(void) {
    int *d = NULL, h[64 * 8];
    CHECK(cudaMalloc((void **)&d, sizeof h) == cudaSuccess);
    shuffle_kernel<<<1, 64>>>(d);
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost) == cudaSuccess);
    int bad = 0;
    for (int t = 0; t < 64; t++) {
        int lane = t & 31, w = t / 32, *o = h + t * 8;
        int down = lane + 3 < 32 ? lane + 3 : lane, up = lane % 8 >= 2 ? lane - 2 : lane;
        bad += o[0] != ((lane ^ 5) * 10 + w) || o[1] != down * 10 + w || o[2] != up * 10 + w;
        bad += o[3] != ((lane & 16) + 7) * 10 + w || o[4] != (int)0x49249249u || o[5] != 1;
        bad += o[6] != 16 || o[7] != 3;
    }
    CHECKF(bad == 0, "%d wrong shuffle / vote / barrier results", bad);
    cudaFree(d);
}

/* ------------------------------------------------------------------ barriers */

/* Sum of 256 values through shared memory; without the barrier, threads read partial
 * sums other warps have not written yet (poison, or stale values). */
__global__ void block_sum(const float *x, float *out, int with_barrier) {
    __shared__ float s[256];
    s[threadIdx.x] = x[threadIdx.x];
    for (int half = 128; half > 0; half /= 2) {
        if (with_barrier) __syncthreads();
        if ((int)threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
    }
    if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

static void test_missing_barrier(void) {
    float h[256], ref = 0.0f, got[2];
    for (int i = 0; i < 256; i++) h[i] = (float)(i % 7), ref += h[i];
    float *dx = dev_upload(h, 256), *dout = dev_upload(NULL, 2);
    block_sum<<<1, 256>>>(dx, dout, 1);
    block_sum<<<1, 256>>>(dx, dout + 1, 0);
    dev_download(got, dout, 2);
    CHECKF(got[0] == ref, "with barriers: %g, want %g", got[0], ref);
    CHECKF(!(got[1] == ref), "without barriers the sum came out right (%g): the race went unseen", got[1]);
    printf("  block sum: %g with barriers, %g without (want %g)\n", got[0], got[1], ref);
    cudaFree(dx);
    cudaFree(dout);
}

__global__ void divergent_barrier(float *x) {
    if (threadIdx.x < 32) __syncthreads();
    else __syncthreads();
    x[threadIdx.x] = 1.0f;
}

__global__ void shfl_after_exit(float *x) {
    if (threadIdx.x == 3) return;
    x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

__global__ void deadlock(float *x) {
    if (threadIdx.x == 0) __syncthreads();
    else x[threadIdx.x] = __shfl_sync(0xffffffffu, 1.0f, 0);
}

static void test_divergence(void) {
    float *d = dev_upload(NULL, 64);
    divergent_barrier<<<1, 64>>>(d);
    expect_fault(cudaErrorLaunchFailure, "divergent __syncthreads", "two __syncthreads of one block");
    d = dev_upload(NULL, 64);
    shfl_after_exit<<<1, 32>>>(d);
    expect_fault(cudaErrorLaunchFailure, "exited", "a shuffle whose mask names an exited lane");
    d = dev_upload(NULL, 64);
    deadlock<<<1, 32>>>(d);
    expect_fault(cudaErrorLaunchFailure, "deadlocked", "a barrier against a warp shuffle");
}

/* ------------------------------------------------------------------ memory faults */

__global__ void smem_overrun(float *out, int n) {
    __shared__ float s[100];
    float *p = s; /* through a pointer: only the guard page can see it */
    for (int i = threadIdx.x; i < n; i += blockDim.x) p[i] = (float)i;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

__global__ void smem_index(float *out, int i) {
    __shared__ float s[32];
    s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[i]; /* a fixed-size array: -fsanitize=bounds sees the index */
}

__global__ void dyn_smem_kernel(float *out, int n) {
    extern __shared__ float dyn[];
    for (int i = threadIdx.x; i < n; i += blockDim.x) dyn[i] = (float)i;
    __syncthreads();
    out[threadIdx.x] = dyn[threadIdx.x];
}

__global__ void global_overrun(float *x, int n) {
    for (int i = threadIdx.x; i <= n; i += blockDim.x) x[i] = 0.0f; /* one past the end */
}

static void test_memory_faults(void) {
    float *d = dev_upload(NULL, 4096);
    smem_overrun<<<1, 32>>>(d, 100);
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    smem_overrun<<<1, 32>>>(d, 100 + 1200);
    expect_fault(cudaErrorIllegalAddress, "__shared__ s", "a write past a __shared__ array");
    d = dev_upload(NULL, 64);
    smem_index<<<1, 32>>>(d, 31);
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    smem_index<<<1, 32>>>(d, 32);
    expect_fault(cudaErrorIllegalInstruction, "out-of-bounds", "an index past a __shared__ array");
    d = dev_upload(NULL, 4096);
    dyn_smem_kernel<<<1, 64, 1000 * sizeof(float)>>>(d, 1000);
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    dyn_smem_kernel<<<1, 64, 1000 * sizeof(float)>>>(d, 1000 + 1100);
    expect_fault(cudaErrorIllegalAddress, "dynamic shared memory", "a write past the dynamic shared memory");
    d = dev_upload(NULL, 1000);
    global_overrun<<<1, 128>>>(d, 1000);
    expect_fault(cudaErrorIllegalAddress, "past the end of a 4000-byte cudaMalloc block", "one float past an allocation");
    d = dev_upload(NULL, 1024);
    global_overrun<<<1, 128>>>(d, 1024);
    expect_fault(cudaErrorIllegalAddress, "4096-byte cudaMalloc block", "one float past a page-sized allocation");
}

static void test_launch_checks(void) {
    float *d = dev_upload(NULL, 64 * 1024);
    dyn_smem_kernel<<<1, 64, 64 * 1024>>>(d, 64);
    cudaError_t e = cudaGetLastError();
    CHECKF(e == cudaErrorInvalidValue, "64 KB of dynamic shared memory without the attribute: %s", cudaGetErrorName(e));
    CHECK(cudaGetLastError() == cudaSuccess); /* not sticky */
    CHECK(cudaFuncSetAttribute(dyn_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) == cudaSuccess);
    dyn_smem_kernel<<<1, 64, 64 * 1024>>>(d, 64 * 256);
    CHECK(cudaGetLastError() == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess);
    CHECK(cudaFuncSetAttribute(dyn_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 1 << 20) ==
          cudaErrorInvalidValue);
    cudaGetLastError();
    dyn_smem_kernel<<<1, 2048>>>(d, 1);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    dyn_smem_kernel<<<dim3(1, 70000), 32>>>(d, 1);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    float h[4];
    CHECK(cudaMemcpy(h, h, sizeof h, cudaMemcpyHostToDevice) == cudaErrorInvalidValue); /* swapped pointers */
    CHECK(cudaMemcpy(d + 64 * 1024 - 2, h, sizeof h, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    cudaGetLastError();
    cudaDeviceReset();
}

/* ------------------------------------------------------------------ wmma */

using namespace nvcuda;

/* C[M, N] (row-major, fp32) = A[M, K] (row-major) · B[K, N] (col-major) for 16-bit A and
 * B, one warp per 16x16 tile of C, K in steps of 16; then C scaled by 2 elementwise on
 * the fragment (any layout of x[] must do for that). */
template <class T> __global__ void wmma_gemm(const T *a, const T *b, float *c, int M, int N, int K) {
    int warp = threadIdx.x / 32, tiles_n = N / 16;
    int tm = (blockIdx.x * (blockDim.x / 32) + warp) / tiles_n, tn = (blockIdx.x * (blockDim.x / 32) + warp) % tiles_n;
    if (tm * 16 >= M) return;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
    wmma::fill_fragment(fc, 0.0f);
    for (int k = 0; k < K; k += 16) {
        wmma::load_matrix_sync(fa, a + (size_t)tm * 16 * K + k, K);
        wmma::load_matrix_sync(fb, b + (size_t)tn * 16 * K + k, K);
        wmma::mma_sync(fc, fa, fb, fc);
    }
    for (int i = 0; i < fc.num_elements; i++) fc.x[i] *= 2.0f;
    wmma::store_matrix_sync(c + (size_t)tm * 16 * N + tn * 16, fc, N, wmma::mem_row_major);
}

/* tf32 m16n16k8, C loaded from memory column-major and stored back column-major. */
__global__ void wmma_tf32(const float *a, const float *b, float *c) {
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> fc;
    wmma::load_matrix_sync(fa, a, 8);
    wmma::load_matrix_sync(fb, b, 16);
    for (int i = 0; i < fa.num_elements; i++) fa.x[i] = __float_to_tf32(fa.x[i]);
    for (int i = 0; i < fb.num_elements; i++) fb.x[i] = __float_to_tf32(fb.x[i]);
    wmma::load_matrix_sync(fc, c, 16, wmma::mem_col_major);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(c, fc, 16, wmma::mem_col_major);
}

__global__ void wmma_bad_ldm(const __half *a, float *c) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::load_matrix_sync(fa, a, 12); /* 24 bytes: not a multiple of 16 */
    c[threadIdx.x] = 0.0f;
}

template <class T> static void wmma_case(const char *name, T (*to)(float), float (*from)(T)) {
    const int M = 32, N = 48, K = 64;
    unsigned seed = 7;
    T ha[M * K], hb[N * K];
    float c[M * N], ref[M * N];
    for (int i = 0; i < M * K; i++) ha[i] = to(frand(&seed));
    for (int i = 0; i < N * K; i++) hb[i] = to(frand(&seed));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)from(ha[i * K + k]) * from(hb[j * K + k]);
            ref[i * N + j] = (float)(2.0 * s);
        }
    T *da = NULL, *db = NULL;
    float *dc = dev_upload(NULL, M * N);
    CHECK(cudaMalloc((void **)&da, sizeof ha) == cudaSuccess && cudaMalloc((void **)&db, sizeof hb) == cudaSuccess);
    cudaMemcpy(da, ha, sizeof ha, cudaMemcpyHostToDevice);
    cudaMemcpy(db, hb, sizeof hb, cudaMemcpyHostToDevice);
    wmma_gemm<T><<<(M / 16) * (N / 16) / 2, 64>>>(da, db, dc, M, N, K);
    dev_download(c, dc, M * N);
    int bad = 0;
    for (int i = 0; i < M * N; i++) bad += fabsf(c[i] - ref[i]) > 1e-5f * (1.0f + fabsf(ref[i]));
    CHECKF(bad == 0, "wmma %s: %d of %d wrong (c[0] %g, want %g)", name, bad, M * N, c[0], ref[0]);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
}

static __half to_half(float v) { return __float2half_rn(v); }
static __nv_bfloat16 to_bf16(float v) { return __float2bfloat16_rn(v); }

static void test_wmma(void) {
    wmma_case<__half>("fp16", to_half, __half2float);
    wmma_case<__nv_bfloat16>("bf16", to_bf16, __bfloat162float);
    unsigned seed = 3;
    float a[16 * 8], b[8 * 16], c[16 * 16], out[16 * 16];
    for (float &v : a) v = frand(&seed);
    for (float &v : b) v = frand(&seed);
    for (float &v : c) v = frand(&seed);
    float *da = dev_upload(a, 128), *db = dev_upload(b, 128), *dc = dev_upload(c, 256);
    wmma_tf32<<<1, 32>>>(da, db, dc);
    dev_download(out, dc, 256);
    int bad = 0;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            double s = c[j * 16 + i]; /* column-major C */
            for (int k = 0; k < 8; k++) s += (double)__float_to_tf32(a[i * 8 + k]) * __float_to_tf32(b[k * 16 + j]);
            bad += fabs(out[j * 16 + i] - s) > 1e-5;
        }
    CHECKF(bad == 0, "wmma tf32: %d of 256 wrong", bad);
    wmma_bad_ldm<<<1, 32>>>((const __half *)da, dc);
    expect_fault(cudaErrorMisalignedAddress, "ldm", "wmma::load_matrix_sync with ldm 12 halves");
}

/* ------------------------------------------------------------------ cuBLASLt epilogues */

/* D[m, n] (column-major) = epilogue(A[m, k] · B[k, n] + bias[m]) on the host. */
static float lt_ref(const float *a, const float *b, const float *bias, int m, int k, int i, int j,
                    cublasLtEpilogue_t epi) {
    double s = 0;
    for (int l = 0; l < k; l++) s += (double)a[i + l * m] * b[l + j * k];
    float v = (float)s;
    if (epi == CUBLASLT_EPILOGUE_BIAS || epi == CUBLASLT_EPILOGUE_GELU_BIAS || epi == CUBLASLT_EPILOGUE_RELU_BIAS)
        v += bias[i];
    if (epi == CUBLASLT_EPILOGUE_RELU_BIAS) v = v > 0 ? v : 0;
    if (epi == CUBLASLT_EPILOGUE_GELU || epi == CUBLASLT_EPILOGUE_GELU_BIAS)
        v = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    return v;
}

static void lt_case(cublasLtHandle_t lt, cublasLtEpilogue_t epi, const char *name) {
    const int m = 24, n = 20, k = 40;
    unsigned seed = 11;
    float a[m * k], b[k * n], bias[m], d[m * n];
    for (float &v : a) v = frand(&seed);
    for (float &v : b) v = frand(&seed);
    for (float &v : bias) v = frand(&seed);
    float *da = dev_upload(a, m * k), *db = dev_upload(b, k * n), *dbias = dev_upload(bias, m), *dd = dev_upload(NULL, m * n);
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld;
    CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &dbias, sizeof dbias) == CUBLAS_STATUS_SUCCESS);
    cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, m, k, m);
    cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, k, n, k);
    cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, m, n, m);
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    cublasLtMatmulHeuristicResult_t res;
    int got = 0;
    CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, &res, &got) == CUBLAS_STATUS_SUCCESS && got == 1);
    float one = 1.0f, zero = 0.0f;
    CHECK(cublasLtMatmul(lt, desc, &one, da, la, db, lb, &zero, dd, ld, dd, ld, &res.algo, NULL, 0, NULL) ==
          CUBLAS_STATUS_SUCCESS);
    dev_download(d, dd, m * n);
    int bad = 0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) bad += fabsf(d[i + j * m] - lt_ref(a, b, bias, m, k, i, j, epi)) > 1e-5f;
    CHECKF(bad == 0, "cublasLtMatmul %s: %d of %d wrong", name, bad, m * n);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(ld);
    cublasLtMatmulDescDestroy(desc);
    cudaFree(da); cudaFree(db); cudaFree(dbias); cudaFree(dd);
}

static void test_cublaslt(void) {
    cublasLtHandle_t lt;
    CHECK(cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS);
    lt_case(lt, CUBLASLT_EPILOGUE_DEFAULT, "default");
    lt_case(lt, CUBLASLT_EPILOGUE_BIAS, "bias");
    lt_case(lt, CUBLASLT_EPILOGUE_GELU, "gelu");
    lt_case(lt, CUBLASLT_EPILOGUE_GELU_BIAS, "gelu+bias");
    lt_case(lt, CUBLASLT_EPILOGUE_RELU_BIAS, "relu+bias");
    /* a bias epilogue without a bias, and a row-major layout, are refused */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t l;
    cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    cublasLtMatrixLayoutCreate(&l, CUDA_R_32F, 4, 4, 4);
    float *d = dev_upload(NULL, 16), one = 1.0f, zero = 0.0f;
    CHECK(cublasLtMatmul(lt, desc, &one, d, l, d, l, &zero, d, l, d, l, NULL, NULL, 0, NULL) == CUBLAS_STATUS_INVALID_VALUE);
    int32_t row = CUBLASLT_ORDER_ROW;
    cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_ORDER, &row, sizeof row);
    CHECK(cublasLtMatmul(lt, desc, &one, d, l, d, l, &zero, d, l, d, l, NULL, NULL, 0, NULL) == CUBLAS_STATUS_NOT_SUPPORTED);
    cublasLtMatrixLayoutDestroy(l);
    cublasLtMatmulDescDestroy(desc);
    cudaFree(d);
    cublasLtDestroy(lt);
}

/* ------------------------------------------------------------------ streams, capture, graphs, events */

__global__ void axpy(float *y, const float *x, float a, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] += a * x[i];
}

/* Captures copy-in, a kernel, a cuBLAS GEMM and copy-out on a stream; nothing runs until
 * the graph is launched, and each replay reads the host buffer as it is then. */
static void test_graph(void) {
    const int n = 64;
    float hin[n], hout[n], *dx = dev_upload(NULL, n), *dy = dev_upload(NULL, n), *dz = dev_upload(NULL, n);
    cudaStream_t s;
    cublasHandle_t blas;
    CHECK(cudaStreamCreate(&s) == cudaSuccess);
    CHECK(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasSetStream(blas, s) == CUBLAS_STATUS_SUCCESS);
    cudaMemset(dy, 0, n * sizeof(float));
    for (int i = 0; i < n; i++) hout[i] = -1.0f;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
    cudaStreamCaptureStatus st;
    CHECK(cudaStreamIsCapturing(s, &st) == cudaSuccess && st == cudaStreamCaptureStatusActive);
    cudaMemcpyAsync(dx, hin, sizeof hin, cudaMemcpyHostToDevice, s);
    axpy<<<2, 32, 0, s>>>(dy, dx, 2.0f, n);
    float one = 1.0f, zero = 0.0f;
    /* dz[8x8] = dy[8x8] · I: a GEMM node */
    CHECK(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, dy, 8, dx, 8, &zero, dz, 8) == CUBLAS_STATUS_SUCCESS);
    cudaMemcpyAsync(hout, dz, sizeof hout, cudaMemcpyDeviceToHost, s);
    cudaGraph_t g;
    CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess && g);
    size_t nodes = 0;
    CHECK(cudaGraphGetNodes(g, NULL, &nodes) == cudaSuccess && nodes == 4);
    CHECKF(hout[0] == -1.0f, "the capture ran its operations (hout[0] = %g)", hout[0]);
    cudaGraphExec_t ex;
    CHECK(cudaGraphInstantiate(&ex, g, 0) == cudaSuccess);
    for (int rep = 1; rep <= 2; rep++) {
        /* x = identity 8x8 scaled by rep; y accumulates 2x per replay */
        for (int i = 0; i < n; i++) hin[i] = i % 9 == 0 ? (float)rep : 0.0f;
        CHECK(cudaGraphLaunch(ex, s) == cudaSuccess && cudaStreamSynchronize(s) == cudaSuccess);
        /* y gains 2x each replay: after replay 1 its diagonal is 2, after replay 2 it is
         * 2 + 2*2 = 6; z = y · x = y * rep on the diagonal */
        float diag = rep == 1 ? 2.0f : 6.0f;
        int bad = 0;
        for (int i = 0; i < n; i++) bad += hout[i] != (i % 9 == 0 ? diag * (float)rep : 0.0f);
        CHECKF(bad == 0, "graph replay %d: %d wrong (hout[0] = %g)", rep, bad, hout[0]);
    }
    cudaGraphExecDestroy(ex);
    cudaGraphDestroy(g);
    /* forbidden during capture: a synchronize invalidates it */
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
    CHECK(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported);
    CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated && !g);
    cudaGetLastError();
    cublasDestroy(blas);
    cudaStreamDestroy(s);
    cudaFree(dx); cudaFree(dy); cudaFree(dz);
}

static void test_events(void) {
    cudaEvent_t a, b, c;
    float ms = -1.0f, *d = dev_upload(NULL, 1 << 16);
    CHECK(cudaEventCreate(&a) == cudaSuccess);
    CHECK(cudaEventCreate(&b) == cudaSuccess);
    CHECK(cudaEventCreateWithFlags(&c, cudaEventDisableTiming) == cudaSuccess);
    CHECK(cudaEventElapsedTime(&ms, a, b) == cudaErrorInvalidResourceHandle); /* never recorded */
    cudaEventRecord(a, 0);
    axpy<<<4, 256>>>(d, d, 1.0f, 1 << 16);
    cudaEventRecord(b, 0);
    cudaEventRecord(c, 0);
    CHECK(cudaEventSynchronize(b) == cudaSuccess);
    CHECK(cudaEventElapsedTime(&ms, a, b) == cudaSuccess && ms >= 0.0f);
    CHECK(cudaEventElapsedTime(&ms, a, c) == cudaErrorInvalidResourceHandle); /* timing disabled */
    cudaGetLastError();
    cudaEventDestroy(a); cudaEventDestroy(b); cudaEventDestroy(c);
    cudaFree(d);
}

/* Events in graphs: a plain record while capturing records nothing at replay, an external
 * one is a node that records the event each replay; allocation while capturing fails and
 * invalidates the capture; page-locked host memory. */
static void test_graph_events(void) {
    cudaStream_t s;
    cudaEvent_t plain, ext0, ext1;
    float ms = -1.0f, *d = dev_upload(NULL, 256), *pinned = NULL;
    CHECK(cudaStreamCreate(&s) == cudaSuccess);
    CHECK(cudaEventCreate(&plain) == cudaSuccess && cudaEventCreate(&ext0) == cudaSuccess &&
          cudaEventCreate(&ext1) == cudaSuccess);
    CHECK(cudaMallocHost((void **)&pinned, 256 * sizeof(float)) == cudaSuccess && pinned);
    CHECK(cudaFreeHost(d) == cudaErrorInvalidValue); /* not page-locked host memory */
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CHECK(cudaEventRecord(plain, s) == cudaSuccess);
    CHECK(cudaEventRecordWithFlags(ext0, s, cudaEventRecordExternal) == cudaSuccess);
    axpy<<<1, 256, 0, s>>>(d, d, 1.0f, 256);
    CHECK(cudaEventRecordWithFlags(ext1, s, cudaEventRecordExternal) == cudaSuccess);
    cudaGraph_t g;
    CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess);
    cudaGraphExec_t ex;
    CHECK(cudaGraphInstantiateWithFlags(&ex, g, 0) == cudaSuccess);
    CHECK(cudaEventElapsedTime(&ms, ext0, ext1) == cudaErrorInvalidResourceHandle); /* not run yet */
    CHECK(cudaGraphLaunch(ex, s) == cudaSuccess && cudaStreamSynchronize(s) == cudaSuccess);
    CHECK(cudaEventElapsedTime(&ms, ext0, ext1) == cudaSuccess && ms >= 0.0f);
    CHECK(cudaEventElapsedTime(&ms, plain, ext1) == cudaErrorInvalidResourceHandle); /* never recorded */
    cudaGetLastError();
    cudaGraphExecDestroy(ex);
    cudaGraphDestroy(g);
    void *p = NULL;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CHECK(cudaMalloc(&p, 64) == cudaErrorStreamCaptureUnsupported);
    CHECK(cudaMallocHost(&p, 64) == cudaErrorStreamCaptureUnsupported);
    CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated && !g);
    cudaGetLastError();
    CHECK(cudaFreeHost(pinned) == cudaSuccess);
    cudaEventDestroy(plain); cudaEventDestroy(ext0); cudaEventDestroy(ext1);
    cudaStreamDestroy(s);
    cudaFree(d);
}

/* ------------------------------------------------------------------ cuBLAS argument checks */

static void test_cublas_checks(void) {
    cublasHandle_t h;
    CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    float *a = dev_upload(NULL, 64), one = 1.0f, zero = 0.0f;
    /* lda below the rows op(A) stores: what a wrong transpose flag usually gives */
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 4, 2, &one, a, 2, a, 2, &zero, a, 8) == CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, 8, 4, 2, &one, a, 2, a, 2, &zero, a, 8) == CUBLAS_STATUS_SUCCESS);
    /* 16-bit inputs with fp16 compute into fp32 C: not a supported combination */
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, a, CUDA_R_16BF, 4, a, CUDA_R_16BF, 4, &zero, a,
                       CUDA_R_32F, 4, CUBLAS_COMPUTE_16F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED);
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, a, CUDA_R_16BF, 4, a, CUDA_R_16BF, 4, &zero, a,
                       CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    /* the workspace must be device memory */
    float host_ws[64];
    CHECK(cublasSetWorkspace(h, host_ws, sizeof host_ws) == CUBLAS_STATUS_INVALID_VALUE);
    /* a matrix past its allocation: the GEMM faults */
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 9, 8, &one, a, 8, a, 8, &zero, a, 8) == CUBLAS_STATUS_SUCCESS);
    expect_fault(cudaErrorIllegalAddress, "cublasSgemm", "a GEMM reading past its matrix");
    /* TF32 math mode rounds fp32 inputs to 10 mantissa bits */
    CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    float x = 1.0f + 1.0f / 4096, got[2] = { 0, 0 }, *d = dev_upload(&x, 1), *dy = dev_upload(NULL, 2);
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, d, 1, d, 1, &zero, dy, 1);
    cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH);
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, d, 1, d, 1, &zero, dy + 1, 1);
    dev_download(got, dy, 2);
    CHECKF(got[0] == x * x && got[1] == 1.0f, "fp32 %.9g (want %.9g), tf32 %.9g (want 1)", got[0], x * x, got[1]);
    cublasDestroy(h);
    cudaDeviceReset();
}

TEST_MAIN(TEST_CASE(test_warp_ops), TEST_CASE(test_missing_barrier), TEST_CASE(test_divergence),
          TEST_CASE(test_memory_faults), TEST_CASE(test_launch_checks), TEST_CASE(test_wmma), TEST_CASE(test_cublaslt),
          TEST_CASE(test_graph), TEST_CASE(test_events), TEST_CASE(test_graph_events), TEST_CASE(test_cublas_checks))
