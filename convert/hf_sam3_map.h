/* convert/hf_sam3_map.h: tensor names of HuggingFace transformers' Sam3Model and of the
 * official Sam3Image, in both directions.
 *
 * The correspondence is the one transformers' own conversion script defines
 * (huggingface/transformers, src/transformers/models/sam3/convert_sam3_to_hf.py:
 * ORIGINAL_TO_CONVERTED_KEY_MAPPING, split_qkv, the cls-row strip of the position
 * embeddings and the transpose of the CLIP text projection), written here as a table of
 * name prefixes; no code of it is used. Names on both sides are without any prefix
 * ("detector." in sam3.pt, "detector_model." in a Sam3VideoModel file).
 *
 * Tensor by tensor (official <- transformers):
 *   RENAME     the same values under another name;
 *   QKV        the ViT's attn.qkv and every nn.MultiheadAttention in_proj_weight /
 *              in_proj_bias [3d, ...] are HF's q_proj, k_proj, v_proj [d, ...] stacked
 *              along dim 0 in that order;
 *   POS_CLS    trunk.pos_embed [1, 1 + P, C] is HF's position_embeddings [1, P, C] after
 *              a cls row, which the official forward drops (vitdet get_abs_pos with
 *              retain_cls_token=False): HF does not keep it, samc writes zeros there;
 *   TRANSPOSE  language_backbone.encoder.text_projection [W, 512] is HF's
 *              text_encoder.text_projection.weight [512, W] transposed (it is in both
 *              checkpoints but neither image model uses it).
 * Official tensors with no HF counterpart (hf_sam3_from_official returns 0):
 *   the ViT's attn.freqs_cis RoPE tables (computed: HF's rotary_emb, samc at load), and
 *   geometry_encoder.points_{direct,pool,pos_enc}_project.{weight,bias}: transformers'
 *   geometry encoder has no point branch (its Sam3Model takes no point prompts), so a
 *   file converted from the HF layout cannot run point prompts (sam3_convert.h). */
#ifndef SAMC_HF_SAM3_MAP_H
#define SAMC_HF_SAM3_MAP_H
#include <stddef.h>

#define HF_SAM3_NAME_MAX 160

typedef enum { HF_SAM3_RENAME, HF_SAM3_QKV, HF_SAM3_POS_CLS, HF_SAM3_TRANSPOSE } hf_sam3_kind;

/* Why an official tensor has no HF name. */
typedef enum { HF_SAM3_ABSENT_COMPUTED = 1, HF_SAM3_ABSENT_POINTS = 2 } hf_sam3_absent;

/* The official name of transformers tensor `hf` into official[size]; *part is 0, 1, 2
 * for HF's q_proj, k_proj, v_proj of a QKV tensor (else 0). Returns 0, or -1 when `hf`
 * is not a tensor name of transformers' Sam3Model (or does not fit). */
int hf_sam3_to_official(const char *hf, char *official, size_t size, hf_sam3_kind *kind, int *part);

/* The transformers names of official tensor `official`: returns how many (1, or 3 for
 * QKV: q, k, v in that order) written to hf[], 0 when it has none (*absent says why),
 * -1 when `official` is not a Sam3Image tensor name. */
int hf_sam3_from_official(const char *official, char hf[3][HF_SAM3_NAME_MAX], hf_sam3_kind *kind,
                          hf_sam3_absent *absent);

#endif
