/* tests/test_cuda_ops.c: every op of the cuda backend against cpu_ref (the idea of
 * ggml's test-backend-ops and llm.c's dev/cuda): random inputs from a fixed seed,
 * uploaded, run on the device, downloaded and compared element by element with
 * |gpu - ref| <= atol + rtol*|ref|, on SAM2.1 shapes (tiny and large models) and odd
 * ones. One line per op and shape: OK / NOT OK, the max abs error, where, both values.
 *
 * Outputs are poisoned with NaN before each run, so an element the kernel never writes
 * fails. Large problems run whole on the device and the reference on a sample of rows /
 * channels / queries (the reference ops have no coupling between rows).
 *
 * Without a CUDA build, a device or a driver every case is skipped with the reason.
 * SAMC_CUDA_BENCH=1 also times the large shapes with CUDA events (median of 20 runs
 * after 3 warm-ups) and prints TFLOP/s or GB/s.
 *
 * bf16 / fp16 (set_precision): linear and matmul with registered weights against cpu_ref
 * on the same inputs rounded to 16 bits on the host (fp32-accumulation tolerance: this
 * checks the conversion, the operands chosen and the chunking) and against cpu_ref on
 * the fp32 inputs (a tolerance from the 16-bit rounding: the size of the error). */
#include "kernels/ops.h"
#include "tests/test.h"
#define TEST_RNG_SEED 0x2545f4914f6cdd1dull
#include "tests/test_data.h"
#include "tests/test_lowp.h"
#include <stdarg.h>
#include <stdint.h>
#ifdef SAMC_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

/* ------------------------------------------------------------------ setup */

static samc_ops *g_gpu;
static const samc_ops *g_ref;
static char g_why[512];
static int g_setup_done;

static void teardown(void) {
    samc_ops_cuda_destroy(g_gpu);
    g_gpu = NULL;
}

static int have_gpu(void) {
    if (!g_setup_done) {
        g_setup_done = 1;
        g_ref = samc_ops_cpu_ref();
        g_gpu = samc_ops_cuda_create(0, g_why);
        if (g_gpu) {
            char info[256];
            samc_cuda_device_info(info, sizeof info);
            printf("cuda device: %s\n", info);
            atexit(teardown);
        }
    }
    return g_gpu != NULL;
}
#define NEED_GPU() do { if (!have_gpu()) TEST_SKIP("cuda backend unavailable: %s", g_why); } while (0)


/* Device buffers. A failed allocation is a test failure (CHECK), and the helpers then
 * return NULL, which every caller checks before running the op. */
static float *dev_alloc(size_t n) {
    float *d = g_gpu->alloc(g_gpu, (n ? n : 1) * sizeof(float));
    CHECKF(d != NULL, "cuda alloc of %zu floats failed", n);
    return d;
}
static float *dev_from(const float *h, size_t n) {
    float *d = dev_alloc(n);
    if (d && n) g_gpu->upload(g_gpu, d, h, n * sizeof(float));
    return d;
}
static float *dev_poison(size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    if (!h) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    float *d = dev_from(h, n);
    free(h);
    return d;
}
static float *host_from(const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    if (!h) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    if (d && n) g_gpu->download(g_gpu, h, d, n * sizeof(float));
    return h;
}
static void dev_free(void *d) {
    if (d) g_gpu->free(g_gpu, d);
}
/* The backend's first error, if any, as a test failure. */
static int gpu_sync(const char *what) {
    char err[512] = "";
    int rc = g_gpu->sync(g_gpu, err);
    CHECKF(rc == 0, "%s: sync: %s", what, err);
    return rc == 0;
}

/* ------------------------------------------------------------------ comparison */

typedef struct {
    double atol, rtol, max_err;
    size_t n, bad, worst, first_bad;
    float worst_gpu, worst_ref, bad_gpu, bad_ref;
} cmp_t;

static void cmp_init(cmp_t *c, double atol, double rtol) {
    memset(c, 0, sizeof *c);
    c->atol = atol;
    c->rtol = rtol;
    c->max_err = -1.0;
}

/* Adds got[i] vs ref[i]; base is the index of got[0] in the whole output, for messages. */
static void cmp_add(cmp_t *c, const float *got, const float *ref, size_t n, size_t base) {
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)ref[i]);
        int ok = e <= c->atol + c->rtol * fabs((double)ref[i]); /* false for NaN */
        if (e != e) e = INFINITY;
        if (e > c->max_err) { c->max_err = e; c->worst = base + i; c->worst_gpu = got[i]; c->worst_ref = ref[i]; }
        if (!ok) {
            if (!c->bad) { c->first_bad = base + i; c->bad_gpu = got[i]; c->bad_ref = ref[i]; }
            c->bad++;
        }
    }
    c->n += n;
}

/* One line for the op and shape; a failure also goes through CHECKF. */
static int cmp_report(const cmp_t *c, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->n == 0) {
        CHECKF(0, "%s: nothing compared", what);
        return 0;
    }
    printf("  %-6s %s: max abs err %.3g at [%zu] gpu=%.9g ref=%.9g (%zu values, atol %.1g rtol %.1g)\n",
           c->bad ? "NOT OK" : "OK", what, c->max_err, c->worst, c->worst_gpu, c->worst_ref, c->n, c->atol, c->rtol);
    fflush(stdout);
    CHECKF(c->bad == 0, "%s: %zu of %zu out of tolerance, first at [%zu] gpu=%.9g ref=%.9g", what, c->bad, c->n,
           c->first_bad, c->bad_gpu, c->bad_ref);
    return c->bad == 0;
}

static int compare(const float *got, const float *ref, size_t n, double atol, double rtol, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cmp_t c;
    cmp_init(&c, atol, rtol);
    cmp_add(&c, got, ref, n, 0);
    return cmp_report(&c, "%s", what);
}

/* GEMM-like sums: rounding grows with the reduction length. */
static double gemm_atol(int K) { return 1e-5 + 2e-7 * K; }
#define GEMM_RTOL 1e-4
#define EW_ATOL 1e-6
#define EW_RTOL 1e-5

/* Reference rows to compare: all for small M, else the first 7, 13 around the middle
 * and the last 9. */
static int sample_rows(int M, int *r0, int *len) {
    if (M <= 64) { r0[0] = 0; len[0] = M; return 1; }
    r0[0] = 0; len[0] = 7;
    r0[1] = M / 2 - 3; len[1] = 13;
    r0[2] = M - 9; len[2] = 9;
    return 3;
}

/* ------------------------------------------------------------------ benchmark */

#ifdef SAMC_HAVE_CUDA
static int bench_on(void) {
    const char *b = getenv("SAMC_CUDA_BENCH");
    return b && *b && strcmp(b, "0") != 0;
}

#define BENCH_WARM 3
#define BENCH_REPS 20
static cudaEvent_t g_ev[BENCH_WARM + BENCH_REPS + 1];
static int g_ev_ready;

static int bench_begin(void) {
    if (!g_ev_ready) {
        for (int i = 0; i <= BENCH_WARM + BENCH_REPS; i++)
            if (cudaEventCreate(&g_ev[i]) != cudaSuccess) { printf("  BENCH: cudaEventCreate failed\n"); return 0; }
        g_ev_ready = 1;
    }
    return 1;
}
/* The backend's stream is a blocking one, so events on the legacy default stream (0)
 * are ordered with its work: event i before run i, the last one after the last run. */
static void bench_mark(int i) { cudaEventRecord(g_ev[i], 0); }

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void bench_end(double flops, double bytes, const char *fmt, ...) {
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cudaEventRecord(g_ev[BENCH_WARM + BENCH_REPS], 0);
    if (cudaEventSynchronize(g_ev[BENCH_WARM + BENCH_REPS]) != cudaSuccess) {
        printf("  BENCH %s: event sync failed\n", what);
        return;
    }
    float ms[BENCH_REPS];
    for (int i = 0; i < BENCH_REPS; i++)
        cudaEventElapsedTime(&ms[i], g_ev[BENCH_WARM + i], g_ev[BENCH_WARM + i + 1]);
    qsort(ms, BENCH_REPS, sizeof ms[0], cmp_float);
    double med = 0.5 * (ms[BENCH_REPS / 2 - 1] + ms[BENCH_REPS / 2]), s = med * 1e-3;
    if (flops > 0)
        printf("  BENCH  %-58s %9.4f ms  %7.2f TFLOP/s  %7.1f GB/s (min %.4f ms)\n", what, med, flops / s * 1e-12,
               bytes / s * 1e-9, ms[0]);
    else
        printf("  BENCH  %-58s %9.4f ms  %7.1f GB/s (min %.4f ms)\n", what, med, bytes / s * 1e-9, ms[0]);
    fflush(stdout);
}

/* Times STMT (one op call on device buffers); flops 0 for pure data movement. */
#define BENCH(flops, bytes, STMT, ...) do { \
    if (bench_on() && bench_begin()) { \
        for (int rep_ = 0; rep_ < BENCH_WARM + BENCH_REPS; rep_++) { bench_mark(rep_); STMT; } \
        bench_end((flops), (bytes), __VA_ARGS__); gpu_sync("bench"); } } while (0)
#else
#define BENCH(flops, bytes, STMT, ...) do { (void)(flops); (void)(bytes); } while (0)
#endif

/* ------------------------------------------------------------------ memory */

static void test_memory(void) {
    NEED_GPU();
    CHECK(strcmp(g_gpu->name, "cuda") == 0);
    CHECK(g_gpu->host_memory == 0);
    size_t n = 1000003;
    float *h = rand_buf(n, 1.0f);
    float *d = dev_from(h, n), *d2 = dev_poison(n);
    if (d && d2) {
        CHECK(((uintptr_t)d & 63) == 0);
        g_gpu->copy(g_gpu, d2 + 1, d + 1, n - 2); /* unaligned views */
        g_gpu->copy(g_gpu, d2, d, 1);
        g_gpu->copy(g_gpu, d2 + n - 1, d + n - 1, 1);
        g_gpu->copy(g_gpu, d2, d, 0);
        float *back = host_from(d2, n);
        compare(back, h, n, 0.0, 0.0, "upload / copy / download n=%zu", n);
        free(back);
    }
    g_gpu->upload(g_gpu, d, h, 0);
    g_gpu->download(g_gpu, h, d, 0);
    dev_free(d);
    dev_free(d2);
    g_gpu->free(g_gpu, NULL);
    /* An impossible allocation returns NULL and leaves the backend usable. */
    void *huge = g_gpu->alloc(g_gpu, (size_t)1 << 50);
    CHECK(huge == NULL);
    if (huge) g_gpu->free(g_gpu, huge);
    gpu_sync("memory");
    free(h);
}

/* ------------------------------------------------------------------ linear / matmul */

typedef struct { const char *name; int M, N, K, bias, bench; } mnk;

static void run_linear(const mnk *s) {
    size_t xn = (size_t)s->M * s->K, wn = (size_t)s->N * s->K, yn = (size_t)s->M * s->N;
    float *x = rand_buf(xn, 1.0f), *w = rand_buf(wn, 1.0f), *b = s->bias ? rand_buf((size_t)s->N, 1.0f) : NULL;
    float *dx = dev_from(x, xn), *dw = dev_from(w, wn), *db = b ? dev_from(b, (size_t)s->N) : NULL,
          *dy = dev_poison(yn);
    if (dx && dw && dy && (!b || db)) {
        g_gpu->linear(g_gpu, dx, dw, db, dy, s->M, s->N, s->K);
        if (gpu_sync("linear")) {
            float *y = host_from(dy, yn), *yr = zero_buf((size_t)64 * s->N);
            cmp_t c;
            cmp_init(&c, gemm_atol(s->K), GEMM_RTOL);
            int r0[3], len[3], ns = sample_rows(s->M, r0, len);
            for (int i = 0; i < ns; i++) {
                g_ref->linear(g_ref, x + (size_t)r0[i] * s->K, w, b, yr, len[i], s->N, s->K);
                cmp_add(&c, y + (size_t)r0[i] * s->N, yr, (size_t)len[i] * s->N, (size_t)r0[i] * s->N);
            }
            cmp_report(&c, "linear %s M=%d N=%d K=%d bias=%d", s->name, s->M, s->N, s->K, s->bias);
            /* the same call again gives the same bits */
            g_gpu->linear(g_gpu, dx, dw, db, dy, s->M, s->N, s->K);
            float *y2 = host_from(dy, yn);
            CHECKF(memcmp(y, y2, yn * sizeof(float)) == 0, "linear %s: second run differs", s->name);
            free(y); free(y2); free(yr);
            if (s->bench)
                BENCH(2.0 * s->M * s->N * s->K, 4.0 * (xn + wn + 2 * yn),
                      g_gpu->linear(g_gpu, dx, dw, db, dy, s->M, s->N, s->K), "linear %s %dx%d->%d", s->name, s->M,
                      s->K, s->N);
        }
    }
    dev_free(dx); dev_free(dw); dev_free(db); dev_free(dy);
    free(x); free(w); free(b);
}

static const mnk linear_cases[] = {
    { "odd", 1, 1, 1, 1, 0 }, { "odd", 7, 13, 33, 0, 0 }, { "odd", 33, 7, 1, 1, 0 }, { "odd", 13, 33, 7, 1, 0 },
    { "odd", 1, 17, 13, 0, 0 }, { "odd", 61, 47, 300, 1, 0 },
    /* Hiera tiny / large: qkv, mlp, proj */
    { "hiera qkv s0@512", 16384, 288, 96, 1, 1 }, { "hiera mlp s0@512", 16384, 384, 96, 1, 0 },
    { "hiera qkv s0@1024", 65536, 288, 96, 1, 1 }, { "hiera mlp.1 s0@1024", 65536, 96, 384, 1, 1 },
    { "hiera qkv s2", 4096, 1152, 384, 1, 1 }, { "hiera mlp.1 s3", 1024, 768, 3072, 1, 1 },
    { "hiera-l qkv s3", 1024, 3456, 1152, 1, 1 },
    /* decoder: tokens, image tokens */
    { "decoder tokens", 7, 256, 256, 1, 0 }, { "decoder mlp", 10, 2048, 256, 1, 0 },
    { "decoder k_proj", 4096, 128, 256, 1, 1 }, { "decoder no bias", 4096, 256, 128, 0, 0 },
};

static void test_linear(void) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof linear_cases / sizeof linear_cases[0]; i++) run_linear(&linear_cases[i]);
}

static void run_matmul(const mnk *s) {
    size_t an = (size_t)s->M * s->K, bn = (size_t)s->K * s->N, cn = (size_t)s->M * s->N;
    float *a = rand_buf(an, 1.0f), *b = rand_buf(bn, 1.0f), *bias = s->bias ? rand_buf((size_t)s->M, 1.0f) : NULL;
    float *da = dev_from(a, an), *dbm = dev_from(b, bn), *dbias = bias ? dev_from(bias, (size_t)s->M) : NULL,
          *dc = dev_poison(cn);
    if (da && dbm && dc && (!bias || dbias)) {
        g_gpu->matmul(g_gpu, da, dbm, dbias, dc, s->M, s->N, s->K);
        if (gpu_sync("matmul")) {
            float *cm = host_from(dc, cn), *cr = zero_buf((size_t)64 * s->N);
            cmp_t c;
            cmp_init(&c, gemm_atol(s->K), GEMM_RTOL);
            int r0[3], len[3], ns = sample_rows(s->M, r0, len);
            for (int i = 0; i < ns; i++) {
                g_ref->matmul(g_ref, a + (size_t)r0[i] * s->K, b, bias ? bias + r0[i] : NULL, cr, len[i], s->N, s->K);
                cmp_add(&c, cm + (size_t)r0[i] * s->N, cr, (size_t)len[i] * s->N, (size_t)r0[i] * s->N);
            }
            cmp_report(&c, "matmul %s M=%d N=%d K=%d bias=%d", s->name, s->M, s->N, s->K, s->bias);
            free(cm); free(cr);
            if (s->bench)
                BENCH(2.0 * s->M * s->N * s->K, 4.0 * (an + bn + 2 * cn),
                      g_gpu->matmul(g_gpu, da, dbm, dbias, dc, s->M, s->N, s->K), "matmul %s %dx%dx%d", s->name,
                      s->M, s->N, s->K);
        }
    }
    dev_free(da); dev_free(dbm); dev_free(dbias); dev_free(dc);
    free(a); free(b); free(bias);
}

static const mnk matmul_cases[] = {
    { "odd", 1, 1, 1, 1, 0 }, { "odd", 7, 13, 33, 0, 0 }, { "odd", 17, 33, 1, 1, 0 }, { "odd", 13, 1, 7, 1, 0 },
    /* FPN neck 1x1 convs (256 <- C at each level) and decoder conv_s0 / conv_s1 */
    { "neck s0@1024", 256, 65536, 96, 1, 1 }, { "neck s2", 256, 4096, 384, 1, 0 }, { "neck s3", 256, 1024, 768, 1, 1 },
    { "conv_s0", 32, 65536, 256, 1, 1 }, { "conv_s1", 64, 16384, 256, 0, 0 },
};

static void test_matmul(void) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof matmul_cases / sizeof matmul_cases[0]; i++) run_matmul(&matmul_cases[i]);
}

/* K == 0: the product is empty, y is the bias (or zero). */
static void test_gemm_zero_k(void) {
    NEED_GPU();
    float b[3] = { 1, 2, 3 }, y[6];
    float *db = dev_from(b, 3), *dy = dev_poison(6);
    if (!db || !dy) goto out;
    g_gpu->linear(g_gpu, NULL, NULL, db, dy, 2, 3, 0);
    g_gpu->download(g_gpu, y, dy, sizeof y);
    CHECKF(y[0] == 1 && y[1] == 2 && y[2] == 3 && y[3] == 1 && y[4] == 2 && y[5] == 3, "linear K=0: %g %g %g %g",
           y[0], y[1], y[3], y[5]);
    g_gpu->matmul(g_gpu, NULL, NULL, db, dy, 3, 2, 0);
    g_gpu->download(g_gpu, y, dy, sizeof y);
    CHECKF(y[0] == 1 && y[1] == 1 && y[2] == 2 && y[5] == 3, "matmul K=0 with bias: %g %g %g", y[0], y[2], y[5]);
    g_gpu->matmul(g_gpu, NULL, NULL, NULL, dy, 2, 3, 0);
    g_gpu->download(g_gpu, y, dy, sizeof y);
    CHECKF(y[0] == 0 && y[4] == 0, "matmul K=0: %g %g", y[0], y[4]);
    gpu_sync("gemm K=0");
out:
    dev_free(db); dev_free(dy);
}

/* ------------------------------------------------------------------ bf16 / fp16 GEMMs */

/* A second backend with a registered weight block: the weights of the cases sit in it
 * at 16-float slots as the model puts them (model/sam2.c), one at an odd offset. */
typedef struct { const char *name; int M, N, K, bias, x_in_block, bench; } lowp_case;

static const lowp_case lowp_linear_cases[] = {
    { "odd", 1, 1, 1, 1, 0, 0 }, { "odd", 7, 13, 33, 0, 0, 0 }, { "odd", 61, 47, 300, 1, 0, 0 },
    { "hiera qkv s0@1024", 65536, 288, 96, 1, 0, 1 },
    /* 65536 x 384 = 25 M activation values: more than the 16 M scratch, two row chunks */
    { "hiera mlp.1 s0@1024 (chunked)", 65536, 96, 384, 1, 0, 1 },
    { "hiera-l qkv s3", 1024, 3456, 1152, 1, 0, 1 }, { "hiera mlp.1 s3", 1024, 768, 3072, 1, 0, 0 },
    /* the decoder's tokens are weights too (iou / mask tokens): x read from the block */
    { "decoder tokens (x in block)", 7, 256, 256, 1, 1, 0 }, { "decoder mlp", 10, 2048, 256, 1, 0, 0 },
};
static const lowp_case lowp_matmul_cases[] = {
    { "odd", 1, 1, 1, 1, 0, 0 }, { "odd", 13, 33, 7, 0, 0, 0 },
    { "neck s0@1024", 256, 65536, 96, 1, 0, 1 }, { "neck s3", 256, 1024, 768, 1, 0, 0 },
    { "conv_s0@1024", 32, 65536, 256, 1, 0, 1 },
    /* at 1280 px: 256 x 102400 = 26 M activation values, two column chunks */
    { "conv_s0@1280 (chunked)", 32, 102400, 256, 1, 0, 0 },
};

static size_t slot16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Runs one case on backend o whose block (host copy hw) holds the weight at w_off and,
 * when c->x_in_block, the activation at x_off. */
static void run_lowp_case(samc_ops *o, int prec, const char *pname, const lowp_case *c, int is_matmul,
                          float *dblock, const float *hblock, size_t w_off, size_t x_off) {
    int M = c->M, N = c->N, K = c->K;
    size_t wn = is_matmul ? (size_t)M * K : (size_t)N * K, xn = is_matmul ? (size_t)K * N : (size_t)M * K;
    size_t yn = (size_t)M * N, nbias = is_matmul ? (size_t)M : (size_t)N;
    const float *w = hblock + w_off;
    float *xo = c->x_in_block ? NULL : rand_buf(xn, 1.0f);
    const float *x = c->x_in_block ? hblock + x_off : xo;
    float *bias = c->bias ? rand_buf(nbias, 1.0f) : NULL;
    float *dx = c->x_in_block ? dblock + x_off : NULL, *dbias = NULL, *dy = dev_poison(yn);
    if (!c->x_in_block) dx = dev_alloc(xn);
    if (dx && !c->x_in_block) o->upload(o, dx, x, xn * sizeof(float));
    if (bias && (dbias = dev_alloc(nbias))) o->upload(o, dbias, bias, nbias * sizeof(float));
    const float *dw = dblock + w_off;
    if (dx && dy && (!bias || dbias)) {
        if (is_matmul) o->matmul(o, dw, dx, dbias, dy, M, N, K);
        else o->linear(o, dx, dw, dbias, dy, M, N, K);
        char err[512] = "";
        int rc = o->sync(o, err);
        CHECKF(rc == 0, "%s %s: sync: %s", pname, c->name, err);
        if (rc == 0) {
            float *y = malloc(yn * sizeof(float));
            if (!y) { fprintf(stderr, "out of memory\n"); exit(2); }
            o->download(o, y, dy, yn * sizeof(float));
            /* the 16-bit inputs, exactly: reference rows (linear) / rows of c (matmul) */
            float *wr = malloc(wn * sizeof(float)), *xr = malloc(xn * sizeof(float));
            float *yr = zero_buf((size_t)64 * N), *yf = zero_buf((size_t)64 * N);
            if (!wr || !xr) { fprintf(stderr, "out of memory\n"); exit(2); }
            test_round_lowp_buf(wr, w, wn, prec);
            test_round_lowp_buf(xr, x, xn, prec);
            double u = prec == SAMC_OPS_BF16 ? 1.0 / 512 : 1.0 / 2048; /* unit roundoff */
            cmp_t tight, loose;
            cmp_init(&tight, 2 * gemm_atol(K), 2 * GEMM_RTOL);
            cmp_init(&loose, gemm_atol(K) + 2 * u * sqrt((double)K), 0.0);
            int r0[3], len[3], ns = sample_rows(M, r0, len);
            for (int i = 0; i < ns; i++) {
                const float *yg = y + (size_t)r0[i] * N;
                if (is_matmul) {
                    g_ref->matmul(g_ref, wr + (size_t)r0[i] * K, xr, bias ? bias + r0[i] : NULL, yr, len[i], N, K);
                    g_ref->matmul(g_ref, w + (size_t)r0[i] * K, x, bias ? bias + r0[i] : NULL, yf, len[i], N, K);
                } else {
                    g_ref->linear(g_ref, xr + (size_t)r0[i] * K, wr, bias, yr, len[i], N, K);
                    g_ref->linear(g_ref, x + (size_t)r0[i] * K, w, bias, yf, len[i], N, K);
                }
                cmp_add(&tight, yg, yr, (size_t)len[i] * N, (size_t)r0[i] * N);
                cmp_add(&loose, yg, yf, (size_t)len[i] * N, (size_t)r0[i] * N);
            }
            cmp_report(&tight, "%s %s %s M=%d N=%d K=%d vs 16-bit inputs", pname, is_matmul ? "matmul" : "linear",
                       c->name, M, N, K);
            cmp_report(&loose, "%s %s %s M=%d N=%d K=%d vs fp32 inputs", pname, is_matmul ? "matmul" : "linear",
                       c->name, M, N, K);
            free(y); free(wr); free(xr); free(yr); free(yf);
            /* o's stream is a blocking one too, so the events order with it */
            if (c->bench && is_matmul)
                BENCH(2.0 * M * N * K, 4.0 * (xn + 2 * yn) + 2.0 * (wn + 2 * xn), o->matmul(o, dw, dx, dbias, dy, M, N, K),
                      "%s matmul %s %dx%dx%d", pname, c->name, M, N, K);
            else if (c->bench)
                BENCH(2.0 * M * N * K, 4.0 * (xn + 2 * yn) + 2.0 * (wn + 2 * xn), o->linear(o, dx, dw, dbias, dy, M, N, K),
                      "%s linear %s %dx%d->%d", pname, c->name, M, K, N);
        }
    }
    if (!c->x_in_block) dev_free(dx);
    dev_free(dbias); dev_free(dy);
    free(xo); free(bias);
}

/* Per precision: a fresh backend, a block with every case's weight (and the decoder
 * tokens case's activation), set_precision, then the cases; a weight outside the block
 * still takes the exact fp32 path; set_precision(FP32) turns it all off again. */
static void run_lowp(samc_ops_precision prec) {
    const char *pname = prec == SAMC_OPS_BF16 ? "bf16" : "fp16";
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    CHECKF(o != NULL, "%s backend: %s", pname, err);
    if (!o) return;
    CHECK(o->set_precision != NULL);
    size_t nl = sizeof lowp_linear_cases / sizeof lowp_linear_cases[0];
    size_t nm = sizeof lowp_matmul_cases / sizeof lowp_matmul_cases[0];
    size_t off[32], xoff[32], total = 3; /* the first slot starts at an odd offset */
    for (size_t i = 0; i < nl + nm; i++) {
        const lowp_case *c = i < nl ? &lowp_linear_cases[i] : &lowp_matmul_cases[i - nl];
        off[i] = total;
        total += slot16((size_t)c->N * c->K > (size_t)c->M * c->K ? (size_t)c->N * c->K : (size_t)c->M * c->K);
        xoff[i] = total;
        if (c->x_in_block) total += slot16((size_t)c->M * c->K);
    }
    float *hblock = rand_buf(total, 1.0f), *dblock = dev_from(hblock, total);
    if (!dblock || !o->set_precision) goto out;
    int rc = o->set_precision(o, prec, dblock, total, err);
    if (rc != 0 && strstr(err, "compute capability")) {
        printf("  SKIP   %s: %s\n", pname, err);
        goto out;
    }
    CHECKF(rc == 0, "set_precision %s: %s", pname, err);
    if (rc != 0) goto out;
    for (size_t i = 0; i < nl + nm; i++)
        run_lowp_case(o, (int)prec, pname, i < nl ? &lowp_linear_cases[i] : &lowp_matmul_cases[i - nl], i >= nl,
                      dblock, hblock, off[i], xoff[i]);

    /* A weight outside the block: plain fp32, within the fp32 tolerance. */
    {
        int M = 300, N = 64, K = 256;
        float *x = rand_buf((size_t)M * K, 1.0f), *w = rand_buf((size_t)N * K, 1.0f);
        float *dx = dev_from(x, (size_t)M * K), *dw = dev_from(w, (size_t)N * K), *dy = dev_poison((size_t)M * N);
        if (dx && dw && dy) {
            o->linear(o, dx, dw, NULL, dy, M, N, K);
            err[0] = '\0';
            CHECKF(o->sync(o, err) == 0, "%s: %s", pname, err);
            float *y = malloc(sizeof(float) * (size_t)M * N), *yr = zero_buf((size_t)M * N);
            if (!y) { fprintf(stderr, "out of memory\n"); exit(2); }
            o->download(o, y, dy, sizeof(float) * (size_t)M * N);
            g_ref->linear(g_ref, x, w, NULL, yr, M, N, K);
            compare(y, yr, (size_t)M * N, gemm_atol(K), GEMM_RTOL, "%s backend, weight outside the block: fp32", pname);
            free(y); free(yr);
        }
        dev_free(dx); dev_free(dw); dev_free(dy);
        free(x); free(w);
    }
    /* FP32 again: the registered weights are multiplied in fp32 too. */
    {
        const lowp_case *c = &lowp_linear_cases[5]; /* hiera-l qkv s3: K = 1152 */
        CHECK(o->set_precision(o, SAMC_OPS_FP32, NULL, 0, err) == 0);
        float *x = rand_buf((size_t)c->M * c->K, 1.0f);
        float *dx = dev_from(x, (size_t)c->M * c->K), *dy = dev_poison((size_t)c->M * c->N);
        if (dx && dy) {
            o->linear(o, dx, dblock + off[5], NULL, dy, c->M, c->N, c->K);
            err[0] = '\0';
            CHECKF(o->sync(o, err) == 0, "%s: %s", pname, err);
            float *y = malloc(sizeof(float) * (size_t)c->M * c->N), *yr = zero_buf((size_t)7 * c->N);
            if (!y) { fprintf(stderr, "out of memory\n"); exit(2); }
            o->download(o, y, dy, sizeof(float) * (size_t)c->M * c->N);
            g_ref->linear(g_ref, x, hblock + off[5], NULL, yr, 7, c->N, c->K);
            compare(y, yr, (size_t)7 * c->N, gemm_atol(c->K), GEMM_RTOL, "after set_precision(fp32): fp32 again");
            free(y); free(yr);
        }
        dev_free(dx); dev_free(dy);
        free(x);
    }
out:
    dev_free(dblock);
    free(hblock);
    samc_ops_cuda_destroy(o);
}

static void test_linear_matmul_bf16(void) {
    NEED_GPU();
    run_lowp(SAMC_OPS_BF16);
}
static void test_linear_matmul_fp16(void) {
    NEED_GPU();
    run_lowp(SAMC_OPS_FP16);
}

/* The host rounding the tests compare with (tests/test_lowp.h), on values whose 16-bit
 * forms are known; runs without a device. */
static void test_lowp_rounding(void) {
    CHECK(test_round_bf16(1.0f) == 1.0f);
    CHECK(test_round_bf16(1.0f + 1.0f / 256) == 1.0f);            /* tie: to even (down) */
    CHECK(test_round_bf16(1.0f + 3.0f / 256) == 1.0f + 4.0f / 256); /* tie: to even (up) */
    CHECK(test_round_bf16(1.0f + 1.5f / 256) == 1.0f + 2.0f / 256);
    CHECK(test_round_bf16(-3.0e38f) == ldexpf(-226.0f, 120)); /* 8 bits: 225.69 * 2^120 */
    CHECK(test_round_fp16(1.0f + 1.0f / 2048) == 1.0f);           /* tie: to even */
    CHECK(test_round_fp16(1.0f + 3.0f / 2048) == 1.0f + 4.0f / 2048);
    CHECK(test_round_fp16(70000.0f) == 65504.0f && test_round_fp16(-1e9f) == -65504.0f); /* clamped */
    CHECK(test_round_fp16(65519.0f) == 65504.0f);
    CHECK(test_round_fp16(3.0f * 0x1p-25f) == 0x1p-23f);          /* subnormal: quantum 2^-24 */
    CHECK(test_round_fp16(0x1p-26f) == 0.0f);
    CHECK(test_round_fp16(1e-3f) == 0.0010004044f);
}

/* ------------------------------------------------------------------ attention */

typedef enum { PACKED_QKV, SEPARATE } att_layout;
typedef struct {
    const char *name;
    int batch, heads, n_q, n_kv, hd;
    att_layout layout;
    float qscale; /* > 1: peaky softmax */
    int bench;
} att_case;

/* Device run on everything; reference on up to 3 batches x sampled query rows. */
static void run_attention(const att_case *c) {
    const int H = c->heads, hd = c->hd, D = H * hd;
    samc_attention_args a = { .batch = c->batch, .heads = H, .n_q = c->n_q, .n_kv = c->n_kv, .head_dim = hd,
                              .scale = 1.0f / sqrtf((float)hd) };
    float *qkv = NULL, *q = NULL, *k = NULL, *v = NULL;
    float *dqkv = NULL, *dq = NULL, *dk = NULL, *dv = NULL;
    size_t qn = 0, kn = 0;
    if (c->layout == PACKED_QKV) {
        /* Hiera: one linear gives [B, T, 3, heads, hd]; n_q == n_kv */
        qn = (size_t)c->batch * c->n_kv * 3 * D;
        qkv = rand_buf(qn, 1.0f);
        for (size_t i = 0; i < qn; i += 3 * (size_t)D)
            for (int j = 0; j < D; j++) qkv[i + j] *= c->qscale;
        a.q = qkv; a.k = qkv + D; a.v = qkv + 2 * D;
        a.q_sb = a.k_sb = a.v_sb = (ptrdiff_t)c->n_kv * 3 * D;
        a.q_sh = a.k_sh = a.v_sh = hd;
        a.q_st = a.k_st = a.v_st = 3 * D;
        dqkv = dev_from(qkv, qn);
    } else {
        /* decoder: [B, T, heads*hd] each */
        qn = (size_t)c->batch * c->n_q * D;
        kn = (size_t)c->batch * c->n_kv * D;
        q = rand_buf(qn, c->qscale); k = rand_buf(kn, 1.0f); v = rand_buf(kn, 1.0f);
        a.q = q; a.k = k; a.v = v;
        a.q_sb = (ptrdiff_t)c->n_q * D; a.k_sb = a.v_sb = (ptrdiff_t)c->n_kv * D;
        a.q_sh = a.k_sh = a.v_sh = hd;
        a.q_st = a.k_st = a.v_st = D;
        dq = dev_from(q, qn); dk = dev_from(k, kn); dv = dev_from(v, kn);
    }
    size_t on = (size_t)c->batch * c->n_q * D;
    a.o_sb = (ptrdiff_t)c->n_q * D; a.o_sh = hd; a.o_st = D;
    float *dout = dev_poison(on);
    int ready = dout && (c->layout == PACKED_QKV ? dqkv != NULL : (dq && dk && dv));
    if (ready) {
        samc_attention_args d = a; /* the same views over the device copies */
        if (c->layout == PACKED_QKV) { d.q = dqkv; d.k = dqkv + D; d.v = dqkv + 2 * D; }
        else { d.q = dq; d.k = dk; d.v = dv; }
        d.out = dout;
        g_gpu->attention(g_gpu, &d);
        if (gpu_sync("attention")) {
            float *out = host_from(dout, on), *ro = zero_buf((size_t)64 * D);
            cmp_t cm;
            cmp_init(&cm, 2e-6, GEMM_RTOL);
            int nb = c->batch <= 3 ? c->batch : 3;
            int bsel[3] = { 0, c->batch / 2, c->batch - 1 };
            int r0[3], len[3], ns = sample_rows(c->n_q, r0, len);
            for (int bi = 0; bi < nb; bi++) {
                int b = c->batch <= 3 ? bi : bsel[bi];
                for (int si = 0; si < ns; si++) {
                    samc_attention_args r = a;
                    r.batch = 1; r.n_q = len[si];
                    r.q = a.q + b * a.q_sb + r0[si] * a.q_st;
                    r.k = a.k + b * a.k_sb;
                    r.v = a.v + b * a.v_sb;
                    r.out = ro; r.o_sb = 0; r.o_st = D; r.o_sh = hd;
                    g_ref->attention(g_ref, &r);
                    for (int i = 0; i < len[si]; i++) {
                        size_t off = (size_t)(b * a.o_sb + (r0[si] + i) * a.o_st);
                        cmp_add(&cm, out + off, ro + (size_t)i * D, (size_t)D, off);
                    }
                }
            }
            cmp_report(&cm, "attention %s (B=%d H=%d nq=%d nkv=%d hd=%d)", c->name, c->batch, H, c->n_q, c->n_kv, hd);
            g_gpu->attention(g_gpu, &d);
            float *out2 = host_from(dout, on);
            CHECKF(memcmp(out, out2, on * sizeof(float)) == 0, "attention %s: second run differs", c->name);
            free(out); free(out2); free(ro);
            if (c->bench) {
                double fl = 4.0 * c->batch * H * (double)c->n_q * c->n_kv * hd;
                double by = 4.0 * ((double)c->batch * H * hd * (2.0 * c->n_q + 2.0 * c->n_kv));
                BENCH(fl, by, g_gpu->attention(g_gpu, &d), "attention %s", c->name);
            }
        }
    }
    dev_free(dqkv); dev_free(dq); dev_free(dk); dev_free(dv); dev_free(dout);
    free(qkv); free(q); free(k); free(v);
}

static const att_case att_cases[] = {
    /* Hiera tiny @1024: 8x8 windows at stage 0 (1 head), 4x4 at stage 1 (2 heads),
     * 14x14 windows over the padded 64x64 map at stage 2 (4 heads), global 64x64 */
    { "hiera 8x8 windows", 1024, 1, 64, 64, 96, PACKED_QKV, 1.0f, 1 },
    { "hiera 4x4 windows", 1024, 2, 16, 16, 96, PACKED_QKV, 1.0f, 1 },
    { "hiera 14x14 windows", 25, 4, 196, 196, 96, PACKED_QKV, 1.0f, 1 },
    { "hiera global 64x64 hd96", 1, 4, 4096, 4096, 96, PACKED_QKV, 1.0f, 1 },
    { "hiera global 64x64 hd144", 1, 4, 4096, 4096, 144, PACKED_QKV, 1.0f, 1 },
    { "hiera-l 14x14 windows hd72", 25, 8, 196, 196, 72, PACKED_QKV, 1.0f, 0 },
    { "hiera global 32x32 peaky", 1, 8, 1024, 1024, 96, PACKED_QKV, 3.0f, 0 },
    /* decoder: tokens <-> image (hd 16 after the 2x downsampling of 256 over 8 heads), self */
    { "decoder token->image", 1, 8, 7, 4096, 16, SEPARATE, 1.0f, 1 },
    { "decoder token->image x64", 64, 8, 10, 4096, 16, SEPARATE, 1.0f, 1 },
    { "decoder image->token", 1, 8, 4096, 7, 16, SEPARATE, 1.0f, 1 },
    { "decoder image->token x3", 3, 8, 4096, 10, 16, SEPARATE, 1.0f, 0 },
    { "decoder self", 3, 8, 10, 10, 32, SEPARATE, 1.0f, 0 },
    /* limits: n_q and n_kv to 16384, head_dim to 256 */
    { "n_q=16384", 1, 1, 16384, 64, 32, SEPARATE, 1.0f, 0 },
    { "n_kv=16384 hd=256", 1, 2, 33, 16384, 256, SEPARATE, 1.0f, 0 },
    { "hd=256 square", 1, 1, 300, 300, 256, SEPARATE, 2.0f, 0 },
    /* odd */
    { "n_kv=1", 2, 3, 5, 1, 8, SEPARATE, 1.0f, 0 },
    { "n_q=1", 1, 2, 1, 300, 24, SEPARATE, 1.0f, 0 },
    { "hd=1", 2, 2, 9, 13, 1, SEPARATE, 1.0f, 0 },
    { "hd=7 packed", 3, 5, 13, 13, 7, PACKED_QKV, 1.0f, 0 },
    { "hd=13", 1, 3, 33, 17, 13, SEPARATE, 1.0f, 0 },
    { "hd=33", 1, 1, 61, 777, 33, SEPARATE, 1.0f, 0 },
    { "peaky", 1, 2, 50, 700, 64, SEPARATE, 8.0f, 0 },
    { "n_kv=65 (tile + 1)", 2, 2, 33, 65, 40, SEPARATE, 1.0f, 0 },
    { "wide head (generic kernel)", 1, 2, 3, 37, 300, SEPARATE, 1.0f, 0 },
    { "n_kv=0", 1, 2, 3, 0, 8, SEPARATE, 1.0f, 0 },
};

static void test_attention(void) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof att_cases / sizeof att_cases[0]; i++) run_attention(&att_cases[i]);
}

/* ------------------------------------------------------------------ norms */

static void test_layer_norm(void) {
    NEED_GPU();
    const int shapes[][3] = { { 1, 1, 0 }, { 7, 13, 0 }, { 13, 33, 0 }, { 10, 256, 0 }, { 16384, 96, 1 },
                              { 65536, 96, 1 }, { 4096, 384, 0 }, { 1024, 768, 0 }, { 1024, 1152, 0 }, { 3, 1000, 0 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int rows = shapes[i][0], dim = shapes[i][1];
        size_t n = (size_t)rows * dim;
        float eps = i % 2 ? 1e-5f : 1e-6f;
        float *x = rand_buf(n, 3.0f), *w = rand_buf((size_t)dim, 1.0f), *b = rand_buf((size_t)dim, 1.0f);
        for (size_t j = 0; j < n; j++) x[j] += 0.5f; /* a non-zero mean */
        float *yr = zero_buf(n);
        g_ref->layer_norm(g_ref, x, w, b, yr, rows, dim, eps);
        float *dx = dev_from(x, n), *dw = dev_from(w, (size_t)dim), *db = dev_from(b, (size_t)dim), *dy = dev_poison(n);
        if (dx && dw && db && dy) {
            g_gpu->layer_norm(g_gpu, dx, dw, db, dy, rows, dim, eps);
            float *y = host_from(dy, n);
            compare(y, yr, n, 2e-5, 1e-4, "layer_norm rows=%d dim=%d", rows, dim);
            g_gpu->layer_norm(g_gpu, dx, dw, db, dx, rows, dim, eps); /* in place */
            float *y2 = host_from(dx, n);
            compare(y2, yr, n, 2e-5, 1e-4, "layer_norm in place rows=%d dim=%d", rows, dim);
            free(y); free(y2);
            if (shapes[i][2]) {
                g_gpu->upload(g_gpu, dx, x, n * sizeof(float));
                BENCH(0, 4.0 * 2 * n, g_gpu->layer_norm(g_gpu, dx, dw, db, dy, rows, dim, eps), "layer_norm %dx%d",
                      rows, dim);
            }
        }
        gpu_sync("layer_norm");
        dev_free(dx); dev_free(dw); dev_free(db); dev_free(dy);
        free(x); free(w); free(b); free(yr);
    }
}

static void test_layer_norm2d(void) {
    NEED_GPU();
    const int shapes[][3] = { { 1, 1, 0 }, { 3, 17, 0 }, { 13, 33, 0 }, { 256, 4096, 1 }, { 32, 65536, 1 },
                              { 64, 16384, 0 }, { 4, 1, 0 }, { 256, 1023, 0 }, { 7, 100, 0 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int C = shapes[i][0], HW = shapes[i][1];
        size_t n = (size_t)C * HW;
        float *x = rand_buf(n, 2.0f), *w = rand_buf((size_t)C, 1.0f), *b = rand_buf((size_t)C, 1.0f);
        for (size_t j = 0; j < n; j++) x[j] -= 0.7f;
        float *yr = zero_buf(n);
        g_ref->layer_norm2d(g_ref, x, w, b, yr, C, HW, 1e-6f);
        float *dx = dev_from(x, n), *dw = dev_from(w, (size_t)C), *db = dev_from(b, (size_t)C), *dy = dev_poison(n);
        if (dx && dw && db && dy) {
            g_gpu->layer_norm2d(g_gpu, dx, dw, db, dy, C, HW, 1e-6f);
            float *y = host_from(dy, n);
            compare(y, yr, n, 2e-5, 1e-4, "layer_norm2d C=%d HW=%d", C, HW);
            g_gpu->layer_norm2d(g_gpu, dx, dw, db, dx, C, HW, 1e-6f);
            float *y2 = host_from(dx, n);
            compare(y2, yr, n, 2e-5, 1e-4, "layer_norm2d in place C=%d HW=%d", C, HW);
            free(y); free(y2);
            if (shapes[i][2]) {
                g_gpu->upload(g_gpu, dx, x, n * sizeof(float));
                BENCH(0, 4.0 * 2 * n, g_gpu->layer_norm2d(g_gpu, dx, dw, db, dy, C, HW, 1e-6f), "layer_norm2d C=%d HW=%d",
                      C, HW);
            }
        }
        gpu_sync("layer_norm2d");
        dev_free(dx); dev_free(dw); dev_free(db); dev_free(dy);
        free(x); free(w); free(b); free(yr);
    }
}

/* ------------------------------------------------------------------ elementwise */

typedef enum { UN_GELU, UN_RELU, UN_SIGMOID } unary;
static const char *unary_name[] = { "gelu", "relu", "sigmoid" };

static void run_unary(unary op, size_t n0, int bench) {
    static const float special[] = { 0.0f, -0.0f, 1.0f, -1.0f, 1.4142135f, -1.4142135f, 5.656854f, -5.656854f,
                                     1e-30f, -1e-30f, 1e-7f, -3.0f, -8.0f, -12.0f, -20.0f, 30.0f, 1e6f, -1e6f,
                                     0.70710677f, -2.5f, 88.0f, -88.0f, -104.0f };
    const size_t ns = sizeof special / sizeof special[0];
    size_t n = n0 + ns;
    float *x = rand_buf(n, 7.0f);
    memcpy(x + n0, special, sizeof special);
    float *xr = malloc(n * sizeof(float));
    memcpy(xr, x, n * sizeof(float));
    if (op == UN_GELU) g_ref->gelu(g_ref, xr, n);
    if (op == UN_RELU) g_ref->relu(g_ref, xr, n);
    if (op == UN_SIGMOID) g_ref->sigmoid(g_ref, xr, n);
    float *dx = dev_from(x, n);
    if (dx) {
        if (op == UN_GELU) g_gpu->gelu(g_gpu, dx, n);
        if (op == UN_RELU) g_gpu->relu(g_gpu, dx, n);
        if (op == UN_SIGMOID) g_gpu->sigmoid(g_gpu, dx, n);
        float *y = host_from(dx, n);
        compare(y, xr, n, EW_ATOL, EW_RTOL, "%s n=%zu", unary_name[op], n);
        free(y);
        if (bench) {
            if (op == UN_GELU) BENCH(0, 8.0 * n, g_gpu->gelu(g_gpu, dx, n), "gelu n=%zu", n);
            if (op == UN_RELU) BENCH(0, 8.0 * n, g_gpu->relu(g_gpu, dx, n), "relu n=%zu", n);
            if (op == UN_SIGMOID) BENCH(0, 8.0 * n, g_gpu->sigmoid(g_gpu, dx, n), "sigmoid n=%zu", n);
        }
    }
    gpu_sync(unary_name[op]);
    dev_free(dx);
    free(x); free(xr);
}

static void test_unary(void) {
    NEED_GPU();
    const size_t sizes[] = { 0, 1, 7, 33, (size_t)16384 * 384, (size_t)65536 * 384 };
    for (int op = 0; op < 3; op++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) run_unary((unary)op, sizes[i], i == 5);
}

static void test_add(void) {
    NEED_GPU();
    /* n, nb: positional-embedding add over tokens, a plain add, odd broadcasts */
    const size_t shapes[][3] = { { (size_t)65536 * 96, 65536 * 96, 1 }, { (size_t)65536 * 96, 96, 1 },
                                 { (size_t)4096 * 256, 256, 0 }, { 7 * 13, 13, 0 }, { 33, 1, 0 }, { 1, 1, 0 },
                                 { 33, 33, 0 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        size_t n = shapes[i][0], nb = shapes[i][1];
        float *a = rand_buf(n, 1.0f), *b = rand_buf(nb, 1.0f), *r = zero_buf(n);
        g_ref->add(g_ref, r, a, b, n, nb);
        float *da = dev_from(a, n), *db = dev_from(b, nb), *dd = dev_poison(n);
        if (da && db && dd) {
            g_gpu->add(g_gpu, dd, da, db, n, nb);
            float *y = host_from(dd, n);
            compare(y, r, n, 0.0, 0.0, "add n=%zu nb=%zu", n, nb);
            g_gpu->add(g_gpu, da, da, db, n, nb); /* dst aliases a */
            float *y2 = host_from(da, n);
            compare(y2, r, n, 0.0, 0.0, "add in place n=%zu nb=%zu", n, nb);
            free(y); free(y2);
            if (shapes[i][2])
                BENCH(0, 4.0 * (2 * n + nb), g_gpu->add(g_gpu, dd, da, db, n, nb), "add n=%zu nb=%zu", n, nb);
        }
        gpu_sync("add");
        dev_free(da); dev_free(db); dev_free(dd);
        free(a); free(b); free(r);
    }
}

static void test_add_channel(void) {
    NEED_GPU();
    const int shapes[][2] = { { 256, 4096 }, { 256, 65536 }, { 7, 13 }, { 1, 1 }, { 33, 1 }, { 1, 1000 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int C = shapes[i][0], HW = shapes[i][1];
        size_t n = (size_t)C * HW;
        float *a = rand_buf(n, 1.0f), *v = rand_buf((size_t)C, 1.0f), *r = zero_buf(n), *r0 = zero_buf(n);
        g_ref->add_channel(g_ref, r, a, v, C, HW);
        g_ref->add_channel(g_ref, r0, NULL, v, C, HW);
        float *da = dev_from(a, n), *dv = dev_from(v, (size_t)C), *dd = dev_poison(n);
        if (da && dv && dd) {
            g_gpu->add_channel(g_gpu, dd, da, dv, C, HW);
            float *y = host_from(dd, n);
            compare(y, r, n, 0.0, 0.0, "add_channel C=%d HW=%d", C, HW);
            g_gpu->add_channel(g_gpu, dd, NULL, dv, C, HW);
            float *y0 = host_from(dd, n);
            compare(y0, r0, n, 0.0, 0.0, "add_channel a=NULL C=%d HW=%d", C, HW);
            g_gpu->add_channel(g_gpu, da, da, dv, C, HW);
            float *y2 = host_from(da, n);
            compare(y2, r, n, 0.0, 0.0, "add_channel in place C=%d HW=%d", C, HW);
            free(y); free(y0); free(y2);
            if (i == 1)
                BENCH(0, 8.0 * n, g_gpu->add_channel(g_gpu, dd, da, dv, C, HW), "add_channel C=%d HW=%d", C, HW);
        }
        gpu_sync("add_channel");
        dev_free(da); dev_free(dv); dev_free(dd);
        free(a); free(v); free(r); free(r0);
    }
}

static void test_transpose(void) {
    NEED_GPU();
    /* batch, R, C: NHWC <-> NCHW of Hiera maps, the decoder's [tokens, C] <-> [C, HW] */
    const int shapes[][4] = { { 1, 65536, 96, 1 }, { 1, 4096, 256, 0 }, { 1, 256, 4096, 0 }, { 8, 33, 7, 0 },
                              { 3, 1, 13, 0 }, { 2, 13, 1, 0 }, { 1, 1, 1, 0 }, { 5, 31, 65, 0 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int B = shapes[i][0], R = shapes[i][1], C = shapes[i][2];
        size_t n = (size_t)B * R * C;
        float *s = rand_buf(n, 1.0f), *r = zero_buf(n);
        g_ref->transpose(g_ref, s, r, B, R, C);
        float *ds = dev_from(s, n), *dd = dev_poison(n);
        if (ds && dd) {
            g_gpu->transpose(g_gpu, ds, dd, B, R, C);
            float *y = host_from(dd, n);
            compare(y, r, n, 0.0, 0.0, "transpose batch=%d R=%d C=%d", B, R, C);
            free(y);
            if (shapes[i][3])
                BENCH(0, 8.0 * n, g_gpu->transpose(g_gpu, ds, dd, B, R, C), "transpose %dx%dx%d", B, R, C);
        }
        gpu_sync("transpose");
        dev_free(ds); dev_free(dd);
        free(s); free(r);
    }
}

/* ------------------------------------------------------------------ convolutions */

typedef struct { const char *name; int Cin, H, W, Cout, kh, kw, stride, pad, bias, bench; } conv_case;

static void run_conv2d(const conv_case *c) {
    int Ho = (c->H + 2 * c->pad - c->kh) / c->stride + 1, Wo = (c->W + 2 * c->pad - c->kw) / c->stride + 1;
    size_t wsz = (size_t)c->Cin * c->kh * c->kw, plane = (size_t)Ho * Wo;
    size_t xn = (size_t)c->Cin * c->H * c->W, wn = (size_t)c->Cout * wsz, yn = (size_t)c->Cout * plane;
    float *x = rand_buf(xn, 1.0f), *w = rand_buf(wn, 1.0f), *b = c->bias ? rand_buf((size_t)c->Cout, 1.0f) : NULL;
    float *dx = dev_from(x, xn), *dw = dev_from(w, wn), *db = b ? dev_from(b, (size_t)c->Cout) : NULL,
          *dy = dev_poison(yn);
    if (dx && dw && dy && (!b || db)) {
        g_gpu->conv2d(g_gpu, dx, dw, db, dy, c->Cin, c->H, c->W, c->Cout, c->kh, c->kw, c->stride, c->pad);
        if (gpu_sync("conv2d")) {
            float *y = host_from(dy, yn), *yr = zero_buf(plane);
            cmp_t cm;
            cmp_init(&cm, gemm_atol((int)wsz), GEMM_RTOL);
            /* every channel when few, else 5 of them (first, last, one of a partial tile) */
            int chans[5] = { 0, c->Cout / 3, c->Cout / 2 + 1, c->Cout - 2, c->Cout - 1 };
            int nch = c->Cout <= 5 ? c->Cout : 5;
            for (int i = 0; i < nch; i++) {
                int co = c->Cout <= 5 ? i : chans[i];
                g_ref->conv2d(g_ref, x, w + (size_t)co * wsz, b ? b + co : NULL, yr, c->Cin, c->H, c->W, 1, c->kh,
                              c->kw, c->stride, c->pad);
                cmp_add(&cm, y + (size_t)co * plane, yr, plane, (size_t)co * plane);
            }
            cmp_report(&cm, "conv2d %s (Cin=%d %dx%d Cout=%d k=%dx%d s=%d p=%d bias=%d)", c->name, c->Cin, c->H, c->W,
                       c->Cout, c->kh, c->kw, c->stride, c->pad, c->bias);
            free(y); free(yr);
            if (c->bench)
                BENCH(2.0 * yn * wsz, 4.0 * (xn + wn + yn),
                      g_gpu->conv2d(g_gpu, dx, dw, db, dy, c->Cin, c->H, c->W, c->Cout, c->kh, c->kw, c->stride,
                                    c->pad),
                      "conv2d %s", c->name);
        }
    }
    dev_free(dx); dev_free(dw); dev_free(db); dev_free(dy);
    free(x); free(w); free(b);
}

static const conv_case conv_cases[] = {
    /* Hiera PatchEmbed 7x7 s4 p3, 3 -> 96 (tiny) / 144 (large) */
    { "patch embed 256 tiny", 3, 256, 256, 96, 7, 7, 4, 3, 1, 0 },
    { "patch embed 256 large", 3, 256, 256, 144, 7, 7, 4, 3, 1, 0 },
    { "patch embed 1024 tiny", 3, 1024, 1024, 96, 7, 7, 4, 3, 1, 1 },
    { "patch embed 1024 large", 3, 1024, 1024, 144, 7, 7, 4, 3, 1, 1 },
    /* prompt encoder mask_downscaling: 2x2 s2 convs, then 1x1 (the cuBLAS path) */
    { "mask down 1", 1, 256, 256, 4, 2, 2, 2, 0, 1, 1 },
    { "mask down 2", 4, 128, 128, 16, 2, 2, 2, 0, 1, 0 },
    { "mask down 1x1", 16, 64, 64, 256, 1, 1, 1, 0, 1, 0 },
    { "neck 1x1", 768, 32, 32, 256, 1, 1, 1, 0, 0, 0 },
    /* odd: taps over one shared-memory step (64*9 = 576 > 256), partial channel tiles */
    { "3x3 many taps", 64, 17, 19, 33, 3, 3, 1, 1, 1, 0 },
    { "3x3 s2 p1", 7, 13, 9, 17, 3, 3, 2, 1, 0, 0 },
    { "3x3 s1 p1", 3, 5, 7, 5, 3, 3, 1, 1, 1, 0 },
    { "5x5 p3 on 2x2", 2, 2, 2, 3, 5, 5, 1, 3, 1, 0 },
    { "1x1 s2", 5, 9, 9, 6, 1, 1, 2, 0, 1, 0 },
    { "1x1 p1", 5, 4, 3, 7, 1, 1, 1, 1, 1, 0 },
    { "1x3", 4, 6, 11, 33, 1, 3, 1, 0, 0, 0 },
    { "1x1x1", 1, 1, 1, 1, 1, 1, 1, 0, 1, 0 },
    { "17x17 kernel", 2, 20, 20, 3, 17, 17, 1, 8, 1, 0 },
};

static void test_conv2d(void) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) run_conv2d(&conv_cases[i]);
}

static void run_convt(int Cin, int H, int W, int Cout, int with_bias, int bench) {
    size_t plane = (size_t)4 * H * W, xn = (size_t)Cin * H * W, wn = (size_t)Cin * Cout * 4, yn = (size_t)Cout * plane;
    float *x = rand_buf(xn, 1.0f), *w = rand_buf(wn, 1.0f), *b = with_bias ? rand_buf((size_t)Cout, 1.0f) : NULL;
    float *dx = dev_from(x, xn), *dw = dev_from(w, wn), *db = b ? dev_from(b, (size_t)Cout) : NULL,
          *dy = dev_poison(yn);
    if (dx && dw && dy && (!b || db)) {
        g_gpu->conv_transpose2x2(g_gpu, dx, dw, db, dy, Cin, H, W, Cout);
        if (gpu_sync("conv_transpose2x2")) {
            float *y = host_from(dy, yn), *yr = zero_buf(plane), *w1 = zero_buf((size_t)Cin * 4);
            cmp_t cm;
            cmp_init(&cm, gemm_atol(Cin), GEMM_RTOL);
            int chans[5] = { 0, Cout / 3, Cout / 2 + 1, Cout - 2, Cout - 1 };
            int nch = Cout <= 5 ? Cout : 5;
            for (int i = 0; i < nch; i++) {
                int co = Cout <= 5 ? i : chans[i];
                /* w[Cin, Cout, 2, 2] restricted to one output channel */
                for (int ci = 0; ci < Cin; ci++)
                    memcpy(w1 + (size_t)ci * 4, w + ((size_t)ci * Cout + co) * 4, 4 * sizeof(float));
                g_ref->conv_transpose2x2(g_ref, x, w1, b ? b + co : NULL, yr, Cin, H, W, 1);
                cmp_add(&cm, y + (size_t)co * plane, yr, plane, (size_t)co * plane);
            }
            cmp_report(&cm, "conv_transpose2x2 Cin=%d %dx%d Cout=%d bias=%d", Cin, H, W, Cout, with_bias);
            free(y); free(yr); free(w1);
            if (bench)
                BENCH(2.0 * yn * Cin, 4.0 * (xn + wn + yn),
                      g_gpu->conv_transpose2x2(g_gpu, dx, dw, db, dy, Cin, H, W, Cout), "conv_transpose2x2 %d->%d @%dx%d",
                      Cin, Cout, H, W);
        }
    }
    dev_free(dx); dev_free(dw); dev_free(db); dev_free(dy);
    free(x); free(w); free(b);
}

static void test_conv_transpose2x2(void) {
    NEED_GPU();
    run_convt(256, 64, 64, 64, 1, 1);  /* mask decoder output_upscaling[0] */
    run_convt(64, 128, 128, 32, 1, 1); /* output_upscaling[3] */
    run_convt(1, 1, 1, 1, 1, 0);
    run_convt(7, 5, 3, 13, 0, 0);
    run_convt(300, 17, 19, 70, 1, 0); /* several weight steps and channel tiles */
}

/* ------------------------------------------------------------------ layout */

static void run_window(int H, int W, int C, int wh, int ww, int bench) {
    int nwy = (H + wh - 1) / wh, nwx = (W + ww - 1) / ww;
    size_t xn = (size_t)H * W * C, wn = (size_t)nwy * nwx * wh * ww * C;
    float *x = rand_buf(xn, 1.0f), *win = zero_buf(wn);
    g_ref->window_partition(g_ref, x, win, H, W, C, wh, ww);
    float *dx = dev_from(x, xn), *dwin = dev_poison(wn), *dout = dev_poison(xn);
    if (dx && dwin && dout) {
        g_gpu->window_partition(g_gpu, dx, dwin, H, W, C, wh, ww);
        float *y = host_from(dwin, wn);
        compare(y, win, wn, 0.0, 0.0, "window_partition %dx%d C=%d window %dx%d", H, W, C, wh, ww);
        free(y);
        /* unpartition a fresh window tensor onto the shortcut x */
        float *w2 = rand_buf(wn, 1.0f), *r = zero_buf(xn);
        g_ref->window_unpartition_add(g_ref, w2, x, r, H, W, C, wh, ww, nwx);
        g_gpu->upload(g_gpu, dwin, w2, wn * sizeof(float));
        g_gpu->window_unpartition_add(g_gpu, dwin, dx, dout, H, W, C, wh, ww, nwx);
        float *u = host_from(dout, xn);
        compare(u, r, xn, 0.0, 0.0, "window_unpartition_add %dx%d C=%d window %dx%d", H, W, C, wh, ww);
        g_gpu->window_unpartition_add(g_gpu, dwin, dx, dx, H, W, C, wh, ww, nwx); /* out == shortcut */
        float *u2 = host_from(dx, xn);
        compare(u2, r, xn, 0.0, 0.0, "window_unpartition_add in place %dx%d C=%d window %dx%d", H, W, C, wh, ww);
        free(u); free(u2); free(w2); free(r);
        if (bench) {
            BENCH(0, 4.0 * (xn + wn), g_gpu->window_partition(g_gpu, dx, dwin, H, W, C, wh, ww),
                  "window_partition %dx%d C=%d w%d", H, W, C, wh);
            BENCH(0, 4.0 * (2 * xn + wn), g_gpu->window_unpartition_add(g_gpu, dwin, dx, dout, H, W, C, wh, ww, nwx),
                  "window_unpartition_add %dx%d C=%d w%d", H, W, C, wh);
        }
    }
    gpu_sync("window ops");
    dev_free(dx); dev_free(dwin); dev_free(dout);
    free(x); free(win);
}

static void test_window(void) {
    NEED_GPU();
    run_window(64, 64, 384, 14, 14, 0); /* tiny block 10: 64x64 map, window 14, padded to 70 */
    run_window(256, 256, 96, 8, 8, 1);  /* stage 0 at 1024 */
    run_window(32, 32, 768, 7, 7, 0);   /* stage 3, padded to 35 */
    run_window(13, 7, 3, 5, 4, 0);
    run_window(1, 1, 1, 1, 1, 0);
    run_window(9, 5, 33, 9, 5, 0);      /* one window, no padding */
}

static void run_maxpool(int n, int H, int W, int C, ptrdiff_t pixel_stride, const char *name, int bench) {
    int Ho = H / 2, Wo = W / 2;
    size_t xn = (size_t)n * H * W * pixel_stride, yn = (size_t)n * Ho * Wo * C;
    float *x = rand_buf(xn, 1.0f), *r = zero_buf(yn);
    g_ref->maxpool2x2(g_ref, x, r, n, H, W, C, pixel_stride);
    float *dx = dev_from(x, xn), *dy = dev_poison(yn);
    if (dx && dy) {
        g_gpu->maxpool2x2(g_gpu, dx, dy, n, H, W, C, pixel_stride);
        float *y = host_from(dy, yn);
        compare(y, r, yn, 0.0, 0.0, "maxpool2x2 %s n=%d %dx%d C=%d stride %td", name, n, H, W, C, pixel_stride);
        free(y);
        if (bench)
            BENCH(0, 4.0 * (4 * yn + yn), g_gpu->maxpool2x2(g_gpu, dx, dy, n, H, W, C, pixel_stride), "maxpool2x2 %s",
                  name);
    }
    gpu_sync("maxpool2x2");
    dev_free(dx); dev_free(dy);
    free(x); free(r);
}

static void test_maxpool(void) {
    NEED_GPU();
    /* q inside packed qkv rows [tokens, 3*dim_out] at the stage transitions */
    run_maxpool(1, 256, 256, 192, 576, "q of qkv s0->s1 @1024", 1);
    run_maxpool(1, 64, 64, 384, 1152, "q of qkv s1->s2 @512", 0);
    run_maxpool(16, 8, 8, 96, 288, "windowed q", 0);
    run_maxpool(3, 7, 5, 13, 13, "odd dense", 0);
    run_maxpool(2, 2, 2, 1, 3, "2x2 strided", 0);
}

static void test_upsample_nearest(void) {
    NEED_GPU();
    const int shapes[][4] = { { 256, 32, 32, 0 }, { 256, 64, 64, 1 }, { 3, 1, 1, 0 }, { 5, 3, 7, 0 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int C = shapes[i][0], h = shapes[i][1], w = shapes[i][2];
        size_t sn = (size_t)C * h * w, dn = sn * 4;
        float *s = rand_buf(sn, 1.0f), *d = rand_buf(dn, 1.0f), *r = malloc(dn * sizeof(float));
        memcpy(r, d, dn * sizeof(float));
        g_ref->upsample_nearest2x_add(g_ref, r, s, C, h, w);
        float *ds = dev_from(s, sn), *dd = dev_from(d, dn);
        if (ds && dd) {
            g_gpu->upsample_nearest2x_add(g_gpu, dd, ds, C, h, w);
            float *y = host_from(dd, dn);
            compare(y, r, dn, 0.0, 0.0, "upsample_nearest2x_add C=%d %dx%d", C, h, w);
            free(y);
            if (shapes[i][3])
                BENCH(0, 4.0 * (2 * dn + sn), g_gpu->upsample_nearest2x_add(g_gpu, dd, ds, C, h, w),
                      "upsample_nearest2x_add C=%d %dx%d", C, h, w);
        }
        gpu_sync("upsample_nearest2x_add");
        dev_free(ds); dev_free(dd);
        free(s); free(d); free(r);
    }
}

static void test_upsample_bilinear(void) {
    NEED_GPU();
    /* n, ls, w, h: low-res masks 256 -> image size (w x h), and odd ones incl. identity
     * and downscaling */
    const int shapes[][5] = { { 1, 256, 1800, 1200, 1 }, { 3, 256, 1024, 1024, 1 }, { 4, 256, 1200, 1800, 0 },
                              { 2, 1, 7, 5, 0 }, { 1, 13, 33, 1, 0 }, { 2, 7, 7, 7, 0 }, { 1, 256, 64, 64, 0 },
                              { 1, 256, 257, 255, 0 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int n = shapes[i][0], ls = shapes[i][1], w = shapes[i][2], h = shapes[i][3];
        size_t ln = (size_t)n * ls * ls, on = (size_t)n * w * h;
        float *low = rand_buf(ln, 20.0f), *r = zero_buf(on);
        g_ref->upsample_bilinear(g_ref, low, r, n, ls, w, h);
        float *dl = dev_from(low, ln), *dout = dev_poison(on);
        if (dl && dout) {
            g_gpu->upsample_bilinear(g_gpu, dl, dout, n, ls, w, h);
            float *y = host_from(dout, on);
            compare(y, r, on, EW_ATOL, EW_RTOL, "upsample_bilinear n=%d %d -> %dx%d (w x h)", n, ls, w, h);
            free(y);
            if (shapes[i][4])
                BENCH(0, 4.0 * (ln + on), g_gpu->upsample_bilinear(g_gpu, dl, dout, n, ls, w, h),
                      "upsample_bilinear n=%d %d -> %dx%d", n, ls, w, h);
        }
        gpu_sync("upsample_bilinear");
        dev_free(dl); dev_free(dout);
        free(low); free(r);
    }
}

/* ------------------------------------------------------------------ errors (last) */

/* A fault inside an op is reported by sync, naming the op when SAMC_CUDA_SYNC=1, and
 * nothing exits. It poisons the CUDA context for the rest of the process, so this
 * runs last. */
static void test_error_reporting(void) {
    NEED_GPU();
    setenv("SAMC_CUDA_SYNC", "1", 1);
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    unsetenv("SAMC_CUDA_SYNC");
    CHECKF(o != NULL, "second backend: %s", err);
    if (!o) return;
    CHECK(o->sync(o, err) == 0);
    o->relu(o, (float *)(uintptr_t)256, 1 << 20); /* an address no allocation has */
    err[0] = '\0';
    CHECK(o->sync(o, err) == -1);
    printf("  reported: %s\n", err);
    CHECKF(strstr(err, "relu") != NULL, "error names no op: %s", err);
    err[0] = '\0';
    CHECK(o->sync(o, err) == -1); /* it stays */
    samc_ops_cuda_destroy(o);
}

TEST_MAIN(TEST_CASE(test_memory), TEST_CASE(test_linear), TEST_CASE(test_matmul), TEST_CASE(test_gemm_zero_k),
          TEST_CASE(test_lowp_rounding), TEST_CASE(test_linear_matmul_bf16), TEST_CASE(test_linear_matmul_fp16),
          TEST_CASE(test_attention), TEST_CASE(test_layer_norm), TEST_CASE(test_layer_norm2d), TEST_CASE(test_unary),
          TEST_CASE(test_add), TEST_CASE(test_add_channel), TEST_CASE(test_transpose), TEST_CASE(test_conv2d),
          TEST_CASE(test_conv_transpose2x2), TEST_CASE(test_window), TEST_CASE(test_maxpool),
          TEST_CASE(test_upsample_nearest), TEST_CASE(test_upsample_bilinear), TEST_CASE(test_error_reporting))
