/* model/sam2/records.c: samc_predict_records, SAM2AutomaticMaskGenerator._process_batch's
 * filtering (sam2/automatic_mask_generator.py) where the decoder ran: the decoder's
 * low-res logits stay in backend memory, the mask_stats op (kernels/ops.h) measures every
 * candidate mask, the host reads one small record per candidate, and mask_runs writes the
 * runs of the kept ones, which come back as toggles. Two synchronisations per batch (the
 * records, then the runs); the CPU backends run the ops' reference twins on host memory.
 *
 * Memory: the post-processing scratch comes from the arena (planned at load for
 * SAM2_POST_ITEMS prompts: records, filled low-res maps, region scratch, toggle counts per
 * crop column for crops up to 2 S wide, fewer prompts per call when wider); the records
 * and the toggles cross through page-locked staging of SAM2_RUNS_CAP toggles. */
#include <stdlib.h>
#include <string.h>

#include "model/sam2/sam2.h"

#define SAM2_CC_SLOTS 8                 /* candidates whose regions are found at once */
#define SAM2_RUNS_CAP ((size_t)1 << 20) /* toggles per download */
#define SAM2_EDGE_ATOL 20               /* is_box_near_crop_edge's atol */

static int post_items(const sam2_model *m) { return m->max_batch < SAM2_POST_ITEMS ? m->max_batch : SAM2_POST_ITEMS; }
/* Toggle counts per call: every candidate column of post_items prompts at 2 S wide. */
static size_t col_cap(const sam2_model *m) { return (size_t)post_items(m) * 3 * 2 * (size_t)m->S + 1; }

typedef struct {
    samc_mask_stat *stat;
    float *filled;
    int32_t *cc;
    int64_t *col_runs;
} post_scratch;

static int post_scratch_alloc(sam2_model *m, int regions, post_scratch *ps, samc_error *err) {
    size_t P = (size_t)post_items(m) * 3, n = (size_t)(m->S / 4) * (m->S / 4);
    float *p;
    RT_ALLOC(&m->rt, p, P * sizeof(samc_mask_stat) / sizeof(float));
    ps->stat = (samc_mask_stat *)p;
    ps->filled = NULL;
    ps->cc = NULL;
    if (regions) {
        RT_ALLOC(&m->rt, ps->filled, P * n);
        RT_ALLOC(&m->rt, p, (size_t)SAM2_CC_SLOTS * 2 * n);
        ps->cc = (int32_t *)p;
    }
    RT_ALLOC(&m->rt, p, 2 * col_cap(m));
    ps->col_runs = (int64_t *)p;
    return 0;
}

int sam2_records_alloc(sam2_model *m, samc_error *err) {
    const samc_ops *o = m->rt.backend;
    m->runs_cap = SAM2_RUNS_CAP;
    m->h_stat = rt_host_alloc(o, sizeof(samc_mask_stat) * (size_t)SAM2_POST_ITEMS * 3);
    m->h_runs = rt_host_alloc(o, sizeof(uint32_t) * m->runs_cap);
    m->d_runs = rt_alloc(o, sizeof(uint32_t) * m->runs_cap);
    if (!m->h_stat || !m->h_runs || !m->d_runs)
        return samc_error_set(err, SAMC_ERR_NOMEM, "out of %s memory for the mask post-processing", o->name);
    return 0;
}

/* Under planning: a records batch is a kept decode of post_items prompts of the most
 * tokens plus the post-processing scratch. */
int sam2_records_plan(sam2_model *m, samc_error *err) {
    sam2_image img = { .S = m->S, .C = m->C };
    sam2_decoded d;
    post_scratch ps;
    if (sam2_decode_chunk(m, &img, post_items(m), SAM2_MAX_TOKENS - 6, NULL, 1, &d, err)) return -1;
    return post_scratch_alloc(m, 1, &ps, err);
}

/* Grows out to hold n records and t toggles (never shrinks). */
static int records_reserve(samc_mask_records *out, int n, int64_t t, samc_error *err) {
    if (n > out->cap_records) {
        int cap = out->cap_records ? out->cap_records : 64;
        while (cap < n) cap *= 2;
        samc_mask_record *r = realloc(out->records, sizeof *r * (size_t)cap);
        if (!r) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %d mask records", n);
        out->records = r;
        out->cap_records = cap;
    }
    if (t > out->cap_toggles) {
        int64_t cap = out->cap_toggles ? out->cap_toggles : 4096;
        while (cap < t) cap *= 2;
        uint32_t *g = realloc(out->toggles, sizeof *g * (size_t)cap);
        if (!g) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %lld mask toggles", (long long)t);
        out->toggles = g;
        out->cap_toggles = cap;
    }
    return 0;
}

/* The kept candidates [k0, k1) of m->h_stat, whose toggles are in m->h_runs, as records
 * of prompts from p0 on. */
static int append_records(sam2_model *m, int k0, int k1, int M, int p0, samc_mask_records *out, samc_error *err) {
    int64_t at = 0;
    for (int k = k0; k < k1; k++) {
        const samc_mask_stat *s = &m->h_stat[k];
        if (s->passed != 3) continue;
        if (records_reserve(out, out->n_records + 1, out->n_toggles + s->n_runs, err)) return -1;
        out->records[out->n_records++] = (samc_mask_record){
            .prompt = p0 + k / M, .token = s->token, .iou = s->iou, .stability = s->stability,
            .box = { s->box[0], s->box[1], s->box[2], s->box[3] }, .area = s->area,
            .first_toggle = out->n_toggles, .n_toggles = s->n_runs };
        memcpy(out->toggles + out->n_toggles, m->h_runs + at, sizeof(uint32_t) * (size_t)s->n_runs);
        out->n_toggles += s->n_runs;
        at += s->n_runs;
    }
    return 0;
}

/* The runs of the kept candidates of a call, in downloads of at most runs_cap toggles. */
static int fetch_runs(sam2_model *m, const samc_mask_post_args *a, int M, int p0, samc_mask_records *out,
                      samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int n_cand = a->B * M;
    for (int k0 = 0; k0 < n_cand;) {
        int k1 = k0;
        int64_t sum = 0;
        while (k1 < n_cand && sum + m->h_stat[k1].n_runs <= (int64_t)m->runs_cap) sum += m->h_stat[k1++].n_runs;
        if (k1 == k0)
            return samc_error_set(err, SAMC_ERR_UNSUPPORTED, "mask %d of prompt %d has %lld runs (at most %zu)",
                                  m->h_stat[k0].token, p0 + k0 / M, (long long)m->h_stat[k0].n_runs, m->runs_cap / 2);
        if (sum) {
            o->mask_runs(o, a, k0, k1, m->d_runs);
            rt_download_async(o, m->h_runs, m->d_runs, sizeof(uint32_t) * (size_t)sum);
            if (rt_sync(&m->rt, "mask runs", err) || append_records(m, k0, k1, M, p0, out, err)) return -1;
        }
        k0 = k1;
    }
    return 0;
}

/* Filters the B kept decoder outputs d of prompts [p0, p0 + B) into out. */
static int post_chunk(sam2_model *m, const sam2_image *img, const sam2_decoded *d, int B, int p0,
                      const samc_mask_filter *f, samc_mask_records *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int M = f->multimask ? 3 : 1, L = m->S / 4;
    post_scratch ps;
    if (post_scratch_alloc(m, f->max_region > 0, &ps, err)) return -1;
    int per_call = (int)((col_cap(m) - 1) / ((size_t)M * img->w));
    if (per_call > post_items(m)) per_call = post_items(m);
    if (per_call < 1) per_call = 1;
    samc_mask_post_args a = {
        .L = L, .multimask = f->multimask, .cw = img->w, .ch = img->h, .crop_x0 = f->crop[0], .crop_y0 = f->crop[1],
        .img_w = f->image_w, .img_h = f->image_h, .edge_atol = SAM2_EDGE_ATOL, .filter_iou = f->pred_iou_thresh > 0.0,
        .filter_stability = f->stability_score_thresh > 0.0, .max_region = f->max_region,
        .iou_thresh = (float)f->pred_iou_thresh, .stab_thresh = (float)f->stability_score_thresh,
        .stab_hi = (float)(f->mask_threshold + f->stability_score_offset),
        .stab_lo = (float)(f->mask_threshold - f->stability_score_offset), .mask_threshold = (float)f->mask_threshold,
        .stat = ps.stat, .filled = ps.filled, .cc = ps.cc, .n_cc_slots = SAM2_CC_SLOTS, .col_runs = ps.col_runs };
    size_t n = (size_t)L * L;
    for (int i0 = 0; i0 < B; i0 += per_call) {
        a.B = B - i0 < per_call ? B - i0 : per_call;
        a.low = d->masks + (size_t)i0 * 4 * n;
        a.iou = d->iou + (size_t)i0 * 4;
        if (i0 == 0) rt_mark(&m->rt, RT_MARK_POST_BEGIN);
        o->mask_stats(o, &a);
        rt_download_async(o, m->h_stat, ps.stat, sizeof(samc_mask_stat) * (size_t)a.B * M);
        rt_mark(&m->rt, RT_MARK_POST_END);
        if (rt_sync(&m->rt, "mask statistics", err)) return -1;
        double dec = i0 == 0 ? rt_mark_ms(&m->rt, RT_MARK_DEC_BEGIN, RT_MARK_DEC_END) : 0.0;
        out->decode_ms += dec > 0.0 ? dec : 0.0;
        for (int k = 0; k < a.B * M; k++) {
            out->candidates++;
            out->passed_iou += m->h_stat[k].passed >= 1;
            out->passed_stability += m->h_stat[k].passed >= 2;
            out->passed_edge += m->h_stat[k].passed >= 3;
        }
        if (fetch_runs(m, &a, M, p0 + i0, out, err)) return -1;
    }
    return 0;
}

static int check_records_call(const sam2_model *m, const sam2_image *img, const samc_prompt *prompts, int n,
                              const samc_mask_filter *f, samc_error *err) {
    if (img->w <= 0 || img->S != m->S)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_predict_records: the image has not been encoded by this model");
    if (f->crop[2] - f->crop[0] != img->w || f->crop[3] - f->crop[1] != img->h || f->crop[0] < 0 || f->crop[1] < 0 ||
        f->crop[2] > f->image_w || f->crop[3] > f->image_h)
        return samc_error_set(err, SAMC_ERR_ARG,
                              "samc_predict_records: crop (%d, %d, %d, %d) of a %dx%d image does not frame the "
                              "encoded %dx%d image", f->crop[0], f->crop[1], f->crop[2], f->crop[3], f->image_w,
                              f->image_h, img->w, img->h);
    if (f->max_region < 0 || (f->multimask != 0 && f->multimask != 1))
        return samc_error_set(err, SAMC_ERR_ARG, "samc_predict_records: max_region %d, multimask %d", f->max_region,
                              f->multimask);
    for (int i = 0; i < n; i++) {
        if (sam2_check_prompt(&prompts[i], i, img->w, img->h, m->S, err)) return -1;
        if (prompts[i].mask_input)
            return samc_error_set(err, SAMC_ERR_ARG, "samc_predict_records: prompt %d has a mask input", i);
    }
    return 0;
}

int sam2_predict_records(sam2_model *m, const sam2_image *img, const samc_prompt *prompts, int n_prompts,
                         const samc_mask_filter *f, samc_mask_records *out, samc_error *err) {
    if (check_records_call(m, img, prompts, n_prompts, f, err)) return -1;
    double t0 = rt_now_ms();
    out->n_records = 0;
    out->n_toggles = 0;
    out->candidates = out->passed_iou = out->passed_stability = out->passed_edge = 0;
    out->decode_ms = out->filter_ms = 0.0;
    int P = post_items(m);
    for (int b0 = 0; b0 < n_prompts;) {
        int B = sam2_chunk_length(m, prompts, n_prompts, b0, P), N = sam2_prompt_tokens(&prompts[b0]);
        size_t mark = rt_arena_mark(&m->rt);
        sam2_decoded d;
        sam2_prep_prompts(m, prompts + b0, B, N, img->w, img->h);
        int rc = sam2_decode_chunk(m, img, B, N, NULL, 1, &d, err) || post_chunk(m, img, &d, B, b0, f, out, err);
        rt_arena_reset(&m->rt, mark);
        if (rc) return -1;
        b0 += B;
    }
    out->filter_ms = rt_now_ms() - t0 - out->decode_ms;
    rt_log(&m->rt, "records: %d prompts, %lld masks -> %d kept (%lld toggles), decode %.2f ms, filter %.2f ms",
           n_prompts, (long long)out->candidates, out->n_records, (long long)out->n_toggles, out->decode_ms,
           out->filter_ms);
    return 0;
}
