/* util/image_io.c: image decode (stb_image, from libstb-dev) and mask PNG output
 * (util/png_write.c). */
#include "util/image_io.h"
#include "util/png_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>

int image_png_size(const uint8_t *b, size_t n, int64_t *w, int64_t *h) {
    static const uint8_t sig[16] = { 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,
                                     0, 0, 0, 13, 'I', 'H', 'D', 'R' };
    if (n < 24 || memcmp(b, sig, sizeof sig) != 0) return 0;
    *w = (int64_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
    *h = (int64_t)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
    return 1;
}

/* image_png_size of a file's first bytes; the file is rewound. */
static int png_header_size(FILE *f, int64_t *w, int64_t *h) {
    uint8_t b[24];
    size_t n = fread(b, 1, sizeof b, f);
    rewind(f);
    return image_png_size(b, n, w, h);
}

int image_load_rgb(const char *path, image_rgb *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "not a regular file");
        fclose(f);
        return -1;
    }
    if (st.st_size == 0) {
        snprintf(err, err_size, "empty file (0 bytes)");
        fclose(f);
        return -1;
    }
    /* Header first: refuse absurd sizes before stb_image allocates anything. */
    int64_t pw = 0, ph = 0;
    if (png_header_size(f, &pw, &ph) && (pw == 0 || ph == 0 || pw > IMAGE_MAX_PIXELS / ph)) {
        snprintf(err, err_size, "PNG header claims %lldx%lld pixels; the limit is %lld pixels",
                 (long long)pw, (long long)ph, (long long)IMAGE_MAX_PIXELS);
        fclose(f);
        return -1;
    }
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_file(f, &w, &h, &comp)) {
        snprintf(err, err_size, "not a supported image (%lld bytes; stb_image: %s)",
                 (long long)st.st_size, stbi_failure_reason());
        fclose(f);
        return -1;
    }
    if (w <= 0 || h <= 0 || (int64_t)w * h > IMAGE_MAX_PIXELS) {
        snprintf(err, err_size, "image header claims %dx%d pixels; the limit is %lld pixels",
                 w, h, (long long)IMAGE_MAX_PIXELS);
        fclose(f);
        return -1;
    }
    int dw = 0, dh = 0, dc = 0;
    uint8_t *rgb = stbi_load_from_file(f, &dw, &dh, &dc, 3);
    fclose(f);
    if (!rgb) {
        snprintf(err, err_size, "cannot decode %dx%d image (truncated or corrupt; stb_image: %s)",
                 w, h, stbi_failure_reason());
        return -1;
    }
    if (dw != w || dh != h) {
        snprintf(err, err_size, "decoded size %dx%d differs from header %dx%d", dw, dh, w, h);
        stbi_image_free(rgb);
        return -1;
    }
    out->w = w;
    out->h = h;
    out->rgb = rgb;
    return 0;
}

void image_free(image_rgb *img) {
    if (img->rgb) stbi_image_free(img->rgb);
    memset(img, 0, sizeof *img);
}

int image_write_mask_png(const char *path, const uint8_t *mask01, int w, int h,
                         char *err, size_t err_size) {
    size_t n = (size_t)w * (size_t)h;
    uint8_t *gray = malloc(n ? n : 1);
    if (!gray) {
        snprintf(err, err_size, "out of memory for a %dx%d mask", w, h);
        return -1;
    }
    for (size_t i = 0; i < n; i++) gray[i] = mask01[i] ? 255 : 0;
    char why[200] = "";
    errno = 0;
    FILE *f = fopen(path, "wb");
    int rc = f ? png_encode(gray, w, h, 1, (size_t)w, png_sink_file, f, why, sizeof why) : -1;
    int e = errno;
    if (f && fclose(f) != 0 && rc == 0) { rc = -1; e = errno; }
    free(gray);
    if (rc != 0) {
        snprintf(err, err_size, "cannot write PNG: %s", e ? strerror(e) : why[0] ? why : "unknown error");
        return -1;
    }
    return 0;
}

void image_synthetic(uint8_t *rgb, int w, int h) {
    /* Three discs of distinct colours on a diagonal gradient: objects with clear edges
     * for the decoder, gradients for the encoder. Integer arithmetic only, so it is the
     * same image on every machine. */
    const int discs[3][6] = {
        { 30, 35, 18, 220, 40, 40 }, { 65, 40, 14, 40, 200, 60 }, { 45, 72, 20, 50, 70, 230 },
    };
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(255 * x / (w > 1 ? w - 1 : 1));
            p[1] = (uint8_t)(255 * y / (h > 1 ? h - 1 : 1));
            p[2] = (uint8_t)((p[0] + p[1]) / 2);
            for (int d = 0; d < 3; d++) {
                /* centre and radius are percentages of the image size */
                long dx = (long)x * 100 - (long)discs[d][0] * w;
                long dy = (long)y * 100 - (long)discs[d][1] * h;
                long r = (long)discs[d][2] * (w < h ? w : h);
                if (dx * dx + dy * dy <= r * r) {
                    p[0] = (uint8_t)discs[d][3];
                    p[1] = (uint8_t)discs[d][4];
                    p[2] = (uint8_t)discs[d][5];
                }
            }
        }
    }
}
