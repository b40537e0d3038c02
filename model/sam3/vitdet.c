/* model/sam3/vitdet.c: the ViT trunk, sam3/model/vitdet.py: PatchEmbed, Attention with
 * 2-D axial RoPE, Block (windowed or global), ViT (weights backbone.vision_backbone.trunk.*).
 *
 * Tokens are NHWC rows x[g*g, C] (row-major over y, then x), the (B, H, W, C) tensors of
 * the official code, so block outputs dump as "vit.blockNN". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

/* ---- weights ---------------------------------------------------------------------- */

void sam3_vit_bind(rt_binder *b, const sam3_config *c, sam3_vit_weights *w) {
    const char *t = "backbone.vision_backbone.trunk";
    char k[256];
    int C = c->vit_dim, pg = c->pretrain_size / c->patch_size;
    w->depth = c->vit_depth;
    if (w->depth > SAM3_MAX_VIT_BLOCKS) {
        if (b->ok) samc_error_set(b->err, SAMC_ERR_MODEL, "%d ViT blocks, more than supported (%d)", w->depth,
                                  SAM3_MAX_VIT_BLOCKS);
        b->ok = 0;
        return;
    }
    snprintf(k, sizeof k, "%s.patch_embed.proj", t);
    rt_bind_conv(b, &w->patch_embed, k, C, 3, c->patch_size, c->patch_size, 0);
    snprintf(k, sizeof k, "%s.pos_embed", t);
    w->pos_embed = rt_bind(b, k, 3, I64(1), I64(pg * pg + 1), I64(C));
    snprintf(k, sizeof k, "%s.ln_pre", t);
    rt_bind_norm(b, &w->ln_pre, k, C);
    for (int i = 0; i < w->depth; i++) {
        sam3_vit_block_weights *bl = &w->blocks[i];
        bl->window = sam3_config_block_is_global(c, i) ? 0 : c->window;
        snprintf(k, sizeof k, "%s.blocks.%d.norm1", t, i); rt_bind_norm(b, &bl->norm1, k, C);
        snprintf(k, sizeof k, "%s.blocks.%d.attn.qkv", t, i); rt_bind_linear(b, &bl->qkv, k, 3 * C, C, 1);
        snprintf(k, sizeof k, "%s.blocks.%d.attn.proj", t, i); rt_bind_linear(b, &bl->proj, k, C, C, 1);
        snprintf(k, sizeof k, "%s.blocks.%d.norm2", t, i); rt_bind_norm(b, &bl->norm2, k, C);
        snprintf(k, sizeof k, "%s.blocks.%d.mlp.fc1", t, i); rt_bind_linear(b, &bl->fc1, k, c->vit_mlp_hidden, C, 1);
        snprintf(k, sizeof k, "%s.blocks.%d.mlp.fc2", t, i); rt_bind_linear(b, &bl->fc2, k, C, c->vit_mlp_hidden, 1);
    }
}

/* ---- load-time constants ------------------------------------------------------------ */

/* compute_axial_cis(dim=hd, end_x=end_y=side, theta=1e4, scale_pos=scale): freqs[k] =
 * 1 / 10000^((4k)/hd) for k < hd/4, token n at (n % side, n / side) * scale, the angles
 * t * freq and their cos / sin in float as the constructor computes them; pairs 0..hd/4-1
 * rotate with x, the rest with y. */
void sam3_vit_rope_table(int hd, int side, float scale, float *cos_out, float *sin_out) {
    int quarter = hd / 4, half = hd / 2;
    for (int n = 0; n < side * side; n++) {
        float tx = (float)(n % side) * scale, ty = (float)(n / side) * scale;
        for (int k = 0; k < quarter; k++) {
            float freq = 1.0f / powf(10000.0f, (float)(4 * k) / (float)hd);
            float ax = tx * freq, ay = ty * freq;
            cos_out[(size_t)n * half + k] = cosf(ax);
            sin_out[(size_t)n * half + k] = sinf(ax);
            cos_out[(size_t)n * half + quarter + k] = cosf(ay);
            sin_out[(size_t)n * half + quarter + k] = sinf(ay);
        }
    }
}

/* get_abs_pos(tiling=True): the cls row dropped, the pg x pg table repeated periodically
 * (not interpolated) over the g x g grid: out[y*g + x] = pos[1 + (y % pg)*pg + x % pg]. */
void sam3_vit_pos_tiled(const sam3_model *m, const float *pos_embed, float *out) {
    int C = m->C, g = m->g, pg = m->cfg->pretrain_size / m->cfg->patch_size;
    for (int y = 0; y < g; y++)
        for (int x = 0; x < g; x++) {
            const float *src = pos_embed + (size_t)(1 + (y % pg) * pg + x % pg) * C;
            float *dst = out + ((size_t)y * g + x) * C;
            for (int c = 0; c < C; c++) dst[c] = src[c];
        }
}

/* ---- forward ------------------------------------------------------------------------ */

/* Attention.forward on nwin windows of T tokens each: win [nwin*T, C] -> out [nwin*T, C].
 * qkv is [T, 3, heads, hd] per token, so q, k, v are thirds of each row; RoPE rotates q
 * and k in place with the block's table (window tokens, or the whole grid). */
static int vit_attention(sam3_model *m, const sam3_vit_block_weights *bl, const float *win, int nwin, int T,
                         float *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int C = m->C, heads = m->cfg->vit_heads, hd = C / heads;
    size_t mark = rt_arena_mark(&m->rt);
    float *qkv, *att;
    RT_ALLOC(&m->rt, qkv, (size_t)nwin * T * 3 * C);
    RT_ALLOC(&m->rt, att, (size_t)nwin * T * C);
    o->linear(o, win, bl->qkv.w, bl->qkv.b, qkv, nwin * T, 3 * C, C);
    const float *cs = bl->window ? m->rope_win_cos : m->rope_glob_cos, *sn = bl->window ? m->rope_win_sin : m->rope_glob_sin;
    o->rope(o, qkv, nwin * T, 3 * C, heads, hd, cs, sn, T);
    o->rope(o, qkv + C, nwin * T, 3 * C, heads, hd, cs, sn, T);
    samc_attention_args a = {
        .batch = nwin, .heads = heads, .n_q = T, .n_kv = T, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
        .q = qkv, .q_sb = (ptrdiff_t)T * 3 * C, .q_sh = hd, .q_st = 3 * C,
        .k = qkv + C, .k_sb = (ptrdiff_t)T * 3 * C, .k_sh = hd, .k_st = 3 * C,
        .v = qkv + 2 * C, .v_sb = (ptrdiff_t)T * 3 * C, .v_sh = hd, .v_st = 3 * C,
        .out = att, .o_sb = (ptrdiff_t)T * C, .o_sh = hd, .o_st = C,
    };
    o->attention(o, &a);
    o->linear(o, att, bl->proj.w, bl->proj.b, out, nwin * T, C, C);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* Block.forward: x [g*g, C] -> out [g*g, C] (out != x). Windows of window^2 tokens
 * (g is a multiple of the window in both configs: no padding), or the whole grid. */
static int vit_block(sam3_model *m, const sam3_vit_block_weights *bl, const float *x, float *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int C = m->C, g = m->g, hidden = m->cfg->vit_mlp_hidden;
    int ws = bl->window ? bl->window : g, nw = (g / ws) * (g / ws), T = ws * ws;
    size_t N = (size_t)g * g, mark = rt_arena_mark(&m->rt);
    float *xn, *win, *ao, *h;
    RT_ALLOC(&m->rt, xn, N * C);
    RT_ALLOC(&m->rt, win, N * C);
    RT_ALLOC(&m->rt, ao, N * C);
    RT_ALLOC(&m->rt, h, N * hidden);
    o->layer_norm(o, x, bl->norm1.w, bl->norm1.b, xn, (int)N, C, 1e-5f);
    const float *in = xn;
    if (bl->window) {
        o->window_partition(o, xn, win, g, g, C, ws, ws);
        in = win;
    }
    if (vit_attention(m, bl, in, nw, T, ao, err)) return -1;
    /* x + attn(norm1(x)): window_unpartition + shortcut (a global block is one window of
     * the whole grid), into win (free again) */
    float *mid = win;
    o->window_unpartition_add(o, ao, x, mid, g, g, C, ws, ws, g / ws);
    /* mid + mlp(norm2(mid)): fc1 + GELU, then fc2 + the residual, each one linear_act
     * (the same arithmetic as linear, gelu, add; fused on CUDA) */
    o->layer_norm(o, mid, bl->norm2.w, bl->norm2.b, xn, (int)N, C, 1e-5f);
    o->linear_act(o, xn, bl->fc1.w, bl->fc1.b, h, (int)N, hidden, C, SAMC_ACT_GELU, NULL);
    o->linear_act(o, h, bl->fc2.w, bl->fc2.b, out, (int)N, C, hidden, SAMC_ACT_NONE, mid);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* PatchEmbed (conv 14x14 / 14, no bias, then NHWC), + tiled abs pos, ln_pre:
 * input [3, S, S] -> x [g*g, C]. */
static void vit_embed(sam3_model *m, const float *input, float *chw, float *x) {
    const samc_ops *o = m->rt.ops;
    int C = m->C, g = m->g, p = m->cfg->patch_size;
    o->conv2d(o, input, m->vit.patch_embed.w, NULL, chw, 3, m->S, m->S, C, p, p, p, 0);
    o->transpose(o, chw, x, 1, C, g * g);
    rt_dump(&m->rt, "vit.patch_embed", x, 4, I64(1), I64(g), I64(g), I64(C));
    rt_dump(&m->rt, "vit.pos_embed_tiled", m->pos_tiled, 4, I64(1), I64(g), I64(g), I64(C));
    o->add(o, x, x, m->pos_tiled, (size_t)g * g * C, (size_t)g * g * C);
    rt_dump(&m->rt, "vit.embed_plus_pos", x, 4, I64(1), I64(g), I64(g), I64(C));
    o->layer_norm(o, x, m->vit.ln_pre.w, m->vit.ln_pre.b, x, g * g, C, 1e-5f);
    rt_dump(&m->rt, "vit.ln_pre", x, 4, I64(1), I64(g), I64(g), I64(C));
}

static void dump_rope(const sam3_model *m) {
    int hd = m->C / m->cfg->vit_heads, w2 = m->cfg->window * m->cfg->window, g2 = m->g * m->g;
    rt_dump(&m->rt, "vit.rope_window.cos", m->rope_win_cos, 2, I64(w2), I64(hd / 2));
    rt_dump(&m->rt, "vit.rope_window.sin", m->rope_win_sin, 2, I64(w2), I64(hd / 2));
    rt_dump(&m->rt, "vit.rope_global.cos", m->rope_glob_cos, 2, I64(g2), I64(hd / 2));
    rt_dump(&m->rt, "vit.rope_global.sin", m->rope_glob_sin, 2, I64(g2), I64(hd / 2));
}

/* ViT.forward: the last block's output (ln_post is an Identity) as NCHW [C, g, g]. */
int sam3_vit(sam3_model *m, const float *input, float *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int C = m->C, g = m->g;
    size_t N = (size_t)g * g, mark = rt_arena_mark(&m->rt);
    /* Reduced precision (bf16 / fp16 on CUDA): the ViT keeps its activations in 16 bits
     * (its ops are SAM2.1's, which have 16-bit kernels, and rope) behind the pad of
     * sam3_lowp_begin (the image input and the map `out` are fp32 and still needed). */
    int lowp;
    float *xa, *xb;
    dump_rope(m);
    if (sam3_lowp_begin(m, &lowp, err)) return -1;
    if (!(xa = rt_arena_floats(&m->rt, N * C)) || !(xb = rt_arena_floats(&m->rt, N * C))) {
        sam3_lowp_end(m, lowp);
        return samc_error_set(err, SAMC_ERR_INTERNAL, "scratch arena exhausted at %s:%d", __FILE__, __LINE__);
    }
    double t0 = rt_now_ms();
    vit_embed(m, input, xb, xa); /* xb: the patch embed's NCHW scratch */
    rt_mark(&m->rt, RT_MARK_ENC_PATCH);
    m->timings.patch_embed_ms = rt_now_ms() - t0;
    rt_log(&m->rt, "encode: patch embed + pos embed + ln_pre %.1f ms", m->timings.patch_embed_ms);
    double tb = rt_now_ms();
    for (int b = 0; b < m->vit.depth; b++) {
        double t1 = rt_now_ms();
        if (vit_block(m, &m->vit.blocks[b], xa, xb, err)) {
            sam3_lowp_end(m, lowp);
            return -1;
        }
        float *t = xa; xa = xb; xb = t;
        char name[32];
        snprintf(name, sizeof name, "vit.block%02d", b);
        rt_dump(&m->rt, name, xa, 4, I64(1), I64(g), I64(g), I64(C));
        rt_log(&m->rt, "encode: ViT block %d (%s) %.1f ms", b, m->vit.blocks[b].window ? "windowed" : "global",
               rt_now_ms() - t1);
    }
    /* back to fp32: the map for the neck is written in fp32 */
    sam3_lowp_end(m, lowp);
    o->transpose(o, xa, out, 1, (int)N, C);
    rt_mark(&m->rt, RT_MARK_ENC_STAGE0);
    m->timings.stage_ms[0] = rt_now_ms() - tb;
    rt_arena_reset(&m->rt, mark);
    return 0;
}
