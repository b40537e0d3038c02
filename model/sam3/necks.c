/* model/sam3/necks.c: sam3/model/necks.py Sam3DualViTDetNeck (the SAM3 branch: four
 * levels from the ViT's single map, weights backbone.vision_backbone.convs.*) and
 * sam3/model/position_encoding.py PositionEmbeddingSine, which the neck attaches to each
 * level. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

/* scale factors 4, 2, 1, 0.5: convs.0 has dconv_2x2_0 (C -> C/2), GELU, dconv_2x2_1
 * (C/2 -> C/4); convs.1 dconv_2x2 (C -> C/2); convs.3 a max-pool (no weights). */
void sam3_neck_bind(rt_binder *b, const sam3_config *c, sam3_neck_weights *w) {
    const char *n = "backbone.vision_backbone.convs";
    int C = c->vit_dim, d = c->d_model;
    char k[256];
    for (int i = 0; i < 4; i++) {
        sam3_neck_branch_weights *br = &w->convs[i];
        br->n_dconv = i == 0 ? 2 : i == 1 ? 1 : 0;
        br->in_1x1 = i == 0 ? C / 4 : i == 1 ? C / 2 : C;
        if (i == 0) {
            snprintf(k, sizeof k, "%s.0.dconv_2x2_0", n); rt_bind_conv(b, &br->dconv[0], k, C, C / 2, 2, 2, C / 2);
            snprintf(k, sizeof k, "%s.0.dconv_2x2_1", n); rt_bind_conv(b, &br->dconv[1], k, C / 2, C / 4, 2, 2, C / 4);
        } else if (i == 1) {
            snprintf(k, sizeof k, "%s.1.dconv_2x2", n); rt_bind_conv(b, &br->dconv[0], k, C, C / 2, 2, 2, C / 2);
        }
        snprintf(k, sizeof k, "%s.%d.conv_1x1", n, i); rt_bind_conv(b, &br->conv_1x1, k, d, br->in_1x1, 1, 1, d);
        snprintf(k, sizeof k, "%s.%d.conv_3x3", n, i); rt_bind_conv(b, &br->conv_3x3, k, d, d, 3, 3, d);
    }
}

/* PositionEmbeddingSine(num_pos_feats=D, temperature 1e4, normalize, scale 2 pi) of an
 * H x W map: y = (i+1) / (H + 1e-6) * 2 pi (x alike), dim_t[k] = 1e4^(2 floor(k/2) / (D/2));
 * channels [0, D/2) from y, [D/2, D) from x, even ones sin, odd ones cos; in float. */
void sam3_position_embedding_sine(int D, int H, int W, int token_major, float *out) {
    int half = D / 2;
    const float scale = (float)(2.0 * M_PI), eps = 1e-6f;
    for (int k = 0; k < half; k++) {
        float dim_t = powf(10000.0f, (float)(2 * (k / 2)) / (float)half);
        for (int i = 0; i < H; i++) {
            float ye = (float)(i + 1) / ((float)H + eps) * scale / dim_t;
            float vy = k % 2 ? cosf(ye) : sinf(ye);
            for (int j = 0; j < W; j++) {
                float xe = (float)(j + 1) / ((float)W + eps) * scale / dim_t;
                float vx = k % 2 ? cosf(xe) : sinf(xe);
                size_t p = (size_t)i * W + j;
                if (token_major) {
                    out[p * D + k] = vy;
                    out[p * D + half + k] = vx;
                } else {
                    out[(size_t)k * H * W + p] = vy;
                    out[(size_t)(half + k) * H * W + p] = vx;
                }
            }
        }
    }
}

/* The PE of level i for the golden dumps (debug path: a temporary host copy). */
static void dump_pos(const sam3_model *m, int i, int side) {
    if (!rt_dumping(&m->rt)) return;
    float *pe = malloc(sizeof(float) * (size_t)m->D * side * side);
    if (!pe) return;
    sam3_position_embedding_sine(m->D, side, side, 0, pe);
    char name[32];
    snprintf(name, sizeof name, "neck.pos%d", i);
    rt_dump_host(&m->rt, name, pe, 4, I64(1), I64(m->D), I64(side), I64(side));
    free(pe);
}

static void dump_step(const sam3_model *m, int i, const char *step, const float *x, int ch, int side) {
    char name[64];
    snprintf(name, sizeof name, "neck.convs%d.%s", i, step);
    rt_dump(&m->rt, name, x, 4, I64(1), I64(ch), I64(side), I64(side));
}

/* One branch convs[i] on the ViT map x [C, g, g] -> y [D, side, side].
 * In the reduced precisions (bf16 / fp16 on CUDA) the branch runs in the 16-bit phase up to
 * its 1x1 convolution (sam3_lowp_begin: transposed convolutions, which then take the
 * tensor cores, GELU, max-pool, the 1x1 as a 16-bit product); the 3x3 convolution reads
 * that 16-bit map in the fp32 phase and writes the level y in fp32, as its readers (the
 * fusion encoder, the geometry encoder's roi_align / grid_sample, the seg head) expect. */
static int neck_branch(sam3_model *m, int i, const float *x, float *y, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_neck_branch_weights *br = &m->neck.convs[i];
    int C = m->C, D = m->D, g = m->g, lowp;
    int side = i == 0 ? 4 * g : i == 1 ? 2 * g : i == 2 ? g : g / 2;
    size_t mark = rt_arena_mark(&m->rt);
    if (sam3_lowp_begin(m, &lowp, err)) return -1;
    float *t0 = NULL, *t2 = NULL, *t1;
    if (((i == 0 || i == 1) && !(t0 = rt_arena_floats(&m->rt, (size_t)(C / 2) * 4 * g * g))) || /* C/2 at 2g */
        (i == 0 && !(t2 = rt_arena_floats(&m->rt, (size_t)(C / 4) * 16 * g * g))) ||             /* C/4 at 4g */
        (i == 3 && !(t0 = rt_arena_floats(&m->rt, (size_t)C * side * side))) ||
        !(t1 = rt_arena_floats(&m->rt, (size_t)D * side * side))) {
        sam3_lowp_end(m, lowp);
        return samc_error_set(err, SAMC_ERR_INTERNAL, "scratch arena exhausted at %s:%d", __FILE__, __LINE__);
    }
    const float *cur = x;
    if (i == 0) {
        o->conv_transpose2x2(o, x, br->dconv[0].w, br->dconv[0].b, t0, C, g, g, C / 2);
        dump_step(m, 0, "dconv_2x2_0", t0, C / 2, 2 * g);
        o->gelu(o, t0, (size_t)(C / 2) * 4 * g * g);
        dump_step(m, 0, "gelu", t0, C / 2, 2 * g);
        o->conv_transpose2x2(o, t0, br->dconv[1].w, br->dconv[1].b, t2, C / 2, 2 * g, 2 * g, C / 4);
        dump_step(m, 0, "dconv_2x2_1", t2, C / 4, 4 * g);
        cur = t2;
    } else if (i == 1) {
        o->conv_transpose2x2(o, x, br->dconv[0].w, br->dconv[0].b, t0, C, g, g, C / 2);
        dump_step(m, 1, "dconv_2x2", t0, C / 2, 2 * g);
        cur = t0;
    } else if (i == 3) {
        /* nn.MaxPool2d(2, 2) on NCHW: C maps of one channel each */
        o->maxpool2x2(o, x, t0, C, g, g, 1, 1);
        dump_step(m, 3, "maxpool_2x2", t0, C, side);
        cur = t0;
    }
    o->matmul(o, br->conv_1x1.w, cur, br->conv_1x1.b, t1, D, side * side, br->in_1x1);
    dump_step(m, i, "conv_1x1", t1, D, side);
    sam3_lowp_end(m, lowp);
    o->conv2d(o, t1, br->conv_3x3.w, br->conv_3x3.b, y, D, side, side, D, 3, 3, 1, 1);
    char name[32];
    snprintf(name, sizeof name, "neck.fpn%d", i);
    rt_dump(&m->rt, name, y, 4, I64(1), I64(D), I64(side), I64(side));
    dump_pos(m, i, side);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* Sam3DualViTDetNeck.forward (no SAM2 neck): every branch from the same map; level 3
 * (0.5x) is computed as the official code does and then dropped (scalp = 1). */
int sam3_neck(sam3_model *m, const float *x, sam3_image *img, samc_error *err) {
    double t0 = rt_now_ms();
    size_t mark = rt_arena_mark(&m->rt);
    float *lvl3;
    RT_ALLOC(&m->rt, lvl3, (size_t)m->D * (m->g / 2) * (m->g / 2));
    for (int i = 0; i < 4; i++)
        if (neck_branch(m, i, x, i < 3 ? img->fpn[i] : lvl3, err)) return -1;
    rt_arena_reset(&m->rt, mark);
    m->timings.neck_ms = rt_now_ms() - t0;
    rt_log(&m->rt, "encode: neck %.1f ms", m->timings.neck_ms);
    return 0;
}
