/* loader/synth.c: SAM2.1 configs, the official state-dict specification derived from
 * them, the samc-synth-v1 weight formula and the config detector. See synth.h. */
#include "loader/synth.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------
 * Configs. Values other than the trunk/neck ones are the constants SAM2Base and its
 * sub-modules are built with in every official YAML; micro changes the ones listed in
 * shared/golden/README.md §2. */

#define COMMON_HEADS                                                                      \
    .dim_mul = 2, .head_mul = 2, .q_pool = 3, .q_stride = 2, .mlp_ratio = 4,              \
    .patch_kernel = 7, .patch_stride = 4, .patch_padding = 3,                             \
    .fpn_top_down_levels = {2, 3}, .scalp = 1,                                            \
    .mask_in_chans = 16, .dec_depth = 2, .dec_heads = 8, .dec_mlp_dim = 2048,             \
    .dec_attn_downsample = 2, .num_multimask_outputs = 3, .iou_head_hidden = 256,         \
    .iou_head_depth = 3, .num_maskmem = 7, .mem_attn_layers = 4,                          \
    .mask_ds_stride = 2, .mask_ds_total_stride = 16, .fuser_layers = 2, .fuser_kernel = 7

static const synth_config configs[] = {
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

const synth_config *synth_config_get(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_CONFIGS; i++)
        if (strcmp(configs[i].name, name) == 0) return &configs[i];
    return NULL;
}

int synth_config_count(void) { return N_CONFIGS; }

const synth_config *synth_config_at(int i) { return (i >= 0 && i < N_CONFIGS) ? &configs[i] : NULL; }

int synth_trunk_depth(const synth_config *c) {
    return c->stages[0] + c->stages[1] + c->stages[2] + c->stages[3];
}

int synth_stage_dim(const synth_config *c, int stage) {
    int d = c->embed_dim;
    for (int s = 0; s < stage; s++) d *= c->dim_mul;
    return d;
}

int synth_stage_heads(const synth_config *c, int stage) {
    int h = c->num_heads;
    for (int s = 0; s < stage; s++) h *= c->head_mul;
    return h;
}

/* Hiera: the first block of a stage already has that stage's output dim (the stage
 * change happens inside it, "lags by a block"), so stage(b) counts the stage ends < b. */
int synth_block_stage(const synth_config *c, int b) {
    int end = -1, stage = 0;
    for (int s = 0; s < 3; s++) {
        end += c->stages[s];
        if (b > end) stage = s + 1;
    }
    return stage;
}

int synth_block_is_global(const synth_config *c, int b) {
    for (int i = 0; i < c->n_global; i++)
        if (c->global_att_blocks[i] == b) return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * State-dict specification. Each emit_* mirrors one official module and lists its
 * parameters in registration order, which is the order state_dict() yields them. */

typedef struct {
    synth_entry *e;
    int n, cap;
    int failed;
    char *err;
} spec_builder;

static void add(spec_builder *b, int ndim, const int64_t *dims, const char *fmt, ...) {
    if (b->failed) return;
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 512;
        synth_entry *e = realloc(b->e, (size_t)cap * sizeof *e);
        if (!e) {
            snprintf(b->err, SAMC_ERRMSG, "synth_spec: out of memory at %d entries", b->n);
            b->failed = 1;
            return;
        }
        b->e = e; b->cap = cap;
    }
    synth_entry *t = &b->e[b->n];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int)sizeof t->name) {
        snprintf(b->err, SAMC_ERRMSG, "synth_spec: tensor name longer than %d bytes: '%s...'",
                 SYNTH_NAME_MAX - 1, t->name);
        b->failed = 1;
        return;
    }
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) { t->shape[i] = dims[i]; t->numel *= dims[i]; }
    b->n++;
}

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define ADD1(b, a, ...) add(b, 1, D(a), __VA_ARGS__)
#define ADD2(b, a0, a1, ...) add(b, 2, D(a0, a1), __VA_ARGS__)
#define ADD3(b, a0, a1, a2, ...) add(b, 3, D(a0, a1, a2), __VA_ARGS__)
#define ADD4(b, a0, a1, a2, a3, ...) add(b, 4, D(a0, a1, a2, a3), __VA_ARGS__)

/* Module prefix into p[2 * SYNTH_NAME_MAX]; an over-long final name is caught in add(). */
static void pname(char *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, 2 * SYNTH_NAME_MAX, fmt, ap);
    va_end(ap);
}

/* nn.Linear(in, out) */
static void emit_linear(spec_builder *b, const char *prefix, int in, int out) {
    ADD2(b, out, in, "%s.weight", prefix);
    ADD1(b, out, "%s.bias", prefix);
}

/* nn.LayerNorm / LayerNorm2d(dim) */
static void emit_norm(spec_builder *b, const char *prefix, int dim) {
    ADD1(b, dim, "%s.weight", prefix);
    ADD1(b, dim, "%s.bias", prefix);
}

/* nn.Conv2d(in, out, k) (groups divides in) */
static void emit_conv(spec_builder *b, const char *prefix, int in, int out, int k, int groups) {
    ADD4(b, out, in / groups, k, k, "%s.weight", prefix);
    ADD1(b, out, "%s.bias", prefix);
}

/* sam2.modeling.sam2_utils.MLP: num_layers Linear layers in -> hidden ... -> out */
static void emit_mlp(spec_builder *b, const char *prefix, int in, int hidden, int out, int layers) {
    char p[2 * SYNTH_NAME_MAX];
    for (int i = 0; i < layers; i++) {
        pname(p, "%s.layers.%d", prefix, i);
        emit_linear(b, p, i == 0 ? in : hidden, i == layers - 1 ? out : hidden);
    }
}

/* sam.transformer.Attention / RoPEAttention: q from embedding_dim, k/v from kv_in_dim,
 * all projected to internal_dim = embedding_dim / downsample_rate. */
static void emit_attention(spec_builder *b, const char *prefix, int dim, int kv_in, int internal) {
    char p[2 * SYNTH_NAME_MAX];
    pname(p, "%s.q_proj", prefix); emit_linear(b, p, dim, internal);
    pname(p, "%s.k_proj", prefix); emit_linear(b, p, kv_in, internal);
    pname(p, "%s.v_proj", prefix); emit_linear(b, p, kv_in, internal);
    pname(p, "%s.out_proj", prefix); emit_linear(b, p, internal, dim);
}

/* backbones.hieradet.Hiera */
static void emit_trunk(spec_builder *b, const synth_config *c) {
    const char *t = "image_encoder.trunk";
    int C = c->embed_dim;
    ADD4(b, 1, C, c->bkg_h, c->bkg_w, "%s.pos_embed", t);
    ADD4(b, 1, C, c->window_spec[0], c->window_spec[0], "%s.pos_embed_window", t);
    ADD4(b, C, 3, c->patch_kernel, c->patch_kernel, "%s.patch_embed.proj.weight", t);
    ADD1(b, C, "%s.patch_embed.proj.bias", t);
    int depth = synth_trunk_depth(c);
    char p[2 * SYNTH_NAME_MAX];
    for (int i = 0; i < depth; i++) {
        /* MultiScaleBlock: norm1(dim), attn(qkv dim->3*dim_out, proj), norm2(dim_out),
         * mlp, and proj(dim->dim_out) when the block changes the width. */
        int dim_out = synth_stage_dim(c, synth_block_stage(c, i));
        int dim = i == 0 ? C : synth_stage_dim(c, synth_block_stage(c, i - 1));
        pname(p, "%s.blocks.%d.norm1", t, i); emit_norm(b, p, dim);
        pname(p, "%s.blocks.%d.attn.qkv", t, i); emit_linear(b, p, dim, 3 * dim_out);
        pname(p, "%s.blocks.%d.attn.proj", t, i); emit_linear(b, p, dim_out, dim_out);
        pname(p, "%s.blocks.%d.norm2", t, i); emit_norm(b, p, dim_out);
        pname(p, "%s.blocks.%d.mlp", t, i);
        emit_mlp(b, p, dim_out, c->mlp_ratio * dim_out, dim_out, 2);
        if (dim != dim_out) {
            pname(p, "%s.blocks.%d.proj", t, i);
            emit_linear(b, p, dim, dim_out);
        }
    }
}

/* backbones.image_encoder.FpnNeck: one 1x1 conv per backbone level. */
static void emit_neck(spec_builder *b, const synth_config *c) {
    char p[2 * SYNTH_NAME_MAX];
    for (int i = 0; i < 4; i++) {
        pname(p, "image_encoder.neck.convs.%d.conv", i);
        emit_conv(b, p, c->backbone_channel_list[i], c->d_model, 1, 1);
    }
}

/* memory_attention.MemoryAttention of MemoryAttentionLayer (self RoPE attention on d,
 * cross RoPE attention with keys/values from the mem_dim memories). */
static void emit_memory_attention(spec_builder *b, const synth_config *c) {
    int d = c->d_model;
    char p[2 * SYNTH_NAME_MAX];
    for (int l = 0; l < c->mem_attn_layers; l++) {
        pname(p, "memory_attention.layers.%d.self_attn", l);
        emit_attention(b, p, d, d, d);
        pname(p, "memory_attention.layers.%d.cross_attn_image", l);
        emit_attention(b, p, d, c->mem_dim, d);
        pname(p, "memory_attention.layers.%d.linear1", l);
        emit_linear(b, p, d, c->mem_attn_ff);
        pname(p, "memory_attention.layers.%d.linear2", l);
        emit_linear(b, p, c->mem_attn_ff, d);
        for (int k = 1; k <= 3; k++) {
            pname(p, "memory_attention.layers.%d.norm%d", l, k);
            emit_norm(b, p, d);
        }
    }
    emit_norm(b, "memory_attention.norm", d);
}

/* memory_encoder.MemoryEncoder: MaskDownSampler (conv/LayerNorm2d/GELU triples, channels
 * x stride^2 each, then a 1x1 conv to d_model), pix_feat_proj, Fuser of CXBlocks,
 * out_proj to mem_dim. */
static void emit_memory_encoder(spec_builder *b, const synth_config *c) {
    int d = c->d_model;
    char p[2 * SYNTH_NAME_MAX];
    int n_layers = 0;
    for (int s = 1; s < c->mask_ds_total_stride; s *= c->mask_ds_stride) n_layers++;
    int in = 1, idx = 0;
    for (int l = 0; l < n_layers; l++) {
        int out = in * c->mask_ds_stride * c->mask_ds_stride;
        pname(p, "memory_encoder.mask_downsampler.encoder.%d", idx);
        emit_conv(b, p, in, out, 3, 1);
        pname(p, "memory_encoder.mask_downsampler.encoder.%d", idx + 1);
        emit_norm(b, p, out);
        idx += 3; /* conv, norm, activation (no parameters) */
        in = out;
    }
    pname(p, "memory_encoder.mask_downsampler.encoder.%d", idx);
    emit_conv(b, p, in, d, 1, 1);
    emit_conv(b, "memory_encoder.pix_feat_proj", d, d, 1, 1);
    for (int l = 0; l < c->fuser_layers; l++) {
        ADD1(b, d, "memory_encoder.fuser.layers.%d.gamma", l);
        pname(p, "memory_encoder.fuser.layers.%d.dwconv", l);
        emit_conv(b, p, d, d, c->fuser_kernel, d);
        pname(p, "memory_encoder.fuser.layers.%d.norm", l);
        emit_norm(b, p, d);
        pname(p, "memory_encoder.fuser.layers.%d.pwconv1", l);
        emit_linear(b, p, d, 4 * d);
        pname(p, "memory_encoder.fuser.layers.%d.pwconv2", l);
        emit_linear(b, p, 4 * d, d);
    }
    /* out_proj is an Identity when out_dim == in_dim; it is a conv in every config. */
    if (c->mem_dim != d) emit_conv(b, "memory_encoder.out_proj", d, c->mem_dim, 1, 1);
}

/* sam.prompt_encoder.PromptEncoder */
static void emit_prompt_encoder(spec_builder *b, const synth_config *c) {
    int d = c->d_model, m = c->mask_in_chans;
    ADD2(b, 2, d / 2, "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix");
    for (int i = 0; i < 4; i++) ADD2(b, 1, d, "sam_prompt_encoder.point_embeddings.%d.weight", i);
    ADD2(b, 1, d, "sam_prompt_encoder.not_a_point_embed.weight");
    emit_conv(b, "sam_prompt_encoder.mask_downscaling.0", 1, m / 4, 2, 1);
    emit_norm(b, "sam_prompt_encoder.mask_downscaling.1", m / 4);
    emit_conv(b, "sam_prompt_encoder.mask_downscaling.3", m / 4, m, 2, 1);
    emit_norm(b, "sam_prompt_encoder.mask_downscaling.4", m);
    emit_conv(b, "sam_prompt_encoder.mask_downscaling.6", m, d, 1, 1);
    ADD2(b, 1, d, "sam_prompt_encoder.no_mask_embed.weight");
}

/* sam.mask_decoder.MaskDecoder with its TwoWayTransformer. */
static void emit_mask_decoder(spec_builder *b, const synth_config *c) {
    int d = c->d_model, di = d / c->dec_attn_downsample;
    int n_masks = c->num_multimask_outputs + 1;
    char p[2 * SYNTH_NAME_MAX];
    const char *t = "sam_mask_decoder.transformer";
    for (int l = 0; l < c->dec_depth; l++) {
        /* TwoWayAttentionBlock registration order */
        pname(p, "%s.layers.%d.self_attn", t, l); emit_attention(b, p, d, d, d);
        pname(p, "%s.layers.%d.norm1", t, l); emit_norm(b, p, d);
        pname(p, "%s.layers.%d.cross_attn_token_to_image", t, l);
        emit_attention(b, p, d, d, di);
        pname(p, "%s.layers.%d.norm2", t, l); emit_norm(b, p, d);
        pname(p, "%s.layers.%d.mlp", t, l); emit_mlp(b, p, d, c->dec_mlp_dim, d, 2);
        pname(p, "%s.layers.%d.norm3", t, l); emit_norm(b, p, d);
        pname(p, "%s.layers.%d.norm4", t, l); emit_norm(b, p, d);
        pname(p, "%s.layers.%d.cross_attn_image_to_token", t, l);
        emit_attention(b, p, d, d, di);
    }
    pname(p, "%s.final_attn_token_to_image", t); emit_attention(b, p, d, d, di);
    pname(p, "%s.norm_final_attn", t); emit_norm(b, p, d);

    ADD2(b, 1, d, "sam_mask_decoder.iou_token.weight");
    ADD2(b, n_masks, d, "sam_mask_decoder.mask_tokens.weight");
    ADD2(b, 1, d, "sam_mask_decoder.obj_score_token.weight");
    /* ConvTranspose2d weights are [in, out, k, k]. */
    ADD4(b, d, d / 4, 2, 2, "sam_mask_decoder.output_upscaling.0.weight");
    ADD1(b, d / 4, "sam_mask_decoder.output_upscaling.0.bias");
    emit_norm(b, "sam_mask_decoder.output_upscaling.1", d / 4);
    ADD4(b, d / 4, d / 8, 2, 2, "sam_mask_decoder.output_upscaling.3.weight");
    ADD1(b, d / 8, "sam_mask_decoder.output_upscaling.3.bias");
    emit_conv(b, "sam_mask_decoder.conv_s0", d, d / 8, 1, 1);
    emit_conv(b, "sam_mask_decoder.conv_s1", d, d / 4, 1, 1);
    for (int i = 0; i < n_masks; i++) {
        pname(p, "sam_mask_decoder.output_hypernetworks_mlps.%d", i);
        emit_mlp(b, p, d, d, d / 8, 3);
    }
    emit_mlp(b, "sam_mask_decoder.iou_prediction_head", d, c->iou_head_hidden, n_masks,
             c->iou_head_depth);
    emit_mlp(b, "sam_mask_decoder.pred_obj_score_head", d, d, 1, 3);
}

int synth_spec(const synth_config *c, synth_entry **out, int *n, char *err) {
    *out = NULL; *n = 0;
    if (!c) { snprintf(err, SAMC_ERRMSG, "synth_spec: no config"); return -1; }
    spec_builder b = {.err = err};
    int d = c->d_model, mem = c->mem_dim;
    /* SAM2Base: a module's own parameters precede its children's in state_dict(). */
    ADD4(&b, c->num_maskmem, 1, 1, mem, "maskmem_tpos_enc");
    ADD3(&b, 1, 1, d, "no_mem_embed");
    ADD3(&b, 1, 1, d, "no_mem_pos_enc");
    ADD2(&b, 1, d, "no_obj_ptr");
    ADD2(&b, 1, mem, "no_obj_embed_spatial");
    emit_trunk(&b, c);
    emit_neck(&b, c);
    emit_conv(&b, "mask_downsample", 1, 1, 4, 1);
    emit_memory_attention(&b, c);
    emit_memory_encoder(&b, c);
    emit_prompt_encoder(&b, c);
    emit_mask_decoder(&b, c);
    emit_mlp(&b, "obj_ptr_proj", d, d, d, 3);
    emit_linear(&b, "obj_ptr_tpos_proj", d, mem);
    if (b.failed) { free(b.e); return -1; }
    *out = b.e; *n = b.n;
    return 0;
}

void synth_spec_free(synth_entry *e) { free(e); }

int synth_is_image_path(const char *name) {
    return strncmp(name, "image_encoder.", 14) == 0 || strncmp(name, "sam_prompt_encoder.", 19) == 0 ||
           strncmp(name, "sam_mask_decoder.", 17) == 0 || strcmp(name, "no_mem_embed") == 0;
}

/* ------------------------------------------------------------------------------------
 * samc-synth-v1 (shared/golden/README.md section 1). */

uint64_t synth_fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) { h ^= (uint8_t)*s; h *= 0x100000001b3ULL; }
    return h;
}

/* splitmix64 finaliser of h + (i+1)*golden, top 24 bits mapped exactly to [-1, 1). */
static double synth_u(uint64_t h, uint64_t i) {
    uint64_t z = h + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

void synth_fill(const char *name, int ndim, const int64_t *shape, float *out) {
    uint64_t h = synth_fnv1a64(name);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    if (ndim >= 2) {
        /* fan-in scaling; the formula divides by the square root (not a reciprocal
         * multiply) so the rounding matches the generator bit for bit. */
        double fan = sqrt((double)(numel / shape[0]));
        for (int64_t i = 0; i < numel; i++) out[i] = (float)(synth_u(h, (uint64_t)i) / fan);
    } else if (ndim == 1 && ends_with(name, ".weight")) {
        for (int64_t i = 0; i < numel; i++) out[i] = (float)(1.0 + 0.1 * synth_u(h, (uint64_t)i));
    } else {
        for (int64_t i = 0; i < numel; i++) out[i] = (float)(0.02 * synth_u(h, (uint64_t)i));
    }
}

/* ------------------------------------------------------------------------------------
 * Synthetic checkpoint writer. */

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const synth_entry *)a)->name, ((const synth_entry *)b)->name);
}

int synth_write(const char *config_name, const char *path, char *err) {
    const synth_config *c = synth_config_get(config_name);
    if (!c) {
        snprintf(err, SAMC_ERRMSG, "synth_write: unknown config '%.100s' (micro, tiny, small, base_plus, large)",
                 config_name ? config_name : "(null)");
        return -1;
    }
    synth_entry *e;
    int n;
    if (synth_spec(c, &e, &n, err)) return -1;
    /* The Python safetensors writer orders same-dtype tensors by name. */
    qsort(e, (size_t)n, sizeof *e, cmp_entry_name);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += e[i].numel;
    float *buf = malloc((size_t)total * sizeof *buf + 1);
    st_tensor *t = calloc(n > 0 ? (size_t)n : 1u, sizeof *t);
    if (!buf || !t) {
        snprintf(err, SAMC_ERRMSG, "synth_write: %s: out of memory for %lld values", path, (long long)total);
        free(buf); free(t); synth_spec_free(e);
        return -1;
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        synth_fill(e[i].name, e[i].ndim, e[i].shape, buf + off);
        t[i].name = e[i].name;
        t[i].dtype = ST_F32;
        t[i].ndim = e[i].ndim;
        memcpy(t[i].shape, e[i].shape, sizeof t[i].shape);
        t[i].numel = e[i].numel;
        t[i].data = buf + off;
        t[i].nbytes = (size_t)e[i].numel * sizeof(float);
        off += e[i].numel;
    }
    char size_str[16];
    snprintf(size_str, sizeof size_str, "%d", c->image_size);
    const st_meta meta[] = {
        {"format", "pt"}, {"formula", "samc-synth-v1"}, {"config", (char *)c->name}, {"image_size", size_str},
    };
    int rc = st_write(path, t, n, meta, 4, err);
    free(buf); free(t); synth_spec_free(e);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * Config detection. */

typedef struct {
    int matched, missing, unexpected, mismatched, duplicated;
    int n_required, matched_required;
    char first_missing[SYNTH_NAME_MAX];
    const char *first_unexpected, *first_mismatch, *first_duplicate;
    int mismatch_spec;          /* spec index of first_mismatch */
    int mismatch_input;         /* input index of first_mismatch */
} match_report;

static void fmt_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
}

/* Compares the input tensors with config c's spec. Returns -1 only on allocation
 * failure. */
static int match_config(const synth_config *c, const char *const *names, const int64_t *const *shapes,
                        const int *ndims, int n, synth_match_mode mode, match_report *r,
                        synth_entry **spec_out, char *err) {
    memset(r, 0, sizeof *r);
    synth_entry *e;
    int ne;
    if (synth_spec(c, &e, &ne, err)) return -1;
    size_t cap = 1;
    while (cap < (size_t)ne * 2) cap <<= 1;
    int *table = malloc(cap * sizeof *table);
    int *seen = calloc((size_t)ne + 1, sizeof *seen);
    if (!table || !seen) {
        free(table); free(seen); synth_spec_free(e);
        snprintf(err, SAMC_ERRMSG, "synth_detect_config: out of memory");
        return -1;
    }
    for (size_t i = 0; i < cap; i++) table[i] = -1;
    for (int i = 0; i < ne; i++) {
        size_t h = (size_t)synth_fnv1a64(e[i].name) & (cap - 1);
        while (table[h] >= 0) h = (h + 1) & (cap - 1);
        table[h] = i;
    }
    for (int i = 0; i < n; i++) {
        size_t h = (size_t)synth_fnv1a64(names[i]) & (cap - 1);
        int k = -1;
        while (table[h] >= 0) {
            if (strcmp(e[table[h]].name, names[i]) == 0) { k = table[h]; break; }
            h = (h + 1) & (cap - 1);
        }
        if (k < 0) {
            if (!r->unexpected++) r->first_unexpected = names[i];
            continue;
        }
        if (seen[k]++) {
            if (!r->duplicated++) r->first_duplicate = names[i];
            continue;
        }
        int same = ndims[i] == e[k].ndim;
        for (int d = 0; same && d < e[k].ndim; d++) same = shapes[i][d] == e[k].shape[d];
        if (same) {
            r->matched++;
            r->matched_required += mode == SYNTH_MATCH_FULL || synth_is_image_path(e[k].name);
        }
        else if (!r->mismatched++) { r->first_mismatch = names[i]; r->mismatch_spec = k; r->mismatch_input = i; }
    }
    for (int k = 0; k < ne; k++) {
        int required = mode == SYNTH_MATCH_FULL || synth_is_image_path(e[k].name);
        r->n_required += required;
        if (required && !seen[k] && !r->missing++) snprintf(r->first_missing, sizeof r->first_missing, "%s", e[k].name);
    }
    free(table); free(seen);
    *spec_out = e;
    return 0;
}

int synth_detect_config(const char *const *names, const int64_t *const *shapes, const int *ndims,
                        int n, synth_match_mode mode, const synth_config **out, char *err) {
    *out = NULL;
    if (n <= 0) {
        snprintf(err, SAMC_ERRMSG, "no tensors to match against the SAM2.1 configs");
        return -1;
    }
    int best = -1;
    match_report best_r = {0};
    synth_entry *best_spec = NULL;
    for (int ci = 0; ci < N_CONFIGS; ci++) {
        match_report r;
        synth_entry *spec;
        if (match_config(&configs[ci], names, shapes, ndims, n, mode, &r, &spec, err)) {
            synth_spec_free(best_spec);
            return -1;
        }
        if (!r.missing && !r.unexpected && !r.mismatched && !r.duplicated) {
            synth_spec_free(spec);
            synth_spec_free(best_spec);
            *out = &configs[ci];
            return 0;
        }
        if (best < 0 || r.matched > best_r.matched) {
            synth_spec_free(best_spec);
            best = ci; best_r = r; best_spec = spec;
        } else {
            synth_spec_free(spec);
        }
    }
    /* Report against the closest config: the first problem of each kind. */
    const match_report *r = &best_r;
    char detail[320] = "";
    size_t k = 0;
    if (r->mismatched && k < sizeof detail) {
        char got[96], want[96];
        int i = r->mismatch_input;
        const synth_entry *s = &best_spec[r->mismatch_spec];
        fmt_shape(got, sizeof got, ndims[i] < SAMC_MAX_DIMS ? ndims[i] : SAMC_MAX_DIMS, shapes[i]);
        fmt_shape(want, sizeof want, s->ndim, s->shape);
        k += (size_t)snprintf(detail + k, sizeof detail - k, "; tensor '%.100s' has shape %s, expected %s",
                              r->first_mismatch, got, want);
    }
    if (r->missing && k < sizeof detail)
        k += (size_t)snprintf(detail + k, sizeof detail - k, "; missing key '%.100s'", r->first_missing);
    if (r->unexpected && k < sizeof detail)
        k += (size_t)snprintf(detail + k, sizeof detail - k, "; unexpected key '%.100s'", r->first_unexpected);
    if (r->duplicated && k < sizeof detail)
        k += (size_t)snprintf(detail + k, sizeof detail - k, "; duplicate key '%.100s'", r->first_duplicate);
    /* A SAM 1 checkpoint has a plain ViT encoder (image_encoder.blocks.*, no trunk). */
    int sam1 = 0;
    for (int i = 0; i < n && !sam1; i++) sam1 = strncmp(names[i], "image_encoder.blocks.", 21) == 0;
    snprintf(err, SAMC_ERRMSG,
             "%d tensors match no SAM2.1 config%s%s; closest is '%s' (%d of %d %s tensors match: %d missing, "
             "%d unexpected, %d wrong shape)",
             n, mode == SYNTH_MATCH_IMAGE_ONLY ? " (image-only)" : "",
             sam1 ? " (image_encoder.blocks.* suggests a SAM 1 checkpoint, which is not supported)" : "",
             configs[best].name, r->matched_required, r->n_required,
             mode == SYNTH_MATCH_IMAGE_ONLY ? "image-path" : "expected", r->missing, r->unexpected, r->mismatched);
    /* the details go last so that a long key truncates only them */
    size_t used = strlen(err);
    snprintf(err + used, SAMC_ERRMSG - used, "%s", detail);
    synth_spec_free(best_spec);
    return -1;
}
