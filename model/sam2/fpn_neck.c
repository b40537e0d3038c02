/* model/sam2/fpn_neck.c: sam2/modeling/backbones/image_encoder.py FpnNeck (weights
 * image_encoder.neck.convs.<i>.conv) and sam2/modeling/position_encoding.py
 * PositionEmbeddingSine. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/sam2/sam2.h"

#define I64(x) ((int64_t)(x))

void sam2_fpn_neck_bind(rt_binder *b, const sam2_config *c, sam2_fpn_neck_weights *neck) {
    char k[64];
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "image_encoder.neck.convs.%d.conv", i);
        rt_bind_conv(b, &neck->convs[i], k, c->d_model, c->backbone_channel_list[i], 1, 1, c->d_model);
    }
}

/* PositionEmbeddingSine (normalize, scale 2 pi, temperature 10000): [C, H, W] on the
 * host. Channels 0..C/2-1 from y, C/2..C-1 from x, sin/cos interleaved. The image predictor
 * does not use the vision PE: it is computed for the golden dumps only. */
static void position_embedding_sine(int C, int H, int W, float *out) {
    int npf = C / 2;
    const float two_pi = 6.28318530717958647692f, eps = 1e-6f;
    for (int k = 0; k < npf; k++) {
        float dim_t = powf(10000.0f, (float)(2 * (k / 2)) / (float)npf);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float ye = (float)(y + 1) / ((float)H + eps) * two_pi;
                float xe = (float)(x + 1) / ((float)W + eps) * two_pi;
                float vy = ye / dim_t, vx = xe / dim_t;
                out[((size_t)k * H + y) * W + x] = (k % 2 == 0) ? sinf(vy) : cosf(vy);
                out[((size_t)(npf + k) * H + y) * W + x] = (k % 2 == 0) ? sinf(vx) : cosf(vx);
            }
    }
}

static void dump_levels(const sam2_model *m, float *const lvl[4], const int sh[4], const int sw[4], int B) {
    int C = m->C;
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "neck.fpn%d", i);
        rt_dump(&m->rt, name, lvl[i], 4, I64(B), I64(C), I64(sh[i]), I64(sw[i]));
        if (!rt_dumping(&m->rt)) continue;
        float *pos = malloc(sizeof(float) * (size_t)C * sh[i] * sw[i]); /* debug path only */
        if (pos) {
            position_embedding_sine(C, sh[i], sw[i], pos);
            snprintf(name, sizeof name, "neck.pos%d", i);
            rt_dump_host(&m->rt, name, pos, 4, I64(1), I64(C), I64(sh[i]), I64(sw[i]));
        }
        free(pos);
    }
}

/* FpnNeck.forward: lateral 1x1 convs, top-down (nearest x2) only into
 * fpn_top_down_levels. stage[i] are the NCHW trunk outputs [B, C_i, sh[i], sw[i]],
 * highest resolution first. The 1x1 convs put the weight on the left of an NCHW map, so
 * they run image by image (a fixed weight times one image's map: the same products as
 * with B = 1); the neck is a small share of the encoder. */
void sam2_fpn_neck(sam2_model *m, float *const stage[4], const int sh[4], const int sw[4], float *const lvl[4], int B) {
    const samc_ops *o = m->rt.ops;
    const sam2_config *c = m->cfg;
    int C = m->C;
    for (int b = 0; b < B; b++)
        for (int i = 3; i >= 0; i--) {
            /* convs[n-1-i] takes stage i (convs.0 is the lowest resolution). */
            const rt_linear *cv = &m->neck.convs[3 - i];
            int HW = sh[i] * sw[i], Cin = c->backbone_channel_list[3 - i];
            float *dst = lvl[i] + (size_t)b * C * HW;
            o->matmul(o, cv->w, stage[i] + (size_t)b * Cin * HW, cv->b, dst, C, HW, Cin);
            int top_down = (i == c->fpn_top_down_levels[0] || i == c->fpn_top_down_levels[1]) && i < 3;
            if (top_down)
                o->upsample_nearest2x_add(o, dst, lvl[i + 1] + (size_t)b * C * sh[i + 1] * sw[i + 1], C, sh[i + 1],
                                          sw[i + 1]);
        }
    dump_levels(m, lvl, sh, sw, B);
}
