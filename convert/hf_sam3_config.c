/* convert/hf_sam3_config.c: a transformers SAM3 config.json against a samc config. See
 * hf_sam3_config.h. Key names: transformers' Sam3Config and its sub-configs
 * (src/transformers/models/sam3/configuration_sam3.py), CLIPTextConfig for text_config. */
#include "convert/hf_sam3_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES (4u << 20)

/* One config.json number and the sam3_config field it must equal. */
static const struct {
    const char *key;
    size_t field;
} checks[] = {
    { "vision_config.backbone_config.hidden_size", offsetof(sam3_config, vit_dim) },
    { "vision_config.backbone_config.num_hidden_layers", offsetof(sam3_config, vit_depth) },
    { "vision_config.backbone_config.num_attention_heads", offsetof(sam3_config, vit_heads) },
    { "vision_config.backbone_config.intermediate_size", offsetof(sam3_config, vit_mlp_hidden) },
    { "vision_config.backbone_config.window_size", offsetof(sam3_config, window) },
    { "vision_config.backbone_config.image_size", offsetof(sam3_config, image_size) },
    { "vision_config.backbone_config.patch_size", offsetof(sam3_config, patch_size) },
    { "vision_config.backbone_config.pretrain_image_size", offsetof(sam3_config, pretrain_size) },
    { "vision_config.fpn_hidden_size", offsetof(sam3_config, d_model) },
    { "text_config.hidden_size", offsetof(sam3_config, text_width) },
    { "text_config.num_hidden_layers", offsetof(sam3_config, text_layers) },
    { "text_config.num_attention_heads", offsetof(sam3_config, text_heads) },
    { "text_config.max_position_embeddings", offsetof(sam3_config, text_ctx) },
    { "text_config.vocab_size", offsetof(sam3_config, vocab) },
    { "text_config.projection_dim", offsetof(sam3_config, text_proj_dim) },
    { "geometry_encoder_config.hidden_size", offsetof(sam3_config, d_model) },
    { "geometry_encoder_config.num_layers", offsetof(sam3_config, geo_layers) },
    { "geometry_encoder_config.num_attention_heads", offsetof(sam3_config, geo_heads) },
    { "geometry_encoder_config.intermediate_size", offsetof(sam3_config, geo_ffn) },
    { "geometry_encoder_config.roi_size", offsetof(sam3_config, roi_size) },
    { "detr_encoder_config.hidden_size", offsetof(sam3_config, d_model) },
    { "detr_encoder_config.num_layers", offsetof(sam3_config, enc_layers) },
    { "detr_encoder_config.num_attention_heads", offsetof(sam3_config, enc_heads) },
    { "detr_encoder_config.intermediate_size", offsetof(sam3_config, enc_ffn) },
    { "detr_decoder_config.hidden_size", offsetof(sam3_config, d_model) },
    { "detr_decoder_config.num_layers", offsetof(sam3_config, dec_layers) },
    { "detr_decoder_config.num_attention_heads", offsetof(sam3_config, dec_heads) },
    { "detr_decoder_config.intermediate_size", offsetof(sam3_config, dec_ffn) },
    { "detr_decoder_config.num_queries", offsetof(sam3_config, num_queries) },
    { "mask_decoder_config.hidden_size", offsetof(sam3_config, d_model) },
    /* the segmentation head's prompt cross-attention has the fusion encoder's heads in
     * both official configs (8; 2 in sam3_micro) */
    { "mask_decoder_config.num_attention_heads", offsetof(sam3_config, enc_heads) },
    { "mask_decoder_config.num_upsampling_stages", offsetof(sam3_config, pd_stages) },
};

/* Activations and LayerNorm epsilons: fixed in the official model (and in samc), so a
 * config.json must say the same. `absent` is what transformers takes when the key is
 * missing from its sub-config (CLIPTextConfig defaults to quick_gelu); a missing
 * sub-config takes Sam3Config's defaults, which are the official values. */
static const struct {
    const char *key, *want, *absent;
} acts[] = {
    { "text_config.hidden_act", "gelu", "quick_gelu" },
    { "vision_config.backbone_config.hidden_act", "gelu", "gelu" },
    { "geometry_encoder_config.hidden_act", "relu", "relu" },
    { "detr_encoder_config.hidden_act", "relu", "relu" },
    { "detr_decoder_config.hidden_act", "relu", "relu" },
};
static const struct {
    const char *key;
    double want;
} eps[] = {
    { "text_config.layer_norm_eps", 1e-5 },
    { "vision_config.backbone_config.layer_norm_eps", 1e-6 },
    { "geometry_encoder_config.layer_norm_eps", 1e-6 },
    { "detr_encoder_config.layer_norm_eps", 1e-6 },
    { "detr_decoder_config.layer_norm_eps", 1e-6 },
    { "mask_decoder_config.layer_norm_eps", 1e-6 },
};

static int field(const sam3_config *c, size_t off) { return *(const int *)((const char *)c + off); }

/* The item at a dotted path, or NULL. */
static const cJSON *item_at(const cJSON *root, const char *path) {
    char part[64];
    const cJSON *cur = root;
    while (cur && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof part) return NULL;
        memcpy(part, path, n);
        part[n] = 0;
        cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, part) : NULL;
        path += n + (path[n] == '.');
    }
    return cur;
}

static char *read_text(const char *path, samc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        samc_error_set(err, SAMC_ERR_IO, "%s: cannot open (a transformers checkpoint comes with its config.json)", path);
        return NULL;
    }
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (!buf) samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", path);
    else if (n > CONFIG_MAX_BYTES) samc_error_set(err, SAMC_ERR_FORMAT, "%s: larger than %u MB", path, CONFIG_MAX_BYTES >> 20);
    else {
        buf[n] = 0;
        return buf;
    }
    free(buf);
    return NULL;
}

/* The Sam3Config object: the root (model_type "sam3") or its detector_config
 * ("sam3_video"). */
static const cJSON *sam3_object(const cJSON *root, const char *path, samc_error *err) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *t = cJSON_IsString(type) ? type->valuestring : NULL;
    if (t && !strcmp(t, "sam3")) return root;
    if (t && !strcmp(t, "sam3_video")) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "detector_config");
        if (cJSON_IsObject(d)) return d;
        samc_error_set(err, SAMC_ERR_FORMAT, "%s: model_type 'sam3_video' without a detector_config object", path);
        return NULL;
    }
    samc_error_set(err, SAMC_ERR_MODEL, "%s: model_type is %s%s%s, not a SAM3 model ('sam3' or 'sam3_video')", path,
                   t ? "'" : "", t ? t : "missing", t ? "'" : "");
    return NULL;
}

/* Compares one number (or, when absent, the default: the "sam3" config's). */
static int check_number(const cJSON *obj, const char *key, int want, int dflt, const sam3_config *c, const char *path,
                        samc_error *err) {
    const cJSON *v = item_at(obj, key);
    if (v && (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e9))
        return samc_error_set(err, SAMC_ERR_FORMAT, "%s: %s is not an integer", path, key);
    int got = v ? (int)v->valuedouble : dflt;
    if (got == want) return 0;
    return samc_error_set(err, SAMC_ERR_MODEL, "%s: %s is %d%s, but the tensors are SAM3 '%s', which has %d", path, key,
                          got, v ? "" : " (absent: transformers' default)", c->name, want);
}

/* The object holding a dotted path's last component, or NULL. */
static const cJSON *parent_of(const cJSON *obj, const char *key) {
    char parent[128];
    const char *dot = strrchr(key, '.');
    if (!dot || (size_t)(dot - key) >= sizeof parent) return obj;
    memcpy(parent, key, (size_t)(dot - key));
    parent[dot - key] = 0;
    return item_at(obj, parent);
}

static int check_fixed(const cJSON *obj, const char *path, samc_error *err) {
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        const cJSON *v = item_at(obj, acts[i].key);
        if (v && !cJSON_IsString(v)) return samc_error_set(err, SAMC_ERR_FORMAT, "%s: %s is not a string", path, acts[i].key);
        const char *got = v ? v->valuestring : parent_of(obj, acts[i].key) ? acts[i].absent : acts[i].want;
        if (strcmp(got, acts[i].want) != 0)
            return samc_error_set(err, SAMC_ERR_MODEL, "%s: %s is '%s'%s; SAM3 uses '%s'", path, acts[i].key, got,
                                  v ? "" : " (absent: transformers' default)", acts[i].want);
    }
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        const cJSON *v = item_at(obj, eps[i].key);
        if (v && !cJSON_IsNumber(v)) return samc_error_set(err, SAMC_ERR_FORMAT, "%s: %s is not a number", path, eps[i].key);
        if (v && fabs(v->valuedouble - eps[i].want) > 1e-6 * eps[i].want)
            return samc_error_set(err, SAMC_ERR_MODEL, "%s: %s is %g; SAM3 uses %g", path, eps[i].key, v->valuedouble,
                                  eps[i].want);
    }
    return 0;
}

static int check_global_blocks(const cJSON *obj, const sam3_config *c, const sam3_config *dflt, const char *path,
                               samc_error *err) {
    const char *key = "vision_config.backbone_config.global_attn_indexes";
    const cJSON *v = item_at(obj, key);
    const sam3_config *d = v ? NULL : dflt;
    int n = d ? d->n_global : cJSON_GetArraySize(v), same = cJSON_IsArray(v) || d;
    if (!same) return samc_error_set(err, SAMC_ERR_FORMAT, "%s: %s is not a list", path, key);
    same = n == c->n_global;
    for (int i = 0; same && i < n; i++) {
        const cJSON *e = d ? NULL : cJSON_GetArrayItem(v, i);
        int b = d ? d->global_blocks[i] : cJSON_IsNumber(e) ? (int)e->valuedouble : -1;
        same = b == c->global_blocks[i];
    }
    if (same) return 0;
    return samc_error_set(err, SAMC_ERR_MODEL, "%s: %s%s differs from SAM3 '%s' (global blocks %d, %d, ...)", path, key,
                          v ? "" : " (absent: transformers' default)", c->name, c->global_blocks[0], c->global_blocks[1]);
}

int hf_sam3_config_check(const char *path, const sam3_config *c, samc_error *err) {
    char *text = read_text(path, err);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        const char *at = cJSON_GetErrorPtr();
        rc = samc_error_set(err, SAMC_ERR_FORMAT, "%s: not a JSON object (bad JSON near byte %ld)", path,
                            at && at >= text ? (long)(at - text) : 0L);
    }
    const cJSON *obj = rc ? NULL : sam3_object(root, path, err);
    const sam3_config *dflt = sam3_config_get("sam3");
    if (!rc && !obj) rc = -1;
    for (size_t i = 0; !rc && i < sizeof checks / sizeof checks[0]; i++)
        rc = check_number(obj, checks[i].key, field(c, checks[i].field), field(dflt, checks[i].field), c, path, err);
    if (!rc) rc = check_global_blocks(obj, c, dflt, path, err);
    if (!rc) rc = check_fixed(obj, path, err);
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* The object at a dotted path, created as needed; *leaf gets the last component. */
static cJSON *object_for(cJSON *root, const char *path, char *leaf, size_t leaf_size) {
    cJSON *cur = root;
    for (;;) {
        size_t n = strcspn(path, ".");
        if (n >= leaf_size) return NULL;
        memcpy(leaf, path, n);
        leaf[n] = 0;
        if (!path[n]) return cur;
        cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, leaf);
        if (!next) next = cJSON_AddObjectToObject(cur, leaf);
        if (!cJSON_IsObject(next)) return NULL;
        cur = next;
        path += n + 1;
    }
}

static int put_number(cJSON *root, const char *path, double v) {
    char leaf[64];
    cJSON *obj = object_for(root, path, leaf, sizeof leaf);
    return obj && cJSON_AddNumberToObject(obj, leaf, v) ? 0 : -1;
}

static int put_string(cJSON *root, const char *path, const char *v) {
    char leaf[64];
    cJSON *obj = object_for(root, path, leaf, sizeof leaf);
    return obj && cJSON_AddStringToObject(obj, leaf, v) ? 0 : -1;
}

/* The keys beyond the checked numbers that Sam3Config needs to build the same model
 * (the sub-configs' types, activations, epsilons, the text MLP width, the neck sizes). */
static int put_extras(cJSON *root, const sam3_config *c) {
    static const char *const types[][2] = {
        { "vision_config.model_type", "sam3_vision_model" },
        { "vision_config.backbone_config.model_type", "sam3_vit_model" },
        { "text_config.model_type", "clip_text_model" },
        { "geometry_encoder_config.model_type", "sam3_geometry_encoder" },
        { "detr_encoder_config.model_type", "sam3_detr_encoder" },
        { "detr_decoder_config.model_type", "sam3_detr_decoder" },
        { "mask_decoder_config.model_type", "sam3_mask_decoder" },
    };
    int rc = put_string(root, "model_type", "sam3");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) rc |= put_string(root, types[i][0], types[i][1]);
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) rc |= put_string(root, acts[i].key, acts[i].want);
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) rc |= put_number(root, eps[i].key, eps[i].want);
    rc |= put_number(root, "text_config.intermediate_size", 4.0 * c->text_width);
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    if (!arch || !cJSON_AddItemToArray(arch, cJSON_CreateString("Sam3Model"))) rc = -1;
    char leaf[64];
    cJSON *bb = object_for(root, "vision_config.backbone_config.x", leaf, sizeof leaf);
    cJSON *blocks = bb ? cJSON_AddArrayToObject(bb, "global_attn_indexes") : NULL;
    for (int i = 0; blocks && i < c->n_global; i++) cJSON_AddItemToArray(blocks, cJSON_CreateNumber(c->global_blocks[i]));
    cJSON *vision = object_for(root, "vision_config.x", leaf, sizeof leaf);
    cJSON *sizes = vision ? cJSON_AddArrayToObject(vision, "backbone_feature_sizes") : NULL;
    for (int k = 4; sizes && k >= 1; k /= 2) {   /* the neck levels used: 4x, 2x, 1x the token grid */
        int side = k * sam3_config_grid(c);
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(side));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(side));
        cJSON_AddItemToArray(sizes, pair);
    }
    return rc || !blocks || !sizes ? -1 : 0;
}

int hf_sam3_config_write(const char *path, const sam3_config *c, samc_error *err) {
    cJSON *root = cJSON_CreateObject();
    int rc = root ? put_extras(root, c) : -1;
    for (size_t i = 0; !rc && i < sizeof checks / sizeof checks[0]; i++)
        rc = put_number(root, checks[i].key, field(c, checks[i].field));
    char *text = rc ? NULL : cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return samc_error_set(err, SAMC_ERR_NOMEM, "%s: cannot build the JSON", path);
    FILE *f = fopen(path, "wb");
    int bad = !f || fputs(text, f) < 0 || fputc('\n', f) < 0;
    if (f && fclose(f) != 0) bad = 1;
    free(text);
    if (bad) return samc_error_set(err, SAMC_ERR_IO, "%s: cannot write", path);
    return 0;
}
