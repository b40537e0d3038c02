/* util/image_io.h: image files for the CLI (decode with stb_image, masks as PNG). */
#ifndef SAMC_IMAGE_IO_H
#define SAMC_IMAGE_IO_H
#include <stddef.h>
#include <stdint.h>

/* Largest image accepted: 2^28 pixels (16384 x 16384), i.e. 768 MiB of RGB. The header is
 * checked before decoding, so a file that merely claims a huge size costs nothing. */
#define IMAGE_MAX_PIXELS ((int64_t)1 << 28)

typedef struct {
    int w, h;
    uint8_t *rgb;   /* [h][w][3] interleaved 8-bit RGB */
} image_rgb;

/* Decodes PNG / JPEG / BMP / TGA / GIF (first frame) / PSD / PNM / HDR to 8-bit RGB
 * (grayscale is expanded, alpha dropped, 16-bit reduced). Returns 0, or -1 with a
 * one-line reason in err (missing, empty, not an image, too large, truncated). */
int image_load_rgb(const char *path, image_rgb *out, char *err, size_t err_size);
void image_free(image_rgb *img);

/* Width and height from a PNG's IHDR chunk (the first 24 bytes), or 0 if b does not
 * start like a PNG. stb_image refuses PNGs above 2^30 bytes inside its header check and
 * then reports only "unknown image type"; reading IHDR lets an error say what the file
 * claims, and refuse an absurd size before anything is allocated. */
int image_png_size(const uint8_t *b, size_t n, int64_t *w, int64_t *h);

/* Writes a 0/1 mask [h][w] as an 8-bit grayscale PNG with values 0 and 255. */
int image_write_mask_png(const char *path, const uint8_t *mask01, int w, int h,
                         char *err, size_t err_size);

/* The deterministic synthetic test image of `samc bench`: smooth gradients plus a few
 * discs, so every stage sees varied data. rgb[h][w][3]. */
void image_synthetic(uint8_t *rgb, int w, int h);

#endif
