/* kernels/cuda/layout.cu: Hiera's window partition / unpartition (sam2
 * backbones/utils.py window_partition, window_unpartition), q pooling (hieradet.py
 * do_pool with nn.MaxPool2d(2, 2)), the FPN neck's nearest 2x top-down add
 * (backbones/image_encoder.py FpnNeck) and the predictor's bilinear upsampling
 * (F.interpolate, align_corners=False).
 *
 * All but the last move rows of C contiguous channels: a block is 8 rows of 32 lanes,
 * the lanes stride along the channels (coalesced), a row's source is decoded once. */
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/bilinear.cuh"

#define ROW_LANES 32
#define ROW_ROWS 8

static inline unsigned row_blocks(long long rows) {
    long long b = (rows + ROW_ROWS - 1) / ROW_ROWS;
    return (unsigned)(b < 0x7fffffffLL ? b : 0x7fffffffLL);
}

/* win[w, t, c] for w = wy*nwx + wx, t = ty*ww + tx: the pixel (wy*wh + ty, wx*ww + tx)
 * of x, or 0 in the padding past the map. */
__global__ void window_partition_kernel(const float *x, float *win, int H, int W, int C, int wh, int ww, int nwx,
                                        long long rows) {
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        long long wi = r / (wh * ww);
        int t = (int)(r % (wh * ww));
        int y = (int)(wi / nwx) * wh + t / ww, xx = (int)(wi % nwx) * ww + t % ww;
        float *dst = win + r * C;
        if (y < H && xx < W) {
            const float *src = x + ((size_t)y * W + xx) * C;
            for (int c = threadIdx.x; c < C; c += ROW_LANES) dst[c] = src[c];
        } else {
            for (int c = threadIdx.x; c < C; c += ROW_LANES) dst[c] = 0.0f;
        }
    }
}

void window_partition_cuda(const samc_ops *o, const float *x, float *win, int H, int W, int C, int wh, int ww) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (H <= 0 || W <= 0 || C <= 0 || wh <= 0 || ww <= 0) return;
    int nwy = (H + wh - 1) / wh, nwx = (W + ww - 1) / ww;
    long long rows = (long long)nwy * nwx * wh * ww;
    window_partition_kernel<<<row_blocks(rows), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(x, win, H, W, C, wh, ww,
                                                                                          nwx, rows);
    CUDA_OP_DONE(c, "window_partition");
}

/* out[y, x, :] = shortcut[y, x, :] + win[(y/wh)*nwx + x/ww, (y%wh)*ww + x%ww, :]; each
 * element is read and written by one thread, so out may be shortcut. */
__global__ void window_unpartition_add_kernel(const float *win, const float *shortcut, float *out, int H, int W,
                                              int C, int wh, int ww, int nwx) {
    long long rows = (long long)H * W;
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        int y = (int)(r / W), xx = (int)(r % W);
        size_t wi = (size_t)(y / wh) * nwx + xx / ww, t = (size_t)(y % wh) * ww + xx % ww;
        const float *src = win + (wi * wh * ww + t) * C;
        const float *sc = shortcut + r * C;
        float *dst = out + r * C;
        for (int c = threadIdx.x; c < C; c += ROW_LANES) dst[c] = sc[c] + src[c];
    }
}

void window_unpartition_add_cuda(const samc_ops *o, const float *win, const float *shortcut, float *out, int H,
                                 int W, int C, int wh, int ww, int nwx) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (H <= 0 || W <= 0 || C <= 0 || wh <= 0 || ww <= 0) return;
    window_unpartition_add_kernel<<<row_blocks((long long)H * W), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(
        win, shortcut, out, H, W, C, wh, ww, nwx);
    CUDA_OP_DONE(c, "window_unpartition_add");
}

/* y[i, oy, ox, c] = max of the 2x2 pixels (2oy+dy, 2ox+dx) of image i, pixel (i, yy, xx)
 * starting at x + ((i*H + yy)*W + xx) * pixel_stride. The comparison is the
 * reference's (a NaN never wins), not fmaxf. */
__global__ void maxpool2x2_kernel(const float *x, float *y, int n, int H, int W, int C, ptrdiff_t ps) {
    const int Ho = H / 2, Wo = W / 2;
    long long rows = (long long)n * Ho * Wo;
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        long long i = r / ((long long)Ho * Wo);
        int rem = (int)(r % ((long long)Ho * Wo)), oy = rem / Wo, ox = rem % Wo;
        const float *p00 = x + ((i * H + 2 * oy) * W + 2 * ox) * ps;
        const float *p01 = p00 + ps, *p10 = p00 + (ptrdiff_t)W * ps, *p11 = p10 + ps;
        float *dst = y + r * C;
        for (int c = threadIdx.x; c < C; c += ROW_LANES) {
            float v = -INFINITY, q;
            q = p00[c]; if (q > v) v = q;
            q = p01[c]; if (q > v) v = q;
            q = p10[c]; if (q > v) v = q;
            q = p11[c]; if (q > v) v = q;
            dst[c] = v;
        }
    }
}

void maxpool2x2_cuda(const samc_ops *o, const float *x, float *y, int n, int H, int W, int C,
                     ptrdiff_t pixel_stride) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (n <= 0 || H < 2 || W < 2 || C <= 0) return;
    long long rows = (long long)n * (H / 2) * (W / 2);
    maxpool2x2_kernel<<<row_blocks(rows), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(x, y, n, H, W, C, pixel_stride);
    CUDA_OP_DONE(c, "maxpool2x2");
}

/* dst[c, yy, xx] += src[c, yy/2, xx/2] for dst [C, 2h, 2w]: rows are (c, yy). */
__global__ void upsample_nearest2x_add_kernel(float *dst, const float *src, int C, int h, int w) {
    long long rows = (long long)C * 2 * h;
    const int W2 = 2 * w;
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        long long ch = r / (2 * h);
        int yy = (int)(r % (2 * h));
        float *d = dst + r * W2;
        const float *s = src + (ch * h + yy / 2) * w;
        for (int xx = threadIdx.x; xx < W2; xx += ROW_LANES) d[xx] += s[xx / 2];
    }
}

void upsample_nearest2x_add_cuda(const samc_ops *o, float *dst, const float *src, int C, int h, int w) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (C <= 0 || h <= 0 || w <= 0) return;
    upsample_nearest2x_add_kernel<<<row_blocks((long long)C * 2 * h), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(
        dst, src, C, h, w);
    CUDA_OP_DONE(c, "upsample_nearest2x_add");
}

/* PyTorch upsample_bilinear2d, align_corners=False, as kernels/cpu_ref.c (bilinear.cuh). */
__global__ void upsample_bilinear_kernel(const float *low, float *out, int n, int ls, int w, int h) {
    const float sy = __fdiv_rn((float)ls, (float)h), sx = __fdiv_rn((float)ls, (float)w);
    long long rows = (long long)n * h;
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        long long i = r / h;
        bilinear_axis ay = bilinear_axis_at(sy, (int)(r % h), ls);
        const float *in = low + i * ls * ls;
        float *res = out + r * w;
        for (int xx = threadIdx.x; xx < w; xx += ROW_LANES)
            res[xx] = bilinear_sample(in, ls, bilinear_axis_at(sx, xx, ls), ay);
    }
}

void upsample_bilinear_cuda(const samc_ops *o, const float *low, float *out, int n, int ls, int w, int h) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (n <= 0 || ls <= 0 || w <= 0 || h <= 0) return;
    upsample_bilinear_kernel<<<row_blocks((long long)n * h), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(low, out, n,
                                                                                                     ls, w, h);
    CUDA_OP_DONE(c, "upsample_bilinear");
}
