/* pipelines/mosaic/config.c: the settings of samc mosaic by name (see config.h). */
#include "pipelines/mosaic/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#include "util/strict_number.h"

typedef enum { S_INT, S_DOUBLE, S_BOOL, S_MAX_PASSES, S_MERGE, S_POINTS, S_STREAMING } setting_kind;

typedef struct {
    const char *flag;        /* "--tile-size" (NULL: no flag; see the switches) */
    const char *key;         /* sam-mosaic YAML key "tile.size" */
    const char *flat;        /* sam-mosaic API name "tile_size" */
    setting_kind kind;
    size_t offset;           /* into mosaic_options */
    double lo, hi;
} setting;

#define OFF(f) offsetof(mosaic_options, f)
static const setting settings[] = {
    { "--tile-size", "tile.size", "tile_size", S_INT, OFF(tile_size), 16, 65536 },
    { "--padding", "tile.padding", "padding", S_INT, OFF(padding), 0, 65536 },
    { "--iou-start", "threshold.iou_start", "iou_start", S_DOUBLE, OFF(mp.iou_start), 0, 1 },
    { "--iou-end", "threshold.iou_end", "iou_end", S_DOUBLE, OFF(mp.iou_end), 0, 1 },
    { "--stability-start", "threshold.stability_start", "stability_start", S_DOUBLE, OFF(mp.stability_start), 0, 1 },
    { "--stability-end", "threshold.stability_end", "stability_end", S_DOUBLE, OFF(mp.stability_end), 0, 1 },
    { "--threshold-step", "threshold.step", "threshold_step", S_DOUBLE, OFF(mp.step), 0, 1 },
    { "--points-per-side", "segmentation.points_per_side", "points_per_side", S_INT, OFF(mp.points_per_side), 1, 1024 },
    { "--points-per-batch", "segmentation.points_per_batch", "points_per_batch", S_INT, OFF(mp.points_per_batch), 1, 4096 },
    { "--target-coverage", "segmentation.target_coverage", "target_coverage", S_DOUBLE, OFF(mp.target_coverage), 0, 100 },
    { "--max-passes", "segmentation.max_passes", "max_passes", S_MAX_PASSES, OFF(mp.max_passes), 1, 100000 },
    { NULL, "segmentation.use_black_mask", "use_black_mask", S_BOOL, OFF(mp.use_black_mask), 0, 1 },
    { NULL, "segmentation.use_adaptive_threshold", "use_adaptive_threshold", S_BOOL, OFF(mp.adaptive_threshold), 0, 1 },
    { "--point-strategy", "segmentation.point_strategy", "point_strategy", S_POINTS, OFF(mp.point_strategy), 0, 0 },
    { "--erosion", "segmentation.erosion_iterations", "erosion_iterations", S_INT, OFF(mp.erosion), 0, 10000 },
    { "--crop-n-layers", "segmentation.crop_n_layers", "crop_n_layers", S_INT, OFF(mp.crop_n_layers), 0, 4 },
    { "--box-nms-thresh", "segmentation.box_nms_thresh", "box_nms_thresh", S_DOUBLE, OFF(mp.box_nms_thresh), 0, 1 },
    { NULL, "segmentation.sort_by_area", "sort_by_area", S_BOOL, OFF(mp.sort_by_area), 0, 1 },
    { "--merge-strategy", "merge.merge_strategy", "merge_strategy", S_MERGE, OFF(merge), 0, 0 },
    { "--min-contact", "merge.min_contact_pixels", "min_contact_pixels", S_INT, OFF(min_contact), 1, 1 << 30 },
    { "--min-area", "merge.min_mask_area", "min_mask_area", S_INT, OFF(mp.min_area), 0, 1 << 30 },
    { "--merge-enclosed-max-area", "merge.merge_enclosed_max_area", "merge_enclosed_max_area", S_INT,
      OFF(merge_enclosed_max_area), 0, 1 << 30 },
    { NULL, "output.save_labels", "save_labels", S_BOOL, OFF(save_labels), 0, 1 },
    { NULL, "output.save_shapefile", "save_shapefile", S_BOOL, OFF(save_shapefile), 0, 1 },
    { NULL, "output.save_geopackage", "save_geopackage", S_BOOL, OFF(save_geopackage), 0, 1 },
    { NULL, "output.save_stats", "save_stats", S_BOOL, OFF(save_stats), 0, 1 },
    { "--simplify-tolerance", "output.simplify_tolerance", "simplify_tolerance", S_DOUBLE, OFF(simplify_tolerance), 0, 1e12 },
    { "--streaming-mode", "output.streaming_mode", "streaming_mode", S_STREAMING, 0, 0, 0 },
};
#define N_SETTINGS ((int)(sizeof settings / sizeof settings[0]))

static const struct { const char *flag; size_t offset; int value; } switches[] = {
    { "--no-black-mask", OFF(mp.use_black_mask), 0 },
    { "--no-adaptive-threshold", OFF(mp.adaptive_threshold), 0 },
    { "--sort-by-area", OFF(mp.sort_by_area), 1 },
    { "--no-shapefile", OFF(save_shapefile), 0 },
    { "--geopackage", OFF(save_geopackage), 1 },
    { "--no-labels", OFF(save_labels), 0 },
    { "--no-stats", OFF(save_stats), 0 },
};
#define N_SWITCHES ((int)(sizeof switches / sizeof switches[0]))
#undef OFF

static int why_fail(char *why, size_t ws, const char *fmt, ...) {
    if (why && ws) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, ws, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int apply(mosaic_options *o, const setting *s, const char *v, char *why, size_t ws) {
    char *base = (char *)o;
    double d;
    switch (s->kind) {
    case S_MAX_PASSES:
        if (!strcmp(v, "null") || !strcmp(v, "~") || !strcmp(v, "") || !strcmp(v, "none")) {
            *(int *)(base + s->offset) = 0;
            return 0;
        }
        /* fall through */
    case S_INT:
        if (strict_number(NULL, v, s->lo, s->hi, STRICT_INTEGER, &d, why, ws) != 0) {
            if (s->kind == S_MAX_PASSES && why && ws) {
                size_t n = strlen(why);
                snprintf(why + n, ws - n, " (or null: no limit)");
            }
            return -1;
        }
        *(int *)(base + s->offset) = (int)d;
        return 0;
    case S_DOUBLE:
        if (strict_number(NULL, v, s->lo, s->hi, STRICT_REAL, &d, why, ws) != 0) return -1;
        *(double *)(base + s->offset) = d;
        return 0;
    case S_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "yes") || !strcmp(v, "1"))
            *(int *)(base + s->offset) = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "no") || !strcmp(v, "0"))
            *(int *)(base + s->offset) = 0;
        else
            return why_fail(why, ws, "'%s' is not true or false", v);
        return 0;
    case S_MERGE:
        if (mosaic_merge_strategy_parse(v, (mosaic_merge_strategy *)(base + s->offset)) != 0)
            return why_fail(why, ws, "'%s' is not one of best_match, mutual_best, min_contact, none", v);
        return 0;
    case S_POINTS:
        if (mosaic_point_strategy_parse(v, (mosaic_point_strategy *)(base + s->offset)) != 0)
            return why_fail(why, ws, "'%s' is not one of kmeans, dense_grid", v);
        return 0;
    case S_STREAMING:
        /* sam-mosaic keeps its label mosaic in RAM or on disk; samc always streams it
         * through disk in bounded memory, so every mode is accepted and means that. */
        if (strcmp(v, "auto") && strcmp(v, "ram") && strcmp(v, "disk"))
            return why_fail(why, ws, "'%s' is not one of auto, ram, disk", v);
        return 0;
    }
    return why_fail(why, ws, "internal: unknown setting kind");
}

static const setting *find_setting(mosaic_name_style style, const char *name) {
    for (int i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        const char *n = style == MOSAIC_NAME_FLAG ? s->flag : style == MOSAIC_NAME_YAML ? s->key : s->flat;
        if (n && !strcmp(n, name)) return s;
    }
    return NULL;
}

int mosaic_config_has(mosaic_name_style style, const char *name) {
    return find_setting(style, name) != NULL;
}

int mosaic_config_set(mosaic_options *o, mosaic_name_style style, const char *name, const char *value, char *why,
                      size_t ws) {
    const setting *s = find_setting(style, name);
    return s ? apply(o, s, value ? value : "", why, ws) : 1;
}

int mosaic_config_switch(mosaic_options *o, const char *flag) {
    for (int i = 0; i < N_SWITCHES; i++)
        if (!strcmp(flag, switches[i].flag)) {
            *(int *)((char *)o + switches[i].offset) = switches[i].value;
            return 0;
        }
    return 1;
}

const char *mosaic_config_flat_names(void) {
    return "tile_size, padding, iou_start, iou_end, stability_start, stability_end, threshold_step, "
           "points_per_side, points_per_batch, target_coverage, max_passes, use_black_mask, "
           "use_adaptive_threshold, point_strategy, erosion_iterations, crop_n_layers, box_nms_thresh, "
           "sort_by_area, merge_strategy, min_contact_pixels, min_mask_area, merge_enclosed_max_area, "
           "save_labels, save_shapefile, save_geopackage, save_stats, simplify_tolerance, streaming_mode";
}

static const char *scalar(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int mosaic_config_load_yaml(const char *path, mosaic_options *o, char *checkpoint, size_t cs, char *why, size_t ws) {
    if (checkpoint && cs) checkpoint[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return why_fail(why, ws, "cannot open '%s': %s", path, strerror(errno));
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1, have_doc = 0;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return why_fail(why, ws, "%s: cannot start the YAML parser", path);
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        why_fail(why, ws, "%s:%zu:%zu: not valid YAML: %s", path, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1, parser.problem ? parser.problem : "parse error");
        goto out;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {  /* an empty file: the defaults */
        rc = 0;
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        why_fail(why, ws, "%s: the top level must be a mapping (tile:, threshold:, ...)", path);
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, p->key), *vn = yaml_document_get_node(&doc, p->value);
        const char *section = scalar(kn);
        size_t line = kn ? kn->start_mark.line + 1 : 0;
        if (!section) {
            why_fail(why, ws, "%s:%zu: a key must be a plain word", path, line);
            goto out;
        }
        if (!strcmp(section, "sam_checkpoint")) {
            const char *v = scalar(vn);
            if (!v || !checkpoint || strlen(v) >= cs) {
                why_fail(why, ws, "%s:%zu: sam_checkpoint must be a path", path, line);
                goto out;
            }
            snprintf(checkpoint, cs, "%s", v);
            continue;
        }
        if (!vn || vn->type != YAML_MAPPING_NODE) {
            why_fail(why, ws, "%s:%zu: unknown key '%s' (the sections are tile, threshold, segmentation, merge, "
                     "output; and sam_checkpoint)", path, line, section);
            goto out;
        }
        for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
            yaml_node_t *k2 = yaml_document_get_node(&doc, q->key), *v2 = yaml_document_get_node(&doc, q->value);
            const char *name = scalar(k2), *val = scalar(v2);
            size_t line2 = k2 ? k2->start_mark.line + 1 : 0;
            char key[256], sub[400];
            snprintf(key, sizeof key, "%s.%s", section, name ? name : "?");
            if (!val) {
                why_fail(why, ws, "%s:%zu: %s: the value must be a single value, not a list or mapping", path, line2,
                         key);
                goto out;
            }
            int r = name ? mosaic_config_set(o, MOSAIC_NAME_YAML, key, val, sub, sizeof sub) : 1;
            if (r == 1) {
                why_fail(why, ws, "%s:%zu: unknown key %s", path, line2, key);
                goto out;
            }
            if (r < 0) {
                why_fail(why, ws, "%s:%zu: %s: %s", path, line2, key, sub);
                goto out;
            }
        }
    }
    rc = 0;
out:
    if (have_doc) yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

char *mosaic_config_json(const mosaic_options *o, const char *checkpoint, const char *config_file) {
    cJSON *c = cJSON_CreateObject();
    if (!c) return NULL;
    const char *base = (const char *)o;
    for (int i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->kind == S_STREAMING) continue;
        const char *dot = strchr(s->key, '.');
        char section[32];
        snprintf(section, sizeof section, "%.*s", (int)(dot - s->key), s->key);
        cJSON *sec = cJSON_GetObjectItem(c, section);
        if (!sec) sec = cJSON_AddObjectToObject(c, section);
        const char *name = dot + 1;
        switch (s->kind) {
        case S_INT: cJSON_AddNumberToObject(sec, name, *(const int *)(base + s->offset)); break;
        case S_MAX_PASSES:
            if (*(const int *)(base + s->offset) > 0) cJSON_AddNumberToObject(sec, name, *(const int *)(base + s->offset));
            else cJSON_AddNullToObject(sec, name);
            break;
        case S_DOUBLE: cJSON_AddNumberToObject(sec, name, *(const double *)(base + s->offset)); break;
        case S_BOOL: cJSON_AddBoolToObject(sec, name, *(const int *)(base + s->offset)); break;
        case S_MERGE: cJSON_AddStringToObject(sec, name, mosaic_merge_strategy_name(o->merge)); break;
        case S_POINTS: cJSON_AddStringToObject(sec, name, mosaic_point_strategy_name(o->mp.point_strategy)); break;
        case S_STREAMING: break;
        }
    }
    if (o->has_bands) {
        cJSON *b = cJSON_AddArrayToObject(c, "bands");
        for (int i = 0; i < 3; i++) cJSON_AddItemToArray(b, cJSON_CreateNumber(o->bands[i]));
    }
    if (o->has_scale) {
        cJSON *b = cJSON_AddArrayToObject(c, "scale");
        for (int i = 0; i < 2; i++) cJSON_AddItemToArray(b, cJSON_CreateNumber(o->scale[i]));
    }
    if (o->n_classes > 0) {
        cJSON *cc = cJSON_AddObjectToObject(c, "concept");
        cJSON *names = cJSON_AddArrayToObject(cc, "classes");
        for (int i = 0; i < o->n_classes; i++) cJSON_AddItemToArray(names, cJSON_CreateString(mosaic_class_name(o, i)));
        cJSON_AddNumberToObject(cc, "score_threshold", o->score_threshold);
    }
    if (checkpoint) cJSON_AddStringToObject(c, "sam_checkpoint", checkpoint);
    if (config_file) cJSON_AddStringToObject(c, "config_file", config_file);
    char *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return text;
}

/* One value of the JSON as the text mosaic_config_set reads. */
static int json_value_text(const cJSON *v, char *buf, size_t n) {
    if (cJSON_IsBool(v)) snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNull(v)) snprintf(buf, n, "null");
    else if (cJSON_IsNumber(v)) snprintf(buf, n, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v)) snprintf(buf, n, "%s", v->valuestring);
    else return -1;
    return 0;
}

/* "concept": {"classes": [...], "score_threshold": t} into o. */
static int concept_from_json(mosaic_options *o, const cJSON *cc, char *why, size_t ws) {
    const cJSON *names = cJSON_GetObjectItem(cc, "classes"), *t = cJSON_GetObjectItem(cc, "score_threshold"), *n;
    if (!cJSON_IsObject(cc) || !cJSON_IsArray(names) || !cJSON_IsNumber(t))
        return why_fail(why, ws, "options.concept must be {\"classes\": [texts], \"score_threshold\": number}");
    o->n_classes = 0;
    cJSON_ArrayForEach(n, names) {
        char sub[200];
        if (!cJSON_IsString(n) || mosaic_options_add_class(o, n->valuestring, sub, sizeof sub) != 0)
            return why_fail(why, ws, "options.concept.classes: %s", cJSON_IsString(n) ? sub : "not a list of texts");
    }
    o->score_threshold = t->valuedouble;
    return 0;
}

/* bands [3] / scale [2]: numbers into out */
static int json_numbers(const cJSON *a, double *out, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return -1;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(v)) return -1;
        out[i] = v->valuedouble;
    }
    return 0;
}

int mosaic_config_from_json(mosaic_options *o, const char *json, char *why, size_t ws) {
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return why_fail(why, ws, "the options are not a JSON object");
    }
    int rc = 0;
    const cJSON *sec;
    cJSON_ArrayForEach(sec, root) {
        double v[3];
        if (!strcmp(sec->string, "bands") || !strcmp(sec->string, "scale")) {
            int is_bands = !strcmp(sec->string, "bands");
            if (json_numbers(sec, v, is_bands ? 3 : 2) != 0) {
                rc = why_fail(why, ws, "options.%s is not a list of %d numbers", sec->string, is_bands ? 3 : 2);
                break;
            }
            for (int i = 0; i < (is_bands ? 3 : 2); i++) {
                if (is_bands) o->bands[i] = (int)v[i];
                else o->scale[i] = v[i];
            }
            *(is_bands ? &o->has_bands : &o->has_scale) = 1;
            continue;
        }
        if (!strcmp(sec->string, "sam_checkpoint") || !strcmp(sec->string, "config_file")) continue;
        if (!strcmp(sec->string, "concept")) {
            if ((rc = concept_from_json(o, sec, why, ws)) != 0) break;
            continue;
        }
        if (!cJSON_IsObject(sec)) {
            rc = why_fail(why, ws, "unknown option section '%s'", sec->string);
            break;
        }
        const cJSON *item;
        cJSON_ArrayForEach(item, sec) {
            char key[256], val[64] = "", sub[300] = "";
            snprintf(key, sizeof key, "%s.%s", sec->string, item->string);
            int r = json_value_text(item, val, sizeof val) != 0 ? -1
                                                              : mosaic_config_set(o, MOSAIC_NAME_YAML, key, val, sub,
                                                                                  sizeof sub);
            if (r != 0) {
                rc = why_fail(why, ws, "option %s: %s", key, r > 0 ? "unknown" : r < 0 && val[0] ? sub : "bad value");
                break;
            }
        }
        if (rc) break;
    }
    cJSON_Delete(root);
    return rc;
}
