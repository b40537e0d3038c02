/* tools/find_report.c: the outputs of `samc find` (see find_report.h). */
#include "tools/find_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "loader/safetensors.h"
#include "pipelines/amg/amg.h"
#include "tools/overlay.h"
#include "tools/report.h"

/* The text of result set i: the --text, or NULL for an exemplar-only prompt. */
static const char *find_set_text(const find_args *f, int i) { return f->n_texts ? f->texts[i] : NULL; }

/* DIR/t<i>_k<j>_q<q>.png: kept instance j of result set i, query q. */
static void mask_name(int set, int k, int query, char *out, size_t size) {
    snprintf(out, size, "t%d_k%d_q%d.png", set, k, query);
}

/* --save-raw: per set out.pred_logits [1,Q,1], out.pred_boxes [1,Q,4], out.pred_masks
 * [1,Q,ls,ls], out.presence_logit_dec [1,1], names as in the golden data (prefixed t<i>.
 * with several texts). */
static int save_raw(const find_args *f) {
    enum { PER_SET = 4 };
    int n = f->n_sets * PER_SET;
    st_tensor *t = calloc((size_t)n, sizeof *t);
    char (*names)[64] = calloc((size_t)n, sizeof *names);
    int rc = -1;
    if (!t || !names) {
        cli_error("--save-raw", "out of memory");
        goto done;
    }
    static const char *const what[PER_SET] = { "pred_logits", "pred_boxes", "pred_masks", "presence_logit_dec" };
    for (int s = 0; s < f->n_sets; s++) {
        const samc_instances *in = &f->sets[s];
        const float *data[PER_SET] = { in->pred_logits, in->pred_boxes, in->pred_masks, &in->presence_logit };
        const int64_t shapes[PER_SET][4] = { { 1, in->n_queries, 1 }, { 1, in->n_queries, 4 },
                                             { 1, in->n_queries, in->low_size, in->low_size }, { 1, 1 } };
        const int ndim[PER_SET] = { 3, 3, 4, 2 };
        for (int j = 0; j < PER_SET; j++) {
            st_tensor *x = &t[s * PER_SET + j];
            char prefix[16] = "";
            if (f->n_sets > 1) snprintf(prefix, sizeof prefix, "t%d.", s);
            snprintf(names[s * PER_SET + j], sizeof names[0], "%sout.%s", prefix, what[j]);
            x->name = names[s * PER_SET + j];
            x->dtype = ST_F32;
            x->ndim = ndim[j];
            x->numel = 1;
            for (int d = 0; d < ndim[j]; d++) x->numel *= (x->shape[d] = shapes[j][d]);
            x->data = data[j];
            x->nbytes = (size_t)x->numel * sizeof(float);
        }
    }
    st_sort_by_name(t, n);
    char msg[SAMC_ERRMSG];
    st_meta meta[1] = { { (char *)"format", (char *)"samc-find-raw" } };
    if (st_write(f->save_raw, t, n, meta, 1, msg) != 0) cli_error("--save-raw", "%s", msg);
    else rc = 0;
done:
    free(t);
    free(names);
    return rc;
}

/* {"instances": [...]} plus the image, model, texts, files and timings; the instances
 * carry their mask as RLE (with_rle) for instances.json, and their PNG with a folder. */
static cJSON *report_json(const find_args *f, int with_rle) {
    cJSON *root = cJSON_CreateObject();
    cJSON *all = cJSON_AddArrayToObject(root, "instances");
    cJSON *im = cJSON_AddObjectToObject(root, "image");
    cJSON_AddStringToObject(im, "file", f->image);
    cJSON_AddNumberToObject(im, "width", f->sets[0].width);
    cJSON_AddNumberToObject(im, "height", f->sets[0].height);
    cJSON_AddStringToObject(root, "model", f->model);
    report_model_json(root, &f->info);
    cJSON_AddNumberToObject(root, "threshold", f->threshold);
    cJSON_AddNumberToObject(root, "max_detections", (double)f->max_detections);
    cJSON *texts = cJSON_AddArrayToObject(root, "texts");
    int ok = root && all && im && texts;
    for (int s = 0; s < f->n_sets && ok; s++) {
        const samc_instances *in = &f->sets[s];
        const char *text = find_set_text(f, s);
        cJSON *t = cJSON_CreateObject();
        ok = t && cJSON_AddItemToArray(texts, t);
        ok = ok && (text ? cJSON_AddStringToObject(t, "text", text) : cJSON_AddNullToObject(t, "text"));
        ok = ok && cJSON_AddNumberToObject(t, "presence", 1.0 / (1.0 + exp(-(double)in->presence_logit)));
        ok = ok && cJSON_AddNumberToObject(t, "queries", in->n_queries);
        ok = ok && cJSON_AddNumberToObject(t, "instances", in->n);
        for (int k = 0; k < in->n && ok; k++) {
            cJSON *o = amg_instance_json(in, k, text, s, with_rle);
            char name[64];
            mask_name(s, k, in->query[k], name, sizeof name);
            ok = o && cJSON_AddItemToArray(all, o) && (!f->dir || cJSON_AddStringToObject(o, "file", name));
        }
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON *tm = cJSON_AddObjectToObject(root, "timings");
    cJSON_AddNumberToObject(tm, "load_ms", f->load_ms);
    cJSON_AddNumberToObject(tm, "encode_ms", f->encode_ms);
    cJSON_AddNumberToObject(tm, "find_ms", f->find_ms);
    cJSON_AddNumberToObject(tm, "total_ms", f->total_ms);
    return root;
}

static int write_text(FILE *f, void *ctx) {
    char *text = cJSON_Print(ctx);
    if (!text) return -1;
    int rc = fputs(text, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
    free(text);
    return rc;
}

static int by_area_desc(const void *pa, const void *pb, void *ctx) {
    const find_args *f = ctx;
    const int *a = pa, *b = pb;   /* (set, k, colour) */
    int64_t x = f->sets[a[0]].area[a[1]], y = f->sets[b[0]].area[b[1]];
    if (x != y) return x > y ? -1 : 1;
    return a[0] != b[0] ? a[0] - b[0] : a[1] - b[1];
}

/* Every instance blended over the image in its colour (largest first, so small ones stay
 * visible), then its label "text score" at its box's top-left corner. */
static int write_overlay(const find_args *f, const image_rgb *img, const char *path) {
    int total = 0;
    for (int s = 0; s < f->n_sets; s++) total += f->sets[s].n;
    size_t plane = (size_t)img->w * img->h;
    uint8_t *rgb = malloc(plane * 3);
    int (*order)[3] = malloc(sizeof *order * (size_t)(total ? total : 1));   /* set, k, colour */
    if (!rgb || !order) {
        free(rgb); free(order);
        cli_error("--out", "out of memory for a %dx%d overlay", img->w, img->h);
        return -1;
    }
    memcpy(rgb, img->rgb, plane * 3);
    int n = 0;
    for (int s = 0; s < f->n_sets; s++)
        for (int k = 0; k < f->sets[s].n; k++, n++) order[n][0] = s, order[n][1] = k, order[n][2] = n;
    qsort_r(order, (size_t)n, sizeof *order, by_area_desc, (void *)f);
    uint8_t c[3];
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            const samc_instances *in = &f->sets[order[i][0]];
            int k = order[i][1];
            overlay_colour(order[i][2], c);
            if (pass == 0) {
                overlay_paint_mask(rgb, img->w, img->h, in->masks + plane * k, c);
                continue;
            }
            const char *text = find_set_text(f, order[i][0]);
            char label[96];
            snprintf(label, sizeof label, "%.60s %.2f", text ? text : "exemplar", in->score[k]);
            overlay_label(rgb, img->w, img->h, (int)floorf(in->box[4 * k]), (int)floorf(in->box[4 * k + 1]), label, c);
        }
    free(order);
    int rc = overlay_write_png("--out", path, rgb, img->w, img->h);
    free(rgb);
    return rc;
}

/* The mask PNGs, instances.json and overlay.png in f->dir. */
static int write_dir(const find_args *f, const image_rgb *img) {
    char path[4200], name[64], why[512];
    for (int s = 0; s < f->n_sets; s++) {
        const samc_instances *in = &f->sets[s];
        for (int k = 0; k < in->n; k++) {
            mask_name(s, k, in->query[k], name, sizeof name);
            snprintf(path, sizeof path, "%s/%s", f->dir, name);
            if (image_write_mask_png(path, in->masks + (size_t)in->width * in->height * k, in->width, in->height, why,
                                     sizeof why) != 0) {
                cli_error("--out", "%s: %s", path, why);
                return -1;
            }
        }
    }
    cJSON *doc = report_json(f, 1);
    if (!doc) {
        cli_error("--out", "out of memory for instances.json");
        return -1;
    }
    snprintf(path, sizeof path, "%s/instances.json", f->dir);
    int rc = cli_write_atomic("--out", path, write_text, doc);
    cJSON_Delete(doc);
    snprintf(path, sizeof path, "%s/overlay.png", f->dir);
    return rc ? rc : write_overlay(f, img, path);
}

static void print_text(const find_args *f) {
    char backend[96];
    report_backend_text(&f->info, backend, sizeof backend);
    printf("%s: %dx%d, model %s (%s)\n", f->image, f->sets[0].width, f->sets[0].height, f->info.config, backend);
    for (int s = 0; s < f->n_sets; s++) {
        const samc_instances *in = &f->sets[s];
        const char *text = find_set_text(f, s);
        printf("%s%s%s: %d instance%s with score > %g (presence %.3f, %d queries)\n", text ? "'" : "",
               text ? text : "exemplars", text ? "'" : "", in->n, in->n == 1 ? "" : "s", f->threshold,
               1.0 / (1.0 + exp(-(double)in->presence_logit)), in->n_queries);
        for (int k = 0; k < in->n; k++) {
            char name[64];
            mask_name(s, k, in->query[k], name, sizeof name);
            const float *b = in->box + 4 * k;
            printf("  %s  score %.4f  box %.1f,%.1f,%.1f,%.1f  area %lld px\n", name, in->score[k], b[0], b[1], b[2],
                   b[3], (long long)in->area[k]);
        }
    }
    if (f->dir) printf("  -> %s/instances.json, %s/overlay.png\n", f->dir, f->dir);
    if (f->save_raw) printf("  raw outputs -> %s\n", f->save_raw);
    printf("load %.1f ms, encode %.1f ms, find %.1f ms (%d text%s), total %.1f ms\n", f->load_ms, f->encode_ms,
           f->find_ms, f->n_sets, f->n_sets == 1 ? "" : "s", f->total_ms);
}

int find_write_outputs(const find_args *f, const image_rgb *img) {
    if (f->save_raw && save_raw(f) != 0) return CLI_FAIL;
    if (f->dir && write_dir(f, img) != 0) return CLI_FAIL;
    if (!f->json) {
        print_text(f);
        return CLI_OK;
    }
    cJSON *doc = report_json(f, 0);
    if (!doc) {
        cli_error("--json", "out of memory");
        return CLI_FAIL;
    }
    return report_print_json(doc);
}
