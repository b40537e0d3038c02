/* kernels/cuda/norm.cu: nn.LayerNorm over the last dim and LayerNorm2d (sam2
 * modeling/sam2_utils.py) over the channels of a [C, HW] map. Two passes like the
 * reference (mean, then the biased variance of the deviations) rather than one
 * sum-of-squares pass, which loses digits when the mean is large; the row is re-read
 * from L1/L2, not from DRAM. Both are safe in place: every element is read for the
 * statistics before the pass that overwrites it. */
#include "kernels/cuda/cuda_common.cuh"

#define LN_WARPS 8

/* One warp per row. */
__global__ void __launch_bounds__(LN_WARPS * 32)
layer_norm_kernel(const float *x, const float *w, const float *b, float *y, int rows, int dim, float eps) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return; /* whole warps leave together: the shuffles below stay full */
    const float *xr = x + (size_t)row * dim;
    float *yr = y + (size_t)row * dim;
    float s = 0.0f;
    for (int i = lane; i < dim; i += 32) s += xr[i];
    const float mean = warp_sum(s) / (float)dim;
    float v = 0.0f;
    for (int i = lane; i < dim; i += 32) {
        float d = xr[i] - mean;
        v += d * d;
    }
    const float var = warp_sum(v) / (float)dim;
    const float inv = 1.0f / sqrtf(var + eps);
    for (int i = lane; i < dim; i += 32) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
}

void layer_norm_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int rows,
                     int dim, float eps) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (rows <= 0 || dim <= 0) return;
    unsigned blocks = (unsigned)((rows + LN_WARPS - 1) / LN_WARPS);
    layer_norm_kernel<<<blocks, LN_WARPS * 32, 0, c->stream>>>(x, w, b, y, rows, dim, eps);
    CUDA_OP_DONE(c, "layer_norm");
}

/* LayerNorm2d: a block covers 32 pixels (threadIdx.x, coalesced along HW) and splits
 * the channel sums over 8 rows of threads (threadIdx.y), reduced through shared memory;
 * a thread per pixel alone would leave most of the GPU idle at 64x64 maps. */
#define LN2_PIX 32
#define LN2_SPLIT 8
__global__ void __launch_bounds__(LN2_PIX * LN2_SPLIT)
layer_norm2d_kernel(const float *x, const float *w, const float *b, float *y, int C, int HW, float eps) {
    __shared__ float red[LN2_SPLIT][LN2_PIX + 1];
    __shared__ float stat[LN2_PIX];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int p = blockIdx.x * LN2_PIX + tx;
    const bool ok = p < HW; /* no early return: every thread takes part in the barriers */

    float s = 0.0f;
    if (ok)
        for (int ch = ty; ch < C; ch += LN2_SPLIT) s += x[(size_t)ch * HW + p];
    red[ty][tx] = s;
    __syncthreads();
    if (ty == 0) {
        float t = 0.0f;
        for (int k = 0; k < LN2_SPLIT; k++) t += red[k][tx];
        stat[tx] = t / (float)C;
    }
    __syncthreads();
    const float mean = stat[tx];

    float v = 0.0f;
    if (ok)
        for (int ch = ty; ch < C; ch += LN2_SPLIT) {
            float d = x[(size_t)ch * HW + p] - mean;
            v += d * d;
        }
    red[ty][tx] = v;
    __syncthreads();
    if (ty == 0) {
        float t = 0.0f;
        for (int k = 0; k < LN2_SPLIT; k++) t += red[k][tx];
        stat[tx] = 1.0f / sqrtf(t / (float)C + eps);
    }
    __syncthreads();
    const float inv = stat[tx];
    if (ok)
        for (int ch = ty; ch < C; ch += LN2_SPLIT) {
            size_t i = (size_t)ch * HW + p;
            y[i] = (x[i] - mean) * inv * w[ch] + b[ch];
        }
}

void layer_norm2d_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int C, int HW,
                       float eps) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (C <= 0 || HW <= 0) return;
    unsigned blocks = (unsigned)((HW + LN2_PIX - 1) / LN2_PIX);
    layer_norm2d_kernel<<<blocks, dim3(LN2_PIX, LN2_SPLIT), 0, c->stream>>>(x, w, b, y, C, HW, eps);
    CUDA_OP_DONE(c, "layer_norm2d");
}
