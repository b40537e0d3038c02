/* pipelines/mosaic/tiling.c: the tile grid of a mosaic (see tiling.h). */
#include "pipelines/mosaic/tiling.h"


int mosaic_grid_init(mosaic_grid *g, int width, int height, int tile_size, int padding, samc_error *err) {
    if (width < 1 || height < 1) return samc_error_set(err, SAMC_ERR_ARG, "mosaic: the raster is %dx%d pixels: nothing to segment", width, height);
    if (tile_size < 16 || tile_size > 65536)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --tile-size %d is not in [16, 65536]", tile_size);
    if (padding < 0 || padding > 65536)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic: --padding %d is not in [0, 65536]", padding);
    g->width = width;
    g->height = height;
    g->tile_size = tile_size;
    g->padding = padding;
    g->n_cols = (int)(((long long)width + tile_size - 1) / tile_size);
    g->n_rows = (int)(((long long)height + tile_size - 1) / tile_size);
    long long p = (long long)tile_size + 2LL * padding;
    g->read_w = (int)(p < width ? p : width);
    g->read_h = (int)(p < height ? p : height);
    return 0;
}

/* One axis: the useful span [u0, u1) of tile index i and its read span [r0, r1): the
 * span grown by the padding, moved inward to fit in [0, size), clipped if it is larger. */
static void axis_spans(int size, int tile, int pad, int i, int *u0, int *u1, int *r0, int *r1) {
    long long a = (long long)i * tile, b = a + tile;
    if (b > size) b = size;
    long long want = (long long)tile + 2LL * pad, len = want < size ? want : size;
    long long s = a - pad;
    if (s + len > size) s = size - len;
    if (s < 0) s = 0;
    *u0 = (int)a;
    *u1 = (int)b;
    *r0 = (int)s;
    *r1 = (int)(s + len);
}

void mosaic_tile_rects(const mosaic_grid *g, int row, int col, mosaic_rect *useful, mosaic_rect *read) {
    mosaic_rect u, r;
    axis_spans(g->width, g->tile_size, g->padding, col, &u.x0, &u.x1, &r.x0, &r.x1);
    axis_spans(g->height, g->tile_size, g->padding, row, &u.y0, &u.y1, &r.y0, &r.y1);
    if (useful) *useful = u;
    if (read) *read = r;
}
