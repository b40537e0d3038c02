/* model/sam2/transformer.c: sam2/modeling/sam/transformer.py Attention,
 * TwoWayAttentionBlock and TwoWayTransformer (weights sam_mask_decoder.transformer.*:
 * layers.<i>.self_attn, layers.<i>.cross_attn_token_to_image,
 * layers.<i>.cross_attn_image_to_token, layers.<i>.norm1..4, layers.<i>.mlp,
 * final_attn_token_to_image, norm_final_attn), for a batch of B prompt items over one
 * image. Sequences are [B, T, C] rows. */
#include <math.h>
#include <stdio.h>

#include "model/sam2/sam2.h"

#define I64(x) ((int64_t)(x))

static void attention_bind(rt_binder *b, sam2_attention_weights *a, const char *prefix, int C, int internal, int heads) {
    char k[256];
    a->internal_dim = internal;
    a->heads = heads;
    snprintf(k, sizeof k, "%s.q_proj", prefix); rt_bind_linear(b, &a->q_proj, k, internal, C, 1);
    snprintf(k, sizeof k, "%s.k_proj", prefix); rt_bind_linear(b, &a->k_proj, k, internal, C, 1);
    snprintf(k, sizeof k, "%s.v_proj", prefix); rt_bind_linear(b, &a->v_proj, k, internal, C, 1);
    snprintf(k, sizeof k, "%s.out_proj", prefix); rt_bind_linear(b, &a->out_proj, k, C, internal, 1);
}

void sam2_two_way_transformer_bind(rt_binder *b, const sam2_config *c, sam2_two_way_transformer_weights *t) {
    int C = c->d_model, H = c->dec_heads, cross = C / c->dec_attn_downsample;
    char p[128], k[192];
    t->depth = c->dec_depth < 2 ? c->dec_depth : 2;
    for (int l = 0; l < t->depth; l++) {
        sam2_two_way_attention_block_weights *L = &t->layers[l];
        snprintf(p, sizeof p, "sam_mask_decoder.transformer.layers.%d", l);
        snprintf(k, sizeof k, "%s.self_attn", p); attention_bind(b, &L->self_attn, k, C, C, H);
        snprintf(k, sizeof k, "%s.cross_attn_token_to_image", p);
        attention_bind(b, &L->cross_attn_token_to_image, k, C, cross, H);
        snprintf(k, sizeof k, "%s.cross_attn_image_to_token", p);
        attention_bind(b, &L->cross_attn_image_to_token, k, C, cross, H);
        snprintf(k, sizeof k, "%s.norm1", p); rt_bind_norm(b, &L->norm1, k, C);
        snprintf(k, sizeof k, "%s.norm2", p); rt_bind_norm(b, &L->norm2, k, C);
        snprintf(k, sizeof k, "%s.norm3", p); rt_bind_norm(b, &L->norm3, k, C);
        snprintf(k, sizeof k, "%s.norm4", p); rt_bind_norm(b, &L->norm4, k, C);
        snprintf(k, sizeof k, "%s.mlp.layers.0", p); rt_bind_linear(b, &L->mlp0, k, c->dec_mlp_dim, C, 1);
        snprintf(k, sizeof k, "%s.mlp.layers.1", p); rt_bind_linear(b, &L->mlp1, k, C, c->dec_mlp_dim, 1);
    }
    attention_bind(b, &t->final_attn_token_to_image, "sam_mask_decoder.transformer.final_attn_token_to_image", C, cross,
                   H);
    rt_bind_norm(b, &t->norm_final_attn, "sam_mask_decoder.transformer.norm_final_attn", C);
}

int sam2_two_way_scratch_alloc(sam2_model *m, int B, int T, int HW, sam2_two_way_scratch *s, samc_error *err) {
    size_t big = (size_t)B * HW * m->C, F = (size_t)m->cfg->dec_mlp_dim;
    RT_ALLOC(&m->rt, s->qpe, (size_t)B * T * m->C);
    RT_ALLOC(&m->rt, s->kpe, big);
    RT_ALLOC(&m->rt, s->tmp, big);
    RT_ALLOC(&m->rt, s->q, big);
    RT_ALLOC(&m->rt, s->k, big);
    RT_ALLOC(&m->rt, s->v, big);
    RT_ALLOC(&m->rt, s->o, big);
    RT_ALLOC(&m->rt, s->hidden, (size_t)B * T * (F > (size_t)m->C ? F : (size_t)m->C));
    return 0;
}

/* Attention.forward: out[B,Tq,C] = out_proj(MHA(q_proj(qin), k_proj(kin), v_proj(vin))).
 * kv_shared: every batch item has the same keys/values (the first token->image attention
 * when no item has a mask prompt), so they are projected once and read with stride 0. */
static void attention(sam2_model *m, const sam2_attention_weights *at, const float *qin, int Tq, const float *kin,
                      const float *vin, int Tk, int B, int kv_shared, float *out, const sam2_two_way_scratch *s) {
    const samc_ops *o = m->rt.ops;
    int C = m->C, D = at->internal_dim, hd = D / at->heads, Bkv = kv_shared ? 1 : B;
    o->linear(o, qin, at->q_proj.w, at->q_proj.b, s->q, B * Tq, D, C);
    o->linear(o, kin, at->k_proj.w, at->k_proj.b, s->k, Bkv * Tk, D, C);
    o->linear(o, vin, at->v_proj.w, at->v_proj.b, s->v, Bkv * Tk, D, C);
    ptrdiff_t kv_sb = kv_shared ? 0 : (ptrdiff_t)Tk * D;
    samc_attention_args a = {
        .batch = B, .heads = at->heads, .n_q = Tq, .n_kv = Tk, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
        .q = s->q, .q_sb = (ptrdiff_t)Tq * D, .q_sh = hd, .q_st = D,
        .k = s->k, .k_sb = kv_sb, .k_sh = hd, .k_st = D,
        .v = s->v, .v_sb = kv_sb, .v_sh = hd, .v_st = D,
        .out = s->o, .o_sb = (ptrdiff_t)Tq * D, .o_sh = hd, .o_st = D,
    };
    o->attention(o, &a);
    o->linear(o, s->o, at->out_proj.w, at->out_proj.b, out, B * Tq, C, D);
}

/* TwoWayAttentionBlock.forward: (1) self-attention of the queries (the first block
 * skips the PE and the residual), (2) token -> image cross-attention, (3) MLP (ReLU),
 * (4) image -> token cross-attention updating the keys; LayerNorm eps 1e-5 after each. */
static void two_way_attention_block(sam2_model *m, const sam2_two_way_attention_block_weights *L, int skip_first_layer_pe,
                                    float *queries, const float *tokens, int T, float *keys, const float *key_pe,
                                    int HW, int B, int kv_shared, const sam2_two_way_scratch *s) {
    const samc_ops *o = m->rt.ops;
    int C = m->C, F = m->cfg->dec_mlp_dim;
    size_t nq = (size_t)B * T * C, big = (size_t)B * HW * C;
    if (skip_first_layer_pe) {
        attention(m, &L->self_attn, queries, T, queries, queries, T, B, 0, s->qpe, s);
        o->copy(o, queries, s->qpe, nq);
    } else {
        o->add(o, s->qpe, queries, tokens, nq, nq);
        attention(m, &L->self_attn, s->qpe, T, s->qpe, queries, T, B, 0, s->tmp, s);
        o->add(o, queries, queries, s->tmp, nq, nq);
    }
    o->layer_norm(o, queries, L->norm1.w, L->norm1.b, queries, B * T, C, 1e-5f);
    o->add(o, s->qpe, queries, tokens, nq, nq);
    o->add(o, s->kpe, keys, key_pe, big, (size_t)HW * C);
    attention(m, &L->cross_attn_token_to_image, s->qpe, T, s->kpe, keys, HW, B, kv_shared, s->tmp, s);
    o->add(o, queries, queries, s->tmp, nq, nq);
    o->layer_norm(o, queries, L->norm2.w, L->norm2.b, queries, B * T, C, 1e-5f);
    o->linear(o, queries, L->mlp0.w, L->mlp0.b, s->hidden, B * T, F, C);
    o->relu(o, s->hidden, (size_t)B * T * F);
    o->linear(o, s->hidden, L->mlp1.w, L->mlp1.b, s->tmp, B * T, C, F);
    o->add(o, queries, queries, s->tmp, nq, nq);
    o->layer_norm(o, queries, L->norm3.w, L->norm3.b, queries, B * T, C, 1e-5f);
    o->add(o, s->qpe, queries, tokens, nq, nq);
    attention(m, &L->cross_attn_image_to_token, s->kpe, HW, s->qpe, queries, T, B, 0, s->tmp, s);
    o->add(o, keys, keys, s->tmp, big, big);
    o->layer_norm(o, keys, L->norm4.w, L->norm4.b, keys, B * HW, C, 1e-5f);
}

void sam2_two_way_transformer(sam2_model *m, const sam2_two_way_transformer_weights *t, float *queries, const float *tokens,
                              int T, float *keys, const float *key_pe, int HW, int B, int kv_shared,
                              const sam2_two_way_scratch *s) {
    const samc_ops *o = m->rt.ops;
    int C = m->C;
    size_t nq = (size_t)B * T * C, big = (size_t)B * HW * C;
    for (int l = 0; l < t->depth; l++) {
        two_way_attention_block(m, &t->layers[l], l == 0, queries, tokens, T, keys, key_pe, HW, B,
                                l == 0 && kv_shared, s);
        char name[48];
        snprintf(name, sizeof name, "decoder.layer%d.queries", l);
        rt_dump(&m->rt, name, queries, 3, I64(B), I64(T), I64(C));
        snprintf(name, sizeof name, "decoder.layer%d.keys", l);
        rt_dump(&m->rt, name, keys, 3, I64(B), I64(HW), I64(C));
    }
    /* final token -> image attention, then norm_final_attn */
    o->add(o, s->qpe, queries, tokens, nq, nq);
    o->add(o, s->kpe, keys, key_pe, big, (size_t)HW * C);
    attention(m, &t->final_attn_token_to_image, s->qpe, T, s->kpe, keys, HW, B, 0, s->tmp, s);
    o->add(o, queries, queries, s->tmp, nq, nq);
    o->layer_norm(o, queries, t->norm_final_attn.w, t->norm_final_attn.b, queries, B * T, C, 1e-5f);
}
