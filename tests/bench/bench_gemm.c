/* tests/bench/bench_gemm.c: GFLOP/s of cpu_fast's GEMM, attention and conv on the
 * SAM2.1 shapes that dominate the image encoder, against cpu_ref and against the FMA
 * peak of this machine (measured with an independent-FMA loop on every thread).
 * Build and run: make bench-ops   (optional argument: threads, default all cores). */
#include "kernels/cpu_fast_kernels.h"
#include "kernels/ops.h"
#include "kernels/thread_pool.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process: on a shared machine, work per CPU-second shows the
 * kernels' efficiency per core even when the wall clock is stretched by other load. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *rnd(size_t n) {
    float *p = malloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) { s = s * 1664525u + 1013904223u; p[i] = (float)(s >> 8) / 8388608.0f - 1.0f; }
    return p;
}

/* Peak: 10 independent FMA chains of 8 lanes per thread (enough to cover the FMA
 * latency on two pipes), run on every thread of a pool. */
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void fma_loop(void *ctx, int task, int thread) {
    double *out = ctx;
    __m256 a[10];
#pragma GCC unroll 10
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (long it = 0; it < 20000000; it++)
#pragma GCC unroll 10
        for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    float s = 0;
    for (int i = 0; i < 10; i++) s += _mm256_cvtss_f32(a[i]);
    out[task] = s;
}
#endif

static double peak_gflops(int n_threads, double *per_cpu) {
#if defined(__x86_64__)
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    samc_thread_pool *p = samc_thread_pool_create(n_threads);
    double sink[256] = { 0 };
    int n = samc_thread_pool_size(p);
    double t = now_s(), tc = cpu_s();
    samc_thread_pool_parallel_for(p, n < 256 ? n : 256, fma_loop, sink);
    t = now_s() - t;
    tc = cpu_s() - tc;
    samc_thread_pool_destroy(p);
    double flop = 20000000.0 * 10 * 16 * (n < 256 ? n : 256);
    if (per_cpu) *per_cpu = flop / tc / 1e9;
    return flop / t / 1e9;
#else
    if (per_cpu) *per_cpu = 0;
    return 0;
#endif
}

typedef struct { const char *name; int M, N, K; } gemm_shape;

/* One op call on prepared buffers. */
typedef struct {
    int kind; /* 0 linear, 1 attention, 2 conv2d */
    int M, N, K;
    float *x, *w, *b, *y;
    samc_attention_args att;
    int Cin, S, Cout, kk, st, pad;
    double flop;
} bench_case;

static void run_case(const samc_ops *o, bench_case *c) {
    if (c->kind == 0) o->linear(o, c->x, c->w, c->b, c->y, c->M, c->N, c->K);
    else if (c->kind == 1) o->attention(o, &c->att);
    else o->conv2d(o, c->x, c->w, c->b, c->y, c->Cin, c->S, c->S, c->Cout, c->kk, c->kk, c->st, c->pad);
}

/* Best of `reps` timed calls after a warm-up: GFLOP/s of wall time, and GFLOP per
 * CPU-second in *per_cpu. */
static double measure(const samc_ops *o, bench_case *c, int reps, double *per_cpu) {
    run_case(o, c);
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = now_s(), tc = cpu_s();
        run_case(o, c);
        t = now_s() - t;
        tc = cpu_s() - tc;
        if (t < best) best = t;
        if (tc < best_cpu) best_cpu = tc;
    }
    if (per_cpu) *per_cpu = c->flop / best_cpu / 1e9;
    return c->flop / best / 1e9;
}

static bench_case make_linear(int M, int N, int K) {
    bench_case c = { .kind = 0, .M = M, .N = N, .K = K };
    c.x = rnd((size_t)M * K); c.w = rnd((size_t)N * K); c.b = rnd(N); c.y = rnd((size_t)M * N);
    c.flop = 2.0 * M * N * K;
    return c;
}

static bench_case make_attention(int B, int H, int nq, int nkv, int hd) {
    int D = H * hd;
    bench_case c = { .kind = 1 };
    c.x = rnd((size_t)B * nq * D); c.w = rnd((size_t)B * nkv * D); c.b = rnd((size_t)B * nkv * D);
    c.y = rnd((size_t)B * nq * D);
    c.att = (samc_attention_args){ .batch = B, .heads = H, .n_q = nq, .n_kv = nkv, .head_dim = hd,
                                   .scale = 0.1f, .q = c.x, .q_sb = (ptrdiff_t)nq * D, .q_sh = hd, .q_st = D,
                                   .k = c.w, .k_sb = (ptrdiff_t)nkv * D, .k_sh = hd, .k_st = D,
                                   .v = c.b, .v_sb = (ptrdiff_t)nkv * D, .v_sh = hd, .v_st = D,
                                   .out = c.y, .o_sb = (ptrdiff_t)nq * D, .o_sh = hd, .o_st = D };
    c.flop = 4.0 * B * H * nq * nkv * hd;
    return c;
}

static bench_case make_conv(int Cin, int S, int Cout, int kk, int st, int pad) {
    int So = (S + 2 * pad - kk) / st + 1;
    bench_case c = { .kind = 2, .Cin = Cin, .S = S, .Cout = Cout, .kk = kk, .st = st, .pad = pad };
    c.x = rnd((size_t)Cin * S * S); c.w = rnd((size_t)Cout * Cin * kk * kk); c.b = rnd(Cout);
    c.y = rnd((size_t)Cout * So * So);
    c.flop = 2.0 * Cout * So * So * Cin * kk * kk;
    return c;
}

static void free_case(bench_case *c) { free(c->x); free(c->w); free(c->b); free(c->y); }

static double peak_all, peak_one;

/* big: for fast paths; small: the same op scaled down for the slow scalar / reference. */
static void report(const char *name, samc_ops *fast, samc_ops *fast1, samc_ops *scalar, const samc_ops *ref,
                   bench_case big, bench_case small) {
    double cpu_all, cpu_one, g = measure(fast, &big, 5, &cpu_all);
    (void)measure(fast1, &big, 3, &cpu_one);
    double gs = measure(scalar, &small, 2, NULL);
    double gr = measure(ref, &small, 1, NULL);
    printf("%-34s %8.1f %6.0f%% %8.1f %8.1f %6.0f%% %8.1f %8.2f\n", name, g, peak_all > 0 ? 100 * g / peak_all : 0,
           cpu_all, cpu_one, peak_one > 0 ? 100 * cpu_one / peak_one : 0, gs, gr);
    fflush(stdout);
    free_case(&big);
    free_case(&small);
}

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : 0;
    samc_ops *fast = samc_ops_cpu_fast_create(nt);
    samc_ops *fast1 = samc_ops_cpu_fast_create(1);
    samc_ops *scalar = samc_ops_cpu_fast_create_isa(nt, "scalar");
    const samc_ops *ref = samc_ops_cpu_ref();
    if (!fast || !fast1 || !scalar) { fprintf(stderr, "cannot create cpu_fast\n"); return 1; }
    int threads = samc_thread_pool_size(NULL);
    {
        samc_thread_pool *p = samc_thread_pool_create(nt);
        threads = samc_thread_pool_size(p);
        samc_thread_pool_destroy(p);
    }
    double peak1_cpu;
    peak_all = peak_gflops(nt, NULL);
    peak_one = peak_gflops(1, &peak1_cpu);
    peak_one = peak1_cpu;
    printf("cpu_fast isa %s, %d threads; FMA peak measured now: %.1f GFLOP/s wall with %d threads, "
           "%.1f GFLOP per CPU-second on one thread\n", samc_ops_cpu_fast_isa(), threads, peak_all, threads, peak_one);
    printf("columns: wall GFLOP/s with all threads and %% of the wall FMA peak measured just before;\n"
           "GFLOP per CPU-second with all threads and with one (%% of one core's peak): the kernels'\n"
           "efficiency, which other load on the machine does not distort; portable kernels and cpu_ref (wall)\n");
    printf("%-34s %8s %7s %8s %8s %7s %8s %8s\n", "op", "GFLOP/s", "%peak", "cpu/all", "cpu/1thr", "%core",
           "scalar", "cpu_ref");

    const gemm_shape shapes[] = {
        { "hiera-t s0 qkv 65536x96->288", 65536, 288, 96 },
        { "hiera-t s0 mlp 65536x96->384", 65536, 384, 96 },
        { "hiera-t s0 mlp 65536x384->96", 65536, 96, 384 },
        { "hiera-t s1 qkv 16384x192->576", 16384, 576, 192 },
        { "hiera-t s2 qkv 4096x384->1152", 4096, 1152, 384 },
        { "hiera-t s2 mlp 4096x1536->384", 4096, 384, 1536 },
        { "hiera-t s3 mlp 1024x768->3072", 1024, 3072, 768 },
        { "hiera-l s3 mlp 1024x1152->4608", 1024, 4608, 1152 },
        { "decoder 4096x256->128", 4096, 128, 256 },
        { "decoder tokens 10x256->2048", 10, 2048, 256 },
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const gemm_shape *s = &shapes[i];
        report(s->name, fast, fast1, scalar, ref, make_linear(s->M, s->N, s->K),
               make_linear(s->M < 64 ? s->M : 64, s->N, s->K));
    }
    struct { const char *name; int B, H, nq, nkv, hd; } att[] = {
        { "attn global 64x64 4h hd96", 1, 4, 4096, 4096, 96 },
        { "attn windows 8x8 x1024 hd96", 1024, 1, 64, 64, 96 },
        { "attn windows 14x14 x25 4h hd96", 25, 4, 196, 196, 96 },
        { "attn dec tok->img 8h hd16", 1, 8, 7, 4096, 16 },
        { "attn dec img->tok 8h hd16", 1, 8, 4096, 7, 16 },
    };
    for (size_t i = 0; i < sizeof att / sizeof att[0]; i++)
        report(att[i].name, fast, fast1, scalar, ref, make_attention(att[i].B, att[i].H, att[i].nq, att[i].nkv, att[i].hd),
               make_attention(1, 1, att[i].nq < 64 ? att[i].nq : 64, att[i].nkv, att[i].hd));
    report("patch embed 7x7s4 3->96 @1024", fast, fast1, scalar, ref, make_conv(3, 1024, 96, 7, 4, 3),
           make_conv(3, 64, 96, 7, 4, 3));
    samc_ops_cpu_fast_destroy(fast);
    samc_ops_cpu_fast_destroy(fast1);
    samc_ops_cpu_fast_destroy(scalar);
    return 0;
}
