/* tests/test_mosaic_pipeline.c: `samc mosaic` end to end (pipelines/mosaic/mosaic.h) on synthetic
 * georeferenced rasters made here with GDAL:
 *   - with an oracle mask generator that returns the exact colour region under each
 *     point, the pipeline must reproduce the regions of the raster: one label per region,
 *     also for regions that cross tile borders and corners (the border merge), on a size
 *     that is not a multiple of the tile size; the polygons must match the labels;
 *   - with the micro synthetic SAM2.1 model on u16 / float rasters with nodata: labels
 *     are 1..N, nodata stays 0, coverage and counts in stats.json agree with labels.tif,
 *     georeferencing is kept, and two runs give the same labels;
 *   - cancel and bad inputs leave no output and no temporary folder. */
#include <stdint.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "pipelines/amg/amg.h"
#include "pipelines/mosaic/mosaic.h"
#include "tests/mosaic_oracle.h"
#include "tests/mosaic_testdata.h"
#include "tests/test.h"

static char g_tmp[256];

static const char *tmp_root(void) { return test_tmp_root(g_tmp, sizeof g_tmp, "samc_test_mosaic"); }

static void test_oracle_reproduces_regions(void) {
    const int W = 530, H = 410;
    char in[400], out[400];
    snprintf(in, sizeof in, "%s/regions.tif", tmp_root());
    snprintf(out, sizeof out, "%s/regions_out", tmp_root());
    double *v = malloc(sizeof *v * 3 * W * H);
    int32_t *region = malloc(sizeof *region * W * H);
    int n_regions = make_regions(v, region, W, H);
    CHECK(write_raster(in, W, H, 3, GDT_Byte, v, 0, 0) == 0);

    mosaic_options o;
    mosaic_options_default(&o);
    o.tile_size = 200;
    o.padding = 20;
    o.mp.points_per_side = 8;
    o.mp.target_coverage = 100.0;
    o.mp.min_area = 30;
    o.merge_enclosed_max_area = 0;
    o.save_geopackage = 1;
    o.simplify_tolerance = 0;
    oracle_ctx oc = { 0 };
    mosaic_mask_source src = oracle_source(&oc);
    mosaic_callbacks cb = { .mask_source = &src };
    mosaic_result res;
    samc_error err = { 0 };
    int rc = mosaic_run(NULL, in, out, &o, &cb, &res, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc != 0) goto cleanup;
    CHECK(oc.calls > 9);   /* 3 x 3 tiles, several passes each */
    CHECK(res.tiles == 9 && res.tiles_skipped == 0);
    CHECK(exists(out, "labels.tif") && exists(out, "segments.shp") && exists(out, "segments.dbf") &&
          exists(out, "segments.gpkg") && exists(out, "stats.json"));
    CHECK(no_temp_left(out));

    int w, h;
    GDALDataType type;
    double gt[6];
    char epsg[32];
    uint32_t *lab = read_labels(res.labels_path, &w, &h, &type, gt, epsg, sizeof epsg);
    CHECK(lab && w == W && h == H);
    if (!lab) goto cleanup;
    CHECKF(!strcmp(epsg, "32633"), "CRS EPSG:%s", epsg);
    CHECK(gt[0] == 500000.0 && gt[1] == 0.5 && gt[3] == 4600000.0 && gt[5] == -0.5);
    CHECK(type == GDT_Byte);
    /* each region of >= 200 pixels is one label, each label lies in one region */
    int32_t *region_of_label = calloc((size_t)W * H + 1, sizeof *region_of_label);
    uint32_t *label_of_region = calloc((size_t)n_regions + 1, sizeof *label_of_region);
    int64_t *region_area = calloc((size_t)n_regions + 1, sizeof *region_area);
    int impure = 0, split = 0, unlabelled = 0;
    uint32_t max_label = 0;
    for (int k = 0; k < W * H; k++) region_area[region[k]]++;
    for (int k = 0; k < W * H; k++) {
        uint32_t l = lab[k];
        int32_t r = region[k];
        if (l > max_label) max_label = l;
        if (region_area[r] < 200) continue;
        if (!l) { unlabelled++; continue; }
        if (!region_of_label[l]) region_of_label[l] = r;
        else if (region_of_label[l] != r) impure++;
        if (!label_of_region[r]) label_of_region[r] = l;
        else if (label_of_region[r] != l) split++;
    }
    CHECKF(impure == 0, "%d pixels carry a label that also covers another region", impure);
    CHECKF(split == 0, "%d pixels of a region carry a second label (a border merge missed)", split);
    CHECKF(unlabelled == 0, "%d pixels of large regions unlabelled", unlabelled);
    CHECK((int64_t)max_label == res.segments);
    /* the big region crosses 2 vertical borders and 1 horizontal: 6 tiles, one label */
    CHECK(label_of_region[region[200 * W + 300]] != 0);
    CHECK(res.segments_before_merge > res.segments);

    cJSON *st = read_json(res.stats_path);
    CHECK(st != NULL);
    if (st) {
        CHECK(cJSON_GetObjectItem(st, "segments")->valuedouble == (double)res.segments);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(st, "tiles")) == 9);
        CHECK(cJSON_GetObjectItem(st, "config") != NULL);
        cJSON_Delete(st);
    }

    /* polygons: valid, one label set, and areas (unsimplified) = pixels x 0.25 m^2 */
    OGRRegisterAll();
    for (int f = 0; f < 2; f++) {
        char vp[600];
        snprintf(vp, sizeof vp, "%s/%s", out, f ? "segments.gpkg" : "segments.shp");
        GDALDatasetH ds = GDALOpenEx(vp, GDAL_OF_VECTOR, NULL, NULL, NULL);
        CHECKF(ds != NULL, "cannot open %s", vp);
        if (!ds) continue;
        OGRLayerH layer = GDALDatasetGetLayer(ds, 0);
        double *area = calloc((size_t)max_label + 1, sizeof *area);
        int invalid = 0, bad_id = 0;
        OGRFeatureH feat;
        OGR_L_ResetReading(layer);
        while ((feat = OGR_L_GetNextFeature(layer)) != NULL) {
            int64_t id = OGR_F_GetFieldAsInteger64(feat, OGR_F_GetFieldIndex(feat, "label_id"));
            OGRGeometryH g = OGR_F_GetGeometryRef(feat);
            if (!g || !OGR_G_IsValid(g)) invalid++;
            if (id < 1 || id > (int64_t)max_label) bad_id++;
            else area[id] += OGR_G_Area(g);
            OGR_F_Destroy(feat);
        }
        int64_t *px = calloc((size_t)max_label + 1, sizeof *px);
        for (int k = 0; k < W * H; k++) px[lab[k]]++;
        int mismatched = 0;
        for (uint32_t l = 1; l <= max_label; l++)
            if (fabs(area[l] - 0.25 * (double)px[l]) > 1e-6 * (1 + area[l])) mismatched++;
        CHECKF(invalid == 0 && bad_id == 0, "%s: %d invalid geometries, %d bad label ids", vp, invalid, bad_id);
        CHECKF(mismatched == 0, "%s: %d labels whose polygon area differs from their pixel area", vp, mismatched);
        OGRSpatialReferenceH srs = OGR_L_GetSpatialRef(layer);
        const char *code = srs ? OSRGetAuthorityCode(srs, NULL) : NULL;
        CHECKF(code && !strcmp(code, "32633"), "%s: CRS %s", vp, code ? code : "(none)");
        free(area);
        free(px);
        GDALClose(ds);
    }
    free(region_of_label);
    free(label_of_region);
    free(region_area);
    free(lab);
cleanup:
    oracle_ctx_free(&oc);
    free(v);
    free(region);
}

/* ---- the micro model ------------------------------------------------------------------ */

static samc_model *micro_model(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/micro/weights/micro.safetensors", test_golden_dir());
    if (access(path, R_OK) != 0) return NULL;
    samc_error err = { 0 };
    samc_options mo = { .backend = SAMC_BACKEND_AUTO, .max_batch = 16 };
    return samc_model_load(path, &mo, &err);
}

static void micro_options(mosaic_options *o) {
    mosaic_options_default(o);
    o->tile_size = 128;
    o->padding = 16;
    o->mp.points_per_side = 4;
    o->mp.points_per_batch = 16;
    o->mp.max_passes = 2;
    o->mp.iou_start = o->mp.iou_end = 0.0;
    o->mp.stability_start = o->mp.stability_end = 0.0;
    o->mp.min_area = 10;
    o->simplify_tolerance = 0.5;
}

/* u16, one band, a nodata stripe, 333 x 270 (not multiples of 128) */
static void test_micro_u16_nodata(void) {
    samc_model *m = micro_model();
    if (!m) TEST_SKIP("micro golden weights not found under %s", test_golden_dir());
    const int W = 333, H = 270;
    char in[400], out1[400], out2[400];
    snprintf(in, sizeof in, "%s/u16.tif", tmp_root());
    snprintf(out1, sizeof out1, "%s/u16_a", tmp_root());
    snprintf(out2, sizeof out2, "%s/u16_b", tmp_root());
    double *v = malloc(sizeof *v * W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double val = 1000.0 + 30000.0 * (((x / 40) + (y / 30)) % 3) + 17.0 * ((x * 7 + y * 3) % 11);
            v[(size_t)y * W + x] = (x >= 150 && x < 190) ? 65535.0 : val;   /* nodata stripe */
        }
    CHECK(write_raster(in, W, H, 1, GDT_UInt16, v, 1, 65535.0) == 0);
    mosaic_options o;
    micro_options(&o);
    mosaic_result r1, r2;
    samc_error err = { 0 };
    int rc1 = mosaic_run(m, in, out1, &o, NULL, &r1, &err);
    CHECKF(rc1 == 0, "%s", err.msg);
    int rc2 = mosaic_run(m, in, out2, &o, NULL, &r2, &err);
    CHECKF(rc2 == 0, "%s", err.msg);
    if (rc1 == 0 && rc2 == 0) {
        int w, h;
        GDALDataType type;
        double gt[6];
        char epsg[32];
        uint32_t *a = read_labels(r1.labels_path, &w, &h, &type, gt, epsg, sizeof epsg);
        uint32_t *b = read_labels(r2.labels_path, &w, &h, &type, gt, epsg, sizeof epsg);
        CHECK(a && b);
        if (a && b) {
            CHECK(memcmp(a, b, sizeof *a * W * H) == 0);   /* same input, same labels */
            int64_t on_nodata = 0, labelled = 0;
            uint32_t max_label = 0;
            uint8_t *seen = calloc((size_t)W * H + 1, 1);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    uint32_t l = a[(size_t)y * W + x];
                    if (x >= 150 && x < 190) on_nodata += l != 0;
                    labelled += l != 0;
                    if (l > max_label) max_label = l;
                    seen[l] = 1;
                }
            int64_t distinct = 0;
            for (uint32_t l = 1; l <= max_label; l++) distinct += seen[l];
            CHECKF(on_nodata == 0, "%lld nodata pixels labelled", (long long)on_nodata);
            CHECKF(distinct == (int64_t)max_label && (int64_t)max_label == r1.segments,
                   "labels not 1..N: %lld distinct, max %u, %lld segments", (long long)distinct, max_label,
                   (long long)r1.segments);
            CHECK(r1.valid_pixels == (int64_t)(W - 40) * H);
            CHECK(r1.labelled_pixels == labelled);
            CHECK(!strcmp(epsg, "32633") && gt[0] == 500000.0);
            free(seen);
        }
        free(a);
        free(b);
        CHECK(no_temp_left(out1));
    }
    free(v);
    samc_model_free(m);
}

/* float32, 4 bands: runs, picks bands 1-3, writes the smallest label type */
static void test_micro_float_4band(void) {
    samc_model *m = micro_model();
    if (!m) TEST_SKIP("micro golden weights not found under %s", test_golden_dir());
    const int W = 150, H = 170;
    char in[400], out[400];
    snprintf(in, sizeof in, "%s/f32.tif", tmp_root());
    snprintf(out, sizeof out, "%s/f32_out", tmp_root());
    double *v = malloc(sizeof *v * 4 * W * H);
    for (int b = 0; b < 4; b++)
        for (int k = 0; k < W * H; k++) v[(size_t)b * W * H + k] = 0.1 * b + 0.001 * ((k % W) / 25 + 3 * (k / W / 30));
    CHECK(write_raster(in, W, H, 4, GDT_Float32, v, 0, 0) == 0);
    mosaic_options o;
    micro_options(&o);
    o.save_shapefile = 0;
    o.save_geopackage = 1;
    mosaic_result r;
    samc_error err = { 0 };
    int rc = mosaic_run(m, in, out, &o, NULL, &r, &err);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc == 0) {
        CHECK(exists(out, "segments.gpkg") && !exists(out, "segments.shp"));
        cJSON *st = read_json(r.stats_path);
        CHECK(st && fabs(cJSON_GetObjectItem(st, "coverage")->valuedouble - r.coverage) < 1e-9);
        CHECK(st && !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "input"), "dtype")->valuestring, "Float32"));
        cJSON_Delete(st);
    }
    free(v);
    samc_model_free(m);
}

static int g_cancel_after;
static int cancel_soon(void *ctx) {
    (void)ctx;
    return --g_cancel_after < 0;
}

static void test_cancel_leaves_nothing(void) {
    char in[400], out[400];
    snprintf(in, sizeof in, "%s/regions.tif", tmp_root());
    snprintf(out, sizeof out, "%s/cancel_out", tmp_root());
    if (access(in, R_OK) != 0) TEST_SKIP("needs regions.tif from test_oracle_reproduces_regions");
    mosaic_options o;
    mosaic_options_default(&o);
    o.tile_size = 200;
    o.padding = 20;
    o.mp.points_per_side = 8;
    oracle_ctx oc = { 0 };
    mosaic_mask_source src = oracle_source(&oc);
    g_cancel_after = 3;
    mosaic_callbacks cb = { .mask_source = &src, .cancelled = cancel_soon };
    mosaic_result res;
    samc_error err = { 0 };
    CHECK(mosaic_run(NULL, in, out, &o, &cb, &res, &err) != 0);
    CHECKF(strstr(err.msg, "cancel") != NULL, "%s", err.msg);
    CHECK(!exists(out, "labels.tif") && !exists(out, "stats.json") && !exists(out, "segments.shp"));
    CHECK(no_temp_left(out));
    oracle_ctx_free(&oc);
}

static void test_bad_inputs(void) {
    mosaic_options o;
    mosaic_options_default(&o);
    oracle_ctx oc = { 0 };
    mosaic_mask_source src = oracle_source(&oc);
    mosaic_callbacks cb = { .mask_source = &src };
    mosaic_result res;
    samc_error err = { 0 };
    char p[400], out[400];
    snprintf(out, sizeof out, "%s/bad_out", tmp_root());
    snprintf(p, sizeof p, "%s/missing.tif", tmp_root());
    CHECK(mosaic_run(NULL, p, out, &o, &cb, &res, &err) != 0 && strstr(err.msg, "missing.tif"));
    snprintf(p, sizeof p, "%s/not_a_raster.tif", tmp_root());
    FILE *f = fopen(p, "w");
    fputs("this is not a raster\n", f);
    fclose(f);
    CHECK(mosaic_run(NULL, p, out, &o, &cb, &res, &err) != 0 && strstr(err.msg, "not_a_raster.tif"));
    /* an output folder below a regular file cannot be created (also as root) */
    char in[400];
    snprintf(in, sizeof in, "%s/regions.tif", tmp_root());
    snprintf(out, sizeof out, "%s/not_a_raster.tif/sub", tmp_root());
    if (access(in, R_OK) == 0)
        CHECKF(mosaic_run(NULL, in, out, &o, &cb, &res, &err) != 0 && strstr(err.msg, "not_a_raster.tif/sub"), "%s",
               err.msg);
    o.tile_size = 3;
    CHECK(mosaic_run(NULL, in, out, &o, &cb, &res, &err) != 0 && strstr(err.msg, "--tile-size"));
    oracle_ctx_free(&oc);
}

/* The tests' folder (inputs and outputs of every test above) is removed: nothing of the
 * runs is left read-only or held open that would keep it from going. */
static void test_cleanup_tmp(void) {
    if (!g_tmp[0]) TEST_SKIP("no temporary folder was made");
    CHECKF(access(g_tmp, F_OK) == 0, "%s vanished before the clean-up", g_tmp);
    CHECKF(rm_rf(g_tmp) == 0, "cannot remove %s", g_tmp);
    CHECKF(access(g_tmp, F_OK) != 0, "%s is still there", g_tmp);
}

TEST_MAIN(TEST_CASE(test_oracle_reproduces_regions), TEST_CASE(test_micro_u16_nodata),
          TEST_CASE(test_micro_float_4band), TEST_CASE(test_cancel_leaves_nothing), TEST_CASE(test_bad_inputs),
          TEST_CASE(test_cleanup_tmp))
