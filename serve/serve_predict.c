/* serve/serve_predict.c: a predict task of `samc serve` run on a worker's model, and its
 * JSON answer: masks as uncompressed RLE (as `samc everything` writes them) or base64
 * PNGs, the IoU and object scores, and on request each prompt's best low-res logits
 * ready to send back as "mask_input". */
#include "serve/serve_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipelines/amg/amg.h"
#include "util/png_write.h"

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
        png_buffer b = { 0 };
        char why[200];
        int ok = png_encode(gray, w, h, 1, (size_t)w, png_sink_buffer, &b, why, sizeof why) == 0;
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
    char *text = amg_rle_json(counts, nc, w, h);
    free(counts);
    if (!text) return NULL;
    cJSON *o = cJSON_CreateRaw(text);
    free(text);
    return o;
}

/* Each prompt's best mask (highest predicted IoU, first on ties) as base64 float32
 * logits in "low_res". Returns 0, or -1 when out of memory. */
static int add_low_res(cJSON *o, const samc_masks *out) {
    cJSON *lr = cJSON_AddArrayToObject(o, "low_res");
    size_t ls2 = (size_t)out->low_size * out->low_size;
    int ok = lr != NULL;
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
    return ok ? 0 : -1;
}

/* The masks (in format) and IoU scores of every prompt; 0, or -1 when out of memory. */
static int add_masks(cJSON *o, const samc_masks *out, int format) {
    int w = out->width, h = out->height, nm = out->batch * out->n_masks;
    size_t plane = (size_t)w * h;
    uint8_t *gray = format == SERVE_FMT_PNG ? malloc(plane) : NULL;
    if (format == SERVE_FMT_PNG && !gray) return -1;
    cJSON *masks = cJSON_AddArrayToObject(o, "masks");
    cJSON *iou = cJSON_AddArrayToObject(o, "iou");
    int ok = masks && iou;
    for (int k = 0; k < nm && ok; k++) {
        cJSON *m = mask_json(out->masks + plane * k, w, h, format, gray);
        ok = m != NULL;
        if (m) cJSON_AddItemToArray(masks, m);
        cJSON_AddItemToArray(iou, cJSON_CreateNumber(out->iou[k]));
    }
    free(gray);
    return ok ? 0 : -1;
}

void serve_run_predict(serve_worker *wk, serve_task *t) {
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
        serve_task_fail(t, err.status == SAMC_ERR_ARG ? 400 : 500, "predict: %s", err.msg);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    int ok = add_masks(o, out, r->format) == 0;
    cJSON_AddNumberToObject(o, "width", out->width);
    cJSON_AddNumberToObject(o, "height", out->height);
    cJSON_AddNumberToObject(o, "prompts", out->batch);
    cJSON_AddNumberToObject(o, "masks_per_prompt", out->n_masks);
    cJSON_AddStringToObject(o, "format", r->format == SERVE_FMT_PNG ? "png" : "rle");
    cJSON *os = cJSON_AddArrayToObject(o, "object_score");
    for (int b = 0; b < out->batch; b++) cJSON_AddItemToArray(os, cJSON_CreateNumber(out->object_score[b]));
    if (r->return_low_res && ok) ok = add_low_res(o, out) == 0;
    if (!ok) {
        cJSON_Delete(o);
        serve_task_fail(t, 500, "out of memory encoding %d masks", out->batch * out->n_masks);
        return;
    }
    t->response = serve_json_take(o);
    t->status = t->response ? 200 : 500;
}

/* The text's tokens as samc_find will see them: 0, or -1 with a 400 (or 500) answer for
 * text that is empty, only punctuation or not UTF-8, or a model without vocabulary. A
 * text cut to the context length gets a notice in the answer. */
static int check_text(serve_worker *wk, serve_task *t, samc_text_tokens *tok, cJSON *notices) {
    samc_error err = { 0 };
    if (samc_text_tokenize(wk->model, t->find.text, tok, &err) != 0) {
        if (err.status == SAMC_ERR_UNSUPPORTED)
            serve_task_fail(t, 400, "the model has no vocabulary for \"text\": start samc serve with --vocab "
                            "bpe_simple_vocab_16e6.txt.gz (or SAMC_VOCAB), or give only \"boxes\"");
        else
            serve_task_fail(t, 500, "text: %s", err.msg);
        return -1;
    }
    const char *why = tok->invalid_utf8 ? "is not valid UTF-8"
                      : tok->n_tokens <= 2 ? "is empty (or only spaces): give a noun phrase such as \"roof\""
                      : tok->n_words == 0 ? "has no letter or digit: give a noun phrase such as \"roof\"" : NULL;
    if (why) {
        serve_task_fail(t, 400, "\"text\" %s", why);
        return -1;
    }
    if (tok->truncated) {
        char note[160];
        snprintf(note, sizeof note, "text is %d tokens: cut to %d as the official tokenizer does", tok->n_tokens,
                 SAMC_CONCEPT_CONTEXT);
        cJSON_AddItemToArray(notices, cJSON_CreateString(note));
    }
    return 0;
}

/* The instances as `samc find` writes them, the mask as "segmentation" (RLE) or "png". */
static int add_instances(cJSON *o, const serve_find_req *r, const samc_instances *in) {
    cJSON *arr = cJSON_AddArrayToObject(o, "instances");
    uint8_t *gray = r->format == SERVE_FMT_PNG ? malloc((size_t)in->width * in->height) : NULL;
    int ok = arr && (r->format != SERVE_FMT_PNG || gray);
    for (int k = 0; k < in->n && ok; k++) {
        cJSON *inst = amg_instance_json(in, k, r->text, 0, r->format == SERVE_FMT_RLE);
        ok = inst && cJSON_AddItemToArray(arr, inst);
        if (ok && r->format == SERVE_FMT_PNG) {
            cJSON *png = mask_json(in->masks + (size_t)in->width * in->height * k, in->width, in->height,
                                   SERVE_FMT_PNG, gray);
            ok = png && cJSON_AddItemToObject(inst, "png", png);
        }
    }
    free(gray);
    return ok ? 0 : -1;
}

void serve_run_find(serve_worker *wk, serve_task *t) {
    const serve_find_req *r = &t->find;
    samc_text_tokens tok;
    cJSON *o = cJSON_CreateObject(), *notices = cJSON_CreateArray();
    if (!o || !notices || (r->text && check_text(wk, t, &tok, notices) != 0)) {
        if (!t->response) serve_task_fail(t, 500, "out of memory");
        cJSON_Delete(o);
        cJSON_Delete(notices);
        return;
    }
    samc_concept_prompt p = { .token_ids = r->text ? tok.ids : NULL, .boxes = r->n_boxes ? &r->boxes[0][0] : NULL,
                              .box_labels = r->labels, .n_boxes = r->n_boxes };
    samc_find_options fo = { .threshold = (float)r->threshold, .max_detections = r->max_detections, .want_masks = 1 };
    samc_error err = { 0 };
    samc_instances *in = &wk->inst;
    if (samc_find(wk->model, t->slot->img, &p, &fo, in, &err) != 0) {
        serve_task_fail(t, err.status == SAMC_ERR_ARG ? 400 : 500, "find: %s", err.msg);
        cJSON_Delete(o);
        cJSON_Delete(notices);
        return;
    }
    int ok = add_instances(o, r, in) == 0;
    if (r->text) cJSON_AddStringToObject(o, "text", r->text);
    else cJSON_AddNullToObject(o, "text");
    cJSON_AddNumberToObject(o, "width", in->width);
    cJSON_AddNumberToObject(o, "height", in->height);
    cJSON_AddNumberToObject(o, "threshold", r->threshold);
    cJSON_AddNumberToObject(o, "queries", in->n_queries);
    cJSON_AddNumberToObject(o, "presence", 1.0 / (1.0 + exp(-(double)in->presence_logit)));
    cJSON_AddStringToObject(o, "format", r->format == SERVE_FMT_PNG ? "png" : "rle");
    cJSON_AddItemToObject(o, "notices", notices);
    if (!ok) {
        cJSON_Delete(o);
        serve_task_fail(t, 500, "out of memory encoding %d instances", in->n);
        return;
    }
    t->response = serve_json_take(o);
    t->status = t->response ? 200 : 500;
}
