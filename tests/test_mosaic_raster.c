/* tests/test_mosaic_raster.c: pipelines/mosaic/raster.c on synthetic rasters this program writes
 * itself with GDAL into a temporary folder: Byte / UInt16 / Float32, 1, 2, 3 and 4
 * bands, nodata areas, NaN, alpha, georeferenced (EPSG:32633, 0.5 m pixels), striped,
 * tiled and BigTIFF; the label GeoTIFF writer; and polygonize to GeoPackage and
 * Shapefile, checked against a 4-connected component labelling done here. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "pipelines/mosaic/raster.h"
#include "tests/test.h"

enum { RW = 1237, RH = 999 };   /* not a multiple of any block size */

/* Georeferencing of the synthetic rasters: UTM 33N, 0.5 m pixels, an origin whose
 * coordinates (and every pixel corner's) are exact in binary. */
static const double test_gt[6] = {356012.5, 0.5, 0, 5723400.0, 0, -0.5};

static char tmp_dir[] = "/tmp/samc_test_mosaic_raster_XXXXXX";
static int have_dir = 0;

static const char *tmp_path(const char *name) {
    static char path[16][512];
    static int slot = 0;
    slot = (slot + 1) % 16;
    snprintf(path[slot], sizeof path[slot], "%s/%s", tmp_dir, name);
    return path[slot];
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static char *utm33_wkt(void) {
    OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);
    char *wkt = NULL;
    if (OSRImportFromEPSG(s, 32633) == OGRERR_NONE) OSRExportToWkt(s, &wkt);
    OSRDestroySpatialReference(s);
    return wkt;
}

/* UTM zone of a WKT, 0 when it is not UTM north; survives ESRI .prj round trips. */
static int utm_zone_of_srs(OGRSpatialReferenceH s) {
    int north = 0;
    int z = s ? OSRGetUTMZone(s, &north) : 0;
    return north ? z : 0;
}

static int utm_zone_of_wkt(const char *wkt) {
    if (!wkt || !*wkt) return 0;
    OGRSpatialReferenceH s = OSRNewSpatialReference(wkt);
    int z = utm_zone_of_srs(s);
    if (s) OSRDestroySpatialReference(s);
    return z;
}

typedef double (*value_fn)(int band, int x, int y);

/* Writes a w x h GTiff of n bands of type t, band b pixel (x, y) = f(b, x, y). */
static int make_tiff(const char *path, int w, int h, int n, GDALDataType t, const char *const *opts, value_fn f,
                     int georef, int has_nodata, double nodata) {
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    GDALDatasetH ds = drv ? GDALCreate(drv, path, w, h, n, t, (char **)opts) : NULL;
    if (!ds) return -1;
    int rc = 0;
    if (georef) {
        double gt[6];
        memcpy(gt, test_gt, sizeof gt);
        char *wkt = utm33_wkt();
        if (GDALSetGeoTransform(ds, gt) != CE_None || !wkt || GDALSetProjection(ds, wkt) != CE_None) rc = -1;
        CPLFree(wkt);
    }
    double *row = malloc((size_t)w * sizeof *row);
    for (int b = 1; b <= n && !rc && row; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b);
        if (has_nodata) GDALSetRasterNoDataValue(band, nodata);
        for (int y = 0; y < h && !rc; y++) {
            for (int x = 0; x < w; x++) row[x] = f(b, x, y);
            if (GDALRasterIO(band, GF_Write, 0, y, w, 1, row, w, 1, GDT_Float64, 0, 0) != CE_None) rc = -1;
        }
    }
    if (!row) rc = -1;
    free(row);
    GDALClose(ds);
    return rc;
}

/* ---- the synthetic inputs ------------------------------------------------------------ */

static double byte_value(int b, int x, int y) { return (x * 3 + y * 5) % 256; }

/* UInt16, 3 bands, nodata 0: a nodata rectangle, two pixels where only one band is 0
 * (the others hold values that would widen the range if they were counted). */
static int in_u16_hole(int x, int y) { return x >= 100 && x < 300 && y >= 200 && y < 350; }
static double u16_value(int b, int x, int y) {
    if (in_u16_hole(x, y)) return 0;
    if (x == 700 && y == 500) return b == 2 ? 0 : b == 1 ? 65535 : 65000;
    if (x == 701 && y == 500) return b == 1 ? 0 : 1;
    return 1000 + (x * 37 + y * 101 + b * 4099) % 40000;
}
static int u16_valid(int x, int y) {
    for (int b = 1; b <= 3; b++)
        if (u16_value(b, x, y) == 0) return 0;
    return 1;
}

/* Float32, 1 band, nodata -9999.5: NaN in the top-left, nodata in the bottom-right. */
static double f32_value(int b, int x, int y) {
    if (x < 50 && y < 40) return NAN;
    if (x >= 1000 && x < 1100 && y >= 900) return -9999.5;
    return (float)((x - 600) * 0.25 + y * 0.125 - 7.3);
}
static int f32_valid(int x, int y) { return !(x < 50 && y < 40) && !(x >= 1000 && x < 1100 && y >= 900); }

/* RGBA Byte: alpha 0 on a left strip, 128 (still data) on a band, 255 elsewhere. */
static double rgba_value(int b, int x, int y) {
    if (b == 4) return x < 60 ? 0 : y < 30 ? 128 : 255;
    return (x + y * b + 7 * b) % 256;
}

static double gray_alpha_value(int b, int x, int y) {
    if (b == 2) return (x + y) % 5 == 0 ? 0 : 255;
    return (x * 7 + y) % 256;
}

static double small_value(int b, int x, int y) { return x + y; }

static const char *const opts_striped[] = {NULL};
static const char *const opts_tiled[] = {"TILED=YES", "BLOCKXSIZE=128", "BLOCKYSIZE=128", NULL};
static const char *const opts_bigtiff[] = {"BIGTIFF=YES", "TILED=YES", NULL};
static const char *const opts_rgba[] = {"PHOTOMETRIC=RGB", "ALPHA=YES", NULL};
static const char *const opts_gray_alpha[] = {"ALPHA=YES", NULL};

static void test_setup(void) {
    GDALAllRegister();
    CPLPushErrorHandler(CPLQuietErrorHandler);   /* the failures provoked below are expected */
    have_dir = mkdtemp(tmp_dir) != NULL;
    CHECK(have_dir);
    if (!have_dir) return;
    CHECK(make_tiff(tmp_path("byte1.tif"), RW, RH, 1, GDT_Byte, opts_striped, byte_value, 0, 0, 0) == 0);
    CHECK(make_tiff(tmp_path("u16_3.tif"), RW, RH, 3, GDT_UInt16, opts_tiled, u16_value, 1, 1, 0) == 0);
    CHECK(make_tiff(tmp_path("f32_big.tif"), RW, RH, 1, GDT_Float32, opts_bigtiff, f32_value, 1, 1, -9999.5) == 0);
    CHECK(make_tiff(tmp_path("rgba.tif"), RW, RH, 4, GDT_Byte, opts_rgba, rgba_value, 0, 0, 0) == 0);
    CHECK(make_tiff(tmp_path("gray_alpha.tif"), 100, 80, 2, GDT_Byte, opts_gray_alpha, gray_alpha_value, 0, 0, 0) == 0);
    CHECK(make_tiff(tmp_path("complex.tif"), 16, 16, 1, GDT_CInt16, opts_striped, small_value, 0, 0, 0) == 0);
}

/* Reads the whole file into a fresh buffer of the right size. */
static int read_window(mosaic_raster *r, int x0, int y0, int w, int h, uint8_t **rgb, uint8_t **valid, int64_t *n_valid) {
    *rgb = malloc((size_t)w * h * 3);
    *valid = malloc((size_t)w * h);
    samc_error err = {0};
    *n_valid = mosaic_raster_read_rgb(r, x0, y0, w, h, *rgb, *valid, &err);
    CHECKF(*n_valid >= 0, "%s", err.msg);
    return *n_valid >= 0 ? 0 : -1;
}

static uint8_t stretch(double v, double lo, double hi) {
    double s = floor(255.0 * (v - lo) / (hi - lo) + 0.5);
    return s >= 255 ? 255 : s > 0 ? (uint8_t)s : 0;
}

/* ---- reading ------------------------------------------------------------------------- */

static void test_byte_gray_striped(void) {
    if (!have_dir) TEST_SKIP("no temporary folder");
    mosaic_raster *r = NULL;
    samc_error err = {0};
    CHECKF(mosaic_raster_open(tmp_path("byte1.tif"), NULL, NULL, &r, &err) == 0, "%s", err.msg);
    if (!r) return;
    const mosaic_raster_info *in = mosaic_raster_get_info(r);
    CHECK(in->width == RW && in->height == RH && in->n_bands == 1);
    CHECK(strcmp(in->dtype, "Byte") == 0 && strcmp(in->driver, "GTiff") == 0);
    CHECK(!in->has_geotransform && in->geotransform[1] == 1 && in->geotransform[5] == 1 && in->geotransform[0] == 0);
    CHECK(in->crs_wkt && in->crs_wkt[0] == 0);
    CHECK(!in->has_nodata && in->alpha_band == 0);
    CHECK(in->bands_used[0] == 1 && in->bands_used[1] == 1 && in->bands_used[2] == 1);
    CHECK(in->scale_min == 0 && in->scale_max == 255);
    /* A window at the bottom-right corner, odd size. */
    int x0 = RW - 301, y0 = RH - 177, w = 301, h = 177;
    uint8_t *rgb, *valid;
    int64_t nv;
    if (read_window(r, x0, y0, w, h, &rgb, &valid, &nv) == 0) {
        CHECK(nv == (int64_t)w * h);
        int bad = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const uint8_t *p = rgb + ((size_t)y * w + x) * 3;
                uint8_t v = (uint8_t)byte_value(1, x0 + x, y0 + y);
                bad += p[0] != v || p[1] != v || p[2] != v || !valid[(size_t)y * w + x];
            }
        CHECKF(bad == 0, "%d pixels differ from the gray value replicated", bad);
    }
    free(rgb);
    free(valid);
    /* valid may be NULL. */
    uint8_t px[3];
    CHECK(mosaic_raster_read_rgb(r, 5, 7, 1, 1, px, NULL, &err) == 1 && px[0] == byte_value(1, 5, 7));
    /* Windows outside the raster. */
    uint8_t big[16 * 16 * 3];
    CHECK(mosaic_raster_read_rgb(r, RW - 15, 0, 16, 16, big, NULL, &err) == -1 && err.status == SAMC_ERR_ARG);
    CHECK(mosaic_raster_read_rgb(r, -1, 0, 4, 4, big, NULL, &err) == -1);
    CHECK(mosaic_raster_read_rgb(r, 0, 0, 0, 4, big, NULL, &err) == -1);
    mosaic_raster_close(r);
}

static void test_u16_global_stretch(void) {
    if (!have_dir) TEST_SKIP("no temporary folder");
    double lo = INFINITY, hi = -INFINITY;
    int lo_x = -1, lo_y = -1, lo_b = 0, hi_x = -1, hi_y = -1, hi_b = 0;
    for (int y = 0; y < RH; y++)
        for (int x = 0; x < RW; x++) {
            if (!u16_valid(x, y)) continue;
            for (int b = 1; b <= 3; b++) {
                double v = u16_value(b, x, y);
                if (v < lo) lo = v, lo_x = x, lo_y = y, lo_b = b;
                if (v > hi) hi = v, hi_x = x, hi_y = y, hi_b = b;
            }
        }
    mosaic_raster *r = NULL;
    samc_error err = {0};
    CHECKF(mosaic_raster_open(tmp_path("u16_3.tif"), NULL, NULL, &r, &err) == 0, "%s", err.msg);
    if (!r) return;
    const mosaic_raster_info *in = mosaic_raster_get_info(r);
    CHECK(in->width == RW && in->height == RH && in->n_bands == 3 && strcmp(in->dtype, "UInt16") == 0);
    CHECK(in->has_geotransform);
    for (int i = 0; i < 6; i++) CHECKF(in->geotransform[i] == test_gt[i], "geotransform[%d] %g", i, in->geotransform[i]);
    CHECKF(utm_zone_of_wkt(in->crs_wkt) == 33, "CRS %s", in->crs_wkt);
    CHECK(in->has_nodata && in->nodata == 0 && in->alpha_band == 0);
    CHECK(in->bands_used[0] == 1 && in->bands_used[1] == 2 && in->bands_used[2] == 3);
    CHECKF(in->scale_min == lo && in->scale_max == hi, "scale %g..%g, expected %g..%g (partial nodata pixels excluded)",
           in->scale_min, in->scale_max, lo, hi);

    /* The raster's min reads as 0 and its max as 255, wherever the window lies. */
    uint8_t px[3];
    CHECK(mosaic_raster_read_rgb(r, lo_x, lo_y, 1, 1, px, NULL, &err) == 1 && px[lo_b - 1] == 0);
    CHECK(mosaic_raster_read_rgb(r, hi_x, hi_y, 1, 1, px, NULL, &err) == 1 && px[hi_b - 1] == 255);

    /* Two windows: every pixel follows the one stretch, and a value seen in both windows
     * has the same byte in both. The first overlaps the nodata rectangle and the two
     * partial-nodata pixels. */
    static const int win[2][4] = {{50, 150, 700, 400}, {903, 611, 334, 388}};
    int16_t seen[65536];
    for (int i = 0; i < 65536; i++) seen[i] = -1;
    int bad = 0, bad_valid = 0, clash = 0, compared = 0;
    for (int k = 0; k < 2; k++) {
        int x0 = win[k][0], y0 = win[k][1], w = win[k][2], h = win[k][3];
        uint8_t *rgb, *valid;
        int64_t nv;
        if (read_window(r, x0, y0, w, h, &rgb, &valid, &nv) == 0) {
            int64_t expect_valid = 0;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    size_t i = (size_t)y * w + x;
                    int ok = u16_valid(x0 + x, y0 + y);
                    expect_valid += ok;
                    bad_valid += valid[i] != ok;
                    for (int c = 0; c < 3; c++) {
                        double v = u16_value(c + 1, x0 + x, y0 + y);
                        uint8_t want = ok ? stretch(v, lo, hi) : 0;
                        bad += rgb[3 * i + c] != want;
                        if (!ok || c != 0) continue;
                        int iv = (int)v;
                        if (k == 0) seen[iv] = rgb[3 * i];
                        else if (seen[iv] >= 0) compared++, clash += seen[iv] != rgb[3 * i];
                    }
                }
            CHECKF(nv == expect_valid, "window %d: %lld valid, expected %lld", k, (long long)nv, (long long)expect_valid);
        }
        free(rgb);
        free(valid);
    }
    CHECKF(bad == 0 && bad_valid == 0, "%d channel values and %d valid flags differ", bad, bad_valid);
    CHECKF(compared > 1000 && clash == 0, "%d of %d shared values differ between windows", clash, compared);
    mosaic_raster_close(r);
}

static void test_explicit_bands_and_scale(void) {
    if (!have_dir) TEST_SKIP("no temporary folder");
    const int bands[3] = {3, 1, 2};
    const double scale[2] = {5000, 30000};
    mosaic_raster *r = NULL;
    samc_error err = {0};
    CHECKF(mosaic_raster_open(tmp_path("u16_3.tif"), bands, scale, &r, &err) == 0, "%s", err.msg);
    if (!r) return;
    const mosaic_raster_info *in = mosaic_raster_get_info(r);
    CHECK(in->bands_used[0] == 3 && in->bands_used[1] == 1 && in->bands_used[2] == 2);
    CHECK(in->scale_min == 5000 && in->scale_max == 30000);
    int x0 = 611, y0 = 433, w = 257, h = 129, bad = 0, clamped_lo = 0, clamped_hi = 0;
    uint8_t *rgb, *valid;
    int64_t nv;
    if (read_window(r, x0, y0, w, h, &rgb, &valid, &nv) == 0) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                int ok = u16_valid(x0 + x, y0 + y);
                for (int c = 0; c < 3; c++) {
                    double v = u16_value(bands[c], x0 + x, y0 + y);
                    uint8_t want = ok ? stretch(v, 5000, 30000) : 0;
                    bad += rgb[3 * i + c] != want;
                    clamped_lo += ok && v < 5000;
                    clamped_hi += ok && v > 30000;
                }
            }
    }
    CHECKF(bad == 0, "%d channel values differ", bad);
    CHECK(clamped_lo > 0 && clamped_hi > 0);   /* the window does exercise the clamping */
    free(rgb);
    free(valid);
    mosaic_raster_close(r);
}

static void test_f32_nan_nodata_bigtiff(void) {
    if (!have_dir) TEST_SKIP("no temporary folder");
    const char *path = tmp_path("f32_big.tif");
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (f) {
        CHECK(fread(magic, 1, 4, f) == 4);
        fclose(f);
    }
    CHECKF(magic[0] == 'I' && magic[1] == 'I' && magic[2] == 43, "not a little-endian BigTIFF");
    double lo = INFINITY, hi = -INFINITY;
    for (int y = 0; y < RH; y++)
        for (int x = 0; x < RW; x++)
            if (f32_valid(x, y)) {
                double v = f32_value(1, x, y);
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
    mosaic_raster *r = NULL;
    samc_error err = {0};
    CHECKF(mosaic_raster_open(path, NULL, NULL, &r, &err) == 0, "%s", err.msg);
    if (!r) return;
    const mosaic_raster_info *in = mosaic_raster_get_info(r);
    CHECK(strcmp(in->dtype, "Float32") == 0 && in->n_bands == 1);
    CHECK(in->has_nodata && in->nodata == -9999.5);
    CHECKF(in->scale_min == lo && in->scale_max == hi, "scale %.9g..%.9g, expected %.9g..%.9g", in->scale_min,
           in->scale_max, lo, hi);
    /* Windows over the NaN corner and over the nodata corner. */
    static const int win[2][4] = {{0, 0, 97, 61}, {950, 850, RW - 950, RH - 850}};
    for (int k = 0; k < 2; k++) {
        int x0 = win[k][0], y0 = win[k][1], w = win[k][2], h = win[k][3], bad = 0, n_invalid = 0;
        uint8_t *rgb, *valid;
        int64_t nv;
        if (read_window(r, x0, y0, w, h, &rgb, &valid, &nv) == 0) {
            int64_t expect_valid = 0;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    size_t i = (size_t)y * w + x;
                    int ok = f32_valid(x0 + x, y0 + y);
                    uint8_t want = ok ? stretch(f32_value(1, x0 + x, y0 + y), lo, hi) : 0;
                    expect_valid += ok;
                    n_invalid += !ok;
                    bad += valid[i] != ok || rgb[3 * i] != want || rgb[3 * i + 1] != want || rgb[3 * i + 2] != want;
                }
            CHECK(nv == expect_valid);
        }
        CHECK(n_invalid > 0);
        CHECKF(bad == 0, "window %d: %d pixels differ", k, bad);
        free(rgb);
        free(valid);
    }
    mosaic_raster_close(r);
}

static void test_rgba_alpha(void) {
    if (!have_dir) TEST_SKIP("no temporary folder");
    mosaic_raster *r = NULL;
    samc_error err = {0};
    CHECKF(mosaic_raster_open(tmp_path("rgba.tif"), NULL, NULL, &r, &err) == 0, "%s", err.msg);
    if (!r) return;
    const mosaic_raster_info *in = mosaic_raster_get_info(r);
    CHECK(in->n_bands == 4 && in->alpha_band == 4 && !in->has_nodata);
    CHECK(in->bands_used[0] == 1 && in->bands_used[1] == 2 && in->bands_used[2] == 3);
    CHECK(in->scale_min == 0 && in->scale_max == 255);
    /* The whole raster in one call: larger than one read chunk of the scratch buffer. */
    uint8_t *rgb, *valid;
    int64_t nv;
    if (read_window(r, 0, 0, RW, RH, &rgb, &valid, &nv) == 0) {
        int bad = 0;
        for (int y = 0; y < RH; y++)
            for (int x = 0; x < RW; x++) {
                size_t i = (size_t)y * RW + x;
                int ok = rgba_value(4, x, y) != 0;
                bad += valid[i] != ok;
                for (int c = 0; c < 3; c++) bad += rgb[3 * i + c] != (ok ? (uint8_t)rgba_value(c + 1, x, y) : 0);
            }
        CHECKF(bad == 0, "%d values differ", bad);
        CHECK(nv == (int64_t)(RW - 60) * RH);
    }
    free(rgb);
    free(valid);
    mosaic_raster_close(r);

    /* Two bands, the second alpha: band 1 as gray. */
    CHECKF(mosaic_raster_open(tmp_path("gray_alpha.tif"), NULL, NULL, &r, &err) == 0, "%s", err.msg);
    if (!r) return;
    in = mosaic_raster_get_info(r);
    CHECK(in->n_bands == 2 && in->alpha_band == 2);
    CHECK(in->bands_used[0] == 1 && in->bands_used[1] == 1 && in->bands_used[2] == 1);
    if (read_window(r, 0, 0, 100, 80, &rgb, &valid, &nv) == 0) {
        int bad = 0;
        for (int y = 0; y < 80; y++)
            for (int x = 0; x < 100; x++) {
                size_t i = (size_t)y * 100 + x;
                int ok = gray_alpha_value(2, x, y) != 0;
                uint8_t want = ok ? (uint8_t)gray_alpha_value(1, x, y) : 0;
                bad += valid[i] != ok || rgb[3 * i] != want || rgb[3 * i + 1] != want || rgb[3 * i + 2] != want;
            }
        CHECKF(bad == 0, "%d pixels differ", bad);
    }
    free(rgb);
    free(valid);
    mosaic_raster_close(r);
}

static void expect_open_fails(const char *path, const int *bands, const double *scale, samc_status st, const char *word) {
    static char sentinel;
    mosaic_raster *r = (mosaic_raster *)&sentinel;   /* must come back NULL */
    samc_error err = {0};
    int rc = mosaic_raster_open(path, bands, scale, &r, &err);
    CHECKF(rc == -1 && r == NULL, "%s opened", path);
    if (r && r != (mosaic_raster *)&sentinel) mosaic_raster_close(r);
    CHECKF(err.status == st, "%s: status %d, expected %d (%s)", path, err.status, st, err.msg);
    CHECKF(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
    CHECKF(strstr(err.msg, word) != NULL, "message lacks \"%s\": %s", word, err.msg);
}

static void test_open_errors(void) {
    if (!have_dir) TEST_SKIP("no temporary folder");
    expect_open_fails(tmp_path("does_not_exist.tif"), NULL, NULL, SAMC_ERR_IO, "no such file");
    const char *txt = tmp_path("notes.txt");
    FILE *f = fopen(txt, "w");
    if (f) {
        fputs("this is a text file, not a raster\n", f);
        fclose(f);
    }
    expect_open_fails(txt, NULL, NULL, SAMC_ERR_FORMAT, "not a raster");
    /* A GeoPackage with two raster tables opens as a band-less container of two
     * subdatasets (a VRT without bands is refused by GDAL itself). */
    const char *gpkg = tmp_path("two_tables.gpkg");
    GDALDriverH drv = GDALGetDriverByName("GPKG");
    for (int k = 0; k < 2 && drv; k++) {
        char **o = CSLSetNameValue(NULL, "RASTER_TABLE", k ? "b" : "a");
        if (k) o = CSLSetNameValue(o, "APPEND_SUBDATASET", "YES");
        GDALDatasetH ds = GDALCreate(drv, gpkg, 16, 16, 1, GDT_Byte, o);
        CSLDestroy(o);
        CHECK(ds != NULL);
        double gt[6] = {0, 1, 0, 16, 0, -1};
        if (ds) GDALSetGeoTransform(ds, gt);
        if (ds) GDALClose(ds);
    }
    expect_open_fails(gpkg, NULL, NULL, SAMC_ERR_FORMAT, "no bands");
    const int out_of_range[3] = {1, 2, 4};
    expect_open_fails(tmp_path("u16_3.tif"), out_of_range, NULL, SAMC_ERR_ARG, "band 4");
    const int zero_band[3] = {0, 1, 1};
    expect_open_fails(tmp_path("u16_3.tif"), zero_band, NULL, SAMC_ERR_ARG, "band 0");
    const double equal[2] = {100, 100}, inverted[2] = {200, 100}, nan_scale[2] = {0, NAN};
    expect_open_fails(tmp_path("u16_3.tif"), NULL, equal, SAMC_ERR_ARG, "max must be greater");
    expect_open_fails(tmp_path("u16_3.tif"), NULL, inverted, SAMC_ERR_ARG, "max must be greater");
    expect_open_fails(tmp_path("u16_3.tif"), NULL, nan_scale, SAMC_ERR_ARG, "max must be greater");
    expect_open_fails(tmp_path("complex.tif"), NULL, NULL, SAMC_ERR_UNSUPPORTED, "CInt16");
}

/* ---- the label writer ---------------------------------------------------------------- */

static uint32_t label_at(int x, int y, uint32_t max_label) {
    return (uint32_t)(((uint64_t)x * 2654435761u + (uint64_t)y * 40503u) % ((uint64_t)max_label + 1));
}

static void test_label_types(void) {
    CHECK(strcmp(mosaic_label_type_name(0), "Byte") == 0);
    CHECK(strcmp(mosaic_label_type_name(200), "Byte") == 0);
    CHECK(strcmp(mosaic_label_type_name(255), "Byte") == 0);
    CHECK(strcmp(mosaic_label_type_name(256), "UInt16") == 0);
    CHECK(strcmp(mosaic_label_type_name(65535), "UInt16") == 0);
    CHECK(strcmp(mosaic_label_type_name(70000), "UInt32") == 0);
    CHECK(strcmp(mosaic_label_type_name(1u << 20), "UInt32") == 0);
    CHECK(strcmp(mosaic_label_type_name(UINT32_MAX), "UInt32") == 0);
}

/* Writes a RW x RH label raster in strips (last strip first), reopens it with GDAL and
 * checks type, values, tiling, compression, georeferencing and the absence of nodata. */
static void label_round_trip(uint32_t max_label, const char *want_type, const mosaic_raster_info *georef) {
    char name[64];
    snprintf(name, sizeof name, "labels_%u%s.tif", max_label, georef ? "_geo" : "");
    const char *path = tmp_path(name);
    mosaic_label_writer *lw = NULL;
    samc_error err = {0};
    CHECKF(mosaic_label_writer_create(path, RW, RH, max_label, georef, &lw, &err) == 0, "%s", err.msg);
    if (!lw) return;
    enum { STRIP = 100 };
    uint32_t *rows = malloc((size_t)RW * STRIP * sizeof *rows);
    for (int y0 = (RH - 1) / STRIP * STRIP; y0 >= 0 && rows; y0 -= STRIP) {
        int n = RH - y0 < STRIP ? RH - y0 : STRIP;
        for (int y = 0; y < n; y++)
            for (int x = 0; x < RW; x++) rows[(size_t)y * RW + x] = label_at(x, y0 + y, max_label);
        CHECKF(mosaic_label_writer_write(lw, y0, n, rows, &err) == 0, "%s", err.msg);
    }
    CHECK(mosaic_label_writer_write(lw, RH - 5, 6, rows, &err) == -1 && err.status == SAMC_ERR_ARG);
    CHECKF(mosaic_label_writer_close(lw, &err) == 0, "%s", err.msg);
    free(rows);

    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CHECKF(ds != NULL, "cannot reopen %s", path);
    if (!ds) return;
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    CHECK(GDALGetRasterXSize(ds) == RW && GDALGetRasterYSize(ds) == RH && GDALGetRasterCount(ds) == 1);
    CHECKF(strcmp(GDALGetDataTypeName(GDALGetRasterDataType(b)), want_type) == 0, "type %s, expected %s",
           GDALGetDataTypeName(GDALGetRasterDataType(b)), want_type);
    const char *comp = GDALGetMetadataItem(ds, "COMPRESSION", "IMAGE_STRUCTURE");
    CHECKF(comp && strcmp(comp, "DEFLATE") == 0, "compression %s", comp ? comp : "none");
    int bx = 0, by = 0;
    GDALGetBlockSize(b, &bx, &by);
    CHECK(bx == 256 && by == 256);
    int has_nd = 1;
    GDALGetRasterNoDataValue(b, &has_nd);
    CHECK(!has_nd);
    double gt[6];
    int has_gt = GDALGetGeoTransform(ds, gt) == CE_None;
    const char *wkt = GDALGetProjectionRef(ds);
    if (georef) {
        CHECK(has_gt);
        for (int i = 0; i < 6 && has_gt; i++) CHECKF(gt[i] == georef->geotransform[i], "geotransform[%d] %.17g", i, gt[i]);
        OGRSpatialReferenceH a = OSRNewSpatialReference(wkt), e = OSRNewSpatialReference(georef->crs_wkt);
        CHECKF(a && e && OSRIsSame(a, e), "CRS differs: %s", wkt);
        if (a) OSRDestroySpatialReference(a);
        if (e) OSRDestroySpatialReference(e);
    } else {
        CHECK(!has_gt && (!wkt || !*wkt));
    }
    uint32_t *all = malloc((size_t)RW * RH * sizeof *all);
    if (all && GDALRasterIO(b, GF_Read, 0, 0, RW, RH, all, RW, RH, GDT_UInt32, 0, 0) == CE_None) {
        int bad = 0;
        for (int y = 0; y < RH; y++)
            for (int x = 0; x < RW; x++) bad += all[(size_t)y * RW + x] != label_at(x, y, max_label);
        CHECKF(bad == 0, "%d labels differ after the round trip", bad);
    } else {
        CHECK(0);
    }
    free(all);
    GDALClose(ds);
}

static void test_label_writer(void) {
    if (!have_dir) TEST_SKIP("no temporary folder");
    mosaic_raster *r = NULL;
    samc_error err = {0};
    CHECKF(mosaic_raster_open(tmp_path("u16_3.tif"), NULL, NULL, &r, &err) == 0, "%s", err.msg);
    const mosaic_raster_info *geo = r ? mosaic_raster_get_info(r) : NULL;
    label_round_trip(200, "Byte", geo);
    label_round_trip(70000, "UInt32", NULL);
    label_round_trip(1u << 20, "UInt32", geo);
    label_round_trip(65535, "UInt16", geo);
    mosaic_raster_close(r);

    /* A label above the band type is refused, not clamped into another id. */
    mosaic_label_writer *lw = NULL;
    CHECKF(mosaic_label_writer_create(tmp_path("small.tif"), 8, 4, 200, NULL, &lw, &err) == 0, "%s", err.msg);
    if (lw) {
        uint32_t rows[8 * 2] = {0};
        rows[11] = 300;
        CHECK(mosaic_label_writer_write(lw, 1, 2, rows, &err) == -1 && strstr(err.msg, "300") != NULL);
        rows[11] = 255;
        CHECKF(mosaic_label_writer_write(lw, 1, 2, rows, &err) == 0, "%s", err.msg);
        CHECKF(mosaic_label_writer_close(lw, &err) == 0, "%s", err.msg);
    }
    lw = (mosaic_label_writer *)&lw;
    CHECK(mosaic_label_writer_create(tmp_path("no_such_dir/x.tif"), 8, 4, 200, NULL, &lw, &err) == -1 && lw == NULL);
    CHECK(strstr(err.msg, "no_such_dir/x.tif") != NULL);
    CHECK(mosaic_label_writer_create(tmp_path("empty.tif"), 0, 4, 200, NULL, &lw, &err) == -1);
}

/* ---- polygonize ---------------------------------------------------------------------- */

enum { PW = 64, PH = 48 };
#define BIG_LABEL 70000u

/* Rectangles, one with a background hole and an island of another label in a second
 * hole, one label in two pieces, one touching three raster edges, one touching the left
 * edge, two pixels of one label meeting only at a corner (two 4-connected pieces), and a
 * ring whose hole meets the outside at a corner. */
static uint32_t poly_label(int x, int y) {
    if (x >= 13 && x < 17 && y >= 6 && y < 10) return 7;                      /* island */
    if (x >= 2 && x < 21 && y >= 2 && y < 16) {
        if ((x >= 6 && x < 11 && y >= 5 && y < 10) || (x >= 12 && x < 18 && y >= 5 && y < 11)) return 0;
        return 1;
    }
    if (x >= 25 && x < 31 && ((y >= 2 && y < 7) || (y >= 10 && y < 15))) return 2;   /* two pieces */
    if (x >= 50) return 3;                                                     /* right edge */
    if (x < 2 && y >= 20 && y < 31) return 4;                                  /* left edge */
    if ((x == 35 && y == 20) || (x == 36 && y == 21)) return 5;                /* corner-touching */
    if (x >= 5 && x < 10 && y >= 20 && y < 25 && !(x == 5 && y == 20) && !(x == 6 && y == 21)) return 6;
    if (x >= 35 && x < 46 && y >= 30 && y < PH) return BIG_LABEL;              /* bottom edge */
    return 0;
}

/* The 4-connected components of the raster, as the polygons must come out. */
typedef struct {
    uint32_t label;
    int n_pixels, n_edges;   /* pixel count and boundary edge count */
    int matched;
} component;

static int find_components(const uint32_t *lab, int *comp_of, component *comps, int max_comps) {
    int n = 0;
    int *stack = malloc(sizeof(int) * PW * PH);
    for (int i = 0; i < PW * PH; i++) comp_of[i] = -1;
    for (int s = 0; s < PW * PH && stack; s++) {
        if (!lab[s] || comp_of[s] >= 0 || n >= max_comps) continue;
        component *c = &comps[n];
        *c = (component){.label = lab[s]};
        int top = 0;
        stack[top++] = s;
        comp_of[s] = n;
        while (top) {
            int p = stack[--top], x = p % PW, y = p / PW;
            c->n_pixels++;
            static const int d[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};
            for (int k = 0; k < 4; k++) {
                int nx = x + d[k][0], ny = y + d[k][1];
                if (nx < 0 || ny < 0 || nx >= PW || ny >= PH || lab[ny * PW + nx] != c->label) {
                    c->n_edges++;
                    continue;
                }
                int q = ny * PW + nx;
                if (comp_of[q] < 0) comp_of[q] = n, stack[top++] = q;
            }
        }
        n++;
    }
    free(stack);
    return n;
}

static int write_label_tif(const char *path, const uint32_t *lab, int w, int h, GDALDataType t) {
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    GDALDatasetH ds = drv ? GDALCreate(drv, path, w, h, 1, t, NULL) : NULL;
    if (!ds) return -1;
    double gt[6];
    memcpy(gt, test_gt, sizeof gt);
    char *wkt = utm33_wkt();
    int rc = GDALSetGeoTransform(ds, gt) == CE_None && wkt && GDALSetProjection(ds, wkt) == CE_None ? 0 : -1;
    CPLFree(wkt);
    if (!rc && GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Write, 0, 0, w, h, (void *)lab, w, h, GDT_UInt32, 0, 0) != CE_None)
        rc = -1;
    GDALClose(ds);
    return rc;
}

static double ring_length(OGRGeometryH ring) {
    double t = 0;
    for (int i = 1; i < OGR_G_GetPointCount(ring); i++)
        t += hypot(OGR_G_GetX(ring, i) - OGR_G_GetX(ring, i - 1), OGR_G_GetY(ring, i) - OGR_G_GetY(ring, i - 1));
    return t;
}

static double geom_perimeter(OGRGeometryH g) {
    OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(g));
    double p = 0;
    if (t == wkbPolygon) {
        for (int i = 0; i < OGR_G_GetGeometryCount(g); i++) p += ring_length(OGR_G_GetGeometryRef(g, i));
    } else if (t == wkbMultiPolygon) {
        for (int i = 0; i < OGR_G_GetGeometryCount(g); i++) p += geom_perimeter(OGR_G_GetGeometryRef(g, i));
    }
    return p;
}

/* Checks one output layer against the components: feature count, fields, validity,
 * CRS, exact area and perimeter per piece (unsimplified), and that pixel centres lie in
 * exactly the polygon of their label. */
static void check_vector(const char *path, const uint32_t *lab, component *comps, int n_comps, int simplified) {
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    CHECKF(ds != NULL, "cannot open %s", path);
    if (!ds) return;
    OGRLayerH layer = GDALDatasetGetLayerCount(ds) == 1 ? GDALDatasetGetLayer(ds, 0) : NULL;
    CHECKF(layer != NULL, "%s: expected one layer", path);
    if (!layer) {
        GDALClose(ds);
        return;
    }
    if (strstr(path, ".gpkg")) CHECK(strcmp(OGR_L_GetName(layer), "segments") == 0);
    CHECKF(utm_zone_of_srs(OGR_L_GetSpatialRef(layer)) == 33, "%s: layer CRS is not UTM 33N", path);
    OGRFeatureDefnH def = OGR_L_GetLayerDefn(layer);
    int f_id = OGR_FD_GetFieldIndex(def, "label_id"), f_area = OGR_FD_GetFieldIndex(def, "area"),
        f_per = OGR_FD_GetFieldIndex(def, "perimeter");
    CHECK(f_id >= 0 && f_area >= 0 && f_per >= 0);
    CHECKF(OGR_L_GetFeatureCount(layer, TRUE) == n_comps, "%s: %lld features, %d pieces", path,
           (long long)OGR_L_GetFeatureCount(layer, TRUE), n_comps);

    enum { MAXF = 64 };
    OGRGeometryH geoms[MAXF];
    int64_t labels[MAXF];
    int nf = 0, invalid = 0, bad_fields = 0, unmatched = 0;
    const double px_area = 0.25, px_edge = 0.5;
    for (int i = 0; i < n_comps; i++) comps[i].matched = 0;
    OGR_L_ResetReading(layer);
    OGRFeatureH f;
    while ((f = OGR_L_GetNextFeature(layer)) != NULL) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        if (nf < MAXF && g) {
            geoms[nf] = OGR_G_Clone(g);
            labels[nf] = OGR_F_GetFieldAsInteger64(f, f_id);
            invalid += !OGR_G_IsValid(g);
            double area = OGR_G_Area(g), per = geom_perimeter(g);
            bad_fields += OGR_F_GetFieldAsDouble(f, f_area) != area ||
                          fabs(OGR_F_GetFieldAsDouble(f, f_per) - per) > 1e-9 * per;
            if (!simplified) {
                /* Exact: corners are multiples of 0.5 m from an exactly representable origin. */
                int hit = 0;
                for (int c = 0; c < n_comps && !hit; c++)
                    if (!comps[c].matched && comps[c].label == labels[nf] && comps[c].n_pixels * px_area == area &&
                        comps[c].n_edges * px_edge == per)
                        comps[c].matched = hit = 1;
                unmatched += !hit;
                if (!hit)
                    fprintf(stderr, "    label %lld: area %.17g perimeter %.17g matches no piece\n",
                            (long long)labels[nf], area, per);
            }
            nf++;
        }
        OGR_F_Destroy(f);
    }
    CHECKF(invalid == 0, "%s: %d invalid geometries", path, invalid);
    CHECKF(bad_fields == 0, "%s: %d features whose area/perimeter fields disagree with the geometry", path, bad_fields);
    CHECKF(unmatched == 0, "%s: %d polygons match no 4-connected piece", path, unmatched);
    for (int i = 0; i < n_comps && !simplified; i++)
        CHECKF(comps[i].matched, "%s: the piece of label %u (%d pixels) has no polygon", path, comps[i].label,
               comps[i].n_pixels);

    /* Every pixel centre: inside exactly the polygon of its label, or in none for 0. For
     * simplified polygons only pixels away from boundaries are asked. */
    int wrong = 0, asked = 0;
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++) {
            uint32_t l = lab[y * PW + x];
            if (simplified) {
                int interior = x > 1 && y > 1 && x < PW - 2 && y < PH - 2;
                for (int dy = -2; dy <= 2 && interior; dy++)
                    for (int dx = -2; dx <= 2; dx++) interior &= lab[(y + dy) * PW + x + dx] == l;
                if (!interior) continue;
            }
            asked++;
            OGRGeometryH pt = OGR_G_CreateGeometry(wkbPoint);
            OGR_G_SetPoint_2D(pt, 0, test_gt[0] + (x + 0.5) * test_gt[1], test_gt[3] + (y + 0.5) * test_gt[5]);
            int inside = 0, inside_right = 0;
            for (int k = 0; k < nf; k++)
                if (OGR_G_Contains(geoms[k], pt)) inside++, inside_right += labels[k] == (int64_t)l;
            OGR_G_DestroyGeometry(pt);
            wrong += l ? !(inside == 1 && inside_right == 1) : inside != 0;
        }
    CHECKF(asked > 500 && wrong == 0, "%s: %d of %d pixel centres in the wrong polygon", path, wrong, asked);
    for (int k = 0; k < nf; k++) OGR_G_DestroyGeometry(geoms[k]);
    GDALClose(ds);
}

static int never_cancel(void *ctx) {
    (*(int *)ctx)++;
    return 0;
}

static void test_polygonize(void) {
    if (!have_dir) TEST_SKIP("no temporary folder");
    uint32_t *lab = malloc(sizeof(uint32_t) * PW * PH);
    int *comp_of = malloc(sizeof(int) * PW * PH);
    component comps[64];
    if (!lab || !comp_of) {
        free(lab);
        free(comp_of);
        CHECK(0);
        return;
    }
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++) lab[y * PW + x] = poly_label(x, y);
    int n_comps = find_components(lab, comp_of, comps, 64);
    CHECK(n_comps == 10);   /* 1, 7, 2 (x2), 3, 4, 5 (x2), 6, BIG_LABEL: the test raster is as designed */
    const char *tif = tmp_path("poly_labels.tif");
    CHECK(write_label_tif(tif, lab, PW, PH, GDT_UInt32) == 0);

    const char *gpkg = tmp_path("seg.gpkg"), *shp = tmp_path("seg.shp");
    char tmp_file[600];
    snprintf(tmp_file, sizeof tmp_file, "%s.polygonize.tmp.gpkg", gpkg);
    mosaic_vector_stats st;
    samc_error err = {0};
    int calls = 0;
    /* Twice: the second run overwrites the first. */
    for (int run = 0; run < 2; run++) {
        CHECKF(mosaic_polygonize(tif, gpkg, shp, 0, &st, never_cancel, &calls, &err) == 0, "%s", err.msg);
        CHECK(st.n_polygons == n_comps && st.n_dropped_empty == 0);
        CHECK(!file_exists(tmp_file));
    }
    CHECK(calls > 0);   /* asked through GDALPolygonize's progress */
    check_vector(gpkg, lab, comps, n_comps, 0);
    check_vector(shp, lab, comps, n_comps, 0);

    /* Simplified at 1 m (two pixels): still valid, one polygon per piece, and pixel
     * centres well inside a piece still fall in its polygon. */
    const char *gpkg_s = tmp_path("seg_simplified.gpkg");
    CHECKF(mosaic_polygonize(tif, gpkg_s, NULL, 1.0, &st, NULL, NULL, &err) == 0, "%s", err.msg);
    CHECK(st.n_polygons == n_comps);
    check_vector(gpkg_s, lab, comps, n_comps, 1);

    /* Shapefile only: the temporary file sits beside it and is gone afterwards. */
    const char *shp_only = tmp_path("only.shp");
    char tmp_shp[600];
    snprintf(tmp_shp, sizeof tmp_shp, "%s.polygonize.tmp.gpkg", shp_only);
    CHECKF(mosaic_polygonize(tif, NULL, shp_only, 0, &st, NULL, NULL, &err) == 0, "%s", err.msg);
    CHECK(st.n_polygons == n_comps && !file_exists(tmp_shp));

    free(lab);
    free(comp_of);
}

static int cancel_after(void *ctx) {
    int *left = ctx;
    return --*left < 0;
}

/* A checkerboard of two labels: every pixel its own 4-connected piece, more features
 * than one output transaction holds. */
static void test_polygonize_many_and_cancel(void) {
    if (!have_dir) TEST_SKIP("no temporary folder");
    enum { CW = 120, CH = 100 };
    uint32_t *lab = malloc(sizeof(uint32_t) * CW * CH);
    if (!lab) {
        CHECK(0);
        return;
    }
    for (int y = 0; y < CH; y++)
        for (int x = 0; x < CW; x++) lab[y * CW + x] = 1 + (uint32_t)((x + y) & 1);
    const char *tif = tmp_path("checker.tif");
    CHECK(write_label_tif(tif, lab, CW, CH, GDT_Byte) == 0);
    free(lab);
    const char *gpkg = tmp_path("checker.gpkg");
    char tmp_file[600];
    snprintf(tmp_file, sizeof tmp_file, "%s.polygonize.tmp.gpkg", gpkg);
    mosaic_vector_stats st;
    samc_error err = {0};
    int calls = 0;
    CHECKF(mosaic_polygonize(tif, gpkg, NULL, 0, &st, never_cancel, &calls, &err) == 0, "%s", err.msg);
    CHECK(st.n_polygons == CW * CH && st.n_made_valid == 0);
    CHECK(calls > CW * CH / 1000);
    GDALDatasetH ds = GDALOpenEx(gpkg, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    CHECK(ds != NULL);
    if (ds) {
        OGRLayerH l = GDALDatasetGetLayerByName(ds, "segments");
        CHECK(l && OGR_L_GetFeatureCount(l, TRUE) == CW * CH);
        int64_t sum = 0;
        OGRFeatureH f;
        while (l && (f = OGR_L_GetNextFeature(l)) != NULL) {
            sum += OGR_F_GetFieldAsInteger64(f, OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "label_id"));
            CHECK(OGR_F_GetFieldAsDouble(f, OGR_FD_GetFieldIndex(OGR_L_GetLayerDefn(l), "area")) == 0.25);
            OGR_F_Destroy(f);
        }
        CHECK(sum == (int64_t)CW * CH / 2 * 3);
        GDALClose(ds);
    }

    /* Cancelled during polygonize, and during the writing of features: fails, and leaves
     * neither the temporary file nor a half-written output. */
    const char *gpkg_c = tmp_path("cancelled.gpkg");
    char tmp_c[600];
    snprintf(tmp_c, sizeof tmp_c, "%s.polygonize.tmp.gpkg", gpkg_c);
    for (int k = 0; k < 2; k++) {
        /* The writing asks once per 1000 features, after all the progress calls: the
         * last but two calls of the full run lie in the writing. */
        int left = k == 0 ? 3 : calls - 3;
        CHECK(mosaic_polygonize(tif, gpkg_c, NULL, 0, &st, cancel_after, &left, &err) == -1);
        CHECKF(strstr(err.msg, k == 0 ? "cancelled while polygonizing" : "cancelled after writing") != NULL, "%s",
               err.msg);
        CHECK(!file_exists(tmp_c) && !file_exists(gpkg_c));
    }

    CHECK(mosaic_polygonize(tif, NULL, NULL, 0, &st, NULL, NULL, &err) == -1 && err.status == SAMC_ERR_ARG);
    CHECK(mosaic_polygonize(tmp_path("missing.tif"), gpkg_c, NULL, 0, &st, NULL, NULL, &err) == -1);
    CHECK(strstr(err.msg, "missing.tif") != NULL && !file_exists(tmp_c));
}

static void test_teardown(void) {
    if (!have_dir) return;
    DIR *d = opendir(tmp_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        CHECK(unlink(tmp_path(e->d_name)) == 0);
    }
    if (d) closedir(d);
    CHECK(rmdir(tmp_dir) == 0);
    CPLPopErrorHandler();
    GDALDestroyDriverManager();
}

TEST_MAIN(TEST_CASE(test_setup), TEST_CASE(test_byte_gray_striped), TEST_CASE(test_u16_global_stretch),
          TEST_CASE(test_explicit_bands_and_scale), TEST_CASE(test_f32_nan_nodata_bigtiff), TEST_CASE(test_rgba_alpha),
          TEST_CASE(test_open_errors), TEST_CASE(test_label_types), TEST_CASE(test_label_writer),
          TEST_CASE(test_polygonize), TEST_CASE(test_polygonize_many_and_cancel), TEST_CASE(test_teardown))
