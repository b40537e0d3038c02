/* model/sam2/sam2.h: the SAM2.1 image model (internal header).
 *
 * One struct per official module, holding pointers to its weights, bound by state-dict
 * key at load; one forward function per module, named after it. Each file binds and runs
 * the modules of one official file:
 *   hiera.c           sam2/modeling/backbones/hieradet.py     PatchEmbed, MultiScaleAttention,
 *                                                              MultiScaleBlock, Hiera
 *   fpn_neck.c        sam2/modeling/backbones/image_encoder.py FpnNeck, ImageEncoder;
 *                     sam2/modeling/position_encoding.py       PositionEmbeddingSine
 *   prompt_encoder.c  sam2/modeling/sam/prompt_encoder.py      PromptEncoder (+ PositionEmbeddingRandom)
 *   transformer.c     sam2/modeling/sam/transformer.py         Attention, TwoWayAttentionBlock,
 *                                                              TwoWayTransformer
 *   mask_decoder.c    sam2/modeling/sam/mask_decoder.py        MaskDecoder
 *   image_encoder.c   sam2/modeling/sam2_base.py               SAM2Base.forward_image (+ no_mem_embed)
 *   transforms.c      sam2/utils/transforms.py                 SAM2Transforms
 *   predictor.c       sam2/sam2_image_predictor.py             SAM2ImagePredictor
 *   load.c            sam2/build_sam.py                        build_sam2: bind, constants, plan
 * All compute goes through the op table (kernels/ops.h) so the same code runs on every
 * backend; tensors are in PyTorch layouts (NCHW maps, [tokens, C] sequences).
 */
#ifndef SAMC_SAM2_H
#define SAMC_SAM2_H
#include "kernels/ops.h"
#include "model/config/sam2_config.h"
#include "model/runtime/runtime.h"
#include "model/samc.h"

#define SAM2_MAX_BLOCKS 64
#define SAM2_NUM_MASK_TOKENS 4
#define SAM2_MAX_TOKENS 64          /* decoder prompt tokens per item: 6 output + points */
#define SAM2_MAX_BATCH_CHUNK 256    /* prompts per decoder call (samc_options.max_batch) */
#define SAM2_POST_ITEMS 64          /* prompts per mask post-processing call (records.c) */

/* ---- weights, one struct per official module ---------------------------------------- */

/* hieradet.MultiScaleBlock (image_encoder.trunk.blocks.<i>) */
typedef struct {
    int dim, dim_out, heads, window;  /* window 0 = global attention */
    int q_pool;                        /* 1: max-pool q 2x2 inside windows (first block of stages 2-4) */
    int stage;                         /* stage of the block's output */
    rt_norm norm1, norm2;
    rt_linear qkv, attn_proj;          /* attn.qkv, attn.proj (MultiScaleAttention) */
    rt_linear proj;                    /* only when dim != dim_out */
    rt_linear mlp0, mlp1;              /* mlp.layers.0, mlp.layers.1 */
} sam2_multiscale_block_weights;

/* hieradet.Hiera (image_encoder.trunk) */
typedef struct {
    int n_blocks, stage_end[4];
    rt_linear patch_embed;             /* patch_embed.proj: [C0, 3, 7, 7] */
    const float *pos_embed;            /* [1, C0, bkg_h, bkg_w] */
    const float *pos_embed_window;     /* [1, C0, w0, w0] */
    sam2_multiscale_block_weights blocks[SAM2_MAX_BLOCKS];
} sam2_hiera_weights;

/* image_encoder.FpnNeck (image_encoder.neck): convs[i] takes backbone_channel_list[i]. */
typedef struct {
    rt_linear convs[4];
} sam2_fpn_neck_weights;

/* sam.PromptEncoder (sam_prompt_encoder) */
typedef struct {
    const float *pe_gaussian;          /* pe_layer.positional_encoding_gaussian_matrix [2, C/2] */
    const float *point_embed[4];       /* point_embeddings.<i> [C]: labels 0, 1, 2 (box top-left), 3 */
    const float *not_a_point_embed;    /* [C] */
    const float *no_mask_embed;        /* [C] */
    rt_linear mask_ds_conv[3];         /* mask_downscaling.0, .3, .6 */
    rt_norm mask_ds_norm[2];           /* mask_downscaling.1, .4 */
} sam2_prompt_encoder_weights;

/* sam.transformer.Attention */
typedef struct {
    rt_linear q_proj, k_proj, v_proj, out_proj;
    int internal_dim, heads;
} sam2_attention_weights;

/* sam.transformer.TwoWayAttentionBlock (sam_mask_decoder.transformer.layers.<i>) */
typedef struct {
    sam2_attention_weights self_attn, cross_attn_token_to_image, cross_attn_image_to_token;
    rt_norm norm1, norm2, norm3, norm4;
    rt_linear mlp0, mlp1;              /* mlp.layers.0, mlp.layers.1 */
} sam2_two_way_attention_block_weights;

/* sam.transformer.TwoWayTransformer (sam_mask_decoder.transformer) */
typedef struct {
    int depth;
    sam2_two_way_attention_block_weights layers[2];
    sam2_attention_weights final_attn_token_to_image;
    rt_norm norm_final_attn;
} sam2_two_way_transformer_weights;

/* sam.mask_decoder.MaskDecoder (sam_mask_decoder; SAM2.1: object-score head, high-res features) */
typedef struct {
    sam2_two_way_transformer_weights transformer;
    const float *iou_token, *mask_tokens, *obj_score_token;  /* [1,C], [4,C], [1,C] */
    rt_linear upscale_conv1, upscale_conv2;                  /* output_upscaling.0 / .3: ConvTranspose2d [Cin, Cout, 2, 2] */
    rt_norm upscale_norm;                                    /* output_upscaling.1 */
    rt_linear conv_s0, conv_s1;                              /* 1x1: C -> C/8, C -> C/4 */
    rt_mlp output_hypernetworks_mlps[SAM2_NUM_MASK_TOKENS], iou_prediction_head, pred_obj_score_head;
} sam2_mask_decoder_weights;

/* ---- the model and an encoded image --------------------------------------------------- */

typedef struct sam2_model {
    samc_runtime rt;
    rt_weights weights;
    const sam2_config *cfg;
    int S;                            /* image size */
    int C;                            /* d_model */
    int max_batch;                    /* prompts per decoder call */
    int max_encode_batch;             /* images per encoder call */

    /* Weights bound by key, in the backend's memory; pe_host keeps the prompt-encoder
     * weights that the host-side point encoding reads. */
    sam2_hiera_weights trunk;
    sam2_fpn_neck_weights neck;
    sam2_prompt_encoder_weights pe, pe_host;
    sam2_mask_decoder_weights dec;
    const float *no_mem_embed;        /* [C] added to the image embedding */

    /* Constants computed at load, in backend memory. */
    float *pos_embed_hwc;             /* Hiera positional embedding [S/4 * S/4, C0] */
    float *dense_pe;                  /* prompt-encoder dense PE [C, S/16, S/16] */
    float *dense_pe_hwc;              /* the same as decoder key PE [S/16 * S/16, C] */
    float *dense_pe_host;             /* host copy for debug dumps */

    /* Host buffers, sized at load. */
    struct sam2_resize_plan *resize;  /* preprocessing (transforms.c) */
    float *h_input;                   /* [3, S, S] preprocessed image */
    float *h_sparse, *h_coords;       /* [max_batch, SAM2_MAX_TOKENS, C], [.., 2] */
    int *h_labels;                    /* [max_batch, SAM2_MAX_TOKENS] */
    float *h_masks, *h_iou, *h_obj;   /* decoder outputs [max_batch, 4, S/4, S/4], [.., 4], [..] */
    float *h_sel;                     /* selected low-res logits [max_batch, 3, S/4, S/4] */
    float *dev_logits;                /* device backends: full-size logits of one prompt item */
    size_t dev_logits_cap;

    /* The device pipeline (device backends; planned at load, predictor.c, records.c). */
    uint8_t *h_stage, *d_stage;       /* the images of an encode batch, uint8, with their resize
                                         taps: pinned staging and its device copy */
    size_t stage_cap;                 /* bytes of each */
    float *h_maskin;                  /* pinned [max_batch, S/4, S/4] mask inputs */
    struct sam2_image *cur;           /* the features the decoder's graphs read: a copy of
                                         the image last predicted on (cur_src, cur_serial) */
    const struct sam2_image *cur_src;
    uint64_t cur_serial;
    samc_mask_stat *h_stat;           /* pinned [SAM2_POST_ITEMS * 3] mask statistics */
    uint32_t *h_runs, *d_runs;        /* pinned / device toggles of the kept masks */
    size_t runs_cap;                  /* toggles each holds */
    size_t mem_after_load, mem_after_encode, mem_after_predict;  /* device memory in use (rt_mem_info) */

    samc_timings timings;
} sam2_model;

typedef struct sam2_image {
    int w, h;                         /* original size; 0 until encoded */
    uint64_t serial;                  /* which encode (process-wide, from 1) */
    int S, C;
    const samc_ops *ops;              /* whose memory the features are in */
    float *image_embed;               /* [C, S/16, S/16] = neck level 2 + no_mem_embed */
    float *feat_s0;                   /* [C/8, S/4, S/4] = conv_s0(neck level 0) */
    float *feat_s1;                   /* [C/4, S/8, S/8] = conv_s1(neck level 1) */
} sam2_image;

/* ---- binding (each module's file binds its own weights) -------------------------------- */

void sam2_hiera_bind(rt_binder *b, const sam2_config *c, sam2_hiera_weights *trunk);
void sam2_fpn_neck_bind(rt_binder *b, const sam2_config *c, sam2_fpn_neck_weights *neck);
void sam2_prompt_encoder_bind(rt_binder *b, const sam2_config *c, sam2_prompt_encoder_weights *pe);
void sam2_two_way_transformer_bind(rt_binder *b, const sam2_config *c, sam2_two_way_transformer_weights *t);
void sam2_mask_decoder_bind(rt_binder *b, const sam2_config *c, sam2_mask_decoder_weights *d);

/* ---- forward, one function per module ------------------------------------------------ */

/* Hiera._get_pos_embed: bicubic(pos_embed) + tiled pos_embed_window, NHWC [H*W, C0], on
 * the host from host weights (a load-time constant). Returns 0 or -1 (out of memory). */
int sam2_hiera_pos_embed(const sam2_model *m, float *out);
/* Hiera.forward on B images: input [B, 3, S, S] -> the NCHW stage outputs
 * stage[s] [B, C_s, sh[s], sw[s]] (sizes returned). */
int sam2_hiera(sam2_model *m, const float *input, int B, float *const stage[4], int sh[4], int sw[4],
               samc_error *err);
/* FpnNeck.forward: stage maps [B, C_i, h_i, w_i] -> levels lvl[i] [B, d_model, h_i, w_i]. */
void sam2_fpn_neck(sam2_model *m, float *const stage[4], const int sh[4], const int sw[4], float *const lvl[4], int B);
/* SAM2Base.forward_image + set_image's no_mem_embed for B preprocessed images
 * input [B, 3, S, S] -> imgs[b]'s features. */
int sam2_image_encoder(sam2_model *m, const float *input, sam2_image *const *imgs, int B, samc_error *err);

/* PromptEncoder, in two parts: the points on the host (coords [B,N,2] in model-input
 * pixels before +0.5, labels [B,N]: -1 = padding, 0, 1, 2, 3) into m->h_sparse [B, N, C],
 * which the caller uploads; then on the backend the dense embedding
 * dense [B, C, S/16, S/16] of mask_input [B,1,S/4,S/4] or, when NULL, no_mask_embed. */
void sam2_prompt_encoder_points(sam2_model *m, const float *coords, const int *labels, int B, int N);
int sam2_prompt_encoder(sam2_model *m, int B, const float *mask_input, float *dense, samc_error *err);
/* PositionEmbeddingRandom.forward((S/16, S/16)) on the host: [C, S/16, S/16]. */
void sam2_prompt_encoder_dense_pe(const sam2_model *m, float *out);

/* Scratch of the two-way transformer, taken by the mask decoder (which reuses it). */
typedef struct {
    float *q, *k, *v, *o;             /* attention projections [B, max(T, HW), C] */
    float *qpe, *kpe, *tmp, *hidden;  /* [B, T, C], [B, HW, C], [B, HW, C], [B, T, max(mlp, C)] */
} sam2_two_way_scratch;
int sam2_two_way_scratch_alloc(sam2_model *m, int B, int T, int HW, sam2_two_way_scratch *s, samc_error *err);
/* TwoWayTransformer.forward: queries [B, T, C] (initially the tokens, which are also the
 * query PE) and keys [B, HW, C] (the image, with key PE [HW, C]) are updated in place.
 * kv_shared: the first token->image attention reads one image for all B items. */
void sam2_two_way_transformer(sam2_model *m, const sam2_two_way_transformer_weights *t, float *queries, const float *tokens,
                              int T, float *keys, const float *key_pe, int HW, int B, int kv_shared,
                              const sam2_two_way_scratch *s);

/* MaskDecoder.predict_masks for B prompt items over one image:
 * all_masks [B,4,S/4,S/4], all_iou [B,4], obj_score [B]. dense_shared: every item has the
 * same dense embedding (no mask prompts), which lets the first attention share keys. */
int sam2_mask_decoder(sam2_model *m, const sam2_image *img, const float *sparse, int n_sparse, const float *dense,
                      int dense_shared, int B, float *all_masks, float *all_iou, float *obj_score, samc_error *err);
/* MaskDecoder._dynamic_multimask_via_stability for one item: chooses among the 4 tokens.
 * Returns the chosen token index (0 if token 0 is stable, else the best of 1..3). */
int sam2_dynamic_multimask_choice(const float *all_masks /* [4, n] */, const float *all_iou /* [4] */, int n,
                                  float *stability_out);

/* ---- transforms (SAM2Transforms) ------------------------------------------------------- */

/* Plans the host buffers of the resize for any image up to the API's size limits. */
int sam2_transforms_plan(sam2_model *m, samc_error *err);
void sam2_transforms_free(sam2_model *m);
/* to_tensor, resize to S x S (antialiased bilinear), normalise: rgb -> m->h_input. */
void sam2_transforms_preprocess(sam2_model *m, const uint8_t *rgb, int w, int h);
/* The same resize as filter taps for the preprocess op (kernels/ops.h): taps per output
 * pixel for a w x h image, and their layout at ints[4 * S] / weights[2 * S * T]. */
int sam2_transforms_taps_count(const sam2_model *m, int w, int h);
void sam2_transforms_taps(const sam2_model *m, int w, int h, int T, int32_t *ints, float *weights);
/* The normalisation the taps carry. */
void sam2_transforms_norm(float mean[3], float std[3]);
/* Largest image side / pixel count the API accepts. */
#define SAM2_MAX_IMAGE_SIDE 65536
#define SAM2_MAX_IMAGE_PIXELS ((int64_t)1 << 31)

/* ---- predictor (SAM2ImagePredictor) ---------------------------------------------------- */

int sam2_image_encode_batch(sam2_model *m, sam2_image *const *imgs, const uint8_t *const *rgb, const int *w,
                            const int *h, int n, samc_error *err);
int sam2_predict(sam2_model *m, const sam2_image *img, const samc_prompt *prompts, int n_prompts,
                 const samc_predict_options *opt, samc_masks *out, samc_error *err);
/* Runs one encode of max_encode_batch images and one predict chunk of max_batch prompts
 * (under planning, this sizes the arena). */
int sam2_predictor_plan(sam2_model *m, samc_error *err);

/* The decoder part of predict, shared with records.c: prompts [b0, b0+B) into
 * m->h_coords / h_labels; then prompt encoder + mask decoder for them (a graph per
 * shape on device backends). With keep, the outputs stay in backend memory (out, arena
 * not released: the caller resets it) and nothing is synchronised; else they are
 * downloaded to m->h_masks / h_iou / h_obj. */
typedef struct {
    float *masks, *iou, *obj;        /* [B, 4, S/4, S/4], [B, 4], [B] */
} sam2_decoded;
void sam2_prep_prompts(sam2_model *m, const samc_prompt *pr, int B, int N, int w, int h);
int sam2_prompt_tokens(const samc_prompt *p);
int sam2_check_prompt(const samc_prompt *p, int idx, int w, int h, int S, samc_error *err);
int sam2_chunk_length(const sam2_model *m, const samc_prompt *prompts, int n_prompts, int b0, int max);
int sam2_decode_chunk(sam2_model *m, const sam2_image *img, int B, int N, const float *const *masks, int keep,
                      sam2_decoded *out, samc_error *err);

/* ---- automatic-mask post-processing on the backend (records.c) -------------------------- */
int sam2_predict_records(sam2_model *m, const sam2_image *img, const samc_prompt *prompts, int n_prompts,
                         const samc_mask_filter *f, samc_mask_records *out, samc_error *err);
/* Plans its scratch (under planning) and allocates its staging (at load). */
int sam2_records_plan(sam2_model *m, samc_error *err);
int sam2_records_alloc(sam2_model *m, samc_error *err);

/* ---- the model (load.c) ---------------------------------------------------------------- */

/* Takes the opened weights (w is left empty on success and on failure). */
sam2_model *sam2_model_load(rt_weights *w, const sam2_config *cfg, const samc_options *opt, samc_error *err);
void sam2_model_free(sam2_model *m);
sam2_image *sam2_image_new(sam2_model *m, samc_error *err);
void sam2_image_free(sam2_image *img);

#endif
