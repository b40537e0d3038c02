/* model/sam3/processor.c: sam3/model/sam3_image_processor.py Sam3Processor: set_image
 * (transform, ViT, neck; the features kept), the prompt as add_geometric_prompt takes it
 * (boxes in normalised cxcywh), _forward_grounding's post-processing (scores with the
 * presence, strict threshold, query order, boxes to pixels, masks by one bilinear
 * upsample of the low-res logits to the original size, sigmoid, > 0.5), and the plan. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

/* ---- set_image ------------------------------------------------------------------------ */

/* The encoder on a preprocessed input already in backend memory. */
static int encode_input(sam3_model *m, const float *input, sam3_image *img, samc_error *err) {
    size_t mark = rt_arena_mark(&m->rt);
    float *map;
    RT_ALLOC(&m->rt, map, (size_t)m->C * m->g * m->g);
    if (sam3_vit(m, input, map, err) || sam3_neck(m, map, img, err)) return -1;
    rt_mark(&m->rt, RT_MARK_ENC_NECK);
    rt_arena_reset(&m->rt, mark);
    return rt_sync(&m->rt, "encode", err);
}

/* On a device backend (CUDA events) the encoder's stage times become device times between
 * the marks, read after the encode's sync; the CPU backends keep their host clock times
 * (their ops are synchronous) and get encoder_device_ms from the host marks. */
static void encode_times(sam3_model *m) {
    const samc_runtime *rt = &m->rt;
    samc_timings *t = &m->timings;
    t->device_timed = rt->backend->elapsed_ms != NULL;
    t->upload_ms = rt_mark_ms(rt, RT_MARK_ENC_BEGIN, RT_MARK_ENC_UPLOADED);
    t->preprocess_device_ms = 0.0;   /* SAM3 resizes and normalises on the host */
    t->encoder_device_ms = rt_mark_ms(rt, RT_MARK_ENC_INPUT, RT_MARK_ENC_NECK);
    if (!t->device_timed) return;
    t->patch_embed_ms = rt_mark_ms(rt, RT_MARK_ENC_INPUT, RT_MARK_ENC_PATCH);
    t->stage_ms[0] = rt_mark_ms(rt, RT_MARK_ENC_PATCH, RT_MARK_ENC_STAGE0);
    t->neck_ms = rt_mark_ms(rt, RT_MARK_ENC_STAGE0, RT_MARK_ENC_NECK);
}

static void dump_preprocessed(sam3_model *m) {
    if (!rt_dumping(&m->rt)) return;
    size_t n = (size_t)3 * m->S * m->S;
    float *u = malloc(sizeof(float) * n); /* debug path only */
    if (u) {
        for (size_t i = 0; i < n; i++) u[i] = m->h_resized[i];
        rt_dump_host(&m->rt, "preproc.resized_u8", u, 3, I64(3), I64(m->S), I64(m->S));
    }
    free(u);
    rt_dump_host(&m->rt, "preproc.input", m->h_input, 4, I64(1), I64(3), I64(m->S), I64(m->S));
}

int sam3_image_encode(sam3_model *m, sam3_image *img, const uint8_t *rgb, int w, int h, samc_error *err) {
    double t0 = rt_now_ms();
    int S = m->S;
    size_t plane = (size_t)3 * S * S, mark = rt_arena_mark(&m->rt);
    float *input;
    RT_ALLOC(&m->rt, input, plane);
    img->w = 0;
    rt_log(&m->rt, "encode: %dx%d image -> %dx%d input", w, h, S, S);
    sam3_transforms_preprocess(m, rgb, w, h);
    dump_preprocessed(m);
    double t1 = rt_now_ms();
    rt_mark(&m->rt, RT_MARK_ENC_BEGIN);
    rt_upload(m->rt.ops, input, m->h_input, sizeof(float) * plane);
    rt_mark(&m->rt, RT_MARK_ENC_UPLOADED);
    rt_mark(&m->rt, RT_MARK_ENC_INPUT);
    m->timings.preprocess_ms = t1 - t0;
    rt_log(&m->rt, "encode: preprocess %.1f ms", m->timings.preprocess_ms);
    int rc = encode_input(m, input, img, err);
    rt_arena_reset(&m->rt, mark);
    if (rc) return -1;
    img->w = w;
    img->h = h;
    encode_times(m);
    if (!m->mem_after_encode) rt_mem_info(&m->rt, &m->mem_after_encode, NULL, NULL);
    m->timings.encode_total_ms = rt_now_ms() - t0;
    rt_log(&m->rt, "encode: done in %.1f ms", m->timings.encode_total_ms);
    return 0;
}

/* ---- the prompt ----------------------------------------------------------------------- */

static int check_label(const int *labels, int i, const char *what, samc_error *err) {
    int l = labels ? labels[i] : 1;
    if (l != 0 && l != 1)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_find: %s %d has label %d (1 = positive, 0 = negative)", what, i,
                              l);
    return 0;
}

/* add_geometric_prompt's box: cx = (x0 + x1) / 2 / W, cy, w = (x1 - x0) / W, h, in double,
 * then float (as the goldens passed them); points x / W, y / H. */
int sam3_prompt_from_api(const sam3_model *m, const samc_concept_prompt *in, int w, int h, sam3_prompt *p,
                         samc_error *err) {
    (void)m;
    memset(p, 0, sizeof *p);
    if (in->n_boxes < 0 || in->n_points < 0 || in->n_boxes + in->n_points > SAM3_MAX_GEO_INPUTS)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_find: %d boxes and %d points (at most %d together)", in->n_boxes,
                              in->n_points, SAM3_MAX_GEO_INPUTS);
    if ((in->n_boxes && !in->boxes) || (in->n_points && !in->points))
        return samc_error_set(err, SAMC_ERR_ARG, "samc_find: %s missing", in->n_boxes && !in->boxes ? "boxes" : "points");
    for (int i = 0; i < in->n_boxes; i++) {
        const float *b = in->boxes + 4 * i;
        for (int k = 0; k < 4; k++)
            if (!(b[k] >= 0.0f && b[k] <= (float)(k % 2 ? h : w)))
                return samc_error_set(err, SAMC_ERR_ARG, "samc_find: box %d (%g, %g, %g, %g) is outside the %dx%d image",
                                      i, b[0], b[1], b[2], b[3], w, h);
        if (!(b[0] < b[2] && b[1] < b[3]))
            return samc_error_set(err, SAMC_ERR_ARG,
                                  "samc_find: box %d (%g, %g, %g, %g) is inverted or empty (need x0 < x1, y0 < y1)", i,
                                  b[0], b[1], b[2], b[3]);
        if (check_label(in->box_labels, i, "box", err)) return -1;
        p->boxes[i][0] = (float)(((double)b[0] + b[2]) / 2.0 / w);
        p->boxes[i][1] = (float)(((double)b[1] + b[3]) / 2.0 / h);
        p->boxes[i][2] = (float)(((double)b[2] - b[0]) / w);
        p->boxes[i][3] = (float)(((double)b[3] - b[1]) / h);
        p->box_labels[i] = in->box_labels ? in->box_labels[i] : 1;
    }
    for (int i = 0; i < in->n_points; i++) {
        float x = in->points[2 * i], y = in->points[2 * i + 1];
        if (!(x >= 0.0f && x <= (float)w && y >= 0.0f && y <= (float)h))
            return samc_error_set(err, SAMC_ERR_ARG, "samc_find: point %d (%g, %g) is outside the %dx%d image", i, x, y,
                                  w, h);
        if (check_label(in->point_labels, i, "point", err)) return -1;
        p->points[i][0] = (float)((double)x / w);
        p->points[i][1] = (float)((double)y / h);
        p->point_labels[i] = in->point_labels ? in->point_labels[i] : 1;
    }
    p->n_boxes = in->n_boxes;
    p->n_points = in->n_points;
    return 0;
}

/* ---- post-processing -------------------------------------------------------------------- */

/* Grows the result's buffers (never shrinks: a loop over same-size images reuses them). */
static int instances_reserve(samc_instances *out, int Q, int ls, int w, int h, int masks, samc_error *err) {
    size_t nq = (size_t)Q, nl = (size_t)Q * ls * ls, nf = (size_t)Q * w * h, np = (size_t)w * h;
    if (nq > out->cap_q || !out->query) {
        free(out->query); free(out->score); free(out->box); free(out->area);
        free(out->probs); free(out->pred_logits); free(out->pred_boxes);
        out->query = malloc(sizeof(int) * nq);
        out->score = malloc(sizeof(float) * nq);
        out->box = malloc(sizeof(float) * 4 * nq);
        out->area = malloc(sizeof(int64_t) * nq);
        out->probs = malloc(sizeof(float) * nq);
        out->pred_logits = malloc(sizeof(float) * nq);
        out->pred_boxes = malloc(sizeof(float) * 4 * nq);
        int ok = out->query && out->score && out->box && out->area && out->probs && out->pred_logits && out->pred_boxes;
        out->cap_q = out->cap_n = ok ? nq : 0;
        if (!ok) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %d queries", Q);
    }
    if (nl > out->cap_low || !out->pred_masks) {
        free(out->pred_masks);
        out->pred_masks = malloc(sizeof(float) * nl);
        out->cap_low = out->pred_masks ? nl : 0;
        if (!out->pred_masks) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %d low-res masks", Q);
    }
    if (masks && (nf > out->cap_full || !out->masks || np > out->cap_prob || !out->prob)) {
        free(out->masks); free(out->prob);
        out->masks = malloc(nf);
        out->prob = malloc(sizeof(float) * np);
        out->cap_full = out->masks ? nf : 0;
        out->cap_prob = out->prob ? np : 0;
        if (!out->masks || !out->prob)
            return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for masks of %dx%d pixels", w, h);
    }
    return 0;
}

/* Device backends: one full-size mask; grows to the largest image seen. */
static int reserve_device_full(sam3_model *m, size_t n, samc_error *err) {
    if (m->rt.ops->host_memory || n <= m->dev_full_cap) return 0;
    rt_free(m->rt.ops, m->dev_full);
    m->dev_full = rt_alloc(m->rt.ops, sizeof(float) * n);
    m->dev_full_cap = m->dev_full ? n : 0;
    if (!m->dev_full) return samc_error_set(err, SAMC_ERR_NOMEM, "out of %s memory for a %zu-pixel mask", m->rt.ops->name, n);
    return 0;
}

/* keep = probs > threshold, in query order; with max_detections, the highest scores. */
static int select_kept(const float *probs, int Q, const samc_find_options *opt, int *keep) {
    int n = 0;
    for (int q = 0; q < Q; q++)
        if (probs[q] > opt->threshold) keep[n++] = q;
    while (opt->max_detections > 0 && n > opt->max_detections) {
        int worst = 0;   /* drop the lowest score; the later query on ties */
        for (int i = 1; i < n; i++)
            if (probs[keep[i]] <= probs[keep[worst]]) worst = i;
        memmove(keep + worst, keep + worst + 1, sizeof(int) * (size_t)(n - worst - 1));
        n--;
    }
    return n;
}

/* sigmoid(v) > 0.5 for a logit v: away from 0 the sign says it (|v| > 1e-4 moves
 * 1 / (1 + e^-v) from 0.5 by 2.5e-5, some 400 ulps), near 0 the host sigmoid's own
 * formula decides (cpu_fast / cpu_ref: 1 / (1 + expf(-v))), so the mask is the one the
 * probabilities give without an exp per pixel (a 1800 x 1200 image: 2.2 M per instance). */
static uint8_t logit_above_half(float v) {
    if (v > 1e-4f) return 1;
    if (v < -1e-4f) return 0;
    return 1.0f / (1.0f + expf(-v)) > 0.5f;
}

/* Mask of kept instance i from the low-res logits lo [ls, ls] (backend): bilinear to
 * h x w, sigmoid, > 0.5 (on host backends the sigmoid only near 0, logit_above_half;
 * a device backend's sigmoid runs there). prob_dump (debug) receives the probabilities. */
static void full_mask(sam3_model *m, const float *lo, int ls, samc_instances *out, int i, float *prob_dump) {
    const samc_ops *o = m->rt.ops;
    size_t n = (size_t)out->width * out->height;
    float *dst = o->host_memory ? out->prob : m->dev_full;
    int logits = o->host_memory && !prob_dump;   /* out->prob keeps the logits */
    o->upsample_bilinear(o, lo, dst, 1, ls, out->width, out->height);
    if (!logits) o->sigmoid(o, dst, n);
    if (!o->host_memory) rt_download(o, out->prob, m->dev_full, sizeof(float) * n);
    uint8_t *mk = out->masks + (size_t)i * n;
    int64_t area = 0;
    for (size_t k = 0; k < n; k++) {
        mk[k] = logits ? logit_above_half(out->prob[k]) : out->prob[k] > 0.5f;
        area += mk[k];
    }
    out->area[i] = area;
    if (prob_dump) memcpy(prob_dump + (size_t)i * n, out->prob, sizeof(float) * n);
}

static void dump_post(sam3_model *m, const samc_instances *out, const float *prob_all) {
    if (!rt_dumping(&m->rt)) return;
    int K = out->n;
    float idx[256];
    for (int i = 0; i < K && i < 256; i++) idx[i] = (float)out->query[i];
    rt_dump_host(&m->rt, "post.probs_all", out->probs, 2, I64(1), I64(out->n_queries));
    rt_dump_host(&m->rt, "post.keep_idx", idx, 1, I64(K));
    rt_dump_host(&m->rt, "post.scores", out->score, 1, I64(K));
    rt_dump_host(&m->rt, "post.boxes_px", out->box, 2, I64(K), I64(4));
    if (prob_all) rt_dump_host(&m->rt, "post.masks_prob", prob_all, 4, I64(K), I64(1), I64(out->height), I64(out->width));
}

/* _forward_grounding's post-processing of one grounding into out. */
static int post_process(sam3_model *m, const sam3_grounding *gr, int w, int h, const samc_find_options *opt,
                        samc_instances *out, samc_error *err) {
    int Q = m->Q, ls = 4 * m->g;
    float ps = 1.0f / (1.0f + expf(-gr->presence_logit));
    int keep[256];
    for (int q = 0; q < Q; q++) {
        out->pred_logits[q] = gr->logits[q];
        for (int k = 0; k < 4; k++) out->pred_boxes[4 * q + k] = gr->boxes[4 * q + k];
        out->probs[q] = 1.0f / (1.0f + expf(-gr->logits[q])) * ps;
    }
    out->presence_logit = gr->presence_logit;
    out->n = select_kept(out->probs, Q, opt, keep);
    for (int i = 0; i < out->n; i++) {
        const float *b = gr->boxes + 4 * keep[i];
        out->query[i] = keep[i];
        out->score[i] = out->probs[keep[i]];
        out->box[4 * i] = (b[0] - 0.5f * b[2]) * (float)w;
        out->box[4 * i + 1] = (b[1] - 0.5f * b[3]) * (float)h;
        out->box[4 * i + 2] = (b[0] + 0.5f * b[2]) * (float)w;
        out->box[4 * i + 3] = (b[1] + 0.5f * b[3]) * (float)h;
        out->area[i] = 0;
    }
    float *prob_all = NULL;
    if (opt->want_masks && rt_dumping(&m->rt)) prob_all = malloc(sizeof(float) * (size_t)out->n * w * h + 1); /* debug */
    for (int i = 0; opt->want_masks && i < out->n; i++)
        full_mask(m, gr->masks + (size_t)keep[i] * ls * ls, ls, out, i, prob_all);
    dump_post(m, out, prob_all);
    free(prob_all);
    rt_mark(&m->rt, RT_MARK_S3_END);   /* before the sync: an event after it may not be complete yet */
    return rt_sync(&m->rt, "post-processing", err);
}

/* On a device backend the find's stage times become device times between its marks (the
 * text encoder, the geometry encoder with the prompt's upload, the fusion encoder, the
 * decoder with scoring and its downloads, the segmentation head), read after the syncs;
 * the CPU backends keep their host clock times. */
static void find_times(sam3_model *m) {
    const samc_runtime *rt = &m->rt;
    samc_timings *t = &m->timings;
    t->device_timed = rt->backend->elapsed_ms != NULL;
    t->find_device_ms = t->device_timed ? rt_mark_ms(rt, RT_MARK_S3_BEGIN, RT_MARK_S3_END) : -1.0;
    if (!t->device_timed) return;
    t->text_ms = rt_mark_ms(rt, RT_MARK_S3_BEGIN, RT_MARK_S3_TEXT);
    t->geometry_ms = rt_mark_ms(rt, RT_MARK_S3_TEXT, RT_MARK_S3_PROMPT);
    t->prompt_ms = rt_mark_ms(rt, RT_MARK_S3_BEGIN, RT_MARK_S3_PROMPT);
    t->fusion_ms = rt_mark_ms(rt, RT_MARK_S3_PROMPT, RT_MARK_S3_FUSION);
    t->decoder_ms = rt_mark_ms(rt, RT_MARK_S3_FUSION, RT_MARK_S3_DECODER);
    t->seg_head_ms = rt_mark_ms(rt, RT_MARK_S3_DECODER, RT_MARK_S3_SEG);
}

int sam3_find(sam3_model *m, const sam3_image *img, const sam3_prompt *p, const samc_find_options *opt,
              samc_instances *out, samc_error *err) {
    double t0 = rt_now_ms();
    int Q = m->Q, ls = 4 * m->g;
    if (instances_reserve(out, Q, ls, img->w, img->h, opt->want_masks, err)) return -1;
    if (opt->want_masks && reserve_device_full(m, (size_t)img->w * img->h, err)) return -1;
    out->width = img->w;
    out->height = img->h;
    out->n_queries = Q;
    out->low_size = ls;
    out->n = 0;
    size_t mark = rt_arena_mark(&m->rt);
    sam3_grounding gr = { 0 };
    RT_ALLOC(&m->rt, gr.masks, (size_t)Q * ls * ls);
    int rc = sam3_forward_grounding(m, img, p, &gr, err);
    if (!rc) {
        rt_download(m->rt.ops, out->pred_masks, gr.masks, sizeof(float) * (size_t)Q * ls * ls);
        double t1 = rt_now_ms();
        rc = post_process(m, &gr, img->w, img->h, opt, out, err);
        m->timings.postprocess_ms = rt_now_ms() - t1;
    }
    rt_arena_reset(&m->rt, mark);
    if (rc) {
        out->n = 0;
        return -1;
    }
    find_times(m);
    if (!m->mem_after_predict) rt_mem_info(&m->rt, &m->mem_after_predict, NULL, NULL);
    m->timings.predict_total_ms = rt_now_ms() - t0;
    rt_log(&m->rt,
           "find: text %.1f ms%s, geometry %.1f ms, fusion encoder %.1f ms, decoder + scoring %.1f ms, seg head %.1f ms, "
           "post %.1f ms: %d of %d queries kept",
           m->timings.text_ms, m->timings.text_reused ? " (the previous find's features)" : "",
           m->timings.geometry_ms, m->timings.fusion_ms, m->timings.decoder_ms, m->timings.seg_head_ms,
           m->timings.postprocess_ms, out->n, Q);
    return 0;
}

/* ---- planning ------------------------------------------------------------------------- */

/* One encode and one grounding of the largest prompt: SAM3_MAX_GEO_INPUTS boxes (a box
 * token needs more scratch than a point token). Under planning nothing is computed. */
int sam3_processor_plan(sam3_model *m, samc_error *err) {
    sam3_image img = { .S = m->S, .D = m->D, .g = m->g, .w = m->S, .h = m->S };
    size_t mark = rt_arena_mark(&m->rt);
    float *input;
    RT_ALLOC(&m->rt, input, (size_t)3 * m->S * m->S);
    if (encode_input(m, input, &img, err)) return -1;
    rt_arena_reset(&m->rt, mark);
    sam3_prompt p;
    memset(&p, 0, sizeof p);
    p.n_boxes = SAM3_MAX_GEO_INPUTS;
    for (int i = 0; i < p.n_boxes; i++) {
        p.boxes[i][0] = p.boxes[i][1] = p.boxes[i][2] = p.boxes[i][3] = 0.5f;
        p.box_labels[i] = 1;
    }
    sam3_grounding gr = { 0 };
    RT_ALLOC(&m->rt, gr.masks, (size_t)m->Q * 16 * m->g * m->g);
    if (sam3_forward_grounding(m, &img, &p, &gr, err)) return -1;
    rt_arena_reset(&m->rt, 0);
    return 0;
}
