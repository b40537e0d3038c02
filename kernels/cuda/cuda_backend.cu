/* kernels/cuda/cuda_backend.cu: the "cuda" samc_ops table: device, stream and cuBLAS
 * handle, memory ops, and `samc version`'s device line. It calls the op files; they and
 * it record errors through cuda_check.cu, the bottom file, so calls run one way.
 *
 * Nothing here runs before samc_ops_cuda_create is called, so a CPU-only run of a
 * binary linked with libcudart never touches the driver. */
#include "kernels/cuda/cuda_common.cuh"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- memory ------------------------------------------------------------------------ */

/* cudaMalloc blocks are 256-byte aligned, more than the table's 64. An allocation
 * failure is not recorded as the backend's error: the caller sees NULL and reports it,
 * and the device stays usable. */
static void *alloc_cuda(const samc_ops *o, size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear it so the next op's launch check does not see it */
        return NULL;
    }
    if (cuda_blocks_add(cuda_ctx(o), p, bytes ? bytes : 1)) { /* lowp.cu: the block table */
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void free_cuda(const samc_ops *o, void *p) {
    if (!p) return;
    cuda_blocks_remove(cuda_ctx(o), p);
    CUDA_CHECK(cuda_ctx(o), cudaFree(p));
}

/* A copy that waits cannot be part of a graph: the capture would fail at the wait, and a
 * replay would read host memory the caller has reused. The model keeps these outside its
 * graphs (upload_async from page-locked staging goes inside); saying so here names the
 * call instead of a failed capture. */
static int no_wait_in_capture(samc_cuda_ctx *c, const char *op) {
    if (!c->capturing) return 0;
    return cuda_fail(c, __FILE__, __LINE__, op, "waits for the stream while a graph is captured: use the "
                     "_async copy from host_alloc memory");
}

/* Both copies wait for the stream: the host buffer may be reused as soon as they return
 * (cudaMemcpyAsync gives that for pageable memory only), and the model reads a download
 * right away. Uploads happen at load and once per image, so the wait costs little. */
static void upload_cuda(const samc_ops *o, void *dst, const void *host_src, size_t bytes) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!bytes || no_wait_in_capture(c, "upload")) return;
    if (lowp_upload(c, dst, host_src, bytes, 0)) return; /* bf16 / fp16: converted there */
    if (CUDA_CHECK(c, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, c->stream))) return;
    CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
}

static void download_cuda(const samc_ops *o, void *host_dst, const void *src, size_t bytes) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!bytes || no_wait_in_capture(c, "download")) return;
    if (lowp_download(c, host_dst, src, bytes, 0)) return; /* bf16 / fp16: converted there */
    if (CUDA_CHECK(c, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, c->stream))) return;
    CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
}

static int sync_cuda(const samc_ops *o, char *err) {
    samc_cuda_ctx *c = cuda_ctx(o);
    CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
    if (!c->failed) return 0;
    if (err) snprintf(err, 512, "cuda: %.500s", c->err);
    return -1;
}

/* ---- create / destroy -------------------------------------------------------------- */

static void destroy_ctx(samc_cuda_ctx *c) {
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    pipeline_cuda_release(c);
    lowp_release(c);
    attention_cuda_release(c);
    gemm_cuda_release(c);
    if (c->blas) cublasDestroy(c->blas);
    if (c->blas_workspace) cudaFree(c->blas_workspace);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

extern "C" samc_ops *samc_ops_cuda_create(int device, char *err) {
    char scratch[512];
    if (!err) err = scratch;
    err[0] = '\0';
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(err, 512, "no CUDA device: cudaGetDeviceCount: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        return NULL;
    }
    if (count <= 0) {
        snprintf(err, 512, "no CUDA device: cudaGetDeviceCount found 0 devices");
        return NULL;
    }
    if (device < 0 || device >= count) {
        snprintf(err, 512, "CUDA device %d does not exist (%d device%s: 0..%d)", device, count,
                 count == 1 ? "" : "s", count - 1);
        return NULL;
    }
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, device);
    if (e == cudaSuccess) e = cudaSetDevice(device);
    if (e != cudaSuccess) {
        snprintf(err, 512, "CUDA device %d: %s", device, cudaGetErrorString(e));
        (void)cudaGetLastError();
        return NULL;
    }

    samc_cuda_ctx *c = (samc_cuda_ctx *)calloc(1, sizeof *c);
    samc_ops *o = (samc_ops *)calloc(1, sizeof *o);
    if (!c || !o) {
        free(c);
        free(o);
        snprintf(err, 512, "out of memory creating the CUDA backend");
        return NULL;
    }
    c->device = device;
    c->sm_count = prop.multiProcessorCount;
    c->cc = prop.major * 10 + prop.minor;
    snprintf(c->device_name, sizeof c->device_name, "%.63s", prop.name);
    c->smem_optin = prop.sharedMemPerBlockOptin;
    const char *sync_env = getenv("SAMC_CUDA_SYNC");
    c->sync_each_op = sync_env && *sync_env && strcmp(sync_env, "0") != 0;

    /* A blocking stream (not cudaStreamNonBlocking): work on the legacy default stream,
     * such as a caller's cudaEventRecord(ev, 0) around a few ops, is ordered with ours. */
    size_t ws_bytes = prop.major >= 9 ? (size_t)32 << 20 : (size_t)4 << 20;
    c->blas_ws_bytes = ws_bytes;
    for (int i = 0; i < SAMC_OPS_GRAPHS; i++) c->map_log[i] = cuda_map_log{ NULL, 0, 0, -1, 0 };
    if (pipeline_cuda_prepare(c) || cuda_variants_read(c) ||
        CUDA_CHECK(c, cudaStreamCreate(&c->stream)) || CUBLAS_CHECK(c, cublasCreate(&c->blas)) ||
        CUBLAS_CHECK(c, cublasSetStream(c->blas, c->stream)) ||
        /* fp32 throughout, as the CPU reference: no TF32 tensor-core path */
        CUBLAS_CHECK(c, cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH)) ||
        /* after SetStream, which resets the workspace to cuBLAS's own pool */
        CUDA_CHECK(c, cudaMalloc(&c->blas_workspace, ws_bytes)) ||
        CUBLAS_CHECK(c, cublasSetWorkspace(c->blas, c->blas_workspace, ws_bytes)) || attention_cuda_prepare(c) ||
        gemm_cuda_prepare(c)) {
        snprintf(err, 512, "CUDA device %d (%.64s, sm_%d%d): %.400s", device, prop.name, prop.major, prop.minor,
                 c->err);
        (void)cudaGetLastError();
        destroy_ctx(c);
        free(o);
        return NULL;
    }

    o->name = "cuda";
    o->ctx = c;
    o->host_memory = 0;
    o->alloc = alloc_cuda;
    o->free = free_cuda;
    o->upload = upload_cuda;
    o->download = download_cuda;
    o->sync = sync_cuda;
    o->linear = linear_cuda;
    o->linear_act = linear_act_cuda;
    o->matmul = matmul_cuda;
    o->attention = attention_cuda;
    o->attention_windows = 1; /* Hiera's windows read in place: no partition copies */
    o->layer_norm = layer_norm_cuda;
    o->layer_norm2d = layer_norm2d_cuda;
    o->gelu = gelu_cuda;
    o->conv2d = conv2d_cuda;
    o->conv_transpose2x2 = conv_transpose2x2_cuda;
    o->copy = copy_cuda;
    o->add = add_cuda;
    o->add_channel = add_channel_cuda;
    o->relu = relu_cuda;
    o->sigmoid = sigmoid_cuda;
    o->transpose = transpose_cuda;
    o->window_partition = window_partition_cuda;
    o->window_unpartition_add = window_unpartition_add_cuda;
    o->maxpool2x2 = maxpool2x2_cuda;
    o->upsample_nearest2x_add = upsample_nearest2x_add_cuda;
    o->upsample_bilinear = upsample_bilinear_cuda;
    o->set_precision = set_precision_cuda;
    o->activation_precision = activation_precision_cuda;
    o->weights16_region = weights16_region_cuda;
    o->weights16_upload = weights16_upload_cuda;
    sam3_ops_cuda_register(o);
    o->preprocess = preprocess_cuda;
    o->mask_stats = mask_stats_cuda;
    o->mask_runs = mask_runs_cuda;
    pipeline_cuda_fill(o);
    return o;
}

extern "C" void samc_ops_cuda_destroy(samc_ops *o) {
    if (!o) return;
    destroy_ctx(cuda_ctx(o));
    free(o);
}

extern "C" int samc_cuda_device_info(char *buf, size_t n) {
    if (!buf || !n) return -1;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        if (e != cudaSuccess)
            snprintf(buf, n, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        else
            snprintf(buf, n, "cudaGetDeviceCount found 0 devices");
        (void)cudaGetLastError();
        return -1;
    }
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess) {
        snprintf(buf, n, "device 0: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        return -1;
    }
    snprintf(buf, n, "%s (sm_%d%d, %d SMs, %.1f GiB)%s, driver %d.%d, runtime %d.%d", p.name, p.major, p.minor,
             p.multiProcessorCount, (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
             count > 1 ? " + more devices" : "", drv / 1000, (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10);
    return 0;
}
