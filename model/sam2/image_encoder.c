/* model/sam2/image_encoder.c: sam2/modeling/sam2_base.py SAM2Base.forward_image (the
 * ImageEncoder of backbones/image_encoder.py: Hiera trunk, FpnNeck, scalp; then the mask
 * decoder's conv_s0 / conv_s1 on the high-resolution levels) and the no_mem_embed that
 * SAM2ImagePredictor.set_image adds to the lowest kept level. */
#include <stdio.h>

#include "model/sam2/sam2.h"

#define I64(x) ((int64_t)(x))

/* The encoded image's own buffers: high-res features and the image embedding (dumped
 * image by image). */
static void forward_image_outputs(sam2_model *m, float *const lvl[4], const int sh[4], const int sw[4],
                                  sam2_image *const *imgs, int B) {
    const samc_ops *o = m->rt.ops;
    const sam2_mask_decoder_weights *d = &m->dec;
    int C = m->C;
    for (int b = 0; b < B; b++) {
        sam2_image *img = imgs[b];
        const float *l0 = lvl[0] + (size_t)b * C * sh[0] * sw[0], *l1 = lvl[1] + (size_t)b * C * sh[1] * sw[1];
        const float *l2 = lvl[2] + (size_t)b * C * sh[2] * sw[2];
        o->matmul(o, d->conv_s0.w, l0, d->conv_s0.b, img->feat_s0, C / 8, sh[0] * sw[0], C);
        o->matmul(o, d->conv_s1.w, l1, d->conv_s1.b, img->feat_s1, C / 4, sh[1] * sw[1], C);
        rt_dump(&m->rt, "high_res_feats0", img->feat_s0, 4, I64(1), I64(C / 8), I64(sh[0]), I64(sw[0]));
        rt_dump(&m->rt, "high_res_feats1", img->feat_s1, 4, I64(1), I64(C / 4), I64(sh[1]), I64(sw[1]));
        rt_dump(&m->rt, "backbone.fpn0", img->feat_s0, 4, I64(1), I64(C / 8), I64(sh[0]), I64(sw[0]));
        rt_dump(&m->rt, "backbone.fpn1", img->feat_s1, 4, I64(1), I64(C / 4), I64(sh[1]), I64(sw[1]));
        o->add_channel(o, img->image_embed, l2, m->no_mem_embed, C, sh[2] * sw[2]);
        rt_dump(&m->rt, "image_embed", img->image_embed, 4, I64(1), I64(C), I64(sh[2]), I64(sw[2]));
    }
}

int sam2_image_encoder(sam2_model *m, const float *input, sam2_image *const *imgs, int B, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam2_config *c = m->cfg;
    /* reduced precision: 16-bit activations from here to the image features */
    if (o->activation_precision) o->activation_precision(o, 1);
    int H = (m->S + 2 * c->patch_padding - c->patch_kernel) / c->patch_stride + 1;
    size_t mark = rt_arena_mark(&m->rt);
    float *stage[4], *lvl[4];
    int sh[4], sw[4];
    for (int s = 0, h = H; s < 4; s++, h /= 2) RT_ALLOC(&m->rt, stage[s], (size_t)B * h * h * sam2_config_stage_dim(c, s));
    if (sam2_hiera(m, input, B, stage, sh, sw, err)) return -1;
    for (int i = 0; i < 4; i++) RT_ALLOC(&m->rt, lvl[i], (size_t)B * m->C * sh[i] * sw[i]);
    sam2_fpn_neck(m, stage, sh, sw, lvl, B);
    rt_dump(&m->rt, "backbone.fpn2", lvl[2], 4, I64(B), I64(m->C), I64(sh[2]), I64(sw[2]));
    forward_image_outputs(m, lvl, sh, sw, imgs, B);
    rt_mark(&m->rt, RT_MARK_ENC_NECK);
    rt_arena_reset(&m->rt, mark);
    return 0;
}
