/* model/sam2.h: the SAM2.1 image model inside samc (internal header).
 *
 * One struct per official module, holding pointers to its weights, bound by state-dict
 * key at load (model/sam2.c). The forward functions mirror the official modules:
 *   hiera.c           sam2/modeling/backbones/hieradet.py    Hiera, MultiScaleBlock
 *   fpn_neck.c        sam2/modeling/backbones/image_encoder.py  FpnNeck (+ PositionEmbeddingSine)
 *   prompt_encoder.c  sam2/modeling/sam/prompt_encoder.py     PromptEncoder
 *   mask_decoder.c    sam2/modeling/sam/mask_decoder.py, transformer.py  MaskDecoder, TwoWayTransformer
 *   predictor.c       sam2/sam2_image_predictor.py, utils/transforms.py  SAM2ImagePredictor
 * All compute goes through the op table (kernels/ops.h) so the same code runs on every
 * backend; tensors are in PyTorch layouts (NCHW maps, [tokens, C] sequences).
 */
#ifndef SAMC_SAM2_H
#define SAMC_SAM2_H
#include "model/samc.h"
#include "kernels/ops.h"
#include "loader/safetensors.h"
#include "loader/synth.h"
#include "loader/pt.h"

#define SAM2_MAX_BLOCKS 64
#define SAM2_NUM_MASK_TOKENS 4
#define SAM2_MAX_TOKENS 64          /* decoder prompt tokens per item: 6 output + points */
#define SAM2_MAX_BATCH_CHUNK 256    /* prompts per decoder call (samc_options.max_batch) */

typedef struct { const float *w, *b; } sam2_linear;  /* nn.Linear / conv: w[out, in, ...], b[out] */
typedef struct { const float *w, *b; } sam2_norm;    /* LayerNorm / LayerNorm2d: w[C], b[C] */
typedef struct { sam2_linear layers[3]; int n_layers; } sam2_mlp; /* sam2 MLP: ReLU between layers */

/* hieradet.MultiScaleBlock */
typedef struct {
    int dim, dim_out, heads, window;  /* window 0 = global attention */
    int q_pool;                        /* 1: max-pool q 2x2 inside windows (first block of stages 2-4) */
    int stage;                         /* stage of the block's output */
    sam2_norm norm1, norm2;
    sam2_linear qkv, attn_proj, proj;  /* proj only when dim != dim_out */
    sam2_linear mlp0, mlp1;
} hiera_block;

/* hieradet.Hiera + image_encoder.FpnNeck */
typedef struct {
    int n_blocks, stage_end[4];
    sam2_linear patch_embed;          /* [C0, 3, 7, 7] */
    const float *pos_embed;           /* [1, C0, bkg_h, bkg_w] */
    const float *pos_embed_window;    /* [1, C0, w0, w0] */
    hiera_block blocks[SAM2_MAX_BLOCKS];
    sam2_linear neck_convs[4];        /* 1x1 convs; convs[i] takes backbone_channel_list[i] channels */
} sam2_image_encoder;

/* sam.PromptEncoder */
typedef struct {
    const float *pe_gaussian;         /* [2, C/2] */
    const float *point_embed[4];      /* [C] each: labels 0, 1, 2 (box top-left), 3 (box bottom-right) */
    const float *not_a_point_embed;   /* [C] */
    const float *no_mask_embed;       /* [C] */
    sam2_linear mask_ds_conv[3];      /* mask_downscaling.0, .3, .6 */
    sam2_norm mask_ds_norm[2];        /* mask_downscaling.1, .4 */
} sam2_prompt_encoder;

/* sam.transformer.Attention */
typedef struct { sam2_linear q, k, v, out; int internal_dim, heads; } sam2_attention;

/* sam.transformer.TwoWayAttentionBlock */
typedef struct {
    sam2_attention self_attn, cross_token_to_image, cross_image_to_token;
    sam2_norm norm1, norm2, norm3, norm4;
    sam2_linear mlp0, mlp1;
} sam2_two_way_block;

/* sam.mask_decoder.MaskDecoder (SAM2.1: object-score head, high-res features) */
typedef struct {
    sam2_two_way_block layers[2];
    sam2_attention final_attn;
    sam2_norm norm_final;
    const float *iou_token, *mask_tokens, *obj_score_token;  /* [1,C], [4,C], [1,C] */
    sam2_linear upscale_conv1, upscale_conv2;                /* ConvTranspose2d: w[Cin, Cout, 2, 2] */
    sam2_norm upscale_norm;
    sam2_linear conv_s0, conv_s1;                             /* 1x1: C -> C/8, C -> C/4 */
    sam2_mlp hyper[SAM2_NUM_MASK_TOKENS], iou_head, obj_score_head;
    const float *no_mem_embed;                                /* [C] added to the image embedding */
} sam2_mask_decoder;

/* Scratch memory: a bump allocator over one block allocated at load. In planning mode
 * it only measures (every allocation returns the same dummy pointer, never written), so
 * the forward functions are run once at load with plan=1 to size the real block. */
typedef struct {
    char *base;
    size_t cap, used, peak;
    int planning;
} sam2_arena;

float *arena_floats(sam2_arena *a, size_t n);
/* Inside a forward function with `m` and `err` in scope: take n floats or fail. */
#define ALLOC(ptr, n) do { (ptr) = arena_floats(&m->arena, (size_t)(n)); \
    if (!(ptr)) return sam2_fail(err, SAMC_ERR_INTERNAL, "scratch arena exhausted at %s:%d", __FILE__, __LINE__); } while (0)
size_t arena_mark(const sam2_arena *a);
void arena_reset(sam2_arena *a, size_t mark);

struct samc_model {
    const synth_config *cfg;
    int S;                            /* image size */
    int C;                            /* d_model */
    int max_batch;
    int max_encode_batch;             /* images per encoder call (samc_options.max_encode_batch) */
    const samc_ops *ops;
    samc_ops *fast_ops;               /* owned when the fast backend is used */
    samc_ops *cuda_ops;               /* owned when the CUDA backend is used */
    samc_options opt;

    st_file file;                     /* mmap'd weights (safetensors) */
    pt_checkpoint *pt;                /* or the tensors of a .pt converted in memory */
    void *owned_weights;              /* converted / aligned copies (F16/BF16/unaligned/.pt) */
    size_t weight_bytes;
    int64_t n_params, n_tensors;

    /* Weights bound by key. Pointers are in the backend's memory (uploaded once at load
     * for a device backend); pe_host keeps the prompt-encoder weights that the host-side
     * point encoding reads. */
    sam2_image_encoder enc;
    sam2_prompt_encoder pe, pe_host;
    sam2_mask_decoder dec;
    void *dev_weights;                /* device copy of the image-path weights (device backends) */

    /* Constants computed at load, in backend memory. */
    float *pos_embed_hwc;             /* Hiera positional embedding [S/4 * S/4, C0] */
    float *dense_pe;                  /* prompt-encoder dense PE [C, S/16, S/16] */
    float *dense_pe_hwc;              /* the same as decoder key PE [S/16 * S/16, C] */
    float *dense_pe_host;             /* host copy for debug dumps */

    /* Host staging buffers, sized at load. */
    float *h_input;                   /* [3, S, S] preprocessed image */
    float *h_sparse, *h_coords;       /* [max_batch, SAM2_MAX_TOKENS, C], [.., 2] */
    int *h_labels;                    /* [max_batch, SAM2_MAX_TOKENS] */
    float *h_masks, *h_iou, *h_obj;   /* decoder outputs [max_batch, 4, S/4, S/4], [.., 4], [..] */
    float *h_sel;                     /* selected low-res logits [max_batch, 3, S/4, S/4] */
    float *dev_logits;                /* device backends: full-size logits of one prompt item */
    size_t dev_logits_cap;

    sam2_arena arena;
    samc_timings timings;
};

struct samc_image {
    int w, h;                         /* original size; 0 until encoded */
    int S, C;
    const samc_ops *ops;              /* whose memory the features are in */
    float *image_embed;               /* [C, S/16, S/16] = neck level 2 + no_mem_embed */
    float *feat_s0;                   /* [C/8, S/4, S/4] = conv_s0(neck level 0) */
    float *feat_s1;                   /* [C/4, S/8, S/8] = conv_s1(neck level 1) */
};

/* Error helpers (model/sam2.c). */
int sam2_fail(samc_error *err, samc_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sam2_log(const samc_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Debug dumps: data in backend memory (downloaded when needed) or in host memory. */
void sam2_dump(const samc_model *m, const char *name, const float *data, int ndim, ...);
void sam2_dump_host(const samc_model *m, const char *name, const float *data, int ndim, ...);

/* Backend memory (host malloc/memcpy for the CPU backends). */
void *sam2_backend_alloc(const samc_ops *o, size_t bytes);
void sam2_backend_free(const samc_ops *o, void *p);
void sam2_upload(const samc_ops *o, void *dst, const void *src, size_t bytes);
void sam2_download(const samc_ops *o, void *dst, const void *src, size_t bytes);
double sam2_now_ms(void);

int sam2_hiera_pos_embed(const samc_model *m, float *out /* [S/4 * S/4, C0] */);

/* Forward passes. plan=1: only allocate from the arena (sizing at load). Return 0 or -1. */
/* The image encoder on B images at once (B <= max_encode_batch): input [B,3,S,S],
 * imgs[b] receives image b's features. */
int sam2_image_encoder_forward(samc_model *m, const float *input /* [B,3,S,S] */, samc_image *const *imgs, int B,
                               int plan, samc_error *err);
/* PromptEncoder: coords [B,N,2] in model-input pixels (before +0.5), labels [B,N]
 * (-1 = padding, 0, 1, 2, 3); mask_input [B,1,S/4,S/4] or NULL.
 * sparse -> [B, N, C]; dense -> [B, C, S/16, S/16]. */
int sam2_prompt_encoder_forward(samc_model *m, const float *coords, const int *labels, int B, int N,
                                const float *mask_input, float *sparse, float *dense, int plan,
                                samc_error *err);
void sam2_prompt_encoder_dense_pe(const samc_model *m, float *out /* [C, S/16, S/16] */);
/* MaskDecoder.predict_masks for B prompt items over one image:
 * all_masks [B,4,S/4,S/4], all_iou [B,4], obj_score [B]. dense_shared: every item has the
 * same dense embedding (no mask prompts), which lets the first attention share keys. */
int sam2_mask_decoder_forward(samc_model *m, const samc_image *img, const float *sparse, int n_sparse,
                              const float *dense, int dense_shared, int B, float *all_masks, float *all_iou,
                              float *obj_score, int plan, samc_error *err);
/* MaskDecoder._dynamic_multimask_via_stability for one item: chooses among the 4 tokens.
 * Returns the chosen token index (0 if token 0 is stable, else the best of 1..3). */
int sam2_dynamic_multimask_choice(const float *all_masks /* [4, n] */, const float *all_iou /* [4] */,
                                  int n, float *stability_out);

/* Sizes the scratch arena (planning mode): one encode of max_encode_batch images, and
 * one predict chunk. */
int sam2_predictor_plan(samc_model *m, samc_error *err);


#endif
