/* pipelines/mosaic/shard.c: a mosaic split into shards, and the merge (mosaic.h, run.h).
 *
 * Why the merge gives the single run's result: a single run numbers segments 1, 2, ...
 * tile by tile in row-major order, and shards are contiguous bands of tile rows, so shard
 * K's local id i is the single run's id offset_K + i, offset_K being the ids of the
 * shards before it. The border merge decides each join from the pre-merge labels on the
 * two sides of one tile border alone (never from the union-find's state), and the
 * union-find keeps the smallest id of a set as its root whatever the order of unions: so
 * the joins inside each band (unions.u32), replayed with the offsets, plus the joins
 * across each band edge (bottom.u32 of one band against top.u32 of the next, one tile
 * column at a time as the single run does it) give the same sets, the same LUT and the
 * same labels.tif.
 *
 * A shard's files are deterministic (no times, hosts or process ids in them): its
 * timings go to shards/K.timing.json beside its folder. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipelines/mosaic/config.h"
#include "pipelines/mosaic/run.h"

#define SHARD_FORMAT "samc-mosaic-shard/1"
/* The band's files; in concept mode also the class index and score of its ids 1..n
 * (little-endian uint32 and float32), so that the merge joins within a class and the
 * polygons carry both. */
#define SHARD_FILES_MAX 6
static const char *const shard_files[SHARD_FILES_MAX] = { "labels.tif", "top.u32", "bottom.u32", "unions.u32",
                                                         "classes.u32", "scores.f32" };
static int shard_n_files(const mosaic_options *o) { return o->n_classes > 0 ? 6 : 4; }

/* ---- files and checksums ------------------------------------------------------------ */

/* FNV-1a 64 of a file and its size: finds a truncated or damaged shard file (it is a
 * checksum against accidents, not a defence against tampering). */
static int file_fnv1a64(const char *path, uint64_t *hash, int64_t *bytes, samc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot open %s: %s", path, strerror(errno));
    static __thread unsigned char buf[1 << 16];
    uint64_t h = 0xcbf29ce484222325ULL;
    int64_t total = 0;
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < k; i++) h = (h ^ buf[i]) * 0x100000001b3ULL;
        total += (int64_t)k;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot read %s", path);
    *hash = h;
    *bytes = total;
    return 0;
}

/* Makes a file's or a folder's contents durable, so that a rename after it publishes
 * complete data even if the machine goes down. */
static int sync_path(const char *path, samc_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot open %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    return rc == 0 || e == EINVAL ? 0 : samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot sync %s: %s", path, strerror(e));
}

static int write_u32_file(const char *path, const uint32_t *v, size_t n, samc_error *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || mosaic_write_all(fd, v, n * sizeof *v, 0) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write %s: %s", path, strerror(e));
    }
    if (close(fd) != 0) return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write %s: %s", path, strerror(errno));
    return 0;
}

/* OUTDIR/shards/K, or a file in it */
static void shard_path(char *buf, size_t n, const char *out_dir, int k, const char *name) {
    if (name) snprintf(buf, n, "%s/shards/%d/%s", out_dir, k, name);
    else snprintf(buf, n, "%s/shards/%d", out_dir, k);
}

/* The first place where a and b differ, as "options.tile.size: 128 vs 100"; "" if none. */
static void json_difference(const cJSON *a, const cJSON *b, const char *where, char *buf, size_t n) {
    buf[0] = 0;
    if (cJSON_Compare(a, b, 1)) return;
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        const cJSON *x;
        cJSON_ArrayForEach(x, a) {
            char sub[300];
            snprintf(sub, sizeof sub, "%s.%s", where, x->string);
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (!y) {
                snprintf(buf, n, "%s is missing in one", sub);
                return;
            }
            json_difference(x, y, sub, buf, n);
            if (buf[0]) return;
        }
        snprintf(buf, n, "%s has more keys in one", where);
        return;
    }
    char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);
    snprintf(buf, n, "%s: %.80s vs %.80s", where, ta ? ta : "?", tb ? tb : "?");
    free(ta);
    free(tb);
}

/* ---- the shard's identity -------------------------------------------------------------- */

/* What a shard is made from and must match to count as "already done" or to merge:
 * {"shards", "shard", "input_path", "options", "model"}. */
static cJSON *shard_identity(const mosaic_options *opt, const char *in_path, int k, int n) {
    cJSON *id = cJSON_CreateObject();
    cJSON_AddNumberToObject(id, "shards", n);
    cJSON_AddNumberToObject(id, "shard", k);
    cJSON_AddStringToObject(id, "input_path", in_path);
    char *canon = mosaic_config_json(opt, NULL, NULL);
    cJSON *o = canon ? cJSON_Parse(canon) : NULL;
    free(canon);
    cJSON_AddItemToObject(id, "options", o ? o : cJSON_CreateNull());
    cJSON *m = opt->model_json ? cJSON_Parse(opt->model_json) : NULL;
    cJSON_AddItemToObject(id, "model", m ? m : cJSON_CreateNull());
    return id;
}

/* The same fields out of a manifest. */
static cJSON *manifest_identity(const cJSON *m) {
    cJSON *id = cJSON_CreateObject();
    const cJSON *in = cJSON_GetObjectItem(m, "input");
    cJSON_AddItemToObject(id, "shards", cJSON_Duplicate(cJSON_GetObjectItem(m, "shards"), 1));
    cJSON_AddItemToObject(id, "shard", cJSON_Duplicate(cJSON_GetObjectItem(m, "shard"), 1));
    cJSON_AddItemToObject(id, "input_path", cJSON_Duplicate(cJSON_GetObjectItem(in, "path"), 1));
    cJSON_AddItemToObject(id, "options", cJSON_Duplicate(cJSON_GetObjectItem(m, "options"), 1));
    cJSON_AddItemToObject(id, "model", cJSON_Duplicate(cJSON_GetObjectItem(m, "model"), 1));
    return id;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1.0;
}

static void result_from_manifest(const cJSON *m, const char *dir, mosaic_result *res) {
    res->segments_before_merge = (int64_t)num(m, "segments_before_merge");
    res->valid_pixels = (int64_t)num(m, "valid_pixels");
    res->labelled_pixels = (int64_t)num(m, "labelled_pixels");
    res->coverage = res->valid_pixels > 0 ? 100.0 * (double)res->labelled_pixels / (double)res->valid_pixels : 0.0;
    res->tiles = (int)num(m, "tiles_total");
    res->tiles_skipped = (int)num(m, "tiles_skipped");
    snprintf(res->shard_dir, sizeof res->shard_dir, "%s", dir);
}

int shard_already_done(run_ctx *c, mosaic_result *res, samc_error *err) {
    char dir[1200], path[1300];
    shard_path(dir, sizeof dir, c->out_dir, c->shard->index, NULL);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    struct stat st;
    if (stat(dir, &st) != 0) return 0;
    if (stat(path, &st) != 0)
        return samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: %s exists without a manifest.json: remove it and run the "
                              "shard again", dir);
    cJSON *m = mosaic_read_json_file(path, err);
    if (!m) return -1;
    cJSON *want = shard_identity(c->opt, c->in_shown, c->shard->index, c->shard->count);
    cJSON *have = manifest_identity(m);
    char diff[400];
    json_difference(have, want, "shard", diff, sizeof diff);
    int rc = 1;
    if (diff[0])
        rc = samc_error_set(err, SAMC_ERR_ARG, "mosaic: %s was made otherwise (%s): remove it, or use another OUTDIR",
                            dir, diff);
    else
        result_from_manifest(m, dir, res);
    res->already_complete = rc == 1;
    cJSON_Delete(want);
    cJSON_Delete(have);
    cJSON_Delete(m);
    return rc;
}

/* ---- a shard's outputs ----------------------------------------------------------------- */

/* The band's raw labels -> labels.tif (local ids 1..n, DEFLATE), strip by strip. */
static int write_band_labels(run_ctx *c, const char *path, samc_error *err) {
    int w = c->g.width, h = c->band_y1 - c->band_y0;
    uint32_t *strip = malloc((size_t)w * STRIP_ROWS * sizeof *strip);
    if (!strip) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for a %d-pixel strip", w);
    mosaic_label_writer *lw = NULL;
    int rc = mosaic_label_writer_create(path, w, h, c->next_id - 1, NULL, &lw, err);
    for (int y0 = 0; !rc && y0 < h; y0 += STRIP_ROWS) {
        int n = h - y0 < STRIP_ROWS ? h - y0 : STRIP_ROWS;
        if (mosaic_read_all(c->raw_fd, strip, (size_t)n * w * 4, (off_t)y0 * w * 4) != 0)
            rc = samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot read %s: %s", c->raw_path, strerror(errno));
        else
            rc = mosaic_label_writer_write(lw, y0, n, strip, err);
    }
    if (lw) {
        if (rc) mosaic_label_writer_close(lw, NULL);
        else rc = mosaic_label_writer_close(lw, err);
    }
    free(strip);
    return rc;
}

/* top.u32 and bottom.u32 (the band's first and last rows, for the joins with the bands
 * above and below) and unions.u32 (id, root) for every id merged inside the band. */
static int write_band_edges(run_ctx *c, samc_error *err) {
    char path[1300];
    int w = c->g.width;
    if (mosaic_read_all(c->raw_fd, c->strip, (size_t)w * 4, 0) != 0)
        return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot read %s: %s", c->raw_path, strerror(errno));
    snprintf(path, sizeof path, "%s/top.u32", c->tmp_dir);
    if (write_u32_file(path, c->strip, (size_t)w, err)) return -1;
    snprintf(path, sizeof path, "%s/bottom.u32", c->tmp_dir);
    if (write_u32_file(path, c->bottom_row, (size_t)w, err)) return -1;
    size_t n = 0, cap = (size_t)w * STRIP_ROWS;   /* c->strip as the buffer of pairs */
    snprintf(path, sizeof path, "%s/unions.u32", c->tmp_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write %s: %s", path, strerror(errno));
    off_t off = 0;
    int rc = 0;
    for (uint32_t id = 1; id < c->next_id && !rc; id++) {
        uint32_t root = mosaic_uf_find(&c->uf, id);
        if (root != id) {
            c->strip[n++] = id;
            c->strip[n++] = root;
        }
        if ((n + 2 > cap || id + 1 == c->next_id) && n > 0) {
            rc = mosaic_write_all(fd, c->strip, n * 4, off);
            off += (off_t)n * 4;
            n = 0;
        }
    }
    if (close(fd) != 0) rc = -1;
    if (rc) return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write %s: %s", path, strerror(errno));
    if (!c->id_class) return 0;
    snprintf(path, sizeof path, "%s/classes.u32", c->tmp_dir);
    if (write_u32_file(path, c->id_class + 1, (size_t)c->next_id - 1, err)) return -1;
    snprintf(path, sizeof path, "%s/scores.f32", c->tmp_dir);
    return write_u32_file(path, (const uint32_t *)(const void *)(c->id_score + 1), (size_t)c->next_id - 1, err);
}

static cJSON *manifest_grid(const run_ctx *c) {
    cJSON *g = cJSON_CreateObject();
    cJSON_AddNumberToObject(g, "width", c->g.width);
    cJSON_AddNumberToObject(g, "height", c->g.height);
    cJSON_AddNumberToObject(g, "tile_size", c->g.tile_size);
    cJSON_AddNumberToObject(g, "padding", c->g.padding);
    cJSON_AddNumberToObject(g, "cols", c->g.n_cols);
    cJSON_AddNumberToObject(g, "rows", c->g.n_rows);
    return g;
}

/* The input as stats.json has it, plus what the merge's labels.tif needs (georeferencing). */
static cJSON *manifest_input(const run_ctx *c) {
    cJSON *in = run_input_json(c->in_shown, c->info);
    cJSON *gt = cJSON_AddArrayToObject(in, "geotransform");
    for (int i = 0; i < 6; i++) cJSON_AddItemToArray(gt, cJSON_CreateNumber(c->info->geotransform[i]));
    cJSON_AddStringToObject(in, "crs_wkt", c->info->crs_wkt ? c->info->crs_wkt : "");
    return in;
}

static void add_pair(cJSON *o, const char *name, double a, double b) {
    cJSON *p = cJSON_AddArrayToObject(o, name);
    cJSON_AddItemToArray(p, cJSON_CreateNumber(a));
    cJSON_AddItemToArray(p, cJSON_CreateNumber(b));
}

/* manifest.json: what the shard is made from, what it holds, and its files' checksums. */
static cJSON *manifest_json(run_ctx *c, cJSON *files) {
    const mosaic_options *opt = c->opt;
    cJSON *m = cJSON_CreateObject(), *id = shard_identity(opt, c->in_shown, c->shard->index, c->shard->count);
    cJSON_AddStringToObject(m, "format", SHARD_FORMAT);
    cJSON_AddStringToObject(m, "tool", "samc mosaic " SAMC_VERSION);
    cJSON_AddNumberToObject(m, "shard", c->shard->index);
    cJSON_AddNumberToObject(m, "shards", c->shard->count);
    cJSON_AddItemToObject(m, "input", manifest_input(c));
    cJSON_AddItemToObject(m, "model", cJSON_DetachItemFromObject(id, "model"));
    cJSON_AddItemToObject(m, "options", cJSON_DetachItemFromObject(id, "options"));
    cJSON *cfg = opt->config_json ? cJSON_Parse(opt->config_json) : NULL;
    cJSON_AddItemToObject(m, "config", cfg ? cfg : cJSON_Duplicate(cJSON_GetObjectItem(m, "options"), 1));
    cJSON_Delete(id);
    cJSON_AddItemToObject(m, "grid", manifest_grid(c));
    add_pair(m, "tile_rows", c->r0, c->r1);
    add_pair(m, "pixel_rows", c->band_y0, c->band_y1);
    cJSON_AddNumberToObject(m, "segments_before_merge", c->next_id - 1);
    cJSON_AddNumberToObject(m, "tiles_total", c->tiles_total);
    cJSON_AddNumberToObject(m, "tiles_skipped", c->tiles_skipped);
    cJSON_AddNumberToObject(m, "valid_pixels", (double)c->valid_total);
    cJSON_AddNumberToObject(m, "labelled_pixels", (double)c->labelled_total);
    cJSON *mj = cJSON_AddObjectToObject(m, "merge");
    cJSON_AddNumberToObject(mj, "pairs_found", (double)c->ms.pairs_found);
    cJSON_AddNumberToObject(mj, "pairs_joined", (double)c->ms.pairs_joined);
    cJSON *cj = cJSON_AddObjectToObject(m, "cleanup");
    cJSON_AddNumberToObject(cj, "fragments", (double)c->cs.fragments);
    cJSON_AddNumberToObject(cj, "merged_enclosed", (double)c->cs.merged_enclosed);
    cJSON_AddNumberToObject(cj, "removed_small", (double)c->cs.removed_small);
    cJSON_AddNumberToObject(cj, "pixels_removed", (double)c->cs.pixels_removed);
    cJSON_AddItemToObject(m, "tiles", c->tiles_json);
    c->tiles_json = NULL;
    cJSON_AddItemToObject(m, "files", files);
    return m;
}

/* files: {"labels.tif": {"bytes": n, "fnv1a64": "hex"}, ...} of what the band wrote */
static int file_entries(const run_ctx *c, cJSON *files, samc_error *err) {
    for (int i = 0; i < shard_n_files(c->opt) && c->band_y1 > c->band_y0; i++) {
        char path[1300], hex[24];
        uint64_t h;
        int64_t bytes;
        snprintf(path, sizeof path, "%s/%s", c->tmp_dir, shard_files[i]);
        if (file_fnv1a64(path, &h, &bytes, err) || sync_path(path, err)) return -1;
        snprintf(hex, sizeof hex, "%016" PRIx64, h);
        cJSON *f = cJSON_AddObjectToObject(files, shard_files[i]);
        cJSON_AddNumberToObject(f, "bytes", (double)bytes);
        cJSON_AddStringToObject(f, "fnv1a64", hex);
    }
    return 0;
}

/* shards/K.timing.json: what is not reproducible, beside the shard's folder. */
static int write_timing(run_ctx *c, samc_error *err) {
    char path[1300], tmp[1400];
    snprintf(path, sizeof path, "%s/shards/%d.timing.json", c->out_dir, c->shard->index);
    snprintf(tmp, sizeof tmp, "%s/shards/.%d.timing.json.%ld", c->out_dir, c->shard->index, (long)getpid());
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "shard", c->shard->index);
    cJSON_AddNumberToObject(t, "shards", c->shard->count);
    cJSON_AddNumberToObject(t, "wall_s", mosaic_now_s() - c->t_start);
    cJSON_AddNumberToObject(t, "peak_rss_mib", mosaic_peak_rss_mib());
    run_stats_timings(t, "timings_s", &c->tm, mosaic_now_s() - c->t_start);
    cJSON_AddItemToObject(t, "tiles", c->tiles_timing);
    c->tiles_timing = NULL;
    int rc = mosaic_write_json_file(tmp, t, 0, err);
    cJSON_Delete(t);
    if (!rc && rename(tmp, path) != 0)
        rc = samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot move %s to %s: %s", tmp, path, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

/* The complete folder takes its final name. Another run of the same shard may have got
 * there first (a job engine's retry): then its output, if it is the same, stands. */
static int publish(run_ctx *c, mosaic_result *res, samc_error *err) {
    char dir[1200];
    shard_path(dir, sizeof dir, c->out_dir, c->shard->index, NULL);
    if (sync_path(c->tmp_dir, err)) return -1;
    if (rename(c->tmp_dir, dir) != 0) {
        if (errno != EEXIST && errno != ENOTEMPTY)
            return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot move %s to %s: %s", c->tmp_dir, dir, strerror(errno));
        if (shard_already_done(c, res, err) != 1) return -1;
        return 0;
    }
    c->tmp_dir[0] = 0;
    char shards[1100];
    snprintf(shards, sizeof shards, "%s/shards", c->out_dir);
    return sync_path(shards, err);
}

int shard_write_outputs(run_ctx *c, mosaic_result *res, samc_error *err) {
    char path[1300];
    c->strip = malloc((size_t)c->g.width * STRIP_ROWS * sizeof *c->strip);
    if (!c->strip) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for a %d-pixel strip", c->g.width);
    if (c->band_y1 > c->band_y0) {
        snprintf(path, sizeof path, "%s/labels.tif", c->tmp_dir);
        if (write_band_labels(c, path, err) || write_band_edges(c, err)) return -1;
    }
    close(c->raw_fd);
    c->raw_fd = -1;
    unlink(c->raw_path);
    cJSON *files = cJSON_CreateObject();
    if (file_entries(c, files, err)) {
        cJSON_Delete(files);
        return -1;
    }
    cJSON *m = manifest_json(c, files);
    snprintf(path, sizeof path, "%s/manifest.json", c->tmp_dir);
    int rc = mosaic_write_json_file(path, m, 1, err) || sync_path(path, err);
    if (!rc) {
        result_from_manifest(m, "", res);
        shard_path(res->shard_dir, sizeof res->shard_dir, c->out_dir, c->shard->index, NULL);
    }
    cJSON_Delete(m);
    if (rc || publish(c, res, err)) return -1;
    res->total_s = mosaic_now_s() - c->t_start;
    return res->already_complete ? 0 : write_timing(c, err);
}

/* ---- the merge ------------------------------------------------------------------------ */

typedef struct {
    int r0, r1, y0, y1;          /* tile rows and pixel rows of the band */
    uint32_t n_ids, offset;      /* local ids 1..n_ids are offset + 1 .. offset + n_ids */
    mosaic_label_reader *lr;     /* opened while the strips pass over the band */
    uint32_t *rows;              /* one block row of its labels.tif, decoded once */
    int rows_y0, rows_n;         /* band-local rows held in rows (rows_n 0: none) */
} merge_shard;

typedef struct {
    mosaic_options opt;
    char *config_json, *model_json, *in_path, *crs_wkt;
    mosaic_raster_info info;
    cJSON *ref;                  /* shard 0's identity: every shard must match it */
    int n;
    merge_shard *sh;
    cJSON *shards_json;          /* stats.json "shards": each shard's timings */
} merge_state;

static char *json_text(const cJSON *j) {
    return j && !cJSON_IsNull(j) ? cJSON_PrintUnformatted(j) : NULL;
}

static char *dup_string(const cJSON *j) {
    return strdup(cJSON_IsString(j) ? j->valuestring : "");
}

/* The run's settings, input and grid from shard 0's manifest. */
static int merge_setup(run_ctx *c, merge_state *ms, const cJSON *m, const char *path, samc_error *err) {
    char why[400];
    mosaic_options_default(&ms->opt);
    char *opts = json_text(cJSON_GetObjectItem(m, "options"));
    int bad = !opts || mosaic_config_from_json(&ms->opt, opts, why, sizeof why) != 0;
    free(opts);
    if (bad) return samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: %s: bad options: %s", path, opts ? why : "missing");
    ms->config_json = json_text(cJSON_GetObjectItem(m, "config"));
    ms->model_json = json_text(cJSON_GetObjectItem(m, "model"));
    ms->opt.config_json = ms->config_json;
    ms->opt.model_json = ms->model_json;
    const cJSON *in = cJSON_GetObjectItem(m, "input"), *grid = cJSON_GetObjectItem(m, "grid");
    ms->in_path = dup_string(cJSON_GetObjectItem(in, "path"));
    ms->crs_wkt = dup_string(cJSON_GetObjectItem(in, "crs_wkt"));
    mosaic_raster_info *info = &ms->info;
    info->width = (int)num(in, "width");
    info->height = (int)num(in, "height");
    info->n_bands = (int)num(in, "bands");
    const cJSON *dt = cJSON_GetObjectItem(in, "dtype");
    snprintf(info->dtype, sizeof info->dtype, "%s", cJSON_IsString(dt) ? dt->valuestring : "");
    info->has_geotransform = cJSON_IsTrue(cJSON_GetObjectItem(in, "georeferenced"));
    const cJSON *gt = cJSON_GetObjectItem(in, "geotransform");
    for (int i = 0; i < 6; i++) {
        const cJSON *v = cJSON_GetArrayItem(gt, i);
        info->geotransform[i] = cJSON_IsNumber(v) ? v->valuedouble : 0.0;
    }
    for (int i = 0; i < 3; i++) {
        const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItem(in, "bands_used"), i);
        info->bands_used[i] = b ? b->valueint : 0;
    }
    const cJSON *sc = cJSON_GetObjectItem(in, "scale_min_max");
    info->scale_min = cJSON_GetArrayItem(sc, 0) ? cJSON_GetArrayItem(sc, 0)->valuedouble : 0;
    info->scale_max = cJSON_GetArrayItem(sc, 1) ? cJSON_GetArrayItem(sc, 1)->valuedouble : 0;
    info->has_nodata = cJSON_GetObjectItem(in, "nodata") != NULL;
    info->nodata = num(in, "nodata");
    info->crs_wkt = ms->crs_wkt;
    c->opt = &ms->opt;
    c->info = info;
    if (!ms->in_path || !ms->crs_wkt) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory");
    c->in_path = ms->in_path;
    snprintf(c->in_shown, sizeof c->in_shown, "%s", ms->in_path);
    return mosaic_grid_init(&c->g, (int)num(grid, "width"), (int)num(grid, "height"), (int)num(grid, "tile_size"),
                            (int)num(grid, "padding"), err);
}

/* Every file the manifest lists has its size and checksum: nothing truncated, nothing
 * damaged since the shard wrote it. */
static int verify_files(const cJSON *m, const char *out_dir, int k, int band_rows, int n_files, samc_error *err) {
    const cJSON *files = cJSON_GetObjectItem(m, "files");
    for (int i = 0; i < n_files && band_rows > 0; i++) {
        char path[1300], hex[24];
        shard_path(path, sizeof path, out_dir, k, shard_files[i]);
        const cJSON *f = cJSON_GetObjectItem(files, shard_files[i]);
        const cJSON *want = cJSON_GetObjectItem(f, "fnv1a64");
        if (!cJSON_IsString(want))
            return samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: shard %d: its manifest lists no checksum of %s", k,
                                  shard_files[i]);
        uint64_t h;
        int64_t bytes;
        if (file_fnv1a64(path, &h, &bytes, err)) return -1;
        snprintf(hex, sizeof hex, "%016" PRIx64, h);
        if (bytes != (int64_t)num(f, "bytes") || strcmp(hex, want->valuestring) != 0)
            return samc_error_set(err, SAMC_ERR_FORMAT,
                                  "mosaic: shard %d: %s is damaged or truncated (%lld bytes, checksum %s; the manifest "
                                  "says %.0f bytes, %s): remove %s/shards/%d and run shard %d again",
                                  k, path, (long long)bytes, hex, num(f, "bytes"), want->valuestring, out_dir, k, k);
    }
    return 0;
}

/* Shard k's manifest against shard 0's identity, its band, its files. */
static int check_shard(run_ctx *c, merge_state *ms, const cJSON *m, int k, samc_error *err) {
    char dir[1200], diff[400];
    shard_path(dir, sizeof dir, c->out_dir, k, NULL);
    const cJSON *fmt = cJSON_GetObjectItem(m, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, SHARD_FORMAT) != 0)
        return samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: %s/manifest.json is not a %s manifest", dir, SHARD_FORMAT);
    cJSON *id = manifest_identity(m), *ref = cJSON_Duplicate(ms->ref, 1);
    cJSON_ReplaceItemInObject(ref, "shard", cJSON_CreateNumber(k));
    json_difference(id, ref, "shard", diff, sizeof diff);
    cJSON_Delete(id);
    cJSON_Delete(ref);
    if (diff[0])
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: shard %d does not match shard 0 (%s): it was made from another "
                              "input, options, model or split; remove %s and run it again as shard %d/%d", k, diff, dir,
                              k, ms->n);
    merge_shard *s = &ms->sh[k];
    s->r0 = (int)((int64_t)k * c->g.n_rows / ms->n);
    s->r1 = (int)((int64_t)(k + 1) * c->g.n_rows / ms->n);
    s->y0 = s->r0 * c->g.tile_size;
    s->y1 = s->r1 == s->r0 ? s->y0 : s->r1 * c->g.tile_size < c->g.height ? s->r1 * c->g.tile_size : c->g.height;
    const cJSON *tr = cJSON_GetObjectItem(m, "tile_rows");
    if (!cJSON_GetArrayItem(tr, 1) || cJSON_GetArrayItem(tr, 0)->valueint != s->r0 ||
        cJSON_GetArrayItem(tr, 1)->valueint != s->r1)
        return samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: shard %d: its tile rows are not [%d, %d) of %d shards", k,
                              s->r0, s->r1, ms->n);
    double n_ids = num(m, "segments_before_merge");
    if (n_ids < 0 || n_ids > UINT32_MAX - 2)
        return samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: shard %d: segments_before_merge %.0f is not valid", k, n_ids);
    s->n_ids = (uint32_t)n_ids;
    return verify_files(m, c->out_dir, k, s->y1 - s->y0, shard_n_files(c->opt), err);
}

/* The shard's times (shards/K.timing.json) into its tiles, as a single run has them in
 * stats.json; a missing or foreign timing file leaves the tiles without times. */
static cJSON *shard_timing(run_ctx *c, int k, cJSON *tiles) {
    char path[1300];
    snprintf(path, sizeof path, "%s/shards/%d.timing.json", c->out_dir, k);
    cJSON *t = mosaic_read_json_file(path, NULL);
    const cJSON *tt = cJSON_GetObjectItem(t, "tiles");
    if (!t || num(t, "shard") != k || cJSON_GetArraySize(tt) != cJSON_GetArraySize(tiles)) {
        cJSON_Delete(t);
        return NULL;
    }
    static const char *const ms_keys[] = { "generate_ms", "accept_ms", "encode_ms", "decode_ms", "masks_ms" };
    const cJSON *tile, *timing = tt->child;
    cJSON_ArrayForEach(tile, tiles) {
        cJSON_AddNumberToObject((cJSON *)tile, "seconds", num(timing, "seconds"));
        const cJSON *pt = cJSON_GetObjectItem(timing, "passes")->child, *pass;
        cJSON_ArrayForEach(pass, cJSON_GetObjectItem(tile, "passes")) {
            for (int i = 0; pt && i < 5; i++) cJSON_AddNumberToObject((cJSON *)pass, ms_keys[i], num(pt, ms_keys[i]));
            pt = pt ? pt->next : NULL;
        }
        timing = timing->next;
    }
    return t;
}

/* Shard k's counts, tiles and timings into the merged run's. */
static void add_shard_stats(run_ctx *c, merge_state *ms, cJSON *m, int k) {
    c->valid_total += (int64_t)num(m, "valid_pixels");
    c->labelled_total += (int64_t)num(m, "labelled_pixels");
    c->tiles_total += (int)num(m, "tiles_total");
    c->tiles_skipped += (int)num(m, "tiles_skipped");
    c->tiles_done = c->tiles_total;
    const cJSON *mj = cJSON_GetObjectItem(m, "merge"), *cj = cJSON_GetObjectItem(m, "cleanup");
    c->ms.pairs_found += (int64_t)num(mj, "pairs_found");
    c->ms.pairs_joined += (int64_t)num(mj, "pairs_joined");
    c->cs.fragments += (int64_t)num(cj, "fragments");
    c->cs.merged_enclosed += (int64_t)num(cj, "merged_enclosed");
    c->cs.removed_small += (int64_t)num(cj, "removed_small");
    c->cs.pixels_removed += (int64_t)num(cj, "pixels_removed");
    cJSON *tiles = cJSON_DetachItemFromObject(m, "tiles");
    cJSON *t = shard_timing(c, k, tiles);
    cJSON *sj = cJSON_CreateObject();
    cJSON_AddNumberToObject(sj, "shard", k);
    add_pair(sj, "tile_rows", ms->sh[k].r0, ms->sh[k].r1);
    cJSON_AddNumberToObject(sj, "segments_before_merge", ms->sh[k].n_ids);
    if (t) {
        const cJSON *tm = cJSON_GetObjectItem(t, "timings_s");
        c->tm.read_s += num(tm, "read");
        c->tm.segment_s += num(tm, "segment");
        c->tm.cleanup_s += num(tm, "cleanup_and_ids");
        c->tm.spill_s += num(tm, "spill_to_disk");
        c->tm.merge_s += num(tm, "border_merge");
        cJSON_AddNumberToObject(sj, "wall_s", num(t, "wall_s"));
        cJSON_AddNumberToObject(sj, "peak_rss_mib", num(t, "peak_rss_mib"));
        cJSON_AddItemToObject(sj, "timings_s", cJSON_DetachItemFromObject(t, "timings_s"));
        cJSON_Delete(t);
    }
    cJSON_AddItemToArray(ms->shards_json, sj);
    cJSON *tile;
    while (tiles && (tile = tiles->child) != NULL) cJSON_AddItemToArray(c->tiles_json, cJSON_DetachItemViaPointer(tiles, tile));
    cJSON_Delete(tiles);
}

/* A u32 file of a shard, all of it: n values expected (n < 0: any, *got set). */
static uint32_t *read_u32_file(const char *out_dir, int k, const char *name, int64_t n, int64_t *got, samc_error *err) {
    char path[1300];
    shard_path(path, sizeof path, out_dir, k, name);
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size % 4 != 0 || (n >= 0 && st.st_size != n * 4)) {
        samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: shard %d: %s is missing or of the wrong size", k, path);
        return NULL;
    }
    uint32_t *v = malloc(st.st_size ? (size_t)st.st_size : 4);
    int fd = open(path, O_RDONLY);
    if (!v || fd < 0 || mosaic_read_all(fd, v, (size_t)st.st_size, 0) != 0) {
        samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot read %s: %s", path, strerror(errno));
        free(v);
        v = NULL;
    }
    if (fd >= 0) close(fd);
    if (got) *got = (int64_t)st.st_size / 4;
    return v;
}

/* Shard k's joins inside its band, with its id offset. */
static int replay_unions(run_ctx *c, const merge_shard *s, int k, samc_error *err) {
    int64_t n = 0;
    uint32_t *u = read_u32_file(c->out_dir, k, "unions.u32", -1, &n, err);
    if (!u) return -1;
    int rc = 0;
    for (int64_t i = 0; i + 1 < n && !rc; i += 2) {
        if (u[i] == 0 || u[i] > s->n_ids || u[i + 1] == 0 || u[i + 1] > s->n_ids)
            rc = samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: shard %d: unions.u32 holds ids beyond its %u", k, s->n_ids);
        else
            mosaic_uf_union(&c->uf, s->offset + u[i], s->offset + u[i + 1]);
    }
    free(u);
    return rc;
}

/* The join across the edge between band a (above) and band b, one tile column at a time
 * as a single run does it at that tile row. */
static int join_edge(run_ctx *c, const merge_shard *sa, int a, const merge_shard *sb, int b, samc_error *err) {
    uint32_t *lo = read_u32_file(c->out_dir, a, "bottom.u32", c->g.width, NULL, err);
    uint32_t *hi = lo ? read_u32_file(c->out_dir, b, "top.u32", c->g.width, NULL, err) : NULL;
    int rc = hi ? 0 : -1;
    for (int x = 0; !rc && x < c->g.width; x++) {
        if (lo[x] > sa->n_ids || hi[x] > sb->n_ids)
            rc = samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: shards %d and %d: an edge row holds ids beyond theirs", a, b);
        lo[x] = lo[x] ? lo[x] + sa->offset : 0;
        hi[x] = hi[x] ? hi[x] + sb->offset : 0;
    }
    for (int x0 = 0; !rc && x0 < c->g.width; x0 += c->g.tile_size) {
        int w = c->g.width - x0 < c->g.tile_size ? c->g.width - x0 : c->g.tile_size;
        rc = run_merge_boundary(c, lo + x0, hi + x0, w, err);
    }
    free(lo);
    free(hi);
    return rc;
}

/* Concept mode: every shard's classes and scores at its ids' offset. */
static int read_attrs(run_ctx *c, merge_state *ms, uint32_t total, samc_error *err) {
    if (c->opt->n_classes == 0) return 0;
    if (run_attrs_grow(c, total + 1, err)) return -1;
    for (int k = 0; k < ms->n; k++) {
        const merge_shard *s = &ms->sh[k];
        if (s->y1 == s->y0) continue;
        uint32_t *cls = read_u32_file(c->out_dir, k, "classes.u32", s->n_ids, NULL, err);
        uint32_t *sc = cls ? read_u32_file(c->out_dir, k, "scores.f32", s->n_ids, NULL, err) : NULL;
        int rc = sc ? 0 : -1;
        for (uint32_t i = 0; !rc && i < s->n_ids; i++) {
            if (cls[i] >= (uint32_t)c->opt->n_classes)
                rc = samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: shard %d: classes.u32 holds class %u of %d", k,
                                    cls[i], c->opt->n_classes);
            c->id_class[s->offset + 1 + i] = cls[i];
            memcpy(&c->id_score[s->offset + 1 + i], &sc[i], sizeof(float));
        }
        free(cls);
        free(sc);
        if (rc) return -1;
    }
    return 0;
}

/* Offsets, then one union-find over every shard's ids. */
static int merge_join(run_ctx *c, merge_state *ms, samc_error *err) {
    uint64_t total = 0;
    for (int k = 0; k < ms->n; k++) {
        ms->sh[k].offset = (uint32_t)total;
        total += ms->sh[k].n_ids;
        if (total >= UINT32_MAX - 1)
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "mosaic: more than 4 billion segments before the merge");
    }
    if (mosaic_uf_init(&c->uf, (uint32_t)total + 1, err) || read_attrs(c, ms, (uint32_t)total, err)) return -1;
    c->next_id = (uint32_t)total + 1;
    double t0 = mosaic_now_s();
    int prev = -1;
    for (int k = 0; k < ms->n; k++) {
        const merge_shard *s = &ms->sh[k];
        if (s->y1 == s->y0) continue;   /* more shards than tile rows: an empty band */
        if (replay_unions(c, s, k, err)) return -1;
        if (prev >= 0 && c->opt->merge != MOSAIC_MERGE_NONE && join_edge(c, &ms->sh[prev], prev, s, k, err)) return -1;
        prev = k;
    }
    c->tm.merge_s += mosaic_now_s() - t0;
    return 0;
}

/* Band-local rows [a, b) of shard s into dst. Its labels.tif is read one whole block row
 * (256 rows: its tiling) at a time into s->rows: the merge's strips do not line up with
 * a band that starts at a multiple of the tile size, and reading across block rows
 * would have GDAL decode each block again for every row when its cache is small. */
static int shard_rows(run_ctx *c, merge_shard *s, int k, int a, int b, uint32_t *dst, samc_error *err) {
    int w = c->g.width, h = s->y1 - s->y0;
    if (!s->lr) {
        char path[1300];
        int lw, lh;
        shard_path(path, sizeof path, c->out_dir, k, "labels.tif");
        if (mosaic_label_reader_open(path, &s->lr, &lw, &lh, err)) return -1;
        if (lw != w || lh != h)
            return samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: %s is %dx%d, not the band's %dx%d", path, lw, lh, w, h);
        s->rows = malloc((size_t)w * STRIP_ROWS * sizeof *s->rows);
        if (!s->rows) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for a %d-pixel strip", w);
        s->rows_n = 0;
    }
    for (int y = a; y < b;) {
        int y0 = y / STRIP_ROWS * STRIP_ROWS;
        if (s->rows_n == 0 || s->rows_y0 != y0) {
            s->rows_y0 = y0;
            s->rows_n = h - y0 < STRIP_ROWS ? h - y0 : STRIP_ROWS;
            if (mosaic_label_reader_read(s->lr, y0, s->rows_n, s->rows, err)) return -1;
        }
        int n = (y0 + s->rows_n < b ? y0 + s->rows_n : b) - y;
        memcpy(dst + (size_t)(y - a) * w, s->rows + (size_t)(y - y0) * w, (size_t)n * w * sizeof *dst);
        y += n;
    }
    return 0;
}

static void shard_rows_close(merge_shard *s) {
    mosaic_label_reader_close(s->lr);
    free(s->rows);
    s->lr = NULL;
    s->rows = NULL;
    s->rows_n = 0;
}

/* read_rows of the merge: the shards' labels.tif with their offsets. */
static int read_rows_shards(run_ctx *c, int y0, int n, uint32_t *rows, samc_error *err) {
    merge_state *ms = c->merge;
    int w = c->g.width;
    for (int k = 0; k < ms->n; k++) {
        merge_shard *s = &ms->sh[k];
        int a = y0 > s->y0 ? y0 : s->y0, b = y0 + n < s->y1 ? y0 + n : s->y1;
        if (s->lr && s->y1 <= y0) shard_rows_close(s);   /* passed: its buffers go */
        if (a >= b) continue;
        uint32_t *dst = rows + (size_t)(a - y0) * w;
        if (shard_rows(c, s, k, a - s->y0, b - s->y0, dst, err)) return -1;
        for (size_t i = 0; i < (size_t)(b - a) * w; i++) {
            if (dst[i] > s->n_ids)
                return samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: shard %d: label %u beyond its %u ids", k, dst[i],
                                      s->n_ids);
            if (dst[i]) dst[i] += s->offset;
        }
    }
    return 0;
}

/* How many shards: N of shard 0's manifest; without it, say what is there. */
static cJSON *first_manifest(run_ctx *c, samc_error *err) {
    char path[1300], dir[1100];
    snprintf(dir, sizeof dir, "%s/shards", c->out_dir);
    shard_path(path, sizeof path, c->out_dir, 0, "manifest.json");
    if (access(path, F_OK) == 0) return mosaic_read_json_file(path, err);
    DIR *d = opendir(dir);
    int any = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) any |= e->d_name[0] >= '0' && e->d_name[0] <= '9';
    if (d) closedir(d);
    if (!any)
        samc_error_set(err, SAMC_ERR_ARG, "mosaic: no shards in %s: run `samc mosaic IN %s --model F --shard K/N` for "
                       "K = 0 .. N-1 first", dir, c->out_dir);
    else
        samc_error_set(err, SAMC_ERR_ARG, "mosaic: shard 0 is missing (%s not found): run it with --shard 0/N", path);
    return NULL;
}

/* A folder shards/K with K >= N is from another split: merging past it would hide that. */
static int check_no_stray(run_ctx *c, int n, samc_error *err) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/shards", c->out_dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    while (d && !rc && (e = readdir(d)) != NULL) {
        char *end;
        long k = strtol(e->d_name, &end, 10);
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && *end == 0 && k >= n)
            rc = samc_error_set(err, SAMC_ERR_ARG, "mosaic: %s/%s does not belong to a split into %d shards: remove it",
                                dir, e->d_name, n);
    }
    if (d) closedir(d);
    return rc;
}

int shard_merge_plan(run_ctx *c, samc_error *err) {
    merge_state *ms = calloc(1, sizeof *ms);
    if (!ms) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory");
    c->merge = ms;
    cJSON *m0 = first_manifest(c, err);
    if (!m0) return -1;
    ms->n = (int)num(m0, "shards");
    c->n_shards = ms->n;
    ms->ref = manifest_identity(m0);
    ms->shards_json = cJSON_CreateArray();
    c->tiles_json = cJSON_CreateArray();
    int rc = ms->n < 1 || ms->n > 100000
                 ? samc_error_set(err, SAMC_ERR_FORMAT, "mosaic: %s/shards/0/manifest.json: bad shard count", c->out_dir)
                 : merge_setup(c, ms, m0, "shards/0/manifest.json", err) || check_no_stray(c, ms->n, err);
    ms->sh = rc ? NULL : calloc((size_t)ms->n, sizeof *ms->sh);
    if (!rc && !ms->sh) rc = samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for %d shards", ms->n);
    /* every manifest and file is checked before anything is written */
    for (int k = 0; k < ms->n && !rc; k++) {
        char path[1300];
        shard_path(path, sizeof path, c->out_dir, k, "manifest.json");
        cJSON *m = k == 0 ? m0 : access(path, F_OK) == 0 ? mosaic_read_json_file(path, err) : NULL;
        if (!m && k > 0 && access(path, F_OK) != 0)
            samc_error_set(err, SAMC_ERR_ARG, "mosaic: shard %d of %d is missing (%s not found): run it with --shard "
                           "%d/%d", k, ms->n, path, k, ms->n);
        rc = !m || check_shard(c, ms, m, k, err);
        if (!rc) add_shard_stats(c, ms, m, k);
        if (m != m0) cJSON_Delete(m);
    }
    cJSON_Delete(m0);
    if (rc || merge_join(c, ms, err)) return -1;
    c->read_rows = read_rows_shards;
    c->stats_extra = cJSON_CreateObject();
    cJSON_AddItemToObject(c->stats_extra, "shards", ms->shards_json);
    ms->shards_json = NULL;
    return 0;
}

void shard_merge_free(run_ctx *c) {
    merge_state *ms = c->merge;
    if (!ms) return;
    for (int k = 0; ms->sh && k < ms->n; k++) shard_rows_close(&ms->sh[k]);
    free(ms->sh);
    free(ms->config_json);
    free(ms->model_json);
    free(ms->in_path);
    free(ms->crs_wkt);
    cJSON_Delete(ms->ref);
    cJSON_Delete(ms->shards_json);
    free(ms);
    c->merge = NULL;
}
