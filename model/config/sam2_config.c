/* model/config/sam2_config.c: the SAM2.1 configs, the official state-dict specification
 * derived from them, and config detection. See sam2_config.h. */
#include "model/config/sam2_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------
 * Configs. Values other than the trunk/neck ones are the constants SAM2Base and its
 * sub-modules are built with in every official YAML; micro changes the ones listed in
 * shared/golden/README.md section 2. */

#define COMMON_HEADS                                                                      \
    .dim_mul = 2, .head_mul = 2, .q_pool = 3, .q_stride = 2, .mlp_ratio = 4,              \
    .patch_kernel = 7, .patch_stride = 4, .patch_padding = 3,                             \
    .fpn_top_down_levels = {2, 3}, .scalp = 1,                                            \
    .mask_in_chans = 16, .dec_depth = 2, .dec_heads = 8, .dec_mlp_dim = 2048,             \
    .dec_attn_downsample = 2, .num_multimask_outputs = 3, .iou_head_hidden = 256,         \
    .iou_head_depth = 3, .num_maskmem = 7, .mem_attn_layers = 4,                          \
    .mask_ds_stride = 2, .mask_ds_total_stride = 16, .fuser_layers = 2, .fuser_kernel = 7

static const sam2_config configs[] = {
    {   /* tiny with every width shrunk: the golden test config (README §2). */
        .name = "micro", .image_size = 256,
        .embed_dim = 16, .num_heads = 1, .stages = {1, 1, 2, 1},
        .n_global = 1, .global_att_blocks = {3}, .window_spec = {8, 4, 6, 3},
        .bkg_h = 7, .bkg_w = 7,
        .d_model = 32, .backbone_channel_list = {128, 64, 32, 16},
        .mem_dim = 16, .mem_attn_ff = 64,
        COMMON_HEADS
    },
    {   /* sam2.1_hiera_t.yaml (window_spec: Hiera default) */
        .name = "tiny", .image_size = 1024,
        .embed_dim = 96, .num_heads = 1, .stages = {1, 2, 7, 2},
        .n_global = 3, .global_att_blocks = {5, 7, 9}, .window_spec = {8, 4, 14, 7},
        .bkg_h = 7, .bkg_w = 7,
        .d_model = 256, .backbone_channel_list = {768, 384, 192, 96},
        .mem_dim = 64, .mem_attn_ff = 2048,
        COMMON_HEADS
    },
    {   /* sam2.1_hiera_s.yaml (window_spec: Hiera default) */
        .name = "small", .image_size = 1024,
        .embed_dim = 96, .num_heads = 1, .stages = {1, 2, 11, 2},
        .n_global = 3, .global_att_blocks = {7, 10, 13}, .window_spec = {8, 4, 14, 7},
        .bkg_h = 7, .bkg_w = 7,
        .d_model = 256, .backbone_channel_list = {768, 384, 192, 96},
        .mem_dim = 64, .mem_attn_ff = 2048,
        COMMON_HEADS
    },
    {   /* sam2.1_hiera_b+.yaml: only embed_dim and num_heads set; the rest are the Hiera
         * constructor defaults (stages, global blocks, 14x14 background, windows). */
        .name = "base_plus", .image_size = 1024,
        .embed_dim = 112, .num_heads = 2, .stages = {2, 3, 16, 3},
        .n_global = 3, .global_att_blocks = {12, 16, 20}, .window_spec = {8, 4, 14, 7},
        .bkg_h = 14, .bkg_w = 14,
        .d_model = 256, .backbone_channel_list = {896, 448, 224, 112},
        .mem_dim = 64, .mem_attn_ff = 2048,
        COMMON_HEADS
    },
    {   /* sam2.1_hiera_l.yaml */
        .name = "large", .image_size = 1024,
        .embed_dim = 144, .num_heads = 2, .stages = {2, 6, 36, 4},
        .n_global = 3, .global_att_blocks = {23, 33, 43}, .window_spec = {8, 4, 16, 8},
        .bkg_h = 7, .bkg_w = 7,
        .d_model = 256, .backbone_channel_list = {1152, 576, 288, 144},
        .mem_dim = 64, .mem_attn_ff = 2048,
        COMMON_HEADS
    },
};
#define N_CONFIGS ((int)(sizeof configs / sizeof configs[0]))

const sam2_config *sam2_config_get(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_CONFIGS; i++)
        if (strcmp(configs[i].name, name) == 0) return &configs[i];
    return NULL;
}

int sam2_config_count(void) { return N_CONFIGS; }

const sam2_config *sam2_config_at(int i) { return (i >= 0 && i < N_CONFIGS) ? &configs[i] : NULL; }

int sam2_config_trunk_depth(const sam2_config *c) {
    return c->stages[0] + c->stages[1] + c->stages[2] + c->stages[3];
}

int sam2_config_stage_dim(const sam2_config *c, int stage) {
    int d = c->embed_dim;
    for (int s = 0; s < stage; s++) d *= c->dim_mul;
    return d;
}

int sam2_config_stage_heads(const sam2_config *c, int stage) {
    int h = c->num_heads;
    for (int s = 0; s < stage; s++) h *= c->head_mul;
    return h;
}

/* Hiera: the first block of a stage already has that stage's output dim (the stage
 * change happens inside it, "lags by a block"), so stage(b) counts the stage ends < b. */
int sam2_config_block_stage(const sam2_config *c, int b) {
    int end = -1, stage = 0;
    for (int s = 0; s < 3; s++) {
        end += c->stages[s];
        if (b > end) stage = s + 1;
    }
    return stage;
}

int sam2_config_block_is_global(const sam2_config *c, int b) {
    for (int i = 0; i < c->n_global; i++)
        if (c->global_att_blocks[i] == b) return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * State-dict specification. Each spec_* mirrors one official module and lists its
 * parameters in registration order, which is the order state_dict() yields them. */

/* sam.transformer.Attention / RoPEAttention: q from embedding_dim, k/v from kv_in_dim,
 * all projected to internal_dim = embedding_dim / downsample_rate. */
static void spec_attention(spec_builder *b, const char *prefix, int dim, int kv_in, int internal) {
    char p[2 * SPEC_NAME_MAX];
    spec_prefix(p, "%s.q_proj", prefix); spec_linear(b, p, dim, internal, 1);
    spec_prefix(p, "%s.k_proj", prefix); spec_linear(b, p, kv_in, internal, 1);
    spec_prefix(p, "%s.v_proj", prefix); spec_linear(b, p, kv_in, internal, 1);
    spec_prefix(p, "%s.out_proj", prefix); spec_linear(b, p, internal, dim, 1);
}

/* backbones.hieradet.Hiera */
static void spec_trunk(spec_builder *b, const sam2_config *c) {
    const char *t = "image_encoder.trunk";
    int C = c->embed_dim;
    SPEC_ADD4(b, 1, C, c->bkg_h, c->bkg_w, "%s.pos_embed", t);
    SPEC_ADD4(b, 1, C, c->window_spec[0], c->window_spec[0], "%s.pos_embed_window", t);
    SPEC_ADD4(b, C, 3, c->patch_kernel, c->patch_kernel, "%s.patch_embed.proj.weight", t);
    SPEC_ADD1(b, C, "%s.patch_embed.proj.bias", t);
    int depth = sam2_config_trunk_depth(c);
    char p[2 * SPEC_NAME_MAX];
    for (int i = 0; i < depth; i++) {
        /* MultiScaleBlock: norm1(dim), attn(qkv dim->3*dim_out, proj), norm2(dim_out),
         * mlp, and proj(dim->dim_out) when the block changes the width. */
        int dim_out = sam2_config_stage_dim(c, sam2_config_block_stage(c, i));
        int dim = i == 0 ? C : sam2_config_stage_dim(c, sam2_config_block_stage(c, i - 1));
        spec_prefix(p, "%s.blocks.%d.norm1", t, i); spec_norm(b, p, dim);
        spec_prefix(p, "%s.blocks.%d.attn.qkv", t, i); spec_linear(b, p, dim, 3 * dim_out, 1);
        spec_prefix(p, "%s.blocks.%d.attn.proj", t, i); spec_linear(b, p, dim_out, dim_out, 1);
        spec_prefix(p, "%s.blocks.%d.norm2", t, i); spec_norm(b, p, dim_out);
        spec_prefix(p, "%s.blocks.%d.mlp", t, i);
        spec_mlp(b, p, dim_out, c->mlp_ratio * dim_out, dim_out, 2);
        if (dim != dim_out) {
            spec_prefix(p, "%s.blocks.%d.proj", t, i);
            spec_linear(b, p, dim, dim_out, 1);
        }
    }
}

/* backbones.image_encoder.FpnNeck: one 1x1 conv per backbone level. */
static void spec_neck(spec_builder *b, const sam2_config *c) {
    char p[2 * SPEC_NAME_MAX];
    for (int i = 0; i < 4; i++) {
        spec_prefix(p, "image_encoder.neck.convs.%d.conv", i);
        spec_conv(b, p, c->backbone_channel_list[i], c->d_model, 1, 1, 1);
    }
}

/* memory_attention.MemoryAttention of MemoryAttentionLayer (self RoPE attention on d,
 * cross RoPE attention with keys/values from the mem_dim memories). */
static void spec_memory_attention(spec_builder *b, const sam2_config *c) {
    int d = c->d_model;
    char p[2 * SPEC_NAME_MAX];
    for (int l = 0; l < c->mem_attn_layers; l++) {
        spec_prefix(p, "memory_attention.layers.%d.self_attn", l);
        spec_attention(b, p, d, d, d);
        spec_prefix(p, "memory_attention.layers.%d.cross_attn_image", l);
        spec_attention(b, p, d, c->mem_dim, d);
        spec_prefix(p, "memory_attention.layers.%d.linear1", l);
        spec_linear(b, p, d, c->mem_attn_ff, 1);
        spec_prefix(p, "memory_attention.layers.%d.linear2", l);
        spec_linear(b, p, c->mem_attn_ff, d, 1);
        for (int k = 1; k <= 3; k++) {
            spec_prefix(p, "memory_attention.layers.%d.norm%d", l, k);
            spec_norm(b, p, d);
        }
    }
    spec_norm(b, "memory_attention.norm", d);
}

/* memory_encoder.MemoryEncoder: MaskDownSampler (conv/LayerNorm2d/GELU triples, channels
 * x stride^2 each, then a 1x1 conv to d_model), pix_feat_proj, Fuser of CXBlocks,
 * out_proj to mem_dim. */
static void spec_memory_encoder(spec_builder *b, const sam2_config *c) {
    int d = c->d_model;
    char p[2 * SPEC_NAME_MAX];
    int n_layers = 0;
    for (int s = 1; s < c->mask_ds_total_stride; s *= c->mask_ds_stride) n_layers++;
    int in = 1, idx = 0;
    for (int l = 0; l < n_layers; l++) {
        int out = in * c->mask_ds_stride * c->mask_ds_stride;
        spec_prefix(p, "memory_encoder.mask_downsampler.encoder.%d", idx);
        spec_conv(b, p, in, out, 3, 1, 1);
        spec_prefix(p, "memory_encoder.mask_downsampler.encoder.%d", idx + 1);
        spec_norm(b, p, out);
        idx += 3; /* conv, norm, activation (no parameters) */
        in = out;
    }
    spec_prefix(p, "memory_encoder.mask_downsampler.encoder.%d", idx);
    spec_conv(b, p, in, d, 1, 1, 1);
    spec_conv(b, "memory_encoder.pix_feat_proj", d, d, 1, 1, 1);
    for (int l = 0; l < c->fuser_layers; l++) {
        SPEC_ADD1(b, d, "memory_encoder.fuser.layers.%d.gamma", l);
        spec_prefix(p, "memory_encoder.fuser.layers.%d.dwconv", l);
        spec_conv(b, p, d, d, c->fuser_kernel, d, 1);
        spec_prefix(p, "memory_encoder.fuser.layers.%d.norm", l);
        spec_norm(b, p, d);
        spec_prefix(p, "memory_encoder.fuser.layers.%d.pwconv1", l);
        spec_linear(b, p, d, 4 * d, 1);
        spec_prefix(p, "memory_encoder.fuser.layers.%d.pwconv2", l);
        spec_linear(b, p, 4 * d, d, 1);
    }
    /* out_proj is an Identity when out_dim == in_dim; it is a conv in every config. */
    if (c->mem_dim != d) spec_conv(b, "memory_encoder.out_proj", d, c->mem_dim, 1, 1, 1);
}

/* sam.prompt_encoder.PromptEncoder */
static void spec_prompt_encoder(spec_builder *b, const sam2_config *c) {
    int d = c->d_model, m = c->mask_in_chans;
    SPEC_ADD2(b, 2, d / 2, "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix");
    for (int i = 0; i < 4; i++) SPEC_ADD2(b, 1, d, "sam_prompt_encoder.point_embeddings.%d.weight", i);
    SPEC_ADD2(b, 1, d, "sam_prompt_encoder.not_a_point_embed.weight");
    spec_conv(b, "sam_prompt_encoder.mask_downscaling.0", 1, m / 4, 2, 1, 1);
    spec_norm(b, "sam_prompt_encoder.mask_downscaling.1", m / 4);
    spec_conv(b, "sam_prompt_encoder.mask_downscaling.3", m / 4, m, 2, 1, 1);
    spec_norm(b, "sam_prompt_encoder.mask_downscaling.4", m);
    spec_conv(b, "sam_prompt_encoder.mask_downscaling.6", m, d, 1, 1, 1);
    SPEC_ADD2(b, 1, d, "sam_prompt_encoder.no_mask_embed.weight");
}

/* sam.mask_decoder.MaskDecoder with its TwoWayTransformer. */
static void spec_mask_decoder(spec_builder *b, const sam2_config *c) {
    int d = c->d_model, di = d / c->dec_attn_downsample;
    int n_masks = c->num_multimask_outputs + 1;
    char p[2 * SPEC_NAME_MAX];
    const char *t = "sam_mask_decoder.transformer";
    for (int l = 0; l < c->dec_depth; l++) {
        /* TwoWayAttentionBlock registration order */
        spec_prefix(p, "%s.layers.%d.self_attn", t, l); spec_attention(b, p, d, d, d);
        spec_prefix(p, "%s.layers.%d.norm1", t, l); spec_norm(b, p, d);
        spec_prefix(p, "%s.layers.%d.cross_attn_token_to_image", t, l);
        spec_attention(b, p, d, d, di);
        spec_prefix(p, "%s.layers.%d.norm2", t, l); spec_norm(b, p, d);
        spec_prefix(p, "%s.layers.%d.mlp", t, l); spec_mlp(b, p, d, c->dec_mlp_dim, d, 2);
        spec_prefix(p, "%s.layers.%d.norm3", t, l); spec_norm(b, p, d);
        spec_prefix(p, "%s.layers.%d.norm4", t, l); spec_norm(b, p, d);
        spec_prefix(p, "%s.layers.%d.cross_attn_image_to_token", t, l);
        spec_attention(b, p, d, d, di);
    }
    spec_prefix(p, "%s.final_attn_token_to_image", t); spec_attention(b, p, d, d, di);
    spec_prefix(p, "%s.norm_final_attn", t); spec_norm(b, p, d);

    SPEC_ADD2(b, 1, d, "sam_mask_decoder.iou_token.weight");
    SPEC_ADD2(b, n_masks, d, "sam_mask_decoder.mask_tokens.weight");
    SPEC_ADD2(b, 1, d, "sam_mask_decoder.obj_score_token.weight");
    /* ConvTranspose2d weights are [in, out, k, k]. */
    SPEC_ADD4(b, d, d / 4, 2, 2, "sam_mask_decoder.output_upscaling.0.weight");
    SPEC_ADD1(b, d / 4, "sam_mask_decoder.output_upscaling.0.bias");
    spec_norm(b, "sam_mask_decoder.output_upscaling.1", d / 4);
    SPEC_ADD4(b, d / 4, d / 8, 2, 2, "sam_mask_decoder.output_upscaling.3.weight");
    SPEC_ADD1(b, d / 8, "sam_mask_decoder.output_upscaling.3.bias");
    spec_conv(b, "sam_mask_decoder.conv_s0", d, d / 8, 1, 1, 1);
    spec_conv(b, "sam_mask_decoder.conv_s1", d, d / 4, 1, 1, 1);
    for (int i = 0; i < n_masks; i++) {
        spec_prefix(p, "sam_mask_decoder.output_hypernetworks_mlps.%d", i);
        spec_mlp(b, p, d, d, d / 8, 3);
    }
    spec_mlp(b, "sam_mask_decoder.iou_prediction_head", d, c->iou_head_hidden, n_masks,
             c->iou_head_depth);
    spec_mlp(b, "sam_mask_decoder.pred_obj_score_head", d, d, 1, 3);
}

int sam2_config_spec(const sam2_config *c, spec_entry **out, int *n, char *err) {
    *out = NULL; *n = 0;
    if (!c) { snprintf(err, SPEC_ERRMSG, "sam2_config_spec: no config"); return -1; }
    spec_builder b = {0};
    int d = c->d_model, mem = c->mem_dim;
    /* SAM2Base: a module's own parameters precede its children's in state_dict(). */
    SPEC_ADD4(&b, c->num_maskmem, 1, 1, mem, "maskmem_tpos_enc");
    SPEC_ADD3(&b, 1, 1, d, "no_mem_embed");
    SPEC_ADD3(&b, 1, 1, d, "no_mem_pos_enc");
    SPEC_ADD2(&b, 1, d, "no_obj_ptr");
    SPEC_ADD2(&b, 1, mem, "no_obj_embed_spatial");
    spec_trunk(&b, c);
    spec_neck(&b, c);
    spec_conv(&b, "mask_downsample", 1, 1, 4, 1, 1);
    spec_memory_attention(&b, c);
    spec_memory_encoder(&b, c);
    spec_prompt_encoder(&b, c);
    spec_mask_decoder(&b, c);
    spec_mlp(&b, "obj_ptr_proj", d, d, d, 3);
    spec_linear(&b, "obj_ptr_tpos_proj", d, mem, 1);
    return spec_builder_finish(&b, out, n, err);
}

int sam2_config_is_image_path(const char *name) {
    return strncmp(name, "image_encoder.", 14) == 0 || strncmp(name, "sam_prompt_encoder.", 19) == 0 ||
           strncmp(name, "sam_mask_decoder.", 17) == 0 || strcmp(name, "no_mem_embed") == 0;
}


/* ------------------------------------------------------------------------------------
 * Config detection. */

static int image_path_required(const char *name) { return sam2_config_is_image_path(name); }

static int build_spec(int i, spec_entry **out, int *n, char *err) { return sam2_config_spec(&configs[i], out, n, err); }

int sam2_config_detect(const char *const *names, const int64_t *const *shapes, const int *ndims, int n,
                       sam2_match_mode mode, const sam2_config **out, char *err) {
    *out = NULL;
    if (n <= 0) {
        snprintf(err, SPEC_ERRMSG, "no tensors to match against the SAM2.1 configs");
        return -1;
    }
    int (*required)(const char *) = mode == SAM2_MATCH_IMAGE_ONLY ? image_path_required : NULL;
    int best = 0;
    spec_match_report best_r = {0};
    char detail[320];
    int found = spec_detect(N_CONFIGS, build_spec, required, names, shapes, ndims, n, &best, &best_r, detail,
                            sizeof detail, err);
    if (found >= 0) {
        *out = &configs[found];
        return 0;
    }
    if (found == -2) return -1;
    /* Report against the closest config: the first problem of each kind. */
    const spec_match_report *r = &best_r;
    /* A SAM 1 checkpoint has a plain ViT encoder (image_encoder.blocks.*, no trunk). */
    int sam1 = 0;
    for (int i = 0; i < n && !sam1; i++) sam1 = strncmp(names[i], "image_encoder.blocks.", 21) == 0;
    snprintf(err, SPEC_ERRMSG,
             "%d tensors match no SAM2.1 config%s%s; closest is '%s' (%d of %d %s tensors match: %d missing, "
             "%d unexpected, %d wrong shape)",
             n, mode == SAM2_MATCH_IMAGE_ONLY ? " (image-only)" : "",
             sam1 ? " (image_encoder.blocks.* suggests a SAM 1 checkpoint, which is not supported)" : "",
             configs[best].name, r->matched_required, r->n_required,
             mode == SAM2_MATCH_IMAGE_ONLY ? "image-path" : "expected", r->missing, r->unexpected, r->mismatched);
    /* the details go last so that a long key truncates only them */
    size_t used = strlen(err);
    snprintf(err + used, SPEC_ERRMSG - used, "%s", detail);
    return -1;
}
