/* model/sam2/predictor.c: sam2/sam2_image_predictor.py SAM2ImagePredictor: set_image
 * (preprocess, encode, keep the features), predict (_prep_prompts, _predict: prompt
 * encoder, mask decoder, multimask choice, postprocess_masks). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/sam2/sam2.h"

#define I64(x) ((int64_t)(x))

/* ---- set_image ------------------------------------------------------------------------ */

/* Where image b of an encode batch lies in the staging buffers (device preprocessing):
 * its resize taps (ints, then weights) and its pixels, each on a 64-byte boundary. */
typedef struct {
    size_t ints, weights, rgb;
    int T;
} stage_slot;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Lays the batch out in the staging buffers; the bytes used, or 0 when it does not fit
 * (then the host preprocesses, image by image). */
static size_t stage_layout(const sam2_model *m, const int *w, const int *h, int B, stage_slot *slot) {
    size_t at = 0;
    int S = m->S;
    for (int b = 0; b < B; b++) {
        slot[b].T = sam2_transforms_taps_count(m, w[b], h[b]);
        slot[b].ints = at;
        slot[b].weights = at = align64(at + sizeof(int32_t) * 4 * (size_t)S);
        slot[b].rgb = at = align64(at + sizeof(float) * 2 * (size_t)S * slot[b].T);
        at = align64(at + (size_t)w[b] * h[b] * 3);
    }
    return at <= m->stage_cap ? at : 0;
}

/* One upload of the whole batch (uint8 pixels and taps), then SAM2Transforms on the
 * device into input [B, 3, S, S]. */
static void preprocess_device(sam2_model *m, float *input, const uint8_t *const *rgb, const int *w, const int *h,
                              int B, const stage_slot *slot, size_t used) {
    const samc_ops *o = m->rt.ops;
    int S = m->S;
    samc_resize_taps t;
    sam2_transforms_norm(t.mean, t.std);
    for (int b = 0; b < B; b++) {
        sam2_transforms_taps(m, w[b], h[b], slot[b].T, (int32_t *)(m->h_stage + slot[b].ints),
                             (float *)(m->h_stage + slot[b].weights));
        memcpy(m->h_stage + slot[b].rgb, rgb[b], (size_t)w[b] * h[b] * 3);
    }
    rt_mark(&m->rt, RT_MARK_ENC_BEGIN);
    rt_upload_async(o, m->d_stage, m->h_stage, used);
    rt_mark(&m->rt, RT_MARK_ENC_UPLOADED);
    for (int b = 0; b < B; b++) {
        const int32_t *ti = (const int32_t *)(m->d_stage + slot[b].ints);
        const float *tw = (const float *)(m->d_stage + slot[b].weights);
        t.x0 = ti; t.nx = ti + S; t.y0 = ti + 2 * S; t.ny = ti + 3 * S;
        t.wx = tw; t.wy = tw + (size_t)S * slot[b].T; t.T = slot[b].T;
        o->preprocess(o, m->d_stage + slot[b].rgb, w[b], h[b], &t, input + (size_t)b * 3 * S * S, S);
        rt_dump(&m->rt, "input", input + (size_t)b * 3 * S * S, 4, I64(1), I64(3), I64(S), I64(S));
    }
    rt_mark(&m->rt, RT_MARK_ENC_INPUT);
}

/* SAM2Transforms on the host, image by image through the one staging buffer. */
static void preprocess_host(sam2_model *m, float *input, const uint8_t *const *rgb, const int *w, const int *h,
                            int B) {
    int S = m->S;
    size_t plane = (size_t)3 * S * S;
    for (int b = 0; b < B; b++) {
        sam2_transforms_preprocess(m, rgb[b], w[b], h[b]);
        rt_upload(m->rt.ops, input + b * plane, m->h_input, sizeof(float) * plane);
        rt_dump_host(&m->rt, "input", m->h_input, 4, I64(1), I64(3), I64(S), I64(S));
    }
    rt_mark(&m->rt, RT_MARK_ENC_BEGIN);
    rt_mark(&m->rt, RT_MARK_ENC_UPLOADED);
    rt_mark(&m->rt, RT_MARK_ENC_INPUT);
}

typedef struct {
    sam2_model *m;
    const float *input;
    sam2_image *const *out;
    int B;
} encode_job;

static int encode_enqueue(void *ctx, samc_error *err) {
    const encode_job *j = ctx;
    return sam2_image_encoder(j->m, j->input, j->out, j->B, err);
}

/* The encoder on B preprocessed images already in input [B, 3, S, S] (backend memory).
 * On device backends it writes into slots of the arena (a graph per batch size captures
 * fixed addresses), then each image gets its copy. */
static int encode_input(sam2_model *m, const float *input, sam2_image *const *imgs, int B, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int S = m->S, C = m->C;
    size_t ne = (size_t)C * (S / 16) * (S / 16), n0 = (size_t)(C / 8) * (S / 4) * (S / 4);
    size_t n1 = (size_t)(C / 4) * (S / 8) * (S / 8);
    sam2_image slot_img[SAMC_MAX_ENCODE_BATCH], *slot[SAMC_MAX_ENCODE_BATCH];
    encode_job job = { m, input, imgs, B };
    int slots = !m->rt.backend->host_memory;
    if (slots) {
        float *buf;
        RT_ALLOC(&m->rt, buf, (size_t)B * (ne + n0 + n1));
        for (int b = 0; b < B; b++) {
            slot_img[b] = *imgs[b];
            slot_img[b].image_embed = buf + (size_t)b * (ne + n0 + n1);
            slot_img[b].feat_s0 = slot_img[b].image_embed + ne;
            slot_img[b].feat_s1 = slot_img[b].feat_s0 + n0;
            slot[b] = &slot_img[b];
        }
        job.out = slot;
    }
    if (rt_graph_run(&m->rt, ((uint64_t)1 << 56) | (uint64_t)B, encode_enqueue, &job, err)) return -1;
    for (int b = 0; slots && b < B; b++) {
        o->copy(o, imgs[b]->image_embed, slot[b]->image_embed, ne);
        o->copy(o, imgs[b]->feat_s0, slot[b]->feat_s0, n0);
        o->copy(o, imgs[b]->feat_s1, slot[b]->feat_s1, n1);
    }
    rt_mark(&m->rt, RT_MARK_ENC_END);
    return rt_sync(&m->rt, "encode", err);
}

/* The stage times of the encode just synchronised, from its marks. */
static void encode_timings(sam2_model *m) {
    const samc_runtime *rt = &m->rt;
    samc_timings *t = &m->timings;
    t->upload_ms = rt_mark_ms(rt, RT_MARK_ENC_BEGIN, RT_MARK_ENC_UPLOADED);
    t->preprocess_device_ms = rt_mark_ms(rt, RT_MARK_ENC_UPLOADED, RT_MARK_ENC_INPUT);
    t->patch_embed_ms = rt_mark_ms(rt, RT_MARK_ENC_INPUT, RT_MARK_ENC_PATCH);
    for (int s = 0; s < 4; s++)
        t->stage_ms[s] = rt_mark_ms(rt, s ? RT_MARK_ENC_STAGE0 + s - 1 : RT_MARK_ENC_PATCH, RT_MARK_ENC_STAGE0 + s);
    t->neck_ms = rt_mark_ms(rt, RT_MARK_ENC_STAGE3, RT_MARK_ENC_NECK);
    t->encoder_device_ms = rt_mark_ms(rt, RT_MARK_ENC_INPUT, RT_MARK_ENC_NECK);
    t->device_timed = rt->backend->elapsed_ms != NULL;
    rt_log(rt, "encode: preprocess %.2f ms (host) + %.3f ms (device), upload %.3f ms, patch embed %.3f ms, stages "
           "%.3f / %.3f / %.3f / %.3f ms, neck %.3f ms (%s)", t->preprocess_ms, t->preprocess_device_ms, t->upload_ms,
           t->patch_embed_ms, t->stage_ms[0], t->stage_ms[1], t->stage_ms[2], t->stage_ms[3], t->neck_ms,
           t->device_timed ? "device events" : "host clock");
}

/* SAM2ImagePredictor.set_image for B <= max_encode_batch checked images: preprocessed on
 * the device when the backend has it and the batch fits the staging buffers (one upload of
 * uint8 pixels), else on the host image by image; then the encoder runs once on all B. */
static int encode_chunk(sam2_model *m, sam2_image *const *imgs, const uint8_t *const *rgb, const int *w, const int *h,
                        int B, samc_error *err) {
    static uint64_t serial;
    double t0 = rt_now_ms();
    int S = m->S;
    size_t plane = (size_t)3 * S * S, mark = rt_arena_mark(&m->rt);
    float *input;
    RT_ALLOC(&m->rt, input, (size_t)B * plane);
    rt_dump_host(&m->rt, "dense_pe", m->dense_pe_host, 4, I64(1), I64(m->C), I64(S / 16), I64(S / 16));
    stage_slot slot[SAMC_MAX_ENCODE_BATCH];
    size_t used = m->h_stage && m->rt.ops->preprocess ? stage_layout(m, w, h, B, slot) : 0;
    /* reduced precision: the input goes up (uint8 pixels and taps, or the host's
     * preprocessed planes) exactly as it is and comes out of preprocess in fp32, whatever
     * the last call or a backend switch left; the encoder's first op reads it so, in a
     * graph too */
    if (m->rt.ops->activation_precision) m->rt.ops->activation_precision(m->rt.ops, -1);
    for (int b = 0; b < B; b++) {
        rt_log(&m->rt, "encode: %dx%d image -> %dx%d input (%s)", w[b], h[b], S, S, used ? "device" : "host");
        imgs[b]->w = 0;
    }
    if (used) preprocess_device(m, input, rgb, w, h, B, slot, used);
    else preprocess_host(m, input, rgb, w, h, B);
    m->timings.preprocess_ms = rt_now_ms() - t0;
    int rc = encode_input(m, input, imgs, B, err);
    rt_arena_reset(&m->rt, mark);
    if (rc) return -1;
    encode_timings(m);
    for (int b = 0; b < B; b++) {
        imgs[b]->w = w[b];
        imgs[b]->h = h[b];
        imgs[b]->serial = __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED);
    }
    if (!m->mem_after_encode) rt_mem_info(&m->rt, &m->mem_after_encode, NULL, NULL);
    return 0;
}

int sam2_image_encode_batch(sam2_model *m, sam2_image *const *imgs, const uint8_t *const *rgb, const int *w,
                            const int *h, int n, samc_error *err) {
    for (int i = 0; i < n; i++)
        if (imgs[i]->S != m->S || imgs[i]->C != m->C)
            return samc_error_set(err, SAMC_ERR_ARG, "image %d was made for another model (%d/%d vs %d/%d)", i,
                                  imgs[i]->S, imgs[i]->C, m->S, m->C);
    double t0 = rt_now_ms();
    for (int i0 = 0; i0 < n; i0 += m->max_encode_batch) {
        int B = n - i0 < m->max_encode_batch ? n - i0 : m->max_encode_batch;
        if (encode_chunk(m, imgs + i0, rgb + i0, w + i0, h + i0, B, err)) {
            for (int i = i0; i < n; i++) imgs[i]->w = 0;
            return -1;
        }
    }
    m->timings.encode_total_ms = rt_now_ms() - t0;
    if (n > 1)
        rt_log(&m->rt, "encode: %d images in chunks of up to %d, done in %.1f ms", n, m->max_encode_batch,
               m->timings.encode_total_ms);
    else
        rt_log(&m->rt, "encode: done in %.1f ms", m->timings.encode_total_ms);
    return 0;
}

/* ---- predict: prompts ------------------------------------------------------------------- */

int sam2_prompt_tokens(const samc_prompt *p) {
    int n = p->n_points + (p->box ? 2 : 0);
    return n ? n + 1 : 0; /* +1: the padding point the predictor always gets */
}

static int check_points(const samc_prompt *p, int idx, int w, int h, samc_error *err) {
    if (p->n_points < 0 || p->n_points > SAM2_MAX_TOKENS - 9)
        return samc_error_set(err, SAMC_ERR_ARG, "prompt %d: %d points (at most %d)", idx, p->n_points,
                              SAM2_MAX_TOKENS - 9);
    if (p->n_points && (!p->points || !p->labels))
        return samc_error_set(err, SAMC_ERR_ARG, "prompt %d: points or labels missing", idx);
    for (int i = 0; i < p->n_points; i++) {
        float x = p->points[2 * i], y = p->points[2 * i + 1];
        if (!(x >= 0.0f && x <= (float)w && y >= 0.0f && y <= (float)h))
            return samc_error_set(err, SAMC_ERR_ARG, "prompt %d: point %d (%g, %g) is outside the %dx%d image", idx, i,
                                  x, y, w, h);
        if (p->labels[i] != 0 && p->labels[i] != 1)
            return samc_error_set(err, SAMC_ERR_ARG,
                                  "prompt %d: point %d has label %d (1 = foreground, 0 = background)", idx, i,
                                  p->labels[i]);
    }
    return 0;
}

int sam2_check_prompt(const samc_prompt *p, int idx, int w, int h, int S, samc_error *err) {
    if (check_points(p, idx, w, h, err)) return -1;
    if (!p->n_points && !p->box && !p->mask_input)
        return samc_error_set(err, SAMC_ERR_ARG, "prompt %d is empty: give a point, a box or a mask input", idx);
    if (p->box) {
        const float *b = p->box;
        for (int i = 0; i < 4; i++)
            if (!(b[i] >= 0.0f && b[i] <= (float)(i % 2 ? h : w)))
                return samc_error_set(err, SAMC_ERR_ARG, "prompt %d: box (%g, %g, %g, %g) is outside the %dx%d image",
                                      idx, b[0], b[1], b[2], b[3], w, h);
        if (!(b[0] < b[2] && b[1] < b[3]))
            return samc_error_set(err, SAMC_ERR_ARG,
                                  "prompt %d: box (%g, %g, %g, %g) is inverted or empty (need x0 < x1, y0 < y1)", idx,
                                  b[0], b[1], b[2], b[3]);
    }
    if (p->mask_input)
        for (int i = 0; i < (S / 4) * (S / 4); i++)
            if (!isfinite(p->mask_input[i]))
                return samc_error_set(err, SAMC_ERR_ARG, "prompt %d: mask input has a non-finite value at %d", idx, i);
    return 0;
}

/* _prep_prompts: pixel coords -> model-input coords, (x / W) * S; box corners first
 * (labels 2, 3), then the clicks, then the padding point (0, 0) with label -1; into
 * m->h_coords / m->h_labels [B, N]. */
void sam2_prep_prompts(sam2_model *m, const samc_prompt *pr, int B, int N, int w, int h) {
    int S = m->S;
    for (int b = 0; b < B; b++) {
        const samc_prompt *p = &pr[b];
        float *cb = m->h_coords + (size_t)b * N * 2;
        int *lb = m->h_labels + (size_t)b * N, k = 0;
        if (p->box) {
            cb[0] = p->box[0] / (float)w * (float)S; cb[1] = p->box[1] / (float)h * (float)S;
            cb[2] = p->box[2] / (float)w * (float)S; cb[3] = p->box[3] / (float)h * (float)S;
            lb[0] = 2; lb[1] = 3;
            k = 2;
        }
        for (int i = 0; i < p->n_points; i++, k++) {
            cb[2 * k] = p->points[2 * i] / (float)w * (float)S;
            cb[2 * k + 1] = p->points[2 * i + 1] / (float)h * (float)S;
            lb[k] = p->labels[i];
        }
        if (N) { cb[2 * k] = 0.0f; cb[2 * k + 1] = 0.0f; lb[k] = -1; }
    }
}

/* prompt.coords / labels as recorded in the goldens: without the padding point. */
static void dump_prompts(sam2_model *m, int B, int N) {
    if (!rt_dumping(&m->rt) || !N) return;
    float *cc = malloc(sizeof(float) * (size_t)B * N * 3); /* debug path only */
    if (!cc) return;
    float *lf = cc + (size_t)B * N * 2;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N - 1; i++) {
            cc[((size_t)b * (N - 1) + i) * 2] = m->h_coords[((size_t)b * N + i) * 2];
            cc[((size_t)b * (N - 1) + i) * 2 + 1] = m->h_coords[((size_t)b * N + i) * 2 + 1];
            lf[(size_t)b * (N - 1) + i] = (float)m->h_labels[(size_t)b * N + i];
        }
    rt_dump_host(&m->rt, "prompt.coords", cc, 3, I64(B), I64(N - 1), I64(2));
    rt_dump_host(&m->rt, "prompt.labels", lf, 2, I64(B), I64(N - 1));
    free(cc);
}

/* ---- predict: the model ----------------------------------------------------------------- */

/* The image the decoder reads: on device backends the model's own copy (m->cur), at a
 * fixed address for the decoder's graphs, refreshed when another image comes. */
static const sam2_image *decoder_image(sam2_model *m, const sam2_image *img) {
    if (!m->cur) return img;
    if (m->rt.arena.planning) return m->cur;
    if (m->cur_src != img || m->cur_serial != img->serial) {
        const samc_ops *o = m->rt.ops;
        int S = m->S, C = m->C;
        o->copy(o, m->cur->image_embed, img->image_embed, (size_t)C * (S / 16) * (S / 16));
        o->copy(o, m->cur->feat_s0, img->feat_s0, (size_t)(C / 8) * (S / 4) * (S / 4));
        o->copy(o, m->cur->feat_s1, img->feat_s1, (size_t)(C / 4) * (S / 8) * (S / 8));
        m->cur_src = img;
        m->cur_serial = img->serial;
    }
    return m->cur;
}

typedef struct {
    sam2_model *m;
    const sam2_image *img;
    int B, N;
    const float *mask_in;
    float *sparse, *dense;
    sam2_decoded out;
} decode_job;

/* The part of a decode that runs on the backend (a graph per shape). */
static int decode_enqueue(void *ctx, samc_error *err) {
    const decode_job *j = ctx;
    sam2_model *m = j->m;
    int C = m->C, g = m->S / 16, L = m->S / 4;
    if (j->mask_in) rt_dump(&m->rt, "prompt.mask_input", j->mask_in, 4, I64(j->B), I64(1), I64(L), I64(L));
    if (sam2_prompt_encoder(m, j->B, j->mask_in, j->dense, err)) return -1;
    rt_dump(&m->rt, "prompt.sparse", j->sparse, 3, I64(j->B), I64(j->N), I64(C));
    rt_dump(&m->rt, "prompt.dense", j->dense, 4, I64(j->B), I64(C), I64(g), I64(g));
    rt_mark(&m->rt, RT_MARK_DEC_PROMPT);
    return sam2_mask_decoder(m, j->img, j->sparse, j->N, j->dense, !j->mask_in, j->B, j->out.masks, j->out.iou,
                             j->out.obj, err);
}

static void decode_timings(sam2_model *m, double host_ms) {
    double p = rt_mark_ms(&m->rt, RT_MARK_DEC_BEGIN, RT_MARK_DEC_PROMPT);
    double d = rt_mark_ms(&m->rt, RT_MARK_DEC_PROMPT, RT_MARK_DEC_END);
    m->timings.prompt_ms += host_ms + (p > 0 ? p : 0);
    m->timings.decoder_ms += d > 0 ? d : 0;
}

/* Prompt encoder + mask decoder for B items whose prompts are in m->h_coords /
 * m->h_labels ([B, N]) and, with masks != NULL, mask inputs masks[b] ([S/4, S/4] host):
 * the host part (point encoding, staging) first, then one upload per input, the backend
 * part (a graph per (B, N, masks) on device backends), and the outputs downloaded to
 * m->h_masks / h_iou / h_obj with one synchronisation, or left on the device (keep). */
int sam2_decode_chunk(sam2_model *m, const sam2_image *img, int B, int N, const float *const *masks, int keep,
                      sam2_decoded *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int C = m->C, g = m->S / 16, L = m->S / 4, n = L * L;
    size_t mark = rt_arena_mark(&m->rt);
    decode_job j = { .m = m, .B = B, .N = N };
    float *mask_in = NULL;
    RT_ALLOC(&m->rt, j.sparse, (size_t)B * (N ? N : 1) * C);
    RT_ALLOC(&m->rt, j.dense, (size_t)B * C * g * g);
    if (masks) RT_ALLOC(&m->rt, mask_in, (size_t)B * n);
    RT_ALLOC(&m->rt, j.out.masks, (size_t)B * 4 * n);
    RT_ALLOC(&m->rt, j.out.iou, (size_t)B * 4);
    RT_ALLOC(&m->rt, j.out.obj, (size_t)B);
    double t0 = rt_now_ms();
    sam2_prompt_encoder_points(m, m->h_coords, m->h_labels, B, N);
    for (int b = 0; masks && b < B; b++) memcpy(m->h_maskin + (size_t)b * n, masks[b], sizeof(float) * n);
    double host_ms = rt_now_ms() - t0;
    /* reduced precision: the prompt encoder and mask decoder keep fp32 activations (their
     * mask logits are small differences of large terms; mask post-processing reads them as
     * fp32); the encoder's are 16-bit. Set before the uploads, which write in it. */
    if (o->activation_precision) o->activation_precision(o, 0);
    rt_mark(&m->rt, RT_MARK_DEC_BEGIN);
    if (N) rt_upload_async(o, j.sparse, m->h_sparse, sizeof(float) * (size_t)B * N * C);
    if (masks) rt_upload_async(o, mask_in, m->h_maskin, sizeof(float) * (size_t)B * n);
    rt_mark(&m->rt, RT_MARK_DEC_UPLOADED);
    j.mask_in = mask_in;
    j.img = decoder_image(m, img);
    uint64_t key = ((uint64_t)2 << 56) | ((uint64_t)B << 16) | ((uint64_t)N << 1) | (masks != NULL);
    if (rt_graph_run(&m->rt, key, decode_enqueue, &j, err)) return -1;
    rt_mark(&m->rt, RT_MARK_DEC_DECODER);
    if (keep) {
        *out = j.out;
        rt_mark(&m->rt, RT_MARK_DEC_END);
        return 0;
    }
    rt_download_async(o, m->h_masks, j.out.masks, sizeof(float) * (size_t)B * 4 * n);
    rt_download_async(o, m->h_iou, j.out.iou, sizeof(float) * (size_t)B * 4);
    rt_download_async(o, m->h_obj, j.out.obj, sizeof(float) * (size_t)B);
    rt_mark(&m->rt, RT_MARK_DEC_END);
    int rc = rt_sync(&m->rt, "decoder", err);
    decode_timings(m, host_ms);
    rt_arena_reset(&m->rt, mark);
    return rc;
}

/* MaskDecoder.forward's choice: tokens 1..3 for multimask, else the dynamic choice (on
 * the host: it reads every logit of token 0 once). Into m->h_sel [B, M, n]. */
static void select_masks(sam2_model *m, int B, int M, float *sel_iou) {
    int L = m->S / 4, n = L * L;
    float stab[SAM2_MAX_BATCH_CHUNK];
    for (int b = 0; b < B; b++) {
        const float *am = m->h_masks + (size_t)b * 4 * n, *ai = m->h_iou + (size_t)b * 4;
        int t = sam2_dynamic_multimask_choice(am, ai, n, &stab[b]);
        if (M == 3) {
            memcpy(m->h_sel + (size_t)b * 3 * n, am + n, sizeof(float) * 3 * n);
            for (int j = 0; j < 3; j++) sel_iou[b * 3 + j] = ai[1 + j];
        } else {
            memcpy(m->h_sel + (size_t)b * n, am + (size_t)t * n, sizeof(float) * n);
            sel_iou[b] = ai[t];
        }
    }
    rt_dump_host(&m->rt, "decoder.masks", m->h_sel, 4, I64(B), I64(M), I64(L), I64(L));
    rt_dump_host(&m->rt, "decoder.iou", sel_iou, 2, I64(B), I64(M));
    rt_dump_host(&m->rt, "decoder.singlemask_stability", stab, 2, I64(B), I64(1));
}

/* _predict / postprocess_masks for item ob: one bilinear upsample of the unclamped
 * logits lo [M, L, L] to the original size, threshold > 0; the returned low-res logits
 * are clamped to +-32. */
static void postprocess_item(sam2_model *m, const float *lo, int M, int w, int h, int ob, float *sel_dev,
                             const samc_predict_options *opt, samc_masks *out) {
    const samc_ops *o = m->rt.ops;
    int L = m->S / 4, n = L * L;
    size_t full = (size_t)w * h;
    if (out->logits) {
        float *up = out->logits + (size_t)ob * M * full;
        if (o->host_memory) {
            o->upsample_bilinear(o, lo, up, M, L, w, h);
        } else {
            rt_upload(o, sel_dev, lo, sizeof(float) * (size_t)M * n);
            o->upsample_bilinear(o, sel_dev, m->dev_logits, M, L, w, h);
            rt_download(o, up, m->dev_logits, sizeof(float) * (size_t)M * full);
        }
        if (out->masks) {
            uint8_t *mk = out->masks + (size_t)ob * M * full;
            for (size_t i = 0; i < (size_t)M * full; i++) mk[i] = up[i] > 0.0f;
        }
    }
    float *dst = out->low_res + (size_t)ob * M * n;
    if (opt->low_res_unclamped) memcpy(dst, lo, sizeof(float) * (size_t)M * n);
    else
        for (size_t i = 0; i < (size_t)M * n; i++) dst[i] = lo[i] > 32.0f ? 32.0f : lo[i] < -32.0f ? -32.0f : lo[i];
}

/* Runs prompts [b0, b0+B) (same token count, all with or all without a mask) and writes
 * their selected outputs. */
static int predict_chunk(sam2_model *m, const sam2_image *img, const samc_prompt *pr, int b0, int B, int N,
                         const samc_predict_options *opt, samc_masks *out, samc_error *err) {
    int L = m->S / 4, n = L * L, M = opt->multimask ? 3 : 1;
    const float *masks[SAM2_MAX_BATCH_CHUNK];
    int has_mask = pr[b0].mask_input != NULL;
    for (int b = 0; b < B; b++) masks[b] = pr[b0 + b].mask_input;
    sam2_prep_prompts(m, pr + b0, B, N, img->w, img->h);
    dump_prompts(m, B, N);
    if (sam2_decode_chunk(m, img, B, N, has_mask ? masks : NULL, 0, NULL, err)) return -1;
    double t2 = rt_now_ms();
    float sel_iou[3 * SAM2_MAX_BATCH_CHUNK];
    select_masks(m, B, M, sel_iou);
    size_t mark = rt_arena_mark(&m->rt);
    float *sel_dev;
    RT_ALLOC(&m->rt, sel_dev, (size_t)3 * n);
    for (int b = 0; b < B; b++) {
        int ob = b0 + b;
        out->object_score[ob] = m->h_obj[b];
        for (int j = 0; j < M; j++) out->iou[(size_t)ob * M + j] = sel_iou[b * M + j];
        postprocess_item(m, m->h_sel + (size_t)b * M * n, M, img->w, img->h, ob, sel_dev, opt, out);
    }
    rt_arena_reset(&m->rt, mark);
    int rc = rt_sync(&m->rt, "postprocess", err);
    m->timings.postprocess_ms += rt_now_ms() - t2;
    return rc;
}

/* Grows the output buffers to hold B x M masks (never shrinks: reuse does not allocate). */
static int masks_reserve(samc_masks *out, int B, int M, int ls, int w, int h, int want_logits, int want_masks,
                         samc_error *err) {
    size_t nl = (size_t)B * M * ls * ls, nf = (size_t)B * M * w * h;
    if (nl > out->cap_low || !out->low_res || !out->iou || !out->object_score) {
        free(out->low_res); free(out->iou); free(out->object_score);
        out->low_res = malloc(sizeof(float) * nl);
        /* iou and object_score get B * M entries: reuse is decided on nl alone, and a
         * later B' x M' with B' * M' <= B * M may have B' > B (1 x 3 then 3 x 1). */
        out->iou = malloc(sizeof(float) * (size_t)B * M);
        out->object_score = malloc(sizeof(float) * (size_t)B * M);
        out->cap_low = out->low_res && out->iou && out->object_score ? nl : 0;
        if (!out->cap_low) return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %d x %d low-res masks", B, M);
    }
    if ((want_logits || want_masks) && (nf > out->cap_full || (want_logits && !out->logits) || (want_masks && !out->masks))) {
        free(out->logits); free(out->masks);
        out->logits = want_logits ? malloc(sizeof(float) * nf) : NULL;
        out->masks = want_masks ? malloc(nf) : NULL;
        out->cap_full = (!want_logits || out->logits) && (!want_masks || out->masks) ? nf : 0;
        if (!out->cap_full)
            return samc_error_set(err, SAMC_ERR_NOMEM, "out of memory for %d x %d masks of %dx%d pixels", B, M, w, h);
    }
    out->batch = B; out->n_masks = M; out->low_size = ls; out->width = w; out->height = h;
    return 0;
}

/* Device backends: one prompt item's full-size logits; grows to the largest image. */
static int reserve_device_logits(sam2_model *m, size_t full, samc_error *err) {
    if (m->rt.ops->host_memory || full <= m->dev_logits_cap) return 0;
    rt_free(m->rt.ops, m->dev_logits);
    m->dev_logits = rt_alloc(m->rt.ops, sizeof(float) * full);
    m->dev_logits_cap = m->dev_logits ? full : 0;
    if (!m->dev_logits)
        return samc_error_set(err, SAMC_ERR_NOMEM, "out of %s memory for %zu mask logits", m->rt.ops->name, full);
    return 0;
}

/* Consecutive prompts with the same token count and mask presence, up to max. */
int sam2_chunk_length(const sam2_model *m, const samc_prompt *prompts, int n_prompts, int b0, int max) {
    (void)m;
    int N = sam2_prompt_tokens(&prompts[b0]), has_mask = prompts[b0].mask_input != NULL, B = 1;
    while (b0 + B < n_prompts && B < max && sam2_prompt_tokens(&prompts[b0 + B]) == N &&
           (prompts[b0 + B].mask_input != NULL) == has_mask)
        B++;
    return B;
}

int sam2_predict(sam2_model *m, const sam2_image *img, const samc_prompt *prompts, int n_prompts,
                 const samc_predict_options *opt, samc_masks *out, samc_error *err) {
    if (img->w <= 0 || img->S != m->S)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_predict: the image has not been encoded by this model");
    for (int i = 0; i < n_prompts; i++)
        if (sam2_check_prompt(&prompts[i], i, img->w, img->h, m->S, err)) return -1;
    double t0 = rt_now_ms();
    m->timings.prompt_ms = m->timings.decoder_ms = m->timings.postprocess_ms = 0.0;
    int M = opt->multimask ? 3 : 1;
    /* The masks are thresholded full-size logits, so asking for masks fills logits too. */
    int want_logits = opt->want_logits || opt->want_masks;
    if (masks_reserve(out, n_prompts, M, m->S / 4, img->w, img->h, want_logits, opt->want_masks, err)) return -1;
    if (want_logits && reserve_device_logits(m, (size_t)M * img->w * img->h, err)) return -1;
    float *keep_logits = out->logits;
    uint8_t *keep_masks = out->masks;
    if (!want_logits) out->logits = NULL;   /* buffers of an earlier call stay allocated but unwritten */
    if (!opt->want_masks) out->masks = NULL;
    int rc = 0;
    for (int b0 = 0; b0 < n_prompts && !rc;) {
        int B = sam2_chunk_length(m, prompts, n_prompts, b0, m->max_batch);
        rc = predict_chunk(m, img, prompts, b0, B, sam2_prompt_tokens(&prompts[b0]), opt, out, err);
        b0 += B;
    }
    out->logits = keep_logits;
    out->masks = keep_masks;
    if (rc) return -1;
    if (rt_dumping(&m->rt) && out->logits)
        rt_dump_host(&m->rt, "post.masks_logits", out->logits, 4, I64(n_prompts), I64(M), I64(img->h), I64(img->w));
    rt_dump_host(&m->rt, "out.low_res_masks", out->low_res, 4, I64(n_prompts), I64(M), I64(m->S / 4), I64(m->S / 4));
    rt_dump_host(&m->rt, "out.iou_predictions", out->iou, 2, I64(n_prompts), I64(M));
    m->timings.predict_total_ms = rt_now_ms() - t0;
    if (!m->mem_after_predict) rt_mem_info(&m->rt, &m->mem_after_predict, NULL, NULL);
    rt_log(&m->rt, "predict: %d prompt(s): prompt encoder %.2f ms, decoder %.2f ms, postprocess %.2f ms", n_prompts,
           m->timings.prompt_ms, m->timings.decoder_ms, m->timings.postprocess_ms);
    return 0;
}

/* ---- planning ------------------------------------------------------------------------- */

int sam2_predictor_plan(sam2_model *m, samc_error *err) {
    sam2_image img = { .S = m->S, .C = m->C };
    sam2_image *imgs[SAMC_MAX_ENCODE_BATCH];
    for (int b = 0; b < m->max_encode_batch; b++) imgs[b] = &img;
    size_t mark = rt_arena_mark(&m->rt);
    float *input;
    RT_ALLOC(&m->rt, input, (size_t)m->max_encode_batch * 3 * m->S * m->S);
    if (encode_input(m, input, imgs, m->max_encode_batch, err)) return -1;
    rt_arena_reset(&m->rt, mark);
    /* the largest decoder chunk: max_batch items of the most tokens, with mask inputs
     * (all padding points: the host-side prompt encoding reads real host buffers) */
    int N = SAM2_MAX_TOKENS - 6;
    const float *masks[SAM2_MAX_BATCH_CHUNK];
    for (int b = 0; b < m->max_batch; b++) masks[b] = m->h_sel;
    for (size_t i = 0; i < (size_t)m->max_batch * N; i++) m->h_labels[i] = -1;
    memset(m->h_coords, 0, sizeof(float) * 2 * (size_t)m->max_batch * N);
    if (sam2_decode_chunk(m, &img, m->max_batch, N, masks, 0, NULL, err)) return -1;
    float *sel_dev;
    RT_ALLOC(&m->rt, sel_dev, (size_t)3 * (m->S / 4) * (m->S / 4));
    rt_arena_reset(&m->rt, 0);
    return 0;
}
