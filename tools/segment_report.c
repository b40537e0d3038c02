/* tools/segment_report.c: the outputs of `samc segment`. */
#include "tools/segment_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tools/report.h"
#include "util/image_io.h"

typedef struct {
    int64_t area;
    int x0, y0, x1, y1;   /* inclusive pixel bounds; x1 < x0 when empty */
} mask_stats;

static mask_stats measure(const uint8_t *m, int w, int h) {
    mask_stats st = { 0, w, h, -1, -1 };
    for (int y = 0; y < h; y++) {
        const uint8_t *row = m + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            if (!row[x]) continue;
            st.area++;
            if (x < st.x0) st.x0 = x;
            if (x > st.x1) st.x1 = x;
            if (y < st.y0) st.y0 = y;
            if (y > st.y1) st.y1 = y;
        }
    }
    return st;
}

/* PREFIX_<j>.png for one prompt, PREFIX_b<b>_<j>.png for a batch of boxes. */
static void mask_path(const segment_args *s, int b, int j, char *path, size_t size) {
    const char *prefix = s->out ? s->out : s->default_out;
    if (s->n_boxes > 1) snprintf(path, size, "%s_b%d_%d.png", prefix, b, j);
    else snprintf(path, size, "%s_%d.png", prefix, j);
}

static cJSON *timings_json(const samc_timings *t, double total_ms) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "preprocess_ms", t->preprocess_ms);
    cJSON_AddNumberToObject(o, "patch_embed_ms", t->patch_embed_ms);
    cJSON *st = cJSON_AddArrayToObject(o, "stage_ms");
    for (int i = 0; i < 4; i++) cJSON_AddItemToArray(st, cJSON_CreateNumber(t->stage_ms[i]));
    cJSON_AddNumberToObject(o, "neck_ms", t->neck_ms);
    cJSON_AddNumberToObject(o, "encode_total_ms", t->encode_total_ms);
    cJSON_AddNumberToObject(o, "prompt_ms", t->prompt_ms);
    cJSON_AddNumberToObject(o, "decoder_ms", t->decoder_ms);
    cJSON_AddNumberToObject(o, "postprocess_ms", t->postprocess_ms);
    cJSON_AddNumberToObject(o, "predict_total_ms", t->predict_total_ms);
    cJSON_AddNumberToObject(o, "wall_total_ms", total_ms);
    return o;
}

static cJSON *mask_json(const char *file, int b, int j, float iou, const mask_stats *st) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", file);
    cJSON_AddNumberToObject(o, "batch", b);
    cJSON_AddNumberToObject(o, "index", j);
    cJSON_AddNumberToObject(o, "iou", iou);
    cJSON_AddNumberToObject(o, "area", (double)st->area);
    if (st->area > 0) {
        /* [x, y, width, height], as SAM's automatic mask generator reports boxes. */
        const double bbox[4] = { st->x0, st->y0, st->x1 - st->x0 + 1, st->y1 - st->y0 + 1 };
        cJSON *a = cJSON_AddArrayToObject(o, "bbox");
        for (int i = 0; i < 4; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(bbox[i]));
    } else {
        cJSON_AddNullToObject(o, "bbox");
    }
    return o;
}

static cJSON *report_header(const segment_args *s, const samc_masks *out) {
    cJSON *root = cJSON_CreateObject();
    cJSON *im = cJSON_AddObjectToObject(root, "image");
    cJSON_AddStringToObject(im, "file", s->image);
    cJSON_AddNumberToObject(im, "width", out->width);
    cJSON_AddNumberToObject(im, "height", out->height);
    cJSON_AddStringToObject(root, "model", s->model);
    report_model_json(root, &s->info);
    cJSON_AddNumberToObject(root, "image_size", s->info.image_size);
    cJSON_AddBoolToObject(root, "multimask", s->multimask);
    cJSON_AddNumberToObject(root, "batch", out->batch);
    cJSON_AddNumberToObject(root, "masks_per_prompt", out->n_masks);
    return root;
}

int segment_write_outputs(const segment_args *s, const samc_masks *out) {
    char path[4200], why[512];
    size_t plane = (size_t)out->width * (size_t)out->height;
    cJSON *root = s->json ? report_header(s, out) : NULL;
    cJSON *masks = root ? cJSON_AddArrayToObject(root, "masks") : NULL;
    if (!s->json) {
        char threads[32] = "";
        if (s->info.n_threads > 0) snprintf(threads, sizeof threads, ", %d threads", s->info.n_threads);
        printf("%s: %dx%d, model %s (%s%s), %d prompt%s, %d mask%s each\n", s->image, out->width,
               out->height, s->info.config, s->info.backend ? s->info.backend : "?", threads,
               out->batch, out->batch > 1 ? "s" : "", out->n_masks, out->n_masks > 1 ? "s" : "");
    }
    for (int b = 0; b < out->batch; b++) {
        for (int j = 0; j < out->n_masks; j++) {
            size_t k = (size_t)b * out->n_masks + j;
            mask_path(s, b, j, path, sizeof path);
            if (image_write_mask_png(path, out->masks + k * plane, out->width, out->height, why,
                                     sizeof why) != 0) {
                cli_error(path, "%s", why);
                cJSON_Delete(root);
                return CLI_FAIL;
            }
            mask_stats st = measure(out->masks + k * plane, out->width, out->height);
            if (masks) {
                cJSON_AddItemToArray(masks, mask_json(path, b, j, out->iou[k], &st));
            } else if (st.area > 0) {
                printf("  %s  iou %.4f  area %lld px  bbox x %d..%d y %d..%d\n", path, out->iou[k],
                       (long long)st.area, st.x0, st.x1, st.y0, st.y1);
            } else {
                printf("  %s  iou %.4f  empty\n", path, out->iou[k]);
            }
        }
    }
    if (s->save_lowres) {
        samc_error err = { 0 };
        if (samc_masks_save_lowres(out, s->save_lowres, &err) != 0) {
            cli_lib_error("--save-lowres", &err);
            cJSON_Delete(root);
            return CLI_FAIL;
        }
    }
    if (!root) {
        if (s->save_lowres) printf("  %s  low-res logits\n", s->save_lowres);
        printf("encode %.1f ms, predict %.1f ms, total %.1f ms\n", s->timings.encode_total_ms,
               s->timings.predict_total_ms, s->total_ms);
        return CLI_OK;
    }
    cJSON *obj = cJSON_AddArrayToObject(root, "object_scores");
    for (int b = 0; b < out->batch; b++)
        cJSON_AddItemToArray(obj, cJSON_CreateNumber(out->object_score[b]));
    if (s->save_lowres) cJSON_AddStringToObject(root, "lowres_file", s->save_lowres);
    cJSON_AddItemToObject(root, "timings", timings_json(&s->timings, s->total_ms));
    return report_print_json(root);
}
