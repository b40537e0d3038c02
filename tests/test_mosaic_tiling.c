/* tests/test_mosaic_tiling.c: the tile grid of samc mosaic (pipelines/mosaic/tiling.h): every pixel
 * of the raster lies in the useful area of exactly one tile, useful areas lie inside
 * their read windows, read windows inside the raster and as large as allowed, on sizes
 * that are and are not multiples of the tile size. */
#include <stdint.h>

#include "tests/test.h"
#include "pipelines/mosaic/tiling.h"

/* Checks the grid invariants for one raster size; counts how often each pixel is
 * covered by a useful area (must be exactly once). */
static void check_grid(int w, int h, int tile, int pad) {
    mosaic_grid g;
    samc_error err = { 0 };
    CHECKF(mosaic_grid_init(&g, w, h, tile, pad, &err) == 0, "%dx%d tile %d pad %d: %s", w, h, tile, pad, err.msg);
    CHECK(g.n_cols == (w + tile - 1) / tile);
    CHECK(g.n_rows == (h + tile - 1) / tile);
    uint8_t *seen = calloc((size_t)w * h, 1);
    int full_w = tile + 2 * pad < w ? tile + 2 * pad : w, full_h = tile + 2 * pad < h ? tile + 2 * pad : h;
    CHECK(g.read_w == full_w && g.read_h == full_h);
    for (int r = 0; r < g.n_rows; r++)
        for (int c = 0; c < g.n_cols; c++) {
            mosaic_rect u, rd;
            mosaic_tile_rects(&g, r, c, &u, &rd);
            CHECKF(u.x0 == c * tile && u.y0 == r * tile, "tile %d,%d starts at %d,%d", r, c, u.x0, u.y0);
            CHECK(u.x1 > u.x0 && u.y1 > u.y0 && u.x1 <= w && u.y1 <= h);
            CHECKF(rd.x0 >= 0 && rd.y0 >= 0 && rd.x1 <= w && rd.y1 <= h, "read %d,%d-%d,%d outside %dx%d", rd.x0,
                   rd.y0, rd.x1, rd.y1, w, h);
            CHECKF(rd.x0 <= u.x0 && rd.y0 <= u.y0 && rd.x1 >= u.x1 && rd.y1 >= u.y1,
                   "tile %d,%d: useful %d,%d-%d,%d not inside read %d,%d-%d,%d", r, c, u.x0, u.y0, u.x1, u.y1,
                   rd.x0, rd.y0, rd.x1, rd.y1);
            /* every read window has the full padded size the raster allows */
            CHECK(rd.x1 - rd.x0 == full_w && rd.y1 - rd.y0 == full_h);
            /* context on both sides where the raster has it */
            if (u.x0 - pad >= 0 && u.x1 + pad <= w) CHECK(rd.x0 <= u.x0 - pad && rd.x1 >= u.x1 + pad);
            for (int y = u.y0; y < u.y1; y++)
                for (int x = u.x0; x < u.x1; x++) seen[(size_t)y * w + x]++;
        }
    int64_t bad = 0;
    for (size_t k = 0; k < (size_t)w * h; k++) bad += seen[k] != 1;
    CHECKF(bad == 0, "%dx%d tile %d: %lld pixels not in exactly one useful area", w, h, tile, (long long)bad);
    free(seen);
}

static void test_multiple_sizes(void) {
    check_grid(1000, 1000, 100, 10);
    check_grid(400, 200, 100, 50);
}

static void test_non_multiple_sizes(void) {
    /* the tool's W // tile_size would drop the last 37 columns and 99 rows here */
    check_grid(1237, 999, 100, 50);
    check_grid(1001, 1001, 500, 50);
    check_grid(17, 1500, 16, 3);
}

static void test_raster_smaller_than_tile(void) {
    check_grid(300, 200, 1000, 50);
    check_grid(1040, 1000, 1000, 50);   /* the padded window (1100) wider than the raster */
}

static void test_edge_tiles_shift_inward(void) {
    mosaic_grid g;
    samc_error err = { 0 };
    CHECK(mosaic_grid_init(&g, 2500, 2500, 1000, 50, &err) == 0);
    mosaic_rect u, rd;
    mosaic_tile_rects(&g, 0, 0, &u, &rd);
    CHECK(rd.x0 == 0 && rd.x1 == 1100);            /* first: padding to the right only */
    mosaic_tile_rects(&g, 1, 1, &u, &rd);
    CHECK(rd.x0 == 950 && rd.x1 == 2050);          /* middle: both sides */
    mosaic_tile_rects(&g, 2, 2, &u, &rd);
    CHECK(u.x0 == 2000 && u.x1 == 2500);           /* the last, narrower tile is kept */
    CHECK(rd.x0 == 1400 && rd.x1 == 2500);         /* and read with context to its left */
}

static void test_bad_arguments(void) {
    mosaic_grid g;
    samc_error err = { 0 };
    CHECK(mosaic_grid_init(&g, 0, 10, 100, 10, &err) != 0 && strstr(err.msg, "0x10"));
    CHECK(mosaic_grid_init(&g, 10, 10, 8, 10, &err) != 0 && strstr(err.msg, "--tile-size"));
    CHECK(mosaic_grid_init(&g, 10, 10, 100, -1, &err) != 0 && strstr(err.msg, "--padding"));
}

TEST_MAIN(TEST_CASE(test_multiple_sizes), TEST_CASE(test_non_multiple_sizes),
          TEST_CASE(test_raster_smaller_than_tile), TEST_CASE(test_edge_tiles_shift_inward),
          TEST_CASE(test_bad_arguments))
