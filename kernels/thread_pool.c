/* kernels/thread_pool.c: see thread_pool.h.
 *
 * One job at a time. The caller publishes (fn, ctx, n_tasks) under the mutex, bumps a
 * generation counter and wakes the workers; everyone (caller included) then takes task
 * indices from one atomic counter until they run out. Every worker acknowledges every
 * job by decrementing `pending`, and the caller returns only when pending reaches zero,
 * so no worker can still be touching job g when job g+1 is published. */
#include "kernels/thread_pool.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long an idle thread polls before it sleeps. Long enough to cover the gap between
 * two consecutive ops of a forward pass, short enough not to matter when idle. */
#define SPIN_NS 50000L

typedef struct {
    struct samc_thread_pool *pool;
    int index;
} worker_arg;

struct samc_thread_pool {
    int n_threads;          /* caller + started workers */
    pthread_t *threads;     /* n_threads - 1 workers */
    worker_arg *args;
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* a new job or stop */
    pthread_cond_t done;    /* pending reached zero */
    samc_task_fn fn;        /* the current job, written under mu */
    void *ctx;
    int n_tasks;
    atomic_int next;        /* next task index to hand out */
    atomic_int pending;     /* workers that have not finished the current job */
    atomic_uint gen;        /* job generation */
    atomic_int stop;
};

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void run_tasks(struct samc_thread_pool *p, samc_task_fn fn, void *ctx, int n, int thread) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= n) break;
        fn(ctx, t, thread);
    }
}

/* Idle threads poll for up to SPIN_NS before they sleep; these return 1 when the
 * awaited change happened while polling. */
static int spin_for_job(struct samc_thread_pool *p, unsigned seen) {
    long t0 = now_ns();
    for (int i = 0;; i++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen ||
            atomic_load_explicit(&p->stop, memory_order_acquire)) return 1;
        if ((i & 63) == 63 && now_ns() - t0 > SPIN_NS) return 0;
        CPU_RELAX();
    }
}

static int spin_for_done(struct samc_thread_pool *p) {
    long t0 = now_ns();
    for (int i = 0;; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return 1;
        if ((i & 63) == 63 && now_ns() - t0 > SPIN_NS) return 0;
        CPU_RELAX();
    }
}

static void *worker_main(void *arg_) {
    worker_arg *arg = arg_;
    struct samc_thread_pool *p = arg->pool;
    unsigned seen = 0;
    for (;;) {
        (void)spin_for_job(p, seen);
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
            pthread_cond_wait(&p->wake, &p->mu);
        if (atomic_load(&p->stop)) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = atomic_load(&p->gen);
        samc_task_fn fn = p->fn;
        void *ctx = p->ctx;
        int n = p->n_tasks;
        pthread_mutex_unlock(&p->mu);

        run_tasks(p, fn, ctx, n, arg->index);

        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

samc_thread_pool *samc_thread_pool_create(int n_threads) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    struct samc_thread_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    p->args = calloc((size_t)n_threads, sizeof *p->args);
    if (!p->threads || !p->args) {
        free(p->threads); free(p->args); free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->gen, 0u);
    atomic_init(&p->stop, 0);
    p->n_threads = 1;
    for (int i = 1; i < n_threads; i++) {
        p->args[i - 1] = (worker_arg){ p, i };
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, &p->args[i - 1]) != 0) break;
        p->n_threads++;
    }
    if (p->n_threads < n_threads) {
        /* Fewer threads than asked: report failure rather than run silently slower. */
        samc_thread_pool_destroy(p);
        return NULL;
    }
    return p;
}

void samc_thread_pool_destroy(samc_thread_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->args);
    free(p);
}

int samc_thread_pool_size(const samc_thread_pool *p) { return p ? p->n_threads : 1; }

void samc_thread_pool_parallel_for(samc_thread_pool *p, int n_tasks, samc_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->pending, p->n_threads - 1);
    atomic_fetch_add_explicit(&p->gen, 1u, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_tasks(p, fn, ctx, n_tasks, 0);

    if (spin_for_done(p)) return;
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
