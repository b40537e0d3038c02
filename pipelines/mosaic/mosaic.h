/* pipelines/mosaic/mosaic.h: `samc mosaic`, segment-everything over a georeferenced raster of any
 * size, the pipeline of the sam-mosaic tool done in bounded memory:
 *
 *   for each tile (row-major): read the padded window (raster.h) -> multi-pass SAM
 *     segmentation (multipass.h) -> crop to the useful area -> fragment cleanup and
 *     global ids (labels.h) -> rows appended to a raw label file on disk -> the pairs
 *     across the borders with the left and upper neighbours joined in a union-find;
 *   then one streamed pass over the raw file: the union-find as one LUT, renumbered
 *     1..N -> labels.tif (strips of 256 rows);
 *   then labels.tif -> polygons -> segments.gpkg / segments.shp; stats.json.
 *
 * Peak memory: the model, one padded tile's buffers, one row of tile-bottom labels
 * (width x 4 bytes), one strip of 256 rows, and 4-12 bytes per segment id; never the
 * whole label mosaic. Outputs are written in a temporary folder inside OUTDIR and
 * renamed into place only when everything succeeded, so no half-written file ever has
 * a final name (also on cancel / Ctrl-C).
 * Nothing prints or exits; progress goes to a callback.
 */
#ifndef SAMC_MOSAIC_H
#define SAMC_MOSAIC_H
#include <stdint.h>

#include "pipelines/mosaic/labels.h"
#include "pipelines/mosaic/multipass.h"
#include "model/samc.h"

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
    const char *config_json;       /* optional: the effective configuration, stored in
                                      stats.json under "config" (a JSON object text) */
} mosaic_options;

void mosaic_options_default(mosaic_options *o);
int mosaic_options_check(const mosaic_options *o, samc_error *err);

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
} mosaic_result;

typedef struct {
    void (*progress)(void *ctx, const mosaic_progress *p);
    void *progress_ctx;
    int (*cancelled)(void *ctx);   /* non-zero: stop cleanly, remove the temporary folder */
    void *cancel_ctx;
    /* The mask generator of the passes; NULL: SAM2's automatic mask generator on the
     * model (tests put an oracle here to check the pipeline against known objects). */
    const mosaic_mask_source *mask_source;
} mosaic_callbacks;

/* Segments the raster at in_path into out_dir (created if missing) with the loaded model.
 * Fails with err naming the file or option: unreadable raster, unwritable out_dir, ... */
int mosaic_run(samc_model *model, const char *in_path, const char *out_dir, const mosaic_options *opt,
               const mosaic_callbacks *cb, mosaic_result *res, samc_error *err);

#endif
