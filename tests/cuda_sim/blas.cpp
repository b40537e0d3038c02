/* tests/cuda_sim/blas.cpp: cuBLAS (cublasSgemm, cublasGemmEx and their strided-batched
 * forms, handle / stream / workspace / math-mode calls) and cuBLASLt (cublasLtMatmul with
 * the bias, ReLU and GELU epilogues) on the host.
 *
 * The arguments are checked as the libraries document: dimensions, leading dimensions
 * against the transposition flags (a wrong flag usually fails here with
 * CUBLAS_STATUS_INVALID_VALUE, and where the leading dimension happens to allow it the
 * product is simply wrong), the supported type / compute-type combinations
 * (CUBLAS_STATUS_NOT_SUPPORTED otherwise), and every matrix lying inside one live
 * cudaMalloc block (a sticky cudaErrorIllegalAddress otherwise, as the GEMM kernel would
 * fault). The product itself is column-major, as cuBLAS: C(i,j) = alpha * sum_k op(A)(i,k)
 * op(B)(k,j) + beta * C(i,j), with C not read when beta == 0. Inputs are rounded as the
 * hardware rounds them: to TF32 under CUBLAS_TF32_TENSOR_OP_MATH or
 * CUBLAS_COMPUTE_32F_FAST_TF32, to fp16 / bf16 under the FAST_16F / FAST_16BF compute
 * types; 16-bit inputs are used as they are. Products are summed in double (more exact
 * than a GPU's fp32 accumulation: the simulator cannot reproduce its summation order) and
 * rounded once to the output type. The GELU epilogue is the tanh approximation that
 * cuBLASLt computes, not the erf GELU of nn.GELU(). */
#include "tests/cuda_sim/sim.h"
#include "cublasLt.h"
#include "cudasim_lowp.h"
#include <stdio.h>
#include <string.h>
#include <vector>

struct cublasContext {
    cudaStream_t stream;
    void *ws;
    size_t ws_bytes;
    cublasMath_t math;
    cublasPointerMode_t pmode;
};
struct cublasLtContext { int unused; };
struct cublasLtMatmulDescOpaque_st {
    cublasComputeType_t compute;
    cudaDataType_t scale, bias_type;
    bool bias_type_set;
    cublasOperation_t ta, tb;
    cublasLtEpilogue_t epilogue;
    const void *bias;
    cublasPointerMode_t pmode;
};
struct cublasLtMatrixLayoutOpaque_st {
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld, stride;
    int32_t order, batch;
};
struct cublasLtMatmulPreferenceOpaque_st { uint64_t max_ws; };

namespace cudasim {

enum { ROUND_NONE, ROUND_TF32, ROUND_FP16, ROUND_BF16 };

struct operand {
    const void *p;
    cudaDataType_t type;
    long long ld, stride;
    bool trans;
};

struct gemm_job {
    int m, n, k, batch;
    operand a, b;
    const void *c;            /* read when beta != 0 (may equal d) */
    cudaDataType_t ctype;
    long long ldc, sc;
    void *d;
    cudaDataType_t dtype;
    long long ldd, sd;
    float alpha, beta;
    int round;
    cublasLtEpilogue_t epilogue;
    const void *bias;
    cudaDataType_t bias_type;
};

static size_t type_size(cudaDataType_t t) {
    return t == CUDA_R_32F ? 4 : t == CUDA_R_16F || t == CUDA_R_16BF ? 2 : t == CUDA_R_64F ? 8 : 0;
}

static float load(const void *p, cudaDataType_t t, size_t i) {
    if (t == CUDA_R_32F) return ((const float *)p)[i];
    if (t == CUDA_R_16F) return f16_to_f32(((const uint16_t *)p)[i]);
    if (t == CUDA_R_16BF) return f32_from((uint32_t)((const uint16_t *)p)[i] << 16);
    return (float)((const double *)p)[i];
}

static void store(void *p, cudaDataType_t t, size_t i, float v) {
    if (t == CUDA_R_32F) ((float *)p)[i] = v;
    else if (t == CUDA_R_16F) ((uint16_t *)p)[i] = f16_bits_rn(v);
    else if (t == CUDA_R_16BF) ((uint16_t *)p)[i] = bf16_bits_rn(v);
    else ((double *)p)[i] = v;
}

/* TF32: fp32 with a 10-bit mantissa, rounded to nearest even. */
static float round_tf32(float v) {
    uint32_t u = f32_bits(v), lo = u & 0x1fffu;
    if ((u & 0x7f800000u) == 0x7f800000u) return v;
    u &= ~0x1fffu;
    if (lo > 0x1000u || (lo == 0x1000u && (u & 0x2000u))) u += 0x2000u;
    return f32_from(u);
}

static float round_input(float v, int r) {
    return r == ROUND_TF32 ? round_tf32(v) : r == ROUND_FP16 ? f16_to_f32(f16_bits_rn(v))
         : r == ROUND_BF16 ? f32_from((uint32_t)bf16_bits_rn(v) << 16) : v;
}

/* op(X) as a dense row-major [rows, inner] array of floats: op(A) as [m, k] rows,
 * op(B)ᵀ as [n, k] rows, so that every dot product runs over contiguous memory. */
static void gather(const operand &x, int batch_i, int rows, int inner, bool is_b, int r, std::vector<float> &out) {
    out.resize((size_t)rows * inner);
    size_t es = type_size(x.type);
    const char *base = (const char *)x.p + (size_t)batch_i * (size_t)x.stride * es;
    for (int i = 0; i < rows; i++)
        for (int l = 0; l < inner; l++) {
            /* A: element (i, l) of op(A); B: element (l, i) of op(B) */
            bool col_major_first = is_b ? x.trans : !x.trans;
            size_t idx = col_major_first ? (size_t)i + (size_t)l * (size_t)x.ld : (size_t)l + (size_t)i * (size_t)x.ld;
            out[(size_t)i * inner + l] = round_input(load(base, x.type, idx), r);
        }
}

static float epilogue(float v, cublasLtEpilogue_t e, const gemm_job &j, int row) {
    if ((e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU_BIAS || e == CUBLASLT_EPILOGUE_GELU_BIAS) && j.bias)
        v += load(j.bias, j.bias_type, (size_t)row);
    if (e == CUBLASLT_EPILOGUE_RELU || e == CUBLASLT_EPILOGUE_RELU_BIAS) v = v > 0.0f ? v : 0.0f;
    if (e == CUBLASLT_EPILOGUE_GELU || e == CUBLASLT_EPILOGUE_GELU_BIAS)
        v = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    return v;
}

static void gemm_run(const gemm_job &j) {
    std::vector<float> a, b;
    for (int bi = 0; bi < j.batch; bi++) {
        gather(j.a, bi, j.m, j.k, false, j.round, a);
        gather(j.b, bi, j.n, j.k, true, j.round, b);
        const char *c = (const char *)j.c + (size_t)bi * (size_t)j.sc * type_size(j.ctype);
        char *d = (char *)j.d + (size_t)bi * (size_t)j.sd * type_size(j.dtype);
        for (int col = 0; col < j.n; col++)
            for (int row = 0; row < j.m; row++) {
                const float *ar = &a[(size_t)row * j.k], *br = &b[(size_t)col * j.k];
                double acc = 0.0;
                for (int l = 0; l < j.k; l++) acc += (double)ar[l] * (double)br[l];
                double v = (double)j.alpha * acc;
                if (j.beta != 0.0f) v += (double)j.beta * load(c, j.ctype, (size_t)row + (size_t)col * (size_t)j.ldc);
                store(d, j.dtype, (size_t)row + (size_t)col * (size_t)j.ldd, epilogue((float)v, j.epilogue, j, row));
            }
    }
}

/* Elements spanned by a column-major rows x cols matrix with leading dimension ld, over
 * `batch` matrices `stride` apart. */
static size_t span_elems(long long rows, long long cols, long long ld, int batch, long long stride) {
    if (rows <= 0 || cols <= 0 || batch <= 0) return 0;
    return (size_t)((cols - 1) * ld + rows + (long long)(batch - 1) * stride);
}

/* Every matrix of the job inside device memory, else the sticky fault a GEMM kernel would
 * cause. 0 or -1. */
static int check_pointers(const char *fn, const gemm_job &j) {
    struct { const char *name; const void *p; cudaDataType_t t; size_t n; } m[] = {
        { "A", j.a.p, j.a.type, j.k ? span_elems(j.a.trans ? j.k : j.m, j.a.trans ? j.m : j.k, j.a.ld, j.batch, j.a.stride) : 0 },
        { "B", j.b.p, j.b.type, j.k ? span_elems(j.b.trans ? j.n : j.k, j.b.trans ? j.k : j.n, j.b.ld, j.batch, j.b.stride) : 0 },
        { "C", j.c, j.ctype, j.beta != 0.0f ? span_elems(j.m, j.n, j.ldc, j.batch, j.sc) : 0 },
        { "D", j.d, j.dtype, span_elems(j.m, j.n, j.ldd, j.batch, j.sd) },
        { "bias", j.bias, j.bias_type, j.bias ? (size_t)j.m : 0 },
    };
    for (auto &x : m) {
        char why[256];
        if (x.n && device_range(x.p, x.n * type_size(x.t), why, sizeof why) != 0) {
            set_sticky(cudaErrorIllegalAddress, "%s (m=%d n=%d k=%d): matrix %s at %p, %zu elements: %s", fn, j.m, j.n,
                       j.k, x.name, x.p, x.n, why);
            return -1;
        }
    }
    return 0;
}

/* cuBLAS's rule for the leading dimensions: at least the stored rows of each matrix. */
static bool lds_ok(const gemm_job &j) {
    long long ra = j.a.trans ? j.k : j.m, rb = j.b.trans ? j.n : j.k;
    return j.a.ld >= (ra > 1 ? ra : 1) && j.b.ld >= (rb > 1 ? rb : 1) && j.ldc >= (j.m > 1 ? j.m : 1) &&
           j.ldd >= (j.m > 1 ? j.m : 1);
}

/* The type combinations of cublasGemmEx's table (the ones a SAM port may use), with the
 * input rounding each implies. -1: not supported. */
static int compute_rounding(cublasComputeType_t ct, cudaDataType_t ab, cudaDataType_t c, cublasMath_t math) {
    bool f32 = ab == CUDA_R_32F && c == CUDA_R_32F;
    switch (ct) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
        if (f32) return math == CUBLAS_TF32_TENSOR_OP_MATH && ct == CUBLAS_COMPUTE_32F ? ROUND_TF32 : ROUND_NONE;
        if ((ab == CUDA_R_16F || ab == CUDA_R_16BF) && (c == ab || c == CUDA_R_32F)) return ROUND_NONE;
        return -1;
    case CUBLAS_COMPUTE_32F_FAST_TF32: return f32 ? ROUND_TF32 : -1;
    case CUBLAS_COMPUTE_32F_FAST_16F: return f32 ? ROUND_FP16 : -1;
    case CUBLAS_COMPUTE_32F_FAST_16BF: return f32 ? ROUND_BF16 : -1;
    case CUBLAS_COMPUTE_16F:
    case CUBLAS_COMPUTE_16F_PEDANTIC: return ab == CUDA_R_16F && c == CUDA_R_16F ? ROUND_NONE : -1;
    default: return -1;
    }
}

static float read_scalar(const void *p, cublasPointerMode_t mode, bool half_scale) {
    if (mode == CUBLAS_POINTER_MODE_DEVICE && device_range(p, half_scale ? 2 : 4, NULL, 0) != 0) return NAN;
    return half_scale ? f16_to_f32(*(const uint16_t *)p) : *(const float *)p;
}

/* Checks, then runs (or captures) the job on the handle's stream. */
static cublasStatus_t gemm_submit(const char *fn, cublasHandle_t h, gemm_job j, const void *alpha, const void *beta,
                                  bool half_scale) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (j.m < 0 || j.n < 0 || j.k < 0 || j.batch < 0 || !alpha || !beta || !lds_ok(j)) return CUBLAS_STATUS_INVALID_VALUE;
    if (j.m == 0 || j.n == 0 || j.batch == 0) return CUBLAS_STATUS_SUCCESS;
    j.alpha = read_scalar(alpha, h->pmode, half_scale);
    j.beta = read_scalar(beta, h->pmode, half_scale);
    if (check_pointers(fn, j)) return CUBLAS_STATUS_SUCCESS; /* the fault shows at the next sync */
    cudaError_t e = submit(h->stream, [j] { gemm_run(j); }, fn);
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

static bool op_ok(cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C; }

static gemm_job make_job(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A,
                         cudaDataType_t at, long long lda, long long sa, const void *B, cudaDataType_t bt, long long ldb,
                         long long sb, void *C, cudaDataType_t ct, long long ldc, long long sc, int batch) {
    gemm_job j;
    memset(&j, 0, sizeof j);
    j.m = m; j.n = n; j.k = k; j.batch = batch;
    j.a = operand{ A, at, lda, sa, ta != CUBLAS_OP_N };
    j.b = operand{ B, bt, ldb, sb, tb != CUBLAS_OP_N };
    j.c = C; j.ctype = ct; j.ldc = ldc; j.sc = sc;
    j.d = C; j.dtype = ct; j.ldd = ldc; j.sd = sc;
    j.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    return j;
}

static cublasStatus_t gemm_ex(const char *fn, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                              int n, int k, const void *alpha, const void *A, cudaDataType_t at, int lda, long long sa,
                              const void *B, cudaDataType_t bt, int ldb, long long sb, const void *beta, void *C,
                              cudaDataType_t ct, int ldc, long long sc, int batch, cublasComputeType_t compute) {
    std::lock_guard<std::recursive_mutex> g(lock());
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!op_ok(ta) || !op_ok(tb)) return CUBLAS_STATUS_INVALID_VALUE;
    int r = at == bt ? compute_rounding(compute, at, ct, h->math) : -1;
    if (r < 0) return CUBLAS_STATUS_NOT_SUPPORTED;
    if ((at == CUDA_R_16BF && config().cc < 80) || (at == CUDA_R_16F && config().cc < 53))
        return CUBLAS_STATUS_ARCH_MISMATCH;
    gemm_job j = make_job(ta, tb, m, n, k, A, at, lda, sa, B, bt, ldb, sb, C, ct, ldc, sc, batch);
    j.round = r;
    bool half_scale = compute == CUBLAS_COMPUTE_16F || compute == CUBLAS_COMPUTE_16F_PEDANTIC;
    return gemm_submit(fn, h, j, alpha, beta, half_scale);
}
} // namespace cudasim

using namespace cudasim;

/* ---- cuBLAS ------------------------------------------------------------------------------------ */

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    if (!h) return CUBLAS_STATUS_INVALID_VALUE;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n <= 0) return CUBLAS_STATUS_NOT_INITIALIZED;
    *h = new cublasContext{ NULL, NULL, 0, CUBLAS_DEFAULT_MATH, CUBLAS_POINTER_MODE_HOST };
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
/* As cuBLAS 12 documents: setting the stream also resets the workspace to the library's
 * own pool, so cublasSetWorkspace must come after it. */
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    std::lock_guard<std::recursive_mutex> g(lock());
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream_valid(s)) return CUBLAS_STATUS_INVALID_VALUE;
    h->stream = s;
    h->ws = NULL;
    h->ws_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (s) *s = h->stream;
    return s ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    std::lock_guard<std::recursive_mutex> g(lock());
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if ((bytes && !ws) || (bytes && device_range(ws, bytes, NULL, 0) != 0) || ((uintptr_t)ws & 255))
        return CUBLAS_STATUS_INVALID_VALUE;
    h->ws = ws;
    h->ws_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    unsigned base = (unsigned)mode & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base > CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
    h->math = (cublasMath_t)base;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode) *mode = h->math;
    return mode ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
    h->pmode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_UNKNOWN";
    }
}
const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "the device does not support this operation";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return cublasGetStatusName(s);
    }
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    return gemm_ex("cublasSgemm", h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F, ldb, 0, beta, C,
                   CUDA_R_32F, ldc, 0, 1, CUBLAS_COMPUTE_32F);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sA,
                                         const float *B, int ldb, long long sB, const float *beta, float *C, int ldc,
                                         long long sC, int batch) {
    return gemm_ex("cublasSgemmStridedBatched", h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, sA, B, CUDA_R_32F, ldb,
                   sB, beta, C, CUDA_R_32F, ldc, sC, batch, CUBLAS_COMPUTE_32F);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t Atype, int lda, const void *B,
                            cudaDataType_t Btype, int ldb, const void *beta, void *C, cudaDataType_t Ctype, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    if (algo != CUBLAS_GEMM_DEFAULT && algo != CUBLAS_GEMM_DEFAULT_TENSOR_OP) return CUBLAS_STATUS_INVALID_VALUE;
    return gemm_ex("cublasGemmEx", h, ta, tb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C, Ctype, ldc,
                   0, 1, compute);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *A, cudaDataType_t Atype, int lda,
                                          long long sA, const void *B, cudaDataType_t Btype, int ldb, long long sB,
                                          const void *beta, void *C, cudaDataType_t Ctype, int ldc, long long sC,
                                          int batch, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    if (algo != CUBLAS_GEMM_DEFAULT && algo != CUBLAS_GEMM_DEFAULT_TENSOR_OP) return CUBLAS_STATUS_INVALID_VALUE;
    return gemm_ex("cublasGemmStridedBatchedEx", h, ta, tb, m, n, k, alpha, A, Atype, lda, sA, B, Btype, ldb, sB, beta,
                   C, Ctype, ldc, sC, batch, compute);
}

/* ---- cuBLASLt -------------------------------------------------------------------------------------- */

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    if (!h) return CUBLAS_STATUS_INVALID_VALUE;
    *h = new cublasLtContext{ 0 };
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale) {
    if (!d) return CUBLAS_STATUS_INVALID_VALUE;
    *d = new cublasLtMatmulDescOpaque_st{ compute,          scale, CUDA_R_32F, false, CUBLAS_OP_N, CUBLAS_OP_N,
                                          CUBLASLT_EPILOGUE_DEFAULT, NULL,  CUBLAS_POINTER_MODE_HOST };
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}

/* Copies an attribute value of exactly the documented size. */
template <class T> static bool attr_get(T *dst, const void *buf, size_t bytes) {
    if (!buf || bytes != sizeof(T)) return false;
    memcpy(dst, buf, sizeof(T));
    return true;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *buf,
                                              size_t bytes) {
    if (!d) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (a == CUBLASLT_MATMUL_DESC_BIAS_POINTER)
        return attr_get(&d->bias, buf, bytes) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    int32_t v;
    if (!attr_get(&v, buf, bytes)) return CUBLAS_STATUS_INVALID_VALUE;
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB:
        if (!op_ok((cublasOperation_t)v)) return CUBLAS_STATUS_INVALID_VALUE;
        (a == CUBLASLT_MATMUL_DESC_TRANSA ? d->ta : d->tb) = (cublasOperation_t)v;
        break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: d->epilogue = (cublasLtEpilogue_t)v; break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        d->bias_type = (cudaDataType_t)v;
        d->bias_type_set = true;
        break;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: d->pmode = (cublasPointerMode_t)v; break;
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: d->compute = (cublasComputeType_t)v; break;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: d->scale = (cudaDataType_t)v; break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
    if (!l || !type_size(type)) return CUBLAS_STATUS_INVALID_VALUE;
    *l = new cublasLtMatrixLayoutOpaque_st{ type, rows, cols, ld, 0, CUBLASLT_ORDER_COL, 1 };
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a,
                                                const void *buf, size_t bytes) {
    if (!l) return CUBLAS_STATUS_NOT_INITIALIZED;
    bool ok;
    switch (a) {
    case CUBLASLT_MATRIX_LAYOUT_ORDER: ok = attr_get(&l->order, buf, bytes); break;
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: ok = attr_get(&l->batch, buf, bytes); break;
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: ok = attr_get(&l->stride, buf, bytes); break;
    case CUBLASLT_MATRIX_LAYOUT_ROWS: ok = attr_get(&l->rows, buf, bytes); break;
    case CUBLASLT_MATRIX_LAYOUT_COLS: ok = attr_get(&l->cols, buf, bytes); break;
    case CUBLASLT_MATRIX_LAYOUT_LD: ok = attr_get(&l->ld, buf, bytes); break;
    default: ok = false;
    }
    return ok ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    if (!p) return CUBLAS_STATUS_INVALID_VALUE;
    *p = new cublasLtMatmulPreferenceOpaque_st{ 0 };
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *buf,
                                                    size_t bytes) {
    if (!p) return CUBLAS_STATUS_NOT_INITIALIZED;
    uint32_t mode;
    if (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) return attr_get(&p->max_ws, buf, bytes) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    if (a == CUBLASLT_MATMUL_PREF_SEARCH_MODE) return attr_get(&mode, buf, bytes) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    if (a >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && a <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES)
        return attr_get(&mode, buf, bytes) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE; /* uint32_t bytes */
    return CUBLAS_STATUS_INVALID_VALUE;
}

namespace cudasim {
static bool known_epilogue(cublasLtEpilogue_t e) {
    return e == CUBLASLT_EPILOGUE_DEFAULT || e == CUBLASLT_EPILOGUE_RELU || e == CUBLASLT_EPILOGUE_BIAS ||
           e == CUBLASLT_EPILOGUE_RELU_BIAS || e == CUBLASLT_EPILOGUE_GELU || e == CUBLASLT_EPILOGUE_GELU_BIAS;
}
static bool epilogue_has_bias(cublasLtEpilogue_t e) {
    return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU_BIAS || e == CUBLASLT_EPILOGUE_GELU_BIAS;
}

/* The job of a cublasLtMatmul, or a status saying why there is none. Shapes: D and C are
 * m x n, op(A) m x k, op(B) k x n, all column-major (CUBLASLT_ORDER_ROW: not emulated). */
static cublasStatus_t lt_job(cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B,
                             cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D, gemm_job *j) {
    if (!d || !A || !B || !C || !D) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (A->order || B->order || C->order || D->order) return CUBLAS_STATUS_NOT_SUPPORTED;
    bool ta = d->ta != CUBLAS_OP_N, tb = d->tb != CUBLAS_OP_N;
    uint64_t m = D->rows, n = D->cols, k = ta ? A->rows : A->cols;
    if ((ta ? A->cols : A->rows) != m || (tb ? B->cols : B->rows) != k || (tb ? B->rows : B->cols) != n ||
        C->rows != m || C->cols != n || m > 0x7fffffff || n > 0x7fffffff || k > 0x7fffffff)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (A->batch != B->batch || A->batch != C->batch || A->batch != D->batch || C->type != D->type)
        return CUBLAS_STATUS_INVALID_VALUE;
    int r = A->type == B->type ? compute_rounding(d->compute, A->type, D->type, CUBLAS_DEFAULT_MATH) : -1;
    if (r < 0 || !known_epilogue(d->epilogue)) return CUBLAS_STATUS_NOT_SUPPORTED;
    *j = make_job(d->ta, d->tb, (int)m, (int)n, (int)k, NULL, A->type, A->ld, A->stride, NULL, B->type, B->ld,
                  B->stride, NULL, C->type, C->ld, C->stride, A->batch);
    j->d = NULL;
    j->dtype = D->type;
    j->ldd = D->ld;
    j->sd = D->stride;
    j->round = r;
    j->epilogue = d->epilogue;
    j->bias_type = d->bias_type_set ? d->bias_type : D->type;
    return lds_ok(*j) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
} // namespace cudasim

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t A,
                                              cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C,
                                              cublasLtMatrixLayout_t D, cublasLtMatmulPreference_t p, int requested,
                                              cublasLtMatmulHeuristicResult_t *results, int *returned) {
    if (!h || !p) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (requested <= 0 || !results || !returned) return CUBLAS_STATUS_INVALID_VALUE;
    gemm_job j;
    cublasStatus_t s = lt_job(d, A, B, C, D, &j);
    *returned = 0;
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (config().lt_no_algo) return CUBLAS_STATUS_NOT_SUPPORTED; /* as for a shape no kernel takes */
    memset(&results[0], 0, sizeof results[0]);
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t Adesc, const void *B, cublasLtMatrixLayout_t Bdesc,
                              const void *beta, const void *C, cublasLtMatrixLayout_t Cdesc, void *D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo, void *workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
    (void)algo;
    std::lock_guard<std::recursive_mutex> g(lock());
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    gemm_job j;
    cublasStatus_t s = lt_job(d, Adesc, Bdesc, Cdesc, Ddesc, &j);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (epilogue_has_bias(d->epilogue) && !d->bias) return CUBLAS_STATUS_INVALID_VALUE;
    if (workspace_bytes && device_range(workspace, workspace_bytes, NULL, 0) != 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    j.a.p = A;
    j.b.p = B;
    j.c = C;
    j.d = D;
    j.bias = epilogue_has_bias(d->epilogue) ? d->bias : NULL;
    j.alpha = read_scalar(alpha, d->pmode, false);
    j.beta = read_scalar(beta, d->pmode, false);
    if (j.m == 0 || j.n == 0 || check_pointers("cublasLtMatmul", j)) return CUBLAS_STATUS_SUCCESS;
    cudaError_t e = submit(stream, [j] { gemm_run(j); }, "cublasLtMatmul");
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
