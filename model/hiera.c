/* model/hiera.c: the Hiera trunk (sam2/modeling/backbones/hieradet.py: Hiera,
 * MultiScaleBlock, MultiScaleAttention) and the whole image encoder forward
 * (backbones/image_encoder.py ImageEncoder, then SAM2Base.forward_image's conv_s0/conv_s1
 * and the predictor's no_mem_embed add).
 *
 * The trunk works on NHWC token maps x[H*W, C] (row-major over y, then x), exactly the
 * (B, H, W, C) tensors of the official code, so block outputs dump as "trunk.blockNN". */
#include "model/sam2.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* F.interpolate(mode="bicubic", align_corners=False) of one channel plane, PyTorch's
 * cubic convolution with A = -0.75 and source indices clamped at the borders. */
static float cubic_w1(float x) { const float A = -0.75f; return ((A + 2) * x - (A + 3)) * x * x + 1; }
static float cubic_w2(float x) { const float A = -0.75f; return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }
static void cubic_coeffs(float t, float w[4]) {
    w[0] = cubic_w2(t + 1.0f); w[1] = cubic_w1(t); w[2] = cubic_w1(1.0f - t); w[3] = cubic_w2(2.0f - t);
}
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Separable: each input row is interpolated along x once (tmp[ih, ow]), then the rows
 * are combined along y; the same sums in the same order as PyTorch's per-pixel loop. */
static void bicubic_resize(const float *src, int ih, int iw, float *dst, int oh, int ow, float *tmp) {
    float sy = (float)ih / (float)oh, sx = (float)iw / (float)ow;
    for (int ox = 0; ox < ow; ox++) {
        float rx = sx * (ox + 0.5f) - 0.5f;
        int x0 = (int)floorf(rx);
        float wx[4];
        cubic_coeffs(rx - x0, wx);
        for (int r = 0; r < ih; r++) {
            const float *row = src + (size_t)r * iw;
            float v = 0.0f;
            for (int i = 0; i < 4; i++) v += row[clampi(x0 - 1 + i, 0, iw - 1)] * wx[i];
            tmp[(size_t)r * ow + ox] = v;
        }
    }
    for (int oy = 0; oy < oh; oy++) {
        float ry = sy * (oy + 0.5f) - 0.5f;
        int y0 = (int)floorf(ry);
        float wy[4];
        cubic_coeffs(ry - y0, wy);
        for (int ox = 0; ox < ow; ox++) {
            float acc = 0.0f;
            for (int j = 0; j < 4; j++) acc += tmp[(size_t)clampi(y0 - 1 + j, 0, ih - 1) * ow + ox] * wy[j];
            dst[(size_t)oy * ow + ox] = acc;
        }
    }
}

/* Hiera._get_pos_embed: bicubic(pos_embed -> H x W) + pos_embed_window tiled, NHWC.
 * It depends only on the weights and the image size, so the model computes it once at
 * load (samc_model.pos_embed_hwc). Returns 0 or -1 (out of memory). */
int sam2_hiera_pos_embed(const samc_model *m, float *out /* [H*W, C0] */) {
    const synth_config *c = m->cfg;
    int C = c->embed_dim, w0 = c->window_spec[0];
    int H = (m->S + 2 * c->patch_padding - c->patch_kernel) / c->patch_stride + 1, W = H;
    float *plane = malloc(sizeof(float) * (size_t)H * W), *tmp = malloc(sizeof(float) * (size_t)c->bkg_h * W);
    if (!plane || !tmp) { free(plane); free(tmp); return -1; }
    for (int ch = 0; ch < C; ch++) {
        bicubic_resize(m->enc.pos_embed + (size_t)ch * c->bkg_h * c->bkg_w, c->bkg_h, c->bkg_w, plane, H, W, tmp);
        const float *win = m->enc.pos_embed_window + (size_t)ch * w0 * w0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                out[((size_t)y * W + x) * C + ch] = plane[(size_t)y * W + x] + win[(y % w0) * w0 + (x % w0)];
    }
    free(plane);
    free(tmp);
    return 0;
}

/* MultiScaleBlock.forward on a batch of B images. x[B, H*W, dim] NHWC -> out[B, Ho*Wo,
 * dim_out]; out must not alias x. The row-wise ops (norms, linears, GELU) and the
 * attention run once over all B images (B * tokens rows, B * windows attention items);
 * only the window partition / unpartition, which work on one map, loop over the images.
 * Every output row is computed by the same op on the same inputs as with B = 1.
 * Scratch comes from the arena and is released at the end. */
static int hiera_block_forward(samc_model *m, const hiera_block *bl, const float *x, int B, int H, int W, float *out,
                               int *Ho_out, int *Wo_out, int plan, samc_error *err) {
    const samc_ops *o = m->ops;
    int dim = bl->dim, dout = bl->dim_out, heads = bl->heads, hd = dout / heads;
    int pool = bl->q_pool;
    int Ho = pool ? H / 2 : H, Wo = pool ? W / 2 : W;
    /* Window layout: global attention is one window covering the whole (unpadded) map. */
    int wh = bl->window ? bl->window : H, ww = bl->window ? bl->window : W;
    int nwy = (H + wh - 1) / wh, nwx = (W + ww - 1) / ww, nw = nwy * nwx;
    int T = wh * ww;                                  /* tokens per window */
    int qh = pool ? wh / 2 : wh, qw = pool ? ww / 2 : ww, Tq = qh * qw;
    size_t HW = (size_t)H * W, HWo = (size_t)Ho * Wo;
    size_t mark = arena_mark(&m->arena);
    float *xn, *shortcut = NULL, *win, *qkv, *qpool = NULL, *attn, *ao, *hidden;
    ALLOC(xn, B * HW * dim);
    if (dim != dout) {
        float *full;
        ALLOC(full, B * HW * dout);
        ALLOC(shortcut, B * HWo * dout);
        if (!plan) {
            /* the shortcut is projected from the normalised x, then pooled like q */
            o->layer_norm(o, x, bl->norm1.w, bl->norm1.b, xn, B * H * W, dim, 1e-6f);
            o->linear(o, xn, bl->proj.w, bl->proj.b, full, B * H * W, dout, dim);
            if (pool) o->maxpool2x2(o, full, shortcut, B, H, W, dout, dout);
            else o->copy(o, shortcut, full, B * HW * dout);
        }
    }
    ALLOC(win, (size_t)B * nw * T * dim);
    ALLOC(qkv, (size_t)B * nw * T * 3 * dout);
    if (pool) ALLOC(qpool, (size_t)B * nw * Tq * dout);
    ALLOC(attn, (size_t)B * nw * Tq * dout);
    ALLOC(ao, (size_t)B * nw * Tq * dout);
    ALLOC(hidden, B * HWo * 4 * dout);
    if (plan) { arena_reset(&m->arena, mark); *Ho_out = Ho; *Wo_out = Wo; return 0; }

    if (dim == dout) {
        o->layer_norm(o, x, bl->norm1.w, bl->norm1.b, xn, B * H * W, dim, 1e-6f);
        shortcut = (float *)x;
    }
    /* window_partition with zero padding at the bottom/right (padded tokens not masked);
     * image i's windows follow image i-1's, so the batch is B * nw windows. */
    for (int i = 0; i < B; i++)
        o->window_partition(o, xn + i * HW * dim, win + (size_t)i * nw * T * dim, H, W, dim, wh, ww);
    /* qkv: [B * nw, T, 3, heads, hd], so q, k, v are contiguous thirds of each token row. */
    o->linear(o, win, bl->qkv.w, bl->qkv.b, qkv, B * nw * T, 3 * dout, dim);
    samc_attention_args a = {
        .batch = B * nw, .heads = heads, .n_q = Tq, .n_kv = T, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
        .k = qkv + dout, .k_sb = (ptrdiff_t)T * 3 * dout, .k_sh = hd, .k_st = 3 * dout,
        .v = qkv + 2 * dout, .v_sb = (ptrdiff_t)T * 3 * dout, .v_sh = hd, .v_st = 3 * dout,
        .out = attn, .o_sb = (ptrdiff_t)Tq * dout, .o_sh = hd, .o_st = dout,
    };
    if (pool) {
        /* MultiScaleAttention q-pooling: max-pool 2x2 of q inside each window, read in
         * place from the packed qkv rows. */
        o->maxpool2x2(o, qkv, qpool, B * nw, wh, ww, dout, 3 * dout);
        a.q = qpool; a.q_sb = (ptrdiff_t)Tq * dout; a.q_sh = hd; a.q_st = dout;
    } else {
        a.q = qkv; a.q_sb = (ptrdiff_t)T * 3 * dout; a.q_sh = hd; a.q_st = 3 * dout;
    }
    o->attention(o, &a);
    o->linear(o, attn, bl->attn_proj.w, bl->attn_proj.b, ao, B * nw * Tq, dout, dout);
    /* window_unpartition (crop the padding) + residual, image by image. */
    for (int i = 0; i < B; i++)
        o->window_unpartition_add(o, ao + (size_t)i * nw * Tq * dout, shortcut + i * HWo * dout,
                                  out + i * HWo * dout, Ho, Wo, dout, qh, qw, nwx);
    /* x = x + mlp(norm2(x)); MLP = Linear -> GELU -> Linear. */
    int N = B * Ho * Wo;
    o->layer_norm(o, out, bl->norm2.w, bl->norm2.b, xn, N, dout, 1e-6f);
    o->linear(o, xn, bl->mlp0.w, bl->mlp0.b, hidden, N, 4 * dout, dout);
    o->gelu(o, hidden, (size_t)N * 4 * dout);
    o->linear(o, hidden, bl->mlp1.w, bl->mlp1.b, ao, N, dout, 4 * dout);
    o->add(o, out, out, ao, (size_t)N * dout, (size_t)N * dout);
    arena_reset(&m->arena, mark);
    *Ho_out = Ho;
    *Wo_out = Wo;
    return 0;
}

/* PositionEmbeddingSine (normalize=True, scale 2*pi, temperature 10000) for the neck
 * dumps: [C, H, W], channels 0..C/2-1 from y, C/2..C-1 from x, sin/cos interleaved. */
static void sine_position_encoding(int C, int H, int W, float *out) {
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

/* FpnNeck.forward (top-down only into fpn_top_down_levels, nearest x2) and the 1x1
 * convs of SAM2Base.forward_image for B images; stage[i] are NCHW trunk outputs
 * [B, C_i, sh[i], sw[i]], highest res first. The 1x1 convs put the weight on the left
 * of an NCHW map, so they run image by image (a fixed weight times one image's map: the
 * same products as with B = 1); the neck is a small share of the encoder. */
static int fpn_neck_forward(samc_model *m, float *const stage[4], const int sh[4], const int sw[4],
                            samc_image *const *imgs, int B, int plan, samc_error *err) {
    const samc_ops *o = m->ops;
    const synth_config *c = m->cfg;
    int C = m->C;
    float *lvl[4];
    for (int i = 0; i < 4; i++) ALLOC(lvl[i], (size_t)B * C * sh[i] * sw[i]);
    if (plan) return 0;
    for (int b = 0; b < B; b++)
        for (int i = 3; i >= 0; i--) {
            /* convs[n-1-i] takes stage i (convs.0 is the lowest resolution). */
            const sam2_linear *cv = &m->enc.neck_convs[3 - i];
            int HW = sh[i] * sw[i], Cin = c->backbone_channel_list[3 - i];
            float *dst = lvl[i] + (size_t)b * C * HW;
            o->matmul(o, cv->w, stage[i] + (size_t)b * Cin * HW, cv->b, dst, C, HW, Cin);
            int top_down = (i == c->fpn_top_down_levels[0] || i == c->fpn_top_down_levels[1]) && i < 3;
            if (top_down)
                o->upsample_nearest2x_add(o, dst, lvl[i + 1] + (size_t)b * C * sh[i + 1] * sw[i + 1], C, sh[i + 1],
                                          sw[i + 1]);
        }
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "neck.fpn%d", i);
        sam2_dump(m, name, lvl[i], 4, (int64_t)B, (int64_t)C, (int64_t)sh[i], (int64_t)sw[i]);
        if (m->opt.dump) { /* the vision PE is not used by the image predictor: dumps only */
            float *pos = malloc(sizeof(float) * (size_t)C * sh[i] * sw[i]);
            if (pos) {
                sine_position_encoding(C, sh[i], sw[i], pos);
                snprintf(name, sizeof name, "neck.pos%d", i);
                sam2_dump_host(m, name, pos, 4, (int64_t)1, (int64_t)C, (int64_t)sh[i], (int64_t)sw[i]);
            }
            free(pos);
        }
    }
    sam2_dump(m, "backbone.fpn2", lvl[2], 4, (int64_t)B, (int64_t)C, (int64_t)sh[2], (int64_t)sw[2]);
    /* forward_image: high-res features for the decoder, then SAM2ImagePredictor.set_image's
     * directly_add_no_mem_embed on the lowest kept level; each image's own buffers (dumped
     * image by image). */
    const sam2_mask_decoder *d = &m->dec;
    for (int b = 0; b < B; b++) {
        samc_image *img = imgs[b];
        const float *l0 = lvl[0] + (size_t)b * C * sh[0] * sw[0], *l1 = lvl[1] + (size_t)b * C * sh[1] * sw[1];
        const float *l2 = lvl[2] + (size_t)b * C * sh[2] * sw[2];
        o->matmul(o, d->conv_s0.w, l0, d->conv_s0.b, img->feat_s0, C / 8, sh[0] * sw[0], C);
        o->matmul(o, d->conv_s1.w, l1, d->conv_s1.b, img->feat_s1, C / 4, sh[1] * sw[1], C);
        sam2_dump(m, "high_res_feats0", img->feat_s0, 4, (int64_t)1, (int64_t)(C / 8), (int64_t)sh[0], (int64_t)sw[0]);
        sam2_dump(m, "high_res_feats1", img->feat_s1, 4, (int64_t)1, (int64_t)(C / 4), (int64_t)sh[1], (int64_t)sw[1]);
        sam2_dump(m, "backbone.fpn0", img->feat_s0, 4, (int64_t)1, (int64_t)(C / 8), (int64_t)sh[0], (int64_t)sw[0]);
        sam2_dump(m, "backbone.fpn1", img->feat_s1, 4, (int64_t)1, (int64_t)(C / 4), (int64_t)sh[1], (int64_t)sw[1]);
        o->add_channel(o, img->image_embed, l2, d->no_mem_embed, C, sh[2] * sw[2]);
        sam2_dump(m, "image_embed", img->image_embed, 4, (int64_t)1, (int64_t)C, (int64_t)sh[2], (int64_t)sw[2]);
    }
    return 0;
}

/* The trunk and neck on B images at once: input [B, 3, S, S], imgs[0..B) receive the
 * features. Trunk tensors are [B, ...] throughout (dumped with batch dim B). */
int sam2_image_encoder_forward(samc_model *m, const float *input, samc_image *const *imgs, int B, int plan,
                               samc_error *err) {
    const samc_ops *o = m->ops;
    const synth_config *c = m->cfg;
    const sam2_image_encoder *e = &m->enc;
    int S = m->S, C0 = c->embed_dim;
    int H = (S + 2 * c->patch_padding - c->patch_kernel) / c->patch_stride + 1, W = H;
    size_t max_map = 0;
    { /* the largest NHWC map of any block input/output */
        int h = H;
        for (int b = 0; b < e->n_blocks; b++) {
            const hiera_block *bl = &e->blocks[b];
            size_t in = (size_t)h * h * bl->dim;
            if (bl->q_pool) h /= 2;
            size_t out = (size_t)h * h * bl->dim_out;
            if (in > max_map) max_map = in;
            if (out > max_map) max_map = out;
        }
    }
    size_t mark0 = arena_mark(&m->arena);
    float *xa, *xb, *chw, *stage[4];
    int sh[4], sw[4];
    ALLOC(xa, B * max_map);
    ALLOC(xb, B * max_map);
    ALLOC(chw, (size_t)B * C0 * H * W);
    {
        int h = H;
        for (int s = 0; s < 4; s++) {
            sh[s] = sw[s] = h;
            ALLOC(stage[s], (size_t)B * h * h * synth_stage_dim(c, s));
            h /= 2;
        }
    }
    double t0 = sam2_now_ms();
    if (!plan) {
        /* PatchEmbed: Conv2d 7x7/s4/p3 image by image, then to NHWC; plus the positional
         * embedding (the same for every image). */
        for (int b = 0; b < B; b++)
            o->conv2d(o, input + (size_t)b * 3 * S * S, e->patch_embed.w, e->patch_embed.b,
                      chw + (size_t)b * C0 * H * W, 3, S, S, C0, c->patch_kernel, c->patch_kernel, c->patch_stride,
                      c->patch_padding);
        o->transpose(o, chw, xa, B, C0, H * W);
        sam2_dump(m, "trunk.patch_embed", xa, 4, (int64_t)B, (int64_t)H, (int64_t)W, (int64_t)C0);
        sam2_dump(m, "trunk.pos_embed", m->pos_embed_hwc, 4, (int64_t)1, (int64_t)H, (int64_t)W, (int64_t)C0);
        o->add(o, xa, xa, m->pos_embed_hwc, (size_t)B * H * W * C0, (size_t)H * W * C0);
        m->timings.patch_embed_ms = sam2_now_ms() - t0;
        sam2_log(m, "encode: patch embed + pos embed %.1f ms", m->timings.patch_embed_ms);
    }
    float *x = xa, *y = xb;
    int stage_idx = 0;
    double ts = sam2_now_ms();
    for (int b = 0; b < e->n_blocks; b++) {
        const hiera_block *bl = &e->blocks[b];
        int Ho = H, Wo = W;
        if (hiera_block_forward(m, bl, x, B, H, W, y, &Ho, &Wo, plan, err)) return -1;
        H = Ho; W = Wo;
        float *t = x; x = y; y = t;
        if (plan) continue;
        char name[32];
        snprintf(name, sizeof name, "trunk.block%02d", b);
        sam2_dump(m, name, x, 4, (int64_t)B, (int64_t)H, (int64_t)W, (int64_t)bl->dim_out);
        if (b == e->stage_end[stage_idx]) {
            o->transpose(o, x, stage[stage_idx], B, H * W, bl->dim_out);
            snprintf(name, sizeof name, "trunk.stage%d", stage_idx);
            sam2_dump(m, name, stage[stage_idx], 4, (int64_t)B, (int64_t)bl->dim_out, (int64_t)H, (int64_t)W);
            m->timings.stage_ms[stage_idx] = sam2_now_ms() - ts;
            sam2_log(m, "encode: trunk stage %d (%dx%dx%d x %d) %.1f ms", stage_idx, H, W, bl->dim_out, B,
                     m->timings.stage_ms[stage_idx]);
            ts = sam2_now_ms();
            stage_idx++;
        }
    }
    double tn = sam2_now_ms();
    if (fpn_neck_forward(m, stage, sh, sw, imgs, B, plan, err)) return -1;
    if (!plan) {
        m->timings.neck_ms = sam2_now_ms() - tn;
        sam2_log(m, "encode: neck %.1f ms", m->timings.neck_ms);
    }
    arena_reset(&m->arena, mark0);
    return 0;
}
