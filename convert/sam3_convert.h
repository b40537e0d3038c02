/* convert/sam3_convert.h: the SAM3 half of samc_convert_ex (convert/convert.h), given the
 * tensors convert.c has read.
 *
 * Three source layouts (sam3_layout_of tells them apart by name):
 *   official      sam3.pt: "detector." + Sam3Image name for the image model, "tracker."
 *                 for the video tracker (sam3/model_builder.py, _load_checkpoint, keeps
 *                 the keys containing "detector" without that prefix; here the prefix
 *                 must lead the name). A "detector." tensor whose name is no Sam3Image
 *                 name (the video model's extra neck, sam2_convs) is not used by the
 *                 image model and goes with the tracker tensors;
 *   samc          Sam3Image names (samc synth, micro.safetensors, an earlier output);
 *   transformers  Sam3Model names (convert/hf_sam3_map.h), optionally under
 *                 "detector_model." with "tracker_model." / "tracker_neck." beside them
 *                 (a Sam3VideoModel checkpoint, which Sam3Model.from_pretrained also
 *                 reads), plus the config.json the checkpoint comes with.
 * The video-side tensors are written under their source names (never colliding with the
 * image model's) unless image_only drops them; transformers' tracker tensors are always
 * dropped (samc has no mapping for them). The RoPE tables (complex64 in sam3.pt) are
 * checked for shape and not written.
 *
 * Metadata written besides config, image_size and the source's name and sha256:
 *   SAM3_VOCAB_META_KEY     the vocabulary (convert/sam3_vocab.h), when one is given;
 *   SAM3_META_POINTS        "unsupported: ..." when the source had no point projections
 *                           (transformers layout): geometry_encoder.points_* are zeros
 *                           and point prompts must be refused;
 *   SAM3_META_VIDEO         how many video-side tensors were kept. */
#ifndef SAMC_SAM3_CONVERT_H
#define SAMC_SAM3_CONVERT_H
#include "convert/convert_report.h"
#include "loader/pt.h"
#include "loader/safetensors.h"
#include "model/samc.h"

#define SAM3_META_POINTS "sam3.point_prompts"
#define SAM3_META_VIDEO "sam3.video_tensors"

typedef enum { SAM3_LAYOUT_NONE, SAM3_LAYOUT_OFFICIAL, SAM3_LAYOUT_SAMC, SAM3_LAYOUT_TRANSFORMERS } sam3_layout;

typedef struct {
    const char *path;                     /* the input as given, for messages */
    const char *format;                   /* "pt", "safetensors" or "transformers" */
    const st_tensor *tensors;
    int n;
    const pt_skipped_tensor *skipped;     /* complex tensors of a .pt (not loaded) */
    int n_skipped;
    const char *source_sha256;
    const char *hf_config;                /* transformers: the config.json path */
} sam3_source;

/* What sam3_inspect finds, without converting. */
typedef struct {
    sam3_layout layout;
    const char *config;            /* NULL when no config matched (detail says why) */
    int n_image, n_video;          /* image-model tensors (as samc names them), video-side ones */
    int64_t n_params;              /* values of the image-model tensors */
    char detail[SAMC_ERRMSG];
} sam3_inspection;

/* Sorts and checks src's tensors as sam3_convert_source does (the transformers
 * config.json is not read). Returns 0 (config NULL and detail set when they form no
 * complete model), or -1 with err on failure to read them. */
int sam3_inspect(const sam3_source *src, sam3_inspection *out, samc_error *err);

/* Which SAM3 layout the names are in, or SAM3_LAYOUT_NONE (not SAM3: SAM2.1 or foreign). */
sam3_layout sam3_layout_of(const st_tensor *t, int n, const pt_skipped_tensor *skipped, int n_skipped);

/* Converts src (layout as sam3_layout_of says; transformers when src->hf_config is set)
 * and writes out_path. */
int sam3_convert_source(const sam3_source *src, const char *out_path, st_dtype target, int image_only,
                        const char *vocab, samc_convert_report *rep, samc_error *err);

#endif
