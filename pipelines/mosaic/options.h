/* pipelines/mosaic/options.h: the types of a mosaic run: its settings (mosaic_options, one
 * field per sam-mosaic setting), progress, result and callbacks, several workers, one
 * shard. mosaic.h is the API that runs them; config.h reads the settings by name. */
#ifndef SAMC_MOSAIC_OPTIONS_H
#define SAMC_MOSAIC_OPTIONS_H
#include <stddef.h>
#include <stdint.h>

#include "pipelines/mosaic/labels.h"
#include "pipelines/mosaic/multipass.h"
#include "model/samc.h"

/* SAM3 concept mode: the classes (texts) of a run, NUL-separated in one buffer so that
 * the options stay a plain value (copied into jobs, rebuilt from a shard's manifest). */
#define MOSAIC_MAX_CLASSES 64
#define MOSAIC_CLASSES_BYTES 4096

typedef struct {
    int tile_size;                 /* 1000: useful pixels per tile side */
    int padding;                   /* 50: context pixels on each side */
    mosaic_multipass_options mp;   /* the passes (points, thresholds, min_area, ...) */
    mosaic_merge_strategy merge;   /* best_match */
    int min_contact;               /* 5: for min_contact */
    int merge_enclosed_max_area;   /* 500 */
    int save_labels, save_shapefile, save_geopackage, save_stats;  /* 1, 1, 0, 1 */
    double simplify_tolerance;     /* 1.0 map units; 0 = none */
    int bands[3]; int has_bands;   /* explicit 1-based R, G, B bands */
    double scale[2]; int has_scale;/* explicit stretch min, max */
    /* SAM3 concept mode (n_classes > 0): every tile is searched for each class text with
     * samc_find on a SAM3 model instead of SAM2's automatic masks; an instance's pixels
     * go to the instance of highest score that covers them, segments keep their class
     * and score, and joins across tile borders are made only within a class. */
    char classes[MOSAIC_CLASSES_BYTES];   /* the texts, each NUL-terminated, in order */
    int n_classes;
    double score_threshold;        /* 0.5: keep instances whose score is > this */
    const char *config_json;       /* optional: the effective configuration, stored in
                                      stats.json under "config" (a JSON object text) */
    const char *model_json;        /* optional: the model's identity (a JSON object text,
                                      e.g. file name, size, config, precision), stored in
                                      shard manifests; the merge requires it equal */
} mosaic_options;

void mosaic_options_default(mosaic_options *o);
int mosaic_options_check(const mosaic_options *o, samc_error *err);
/* Adds a class text (non-empty, no NUL, at most MOSAIC_MAX_CLASSES, the buffer not
 * full; a text already there is refused). 0, or -1 with why filled. */
int mosaic_options_add_class(mosaic_options *o, const char *text, char *why, size_t why_size);
/* The text of class i (0-based), NULL past the last. */
const char *mosaic_class_name(const mosaic_options *o, int i);

typedef struct {
    const char *phase;       /* "tiles", "labels", "vectors", "done" */
    int tiles_done, tiles_total, tiles_skipped;
    int tile_row, tile_col, tile_passes;   /* of the last tile */
    double coverage;         /* percent of valid pixels segmented so far */
    int64_t segments;        /* ids given so far (before the border merge) */
    double elapsed_s, eta_s; /* eta < 0: unknown */
} mosaic_progress;

typedef struct {
    int64_t segments, segments_before_merge;
    double coverage;             /* percent of valid (non-nodata) pixels with a label */
    int64_t valid_pixels, labelled_pixels;
    int tiles, tiles_skipped;
    double total_s;
    char labels_path[1024], gpkg_path[1024], shp_path[1024], stats_path[1024];
    /* a shard run: its folder, and whether it was there already (nothing was done) */
    char shard_dir[1024];
    int already_complete;
    int shards;              /* the merge: how many shards it joined */
} mosaic_result;

typedef struct {
    void (*progress)(void *ctx, const mosaic_progress *p);
    void *progress_ctx;
    int (*cancelled)(void *ctx);   /* non-zero: stop cleanly, remove the temporary folder;
                                      with several workers it is also asked from their
                                      threads, so it must be thread-safe */
    void *cancel_ctx;
    /* The mask generator of the passes; NULL: SAM2's automatic mask generator on the
     * model (tests put an oracle here to check the pipeline against known objects). */
    const mosaic_mask_source *mask_source;
} mosaic_callbacks;

/* ---- several workers in one process ---------------------------------------------------
 * Tiles spread over n_workers threads, each with its own mask generator (one model copy
 * per device): the calling thread reads the tiles in order and takes the results back in
 * order (ids, raw labels, border merge), so the output is that of one worker. */
typedef struct {
    int n_workers;                        /* >= 1 */
    /* Worker i's generator: sources[i] (tests), else SAM's automatic mask generator on
     * load(ctx, i, err), called in worker i's own thread before its first tile (a GPU
     * backend binds its device to the thread that loads it), released by unload. */
    const mosaic_mask_source *sources;
    samc_model *(*load)(void *ctx, int worker, samc_error *err);
    void (*unload)(void *ctx, int worker, samc_model *m);
    void *ctx;
} mosaic_workers;

/* ---- shards: one raster over several processes or machines -----------------------------
 * Shard K of N segments the tile rows [K * R / N, (K + 1) * R / N) of the R rows of tiles
 * (a contiguous band, so it reads the raster sequentially) and writes into
 * OUTDIR/shards/K/: labels.tif (the band's labels before any merge across the band's
 * upper and lower edges, ids 1..n local to the shard), top.u32 and bottom.u32 (the band's
 * first and last rows of labels, little-endian uint32), unions.u32 (pairs (id, root) of
 * the merges inside the band), with classes (n_classes > 0) classes.u32 and scores.f32
 * (class index and score of ids 1..n), and manifest.json (input, model, every option, K and N,
 * tile range, counts, the tiles' passes, each file's size and FNV-1a 64 checksum). All of
 * it is byte-identical when the shard runs again; it is written in a temporary folder
 * renamed to shards/K when complete. Timings go beside it, to shards/K.timing.json.
 * A shard whose complete output is there already, made with the same input path,
 * options, model and K/N, does nothing and succeeds (res->already_complete); one made
 * otherwise is an error naming what differs. */
typedef struct {
    int index, count;                     /* K in [0, N), N >= 1 */
} mosaic_shard;

/* "K/N" -> shard; -1 (why filled) when not two integers with 0 <= K < N <= 100000. */
int mosaic_shard_parse(const char *s, mosaic_shard *out, char *why, size_t why_size);

#endif
