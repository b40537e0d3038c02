/* serve/serve_jobs.c: the jobs of `samc serve`: `samc everything` or `samc mosaic` on a
 * file of --data-dir, run by a worker in the background. The job table (--max-jobs
 * records, allocated at start), POST / GET / DELETE /v1/jobs, the paths checked to stay
 * inside the data folder (util/path_inside.h), progress and cancellation between decoder
 * batches, and the results written into the job's output folder. */
#include "serve/serve_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipelines/amg/amg.h"
#include "util/clock.h"
#include "util/image_io.h"
#include "util/path_inside.h"

const char *const serve_job_state_names[JOB_N_STATES] = { "queued", "running", "done", "failed", "cancelled",
                                                           "timed_out" };

int serve_jobs_init(serve_server *s, samc_error *err) {
    const serve_config *cfg = &s->cfg;
    if (cfg->data_dir && !realpath(cfg->data_dir, s->data_real))
        return samc_error_set(err, SAMC_ERR_IO, "--data-dir '%s': %s", cfg->data_dir, strerror(errno));
    s->jobs = calloc((size_t)cfg->max_jobs, sizeof *s->jobs);
    if (!s->jobs) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %d jobs", cfg->max_jobs);
    /* calloc hands back untouched zero pages that become resident only as job records are
     * first used, which would look like growth hundreds of jobs into a run; touch them
     * now so the table's memory is all there from the start. */
    volatile char *touch = (volatile char *)s->jobs;
    for (size_t o = 0; o < (size_t)cfg->max_jobs * sizeof *s->jobs; o += 4096) touch[o] = 0;
    return 0;
}

/* Called with mu held. */
static serve_job *job_find(serve_server *s, const char *id) {
    for (int i = 0; i < s->cfg.max_jobs; i++)
        if (s->jobs[i].used && !strcmp(s->jobs[i].id, id)) return &s->jobs[i];
    return NULL;
}

static cJSON *job_json(const serve_job *j) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    int mosaic = j->req.type == SERVE_JOB_MOSAIC;
    cJSON_AddStringToObject(o, "type", mosaic ? "mosaic" : "everything");
    cJSON_AddStringToObject(o, "state", serve_job_state_names[j->state]);
    cJSON *p = cJSON_AddObjectToObject(o, "progress");
    cJSON_AddNumberToObject(p, mosaic ? "tiles_done" : "batches_done", j->batches_done);
    cJSON_AddNumberToObject(p, mosaic ? "tiles_total" : "batches_total", j->batches_total);
    if (mosaic) cJSON_AddNumberToObject(p, "segments", (double)j->segments);
    cJSON_AddNumberToObject(p, "fraction", j->state == JOB_DONE ? 1.0
                            : j->batches_total ? (double)j->batches_done / j->batches_total : 0.0);
    cJSON_AddStringToObject(o, "image", j->req.image);
    cJSON_AddStringToObject(o, "output", j->out_rel);
    if (j->state == JOB_DONE) {
        char res[1200];
        if (mosaic) {
            /* stats.json is written unless the job switched it off; the folder has the rest */
            snprintf(res, sizeof res, "%s/%s", j->out_rel, j->req.mosaic.save_stats ? "stats.json" : "");
            cJSON_AddStringToObject(o, "result", res);
            cJSON_AddNumberToObject(o, "segments", (double)j->segments);
#ifdef SAMC_HAVE_GDAL
            if (j->req.mosaic.n_classes > 0) {
                cJSON *cl = cJSON_AddArrayToObject(o, "classes");
                for (int i = 0; i < j->req.mosaic.n_classes; i++)
                    cJSON_AddItemToArray(cl, cJSON_CreateString(mosaic_class_name(&j->req.mosaic, i)));
            }
#endif
        } else {
            snprintf(res, sizeof res, "%s/masks.json", j->out_rel);
            cJSON_AddStringToObject(o, "result", res);
            cJSON_AddNumberToObject(o, "masks", j->n_masks);
        }
    }
    if (j->error[0]) cJSON_AddStringToObject(o, "error", j->error);
    double now = monotonic_ms();
    cJSON_AddNumberToObject(o, "queued_s", ((j->started_ms > 0 ? j->started_ms : j->finished_ms > 0 ? j->finished_ms : now) - j->created_ms) / 1e3);
    if (j->started_ms > 0)
        cJSON_AddNumberToObject(o, "run_s", ((j->finished_ms > 0 ? j->finished_ms : now) - j->started_ms) / 1e3);
    return o;
}

/* ---- paths inside the data folder ---------------------------------------------------- */

/* The job's image: resolved inside the data folder (util/path_inside.h) into out
 * (PATH_MAX bytes) and a regular file. Returns 0 or the HTTP status of the refusal. */
static int check_image(const serve_server *s, const char *rel, char *out, char *why, size_t ws) {
    path_verdict v = path_resolve_inside(s->data_real, rel, PATH_EXISTING, out, PATH_MAX, why, ws);
    if (v == PATH_OUTSIDE) {
        /* the check's own message names the data folder's real path: not for clients */
        snprintf(why, ws, "'%.200s' resolves outside the data folder", rel);
        return 403;
    }
    if (v != PATH_INSIDE) return v == PATH_MISSING ? 404 : 403;
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, ws, "'%.200s' is not a regular file", rel);
        return 400;
    }
    return 0;
}

/* The output folder of a new job: inside the data folder; only its last component may be
 * missing (it is created when the job runs). Returns 0 or the HTTP status. */
static int check_output(const serve_server *s, const char *rel, char *why, size_t ws) {
    char resolved[PATH_MAX], sub[400];
    path_verdict v = path_resolve_inside(s->data_real, rel, PATH_MAY_BE_NEW, resolved, sizeof resolved, sub, sizeof sub);
    if (v == PATH_INSIDE) return 0;
    if (v == PATH_OUTSIDE) {
        snprintf(why, ws, "output '%.200s' resolves outside the data folder", rel);
        return 403;
    }
    snprintf(why, ws, "output %.300s", sub);
    return 400;
}

/* Creates the job's output folder and puts its real path in dir (PATH_MAX bytes). The
 * folder is checked again here, before and after mkdir, because the tree may have
 * changed since the job was accepted. */
static int job_output_dir(serve_server *s, serve_job *j, char *dir, char *why, size_t ws) {
    char planned[PATH_MAX], sub[400];
    path_verdict v = path_resolve_inside(s->data_real, j->out_rel, PATH_MAY_BE_NEW, planned, sizeof planned, sub,
                                         sizeof sub);
    if (v == PATH_INSIDE && mkdir(planned, 0755) != 0 && errno != EEXIST) {
        snprintf(why, ws, "cannot create output folder '%.200s': %s", j->out_rel, strerror(errno));
        return -1;
    }
    if (v == PATH_INSIDE) v = path_resolve_inside(s->data_real, j->out_rel, PATH_EXISTING, dir, PATH_MAX, sub, sizeof sub);
    if (v == PATH_INSIDE) return 0;
    if (v == PATH_OUTSIDE) snprintf(why, ws, "output folder '%.200s' resolves outside the data folder", j->out_rel);
    else snprintf(why, ws, "output folder %.300s", sub);
    return -1;
}

/* DIR/name opened for writing without following a symlink planted there. */
static int job_open_output(serve_server *s, serve_job *j, const char *name, char *why, size_t ws) {
    char dir[PATH_MAX];
    if (job_output_dir(s, j, dir, why, ws) != 0) return -1;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) snprintf(why, ws, "cannot write '%.200s/%s': %s", j->out_rel, name, strerror(errno));
    return fd;
}

/* ---- POST / GET / DELETE ------------------------------------------------------------- */

/* A free record, else the oldest finished one; NULL when all are in use (mu held). */
static serve_job *job_take(serve_server *s) {
    serve_job *j = NULL;
    for (int i = 0; i < s->cfg.max_jobs && !j; i++)
        if (!s->jobs[i].used) j = &s->jobs[i];
    for (int i = 0; i < s->cfg.max_jobs; i++) {
        serve_job *c = &s->jobs[i];
        if (c->pending || c->state < JOB_DONE) continue;
        if (!j || (j->used && c->finished_ms < j->finished_ms)) j = c;
    }
    return j;
}

/* Fills a taken record for req (mu held). */
static void job_fill(serve_server *s, serve_job *j, const serve_job_req *req, const char *image_path) {
    memset(j, 0, sizeof *j);
    j->used = 1;
    j->srv = s;
    j->state = JOB_QUEUED;
    j->req = *req;
    serve_new_id(j->id);
    snprintf(j->image_path, sizeof j->image_path, "%s", image_path);
    if (req->output[0]) {
        snprintf(j->out_rel, sizeof j->out_rel, "%s", req->output);
    } else {
        /* beside the image: <image without extension>_masks_<id> */
        const char *base = strrchr(req->image, '/');
        const char *dot = strrchr(base ? base : req->image, '.');
        int stem = dot && dot != (base ? base + 1 : req->image) ? (int)(dot - req->image) : (int)strlen(req->image);
        snprintf(j->out_rel, sizeof j->out_rel, "%.*s_%s_%s", stem, req->image,
                 req->type == SERVE_JOB_MOSAIC ? "mosaic" : "masks", j->id);
    }
    j->created_ms = monotonic_ms();
    double timeout = req->timeout_s > 0 && req->timeout_s < s->cfg.job_timeout_s ? req->timeout_s : s->cfg.job_timeout_s;
    j->deadline_ms = j->created_ms + timeout * 1e3;
    j->pending = 1;
}

int serve_job_submit(serve_server *s, const char *body, size_t len, char **response) {
    if (!s->data_real[0]) {
        *response = serve_error_json("jobs are disabled: the server was started without --data-dir");
        return 403;
    }
    serve_job_req req;
    char why[400], image_path[PATH_MAX];
    if (serve_parse_job(body, len, &req, why, sizeof why) != 0) {
        *response = serve_error_json("%s", why);
        return 400;
    }
#ifdef SAMC_HAVE_GDAL
    int classes = req.type == SERVE_JOB_MOSAIC && req.mosaic.n_classes > 0;
    if (req.type == SERVE_JOB_MOSAIC && classes != (s->info.family == SAMC_FAMILY_SAM3)) {
        *response = serve_error_json(classes ? "the loaded model (%s) is SAM2.1: \"text\" classes need SAM3 weights; "
                                               "without \"text\" the mosaic segments everything"
                                             : "the loaded model (%s) is SAM3: give the classes to find with \"text\" "
                                               "(\"roof\" or [\"roof\", \"tree\"])", s->info.config);
        return 400;
    }
#endif
    if (req.type == SERVE_JOB_EVERYTHING && s->info.family == SAMC_FAMILY_SAM3) {
        *response = serve_error_json("the loaded model (%s) is SAM3: \"everything\" jobs need SAM2.1 weights; "
                                     "find every instance of a concept with POST /v1/images/{id}/find", s->info.config);
        return 400;
    }
    int st = check_image(s, req.image, image_path, why, sizeof why);
    if (st == 0 && req.output[0]) st = check_output(s, req.output, why, sizeof why);
    if (st != 0) {
        *response = serve_error_json("%s", why);
        return st;
    }
    serve_task *t = calloc(1, sizeof *t);
    if (!t) {
        *response = serve_error_json("out of memory");
        return 500;
    }
    pthread_mutex_lock(&s->mu);
    serve_job *j = job_take(s);
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        free(t);
        *response = serve_error_json("job table full (%d unfinished jobs): retry later", s->cfg.max_jobs);
        return 429;
    }
    job_fill(s, j, &req, image_path);
    t->kind = TASK_JOB;
    t->job = j;
    t->refs = 1;
    t->deadline_ms = j->deadline_ms;
    int status = 202;
    if (serve_enqueue(s, t) != 0) {
        s->rejected++;
        j->used = 0;
        free(t);
        *response = serve_error_json("queue full (%d tasks waiting): retry later", s->cfg.queue_cap);
        status = 429;
    } else {
        *response = serve_json_take(job_json(j));
    }
    pthread_mutex_unlock(&s->mu);
    return status;
}

int serve_job_get(serve_server *s, const char *id, char **response) {
    pthread_mutex_lock(&s->mu);
    serve_job *j = job_find(s, id);
    *response = j ? serve_json_take(job_json(j)) : serve_error_json("no job with id '%s'", id);
    pthread_mutex_unlock(&s->mu);
    return j ? 200 : 404;
}
int serve_job_cancel(serve_server *s, const char *id, char **response) {
    pthread_mutex_lock(&s->mu);
    serve_job *j = job_find(s, id);
    int status = 200;
    if (!j) {
        status = 404;
        *response = serve_error_json("no job with id '%s'", id);
    } else if (j->state >= JOB_DONE) {
        status = 409;
        *response = serve_error_json("job '%s' already finished (%s)", id, serve_job_state_names[j->state]);
    } else {
        j->cancel_requested = 1;
        if (j->state == JOB_QUEUED) {
            /* the worker skips it when it reaches the head of the queue */
            j->state = JOB_CANCELLED;
            j->finished_ms = monotonic_ms();
            snprintf(j->error, sizeof j->error, "cancelled");
        }
        /* a running job stops after its current decoder batch; the answer says so */
        cJSON *o = job_json(j);
        cJSON_AddBoolToObject(o, "cancel_requested", 1);
        *response = serve_json_take(o);
    }
    pthread_mutex_unlock(&s->mu);
    return status;
}

/* ---- running a job ------------------------------------------------------------------- */

static int job_cancelled(void *ctx) {
    serve_job *j = ctx;
    pthread_mutex_lock(&j->srv->mu);
    int stop = j->cancel_requested || monotonic_ms() > j->deadline_ms || j->srv->stopping;
    pthread_mutex_unlock(&j->srv->mu);
    return stop;
}

static void job_progress(void *ctx, int done, int total) {
    serve_job *j = ctx;
    pthread_mutex_lock(&j->srv->mu);
    j->batches_done = done;
    j->batches_total = total;
    pthread_mutex_unlock(&j->srv->mu);
}

/* DIR/masks.json: the records of `samc everything` (uncompressed RLE, official keys). */
static int job_write_masks(serve_server *s, serve_job *j, const amg_result *r, char *why, size_t ws) {
    int fd = job_open_output(s, j, "masks.json", why, ws);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        snprintf(why, ws, "cannot write masks.json: %s", strerror(errno));
        return -1;
    }
    amg_write_json(f, r);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        snprintf(why, ws, "cannot write masks.json: %s", strerror(errno));
        return -1;
    }
    return 0;
}

#ifdef SAMC_HAVE_GDAL
static void job_mosaic_progress(void *ctx, const mosaic_progress *p) {
    serve_job *j = ctx;
    pthread_mutex_lock(&j->srv->mu);
    j->batches_done = p->tiles_done;
    j->batches_total = p->tiles_total;
    j->segments = p->segments;
    pthread_mutex_unlock(&j->srv->mu);
}

/* A mosaic job: `samc mosaic IMAGE OUTPUT` on the worker's model, into the output folder
 * created (and checked to resolve) inside the data folder. */
static int run_mosaic_job(serve_worker *wk, serve_job *j, char *why, size_t ws) {
    serve_server *s = wk->srv;
    char dir[PATH_MAX];
    if (job_output_dir(s, j, dir, why, ws) != 0) return -1;
    mosaic_callbacks cb = { .progress = job_mosaic_progress, .progress_ctx = j, .cancelled = job_cancelled,
                            .cancel_ctx = j };
    mosaic_result res;
    samc_error err = { 0 };
    for (int i = 0; i < j->req.mosaic.n_classes; i++) {   /* the texts, on the worker that has the tokenizer */
        samc_text_tokens tok;
        const char *text = mosaic_class_name(&j->req.mosaic, i);
        const char *bad = samc_text_tokenize(wk->model, text, &tok, &err) ? err.msg
                          : tok.invalid_utf8 ? "not valid UTF-8"
                          : tok.n_tokens <= 2 ? "empty (or only spaces)"
                          : tok.n_words == 0 ? "no letter or digit" : NULL;
        if (bad) {
            snprintf(why, ws, "text \"%.80s\": %.250s%s", text, bad,
                     err.status == SAMC_ERR_UNSUPPORTED ? " (start samc serve with --vocab)" : "");
            return -1;
        }
    }
    if (mosaic_run(wk->model, j->image_path, dir, &j->req.mosaic, &cb, &res, &err) != 0) {
        snprintf(why, ws, "mosaic: %.300s", err.msg);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    j->segments = res.segments;
    pthread_mutex_unlock(&s->mu);
    return 0;
}
#endif

void serve_run_job(serve_worker *wk, serve_task *t) {
    serve_server *s = wk->srv;
    serve_job *j = t->job;
    char why[400] = "";
    image_rgb img = { 0 };
    amg_result r = { 0 };
    serve_job_state end = JOB_FAILED;
    if (j->req.type == SERVE_JOB_MOSAIC) {
#ifdef SAMC_HAVE_GDAL
        if (run_mosaic_job(wk, j, why, sizeof why) == 0) end = JOB_DONE;
#else
        snprintf(why, sizeof why, "this samc was built without GDAL");
#endif
        goto done;
    }
    if (image_load_rgb(j->image_path, &img, why, sizeof why) != 0) goto done;
    if (img.w > s->cfg.max_side || img.h > s->cfg.max_side || (int64_t)img.w * img.h > s->cfg.max_pixels) {
        snprintf(why, sizeof why, "image is %dx%d; the limits are %d per side and %lld pixels", img.w, img.h,
                 s->cfg.max_side, (long long)s->cfg.max_pixels);
        goto done;
    }
    amg_options o = j->req.amg;
    o.progress = job_progress;
    o.progress_ctx = j;
    o.cancelled = job_cancelled;
    o.cancel_ctx = j;
    samc_error err = { 0 };
    if (amg_generate_samc(wk->model, img.rgb, img.w, img.h, &o, &r, &err) != 0) {
        snprintf(why, sizeof why, "everything: %.300s", err.msg);
        goto done;
    }
    if (job_write_masks(s, j, &r, why, sizeof why) != 0) goto done;
    end = JOB_DONE;
done:
    pthread_mutex_lock(&s->mu);
    if (end != JOB_DONE) {
        if (j->cancel_requested) end = JOB_CANCELLED;
        else if (monotonic_ms() > j->deadline_ms) end = JOB_TIMED_OUT;
    }
    if (end == JOB_TIMED_OUT) s->timed_out++;
    j->state = end;
    j->n_masks = r.n_masks;
    j->finished_ms = monotonic_ms();
    snprintf(j->error, sizeof j->error, "%s", end == JOB_DONE ? "" : end == JOB_CANCELLED ? "cancelled"
                                               : end == JOB_TIMED_OUT ? "timed out" : why);
    pthread_mutex_unlock(&s->mu);
    amg_result_free(&r);
    image_free(&img);
}
