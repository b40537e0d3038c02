/* model/config/sam2_config.h: the SAM2.1 configs and the state-dict specification of
 * the official checkpoints.
 *
 * sam2_config holds the hyper-parameters of one official SAM2.1 size (the YAML files
 * sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml) or of the test-only "micro" size
 * (shared/golden/README.md section 2). The model code reads it as its architecture
 * description; sam2_config_spec() derives from it the full list of tensors of the
 * checkpoint's ckpt["model"] dict, in the order SAM2Base.state_dict() yields them,
 * memory-side (video) tensors included. Leaf module: uses only model/config/spec.h.
 */
#ifndef SAMC_SAM2_CONFIG_H
#define SAMC_SAM2_CONFIG_H
#include "model/config/spec.h"

#define SAM2_CONFIG_MAX_GLOBAL 8

typedef struct {
    const char *name;            /* "micro", "tiny", "small", "base_plus", "large" */
    int image_size;              /* SAM2Base.image_size: input side S (1024; 256 for micro) */

    /* Hiera trunk (sam2.modeling.backbones.hieradet.Hiera). */
    int embed_dim;               /* channels of stage 0; multiplied by dim_mul at each stage change */
    int num_heads;               /* heads of stage 0; multiplied by head_mul at each stage change */
    int dim_mul, head_mul;       /* 2 and 2 in every config */
    int stages[4];               /* blocks per stage; block i is global if listed below */
    int n_global;                /* number of entries in global_att_blocks */
    int global_att_blocks[SAM2_CONFIG_MAX_GLOBAL]; /* absolute block indices with global attention */
    int window_spec[4];          /* window size of the blocks of each stage */
    int bkg_h, bkg_w;            /* window_pos_embed_bkg_spatial_size: pos_embed is [1,C,bkg_h,bkg_w] */
    int q_pool;                  /* number of stage changes that max-pool q (3) */
    int q_stride;                /* pooling stride at those changes (2) */
    int mlp_ratio;               /* block MLP hidden = mlp_ratio * dim_out (4) */
    int patch_kernel, patch_stride, patch_padding; /* PatchEmbed conv: 7, 4, 3 */

    /* FPN neck (image_encoder.FpnNeck) and ImageEncoder. */
    int d_model;                 /* neck output channels = transformer dim of prompt encoder,
                                    mask decoder and memory attention (256; 32 for micro) */
    int backbone_channel_list[4];/* neck convs.i input channels: trunk stage dims, deepest first */
    int fpn_top_down_levels[2];  /* levels that receive the top-down path ({2, 3}) */
    int scalp;                   /* lowest-resolution levels dropped by ImageEncoder (1) */

    /* Prompt encoder and mask decoder (constants of SAM2Base._build_sam_heads). */
    int mask_in_chans;           /* PromptEncoder mask_in_chans (16, not scaled for micro) */
    int dec_depth;               /* TwoWayTransformer depth (2) */
    int dec_heads;               /* TwoWayTransformer heads (8) */
    int dec_mlp_dim;             /* TwoWayTransformer MLP hidden (2048, not scaled for micro) */
    int dec_attn_downsample;     /* cross-attention downsample rate (2) */
    int num_multimask_outputs;   /* 3: mask tokens = num_multimask_outputs + 1 */
    int iou_head_hidden;         /* IoU prediction head hidden (256, not scaled for micro) */
    int iou_head_depth;          /* IoU head layers (3) */

    /* Memory side (video only; its tensors are in every checkpoint). */
    int mem_dim;                 /* memory_encoder.out_dim (64; 16 for micro) */
    int num_maskmem;             /* 7 */
    int mem_attn_layers;         /* memory_attention.num_layers (4) */
    int mem_attn_ff;             /* memory attention layer dim_feedforward (2048; 64 for micro) */
    int mask_ds_stride, mask_ds_total_stride; /* MaskDownSampler: 2 and 16 */
    int fuser_layers;            /* memory_encoder.fuser num_layers (2) */
    int fuser_kernel;            /* CXBlock depthwise kernel (7) */
} sam2_config;

/* The named config or NULL. Names: micro, tiny, small, base_plus, large. */
const sam2_config *sam2_config_get(const char *name);
/* All configs, for iteration: i in [0, sam2_config_count()). */
int sam2_config_count(void);
const sam2_config *sam2_config_at(int i);

/* Derived trunk facts. Block index b in [0, sum(stages)). */
int sam2_config_trunk_depth(const sam2_config *c);
int sam2_config_stage_dim(const sam2_config *c, int stage);   /* embed_dim * dim_mul^stage */
int sam2_config_stage_heads(const sam2_config *c, int stage); /* num_heads * head_mul^stage */
int sam2_config_block_stage(const sam2_config *c, int b);     /* stage of block b's output */
int sam2_config_block_is_global(const sam2_config *c, int b);

/* Every tensor of the official checkpoint's "model" dict for config c, in state-dict
 * order. *out is malloc'd; free with spec_free. */
int sam2_config_spec(const sam2_config *c, spec_entry **out, int *n, char *err);

/* 1 if the tensor is used by the image path (image_encoder.*, sam_prompt_encoder.*,
 * sam_mask_decoder.*, no_mem_embed); everything else is memory-side (video only). */
int sam2_config_is_image_path(const char *name);

typedef enum {
    SAM2_MATCH_FULL = 0,       /* every tensor of the spec must be present */
    SAM2_MATCH_IMAGE_ONLY = 1, /* image-path tensors required; memory-side ones optional
                                  (files converted with --image-only drop them) */
} sam2_match_mode;

/* Finds the config whose spec matches the given tensors exactly (names and shapes; any
 * order). shapes[i] points to ndims[i] dims. On no match, err names the closest config,
 * how many tensors matched, and the first missing key, unexpected key or shape mismatch
 * (got vs expected). */
int sam2_config_detect(const char *const *names, const int64_t *const *shapes, const int *ndims, int n,
                       sam2_match_mode mode, const sam2_config **out, char *err);

#endif
