/* tests/mosaic_testdata.h: what the mosaic tests share: synthetic georeferenced rasters
 * written with GDAL (a raster of coloured regions with a known ground truth), reading a
 * labels.tif back, JSON files, and folder checks. Header-only, for tests. */
#ifndef SAMC_TEST_MOSAIC_TESTDATA_H
#define SAMC_TEST_MOSAIC_TESTDATA_H
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gdal.h>
#include <ogr_srs_api.h>

/* A scratch folder /tmp/PREFIX_XXXXXX made on first use into buf[n] ("" if it cannot be). */
static inline const char *test_tmp_root(char *buf, size_t n, const char *prefix) {
    if (!buf[0]) {
        snprintf(buf, n, "/tmp/%s_XXXXXX", prefix);
        if (!mkdtemp(buf)) buf[0] = 0;
    }
    return buf;
}

/* UTM 33N, 0.5 m pixels, origin (500000, 4600000): the test rasters' georeferencing. */
static inline void set_test_georef(GDALDatasetH ds) {
    double gt[6] = { 500000.0, 0.5, 0, 4600000.0, 0, -0.5 };
    GDALSetGeoTransform(ds, gt);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(srs, 32633);
    GDALSetSpatialRef(ds, srs);
    OSRDestroySpatialReference(srs);
}

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf path; 0 when it is gone. */
static inline int rm_rf(const char *path) {
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 && access(path, F_OK) != 0 ? 0 : -1;
}

/* A georeferenced GeoTIFF: UTM 33N, 0.5 m pixels, origin (500000, 4600000). values[b][h][w]
 * as doubles, written in the band type. */
static inline int write_raster(const char *path, int w, int h, int bands, GDALDataType type, const double *values,
                        int has_nodata, double nodata) {
    GDALAllRegister();
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    char *opts[] = { "TILED=YES", NULL };
    GDALDatasetH ds = GDALCreate(drv, path, w, h, bands, type, opts);
    if (!ds) return -1;
    set_test_georef(ds);
    int rc = 0;
    for (int b = 0; b < bands; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        if (has_nodata) GDALSetRasterNoDataValue(band, nodata);
        if (GDALRasterIO(band, GF_Write, 0, 0, w, h, (void *)(values + (size_t)b * w * h), w, h, GDT_Float64, 0, 0) !=
            CE_None)
            rc = -1;
    }
    GDALClose(ds);
    return rc;
}

/* labels.tif band 1 as uint32; also returns its type and georeferencing. */
static inline uint32_t *read_labels(const char *path, int *w, int *h, GDALDataType *type, double gt[6], char *epsg,
                             size_t epsg_n) {
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    if (!ds) return NULL;
    *w = GDALGetRasterXSize(ds);
    *h = GDALGetRasterYSize(ds);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    *type = GDALGetRasterDataType(b);
    GDALGetGeoTransform(ds, gt);
    OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
    const char *code = srs ? OSRGetAuthorityCode(srs, NULL) : NULL;
    snprintf(epsg, epsg_n, "%s", code ? code : "");
    uint32_t *v = malloc(sizeof *v * (size_t)*w * *h);
    if (GDALRasterIO(b, GF_Read, 0, 0, *w, *h, v, *w, *h, GDT_UInt32, 0, 0) != CE_None) {
        free(v);
        v = NULL;
    }
    GDALClose(ds);
    return v;
}

static inline cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static inline int exists(const char *dir, const char *name) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* No ".samc-mosaic-*" temporary folder is left in dir. */
static inline int no_temp_left(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 1;
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d)) != NULL)
        if (!strncmp(e->d_name, ".samc-mosaic-", 13)) ok = 0;
    closedir(d);
    return ok;
}

/* A 530 x 410 RGB raster of rectangles in distinct colours plus one big rectangle
 * crossing both vertical tile borders (x = 200, 400) and the horizontal one (y = 200)
 * at tile size 200; no region edge lies on a tile border. region[h][w] gets the
 * ground-truth 4-connected colour components (ids from 1). Returns their count. */
static inline int make_regions(double *v, int32_t *region, int w, int h) {
    const int xs[] = { 0, 67, 151, 262, 333, 458, 530 }, ys[] = { 0, 88, 173, 246, 351, 410 };
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int cx = 0, cy = 0;
            while (x >= xs[cx + 1]) cx++;
            while (y >= ys[cy + 1]) cy++;
            int id = cy * 6 + cx + 1;
            int big = x >= 120 && x < 430 && y >= 150 && y < 330;
            uint8_t *c = rgb + 3 * ((size_t)y * w + x);
            if (big) { c[0] = 250; c[1] = 240; c[2] = 10; }
            else { c[0] = (uint8_t)(20 + 7 * id); c[1] = (uint8_t)(255 - 5 * id); c[2] = (uint8_t)(60 + 3 * id); }
        }
    for (int b = 0; b < 3; b++)
        for (size_t k = 0; k < (size_t)w * h; k++) v[(size_t)b * w * h + k] = rgb[3 * k + b];
    /* ground truth: components of equal colour */
    for (size_t k = 0; k < (size_t)w * h; k++) region[k] = 0;
    int n = 0;
    int *stack = malloc(sizeof *stack * (size_t)w * h);
    for (int s = 0; s < w * h; s++) {
        if (region[s]) continue;
        region[s] = ++n;
        int sp = 0;
        stack[sp++] = s;
        while (sp) {
            int q = stack[--sp], qx = q % w, qy = q / w;
            const int nb[4][2] = { { qx - 1, qy }, { qx + 1, qy }, { qx, qy - 1 }, { qx, qy + 1 } };
            for (int k = 0; k < 4; k++) {
                int ax = nb[k][0], ay = nb[k][1];
                if (ax < 0 || ay < 0 || ax >= w || ay >= h) continue;
                int a = ay * w + ax;
                if (region[a] || memcmp(rgb + 3 * (size_t)a, rgb + 3 * (size_t)q, 3)) continue;
                region[a] = n;
                stack[sp++] = a;
            }
        }
    }
    free(stack);
    free(rgb);
    return n;
}

#endif
