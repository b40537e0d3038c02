/* tests/test_image_io.c: the CLI's image decoding and mask PNG writing (util/image_io.c):
 * round trip, and refusal of missing, empty, truncated, non-image and absurdly large
 * files. tools/ is not part of libsamc.a, so the source is included directly. */
#include <stdint.h>
#include <unistd.h>

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

static void test_setup(void) { CHECK(mkdtemp(tmp_dir) != NULL); }

static void test_cleanup(void) {
    const char *names[] = { "mask.png", "empty.png", "text.png", "full.png", "cut.png", "huge.png" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    CHECK(rmdir(tmp_dir) == 0);
}

TEST_MAIN(TEST_CASE(test_setup), TEST_CASE(test_mask_round_trip), TEST_CASE(test_refusals),
          TEST_CASE(test_truncated), TEST_CASE(test_huge_header), TEST_CASE(test_synthetic),
          TEST_CASE(test_cleanup))
