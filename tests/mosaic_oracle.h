/* tests/mosaic_oracle.h: an "oracle" mask source for pipelines/mosaic/multipass.h, shared by the
 * pipeline test and the mosaic benchmark. For each prompted point it returns the exact
 * 4-connected region of equal colour under it (black = painted or empty: no mask), once
 * per region per call, with scores of 0.99, so the pipeline can be checked against
 * regions known in advance, and timed without a model.
 *
 * Cost follows the regions found, not the tile: a stamp map (one uint32 per pixel, kept
 * across calls) marks the pixels of this call's regions by the call's number, so nothing
 * is cleared between points or calls; each region's RLE is encoded from its bounding-box
 * crop, and the crop buffer is cleared again pixel by pixel from the region's list. */
#ifndef SAMC_TEST_MOSAIC_ORACLE_H
#define SAMC_TEST_MOSAIC_ORACLE_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipelines/amg/amg.h"
#include "pipelines/mosaic/multipass.h"

typedef struct {
    int calls, changed_calls;
    /* scratch, grown to the largest tile seen; freed by oracle_ctx_free */
    uint32_t *stamp;   /* [cap] call number that took the pixel, 0 = none yet */
    int32_t *list;     /* [cap] the current region's pixels, also the flood-fill queue */
    uint8_t *crop;     /* [cap] the current region's bounding-box mask, all 0 between uses */
    size_t cap;
    uint32_t epoch;
} oracle_ctx;

static inline void oracle_ctx_free(oracle_ctx *oc) {
    free(oc->stamp);
    free(oc->list);
    free(oc->crop);
    oc->stamp = NULL;
    oc->list = NULL;
    oc->crop = NULL;
    oc->cap = 0;
    oc->epoch = 0;
}

static inline int oracle_fail(samc_error *err, samc_status st, const char *msg, int w, int h) {
    if (err) {
        err->status = st;
        snprintf(err->msg, sizeof err->msg, "oracle: %s (%dx%d tile)", msg, w, h);
    }
    return -1;
}

/* Makes the scratch hold npix pixels and gives this call a fresh stamp number. */
static inline int oracle_prepare(oracle_ctx *oc, size_t npix) {
    if (npix > oc->cap) {
        oracle_ctx_free(oc);
        oc->stamp = calloc(npix, sizeof *oc->stamp);
        oc->list = malloc(npix * sizeof *oc->list);
        oc->crop = calloc(npix, 1);
        if (!oc->stamp || !oc->list || !oc->crop) {
            oracle_ctx_free(oc);
            return -1;
        }
        oc->cap = npix;
    }
    if (++oc->epoch == 0) {   /* wrapped: old numbers could match again */
        memset(oc->stamp, 0, oc->cap * sizeof *oc->stamp);
        oc->epoch = 1;
    }
    return 0;
}

/* mosaic_mask_source.generate */
static inline int oracle_generate(void *ctx, const uint8_t *rgb, int w, int h, const double *points01, int n_points,
                                  double iou, double stability, int image_changed, int (*cancelled)(void *),
                                  void *cancel_ctx, amg_result *out, samc_error *err) {
    oracle_ctx *oc = ctx;
    (void)iou;
    (void)stability;
    (void)cancelled;
    (void)cancel_ctx;
    oc->calls++;
    oc->changed_calls += image_changed;
    memset(out, 0, sizeof *out);
    out->width = w;
    out->height = h;
    out->masks = calloc((size_t)n_points + 1, sizeof *out->masks);
    if (!out->masks || oracle_prepare(oc, (size_t)w * h) != 0)
        return oracle_fail(err, SAMC_ERR_NOMEM, "out of memory", w, h);
    const uint32_t ep = oc->epoch;
    for (int p = 0; p < n_points; p++) {
        int x = (int)(points01[2 * p] * w), y = (int)(points01[2 * p + 1] * h);
        if (x < 0 || y < 0 || x >= w || y >= h) continue;
        const uint8_t *c = rgb + 3 * ((size_t)y * w + x);
        if (c[0] == 0 && c[1] == 0 && c[2] == 0) continue;   /* black: painted or empty */
        if (oc->stamp[(size_t)y * w + x] == ep) continue;     /* that region is out already */
        /* breadth-first fill; list[0..n) ends up holding the region */
        size_t head = 0, n = 0;
        int bx0 = x, by0 = y, bx1 = x, by1 = y;
        oc->list[n++] = y * w + x;
        oc->stamp[(size_t)y * w + x] = ep;
        while (head < n) {
            int q = oc->list[head++], qx = q % w, qy = q / w;
            if (qx < bx0) bx0 = qx;
            if (qx > bx1) bx1 = qx;
            if (qy < by0) by0 = qy;
            if (qy > by1) by1 = qy;
            const int nb[4][2] = { { qx - 1, qy }, { qx + 1, qy }, { qx, qy - 1 }, { qx, qy + 1 } };
            for (int k = 0; k < 4; k++) {
                int ax = nb[k][0], ay = nb[k][1];
                if (ax < 0 || ay < 0 || ax >= w || ay >= h) continue;
                int a = ay * w + ax;
                if (oc->stamp[a] == ep || memcmp(rgb + 3 * (size_t)a, c, 3) != 0) continue;
                oc->stamp[a] = ep;
                oc->list[n++] = a;
            }
        }
        int bw = bx1 - bx0 + 1, bh = by1 - by0 + 1;
        for (size_t i = 0; i < n; i++) {
            int q = oc->list[i];
            oc->crop[(size_t)(q / w - by0) * bw + (q % w - bx0)] = 1;
        }
        amg_mask *m = &out->masks[out->n_masks];
        int rc = amg_rle_encode(oc->crop, bw, bh, bx0, by0, w, h, &m->counts, &m->n_counts, err);
        for (size_t i = 0; i < n; i++) {
            int q = oc->list[i];
            oc->crop[(size_t)(q / w - by0) * bw + (q % w - bx0)] = 0;
        }
        if (rc != 0) return -1;
        m->area = (int64_t)n;
        m->box[0] = bx0;
        m->box[1] = by0;
        m->box[2] = bx1;
        m->box[3] = by1;
        m->predicted_iou = 0.99f;
        m->stability_score = 0.99f;
        m->point[0] = (float)x;
        m->point[1] = (float)y;
        m->crop_box[2] = w;
        m->crop_box[3] = h;
        out->n_masks++;
    }
    return 0;
}

/* The oracle as a mask source; oc must be zeroed first and outlive it. */
static inline mosaic_mask_source oracle_source(oracle_ctx *oc) {
    mosaic_mask_source s = { .ctx = oc, .generate = oracle_generate };
    return s;
}

#endif
