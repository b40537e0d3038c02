/* tools/overlay.h: the colour overlays of `samc everything` and `samc find`: masks blended
 * over a copy of the image in distinct colours, optional text labels, written as a PNG. */
#ifndef SAMC_OVERLAY_H
#define SAMC_OVERLAY_H
#include <stdint.h>

/* A distinct colour per index k: hues a golden-ratio turn apart. */
void overlay_colour(int k, uint8_t c[3]);
/* Blends colour c (55 %) into the pixels of rgb[h][w][3] that a mask sets: an
 * uncompressed RLE (column-major runs starting with 0s, pipelines/amg's format)... */
void overlay_paint_rle(uint8_t *rgb, int w, int h, const uint32_t *counts, int64_t n_counts, const uint8_t c[3]);
/* ... or a 0/1 mask[h][w]. */
void overlay_paint_mask(uint8_t *rgb, int w, int h, const uint8_t *mask, const uint8_t c[3]);
/* Writes text (printable ASCII; any other character shows as '?') in a 5x7 bitmap font scaled
 * so that it reads on images of any size, white on a box of colour c, with its top-left
 * corner at (x, y) moved inside the image where needed. */
void overlay_label(uint8_t *rgb, int w, int h, int x, int y, const char *text, const uint8_t c[3]);
/* Writes rgb[h][w][3] as a PNG at path, through path.tmp.<pid> and a rename so that a
 * reader never sees half a file. 0, or -1 with one error line naming `what`. */
int overlay_write_png(const char *what, const char *path, const uint8_t *rgb, int w, int h);

#endif
