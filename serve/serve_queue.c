/* serve/serve_queue.c: the task queue and worker threads of `samc serve`: tasks are
 * queued by the HTTP threads (or a job submission), taken in order by the workers (one
 * samc_model each) and waited for until their deadline (see serve_work.h). The queue does
 * not know what a task does: a worker hands it to serve_server.run (serve_server.c). */
#include "serve/serve_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"

/* Frees a task once neither the waiter nor the worker holds it (mu held). */
static void task_unref(serve_server *s, serve_task *t) {
    if (--t->refs > 0) return;
    if (t->slot) t->slot->pins--;
    free(t->body);
    free(t->response);
    serve_predict_req_free(&t->req);
    serve_find_req_free(&t->find);
    free(t);
}


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
            task_unref(s, t);
            continue;
        }
        s->busy++;
        pthread_mutex_unlock(&s->mu);
        s->run(wk, t);
        pthread_mutex_lock(&s->mu);
        s->busy--;
        if (t->abandoned && t->kind != TASK_JOB) s->discarded += t->kind == TASK_PREDICT;
        t->done = 1;
        pthread_cond_broadcast(&s->done_cv);
        task_unref(s, t);
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
        task_unref(s, t);
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
    task_unref(s, t);
    pthread_mutex_unlock(&s->mu);
}

int serve_workers_start(serve_server *s, samc_error *err) {
    for (int i = 0; i < s->cfg.workers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0)
            return samc_error_set(err, SAMC_ERR_INTERNAL, "cannot start worker thread %d", i);
        s->workers[i].started = 1;
    }
    return 0;
}

void serve_workers_stop(serve_server *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; s->workers && i < s->cfg.workers; i++)
        if (s->workers[i].started) pthread_join(s->workers[i].thread, NULL);
    /* the workers drained the queue on their way out */
}
