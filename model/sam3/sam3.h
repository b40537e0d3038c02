/* model/sam3/sam3.h: the SAM3 image model, promptable concept segmentation (internal
 * header). A noun phrase and / or exemplar boxes (and points) in, every matching
 * instance out with a score, a box and a mask.
 *
 * One struct per official module, holding pointers to its weights bound by state-dict
 * key at load; one forward function per module, named after it. Each file binds and runs
 * the modules of one official file (facebookresearch/sam3, sam3/model/):
 *   vitdet.c                  vitdet.py                 PatchEmbed, Attention (2-D RoPE), Block, ViT
 *   necks.c                   necks.py, position_encoding.py   Sam3DualViTDetNeck, PositionEmbeddingSine
 *   transforms.c              sam3_image_processor.py   the processor's image transform
 *   text_encoder_ve.c         text_encoder_ve.py        ResidualAttentionBlock, TextTransformer, VETextEncoder
 *   model_misc.c              model_misc.py (+ torch)   MLP, DotProductScoring, inverse_sigmoid,
 *                                                        nn.MultiheadAttention
 *   geometry_encoders.c       geometry_encoders.py      SequenceGeometryEncoder
 *   encoder.c                 encoder.py                TransformerEncoderLayer, TransformerEncoderFusion
 *   decoder.c                 decoder.py                TransformerDecoderLayer, TransformerDecoder
 *   maskformer_segmentation.c maskformer_segmentation.py PixelDecoder, UniversalSegmentationHead
 *   sam3_image.c              sam3_image.py             Sam3Image.forward_grounding
 *   processor.c               sam3_image_processor.py   Sam3Processor: set_image, grounding, post-processing
 *   load.c                    model_builder.py          build_sam3_image_model: bind, constants, plan
 * All compute goes through the op table (kernels/ops.h); a few small per-prompt steps
 * (token and box bookkeeping, the decoder's reference-box arithmetic) run on the host.
 * Batch is 1 everywhere (one image, one prompt), so the official (L, B, D) and (B, L, D)
 * layouts are both a row-major [L, D] here; dumps carry the official shapes.
 */
#ifndef SAMC_SAM3_H
#define SAMC_SAM3_H
#include "kernels/ops.h"
#include "model/config/sam3_config.h"
#include "model/runtime/runtime.h"
#include "model/sam3/tokenizer.h"
#include "model/samc.h"

#define SAM3_MAX_VIT_BLOCKS 64
#define SAM3_MAX_TEXT_LAYERS 32
#define SAM3_MAX_LAYERS 8          /* geometry, fusion encoder and decoder layers */
#define SAM3_MAX_GEO_INPUTS 32     /* boxes + points of one prompt */
#define SAM3_CTX 32                /* text context length of every config */
#define SAM3_TEXT_CACHE 8          /* texts whose features a model keeps (8 x 32 x D floats) */
#define SAM3_MAX_PROMPT (SAM3_CTX + SAM3_MAX_GEO_INPUTS + 1)   /* text + geometry + CLS */
#define SAM3_MAX_S 1008            /* the largest input side of the configs */
/* Largest image side / pixel count the API accepts (as for SAM2.1). */
#define SAM3_MAX_IMAGE_SIDE 65536
#define SAM3_MAX_IMAGE_PIXELS ((int64_t)1 << 31)

/* ---- weights, one struct per official module ---------------------------------------- */

/* nn.MultiheadAttention: in_proj_weight [3d, d] = [Wq; Wk; Wv], in_proj_bias [3d], out_proj. */
typedef struct {
    const float *in_w, *in_b;
    rt_linear out_proj;
    int d, heads;
} sam3_mha_weights;

/* vitdet.Block (backbone.vision_backbone.trunk.blocks.<i>) */
typedef struct {
    rt_norm norm1, norm2;
    rt_linear qkv, proj;          /* attn.qkv [3C, C], attn.proj */
    rt_linear fc1, fc2;           /* mlp.fc1, mlp.fc2 */
    int window;                   /* 0 = global attention */
} sam3_vit_block_weights;

/* vitdet.ViT (backbone.vision_backbone.trunk) */
typedef struct {
    rt_linear patch_embed;        /* patch_embed.proj [C, 3, 14, 14], no bias */
    const float *pos_embed;       /* [1, 1 + pg^2, C] (row 0: cls, unused) */
    rt_norm ln_pre;
    int depth;
    sam3_vit_block_weights blocks[SAM3_MAX_VIT_BLOCKS];
} sam3_vit_weights;

/* necks.Sam3DualViTDetNeck.convs[i]: dconv (ConvTranspose2d [in, out, 2, 2]) for the 4x
 * (two) and 2x (one) branches, then conv_1x1 and conv_3x3. */
typedef struct {
    rt_linear dconv[2];
    int n_dconv, in_1x1;          /* channels into conv_1x1 */
    rt_linear conv_1x1, conv_3x3;
} sam3_neck_branch_weights;

typedef struct {
    sam3_neck_branch_weights convs[4];
} sam3_neck_weights;

/* text_encoder_ve.ResidualAttentionBlock (...encoder.transformer.resblocks.<i>) */
typedef struct {
    sam3_mha_weights attn;
    rt_norm ln_1, ln_2;
    rt_linear c_fc, c_proj;       /* mlp.c_fc [4W, W], mlp.c_proj */
} sam3_text_block_weights;

/* text_encoder_ve.VETextEncoder (backbone.language_backbone) */
typedef struct {
    const float *token_embedding;       /* encoder.token_embedding.weight [vocab, W] */
    const float *positional_embedding;  /* encoder.positional_embedding [ctx, W] */
    int layers;
    sam3_text_block_weights blocks[SAM3_MAX_TEXT_LAYERS];
    rt_norm ln_final;
    rt_linear resizer;                  /* [d, W] */
} sam3_text_weights;

/* encoder.TransformerEncoderLayer (fusion encoder and geometry encoder layers) */
typedef struct {
    sam3_mha_weights self_attn, cross_attn_image;
    rt_linear linear1, linear2;
    rt_norm norm1, norm2, norm3;
} sam3_encoder_layer_weights;

/* geometry_encoders.SequenceGeometryEncoder (geometry_encoder) */
typedef struct {
    const float *label_embed;     /* [2, d]: 0 negative, 1 positive */
    const float *cls_embed;       /* [1, d] */
    rt_linear points_direct_project, points_pool_project, points_pos_enc_project;
    rt_linear boxes_direct_project, boxes_pool_project, boxes_pos_enc_project; /* pool: Conv2d [d, d, 7, 7] */
    rt_linear final_proj;
    rt_norm norm, img_pre_norm, encode_norm;
    int layers;
    sam3_encoder_layer_weights encode[SAM3_MAX_LAYERS];
} sam3_geometry_weights;

/* decoder.TransformerDecoderLayer (transformer.decoder.layers.<i>) */
typedef struct {
    sam3_mha_weights cross_attn, ca_text, self_attn;
    rt_norm norm1, catext_norm, norm2, norm3;
    rt_linear linear1, linear2;
} sam3_decoder_layer_weights;

/* decoder.TransformerDecoder (transformer.decoder) */
typedef struct {
    int layers;
    sam3_decoder_layer_weights layer[SAM3_MAX_LAYERS];
    rt_norm norm, presence_token_out_norm;
    rt_mlp bbox_embed, boxRPB_embed_x, boxRPB_embed_y, presence_token_head, ref_point_head;
    const float *query_embed;     /* [Q, d] */
    const float *presence_token;  /* [1, d] */
} sam3_decoder_weights;

/* maskformer_segmentation.UniversalSegmentationHead (segmentation_head) */
typedef struct {
    rt_linear pd_conv[3];         /* pixel_decoder.conv_layers.<i>: conv 3x3 (2 of 3 used) */
    rt_norm pd_norm[3];           /* pixel_decoder.norms.<i>: GroupNorm(8) */
    rt_mlp mask_embed;            /* mask_predictor.mask_embed (3 layers) */
    sam3_mha_weights cross_attend_prompt;
    rt_norm cross_attn_norm;
    rt_linear semantic_seg_head, instance_seg_head;  /* conv 1x1 [1, d], [d, d] */
} sam3_seg_head_weights;

/* model_misc.DotProductScoring (dot_prod_scoring) */
typedef struct {
    rt_mlp prompt_mlp;            /* 2 layers, residual */
    rt_norm prompt_mlp_out_norm;
    rt_linear prompt_proj, hs_proj;
} sam3_scoring_weights;

/* ---- the model, an encoded image, a prompt --------------------------------------------- */

typedef struct sam3_model {
    samc_runtime rt;
    rt_weights weights;
    const sam3_config *cfg;
    int S;                        /* input side */
    int g;                        /* token grid side S / 14; the neck levels are 4g, 2g, g */
    int C;                        /* ViT width */
    int D;                        /* d_model */
    int Q;                        /* queries */

    sam3_vit_weights vit;
    sam3_neck_weights neck;
    sam3_text_weights text;
    sam3_geometry_weights geo;
    sam3_encoder_layer_weights enc[SAM3_MAX_LAYERS];
    sam3_decoder_weights dec;
    sam3_seg_head_weights seg;
    sam3_scoring_weights score;

    /* Constants computed at load, in backend memory. */
    float *rope_win_cos, *rope_win_sin;    /* windowed blocks' freqs_cis [window^2, hd/2] */
    float *rope_glob_cos, *rope_glob_sin;  /* global blocks' [g^2, hd/2] */
    float *pos_tiled;             /* tiled abs pos embed [g*g, C] */
    float *pe_tok;                /* PositionEmbeddingSine of the 1x level, [g*g, D] */
    float *causal;                /* the text encoder's causal mask [ctx, ctx] (0 / -inf) */
    float *h_ref_init;            /* host: sigmoid(reference_points) [Q, 4] */

    float *zeros;                 /* [D] zeros (the presence token's position) */
    /* The last SAM3_TEXT_CACHE texts' features [ctx, D] each, with their ids: a prompt
     * with cached ids (a box added to a text, as Sam3Processor keeps its text features;
     * the classes of a mosaic, tile after tile) skips the text encoder; the features
     * depend on the ids and weights only, so the same bits. Slots replaced in turn. */
    float *text_cache;
    int32_t text_cache_ids[SAM3_TEXT_CACHE][SAM3_CTX];
    int text_cache_valid[SAM3_TEXT_CACHE], text_cache_next;
    sam3_tokenizer *tokenizer;    /* the text prompts' (NULL: no vocabulary; token ids only) */

    /* Host buffers, sized at load. */
    struct sam3_resize_plan *resize;
    uint8_t *h_resized;           /* [3, S, S] */
    float *h_input;               /* [3, S, S] */
    float *h_dec;                 /* the decoder's host side (decoder.c) */
    float *h_small;               /* [SAM3_MAX_PROMPT * (D + 16) * 2] geometry / scoring staging */
    float *h_logits;              /* [L, Q] all layers' scores */
    float *h_refs;                /* [L, Q, 4] each layer's input boxes */
    float h_presence[SAM3_MAX_LAYERS];
    float *dev_full;              /* device backends: one full-size mask (post-processing) */
    size_t dev_full_cap;

    samc_timings timings;
    size_t mem_after_load, mem_after_encode, mem_after_predict;  /* device memory in use (rt_mem_info) */
} sam3_model;

typedef struct sam3_image {
    int w, h;                     /* original size; 0 until encoded */
    int S, D, g;
    const samc_ops *ops;          /* whose memory the features are in */
    float *fpn[3];                /* neck levels 4x, 2x, 1x: [D, 4g, 4g], [D, 2g, 2g], [D, g, g] */
} sam3_image;

/* A concept prompt as the model takes it: the text's ids, exemplar boxes (normalised
 * cxcywh, as Sam3Processor.add_geometric_prompt takes them) and points (normalised xy). */
typedef struct {
    int32_t ids[SAM3_CTX];
    int n_boxes, n_points;
    float boxes[SAM3_MAX_GEO_INPUTS][4];
    int box_labels[SAM3_MAX_GEO_INPUTS];
    float points[SAM3_MAX_GEO_INPUTS][2];
    int point_labels[SAM3_MAX_GEO_INPUTS];
} sam3_prompt;

/* What forward_grounding returns for one prompt: host views of the small outputs (in the
 * model's host buffers, valid until the next grounding) and the low-res masks in the
 * caller's backend buffer. */
typedef struct {
    const float *logits;          /* host [Q]: pred_logits of the last layer */
    const float *boxes;           /* host [Q, 4]: pred_boxes, normalised cxcywh */
    float presence_logit;         /* presence_logit_dec of the last layer */
    float *masks;                 /* backend [Q, 4g, 4g]: pred_masks */
} sam3_grounding;

/* ---- binding (each module's file binds its own weights) -------------------------------- */

void sam3_mha_bind(rt_binder *b, sam3_mha_weights *w, const char *prefix, int d, int heads);
void sam3_vit_bind(rt_binder *b, const sam3_config *c, sam3_vit_weights *w);
void sam3_neck_bind(rt_binder *b, const sam3_config *c, sam3_neck_weights *w);
void sam3_text_bind(rt_binder *b, const sam3_config *c, sam3_text_weights *w);
void sam3_encoder_layer_bind(rt_binder *b, sam3_encoder_layer_weights *w, const char *prefix, int d, int heads,
                             int ffn);
void sam3_geometry_bind(rt_binder *b, const sam3_config *c, sam3_geometry_weights *w);
void sam3_fusion_encoder_bind(rt_binder *b, const sam3_config *c, sam3_encoder_layer_weights *layers);
void sam3_decoder_bind(rt_binder *b, const sam3_config *c, sam3_decoder_weights *w);
void sam3_seg_head_bind(rt_binder *b, const sam3_config *c, sam3_seg_head_weights *w);
void sam3_scoring_bind(rt_binder *b, const sam3_config *c, sam3_scoring_weights *w);

/* ---- forward, one function per module ------------------------------------------------ */

/* nn.MultiheadAttention.forward: q_in [Nq, d], k_in / v_in [Nk, d] (rows; the same
 * pointer may be passed for several: shared projections run as one product) -> out
 * [Nq, d]. bias: NULL, or an additive bias / mask (ops.h). */
int sam3_multihead_attention(sam3_model *m, const sam3_mha_weights *w, const float *q_in, const float *k_in,
                             const float *v_in, int Nq, int Nk, const samc_attention_bias *bias, float *out,
                             samc_error *err);
/* model_misc.MLP: x [N, in] -> y [N, out], ReLU between layers. */
int sam3_mlp(sam3_model *m, const rt_mlp *w, const float *x, int N, int in, int hidden, int out, float *y,
             samc_error *err);
/* A transformer layer's FFN: linear2(relu(linear1(x))), x [T, d] -> out [T, d]. */
int sam3_ffn(sam3_model *m, const rt_linear *linear1, const rt_linear *linear2, const float *x, int T, int ffn,
             float *out, samc_error *err);
/* model_misc.inverse_sigmoid (eps 1e-3), in float as the official code. */
float sam3_inverse_sigmoid(float x);
/* The 16-bit phase for a stretch of the forward (the ViT, the fusion encoder) in the
 * reduced precisions (bf16 / fp16 on CUDA); nothing in fp32. The CUDA backend keeps a
 * block's 16-bit element i at base + 2 i (kernels/cuda/lowp.cu), so a 16-bit tensor at
 * byte offset B of the arena lands on bytes from B / 2 on: begin takes a pad as large as
 * what the arena holds (every fp32 tensor still needed, written before), so every buffer
 * allocated after it lies past twice that and its 16-bit values clear of them (without
 * the pad, the ViT's patch embed overwrote the fp32 image it read). The planning pass takes
 * the same pad. *on: whether the phase was entered; end(on) goes back to fp32 (also on an
 * error path); the caller resets the arena to its mark before begin. */
int sam3_lowp_begin(sam3_model *m, int *on, samc_error *err);
void sam3_lowp_end(sam3_model *m, int on);
/* The sine code of one coordinate (gen_sineembed_for_position, _encode_xy): out[n],
 * out[k] = sin / cos (v * 2 pi / 1e4^(2 floor(k/2) / n)) at even / odd k. */
void sam3_sine_encode(float v, int n, float *out);

/* vitdet: freqs_cis of one block kind (compute_axial_cis) as cos / sin [side^2, hd/2],
 * on the host; the tiled abs pos embed [g*g, C] (get_abs_pos, tiling) from host weights. */
void sam3_vit_rope_table(int hd, int side, float scale, float *cos_out, float *sin_out);
void sam3_vit_pos_tiled(const sam3_model *m, const float *pos_embed, float *out);
/* ViT.forward: input [3, S, S] -> x [C, g, g] (the last block's output, NCHW). */
int sam3_vit(sam3_model *m, const float *input, float *out, samc_error *err);
/* Sam3DualViTDetNeck.forward (sam3 branch) on the ViT map [C, g, g]: img->fpn[0..2];
 * the 0.5x level is computed too (then dropped, scalp = 1). */
int sam3_neck(sam3_model *m, const float *x, sam3_image *img, samc_error *err);
/* PositionEmbeddingSine(D, normalize, 2 pi) of an H x W map on the host: out [D, H, W], or
 * [H*W, D] when token_major. */
void sam3_position_embedding_sine(int D, int H, int W, int token_major, float *out);

/* VETextEncoder.forward for one text: ids [ctx] (host) -> features [ctx, d]. */
int sam3_text_encoder(sam3_model *m, const int32_t *ids, float *features, samc_error *err);
/* The graph key of the text encoder's blocks (rt_graph_run; the runtime is the model's own)... */
#define SAM3_GRAPH_TEXT ((uint64_t)3 << 56)
/* ... and of a decoder layer's device side (| layer << 16 | the prompt's length). */
#define SAM3_GRAPH_DECODER ((uint64_t)4 << 56)

/* TransformerEncoderLayer.forward_pre on tgt [T, d] in place. query_pos [T, d] or NULL
 * (added to q and k of the self-attention: pos_enc_at_attn); self_bias NULL or a key
 * mask; cross-attention keys mem_k [M, d], values mem_v [M, d], mem_bias or NULL. */
int sam3_encoder_layer(sam3_model *m, const sam3_encoder_layer_weights *w, float *tgt, int T, const float *query_pos,
                       const samc_attention_bias *self_bias, const float *mem_k, const float *mem_v, int M,
                       const samc_attention_bias *mem_bias, int ffn, samc_error *err);
/* SequenceGeometryEncoder.forward: the prompt's points and boxes over the 1x level ->
 * out [G, d], G = n_points + n_boxes + 1 (CLS). */
int sam3_geometry_encoder(sam3_model *m, const sam3_image *img, const sam3_prompt *p, float *out, samc_error *err);
/* TransformerEncoderFusion.forward: the 1x level fused with the prompt [S, d] (key
 * mask prompt_bias) -> memory [g*g, d]. */
int sam3_fusion_encoder(sam3_model *m, const sam3_image *img, const float *prompt, int S,
                        const samc_attention_bias *prompt_bias, float *memory, samc_error *err);
/* TransformerDecoder.forward: memory [g*g, d], prompt [S, d] -> hs [L, Q, d] (normed
 * layer outputs), ref_boxes (host) [L, Q, 4] (input boxes of each layer), presence
 * (host) [L]. */
int sam3_decoder(sam3_model *m, const float *memory, const float *prompt, int S, const samc_attention_bias *prompt_bias,
                 float *hs, float *ref_boxes, float *presence, samc_error *err);
/* DotProductScoring.forward: hs [L, Q, d], prompt [S, d] with valid[S] (host, 1 = not
 * masked) -> logits (host) [L, Q]. */
int sam3_dot_product_scoring(sam3_model *m, const float *hs, const float *prompt, int S, const int *valid,
                             float *logits, samc_error *err);
/* UniversalSegmentationHead.forward: image levels, memory [g*g, d], the last layer's
 * queries hs_last [Q, d] and the prompt -> pred_masks [Q, 4g, 4g]. */
int sam3_segmentation_head(sam3_model *m, const sam3_image *img, const float *memory, const float *hs_last,
                           const float *prompt, int S, const samc_attention_bias *prompt_bias, float *pred_masks,
                           samc_error *err);
/* The decoder's host staging, in floats (load.c allocates m->h_dec). */
size_t sam3_decoder_host_floats(const sam3_model *m);
/* Sam3Image.forward_grounding for one prompt over an encoded image; out->masks is the
 * caller's backend buffer [Q, 4g, 4g]. */
int sam3_forward_grounding(sam3_model *m, const sam3_image *img, const sam3_prompt *p, sam3_grounding *out,
                           samc_error *err);

/* ---- processor (Sam3Processor) ------------------------------------------------------- */

/* Host buffers of the resize, for any image up to the API's size limits. */
int sam3_transforms_plan(sam3_model *m, samc_error *err);
void sam3_transforms_free(sam3_model *m);
/* uint8 resize to S x S (the float antialias path, rounded half to even), * float(1/255),
 * (x - 0.5) / 0.5: rgb -> m->h_resized, m->h_input. */
void sam3_transforms_preprocess(sam3_model *m, const uint8_t *rgb, int w, int h);
/* set_image: preprocess + ViT + neck into img. */
int sam3_image_encode(sam3_model *m, sam3_image *img, const uint8_t *rgb, int w, int h, samc_error *err);
/* The API's prompt (pixels) as the model takes it (normalised, ids), checked against the
 * image size; text is not tokenized here (the caller passes ids, or NULL text). */
int sam3_prompt_from_api(const sam3_model *m, const samc_concept_prompt *in, int w, int h, sam3_prompt *p,
                         samc_error *err);
/* The grounding of one prompt with the processor's post-processing into out. */
int sam3_find(sam3_model *m, const sam3_image *img, const sam3_prompt *p, const samc_find_options *opt,
              samc_instances *out, samc_error *err);
/* Runs one encode and one grounding of the longest prompt (sizes the arena when planning). */
int sam3_processor_plan(sam3_model *m, samc_error *err);

/* ---- the model (load.c) ---------------------------------------------------------------- */

/* The ids of a text prompt through the model's tokenizer: ids[SAM3_CTX]. */
int sam3_text_ids(sam3_model *m, const char *text, int32_t *ids, samc_error *err);
/* Takes the opened weights (w is left empty on success and on failure). */
sam3_model *sam3_model_load(rt_weights *w, const sam3_config *cfg, const samc_options *opt, samc_error *err);
void sam3_model_free(sam3_model *m);
sam3_image *sam3_image_new(sam3_model *m, samc_error *err);
void sam3_image_free(sam3_image *img);

#endif
