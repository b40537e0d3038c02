/* serve/serve_server.c: the life cycle of the work side of `samc serve`: start (the job
 * table, one model per worker, the image cache, the worker threads) and stop, what a
 * worker does with each kind of task, and the numbers behind /metrics and /healthz. */
#include "serve/serve_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    st->family = s->info.family;
    st->image_size = s->info.image_size;
}

const serve_config *serve_get_config(const serve_server *s) { return &s->cfg; }

/* One model per worker, loaded before any thread starts. */
static int load_models(serve_server *s, samc_error *err) {
    const serve_config *cfg = &s->cfg;
    s->workers = calloc((size_t)cfg->workers, sizeof *s->workers);
    if (!s->workers) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %d workers", cfg->workers);
    samc_options opt = { .backend = cfg->backend, .precision = cfg->precision, .n_threads = cfg->threads,
                         .log = cfg->log, .log_ctx = cfg->log_ctx, .vocab_path = cfg->vocab };
    for (int i = 0; i < cfg->workers; i++) {
        s->workers[i].srv = s;
        if (!(s->workers[i].model = samc_model_load(cfg->model, &opt, err))) return -1;
    }
    samc_model_get_info(s->workers[0].model, &s->info);
    return 0;
}

/* What a worker does with a task it took from the queue. */
static void run_task(serve_worker *wk, serve_task *t) {
    if (t->kind == TASK_ENCODE) serve_run_encode(wk, t);
    else if (t->kind == TASK_PREDICT) serve_run_predict(wk, t);
    else if (t->kind == TASK_FIND) serve_run_find(wk, t);
    else serve_run_job(wk, t);
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
    s->run = run_task;
    if (serve_jobs_init(s, err) != 0 || load_models(s, err) != 0 || serve_cache_init(s, err) != 0 ||
        serve_workers_start(s, err) != 0)
        goto fail;
    return s;
fail:
    serve_server_free(s);
    return NULL;
}

void serve_server_free(serve_server *s) {
    if (!s) return;
    serve_workers_stop(s);
    serve_cache_free(s);
    for (int i = 0; s->workers && i < s->cfg.workers; i++) {
        samc_masks_free(&s->workers[i].masks);
        samc_instances_free(&s->workers[i].inst);
        samc_model_free(s->workers[i].model);
    }
    free(s->workers);
    free(s->jobs);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
