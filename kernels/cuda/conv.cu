/* kernels/cuda/conv.cu: nn.Conv2d (groups 1) and the decoder's ConvTranspose2d(k=2, s=2).
 *
 * conv2d is a direct kernel: no im2col buffer, so no workspace and nothing allocated per
 * call (in bf16 / fp16, long reductions go to the tensor cores through im2col chunks in the
 * conversion scratch: conv2d_gemm below). Its big user is Hiera's patch embed (sam2 backbones/hieradet.py PatchEmbed:
 * 7x7, stride 4, pad 3, 3 -> C0 channels at 1024x1024), a reduction of only 147 taps per
 * output, which a GEMM would spend mostly on the im2col copy. 1x1 stride-1 convolutions
 * are plain products and go to cuBLAS through matmul.
 *
 * Both kernels sum their taps in the reference's order (input channel, then ky, kx),
 * with FMAs, and add the bias last, as kernels/cpu_ref.c. Templates over the 16-bit
 * format T (cuda_common.cuh): each map fp32 or T as lowp.cu says (the image comes in
 * fp32, as uploaded), the weights fp32 from the weight block, the sums fp32. */
#include "kernels/cuda/cuda_common.cuh"
#include <limits.h>

#define CONV_PIX 128 /* output pixels per block, one per thread */
#define CONV_CO 16   /* output channels per block, accumulated in registers */
#define CONV_R 256   /* reduction taps (ci, ky, kx) staged in shared memory per step */

/* y[co, oy, ox] = b[co] + sum over (ci, ky, kx) inside the image of x[ci, iy, ix] * w[co, ci, ky, kx].
 * The weights of the block's 16 channels for 256 taps sit in shared memory as [tap][16]
 * (read as four broadcast float4s per tap), with each tap's input offset and (ky, kx)
 * decoded once per block instead of per thread. */
template <class T>
__global__ void __launch_bounds__(CONV_PIX)
conv2d_direct_kernel(cuda_src<T> x, cuda_src<T> w, cuda_src<T> b, cuda_dst<T> y, int Cin, int H, int W, int Cout,
                     int kh, int kw, int stride, int pad, int Ho, int Wo) {
    __shared__ float4 ws[CONV_R][CONV_CO / 4];
    __shared__ int tap_off[CONV_R], tap_ky[CONV_R], tap_kx[CONV_R];
    const int tid = threadIdx.x;
    const int p = blockIdx.x * CONV_PIX + tid;
    const int co0 = blockIdx.y * CONV_CO;
    const bool valid = p < Ho * Wo;
    const int oy = valid ? p / Wo : 0, ox = valid ? p % Wo : 0;
    const int iy0 = oy * stride - pad, ix0 = ox * stride - pad;
    const int khw = kh * kw, R = Cin * khw;

    float acc[CONV_CO];
#pragma unroll
    for (int j = 0; j < CONV_CO; j++) acc[j] = 0.0f;

    for (int r0 = 0; r0 < R; r0 += CONV_R) {
        const int nr = min(CONV_R, R - r0);
        __syncthreads(); /* the previous step's readers are done */
        float *wsf = (float *)ws;
        for (int t = tid; t < nr * CONV_CO; t += CONV_PIX) {
            int rr = t / CONV_CO, j = t % CONV_CO; /* consecutive threads: consecutive smem words */
            wsf[t] = co0 + j < Cout ? w[(size_t)(co0 + j) * R + r0 + rr] : 0.0f;
        }
        for (int t = tid; t < nr; t += CONV_PIX) {
            int r = r0 + t, ci = r / khw, k = r % khw, ky = k / kw, kx = k % kw;
            tap_off[t] = (ci * H + ky) * W + kx;
            tap_ky[t] = ky;
            tap_kx[t] = kx;
        }
        __syncthreads();
        if (valid)
            for (int t = 0; t < nr; t++) {
                int iy = iy0 + tap_ky[t], ix = ix0 + tap_kx[t];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; /* zero padding: the reference skips it */
                float xv = x[(ptrdiff_t)iy0 * W + ix0 + tap_off[t]];
#pragma unroll
                for (int q = 0; q < CONV_CO / 4; q++) {
                    float4 wv = ws[t][q];
                    acc[4 * q + 0] = fmaf(xv, wv.x, acc[4 * q + 0]);
                    acc[4 * q + 1] = fmaf(xv, wv.y, acc[4 * q + 1]);
                    acc[4 * q + 2] = fmaf(xv, wv.z, acc[4 * q + 2]);
                    acc[4 * q + 3] = fmaf(xv, wv.w, acc[4 * q + 3]);
                }
            }
    }
    if (!valid) return;
    const size_t plane = (size_t)Ho * Wo;
#pragma unroll
    for (int j = 0; j < CONV_CO; j++)
        if (co0 + j < Cout) y.put((size_t)(co0 + j) * plane + p, acc[j] + (b.p ? b[co0 + j] : 0.0f));
}

/* ---- conv2d as a GEMM on the tensor cores (reduced precisions; switch CONV=gemm) ------- *
 * A convolution with a long reduction (R = Cin kh kw taps >= CONV_GEMM_MIN_R: SAM3's pixel
 * decoder, 3x3 over 256 channels at 144 and 288 px, R = 2304, about 120 GFLOP per text in
 * the full config; its ViT's patch embed, R = 588) is the product y[Cout, P] = w[Cout, R] ·
 * col[R, P], col the unfolded input (im2col). The direct kernel computes it with fp32 FMAs;
 * in bf16 / fp16 on a device with tensor cores for the format it goes to cuBLAS instead:
 * the columns of a chunk of output pixels are unfolded into the conversion scratch as
 * 16-bit values (as many pixels as fit), the weights' 16-bit copy (made once at load) is
 * the other operand, sums are fp32 (CUBLAS_COMPUTE_32F) and y is written in the phase's
 * type, the bias added by the GEMM epilogue pass as matmul does. So the operands are
 * rounded to 16 bits once, like every linear's in these modes (also in the fp32 phase,
 * where the seg head runs: as the linears on 16-bit-only weights). */
#define CONV_GEMM_MIN_R 256

/* col[r, j] (dense [R, np], 16-bit) = x[ci, iy, ix] for output pixel p0 + j and tap r =
 * (ci, ky, kx), 0 outside the image. Consecutive threads take consecutive pixels. */
template <class T>
__global__ void im2col_kernel(cuda_src<T> x, cuda_dst<T> col, int H, int W, int kh, int kw, int stride, int pad, int Wo,
                              long long p0, int np, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const int j = (int)(i % np), r = (int)(i / np), khw = kh * kw;
        const int ci = r / khw, t = r % khw, ky = t / kw, kx = t % kw;
        const long long p = p0 + j;
        const int oy = (int)(p / Wo), ox = (int)(p % Wo);
        const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
        const bool in = iy >= 0 && iy < H && ix >= 0 && ix < W;
        col.put((size_t)i, in ? x[((size_t)ci * H + iy) * W + ix] : 0.0f);
    }
}

/* 1 when the GEMM path took the convolution (or failed, error recorded); 0: the caller
 * takes the direct kernel (fp32 mode, short reduction, no tensor cores for the format,
 * CONV=direct, a scratch too small for 8 pixels' columns). */
static int conv2d_gemm(samc_cuda_ctx *c, cuda_arg xs, const float *w, cuda_arg bs, cuda_arg ys, int Cin, int H, int W,
                       int Cout, int kh, int kw, int stride, int pad, int Ho, int Wo) {
    const long long R = (long long)Cin * kh * kw, P = (long long)Ho * Wo;
    if (!c->tracking || c->sw.conv_direct || R < CONV_GEMM_MIN_R || R > INT_MAX / 2 ||
        !cuda_tc16(c) || P > INT_MAX)
        return 0;
    long long np = (long long)(c->scratch_bytes / (2 * (size_t)R)) & ~7LL; /* pixels per chunk */
    if (np < 8) return 0;
    const void *w16 = cuda_rd16(c, w, (size_t)Cout * R, "conv2d");
    if (!w16) return c->failed ? 1 : 0; /* no 16-bit copy (an activation as the weight): direct */
    if (np > P) np = P;
    const size_t es = ys.f32 ? 4 : 2;
    for (long long p0 = 0; p0 < P && !c->failed; p0 += np) {
        const int nc = (int)(P - p0 < np ? P - p0 : np);
        const long long n = R * nc;
        cuda_by_type(c, [&](auto t) {
            using T = decltype(t);
            im2col_kernel<T><<<cuda_blocks_for(c, (size_t)n, 256), 256, 0, c->stream>>>(
                src_of<T>(xs), cuda_dst<T>{ c->scratch, 0 }, H, W, kh, kw, stride, pad, Wo, p0, nc, n);
        });
        /* C[nc, Cout] (column-major, ld P, from pixel p0) = col as [nc, R] (ld nc) · w as [R, Cout] (ld R) */
        if (gemm16(c, CUBLAS_OP_N, CUBLAS_OP_N, nc, Cout, (int)R, c->scratch, nc, w16, (int)R, (char *)ys.p + (size_t)p0 * es,
                   !ys.f32, (int)P))
            return 1;
    }
    gemm_epilogue(c, ys, bs, 1, SAMC_ACT_NONE, cuda_arg{ NULL, 1 }, Cout, (int)P);
    return 1;
}

void conv2d_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int Cin, int H,
                 int W, int Cout, int kh, int kw, int stride, int pad) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (Cout <= 0 || Cin <= 0 || H <= 0 || W <= 0 || kh <= 0 || kw <= 0 || stride <= 0) return;
    const int Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
    if (Ho <= 0 || Wo <= 0) return;
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0) {
        /* y[Cout, HW] = w[Cout, Cin] · x[Cin, HW] + b */
        matmul_cuda(o, w, x, b, y, Cout, H * W, Cin);
        return;
    }
    /* The tap offsets and pixel indices are ints: far beyond any SAM2.1 map. */
    if ((long long)Cin * H * W >= INT_MAX || (long long)Ho * Wo >= INT_MAX - CONV_PIX ||
        (long long)Cin * kh * kw >= INT_MAX) {
        cuda_fail(c, __FILE__, __LINE__, "conv2d", "input too large for 32-bit indexing");
        return;
    }
    const long long pixels = (long long)Ho * Wo;
    const int co_tiles = (Cout + CONV_CO - 1) / CONV_CO;
    if (co_tiles > 65535) {
        cuda_fail(c, __FILE__, __LINE__, "conv2d", "more than 65535*16 output channels");
        return;
    }
    dim3 grid((unsigned)((pixels + CONV_PIX - 1) / CONV_PIX), (unsigned)co_tiles);
    cuda_arg xs = cuda_rd(c, x, (size_t)Cin * H * W, "conv2d"), ws = cuda_rd(c, w, (size_t)Cout * Cin * kh * kw, "conv2d");
    cuda_arg bs = cuda_rd(c, b, (size_t)Cout, "conv2d");
    if (!xs.p || !ws.p || (b && !bs.p)) return;
    cuda_arg ys = cuda_wr(c, y, (size_t)Cout * Ho * Wo, "conv2d");
    if (!ys.p) return;
    if (conv2d_gemm(c, xs, w, bs, ys, Cin, H, W, Cout, kh, kw, stride, pad, Ho, Wo)) {
        CUDA_OP_DONE(c, "conv2d");
        return;
    }
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        conv2d_direct_kernel<T><<<grid, CONV_PIX, 0, c->stream>>>(src_of<T>(xs), src_of<T>(ws), src_of<T>(bs),
                                                                   dst_of<T>(ys), Cin, H, W, Cout, kh, kw, stride, pad,
                                                                   Ho, Wo);
    });
    CUDA_OP_DONE(c, "conv2d");
}

/* ConvTranspose2d(Cin, Cout, kernel 2, stride 2) (sam2 mask_decoder output_upscaling):
 * every input pixel paints its own 2x2 output patch, y[co, 2iy+ky, 2ix+kx] =
 * b[co] + sum_ci x[ci, iy, ix] * w[ci, co, ky, kx]. A thread owns one input pixel and 8
 * output channels (32 accumulators: 8 channels x 4 taps); the block stages the weights
 * of 64 input channels at a time, w[ci, co, 0..1, 0..1] being one float4. */
#define CT_PIX 128
#define CT_CO 8
#define CT_CI 64
template <class T>
__global__ void __launch_bounds__(CT_PIX)
conv_transpose2x2_kernel(cuda_src<T> x, cuda_src<T> w, cuda_src<T> b, cuda_dst<T> y, int Cin, int H, int W,
                         int Cout) {
    __shared__ float4 ws[CT_CI][CT_CO];
    const int tid = threadIdx.x;
    const int HW = H * W;
    const int p = blockIdx.x * CT_PIX + tid;
    const int co0 = blockIdx.y * CT_CO;
    const bool valid = p < HW;
    float acc[CT_CO][4];
#pragma unroll
    for (int j = 0; j < CT_CO; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;

    for (int ci0 = 0; ci0 < Cin; ci0 += CT_CI) {
        const int nci = min(CT_CI, Cin - ci0);
        __syncthreads();
        float *wsf = (float *)ws;
        /* consecutive t: consecutive (co, tap) of one ci, contiguous in w and in smem;
         * w is read as scalars: it may be an unaligned view into a weight arena */
        for (int t = tid; t < nci * CT_CO * 4; t += CT_PIX) {
            int cc = t / (CT_CO * 4), rem = t % (CT_CO * 4), j = rem / 4, tap = rem % 4;
            wsf[t] = co0 + j < Cout ? w[((size_t)(ci0 + cc) * Cout + co0 + j) * 4 + tap] : 0.0f;
        }
        __syncthreads();
        if (valid)
            for (int cc = 0; cc < nci; cc++) {
                float xv = x[(size_t)(ci0 + cc) * HW + p];
#pragma unroll
                for (int j = 0; j < CT_CO; j++) {
                    float4 wv = ws[cc][j];
                    acc[j][0] = fmaf(xv, wv.x, acc[j][0]);
                    acc[j][1] = fmaf(xv, wv.y, acc[j][1]);
                    acc[j][2] = fmaf(xv, wv.z, acc[j][2]);
                    acc[j][3] = fmaf(xv, wv.w, acc[j][3]);
                }
            }
    }
    if (!valid) return;
    const int iy = p / W, ix = p % W, Wo = 2 * W;
    const size_t plane = (size_t)4 * HW;
#pragma unroll
    for (int j = 0; j < CT_CO; j++) {
        if (co0 + j >= Cout) break;
        float bias = b.p ? b[co0 + j] : 0.0f;
        const cuda_dst<T> yr = y.at((ptrdiff_t)(co0 + j) * plane + (ptrdiff_t)(2 * iy) * Wo + 2 * ix);
        yr.put(0, acc[j][0] + bias);
        yr.put(1, acc[j][1] + bias);
        yr.put(Wo, acc[j][2] + bias);
        yr.put(Wo + 1, acc[j][3] + bias);
    }
}

/* ---- conv_transpose2x2 as a GEMM (16-bit input; switch CONV=gemm) ------------------------ *
 * Every input pixel p paints its 2x2 patch: z[p, (co, ky, kx)] = sum_ci x[ci, p] w[ci, co,
 * ky, kx] is a product over Cin, Z = xᵀ · w with w as [Cin, 4 Cout] (its layout). SAM3's
 * neck has three (1024 -> 512 channels at 72 -> 144 px twice, 512 -> 256 at 144 -> 288 px:
 * 65 GFLOP per image in the full config). When x holds 16-bit values (the neck runs in the
 * 16-bit phase: model/sam3/necks.c; SAM2.1's decoder is fp32 and keeps the direct kernel)
 * on a device with tensor cores for the format, cuBLAS computes Z for as many pixels as
 * fit the scratch (fp32 [np, 4 Cout]) from x and the weights' 16-bit copy, fp32 sums, and a
 * pass scatters it into y's 2x2 patches with the bias, rounded once. */
template <class T>
__global__ void convt_scatter_kernel(const float *z, cuda_src<T> bias, cuda_dst<T> y, int H, int W, int Cout, long long p0,
                                     long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const int k = (int)(i % (4LL * Cout)), j = (int)(i / (4LL * Cout)); /* z[j, k]: reads in order */
        const int co = k >> 2, ky = (k >> 1) & 1, kx = k & 1;
        const long long p = p0 + j, iy = p / W, ix = p % W;
        float v = z[i];
        if (bias.p) v += bias[co];
        y.put(((size_t)co * 2 * (size_t)H + 2 * iy + ky) * (size_t)(2 * W) + 2 * ix + kx, v);
    }
}

/* 1 when the GEMM path took it (or failed, error recorded); 0: the direct kernel. */
static int convt_gemm(samc_cuda_ctx *c, cuda_arg xs, const float *w, cuda_arg bs, cuda_arg ys, int Cin, int H, int W,
                      int Cout) {
    const long long P = (long long)H * W, N4 = 4LL * Cout;
    if (!c->tracking || c->sw.conv_direct || xs.f32 || !cuda_tc16(c) ||
        N4 > INT_MAX / 2 || P > INT_MAX)
        return 0;
    long long np = (long long)(c->scratch_bytes / (4 * (size_t)N4)) & ~7LL; /* pixels per chunk */
    if (np < 8) return 0;
    const void *w16 = cuda_rd16(c, w, (size_t)Cin * N4, "conv_transpose2x2");
    if (!w16) return c->failed ? 1 : 0;
    if (np > P) np = P;
    const size_t xe = 2; /* x is 16-bit here */
    for (long long p0 = 0; p0 < P && !c->failed; p0 += np) {
        const int nc = (int)(P - p0 < np ? P - p0 : np);
        /* Z[4 Cout, nc] (column-major = [nc][4 Cout], ld 4 Cout) = w as [4 Cout, Cin] (ld 4 Cout)
         * · op(x chunk as [nc, Cin], ld P)ᵀ */
        if (gemm16(c, CUBLAS_OP_N, CUBLAS_OP_T, (int)N4, nc, Cin, w16, (int)N4, (const char *)xs.p + (size_t)p0 * xe,
                   (int)P, c->scratch, 0, (int)N4))
            return 1;
        const long long n = (long long)nc * N4;
        cuda_by_type(c, [&](auto t) {
            using T = decltype(t);
            convt_scatter_kernel<T><<<cuda_blocks_for(c, (size_t)n, 256), 256, 0, c->stream>>>(
                (const float *)c->scratch, src_of<T>(bs), dst_of<T>(ys), H, W, Cout, p0, n);
        });
    }
    return 1;
}

void conv_transpose2x2_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int Cin,
                            int H, int W, int Cout) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (Cin <= 0 || H <= 0 || W <= 0 || Cout <= 0) return;
    if ((long long)H * W >= INT_MAX - CT_PIX || (Cout + CT_CO - 1) / CT_CO > 65535) {
        cuda_fail(c, __FILE__, __LINE__, "conv_transpose2x2", "map or channel count too large");
        return;
    }
    dim3 grid((unsigned)((H * W + CT_PIX - 1) / CT_PIX), (unsigned)((Cout + CT_CO - 1) / CT_CO));
    cuda_arg xs = cuda_rd(c, x, (size_t)Cin * H * W, "conv_transpose2x2");
    cuda_arg ws = cuda_rd(c, w, (size_t)Cin * Cout * 4, "conv_transpose2x2"), bs = cuda_rd(c, b, (size_t)Cout, "conv_transpose2x2");
    if (!xs.p || !ws.p || (b && !bs.p)) return;
    cuda_arg ys = cuda_wr(c, y, (size_t)Cout * 4 * H * W, "conv_transpose2x2");
    if (!ys.p) return;
    if (convt_gemm(c, xs, w, bs, ys, Cin, H, W, Cout)) {
        CUDA_OP_DONE(c, "conv_transpose2x2");
        return;
    }
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        conv_transpose2x2_kernel<T><<<grid, CT_PIX, 0, c->stream>>>(src_of<T>(xs), src_of<T>(ws), src_of<T>(bs),
                                                                     dst_of<T>(ys), Cin, H, W, Cout);
    });
    CUDA_OP_DONE(c, "conv_transpose2x2");
}
