/* tools/overlay.c: colour overlays with labels (see overlay.h). */
#include "tools/overlay.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tools/cli_util.h"
#include "util/png_write.h"

void overlay_colour(int k, uint8_t c[3]) {
    double hue = fmod(k * 0.6180339887498949, 1.0) * 6.0, s = 0.85, v = 0.95;
    int sector = (int)hue;
    double f = hue - sector, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    double rgb[6][3] = { { v, t, p }, { q, v, p }, { p, v, t }, { p, q, v }, { t, p, v }, { v, p, q } };
    for (int i = 0; i < 3; i++) c[i] = (uint8_t)lrint(rgb[sector % 6][i] * 255.0);
}

static void blend(uint8_t *p, const uint8_t c[3]) {
    for (int ch = 0; ch < 3; ch++) p[ch] = (uint8_t)((p[ch] * 115 + c[ch] * 141 + 128) >> 8);
}

void overlay_paint_rle(uint8_t *rgb, int w, int h, const uint32_t *counts, int64_t n_counts, const uint8_t c[3]) {
    size_t n = (size_t)w * h, idx = 0;
    for (int64_t j = 0; j < n_counts; j++) {
        size_t end = idx + counts[j];
        if (end > n) end = n;
        if (j & 1)   /* column-major index i: x = i / h, y = i % h */
            for (size_t i = idx; i < end; i++) blend(rgb + ((i % (size_t)h) * w + i / (size_t)h) * 3, c);
        idx = end;
    }
}

void overlay_paint_mask(uint8_t *rgb, int w, int h, const uint8_t *mask, const uint8_t c[3]) {
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++)
        if (mask[i]) blend(rgb + i * 3, c);
}

/* ASCII 32..126, 5 columns x 7 rows: bits 34..30 are the top row, bit 4 of a row its
 * left column. */
static const uint64_t font5x7[95] = {
    0x000000000ull, 0x108421004ull, 0x294000000ull, 0x295f57d4aull, 0x11f4717c4ull, 0x632222263ull,
    0x32544564dull, 0x108000000ull, 0x088842082ull, 0x208210888ull, 0x009575480ull, 0x0084f9080ull,
    0x000001888ull, 0x0000f8000ull, 0x00000018cull, 0x002222200ull, 0x3a33ae62eull, 0x11842108eull,
    0x3a211111full, 0x7c441062eull, 0x08ca97c42ull, 0x7e1e0862eull, 0x1910f462eull, 0x7c2222108ull,
    0x3a317462eull, 0x3a317844cull, 0x018c03180ull, 0x018c03088ull, 0x088882082ull, 0x001f07c00ull,
    0x208208888ull, 0x3a2111004ull, 0x3a216d6aeull, 0x3a31fc631ull, 0x7a31f463eull, 0x3a308422eull,
    0x72518c65cull, 0x7e10f421full, 0x7e10f4210ull, 0x3a30bc62full, 0x4631fc631ull, 0x38842108eull,
    0x1c4210a4cull, 0x4654c5251ull, 0x42108421full, 0x4775ac631ull, 0x4639ace31ull, 0x3a318c62eull,
    0x7a31f4210ull, 0x3a318d64dull, 0x7a31f5251ull, 0x3e107043eull, 0x7c8421084ull, 0x46318c62eull,
    0x46318c544ull, 0x4631ad6aaull, 0x462a22a31ull, 0x463151084ull, 0x7c222221full, 0x39084210eull,
    0x020820820ull, 0x38421084eull, 0x115100000ull, 0x00000001full, 0x208000000ull, 0x000e0be2full,
    0x4216cc63eull, 0x000e8422eull, 0x042d9c62full, 0x000e8fe0eull, 0x1928e2108ull, 0x01f18bc2eull,
    0x4216cc631ull, 0x100c2108eull, 0x080610a4cull, 0x4212a6292ull, 0x30842108eull, 0x001aad631ull,
    0x0016cc631ull, 0x000e8c62eull, 0x001e8fa10ull, 0x000d9bc21ull, 0x0016cc210ull, 0x000e8383eull,
    0x211c42126ull, 0x00118c66dull, 0x00118c544ull, 0x00118d6aaull, 0x001151151ull, 0x00118bc2eull,
    0x001f1111full, 0x088441082ull, 0x108421084ull, 0x208411088ull, 0x0008a8800ull,

};

void overlay_label(uint8_t *rgb, int w, int h, int x, int y, const char *text, const uint8_t c[3]) {
    char shown[61];   /* one glyph per character: a UTF-8 sequence shows as one '?' */
    int len = 0, s = (w < h ? w : h) / 320 + 1;   /* scale */
    for (const unsigned char *p = (const unsigned char *)text; *p && len < 60; p++)
        if ((*p & 0xC0) != 0x80) shown[len++] = *p >= 32 && *p < 127 ? (char)*p : '?';
    shown[len] = '\0';
    int bw = (6 * len + 1) * s, bh = 9 * s;
    if (x + bw > w) x = w - bw;
    if (y + bh > h) y = h - bh;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    for (int py = y; py < y + bh && py < h; py++)
        for (int px = x; px < x + bw && px < w; px++) {
            uint8_t *p = rgb + ((size_t)py * w + px) * 3;
            for (int ch = 0; ch < 3; ch++) p[ch] = (uint8_t)(c[ch] / 2);
        }
    for (int i = 0; i < len; i++) {
        uint64_t g = font5x7[shown[i] - 32];
        for (int r = 0; r < 7; r++)
            for (int col = 0; col < 5; col++) {
                if (!((g >> ((6 - r) * 5 + (4 - col))) & 1)) continue;
                int x0 = x + (1 + 6 * i + col) * s, y0 = y + (1 + r) * s;
                for (int dy = 0; dy < s; dy++)
                    for (int dx = 0; dx < s; dx++)
                        if (x0 + dx < w && y0 + dy < h) memset(rgb + ((size_t)(y0 + dy) * w + x0 + dx) * 3, 255, 3);
            }
    }
}

typedef struct {
    const uint8_t *rgb;
    int w, h;
} png_job;

static int write_png(FILE *f, void *ctx) {
    const png_job *j = ctx;
    char why[200];
    return png_encode(j->rgb, j->w, j->h, 3, (size_t)j->w * 3, png_sink_file, f, why, sizeof why);
}

int overlay_write_png(const char *what, const char *path, const uint8_t *rgb, int w, int h) {
    png_job j = { rgb, w, h };
    return cli_write_atomic(what, path, write_png, &j);
}
