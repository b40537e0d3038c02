/* pipelines/mosaic/raster.h: the GDAL side of `samc mosaic`: reading any raster GDAL reads as
 * 8-bit RGB windows, writing the label GeoTIFF in row strips, and polygonizing it into
 * GeoPackage / Shapefile layers. All format work is GDAL/OGR's (Debian libgdal-dev);
 * memory stays bounded by the window or strip asked for (plus GDAL's block cache).
 * Nothing prints or exits; failures return -1 with err naming the file and what failed.
 */
#ifndef SAMC_MOSAIC_RASTER_H
#define SAMC_MOSAIC_RASTER_H
#include <stddef.h>
#include <stdint.h>

#include "model/samc.h"

typedef struct {
    int width, height, n_bands;
    char dtype[24];              /* GDAL data type name of band 1: "Byte", "UInt16", ... */
    char driver[32];             /* "GTiff", ... */
    double geotransform[6];      /* GDAL order; identity (0,1,0,0,0,1) when none */
    int has_geotransform;
    char *crs_wkt;               /* WKT of the CRS, "" when none (owned by the raster) */
    int has_nodata;              /* band 1 has a nodata value */
    double nodata;
    int alpha_band;              /* 1-based band whose colour interpretation is alpha
                                    (0 = none): alpha == 0 counts as nodata */
    int bands_used[3];           /* 1-based bands feeding R, G, B */
    double scale_min, scale_max; /* the one linear stretch of all tiles: v -> 255 * (v -
                                    min) / (max - min), clamped; Byte: 0, 255 (identity) */
} mosaic_raster_info;

typedef struct mosaic_raster mosaic_raster;

/* Opens path. bands: NULL = automatic (1 band: gray as R=G=B; 2 bands: band 1 as gray;
 * >= 3: bands 1, 2, 3), else 3 1-based band numbers. scale: NULL = automatic (Byte:
 * identity; other types: the global min and max over the used bands, nodata excluded,
 * computed once over the whole raster, exactly), else {min, max}. Fails with the path
 * named for: missing file, not a raster GDAL reads, zero bands, zero size, a band
 * number out of range, an unsupported data type (complex), max <= min. */
int mosaic_raster_open(const char *path, const int *bands, const double *scale, mosaic_raster **out,
                       samc_error *err);
const mosaic_raster_info *mosaic_raster_get_info(const mosaic_raster *r);
/* Reads the window (x0, y0, w, h), inside the raster, as rgb[h][w][3] after the stretch
 * (rounded to nearest), and valid[h][w] = 0 where a pixel is nodata (any used band equal
 * to the nodata value, NaN, or alpha == 0), else 1; nodata pixels get rgb 0. valid may be
 * NULL. Returns the number of valid pixels, or -1. */
int64_t mosaic_raster_read_rgb(mosaic_raster *r, int x0, int y0, int w, int h, uint8_t *rgb,
                               uint8_t *valid, samc_error *err);
void mosaic_raster_close(mosaic_raster *r);

/* in with secrets taken out, into out[n]: a URL's user:password@ is dropped and its query
 * string (where signed URLs carry their signature) hidden. For paths in messages and
 * outputs; GDAL gets the real one. */
void mosaic_redact_urls(const char *in, char *out, size_t n);

/* ---- the label raster -------------------------------------------------------------- */
typedef struct mosaic_label_writer mosaic_label_writer;

/* The smallest unsigned GDAL type holding max_label: "Byte", "UInt16" or "UInt32". */
const char *mosaic_label_type_name(uint32_t max_label);
/* Creates a GeoTIFF w x h, one band of the smallest unsigned type holding max_label,
 * tiled 256 x 256, DEFLATE-compressed (predictor off), BIGTIFF=IF_SAFER, nodata unset
 * (0 means background), with the geotransform and CRS of georef (NULL: none). */
int mosaic_label_writer_create(const char *path, int w, int h, uint32_t max_label,
                               const mosaic_raster_info *georef, mosaic_label_writer **out,
                               samc_error *err);
/* Writes rows y0 .. y0+n_rows-1 from rows[n_rows][w]. Strips may come in any order. */
int mosaic_label_writer_write(mosaic_label_writer *lw, int y0, int n_rows, const uint32_t *rows,
                              samc_error *err);
/* Flushes and closes; on failure the file may be incomplete (the caller removes it).
 * Always frees lw. */
int mosaic_label_writer_close(mosaic_label_writer *lw, samc_error *err);

/* Reads back a label raster (band 1 of any unsigned integer type) as uint32 rows. */
typedef struct mosaic_label_reader mosaic_label_reader;
int mosaic_label_reader_open(const char *path, mosaic_label_reader **out, int *w, int *h, samc_error *err);
/* rows[n_rows][w] = rows y0 .. y0 + n_rows - 1 */
int mosaic_label_reader_read(mosaic_label_reader *lr, int y0, int n_rows, uint32_t *rows, samc_error *err);
void mosaic_label_reader_close(mosaic_label_reader *lr);

/* ---- vectors ----------------------------------------------------------------------- */
typedef struct {
    int64_t n_polygons;          /* features written (a label in k separate pieces gives k) */
    int64_t n_made_valid;        /* polygons repaired by MakeValid before simplifying */
    int64_t n_dropped_empty;     /* polygons that simplified to nothing (none expected) */
    double polygonize_ms, write_ms;
} mosaic_vector_stats;

/* Polygonizes band 1 of the label GeoTIFF labels_tif (0 = background, not polygonized;
 * 4-connected pieces of one label become one polygon each, holes kept) into a layer
 * "segments" of a new GeoPackage at gpkg_path and/or a new Shapefile at shp_path (either
 * may be NULL, not both), in the raster's CRS, with fields label_id (integer), area and
 * perimeter (real, map units, of the written geometry). Each geometry is made valid if
 * needed and simplified with topology preservation at simplify_tolerance map units (0:
 * not simplified). cancelled (may be NULL) is asked now and then; a cancel fails with
 * "cancelled". Existing files at the paths are overwritten. */
int mosaic_polygonize(const char *labels_tif, const char *gpkg_path, const char *shp_path,
                      double simplify_tolerance, mosaic_vector_stats *stats,
                      int (*cancelled)(void *ctx), void *cancel_ctx, samc_error *err);

/* What a concept-mode mosaic knows of each label: its class and score. The polygons then
 * have the fields label_id, class (the class text), score, area, perimeter. */
typedef struct {
    const char *const *class_names;   /* [n_classes] */
    int n_classes;
    const uint32_t *seg_class;        /* [n_segments + 1]: class index of label 1..n */
    const float *seg_score;           /* [n_segments + 1] */
    uint32_t n_segments;
} mosaic_vector_attrs;

/* mosaic_polygonize with the labels' classes and scores (attrs NULL: without). */
int mosaic_polygonize_ex(const char *labels_tif, const char *gpkg_path, const char *shp_path,
                         double simplify_tolerance, const mosaic_vector_attrs *attrs, mosaic_vector_stats *stats,
                         int (*cancelled)(void *ctx), void *cancel_ctx, samc_error *err);

#endif
