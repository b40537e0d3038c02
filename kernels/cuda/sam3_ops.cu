/* kernels/cuda/sam3_ops.cu: the ops SAM3's image model added to the table (kernels/ops.h,
 * "SAM3" section); their CPU twins are the <op>_ref functions of kernels/cpu_ref.c.
 *
 *   attention_biased  a warp per query row: max, sum and weighted sum of v in three
 *                     passes over the keys (scores recomputed, not stored); SAM3's
 *                     biased attentions are the small ones (decoder, prompt cross-
 *                     attention, text), the big ones go through attention.cu (the
 *                     ViT's; the fusion encoder's self-attention); fp32 or 16-bit
 *                     operands (the fusion encoder runs in the 16-bit phase)
 *   rope              a thread per (row, head, pair); fp32 or 16-bit x (the ViT's qkv)
 *   group_norm        a block per group: double sums (as the reference), then the affine
 *   roi_align         a thread per output bin, torchvision's sampling (aligned=False)
 *   grid_sample       a thread per (point, channel)
 *   box_rpb_bias      a thread per output element
 *
 * Written for correctness first and compiled with nvcc; not yet run on a GPU. */
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/sampling.h"

#define AB_WARPS 4
#define AB_MAX_HD 128

/* These kernels, attention_biased and rope aside, read and write fp32 only. In the reduced
 * modes (lowp.cu) the SAM3 model keeps fp32 activations outside its ViT and fusion encoder
 * (model/sam3/load.c asks for them right after set_precision; the ViT, whose ops are
 * SAM2.1's and rope, and the fusion encoder, SAM2.1's ops and attention_biased, run in
 * the 16-bit phase), so each op here checks that its inputs hold fp32 values and records
 * its output as fp32; a 16-bit input fails the op with a message instead of being
 * misread. 0: go on. */
static int sam3_in(samc_cuda_ctx *c, const float *p, size_t n, const char *op) {
    if (!c->tracking || !p) return 0;
    cuda_arg a = cuda_rd(c, p, n, op);
    if (!a.p) return -1;
    if (!a.f32) return cuda_fail(c, __FILE__, __LINE__, op, "16-bit activations: this SAM3 op computes fp32 only");
    return 0;
}
static int sam3_out(samc_cuda_ctx *c, float *p, size_t n, const char *op) {
    if (!c->tracking) return 0;
    return cuda_wr_like(c, p, n, cuda_arg{ p, 1 }, op).p ? 0 : -1;
}

/* q, k, v, the bias and out each fp32 or T as lowp.cu says (the fusion encoder runs in
 * the 16-bit phase: model/sam3/encoder.c); the scores, softmax and sums are fp32 in every
 * type, out rounded once on the store. */
template <class T>
__global__ void __launch_bounds__(AB_WARPS * 32)
attention_biased_kernel(samc_attention_args a, cuda_src<T> qv, cuda_src<T> kv, cuda_src<T> vv, cuda_src<T> bv,
                        samc_attention_bias bias, cuda_dst<T> ov) {
    __shared__ float qs[AB_WARPS][AB_MAX_HD];
    const int lane = threadIdx.x & 31, wi = threadIdx.x >> 5;
    const long row = (long)blockIdx.x * AB_WARPS + wi;
    if (row >= (long)a.batch * a.heads * a.n_q) return; /* whole warps leave together */
    const int i = (int)(row % a.n_q), h = (int)((row / a.n_q) % a.heads), b = (int)(row / ((long)a.n_q * a.heads));
    const int hd = a.head_dim;
    const cuda_src<T> q = qv.at(b * a.q_sb + h * a.q_sh + i * a.q_st);
    const cuda_src<T> kb = kv.at(b * a.k_sb + h * a.k_sh), vb = vv.at(b * a.v_sb + h * a.v_sh);
    const cuda_src<T> brow = bv.at(b * bias.sb + h * bias.sh + i * bias.sq);
    for (int d = lane; d < hd; d += 32) qs[wi][d] = q[d];
    __syncwarp();
    float mx = -INFINITY;
    for (int j = lane; j < a.n_kv; j += 32) {
        const cuda_src<T> k = kb.at((ptrdiff_t)j * a.k_st);
        float dot = 0.0f;
        for (int d = 0; d < hd; d++) dot += qs[wi][d] * k[d];
        mx = fmaxf(mx, dot * a.scale + brow[j]);
    }
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < a.n_kv; j += 32) {
        const cuda_src<T> k = kb.at((ptrdiff_t)j * a.k_st);
        float dot = 0.0f;
        for (int d = 0; d < hd; d++) dot += qs[wi][d] * k[d];
        sum += expf(dot * a.scale + brow[j] - mx);
    }
    sum = warp_sum(sum);
    float acc[AB_MAX_HD / 32] = { 0.0f, 0.0f, 0.0f, 0.0f };
    for (int j0 = 0; j0 < a.n_kv; j0 += 32) {
        int j = j0 + lane;
        float p = 0.0f;
        if (j < a.n_kv) {
            const cuda_src<T> k = kb.at((ptrdiff_t)j * a.k_st);
            float dot = 0.0f;
            for (int d = 0; d < hd; d++) dot += qs[wi][d] * k[d];
            p = expf(dot * a.scale + brow[j] - mx) / sum;
        }
        int nt = a.n_kv - j0 < 32 ? a.n_kv - j0 : 32;
        for (int t = 0; t < nt; t++) {
            float pt = __shfl_sync(0xffffffffu, p, t);
            const cuda_src<T> v = vb.at((ptrdiff_t)(j0 + t) * a.v_st);
#pragma unroll
            for (int r = 0; r < AB_MAX_HD / 32; r++)
                if (lane + 32 * r < hd) acc[r] += pt * v[lane + 32 * r];
        }
    }
    const cuda_dst<T> out = ov.at(b * a.o_sb + h * a.o_sh + i * a.o_st);
#pragma unroll
    for (int r = 0; r < AB_MAX_HD / 32; r++)
        if (lane + 32 * r < hd) out.put(lane + 32 * r, acc[r]);
}

static void attention_biased_cuda(const samc_ops *o, const samc_attention_args *a, const samc_attention_bias *bias) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (a->batch <= 0 || a->heads <= 0 || a->n_q <= 0 || a->head_dim <= 0) return;
    if (a->head_dim > AB_MAX_HD) {
        cuda_fail(c, __FILE__, __LINE__, "attention_biased", "head_dim above 128 is not supported");
        return;
    }
    if (samc_att_windowed(a)) { /* kernels/ops.h: the window geometry is attention's only */
        cuda_fail(c, __FILE__, __LINE__, "attention_biased", "window geometry is not supported");
        return;
    }
    const char *op = "attention_biased";
    if (!a->q || !a->k || !a->v || !a->out || !bias->bias) {
        cuda_fail(c, __FILE__, __LINE__, op, "a NULL q, k, v, out or bias");
        return;
    }
    cuda_arg q = cuda_rd(c, a->q, cuda_span(a->batch, a->q_sb, a->heads, a->q_sh, a->n_q, a->q_st, a->head_dim), op);
    cuda_arg k = cuda_rd(c, a->k, cuda_span(a->batch, a->k_sb, a->heads, a->k_sh, a->n_kv, a->k_st, a->head_dim), op);
    cuda_arg v = cuda_rd(c, a->v, cuda_span(a->batch, a->v_sb, a->heads, a->v_sh, a->n_kv, a->v_st, a->head_dim), op);
    cuda_arg bb = cuda_rd(c, bias->bias, cuda_span(a->batch, bias->sb, a->heads, bias->sh, a->n_q, bias->sq, a->n_kv), op);
    if (!q.p || !k.p || !v.p || !bb.p) return;
    cuda_arg out = cuda_wr(c, a->out, cuda_span(a->batch, a->o_sb, a->heads, a->o_sh, a->n_q, a->o_st, a->head_dim), op);
    if (!out.p) return;
    long rows = (long)a->batch * a->heads * a->n_q;
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        attention_biased_kernel<T><<<(unsigned)((rows + AB_WARPS - 1) / AB_WARPS), AB_WARPS * 32, 0, c->stream>>>(
            *a, src_of<T>(q), src_of<T>(k), src_of<T>(v), src_of<T>(bb), *bias, dst_of<T>(out));
    });
    CUDA_OP_DONE(c, op);
}

/* x (fp32 or 16-bit, in place: the ViT's qkv) rotated pair by pair; the tables fp32 (or
 * 16-bit, as written). The arithmetic is fp32 and the same expressions as rope_ref in
 * every type; a 16-bit x is rounded once on the store. */
template <class T>
__global__ void rope_kernel(cuda_dst<T> x, int rows, ptrdiff_t ld, int heads, int hd, cuda_src<T> cos_t,
                            cuda_src<T> sin_t, int period) {
    const int half = hd / 2;
    const size_t n = (size_t)rows * heads * half;
    for (size_t u = blockIdx.x * (size_t)blockDim.x + threadIdx.x; u < n; u += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(u % half), h = (int)((u / half) % heads);
        size_t r = u / ((size_t)half * heads);
        size_t t = (r % (size_t)period) * half + i;
        const size_t o = (size_t)((ptrdiff_t)r * ld + (ptrdiff_t)h * hd + 2 * i);
        float re = x.get(o), im = x.get(o + 1), cs = cos_t[t], sn = sin_t[t];
        x.put(o, re * cs - im * sn);
        x.put(o + 1, re * sn + im * cs);
    }
}

/* The one SAM3 op that also takes 16-bit activations: the ViT runs in the 16-bit phase
 * (model/sam3/vitdet.c), where rope rotates its 16-bit qkv in place. */
static void rope_cuda(const samc_ops *o, float *x, int rows, ptrdiff_t ld, int heads, int hd, const float *cos_t,
                      const float *sin_t, int period) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (rows <= 0 || heads <= 0 || hd < 2 || period <= 0) return;
    size_t n = (size_t)rows * heads * (hd / 2), nt = (size_t)period * (hd / 2);
    size_t span = (size_t)(rows - 1) * (size_t)ld + (size_t)heads * hd;
    cuda_arg in = cuda_rd(c, x, span, "rope"), cs = cuda_rd(c, cos_t, nt, "rope"), sn = cuda_rd(c, sin_t, nt, "rope");
    if (!in.p || !cs.p || !sn.p) return;
    cuda_arg out = cuda_wr_like(c, x, span, in, "rope"); /* in place: keeps x's type */
    if (!out.p) return;
    cuda_by_type(c, [&](auto t) {
        using T = decltype(t);
        rope_kernel<T><<<cuda_blocks_for(c, n, 256), 256, 0, c->stream>>>(dst_of<T>(out), rows, ld, heads, hd,
                                                                         src_of<T>(cs), src_of<T>(sn), period);
    });
    CUDA_OP_DONE(c, "rope");
}

#define GN_THREADS 1024
__global__ void __launch_bounds__(GN_THREADS)
group_norm_kernel(const float *x, const float *w, const float *b, float *y, int cg, int HW, float eps) {
    __shared__ double red[GN_THREADS / 32];
    __shared__ double stat[2];
    const size_t n = (size_t)cg * HW, base = (size_t)blockIdx.x * n;
    const int lane = threadIdx.x & 31, wi = threadIdx.x >> 5;
    for (int pass = 0; pass < 2; pass++) {
        double s = 0.0, mean = pass ? stat[0] : 0.0;
        for (size_t i = threadIdx.x; i < n; i += GN_THREADS) {
            double v = x[base + i];
            s += pass ? (v - mean) * (v - mean) : v;
        }
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (lane == 0) red[wi] = s;
        __syncthreads();
        if (threadIdx.x == 0) {
            double t = 0.0;
            for (int k = 0; k < GN_THREADS / 32; k++) t += red[k];
            stat[pass] = pass ? 1.0 / sqrt(t / (double)n + eps) : t / (double)n;
        }
        __syncthreads();
    }
    const float m = (float)stat[0], inv = (float)stat[1];
    for (size_t i = threadIdx.x; i < n; i += GN_THREADS) {
        int ch = blockIdx.x * cg + (int)(i / HW);
        y[base + i] = (x[base + i] - m) * inv * w[ch] + b[ch];
    }
}

static void group_norm_cuda(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int C,
                            int HW, int groups, float eps) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (C <= 0 || HW <= 0 || groups <= 0) return;
    if (sam3_in(c, x, (size_t)C * HW, "group_norm") || sam3_out(c, y, (size_t)C * HW, "group_norm")) return;
    group_norm_kernel<<<(unsigned)groups, GN_THREADS, 0, c->stream>>>(x, w, b, y, C / groups, HW, eps);
    CUDA_OP_DONE(c, "group_norm");
}

/* a thread per output bin; the arithmetic is the reference's (kernels/sampling.h) */
__global__ void roi_align_kernel(const float *x, const float *boxes, float *y, int C, int H, int W, int n, int P) {
    const size_t total = (size_t)n * C * P * P;
    for (size_t u = blockIdx.x * (size_t)blockDim.x + threadIdx.x; u < total; u += (size_t)gridDim.x * blockDim.x) {
        int pw = (int)(u % P), ph = (int)((u / P) % P), ch = (int)((u / ((size_t)P * P)) % C);
        int r = (int)(u / ((size_t)P * P * C));
        y[u] = samc_roi_align_bin(x + (size_t)ch * H * W, H, W, boxes + 4 * (size_t)r, P, ph, pw);
    }
}

static void roi_align_cuda(const samc_ops *o, const float *x, const float *boxes, float *y, int C, int H, int W, int n,
                           int P) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (n <= 0 || C <= 0 || P <= 0) return;
    size_t total = (size_t)n * C * P * P;
    if (sam3_in(c, x, (size_t)C * H * W, "roi_align") || sam3_in(c, boxes, (size_t)n * 4, "roi_align") ||
        sam3_out(c, y, total, "roi_align"))
        return;
    roi_align_kernel<<<cuda_blocks_for(c, total, 128), 128, 0, c->stream>>>(x, boxes, y, C, H, W, n, P);
    CUDA_OP_DONE(c, "roi_align");
}

__global__ void grid_sample_kernel(const float *x, const float *pts, float *y, int C, int H, int W, int n) {
    const size_t total = (size_t)n * C;
    for (size_t u = blockIdx.x * (size_t)blockDim.x + threadIdx.x; u < total; u += (size_t)gridDim.x * blockDim.x) {
        int ch = (int)(u % C), i = (int)(u / C);
        float ix = ((pts[2 * i] + 1.0f) * (float)W - 1.0f) / 2.0f;
        float iy = ((pts[2 * i + 1] + 1.0f) * (float)H - 1.0f) / 2.0f;
        int xw = (int)floorf(ix), yn = (int)floorf(iy), xe = xw + 1, ys = yn + 1;
        const float *xc = x + (size_t)ch * H * W;
        float v = 0.0f;
        if (yn >= 0 && yn < H && xw >= 0 && xw < W) v += xc[(size_t)yn * W + xw] * (((float)xe - ix) * ((float)ys - iy));
        if (yn >= 0 && yn < H && xe >= 0 && xe < W) v += xc[(size_t)yn * W + xe] * ((ix - (float)xw) * ((float)ys - iy));
        if (ys >= 0 && ys < H && xw >= 0 && xw < W) v += xc[(size_t)ys * W + xw] * (((float)xe - ix) * (iy - (float)yn));
        if (ys >= 0 && ys < H && xe >= 0 && xe < W) v += xc[(size_t)ys * W + xe] * ((ix - (float)xw) * (iy - (float)yn));
        y[u] = v;
    }
}

static void grid_sample_cuda(const samc_ops *o, const float *x, const float *pts, float *y, int C, int H, int W,
                             int n) {
    samc_cuda_ctx *c = cuda_ctx(o);
    if (n <= 0 || C <= 0) return;
    if (sam3_in(c, x, (size_t)C * H * W, "grid_sample") || sam3_in(c, pts, (size_t)n * 2, "grid_sample") ||
        sam3_out(c, y, (size_t)n * C, "grid_sample"))
        return;
    grid_sample_kernel<<<cuda_blocks_for(c, (size_t)n * C, 128), 128, 0, c->stream>>>(x, pts, y, C, H, W, n);
    CUDA_OP_DONE(c, "grid_sample");
}

__global__ void box_rpb_bias_kernel(const float *by, const float *bx, float *y, int Q, int H, int W, int nh, int r0) {
    const size_t HW = (size_t)H * W, total = (size_t)nh * (r0 + Q) * HW;
    for (size_t u = blockIdx.x * (size_t)blockDim.x + threadIdx.x; u < total; u += (size_t)gridDim.x * blockDim.x) {
        size_t p = u % HW;
        int row = (int)((u / HW) % (r0 + Q)), h = (int)(u / (HW * (r0 + Q)));
        if (row < r0) {
            y[u] = 0.0f;
            continue;
        }
        int q = row - r0, yy = (int)(p / W), xx = (int)(p % W);
        y[u] = by[((size_t)q * H + yy) * nh + h] + bx[((size_t)q * W + xx) * nh + h];
    }
}

static void box_rpb_bias_cuda(const samc_ops *o, const float *by, const float *bx, float *y, int Q, int H, int W,
                              int nh, int r0) {
    samc_cuda_ctx *c = cuda_ctx(o);
    size_t total = (size_t)nh * (r0 + Q) * H * W;
    if (!total) return;
    if (sam3_in(c, by, (size_t)Q * H * nh, "box_rpb_bias") || sam3_in(c, bx, (size_t)Q * W * nh, "box_rpb_bias") ||
        sam3_out(c, y, total, "box_rpb_bias"))
        return;
    box_rpb_bias_kernel<<<cuda_blocks_for(c, total, 256), 256, 0, c->stream>>>(by, bx, y, Q, H, W, nh, r0);
    CUDA_OP_DONE(c, "box_rpb_bias");
}

void sam3_ops_cuda_register(samc_ops *o) {
    o->attention_biased = attention_biased_cuda;
    o->rope = rope_cuda;
    o->group_norm = group_norm_cuda;
    o->roi_align = roi_align_cuda;
    o->grid_sample = grid_sample_cuda;
    o->box_rpb_bias = box_rpb_bias_cuda;
}
