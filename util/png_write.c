/* util/png_write.c: see png_write.h. The format is the PNG specification's (W3C, second
 * edition): signature, IHDR, IDAT chunks of one zlib stream of filtered rows, IEND; each
 * chunk's CRC-32 from zlib. */
#include "util/png_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* zlib's fastest level: its files are still no larger than stb_image_write's (masks and
 * overlays of 1800 x 1200: BENCHMARKS.md, "Writing masks"). Gray images (the callers'
 * are 0 / 255 masks) go through the Up filter, which leaves zeros except where a row
 * differs from the one above, and zlib's run-length strategy, which codes such runs as
 * well as the full search does in a fraction of its time. */
#define PNG_ZLIB_LEVEL 1
/* Compressed bytes held before they go out as one IDAT chunk. */
#define PNG_IDAT 65536

enum { F_NONE, F_SUB, F_UP, F_AVG, F_PAETH, F_COUNT };

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One chunk: length, type, data, CRC of type and data. */
static int chunk(png_sink sink, void *ctx, const char *type, const uint8_t *data, size_t n) {
    uint8_t head[8], tail[4];
    put_be32(head, (uint32_t)n);
    memcpy(head + 4, type, 4);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, (uInt)n);
    put_be32(tail, (uint32_t)crc);
    return sink(ctx, head, 8) || (n && sink(ctx, data, n)) || sink(ctx, tail, 4);
}

static uint8_t paeth(uint8_t a, uint8_t b, uint8_t c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Row `cur` (n bytes, bpp bytes a pixel; `up` the row above, NULL for the first) filtered
 * with f into out[1..n], out[0] = f. */
static void filter_row(int f, const uint8_t *cur, const uint8_t *up, size_t n, int bpp, uint8_t *out) {
    uint8_t *o = out + 1;
    size_t k = (size_t)bpp < n ? (size_t)bpp : n;   /* the first pixel has nothing to its left */
    out[0] = (uint8_t)f;
    switch (f) {
    case F_NONE:
        memcpy(o, cur, n);
        break;
    case F_SUB:
        memcpy(o, cur, k);
        for (size_t i = k; i < n; i++) o[i] = (uint8_t)(cur[i] - cur[i - bpp]);
        break;
    case F_UP:
        if (!up) memcpy(o, cur, n);
        else for (size_t i = 0; i < n; i++) o[i] = (uint8_t)(cur[i] - up[i]);
        break;
    case F_AVG:
        for (size_t i = 0; i < n; i++) {
            unsigned a = i >= k ? cur[i - bpp] : 0, b = up ? up[i] : 0;
            o[i] = (uint8_t)(cur[i] - ((a + b) >> 1));
        }
        break;
    default:
        for (size_t i = 0; i < n; i++) {
            uint8_t a = i >= k ? cur[i - bpp] : 0, b = up ? up[i] : 0, c = up && i >= k ? up[i - bpp] : 0;
            o[i] = (uint8_t)(cur[i] - paeth(a, b, c));
        }
        break;
    }
}

/* The sum of a filtered row's bytes taken as signed: the specification's suggested
 * measure for choosing a filter (the smallest usually compresses best). */
static uint64_t row_cost(const uint8_t *o, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += (uint64_t)abs((int)(int8_t)o[i]);
    return s;
}

/* Feeds len bytes (or none, finishing) to the stream, sending each full IDAT buffer. */
static int deflate_some(z_stream *z, const uint8_t *in, size_t len, int finish, uint8_t *obuf, png_sink sink,
                        void *ctx) {
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)len;
    for (;;) {
        int rc = deflate(z, finish ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_ERROR) return -1;
        if (z->avail_out == 0 || (finish && rc == Z_STREAM_END)) {
            size_t n = PNG_IDAT - z->avail_out;
            if (n && chunk(sink, ctx, "IDAT", obuf, n)) return -1;
            z->next_out = obuf;
            z->avail_out = PNG_IDAT;
        }
        if (finish ? rc == Z_STREAM_END : z->avail_in == 0) return 0;
    }
}

int png_encode(const uint8_t *pix, int w, int h, int channels, size_t stride, png_sink sink, void *ctx, char *err,
               size_t err_size) {
    if (w <= 0 || h <= 0) {
        snprintf(err, err_size, "cannot write a %dx%d PNG: both sides must be at least 1", w, h);
        return -1;
    }
    if (channels != 1 && channels != 3) {
        snprintf(err, err_size, "cannot write a PNG of %d channels (1: gray, 3: RGB)", channels);
        return -1;
    }
    size_t n = (size_t)w * (size_t)channels;
    uint8_t *mem = malloc((size_t)F_COUNT * (n + 1) + PNG_IDAT);
    if (!mem) {
        snprintf(err, err_size, "out of memory for a %dx%d PNG", w, h);
        return -1;
    }
    uint8_t *rows = mem, *obuf = mem + (size_t)F_COUNT * (n + 1);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, PNG_ZLIB_LEVEL, Z_DEFLATED, 15, 8, channels == 1 ? Z_RLE : Z_DEFAULT_STRATEGY) != Z_OK) {
        free(mem);
        snprintf(err, err_size, "out of memory for a %dx%d PNG (zlib)", w, h);
        return -1;
    }
    z.next_out = obuf;
    z.avail_out = PNG_IDAT;
    static const uint8_t signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;                         /* bits per sample */
    ihdr[9] = channels == 1 ? 0 : 2;     /* colour type: gray, RGB */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;  /* deflate, adaptive filtering, no interlace */
    int bad = sink(ctx, signature, sizeof signature) || chunk(sink, ctx, "IHDR", ihdr, sizeof ihdr);
    for (int r = 0; r < h && !bad; r++) {
        const uint8_t *cur = pix + (size_t)r * stride, *up = r ? cur - stride : NULL;
        /* gray: Up; RGB: the filter whose bytes sum least as signed values (the
         * specification's suggested heuristic) */
        int best = F_UP;
        if (channels == 1) {
            filter_row(F_UP, cur, up, n, channels, rows + (size_t)F_UP * (n + 1));
        } else {
            uint64_t best_cost = UINT64_MAX;
            for (int f = 0; f < F_COUNT; f++) {
                uint8_t *o = rows + (size_t)f * (n + 1);
                filter_row(f, cur, up, n, channels, o);
                uint64_t c = row_cost(o + 1, n);
                if (c < best_cost) { best_cost = c; best = f; }
            }
        }
        bad = deflate_some(&z, rows + (size_t)best * (n + 1), n + 1, 0, obuf, sink, ctx) != 0;
    }
    if (!bad) bad = deflate_some(&z, NULL, 0, 1, obuf, sink, ctx) != 0 || chunk(sink, ctx, "IEND", NULL, 0);
    deflateEnd(&z);
    free(mem);
    if (bad) {
        snprintf(err, err_size, "cannot write the %dx%d PNG", w, h);
        return -1;
    }
    return 0;
}

int png_sink_file(void *ctx, const uint8_t *data, size_t n) { return fwrite(data, 1, n, ctx) != n; }

int png_sink_buffer(void *ctx, const uint8_t *data, size_t n) {
    png_buffer *b = ctx;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) return -1;
            cap *= 2;
        }
        uint8_t *p = realloc(b->data, cap);
        if (!p) return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->n, data, n);
    b->n += n;
    return 0;
}
