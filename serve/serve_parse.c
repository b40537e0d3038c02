/* serve/serve_parse.c: request parsing of `samc serve` (see serve_parse.h). */
#include "serve/serve_parse.h"

#ifdef SAMC_HAVE_GDAL
#include "pipelines/mosaic/config.h"
#endif

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static int failf(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int failf(char *why, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* cJSON keeps numbers as doubles; a coordinate must be finite and fit a float. */
static int get_float(const cJSON *v, float *out) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e30) return -1;
    *out = (float)v->valuedouble;
    return 0;
}

/* [[a, b, ...], ...]: an array of at most cap arrays of exactly n numbers each. */
static int get_tuples(const cJSON *arr, const char *key, int n, int cap, float *out, int *count,
                      char *why, size_t ws) {
    if (!cJSON_IsArray(arr)) return failf(why, ws, "\"%s\" must be an array of [%s] arrays", key,
                                          n == 2 ? "x, y" : "x0, y0, x1, y1");
    int k = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr) {
        if (k >= cap) return failf(why, ws, "\"%s\" has more than %d entries", key, cap);
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != n)
            return failf(why, ws, "\"%s\"[%d] must be an array of %d numbers", key, k, n);
        for (int j = 0; j < n; j++)
            if (get_float(cJSON_GetArrayItem(item, j), &out[k * n + j]) != 0)
                return failf(why, ws, "\"%s\"[%d][%d] is not a finite number", key, k, j);
        k++;
    }
    *count = k;
    return 0;
}

static int inside(float x, float y, int w, int h) {
    return x >= 0.0f && y >= 0.0f && x <= (float)w && y <= (float)h;
}

/* Every box inside the w x h image and not inverted. */
static int check_boxes(const float (*boxes)[4], int n, int w, int h, char *why, size_t ws) {
    for (int b = 0; b < n; b++) {
        const float *x = boxes[b];
        if (!inside(x[0], x[1], w, h) || !inside(x[2], x[3], w, h))
            return failf(why, ws, "box %d (%g, %g, %g, %g) is outside the %dx%d image", b, x[0], x[1], x[2], x[3], w, h);
        if (x[2] <= x[0] || x[3] <= x[1]) return failf(why, ws, "box %d is inverted or empty: need x1 > x0 and y1 > y0", b);
    }
    return 0;
}

/* "labels": one 0 or 1 per entry of `what` (n of them), into out; all 1 when absent. */
static int get_labels(const cJSON *labels, int n, const char *what, int *out, char *why, size_t ws) {
    if (!labels) {
        for (int i = 0; i < n; i++) out[i] = 1;
        return 0;
    }
    if (!cJSON_IsArray(labels) || cJSON_GetArraySize(labels) != n)
        return failf(why, ws, "\"labels\" must be an array with one 0 or 1 per %s (%d %ss)", what, n, what);
    for (int i = 0; i < n; i++) {
        const cJSON *l = cJSON_GetArrayItem(labels, i);
        if (!cJSON_IsNumber(l) || (l->valuedouble != 0.0 && l->valuedouble != 1.0))
            return failf(why, ws, "\"labels\"[%d] must be 1 (%s) or 0 (%s)", i, !strcmp(what, "box") ? "positive" : "foreground",
                         !strcmp(what, "box") ? "negative" : "background");
        out[i] = (int)l->valuedouble;
    }
    return 0;
}

static int get_format(const cJSON *format, int *out, char *why, size_t ws) {
    if (!format) return 0;
    if (cJSON_IsString(format) && !strcmp(format->valuestring, "rle")) *out = SERVE_FMT_RLE;
    else if (cJSON_IsString(format) && !strcmp(format->valuestring, "png")) *out = SERVE_FMT_PNG;
    else return failf(why, ws, "\"format\" must be \"rle\" or \"png\"");
    return 0;
}

static int get_bool(const cJSON *root, const char *key, int *out, char *why, size_t ws) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return failf(why, ws, "\"%s\" must be true or false", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Keys a body may have: anything else is a typo the client should hear about. */
static int check_keys(const cJSON *obj, const char *const *keys, const char *where, char *why, size_t ws) {
    const cJSON *item;
    cJSON_ArrayForEach(item, obj) {
        int known = 0;
        for (int i = 0; keys[i] && !known; i++) known = item->string && !strcmp(item->string, keys[i]);
        if (!known) return failf(why, ws, "unknown key \"%.64s\" in %s", item->string ? item->string : "", where);
    }
    return 0;
}

static cJSON *parse_object(const char *body, size_t len, char *why, size_t ws) {
    if (!body || len == 0) {
        failf(why, ws, "empty body: a JSON object is expected");
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= body && at <= body + len ? (long)(at - body) : -1;
        failf(why, ws, "malformed JSON near byte %ld", off);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        failf(why, ws, "the body must be a JSON object");
        return NULL;
    }
    return root;
}

void serve_predict_req_free(serve_predict_req *req) {
    free(req->mask_input);
    req->mask_input = NULL;
}

int serve_parse_predict(const char *body, size_t len, int w, int h, int low_size,
                        serve_predict_req *req, char *why, size_t ws) {
    memset(req, 0, sizeof *req);
    cJSON *root = parse_object(body, len, why, ws);
    if (!root) return -1;
    static const char *const keys[] = { "points", "labels", "boxes", "mask_input", "multimask",
                                        "format", "return_low_res", NULL };
    int rc = -1, multimask = -1;
    if (check_keys(root, keys, "the predict body", why, ws) != 0) goto done;
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(root, "points");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(root, "labels");
    const cJSON *boxes = cJSON_GetObjectItemCaseSensitive(root, "boxes");
    const cJSON *mask = cJSON_GetObjectItemCaseSensitive(root, "mask_input");
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (pts && get_tuples(pts, "points", 2, SERVE_MAX_POINTS, &req->points[0][0], &req->n_points, why, ws)) goto done;
    if (boxes && get_tuples(boxes, "boxes", 4, SERVE_MAX_BOXES, &req->boxes[0][0], &req->n_boxes, why, ws)) goto done;
    if (get_labels(labels, req->n_points, "point", req->labels, why, ws)) goto done;
    for (int i = 0; i < req->n_points; i++)
        if (!inside(req->points[i][0], req->points[i][1], w, h)) {
            failf(why, ws, "point %d (%g, %g) is outside the %dx%d image", i, req->points[i][0],
                  req->points[i][1], w, h);
            goto done;
        }
    if (check_boxes(req->boxes, req->n_boxes, w, h, why, ws) != 0) goto done;
    if (mask) {
        size_t bytes = (size_t)low_size * low_size * sizeof(float);
        if (!cJSON_IsString(mask) || low_size <= 0) {
            failf(why, ws, "\"mask_input\" must be a base64 string of %dx%d float32 values", low_size, low_size);
            goto done;
        }
        size_t n = strlen(mask->valuestring);
        req->mask_input = malloc(bytes);
        if (!req->mask_input) {
            failf(why, ws, "out of memory for a %dx%d mask input", low_size, low_size);
            goto done;
        }
        if (serve_base64_decode(mask->valuestring, n, (uint8_t *)req->mask_input, bytes) != (long)bytes) {
            failf(why, ws, "\"mask_input\" must be base64 of exactly %zu bytes (%dx%d float32, little-endian)",
                  bytes, low_size, low_size);
            goto done;
        }
        for (size_t i = 0; i < (size_t)low_size * low_size; i++)
            if (!isfinite(req->mask_input[i])) {
                failf(why, ws, "\"mask_input\" value %zu is not finite", i);
                goto done;
            }
    }
    if (get_bool(root, "multimask", &multimask, why, ws)) goto done;
    if (get_bool(root, "return_low_res", &req->return_low_res, why, ws)) goto done;
    if (get_format(format, &req->format, why, ws)) goto done;
    if (req->n_points == 0 && req->n_boxes == 0 && !req->mask_input) {
        failf(why, ws, "no prompt: give \"points\", \"boxes\" or \"mask_input\"");
        goto done;
    }
    /* As `samc segment`: three candidates only where one click is ambiguous. */
    req->multimask = multimask >= 0 ? multimask : (req->n_points == 1 && req->n_boxes == 0 && !req->mask_input);
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc) serve_predict_req_free(req);
    return rc;
}

/* A number of obj in [lo, hi], integral when is_int; left as it is when absent. where
 * prefixes the key in the message ("\"options\"." for a job's options). */
static int get_number(const cJSON *obj, const char *where, const char *key, double lo, double hi, int is_int,
                      double *out, char *why, size_t ws) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi ||
        (is_int && v->valuedouble != floor(v->valuedouble)))
        return failf(why, ws, "%s\"%s\" must be %s in [%g, %g]", where, key, is_int ? "an integer" : "a number", lo, hi);
    *out = v->valuedouble;
    return 0;
}

static int get_option(const cJSON *opts, const char *key, double lo, double hi, int is_int, double *out,
                      char *why, size_t ws) {
    return get_number(opts, "\"options\".", key, lo, hi, is_int, out, why, ws);
}

void serve_find_req_free(serve_find_req *req) {
    free(req->text);
    req->text = NULL;
}

int serve_parse_find(const char *body, size_t len, int w, int h, serve_find_req *req, char *why, size_t ws) {
    memset(req, 0, sizeof *req);
    req->threshold = 0.5f;
    cJSON *root = parse_object(body, len, why, ws);
    if (!root) return -1;
    static const char *const keys[] = { "text", "boxes", "labels", "threshold", "max_detections", "format", NULL };
    int rc = -1;
    double v;
    if (check_keys(root, keys, "the find body", why, ws) != 0) goto done;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    const cJSON *boxes = cJSON_GetObjectItemCaseSensitive(root, "boxes");
    if (text && !cJSON_IsNull(text)) {
        if (!cJSON_IsString(text)) {
            failf(why, ws, "\"text\" must be a string (a noun phrase such as \"roof\") or null");
            goto done;
        }
        size_t n = strlen(text->valuestring);
        if (n == 0 || n > SERVE_MAX_TEXT) {
            failf(why, ws, "\"text\" is %s: give a noun phrase such as \"roof\"%s", n ? "longer than 8192 bytes" : "empty",
                  n ? "" : ", or only \"boxes\" for a visual prompt");
            goto done;
        }
        if (!(req->text = strdup(text->valuestring))) {
            failf(why, ws, "out of memory");
            goto done;
        }
    }
    if (boxes && get_tuples(boxes, "boxes", 4, SAMC_CONCEPT_MAX_GEOMETRY, &req->boxes[0][0], &req->n_boxes, why, ws))
        goto done;
    if (check_boxes(req->boxes, req->n_boxes, w, h, why, ws) ||
        get_labels(cJSON_GetObjectItemCaseSensitive(root, "labels"), req->n_boxes, "box", req->labels, why, ws) ||
        get_format(cJSON_GetObjectItemCaseSensitive(root, "format"), &req->format, why, ws))
        goto done;
    if (get_number(root, "", "threshold", -1, 1, 0, &req->threshold, why, ws)) goto done;
    v = 0;
    if (get_number(root, "", "max_detections", 0, 1000000, 1, &v, why, ws)) goto done;
    req->max_detections = (int)v;
    if (!req->text && req->n_boxes == 0) {
        failf(why, ws, "no prompt: give \"text\" (what to find) and / or \"boxes\" (examples of it)");
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc) serve_find_req_free(req);
    return rc;
}

int serve_check_rel_path(const char *path, char *why, size_t ws) {
    size_t n = strlen(path);
    if (n == 0) return failf(why, ws, "empty path");
    if (n > 1000) return failf(why, ws, "path longer than 1000 bytes");
    if (path[0] == '/') return failf(why, ws, "absolute path: paths are relative to the server's data folder");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return failf(why, ws, "path has a control character or backslash at byte %zu", i);
    }
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0) return failf(why, ws, "path has an empty component");
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return failf(why, ws, "path has a '.' or '..' component");
        if (!slash) break;
        p = slash + 1;
    }
    return 0;
}

static int get_path(const cJSON *root, const char *key, int required, char *out, size_t cap, char *why, size_t ws) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) {
        if (required) return failf(why, ws, "missing \"%s\" (a path relative to the data folder)", key);
        out[0] = '\0';
        return 0;
    }
    char sub[256];
    if (!cJSON_IsString(v)) return failf(why, ws, "\"%s\" must be a string", key);
    if (serve_check_rel_path(v->valuestring, sub, sizeof sub) != 0) return failf(why, ws, "\"%s\": %s", key, sub);
    if (strlen(v->valuestring) >= cap) return failf(why, ws, "\"%s\" is too long", key);
    snprintf(out, cap, "%s", v->valuestring);
    return 0;
}

/* The options of a mosaic job, by sam-mosaic's flat names (pipelines/mosaic/config.h): numbers,
 * booleans, strings, and null for max_passes. */
static int parse_mosaic_options(const cJSON *opts, mosaic_options *o, char *why, size_t ws) {
#ifdef SAMC_HAVE_GDAL
    mosaic_options_default(o);
    for (const cJSON *it = opts ? opts->child : NULL; it; it = it->next) {
        char text[64], sub[300];
        if (cJSON_IsNumber(it)) snprintf(text, sizeof text, "%.17g", it->valuedouble);
        else if (cJSON_IsBool(it)) snprintf(text, sizeof text, "%s", cJSON_IsTrue(it) ? "true" : "false");
        else if (cJSON_IsNull(it)) snprintf(text, sizeof text, "null");
        else if (cJSON_IsString(it) && strlen(it->valuestring) < sizeof text) snprintf(text, sizeof text, "%s", it->valuestring);
        else return failf(why, ws, "\"options\".\"%.64s\" must be a number, boolean, short string or null", it->string);
        int r = mosaic_config_set(o, MOSAIC_NAME_FLAT, it->string, text, sub, sizeof sub);
        if (r == 1) return failf(why, ws, "unknown mosaic option \"%.64s\" (known: %s)", it->string, mosaic_config_flat_names());
        if (r < 0) return failf(why, ws, "\"options\".\"%.64s\": %s", it->string, sub);
    }
    samc_error err = { 0 };
    if (o->mp.iou_end > o->mp.iou_start) return failf(why, ws, "iou_end %g is above iou_start %g", o->mp.iou_end, o->mp.iou_start);
    if (o->mp.stability_end > o->mp.stability_start)
        return failf(why, ws, "stability_end %g is above stability_start %g", o->mp.stability_end, o->mp.stability_start);
    if (mosaic_options_check(o, &err) != 0) return failf(why, ws, "%s", err.msg);
    return 0;
#else
    (void)opts;
    (void)o;
    return failf(why, ws, "this samc was built without GDAL: mosaic jobs are not available");
#endif
}

/* A mosaic job's SAM3 classes: "text": "roof" or ["roof", "tree"], "threshold": 0.5. */
static int parse_mosaic_classes(const cJSON *root, const cJSON *text, mosaic_options *o, char *why, size_t ws) {
#ifdef SAMC_HAVE_GDAL
    double t = o->score_threshold;
    if (get_number(root, "", "threshold", -1, 1, 0, &t, why, ws)) return -1;
    if (!text) {
        if (cJSON_GetObjectItemCaseSensitive(root, "threshold")) return failf(why, ws, "\"threshold\" without \"text\"");
        return 0;
    }
    o->score_threshold = t;
    if (!cJSON_IsString(text) && !(cJSON_IsArray(text) && cJSON_GetArraySize(text) > 0))
        return failf(why, ws, "\"text\" must be a class text (\"roof\") or a non-empty list of them");
    const cJSON *item = cJSON_IsString(text) ? text : text->child;
    for (; item; item = cJSON_IsString(text) ? NULL : item->next) {
        char sub[200];
        if (!cJSON_IsString(item)) return failf(why, ws, "\"text\" must hold only strings");
        if (mosaic_options_add_class(o, item->valuestring, sub, sizeof sub) != 0) return failf(why, ws, "\"text\": %s", sub);
    }
    return 0;
#else
    (void)root, (void)text, (void)o;
    return failf(why, ws, "this samc was built without GDAL: mosaic jobs are not available");
#endif
}

int serve_parse_job(const char *body, size_t len, serve_job_req *req, char *why, size_t ws) {
    memset(req, 0, sizeof *req);
    amg_options_default(&req->amg);
    cJSON *root = parse_object(body, len, why, ws);
    if (!root) return -1;
    static const char *const keys[] = { "type", "image", "output", "timeout_s", "options", "text", "threshold", NULL };
    static const char *const opt_keys[] = {
        "points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
        "stability_score_offset", "box_nms_thresh", "crop_n_layers", "crop_nms_thresh",
        "crop_overlap_ratio", "crop_n_points_downscale_factor", "min_mask_region_area",
        "multimask_output", NULL };
    int rc = -1;
    if (check_keys(root, keys, "the job body", why, ws) != 0) goto done;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsString(type)) {
        failf(why, ws, "missing \"type\": \"everything\" or \"mosaic\"");
        goto done;
    }
    if (!strcmp(type->valuestring, "mosaic")) {
        req->type = SERVE_JOB_MOSAIC;
    } else if (strcmp(type->valuestring, "everything") != 0) {
        failf(why, ws, "job type \"%.32s\" is not supported (\"everything\" or \"mosaic\")", type->valuestring);
        goto done;
    }
    if (get_path(root, "image", 1, req->image, sizeof req->image, why, ws)) goto done;
    if (get_path(root, "output", 0, req->output, sizeof req->output, why, ws)) goto done;
    if (get_number(root, "", "timeout_s", 0.001, 1e6, 0, &req->timeout_s, why, ws)) goto done;
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(root, "options");
    if (opts && !cJSON_IsObject(opts)) {
        failf(why, ws, "\"options\" must be an object");
        goto done;
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    if (req->type != SERVE_JOB_MOSAIC && (text || cJSON_GetObjectItemCaseSensitive(root, "threshold"))) {
        failf(why, ws, "\"text\" and \"threshold\" are for mosaic jobs (SAM3 classes)");
        goto done;
    }
    if (req->type == SERVE_JOB_MOSAIC) {
        rc = parse_mosaic_options(opts, &req->mosaic, why, ws) || parse_mosaic_classes(root, text, &req->mosaic, why, ws);
        goto done;
    }
    if (opts) {
        if (check_keys(opts, opt_keys, "\"options\"", why, ws) != 0) goto done;
        amg_options *o = &req->amg;
        /* the ranges of `samc everything` (tools/cmd_everything.c) */
        double v[12] = { o->points_per_side, o->points_per_batch, o->pred_iou_thresh, o->stability_score_thresh,
                         o->stability_score_offset, o->box_nms_thresh, o->crop_n_layers, o->crop_nms_thresh,
                         o->crop_overlap_ratio, o->crop_n_points_downscale_factor, o->min_mask_region_area, 1 };
        static const struct { double lo, hi; int is_int; } r[12] = {
            { 1, 1024, 1 }, { 1, 4096, 1 }, { 0, 1, 0 }, { 0, 1, 0 }, { 0, 1e6, 0 }, { 0, 1, 0 },
            { 0, 4, 1 }, { 0, 1, 0 }, { 0, 0.999999, 0 }, { 1, 1024, 1 }, { 0, 1 << 30, 1 }, { 0, 1, 1 },
        };
        for (int i = 0; i < 12; i++)
            if (get_option(opts, opt_keys[i], r[i].lo, r[i].hi, r[i].is_int, &v[i], why, ws)) goto done;
        o->points_per_side = (int)v[0];
        o->points_per_batch = (int)v[1];
        o->pred_iou_thresh = v[2];
        o->stability_score_thresh = v[3];
        o->stability_score_offset = v[4];
        o->box_nms_thresh = v[5];
        o->crop_n_layers = (int)v[6];
        o->crop_nms_thresh = v[7];
        o->crop_overlap_ratio = v[8];
        o->crop_n_points_downscale_factor = (int)v[9];
        o->min_mask_region_area = (int)v[10];
        o->multimask_output = (int)v[11];
        /* build_all_layer_point_grids: every crop layer needs at least one point */
        long per_side = o->points_per_side;
        for (int i = 0; i < o->crop_n_layers && per_side > 0; i++) per_side /= o->crop_n_points_downscale_factor;
        if (per_side < 1) {
            failf(why, ws, "crop layer %d would have no points (points_per_side %d, downscale factor %d)",
                  o->crop_n_layers, o->points_per_side, o->crop_n_points_downscale_factor);
            goto done;
        }
    }
    samc_error err = { 0 };
    if (amg_options_check(&req->amg, &err) != 0) {
        failf(why, ws, "%s", err.msg);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

static int is_id(const char *s, size_t n) {
    if (n != SERVE_ID_LEN) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* "/v1/<coll>/<id><rest>": copies a well-formed id, flags a malformed one. */
static const char *take_id(const char *p, serve_route *r) {
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (is_id(p, n)) memcpy(r->id, p, SERVE_ID_LEN);
    else r->bad_id = 1;
    return p + n;
}

void serve_parse_route(const char *method, const char *url, serve_route *r) {
    memset(r, 0, sizeof *r);
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    int del = !strcmp(method, "DELETE");
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
        r->kind = ROUTE_PAGE; r->method_ok = get; r->allow = "GET";
    } else if (!strcmp(url, "/healthz")) {
        r->kind = ROUTE_HEALTHZ; r->method_ok = get; r->allow = "GET";
    } else if (!strcmp(url, "/metrics")) {
        r->kind = ROUTE_METRICS; r->method_ok = get; r->allow = "GET";
    } else if (!strcmp(url, "/v1/images")) {
        r->kind = ROUTE_IMAGES; r->method_ok = post; r->allow = "POST";
    } else if (!strcmp(url, "/v1/jobs")) {
        r->kind = ROUTE_JOBS; r->method_ok = post; r->allow = "POST";
    } else if (!strncmp(url, "/v1/images/", 11)) {
        const char *rest = take_id(url + 11, r);
        if (!strcmp(rest, "/predict")) {
            r->kind = ROUTE_PREDICT; r->method_ok = post; r->allow = "POST";
        } else if (!strcmp(rest, "/find")) {
            r->kind = ROUTE_FIND; r->method_ok = post; r->allow = "POST";
        } else if (!*rest) {
            r->kind = ROUTE_IMAGE; r->method_ok = del; r->allow = "DELETE";
        } else {
            r->kind = ROUTE_NONE; r->bad_id = 0;
        }
    } else if (!strncmp(url, "/v1/jobs/", 9)) {
        const char *rest = take_id(url + 9, r);
        if (!*rest) {
            r->kind = ROUTE_JOB; r->method_ok = get || del; r->allow = "GET, DELETE";
        } else {
            r->bad_id = 0;
        }
    }
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void serve_base64_encode(const uint8_t *in, size_t n, char *out) {
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18]; out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63]; out[o++] = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = b64[v >> 18]; out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long serve_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap) {
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int last = i + 4 == n;
        int v[4];
        for (int j = 0; j < 4; j++) {
            v[j] = b64_value(in[i + j]);
            /* '=' only as the last one or two characters */
            if (v[j] < 0 && !(last && in[i + j] == '=' && j >= 2 && (j == 3 || in[i + 3] == '='))) return -1;
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)(v[2] < 0 ? 0 : v[2]) << 6 |
                     (uint32_t)(v[3] < 0 ? 0 : v[3]);
        int bytes = v[2] < 0 ? 1 : v[3] < 0 ? 2 : 3;
        if (o + (size_t)bytes > cap) return -1;
        out[o++] = (uint8_t)(x >> 16);
        if (bytes > 1) out[o++] = (uint8_t)(x >> 8);
        if (bytes > 2) out[o++] = (uint8_t)x;
    }
    return (long)o;
}
