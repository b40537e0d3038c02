/* tests/test_image_io.c: the CLI's image decoding and mask PNG writing (util/image_io.c):
 * round trip, and refusal of missing, empty, truncated, non-image and absurdly large
 * files; the PNG encoder (util/png_write.c): gray and RGB round trips through stb_image
 * at edge sizes and with every row filter, the chunk structure and CRCs (stb_image does
 * not check them; viewers and PIL do), several IDAT chunks, and its errors. tools/ is
 * not part of libsamc.a, so the source is included directly. */
#include <stdint.h>
#include <unistd.h>
#include <zlib.h>

#include "util/png_write.h"

#include "tests/test.h"
#include "util/image_io.c"

static char tmp_dir[] = "/tmp/samc_test_image_io_XXXXXX";

static const char *tmp_path(const char *name) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static size_t read_bytes(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* A 0/1 pattern that is not symmetric, so a transposed or flipped image fails. */
static uint8_t pattern(int x, int y) { return (uint8_t)((x * 3 + y * 5 + x * y) % 7 < 3); }

static void test_mask_round_trip(void) {
    enum { W = 13, H = 7 };
    uint8_t m[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) m[y * W + x] = pattern(x, y);
    char err[256];
    const char *path = tmp_path("mask.png");
    CHECKF(image_write_mask_png(path, m, W, H, err, sizeof err) == 0, "%s", err);
    image_rgb img;
    CHECKF(image_load_rgb(path, &img, err, sizeof err) == 0, "%s", err);
    if (!img.rgb) return;
    CHECK(img.w == W && img.h == H);
    int bad = 0;
    for (int i = 0; i < W * H; i++) {
        uint8_t want = m[i] ? 255 : 0;
        bad += img.rgb[3 * i] != want || img.rgb[3 * i + 1] != want || img.rgb[3 * i + 2] != want;
    }
    CHECKF(bad == 0, "%d pixels differ", bad);
    image_free(&img);
    CHECK(img.rgb == NULL);
}

static void expect_refused(const char *path, const char *word) {
    image_rgb img;
    char err[512] = "";
    int rc = image_load_rgb(path, &img, err, sizeof err);
    CHECKF(rc != 0 && img.rgb == NULL, "%s was accepted", path);
    CHECKF(strstr(err, word) != NULL, "%s: message '%s' lacks '%s'", path, err, word);
    if (rc == 0) image_free(&img);
}

static void test_refusals(void) {
    expect_refused(tmp_path("does_not_exist.png"), "cannot open");
    write_bytes(tmp_path("empty.png"), "", 0);
    expect_refused(tmp_path("empty.png"), "empty");
    const char text[] = "this is a text file, not an image\n";
    write_bytes(tmp_path("text.png"), text, sizeof text - 1);
    expect_refused(tmp_path("text.png"), "not a supported image");
    expect_refused(tmp_dir, "not a regular file");
}

static void test_truncated(void) {
    enum { W = 64, H = 64 };
    uint8_t m[W * H], buf[65536];
    for (int i = 0; i < W * H; i++) m[i] = pattern(i % W, i / W);
    char err[256];
    CHECKF(image_write_mask_png(tmp_path("full.png"), m, W, H, err, sizeof err) == 0, "%s", err);
    size_t n = read_bytes(tmp_path("full.png"), buf, sizeof buf);
    CHECK(n > 60);
    /* Signature and IHDR intact (33 bytes), image data cut: the header reads, decoding fails. */
    write_bytes(tmp_path("cut.png"), buf, n / 2 > 40 ? n / 2 : 40);
    expect_refused(tmp_path("cut.png"), "truncated");
}

static void test_huge_header(void) {
    /* PNG signature + IHDR claiming 100000 x 100000 RGB (CRC correct) + IEND: refused from the
     * header alone, before any allocation. */
    static const uint8_t png[] = {
        0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,
        0, 0, 0, 13, 'I', 'H', 'D', 'R', 0x00, 0x01, 0x86, 0xa0, 0x00, 0x01, 0x86, 0xa0,
        8, 2, 0, 0, 0, 0x27, 0x30, 0x9c, 0x9f,
        0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82,
    };
    write_bytes(tmp_path("huge.png"), png, sizeof png);
    expect_refused(tmp_path("huge.png"), "100000x100000");
}

static void test_synthetic(void) {
    enum { W = 96, H = 64 };
    static uint8_t a[W * H * 3], b[W * H * 3];
    image_synthetic(a, W, H);
    image_synthetic(b, W, H);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(a[0] == 0 && a[1] == 0 && a[2] == 0);                 /* gradient corner */
    const uint8_t *last = a + (W * H - 1) * 3;
    CHECK(last[0] == 255 && last[1] == 255 && last[2] == 255);  /* opposite corner */
    const uint8_t *disc = a + ((35 * H / 100) * W + 30 * W / 100) * 3;   /* first disc centre */
    CHECK(disc[0] == 220 && disc[1] == 40 && disc[2] == 40);
}


/* ---- util/png_write.c ---- */

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Walks the chunks: signature, IHDR first (w, h, colour type), every CRC right, IEND
 * last and at the end; returns the number of IDAT chunks, or -1 (with a check failed). */
static int check_chunks(const png_buffer *b, int w, int h, int channels) {
    static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    CHECK(b->n > 8 && memcmp(b->data, sig, 8) == 0);
    size_t at = 8;
    int idat = 0, k = 0, ended = 0;
    while (at + 12 <= b->n && !ended) {
        uint32_t len = be32(b->data + at);
        if (at + 12 + (size_t)len > b->n) break;
        const uint8_t *type = b->data + at + 4;
        uint32_t crc = (uint32_t)crc32(crc32(0L, type, 4), type + 4, len);
        CHECKF(crc == be32(type + 4 + len), "chunk %d (%.4s): CRC %08x, stored %08x", k, (const char *)type, crc,
               be32(type + 4 + len));
        if (k == 0) {
            CHECKF(memcmp(type, "IHDR", 4) == 0 && len == 13, "first chunk %.4s of %u bytes", (const char *)type, len);
            CHECK(be32(type + 4) == (uint32_t)w && be32(type + 8) == (uint32_t)h);
            CHECK(type[12] == 8 && type[13] == (channels == 1 ? 0 : 2) && type[16] == 0);
        }
        idat += memcmp(type, "IDAT", 4) == 0;
        ended = memcmp(type, "IEND", 4) == 0;
        at += 12 + (size_t)len;
        k++;
    }
    CHECKF(ended && at == b->n, "IEND %s, %zu of %zu bytes walked", ended ? "found" : "missing", at, b->n);
    return ended && at == b->n ? idat : -1;
}

/* Encodes pix (row stride w·channels + pad), decodes it with stb_image, compares. */
static int png_round_trip(const uint8_t *pix, int w, int h, int channels, int pad, const char *what) {
    png_buffer b = { 0 };
    char err[256] = "";
    size_t stride = (size_t)w * channels + pad;
    int rc = png_encode(pix, w, h, channels, stride, png_sink_buffer, &b, err, sizeof err);
    CHECKF(rc == 0, "%s: %s", what, err);
    int idat = rc == 0 ? check_chunks(&b, w, h, channels) : -1;
    int dw = 0, dh = 0, dc = 0, bad = -1;
    uint8_t *d = rc == 0 ? stbi_load_from_memory(b.data, (int)b.n, &dw, &dh, &dc, channels) : NULL;
    CHECKF(d && dw == w && dh == h && dc == channels, "%s: decoded %dx%d x%d", what, dw, dh, dc);
    if (d && dw == w && dh == h) {
        bad = 0;
        for (int y = 0; y < h; y++) bad += memcmp(d + (size_t)y * w * channels, pix + y * stride, (size_t)w * channels) != 0;
        CHECKF(bad == 0, "%s: %d rows differ", what, bad);
    }
    stbi_image_free(d);
    free(b.data);
    return idat;
}

static void test_png_round_trips(void) {
    /* pixels that make each of the five row filters the best somewhere: flat areas, a
     * horizontal ramp (Sub), vertical stripes (Up), a smooth 2-D gradient (Average /
     * Paeth), and noise; with one byte of padding after each row */
    enum { W = 97, H = 61 };
    static uint8_t rgb[H * (W * 3 + 1)], gray[H * (W + 1)];
    uint32_t s = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            s = s * 1664525u + 1013904223u;
            uint8_t *p = rgb + (size_t)y * (W * 3 + 1) + 3 * x;
            int band = y / 13, r0 = (int)(s >> 24), r1 = (int)(s >> 16 & 255), r2 = (int)(s >> 8 & 255);
            p[0] = (uint8_t)(band == 0 ? 7 : band == 1 ? x * 2 : band == 2 ? (x % 5) * 40 : band == 3 ? x + y : r0);
            p[1] = (uint8_t)(band == 3 ? 2 * x + y : r1);
            p[2] = (uint8_t)(band < 2 ? y * 3 : r2);
            gray[(size_t)y * (W + 1) + x] = pattern(x, y) ? 255 : 0;
        }
    png_round_trip(rgb, W, H, 3, 1, "RGB 97x61, padded rows");
    png_round_trip(gray, W, H, 1, 1, "gray 97x61, padded rows");
    /* edge sizes: one pixel, one row, one column */
    png_round_trip(rgb, 1, 1, 3, 0, "RGB 1x1");
    png_round_trip(gray, 1, 1, 1, 0, "gray 1x1");
    png_round_trip(rgb, W, 1, 3, 0, "RGB 97x1");
    png_round_trip(gray, 1, H, 1, W, "gray 1x61");
}

/* Incompressible pixels: the stream outgrows one IDAT buffer (64 KiB). */
static void test_png_many_idat(void) {
    enum { W = 300, H = 200 };
    uint8_t *pix = malloc((size_t)W * H * 3);
    CHECK(pix != NULL);
    if (!pix) return;
    uint32_t s = 7;
    for (size_t i = 0; i < (size_t)W * H * 3; i++) { s = s * 1664525u + 1013904223u; pix[i] = (uint8_t)(s >> 24); }
    int idat = png_round_trip(pix, W, H, 3, 0, "RGB 300x200 noise");
    CHECKF(idat >= 3, "%d IDAT chunks for 180 KB of noise", idat);
    free(pix);
}

typedef struct { size_t left; } failing_sink;
static int sink_fails_after(void *ctx, const uint8_t *data, size_t n) {
    failing_sink *f = ctx;
    if (n > f->left) return -1;
    f->left -= n;
    return 0;
}

static void test_png_errors(void) {
    uint8_t px[12] = { 0 };
    png_buffer b = { 0 };
    char err[256] = "";
    CHECK(png_encode(px, 0, 5, 1, 1, png_sink_buffer, &b, err, sizeof err) == -1);
    CHECKF(strstr(err, "0x5") != NULL, "%s", err);
    CHECK(png_encode(px, 2, 2, 2, 4, png_sink_buffer, &b, err, sizeof err) == -1);
    CHECKF(strstr(err, "2 channels") != NULL, "%s", err);
    CHECK(b.n == 0);
    /* a sink that stops taking bytes at each point of the stream: always an error */
    size_t stops[] = { 0, 5, 8, 20, 33, 40, 60 };
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        failing_sink f = { stops[i] };
        err[0] = 0;
        CHECKF(png_encode(px, 2, 2, 3, 6, sink_fails_after, &f, err, sizeof err) == -1, "sink stopping after %zu bytes",
               stops[i]);
        CHECKF(strstr(err, "cannot write") != NULL, "%s", err);
    }
    free(b.data);
}

static void test_setup(void) { CHECK(mkdtemp(tmp_dir) != NULL); }

static void test_cleanup(void) {
    const char *names[] = { "mask.png", "empty.png", "text.png", "full.png", "cut.png", "huge.png" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    CHECK(rmdir(tmp_dir) == 0);
}

TEST_MAIN(TEST_CASE(test_setup), TEST_CASE(test_mask_round_trip), TEST_CASE(test_refusals),
          TEST_CASE(test_truncated), TEST_CASE(test_huge_header), TEST_CASE(test_synthetic),
          TEST_CASE(test_png_round_trips), TEST_CASE(test_png_many_idat), TEST_CASE(test_png_errors),
          TEST_CASE(test_cleanup))
