/* kernels/cuda/elementwise.cu: gelu, relu, sigmoid, copy, add (broadcast), add_channel,
 * transpose. Memory-bound; grid-stride loops, coalesced, the same float expressions as
 * kernels/cpu_ref.c (nvcc does not contract these into FMAs: no product feeds an add). */
#include "kernels/cuda/cuda_common.cuh"

#define EW_THREADS 256

/* nn.GELU() (approximate='none'): 0.5 x (1 + erf(x / sqrt 2)) */
__global__ void gelu_kernel(float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f));
    }
}

/* The same test as the reference, so NaN maps to 0 as there. */
__global__ void relu_kernel(float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void sigmoid_kernel(float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = 1.0f / (1.0f + expf(-x[i]));
}

void gelu_cuda(const samc_ops *o, float *x, size_t n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    gelu_kernel<<<cuda_blocks_for(c, n, EW_THREADS), EW_THREADS, 0, c->stream>>>(x, n);
    CUDA_OP_DONE(c, "gelu");
}

void relu_cuda(const samc_ops *o, float *x, size_t n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    relu_kernel<<<cuda_blocks_for(c, n, EW_THREADS), EW_THREADS, 0, c->stream>>>(x, n);
    CUDA_OP_DONE(c, "relu");
}

void sigmoid_cuda(const samc_ops *o, float *x, size_t n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    sigmoid_kernel<<<cuda_blocks_for(c, n, EW_THREADS), EW_THREADS, 0, c->stream>>>(x, n);
    CUDA_OP_DONE(c, "sigmoid");
}

void copy_cuda(const samc_ops *o, float *dst, const float *src, size_t n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    if (CUDA_CHECK(c, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, c->stream))) return;
    CUDA_OP_DONE(c, "copy");
}

/* dst[i] = (a ? a[i] : 0) + b[i % nb]. The index type is 32-bit whenever n allows: a
 * 64-bit remainder per element costs more than the memory traffic. (a == NULL serves
 * the empty-product fill of gemm.cu; 0 + b is b, as the reference's 0 + b.) */
template <typename I>
__global__ void add_kernel(float *dst, const float *a, const float *b, I n, I nb) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        float bv = b[nb == n ? i : i % nb];
        dst[i] = (a ? a[i] : 0.0f) + bv;
    }
}

void add_launch(samc_cuda_ctx *c, float *dst, const float *a, const float *b, size_t n, size_t nb) {
    if (!n || !nb) return;
    unsigned blocks = cuda_blocks_for(c, n, EW_THREADS);
    /* i + gridDim*blockDim must not wrap in the 32-bit form */
    if (n <= (size_t)UINT32_MAX / 2)
        add_kernel<uint32_t><<<blocks, EW_THREADS, 0, c->stream>>>(dst, a, b, (uint32_t)n, (uint32_t)nb);
    else
        add_kernel<size_t><<<blocks, EW_THREADS, 0, c->stream>>>(dst, a, b, n, nb);
}

void add_cuda(const samc_ops *o, float *dst, const float *a, const float *b, size_t n, size_t nb) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (!n) return;
    add_launch(c, dst, a, b, n, nb);
    CUDA_OP_DONE(c, "add");
}

/* dst[ch, p] = (a ? a[ch, p] : 0) + v[ch]: blockIdx.y walks channels, x the pixels. */
__global__ void add_channel_kernel(float *dst, const float *a, const float *v, int C, int HW) {
    for (int ch = blockIdx.y; ch < C; ch += gridDim.y) {
        float vc = v[ch];
        size_t base = (size_t)ch * HW;
        for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < HW; p += gridDim.x * blockDim.x)
            dst[base + p] = (a ? a[base + p] : 0.0f) + vc;
    }
}

void add_channel_launch(samc_cuda_ctx *c, float *dst, const float *a, const float *v, int C, int HW) {
    if (C <= 0 || HW <= 0) return;
    unsigned gx = (unsigned)((HW + EW_THREADS - 1) / EW_THREADS);
    if (gx > 1024) gx = 1024;
    dim3 grid(gx, (unsigned)(C < 65535 ? C : 65535));
    add_channel_kernel<<<grid, EW_THREADS, 0, c->stream>>>(dst, a, v, C, HW);
}

void add_channel_cuda(const samc_ops *o, float *dst, const float *a, const float *v, int C, int HW) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (C <= 0 || HW <= 0) return;
    add_channel_launch(c, dst, a, v, C, HW);
    CUDA_OP_DONE(c, "add_channel");
}

/* [batch, R, C] -> [batch, C, R] through a 32x33 shared tile (the odd pitch keeps the
 * column reads off a single bank), so both the reads and the writes are coalesced. */
#define TR_TILE 32
#define TR_ROWS 8
__global__ void transpose_kernel(const float *src, float *dst, int batch, int R, int C) {
    __shared__ float tile[TR_TILE][TR_TILE + 1];
    for (int bb = blockIdx.z; bb < batch; bb += gridDim.z) {
        const float *s = src + (size_t)bb * R * C;
        float *d = dst + (size_t)bb * R * C;
        for (int r0 = blockIdx.y * TR_TILE; r0 < R; r0 += gridDim.y * TR_TILE)
            for (int c0 = blockIdx.x * TR_TILE; c0 < C; c0 += gridDim.x * TR_TILE) {
                for (int j = threadIdx.y; j < TR_TILE; j += TR_ROWS) {
                    int r = r0 + j, cc = c0 + threadIdx.x;
                    if (r < R && cc < C) tile[j][threadIdx.x] = s[(size_t)r * C + cc];
                }
                __syncthreads();
                for (int j = threadIdx.y; j < TR_TILE; j += TR_ROWS) {
                    int cc = c0 + j, r = r0 + threadIdx.x;
                    if (cc < C && r < R) d[(size_t)cc * R + r] = tile[threadIdx.x][j];
                }
                __syncthreads();
            }
    }
}

void transpose_cuda(const samc_ops *o, const float *src, float *dst, int batch, int R, int C) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (batch <= 0 || R <= 0 || C <= 0) return;
    unsigned gx = (unsigned)((C + TR_TILE - 1) / TR_TILE), gy = (unsigned)((R + TR_TILE - 1) / TR_TILE);
    dim3 grid(gx < 65535 ? gx : 65535, gy < 65535 ? gy : 65535, (unsigned)(batch < 65535 ? batch : 65535));
    transpose_kernel<<<grid, dim3(TR_TILE, TR_ROWS), 0, c->stream>>>(src, dst, batch, R, C);
    CUDA_OP_DONE(c, "transpose");
}
