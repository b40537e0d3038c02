/* pipelines/mosaic/multipass.c: sam-mosaic's multi-pass segmentation of one tile (see multipass.h).
 *
 * Follows core/multipass.py run_multipass_segmentation and the point makers it calls
 * (points/uniform.py make_uniform_grid, points/dense_grid.py make_dense_grid_points,
 * points/filter.py filter_points_by_mask, points/kmeans.py make_kmeans_points); the mask
 * generator is SAM2AutomaticMaskGenerator as sam/predictor.py predict_points_batched
 * builds it, here amg_generate. Every buffer is planned in mosaic_multipass_new; a pass
 * allocates only what the generator returns (freed at the end of the pass) and its entry
 * in the stats array. */
#include "pipelines/mosaic/multipass.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

/* make_kmeans_points: max_samples, seed, and the batches of _sample_valid_coords */
#define KMEANS_MAX_SAMPLES 10000
#define KMEANS_SEED 42
#define KMEANS_MAX_BATCHES 100
#define KMEANS_MAX_BATCH 100000
/* Lloyd iterations of our k-means at most (fewer when an iteration changes no
 * assignment, a fixed point) */
#define KMEANS_ITERATIONS 30
/* run_multipass_segmentation: a pass raising coverage by less than this (percentage
 * points) counts as no progress */
#define MIN_COVERAGE_GAIN 0.1

/* ---- options ---------------------------------------------------------------------- */

int mosaic_point_strategy_parse(const char *s, mosaic_point_strategy *out) {
    if (!s) return -1;
    if (!strcmp(s, "kmeans")) *out = MOSAIC_POINTS_KMEANS;
    else if (!strcmp(s, "dense_grid")) *out = MOSAIC_POINTS_DENSE_GRID;
    else return -1;
    return 0;
}

const char *mosaic_point_strategy_name(mosaic_point_strategy s) {
    switch (s) {
    case MOSAIC_POINTS_KMEANS: return "kmeans";
    case MOSAIC_POINTS_DENSE_GRID: return "dense_grid";
    }
    return "unknown";
}

void mosaic_multipass_options_default(mosaic_multipass_options *o) {
    /* config/default.yaml and SegmentationConfig / ThresholdConfig defaults */
    memset(o, 0, sizeof *o);
    o->points_per_side = 64;
    o->iou_start = 0.93;
    o->iou_end = 0.60;
    o->stability_start = 0.93;
    o->stability_end = 0.60;
    o->step = 0.01;
    o->target_coverage = 99.0;
    o->max_passes = 0;
    o->use_black_mask = 1;
    o->adaptive_threshold = 1;
    o->point_strategy = MOSAIC_POINTS_KMEANS;
    o->erosion = 0;
    o->kmeans_points = 64;
    o->min_area = 100;
    o->sort_by_area = 0;
    o->points_per_batch = 64;
    o->crop_n_layers = 0;
    o->box_nms_thresh = 0.7;
}

static int in_unit(double v) { return v >= 0.0 && v <= 1.0; }

static int check_range(samc_error *err, const char *start_name, double start, const char *end_name, double end) {
    if (!in_unit(start)) return samc_error_set(err, SAMC_ERR_ARG, "multipass: %s %g is not in [0, 1]", start_name, start);
    if (!in_unit(end)) return samc_error_set(err, SAMC_ERR_ARG, "multipass: %s %g is not in [0, 1]", end_name, end);
    if (end > start)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: %s %g is above %s %g (thresholds only go down)", end_name, end,
                       start_name, start);
    return 0;
}

static int check_flag(samc_error *err, const char *name, int v) {
    if (v != 0 && v != 1) return samc_error_set(err, SAMC_ERR_ARG, "multipass: %s %d is not 0 or 1", name, v);
    return 0;
}

int mosaic_multipass_options_check(const mosaic_multipass_options *o, samc_error *err) {
    if (!o) return samc_error_set(err, SAMC_ERR_ARG, "multipass: NULL options");
    if (o->points_per_side < 1 || o->points_per_side > 1024)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: points_per_side %d is not in [1, 1024]", o->points_per_side);
    if (check_range(err, "iou_start", o->iou_start, "iou_end", o->iou_end)) return -1;
    if (check_range(err, "stability_start", o->stability_start, "stability_end", o->stability_end)) return -1;
    if (!(o->step > 0.0 && o->step <= 1.0))
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: step %g is not in (0, 1]", o->step);
    if (!(o->target_coverage >= 0.0 && o->target_coverage <= 100.0))
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: target_coverage %g is not in [0, 100]", o->target_coverage);
    if (o->max_passes < 0)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: max_passes %d is negative (0: no limit)", o->max_passes);
    if (check_flag(err, "use_black_mask", o->use_black_mask) ||
        check_flag(err, "adaptive_threshold", o->adaptive_threshold) ||
        check_flag(err, "sort_by_area", o->sort_by_area))
        return -1;
    if (o->point_strategy != MOSAIC_POINTS_KMEANS && o->point_strategy != MOSAIC_POINTS_DENSE_GRID)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: point_strategy %d is not kmeans or dense_grid",
                       (int)o->point_strategy);
    if (o->erosion < 0 || o->erosion > 10000)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: erosion %d is not in [0, 10000]", o->erosion);
    if (o->kmeans_points < 1 || o->kmeans_points > 4096)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: kmeans_points %d is not in [1, 4096]", o->kmeans_points);
    if (o->min_area < 0 || o->min_area > (1 << 30))
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: min_area %d is not in [0, 2^30]", o->min_area);
    if (o->points_per_batch < 1 || o->points_per_batch > 4096)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: points_per_batch %d is not in [1, 4096]", o->points_per_batch);
    if (o->crop_n_layers < 0 || o->crop_n_layers > 4)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: crop_n_layers %d is not in [0, 4]", o->crop_n_layers);
    if (!in_unit(o->box_nms_thresh))
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: box_nms_thresh %g is not in [0, 1]", o->box_nms_thresh);
    if (o->backend_post < -1 || o->backend_post > 1)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: backend_post %d is not -1, 0 or 1", o->backend_post);
    return 0;
}

void mosaic_tile_stats_free(mosaic_tile_stats *st) {
    if (!st) return;
    free(st->pass);
    memset(st, 0, sizeof *st);
}

/* ---- points ----------------------------------------------------------------------- */

/* int(np.linspace(0, stop, n)[i]): numpy computes start + i * (stop - start) / (n - 1)
 * and sets the last value to stop exactly; astype(int32) truncates. */
static int linspace_int(int stop, int n, int i) {
    if (n == 1) return 0;
    if (i == n - 1) return stop;
    double step = (double)stop / (double)(n - 1);
    return (int)((double)i * step);
}

void mosaic_uniform_grid(int w, int h, int n, int *out) {
    /* make_uniform_grid: np.meshgrid(xs, ys) raveled, x fastest */
    for (int j = 0; j < n; j++) {
        int y = linspace_int(h - 1, n, j);
        for (int i = 0; i < n; i++) {
            size_t k = (size_t)j * n + i;
            out[2 * k] = linspace_int(w - 1, n, i);
            out[2 * k + 1] = y;
        }
    }
}

void mosaic_erode(uint8_t *ok, uint8_t *tmp, int w, int h, int iterations) {
    /* scipy.ndimage.binary_erosion(ok, iterations=n): the default structure is the
     * 4-neighbour cross and border_value is 0, so a pixel on the image edge never survives */
    size_t n = (size_t)w * h;
    for (int it = 0; it < iterations; it++) {
        int any = 0;
        for (int y = 0; y < h; y++) {
            const uint8_t *r = ok + (size_t)y * w;
            uint8_t *t = tmp + (size_t)y * w;
            for (int x = 0; x < w; x++) {
                int v = r[x] && x > 0 && r[x - 1] && x < w - 1 && r[x + 1] && y > 0 && r[x - w] && y < h - 1 &&
                        r[x + w];
                t[x] = (uint8_t)v;
                any |= v;
            }
        }
        memcpy(ok, tmp, n);
        if (!any) break;   /* nothing left to erode */
    }
}

/* splitmix64: a small seeded generator, so the k-means points are the same on every
 * platform and run */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, n) by the multiply-shift of the top 32 bits */
static uint32_t rng_below(uint64_t *s, uint32_t n) {
    return (uint32_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

/* uniform in [0, 1) */
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

typedef struct {
    int cap_k;
    int *sx, *sy;        /* [KMEANS_MAX_SAMPLES] sampled ok pixels */
    int *assign;         /* [KMEANS_MAX_SAMPLES] cluster of each sample */
    double *d2;          /* [KMEANS_MAX_SAMPLES] k-means++: squared distance to the nearest centre */
    double *cx, *cy;     /* [cap_k] centres */
    double *sumx, *sumy; /* [cap_k] */
    int *count;          /* [cap_k] */
} kmeans_work;

static void kmeans_work_free(kmeans_work *kw) {
    free(kw->sx); free(kw->sy); free(kw->assign); free(kw->d2);
    free(kw->cx); free(kw->cy); free(kw->sumx); free(kw->sumy); free(kw->count);
    memset(kw, 0, sizeof *kw);
}

static int kmeans_work_init(kmeans_work *kw, int cap_k) {
    memset(kw, 0, sizeof *kw);
    kw->cap_k = cap_k;
    kw->sx = malloc(sizeof *kw->sx * KMEANS_MAX_SAMPLES);
    kw->sy = malloc(sizeof *kw->sy * KMEANS_MAX_SAMPLES);
    kw->assign = malloc(sizeof *kw->assign * KMEANS_MAX_SAMPLES);
    kw->d2 = malloc(sizeof *kw->d2 * KMEANS_MAX_SAMPLES);
    kw->cx = malloc(sizeof *kw->cx * (size_t)cap_k);
    kw->cy = malloc(sizeof *kw->cy * (size_t)cap_k);
    kw->sumx = malloc(sizeof *kw->sumx * (size_t)cap_k);
    kw->sumy = malloc(sizeof *kw->sumy * (size_t)cap_k);
    kw->count = malloc(sizeof *kw->count * (size_t)cap_k);
    if (!kw->sx || !kw->sy || !kw->assign || !kw->d2 || !kw->cx || !kw->cy || !kw->sumx || !kw->sumy ||
        !kw->count) {
        kmeans_work_free(kw);
        return -1;
    }
    return 0;
}

/* _sample_valid_coords: all ok pixels (row-major) when there are few, else rejection
 * sampling of uniform (y, x) draws, bounded like the tool's 100 batches. Returns how many
 * samples were taken. */
static int sample_ok(const uint8_t *ok, int w, int h, int64_t n_ok, uint64_t *rng, kmeans_work *kw) {
    int ns = 0;
    if (n_ok <= KMEANS_MAX_SAMPLES) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (ok[(size_t)y * w + x]) {
                    kw->sx[ns] = x;
                    kw->sy[ns] = y;
                    ns++;
                }
        return ns;
    }
    double acceptance = (double)n_ok / ((double)w * h);
    int oversample = (int)(1.0 / acceptance) + 1;
    oversample = oversample < 2 ? 2 : oversample > 10 ? 10 : oversample;
    int64_t batch = (int64_t)KMEANS_MAX_SAMPLES * oversample;
    if (batch > KMEANS_MAX_BATCH) batch = KMEANS_MAX_BATCH;
    for (int64_t tries = batch * KMEANS_MAX_BATCHES; tries > 0 && ns < KMEANS_MAX_SAMPLES; tries--) {
        int y = (int)rng_below(rng, (uint32_t)h);
        int x = (int)rng_below(rng, (uint32_t)w);
        if (ok[(size_t)y * w + x]) {
            kw->sx[ns] = x;
            kw->sy[ns] = y;
            ns++;
        }
    }
    return ns;
}

static double dist2(double x0, double y0, double x1, double y1) {
    double dx = x0 - x1, dy = y0 - y1;
    return dx * dx + dy * dy;
}

/* Index of the centre nearest to (x, y); ties go to the lower index. */
static int nearest_centre(const kmeans_work *kw, int k, double x, double y) {
    int best = 0;
    double bd = dist2(x, y, kw->cx[0], kw->cy[0]);
    for (int c = 1; c < k; c++) {
        double d = dist2(x, y, kw->cx[c], kw->cy[c]);
        if (d < bd) { bd = d; best = c; }
    }
    return best;
}

/* make_kmeans_points on an already eroded ok mask, with planned buffers (k <= cap_k). */
static int kmeans_points_ws(const uint8_t *ok, int w, int h, int k, uint64_t seed, int *out, kmeans_work *kw) {
    int64_t n_ok = 0;
    size_t npix = (size_t)w * h;
    for (size_t i = 0; i < npix; i++) n_ok += ok[i] != 0;
    if (n_ok == 0) return 0;
    if (n_ok <= k) {
        /* few ok pixels: all of them, np.argwhere order */
        int n = 0;
        for (size_t i = 0; i < npix; i++)
            if (ok[i]) {
                out[2 * n] = (int)(i % (size_t)w);
                out[2 * n + 1] = (int)(i / (size_t)w);
                n++;
            }
        return n;
    }
    uint64_t rng = seed;
    int ns = sample_ok(ok, w, h, n_ok, &rng, kw);
    if (ns <= k) {
        for (int s = 0; s < ns; s++) {
            out[2 * s] = kw->sx[s];
            out[2 * s + 1] = kw->sy[s];
        }
        return ns;
    }
    /* k-means++ seeding: the first centre uniform, each next one drawn with probability
     * proportional to the squared distance to the nearest centre chosen so far */
    int first = (int)rng_below(&rng, (uint32_t)ns);
    kw->cx[0] = kw->sx[first];
    kw->cy[0] = kw->sy[first];
    for (int s = 0; s < ns; s++) kw->d2[s] = dist2(kw->sx[s], kw->sy[s], kw->cx[0], kw->cy[0]);
    for (int c = 1; c < k; c++) {
        double total = 0.0;
        for (int s = 0; s < ns; s++) total += kw->d2[s];
        int pick = -1;
        if (total > 0.0) {
            /* the sample where the running sum first passes r; rounding can leave r above
             * the last sum, then the last sample that is not a centre yet */
            double r = rng_unit(&rng) * total, acc = 0.0;
            for (int s = 0; s < ns; s++) {
                if (kw->d2[s] <= 0.0) continue;
                pick = s;
                acc += kw->d2[s];
                if (acc > r) break;
            }
        } else {
            pick = (int)rng_below(&rng, (uint32_t)ns);   /* every sample is already a centre */
        }
        kw->cx[c] = kw->sx[pick];
        kw->cy[c] = kw->sy[pick];
        for (int s = 0; s < ns; s++) {
            double d = dist2(kw->sx[s], kw->sy[s], kw->cx[c], kw->cy[c]);
            if (d < kw->d2[s]) kw->d2[s] = d;
        }
    }
    /* Lloyd iterations; an empty cluster keeps its centre */
    for (int s = 0; s < ns; s++) kw->assign[s] = -1;
    for (int it = 0; it < KMEANS_ITERATIONS; it++) {
        int changed = 0;
        for (int c = 0; c < k; c++) { kw->sumx[c] = kw->sumy[c] = 0.0; kw->count[c] = 0; }
        for (int s = 0; s < ns; s++) {
            int c = nearest_centre(kw, k, kw->sx[s], kw->sy[s]);
            changed |= c != kw->assign[s];
            kw->assign[s] = c;
            kw->sumx[c] += kw->sx[s];
            kw->sumy[c] += kw->sy[s];
            kw->count[c]++;
        }
        if (!changed) break;
        for (int c = 0; c < k; c++)
            if (kw->count[c]) {
                kw->cx[c] = kw->sumx[c] / kw->count[c];
                kw->cy[c] = kw->sumy[c] / kw->count[c];
            }
    }
    /* the sampled ok pixel nearest to each centre (ties: the earlier sample) */
    for (int c = 0; c < k; c++) {
        int best = 0;
        double bd = dist2(kw->sx[0], kw->sy[0], kw->cx[c], kw->cy[c]);
        for (int s = 1; s < ns; s++) {
            double d = dist2(kw->sx[s], kw->sy[s], kw->cx[c], kw->cy[c]);
            if (d < bd) { bd = d; best = s; }
        }
        out[2 * c] = kw->sx[best];
        out[2 * c + 1] = kw->sy[best];
    }
    return k;
}

int mosaic_kmeans_points(const uint8_t *ok, int w, int h, int k, uint64_t seed, int *out) {
    if (!ok || !out || w < 1 || h < 1 || k < 1) return 0;
    kmeans_work kw;
    if (kmeans_work_init(&kw, k)) return -1;
    int n = kmeans_points_ws(ok, w, h, k, seed, out, &kw);
    kmeans_work_free(&kw);
    return n;
}

/* ---- the passes ------------------------------------------------------------------- */

struct mosaic_multipass {
    mosaic_multipass_options o;
    int max_w, max_h;
    int max_points;
    uint8_t *covered;    /* [max_h][max_w] combined_mask: 1 where a component was accepted */
    uint8_t *mask;       /* [max_h][max_w] one decoded mask, consumed by the component scan;
                            also the scratch of the erosion */
    uint8_t *ok;         /* [max_h][max_w] where later passes may put points */
    uint8_t *work;       /* [max_h][max_w][3] the tile with covered pixels painted black */
    int32_t *comp;       /* [max_h * max_w] the pixels of one component (also its BFS queue) */
    int *grid;           /* [points_per_side^2][2] the uniform grid of the current tile */
    int *pts;            /* [max_points][2] this pass's points in pixels */
    double *pts01;       /* [max_points][2] the same, normalized for the generator */
    kmeans_work km;
};

mosaic_multipass *mosaic_multipass_new(int max_w, int max_h, const mosaic_multipass_options *opt,
                                       samc_error *err) {
    if (mosaic_multipass_options_check(opt, err)) return NULL;
    if (max_w < 1 || max_h < 1 || (int64_t)max_w * max_h > ((int64_t)1 << 30)) {
        samc_error_set(err, SAMC_ERR_ARG, "multipass: tile size %dx%d is empty or above 2^30 pixels", max_w, max_h);
        return NULL;
    }
    mosaic_multipass *mp = calloc(1, sizeof *mp);
    if (!mp) {
        samc_error_set(err, SAMC_ERR_NOMEM, "multipass: out of memory");
        return NULL;
    }
    mp->o = *opt;
    mp->max_w = max_w;
    mp->max_h = max_h;
    size_t n = (size_t)max_w * max_h, grid_n = (size_t)opt->points_per_side * opt->points_per_side;
    mp->max_points = (int)grid_n > opt->kmeans_points ? (int)grid_n : opt->kmeans_points;
    mp->covered = malloc(n);
    mp->mask = malloc(n);
    mp->ok = malloc(n);
    mp->work = malloc(n * 3);
    mp->comp = malloc(sizeof *mp->comp * n);
    mp->grid = malloc(sizeof *mp->grid * 2 * grid_n);
    mp->pts = malloc(sizeof *mp->pts * 2 * (size_t)mp->max_points);
    mp->pts01 = malloc(sizeof *mp->pts01 * 2 * (size_t)mp->max_points);
    int km = opt->point_strategy == MOSAIC_POINTS_KMEANS ? kmeans_work_init(&mp->km, opt->kmeans_points) : 0;
    if (!mp->covered || !mp->mask || !mp->ok || !mp->work || !mp->comp || !mp->grid || !mp->pts || !mp->pts01 ||
        km) {
        samc_error_set(err, SAMC_ERR_NOMEM, "multipass: out of memory for the buffers of a %dx%d tile", max_w, max_h);
        mosaic_multipass_free(mp);
        return NULL;
    }
    return mp;
}

void mosaic_multipass_free(mosaic_multipass *mp) {
    if (!mp) return;
    free(mp->covered); free(mp->mask); free(mp->ok); free(mp->work); free(mp->comp);
    free(mp->grid); free(mp->pts); free(mp->pts01);
    kmeans_work_free(&mp->km);
    free(mp);
}

/* The points of a pass into mp->pts; returns how many. Pass 0: the uniform grid on valid
 * pixels. Later passes: the unsegmented valid pixels, eroded, then the grid filtered by
 * them (make_dense_grid_points) or their k-means centres (make_kmeans_points). */
static int pass_points(mosaic_multipass *mp, int pass, const uint8_t *valid, int w, int h) {
    const mosaic_multipass_options *o = &mp->o;
    int ng = o->points_per_side * o->points_per_side, n = 0;
    const uint8_t *allowed = valid;
    if (pass > 0) {
        size_t npix = (size_t)w * h;
        for (size_t i = 0; i < npix; i++) mp->ok[i] = !mp->covered[i] && (!valid || valid[i]);
        if (o->erosion > 0) mosaic_erode(mp->ok, mp->mask, w, h, o->erosion);
        if (o->point_strategy == MOSAIC_POINTS_KMEANS)
            return kmeans_points_ws(mp->ok, w, h, o->kmeans_points, KMEANS_SEED, mp->pts, &mp->km);
        allowed = mp->ok;
    }
    /* filter_points_by_mask (every grid point is inside the tile) */
    for (int k = 0; k < ng; k++) {
        int x = mp->grid[2 * k], y = mp->grid[2 * k + 1];
        if (allowed && !allowed[(size_t)y * w + x]) continue;
        mp->pts[2 * n] = x;
        mp->pts[2 * n + 1] = y;
        n++;
    }
    return n;
}

/* Pixels set in an uncompressed RLE (odd runs). */
static int64_t rle_area(const uint32_t *counts, int64_t n_counts) {
    int64_t a = 0;
    for (int64_t i = 1; i < n_counts; i += 2) a += counts[i];
    return a;
}

/* masks.sort(key=area): a stable sort (binary insertion) in place, no allocation */
static void sort_masks_by_area(amg_mask *v, int n) {
    for (int i = 1; i < n; i++) {
        amg_mask t = v[i];
        int lo = 0, hi = i;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (v[mid].area <= t.area) lo = mid + 1;
            else hi = mid;
        }
        if (lo < i) {
            memmove(v + lo + 1, v + lo, sizeof *v * (size_t)(i - lo));
            v[lo] = t;
        }
    }
}

typedef struct {
    uint32_t next_label;
    int64_t covered_count;
} tile_state;

/* The acceptance of one decoded mask (mp->mask, consumed): split into 4-connected
 * components in raster order of their first pixel (scipy.ndimage.label's numbering);
 * a component of >= min_area pixels that is less than half covered covers its pixels
 * and labels those not labelled yet. Nodata pixels are left out, so they neither join
 * nor link components. */
static void accept_mask(mosaic_multipass *mp, const uint8_t *valid, int w, int h, const int box[4],
                        uint32_t *labels, tile_state *ts, mosaic_pass_stats *ps) {
    uint8_t *m = mp->mask;
    int32_t *comp = mp->comp;
    /* mask pixel p is in a component not reached yet (visited pixels are cleared); only
     * the mask's bounding box is scanned, in raster order, so components are met in the
     * same order as by a scan of the whole tile */
#define OPEN(p) (m[p] && (!valid || valid[p]))
    for (int by = box[1]; by <= box[3]; by++)
    for (size_t i0 = (size_t)by * w + box[0]; i0 <= (size_t)by * w + box[2]; i0++) {
        if (!OPEN(i0)) continue;
        /* breadth-first flood fill; comp[] is both the queue and the component */
        int64_t n = 1, head = 0;
        comp[0] = (int32_t)i0;
        m[i0] = 0;
        while (head < n) {
            int32_t p = comp[head++];
            int x = p % w, y = p / w;
            if (x > 0 && OPEN(p - 1)) { m[p - 1] = 0; comp[n++] = p - 1; }
            if (x < w - 1 && OPEN(p + 1)) { m[p + 1] = 0; comp[n++] = p + 1; }
            if (y > 0 && OPEN(p - w)) { m[p - w] = 0; comp[n++] = p - w; }
            if (y < h - 1 && OPEN(p + w)) { m[p + w] = 0; comp[n++] = p + w; }
        }
        if (n < mp->o.min_area) {
            ps->filtered_small++;
            continue;
        }
        int64_t overlap = 0;
        for (int64_t j = 0; j < n; j++) overlap += mp->covered[comp[j]];
        /* overlap / area < 0.5, exactly */
        if (2 * overlap >= n) {
            ps->filtered_overlap++;
            continue;
        }
        uint32_t label = ts->next_label++;
        for (int64_t j = 0; j < n; j++) {
            int32_t p = comp[j];
            if (!mp->covered[p]) {
                mp->covered[p] = 1;
                ts->covered_count++;
            }
            if (!labels[p]) labels[p] = label;
        }
        ps->components_added++;
    }
#undef OPEN
    /* leave the buffer zero for the next mask (nodata pixels of the mask are still set) */
    for (int by = box[1]; by <= box[3]; by++) memset(m + (size_t)by * w + box[0], 0, (size_t)(box[2] - box[0] + 1));
}

static int push_pass(mosaic_tile_stats *st, samc_error *err) {
    if (st->n_passes == st->cap) {
        int cap = st->cap ? 2 * st->cap : 16;
        mosaic_pass_stats *p = realloc(st->pass, sizeof *p * (size_t)cap);
        if (!p) return samc_error_set(err, SAMC_ERR_NOMEM, "multipass: out of memory for the stats of %d passes", cap);
        st->pass = p;
        st->cap = cap;
    }
    memset(&st->pass[st->n_passes++], 0, sizeof *st->pass);
    return 0;
}

int mosaic_multipass_run(mosaic_multipass *mp, const mosaic_mask_source *src, const uint8_t *rgb,
                         const uint8_t *valid, int w, int h, uint32_t *labels, mosaic_tile_stats *st,
                         int (*cancelled)(void *ctx), void *cancel_ctx, samc_error *err) {
    if (!mp || !src || !src->generate || !rgb || !labels || !st)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic_multipass_run: NULL argument");
    memset(st, 0, sizeof *st);
    if (w < 1 || h < 1 || w > mp->max_w || h > mp->max_h)
        return samc_error_set(err, SAMC_ERR_ARG, "multipass: tile %dx%d is empty or larger than the planned %dx%d", w, h,
                       mp->max_w, mp->max_h);
    const mosaic_multipass_options *o = &mp->o;
    size_t npix = (size_t)w * h;
    memset(labels, 0, sizeof *labels * npix);
    memset(mp->covered, 0, npix);
    int64_t n_valid = (int64_t)npix;
    if (valid) {
        n_valid = 0;
        for (size_t i = 0; i < npix; i++) n_valid += valid[i] != 0;
    }
    st->valid_pixels = n_valid;
    mosaic_uniform_grid(w, h, o->points_per_side, mp->grid);

    tile_state ts = { .next_label = 1, .covered_count = 0 };
    double iou = o->iou_start, stab = o->stability_start, prev_coverage = 0.0, coverage = 0.0;
    /* The source has not seen this tile yet; afterwards the image it gets changes only
     * when the black mask paints newly covered pixels. work_current: mp->work holds the
     * tile painted with the current coverage. */
    int added_last = 0, work_current = 0, rc = -1;
    amg_result res = { 0 };
    for (int pass = 0;; pass++) {
        if (o->max_passes > 0 && pass >= o->max_passes) break;
        if (cancelled && cancelled(cancel_ctx)) {
            samc_error_set(err, SAMC_ERR_ARG, "multipass: cancelled before pass %d", pass + 1);
            goto done;
        }
        int n = pass_points(mp, pass, valid, w, h);
        if (n == 0) break;
        /* predict_points_batched: points.astype(float32) / (w, h) in float32 */
        for (int k = 0; k < n; k++) {
            mp->pts01[2 * k] = (double)((float)mp->pts[2 * k] / (float)w);
            mp->pts01[2 * k + 1] = (double)((float)mp->pts[2 * k + 1] / (float)h);
        }
        const uint8_t *image = rgb;
        int image_changed = pass == 0;
        if (o->use_black_mask && pass > 0) {
            /* apply_black_mask on a copy of the tile */
            if (!work_current) {
                memcpy(mp->work, rgb, npix * 3);
                for (size_t i = 0; i < npix; i++)
                    if (mp->covered[i]) mp->work[3 * i] = mp->work[3 * i + 1] = mp->work[3 * i + 2] = 0;
                work_current = 1;
            }
            image = mp->work;
            image_changed = added_last > 0;
        }
        if (push_pass(st, err)) goto done;
        mosaic_pass_stats *ps = &st->pass[st->n_passes - 1];
        ps->n_points = n;
        ps->iou = iou;
        ps->stability = stab;

        double t0 = monotonic_ms();
        if (src->generate(src->ctx, image, w, h, mp->pts01, n, iou, stab, image_changed, cancelled, cancel_ctx, &res,
                          err))
            goto done;
        ps->generate_ms = monotonic_ms() - t0;
        /* the generator's own split (zero from sources that do not fill amg_stats) */
        ps->encode_ms = res.stats.encode_ms;
        ps->decode_ms = res.stats.decode_ms;
        ps->masks_ms = res.stats.masks_ms + res.stats.nms_ms;
        t0 = monotonic_ms();
        ps->masks_generated = res.n_masks;
        if (res.n_masks > 0 && (res.width != w || res.height != h)) {
            samc_error_set(err, SAMC_ERR_INTERNAL, "multipass: the mask source returned %dx%d masks for a %dx%d tile",
                    res.width, res.height, w, h);
            goto done;
        }
        if (o->sort_by_area) {
            /* by the pixels the RLE sets, not the source's area field */
            for (int k = 0; k < res.n_masks; k++)
                res.masks[k].area = rle_area(res.masks[k].counts, res.masks[k].n_counts);
            sort_masks_by_area(res.masks, res.n_masks);
        }
        int64_t covered_before = ts.covered_count;
        /* masks are painted into a zero buffer and cleared again within their box, so a
         * mask costs its box, not the tile (mp->mask was erosion scratch until here) */
        memset(mp->mask, 0, (size_t)w * h);
        for (int k = 0; k < res.n_masks; k++) {
            const amg_mask *m = &res.masks[k];
            int box[4];
            if (amg_rle_paint(m->counts, m->n_counts, w, h, mp->mask, box, err)) {
                if (err) {
                    size_t len = strlen(err->msg);
                    snprintf(err->msg + len, sizeof err->msg - len, " (mask %d of pass %d)", k, pass + 1);
                }
                goto done;
            }
            if (box[2] >= box[0]) accept_mask(mp, valid, w, h, box, labels, &ts, ps);
        }
        amg_result_free(&res);
        if (ts.covered_count != covered_before) work_current = 0;
        added_last = ps->components_added;
        coverage = n_valid ? (double)ts.covered_count / (double)n_valid * 100.0 : 0.0;
        ps->coverage = coverage;
        ps->accept_ms = monotonic_ms() - t0;

        if (coverage >= o->target_coverage) break;
        /* Little or no progress: lower both thresholds by step (clamped at their ends), or
         * stop when the IoU threshold is already at its end (the tool tests the IoU one
         * only). Without adaptive thresholds the start values are the lowest, so such a
         * pass ends the loop. */
        if (ps->masks_generated == 0 || ps->components_added == 0 || coverage - prev_coverage < MIN_COVERAGE_GAIN) {
            if (!o->adaptive_threshold || iou <= o->iou_end) break;
            iou = fmax(o->iou_end, iou - o->step);
            stab = fmax(o->stability_end, stab - o->step);
        }
        prev_coverage = coverage;
    }
    rc = 0;
done:
    amg_result_free(&res);
    st->coverage = coverage;
    st->final_iou = iou;
    st->final_stability = stab;
    st->n_labels = (int)(ts.next_label - 1);
    return rc;
}

/* ---- the samc model as a mask source ---------------------------------------------- */

/* One amg_samc_source per image: made again whenever the image changes (it keeps a
 * pointer to the pixels, which set_crop reads), kept otherwise, so an unchanged whole
 * image is not encoded twice. */
typedef struct {
    samc_model *m;
    mosaic_multipass_options o;
    amg_source inner;
    int have_inner, inner_w, inner_h;
    int whole_encoded;   /* the last set_crop of inner encoded its whole image, and succeeded */
    int reuse;           /* this call: set_crop of the whole image keeps the encoding */
} samc_mask_source;

static int fwd_set_crop(void *ctx, const int crop[4], samc_error *err) {
    samc_mask_source *s = ctx;
    int whole = crop[0] == 0 && crop[1] == 0 && crop[2] == s->inner_w && crop[3] == s->inner_h;
    if (s->reuse && whole && s->whole_encoded) return 0;
    s->whole_encoded = 0;
    if (s->inner.set_crop(s->inner.ctx, crop, err)) return -1;
    s->whole_encoded = whole;
    return 0;
}

static int fwd_predict(void *ctx, const float *points, int n, float *iou, samc_error *err) {
    samc_mask_source *s = ctx;
    return s->inner.predict(s->inner.ctx, points, n, iou, err);
}

static int fwd_mask_logits(void *ctx, int point, int token, float *out, samc_error *err) {
    samc_mask_source *s = ctx;
    return s->inner.mask_logits(s->inner.ctx, point, token, out, err);
}

static int fwd_predict_filtered(void *ctx, const float *points, int n, const samc_mask_filter *f,
                                const samc_mask_records **out, samc_error *err) {
    samc_mask_source *s = ctx;
    return s->inner.predict_filtered(s->inner.ctx, points, n, f, out, err);
}

/* predict_points_batched: a SAM2AutomaticMaskGenerator with points_per_side=None and
 * point_grids = [points] * (crop_n_layers + 1), the pass's thresholds, min_mask_region_area,
 * box_nms_thresh and crop_n_layers; everything else at its default. */
static int samc_generate(void *ctx, const uint8_t *rgb, int w, int h, const double *points01, int n_points,
                         double iou, double stability, int image_changed, int (*cancelled)(void *cancel_ctx),
                         void *cancel_ctx, amg_result *out, samc_error *err) {
    samc_mask_source *s = ctx;
    amg_options ao;
    amg_options_default(&ao);
    ao.point_grid = points01;
    ao.point_grid_n = n_points;
    ao.points_per_batch = s->o.points_per_batch;
    ao.pred_iou_thresh = iou;
    ao.stability_score_thresh = stability;
    ao.min_mask_region_area = s->o.min_area;
    ao.box_nms_thresh = s->o.box_nms_thresh;
    ao.crop_n_layers = s->o.crop_n_layers;
    ao.cancelled = cancelled;
    ao.cancel_ctx = cancel_ctx;
    ao.backend_post = s->o.backend_post;
    if (amg_options_check(&ao, err)) return -1;
    s->reuse = !image_changed && s->o.crop_n_layers == 0 && s->have_inner && s->whole_encoded && s->inner_w == w &&
               s->inner_h == h;
    if (!s->reuse) {
        if (s->have_inner) amg_samc_source_free(&s->inner);
        s->have_inner = 0;
        s->whole_encoded = 0;
        if (amg_samc_source_new(s->m, rgb, w, h, &ao, &s->inner, err)) return -1;
        s->have_inner = 1;
        s->inner_w = w;
        s->inner_h = h;
    }
    amg_source fwd = { .ctx = s, .set_crop = fwd_set_crop, .predict = fwd_predict, .mask_logits = fwd_mask_logits,
                       .predict_filtered = s->inner.predict_filtered ? fwd_predict_filtered : NULL,
                       .filtered_on_device = s->inner.filtered_on_device };
    return amg_generate(&fwd, w, h, &ao, out, err);
}

int mosaic_samc_source_new(samc_model *m, const mosaic_multipass_options *opt, mosaic_mask_source *src,
                           samc_error *err) {
    if (!m || !opt || !src) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_samc_source_new: NULL argument");
    memset(src, 0, sizeof *src);
    if (mosaic_multipass_options_check(opt, err)) return -1;
    samc_mask_source *s = calloc(1, sizeof *s);
    if (!s) return samc_error_set(err, SAMC_ERR_NOMEM, "multipass: out of memory");
    s->m = m;
    s->o = *opt;
    src->ctx = s;
    src->generate = samc_generate;
    return 0;
}

void mosaic_samc_source_free(mosaic_mask_source *src) {
    if (!src || !src->ctx) return;
    samc_mask_source *s = src->ctx;
    if (s->have_inner) amg_samc_source_free(&s->inner);
    free(s);
    memset(src, 0, sizeof *src);
}
