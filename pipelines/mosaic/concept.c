/* pipelines/mosaic/concept.c: SAM3 concept segmentation of a mosaic tile (concept.h). */
#include "pipelines/mosaic/concept.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

struct mosaic_concept {
    samc_model *model;
    samc_image *img;
    samc_instances inst;
    float *logits, *best;        /* [max_h][max_w] */
    int max_w, max_h;
};

mosaic_concept *mosaic_concept_new(samc_model *m, int max_w, int max_h, samc_error *err) {
    samc_model_info info;
    samc_model_get_info(m, &info);
    if (info.family != SAMC_FAMILY_SAM3) {
        samc_error_set(err, SAMC_ERR_ARG, "mosaic: class texts need a SAM3 model; %s is SAM2.1 (automatic masks: "
                       "run without texts)", info.config);
        return NULL;
    }
    mosaic_concept *cc = calloc(1, sizeof *cc);
    size_t n = (size_t)max_w * max_h;
    if (cc) {
        cc->logits = malloc(n * sizeof *cc->logits);
        cc->best = malloc(n * sizeof *cc->best);
    }
    if (!cc || !cc->logits || !cc->best) {
        mosaic_concept_free(cc);
        samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the masks of a %dx%d tile", max_w, max_h);
        return NULL;
    }
    cc->model = m;
    cc->max_w = max_w;
    cc->max_h = max_h;
    if (!(cc->img = samc_image_new(m, err))) {
        mosaic_concept_free(cc);
        return NULL;
    }
    return cc;
}

void mosaic_concept_free(mosaic_concept *cc) {
    if (!cc) return;
    samc_image_free(cc->img);
    samc_instances_free(&cc->inst);
    free(cc->logits);
    free(cc->best);
    free(cc);
}

/* Instance k of the last search as label `label`: its mask (the low-res logits
 * upsampled to the tile, > 0) wins the valid pixels where its score beats the best. */
static void paint(mosaic_concept *cc, int k, uint32_t label, const uint8_t *valid, int w, int h, uint32_t *labels) {
    const samc_instances *in = &cc->inst;
    size_t ls2 = (size_t)in->low_size * in->low_size, n = (size_t)w * h;
    samc_upsample_logits(in->pred_masks + ls2 * in->query[k], in->low_size, cc->logits, w, h);
    float s = in->score[k];
    for (size_t p = 0; p < n; p++)
        if (cc->logits[p] > 0.0f && (!valid || valid[p]) && s > cc->best[p]) {
            cc->best[p] = s;
            labels[p] = label;
        }
}

/* One "pass" of the tile's stats: the counts and times of the search. */
static int concept_stats(mosaic_tile_stats *st, const mosaic_options *opt, const uint32_t *labels, const uint8_t *valid,
                         int w, int h, int kept, int n, double find_ms, double paint_ms, samc_error *err) {
    st->pass = calloc(1, sizeof *st->pass);
    if (!st->pass) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for a tile's stats");
    st->n_passes = st->cap = 1;
    int64_t nvalid = 0, covered = 0;
    uint8_t *seen = calloc((size_t)n + 1, 1);
    int painted = 0;
    for (size_t p = 0; p < (size_t)w * h; p++) {
        if (valid && !valid[p]) continue;
        nvalid++;
        if (!labels[p]) continue;
        covered++;
        if (seen && !seen[labels[p]]) seen[labels[p]] = 1, painted++;
    }
    free(seen);
    mosaic_pass_stats *ps = &st->pass[0];
    ps->masks_generated = kept;
    ps->components_added = painted;
    ps->iou = ps->stability = opt->score_threshold;
    ps->coverage = nvalid ? 100.0 * (double)covered / (double)nvalid : 0.0;
    ps->generate_ms = find_ms;
    ps->accept_ms = paint_ms;
    st->coverage = ps->coverage;
    st->final_iou = st->final_stability = opt->score_threshold;
    st->n_labels = n;
    st->valid_pixels = nvalid;
    return 0;
}

int mosaic_concept_run(mosaic_concept *cc, const mosaic_options *opt, const uint8_t *rgb, const uint8_t *valid, int w,
                       int h, uint32_t *labels, uint32_t *cls, float *score, int cap, mosaic_tile_stats *st,
                       int (*cancelled)(void *ctx), void *cancel_ctx, samc_error *err) {
    if (w > cc->max_w || h > cc->max_h)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: a %dx%d tile is larger than the planned %dx%d", w, h,
                              cc->max_w, cc->max_h);
    size_t npix = (size_t)w * h;
    memset(labels, 0, npix * sizeof *labels);
    for (size_t p = 0; p < npix; p++) cc->best[p] = -INFINITY;
    double t0 = monotonic_ms();
    if (samc_image_encode(cc->model, cc->img, rgb, w, h, err)) return -1;
    double encode_ms = monotonic_ms() - t0, find_ms = 0, paint_ms = 0;
    samc_find_options fo = { .threshold = (float)opt->score_threshold, .want_masks = 0 };
    int n = 0, kept = 0;
    for (int c = 0; c < opt->n_classes; c++) {
        if (cancelled && cancelled(cancel_ctx)) return samc_error_set(err, SAMC_ERR_ARG, "mosaic: cancelled");
        samc_concept_prompt p = { .text = mosaic_class_name(opt, c) };
        t0 = monotonic_ms();
        if (samc_find(cc->model, cc->img, &p, &fo, &cc->inst, err)) return -1;
        double t1 = monotonic_ms();
        find_ms += t1 - t0;
        kept += cc->inst.n;
        for (int k = 0; k < cc->inst.n; k++) {
            if (n >= cap) return samc_error_set(err, SAMC_ERR_INTERNAL, "mosaic: more than %d instances in a tile", cap);
            cls[n] = (uint32_t)c;
            score[n] = cc->inst.score[k];
            paint(cc, k, (uint32_t)++n, valid, w, h, labels);
        }
        paint_ms += monotonic_ms() - t1;
    }
    if (concept_stats(st, opt, labels, valid, w, h, kept, n, encode_ms + find_ms, paint_ms, err)) return -1;
    st->pass[0].encode_ms = encode_ms;
    st->pass[0].decode_ms = find_ms;
    st->pass[0].masks_ms = paint_ms;
    return 0;
}
