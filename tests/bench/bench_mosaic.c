/* tests/bench/bench_mosaic.c: `samc mosaic` at scale, without a model. Checks that the
 * pipeline (pipelines/mosaic/mosaic.h) keeps its memory bounded and shows where the time goes when
 * a tile holds many segments, which the micro SAM model (a few giant masks) cannot.
 *
 *   build/bench/bench_mosaic [SIZE=20000] [TILE=1000] [DIR=/tmp/samc_bench_mosaic] [keep] [merge=NAME] [shards=N]
 *   make bench-mosaic SIZE=4000
 * (GDAL_CACHEMAX=64 in the environment bounds GDAL's block cache, 5 % of RAM by default,
 * which is part of the run's peak RSS.)
 *
 * 1. Writes DIR/input.tif: SIZE x SIZE, 3 bands Byte, tiled, DEFLATE, BIGTIFF=IF_SAFER,
 *    EPSG:32633 with 0.5 m pixels, coloured by a Voronoi diagram (each pixel takes the
 *    colour of its nearest seed; one jittered seed per CELL x CELL grid cell). Rows are
 *    made and written in strips in a child process, so its time and peak RSS are
 *    measured apart from the run's.
 * 2. Runs mosaic_run on it (no model: the oracle of tests/mosaic_oracle.h gives the exact
 *    cell under each point), default options except points_per_side 16, GeoPackage on,
 *    Shapefile off, into DIR/out.
 * 3. Reads labels.tif back strip by strip and compares it with the Voronoi cells: every
 *    cell of >= min_area pixels should be one segment, and no segment should span two
 *    cells. Not exactly so, by design of the border merge: best_match (the default) also
 *    joins a segment that merely touches a tile border to the one facing it across, when
 *    that is its best contact, so a few labels span two cells (mutual_best joins far
 *    fewer). Exit status 1 when the segment count is off by more than 2 % or more than
 *    2 % of the pixels are wrong: a missed merge or broken ids would be far beyond both.
 *    These bounds fit tiles much larger than the cells (the default 1000 against 120):
 *    with small tiles most cells meet a border and the merge's misses grow with that.
 * 4. With shards=N, first (so that the parent process is still small when it forks): the
 *    same run as N shards, each in its own child process, one after the other, then the
 *    merge in another child: wall time and peak RSS (ru_maxrss of each child) of each,
 *    into DIR/sharded; after step 2, its labels.tif must equal the single run's byte for
 *    byte (exit status 1 if not).
 * Prints a table and, last, one JSON line. DIR/input.tif and DIR/out are removed at the
 * end unless "keep" is given; "merge=NAME" picks the border merge strategy. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include "pipelines/mosaic/mosaic.h"
#include "tests/mosaic_oracle.h"
#include "tests/mosaic_testdata.h"

/* Seed spacing. Seeds are jittered within [CELL/4, 3 CELL/4) of their grid cell, so the
 * nearest seed of any pixel is in the 3 x 3 grid cells around it: its own seed is at most
 * 0.75 * sqrt(2) = 1.06 CELL away, any seed two cells away at least 1.25 CELL. */
#define CELL 120
#define STRIP 256   /* rows per generated / verified strip: the GeoTIFF block height */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double maxrss_mib(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* ---- the Voronoi raster ---------------------------------------------------------------- */

typedef struct {
    int size, n;      /* raster side; grid cells per side (seed id = gy * n + gx) */
    int *sx, *sy;     /* [n * n] seed positions */
} voronoi;

static uint32_t hash32(uint32_t v) {
    v ^= v >> 16;
    v *= 0x7feb352dU;
    v ^= v >> 15;
    v *= 0x846ca68bU;
    v ^= v >> 16;
    return v;
}

static int voronoi_init(voronoi *v, int size) {
    v->size = size;
    v->n = (size + CELL - 1) / CELL;
    size_t ns = (size_t)v->n * v->n;
    v->sx = malloc(ns * sizeof *v->sx);
    v->sy = malloc(ns * sizeof *v->sy);
    if (!v->sx || !v->sy) return -1;
    for (int gy = 0; gy < v->n; gy++)
        for (int gx = 0; gx < v->n; gx++) {
            uint32_t id = (uint32_t)gy * v->n + gx, h = hash32(id * 2654435761U + 12345U);
            v->sx[id] = gx * CELL + CELL / 4 + (int)(h % (CELL / 2));
            v->sy[id] = gy * CELL + CELL / 4 + (int)((h >> 16) % (CELL / 2));
        }
    return 0;
}

static void voronoi_free(voronoi *v) {
    free(v->sx);
    free(v->sy);
}

/* The nearest seed of pixel (x, y). Candidates are visited in id order and only a
 * strictly nearer one wins, so a tie always goes to the smaller id. */
static uint32_t voronoi_cell(const voronoi *v, int x, int y) {
    int gx = x / CELL, gy = y / CELL;
    int64_t best = INT64_MAX;
    uint32_t best_id = 0;
    for (int j = gy - 1; j <= gy + 1; j++) {
        if (j < 0 || j >= v->n) continue;
        for (int i = gx - 1; i <= gx + 1; i++) {
            if (i < 0 || i >= v->n) continue;
            uint32_t id = (uint32_t)j * v->n + i;
            int64_t dx = x - v->sx[id], dy = y - v->sy[id], d = dx * dx + dy * dy;
            if (d < best) {
                best = d;
                best_id = id;
            }
        }
    }
    return best_id;
}

/* A bijection of 24-bit values (odd multipliers and xor-shifts, all invertible mod 2^24),
 * so different cells never share a colour. */
static uint32_t mix24(uint32_t v) {
    const uint32_t m = 0xFFFFFFu;
    v &= m;
    v = (v * 0xB5297Bu) & m;
    v ^= v >> 11;
    v = (v * 0x68E31Du) & m;
    v ^= v >> 13;
    return v;
}

/* The colour of a cell, never black (black is what the black mask paints): mix24 of
 * id + 1, and the one id whose value would be 0 takes mix24(0), which no id + 1 maps to. */
static void cell_colour(uint32_t id, uint8_t c[3]) {
    uint32_t h = mix24(id + 1);
    if (h == 0) h = mix24(0);
    c[0] = (uint8_t)(h >> 16);
    c[1] = (uint8_t)(h >> 8);
    c[2] = (uint8_t)h;
}

static int write_voronoi_tif(const voronoi *v, const char *path, char *msg, size_t msg_n) {
    GDALAllRegister();
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    char *opts[] = { "TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER", NULL };
    int s = v->size;
    GDALDatasetH ds = drv ? GDALCreate(drv, path, s, s, 3, GDT_Byte, opts) : NULL;
    if (!ds) {
        snprintf(msg, msg_n, "cannot create %s: %s", path, CPLGetLastErrorMsg());
        return -1;
    }
    set_test_georef(ds);
    uint8_t *rows = malloc((size_t)s * STRIP * 3);
    int rc = rows ? 0 : -1;
    if (!rows) snprintf(msg, msg_n, "out of memory for a %d-row strip", STRIP);
    for (int y0 = 0; y0 < s && rc == 0; y0 += STRIP) {
        int n = s - y0 < STRIP ? s - y0 : STRIP;
        for (int y = 0; y < n; y++)
            for (int x = 0; x < s; x++) cell_colour(voronoi_cell(v, x, y0 + y), rows + 3 * ((size_t)y * s + x));
        if (GDALDatasetRasterIO(ds, GF_Write, 0, y0, s, n, rows, s, n, GDT_Byte, 3, NULL, 3, (GSpacing)3 * s, 1) !=
            CE_None) {
            snprintf(msg, msg_n, "cannot write rows %d..%d of %s: %s", y0, y0 + n - 1, path, CPLGetLastErrorMsg());
            rc = -1;
        }
        /* write the finished blocks out now: the block cache would otherwise hold up to
         * GDAL_CACHEMAX of them, which is not the generation's own memory */
        GDALFlushCache(ds);
    }
    free(rows);
    GDALClose(ds);
    return rc;
}

/* Generation in a child process, so its peak RSS (from wait4) is its own. */
static int generate(const voronoi *v, const char *path, double *seconds, double *rss_mib) {
    double t0 = now_s();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        char msg[2048] = "";
        int rc = write_voronoi_tif(v, path, msg, sizeof msg);
        if (rc) fprintf(stderr, "bench_mosaic: %s\n", msg);
        fflush(NULL);
        _exit(rc ? 1 : 0);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) {
        fprintf(stderr, "wait4: %s\n", strerror(errno));
        return -1;
    }
    *seconds = now_s() - t0;
    *rss_mib = (double)ru.ru_maxrss / 1024.0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- checking labels.tif against the cells -------------------------------------------- */

typedef struct {
    int64_t cells_present;      /* cells with >= 1 pixel in the raster */
    int64_t cells_expected;     /* cells with >= min_area pixels */
    int64_t cells_split;        /* expected cells whose pixels carry 2+ labels */
    int64_t labels_impure;      /* labels found on 2+ cells */
    int64_t px_unlabelled;      /* pixels of expected cells with label 0 */
    int64_t px_impure;          /* labelled pixels whose label first appeared on another cell */
    int64_t px_split;           /* pixels of a cell whose label differs from the cell's first */
    double seconds;
} check_result;

static int check_labels(const voronoi *v, const char *labels_path, int64_t n_labels, int min_area,
                        check_result *cr) {
    double t0 = now_s();
    memset(cr, 0, sizeof *cr);
    GDALDatasetH ds = GDALOpen(labels_path, GA_ReadOnly);
    if (!ds) {
        fprintf(stderr, "cannot open %s\n", labels_path);
        return -1;
    }
    int s = v->size;
    size_t ns = (size_t)v->n * v->n;
    GDALRasterBandH band = GDALGetRasterBand(ds, 1);
    size_t nl = (size_t)n_labels + 1;   /* labels.tif holds 0..n_labels */
    int64_t *area = calloc(ns, sizeof *area);
    uint32_t *cell_label = calloc(ns, sizeof *cell_label);   /* first label seen, 0 = none */
    uint8_t *cell_split = calloc(ns, 1);
    uint32_t *label_cell = malloc(nl * sizeof *label_cell);  /* first cell seen, UINT32_MAX = none */
    uint8_t *label_impure = calloc(nl, 1);
    uint32_t *strip = malloc((size_t)s * STRIP * sizeof *strip);
    uint32_t *cells = malloc((size_t)s * STRIP * sizeof *cells);
    int rc = 0;
    if (!area || !cell_label || !cell_split || !label_cell || !label_impure || !strip || !cells) {
        fprintf(stderr, "out of memory for the check\n");
        rc = -1;
        goto done;
    }
    for (size_t l = 0; l < nl; l++) label_cell[l] = UINT32_MAX;
    /* pass 1: cell areas (to know which cells count) */
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) area[voronoi_cell(v, x, y)]++;
    for (size_t c = 0; c < ns; c++) {
        cr->cells_present += area[c] > 0;
        cr->cells_expected += area[c] >= min_area;
    }
    /* pass 2: labels against cells */
    for (int y0 = 0; y0 < s && rc == 0; y0 += STRIP) {
        int n = s - y0 < STRIP ? s - y0 : STRIP;
        if (GDALRasterIO(band, GF_Read, 0, y0, s, n, strip, s, n, GDT_UInt32, 0, 0) != CE_None) {
            fprintf(stderr, "cannot read rows %d..%d of %s\n", y0, y0 + n - 1, labels_path);
            rc = -1;
            break;
        }
        for (int y = 0; y < n; y++)
            for (int x = 0; x < s; x++) cells[(size_t)y * s + x] = voronoi_cell(v, x, y0 + y);
        for (size_t k = 0; k < (size_t)n * s; k++) {
            uint32_t l = strip[k], c = cells[k];
            if (l >= nl) {
                fprintf(stderr, "label %u in %s is above the %lld segments\n", l, labels_path, (long long)n_labels);
                rc = -1;
                break;
            }
            if (area[c] < min_area) continue;
            if (l == 0) {
                cr->px_unlabelled++;
                continue;
            }
            if (label_cell[l] == UINT32_MAX) label_cell[l] = c;
            else if (label_cell[l] != c) {
                cr->px_impure++;
                label_impure[l] = 1;
            }
            if (!cell_label[c]) cell_label[c] = l;
            else if (cell_label[c] != l) {
                cr->px_split++;
                cell_split[c] = 1;
            }
        }
    }
    for (size_t c = 0; c < ns; c++) cr->cells_split += cell_split[c];
    for (size_t l = 1; l < nl; l++) cr->labels_impure += label_impure[l];
done:
    free(area);
    free(cell_label);
    free(cell_split);
    free(label_cell);
    free(label_impure);
    free(strip);
    free(cells);
    GDALClose(ds);
    cr->seconds = now_s() - t0;
    return rc;
}

/* ---- the run --------------------------------------------------------------------------- */

/* ru_maxrss never goes down, so its value when a phase starts is the peak of all the
 * phases before: peak[0] at the end of the tiles, [1] of labels.tif, [2] of the vectors. */
typedef struct {
    double t0;
    int last_decile;
    double peak[3];
} progress_ctx;

static void on_progress(void *ctx, const mosaic_progress *p) {
    progress_ctx *pc = ctx;
    if (strcmp(p->phase, "tiles") != 0) {
        double rss = maxrss_mib(RUSAGE_SELF);
        int k = !strcmp(p->phase, "labels") ? 0 : !strcmp(p->phase, "vectors") ? 1 : 2;
        for (int i = k; i < 3; i++) pc->peak[i] = rss;   /* a phase not run adds nothing */
        fprintf(stderr, "  [%7.1f s] %s, peak rss %.0f MiB\n", now_s() - pc->t0, p->phase, rss);
        return;
    }
    int decile = p->tiles_total ? 10 * p->tiles_done / p->tiles_total : 10;
    if (decile == pc->last_decile) return;
    pc->last_decile = decile;
    fprintf(stderr, "  [%7.1f s] tiles %d/%d, %lld segments, coverage %.2f %%, eta %.0f s, peak rss %.0f MiB\n",
            now_s() - pc->t0, p->tiles_done, p->tiles_total, (long long)p->segments, p->coverage, p->eta_s,
            maxrss_mib(RUSAGE_SELF));
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1.0;
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static const char *const phases[] = { "read", "segment", "cleanup_and_ids", "spill_to_disk",
                                      "border_merge", "labels_tif", "vectors", "total" };
enum { N_PHASES = sizeof phases / sizeof *phases };

/* The benchmark's settings and everything it measured. */
#define MAX_SHARDS 64

/* one child process: wall time and peak RSS */
typedef struct {
    double wall_s, rss_mib;
    int ok;
} child_run;

typedef struct {
    int size, tile, keep, n_shards;
    const char *dir;
    char in_path[1200], out_dir[1200], shard_dir[1200];
    child_run shard[MAX_SHARDS], merge;
    int sharded_same;
    mosaic_options o;
    double rss_start, gen_s, gen_rss, run_s, rss_before, rss_after;
    int64_t in_bytes, labels_bytes, gpkg_bytes;
    progress_ctx pc;
    mosaic_result res;
    /* from stats.json */
    double ph[N_PHASES], gen_ms, acc_ms, polygons;
    int64_t passes, masks, max_passes;
    cJSON *st;
    /* the check against the cells */
    check_result cr;
    double seg_diff, bad_px;
    int check_ok;
} bench;

static int parse_bench_args(int argc, char **argv, bench *b) {
    b->size = argc > 1 ? atoi(argv[1]) : 20000;
    b->tile = argc > 2 ? atoi(argv[2]) : 1000;
    b->dir = argc > 3 && argv[3][0] ? argv[3] : "/tmp/samc_bench_mosaic";
    int bad_arg = b->size < 2 * CELL || b->tile < 64;
    mosaic_options_default(&b->o);
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "keep")) b->keep = 1;
        else if (!strncmp(argv[i], "merge=", 6) && mosaic_merge_strategy_parse(argv[i] + 6, &b->o.merge) == 0) continue;
        else if (!strncmp(argv[i], "shards=", 7) && (b->n_shards = atoi(argv[i] + 7)) >= 1 && b->n_shards <= MAX_SHARDS)
            continue;
        else bad_arg = 1;
    }
    if (bad_arg) {
        fprintf(stderr, "usage: %s [SIZE>=%d] [TILE>=64] [DIR] [keep] [merge=best_match|mutual_best|min_contact|none] "
                "[shards=1..%d]\n", argv[0], 2 * CELL, MAX_SHARDS);
        return -1;
    }
    if (mkdir(b->dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", b->dir, strerror(errno));
        return -1;
    }
    snprintf(b->in_path, sizeof b->in_path, "%s/input.tif", b->dir);
    snprintf(b->out_dir, sizeof b->out_dir, "%s/out", b->dir);
    snprintf(b->shard_dir, sizeof b->shard_dir, "%s/sharded", b->dir);
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", b->out_dir, b->shard_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not clear %s\n", b->out_dir);
    b->o.tile_size = b->tile;
    b->o.mp.points_per_side = 16;
    b->o.save_geopackage = 1;
    b->o.save_shapefile = 0;
    return 0;
}

/* Shard k (k < 0: the merge) in a child process, which exits 0 on success. */
static int child_main(bench *b, int k) {
    samc_error err = { 0 };
    mosaic_result res;
    int rc;
    if (k < 0) {
        rc = mosaic_merge(b->shard_dir, NULL, &res, &err);
    } else {
        oracle_ctx oc = { 0 };
        mosaic_mask_source src = oracle_source(&oc);
        mosaic_callbacks cb = { .mask_source = &src };
        mosaic_shard sh = { k, b->n_shards };
        rc = mosaic_run_ex(NULL, NULL, &sh, b->in_path, b->shard_dir, &b->o, &cb, &res, &err);
        oracle_ctx_free(&oc);
    }
    if (rc) fprintf(stderr, "%s %d failed: %s\n", k < 0 ? "merge" : "shard", k, err.msg);
    return rc ? 1 : 0;
}

static void run_child(bench *b, int k, child_run *cr) {
    double t0 = now_s();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(child_main(b, k));
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    cr->ok = pid > 0 && wait4(pid, &status, 0, &ru) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    cr->wall_s = now_s() - t0;
    cr->rss_mib = (double)ru.ru_maxrss / 1024.0;
    fprintf(stderr, "  [%s %d] %.1f s, peak rss %.0f MiB%s\n", k < 0 ? "merge" : "shard", k, cr->wall_s, cr->rss_mib,
            cr->ok ? "" : " FAILED");
}

static int bench_sharded(bench *b) {
    for (int k = 0; k < b->n_shards; k++) run_child(b, k, &b->shard[k]);
    run_child(b, -1, &b->merge);
    int ok = b->merge.ok;
    for (int k = 0; k < b->n_shards; k++) ok &= b->shard[k].ok;
    return ok ? 0 : -1;
}

/* the merged labels.tif has the single run's pixels (read back strip by strip) */
static int same_labels(const bench *b) {
    char p[1300], q[1300];
    snprintf(p, sizeof p, "%s/labels.tif", b->out_dir);
    snprintf(q, sizeof q, "%s/labels.tif", b->shard_dir);
    GDALDatasetH da = GDALOpen(p, GA_ReadOnly), db = GDALOpen(q, GA_ReadOnly);
    int same = da && db && GDALGetRasterXSize(da) == GDALGetRasterXSize(db) &&
               GDALGetRasterYSize(da) == GDALGetRasterYSize(db);
    int w = same ? GDALGetRasterXSize(da) : 0, h = same ? GDALGetRasterYSize(da) : 0;
    uint32_t *x = malloc((size_t)w * STRIP * 4 + 4), *y = malloc((size_t)w * STRIP * 4 + 4);
    for (int y0 = 0; same && x && y && y0 < h; y0 += STRIP) {
        int n = h - y0 < STRIP ? h - y0 : STRIP;
        same = GDALRasterIO(GDALGetRasterBand(da, 1), GF_Read, 0, y0, w, n, x, w, n, GDT_UInt32, 0, 0) == CE_None &&
               GDALRasterIO(GDALGetRasterBand(db, 1), GF_Read, 0, y0, w, n, y, w, n, GDT_UInt32, 0, 0) == CE_None &&
               memcmp(x, y, (size_t)w * n * 4) == 0;
    }
    free(x);
    free(y);
    if (da) GDALClose(da);
    if (db) GDALClose(db);
    return same && w > 0;
}

/* mosaic_run with the oracle, timed, with its peak RSS before and after. */
static int bench_run(bench *b) {
    oracle_ctx oc = { 0 };
    mosaic_mask_source src = oracle_source(&oc);
    b->pc = (progress_ctx){ .t0 = now_s(), .last_decile = -1 };
    mosaic_callbacks cb = { .mask_source = &src, .progress = on_progress, .progress_ctx = &b->pc };
    samc_error err = { 0 };
    b->rss_before = maxrss_mib(RUSAGE_SELF);
    double t0 = now_s();
    int rc = mosaic_run(NULL, b->in_path, b->out_dir, &b->o, &cb, &b->res, &err);
    b->run_s = now_s() - t0;
    b->rss_after = maxrss_mib(RUSAGE_SELF);
    oracle_ctx_free(&oc);
    if (rc != 0) fprintf(stderr, "mosaic_run failed: %s\n", err.msg);
    return rc;
}

/* stats.json: timings and the per-tile passes */
static void read_stats(bench *b) {
    b->st = read_json(b->res.stats_path);
    cJSON *tm = b->st ? cJSON_GetObjectItem(b->st, "timings_s") : NULL;
    for (int i = 0; i < N_PHASES; i++) b->ph[i] = tm ? num(tm, phases[i]) : -1.0;
    cJSON *tiles = b->st ? cJSON_GetObjectItem(b->st, "tiles") : NULL;
    cJSON *t;
    cJSON_ArrayForEach(t, tiles) {
        int np = (int)num(t, "n_passes");
        if (np > b->max_passes) b->max_passes = np;
        cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(t, "passes")) {
            b->passes++;
            b->gen_ms += num(p, "generate_ms");
            b->acc_ms += num(p, "accept_ms");
            b->masks += (int64_t)num(p, "masks_generated");
        }
    }
    cJSON *vj = b->st ? cJSON_GetObjectItem(b->st, "vectors") : NULL;
    b->polygons = vj ? num(vj, "polygons") : -1;
    b->labels_bytes = file_size(b->res.labels_path);
    b->gpkg_bytes = file_size(b->res.gpkg_path);
}

static void check_against_cells(bench *b, const voronoi *v) {
    int check_rc = check_labels(v, b->res.labels_path, b->res.segments, b->o.mp.min_area, &b->cr);
    const check_result *cr = &b->cr;
    b->seg_diff = cr->cells_expected ? 100.0 * ((double)b->res.segments - (double)cr->cells_expected) /
                                           (double)cr->cells_expected
                                     : 0.0;
    b->bad_px = 100.0 * (double)(cr->px_impure + cr->px_split + cr->px_unlabelled) / ((double)b->size * b->size);
    b->check_ok = check_rc == 0 && b->seg_diff < 2.0 && b->seg_diff > -2.0 && b->bad_px < 2.0;
}

static void print_table(const bench *b) {
    const mosaic_result *res = &b->res;
    const check_result *cr = &b->cr;
    const double *ph = b->ph;
    cJSON *cj = b->st ? cJSON_GetObjectItem(b->st, "cleanup") : NULL;
    cJSON *mj = b->st ? cJSON_GetObjectItem(b->st, "merge") : NULL;
    printf("\nsamc mosaic scale benchmark: %d x %d px (%.1f Mpx), tile %d, oracle masks, GDAL cache max %lld MiB\n",
           b->size, b->size, (double)b->size * b->size / 1e6, b->tile, (long long)(GDALGetCacheMax64() >> 20));
    printf("  %-34s %12.1f MiB at start (the loaded libraries)\n", "peak rss (ru_maxrss)", b->rss_start);
    printf("  %-34s %12.1f s   peak rss %8.1f MiB (child process)\n", "raster generation", b->gen_s, b->gen_rss);
    printf("  %-34s %12.1f MiB\n", "input.tif", b->in_bytes / 1048576.0);
    printf("  %-34s %12.1f s\n", "mosaic_run wall", b->run_s);
    printf("  %-34s %12.1f MiB before, %.1f MiB after the run\n", "peak rss (ru_maxrss)", b->rss_before, b->rss_after);
    printf("  %-34s %12.1f MiB tiles, %.1f MiB labels.tif, %.1f MiB vectors\n", "peak rss at the end of",
           b->pc.peak[0], b->pc.peak[1], b->pc.peak[2]);
    printf("  %-34s %12s\n", "border merge strategy", mosaic_merge_strategy_name(b->o.merge));
    printf("  %-34s %12d (%d skipped)\n", "tiles", res->tiles, res->tiles_skipped);
    printf("  %-34s %12lld passes (max %lld per tile), %lld masks\n", "multipass", (long long)b->passes,
           (long long)b->max_passes, (long long)b->masks);
    printf("  %-34s %12lld before merge, %lld after\n", "segments", (long long)res->segments_before_merge,
           (long long)res->segments);
    printf("  %-34s %12.3f %%\n", "coverage", res->coverage);
    printf("  %-34s %12.0f\n", "polygons", b->polygons);
    if (cj)
        printf("  %-34s %12.0f fragments, %.0f merged enclosed, %.0f removed (%.0f px)\n", "cleanup",
               num(cj, "fragments"), num(cj, "merged_enclosed"), num(cj, "removed_small"), num(cj, "pixels_removed"));
    if (mj) printf("  %-34s %12.0f pairs found, %.0f joined\n", "border merge", num(mj, "pairs_found"),
                   num(mj, "pairs_joined"));
    printf("  %-34s %12.1f MiB labels.tif, %.1f MiB segments.gpkg\n", "outputs", b->labels_bytes / 1048576.0,
           b->gpkg_bytes / 1048576.0);
    printf("  stats.json timings_s:\n");
    for (int i = 0; i < N_PHASES; i++)
        printf("    %-32s %12.2f s %6.1f %%\n", phases[i], ph[i], ph[7] > 0 ? 100.0 * ph[i] / ph[7] : 0.0);
    printf("    %-32s %12.2f s (oracle generate %.2f s, mask accept %.2f s)\n", "segment = generate + accept + rest",
           ph[1], b->gen_ms / 1000.0, b->acc_ms / 1000.0);
    printf("  check against the Voronoi cells (%.1f s):\n", cr->seconds);
    printf("    %-32s %12lld present, %lld of >= %d px\n", "cells", (long long)cr->cells_present,
           (long long)cr->cells_expected, b->o.mp.min_area);
    printf("    %-32s %+12.3f %%\n", "segments vs cells", b->seg_diff);
    printf("    %-32s %12lld cells split, %lld labels spanning cells\n", "ids", (long long)cr->cells_split,
           (long long)cr->labels_impure);
    printf("    %-32s %12lld unlabelled, %lld impure, %lld split (%.4f %% in all)\n", "pixels",
           (long long)cr->px_unlabelled, (long long)cr->px_impure, (long long)cr->px_split, b->bad_px);
    printf("    %-32s %12s\n", "verdict", b->check_ok ? "ok" : "MISMATCH");
    if (!b->n_shards) return;
    double sum = 0, max = 0, rss = 0;
    printf("  %d shards (one child process each, one after the other), then the merge:\n", b->n_shards);
    for (int k = 0; k < b->n_shards; k++) {
        const child_run *c = &b->shard[k];
        printf("    shard %-26d %12.1f s   peak rss %8.1f MiB\n", k, c->wall_s, c->rss_mib);
        sum += c->wall_s;
        if (c->wall_s > max) max = c->wall_s;
        if (c->rss_mib > rss) rss = c->rss_mib;
    }
    printf("    %-32s %12.1f s   peak rss %8.1f MiB\n", "merge", b->merge.wall_s, b->merge.rss_mib);
    printf("    %-32s %12.1f s (sum), %.1f s (slowest shard) + merge %.1f s; largest shard peak rss %.1f MiB\n",
           "shards", sum, max, b->merge.wall_s, rss);
    printf("    %-32s %12s\n", "labels.tif pixels vs the single run", b->sharded_same ? "identical" : "DIFFERENT");
}

/* one JSON line for scripts */
static void print_json(const bench *b) {
    const mosaic_result *res = &b->res;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "size", b->size);
    cJSON_AddNumberToObject(j, "tile", b->tile);
    cJSON_AddStringToObject(j, "merge", mosaic_merge_strategy_name(b->o.merge));
    cJSON_AddNumberToObject(j, "peak_rss_start_mib", b->rss_start);
    cJSON_AddNumberToObject(j, "generate_s", b->gen_s);
    cJSON_AddNumberToObject(j, "generate_peak_rss_mib", b->gen_rss);
    cJSON_AddNumberToObject(j, "input_mib", b->in_bytes / 1048576.0);
    cJSON_AddNumberToObject(j, "run_s", b->run_s);
    cJSON_AddNumberToObject(j, "peak_rss_before_mib", b->rss_before);
    cJSON_AddNumberToObject(j, "peak_rss_after_mib", b->rss_after);
    cJSON_AddNumberToObject(j, "peak_rss_tiles_mib", b->pc.peak[0]);
    cJSON_AddNumberToObject(j, "peak_rss_labels_mib", b->pc.peak[1]);
    cJSON_AddNumberToObject(j, "peak_rss_vectors_mib", b->pc.peak[2]);
    cJSON_AddNumberToObject(j, "gdal_cache_max_mib", (double)(GDALGetCacheMax64() >> 20));
    cJSON_AddNumberToObject(j, "tiles", res->tiles);
    cJSON_AddNumberToObject(j, "passes", (double)b->passes);
    cJSON_AddNumberToObject(j, "masks", (double)b->masks);
    cJSON_AddNumberToObject(j, "segments_before_merge", (double)res->segments_before_merge);
    cJSON_AddNumberToObject(j, "segments", (double)res->segments);
    cJSON_AddNumberToObject(j, "coverage", res->coverage);
    cJSON_AddNumberToObject(j, "polygons", b->polygons);
    cJSON *jt = cJSON_AddObjectToObject(j, "timings_s");
    for (int i = 0; i < N_PHASES; i++) cJSON_AddNumberToObject(jt, phases[i], b->ph[i]);
    cJSON_AddNumberToObject(jt, "oracle_generate", b->gen_ms / 1000.0);
    cJSON_AddNumberToObject(jt, "mask_accept", b->acc_ms / 1000.0);
    cJSON_AddNumberToObject(j, "cells_expected", (double)b->cr.cells_expected);
    cJSON_AddNumberToObject(j, "cells_split", (double)b->cr.cells_split);
    cJSON_AddNumberToObject(j, "labels_impure", (double)b->cr.labels_impure);
    cJSON_AddNumberToObject(j, "bad_pixels_pct", b->bad_px);
    cJSON_AddBoolToObject(j, "check_ok", b->check_ok);
    if (b->n_shards) {
        cJSON *sh = cJSON_AddArrayToObject(j, "shards");
        for (int k = 0; k < b->n_shards; k++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "wall_s", b->shard[k].wall_s);
            cJSON_AddNumberToObject(o, "peak_rss_mib", b->shard[k].rss_mib);
            cJSON_AddItemToArray(sh, o);
        }
        cJSON *m = cJSON_AddObjectToObject(j, "merge_run");
        cJSON_AddNumberToObject(m, "wall_s", b->merge.wall_s);
        cJSON_AddNumberToObject(m, "peak_rss_mib", b->merge.rss_mib);
        cJSON_AddBoolToObject(j, "sharded_equals_single", b->sharded_same);
    }
    char *line = cJSON_PrintUnformatted(j);
    printf("%s\n", line ? line : "{}");
    free(line);
    cJSON_Delete(j);
}

int main(int argc, char **argv) {
    static bench b;
    b.rss_start = maxrss_mib(RUSAGE_SELF);   /* the loaded libraries (CUDA's are large) */
    if (parse_bench_args(argc, argv, &b) != 0) return 2;
    voronoi v;
    if (voronoi_init(&v, b.size)) {
        fprintf(stderr, "out of memory for %d seeds\n", (b.size + CELL - 1) / CELL);
        return 2;
    }
    fprintf(stderr, "bench_mosaic: %d x %d Voronoi raster (cell %d px, %d seeds), tile %d -> %s\n", b.size, b.size,
            CELL, v.n * v.n, b.tile, b.dir);
    if (generate(&v, b.in_path, &b.gen_s, &b.gen_rss)) {
        fprintf(stderr, "raster generation failed\n");
        return 1;
    }
    b.in_bytes = file_size(b.in_path);
    fprintf(stderr, "  generated %s (%.1f MiB) in %.1f s, peak rss %.0f MiB\n", b.in_path, b.in_bytes / 1048576.0,
            b.gen_s, b.gen_rss);
    if (b.n_shards && bench_sharded(&b) != 0) return 1;
    if (bench_run(&b) != 0) return 1;
    if (b.n_shards) b.sharded_same = same_labels(&b);
    read_stats(&b);
    check_against_cells(&b, &v);
    print_table(&b);
    print_json(&b);
    cJSON_Delete(b.st);
    voronoi_free(&v);
    if (!b.keep) {
        char cmd[4000];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", b.out_dir, b.shard_dir, b.in_path);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s and %s\n", b.out_dir, b.in_path);
        rmdir(b.dir);   /* only when nothing else is in it */
    }
    return b.check_ok && (!b.n_shards || b.sharded_same) ? 0 : 1;
}
