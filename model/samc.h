/* samc.h: the public C API of samc, a pure-C inference engine for Segment Anything
 * images: SAM2.1 (points / boxes / masks -> masks) and SAM3 (a concept -> every instance).
 *
 * SAM2.1, promptable visual segmentation:
 *   samc_model *m = samc_model_load("sam2.1_hiera_large.safetensors", NULL, &err);
 *   samc_image *img = samc_image_new(m, &err);
 *   samc_image_encode(m, img, rgb, w, h, &err);              // once per image
 *   samc_prompt p = { .points = xy, .labels = lab, .n_points = 1 };
 *   samc_masks out = {0};
 *   samc_predict(m, img, &p, 1, &(samc_predict_options){ .multimask = 1, .want_masks = 1 }, &out, &err);
 *   ... out.masks, out.iou ...
 *   samc_masks_free(&out); samc_image_free(img); samc_model_free(m);
 *
 * SAM3, promptable concept segmentation (the family is found from the file's tensors):
 *   samc_model *m = samc_model_load("sam3.safetensors", NULL, &err);
 *   samc_image *img = samc_image_new(m, &err);
 *   samc_image_encode(m, img, rgb, w, h, &err);              // once per image
 *   samc_concept_prompt p = { .text = "truck" };             // and / or exemplar boxes
 *   samc_instances out = {0};
 *   samc_find(m, img, &p, NULL, &out, &err);                 // any number of prompts
 *   for (int i = 0; i < out.n; i++) ... out.score[i], out.box + 4 * i, out.masks + i * w * h
 *   samc_instances_free(&out); samc_image_free(img); samc_model_free(m);
 * samc_predict on a SAM3 model and samc_find on a SAM2.1 model fail with
 * SAMC_ERR_UNSUPPORTED.
 *
 * Every call returns 0 on success and -1 on failure with err->msg naming what failed
 * (file, tensor key, shape got vs expected, argument). Nothing here prints or exits.
 *
 * Memory: a model owns all scratch memory, planned at load from its config; encode and
 * predict / find allocate nothing on the model side. A samc_masks or samc_instances is
 * grown to the largest request it has seen and reused, so a loop over same-size images
 * does not grow.
 *
 * Threads: a samc_model is used by one thread at a time (it owns scratch buffers and
 * the CPU backend's thread pool). Encoded images are read-only during predict / find and
 * may be shared by models loaded from the same file. Use one model per worker thread.
 */
#ifndef SAMC_H
#define SAMC_H
#include <stddef.h>
#include <stdint.h>

#define SAMC_VERSION "0.1.0"

typedef enum {
    SAMC_OK = 0,
    SAMC_ERR_IO,           /* file missing, unreadable, unwritable */
    SAMC_ERR_FORMAT,       /* file malformed, truncated, wrong dtype/shape */
    SAMC_ERR_MODEL,        /* weights do not form a SAM2.1 / SAM3 model (missing/unexpected key) */
    SAMC_ERR_ARG,          /* bad argument: prompt outside the image, inverted box, ... */
    SAMC_ERR_NOMEM,        /* allocation failed */
    SAMC_ERR_UNSUPPORTED,  /* valid but not supported (dtype, backend) */
    SAMC_ERR_INTERNAL
} samc_status;

typedef struct {
    samc_status status;
    char msg[512];
} samc_error;

typedef enum {
    SAMC_BACKEND_AUTO = 0,   /* cpu_fast where the CPU supports it, else cpu_ref */
    SAMC_BACKEND_CPU_REF,    /* plain-C reference: slow, for checking and porting */
    SAMC_BACKEND_CPU_FAST,   /* SIMD + own thread pool */
    SAMC_BACKEND_CUDA
} samc_backend;

/* Arithmetic of the heavy math. The reduced modes are CUDA only (a CPU backend fails at
 * load with SAMC_ERR_UNSUPPORTED): the GEMMs (nn.Linear, 1x1 convolutions) take 16-bit
 * inputs on the tensor cores with fp32 accumulation and fp32 outputs; attention,
 * convolutions, norms and everything else stay fp32 (kernels/cuda/NOTES.md). */
typedef enum {
    SAMC_PRECISION_FP32 = 0,  /* everything in float32 (default, every backend) */
    SAMC_PRECISION_BF16,      /* bfloat16 GEMM inputs; needs compute capability 8.0+ */
    SAMC_PRECISION_FP16       /* float16 GEMM inputs (clamped to +-65504); needs 7.5+ */
} samc_precision;

/* Debug hook: called with every named intermediate tensor (names as in the golden data:
 * "trunk.block03", "neck.fpn2", "decoder.tokens_in", ...), shape with batch dim first. */
typedef void (*samc_dump_fn)(void *ctx, const char *name, const float *data, int ndim, const int64_t *shape);
/* Trace hook: one line per load / inference stage with its time and memory. */
typedef void (*samc_log_fn)(void *ctx, const char *line);

typedef struct {
    samc_backend backend;
    int n_threads;         /* CPU threads; <= 0: one per online core */
    int max_batch;         /* prompts per decoder call planned at load; <= 0: 8 (larger
                              batches are run in chunks of this size) */
    samc_log_fn log; void *log_ctx;
    samc_dump_fn dump; void *dump_ctx;
    samc_precision precision;  /* SAMC_PRECISION_FP32 unless set (CUDA only otherwise) */
    int max_encode_batch;  /* images per encoder call planned at load (samc_image_encode_batch);
                              <= 0: 1; at most SAMC_MAX_ENCODE_BATCH. Scratch memory grows
                              about linearly with it. */
    int plan_only;         /* 1: compute the memory plan of `backend` without running anything
                              there (no device needed): the load runs on a backend that only
                              counts bytes, samc_model_get_info reports them, and encode /
                              predict refuse such a model */
    const char *vocab_path;   /* SAM3 text prompts: the official bpe_simple_vocab_16e6.txt.gz (or
                                 its plain text), read at load when the weight file's metadata
                                 has no tokenizer.bpe_merges; NULL: the metadata only (without
                                 either, samc_find takes token_ids, not text) */
    int device;            /* CUDA device index (0 unless set). The CUDA runtime's current
                              device is per thread: use the model in the thread that loaded it */
} samc_options;

#define SAMC_MAX_ENCODE_BATCH 64

typedef struct samc_model samc_model;
typedef struct samc_image samc_image;

typedef enum { SAMC_FAMILY_SAM2 = 0, SAMC_FAMILY_SAM3 = 1 } samc_family;

typedef struct {
    char config[16];          /* "tiny", "small", "base_plus", "large", "micro"; "sam3", "sam3_micro" */
    int image_size;           /* S: model input is S x S */
    int embed_dim;            /* trunk embed dim (96 for tiny; SAM3: the ViT's 1024) */
    int d_model;              /* neck / decoder width (256) */
    samc_family family;       /* SAMC_FAMILY_SAM2 or SAMC_FAMILY_SAM3 */
    int64_t n_params;         /* image-path + memory-side tensors in the file */
    int64_t n_tensors;
    const char *backend;      /* "cpu_ref", "cpu_fast", "cuda" */
    int n_threads;
    size_t scratch_bytes;     /* planned at load */
    size_t weight_bytes;
    const char *precision;    /* "fp32", "bf16", "fp16" */
    int planned;              /* loaded with plan_only: the numbers below are a plan */
    size_t backend_bytes;     /* plan_only: backend memory the loaded model holds (weights,
                                 16-bit copy, constants, scratch, the backend's own buffers) */
    size_t lowp_bytes;        /* plan_only: of which 16-bit: the weights kept in 16 bits only,
                                 the 16-bit copy of the others, the conversion scratch */
    size_t weights16_bytes;   /* plan_only: of lowp_bytes, the weights kept in 16 bits only
                                 (bf16 / fp16: those only a linear reads) */
    size_t image_bytes;       /* one encoded image's features in backend memory */
    /* Measured device memory (CUDA; 0 elsewhere): in use on the whole device (total - free,
     * cudaMemGetInfo) when the backend started (the context only), after the load, after
     * the first encode and after the first predict / find (graphs captured, the image's
     * features and full-size logits in place: the model's steady state with one image). */
    size_t device_total_bytes, device_used_at_start, device_used_after_load, device_used_after_encode;
    size_t device_used_after_predict;
    int graphs;               /* graphs captured so far (CUDA graphs switch on), or 0 */
} samc_model_info;

/* Per-stage times of the last encode / predict (find) on this model, in milliseconds. On
 * the CUDA backend the SAM2.1 stage times are device times between CUDA events recorded in
 * stream order (device_timed = 1; inside the encoder's graph too), read after the call's
 * final synchronisation; on the CPU backends, whose ops are synchronous, the host clock. A
 * stage whose marks were not recorded reads -1. SAM3: stage_ms[0] is the ViT's blocks;
 * prompt_ms the text and geometry encoders, decoder_ms the DETR decoder with scoring,
 * predict_total_ms the whole samc_find. */
typedef struct {
    double preprocess_ms;        /* host: SAM2Transforms on the host (CPU), or staging the
                                    uint8 image and its filter taps in pinned memory (CUDA) */
    double patch_embed_ms, stage_ms[4], neck_ms;  /* the encoder's stages (neck: FpnNeck +
                                    conv_s0 / conv_s1 + no_mem_embed) */
    double encode_total_ms;      /* host wall time of the whole encode call */
    double prompt_ms;            /* prompt encoder: host point encoding + its device part */
    double decoder_ms;           /* mask decoder (+ the download of its outputs) */
    double postprocess_ms, predict_total_ms;  /* host wall times */
    double text_ms, geometry_ms, fusion_ms, seg_head_ms;   /* SAM3 only */
    int text_reused;             /* SAM3: 1 when the last samc_find took the text features of
                                    the find before it (the same token ids: no text encoder) */
    double upload_ms;            /* the upload of the image batch (0 on the CPU) */
    double preprocess_device_ms; /* resize + normalise on the device (0 when on the host) */
    double encoder_device_ms;    /* patch embed .. neck as one device time */
    int device_timed;            /* 1: stage times from device events; 0: host clock */
    double find_device_ms;       /* SAM3 samc_find from the prompt to the end of post-processing
                                    as one device time (SAM3 on a device backend; else <= 0) */
} samc_timings;

/* Loads .safetensors (F32/F16/BF16) or an official .pt checkpoint (converted in memory).
 * opt may be NULL (defaults). */
samc_model *samc_model_load(const char *path, const samc_options *opt, samc_error *err);
void samc_model_free(samc_model *m);
void samc_model_get_info(const samc_model *m, samc_model_info *info);
void samc_model_get_timings(const samc_model *m, samc_timings *t);

/* An encoded image: image embedding, high-res features, original size. */
samc_image *samc_image_new(samc_model *m, samc_error *err);
void samc_image_free(samc_image *img);
/* rgb: interleaved 8-bit RGB, h rows of w pixels. */
int samc_image_encode(samc_model *m, samc_image *img, const uint8_t *rgb, int w, int h, samc_error *err);
/* Encodes n images: imgs[i] gets image i (rgb[i], w[i] x h[i]), with the same results
 * as n samc_image_encode calls. The encoder runs on up to max_encode_batch images at
 * once (n may be larger: chunks), so its matrix products see that many images' tokens
 * (what fills a GPU). All arguments are checked before anything is encoded; if a chunk
 * fails, its images and the later ones are left unencoded (earlier chunks stay valid).
 * The timings are those of the last chunk (encode_total_ms: the whole call). */
int samc_image_encode_batch(samc_model *m, samc_image **imgs, const uint8_t *const *rgb, const int *w,
                            const int *h, int n, samc_error *err);
int samc_image_width(const samc_image *img);
int samc_image_height(const samc_image *img);

typedef struct {
    const float *points;      /* [n_points][2] (x, y) in original image pixels */
    const int *labels;        /* [n_points] 1 = foreground, 0 = background */
    int n_points;
    const float *box;         /* [4] x0, y0, x1, y1 in original pixels, or NULL */
    const float *mask_input;  /* [S/4][S/4] low-res logits (a previous low_res mask), or NULL */
} samc_prompt;

typedef struct {
    int multimask;     /* 1: three masks per prompt (tokens 1..3, in order);
                          0: one mask per prompt, chosen by SAM2.1's dynamic multimask */
    int want_masks;    /* fill masks: 0/1 at the original size (logits > 0) */
    int want_logits;   /* fill logits: the upsampled logits at the original size */
    int low_res_unclamped; /* 1: low_res without the +-32 clamp, i.e. the logits the
                              predictor upsamples (for upsampling later, mask by mask) */
} samc_predict_options;

typedef struct {
    int batch, n_masks;       /* B prompts, M masks each */
    int low_size;             /* S/4 */
    int width, height;        /* original image size */
    float *low_res;           /* [B][M][S/4][S/4], clamped to +-32 */
    float *iou;               /* [B][M] predicted IoU (sigmoid) */
    float *object_score;      /* [B] object score logit */
    float *logits;            /* [B][M][H][W] or NULL when not asked for */
    uint8_t *masks;           /* [B][M][H][W] 0/1 or NULL when not asked for */
    size_t cap_low, cap_full; /* allocated element counts (internal) */
} samc_masks;

/* One prediction per prompt (a batch of prompts over one image). Points and boxes must
 * lie inside the image (0 <= x <= w, 0 <= y <= h) and boxes must have x0 < x1, y0 < y1. */
int samc_predict(samc_model *m, const samc_image *img, const samc_prompt *prompts, int n_prompts,
                 const samc_predict_options *opt, samc_masks *out, samc_error *err);
void samc_masks_free(samc_masks *out);

/* ---- SAM3: promptable concept segmentation ---------------------------------------------- */

#define SAMC_CONCEPT_CONTEXT 32        /* token ids of a text prompt */
#define SAMC_CONCEPT_MAX_GEOMETRY 32   /* boxes + points of one prompt */

/* A concept: a noun phrase and / or exemplars. Boxes are what Sam3Processor's
 * add_geometric_prompt takes (converted from pixels to normalised cx, cy, w, h in double,
 * then float); points go through the geometry encoder's point branch, which the official
 * processor cannot reach (its Sam3Image.forward ignores points). */
typedef struct {
    const char *text;          /* UTF-8 noun phrase ("truck"), through the CLIP tokenizer of
                                  model/sam3/tokenizer.h (vocabulary: samc_options.vocab_path
                                  or the file's metadata); NULL with no token_ids: a visual-only
                                  prompt, which the official processor runs with the dummy text
                                  "visual" (it needs at least one box or point) */
    const int32_t *token_ids;  /* [SAMC_CONCEPT_CONTEXT] ids instead of text: start 49406, the
                                  BPE ids, end 49407, zero padding (the tokenizer's output);
                                  NULL: tokenize text */
    const float *boxes;        /* [n_boxes][4] x0, y0, x1, y1 in image pixels */
    const int *box_labels;     /* [n_boxes] 1 = positive exemplar, 0 = negative; NULL: all 1 */
    int n_boxes;
    const float *points;       /* [n_points][2] x, y in image pixels */
    const int *point_labels;   /* [n_points] 1 / 0; NULL: all 1 */
    int n_points;
} samc_concept_prompt;

typedef struct {
    float threshold;           /* keep the queries whose score is > threshold (strictly) */
    int max_detections;        /* <= 0: every kept query; else at most that many, the highest
                                  scores (ties: lower query index), still in query order */
    int want_masks;            /* fill masks / area (one bilinear upsample per instance) */
} samc_find_options;
/* The official processor's defaults (opt = NULL means these). */
#define SAMC_FIND_DEFAULTS ((samc_find_options){ .threshold = 0.5f, .max_detections = 0, .want_masks = 1 })

/* The instances of one concept, as Sam3Processor reports them: kept queries in query
 * order (no NMS), with the raw outputs of all queries for inspection. */
typedef struct {
    int n;                     /* kept instances */
    int width, height;         /* original image size */
    int n_queries;             /* Q (200; 20 for sam3_micro) */
    int low_size;              /* side of the low-res masks (4 * S / 14: 288) */
    int *query;                /* [n] query index */
    float *score;              /* [n] sigmoid(pred_logit) * sigmoid(presence_logit) */
    float *box;                /* [n][4] x0, y0, x1, y1 in image pixels (not clamped) */
    uint8_t *masks;            /* [n][height][width] 0/1 (probability > 0.5), or NULL */
    int64_t *area;             /* [n] mask pixels (0 without masks) */
    float presence_logit;      /* the last decoder layer's presence logit */
    float *probs;              /* [Q] the score of every query */
    float *pred_logits;        /* [Q] */
    float *pred_boxes;         /* [Q][4] normalised cx, cy, w, h */
    float *pred_masks;         /* [Q][low_size][low_size] low-res mask logits */
    size_t cap_n, cap_q, cap_full, cap_low;  /* allocated element counts (internal) */
    float *prob;               /* internal: one mask's probabilities [height][width] */
    size_t cap_prob;
} samc_instances;

/* Every instance of the concept in an image encoded by the same (SAM3) model. opt NULL:
 * SAMC_FIND_DEFAULTS. Boxes must lie inside the image with x0 < x1, y0 < y1; points
 * inside; labels 0 or 1; at most SAMC_CONCEPT_MAX_GEOMETRY boxes + points. */
int samc_find(samc_model *m, const samc_image *img, const samc_concept_prompt *prompt, const samc_find_options *opt,
              samc_instances *out, samc_error *err);
void samc_instances_free(samc_instances *out);

/* SAM3: what samc_find makes of a text, so that a caller can check a prompt before the
 * search (the CLI and the service refuse text that is empty or only punctuation and say
 * when a long one is cut). Uses the model's tokenizer (the vocabulary of samc_find);
 * fails with SAMC_ERR_UNSUPPORTED when the model has none, SAMC_ERR_ARG for a SAM2.1 model. */
typedef struct {
    int32_t ids[SAMC_CONCEPT_CONTEXT];  /* what samc_find gives the text encoder for it */
    int n_tokens;          /* start + BPE tokens + end before the cut to SAMC_CONCEPT_CONTEXT */
    int truncated;         /* n_tokens > SAMC_CONCEPT_CONTEXT: cut as the official tokenizer
                              cuts (the last id becomes 49407) */
    int invalid_utf8;      /* bytes that are not UTF-8 were read as U+FFFD */
    int input_cut;         /* longer than the 8192 bytes the tokenizer reads: cut */
    int n_words;           /* pieces with a letter or digit; 0: only spaces / punctuation */
} samc_text_tokens;
int samc_text_tokenize(samc_model *m, const char *text, samc_text_tokens *out, samc_error *err);
/* ---- automatic mask generation on the model's backend --------------------------------
 * What SAM2AutomaticMaskGenerator._process_batch does with the masks of a batch of
 * prompts, done where the decoder ran (on the GPU with --device cuda), so that only small
 * records cross to the host: each prompt's masks (tokens 1..3, or SAM2.1's dynamic choice)
 * are filtered by predicted IoU, optionally have small holes / sprinkles filled on the
 * low-res logits, are upsampled to the crop's size and filtered by stability and by the
 * crop edges; the kept ones come back with their box, area and runs. The results are those
 * of pipelines/amg/amg.c's host path, bit for bit (tests/test_amg.c). */
typedef struct {
    int crop[4];              /* x0, y0, x1, y1 (exclusive) of the crop the image was encoded
                                 from (its size must be the image's), in the whole image */
    int image_w, image_h;     /* the whole image */
    int multimask;            /* 1: masks 1..3 of each prompt; 0: one (dynamic choice) */
    double pred_iou_thresh;   /* keep predicted IoU > this (0: no filter) */
    double stability_score_thresh;   /* keep stability >= this (0: no filter) */
    double stability_score_offset;   /* cuts mask_threshold +- offset */
    double mask_threshold;    /* mask = logits > this */
    int max_region;           /* > 0: 8-connected holes and sprinkles of <= this many low-res
                                 pixels are filled first (postprocess_masks) */
} samc_mask_filter;

typedef struct {
    int prompt;               /* index of its prompt in the call */
    int token;                /* the decoder's mask token (1..3, or 0..3 for multimask 0) */
    float iou, stability;
    int box[4];               /* inclusive x0, y0, x1, y1 in crop pixels; 0,0,0,0 if empty */
    int64_t area;
    int64_t first_toggle, n_toggles;  /* its runs: toggles[first_toggle ..] */
} samc_mask_record;

typedef struct {
    samc_mask_record *records;  /* the kept masks, by prompt then token */
    int n_records;
    /* The runs of set pixels of each kept mask, crop column by crop column: pairs
     * (x * crop_h + y_start, x * crop_h + y_end) with y_end exclusive (it may be crop_h). */
    uint32_t *toggles;
    int64_t n_toggles;
    int64_t candidates, passed_iou, passed_stability, passed_edge;  /* masks seen / left
                                                                       after each filter */
    double decode_ms, filter_ms;   /* host wall: prompt encoder + decoder, post-processing */
    int cap_records;          /* allocated (internal) */
    int64_t cap_toggles;
} samc_mask_records;

/* Single-point or box prompts, as samc_predict takes them; out is reset and reused (it
 * grows to the largest call and never shrinks). */
int samc_predict_records(samc_model *m, const samc_image *img, const samc_prompt *prompts, int n_prompts,
                         const samc_mask_filter *f, samc_mask_records *out, samc_error *err);
void samc_mask_records_free(samc_mask_records *r);

/* Post-processing of SAM2ImagePredictor as a standalone step: bilinear upsampling
 * (align_corners=False) of low-res logits [ls][ls] straight to [h][w]. Used by automatic
 * mask generation to go mask by mask. */
void samc_upsample_logits(const float *low, int ls, float *out, int w, int h);

/* Whether the CUDA backend can run here (device 0): 0 with the device in buf
 * ("NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB), driver 12.8, runtime 13.0"), or -1
 * with why not in buf (not compiled in, no driver, no device). For `--device auto`. */
int samc_cuda_device(char *buf, size_t n);
/* Whether the fast CPU backend computes in bf16 here (Intel AMX): 1, or 0 with why not in
 * buf. For `--device auto --precision bf16` without a GPU. */
int samc_cpu_bf16(char *buf, size_t n);
/* "fp32", "bf16", "fp16" ("?" for anything else). */
const char *samc_precision_name(samc_precision p);

/* Build features for `samc version`: "cpu_fast=avx2+fma cuda=no". */
const char *samc_build_features(void);

/* Fills err (if not NULL) with status and a printf-formatted message; returns -1, so
 * library code can `return samc_error_set(err, SAMC_ERR_IO, "cannot open %s", path);`. */
int samc_error_set(samc_error *err, samc_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *samc_status_name(samc_status s);

/* Low-res outputs as a file, for the CLI's --save-lowres / --mask-input: safetensors with
 * low_res_masks [B,M,S/4,S/4], iou_predictions [B,M], object_score_logits [B,1], all F32. */
int samc_masks_save_lowres(const samc_masks *m, const char *path, samc_error *err);
/* Reads such a file (F32/F16/BF16; low_res_masks may also be [M,S/4,S/4] or [S/4,S/4])
 * and copies into out[low_size*low_size] the mask of batch item 0 with the highest
 * iou_predictions (the first on ties), as SAM2's notebooks feed a previous best mask back. */
int samc_load_mask_input(const char *path, int low_size, float *out, samc_error *err);

#endif
