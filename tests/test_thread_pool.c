/* tests/test_thread_pool.c: kernels/thread_pool.c (every task runs exactly once, on a
 * thread index in range, for pools of 1, 2, 7 and one-per-core threads; create / destroy
 * churn) and cpu_fast's create / destroy. The ops themselves are checked by
 * tests/test_backend_ops.c. */
#include "kernels/cpu_fast_kernels.h"
#include "kernels/ops.h"
#include "kernels/thread_pool.h"
#include "tests/test.h"
#include <stdatomic.h>

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
    CHECKF(strcmp(isa, "avx512") == 0 || strcmp(isa, "avx2+fma") == 0 || strcmp(isa, "scalar") == 0, "isa \"%s\"", isa);
}

TEST_MAIN(TEST_CASE(test_thread_pool), TEST_CASE(test_create_destroy))
