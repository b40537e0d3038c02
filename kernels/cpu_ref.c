/* kernels/cpu_ref.c: the reference backend. Plain loops, fp32, PyTorch layouts,
 * nothing clever: this is what every other backend is checked against, and what a
 * person ports from. Accumulation is in float like PyTorch's fp32 CPU kernels. */
#include "kernels/ops.h"
#include "kernels/cpu_ref_pipeline.h"
#include "kernels/sampling.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* nn.Linear: y[M,N] = x[M,K] · w[N,K]ᵀ + b[N] */
static void linear_ref(const samc_ops *o, const float *x, const float *w, const float *b,
                       float *y, int M, int N, int K) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float acc = 0.0f;
            const float *xr = x + (size_t)m * K, *wr = w + (size_t)n * K;
            for (int k = 0; k < K; k++) acc += xr[k] * wr[k];
            y[(size_t)m * N + n] = acc + (b ? b[n] : 0.0f);
        }
}

void samc_linear_act_unfused(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int M,
                             int N, int K, samc_act act, const float *r) {
    size_t n = (size_t)M * N;
    o->linear(o, x, w, b, y, M, N, K);
    if (act == SAMC_ACT_RELU) o->relu(o, y, n);
    else if (act == SAMC_ACT_GELU) o->gelu(o, y, n);
    if (r) o->add(o, y, r, y, n, n);
}

/* c[M,N] = a[M,K] · b[K,N] + bias[M] */
static void matmul_ref(const samc_ops *o, const float *a, const float *b, const float *bias,
                       float *c, int M, int N, int K) {
    for (int m = 0; m < M; m++) {
        float *cr = c + (size_t)m * N;
        for (int n = 0; n < N; n++) cr[n] = 0.0f;
        for (int k = 0; k < K; k++) {
            float av = a[(size_t)m * K + k];
            const float *br = b + (size_t)k * N;
            for (int n = 0; n < N; n++) cr[n] += av * br[n];
        }
        if (bias)
            for (int n = 0; n < N; n++) cr[n] += bias[m];
    }
}

/* softmax(scale · q kᵀ) v per (batch, head); scores for one query row at a time. */
/* Scores of one query row kept on the stack when they fit; longer rows recompute each
 * score (the same dot product, so the same value) instead of storing it. Either way the
 * op allocates nothing. */
#define REF_ATTN_ROW 8192

/* Element (b, h, t, 0) of each view, with the window geometry when a has one. */
static const float *ref_k(const samc_attention_args *a, int b, int h, int j) {
    return a->k + samc_att_split(b, a->win_nx, a->k_sb, a->k_sby) + h * a->k_sh +
           samc_att_split(j, a->kv_tw, a->k_st, a->k_sty);
}
static const float *ref_v(const samc_attention_args *a, int b, int h, int j) {
    return a->v + samc_att_split(b, a->win_nx, a->v_sb, a->v_sby) + h * a->v_sh +
           samc_att_split(j, a->kv_tw, a->v_st, a->v_sty);
}

/* Element d of a q row: with q_pool the max of its 2x2 cell, in maxpool2x2's order. */
static float ref_qd(const samc_attention_args *a, const float *q, int d) {
    if (!a->q_pool) return q[d];
    float v = -INFINITY;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            float x = q[dy * a->q_sty + dx * a->q_st + d];
            if (x > v) v = x;
        }
    return v;
}

/* brow: the row's additive bias over the keys, or NULL (plain attention). */
static float ref_score(const samc_attention_args *a, const float *q, int b, int h, int j, const float *brow) {
    const float *k = ref_k(a, b, h, j);
    float dot = 0.0f;
    for (int d = 0; d < a->head_dim; d++) dot += ref_qd(a, q, d) * k[d];
    return brow ? dot * a->scale + brow[j] : dot * a->scale;
}

/* One output row: out = sum_j softmax_j(s) v_j with the max-subtracted softmax of
 * PyTorch's math path (exp of each score, summed in order, each weight divided by the
 * sum). s holds the scores when n_kv <= REF_ATTN_ROW, else NULL; brow as ref_score. */
static void ref_attention_row(const samc_attention_args *a, int b, int h, int i, float *s, const float *brow) {
    const float *q = a->q + samc_att_split(b, a->win_nx, a->q_sb, a->q_sby) + h * a->q_sh + samc_att_q_tok(a, i);
    float mx = -INFINITY;
    for (int j = 0; j < a->n_kv; j++) {
        float v = ref_score(a, q, b, h, j, brow);
        if (s) s[j] = v;
        if (v > mx) mx = v;
    }
    float sum = 0.0f;
    for (int j = 0; j < a->n_kv; j++) {
        float e = expf((s ? s[j] : ref_score(a, q, b, h, j, brow)) - mx);
        if (s) s[j] = e;
        sum += e;
    }
    float *out = a->out + samc_att_split(b, a->win_nx, a->o_sb, a->o_sby) + h * a->o_sh +
                 samc_att_split(i, a->q_tw, a->o_st, a->o_sty);
    for (int d = 0; d < a->head_dim; d++) out[d] = 0.0f;
    for (int j = 0; j < a->n_kv; j++) {
        const float *v = ref_v(a, b, h, j);
        float p = (s ? s[j] : expf(ref_score(a, q, b, h, j, brow) - mx)) / sum;
        for (int d = 0; d < a->head_dim; d++) out[d] += p * v[d];
    }
}

static void attention_ref(const samc_ops *o, const samc_attention_args *a) {
    float row[REF_ATTN_ROW];
    float *s = a->n_kv <= REF_ATTN_ROW ? row : NULL;
    for (int b = 0; b < a->batch; b++)
        for (int h = 0; h < a->heads; h++)
            for (int i = 0; i < a->n_q; i++) ref_attention_row(a, b, h, i, s, NULL);
}

void samc_ref_layer_norm_rows(const float *x, const float *w, const float *b, float *y, int rows, int dim,
                              float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        float mean = 0.0f, var = 0.0f;
        for (int i = 0; i < dim; i++) mean += xr[i];
        mean /= (float)dim;
        for (int i = 0; i < dim; i++) { float d = xr[i] - mean; var += d * d; }
        var /= (float)dim;
        float inv = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < dim; i++) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
    }
}

static void layer_norm_ref(const samc_ops *o, const float *x, const float *w, const float *b,
                           float *y, int rows, int dim, float eps) {
    samc_ref_layer_norm_rows(x, w, b, y, rows, dim, eps);
}

/* LayerNorm2d (sam2 modeling/sam2_utils.py): per pixel, over the channel axis of [C,HW]. */
static void layer_norm2d_ref(const samc_ops *o, const float *x, const float *w, const float *b,
                             float *y, int C, int HW, float eps) {
    for (int p = 0; p < HW; p++) {
        float mean = 0.0f, var = 0.0f;
        for (int c = 0; c < C; c++) mean += x[(size_t)c * HW + p];
        mean /= (float)C;
        for (int c = 0; c < C; c++) { float d = x[(size_t)c * HW + p] - mean; var += d * d; }
        var /= (float)C;
        float inv = 1.0f / sqrtf(var + eps);
        for (int c = 0; c < C; c++)
            y[(size_t)c * HW + p] = (x[(size_t)c * HW + p] - mean) * inv * w[c] + b[c];
    }
}

static void gelu_ref(const samc_ops *o, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

static void conv2d_ref(const samc_ops *o, const float *x, const float *w, const float *b, float *y,
                       int Cin, int H, int W, int Cout, int kh, int kw, int stride, int pad) {
    int Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
    for (int co = 0; co < Cout; co++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                float acc = 0.0f;
                for (int ci = 0; ci < Cin; ci++)
                    for (int ky = 0; ky < kh; ky++) {
                        int iy = oy * stride - pad + ky;
                        if (iy < 0 || iy >= H) continue;
                        for (int kx = 0; kx < kw; kx++) {
                            int ix = ox * stride - pad + kx;
                            if (ix < 0 || ix >= W) continue;
                            acc += x[((size_t)ci * H + iy) * W + ix] *
                                   w[(((size_t)co * Cin + ci) * kh + ky) * kw + kx];
                        }
                    }
                y[((size_t)co * Ho + oy) * Wo + ox] = acc + (b ? b[co] : 0.0f);
            }
}

/* Kernel 2, stride 2: each input pixel paints its own 2x2 output patch. */
static void conv_transpose2x2_ref(const samc_ops *o, const float *x, const float *w, const float *b,
                                  float *y, int Cin, int H, int W, int Cout) {
    int Ho = 2 * H, Wo = 2 * W;
    for (int co = 0; co < Cout; co++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                int iy = oy / 2, ix = ox / 2, ky = oy % 2, kx = ox % 2;
                float acc = 0.0f;
                for (int ci = 0; ci < Cin; ci++)
                    acc += x[((size_t)ci * H + iy) * W + ix] * w[(((size_t)ci * Cout + co) * 2 + ky) * 2 + kx];
                y[((size_t)co * Ho + oy) * Wo + ox] = acc + (b ? b[co] : 0.0f);
            }
}

/* ---- data movement and elementwise ---------------------------------------------- */

static void copy_ref(const samc_ops *o, float *dst, const float *src, size_t n) {
    memcpy(dst, src, n * sizeof(float));
}

static void add_ref(const samc_ops *o, float *dst, const float *a, const float *b, size_t n, size_t nb) {
    for (size_t r = 0; r < n; r += nb)
        for (size_t i = 0; i < nb && r + i < n; i++) dst[r + i] = a[r + i] + b[i];
}

static void add_channel_ref(const samc_ops *o, float *dst, const float *a, const float *v, int C, int HW) {
    for (int c = 0; c < C; c++)
        for (int p = 0; p < HW; p++) {
            size_t i = (size_t)c * HW + p;
            dst[i] = (a ? a[i] : 0.0f) + v[c];
        }
}

static void relu_ref(const samc_ops *o, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void sigmoid_ref(const samc_ops *o, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void transpose_ref(const samc_ops *o, const float *src, float *dst, int batch, int R, int C) {
    for (int b = 0; b < batch; b++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++)
                dst[((size_t)b * C + c) * R + r] = src[((size_t)b * R + r) * C + c];
}

/* ---- Hiera layouts --------------------------------------------------------------- */

static void window_partition_ref(const samc_ops *o, const float *x, float *win, int H, int W, int C, int wh, int ww) {
    int nwy = (H + wh - 1) / wh, nwx = (W + ww - 1) / ww;
    for (int wy = 0; wy < nwy; wy++)
        for (int wx = 0; wx < nwx; wx++)
            for (int ty = 0; ty < wh; ty++)
                for (int tx = 0; tx < ww; tx++) {
                    int y = wy * wh + ty, xx = wx * ww + tx;
                    float *dst = win + ((size_t)(wy * nwx + wx) * wh * ww + (size_t)ty * ww + tx) * C;
                    for (int c = 0; c < C; c++)
                        dst[c] = (y < H && xx < W) ? x[((size_t)y * W + xx) * C + c] : 0.0f;
                }
}

static void window_unpartition_add_ref(const samc_ops *o, const float *win, const float *shortcut, float *out,
                                       int H, int W, int C, int wh, int ww, int nwx) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t w = (size_t)(y / wh) * nwx + x / ww, t = (size_t)(y % wh) * ww + x % ww;
            const float *src = win + (w * wh * ww + t) * C;
            const float *sc = shortcut + ((size_t)y * W + x) * C;
            float *dst = out + ((size_t)y * W + x) * C;
            for (int c = 0; c < C; c++) dst[c] = sc[c] + src[c];
        }
}

static void maxpool2x2_ref(const samc_ops *o, const float *x, float *y, int n, int H, int W, int C,
                           ptrdiff_t pixel_stride) {
    int Ho = H / 2, Wo = W / 2;
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                for (int c = 0; c < C; c++) {
                    float v = -INFINITY;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            float q = x[(((ptrdiff_t)i * H + 2 * oy + dy) * W + 2 * ox + dx) * pixel_stride + c];
                            if (q > v) v = q;
                        }
                    y[(((size_t)i * Ho + oy) * Wo + ox) * C + c] = v;
                }
}

static void upsample_nearest2x_add_ref(const samc_ops *o, float *dst, const float *src, int C, int h, int w) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < 2 * h; y++)
            for (int x = 0; x < 2 * w; x++)
                dst[((size_t)c * 2 * h + y) * 2 * w + x] += src[((size_t)c * h + y / 2) * w + x / 2];
}

/* PyTorch upsample_bilinear2d, align_corners=False: source = scale*(dst+0.5)-0.5,
 * clamped at 0; the upper neighbour is clamped at the last row/column. */
static void upsample_bilinear_ref(const samc_ops *o, const float *low, float *out, int n, int ls, int w, int h) {
    float sy = (float)ls / (float)h, sx = (float)ls / (float)w;
    for (int i = 0; i < n; i++) {
        const float *in = low + (size_t)i * ls * ls;
        float *res = out + (size_t)i * w * h;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) res[(size_t)y * w + x] = ref_bilinear_px(in, ls, sx, sy, x, y);
    }
}

/* ---- SAM3 ---------------------------------------------------------------------------- */

/* nn.MultiheadAttention with a float attn_mask / key_padding_mask: the plain attention
 * with the row's bias added to each scaled score. */
static void attention_biased_ref(const samc_ops *o, const samc_attention_args *a, const samc_attention_bias *bias) {
    float row[REF_ATTN_ROW];
    float *s = a->n_kv <= REF_ATTN_ROW ? row : NULL;
    for (int b = 0; b < a->batch; b++)
        for (int h = 0; h < a->heads; h++)
            for (int i = 0; i < a->n_q; i++)
                ref_attention_row(a, b, h, i, s, bias->bias + b * bias->sb + h * bias->sh + i * bias->sq);
}

/* vitdet.apply_rotary_enc: view_as_complex(pairs) * freqs_cis, per head. */
void samc_ref_rope_head(float *p, const float *c, const float *s, int half) {
    for (int i = 0; i < half; i++) {
        float re = p[2 * i], im = p[2 * i + 1];
        p[2 * i] = re * c[i] - im * s[i];
        p[2 * i + 1] = re * s[i] + im * c[i];
    }
}

void samc_ref_rope_rows(float *x, int r0, int r1, ptrdiff_t ld, int heads, int hd, const float *cos_t,
                        const float *sin_t, int period, samc_rope_head_fn head) {
    int half = hd / 2;
    for (int r = r0; r < r1; r++) {
        const float *c = cos_t + (size_t)(r % period) * half, *sn = sin_t + (size_t)(r % period) * half;
        for (int h = 0; h < heads; h++) head(x + (ptrdiff_t)r * ld + (ptrdiff_t)h * hd, c, sn, half);
    }
}

static void rope_ref(const samc_ops *o, float *x, int rows, ptrdiff_t ld, int heads, int hd, const float *cos_t,
                     const float *sin_t, int period) {
    samc_ref_rope_rows(x, 0, rows, ld, heads, hd, cos_t, sin_t, period, samc_ref_rope_head);
}

/* nn.GroupNorm: statistics of a group (up to millions of values in SAM3's pixel
 * decoder) are summed in double, which PyTorch's cascaded float sums also approach. */
void samc_ref_group_stats(const float *xg, size_t n, float eps, double *mean, double *inv) {
    double sum = 0.0, sq = 0.0;
    for (size_t i = 0; i < n; i++) sum += xg[i];
    *mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) sq += (xg[i] - *mean) * (xg[i] - *mean);
    *inv = 1.0 / sqrt(sq / (double)n + eps);
}

void samc_ref_group_apply(const float *xc, float *yc, int HW, double mean, double inv, float w, float b) {
    float m = (float)mean, s = (float)inv;
    for (int p = 0; p < HW; p++) yc[p] = (xc[p] - m) * s * w + b;
}

static void group_norm_ref(const samc_ops *o, const float *x, const float *w, const float *b, float *y, int C,
                           int HW, int groups, float eps) {
    int cg = C / groups;
    for (int g = 0; g < groups; g++) {
        double mean, inv;
        samc_ref_group_stats(x + (size_t)g * cg * HW, (size_t)cg * HW, eps, &mean, &inv);
        for (int c = g * cg; c < (g + 1) * cg; c++)
            samc_ref_group_apply(x + (size_t)c * HW, y + (size_t)c * HW, HW, mean, inv, w[c], b[c]);
    }
}

/* torchvision.ops.roi_align, aligned=False (the arithmetic: kernels/sampling.h). */
static void roi_align_ref(const samc_ops *o, const float *x, const float *boxes, float *y, int C, int H, int W, int n,
                          int P) {
    for (int r = 0; r < n; r++)
        for (int c = 0; c < C; c++)
            for (int ph = 0; ph < P; ph++)
                for (int pw = 0; pw < P; pw++)
                    y[(((size_t)r * C + c) * P + ph) * P + pw] =
                        samc_roi_align_bin(x + (size_t)c * H * W, H, W, boxes + 4 * (size_t)r, P, ph, pw);
}

/* F.grid_sample, bilinear, zeros padding, align_corners=False: pixel coordinate
 * ((g + 1) * size - 1) / 2, the four neighbours weighted by the opposite areas, those
 * outside the map contributing 0. */
static void grid_sample_ref(const samc_ops *o, const float *x, const float *pts, float *y, int C, int H, int W,
                            int n) {
    for (int i = 0; i < n; i++) {
        float ix = ((pts[2 * i] + 1.0f) * (float)W - 1.0f) / 2.0f;
        float iy = ((pts[2 * i + 1] + 1.0f) * (float)H - 1.0f) / 2.0f;
        int xw = (int)floorf(ix), yn = (int)floorf(iy), xe = xw + 1, ys = yn + 1;
        float w_nw = ((float)xe - ix) * ((float)ys - iy), w_ne = (ix - (float)xw) * ((float)ys - iy);
        float w_sw = ((float)xe - ix) * (iy - (float)yn), w_se = (ix - (float)xw) * (iy - (float)yn);
        int in_w = xw >= 0 && xw < W, in_e = xe >= 0 && xe < W, in_n = yn >= 0 && yn < H, in_s = ys >= 0 && ys < H;
        for (int c = 0; c < C; c++) {
            const float *xc = x + (size_t)c * H * W;
            float v = 0.0f;
            if (in_n && in_w) v += xc[(size_t)yn * W + xw] * w_nw;
            if (in_n && in_e) v += xc[(size_t)yn * W + xe] * w_ne;
            if (in_s && in_w) v += xc[(size_t)ys * W + xw] * w_sw;
            if (in_s && in_e) v += xc[(size_t)ys * W + xe] * w_se;
            y[(size_t)i * C + c] = v;
        }
    }
}

static void box_rpb_bias_ref(const samc_ops *o, const float *by, const float *bx, float *y, int Q, int H, int W,
                             int nh, int r0) {
    size_t HW = (size_t)H * W;
    for (int h = 0; h < nh; h++) {
        float *yh = y + (size_t)h * (r0 + Q) * HW;
        for (size_t i = 0; i < (size_t)r0 * HW; i++) yh[i] = 0.0f;
        for (int q = 0; q < Q; q++)
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++)
                    yh[((size_t)(r0 + q) * H + yy) * W + xx] =
                        by[((size_t)q * H + yy) * nh + h] + bx[((size_t)q * W + xx) * nh + h];
    }
}

static const samc_ops cpu_ref_ops = {
    .name = "cpu_ref",
    .host_memory = 1,
    .linear = linear_ref,
    .linear_act = samc_linear_act_unfused,
    .matmul = matmul_ref,
    .attention = attention_ref,
    .layer_norm = layer_norm_ref,
    .layer_norm2d = layer_norm2d_ref,
    .gelu = gelu_ref,
    .conv2d = conv2d_ref,
    .conv_transpose2x2 = conv_transpose2x2_ref,
    .copy = copy_ref,
    .add = add_ref,
    .add_channel = add_channel_ref,
    .relu = relu_ref,
    .sigmoid = sigmoid_ref,
    .transpose = transpose_ref,
    .window_partition = window_partition_ref,
    .window_unpartition_add = window_unpartition_add_ref,
    .maxpool2x2 = maxpool2x2_ref,
    .upsample_nearest2x_add = upsample_nearest2x_add_ref,
    .upsample_bilinear = upsample_bilinear_ref,
    .attention_biased = attention_biased_ref,
    .rope = rope_ref,
    .group_norm = group_norm_ref,
    .roi_align = roi_align_ref,
    .grid_sample = grid_sample_ref,
    .box_rpb_bias = box_rpb_bias_ref,
    .preprocess = preprocess_ref,
    .mask_stats = mask_stats_ref,
    .mask_runs = mask_runs_ref,
};

const samc_ops *samc_ops_cpu_ref(void) { return &cpu_ref_ops; }

void samc_ops_fill_from_ref(samc_ops *o) {
#define FILL(f) if (!o->f) o->f = cpu_ref_ops.f
    FILL(linear); FILL(linear_act); FILL(matmul); FILL(attention); FILL(layer_norm); FILL(layer_norm2d); FILL(gelu);
    FILL(conv2d); FILL(conv_transpose2x2); FILL(copy); FILL(add); FILL(add_channel); FILL(relu);
    FILL(sigmoid); FILL(transpose); FILL(window_partition); FILL(window_unpartition_add);
    FILL(maxpool2x2); FILL(upsample_nearest2x_add); FILL(upsample_bilinear);
    FILL(attention_biased); FILL(rope); FILL(group_norm); FILL(roi_align); FILL(grid_sample); FILL(box_rpb_bias);
    FILL(preprocess); FILL(mask_stats); FILL(mask_runs);
#undef FILL
    o->host_memory = 1;
}
