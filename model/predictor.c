/* model/predictor.c: sam2/sam2_image_predictor.py SAM2ImagePredictor (set_image, predict,
 * _prep_prompts, _predict) and sam2/utils/transforms.py SAM2Transforms (resize,
 * normalise, coordinate scaling, postprocess_masks). The public samc_image_encode and
 * samc_predict live here. */
#include "model/sam2.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IMAGE_SIDE 65536
#define MAX_IMAGE_PIXELS ((int64_t)1 << 31)

/* ---- preprocessing ---------------------------------------------------------------- */

/* Weights of PyTorch's antialiased bilinear resize (F.interpolate(mode="bilinear",
 * antialias=True, align_corners=False)) for one axis: output o reads input
 * [first[o], first[o] + count[o]) with weights w[o * wstride + j]. Computed in float as
 * PyTorch does for float tensors. */
static void aa_weights(int in, int out, int *first, int *count, float *w, int wstride) {
    float scale = (float)in / (float)out;
    float support = scale >= 1.0f ? scale : 1.0f;
    float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
    for (int o = 0; o < out; o++) {
        float center = scale * ((float)o + 0.5f);
        int xmin = (int)(center - support + 0.5f);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5f);
        if (xmax > in) xmax = in;
        int n = xmax - xmin;
        if (n > wstride) n = wstride;
        float total = 0.0f;
        for (int j = 0; j < n; j++) {
            float x = ((float)(j + xmin) - center + 0.5f) * invscale;
            float v = 1.0f - fabsf(x);
            w[(size_t)o * wstride + j] = v > 0.0f ? v : 0.0f;
            total += w[(size_t)o * wstride + j];
        }
        for (int j = 0; j < n; j++)
            if (total != 0.0f) w[(size_t)o * wstride + j] /= total;
        first[o] = xmin;
        count[o] = n;
    }
}

/* SAM2Transforms: to_tensor (x/255), resize to S x S (antialiased bilinear; horizontal
 * pass first, as PyTorch's separable kernel), normalise with the ImageNet mean/std. */
static int preprocess(const uint8_t *rgb, int w, int h, int S, float *out, samc_error *err) {
    static const float mean[3] = { 0.485f, 0.456f, 0.406f }, stdv[3] = { 0.229f, 0.224f, 0.225f };
    int wsx = (int)ceilf((float)w / S) * 2 + 3, wsy = (int)ceilf((float)h / S) * 2 + 3;
    int *fx = malloc(sizeof(int) * S * 2), *fy = malloc(sizeof(int) * S * 2);
    float *wx = malloc(sizeof(float) * (size_t)S * wsx), *wy = malloc(sizeof(float) * (size_t)S * wsy);
    float *tmp = malloc(sizeof(float) * 3 * (size_t)h * S); /* after the horizontal pass: [3, h, S] */
    int rc = 0;
    if (!fx || !fy || !wx || !wy || !tmp) { rc = sam2_fail(err, SAMC_ERR_NOMEM, "out of memory resizing a %dx%d image", w, h); goto done; }
    int *cx = fx + S, *cy = fy + S;
    if (w != S) aa_weights(w, S, fx, cx, wx, wsx);
    if (h != S) aa_weights(h, S, fy, cy, wy, wsy);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++) {
            const uint8_t *row = rgb + (size_t)y * w * 3 + c;
            float *dst = tmp + ((size_t)c * h + y) * S;
            if (w == S) {
                for (int x = 0; x < S; x++) dst[x] = (float)row[(size_t)x * 3] / 255.0f;
                continue;
            }
            for (int x = 0; x < S; x++) {
                const float *wt = wx + (size_t)x * wsx;
                float acc = 0.0f;
                for (int j = 0; j < cx[x]; j++) acc += wt[j] * ((float)row[(size_t)(fx[x] + j) * 3] / 255.0f);
                dst[x] = acc;
            }
        }
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++) {
            float *dst = out + ((size_t)c * S + y) * S;
            if (h == S) {
                memcpy(dst, tmp + ((size_t)c * h + y) * S, sizeof(float) * S);
            } else {
                const float *wt = wy + (size_t)y * wsy;
                for (int x = 0; x < S; x++) dst[x] = 0.0f;
                for (int j = 0; j < cy[y]; j++) {
                    const float *src = tmp + ((size_t)c * h + fy[y] + j) * S;
                    for (int x = 0; x < S; x++) dst[x] += wt[j] * src[x];
                }
            }
            for (int x = 0; x < S; x++) dst[x] = (dst[x] - mean[c]) / stdv[c];
        }
done:
    free(fx); free(fy); free(wx); free(wy); free(tmp);
    return rc;
}

static int check_size(const char *what, int w, int h, samc_error *err) {
    if (w <= 0 || h <= 0 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE || (int64_t)w * h > MAX_IMAGE_PIXELS)
        return sam2_fail(err, SAMC_ERR_ARG, "%simage size %dx%d is outside 1..%d per side and %lld pixels", what, w, h,
                         MAX_IMAGE_SIDE, (long long)MAX_IMAGE_PIXELS);
    return 0;
}

/* SAM2ImagePredictor.set_image for B <= max_encode_batch checked images: each is
 * preprocessed on the host into the one staging buffer and uploaded into its slot of
 * the batch input, then the encoder runs once on all B. */
static int encode_chunk(samc_model *m, samc_image *const *imgs, const uint8_t *const *rgb, const int *w,
                        const int *h, int B, samc_error *err) {
    double t0 = sam2_now_ms();
    int S = m->S;
    size_t plane = (size_t)3 * S * S;
    size_t mark = arena_mark(&m->arena);
    float *input;
    ALLOC(input, (size_t)B * plane);
    sam2_dump_host(m, "dense_pe", m->dense_pe_host, 4, (int64_t)1, (int64_t)m->C, (int64_t)(S / 16), (int64_t)(S / 16));
    for (int b = 0; b < B; b++) {
        sam2_log(m, "encode: %dx%d image -> %dx%d input", w[b], h[b], S, S);
        if (preprocess(rgb[b], w[b], h[b], S, m->h_input, err)) { arena_reset(&m->arena, mark); return -1; }
        sam2_upload(m->ops, input + b * plane, m->h_input, sizeof(float) * plane);
        sam2_dump_host(m, "input", m->h_input, 4, (int64_t)1, (int64_t)3, (int64_t)S, (int64_t)S);
        imgs[b]->w = 0;
    }
    m->timings.preprocess_ms = sam2_now_ms() - t0;
    sam2_log(m, "encode: preprocess %.1f ms", m->timings.preprocess_ms);
    int rc = sam2_image_encoder_forward(m, input, imgs, B, 0, err);
    arena_reset(&m->arena, mark);
    char emsg[512];
    if (!rc && m->ops->sync && m->ops->sync(m->ops, emsg))
        rc = sam2_fail(err, SAMC_ERR_INTERNAL, "encode on %s: %s", m->ops->name, emsg);
    if (rc) return -1;
    for (int b = 0; b < B; b++) {
        imgs[b]->w = w[b];
        imgs[b]->h = h[b];
    }
    return 0;
}

int samc_image_encode(samc_model *m, samc_image *img, const uint8_t *rgb, int w, int h, samc_error *err) {
    if (!m || !img || !rgb) return sam2_fail(err, SAMC_ERR_ARG, "samc_image_encode: NULL argument");
    if (img->S != m->S || img->C != m->C)
        return sam2_fail(err, SAMC_ERR_ARG, "samc_image_encode: image buffers were made for another model (%d/%d vs %d/%d)",
                         img->S, img->C, m->S, m->C);
    if (check_size("", w, h, err)) return -1;
    double t0 = sam2_now_ms();
    if (encode_chunk(m, &img, &rgb, &w, &h, 1, err)) return -1;
    m->timings.encode_total_ms = sam2_now_ms() - t0;
    sam2_log(m, "encode: done in %.1f ms", m->timings.encode_total_ms);
    return 0;
}

int samc_image_encode_batch(samc_model *m, samc_image **imgs, const uint8_t *const *rgb, const int *w, const int *h,
                            int n, samc_error *err) {
    if (!m || !imgs || !rgb || !w || !h)
        return sam2_fail(err, SAMC_ERR_ARG, "samc_image_encode_batch: NULL argument (%s)",
                         !m ? "m" : !imgs ? "imgs" : !rgb ? "rgb" : !w ? "w" : "h");
    if (n < 1) return sam2_fail(err, SAMC_ERR_ARG, "samc_image_encode_batch: n = %d images (need at least 1)", n);
    for (int i = 0; i < n; i++) {
        char what[64];
        if (!imgs[i]) return sam2_fail(err, SAMC_ERR_ARG, "samc_image_encode_batch: imgs[%d] is NULL", i);
        if (!rgb[i]) return sam2_fail(err, SAMC_ERR_ARG, "samc_image_encode_batch: rgb[%d] is NULL", i);
        if (imgs[i]->S != m->S || imgs[i]->C != m->C)
            return sam2_fail(err, SAMC_ERR_ARG,
                             "samc_image_encode_batch: imgs[%d] was made for another model (%d/%d vs %d/%d)", i,
                             imgs[i]->S, imgs[i]->C, m->S, m->C);
        snprintf(what, sizeof what, "samc_image_encode_batch: w[%d] x h[%d]: ", i, i);
        if (check_size(what, w[i], h[i], err)) return -1;
        for (int j = 0; j < i; j++)
            if (imgs[j] == imgs[i])
                return sam2_fail(err, SAMC_ERR_ARG, "samc_image_encode_batch: imgs[%d] and imgs[%d] are the same image", j, i);
    }
    double t0 = sam2_now_ms();
    for (int i0 = 0; i0 < n; i0 += m->max_encode_batch) {
        int B = n - i0 < m->max_encode_batch ? n - i0 : m->max_encode_batch;
        if (encode_chunk(m, imgs + i0, rgb + i0, w + i0, h + i0, B, err)) {
            for (int i = i0; i < n; i++) imgs[i]->w = 0;
            return -1;
        }
    }
    m->timings.encode_total_ms = sam2_now_ms() - t0;
    sam2_log(m, "encode: %d images in chunks of up to %d, done in %.1f ms", n, m->max_encode_batch,
             m->timings.encode_total_ms);
    return 0;
}

/* ---- postprocessing --------------------------------------------------------------- */

/* F.interpolate(low, (h, w), mode="bilinear", align_corners=False) of one [ls, ls] map
 * (the reference op; also what the predictor's postprocess_masks does). */
void samc_upsample_logits(const float *low, int ls, float *out, int w, int h) {
    const samc_ops *o = samc_ops_cpu_ref();
    o->upsample_bilinear(o, low, out, 1, ls, w, h);
}

void samc_masks_free(samc_masks *out) {
    if (!out) return;
    free(out->low_res); free(out->iou); free(out->object_score); free(out->logits); free(out->masks);
    memset(out, 0, sizeof *out);
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
        if (!out->cap_low) return sam2_fail(err, SAMC_ERR_NOMEM, "out of memory for %d x %d low-res masks", B, M);
    }
    if ((want_logits || want_masks) && (nf > out->cap_full || (want_logits && !out->logits) || (want_masks && !out->masks))) {
        free(out->logits); free(out->masks);
        out->logits = want_logits ? malloc(sizeof(float) * nf) : NULL;
        out->masks = want_masks ? malloc(nf) : NULL;
        out->cap_full = (!want_logits || out->logits) && (!want_masks || out->masks) ? nf : 0;
        if (!out->cap_full)
            return sam2_fail(err, SAMC_ERR_NOMEM, "out of memory for %d x %d masks of %dx%d pixels", B, M, w, h);
    }
    out->batch = B; out->n_masks = M; out->low_size = ls; out->width = w; out->height = h;
    return 0;
}

/* ---- prediction ------------------------------------------------------------------- */

static int prompt_tokens(const samc_prompt *p) {
    int n = p->n_points + (p->box ? 2 : 0);
    return n ? n + 1 : 0; /* +1: the padding point the predictor always gets */
}

static int check_prompt(const samc_prompt *p, int idx, int w, int h, int S, samc_error *err) {
    if (p->n_points < 0 || p->n_points > SAM2_MAX_TOKENS - 9)
        return sam2_fail(err, SAMC_ERR_ARG, "prompt %d: %d points (at most %d)", idx, p->n_points, SAM2_MAX_TOKENS - 9);
    if (p->n_points && (!p->points || !p->labels))
        return sam2_fail(err, SAMC_ERR_ARG, "prompt %d: points or labels missing", idx);
    if (!p->n_points && !p->box && !p->mask_input)
        return sam2_fail(err, SAMC_ERR_ARG, "prompt %d is empty: give a point, a box or a mask input", idx);
    for (int i = 0; i < p->n_points; i++) {
        float x = p->points[2 * i], y = p->points[2 * i + 1];
        if (!(x >= 0.0f && x <= (float)w && y >= 0.0f && y <= (float)h))
            return sam2_fail(err, SAMC_ERR_ARG, "prompt %d: point %d (%g, %g) is outside the %dx%d image", idx, i, x, y, w, h);
        if (p->labels[i] != 0 && p->labels[i] != 1)
            return sam2_fail(err, SAMC_ERR_ARG, "prompt %d: point %d has label %d (1 = foreground, 0 = background)", idx, i,
                             p->labels[i]);
    }
    if (p->box) {
        const float *b = p->box;
        for (int i = 0; i < 4; i++)
            if (!(b[i] >= 0.0f && b[i] <= (float)(i % 2 ? h : w)))
                return sam2_fail(err, SAMC_ERR_ARG, "prompt %d: box (%g, %g, %g, %g) is outside the %dx%d image", idx,
                                 b[0], b[1], b[2], b[3], w, h);
        if (!(b[0] < b[2] && b[1] < b[3]))
            return sam2_fail(err, SAMC_ERR_ARG, "prompt %d: box (%g, %g, %g, %g) is inverted or empty (need x0 < x1, y0 < y1)",
                             idx, b[0], b[1], b[2], b[3]);
    }
    if (p->mask_input)
        for (int i = 0; i < (S / 4) * (S / 4); i++)
            if (!isfinite(p->mask_input[i]))
                return sam2_fail(err, SAMC_ERR_ARG, "prompt %d: mask input has a non-finite value at %d", idx, i);
    return 0;
}

/* Runs prompts [b0, b0+B) (same token count, all with or all without a mask) through the
 * prompt encoder and decoder and writes their selected outputs. plan=1 only sizes. */
static int predict_chunk(samc_model *m, const samc_image *img, const samc_prompt *pr, int b0, int B, int N,
                         const samc_predict_options *opt, samc_masks *out, int plan, samc_error *err) {
    const samc_ops *o = m->ops;
    int C = m->C, S = m->S, g = S / 16, L = S / 4, n = L * L;
    int M = opt && opt->multimask ? 3 : 1;
    int has_mask = !plan && pr[b0].mask_input != NULL;
    size_t mark = arena_mark(&m->arena);
    float *sparse, *dense, *mask_in = NULL, *all_masks, *all_iou, *obj, *sel_dev;
    ALLOC(sparse, (size_t)B * (N ? N : 1) * C);
    ALLOC(dense, (size_t)B * C * g * g);
    if (plan || has_mask) ALLOC(mask_in, (size_t)B * n);
    ALLOC(all_masks, (size_t)B * 4 * n);
    ALLOC(all_iou, (size_t)B * 4);
    ALLOC(obj, (size_t)B);
    ALLOC(sel_dev, (size_t)3 * n);
    if (sam2_prompt_encoder_forward(m, NULL, NULL, B, N, mask_in, sparse, dense, 1, err)) return -1;
    if (sam2_mask_decoder_forward(m, img, sparse, N, dense, 0, B, all_masks, all_iou, obj, 1, err)) return -1;
    if (plan) { arena_reset(&m->arena, mark); return 0; }

    /* _prep_prompts: pixel coords -> model-input coords, (x / W) * S; box corners first
     * (labels 2, 3), then the clicks, then the padding point (0, 0) with label -1. */
    double t0 = sam2_now_ms();
    int w = img->w, h = img->h;
    float *coords = m->h_coords;
    int *labels = m->h_labels;
    for (int b = 0; b < B; b++) {
        const samc_prompt *p = &pr[b0 + b];
        float *cb = coords + (size_t)b * N * 2;
        int *lb = labels + (size_t)b * N, k = 0;
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
        if (has_mask) sam2_upload(o, mask_in + (size_t)b * n, p->mask_input, sizeof(float) * n);
    }
    if (m->opt.dump && N) {
        /* prompt.coords / labels are recorded without the padding point */
        float *cc = malloc(sizeof(float) * (size_t)B * N * 3);
        if (cc) {
            float *lf = cc + (size_t)B * N * 2;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < N - 1; i++) {
                    cc[((size_t)b * (N - 1) + i) * 2] = coords[((size_t)b * N + i) * 2];
                    cc[((size_t)b * (N - 1) + i) * 2 + 1] = coords[((size_t)b * N + i) * 2 + 1];
                    lf[(size_t)b * (N - 1) + i] = (float)labels[(size_t)b * N + i];
                }
            sam2_dump_host(m, "prompt.coords", cc, 3, (int64_t)B, (int64_t)(N - 1), (int64_t)2);
            sam2_dump_host(m, "prompt.labels", lf, 2, (int64_t)B, (int64_t)(N - 1));
        }
        free(cc);
    }
    if (has_mask) sam2_dump(m, "prompt.mask_input", mask_in, 4, (int64_t)B, (int64_t)1, (int64_t)L, (int64_t)L);
    if (sam2_prompt_encoder_forward(m, coords, labels, B, N, mask_in, sparse, dense, 0, err)) return -1;
    sam2_dump(m, "prompt.sparse", sparse, 3, (int64_t)B, (int64_t)N, (int64_t)C);
    sam2_dump(m, "prompt.dense", dense, 4, (int64_t)B, (int64_t)C, (int64_t)g, (int64_t)g);
    double t1 = sam2_now_ms();
    m->timings.prompt_ms += t1 - t0;
    if (sam2_mask_decoder_forward(m, img, sparse, N, dense, !has_mask, B, all_masks, all_iou, obj, 0, err)) return -1;
    float *hm = m->h_masks, *hi = m->h_iou, *ho = m->h_obj, *sel = m->h_sel;
    sam2_download(o, hm, all_masks, sizeof(float) * (size_t)B * 4 * n);
    sam2_download(o, hi, all_iou, sizeof(float) * (size_t)B * 4);
    sam2_download(o, ho, obj, sizeof(float) * (size_t)B);
    char emsg[512];
    if (o->sync && o->sync(o, emsg)) return sam2_fail(err, SAMC_ERR_INTERNAL, "decoder on %s: %s", o->name, emsg);
    double t2 = sam2_now_ms();
    m->timings.decoder_ms += t2 - t1;

    /* MaskDecoder.forward: tokens 1..3 for multimask, else the dynamic choice (on the
     * host: it reads every logit of token 0 once). */
    float sel_iou[3 * SAM2_MAX_BATCH_CHUNK], stab[SAM2_MAX_BATCH_CHUNK];
    for (int b = 0; b < B; b++) {
        const float *am = hm + (size_t)b * 4 * n, *ai = hi + (size_t)b * 4;
        int t = sam2_dynamic_multimask_choice(am, ai, n, &stab[b]);
        if (M == 3) {
            memcpy(sel + (size_t)b * 3 * n, am + n, sizeof(float) * 3 * n);
            for (int j = 0; j < 3; j++) sel_iou[b * 3 + j] = ai[1 + j];
        } else {
            memcpy(sel + (size_t)b * n, am + (size_t)t * n, sizeof(float) * n);
            sel_iou[b] = ai[t];
        }
    }
    sam2_dump_host(m, "decoder.masks", sel, 4, (int64_t)B, (int64_t)M, (int64_t)L, (int64_t)L);
    sam2_dump_host(m, "decoder.iou", sel_iou, 2, (int64_t)B, (int64_t)M);
    sam2_dump_host(m, "decoder.singlemask_stability", stab, 2, (int64_t)B, (int64_t)1);

    /* _predict / postprocess_masks: one bilinear upsample of the unclamped logits to the
     * original size, threshold > 0; the returned low-res logits are clamped to +-32. */
    size_t full = (size_t)w * h;
    for (int b = 0; b < B; b++) {
        int ob = b0 + b;
        const float *lo = sel + (size_t)b * M * n;
        out->object_score[ob] = ho[b];
        for (int j = 0; j < M; j++) out->iou[(size_t)ob * M + j] = sel_iou[b * M + j];
        if (out->logits) {
            float *up = out->logits + (size_t)ob * M * full;
            if (o->host_memory) {
                o->upsample_bilinear(o, lo, up, M, L, w, h);
            } else {
                sam2_upload(o, sel_dev, lo, sizeof(float) * (size_t)M * n);
                o->upsample_bilinear(o, sel_dev, m->dev_logits, M, L, w, h);
                sam2_download(o, up, m->dev_logits, sizeof(float) * (size_t)M * full);
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
    if (o->sync && o->sync(o, emsg)) return sam2_fail(err, SAMC_ERR_INTERNAL, "postprocess on %s: %s", o->name, emsg);
    m->timings.postprocess_ms += sam2_now_ms() - t2;
    arena_reset(&m->arena, mark);
    return 0;
}

int samc_predict(samc_model *m, const samc_image *img, const samc_prompt *prompts, int n_prompts,
                 const samc_predict_options *opt, samc_masks *out, samc_error *err) {
    samc_predict_options dflt = { .multimask = 0, .want_masks = 1, .want_logits = 0 };
    if (!opt) opt = &dflt;
    if (!m || !img || !out || (!prompts && n_prompts))
        return sam2_fail(err, SAMC_ERR_ARG, "samc_predict: NULL argument");
    if (img->w <= 0 || img->S != m->S) return sam2_fail(err, SAMC_ERR_ARG, "samc_predict: the image has not been encoded by this model");
    if (n_prompts <= 0) return sam2_fail(err, SAMC_ERR_ARG, "samc_predict: no prompts");
    for (int i = 0; i < n_prompts; i++)
        if (check_prompt(&prompts[i], i, img->w, img->h, m->S, err)) return -1;
    double t0 = sam2_now_ms();
    m->timings.prompt_ms = m->timings.decoder_ms = m->timings.postprocess_ms = 0.0;
    int M = opt->multimask ? 3 : 1;
    /* The masks are thresholded full-size logits, so asking for masks fills logits too. */
    int want_logits = opt->want_logits || opt->want_masks;
    if (masks_reserve(out, n_prompts, M, m->S / 4, img->w, img->h, want_logits, opt->want_masks, err)) return -1;
    size_t full = (size_t)M * img->w * img->h;
    if (want_logits && !m->ops->host_memory && full > m->dev_logits_cap) {
        /* device backends: one prompt item's full-size logits; grows to the largest image */
        sam2_backend_free(m->ops, m->dev_logits);
        m->dev_logits = sam2_backend_alloc(m->ops, sizeof(float) * full);
        m->dev_logits_cap = m->dev_logits ? full : 0;
        if (!m->dev_logits) return sam2_fail(err, SAMC_ERR_NOMEM, "out of %s memory for %zu mask logits", m->ops->name, full);
    }
    float *keep_logits = out->logits;
    uint8_t *keep_masks = out->masks;
    if (!want_logits) out->logits = NULL;   /* buffers of an earlier call stay allocated but unwritten */
    if (!opt->want_masks) out->masks = NULL;
    int rc = 0;
    for (int b0 = 0; b0 < n_prompts && !rc;) {
        int N = prompt_tokens(&prompts[b0]), has_mask = prompts[b0].mask_input != NULL, B = 1;
        while (b0 + B < n_prompts && B < m->max_batch && prompt_tokens(&prompts[b0 + B]) == N &&
               (prompts[b0 + B].mask_input != NULL) == has_mask)
            B++;
        rc = predict_chunk(m, img, prompts, b0, B, N, opt, out, 0, err);
        b0 += B;
    }
    out->logits = keep_logits;
    out->masks = keep_masks;
    if (rc) return -1;
    if (m->opt.dump && out->logits)
        sam2_dump(m, "post.masks_logits", out->logits, 4, (int64_t)n_prompts, (int64_t)M, (int64_t)img->h, (int64_t)img->w);
    sam2_dump(m, "out.low_res_masks", out->low_res, 4, (int64_t)n_prompts, (int64_t)M, (int64_t)(m->S / 4), (int64_t)(m->S / 4));
    sam2_dump(m, "out.iou_predictions", out->iou, 2, (int64_t)n_prompts, (int64_t)M);
    m->timings.predict_total_ms = sam2_now_ms() - t0;
    sam2_log(m, "predict: %d prompt(s): prompt encoder %.2f ms, decoder %.2f ms, postprocess %.2f ms",
             n_prompts, m->timings.prompt_ms, m->timings.decoder_ms, m->timings.postprocess_ms);
    return 0;
}

/* Sizes the arena for one encode of max_encode_batch images and one predict chunk of
 * max_batch prompts. */
int sam2_predictor_plan(samc_model *m, samc_error *err) {
    samc_image img = { .S = m->S, .C = m->C };
    samc_image *imgs[SAMC_MAX_ENCODE_BATCH];
    for (int b = 0; b < m->max_encode_batch; b++) imgs[b] = &img;
    float *input;
    ALLOC(input, (size_t)m->max_encode_batch * 3 * m->S * m->S);
    (void)input;
    if (sam2_image_encoder_forward(m, NULL, imgs, m->max_encode_batch, 1, err)) return -1;
    arena_reset(&m->arena, 0);
    samc_prompt p = { 0 };
    samc_predict_options o = { .multimask = 1 };
    return predict_chunk(m, &img, &p, 0, m->max_batch, SAM2_MAX_TOKENS - 6, &o, NULL, 1, err);
}
