/* model/sam3/model_misc.c: the small shared modules, sam3/model/model_misc.py (MLP,
 * DotProductScoring, inverse_sigmoid) and torch.nn.MultiheadAttention, which every SAM3
 * attention except the ViT's is. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

/* ---- torch.nn.MultiheadAttention ----------------------------------------------------- */

void sam3_mha_bind(rt_binder *b, sam3_mha_weights *w, const char *prefix, int d, int heads) {
    char k[256];
    snprintf(k, sizeof k, "%s.in_proj_weight", prefix);
    w->in_w = rt_bind_matrix(b, k, 2, I64(3 * d), I64(d));
    snprintf(k, sizeof k, "%s.in_proj_bias", prefix);
    w->in_b = rt_bind(b, k, 1, I64(3 * d));
    snprintf(k, sizeof k, "%s.out_proj", prefix);
    rt_bind_linear(b, &w->out_proj, k, d, d, 1);
    w->d = d;
    w->heads = heads;
}

/* F.multi_head_attention_forward (batch 1, eval): q / k / v are the input rows times the
 * thirds of in_proj_weight plus their bias; heads are contiguous slices of d / heads;
 * softmax(q k^T / sqrt(d / heads) + bias) v; then out_proj. Inputs given by the same
 * pointer share one product over the adjacent thirds (each output value is the same dot
 * product either way). */
int sam3_multihead_attention(sam3_model *m, const sam3_mha_weights *w, const float *q_in, const float *k_in,
                             const float *v_in, int Nq, int Nk, const samc_attention_bias *bias, float *out,
                             samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int d = w->d, hd = d / w->heads;
    size_t mark = rt_arena_mark(&m->rt);
    float *qp, *kp, *vp, *att;
    ptrdiff_t qs = d, ks = d, vs = d;   /* row strides of the projections */
    RT_ALLOC(&m->rt, att, (size_t)Nq * d);
    if (q_in == k_in && k_in == v_in) {          /* self-attention on one input */
        RT_ALLOC(&m->rt, qp, (size_t)Nq * 3 * d);
        o->linear(o, q_in, w->in_w, w->in_b, qp, Nq, 3 * d, d);
        kp = qp + d;
        vp = qp + 2 * d;
        qs = ks = vs = 3 * d;
    } else if (q_in == k_in) {                   /* q = k = x + pos, v = x */
        RT_ALLOC(&m->rt, qp, (size_t)Nq * 2 * d);
        RT_ALLOC(&m->rt, vp, (size_t)Nk * d);
        o->linear(o, q_in, w->in_w, w->in_b, qp, Nq, 2 * d, d);
        o->linear(o, v_in, w->in_w + (size_t)2 * d * d, w->in_b + 2 * d, vp, Nk, d, d);
        kp = qp + d;
        qs = ks = 2 * d;
    } else if (k_in == v_in) {                   /* cross-attention to one memory */
        RT_ALLOC(&m->rt, qp, (size_t)Nq * d);
        RT_ALLOC(&m->rt, kp, (size_t)Nk * 2 * d);
        o->linear(o, q_in, w->in_w, w->in_b, qp, Nq, d, d);
        o->linear(o, k_in, w->in_w + (size_t)d * d, w->in_b + d, kp, Nk, 2 * d, d);
        vp = kp + d;
        ks = vs = 2 * d;
    } else {
        RT_ALLOC(&m->rt, qp, (size_t)Nq * d);
        RT_ALLOC(&m->rt, kp, (size_t)Nk * d);
        RT_ALLOC(&m->rt, vp, (size_t)Nk * d);
        o->linear(o, q_in, w->in_w, w->in_b, qp, Nq, d, d);
        o->linear(o, k_in, w->in_w + (size_t)d * d, w->in_b + d, kp, Nk, d, d);
        o->linear(o, v_in, w->in_w + (size_t)2 * d * d, w->in_b + 2 * d, vp, Nk, d, d);
    }
    samc_attention_args a = {
        .batch = 1, .heads = w->heads, .n_q = Nq, .n_kv = Nk, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
        .q = qp, .q_sb = 0, .q_sh = hd, .q_st = qs,
        .k = kp, .k_sb = 0, .k_sh = hd, .k_st = ks,
        .v = vp, .v_sb = 0, .v_sh = hd, .v_st = vs,
        .out = att, .o_sb = 0, .o_sh = hd, .o_st = d,
    };
    if (bias) o->attention_biased(o, &a, bias);
    else o->attention(o, &a);
    o->linear(o, att, w->out_proj.w, w->out_proj.b, out, Nq, d, d);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* ---- model_misc.MLP, inverse_sigmoid -------------------------------------------------- */

/* model_misc.MLP.forward (no residual, no out_norm: the callers that have them add them). */
int sam3_mlp(sam3_model *m, const rt_mlp *w, const float *x, int N, int in, int hidden, int out, float *y,
             samc_error *err) {
    const samc_ops *o = m->rt.ops;
    size_t mark = rt_arena_mark(&m->rt);
    float *h[2];
    RT_ALLOC(&m->rt, h[0], (size_t)N * hidden);
    RT_ALLOC(&m->rt, h[1], (size_t)N * hidden);
    const float *cur = x;
    for (int i = 0; i < w->n_layers; i++) {
        int a = i == 0 ? in : hidden, last = i == w->n_layers - 1, c = last ? out : hidden;
        float *dst = last ? y : h[i % 2];
        /* linear, then ReLU but after the last layer: one linear_act (same bits) */
        o->linear_act(o, cur, w->layers[i].w, w->layers[i].b, dst, N, c, a, last ? SAMC_ACT_NONE : SAMC_ACT_RELU,
                      NULL);
        cur = dst;
    }
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* The transformer layers' feed-forward block (linear1, ReLU, linear2; dropout is off):
 * x [T, d] -> out [T, d]. */
int sam3_ffn(sam3_model *m, const rt_linear *linear1, const rt_linear *linear2, const float *x, int T, int ffn,
             float *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int d = m->D;
    size_t mark = rt_arena_mark(&m->rt);
    float *h;
    RT_ALLOC(&m->rt, h, (size_t)T * ffn);
    o->linear_act(o, x, linear1->w, linear1->b, h, T, ffn, d, SAMC_ACT_RELU, NULL); /* linear1 + ReLU, same bits */
    o->linear(o, h, linear2->w, linear2->b, out, T, d, ffn);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* x clamped to [0, 1], then log(max(x, eps) / max(1 - x, eps)). */
float sam3_inverse_sigmoid(float x) {
    const float eps = 1e-3f;
    x = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
    float x1 = x < eps ? eps : x, x2 = 1.0f - x;
    x2 = x2 < eps ? eps : x2;
    return logf(x1 / x2);
}

/* ---- the 16-bit phase (sam3.h) --------------------------------------------------------- */

int sam3_lowp_begin(sam3_model *m, int *on, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    *on = 0;
    if (m->rt.opt.precision == SAMC_PRECISION_FP32) return 0;
    /* the pad keeps 16-bit activations clear of the fp32 ones below (device backends);
     * the CPU's bf16 writes fp32, so it needs none. Also when planning (the planning ops
     * have no phases). */
    if (m->rt.opt.backend == SAMC_BACKEND_CUDA) {
        float *pad;
        RT_ALLOC(&m->rt, pad, rt_arena_mark(&m->rt) / sizeof(float));
        (void)pad;
    }
    if (o->activation_precision) {
        o->activation_precision(o, 1);
        *on = 1;
    }
    return 0;
}

void sam3_lowp_end(sam3_model *m, int on) {
    if (on) m->rt.ops->activation_precision(m->rt.ops, 0);
}

/* The sine code of one coordinate shared by model_misc.gen_sineembed_for_position and
 * PositionEmbeddingSine._encode_xy: e = v * 2 pi, then e / dim_t[k] with dim_t[k] =
 * 1e4^(2 floor(k/2) / n), sin at even k, cos at odd k, in float: out[n]. */
void sam3_sine_encode(float v, int n, float *out) {
    float e = v * (float)(2.0 * M_PI);
    for (int k = 0; k < n; k++) {
        float t = e / powf(10000.0f, (float)(2 * (k / 2)) / (float)n);
        out[k] = k % 2 ? cosf(t) : sinf(t);
    }
}

/* ---- model_misc.DotProductScoring -------------------------------------------------------- */

void sam3_scoring_bind(rt_binder *b, const sam3_config *c, sam3_scoring_weights *w) {
    int d = c->d_model;
    rt_bind_mlp(b, &w->prompt_mlp, "dot_prod_scoring.prompt_mlp", d, c->scoring_hidden, d, 2);
    rt_bind_norm(b, &w->prompt_mlp_out_norm, "dot_prod_scoring.prompt_mlp.out_norm", d);
    rt_bind_linear(b, &w->prompt_proj, "dot_prod_scoring.prompt_proj", d, d, 1);
    rt_bind_linear(b, &w->hs_proj, "dot_prod_scoring.hs_proj", d, d, 1);
}

/* prompt = LN(prompt + MLP(prompt)); pooled = mean of the valid rows (on the host: at
 * most a few dozen rows); logits = hs_proj(hs) . prompt_proj(pooled) * 1/sqrt(d),
 * clamped to +-12. */
int sam3_dot_product_scoring(sam3_model *m, const float *hs, const float *prompt, int S, const int *valid,
                             float *logits, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_scoring_weights *w = &m->score;
    int d = m->D, LQ = m->dec.layers * m->Q;
    size_t mark = rt_arena_mark(&m->rt);
    float *p, *pooled, *proj, *hsp, *sc;
    RT_ALLOC(&m->rt, p, (size_t)S * d);
    RT_ALLOC(&m->rt, pooled, (size_t)d);
    RT_ALLOC(&m->rt, proj, (size_t)d);
    RT_ALLOC(&m->rt, hsp, (size_t)LQ * d);
    RT_ALLOC(&m->rt, sc, (size_t)LQ);
    if (sam3_mlp(m, &w->prompt_mlp, prompt, S, d, m->cfg->scoring_hidden, d, p, err)) return -1;
    o->add(o, p, p, prompt, (size_t)S * d, (size_t)S * d);
    o->layer_norm(o, p, w->prompt_mlp_out_norm.w, w->prompt_mlp_out_norm.b, p, S, d, 1e-5f);
    rt_dump(&m->rt, "score.prompt_mlp", p, 3, I64(S), I64(1), I64(d));
    float *hp = m->h_small, *hpool = m->h_small + (size_t)SAM3_MAX_PROMPT * d;
    rt_download(o, hp, p, sizeof(float) * (size_t)S * d);
    if (rt_sync(&m->rt, "scoring", err)) return -1;
    int n_valid = 0;
    for (int c = 0; c < d; c++) hpool[c] = 0.0f;
    for (int t = 0; t < S; t++) {
        if (!valid[t]) continue;
        n_valid++;
        for (int c = 0; c < d; c++) hpool[c] += hp[(size_t)t * d + c];
    }
    for (int c = 0; c < d; c++) hpool[c] /= (float)(n_valid > 1 ? n_valid : 1);
    rt_upload(o, pooled, hpool, sizeof(float) * d);
    rt_dump(&m->rt, "score.pooled_prompt", pooled, 2, I64(1), I64(d));
    o->linear(o, pooled, w->prompt_proj.w, w->prompt_proj.b, proj, 1, d, d);
    rt_dump(&m->rt, "score.prompt_proj", proj, 2, I64(1), I64(d));
    o->linear(o, hs, w->hs_proj.w, w->hs_proj.b, hsp, LQ, d, d);
    rt_dump(&m->rt, "score.hs_proj", hsp, 4, I64(m->dec.layers), I64(1), I64(m->Q), I64(d));
    o->linear(o, hsp, proj, NULL, sc, LQ, 1, d);
    rt_download(o, logits, sc, sizeof(float) * (size_t)LQ);
    if (rt_sync(&m->rt, "scoring", err)) return -1;
    float scale = (float)(1.0 / sqrt((double)d));
    for (int i = 0; i < LQ; i++) {
        float v = logits[i] * scale;
        logits[i] = v > 12.0f ? 12.0f : v < -12.0f ? -12.0f : v;
    }
    rt_dump_host(&m->rt, "score.logits_all_layers", logits, 4, I64(m->dec.layers), I64(1), I64(m->Q), I64(1));
    rt_arena_reset(&m->rt, mark);
    return 0;
}
