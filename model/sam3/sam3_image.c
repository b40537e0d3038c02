/* model/sam3/sam3_image.c: sam3/model/sam3_image.py Sam3Image.forward_grounding for one
 * prompt over an encoded image: _encode_prompt (text features + geometry encoder, the
 * prompt = their concatenation with its padding mask), _run_encoder (fusion encoder),
 * _run_decoder with _update_scores_and_boxes (decoder, dot-product scoring, boxes) and
 * _run_segmentation_heads. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

/* _encode_prompt: prompt [S, d] = [text features (all 32 positions), geometry tokens];
 * mask = [ids == 0, geometry padding (none)] as valid[S] and an additive key bias
 * row (0 / -inf) in backend memory. The text features of the last SAM3_TEXT_CACHE texts
 * are kept (m->text_cache) and reused for the same ids (not while dumping: the dumps
 * record every stage). */
static int encode_prompt(sam3_model *m, const sam3_image *img, const sam3_prompt *p, float *prompt, int *valid,
                         float *bias_row, samc_error *err) {
    int d = m->D, G = p->n_points + p->n_boxes + 1, S = SAM3_CTX + G;
    double t0 = rt_now_ms();
    const samc_ops *o = m->rt.ops;
    size_t nt = (size_t)SAM3_CTX * d;
    int slot = -1;
    for (int i = 0; i < SAM3_TEXT_CACHE && !rt_dumping(&m->rt); i++)
        if (m->text_cache_valid[i] && !memcmp(m->text_cache_ids[i], p->ids, sizeof m->text_cache_ids[i])) slot = i;
    m->timings.text_reused = slot >= 0;
    if (slot >= 0) {
        o->copy(o, prompt, m->text_cache + (size_t)slot * nt, nt);
    } else {
        slot = m->text_cache_next;
        m->text_cache_next = (slot + 1) % SAM3_TEXT_CACHE;
        m->text_cache_valid[slot] = 0;
        if (sam3_text_encoder(m, p->ids, prompt, err)) return -1;
        o->copy(o, m->text_cache + (size_t)slot * nt, prompt, nt);
        memcpy(m->text_cache_ids[slot], p->ids, sizeof m->text_cache_ids[slot]);
        m->text_cache_valid[slot] = !m->rt.arena.planning;   /* a plan computes nothing */
    }
    rt_mark(&m->rt, RT_MARK_S3_TEXT);
    m->timings.text_ms = rt_now_ms() - t0;
    if (sam3_geometry_encoder(m, img, p, prompt + (size_t)SAM3_CTX * d, err)) return -1;
    float row[SAM3_MAX_PROMPT], mask[SAM3_MAX_PROMPT];
    for (int t = 0; t < S; t++) {
        valid[t] = t >= SAM3_CTX || p->ids[t] != 0;
        row[t] = valid[t] ? 0.0f : -INFINITY;
        mask[t] = (float)!valid[t];
    }
    rt_upload(m->rt.ops, bias_row, row, sizeof(float) * (size_t)S);
    rt_dump(&m->rt, "prompt.tokens", prompt, 3, I64(S), I64(1), I64(d));
    rt_dump_host(&m->rt, "prompt.mask", mask, 2, I64(1), I64(S));
    rt_mark(&m->rt, RT_MARK_S3_PROMPT);
    m->timings.prompt_ms = rt_now_ms() - t0;
    return 0;
}

/* The forward_grounding outputs as recorded (batch 1): logits, boxes (cxcywh and xyxy),
 * the presence logit of the last layer. */
static void dump_outputs(sam3_model *m, const float *logits, const float *boxes, float presence) {
    if (!rt_dumping(&m->rt)) return;
    int Q = m->Q;
    float xyxy[4 * 256];
    rt_dump_host(&m->rt, "out.pred_logits", logits, 3, I64(1), I64(Q), I64(1));
    rt_dump_host(&m->rt, "out.pred_boxes", boxes, 3, I64(1), I64(Q), I64(4));
    for (int q = 0; q < Q && q < 256; q++) {
        const float *b = boxes + 4 * q;
        xyxy[4 * q] = b[0] - 0.5f * b[2];
        xyxy[4 * q + 1] = b[1] - 0.5f * b[3];
        xyxy[4 * q + 2] = b[0] + 0.5f * b[2];
        xyxy[4 * q + 3] = b[1] + 0.5f * b[3];
    }
    if (Q <= 256) rt_dump_host(&m->rt, "out.pred_boxes_xyxy", xyxy, 3, I64(1), I64(Q), I64(4));
    rt_dump_host(&m->rt, "out.presence_logit_dec", &presence, 2, I64(1), I64(1));
}

int sam3_forward_grounding(sam3_model *m, const sam3_image *img, const sam3_prompt *p, sam3_grounding *out,
                           samc_error *err) {
    int d = m->D, Q = m->Q, L = m->dec.layers, HW = m->g * m->g;
    int G = p->n_points + p->n_boxes + 1, S = SAM3_CTX + G;
    size_t mark = rt_arena_mark(&m->rt);
    float *prompt, *bias_row, *memory, *hs;
    RT_ALLOC(&m->rt, prompt, (size_t)S * d);
    RT_ALLOC(&m->rt, bias_row, (size_t)S);
    RT_ALLOC(&m->rt, memory, (size_t)HW * d);
    RT_ALLOC(&m->rt, hs, (size_t)L * Q * d);
    int valid[SAM3_MAX_PROMPT];
    rt_mark(&m->rt, RT_MARK_S3_BEGIN);
    if (encode_prompt(m, img, p, prompt, valid, bias_row, err)) return -1;
    samc_attention_bias key_mask = { bias_row, 0, 0, 0 };
    if (sam3_fusion_encoder(m, img, prompt, S, &key_mask, memory, err)) return -1;
    rt_mark(&m->rt, RT_MARK_S3_FUSION);
    if (sam3_decoder(m, memory, prompt, S, &key_mask, hs, m->h_refs, m->h_presence, err)) return -1;
    double t0 = rt_now_ms();
    if (sam3_dot_product_scoring(m, hs, prompt, S, valid, m->h_logits, err)) return -1;
    m->timings.decoder_ms += rt_now_ms() - t0;
    rt_mark(&m->rt, RT_MARK_S3_DECODER);
    if (sam3_segmentation_head(m, img, memory, hs + (size_t)(L - 1) * Q * d, prompt, S, &key_mask, out->masks, err))
        return -1;
    rt_mark(&m->rt, RT_MARK_S3_SEG);
    out->logits = m->h_logits + (size_t)(L - 1) * Q;
    out->boxes = m->h_dec;   /* the decoder's last refined boxes = pred_boxes */
    out->presence_logit = m->h_presence[L - 1];
    dump_outputs(m, out->logits, out->boxes, out->presence_logit);
    rt_arena_reset(&m->rt, mark);
    return rt_sync(&m->rt, "grounding", err);
}
