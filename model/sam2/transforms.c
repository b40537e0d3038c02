/* model/sam2/transforms.c: sam2/utils/transforms.py SAM2Transforms on the host:
 * to_tensor (x / 255), resize to S x S (F.interpolate bilinear, antialias=True,
 * align_corners=False, horizontal pass first as PyTorch's separable kernel), normalise
 * with the ImageNet mean and std.
 *
 * Memory is planned once at load for any image the API accepts: the filter taps of both
 * axes for the largest side, and a ring of horizontally resized rows as deep as the
 * vertical filter. Each output row reads the rows it needs from the ring, so the sums
 * are those of resizing the whole image horizontally first, in the same order, without
 * an [h, S] intermediate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/sam2/sam2.h"

struct sam2_resize_plan {
    int S, max_taps;
    int *first_x, *count_x, *first_y, *count_y;   /* [S] each */
    float *wx, *wy;                               /* [S, max_taps] each */
    float *ring;                                  /* [max_taps, S] horizontally resized rows */
    int *ring_row;                                /* [max_taps]: input row held by each slot, -1 none */
};

/* Taps of one output pixel when `in` pixels shrink to S: the triangle filter widened
 * by the scale, 2 * ceil(in / S) + 3 at most. */
static int taps_for(int in, int S) { return (int)ceilf((float)in / (float)S) * 2 + 3; }

int sam2_transforms_plan(sam2_model *m, samc_error *err) {
    int S = m->S, T = taps_for(SAM2_MAX_IMAGE_SIDE, S);
    struct sam2_resize_plan *p = calloc(1, sizeof *p);
    if (p) {
        p->S = S;
        p->max_taps = T;
        p->first_x = malloc(sizeof(int) * 4 * (size_t)S);
        p->wx = malloc(sizeof(float) * 2 * (size_t)S * T);
        p->ring = malloc(sizeof(float) * (size_t)T * S);
        p->ring_row = malloc(sizeof(int) * (size_t)T);
    }
    if (!p || !p->first_x || !p->wx || !p->ring || !p->ring_row) {
        m->resize = p;
        sam2_transforms_free(m);
        return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for the resize buffers");
    }
    p->count_x = p->first_x + S;
    p->first_y = p->first_x + 2 * S;
    p->count_y = p->first_x + 3 * S;
    p->wy = p->wx + (size_t)S * T;
    m->resize = p;
    return 0;
}

void sam2_transforms_free(sam2_model *m) {
    struct sam2_resize_plan *p = m->resize;
    if (!p) return;
    free(p->first_x);
    free(p->wx);
    free(p->ring);
    free(p->ring_row);
    free(p);
    m->resize = NULL;
}

/* Weights of PyTorch's antialiased bilinear resize for one axis: output o reads input
 * [first[o], first[o] + count[o]) with weights w[o * stride + j], at most `taps` of them.
 * Computed in float as PyTorch does for float tensors. */
static void aa_weights(int in, int out, int *first, int *count, float *w, int stride, int taps) {
    float scale = (float)in / (float)out;
    float support = scale >= 1.0f ? scale : 1.0f;
    float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
    for (int o = 0; o < out; o++) {
        float center = scale * ((float)o + 0.5f);
        int xmin = (int)(center - support + 0.5f);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5f);
        if (xmax > in) xmax = in;
        int n = xmax - xmin;
        if (n > taps) n = taps;
        float total = 0.0f;
        float *wo = w + (size_t)o * stride;
        for (int j = 0; j < n; j++) {
            float x = ((float)(j + xmin) - center + 0.5f) * invscale;
            float v = 1.0f - fabsf(x);
            wo[j] = v > 0.0f ? v : 0.0f;
            total += wo[j];
        }
        for (int j = 0; j < n; j++)
            if (total != 0.0f) wo[j] /= total;
        first[o] = xmin;
        count[o] = n;
    }
}

/* Input row y of channel c, to_tensor'd and resized horizontally to S values. */
static void resize_row(const struct sam2_resize_plan *p, const uint8_t *rgb, int w, int y, int c, float *dst) {
    int S = p->S;
    const uint8_t *row = rgb + (size_t)y * w * 3 + c;
    if (w == S) {
        for (int x = 0; x < S; x++) dst[x] = (float)row[(size_t)x * 3] / 255.0f;
        return;
    }
    for (int x = 0; x < S; x++) {
        const float *wt = p->wx + (size_t)x * p->max_taps;
        float acc = 0.0f;
        for (int j = 0; j < p->count_x[x]; j++) acc += wt[j] * ((float)row[(size_t)(p->first_x[x] + j) * 3] / 255.0f);
        dst[x] = acc;
    }
}

/* The ring slot holding input row y of the current channel, resized on first use. */
static const float *ring_get(struct sam2_resize_plan *p, const uint8_t *rgb, int w, int y, int c) {
    int slot = y % p->max_taps;
    float *dst = p->ring + (size_t)slot * p->S;
    if (p->ring_row[slot] != y) {
        resize_row(p, rgb, w, y, c, dst);
        p->ring_row[slot] = y;
    }
    return dst;
}

static const float norm_mean[3] = { 0.485f, 0.456f, 0.406f }, norm_std[3] = { 0.229f, 0.224f, 0.225f };

void sam2_transforms_norm(float mean[3], float std[3]) {
    for (int c = 0; c < 3; c++) {
        mean[c] = norm_mean[c];
        std[c] = norm_std[c];
    }
}

/* The taps of one axis: aa_weights when it changes size, else one tap of weight 1 per
 * pixel, which reproduces the value (the host path copies it). */
static void axis_taps(int in, int S, int T, int32_t *first, int32_t *count, float *w) {
    if (in == S) {
        for (int o = 0; o < S; o++) {
            first[o] = o;
            count[o] = 1;
            w[(size_t)o * T] = 1.0f;
        }
        return;
    }
    _Static_assert(sizeof(int) == sizeof(int32_t), "int32_t is int");
    aa_weights(in, S, (int *)first, (int *)count, w, T, taps_for(in, S));
}

int sam2_transforms_taps_count(const sam2_model *m, int w, int h) {
    int S = m->S, tx = w == S ? 1 : taps_for(w, S), ty = h == S ? 1 : taps_for(h, S);
    return tx > ty ? tx : ty;
}

void sam2_transforms_taps(const sam2_model *m, int w, int h, int T, int32_t *ints, float *weights) {
    int S = m->S;
    axis_taps(w, S, T, ints, ints + S, weights);
    axis_taps(h, S, T, ints + 2 * S, ints + 3 * S, weights + (size_t)S * T);
}

void sam2_transforms_preprocess(sam2_model *m, const uint8_t *rgb, int w, int h) {
    const float *mean = norm_mean, *stdv = norm_std;
    struct sam2_resize_plan *p = m->resize;
    int S = p->S;
    if (w != S) aa_weights(w, S, p->first_x, p->count_x, p->wx, p->max_taps, taps_for(w, S));
    if (h != S) aa_weights(h, S, p->first_y, p->count_y, p->wy, p->max_taps, taps_for(h, S));
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < p->max_taps; i++) p->ring_row[i] = -1;
        for (int y = 0; y < S; y++) {
            float *dst = m->h_input + ((size_t)c * S + y) * S;
            if (h == S) {
                memcpy(dst, ring_get(p, rgb, w, y, c), sizeof(float) * S);
            } else {
                const float *wt = p->wy + (size_t)y * p->max_taps;
                for (int x = 0; x < S; x++) dst[x] = 0.0f;
                for (int j = 0; j < p->count_y[y]; j++) {
                    const float *src = ring_get(p, rgb, w, p->first_y[y] + j, c);
                    for (int x = 0; x < S; x++) dst[x] += wt[j] * src[x];
                }
            }
            for (int x = 0; x < S; x++) dst[x] = (dst[x] - mean[c]) / stdv[c];
        }
    }
}
