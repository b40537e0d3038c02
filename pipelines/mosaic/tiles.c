/* pipelines/mosaic/tiles.c: the tile loop of a mosaic run (run.h), on one worker or many.
 *
 * A tile goes through three steps:
 *   read     (calling thread, in order): the padded window through GDAL, valid pixels,
 *            whether the tile is skipped;
 *   segment  (a worker): the passes on the worker's own mask generator, the crop to the
 *            useful area and the fragment clean-up: nothing here depends on other tiles;
 *   finish   (calling thread, in tile order): global ids, the raw label file, the border
 *            merge with the left and upper neighbours, stats, progress.
 * With one worker the three run one after the other in the calling thread. With several,
 * the calling thread reads ahead into a ring of 2 x workers jobs, workers take jobs in
 * tile order, and the calling thread finishes them in tile order: ids and merges happen
 * in the same order as with one worker, so the output is the same.
 * GDAL datasets are not thread-safe; only the calling thread touches the raster. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pipelines/mosaic/concept.h"
#include "pipelines/mosaic/run.h"

typedef enum { JOB_FREE = 0, JOB_READY, JOB_DONE } job_state;

/* One tile on its way through the three steps, with its own buffers. */
typedef struct {
    int row, col;
    mosaic_rect u, rd;
    uint8_t *rgb, *valid;
    uint32_t *useful;            /* [uh][uw]: the tile's labels, 1..n, then global ids */
    int64_t uvalid;
    int skipped;
    mosaic_tile_stats ts;
    mosaic_cleanup_stats cs;
    /* concept mode: class and score of the tile's labels 1..n_local, and a scratch of
     * ranks by first appearance (the order mosaic_labels_compact numbers them in) */
    uint32_t *lcls, *rank;
    float *lscore;
    int n_local;
    double t_start, segment_s, cleanup_s;
    job_state state;
    int rc;
    samc_error err;
} tile_job;

typedef struct {
    int index;
    run_ctx *run;
    mosaic_multipass *mp;
    mosaic_mask_source src;
    int have_src;
    samc_model *model;           /* loaded by this worker (workers->load) */
    mosaic_concept *concept;     /* concept mode: SAM3 searches instead of the passes */
    uint32_t *tile_labels;       /* [read_h][read_w] */
    pthread_t thread;
    int started;
} tile_worker;

struct tile_pool {
    tile_job *jobs;
    int n_jobs;
    tile_worker *workers;
    int n_workers;
    int threaded;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    int n_posted, next_take, stop, ready, init_failed;
    samc_error init_err;
};

/* The cancel check handed to the passes: the caller's, or the pool stopping after an
 * error elsewhere. */
static int pool_cancelled(void *ctx) {
    run_ctx *c = ctx;
    tile_pool *p = c->pool;
    if (p && p->threaded) {
        pthread_mutex_lock(&p->mu);
        int stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop) return 1;
    }
    return run_is_cancelled(c);
}

/* The worker's mask generator and pass planner. In a worker thread when threaded, so that
 * a model loaded here binds its device to this thread. */
static int worker_init(tile_worker *w, samc_error *err) {
    run_ctx *c = w->run;
    const mosaic_workers *ws = c->workers;
    const mosaic_grid *g = &c->g;
    w->tile_labels = malloc((size_t)g->read_w * g->read_h * sizeof *w->tile_labels);
    if (!w->tile_labels)
        return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the labels of a %dx%d tile", g->read_w,
                              g->read_h);
    if (c->opt->n_classes > 0) {   /* concept mode: the worker's SAM3 model searches each tile */
        samc_model *m = c->model;
        if (ws && !ws->sources && !(m = w->model = ws->load(ws->ctx, w->index, err))) return -1;
        if (!m) return samc_error_set(err, SAMC_ERR_ARG, "mosaic: class texts need a SAM3 model, not a mask source");
        return (w->concept = mosaic_concept_new(m, g->read_w, g->read_h, err)) ? 0 : -1;
    }
    w->mp = mosaic_multipass_new(g->read_w, g->read_h, &c->opt->mp, err);
    if (!w->mp) return -1;
    if (ws && ws->sources) {
        w->src = ws->sources[w->index];
        return 0;
    }
    if (!ws && c->cb && c->cb->mask_source) {
        w->src = *c->cb->mask_source;
        return 0;
    }
    samc_model *m = c->model;
    if (ws) {
        if (!(w->model = ws->load(ws->ctx, w->index, err))) return -1;
        m = w->model;
    }
    if (mosaic_samc_source_new(m, &c->opt->mp, &w->src, err)) return -1;
    w->have_src = 1;
    return 0;
}

static void worker_free(run_ctx *c, tile_worker *w) {
    if (w->have_src) mosaic_samc_source_free(&w->src);
    mosaic_concept_free(w->concept);
    if (w->model && c->workers && c->workers->unload) c->workers->unload(c->workers->ctx, w->index, w->model);
    if (w->mp) mosaic_multipass_free(w->mp);
    free(w->tile_labels);
    memset(w, 0, sizeof *w);
}

/* ---- the three steps --------------------------------------------------------------- */

/* Reads tile (row, col) into job; a tile with no valid pixel in its useful area, or all
 * black (a gap of the mosaic, as the tool skips), is marked skipped. */
static int job_read(run_ctx *c, tile_job *job, int row, int col, samc_error *err) {
    job->t_start = mosaic_now_s();
    job->row = row;
    job->col = col;
    job->rc = 0;
    job->segment_s = job->cleanup_s = 0;
    memset(&job->cs, 0, sizeof job->cs);
    mosaic_tile_stats_free(&job->ts);
    mosaic_tile_rects(&c->g, row, col, &job->u, &job->rd);
    const mosaic_rect *u = &job->u, *rd = &job->rd;
    int rw = rd->x1 - rd->x0, rh = rd->y1 - rd->y0;
    double t0 = mosaic_now_s();
    if (mosaic_raster_read_rgb(c->raster, rd->x0, rd->y0, rw, rh, job->rgb, job->valid, err) < 0) return -1;
    c->tm.read_s += mosaic_now_s() - t0;
    int64_t nvalid = 0;
    int any_colour = 0;
    for (int y = u->y0; y < u->y1; y++)
        for (int x = u->x0; x < u->x1; x++) nvalid += job->valid[(size_t)(y - rd->y0) * rw + (x - rd->x0)];
    for (size_t k = 0; k < (size_t)rw * rh * 3 && !any_colour; k++) any_colour = job->rgb[k] != 0;
    job->uvalid = nvalid;
    job->skipped = nvalid == 0 || !any_colour;
    if (job->skipped) memset(job->useful, 0, (size_t)(u->x1 - u->x0) * (u->y1 - u->y0) * sizeof *job->useful);
    return 0;
}

/* The passes, the crop to the useful area, the clean-up; job->rc and job->err on failure. */
static void job_segment(run_ctx *c, tile_worker *w, tile_job *job) {
    if (job->skipped) return;
    const mosaic_options *opt = c->opt;
    const mosaic_rect *u = &job->u, *rd = &job->rd;
    int rw = rd->x1 - rd->x0, rh = rd->y1 - rd->y0, uw = u->x1 - u->x0, uh = u->y1 - u->y0;
    double t0 = mosaic_now_s();
    int rc = w->concept ? mosaic_concept_run(w->concept, opt, job->rgb, job->valid, rw, rh, w->tile_labels, job->lcls,
                                             job->lscore, MOSAIC_CONCEPT_MAX_LABELS(opt->n_classes), &job->ts,
                                             pool_cancelled, c, &job->err)
                        : mosaic_multipass_run(w->mp, &w->src, job->rgb, job->valid, rw, rh, w->tile_labels, &job->ts,
                                               pool_cancelled, c, &job->err);
    if (rc) {
        job->rc = -1;
        return;
    }
    job->n_local = job->ts.n_labels;
    job->segment_s = mosaic_now_s() - t0;
    t0 = mosaic_now_s();
    for (int y = 0; y < uh; y++)
        memcpy(job->useful + (size_t)y * uw, w->tile_labels + (size_t)(y + u->y0 - rd->y0) * rw + (u->x0 - rd->x0),
               (size_t)uw * sizeof *job->useful);
    if (mosaic_cleanup_fragments(job->useful, uw, uh, opt->mp.min_area, opt->merge_enclosed_max_area, &job->cs,
                                 &job->err))
        job->rc = -1;
    job->cleanup_s = mosaic_now_s() - t0;
}

/* The labels of the tile go to the raw file; the segments across its borders with the
 * left and upper neighbours (inside this run's band) are joined on the facing pixels. */
static int tile_commit(run_ctx *c, const tile_job *job, samc_error *err) {
    const mosaic_options *opt = c->opt;
    const mosaic_rect *u = &job->u;
    const uint32_t *useful = job->useful;
    int uw = u->x1 - u->x0, uh = u->y1 - u->y0;
    double t0 = mosaic_now_s();
    for (int y = 0; y < uh; y++)
        if (mosaic_write_all(c->raw_fd, useful + (size_t)y * uw, (size_t)uw * 4,
                             ((off_t)(u->y0 + y - c->band_y0) * c->g.width + u->x0) * 4) != 0)
            return samc_error_set(err, SAMC_ERR_IO, "mosaic: cannot write the temporary label file %s: %s",
                                  c->raw_path, strerror(errno));
    c->tm.spill_s += mosaic_now_s() - t0;

    t0 = mosaic_now_s();
    if (opt->merge != MOSAIC_MERGE_NONE) {
        if (job->col > 0) {
            for (int y = 0; y < uh; y++) c->edge[y] = useful[(size_t)y * uw];
            if (run_merge_boundary(c, c->left_col, c->edge, uh, err)) return -1;
        }
        if (job->row > c->r0 && run_merge_boundary(c, c->bottom_row + u->x0, useful, uw, err)) return -1;
    }
    for (int y = 0; y < uh; y++) c->left_col[y] = useful[(size_t)y * uw + uw - 1];
    memcpy(c->bottom_row + u->x0, useful + (size_t)(uh - 1) * uw, (size_t)uw * sizeof *useful);
    c->tm.merge_s += mosaic_now_s() - t0;
    return 0;
}

/* Concept mode: the class and score of the ids the tile's labels are about to get
 * (mosaic_labels_compact numbers them first_id, first_id + 1, ... by first appearance). */
static int job_attrs(run_ctx *c, tile_job *job, size_t upix, samc_error *err) {
    if (!job->lcls) return 0;
    if (run_attrs_grow(c, c->next_id + (uint32_t)job->n_local + 1, err)) return -1;
    uint32_t count = 0;
    for (size_t p = 0; p < upix; p++) {
        uint32_t v = job->useful[p];
        if (!v || job->rank[v]) continue;
        if (v > (uint32_t)job->n_local)
            return samc_error_set(err, SAMC_ERR_INTERNAL, "mosaic: label %u beyond the tile's %d", v, job->n_local);
        job->rank[v] = ++count;
        uint32_t id = c->next_id + count - 1;
        c->id_class[id] = job->lcls[v - 1];
        c->id_score[id] = job->lscore[v - 1];
    }
    memset(job->rank, 0, ((size_t)job->n_local + 1) * sizeof *job->rank);
    return 0;
}

/* Global ids (in tile order), then commit, account and report. */
static int job_finish(run_ctx *c, tile_job *job, samc_error *err) {
    const mosaic_rect *u = &job->u;
    size_t upix = (size_t)(u->x1 - u->x0) * (u->y1 - u->y0);
    uint32_t n_ids = 0;
    c->tm.segment_s += job->segment_s;
    c->tm.cleanup_s += job->cleanup_s;
    c->cs.fragments += job->cs.fragments;
    c->cs.merged_enclosed += job->cs.merged_enclosed;
    c->cs.removed_small += job->cs.removed_small;
    c->cs.pixels_removed += job->cs.pixels_removed;
    if (!job->skipped) {
        double t0 = mosaic_now_s();
        if (job_attrs(c, job, upix, err) || mosaic_labels_compact(job->useful, (int64_t)upix, c->next_id, &n_ids, err))
            return -1;
        if ((uint64_t)c->next_id + n_ids >= UINT32_MAX)
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "mosaic: more than 4 billion segments before the merge");
        c->next_id += n_ids;
        if (mosaic_uf_grow(&c->uf, c->next_id, err)) return -1;
        c->tm.cleanup_s += mosaic_now_s() - t0;
    }
    c->tiles_skipped += job->skipped;
    int64_t ulab = 0;
    for (size_t k = 0; k < upix; k++) ulab += job->useful[k] != 0;
    c->valid_total += job->uvalid;
    c->labelled_total += ulab;
    if (tile_commit(c, job, err)) return -1;

    double cov_u = job->uvalid ? 100.0 * (double)ulab / (double)job->uvalid : 0.0;
    double seconds = mosaic_now_s() - job->t_start;
    int timings = c->shard == NULL;   /* a shard keeps its times apart: its outputs are reproducible */
    cJSON_AddItemToArray(c->tiles_json, run_tile_json(job->row, job->col, u, job->skipped, &job->ts, cov_u,
                                                      (int)n_ids, seconds, timings));
    if (!timings)
        cJSON_AddItemToArray(c->tiles_timing, run_tile_timing_json(job->row, job->col, &job->ts, job->skipped, seconds));
    c->tiles_done++;
    const mosaic_callbacks *cb = c->cb;
    if (cb && cb->progress) {
        mosaic_progress p = { .phase = "tiles", .tiles_done = c->tiles_done, .tiles_total = c->tiles_total,
                              .tiles_skipped = c->tiles_skipped, .tile_row = job->row, .tile_col = job->col,
                              .tile_passes = job->skipped ? 0 : job->ts.n_passes,
                              .coverage = c->valid_total ? 100.0 * (double)c->labelled_total / (double)c->valid_total
                                                         : 0.0,
                              .segments = c->next_id - 1, .elapsed_s = mosaic_now_s() - c->t_start };
        double per = (mosaic_now_s() - c->t_tiles) / c->tiles_done;
        p.eta_s = per * (c->tiles_total - c->tiles_done);
        cb->progress(cb->progress_ctx, &p);
    }
    return 0;
}

/* ---- the pool ---------------------------------------------------------------------- */

static void *worker_main(void *arg) {
    tile_worker *w = arg;
    run_ctx *c = w->run;
    tile_pool *p = c->pool;
    samc_error err = { 0 };
    int rc = worker_init(w, &err);
    pthread_mutex_lock(&p->mu);
    if (rc && !p->init_failed) {
        p->init_failed = 1;
        p->init_err = err;
    }
    p->ready++;
    pthread_cond_broadcast(&p->done);
    while (!rc) {
        while (!p->stop && p->next_take >= p->n_posted) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        tile_job *job = &p->jobs[p->next_take % p->n_jobs];
        p->next_take++;
        pthread_mutex_unlock(&p->mu);
        job_segment(c, w, job);
        pthread_mutex_lock(&p->mu);
        job->state = JOB_DONE;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int jobs_alloc(run_ctx *c, tile_pool *p, samc_error *err) {
    const mosaic_grid *g = &c->g;
    size_t rpix = (size_t)g->read_w * g->read_h;
    int umax_w = g->tile_size < g->width ? g->tile_size : g->width;
    int umax_h = g->tile_size < g->height ? g->tile_size : g->height;
    size_t upix = (size_t)umax_w * umax_h;
    p->jobs = calloc((size_t)p->n_jobs, sizeof *p->jobs);
    if (!p->jobs) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for %d tile jobs", p->n_jobs);
    for (int i = 0; i < p->n_jobs; i++) {
        tile_job *j = &p->jobs[i];
        j->rgb = malloc(rpix * 3);
        j->valid = malloc(rpix);
        j->useful = malloc(upix * sizeof *j->useful);
        if (!j->rgb || !j->valid || !j->useful)
            return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the buffers of a %dx%d tile",
                                  g->read_w, g->read_h);
        if (c->opt->n_classes > 0) {
            size_t cap = (size_t)MOSAIC_CONCEPT_MAX_LABELS(c->opt->n_classes) + 1;
            j->lcls = malloc(cap * sizeof *j->lcls);
            j->lscore = malloc(cap * sizeof *j->lscore);
            j->rank = calloc(cap, sizeof *j->rank);
            if (!j->lcls || !j->lscore || !j->rank)
                return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the classes of a tile");
        }
    }
    if (c->opt->n_classes > 0 && run_attrs_grow(c, 1, err)) return -1;
    c->left_col = calloc((size_t)umax_h, sizeof *c->left_col);
    c->edge = calloc((size_t)umax_h, sizeof *c->edge);
    c->bottom_row = calloc((size_t)g->width, sizeof *c->bottom_row);
    c->tiles_json = cJSON_CreateArray();
    c->tiles_timing = cJSON_CreateArray();
    if (!c->left_col || !c->edge || !c->bottom_row || !c->tiles_json || !c->tiles_timing)
        return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for a %d-pixel row of labels", g->width);
    return 0;
}

int run_pool_start(run_ctx *c, samc_error *err) {
    tile_pool *p = calloc(1, sizeof *p);
    if (!p) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for the tile pool");
    c->pool = p;
    p->n_workers = c->workers ? c->workers->n_workers : 1;
    p->threaded = p->n_workers > 1;
    p->n_jobs = p->threaded ? 2 * p->n_workers : 1;
    p->workers = calloc((size_t)p->n_workers, sizeof *p->workers);
    if (!p->workers) return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: out of memory for %d workers", p->n_workers);
    if (jobs_alloc(c, p, err) || mosaic_uf_init(&c->uf, 1, err)) return -1;
    for (int i = 0; i < p->n_workers; i++) {
        p->workers[i].index = i;
        p->workers[i].run = c;
    }
    if (!p->threaded) return worker_init(&p->workers[0], err);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < p->n_workers; i++) {
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            pthread_mutex_lock(&p->mu);
            p->stop = 1;
            pthread_cond_broadcast(&p->work);
            pthread_mutex_unlock(&p->mu);
            return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic: cannot start worker thread %d of %d", i + 1,
                                  p->n_workers);
        }
        p->workers[i].started = 1;
    }
    /* every worker has its model before the first tile: a model that cannot load fails
     * the run at once, not after hours of tiles on the others */
    pthread_mutex_lock(&p->mu);
    while (p->ready < p->n_workers) pthread_cond_wait(&p->done, &p->mu);
    int failed = p->init_failed;
    if (failed) *err = p->init_err;
    pthread_mutex_unlock(&p->mu);
    return failed ? -1 : 0;
}

void run_pool_free(run_ctx *c) {
    tile_pool *p = c->pool;
    if (!p) return;
    if (p->threaded) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_workers; i++)
            if (p->workers[i].started) pthread_join(p->workers[i].thread, NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->done);
    }
    for (int i = 0; p->workers && i < p->n_workers; i++) worker_free(c, &p->workers[i]);
    for (int i = 0; p->jobs && i < p->n_jobs; i++) {
        free(p->jobs[i].rgb);
        free(p->jobs[i].valid);
        free(p->jobs[i].useful);
        free(p->jobs[i].lcls);
        free(p->jobs[i].lscore);
        free(p->jobs[i].rank);
        mosaic_tile_stats_free(&p->jobs[i].ts);
    }
    free(p->jobs);
    free(p->workers);
    free(p);
    c->pool = NULL;
}

static int cancelled_error(run_ctx *c, samc_error *err) {
    return samc_error_set(err, SAMC_ERR_ARG, "mosaic: cancelled after %d of %d tiles", c->tiles_done, c->tiles_total);
}

/* Tiles t of the band are numbered row-major from the band's first row. */
static void tile_of(const run_ctx *c, int t, int *row, int *col) {
    *row = c->r0 + t / c->g.n_cols;
    *col = t % c->g.n_cols;
}

static int run_tiles_threaded(run_ctx *c, int n, samc_error *err) {
    tile_pool *p = c->pool;
    int next_read = 0, next_done = 0;
    while (next_done < n) {
        if (next_read < n && next_read - next_done < p->n_jobs) {
            if (run_is_cancelled(c)) return cancelled_error(c, err);
            tile_job *job = &p->jobs[next_read % p->n_jobs];
            int row, col;
            tile_of(c, next_read, &row, &col);
            if (job_read(c, job, row, col, err)) return -1;
            pthread_mutex_lock(&p->mu);
            job->state = JOB_READY;
            p->n_posted++;
            pthread_cond_signal(&p->work);
            pthread_mutex_unlock(&p->mu);
            next_read++;
            continue;
        }
        tile_job *job = &p->jobs[next_done % p->n_jobs];
        pthread_mutex_lock(&p->mu);
        while (job->state != JOB_DONE) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
        if (job->rc) {
            *err = job->err;
            return -1;
        }
        if (job_finish(c, job, err)) return -1;
        job->state = JOB_FREE;
        next_done++;
    }
    return 0;
}

int run_tiles(run_ctx *c, samc_error *err) {
    tile_pool *p = c->pool;
    int n = (c->r1 - c->r0) * c->g.n_cols;
    c->next_id = 1;
    c->tiles_total = n;
    c->t_tiles = mosaic_now_s();
    if (p->threaded) return run_tiles_threaded(c, n, err);
    tile_job *job = &p->jobs[0];
    for (int t = 0; t < n; t++) {
        if (run_is_cancelled(c)) return cancelled_error(c, err);
        int row, col;
        tile_of(c, t, &row, &col);
        if (job_read(c, job, row, col, err)) return -1;
        job_segment(c, &p->workers[0], job);
        if (job->rc) {
            *err = job->err;
            return -1;
        }
        if (job_finish(c, job, err)) return -1;
    }
    return 0;
}
