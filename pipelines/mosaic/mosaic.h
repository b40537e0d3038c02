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
#include "pipelines/mosaic/options.h"
#include "model/samc.h"

/* Segments the raster at in_path into out_dir (created if missing) with the loaded model.
 * Fails with err naming the file or option: unreadable raster, unwritable out_dir, ... */
int mosaic_run(samc_model *model, const char *in_path, const char *out_dir, const mosaic_options *opt,
               const mosaic_callbacks *cb, mosaic_result *res, samc_error *err);

/* mosaic_run with several workers (NULL: the calling thread with model or
 * cb->mask_source) and / or as one shard (NULL: the whole raster into out_dir). */
int mosaic_run_ex(samc_model *model, const mosaic_workers *workers, const mosaic_shard *shard, const char *in_path,
                  const char *out_dir, const mosaic_options *opt, const mosaic_callbacks *cb, mosaic_result *res,
                  samc_error *err);

/* Joins the shards under out_dir/shards into the outputs a single run with the same
 * options writes (labels.tif, segments.gpkg / .shp, stats.json with each shard's timings):
 * the same labels and polygons. Every shard 0..N-1 must be there, complete (sizes and
 * checksums), and made from the same input, options and model; otherwise it fails naming
 * the missing or mismatched shard, and writes nothing. Shards are only read. Outputs are
 * renamed into place when complete, so a merge that was stopped can simply run again. */
int mosaic_merge(const char *out_dir, const mosaic_callbacks *cb, mosaic_result *res, samc_error *err);

#endif
