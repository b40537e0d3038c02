/* tests/test_backend_ops.c: every op of kernels/ops.h on every available backend against
 * cpu_ref (the idea of ggml's test-backend-ops). Backends: cpu_fast with the kernels this
 * CPU dispatches to ("cpu_fast", e.g. avx512 or avx2+fma), cpu_fast with the AVX2 table
 * when the best is AVX-512 ("cpu_fast_avx2"), cpu_fast with its portable kernels
 * ("cpu_fast_scalar"), and "cuda": the GPU, or the CUDA simulator when SAMC_CUDA_LIB
 * names build/sim/libsamc_cuda_sim.so (make sim-test). On an AVX-512 CPU the isa_bits
 * cases also check that the avx512 and avx2 tables agree bit for bit.
 *
 * Inputs are random from a fixed seed; outputs start as NaN, so an element an op never
 * writes fails. Large problems run whole on the backend and the reference on a sample of
 * rows / channels / queries (the reference ops have no coupling between rows). Compute
 * ops pass with |got - ref| <= atol + rtol*|ref| per element; data movement, adds and
 * ReLU must match bit for bit. One line per (op, backend, shape): OK, or NOT OK with the
 * count out of tolerance, the first bad index and both values, and the largest error.
 *
 *   test_backend_ops [--op a,b] [--backend a,b] [--shape SUBSTR] [--size odd,small,sam,big]
 *                    [--perf] [--list]
 * Shapes come in size classes: odd (tiny, ragged), small (the SAM2.1 micro config's and
 * 256-px shapes), sam (SAM2.1 tiny/large at 512-1024 px), big (the largest of those).
 * SAMC_TEST_QUICK=1, or a sanitizer build, leaves out big; the portable kernels never run
 * big. --perf also times each case (median of 20 runs after 3 warm-ups; the CUDA backend
 * with CUDA events of the runtime it was loaded with) and prints GFLOP/s or GB/s.
 *
 * Without a CUDA device the cuda cases are skipped with one line; with a device present
 * (samc_cuda_device_info succeeds) a run that selected cuda but ran none of its cases
 * fails.
 *
 * The CUDA backend also runs as "cuda_bf16" and "cuda_fp16": instances in a reduced
 * precision, where every buffer the test allocates holds 16-bit values (kernels/cuda/
 * NOTES.md, "16-bit activations"). Every op test runs there too: each input is rounded to
 * the precision on the host as it is uploaded (so the reference sees exactly what the
 * device reads), exact ops must match the reference rounded once to 16 bits, and
 * computing ops get the 16-bit unit roundoff on top of their fp32 tolerance. */
#include "kernels/cpu_fast_kernels.h"
#include "kernels/cuda_stub.h"
#include "kernels/ops.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#include "tests/test_data.h"
#include "tests/test_lowp.h"
#include <stdarg.h>
#include <stdint.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* ------------------------------------------------------------------ options */

enum { SZ_ODD = 1, SZ_SMALL = 2, SZ_SAM = 4, SZ_BIG = 8 };

static struct {
    const char *ops, *backends, *shape;
    int sizes, perf, list;
} g_opt = { NULL, NULL, NULL, SZ_ODD | SZ_SMALL | SZ_SAM | SZ_BIG, 0, 0 };

static int quick(void) {
    const char *q = getenv("SAMC_TEST_QUICK");
    return SANITIZED || (q && *q && strcmp(q, "0") != 0);
}

/* `name` is one of the comma-separated words of `list` (NULL: everything). */
static int in_list(const char *list, const char *name) {
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        p += len + (e != NULL);
    }
    return 0;
}

static int parse_sizes(const char *s) {
    static const char *const names[] = { "odd", "small", "sam", "big" };
    int m = 0;
    for (int i = 0; i < 4; i++)
        if (in_list(s, names[i])) m |= 1 << i;
    return m;
}

/* ------------------------------------------------------------------ backends */

typedef struct {
    const char *name, *detail; /* "cpu_fast" / "avx2+fma"; "cuda" / the device line */
    samc_ops *ops;
    int is_cuda, portable;
    int ran, skipped;          /* cases run / skipped on it */
    int prec;                  /* cuda_bf16 / cuda_fp16 / cpu_fast_bf16: SAMC_OPS_BF16 / FP16; else 0 */
} backend;

static backend g_be[6];
static int g_nbe;
static const samc_ops *g_ref;
static int g_passed, g_failed, g_skipped;

/* ------------------------------------------------------------------ backend memory */

static float *nan_host(size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    if (!h) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    return h;
}

/* Unit roundoff of the backend's activations: 2^-8 bf16, 2^-11 fp16, 0 fp32. A computing
 * op's tolerance grows by lp(be, x) = x * u (x: 1 for the rounding of the output, more
 * where the kernel rounds inside, e.g. attention's probabilities). */
static double be_u(const backend *b) { return b->prec == SAMC_OPS_BF16 ? 1.0 / 256 : b->prec == SAMC_OPS_FP16 ? 1.0 / 2048 : 0; }
static double lp(const backend *b, double x) { return be_u(b) * x; }

/* n floats of the backend's memory holding h (or NaN when h is NULL); NULL if the
 * allocation failed (the case then fails). A 16-bit backend stores h rounded (its
 * uploads write 16-bit values, as its ops do), so h is rounded here too, in place: the
 * reference computed from it afterwards sees the device's inputs. */
static float *be_from(const backend *b, float *h, size_t n) {
    if (h && b->prec) test_round_lowp_buf(h, h, n, b->prec);
    if (b->ops->host_memory) {
        float *p = nan_host(n);
        if (h && n) memcpy(p, h, n * sizeof(float));
        return p;
    }
    float *d = b->ops->alloc(b->ops, (n ? n : 1) * sizeof(float));
    if (!d) return NULL;
    float *tmp = h ? NULL : nan_host(n);
    if (n) b->ops->upload(b->ops, d, h ? h : tmp, n * sizeof(float));
    free(tmp);
    return d;
}
static float *be_nan(const backend *b, size_t n) { return be_from(b, NULL, n); }

static float *be_to_host(const backend *b, const float *d, size_t n) {
    float *h = nan_host(n);
    if (d && n) {
        if (b->ops->host_memory) memcpy(h, d, n * sizeof(float));
        else b->ops->download(b->ops, h, d, n * sizeof(float));
    }
    return h;
}

static void be_free(const backend *b, void *p) {
    if (!p) return;
    if (b->ops->host_memory) free(p);
    else b->ops->free(b->ops, p);
}

static int be_sync(const backend *b, char *err) {
    err[0] = '\0';
    return b->ops->sync ? b->ops->sync(b->ops, err) : 0;
}

/* ------------------------------------------------------------------ one case on one backend */

typedef struct {
    const backend *be;
    char what[256];    /* "linear cuda [odd M=7 N=13 K=33 bias]" */
    double atol, rtol, max_err;
    size_t n, bad, worst, first_bad;
    float worst_got, worst_ref, bad_got, bad_ref;
    char fail[512];    /* a failure other than values (allocation, sync error) */
} run_t;

static void run_begin(run_t *r, const backend *be, double atol, double rtol, const char *op, const char *fmt, ...) {
    memset(r, 0, sizeof *r);
    r->be = be;
    r->atol = atol;
    r->rtol = rtol;
    r->max_err = -1.0;
    int k = snprintf(r->what, sizeof r->what, "%s %s [", op, be->name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->what + k, sizeof r->what - (size_t)k, fmt, ap);
    va_end(ap);
    size_t len = strlen(r->what);
    snprintf(r->what + len, sizeof r->what - len, "]");
}

static void run_fail(run_t *r, const char *fmt, ...) {
    if (r->fail[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->fail, sizeof r->fail, fmt, ap);
    va_end(ap);
}

/* Adds got[i] vs ref[i]; base is the index of got[0] in the whole output. An exact case
 * (atol = rtol = 0) on a backend with 16-bit activations (cuda_bf16 / cuda_fp16; not
 * cpu_fast_bf16, whose stores are fp32) compares with the reference rounded to 16 bits
 * once, as the device's fp32 result is on its store. */
static void run_cmp(run_t *r, const float *got, const float *ref_in, size_t n, size_t base) {
    int exact = r->atol == 0.0 && r->rtol == 0.0, store16 = r->be->prec && r->be->is_cuda;
    for (size_t i = 0; i < n; i++) {
        float ref = exact && store16 ? test_round_lowp(ref_in[i], r->be->prec) : ref_in[i];
        double e = fabs((double)got[i] - (double)ref);
        int ok = exact ? memcmp(&got[i], &ref, sizeof(float)) == 0
                       : e <= r->atol + r->rtol * fabs((double)ref); /* NaN fails */
        if (e != e || (!ok && e == 0.0)) e = INFINITY; /* NaN, or bits differ (e.g. -0 vs 0) */
        if (e > r->max_err) { r->max_err = e; r->worst = base + i; r->worst_got = got[i]; r->worst_ref = ref; }
        if (!ok) {
            if (!r->bad) { r->first_bad = base + i; r->bad_got = got[i]; r->bad_ref = ref; }
            r->bad++;
        }
    }
    r->n += n;
}

/* The backend's first error, if any, fails the case. */
static int run_sync(run_t *r) {
    char err[512];
    if (be_sync(r->be, err) == 0) return 1;
    run_fail(r, "sync: %s", err);
    return 0;
}

/* One verdict line; returns whether the case passed. */
static int run_end(run_t *r) {
    int ok = !r->fail[0] && r->n > 0 && r->bad == 0;
    backend *be = (backend *)r->be;
    be->ran++;
    if (ok) {
        g_passed++;
        printf("OK     %s: max abs err %.3g (%zu values)\n", r->what, r->max_err, r->n);
    } else {
        g_failed++;
        if (r->fail[0])
            printf("NOT OK %s: %s\n", r->what, r->fail);
        else if (!r->n)
            printf("NOT OK %s: nothing compared\n", r->what);
        else
            printf("NOT OK %s: %zu of %zu out of tolerance (atol %.2g rtol %.2g), first at [%zu] got=%.9g ref=%.9g; "
                   "max abs err %.3g at [%zu] got=%.9g ref=%.9g\n", r->what, r->bad, r->n, r->atol, r->rtol,
                   r->first_bad, r->bad_got, r->bad_ref, r->max_err, r->worst, r->worst_got, r->worst_ref);
    }
    fflush(stdout);
    return ok;
}

/* Compares whole arrays and ends the case. */
static int compare(const backend *be, const float *got, const float *ref, size_t n, double atol, double rtol,
                   const char *op, const char *fmt, ...) {
    run_t r;
    char shape[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(shape, sizeof shape, fmt, ap);
    va_end(ap);
    run_begin(&r, be, atol, rtol, op, "%s", shape);
    run_cmp(&r, got, ref, n, 0);
    return run_end(&r);
}

/* A case that failed before anything could be compared. */
static void fail_case(const backend *be, const char *op, const char *why, const char *fmt, ...) {
    run_t r;
    char shape[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(shape, sizeof shape, fmt, ap);
    va_end(ap);
    run_begin(&r, be, 0, 0, op, "%s", shape);
    run_fail(&r, "%s", why);
    run_end(&r);
}

/* ------------------------------------------------------------------ perf */

#define PERF_WARM 3
#define PERF_REPS 20
typedef int (*ev_create_fn)(void **);
typedef int (*ev_record_fn)(void *, void *);
typedef int (*ev_sync_fn)(void *);
typedef int (*ev_elapsed_fn)(float *, void *, void *);
static struct {
    ev_record_fn record;
    ev_sync_fn sync;
    ev_elapsed_fn elapsed;
    void *ev[PERF_WARM + PERF_REPS + 1];
    int ready;
} g_ev;
static double g_t[PERF_WARM + PERF_REPS + 1];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The CUDA runtime the backend library runs on (kernels/cuda_stub.h): its events on the
 * legacy default stream order with the backend's blocking stream. */
static int perf_events_ready(void) {
    if (g_ev.ready) return g_ev.ready > 0;
    ev_create_fn create = (ev_create_fn)samc_cuda_symbol("cudaEventCreate");
    g_ev.record = (ev_record_fn)samc_cuda_symbol("cudaEventRecord");
    g_ev.sync = (ev_sync_fn)samc_cuda_symbol("cudaEventSynchronize");
    g_ev.elapsed = (ev_elapsed_fn)samc_cuda_symbol("cudaEventElapsedTime");
    g_ev.ready = create && g_ev.record && g_ev.sync && g_ev.elapsed ? 1 : -1;
    for (int i = 0; g_ev.ready > 0 && i <= PERF_WARM + PERF_REPS; i++)
        if (create(&g_ev.ev[i]) != 0) g_ev.ready = -1;
    if (g_ev.ready < 0) printf("PERF   cuda: no CUDA events in the loaded runtime: no timings\n");
    return g_ev.ready > 0;
}

static int perf_begin(const backend *be) { return g_opt.perf && (!be->is_cuda || perf_events_ready()); }
static void perf_mark(const backend *be, int i) {
    if (be->is_cuda) g_ev.record(g_ev.ev[i], NULL);
    else g_t[i] = now_s();
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void perf_end(const backend *be, const char *what, double flops, double bytes) {
    double s[PERF_REPS];
    if (be->prec) bytes *= 0.5; /* the cases count fp32 bytes; 16-bit activations move half */
    int n = PERF_WARM + PERF_REPS;
    if (be->is_cuda) {
        g_ev.record(g_ev.ev[n], NULL);
        if (g_ev.sync(g_ev.ev[n]) != 0) { printf("PERF   %s: event sync failed\n", what); return; }
        for (int i = 0; i < PERF_REPS; i++) {
            float ms = 0.0f;
            g_ev.elapsed(&ms, g_ev.ev[PERF_WARM + i], g_ev.ev[PERF_WARM + i + 1]);
            s[i] = ms * 1e-3;
        }
    } else {
        g_t[n] = now_s();
        for (int i = 0; i < PERF_REPS; i++) s[i] = g_t[PERF_WARM + i + 1] - g_t[PERF_WARM + i];
    }
    qsort(s, PERF_REPS, sizeof s[0], cmp_double);
    double med = 0.5 * (s[PERF_REPS / 2 - 1] + s[PERF_REPS / 2]);
    if (flops > 0)
        printf("PERF   %-70s %9.4f ms %9.2f GFLOP/s %8.1f GB/s\n", what, med * 1e3, flops / med * 1e-9, bytes / med * 1e-9);
    else
        printf("PERF   %-70s %9.4f ms %8.1f GB/s\n", what, med * 1e3, bytes / med * 1e-9);
    fflush(stdout);
}

/* Times STMT (one op call on the backend's buffers) when --perf is on. */
#define PERF(be, what, flops, bytes, STMT) do { \
    if (perf_begin(be)) { \
        for (int rep_ = 0; rep_ < PERF_WARM + PERF_REPS; rep_++) { perf_mark(be, rep_); STMT; } \
        perf_end(be, what, flops, bytes); } } while (0)

/* ------------------------------------------------------------------ selection */

/* Whether (op, backend, shape of size class sz and `flops`) runs: the filters, and the
 * rule that the portable kernels never run big shapes and, in quick / sanitizer runs,
 * nothing over 1e8 flops (every case still runs once: on the dispatched kernels). */
static int want(const backend *be, const char *op, const char *shape, int sz, double flops) {
    if (!in_list(g_opt.ops, op) || !(g_opt.sizes & sz)) return 0;
    if (g_opt.shape && !strstr(shape, g_opt.shape)) return 0;
    if (sz == SZ_BIG && (quick() || be->portable)) return 0;
    if (quick() && be->portable && flops > 1e8) return 0;
    if (g_opt.list) {
        printf("LIST   %s %s [%s]\n", op, be->name, shape);
        return 0;
    }
    return 1;
}

/* GEMM-like sums: rounding grows with the reduction length. */
static double gemm_atol(int K) { return 1e-5 + 2e-7 * K; }
#define GEMM_RTOL 1e-4
/* Device expf / erff may differ from the host's by a few ulps. */
#define EW_ATOL 1e-6
#define EW_RTOL 1e-5

/* Reference rows to compare: all of them for small M, else the first 7, 13 around the
 * middle and the last 9. */
static int sample_rows(int M, int *r0, int *len) {
    if (M <= 64) { r0[0] = 0; len[0] = M; return 1; }
    r0[0] = 0; len[0] = 7;
    r0[1] = M / 2 - 3; len[1] = 13;
    r0[2] = M - 9; len[2] = 9;
    return 3;
}

/* ------------------------------------------------------------------ linear / matmul */

typedef struct { const char *name; int sz, M, N, K, bias; } mnk;

static const mnk linear_cases[] = {
    { "odd", SZ_ODD, 1, 1, 1, 1 }, { "odd", SZ_ODD, 1, 17, 13, 0 }, { "odd", SZ_ODD, 7, 13, 17, 1 },
    { "odd", SZ_ODD, 13, 33, 7, 1 }, { "odd", SZ_ODD, 17, 7, 33, 0 }, { "odd", SZ_ODD, 33, 1, 1, 1 },
    { "odd", SZ_ODD, 7, 13, 33, 0 }, { "odd", SZ_ODD, 33, 7, 1, 1 }, { "odd", SZ_ODD, 5, 16, 257, 1 },
    { "odd", SZ_ODD, 61, 47, 300, 1 }, { "odd", SZ_ODD, 97, 129, 513, 0 },
    /* micro (embed 16, d_model 32) and tiny at 256 px */
    { "micro hiera qkv s0", SZ_SMALL, 4096, 48, 16, 1 }, { "micro hiera mlp.1 s0", SZ_SMALL, 4096, 16, 64, 1 },
    { "micro decoder tokens", SZ_SMALL, 7, 32, 32, 1 }, { "micro decoder mlp", SZ_SMALL, 10, 256, 32, 1 },
    { "micro decoder k_proj", SZ_SMALL, 256, 16, 32, 0 }, { "tiny@256 hiera qkv s0", SZ_SMALL, 4096, 288, 96, 1 },
    { "tiny@256 hiera mlp.1 s3", SZ_SMALL, 64, 768, 3072, 1 },
    /* SAM2.1 tiny / large at 512 and 1024 px, decoder */
    { "decoder tokens", SZ_SAM, 7, 256, 256, 1 }, { "decoder mlp", SZ_SAM, 10, 2048, 256, 1 },
    { "decoder mlp.1", SZ_SAM, 10, 256, 2048, 0 }, { "decoder k_proj", SZ_SAM, 4096, 128, 256, 1 },
    { "decoder no bias", SZ_SAM, 4096, 256, 128, 0 }, { "hiera qkv s2", SZ_SAM, 4096, 1152, 384, 1 },
    { "hiera qkv s3 large", SZ_SAM, 1024, 2304, 768, 1 }, { "hiera qkv s0@512", SZ_SAM, 16384, 288, 96, 1 },
    { "hiera mlp s0@512", SZ_SAM, 16384, 384, 96, 1 }, { "odd large", SZ_SAM, 1999, 203, 1153, 1 },
    { "hiera qkv s1@1024", SZ_BIG, 16384, 576, 192, 0 }, { "hiera qkv s0@1024", SZ_BIG, 65536, 288, 96, 1 },
    { "hiera mlp.1 s0@1024", SZ_BIG, 65536, 96, 384, 1 }, { "hiera mlp.1 s2", SZ_BIG, 4096, 384, 1536, 1 },
    { "hiera mlp.1 s3", SZ_BIG, 1024, 768, 3072, 1 }, { "hiera-l qkv s3", SZ_BIG, 1024, 3456, 1152, 1 },
    { "hiera-l mlp s3", SZ_BIG, 1024, 4608, 1152, 0 },
    /* K past 4096 (cpu_fast packs B in column chunks narrower than 256 there): an odd one
     * with several chunks and a short last K block, SAM3's ViT MLP output layer and
     * Hiera-L's */
    { "odd long K", SZ_SAM, 61, 1100, 4500, 1 }, { "sam3 vit mlp.1", SZ_SAM, 577, 1024, 4736, 1 },
    { "hiera-l mlp.1 s3", SZ_BIG, 1024, 1152, 4608, 1 },
};

static const mnk matmul_cases[] = {
    { "odd", SZ_ODD, 1, 1, 1, 1 }, { "odd", SZ_ODD, 7, 13, 17, 0 }, { "odd", SZ_ODD, 17, 33, 1, 1 },
    { "odd", SZ_ODD, 13, 1, 7, 1 }, { "odd", SZ_ODD, 33, 17, 13, 0 }, { "odd", SZ_ODD, 6, 1000, 300, 1 },
    { "odd", SZ_ODD, 7, 13, 33, 0 },
    /* micro neck (d_model 32 <- 16..128 channels) and decoder conv_s0 / conv_s1 */
    { "micro neck s0", SZ_SMALL, 32, 4096, 16, 1 }, { "micro neck s3", SZ_SMALL, 32, 64, 128, 1 },
    { "micro conv_s0", SZ_SMALL, 4, 4096, 32, 1 }, { "micro conv_s1", SZ_SMALL, 8, 1024, 32, 0 },
    { "tiny@256 neck s0", SZ_SMALL, 256, 4096, 96, 1 },
    /* neck 1x1 convs (256 <- C at stride 4..32), decoder conv_s0 / conv_s1 */
    { "neck s2", SZ_SAM, 256, 4096, 384, 1 }, { "neck s3", SZ_SAM, 256, 1024, 768, 1 },
    { "conv_s1", SZ_SAM, 64, 16384, 256, 0 }, { "neck s1@1024", SZ_BIG, 256, 16384, 192, 1 },
    { "neck s0@1024", SZ_BIG, 256, 65536, 96, 1 }, { "conv_s0@1024", SZ_BIG, 32, 65536, 256, 1 },
};

/* linear: y[M,N] = x[M,K] · w[N,K]ᵀ + b[N]; matmul: c[M,N] = a[M,K] · b[K,N] + bias[M].
 * The first operand (x or a) is the one whose rows the reference samples. */
static void gemm_call(const samc_ops *o, int is_matmul, const float *p, const float *q, const float *bias, float *y,
                      int M, int N, int K) {
    if (is_matmul) o->matmul(o, p, q, bias, y, M, N, K);
    else o->linear(o, p, q, bias, y, M, N, K);
}

static void run_gemm(const backend *be, const mnk *s, int is_matmul) {
    size_t pn = (size_t)s->M * s->K, qn = (size_t)s->N * s->K, yn = (size_t)s->M * s->N;
    size_t nb = (size_t)(is_matmul ? s->M : s->N);
    const char *op = is_matmul ? "matmul" : "linear";
    float *p = rand_buf(pn, 1.0f), *q = rand_buf(qn, 1.0f), *b = s->bias ? rand_buf(nb, 1.0f) : NULL;
    float *dp = be_from(be, p, pn), *dq = be_from(be, q, qn), *db = b ? be_from(be, b, nb) : NULL;
    float *dy = be_nan(be, yn);
    run_t r;
    /* 16 bits: the product may be rounded before the bias is added (|x·w| ~ sqrt(K)/3) */
    run_begin(&r, be, gemm_atol(s->K) + lp(be, sqrt((double)s->K)), GEMM_RTOL + lp(be, 1), op, "%s M=%d N=%d K=%d%s",
              s->name, s->M, s->N, s->K,
              s->bias ? " bias" : "");
    if (!dp || !dq || !dy || (b && !db)) run_fail(&r, "allocation failed");
    else {
        gemm_call(be->ops, is_matmul, dp, dq, db, dy, s->M, s->N, s->K);
        if (run_sync(&r)) {
            float *y = be_to_host(be, dy, yn), *yr = zero_buf((size_t)64 * s->N);
            int r0[3], len[3], ns = sample_rows(s->M, r0, len);
            for (int i = 0; i < ns; i++) {
                const float *bi = b && is_matmul ? b + r0[i] : b; /* matmul's bias is per row */
                gemm_call(g_ref, is_matmul, p + (size_t)r0[i] * s->K, q, bi, yr, len[i], s->N, s->K);
                run_cmp(&r, y + (size_t)r0[i] * s->N, yr, (size_t)len[i] * s->N, (size_t)r0[i] * s->N);
            }
            if (be->is_cuda) { /* the same call again gives the same bits */
                gemm_call(be->ops, is_matmul, dp, dq, db, dy, s->M, s->N, s->K);
                float *y2 = be_to_host(be, dy, yn);
                if (memcmp(y, y2, yn * sizeof(float))) run_fail(&r, "a second run gave different results");
                free(y2);
            }
            free(y); free(yr);
        }
    }
    if (run_end(&r))
        PERF(be, r.what, 2.0 * s->M * s->N * s->K, 4.0 * (pn + qn + yn),
             gemm_call(be->ops, is_matmul, dp, dq, db, dy, s->M, s->N, s->K));
    be_free(be, dp); be_free(be, dq); be_free(be, db); be_free(be, dy);
    free(p); free(q); free(b);
}

static void test_gemm(const backend *be) {
    for (size_t i = 0; i < sizeof linear_cases / sizeof linear_cases[0]; i++) {
        const mnk *s = &linear_cases[i];
        if (want(be, "linear", s->name, s->sz, 2.0 * s->M * s->N * s->K)) run_gemm(be, s, 0);
    }
    for (size_t i = 0; i < sizeof matmul_cases / sizeof matmul_cases[0]; i++) {
        const mnk *s = &matmul_cases[i];
        if (want(be, "matmul", s->name, s->sz, 2.0 * s->M * s->N * s->K)) run_gemm(be, s, 1);
    }
}

/* linear_act: y = act(x · wᵀ + b) + r (ops.h; r aliases neither y nor x), as the MLP's
 * linears run it (mlp.0 + GELU, mlp.1 + the block's residual). With 16-bit
 * activations the CUDA backend folds bias, ReLU and residual into the GEMM under
 * SAMC_CUDA_VARIANT_GEMM=lt, everything (GELU too) into its own tensor-core GEMM under
 * GEMM=tc / lt_tc (kernels/cuda/NOTES.md), the own epilogue pass otherwise. */
typedef struct { const char *name; int sz, M, N, K, bias, act, res; } lin_act;

static const lin_act linear_act_cases[] = {
    { "odd", SZ_ODD, 7, 13, 17, 1, SAMC_ACT_NONE, 1 }, { "odd", SZ_ODD, 33, 7, 33, 1, SAMC_ACT_RELU, 0 },
    { "odd", SZ_ODD, 17, 16, 33, 1, SAMC_ACT_RELU, 1 }, { "odd", SZ_ODD, 13, 33, 7, 0, SAMC_ACT_GELU, 1 },
    { "odd", SZ_ODD, 61, 47, 300, 1, SAMC_ACT_GELU, 0 }, { "odd", SZ_ODD, 5, 16, 257, 0, SAMC_ACT_NONE, 1 },
    { "odd", SZ_ODD, 9, 24, 40, 1, SAMC_ACT_NONE, 1 }, { "odd", SZ_ODD, 1, 1, 1, 0, SAMC_ACT_RELU, 0 },
    { "micro hiera mlp.0 s0", SZ_SMALL, 4096, 64, 16, 1, SAMC_ACT_GELU, 0 },
    { "micro hiera mlp.1 s0", SZ_SMALL, 4096, 16, 64, 1, SAMC_ACT_NONE, 1 },
    { "micro decoder mlp", SZ_SMALL, 10, 256, 32, 1, SAMC_ACT_RELU, 0 },
    { "tiny@256 hiera mlp.1 s3", SZ_SMALL, 64, 768, 3072, 1, SAMC_ACT_NONE, 1 },
    /* Hiera-L at 1024 px: stage 1's MLP (K = 144: the output's traffic is most of the
     * time) and stage 3's (36 of the 48 blocks), the GELU linear and the residual one */
    { "hiera-l mlp.0 s0@1024", SZ_BIG, 65536, 576, 144, 1, SAMC_ACT_GELU, 0 },
    { "hiera-l mlp.1 s0@1024", SZ_BIG, 65536, 144, 576, 1, SAMC_ACT_NONE, 1 },
    { "hiera-l mlp.0 s2", SZ_BIG, 4096, 2304, 576, 1, SAMC_ACT_GELU, 0 },
    { "hiera-l mlp.1 s2", SZ_BIG, 4096, 576, 2304, 1, SAMC_ACT_NONE, 1 },
};

static void run_linear_act(const backend *be, const lin_act *s) {
    static const char *const act_name[] = { "", " relu", " gelu" };
    size_t xn = (size_t)s->M * s->K, wn = (size_t)s->N * s->K, yn = (size_t)s->M * s->N;
    float *x = rand_buf(xn, 1.0f), *w = rand_buf(wn, 1.0f), *b = s->bias ? rand_buf((size_t)s->N, 1.0f) : NULL;
    float *r = s->res ? rand_buf(yn, 1.0f) : NULL;
    float *dx = be_from(be, x, xn), *dw = be_from(be, w, wn), *db = b ? be_from(be, b, (size_t)s->N) : NULL;
    float *dy = be_nan(be, yn), *dr = r ? be_from(be, r, yn) : NULL;
    run_t t;
    /* 16 bits: the product may be rounded before the bias, activation and residual */
    run_begin(&t, be, gemm_atol(s->K) + lp(be, sqrt((double)s->K) + 2), GEMM_RTOL + lp(be, 1), "linear_act",
              "%s M=%d N=%d K=%d%s%s%s", s->name, s->M, s->N, s->K, s->bias ? " bias" : "", act_name[s->act],
              r ? " residual" : "");
    if (!dx || !dw || !dy || (b && !db) || (r && !dr)) run_fail(&t, "allocation failed");
    else {
        be->ops->linear_act(be->ops, dx, dw, db, dy, s->M, s->N, s->K, (samc_act)s->act, dr);
        if (run_sync(&t)) {
            float *y = be_to_host(be, dy, yn), *yr = zero_buf((size_t)64 * s->N);
            int r0[3], len[3], ns = sample_rows(s->M, r0, len);
            for (int i = 0; i < ns; i++) {
                g_ref->linear_act(g_ref, x + (size_t)r0[i] * s->K, w, b, yr, len[i], s->N, s->K, (samc_act)s->act,
                                  r ? r + (size_t)r0[i] * s->N : NULL);
                run_cmp(&t, y + (size_t)r0[i] * s->N, yr, (size_t)len[i] * s->N, (size_t)r0[i] * s->N);
            }
            /* a host backend's fused op (cpu_fast: the epilogue inside the GEMM) must give
             * the bits of its own linear, relu / gelu and add (ops.h) */
            if (be->ops->host_memory) {
                float *yu = nan_host(yn);
                samc_linear_act_unfused(be->ops, dx, dw, db, yu, s->M, s->N, s->K, (samc_act)s->act, dr);
                if (memcmp(y, yu, yn * sizeof(float)))
                    run_fail(&t, "not the bits of linear, then the activation, then add on this backend");
                free(yu);
            }
            free(y); free(yr);
        }
    }
    if (run_end(&t))
        PERF(be, t.what, 2.0 * s->M * s->N * s->K, 4.0 * (xn + wn + yn * (r ? 2 : 1)),
             be->ops->linear_act(be->ops, dx, dw, db, dy, s->M, s->N, s->K, (samc_act)s->act, dr));
    be_free(be, dx); be_free(be, dw); be_free(be, db); be_free(be, dy); be_free(be, dr);
    free(x); free(w); free(b); free(r);
}

static void test_linear_act(const backend *be) {
    for (size_t i = 0; i < sizeof linear_act_cases / sizeof linear_act_cases[0]; i++) {
        const lin_act *s = &linear_act_cases[i];
        if (want(be, "linear_act", s->name, s->sz, 2.0 * s->M * s->N * s->K)) run_linear_act(be, s);
    }
}

/* K == 0: the product is empty, y is the bias (or zero). */
static void test_gemm_zero_k(const backend *be) {
    if (!want(be, "gemm_zero_k", "K=0", SZ_ODD, 0)) return;
    float b[3] = { 1, 2, 3 }, want_lin[6] = { 1, 2, 3, 1, 2, 3 }, want_mm[6] = { 1, 1, 2, 2, 3, 3 }, zeros[6] = { 0 };
    float *db = be_from(be, b, 3), *dy = be_nan(be, 6);
    if (db && dy) {
        be->ops->linear(be->ops, NULL, NULL, db, dy, 2, 3, 0);
        float *y = be_to_host(be, dy, 6);
        compare(be, y, want_lin, 6, 0, 0, "gemm_zero_k", "linear M=2 N=3 K=0 bias");
        free(y);
        be->ops->matmul(be->ops, NULL, NULL, db, dy, 3, 2, 0);
        y = be_to_host(be, dy, 6);
        compare(be, y, want_mm, 6, 0, 0, "gemm_zero_k", "matmul M=3 N=2 K=0 bias");
        free(y);
        be->ops->matmul(be->ops, NULL, NULL, NULL, dy, 2, 3, 0);
        y = be_to_host(be, dy, 6);
        compare(be, y, zeros, 6, 0, 0, "gemm_zero_k", "matmul M=2 N=3 K=0");
        free(y);
    }
    be_free(be, db); be_free(be, dy);
}

/* ------------------------------------------------------------------ bf16 / fp16: the model's setting */

/* What the generic cases on cuda_bf16 / cuda_fp16 do not show: weights inside a
 * registered block, as the model has them. A fresh instance gets a block holding every
 * selected case's weight (and the decoder tokens case's activation) at 16-float slots,
 * the first at an odd offset; the GEMMs then read the block's 16-bit copy and the bias
 * from its fp32 values. Each case is checked against cpu_ref on the same inputs rounded
 * to 16 bits on the host (fp32-accumulation tolerance plus the output's rounding) and on
 * the fp32 inputs (a bound from the 16-bit rounding: the size of the error). */
typedef struct { const char *name; int sz, M, N, K, bias, x_in_block, is_matmul; } lowp_case;

static const lowp_case lowp_cases[] = {
    { "odd", SZ_ODD, 1, 1, 1, 1, 0, 0 }, { "odd", SZ_ODD, 7, 13, 33, 0, 0, 0 }, { "odd", SZ_ODD, 61, 47, 300, 1, 0, 0 },
    { "micro hiera qkv s0", SZ_SMALL, 4096, 48, 16, 1, 0, 0 },
    /* the decoder's tokens are weights too (iou / mask tokens): x read from the block */
    { "decoder tokens (x in block)", SZ_SAM, 7, 256, 256, 1, 1, 0 }, { "decoder mlp", SZ_SAM, 10, 2048, 256, 1, 0, 0 },
    { "hiera mlp.1 s3", SZ_SAM, 1024, 768, 3072, 1, 0, 0 }, { "hiera qkv s0@1024", SZ_BIG, 65536, 288, 96, 1, 0, 0 },
    { "hiera mlp.1 s0@1024", SZ_BIG, 65536, 96, 384, 1, 0, 0 }, { "hiera-l qkv s3", SZ_BIG, 1024, 3456, 1152, 1, 0, 0 },
    { "odd", SZ_ODD, 1, 1, 1, 1, 0, 1 }, { "odd", SZ_ODD, 13, 33, 7, 0, 0, 1 },
    { "micro neck s0", SZ_SMALL, 32, 4096, 16, 1, 0, 1 }, { "neck s3", SZ_SAM, 256, 1024, 768, 1, 0, 1 },
    { "neck s0@1024", SZ_BIG, 256, 65536, 96, 1, 0, 1 }, { "conv_s0@1024", SZ_BIG, 32, 65536, 256, 1, 0, 1 },
};
#define N_LOWP (sizeof lowp_cases / sizeof lowp_cases[0])

static size_t slot16(size_t n) { return (n + 15) & ~(size_t)15; }

/* The reference rows of one case: on the 16-bit-rounded inputs (yr) and the fp32 ones (yf). */
static void lowp_reference(const lowp_case *c, const float *w, const float *wr, const float *x, const float *xr,
                           const float *bias, int r0, int len, float *yr, float *yf) {
    int K = c->K, N = c->N;
    if (c->is_matmul) {
        g_ref->matmul(g_ref, wr + (size_t)r0 * K, xr, bias ? bias + r0 : NULL, yr, len, N, K);
        g_ref->matmul(g_ref, w + (size_t)r0 * K, x, bias ? bias + r0 : NULL, yf, len, N, K);
    } else {
        g_ref->linear(g_ref, xr + (size_t)r0 * K, wr, bias, yr, len, N, K);
        g_ref->linear(g_ref, x + (size_t)r0 * K, w, bias, yf, len, N, K);
    }
}

/* Checks y of case c against both references: two verdict lines. */
static void lowp_check(const backend *be, const char *op, const lowp_case *c, const float *y, const float *w,
                       const float *x, const float *bias) {
    int M = c->M, N = c->N, K = c->K, prec = be->prec;
    size_t wn = c->is_matmul ? (size_t)M * K : (size_t)N * K, xn = c->is_matmul ? (size_t)K * N : (size_t)M * K;
    float *wr = malloc(wn * sizeof(float)), *xr = malloc(xn * sizeof(float));
    float *yr = zero_buf((size_t)64 * N), *yf = zero_buf((size_t)64 * N);
    if (!wr || !xr) { fprintf(stderr, "out of memory\n"); exit(2); }
    test_round_lowp_buf(wr, w, wn, prec);
    test_round_lowp_buf(xr, x, xn, prec);
    double sk = sqrt((double)K);
    run_t tight, loose;
    /* the output's rounding, the product's before the bias, the bias's (a 16-bit copy) */
    run_begin(&tight, be, 2 * gemm_atol(K) + lp(be, sk + 1), 2 * GEMM_RTOL + lp(be, 1), op,
              "%s M=%d N=%d K=%d vs 16-bit inputs", c->name, M, N, K);
    run_begin(&loose, be, gemm_atol(K) + lp(be, 3 * sk + 1), lp(be, 1), op, "%s M=%d N=%d K=%d vs fp32 inputs",
              c->name, M, N, K);
    int r0[3], len[3], ns = sample_rows(M, r0, len);
    for (int i = 0; i < ns; i++) {
        lowp_reference(c, w, wr, x, xr, bias, r0[i], len[i], yr, yf);
        run_cmp(&tight, y + (size_t)r0[i] * N, yr, (size_t)len[i] * N, (size_t)r0[i] * N);
        run_cmp(&loose, y + (size_t)r0[i] * N, yf, (size_t)len[i] * N, (size_t)r0[i] * N);
    }
    run_end(&tight);
    run_end(&loose);
    free(wr); free(xr); free(yr); free(yf);
}

/* Runs case c on backend be (one with a registered block dblock, host copy hblock). */
static void run_lowp_case(const backend *be, const char *op, const lowp_case *c, float *dblock, const float *hblock,
                          size_t w_off, size_t x_off) {
    int M = c->M, N = c->N, K = c->K;
    size_t xn = c->is_matmul ? (size_t)K * N : (size_t)M * K, yn = (size_t)M * N;
    size_t nbias = c->is_matmul ? (size_t)M : (size_t)N;
    float *xo = c->x_in_block ? NULL : rand_buf(xn, 1.0f), *bias = c->bias ? rand_buf(nbias, 1.0f) : NULL;
    float *xf = xo ? malloc(xn * sizeof(float)) : NULL; /* the fp32 values, before be_from rounds xo */
    if (xo && !xf) { fprintf(stderr, "out of memory\n"); exit(2); }
    if (xo) memcpy(xf, xo, xn * sizeof(float));
    const float *x = c->x_in_block ? hblock + x_off : xf;
    float *dx = c->x_in_block ? dblock + x_off : be_from(be, xo, xn);
    float *dbias = bias ? be_from(be, bias, nbias) : NULL, *dy = be_nan(be, yn);
    const float *dw = dblock + w_off;
    if (dx && dy && (!bias || dbias)) {
        if (c->is_matmul) be->ops->matmul(be->ops, dw, dx, dbias, dy, M, N, K);
        else be->ops->linear(be->ops, dx, dw, dbias, dy, M, N, K);
        char err[512];
        if (be_sync(be, err) == 0) {
            float *y = be_to_host(be, dy, yn);
            lowp_check(be, op, c, y, hblock + w_off, x, bias);
            free(y);
            char what[200];
            snprintf(what, sizeof what, "%s %s [%s M=%d N=%d K=%d]", op, be->name, c->name, M, N, K);
            double bytes = 4.0 * (xn + yn + (c->is_matmul ? (size_t)M * K : (size_t)N * K));
            if (c->is_matmul) PERF(be, what, 2.0 * M * N * K, bytes, be->ops->matmul(be->ops, dw, dx, dbias, dy, M, N, K));
            else PERF(be, what, 2.0 * M * N * K, bytes, be->ops->linear(be->ops, dx, dw, dbias, dy, M, N, K));
        } else {
            fail_case(be, op, err, "%s M=%d N=%d K=%d", c->name, M, N, K);
        }
    }
    if (!c->x_in_block) be_free(be, dx);
    be_free(be, dbias); be_free(be, dy);
    free(xo); free(xf); free(bias);
}

/* The precision map (kernels/cuda/lowp.cu) on a fresh instance: a block uploaded before
 * set_precision stays fp32 and an op in place keeps its input's type; a copy in the
 * 16-bit phase rounds, one in the fp32 phase (activation_precision 0) widens exactly; a
 * linear on that fp32 x converts it (in row chunks when x is larger than the scratch:
 * the "chunked" case, n > 8 Mi floats, also chunking the download);
 * set_precision(fp32) keeps what was written readable; a 16-bit write over part of an
 * fp32 range makes reading that range an error naming the op (on its own instance: the
 * error sticks). */
static void lowp_conversions(const backend *be, const char *op, size_t n) {
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    if (!o) { fail_case(be, op, err, "a third backend instance"); return; }
    backend fp = *be;
    fp.ops = o;
    fp.prec = 0;
    int M = (int)(n / 64), N = 48, K = 64; /* x's first M rows of 64 */
    float *x = rand_buf(n, 4.0f), *r = malloc(n * sizeof(float)), *w = rand_buf((size_t)N * K, 1.0f);
    if (!r) { fprintf(stderr, "out of memory\n"); exit(2); }
    float *dx = be_from(&fp, x, n), *dblk = be_from(&fp, w, (size_t)N * K), *dy = be_nan(&fp, n), *dz = be_nan(&fp, n);
    float *dl = be_nan(&fp, (size_t)M * N);
    test_round_lowp_buf(r, x, n, be->prec);
    if (!dx || !dblk || !dy || !dz || !dl || o->set_precision(o, (samc_ops_precision)be->prec, dblk, (size_t)N * K, err)) {
        fail_case(be, op, err[0] ? err : "allocation failed", "precision map n=%zu", n);
    } else {
        float *y = be_to_host(&fp, dx, n);
        compare(&fp, y, x, n, 0, 0, op, "an upload before set_precision stays fp32, n=%zu", n);
        free(y);
        o->relu(o, dx, n);
        g_ref->relu(g_ref, x, n);
        o->copy(o, dy, dx, n);
        g_ref->relu(g_ref, r, n);
        y = be_to_host(&fp, dx, n);
        compare(&fp, y, x, n, 0, 0, op, "relu in place keeps it fp32, n=%zu", n);
        free(y);
        y = be_to_host(&fp, dy, n);
        compare(&fp, y, r, n, 0, 0, op, "a copy in the 16-bit phase rounds, n=%zu", n);
        free(y);
        o->linear(o, dx, dblk, NULL, dl, M, N, K); /* x fp32: converted */
        float *x2 = rand_buf(n, 3.0f), *r2 = malloc(n * sizeof(float));
        if (!r2) { fprintf(stderr, "out of memory\n"); exit(2); }
        test_round_lowp_buf(r2, x2, n, be->prec);
        o->upload(o, dz, x2, n * sizeof(float));
        y = be_to_host(&fp, dz, n);
        compare(&fp, y, r2, n, 0, 0, op, "an upload in the 16-bit phase rounds, n=%zu", n);
        free(y);
        o->activation_precision(o, 0);
        o->upload(o, dz, x2, n * sizeof(float));
        y = be_to_host(&fp, dz, n);
        compare(&fp, y, x2, n, 0, 0, op, "an upload in the fp32 phase is exact, n=%zu", n);
        free(y); free(x2); free(r2);
        o->copy(o, dz, dy, n);
        y = be_to_host(&fp, dz, n);
        compare(&fp, y, r, n, 0, 0, op, "a copy in the fp32 phase widens exactly, n=%zu", n);
        free(y);
        float *yr = zero_buf((size_t)M * N), *wr = malloc((size_t)N * K * sizeof(float));
        if (!wr) { fprintf(stderr, "out of memory\n"); exit(2); }
        test_round_lowp_buf(wr, w, (size_t)N * K, be->prec);
        g_ref->linear(g_ref, r, wr, NULL, yr, M, N, K);
        y = be_to_host(&fp, dl, (size_t)M * N);
        compare(be, y, yr, (size_t)M * N, gemm_atol(K), GEMM_RTOL + lp(be, 1), op,
                "linear on an uploaded fp32 x, M=%d N=%d K=%d", M, N, K);
        free(y); free(yr); free(wr);
        if (o->set_precision(o, SAMC_OPS_FP32, NULL, 0, err) != 0) fail_case(be, op, err, "set_precision(fp32)");
        y = be_to_host(&fp, dy, n);
        compare(&fp, y, r, n, 0, 0, op, "after set_precision(fp32) the 16-bit values still read back, n=%zu", n);
        free(y);
    }
    ((backend *)be)->ran += fp.ran;
    be_free(&fp, dx); be_free(&fp, dblk); be_free(&fp, dy); be_free(&fp, dz); be_free(&fp, dl);
    free(x); free(r); free(w);
    samc_ops_cuda_destroy(o);
}

/* A 16-bit write over part of an fp32 range destroys the bytes it covers: reading the
 * range afterwards fails, naming the op. */
static void lowp_mixed_error(const backend *be, const char *op) {
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    if (!o) { fail_case(be, op, err, "a fourth backend instance"); return; }
    float h[64] = { 0 }, *d = o->alloc(o, sizeof h), *blk = o->alloc(o, sizeof h);
    int ok = d && blk;
    if (ok) o->upload(o, d, h, sizeof h);
    if (ok) o->upload(o, blk, h, sizeof h);
    ok = ok && o->set_precision(o, (samc_ops_precision)be->prec, blk, 16, err) == 0;
    if (ok) {
        o->copy(o, d + 32, blk, 32);  /* 16-bit values of elements 32..63: bytes 64..127, fp32 elements 16..31 */
        o->relu(o, d, 32);            /* fp32 elements 0..31 */
        ok = o->sync(o, err) == -1 && strstr(err, "relu") && strstr(err, "overwritten");
    }
    printf("       reported: %s\n", err);
    float got = ok ? 1.0f : 0.0f, one = 1.0f;
    compare(be, &got, &one, 1, 0, 0, op, "a 16-bit write over an fp32 range: reading it fails, naming the op");
    samc_ops_cuda_destroy(o);
}

/* An op whose 16-bit output covers the bytes of an fp32 input it reads (16-bit element i
 * lives at base + 2 i of its block) would overwrite that input while its kernel reads it:
 * a race no later read could see, so the write is refused, naming the op (lowp.cu
 * write_as). On a fresh instance: a copy whose output lies far enough runs and is exact;
 * one whose 16-bit bytes land on its own fp32 source fails. */
static void lowp_overlap_error(const backend *be, const char *op) {
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    if (!o) { fail_case(be, op, err, "a fifth backend instance"); return; }
    float h[128], back[32], *d = o->alloc(o, sizeof h), *blk = o->alloc(o, 16 * sizeof(float));
    for (int i = 0; i < 128; i++) h[i] = (float)(i % 32); /* exact in bf16 and fp16 */
    int ok = d && blk;
    if (ok) o->upload(o, d, h, sizeof h);
    if (ok) o->upload(o, blk, h, 16 * sizeof(float));
    ok = ok && o->set_precision(o, (samc_ops_precision)be->prec, blk, 16, err) == 0;
    if (ok) {
        o->copy(o, d + 64, d, 32); /* 16-bit elements 64..95: the bytes of fp32 elements 32..47 */
        o->download(o, back, d + 64, sizeof back);
        ok = o->sync(o, err) == 0 && !memcmp(back, h, sizeof back);
    }
    float got = ok ? 1.0f : 0.0f, one = 1.0f;
    compare(be, &got, &one, 1, 0, 0, op, "a 16-bit write clear of the fp32 source it reads runs");
    if (ok) {
        o->copy(o, d + 32, d, 32); /* 16-bit elements 32..63: the bytes of fp32 elements 16..31 */
        ok = o->sync(o, err) == -1 && strstr(err, "copy") && strstr(err, "would overwrite");
    }
    printf("       reported: %s\n", err);
    got = ok ? 1.0f : 0.0f;
    compare(be, &got, &one, 1, 0, 0, op, "a 16-bit write over the fp32 source the same op reads is refused");
    samc_ops_cuda_destroy(o);
}

/* Weights kept in 16 bits only (ops.h weights16_region / weights16_upload), on a fresh
 * instance: a linear whose weight is a stand-in gives the product of the 16-bit-rounded
 * weight in the fp32 phase (x rounded per call, fp32 output: exact download) and in the
 * 16-bit phase; at an offset inside the region too (the attention in-projection's
 * thirds). Any other op reading a stand-in fails, naming the op and the reason. */
static void lowp_weights16(const backend *be, const char *op) {
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    if (!o) { fail_case(be, op, err, "a sixth backend instance"); return; }
    backend fp = *be;
    fp.ops = o;
    fp.prec = 0;
    const int M = 37, N = 48, K = 64, off = 16 * 3; /* the weight starts 3 slots into the region */
    size_t nw = (size_t)N * K, ns = nw + off;
    float *x = rand_buf((size_t)M * K, 2.0f), *w = rand_buf(nw, 1.0f), *b = rand_buf((size_t)N, 1.0f);
    float *xr = malloc(sizeof(float) * (size_t)M * K), *wr = malloc(sizeof(float) * nw), *zero = zero_buf(16);
    float *yr = zero_buf((size_t)M * N), *standin = samc_w16_reserve(ns);
    if (!xr || !wr || !standin) { fprintf(stderr, "out of memory\n"); exit(2); }
    test_round_lowp_buf(xr, x, (size_t)M * K, be->prec);
    test_round_lowp_buf(wr, w, nw, be->prec);
    g_ref->linear(g_ref, xr, wr, b, yr, M, N, K);
    float *blk = be_from(&fp, zero, 16), *dx = be_from(&fp, x, (size_t)M * K), *db = be_from(&fp, b, (size_t)N);
    float *dy = be_nan(&fp, (size_t)M * N), *dz = be_nan(&fp, (size_t)M * N);
    int ok = blk && dx && db && dy && dz && o->set_precision(o, (samc_ops_precision)be->prec, blk, 16, err) == 0 &&
             o->weights16_region(o, standin, ns, err) == 0;
    if (!ok) {
        fail_case(be, op, err[0] ? err : "allocation failed", "16-bit-only weights");
    } else {
        o->weights16_upload(o, standin + off, w, nw);
        o->activation_precision(o, 0);
        o->linear(o, dx, standin + off, db, dy, M, N, K);
        float *y = be_to_host(&fp, dy, (size_t)M * N);
        compare(be, y, yr, (size_t)M * N, gemm_atol(K), GEMM_RTOL + lp(be, 1), op,
                "16-bit-only weight, fp32 activations, M=%d N=%d K=%d", M, N, K);
        free(y);
        o->activation_precision(o, 1);
        o->linear(o, dx, standin + off, db, dz, M, N, K);
        y = be_to_host(&fp, dz, (size_t)M * N);
        /* a 16-bit product, then the bias in the epilogue: rounded twice, half an ulp
         * of |y - b| and of |y| each (|b| <= 1 goes to the absolute part) */
        compare(be, y, yr, (size_t)M * N, gemm_atol(K) + lp(be, sqrt((double)K)), GEMM_RTOL + lp(be, 2), op,
                "16-bit-only weight, 16-bit activations, M=%d N=%d K=%d", M, N, K);
        free(y);
        o->activation_precision(o, 0);
        o->add(o, dy, dy, standin + off, (size_t)M * N, (size_t)N); /* a stand-in outside a linear */
        ok = o->sync(o, err) == -1 && strstr(err, "add") && strstr(err, "16 bits only");
        printf("       reported: %s\n", err);
        float got = ok ? 1.0f : 0.0f, one = 1.0f;
        compare(be, &got, &one, 1, 0, 0, op, "a 16-bit-only weight read by another op fails, naming the op");
    }
    ((backend *)be)->ran += fp.ran;
    be_free(&fp, blk); be_free(&fp, dx); be_free(&fp, db); be_free(&fp, dy); be_free(&fp, dz);
    samc_ops_cuda_destroy(o);
    samc_w16_release(standin, ns);
    free(x); free(w); free(b); free(xr); free(wr); free(zero); free(yr);
}

/* Graphs and the precision map, on a fresh instance: an upload_async (page-locked host
 * memory) in the 16-bit phase converts inside a capture without waiting (a wait would
 * fail the capture), and a copy follows it. Then fp32 values are written over the copy's
 * output outside the graph; launching the graph again must put the map back as the
 * capture left it (the copy's output is 16-bit again), and the launch reads the host
 * buffer as it is then. A plain upload while capturing fails, naming the op. */
static void lowp_graph(const backend *be, const char *op) {
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    if (!o) { fail_case(be, op, err, "a fifth backend instance"); return; }
    backend fp = *be;
    fp.ops = o;
    fp.prec = 0;
    const size_t n = 1000;
    float *x = rand_buf(n, 4.0f), *x2 = rand_buf(n, 3.0f), *r = malloc(n * sizeof(float)), *zero = zero_buf(n);
    float *h = o->host_alloc ? o->host_alloc(o, n * sizeof(float)) : NULL, *blk = be_from(&fp, zero, 16);
    float *d = be_nan(&fp, n), *e = be_nan(&fp, n);
    if (!r) { fprintf(stderr, "out of memory\n"); exit(2); }
    int ok = h && blk && d && e && o->set_precision(o, (samc_ops_precision)be->prec, blk, 16, err) == 0;
    ok = ok && o->graph_begin(o, 0, err) == 0;
    if (ok) {
        memcpy(h, x, n * sizeof(float));
        o->activation_precision(o, 1);
        o->upload_async(o, d, h, n * sizeof(float));
        o->copy(o, e, d, n);
        ok = o->graph_end(o, 0, err) == 0;
    }
    if (ok) o->graph_launch(o, 0);
    ok = ok && o->sync(o, err) == 0;
    if (!ok) {
        fail_case(be, op, err[0] ? err : "allocation failed", "graph with an upload_async in the 16-bit phase");
    } else {
        test_round_lowp_buf(r, x, n, be->prec);
        float *y = be_to_host(&fp, e, n);
        compare(&fp, y, r, n, 0, 0, op, "upload_async + copy captured in the 16-bit phase, launched");
        free(y);
        o->activation_precision(o, 0);
        o->upload(o, e, zero, n * sizeof(float)); /* e holds fp32 now */
        memcpy(h, x2, n * sizeof(float));
        o->graph_launch(o, 0);
        test_round_lowp_buf(r, x2, n, be->prec);
        y = be_to_host(&fp, e, n);
        compare(&fp, y, r, n, 0, 0, op, "launched again after an fp32 write: the map is the capture's");
        free(y);
        ok = o->graph_begin(o, 1, err) == 0;
        if (ok) {
            o->upload(o, d, x, n * sizeof(float));
            o->graph_end(o, 1, err);
        }
        ok = ok && o->sync(o, err) == -1 && strstr(err, "upload") && strstr(err, "captured");
        printf("       reported: %s\n", err);
        float got = ok ? 1.0f : 0.0f, one = 1.0f;
        compare(be, &got, &one, 1, 0, 0, op, "a plain upload while a graph is captured fails, naming it");
    }
    ((backend *)be)->ran += fp.ran;
    be_free(&fp, blk); be_free(&fp, d); be_free(&fp, e);
    if (h) o->host_free(o, h);
    free(x); free(x2); free(r); free(zero);
    samc_ops_cuda_destroy(o);
}

/* A fresh instance, a block with every selected case's weight (and the decoder tokens
 * case's activation), set_precision, the cases. */
static void run_lowp(const backend *be) {
    const char *pname = be->prec == SAMC_OPS_BF16 ? "bf16" : "fp16";
    char err[512] = "", op_lin[32], op_mm[32];
    snprintf(op_lin, sizeof op_lin, "linear_%s", pname);
    snprintf(op_mm, sizeof op_mm, "matmul_%s", pname);
    int sel[N_LOWP], nsel = 0;
    size_t off[N_LOWP], xoff[N_LOWP], total = 3; /* the first slot starts at an odd offset */
    for (size_t i = 0; i < N_LOWP; i++) {
        const lowp_case *c = &lowp_cases[i];
        sel[i] = want(be, c->is_matmul ? op_mm : op_lin, c->name, c->sz, 2.0 * c->M * c->N * c->K);
        nsel += sel[i];
        off[i] = total;
        total += sel[i] ? slot16(c->is_matmul ? (size_t)c->M * c->K : (size_t)c->N * c->K) : 0;
        xoff[i] = total;
        total += sel[i] && c->x_in_block ? slot16((size_t)c->M * c->K) : 0;
    }
    if (want(be, op_lin, "precision map", SZ_ODD, 0)) lowp_conversions(be, op_lin, 1024);
    if (want(be, op_lin, "precision map chunked", SZ_SAM, 0)) lowp_conversions(be, op_lin, (size_t)9 << 20);
    if (want(be, op_lin, "precision map: mixed types", SZ_ODD, 0)) lowp_mixed_error(be, op_lin);
    if (want(be, op_lin, "precision map: an op's own input", SZ_ODD, 0)) lowp_overlap_error(be, op_lin);
    if (want(be, op_lin, "precision map: graphs", SZ_ODD, 0)) lowp_graph(be, op_lin);
    if (want(be, op_lin, "16-bit-only weights", SZ_ODD, 0)) lowp_weights16(be, op_lin);
    if (!nsel) return;
    samc_ops *o = samc_ops_cuda_create(0, err);
    if (!o) { fail_case(be, op_lin, err, "a second backend instance"); return; }
    backend b2 = *be;
    b2.ops = o;
    b2.prec = 0; /* the block goes up in fp32 */
    float *hblock = rand_buf(total, 1.0f), *dblock = be_from(&b2, hblock, total);
    b2.prec = be->prec;
    if (!dblock || o->set_precision(o, (samc_ops_precision)be->prec, dblock, total, err) != 0) {
        fail_case(be, op_lin, dblock ? err : "allocation failed", "set_precision");
    } else {
        for (size_t i = 0; i < N_LOWP; i++)
            if (sel[i])
                run_lowp_case(&b2, lowp_cases[i].is_matmul ? op_mm : op_lin, &lowp_cases[i], dblock, hblock, off[i],
                              xoff[i]);
    }
    ((backend *)be)->ran += b2.ran;
    be_free(&b2, dblock);
    free(hblock);
    samc_ops_cuda_destroy(o);
}

static void test_lowp(const backend *be) {
    if (be->prec && be->is_cuda) run_lowp(be);
}

/* ------------------------------------------------------------------ attention */

typedef enum { PACKED_QKV, SEPARATE } att_layout;
typedef struct {
    const char *name;
    int sz, batch, heads, n_q, n_kv, hd;
    att_layout layout;
    float qscale; /* > 1: a peaky softmax */
} att_case;

static const att_case att_cases[] = {
    { "n_kv=1", SZ_ODD, 2, 3, 5, 1, 8, SEPARATE, 1.0f }, { "n_q=1", SZ_ODD, 1, 2, 1, 300, 24, SEPARATE, 1.0f },
    { "hd=1", SZ_ODD, 2, 2, 9, 13, 1, SEPARATE, 1.0f }, { "hd=7 packed", SZ_ODD, 3, 5, 13, 13, 7, PACKED_QKV, 1.0f },
    { "hd=13", SZ_ODD, 1, 3, 33, 17, 13, SEPARATE, 1.0f }, { "hd=17", SZ_ODD, 1, 3, 33, 17, 17, SEPARATE, 1.0f },
    { "hd=33", SZ_ODD, 1, 1, 61, 777, 33, SEPARATE, 1.0f }, { "peaky", SZ_ODD, 1, 2, 50, 700, 64, SEPARATE, 8.0f },
    /* scores with a spread of ~13: a later chunk's max often passes the running one by
     * more than 8, where cpu_fast rescales (ATT_LAZY) */
    { "very peaky: the running max moves", SZ_ODD, 1, 2, 40, 1100, 32, SEPARATE, 40.0f },
    { "n_kv=65 (tile + 1)", SZ_ODD, 2, 2, 33, 65, 40, SEPARATE, 1.0f },
    { "hd=256 square", SZ_ODD, 1, 1, 300, 300, 256, SEPARATE, 2.0f },
    { "wide head hd=300", SZ_ODD, 1, 2, 3, 37, 300, SEPARATE, 1.0f },
    { "wide head hd=4100", SZ_ODD, 1, 1, 3, 5, 4100, SEPARATE, 1.0f },
    { "n_kv=0", SZ_ODD, 1, 2, 3, 0, 8, SEPARATE, 1.0f },
    /* micro: 8x8 windows of the 64x64 map (1 head, hd 16), global 8x8 at stage 3 (8 heads),
     * the decoder over a 16x16 image (hd 8); tiny at 256 px */
    { "micro hiera 8x8 windows", SZ_SMALL, 64, 1, 64, 64, 16, PACKED_QKV, 1.0f },
    { "micro hiera global s3", SZ_SMALL, 1, 8, 64, 64, 16, PACKED_QKV, 1.0f },
    { "micro decoder token->image", SZ_SMALL, 1, 2, 7, 256, 8, SEPARATE, 1.0f },
    { "micro decoder image->token", SZ_SMALL, 1, 2, 256, 7, 8, SEPARATE, 1.0f },
    { "tiny@256 hiera 8x8 windows", SZ_SMALL, 64, 1, 64, 64, 96, PACKED_QKV, 1.0f },
    { "tiny@256 hiera global s3", SZ_SMALL, 1, 8, 64, 64, 96, PACKED_QKV, 3.0f },
    { "tiny@256 decoder token->image", SZ_SMALL, 2, 8, 7, 256, 16, SEPARATE, 1.0f },
    /* head dims of Hiera-B+ / L (72: padded to 80 by the tensor-core kernel) and 128, at
     * sizes the simulator runs in seconds (the 16-bit instances run odd and small only) */
    { "7x7 windows hd72", SZ_SMALL, 3, 2, 49, 49, 72, PACKED_QKV, 1.0f },
    { "hd=128 two key tiles + 2", SZ_SMALL, 1, 2, 70, 130, 128, SEPARATE, 2.0f },
    /* SAM2.1 tiny / large at 512 - 1024 px */
    { "hiera 8x8 windows (few)", SZ_SAM, 16, 1, 64, 64, 96, PACKED_QKV, 1.0f },
    { "hiera 4x4 windows", SZ_SAM, 256, 2, 16, 16, 96, PACKED_QKV, 1.0f },
    { "hiera 14x14 windows", SZ_SAM, 25, 4, 196, 196, 96, PACKED_QKV, 1.0f },
    { "hiera-l 14x14 windows hd72", SZ_SAM, 25, 8, 196, 196, 72, PACKED_QKV, 1.0f },
    { "hiera global 32x32 peaky", SZ_SAM, 1, 8, 1024, 1024, 96, PACKED_QKV, 3.0f },
    { "decoder token->image", SZ_SAM, 2, 8, 7, 4096, 16, SEPARATE, 1.0f },
    { "decoder token->image hd32", SZ_SAM, 1, 8, 10, 4096, 32, SEPARATE, 1.0f },
    { "decoder image->token", SZ_SAM, 2, 8, 4096, 7, 16, SEPARATE, 1.0f },
    { "decoder self", SZ_SAM, 3, 8, 10, 10, 32, SEPARATE, 1.0f },
    { "decoder token->image x64", SZ_SAM, 64, 8, 10, 4096, 16, SEPARATE, 1.0f },
    { "decoder image->token x3", SZ_SAM, 3, 8, 4096, 10, 16, SEPARATE, 1.0f },
    { "n_q=16384", SZ_SAM, 1, 1, 16384, 64, 32, SEPARATE, 1.0f },
    { "n_kv=16384 hd=256", SZ_SAM, 1, 2, 33, 16384, 256, SEPARATE, 1.0f },
    { "hiera 8x8 windows@1024", SZ_BIG, 1024, 1, 64, 64, 96, PACKED_QKV, 1.0f },
    { "hiera 4x4 windows@1024", SZ_BIG, 1024, 2, 16, 16, 96, PACKED_QKV, 1.0f },
    { "hiera global 64x64 hd96", SZ_BIG, 1, 4, 4096, 4096, 96, PACKED_QKV, 1.0f },
    { "hiera global 64x64 hd144", SZ_BIG, 1, 4, 4096, 4096, 144, PACKED_QKV, 1.0f },
};

/* The views of case c over qkv (packed: one linear's [B, T, 3, heads, hd]) or q, k, v
 * (the decoder's [B, T, heads*hd] each); out is [B, n_q, heads*hd]. */
static void att_views(const att_case *c, samc_attention_args *a, const float *qkv, const float *q, const float *k,
                      const float *v, float *out) {
    int D = c->heads * c->hd;
    *a = (samc_attention_args){ .batch = c->batch, .heads = c->heads, .n_q = c->n_q, .n_kv = c->n_kv,
                                .head_dim = c->hd, .scale = 1.0f / sqrtf((float)c->hd) };
    if (c->layout == PACKED_QKV) {
        a->q = qkv; a->k = qkv + D; a->v = qkv + 2 * D;
        a->q_sb = a->k_sb = a->v_sb = (ptrdiff_t)c->n_kv * 3 * D;
        a->q_st = a->k_st = a->v_st = 3 * D;
    } else {
        a->q = q; a->k = k; a->v = v;
        a->q_sb = (ptrdiff_t)c->n_q * D;
        a->k_sb = a->v_sb = (ptrdiff_t)c->n_kv * D;
        a->q_st = a->k_st = a->v_st = D;
    }
    a->q_sh = a->k_sh = a->v_sh = c->hd;
    a->out = out; a->o_sb = (ptrdiff_t)c->n_q * D; a->o_sh = c->hd; a->o_st = D;
}

/* The reference on up to 3 batches x sampled query rows, against out (host). */
static void att_compare(run_t *r, const att_case *c, const samc_attention_args *a, const float *out) {
    int D = c->heads * c->hd, nb = c->batch <= 3 ? c->batch : 3;
    int bsel[3] = { 0, c->batch / 2, c->batch - 1 };
    int r0[3], len[3], ns = sample_rows(c->n_q, r0, len);
    float *ro = zero_buf((size_t)64 * D);
    for (int bi = 0; bi < nb; bi++) {
        int b = c->batch <= 3 ? bi : bsel[bi];
        for (int si = 0; si < ns; si++) {
            samc_attention_args x = *a;
            x.batch = 1; x.n_q = len[si];
            x.q = a->q + b * a->q_sb + r0[si] * a->q_st;
            x.k = a->k + b * a->k_sb;
            x.v = a->v + b * a->v_sb;
            x.out = ro; x.o_sb = 0; x.o_st = D; x.o_sh = c->hd;
            g_ref->attention(g_ref, &x);
            for (int i = 0; i < len[si]; i++) {
                size_t off = (size_t)(b * a->o_sb + (r0[si] + i) * a->o_st);
                run_cmp(r, out + off, ro + (size_t)i * D, (size_t)D, off);
            }
        }
    }
    free(ro);
}

static void run_attention(const backend *be, const att_case *c) {
    int D = c->heads * c->hd;
    size_t qn = c->layout == PACKED_QKV ? (size_t)c->batch * c->n_kv * 3 * D : (size_t)c->batch * c->n_q * D;
    size_t kn = c->layout == PACKED_QKV ? 0 : (size_t)c->batch * c->n_kv * D, on = (size_t)c->batch * c->n_q * D;
    float *q = rand_buf(qn, c->layout == PACKED_QKV ? 1.0f : c->qscale), *k = rand_buf(kn, 1.0f), *v = rand_buf(kn, 1.0f);
    if (c->layout == PACKED_QKV)
        for (size_t i = 0; i < qn; i += 3 * (size_t)D)
            for (int j = 0; j < D; j++) q[i + j] *= c->qscale;
    float *dq = be_from(be, q, qn), *dk = be_from(be, k, kn), *dv = be_from(be, v, kn), *dout = be_nan(be, on);
    samc_attention_args a, d;
    att_views(c, &a, q, q, k, v, NULL);
    att_views(c, &d, dq, dq, dk, dv, dout);
    run_t r;
    /* 16 bits: the output's rounding, and the probabilities' (|v| <= 1) where a kernel
     * multiplies them in 16 bits. A peakier softmax has larger scores, and each
     * exponent's rounding (|s|·2^-24, the weight's relative error) grows with them: the
     * absolute bound too, past a qscale of 8 (at 40, 4e-6 was seen on a value near 0). */
    double peak = c->qscale > 8.0f ? c->qscale / 8.0 : 1.0;
    run_begin(&r, be, (2e-6 + lp(be, 2)) * peak, (be->is_cuda ? GEMM_RTOL : 2e-4) + lp(be, 1), "attention",
              "%s B=%d H=%d nq=%d nkv=%d hd=%d", c->name,
              c->batch, c->heads, c->n_q, c->n_kv, c->hd);
    if (!dq || !dk || !dv || !dout) run_fail(&r, "allocation failed");
    else {
        be->ops->attention(be->ops, &d);
        if (run_sync(&r)) {
            float *out = be_to_host(be, dout, on);
            att_compare(&r, c, &a, out);
            if (be->is_cuda) { /* the same call again gives the same bits */
                be->ops->attention(be->ops, &d);
                float *out2 = be_to_host(be, dout, on);
                if (memcmp(out, out2, on * sizeof(float))) run_fail(&r, "a second run gave different results");
                free(out2);
            }
            free(out);
        }
    }
    double fl = 4.0 * c->batch * c->heads * (double)c->n_q * c->n_kv * c->hd;
    if (run_end(&r))
        PERF(be, r.what, fl, 4.0 * c->batch * c->heads * c->hd * (2.0 * c->n_q + 2.0 * c->n_kv),
             be->ops->attention(be->ops, &d));
    be_free(be, dq); be_free(be, dk); be_free(be, dv); be_free(be, dout);
    free(q); free(k); free(v);
}

static void test_attention(const backend *be) {
    for (size_t i = 0; i < sizeof att_cases / sizeof att_cases[0]; i++) {
        const att_case *c = &att_cases[i];
        if (want(be, "attention", c->name, c->sz, 4.0 * c->batch * c->heads * c->n_q * c->n_kv * c->hd))
            run_attention(be, c);
    }
}

/* Windows read in place (samc_attention_args' window geometry, Hiera's windowed blocks on
 * a map that is a multiple of the window): q, k, v from the token map qkv [B, H, W, 3, D]
 * (pool: q max-pooled 2x2 as it is read, q_pool, as hiera.c's pooling blocks), the output
 * written into the map [B, Ho, Wo, D]. The oracle does not use the geometry: the test
 * partitions (and pools) the windows itself, runs cpu_ref's plain attention on the copies
 * and compares each output token at its map position. */
typedef struct {
    const char *name;
    int sz, B, H, W, wh, ww, heads, hd, pool;
} attw_case;

static const attw_case attw_cases[] = {
    { "odd 3x5 windows hd7", SZ_ODD, 2, 6, 10, 3, 5, 2, 7, 0 },
    { "odd pooled 4x2 windows hd5", SZ_ODD, 2, 8, 6, 4, 2, 3, 5, 1 },
    { "odd 9x10 windows (split keys)", SZ_ODD, 1, 9, 20, 9, 10, 1, 24, 0 },
    { "micro hiera 8x8 windows in place", SZ_SMALL, 1, 64, 64, 8, 8, 1, 16, 0 },
    { "micro hiera pooled 8x8 -> 4x4", SZ_SMALL, 1, 32, 32, 8, 8, 2, 16, 1 },
    { "hd72 8x8 windows 2 images", SZ_SMALL, 2, 16, 16, 8, 8, 2, 72, 0 },
    { "hd96 global 8x8", SZ_SMALL, 1, 8, 8, 8, 8, 4, 96, 0 },
    { "hd128 4x4 windows pooled", SZ_SMALL, 1, 8, 16, 4, 4, 2, 128, 1 },
    { "hiera-l 8x8 windows hd72 @256", SZ_SAM, 1, 64, 64, 8, 8, 2, 72, 0 },
    { "hiera-l pooled 8x8 hd72 -> 144", SZ_SAM, 1, 64, 64, 8, 8, 2, 72, 1 },
    { "hiera-l 16x16 windows hd144", SZ_SAM, 1, 32, 32, 16, 16, 4, 144, 0 },
};

static void run_attention_windows(const backend *be, const attw_case *c) {
    int D = c->heads * c->hd, nwx = c->W / c->ww, nwy = c->H / c->wh, nb = c->B * nwy * nwx;
    int qh = c->pool ? c->wh / 2 : c->wh, qw = c->pool ? c->ww / 2 : c->ww, Ho = c->pool ? c->H / 2 : c->H,
        Wo = c->pool ? c->W / 2 : c->W, T = c->wh * c->ww, Tq = qh * qw;
    size_t HW = (size_t)c->H * c->W, qkvn = (size_t)c->B * HW * 3 * D, on = (size_t)c->B * Ho * Wo * D;
    float *qkv = rand_buf(qkvn, 1.0f);
    float *dqkv = be_from(be, qkv, qkvn), *dout = be_nan(be, on);
    /* the geometry (kernels/ops.h's Hiera example) */
    samc_attention_args d = {
        .batch = nb, .heads = c->heads, .n_q = Tq, .n_kv = T, .head_dim = c->hd, .scale = 1.0f / sqrtf((float)c->hd),
        .q = dqkv, .q_sb = (ptrdiff_t)c->ww * 3 * D, .q_sh = c->hd, .q_st = 3 * D,
        .k = dqkv ? dqkv + D : NULL, .k_sb = (ptrdiff_t)c->ww * 3 * D, .k_sh = c->hd, .k_st = 3 * D,
        .v = dqkv ? dqkv + 2 * D : NULL, .v_sb = (ptrdiff_t)c->ww * 3 * D, .v_sh = c->hd, .v_st = 3 * D,
        .out = dout, .o_sb = (ptrdiff_t)qw * D, .o_sh = c->hd, .o_st = D,
        .win_nx = nwx, .q_tw = qw, .kv_tw = c->ww,
        .q_sby = (ptrdiff_t)c->wh * c->W * 3 * D, .q_sty = (ptrdiff_t)c->W * 3 * D,
        .k_sby = (ptrdiff_t)c->wh * c->W * 3 * D, .k_sty = (ptrdiff_t)c->W * 3 * D,
        .v_sby = (ptrdiff_t)c->wh * c->W * 3 * D, .v_sty = (ptrdiff_t)c->W * 3 * D,
        .o_sby = (ptrdiff_t)qh * Wo * D, .o_sty = (ptrdiff_t)Wo * D,
    };
    d.q_pool = c->pool; /* q's strides stay those of the unpooled map */
    /* the oracle: windows partitioned by hand (window b = (image, wy, wx), row-major) */
    float *pq = malloc(sizeof(float) * (size_t)nb * Tq * D), *pk = malloc(sizeof(float) * (size_t)nb * T * D);
    float *pv = malloc(sizeof(float) * (size_t)nb * T * D), *po = malloc(sizeof(float) * (size_t)nb * Tq * D);
    for (int b = 0; b < nb && pq && pk && pv; b++) {
        int img = b / (nwy * nwx), wy = b / nwx % nwy, wx = b % nwx;
        for (int t = 0; t < T; t++) {
            size_t tok = (size_t)img * HW + (size_t)(wy * c->wh + t / c->ww) * c->W + wx * c->ww + t % c->ww;
            const float *row = qkv + tok * 3 * D;
            memcpy(pk + ((size_t)b * T + t) * D, row + D, sizeof(float) * D);
            memcpy(pv + ((size_t)b * T + t) * D, row + 2 * D, sizeof(float) * D);
            if (!c->pool) memcpy(pq + ((size_t)b * T + t) * D, row, sizeof(float) * D);
        }
        for (int t = 0; c->pool && t < Tq; t++) /* nn.MaxPool2d(2, 2) inside the window */
            for (int e = 0; e < D; e++) {
                float mx = -INFINITY;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        size_t tok = (size_t)img * HW + (size_t)(wy * c->wh + 2 * (t / qw) + dy) * c->W + wx * c->ww +
                                     2 * (t % qw) + dx;
                        if (qkv[tok * 3 * D + e] > mx) mx = qkv[tok * 3 * D + e];
                    }
                pq[((size_t)b * Tq + t) * D + e] = mx;
            }
    }
    samc_attention_args a = {
        .batch = nb, .heads = c->heads, .n_q = Tq, .n_kv = T, .head_dim = c->hd, .scale = d.scale,
        .q = pq, .q_sb = (ptrdiff_t)Tq * D, .q_sh = c->hd, .q_st = D,
        .k = pk, .k_sb = (ptrdiff_t)T * D, .k_sh = c->hd, .k_st = D,
        .v = pv, .v_sb = (ptrdiff_t)T * D, .v_sh = c->hd, .v_st = D,
        .out = po, .o_sb = (ptrdiff_t)Tq * D, .o_sh = c->hd, .o_st = D,
    };
    run_t r;
    run_begin(&r, be, 2e-6 + lp(be, 2), (be->is_cuda ? GEMM_RTOL : 2e-4) + lp(be, 1), "attention_windows",
              "%s B=%d %dx%d win %dx%d H=%d hd=%d%s", c->name, c->B, c->H, c->W, c->wh, c->ww, c->heads, c->hd,
              c->pool ? " q pooled" : "");
    if (!dqkv || !dout || !pq || !pk || !pv || !po) run_fail(&r, "allocation failed");
    else {
        be->ops->attention(be->ops, &d);
        if (run_sync(&r)) {
            float *out = be_to_host(be, dout, on);
            g_ref->attention(g_ref, &a);
            for (int b = 0; b < nb; b++) {
                int img = b / (nwy * nwx), wy = b / nwx % nwy, wx = b % nwx;
                for (int t = 0; t < Tq; t++) {
                    size_t off = (((size_t)img * Ho + wy * qh + t / qw) * Wo + wx * qw + t % qw) * D;
                    run_cmp(&r, out + off, po + ((size_t)b * Tq + t) * D, (size_t)D, off);
                }
            }
            free(out);
        }
    }
    double fl = 4.0 * nb * c->heads * (double)Tq * T * c->hd;
    if (run_end(&r))
        PERF(be, r.what, fl, 4.0 * c->B * (3.0 * HW * D + 1.0 * Ho * Wo * D), be->ops->attention(be->ops, &d));
    be_free(be, dqkv); be_free(be, dout);
    free(qkv); free(pq); free(pk); free(pv); free(po);
}

static void test_attention_windows(const backend *be) {
    for (size_t i = 0; i < sizeof attw_cases / sizeof attw_cases[0]; i++) {
        const attw_case *c = &attw_cases[i];
        int nw = c->B * (c->H / c->wh) * (c->W / c->ww), Tq = c->pool ? c->wh * c->ww / 4 : c->wh * c->ww;
        if (want(be, "attention_windows", c->name, c->sz, 4.0 * nw * c->heads * Tq * c->wh * c->ww * c->hd))
            run_attention_windows(be, c);
    }
}

/* ------------------------------------------------------------------ norms */

typedef struct { const char *name; int sz, a, b; float eps; } norm_case; /* rows x dim, or C x HW */

static const norm_case ln_cases[] = {
    { "odd", SZ_ODD, 1, 1, 1e-6f }, { "odd", SZ_ODD, 7, 13, 1e-5f }, { "odd", SZ_ODD, 13, 33, 1e-6f },
    { "odd", SZ_ODD, 3, 1000, 1e-5f }, { "micro hiera s0", SZ_SMALL, 4096, 16, 1e-6f },
    { "micro decoder", SZ_SMALL, 7, 32, 1e-5f }, { "micro hiera s3", SZ_SMALL, 64, 128, 1e-6f },
    { "decoder tokens", SZ_SAM, 10, 256, 1e-5f }, { "decoder keys", SZ_SAM, 4096, 256, 1e-5f },
    { "hiera s2", SZ_SAM, 4096, 384, 1e-6f }, { "hiera s3", SZ_SAM, 1024, 768, 1e-6f },
    { "hiera-l s3", SZ_SAM, 1024, 1152, 1e-6f }, { "hiera s0@512", SZ_SAM, 16384, 96, 1e-6f },
    { "hiera s0@1024", SZ_BIG, 65536, 96, 1e-6f },
};
static const norm_case ln2_cases[] = {
    { "odd", SZ_ODD, 1, 1, 1e-6f }, { "odd", SZ_ODD, 3, 17, 1e-6f }, { "odd", SZ_ODD, 13, 33, 1e-6f },
    { "odd", SZ_ODD, 4, 1, 1e-6f }, { "odd", SZ_ODD, 7, 100, 1e-6f }, { "odd", SZ_ODD, 256, 1023, 1e-6f },
    { "micro upscaling", SZ_SMALL, 8, 1024, 1e-6f }, { "micro mask downscaling", SZ_SMALL, 4, 4096, 1e-6f },
    { "neck", SZ_SAM, 256, 4096, 1e-6f }, { "upscaling", SZ_SAM, 64, 16384, 1e-6f },
    { "upscaling@1024", SZ_BIG, 32, 65536, 1e-6f },
};

static void run_norm(const backend *be, const norm_case *c, int is2d) {
    int rows = c->a, dim = c->b; /* 2d: C = a, HW = b; the weights have C (2d) or dim entries */
    size_t n = (size_t)rows * dim, nw = (size_t)(is2d ? c->a : dim);
    const char *op = is2d ? "layer_norm2d" : "layer_norm";
    float *x = rand_buf(n, is2d ? 2.0f : 3.0f), *w = rand_buf(nw, 1.0f), *b = rand_buf(nw, 1.0f), *yr = zero_buf(n);
    for (size_t j = 0; j < n; j++) x[j] += is2d ? -0.7f : 0.5f; /* a non-zero mean */
    float *dx = be_from(be, x, n), *dw = be_from(be, w, nw), *db = be_from(be, b, nw), *dy = be_nan(be, n);
    if (is2d) g_ref->layer_norm2d(g_ref, x, w, b, yr, c->a, c->b, c->eps);
    else g_ref->layer_norm(g_ref, x, w, b, yr, rows, dim, c->eps);
    for (int in_place = 0; in_place < 2 && dx && dw && db && dy; in_place++) {
        float *dst = in_place ? dx : dy;
        if (is2d) be->ops->layer_norm2d(be->ops, dx, dw, db, dst, c->a, c->b, c->eps);
        else be->ops->layer_norm(be->ops, dx, dw, db, dst, rows, dim, c->eps);
        float *y = be_to_host(be, dst, n);
        compare(be, y, yr, n, 2e-5, 1e-4 + lp(be, 1), op, "%s %d x %d%s", c->name, c->a, c->b,
                in_place ? " in place" : "");
        free(y);
    }
    if (!(dx && dw && db && dy)) fail_case(be, op, "allocation failed", "%s %d x %d", c->name, c->a, c->b);
    else if (is2d) PERF(be, op, 0, 8.0 * n, be->ops->layer_norm2d(be->ops, dx, dw, db, dy, c->a, c->b, c->eps));
    else PERF(be, op, 0, 8.0 * n, be->ops->layer_norm(be->ops, dx, dw, db, dy, rows, dim, c->eps));
    be_free(be, dx); be_free(be, dw); be_free(be, db); be_free(be, dy);
    free(x); free(w); free(b); free(yr);
}

static void test_norms(const backend *be) {
    for (size_t i = 0; i < sizeof ln_cases / sizeof ln_cases[0]; i++)
        if (want(be, "layer_norm", ln_cases[i].name, ln_cases[i].sz, 8.0 * ln_cases[i].a * ln_cases[i].b))
            run_norm(be, &ln_cases[i], 0);
    for (size_t i = 0; i < sizeof ln2_cases / sizeof ln2_cases[0]; i++)
        if (want(be, "layer_norm2d", ln2_cases[i].name, ln2_cases[i].sz, 8.0 * ln2_cases[i].a * ln2_cases[i].b))
            run_norm(be, &ln2_cases[i], 1);
}

/* ------------------------------------------------------------------ gelu, relu, sigmoid */

typedef enum { UN_GELU, UN_RELU, UN_SIGMOID } unary;
static const char *const unary_name[] = { "gelu", "relu", "sigmoid" };

static void unary_call(const samc_ops *o, unary op, float *x, size_t n) {
    if (op == UN_GELU) o->gelu(o, x, n);
    else if (op == UN_RELU) o->relu(o, x, n);
    else o->sigmoid(o, x, n);
}

static void run_unary(const backend *be, unary op, const char *name, size_t n0) {
    static const float special[] = { 0.0f, -0.0f, 1.0f, -1.0f, 1.4142135f, -1.4142135f, 5.656854f, -5.656854f,
                                     5.6568546f, -5.6568546f, 1e-30f, -1e-30f, 1e-7f, -3.0f, -8.0f, -12.0f, -20.0f,
                                     30.0f, 1e6f, -1e6f, 0.70710677f, -2.5f, 88.0f, -88.0f, -104.0f };
    const size_t ns = sizeof special / sizeof special[0];
    size_t n = n0 + ns;
    float *x = rand_buf(n, 7.0f);
    memcpy(x + n0, special, sizeof special);
    float *xr = malloc(n * sizeof(float));
    if (!xr) { fprintf(stderr, "out of memory\n"); exit(2); }
    float *dx = be_from(be, x, n);
    memcpy(xr, x, n * sizeof(float));
    unary_call(g_ref, op, xr, n);
    if (!dx) fail_case(be, unary_name[op], "allocation failed", "%s n=%zu", name, n);
    else {
        unary_call(be->ops, op, dx, n);
        float *y = be_to_host(be, dx, n);
        /* relu is exact everywhere; erff / expf: the device's may differ by ulps, cpu_fast's
         * own gelu by 1e-6 */
        double atol = op == UN_RELU ? 0 : be->is_cuda ? EW_ATOL : op == UN_GELU ? 1e-6 : 0;
        double rtol = op == UN_RELU ? 0 : be->is_cuda ? EW_RTOL + lp(be, 1) : op == UN_GELU ? 1e-6 : 0;
        compare(be, y, xr, n, atol, rtol, unary_name[op], "%s n=%zu", name, n);
        free(y);
        PERF(be, unary_name[op], 0, 8.0 * n, unary_call(be->ops, op, dx, n));
    }
    be_free(be, dx);
    free(x); free(xr);
}

static void test_unary(const backend *be) {
    static const struct { const char *name; int sz; size_t n; } sizes[] = {
        { "odd", SZ_ODD, 0 }, { "odd", SZ_ODD, 1 }, { "odd", SZ_ODD, 7 }, { "odd", SZ_ODD, 33 },
        { "micro mlp", SZ_SMALL, (size_t)4096 * 64 }, { "odd large", SZ_SAM, 1000003 },
        { "mlp s0@1024", SZ_BIG, (size_t)65536 * 384 },
    };
    for (int op = 0; op < 3; op++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            if (want(be, unary_name[op], sizes[i].name, sizes[i].sz, (double)sizes[i].n))
                run_unary(be, (unary)op, sizes[i].name, sizes[i].n);
}

/* ------------------------------------------------------------------ copy, add, add_channel, transpose */

/* copy of the whole buffer and of unaligned views into it. */
static void run_copy(const backend *be, const char *name, size_t n) {
    float *h = rand_buf(n, 1.0f);
    float *d = be_from(be, h, n), *d2 = be_nan(be, n);
    if (!d || !d2) fail_case(be, "copy", "allocation failed", "%s n=%zu", name, n);
    else {
        if (n > 2) be->ops->copy(be->ops, d2 + 1, d + 1, n - 2); /* unaligned views */
        be->ops->copy(be->ops, d2, d, 1);
        be->ops->copy(be->ops, d2 + n - 1, d + n - 1, 1);
        be->ops->copy(be->ops, d2, d, 0);
        float *back = be_to_host(be, d2, n);
        compare(be, back, h, n, 0, 0, "copy", "%s n=%zu (unaligned views)", name, n);
        free(back);
        PERF(be, "copy", 0, 8.0 * n, be->ops->copy(be->ops, d2, d, n));
    }
    be_free(be, d); be_free(be, d2);
    free(h);
}

static void run_add(const backend *be, const char *name, size_t n, size_t nb) {
    float *a = rand_buf(n, 10.0f), *b = rand_buf(nb, 10.0f), *r = zero_buf(n);
    float *da = be_from(be, a, n), *db = be_from(be, b, nb), *dd = be_nan(be, n);
    g_ref->add(g_ref, r, a, b, n, nb);
    if (!da || !db || !dd) fail_case(be, "add", "allocation failed", "%s n=%zu nb=%zu", name, n, nb);
    else {
        be->ops->add(be->ops, dd, da, db, n, nb);
        float *y = be_to_host(be, dd, n);
        compare(be, y, r, n, 0, 0, "add", "%s n=%zu nb=%zu", name, n, nb);
        PERF(be, "add", 0, 4.0 * (2 * n + nb), be->ops->add(be->ops, dd, da, db, n, nb));
        be->ops->add(be->ops, da, da, db, n, nb); /* dst aliases a */
        float *y2 = be_to_host(be, da, n);
        compare(be, y2, r, n, 0, 0, "add", "%s n=%zu nb=%zu in place", name, n, nb);
        free(y); free(y2);
    }
    be_free(be, da); be_free(be, db); be_free(be, dd);
    free(a); free(b); free(r);
}

static void run_add_channel(const backend *be, const char *name, int C, int HW) {
    size_t n = (size_t)C * HW;
    float *a = rand_buf(n, 1.0f), *v = rand_buf((size_t)C, 1.0f), *r = zero_buf(n), *r0 = zero_buf(n);
    float *da = be_from(be, a, n), *dv = be_from(be, v, (size_t)C), *dd = be_nan(be, n);
    g_ref->add_channel(g_ref, r, a, v, C, HW);
    g_ref->add_channel(g_ref, r0, NULL, v, C, HW);
    if (!da || !dv || !dd) fail_case(be, "add_channel", "allocation failed", "%s C=%d HW=%d", name, C, HW);
    else {
        be->ops->add_channel(be->ops, dd, da, dv, C, HW);
        float *y = be_to_host(be, dd, n);
        compare(be, y, r, n, 0, 0, "add_channel", "%s C=%d HW=%d", name, C, HW);
        PERF(be, "add_channel", 0, 8.0 * n, be->ops->add_channel(be->ops, dd, da, dv, C, HW));
        be->ops->add_channel(be->ops, dd, NULL, dv, C, HW);
        float *y0 = be_to_host(be, dd, n);
        compare(be, y0, r0, n, 0, 0, "add_channel", "%s C=%d HW=%d a=NULL", name, C, HW);
        be->ops->add_channel(be->ops, da, da, dv, C, HW);
        float *y2 = be_to_host(be, da, n);
        compare(be, y2, r, n, 0, 0, "add_channel", "%s C=%d HW=%d in place", name, C, HW);
        free(y); free(y0); free(y2);
    }
    be_free(be, da); be_free(be, dv); be_free(be, dd);
    free(a); free(v); free(r); free(r0);
}

static void run_transpose(const backend *be, const char *name, int B, int R, int C) {
    size_t n = (size_t)B * R * C;
    float *s = rand_buf(n, 1.0f), *r = zero_buf(n);
    float *ds = be_from(be, s, n), *dd = be_nan(be, n);
    g_ref->transpose(g_ref, s, r, B, R, C);
    if (!ds || !dd) fail_case(be, "transpose", "allocation failed", "%s [%d, %d, %d]", name, B, R, C);
    else {
        be->ops->transpose(be->ops, ds, dd, B, R, C);
        float *y = be_to_host(be, dd, n);
        compare(be, y, r, n, 0, 0, "transpose", "%s [%d, %d, %d]", name, B, R, C);
        free(y);
        PERF(be, "transpose", 0, 8.0 * n, be->ops->transpose(be->ops, ds, dd, B, R, C));
    }
    be_free(be, ds); be_free(be, dd);
    free(s); free(r);
}

typedef struct { const char *name; int sz, a, b, c; } shape3;

static void test_elementwise(const backend *be) {
    static const shape3 copies[] = { { "odd", SZ_ODD, 1, 0, 0 }, { "odd", SZ_ODD, 17, 0, 0 },
                                     { "micro map", SZ_SMALL, 65536, 0, 0 }, { "odd large", SZ_SAM, 1000003, 0, 0 } };
    /* n, nb: positional-embedding adds over tokens, plain adds, odd broadcasts */
    static const shape3 adds[] = { { "odd", SZ_ODD, 1, 1, 0 }, { "odd", SZ_ODD, 17, 17, 0 }, { "odd", SZ_ODD, 17, 1, 0 },
                                   { "odd", SZ_ODD, 33, 1, 0 }, { "odd", SZ_ODD, 91, 13, 0 },
                                   { "micro pos embed", SZ_SMALL, 65536, 16, 0 }, { "micro", SZ_SMALL, 65536, 65536, 0 },
                                   { "decoder keys", SZ_SAM, 1048576, 256, 0 }, { "neck", SZ_SAM, 1048576, 1048576, 0 },
                                   { "pos embed@1024", SZ_BIG, 6291456, 96, 0 }, { "odd big", SZ_BIG, 6291461, 6291461, 0 } };
    static const shape3 chans[] = { { "odd", SZ_ODD, 1, 1, 0 }, { "odd", SZ_ODD, 33, 1, 0 }, { "odd", SZ_ODD, 7, 13, 0 },
                                    { "odd", SZ_ODD, 1, 1000, 0 }, { "micro", SZ_SMALL, 32, 4096, 0 },
                                    { "neck", SZ_SAM, 256, 4096, 0 }, { "neck@1024", SZ_BIG, 256, 65536, 0 } };
    /* batch, R, C: NHWC <-> NCHW of Hiera maps, the decoder's [tokens, C] <-> [C, HW] */
    static const shape3 trans[] = { { "odd", SZ_ODD, 3, 17, 13 }, { "odd", SZ_ODD, 1, 1, 1 }, { "odd", SZ_ODD, 8, 33, 7 },
                                    { "odd", SZ_ODD, 3, 1, 13 }, { "odd", SZ_ODD, 2, 13, 1 }, { "odd", SZ_ODD, 5, 31, 65 },
                                    /* more batches than a grid has z blocks: a block transposes two tiles */
                                    { "batch > 65535", SZ_ODD, 65537, 2, 3 },
                                    { "micro patch embed", SZ_SMALL, 1, 16, 4096 }, { "micro", SZ_SMALL, 1, 4096, 16 },
                                    { "decoder keys", SZ_SAM, 2, 256, 4096 }, { "decoder", SZ_SAM, 1, 4096, 256 },
                                    { "hiera", SZ_SAM, 2, 4096, 96 }, { "patch embed@1024", SZ_BIG, 1, 96, 65536 },
                                    { "hiera@1024", SZ_BIG, 1, 65536, 96 } };
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++)
        if (want(be, "copy", copies[i].name, copies[i].sz, copies[i].a)) run_copy(be, copies[i].name, (size_t)copies[i].a);
    for (size_t i = 0; i < sizeof adds / sizeof adds[0]; i++)
        if (want(be, "add", adds[i].name, adds[i].sz, adds[i].a))
            run_add(be, adds[i].name, (size_t)adds[i].a, (size_t)adds[i].b);
    for (size_t i = 0; i < sizeof chans / sizeof chans[0]; i++)
        if (want(be, "add_channel", chans[i].name, chans[i].sz, (double)chans[i].a * chans[i].b))
            run_add_channel(be, chans[i].name, chans[i].a, chans[i].b);
    for (size_t i = 0; i < sizeof trans / sizeof trans[0]; i++)
        if (want(be, "transpose", trans[i].name, trans[i].sz, (double)trans[i].a * trans[i].b * trans[i].c))
            run_transpose(be, trans[i].name, trans[i].a, trans[i].b, trans[i].c);
}

/* ------------------------------------------------------------------ Hiera and neck layout ops */

typedef struct { const char *name; int sz, p[5]; } shape5;

static void run_window(const backend *be, const shape5 *s) {
    int H = s->p[0], W = s->p[1], C = s->p[2], wh = s->p[3], ww = s->p[4];
    int nwy = (H + wh - 1) / wh, nwx = (W + ww - 1) / ww;
    size_t xn = (size_t)H * W * C, wn = (size_t)nwy * nwx * wh * ww * C;
    float *x = rand_buf(xn, 1.0f), *win = zero_buf(wn), *w2 = rand_buf(wn, 1.0f), *r = zero_buf(xn);
    float *dx = be_from(be, x, xn), *dwin = be_nan(be, wn), *dw2 = be_from(be, w2, wn), *dout = be_nan(be, xn);
    g_ref->window_partition(g_ref, x, win, H, W, C, wh, ww);
    g_ref->window_unpartition_add(g_ref, w2, x, r, H, W, C, wh, ww, nwx);
    if (!dx || !dwin || !dw2 || !dout) {
        fail_case(be, "window_partition", "allocation failed", "%s %dx%d C=%d window %dx%d", s->name, H, W, C, wh, ww);
    } else {
        be->ops->window_partition(be->ops, dx, dwin, H, W, C, wh, ww);
        float *y = be_to_host(be, dwin, wn);
        compare(be, y, win, wn, 0, 0, "window_partition", "%s %dx%d C=%d window %dx%d", s->name, H, W, C, wh, ww);
        PERF(be, "window_partition", 0, 4.0 * (xn + wn), be->ops->window_partition(be->ops, dx, dwin, H, W, C, wh, ww));
        be->ops->window_unpartition_add(be->ops, dw2, dx, dout, H, W, C, wh, ww, nwx);
        float *u = be_to_host(be, dout, xn);
        compare(be, u, r, xn, 0, 0, "window_unpartition_add", "%s %dx%d C=%d window %dx%d", s->name, H, W, C, wh, ww);
        PERF(be, "window_unpartition_add", 0, 4.0 * (2 * xn + wn),
             be->ops->window_unpartition_add(be->ops, dw2, dx, dout, H, W, C, wh, ww, nwx));
        be->ops->window_unpartition_add(be->ops, dw2, dx, dx, H, W, C, wh, ww, nwx); /* out == shortcut */
        float *u2 = be_to_host(be, dx, xn);
        compare(be, u2, r, xn, 0, 0, "window_unpartition_add", "%s %dx%d C=%d window %dx%d in place", s->name, H, W,
                C, wh, ww);
        free(y); free(u); free(u2);
    }
    be_free(be, dx); be_free(be, dwin); be_free(be, dw2); be_free(be, dout);
    free(x); free(win); free(w2); free(r);
}

static void run_maxpool(const backend *be, const shape5 *s) {
    int n = s->p[0], H = s->p[1], W = s->p[2], C = s->p[3], ps = s->p[4];
    size_t xn = ((size_t)n * H * W - 1) * ps + C, yn = (size_t)n * (H / 2) * (W / 2) * C;
    float *x = rand_buf(xn, 1.0f), *r = zero_buf(yn);
    float *dx = be_from(be, x, xn), *dy = be_nan(be, yn);
    g_ref->maxpool2x2(g_ref, x, r, n, H, W, C, ps);
    if (!dx || !dy) fail_case(be, "maxpool2x2", "allocation failed", "%s", s->name);
    else {
        be->ops->maxpool2x2(be->ops, dx, dy, n, H, W, C, ps);
        float *y = be_to_host(be, dy, yn);
        compare(be, y, r, yn, 0, 0, "maxpool2x2", "%s n=%d %dx%d C=%d stride %d", s->name, n, H, W, C, ps);
        free(y);
        PERF(be, "maxpool2x2", 0, 20.0 * yn, be->ops->maxpool2x2(be->ops, dx, dy, n, H, W, C, ps));
    }
    be_free(be, dx); be_free(be, dy);
    free(x); free(r);
}

static void run_upsample_nearest(const backend *be, const shape5 *s) {
    int C = s->p[0], h = s->p[1], w = s->p[2];
    size_t sn = (size_t)C * h * w, dn = sn * 4;
    float *src = rand_buf(sn, 1.0f), *d = rand_buf(dn, 1.0f), *r = malloc(dn * sizeof(float));
    if (!r) { fprintf(stderr, "out of memory\n"); exit(2); }
    float *ds = be_from(be, src, sn), *dd = be_from(be, d, dn);
    memcpy(r, d, dn * sizeof(float));
    g_ref->upsample_nearest2x_add(g_ref, r, src, C, h, w);
    if (!ds || !dd) fail_case(be, "upsample_nearest2x_add", "allocation failed", "%s", s->name);
    else {
        be->ops->upsample_nearest2x_add(be->ops, dd, ds, C, h, w);
        float *y = be_to_host(be, dd, dn);
        compare(be, y, r, dn, 0, 0, "upsample_nearest2x_add", "%s C=%d %dx%d", s->name, C, h, w);
        free(y);
        PERF(be, "upsample_nearest2x_add", 0, 4.0 * (2 * dn + sn), be->ops->upsample_nearest2x_add(be->ops, dd, ds, C, h, w));
    }
    be_free(be, ds); be_free(be, dd);
    free(src); free(d); free(r);
}

/* Low-res logits [n, ls, ls] -> [n, h, w]; exact on the CPU, device-rounding tolerance on CUDA. */
static void run_upsample_bilinear(const backend *be, const shape5 *s) {
    int n = s->p[0], ls = s->p[1], w = s->p[2], h = s->p[3];
    size_t ln = (size_t)n * ls * ls, on = (size_t)n * w * h;
    float *low = rand_buf(ln, 20.0f), *r = zero_buf(on);
    float *dl = be_from(be, low, ln), *dout = be_nan(be, on);
    g_ref->upsample_bilinear(g_ref, low, r, n, ls, w, h);
    if (!dl || !dout) fail_case(be, "upsample_bilinear", "allocation failed", "%s", s->name);
    else {
        be->ops->upsample_bilinear(be->ops, dl, dout, n, ls, w, h);
        float *y = be_to_host(be, dout, on);
        compare(be, y, r, on, be->is_cuda ? EW_ATOL : 0, be->is_cuda ? EW_RTOL + lp(be, 1) : 0, "upsample_bilinear",
                "%s n=%d %d -> %dx%d (w x h)", s->name, n, ls, w, h);
        free(y);
        PERF(be, "upsample_bilinear", 0, 4.0 * (ln + on), be->ops->upsample_bilinear(be->ops, dl, dout, n, ls, w, h));
    }
    be_free(be, dl); be_free(be, dout);
    free(low); free(r);
}

static const shape5 window_cases[] = {
    { "odd", SZ_ODD, { 13, 7, 5, 4, 3 } }, { "odd", SZ_ODD, { 13, 7, 3, 5, 4 } }, { "odd", SZ_ODD, { 1, 1, 1, 1, 1 } },
    { "one window", SZ_ODD, { 9, 5, 33, 9, 5 } },
    { "micro s0", SZ_SMALL, { 64, 64, 16, 8, 8 } }, { "micro s2 padded", SZ_SMALL, { 16, 16, 64, 6, 6 } },
    { "tiny block 10 padded", SZ_SAM, { 64, 64, 384, 14, 14 } }, { "s3 padded", SZ_SAM, { 32, 32, 768, 7, 7 } },
    { "q-pooled 4x4", SZ_SAM, { 128, 128, 192, 4, 4 } }, { "s0@1024", SZ_BIG, { 256, 256, 96, 8, 8 } },
};
/* n, H, W, C, pixel stride: q inside packed qkv rows [tokens, 3*dim] at stage changes, dense */
static const shape5 maxpool_cases[] = {
    { "odd dense", SZ_ODD, { 3, 7, 5, 13, 13 } }, { "odd", SZ_ODD, { 3, 6, 10, 5, 7 } }, { "odd", SZ_ODD, { 2, 3, 5, 1, 1 } },
    { "2x2 strided", SZ_ODD, { 2, 2, 2, 1, 3 } }, { "micro windowed q", SZ_SMALL, { 64, 8, 8, 16, 48 } },
    { "micro q of qkv", SZ_SMALL, { 1, 64, 64, 16, 48 } }, { "windowed q", SZ_SAM, { 16, 8, 8, 96, 288 } },
    { "q of qkv s1->s2@512", SZ_SAM, { 1, 64, 64, 384, 1152 } }, { "windowed q@1024", SZ_BIG, { 1024, 8, 8, 96, 288 } },
    { "dense@1024", SZ_BIG, { 1, 256, 256, 96, 96 } }, { "q of qkv s0->s1@1024", SZ_BIG, { 1, 256, 256, 192, 576 } },
};
static const shape5 nearest_cases[] = {
    { "odd", SZ_ODD, { 3, 5, 7 } }, { "odd", SZ_ODD, { 3, 1, 1 } }, { "odd", SZ_ODD, { 5, 3, 7 } },
    { "micro neck", SZ_SMALL, { 32, 16, 16 } }, { "neck", SZ_SAM, { 256, 32, 32 } }, { "neck@1024", SZ_SAM, { 256, 64, 64 } },
};
/* n, ls, w, h: low-res masks to the image size, identity and downscaling */
static const shape5 bilinear_cases[] = {
    { "odd", SZ_ODD, { 2, 7, 5, 13 } }, { "odd", SZ_ODD, { 1, 1, 3, 2 } }, { "odd", SZ_ODD, { 2, 1, 7, 5 } },
    { "odd", SZ_ODD, { 1, 13, 33, 1 } }, { "identity", SZ_ODD, { 2, 7, 7, 7 } },
    { "micro masks", SZ_SMALL, { 3, 64, 320, 240 } }, { "downscale", SZ_SAM, { 1, 256, 64, 64 } },
    { "odd sizes", SZ_SAM, { 1, 256, 257, 255 } }, { "1024", SZ_SAM, { 1, 256, 1024, 1024 } },
    { "wide: 3 column chunks, 2 maps", SZ_SAM, { 2, 288, 1300, 90 } },
    { "3 masks 1024", SZ_BIG, { 3, 256, 1024, 1024 } }, { "tiny golden", SZ_BIG, { 3, 256, 1800, 1200 } },
    { "portrait", SZ_BIG, { 4, 256, 1200, 1800 } },
};

static void test_layout(const backend *be) {
    for (size_t i = 0; i < sizeof window_cases / sizeof window_cases[0]; i++) {
        const shape5 *s = &window_cases[i];
        double n = (double)s->p[0] * s->p[1] * s->p[2];
        if (want(be, "window_partition", s->name, s->sz, n) || want(be, "window_unpartition_add", s->name, s->sz, n))
            run_window(be, s);
    }
    for (size_t i = 0; i < sizeof maxpool_cases / sizeof maxpool_cases[0]; i++)
        if (want(be, "maxpool2x2", maxpool_cases[i].name, maxpool_cases[i].sz, 0)) run_maxpool(be, &maxpool_cases[i]);
    for (size_t i = 0; i < sizeof nearest_cases / sizeof nearest_cases[0]; i++)
        if (want(be, "upsample_nearest2x_add", nearest_cases[i].name, nearest_cases[i].sz, 0))
            run_upsample_nearest(be, &nearest_cases[i]);
    for (size_t i = 0; i < sizeof bilinear_cases / sizeof bilinear_cases[0]; i++)
        if (want(be, "upsample_bilinear", bilinear_cases[i].name, bilinear_cases[i].sz, 0))
            run_upsample_bilinear(be, &bilinear_cases[i]);
}

/* ------------------------------------------------------------------ convolutions */

typedef struct { const char *name; int sz, Cin, H, W, Cout, kh, kw, stride, pad, bias; } conv_case;

static const conv_case conv_cases[] = {
    /* odd: taps over one shared-memory step (64*9 = 576 > 256), partial channel tiles */
    { "3x3 s1 p1", SZ_ODD, 3, 5, 7, 5, 3, 3, 1, 1, 1 }, { "3x3 s2 p1", SZ_ODD, 7, 13, 9, 17, 3, 3, 2, 1, 0 },
    { "5x5 p3 on 2x2", SZ_ODD, 2, 2, 2, 3, 5, 5, 1, 3, 1 }, { "1x1 s2", SZ_ODD, 5, 9, 9, 6, 1, 1, 2, 0, 1 },
    { "1x1 p1", SZ_ODD, 5, 4, 3, 7, 1, 1, 1, 1, 1 }, { "1x3", SZ_ODD, 4, 6, 11, 33, 1, 3, 1, 0, 0 },
    { "1x1x1", SZ_ODD, 1, 1, 1, 1, 1, 1, 1, 0, 1 }, { "17x17 kernel", SZ_ODD, 2, 20, 20, 3, 17, 17, 1, 8, 1 },
    { "3x3 many taps", SZ_ODD, 64, 17, 19, 33, 3, 3, 1, 1, 1 },
    /* in bf16 / fp16 the long reductions (>= 256 taps) are im2col + GEMM (kernels/cuda/
     * conv.cu): 18432 taps fill the 32 MiB scratch with 904 pixels' columns, so two chunks */
    { "long reduction, two scratch chunks", SZ_SMALL, 2048, 31, 31, 8, 3, 3, 1, 1, 1 },
    /* SAM3: the micro seg head's 3x3 over 32 channels (288 taps); the ViT's patch embed
     * (14x14 s14, 588 taps) at 1008 px, the pixel decoder at 144 px (2304 taps) */
    { "micro seg head 3x3", SZ_SMALL, 32, 36, 36, 32, 3, 3, 1, 1, 1 },
    { "sam3 patch embed 14x14 s14", SZ_BIG, 3, 1008, 1008, 1024, 14, 14, 14, 0, 0 },
    { "sam3 pixel decoder 3x3 at 144", SZ_BIG, 256, 144, 144, 256, 3, 3, 1, 1, 1 },
    /* micro: patch embed 3 -> 16 at 256 px, mask downscaling 1 -> 1 -> 4 channels */
    { "micro patch embed", SZ_SMALL, 3, 256, 256, 16, 7, 7, 4, 3, 1 },
    { "micro mask down 1", SZ_SMALL, 1, 256, 256, 1, 2, 2, 2, 0, 1 },
    { "micro mask down 1x1", SZ_SMALL, 4, 64, 64, 32, 1, 1, 1, 0, 1 },
    /* Hiera PatchEmbed 7x7 s4 p3, 3 -> 96 (tiny) / 144 (large); prompt encoder mask
     * downscaling (2x2 s2 convs, then 1x1: the matmul path); a neck 1x1 */
    { "patch embed 256 tiny", SZ_SAM, 3, 256, 256, 96, 7, 7, 4, 3, 1 },
    { "patch embed 256 large", SZ_SAM, 3, 256, 256, 144, 7, 7, 4, 3, 1 },
    { "mask down 1", SZ_SAM, 1, 256, 256, 4, 2, 2, 2, 0, 1 }, { "mask down 2", SZ_SAM, 4, 128, 128, 16, 2, 2, 2, 0, 1 },
    { "mask down 1x1", SZ_SAM, 16, 64, 64, 256, 1, 1, 1, 0, 1 }, { "neck 1x1", SZ_SAM, 768, 32, 32, 256, 1, 1, 1, 0, 0 },
    { "patch embed 1024 tiny", SZ_BIG, 3, 1024, 1024, 96, 7, 7, 4, 3, 1 },
    { "patch embed 1024 large", SZ_BIG, 3, 1024, 1024, 144, 7, 7, 4, 3, 1 },
};

/* The reference one output channel at a time: every channel when few, else 5 (first,
 * last, one of a partial tile). */
static void run_conv2d(const backend *be, const conv_case *c) {
    int Ho = (c->H + 2 * c->pad - c->kh) / c->stride + 1, Wo = (c->W + 2 * c->pad - c->kw) / c->stride + 1;
    size_t wsz = (size_t)c->Cin * c->kh * c->kw, plane = (size_t)Ho * Wo;
    size_t xn = (size_t)c->Cin * c->H * c->W, wn = (size_t)c->Cout * wsz, yn = (size_t)c->Cout * plane;
    float *x = rand_buf(xn, 1.0f), *w = rand_buf(wn, 1.0f), *b = c->bias ? rand_buf((size_t)c->Cout, 1.0f) : NULL;
    float *dx = be_from(be, x, xn), *dw = be_from(be, w, wn), *db = b ? be_from(be, b, (size_t)c->Cout) : NULL;
    float *dy = be_nan(be, yn);
    run_t r;
    /* 16 bits: 1x1 convolutions are matmuls, whose product may be rounded before the bias */
    run_begin(&r, be, gemm_atol((int)wsz) + lp(be, sqrt((double)wsz)), GEMM_RTOL + lp(be, 1), "conv2d", "%s Cin=%d %dx%d Cout=%d k=%dx%d s=%d p=%d%s", c->name,
              c->Cin, c->H, c->W, c->Cout, c->kh, c->kw, c->stride, c->pad, c->bias ? " bias" : "");
    if (!dx || !dw || !dy || (b && !db)) run_fail(&r, "allocation failed");
    else {
        be->ops->conv2d(be->ops, dx, dw, db, dy, c->Cin, c->H, c->W, c->Cout, c->kh, c->kw, c->stride, c->pad);
        if (run_sync(&r)) {
            float *y = be_to_host(be, dy, yn), *yr = zero_buf(plane);
            int chans[5] = { 0, c->Cout / 3, c->Cout / 2 + 1, c->Cout - 2, c->Cout - 1 };
            for (int i = 0; i < (c->Cout <= 5 ? c->Cout : 5); i++) {
                int co = c->Cout <= 5 ? i : chans[i];
                g_ref->conv2d(g_ref, x, w + (size_t)co * wsz, b ? b + co : NULL, yr, c->Cin, c->H, c->W, 1, c->kh,
                              c->kw, c->stride, c->pad);
                run_cmp(&r, y + (size_t)co * plane, yr, plane, (size_t)co * plane);
            }
            free(y); free(yr);
        }
    }
    if (run_end(&r))
        PERF(be, r.what, 2.0 * yn * wsz, 4.0 * (xn + wn + yn),
             be->ops->conv2d(be->ops, dx, dw, db, dy, c->Cin, c->H, c->W, c->Cout, c->kh, c->kw, c->stride, c->pad));
    be_free(be, dx); be_free(be, dw); be_free(be, db); be_free(be, dy);
    free(x); free(w); free(b);
}

/* bf16 / fp16, on a fresh instance: a convolution whose weights and bias are in the
 * weight block (set_precision makes their 16-bit copy), as the model's are: in the fp32
 * phase (fp32 x and y: SAM3's pixel decoder) and in the 16-bit phase (its ViT's patch
 * embed). A long reduction (576 taps) takes the im2col + 16-bit GEMM path on a device
 * with tensor cores for the format (kernels/cuda/conv.cu, switch CONV): x and w rounded
 * once, fp32 sums; the direct kernel (CONV=direct, or no tensor cores) reads them as they
 * are: the fp32 phase's y must be one of the two, tightly. */
static void conv_weight_copy(const backend *be) {
    const conv_case c = { "weights in the block, 576 taps", SZ_ODD, 64, 17, 19, 33, 3, 3, 1, 1, 1 };
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    if (!o) { fail_case(be, "conv2d", err, "another backend instance"); return; }
    backend fp = *be;
    fp.ops = o;
    fp.prec = 0;
    size_t R = (size_t)c.Cin * c.kh * c.kw, plane = (size_t)c.H * c.W, xn = (size_t)c.Cin * plane;
    size_t wn = (size_t)c.Cout * R, yn = (size_t)c.Cout * plane;
    float *hblk = rand_buf(wn + (size_t)c.Cout, 1.0f), *x = rand_buf(xn, 1.0f);
    float *xr = nan_host(xn), *wr = nan_host(wn), *want_y = zero_buf(yn), *want_direct = zero_buf(yn);
    test_round_lowp_buf(xr, x, xn, be->prec);
    test_round_lowp_buf(wr, hblk, wn, be->prec);
    g_ref->conv2d(g_ref, xr, wr, hblk + wn, want_y, c.Cin, c.H, c.W, c.Cout, c.kh, c.kw, c.stride, c.pad);
    g_ref->conv2d(g_ref, x, hblk, hblk + wn, want_direct, c.Cin, c.H, c.W, c.Cout, c.kh, c.kw, c.stride, c.pad);
    float *blk = be_from(&fp, hblk, wn + (size_t)c.Cout);
    int ok = blk && o->set_precision(o, (samc_ops_precision)be->prec, blk, wn + (size_t)c.Cout, err) == 0;
    if (ok) o->activation_precision(o, 0);
    float *dx = ok ? be_from(&fp, x, xn) : NULL, *dy = ok ? be_nan(&fp, yn) : NULL, *dz = ok ? be_nan(&fp, yn) : NULL;
    if (!ok || !dx || !dy || !dz) {
        fail_case(be, "conv2d", err[0] ? err : "allocation failed", "weights in the block");
    } else {
        for (int phase = 0; phase < 2; phase++) {
            o->activation_precision(o, phase);
            o->conv2d(o, dx, blk, blk + wn, phase ? dz : dy, c.Cin, c.H, c.W, c.Cout, c.kh, c.kw, c.stride, c.pad);
            float *y = be_to_host(&fp, phase ? dz : dy, yn);
            /* fp32 phase: the direct kernel's result if it is that, else the GEMM's */
            int direct = 1;
            for (size_t i = 0; i < yn && direct && !phase; i++)
                direct = fabsf(y[i] - want_direct[i]) <= gemm_atol((int)R) + GEMM_RTOL * fabsf(want_direct[i]);
            if (direct && !phase) printf("       (the direct kernel's result)\n");
            /* the 16-bit phase rounds the product, then the bias pass rounds again */
            compare(be, y, direct && !phase ? want_direct : want_y, yn, gemm_atol((int)R) + lp(be, phase ? 2 * sqrt((double)R) : 0),
                    GEMM_RTOL + lp(be, phase ? 2 : 0), "conv2d", "%s, %s phase: Cin=%d %dx%d Cout=%d k=3x3", c.name,
                    phase ? "16-bit" : "fp32", c.Cin, c.H, c.W, c.Cout);
            free(y);
        }
    }
    ((backend *)be)->ran += fp.ran;
    be_free(&fp, dx); be_free(&fp, dy); be_free(&fp, dz); be_free(&fp, blk);
    samc_ops_cuda_destroy(o);
    free(hblk); free(x); free(xr); free(wr); free(want_y); free(want_direct);
}

static void run_convt(const backend *be, const shape5 *s) {
    int Cin = s->p[0], H = s->p[1], W = s->p[2], Cout = s->p[3], with_bias = s->p[4];
    size_t plane = (size_t)4 * H * W, xn = (size_t)Cin * H * W, wn = (size_t)Cin * Cout * 4, yn = (size_t)Cout * plane;
    float *x = rand_buf(xn, 1.0f), *w = rand_buf(wn, 1.0f), *b = with_bias ? rand_buf((size_t)Cout, 1.0f) : NULL;
    float *dx = be_from(be, x, xn), *dw = be_from(be, w, wn), *db = b ? be_from(be, b, (size_t)Cout) : NULL;
    float *dy = be_nan(be, yn);
    run_t r;
    run_begin(&r, be, gemm_atol(Cin), GEMM_RTOL + lp(be, 1), "conv_transpose2x2", "%s Cin=%d %dx%d Cout=%d%s", s->name, Cin, H, W,
              Cout, with_bias ? " bias" : "");
    if (!dx || !dw || !dy || (b && !db)) run_fail(&r, "allocation failed");
    else {
        be->ops->conv_transpose2x2(be->ops, dx, dw, db, dy, Cin, H, W, Cout);
        if (run_sync(&r)) {
            float *y = be_to_host(be, dy, yn), *yr = zero_buf(plane), *w1 = zero_buf((size_t)Cin * 4);
            int chans[5] = { 0, Cout / 3, Cout / 2 + 1, Cout - 2, Cout - 1 };
            for (int i = 0; i < (Cout <= 5 ? Cout : 5); i++) {
                int co = Cout <= 5 ? i : chans[i];
                /* w[Cin, Cout, 2, 2] restricted to one output channel */
                for (int ci = 0; ci < Cin; ci++)
                    memcpy(w1 + (size_t)ci * 4, w + ((size_t)ci * Cout + co) * 4, 4 * sizeof(float));
                g_ref->conv_transpose2x2(g_ref, x, w1, b ? b + co : NULL, yr, Cin, H, W, 1);
                run_cmp(&r, y + (size_t)co * plane, yr, plane, (size_t)co * plane);
            }
            free(y); free(yr); free(w1);
        }
    }
    if (run_end(&r))
        PERF(be, r.what, 2.0 * yn * Cin, 4.0 * (xn + wn + yn), be->ops->conv_transpose2x2(be->ops, dx, dw, db, dy, Cin, H, W, Cout));
    be_free(be, dx); be_free(be, dw); be_free(be, db); be_free(be, dy);
    free(x); free(w); free(b);
}

/* Cin, H, W, Cout, bias: the mask decoder's output_upscaling, and odd ones */
static const shape5 convt_cases[] = {
    { "odd", SZ_ODD, { 1, 1, 1, 1, 1 } }, { "odd", SZ_ODD, { 7, 5, 3, 13, 0 } },
    { "several weight steps and channel tiles", SZ_ODD, { 300, 17, 19, 70, 1 } },
    { "micro output_upscaling[0]", SZ_SMALL, { 32, 16, 16, 8, 1 } },
    { "micro output_upscaling[3]", SZ_SMALL, { 8, 32, 32, 4, 1 } },
    { "output_upscaling[0]", SZ_SAM, { 256, 64, 64, 64, 1 } }, { "output_upscaling[3]", SZ_SAM, { 64, 128, 128, 32, 1 } },
    /* in the 16-bit phase a GEMM into the scratch (kernels/cuda/conv.cu): 4400 outputs per
     * pixel, 1904 pixels per chunk, so three; SAM3's neck (dconv_2x2_1 at 144 -> 288 px) */
    { "three scratch chunks", SZ_SMALL, { 8, 64, 64, 1100, 1 } },
    { "sam3 neck dconv 512 -> 256 at 144", SZ_BIG, { 512, 144, 144, 256, 1 } },
};

static void test_conv(const backend *be) {
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        const conv_case *c = &conv_cases[i];
        int Ho = (c->H + 2 * c->pad - c->kh) / c->stride + 1, Wo = (c->W + 2 * c->pad - c->kw) / c->stride + 1;
        if (want(be, "conv2d", c->name, c->sz, 2.0 * c->Cout * Ho * Wo * c->Cin * c->kh * c->kw)) run_conv2d(be, c);
    }
    if (be->prec && be->is_cuda && want(be, "conv2d", "weights in the block", SZ_ODD, 0)) conv_weight_copy(be);
    for (size_t i = 0; i < sizeof convt_cases / sizeof convt_cases[0]; i++) {
        const shape5 *s = &convt_cases[i];
        if (want(be, "conv_transpose2x2", s->name, s->sz, 8.0 * s->p[0] * s->p[1] * s->p[2] * s->p[3])) run_convt(be, s);
    }
}

/* ------------------------------------------------------------------ image pipeline */

/* bytes of the backend's memory holding h (or nothing when h is NULL); NULL on failure */
static void *be_bytes(const backend *b, const void *h, size_t bytes) {
    void *p = b->ops->host_memory ? malloc(bytes ? bytes : 1) : b->ops->alloc(b->ops, bytes ? bytes : 1);
    if (!p || !h || !bytes) return p;
    if (b->ops->host_memory) memcpy(p, h, bytes);
    else b->ops->upload(b->ops, p, h, bytes);
    return p;
}

static void be_back(const backend *b, void *h, const void *d, size_t bytes) {
    if (b->ops->host_memory) memcpy(h, d, bytes);
    else b->ops->download(b->ops, h, d, bytes);
}

typedef struct { const char *name; int sz, w, h, S, taps; } pre_case;
static const pre_case pre_cases[] = {
    { "down 97x61 -> 32", SZ_ODD, 97, 61, 32, 9 }, { "up 20x13 -> 32", SZ_ODD, 20, 13, 32, 5 },
    { "1x1 -> 16", SZ_ODD, 1, 1, 16, 3 }, { "w = S 32x70 -> 32", SZ_ODD, 32, 70, 32, 1 },
    { "micro 320x240 -> 64", SZ_SMALL, 320, 240, 64, 13 }, { "1800x1200 -> 256", SZ_SMALL, 1800, 1200, 256, 17 },
    { "1800x1200 -> 1024", SZ_SAM, 1800, 1200, 1024, 7 }, { "4000x3000 -> 1024", SZ_BIG, 4000, 3000, 1024, 11 },
};

/* Filter taps as the model makes them (first input, count <= T, weights >= 0), random;
 * taps == 1 makes axis x the identity. Layout: x0, nx, y0, ny [S] ints, wx, wy [S, T]. */
static void make_taps(const pre_case *c, int32_t *ti, float *tw) {
    int S = c->S, T = c->taps;
    for (int ax = 0; ax < 2; ax++) {
        int in = ax ? c->h : c->w, ident = ax == 0 && T == 1;
        int32_t *first = ti + (size_t)2 * ax * S, *cnt = first + S;
        float *w = tw + (size_t)ax * S * T;
        for (int o = 0; o < S; o++) {
            int n = ident ? 1 : 1 + (int)((frand() * 0.5f + 0.5f) * (float)(T - 1) + 0.5f);
            if (n > in) n = in;
            int f = ident ? o : (int)((float)o * (float)in / (float)S);
            if (f + n > in) f = in - n;
            first[o] = f;
            cnt[o] = n;
            for (int j = 0; j < T; j++) w[(size_t)o * T + j] = ident ? 1.0f : frand() * 0.5f + 0.5f;
        }
    }
}

static void run_preprocess(const backend *be, const pre_case *c) {
    int S = c->S, T = c->taps;
    size_t npix = (size_t)c->w * c->h, nout = (size_t)3 * S * S, nti = (size_t)4 * S, ntw = (size_t)2 * S * T;
    uint8_t *rgb = malloc(npix * 3);
    int32_t *ti = malloc(sizeof(int32_t) * nti);
    float *tw = malloc(sizeof(float) * ntw), *ref = nan_host(nout), *got = nan_host(nout);
    for (size_t i = 0; i < npix * 3; i++) rgb[i] = (uint8_t)((frand() * 0.5f + 0.5f) * 255.0f);
    make_taps(c, ti, tw);
    samc_resize_taps th = { ti, ti + S, ti + 2 * S, ti + 3 * S, tw, tw + (size_t)S * T, T,
                            { 0.485f, 0.456f, 0.406f }, { 0.229f, 0.224f, 0.225f } };
    g_ref->preprocess(g_ref, rgb, c->w, c->h, &th, ref, S);
    uint8_t *drgb = be_bytes(be, rgb, npix * 3);
    int32_t *dti = be_bytes(be, ti, sizeof(int32_t) * nti);
    float *dtw = be_bytes(be, tw, sizeof(float) * ntw), *dout = be_nan(be, nout);
    if (!drgb || !dti || !dtw || !dout) {
        fail_case(be, "preprocess", "allocation failed", "%s", c->name);
    } else {
        samc_resize_taps td = th;
        td.x0 = dti; td.nx = dti + S; td.y0 = dti + 2 * S; td.ny = dti + 3 * S;
        td.wx = dtw; td.wy = dtw + (size_t)S * T;
        be->ops->preprocess(be->ops, drgb, c->w, c->h, &td, dout, S);
        char err[512];
        if (be_sync(be, err)) fail_case(be, "preprocess", err, "%s", c->name);
        else {
            be_back(be, got, dout, sizeof(float) * nout);
            compare(be, got, ref, nout, 0, 0, "preprocess", "%s, %d taps", c->name, T);
        }
        PERF(be, "preprocess", 0, (double)npix * 3 + 12.0 * nout,
             be->ops->preprocess(be->ops, drgb, c->w, c->h, &td, dout, S));
    }
    be_free(be, drgb); be_free(be, dti); be_free(be, dtw); be_free(be, dout);
    free(rgb); free(ti); free(tw); free(ref); free(got);
}

typedef struct {
    const char *name;
    int sz, B, L, multimask, cw, ch, max_region, filters, crop_x0, crop_y0, img_w, img_h;
} post_case;
static const post_case post_cases[] = {
    { "B=6 M=3 47x29 crop at 0", SZ_ODD, 6, 16, 1, 47, 29, 0, 1, 0, 0, 47, 29 },
    { "B=6 M=1 120x64 inner crop", SZ_ODD, 6, 16, 0, 120, 64, 0, 1, 25, 0, 150, 64 },
    { "B=2 M=3 33x31 regions 6", SZ_ODD, 2, 16, 1, 33, 31, 6, 1, 0, 0, 33, 31 },
    { "B=5 M=3 no filters 64x32", SZ_ODD, 5, 16, 1, 64, 32, 0, 0, 0, 0, 64, 32 },
    { "micro AMG batch 8 320x240", SZ_SMALL, 8, 64, 1, 320, 240, 0, 1, 0, 0, 320, 240 },
    { "micro mosaic regions 100", SZ_SMALL, 4, 64, 1, 200, 150, 100, 1, 0, 0, 200, 150 },
    { "AMG batch 16 1024x1024", SZ_SAM, 16, 256, 1, 1024, 1024, 0, 1, 0, 0, 1024, 1024 },
    { "mosaic batch 16 regions 100", SZ_SAM, 16, 256, 1, 1000, 1000, 100, 1, 0, 0, 1000, 1000 },
};

/* Low-res logits with structure: a few blobs of either sign over a ramp, so masks have
 * holes, islands and runs; some items all negative (empty masks). */
static void make_logits(float *low, int B, int L) {
    for (int m = 0; m < B * 4; m++) {
        float *o = low + (size_t)m * L * L, cx[4], cy[4], r[4], a[4];
        for (int j = 0; j < 4; j++) {
            cx[j] = (frand() * 0.5f + 0.5f) * L; cy[j] = (frand() * 0.5f + 0.5f) * L;
            r[j] = 1.0f + (frand() * 0.5f + 0.5f) * L / 3; a[j] = frand() * 20.0f;
        }
        float bias = m % 7 == 3 ? -30.0f : frand() * 4.0f - 2.0f;
        for (int y = 0; y < L; y++)
            for (int x = 0; x < L; x++) {
                float v = bias + frand() * 0.5f;
                for (int j = 0; j < 4; j++) {
                    float d2 = ((x - cx[j]) * (x - cx[j]) + (y - cy[j]) * (y - cy[j])) / (r[j] * r[j]);
                    v += d2 < 1.0f ? a[j] * (1.0f - d2) : 0.0f;
                }
                o[(size_t)y * L + x] = v;
            }
    }
}

static samc_mask_post_args post_args(const post_case *c) {
    samc_mask_post_args a = { .B = c->B, .L = c->L, .multimask = c->multimask, .cw = c->cw, .ch = c->ch,
                              .crop_x0 = c->crop_x0, .crop_y0 = c->crop_y0, .img_w = c->img_w, .img_h = c->img_h,
                              .edge_atol = 20, .filter_iou = c->filters, .filter_stability = c->filters,
                              .max_region = c->max_region, .iou_thresh = 0.2f, .stab_thresh = 0.5f,
                              .stab_hi = 1.0f, .stab_lo = -1.0f, .mask_threshold = 0.0f, .n_cc_slots = 3 };
    return a;
}

/* Stats and toggles of the backend against cpu_ref, record by record. */
static void post_compare(const backend *be, const post_case *c, const samc_mask_stat *got, const samc_mask_stat *ref,
                         const uint32_t *gruns, const uint32_t *rruns, int64_t nruns, int n_cand) {
    run_t r;
    run_begin(&r, be, 0, 0, "mask_stats", "%s", c->name);
    int kept = 0;
    for (int k = 0; k < n_cand; k++) {
        kept += ref[k].passed == 3;
        if (memcmp(&got[k], &ref[k], sizeof ref[k]))
            run_fail(&r, "candidate %d: token %d/%d passed %d/%d iou %g/%g stability %.9g/%.9g area %lld/%lld box "
                     "%d,%d,%d,%d/%d,%d,%d,%d runs %lld/%lld", k, got[k].token, ref[k].token, got[k].passed,
                     ref[k].passed, got[k].iou, ref[k].iou, got[k].stability, ref[k].stability,
                     (long long)got[k].area, (long long)ref[k].area, got[k].box[0], got[k].box[1], got[k].box[2],
                     got[k].box[3], ref[k].box[0], ref[k].box[1], ref[k].box[2], ref[k].box[3],
                     (long long)got[k].n_runs, (long long)ref[k].n_runs);
    }
    for (int64_t i = 0; i < nruns; i++)
        if (gruns[i] != rruns[i]) {
            run_fail(&r, "toggle %lld: %u, cpu_ref %u", (long long)i, gruns[i], rruns[i]);
            break;
        }
    if (!kept && c->filters) run_fail(&r, "no candidate was kept: the case tests nothing of the runs");
    r.n = (size_t)n_cand + (size_t)nruns;
    r.max_err = 0;
    run_end(&r);
}

static void run_mask_post(const backend *be, const post_case *c) {
    rng_state = TEST_RNG_SEED + (uint64_t)(c - post_cases + 1) * 0x2545f4914f6cdd1dull; /* same data on every backend */
    int M = c->multimask ? 3 : 1, n_cand = c->B * M;
    size_t nl = (size_t)c->B * 4 * c->L * c->L, ncol = (size_t)n_cand * c->cw + 1;
    size_t nfill = c->max_region ? (size_t)n_cand * c->L * c->L : 1, ncc = (size_t)3 * 2 * c->L * c->L;
    float *low = malloc(sizeof(float) * nl), *iou = rand_buf((size_t)c->B * 4, 1.0f);
    for (int i = 0; i < c->B * 4; i++) iou[i] = fabsf(iou[i]);
    make_logits(low, c->B, c->L);
    samc_mask_post_args ra = post_args(c), da = ra;
    samc_mask_stat *rst = calloc((size_t)n_cand, sizeof *rst), *gst = calloc((size_t)n_cand, sizeof *gst);
    ra.low = low; ra.iou = iou; ra.stat = rst;
    ra.filled = malloc(sizeof(float) * nfill); ra.cc = malloc(sizeof(int32_t) * ncc);
    ra.col_runs = malloc(sizeof(int64_t) * ncol);
    g_ref->mask_stats(g_ref, &ra);
    int64_t nruns = 0;
    for (int k = 0; k < n_cand; k++) nruns += rst[k].n_runs;
    uint32_t *rruns = malloc(sizeof(uint32_t) * (size_t)(nruns + 1)), *gruns = malloc(sizeof(uint32_t) * (size_t)(nruns + 1));
    g_ref->mask_runs(g_ref, &ra, 0, n_cand, rruns);
    da.low = be_bytes(be, low, sizeof(float) * nl);
    da.iou = be_bytes(be, iou, sizeof(float) * c->B * 4);
    da.stat = be_bytes(be, NULL, sizeof *gst * n_cand);
    da.filled = be_bytes(be, NULL, sizeof(float) * nfill);
    da.cc = be_bytes(be, NULL, sizeof(int32_t) * ncc);
    da.col_runs = be_bytes(be, NULL, sizeof(int64_t) * ncol);
    uint32_t *druns = be_bytes(be, NULL, sizeof(uint32_t) * (size_t)(nruns + 1));
    char err[512];
    if (!da.low || !da.iou || !da.stat || !da.filled || !da.cc || !da.col_runs || !druns) {
        fail_case(be, "mask_stats", "allocation failed", "%s", c->name);
    } else {
        /* the runs in two calls, split after the first kept candidate */
        be->ops->mask_stats(be->ops, &da);
        int split = 0;
        while (split < n_cand && rst[split].passed != 3) split++;
        split = split < n_cand ? split + 1 : n_cand;
        int64_t first = 0;
        for (int k = 0; k < split; k++) first += rst[k].n_runs;
        be->ops->mask_runs(be->ops, &da, 0, split, druns);
        be->ops->mask_runs(be->ops, &da, split, n_cand, druns + first);
        if (be_sync(be, err)) fail_case(be, "mask_stats", err, "%s", c->name);
        else {
            be_back(be, gst, da.stat, sizeof *gst * n_cand);
            be_back(be, gruns, druns, sizeof(uint32_t) * (size_t)nruns);
            post_compare(be, c, gst, rst, gruns, rruns, nruns, n_cand);
        }
        PERF(be, "mask_stats + mask_runs", 0, 4.0 * nl, (be->ops->mask_stats(be->ops, &da),
             be->ops->mask_runs(be->ops, &da, 0, n_cand, druns)));
    }
    be_free(be, (void *)da.low); be_free(be, (void *)da.iou); be_free(be, da.stat); be_free(be, da.filled);
    be_free(be, da.cc); be_free(be, da.col_runs); be_free(be, druns);
    free(low); free(iou); free(rst); free(gst); free(ra.filled); free(ra.cc); free(ra.col_runs);
    free(rruns); free(gruns);
}

/* On the 16-bit instances as the model runs them: in an exactly-fp32 phase (pixels,
 * taps and logits go up as they are, preprocess writes fp32: compared exactly), then back
 * to 16 bits. */
static void test_pipeline(const backend *be) {
    backend fp = *be;
    fp.prec = 0;
    if (be->prec) be->ops->activation_precision(be->ops, -1);
    for (size_t i = 0; i < sizeof pre_cases / sizeof pre_cases[0]; i++)
        if (want(&fp, "preprocess", pre_cases[i].name, pre_cases[i].sz, 0)) run_preprocess(&fp, &pre_cases[i]);
    for (size_t i = 0; i < sizeof post_cases / sizeof post_cases[0]; i++)
        if (want(&fp, "mask_stats", post_cases[i].name, post_cases[i].sz, 0)) run_mask_post(&fp, &post_cases[i]);
    if (be->prec) be->ops->activation_precision(be->ops, 1);
    ((backend *)be)->skipped += fp.skipped - be->skipped;
    ((backend *)be)->ran += fp.ran - be->ran;
}

/* ------------------------------------------------------------------ backend-specific checks */

/* A cpu_fast instance with kernel table isa, set to precision prec (cpu_fast_bf16); NULL
 * when either fails. */
static samc_ops *cpu_fast_instance(int n_threads, const char *isa, int prec) {
    samc_ops *o = samc_ops_cpu_fast_create_isa(n_threads, isa);
    char err[512];
    if (o && prec && o->set_precision(o, (samc_ops_precision)prec, NULL, 0, err) != 0) {
        samc_ops_cpu_fast_destroy(o);
        return NULL;
    }
    return o;
}

/* cpu_fast: the same inputs through instances with 1, 2 and 7 threads, twice each, give
 * bit-identical outputs (cpu_fast_bf16: its GEMMs on AMX). */
static void test_determinism(const backend *be) {
    if (!be->detail || be->is_cuda || !want(be, "determinism", "1, 2, 7 threads", SZ_SAM, 0)) return;
    const int nt[3] = { 1, 2, 7 };
    /* big enough that every op splits into many tasks at 2 and 7 threads */
    int M = quick() ? 600 : 2000, N = 300, K = 200, B = 2, H = 3, T = quick() ? 300 : 700, hd = 40, D = H * hd;
    int Cin = 3, S = 128, Cout = 24;
    float *x = rand_buf((size_t)M * K, 1.0f), *w = rand_buf((size_t)N * K, 1.0f), *bias = rand_buf((size_t)N, 1.0f);
    float *q = rand_buf((size_t)B * T * D, 2.0f), *k = rand_buf((size_t)B * T * D, 1.0f), *v = rand_buf((size_t)B * T * D, 1.0f);
    float *img = rand_buf((size_t)Cin * S * S, 1.0f), *cw = rand_buf((size_t)Cout * Cin * 49, 1.0f);
    float *ln = rand_buf((size_t)M * N, 1.0f), *k7 = rand_buf((size_t)B * 7 * D, 1.0f), *v7 = rand_buf((size_t)B * 7 * D, 1.0f);
    size_t outn = (size_t)M * N + (size_t)B * T * D * 2 + (size_t)Cout * (S / 4) * (S / 4) * 2 + (size_t)M * N * 2;
    float *first = NULL;
    for (int ti = 0; ti < 3; ti++)
        for (int rep = 0; rep < 2; rep++) {
            samc_ops *o = cpu_fast_instance(nt[ti], be->detail, be->prec);
            if (!o) { fail_case(be, "determinism", "cannot create cpu_fast", "%d threads", nt[ti]); continue; }
            float *out = zero_buf(outn), *p = out;
            o->linear(o, x, w, bias, p, M, N, K);
            p += (size_t)M * N;
            samc_attention_args a = { .batch = B, .heads = H, .n_q = T, .n_kv = T, .head_dim = hd, .scale = 0.158f,
                                      .q = q, .q_sb = (ptrdiff_t)T * D, .q_sh = hd, .q_st = D,
                                      .k = k, .k_sb = (ptrdiff_t)T * D, .k_sh = hd, .k_st = D,
                                      .v = v, .v_sb = (ptrdiff_t)T * D, .v_sh = hd, .v_st = D,
                                      .out = p, .o_sb = (ptrdiff_t)T * D, .o_sh = hd, .o_st = D };
            o->attention(o, &a);
            p += (size_t)B * T * D;
            a.n_kv = 7; a.k = k7; a.v = v7; a.k_sb = a.v_sb = (ptrdiff_t)7 * D; a.out = p; /* few keys */
            o->attention(o, &a);
            p += (size_t)B * T * D;
            o->conv2d(o, img, cw, bias, p, Cin, S, S, Cout, 7, 7, 4, 3);
            o->conv_transpose2x2(o, p, cw, bias, p + (size_t)Cout * (S / 4) * (S / 4), Cout, S / 8, S / 8, 12);
            p += (size_t)Cout * (S / 4) * (S / 4) * 2;
            memcpy(p, ln, (size_t)M * N * sizeof(float));
            o->gelu(o, p, (size_t)M * N);
            o->layer_norm(o, ln, bias, bias, p + (size_t)M * N, M, N, 1e-6f);
            o->layer_norm2d(o, p, x, x, p, N, M, 1e-6f);
            if (!first) first = out;
            else {
                compare(be, out, first, outn, 0, 0, "determinism", "%d threads, run %d, vs 1 thread", nt[ti], rep);
                free(out);
            }
            samc_ops_cpu_fast_destroy(o);
        }
    free(first); free(x); free(w); free(bias); free(q); free(k); free(v); free(img); free(cw); free(ln);
    free(k7); free(v7);
}

/* ------------------------------------------------------------------ SAM3's ops */

/* The ops SAM3's image model added (kernels/ops.h): attention with an additive bias, the
 * ViT's axial RoPE, GroupNorm, roi_align, grid_sample and the decoder's box bias. Inputs
 * are uploaded, the op runs on the backend, the whole output is compared with cpu_ref.
 * cpu_fast runs the reference arithmetic for all but attention_biased (bit for bit);
 * cuda within a few roundings. */

typedef struct {
    const char *name;
    int sz, batch, heads, n_q, n_kv, hd;
    int kind; /* 0: [B*heads, Q, K] bias; 1: key padding row per batch; 2: causal [Q, K] */
} biased_case;

static const biased_case biased_cases[] = {
    { "odd 3 x 5 heads, 13 x 19, hd 7", SZ_ODD, 3, 5, 13, 19, 7, 0 },
    { "key padding over chunks 2 x 37 x 700", SZ_ODD, 2, 3, 37, 700, 24, 1 },
    { "micro decoder image cross-attention", SZ_SMALL, 1, 2, 21, 324, 16, 0 },
    { "text causal 32 x 32, hd 64", SZ_SMALL, 1, 16, 32, 32, 64, 2 },
    { "decoder image cross-attention 201 x 5184", SZ_SAM, 1, 8, 201, 5184, 32, 0 },
    { "prompt key padding 5184 x 33", SZ_SAM, 1, 8, 5184, 33, 32, 1 },
};

/* The bias of case c: random (kind 0), or 0 / -inf masks that keep at least one key. */
static float *biased_bias(const biased_case *c, samc_attention_bias *b, size_t *n) {
    float *bb;
    if (c->kind == 0) {
        *n = (size_t)c->batch * c->heads * c->n_q * c->n_kv;
        bb = rand_buf(*n, 2.0f);
        *b = (samc_attention_bias){ NULL, (ptrdiff_t)c->heads * c->n_q * c->n_kv, (ptrdiff_t)c->n_q * c->n_kv, c->n_kv };
    } else if (c->kind == 1) { /* masked keys everywhere, whole leading chunks of 256 too
                                * where there are more keys than that */
        *n = (size_t)c->batch * c->n_kv;
        bb = zero_buf(*n);
        for (int i = 0; i < c->batch; i++)
            for (int j = 0; j < c->n_kv; j++)
                if ((c->n_kv > 300 && j < 300 && j != 9) || j % 3 == 1) bb[(size_t)i * c->n_kv + j] = -INFINITY;
        *b = (samc_attention_bias){ NULL, c->n_kv, 0, 0 };
    } else {
        *n = (size_t)c->n_q * c->n_kv;
        bb = zero_buf(*n);
        for (int i = 0; i < c->n_q; i++)
            for (int j = i + 1; j < c->n_kv; j++) bb[(size_t)i * c->n_kv + j] = -INFINITY;
        *b = (samc_attention_bias){ NULL, 0, 0, c->n_kv };
    }
    return bb;
}

static void run_attention_biased(const backend *be, const biased_case *c) {
    int D = c->heads * c->hd;
    size_t nq = (size_t)c->batch * c->n_q * D, nk = (size_t)c->batch * c->n_kv * D, nb;
    samc_attention_bias bias, dbias;
    float *q = rand_buf(nq, 1.0f), *k = rand_buf(nk, 1.0f), *v = rand_buf(nk, 1.0f), *want = nan_host(nq);
    float *bb = biased_bias(c, &bias, &nb);
    float *dq = be_from(be, q, nq), *dk = be_from(be, k, nk), *dv = be_from(be, v, nk), *db = be_from(be, bb, nb);
    float *dout = be_nan(be, nq);
    samc_attention_args a = {
        .batch = c->batch, .heads = c->heads, .n_q = c->n_q, .n_kv = c->n_kv, .head_dim = c->hd,
        .scale = 1.0f / sqrtf((float)c->hd), .q = q, .q_sb = (ptrdiff_t)c->n_q * D, .q_sh = c->hd, .q_st = D,
        .k = k, .k_sb = (ptrdiff_t)c->n_kv * D, .k_sh = c->hd, .k_st = D,
        .v = v, .v_sb = (ptrdiff_t)c->n_kv * D, .v_sh = c->hd, .v_st = D,
        .out = want, .o_sb = (ptrdiff_t)c->n_q * D, .o_sh = c->hd, .o_st = D,
    };
    bias.bias = bb;
    g_ref->attention_biased(g_ref, &a, &bias);
    samc_attention_args d = a;
    d.q = dq, d.k = dk, d.v = dv, d.out = dout;
    dbias = bias;
    dbias.bias = db;
    run_t r;
    /* in the 16-bit phase (the fusion encoder's): inputs rounded above, one rounding of
     * out, and the probabilities' (|v| <= 1) where a kernel multiplies them in 16 bits
     * (cpu_fast_bf16 on AMX), as for attention */
    run_begin(&r, be, 2e-6 + lp(be, 2), (be->is_cuda ? GEMM_RTOL : 2e-4) + lp(be, 2), "attention_biased",
              "%s%s B=%d H=%d nq=%d nkv=%d hd=%d", c->name, be->prec ? " 16-bit" : "", c->batch, c->heads, c->n_q, c->n_kv, c->hd);
    if (!dq || !dk || !dv || !db || !dout) run_fail(&r, "allocation failed");
    else {
        be->ops->attention_biased(be->ops, &d, &dbias);
        if (run_sync(&r)) {
            float *out = be_to_host(be, dout, nq);
            run_cmp(&r, out, want, nq, 0);
            free(out);
        }
    }
    double fl = 4.0 * c->batch * c->heads * (double)c->n_q * c->n_kv * c->hd;
    if (run_end(&r)) PERF(be, r.what, fl, 4.0 * (2.0 * nq + 2.0 * nk + nb), be->ops->attention_biased(be->ops, &d, &dbias));
    be_free(be, dq); be_free(be, dk); be_free(be, dv); be_free(be, db); be_free(be, dout);
    free(q); free(k); free(v); free(bb); free(want);
}

/* rope on the ViT's packed qkv rows [rows, 3C] (q at 0, k at C): in place, windows of
 * `period` rows sharing one table; the v third must stay as it was. */
static void run_rope(const backend *be, const char *name, int sz, int rows, int C, int heads, int period) {
    if (!want(be, "rope", name, sz, 6.0 * rows * 2 * C)) return;
    int hd = C / heads;
    size_t n = (size_t)rows * 3 * C, nt = (size_t)period * hd / 2;
    float *x = rand_buf(n, 1.0f), *ang = rand_buf(nt, 3.0f), *ct = nan_host(nt), *st = nan_host(nt);
    for (size_t i = 0; i < nt; i++) ct[i] = cosf(ang[i]), st[i] = sinf(ang[i]);
    float *dx = be_from(be, x, n), *dct = be_from(be, ct, nt), *dst = be_from(be, st, nt);
    g_ref->rope(g_ref, x, rows, 3 * C, heads, hd, ct, st, period);
    run_t r;
    /* 16 bits (the ViT's qkv in the 16-bit phase): one rounding of each result */
    run_begin(&r, be, be->is_cuda ? 1e-6 : 0, (be->is_cuda ? 1e-5 : 0) + lp(be, 1), "rope",
              "%s rows=%d C=%d heads=%d period=%d", name, rows, C, heads, period);
    if (!dx || !dct || !dst) run_fail(&r, "allocation failed");
    else {
        /* q and k rotated: one call per third, as the model does (rows of ld 3C) */
        be->ops->rope(be->ops, dx, rows, 3 * C, heads, hd, dct, dst, period);
        be->ops->rope(be->ops, dx + C, rows, 3 * C, heads, hd, dct, dst, period);
        g_ref->rope(g_ref, x + C, rows, 3 * C, heads, hd, ct, st, period);
        if (run_sync(&r)) {
            float *out = be_to_host(be, dx, n);
            run_cmp(&r, out, x, n, 0);
            free(out);
        }
    }
    run_end(&r);
    be_free(be, dx); be_free(be, dct); be_free(be, dst);
    free(x); free(ang); free(ct); free(st);
}

static void run_group_norm(const backend *be, const char *name, int sz, int C, int HW, int G) {
    if (!want(be, "group_norm", name, sz, 8.0 * C * HW)) return;
    size_t n = (size_t)C * HW;
    float *x = rand_buf(n, 3.0f), *w = rand_buf((size_t)C, 1.0f), *b = rand_buf((size_t)C, 1.0f), *y = nan_host(n);
    for (size_t i = 0; i < n; i++) x[i] += 5.0f; /* an offset: the variance must not cancel */
    g_ref->group_norm(g_ref, x, w, b, y, C, HW, G, 1e-5f);
    float *dx = be_from(be, x, n), *dw = be_from(be, w, (size_t)C), *db = be_from(be, b, (size_t)C), *dy = be_nan(be, n);
    run_t r;
    run_begin(&r, be, be->is_cuda ? 1e-5 : 1e-6, be->is_cuda ? 1e-5 : 1e-6, "group_norm", "%s C=%d HW=%d groups=%d", name, C,
              HW, G);
    if (!dx || !dw || !db || !dy) run_fail(&r, "allocation failed");
    else {
        be->ops->group_norm(be->ops, dx, dw, db, dy, C, HW, G, 1e-5f);
        be->ops->group_norm(be->ops, dx, dw, db, dx, C, HW, G, 1e-5f); /* in place too */
        if (run_sync(&r)) {
            float *out = be_to_host(be, dy, n), *inplace = be_to_host(be, dx, n);
            run_cmp(&r, out, y, n, 0);
            if (memcmp(out, inplace, n * sizeof(float))) run_fail(&r, "in place differs from out of place");
            free(out); free(inplace);
        }
    }
    if (run_end(&r)) PERF(be, r.what, 8.0 * n, 8.0 * n, be->ops->group_norm(be->ops, dx, dw, db, dy, C, HW, G, 1e-5f));
    be_free(be, dx); be_free(be, dw); be_free(be, db); be_free(be, dy);
    free(x); free(w); free(b); free(y);
}

/* roi_align (boxes inside, across and outside the map) and grid_sample (points at and
 * between pixel centres, on the border and outside) of one random map. */
static void run_roi_grid(const backend *be, const char *name, int sz, int C, int H, int W, int nbox, int P, int npts) {
    size_t nx = (size_t)C * H * W, ny = (size_t)nbox * C * P * P, ns = (size_t)npts * C;
    float *x = rand_buf(nx, 1.0f), *boxes = rand_buf((size_t)nbox * 4, 1.0f), *pts = rand_buf((size_t)npts * 2, 1.2f);
    for (int i = 0; i < nbox; i++) { /* x0 <= x1, y0 <= y1, some past the edges */
        float *bx = boxes + 4 * i, cx = (0.5f + 0.6f * bx[0]) * W, cy = (0.5f + 0.6f * bx[1]) * H;
        float hw = (0.05f + 0.3f * fabsf(bx[2])) * W, hh = (0.05f + 0.3f * fabsf(bx[3])) * H;
        bx[0] = cx - hw, bx[1] = cy - hh, bx[2] = cx + hw, bx[3] = cy + hh;
    }
    if (npts > 1) pts[0] = pts[1] = -1.0f;
    float *yr = nan_host(ny), *sr = nan_host(ns);
    g_ref->roi_align(g_ref, x, boxes, yr, C, H, W, nbox, P);
    g_ref->grid_sample(g_ref, x, pts, sr, C, H, W, npts);
    float *dx = be_from(be, x, nx), *dbox = be_from(be, boxes, (size_t)nbox * 4), *dpts = be_from(be, pts, (size_t)npts * 2);
    float *dy = be_nan(be, ny), *ds = be_nan(be, ns);
    double atol = be->is_cuda ? 1e-6 : 0, rtol = be->is_cuda ? 1e-5 : 0;
    for (int op = 0; op < 2; op++) {
        const char *opname = op ? "grid_sample" : "roi_align";
        if (!want(be, opname, name, sz, op ? 8.0 * ns : 16.0 * ny)) continue;
        run_t r;
        run_begin(&r, be, atol, rtol, opname, op ? "%s C=%d %dx%d points=%d" : "%s C=%d %dx%d boxes=%d", name, C, H, W,
                  op ? npts : nbox);
        if (!dx || !dbox || !dpts || !dy || !ds) run_fail(&r, "allocation failed");
        else {
            if (op) be->ops->grid_sample(be->ops, dx, dpts, ds, C, H, W, npts);
            else be->ops->roi_align(be->ops, dx, dbox, dy, C, H, W, nbox, P);
            if (run_sync(&r)) {
                float *out = be_to_host(be, op ? ds : dy, op ? ns : ny);
                run_cmp(&r, out, op ? sr : yr, op ? ns : ny, 0);
                free(out);
            }
        }
        run_end(&r);
    }
    be_free(be, dx); be_free(be, dbox); be_free(be, dpts); be_free(be, dy); be_free(be, ds);
    free(x); free(boxes); free(pts); free(yr); free(sr);
}

static void run_box_rpb(const backend *be, const char *name, int sz, int Q, int H, int W, int nh, int r0) {
    size_t n = (size_t)nh * (r0 + Q) * H * W, nby = (size_t)Q * H * nh, nbx = (size_t)Q * W * nh;
    if (!want(be, "box_rpb_bias", name, sz, (double)n)) return;
    float *by = rand_buf(nby, 1.0f), *bx = rand_buf(nbx, 1.0f), *y = nan_host(n);
    g_ref->box_rpb_bias(g_ref, by, bx, y, Q, H, W, nh, r0);
    float *dby = be_from(be, by, nby), *dbx = be_from(be, bx, nbx), *dy = be_nan(be, n);
    run_t r;
    run_begin(&r, be, 0, 0, "box_rpb_bias", "%s Q=%d %dx%d heads=%d r0=%d", name, Q, H, W, nh, r0);
    if (!dby || !dbx || !dy) run_fail(&r, "allocation failed");
    else {
        be->ops->box_rpb_bias(be->ops, dby, dbx, dy, Q, H, W, nh, r0);
        if (run_sync(&r)) {
            float *out = be_to_host(be, dy, n);
            run_cmp(&r, out, y, n, 0);
            free(out);
        }
    }
    if (run_end(&r)) PERF(be, r.what, (double)n, 4.0 * n, be->ops->box_rpb_bias(be->ops, dby, dbx, dy, Q, H, W, nh, r0));
    be_free(be, dby); be_free(be, dbx); be_free(be, dy);
    free(by); free(bx); free(y);
}

/* cuda_bf16 / cuda_fp16: the SAM3 ops but rope and attention_biased compute fp32 only and
 * the SAM3 model keeps fp32 activations outside its ViT and fusion encoder in the reduced
 * modes (model/sam3/load.c, vitdet.c, encoder.c). On a fresh instance in the 16-bit
 * phase, a 16-bit input must fail the op with a message naming it (the error sticks, so
 * not on the shared instance). */
static void sam3_lowp_refused(const backend *be) {
    if (!want(be, "group_norm", "16-bit input refused", SZ_ODD, 0)) return;
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    if (!o) { fail_case(be, "group_norm", err, "another backend instance"); return; }
    float h[64], wb[2] = { 1.0f, 0.0f }, *d = o->alloc(o, sizeof h), *y = o->alloc(o, sizeof h);
    float *blk = o->alloc(o, 16 * sizeof(float));
    for (int i = 0; i < 64; i++) h[i] = (float)i;
    int ok = d && y && blk;
    if (ok) o->upload(o, blk, wb, sizeof wb);
    ok = ok && o->set_precision(o, (samc_ops_precision)be->prec, blk, 16, err) == 0;
    if (ok) {
        o->upload(o, d, h, sizeof h); /* the 16-bit phase: stored as 16-bit values */
        o->group_norm(o, d, blk, blk + 1, y, 1, 64, 1, 1e-5f);
        ok = o->sync(o, err) == -1 && strstr(err, "group_norm") && strstr(err, "fp32 only");
    }
    printf("       reported: %s\n", err);
    float got = ok ? 1.0f : 0.0f, one = 1.0f;
    compare(be, &got, &one, 1, 0, 0, "group_norm", "16-bit input refused (the SAM3 ops compute fp32 only)");
    if (d) o->free(o, d);
    if (y) o->free(o, y);
    if (blk) o->free(o, blk);
    samc_ops_cuda_destroy(o);
}

static void test_sam3_ops_in(const backend *be);

static void run_biased_cases(const backend *be) {
    for (size_t i = 0; i < sizeof biased_cases / sizeof biased_cases[0]; i++) {
        const biased_case *c = &biased_cases[i];
        if (want(be, "attention_biased", c->name, c->sz, 4.0 * c->batch * c->heads * c->n_q * c->n_kv * c->hd))
            run_attention_biased(be, c);
    }
}

static void test_sam3_ops(const backend *be) {
    if (!be->ops->attention_biased) return;
    if (!be->prec) {
        test_sam3_ops_in(be);
        return;
    }
    /* as the SAM3 model runs them in bf16 / fp16: fp32 activations (exact uploads, fp32
     * results), then back to the 16-bit phase for the next cases */
    if (be->is_cuda) sam3_lowp_refused(be);
    backend fp = *be;
    fp.prec = 0;
    be->ops->activation_precision(be->ops, 0);
    test_sam3_ops_in(&fp);
    be->ops->activation_precision(be->ops, 1);
    ((backend *)be)->ran += fp.ran - be->ran;
    /* rope and attention_biased also in the 16-bit phase: the ViT runs there
     * (model/sam3/vitdet.c), the fusion encoder too (encoder.c) */
    run_biased_cases(be);
    run_rope(be, "odd 16-bit", SZ_ODD, 10, 12, 3, 4);
    run_rope(be, "micro vit 18x18 16-bit", SZ_SMALL, 324, 64, 2, 36);
}

static void test_sam3_ops_in(const backend *be) {
    run_biased_cases(be);
    run_rope(be, "odd", SZ_ODD, 10, 12, 3, 4);
    run_rope(be, "micro vit 18x18", SZ_SMALL, 324, 64, 2, 36);
    run_rope(be, "vit 24x24 windows x2", SZ_SAM, 576 * 2, 1024, 16, 576);
    run_group_norm(be, "odd", SZ_ODD, 12, 7, 3);
    run_group_norm(be, "micro seg head", SZ_SMALL, 32, 72 * 72, 8);
    run_group_norm(be, "seg head 144x144", SZ_SAM, 256, 144 * 144, 8);
    run_roi_grid(be, "odd", SZ_ODD, 3, 5, 7, 3, 7, 5);
    run_roi_grid(be, "micro", SZ_SMALL, 32, 18, 18, 4, 7, 20);
    run_roi_grid(be, "exemplars 72x72", SZ_SAM, 256, 72, 72, 5, 7, 200);
    run_box_rpb(be, "odd", SZ_ODD, 3, 4, 5, 2, 1);
    run_box_rpb(be, "micro", SZ_SMALL, 20, 18, 18, 2, 1);
    run_box_rpb(be, "decoder 200 queries 72x72", SZ_SAM, 200, 72, 72, 8, 1);
}

/* cuda: an impossible allocation returns NULL and leaves the backend usable. */
static void test_memory(const backend *be) {
    if (!be->is_cuda || !want(be, "memory", "alloc 2^50 bytes", SZ_ODD, 0)) return;
    void *huge = be->ops->alloc(be->ops, (size_t)1 << 50);
    be->ops->free(be->ops, NULL);
    float one = 1.0f, *d = be_from(be, &one, 1), *back = d ? be_to_host(be, d, 1) : NULL;
    char err[512];
    int ok = !huge && d && back && *back == 1.0f && be_sync(be, err) == 0 && !strcmp(be->ops->name, "cuda") &&
             !be->ops->host_memory;
    float got = ok ? 1.0f : 0.0f;
    compare(be, &got, &one, 1, 0, 0, "memory", "alloc 2^50 bytes fails, the backend still works");
    if (huge) be->ops->free(be->ops, huge);
    be_free(be, d);
    free(back);
}

/* cuda, last: a fault inside an op is reported by sync, naming the op when
 * SAMC_CUDA_SYNC=1, and it stays; nothing exits. It poisons the CUDA context for the rest
 * of the process. */
static void test_error_reporting(const backend *be) {
    if (!be->is_cuda || !want(be, "error_reporting", "relu on a bogus pointer", SZ_ODD, 0)) return;
    setenv("SAMC_CUDA_SYNC", "1", 1);
    char err[512] = "", err2[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    unsetenv("SAMC_CUDA_SYNC");
    if (!o) { fail_case(be, "error_reporting", err, "a second backend instance"); return; }
    int clean = o->sync(o, err) == 0;
    o->relu(o, (float *)(uintptr_t)256, 1 << 20); /* an address no allocation has */
    int failed = o->sync(o, err) == -1, stays = o->sync(o, err2) == -1;
    printf("       reported: %s\n", err);
    float got = clean && failed && stays && strstr(err, "relu") ? 1.0f : 0.0f, one = 1.0f;
    compare(be, &got, &one, 1, 0, 0, "error_reporting", "relu on a bogus pointer: sync fails naming relu, and again");
    samc_ops_cuda_destroy(o);
}

/* The host rounding the bf16 / fp16 checks compare with (tests/test_lowp.h), on values
 * whose 16-bit forms are known. */
static void test_lowp_rounding(void) {
    if (!in_list(g_opt.ops, "lowp_rounding") || g_opt.list) return;
    const struct { float got, want; } c[] = {
        { test_round_bf16(1.0f), 1.0f }, { test_round_bf16(1.0f + 1.0f / 256), 1.0f }, /* tie: to even (down) */
        { test_round_bf16(1.0f + 3.0f / 256), 1.0f + 4.0f / 256 },                    /* tie: to even (up) */
        { test_round_bf16(1.0f + 1.5f / 256), 1.0f + 2.0f / 256 },
        { test_round_bf16(-3.0e38f), ldexpf(-226.0f, 120) },                           /* 8 bits: 225.69 * 2^120 */
        { test_round_fp16(1.0f + 1.0f / 2048), 1.0f }, { test_round_fp16(1.0f + 3.0f / 2048), 1.0f + 4.0f / 2048 },
        { test_round_fp16(70000.0f), 65504.0f }, { test_round_fp16(-1e9f), -65504.0f }, /* clamped */
        { test_round_fp16(65519.0f), 65504.0f }, { test_round_fp16(3.0f * 0x1p-25f), 0x1p-23f }, /* subnormal */
        { test_round_fp16(0x1p-26f), 0.0f }, { test_round_fp16(1e-3f), 0.0010004044f },
    };
    float got[16], ref[16];
    size_t n = sizeof c / sizeof c[0];
    for (size_t i = 0; i < n; i++) got[i] = c[i].got, ref[i] = c[i].want;
    static backend host = { "host", NULL, NULL, 0, 0, 0, 0, 0 };
    compare(&host, got, ref, n, 0, 0, "lowp_rounding", "tests/test_lowp.h on known values");
}

/* ------------------------------------------------------------------ avx512 vs avx2 */

/* The AVX-512 table's GEMM tile is 12 x 32 where AVX2's is 6 x 16, but every element is
 * the same chain of FMAs; its softmax pieces and GELU run AVX2's polynomials and sum
 * orders 16 lanes wide; the other kernels are AVX2's own: the two tables must agree bit
 * for bit on every op. Compared here on the GEMM cases (odd edges included),
 * the attention cases, the biased ones and SAM3's ViT shapes (rows cut to keep it quick:
 * bits do not depend on M). On a CPU without AVX-512 one SKIP line. */
static backend g_isa_pair = { "avx512_vs_avx2", NULL, NULL, 0, 0, 0, 0, 0 };

static void isa_gemm(samc_ops *x5, samc_ops *x2, const char *name, int is_matmul, int M, int N, int K, int bias) {
    size_t yn = (size_t)M * N;
    float *p = rand_buf((size_t)M * K, 1.0f), *q = rand_buf((size_t)N * K, 1.0f);
    float *b = bias ? rand_buf((size_t)(is_matmul ? M : N), 1.0f) : NULL;
    float *y5 = nan_host(yn), *y2 = nan_host(yn);
    gemm_call(x5, is_matmul, p, q, b, y5, M, N, K);
    gemm_call(x2, is_matmul, p, q, b, y2, M, N, K);
    compare(&g_isa_pair, y5, y2, yn, 0, 0, is_matmul ? "matmul" : "linear", "%s M=%d N=%d K=%d%s", name, M, N, K,
            bias ? " bias" : "");
    free(p); free(q); free(b); free(y5); free(y2);
}

static void isa_attention(samc_ops *x5, samc_ops *x2, const att_case *c) {
    int D = c->heads * c->hd;
    size_t qn = c->layout == PACKED_QKV ? (size_t)c->batch * c->n_kv * 3 * D : (size_t)c->batch * c->n_q * D;
    size_t kn = c->layout == PACKED_QKV ? 0 : (size_t)c->batch * c->n_kv * D, on = (size_t)c->batch * c->n_q * D;
    float *q = rand_buf(qn, c->qscale), *k = rand_buf(kn, 1.0f), *v = rand_buf(kn, 1.0f);
    float *o5 = nan_host(on), *o2 = nan_host(on);
    samc_attention_args a;
    att_views(c, &a, q, q, k, v, o5);
    x5->attention(x5, &a);
    a.out = o2;
    x2->attention(x2, &a);
    compare(&g_isa_pair, o5, o2, on, 0, 0, "attention", "%s B=%d H=%d nq=%d nkv=%d hd=%d", c->name, c->batch,
            c->heads, c->n_q, c->n_kv, c->hd);
    free(q); free(k); free(v); free(o5); free(o2);
}

static void isa_biased(samc_ops *x5, samc_ops *x2, const biased_case *c) {
    int D = c->heads * c->hd;
    size_t nq = (size_t)c->batch * c->n_q * D, nk = (size_t)c->batch * c->n_kv * D, nb;
    samc_attention_bias bias;
    float *q = rand_buf(nq, 1.0f), *k = rand_buf(nk, 1.0f), *v = rand_buf(nk, 1.0f);
    float *o5 = nan_host(nq), *o2 = nan_host(nq), *bb = biased_bias(c, &bias, &nb);
    bias.bias = bb;
    samc_attention_args a = {
        .batch = c->batch, .heads = c->heads, .n_q = c->n_q, .n_kv = c->n_kv, .head_dim = c->hd,
        .scale = 1.0f / sqrtf((float)c->hd), .q = q, .q_sb = (ptrdiff_t)c->n_q * D, .q_sh = c->hd, .q_st = D,
        .k = k, .k_sb = (ptrdiff_t)c->n_kv * D, .k_sh = c->hd, .k_st = D,
        .v = v, .v_sb = (ptrdiff_t)c->n_kv * D, .v_sh = c->hd, .v_st = D,
        .out = o5, .o_sb = (ptrdiff_t)c->n_q * D, .o_sh = c->hd, .o_st = D,
    };
    x5->attention_biased(x5, &a, &bias);
    a.out = o2;
    x2->attention_biased(x2, &a, &bias);
    compare(&g_isa_pair, o5, o2, nq, 0, 0, "attention_biased", "%s B=%d H=%d nq=%d nkv=%d hd=%d", c->name,
            c->batch, c->heads, c->n_q, c->n_kv, c->hd);
    free(q); free(k); free(v); free(o5); free(o2); free(bb);
}

/* GELU: the AVX-512 table evaluates the AVX2 table's erf polynomial 16 lanes at a time;
 * every length 1..40 (the masked tails) and a long run over a wide range. */
static void isa_gelu(samc_ops *x5, samc_ops *x2) {
    size_t n_long = 100003;
    float *x = rand_buf(n_long, 7.0f), *y5 = malloc(n_long * sizeof(float)), *y2 = malloc(n_long * sizeof(float));
    if (!y5 || !y2) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t n = 1; n <= 41; n++) {
        size_t len = n == 41 ? n_long : n;
        memcpy(y5, x, len * sizeof(float));
        memcpy(y2, x, len * sizeof(float));
        x5->gelu(x5, y5, len);
        x2->gelu(x2, y2, len);
        compare(&g_isa_pair, y5, y2, len, 0, 0, "gelu", "n=%zu", len);
    }
    free(x); free(y5); free(y2);
}

static void test_isa_bits(void) {
    if (!in_list(g_opt.ops, "isa_bits") || (g_opt.backends && !in_list(g_opt.backends, "cpu_fast"))) return;
    samc_ops *x5 = samc_ops_cpu_fast_create_isa(2, "avx512"), *x2 = samc_ops_cpu_fast_create_isa(2, "avx2+fma");
    if (!x5 || !x2) {
        printf("SKIP   isa_bits: avx512 vs avx2 not compared: this CPU lacks %s\n",
               !x2 ? "AVX2/FMA" : "AVX-512 (avx512f, avx512bw, avx512dq, avx512vl)");
        g_skipped++;
        samc_ops_cpu_fast_destroy(x5);
        samc_ops_cpu_fast_destroy(x2);
        return;
    }
    int big = !quick();
    for (size_t i = 0; i < sizeof linear_cases / sizeof linear_cases[0]; i++) {
        const mnk *c = &linear_cases[i];
        if (c->sz != SZ_BIG || big) isa_gemm(x5, x2, c->name, 0, c->M, c->N, c->K, c->bias);
    }
    for (size_t i = 0; i < sizeof matmul_cases / sizeof matmul_cases[0]; i++) {
        const mnk *c = &matmul_cases[i];
        if (c->sz != SZ_BIG || big) isa_gemm(x5, x2, c->name, 1, c->M, c->N, c->K, c->bias);
    }
    /* SAM3's ViT (dim 1024, MLP 4736) and its decoder, 577 of the 5184 token rows */
    isa_gemm(x5, x2, "sam3 vit qkv", 0, 577, 3072, 1024, 1);
    isa_gemm(x5, x2, "sam3 vit proj", 0, 577, 1024, 1024, 1);
    isa_gemm(x5, x2, "sam3 vit mlp.0", 0, 577, 4736, 1024, 1);
    isa_gemm(x5, x2, "sam3 vit mlp.1", 0, 577, 1024, 4736, 1);
    isa_gemm(x5, x2, "sam3 decoder ffn", 0, 201, 2048, 256, 1);
    isa_gemm(x5, x2, "sam3 text fc1 (32 rows: transposed)", 0, 32, 4096, 1024, 1);
    isa_gemm(x5, x2, "sam3 text fc2 (32 rows: transposed)", 0, 32, 1024, 4096, 1);
    isa_gemm(x5, x2, "sam3 neck 1x1", 1, 256, 5184, 1024, 1);
    for (size_t i = 0; i < sizeof att_cases / sizeof att_cases[0]; i++)
        if (att_cases[i].sz != SZ_BIG || big) isa_attention(x5, x2, &att_cases[i]);
    static const att_case sam3_att[] = {
        { "sam3 vit 24x24 window", SZ_SAM, 2, 16, 576, 576, 64, PACKED_QKV, 1.0f },
        { "sam3 vit global (rows cut)", SZ_SAM, 1, 16, 301, 5184, 64, SEPARATE, 1.0f },
    };
    for (size_t i = 0; i < sizeof sam3_att / sizeof sam3_att[0]; i++) isa_attention(x5, x2, &sam3_att[i]);
    for (size_t i = 0; i < sizeof biased_cases / sizeof biased_cases[0]; i++) isa_biased(x5, x2, &biased_cases[i]);
    isa_gelu(x5, x2);
    samc_ops_cpu_fast_destroy(x5);
    samc_ops_cpu_fast_destroy(x2);
}

/* ------------------------------------------------------------------ few rows exactly */

/* A linear layer on at most 64 rows runs transposed (cpu_fast.c gemm_small_m: the
 * weights read in place): each of its rows must be, bit for bit, the row the usual path
 * gives when the same rows are the first of a taller input (130 rows), for every kernel
 * table this CPU runs, with bias / activation / residual and with 16-bit weights. */
static backend g_small_m = { "cpu_fast", NULL, NULL, 0, 0, 0, 0, 0 };

static void small_m_case(samc_ops *o, const char *isa, int M, int N, int K, samc_act act, int res, int w16) {
    const int MT = 130;
    float *x = rand_buf((size_t)MT * K, 1.0f), *w = rand_buf((size_t)N * K, 1.0f), *b = rand_buf(N, 1.0f);
    float *r = res ? rand_buf((size_t)MT * N, 1.0f) : NULL;
    float *yt = nan_host((size_t)MT * N), *ys = nan_host((size_t)M * N), *standin = NULL;
    uint16_t *bits = NULL;
    const float *wq = w;
    if (w16) {
        bits = malloc((size_t)N * K * sizeof(uint16_t));
        standin = samc_w16_reserve((size_t)N * K);
        if (!bits || !standin) { fprintf(stderr, "out of memory\n"); exit(2); }
        for (size_t i = 0; i < (size_t)N * K; i++) {
            uint32_t u;
            memcpy(&u, &w[i], 4);
            bits[i] = (uint16_t)(u >> 16);
        }
        if (samc_w16_register(standin, (size_t)N * K, bits, SAMC_W16_BF16) != 0) { fprintf(stderr, "w16 register failed\n"); exit(2); }
        wq = standin;
    }
    o->linear_act(o, x, wq, b, yt, MT, N, K, act, r);
    o->linear_act(o, x, wq, b, ys, M, N, K, act, r);
    compare(&g_small_m, ys, yt, (size_t)M * N, 0, 0, "linear_act", "%s M=%d N=%d K=%d%s%s%s: rows of M=%d", isa, M, N, K,
            act == SAMC_ACT_GELU ? " gelu" : act == SAMC_ACT_RELU ? " relu" : "", res ? " residual" : "",
            w16 ? " bf16 weights" : "", MT);
    if (standin) samc_w16_release(standin, (size_t)N * K);
    free(x); free(w); free(b); free(r); free(yt); free(ys); free(bits);
}

static void test_small_m_exact(void) {
    if (!in_list(g_opt.ops, "small_m_exact") || (g_opt.backends && !in_list(g_opt.backends, "cpu_fast"))) return;
    static const char *isas[] = { "avx512", "avx2+fma", "scalar" };
    int big = !quick();
    for (int t = 0; t < 3; t++) {
        samc_ops *o = samc_ops_cpu_fast_create_isa(2, isas[t]);
        if (!o) {
            printf("SKIP   small_m_exact %s: this CPU cannot run that kernel table\n", isas[t]);
            g_skipped++;
            continue;
        }
        small_m_case(o, isas[t], 1, 256, 64, SAMC_ACT_NONE, 0, 0);      /* the smallest that goes transposed */
        small_m_case(o, isas[t], 7, 300, 70, SAMC_ACT_RELU, 1, 0);      /* odd: partial tiles everywhere */
        small_m_case(o, isas[t], 64, 333, 300, SAMC_ACT_GELU, 0, 0);    /* the most rows; two K blocks */
        small_m_case(o, isas[t], 13, 1030, 130, SAMC_ACT_NONE, 1, 1);   /* 16-bit weights */
        /* SAM3's text encoder: 32 tokens, width 1024, MLP 4096 (N cut when quick) */
        small_m_case(o, isas[t], 32, big ? 4096 : 1100, 1024, SAMC_ACT_GELU, 0, 0);
        small_m_case(o, isas[t], 32, big ? 1024 : 300, 4096, SAMC_ACT_NONE, 1, 0);
        samc_ops_cpu_fast_destroy(o);
    }
}

/* ------------------------------------------------------------------ cpu_fast_bf16 exactly */

/* The generic cases on cpu_fast_bf16 allow a 16-bit rounding of the output, so the fp32
 * kernels would pass them too. Here each GEMM path of the AMX driver (linear's B_COLS,
 * matmul's B_ROWS, conv2d's im2col, conv_transpose2x2's transposed A, 16-bit weights,
 * M and N edges, K tails, two K blocks, bias per column / per row) must equal the
 * reference on bf16-rounded inputs within fp32 tolerance and be far from it on the
 * unrounded ones; activation_precision(0) must give the fp32 instance's bits. */
static backend g_bf16_exact = { "cpu_fast_bf16", NULL, NULL, 0, 0, 0, 0, 0 };

/* got vs the reference of rounded inputs (ref_r: fp32 tolerance) and of the fp32 inputs
 * (ref_f: must differ by more than 10x that tolerance somewhere, when K >= 64). */
static void bf16_verdicts(const float *got, const float *ref_r, const float *ref_f, size_t n, int K, const char *op,
                          const char *what) {
    compare(&g_bf16_exact, got, ref_r, n, gemm_atol(K), GEMM_RTOL, op, "%s vs bf16-rounded inputs", what);
    if (K < 64) return;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref_f[i]) / (gemm_atol(K) + GEMM_RTOL * fabs((double)ref_f[i]));
        if (e > worst) worst = e;
    }
    run_t r;
    run_begin(&r, &g_bf16_exact, 0, 0, op, "%s rounds: off the fp32 inputs' result by %.0fx fp32 tolerance", what,
              worst);
    r.n = n;
    r.max_err = 0.0;
    if (!(worst > 10.0)) run_fail(&r, "the result is the fp32 one (%.2fx tolerance): the bf16 path did not run", worst);
    run_end(&r);
}

static void bf16_gemm_case(samc_ops *o, int is_matmul, int M, int N, int K, int bias, int w16) {
    size_t pn = (size_t)M * K, qn = (size_t)N * K, yn = (size_t)M * N;
    float *p = rand_buf(pn, 1.0f), *q = rand_buf(qn, 1.0f), *b = bias ? rand_buf(is_matmul ? M : N, 1.0f) : NULL;
    float *pr = malloc(pn * sizeof(float)), *qr = malloc(qn * sizeof(float));
    float *y = nan_host(yn), *yr = nan_host(yn), *yf = nan_host(yn), *standin = NULL;
    uint16_t *bits = NULL;
    if (!pr || !qr) { fprintf(stderr, "out of memory\n"); exit(2); }
    /* linear's weight (q) stored in bf16 behind a stand-in: what the model's bf16 files do */
    const float *wq = q;
    if (w16 && !is_matmul) {
        test_round_lowp_buf(q, q, qn, SAMC_OPS_BF16);
        bits = malloc(qn * sizeof(uint16_t));
        standin = samc_w16_reserve(qn);
        if (!bits || !standin) { fprintf(stderr, "out of memory\n"); exit(2); }
        for (size_t i = 0; i < qn; i++) {
            uint32_t u;
            memcpy(&u, &q[i], 4);
            bits[i] = (uint16_t)(u >> 16);
        }
        if (samc_w16_register(standin, qn, bits, SAMC_W16_BF16) != 0) { fprintf(stderr, "w16 register failed\n"); exit(2); }
        wq = standin;
    }
    test_round_lowp_buf(pr, p, pn, SAMC_OPS_BF16);
    test_round_lowp_buf(qr, q, qn, SAMC_OPS_BF16);
    gemm_call(o, is_matmul, p, wq, b, y, M, N, K);
    gemm_call(g_ref, is_matmul, pr, qr, b, yr, M, N, K);
    gemm_call(g_ref, is_matmul, p, q, b, yf, M, N, K);
    char what[160];
    snprintf(what, sizeof what, "M=%d N=%d K=%d%s%s", M, N, K, bias ? " bias" : "", wq != q ? " bf16 weights" : "");
    bf16_verdicts(y, yr, yf, yn, K, is_matmul ? "matmul" : "linear", what);
    if (standin) samc_w16_release(standin, qn);
    free(p); free(q); free(b); free(pr); free(qr); free(y); free(yr); free(yf); free(bits);
}

static void bf16_conv_case(samc_ops *o, int transposed, int Cin, int H, int W, int Cout, int k, int stride, int pad) {
    int Ho = transposed ? 2 * H : (H + 2 * pad - k) / stride + 1, Wo = transposed ? 2 * W : (W + 2 * pad - k) / stride + 1;
    size_t xn = (size_t)Cin * H * W, wn = (size_t)Cin * Cout * (transposed ? 4 : k * k), yn = (size_t)Cout * Ho * Wo;
    float *x = rand_buf(xn, 1.0f), *w = rand_buf(wn, 1.0f), *b = rand_buf((size_t)Cout, 1.0f);
    float *xr = malloc(xn * sizeof(float)), *wr = malloc(wn * sizeof(float));
    float *y = nan_host(yn), *yr = nan_host(yn), *yf = nan_host(yn);
    if (!xr || !wr) { fprintf(stderr, "out of memory\n"); exit(2); }
    test_round_lowp_buf(xr, x, xn, SAMC_OPS_BF16);
    test_round_lowp_buf(wr, w, wn, SAMC_OPS_BF16);
    char what[160];
    if (transposed) {
        o->conv_transpose2x2(o, x, w, b, y, Cin, H, W, Cout);
        g_ref->conv_transpose2x2(g_ref, xr, wr, b, yr, Cin, H, W, Cout);
        g_ref->conv_transpose2x2(g_ref, x, w, b, yf, Cin, H, W, Cout);
        snprintf(what, sizeof what, "Cin=%d %dx%d Cout=%d", Cin, H, W, Cout);
    } else {
        o->conv2d(o, x, w, b, y, Cin, H, W, Cout, k, k, stride, pad);
        g_ref->conv2d(g_ref, xr, wr, b, yr, Cin, H, W, Cout, k, k, stride, pad);
        g_ref->conv2d(g_ref, x, w, b, yf, Cin, H, W, Cout, k, k, stride, pad);
        snprintf(what, sizeof what, "Cin=%d %dx%d Cout=%d k=%d s=%d p=%d", Cin, H, W, Cout, k, stride, pad);
    }
    bf16_verdicts(y, yr, yf, yn, transposed ? Cin : Cin * k * k, transposed ? "conv_transpose2x2" : "conv2d", what);
    free(x); free(w); free(b); free(xr); free(wr); free(y); free(yr); free(yf);
}

/* attention in the bf16 phase: within the 16-bit tolerance of the reference on rounded
 * q, k, v (the probabilities are rounded too, so not fp32-close), and not the fp32
 * instance's result (f): the AMX path ran. */
static void bf16_attention_case(samc_ops *o, samc_ops *f, int heads, int n_q, int n_kv, int hd) {
    int D = heads * hd;
    size_t nq = (size_t)n_q * D, nk = (size_t)n_kv * D;
    float *q = rand_buf(nq, 1.0f), *k = rand_buf(nk, 1.0f), *v = rand_buf(nk, 1.0f);
    float *qr = malloc(nq * sizeof(float)), *kr = malloc(nk * sizeof(float)), *vr = malloc(nk * sizeof(float));
    float *y = nan_host(nq), *yr = nan_host(nq), *yf = nan_host(nq);
    if (!qr || !kr || !vr) { fprintf(stderr, "out of memory\n"); exit(2); }
    test_round_lowp_buf(qr, q, nq, SAMC_OPS_BF16);
    test_round_lowp_buf(kr, k, nk, SAMC_OPS_BF16);
    test_round_lowp_buf(vr, v, nk, SAMC_OPS_BF16);
    samc_attention_args a = {
        .batch = 1, .heads = heads, .n_q = n_q, .n_kv = n_kv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
        .q = q, .q_sb = (ptrdiff_t)nq, .q_sh = hd, .q_st = D, .k = k, .k_sb = (ptrdiff_t)nk, .k_sh = hd, .k_st = D,
        .v = v, .v_sb = (ptrdiff_t)nk, .v_sh = hd, .v_st = D, .out = y, .o_sb = (ptrdiff_t)nq, .o_sh = hd, .o_st = D,
    };
    o->attention(o, &a);
    a.out = yf;
    f->attention(f, &a);
    a.q = qr; a.k = kr; a.v = vr; a.out = yr;
    g_ref->attention(g_ref, &a);
    compare(&g_bf16_exact, y, yr, nq, 2e-6 + 2.0 / 256, 2e-4 + 1.0 / 256, "attention",
            "H=%d nq=%d nkv=%d hd=%d vs bf16-rounded inputs", heads, n_q, n_kv, hd);
    double worst = 0.0;
    for (size_t i = 0; i < nq; i++) worst = fmax(worst, fabs((double)y[i] - yf[i]));
    run_t r;
    run_begin(&r, &g_bf16_exact, 0, 0, "attention", "H=%d nq=%d nkv=%d hd=%d rounds: %.2g off the fp32 result",
              heads, n_q, n_kv, hd, worst);
    r.n = nq;
    r.max_err = 0.0;
    if (!(worst > 1e-4)) run_fail(&r, "the result is the fp32 one: the bf16 path did not run");
    run_end(&r);
    free(q); free(k); free(v); free(qr); free(kr); free(vr); free(y); free(yr); free(yf);
}

static void test_cpu_bf16_exact(void) {
    if (!in_list(g_opt.backends, "cpu_fast_bf16") || !in_list(g_opt.ops, "bf16_exact")) return;
    samc_ops *o = samc_ops_cpu_fast_create(2);
    char err[512] = "";
    if (!o || o->set_precision(o, SAMC_OPS_BF16, NULL, 0, err) != 0) {
        if (o && strstr(err, "needs Intel AMX")) { printf("SKIP   bf16_exact: %s\n", err); g_skipped++; }
        else { printf("NOT OK bf16_exact: %s\n", o ? err : "cannot create cpu_fast"); g_failed++; }
        samc_ops_cpu_fast_destroy(o);
        return;
    }
    int big = !quick();
    bf16_gemm_case(o, 0, 7, 13, 33, 1, 0);        /* one tile, K tail */
    bf16_gemm_case(o, 0, 61, 47, 300, 1, 0);      /* partial row and column tiles */
    bf16_gemm_case(o, 0, 129, 33, 97, 0, 0);      /* one row past a block of A */
    bf16_gemm_case(o, 0, 37, 50, 5233, 1, 0);     /* two K blocks: the second accumulates */
    bf16_gemm_case(o, 0, 45, 70, 300, 1, 1);      /* 16-bit weights */
    bf16_gemm_case(o, 0, 600, 70, 300, 1, 0);     /* tall: B packed once for all threads */
    bf16_gemm_case(o, 0, 700, 47, 5233, 1, 1);    /* the same over two K blocks, 16-bit weights */
    bf16_gemm_case(o, 0, big ? 577 : 97, 3072, 1024, 1, 0); /* SAM3 ViT qkv (rows cut) */
    bf16_gemm_case(o, 0, big ? 301 : 37, 1024, 4736, 1, 0); /* its MLP's second layer */
    bf16_gemm_case(o, 1, 64, 1000, 300, 1, 0);    /* matmul: B by rows, bias per row */
    bf16_gemm_case(o, 1, 33, 17, 130, 0, 0);
    bf16_conv_case(o, 0, 64, 17, 19, 33, 3, 1, 1);   /* im2col, 576 taps, borders */
    bf16_conv_case(o, 0, 3, 56, 56, 64, 14, 14, 0);  /* SAM3's patch embed shape, 588 taps */
    if (big) bf16_conv_case(o, 0, 256, 20, 20, 256, 3, 1, 1); /* the pixel decoder's 2304 taps */
    bf16_conv_case(o, 1, 300, 17, 19, 70, 0, 0, 0);  /* transposed A */
    /* the fp32 phase: the fp32 instance's bits; then the 16-bit phase again */
    samc_ops *f = samc_ops_cpu_fast_create(2);
    if (f) {
        bf16_attention_case(o, f, 2, 37, 19, 7);        /* odd: partial tiles, head dim 7 */
        bf16_attention_case(o, f, 16, 61, 576, 64);     /* SAM3 ViT window (3 key chunks) */
        bf16_attention_case(o, f, 8, 100, 300, 32);     /* fusion encoder head width */
    }
    int M = 61, N = 47, K = 300;
    float *x = rand_buf((size_t)M * K, 1.0f), *w = rand_buf((size_t)N * K, 1.0f), *b = rand_buf(N, 1.0f);
    float *y = nan_host((size_t)M * N), *yf = nan_host((size_t)M * N), *y1 = nan_host((size_t)M * N);
    if (f) {
        o->linear(o, x, w, b, y1, M, N, K);
        o->activation_precision(o, 0);
        o->linear(o, x, w, b, y, M, N, K);
        f->linear(f, x, w, b, yf, M, N, K);
        compare(&g_bf16_exact, y, yf, (size_t)M * N, 0, 0, "linear", "activation_precision(0): the fp32 bits");
        /* convolutions of 256+ taps stay bf16 in the fp32 phase (as CUDA's do), shorter
         * ones are fp32's bits there */
        bf16_conv_case(o, 0, 64, 17, 19, 33, 3, 1, 1);
        int Cin = 8, S = 20, Cout = 16; /* 72 taps */
        float *cx = rand_buf((size_t)Cin * S * S, 1.0f), *cw = rand_buf((size_t)Cout * Cin * 9, 1.0f);
        float *c1 = nan_host((size_t)Cout * S * S), *c2 = nan_host((size_t)Cout * S * S);
        o->conv2d(o, cx, cw, NULL, c1, Cin, S, S, Cout, 3, 3, 1, 1);
        f->conv2d(f, cx, cw, NULL, c2, Cin, S, S, Cout, 3, 3, 1, 1);
        compare(&g_bf16_exact, c1, c2, (size_t)Cout * S * S, 0, 0, "conv2d", "72 taps in the fp32 phase: fp32's bits");
        free(cx); free(cw); free(c1); free(c2);
        o->activation_precision(o, 1);
        o->linear(o, x, w, b, yf, M, N, K);
        compare(&g_bf16_exact, yf, y1, (size_t)M * N, 0, 0, "linear", "activation_precision(1): bf16 again");
    } else {
        printf("NOT OK bf16_exact: cannot create cpu_fast\n");
        g_failed++;
    }
    /* fp16 has no CPU matrix unit: refused, naming the way out */
    err[0] = 0;
    int rc = f ? f->set_precision(f, SAMC_OPS_FP16, NULL, 0, err) : -1;
    run_t r;
    run_begin(&r, &g_bf16_exact, 0, 0, "set_precision", "fp16 on the CPU is refused: %s", err);
    r.n = 1;
    r.max_err = 0.0;
    if (rc == 0 || !strstr(err, "bf16")) run_fail(&r, "rc %d, message '%s'", rc, err);
    run_end(&r);
    free(x); free(w); free(b); free(y); free(yf); free(y1);
    samc_ops_cpu_fast_destroy(f);
    samc_ops_cpu_fast_destroy(o);
}

/* ------------------------------------------------------------------ setup and main */

static void add_cpu_backends(void) {
    const char *isa = samc_ops_cpu_fast_isa();
    if (strcmp(isa, "scalar") != 0 && in_list(g_opt.backends, "cpu_fast")) {
        backend *b = &g_be[g_nbe];
        *b = (backend){ "cpu_fast", isa, samc_ops_cpu_fast_create_isa(2, isa), 0, 0, 0, 0, 0 };
        if (b->ops) g_nbe++;
    }
    /* the AVX2 table too when the CPU's best is AVX-512 */
    if (strcmp(isa, "avx512") == 0 && in_list(g_opt.backends, "cpu_fast_avx2")) {
        backend *b = &g_be[g_nbe];
        *b = (backend){ "cpu_fast_avx2", "avx2+fma", samc_ops_cpu_fast_create_isa(2, "avx2+fma"), 0, 0, 0, 0, 0 };
        if (b->ops) g_nbe++;
        else { printf("NOT OK cpu_fast_avx2: cannot create\n"); g_failed++; }
    }
    /* --precision bf16 on the CPU: GEMM operands rounded to bf16 on AMX, activations fp32
     * (so the cases' inputs, rounded as for cuda_bf16, are what it reads); a CPU without
     * AMX skips with one line */
    if (in_list(g_opt.backends, "cpu_fast_bf16")) {
        samc_ops *o = samc_ops_cpu_fast_create_isa(2, isa);
        char err[512] = "";
        if (o && o->set_precision(o, SAMC_OPS_BF16, NULL, 0, err) == 0) {
            g_be[g_nbe++] = (backend){ "cpu_fast_bf16", isa, o, 0, 0, 0, 0, SAMC_OPS_BF16 };
        } else if (o && strstr(err, "needs Intel AMX")) {
            printf("SKIP   cpu_fast_bf16: %s\n", err);
            g_skipped++;
            samc_ops_cpu_fast_destroy(o);
        } else {
            printf("NOT OK cpu_fast_bf16: %s\n", o ? err : "cannot create");
            g_failed++;
            samc_ops_cpu_fast_destroy(o);
        }
    }
    /* the portable kernels: "cpu_fast" itself when the CPU has nothing better */
    const char *name = strcmp(isa, "scalar") != 0 ? "cpu_fast_scalar" : "cpu_fast";
    if (in_list(g_opt.backends, name)) {
        backend *b = &g_be[g_nbe];
        *b = (backend){ name, "scalar", samc_ops_cpu_fast_create_isa(2, "scalar"), 0, 1, 0, 0, 0 };
        if (b->ops) g_nbe++;
        else { printf("NOT OK %s: cannot create\n", name); g_failed++; }
    }
}

/* cuda_bf16 / cuda_fp16: another instance, set to the precision with a small weight block
 * (the cases' own buffers are all activations); a device without the precision skips. */
static void add_cuda_lowp_backend(samc_ops_precision prec, const char *name) {
    if (!in_list(g_opt.backends, name)) return;
    char err[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, err);
    if (!o) return; /* the cuda backend's line said why */
    static const float zeros[16];
    float *blk = o->alloc(o, sizeof zeros);
    if (blk) o->upload(o, blk, zeros, sizeof zeros);
    int rc = blk ? o->set_precision(o, prec, blk, 16, err) : -1;
    if (rc != 0 && strstr(err, "compute capability")) {
        printf("SKIP   %s: %s\n", name, err);
        g_skipped++;
    } else if (rc != 0) {
        printf("NOT OK %s: set_precision: %s\n", name, blk ? err : "allocation failed");
        g_failed++;
    } else {
        g_be[g_nbe++] = (backend){ name, NULL, o, 1, 0, 0, 0, (int)prec };
        return;
    }
    samc_ops_cuda_destroy(o);
}

/* Without a device the cuda cases are skipped with one line; a device that is present but
 * whose backend cannot start is a failure. */
static void add_cuda_fp32_backend(void) {
    if (!in_list(g_opt.backends, "cuda")) return;
    char why[512] = "", info[512] = "";
    samc_ops *o = samc_ops_cuda_create(0, why);
    int device = samc_cuda_device_info(info, sizeof info) == 0;
    if (!o && device) {
        printf("NOT OK cuda: a CUDA device is present (%s) but the backend cannot start: %s\n", info, why);
        g_failed++;
    } else if (!o) {
        printf("SKIP   cuda: no CUDA backend here (%s)\n", why);
        g_skipped++;
    } else {
        printf("cuda device: %s\n", info);
        g_be[g_nbe++] = (backend){ "cuda", NULL, o, 1, 0, 0, 0, 0 };
    }
}

static void add_cuda_backends(void) {
    add_cuda_fp32_backend();
    add_cuda_lowp_backend(SAMC_OPS_BF16, "cuda_bf16");
    add_cuda_lowp_backend(SAMC_OPS_FP16, "cuda_fp16");
}

static void usage(void) {
    fprintf(stderr, "usage: test_backend_ops [--op a,b] [--backend cpu_fast,cpu_fast_avx2,cpu_fast_scalar,cpu_fast_bf16,\n"
                    "                        cuda,cuda_bf16,cuda_fp16] [--shape SUBSTR]\n"
                    "                        [--size odd,small,sam,big] [--perf] [--list]\n");
    exit(2);
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--perf")) g_opt.perf = 1;
        else if (!strcmp(a, "--list")) g_opt.list = 1;
        else if (!v) usage();
        else if (!strcmp(a, "--op")) g_opt.ops = argv[++i];
        else if (!strcmp(a, "--backend")) g_opt.backends = argv[++i];
        else if (!strcmp(a, "--shape")) g_opt.shape = argv[++i];
        else if (!strcmp(a, "--size") && (g_opt.sizes = parse_sizes(v))) i++;
        else usage();
    }
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    g_ref = samc_ops_cpu_ref();
    test_lowp_rounding();
    add_cpu_backends();
    add_cuda_backends();
    for (int i = 0; i < g_nbe; i++) {
        const backend *be = &g_be[i];
        test_gemm(be);
        test_linear_act(be);
        test_gemm_zero_k(be);
        test_lowp(be);
        test_attention(be);
        test_attention_windows(be);
        test_norms(be);
        test_unary(be);
        test_elementwise(be);
        test_layout(be);
        test_conv(be);
        test_sam3_ops(be);
        test_pipeline(be);
        test_memory(be);
        test_determinism(be);
    }
    test_isa_bits();
    test_cpu_bf16_exact();
    test_small_m_exact();
    for (int i = 0; i < g_nbe; i++)
        if (!g_be[i].prec) test_error_reporting(&g_be[i]);
    char info[512];
    for (int i = 0; i < g_nbe; i++) {
        if (g_be[i].is_cuda && !g_be[i].ran && !g_opt.ops && !g_opt.shape && !g_opt.list &&
            samc_cuda_device_info(info, sizeof info) == 0) {
            printf("NOT OK cuda: a CUDA device is present but no cuda case ran\n");
            g_failed++;
        }
        if (g_be[i].is_cuda) samc_ops_cuda_destroy(g_be[i].ops);
        else samc_ops_cpu_fast_destroy(g_be[i].ops);
    }
    printf("%s: %d passed, %d failed, %d skipped\n", __FILE__, g_passed, g_failed, g_skipped);
    return g_failed ? 1 : 0;
}
