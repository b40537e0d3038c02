/* pipelines/mosaic/run.h: the inside of one mosaic run, shared by mosaic.c (the phases),
 * tiles.c (the tile loop and its workers) and shard.c (shard outputs and the merge).
 * Not a public header: mosaic.h is the API.
 *
 * A run is a context (run_ctx) and phases over it, each a function that returns 0 or -1
 * with err filled; run_free (mosaic.c) releases whatever the phases made, whichever one
 * failed. Files: run.c (shared phases and helpers) <- tiles.c, shard.c <- mosaic.c (the
 * runs), so that no two of them use each other:
 *   single run:  open -> alloc -> tiles -> lut -> labels -> vectors -> finish
 *   shard K/N:   open -> alloc -> tiles (its band) -> shard_write_outputs
 *   merge:       shard_merge_plan (manifests, union-find) -> lut -> labels -> vectors -> finish
 * labels reads the pre-merge ids row by row through read_rows: the raw file of a single
 * run, or the shards' label files with their id offsets in the merge. */
#ifndef SAMC_MOSAIC_RUN_H
#define SAMC_MOSAIC_RUN_H
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "pipelines/mosaic/options.h"
#include "pipelines/mosaic/raster.h"
#include "pipelines/mosaic/tiling.h"

/* rows of labels.tif written per strip: a multiple of its 256-pixel block height */
#define STRIP_ROWS 256

typedef struct {
    double read_s, segment_s, cleanup_s, merge_s, spill_s, labels_s, vectors_s;
} stage_times;

typedef struct run_ctx run_ctx;
typedef struct tile_pool tile_pool;

struct run_ctx {
    const mosaic_options *opt;
    const mosaic_callbacks *cb;
    const char *in_path, *out_dir;
    char in_shown[2048];                /* in_path for messages and outputs (mosaic_redact_urls) */
    double t_start, t_tiles;
    /* what the mask generators run on */
    samc_model *model;
    const mosaic_workers *workers;      /* NULL: one, in the calling thread */
    const mosaic_shard *shard;          /* NULL: the whole raster */
    /* open / plan */
    mosaic_raster *raster;
    const mosaic_raster_info *info;
    mosaic_grid g;
    int r0, r1;                         /* the band of tile rows this run segments */
    int band_y0, band_y1;               /* its pixel rows */
    char tmp_dir[1100], raw_path[1200], labels_tmp[1200], gpkg_tmp[1200], shp_tmp[1200], stats_tmp[1200];
    int raw_fd;
    /* the tile loop */
    tile_pool *pool;
    uint32_t *left_col, *bottom_row, *edge;   /* the neighbours' facing labels; scratch */
    mosaic_uf uf;
    uint32_t next_id;
    /* concept mode (opt->n_classes > 0): class index and score of every pre-merge id
     * (grown with the ids), scratch for the class-filtered border rows, and after the
     * LUT the class and score of every final segment (the highest score of its pieces) */
    uint32_t *id_class, attr_cap;
    float *id_score;
    uint32_t *side_a, *side_b;
    uint32_t *seg_class;
    float *seg_score;
    int64_t valid_total, labelled_total;
    int tiles_total, tiles_done, tiles_skipped;
    cJSON *tiles_json;                  /* the tiles' passes, as in stats.json */
    cJSON *tiles_timing;                /* a shard: the tiles' timings, apart */
    /* labels.tif: the union-find as a LUT, segment areas, one strip */
    int (*read_rows)(run_ctx *c, int y0, int n, uint32_t *rows, samc_error *err);
    uint32_t *lut, *strip, n_ids_total, n_final;
    uint64_t *areas;
    stage_times tm;
    mosaic_merge_stats ms;
    mosaic_cleanup_stats cs;
    mosaic_vector_stats vs;
    /* the merge: what shard.c keeps (manifests, readers), freed by shard_merge_free */
    void *merge;
    int n_shards;                       /* the merge: how many shards it joined */
    cJSON *stats_extra;                 /* added to stats.json (the merge's "shards") */
};

/* ---- files (run.c) ---- */
int mosaic_write_all(int fd, const void *buf, size_t n, off_t off);
int mosaic_read_all(int fd, void *buf, size_t n, off_t off);
int mosaic_write_json_file(const char *path, const cJSON *j, int formatted, samc_error *err);
cJSON *mosaic_read_json_file(const char *path, samc_error *err);
double mosaic_now_s(void);
double mosaic_peak_rss_mib(void);

/* ---- concept mode (run.c) ---- */
/* Room for the class and score of ids < n (and the border scratch on the first call). */
int run_attrs_grow(run_ctx *c, uint32_t n, samc_error *err);
/* mosaic_merge_boundary with the run's strategy; in concept mode only pairs of one class
 * touch (pixels facing a segment of another class count as no contact). n <= tile size. */
int run_merge_boundary(run_ctx *c, const uint32_t *side1, const uint32_t *side2, int64_t n, samc_error *err);
void run_attrs_free(run_ctx *c);

/* ---- phases (run.c) ---- */
int run_is_cancelled(const run_ctx *c);
int run_lut(run_ctx *c, samc_error *err);
int run_labels(run_ctx *c, samc_error *err);
int run_vectors(run_ctx *c, samc_error *err);
int run_finish(run_ctx *c, mosaic_result *res, samc_error *err);
/* The "input" object of stats.json and of shard manifests. */
cJSON *run_input_json(const char *in_path, const mosaic_raster_info *info);
/* One tile's object of stats.json; with timings 0 its times are left out (shards). */
cJSON *run_tile_json(int row, int col, const mosaic_rect *u, int skipped, const mosaic_tile_stats *ts,
                     double useful_coverage, int n_ids, double seconds, int timings);
cJSON *run_tile_timing_json(int row, int col, const mosaic_tile_stats *ts, int skipped, double seconds);
void run_stats_timings(cJSON *parent, const char *name, const stage_times *tm, double total_s);

/* ---- tiles (tiles.c) ---- */
/* The mask generators, the tile buffers and (several workers) the threads. */
int run_pool_start(run_ctx *c, samc_error *err);
/* Segments the tiles of rows [c->r0, c->r1): ids, raw file, border merge, tiles_json. */
int run_tiles(run_ctx *c, samc_error *err);
void run_pool_free(run_ctx *c);

/* ---- shards (shard.c) ---- */
/* A shard finds its complete output: 1 (res filled), 0 not there, -1 there but made
 * otherwise (err names what differs). Reads only the manifest. */
int shard_already_done(run_ctx *c, mosaic_result *res, samc_error *err);
/* After run_tiles of a shard: its files, manifest and rename into shards/K. */
int shard_write_outputs(run_ctx *c, mosaic_result *res, samc_error *err);
/* The merge's first phase: every manifest checked, the union-find over all shards' ids
 * with their joins and the joins across the shard edges; sets c->info, c->g, counts,
 * tiles_json, read_rows. */
int shard_merge_plan(run_ctx *c, samc_error *err);
void shard_merge_free(run_ctx *c);

#endif
