/* model/sam2/mask_decoder.c: sam2/modeling/sam/mask_decoder.py MaskDecoder (weights
 * sam_mask_decoder.*: iou_token, mask_tokens, obj_score_token, output_upscaling,
 * conv_s0/conv_s1, output_hypernetworks_mlps, iou_prediction_head, pred_obj_score_head;
 * its transformer is in transformer.c) for a batch of B prompt items over one image
 * (the image is shared, not copied). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/sam2/sam2.h"

#define I64(x) ((int64_t)(x))

void sam2_mask_decoder_bind(rt_binder *b, const sam2_config *c, sam2_mask_decoder_weights *d) {
    int C = c->d_model;
    char k[96];
    sam2_two_way_transformer_bind(b, c, &d->transformer);
    d->iou_token = rt_bind(b, "sam_mask_decoder.iou_token.weight", 2, I64(1), I64(C));
    d->mask_tokens = rt_bind(b, "sam_mask_decoder.mask_tokens.weight", 2, I64(SAM2_NUM_MASK_TOKENS), I64(C));
    d->obj_score_token = rt_bind(b, "sam_mask_decoder.obj_score_token.weight", 2, I64(1), I64(C));
    rt_bind_conv(b, &d->upscale_conv1, "sam_mask_decoder.output_upscaling.0", C, C / 4, 2, 2, C / 4);
    rt_bind_norm(b, &d->upscale_norm, "sam_mask_decoder.output_upscaling.1", C / 4);
    rt_bind_conv(b, &d->upscale_conv2, "sam_mask_decoder.output_upscaling.3", C / 4, C / 8, 2, 2, C / 8);
    rt_bind_conv(b, &d->conv_s0, "sam_mask_decoder.conv_s0", C / 8, C, 1, 1, C / 8);
    rt_bind_conv(b, &d->conv_s1, "sam_mask_decoder.conv_s1", C / 4, C, 1, 1, C / 4);
    for (int i = 0; i < SAM2_NUM_MASK_TOKENS; i++) {
        snprintf(k, sizeof k, "sam_mask_decoder.output_hypernetworks_mlps.%d", i);
        rt_bind_mlp(b, &d->output_hypernetworks_mlps[i], k, C, C, C / 8, 3);
    }
    rt_bind_mlp(b, &d->iou_prediction_head, "sam_mask_decoder.iou_prediction_head", C, c->iou_head_hidden,
                SAM2_NUM_MASK_TOKENS, c->iou_head_depth);
    rt_bind_mlp(b, &d->pred_obj_score_head, "sam_mask_decoder.pred_obj_score_head", C, C, 1, 3);
}

/* sam2_utils.MLP (ReLU between layers) on rows x[rows, in] -> y[rows, out]; t0/t1 hold
 * hidden rows. */
static void mlp(sam2_model *m, const rt_mlp *net, const float *x, int rows, int in, int hidden, int outd, float *t0,
                float *t1, float *y) {
    const samc_ops *o = m->rt.ops;
    const float *cur = x;
    for (int l = 0; l < net->n_layers; l++) {
        int a = l == 0 ? in : hidden, b = l == net->n_layers - 1 ? outd : hidden;
        float *dst = l == net->n_layers - 1 ? y : (l % 2 == 0 ? t0 : t1);
        o->linear(o, cur, net->layers[l].w, net->layers[l].b, dst, rows, b, a);
        if (l < net->n_layers - 1) o->relu(o, dst, (size_t)rows * b);
        cur = dst;
    }
}

/* output_upscaling with the high-res features added before each LN / GELU:
 * act1(ln1(dc1(src) + feat_s1)), then act2(dc2(.) + feat_s0). keys [B, HW, C] ->
 * up2 [B, C/8, 4g, 4g]; tmp [B, C, HW] and up1 [B, C/4, 2g, 2g] are scratch. */
static void output_upscaling(sam2_model *m, const sam2_image *img, const float *keys, int B, float *tmp, float *up1,
                             float *up2) {
    const samc_ops *o = m->rt.ops;
    const sam2_mask_decoder_weights *d = &m->dec;
    int C = m->C, g = m->S / 16, g2 = 2 * g, g4 = 4 * g, C4 = C / 4, C8 = C / 8, HW = g * g;
    size_t chw = (size_t)C * HW, n1 = (size_t)C4 * g2 * g2, n2 = (size_t)C8 * g4 * g4;
    o->transpose(o, keys, tmp, B, HW, C);
    for (int b = 0; b < B; b++)
        o->conv_transpose2x2(o, tmp + (size_t)b * chw, d->upscale_conv1.w, d->upscale_conv1.b, up1 + b * n1, C, g, g, C4);
    rt_dump(&m->rt, "decoder.upscale.dc1", up1, 4, I64(B), I64(C4), I64(g2), I64(g2));
    o->add(o, up1, up1, img->feat_s1, (size_t)B * n1, n1);
    for (int b = 0; b < B; b++)
        o->layer_norm2d(o, up1 + b * n1, d->upscale_norm.w, d->upscale_norm.b, up1 + b * n1, C4, g2 * g2, 1e-6f);
    rt_dump(&m->rt, "decoder.upscale.ln1", up1, 4, I64(B), I64(C4), I64(g2), I64(g2));
    o->gelu(o, up1, (size_t)B * n1);
    rt_dump(&m->rt, "decoder.upscale.act1", up1, 4, I64(B), I64(C4), I64(g2), I64(g2));
    for (int b = 0; b < B; b++)
        o->conv_transpose2x2(o, up1 + b * n1, d->upscale_conv2.w, d->upscale_conv2.b, up2 + b * n2, C4, g2, g2, C8);
    rt_dump(&m->rt, "decoder.upscale.dc2", up2, 4, I64(B), I64(C8), I64(g4), I64(g4));
    o->add(o, up2, up2, img->feat_s0, (size_t)B * n2, n2);
    o->gelu(o, up2, (size_t)B * n2);
    rt_dump(&m->rt, "decoder.upscale.act2", up2, 4, I64(B), I64(C8), I64(g4), I64(g4));
}

/* Tokens: [obj_score_token, iou_token, mask_tokens x4, sparse prompt embeddings]. */
static void output_tokens(sam2_model *m, const float *sparse, int n_sparse, int B, float *tokens) {
    const samc_ops *o = m->rt.ops;
    const sam2_mask_decoder_weights *d = &m->dec;
    int C = m->C, T = 6 + n_sparse;
    for (int b = 0; b < B; b++) {
        float *t = tokens + (size_t)b * T * C;
        o->copy(o, t, d->obj_score_token, C);
        o->copy(o, t + C, d->iou_token, C);
        o->copy(o, t + 2 * C, d->mask_tokens, 4 * (size_t)C);
        if (n_sparse) o->copy(o, t + 6 * C, sparse + (size_t)b * n_sparse * C, (size_t)n_sparse * C);
    }
    rt_dump(&m->rt, "decoder.tokens_in", tokens, 3, I64(B), I64(T), I64(C));
}

/* The heads on the transformer output hs [B, T, C]: hypernetwork MLP i on mask token i
 * -> [C/8], masks = hyper_in @ upscaled; the IoU head on the IoU token (sigmoid); the
 * object-score head on token 0. */
static void heads(sam2_model *m, const float *hs, int T, const float *up2, int B, float *hyper, float *hs_row,
                  float *t0, float *t1, const sam2_two_way_scratch *s, float *all_masks, float *all_iou,
                  float *obj_score) {
    const samc_ops *o = m->rt.ops;
    const sam2_mask_decoder_weights *d = &m->dec;
    int C = m->C, C8 = C / 8, g4 = m->S / 4, n4 = g4 * g4;
    float *mask_tokens_out = s->tmp; /* [B, 4, C] */
    for (int b = 0; b < B; b++)
        o->copy(o, mask_tokens_out + (size_t)b * 4 * C, hs + ((size_t)b * T + 2) * C, 4 * (size_t)C);
    rt_dump(&m->rt, "decoder.mask_tokens_out", mask_tokens_out, 3, I64(B), I64(4), I64(C));
    for (int i = 0; i < SAM2_NUM_MASK_TOKENS; i++) {
        for (int b = 0; b < B; b++) o->copy(o, hs_row + (size_t)b * C, hs + ((size_t)b * T + 2 + i) * C, C);
        float *hy = s->q; /* [B, C/8] */
        mlp(m, &d->output_hypernetworks_mlps[i], hs_row, B, C, C, C8, t0, t1, hy);
        for (int b = 0; b < B; b++) o->copy(o, hyper + ((size_t)b * 4 + i) * C8, hy + (size_t)b * C8, C8);
        char name[32];
        snprintf(name, sizeof name, "decoder.hyper%d", i);
        rt_dump(&m->rt, name, hy, 2, I64(B), I64(C8));
    }
    for (int b = 0; b < B; b++)
        o->matmul(o, hyper + (size_t)b * 4 * C8, up2 + (size_t)b * C8 * n4, NULL, all_masks + (size_t)b * 4 * n4, 4, n4,
                  C8);
    rt_dump(&m->rt, "decoder.all_masks", all_masks, 4, I64(B), I64(4), I64(g4), I64(g4));
    for (int b = 0; b < B; b++) o->copy(o, hs_row + (size_t)b * C, hs + ((size_t)b * T + 1) * C, C);
    mlp(m, &d->iou_prediction_head, hs_row, B, C, m->cfg->iou_head_hidden, 4, s->k, s->v, all_iou);
    o->sigmoid(o, all_iou, (size_t)B * 4);
    rt_dump(&m->rt, "decoder.all_iou", all_iou, 2, I64(B), I64(4));
    for (int b = 0; b < B; b++) o->copy(o, hs_row + (size_t)b * C, hs + (size_t)b * T * C, C);
    mlp(m, &d->pred_obj_score_head, hs_row, B, C, C, 1, t0, t1, obj_score);
    rt_dump(&m->rt, "decoder.object_score_logits", obj_score, 2, I64(B), I64(1));
}

/* The dense PE repeated per item, for the golden dump of decoder.pos_src (debug only). */
static void dump_pos_src(sam2_model *m, int B) {
    if (!rt_dumping(&m->rt)) return;
    int C = m->C, g = m->S / 16;
    size_t chw = (size_t)C * g * g;
    float *rep = malloc(sizeof(float) * (size_t)B * chw);
    for (int b = 0; rep && b < B; b++) memcpy(rep + (size_t)b * chw, m->dense_pe_host, sizeof(float) * chw);
    if (rep) rt_dump_host(&m->rt, "decoder.pos_src", rep, 4, I64(B), I64(C), I64(g), I64(g));
    free(rep);
}

int sam2_mask_decoder(sam2_model *m, const sam2_image *img, const float *sparse, int n_sparse, const float *dense,
                      int dense_shared, int B, float *all_masks, float *all_iou, float *obj_score, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int C = m->C, g = m->S / 16, HW = g * g, T = 6 + n_sparse;
    size_t mark = rt_arena_mark(&m->rt), chw = (size_t)C * HW;
    float *tokens, *queries, *keys, *up1, *up2, *hyper, *hs_row, *t0, *t1;
    sam2_two_way_scratch s;
    RT_ALLOC(&m->rt, tokens, (size_t)B * T * C);
    RT_ALLOC(&m->rt, queries, (size_t)B * T * C);
    RT_ALLOC(&m->rt, keys, (size_t)B * HW * C);
    if (sam2_two_way_scratch_alloc(m, B, T, HW, &s, err)) return -1;
    RT_ALLOC(&m->rt, up1, (size_t)B * (C / 4) * 4 * HW);
    RT_ALLOC(&m->rt, up2, (size_t)B * (C / 8) * 16 * HW);
    RT_ALLOC(&m->rt, hyper, (size_t)B * SAM2_NUM_MASK_TOKENS * (C / 8));
    RT_ALLOC(&m->rt, hs_row, (size_t)B * C);
    RT_ALLOC(&m->rt, t0, (size_t)B * C);
    RT_ALLOC(&m->rt, t1, (size_t)B * C);

    output_tokens(m, sparse, n_sparse, B, tokens);
    /* src = image_embed (the same for every item) + dense prompt, [B, C, HW], flattened
     * to the transformer's [B, HW, C]; the key PE is the dense PE, [HW, C]. */
    o->add(o, s.tmp, dense, img->image_embed, (size_t)B * chw, chw);
    rt_dump(&m->rt, "decoder.src_in", s.tmp, 4, I64(B), I64(C), I64(g), I64(g));
    o->transpose(o, s.tmp, keys, B, C, HW);
    dump_pos_src(m, B);
    o->copy(o, queries, tokens, (size_t)B * T * C);
    sam2_two_way_transformer(m, &m->dec.transformer, queries, tokens, T, keys, m->dense_pe_hwc, HW, B, dense_shared,
                             &s);
    rt_dump(&m->rt, "decoder.hs", queries, 3, I64(B), I64(T), I64(C));
    rt_dump(&m->rt, "decoder.keys", keys, 3, I64(B), I64(HW), I64(C));
    output_upscaling(m, img, keys, B, s.tmp, up1, up2);
    heads(m, queries, T, up2, B, hyper, hs_row, t0, t1, &s, all_masks, all_iou, obj_score);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* MaskDecoder._get_stability_scores + _dynamic_multimask_via_stability (delta 0.05,
 * threshold 0.98): keep token 0 if its mask is stable, else the best-IoU token of 1..3
 * (first maximum on ties). */
int sam2_dynamic_multimask_choice(const float *all_masks, const float *all_iou, int n, float *stability_out) {
    return samc_ref_multimask_choice(all_masks, all_iou, n, stability_out);
}
