/* pipelines/mosaic/mosaic.c: the `samc mosaic` pipeline (see mosaic.h), after sam-mosaic's
 * core/pipeline.py, with its memory made bounded: labels are streamed through a raw
 * file on disk, the border merge is decided while tiles are produced, and the final
 * relabel is one LUT applied strip by strip. */
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
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pipelines/mosaic/config.h"
#include "pipelines/mosaic/raster.h"
#include "pipelines/mosaic/tiling.h"

/* rows of labels.tif written per strip: a multiple of its 256-pixel block height */
#define STRIP_ROWS 256

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

void mosaic_options_default(mosaic_options *o) {
    memset(o, 0, sizeof *o);
    o->tile_size = 1000;
    o->padding = 50;
    mosaic_multipass_options_default(&o->mp);
    o->merge = MOSAIC_MERGE_BEST_MATCH;
    o->min_contact = 5;
    o->merge_enclosed_max_area = 500;
    o->save_labels = 1;
    o->save_shapefile = 1;
    o->save_geopackage = 0;
    o->save_stats = 1;
    o->simplify_tolerance = 1.0;
}

int mosaic_options_check(const mosaic_options *o, samc_error *err) {
    if (o->tile_size < 16 || o->tile_size > 65536)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --tile-size %d is not in [16, 65536]", o->tile_size);
    if (o->padding < 0 || o->padding > 65536)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --padding %d is not in [0, 65536]", o->padding);
    if (o->min_contact < 1)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --min-contact %d must be >= 1", o->min_contact);
    if (o->merge_enclosed_max_area < 0)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --merge-enclosed-max-area %d must be >= 0",
                     o->merge_enclosed_max_area);
    if (!(o->simplify_tolerance >= 0) || !isfinite(o->simplify_tolerance))
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --simplify-tolerance %g must be a number >= 0",
                     o->simplify_tolerance);
    if (o->has_scale && !(o->scale[1] > o->scale[0]))
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --scale %g,%g: max must be greater than min", o->scale[0],
                     o->scale[1]);
    for (int i = 0; o->has_bands && i < 3; i++)
        if (o->bands[i] < 1) return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --bands: band %d is not >= 1", o->bands[i]);
    if (!o->save_labels && !o->save_shapefile && !o->save_geopackage && !o->save_stats)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: every output is switched off: nothing to write");
    return mosaic_multipass_options_check(&o->mp, err);
}

/* ---- files ---------------------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t n, off_t off) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k; n -= (size_t)k; off += k;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t n, off_t off) {
    char *p = buf;
    while (n > 0) {
        ssize_t k = pread(fd, p, n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) { memset(p, 0, n); return 0; }  /* past the end of a sparse file */
        p += k; n -= (size_t)k; off += k;
    }
    return 0;
}

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

/* Moves every file of tmp whose name starts with prefix into out (same file system). */
static int move_outputs(const char *tmp, const char *out, const char *prefix, samc_error *err) {
    DIR *d = opendir(tmp);
    if (!d) return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot list %s: %s", tmp, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        char a[1200], b[1200];
        snprintf(a, sizeof a, "%s/%s", tmp, e->d_name);
        snprintf(b, sizeof b, "%s/%s", out, e->d_name);
        if (rename(a, b) != 0) {
            rc = samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot move %s to %s: %s", a, b, strerror(errno));
            break;
        }
    }
    closedir(d);
    return rc;
}

/* ---- the run --------------------------------------------------------------------- */

typedef struct {
    double read_s, segment_s, cleanup_s, merge_s, spill_s, labels_s, vectors_s;
} stage_times;

/* Everything one mosaic_run holds, so that the phases below share it and one cleanup
 * (run_free) releases it whichever phase failed. */
typedef struct {
    const mosaic_options *opt;
    const mosaic_callbacks *cb;
    const char *in_path, *out_dir;
    double t_start, t_tiles;
    /* open / plan */
    mosaic_raster *raster;
    const mosaic_raster_info *info;
    mosaic_grid g;
    char tmp_dir[1100], raw_path[1200], labels_tmp[1200], gpkg_tmp[1200], shp_tmp[1200], stats_tmp[1200];
    int raw_fd;
    /* the tile loop: buffers sized once for the largest tile */
    mosaic_multipass *mp;
    mosaic_mask_source src;
    int have_src;
    uint8_t *rgb, *valid;
    uint32_t *tile_labels, *useful, *left_col, *bottom_row;
    mosaic_tile_stats ts;
    mosaic_uf uf;
    uint32_t next_id;
    int64_t valid_total, labelled_total;
    int tiles_total, tiles_done, tiles_skipped;
    cJSON *tiles_json;
    /* labels.tif: the union-find as a LUT, segment areas, one strip */
    uint32_t *lut, *strip, n_ids_total, n_final;
    uint64_t *areas;
    stage_times tm;
    mosaic_merge_stats ms;
    mosaic_cleanup_stats cs;
    mosaic_vector_stats vs;
} run_ctx;

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static cJSON *tile_json(int row, int col, const mosaic_rect *u, int skipped, const mosaic_tile_stats *ts,
                        double useful_coverage, int n_ids, double seconds) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "row", row);
    cJSON_AddNumberToObject(t, "col", col);
    cJSON *win = cJSON_AddArrayToObject(t, "useful_xywh");
    cJSON_AddItemToArray(win, cJSON_CreateNumber(u->x0));
    cJSON_AddItemToArray(win, cJSON_CreateNumber(u->y0));
    cJSON_AddItemToArray(win, cJSON_CreateNumber(u->x1 - u->x0));
    cJSON_AddItemToArray(win, cJSON_CreateNumber(u->y1 - u->y0));
    cJSON_AddBoolToObject(t, "skipped", skipped);
    cJSON_AddNumberToObject(t, "coverage", useful_coverage);
    cJSON_AddNumberToObject(t, "n_labels", n_ids);
    cJSON_AddNumberToObject(t, "seconds", seconds);
    if (!skipped) {
        cJSON_AddNumberToObject(t, "n_passes", ts->n_passes);
        cJSON_AddNumberToObject(t, "final_iou", ts->final_iou);
        cJSON_AddNumberToObject(t, "final_stability", ts->final_stability);
        cJSON *passes = cJSON_AddArrayToObject(t, "passes");
        for (int k = 0; k < ts->n_passes; k++) {
            const mosaic_pass_stats *p = &ts->pass[k];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "iou", p->iou);
            cJSON_AddNumberToObject(o, "stability", p->stability);
            cJSON_AddNumberToObject(o, "points", p->n_points);
            cJSON_AddNumberToObject(o, "masks_generated", p->masks_generated);
            cJSON_AddNumberToObject(o, "components_added", p->components_added);
            cJSON_AddNumberToObject(o, "filtered_small", p->filtered_small);
            cJSON_AddNumberToObject(o, "filtered_overlap", p->filtered_overlap);
            cJSON_AddNumberToObject(o, "coverage", p->coverage);
            cJSON_AddNumberToObject(o, "generate_ms", p->generate_ms);
            cJSON_AddNumberToObject(o, "accept_ms", p->accept_ms);
            cJSON_AddNumberToObject(o, "encode_ms", p->encode_ms);
            cJSON_AddNumberToObject(o, "decode_ms", p->decode_ms);
            cJSON_AddNumberToObject(o, "masks_ms", p->masks_ms);
            cJSON_AddItemToArray(passes, o);
        }
    }
    return t;
}

static int is_cancelled(const mosaic_callbacks *cb) {
    return cb && cb->cancelled && cb->cancelled(cb->cancel_ctx);
}

static double run_coverage(const run_ctx *c) {
    return c->valid_total ? 100.0 * (double)c->labelled_total / (double)c->valid_total : 0.0;
}

/* A progress report of a phase after the tiles ("labels", "vectors", "done"). */
static void report_phase(run_ctx *c, const char *phase, double eta_s) {
    if (!c->cb || !c->cb->progress) return;
    mosaic_progress p = { .phase = phase, .tiles_done = c->tiles_done, .tiles_total = c->tiles_total,
                          .tiles_skipped = c->tiles_skipped, .segments = c->n_final, .coverage = run_coverage(c),
                          .elapsed_s = now_s() - c->t_start, .eta_s = eta_s };
    c->cb->progress(c->cb->progress_ctx, &p);
}

/* Opens the raster, plans the grid, and makes the temporary folder in out_dir with the
 * raw label file (4 bytes per pixel, sparse where tiles are empty). */
static int run_open(run_ctx *c, samc_error *err) {
    const mosaic_options *opt = c->opt;
    if (mosaic_raster_open(c->in_path, opt->has_bands ? opt->bands : NULL, opt->has_scale ? opt->scale : NULL,
                           &c->raster, err))
        return -1;
    c->info = mosaic_raster_get_info(c->raster);
    if (mosaic_grid_init(&c->g, c->info->width, c->info->height, opt->tile_size, opt->padding, err)) return -1;
    if (make_dirs(c->out_dir, err)) return -1;
    if (snprintf(c->tmp_dir, sizeof c->tmp_dir, "%s/.samc-mosaic-XXXXXX", c->out_dir) >= (int)sizeof c->tmp_dir) {
        c->tmp_dir[0] = 0;
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: output folder path is too long: %s", c->out_dir);
    }
    if (!mkdtemp(c->tmp_dir)) {
        c->tmp_dir[0] = 0;
        return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write in the output folder %s: %s", c->out_dir,
                              strerror(errno));
    }
    snprintf(c->raw_path, sizeof c->raw_path, "%s/labels.raw", c->tmp_dir);
    snprintf(c->labels_tmp, sizeof c->labels_tmp, "%s/labels.tif", c->tmp_dir);
    snprintf(c->gpkg_tmp, sizeof c->gpkg_tmp, "%s/segments.gpkg", c->tmp_dir);
    snprintf(c->shp_tmp, sizeof c->shp_tmp, "%s/segments.shp", c->tmp_dir);
    snprintf(c->stats_tmp, sizeof c->stats_tmp, "%s/stats.json", c->tmp_dir);

    /* The labels.tif is compressed and smaller than the raw file: refuse early rather
     * than fill the disk. */
    uint64_t raw_bytes = (uint64_t)c->g.width * (uint64_t)c->g.height * 4u;
    struct statvfs fs;
    if (statvfs(c->tmp_dir, &fs) == 0) {
        uint64_t avail = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
        if (avail < raw_bytes + (raw_bytes >> 2))
            return samc_error_set(err, SAMC_ERR_IO,
                                  "mosaic: %s has %.1f GiB free; a %dx%d raster needs about %.1f GiB of temporary "
                                  "label space there", c->out_dir, (double)avail / 1073741824.0, c->g.width,
                                  c->g.height, (double)(raw_bytes + (raw_bytes >> 2)) / 1073741824.0);
    }
    c->raw_fd = open(c->raw_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (c->raw_fd < 0 || ftruncate(c->raw_fd, (off_t)raw_bytes) != 0)
        return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot create the temporary label file %s: %s", c->raw_path,
                              strerror(errno));
    return 0;
}

/* Every buffer of the tile loop, sized once for the largest tile; the pass planner and
 * the mask source; the union-find. */
static int run_alloc(run_ctx *c, samc_model *model, samc_error *err) {
    const mosaic_grid *g = &c->g;
    size_t rpix = (size_t)g->read_w * g->read_h;
    int umax_w = g->tile_size < g->width ? g->tile_size : g->width;
    int umax_h = g->tile_size < g->height ? g->tile_size : g->height;
    size_t upix = (size_t)umax_w * umax_h;
    c->rgb = malloc(rpix * 3);
    c->valid = malloc(rpix);
    c->tile_labels = malloc(rpix * sizeof *c->tile_labels);
    c->useful = malloc(upix * sizeof *c->useful);
    c->left_col = calloc((size_t)umax_h, sizeof *c->left_col);
    c->bottom_row = calloc((size_t)g->width, sizeof *c->bottom_row);
    c->tiles_json = cJSON_CreateArray();
    if (!c->rgb || !c->valid || !c->tile_labels || !c->useful || !c->left_col || !c->bottom_row || !c->tiles_json)
        return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the buffers of a %dx%d tile", g->read_w,
                              g->read_h);
    c->mp = mosaic_multipass_new(g->read_w, g->read_h, &c->opt->mp, err);
    if (!c->mp) return -1;
    if (c->cb && c->cb->mask_source) {
        c->src = *c->cb->mask_source;
    } else {
        if (mosaic_samc_source_new(model, &c->opt->mp, &c->src, err)) return -1;
        c->have_src = 1;
    }
    return mosaic_uf_init(&c->uf, 1, err);
}

/* Segments the tile of useful area u and read window rd into c->useful (uw x uh, global ids from c->next_id, 0 where
 * nothing); *uvalid gets its valid pixels, *skipped whether it was left out, *n_ids the
 * ids it took. */
static int tile_segment(run_ctx *c, const mosaic_rect *u, const mosaic_rect *rd, int64_t *uvalid, int *skipped,
                        uint32_t *n_ids, samc_error *err) {
    const mosaic_options *opt = c->opt;
    int rw = rd->x1 - rd->x0, rh = rd->y1 - rd->y0, uw = u->x1 - u->x0, uh = u->y1 - u->y0;
    double t0 = now_s();
    if (mosaic_raster_read_rgb(c->raster, rd->x0, rd->y0, rw, rh, c->rgb, c->valid, err) < 0) return -1;
    c->tm.read_s += now_s() - t0;
    /* a tile with no valid pixel in its useful area, or all black (a gap of the mosaic,
     * as the tool skips), is not segmented */
    int64_t nvalid = 0;
    int any_colour = 0;
    for (int y = u->y0; y < u->y1; y++)
        for (int x = u->x0; x < u->x1; x++) nvalid += c->valid[(size_t)(y - rd->y0) * rw + (x - rd->x0)];
    for (size_t k = 0; k < (size_t)rw * rh * 3 && !any_colour; k++) any_colour = c->rgb[k] != 0;
    *uvalid = nvalid;
    *skipped = nvalid == 0 || !any_colour;
    *n_ids = 0;
    mosaic_tile_stats_free(&c->ts);
    if (*skipped) {
        memset(c->useful, 0, (size_t)uw * uh * sizeof *c->useful);
        return 0;
    }
    const mosaic_callbacks *cb = c->cb;
    t0 = now_s();
    if (mosaic_multipass_run(c->mp, &c->src, c->rgb, c->valid, rw, rh, c->tile_labels, &c->ts,
                             cb ? cb->cancelled : NULL, cb ? cb->cancel_ctx : NULL, err))
        return -1;
    c->tm.segment_s += now_s() - t0;
    t0 = now_s();
    for (int y = 0; y < uh; y++)
        memcpy(c->useful + (size_t)y * uw, c->tile_labels + (size_t)(y + u->y0 - rd->y0) * rw + (u->x0 - rd->x0),
               (size_t)uw * sizeof *c->useful);
    if (mosaic_cleanup_fragments(c->useful, uw, uh, opt->mp.min_area, opt->merge_enclosed_max_area, &c->cs, err))
        return -1;
    if (mosaic_labels_compact(c->useful, (int64_t)uw * uh, c->next_id, n_ids, err)) return -1;
    if ((uint64_t)c->next_id + *n_ids >= UINT32_MAX)
        return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "mosaic: more than 4 billion segments before the merge");
    c->next_id += *n_ids;
    if (mosaic_uf_grow(&c->uf, c->next_id, err)) return -1;
    c->tm.cleanup_s += now_s() - t0;
    return 0;
}

/* The labels of tile (r, col), in c->useful, go to the raw file; the segments across its
 * borders with the left and upper neighbours are joined on the facing pixels. */
static int tile_commit(run_ctx *c, int r, int col, const mosaic_rect *u, samc_error *err) {
    const mosaic_options *opt = c->opt;
    int uw = u->x1 - u->x0, uh = u->y1 - u->y0;
    double t0 = now_s();
    for (int y = 0; y < uh; y++)
        if (write_all(c->raw_fd, c->useful + (size_t)y * uw, (size_t)uw * 4,
                      ((off_t)(u->y0 + y) * c->g.width + u->x0) * 4) != 0)
            return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write the temporary label file %s: %s",
                                  c->raw_path, strerror(errno));
    c->tm.spill_s += now_s() - t0;

    t0 = now_s();
    if (opt->merge != MOSAIC_MERGE_NONE) {
        if (col > 0) {
            for (int y = 0; y < uh; y++) c->tile_labels[y] = c->useful[(size_t)y * uw];
            if (mosaic_merge_boundary(c->left_col, c->tile_labels, uh, opt->merge, opt->min_contact, &c->uf, &c->ms,
                                      err))
                return -1;
        }
        if (r > 0 && mosaic_merge_boundary(c->bottom_row + u->x0, c->useful, uw, opt->merge, opt->min_contact, &c->uf,
                                           &c->ms, err))
            return -1;
    }
    for (int y = 0; y < uh; y++) c->left_col[y] = c->useful[(size_t)y * uw + uw - 1];
    memcpy(c->bottom_row + u->x0, c->useful + (size_t)(uh - 1) * uw, (size_t)uw * sizeof *c->useful);
    c->tm.merge_s += now_s() - t0;
    return 0;
}

/* One tile: segment, store, merge at its borders, account, report. */
static int run_tile(run_ctx *c, int r, int col, samc_error *err) {
    double t_tile = now_s();
    mosaic_rect u, rd;
    mosaic_tile_rects(&c->g, r, col, &u, &rd);
    int64_t uvalid;
    int skipped;
    uint32_t n_ids;
    if (tile_segment(c, &u, &rd, &uvalid, &skipped, &n_ids, err)) return -1;
    c->tiles_skipped += skipped;
    int64_t ulab = 0;
    for (size_t k = 0; k < (size_t)(u.x1 - u.x0) * (u.y1 - u.y0); k++) ulab += c->useful[k] != 0;
    c->valid_total += uvalid;
    c->labelled_total += ulab;
    if (tile_commit(c, r, col, &u, err)) return -1;

    double cov_u = uvalid ? 100.0 * (double)ulab / (double)uvalid : 0.0;
    cJSON_AddItemToArray(c->tiles_json, tile_json(r, col, &u, skipped, &c->ts, cov_u, (int)n_ids, now_s() - t_tile));
    c->tiles_done++;
    const mosaic_callbacks *cb = c->cb;
    if (cb && cb->progress) {
        mosaic_progress p = { .phase = "tiles", .tiles_done = c->tiles_done, .tiles_total = c->tiles_total,
                              .tiles_skipped = c->tiles_skipped, .tile_row = r, .tile_col = col,
                              .tile_passes = skipped ? 0 : c->ts.n_passes, .coverage = run_coverage(c),
                              .segments = c->next_id - 1, .elapsed_s = now_s() - c->t_start };
        double per = (now_s() - c->t_tiles) / c->tiles_done;
        p.eta_s = per * (c->tiles_total - c->tiles_done);
        cb->progress(cb->progress_ctx, &p);
    }
    return 0;
}

static int run_tiles(run_ctx *c, samc_error *err) {
    c->next_id = 1;
    c->tiles_total = c->g.n_rows * c->g.n_cols;
    c->t_tiles = now_s();
    for (int r = 0; r < c->g.n_rows; r++)
        for (int col = 0; col < c->g.n_cols; col++) {
            if (is_cancelled(c->cb))
                return samc_error_set(err, SAMC_ERR_ARG, "mosaic: cancelled after %d of %d tiles", c->tiles_done,
                                      c->tiles_total);
            if (run_tile(c, r, col, err)) return -1;
        }
    return 0;
}

/* The union-find as one LUT: roots (the smallest id of each merged set) numbered in id
 * order, every id mapped to its root's number. The union-find is freed. */
static int run_lut(run_ctx *c, samc_error *err) {
    c->n_ids_total = c->next_id - 1;
    c->n_final = 0;
    c->lut = malloc(((size_t)c->n_ids_total + 1) * sizeof *c->lut);
    if (!c->lut)
        return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the LUT of %u segments", c->n_ids_total);
    c->lut[0] = 0;
    for (uint32_t id = 1; id <= c->n_ids_total; id++) {
        uint32_t root = mosaic_uf_find(&c->uf, id);
        c->lut[id] = root == id ? ++c->n_final : c->lut[root];
    }
    mosaic_uf_free(&c->uf);
    memset(&c->uf, 0, sizeof c->uf);
    c->areas = calloc((size_t)c->n_final + 1, sizeof *c->areas);
    c->strip = malloc((size_t)c->g.width * STRIP_ROWS * sizeof *c->strip);
    if (!c->areas || !c->strip)
        return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for a %d-row strip of a %d-pixel-wide raster",
                              STRIP_ROWS, c->g.width);
    return 0;
}

/* Raw file -> LUT -> labels.tif (also needed, as a temporary, for the polygons), strip
 * by strip, counting each final segment's area. */
static int write_label_strips(run_ctx *c, mosaic_label_writer *lw, samc_error *err) {
    for (int y0 = 0; y0 < c->g.height; y0 += STRIP_ROWS) {
        int n = c->g.height - y0 < STRIP_ROWS ? c->g.height - y0 : STRIP_ROWS;
        size_t cnt = (size_t)n * c->g.width;
        if (read_all(c->raw_fd, c->strip, cnt * 4, (off_t)y0 * c->g.width * 4) != 0)
            return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot read the temporary label file %s: %s", c->raw_path,
                                  strerror(errno));
        for (size_t k = 0; k < cnt; k++) {
            uint32_t v = c->strip[k];
            if (v > c->n_ids_total)
                return samc_error_set(err, SAMC_ERR_INTERNAL, "mosaic: label %u in %s is beyond the %u ids given", v,
                                      c->raw_path, c->n_ids_total);
            c->strip[k] = c->lut[v];
            c->areas[c->strip[k]]++;
        }
        if (lw && mosaic_label_writer_write(lw, y0, n, c->strip, err)) return -1;
        if (is_cancelled(c->cb)) return samc_error_set(err, SAMC_ERR_ARG, "mosaic: cancelled while writing the labels");
    }
    return 0;
}

static int run_labels(run_ctx *c, samc_error *err) {
    const mosaic_options *opt = c->opt;
    double t0 = now_s();
    report_phase(c, "labels", -1);
    mosaic_label_writer *lw = NULL;
    if ((opt->save_labels || opt->save_geopackage || opt->save_shapefile) &&
        mosaic_label_writer_create(c->labels_tmp, c->g.width, c->g.height, c->n_final, c->info, &lw, err))
        return -1;
    if (write_label_strips(c, lw, err)) {
        if (lw) mosaic_label_writer_close(lw, NULL);
        return -1;
    }
    if (lw && mosaic_label_writer_close(lw, err)) return -1;
    close(c->raw_fd);
    c->raw_fd = -1;
    unlink(c->raw_path);
    c->tm.labels_s = now_s() - t0;
    return 0;
}

static int run_vectors(run_ctx *c, samc_error *err) {
    const mosaic_options *opt = c->opt;
    if (opt->save_geopackage || opt->save_shapefile) {
        report_phase(c, "vectors", -1);
        double t0 = now_s();
        const mosaic_callbacks *cb = c->cb;
        if (mosaic_polygonize(c->labels_tmp, opt->save_geopackage ? c->gpkg_tmp : NULL,
                              opt->save_shapefile ? c->shp_tmp : NULL, opt->simplify_tolerance, &c->vs,
                              cb ? cb->cancelled : NULL, cb ? cb->cancel_ctx : NULL, err))
            return -1;
        c->tm.vectors_s = now_s() - t0;
    }
    if (!opt->save_labels) unlink(c->labels_tmp);
    return 0;
}

static void stats_input(cJSON *stats, const char *in_path, const mosaic_raster_info *info) {
    cJSON *in = cJSON_AddObjectToObject(stats, "input");
    cJSON_AddStringToObject(in, "path", in_path);
    cJSON_AddNumberToObject(in, "width", info->width);
    cJSON_AddNumberToObject(in, "height", info->height);
    cJSON_AddNumberToObject(in, "bands", info->n_bands);
    cJSON_AddStringToObject(in, "dtype", info->dtype);
    cJSON *bu = cJSON_AddArrayToObject(in, "bands_used");
    for (int i = 0; i < 3; i++) cJSON_AddItemToArray(bu, cJSON_CreateNumber(info->bands_used[i]));
    cJSON *sc = cJSON_AddArrayToObject(in, "scale_min_max");
    cJSON_AddItemToArray(sc, cJSON_CreateNumber(info->scale_min));
    cJSON_AddItemToArray(sc, cJSON_CreateNumber(info->scale_max));
    if (info->has_nodata) cJSON_AddNumberToObject(in, "nodata", info->nodata);
    cJSON_AddBoolToObject(in, "georeferenced", info->has_geotransform);
}

/* Segment sizes: areas[1..n], sorted in place for the median. */
static void stats_sizes(cJSON *stats, uint64_t *areas, uint32_t n) {
    if (n == 0) return;
    uint64_t *a = areas + 1, sum = 0;
    qsort(a, n, sizeof *a, cmp_u64);
    for (uint32_t k = 0; k < n; k++) sum += a[k];
    cJSON *sz = cJSON_AddObjectToObject(stats, "segment_pixels");
    cJSON_AddNumberToObject(sz, "min", (double)a[0]);
    cJSON_AddNumberToObject(sz, "median", (double)a[n / 2]);
    cJSON_AddNumberToObject(sz, "mean", (double)sum / n);
    cJSON_AddNumberToObject(sz, "max", (double)a[n - 1]);
}

static void stats_timings(cJSON *stats, const stage_times *tm, double total_s) {
    cJSON *tj = cJSON_AddObjectToObject(stats, "timings_s");
    cJSON_AddNumberToObject(tj, "read", tm->read_s);
    cJSON_AddNumberToObject(tj, "segment", tm->segment_s);
    cJSON_AddNumberToObject(tj, "cleanup_and_ids", tm->cleanup_s);
    cJSON_AddNumberToObject(tj, "spill_to_disk", tm->spill_s);
    cJSON_AddNumberToObject(tj, "border_merge", tm->merge_s);
    cJSON_AddNumberToObject(tj, "labels_tif", tm->labels_s);
    cJSON_AddNumberToObject(tj, "vectors", tm->vectors_s);
    cJSON_AddNumberToObject(tj, "total", total_s);
}

static int write_json_file(const char *path, const cJSON *j, samc_error *err) {
    char *text = cJSON_Print(j);
    FILE *f = text ? fopen(path, "w") : NULL;
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    free(text);
    return ok ? 0 : samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write %s", path);
}

/* stats.json: the input, grid, counts, merge and clean-up, timings, config, tiles. */
static int run_stats(run_ctx *c, samc_error *err) {
    const mosaic_options *opt = c->opt;
    if (!opt->save_stats) return 0;
    cJSON *stats = cJSON_CreateObject();
    if (!stats) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for stats.json");
    cJSON_AddStringToObject(stats, "tool", "samc mosaic " SAMC_VERSION);
    stats_input(stats, c->in_path, c->info);
    cJSON *grid = cJSON_AddObjectToObject(stats, "grid");
    cJSON_AddNumberToObject(grid, "cols", c->g.n_cols);
    cJSON_AddNumberToObject(grid, "rows", c->g.n_rows);
    cJSON_AddNumberToObject(grid, "tiles", c->tiles_total);
    cJSON_AddNumberToObject(grid, "tiles_skipped", c->tiles_skipped);
    cJSON_AddNumberToObject(stats, "coverage", run_coverage(c));
    cJSON_AddNumberToObject(stats, "valid_pixels", (double)c->valid_total);
    cJSON_AddNumberToObject(stats, "labelled_pixels", (double)c->labelled_total);
    cJSON_AddNumberToObject(stats, "segments", (double)c->n_final);
    cJSON_AddNumberToObject(stats, "segments_before_merge", (double)c->n_ids_total);
    stats_sizes(stats, c->areas, c->n_final);
    cJSON *mj = cJSON_AddObjectToObject(stats, "merge");
    cJSON_AddStringToObject(mj, "strategy", mosaic_merge_strategy_name(opt->merge));
    cJSON_AddNumberToObject(mj, "pairs_found", (double)c->ms.pairs_found);
    cJSON_AddNumberToObject(mj, "pairs_joined", (double)c->ms.pairs_joined);
    cJSON_AddNumberToObject(mj, "labels_merged", (double)(c->n_ids_total - c->n_final));
    cJSON *cj = cJSON_AddObjectToObject(stats, "cleanup");
    cJSON_AddNumberToObject(cj, "fragments", (double)c->cs.fragments);
    cJSON_AddNumberToObject(cj, "merged_enclosed", (double)c->cs.merged_enclosed);
    cJSON_AddNumberToObject(cj, "removed_small", (double)c->cs.removed_small);
    cJSON_AddNumberToObject(cj, "pixels_removed", (double)c->cs.pixels_removed);
    if (opt->save_geopackage || opt->save_shapefile) {
        cJSON *vj = cJSON_AddObjectToObject(stats, "vectors");
        cJSON_AddNumberToObject(vj, "polygons", (double)c->vs.n_polygons);
        cJSON_AddNumberToObject(vj, "made_valid", (double)c->vs.n_made_valid);
        cJSON_AddNumberToObject(vj, "dropped_empty", (double)c->vs.n_dropped_empty);
    }
    stats_timings(stats, &c->tm, now_s() - c->t_start);
    cJSON_AddNumberToObject(stats, "peak_rss_mib", peak_rss_mib());
    char *own = opt->config_json ? NULL : mosaic_config_json(opt, NULL, NULL);
    cJSON *cfg = cJSON_Parse(opt->config_json ? opt->config_json : own ? own : "{}");
    free(own);
    cJSON_AddItemToObject(stats, "config", cfg ? cfg : cJSON_CreateObject());
    cJSON_AddItemToObject(stats, "tiles", c->tiles_json);
    c->tiles_json = NULL;
    int rc = write_json_file(c->stats_tmp, stats, err);
    cJSON_Delete(stats);
    return rc;
}

/* Everything is written: the results, and the files under their final names. */
static int run_finish(run_ctx *c, mosaic_result *res, samc_error *err) {
    const mosaic_options *opt = c->opt;
    res->segments = c->n_final;
    res->segments_before_merge = c->n_ids_total;
    res->valid_pixels = c->valid_total;
    res->labelled_pixels = c->labelled_total;
    res->coverage = run_coverage(c);
    res->tiles = c->tiles_total;
    res->tiles_skipped = c->tiles_skipped;
    res->total_s = now_s() - c->t_start;
    if (run_stats(c, err)) return -1;
    if (opt->save_labels && move_outputs(c->tmp_dir, c->out_dir, "labels.tif", err)) return -1;
    if ((opt->save_geopackage || opt->save_shapefile) && move_outputs(c->tmp_dir, c->out_dir, "segments.", err))
        return -1;
    if (opt->save_stats && move_outputs(c->tmp_dir, c->out_dir, "stats.json", err)) return -1;
    if (opt->save_labels) snprintf(res->labels_path, sizeof res->labels_path, "%s/labels.tif", c->out_dir);
    if (opt->save_geopackage) snprintf(res->gpkg_path, sizeof res->gpkg_path, "%s/segments.gpkg", c->out_dir);
    if (opt->save_shapefile) snprintf(res->shp_path, sizeof res->shp_path, "%s/segments.shp", c->out_dir);
    if (opt->save_stats) snprintf(res->stats_path, sizeof res->stats_path, "%s/stats.json", c->out_dir);
    report_phase(c, "done", 0);
    return 0;
}

static void run_free(run_ctx *c) {
    if (c->raw_fd >= 0) close(c->raw_fd);
    if (c->tmp_dir[0]) remove_tmp_dir(c->tmp_dir);
    mosaic_tile_stats_free(&c->ts);
    if (c->have_src) mosaic_samc_source_free(&c->src);
    if (c->mp) mosaic_multipass_free(c->mp);
    if (c->raster) mosaic_raster_close(c->raster);
    if (c->uf.parent) mosaic_uf_free(&c->uf);
    free(c->rgb);
    free(c->valid);
    free(c->tile_labels);
    free(c->useful);
    free(c->left_col);
    free(c->bottom_row);
    free(c->strip);
    free(c->lut);
    free(c->areas);
    cJSON_Delete(c->tiles_json);
}

int mosaic_run(samc_model *model, const char *in_path, const char *out_dir, const mosaic_options *opt,
               const mosaic_callbacks *cb, mosaic_result *res, samc_error *err) {
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.t_start = now_s();
    c.opt = opt;
    c.cb = cb;
    c.in_path = in_path;
    c.out_dir = out_dir;
    c.raw_fd = -1;
    memset(res, 0, sizeof *res);
    if (mosaic_options_check(opt, err)) return -1;
    int rc = run_open(&c, err) || run_alloc(&c, model, err) || run_tiles(&c, err) || run_lut(&c, err) ||
             run_labels(&c, err) || run_vectors(&c, err) || run_finish(&c, res, err) ? -1 : 0;
    run_free(&c);
    return rc;
}
