/* model/config/sam3_config.c: the SAM3 image-model configs, the state-dict specification
 * derived from them, and config detection. See sam3_config.h. */
#include "model/config/sam3_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------
 * Configs: sam3 is build_sam3_image_model's hard-coded arguments; sam3_micro cuts every
 * width (shared/golden/sam3/micro/model_config.json). Constants shared by both follow. */

#define SAM3_COMMON                                                                   \
    .patch_size = 14, .text_ctx = 32, .vocab = 49408, .text_proj_dim = 512,           \
    .roi_size = 7, .pd_stages = 3

static const sam3_config configs[] = {
    {
        .name = "sam3", .image_size = 1008,
        .vit_dim = 1024, .vit_depth = 32, .vit_heads = 16, .vit_mlp_hidden = 4736,
        .window = 24, .n_global = 4, .global_blocks = {7, 15, 23, 31}, .pretrain_size = 336,
        .d_model = 256,
        .text_width = 1024, .text_layers = 24, .text_heads = 16,
        .enc_layers = 6, .enc_heads = 8, .enc_ffn = 2048,
        .dec_layers = 6, .dec_heads = 8, .dec_ffn = 2048, .num_queries = 200,
        .geo_layers = 3, .geo_heads = 8, .geo_ffn = 2048,
        .scoring_hidden = 2048,
        SAM3_COMMON
    },
    {   /* the golden test config: the same code paths at a few MB */
        .name = "sam3_micro", .image_size = 252,
        .vit_dim = 64, .vit_depth = 4, .vit_heads = 2, .vit_mlp_hidden = 296,
        .window = 6, .n_global = 2, .global_blocks = {1, 3}, .pretrain_size = 84,
        .d_model = 32,
        .text_width = 64, .text_layers = 2, .text_heads = 2,
        .enc_layers = 2, .enc_heads = 2, .enc_ffn = 64,
        .dec_layers = 2, .dec_heads = 2, .dec_ffn = 64, .num_queries = 20,
        .geo_layers = 2, .geo_heads = 2, .geo_ffn = 64,
        .scoring_hidden = 64,
        SAM3_COMMON
    },
};
#define N_CONFIGS ((int)(sizeof configs / sizeof configs[0]))

const sam3_config *sam3_config_get(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_CONFIGS; i++)
        if (strcmp(configs[i].name, name) == 0) return &configs[i];
    return NULL;
}

int sam3_config_count(void) { return N_CONFIGS; }

const sam3_config *sam3_config_at(int i) { return (i >= 0 && i < N_CONFIGS) ? &configs[i] : NULL; }

int sam3_config_grid(const sam3_config *c) { return c->image_size / c->patch_size; }

int sam3_config_block_is_global(const sam3_config *c, int b) {
    for (int i = 0; i < c->n_global; i++)
        if (c->global_blocks[i] == b) return 1;
    return 0;
}

int sam3_config_rope_tokens(const sam3_config *c, int b) {
    int side = sam3_config_block_is_global(c, b) ? sam3_config_grid(c) : c->window;
    return side * side;
}

/* ------------------------------------------------------------------------------------
 * State-dict specification. Each function mirrors one official module and lists its
 * entries in registration order: a module's own parameters, then its own buffers, then
 * its children's, which is the order state_dict() yields them. */

/* nn.MultiheadAttention(d, heads): packed in_proj_weight [3d, d], in_proj_bias, out_proj. */
static void spec_mha(spec_builder *b, const char *prefix, int d) {
    char p[2 * SPEC_NAME_MAX];
    SPEC_ADD2(b, 3 * d, d, "%s.in_proj_weight", prefix);
    SPEC_ADD1(b, 3 * d, "%s.in_proj_bias", prefix);
    spec_prefix(p, "%s.out_proj", prefix);
    spec_linear(b, p, d, d, 1);
}

/* vitdet.ViT (backbone.vision_backbone.trunk): Block = norm1, attn (its freqs_cis buffer
 * before its qkv / proj children), norm2, mlp (timm Mlp: fc1, fc2); then ln_pre. */
static void spec_vit(spec_builder *b, const sam3_config *c) {
    const char *t = "backbone.vision_backbone.trunk";
    int C = c->vit_dim, pg = c->pretrain_size / c->patch_size;
    char p[2 * SPEC_NAME_MAX];
    SPEC_ADD3(b, 1, pg * pg + 1, C, "%s.pos_embed", t);
    SPEC_ADD4(b, C, 3, c->patch_size, c->patch_size, "%s.patch_embed.proj.weight", t);
    for (int i = 0; i < c->vit_depth; i++) {
        spec_prefix(p, "%s.blocks.%d.norm1", t, i); spec_norm(b, p, C);
        SPEC_ADD2(b, sam3_config_rope_tokens(c, i), C / c->vit_heads / 2, "%s.blocks.%d.attn.freqs_cis", t, i);
        spec_prefix(p, "%s.blocks.%d.attn.qkv", t, i); spec_linear(b, p, C, 3 * C, 1);
        spec_prefix(p, "%s.blocks.%d.attn.proj", t, i); spec_linear(b, p, C, C, 1);
        spec_prefix(p, "%s.blocks.%d.norm2", t, i); spec_norm(b, p, C);
        spec_prefix(p, "%s.blocks.%d.mlp.fc1", t, i); spec_linear(b, p, C, c->vit_mlp_hidden, 1);
        spec_prefix(p, "%s.blocks.%d.mlp.fc2", t, i); spec_linear(b, p, c->vit_mlp_hidden, C, 1);
    }
    spec_prefix(p, "%s.ln_pre", t); spec_norm(b, p, C);
}

/* necks.Sam3DualViTDetNeck convs (scale factors 4, 2, 1, 0.5): the 4x branch has two
 * ConvTranspose2d (C -> C/2 -> C/4), the 2x branch one (C -> C/2); every branch ends in
 * conv_1x1 (-> d_model) and conv_3x3. */
static void spec_neck(spec_builder *b, const sam3_config *c) {
    const char *n = "backbone.vision_backbone.convs";
    int C = c->vit_dim, d = c->d_model;
    char p[2 * SPEC_NAME_MAX];
    for (int i = 0; i < 4; i++) {
        int in = C;
        if (i == 0) {
            spec_prefix(p, "%s.0.dconv_2x2_0", n); spec_conv_transpose(b, p, C, C / 2, 2);
            spec_prefix(p, "%s.0.dconv_2x2_1", n); spec_conv_transpose(b, p, C / 2, C / 4, 2);
            in = C / 4;
        } else if (i == 1) {
            spec_prefix(p, "%s.1.dconv_2x2", n); spec_conv_transpose(b, p, C, C / 2, 2);
            in = C / 2;
        }
        spec_prefix(p, "%s.%d.conv_1x1", n, i); spec_conv(b, p, in, d, 1, 1, 1);
        spec_prefix(p, "%s.%d.conv_3x3", n, i); spec_conv(b, p, d, d, 3, 1, 1);
    }
}

/* text_encoder_ve.VETextEncoder (backbone.language_backbone): TextTransformer's own
 * parameters (positional_embedding, text_projection), token_embedding, the residual
 * blocks (attn, ln_1, ln_2, mlp.c_fc, mlp.c_proj), ln_final; then the resizer. */
static void spec_text(spec_builder *b, const sam3_config *c) {
    const char *e = "backbone.language_backbone.encoder";
    int W = c->text_width;
    char p[2 * SPEC_NAME_MAX];
    SPEC_ADD2(b, c->text_ctx, W, "%s.positional_embedding", e);
    SPEC_ADD2(b, W, c->text_proj_dim, "%s.text_projection", e);
    SPEC_ADD2(b, c->vocab, W, "%s.token_embedding.weight", e);
    for (int i = 0; i < c->text_layers; i++) {
        spec_prefix(p, "%s.transformer.resblocks.%d.attn", e, i); spec_mha(b, p, W);
        spec_prefix(p, "%s.transformer.resblocks.%d.ln_1", e, i); spec_norm(b, p, W);
        spec_prefix(p, "%s.transformer.resblocks.%d.ln_2", e, i); spec_norm(b, p, W);
        spec_prefix(p, "%s.transformer.resblocks.%d.mlp.c_fc", e, i); spec_linear(b, p, W, 4 * W, 1);
        spec_prefix(p, "%s.transformer.resblocks.%d.mlp.c_proj", e, i); spec_linear(b, p, 4 * W, W, 1);
    }
    spec_prefix(p, "%s.ln_final", e); spec_norm(b, p, W);
    spec_linear(b, "backbone.language_backbone.resizer", W, c->d_model, 1);
}

/* encoder.TransformerEncoderLayer: self_attn, cross_attn_image, linear1, linear2, norm1..3. */
static void spec_encoder_layer(spec_builder *b, const char *prefix, int d, int ffn) {
    char p[2 * SPEC_NAME_MAX];
    spec_prefix(p, "%s.self_attn", prefix); spec_mha(b, p, d);
    spec_prefix(p, "%s.cross_attn_image", prefix); spec_mha(b, p, d);
    spec_prefix(p, "%s.linear1", prefix); spec_linear(b, p, d, ffn, 1);
    spec_prefix(p, "%s.linear2", prefix); spec_linear(b, p, ffn, d, 1);
    for (int k = 1; k <= 3; k++) {
        spec_prefix(p, "%s.norm%d", prefix, k);
        spec_norm(b, p, d);
    }
}

/* geometry_encoders.SequenceGeometryEncoder with points and boxes (direct, pool, pos),
 * CLS, final projection, layers. */
static void spec_geometry(spec_builder *b, const sam3_config *c) {
    const char *g = "geometry_encoder";
    int d = c->d_model;
    char p[2 * SPEC_NAME_MAX];
    SPEC_ADD2(b, 2, d, "%s.label_embed.weight", g);
    SPEC_ADD2(b, 1, d, "%s.cls_embed.weight", g);
    spec_prefix(p, "%s.points_direct_project", g); spec_linear(b, p, 2, d, 1);
    spec_prefix(p, "%s.points_pool_project", g); spec_linear(b, p, d, d, 1);
    spec_prefix(p, "%s.points_pos_enc_project", g); spec_linear(b, p, d, d, 1);
    spec_prefix(p, "%s.boxes_direct_project", g); spec_linear(b, p, 4, d, 1);
    spec_prefix(p, "%s.boxes_pool_project", g); spec_conv(b, p, d, d, c->roi_size, 1, 1);
    spec_prefix(p, "%s.boxes_pos_enc_project", g); spec_linear(b, p, d + 2, d, 1);
    spec_prefix(p, "%s.final_proj", g); spec_linear(b, p, d, d, 1);
    spec_prefix(p, "%s.norm", g); spec_norm(b, p, d);
    spec_prefix(p, "%s.img_pre_norm", g); spec_norm(b, p, d);
    for (int i = 0; i < c->geo_layers; i++) {
        spec_prefix(p, "%s.encode.%d", g, i);
        spec_encoder_layer(b, p, d, c->geo_ffn);
    }
    spec_prefix(p, "%s.encode_norm", g); spec_norm(b, p, d);
}

/* decoder.TransformerDecoder: layers (cross_attn, norm1, ca_text, catext_norm,
 * self_attn, norm2, linear1, linear2, norm3), norm, bbox_embed, query_embed,
 * reference_points, boxRPB MLPs (2 -> d -> heads), presence token, its head and norm,
 * ref_point_head (2d -> d -> d). */
static void spec_decoder(spec_builder *b, const sam3_config *c) {
    const char *t = "transformer.decoder";
    int d = c->d_model;
    char p[2 * SPEC_NAME_MAX];
    for (int i = 0; i < c->dec_layers; i++) {
        spec_prefix(p, "%s.layers.%d.cross_attn", t, i); spec_mha(b, p, d);
        spec_prefix(p, "%s.layers.%d.norm1", t, i); spec_norm(b, p, d);
        spec_prefix(p, "%s.layers.%d.ca_text", t, i); spec_mha(b, p, d);
        spec_prefix(p, "%s.layers.%d.catext_norm", t, i); spec_norm(b, p, d);
        spec_prefix(p, "%s.layers.%d.self_attn", t, i); spec_mha(b, p, d);
        spec_prefix(p, "%s.layers.%d.norm2", t, i); spec_norm(b, p, d);
        spec_prefix(p, "%s.layers.%d.linear1", t, i); spec_linear(b, p, d, c->dec_ffn, 1);
        spec_prefix(p, "%s.layers.%d.linear2", t, i); spec_linear(b, p, c->dec_ffn, d, 1);
        spec_prefix(p, "%s.layers.%d.norm3", t, i); spec_norm(b, p, d);
    }
    spec_prefix(p, "%s.norm", t); spec_norm(b, p, d);
    spec_prefix(p, "%s.bbox_embed", t); spec_mlp(b, p, d, d, 4, 3);
    SPEC_ADD2(b, c->num_queries, d, "%s.query_embed.weight", t);
    SPEC_ADD2(b, c->num_queries, 4, "%s.reference_points.weight", t);
    spec_prefix(p, "%s.boxRPB_embed_x", t); spec_mlp(b, p, 2, d, c->dec_heads, 2);
    spec_prefix(p, "%s.boxRPB_embed_y", t); spec_mlp(b, p, 2, d, c->dec_heads, 2);
    SPEC_ADD2(b, 1, d, "%s.presence_token.weight", t);
    spec_prefix(p, "%s.presence_token_head", t); spec_mlp(b, p, d, d, 1, 3);
    spec_prefix(p, "%s.presence_token_out_norm", t); spec_norm(b, p, d);
    spec_prefix(p, "%s.ref_point_head", t); spec_mlp(b, p, 2 * d, d, d, 2);
}

/* maskformer_segmentation.UniversalSegmentationHead: pixel_decoder (conv_layers, norms),
 * mask_predictor.mask_embed, cross_attend_prompt, cross_attn_norm, semantic_seg_head,
 * instance_seg_head. */
static void spec_segmentation(spec_builder *b, const sam3_config *c) {
    const char *s = "segmentation_head";
    int d = c->d_model;
    char p[2 * SPEC_NAME_MAX];
    for (int i = 0; i < c->pd_stages; i++) {
        spec_prefix(p, "%s.pixel_decoder.conv_layers.%d", s, i);
        spec_conv(b, p, d, d, 3, 1, 1);
    }
    for (int i = 0; i < c->pd_stages; i++) {
        spec_prefix(p, "%s.pixel_decoder.norms.%d", s, i);
        spec_norm(b, p, d);
    }
    spec_prefix(p, "%s.mask_predictor.mask_embed", s); spec_mlp(b, p, d, d, d, 3);
    spec_prefix(p, "%s.cross_attend_prompt", s); spec_mha(b, p, d);
    spec_prefix(p, "%s.cross_attn_norm", s); spec_norm(b, p, d);
    spec_prefix(p, "%s.semantic_seg_head", s); spec_conv(b, p, d, 1, 1, 1, 1);
    spec_prefix(p, "%s.instance_seg_head", s); spec_conv(b, p, d, d, 1, 1, 1);
}

/* model_misc.DotProductScoring: prompt_mlp (2 layers, residual, out_norm), prompt_proj,
 * hs_proj. */
static void spec_scoring(spec_builder *b, const sam3_config *c) {
    int d = c->d_model;
    spec_mlp(b, "dot_prod_scoring.prompt_mlp", d, c->scoring_hidden, d, 2);
    spec_norm(b, "dot_prod_scoring.prompt_mlp.out_norm", d);
    spec_linear(b, "dot_prod_scoring.prompt_proj", d, d, 1);
    spec_linear(b, "dot_prod_scoring.hs_proj", d, d, 1);
}

int sam3_config_spec(const sam3_config *c, spec_entry **out, int *n, char *err) {
    *out = NULL;
    *n = 0;
    if (!c) {
        snprintf(err, SPEC_ERRMSG, "sam3_config_spec: no config");
        return -1;
    }
    spec_builder b = {0};
    /* Sam3Image children in registration order: backbone (vision, language),
     * geometry_encoder, transformer (encoder, decoder), segmentation_head, scoring. */
    spec_vit(&b, c);
    spec_neck(&b, c);
    spec_text(&b, c);
    spec_geometry(&b, c);
    for (int i = 0; i < c->enc_layers; i++) {
        char p[2 * SPEC_NAME_MAX];
        spec_prefix(p, "transformer.encoder.layers.%d", i);
        spec_encoder_layer(&b, p, c->d_model, c->enc_ffn);
    }
    spec_decoder(&b, c);
    spec_segmentation(&b, c);
    spec_scoring(&b, c);
    return spec_builder_finish(&b, out, n, err);
}

int sam3_config_is_stored(const char *name) {
    static const char suffix[] = ".attn.freqs_cis";
    size_t n = strlen(name), m = sizeof suffix - 1;
    return !(n >= m && strcmp(name + n - m, suffix) == 0);
}

int sam3_config_looks_like(const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strncmp(names[i], "backbone.vision_backbone.trunk.", 31) == 0 ||
            strncmp(names[i], "backbone.language_backbone.", 27) == 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * Config detection. */

static int stored_required(const char *name) { return sam3_config_is_stored(name); }

static int build_spec(int i, spec_entry **out, int *n, char *err) { return sam3_config_spec(&configs[i], out, n, err); }

int sam3_config_detect(const char *const *names, const int64_t *const *shapes, const int *ndims, int n,
                       const sam3_config **out, char *err) {
    *out = NULL;
    if (n <= 0) {
        snprintf(err, SPEC_ERRMSG, "no tensors to match against the SAM3 configs");
        return -1;
    }
    int best = 0;
    spec_match_report r = {0};
    char detail[320];
    int found = spec_detect(N_CONFIGS, build_spec, stored_required, names, shapes, ndims, n, &best, &r, detail,
                            sizeof detail, err);
    if (found >= 0) {
        *out = &configs[found];
        return 0;
    }
    if (found == -2) return -1;
    snprintf(err, SPEC_ERRMSG,
             "%d tensors match no SAM3 config; closest is '%s' (%d of %d stored tensors match: %d missing, "
             "%d unexpected, %d wrong shape)",
             n, configs[best].name, r.matched_required, r.n_required, r.missing, r.unexpected, r.mismatched);
    size_t used = strlen(err);
    snprintf(err + used, SPEC_ERRMSG - used, "%s", detail);
    return -1;
}
