/* model/sam3/encoder.c: sam3/model/encoder.py TransformerEncoderLayer (pre-norm: the
 * fusion encoder's layers and the geometry encoder's) and TransformerEncoderFusion
 * (weights transformer.encoder.layers.*): the 1x image level attends to itself (with its
 * sine PE on queries and keys) and then to the prompt. The prompt is not updated and no
 * pooled text is added to the image (add_pooled_text_to_img_feat is False). */
#include <stdio.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

void sam3_encoder_layer_bind(rt_binder *b, sam3_encoder_layer_weights *w, const char *prefix, int d, int heads,
                             int ffn) {
    char k[256];
    snprintf(k, sizeof k, "%s.self_attn", prefix); sam3_mha_bind(b, &w->self_attn, k, d, heads);
    snprintf(k, sizeof k, "%s.cross_attn_image", prefix); sam3_mha_bind(b, &w->cross_attn_image, k, d, heads);
    snprintf(k, sizeof k, "%s.linear1", prefix); rt_bind_linear(b, &w->linear1, k, ffn, d, 1);
    snprintf(k, sizeof k, "%s.linear2", prefix); rt_bind_linear(b, &w->linear2, k, d, ffn, 1);
    snprintf(k, sizeof k, "%s.norm1", prefix); rt_bind_norm(b, &w->norm1, k, d);
    snprintf(k, sizeof k, "%s.norm2", prefix); rt_bind_norm(b, &w->norm2, k, d);
    snprintf(k, sizeof k, "%s.norm3", prefix); rt_bind_norm(b, &w->norm3, k, d);
}

void sam3_fusion_encoder_bind(rt_binder *b, const sam3_config *c, sam3_encoder_layer_weights *layers) {
    char p[128];
    for (int i = 0; i < c->enc_layers && i < SAM3_MAX_LAYERS; i++) {
        snprintf(p, sizeof p, "transformer.encoder.layers.%d", i);
        sam3_encoder_layer_bind(b, &layers[i], p, c->d_model, c->enc_heads, c->enc_ffn);
    }
}

/* TransformerEncoderLayer.forward_pre:
 *   t2 = norm1(tgt); tgt += self_attn(q = k = t2 (+ query_pos), v = t2)
 *   t2 = norm2(tgt); tgt += cross_attn_image(q = t2, k = mem_k, v = mem_v)
 *   t2 = norm3(tgt); tgt += linear2(relu(linear1(t2)))                          */
int sam3_encoder_layer(sam3_model *m, const sam3_encoder_layer_weights *w, float *tgt, int T, const float *query_pos,
                       const samc_attention_bias *self_bias, const float *mem_k, const float *mem_v, int M,
                       const samc_attention_bias *mem_bias, int ffn, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int d = m->D;
    size_t n = (size_t)T * d, mark = rt_arena_mark(&m->rt);
    float *t2, *qk = NULL, *a;
    RT_ALLOC(&m->rt, t2, n);
    if (query_pos) RT_ALLOC(&m->rt, qk, n);
    RT_ALLOC(&m->rt, a, n);
    o->layer_norm(o, tgt, w->norm1.w, w->norm1.b, t2, T, d, 1e-5f);
    const float *q = t2;
    if (query_pos) {
        o->add(o, qk, t2, query_pos, n, n);
        q = qk;
    }
    if (sam3_multihead_attention(m, &w->self_attn, q, q, t2, T, T, self_bias, a, err)) return -1;
    o->add(o, tgt, tgt, a, n, n);
    o->layer_norm(o, tgt, w->norm2.w, w->norm2.b, t2, T, d, 1e-5f);
    if (sam3_multihead_attention(m, &w->cross_attn_image, t2, mem_k, mem_v, T, M, mem_bias, a, err)) return -1;
    o->add(o, tgt, tgt, a, n, n);
    o->layer_norm(o, tgt, w->norm3.w, w->norm3.b, t2, T, d, 1e-5f);
    if (sam3_ffn(m, &w->linear1, &w->linear2, t2, T, ffn, a, err)) return -1;
    o->add(o, tgt, tgt, a, n, n);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* TransformerEncoderFusion.forward (one level): src = the 1x neck level as tokens, pos =
 * its sine PE; every layer attends to the prompt (keys and values, no PE) with its
 * padding mask. memory [g*g, d] is the last layer's output.
 * In the reduced precisions (bf16 / fp16 on CUDA) the layers run in the 16-bit phase
 * (sam3_lowp_begin): their norms, projections, attentions (the self-attention over the
 * g*g tokens, most of the encoder's FLOPs, on the tensor cores) and FFN in 16 bits, while
 * memory, written in fp32 before the phase and updated in place by the residual adds
 * (an op in place keeps the type it read), stays fp32 for the decoder. */
int sam3_fusion_encoder(sam3_model *m, const sam3_image *img, const float *prompt, int S,
                        const samc_attention_bias *prompt_bias, float *memory, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int d = m->D, HW = m->g * m->g, lowp, rc = 0;
    size_t mark = rt_arena_mark(&m->rt);
    double t0 = rt_now_ms();
    o->transpose(o, img->fpn[2], memory, 1, d, HW);
    rt_dump(&m->rt, "enc.pos", m->pe_tok, 3, I64(HW), I64(1), I64(d));
    if (sam3_lowp_begin(m, &lowp, err)) return -1;
    for (int i = 0; i < m->cfg->enc_layers && !rc; i++) {
        rc = sam3_encoder_layer(m, &m->enc[i], memory, HW, m->pe_tok, NULL, prompt, prompt, S, prompt_bias,
                                m->cfg->enc_ffn, err);
        char name[32];
        snprintf(name, sizeof name, "enc.layer%d", i);
        if (!rc) rt_dump(&m->rt, name, memory, 3, I64(1), I64(HW), I64(d));
    }
    sam3_lowp_end(m, lowp);
    rt_arena_reset(&m->rt, mark);
    if (rc) return -1;
    rt_dump(&m->rt, "enc.memory", memory, 3, I64(HW), I64(1), I64(d));
    m->timings.fusion_ms = rt_now_ms() - t0;
    return 0;
}
