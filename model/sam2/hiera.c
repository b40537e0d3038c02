/* model/sam2/hiera.c: the Hiera trunk, sam2/modeling/backbones/hieradet.py: PatchEmbed,
 * MultiScaleAttention, MultiScaleBlock, Hiera (weights image_encoder.trunk.*).
 *
 * The trunk works on NHWC token maps x[H*W, C] (row-major over y, then x), exactly the
 * (B, H, W, C) tensors of the official code, so block outputs dump as "trunk.blockNN".
 * Every function runs B images at once: row-wise ops (norms, linears, GELU) and the
 * attention see all B images' rows; only the window partition / unpartition, which work
 * on one map, loop over the images. Each output row is computed by the same op on the
 * same inputs as with B = 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/sam2/sam2.h"

#define I64(x) ((int64_t)(x))

/* ---- weights ---------------------------------------------------------------------- */

/* Block b's dims follow hieradet.Hiera.__init__: the window size lags one block at a
 * stage change, and the first block of a stage changes the width (proj) and pools q. */
void sam2_hiera_bind(rt_binder *b, const sam2_config *c, sam2_hiera_weights *e) {
    char k[256], p[128];
    int C0 = c->embed_dim, w0 = c->window_spec[0];
    rt_bind_conv(b, &e->patch_embed, "image_encoder.trunk.patch_embed.proj", C0, 3, c->patch_kernel, c->patch_kernel, C0);
    e->pos_embed = rt_bind(b, "image_encoder.trunk.pos_embed", 4, I64(1), I64(C0), I64(c->bkg_h), I64(c->bkg_w));
    e->pos_embed_window = rt_bind(b, "image_encoder.trunk.pos_embed_window", 4, I64(1), I64(C0), I64(w0), I64(w0));
    e->n_blocks = sam2_config_trunk_depth(c);
    if (e->n_blocks > SAM2_MAX_BLOCKS) {
        if (b->ok) samc_error_set(b->err, SAMC_ERR_MODEL, "%d trunk blocks, more than supported (%d)", e->n_blocks,
                                  SAM2_MAX_BLOCKS);
        b->ok = 0;
        return;
    }
    int end = -1;
    for (int s = 0; s < 4; s++) {
        end += c->stages[s];
        e->stage_end[s] = end;
    }
    int dim = C0, stage = 0;
    for (int i = 0; i < e->n_blocks; i++) {
        sam2_multiscale_block_weights *bl = &e->blocks[i];
        int window = c->window_spec[stage];              /* before a stage change: the lag */
        int first_of_stage = i > 0 && i - 1 == e->stage_end[stage];
        if (first_of_stage) stage++;
        bl->stage = stage;
        bl->dim = dim;
        bl->dim_out = sam2_config_stage_dim(c, stage);
        bl->heads = sam2_config_stage_heads(c, stage);
        bl->window = sam2_config_block_is_global(c, i) ? 0 : window;
        bl->q_pool = first_of_stage && stage <= c->q_pool;
        int hidden = c->mlp_ratio * bl->dim_out;
        snprintf(p, sizeof p, "image_encoder.trunk.blocks.%d", i);
        snprintf(k, sizeof k, "%s.norm1", p); rt_bind_norm(b, &bl->norm1, k, bl->dim);
        snprintf(k, sizeof k, "%s.attn.qkv", p); rt_bind_linear(b, &bl->qkv, k, 3 * bl->dim_out, bl->dim, 1);
        snprintf(k, sizeof k, "%s.attn.proj", p); rt_bind_linear(b, &bl->attn_proj, k, bl->dim_out, bl->dim_out, 1);
        snprintf(k, sizeof k, "%s.norm2", p); rt_bind_norm(b, &bl->norm2, k, bl->dim_out);
        snprintf(k, sizeof k, "%s.mlp.layers.0", p); rt_bind_linear(b, &bl->mlp0, k, hidden, bl->dim_out, 1);
        snprintf(k, sizeof k, "%s.mlp.layers.1", p); rt_bind_linear(b, &bl->mlp1, k, bl->dim_out, hidden, 1);
        if (bl->dim != bl->dim_out) {
            snprintf(k, sizeof k, "%s.proj", p);
            rt_bind_linear(b, &bl->proj, k, bl->dim_out, bl->dim, 1);
        }
        dim = bl->dim_out;
    }
}

/* ---- Hiera._get_pos_embed (a load-time constant) ------------------------------------ */

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

int sam2_hiera_pos_embed(const sam2_model *m, float *out /* [H*W, C0] */) {
    const sam2_config *c = m->cfg;
    int C = c->embed_dim, w0 = c->window_spec[0];
    int H = (m->S + 2 * c->patch_padding - c->patch_kernel) / c->patch_stride + 1, W = H;
    float *plane = malloc(sizeof(float) * (size_t)H * W), *tmp = malloc(sizeof(float) * (size_t)c->bkg_h * W);
    if (!plane || !tmp) {
        free(plane);
        free(tmp);
        return -1;
    }
    for (int ch = 0; ch < C; ch++) {
        bicubic_resize(m->trunk.pos_embed + (size_t)ch * c->bkg_h * c->bkg_w, c->bkg_h, c->bkg_w, plane, H, W, tmp);
        const float *win = m->trunk.pos_embed_window + (size_t)ch * w0 * w0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                out[((size_t)y * W + x) * C + ch] = plane[(size_t)y * W + x] + win[(y % w0) * w0 + (x % w0)];
    }
    free(plane);
    free(tmp);
    return 0;
}

/* ---- forward ------------------------------------------------------------------------ */

/* Where MultiScaleAttention finds its windows: nwin windows of wh x ww tokens, either
 * partitioned (win [nwin, wh*ww, dim], the rows of window w after those of w - 1) or, when
 * in_place, straight in the token map x [B, H, W, dim] of a map that is a multiple of the
 * window (nwin = B * (H/wh) * (W/ww), window b = (image, wy, wx) in row-major order). */
typedef struct {
    int nwin, wh, ww, in_place;
    int W, Wo; /* map widths in tokens, input and output (in_place) */
} hiera_windows;

/* The view of token rows of width C (a pointer into a map of `width` tokens per row, or
 * into partitioned windows) as the attention's (batch, token) indexing: element (b, t)
 * of window b's th x tw tokens. The window geometry of kernels/ops.h when in place. */
static void window_view(const hiera_windows *g, int th, int tw, int width, ptrdiff_t C, ptrdiff_t *sb, ptrdiff_t *sby,
                        ptrdiff_t *st, ptrdiff_t *sty) {
    *st = C;
    if (g->in_place) {
        *sb = tw * C;                        /* the next window to the right */
        *sby = (ptrdiff_t)th * width * C;    /* the next row of windows (or the next image) */
        *sty = (ptrdiff_t)width * C;         /* the next token row inside the window */
    } else {
        *sb = (ptrdiff_t)th * tw * C;
        *sby = *sty = 0;
    }
}

/* MultiScaleAttention.forward on the windows of g: src holds their tokens (partitioned,
 * or the token map in place) -> out [nwin, Tq, dim_out] in the same layout, with
 * Tq = wh*ww, or (wh/2)*(ww/2) when the block pools q; out = shortcut + attention when
 * shortcut is not NULL (the block's residual in the same layout: in place only). */
static int multiscale_attention(sam2_model *m, const sam2_multiscale_block_weights *bl, const float *src,
                                const hiera_windows *g, const float *shortcut, float *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int dim = bl->dim, dout = bl->dim_out, hd = dout / bl->heads, nwin = g->nwin, wh = g->wh, ww = g->ww;
    int T = wh * ww, qh = bl->q_pool ? wh / 2 : wh, qw = bl->q_pool ? ww / 2 : ww, Tq = qh * qw;
    size_t mark = rt_arena_mark(&m->rt);
    float *qkv, *qpool = NULL, *attn;
    RT_ALLOC(&m->rt, qkv, (size_t)nwin * T * 3 * dout);
    if (bl->q_pool && !g->in_place) RT_ALLOC(&m->rt, qpool, (size_t)nwin * Tq * dout);
    RT_ALLOC(&m->rt, attn, (size_t)nwin * Tq * dout);
    /* qkv: [tokens, 3, heads, hd], so q, k, v are contiguous thirds of each token row. It
     * is per token, so applying it to the map before the partition (in place) gives the
     * partitioned rows' values. */
    o->linear(o, src, bl->qkv.w, bl->qkv.b, qkv, nwin * T, 3 * dout, dim);
    samc_attention_args a = {
        .batch = nwin, .heads = bl->heads, .n_q = Tq, .n_kv = T, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
        .q = qkv, .q_sh = hd, .k = qkv + dout, .k_sh = hd, .v = qkv + 2 * dout, .v_sh = hd, .out = attn, .o_sh = hd,
    };
    window_view(g, wh, ww, g->W, 3 * dout, &a.q_sb, &a.q_sby, &a.q_st, &a.q_sty);
    window_view(g, wh, ww, g->W, 3 * dout, &a.k_sb, &a.k_sby, &a.k_st, &a.k_sty);
    window_view(g, wh, ww, g->W, 3 * dout, &a.v_sb, &a.v_sby, &a.v_st, &a.v_sty);
    window_view(g, qh, qw, g->Wo, dout, &a.o_sb, &a.o_sby, &a.o_st, &a.o_sty);
    if (g->in_place) {
        a.win_nx = g->W / ww;
        a.q_tw = qw;
        a.kv_tw = ww;
    }
    if (bl->q_pool && g->in_place) {
        /* q_pool fused: the attention reads each q token as the max of its 2x2 cell of the
         * unpooled window (wh, ww even), straight from the qkv rows: no pooling pass */
        a.q_pool = 1;
    } else if (bl->q_pool) {
        /* q_pool: max-pool 2x2 of q inside each window, read in place from the qkv rows. */
        o->maxpool2x2(o, qkv, qpool, nwin, wh, ww, dout, 3 * dout);
        a.q = qpool; a.q_sb = (ptrdiff_t)Tq * dout; a.q_sh = hd; a.q_st = dout;
    }
    o->attention(o, &a);
    /* proj, and in place the block's residual with it (x = shortcut + attn): one op, so
     * a backend may fold bias and residual into one pass (CUDA in bf16 / fp16) */
    if (shortcut)
        o->linear_act(o, attn, bl->attn_proj.w, bl->attn_proj.b, out, nwin * Tq, dout, dout, SAMC_ACT_NONE, shortcut);
    else o->linear(o, attn, bl->attn_proj.w, bl->attn_proj.b, out, nwin * Tq, dout, dout);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* MultiScaleBlock.forward: x [B, H*W, dim] -> out [B, Ho*Wo, dim_out] (out != x). */
static int multiscale_block(sam2_model *m, const sam2_multiscale_block_weights *bl, const float *x, int B, int H, int W,
                            float *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int dim = bl->dim, dout = bl->dim_out, pool = bl->q_pool;
    int Ho = pool ? H / 2 : H, Wo = pool ? W / 2 : W;
    /* Window layout: global attention is one window covering the whole (unpadded) map. */
    int wh = bl->window ? bl->window : H, ww = bl->window ? bl->window : W;
    int nwy = (H + wh - 1) / wh, nwx = (W + ww - 1) / ww, nw = nwy * nwx, T = wh * ww;
    int qh = pool ? wh / 2 : wh, qw = pool ? ww / 2 : ww, Tq = qh * qw;
    size_t HW = (size_t)H * W, HWo = (size_t)Ho * Wo;
    /* Windows read in place (no window_partition / window_unpartition copies) on backends
     * that prefer it (ops.h attention_windows; the plan asks the backend, not the planning
     * ops) when no window is padded: padded windows have keys and values made from zero
     * tokens (bias only), which only the partition's copy provides. Pooling in place needs
     * even windows, so that the map's 2x2 cells are the windows'. */
    hiera_windows g = { .nwin = B * nw, .wh = wh, .ww = ww, .W = W, .Wo = Wo };
    g.in_place = m->rt.backend->attention_windows && H % wh == 0 && W % ww == 0 &&
                 (!pool || (wh % 2 == 0 && ww % 2 == 0));
    size_t mark = rt_arena_mark(&m->rt);
    float *xn, *shortcut = (float *)x, *full = NULL, *win = NULL, *ao = NULL, *hidden, *x1;
    RT_ALLOC(&m->rt, xn, B * HW * dim);
    if (dim != dout) {
        RT_ALLOC(&m->rt, full, B * HW * dout);
        RT_ALLOC(&m->rt, shortcut, B * HWo * dout);
    }
    if (!g.in_place) {
        RT_ALLOC(&m->rt, win, (size_t)B * nw * T * dim);
        RT_ALLOC(&m->rt, ao, (size_t)B * nw * Tq * dout);
    }
    RT_ALLOC(&m->rt, hidden, B * HWo * 4 * dout);
    RT_ALLOC(&m->rt, x1, B * HWo * dout); /* x after the attention's residual */

    o->layer_norm(o, x, bl->norm1.w, bl->norm1.b, xn, B * H * W, dim, 1e-6f);
    if (dim != dout) {
        /* the shortcut is projected from the normalised x, then pooled like q */
        o->linear(o, xn, bl->proj.w, bl->proj.b, full, B * H * W, dout, dim);
        if (pool) o->maxpool2x2(o, full, shortcut, B, H, W, dout, dout);
        else o->copy(o, shortcut, full, B * HW * dout);
    }
    if (g.in_place) {
        /* the windows of the token map itself; x = shortcut + attn in the same pass */
        if (multiscale_attention(m, bl, xn, &g, shortcut, x1, err)) return -1;
    } else {
        /* window_partition with zero padding at the bottom/right (padded tokens not
         * masked); image i's windows follow image i-1's, so the batch is B * nw windows. */
        for (int i = 0; i < B; i++)
            o->window_partition(o, xn + i * HW * dim, win + (size_t)i * nw * T * dim, H, W, dim, wh, ww);
        if (multiscale_attention(m, bl, win, &g, NULL, ao, err)) return -1;
        /* window_unpartition (crop the padding) + residual, image by image: x = shortcut + attn */
        for (int i = 0; i < B; i++)
            o->window_unpartition_add(o, ao + (size_t)i * nw * Tq * dout, shortcut + i * HWo * dout,
                                      x1 + i * HWo * dout, Ho, Wo, dout, qh, qw, nwx);
    }
    /* x = x + mlp(norm2(x)); MLP = Linear -> GELU -> Linear. */
    int N = B * Ho * Wo;
    o->layer_norm(o, x1, bl->norm2.w, bl->norm2.b, xn, N, dout, 1e-6f);
    /* mlp.layers.0 + GELU, then mlp.layers.1 + the residual, each as one op: a backend may
     * fold bias, GELU and residual into one pass after the product (the CUDA backend in
     * bf16 / fp16); elsewhere linear, gelu and add as before, the same bits. The residual
     * x1 is not the output (linear_act's r must not alias y). */
    o->linear_act(o, xn, bl->mlp0.w, bl->mlp0.b, hidden, N, 4 * dout, dout, SAMC_ACT_GELU, NULL);
    o->linear_act(o, hidden, bl->mlp1.w, bl->mlp1.b, out, N, dout, 4 * dout, SAMC_ACT_NONE, x1);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* The largest NHWC map of any block input or output, per image. */
static size_t largest_block_map(const sam2_hiera_weights *e, int H) {
    size_t max_map = 0;
    for (int b = 0; b < e->n_blocks; b++) {
        const sam2_multiscale_block_weights *bl = &e->blocks[b];
        size_t in = (size_t)H * H * bl->dim;
        if (bl->q_pool) H /= 2;
        size_t out = (size_t)H * H * bl->dim_out;
        if (in > max_map) max_map = in;
        if (out > max_map) max_map = out;
    }
    return max_map;
}

/* PatchEmbed.forward: Conv2d 7x7/s4/p3 image by image, then permuted to NHWC:
 * input [B, 3, S, S] -> x [B, H*W, C0]; chw is scratch [B, C0, H, W]. */
static void patch_embed(sam2_model *m, const float *input, int B, int H, int W, float *chw, float *x) {
    const samc_ops *o = m->rt.ops;
    const sam2_config *c = m->cfg;
    int S = m->S, C0 = c->embed_dim;
    for (int b = 0; b < B; b++)
        o->conv2d(o, input + (size_t)b * 3 * S * S, m->trunk.patch_embed.w, m->trunk.patch_embed.b,
                  chw + (size_t)b * C0 * H * W, 3, S, S, C0, c->patch_kernel, c->patch_kernel, c->patch_stride,
                  c->patch_padding);
    o->transpose(o, chw, x, B, C0, H * W);
}

/* Hiera.forward on B images: patch embedding + positional embedding, the blocks, and the
 * NCHW output of each stage's last block (the intermediates FpnNeck takes):
 * input [B, 3, S, S] -> stage[s] [B, C_s, sh[s], sw[s]]. */
int sam2_hiera(sam2_model *m, const float *input, int B, float *const stage[4], int sh[4], int sw[4],
               samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam2_config *c = m->cfg;
    const sam2_hiera_weights *e = &m->trunk;
    int C0 = c->embed_dim;
    int H = (m->S + 2 * c->patch_padding - c->patch_kernel) / c->patch_stride + 1, W = H;
    size_t mark = rt_arena_mark(&m->rt), max_map = largest_block_map(e, H);
    float *xa, *xb, *chw;
    RT_ALLOC(&m->rt, xa, B * max_map);
    RT_ALLOC(&m->rt, xb, B * max_map);
    RT_ALLOC(&m->rt, chw, (size_t)B * C0 * H * W);
    patch_embed(m, input, B, H, W, chw, xa);
    rt_dump(&m->rt, "trunk.patch_embed", xa, 4, I64(B), I64(H), I64(W), I64(C0));
    rt_dump(&m->rt, "trunk.pos_embed", m->pos_embed_hwc, 4, I64(1), I64(H), I64(W), I64(C0));
    o->add(o, xa, xa, m->pos_embed_hwc, (size_t)B * H * W * C0, (size_t)H * W * C0);
    rt_mark(&m->rt, RT_MARK_ENC_PATCH); /* stage times: predictor.c, after the encode's sync */

    float *x = xa, *y = xb;
    int stage_idx = 0;
    for (int b = 0; b < e->n_blocks; b++) {
        const sam2_multiscale_block_weights *bl = &e->blocks[b];
        if (multiscale_block(m, bl, x, B, H, W, y, err)) return -1;
        if (bl->q_pool) { H /= 2; W /= 2; }
        float *t = x; x = y; y = t;
        char name[32];
        snprintf(name, sizeof name, "trunk.block%02d", b);
        rt_dump(&m->rt, name, x, 4, I64(B), I64(H), I64(W), I64(bl->dim_out));
        if (b != e->stage_end[stage_idx]) continue;
        o->transpose(o, x, stage[stage_idx], B, H * W, bl->dim_out);
        sh[stage_idx] = H;
        sw[stage_idx] = W;
        snprintf(name, sizeof name, "trunk.stage%d", stage_idx);
        rt_dump(&m->rt, name, stage[stage_idx], 4, I64(B), I64(bl->dim_out), I64(H), I64(W));
        rt_mark(&m->rt, RT_MARK_ENC_STAGE0 + stage_idx);
        stage_idx++;
    }
    rt_arena_reset(&m->rt, mark);
    return 0;
}
