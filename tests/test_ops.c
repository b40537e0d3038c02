/* tests/test_ops.c: every op of cpu_fast against cpu_ref, on SAM2.1 shapes and on odd
 * ones, for each kernel table this CPU can run (avx2+fma and the portable one), plus
 * the thread pool and determinism across thread counts. Compute ops are compared with
 * |fast - ref| <= atol + rtol*|ref|; layout and elementwise ops must match bit for bit.
 *
 * The big shapes run the fast op on the whole problem and the slow reference on a
 * sample of rows / channels / queries (the reference ops have no hidden coupling
 * between rows, so a row of the reference on a sub-problem is that row of the full
 * one). SAMC_TEST_QUICK=1, or a sanitizer build, shrinks the biggest cases. */
#include "kernels/cpu_fast_kernels.h"
#include "kernels/ops.h"
#include "tests/test.h"
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#include "tests/test_data.h"
#include "kernels/thread_pool.h"
#include <stdatomic.h>
#include <stdint.h>

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

static int quick(void) {
    const char *q = getenv("SAMC_TEST_QUICK");
    return SANITIZED || (q && *q && strcmp(q, "0") != 0);
}

/* ------------------------------------------------------------------ helpers */


/* |got - ref| <= atol + rtol*|ref| for every element; on failure names the op, the
 * first bad index, both values, how many are bad and the max abs error. */
static int close_enough(const char *what, const float *got, const float *ref, size_t n,
                        float atol, float rtol) {
    size_t bad = 0, first = 0;
    double max_err = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)ref[i]);
        if (!(e <= atol + rtol * fabs((double)ref[i]))) { if (!bad) first = i; bad++; }
        if (e > max_err || e != e) max_err = e;
    }
    CHECKF(bad == 0, "%s: %zu of %zu out of tolerance, first at [%zu] fast=%.9g ref=%.9g, max abs err %.3g",
           what, bad, n, first, got[first], ref[first], max_err);
    return bad == 0;
}

/* The kernel tables under test: the dispatched one first, the portable one always. */
typedef struct { const char *isa; samc_ops *ops; } backend;
static backend g_be[2];
static int g_nbe;
static const samc_ops *ref_ops;

static void teardown(void) {
    for (int i = 0; i < g_nbe; i++) samc_ops_cpu_fast_destroy(g_be[i].ops);
    g_nbe = 0;
}

static void setup(void) {
    if (g_nbe) return;
    ref_ops = samc_ops_cpu_ref();
    const char *isa = samc_ops_cpu_fast_isa();
    if (strcmp(isa, "scalar") != 0) {
        g_be[g_nbe].isa = isa;
        g_be[g_nbe++].ops = samc_ops_cpu_fast_create_isa(2, isa);
    }
    g_be[g_nbe].isa = "scalar";
    g_be[g_nbe++].ops = samc_ops_cpu_fast_create_isa(2, "scalar");
    for (int i = 0; i < g_nbe; i++)
        if (!g_be[i].ops) { fprintf(stderr, "cannot create cpu_fast (%s)\n", g_be[i].isa); exit(2); }
    atexit(teardown);
}

/* Whether to run a case: the "big" SAM2.1 shapes only on the dispatched kernels in a
 * full run; in quick / sanitizer runs the portable kernels (slow under ASan) also skip
 * anything over 1e8 flops. Every case runs at least once in a full run. */
static int skip_case(const backend *be, int big, double flops) {
    int portable = strcmp(be->isa, "scalar") == 0;
    if (big) return quick() || portable;
    return quick() && portable && flops > 1e8;
}

/* GEMM tolerance: rounding grows with K. */
static float gemm_atol(int K) { return 1e-5f + 2e-7f * (float)K; }

/* ------------------------------------------------------------------ thread pool */

typedef struct { atomic_int *hits; int *thread_of; int size; atomic_int bad_thread; } pool_ctx;
static void pool_task(void *ctx_, int task, int thread) {
    pool_ctx *c = ctx_;
    atomic_fetch_add(&c->hits[task], 1);
    c->thread_of[task] = thread;
    if (thread < 0 || thread >= c->size) atomic_store(&c->bad_thread, 1);
}

static void test_thread_pool(void) {
    const int sizes[] = { 1, 2, 7, 0 };
    const int counts[] = { 0, 1, 5, 1000 };
    for (int si = 0; si < 4; si++) {
        samc_thread_pool *p = samc_thread_pool_create(sizes[si]);
        CHECKF(p != NULL, "pool of %d threads", sizes[si]);
        if (!p) continue;
        int size = samc_thread_pool_size(p);
        CHECKF(sizes[si] > 0 ? size == sizes[si] : size >= 1, "pool size %d for request %d", size, sizes[si]);
        for (int rep = 0; rep < 20; rep++)
            for (int ci = 0; ci < 4; ci++) {
                int n = counts[ci];
                atomic_int hits[1000];
                int thread_of[1000];
                for (int i = 0; i < 1000; i++) atomic_init(&hits[i], 0);
                pool_ctx c = { hits, thread_of, size, 0 };
                samc_thread_pool_parallel_for(p, n, pool_task, &c);
                int wrong = 0;
                for (int i = 0; i < 1000; i++) wrong += atomic_load(&hits[i]) != (i < n ? 1 : 0);
                CHECKF(wrong == 0, "pool(%d) parallel_for(%d): %d tasks not run exactly once", size, n, wrong);
                CHECKF(atomic_load(&c.bad_thread) == 0, "pool(%d): thread index out of range", size);
            }
        samc_thread_pool_destroy(p);
    }
    /* Create/destroy churn, with and without a job in between (leaks show under ASan). */
    for (int i = 0; i < 200; i++) {
        samc_thread_pool *p = samc_thread_pool_create(1 + i % 4);
        CHECK(p != NULL);
        if (i % 2 && p) {
            atomic_int hits[16];
            int thread_of[16];
            for (int t = 0; t < 16; t++) atomic_init(&hits[t], 0);
            pool_ctx c = { hits, thread_of, samc_thread_pool_size(p), 0 };
            samc_thread_pool_parallel_for(p, 16, pool_task, &c);
        }
        samc_thread_pool_destroy(p);
    }
    samc_thread_pool_destroy(NULL);
}

static void test_create_destroy(void) {
    for (int i = 0; i < 50; i++) {
        samc_ops *o = samc_ops_cpu_fast_create(1 + i % 3);
        CHECK(o != NULL);
        if (!o) continue;
        CHECK(strcmp(o->name, "cpu_fast") == 0);
        float x[6] = { 1, 2, 3, 4, 5, 6 }, w[6] = { 1, 0, 0, 0, 1, 0 }, y[4];
        o->linear(o, x, w, NULL, y, 2, 2, 3);
        CHECK(y[0] == 1 && y[1] == 2 && y[2] == 4 && y[3] == 5);
        samc_ops_cpu_fast_destroy(o);
    }
    samc_ops_cpu_fast_destroy(NULL);
    const char *isa = samc_ops_cpu_fast_isa();
    CHECKF(strcmp(isa, "avx2+fma") == 0 || strcmp(isa, "scalar") == 0, "isa \"%s\"", isa);
}

/* ------------------------------------------------------------------ linear / matmul */

/* Reference rows to compare: all of them for small M, else a sample (first, last,
 * a middle block). */
static int sample_rows(int M, int *r0, int *len) {
    if (M <= 64) { r0[0] = 0; len[0] = M; return 1; }
    r0[0] = 0; len[0] = 7;
    r0[1] = M / 2 - 3; len[1] = 13;
    r0[2] = M - 9; len[2] = 9;
    return 3;
}

typedef struct { int M, N, K, big; } mnk;

static void run_linear(const backend *be, mnk s, int with_bias) {
    char what[160];
    float *x = rand_buf((size_t)s.M * s.K, 1.0f), *w = rand_buf((size_t)s.N * s.K, 1.0f);
    float *b = with_bias ? rand_buf((size_t)s.N, 1.0f) : NULL;
    float *y = rand_buf((size_t)s.M * s.N, 100.0f); /* garbage: must be overwritten */
    float *yr = zero_buf((size_t)64 * s.N);
    be->ops->linear(be->ops, x, w, b, y, s.M, s.N, s.K);
    int r0[3], len[3], ns = sample_rows(s.M, r0, len);
    for (int i = 0; i < ns; i++) {
        ref_ops->linear(ref_ops, x + (size_t)r0[i] * s.K, w, b, yr, len[i], s.N, s.K);
        snprintf(what, sizeof what, "linear[%s] y rows %d..%d of M=%d N=%d K=%d bias=%d", be->isa,
                 r0[i], r0[i] + len[i] - 1, s.M, s.N, s.K, with_bias);
        close_enough(what, y + (size_t)r0[i] * s.N, yr, (size_t)len[i] * s.N, gemm_atol(s.K), 1e-4f);
    }
    free(x); free(w); free(b); free(y); free(yr);
}

static const mnk linear_shapes[] = {
    /* odd */
    { 1, 1, 1, 0 }, { 1, 17, 13, 0 }, { 7, 13, 17, 0 }, { 13, 33, 7, 0 }, { 17, 7, 33, 0 },
    { 33, 1, 1, 0 }, { 5, 16, 257, 0 }, { 61, 47, 300, 0 }, { 97, 129, 513, 0 },
    /* SAM2.1 decoder: tokens x 256 -> 256 / 2048, image tokens 4096 x 256 -> 128 */
    { 7, 256, 256, 0 }, { 10, 2048, 256, 0 }, { 10, 256, 2048, 0 }, { 4096, 128, 256, 0 },
    { 4096, 256, 128, 0 },
    /* Hiera tiny / large: qkv, proj, mlp at each stage */
    { 4096, 288, 96, 0 }, { 16384, 576, 192, 1 }, { 65536, 288, 96, 1 }, { 4096, 1152, 384, 0 },
    { 4096, 384, 1536, 1 }, { 1024, 2304, 768, 0 }, { 1024, 768, 3072, 1 }, { 1024, 4608, 1152, 1 },
    { 1999, 203, 1153, 0 },
};

static void test_linear(void) {
    setup();
    for (int bi = 0; bi < g_nbe; bi++)
        for (size_t i = 0; i < sizeof linear_shapes / sizeof linear_shapes[0]; i++) {
            mnk s = linear_shapes[i];
            if (skip_case(&g_be[bi], s.big, 2.0 * s.M * s.N * s.K)) continue;
            run_linear(&g_be[bi], s, (int)(i % 3) != 1);
        }
}

static void run_matmul(const backend *be, mnk s, int with_bias) {
    char what[160];
    float *a = rand_buf((size_t)s.M * s.K, 1.0f), *b = rand_buf((size_t)s.K * s.N, 1.0f);
    float *bias = with_bias ? rand_buf((size_t)s.M, 1.0f) : NULL;
    float *c = rand_buf((size_t)s.M * s.N, 100.0f);
    float *cr = zero_buf((size_t)64 * s.N);
    be->ops->matmul(be->ops, a, b, bias, c, s.M, s.N, s.K);
    int r0[3], len[3], ns = sample_rows(s.M, r0, len);
    for (int i = 0; i < ns; i++) {
        ref_ops->matmul(ref_ops, a + (size_t)r0[i] * s.K, b, bias ? bias + r0[i] : NULL, cr, len[i], s.N, s.K);
        snprintf(what, sizeof what, "matmul[%s] c rows %d..%d of M=%d N=%d K=%d bias=%d", be->isa,
                 r0[i], r0[i] + len[i] - 1, s.M, s.N, s.K, with_bias);
        close_enough(what, c + (size_t)r0[i] * s.N, cr, (size_t)len[i] * s.N, gemm_atol(s.K), 1e-4f);
    }
    free(a); free(b); free(bias); free(c); free(cr);
}

static const mnk matmul_shapes[] = {
    { 1, 1, 1, 0 }, { 7, 13, 17, 0 }, { 17, 33, 1, 0 }, { 13, 1, 7, 0 }, { 33, 17, 13, 0 },
    { 6, 1000, 300, 0 },
    /* neck 1x1 convs: 256 <- C at stride-4/8/16/32 maps (tiny: 96..768) */
    { 256, 4096, 384, 0 }, { 256, 1024, 768, 0 }, { 256, 16384, 192, 1 }, { 256, 65536, 96, 1 },
    /* decoder: conv_s0/s1 (256 -> 32 / 64) */
    { 32, 65536, 256, 1 }, { 64, 16384, 256, 0 },
};

static void test_matmul(void) {
    setup();
    for (int bi = 0; bi < g_nbe; bi++)
        for (size_t i = 0; i < sizeof matmul_shapes / sizeof matmul_shapes[0]; i++) {
            mnk s = matmul_shapes[i];
            if (skip_case(&g_be[bi], s.big, 2.0 * s.M * s.N * s.K)) continue;
            run_matmul(&g_be[bi], s, (int)(i % 3) != 1);
        }
}

static void test_gemm_zero_k(void) {
    setup();
    for (int bi = 0; bi < g_nbe; bi++) {
        float b[3] = { 1, 2, 3 }, y[6] = { 9, 9, 9, 9, 9, 9 };
        g_be[bi].ops->linear(g_be[bi].ops, NULL, NULL, b, y, 2, 3, 0);
        CHECK(y[0] == 1 && y[1] == 2 && y[2] == 3 && y[3] == 1 && y[5] == 3);
        g_be[bi].ops->matmul(g_be[bi].ops, NULL, NULL, NULL, y, 2, 3, 0);
        CHECK(y[0] == 0 && y[4] == 0);
    }
}

/* ------------------------------------------------------------------ attention */

typedef enum { LAYOUT_PACKED_QKV, LAYOUT_SEPARATE } att_layout;
typedef struct { const char *name; int batch, heads, n_q, n_kv, hd; att_layout layout; float qscale; int big; } att_case;

/* Runs the fast op on all of it and the reference on every (batch, head) for sampled
 * query rows. */
static void run_attention(const backend *be, const att_case *c) {
    char what[200];
    int H = c->heads, hd = c->hd, D = H * hd;
    samc_attention_args a = { .batch = c->batch, .heads = H, .n_q = c->n_q, .n_kv = c->n_kv,
                              .head_dim = hd, .scale = 1.0f / sqrtf((float)hd) };
    float *qkv = NULL, *q = NULL, *k = NULL, *v = NULL;
    if (c->layout == LAYOUT_PACKED_QKV) {
        /* Hiera: qkv [B, T, 3, heads, hd] from one linear; n_q == n_kv. */
        size_t n = (size_t)c->batch * c->n_kv * 3 * D;
        qkv = rand_buf(n, 1.0f);
        for (size_t i = 0; i < n; i += 3 * (size_t)D)
            for (int j = 0; j < D; j++) qkv[i + j] *= c->qscale;
        a.q = qkv; a.k = qkv + D; a.v = qkv + 2 * D;
        a.q_sb = a.k_sb = a.v_sb = (ptrdiff_t)c->n_kv * 3 * D;
        a.q_sh = a.k_sh = a.v_sh = hd;
        a.q_st = a.k_st = a.v_st = 3 * D;
    } else {
        /* decoder: [B, T, heads*hd] tensors */
        q = rand_buf((size_t)c->batch * c->n_q * D, c->qscale);
        k = rand_buf((size_t)c->batch * c->n_kv * D, 1.0f);
        v = rand_buf((size_t)c->batch * c->n_kv * D, 1.0f);
        a.q = q; a.k = k; a.v = v;
        a.q_sb = (ptrdiff_t)c->n_q * D; a.k_sb = a.v_sb = (ptrdiff_t)c->n_kv * D;
        a.q_sh = a.k_sh = a.v_sh = hd;
        a.q_st = a.k_st = a.v_st = D;
    }
    size_t on = (size_t)c->batch * c->n_q * D;
    float *out = rand_buf(on, 100.0f);
    a.out = out; a.o_sb = (ptrdiff_t)c->n_q * D; a.o_sh = hd; a.o_st = D;
    be->ops->attention(be->ops, &a);

    int nb = c->batch <= 4 ? c->batch : 3;
    int bsel[3] = { 0, c->batch / 2, c->batch - 1 };
    int r0[3], len[3], ns = sample_rows(c->n_q, r0, len);
    float *ro = zero_buf((size_t)64 * D);
    for (int bi = 0; bi < nb; bi++) {
        int b = c->batch <= 4 ? bi : bsel[bi];
        for (int si = 0; si < ns; si++) {
            samc_attention_args r = a;
            r.batch = 1; r.n_q = len[si];
            r.q = a.q + b * a.q_sb + r0[si] * a.q_st;
            r.k = a.k + b * a.k_sb;
            r.v = a.v + b * a.v_sb;
            r.out = ro; r.o_sb = 0; r.o_st = D; r.o_sh = hd;
            ref_ops->attention(ref_ops, &r);
            for (int i = 0; i < len[si]; i++) {
                snprintf(what, sizeof what, "attention[%s] %s (B=%d H=%d nq=%d nkv=%d hd=%d) out[b=%d, t=%d]",
                         be->isa, c->name, c->batch, H, c->n_q, c->n_kv, hd, b, r0[si] + i);
                if (!close_enough(what, out + b * a.o_sb + (r0[si] + i) * a.o_st, ro + (size_t)i * D,
                                  (size_t)D, 2e-6f, 2e-4f)) goto done;
            }
        }
    }
done:
    free(qkv); free(q); free(k); free(v); free(out); free(ro);
}

static const att_case att_cases[] = {
    /* Hiera windows: 8x8 at stage 0 (1 head, 96), 4x4 at stage 1, 14x14 padded windows
     * at stage 2 (4 heads, 96), global attention at 64x64 tokens. */
    { "hiera 8x8 windows", 1024, 1, 64, 64, 96, LAYOUT_PACKED_QKV, 1.0f, 1 },
    { "hiera 8x8 windows (few)", 16, 1, 64, 64, 96, LAYOUT_PACKED_QKV, 1.0f, 0 },
    { "hiera 4x4 windows", 256, 2, 16, 16, 96, LAYOUT_PACKED_QKV, 1.0f, 0 },
    { "hiera 14x14 windows", 25, 4, 196, 196, 96, LAYOUT_PACKED_QKV, 1.0f, 0 },
    { "hiera large 14x14", 9, 8, 196, 196, 72, LAYOUT_PACKED_QKV, 1.0f, 0 },
    { "hiera global 64x64", 1, 4, 4096, 4096, 96, LAYOUT_PACKED_QKV, 1.0f, 1 },
    { "hiera global 32x32", 1, 4, 1024, 1024, 96, LAYOUT_PACKED_QKV, 3.0f, 0 },
    /* decoder: tokens -> image (7..10 queries, 4096 keys) and back, heads 8, hd 16 / 32 */
    { "decoder token->image", 2, 8, 7, 4096, 16, LAYOUT_SEPARATE, 1.0f, 0 },
    { "decoder token->image hd32", 1, 8, 10, 4096, 32, LAYOUT_SEPARATE, 1.0f, 0 },
    { "decoder image->token", 2, 8, 4096, 7, 16, LAYOUT_SEPARATE, 1.0f, 0 },
    { "decoder self", 3, 8, 10, 10, 32, LAYOUT_SEPARATE, 1.0f, 0 },
    /* odd */
    { "n_kv=1", 2, 3, 5, 1, 8, LAYOUT_SEPARATE, 1.0f, 0 },
    { "n_q=1", 1, 2, 1, 300, 24, LAYOUT_SEPARATE, 1.0f, 0 },
    { "hd=1", 2, 2, 9, 13, 1, LAYOUT_SEPARATE, 1.0f, 0 },
    { "hd=17", 1, 3, 33, 17, 17, LAYOUT_SEPARATE, 1.0f, 0 },
    { "hd=33 chunks", 1, 1, 61, 777, 33, LAYOUT_SEPARATE, 1.0f, 0 },
    { "peaky 3 chunks", 1, 2, 50, 700, 64, LAYOUT_SEPARATE, 8.0f, 0 },
    { "packed odd", 3, 5, 13, 13, 7, LAYOUT_PACKED_QKV, 1.0f, 0 },
    { "wide head", 1, 1, 3, 5, 4100, LAYOUT_SEPARATE, 1.0f, 0 },
    { "n_kv=0", 1, 2, 3, 0, 8, LAYOUT_SEPARATE, 1.0f, 0 },
};

static void test_attention(void) {
    setup();
    for (int bi = 0; bi < g_nbe; bi++)
        for (size_t i = 0; i < sizeof att_cases / sizeof att_cases[0]; i++) {
            const att_case *c = &att_cases[i];
            if (skip_case(&g_be[bi], c->big, 4.0 * c->batch * c->heads * c->n_q * c->n_kv * c->hd)) continue;
            run_attention(&g_be[bi], c);
        }
}

/* ------------------------------------------------------------------ norms, gelu */

static void test_layer_norm(void) {
    setup();
    const int shapes[][3] = { { 1, 1, 0 }, { 7, 13, 0 }, { 13, 33, 0 }, { 10, 256, 0 }, { 4096, 256, 0 },
                              { 65536, 96, 1 }, { 4096, 384, 0 }, { 1024, 1152, 0 }, { 3, 1000, 0 } };
    char what[128];
    for (int bi = 0; bi < g_nbe; bi++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            int rows = shapes[i][0], dim = shapes[i][1];
            if (shapes[i][2] && quick()) rows /= 16;
            size_t n = (size_t)rows * dim;
            float *x = rand_buf(n, 3.0f), *w = rand_buf((size_t)dim, 1.0f), *b = rand_buf((size_t)dim, 1.0f);
            for (size_t j = 0; j < n; j++) x[j] += 0.5f; /* a non-zero mean */
            float *y = rand_buf(n, 100.0f), *yr = zero_buf(n);
            ref_ops->layer_norm(ref_ops, x, w, b, yr, rows, dim, 1e-6f);
            g_be[bi].ops->layer_norm(g_be[bi].ops, x, w, b, y, rows, dim, 1e-6f);
            snprintf(what, sizeof what, "layer_norm[%s] rows=%d dim=%d", g_be[bi].isa, rows, dim);
            close_enough(what, y, yr, n, 2e-5f, 1e-4f);
            g_be[bi].ops->layer_norm(g_be[bi].ops, x, w, b, x, rows, dim, 1e-6f); /* in place */
            snprintf(what, sizeof what, "layer_norm[%s] in place rows=%d dim=%d", g_be[bi].isa, rows, dim);
            close_enough(what, x, yr, n, 2e-5f, 1e-4f);
            free(x); free(w); free(b); free(y); free(yr);
        }
}

static void test_layer_norm2d(void) {
    setup();
    const int shapes[][2] = { { 1, 1 }, { 3, 17 }, { 13, 33 }, { 256, 4096 }, { 32, 65536 }, { 64, 16384 },
                              { 4, 1 }, { 256, 1023 } };
    char what[128];
    for (int bi = 0; bi < g_nbe; bi++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            int C = shapes[i][0], HW = shapes[i][1];
            size_t n = (size_t)C * HW;
            float *x = rand_buf(n, 2.0f), *w = rand_buf((size_t)C, 1.0f), *b = rand_buf((size_t)C, 1.0f);
            for (size_t j = 0; j < n; j++) x[j] -= 0.7f;
            float *y = rand_buf(n, 100.0f), *yr = zero_buf(n);
            ref_ops->layer_norm2d(ref_ops, x, w, b, yr, C, HW, 1e-6f);
            g_be[bi].ops->layer_norm2d(g_be[bi].ops, x, w, b, y, C, HW, 1e-6f);
            snprintf(what, sizeof what, "layer_norm2d[%s] C=%d HW=%d", g_be[bi].isa, C, HW);
            close_enough(what, y, yr, n, 2e-5f, 1e-4f);
            g_be[bi].ops->layer_norm2d(g_be[bi].ops, x, w, b, x, C, HW, 1e-6f);
            snprintf(what, sizeof what, "layer_norm2d[%s] in place C=%d HW=%d", g_be[bi].isa, C, HW);
            close_enough(what, x, yr, n, 2e-5f, 1e-4f);
            free(x); free(w); free(b); free(y); free(yr);
        }
}

static void test_gelu(void) {
    setup();
    const float special[] = { 0.0f, -0.0f, 1.0f, -1.0f, 1.4142135f, -1.4142135f, 5.656854f, -5.656854f,
                              5.6568546f, -5.6568546f, 1e-30f, -1e-30f, 1e-7f, -3.0f, -8.0f, -12.0f,
                              -20.0f, 30.0f, 1e6f, -1e6f, 0.70710677f, -2.5f };
    const size_t ns = sizeof special / sizeof special[0];
    const size_t sizes[] = { 1, 7, 17, 1000003 };
    char what[96];
    for (int bi = 0; bi < g_nbe; bi++)
        for (size_t si = 0; si < 4; si++) {
            size_t n = sizes[si] + ns;
            float *x = rand_buf(n, 7.0f);
            memcpy(x + sizes[si], special, sizeof special);
            float *xr = malloc(n * sizeof(float));
            memcpy(xr, x, n * sizeof(float));
            ref_ops->gelu(ref_ops, xr, n);
            g_be[bi].ops->gelu(g_be[bi].ops, x, n);
            snprintf(what, sizeof what, "gelu[%s] n=%zu", g_be[bi].isa, n);
            close_enough(what, x, xr, n, 1e-6f, 1e-6f);
            free(x); free(xr);
        }
}

/* ------------------------------------------------------------------ convolutions */

typedef struct { const char *name; int Cin, H, W, Cout, kh, kw, stride, pad, big; } conv_case;

static void run_conv2d(const backend *be, const conv_case *c, int with_bias) {
    char what[200];
    int Ho = (c->H + 2 * c->pad - c->kh) / c->stride + 1, Wo = (c->W + 2 * c->pad - c->kw) / c->stride + 1;
    size_t wsz = (size_t)c->Cin * c->kh * c->kw, plane = (size_t)Ho * Wo;
    float *x = rand_buf((size_t)c->Cin * c->H * c->W, 1.0f), *w = rand_buf((size_t)c->Cout * wsz, 1.0f);
    float *b = with_bias ? rand_buf((size_t)c->Cout, 1.0f) : NULL;
    float *y = rand_buf((size_t)c->Cout * plane, 100.0f), *yr = zero_buf(plane);
    be->ops->conv2d(be->ops, x, w, b, y, c->Cin, c->H, c->W, c->Cout, c->kh, c->kw, c->stride, c->pad);
    /* The reference one output channel at a time (a sample of channels when many). */
    int chans[4] = { 0, c->Cout / 3, c->Cout / 2 + 1, c->Cout - 1 };
    int nch = c->Cout <= 4 ? c->Cout : 4;
    for (int i = 0; i < nch; i++) {
        int co = c->Cout <= 4 ? i : chans[i];
        ref_ops->conv2d(ref_ops, x, w + (size_t)co * wsz, b ? b + co : NULL, yr, c->Cin, c->H, c->W, 1,
                        c->kh, c->kw, c->stride, c->pad);
        snprintf(what, sizeof what, "conv2d[%s] %s (Cin=%d %dx%d Cout=%d k=%dx%d s=%d p=%d) channel %d",
                 be->isa, c->name, c->Cin, c->H, c->W, c->Cout, c->kh, c->kw, c->stride, c->pad, co);
        if (!close_enough(what, y + (size_t)co * plane, yr, plane, gemm_atol((int)wsz), 1e-4f)) break;
    }
    free(x); free(w); free(b); free(y); free(yr);
}

static const conv_case conv_cases[] = {
    /* Hiera patch embed: 7x7 stride 4 pad 3, 3 -> 96 (tiny) / 144 (large) */
    { "patch embed 1024", 3, 1024, 1024, 96, 7, 7, 4, 3, 1 },
    { "patch embed 256", 3, 256, 256, 144, 7, 7, 4, 3, 0 },
    /* decoder mask downscaling 2x2 stride 2, and 1x1 */
    { "mask down 1", 1, 256, 256, 4, 2, 2, 2, 0, 0 },
    { "mask down 2", 4, 128, 128, 16, 2, 2, 2, 0, 0 },
    { "mask down 1x1", 16, 64, 64, 256, 1, 1, 1, 0, 0 },
    { "neck 1x1", 768, 32, 32, 256, 1, 1, 1, 0, 0 },
    /* odd */
    { "3x3 s1 p1", 3, 5, 7, 5, 3, 3, 1, 1, 0 },
    { "3x3 s2 p1", 7, 13, 9, 17, 3, 3, 2, 1, 0 },
    { "5x5 p3 on 2x2", 2, 2, 2, 3, 5, 5, 1, 3, 0 },
    { "1x1 s2", 5, 9, 9, 6, 1, 1, 2, 0, 0 },
    { "1x3", 4, 6, 11, 33, 1, 3, 1, 0, 0 },
    { "1x1x1", 1, 1, 1, 1, 1, 1, 1, 0, 0 },
};

static void test_conv2d(void) {
    setup();
    for (int bi = 0; bi < g_nbe; bi++)
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
            const conv_case *c = &conv_cases[i];
            int Ho = (c->H + 2 * c->pad - c->kh) / c->stride + 1, Wo = (c->W + 2 * c->pad - c->kw) / c->stride + 1;
            if (skip_case(&g_be[bi], c->big, 2.0 * c->Cout * Ho * Wo * c->Cin * c->kh * c->kw)) continue;
            run_conv2d(&g_be[bi], c, (int)(i % 4) != 2);
        }
}

static void run_convt(const backend *be, int Cin, int H, int W, int Cout, int with_bias) {
    char what[200];
    size_t plane = (size_t)4 * H * W;
    float *x = rand_buf((size_t)Cin * H * W, 1.0f), *w = rand_buf((size_t)Cin * Cout * 4, 1.0f);
    float *b = with_bias ? rand_buf((size_t)Cout, 1.0f) : NULL;
    float *y = rand_buf((size_t)Cout * plane, 100.0f), *yr = zero_buf(plane);
    float *w1 = zero_buf((size_t)Cin * 4);
    be->ops->conv_transpose2x2(be->ops, x, w, b, y, Cin, H, W, Cout);
    int chans[4] = { 0, Cout / 3, Cout / 2 + 1, Cout - 1 };
    int nch = Cout <= 4 ? Cout : 4;
    for (int i = 0; i < nch; i++) {
        int co = Cout <= 4 ? i : chans[i];
        /* w[Cin, Cout, 2, 2] restricted to one output channel */
        for (int ci = 0; ci < Cin; ci++) memcpy(w1 + ci * 4, w + ((size_t)ci * Cout + co) * 4, 4 * sizeof(float));
        ref_ops->conv_transpose2x2(ref_ops, x, w1, b ? b + co : NULL, yr, Cin, H, W, 1);
        snprintf(what, sizeof what, "conv_transpose2x2[%s] Cin=%d %dx%d Cout=%d channel %d", be->isa, Cin, H, W,
                 Cout, co);
        if (!close_enough(what, y + (size_t)co * plane, yr, plane, gemm_atol(Cin), 1e-4f)) break;
    }
    free(x); free(w); free(b); free(y); free(yr); free(w1);
}

static void test_conv_transpose2x2(void) {
    setup();
    for (int bi = 0; bi < g_nbe; bi++) {
        if (!skip_case(&g_be[bi], 0, 2.0 * 256 * 256 * 4096)) {
            run_convt(&g_be[bi], 256, 64, 64, 64, 1);   /* decoder output_upscaling[0] */
            run_convt(&g_be[bi], 64, 128, 128, 32, 1);  /* output_upscaling[3] */
        }
        run_convt(&g_be[bi], 1, 1, 1, 1, 1);
        run_convt(&g_be[bi], 7, 5, 3, 13, 0);
        run_convt(&g_be[bi], 300, 17, 19, 70, 1);   /* more than one tile both ways */
    }
}

/* ------------------------------------------------------------------ layout, elementwise */

/* These do per element the reference's exact arithmetic: outputs must be identical. */
static int same_bits(const char *what, const float *got, const float *ref, size_t n) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &ref[i], sizeof(float)) != 0) { if (!bad) first = i; bad++; }
    CHECKF(bad == 0, "%s: %zu of %zu differ from cpu_ref, first at [%zu] fast=%.9g ref=%.9g", what, bad, n,
           first, bad ? got[first] : 0.0f, bad ? ref[first] : 0.0f);
    return bad == 0;
}

static void test_layout_ops(void) {
    setup();
    char what[160];
    for (int bi = 0; bi < g_nbe; bi++) {
        const samc_ops *o = g_be[bi].ops;
        const char *isa = g_be[bi].isa;
        /* window_partition / unpartition_add: stage-0 8x8 windows, stage-2 14x14 padded
         * (64 -> 70), q-pooled 4x4 windows, odd */
        const int wp[][5] = { { 256, 256, 96, 8, 8 }, { 64, 64, 384, 14, 14 }, { 128, 128, 192, 4, 4 },
                              { 13, 7, 5, 4, 3 }, { 1, 1, 1, 1, 1 } };
        for (size_t i = 0; i < sizeof wp / sizeof wp[0]; i++) {
            int H = wp[i][0], W = wp[i][1], C = wp[i][2], wh = wp[i][3], ww = wp[i][4];
            int nwx = (W + ww - 1) / ww, nwy = (H + wh - 1) / wh;
            size_t nwin = (size_t)nwx * nwy * wh * ww * C, nmap = (size_t)H * W * C;
            float *x = rand_buf(nmap, 1.0f), *win = rand_buf(nwin, 9.0f), *winr = rand_buf(nwin, 9.0f);
            o->window_partition(o, x, win, H, W, C, wh, ww);
            ref_ops->window_partition(ref_ops, x, winr, H, W, C, wh, ww);
            snprintf(what, sizeof what, "window_partition[%s] %dx%dx%d win %dx%d", isa, H, W, C, wh, ww);
            same_bits(what, win, winr, nwin);
            float *sc = rand_buf(nmap, 1.0f), *out = rand_buf(nmap, 9.0f), *outr = rand_buf(nmap, 9.0f);
            o->window_unpartition_add(o, win, sc, out, H, W, C, wh, ww, nwx);
            ref_ops->window_unpartition_add(ref_ops, win, sc, outr, H, W, C, wh, ww, nwx);
            snprintf(what, sizeof what, "window_unpartition_add[%s] %dx%dx%d win %dx%d", isa, H, W, C, wh, ww);
            same_bits(what, out, outr, nmap);
            free(x); free(win); free(winr); free(sc); free(out); free(outr);
        }
        /* maxpool2x2: q of packed qkv rows (pixel stride 3*C) over windows, and dense */
        const int mp[][5] = { { 1024, 8, 8, 96, 288 }, { 1, 256, 256, 96, 96 }, { 3, 6, 10, 5, 7 }, { 2, 3, 5, 1, 1 } };
        for (size_t i = 0; i < sizeof mp / sizeof mp[0]; i++) {
            int n = mp[i][0], H = mp[i][1], W = mp[i][2], C = mp[i][3], ps = mp[i][4];
            size_t nin = ((size_t)n * H * W - 1) * ps + C, nout = (size_t)n * (H / 2) * (W / 2) * C;
            float *x = rand_buf(nin, 1.0f), *y = rand_buf(nout, 9.0f), *yr = rand_buf(nout, 9.0f);
            o->maxpool2x2(o, x, y, n, H, W, C, ps);
            ref_ops->maxpool2x2(ref_ops, x, yr, n, H, W, C, ps);
            snprintf(what, sizeof what, "maxpool2x2[%s] n=%d %dx%dx%d stride %d", isa, n, H, W, C, ps);
            same_bits(what, y, yr, nout);
            free(x); free(y); free(yr);
        }
        /* transpose [batch, R, C] -> [batch, C, R]: patch-embed output, decoder keys, odd */
        const int tp[][3] = { { 1, 96, 65536 }, { 2, 256, 4096 }, { 3, 17, 13 }, { 1, 1, 1 }, { 2, 4096, 96 } };
        for (size_t i = 0; i < sizeof tp / sizeof tp[0]; i++) {
            int B = tp[i][0], R = tp[i][1], C = tp[i][2];
            size_t n = (size_t)B * R * C;
            float *x = rand_buf(n, 1.0f), *y = rand_buf(n, 9.0f), *yr = rand_buf(n, 9.0f);
            o->transpose(o, x, y, B, R, C);
            ref_ops->transpose(ref_ops, x, yr, B, R, C);
            snprintf(what, sizeof what, "transpose[%s] [%d, %d, %d]", isa, B, R, C);
            same_bits(what, y, yr, n);
            free(x); free(y); free(yr);
        }
        /* upsample_nearest2x_add (FPN top-down) */
        const int un[][3] = { { 256, 64, 64 }, { 3, 5, 7 } };
        for (size_t i = 0; i < 2; i++) {
            int C = un[i][0], h = un[i][1], w = un[i][2];
            size_t nd = (size_t)C * 4 * h * w;
            float *src = rand_buf((size_t)C * h * w, 1.0f), *d = rand_buf(nd, 1.0f), *dr = malloc(nd * sizeof(float));
            memcpy(dr, d, nd * sizeof(float));
            o->upsample_nearest2x_add(o, d, src, C, h, w);
            ref_ops->upsample_nearest2x_add(ref_ops, dr, src, C, h, w);
            snprintf(what, sizeof what, "upsample_nearest2x_add[%s] C=%d %dx%d", isa, C, h, w);
            same_bits(what, d, dr, nd);
            free(src); free(d); free(dr);
        }
        /* upsample_bilinear: low-res logits 256 -> image size, and odd */
        const int ub[][4] = { { 3, 256, 1800, 1200 }, { 1, 256, 1024, 1024 }, { 2, 7, 5, 13 }, { 1, 1, 3, 2 } };
        for (size_t i = 0; i < sizeof ub / sizeof ub[0]; i++) {
            int n = ub[i][0], ls = ub[i][1], w = ub[i][2], h = ub[i][3];
            if (quick() && (size_t)n * w * h > 2000000) continue;
            size_t no = (size_t)n * w * h;
            float *low = rand_buf((size_t)n * ls * ls, 20.0f), *out = rand_buf(no, 1.0f), *outr = rand_buf(no, 1.0f);
            o->upsample_bilinear(o, low, out, n, ls, w, h);
            ref_ops->upsample_bilinear(ref_ops, low, outr, n, ls, w, h);
            snprintf(what, sizeof what, "upsample_bilinear[%s] n=%d %d -> %dx%d", isa, n, ls, w, h);
            same_bits(what, out, outr, no);
            free(low); free(out); free(outr);
        }
    }
}

static void test_elementwise_ops(void) {
    setup();
    char what[160];
    const size_t sizes[] = { 1, 17, 4096 * 256, 65536 * 96 + 5 };
    for (int bi = 0; bi < g_nbe; bi++) {
        const samc_ops *o = g_be[bi].ops;
        const char *isa = g_be[bi].isa;
        for (size_t si = 0; si < 4; si++) {
            size_t n = sizes[si];
            float *a = rand_buf(n, 10.0f), *b = rand_buf(n, 10.0f), *d = rand_buf(n, 1.0f), *dr = rand_buf(n, 1.0f);
            o->copy(o, d, a, n);
            snprintf(what, sizeof what, "copy[%s] n=%zu", isa, n);
            same_bits(what, d, a, n);
            /* b repeated over leading dims (nb divides n), and nb == n */
            size_t nbs[2] = { n, n % 256 == 0 ? 256 : 1 };
            for (int k = 0; k < 2; k++) {
                o->add(o, d, a, b, n, nbs[k]);
                ref_ops->add(ref_ops, dr, a, b, n, nbs[k]);
                snprintf(what, sizeof what, "add[%s] n=%zu nb=%zu", isa, n, nbs[k]);
                same_bits(what, d, dr, n);
            }
            memcpy(d, a, n * sizeof(float));
            ref_ops->add(ref_ops, dr, a, b, n, n);
            o->add(o, d, d, b, n, n); /* dst aliasing a */
            snprintf(what, sizeof what, "add[%s] in place n=%zu", isa, n);
            same_bits(what, d, dr, n);
            memcpy(d, a, n * sizeof(float));
            memcpy(dr, a, n * sizeof(float));
            o->relu(o, d, n);
            ref_ops->relu(ref_ops, dr, n);
            snprintf(what, sizeof what, "relu[%s] n=%zu", isa, n);
            same_bits(what, d, dr, n);
            memcpy(d, a, n * sizeof(float));
            memcpy(dr, a, n * sizeof(float));
            o->sigmoid(o, d, n);
            ref_ops->sigmoid(ref_ops, dr, n);
            snprintf(what, sizeof what, "sigmoid[%s] n=%zu", isa, n);
            same_bits(what, d, dr, n);
            free(a); free(b); free(d); free(dr);
        }
        /* add_channel on [C, HW], with and without a */
        const int ac[][2] = { { 256, 4096 }, { 1, 17 }, { 33, 1 } };
        for (size_t i = 0; i < 3; i++) {
            int C = ac[i][0], HW = ac[i][1];
            size_t n = (size_t)C * HW;
            float *a = rand_buf(n, 1.0f), *v = rand_buf((size_t)C, 1.0f), *d = rand_buf(n, 9.0f), *dr = rand_buf(n, 9.0f);
            for (int with_a = 0; with_a < 2; with_a++) {
                o->add_channel(o, d, with_a ? a : NULL, v, C, HW);
                ref_ops->add_channel(ref_ops, dr, with_a ? a : NULL, v, C, HW);
                snprintf(what, sizeof what, "add_channel[%s] C=%d HW=%d a=%d", isa, C, HW, with_a);
                same_bits(what, d, dr, n);
            }
            free(a); free(v); free(d); free(dr);
        }
    }
}

/* ------------------------------------------------------------------ determinism */

/* The same inputs through instances with 1, 2 and 7 threads, twice each: outputs must
 * be bit-identical. */
static void test_determinism(void) {
    setup();
    const int nt[3] = { 1, 2, 7 };
    /* Big enough that every op splits into many tasks at 2 and 7 threads. */
    int M = quick() ? 600 : 2000, N = 300, K = 200;
    int B = 2, H = 3, T = quick() ? 300 : 700, hd = 40, D = H * hd;
    int Cin = 3, S = 128, Cout = 24;
    float *x = rand_buf((size_t)M * K, 1.0f), *w = rand_buf((size_t)N * K, 1.0f), *bias = rand_buf((size_t)N, 1.0f);
    float *q = rand_buf((size_t)B * T * D, 2.0f), *k = rand_buf((size_t)B * T * D, 1.0f), *v = rand_buf((size_t)B * T * D, 1.0f);
    float *img = rand_buf((size_t)Cin * S * S, 1.0f), *cw = rand_buf((size_t)Cout * Cin * 49, 1.0f);
    float *ln = rand_buf((size_t)M * N, 1.0f);
    /* the decoder's few-keys attention: T queries, 7 keys */
    float *k7 = rand_buf((size_t)B * 7 * D, 1.0f), *v7 = rand_buf((size_t)B * 7 * D, 1.0f);
    size_t outn = (size_t)M * N + (size_t)B * T * D * 2 + (size_t)Cout * (S / 4) * (S / 4) * 2 + (size_t)M * N * 2;
    float *first = NULL;
    for (int bi = 0; bi < g_nbe; bi++)
        for (int ti = 0; ti < 3; ti++)
            for (int rep = 0; rep < 2; rep++) {
                samc_ops *o = samc_ops_cpu_fast_create_isa(nt[ti], g_be[bi].isa);
                CHECK(o != NULL);
                if (!o) continue;
                float *out = zero_buf(outn), *p = out;
                o->linear(o, x, w, bias, p, M, N, K);
                p += (size_t)M * N;
                samc_attention_args a = { .batch = B, .heads = H, .n_q = T, .n_kv = T, .head_dim = hd,
                                          .scale = 0.158f, .q = q, .q_sb = (ptrdiff_t)T * D, .q_sh = hd, .q_st = D,
                                          .k = k, .k_sb = (ptrdiff_t)T * D, .k_sh = hd, .k_st = D,
                                          .v = v, .v_sb = (ptrdiff_t)T * D, .v_sh = hd, .v_st = D,
                                          .out = p, .o_sb = (ptrdiff_t)T * D, .o_sh = hd, .o_st = D };
                o->attention(o, &a);
                p += (size_t)B * T * D;
                a.n_kv = 7; a.k = k7; a.v = v7; a.k_sb = a.v_sb = (ptrdiff_t)7 * D; a.out = p;
                o->attention(o, &a);
                p += (size_t)B * T * D;
                o->conv2d(o, img, cw, bias, p, Cin, S, S, Cout, 7, 7, 4, 3);
                o->conv_transpose2x2(o, p, cw, bias, p + (size_t)Cout * (S / 4) * (S / 4), Cout, S / 8, S / 8, 12);
                p += (size_t)Cout * (S / 4) * (S / 4) * 2;
                memcpy(p, ln, (size_t)M * N * sizeof(float));
                o->gelu(o, p, (size_t)M * N);
                o->layer_norm(o, ln, bias, bias, p + (size_t)M * N, M, N, 1e-6f);
                o->layer_norm2d(o, p, x, x, p, N, M, 1e-6f);
                if (ti == 0 && rep == 0) {
                    free(first);
                    first = out;
                } else {
                    size_t diff = 0;
                    for (size_t i = 0; i < outn; i++) diff += memcmp(&out[i], &first[i], sizeof(float)) != 0;
                    CHECKF(diff == 0, "[%s] %d threads run %d: %zu of %zu outputs differ from 1 thread",
                           g_be[bi].isa, nt[ti], rep, diff, outn);
                    free(out);
                }
                samc_ops_cpu_fast_destroy(o);
            }
    free(first); free(x); free(w); free(bias); free(q); free(k); free(v); free(img); free(cw); free(ln);
    free(k7); free(v7);
}

TEST_MAIN(TEST_CASE(test_thread_pool), TEST_CASE(test_create_destroy), TEST_CASE(test_linear),
          TEST_CASE(test_matmul), TEST_CASE(test_gemm_zero_k), TEST_CASE(test_attention),
          TEST_CASE(test_layer_norm), TEST_CASE(test_layer_norm2d), TEST_CASE(test_gelu),
          TEST_CASE(test_conv2d), TEST_CASE(test_conv_transpose2x2), TEST_CASE(test_layout_ops),
          TEST_CASE(test_elementwise_ops), TEST_CASE(test_determinism))
