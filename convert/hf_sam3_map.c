/* convert/hf_sam3_map.c: the Sam3Image <-> transformers Sam3Model name table. See
 * hf_sam3_map.h for what each kind means and where the correspondence comes from.
 *
 * A rule pairs an official prefix with an HF prefix; '#' stands for a layer index (one
 * or more digits) and is carried over in order. A prefix ending in '.' or '_' is
 * followed by the leaf "weight" or "bias" (a QKV rule's HF side by "q_proj.weight",
 * ..., "v_proj.bias"); any other prefix is a whole name. */
#include "convert/hf_sam3_map.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *official, *hf;
    hf_sam3_kind kind;
} map_rule;

#define TRUNK "backbone.vision_backbone.trunk."
#define VIT "vision_encoder.backbone."
#define NECK "backbone.vision_backbone.convs."
#define FPN "vision_encoder.neck.fpn_layers."
#define TEXT "backbone.language_backbone.encoder."
#define CLIP "text_encoder.text_model."
/* nn.MultiheadAttention `off` <-> HF attention `hf` whose output projection is `o`. */
#define MHA(off, hf, o) { off ".in_proj_", hf ".", HF_SAM3_QKV }, { off ".out_proj.", hf "." o ".", HF_SAM3_RENAME }
/* encoder.TransformerEncoderLayer (geometry encoder and fusion encoder layers). */
#define ENC_LAYER(off, hf)                                                                            \
    MHA(off ".self_attn", hf ".self_attn", "o_proj"), MHA(off ".cross_attn_image", hf ".cross_attn", "o_proj"), \
    { off ".linear1.", hf ".mlp.fc1.", HF_SAM3_RENAME }, { off ".linear2.", hf ".mlp.fc2.", HF_SAM3_RENAME },   \
    { off ".norm1.", hf ".layer_norm1.", HF_SAM3_RENAME }, { off ".norm2.", hf ".layer_norm2.", HF_SAM3_RENAME }, \
    { off ".norm3.", hf ".layer_norm3.", HF_SAM3_RENAME }

static const map_rule rules[] = {
    /* ViT trunk (vitdet.ViT <-> Sam3ViTModel) */
    { TRUNK "pos_embed", VIT "embeddings.position_embeddings", HF_SAM3_POS_CLS },
    { TRUNK "patch_embed.proj.", VIT "embeddings.patch_embeddings.projection.", HF_SAM3_RENAME },
    { TRUNK "ln_pre.", VIT "layer_norm.", HF_SAM3_RENAME },
    { TRUNK "blocks.#.norm1.", VIT "layers.#.layer_norm1.", HF_SAM3_RENAME },
    { TRUNK "blocks.#.norm2.", VIT "layers.#.layer_norm2.", HF_SAM3_RENAME },
    { TRUNK "blocks.#.attn.qkv.", VIT "layers.#.attention.", HF_SAM3_QKV },
    { TRUNK "blocks.#.attn.proj.", VIT "layers.#.attention.o_proj.", HF_SAM3_RENAME },
    { TRUNK "blocks.#.mlp.fc1.", VIT "layers.#.mlp.fc1.", HF_SAM3_RENAME },
    { TRUNK "blocks.#.mlp.fc2.", VIT "layers.#.mlp.fc2.", HF_SAM3_RENAME },
    /* neck (Sam3DualViTDetNeck convs <-> fpn_layers; HF's scale_layers.1 is the GELU) */
    { NECK "0.dconv_2x2_0.", FPN "0.scale_layers.0.", HF_SAM3_RENAME },
    { NECK "0.dconv_2x2_1.", FPN "0.scale_layers.2.", HF_SAM3_RENAME },
    { NECK "1.dconv_2x2.", FPN "1.scale_layers.0.", HF_SAM3_RENAME },
    { NECK "#.conv_1x1.", FPN "#.proj1.", HF_SAM3_RENAME },
    { NECK "#.conv_3x3.", FPN "#.proj2.", HF_SAM3_RENAME },
    /* text encoder (VETextEncoder <-> CLIPTextModelWithProjection) and its resizer */
    { TEXT "positional_embedding", CLIP "embeddings.position_embedding.weight", HF_SAM3_RENAME },
    { TEXT "text_projection", "text_encoder.text_projection.weight", HF_SAM3_TRANSPOSE },
    { TEXT "token_embedding.", CLIP "embeddings.token_embedding.", HF_SAM3_RENAME },
    MHA(TEXT "transformer.resblocks.#.attn", CLIP "encoder.layers.#.self_attn", "out_proj"),
    { TEXT "transformer.resblocks.#.ln_1.", CLIP "encoder.layers.#.layer_norm1.", HF_SAM3_RENAME },
    { TEXT "transformer.resblocks.#.ln_2.", CLIP "encoder.layers.#.layer_norm2.", HF_SAM3_RENAME },
    { TEXT "transformer.resblocks.#.mlp.c_fc.", CLIP "encoder.layers.#.mlp.fc1.", HF_SAM3_RENAME },
    { TEXT "transformer.resblocks.#.mlp.c_proj.", CLIP "encoder.layers.#.mlp.fc2.", HF_SAM3_RENAME },
    { TEXT "ln_final.", CLIP "final_layer_norm.", HF_SAM3_RENAME },
    { "backbone.language_backbone.resizer.", "text_projection.", HF_SAM3_RENAME },
    /* geometry encoder (its point projections have no HF counterpart: `absent` below) */
    { "geometry_encoder.label_embed.", "geometry_encoder.label_embed.", HF_SAM3_RENAME },
    { "geometry_encoder.cls_embed.", "geometry_encoder.cls_embed.", HF_SAM3_RENAME },
    { "geometry_encoder.boxes_direct_project.", "geometry_encoder.boxes_direct_project.", HF_SAM3_RENAME },
    { "geometry_encoder.boxes_pool_project.", "geometry_encoder.boxes_pool_project.", HF_SAM3_RENAME },
    { "geometry_encoder.boxes_pos_enc_project.", "geometry_encoder.boxes_pos_enc_project.", HF_SAM3_RENAME },
    { "geometry_encoder.final_proj.", "geometry_encoder.final_proj.", HF_SAM3_RENAME },
    { "geometry_encoder.norm.", "geometry_encoder.prompt_layer_norm.", HF_SAM3_RENAME },
    { "geometry_encoder.img_pre_norm.", "geometry_encoder.vision_layer_norm.", HF_SAM3_RENAME },
    { "geometry_encoder.encode_norm.", "geometry_encoder.output_layer_norm.", HF_SAM3_RENAME },
    ENC_LAYER("geometry_encoder.encode.#", "geometry_encoder.layers.#"),
    /* fusion encoder */
    ENC_LAYER("transformer.encoder.layers.#", "detr_encoder.layers.#"),
    /* decoder */
    MHA("transformer.decoder.layers.#.cross_attn", "detr_decoder.layers.#.vision_cross_attn", "o_proj"),
    MHA("transformer.decoder.layers.#.ca_text", "detr_decoder.layers.#.text_cross_attn", "o_proj"),
    MHA("transformer.decoder.layers.#.self_attn", "detr_decoder.layers.#.self_attn", "o_proj"),
    { "transformer.decoder.layers.#.norm1.", "detr_decoder.layers.#.vision_cross_attn_layer_norm.", HF_SAM3_RENAME },
    { "transformer.decoder.layers.#.catext_norm.", "detr_decoder.layers.#.text_cross_attn_layer_norm.", HF_SAM3_RENAME },
    { "transformer.decoder.layers.#.norm2.", "detr_decoder.layers.#.self_attn_layer_norm.", HF_SAM3_RENAME },
    { "transformer.decoder.layers.#.linear1.", "detr_decoder.layers.#.mlp.fc1.", HF_SAM3_RENAME },
    { "transformer.decoder.layers.#.linear2.", "detr_decoder.layers.#.mlp.fc2.", HF_SAM3_RENAME },
    { "transformer.decoder.layers.#.norm3.", "detr_decoder.layers.#.mlp_layer_norm.", HF_SAM3_RENAME },
    { "transformer.decoder.norm.", "detr_decoder.output_layer_norm.", HF_SAM3_RENAME },
    { "transformer.decoder.bbox_embed.layers.0.", "detr_decoder.box_head.layer1.", HF_SAM3_RENAME },
    { "transformer.decoder.bbox_embed.layers.1.", "detr_decoder.box_head.layer2.", HF_SAM3_RENAME },
    { "transformer.decoder.bbox_embed.layers.2.", "detr_decoder.box_head.layer3.", HF_SAM3_RENAME },
    { "transformer.decoder.query_embed.", "detr_decoder.query_embed.", HF_SAM3_RENAME },
    { "transformer.decoder.reference_points.", "detr_decoder.reference_points.", HF_SAM3_RENAME },
    { "transformer.decoder.boxRPB_embed_x.layers.0.", "detr_decoder.box_rpb_embed_x.layer1.", HF_SAM3_RENAME },
    { "transformer.decoder.boxRPB_embed_x.layers.1.", "detr_decoder.box_rpb_embed_x.layer2.", HF_SAM3_RENAME },
    { "transformer.decoder.boxRPB_embed_y.layers.0.", "detr_decoder.box_rpb_embed_y.layer1.", HF_SAM3_RENAME },
    { "transformer.decoder.boxRPB_embed_y.layers.1.", "detr_decoder.box_rpb_embed_y.layer2.", HF_SAM3_RENAME },
    { "transformer.decoder.presence_token.", "detr_decoder.presence_token.", HF_SAM3_RENAME },
    { "transformer.decoder.presence_token_head.layers.0.", "detr_decoder.presence_head.layer1.", HF_SAM3_RENAME },
    { "transformer.decoder.presence_token_head.layers.1.", "detr_decoder.presence_head.layer2.", HF_SAM3_RENAME },
    { "transformer.decoder.presence_token_head.layers.2.", "detr_decoder.presence_head.layer3.", HF_SAM3_RENAME },
    { "transformer.decoder.presence_token_out_norm.", "detr_decoder.presence_layer_norm.", HF_SAM3_RENAME },
    { "transformer.decoder.ref_point_head.layers.0.", "detr_decoder.ref_point_head.layer1.", HF_SAM3_RENAME },
    { "transformer.decoder.ref_point_head.layers.1.", "detr_decoder.ref_point_head.layer2.", HF_SAM3_RENAME },
    /* segmentation head <-> mask decoder */
    { "segmentation_head.pixel_decoder.conv_layers.#.", "mask_decoder.pixel_decoder.conv_layers.#.", HF_SAM3_RENAME },
    { "segmentation_head.pixel_decoder.norms.#.", "mask_decoder.pixel_decoder.norms.#.", HF_SAM3_RENAME },
    { "segmentation_head.mask_predictor.mask_embed.layers.#.", "mask_decoder.mask_embedder.layers.#.", HF_SAM3_RENAME },
    MHA("segmentation_head.cross_attend_prompt", "mask_decoder.prompt_cross_attn", "o_proj"),
    { "segmentation_head.cross_attn_norm.", "mask_decoder.prompt_cross_attn_norm.", HF_SAM3_RENAME },
    { "segmentation_head.semantic_seg_head.", "mask_decoder.semantic_projection.", HF_SAM3_RENAME },
    { "segmentation_head.instance_seg_head.", "mask_decoder.instance_projection.", HF_SAM3_RENAME },
    /* dot-product scoring */
    { "dot_prod_scoring.prompt_mlp.layers.0.", "dot_product_scoring.text_mlp.layer1.", HF_SAM3_RENAME },
    { "dot_prod_scoring.prompt_mlp.layers.1.", "dot_product_scoring.text_mlp.layer2.", HF_SAM3_RENAME },
    { "dot_prod_scoring.prompt_mlp.out_norm.", "dot_product_scoring.text_mlp_out_norm.", HF_SAM3_RENAME },
    { "dot_prod_scoring.prompt_proj.", "dot_product_scoring.text_proj.", HF_SAM3_RENAME },
    { "dot_prod_scoring.hs_proj.", "dot_product_scoring.query_proj.", HF_SAM3_RENAME },
};
#define N_RULES ((int)(sizeof rules / sizeof rules[0]))

/* Official tensors that transformers' Sam3Model does not hold. */
static const struct {
    const char *official;
    hf_sam3_absent why;
} absent[] = {
    { TRUNK "blocks.#.attn.freqs_cis", HF_SAM3_ABSENT_COMPUTED },
    { "geometry_encoder.points_direct_project.", HF_SAM3_ABSENT_POINTS },
    { "geometry_encoder.points_pool_project.", HF_SAM3_ABSENT_POINTS },
    { "geometry_encoder.points_pos_enc_project.", HF_SAM3_ABSENT_POINTS },
};

#define MAX_INDICES 2

/* Matches `pattern` against the start of `name`; the digits standing for each '#' go to
 * idx[]. Returns the length of name matched, or -1. */
static int match(const char *pattern, const char *name, long idx[MAX_INDICES], int *n_idx) {
    const char *n = name;
    *n_idx = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p != '#') {
            if (*n++ != *p) return -1;
            continue;
        }
        if (*n < '0' || *n > '9' || *n_idx == MAX_INDICES) return -1;
        long v = 0;
        while (*n >= '0' && *n <= '9' && v < 100000) v = v * 10 + (*n++ - '0');
        idx[(*n_idx)++] = v;
    }
    return (int)(n - name);
}

/* Writes `pattern` with its '#' replaced by idx[] in order, then `leaf`. */
static int expand(const char *pattern, const long *idx, const char *leaf, char *out, size_t size) {
    size_t k = 0;
    int i = 0;
    for (const char *p = pattern; *p && k < size; p++) {
        if (*p == '#') k += (size_t)snprintf(out + k, size - k, "%ld", idx[i++]);
        else out[k++] = *p;
    }
    if (k >= size) return -1;
    int m = snprintf(out + k, size - k, "%s", leaf);
    return m < 0 || (size_t)m >= size - k ? -1 : 0;
}

static int has_leaf(const char *prefix) {
    char c = prefix[strlen(prefix) - 1];
    return c == '.' || c == '_';
}

static int is_weight_or_bias(const char *s) { return !strcmp(s, "weight") || !strcmp(s, "bias"); }

/* The remainder after a matched prefix is what the rule allows. */
static int leaf_ok(const char *prefix, const char *rest) {
    return has_leaf(prefix) ? is_weight_or_bias(rest) : *rest == 0;
}

static const char *const qkv_names[3] = { "q_proj.", "k_proj.", "v_proj." };

int hf_sam3_to_official(const char *hf, char *official, size_t size, hf_sam3_kind *kind, int *part) {
    *part = 0;
    for (int r = 0; r < N_RULES; r++) {
        long idx[MAX_INDICES];
        int n_idx, m = match(rules[r].hf, hf, idx, &n_idx);
        if (m < 0) continue;
        const char *rest = hf + m;
        if (rules[r].kind == HF_SAM3_QKV) {
            int p = 0;
            while (p < 3 && strncmp(rest, qkv_names[p], 7) != 0) p++;
            if (p == 3 || !is_weight_or_bias(rest + 7)) continue;
            rest += 7;
            *part = p;
        } else if (!leaf_ok(rules[r].hf, rest)) {
            continue;
        }
        *kind = rules[r].kind;
        return expand(rules[r].official, idx, rest, official, size);
    }
    return -1;
}

int hf_sam3_from_official(const char *official, char hf[3][HF_SAM3_NAME_MAX], hf_sam3_kind *kind,
                          hf_sam3_absent *why) {
    long idx[MAX_INDICES];
    int n_idx;
    *why = 0;
    for (size_t a = 0; a < sizeof absent / sizeof absent[0]; a++) {
        int m = match(absent[a].official, official, idx, &n_idx);
        if (m >= 0 && leaf_ok(absent[a].official, official + m)) {
            *why = absent[a].why;
            return 0;
        }
    }
    for (int r = 0; r < N_RULES; r++) {
        int m = match(rules[r].official, official, idx, &n_idx);
        if (m < 0 || !leaf_ok(rules[r].official, official + m)) continue;
        *kind = rules[r].kind;
        if (rules[r].kind != HF_SAM3_QKV) return expand(rules[r].hf, idx, official + m, hf[0], HF_SAM3_NAME_MAX) ? -1 : 1;
        for (int p = 0; p < 3; p++) {
            char leaf[32];
            snprintf(leaf, sizeof leaf, "%s%s", qkv_names[p], official + m);
            if (expand(rules[r].hf, idx, leaf, hf[p], HF_SAM3_NAME_MAX)) return -1;
        }
        return 3;
    }
    return -1;
}
