/* kernels/cpu_ref.c: the reference backend. Plain loops, fp32, PyTorch layouts,
 * nothing clever: this is what every other backend is checked against, and what a
 * person ports from. Accumulation is in float like PyTorch's fp32 CPU kernels. */
#include "kernels/ops.h"
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

static float ref_score(const samc_attention_args *a, const float *q, int b, int h, int j) {
    const float *k = a->k + b * a->k_sb + h * a->k_sh + j * a->k_st;
    float dot = 0.0f;
    for (int d = 0; d < a->head_dim; d++) dot += q[d] * k[d];
    return dot * a->scale;
}

/* One output row: out = sum_j softmax_j(s) v_j with the max-subtracted softmax of
 * PyTorch's math path (exp of each score, summed in order, each weight divided by the
 * sum). s holds the scores when n_kv <= REF_ATTN_ROW, else NULL. */
static void ref_attention_row(const samc_attention_args *a, int b, int h, int i, float *s) {
    const float *q = a->q + b * a->q_sb + h * a->q_sh + i * a->q_st;
    float mx = -INFINITY;
    for (int j = 0; j < a->n_kv; j++) {
        float v = ref_score(a, q, b, h, j);
        if (s) s[j] = v;
        if (v > mx) mx = v;
    }
    float sum = 0.0f;
    for (int j = 0; j < a->n_kv; j++) {
        float e = expf((s ? s[j] : ref_score(a, q, b, h, j)) - mx);
        if (s) s[j] = e;
        sum += e;
    }
    float *out = a->out + b * a->o_sb + h * a->o_sh + i * a->o_st;
    for (int d = 0; d < a->head_dim; d++) out[d] = 0.0f;
    for (int j = 0; j < a->n_kv; j++) {
        const float *v = a->v + b * a->v_sb + h * a->v_sh + j * a->v_st;
        float p = (s ? s[j] : expf(ref_score(a, q, b, h, j) - mx)) / sum;
        for (int d = 0; d < a->head_dim; d++) out[d] += p * v[d];
    }
}

static void attention_ref(const samc_ops *o, const samc_attention_args *a) {
    float row[REF_ATTN_ROW];
    float *s = a->n_kv <= REF_ATTN_ROW ? row : NULL;
    for (int b = 0; b < a->batch; b++)
        for (int h = 0; h < a->heads; h++)
            for (int i = 0; i < a->n_q; i++) ref_attention_row(a, b, h, i, s);
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
        for (int y = 0; y < h; y++) {
            float ry = sy * ((float)y + 0.5f) - 0.5f;
            if (ry < 0.0f) ry = 0.0f;
            int y0 = (int)ry, y1 = y0 + (y0 < ls - 1);
            float ly1 = ry - (float)y0, ly0 = 1.0f - ly1;
            for (int x = 0; x < w; x++) {
                float rx = sx * ((float)x + 0.5f) - 0.5f;
                if (rx < 0.0f) rx = 0.0f;
                int x0 = (int)rx, x1 = x0 + (x0 < ls - 1);
                float lx1 = rx - (float)x0, lx0 = 1.0f - lx1;
                res[(size_t)y * w + x] = ly0 * (lx0 * in[(size_t)y0 * ls + x0] + lx1 * in[(size_t)y0 * ls + x1]) +
                                         ly1 * (lx0 * in[(size_t)y1 * ls + x0] + lx1 * in[(size_t)y1 * ls + x1]);
            }
        }
    }
}

static const samc_ops cpu_ref_ops = {
    .name = "cpu_ref",
    .host_memory = 1,
    .linear = linear_ref,
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
};

const samc_ops *samc_ops_cpu_ref(void) { return &cpu_ref_ops; }

void samc_ops_fill_from_ref(samc_ops *o) {
#define FILL(f) if (!o->f) o->f = cpu_ref_ops.f
    FILL(linear); FILL(matmul); FILL(attention); FILL(layer_norm); FILL(layer_norm2d); FILL(gelu);
    FILL(conv2d); FILL(conv_transpose2x2); FILL(copy); FILL(add); FILL(add_channel); FILL(relu);
    FILL(sigmoid); FILL(transpose); FILL(window_partition); FILL(window_unpartition_add);
    FILL(maxpool2x2); FILL(upsample_nearest2x_add); FILL(upsample_bilinear);
#undef FILL
    o->host_memory = 1;
}
