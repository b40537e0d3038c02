/* kernels/cpu_ref.c: the reference backend. Plain loops, fp32, PyTorch layouts,
 * nothing clever: this is what every other backend is checked against, and what a
 * person ports from. Accumulation is in float like PyTorch's fp32 CPU kernels. */
#include "ops.h"
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
static void attention_ref(const samc_ops *o, const samc_attention_args *a) {
    float *s = malloc(sizeof(float) * (size_t)(a->n_kv > 0 ? a->n_kv : 1));
    if (!s) return; /* cannot happen for SAM2.1 sizes; the fast paths never allocate */
    for (int b = 0; b < a->batch; b++)
        for (int h = 0; h < a->heads; h++)
            for (int i = 0; i < a->n_q; i++) {
                const float *q = a->q + b * a->q_sb + h * a->q_sh + i * a->q_st;
                float mx = -INFINITY;
                for (int j = 0; j < a->n_kv; j++) {
                    const float *k = a->k + b * a->k_sb + h * a->k_sh + j * a->k_st;
                    float dot = 0.0f;
                    for (int d = 0; d < a->head_dim; d++) dot += q[d] * k[d];
                    s[j] = dot * a->scale;
                    if (s[j] > mx) mx = s[j];
                }
                float sum = 0.0f;
                for (int j = 0; j < a->n_kv; j++) { s[j] = expf(s[j] - mx); sum += s[j]; }
                float *out = a->out + b * a->o_sb + h * a->o_sh + i * a->o_st;
                for (int d = 0; d < a->head_dim; d++) out[d] = 0.0f;
                for (int j = 0; j < a->n_kv; j++) {
                    const float *v = a->v + b * a->v_sb + h * a->v_sh + j * a->v_st;
                    float p = s[j] / sum;
                    for (int d = 0; d < a->head_dim; d++) out[d] += p * v[d];
                }
            }
    free(s);
}

static void layer_norm_ref(const samc_ops *o, const float *x, const float *w, const float *b,
                           float *y, int rows, int dim, float eps) {
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

static const samc_ops cpu_ref_ops = {
    .name = "cpu_ref",
    .linear = linear_ref,
    .matmul = matmul_ref,
    .attention = attention_ref,
    .layer_norm = layer_norm_ref,
    .layer_norm2d = layer_norm2d_ref,
    .gelu = gelu_ref,
    .conv2d = conv2d_ref,
    .conv_transpose2x2 = conv_transpose2x2_ref,
};

const samc_ops *samc_ops_cpu_ref(void) { return &cpu_ref_ops; }
