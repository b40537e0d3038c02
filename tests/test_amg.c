/* tests/test_amg.c: automatic mask generation (pipelines/amg/amg.c) against the official
 * SAM2AutomaticMaskGenerator.
 *
 * - unit_amg_discs golden: the generator with the analytic decoder of the golden README
 *   (section 6) in place of the model; every mask record must match, in order.
 * - amg golden: the micro synthetic model end to end on truck_320x240.png: the filter
 *   counts, the kept mask, and the raw per-candidate IoUs and stability scores.
 * - the building blocks on hand-made inputs: point grids, crop boxes, boxes, RLE, NMS,
 *   small-region removal (both the SAM2 low-res step and SAM1's full-res one). */
#include "tests/test.h"
#include "pipelines/amg/amg.h"
#include "convert/convert.h"
#include "model/samc.h"
#include "loader/safetensors.h"
#include <cjson/cJSON.h>
#include <stb_image.h>
#include <stdint.h>
#include <unistd.h>

/* ---- golden helpers --------------------------------------------------------------- */

/* <golden>/micro/<group>/manifest.json, or NULL when the golden data is absent. */
static cJSON *load_manifest(const char *group, char *dir, size_t dir_size) {
    snprintf(dir, dir_size, "%s/micro/%s", test_golden_dir(), group);
    char path[1200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *txt = test_read_text(path);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    return j;
}

static double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The manifest's generator_params as amg_options (everything else at the defaults). */
static void options_from_manifest(const cJSON *man, amg_options *o) {
    const cJSON *g = cJSON_GetObjectItem(man, "generator_params");
    amg_options_default(o);
    o->points_per_side = (int)jnum(g, "points_per_side");
    o->points_per_batch = (int)jnum(g, "points_per_batch");
    o->pred_iou_thresh = jnum(g, "pred_iou_thresh");
    o->stability_score_thresh = jnum(g, "stability_score_thresh");
    o->stability_score_offset = jnum(g, "stability_score_offset");
    o->mask_threshold = jnum(g, "mask_threshold");
    o->box_nms_thresh = jnum(g, "box_nms_thresh");
    o->crop_n_layers = (int)jnum(g, "crop_n_layers");
    o->min_mask_region_area = (int)jnum(g, "min_mask_region_area");
    o->multimask_output = cJSON_IsTrue(cJSON_GetObjectItem(g, "multimask_output"));
}

/* Every record of r against the manifest's masks, in order. */
static void compare_records(const amg_result *r, const cJSON *man, double score_tol) {
    const cJSON *masks = cJSON_GetObjectItem(man, "masks");
    int n = cJSON_GetArraySize(masks);
    CHECKF(r->n_masks == n, "%d masks, golden %d", r->n_masks, n);
    int bad = 0;
    for (int k = 0; k < n && k < r->n_masks && bad < 5; k++) {
        const cJSON *g = cJSON_GetArrayItem(masks, k);
        const amg_mask *m = &r->masks[k];
        int before = test_failures_in_current;
        const cJSON *rle = cJSON_GetObjectItem(g, "rle_counts_colmajor");
        int nc = cJSON_GetArraySize(rle);
        CHECKF(m->n_counts == nc, "mask %d: %lld RLE counts, golden %d", k, (long long)m->n_counts, nc);
        int i = 0;
        for (const cJSON *c = rle ? rle->child : NULL; c && i < m->n_counts; c = c->next, i++)
            if ((double)m->counts[i] != c->valuedouble) {
                CHECKF(0, "mask %d: RLE count %d is %u, golden %.0f", k, i, m->counts[i], c->valuedouble);
                break;
            }
        CHECKF((double)m->area == jnum(g, "area"), "mask %d: area %lld, golden %.0f", k, (long long)m->area,
               jnum(g, "area"));
        const cJSON *bb = cJSON_GetObjectItem(g, "bbox_xywh");
        const int xywh[4] = { m->box[0], m->box[1], m->box[2] - m->box[0], m->box[3] - m->box[1] };
        for (int j = 0; j < 4; j++)
            CHECKF(xywh[j] == cJSON_GetArrayItem(bb, j)->valuedouble, "mask %d: bbox[%d] %d, golden %g", k, j,
                   xywh[j], cJSON_GetArrayItem(bb, j)->valuedouble);
        const cJSON *cb = cJSON_GetObjectItem(g, "crop_box_xywh");
        const int cxywh[4] = { m->crop_box[0], m->crop_box[1], m->crop_box[2] - m->crop_box[0],
                               m->crop_box[3] - m->crop_box[1] };
        for (int j = 0; j < 4; j++)
            CHECKF(cxywh[j] == cJSON_GetArrayItem(cb, j)->valuedouble, "mask %d: crop_box[%d] %d", k, j, cxywh[j]);
        const cJSON *pc = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "point_coords"), 0);
        CHECKF(m->point[0] == cJSON_GetArrayItem(pc, 0)->valuedouble &&
               m->point[1] == cJSON_GetArrayItem(pc, 1)->valuedouble,
               "mask %d: point (%g, %g), golden (%g, %g)", k, m->point[0], m->point[1],
               cJSON_GetArrayItem(pc, 0)->valuedouble, cJSON_GetArrayItem(pc, 1)->valuedouble);
        double gi = jnum(g, "predicted_iou"), gs = jnum(g, "stability_score");
        CHECKF(fabs(m->predicted_iou - gi) <= score_tol, "mask %d: predicted_iou %.9g, golden %.9g", k,
               m->predicted_iou, gi);
        CHECKF(fabs(m->stability_score - gs) <= score_tol, "mask %d: stability %.9g, golden %.9g", k,
               m->stability_score, gs);
        bad += test_failures_in_current > before;
    }
}

/* ---- the analytic decoder of unit_amg_discs ------------------------------------- */

/* For grid point p = (px, py) and token t: logit = R_t - |(x, y) - (px, py)| in float32,
 * iou = 0.6 + 0.1 t + 0.001 p, p counting points from the first of the crop. */
typedef struct {
    int cw, ch;
    int first;            /* grid index of the first point of the last batch */
    int next;             /* grid index of the next point */
    float pts[4096 * 2];  /* the last batch */
} disc_source;

static const float disc_r[3] = { 12.0f, 44.0f, 48.0f };

static int disc_set_crop(void *ctx, const int crop[4], samc_error *err) {
    disc_source *d = ctx;
    d->cw = crop[2] - crop[0];
    d->ch = crop[3] - crop[1];
    d->next = 0;
    return 0;
}

static int disc_predict(void *ctx, const float *points, int n, float *iou, samc_error *err) {
    disc_source *d = ctx;
    if (n > 4096) {
        snprintf(err->msg, sizeof err->msg, "disc source: batch of %d points", n);
        return -1;
    }
    memcpy(d->pts, points, sizeof(float) * 2 * (size_t)n);
    d->first = d->next;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < 3; t++) iou[i * 3 + t] = (float)(0.6 + 0.1 * t + 0.001 * (d->first + i));
    d->next += n;
    return 0;
}

static int disc_logits(void *ctx, int point, int token, float *out, samc_error *err) {
    disc_source *d = ctx;
    float px = d->pts[2 * point], py = d->pts[2 * point + 1];
    for (int y = 0; y < d->ch; y++)
        for (int x = 0; x < d->cw; x++) {
            float dx = (float)x - px, dy = (float)y - py;
            out[(size_t)y * d->cw + x] = disc_r[token] - sqrtf(dx * dx + dy * dy);
        }
    return 0;
}

static void test_unit_amg_discs_golden(void) {
    char dir[1024];
    cJSON *man = load_manifest("unit_amg_discs", dir, sizeof dir);
    TEST_NEED_GOLDEN(man != NULL, dir);
    amg_options o;
    options_from_manifest(man, &o);
    const cJSON *hw = cJSON_GetObjectItem(man, "image_hw");
    int h = (int)cJSON_GetArrayItem(hw, 0)->valuedouble, w = (int)cJSON_GetArrayItem(hw, 1)->valuedouble;
    disc_source *d = calloc(1, sizeof *d);
    amg_source src = { .ctx = d, .set_crop = disc_set_crop, .predict = disc_predict, .mask_logits = disc_logits };
    amg_result r = { 0 };
    samc_error err = { 0 };
    CHECKF(amg_generate(&src, w, h, &o, &r, &err) == 0, "%s", err.msg);
    compare_records(&r, man, 1e-6);
    CHECKF(r.n_masks == (int)jnum(man, "num_after_nms"), "%d masks, golden num_after_nms %g", r.n_masks,
           jnum(man, "num_after_nms"));
    /* 64 points x 3 discs: R=12 fails stability, NMS drops the R=44 discs */
    CHECK(r.stats.candidates == 192);
    CHECK(r.stats.after_box_nms == r.n_masks);
    /* The same with batches of 5 points: batching must not change anything. */
    amg_result r5 = { 0 };
    o.points_per_batch = 5;
    CHECKF(amg_generate(&src, w, h, &o, &r5, &err) == 0, "%s", err.msg);
    compare_records(&r5, man, 1e-6);
    CHECK(r5.stats.n_batches == 13);
    amg_result_free(&r5);
    amg_result_free(&r);
    free(d);
    cJSON_Delete(man);
}

/* Crops with the analytic decoder: no golden, so check what must hold of any output. */
static void test_discs_with_crops(void) {
    amg_options o;
    amg_options_default(&o);
    o.points_per_side = 6;
    o.points_per_batch = 7;
    o.pred_iou_thresh = 0.65;
    o.stability_score_thresh = 0.88;
    o.crop_n_layers = 1;
    o.crop_n_points_downscale_factor = 2;
    int w = 200, h = 150;
    disc_source *d = calloc(1, sizeof *d);
    amg_source src = { .ctx = d, .set_crop = disc_set_crop, .predict = disc_predict, .mask_logits = disc_logits };
    amg_result r = { 0 };
    samc_error err = { 0 };
    CHECKF(amg_generate(&src, w, h, &o, &r, &err) == 0, "%s", err.msg);
    CHECK(r.stats.n_crops == 5);
    CHECK(r.stats.n_points == 36 + 4 * 9);
    CHECK(r.stats.n_batches == 6 + 4 * 2);
    CHECK(r.stats.candidates == 3 * r.stats.n_points);
    CHECK(r.stats.after_crop_nms == r.n_masks && r.n_masks > 0);
    CHECK(r.stats.after_crop_nms <= r.stats.after_box_nms);
    uint8_t *mask = malloc((size_t)w * h);
    int from_crops = 0;
    for (int k = 0; k < r.n_masks; k++) {
        const amg_mask *m = &r.masks[k];
        int box[4];
        CHECKF(amg_rle_decode(m->counts, m->n_counts, w, h, mask, &err) == 0, "mask %d: %s", k, err.msg);
        CHECK(amg_mask_box(mask, w, h, box) == m->area);
        CHECKF(!memcmp(box, m->box, sizeof box), "mask %d: box %d,%d,%d,%d vs RLE %d,%d,%d,%d", k, m->box[0],
               m->box[1], m->box[2], m->box[3], box[0], box[1], box[2], box[3]);
        /* the point lies in its crop and the mask within it */
        CHECK(m->point[0] >= m->crop_box[0] && m->point[0] <= m->crop_box[2]);
        CHECK(m->point[1] >= m->crop_box[1] && m->point[1] <= m->crop_box[3]);
        CHECK(m->box[0] >= m->crop_box[0] && m->box[2] < m->crop_box[2]);
        CHECK(m->box[1] >= m->crop_box[1] && m->box[3] < m->crop_box[3]);
        from_crops += m->crop_box[2] - m->crop_box[0] < w;
        /* crop-layer masks keep off the inner crop edges */
        if (m->crop_box[0] > 0) CHECK(m->box[0] - m->crop_box[0] > 20 || m->box[0] <= 20);
        if (m->crop_box[2] < w) CHECK(m->crop_box[2] - m->box[2] > 20 || w - m->box[2] <= 20);
        /* the discs are R=48 (t=2) or R=44 (t=1) around the point */
        CHECK(m->stability_score >= 0.88f && m->predicted_iou > 0.65f);
    }
    CHECK(from_crops > 0);
    /* smaller crops first: crop-layer masks precede whole-image ones */
    for (int k = 1; k < r.n_masks; k++) {
        int64_t a0 = (int64_t)(r.masks[k - 1].crop_box[2] - r.masks[k - 1].crop_box[0]) *
                     (r.masks[k - 1].crop_box[3] - r.masks[k - 1].crop_box[1]);
        int64_t a1 = (int64_t)(r.masks[k].crop_box[2] - r.masks[k].crop_box[0]) *
                     (r.masks[k].crop_box[3] - r.masks[k].crop_box[1]);
        CHECK(a0 <= a1);
    }
    free(mask);
    amg_result_free(&r);
    free(d);
}

/* ---- the micro model end to end --------------------------------------------------- */

/* Wraps the samc source to record every candidate's IoU, stability and prompt point. */
typedef struct {
    amg_source inner;
    double offset, thr;
    int w, h, M, n;
    float iou[64 * 3], stab[64 * 3], pts[64 * 2];
    int64_t uni[64 * 3];    /* pixels above the lower cut, for the stability tolerance */
    float *logits;
} record_source;

static int rec_set_crop(void *ctx, const int crop[4], samc_error *err) {
    record_source *r = ctx;
    return r->inner.set_crop(r->inner.ctx, crop, err);
}

static int rec_predict(void *ctx, const float *points, int n, float *iou, samc_error *err) {
    record_source *r = ctx;
    if (r->inner.predict(r->inner.ctx, points, n, iou, err)) return -1;
    for (int i = 0; i < n && r->n < 64; i++, r->n++) {
        r->pts[2 * r->n] = points[2 * i];
        r->pts[2 * r->n + 1] = points[2 * i + 1];
        for (int t = 0; t < r->M; t++) {
            r->iou[r->n * r->M + t] = iou[i * r->M + t];
            if (r->inner.mask_logits(r->inner.ctx, i, t, r->logits, err)) return -1;
            r->stab[r->n * r->M + t] = amg_stability_score(r->logits, (size_t)r->w * r->h, r->thr, r->offset);
            const float lo = (float)(r->thr - r->offset);
            int64_t uni = 0;
            for (size_t p = 0; p < (size_t)r->w * r->h; p++) uni += r->logits[p] > lo;
            r->uni[r->n * r->M + t] = uni;
        }
    }
    return 0;
}

static int rec_logits(void *ctx, int point, int token, float *out, samc_error *err) {
    record_source *r = ctx;
    return r->inner.mask_logits(r->inner.ctx, point, token, out, err);
}

static void test_micro_amg_golden(void) {
    char dir[1024], path[1400], errbuf[SAMC_ERRMSG];
    cJSON *man = load_manifest("amg", dir, sizeof dir);
    TEST_NEED_GOLDEN(man != NULL, dir);
    amg_options o;
    options_from_manifest(man, &o);
    snprintf(path, sizeof path, "%s/%s", dir, cJSON_GetStringValue(cJSON_GetObjectItem(man, "image")));
    int w = 0, h = 0, comp = 0;
    uint8_t *rgb = stbi_load(path, &w, &h, &comp, 3);
    CHECKF(rgb != NULL, "cannot read %s", path);
    char wpath[] = "/tmp/samc_amg_XXXXXX";
    int fd = mkstemp(wpath);
    samc_error err = { 0 };
    samc_model *m = NULL;
    st_file st = { 0 };
    int have_st = 0;
    if (!rgb || fd < 0) goto out;
    close(fd);
    CHECKF(samc_synth_write("micro", wpath, &err) == 0, "%s", err.msg);
    m = samc_model_load(wpath, &(samc_options){ .backend = SAMC_BACKEND_AUTO }, &err);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) goto out;

    record_source rec = { .offset = o.stability_score_offset, .thr = o.mask_threshold, .w = w, .h = h, .M = 3 };
    rec.logits = malloc(sizeof(float) * (size_t)w * h);
    CHECKF(amg_samc_source_new(m, rgb, w, h, &o, &rec.inner, &err) == 0, "%s", err.msg);
    amg_source src = { .ctx = &rec, .set_crop = rec_set_crop, .predict = rec_predict, .mask_logits = rec_logits };
    amg_result r = { 0 };
    CHECKF(amg_generate(&src, w, h, &o, &r, &err) == 0, "%s", err.msg);
    amg_samc_source_free(&rec.inner);

    /* the filter counts of the official run */
    CHECKF(r.stats.candidates == (int64_t)jnum(man, "num_candidates"), "%lld candidates",
           (long long)r.stats.candidates);
    CHECKF(r.stats.passed_iou == (int64_t)jnum(man, "num_pass_iou"), "%lld passed IoU, golden %g",
           (long long)r.stats.passed_iou, jnum(man, "num_pass_iou"));
    CHECKF(r.stats.passed_stability == (int64_t)jnum(man, "num_pass_iou_and_stability"),
           "%lld passed both, golden %g", (long long)r.stats.passed_stability, jnum(man, "num_pass_iou_and_stability"));
    CHECKF(r.stats.after_box_nms == (int64_t)jnum(man, "num_after_nms"), "%lld after NMS, golden %g",
           (long long)r.stats.after_box_nms, jnum(man, "num_after_nms"));
    /* the kept mask: RLE exactly; scores as computed by a different engine */
    compare_records(&r, man, 1e-4);

    /* the raw candidates, 1e-4 relative (the manifest gives no tolerance for them), and
     * the points as the model saw them */
    snprintf(path, sizeof path, "%s/tensors.safetensors", dir);
    have_st = st_open(path, &st, errbuf) == 0;
    CHECKF(have_st, "%s", errbuf);
    CHECK(rec.n == 64);
    if (have_st) {
        const char *names[3] = { "amg.raw_iou_preds", "amg.raw_stability_score", "amg.model_points" };
        const float *mine[3] = { rec.iou, rec.stab, NULL };
        float model_pts[128];
        samc_model_info info;
        samc_model_get_info(m, &info);
        /* transform_coords: (x / W) * S, as the predictor gets the points */
        for (int i = 0; i < 64; i++) {
            model_pts[2 * i] = rec.pts[2 * i] / (float)w * (float)info.image_size;
            model_pts[2 * i + 1] = rec.pts[2 * i + 1] / (float)h * (float)info.image_size;
        }
        mine[2] = model_pts;
        for (int k = 0; k < 3; k++) {
            const st_tensor *t = st_find(&st, names[k]);
            CHECKF(t && (t->numel == 192 || t->numel == 128), "%s missing", names[k]);
            if (!t) continue;
            float *g = malloc(sizeof(float) * (size_t)t->numel);
            CHECK(st_read_f32(t, g, errbuf) == 0);
            double worst = 0.0;
            int64_t at = 0;
            for (int64_t i = 0; i < t->numel; i++) {
                double diff = fabs((double)mine[k][i] - g[i]);
                double tol = 1e-4 * fabs(g[i]) + 1e-7;
                /* A stability score is a ratio of pixel counts at cuts thr +- 0.02, where
                 * plenty of the synthetic logits lie: one pixel within float noise of a cut
                 * (in either count) moves it by up to (1 + score) / union, more than 1e-4
                 * relative for the small scores. Allow that, and no more. */
                if (k == 1) tol += (1.0 + g[i]) / (double)(rec.uni[i] ? rec.uni[i] : 1);
                if (diff / tol > worst) { worst = diff / tol; at = i; }
            }
            CHECKF(worst <= 1.0, "%s: worst error %.3g x tolerance at %lld (%.9g vs golden %.9g)", names[k], worst,
                   (long long)at, mine[k][at], g[at]);
            free(g);
        }
    }
    free(rec.logits);
    amg_result_free(&r);
out:
    if (have_st) st_close(&st);
    samc_model_free(m);
    if (fd >= 0) unlink(wpath);
    if (rgb) stbi_image_free(rgb);
    cJSON_Delete(man);
}

/* amg_generate_samc end to end with min_mask_region_area: runs, and the masks agree with
 * their records. The filling itself is checked on hand-made logits below. */
static void test_micro_generate_samc(void) {
    char dir[1024], path[1400];
    cJSON *man = load_manifest("amg", dir, sizeof dir);
    TEST_NEED_GOLDEN(man != NULL, dir);
    amg_options o;
    options_from_manifest(man, &o);
    snprintf(path, sizeof path, "%s/%s", dir, cJSON_GetStringValue(cJSON_GetObjectItem(man, "image")));
    int w = 0, h = 0, comp = 0;
    uint8_t *rgb = stbi_load(path, &w, &h, &comp, 3);
    char wpath[] = "/tmp/samc_amg_XXXXXX";
    int fd = mkstemp(wpath);
    samc_error err = { 0 };
    samc_model *m = NULL;
    CHECK(rgb && fd >= 0);
    if (!rgb || fd < 0) goto out;
    close(fd);
    CHECKF(samc_synth_write("micro", wpath, &err) == 0, "%s", err.msg);
    m = samc_model_load(wpath, NULL, &err);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) goto out;
    amg_result a = { 0 }, b = { 0 };
    CHECKF(amg_generate_samc(m, rgb, w, h, &o, &a, &err) == 0, "%s", err.msg);
    compare_records(&a, man, 1e-4);
    o.min_mask_region_area = 50;
    o.crop_n_layers = 1;
    CHECKF(amg_generate_samc(m, rgb, w, h, &o, &b, &err) == 0, "%s", err.msg);
    CHECK(b.stats.n_crops == 5 && b.stats.candidates == 192 * 5);
    uint8_t *mask = malloc((size_t)w * h);
    for (int k = 0; k < b.n_masks; k++) {
        int box[4];
        CHECK(amg_rle_decode(b.masks[k].counts, b.masks[k].n_counts, w, h, mask, &err) == 0);
        CHECK(amg_mask_box(mask, w, h, box) == b.masks[k].area);
        CHECK(!memcmp(box, b.masks[k].box, sizeof box));
    }
    free(mask);
    amg_result_free(&a);
    amg_result_free(&b);
out:
    samc_model_free(m);
    if (fd >= 0) unlink(wpath);
    if (rgb) stbi_image_free(rgb);
    cJSON_Delete(man);
}

/* ---- the filtering on the model's backend (amg_options.backend_post) ------------- */

/* Two generator runs gave the same masks, bit for bit, and the same filter counts. */
static void check_same_result(const char *what, const amg_result *a, const amg_result *b) {
    const amg_stats *x = &a->stats, *y = &b->stats;
    CHECKF(a->n_masks == b->n_masks, "%s: %d masks on the host, %d on the backend", what, a->n_masks, b->n_masks);
    CHECKF(x->candidates == y->candidates && x->passed_iou == y->passed_iou &&
           x->passed_stability == y->passed_stability && x->passed_crop_edge == y->passed_crop_edge &&
           x->after_box_nms == y->after_box_nms && x->after_crop_nms == y->after_crop_nms,
           "%s: counts %lld/%lld/%lld/%lld/%lld vs %lld/%lld/%lld/%lld/%lld", what, (long long)x->candidates,
           (long long)x->passed_iou, (long long)x->passed_stability, (long long)x->passed_crop_edge,
           (long long)x->after_box_nms, (long long)y->candidates, (long long)y->passed_iou,
           (long long)y->passed_stability, (long long)y->passed_crop_edge, (long long)y->after_box_nms);
    for (int k = 0; k < a->n_masks && k < b->n_masks; k++) {
        const amg_mask *p = &a->masks[k], *q = &b->masks[k];
        int same = p->n_counts == q->n_counts && !memcmp(p->counts, q->counts, sizeof *p->counts * p->n_counts) &&
                   p->area == q->area && !memcmp(p->box, q->box, sizeof p->box) &&
                   !memcmp(&p->predicted_iou, &q->predicted_iou, sizeof(float)) &&
                   !memcmp(&p->stability_score, &q->stability_score, sizeof(float)) &&
                   !memcmp(p->point, q->point, sizeof p->point) && !memcmp(p->crop_box, q->crop_box, sizeof p->crop_box);
        CHECKF(same, "%s: mask %d differs: area %lld / %lld, %lld / %lld counts, iou %.9g / %.9g, stability %.9g / "
               "%.9g", what, k, (long long)p->area, (long long)q->area, (long long)p->n_counts, (long long)q->n_counts,
               p->predicted_iou, q->predicted_iou, p->stability_score, q->stability_score);
        if (!same) break;
    }
}

/* Option sets: the golden's; one mask per point with other thresholds; small regions and
 * a crop layer; the mosaic's (a point grid, regions of <= 100 pixels, lower thresholds). */
static void post_options(const cJSON *man, int which, amg_options *o, double *grid) {
    options_from_manifest(man, o);
    if (which == 1) {
        o->multimask_output = 0;
        o->pred_iou_thresh = 0.0; /* no filters: every mask reaches the box NMS */
        o->stability_score_thresh = 0.0;
        o->box_nms_thresh = 1.0; /* and none suppressed: every record is compared */
    } else if (which == 2) {
        o->min_mask_region_area = 50;
        o->crop_n_layers = 1;
        o->pred_iou_thresh = 0.2;
        o->stability_score_thresh = 0.5;
        o->box_nms_thresh = o->crop_nms_thresh = 1.0;
    } else if (which == 3) {
        for (int i = 0; i < 2 * 64; i++) grid[i] = (double)((i * 37 + 11) % 97) / 96.0;
        o->point_grid = grid;
        o->point_grid_n = 64;
        o->min_mask_region_area = 100;
        o->pred_iou_thresh = 0.1;
        o->stability_score_thresh = 0.3;
        o->box_nms_thresh = 1.0;
    }
}

/* The host filtering (backend_post -1) against the backend's (post_on) on one backend,
 * for the option sets in `sets` (bit i: post_options i). */
static void run_backend_post(samc_backend be, int post_on, unsigned sets) {
    char dir[1024], path[1400];
    cJSON *man = load_manifest("amg", dir, sizeof dir);
    TEST_NEED_GOLDEN(man != NULL, dir);
    snprintf(path, sizeof path, "%s/%s", dir, cJSON_GetStringValue(cJSON_GetObjectItem(man, "image")));
    int w = 0, h = 0, comp = 0;
    uint8_t *rgb = stbi_load(path, &w, &h, &comp, 3);
    char wpath[] = "/tmp/samc_amg_XXXXXX";
    int fd = mkstemp(wpath);
    samc_error err = { 0 };
    samc_model *m = NULL;
    CHECK(rgb && fd >= 0);
    if (rgb && fd >= 0) {
        close(fd);
        CHECKF(samc_synth_write("micro", wpath, &err) == 0, "%s", err.msg);
        m = samc_model_load(wpath, &(samc_options){ .backend = be, .max_batch = 64 }, &err);
        unlink(wpath);
    }
    if (!m && be == SAMC_BACKEND_CUDA && rgb) {
        stbi_image_free(rgb); /* before the skip, which returns */
        cJSON_Delete(man);
        TEST_SKIP_GPU("no CUDA backend: %s", err.msg);
    }
    CHECKF(m != NULL, "%s", err.msg);
    int kept = 0;
    for (int which = 0; m && which < 4; which++) {
        if (!(sets >> which & 1u)) continue;
        amg_options o;
        double grid[2 * 64];
        post_options(man, which, &o, grid);
        amg_result a = { 0 }, b = { 0 };
        o.backend_post = -1;
        CHECKF(amg_generate_samc(m, rgb, w, h, &o, &a, &err) == 0, "%s", err.msg);
        o.backend_post = post_on;
        CHECKF(amg_generate_samc(m, rgb, w, h, &o, &b, &err) == 0, "%s", err.msg);
        char what[64];
        snprintf(what, sizeof what, "options %d", which);
        check_same_result(what, &a, &b);
        printf("  %s: %d masks (%lld candidates), host filter %.1f ms, backend %.1f ms\n", what, b.n_masks,
               (long long)b.stats.candidates, a.stats.masks_ms, b.stats.masks_ms);
        kept += b.n_masks;
        amg_result_free(&a);
        amg_result_free(&b);
    }
    CHECKF(!m || kept > 0, "no option set kept a mask: nothing of the runs was compared");
    samc_model_free(m);
    if (rgb) stbi_image_free(rgb);
    cJSON_Delete(man);
}

/* On the CPU the backend's filtering is the ops' reference twins; with CUDA (or the
 * simulator) its kernels, on the same decoder outputs as the host filtering reads. */
static void test_backend_post_cpu(void) { run_backend_post(SAMC_BACKEND_AUTO, 1, 0xf); }
/* (without the crop layer on the CUDA backend: on the simulator that costs minutes) */
static void test_backend_post_cuda(void) { run_backend_post(SAMC_BACKEND_CUDA, 0, 0xa); }

/* ---- building blocks -------------------------------------------------------------- */

static void test_point_grid(void) {
    double g[2 * 64];
    amg_point_grid(1, g);
    CHECK(g[0] == 0.5 && g[1] == 0.5);
    amg_point_grid(2, g);
    /* x fastest: (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75) */
    const double want2[8] = { 0.25, 0.25, 0.75, 0.25, 0.25, 0.75, 0.75, 0.75 };
    for (int i = 0; i < 8; i++) CHECKF(g[i] == want2[i], "n=2 [%d] = %.17g", i, g[i]);
    amg_point_grid(3, g);
    const double side3[3] = { 1.0 / 6.0, 0.5, 5.0 / 6.0 };
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) {
            CHECK(fabs(g[2 * (j * 3 + i)] - side3[i]) < 1e-15);
            CHECK(fabs(g[2 * (j * 3 + i) + 1] - side3[j]) < 1e-15);
        }
    CHECK(g[2 * 2] == 5.0 / 6.0 || g[2 * 2] == 1.0 - 1.0 / 6.0);   /* the end point is stop exactly */
    /* the golden grid: 8 per side on 320 x 240 gives x = 20, 60, ..., 300 and y = 15, ..., 225 */
    amg_point_grid(8, g);
    for (int i = 0; i < 8; i++) {
        CHECKF((float)(g[2 * i] * 320) == 20.0f + 40.0f * i, "x[%d] = %.9g", i, (float)(g[2 * i] * 320));
        CHECKF((float)(g[2 * (i * 8) + 1] * 240) == 15.0f + 30.0f * i, "y[%d]", i);
    }
}

static void test_crop_boxes(void) {
    int boxes[32][4], layers[32];
    /* 0 layers: the image */
    CHECK(amg_crop_boxes(1800, 1200, 0, 512.0 / 1500.0, boxes, layers, 32) == 1);
    CHECK(boxes[0][0] == 0 && boxes[0][1] == 0 && boxes[0][2] == 1800 && boxes[0][3] == 1200 && layers[0] == 0);
    /* 1800 x 1200, 1 layer: overlap int(512/1500 * 1200 * 2/2) = 409, crop w ceil((409 +
     * 1800) / 2) = 1105, h ceil((409 + 1200) / 2) = 805, x0 = 0, 696, y0 = 0, 396, x outer */
    int n = amg_crop_boxes(1800, 1200, 1, 512.0 / 1500.0, boxes, layers, 32);
    CHECK(n == 5);
    const int want1[5][4] = { { 0, 0, 1800, 1200 }, { 0, 0, 1105, 805 }, { 0, 396, 1105, 1200 },
                              { 696, 0, 1800, 805 }, { 696, 396, 1800, 1200 } };
    for (int i = 0; i < 5; i++) {
        CHECKF(!memcmp(boxes[i], want1[i], sizeof want1[i]), "layer-1 box %d: %d,%d,%d,%d", i, boxes[i][0],
               boxes[i][1], boxes[i][2], boxes[i][3]);
        CHECK(layers[i] == (i > 0));
    }
    /* 2 layers: layer 2 overlap int(409.6 / 2) = 204, crop w ceil((3*204 + 1800)/4) = 603,
     * h ceil((3*204 + 1200)/4) = 453, x0 = 0, 399, 798, 1197, y0 = 0, 249, 498, 747 */
    n = amg_crop_boxes(1800, 1200, 2, 512.0 / 1500.0, boxes, layers, 32);
    CHECK(n == 21);
    const int x0s[4] = { 0, 399, 798, 1197 }, y0s[4] = { 0, 249, 498, 747 };
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            const int *b = boxes[5 + i * 4 + j];
            CHECKF(b[0] == x0s[i] && b[1] == y0s[j] && b[2] == x0s[i] + 603 && b[3] == y0s[j] + 453,
                   "layer-2 box %d,%d: %d,%d,%d,%d", i, j, b[0], b[1], b[2], b[3]);
            CHECK(layers[5 + i * 4 + j] == 2);
        }
    /* 320 x 240, 1 layer: overlap int(81.92) = 81, crops 201 x 161 at x0 0, 120 and y0 0,
     * 80, clipped to the image */
    n = amg_crop_boxes(320, 240, 1, 512.0 / 1500.0, boxes, layers, 32);
    const int want_s[4][4] = { { 0, 0, 201, 161 }, { 0, 80, 201, 240 }, { 120, 0, 320, 161 }, { 120, 80, 320, 240 } };
    CHECK(n == 5);
    for (int i = 0; i < 4; i++)
        CHECKF(!memcmp(boxes[1 + i], want_s[i], sizeof want_s[i]), "320x240 box %d: %d,%d,%d,%d", i,
               boxes[1 + i][0], boxes[1 + i][1], boxes[1 + i][2], boxes[1 + i][3]);
    /* the count without storage */
    CHECK(amg_crop_boxes(100, 100, 3, 0.3, NULL, NULL, 0) == 1 + 4 + 16 + 64);
}

static void test_mask_box(void) {
    uint8_t m[4 * 5] = { 0 };
    int box[4] = { 9, 9, 9, 9 };
    CHECK(amg_mask_box(m, 5, 4, box) == 0);
    CHECK(box[0] == 0 && box[1] == 0 && box[2] == 0 && box[3] == 0);
    m[1 * 5 + 2] = 1;
    CHECK(amg_mask_box(m, 5, 4, box) == 1);
    CHECK(box[0] == 2 && box[1] == 1 && box[2] == 2 && box[3] == 1);
    m[3 * 5 + 0] = 1;
    m[2 * 5 + 4] = 1;
    CHECK(amg_mask_box(m, 5, 4, box) == 3);
    CHECK(box[0] == 0 && box[1] == 1 && box[2] == 4 && box[3] == 3);
}

static int rle_is(const uint8_t *mask, int cw, int ch, int x0, int y0, int w, int h, const uint32_t *want, int n) {
    uint32_t *c = NULL;
    int64_t nc = 0;
    samc_error err = { 0 };
    int ok = amg_rle_encode(mask, cw, ch, x0, y0, w, h, &c, &nc, &err) == 0 && nc == n &&
             !memcmp(c, want, sizeof *want * (size_t)n);
    if (!ok) {
        fprintf(stderr, "  RLE got");
        for (int64_t i = 0; i < nc; i++) fprintf(stderr, " %u", c[i]);
        fprintf(stderr, "\n");
    }
    /* and back */
    if (ok && x0 == 0 && y0 == 0 && cw == w && ch == h) {
        uint8_t back[64];
        ok = amg_rle_decode(c, nc, w, h, back, &err) == 0 && !memcmp(back, mask, (size_t)w * h);
    }
    free(c);
    return ok;
}

static void test_rle(void) {
    /* 3 wide, 2 high: rows 011 / 110; columns (0,1), (1,1), (1,0) -> 0 1 1 1 1 0 */
    const uint8_t a[6] = { 0, 1, 1, 1, 1, 0 };
    CHECK(rle_is(a, 3, 2, 0, 0, 3, 2, (const uint32_t[]){ 1, 4, 1 }, 3));
    /* first pixel set: counts start with a zero-length run */
    const uint8_t b[4] = { 1, 0, 0, 0 };
    CHECK(rle_is(b, 2, 2, 0, 0, 2, 2, (const uint32_t[]){ 0, 1, 3 }, 3));
    const uint8_t ones[4] = { 1, 1, 1, 1 }, zeros[4] = { 0 };
    CHECK(rle_is(ones, 2, 2, 0, 0, 2, 2, (const uint32_t[]){ 0, 4 }, 2));
    CHECK(rle_is(zeros, 2, 2, 0, 0, 2, 2, (const uint32_t[]){ 4 }, 1));
    /* last pixel set: no trailing zero run */
    const uint8_t c[4] = { 0, 0, 0, 1 };
    CHECK(rle_is(c, 2, 2, 0, 0, 2, 2, (const uint32_t[]){ 3, 1 }, 2));
    /* a 2 x 1 crop mask [1 1] at (1, 1) of a 3 x 3 image: columns 000, 010, 010 */
    const uint8_t d[2] = { 1, 1 };
    CHECK(rle_is(d, 2, 1, 1, 1, 3, 3, (const uint32_t[]){ 4, 1, 2, 1, 1 }, 5));
    /* runs continue across columns: a 1 x 2 crop [1; 1] at (0, 1) in 2 x 3, and the
     * column-1 pixel at row 0 joins it: columns 011, 100 -> 1 3 2 */
    const uint8_t e[6] = { 0, 1, 1, 0, 1, 0 };
    CHECK(rle_is(e, 2, 3, 0, 0, 2, 3, (const uint32_t[]){ 1, 3, 2 }, 3));
    /* bad placement and bad counts are refused */
    uint32_t *cc = NULL;
    int64_t nc = 0;
    samc_error err = { 0 };
    CHECK(amg_rle_encode(d, 2, 1, 2, 1, 3, 3, &cc, &nc, &err) != 0 && cc == NULL);
    uint8_t back[4];
    CHECK(amg_rle_decode((const uint32_t[]){ 1, 2 }, 2, 2, 2, back, &err) != 0);
    CHECK(amg_rle_decode((const uint32_t[]){ 3, 2 }, 2, 2, 2, back, &err) != 0);
}

/* amg_rle_paint: on random masks (some wrapping runs across columns, some empty) the
 * painted pixels equal the mask and the box equals amg_mask_box's; pixels set before
 * the call stay set. */
static void test_rle_paint_box(void) {
    uint32_t seed = 12345;
    samc_error err = { 0 };
    int bad = 0;
    for (int it = 0; it < 300; it++) {
        int w = 1 + (int)((seed = seed * 1664525u + 1013904223u) >> 27), h = 1 + (int)((seed = seed * 1664525u + 1013904223u) >> 27);
        uint8_t *mask = calloc((size_t)w * h, 1), *back = calloc((size_t)w * h, 1);
        int density = (int)((seed = seed * 1664525u + 1013904223u) >> 29);   /* 0..7: 0 = empty */
        for (int k = 0; k < w * h; k++)
            mask[k] = density && ((seed = seed * 1664525u + 1013904223u) >> 29) < (uint32_t)density / 2;
        uint32_t *c = NULL;
        int64_t nc = 0;
        int box[4], want[4];
        int64_t area = amg_mask_box(mask, w, h, want);
        if (amg_rle_encode(mask, w, h, 0, 0, w, h, &c, &nc, &err) != 0 ||
            amg_rle_paint(c, nc, w, h, back, box, &err) != 0 || memcmp(back, mask, (size_t)w * h) != 0 ||
            (area > 0 && memcmp(box, want, sizeof box) != 0) || (area == 0 && box[2] >= box[0]))
            bad++;
        /* painting over a buffer with other pixels set keeps them */
        memset(back, 1, (size_t)w * h);
        if (amg_rle_paint(c, nc, w, h, back, NULL, &err) != 0) bad++;
        for (int k = 0; k < w * h; k++) bad += back[k] != 1;
        free(c);
        free(mask);
        free(back);
    }
    CHECKF(bad == 0, "%d mismatches", bad);
}

static void test_nms(void) {
    int keep[8];
    samc_error err = { 0 };
    /* IoU 81/119 = 0.68: kept at 0.7, suppressed at 0.6 */
    const int ab[2][4] = { { 0, 0, 10, 10 }, { 1, 1, 11, 11 } };
    CHECK(amg_nms(ab, (const float[]){ 0.9f, 0.8f }, 2, 0.7, keep, &err) == 2 && keep[0] == 0 && keep[1] == 1);
    CHECK(amg_nms(ab, (const float[]){ 0.9f, 0.8f }, 2, 0.6, keep, &err) == 1 && keep[0] == 0);
    /* the higher score wins whatever the index */
    CHECK(amg_nms(ab, (const float[]){ 0.8f, 0.9f }, 2, 0.6, keep, &err) == 1 && keep[0] == 1);
    /* IoU exactly 0.5 (50 / 100): not suppressed at 0.5 (strictly greater), suppressed below */
    const int half[2][4] = { { 0, 0, 10, 10 }, { 0, 0, 10, 5 } };
    CHECK(amg_nms(half, (const float[]){ 0.9f, 0.8f }, 2, 0.5, keep, &err) == 2);
    CHECK(amg_nms(half, (const float[]){ 0.9f, 0.8f }, 2, 0.49, keep, &err) == 1);
    /* ties: the lower index first, as a stable sort leaves them */
    const int same[3][4] = { { 0, 0, 10, 10 }, { 0, 0, 10, 10 }, { 0, 0, 10, 10 } };
    CHECK(amg_nms(same, (const float[]){ 0.5f, 0.5f, 0.5f }, 3, 0.7, keep, &err) == 1 && keep[0] == 0);
    const int apart[3][4] = { { 0, 0, 1, 1 }, { 5, 5, 6, 6 }, { 9, 9, 10, 10 } };
    CHECK(amg_nms(apart, (const float[]){ 0.5f, 0.9f, 0.5f }, 3, 0.7, keep, &err) == 3);
    CHECK(keep[0] == 1 && keep[1] == 0 && keep[2] == 2);
    /* inclusive boxes of single pixels have area 0: IoU 0/0 never suppresses */
    const int dots[2][4] = { { 3, 3, 3, 3 }, { 3, 3, 3, 3 } };
    CHECK(amg_nms(dots, (const float[]){ 0.9f, 0.8f }, 2, 0.0, keep, &err) == 2);
    /* a chain: 0 suppresses 1, so 1 cannot suppress 2 */
    const int chain[3][4] = { { 0, 0, 10, 10 }, { 0, 0, 10, 9 }, { 0, 0, 10, 8 } };
    CHECK(amg_nms(chain, (const float[]){ 0.9f, 0.8f, 0.7f }, 3, 0.85, keep, &err) == 2);
    CHECK(keep[0] == 0 && keep[1] == 2);
    CHECK(amg_nms(chain, NULL, 0, 0.5, keep, &err) == 0);
}

static void test_stability(void) {
    const float l[6] = { 2.0f, 0.5f, -0.5f, -2.0f, 1.0f, -1.0f };
    /* > 1: one; > -1: three (2, 0.5, -0.5) plus 1.0 -> 4 */
    CHECK(amg_stability_score(l, 6, 0.0, 1.0) == 1.0f / 4.0f);
    CHECK(amg_stability_score(l, 6, 0.0, 0.0) == 1.0f);
    CHECK(isnan(amg_stability_score(l, 6, 5.0, 1.0)));
}

static void test_remove_small_regions(void) {
    /* 6 x 5: a ring with a one-pixel hole, and a lone island pixel at the corner */
    const uint8_t src[30] = {
        0, 0, 0, 0, 0, 1,
        0, 1, 1, 1, 0, 0,
        0, 1, 0, 1, 0, 0,
        0, 1, 1, 1, 0, 0,
        0, 0, 0, 0, 0, 0,
    };
    uint8_t m[30];
    int changed = -1;
    samc_error err = { 0 };
    memcpy(m, src, sizeof m);
    CHECK(amg_remove_small_regions(m, 6, 5, 2.0, 1, &changed, &err) == 0 && changed == 1);
    CHECK(m[2 * 6 + 2] == 1);
    for (int i = 0; i < 30; i++) if (i != 2 * 6 + 2) CHECK(m[i] == src[i]);
    /* islands: the 1-pixel corner island goes, the 8-pixel ring stays */
    memcpy(m, src, sizeof m);
    CHECK(amg_remove_small_regions(m, 6, 5, 2.0, 0, &changed, &err) == 0 && changed == 1);
    CHECK(m[5] == 0 && m[1 * 6 + 1] == 1 && m[2 * 6 + 2] == 0);
    /* nothing under the threshold: unchanged */
    memcpy(m, src, sizeof m);
    CHECK(amg_remove_small_regions(m, 6, 5, 1.0, 0, &changed, &err) == 0 && changed == 0);
    CHECK(!memcmp(m, src, sizeof m));
    /* every island small: the largest (8 pixels) is kept */
    memcpy(m, src, sizeof m);
    CHECK(amg_remove_small_regions(m, 6, 5, 100.0, 0, &changed, &err) == 0 && changed == 1);
    CHECK(m[5] == 0 && m[1 * 6 + 1] == 1);
    /* 8-connectivity: diagonal neighbours are one region of 2 pixels, kept at threshold 2 */
    const uint8_t diag[9] = { 1, 0, 0, 0, 1, 0, 0, 0, 0 };
    memcpy(m, diag, 9);
    CHECK(amg_remove_small_regions(m, 3, 3, 2.0, 0, &changed, &err) == 0 && changed == 0);
}

static void test_fill_small_regions(void) {
    /* low-res logits 6 x 4 (SAM2 postprocess_masks with max area 1): a one-pixel hole and
     * a one-pixel sprinkle; regions of <= 1 pixel flip, larger ones stay */
    float l[24] = {
        -5, -5, -5, -5, -5, 3,
        -5, 2, 2, 2, -5, -5,
        -5, 2, -1, 2, -5, -5,
        -5, 2, 2, 2, -5, -5,
    };
    samc_error err = { 0 };
    CHECK(amg_fill_small_regions(l, 6, 4, 0.0, 1, &err) == 0);
    CHECK(l[2 * 6 + 2] == 10.0f);   /* hole: thr + 10 */
    CHECK(l[5] == -10.0f);          /* sprinkle: thr - 10 */
    CHECK(l[0] == -5.0f && l[1 * 6 + 1] == 2.0f && l[1 * 6 + 5] == -5.0f);
    /* a diagonal neighbour joins a region: the 3 at the corner is no sprinkle once the
     * ring reaches (4, 1) */
    float j[24];
    memcpy(j, (const float[24]){ -5, -5, -5, -5, -5, 3, -5, 2, 2, 2, 2, -5, -5, 2, -1, 2, 2, -5,
                                 -5, 2, 2, 2, 2, -5 }, sizeof j);
    CHECK(amg_fill_small_regions(j, 6, 4, 0.0, 1, &err) == 0 && j[5] == 3.0f);
    /* max area 0 changes nothing; the sprinkle and hole are measured before either flip */
    float k[4] = { 1, -1, -1, -1 };
    CHECK(amg_fill_small_regions(k, 2, 2, 0.0, 0, &err) == 0 && k[0] == 1.0f && k[3] == -1.0f);
    CHECK(amg_fill_small_regions(k, 2, 2, 0.0, 3, &err) == 0);
    CHECK(k[0] == -10.0f && k[1] == 10.0f && k[3] == 10.0f);
}

static void test_postprocess_small_regions(void) {
    /* two masks on an 8 x 6 image: A a 3 x 3 square with a one-pixel hole (changed),
     * B a 2 x 2 square elsewhere (unchanged). Unchanged masks come first after the NMS. */
    int w = 8, h = 6;
    uint8_t a[48] = { 0 }, b[48] = { 0 }, back[48];
    for (int y = 1; y <= 3; y++)
        for (int x = 1; x <= 3; x++) a[y * w + x] = 1;
    a[2 * w + 2] = 0;
    b[4 * w + 5] = b[4 * w + 6] = b[5 * w + 5] = b[5 * w + 6] = 1;
    amg_result r = { .width = w, .height = h, .n_masks = 2 };
    r.masks = calloc(2, sizeof *r.masks);
    samc_error err = { 0 };
    CHECK(amg_rle_encode(a, w, h, 0, 0, w, h, &r.masks[0].counts, &r.masks[0].n_counts, &err) == 0);
    CHECK(amg_rle_encode(b, w, h, 0, 0, w, h, &r.masks[1].counts, &r.masks[1].n_counts, &err) == 0);
    r.masks[0].area = amg_mask_box(a, w, h, r.masks[0].box);
    r.masks[1].area = amg_mask_box(b, w, h, r.masks[1].box);
    r.masks[0].predicted_iou = 0.9f;
    r.masks[1].predicted_iou = 0.8f;
    CHECK(amg_postprocess_small_regions(&r, 2, 0.7, &err) == 2);
    CHECK(r.n_masks == 2);
    CHECK(r.masks[0].predicted_iou == 0.8f && r.masks[0].area == 4);
    CHECK(r.masks[1].predicted_iou == 0.9f && r.masks[1].area == 9);
    CHECK(amg_rle_decode(r.masks[1].counts, r.masks[1].n_counts, w, h, back, &err) == 0 && back[2 * w + 2] == 1);
    amg_result_free(&r);
}

static void test_options(void) {
    amg_options o;
    samc_error err = { 0 };
    amg_options_default(&o);
    CHECK(amg_options_check(&o, &err) == 0);
    CHECK(o.points_per_side == 32 && o.points_per_batch == 64 && o.pred_iou_thresh == 0.8);
    CHECK(o.stability_score_thresh == 0.95 && o.stability_score_offset == 1.0 && o.box_nms_thresh == 0.7);
    CHECK(o.crop_n_layers == 0 && o.crop_nms_thresh == 0.7 && o.crop_overlap_ratio == 512.0 / 1500.0);
    CHECK(o.crop_n_points_downscale_factor == 1 && o.min_mask_region_area == 0 && o.multimask_output == 1);
    o.points_per_side = 0;
    CHECK(amg_options_check(&o, &err) != 0 && strstr(err.msg, "points_per_side"));
    amg_options_default(&o);
    o.pred_iou_thresh = NAN;
    CHECK(amg_options_check(&o, &err) != 0 && strstr(err.msg, "pred_iou_thresh"));
    amg_options_default(&o);
    o.crop_n_layers = 3;
    o.crop_n_points_downscale_factor = 4;   /* 32 / 64 points per side in layer 3 */
    CHECK(amg_options_check(&o, &err) != 0 && strstr(err.msg, "crop layer 3"));
}

TEST_MAIN(TEST_CASE(test_options), TEST_CASE(test_point_grid), TEST_CASE(test_crop_boxes),
          TEST_CASE(test_mask_box), TEST_CASE(test_rle), TEST_CASE(test_rle_paint_box), TEST_CASE(test_nms), TEST_CASE(test_stability),
          TEST_CASE(test_remove_small_regions), TEST_CASE(test_fill_small_regions),
          TEST_CASE(test_postprocess_small_regions), TEST_CASE(test_unit_amg_discs_golden),
          TEST_CASE(test_discs_with_crops), TEST_CASE(test_micro_amg_golden), TEST_CASE(test_micro_generate_samc),
          TEST_CASE(test_backend_post_cpu), TEST_CASE(test_backend_post_cuda))
