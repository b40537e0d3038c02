/* pipelines/mosaic/raster.c: the GDAL/OGR side of `samc mosaic` (see raster.h).
 *
 * Mirrors what sam-mosaic's io/reader.py, io/writer.py and vectorize/polygonize.py do
 * with rasterio and shapely, on the GDAL C API instead: windows of any raster become
 * 8-bit RGB with one stretch for the whole raster (so a value gives the same byte in
 * every tile), labels go to a tiled DEFLATE GeoTIFF in strips, and the label raster is
 * polygonized by GDALPolygonize, repaired (MakeValid), simplified with topology
 * preservation and written with label id, area and perimeter.
 *
 * Every GDAL call runs under a quiet CPL error handler (GDAL's handler stack is per
 * thread), and the last CPL message goes into err, so nothing is printed. A
 * mosaic_raster is used by one thread at a time (it owns one scratch buffer).
 */
#include "pipelines/mosaic/raster.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "util/clock.h"

/* A read is cut into row chunks of at most this many doubles (32 MiB), so the scratch
 * buffer stays small even for large windows with four planes. */
#define RASTER_SCRATCH_DOUBLES ((size_t)4 << 20)
/* Output features per transaction of a GeoPackage: big enough that SQLite's commit cost
 * vanishes, small enough that the journal stays modest. */
#define VEC_TRANSACTION_FEATURES 10000
/* Features between two calls of the caller's cancel check. */
#define VEC_CANCEL_EVERY 1000

/* GDAL's block cache, unless GDAL_CACHEMAX says otherwise. GDAL's own default is 5% of
 * the machine's RAM, and a mosaic fills it: every block of the input read once stays
 * cached up to that limit, so the resident size grew with the raster (1.7 GB on a 20k x
 * 20k run, 650 MB with 128 MB). Neighbouring tiles share only their padding, so a cache
 * smaller than a row of tiles costs little re-reading. */
#define GDAL_CACHE_BYTES ((int64_t)128 << 20)

static pthread_once_t gdal_once = PTHREAD_ONCE_INIT;
static void gdal_register(void) {
    GDALAllRegister();
    if (!getenv("GDAL_CACHEMAX")) GDALSetCacheMax64(GDAL_CACHE_BYTES);
}

static void gdal_enter(void) {
    pthread_once(&gdal_once, gdal_register);
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLErrorReset();
}

static void gdal_leave(void) { CPLPopErrorHandler(); }

/* The message of the last CPL error, or a placeholder when GDAL gave none. */
static const char *cpl_msg(void) {
    const char *m = CPLGetLastErrorMsg();
    return m && *m ? m : "no GDAL message";
}

static int cpl_failed(void) { return CPLGetLastErrorType() >= CE_Failure; }

/* ---- secrets out of paths ------------------------------------------------------------ */

void mosaic_redact_urls(const char *in, char *out, size_t n) {
    size_t o = 0;
    const char *p = in;
    out[0] = 0;
    while (*p && o + 1 < n) {
        const char *u = strstr(p, "://");
        if (!u) {
            o += (size_t)snprintf(out + o, n - o, "%s", p);
            break;
        }
        u += 3;
        /* up to the host as it is; then the URL without user:password@, and its query
         * (where signed URLs keep their signature) hidden */
        o += (size_t)snprintf(out + o, n - o, "%.*s", (int)(u - p), p);
        if (o + 1 >= n) break;
        const char *end = u + strcspn(u, " \t\n'\"");
        if (end > u && end[-1] == ':') end--;   /* "URL: message" */
        const char *slash = memchr(u, '/', (size_t)(end - u));
        const char *at = memchr(u, '@', (size_t)((slash ? slash : end) - u));
        if (at) u = at + 1;
        const char *q = memchr(u, '?', (size_t)(end - u));
        o += (size_t)snprintf(out + o, n - o, "%.*s%s", (int)((q ? q : end) - u), u, q ? "?<hidden>" : "");
        p = end;
    }
}

/* Where a remote file is "not found", the network or the credentials are the usual cause. */
static const char *remote_hint(const char *path) {
    if (strncmp(path, "/vsi", 4) != 0 || !strncmp(path, "/vsimem/", 8)) return "no such file";
    return "not found or not reachable (check the URL or bucket path, the network, and the credentials in "
           "GDAL's environment variables; GDAL_HTTP_MAX_RETRY retries failed reads)";
}

/* err->msg with mosaic_redact_urls applied */
static void redact_error(samc_error *err) {
    if (!err) return;
    char tmp[sizeof err->msg];
    mosaic_redact_urls(err->msg, tmp, sizeof tmp);
    snprintf(err->msg, sizeof err->msg, "%s", tmp);
}

/* ---- reading ------------------------------------------------------------------------- */

struct mosaic_raster {
    GDALDatasetH ds;
    char *path;
    mosaic_raster_info info;
    /* The distinct bands read per window, as planes of the scratch buffer. */
    int n_planes;
    int plane_band[4];
    int rgb_plane[3];           /* plane feeding R, G, B */
    int used_planes[3], n_used; /* distinct planes of the used bands (nodata / NaN test) */
    int alpha_plane;            /* -1: none */
    double nodata_cmp[4];       /* nodata as each plane's data type stores it */
    double *scratch;
    size_t scratch_cap;         /* doubles */
};

static int plane_of(mosaic_raster *r, int band) {
    for (int p = 0; p < r->n_planes; p++)
        if (r->plane_band[p] == band) return p;
    r->plane_band[r->n_planes] = band;
    return r->n_planes++;
}

static int scratch_reserve(mosaic_raster *r, size_t n, samc_error *err) {
    if (n <= r->scratch_cap) return 0;
    double *p = realloc(r->scratch, n * sizeof *p);
    if (!p)
        return samc_error_set(err, SAMC_ERR_NOMEM, "%s: cannot allocate %zu bytes of read buffer", r->path,
                    n * sizeof *p);
    r->scratch = p;
    r->scratch_cap = n;
    return 0;
}

/* Rows per chunk for a window w wide, so a chunk of all planes fits the scratch budget. */
static int chunk_rows(const mosaic_raster *r, int w, int h) {
    size_t per_row = (size_t)w * (size_t)r->n_planes;
    size_t rows = RASTER_SCRATCH_DOUBLES / per_row;
    if (rows < 1) rows = 1;
    return rows < (size_t)h ? (int)rows : h;
}

/* Reads rows y0 .. y0+rows-1 of columns x0 .. x0+w-1 of every plane into the scratch,
 * band-sequential: scratch[plane][rows][w] as doubles (exact for every real GDAL type). */
static int read_planes(mosaic_raster *r, int x0, int y0, int w, int rows, samc_error *err) {
    size_t n = (size_t)w * (size_t)rows * (size_t)r->n_planes;
    if (scratch_reserve(r, n, err)) return -1;
    CPLErrorReset();
    CPLErr e = GDALDatasetRasterIO(r->ds, GF_Read, x0, y0, w, rows, r->scratch, w, rows, GDT_Float64,
                                   r->n_planes, r->plane_band, 0, 0, 0);
    if (e != CE_None)
        return samc_error_set(err, SAMC_ERR_IO, "%s: reading window x=%d y=%d %dx%d failed: %s", r->path, x0, y0, w,
                    rows, cpl_msg());
    return 0;
}

/* 1 when pixel i of the n pixels in the scratch is data: no used band is NaN or equal to
 * the nodata value, and alpha (when present) is not 0. */
static int pixel_valid(const mosaic_raster *r, size_t i, size_t n) {
    for (int k = 0; k < r->n_used; k++) {
        int p = r->used_planes[k];
        double v = r->scratch[(size_t)p * n + i];
        if (isnan(v)) return 0;
        if (r->info.has_nodata && v == r->nodata_cmp[p]) return 0;
    }
    if (r->alpha_plane >= 0 && r->scratch[(size_t)r->alpha_plane * n + i] == 0) return 0;
    return 1;
}

/* The automatic stretch: exact min and max of the used bands over every valid pixel of
 * the raster, by one pass in row chunks through the same reader and validity test as
 * the windows, so that the stretch and the valid mask agree. Infinities are data for
 * the mask but are left out of the range (they clamp to 0 or 255). */
static int compute_scale(mosaic_raster *r, samc_error *err) {
    int W = r->info.width, H = r->info.height;
    int rows = chunk_rows(r, W, H);
    double lo = INFINITY, hi = -INFINITY;
    for (int y = 0; y < H; y += rows) {
        int nr = rows < H - y ? rows : H - y;
        if (read_planes(r, 0, y, W, nr, err)) return -1;
        size_t n = (size_t)W * (size_t)nr;
        for (size_t i = 0; i < n; i++) {
            if (!pixel_valid(r, i, n)) continue;
            for (int k = 0; k < r->n_used; k++) {
                double v = r->scratch[(size_t)r->used_planes[k] * n + i];
                if (!isfinite(v)) continue;
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
        }
    }
    if (lo > hi) {
        /* No finite valid pixel anywhere: every window reads as nodata, any range will do. */
        lo = 0;
        hi = 1;
    }
    if (!(hi > lo)) {
        hi = lo + 1;
        if (!(hi > lo)) hi = nextafter(lo, INFINITY);   /* |lo| >= 2^53 */
    }
    r->info.scale_min = lo;
    r->info.scale_max = hi;
    return 0;
}

static int raster_setup(mosaic_raster *r, const int *bands, const double *scale, samc_error *err) {
    mosaic_raster_info *in = &r->info;
    const char *path = r->path;
    in->width = GDALGetRasterXSize(r->ds);
    in->height = GDALGetRasterYSize(r->ds);
    in->n_bands = GDALGetRasterCount(r->ds);
    if (in->n_bands <= 0) {
        /* Containers (GeoPackage with several tables, netCDF, HDF) open as a band-less
         * dataset that lists its rasters as subdatasets. */
        const char *sub = GDALGetMetadataItem(r->ds, "SUBDATASET_1_NAME", "SUBDATASETS");
        if (sub)
            return samc_error_set(err, SAMC_ERR_FORMAT, "%s: the raster has no bands; it holds subdatasets: open one of them, e.g. %s",
                        path, sub);
        return samc_error_set(err, SAMC_ERR_FORMAT, "%s: the raster has no bands", path);
    }
    if (in->width <= 0 || in->height <= 0)
        return samc_error_set(err, SAMC_ERR_FORMAT, "%s: the raster is empty (%d x %d pixels)", path, in->width,
                    in->height);

    GDALRasterBandH b1 = GDALGetRasterBand(r->ds, 1);
    if (!b1) return samc_error_set(err, SAMC_ERR_FORMAT, "%s: band 1 cannot be opened: %s", path, cpl_msg());
    snprintf(in->dtype, sizeof in->dtype, "%s", GDALGetDataTypeName(GDALGetRasterDataType(b1)));
    GDALDriverH drv = GDALGetDatasetDriver(r->ds);
    snprintf(in->driver, sizeof in->driver, "%s", drv ? GDALGetDriverShortName(drv) : "?");

    in->has_geotransform = GDALGetGeoTransform(r->ds, in->geotransform) == CE_None;
    if (!in->has_geotransform) {
        static const double identity[6] = {0, 1, 0, 0, 0, 1};
        memcpy(in->geotransform, identity, sizeof identity);
    }
    const char *wkt = GDALGetProjectionRef(r->ds);
    in->crs_wkt = strdup(wkt ? wkt : "");
    if (!in->crs_wkt) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory copying the CRS", path);
    int has = 0;
    double nd = GDALGetRasterNoDataValue(b1, &has);
    in->has_nodata = has != 0;
    in->nodata = has ? nd : 0;

    in->alpha_band = 0;
    for (int b = 1; b <= in->n_bands; b++) {
        GDALRasterBandH hb = GDALGetRasterBand(r->ds, b);
        if (hb && GDALGetRasterColorInterpretation(hb) == GCI_AlphaBand) {
            in->alpha_band = b;
            break;
        }
    }

    if (bands) {
        for (int c = 0; c < 3; c++) {
            if (bands[c] < 1 || bands[c] > in->n_bands)
                return samc_error_set(err, SAMC_ERR_ARG, "%s: band %d (for %c) out of range: the raster has %d band%s",
                            path, bands[c], "RGB"[c], in->n_bands, in->n_bands == 1 ? "" : "s");
            in->bands_used[c] = bands[c];
        }
    } else if (in->n_bands >= 3) {
        for (int c = 0; c < 3; c++) in->bands_used[c] = c + 1;
    } else {
        for (int c = 0; c < 3; c++) in->bands_used[c] = 1;   /* gray, or gray + (alpha) */
    }

    int all_byte = 1;
    r->n_planes = 0;
    r->n_used = 0;
    for (int c = 0; c < 3; c++) {
        int before = r->n_planes;
        r->rgb_plane[c] = plane_of(r, in->bands_used[c]);
        if (r->n_planes > before) r->used_planes[r->n_used++] = r->rgb_plane[c];
    }
    r->alpha_plane = in->alpha_band ? plane_of(r, in->alpha_band) : -1;
    for (int p = 0; p < r->n_planes; p++) {
        GDALRasterBandH hb = GDALGetRasterBand(r->ds, r->plane_band[p]);
        if (!hb)
            return samc_error_set(err, SAMC_ERR_FORMAT, "%s: band %d cannot be opened: %s", path, r->plane_band[p],
                        cpl_msg());
        GDALDataType t = GDALGetRasterDataType(hb);
        if (GDALDataTypeIsComplex(t) || t == GDT_Unknown)
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED,
                        "%s: band %d has data type %s: complex and unknown types are not supported",
                        path, r->plane_band[p], GDALGetDataTypeName(t));
        if (t != GDT_Byte && p != r->alpha_plane) all_byte = 0;
        /* A Float32 band holds the nodata value rounded to float: compare with that. */
        r->nodata_cmp[p] = t == GDT_Float32 && fabs(in->nodata) <= FLT_MAX ? (double)(float)in->nodata : in->nodata;
    }

    if (scale) {
        if (!isfinite(scale[0]) || !isfinite(scale[1]) || !(scale[1] > scale[0]) || !isfinite(scale[1] - scale[0]))
            return samc_error_set(err, SAMC_ERR_ARG, "%s: scale min %g, max %g: max must be greater than min (both finite)",
                        path, scale[0], scale[1]);
        in->scale_min = scale[0];
        in->scale_max = scale[1];
    } else if (all_byte) {
        in->scale_min = 0;
        in->scale_max = 255;
    } else if (compute_scale(r, err)) {
        return -1;
    }
    return 0;
}

int mosaic_raster_open(const char *path, const int *bands, const double *scale, mosaic_raster **out,
                       samc_error *err) {
    if (!out) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_raster_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_raster_open: empty path");
    mosaic_raster *r = calloc(1, sizeof *r);
    char shown[2048];
    mosaic_redact_urls(path, shown, sizeof shown);
    if (!r || !(r->path = strdup(shown))) {
        free(r);
        return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", shown);
    }
    gdal_enter();
    r->ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    int rc = 0;
    if (!r->ds) {
        VSIStatBufL st;
        if (VSIStatExL(path, &st, VSI_STAT_EXISTS_FLAG) != 0)
            rc = samc_error_set(err, SAMC_ERR_IO, "%s: %s", r->path, remote_hint(path));
        else
            rc = samc_error_set(err, SAMC_ERR_FORMAT, "%s: not a raster GDAL can read: %s", r->path, cpl_msg());
    } else {
        rc = raster_setup(r, bands, scale, err);
    }
    gdal_leave();
    if (rc) {
        redact_error(err);
        mosaic_raster_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

const mosaic_raster_info *mosaic_raster_get_info(const mosaic_raster *r) { return r ? &r->info : NULL; }

int64_t mosaic_raster_read_rgb(mosaic_raster *r, int x0, int y0, int w, int h, uint8_t *rgb,
                               uint8_t *valid, samc_error *err) {
    if (!r || !rgb) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_raster_read_rgb: raster or rgb is NULL");
    const mosaic_raster_info *in = &r->info;
    if (x0 < 0 || y0 < 0 || w <= 0 || h <= 0 || (int64_t)x0 + w > in->width || (int64_t)y0 + h > in->height)
        return samc_error_set(err, SAMC_ERR_ARG, "%s: window x=%d y=%d %dx%d is not inside the %dx%d raster", r->path, x0,
                    y0, w, h, in->width, in->height);
    const double lo = in->scale_min, range = in->scale_max - in->scale_min;
    int rows = chunk_rows(r, w, h);
    int64_t n_valid = 0;
    gdal_enter();
    for (int y = 0; y < h; y += rows) {
        int nr = rows < h - y ? rows : h - y;
        if (read_planes(r, x0, y0 + y, w, nr, err)) {
            gdal_leave();
            redact_error(err);
            return -1;
        }
        size_t n = (size_t)w * (size_t)nr, base = (size_t)y * (size_t)w;
        for (size_t i = 0; i < n; i++) {
            uint8_t *px = rgb + (base + i) * 3;
            int ok = pixel_valid(r, i, n);
            if (valid) valid[base + i] = (uint8_t)ok;
            if (!ok) {
                px[0] = px[1] = px[2] = 0;
                continue;
            }
            n_valid++;
            for (int c = 0; c < 3; c++) {
                double v = r->scratch[(size_t)r->rgb_plane[c] * n + i];
                double s = floor(255.0 * (v - lo) / range + 0.5);
                px[c] = s >= 255 ? 255 : s > 0 ? (uint8_t)s : 0;   /* NaN-free: v is valid */
            }
        }
    }
    gdal_leave();
    return n_valid;
}

void mosaic_raster_close(mosaic_raster *r) {
    if (!r) return;
    if (r->ds) {
        gdal_enter();
        GDALClose(r->ds);
        gdal_leave();
    }
    free(r->info.crs_wkt);
    free(r->scratch);
    free(r->path);
    free(r);
}

/* ---- the label raster ---------------------------------------------------------------- */

struct mosaic_label_writer {
    GDALDatasetH ds;
    GDALRasterBandH band;
    int w, h;
    uint32_t type_max;   /* largest value the band type holds */
    char *path;
};

const char *mosaic_label_type_name(uint32_t max_label) {
    return max_label <= UINT8_MAX ? "Byte" : max_label <= UINT16_MAX ? "UInt16" : "UInt32";
}

int mosaic_label_writer_create(const char *path, int w, int h, uint32_t max_label,
                               const mosaic_raster_info *georef, mosaic_label_writer **out,
                               samc_error *err) {
    if (!out) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_label_writer_create: out is NULL");
    *out = NULL;
    if (!path || !*path) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_label_writer_create: empty path");
    if (w <= 0 || h <= 0) return samc_error_set(err, SAMC_ERR_ARG, "%s: label raster size %d x %d is empty", path, w, h);
    mosaic_label_writer *lw = calloc(1, sizeof *lw);
    if (!lw || !(lw->path = strdup(path))) {
        free(lw);
        return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", path);
    }
    lw->w = w;
    lw->h = h;
    GDALDataType type = max_label <= UINT8_MAX ? GDT_Byte : max_label <= UINT16_MAX ? GDT_UInt16 : GDT_UInt32;
    lw->type_max = type == GDT_Byte ? UINT8_MAX : type == GDT_UInt16 ? UINT16_MAX : UINT32_MAX;

    gdal_enter();
    int rc = 0;
    char **opts = NULL;
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    if (!drv) {
        rc = samc_error_set(err, SAMC_ERR_UNSUPPORTED, "%s: GDAL has no GTiff driver", path);
        goto done;
    }
    opts = CSLSetNameValue(opts, "TILED", "YES");
    opts = CSLSetNameValue(opts, "BLOCKXSIZE", "256");
    opts = CSLSetNameValue(opts, "BLOCKYSIZE", "256");
    opts = CSLSetNameValue(opts, "COMPRESS", "DEFLATE");
    opts = CSLSetNameValue(opts, "BIGTIFF", "IF_SAFER");
    lw->ds = GDALCreate(drv, path, w, h, 1, type, opts);
    if (!lw->ds) {
        rc = samc_error_set(err, SAMC_ERR_IO, "%s: cannot create the %d x %d %s GeoTIFF: %s", path, w, h,
                  GDALGetDataTypeName(type), cpl_msg());
        goto done;
    }
    lw->band = GDALGetRasterBand(lw->ds, 1);
    if (!lw->band) {
        rc = samc_error_set(err, SAMC_ERR_INTERNAL, "%s: the new GeoTIFF has no band 1: %s", path, cpl_msg());
        goto done;
    }
    if (georef && georef->has_geotransform) {
        double gt[6];
        memcpy(gt, georef->geotransform, sizeof gt);
        if (GDALSetGeoTransform(lw->ds, gt) != CE_None) {
            rc = samc_error_set(err, SAMC_ERR_IO, "%s: cannot set the geotransform: %s", path, cpl_msg());
            goto done;
        }
    }
    if (georef && georef->crs_wkt && *georef->crs_wkt && GDALSetProjection(lw->ds, georef->crs_wkt) != CE_None) {
        rc = samc_error_set(err, SAMC_ERR_IO, "%s: cannot set the CRS: %s", path, cpl_msg());
        goto done;
    }
done:
    CSLDestroy(opts);
    if (rc && lw->ds) {
        GDALClose(lw->ds);
        VSIUnlink(path);
    }
    gdal_leave();
    if (rc) {
        free(lw->path);
        free(lw);
        return -1;
    }
    *out = lw;
    return 0;
}

int mosaic_label_writer_write(mosaic_label_writer *lw, int y0, int n_rows, const uint32_t *rows,
                              samc_error *err) {
    if (!lw || !rows) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_label_writer_write: writer or rows is NULL");
    if (y0 < 0 || n_rows <= 0 || (int64_t)y0 + n_rows > lw->h)
        return samc_error_set(err, SAMC_ERR_ARG, "%s: rows %d..%d are outside the %d rows of the label raster", lw->path, y0,
                    y0 + n_rows - 1, lw->h);
    /* GDAL would clamp a label above the band type silently into another segment's id. */
    size_t n = (size_t)lw->w * (size_t)n_rows;
    for (size_t i = 0; i < n; i++)
        if (rows[i] > lw->type_max)
            return samc_error_set(err, SAMC_ERR_ARG, "%s: label %u at row %d, column %d exceeds %u, the largest of the band type",
                        lw->path, rows[i], y0 + (int)(i / (size_t)lw->w), (int)(i % (size_t)lw->w), lw->type_max);
    gdal_enter();
    CPLErr e = GDALRasterIO(lw->band, GF_Write, 0, y0, lw->w, n_rows, (void *)rows, lw->w, n_rows, GDT_UInt32, 0, 0);
    int rc = e == CE_None ? 0
                          : samc_error_set(err, SAMC_ERR_IO, "%s: writing rows %d..%d failed: %s", lw->path, y0,
                                 y0 + n_rows - 1, cpl_msg());
    gdal_leave();
    return rc;
}

int mosaic_label_writer_close(mosaic_label_writer *lw, samc_error *err) {
    if (!lw) return 0;
    gdal_enter();
    int rc = 0;
    /* In GDAL 3.6 GDALFlushCache and GDALClose return nothing: a failed write shows only
     * as the last CPL error. */
    GDALFlushCache(lw->ds);
    if (cpl_failed()) rc = samc_error_set(err, SAMC_ERR_IO, "%s: flushing the label raster failed: %s", lw->path, cpl_msg());
    CPLErrorReset();
    GDALClose(lw->ds);
    if (!rc && cpl_failed()) rc = samc_error_set(err, SAMC_ERR_IO, "%s: closing the label raster failed: %s", lw->path, cpl_msg());
    gdal_leave();
    free(lw->path);
    free(lw);
    return rc;
}

struct mosaic_label_reader {
    GDALDatasetH ds;
    GDALRasterBandH band;
    int w, h;
    char *path;
};

int mosaic_label_reader_open(const char *path, mosaic_label_reader **out, int *w, int *h, samc_error *err) {
    *out = NULL;
    mosaic_label_reader *lr = calloc(1, sizeof *lr);
    if (!lr || !(lr->path = strdup(path))) {
        free(lr);
        return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", path);
    }
    gdal_enter();
    int rc = 0;
    lr->ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    lr->band = lr->ds && GDALGetRasterCount(lr->ds) > 0 ? GDALGetRasterBand(lr->ds, 1) : NULL;
    if (!lr->band) {
        rc = samc_error_set(err, SAMC_ERR_FORMAT, "%s: cannot open the label raster: %s", path, cpl_msg());
    } else {
        GDALDataType t = GDALGetRasterDataType(lr->band);
        if (t != GDT_Byte && t != GDT_UInt16 && t != GDT_UInt32)
            rc = samc_error_set(err, SAMC_ERR_FORMAT, "%s: labels must be Byte, UInt16 or UInt32, band 1 is %s", path,
                                GDALGetDataTypeName(t));
        lr->w = GDALGetRasterXSize(lr->ds);
        lr->h = GDALGetRasterYSize(lr->ds);
    }
    gdal_leave();
    if (rc) {
        mosaic_label_reader_close(lr);
        return -1;
    }
    *w = lr->w;
    *h = lr->h;
    *out = lr;
    return 0;
}

int mosaic_label_reader_read(mosaic_label_reader *lr, int y0, int n_rows, uint32_t *rows, samc_error *err) {
    if (y0 < 0 || n_rows <= 0 || (int64_t)y0 + n_rows > lr->h)
        return samc_error_set(err, SAMC_ERR_ARG, "%s: rows %d..%d are outside its %d rows", lr->path, y0,
                              y0 + n_rows - 1, lr->h);
    gdal_enter();
    CPLErr e = GDALRasterIO(lr->band, GF_Read, 0, y0, lr->w, n_rows, rows, lr->w, n_rows, GDT_UInt32, 0, 0);
    int rc = e == CE_None ? 0
                          : samc_error_set(err, SAMC_ERR_IO, "%s: reading rows %d..%d failed: %s", lr->path, y0,
                                           y0 + n_rows - 1, cpl_msg());
    gdal_leave();
    return rc;
}

void mosaic_label_reader_close(mosaic_label_reader *lr) {
    if (!lr) return;
    if (lr->ds) {
        gdal_enter();
        GDALClose(lr->ds);
        gdal_leave();
    }
    free(lr->path);
    free(lr);
}

/* ---- vectors ------------------------------------------------------------------------- */

typedef struct {
    int (*cancelled)(void *ctx);
    void *ctx;
    int was_cancelled;
} cancel_state;

static int is_cancelled(cancel_state *c) {
    if (!c->was_cancelled && c->cancelled && c->cancelled(c->ctx)) c->was_cancelled = 1;
    return c->was_cancelled;
}

static int CPL_STDCALL polygonize_progress(double done, const char *msg, void *arg) {
    return !is_cancelled(arg);
}

/* One output datasource: a GeoPackage or a Shapefile. */
typedef struct {
    const char *path, *driver_name;
    GDALDriverH drv;
    GDALDatasetH ds;
    OGRLayerH layer;
    int in_transaction;
} vec_out;

typedef struct {
    vec_out out[2];
    int n_out;
    double tol;
    int64_t since_commit;
    mosaic_vector_stats *st;
    const mosaic_vector_attrs *attrs;   /* NULL: label_id, area, perimeter only */
} vec_writer;

/* Removes whatever dataset (or plain file) is at path; quiet when there is none. */
static void remove_existing(GDALDriverH drv, const char *path) {
    VSIStatBufL sb;
    if (VSIStatExL(path, &sb, VSI_STAT_EXISTS_FLAG) != 0) return;
    if (!drv || GDALDeleteDataset(drv, path) != CE_None) VSIUnlink(path);
    CPLErrorReset();
}

static int vec_out_create(vec_out *o, OGRSpatialReferenceH srs, OGRFieldType id_type, int with_class,
                          samc_error *err) {
    o->drv = GDALGetDriverByName(o->driver_name);
    if (!o->drv) return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "%s: GDAL has no %s driver", o->path, o->driver_name);
    remove_existing(o->drv, o->path);
    CPLErrorReset();
    o->ds = GDALCreate(o->drv, o->path, 0, 0, 0, GDT_Unknown, NULL);
    if (!o->ds) return samc_error_set(err, SAMC_ERR_IO, "%s: cannot create the %s: %s", o->path, o->driver_name, cpl_msg());
    o->layer = GDALDatasetCreateLayer(o->ds, "segments", srs, wkbPolygon, NULL);
    if (!o->layer)
        return samc_error_set(err, SAMC_ERR_IO, "%s: cannot create layer \"segments\": %s", o->path, cpl_msg());
    static const char *const plain[3] = {"label_id", "area", "perimeter"};
    static const char *const classed[5] = {"label_id", "class", "score", "area", "perimeter"};
    const char *const *names = with_class ? classed : plain;
    const OGRFieldType types[5] = {id_type, with_class ? OFTString : OFTReal, OFTReal, OFTReal, OFTReal};
    for (int i = 0; i < (with_class ? 5 : 3); i++) {
        OGRFieldDefnH fd = OGR_Fld_Create(names[i], types[i]);
        OGRErr e = OGR_L_CreateField(o->layer, fd, TRUE);
        OGR_Fld_Destroy(fd);
        if (e != OGRERR_NONE)
            return samc_error_set(err, SAMC_ERR_IO, "%s: cannot create field %s: %s", o->path, names[i], cpl_msg());
    }
    return 0;
}

static int vec_begin(vec_writer *vw, samc_error *err) {
    for (int k = 0; k < vw->n_out; k++) {
        vec_out *o = &vw->out[k];
        if (!GDALDatasetTestCapability(o->ds, ODsCTransactions)) continue;   /* Shapefile */
        if (GDALDatasetStartTransaction(o->ds, FALSE) != OGRERR_NONE)
            return samc_error_set(err, SAMC_ERR_IO, "%s: cannot start a transaction: %s", o->path, cpl_msg());
        o->in_transaction = 1;
    }
    vw->since_commit = 0;
    return 0;
}

static int vec_commit(vec_writer *vw, samc_error *err) {
    for (int k = 0; k < vw->n_out; k++) {
        vec_out *o = &vw->out[k];
        if (!o->in_transaction) continue;
        o->in_transaction = 0;
        if (GDALDatasetCommitTransaction(o->ds) != OGRERR_NONE)
            return samc_error_set(err, SAMC_ERR_IO, "%s: committing features failed: %s", o->path, cpl_msg());
    }
    return 0;
}

/* Perimeter of a polygon: the lengths of its exterior and interior rings, summed. */
static double polygon_perimeter(OGRGeometryH poly) {
    double total = 0;
    int n_rings = OGR_G_GetGeometryCount(poly);
    for (int r = 0; r < n_rings; r++) {
        OGRGeometryH ring = OGR_G_GetGeometryRef(poly, r);
        int n = OGR_G_GetPointCount(ring);
        for (int i = 1; i < n; i++)
            total += hypot(OGR_G_GetX(ring, i) - OGR_G_GetX(ring, i - 1), OGR_G_GetY(ring, i) - OGR_G_GetY(ring, i - 1));
    }
    return total;
}

static int write_polygon(vec_writer *vw, int64_t label, OGRGeometryH poly, samc_error *err) {
    double area = OGR_G_Area(poly), perimeter = polygon_perimeter(poly);
    for (int k = 0; k < vw->n_out; k++) {
        vec_out *o = &vw->out[k];
        OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(o->layer));
        if (!f) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: cannot create a feature", o->path);
        OGR_F_SetFieldInteger64(f, 0, label);
        const mosaic_vector_attrs *a = vw->attrs;
        int k = 1;
        if (a) {
            int in = label > 0 && (uint64_t)label <= a->n_segments && a->seg_class[label] < (uint32_t)a->n_classes;
            OGR_F_SetFieldString(f, k++, in ? a->class_names[a->seg_class[label]] : "");
            OGR_F_SetFieldDouble(f, k++, in ? a->seg_score[label] : 0.0);
        }
        OGR_F_SetFieldDouble(f, k++, area);
        OGR_F_SetFieldDouble(f, k, perimeter);
        OGRErr e = OGR_F_SetGeometry(f, poly);
        if (e == OGRERR_NONE) e = OGR_L_CreateFeature(o->layer, f);
        OGR_F_Destroy(f);
        if (e != OGRERR_NONE)
            return samc_error_set(err, SAMC_ERR_IO, "%s: writing the polygon of label %lld failed: %s", o->path, (long long)label,
                        cpl_msg());
    }
    vw->st->n_polygons++;
    if (++vw->since_commit >= VEC_TRANSACTION_FEATURES && (vec_commit(vw, err) || vec_begin(vw, err))) return -1;
    return 0;
}

/* Writes the polygons of g (a valid polygon, or a collection from MakeValid), each
 * simplified on its own; parts without area (lines, points of a collapsed piece) carry
 * no segment and are left out. */
static int emit_polygonal(vec_writer *vw, int64_t label, OGRGeometryH g, int simplify, samc_error *err) {
    OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(g));
    if (t == wkbMultiPolygon || t == wkbGeometryCollection) {
        int n = OGR_G_GetGeometryCount(g);
        for (int i = 0; i < n; i++)
            if (emit_polygonal(vw, label, OGR_G_GetGeometryRef(g, i), simplify, err)) return -1;
        return 0;
    }
    if (t != wkbPolygon || OGR_G_IsEmpty(g)) return 0;
    if (!simplify || vw->tol <= 0) return write_polygon(vw, label, g, err);
    OGRGeometryH s = OGR_G_SimplifyPreserveTopology(g, vw->tol);
    if (!s)
        return samc_error_set(err, SAMC_ERR_INTERNAL, "simplifying the polygon of label %lld failed: %s", (long long)label,
                    cpl_msg());
    int rc = 0;
    if (OGR_G_IsEmpty(s)) {
        vw->st->n_dropped_empty++;
    } else if (!OGR_G_IsValid(s)) {
        /* Topology-preserving simplification keeps a polygon valid in all but rare
         * degenerate cases; there the unsimplified (valid) polygon is written. */
        rc = write_polygon(vw, label, g, err);
    } else {
        rc = emit_polygonal(vw, label, s, 0, err);
    }
    OGR_G_DestroyGeometry(s);
    return rc;
}

/* One polygonize call: the label raster, the temporary layer GDALPolygonize fills, the
 * outputs; released by poly_free whichever step failed. */
typedef struct {
    const char *labels_tif;
    GDALDatasetH src, tmp_ds;
    GDALRasterBandH band;
    GDALDataType band_type;
    OGRLayerH tmp_layer;
    OGRSpatialReferenceH srs;
    GDALDriverH gpkg_drv;
    char *tmp_path;
    cancel_state cs;
    vec_writer vw;
    mosaic_vector_stats *st;
} poly_ctx;

/* The label raster: band 1 of an integer type, and its CRS. */
static int poly_open_labels(poly_ctx *p, samc_error *err) {
    const char *path = p->labels_tif;
    p->src = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!p->src) return samc_error_set(err, SAMC_ERR_IO, "%s: cannot open the label raster: %s", path, cpl_msg());
    p->band = GDALGetRasterCount(p->src) > 0 ? GDALGetRasterBand(p->src, 1) : NULL;
    if (!p->band) return samc_error_set(err, SAMC_ERR_FORMAT, "%s: the label raster has no band", path);
    p->band_type = GDALGetRasterDataType(p->band);
    if (!GDALDataTypeIsInteger(p->band_type) || GDALDataTypeIsComplex(p->band_type))
        return samc_error_set(err, SAMC_ERR_FORMAT, "%s: labels must be integers, band 1 is %s", path,
                              GDALGetDataTypeName(p->band_type));
    const char *wkt = GDALGetProjectionRef(p->src);
    if (wkt && *wkt) {
        p->srs = OSRNewSpatialReference(wkt);
        if (!p->srs)
            return samc_error_set(err, SAMC_ERR_FORMAT, "%s: the CRS of the label raster cannot be parsed: %s", path,
                                  cpl_msg());
        OSRSetAxisMappingStrategy(p->srs, OAMS_TRADITIONAL_GIS_ORDER);
    }
    return 0;
}

/* GDALPolygonize writes into a layer as it scans; a GeoPackage on disk beside the output
 * keeps that off the heap for rasters with millions of segments. */
static int poly_scan(poly_ctx *p, samc_error *err) {
    if (!p->gpkg_drv) return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "%s: GDAL has no GPKG driver", p->tmp_path);
    remove_existing(p->gpkg_drv, p->tmp_path);
    p->tmp_ds = GDALCreate(p->gpkg_drv, p->tmp_path, 0, 0, 0, GDT_Unknown, NULL);
    if (!p->tmp_ds)
        return samc_error_set(err, SAMC_ERR_IO, "%s: cannot create the temporary GeoPackage: %s", p->tmp_path,
                              cpl_msg());
    char **lopts = CSLSetNameValue(NULL, "SPATIAL_INDEX", "NO");
    p->tmp_layer = GDALDatasetCreateLayer(p->tmp_ds, "polygonize", p->srs, wkbPolygon, lopts);
    CSLDestroy(lopts);
    if (!p->tmp_layer)
        return samc_error_set(err, SAMC_ERR_IO, "%s: cannot create the temporary layer: %s", p->tmp_path, cpl_msg());
    OGRFieldDefnH fd = OGR_Fld_Create("label_id", OFTInteger64);
    OGRErr oe = OGR_L_CreateField(p->tmp_layer, fd, TRUE);
    OGR_Fld_Destroy(fd);
    if (oe != OGRERR_NONE)
        return samc_error_set(err, SAMC_ERR_IO, "%s: cannot create the temporary field: %s", p->tmp_path, cpl_msg());
    if (GDALDatasetStartTransaction(p->tmp_ds, FALSE) != OGRERR_NONE)
        return samc_error_set(err, SAMC_ERR_IO, "%s: cannot start a transaction: %s", p->tmp_path, cpl_msg());
    /* The band is its own mask: label 0 (background) is not polygonized. No "8CONNECTED"
     * option: pieces are 4-connected. */
    CPLErr pe = GDALPolygonize(p->band, p->band, p->tmp_layer, 0, NULL, polygonize_progress, &p->cs);
    if (pe != CE_None || p->cs.was_cancelled) {
        GDALDatasetRollbackTransaction(p->tmp_ds);
        return p->cs.was_cancelled
                   ? samc_error_set(err, SAMC_ERR_ARG, "%s: cancelled while polygonizing", p->labels_tif)
                   : samc_error_set(err, SAMC_ERR_IO, "%s: polygonize failed: %s", p->labels_tif, cpl_msg());
    }
    if (GDALDatasetCommitTransaction(p->tmp_ds) != OGRERR_NONE)
        return samc_error_set(err, SAMC_ERR_IO, "%s: committing the polygons failed: %s", p->tmp_path, cpl_msg());
    return 0;
}

/* One polygon of the scan: made valid if needed, simplified, written to every output. */
static int poly_emit_feature(poly_ctx *p, OGRFeatureH feat, samc_error *err) {
    int64_t label = OGR_F_GetFieldAsInteger64(feat, 0);
    OGRGeometryH g = OGR_F_GetGeometryRef(feat);
    if (!g) return 0;
    OGRGeometryH fixed = NULL;
    if (!OGR_G_IsValid(g)) {
        fixed = OGR_G_MakeValid(g);
        if (!fixed)
            return samc_error_set(err, SAMC_ERR_INTERNAL, "%s: MakeValid failed on the polygon of label %lld: %s",
                                  p->labels_tif, (long long)label, cpl_msg());
        p->st->n_made_valid++;
    }
    int e = emit_polygonal(&p->vw, label, fixed ? fixed : g, 1, err);
    if (fixed) OGR_G_DestroyGeometry(fixed);
    return e ? -1 : 0;
}

/* The scanned polygons -> the GeoPackage and / or Shapefile, closed when complete. */
static int poly_write(poly_ctx *p, samc_error *err) {
    vec_writer *vw = &p->vw;
    /* 2^31 and beyond need the 64-bit field of a Shapefile too. */
    GDALDataType bt = p->band_type;
    OGRFieldType id_type = bt == GDT_Byte || bt == GDT_UInt16 || bt == GDT_Int16 ? OFTInteger : OFTInteger64;
    for (int k = 0; k < vw->n_out; k++) {
        OGRFieldType t = strcmp(vw->out[k].driver_name, "GPKG") == 0 ? OFTInteger64 : id_type;
        if (vec_out_create(&vw->out[k], p->srs, t, vw->attrs != NULL, err)) return -1;
    }
    if (vec_begin(vw, err)) return -1;
    OGR_L_ResetReading(p->tmp_layer);
    int64_t n_read = 0;
    OGRFeatureH feat;
    while ((feat = OGR_L_GetNextFeature(p->tmp_layer)) != NULL) {
        int rc = 0;
        if (++n_read % VEC_CANCEL_EVERY == 0 && is_cancelled(&p->cs))
            rc = samc_error_set(err, SAMC_ERR_ARG, "%s: cancelled after writing %lld polygons", p->labels_tif,
                                (long long)p->st->n_polygons);
        else
            rc = poly_emit_feature(p, feat, err);
        OGR_F_Destroy(feat);
        if (rc) return -1;
    }
    if (vec_commit(vw, err)) return -1;
    for (int k = 0; k < vw->n_out; k++) {
        CPLErrorReset();
        GDALClose(vw->out[k].ds);
        vw->out[k].ds = NULL;
        if (cpl_failed())
            return samc_error_set(err, SAMC_ERR_IO, "%s: closing failed: %s", vw->out[k].path, cpl_msg());
    }
    return 0;
}

static void poly_free(poly_ctx *p, int failed) {
    for (int k = 0; k < p->vw.n_out; k++) {
        vec_out *o = &p->vw.out[k];
        if (o->ds) {
            if (o->in_transaction) GDALDatasetRollbackTransaction(o->ds);
            GDALClose(o->ds);
        }
        /* A half-written output is no result: the caller finds no file rather than a
         * truncated one. */
        if (failed && o->drv) remove_existing(o->drv, o->path);
    }
    if (p->tmp_ds) GDALClose(p->tmp_ds);
    if (p->tmp_path) remove_existing(p->gpkg_drv, p->tmp_path);
    if (p->srs) OSRDestroySpatialReference(p->srs);
    if (p->src) GDALClose(p->src);
    free(p->tmp_path);
}

int mosaic_polygonize(const char *labels_tif, const char *gpkg_path, const char *shp_path,
                      double simplify_tolerance, mosaic_vector_stats *stats,
                      int (*cancelled)(void *ctx), void *cancel_ctx, samc_error *err) {
    return mosaic_polygonize_ex(labels_tif, gpkg_path, shp_path, simplify_tolerance, NULL, stats, cancelled, cancel_ctx,
                                err);
}

int mosaic_polygonize_ex(const char *labels_tif, const char *gpkg_path, const char *shp_path,
                         double simplify_tolerance, const mosaic_vector_attrs *attrs, mosaic_vector_stats *stats,
                         int (*cancelled)(void *ctx), void *cancel_ctx, samc_error *err) {
    if (!labels_tif || !*labels_tif) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_polygonize: empty label raster path");
    if ((!gpkg_path || !*gpkg_path) && (!shp_path || !*shp_path))
        return samc_error_set(err, SAMC_ERR_ARG, "%s: polygonize needs a GeoPackage or a Shapefile path", labels_tif);
    if (!isfinite(simplify_tolerance) || simplify_tolerance < 0)
        return samc_error_set(err, SAMC_ERR_ARG, "%s: simplify tolerance %g must be finite and >= 0", labels_tif, simplify_tolerance);
    mosaic_vector_stats local;
    poly_ctx p;
    memset(&p, 0, sizeof p);
    p.labels_tif = labels_tif;
    p.st = stats ? stats : &local;
    memset(p.st, 0, sizeof *p.st);
    p.cs = (cancel_state){cancelled, cancel_ctx, 0};
    p.vw.tol = simplify_tolerance;
    p.vw.st = p.st;
    p.vw.attrs = attrs;
    if (gpkg_path && *gpkg_path) p.vw.out[p.vw.n_out++] = (vec_out){.path = gpkg_path, .driver_name = "GPKG"};
    if (shp_path && *shp_path) p.vw.out[p.vw.n_out++] = (vec_out){.path = shp_path, .driver_name = "ESRI Shapefile"};
    size_t tmp_len = strlen(p.vw.out[0].path) + sizeof ".polygonize.tmp.gpkg";
    p.tmp_path = malloc(tmp_len);
    if (!p.tmp_path) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", labels_tif);
    snprintf(p.tmp_path, tmp_len, "%s.polygonize.tmp.gpkg", p.vw.out[0].path);

    gdal_enter();
    p.gpkg_drv = GDALGetDriverByName("GPKG");
    int rc = poly_open_labels(&p, err);
    double t0 = monotonic_ms();
    if (!rc) rc = poly_scan(&p, err);
    double t1 = monotonic_ms();
    p.st->polygonize_ms = t1 - t0;
    if (!rc) rc = poly_write(&p, err);
    if (!rc) p.st->write_ms = monotonic_ms() - t1;
    poly_free(&p, rc != 0);
    gdal_leave();
    return rc ? -1 : 0;
}
