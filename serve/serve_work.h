/* serve/serve_work.h: the work behind the HTTP layer of `samc serve`, as the HTTP layer
 * (serve_http.c) sees it: the bounded task queue and its worker threads (one samc_model
 * each), the cache of encoded images and the job table. The state itself is in
 * serve_internal.h, shared by serve_queue.c, serve_cache.c, serve_predict.c and
 * serve_jobs.c.
 *
 * Memory is planned at start: every worker's model, the cache's encoded images
 * (--cache-mb / bytes per image, allocated up front and reused), the job table (--max-jobs
 * records). A request then only allocates its own body, prompt and answer, all freed when
 * it is answered, so a long run does not grow.
 *
 * Deadlines: a task carries the time it must be answered by. The HTTP thread waits for
 * it at most that long; on expiry it answers 504 and marks the task abandoned, and the
 * worker throws the late result away (an encode gives its cache slot back). samc.h has
 * no way to stop an encode half-way, so a worker stays busy until the call returns; a
 * task still queued at its deadline is dropped without running. Jobs are checked between
 * decoder batches (amg_options.cancelled). */
#ifndef SAMC_SERVE_WORK_H
#define SAMC_SERVE_WORK_H
#include <stddef.h>
#include <stdint.h>

#include "model/samc.h"
#include "serve/serve.h"

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED, JOB_TIMED_OUT, JOB_N_STATES } serve_job_state;
extern const char *const serve_job_state_names[JOB_N_STATES];

typedef struct serve_server serve_server;
typedef struct serve_task serve_task;

/* Loads one model per worker, allocates the cache and job table, starts the workers.
 * Returns NULL with err filled on failure. */
serve_server *serve_server_new(const serve_config *cfg, samc_error *err);
/* Stops the workers (after their current task) and frees everything. */
void serve_server_free(serve_server *s);

/* An upload to encode: takes body (malloc'ed, freed with the task). NULL when out of
 * memory (body is freed then too). deadline_ms is on util/clock.h's clock. */
serve_task *serve_encode_task(uint8_t *body, size_t len, double deadline_ms);
/* A predict (find = 0) or, for a SAM3 model, a find (find = 1) on image `id`: 404 answer
 * in *status / *response when the id is not cached, 400 when the body is malformed or
 * the loaded model is of the other family; NULL then. */
serve_task *serve_predict_task(serve_server *s, const char *id, int find, const char *body, size_t len,
                               double deadline_ms, int *status, char **response);
/* Hands a task to the workers and waits for its answer until its deadline. *status and
 * *response (malloc'ed JSON, caller frees) are filled in every case: 429 when the queue
 * is full, 504 on the deadline, else the worker's answer. The task is consumed. */
void serve_submit_wait(serve_server *s, serve_task *t, int *status, char **response);

/* Forgets a cached image: 204, or 404 / 409 (in use). */
int serve_image_delete(serve_server *s, const char *id, char **response);

/* Jobs: POST / GET / DELETE. Each answers an HTTP status and fills *response. */
int serve_job_submit(serve_server *s, const char *body, size_t len, char **response);
int serve_job_get(serve_server *s, const char *id, char **response);
int serve_job_cancel(serve_server *s, const char *id, char **response);

/* A malloc'ed {"error": msg} (never NULL unless out of memory). */
char *serve_error_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The numbers behind GET /metrics and /healthz. */
typedef struct {
    int queue_depth, queue_cap, workers, workers_busy, threads;
    int cache_slots, cache_used;
    size_t cache_bytes_per_image;
    int jobs[JOB_N_STATES];
    int64_t tasks_timed_out, tasks_rejected, tasks_discarded_late;
    const char *config;
    samc_family family;
    int image_size;
} serve_stats;
void serve_get_stats(serve_server *s, serve_stats *st);
const serve_config *serve_get_config(const serve_server *s);

extern const char serve_page_html[];   /* serve/serve_page.c */

#endif
