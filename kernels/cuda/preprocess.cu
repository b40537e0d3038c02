/* kernels/cuda/preprocess.cu: SAM2Transforms on the device (the preprocess op of
 * kernels/ops.h; its twin is preprocess_ref in kernels/cpu_ref_pipeline.c): the uint8
 * image is uploaded as it is and resized + normalised here, one thread per output pixel
 * and all three channels. Every product and sum is a round-to-nearest intrinsic, so nvcc
 * cannot fuse them: the result is the host's (model/sam2/transforms.c) bit for bit. */
#include "kernels/cuda/cuda_common.cuh"

#define PRE_THREADS 256

__global__ void preprocess_kernel(const uint8_t *rgb, int w, samc_resize_taps t, float *out, int S) {
    long long n = (long long)S * S;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        int y = (int)(i / S), x = (int)(i % S);
        const float *wx = t.wx + (size_t)x * t.T, *wy = t.wy + (size_t)y * t.T;
        int nx = t.nx[x], ny = t.ny[y];
        float v[3] = { 0.0f, 0.0f, 0.0f };
        for (int j = 0; j < ny; j++) {
            const uint8_t *row = rgb + ((size_t)(t.y0[y] + j) * w + t.x0[x]) * 3;
            float hs[3] = { 0.0f, 0.0f, 0.0f };
            for (int k = 0; k < nx; k++) {
                float wk = wx[k];
#pragma unroll
                for (int c = 0; c < 3; c++)
                    hs[c] = __fadd_rn(hs[c], __fmul_rn(wk, __fdiv_rn((float)row[(size_t)k * 3 + c], 255.0f)));
            }
#pragma unroll
            for (int c = 0; c < 3; c++) v[c] = __fadd_rn(v[c], __fmul_rn(wy[j], hs[c]));
        }
#pragma unroll
        for (int c = 0; c < 3; c++) out[(size_t)c * n + i] = __fdiv_rn(__fsub_rn(v[c], t.mean[c]), t.std[c]);
    }
}

void preprocess_cuda(const samc_ops *o, const uint8_t *rgb, int w, int h, const samc_resize_taps *t, float *out,
                     int S) {
    samc_cuda_ctx *c = cuda_ctx(o);
    (void)h;
    if (S <= 0 || w <= 0) return;
    /* the kernel writes fp32 in any mode: the precision map must say so (bf16 / fp16),
     * whatever an earlier op left in those bytes */
    if (!cuda_wr_f32(c, out, (size_t)3 * S * S, "preprocess").p) return;
    preprocess_kernel<<<cuda_blocks_for(c, (size_t)S * S, PRE_THREADS), PRE_THREADS, 0, c->stream>>>(rgb, w, *t, out,
                                                                                                     S);
    CUDA_OP_DONE(c, "preprocess");
}
