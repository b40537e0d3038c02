/* serve/serve_work.c: queue, workers, encoded-image cache and jobs of `samc serve`
 * (see serve.h for the memory and deadline rules). One mutex guards all shared state;
 * inference runs outside it. */
#include "serve/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <stb_image.h>
#include <stb_image_write.h>

#include "pipelines/amg/amg.h"
#include "tools/cli_util.h"
#include "util/image_io.h"

/* An encoded image of the cache. FREE slots have no id; WRITING ones are being encoded
 * (not findable); READY ones are found by id and evicted least recently used first,
 * never while pinned by a predict. */
enum { SLOT_FREE, SLOT_WRITING, SLOT_READY };
struct serve_slot {
    samc_image *img;
    int state, pins, w, h;
    char id[SERVE_ID_LEN + 1];
    uint64_t last_used;
};

struct serve_job {
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
};

typedef struct {
    serve_server *srv;
    pthread_t thread;
    int started;
    samc_model *model;
    samc_masks masks;          /* grown to the largest request, reused */
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
};

static const char *const job_state_names[JOB_N_STATES] = { "queued", "running", "done", "failed",
                                                            "cancelled", "timed_out" };

/* ---- small helpers ----------------------------------------------------------------- */

static char *vjson_error(const char *fmt, va_list ap) {
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

char *serve_error_json(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *t = vjson_error(fmt, ap);
    va_end(ap);
    return t;
}

static void task_fail(serve_task *t, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void task_fail(serve_task *t, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    free(t->response);
    t->response = vjson_error(fmt, ap);
    va_end(ap);
    t->status = status;
}

static char *json_take(cJSON *o) {
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

/* 16 hex digits from the kernel's random source: ids are not guessable, so one client
 * cannot reach another's images by counting. */
static void new_id(char out[SERVE_ID_LEN + 1]) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)out;
    }
    snprintf(out, SERVE_ID_LEN + 1, "%016llx", (unsigned long long)v);
}

/* Called with mu held. */
static serve_slot *slot_find(serve_server *s, const char *id) {
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].state == SLOT_READY && !strcmp(s->slots[i].id, id)) return &s->slots[i];
    return NULL;
}

static serve_job *job_find(serve_server *s, const char *id) {
    for (int i = 0; i < s->cfg.max_jobs; i++)
        if (s->jobs[i].used && !strcmp(s->jobs[i].id, id)) return &s->jobs[i];
    return NULL;
}

/* Frees a task once neither the waiter nor the worker holds it; called with mu held. */
static void task_unref(serve_server *s, serve_task *t) {
    if (--t->refs > 0) return;
    if (t->slot) t->slot->pins--;
    free(t->body);
    free(t->response);
    serve_predict_req_free(&t->req);
    free(t);
}

/* ---- image decoding ---------------------------------------------------------------- */

/* Width and height from a PNG's IHDR: stb_image only says "unknown image type" for PNGs
 * it finds too large, and this lets the answer say what the file claims. */
static int png_dims(const uint8_t *b, size_t n, int64_t *w, int64_t *h) {
    static const uint8_t sig[16] = { 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 'I', 'H', 'D', 'R' };
    if (n < 24 || memcmp(b, sig, sizeof sig) != 0) return 0;
    *w = (int64_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
    *h = (int64_t)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
    return 1;
}

/* Decodes an uploaded image within the server's limits; the header is checked before
 * anything is allocated. Answers 4xx in t on failure. */
static uint8_t *decode_upload(serve_server *s, serve_task *t, int *w, int *h) {
    const serve_config *c = &s->cfg;
    int64_t pw = 0, ph = 0;
    if (t->body_len > INT_MAX) {
        task_fail(t, 413, "image of %zu bytes is too large", t->body_len);
        return NULL;
    }
    if (png_dims(t->body, t->body_len, &pw, &ph) &&
        (pw <= 0 || ph <= 0 || pw > c->max_side || ph > c->max_side || pw * ph > c->max_pixels)) {
        task_fail(t, 413, "PNG header claims %lldx%lld pixels; the limits are %d per side and %lld pixels",
                  (long long)pw, (long long)ph, c->max_side, (long long)c->max_pixels);
        return NULL;
    }
    int iw = 0, ih = 0, comp = 0;
    if (!stbi_info_from_memory(t->body, (int)t->body_len, &iw, &ih, &comp)) {
        task_fail(t, 415, "not a PNG or JPEG image (%zu bytes; stb_image: %s)", t->body_len, stbi_failure_reason());
        return NULL;
    }
    if (iw <= 0 || ih <= 0 || iw > c->max_side || ih > c->max_side || (int64_t)iw * ih > c->max_pixels) {
        task_fail(t, 413, "image header claims %dx%d pixels; the limits are %d per side and %lld pixels", iw, ih,
                  c->max_side, (long long)c->max_pixels);
        return NULL;
    }
    int dw = 0, dh = 0, dc = 0;
    uint8_t *rgb = stbi_load_from_memory(t->body, (int)t->body_len, &dw, &dh, &dc, 3);
    if (!rgb) {
        task_fail(t, 400, "cannot decode the %dx%d image (truncated or corrupt; stb_image: %s)", iw, ih,
                  stbi_failure_reason());
        return NULL;
    }
    if (dw != iw || dh != ih) {
        stbi_image_free(rgb);
        task_fail(t, 400, "decoded size %dx%d differs from the header's %dx%d", dw, dh, iw, ih);
        return NULL;
    }
    *w = dw;
    *h = dh;
    return rgb;
}

/* ---- the three kinds of work --------------------------------------------------------- */

static void run_encode(serve_worker *wk, serve_task *t) {
    serve_server *s = wk->srv;
    int w = 0, h = 0;
    uint8_t *rgb = decode_upload(s, t, &w, &h);
    free(t->body);          /* the file is not needed once decoded */
    t->body = NULL;
    if (!rgb) return;
    /* a slot: a free one, else the least recently used one nobody is reading */
    pthread_mutex_lock(&s->mu);
    serve_slot *slot = NULL;
    for (int i = 0; i < s->n_slots && !slot; i++)
        if (s->slots[i].state == SLOT_FREE) slot = &s->slots[i];
    for (int i = 0; i < s->n_slots && !slot; i++) {
        serve_slot *c = &s->slots[i];
        if (c->state == SLOT_READY && c->pins == 0) {
            serve_slot *lru = c;
            for (int j = i + 1; j < s->n_slots; j++)
                if (s->slots[j].state == SLOT_READY && s->slots[j].pins == 0 && s->slots[j].last_used < lru->last_used)
                    lru = &s->slots[j];
            slot = lru;
        }
    }
    if (slot) {
        slot->state = SLOT_WRITING;
        slot->id[0] = '\0';
    }
    pthread_mutex_unlock(&s->mu);
    if (!slot) {
        stbi_image_free(rgb);
        task_fail(t, 503, "image cache full: all %d cached images are in use (raise --cache-mb)", s->n_slots);
        return;
    }
    samc_error err = { 0 };
    int rc = samc_image_encode(wk->model, slot->img, rgb, w, h, &err);
    stbi_image_free(rgb);
    pthread_mutex_lock(&s->mu);
    if (rc != 0 || t->abandoned) {
        /* an abandoned upload was already answered 504: nobody will ever use this id */
        slot->state = SLOT_FREE;
        if (t->abandoned) s->discarded++;
    } else {
        new_id(slot->id);
        slot->w = w;
        slot->h = h;
        slot->last_used = ++s->tick;
        slot->state = SLOT_READY;
    }
    char id[SERVE_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", slot->id);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        task_fail(t, err.status == SAMC_ERR_ARG ? 400 : 500, "encode: %s", err.msg);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "width", w);
    cJSON_AddNumberToObject(o, "height", h);
    t->response = json_take(o);
    t->status = t->response ? 201 : 500;
}

typedef struct {
    uint8_t *data;
    size_t n, cap;
    int failed;
} byte_buf;

static void buf_write(void *ctx, void *data, int size) {
    byte_buf *b = ctx;
    if (b->failed || size <= 0) return;
    if (b->n + (size_t)size > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 4096);
        while (cap < b->n + (size_t)size) cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p) { b->failed = 1; return; }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

static char *base64_of(const void *data, size_t n) {
    char *s = malloc(4 * ((n + 2) / 3) + 1);
    if (s) serve_base64_encode(data, n, s);
    return s;
}

/* One mask as {"size": [h, w], "counts": [...]} (column-major runs starting with 0s, as
 * `samc everything` writes them) or as a base64 8-bit PNG (0 / 255). */
static cJSON *mask_json(const uint8_t *mask, int w, int h, int format, uint8_t *gray) {
    if (format == SERVE_FMT_PNG) {
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) gray[i] = mask[i] ? 255 : 0;
        byte_buf b = { 0 };
        int ok = stbi_write_png_to_func(buf_write, &b, w, h, 1, gray, w) && !b.failed;
        char *s = ok ? base64_of(b.data, b.n) : NULL;
        free(b.data);
        cJSON *v = s ? cJSON_CreateString(s) : NULL;
        free(s);
        return v;
    }
    uint32_t *counts = NULL;
    int64_t nc = 0;
    samc_error err = { 0 };
    if (amg_rle_encode(mask, w, h, 0, 0, w, h, &counts, &nc, &err) != 0) return NULL;
    /* Written as text and added raw: one cJSON number per run costs an allocation and a
     * %1.15g print each, which made RLE answers several times slower than PNG ones. */
    size_t cap = 64 + 11 * (size_t)nc, n = 0;
    char *text = malloc(cap);
    if (!text) {
        free(counts);
        return NULL;
    }
    n += (size_t)snprintf(text, cap, "{\"size\":[%d,%d],\"counts\":[", h, w);
    for (int64_t i = 0; i < nc; i++) {
        char digits[10];
        int k = 0;
        uint32_t v = counts[i];
        do digits[k++] = (char)('0' + v % 10); while ((v /= 10) != 0);
        if (i) text[n++] = ',';
        while (k) text[n++] = digits[--k];
    }
    memcpy(text + n, "]}", 3);
    free(counts);
    cJSON *o = cJSON_CreateRaw(text);
    free(text);
    return o;
}

static void run_predict(serve_worker *wk, serve_task *t) {
    const serve_predict_req *r = &t->req;
    int n_prompts = r->n_boxes > 0 ? r->n_boxes : 1;
    samc_prompt prompts[SERVE_MAX_BOXES];
    for (int b = 0; b < n_prompts; b++)
        prompts[b] = (samc_prompt){ .points = r->n_points ? &r->points[0][0] : NULL,
                                    .labels = r->n_points ? r->labels : NULL,
                                    .n_points = r->n_points,
                                    .box = r->n_boxes ? r->boxes[b] : NULL,
                                    .mask_input = r->mask_input };
    samc_predict_options po = { .multimask = r->multimask, .want_masks = 1 };
    samc_error err = { 0 };
    samc_masks *out = &wk->masks;
    if (samc_predict(wk->model, t->slot->img, prompts, n_prompts, &po, out, &err) != 0) {
        task_fail(t, err.status == SAMC_ERR_ARG ? 400 : 500, "predict: %s", err.msg);
        return;
    }
    int w = out->width, h = out->height, nm = out->batch * out->n_masks;
    size_t plane = (size_t)w * h;
    uint8_t *gray = r->format == SERVE_FMT_PNG ? malloc(plane) : NULL;
    if (r->format == SERVE_FMT_PNG && !gray) {
        task_fail(t, 500, "out of memory for a %dx%d mask", w, h);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *masks = cJSON_AddArrayToObject(o, "masks");
    cJSON *iou = cJSON_AddArrayToObject(o, "iou");
    int ok = masks && iou;
    for (int k = 0; k < nm && ok; k++) {
        cJSON *m = mask_json(out->masks + plane * k, w, h, r->format, gray);
        ok = m != NULL;
        if (m) cJSON_AddItemToArray(masks, m);
        cJSON_AddItemToArray(iou, cJSON_CreateNumber(out->iou[k]));
    }
    free(gray);
    cJSON_AddNumberToObject(o, "width", w);
    cJSON_AddNumberToObject(o, "height", h);
    cJSON_AddNumberToObject(o, "prompts", out->batch);
    cJSON_AddNumberToObject(o, "masks_per_prompt", out->n_masks);
    cJSON_AddStringToObject(o, "format", r->format == SERVE_FMT_PNG ? "png" : "rle");
    cJSON *os = cJSON_AddArrayToObject(o, "object_score");
    for (int b = 0; b < out->batch; b++) cJSON_AddItemToArray(os, cJSON_CreateNumber(out->object_score[b]));
    if (r->return_low_res && ok) {
        /* each prompt's best mask (highest predicted IoU, first on ties), ready to send
         * back as "mask_input" */
        cJSON *lr = cJSON_AddArrayToObject(o, "low_res");
        size_t ls2 = (size_t)out->low_size * out->low_size;
        for (int b = 0; b < out->batch && ok; b++) {
            int best = 0;
            for (int j = 1; j < out->n_masks; j++)
                if (out->iou[b * out->n_masks + j] > out->iou[b * out->n_masks + best]) best = j;
            char *s = base64_of(out->low_res + ls2 * ((size_t)b * out->n_masks + best), ls2 * sizeof(float));
            ok = s != NULL;
            if (s) cJSON_AddItemToArray(lr, cJSON_CreateString(s));
            free(s);
        }
        cJSON_AddNumberToObject(o, "low_res_size", out->low_size);
    }
    if (!ok) {
        cJSON_Delete(o);
        task_fail(t, 500, "out of memory encoding %d masks", nm);
        return;
    }
    t->response = json_take(o);
    t->status = t->response ? 200 : 500;
}

static int job_cancelled(void *ctx) {
    serve_job *j = ctx;
    pthread_mutex_lock(&j->srv->mu);
    int stop = j->cancel_requested || cli_now_ms() > j->deadline_ms || j->srv->stopping;
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

/* Creates the job's output folder inside the data folder and opens DIR/name for writing
 * without following a symlink planted there. */
static int job_open_output(serve_server *s, serve_job *j, const char *name, char *why, size_t ws) {
    char dir[PATH_MAX + 1200], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", s->data_real, j->out_rel);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(why, ws, "cannot create output folder '%.200s': %s", j->out_rel, strerror(errno));
        return -1;
    }
    size_t n = strlen(s->data_real);
    if (!realpath(dir, real) || strncmp(real, s->data_real, n) != 0 || real[n] != '/') {
        snprintf(why, ws, "output folder '%.200s' resolves outside the data folder", j->out_rel);
        return -1;
    }
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", real, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) snprintf(why, ws, "cannot write '%.200s/%s': %s", j->out_rel, name, strerror(errno));
    return fd;
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
    fputc('[', f);
    for (int k = 0; k < r->n_masks; k++) {
        const amg_mask *m = &r->masks[k];
        fprintf(f, "%s{\"segmentation\":{\"size\":[%d,%d],\"counts\":[", k ? "," : "", r->height, r->width);
        for (int64_t i = 0; i < m->n_counts; i++) fprintf(f, i ? ",%u" : "%u", m->counts[i]);
        fprintf(f, "]},\"area\":%lld,\"bbox\":[%d,%d,%d,%d],\"predicted_iou\":%.9g,\"point_coords\":[[%.9g,%.9g]],"
                   "\"stability_score\":%.9g,\"crop_box\":[%d,%d,%d,%d]}",
                (long long)m->area, m->box[0], m->box[1], m->box[2] - m->box[0], m->box[3] - m->box[1],
                m->predicted_iou, m->point[0], m->point[1], m->stability_score, m->crop_box[0], m->crop_box[1],
                m->crop_box[2] - m->crop_box[0], m->crop_box[3] - m->crop_box[1]);
    }
    fputs("]\n", f);
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
    char dir[PATH_MAX + 1200], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", s->data_real, j->out_rel);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(why, ws, "cannot create output folder '%.200s': %s", j->out_rel, strerror(errno));
        return -1;
    }
    size_t n = strlen(s->data_real);
    if (!realpath(dir, real) || strncmp(real, s->data_real, n) != 0 || real[n] != '/') {
        snprintf(why, ws, "output folder '%.200s' resolves outside the data folder", j->out_rel);
        return -1;
    }
    mosaic_callbacks cb = { .progress = job_mosaic_progress, .progress_ctx = j, .cancelled = job_cancelled,
                            .cancel_ctx = j };
    mosaic_result res;
    samc_error err = { 0 };
    if (mosaic_run(wk->model, j->image_path, real, &j->req.mosaic, &cb, &res, &err) != 0) {
        snprintf(why, ws, "mosaic: %.300s", err.msg);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    j->segments = res.segments;
    pthread_mutex_unlock(&s->mu);
    return 0;
}
#endif

static void run_job(serve_worker *wk, serve_task *t) {
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
        else if (cli_now_ms() > j->deadline_ms) end = JOB_TIMED_OUT;
    }
    if (end == JOB_TIMED_OUT) s->timed_out++;
    j->state = end;
    j->n_masks = r.n_masks;
    j->finished_ms = cli_now_ms();
    snprintf(j->error, sizeof j->error, "%s", end == JOB_DONE ? "" : end == JOB_CANCELLED ? "cancelled"
                                               : end == JOB_TIMED_OUT ? "timed out" : why);
    pthread_mutex_unlock(&s->mu);
    amg_result_free(&r);
    image_free(&img);
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
        double now = cli_now_ms();
        int skip = t->abandoned || s->stopping || now > t->deadline_ms;
        if (t->kind == TASK_JOB) {
            serve_job *j = t->job;
            j->pending = 0;
            if (j->state != JOB_QUEUED) skip = 1;     /* cancelled while queued */
            else if (skip) {
                j->state = s->stopping ? JOB_CANCELLED : JOB_TIMED_OUT;
                j->finished_ms = now;
                snprintf(j->error, sizeof j->error, "%s", s->stopping ? "server stopping" : "timed out in the queue");
                if (!s->stopping) s->timed_out++;
            } else {
                j->state = JOB_RUNNING;
                j->started_ms = now;
            }
        }
        if (skip) {
            /* the waiter (if any) answers 504 itself; nothing to compute */
            t->done = 1;
            if (t->kind != TASK_JOB) task_fail(t, 504, "timed out in the queue");
            pthread_cond_broadcast(&s->done_cv);
            task_unref(s, t);
            continue;
        }
        s->busy++;
        pthread_mutex_unlock(&s->mu);
        if (t->kind == TASK_ENCODE) run_encode(wk, t);
        else if (t->kind == TASK_PREDICT) run_predict(wk, t);
        else run_job(wk, t);
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

/* ---- submission ---------------------------------------------------------------------- */

/* Queues t (mu held). Returns -1 when the queue is full. */
static int enqueue(serve_server *s, serve_task *t) {
    if (s->depth >= s->cfg.queue_cap || s->stopping) return -1;
    t->next = NULL;
    if (s->tail) s->tail->next = t;
    else s->head = t;
    s->tail = t;
    s->depth++;
    pthread_cond_signal(&s->work_cv);
    return 0;
}

void serve_submit_wait(serve_server *s, serve_task *t, int *status, char **response) {
    t->refs = 2;
    pthread_mutex_lock(&s->mu);
    if (enqueue(s, t) != 0) {
        s->rejected++;
        t->refs = 1;
        task_unref(s, t);
        pthread_mutex_unlock(&s->mu);
        *status = 429;
        *response = serve_error_json("queue full (%d tasks waiting): retry later", s->cfg.queue_cap);
        return;
    }
    struct timespec until;
    double wait_ms = t->deadline_ms - cli_now_ms();
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

serve_task *serve_predict_task(serve_server *s, const char *id, const char *body, size_t len,
                               int *status, char **response) {
    pthread_mutex_lock(&s->mu);
    serve_slot *slot = slot_find(s, id);
    int w = 0, h = 0;
    if (slot) {
        slot->pins++;              /* kept from eviction until the task is freed */
        slot->last_used = ++s->tick;
        w = slot->w;
        h = slot->h;
    }
    pthread_mutex_unlock(&s->mu);
    if (!slot) {
        *status = 404;
        *response = serve_error_json("no image with id '%s' (never uploaded, deleted or evicted from the cache)", id);
        return NULL;
    }
    serve_task *t = calloc(1, sizeof *t);
    char why[300];
    if (!t || serve_parse_predict(body, len, w, h, s->info.image_size / 4, &t->req, why, sizeof why) != 0) {
        *status = t ? 400 : 500;
        *response = t ? serve_error_json("%s", why) : serve_error_json("out of memory");
        pthread_mutex_lock(&s->mu);
        slot->pins--;
        pthread_mutex_unlock(&s->mu);
        free(t);
        return NULL;
    }
    t->kind = TASK_PREDICT;
    t->slot = slot;
    t->deadline_ms = cli_now_ms() + s->cfg.timeout_s * 1e3;
    return t;
}

int serve_image_delete(serve_server *s, const char *id, char **response) {
    pthread_mutex_lock(&s->mu);
    serve_slot *slot = slot_find(s, id);
    int status = 204;
    if (!slot) status = 404;
    else if (slot->pins) status = 409;
    else {
        slot->state = SLOT_FREE;
        slot->id[0] = '\0';
    }
    pthread_mutex_unlock(&s->mu);
    *response = status == 404 ? serve_error_json("no image with id '%s'", id)
              : status == 409 ? serve_error_json("image '%s' is in use by a running predict", id) : NULL;
    return status;
}

static cJSON *job_json(const serve_job *j) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    int mosaic = j->req.type == SERVE_JOB_MOSAIC;
    cJSON_AddStringToObject(o, "type", mosaic ? "mosaic" : "everything");
    cJSON_AddStringToObject(o, "state", job_state_names[j->state]);
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
        } else {
            snprintf(res, sizeof res, "%s/masks.json", j->out_rel);
            cJSON_AddStringToObject(o, "result", res);
            cJSON_AddNumberToObject(o, "masks", j->n_masks);
        }
    }
    if (j->error[0]) cJSON_AddStringToObject(o, "error", j->error);
    double now = cli_now_ms();
    cJSON_AddNumberToObject(o, "queued_s", ((j->started_ms > 0 ? j->started_ms : j->finished_ms > 0 ? j->finished_ms : now) - j->created_ms) / 1e3);
    if (j->started_ms > 0)
        cJSON_AddNumberToObject(o, "run_s", ((j->finished_ms > 0 ? j->finished_ms : now) - j->started_ms) / 1e3);
    return o;
}

/* Resolves rel inside the data folder with realpath (so a symlink cannot lead out) and
 * checks the prefix; the file must exist. */
static int resolve_inside(const serve_server *s, const char *rel, char *out, char *why, size_t ws) {
    char joined[PATH_MAX + 1100];
    snprintf(joined, sizeof joined, "%s/%s", s->data_real, rel);
    if (!realpath(joined, out)) {
        snprintf(why, ws, "'%.200s': %s", rel, strerror(errno));
        return errno == ENOENT ? 404 : 403;
    }
    size_t n = strlen(s->data_real);
    if (strncmp(out, s->data_real, n) != 0 || out[n] != '/') {
        snprintf(why, ws, "'%.200s' resolves outside the data folder", rel);
        return 403;
    }
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, ws, "'%.200s' is not a regular file", rel);
        return 400;
    }
    return 0;
}

/* The output folder's parent must already exist inside the data folder. */
static int check_output_parent(const serve_server *s, const char *rel, char *why, size_t ws) {
    char parent[PATH_MAX + 1100], real[PATH_MAX];
    snprintf(parent, sizeof parent, "%s/%s", s->data_real, rel);
    char *slash = strrchr(parent, '/');
    *slash = '\0';
    if (!realpath(parent, real)) {
        snprintf(why, ws, "output parent folder of '%.200s': %s", rel, strerror(errno));
        return 400;
    }
    size_t n = strlen(s->data_real);
    if (strncmp(real, s->data_real, n) != 0 || (real[n] != '/' && real[n] != '\0')) {
        snprintf(why, ws, "output '%.200s' resolves outside the data folder", rel);
        return 403;
    }
    return 0;
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
    int st = resolve_inside(s, req.image, image_path, why, sizeof why);
    if (st == 0 && req.output[0]) st = check_output_parent(s, req.output, why, sizeof why);
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
    /* a free record, else the oldest finished one */
    serve_job *j = NULL;
    for (int i = 0; i < s->cfg.max_jobs && !j; i++)
        if (!s->jobs[i].used) j = &s->jobs[i];
    for (int i = 0; i < s->cfg.max_jobs; i++) {
        serve_job *c = &s->jobs[i];
        if (c->pending || c->state < JOB_DONE) continue;
        if (!j || (j->used && c->finished_ms < j->finished_ms)) j = c;
    }
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        free(t);
        *response = serve_error_json("job table full (%d unfinished jobs): retry later", s->cfg.max_jobs);
        return 429;
    }
    memset(j, 0, sizeof *j);
    j->used = 1;
    j->srv = s;
    j->state = JOB_QUEUED;
    j->req = req;
    new_id(j->id);
    snprintf(j->image_path, sizeof j->image_path, "%s", image_path);
    if (req.output[0]) {
        snprintf(j->out_rel, sizeof j->out_rel, "%s", req.output);
    } else {
        /* beside the image: <image without extension>_masks_<id> */
        const char *base = strrchr(req.image, '/');
        const char *dot = strrchr(base ? base : req.image, '.');
        int stem = dot && dot != (base ? base + 1 : req.image) ? (int)(dot - req.image) : (int)strlen(req.image);
        snprintf(j->out_rel, sizeof j->out_rel, "%.*s_%s_%s", stem, req.image,
                 req.type == SERVE_JOB_MOSAIC ? "mosaic" : "masks", j->id);
    }
    j->created_ms = cli_now_ms();
    double timeout = req.timeout_s > 0 && req.timeout_s < s->cfg.job_timeout_s ? req.timeout_s : s->cfg.job_timeout_s;
    j->deadline_ms = j->created_ms + timeout * 1e3;
    t->kind = TASK_JOB;
    t->job = j;
    t->refs = 1;
    t->deadline_ms = j->deadline_ms;
    j->pending = 1;
    int status = 202;
    if (enqueue(s, t) != 0) {
        s->rejected++;
        j->used = 0;
        free(t);
        *response = serve_error_json("queue full (%d tasks waiting): retry later", s->cfg.queue_cap);
        status = 429;
    } else {
        *response = json_take(job_json(j));
    }
    pthread_mutex_unlock(&s->mu);
    return status;
}

int serve_job_get(serve_server *s, const char *id, char **response) {
    pthread_mutex_lock(&s->mu);
    serve_job *j = job_find(s, id);
    *response = j ? json_take(job_json(j)) : serve_error_json("no job with id '%s'", id);
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
        *response = serve_error_json("job '%s' already finished (%s)", id, job_state_names[j->state]);
    } else {
        j->cancel_requested = 1;
        if (j->state == JOB_QUEUED) {
            /* the worker skips it when it reaches the head of the queue */
            j->state = JOB_CANCELLED;
            j->finished_ms = cli_now_ms();
            snprintf(j->error, sizeof j->error, "cancelled");
        }
        /* a running job stops after its current decoder batch; the answer says so */
        cJSON *o = job_json(j);
        cJSON_AddBoolToObject(o, "cancel_requested", 1);
        *response = json_take(o);
    }
    pthread_mutex_unlock(&s->mu);
    return status;
}

/* ---- life cycle ---------------------------------------------------------------------- */

void serve_get_stats(serve_server *s, serve_stats *st) {
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&s->mu);
    st->queue_depth = s->depth;
    st->queue_cap = s->cfg.queue_cap;
    st->workers = s->cfg.workers;
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

serve_server *serve_server_new(const serve_config *cfg, samc_error *err) {
    serve_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
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
    if (cfg->data_dir && !realpath(cfg->data_dir, s->data_real)) {
        snprintf(err->msg, sizeof err->msg, "--data-dir '%s': %s", cfg->data_dir, strerror(errno));
        goto fail;
    }
    s->workers = calloc((size_t)cfg->workers, sizeof *s->workers);
    s->jobs = calloc((size_t)cfg->max_jobs, sizeof *s->jobs);
    if (!s->workers || !s->jobs) {
        snprintf(err->msg, sizeof err->msg, "out of memory for %d workers and %d jobs", cfg->workers, cfg->max_jobs);
        goto fail;
    }
    /* calloc hands back untouched zero pages that become resident only as job records are
     * first used, which would look like growth hundreds of jobs into a run; touch them
     * now so the table's memory is all there from the start. */
    volatile char *touch = (volatile char *)s->jobs;
    for (size_t o = 0; o < (size_t)cfg->max_jobs * sizeof *s->jobs; o += 4096) touch[o] = 0;
    samc_options opt = { .backend = cfg->backend, .precision = cfg->precision, .n_threads = cfg->threads };
    if (cfg->verbose) opt.log = cli_log_stderr;
    for (int i = 0; i < cfg->workers; i++) {
        s->workers[i].srv = s;
        if (!(s->workers[i].model = samc_model_load(cfg->model, &opt, err))) goto fail;
    }
    samc_model_get_info(s->workers[0].model, &s->info);
    /* An encoded image is the embedding [C][S/16]^2 plus the high-res features
     * [C/8][S/4]^2 and [C/4][S/8]^2 in float32 (model/sam2.c samc_image_new). */
    size_t S = (size_t)s->info.image_size, C = (size_t)s->info.d_model;
    s->image_bytes = sizeof(float) * (C * (S / 16) * (S / 16) + C / 8 * (S / 4) * (S / 4) + C / 4 * (S / 8) * (S / 8));
    size_t n = (size_t)cfg->cache_mb * 1024 * 1024 / s->image_bytes;
    s->n_slots = n < 1 ? 1 : n > 4096 ? 4096 : (int)n;
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    if (!s->slots) {
        snprintf(err->msg, sizeof err->msg, "out of memory for %d cache slots", s->n_slots);
        goto fail;
    }
    for (int i = 0; i < s->n_slots; i++)
        if (!(s->slots[i].img = samc_image_new(s->workers[0].model, err))) goto fail;
    for (int i = 0; i < cfg->workers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            snprintf(err->msg, sizeof err->msg, "cannot start worker thread %d", i);
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
    for (int i = 0; s->slots && i < s->n_slots; i++) samc_image_free(s->slots[i].img);
    for (int i = 0; s->workers && i < s->cfg.workers; i++) {
        samc_masks_free(&s->workers[i].masks);
        samc_model_free(s->workers[i].model);
    }
    free(s->slots);
    free(s->workers);
    free(s->jobs);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
