/* tests/test_safetensors.c: the safetensors reader and writer: round trips, half-float
 * conversion, byte-exact reproduction of the golden micro.safetensors, and a catalogue
 * of malformed files that must each fail with a message naming the problem. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/safetensors.h"
#include "tests/test.h"

static char tmp_dir[256];

static void remove_tmp_dir(void) { rmdir(tmp_dir); }

static const char *tmp_path(const char *name) {
    static char buf[512];
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/samc_test_st_XXXXXX");
        if (!mkdtemp(tmp_dir)) { perror("mkdtemp"); exit(2); }
        atexit(remove_tmp_dir);
    }
    snprintf(buf, sizeof buf, "%s/%s", tmp_dir, name);
    return buf;
}

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    *size = (size_t)n;
    return b;
}

static int file_exists(const char *path) { struct stat st; return stat(path, &st) == 0; }

/* ---- round trip ---------------------------------------------------------------- */

static void test_round_trip(void) {
    float f32[6] = {1.5f, -2.25f, 0.0f, 3.0e-41f, 1e30f, -0.0f};
    uint16_t f16[3] = {0x3c00, 0xc000, 0x0001};
    uint16_t bf16[2] = {0x3f80, 0xc049};
    int32_t i32[4] = {1, -2, 2147483647, -2147483647 - 1};
    int64_t i64[2] = {INT64_MAX, -5};
    uint8_t u8[5] = {0, 1, 2, 254, 255};
    uint8_t bl[3] = {1, 0, 1};
    float scalar = 42.0f;
    st_tensor t[] = {
        {.name = "w.f32", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .numel = 6, .data = f32, .nbytes = sizeof f32},
        {.name = "h", .dtype = ST_F16, .ndim = 1, .shape = {3}, .numel = 3, .data = f16, .nbytes = sizeof f16},
        {.name = "b", .dtype = ST_BF16, .ndim = 3, .shape = {1, 2, 1}, .numel = 2, .data = bf16, .nbytes = sizeof bf16},
        {.name = "i32", .dtype = ST_I32, .ndim = 1, .shape = {4}, .numel = 4, .data = i32, .nbytes = sizeof i32},
        {.name = "i64", .dtype = ST_I64, .ndim = 1, .shape = {2}, .numel = 2, .data = i64, .nbytes = sizeof i64},
        {.name = "u8", .dtype = ST_U8, .ndim = 1, .shape = {5}, .numel = 5, .data = u8, .nbytes = sizeof u8},
        {.name = "mask", .dtype = ST_BOOL, .ndim = 1, .shape = {3}, .numel = 3, .data = bl, .nbytes = sizeof bl},
        {.name = "empty", .dtype = ST_F32, .ndim = 2, .shape = {0, 7}, .numel = 0, .data = NULL, .nbytes = 0},
        {.name = "scalar", .dtype = ST_F32, .ndim = 0, .numel = 1, .data = &scalar, .nbytes = 4},
        {.name = "quote\"and\\back\nslash \xc3\xa9", .dtype = ST_U8, .ndim = 1, .shape = {1}, .numel = 1, .data = u8, .nbytes = 1},
    };
    int n = (int)(sizeof t / sizeof t[0]);
    st_meta meta[] = {{"format", "pt"}, {"note", "tab\there \"q\""}};
    char err[SAMC_ERRMSG];
    const char *path = tmp_path("rt.safetensors");
    char saved[512];
    snprintf(saved, sizeof saved, "%s", path);
    CHECKF(st_write(saved, t, n, meta, 2, err) == 0, "%s", err);
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", saved);
    CHECK(!file_exists(tmpname));

    st_file f;
    int rc = st_open(saved, &f, err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return;
    CHECK(f.n_tensors == n);
    CHECK(f.map != NULL && f.map_size > 8);
    /* header length is a multiple of 8 and the data follows it */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | ((unsigned char *)f.map)[i];
    CHECKF(hlen % 8 == 0, "header length %llu", (unsigned long long)hlen);
    for (int i = 0; i < n && i < f.n_tensors; i++) {
        const st_tensor *a = &t[i], *b = &f.tensors[i];
        CHECKF(strcmp(a->name, b->name) == 0, "tensor %d: '%s' vs '%s'", i, a->name, b->name);
        CHECK(a->dtype == b->dtype);
        CHECK(a->ndim == b->ndim);
        for (int d = 0; d < a->ndim; d++) CHECK(a->shape[d] == b->shape[d]);
        CHECK(a->numel == b->numel);
        CHECK(a->nbytes == b->nbytes);
        if (a->nbytes) CHECKF(memcmp(a->data, b->data, a->nbytes) == 0, "data of %s", a->name);
    }
    CHECK(st_find(&f, "i64") == &f.tensors[4]);
    CHECK(st_find(&f, "nope") == NULL);
    const char *note = st_meta_get(&f, "note");
    CHECK(note && strcmp(note, "tab\there \"q\"") == 0);
    CHECK(st_meta_get(&f, "format") && strcmp(st_meta_get(&f, "format"), "pt") == 0);
    CHECK(st_meta_get(&f, "missing") == NULL);

    float out[6];
    CHECKF(st_read_f32(st_find(&f, "w.f32"), out, err) == 0, "%s", err);
    CHECK(memcmp(out, f32, sizeof f32) == 0);
    CHECKF(st_read_f32(st_find(&f, "h"), out, err) == 0, "%s", err);
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == ldexpf(1.0f, -24));
    CHECKF(st_read_f32(st_find(&f, "b"), out, err) == 0, "%s", err);
    CHECK(out[0] == 1.0f && out[1] == -3.140625f);
    CHECK(st_read_f32(st_find(&f, "i32"), out, err) == -1);
    CHECKF(strstr(err, "i32") && strstr(err, "I32"), "%s", err);
    st_close(&f);
    CHECK(f.tensors == NULL && f.n_tensors == 0);

    /* No metadata and no tensors: "{}" padded to 8. */
    CHECKF(st_write(saved, NULL, 0, NULL, 0, err) == 0, "%s", err);
    size_t size;
    unsigned char *b = read_file(saved, &size);
    CHECK(b && size == 16 && b[0] == 8 && memcmp(b + 8, "{}      ", 8) == 0);
    free(b);
    rc = st_open(saved, &f, err);
    CHECKF(rc == 0 && f.n_tensors == 0 && f.n_meta == 0, "%s", err);
    if (!rc) st_close(&f);
    unlink(saved);
}

static void test_write_errors(void) {
    char err[SAMC_ERRMSG];
    float v[2] = {1, 2};
    st_tensor t = {.name = "x", .dtype = ST_F32, .ndim = 1, .shape = {3}, .numel = 3, .data = v, .nbytes = 8};
    CHECK(st_write(tmp_path("bad.safetensors"), &t, 1, NULL, 0, err) == -1);
    CHECKF(strstr(err, "'x'") && strstr(err, "12 bytes"), "%s", err);
    CHECK(!file_exists(tmp_path("bad.safetensors")));
    t.shape[0] = 2;
    CHECK(st_write("/nonexistent_dir_samc/a.safetensors", &t, 1, NULL, 0, err) == -1);
    CHECKF(strstr(err, "/nonexistent_dir_samc/a.safetensors.tmp"), "%s", err);
    st_tensor two[2] = {t, t};
    CHECK(st_write(tmp_path("dup.safetensors"), two, 2, NULL, 0, err) == -1);
    CHECKF(strstr(err, "duplicate") && strstr(err, "'x'"), "%s", err);
    CHECK(!file_exists(tmp_path("dup.safetensors")));
    two[1].name = "__metadata__";
    CHECK(st_write(tmp_path("meta.safetensors"), two, 2, NULL, 0, err) == -1);
    CHECKF(strstr(err, "__metadata__"), "%s", err);
}

/* ---- half floats ----------------------------------------------------------------- */

/* Independent reference: value = (-1)^s * 2^(e-15) * (1 + m/1024), subnormal m * 2^-24. */
static float half_ref(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf(1.0f + (float)m / 1024.0f, e - 15);
    return s ? -v : v;
}

static void test_f16_bf16(void) {
    static uint16_t all[65536];
    static float out[65536];
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    st_tensor t = {.name = "all", .dtype = ST_F16, .ndim = 1, .shape = {65536}, .numel = 65536,
                   .data = all, .nbytes = sizeof all};
    char err[SAMC_ERRMSG];
    CHECKF(st_read_f32(&t, out, err) == 0, "%s", err);
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
        float r = half_ref((uint16_t)i);
        int ok = isnan(r) ? isnan(out[i]) : (out[i] == r && signbit(out[i]) == signbit(r));
        if (!ok && bad++ < 5) fprintf(stderr, "  f16 0x%04x: got %g want %g\n", i, out[i], r);
    }
    CHECKF(bad == 0, "%d half values wrong", bad);
    /* Named corners. */
    CHECK(out[0x3c00] == 1.0f);
    CHECK(out[0x7bff] == 65504.0f);
    CHECK(out[0x0001] == ldexpf(1.0f, -24));
    CHECK(out[0x03ff] == ldexpf(1023.0f, -24));
    CHECK(out[0x0400] == ldexpf(1.0f, -14));
    CHECK(isinf(out[0x7c00]) && out[0x7c00] > 0 && isinf(out[0xfc00]) && out[0xfc00] < 0);
    CHECK(isnan(out[0x7e00]) && isnan(out[0x7c01]));
    CHECK(out[0x8000] == 0.0f && signbit(out[0x8000]));

    /* BF16 is the top half of a float32: every pattern must map back exactly. */
    t.dtype = ST_BF16;
    CHECKF(st_read_f32(&t, out, err) == 0, "%s", err);
    bad = 0;
    for (int i = 0; i < 65536; i++) {
        uint32_t bits;
        memcpy(&bits, &out[i], 4);
        if (bits != ((uint32_t)i << 16) && bad++ < 5) fprintf(stderr, "  bf16 0x%04x: got 0x%08x\n", i, bits);
    }
    CHECKF(bad == 0, "%d bf16 values wrong", bad);
    CHECK(out[0x3f80] == 1.0f && out[0xc049] == -3.140625f);
}

/* ---- golden reproduction --------------------------------------------------------- */

static void test_reproduce_micro(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/micro/weights/micro.safetensors", test_golden_dir());
    TEST_NEED_GOLDEN(file_exists(path), path);
    st_file f;
    char err[SAMC_ERRMSG];
    int rc = st_open(path, &f, err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return;
    CHECK(f.n_tensors == 387);
    const char *fm = st_meta_get(&f, "formula");
    CHECK(fm && strcmp(fm, "samc-synth-v1") == 0);
    st_tensor *t = malloc((size_t)f.n_tensors * sizeof *t);
    memcpy(t, f.tensors, (size_t)f.n_tensors * sizeof *t);
    /* Scramble, then sort: the writer must not depend on the input order. */
    for (int i = 0; i < f.n_tensors; i++) {
        int j = (i * 7919) % f.n_tensors;
        st_tensor x = t[i]; t[i] = t[j]; t[j] = x;
    }
    st_sort_by_name(t, f.n_tensors);
    st_meta meta[] = {{"format", "pt"}, {"formula", "samc-synth-v1"}};
    char out[512];
    snprintf(out, sizeof out, "%s", tmp_path("micro_copy.safetensors"));
    CHECKF(st_write(out, t, f.n_tensors, meta, 2, err) == 0, "%s", err);
    size_t a_n, b_n;
    unsigned char *a = read_file(path, &a_n), *b = read_file(out, &b_n);
    CHECKF(a && b && a_n == b_n, "sizes %zu vs %zu", a_n, b_n);
    if (a && b && a_n == b_n) {
        size_t first = a_n;
        for (size_t i = 0; i < a_n; i++) if (a[i] != b[i]) { first = i; break; }
        CHECKF(first == a_n, "first differing byte at %zu", first);
    }
    free(a); free(b); free(t);
    unlink(out);
    st_close(&f);
}

/* ---- malformed files ------------------------------------------------------------- */

/* 8-byte length + header + data_len zero bytes of data. */
static unsigned char *make_file(const char *header, uint64_t hlen_field, size_t data_len, size_t *size) {
    size_t h = strlen(header);
    *size = 8 + h + data_len;
    unsigned char *b = calloc(1, *size + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen_field >> (8 * i));
    memcpy(b + 8, header, h);
    return b;
}

/* Expects failure; every listed word must appear in the message. */
static void expect_bad(int line, const char *header, uint64_t hlen_field, size_t data_len, const char *w1,
                       const char *w2) {
    size_t size;
    unsigned char *b = make_file(header, hlen_field, data_len, &size);
    st_file f;
    char err[SAMC_ERRMSG] = "";
    int rc = st_open_memory(b, size, "bad.st", &f, err);
    if (rc != -1) {
        fprintf(stderr, "  FAIL line %d: accepted: %s\n", line, header);
        test_failures_in_current++;
        if (rc == 0) st_close(&f);
    } else {
        if (!strstr(err, "bad.st") || (w1 && !strstr(err, w1)) || (w2 && !strstr(err, w2))) {
            fprintf(stderr, "  FAIL line %d: message lacks '%s'/'%s': %s\n", line, w1 ? w1 : "", w2 ? w2 : "", err);
            test_failures_in_current++;
        }
        CHECK(f.tensors == NULL && f.n_tensors == 0 && f.meta == NULL);
    }
    free(b);
}
#define BAD(h, data_len, w1, w2) expect_bad(__LINE__, h, strlen(h), data_len, w1, w2)

static void test_bad_inputs(void) {
    char err[SAMC_ERRMSG];
    st_file f;
    /* Files on disk: empty, 3 bytes, absent. */
    const char *p = tmp_path("empty.st");
    char path[512];
    snprintf(path, sizeof path, "%s", p);
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    CHECK(st_open(path, &f, err) == -1);
    CHECKF(strstr(err, path) && strstr(err, "0 bytes"), "%s", err);
    fp = fopen(path, "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    CHECK(st_open(path, &f, err) == -1);
    CHECKF(strstr(err, path) && strstr(err, "3 bytes"), "%s", err);
    unlink(path);
    CHECK(st_open(path, &f, err) == -1);
    CHECKF(strstr(err, path) && strstr(err, "cannot open"), "%s", err);
    CHECK(st_open(tmp_dir, &f, err) == -1);
    CHECKF(strstr(err, "not a regular file"), "%s", err);

    /* Header length field. */
    const char *ok = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad(__LINE__, ok, 1000, 8, "header length 1000", "larger");
    expect_bad(__LINE__, ok, UINT64_C(1) << 63, 8, "9223372036854775808", NULL);
    expect_bad(__LINE__, ok, UINT64_C(0xffffffffffffffff), 8, "18446744073709551615", NULL);
    expect_bad(__LINE__, "{}", 1, 0, "header length 1", "too small");
    expect_bad(__LINE__, "", 0, 0, "header length 0", NULL);
    expect_bad(__LINE__, ok, 200u * 1000u * 1000u, 8, "200000000", "limit");

    /* Garbage JSON. */
    BAD("garbage!", 0, "expected '{'", NULL);
    BAD("[1, 2, 3]", 0, "expected '{'", NULL);
    BAD("{\"w\" 1}", 0, "expected ':'", NULL);
    BAD("{\"w\":{\"dtype\":\"F32\",,}}", 0, "header byte", NULL);
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8, "expected a string", NULL);
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, "after the header", NULL);
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "expected ','", NULL);
    BAD("{\"w", 0, "unterminated", NULL);
    BAD("{\"w\\q\":1}", 0, "bad escape", NULL);
    BAD("{\"w\xff\":1}", 0, "UTF-8", NULL);
    BAD("{\"w\\ud800\":1}", 0, "surrogate", NULL);
    BAD("{\"w\\u0000\":1}", 0, "\\u0000", NULL);
    BAD("{\"w\":[1]}", 0, "'w'", "expected '{'");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "'w'", "not an integer");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, "'w'", "leading zero");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "'w'", "expected an integer");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}", 8, "'w'",
        "does not fit");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "'w'",
        "more than 8");

    /* Structure. */
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "'w'", "past the end");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[100,104]}}", 8, "'w'", "[100, 104]");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap", "'a'");
    /* An empty tensor between two overlapping ones must not hide the overlap. */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, "overlap", "'b'");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate key 'w'", NULL);
    BAD("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'",
        "duplicate field");
    BAD("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "'w'", "unknown dtype 'F64'");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'w'", "needs 12 bytes");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,8]}}", 8, "'w'", "negative dim -2");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "'w'", "missing \"data_offsets\"");
    BAD("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'w'", "missing \"dtype\"");
    BAD("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "'w'", "missing \"shape\"");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "'w'", "end before begin");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "'w'", "has 1 entries, expected 2");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8, "'w'",
        "unknown field \"extra\"");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,8]}}", 8, "'w'",
        "overflow");
    BAD("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__", "'k'");
    BAD("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate __metadata__ key 'k'", NULL);
    BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate key '__metadata__'", NULL);
    BAD("{\"__metadata__\":[]}", 0, "expected '{'", NULL);

    /* Accepted corner cases: whitespace padding, empty tensors, escaped names, gaps. */
    size_t size;
    const char *good = " {\"a\\u00e9\" : {\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[4,5]}, "
                       "\"z\":{\"dtype\":\"BOOL\",\"shape\":[0,3],\"data_offsets\":[2,2]}}   ";
    unsigned char *b = make_file(good, strlen(good), 5, &size);
    int rc = st_open_memory(b, size, "good.st", &f, err);
    CHECKF(rc == 0, "%s", err);
    if (!rc) {
        CHECK(f.n_tensors == 2 && st_find(&f, "a\xc3\xa9") && st_find(&f, "a\xc3\xa9")->nbytes == 1);
        CHECK(st_find(&f, "z") && st_find(&f, "z")->numel == 0);
        CHECK(f.map == NULL);
        st_close(&f);
    }
    free(b);
}

/* ---- robustness ------------------------------------------------------------------ */

static uint64_t rng_state = 0x123456789abcdefULL;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_truncations_and_bit_flips(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/micro/weights/micro.safetensors", test_golden_dir());
    size_t size;
    unsigned char *orig = read_file(path, &size);
    TEST_NEED_GOLDEN(orig != NULL, path);
    char err[SAMC_ERRMSG];
    st_file f;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | orig[i];
    /* Every truncation must fail: the last tensor ends at the end of the file. Each
     * truncation gets its own exact-size copy so ASan sees any read past it. */
    int accepted = 0, tried = 0;
    for (size_t cut = 0; cut < size; cut += (cut < 8 + hlen + 64) ? 1 + cut / 512 : 4099) {
        unsigned char *b = malloc(cut + 1);
        memcpy(b, orig, cut);
        int rc = st_open_memory(b, cut, "trunc", &f, err);
        tried++;
        if (rc == 0) { accepted++; st_close(&f); }
        free(b);
    }
    CHECKF(accepted == 0, "%d of %d truncations accepted", accepted, tried);

    /* Random bit flips, mostly in the header: must never crash; when accepted, every
     * tensor must lie inside the buffer. */
    unsigned char *b = malloc(size);
    int n_ok = 0;
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(b, orig, size);
        int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = (rng() % 8 == 0) ? (size_t)(rng() % 8) : 8 + (size_t)(rng() % hlen);
            b[pos] ^= (unsigned char)(1u << (rng() % 8));
        }
        if (st_open_memory(b, size, "flip", &f, err) == 0) {
            n_ok++;
            for (int i = 0; i < f.n_tensors; i++) {
                const unsigned char *d = f.tensors[i].data;
                CHECK(d >= b && d + f.tensors[i].nbytes <= b + size);
            }
            st_close(&f);
        } else {
            CHECK(strstr(err, "flip") != NULL);
        }
    }
    fprintf(stderr, "  bit flips: %d of 1500 files still valid\n", n_ok);
    free(b);
    free(orig);
}

TEST_MAIN(TEST_CASE(test_round_trip), TEST_CASE(test_write_errors), TEST_CASE(test_f16_bf16),
          TEST_CASE(test_reproduce_micro), TEST_CASE(test_bad_inputs), TEST_CASE(test_truncations_and_bit_flips))
