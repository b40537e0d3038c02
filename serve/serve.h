/* serve/serve.h: the parts of `samc serve` behind the HTTP layer (serve/serve_work.c):
 * the bounded task queue, the worker threads (one samc_model each), the cache of encoded
 * images and the job table. serve/cmd_serve.c owns the sockets and turns requests into
 * tasks.
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
#ifndef SAMC_SERVE_H
#define SAMC_SERVE_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "model/samc.h"
#include "serve/serve_parse.h"

typedef struct {
    const char *model, *host, *data_dir, *token;
    int port, workers, threads, queue_cap, max_jobs, verbose;
    double timeout_s, job_timeout_s;
    long cache_mb;
    size_t max_body;            /* bytes of a request body */
    int64_t max_pixels;         /* of an uploaded or job image */
    int max_side;
    samc_backend backend;
    samc_precision precision;
} serve_config;

typedef enum { TASK_ENCODE, TASK_PREDICT, TASK_JOB } serve_task_kind;
typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED, JOB_TIMED_OUT, JOB_N_STATES } serve_job_state;

typedef struct serve_slot serve_slot;
typedef struct serve_job serve_job;

typedef struct serve_task {
    serve_task_kind kind;
    struct serve_task *next;
    double deadline_ms;         /* monotonic, cli_now_ms() */
    int refs;                   /* the waiting HTTP thread and the queue/worker */
    int done, abandoned;
    /* in */
    uint8_t *body;              /* TASK_ENCODE: the image file (owned) */
    size_t body_len;
    serve_slot *slot;           /* TASK_PREDICT: the image, pinned while the task lives */
    serve_predict_req req;      /* TASK_PREDICT */
    serve_job *job;             /* TASK_JOB */
    /* out */
    int status;                 /* HTTP status */
    char *response;             /* JSON text, malloc'ed */
} serve_task;

typedef struct serve_server serve_server;

/* Loads one model per worker, allocates the cache and job table, starts the workers.
 * Returns NULL with err filled on failure. */
serve_server *serve_server_new(const serve_config *cfg, samc_error *err);
/* Stops the workers (after their current task) and frees everything. */
void serve_server_free(serve_server *s);

/* Hands a task to the workers and waits for its answer until its deadline. *status and
 * *response (malloc'ed JSON, caller frees) are filled in every case: 429 when the queue
 * is full, 504 on the deadline, else the worker's answer. The task is consumed. */
void serve_submit_wait(serve_server *s, serve_task *t, int *status, char **response);

/* Builds a predict task for image `id`: 404 answer in *status / *response when the id is
 * not cached, 400 when the body is malformed; NULL then. */
serve_task *serve_predict_task(serve_server *s, const char *id, const char *body, size_t len,
                               int *status, char **response);
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
    int queue_depth, queue_cap, workers, workers_busy;
    int cache_slots, cache_used;
    size_t cache_bytes_per_image;
    int jobs[JOB_N_STATES];
    int64_t tasks_timed_out, tasks_rejected, tasks_discarded_late;
    const char *config;
    int image_size;
} serve_stats;
void serve_get_stats(serve_server *s, serve_stats *st);
const serve_config *serve_get_config(const serve_server *s);

extern const char serve_page_html[];   /* serve/serve_page.c */

#endif
