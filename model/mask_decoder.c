/* model/mask_decoder.c: sam2/modeling/sam/mask_decoder.py MaskDecoder.predict_masks and
 * sam2/modeling/sam/transformer.py TwoWayTransformer / TwoWayAttentionBlock / Attention,
 * for a batch of B prompt items over one image (the image is shared, not copied). */
#include "model/sam2.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { float *q, *k, *v, *o; } attn_scratch;

/* transformer.Attention: out[B,Tq,C] = out_proj(MHA(q_proj(qin), k_proj(kin), v_proj(vin))).
 * kv_shared: every batch item has the same keys/values (the first token->image attention
 * when no item has a mask prompt), so they are projected once and read with stride 0. */
static void attention_forward(samc_model *m, const sam2_attention *at, const float *qin, int Tq,
                              const float *kin, const float *vin, int Tk, int B, int kv_shared, float *out,
                              const attn_scratch *s) {
    const samc_ops *o = m->ops;
    int C = m->C, D = at->internal_dim, hd = D / at->heads, Bkv = kv_shared ? 1 : B;
    o->linear(o, qin, at->q.w, at->q.b, s->q, B * Tq, D, C);
    o->linear(o, kin, at->k.w, at->k.b, s->k, Bkv * Tk, D, C);
    o->linear(o, vin, at->v.w, at->v.b, s->v, Bkv * Tk, D, C);
    ptrdiff_t kv_sb = kv_shared ? 0 : (ptrdiff_t)Tk * D;
    samc_attention_args a = {
        .batch = B, .heads = at->heads, .n_q = Tq, .n_kv = Tk, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
        .q = s->q, .q_sb = (ptrdiff_t)Tq * D, .q_sh = hd, .q_st = D,
        .k = s->k, .k_sb = kv_sb, .k_sh = hd, .k_st = D,
        .v = s->v, .v_sb = kv_sb, .v_sh = hd, .v_st = D,
        .out = s->o, .o_sb = (ptrdiff_t)Tq * D, .o_sh = hd, .o_st = D,
    };
    o->attention(o, &a);
    o->linear(o, s->o, at->out.w, at->out.b, out, B * Tq, C, D);
}

/* sam2 MLP (ReLU between layers) on rows x[rows, in] -> y[rows, out]; t0/t1 hold hidden rows. */
static void mlp_forward(samc_model *m, const sam2_mlp *mlp, const float *x, int rows, int in, int hidden, int outd,
                        float *t0, float *t1, float *y) {
    const samc_ops *o = m->ops;
    const float *cur = x;
    for (int l = 0; l < mlp->n_layers; l++) {
        int a = l == 0 ? in : hidden, b = l == mlp->n_layers - 1 ? outd : hidden;
        float *dst = l == mlp->n_layers - 1 ? y : (l % 2 == 0 ? t0 : t1);
        o->linear(o, cur, mlp->layers[l].w, mlp->layers[l].b, dst, rows, b, a);
        if (l < mlp->n_layers - 1) o->relu(o, dst, (size_t)rows * b);
        cur = dst;
    }
}

int sam2_mask_decoder_forward(samc_model *m, const samc_image *img, const float *sparse, int n_sparse,
                              const float *dense, int dense_shared, int B, float *all_masks, float *all_iou, float *obj_score,
                              int plan, samc_error *err) {
    const samc_ops *o = m->ops;
    const sam2_mask_decoder *d = &m->dec;
    int C = m->C, g = m->S / 16, HW = g * g, T = 6 + n_sparse, F = m->cfg->dec_mlp_dim;
    int g2 = 2 * g, g4 = 4 * g, C4 = C / 4, C8 = C / 8;
    size_t mark = arena_mark(&m->arena);
    float *tokens, *queries, *qpe, *keys, *kpe, *tmp, *hidden, *up1, *up2, *hyper, *hs_row, *t0, *t1;
    attn_scratch s;
    size_t big = (size_t)B * HW * C;
    ALLOC(tokens, (size_t)B * T * C);
    ALLOC(queries, (size_t)B * T * C);
    ALLOC(qpe, (size_t)B * T * C);
    ALLOC(keys, big);
    ALLOC(kpe, big);
    ALLOC(tmp, big);
    ALLOC(s.q, big);
    ALLOC(s.k, big);
    ALLOC(s.v, big);
    ALLOC(s.o, big);
    ALLOC(hidden, (size_t)B * T * (F > C ? F : C));
    ALLOC(up1, (size_t)B * C4 * g2 * g2);
    ALLOC(up2, (size_t)B * C8 * g4 * g4);
    ALLOC(hyper, (size_t)B * SAM2_NUM_MASK_TOKENS * C8);
    ALLOC(hs_row, (size_t)B * C);
    ALLOC(t0, (size_t)B * C);
    ALLOC(t1, (size_t)B * C);
    if (plan) { arena_reset(&m->arena, mark); return 0; }

    /* Tokens: [obj_score_token, iou_token, mask_tokens x4, sparse prompt embeddings]. */
    for (int b = 0; b < B; b++) {
        float *t = tokens + (size_t)b * T * C;
        o->copy(o, t, d->obj_score_token, C);
        o->copy(o, t + C, d->iou_token, C);
        o->copy(o, t + 2 * C, d->mask_tokens, 4 * (size_t)C);
        if (n_sparse) o->copy(o, t + 6 * C, sparse + (size_t)b * n_sparse * C, (size_t)n_sparse * C);
    }
    sam2_dump(m, "decoder.tokens_in", tokens, 3, (int64_t)B, (int64_t)T, (int64_t)C);
    /* src = image_embed (the same for every item) + dense prompt, [B, C, HW], then
     * flattened to the transformer's [B, HW, C]; the key PE is the dense PE, [HW, C]. */
    size_t chw = (size_t)C * HW;
    o->add(o, tmp, dense, img->image_embed, (size_t)B * chw, chw);
    sam2_dump(m, "decoder.src_in", tmp, 4, (int64_t)B, (int64_t)C, (int64_t)g, (int64_t)g);
    o->transpose(o, tmp, keys, B, C, HW);
    const float *pos = m->dense_pe_hwc;
    if (m->opt.dump) {
        float *rep = malloc(sizeof(float) * (size_t)B * chw);
        for (int b = 0; rep && b < B; b++) memcpy(rep + (size_t)b * chw, m->dense_pe_host, sizeof(float) * chw);
        if (rep) sam2_dump_host(m, "decoder.pos_src", rep, 4, (int64_t)B, (int64_t)C, (int64_t)g, (int64_t)g);
        free(rep);
    }
    o->copy(o, queries, tokens, (size_t)B * T * C);

    /* TwoWayTransformer: two TwoWayAttentionBlocks (the first skips the PE and the
     * residual in its self-attention), then a final token->image attention. */
    size_t nq = (size_t)B * T * C;
    for (int l = 0; l < m->cfg->dec_depth; l++) {
        const sam2_two_way_block *L = &d->layers[l];
        if (l == 0) {
            attention_forward(m, &L->self_attn, queries, T, queries, queries, T, B, 0, qpe, &s);
            o->copy(o, queries, qpe, nq);
        } else {
            o->add(o, qpe, queries, tokens, nq, nq);
            attention_forward(m, &L->self_attn, qpe, T, qpe, queries, T, B, 0, tmp, &s);
            o->add(o, queries, queries, tmp, nq, nq);
        }
        o->layer_norm(o, queries, L->norm1.w, L->norm1.b, queries, B * T, C, 1e-5f);
        /* token -> image */
        o->add(o, qpe, queries, tokens, nq, nq);
        o->add(o, kpe, keys, pos, big, (size_t)HW * C);
        attention_forward(m, &L->cross_token_to_image, qpe, T, kpe, keys, HW, B, l == 0 && dense_shared, tmp, &s);
        o->add(o, queries, queries, tmp, nq, nq);
        o->layer_norm(o, queries, L->norm2.w, L->norm2.b, queries, B * T, C, 1e-5f);
        /* MLP (ReLU) */
        o->linear(o, queries, L->mlp0.w, L->mlp0.b, hidden, B * T, F, C);
        o->relu(o, hidden, (size_t)B * T * F);
        o->linear(o, hidden, L->mlp1.w, L->mlp1.b, tmp, B * T, C, F);
        o->add(o, queries, queries, tmp, nq, nq);
        o->layer_norm(o, queries, L->norm3.w, L->norm3.b, queries, B * T, C, 1e-5f);
        /* image -> token: the keys attend to the prompt tokens */
        o->add(o, qpe, queries, tokens, nq, nq);
        attention_forward(m, &L->cross_image_to_token, kpe, HW, qpe, queries, T, B, 0, tmp, &s);
        o->add(o, keys, keys, tmp, big, big);
        o->layer_norm(o, keys, L->norm4.w, L->norm4.b, keys, B * HW, C, 1e-5f);
        char name[48];
        snprintf(name, sizeof name, "decoder.layer%d.queries", l);
        sam2_dump(m, name, queries, 3, (int64_t)B, (int64_t)T, (int64_t)C);
        snprintf(name, sizeof name, "decoder.layer%d.keys", l);
        sam2_dump(m, name, keys, 3, (int64_t)B, (int64_t)HW, (int64_t)C);
    }
    o->add(o, qpe, queries, tokens, nq, nq);
    o->add(o, kpe, keys, pos, big, (size_t)HW * C);
    attention_forward(m, &d->final_attn, qpe, T, kpe, keys, HW, B, 0, tmp, &s);
    o->add(o, queries, queries, tmp, nq, nq);
    o->layer_norm(o, queries, d->norm_final.w, d->norm_final.b, queries, B * T, C, 1e-5f);
    const float *hs = queries;
    sam2_dump(m, "decoder.hs", hs, 3, (int64_t)B, (int64_t)T, (int64_t)C);
    sam2_dump(m, "decoder.keys", keys, 3, (int64_t)B, (int64_t)HW, (int64_t)C);

    /* output_upscaling with the high-res features added before each LN / GELU:
     * act1(ln1(dc1(src) + feat_s1)), then act2(dc2(.) + feat_s0). */
    size_t n1 = (size_t)C4 * g2 * g2, n2 = (size_t)C8 * g4 * g4;
    o->transpose(o, keys, tmp, B, HW, C);
    for (int b = 0; b < B; b++)
        o->conv_transpose2x2(o, tmp + (size_t)b * chw, d->upscale_conv1.w, d->upscale_conv1.b, up1 + b * n1, C, g, g, C4);
    sam2_dump(m, "decoder.upscale.dc1", up1, 4, (int64_t)B, (int64_t)C4, (int64_t)g2, (int64_t)g2);
    o->add(o, up1, up1, img->feat_s1, (size_t)B * n1, n1);
    for (int b = 0; b < B; b++)
        o->layer_norm2d(o, up1 + b * n1, d->upscale_norm.w, d->upscale_norm.b, up1 + b * n1, C4, g2 * g2, 1e-6f);
    sam2_dump(m, "decoder.upscale.ln1", up1, 4, (int64_t)B, (int64_t)C4, (int64_t)g2, (int64_t)g2);
    o->gelu(o, up1, (size_t)B * n1);
    sam2_dump(m, "decoder.upscale.act1", up1, 4, (int64_t)B, (int64_t)C4, (int64_t)g2, (int64_t)g2);
    for (int b = 0; b < B; b++)
        o->conv_transpose2x2(o, up1 + b * n1, d->upscale_conv2.w, d->upscale_conv2.b, up2 + b * n2, C4, g2, g2, C8);
    sam2_dump(m, "decoder.upscale.dc2", up2, 4, (int64_t)B, (int64_t)C8, (int64_t)g4, (int64_t)g4);
    o->add(o, up2, up2, img->feat_s0, (size_t)B * n2, n2);
    o->gelu(o, up2, (size_t)B * n2);
    sam2_dump(m, "decoder.upscale.act2", up2, 4, (int64_t)B, (int64_t)C8, (int64_t)g4, (int64_t)g4);

    /* Hypernetworks: mask token i -> MLP_i -> [C/8]; masks = hyper_in @ upscaled. */
    float *mask_tokens_out = tmp; /* [B, 4, C] */
    for (int b = 0; b < B; b++)
        o->copy(o, mask_tokens_out + (size_t)b * 4 * C, hs + ((size_t)b * T + 2) * C, 4 * (size_t)C);
    sam2_dump(m, "decoder.mask_tokens_out", mask_tokens_out, 3, (int64_t)B, (int64_t)4, (int64_t)C);
    for (int i = 0; i < SAM2_NUM_MASK_TOKENS; i++) {
        for (int b = 0; b < B; b++) o->copy(o, hs_row + (size_t)b * C, hs + ((size_t)b * T + 2 + i) * C, C);
        float *hy = s.q; /* [B, C/8] */
        mlp_forward(m, &d->hyper[i], hs_row, B, C, C, C8, t0, t1, hy);
        for (int b = 0; b < B; b++) o->copy(o, hyper + ((size_t)b * 4 + i) * C8, hy + (size_t)b * C8, C8);
        char name[32];
        snprintf(name, sizeof name, "decoder.hyper%d", i);
        sam2_dump(m, name, hy, 2, (int64_t)B, (int64_t)C8);
    }
    int n4 = g4 * g4;
    for (int b = 0; b < B; b++)
        o->matmul(o, hyper + (size_t)b * 4 * C8, up2 + (size_t)b * C8 * n4, NULL, all_masks + (size_t)b * 4 * n4,
                  4, n4, C8);
    sam2_dump(m, "decoder.all_masks", all_masks, 4, (int64_t)B, (int64_t)4, (int64_t)g4, (int64_t)g4);

    /* IoU head on the IoU token (sigmoid output), object-score head on token 0. */
    for (int b = 0; b < B; b++) o->copy(o, hs_row + (size_t)b * C, hs + ((size_t)b * T + 1) * C, C);
    mlp_forward(m, &d->iou_head, hs_row, B, C, m->cfg->iou_head_hidden, 4, s.k, s.v, all_iou);
    o->sigmoid(o, all_iou, (size_t)B * 4);
    sam2_dump(m, "decoder.all_iou", all_iou, 2, (int64_t)B, (int64_t)4);
    for (int b = 0; b < B; b++) o->copy(o, hs_row + (size_t)b * C, hs + (size_t)b * T * C, C);
    mlp_forward(m, &d->obj_score_head, hs_row, B, C, C, 1, t0, t1, obj_score);
    sam2_dump(m, "decoder.object_score_logits", obj_score, 2, (int64_t)B, (int64_t)1);
    arena_reset(&m->arena, mark);
    return 0;
}

/* MaskDecoder._get_stability_scores + _dynamic_multimask_via_stability (delta 0.05,
 * threshold 0.98): keep token 0 if its mask is stable, else the best-IoU token of 1..3
 * (first maximum on ties). */
int sam2_dynamic_multimask_choice(const float *all_masks, const float *all_iou, int n, float *stability_out) {
    const float delta = 0.05f, thresh = 0.98f;
    long inter = 0, uni = 0;
    for (int i = 0; i < n; i++) {
        inter += all_masks[i] > delta;
        uni += all_masks[i] > -delta;
    }
    float stability = uni > 0 ? (float)inter / (float)uni : 1.0f;
    if (stability_out) *stability_out = stability;
    if (stability >= thresh) return 0;
    int best = 1;
    for (int t = 2; t < 4; t++)
        if (all_iou[t] > all_iou[best]) best = t;
    return best;
}
