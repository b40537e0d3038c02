/* serve/serve_queue.c: the task queue and worker threads of `samc serve`, and the server's
 * life cycle (start, stop, the numbers behind /metrics): tasks are queued by the HTTP
 * threads, taken in order by the workers (one samc_model each), and waited for until
 * their deadline (see serve_work.h). What each task kind does is in serve_cache.c
 * (encode), serve_predict.c (predict) and serve_jobs.c (jobs). */
#include "serve/serve_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/clock.h"

/* ---- small helpers ----------------------------------------------------------------- */

static char *vjson_error(const char *fmt, va_list ap) {
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    return serve_json_take(o);
}

char *serve_error_json(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *t = vjson_error(fmt, ap);
    va_end(ap);
    return t;
}

void serve_task_fail(serve_task *t, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    free(t->response);
    t->response = vjson_error(fmt, ap);
    va_end(ap);
    t->status = status;
}

char *serve_json_take(cJSON *o) {
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

/* 16 hex digits from the kernel's random source: ids are not guessable, so one client
 * cannot reach another's images by counting. */
void serve_new_id(char out[SERVE_ID_LEN + 1]) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)out;
    }
    snprintf(out, SERVE_ID_LEN + 1, "%016llx", (unsigned long long)v);
}

void serve_task_unref(serve_server *s, serve_task *t) {
    if (--t->refs > 0) return;
    if (t->slot) t->slot->pins--;
    free(t->body);
    free(t->response);
    serve_predict_req_free(&t->req);
    free(t);
}

/* ---- the queue and the workers ------------------------------------------------------ */

int serve_enqueue(serve_server *s, serve_task *t) {
    if (s->depth >= s->cfg.queue_cap || s->stopping) return -1;
    t->next = NULL;
    if (s->tail) s->tail->next = t;
    else s->head = t;
    s->tail = t;
    s->depth++;
    pthread_cond_signal(&s->work_cv);
    return 0;
}

/* Whether the task at the head of the queue is to be dropped instead of run: abandoned
 * by its waiter, past its deadline, the server stopping, or a job cancelled while
 * queued. A job's state moves on here either way (mu held). */
static int skip_task(serve_server *s, serve_task *t) {
    double now = monotonic_ms();
    int skip = t->abandoned || s->stopping || now > t->deadline_ms;
    if (t->kind != TASK_JOB) return skip;
    serve_job *j = t->job;
    j->pending = 0;
    if (j->state != JOB_QUEUED) return 1;     /* cancelled while queued */
    if (skip) {
        j->state = s->stopping ? JOB_CANCELLED : JOB_TIMED_OUT;
        j->finished_ms = now;
        snprintf(j->error, sizeof j->error, "%s", s->stopping ? "server stopping" : "timed out in the queue");
        if (!s->stopping) s->timed_out++;
    } else {
        j->state = JOB_RUNNING;
        j->started_ms = now;
    }
    return skip;
}

static void *worker_main(void *arg) {
    serve_worker *wk = arg;
    serve_server *s = wk->srv;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping) pthread_cond_wait(&s->work_cv, &s->mu);
        if (!s->head) break;     /* stopping and nothing left */
        serve_task *t = s->head;
        s->head = t->next;
        if (!s->head) s->tail = NULL;
        s->depth--;
        if (skip_task(s, t)) {
            /* the waiter (if any) answers 504 itself; nothing to compute */
            t->done = 1;
            if (t->kind != TASK_JOB) serve_task_fail(t, 504, "timed out in the queue");
            pthread_cond_broadcast(&s->done_cv);
            serve_task_unref(s, t);
            continue;
        }
        s->busy++;
        pthread_mutex_unlock(&s->mu);
        if (t->kind == TASK_ENCODE) serve_run_encode(wk, t);
        else if (t->kind == TASK_PREDICT) serve_run_predict(wk, t);
        else serve_run_job(wk, t);
        pthread_mutex_lock(&s->mu);
        s->busy--;
        if (t->abandoned && t->kind != TASK_JOB) s->discarded += t->kind == TASK_PREDICT;
        t->done = 1;
        pthread_cond_broadcast(&s->done_cv);
        serve_task_unref(s, t);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void serve_submit_wait(serve_server *s, serve_task *t, int *status, char **response) {
    t->refs = 2;
    pthread_mutex_lock(&s->mu);
    if (serve_enqueue(s, t) != 0) {
        s->rejected++;
        t->refs = 1;
        serve_task_unref(s, t);
        pthread_mutex_unlock(&s->mu);
        *status = 429;
        *response = serve_error_json("queue full (%d tasks waiting): retry later", s->cfg.queue_cap);
        return;
    }
    struct timespec until;
    double wait_ms = t->deadline_ms - monotonic_ms();
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (wait_ms < 0) wait_ms = 0;
    until.tv_sec += (time_t)(wait_ms / 1000.0);
    until.tv_nsec += (long)(fmod(wait_ms, 1000.0) * 1e6);
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    while (!t->done) {
        if (pthread_cond_timedwait(&s->done_cv, &s->mu, &until) == ETIMEDOUT && !t->done) break;
    }
    if (t->done && t->status != 504) {
        *status = t->status;
        *response = t->response;
        t->response = NULL;
    } else {
        t->abandoned = 1;
        s->timed_out++;
        *status = 504;
        *response = serve_error_json("timed out after %g s (--timeout)", s->cfg.timeout_s);
    }
    serve_task_unref(s, t);
    pthread_mutex_unlock(&s->mu);
}

/* ---- life cycle ---------------------------------------------------------------------- */

void serve_get_stats(serve_server *s, serve_stats *st) {
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&s->mu);
    st->queue_depth = s->depth;
    st->queue_cap = s->cfg.queue_cap;
    st->workers = s->cfg.workers;
    st->threads = s->cfg.threads;
    st->workers_busy = s->busy;
    st->cache_slots = s->n_slots;
    for (int i = 0; i < s->n_slots; i++) st->cache_used += s->slots[i].state != SLOT_FREE;
    st->cache_bytes_per_image = s->image_bytes;
    for (int i = 0; i < s->cfg.max_jobs; i++)
        if (s->jobs[i].used) st->jobs[s->jobs[i].state]++;
    st->tasks_timed_out = s->timed_out;
    st->tasks_rejected = s->rejected;
    st->tasks_discarded_late = s->discarded;
    pthread_mutex_unlock(&s->mu);
    st->config = s->info.config;
    st->image_size = s->info.image_size;
}

const serve_config *serve_get_config(const serve_server *s) { return &s->cfg; }

/* One model per worker, loaded before any thread starts. */
static int load_models(serve_server *s, samc_error *err) {
    const serve_config *cfg = &s->cfg;
    s->workers = calloc((size_t)cfg->workers, sizeof *s->workers);
    if (!s->workers) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %d workers", cfg->workers);
    samc_options opt = { .backend = cfg->backend, .precision = cfg->precision, .n_threads = cfg->threads,
                         .log = cfg->log, .log_ctx = cfg->log_ctx };
    for (int i = 0; i < cfg->workers; i++) {
        s->workers[i].srv = s;
        if (!(s->workers[i].model = samc_model_load(cfg->model, &opt, err))) return -1;
    }
    samc_model_get_info(s->workers[0].model, &s->info);
    return 0;
}

serve_server *serve_server_new(const serve_config *cfg, samc_error *err) {
    serve_server *s = calloc(1, sizeof *s);
    if (!s) {
        samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    /* deadlines are computed on the monotonic clock */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (serve_jobs_init(s, err) != 0 || load_models(s, err) != 0 || serve_cache_init(s, err) != 0) goto fail;
    for (int i = 0; i < cfg->workers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            samc_error_set(err, SAMC_ERR_INTERNAL, "cannot start worker thread %d", i);
            goto fail;
        }
        s->workers[i].started = 1;
    }
    return s;
fail:
    serve_server_free(s);
    return NULL;
}

void serve_server_free(serve_server *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; s->workers && i < s->cfg.workers; i++)
        if (s->workers[i].started) pthread_join(s->workers[i].thread, NULL);
    /* the workers drained the queue on their way out */
    serve_cache_free(s);
    for (int i = 0; s->workers && i < s->cfg.workers; i++) {
        samc_masks_free(&s->workers[i].masks);
        samc_model_free(s->workers[i].model);
    }
    free(s->workers);
    free(s->jobs);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
