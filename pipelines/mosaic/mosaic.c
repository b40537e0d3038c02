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

int mosaic_run(samc_model *model, const char *in_path, const char *out_dir, const mosaic_options *opt,
               const mosaic_callbacks *cb, mosaic_result *res, samc_error *err) {
    double t_start = now_s();
    memset(res, 0, sizeof *res);
    if (mosaic_options_check(opt, err)) return -1;

    mosaic_raster *raster = NULL;
    mosaic_multipass *mp = NULL;
    mosaic_mask_source src = { 0 };
    int have_src = 0;
    mosaic_uf uf = { 0 };
    mosaic_tile_stats ts = { 0 };
    uint8_t *rgb = NULL, *valid = NULL;
    uint32_t *tile_labels = NULL, *useful = NULL, *left_col = NULL, *bottom_row = NULL, *strip = NULL;
    uint32_t *lut = NULL;
    uint64_t *areas = NULL;
    cJSON *stats = NULL, *tiles_json = NULL;
    int raw_fd = -1, rc = -1;
    char tmp_dir[1100] = "", raw_path[1200], labels_tmp[1200], gpkg_tmp[1200], shp_tmp[1200], stats_tmp[1200];
    stage_times tm = { 0 };
    mosaic_merge_stats ms = { 0 };
    mosaic_cleanup_stats cs = { 0 };
    mosaic_vector_stats vs = { 0 };

    if (mosaic_raster_open(in_path, opt->has_bands ? opt->bands : NULL, opt->has_scale ? opt->scale : NULL,
                           &raster, err))
        goto done;
    const mosaic_raster_info *info = mosaic_raster_get_info(raster);
    mosaic_grid g;
    if (mosaic_grid_init(&g, info->width, info->height, opt->tile_size, opt->padding, err)) goto done;

    if (make_dirs(out_dir, err)) goto done;
    if (snprintf(tmp_dir, sizeof tmp_dir, "%s/.samc-mosaic-XXXXXX", out_dir) >= (int)sizeof tmp_dir) {
        samc_error_set(err, SAMC_ERR_ARG, "mosaic: output folder path is too long: %s", out_dir);
        tmp_dir[0] = 0;
        goto done;
    }
    if (!mkdtemp(tmp_dir)) {
        samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write in the output folder %s: %s", out_dir, strerror(errno));
        tmp_dir[0] = 0;
        goto done;
    }
    snprintf(raw_path, sizeof raw_path, "%s/labels.raw", tmp_dir);
    snprintf(labels_tmp, sizeof labels_tmp, "%s/labels.tif", tmp_dir);
    snprintf(gpkg_tmp, sizeof gpkg_tmp, "%s/segments.gpkg", tmp_dir);
    snprintf(shp_tmp, sizeof shp_tmp, "%s/segments.shp", tmp_dir);
    snprintf(stats_tmp, sizeof stats_tmp, "%s/stats.json", tmp_dir);

    /* The raw label file holds 4 bytes per pixel (sparse where tiles are empty); the
     * labels.tif is compressed and smaller. Refuse early rather than fill the disk. */
    uint64_t raw_bytes = (uint64_t)g.width * (uint64_t)g.height * 4u;
    struct statvfs fs;
    if (statvfs(tmp_dir, &fs) == 0) {
        uint64_t avail = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
        if (avail < raw_bytes + (raw_bytes >> 2)) {
            samc_error_set(err, SAMC_ERR_IO,
                  "mosaic: %s has %.1f GiB free; a %dx%d raster needs about %.1f GiB of temporary "
                  "label space there", out_dir, (double)avail / 1073741824.0, g.width, g.height,
                  (double)(raw_bytes + (raw_bytes >> 2)) / 1073741824.0);
            goto done;
        }
    }
    raw_fd = open(raw_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (raw_fd < 0 || ftruncate(raw_fd, (off_t)raw_bytes) != 0) {
        samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot create the temporary label file %s: %s", raw_path, strerror(errno));
        goto done;
    }

    /* every buffer of the tile loop, sized once for the largest tile */
    size_t rpix = (size_t)g.read_w * g.read_h;
    int umax_w = g.tile_size < g.width ? g.tile_size : g.width;
    int umax_h = g.tile_size < g.height ? g.tile_size : g.height;
    size_t upix = (size_t)umax_w * umax_h;
    rgb = malloc(rpix * 3);
    valid = malloc(rpix);
    tile_labels = malloc(rpix * sizeof *tile_labels);
    useful = malloc(upix * sizeof *useful);
    left_col = calloc((size_t)umax_h, sizeof *left_col);
    bottom_row = calloc((size_t)g.width, sizeof *bottom_row);
    if (!rgb || !valid || !tile_labels || !useful || !left_col || !bottom_row) {
        samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the buffers of a %dx%d tile", g.read_w, g.read_h);
        goto done;
    }
    mp = mosaic_multipass_new(g.read_w, g.read_h, &opt->mp, err);
    if (!mp) goto done;
    if (cb && cb->mask_source) {
        src = *cb->mask_source;
    } else {
        if (mosaic_samc_source_new(model, &opt->mp, &src, err)) goto done;
        have_src = 1;
    }
    if (mosaic_uf_init(&uf, 1, err)) goto done;

    stats = cJSON_CreateObject();
    tiles_json = cJSON_CreateArray();
    uint32_t next_id = 1;
    int64_t valid_total = 0, labelled_total = 0;
    int tiles_total = g.n_rows * g.n_cols, tiles_done = 0, tiles_skipped = 0;
    double t_tiles = now_s();
    for (int r = 0; r < g.n_rows; r++) {
        for (int c = 0; c < g.n_cols; c++) {
            if (is_cancelled(cb)) {
                samc_error_set(err, SAMC_ERR_ARG, "mosaic: cancelled after %d of %d tiles", tiles_done, tiles_total);
                goto done;
            }
            double t_tile = now_s();
            mosaic_rect u, rd;
            mosaic_tile_rects(&g, r, c, &u, &rd);
            int rw = rd.x1 - rd.x0, rh = rd.y1 - rd.y0, uw = u.x1 - u.x0, uh = u.y1 - u.y0;
            double t0 = now_s();
            if (mosaic_raster_read_rgb(raster, rd.x0, rd.y0, rw, rh, rgb, valid, err) < 0) goto done;
            tm.read_s += now_s() - t0;
            /* a tile with no valid pixel in its useful area, or all black (a gap of the
             * mosaic, as the tool skips), is not segmented */
            int64_t uvalid = 0;
            int any_colour = 0;
            for (int y = u.y0; y < u.y1; y++)
                for (int x = u.x0; x < u.x1; x++) uvalid += valid[(size_t)(y - rd.y0) * rw + (x - rd.x0)];
            for (size_t k = 0; k < (size_t)rw * rh * 3 && !any_colour; k++) any_colour = rgb[k] != 0;
            int skipped = uvalid == 0 || !any_colour;
            uint32_t n_ids = 0;
            mosaic_tile_stats_free(&ts);
            if (skipped) {
                memset(useful, 0, (size_t)uw * uh * sizeof *useful);
                tiles_skipped++;
            } else {
                t0 = now_s();
                if (mosaic_multipass_run(mp, &src, rgb, valid, rw, rh, tile_labels, &ts,
                                         cb ? cb->cancelled : NULL, cb ? cb->cancel_ctx : NULL, err))
                    goto done;
                tm.segment_s += now_s() - t0;
                t0 = now_s();
                for (int y = 0; y < uh; y++)
                    memcpy(useful + (size_t)y * uw, tile_labels + (size_t)(y + u.y0 - rd.y0) * rw + (u.x0 - rd.x0),
                           (size_t)uw * sizeof *useful);
                if (mosaic_cleanup_fragments(useful, uw, uh, opt->mp.min_area, opt->merge_enclosed_max_area, &cs, err))
                    goto done;
                if (mosaic_labels_compact(useful, (int64_t)uw * uh, next_id, &n_ids, err)) goto done;
                if ((uint64_t)next_id + n_ids >= UINT32_MAX) {
                    samc_error_set(err, SAMC_ERR_UNSUPPORTED, "mosaic: more than 4 billion segments before the merge");
                    goto done;
                }
                next_id += n_ids;
                if (mosaic_uf_grow(&uf, next_id, err)) goto done;
                tm.cleanup_s += now_s() - t0;
            }
            int64_t ulab = 0;
            for (size_t k = 0; k < (size_t)uw * uh; k++) ulab += useful[k] != 0;
            valid_total += uvalid;
            labelled_total += ulab;

            t0 = now_s();
            for (int y = 0; y < uh; y++)
                if (write_all(raw_fd, useful + (size_t)y * uw, (size_t)uw * 4,
                              ((off_t)(u.y0 + y) * g.width + u.x0) * 4) != 0) {
                    samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write the temporary label file %s: %s", raw_path,
                          strerror(errno));
                    goto done;
                }
            tm.spill_s += now_s() - t0;

            /* the border merge with the left and upper neighbours, on the facing pixels */
            t0 = now_s();
            if (opt->merge != MOSAIC_MERGE_NONE) {
                if (c > 0) {
                    for (int y = 0; y < uh; y++) tile_labels[y] = useful[(size_t)y * uw];
                    if (mosaic_merge_boundary(left_col, tile_labels, uh, opt->merge, opt->min_contact, &uf, &ms, err))
                        goto done;
                }
                if (r > 0 && mosaic_merge_boundary(bottom_row + u.x0, useful, uw, opt->merge, opt->min_contact,
                                                   &uf, &ms, err))
                    goto done;
            }
            for (int y = 0; y < uh; y++) left_col[y] = useful[(size_t)y * uw + uw - 1];
            memcpy(bottom_row + u.x0, useful + (size_t)(uh - 1) * uw, (size_t)uw * sizeof *useful);
            tm.merge_s += now_s() - t0;

            double cov_u = uvalid ? 100.0 * (double)ulab / (double)uvalid : 0.0;
            cJSON_AddItemToArray(tiles_json, tile_json(r, c, &u, skipped, &ts, cov_u, (int)n_ids, now_s() - t_tile));
            tiles_done++;
            if (cb && cb->progress) {
                mosaic_progress p = { .phase = "tiles", .tiles_done = tiles_done, .tiles_total = tiles_total,
                                      .tiles_skipped = tiles_skipped, .tile_row = r, .tile_col = c,
                                      .tile_passes = skipped ? 0 : ts.n_passes,
                                      .coverage = valid_total ? 100.0 * (double)labelled_total / (double)valid_total : 0,
                                      .segments = next_id - 1, .elapsed_s = now_s() - t_start };
                double per = (now_s() - t_tiles) / tiles_done;
                p.eta_s = per * (tiles_total - tiles_done);
                cb->progress(cb->progress_ctx, &p);
            }
        }
    }

    /* the union-find as one LUT: roots (the smallest id of each merged set) numbered in
     * id order, every id mapped to its root's number */
    uint32_t n_ids_total = next_id - 1, n_final = 0;
    lut = malloc(((size_t)n_ids_total + 1) * sizeof *lut);
    if (!lut) {
        samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the LUT of %u segments", n_ids_total);
        goto done;
    }
    lut[0] = 0;
    for (uint32_t id = 1; id <= n_ids_total; id++) {
        uint32_t root = mosaic_uf_find(&uf, id);
        lut[id] = root == id ? ++n_final : lut[root];
    }
    mosaic_uf_free(&uf);
    memset(&uf, 0, sizeof uf);
    areas = calloc((size_t)n_final + 1, sizeof *areas);
    strip = malloc((size_t)g.width * STRIP_ROWS * sizeof *strip);
    if (!areas || !strip) {
        samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for a %d-row strip of a %d-pixel-wide raster", STRIP_ROWS,
              g.width);
        goto done;
    }

    /* labels.tif, strip by strip (also needed, as a temporary, for the polygons) */
    int want_vectors = opt->save_geopackage || opt->save_shapefile;
    double t0 = now_s();
    if (cb && cb->progress) {
        mosaic_progress p = { .phase = "labels", .tiles_done = tiles_done, .tiles_total = tiles_total,
                              .tiles_skipped = tiles_skipped, .segments = n_final, .elapsed_s = now_s() - t_start,
                              .eta_s = -1,
                              .coverage = valid_total ? 100.0 * (double)labelled_total / (double)valid_total : 0 };
        cb->progress(cb->progress_ctx, &p);
    }
    mosaic_label_writer *lw = NULL;
    if ((opt->save_labels || want_vectors) &&
        mosaic_label_writer_create(labels_tmp, g.width, g.height, n_final, info, &lw, err))
        goto done;
    for (int y0 = 0; y0 < g.height; y0 += STRIP_ROWS) {
        int n = g.height - y0 < STRIP_ROWS ? g.height - y0 : STRIP_ROWS;
        size_t cnt = (size_t)n * g.width;
        if (read_all(raw_fd, strip, cnt * 4, (off_t)y0 * g.width * 4) != 0) {
            samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot read the temporary label file %s: %s", raw_path, strerror(errno));
            if (lw) mosaic_label_writer_close(lw, NULL);
            goto done;
        }
        for (size_t k = 0; k < cnt; k++) {
            uint32_t v = strip[k];
            if (v > n_ids_total) {
                samc_error_set(err, SAMC_ERR_INTERNAL, "mosaic: label %u in %s is beyond the %u ids given", v, raw_path, n_ids_total);
                if (lw) mosaic_label_writer_close(lw, NULL);
                goto done;
            }
            strip[k] = lut[v];
            areas[strip[k]]++;
        }
        if (lw && mosaic_label_writer_write(lw, y0, n, strip, err)) {
            mosaic_label_writer_close(lw, NULL);
            goto done;
        }
        if (is_cancelled(cb)) {
            samc_error_set(err, SAMC_ERR_ARG, "mosaic: cancelled while writing the labels");
            if (lw) mosaic_label_writer_close(lw, NULL);
            goto done;
        }
    }
    if (lw && mosaic_label_writer_close(lw, err)) goto done;
    close(raw_fd);
    raw_fd = -1;
    unlink(raw_path);
    tm.labels_s = now_s() - t0;

    if (want_vectors) {
        if (cb && cb->progress) {
            mosaic_progress p = { .phase = "vectors", .tiles_done = tiles_done, .tiles_total = tiles_total,
                                  .tiles_skipped = tiles_skipped, .segments = n_final,
                                  .elapsed_s = now_s() - t_start, .eta_s = -1,
                                  .coverage = valid_total ? 100.0 * (double)labelled_total / (double)valid_total : 0 };
            cb->progress(cb->progress_ctx, &p);
        }
        t0 = now_s();
        if (mosaic_polygonize(labels_tmp, opt->save_geopackage ? gpkg_tmp : NULL, opt->save_shapefile ? shp_tmp : NULL,
                              opt->simplify_tolerance, &vs, cb ? cb->cancelled : NULL, cb ? cb->cancel_ctx : NULL, err))
            goto done;
        tm.vectors_s = now_s() - t0;
    }
    if (!opt->save_labels) unlink(labels_tmp);

    /* results */
    res->segments = n_final;
    res->segments_before_merge = n_ids_total;
    res->valid_pixels = valid_total;
    res->labelled_pixels = labelled_total;
    res->coverage = valid_total ? 100.0 * (double)labelled_total / (double)valid_total : 0.0;
    res->tiles = tiles_total;
    res->tiles_skipped = tiles_skipped;
    res->total_s = now_s() - t_start;

    if (opt->save_stats) {
        cJSON_AddStringToObject(stats, "tool", "samc mosaic " SAMC_VERSION);
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
        cJSON *grid = cJSON_AddObjectToObject(stats, "grid");
        cJSON_AddNumberToObject(grid, "cols", g.n_cols);
        cJSON_AddNumberToObject(grid, "rows", g.n_rows);
        cJSON_AddNumberToObject(grid, "tiles", tiles_total);
        cJSON_AddNumberToObject(grid, "tiles_skipped", tiles_skipped);
        cJSON_AddNumberToObject(stats, "coverage", res->coverage);
        cJSON_AddNumberToObject(stats, "valid_pixels", (double)valid_total);
        cJSON_AddNumberToObject(stats, "labelled_pixels", (double)labelled_total);
        cJSON_AddNumberToObject(stats, "segments", (double)n_final);
        cJSON_AddNumberToObject(stats, "segments_before_merge", (double)n_ids_total);
        if (n_final > 0) {
            /* segment sizes: areas[1..n_final], sorted in place for the median */
            uint64_t *a = areas + 1, sum = 0;
            qsort(a, n_final, sizeof *a, cmp_u64);
            for (uint32_t k = 0; k < n_final; k++) sum += a[k];
            cJSON *sz = cJSON_AddObjectToObject(stats, "segment_pixels");
            cJSON_AddNumberToObject(sz, "min", (double)a[0]);
            cJSON_AddNumberToObject(sz, "median", (double)a[n_final / 2]);
            cJSON_AddNumberToObject(sz, "mean", (double)sum / n_final);
            cJSON_AddNumberToObject(sz, "max", (double)a[n_final - 1]);
        }
        cJSON *mj = cJSON_AddObjectToObject(stats, "merge");
        cJSON_AddStringToObject(mj, "strategy", mosaic_merge_strategy_name(opt->merge));
        cJSON_AddNumberToObject(mj, "pairs_found", (double)ms.pairs_found);
        cJSON_AddNumberToObject(mj, "pairs_joined", (double)ms.pairs_joined);
        cJSON_AddNumberToObject(mj, "labels_merged", (double)(n_ids_total - n_final));
        cJSON *cj = cJSON_AddObjectToObject(stats, "cleanup");
        cJSON_AddNumberToObject(cj, "fragments", (double)cs.fragments);
        cJSON_AddNumberToObject(cj, "merged_enclosed", (double)cs.merged_enclosed);
        cJSON_AddNumberToObject(cj, "removed_small", (double)cs.removed_small);
        cJSON_AddNumberToObject(cj, "pixels_removed", (double)cs.pixels_removed);
        if (want_vectors) {
            cJSON *vj = cJSON_AddObjectToObject(stats, "vectors");
            cJSON_AddNumberToObject(vj, "polygons", (double)vs.n_polygons);
            cJSON_AddNumberToObject(vj, "made_valid", (double)vs.n_made_valid);
            cJSON_AddNumberToObject(vj, "dropped_empty", (double)vs.n_dropped_empty);
        }
        cJSON *tj = cJSON_AddObjectToObject(stats, "timings_s");
        cJSON_AddNumberToObject(tj, "read", tm.read_s);
        cJSON_AddNumberToObject(tj, "segment", tm.segment_s);
        cJSON_AddNumberToObject(tj, "cleanup_and_ids", tm.cleanup_s);
        cJSON_AddNumberToObject(tj, "spill_to_disk", tm.spill_s);
        cJSON_AddNumberToObject(tj, "border_merge", tm.merge_s);
        cJSON_AddNumberToObject(tj, "labels_tif", tm.labels_s);
        cJSON_AddNumberToObject(tj, "vectors", tm.vectors_s);
        cJSON_AddNumberToObject(tj, "total", now_s() - t_start);
        cJSON_AddNumberToObject(stats, "peak_rss_mib", peak_rss_mib());
        char *own = opt->config_json ? NULL : mosaic_config_json(opt, NULL, NULL);
        cJSON *cfg = cJSON_Parse(opt->config_json ? opt->config_json : own ? own : "{}");
        free(own);
        cJSON_AddItemToObject(stats, "config", cfg ? cfg : cJSON_CreateObject());
        cJSON_AddItemToObject(stats, "tiles", tiles_json);
        tiles_json = NULL;
        char *text = cJSON_Print(stats);
        FILE *f = text ? fopen(stats_tmp, "w") : NULL;
        int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        if (f && fclose(f) != 0) ok = 0;
        free(text);
        if (!ok) {
            samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write %s", stats_tmp);
            goto done;
        }
    }

    /* everything is written: give the files their final names */
    if (opt->save_labels && move_outputs(tmp_dir, out_dir, "labels.tif", err)) goto done;
    if (want_vectors && move_outputs(tmp_dir, out_dir, "segments.", err)) goto done;
    if (opt->save_stats && move_outputs(tmp_dir, out_dir, "stats.json", err)) goto done;
    if (opt->save_labels) snprintf(res->labels_path, sizeof res->labels_path, "%s/labels.tif", out_dir);
    if (opt->save_geopackage) snprintf(res->gpkg_path, sizeof res->gpkg_path, "%s/segments.gpkg", out_dir);
    if (opt->save_shapefile) snprintf(res->shp_path, sizeof res->shp_path, "%s/segments.shp", out_dir);
    if (opt->save_stats) snprintf(res->stats_path, sizeof res->stats_path, "%s/stats.json", out_dir);
    if (cb && cb->progress) {
        mosaic_progress p = { .phase = "done", .tiles_done = tiles_done, .tiles_total = tiles_total,
                              .tiles_skipped = tiles_skipped, .segments = n_final, .coverage = res->coverage,
                              .elapsed_s = now_s() - t_start, .eta_s = 0 };
        cb->progress(cb->progress_ctx, &p);
    }
    rc = 0;

done:
    if (raw_fd >= 0) close(raw_fd);
    if (tmp_dir[0]) remove_tmp_dir(tmp_dir);
    mosaic_tile_stats_free(&ts);
    if (have_src) mosaic_samc_source_free(&src);
    if (mp) mosaic_multipass_free(mp);
    if (raster) mosaic_raster_close(raster);
    if (uf.parent) mosaic_uf_free(&uf);
    free(rgb); free(valid); free(tile_labels); free(useful); free(left_col); free(bottom_row); free(strip);
    free(lut); free(areas);
    cJSON_Delete(tiles_json);
    cJSON_Delete(stats);
    return rc;
}
