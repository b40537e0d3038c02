/* tests/cuda_sim/include/cublas_v2.h: the cuBLAS calls the simulator emulates on the host
 * (tests/cuda_sim/blas.cpp), with the arguments checked as cuBLAS checks them. Written
 * from the cuBLAS documentation; enum values are the real ones. */
#ifndef CUDASIM_CUBLAS_V2_H
#define CUDASIM_CUBLAS_V2_H
#include "cuda_runtime_api.h"
#include "library_types.h"

typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15
} cublasStatus_t;

typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;
typedef enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 } cublasPointerMode_t;
typedef enum {
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_TENSOR_OP_MATH = 1,
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
    CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16
} cublasMath_t;
typedef enum {
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_16F_PEDANTIC = 65,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
    CUBLAS_COMPUTE_64F = 70
} cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 } cublasGemmAlgo_t;

typedef struct cublasContext *cublasHandle_t;

CUDASIM_API cublasStatus_t cublasCreate(cublasHandle_t *h);
CUDASIM_API cublasStatus_t cublasDestroy(cublasHandle_t h);
CUDASIM_API cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
CUDASIM_API cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s);
CUDASIM_API cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *workspace, size_t bytes);
CUDASIM_API cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode);
CUDASIM_API cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode);
CUDASIM_API cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode);
CUDASIM_API const char *cublasGetStatusString(cublasStatus_t s);
CUDASIM_API const char *cublasGetStatusName(cublasStatus_t s);

CUDASIM_API cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                       int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                                       const float *beta, float *C, int ldc);
CUDASIM_API cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                                     int m, int n, int k, const float *alpha, const float *A, int lda,
                                                     long long sA, const float *B, int ldb, long long sB,
                                                     const float *beta, float *C, int ldc, long long sC, int batch);
CUDASIM_API cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                        int k, const void *alpha, const void *A, cudaDataType_t Atype, int lda,
                                        const void *B, cudaDataType_t Btype, int ldb, const void *beta, void *C,
                                        cudaDataType_t Ctype, int ldc, cublasComputeType_t compute,
                                        cublasGemmAlgo_t algo);
CUDASIM_API cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                                      int m, int n, int k, const void *alpha, const void *A,
                                                      cudaDataType_t Atype, int lda, long long sA, const void *B,
                                                      cudaDataType_t Btype, int ldb, long long sB, const void *beta,
                                                      void *C, cudaDataType_t Ctype, int ldc, long long sC, int batch,
                                                      cublasComputeType_t compute, cublasGemmAlgo_t algo);
#endif
