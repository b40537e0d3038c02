/* tests/test_pt.c: the .pt reader (loader/pt.c) and sha256 (loader/sha256.c).
 *
 * - sha256 and CRC-32 on their standard test vectors;
 * - the golden micro.pt (torch 1.13.1) against micro.safetensors, tensor by tensor, bit
 *   for bit, and its sha256;
 * - synthetic checkpoints written here (tests/pt_writer.h) in the layouts of newer torch
 *   (other folder prefix, byteorder and .data/ records, zip64), with transposed and
 *   expanded views, storages shared at offsets, Half/BFloat16/Long storages, Parameters;
 * - complex storages (SAM3's RoPE tables): listed in `skipped` with name, dtype and
 *   shape, not loaded; the SAM3 golden micro.pt (torch 2.15) holds 4 of them;
 * - hostile and broken inputs: truncations, bit flips, forbidden globals, absurd sizes,
 *   deep nesting, bad offsets, compression, memo errors; each must fail cleanly. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/pt.h"
#include "tests/pt_writer.h"
#include "loader/safetensors.h"
#include "loader/sha256.h"
#include "tests/test.h"

/* sha256sum of shared/golden/micro/weights/micro.pt (a fixed file; README gives its md5). */
#define MICRO_PT_SHA256 "3255d583415feb20010280b96c795fd02a775c0a4a755e2c876e0f3622cf83ad"
#define MICRO_PT_SIZE 3777521
/* sha256 of the 3,000,017-byte message m[i] = (i*131 + i/512) mod 256, from Python's hashlib */
#define BIG_SHA256 "4142a710de91f906976f5a8c962e34bd4acbff2c84f81569453c9a35cfb4e999"

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    *size = (size_t)n;
    return b;
}

static const char *micro_path(const char *file) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/micro/weights/%s", test_golden_dir(), file);
    return buf;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {  /* splitmix64: a fixed seed makes every run identical */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- sha256, crc32 ------------------------------------------------------------------ */

static void sha256_vectors(const char *path) {
    /* FIPS 180-4 / NIST CAVP example messages */
    char hex[65];
    sha256_hex("", 0, hex);
    CHECKF(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "%s: '' -> %s", path, hex);
    sha256_hex("abc", 3, hex);
    CHECKF(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "abc -> %s", hex);
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m448, strlen(m448), hex);
    CHECKF(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "448-bit -> %s", hex);
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    sha256_hex(m896, strlen(m896), hex);
    CHECKF(!strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"), "896-bit -> %s", hex);
    /* one million 'a', fed in uneven pieces to exercise the block buffering */
    sha256_ctx c;
    sha256_init(&c);
    char a[1000];
    memset(a, 'a', sizeof a);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t k = step < left ? step : left;
        if (k > sizeof a) k = sizeof a;
        sha256_update(&c, a, k);
        left -= k;
        step = step * 7 % 997 + 1;
    }
    uint8_t d[32];
    sha256_final(&c, d);
    sha256_to_hex(d, hex);
    CHECKF(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "1M a -> %s", hex);
    /* 55, 56, 63, 64 bytes: the padding boundary cases, checked incremental vs one-shot */
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rng_next();
    for (size_t n = 0; n < sizeof buf; n++) {
        char h1[65], h2[65];
        sha256_hex(buf, n, h1);
        sha256_init(&c);
        sha256_update(&c, buf, n / 3);
        sha256_update(&c, buf + n / 3, n - n / 3);
        sha256_final(&c, d);
        sha256_to_hex(d, h2);
        CHECKF(!strcmp(h1, h2), "%s: split hash differs at n=%zu", path, n);
    }
    /* a long message through the multi-block path, against a digest from sha256sum */
    size_t big = 3 * 1000 * 1000 + 17;
    uint8_t *m = malloc(big);
    for (size_t i = 0; i < big; i++) m[i] = (uint8_t)(i * 131 + (i >> 9));
    sha256_hex(m, big, hex);
    CHECKF(!strcmp(hex, BIG_SHA256), "%s: 3 MB message -> %s", path, hex);
    free(m);
}

/* Both the portable code and, where the CPU has them, the x86 SHA instructions. */
static void test_sha256_vectors(void) {
    int accel = sha256_use_accel(1);
    if (accel) sha256_vectors("x86 SHA extensions");
    sha256_use_accel(0);
    sha256_vectors("portable");
    sha256_use_accel(1);
    printf("  sha256: portable%s\n", accel ? " and x86 SHA extensions" : " only (no SHA extensions on this CPU)");
}

static void test_crc32_vectors(void) {
    CHECKF(pt_crc32(0, "123456789", 9) == 0xCBF43926u, "crc32('123456789') = 0x%08x", pt_crc32(0, "123456789", 9));
    CHECK(pt_crc32(0, "", 0) == 0);
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rng_next();
    uint32_t whole = pt_crc32(0, buf, sizeof buf);
    for (size_t k = 0; k <= sizeof buf; k += 37)
        CHECKF(pt_crc32(pt_crc32(0, buf, k), buf + k, sizeof buf - k) == whole, "chained crc differs at %zu", k);
}

/* ---- the golden micro.pt ------------------------------------------------------------- */

static int same_tensor(const st_tensor *a, const st_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->numel != b->numel || a->nbytes != b->nbytes) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

static void test_golden_micro(void) {
    char pt_path[1024];
    snprintf(pt_path, sizeof pt_path, "%s", micro_path("micro.pt"));
    TEST_NEED_GOLDEN(access(pt_path, R_OK) == 0, pt_path);
    pt_checkpoint c;
    st_file f;
    char err[SAMC_ERRMSG] = "";
    int rc = pt_load_ex(pt_path, PT_VERIFY_STORAGE_CRC, &c, err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return;
    rc = st_open(micro_path("micro.safetensors"), &f, err);
    CHECKF(rc == 0, "%s", err);
    if (rc) { pt_free(&c); return; }
    CHECKF(c.n_tensors == 387 && f.n_tensors == 387, "pt %d tensors, safetensors %d (README: 387)", c.n_tensors, f.n_tensors);
    CHECKF(!strcmp(c.dict_key, "model"), "dict key '%s'", c.dict_key);
    CHECKF(!strcmp(c.sha256, MICRO_PT_SHA256), "sha256 %s", c.sha256);
    /* micro.pt's pickle starts with maskmem_tpos_enc, the first tensor of SAM2Base.state_dict() */
    CHECKF(!strcmp(c.tensors[0].name, "maskmem_tpos_enc"), "first tensor %s", c.tensors[0].name);
    int64_t values = 0;
    for (int i = 0; i < c.n_tensors; i++) {
        const st_tensor *t = &c.tensors[i], *s = st_find(&f, t->name);
        CHECKF(s != NULL, "pt tensor %s is not in micro.safetensors", t->name);
        if (!s) continue;
        CHECKF(same_tensor(t, s), "tensor %s differs from micro.safetensors", t->name);
        CHECKF(((uintptr_t)t->data % 4) == 0, "tensor %s data misaligned", t->name);
        values += t->numel;
    }
    CHECKF(values == 919370, "%lld values (README: 919,370)", (long long)values);
    st_close(&f);
    pt_free(&c);

    /* the same bytes from memory, and without the hash */
    size_t n;
    unsigned char *buf = read_file(pt_path, &n);
    CHECK(buf && n == MICRO_PT_SIZE);
    if (!buf) return;
    rc = pt_load_memory_ex(buf, n, "micro.pt", PT_SKIP_SHA256, &c, err);
    CHECKF(rc == 0, "%s", err);
    CHECK(c.sha256[0] == 0);
    pt_free(&c);
    char hex[65];
    sha256_hex(buf, n, hex);
    CHECK(!strcmp(hex, MICRO_PT_SHA256));
    free(buf);
}

/* ---- synthetic checkpoints ---------------------------------------------------------- */

/* The storages and views of the synthetic checkpoint, and what each view must read. */
static float s0[12], s1[20], s4[1], s7[2];
static uint16_t s2[6], s3[4];
static int64_t s5[3];

static void fill_storages(void) {
    for (int i = 0; i < 12; i++) s0[i] = (float)i + 0.5f;
    for (int i = 0; i < 20; i++) s1[i] = 100.0f + (float)i;
    for (int i = 0; i < 6; i++) s2[i] = (uint16_t)(0x3c00 + i);   /* half 1.0, 1.0009765625, ... */
    for (int i = 0; i < 4; i++) s3[i] = (uint16_t)(0x3f80 + 3 * i); /* bfloat16 near 1.0 */
    s4[0] = -7.25f;
    s5[0] = -1; s5[1] = INT64_MAX; s5[2] = 42;
    s7[0] = 3.0f; s7[1] = -4.0f;
}

#define N_SYN 11
static const char *syn_names[N_SYN] = { "w", "w_t", "a", "b", "c", "h", "bf", "s", "idx", "e", "x" };

static void syn_tensors(pk_tensor_desc *t, int proto4) {
    memset(t, 0, N_SYN * sizeof *t);
    t[0] = (pk_tensor_desc){ "FloatStorage", "0", 12, 0, 2, { 3, 4 }, { 4, 1 }, 0, 0, 0 };
    t[1] = (pk_tensor_desc){ "FloatStorage", "0", 12, 0, 2, { 4, 3 }, { 1, 4 }, 0, 0, 0 };     /* transposed */
    t[2] = (pk_tensor_desc){ "FloatStorage", "1", 20, 2, 1, { 5 }, { 1 }, 0, 0, 0 };            /* shared, offset 2 */
    t[3] = (pk_tensor_desc){ "FloatStorage", "1", 20, 10, 2, { 2, 3 }, { 3, 1 }, 0, 0, 0 };     /* shared, offset 10 */
    t[4] = (pk_tensor_desc){ "FloatStorage", "1", 20, 1, 2, { 2, 2 }, { 1, 5 }, 0, 0, 0 };      /* strided + offset */
    t[5] = (pk_tensor_desc){ "HalfStorage", "2", 6, 0, 2, { 2, 3 }, { 3, 1 }, 0, 0, 0 };
    t[6] = (pk_tensor_desc){ "BFloat16Storage", "3", 4, 0, 1, { 4 }, { 1 }, 1, 0, 0 };
    t[7] = (pk_tensor_desc){ "FloatStorage", "4", 1, 0, 0, { 0 }, { 0 }, 2, 1, 0 };
    t[8] = (pk_tensor_desc){ "LongStorage", "5", 3, 0, 1, { 3 }, { 1 }, 0, 0, 0 };
    t[9] = (pk_tensor_desc){ "FloatStorage", "6", 0, 0, 2, { 2, 0 }, { 1, 1 }, 0, 0, 0 };      /* empty */
    t[10] = (pk_tensor_desc){ "FloatStorage", "7", 2, 0, 2, { 3, 2 }, { 0, 1 }, 0, 0, 0 };     /* expanded */
    for (int i = 0; i < N_SYN; i++) t[i].proto4 = proto4;
}

static const pw_storage syn_storages[] = {
    { "0", s0, sizeof s0 }, { "1", s1, sizeof s1 }, { "2", s2, sizeof s2 }, { "3", s3, sizeof s3 },
    { "4", s4, sizeof s4 }, { "5", s5, sizeof s5 }, { "6", "", 0 }, { "7", s7, sizeof s7 },
};
#define N_SYN_STORAGES ((int)(sizeof syn_storages / sizeof syn_storages[0]))

static void build_synthetic(pw_buf *out, const pw_ckpt_opts *o, int proto4) {
    fill_storages();
    pk_tensor_desc t[N_SYN];
    syn_tensors(t, proto4);
    pw_buf pk = { 0 };
    pw_state_dict_pickle(&pk, o, syn_names, t, N_SYN);
    pw_checkpoint_zip(out, o, &pk, syn_storages, N_SYN_STORAGES);
    pw_free(&pk);
}

static void check_synthetic(const pt_checkpoint *c, const char *what) {
    CHECKF(c->n_tensors == N_SYN, "%s: %d tensors", what, c->n_tensors);
    if (c->n_tensors != N_SYN) return;
    for (int i = 0; i < N_SYN; i++) CHECKF(!strcmp(c->tensors[i].name, syn_names[i]), "%s: tensor %d is %s", what, i, c->tensors[i].name);
    const st_tensor *t = c->tensors;
    float wt[12], b[6], cc[4], x[6];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) wt[i * 3 + j] = s0[j * 4 + i];
    for (int i = 0; i < 6; i++) b[i] = s1[10 + i];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) cc[i * 2 + j] = s1[1 + i + 5 * j];
    for (int i = 0; i < 6; i++) x[i] = s7[i % 2];
    struct { st_dtype dt; int nd; int64_t s0, s1; const void *want; size_t nb; } exp[N_SYN] = {
        { ST_F32, 2, 3, 4, s0, 48 }, { ST_F32, 2, 4, 3, wt, 48 }, { ST_F32, 1, 5, 0, s1 + 2, 20 },
        { ST_F32, 2, 2, 3, b, 24 }, { ST_F32, 2, 2, 2, cc, 16 }, { ST_F16, 2, 2, 3, s2, 12 },
        { ST_BF16, 1, 4, 0, s3, 8 }, { ST_F32, 0, 0, 0, s4, 4 }, { ST_I64, 1, 3, 0, s5, 24 },
        { ST_F32, 2, 2, 0, NULL, 0 }, { ST_F32, 2, 3, 2, x, 24 },
    };
    for (int i = 0; i < N_SYN; i++) {
        int ok = t[i].dtype == exp[i].dt && t[i].ndim == exp[i].nd && t[i].nbytes == exp[i].nb &&
                 (exp[i].nd < 1 || t[i].shape[0] == exp[i].s0) && (exp[i].nd < 2 || t[i].shape[1] == exp[i].s1) &&
                 (exp[i].nb == 0 || memcmp(t[i].data, exp[i].want, exp[i].nb) == 0) &&
                 t[i].numel * (int64_t)st_dtype_size(t[i].dtype) == (int64_t)t[i].nbytes;
        CHECKF(ok, "%s: tensor %s: dtype %d ndim %d nbytes %zu or data differ", what, t[i].name, t[i].dtype, t[i].ndim,
               t[i].nbytes);
        if (t[i].nbytes)
            CHECKF((uintptr_t)t[i].data % st_dtype_size(t[i].dtype) == 0, "%s: tensor %s misaligned", what, t[i].name);
    }
}

static void test_synthetic_layouts(void) {
    struct { const char *what; pw_ckpt_opts o; int proto4; } cases[] = {
        { "torch-1.13 layout", { "micro", 0, 0, 0, { 1, 1, 1, 0, 0 } }, 0 },
        { "newer torch, archive/, zip64 fields", { "archive", 1, 0, 1, { 1, 1, 1, 1, 0 } }, 0 },
        { "protocol-4 spelling, bare state dict", { "sam2.1_hiera_tiny", 1, 1, 0, { 1, 0, 1, 0, 0 } }, 1 },
        { "plain zip: no alignment, no zip64", { "x", 0, 0, 1, { 0, 0, 0, 0, 0 } }, 0 },
        { "zip64 fields without a zip64 end record", { "archive", 0, 0, 0, { 0, 1, 0, 1, 0 } }, 1 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        pw_buf z = { 0 };
        build_synthetic(&z, &cases[k].o, cases[k].proto4);
        pt_checkpoint c;
        char err[SAMC_ERRMSG] = "";
        int rc = pt_load_memory_ex(z.p, z.n, cases[k].what, PT_VERIFY_STORAGE_CRC, &c, err);
        CHECKF(rc == 0, "%s: %s", cases[k].what, err);
        if (rc == 0) {
            check_synthetic(&c, cases[k].what);
            CHECKF(!strcmp(c.dict_key, cases[k].o.no_model_key ? "" : "model"), "%s: dict key '%s'", cases[k].what, c.dict_key);
            char hex[65];
            sha256_hex(z.p, z.n, hex);
            CHECK(!strcmp(hex, c.sha256));
            pt_free(&c);
        }
        pw_free(&z);
    }
}

static void test_load_from_file(void) {
    char path[] = "/tmp/samc_test_pt_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    pw_buf z = { 0 };
    pw_ckpt_opts o = { "archive", 1, 0, 0, { 1, 1, 1, 0, 0 } };
    build_synthetic(&z, &o, 0);
    CHECK(write(fd, z.p, z.n) == (ssize_t)z.n);
    close(fd);
    pt_checkpoint c;
    char err[SAMC_ERRMSG] = "";
    int rc = pt_load(path, &c, err);
    CHECKF(rc == 0, "%s", err);
    if (rc == 0) {
        check_synthetic(&c, "from file");
        pt_free(&c);
    }
    /* an empty file, a directory, a missing file */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    rc = pt_load(path, &c, err);
    CHECKF(rc == -1 && strstr(err, "empty"), "empty file: %d %s", rc, err);
    CHECK(c.tensors == NULL && c.n_tensors == 0 && c.priv == NULL);
    unlink(path);
    rc = pt_load(path, &c, err);
    CHECKF(rc == -1 && strstr(err, "cannot open"), "missing file: %s", err);
    rc = pt_load("/tmp", &c, err);
    CHECKF(rc == -1 && strstr(err, "not a regular file"), "directory: %s", err);
    pw_free(&z);
}

/* ---- bad inputs ---------------------------------------------------------------------- */

/* Loads a buffer that must be refused; the message must contain `want` (if given). */
static int expect_fail(const void *buf, size_t n, unsigned flags, const char *want, const char *what) {
    pt_checkpoint c;
    char err[SAMC_ERRMSG];
    strcpy(err, "(untouched)");
    int rc = pt_load_memory_ex(buf, n, what, flags, &c, err);
    int ok = rc == -1 && strcmp(err, "(untouched)") != 0 && err[0] && (!want || strstr(err, want)) &&
             c.tensors == NULL && c.priv == NULL && c.n_tensors == 0;
    CHECKF(ok, "%s: rc %d, message '%s' (want '%s')", what, rc, err, want ? want : "any");
    if (rc == 0) pt_free(&c);
    return ok;
}

/* A checkpoint whose data.pkl is exactly the given pickle, with storages "0" (4 floats)
 * and "big" (a 16-byte record). */
static void zip_pickle(pw_buf *out, const pw_buf *pk, unsigned method_pkl) {
    static const float four[4] = { 1, 2, 3, 4 };
    pw_entry e[4] = {
        { "archive/data.pkl", pk->p, pk->n, method_pkl },
        { "archive/data/0", four, sizeof four, 0 },
        { "archive/data/big", four, sizeof four, 0 },
        { "archive/version", "3\n", 2, 0 },
    };
    pw_zip_opts o = { 1, 1, 1, 0, 0 };
    pw_zip(out, e, 4, &o);
}

/* A single-tensor state dict around an arbitrary tensor description. */
static void one_tensor_pickle(pw_buf *pk, const pk_tensor_desc *t) {
    pw_ckpt_opts o = { 0 };
    const char *name = "t";
    pw_state_dict_pickle(pk, &o, &name, t, 1);
}

static void fail_with_pickle(const pw_buf *pk, const char *want, const char *what) {
    pw_buf z = { 0 };
    zip_pickle(&z, pk, 0);
    expect_fail(z.p, z.n, 0, want, what);
    pw_free(&z);
}

static void test_forbidden_globals(void) {
    struct { const char *mod, *name, *want; int stack; } g[] = {
        { "posix", "system", "posix.system", 0 }, { "os", "system", "os.system", 0 },
        { "builtins", "eval", "builtins.eval", 1 }, { "subprocess", "Popen", "subprocess.Popen", 1 },
        { "torch", "load", "torch.load", 0 }, { "torch._utils", "_rebuild_tensor", "torch._utils._rebuild_tensor", 0 },
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        pw_buf pk = { 0 };
        pk_proto(&pk, 2);
        if (g[i].stack) { pk_proto(&pk, 4); pk_stack_global(&pk, g[i].mod, g[i].name); }
        else pk_global(&pk, g[i].mod, g[i].name);
        pk_str(&pk, "touch /tmp/samc_pwned");
        pk_op(&pk, 0x85);
        pk_op(&pk, 'R');
        pk_op(&pk, '.');
        fail_with_pickle(&pk, g[i].want, g[i].want);
        pw_free(&pk);
    }
    /* the evil call hidden as a value inside an otherwise normal state dict */
    pw_buf pk = { 0 };
    pk_proto(&pk, 2);
    pk_global(&pk, "collections", "OrderedDict");
    pk_op(&pk, ')'); pk_op(&pk, 'R'); pk_op(&pk, '(');
    pk_str(&pk, "weight");
    pk_global(&pk, "posix", "system");
    pk_str(&pk, "id"); pk_op(&pk, 0x85); pk_op(&pk, 'R');
    pk_op(&pk, 'u'); pk_op(&pk, '.');
    fail_with_pickle(&pk, "posix.system", "nested posix.system");
    CHECK(access("/tmp/samc_pwned", F_OK) != 0);
    pw_free(&pk);
}

static void test_absurd_sizes(void) {
    struct { pk_tensor_desc t; const char *want, *what; } c[] = {
        { { "FloatStorage", "0", (int64_t)1 << 62, 0, 1, { 4 }, { 1 }, 0, 0, 0 }, "declares", "storage numel 2^62" },
        { { "FloatStorage", "big", 100, 0, 1, { 4 }, { 1 }, 0, 0, 0 }, "declares", "storage larger than its record" },
        { { "FloatStorage", "0", 4, 0, 2, { (int64_t)1 << 20, (int64_t)1 << 20 }, { 1, 1 }, 0, 0, 0 }, "reaches element", "view past the storage" },
        { { "FloatStorage", "0", 4, 0, 3, { (int64_t)1 << 40, (int64_t)1 << 40, 4 }, { 0, 0, 1 }, 0, 0, 0 }, "too large", "numel 2^82" },
        { { "FloatStorage", "0", 4, 0, 2, { (int64_t)1 << 30, 4 }, { 0, 1 }, 0, 0, 0 }, "densifying", "stride-0 expansion beyond the budget" },
        { { "FloatStorage", "0", 4, 3, 1, { 2 }, { 1 }, 0, 0, 0 }, "reaches element 4", "offset past the end" },
        { { "FloatStorage", "0", 4, 0, 9, { 1, 1, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1, 1, 1 }, 0, 0, 0 }, "at most 8", "9 dims" },
        { { "FloatStorage", "nope", 4, 0, 1, { 4 }, { 1 }, 0, 0, 0 }, "no record 'archive/data/nope'", "missing storage record" },
        { { "DoubleStorage", "0", 2, 0, 1, { 2 }, { 1 }, 0, 0, 0 }, "float64", "double tensor" },
        { { "FloatStorage", "0", -1, 0, 1, { 4 }, { 1 }, 0, 0, 0 }, "numel >= 0", "negative numel" },
        { { "FloatStorage", "0", 4, 0, 1, { -4 }, { 1 }, 0, 0, 0 }, "int >= 0", "negative size" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        pw_buf pk = { 0 };
        one_tensor_pickle(&pk, &c[i].t);
        fail_with_pickle(&pk, c[i].want, c[i].what);
        pw_free(&pk);
    }
}

static void test_bad_pickles(void) {
    pw_buf pk = { 0 };
    /* 100000 nested MARK / EMPTY_LIST */
    pk_proto(&pk, 2);
    for (int i = 0; i < 100000; i++) { pk_op(&pk, '('); pk_op(&pk, ']'); }
    pk_op(&pk, '.');
    fail_with_pickle(&pk, "nested MARK", "100000 MARKs");
    pw_free(&pk);
    /* a list nested 100000 deep (no marks): the interpreter must not recurse */
    pk_proto(&pk, 2);
    for (int i = 0; i < 100000; i++) pk_op(&pk, ']');
    for (int i = 0; i < 99999; i++) pk_op(&pk, 'a');
    pk_op(&pk, '.');
    fail_with_pickle(&pk, "not a dict", "list nested 100000 deep");
    pw_free(&pk);
    /* a list appended to itself: a cycle */
    pk_proto(&pk, 2);
    pk_op(&pk, ']'); pk_binput(&pk, 0); pk_binget(&pk, 0); pk_op(&pk, 'a'); pk_op(&pk, '.');
    fail_with_pickle(&pk, "not a dict", "self-containing list");
    pw_free(&pk);
#define RAW(lit) lit, sizeof(lit) - 1
    struct { const char *bytes; size_t n; const char *want, *what; } raw[] = {
        { RAW("\x80\x02h\x05."), "memo index 5", "BINGET of an unset memo slot" },
        { RAW("\x80\x02}r\xff\xff\xff\xff."), "memo index 4294967295", "LONG_BINPUT past the memo limit" },
        { RAW("\x80\x02j\x00\x00\x00\x10."), "memo index", "LONG_BINGET out of range" },
        { RAW("\x80\x02}"), "without STOP", "no STOP" },
        { RAW("\x80\x02X\xff\xff\xff\x7f"), "longer than", "string length 2^31" },
        { RAW("\x80\x02X\x10\x00\x00\x00" "ab"), "past the end", "string past the end" },
        { RAW("\x80\x02i__main__\nX\n."), "opcode 'i'", "INST opcode" },
        { RAW("\x80\x07}."), "protocol 7", "protocol 7" },
        { RAW("\x80\x02."), "underflow", "STOP on an empty stack" },
        { RAW("\x80\x02t."), "no MARK", "TUPLE without MARK" },
        { RAW("\x80\x02}}."), "left on the stack", "two results" },
        { RAW("\x80\x02]K\x01K\x02s."), "not a dict", "SETITEM on a list" },
        { RAW("\x80\x02" "cposix\nsys"), "two newline", "GLOBAL cut short" },
        { RAW("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09."), "64 bits", "LONG1 of 9 bytes" },
        { RAW("\x80\x02}X\x05\x00\x00\x00" "modelK\x01s."), "entry 'model' is a int", "model is an int" },
        { RAW("\x80\x02}X\x01\x00\x00\x00" "aK\x01s."), "entry 'a' is a int", "bare dict with an int" },
        { RAW("\x80\x02}."), "empty", "empty state dict" },
        { RAW("\x80\x02}(X\x01\x00\x00\x00" "aK\x01tQ."), "persistent id", "bad persistent id" },
        { RAW("\x80\x02}.junk"), "after STOP", "bytes after STOP" },
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        pw_buf p = { 0 };
        pw_put(&p, raw[i].bytes, raw[i].n);
        fail_with_pickle(&p, raw[i].want, raw[i].what);
        pw_free(&p);
    }
    /* one tensor object listed under 140000 keys through the memo */
    {
        pk_tensor_desc one = { "FloatStorage", "0", 4, 0, 1, { 4 }, { 1 }, 0, 0, 0 };
        pk_proto(&pk, 2);
        pk_global(&pk, "collections", "OrderedDict");
        pk_op(&pk, ')'); pk_op(&pk, 'R');
        pk_tensor(&pk, &one);
        pk_binput(&pk, 1);
        pk_op(&pk, '0');   /* POP */
        pk_str(&pk, "k");
        pk_binput(&pk, 2);
        pk_op(&pk, '0');
        pk_op(&pk, '(');
        for (int i = 0; i < 140000; i++) { pk_binget(&pk, 2); pk_binget(&pk, 1); }
        pk_op(&pk, 'u'); pk_op(&pk, '.');
        fail_with_pickle(&pk, "more than", "one tensor under 140000 keys");
        pw_free(&pk);
    }
    /* the same tensor name twice */
    fill_storages();
    pk_tensor_desc t[2] = { { "FloatStorage", "0", 4, 0, 1, { 4 }, { 1 }, 0, 0, 0 }, { "FloatStorage", "0", 4, 0, 1, { 2 }, { 1 }, 0, 0, 0 } };
    const char *names[2] = { "dup", "dup" };
    pw_ckpt_opts o = { 0 };
    pw_state_dict_pickle(&pk, &o, names, t, 2);
    fail_with_pickle(&pk, "appears twice", "duplicate tensor names");
    pw_free(&pk);
}

static void test_bad_containers(void) {
    pw_buf pk = { 0 }, z = { 0 };
    pk_tensor_desc t = { "FloatStorage", "0", 4, 0, 1, { 4 }, { 1 }, 0, 0, 0 };
    one_tensor_pickle(&pk, &t);
    /* sanity: this checkpoint itself loads */
    zip_pickle(&z, &pk, 0);
    pt_checkpoint c;
    char err[SAMC_ERRMSG];
    int rc = pt_load_memory(z.p, z.n, "ok", &c, err);
    CHECKF(rc == 0 && c.n_tensors == 1 && !strcmp(c.dict_key, "model"), "base case: %s", err);
    if (rc == 0) pt_free(&c);
    pw_free(&z);

    /* deflated data.pkl */
    zip_pickle(&z, &pk, 8);
    expect_fail(z.p, z.n, 0, "unsupported compression method 8", "deflated entry");
    pw_free(&z);
    /* CRC mismatch of data.pkl; and of a storage only when asked to check storages */
    pw_entry e[3] = { { "archive/data.pkl", pk.p, pk.n, 0 }, { "archive/data/0", "0123456789abcdef", 16, 0 },
                      { "archive/version", "3\n", 2, 0 } };
    pw_zip_opts zo = { 1, 1, 1, 0, 1 };
    pw_zip(&z, e, 3, &zo);
    expect_fail(z.p, z.n, 0, "CRC-32 mismatch", "bad data.pkl CRC");
    pw_free(&z);
    zo.bad_crc_entry = 2;
    pw_zip(&z, e, 3, &zo);
    rc = pt_load_memory(z.p, z.n, "storage crc unchecked", &c, err);
    CHECKF(rc == 0, "storage CRC is not checked by default: %s", err);
    if (rc == 0) pt_free(&c);
    expect_fail(z.p, z.n, PT_VERIFY_STORAGE_CRC, "archive/data/0': CRC-32 mismatch", "bad storage CRC");
    pw_free(&z);
    /* big-endian byteorder, a bad version record */
    pw_entry be[3] = { { "archive/data.pkl", pk.p, pk.n, 0 }, { "archive/data/0", "0123456789abcdef", 16, 0 },
                       { "archive/byteorder", "big", 3, 0 } };
    zo.bad_crc_entry = 0;
    pw_zip(&z, be, 3, &zo);
    expect_fail(z.p, z.n, 0, "little-endian", "big-endian checkpoint");
    pw_free(&z);
    be[2] = (pw_entry){ "archive/version", "three", 5, 0 };
    pw_zip(&z, be, 3, &zo);
    expect_fail(z.p, z.n, 0, "version", "non-numeric version");
    pw_free(&z);
    /* no data.pkl; two data.pkl folders; a duplicate entry */
    pw_entry nd[2] = { { "archive/pickle.pkl", pk.p, pk.n, 0 }, { "archive/data/0", "0123456789abcdef", 16, 0 } };
    pw_zip(&z, nd, 2, &zo);
    expect_fail(z.p, z.n, 0, "no <folder>/data.pkl", "zip without data.pkl");
    pw_free(&z);
    pw_entry two[2] = { { "a/data.pkl", pk.p, pk.n, 0 }, { "b/data.pkl", pk.p, pk.n, 0 } };
    pw_zip(&z, two, 2, &zo);
    expect_fail(z.p, z.n, 0, "two pickles", "two data.pkl");
    pw_free(&z);
    pw_entry dup[2] = { { "a/data.pkl", pk.p, pk.n, 0 }, { "a/data.pkl", pk.p, pk.n, 0 } };
    pw_zip(&z, dup, 2, &zo);
    expect_fail(z.p, z.n, 0, "duplicate zip entry", "duplicate entry");
    pw_free(&z);

    /* a storage entry whose size runs past the end of the file: patch the central size */
    zo = (pw_zip_opts){ 1, 1, 1, 1, 0 };   /* zip64 fields: the sizes sit in the extra field */
    pw_zip(&z, e, 3, &zo);
    {
        /* find the central header of archive/data/0 and enlarge both 64-bit sizes */
        size_t at = 0;
        for (size_t i = 0; i + 46 < z.n; i++)
            if (!memcmp(z.p + i, "PK\x01\x02", 4) && !memcmp(z.p + i + 46, "archive/data/0", 14)) at = i;
        CHECK(at != 0);
        uint64_t huge = (uint64_t)z.n * 4;
        size_t x = at + 46 + 14 + 4;
        for (int k = 0; k < 8; k++) { z.p[x + k] = (uint8_t)(huge >> (8 * k)); z.p[x + 8 + k] = (uint8_t)(huge >> (8 * k)); }
        expect_fail(z.p, z.n, 0, "runs past the end", "storage past the end of the file");
        /* a local-header offset of 2^64-1 */
        for (int k = 0; k < 8; k++) z.p[x + 16 + k] = 0xff;
        expect_fail(z.p, z.n, 0, "no local header", "local header offset 2^64-1");
    }
    pw_free(&z);
    /* zip64 locator pointing nowhere; central directory offset past the end */
    zo = (pw_zip_opts){ 1, 1, 1, 0, 0 };
    pw_zip(&z, e, 3, &zo);
    size_t eocd = z.n - 22;
    memset(z.p + eocd - 20 + 8, 0xee, 8);
    expect_fail(z.p, z.n, 0, "no zip64 end record", "bad zip64 locator");
    pw_free(&z);
    zo = (pw_zip_opts){ 0, 0, 0, 0, 0 };
    pw_zip(&z, e, 3, &zo);
    eocd = z.n - 22;
    z.p[eocd + 19] = 0x7f;
    expect_fail(z.p, z.n, 0, "outside the archive", "central directory past the end");
    z.p[eocd + 19] = 0;
    z.p[eocd + 8] = z.p[eocd + 10] = 0xff;   /* 255 entries in a tiny directory */
    expect_fail(z.p, z.n, 0, "claims", "too many entries");
    pw_free(&z);

    /* empty and non-zip inputs */
    expect_fail("", 0, 0, "empty file", "empty buffer");
    const char *text = "this is just a text file, certainly not a torch checkpoint\n";
    expect_fail(text, strlen(text), 0, "not a zip archive", "text file");
    expect_fail("\x80\x02}q\x00.", 6, 0, "legacy", "legacy pickle checkpoint");
    static const char legacy[64] = "\x80\x02\x8a\x0a" "l\xfc\x9c" "F\xf9 j\xa8" "P\x19.";  /* torch < 1.6 magic number */
    expect_fail(legacy, sizeof legacy, 0, "legacy", "legacy torch.save file");
    expect_fail("PK\x03\x04", 4, 0, "not a zip archive", "4-byte zip header");
    pw_free(&pk);
}

/* Truncations and bit flips of the real micro.pt. Buffers are laid at the very end of an
 * allocation of exactly the file size, so a read one byte too far trips ASan. */
static void test_micro_truncated(void) {
    size_t n;
    unsigned char *orig = read_file(micro_path("micro.pt"), &n);
    TEST_NEED_GOLDEN(orig != NULL, micro_path("micro.pt"));
    unsigned char *buf = malloc(n);
    int tried = 0, failed_ok = 0;
    /* every 997 bytes; every 61 bytes through the central directory (the last ~23 KB);
     * every byte of the last 128 (EOCD, zip64 locator and end record) */
    for (size_t k = 0; k < n; k += k + 23552 < n ? 997 : k + 128 < n ? 61 : 1) {
        memcpy(buf + (n - k), orig, k);
        char what[64];
        snprintf(what, sizeof what, "micro.pt cut at %zu", k);
        tried++;
        failed_ok += expect_fail(buf + (n - k), k, PT_SKIP_SHA256, NULL, what);
    }
    printf("  truncations: %d of %d refused cleanly\n", failed_ok, tried);
    free(buf);
    free(orig);
}

static void test_micro_bit_flips(void) {
    size_t n;
    unsigned char *orig = read_file(micro_path("micro.pt"), &n);
    TEST_NEED_GOLDEN(orig != NULL, micro_path("micro.pt"));
    pt_checkpoint ref;
    char err[SAMC_ERRMSG];
    int rc = pt_load_memory_ex(orig, n, "micro.pt", PT_SKIP_SHA256, &ref, err);
    CHECKF(rc == 0, "%s", err);
    if (rc) { free(orig); return; }
    unsigned char *buf = malloc(n);
    memcpy(buf, orig, n);
    /* data.pkl is bytes [0, ~51 KB), the central directory and end records the last ~23 KB;
     * a third of the flips land in each of those, a third anywhere. */
    size_t pkl_end = 50947, cd_start = 3754194;
    int refused = 0, same = 0;
    rng_state = 12345;
    for (int i = 0; i < 400; i++) {
        uint64_t r = rng_next();
        size_t pos = i % 3 == 0 ? r % pkl_end : i % 3 == 1 ? cd_start + r % (n - cd_start) : r % n;
        uint8_t bit = (uint8_t)(1u << ((r >> 40) % 8));
        buf[pos] ^= bit;
        pt_checkpoint c;
        strcpy(err, "(untouched)");
        /* With storage CRCs checked, a flip is either refused or lands in bytes that do not
         * change any tensor (zip metadata torch and samc ignore). */
        rc = pt_load_memory_ex(buf, n, "flipped micro.pt", PT_VERIFY_STORAGE_CRC | PT_SKIP_SHA256, &c, err);
        if (rc != 0) {
            CHECKF(err[0] && strcmp(err, "(untouched)") && c.tensors == NULL, "flip at %zu: no message", pos);
            refused++;
        } else {
            int ok = c.n_tensors == ref.n_tensors;
            for (int k = 0; ok && k < c.n_tensors; k++)
                ok = !strcmp(c.tensors[k].name, ref.tensors[k].name) && same_tensor(&c.tensors[k], &ref.tensors[k]);
            CHECKF(ok, "flip of bit 0x%02x at byte %zu loaded with different tensors", bit, pos);
            same++;
            pt_free(&c);
        }
        /* without the storage CRCs it must still be memory-safe */
        if (pt_load_memory_ex(buf, n, "flipped micro.pt", PT_SKIP_SHA256, &c, err) == 0) pt_free(&c);
        buf[pos] ^= bit;
    }
    printf("  bit flips: %d refused, %d harmless (ignored zip metadata)\n", refused, same);
    CHECK(refused > 300);
    pt_free(&ref);
    free(buf);
    free(orig);
}

/* ComplexFloatStorage / ComplexDoubleStorage tensors are passed over by name: listed in
 * `skipped` (state-dict order), their records still bounds-checked; a name given to a
 * complex and a float tensor is a duplicate. */
static void test_complex_storages(void) {
    static float data[16];
    pk_tensor_desc td[3] = { { "ComplexFloatStorage", "0", 4, 0, 2, { 2, 2 }, { 2, 1 }, 0, 0, 0 },
                             { "FloatStorage", "1", 4, 0, 1, { 4 }, { 1 }, 0, 0, 0 },
                             { "ComplexDoubleStorage", "2", 1, 0, 1, { 1 }, { 1 }, 0, 0, 0 } };
    const char *names[3] = { "blocks.0.attn.freqs_cis", "blocks.0.norm1.bias", "rope64" };
    pw_ckpt_opts o = { "archive", 1, 0, 0, { 1, 0, 0, 0, 0 } };
    pw_storage st[3] = { { "0", data, 32 }, { "1", data, 16 }, { "2", data, 16 } };
    char err[SAMC_ERRMSG];
    for (int k = 0; k < 3; k++) {   /* 0 fine, 1 complex storage too short, 2 duplicate name */
        if (k == 1) st[0].n = 24;
        if (k == 2) { st[0].n = 32; names[2] = names[1]; }
        pw_buf pk = { 0 }, z = { 0 };
        pw_state_dict_pickle(&pk, &o, names, td, 3);
        pw_checkpoint_zip(&z, &o, &pk, st, 3);
        pt_checkpoint c;
        int rc = pt_load_memory(z.p, z.n, "complex.pt", &c, err);
        if (k == 0) {
            CHECKF(rc == 0, "%s", err);
            CHECK(rc == 0 && c.n_tensors == 1 && !strcmp(c.tensors[0].name, names[1]) && c.n_skipped == 2);
            CHECK(rc == 0 && c.n_skipped == 2 && !strcmp(c.skipped[0].name, names[0]) &&
                  !strcmp(c.skipped[0].torch_dtype, "complex64") && c.skipped[0].ndim == 2 && c.skipped[0].shape[0] == 2 &&
                  !strcmp(c.skipped[1].torch_dtype, "complex128") && c.skipped[1].shape[0] == 1);
            if (rc == 0) pt_free(&c);
        } else {
            CHECKF(rc == -1 && strstr(err, k == 1 ? "declares 4 complex64 elements" : "appears twice"), "case %d: %s", k, err);
        }
        pw_free(&pk);
        pw_free(&z);
    }
    /* the SAM3 golden checkpoint: 316 float tensors, 4 complex64 RoPE tables */
    char path[1024];
    snprintf(path, sizeof path, "%s/sam3/micro/weights/micro.pt", test_golden_dir());
    TEST_NEED_GOLDEN(access(path, R_OK) == 0, path);
    pt_checkpoint c;
    CHECKF(pt_load_ex(path, PT_VERIFY_STORAGE_CRC, &c, err) == 0, "%s", err);
    if (!c.tensors) return;
    int rope = 0;
    for (int i = 0; i < c.n_skipped; i++)
        rope += strstr(c.skipped[i].name, ".attn.freqs_cis") && !strcmp(c.skipped[i].torch_dtype, "complex64") &&
                c.skipped[i].ndim == 2 && c.skipped[i].shape[1] == 16 &&
                (c.skipped[i].shape[0] == 36 || c.skipped[i].shape[0] == 324);
    CHECKF(c.n_tensors == 316 && c.n_skipped == 4 && rope == 4, "%d tensors, %d skipped, %d RoPE tables", c.n_tensors,
           c.n_skipped, rope);
    pt_free(&c);
}

TEST_MAIN(TEST_CASE(test_sha256_vectors), TEST_CASE(test_crc32_vectors), TEST_CASE(test_golden_micro),
          TEST_CASE(test_synthetic_layouts), TEST_CASE(test_load_from_file), TEST_CASE(test_forbidden_globals),
          TEST_CASE(test_absurd_sizes), TEST_CASE(test_bad_pickles), TEST_CASE(test_bad_containers),
          TEST_CASE(test_micro_truncated), TEST_CASE(test_micro_bit_flips), TEST_CASE(test_complex_storages))
