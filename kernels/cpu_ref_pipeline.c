/* kernels/cpu_ref_pipeline.c: the reference twins of the image-pipeline ops (kernels/ops.h):
 * SAM2Transforms' preprocessing and the automatic-mask post-processing, in plain loops
 * over host memory. They define what the CUDA versions (kernels/cuda/preprocess.cu,
 * maskpost.cu) compute, bit for bit, and tests/test_backend_ops.c holds each to them;
 * tests/test_pipeline_twins.c holds these to the host code they stand in for
 * (model/sam2/transforms.c, pipelines/amg/amg.c). */
#include "kernels/cpu_ref_pipeline.h"

#include <math.h>
#include <stdlib.h>

/* ---- preprocess ---------------------------------------------------------------------- */

void preprocess_ref(const samc_ops *o, const uint8_t *rgb, int w, int h, const samc_resize_taps *t, float *out,
                    int S) {
    (void)o;
    (void)h;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const float *wx = t->wx + (size_t)x * t->T, *wy = t->wy + (size_t)y * t->T;
                float v = 0.0f;
                for (int j = 0; j < t->ny[y]; j++) {
                    const uint8_t *row = rgb + ((size_t)(t->y0[y] + j) * w + t->x0[x]) * 3 + c;
                    float hs = 0.0f;
                    for (int i = 0; i < t->nx[x]; i++) hs += wx[i] * ((float)row[(size_t)i * 3] / 255.0f);
                    v += wy[j] * hs;
                }
                out[((size_t)c * S + y) * S + x] = (v - t->mean[c]) / t->std[c];
            }
}

/* ---- mask post-processing -------------------------------------------------------------- */

int samc_ref_multimask_choice(const float *all_masks, const float *all_iou, int n, float *stability_out) {
    const float delta = 0.05f, thresh = 0.98f;
    long inter = 0, uni = 0;
    for (int i = 0; i < n; i++) {
        inter += all_masks[i] > delta;
        uni += all_masks[i] > -delta;
    }
    float stability = uni > 0 ? (float)inter / (float)uni : 1.0f;
    if (stability_out) *stability_out = stability;
    if (stability >= thresh) return 0;
    int best = 1;
    for (int t = 2; t < 4; t++)
        if (all_iou[t] > all_iou[best]) best = t;
    return best;
}

static int32_t uf_find(const int32_t *par, int32_t p) {
    while (par[p] != p) p = par[p];
    return p;
}

/* 8-connected regions of the pixels of src[L, L] that are > thr (fg) or <= thr (!fg; a
 * NaN is in neither set): par[p] leads to the region's root (the smallest index), -1 off
 * the set; size[root]. */
static void regions(const float *src, int L, float thr, int fg, int32_t *par, int32_t *size) {
    int n = L * L;
    for (int p = 0; p < n; p++) {
        par[p] = (fg ? src[p] > thr : src[p] <= thr) ? p : -1;
        size[p] = 0;
    }
    static const int dx[4] = { -1, -1, 0, 1 }, dy[4] = { 0, -1, -1, -1 };
    for (int p = 0; p < n; p++) {
        if (par[p] < 0) continue;
        int x = p % L, y = p / L;
        for (int d = 0; d < 4; d++) {
            int nx = x + dx[d], ny = y + dy[d];
            if (nx < 0 || nx >= L || ny < 0 || par[ny * L + nx] < 0) continue;
            int32_t a = uf_find(par, p), b = uf_find(par, ny * L + nx);
            if (a < b) par[b] = a;
            else if (b < a) par[a] = b;
        }
    }
    for (int p = 0; p < n; p++)
        if (par[p] >= 0) size[uf_find(par, p)]++;
}

/* postprocess_masks' hole and sprinkle filling (ops.h, step 2), src -> dst. */
static void fill_regions(const float *src, float *dst, int L, float thr, int max_region, int32_t *cc) {
    int n = L * L;
    int32_t *par = cc, *size = cc + n;
    const float up = (float)((double)thr + 10.0), down = (float)((double)thr - 10.0);
    for (int p = 0; p < n; p++) dst[p] = src[p];
    for (int fg = 0; fg < 2; fg++) {
        regions(src, L, thr, fg, par, size);
        for (int p = 0; p < n; p++)
            if (par[p] >= 0 && size[uf_find(par, p)] <= max_region) dst[p] = fg ? down : up;
    }
}

/* is_box_near_crop_edge for a box in crop pixels (ops.h, step 4). */
static int near_crop_edge(const samc_mask_post_args *a, const int32_t box[4]) {
    const int crop[4] = { a->crop_x0, a->crop_y0, a->crop_x0 + a->cw, a->crop_y0 + a->ch };
    const int image[4] = { 0, 0, a->img_w, a->img_h };
    for (int k = 0; k < 4; k++) {
        int v = box[k] + crop[k % 2];
        if (abs(v - crop[k]) <= a->edge_atol && abs(v - image[k]) > a->edge_atol) return 1;
    }
    return 0;
}

/* Counts, area and box of candidate map low[L, L] upsampled to cw x ch. */
static void upsampled_stats(const samc_mask_post_args *a, const float *low, samc_mask_stat *st) {
    float sx = (float)a->L / (float)a->cw, sy = (float)a->L / (float)a->ch;
    int64_t hi = 0, lo = 0, area = 0;
    int32_t x0 = a->cw, y0 = a->ch, x1 = -1, y1 = -1;
    for (int y = 0; y < a->ch; y++)
        for (int x = 0; x < a->cw; x++) {
            float v = ref_bilinear_px(low, a->L, sx, sy, x, y);
            hi += v > a->stab_hi;
            lo += v > a->stab_lo;
            if (!(v > a->mask_threshold)) continue;
            area++;
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
        }
    st->stability = lo ? (float)hi / (float)lo : NAN;
    st->above_hi = hi;
    st->above_lo = lo;
    st->area = area;
    if (!area) x0 = y0 = x1 = y1 = 0;
    st->box[0] = x0; st->box[1] = y0; st->box[2] = x1; st->box[3] = y1;
}

/* Toggles of column x of a candidate (ops.h, step 5), written to runs when not NULL. */
static int64_t column_toggles(const samc_mask_post_args *a, const float *low, int x, uint32_t *runs) {
    float sx = (float)a->L / (float)a->cw, sy = (float)a->L / (float)a->ch;
    int64_t n = 0;
    int prev = 0;
    for (int y = 0; y <= a->ch; y++) {
        int on = y < a->ch && ref_bilinear_px(low, a->L, sx, sy, x, y) > a->mask_threshold;
        if (on == prev) continue;
        if (runs) runs[n] = (uint32_t)((int64_t)x * a->ch + y);
        n++;
        prev = on;
    }
    return n;
}

/* The map candidate k's statistics and runs are taken from. */
static const float *candidate_map(const samc_mask_post_args *a, int k, int token) {
    size_t n = (size_t)a->L * a->L;
    if (a->max_region > 0) return a->filled + (size_t)k * n;
    return a->low + ((size_t)(k / (a->multimask ? 3 : 1)) * 4 + (size_t)token) * n;
}

void mask_stats_ref(const samc_ops *o, const samc_mask_post_args *a) {
    (void)o;
    int M = a->multimask ? 3 : 1, n_cand = a->B * M;
    size_t n = (size_t)a->L * a->L;
    for (int k = 0; k < n_cand; k++) {
        int b = k / M;
        samc_mask_stat *st = &a->stat[k];
        const float *item = a->low + (size_t)b * 4 * n;
        *st = (samc_mask_stat){ 0 };
        st->token = M == 3 ? k % M + 1 : samc_ref_multimask_choice(item, a->iou + (size_t)b * 4, (int)n, NULL);
        st->iou = a->iou[(size_t)b * 4 + st->token];
        for (int x = 0; x < a->cw; x++) a->col_runs[(size_t)k * a->cw + x] = 0;
        if (a->filter_iou && !(st->iou > a->iou_thresh)) continue;
        st->passed = 1;
        if (a->max_region > 0)
            fill_regions(item + (size_t)st->token * n, a->filled + (size_t)k * n, a->L, a->mask_threshold,
                         a->max_region, a->cc);
        const float *map = candidate_map(a, k, st->token);
        upsampled_stats(a, map, st);
        if (a->filter_stability && !(st->stability >= a->stab_thresh)) continue;
        st->passed = 2;
        if (near_crop_edge(a, st->box)) continue;
        st->passed = 3;
        for (int x = 0; x < a->cw; x++) {
            int64_t c = column_toggles(a, map, x, NULL);
            a->col_runs[(size_t)k * a->cw + x] = c;
            st->n_runs += c;
        }
    }
}

void mask_runs_ref(const samc_ops *o, const samc_mask_post_args *a, int k0, int k1, uint32_t *runs) {
    (void)o;
    int64_t at = 0;
    for (int k = k0; k < k1; k++) {
        if (a->stat[k].passed != 3) continue;
        const float *map = candidate_map(a, k, a->stat[k].token);
        for (int x = 0; x < a->cw; x++) at += column_toggles(a, map, x, runs + at);
    }
}
