/* model/sam3/transforms.c: Sam3Processor's image transform on the host
 * (sam3/model/sam3_image_processor.py: v2.ToDtype(uint8) -> v2.Resize((S, S)) ->
 * v2.ToDtype(float32, scale=True) -> v2.Normalize(0.5, 0.5)).
 *
 * The resize works on the uint8 image, stretched to S x S, bilinear with antialiasing,
 * in torchvision's float path: F.interpolate(u8.float(), antialias=True) - the width
 * pass, then the height pass, each output value a weighted sum of a triangle filter
 * widened by the scale when shrinking - then rounded half to even back to uint8
 * (shared/golden/sam3/README.md section 3). Then x * float(1/255) and (x - 0.5) / 0.5.
 * Each sum is the first product, then fused multiply-adds: PyTorch's x86 build compiles
 * this kernel with FMA and contracts `out += t * w` (plain multiply-adds differ from the
 * golden by 1 in ~1e-4 of the pixels, all at exact .5 ties).
 *
 * Memory is planned at load for any image the API accepts: the taps of both axes for the
 * largest side and a ring of width-resized input rows as deep as the height filter, so
 * no [h, S] intermediate is needed. */
#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/sam3/sam3.h"

/* The antialias taps of one axis: output o reads input [start[o], start[o] + len[o]). */
typedef struct {
    int *start, *len;             /* [S] */
    float *w;                     /* [S, max_taps] */
} sam3_axis_taps;

struct sam3_resize_plan {
    int S, max_taps;
    sam3_axis_taps ax, ay;
    float *ring;                  /* [max_taps][3][S] width-resized rows */
    int *ring_row;                /* input row held by each slot, -1 none */
};

/* The widest filter when `in` pixels shrink to S: 2 * ceil(in / S) + 3 taps at most. */
static int max_taps(int in, int S) { return 2 * ((in + S - 1) / S) + 3; }

int sam3_transforms_plan(sam3_model *m, samc_error *err) {
    int S = m->S, T = max_taps(SAM3_MAX_IMAGE_SIDE, S);
    struct sam3_resize_plan *p = calloc(1, sizeof *p);
    m->resize = p;
    if (!p) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for the resize plan");
    p->S = S;
    p->max_taps = T;
    p->ax.start = malloc(sizeof(int) * 2 * (size_t)S);
    p->ay.start = malloc(sizeof(int) * 2 * (size_t)S);
    p->ax.w = malloc(sizeof(float) * (size_t)S * T);
    p->ay.w = malloc(sizeof(float) * (size_t)S * T);
    p->ring = malloc(sizeof(float) * (size_t)T * 3 * S);
    p->ring_row = malloc(sizeof(int) * (size_t)T);
    if (!p->ax.start || !p->ay.start || !p->ax.w || !p->ay.w || !p->ring || !p->ring_row) {
        sam3_transforms_free(m);
        return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for the resize buffers");
    }
    p->ax.len = p->ax.start + S;
    p->ay.len = p->ay.start + S;
    return 0;
}

void sam3_transforms_free(sam3_model *m) {
    struct sam3_resize_plan *p = m->resize;
    if (!p) return;
    free(p->ax.start); free(p->ay.start); free(p->ax.w); free(p->ay.w); free(p->ring); free(p->ring_row);
    free(p);
    m->resize = NULL;
}

/* PyTorch's _compute_indices_weights_aa for bilinear (support 1, widened by the scale
 * when shrinking), in float: centre scale * (o + 0.5), taps from (int)(centre - support
 * + 0.5) to (int)(centre + support + 0.5), triangle weights normalised by their sum. */
static void axis_taps(sam3_axis_taps *t, int in, int S, int stride) {
    float scale = (float)in / (float)S;
    float support = scale >= 1.0f ? scale : 1.0f, inv = scale >= 1.0f ? 1.0f / scale : 1.0f;
    for (int o = 0; o < S; o++) {
        float centre = scale * ((float)o + 0.5f);
        int lo = (int)(centre - support + 0.5f), hi = (int)(centre + support + 0.5f);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int n = hi - lo < stride ? hi - lo : stride;
        float *w = t->w + (size_t)o * stride, total = 0.0f;
        for (int j = 0; j < n; j++) {
            float v = 1.0f - fabsf(((float)(lo + j) - centre + 0.5f) * inv);
            w[j] = v > 0.0f ? v : 0.0f;
            total += w[j];
        }
        for (int j = 0; j < n && total != 0.0f; j++) w[j] /= total;
        t->start[o] = lo;
        t->len[o] = n;
    }
}

/* Input row y, all three channels, resized along the width (or as is when w == S). */
static const float *width_pass(struct sam3_resize_plan *p, const uint8_t *rgb, int w, int y) {
    int S = p->S, slot = y % p->max_taps;
    float *dst = p->ring + (size_t)slot * 3 * S;
    if (p->ring_row[slot] == y) return dst;
    const uint8_t *row = rgb + (size_t)y * w * 3;
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < S; x++) {
            if (w == S) {
                dst[c * S + x] = (float)row[(size_t)x * 3 + c];
                continue;
            }
            const float *wt = p->ax.w + (size_t)x * p->max_taps;
            const uint8_t *src = row + (size_t)p->ax.start[x] * 3 + c;
            float acc = (float)src[0] * wt[0];
            for (int j = 1; j < p->ax.len[x]; j++) acc = fmaf((float)src[(size_t)j * 3], wt[j], acc);
            dst[c * S + x] = acc;
        }
    p->ring_row[slot] = y;
    return dst;
}

static uint8_t round_u8(float v) {
    float r = nearbyintf(v); /* half to even in the default rounding mode, as torch.round */
    return (uint8_t)(r < 0.0f ? 0.0f : r > 255.0f ? 255.0f : r);
}

void sam3_transforms_preprocess(sam3_model *m, const uint8_t *rgb, int w, int h) {
    struct sam3_resize_plan *p = m->resize;
    int S = p->S;
    size_t plane = (size_t)S * S;
    if (w != S) axis_taps(&p->ax, w, S, p->max_taps);
    if (h != S) axis_taps(&p->ay, h, S, p->max_taps);
    for (int i = 0; i < p->max_taps; i++) p->ring_row[i] = -1;
    int saved = fegetround();
    fesetround(FE_TONEAREST);
    for (int y = 0; y < S; y++) {
        float acc[3 * SAM3_MAX_S];
        if (h == S) {
            memcpy(acc, width_pass(p, rgb, w, y), sizeof(float) * 3 * S);
        } else {
            const float *wt = p->ay.w + (size_t)y * p->max_taps, *first = width_pass(p, rgb, w, p->ay.start[y]);
            for (int i = 0; i < 3 * S; i++) acc[i] = first[i] * wt[0];
            for (int j = 1; j < p->ay.len[y]; j++) {
                const float *src = width_pass(p, rgb, w, p->ay.start[y] + j);
                for (int i = 0; i < 3 * S; i++) acc[i] = fmaf(src[i], wt[j], acc[i]);
            }
        }
        for (int c = 0; c < 3; c++)
            for (int x = 0; x < S; x++) {
                uint8_t u = round_u8(acc[c * S + x]);
                size_t k = (size_t)c * plane + (size_t)y * S + x;
                m->h_resized[k] = u;
                m->h_input[k] = ((float)u * (float)(1.0 / 255.0) - 0.5f) / 0.5f;
            }
    }
    fesetround(saved);
}
