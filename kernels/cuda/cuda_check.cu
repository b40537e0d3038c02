/* kernels/cuda/cuda_check.cu: recording the first CUDA / cuBLAS error of the backend
 * (cuda_common.cuh: CUDA_CHECK, CUBLAS_CHECK, CUDA_OP_DONE). The bottom file of
 * kernels/cuda/: every other file calls it, it calls none of them. */
#include "kernels/cuda/cuda_common.cuh"
#include <stdio.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------------------ */

/* Keeps the path from kernels/ on, so messages read the same whatever the build dir. */
static const char *short_path(const char *file) {
    const char *k = strstr(file, "kernels/");
    return k ? k : file;
}

int cuda_fail(samc_cuda_ctx *c, const char *file, int line, const char *what, const char *detail) {
    if (!c->failed) {
        snprintf(c->err, sizeof c->err, "%s:%d: %s: %s", short_path(file), line, what, detail);
        c->failed = 1;
    }
    return -1;
}

int cuda_check_rt(samc_cuda_ctx *c, cudaError_t e, const char *file, int line, const char *call) {
    if (e == cudaSuccess) return 0;
    char detail[256];
    snprintf(detail, sizeof detail, "%s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    return cuda_fail(c, file, line, call, detail);
}

int cuda_check_blas(samc_cuda_ctx *c, cublasStatus_t s, const char *file, int line, const char *call) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    char detail[128];
    snprintf(detail, sizeof detail, "cuBLAS status %d (%s)", (int)s, cublasGetStatusString(s));
    return cuda_fail(c, file, line, call, detail);
}

int cuda_op_done(samc_cuda_ctx *c, const char *op, const char *file, int line) {
    c->n_op_reads = 0; /* lowp.cu: the next op's reads start afresh */
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        char what[96];
        snprintf(what, sizeof what, "%s: kernel launch", op);
        return cuda_check_rt(c, e, file, line, what);
    }
    if (c->sync_each_op) {
        e = cudaStreamSynchronize(c->stream);
        if (e != cudaSuccess) {
            char what[96];
            snprintf(what, sizeof what, "%s: cudaStreamSynchronize after the op (SAMC_CUDA_SYNC=1)", op);
            return cuda_check_rt(c, e, file, line, what);
        }
    }
    return c->failed ? -1 : 0;
}
