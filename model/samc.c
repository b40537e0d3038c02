/* model/samc.c: the public API (model/samc.h) over the model families: a weight file is
 * opened once, its family and config are found from the tensor names and shapes, and
 * every call goes to that family's code: SAM2.1 (model/sam2/) or SAM3 (model/sam3/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config/sam2_config.h"
#include "model/config/sam3_config.h"
#include "model/runtime/runtime.h"
#include "model/sam2/sam2.h"
#include "model/sam3/sam3.h"
#include "model/sam3/tokenizer_tables.h"
#include "model/model.h"
#include "model/samc.h"

/* The file's family and config: SAM3 when its names are a SAM3 image model's (the ViT
 * trunk or text encoder keys), else SAM2.1 (image-path tensors required). NULL with the
 * closest config and the first problem in err. */
static int detect(const rt_weights *w, const sam2_config **c2, const sam3_config **c3, samc_error *err) {
    const char **names;
    const int64_t **shapes;
    int *ndims;
    char emsg[SPEC_ERRMSG];
    *c2 = NULL;
    *c3 = NULL;
    if (rt_weights_names(w, &names, &shapes, &ndims, err)) return -1;
    int rc = 0;
    if (sam3_config_looks_like(names, w->n)) {
        /* `samc convert` keeps the video side of sam3.pt (tracker.*, and detector.* keys the
         * image model has no use for) under their original names unless --image-only: no
         * image-model name starts so, so they are left out of the match. */
        int k = 0;
        for (int i = 0; i < w->n; i++) {
            if (!strncmp(names[i], "tracker.", 8) || !strncmp(names[i], "detector.", 9)) continue;
            names[k] = names[i];
            shapes[k] = shapes[i];
            ndims[k++] = ndims[i];
        }
        if (sam3_config_detect(names, shapes, ndims, k, c3, emsg))
            rc = samc_error_set(err, SAMC_ERR_MODEL, "%s: not a SAM3 image model: %s", w->path, emsg);
    } else if (sam2_config_detect(names, shapes, ndims, w->n, SAM2_MATCH_IMAGE_ONLY, c2, emsg)) {
        rc = samc_error_set(err, SAMC_ERR_MODEL, "%s: not a SAM2.1 model: %s", w->path, emsg);
    }
    free(names);
    free(shapes);
    free(ndims);
    return rc;
}

samc_model *samc_model_load(const char *path, const samc_options *opt, samc_error *err) {
    double t0 = rt_now_ms();
    rt_weights w;
    if (opt && opt->log) {
        char line[600];
        snprintf(line, sizeof line, "load: opening %s", path ? path : "(null)");
        opt->log(opt->log_ctx, line);
    }
    if (rt_weights_open(&w, path, err)) return NULL;
    if (opt && opt->log) {
        char line[100];
        snprintf(line, sizeof line, "load: %d tensors read in %.1f ms", w.n, rt_now_ms() - t0);
        opt->log(opt->log_ctx, line);
    }
    samc_model *m = calloc(1, sizeof *m);
    const sam2_config *c2 = NULL;
    const sam3_config *c3 = NULL;
    if (!m) samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
    else if (!detect(&w, &c2, &c3, err)) {
        m->family = c3 ? SAMC_FAMILY_SAM3 : SAMC_FAMILY_SAM2;
        if (c3) m->sam3 = sam3_model_load(&w, c3, opt, err);
        else m->sam2 = sam2_model_load(&w, c2, opt, err);
    }
    rt_weights_close(&w);
    if (!m || (!m->sam2 && !m->sam3)) {
        free(m);
        return NULL;
    }
    return m;
}

void samc_model_free(samc_model *m) {
    if (!m) return;
    sam2_model_free(m->sam2);
    sam3_model_free(m->sam3);
    free(m);
}

void samc_model_get_info(const samc_model *m, samc_model_info *info) {
    memset(info, 0, sizeof *info);
    const samc_runtime *rt = m->sam3 ? &m->sam3->rt : &m->sam2->rt;
    const rt_weights *w = m->sam3 ? &m->sam3->weights : &m->sam2->weights;
    if (m->sam3) {
        const sam3_model *s = m->sam3;
        snprintf(info->config, sizeof info->config, "%s", s->cfg->name);
        info->image_size = s->S;
        info->embed_dim = s->C;
        info->d_model = s->D;
        info->image_bytes = sizeof(float) * (size_t)s->D * 21 * s->g * s->g;   /* levels 4g, 2g, g */
    } else {
        const sam2_model *s = m->sam2;
        int S = s->S, C = s->C;
        snprintf(info->config, sizeof info->config, "%s", s->cfg->name);
        info->image_size = S;
        info->embed_dim = s->cfg->embed_dim;
        info->d_model = C;
        info->image_bytes = sizeof(float) * ((size_t)C * (S / 16) * (S / 16) + (size_t)(C / 8) * (S / 4) * (S / 4) +
                                             (size_t)(C / 4) * (S / 8) * (S / 8));
    }
    info->family = m->family;
    info->n_params = w->n_params;
    info->n_tensors = w->n;
    info->backend = rt->backend->name;
    info->n_threads = rt_backend_threads(rt);
    info->scratch_bytes = rt->arena.cap;
    info->weight_bytes = w->file_bytes;
    info->precision = samc_precision_name(rt->opt.precision);
    size_t start = 0, total = 0;
    if (rt_mem_info(rt, NULL, &start, &total) == 0) {
        info->device_total_bytes = total;
        info->device_used_at_start = start;
        info->device_used_after_load = m->sam2 ? m->sam2->mem_after_load : m->sam3->mem_after_load;
        info->device_used_after_encode = m->sam2 ? m->sam2->mem_after_encode : m->sam3->mem_after_encode;
        info->device_used_after_predict = m->sam2 ? m->sam2->mem_after_predict : m->sam3->mem_after_predict;
    }
    info->graphs = rt->graph_captures;
    if (rt->sizing_ops) {
        samc_ops_sizing t;
        samc_ops_sizing_totals(rt->sizing_ops, &t);
        info->planned = 1;
        info->backend_bytes = t.current;
        info->lowp_bytes = t.lowp;
        info->weights16_bytes = t.weights16;
    }
}

/* A plan-only model (samc_options.plan_only) has no memory behind its buffers. */
static int refuse_planned(const samc_model *m, const char *what, samc_error *err) {
    if (!(m->sam3 ? m->sam3->rt.sizing_ops : m->sam2->rt.sizing_ops)) return 0;
    return samc_error_set(err, SAMC_ERR_ARG, "%s: the model was loaded with plan_only (a memory plan): it cannot run",
                          what);
}

void samc_model_get_timings(const samc_model *m, samc_timings *t) {
    *t = m->sam3 ? m->sam3->timings : m->sam2->timings;
}

samc_image *samc_image_new(samc_model *m, samc_error *err) {
    if (!m) {
        samc_error_set(err, SAMC_ERR_ARG, "samc_image_new: NULL model");
        return NULL;
    }
    samc_image *img = calloc(1, sizeof *img);
    if (!img) {
        samc_error_set(err, SAMC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (m->sam3) img->sam3 = sam3_image_new(m->sam3, err);
    else img->sam2 = sam2_image_new(m->sam2, err);
    if (!img->sam2 && !img->sam3) {
        free(img);
        return NULL;
    }
    return img;
}

void samc_image_free(samc_image *img) {
    if (!img) return;
    sam2_image_free(img->sam2);
    sam3_image_free(img->sam3);
    free(img);
}

int samc_image_width(const samc_image *img) { return img->sam3 ? img->sam3->w : img->sam2->w; }
int samc_image_height(const samc_image *img) { return img->sam3 ? img->sam3->h : img->sam2->h; }

/* An image's buffers belong to the model family and config that made them. */
static int image_of_model(const samc_model *m, const samc_image *img, const char *what, samc_error *err) {
    int ok = m->sam3 ? img->sam3 && img->sam3->S == m->sam3->S && img->sam3->D == m->sam3->D
                     : img->sam2 && img->sam2->S == m->sam2->S && img->sam2->C == m->sam2->C;
    return ok ? 0 : samc_error_set(err, SAMC_ERR_ARG, "%s: the image was made for another model", what);
}

static int check_size(const char *what, int w, int h, samc_error *err) {
    if (w <= 0 || h <= 0 || w > SAM2_MAX_IMAGE_SIDE || h > SAM2_MAX_IMAGE_SIDE ||
        (int64_t)w * h > SAM2_MAX_IMAGE_PIXELS)
        return samc_error_set(err, SAMC_ERR_ARG, "%simage size %dx%d is outside 1..%d per side and %lld pixels", what,
                              w, h, SAM2_MAX_IMAGE_SIDE, (long long)SAM2_MAX_IMAGE_PIXELS);
    return 0;
}

int samc_image_encode(samc_model *m, samc_image *img, const uint8_t *rgb, int w, int h, samc_error *err) {
    if (!m || !img || !rgb) return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode: NULL argument");
    if (refuse_planned(m, "samc_image_encode", err)) return -1;
    if (image_of_model(m, img, "samc_image_encode", err)) return -1;
    if (check_size("", w, h, err)) return -1;
    if (m->sam3) return sam3_image_encode(m->sam3, img->sam3, rgb, w, h, err);
    sam2_image *s = img->sam2;
    return sam2_image_encode_batch(m->sam2, &s, &rgb, &w, &h, 1, err);
}

int samc_image_encode_batch(samc_model *m, samc_image **imgs, const uint8_t *const *rgb, const int *w, const int *h,
                            int n, samc_error *err) {
    if (!m || !imgs || !rgb || !w || !h)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: NULL argument (%s)",
                              !m ? "m" : !imgs ? "imgs" : !rgb ? "rgb" : !w ? "w" : "h");
    if (n < 1) return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: n = %d images (need at least 1)", n);
    if (refuse_planned(m, "samc_image_encode_batch", err)) return -1;
    sam2_image *chunk[SAMC_MAX_ENCODE_BATCH];
    for (int i = 0; i < n; i++) {
        char what[64];
        if (!imgs[i]) return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: imgs[%d] is NULL", i);
        if (!rgb[i]) return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: rgb[%d] is NULL", i);
        snprintf(what, sizeof what, "samc_image_encode_batch: imgs[%d]", i);
        if (image_of_model(m, imgs[i], what, err)) return -1;
        snprintf(what, sizeof what, "samc_image_encode_batch: w[%d] x h[%d]: ", i, i);
        if (check_size(what, w[i], h[i], err)) return -1;
        for (int j = 0; j < i; j++)
            if (imgs[j] == imgs[i])
                return samc_error_set(err, SAMC_ERR_ARG, "samc_image_encode_batch: imgs[%d] and imgs[%d] are the same image",
                                      j, i);
    }
    /* SAM3 encodes one image at a time (its planned batch is 1) */
    for (int i = 0; m->sam3 && i < n; i++)
        if (sam3_image_encode(m->sam3, imgs[i]->sam3, rgb[i], w[i], h[i], err)) {
            for (int j = i; j < n; j++) imgs[j]->sam3->w = 0;
            return -1;
        }
    if (m->sam3) return 0;
    /* the family takes its own image structs, at most SAMC_MAX_ENCODE_BATCH at a time */
    for (int i0 = 0; i0 < n; i0 += SAMC_MAX_ENCODE_BATCH) {
        int k = n - i0 < SAMC_MAX_ENCODE_BATCH ? n - i0 : SAMC_MAX_ENCODE_BATCH;
        for (int i = 0; i < k; i++) chunk[i] = imgs[i0 + i]->sam2;
        if (sam2_image_encode_batch(m->sam2, chunk, rgb + i0, w + i0, h + i0, k, err)) {
            for (int i = i0 + k; i < n; i++) imgs[i]->sam2->w = 0;
            return -1;
        }
    }
    return 0;
}

int samc_predict(samc_model *m, const samc_image *img, const samc_prompt *prompts, int n_prompts,
                 const samc_predict_options *opt, samc_masks *out, samc_error *err) {
    static const samc_predict_options dflt = { .multimask = 0, .want_masks = 1, .want_logits = 0 };
    if (!opt) opt = &dflt;
    if (!m || !img || !out || (!prompts && n_prompts)) return samc_error_set(err, SAMC_ERR_ARG, "samc_predict: NULL argument");
    if (m->sam3)
        return samc_error_set(err, SAMC_ERR_UNSUPPORTED,
                              "samc_predict: %s is a SAM3 model (concept prompts: use samc_find); point / box prompts "
                              "to masks are SAM2.1's",
                              m->sam3->cfg->name);
    if (refuse_planned(m, "samc_predict", err)) return -1;
    if (!img->sam2 || img->sam2->w <= 0 || img->sam2->S != m->sam2->S)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_predict: the image has not been encoded by this model");
    if (n_prompts <= 0) return samc_error_set(err, SAMC_ERR_ARG, "samc_predict: no prompts");
    return sam2_predict(m->sam2, img->sam2, prompts, n_prompts, opt, out, err);
}

/* The ids of the official visual-only prompt's dummy text "visual". */
static const int32_t visual_ids[3] = { 49406, 7195, 49407 };

/* The prompt's token ids: given, the text through the model's tokenizer, or the dummy
 * text of a visual-only prompt. */
static int concept_ids(sam3_model *m, const samc_concept_prompt *p, int32_t *ids, samc_error *err) {
    memset(ids, 0, sizeof(int32_t) * SAMC_CONCEPT_CONTEXT);
    if (p->token_ids) {
        for (int t = 0; t < SAMC_CONCEPT_CONTEXT; t++) {
            if (p->token_ids[t] < 0 || p->token_ids[t] >= 49408)
                return samc_error_set(err, SAMC_ERR_ARG, "samc_find: token_ids[%d] = %d is outside the vocabulary [0, 49408)",
                                      t, p->token_ids[t]);
            ids[t] = p->token_ids[t];
        }
        return 0;
    }
    if (p->text) return sam3_text_ids(m, p->text, ids, err);
    if (p->n_boxes + p->n_points <= 0)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_find: empty prompt: give a text, token ids, boxes or points");
    memcpy(ids, visual_ids, sizeof visual_ids);
    return 0;
}

int samc_find(samc_model *m, const samc_image *img, const samc_concept_prompt *prompt, const samc_find_options *opt,
              samc_instances *out, samc_error *err) {
    static const samc_find_options dflt = { .threshold = 0.5f, .max_detections = 0, .want_masks = 1 };
    if (!opt) opt = &dflt;
    if (!m || !img || !prompt || !out) return samc_error_set(err, SAMC_ERR_ARG, "samc_find: NULL argument");
    if (!m->sam3)
        return samc_error_set(err, SAMC_ERR_UNSUPPORTED,
                              "samc_find: %s is a SAM2.1 model (points / boxes to masks: use samc_predict); concept "
                              "prompts need a SAM3 model",
                              m->sam2->cfg->name);
    if (refuse_planned(m, "samc_find", err) || image_of_model(m, img, "samc_find", err)) return -1;
    if (img->sam3->w <= 0) return samc_error_set(err, SAMC_ERR_ARG, "samc_find: the image has not been encoded");
    if (!(opt->threshold == opt->threshold))
        return samc_error_set(err, SAMC_ERR_ARG, "samc_find: threshold is NaN");
    sam3_prompt p;
    if (sam3_prompt_from_api(m->sam3, prompt, img->sam3->w, img->sam3->h, &p, err) || concept_ids(m->sam3, prompt, p.ids, err))
        return -1;
    return sam3_find(m->sam3, img->sam3, &p, opt, out, err);
}

/* Whether a piece of the tokenizer's regex holds a letter or digit: its pieces are
 * letters, one digit, a contraction ("'s") or a run of other characters, so the class of
 * the last code point decides. */
static int piece_is_word(void *ctx, const char *piece, size_t len, const int32_t *ids, int n_ids) {
    const uint8_t *p = (const uint8_t *)piece;
    size_t i = len;
    while (i > 0 && (p[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return 0;
    uint32_t cp = p[i - 1];
    int extra = cp >= 0xF0 ? 3 : cp >= 0xE0 ? 2 : cp >= 0xC0 ? 1 : 0;
    cp &= extra ? 0x3Fu >> extra : 0x7Fu;
    for (size_t k = i; k < len && k < i + (size_t)extra; k++) cp = (cp << 6) | (p[k] & 0x3Fu);
    int lo = 0, hi = sam3_char_class_runs_n - 1;   /* the run holding cp */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (sam3_char_class_runs[mid].first > cp) hi = mid - 1;
        else lo = mid;
    }
    int cls = sam3_char_class_runs[lo].value;
    *(int *)ctx += cls == SAM3_CC_LETTER || cls == SAM3_CC_NUMBER;
    return 0;
}

int samc_text_tokenize(samc_model *m, const char *text, samc_text_tokens *out, samc_error *err) {
    if (!m || !text || !out) return samc_error_set(err, SAMC_ERR_ARG, "samc_text_tokenize: NULL argument");
    memset(out, 0, sizeof *out);
    if (!m->sam3)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_text_tokenize: %s is a SAM2.1 model: it takes no text",
                              m->sam2->cfg->name);
    sam3_tokenizer *t = m->sam3->tokenizer;
    if (!t) return sam3_text_ids(m->sam3, text, out->ids, err);   /* the missing-vocabulary error */
    unsigned flags = 0, piece_flags = 0;
    size_t len = strlen(text);
    if (sam3_tokenize(t, text, len, SAMC_CONCEPT_CONTEXT, out->ids, &out->n_tokens, &flags, err) ||
        sam3_tokenize_pieces(t, text, len, piece_is_word, &out->n_words, &piece_flags, err) < 0)
        return -1;
    out->truncated = (flags & SAM3_TOK_TRUNCATED) != 0;
    out->invalid_utf8 = (flags & SAM3_TOK_BAD_UTF8) != 0;
    out->input_cut = (flags & SAM3_TOK_INPUT_CUT) != 0;
    return 0;
}

void samc_instances_free(samc_instances *out) {
    if (!out) return;
    free(out->query); free(out->score); free(out->box); free(out->masks); free(out->area);
    free(out->probs); free(out->pred_logits); free(out->pred_boxes); free(out->pred_masks); free(out->prob);
    memset(out, 0, sizeof *out);
}

int samc_predict_records(samc_model *m, const samc_image *img, const samc_prompt *prompts, int n_prompts,
                         const samc_mask_filter *f, samc_mask_records *out, samc_error *err) {
    if (!m || !img || !f || !out || (!prompts && n_prompts))
        return samc_error_set(err, SAMC_ERR_ARG, "samc_predict_records: NULL argument");
    if (m->sam3)
        return samc_error_set(err, SAMC_ERR_UNSUPPORTED,
                              "samc_predict_records: %s is a SAM3 model: automatic masks from point prompts are "
                              "SAM2.1's", m->sam3->cfg->name);
    if (refuse_planned(m, "samc_predict_records", err)) return -1;
    if (!img->sam2 || img->sam2->w <= 0 || img->sam2->S != m->sam2->S)
        return samc_error_set(err, SAMC_ERR_ARG, "samc_predict_records: the image has not been encoded by this model");
    if (n_prompts <= 0) return samc_error_set(err, SAMC_ERR_ARG, "samc_predict_records: no prompts");
    return sam2_predict_records(m->sam2, img->sam2, prompts, n_prompts, f, out, err);
}

void samc_mask_records_free(samc_mask_records *r) {
    if (!r) return;
    free(r->records);
    free(r->toggles);
    memset(r, 0, sizeof *r);
}

void samc_masks_free(samc_masks *out) {
    if (!out) return;
    free(out->low_res); free(out->iou); free(out->object_score); free(out->logits); free(out->masks);
    memset(out, 0, sizeof *out);
}

/* F.interpolate(low, (h, w), mode="bilinear", align_corners=False) of one [ls, ls] map
 * (the reference op; also what the predictor's postprocess_masks does). */
void samc_upsample_logits(const float *low, int ls, float *out, int w, int h) {
    const samc_ops *o = samc_ops_cpu_ref();
    o->upsample_bilinear(o, low, out, 1, ls, w, h);
}

int samc_cuda_device(char *buf, size_t n) { return samc_cuda_device_info(buf, n); }
int samc_cpu_bf16(char *buf, size_t n) { return samc_ops_cpu_fast_bf16(buf, n); }

const char *samc_build_features(void) {
    static char buf[160];
    char why[512];
#ifdef SAMC_HAVE_CUDA
    const char *cuda = "compiled";
#else
    const char *cuda = "not compiled";
#endif
    snprintf(buf, sizeof buf, "cpu_fast=%s cpu_bf16=%s cuda=%s", samc_ops_cpu_fast_isa(),
             samc_ops_cpu_fast_bf16(why, sizeof why) ? "amx" : "no", cuda);
    return buf;
}
