/* tests/test_mosaic_multipass.c: the multi-pass segmentation of one tile
 * (pipelines/mosaic/multipass.c), and amg_options.point_grid (pipelines/amg/amg.c) that it relies on.
 *
 * Most tests run the passes on an analytic mask source (rectangles and discs returned as
 * RLE masks with chosen predicted IoU and stability, whenever a prompt point falls inside
 * them and they pass the call's thresholds), which records every call: the points, the
 * thresholds, the image it was shown and the image_changed flag. The building blocks are
 * checked against numpy's values (the uniform grid) and slow references (erosion). The
 * last test runs the micro synthetic model through mosaic_samc_source. */
#include "tests/test.h"
#include "pipelines/amg/amg.h"
#include "pipelines/mosaic/multipass.h"
#include "convert/convert.h"
#include "model/samc.h"
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------- */

/* A reproducible stream of bits for random masks. */
static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Checks what must hold of any run's output: labels in 0..n_labels, each label used,
 * none on nodata, the coverage equal to the labelled share of the valid pixels, and
 * n_labels equal to the components added over the passes. */
static void check_consistent(const uint32_t *labels, const uint8_t *valid, int w, int h, const mosaic_tile_stats *st) {
    size_t n = (size_t)w * h;
    int64_t labelled = 0, n_valid = 0;
    int *seen = calloc((size_t)st->n_labels + 1, sizeof *seen);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        int v = !valid || valid[i];
        n_valid += v;
        if (labels[i] > (uint32_t)st->n_labels) bad++;
        else if (labels[i]) {
            seen[labels[i]] = 1;
            labelled++;
            if (!v) bad++;
        }
    }
    CHECKF(bad == 0, "%d pixels with a label out of range or on nodata", bad);
    int missing = 0;
    for (int l = 1; l <= st->n_labels; l++) missing += !seen[l];
    CHECKF(missing == 0, "%d of %d labels never used", missing, st->n_labels);
    free(seen);
    CHECKF(st->valid_pixels == n_valid, "valid_pixels %lld, counted %lld", (long long)st->valid_pixels,
           (long long)n_valid);
    double cov = n_valid ? (double)labelled / (double)n_valid * 100.0 : 0.0;
    CHECKF(fabs(st->coverage - cov) < 1e-9, "coverage %.9g, labelled share %.9g", st->coverage, cov);
    if (st->n_passes > 0)
        CHECKF(st->pass[st->n_passes - 1].coverage == st->coverage, "last pass coverage %g, final %g",
               st->pass[st->n_passes - 1].coverage, st->coverage);
    int added = 0;
    for (int p = 0; p < st->n_passes; p++) added += st->pass[p].components_added;
    CHECKF(added == st->n_labels, "%d components added, %d labels", added, st->n_labels);
}

static int64_t count_label(const uint32_t *labels, size_t n, uint32_t l) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += labels[i] == l;
    return c;
}

/* ---- the analytic mask source ----------------------------------------------------- */

typedef struct {
    int n_rects;
    int rect[3][4];      /* x0, y0, x1, y1 (exclusive) */
    int disc[3];         /* cx, cy, r (r = 0: none) */
    float iou, stab;
    int from_call;       /* returned only from this call on */
    int always;          /* returned even when no point falls inside */
} shape;

static int shape_has(const shape *s, int x, int y) {
    for (int r = 0; r < s->n_rects; r++)
        if (x >= s->rect[r][0] && x < s->rect[r][2] && y >= s->rect[r][1] && y < s->rect[r][3]) return 1;
    if (s->disc[2] > 0) {
        int dx = x - s->disc[0], dy = y - s->disc[1];
        if (dx * dx + dy * dy <= s->disc[2] * s->disc[2]) return 1;
    }
    return 0;
}

#define MAX_CALLS 64

typedef struct {
    const shape *shapes;
    int n_shapes;
    int calls;
    double iou[MAX_CALLS], stab[MAX_CALLS];
    int changed[MAX_CALLS], n_points[MAX_CALLS];
    int *points[MAX_CALLS];        /* [n_points][2] in pixels, recovered from points01 */
    uint8_t *image[MAX_CALLS];     /* a copy of the image shown */
    int points_exact;              /* every points01 mapped back to an integer pixel */
    int got_cancel;                /* the run's cancel callback came through */
    int fail_at;                   /* > 0: call number (1-based) that fails */
} fake_source;

static void fake_free(fake_source *f) {
    for (int c = 0; c < f->calls && c < MAX_CALLS; c++) {
        free(f->points[c]);
        free(f->image[c]);
    }
}

static int fake_generate(void *ctx, const uint8_t *rgb, int w, int h, const double *points01, int n_points,
                         double iou, double stability, int image_changed, int (*cancelled)(void *),
                         void *cancel_ctx, amg_result *out, samc_error *err) {
    fake_source *f = ctx;
    int call = f->calls++;
    memset(out, 0, sizeof *out);
    if (f->fail_at == call + 1) {
        snprintf(err->msg, sizeof err->msg, "fake source fails on call %d", call + 1);
        err->status = SAMC_ERR_INTERNAL;
        return -1;
    }
    if (cancelled) f->got_cancel = 1;
    (void)cancel_ctx;
    if (call >= MAX_CALLS) return 0;
    f->iou[call] = iou;
    f->stab[call] = stability;
    f->changed[call] = image_changed;
    f->n_points[call] = n_points;
    f->points[call] = malloc(sizeof(int) * 2 * (size_t)(n_points ? n_points : 1));
    f->image[call] = malloc((size_t)w * h * 3);
    memcpy(f->image[call], rgb, (size_t)w * h * 3);
    for (int k = 0; k < n_points; k++) {
        /* the pixels come back from x / w in float32 */
        double px = points01[2 * k] * w, py = points01[2 * k + 1] * h;
        int x = (int)lround(px), y = (int)lround(py);
        if (fabs(px - x) > 1e-3 || fabs(py - y) > 1e-3 || x < 0 || x >= w || y < 0 || y >= h) f->points_exact = 0;
        f->points[call][2 * k] = x;
        f->points[call][2 * k + 1] = y;
    }
    out->width = w;
    out->height = h;
    out->masks = calloc((size_t)(f->n_shapes ? f->n_shapes : 1), sizeof *out->masks);
    uint8_t *mask = malloc((size_t)w * h);
    if (!out->masks || !mask) {
        free(mask);
        return -1;
    }
    for (int s = 0; s < f->n_shapes; s++) {
        const shape *sh = &f->shapes[s];
        /* SAM2AutomaticMaskGenerator's filters: iou > thresh, stability >= thresh, float32 */
        if (call < sh->from_call || !(sh->iou > (float)iou) || !(sh->stab >= (float)stability)) continue;
        int hit = sh->always;
        for (int k = 0; k < n_points && !hit; k++)
            hit = shape_has(sh, f->points[call][2 * k], f->points[call][2 * k + 1]);
        if (!hit) continue;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) mask[(size_t)y * w + x] = (uint8_t)shape_has(sh, x, y);
        amg_mask *m = &out->masks[out->n_masks];
        if (amg_rle_encode(mask, w, h, 0, 0, w, h, &m->counts, &m->n_counts, err)) {
            free(mask);
            return -1;
        }
        m->area = amg_mask_box(mask, w, h, m->box);
        m->predicted_iou = sh->iou;
        m->stability_score = sh->stab;
        out->n_masks++;
    }
    free(mask);
    return 0;
}

/* A tile image whose pixels are all non-zero, so black-mask painting is visible. */
static uint8_t *make_image(int w, int h) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(1 + (x * 7) % 250);
            p[1] = (uint8_t)(1 + (y * 5) % 250);
            p[2] = (uint8_t)(1 + (x + y) % 250);
        }
    return rgb;
}

typedef struct {
    mosaic_tile_stats st;
    uint32_t *labels;
    int rc;
    samc_error err;
} run_out;

static void run_fake(const mosaic_multipass_options *o, fake_source *f, const uint8_t *rgb, const uint8_t *valid,
                     int w, int h, int (*cancelled)(void *), void *cancel_ctx, run_out *r) {
    memset(r, 0, sizeof *r);
    r->labels = malloc(sizeof *r->labels * (size_t)w * h);
    r->rc = -1;
    mosaic_multipass *mp = mosaic_multipass_new(w, h, o, &r->err);
    CHECKF(mp != NULL, "%s", r->err.msg);
    if (!mp) return;
    mosaic_mask_source src = { .ctx = f, .generate = fake_generate };
    r->rc = mosaic_multipass_run(mp, &src, rgb, valid, w, h, r->labels, &r->st, cancelled, cancel_ctx, &r->err);
    mosaic_multipass_free(mp);
}

static void run_out_free(run_out *r) {
    free(r->labels);
    mosaic_tile_stats_free(&r->st);
}

/* ---- options ---------------------------------------------------------------------- */

static void expect_bad(const mosaic_multipass_options *o, const char *name) {
    samc_error err = { 0 };
    CHECKF(mosaic_multipass_options_check(o, &err) == -1, "%s accepted", name);
    CHECKF(strstr(err.msg, name) != NULL, "message '%s' does not name %s", err.msg, name);
}

static void test_options(void) {
    mosaic_multipass_options d, o;
    mosaic_multipass_options_default(&d);
    samc_error err = { 0 };
    CHECKF(mosaic_multipass_options_check(&d, &err) == 0, "%s", err.msg);
    CHECK(d.points_per_side == 64 && d.iou_start == 0.93 && d.iou_end == 0.60 && d.step == 0.01);
    CHECK(d.target_coverage == 99.0 && d.use_black_mask == 1 && d.min_area == 100 && d.kmeans_points == 64);
    CHECK(d.point_strategy == MOSAIC_POINTS_KMEANS && d.max_passes == 0 && d.box_nms_thresh == 0.7);
    o = d; o.points_per_side = 0; expect_bad(&o, "points_per_side");
    o = d; o.iou_end = 0.95; expect_bad(&o, "iou_end");
    o = d; o.stability_start = 1.5; expect_bad(&o, "stability_start");
    o = d; o.stability_end = NAN; expect_bad(&o, "stability_end");
    o = d; o.step = 0; expect_bad(&o, "step");
    o = d; o.target_coverage = 101; expect_bad(&o, "target_coverage");
    o = d; o.max_passes = -1; expect_bad(&o, "max_passes");
    o = d; o.use_black_mask = 2; expect_bad(&o, "use_black_mask");
    o = d; o.point_strategy = (mosaic_point_strategy)7; expect_bad(&o, "point_strategy");
    o = d; o.erosion = -1; expect_bad(&o, "erosion");
    o = d; o.kmeans_points = 0; expect_bad(&o, "kmeans_points");
    o = d; o.min_area = -5; expect_bad(&o, "min_area");
    o = d; o.points_per_batch = 0; expect_bad(&o, "points_per_batch");
    o = d; o.crop_n_layers = 5; expect_bad(&o, "crop_n_layers");
    o = d; o.box_nms_thresh = -0.1; expect_bad(&o, "box_nms_thresh");
    mosaic_point_strategy s;
    CHECK(mosaic_point_strategy_parse("dense_grid", &s) == 0 && s == MOSAIC_POINTS_DENSE_GRID);
    CHECK(mosaic_point_strategy_parse("kmeans", &s) == 0 && s == MOSAIC_POINTS_KMEANS);
    CHECK(mosaic_point_strategy_parse("grid", &s) == -1);
    CHECK(!strcmp(mosaic_point_strategy_name(MOSAIC_POINTS_DENSE_GRID), "dense_grid"));
    CHECK(!strcmp(mosaic_point_strategy_name(MOSAIC_POINTS_KMEANS), "kmeans"));
    CHECK(mosaic_multipass_new(0, 10, &d, &err) == NULL && strstr(err.msg, "0x10"));
}

/* ---- amg_options.point_grid ------------------------------------------------------- */

static void test_amg_point_grid_options(void) {
    amg_options o;
    amg_options_default(&o);
    samc_error err = { 0 };
    double g[6] = { 0.25, 0.5, 0.0, 1.0, 0.75, 0.125 };
    o.point_grid = g;
    o.point_grid_n = 3;
    o.points_per_side = 0;   /* ignored with a point grid */
    CHECKF(amg_options_check(&o, &err) == 0, "%s", err.msg);
    o.point_grid_n = 0;
    CHECK(amg_options_check(&o, &err) == -1 && strstr(err.msg, "point_grid_n"));
    o.point_grid_n = 3;
    g[3] = 1.5;
    CHECK(amg_options_check(&o, &err) == -1 && strstr(err.msg, "point_grid[1][1]"));
    g[3] = NAN;
    CHECK(amg_options_check(&o, &err) == -1 && strstr(err.msg, "point_grid"));
    g[3] = 1.0;
    g[4] = -0.0001;
    CHECK(amg_options_check(&o, &err) == -1 && strstr(err.msg, "point_grid[2][0]"));
    o.point_grid = NULL;
    CHECK(amg_options_check(&o, &err) == -1 && strstr(err.msg, "point_grid_n"));
    o.point_grid_n = 0;
    CHECK(amg_options_check(&o, &err) == -1 && strstr(err.msg, "points_per_side"));
}

/* An analytic amg_source: a disc of radius 6 around each point (logit 6 - distance),
 * predicted IoU from the point's position, so the masks depend on the points. */
typedef struct {
    int crop[4];
    float pts[4096 * 2];
    int n;
    int crops_seen;
} disc_source;

static int disc_set_crop(void *ctx, const int crop[4], samc_error *err) {
    disc_source *d = ctx;
    memcpy(d->crop, crop, sizeof d->crop);
    d->crops_seen++;
    return 0;
}

static int disc_predict(void *ctx, const float *points, int n, float *iou, samc_error *err) {
    disc_source *d = ctx;
    memcpy(d->pts, points, sizeof(float) * 2 * (size_t)n);
    d->n = n;
    for (int i = 0; i < 3 * n; i++) iou[i] = 0.85f + 0.001f * (float)(i % 97);
    return 0;
}

static int disc_logits(void *ctx, int point, int token, float *out, samc_error *err) {
    disc_source *d = ctx;
    int cw = d->crop[2] - d->crop[0], ch = d->crop[3] - d->crop[1];
    float r = 4.0f + 3.0f * (float)token;
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            float dx = (float)x - d->pts[2 * point], dy = (float)y - d->pts[2 * point + 1];
            out[(size_t)y * cw + x] = 4.0f * (r - sqrtf(dx * dx + dy * dy));
        }
    return 0;
}

static void same_result(const amg_result *a, const amg_result *b) {
    CHECKF(a->n_masks == b->n_masks, "%d vs %d masks", a->n_masks, b->n_masks);
    if (a->n_masks != b->n_masks) return;
    int diff = 0;
    for (int k = 0; k < a->n_masks; k++) {
        const amg_mask *x = &a->masks[k], *y = &b->masks[k];
        diff += x->n_counts != y->n_counts || memcmp(x->counts, y->counts, sizeof *x->counts * (size_t)x->n_counts) ||
                x->predicted_iou != y->predicted_iou || x->stability_score != y->stability_score ||
                x->point[0] != y->point[0] || x->point[1] != y->point[1] || memcmp(x->box, y->box, sizeof x->box);
    }
    CHECKF(diff == 0, "%d masks differ", diff);
}

/* point_grid = build_point_grid(n) must give what points_per_side = n gives, in every
 * crop layer; any other grid is prompted as given, in each crop. */
static void test_amg_point_grid_generate(void) {
    const int w = 90, h = 70;
    disc_source d = { 0 };
    amg_source src = { .ctx = &d, .set_crop = disc_set_crop, .predict = disc_predict, .mask_logits = disc_logits };
    samc_error err = { 0 };
    for (int layers = 0; layers <= 1; layers++) {
        amg_options o;
        amg_options_default(&o);
        o.points_per_side = 6;
        o.points_per_batch = 10;
        o.crop_n_layers = layers;
        o.pred_iou_thresh = 0.86;
        o.stability_score_thresh = 0.5;
        amg_result a = { 0 }, b = { 0 };
        CHECKF(amg_generate(&src, w, h, &o, &a, &err) == 0, "%s", err.msg);
        double grid[36 * 2];
        amg_point_grid(6, grid);
        o.point_grid = grid;
        o.point_grid_n = 36;
        o.points_per_side = 1;   /* ignored */
        CHECKF(amg_generate(&src, w, h, &o, &b, &err) == 0, "%s", err.msg);
        CHECK(a.n_masks > 0);
        CHECKF(a.stats.n_points == b.stats.n_points, "%d vs %d points", a.stats.n_points, b.stats.n_points);
        same_result(&a, &b);
        amg_result_free(&a);
        amg_result_free(&b);
    }
    /* a free grid of 5 points with one crop layer: 5 points in each of the 5 crops */
    double g[10] = { 0.1, 0.2, 0.5, 0.5, 0.9, 0.25, 0.3, 0.8, 0.7, 0.7 };
    amg_options o;
    amg_options_default(&o);
    o.point_grid = g;
    o.point_grid_n = 5;
    o.crop_n_layers = 1;
    o.pred_iou_thresh = 0.0;
    o.stability_score_thresh = 0.0;
    amg_result r = { 0 };
    d.crops_seen = 0;
    CHECKF(amg_generate(&src, w, h, &o, &r, &err) == 0, "%s", err.msg);
    CHECKF(r.stats.n_points == 25 && r.stats.n_crops == 5 && d.crops_seen == 5, "%d points, %d crops",
           r.stats.n_points, r.stats.n_crops);
    /* the whole-image crop's masks carry its points: g * (w, h) in float64, then float32 */
    int found = 0;
    for (int k = 0; k < r.n_masks; k++)
        if (r.masks[k].crop_box[2] == w && r.masks[k].crop_box[3] == h && r.masks[k].crop_box[0] == 0)
            for (int i = 0; i < 5; i++)
                found += r.masks[k].point[0] == (float)(g[2 * i] * w) &&
                         r.masks[k].point[1] == (float)(g[2 * i + 1] * h);
    CHECKF(found > 0, "no whole-image mask at one of the given points");
    amg_result_free(&r);
}

/* amg_rle_decode (which the passes call once per mask) against a pixel-by-pixel
 * reference, on random run lists, zero-length runs included, and its two failures. */
static void test_rle_decode(void) {
    static const int sizes[][2] = { { 1, 1 }, { 1, 9 }, { 9, 1 }, { 13, 7 }, { 64, 48 } };
    uint32_t seed = 777;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        uint32_t total = (uint32_t)(w * h), counts[4096];
        uint8_t *got = malloc(total), *ref = malloc(total), *back = malloc(total);
        for (int trial = 0; trial < 20; trial++) {
            int64_t nc = 0;
            uint32_t used = 0;
            while (used < total) {
                uint32_t len = lcg(&seed) % (trial % 2 ? 5u : 40u);
                if (len > total - used) len = total - used;
                counts[nc++] = len;
                used += len;
            }
            uint32_t idx = 0;
            for (int64_t k = 0; k < nc; k++)
                for (uint32_t e = idx + counts[k]; idx < e; idx++)
                    ref[(idx % (uint32_t)h) * (uint32_t)w + idx / (uint32_t)h] = (uint8_t)(k & 1);
            samc_error err = { 0 };
            memset(got, 7, total);
            CHECKF(amg_rle_decode(counts, nc, w, h, got, &err) == 0, "%s", err.msg);
            CHECKF(!memcmp(got, ref, total), "%dx%d trial %d: decode differs from the reference", w, h, trial);
            /* and back: the canonical RLE decodes to the same mask */
            uint32_t *c2 = NULL;
            int64_t n2 = 0;
            CHECK(amg_rle_encode(ref, w, h, 0, 0, w, h, &c2, &n2, &err) == 0);
            CHECK(c2 && amg_rle_decode(c2, n2, w, h, back, &err) == 0 && !memcmp(back, ref, total));
            free(c2);
        }
        samc_error err = { 0 };
        uint32_t longer[2] = { total, 1 }, shorter[1] = { total - 1 };
        CHECK(amg_rle_decode(longer, 2, w, h, got, &err) == -1 && strstr(err.msg, "goes past"));
        CHECK(amg_rle_decode(shorter, 1, w, h, got, &err) == -1 && strstr(err.msg, "cover"));
        free(got); free(ref); free(back);
    }
}

/* ---- building blocks -------------------------------------------------------------- */

/* int(np.linspace(0, n_px - 1, n)[i]) as exact rational floor; numpy's float steps
 * differ from it at the listed (n_px, n, i), where numpy's value is given. */
static int grid_expected(int n_px, int n, int i) {
    static const int numpy_exceptions[][4] = { { 154, 64, 21, 50 }, { 154, 64, 42, 101 }, { 154, 64, 49, 118 },
                                               { 162, 64, 45, 114 }, { 1100, 64, 27, 470 }, { 1100, 64, 45, 784 },
                                               { 1100, 64, 54, 941 } };
    for (size_t e = 0; e < sizeof numpy_exceptions / sizeof numpy_exceptions[0]; e++)
        if (numpy_exceptions[e][0] == n_px && numpy_exceptions[e][1] == n && numpy_exceptions[e][2] == i)
            return numpy_exceptions[e][3];
    if (n == 1) return 0;
    return (int)((int64_t)i * (n_px - 1) / (n - 1));
}

static void test_uniform_grid(void) {
    static const int sizes[][3] = { { 100, 60, 4 }, { 7, 5, 8 }, { 1, 3, 2 }, { 154, 162, 64 }, { 1100, 1100, 64 },
                                    { 333, 77, 5 }, { 50, 40, 1 } };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1], n = sizes[s][2];
        int *g = malloc(sizeof(int) * 2 * (size_t)n * n);
        mosaic_uniform_grid(w, h, n, g);
        int bad = 0;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++) {
                size_t k = (size_t)j * n + i;
                bad += g[2 * k] != grid_expected(w, n, i) || g[2 * k + 1] != grid_expected(h, n, j);
            }
        CHECKF(bad == 0, "%dx%d n=%d: %d points differ", w, h, n, bad);
        free(g);
    }
    /* numpy's own values for two of them */
    int g[64 * 2];
    mosaic_uniform_grid(100, 60, 4, g);
    const int x4[4] = { 0, 33, 66, 99 }, y4[4] = { 0, 19, 39, 59 };
    for (int i = 0; i < 4; i++) CHECK(g[2 * i] == x4[i] && g[2 * (4 * i) + 1] == y4[i]);
    mosaic_uniform_grid(7, 5, 8, g);
    const int x8[8] = { 0, 0, 1, 2, 3, 4, 5, 6 }, y8[8] = { 0, 0, 1, 1, 2, 2, 3, 4 };
    for (int i = 0; i < 8; i++) CHECK(g[2 * i] == x8[i] && g[2 * (8 * i) + 1] == y8[i]);
}

/* Erosion by the cross `it` times with a zero border = erosion by the L1 ball of radius
 * `it` on the image padded with zeros. */
static void erode_reference(const uint8_t *in, uint8_t *out, int w, int h, int it) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int v = 1;
            for (int dy = -it; dy <= it && v; dy++)
                for (int dx = -it; dx <= it && v; dx++) {
                    if (abs(dx) + abs(dy) > it) continue;
                    int xx = x + dx, yy = y + dy;
                    v = xx >= 0 && xx < w && yy >= 0 && yy < h && in[(size_t)yy * w + xx];
                }
            out[(size_t)y * w + x] = (uint8_t)v;
        }
}

static void test_erode(void) {
    static const int sizes[][2] = { { 1, 1 }, { 1, 7 }, { 9, 6 }, { 23, 17 }, { 40, 31 } };
    uint32_t seed = 12345;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        size_t n = (size_t)w * h;
        uint8_t *in = malloc(n), *ok = malloc(n), *tmp = malloc(n), *ref = malloc(n);
        for (int density = 0; density < 3; density++) {
            for (size_t i = 0; i < n; i++)
                in[i] = density == 2 ? 1 : (uint8_t)(lcg(&seed) % 16 < (density ? 15u : 11u));
            for (int it = 0; it <= 4; it++) {
                memcpy(ok, in, n);
                mosaic_erode(ok, tmp, w, h, it);
                erode_reference(in, ref, w, h, it);
                CHECKF(!memcmp(ok, ref, n), "%dx%d, density %d, %d iterations: differs from the reference", w, h,
                       density, it);
            }
        }
        free(in); free(ok); free(tmp); free(ref);
    }
    /* the border counts as segmented: an all-ones 5x5 keeps its inner 3x3, then its centre */
    uint8_t ok[25], tmp[25];
    memset(ok, 1, sizeof ok);
    mosaic_erode(ok, tmp, 5, 5, 1);
    int inner = 0, total = 0;
    for (int i = 0; i < 25; i++) {
        total += ok[i];
        inner += ok[i] && i / 5 >= 1 && i / 5 <= 3 && i % 5 >= 1 && i % 5 <= 3;
    }
    CHECK(total == 9 && inner == 9);
    mosaic_erode(ok, tmp, 5, 5, 1);
    CHECK(ok[12] == 1);
    total = 0;
    for (int i = 0; i < 25; i++) total += ok[i];
    CHECK(total == 1);
}

static void check_points_in(const int *pts, int n, const uint8_t *ok, int w, int h, const char *what) {
    int bad = 0;
    for (int k = 0; k < n; k++) {
        int x = pts[2 * k], y = pts[2 * k + 1];
        bad += x < 0 || x >= w || y < 0 || y >= h || !ok[(size_t)y * w + x];
    }
    CHECKF(bad == 0, "%s: %d of %d points outside the ok pixels", what, bad, n);
}

static void test_kmeans(void) {
    const int w = 300, h = 200;
    uint8_t *ok = calloc((size_t)w * h, 1);
    int pts[64 * 2], again[64 * 2];
    CHECK(mosaic_kmeans_points(ok, w, h, 16, 42, pts) == 0);
    /* few ok pixels: all of them, in row-major order */
    const int few[5][2] = { { 7, 3 }, { 250, 3 }, { 0, 50 }, { 120, 120 }, { 299, 199 } };
    for (int i = 0; i < 5; i++) ok[few[i][1] * w + few[i][0]] = 1;
    int n = mosaic_kmeans_points(ok, w, h, 8, 42, pts);
    CHECKF(n == 5, "%d points", n);
    for (int i = 0; i < 5 && n == 5; i++) CHECK(pts[2 * i] == few[i][0] && pts[2 * i + 1] == few[i][1]);
    memset(ok, 0, (size_t)w * h);

    /* a 40x40 square (all of its pixels are the sample): spread, distinct points */
    for (int y = 50; y < 90; y++)
        for (int x = 100; x < 140; x++) ok[y * w + x] = 1;
    n = mosaic_kmeans_points(ok, w, h, 8, 42, pts);
    CHECKF(n == 8, "%d points", n);
    check_points_in(pts, n, ok, w, h, "square");
    int dup = 0;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) dup += pts[2 * a] == pts[2 * b] && pts[2 * a + 1] == pts[2 * b + 1];
    CHECKF(dup == 0, "%d duplicate points", dup);
    CHECK(mosaic_kmeans_points(ok, w, h, 8, 42, again) == 8 && !memcmp(pts, again, sizeof(int) * 16));

    /* two blobs with more ok pixels than the 10000 samples: rejection sampling */
    memset(ok, 0, (size_t)w * h);
    int64_t n_ok = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int in_rect = x >= 10 && x < 60 && y >= 20 && y < 80;
            int in_disc = (x - 220) * (x - 220) + (y - 120) * (y - 120) <= 50 * 50;
            ok[y * w + x] = (uint8_t)(in_rect || in_disc);
            n_ok += ok[y * w + x];
        }
    CHECK(n_ok > 10000);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        n = mosaic_kmeans_points(ok, w, h, 16, seed, pts);
        CHECKF(n == 16, "seed %llu: %d points", (unsigned long long)seed, n);
        check_points_in(pts, n, ok, w, h, "two blobs");
        int in_rect = 0, in_disc = 0;
        for (int k = 0; k < n; k++) {
            if (pts[2 * k] < 60) in_rect++;
            else in_disc++;
        }
        CHECKF(in_rect >= 2 && in_disc >= 2, "seed %llu: %d points in the rectangle, %d in the disc",
               (unsigned long long)seed, in_rect, in_disc);
        CHECK(mosaic_kmeans_points(ok, w, h, 16, seed, again) == 16 && !memcmp(pts, again, sizeof(int) * 32));
    }
    free(ok);
}

/* ---- the passes on the analytic source -------------------------------------------- */

static void base_options(mosaic_multipass_options *o) {
    mosaic_multipass_options_default(o);
    o->point_strategy = MOSAIC_POINTS_DENSE_GRID;
    o->points_per_side = 16;
    o->min_area = 50;
}

/* Pass 0 prompts the uniform grid (valid pixels only), normalized in float32. */
static void test_pass0_points(void) {
    static const int sizes[][3] = { { 90, 50, 8 }, { 64, 64, 16 }, { 37, 101, 5 } };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1], n = sizes[s][2];
        mosaic_multipass_options o;
        base_options(&o);
        o.points_per_side = n;
        o.max_passes = 1;
        fake_source f = { .points_exact = 1 };
        uint8_t *rgb = make_image(w, h);
        run_out r;
        run_fake(&o, &f, rgb, NULL, w, h, NULL, NULL, &r);
        CHECKF(r.rc == 0, "%s", r.err.msg);
        CHECK(f.calls == 1 && r.st.n_passes == 1 && f.points_exact);
        int *g = malloc(sizeof(int) * 2 * (size_t)n * n);
        mosaic_uniform_grid(w, h, n, g);
        CHECKF(f.n_points[0] == n * n, "%d points", f.n_points[0]);
        if (f.n_points[0] == n * n) CHECK(!memcmp(g, f.points[0], sizeof(int) * 2 * (size_t)n * n));
        CHECK(f.changed[0] == 1 && !memcmp(f.image[0], rgb, (size_t)w * h * 3));
        CHECK(r.st.pass[0].n_points == n * n && r.st.pass[0].iou == o.iou_start &&
              r.st.pass[0].stability == o.stability_start);

        /* the same with the left third nodata: those grid points are dropped */
        uint8_t *valid = malloc((size_t)w * h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) valid[y * w + x] = x >= w / 3;
        fake_source f2 = { .points_exact = 1 };
        run_out r2;
        run_fake(&o, &f2, rgb, valid, w, h, NULL, NULL, &r2);
        int expect = 0;
        for (int k = 0; k < n * n; k++) expect += g[2 * k] >= w / 3;
        CHECKF(f2.n_points[0] == expect, "%d points on valid pixels, expected %d", f2.n_points[0], expect);
        check_points_in(f2.points[0], f2.n_points[0], valid, w, h, "pass 0 with nodata");
        free(valid);
        free(g);
        free(rgb);
        fake_free(&f);
        fake_free(&f2);
        run_out_free(&r);
        run_out_free(&r2);
    }
}

/* dense_grid: later passes prompt the grid points where the eroded unsegmented area is. */
static void test_dense_grid(void) {
    const int w = 64, h = 48;
    shape shapes[] = { { .n_rects = 1, .rect = { { 0, 0, 30, 48 } }, .iou = 0.95f, .stab = 0.95f } };
    for (int erosion = 0; erosion <= 3; erosion += 3) {
        mosaic_multipass_options o;
        base_options(&o);
        o.erosion = erosion;
        o.max_passes = 2;
        fake_source f = { .shapes = shapes, .n_shapes = 1, .points_exact = 1 };
        uint8_t *rgb = make_image(w, h);
        run_out r;
        run_fake(&o, &f, rgb, NULL, w, h, NULL, NULL, &r);
        CHECKF(r.rc == 0, "%s", r.err.msg);
        CHECK(f.calls == 2 && r.st.n_labels == 1);
        uint8_t un[64 * 48], er[64 * 48];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) un[y * w + x] = x >= 30;
        erode_reference(un, er, w, h, erosion);
        int g[16 * 16 * 2], expect = 0, same = 1;
        mosaic_uniform_grid(w, h, 16, g);
        for (int k = 0; k < 256; k++) {
            if (!er[g[2 * k + 1] * w + g[2 * k]]) continue;
            same &= expect < f.n_points[1] && f.points[1][2 * expect] == g[2 * k] &&
                    f.points[1][2 * expect + 1] == g[2 * k + 1];
            expect++;
        }
        CHECKF(f.n_points[1] == expect && same, "erosion %d: pass 1 has %d points, expected %d (same: %d)", erosion,
               f.n_points[1], expect, same);
        CHECK(r.st.pass[1].n_points == f.n_points[1]);
        free(rgb);
        fake_free(&f);
        run_out_free(&r);
    }
}

/* The acceptance rules of one pass. */
static void test_acceptance(void) {
    const int w = 120, h = 80;
    shape shapes[] = {
        /* S1 -> label 1 */
        { .n_rects = 1, .rect = { { 0, 0, 40, 40 } }, .iou = 0.95f, .stab = 0.95f },
        /* half covered by S1: rejected */
        { .n_rects = 1, .rect = { { 20, 0, 60, 40 } }, .iou = 0.95f, .stab = 0.95f },
        /* 760 of 1600 covered: accepted, label 2 only where S1 did not label */
        { .n_rects = 1, .rect = { { 21, 0, 61, 40 } }, .iou = 0.95f, .stab = 0.95f },
        /* three pieces: raster order gives the right one label 3 and the left one 4; the
         * 6-pixel one is too small */
        { .n_rects = 3, .rect = { { 100, 0, 110, 10 }, { 70, 5, 90, 15 }, { 100, 70, 103, 72 } }, .iou = 0.95f,
          .stab = 0.95f },
        /* too small */
        { .n_rects = 1, .rect = { { 0, 70, 5, 75 } }, .iou = 0.95f, .stab = 0.95f },
        /* squares touching at a corner: two 4-connected components, labels 5 and 6 */
        { .n_rects = 2, .rect = { { 40, 50, 50, 60 }, { 50, 60, 60, 70 } }, .iou = 0.95f, .stab = 0.95f },
        /* below the IoU threshold: never returned */
        { .n_rects = 1, .rect = { { 110, 30, 120, 80 } }, .iou = 0.9f, .stab = 0.99f },
    };
    mosaic_multipass_options o;
    base_options(&o);
    o.max_passes = 1;
    fake_source f = { .shapes = shapes, .n_shapes = 7, .points_exact = 1 };
    uint8_t *rgb = make_image(w, h);
    run_out r;
    run_fake(&o, &f, rgb, NULL, w, h, NULL, NULL, &r);
    CHECKF(r.rc == 0, "%s", r.err.msg);
    const mosaic_pass_stats *p = &r.st.pass[0];
    CHECKF(p->masks_generated == 6 && p->components_added == 6 && p->filtered_small == 2 && p->filtered_overlap == 1,
           "generated %d, added %d, small %d, overlap %d", p->masks_generated, p->components_added, p->filtered_small,
           p->filtered_overlap);
    CHECK(r.st.n_labels == 6);
    size_t n = (size_t)w * h;
    const uint32_t *L = r.labels;
    CHECK(count_label(L, n, 1) == 40 * 40 && count_label(L, n, 2) == 21 * 40);
    CHECK(L[10 * w + 30] == 1 && L[10 * w + 50] == 2 && L[10 * w + 60] == 2 && L[10 * w + 61] == 0);
    CHECK(L[0 * w + 100] == 3 && count_label(L, n, 3) == 100);
    CHECK(L[5 * w + 70] == 4 && count_label(L, n, 4) == 200);
    CHECK(L[50 * w + 40] == 5 && L[60 * w + 50] == 6 && count_label(L, n, 5) == 100 && count_label(L, n, 6) == 100);
    CHECK(L[70 * w + 100] == 0 && L[70 * w + 0] == 0 && L[40 * w + 115] == 0);
    CHECKF(fabs(r.st.coverage - 2940.0 / 9600.0 * 100.0) < 1e-12, "coverage %g", r.st.coverage);
    check_consistent(r.labels, NULL, w, h, &r.st);
    run_out_free(&r);
    fake_free(&f);

    /* row ends do not touch the next row's start; min_area itself is enough */
    shape edges[] = { { .n_rects = 2, .rect = { { 115, 60, 120, 62 }, { 0, 55, 5, 64 } }, .iou = 0.95f, .stab = 0.95f,
                        .always = 1 },
                      { .n_rects = 2, .rect = { { 50, 20, 59, 21 }, { 50, 30, 60, 31 } }, .iou = 0.95f, .stab = 0.95f,
                        .always = 1 } };
    o.min_area = 10;
    fake_source fe = { .shapes = edges, .n_shapes = 2, .points_exact = 1 };
    run_fake(&o, &fe, rgb, NULL, w, h, NULL, NULL, &r);
    CHECKF(r.rc == 0, "%s", r.err.msg);
    CHECKF(r.st.n_labels == 3 && r.st.pass[0].filtered_small == 1, "%d labels, %d small", r.st.n_labels,
           r.st.pass[0].filtered_small);
    CHECK(r.labels[55 * w + 0] == 1 && r.labels[60 * w + 115] == 2 && r.labels[30 * w + 50] == 3 &&
          r.labels[20 * w + 50] == 0);
    CHECK(count_label(r.labels, n, 1) == 45 && count_label(r.labels, n, 2) == 10 && count_label(r.labels, n, 3) == 10);
    check_consistent(r.labels, NULL, w, h, &r.st);
    run_out_free(&r);
    fake_free(&fe);
    o.min_area = 50;

    /* sort_by_area: the small square first takes label 1; unsorted, it is covered */
    shape nested[] = { { .n_rects = 1, .rect = { { 0, 0, 40, 40 } }, .iou = 0.95f, .stab = 0.95f },
                       { .n_rects = 1, .rect = { { 0, 0, 20, 20 } }, .iou = 0.95f, .stab = 0.95f } };
    for (int sorted = 0; sorted <= 1; sorted++) {
        o.sort_by_area = sorted;
        fake_source fs = { .shapes = nested, .n_shapes = 2, .points_exact = 1 };
        run_out rs;
        run_fake(&o, &fs, rgb, NULL, w, h, NULL, NULL, &rs);
        CHECKF(rs.rc == 0, "%s", rs.err.msg);
        if (sorted)
            CHECK(rs.st.n_labels == 2 && count_label(rs.labels, n, 1) == 400 && count_label(rs.labels, n, 2) == 1200);
        else
            CHECK(rs.st.n_labels == 1 && count_label(rs.labels, n, 1) == 1600 && rs.st.pass[0].filtered_overlap == 1);
        check_consistent(rs.labels, NULL, w, h, &rs.st);
        run_out_free(&rs);
        fake_free(&fs);
    }
    free(rgb);
}

/* Thresholds drop by step only after a pass without progress, clamp at their ends, and
 * the loop stops after a failing pass at the IoU end. Binary fractions keep it exact. */
static void test_threshold_schedule(void) {
    const int w = 64, h = 64;
    shape shapes[] = { { .n_rects = 1, .rect = { { 0, 0, 32, 64 } }, .iou = 0.99f, .stab = 0.99f },
                       { .n_rects = 1, .rect = { { 32, 0, 64, 32 } }, .iou = 0.78f, .stab = 0.99f } };
    mosaic_multipass_options o;
    base_options(&o);
    o.points_per_side = 8;
    o.iou_start = 0.9375;
    o.iou_end = 0.6875;
    o.stability_start = 0.9375;
    o.stability_end = 0.8125;
    o.step = 0.0625;
    fake_source f = { .shapes = shapes, .n_shapes = 2, .points_exact = 1 };
    uint8_t *rgb = make_image(w, h);
    run_out r;
    run_fake(&o, &f, rgb, NULL, w, h, NULL, NULL, &r);
    CHECKF(r.rc == 0, "%s", r.err.msg);
    const double iou[7] = { 0.9375, 0.9375, 0.875, 0.8125, 0.75, 0.75, 0.6875 };
    const double stab[7] = { 0.9375, 0.9375, 0.875, 0.8125, 0.8125, 0.8125, 0.8125 };
    const int added[7] = { 1, 0, 0, 0, 1, 0, 0 };
    CHECKF(r.st.n_passes == 7 && f.calls == 7, "%d passes, %d calls", r.st.n_passes, f.calls);
    for (int p = 0; p < 7 && p < r.st.n_passes; p++) {
        const mosaic_pass_stats *ps = &r.st.pass[p];
        CHECKF(ps->iou == iou[p] && ps->stability == stab[p] && f.iou[p] == iou[p] && f.stab[p] == stab[p],
               "pass %d: thresholds %g / %g, expected %g / %g", p, ps->iou, ps->stability, iou[p], stab[p]);
        CHECKF(ps->components_added == added[p], "pass %d: %d added", p, ps->components_added);
    }
    CHECK(r.st.final_iou == 0.6875 && r.st.final_stability == 0.8125);
    CHECK(r.st.n_labels == 2 && r.st.coverage == 75.0);
    check_consistent(r.labels, NULL, w, h, &r.st);
    run_out_free(&r);
    fake_free(&f);

    /* no adaptive thresholds: the first pass without progress ends the loop */
    o.adaptive_threshold = 0;
    fake_source fa = { .shapes = shapes, .n_shapes = 2, .points_exact = 1 };
    run_fake(&o, &fa, rgb, NULL, w, h, NULL, NULL, &r);
    CHECK(r.rc == 0 && r.st.n_passes == 2 && r.st.final_iou == 0.9375 && r.st.n_labels == 1);
    run_out_free(&r);
    fake_free(&fa);
    o.adaptive_threshold = 1;

    /* a pass that adds a mask but gains < 0.1 points also lowers the thresholds */
    const int W = 200, H = 100;   /* 0.1% = 20 pixels */
    shape gain[] = { { .n_rects = 1, .rect = { { 0, 0, 100, 100 } }, .iou = 0.99f, .stab = 0.99f },
                     { .n_rects = 1, .rect = { { 150, 40, 155, 43 } }, .iou = 0.99f, .stab = 0.99f, .from_call = 1 },
                     { .n_rects = 1, .rect = { { 100, 0, 200, 100 } }, .iou = 0.99f, .stab = 0.99f, .from_call = 3 } };
    uint8_t *rgb2 = make_image(W, H);
    o.min_area = 5;
    o.points_per_side = 64;
    fake_source fg = { .shapes = gain, .n_shapes = 3, .points_exact = 1 };
    run_fake(&o, &fg, rgb2, NULL, W, H, NULL, NULL, &r);
    CHECKF(r.rc == 0, "%s", r.err.msg);
    CHECKF(r.st.n_passes == 4, "%d passes", r.st.n_passes);
    if (r.st.n_passes == 4) {
        CHECK(r.st.pass[1].components_added == 1 && r.st.pass[1].coverage - r.st.pass[0].coverage < 0.1);
        CHECK(r.st.pass[1].iou == 0.9375 && r.st.pass[2].iou == 0.875 && r.st.pass[3].iou == 0.8125);
        /* the last pass reaches 100% >= target: stops without dropping */
        CHECK(r.st.coverage == 100.0 && r.st.final_iou == 0.8125);
    }
    check_consistent(r.labels, NULL, W, H, &r.st);
    run_out_free(&r);
    fake_free(&fg);
    free(rgb2);
    free(rgb);
}

/* The loop ends at target coverage, at max_passes, when no point is left, and at the
 * end of the thresholds. */
static void test_stops(void) {
    const int w = 50, h = 40;
    uint8_t *rgb = make_image(w, h);
    shape big[] = { { .n_rects = 1, .rect = { { 0, 0, 30, 40 } }, .iou = 0.99f, .stab = 0.99f } };
    mosaic_multipass_options o;
    base_options(&o);
    o.points_per_side = 8;
    o.target_coverage = 50.0;
    fake_source f = { .shapes = big, .n_shapes = 1, .points_exact = 1 };
    run_out r;
    run_fake(&o, &f, rgb, NULL, w, h, NULL, NULL, &r);
    CHECK(r.rc == 0 && r.st.n_passes == 1 && r.st.coverage == 60.0);
    run_out_free(&r);
    fake_free(&f);

    /* nothing ever found: step 0.25 from 0.75 to 0.25 is 3 passes; max_passes 2 cuts it */
    o.target_coverage = 99.0;
    o.iou_start = o.stability_start = 0.75;
    o.iou_end = o.stability_end = 0.25;
    o.step = 0.25;
    fake_source f0 = { .points_exact = 1 };
    run_fake(&o, &f0, rgb, NULL, w, h, NULL, NULL, &r);
    CHECK(r.rc == 0 && r.st.n_passes == 3 && f0.calls == 3 && r.st.final_iou == 0.25 && r.st.n_labels == 0);
    CHECK(f0.iou[0] == 0.75 && f0.iou[1] == 0.5 && f0.iou[2] == 0.25);
    run_out_free(&r);
    fake_free(&f0);
    o.max_passes = 2;
    fake_source f1 = { .points_exact = 1 };
    run_fake(&o, &f1, rgb, NULL, w, h, NULL, NULL, &r);
    CHECK(r.rc == 0 && r.st.n_passes == 2 && f1.calls == 2 && r.st.final_iou == 0.25);
    run_out_free(&r);
    fake_free(&f1);

    /* everything covered except thin strips the erosion removes: no point left */
    o.max_passes = 0;
    o.erosion = 2;
    shape most[] = { { .n_rects = 1, .rect = { { 0, 0, 47, 40 } }, .iou = 0.99f, .stab = 0.99f } };
    fake_source f2 = { .shapes = most, .n_shapes = 1, .points_exact = 1 };
    run_fake(&o, &f2, rgb, NULL, w, h, NULL, NULL, &r);
    CHECK(r.rc == 0 && r.st.n_passes == 1 && f2.calls == 1 && r.st.n_labels == 1);
    run_out_free(&r);
    fake_free(&f2);

    /* a tile with no valid pixel: no pass at all */
    uint8_t *none = calloc((size_t)w * h, 1);
    fake_source f3 = { .shapes = big, .n_shapes = 1, .points_exact = 1 };
    run_fake(&o, &f3, rgb, none, w, h, NULL, NULL, &r);
    CHECK(r.rc == 0 && r.st.n_passes == 0 && f3.calls == 0 && r.st.coverage == 0.0 && r.st.valid_pixels == 0);
    run_out_free(&r);
    fake_free(&f3);
    free(none);
    free(rgb);
}

/* Later passes show the source the tile with covered pixels black; image_changed says
 * whether that differs from the previous call. */
static void test_black_mask(void) {
    const int w = 64, h = 64;
    uint8_t *rgb = make_image(w, h);
    shape shapes[] = { { .n_rects = 1, .rect = { { 0, 0, 20, 64 } }, .iou = 0.99f, .stab = 0.99f },
                       { .n_rects = 1, .rect = { { 40, 0, 64, 64 } }, .iou = 0.99f, .stab = 0.99f, .from_call = 2 } };
    for (int black = 0; black <= 1; black++) {
        mosaic_multipass_options o;
        base_options(&o);
        o.use_black_mask = black;
        o.max_passes = 4;
        fake_source f = { .shapes = shapes, .n_shapes = 2, .points_exact = 1 };
        run_out r;
        run_fake(&o, &f, rgb, NULL, w, h, NULL, NULL, &r);
        CHECKF(r.rc == 0 && f.calls == 4, "%s (%d calls)", r.err.msg, f.calls);
        /* pass 0 adds the left strip, pass 1 nothing, pass 2 the right strip, pass 3 nothing */
        const int changed_black[4] = { 1, 1, 0, 1 }, changed_plain[4] = { 1, 0, 0, 0 };
        for (int c = 0; c < 4 && c < f.calls; c++) {
            CHECKF(f.changed[c] == (black ? changed_black : changed_plain)[c], "black %d, call %d: image_changed %d",
                   black, c, f.changed[c]);
            int wrong = 0;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    size_t i = (size_t)y * w + x;
                    int painted = black && c >= 1 && (x < 20 || (c >= 3 && x >= 40));
                    for (int k = 0; k < 3; k++) wrong += f.image[c][3 * i + k] != (painted ? 0 : rgb[3 * i + k]);
                }
            CHECKF(wrong == 0, "black %d, call %d: %d wrong channel values", black, c, wrong);
        }
        check_consistent(r.labels, NULL, w, h, &r.st);
        run_out_free(&r);
        fake_free(&f);
    }
    free(rgb);
}

/* Nodata: never labelled, never a point, not in the coverage. */
static void test_nodata(void) {
    const int w = 64, h = 64;
    uint8_t *rgb = make_image(w, h);
    uint8_t *valid = malloc((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) valid[y * w + x] = x >= 16;
    shape shapes[] = {
        /* over the nodata edge: only its valid part counts (24 x 64) */
        { .n_rects = 1, .rect = { { 0, 0, 40, 64 } }, .iou = 0.99f, .stab = 0.99f },
        /* inside nodata only (returned without a point in it): no component at all */
        { .n_rects = 1, .rect = { { 0, 0, 10, 10 } }, .iou = 0.99f, .stab = 0.99f, .always = 1 },
    };
    mosaic_multipass_options o;
    base_options(&o);
    o.point_strategy = MOSAIC_POINTS_KMEANS;
    o.kmeans_points = 16;
    o.max_passes = 3;
    fake_source f = { .shapes = shapes, .n_shapes = 2, .points_exact = 1 };
    run_out r;
    run_fake(&o, &f, rgb, valid, w, h, NULL, NULL, &r);
    CHECKF(r.rc == 0, "%s", r.err.msg);
    CHECK(r.st.valid_pixels == 48 * 64 && r.st.n_labels == 1);
    CHECKF(r.st.coverage == 50.0, "coverage %g", r.st.coverage);
    CHECK(count_label(r.labels, (size_t)w * h, 1) == 24 * 64 && r.labels[0] == 0 && r.labels[16] == 1);
    CHECK(r.st.pass[0].masks_generated == 2 && r.st.pass[0].components_added == 1 &&
          r.st.pass[0].filtered_small == 0 && r.st.pass[0].filtered_overlap == 0);
    for (int c = 0; c < f.calls; c++) check_points_in(f.points[c], f.n_points[c], valid, w, h, "nodata");
    check_consistent(r.labels, valid, w, h, &r.st);
    run_out_free(&r);
    fake_free(&f);

    /* a U through nodata: its two valid arms are separate components */
    shape u[] = { { .n_rects = 3, .rect = { { 10, 0, 30, 10 }, { 10, 0, 14, 30 }, { 10, 26, 30, 30 } }, .iou = 0.99f,
                    .stab = 0.99f } };
    o.min_area = 1;
    o.max_passes = 1;
    fake_source fu = { .shapes = u, .n_shapes = 1, .points_exact = 1 };
    run_fake(&o, &fu, rgb, valid, w, h, NULL, NULL, &r);
    CHECK(r.rc == 0 && r.st.n_labels == 2 && count_label(r.labels, (size_t)w * h, 1) == 14 * 10 &&
          count_label(r.labels, (size_t)w * h, 2) == 14 * 4);
    check_consistent(r.labels, valid, w, h, &r.st);
    run_out_free(&r);
    fake_free(&fu);
    free(valid);
    free(rgb);
}

/* k-means passes: points in the unsegmented valid area, the same run to run. */
static void test_kmeans_passes(void) {
    const int w = 96, h = 80;
    uint8_t *rgb = make_image(w, h);
    shape shapes[] = { { .n_rects = 1, .rect = { { 0, 0, 50, 80 } }, .iou = 0.99f, .stab = 0.99f },
                       { .disc = { 70, 40, 12 }, .iou = 0.99f, .stab = 0.99f, .from_call = 1 } };
    mosaic_multipass_options o;
    base_options(&o);
    o.point_strategy = MOSAIC_POINTS_KMEANS;
    o.kmeans_points = 24;
    o.erosion = 1;
    o.max_passes = 3;
    fake_source a = { .shapes = shapes, .n_shapes = 2, .points_exact = 1 };
    fake_source b = { .shapes = shapes, .n_shapes = 2, .points_exact = 1 };
    run_out ra, rb;
    run_fake(&o, &a, rgb, NULL, w, h, NULL, NULL, &ra);
    run_fake(&o, &b, rgb, NULL, w, h, NULL, NULL, &rb);
    CHECKF(ra.rc == 0 && rb.rc == 0, "%s", ra.err.msg);
    CHECK(a.calls == 3 && b.calls == 3 && ra.st.n_labels == 2);
    for (int c = 1; c < a.calls; c++) {
        CHECKF(a.n_points[c] == o.kmeans_points, "pass %d: %d points", c, a.n_points[c]);
        CHECK(a.n_points[c] == b.n_points[c] &&
              !memcmp(a.points[c], b.points[c], sizeof(int) * 2 * (size_t)a.n_points[c]));
        /* outside what the earlier passes covered, eroded once */
        uint8_t *ok = malloc((size_t)w * h), *er = malloc((size_t)w * h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int dx = x - 70, dy = y - 40;
                ok[y * w + x] = x >= 50 && !(c >= 2 && dx * dx + dy * dy <= 144);
            }
        erode_reference(ok, er, w, h, 1);
        check_points_in(a.points[c], a.n_points[c], er, w, h, "k-means pass");
        free(ok);
        free(er);
    }
    CHECK(!memcmp(ra.labels, rb.labels, sizeof *ra.labels * (size_t)w * h));
    check_consistent(ra.labels, NULL, w, h, &ra.st);
    run_out_free(&ra);
    run_out_free(&rb);
    fake_free(&a);
    fake_free(&b);
    free(rgb);
}

static int cancel_on(void *ctx) {
    int *asks = ctx;
    return --asks[0] < 0;
}

static void test_cancel_and_errors(void) {
    const int w = 40, h = 30;
    uint8_t *rgb = make_image(w, h);
    shape shapes[] = { { .n_rects = 1, .rect = { { 0, 0, 20, 30 } }, .iou = 0.99f, .stab = 0.99f } };
    mosaic_multipass_options o;
    base_options(&o);
    o.points_per_side = 8;
    for (int allowed = 0; allowed <= 1; allowed++) {
        int asks = allowed;   /* the first `allowed` asks answer no */
        fake_source f = { .shapes = shapes, .n_shapes = 1, .points_exact = 1 };
        run_out r;
        run_fake(&o, &f, rgb, NULL, w, h, cancel_on, &asks, &r);
        CHECKF(r.rc == -1 && strstr(r.err.msg, "cancelled"), "allowed %d: rc %d, '%s'", allowed, r.rc, r.err.msg);
        CHECK(f.calls == allowed && r.st.n_passes == allowed);
        if (allowed) CHECK(f.got_cancel && r.st.n_labels == 1);
        run_out_free(&r);
        fake_free(&f);
    }
    /* a failing source: its message comes through */
    fake_source f = { .shapes = shapes, .n_shapes = 1, .points_exact = 1, .fail_at = 2 };
    run_out r;
    run_fake(&o, &f, rgb, NULL, w, h, NULL, NULL, &r);
    CHECK(r.rc == -1 && strstr(r.err.msg, "fails on call 2"));
    run_out_free(&r);
    fake_free(&f);
    /* a tile larger than planned */
    mosaic_multipass *mp = mosaic_multipass_new(w - 1, h, &o, &r.err);
    mosaic_mask_source src = { .ctx = &f, .generate = fake_generate };
    mosaic_tile_stats st = { 0 };
    uint32_t *labels = malloc(sizeof *labels * (size_t)w * h);
    samc_error err = { 0 };
    CHECK(mp && mosaic_multipass_run(mp, &src, rgb, NULL, w, h, labels, &st, NULL, NULL, &err) == -1 &&
          strstr(err.msg, "40x30"));
    mosaic_multipass_free(mp);
    mosaic_tile_stats_free(&st);
    free(labels);
    free(rgb);
}

/* ---- the micro model -------------------------------------------------------------- */

static int encodes;
static void count_encodes(void *ctx, const char *line) {
    (void)ctx;
    if (!strncmp(line, "encode: done", 12)) encodes++;
}

/* The samc source as it is, or told that every image changed (so it encodes again). */
typedef struct {
    mosaic_mask_source inner;
    int force_changed;
} wrap_source;

static int wrap_generate(void *ctx, const uint8_t *rgb, int w, int h, const double *points01, int n_points, double iou,
                         double stability, int image_changed, int (*cancelled)(void *), void *cancel_ctx,
                         amg_result *out, samc_error *err) {
    wrap_source *s = ctx;
    return s->inner.generate(s->inner.ctx, rgb, w, h, points01, n_points, iou, stability,
                             s->force_changed ? 1 : image_changed, cancelled, cancel_ctx, out, err);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void test_micro_model(void) {
    char wpath[] = "/tmp/samc_multipass_XXXXXX";
    int fd = mkstemp(wpath);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    samc_error err = { 0 };
    CHECKF(samc_synth_write("micro", wpath, &err) == 0, "%s", err.msg);
    samc_model *m = samc_model_load(wpath, &(samc_options){ .backend = SAMC_BACKEND_AUTO, .log = count_encodes },
                                    &err);
    unlink(wpath);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    /* a synthetic scene: background gradient, two rectangles, a disc */
    const int w = 120, h = 96;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(40 + x / 2);
            p[1] = (uint8_t)(60 + y / 2);
            p[2] = 90;
            if (x >= 10 && x < 50 && y >= 12 && y < 50) { p[0] = 220; p[1] = 30; p[2] = 30; }
            if (x >= 60 && x < 110 && y >= 60 && y < 90) { p[0] = 20; p[1] = 200; p[2] = 40; }
            if ((x - 85) * (x - 85) + (y - 28) * (y - 28) < 18 * 18) { p[0] = 250; p[1] = 250; p[2] = 250; }
        }
    mosaic_multipass_options o;
    mosaic_multipass_options_default(&o);
    o.points_per_side = 8;
    o.points_per_batch = 32;
    o.max_passes = 2;
    o.min_area = 20;
    o.iou_start = o.stability_start = 0.0;
    o.iou_end = o.stability_end = 0.0;
    o.step = 0.1;
    o.kmeans_points = 16;
    uint32_t *labels[2] = { malloc(sizeof(uint32_t) * (size_t)w * h), malloc(sizeof(uint32_t) * (size_t)w * h) };
    mosaic_tile_stats st[2] = { { 0 }, { 0 } };
    int enc[2] = { 0, 0 };
    for (int run = 0; run < 3; run++) {
        /* runs 0 and 1: no black mask, reusing the encoding or not; run 2: black mask */
        o.use_black_mask = run == 2;
        wrap_source ws = { .force_changed = run == 1 };
        mosaic_multipass *mp = mosaic_multipass_new(w, h, &o, &err);
        CHECKF(mp != NULL, "%s", err.msg);
        if (!mp || mosaic_samc_source_new(m, &o, &ws.inner, &err)) {
            CHECKF(0, "%s", err.msg);
            mosaic_multipass_free(mp);
            break;
        }
        mosaic_mask_source src = { .ctx = &ws, .generate = wrap_generate };
        mosaic_tile_stats s = { 0 };
        uint32_t *lab = run < 2 ? labels[run] : malloc(sizeof(uint32_t) * (size_t)w * h);
        encodes = 0;
        double t0 = now_ms();
        int rc = mosaic_multipass_run(mp, &src, rgb, NULL, w, h, lab, &s, NULL, NULL, &err);
        double ms = now_ms() - t0;
        CHECKF(rc == 0, "%s", err.msg);
        CHECKF(s.n_passes == 2, "run %d: %d passes", run, s.n_passes);
        check_consistent(lab, NULL, w, h, &s);
        CHECK(s.n_labels > 0);
        printf("  micro %dx%d, %s: %d passes in %.1f ms (%.1f ms per pass), %d encodes, %d labels, coverage "
               "%.1f%%\n", w, h, run == 0 ? "no black mask, reused encoding" : run == 1 ? "no black mask, re-encoded"
               : "black mask", s.n_passes, ms, ms / (s.n_passes ? s.n_passes : 1), encodes, s.n_labels, s.coverage);
        for (int p = 0; p < s.n_passes; p++)
            printf("    pass %d: %d points, %d masks, %d added, generate %.1f ms, accept %.1f ms\n", p,
                   s.pass[p].n_points, s.pass[p].masks_generated, s.pass[p].components_added, s.pass[p].generate_ms,
                   s.pass[p].accept_ms);
        if (run < 2) {
            st[run] = s;
            enc[run] = encodes;
        } else {
            /* pass 1 sees a new image only if pass 0 covered something */
            int expect = 1 + (s.n_passes > 0 && s.pass[0].components_added > 0);
            CHECKF(encodes == expect, "black mask: %d encodes, expected %d", encodes, expect);
            mosaic_tile_stats_free(&s);
            free(lab);
        }
        mosaic_samc_source_free(&ws.inner);
        mosaic_multipass_free(mp);
    }
    CHECKF(enc[0] == 1 && enc[1] == 2, "encodes: %d reusing, %d re-encoding", enc[0], enc[1]);
    CHECK(st[0].n_passes == st[1].n_passes && st[0].n_labels == st[1].n_labels);
    for (int p = 0; p < st[0].n_passes && p < st[1].n_passes; p++)
        CHECK(st[0].pass[p].masks_generated == st[1].pass[p].masks_generated &&
              st[0].pass[p].n_points == st[1].pass[p].n_points);
    CHECKF(!memcmp(labels[0], labels[1], sizeof(uint32_t) * (size_t)w * h), "labels differ with the encoding reused");
    mosaic_tile_stats_free(&st[0]);
    mosaic_tile_stats_free(&st[1]);
    free(labels[0]);
    free(labels[1]);
    free(rgb);
    samc_model_free(m);
}

/* The multipass loop with the generator's filtering on the host (backend_post -1) and on
 * the model's backend (post_on): the same labels and pass statistics. On the CPU the
 * backend's filtering is the ops' reference twins; on CUDA (or the simulator) its kernels. */
static void run_backend_post(samc_backend be, int post_on) {
    char wpath[] = "/tmp/samc_multipass_XXXXXX";
    int fd = mkstemp(wpath);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    samc_error err = { 0 };
    CHECKF(samc_synth_write("micro", wpath, &err) == 0, "%s", err.msg);
    samc_model *m = samc_model_load(wpath, &(samc_options){ .backend = be, .max_batch = 32 }, &err);
    unlink(wpath);
    if (!m && be == SAMC_BACKEND_CUDA) {
        TEST_SKIP_GPU("no CUDA backend: %s", err.msg);
        return;
    }
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    const int w = 96, h = 72;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            int in = (x - 30) * (x - 30) + (y - 30) * (y - 30) < 20 * 20 || (x > 60 && y > 40);
            p[0] = (uint8_t)(in ? 230 : 30 + x);
            p[1] = (uint8_t)(in ? 40 : 50 + y);
            p[2] = (uint8_t)(in ? 60 : 120);
        }
    mosaic_multipass_options o;
    mosaic_multipass_options_default(&o);
    o.points_per_side = 6;
    o.points_per_batch = 32;
    o.max_passes = 2;
    o.min_area = 20;
    o.iou_start = o.stability_start = 0.3;
    o.iou_end = o.stability_end = 0.1;
    o.step = 0.1;
    o.kmeans_points = 8;
    uint32_t *labels[2] = { malloc(sizeof(uint32_t) * (size_t)w * h), malloc(sizeof(uint32_t) * (size_t)w * h) };
    mosaic_tile_stats st[2] = { { 0 }, { 0 } };
    for (int run = 0; run < 2; run++) {
        o.backend_post = run ? post_on : -1;
        mosaic_mask_source src;
        mosaic_multipass *mp = mosaic_multipass_new(w, h, &o, &err);
        int ok = mp && mosaic_samc_source_new(m, &o, &src, &err) == 0;
        CHECKF(ok, "%s", err.msg);
        if (ok) {
            CHECKF(mosaic_multipass_run(mp, &src, rgb, NULL, w, h, labels[run], &st[run], NULL, NULL, &err) == 0,
                   "%s", err.msg);
            mosaic_samc_source_free(&src);
        }
        mosaic_multipass_free(mp);
    }
    CHECKF(st[0].n_passes == st[1].n_passes && st[0].n_labels == st[1].n_labels, "passes %d / %d, labels %d / %d",
           st[0].n_passes, st[1].n_passes, st[0].n_labels, st[1].n_labels);
    for (int p = 0; p < st[0].n_passes && p < st[1].n_passes; p++)
        CHECKF(st[0].pass[p].masks_generated == st[1].pass[p].masks_generated &&
               st[0].pass[p].components_added == st[1].pass[p].components_added, "pass %d: %d / %d masks", p,
               st[0].pass[p].masks_generated, st[1].pass[p].masks_generated);
    CHECKF(!memcmp(labels[0], labels[1], sizeof(uint32_t) * (size_t)w * h), "the labels differ");
    CHECKF(st[1].n_labels > 0, "nothing was labelled: the comparison tests nothing");
    printf("  %d passes, %d labels, coverage %.1f%%\n", st[1].n_passes, st[1].n_labels, st[1].coverage);
    mosaic_tile_stats_free(&st[0]);
    mosaic_tile_stats_free(&st[1]);
    free(labels[0]);
    free(labels[1]);
    free(rgb);
    samc_model_free(m);
}

static void test_backend_post_cpu(void) { run_backend_post(SAMC_BACKEND_AUTO, 1); }
static void test_backend_post_cuda(void) { run_backend_post(SAMC_BACKEND_CUDA, 0); }

TEST_MAIN(TEST_CASE(test_options), TEST_CASE(test_amg_point_grid_options), TEST_CASE(test_amg_point_grid_generate),
          TEST_CASE(test_rle_decode),
          TEST_CASE(test_uniform_grid), TEST_CASE(test_erode), TEST_CASE(test_kmeans), TEST_CASE(test_pass0_points),
          TEST_CASE(test_dense_grid), TEST_CASE(test_acceptance), TEST_CASE(test_threshold_schedule),
          TEST_CASE(test_stops), TEST_CASE(test_black_mask), TEST_CASE(test_nodata), TEST_CASE(test_kmeans_passes),
          TEST_CASE(test_cancel_and_errors), TEST_CASE(test_micro_model), TEST_CASE(test_backend_post_cpu),
          TEST_CASE(test_backend_post_cuda))
