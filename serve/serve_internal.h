/* serve/serve_internal.h: the shared state of the work side of `samc serve` (see
 * serve_work.h for the rules on memory and deadlines), for the files that split it:
 * serve_server.c (start, stop, what a worker does with a task), serve_queue.c (queue and
 * worker threads), serve_task.c (answers and ids), serve_cache.c (encoded images and the
 * encode task), serve_predict.c (predict answers), serve_jobs.c (jobs).
 * One mutex (serve_server.mu) guards all of it; inference runs outside it. */
#ifndef SAMC_SERVE_INTERNAL_H
#define SAMC_SERVE_INTERNAL_H
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>

#include <cjson/cJSON.h>

#include "serve/serve_parse.h"
#include "serve/serve_work.h"

typedef enum { TASK_ENCODE, TASK_PREDICT, TASK_FIND, TASK_JOB } serve_task_kind;

/* An encoded image of the cache. FREE slots have no id; WRITING ones are being encoded
 * (not findable); READY ones are found by id and evicted least recently used first,
 * never while pinned by a predict. */
enum { SLOT_FREE, SLOT_WRITING, SLOT_READY };
typedef struct {
    samc_image *img;
    int state, pins, w, h;
    char id[SERVE_ID_LEN + 1];
    uint64_t last_used;
} serve_slot;

typedef struct {
    int used;
    serve_job_state state;
    char id[SERVE_ID_LEN + 1];
    int cancel_requested;
    int pending;                /* its task is still in the queue: the record is not reusable */
    int batches_done, batches_total, n_masks;  /* mosaic: tiles done / total */
    int64_t segments;           /* mosaic: segments so far, then in the result */
    double created_ms, started_ms, finished_ms, deadline_ms;
    serve_job_req req;
    char image_path[PATH_MAX];  /* resolved, inside the data folder */
    char out_rel[1100];         /* the output folder relative to the data folder */
    char error[400];
    serve_server *srv;
} serve_job;

struct serve_task {
    serve_task_kind kind;
    struct serve_task *next;
    double deadline_ms;         /* monotonic, util/clock.h */
    int refs;                   /* the waiting HTTP thread and the queue/worker */
    int done, abandoned;
    /* in */
    uint8_t *body;              /* TASK_ENCODE: the image file (owned) */
    size_t body_len;
    serve_slot *slot;           /* TASK_PREDICT, TASK_FIND: the image, pinned while the task lives */
    serve_predict_req req;      /* TASK_PREDICT */
    serve_find_req find;        /* TASK_FIND */
    serve_job *job;             /* TASK_JOB */
    /* out */
    int status;                 /* HTTP status */
    char *response;             /* JSON text, malloc'ed */
};

typedef struct {
    serve_server *srv;
    pthread_t thread;
    int started;
    samc_model *model;
    samc_masks masks;          /* grown to the largest request, reused */
    samc_instances inst;       /* SAM3 finds: the same */
} serve_worker;

struct serve_server {
    serve_config cfg;
    char data_real[PATH_MAX];   /* realpath of --data-dir, "" when none */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    serve_task *head, *tail;
    int depth, stopping, busy;
    serve_worker *workers;
    serve_slot *slots;
    int n_slots;
    size_t image_bytes;
    uint64_t tick;
    serve_job *jobs;
    int64_t timed_out, rejected, discarded;
    samc_model_info info;
    void (*run)(serve_worker *wk, serve_task *t);   /* a task's work, outside mu (serve_server.c) */
};

/* serve_task.c: answers and ids */
/* Sets t's answer to status and {"error": ...}. */
void serve_task_fail(serve_task *t, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The unformatted text of o, which is deleted; NULL when out of memory. */
char *serve_json_take(cJSON *o);
/* 16 random lower-case hex digits. */
void serve_new_id(char out[SERVE_ID_LEN + 1]);

/* serve_queue.c */
/* Queues t (mu held). Returns -1 when the queue is full or the server is stopping. */
int serve_enqueue(serve_server *s, serve_task *t);
/* Starts one thread per worker, each taking tasks from the queue and running them with
 * s->run; stops them (after their current task, the queue drained). */
int serve_workers_start(serve_server *s, samc_error *err);
void serve_workers_stop(serve_server *s);

/* Parts of the server's start and stop (serve_server_new, serve_server_free). */
int serve_jobs_init(serve_server *s, samc_error *err);     /* --data-dir and the job table */
int serve_cache_init(serve_server *s, samc_error *err);    /* the slots, after the models */
void serve_cache_free(serve_server *s);

/* The work of each task kind, run by a worker outside mu; each sets t->status and
 * t->response. */
void serve_run_encode(serve_worker *wk, serve_task *t);    /* serve_cache.c */
void serve_run_predict(serve_worker *wk, serve_task *t);   /* serve_predict.c */
void serve_run_find(serve_worker *wk, serve_task *t);      /* serve_predict.c */
void serve_run_job(serve_worker *wk, serve_task *t);       /* serve_jobs.c */

#endif
