/* util/png_write.h: PNG encoding through zlib, for the masks and overlays the CLI and the
 * service write.
 *
 * Why not stb_image_write's encoder: it deflates with its own small compressor at about
 * 30 MB/s, 68 ms for one 1800 x 1200 mask; `samc find --out` spent longer writing 25
 * masks than answering the prompt. zlib at a low level, with each row filtered the way
 * that leaves the smallest bytes, writes the same pixels several times faster, and
 * smaller files (BENCHMARKS.md, "Writing masks"). */
#ifndef SAMC_PNG_WRITE_H
#define SAMC_PNG_WRITE_H
#include <stddef.h>
#include <stdint.h>

/* Receives the encoded bytes in order; returns 0, or nonzero to stop the encoding. */
typedef int (*png_sink)(void *ctx, const uint8_t *data, size_t n);

/* Encodes h rows of w pixels, 8-bit gray (channels 1) or RGB (channels 3), row r at
 * pix + r * stride, as a PNG (8 bits per sample, no interlacing) to sink. Returns 0, or
 * -1 with a one-line reason in err: a size PNG cannot hold, an unknown channel count,
 * out of memory, or the sink's refusal ("cannot write"). */
int png_encode(const uint8_t *pix, int w, int h, int channels, size_t stride, png_sink sink, void *ctx, char *err,
               size_t err_size);

/* A png_sink for a stdio stream (ctx: the FILE *): fails on a short write. */
int png_sink_file(void *ctx, const uint8_t *data, size_t n);

/* A png_sink into memory (ctx: a png_buffer, zeroed at first; free data after use). */
typedef struct {
    uint8_t *data;
    size_t n, cap;
} png_buffer;
int png_sink_buffer(void *ctx, const uint8_t *data, size_t n);

#endif
