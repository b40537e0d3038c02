/* tests/test_mosaic_shard.c: shards, the merge and several workers (pipelines/mosaic/mosaic.h),
 * with the oracle mask source on the raster of coloured regions (5 rows x 6 columns of
 * 100-pixel tiles, regions crossing tile and shard edges) and the micro model:
 *   - N shards then the merge give the single run's labels.tif pixels, polygons
 *     (segments.shp / .dbf byte for byte) and counts, for N = 1, 2, 3 and 7 (more shards
 *     than tile rows), with each merge strategy;
 *   - a shard run twice writes the same bytes; a shard already there is not redone; one
 *     made otherwise is refused;
 *   - the merge refuses a missing, mismatched, damaged or truncated shard and a stray
 *     one, writing nothing and changing no shard; it runs again after a stopped merge;
 *   - 3 workers give the output of one (oracle and micro model), also for a shard. */
#include <stdint.h>
#include <unistd.h>

#include "pipelines/mosaic/mosaic.h"
#include "tests/mosaic_oracle.h"
#include "tests/mosaic_testdata.h"
#include "tests/test.h"

#define W 530
#define H 410

static char g_tmp[256], g_in[400];

static const char *tmp_root(void) { return test_tmp_root(g_tmp, sizeof g_tmp, "samc_test_shard"); }

/* the regions raster, written once */
static const char *input(void) {
    if (g_in[0]) return g_in;
    snprintf(g_in, sizeof g_in, "%s/regions.tif", tmp_root());
    double *v = malloc(sizeof *v * 3 * W * H);
    int32_t *region = malloc(sizeof *region * W * H);
    make_regions(v, region, W, H);
    if (write_raster(g_in, W, H, 3, GDT_Byte, v, 0, 0) != 0) g_in[0] = 0;
    free(v);
    free(region);
    return g_in;
}

static void options(mosaic_options *o, mosaic_merge_strategy merge) {
    mosaic_options_default(o);
    o->tile_size = 100;
    o->padding = 20;
    o->mp.points_per_side = 8;
    o->mp.target_coverage = 100.0;
    o->mp.min_area = 30;
    o->merge = merge;
    o->save_geopackage = 1;
    o->simplify_tolerance = 0;
    o->model_json = "{\"file\":\"oracle\"}";
}

/* one oracle-backed shard (shard NULL: a single run); oc may be NULL */
static int run(const char *out, const mosaic_options *o, const mosaic_shard *shard, oracle_ctx *oc_out,
               mosaic_result *res, samc_error *err) {
    oracle_ctx oc = { 0 };
    mosaic_mask_source src = oracle_source(&oc);
    mosaic_callbacks cb = { .mask_source = &src };
    int rc = mosaic_run_ex(NULL, NULL, shard, input(), out, o, &cb, res, err);
    if (oc_out) *oc_out = oc;
    else oracle_ctx_free(&oc);
    return rc;
}

static int run_shards(const char *out, const mosaic_options *o, int n, samc_error *err) {
    for (int k = 0; k < n; k++) {
        mosaic_shard s = { k, n };
        mosaic_result r;
        if (run(out, o, &s, NULL, &r, err)) return -1;
    }
    return 0;
}

/* whole file contents equal */
static int same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int x = fgetc(fa), y = fgetc(fb);
        if (x != y) same = 0;
        if (x == EOF || y == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int c, ok = a && b;
    while (ok && (c = fgetc(a)) != EOF) ok = fputc(c, b) != EOF;
    if (a) fclose(a);
    if (b && fclose(b) != 0) ok = 0;
    return ok ? 0 : -1;
}

static int same_in(const char *da, const char *db, const char *name) {
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/%s", da, name);
    snprintf(b, sizeof b, "%s/%s", db, name);
    return same_file(a, b);
}

static uint32_t *labels_of(const char *dir) {
    char p[600];
    int w, h;
    GDALDataType t;
    double gt[6];
    char epsg[32];
    snprintf(p, sizeof p, "%s/labels.tif", dir);
    uint32_t *v = read_labels(p, &w, &h, &t, gt, epsg, sizeof epsg);
    if (v && (w != W || h != H)) {
        free(v);
        v = NULL;
    }
    return v;
}

static double stat_num(const cJSON *st, const char *obj, const char *key) {
    const cJSON *o = obj ? cJSON_GetObjectItem(st, obj) : st;
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The merged outputs in dir equal the single run's in ref: pixels, polygons, counts. */
static void check_same_outputs(const char *ref, const char *dir, const char *what) {
    uint32_t *a = labels_of(ref), *b = labels_of(dir);
    CHECKF(a && b, "%s: labels.tif missing", what);
    if (a && b) CHECKF(memcmp(a, b, sizeof *a * W * H) == 0, "%s: labels.tif pixels differ from the single run", what);
    free(a);
    free(b);
    CHECKF(same_in(ref, dir, "segments.shp") && same_in(ref, dir, "segments.dbf"),
           "%s: segments.shp / .dbf differ from the single run", what);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/stats.json", ref);
    snprintf(pb, sizeof pb, "%s/stats.json", dir);
    cJSON *sa = read_json(pa), *sb = read_json(pb);
    CHECKF(sa && sb, "%s: stats.json missing", what);
    if (sa && sb) {
        static const char *const keys[][2] = { { NULL, "segments" }, { NULL, "segments_before_merge" },
                                               { NULL, "valid_pixels" }, { NULL, "labelled_pixels" },
                                               { "merge", "pairs_found" }, { "merge", "pairs_joined" },
                                               { "grid", "tiles" }, { "vectors", "polygons" },
                                               { "cleanup", "fragments" }, { "segment_pixels", "median" } };
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            CHECKF(stat_num(sa, keys[i][0], keys[i][1]) == stat_num(sb, keys[i][0], keys[i][1]),
                   "%s: stats.json %s.%s: %g vs %g", what, keys[i][0] ? keys[i][0] : "", keys[i][1],
                   stat_num(sa, keys[i][0], keys[i][1]), stat_num(sb, keys[i][0], keys[i][1]));
        CHECKF(cJSON_GetArraySize(cJSON_GetObjectItem(sa, "tiles")) == cJSON_GetArraySize(cJSON_GetObjectItem(sb, "tiles")),
               "%s: not every tile is in stats.json", what);
    }
    cJSON_Delete(sa);
    cJSON_Delete(sb);
}

static void test_shards_equal_single(void) {
    if (!input()[0]) TEST_SKIP("cannot write the test raster");
    static const mosaic_merge_strategy merges[] = { MOSAIC_MERGE_BEST_MATCH, MOSAIC_MERGE_MUTUAL_BEST,
                                                    MOSAIC_MERGE_MIN_CONTACT, MOSAIC_MERGE_NONE };
    for (int mi = 0; mi < 4; mi++) {
        mosaic_options o;
        options(&o, merges[mi]);
        char ref[400];
        snprintf(ref, sizeof ref, "%s/single_%d", tmp_root(), mi);
        mosaic_result r;
        samc_error err = { 0 };
        int rc = run(ref, &o, NULL, NULL, &r, &err);
        CHECKF(rc == 0, "%s", err.msg);
        if (rc) return;
        CHECK(r.segments_before_merge > r.segments || merges[mi] == MOSAIC_MERGE_NONE);
        /* all four strategies with 3 shards; best_match also with 1, 2 and 7 (> 5 tile rows) */
        static const int counts[] = { 3, 1, 2, 7 };
        for (int ci = 0; ci < (mi == 0 ? 4 : 1); ci++) {
            char out[400], what[100];
            snprintf(out, sizeof out, "%s/sharded_%d_%d", tmp_root(), mi, counts[ci]);
            snprintf(what, sizeof what, "%s, %d shards", mosaic_merge_strategy_name(merges[mi]), counts[ci]);
            rc = run_shards(out, &o, counts[ci], &err);
            CHECKF(rc == 0, "%s: %s", what, err.msg);
            mosaic_result mr;
            if (!rc) rc = mosaic_merge(out, NULL, &mr, &err);
            CHECKF(rc == 0, "%s: merge: %s", what, err.msg);
            if (rc) continue;
            CHECK(mr.shards == counts[ci] && mr.segments == r.segments && mr.tiles == 30);
            check_same_outputs(ref, out, what);
            CHECK(no_temp_left(out));
        }
    }
}

/* every file of shards/K in a and b is the same */
static int same_shard(const char *a, const char *b, int k) {
    static const char *const files[] = { "manifest.json", "labels.tif", "top.u32", "bottom.u32", "unions.u32" };
    char da[500], db[500];
    snprintf(da, sizeof da, "%s/shards/%d", a, k);
    snprintf(db, sizeof db, "%s/shards/%d", b, k);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (!same_in(da, db, files[i])) return 0;
    return 1;
}

static void test_shard_rerun(void) {
    if (!input()[0]) TEST_SKIP("cannot write the test raster");
    mosaic_options o;
    options(&o, MOSAIC_MERGE_BEST_MATCH);
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/rerun_a", tmp_root());
    snprintf(b, sizeof b, "%s/rerun_b", tmp_root());
    mosaic_shard s = { 1, 3 };
    mosaic_result r;
    samc_error err = { 0 };
    CHECKF(run(a, &o, &s, NULL, &r, &err) == 0 && run(b, &o, &s, NULL, &r, &err) == 0, "%s", err.msg);
    CHECKF(same_shard(a, b, 1), "shard 1/3 run twice wrote different bytes");
    CHECK(r.segments_before_merge > 0 && !r.already_complete && exists(a, "shards/1.timing.json"));
    CHECK(!exists(a, "labels.tif") && !exists(a, "shards/0"));   /* a shard writes only its own folder */
    /* again into a: found complete, nothing segmented */
    oracle_ctx oc = { 0 };
    CHECKF(run(a, &o, &s, &oc, &r, &err) == 0, "%s", err.msg);
    CHECK(r.already_complete && oc.calls == 0 && r.segments_before_merge > 0);
    oracle_ctx_free(&oc);
    /* made otherwise: refused, naming the option */
    o.mp.min_area = 31;
    CHECK(run(a, &o, &s, NULL, &r, &err) != 0);
    CHECKF(strstr(err.msg, "min_mask_area") && strstr(err.msg, "shards/1"), "%s", err.msg);
    CHECK(same_shard(a, b, 1));
}

/* the merge of dir fails with msg in its error, writing nothing */
static void merge_fails(const char *dir, const char *msg, const char *what) {
    mosaic_result r;
    samc_error err = { 0 };
    CHECKF(mosaic_merge(dir, NULL, &r, &err) != 0, "%s: the merge succeeded", what);
    CHECKF(strstr(err.msg, msg) != NULL, "%s: error '%s' lacks '%s'", what, err.msg, msg);
    CHECKF(!exists(dir, "labels.tif") && !exists(dir, "stats.json") && !exists(dir, "segments.shp") &&
               no_temp_left(dir), "%s: the failed merge wrote something", what);
}

static void flip_byte(const char *path, long at) {
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
}

static void test_merge_refuses(void) {
    if (!input()[0]) TEST_SKIP("cannot write the test raster");
    mosaic_options o;
    options(&o, MOSAIC_MERGE_BEST_MATCH);
    char d[400], p[600], q[600];
    snprintf(d, sizeof d, "%s/refuse", tmp_root());
    mosaic_result r;
    samc_error err = { 0 };
    merge_fails(d, "no shards", "no shard at all");
    mosaic_shard s0 = { 0, 3 }, s2 = { 2, 3 }, s1 = { 1, 3 };
    CHECKF(run(d, &o, &s0, NULL, &r, &err) == 0 && run(d, &o, &s2, NULL, &r, &err) == 0, "%s", err.msg);
    merge_fails(d, "shard 1 of 3 is missing", "missing shard");
    /* shard 1 with another min_area */
    o.mp.min_area = 40;
    CHECKF(run(d, &o, &s1, NULL, &r, &err) == 0, "%s", err.msg);
    merge_fails(d, "shard 1 does not match shard 0", "mismatched options");
    snprintf(p, sizeof p, "%s/shards/1", d);
    CHECK(rm_rf(p) == 0);
    o.mp.min_area = 30;
    CHECKF(run(d, &o, &s1, NULL, &r, &err) == 0, "%s", err.msg);
    /* a copy of the good shards to damage */
    char good[400];
    snprintf(good, sizeof good, "%s/refuse_good", tmp_root());
    CHECK(run_shards(good, &o, 3, &err) == 0);
    snprintf(p, sizeof p, "%s/shards/1/labels.tif", d);
    flip_byte(p, 300);
    merge_fails(d, "damaged or truncated", "flipped byte in labels.tif");
    snprintf(q, sizeof q, "%s/shards/1/labels.tif", good);
    CHECK(copy_file(q, p) == 0);
    snprintf(p, sizeof p, "%s/shards/2/bottom.u32", d);
    CHECK(truncate(p, 40) == 0);
    merge_fails(d, "shards/2", "truncated bottom.u32");
    snprintf(q, sizeof q, "%s/shards/2/bottom.u32", good);
    CHECK(copy_file(q, p) == 0);
    snprintf(p, sizeof p, "%s/shards/7", d);
    CHECK(mkdir(p, 0755) == 0);
    merge_fails(d, "does not belong to a split into 3 shards", "stray shard folder");
    CHECK(rmdir(p) == 0);
    /* the shards as they are merge; the merge left them as they were */
    char m0[600], m0good[600];
    snprintf(m0, sizeof m0, "%s/shards/0/manifest.json", d);
    snprintf(m0good, sizeof m0good, "%s/shards/0/manifest.json", good);
    CHECKF(mosaic_merge(d, NULL, &r, &err) == 0, "%s", err.msg);
    CHECK(same_file(m0, m0good) && same_shard(d, good, 0) && same_shard(d, good, 1) && same_shard(d, good, 2));
}

/* a merge stopped half-way (its temporary folder left behind) runs again to the end */
static void test_merge_restart(void) {
    if (!input()[0]) TEST_SKIP("cannot write the test raster");
    mosaic_options o;
    options(&o, MOSAIC_MERGE_BEST_MATCH);
    char d[400], ref[400], p[600];
    snprintf(d, sizeof d, "%s/restart", tmp_root());
    snprintf(ref, sizeof ref, "%s/single_0", tmp_root());
    samc_error err = { 0 };
    mosaic_result r;
    CHECK(run_shards(d, &o, 2, &err) == 0);
    snprintf(p, sizeof p, "%s/.samc-mosaic-stopped", d);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/.samc-mosaic-stopped/labels.tif", d);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/stats.json", d);   /* a half-done earlier merge moved one file */
    f = fopen(p, "w");
    if (f) fclose(f);
    CHECKF(mosaic_merge(d, NULL, &r, &err) == 0, "%s", err.msg);
    CHECKF(mosaic_merge(d, NULL, &r, &err) == 0, "second merge: %s", err.msg);
    if (exists(ref, "labels.tif")) check_same_outputs(ref, d, "merge after a stopped merge");
}

/* ---- several workers ---------------------------------------------------------------------- */

static void test_workers_oracle(void) {
    if (!input()[0]) TEST_SKIP("cannot write the test raster");
    mosaic_options o;
    options(&o, MOSAIC_MERGE_BEST_MATCH);
    oracle_ctx oc[3];
    mosaic_mask_source src[3];
    memset(oc, 0, sizeof oc);
    for (int i = 0; i < 3; i++) src[i] = oracle_source(&oc[i]);
    mosaic_workers w = { .n_workers = 3, .sources = src };
    char d[400], ref[400], sd[400];
    snprintf(d, sizeof d, "%s/workers", tmp_root());
    snprintf(sd, sizeof sd, "%s/workers_shard", tmp_root());
    snprintf(ref, sizeof ref, "%s/single_0", tmp_root());
    mosaic_result r;
    samc_error err = { 0 };
    int rc = mosaic_run_ex(NULL, &w, NULL, input(), d, &o, NULL, &r, &err);
    CHECKF(rc == 0, "%s", err.msg);
    CHECKF(oc[0].calls > 0 && oc[1].calls > 0 && oc[2].calls > 0, "tiles did not spread: %d %d %d calls", oc[0].calls,
           oc[1].calls, oc[2].calls);
    if (!rc && exists(ref, "labels.tif")) check_same_outputs(ref, d, "3 workers");
    /* a shard on 3 workers writes what a shard on one writes */
    mosaic_shard s = { 1, 3 };
    char one[400];
    snprintf(one, sizeof one, "%s/rerun_b", tmp_root());
    CHECKF(mosaic_run_ex(NULL, &w, &s, input(), sd, &o, NULL, &r, &err) == 0, "%s", err.msg);
    if (exists(one, "shards/1")) CHECKF(same_shard(sd, one, 1), "shard 1/3 on 3 workers differs from one worker");
    for (int i = 0; i < 3; i++) oracle_ctx_free(&oc[i]);
}

static char g_micro[600];

static samc_model *load_micro(void *ctx, int worker, samc_error *err) {
    (void)ctx;
    (void)worker;
    samc_options mo = { .backend = SAMC_BACKEND_AUTO, .max_batch = 16, .n_threads = 1 };
    return samc_model_load(g_micro, &mo, err);
}

static void unload_micro(void *ctx, int worker, samc_model *m) {
    (void)ctx;
    (void)worker;
    samc_model_free(m);
}

static void test_workers_micro(void) {
    snprintf(g_micro, sizeof g_micro, "%s/micro/weights/micro.safetensors", test_golden_dir());
    if (access(g_micro, R_OK) != 0) TEST_SKIP("micro golden weights not found under %s", test_golden_dir());
    if (!input()[0]) TEST_SKIP("cannot write the test raster");
    mosaic_options o;
    options(&o, MOSAIC_MERGE_BEST_MATCH);
    o.tile_size = 200;
    o.mp.points_per_side = 4;
    o.mp.points_per_batch = 16;
    o.mp.max_passes = 2;
    o.mp.iou_start = o.mp.iou_end = o.mp.stability_start = o.mp.stability_end = 0.0;
    o.mp.min_area = 10;
    o.save_geopackage = 0;
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/micro_1", tmp_root());
    snprintf(b, sizeof b, "%s/micro_2", tmp_root());
    samc_error err = { 0 };
    samc_model *m = load_micro(NULL, 0, &err);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    mosaic_result r;
    CHECKF(mosaic_run(m, input(), a, &o, NULL, &r, &err) == 0, "%s", err.msg);
    samc_model_free(m);
    mosaic_workers w = { .n_workers = 2, .load = load_micro, .unload = unload_micro };
    CHECKF(mosaic_run_ex(NULL, &w, NULL, input(), b, &o, NULL, &r, &err) == 0, "%s", err.msg);
    CHECK(r.segments > 0);
    check_same_outputs(a, b, "micro model on 2 workers");
}

/* The tests' folder is removed, which also shows that no run left a read-only file. */
static void test_cleanup_tmp(void) {
    if (!g_tmp[0]) TEST_SKIP("no temporary folder was made");
    CHECKF(rm_rf(g_tmp) == 0 && access(g_tmp, F_OK) != 0, "cannot remove %s", g_tmp);
}

TEST_MAIN(TEST_CASE(test_shards_equal_single), TEST_CASE(test_shard_rerun), TEST_CASE(test_merge_refuses),
          TEST_CASE(test_merge_restart), TEST_CASE(test_workers_oracle), TEST_CASE(test_workers_micro),
          TEST_CASE(test_cleanup_tmp))
