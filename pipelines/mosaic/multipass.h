/* pipelines/mosaic/multipass.h: sam-mosaic's multi-pass segmentation of one tile
 * (core/multipass.py run_multipass_segmentation), on a pluggable mask generator.
 *
 * Pass 0 prompts a uniform points_per_side^2 grid. Each later pass (a) paints the pixels
 * already segmented black in a working copy of the tile (use_black_mask), so SAM looks at
 * what is left, and (b) prompts points only where nothing is segmented yet: the same
 * grid filtered by the (eroded) unsegmented area ("dense_grid"), or kmeans_points
 * k-means centres of the (eroded) unsegmented area ("kmeans"). Every mask the generator
 * returns (filtered by predicted IoU and stability at the pass's thresholds, box NMS) is
 * split into 4-connected components; a component of >= min_area pixels that overlaps the
 * covered area by less than half is accepted: it covers its pixels and gives a new label
 * to those not labelled yet. When a pass adds nothing, or raises coverage by < 0.1
 * points, the thresholds drop by `step` (down to the *_end values); the loop stops at
 * target_coverage, at max_passes, when no point is left, or when a pass fails at the
 * lowest thresholds.
 *
 * Differences from the tool, on purpose: nodata pixels (valid == 0) never get a label,
 * never get a point, and do not count in the coverage; when the working image does not
 * change (no black mask) the generator is told so and may reuse the image embedding;
 * k-means is our own seeded Lloyd iteration (the tool uses scikit-learn), so points are
 * reproducible run to run but not equal to the tool's.
 */
#ifndef SAMC_MOSAIC_MULTIPASS_H
#define SAMC_MOSAIC_MULTIPASS_H
#include <stdint.h>

#include "pipelines/amg/amg.h"
#include "model/samc.h"

typedef enum { MOSAIC_POINTS_KMEANS = 0, MOSAIC_POINTS_DENSE_GRID } mosaic_point_strategy;

/* "kmeans", "dense_grid"; parse returns -1 on anything else. */
int mosaic_point_strategy_parse(const char *s, mosaic_point_strategy *out);
const char *mosaic_point_strategy_name(mosaic_point_strategy s);

typedef struct {
    int points_per_side;          /* 64: pass 0 grid (and the dense_grid of later passes) */
    double iou_start, iou_end;    /* 0.93, 0.60: predicted-IoU threshold range */
    double stability_start, stability_end;  /* 0.93, 0.60 */
    double step;                  /* 0.01: threshold decrease */
    double target_coverage;       /* 99.0 (percent of the tile's valid pixels) */
    int max_passes;               /* 0: no limit */
    int use_black_mask;           /* 1 */
    int adaptive_threshold;       /* 1: lower thresholds when a pass gains little */
    mosaic_point_strategy point_strategy;  /* kmeans */
    int erosion;                  /* 0: erosion iterations of the unsegmented area
                                     (4-neighbour cross, outside counts as segmented) */
    int kmeans_points;            /* 64 */
    int min_area;                 /* 100: smallest accepted component; also the
                                     generator's min_mask_region_area */
    int sort_by_area;             /* 0: 1 = accept masks smallest first */
    /* passed on to the generator (amg_options) */
    int points_per_batch;         /* 64 */
    int crop_n_layers;            /* 0 */
    double box_nms_thresh;        /* 0.7 */
    int backend_post;             /* 0: amg_options.backend_post (-1 host, 0 device when there is
                                     one, 1 the backend's ops) */
} mosaic_multipass_options;

void mosaic_multipass_options_default(mosaic_multipass_options *o);
/* Names the offending option and its allowed range. */
int mosaic_multipass_options_check(const mosaic_multipass_options *o, samc_error *err);

/* The mask generator the passes call: SAM2AutomaticMaskGenerator with point_grids = the
 * given points, normalized to [0, 1] (x / w, y / h in float32, as the tool hands them
 * over), pred_iou_thresh = iou, stability_score_thresh = stability. image_changed is 0
 * when rgb holds the same pixels as in the previous call on this tile (then an
 * implementation may reuse its encoding). cancelled (may be NULL) is the run's, to be
 * asked inside the generator (amg_options.cancelled). Masks come back in out
 * (amg_result, RLE). */
typedef struct {
    void *ctx;
    int (*generate)(void *ctx, const uint8_t *rgb, int w, int h, const double *points01,
                    int n_points, double iou, double stability, int image_changed,
                    int (*cancelled)(void *cancel_ctx), void *cancel_ctx,
                    amg_result *out, samc_error *err);
} mosaic_mask_source;

/* The samc model as a mask source (amg_generate_samc with opt's generator settings).
 * opt is copied. */
int mosaic_samc_source_new(samc_model *m, const mosaic_multipass_options *opt,
                           mosaic_mask_source *src, samc_error *err);
void mosaic_samc_source_free(mosaic_mask_source *src);

typedef struct {
    int n_points;               /* prompted */
    int masks_generated;        /* returned by the generator */
    int components_added;       /* accepted: each got a label */
    int filtered_small;         /* components < min_area */
    int filtered_overlap;       /* components >= half covered already */
    double iou, stability;      /* thresholds of this pass */
    double coverage;            /* percent of valid pixels covered after the pass */
    double generate_ms, accept_ms;
    double encode_ms, decode_ms, masks_ms;  /* inside generate: image encoder, prompt
                                               encoder + mask decoder, per-mask upsample /
                                               filters / RLE / NMS */
} mosaic_pass_stats;

typedef struct {
    mosaic_pass_stats *pass;    /* [n_passes], owned (freed by mosaic_tile_stats_free) */
    int n_passes, cap;
    double coverage;            /* final, percent of the valid pixels of the read window */
    double final_iou, final_stability;
    int n_labels;               /* labels written: 1..n_labels */
    int64_t valid_pixels;
} mosaic_tile_stats;

void mosaic_tile_stats_free(mosaic_tile_stats *st);

typedef struct mosaic_multipass mosaic_multipass;

/* Plans the buffers for tiles up to max_w x max_h once (coverage mask, working image,
 * component labels, point lists); run never allocates beyond its per-pass stats. */
mosaic_multipass *mosaic_multipass_new(int max_w, int max_h, const mosaic_multipass_options *opt,
                                       samc_error *err);
void mosaic_multipass_free(mosaic_multipass *mp);

/* Segments one tile: rgb[h][w][3], valid[h][w] (0 = nodata; NULL: all valid).
 * labels[h][w] gets 0 or 1..st->n_labels. cancelled (may be NULL) is asked between
 * passes and inside the generator's batches via the source; a cancel fails with
 * "cancelled". st must be zeroed or freed before. */
int mosaic_multipass_run(mosaic_multipass *mp, const mosaic_mask_source *src, const uint8_t *rgb,
                         const uint8_t *valid, int w, int h, uint32_t *labels, mosaic_tile_stats *st,
                         int (*cancelled)(void *ctx), void *cancel_ctx, samc_error *err);

/* ---- building blocks, exposed for tests ------------------------------------------ */
/* make_uniform_grid: points_per_side^2 points (x fastest), x = int(linspace(0, w-1, n)),
 * same for y. out[n*n][2]. */
void mosaic_uniform_grid(int w, int h, int n, int *out);
/* binary erosion of ok[h][w] (0/1) by a 4-neighbour cross, `iterations` times, pixels
 * outside the image counting as 0 (scipy.ndimage.binary_erosion's default). In place;
 * tmp[h][w] is scratch. */
void mosaic_erode(uint8_t *ok, uint8_t *tmp, int w, int h, int iterations);
/* k points (x, y) inside ok[h][w], spread by seeded k-means over a sample of the ok
 * pixels, each snapped to the nearest sampled ok pixel. Returns how many (<= k; all ok
 * pixels when there are <= k), or -1 when out of memory. Deterministic for a given seed. */
int mosaic_kmeans_points(const uint8_t *ok, int w, int h, int k, uint64_t seed, int *out);

#endif
