/* pipelines/amg/amg_json.c: the records of SAM2AutomaticMaskGenerator.generate() with
 * output_mode="uncompressed_rle" as JSON: the one writer of `masks.json` for `samc
 * everything` and the service's jobs. Keys and their order are the official dict's;
 * numbers are printed as cJSON prints them (integers plainly, other values with 15
 * significant digits, or 17 where 15 do not read back to the same double), so files stay
 * byte-identical to those written before this writer existed. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipelines/amg/amg.h"

static void json_number(FILE *f, double d) {
    if (isnan(d) || isinf(d)) {
        fputs("null", f);
        return;
    }
    if (d == (double)(int)d && fabs(d) < 2147483647.0) {
        fprintf(f, "%d", (int)d);
        return;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%1.15g", d);
    double back = strtod(buf, NULL);
    double scale = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
    if (!(fabs(back - d) <= scale * DBL_EPSILON)) snprintf(buf, sizeof buf, "%1.17g", d);
    fputs(buf, f);
}

static void json_ints(FILE *f, const int *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, i ? ",%d" : "%d", v[i]);
    fputc(']', f);
}

static void json_record(FILE *f, const amg_mask *m, int w, int h) {
    fprintf(f, "{\"segmentation\":{\"size\":[%d,%d],\"counts\":[", h, w);
    for (int64_t i = 0; i < m->n_counts; i++) fprintf(f, i ? ",%u" : "%u", m->counts[i]);
    fputs("]},\"area\":", f);
    json_number(f, (double)m->area);
    fputs(",\"bbox\":", f);
    json_ints(f, (const int[]){ m->box[0], m->box[1], m->box[2] - m->box[0], m->box[3] - m->box[1] }, 4);
    fputs(",\"predicted_iou\":", f);
    json_number(f, m->predicted_iou);
    fputs(",\"point_coords\":[[", f);
    json_number(f, m->point[0]);
    fputc(',', f);
    json_number(f, m->point[1]);
    fputs("]],\"stability_score\":", f);
    json_number(f, m->stability_score);
    fputs(",\"crop_box\":", f);
    json_ints(f, (const int[]){ m->crop_box[0], m->crop_box[1], m->crop_box[2] - m->crop_box[0],
                                m->crop_box[3] - m->crop_box[1] }, 4);
    fputc('}', f);
}

int amg_write_json(FILE *f, const amg_result *r) {
    fputc('[', f);
    for (int k = 0; k < r->n_masks; k++) {
        if (k) fputc(',', f);
        json_record(f, &r->masks[k], r->width, r->height);
    }
    fputs("]\n", f);
    return ferror(f) ? -1 : 0;
}

char *amg_rle_json(const uint32_t *counts, int64_t n_counts, int w, int h) {
    /* Written as text: one cJSON number per run costs an allocation and a %1.15g print
     * each, which made RLE answers several times slower than PNG ones. */
    size_t cap = 64 + 11 * (size_t)n_counts, n = 0;
    char *text = malloc(cap);
    if (!text) return NULL;
    n += (size_t)snprintf(text, cap, "{\"size\":[%d,%d],\"counts\":[", h, w);
    for (int64_t i = 0; i < n_counts; i++) {
        char digits[10];
        int k = 0;
        uint32_t v = counts[i];
        do digits[k++] = (char)('0' + v % 10); while ((v /= 10) != 0);
        if (i) text[n++] = ',';
        while (k) text[n++] = digits[--k];
    }
    memcpy(text + n, "]}", 3);
    return text;
}

cJSON *amg_instance_json(const samc_instances *in, int k, const char *text, int text_index, int with_rle) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = (text ? cJSON_AddStringToObject(o, "text", text) : cJSON_AddNullToObject(o, "text")) != NULL;
    ok = ok && cJSON_AddNumberToObject(o, "text_index", text_index);
    ok = ok && cJSON_AddNumberToObject(o, "query", in->query[k]);
    ok = ok && cJSON_AddNumberToObject(o, "score", in->score[k]);
    cJSON *box = cJSON_AddArrayToObject(o, "box");
    for (int i = 0; i < 4 && box; i++) ok = ok && cJSON_AddItemToArray(box, cJSON_CreateNumber(in->box[4 * k + i]));
    ok = ok && box && cJSON_AddNumberToObject(o, "area", (double)in->area[k]);
    if (ok && with_rle && in->masks) {
        size_t plane = (size_t)in->width * in->height;
        uint32_t *counts = NULL;
        int64_t nc = 0;
        char *rle = NULL;
        if (amg_rle_encode(in->masks + plane * k, in->width, in->height, 0, 0, in->width, in->height, &counts, &nc,
                           NULL) == 0)
            rle = amg_rle_json(counts, nc, in->width, in->height);
        ok = rle && cJSON_AddRawToObject(o, "segmentation", rle);
        free(counts);
        free(rle);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
