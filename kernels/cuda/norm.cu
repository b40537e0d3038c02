/* kernels/cuda/norm.cu: nn.LayerNorm over the last dim and LayerNorm2d (sam2
 * modeling/sam2_utils.py) over the channels of a [C, HW] map. Two passes like the
 * reference (mean, then the biased variance of the deviations) rather than one
 * sum-of-squares pass, which loses digits when the mean is large; the row is re-read
 * from L1/L2, not from DRAM. Both are safe in place: every element is read for the
 * statistics before the pass that overwrites it. Templates over the 16-bit format T
 * (cuda_common.cuh): the input and output are each fp32 or T as lowp.cu says (in the
 * encoder the output is the 16-bit GEMM operand that follows: no conversion pass), the
 * statistics and the normalisation are fp32, the parameters fp32 from the weight block. */
#include "kernels/cuda/cuda_common.cuh"

#define LN_WARPS 8

/* One warp per row. */
template <class T>
__global__ void __launch_bounds__(LN_WARPS * 32)
layer_norm_kernel(cuda_src<T> x, cuda_src<T> w, cuda_src<T> b, cuda_dst<T> y, int rows, int dim, float eps) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return; /* whole warps leave together: the shuffles below stay full */
    const cuda_src<T> xr = x.at((ptrdiff_t)row * dim);
    const cuda_dst<T> yr = y.at((ptrdiff_t)row * dim);
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
    for (int i = lane; i < dim; i += 32) yr.put(i, (xr[i] - mean) * inv * w[i] + b[i]);
}

/* The tensors of a norm: x and y (in place allowed: y keeps x's type), w and b. 0 or -1. */
static int norm_args(samc_cuda_ctx *c, const float *x, const float *w, const float *b, float *y, size_t n,
                     size_t nw, cuda_arg *a, const char *op) {
    a[0] = cuda_rd(c, x, n, op);
    a[1] = cuda_rd(c, w, nw, op);
    a[2] = cuda_rd(c, b, nw, op);
    if (!a[0].p || !a[1].p || !a[2].p) return -1;
    a[3] = y == x ? cuda_wr_like(c, y, n, a[0], op) : cuda_wr(c, y, n, op);
    return a[3].p ? 0 : -1;
}

void layer_norm_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int rows,
                     int dim, float eps) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (rows <= 0 || dim <= 0) return;
    cuda_arg a[4];
    if (norm_args(c, x, w, b, y, (size_t)rows * dim, (size_t)dim, a, "layer_norm")) return;
    unsigned blocks = (unsigned)((rows + LN_WARPS - 1) / LN_WARPS);
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        layer_norm_kernel<T><<<blocks, LN_WARPS * 32, 0, c->stream>>>(src_of<T>(a[0]), src_of<T>(a[1]),
                                                                       src_of<T>(a[2]), dst_of<T>(a[3]), rows, dim,
                                                                       eps);
    });
    CUDA_OP_DONE(c, "layer_norm");
}

/* LayerNorm2d: a block covers 32 pixels (threadIdx.x, coalesced along HW) and splits
 * the channel sums over 8 rows of threads (threadIdx.y), reduced through shared memory;
 * a thread per pixel alone would leave most of the GPU idle at 64x64 maps. */
#define LN2_PIX 32
#define LN2_SPLIT 8
template <class T>
__global__ void __launch_bounds__(LN2_PIX * LN2_SPLIT)
layer_norm2d_kernel(cuda_src<T> x, cuda_src<T> w, cuda_src<T> b, cuda_dst<T> y, int C, int HW, float eps) {
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
            y.put(i, (x[i] - mean) * inv * w[ch] + b[ch]);
        }
}

void layer_norm2d_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int C, int HW,
                       float eps) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (C <= 0 || HW <= 0) return;
    cuda_arg a[4];
    if (norm_args(c, x, w, b, y, (size_t)C * HW, (size_t)C, a, "layer_norm2d")) return;
    unsigned blocks = (unsigned)((HW + LN2_PIX - 1) / LN2_PIX);
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        layer_norm2d_kernel<T><<<blocks, dim3(LN2_PIX, LN2_SPLIT), 0, c->stream>>>(
            src_of<T>(a[0]), src_of<T>(a[1]), src_of<T>(a[2]), dst_of<T>(a[3]), C, HW, eps);
    });
    CUDA_OP_DONE(c, "layer_norm2d");
}
