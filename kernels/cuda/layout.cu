/* kernels/cuda/layout.cu: Hiera's window partition / unpartition (sam2
 * backbones/utils.py window_partition, window_unpartition), q pooling (hieradet.py
 * do_pool with nn.MaxPool2d(2, 2)), the FPN neck's nearest 2x top-down add
 * (backbones/image_encoder.py FpnNeck) and the predictor's bilinear upsampling
 * (F.interpolate, align_corners=False).
 *
 * All but the last move rows of C contiguous channels: a block is 8 rows of 32 lanes,
 * the lanes stride along the channels (coalesced), a row's source is decoded once.
 * Templates over the 16-bit format T (cuda_common.cuh), each tensor fp32 or T as lowp.cu
 * says: moves and max are exact in any precision, adds and the bilinear weights compute
 * in fp32 and round once. */
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/bilinear.cuh"

#define ROW_LANES 32
#define ROW_ROWS 8

static inline unsigned row_blocks(long long rows) {
    long long b = (rows + ROW_ROWS - 1) / ROW_ROWS;
    return (unsigned)(b < 0x7fffffffLL ? b : 0x7fffffffLL);
}

/* The input (n_in elements) and output (n_out) of a layout op; the output in the phase's
 * type, or the input's when in place. 0, or -1 (error recorded). */
static int layout_args(samc_cuda_ctx *c, const float *in, size_t n_in, float *out, size_t n_out, cuda_arg *a,
                       const char *op) {
    a[0] = cuda_rd(c, in, n_in, op);
    if (!a[0].p) return -1;
    a[1] = out == in ? cuda_wr_like(c, out, n_out, a[0], op) : cuda_wr(c, out, n_out, op);
    return a[1].p ? 0 : -1;
}

/* win[w, t, c] for w = wy*nwx + wx, t = ty*ww + tx: the pixel (wy*wh + ty, wx*ww + tx)
 * of x, or 0 in the padding past the map. */
template <class T>
__global__ void window_partition_kernel(cuda_src<T> x, cuda_dst<T> win, int H, int W, int C, int wh, int ww, int nwx,
                                        long long rows) {
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        long long wi = r / (wh * ww);
        int t = (int)(r % (wh * ww));
        int y = (int)(wi / nwx) * wh + t / ww, xx = (int)(wi % nwx) * ww + t % ww;
        const cuda_dst<T> dst = win.at(r * C);
        if (y < H && xx < W) {
            const cuda_src<T> src = x.at(((ptrdiff_t)y * W + xx) * C);
            for (int c = threadIdx.x; c < C; c += ROW_LANES) dst.put(c, src[c]);
        } else {
            for (int c = threadIdx.x; c < C; c += ROW_LANES) dst.put(c, 0.0f);
        }
    }
}

void window_partition_cuda(const samc_ops *o, const float *x, float *win, int H, int W, int C, int wh, int ww) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (H <= 0 || W <= 0 || C <= 0 || wh <= 0 || ww <= 0) return;
    int nwy = (H + wh - 1) / wh, nwx = (W + ww - 1) / ww;
    long long rows = (long long)nwy * nwx * wh * ww;
    cuda_arg a[2];
    if (layout_args(c, x, (size_t)H * W * C, win, (size_t)rows * C, a, "window_partition")) return;
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        window_partition_kernel<T><<<row_blocks(rows), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(
            src_of<T>(a[0]), dst_of<T>(a[1]), H, W, C, wh, ww, nwx, rows);
    });
    CUDA_OP_DONE(c, "window_partition");
}

/* out[y, x, :] = shortcut[y, x, :] + win[(y/wh)*nwx + x/ww, (y%wh)*ww + x%ww, :]; each
 * element is read and written by one thread, so out may be shortcut. */
template <class T>
__global__ void window_unpartition_add_kernel(cuda_src<T> win, cuda_src<T> shortcut, cuda_dst<T> out, int H, int W,
                                              int C, int wh, int ww, int nwx) {
    long long rows = (long long)H * W;
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        int y = (int)(r / W), xx = (int)(r % W);
        size_t wi = (size_t)(y / wh) * nwx + xx / ww, t = (size_t)(y % wh) * ww + xx % ww;
        const cuda_src<T> src = win.at((ptrdiff_t)(wi * wh * ww + t) * C), sc = shortcut.at(r * C);
        const cuda_dst<T> dst = out.at(r * C);
        for (int c = threadIdx.x; c < C; c += ROW_LANES) dst.put(c, sc[c] + src[c]);
    }
}

void window_unpartition_add_cuda(const samc_ops *o, const float *win, const float *shortcut, float *out, int H,
                                 int W, int C, int wh, int ww, int nwx) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (H <= 0 || W <= 0 || C <= 0 || wh <= 0 || ww <= 0) return;
    int nwy = (H + wh - 1) / wh;
    size_t n = (size_t)H * W * C;
    cuda_arg w = cuda_rd(c, win, (size_t)nwy * nwx * wh * ww * C, "window_unpartition_add"), a[2];
    if (!w.p || layout_args(c, shortcut, n, out, n, a, "window_unpartition_add")) return;
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        window_unpartition_add_kernel<T><<<row_blocks((long long)H * W), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(
            src_of<T>(w), src_of<T>(a[0]), dst_of<T>(a[1]), H, W, C, wh, ww, nwx);
    });
    CUDA_OP_DONE(c, "window_unpartition_add");
}

/* y[i, oy, ox, c] = max of the 2x2 pixels (2oy+dy, 2ox+dx) of image i, pixel (i, yy, xx)
 * starting at x + ((i*H + yy)*W + xx) * pixel_stride. The comparison is the
 * reference's (a NaN never wins), not fmaxf. */
template <class T>
__global__ void maxpool2x2_kernel(cuda_src<T> x, cuda_dst<T> y, int n, int H, int W, int C, ptrdiff_t ps) {
    const int Ho = H / 2, Wo = W / 2;
    long long rows = (long long)n * Ho * Wo;
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        long long i = r / ((long long)Ho * Wo);
        int rem = (int)(r % ((long long)Ho * Wo)), oy = rem / Wo, ox = rem % Wo;
        const cuda_src<T> p00 = x.at(((i * H + 2 * oy) * W + 2 * ox) * ps);
        const cuda_src<T> p01 = p00.at(ps), p10 = p00.at((ptrdiff_t)W * ps), p11 = p10.at(ps);
        const cuda_dst<T> dst = y.at(r * C);
        for (int c = threadIdx.x; c < C; c += ROW_LANES) {
            float v = -INFINITY, q;
            q = p00[c]; if (q > v) v = q;
            q = p01[c]; if (q > v) v = q;
            q = p10[c]; if (q > v) v = q;
            q = p11[c]; if (q > v) v = q;
            dst.put(c, v);
        }
    }
}

void maxpool2x2_cuda(const samc_ops *o, const float *x, float *y, int n, int H, int W, int C,
                     ptrdiff_t pixel_stride) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (n <= 0 || H < 2 || W < 2 || C <= 0) return;
    long long rows = (long long)n * (H / 2) * (W / 2);
    cuda_arg a[2];
    size_t n_in = ((size_t)n * H * W - 1) * (size_t)pixel_stride + (size_t)C;
    if (layout_args(c, x, n_in, y, (size_t)rows * C, a, "maxpool2x2")) return;
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        maxpool2x2_kernel<T><<<row_blocks(rows), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(
            src_of<T>(a[0]), dst_of<T>(a[1]), n, H, W, C, pixel_stride);
    });
    CUDA_OP_DONE(c, "maxpool2x2");
}

/* dst[c, yy, xx] += src[c, yy/2, xx/2] for dst [C, 2h, 2w]: rows are (c, yy). */
template <class T> __global__ void upsample_nearest2x_add_kernel(cuda_dst<T> dst, cuda_src<T> src, int C, int h, int w) {
    long long rows = (long long)C * 2 * h;
    const int W2 = 2 * w;
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        long long ch = r / (2 * h);
        int yy = (int)(r % (2 * h));
        const cuda_dst<T> d = dst.at(r * W2);
        const cuda_src<T> s = src.at((ch * h + yy / 2) * w);
        for (int xx = threadIdx.x; xx < W2; xx += ROW_LANES) d.put(xx, d.get(xx) + s[xx / 2]);
    }
}

void upsample_nearest2x_add_cuda(const samc_ops *o, float *dst, const float *src, int C, int h, int w) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (C <= 0 || h <= 0 || w <= 0) return;
    size_t nd = (size_t)C * 4 * h * w;
    cuda_arg s = cuda_rd(c, src, (size_t)C * h * w, "upsample_nearest2x_add"), a[2];
    if (!s.p || layout_args(c, dst, nd, dst, nd, a, "upsample_nearest2x_add")) return;
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        upsample_nearest2x_add_kernel<T><<<row_blocks((long long)C * 2 * h), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(
            dst_of<T>(a[1]), src_of<T>(s), C, h, w);
    });
    CUDA_OP_DONE(c, "upsample_nearest2x_add");
}

/* PyTorch upsample_bilinear2d, align_corners=False, as kernels/cpu_ref.c (bilinear.cuh). */
template <class T>
__global__ void upsample_bilinear_kernel(cuda_src<T> low, cuda_dst<T> out, int n, int ls, int w, int h) {
    const float sy = __fdiv_rn((float)ls, (float)h), sx = __fdiv_rn((float)ls, (float)w);
    long long rows = (long long)n * h;
    for (long long r = (long long)blockIdx.x * ROW_ROWS + threadIdx.y; r < rows; r += (long long)gridDim.x * ROW_ROWS) {
        long long i = r / h;
        bilinear_axis ay = bilinear_axis_at(sy, (int)(r % h), ls);
        const cuda_src<T> in = low.at(i * ls * ls);
        const cuda_dst<T> res = out.at(r * w);
        for (int xx = threadIdx.x; xx < w; xx += ROW_LANES)
            res.put(xx, bilinear_sample(in, ls, bilinear_axis_at(sx, xx, ls), ay));
    }
}

void upsample_bilinear_cuda(const samc_ops *o, const float *low, float *out, int n, int ls, int w, int h) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (n <= 0 || ls <= 0 || w <= 0 || h <= 0) return;
    cuda_arg a[2];
    if (layout_args(c, low, (size_t)n * ls * ls, out, (size_t)n * w * h, a, "upsample_bilinear")) return;
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        upsample_bilinear_kernel<T><<<row_blocks((long long)n * h), dim3(ROW_LANES, ROW_ROWS), 0, c->stream>>>(
            src_of<T>(a[0]), dst_of<T>(a[1]), n, ls, w, h);
    });
    CUDA_OP_DONE(c, "upsample_bilinear");
}
