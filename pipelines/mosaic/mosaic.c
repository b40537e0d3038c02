/* pipelines/mosaic/mosaic.c: the `samc mosaic` pipeline (see mosaic.h), after sam-mosaic's
 * core/pipeline.py, with its memory made bounded: labels are streamed through a raw
 * file on disk, the border merge is decided while tiles are produced, and the final
 * relabel is one LUT applied strip by strip. The phases share a run context (run.h);
 * the tile loop is in tiles.c, shards and the merge in shard.c. */
#include "pipelines/mosaic/mosaic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "pipelines/mosaic/run.h"

/* ---- folders -------------------------------------------------------------------- */

/* mkdir -p for the output folder */
static int make_dirs(const char *path, samc_error *err) {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: output folder path is too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot create folder %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot create output folder %s: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return samc_error_set(err, SAMC_ERR_IO, "mosaic: output path %s is not a folder", buf);
    return 0;
}

/* Removes the files of a flat temporary folder, then the folder. */
static void remove_tmp_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[1200];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* ---- a run's own phases -------------------------------------------------------------- */

/* The temporary folder: OUTDIR/.samc-mosaic-XXXXXX, or for a shard
 * OUTDIR/shards/.K.partial-XXXXXX (renamed to shards/K when complete). */
static int make_tmp_dir(run_ctx *c, samc_error *err) {
    char parent[1100];
    if (c->shard)
        snprintf(parent, sizeof parent, "%s/shards", c->out_dir);
    else
        snprintf(parent, sizeof parent, "%s", c->out_dir);
    if (make_dirs(parent, err)) return -1;
    int n = c->shard ? snprintf(c->tmp_dir, sizeof c->tmp_dir, "%s/.%d.partial-XXXXXX", parent, c->shard->index)
                     : snprintf(c->tmp_dir, sizeof c->tmp_dir, "%s/.samc-mosaic-XXXXXX", parent);
    if (n >= (int)sizeof c->tmp_dir - 32) {
        c->tmp_dir[0] = 0;
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: output folder path is too long: %s", c->out_dir);
    }
    if (!mkdtemp(c->tmp_dir)) {
        c->tmp_dir[0] = 0;
        return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write in the output folder %s: %s", parent,
                              strerror(errno));
    }
    snprintf(c->raw_path, sizeof c->raw_path, "%s/labels.raw", c->tmp_dir);
    snprintf(c->labels_tmp, sizeof c->labels_tmp, "%s/labels.tif", c->tmp_dir);
    snprintf(c->gpkg_tmp, sizeof c->gpkg_tmp, "%s/segments.gpkg", c->tmp_dir);
    snprintf(c->shp_tmp, sizeof c->shp_tmp, "%s/segments.shp", c->tmp_dir);
    snprintf(c->stats_tmp, sizeof c->stats_tmp, "%s/stats.json", c->tmp_dir);
    return 0;
}

/* Opens the raster, plans the grid and the band of tile rows, and makes the temporary
 * folder with the raw label file of the band (4 bytes per pixel, sparse where tiles are
 * empty). */
static int run_open(run_ctx *c, samc_error *err) {
    const mosaic_options *opt = c->opt;
    if (mosaic_raster_open(c->in_path, opt->has_bands ? opt->bands : NULL, opt->has_scale ? opt->scale : NULL,
                           &c->raster, err))
        return -1;
    c->info = mosaic_raster_get_info(c->raster);
    if (mosaic_grid_init(&c->g, c->info->width, c->info->height, opt->tile_size, opt->padding, err)) return -1;
    c->r0 = 0;
    c->r1 = c->g.n_rows;
    if (c->shard) {
        c->r0 = (int)((int64_t)c->shard->index * c->g.n_rows / c->shard->count);
        c->r1 = (int)((int64_t)(c->shard->index + 1) * c->g.n_rows / c->shard->count);
    }
    c->band_y0 = c->r0 * c->g.tile_size;
    c->band_y1 = c->r1 * c->g.tile_size < c->g.height ? c->r1 * c->g.tile_size : c->g.height;
    if (c->r1 == c->r0) c->band_y1 = c->band_y0;
    if (make_tmp_dir(c, err)) return -1;

    /* The labels.tif is compressed and smaller than the raw file: refuse early rather
     * than fill the disk. */
    uint64_t raw_bytes = (uint64_t)c->g.width * (uint64_t)(c->band_y1 - c->band_y0) * 4u;
    struct statvfs fs;
    if (statvfs(c->tmp_dir, &fs) == 0) {
        uint64_t avail = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
        if (avail < raw_bytes + (raw_bytes >> 2))
            return samc_error_set(err, SAMC_ERR_IO,
                                  "mosaic: %s has %.1f GiB free; a %dx%d raster needs about %.1f GiB of temporary "
                                  "label space there", c->out_dir, (double)avail / 1073741824.0, c->g.width,
                                  c->band_y1 - c->band_y0, (double)(raw_bytes + (raw_bytes >> 2)) / 1073741824.0);
    }
    c->raw_fd = open(c->raw_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (c->raw_fd < 0 || ftruncate(c->raw_fd, (off_t)raw_bytes) != 0)
        return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot create the temporary label file %s: %s", c->raw_path,
                              strerror(errno));
    return 0;
}

/* read_rows of a single run: the raw file. */
static int read_rows_raw(run_ctx *c, int y0, int n, uint32_t *rows, samc_error *err) {
    size_t cnt = (size_t)n * c->g.width;
    if (mosaic_read_all(c->raw_fd, rows, cnt * 4, (off_t)(y0 - c->band_y0) * c->g.width * 4) != 0)
        return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot read the temporary label file %s: %s", c->raw_path,
                              strerror(errno));
    return 0;
}

static void run_free(run_ctx *c) {
    if (c->raw_fd >= 0) close(c->raw_fd);
    if (c->tmp_dir[0]) remove_tmp_dir(c->tmp_dir);
    run_pool_free(c);
    shard_merge_free(c);
    if (c->raster) mosaic_raster_close(c->raster);
    if (c->uf.parent) mosaic_uf_free(&c->uf);
    free(c->left_col);
    free(c->bottom_row);
    free(c->edge);
    free(c->strip);
    free(c->lut);
    free(c->areas);
    run_attrs_free(c);
    cJSON_Delete(c->tiles_json);
    cJSON_Delete(c->tiles_timing);
    cJSON_Delete(c->stats_extra);
}

static void run_init(run_ctx *c, const mosaic_options *opt, const mosaic_callbacks *cb, const char *in_path,
                     const char *out_dir) {
    memset(c, 0, sizeof *c);
    c->t_start = mosaic_now_s();
    c->opt = opt;
    c->cb = cb;
    c->in_path = in_path;
    if (in_path) mosaic_redact_urls(in_path, c->in_shown, sizeof c->in_shown);
    c->out_dir = out_dir;
    c->raw_fd = -1;
    c->read_rows = read_rows_raw;
}

int mosaic_run_ex(samc_model *model, const mosaic_workers *workers, const mosaic_shard *shard, const char *in_path,
                  const char *out_dir, const mosaic_options *opt, const mosaic_callbacks *cb, mosaic_result *res,
                  samc_error *err) {
    memset(res, 0, sizeof *res);
    if (mosaic_options_check(opt, err)) return -1;
    if (workers && (workers->n_workers < 1 || workers->n_workers > 4096 || (!workers->sources && !workers->load)))
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: %d workers without a mask source or model loader",
                              workers->n_workers);
    if (shard && (shard->count < 1 || shard->index < 0 || shard->index >= shard->count))
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: shard %d/%d is not K/N with 0 <= K < N", shard->index,
                              shard->count);
    run_ctx c;
    run_init(&c, opt, cb, in_path, out_dir);
    c.model = model;
    c.workers = workers && (workers->n_workers > 1 || !model) ? workers : NULL;
    c.shard = shard;
    int rc;
    if (shard && (rc = shard_already_done(&c, res, err)) != 0) {
        run_free(&c);
        return rc > 0 ? 0 : -1;
    }
    if (shard)
        rc = run_open(&c, err) || run_pool_start(&c, err) || run_tiles(&c, err) || shard_write_outputs(&c, res, err);
    else
        rc = run_open(&c, err) || run_pool_start(&c, err) || run_tiles(&c, err) || run_lut(&c, err) ||
             run_labels(&c, err) || run_vectors(&c, err) || run_finish(&c, res, err);
    run_free(&c);
    return rc ? -1 : 0;
}

int mosaic_run(samc_model *model, const char *in_path, const char *out_dir, const mosaic_options *opt,
               const mosaic_callbacks *cb, mosaic_result *res, samc_error *err) {
    return mosaic_run_ex(model, NULL, NULL, in_path, out_dir, opt, cb, res, err);
}

int mosaic_merge(const char *out_dir, const mosaic_callbacks *cb, mosaic_result *res, samc_error *err) {
    memset(res, 0, sizeof *res);
    run_ctx c;
    run_init(&c, NULL, cb, NULL, out_dir);
    int rc = shard_merge_plan(&c, err) || make_tmp_dir(&c, err) || run_lut(&c, err) || run_labels(&c, err) ||
             run_vectors(&c, err) || run_finish(&c, res, err);
    res->shards = c.n_shards;
    run_free(&c);
    return rc ? -1 : 0;
}
