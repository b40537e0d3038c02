/* model/config/sam3_config.h: the SAM3 image-model configs and the state-dict
 * specification of their checkpoints.
 *
 * sam3_config holds the hyper-parameters of the official SAM3 image model
 * (sam3/model_builder.py, build_sam3_image_model with enable_segmentation=True and no
 * instance interactivity) or of the test-only "sam3_micro" (shared/golden/sam3/README.md
 * section 2: the same classes and flags, every width cut down). The model code reads it
 * as its architecture description; sam3_config_spec() derives from it every entry of
 * Sam3Image.state_dict() in the order PyTorch yields it, which is also the checkpoint's
 * "detector." dict without that prefix.
 *
 * Two kinds of entries: stored parameters (float32), and the ViT's RoPE tables
 * (backbone.vision_backbone.trunk.blocks.<i>.attn.freqs_cis, complex64 buffers) that the
 * official constructor computes from a formula. Those are in state_dict() but weight files
 * need not carry them (micro.safetensors does not): the model computes them at load.
 * sam3_config_is_stored() tells the two apart. Leaf module: uses only model/config/spec.h.
 */
#ifndef SAMC_SAM3_CONFIG_H
#define SAMC_SAM3_CONFIG_H
#include "model/config/spec.h"

#define SAM3_CONFIG_MAX_GLOBAL 8

typedef struct {
    const char *name;            /* "sam3", "sam3_micro" */
    int image_size;              /* S: the processor resizes every image to S x S (1008) */
    int patch_size;              /* ViT patch (14): the token grid is S / patch_size */

    /* ViT trunk (vitdet.ViT) */
    int vit_dim;                 /* embed_dim (1024) */
    int vit_depth;               /* blocks (32) */
    int vit_heads;               /* heads (16): head dim vit_dim / vit_heads */
    int vit_mlp_hidden;          /* int(embed_dim * mlp_ratio 4.625) (4736) */
    int window;                  /* window_size of the windowed blocks (24) */
    int n_global;                /* global_att_blocks */
    int global_blocks[SAM3_CONFIG_MAX_GLOBAL];
    int pretrain_size;           /* pretrain_img_size (336): pos_embed holds its grid + cls */

    /* the model width: neck, geometry encoder, fusion encoder, decoder, heads (256) */
    int d_model;

    /* text encoder (text_encoder_ve.VETextEncoder / TextTransformer) */
    int text_width, text_layers, text_heads;  /* 1024, 24, 16; MLP 4 x width */
    int text_ctx;                /* context length (32) */
    int vocab;                   /* 49408 */
    int text_proj_dim;           /* text_projection output (512; in the checkpoint, unused) */

    /* fusion encoder (encoder.TransformerEncoderFusion), decoder (decoder.TransformerDecoder) */
    int enc_layers, enc_heads, enc_ffn;        /* 6, 8, 2048 */
    int dec_layers, dec_heads, dec_ffn;        /* 6, 8, 2048 */
    int num_queries;                           /* 200 */

    /* geometry encoder (geometry_encoders.SequenceGeometryEncoder) */
    int geo_layers, geo_heads, geo_ffn;        /* 3, 8, 2048 */
    int roi_size;                              /* boxes_pool_project kernel (7) */

    int scoring_hidden;          /* DotProductScoring prompt_mlp hidden (2048) */
    int pd_stages;               /* PixelDecoder num_upsampling_stages (3; 2 are used) */
} sam3_config;

/* The named config or NULL ("sam3", "sam3_micro"). */
const sam3_config *sam3_config_get(const char *name);
int sam3_config_count(void);
const sam3_config *sam3_config_at(int i);

/* Derived facts. */
int sam3_config_grid(const sam3_config *c);                  /* S / patch: tokens per side (72) */
int sam3_config_block_is_global(const sam3_config *c, int b);
/* Tokens of block b's RoPE table: window^2, or grid^2 for a global block. */
int sam3_config_rope_tokens(const sam3_config *c, int b);

/* Every entry of Sam3Image.state_dict() for config c, in order, the RoPE buffers
 * included (shape [tokens, head_dim / 2], complex). *out is malloc'd; free with spec_free. */
int sam3_config_spec(const sam3_config *c, spec_entry **out, int *n, char *err);

/* 1 for an entry a weight file holds; 0 for the RoPE tables computed at load. */
int sam3_config_is_stored(const char *name);

/* 1 when the names look like a SAM3 image model (its ViT trunk or text encoder keys), so
 * that the loader reports a SAM3 mismatch rather than a SAM2.1 one. */
int sam3_config_looks_like(const char *const *names, int n);

/* Finds the config whose stored entries the given tensors match exactly (names and
 * shapes; any order; the computed RoPE tables may be present with their shape or
 * absent). On no match, err names the closest config, how many tensors matched, and the
 * first missing key, unexpected key or shape mismatch. */
int sam3_config_detect(const char *const *names, const int64_t *const *shapes, const int *ndims, int n,
                       const sam3_config **out, char *err);

#endif
