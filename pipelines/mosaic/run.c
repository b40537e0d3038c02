/* pipelines/mosaic/run.c: what every kind of mosaic run shares (run.h): files, the JSON of
 * stats.json and manifests, and the phases after the tiles (LUT, labels.tif, polygons,
 * stats.json, outputs under their final names). */
#include "pipelines/mosaic/run.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pipelines/mosaic/config.h"
#include "util/clock.h"

double mosaic_now_s(void) { return 1e-3 * monotonic_ms(); }

double mosaic_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* ---- files ---------------------------------------------------------------------- */

int mosaic_write_all(int fd, const void *buf, size_t n, off_t off) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k; n -= (size_t)k; off += k;
    }
    return 0;
}

int mosaic_read_all(int fd, void *buf, size_t n, off_t off) {
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

/* Writes j as text; every failure (a full disk included) is an error naming the file. */
int mosaic_write_json_file(const char *path, const cJSON *j, int formatted, samc_error *err) {
    char *text = formatted ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    if (!text) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for %s", path);
    errno = 0;
    FILE *f = fopen(path, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0;
    int e = errno;
    if (f && fclose(f) != 0) {
        if (ok) e = errno;
        ok = 0;
    }
    free(text);
    return ok ? 0 : samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write %s: %s", path, e ? strerror(e) : "write failed");
}

cJSON *mosaic_read_json_file(const char *path, samc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *t = realloc(text, cap);
            if (!t) break;
            text = t;
        }
        size_t k = fread(text + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f) || !text;
    fclose(f);
    cJSON *j = NULL;
    if (!bad) {
        text[n] = 0;
        j = cJSON_Parse(text);
    }
    free(text);
    if (!j) samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: %s is not readable JSON (truncated or corrupt)", path);
    return j;
}

/* ---- JSON pieces ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void add_pass_times(cJSON *o, const mosaic_pass_stats *p) {
    cJSON_AddNumberToObject(o, "generate_ms", p->generate_ms);
    cJSON_AddNumberToObject(o, "accept_ms", p->accept_ms);
    cJSON_AddNumberToObject(o, "encode_ms", p->encode_ms);
    cJSON_AddNumberToObject(o, "decode_ms", p->decode_ms);
    cJSON_AddNumberToObject(o, "masks_ms", p->masks_ms);
}

cJSON *run_tile_json(int row, int col, const mosaic_rect *u, int skipped, const mosaic_tile_stats *ts,
                     double useful_coverage, int n_ids, double seconds, int timings) {
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
    if (timings) cJSON_AddNumberToObject(t, "seconds", seconds);
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
            if (timings) add_pass_times(o, p);
            cJSON_AddItemToArray(passes, o);
        }
    }
    return t;
}

/* The times run_tile_json leaves out with timings 0, for a shard's timing file. */
cJSON *run_tile_timing_json(int row, int col, const mosaic_tile_stats *ts, int skipped, double seconds) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "row", row);
    cJSON_AddNumberToObject(t, "col", col);
    cJSON_AddNumberToObject(t, "seconds", seconds);
    cJSON *passes = cJSON_AddArrayToObject(t, "passes");
    for (int k = 0; !skipped && k < ts->n_passes; k++) {
        cJSON *o = cJSON_CreateObject();
        add_pass_times(o, &ts->pass[k]);
        cJSON_AddItemToArray(passes, o);
    }
    return t;
}

cJSON *run_input_json(const char *in_path, const mosaic_raster_info *info) {
    cJSON *in = cJSON_CreateObject();
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
    return in;
}

void run_stats_timings(cJSON *parent, const char *name, const stage_times *tm, double total_s) {
    cJSON *tj = cJSON_AddObjectToObject(parent, name);
    cJSON_AddNumberToObject(tj, "read", tm->read_s);
    cJSON_AddNumberToObject(tj, "segment", tm->segment_s);
    cJSON_AddNumberToObject(tj, "cleanup_and_ids", tm->cleanup_s);
    cJSON_AddNumberToObject(tj, "spill_to_disk", tm->spill_s);
    cJSON_AddNumberToObject(tj, "border_merge", tm->merge_s);
    cJSON_AddNumberToObject(tj, "labels_tif", tm->labels_s);
    cJSON_AddNumberToObject(tj, "vectors", tm->vectors_s);
    cJSON_AddNumberToObject(tj, "total", total_s);
}

/* ---- concept mode ----------------------------------------------------------------- */

int run_attrs_grow(run_ctx *c, uint32_t n, samc_error *err) {
    if (!c->side_a) {
        c->side_a = malloc((size_t)c->g.tile_size * sizeof *c->side_a);
        c->side_b = malloc((size_t)c->g.tile_size * sizeof *c->side_b);
        if (!c->side_a || !c->side_b)
            return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for a %d-pixel border", c->g.tile_size);
    }
    if (n <= c->attr_cap) return 0;
    uint32_t cap = c->attr_cap ? c->attr_cap : 4096;
    while (cap < n) cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
    uint32_t *cls = realloc(c->id_class, (size_t)cap * sizeof *cls);
    if (cls) c->id_class = cls;
    float *sc = cls ? realloc(c->id_score, (size_t)cap * sizeof *sc) : NULL;
    if (sc) c->id_score = sc;
    if (!cls || !sc) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the classes of %u segments", n);
    memset(c->id_class + c->attr_cap, 0, (size_t)(cap - c->attr_cap) * sizeof *cls);
    memset(c->id_score + c->attr_cap, 0, (size_t)(cap - c->attr_cap) * sizeof *sc);
    c->attr_cap = cap;
    return 0;
}

int run_merge_boundary(run_ctx *c, const uint32_t *side1, const uint32_t *side2, int64_t n, samc_error *err) {
    const mosaic_options *opt = c->opt;
    if (!c->id_class) return mosaic_merge_boundary(side1, side2, n, opt->merge, opt->min_contact, &c->uf, &c->ms, err);
    if (n > c->g.tile_size)
        return samc_error_set(err, SAMC_ERR_INTERNAL, "mosaic: a border of %lld pixels is longer than a tile",
                              (long long)n);
    for (int64_t i = 0; i < n; i++) {
        uint32_t a = side1[i], b = side2[i];
        int same = a && b && a < c->attr_cap && b < c->attr_cap && c->id_class[a] == c->id_class[b];
        c->side_a[i] = same ? a : 0;
        c->side_b[i] = same ? b : 0;
    }
    return mosaic_merge_boundary(c->side_a, c->side_b, n, opt->merge, opt->min_contact, &c->uf, &c->ms, err);
}

void run_attrs_free(run_ctx *c) {
    free(c->id_class);
    free(c->id_score);
    free(c->side_a);
    free(c->side_b);
    free(c->seg_class);
    free(c->seg_score);
}

/* The class and score of every final segment: all its pieces share one class (joins are
 * made within a class); its score is the highest of theirs. */
static int run_segment_attrs(run_ctx *c, samc_error *err) {
    if (!c->id_class) return 0;
    c->seg_class = calloc((size_t)c->n_final + 1, sizeof *c->seg_class);
    c->seg_score = calloc((size_t)c->n_final + 1, sizeof *c->seg_score);
    if (!c->seg_class || !c->seg_score)
        return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the classes of %u segments", c->n_final);
    for (uint32_t id = 1; id <= c->n_ids_total && id < c->attr_cap; id++) {
        uint32_t f = c->lut[id];
        if (c->seg_score[f] == 0.0f || c->id_score[id] > c->seg_score[f]) c->seg_score[f] = c->id_score[id];
        c->seg_class[f] = c->id_class[id];
    }
    return 0;
}

/* ---- the phases ------------------------------------------------------------------- */

int run_is_cancelled(const run_ctx *c) {
    return c->cb && c->cb->cancelled && c->cb->cancelled(c->cb->cancel_ctx);
}

static double run_coverage(const run_ctx *c) {
    return c->valid_total ? 100.0 * (double)c->labelled_total / (double)c->valid_total : 0.0;
}

/* A progress report of a phase after the tiles ("labels", "vectors", "done"). */
static void run_report_phase(run_ctx *c, const char *phase, double eta_s) {
    if (!c->cb || !c->cb->progress) return;
    mosaic_progress p = { .phase = phase, .tiles_done = c->tiles_done, .tiles_total = c->tiles_total,
                          .tiles_skipped = c->tiles_skipped, .segments = c->n_final, .coverage = run_coverage(c),
                          .elapsed_s = mosaic_now_s() - c->t_start, .eta_s = eta_s };
    c->cb->progress(c->cb->progress_ctx, &p);
}

/* The union-find as one LUT: roots (the smallest id of each merged set) numbered in id
 * order, every id mapped to its root's number. The union-find is freed. */
int run_lut(run_ctx *c, samc_error *err) {
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
    return run_segment_attrs(c, err);
}

/* Pre-merge ids -> LUT -> labels.tif (also needed, as a temporary, for the polygons),
 * strip by strip, counting each final segment's area. */
static int write_label_strips(run_ctx *c, mosaic_label_writer *lw, samc_error *err) {
    for (int y0 = 0; y0 < c->g.height; y0 += STRIP_ROWS) {
        int n = c->g.height - y0 < STRIP_ROWS ? c->g.height - y0 : STRIP_ROWS;
        size_t cnt = (size_t)n * c->g.width;
        if (c->read_rows(c, y0, n, c->strip, err)) return -1;
        for (size_t k = 0; k < cnt; k++) {
            uint32_t v = c->strip[k];
            if (v > c->n_ids_total)
                return samc_error_set(err, SAMC_ERR_INTERNAL, "mosaic: label %u at row %d is beyond the %u ids given", v,
                                      y0 + (int)(k / (size_t)c->g.width), c->n_ids_total);
            c->strip[k] = c->lut[v];
            c->areas[c->strip[k]]++;
        }
        if (lw && mosaic_label_writer_write(lw, y0, n, c->strip, err)) return -1;
        if (run_is_cancelled(c)) return samc_error_set(err, SAMC_ERR_ARG, "mosaic: cancelled while writing the labels");
    }
    return 0;
}

int run_labels(run_ctx *c, samc_error *err) {
    const mosaic_options *opt = c->opt;
    double t0 = mosaic_now_s();
    run_report_phase(c, "labels", -1);
    mosaic_label_writer *lw = NULL;
    if ((opt->save_labels || opt->save_geopackage || opt->save_shapefile) &&
        mosaic_label_writer_create(c->labels_tmp, c->g.width, c->g.height, c->n_final, c->info, &lw, err))
        return -1;
    if (write_label_strips(c, lw, err)) {
        if (lw) mosaic_label_writer_close(lw, NULL);
        return -1;
    }
    if (lw && mosaic_label_writer_close(lw, err)) return -1;
    if (c->raw_fd >= 0) {
        close(c->raw_fd);
        c->raw_fd = -1;
        unlink(c->raw_path);
    }
    c->tm.labels_s = mosaic_now_s() - t0;
    return 0;
}

int run_vectors(run_ctx *c, samc_error *err) {
    const mosaic_options *opt = c->opt;
    if (opt->save_geopackage || opt->save_shapefile) {
        run_report_phase(c, "vectors", -1);
        double t0 = mosaic_now_s();
        const mosaic_callbacks *cb = c->cb;
        const char *names[MOSAIC_MAX_CLASSES];
        for (int i = 0; i < opt->n_classes; i++) names[i] = mosaic_class_name(opt, i);
        mosaic_vector_attrs attrs = { .class_names = names, .n_classes = opt->n_classes, .seg_class = c->seg_class,
                                      .seg_score = c->seg_score, .n_segments = c->n_final };
        if (mosaic_polygonize_ex(c->labels_tmp, opt->save_geopackage ? c->gpkg_tmp : NULL,
                                 opt->save_shapefile ? c->shp_tmp : NULL, opt->simplify_tolerance,
                                 c->seg_class ? &attrs : NULL, &c->vs, cb ? cb->cancelled : NULL,
                                 cb ? cb->cancel_ctx : NULL, err))
            return -1;
        c->tm.vectors_s = mosaic_now_s() - t0;
    }
    if (!opt->save_labels) unlink(c->labels_tmp);
    return 0;
}

/* Concept mode: "classes", one entry per class text: its segments, pixels and mean score
 * (before stats_sizes sorts the areas). */
static void stats_classes(cJSON *stats, const run_ctx *c) {
    const mosaic_options *opt = c->opt;
    if (!c->seg_class) return;
    cJSON *arr = cJSON_AddArrayToObject(stats, "classes");
    for (int k = 0; k < opt->n_classes; k++) {
        int64_t segs = 0;
        uint64_t pixels = 0;
        double score = 0;
        for (uint32_t f = 1; f <= c->n_final; f++) {
            if (c->seg_class[f] != (uint32_t)k) continue;
            segs++;
            pixels += c->areas[f];
            score += c->seg_score[f];
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "class_id", k + 1);
        cJSON_AddStringToObject(o, "class", mosaic_class_name(opt, k));
        cJSON_AddNumberToObject(o, "segments", (double)segs);
        cJSON_AddNumberToObject(o, "pixels", (double)pixels);
        cJSON_AddNumberToObject(o, "mean_score", segs ? score / (double)segs : 0.0);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddNumberToObject(stats, "score_threshold", opt->score_threshold);
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

static void stats_counts(cJSON *stats, const run_ctx *c) {
    const mosaic_options *opt = c->opt;
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
}

/* stats.json: the input, grid, counts, merge and clean-up, timings, config, tiles. */
static int run_stats(run_ctx *c, samc_error *err) {
    const mosaic_options *opt = c->opt;
    if (!opt->save_stats) return 0;
    cJSON *stats = cJSON_CreateObject();
    if (!stats) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for stats.json");
    cJSON_AddStringToObject(stats, "tool", "samc mosaic " SAMC_VERSION);
    cJSON_AddItemToObject(stats, "input", run_input_json(c->in_shown, c->info));
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
    stats_classes(stats, c);
    stats_sizes(stats, c->areas, c->n_final);
    stats_counts(stats, c);
    run_stats_timings(stats, "timings_s", &c->tm, mosaic_now_s() - c->t_start);
    cJSON_AddNumberToObject(stats, "peak_rss_mib", mosaic_peak_rss_mib());
    if (c->stats_extra) {
        cJSON *e;
        while ((e = c->stats_extra->child) != NULL)
            cJSON_AddItemToObject(stats, e->string, cJSON_DetachItemViaPointer(c->stats_extra, e));
    }
    char *own = opt->config_json ? NULL : mosaic_config_json(opt, NULL, NULL);
    cJSON *cfg = cJSON_Parse(opt->config_json ? opt->config_json : own ? own : "{}");
    free(own);
    cJSON_AddItemToObject(stats, "config", cfg ? cfg : cJSON_CreateObject());
    cJSON_AddItemToObject(stats, "tiles", c->tiles_json);
    c->tiles_json = NULL;
    int rc = mosaic_write_json_file(c->stats_tmp, stats, 1, err);
    cJSON_Delete(stats);
    return rc;
}

/* Everything is written: the results, and the files under their final names. */
int run_finish(run_ctx *c, mosaic_result *res, samc_error *err) {
    const mosaic_options *opt = c->opt;
    res->segments = c->n_final;
    res->segments_before_merge = c->n_ids_total;
    res->valid_pixels = c->valid_total;
    res->labelled_pixels = c->labelled_total;
    res->coverage = run_coverage(c);
    res->tiles = c->tiles_total;
    res->tiles_skipped = c->tiles_skipped;
    res->total_s = mosaic_now_s() - c->t_start;
    if (run_stats(c, err)) return -1;
    if (opt->save_labels && move_outputs(c->tmp_dir, c->out_dir, "labels.tif", err)) return -1;
    if ((opt->save_geopackage || opt->save_shapefile) && move_outputs(c->tmp_dir, c->out_dir, "segments.", err))
        return -1;
    if (opt->save_stats && move_outputs(c->tmp_dir, c->out_dir, "stats.json", err)) return -1;
    if (opt->save_labels) snprintf(res->labels_path, sizeof res->labels_path, "%s/labels.tif", c->out_dir);
    if (opt->save_geopackage) snprintf(res->gpkg_path, sizeof res->gpkg_path, "%s/segments.gpkg", c->out_dir);
    if (opt->save_shapefile) snprintf(res->shp_path, sizeof res->shp_path, "%s/segments.shp", c->out_dir);
    if (opt->save_stats) snprintf(res->stats_path, sizeof res->stats_path, "%s/stats.json", c->out_dir);
    run_report_phase(c, "done", 0);
    return 0;
}
