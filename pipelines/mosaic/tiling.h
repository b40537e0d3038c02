/* pipelines/mosaic/tiling.h: where the tiles of a mosaic lie.
 *
 * The raster (W x H) is cut into a grid of tiles of tile_size x tile_size "useful" pixels:
 * ceil(W / tile_size) columns and ceil(H / tile_size) rows, so every pixel belongs to the
 * useful area of exactly one tile, including the last, narrower, column and row (the
 * sam-mosaic tool uses W // tile_size and silently drops the right and bottom strips).
 * Each tile is segmented on a larger read window: the useful area grown by `padding` on
 * every side for context, shifted inward at the raster edges so that it stays inside the
 * raster (and clipped when the raster is smaller than tile_size + 2 * padding).
 * The useful areas meet at the discontinuities x = k * tile_size and y = k * tile_size,
 * where the border merge joins segments cut by the tiling.
 */
#ifndef SAMC_MOSAIC_TILING_H
#define SAMC_MOSAIC_TILING_H
#include "model/samc.h"

typedef struct { int x0, y0, x1, y1; } mosaic_rect;   /* x1, y1 exclusive */

typedef struct {
    int width, height;       /* the raster */
    int tile_size, padding;
    int n_cols, n_rows;      /* ceil(width / tile_size), ceil(height / tile_size) */
    int read_w, read_h;      /* the largest read window: min(tile_size + 2 padding, W or H) */
} mosaic_grid;

/* Fails (SAMC_ERR_ARG, naming the argument) on an empty raster, tile_size < 16 or
 * padding < 0. */
int mosaic_grid_init(mosaic_grid *g, int width, int height, int tile_size, int padding, samc_error *err);
/* The useful area and the read window of tile (row, col); useful lies inside read. */
void mosaic_tile_rects(const mosaic_grid *g, int row, int col, mosaic_rect *useful, mosaic_rect *read);

#endif
