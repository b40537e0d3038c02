/* kernels/thread_pool.h: a small pthread pool for the CPU kernels (never OpenMP).
 *
 * samc_thread_pool_parallel_for(pool, n, fn, ctx) calls fn(ctx, task, thread) once for
 * every task in [0, n) and returns when all have finished. The calling thread works too,
 * so a pool of n_threads has n_threads - 1 worker threads; thread indices are
 * 0 .. n_threads-1 (0 is the caller) and are meant for picking per-thread scratch.
 * Tasks are handed out dynamically, so which thread runs a task varies from run to run:
 * a task's result must depend only on its index (write disjoint outputs, no reductions
 * across tasks) for the outcome to be deterministic.
 *
 * Between jobs the workers spin briefly (a few microseconds, so back-to-back ops do not
 * pay a wake-up each) and then sleep on a condition variable: an idle pool burns no CPU.
 *
 * Thread safety: one pool serves one calling thread at a time (parallel_for is not
 * reentrant: do not call it from inside a task, nor on the same pool from two threads).
 * Different pools are independent. */
#ifndef SAMC_THREAD_POOL_H
#define SAMC_THREAD_POOL_H

typedef struct samc_thread_pool samc_thread_pool;
typedef void (*samc_task_fn)(void *ctx, int task, int thread);

/* n_threads <= 0: one per online core. Returns NULL when threads or memory cannot be had. */
samc_thread_pool *samc_thread_pool_create(int n_threads);
/* Joins every worker. NULL is accepted. */
void samc_thread_pool_destroy(samc_thread_pool *pool);
/* Threads that run tasks, the caller included (>= 1). */
int samc_thread_pool_size(const samc_thread_pool *pool);
void samc_thread_pool_parallel_for(samc_thread_pool *pool, int n_tasks, samc_task_fn fn, void *ctx);

#endif
