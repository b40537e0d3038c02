/* model/sam3/maskformer_segmentation.c: sam3/model/maskformer_segmentation.py
 * UniversalSegmentationHead with its PixelDecoder and MaskPredictor (weights
 * segmentation_head.*).
 *
 * The encoder memory first cross-attends to the prompt; it then replaces the 1x neck
 * level in the pixel decoder, which goes up through the 2x and 4x levels (nearest x2,
 * add, conv 3x3, GroupNorm(8), ReLU); per-pixel instance embeddings (conv 1x1) times the
 * queries' mask embeddings (MLP) give the masks at 4x the token grid. Of the three
 * conv / norm pairs only two are used (conv_layers.2 / norms.2 are in the checkpoint,
 * unused); the semantic map is computed (as the official head does) but not returned. */
#include <stdio.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

void sam3_seg_head_bind(rt_binder *b, const sam3_config *c, sam3_seg_head_weights *w) {
    int d = c->d_model;
    char k[256];
    for (int i = 0; i < c->pd_stages && i < 3; i++) {
        snprintf(k, sizeof k, "segmentation_head.pixel_decoder.conv_layers.%d", i);
        rt_bind_conv(b, &w->pd_conv[i], k, d, d, 3, 3, d);
        snprintf(k, sizeof k, "segmentation_head.pixel_decoder.norms.%d", i);
        rt_bind_norm(b, &w->pd_norm[i], k, d);
    }
    rt_bind_mlp(b, &w->mask_embed, "segmentation_head.mask_predictor.mask_embed", d, d, d, 3);
    sam3_mha_bind(b, &w->cross_attend_prompt, "segmentation_head.cross_attend_prompt", d, c->dec_heads);
    rt_bind_norm(b, &w->cross_attn_norm, "segmentation_head.cross_attn_norm", d);
    rt_bind_conv(b, &w->semantic_seg_head, "segmentation_head.semantic_seg_head", 1, d, 1, 1, 1);
    rt_bind_conv(b, &w->instance_seg_head, "segmentation_head.instance_seg_head", d, d, 1, 1, d);
}

/* PixelDecoder.forward: prev = the 1x map [d, g, g]; for the 2x and then the 4x level:
 * prev = ReLU(GroupNorm(conv3x3(level + nearest_x2(prev)))). Into out [d, 4g, 4g]. */
static int pixel_decoder(sam3_model *m, const sam3_image *img, const float *map1x, float *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_seg_head_weights *w = &m->seg;
    int d = m->D, g = m->g;
    size_t mark = rt_arena_mark(&m->rt);
    float *in, *prev;
    RT_ALLOC(&m->rt, in, (size_t)d * 16 * g * g);
    RT_ALLOC(&m->rt, prev, (size_t)d * 4 * g * g);
    const float *cur = map1x;
    for (int s = 0; s < 2; s++) {
        int side = (2 << s) * g;   /* 2g, then 4g */
        size_t n = (size_t)d * side * side;
        float *dst = s == 1 ? out : prev;
        o->copy(o, in, img->fpn[1 - s], n);
        o->upsample_nearest2x_add(o, in, cur, d, side / 2, side / 2);
        char name[48];
        snprintf(name, sizeof name, "seg.pd_stage%d.in", s);
        rt_dump(&m->rt, name, in, 4, I64(1), I64(d), I64(side), I64(side));
        o->conv2d(o, in, w->pd_conv[s].w, w->pd_conv[s].b, dst, d, side, side, d, 3, 3, 1, 1);
        snprintf(name, sizeof name, "seg.pd_stage%d.conv", s);
        rt_dump(&m->rt, name, dst, 4, I64(1), I64(d), I64(side), I64(side));
        o->group_norm(o, dst, w->pd_norm[s].w, w->pd_norm[s].b, dst, d, side * side, 8, 1e-5f);
        snprintf(name, sizeof name, "seg.pd_stage%d.gn", s);
        rt_dump(&m->rt, name, dst, 4, I64(1), I64(d), I64(side), I64(side));
        o->relu(o, dst, n);
        cur = dst;
    }
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* The memory's cross-attention to the prompt: mem1x [d, g, g] = (memory + CA(LN(memory),
 * prompt)) as an NCHW map. */
static int cross_attend_prompt(sam3_model *m, const float *memory, const float *prompt, int S,
                               const samc_attention_bias *prompt_bias, float *mem1x, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_seg_head_weights *w = &m->seg;
    int d = m->D, HW = m->g * m->g;
    size_t n = (size_t)HW * d, mark = rt_arena_mark(&m->rt);
    float *ln, *ca;
    RT_ALLOC(&m->rt, ln, n);
    RT_ALLOC(&m->rt, ca, n);
    o->layer_norm(o, memory, w->cross_attn_norm.w, w->cross_attn_norm.b, ln, HW, d, 1e-5f);
    rt_dump(&m->rt, "seg.cross_attn_norm", ln, 3, I64(HW), I64(1), I64(d));
    if (sam3_multihead_attention(m, &w->cross_attend_prompt, ln, prompt, prompt, HW, S, prompt_bias, ca, err))
        return -1;
    rt_dump(&m->rt, "seg.cross_attn_out", ca, 3, I64(HW), I64(1), I64(d));
    o->add(o, ca, ca, memory, n, n);
    o->transpose(o, ca, mem1x, 1, HW, d);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* UniversalSegmentationHead.forward -> pred_masks [Q, 4g, 4g] = mask_embed(hs_last) .
 * instance_seg_head(pixel_decoder(...)). */
int sam3_segmentation_head(sam3_model *m, const sam3_image *img, const float *memory, const float *hs_last,
                           const float *prompt, int S, const samc_attention_bias *prompt_bias, float *pred_masks,
                           samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_seg_head_weights *w = &m->seg;
    int d = m->D, g = m->g, Q = m->Q, side = 4 * g;
    size_t P = (size_t)side * side, mark = rt_arena_mark(&m->rt);
    double t0 = rt_now_ms();
    float *mem1x, *pix, *inst, *sem, *emb;
    RT_ALLOC(&m->rt, mem1x, (size_t)d * g * g);
    RT_ALLOC(&m->rt, pix, (size_t)d * P);
    RT_ALLOC(&m->rt, inst, (size_t)d * P);
    RT_ALLOC(&m->rt, sem, P);
    RT_ALLOC(&m->rt, emb, (size_t)Q * d);
    if (cross_attend_prompt(m, memory, prompt, S, prompt_bias, mem1x, err)) return -1;
    rt_dump(&m->rt, "seg.pd_in0", img->fpn[0], 4, I64(1), I64(d), I64(side), I64(side));
    rt_dump(&m->rt, "seg.pd_in1", img->fpn[1], 4, I64(1), I64(d), I64(2 * g), I64(2 * g));
    rt_dump(&m->rt, "seg.pd_in2", mem1x, 4, I64(1), I64(d), I64(g), I64(g));
    if (pixel_decoder(m, img, mem1x, pix, err)) return -1;
    rt_dump(&m->rt, "seg.pixel_embed", pix, 4, I64(1), I64(d), I64(side), I64(side));
    o->matmul(o, w->instance_seg_head.w, pix, w->instance_seg_head.b, inst, d, (int)P, d);
    rt_dump(&m->rt, "seg.instance_embed", inst, 4, I64(1), I64(d), I64(side), I64(side));
    o->matmul(o, w->semantic_seg_head.w, pix, w->semantic_seg_head.b, sem, 1, (int)P, d);
    rt_dump(&m->rt, "out.semantic_seg", sem, 4, I64(1), I64(1), I64(side), I64(side));
    if (sam3_mlp(m, &w->mask_embed, hs_last, Q, d, d, d, emb, err)) return -1;
    rt_dump(&m->rt, "seg.mask_embed", emb, 3, I64(1), I64(Q), I64(d));
    o->matmul(o, emb, inst, NULL, pred_masks, Q, (int)P, d);
    rt_dump(&m->rt, "out.pred_masks", pred_masks, 4, I64(1), I64(Q), I64(side), I64(side));
    rt_arena_reset(&m->rt, mark);
    m->timings.seg_head_ms = rt_now_ms() - t0;
    return 0;
}
