/* kernels/sampling.h: the per-output arithmetic of roi_align, shared by the reference
 * (kernels/cpu_ref.c) and the CUDA kernel (kernels/cuda/sam3_ops.cu), so that both are
 * one copy and give the same bits. Under nvcc the functions are host and device
 * functions; elsewhere (C, the CUDA simulator's C++) plain static inline ones. */
#ifndef SAMC_SAMPLING_H
#define SAMC_SAMPLING_H
#include <math.h>
#include <stddef.h>

#if defined(__CUDACC__)
#define SAMC_HOST_DEVICE static __host__ __device__ inline
#else
#define SAMC_HOST_DEVICE static inline
#endif

/* torchvision's bilinear_interpolate of roi_align (CPU kernel): samples outside
 * [-1, H] x [-1, W] are 0, coordinates clamped to the map, the last row/column repeated. */
SAMC_HOST_DEVICE float samc_roi_bilinear(const float *x, int H, int W, float yy, float xx) {
    if (yy < -1.0f || yy > (float)H || xx < -1.0f || xx > (float)W) return 0.0f;
    if (yy <= 0.0f) yy = 0.0f;
    if (xx <= 0.0f) xx = 0.0f;
    int y0 = (int)yy, x0 = (int)xx, y1, x1;
    if (y0 >= H - 1) { y1 = y0 = H - 1; yy = (float)y0; } else y1 = y0 + 1;
    if (x0 >= W - 1) { x1 = x0 = W - 1; xx = (float)x0; } else x1 = x0 + 1;
    float ly = yy - (float)y0, lx = xx - (float)x0, hy = 1.0f - ly, hx = 1.0f - lx;
    return hy * hx * x[(size_t)y0 * W + x0] + hy * lx * x[(size_t)y0 * W + x1] + ly * hx * x[(size_t)y1 * W + x0] +
           ly * lx * x[(size_t)y1 * W + x1];
}

/* torchvision.ops.roi_align, aligned=False, one output bin (ph, pw) of box[4] (x0, y0,
 * x1, y1) on one channel xc[H, W]: the box is at least 1x1, the bin averages
 * ceil(box / P) x ceil(box / P) bilinear samples (sampling_ratio -1). */
SAMC_HOST_DEVICE float samc_roi_align_bin(const float *xc, int H, int W, const float *box, int P, int ph, int pw) {
    float x0 = box[0], y0 = box[1];
    float rw = fmaxf(box[2] - x0, 1.0f), rh = fmaxf(box[3] - y0, 1.0f);
    float bw = rw / (float)P, bh = rh / (float)P;
    int gw = (int)ceilf(rw / (float)P), gh = (int)ceilf(rh / (float)P);
    float count = (float)(gw * gh > 1 ? gw * gh : 1);
    float acc = 0.0f;
    for (int iy = 0; iy < gh; iy++) {
        float yy = y0 + (float)ph * bh + ((float)iy + 0.5f) * bh / (float)gh;
        for (int ix = 0; ix < gw; ix++) {
            float xx = x0 + (float)pw * bw + ((float)ix + 0.5f) * bw / (float)gw;
            acc += samc_roi_bilinear(xc, H, W, yy, xx);
        }
    }
    return acc / count;
}

#endif
