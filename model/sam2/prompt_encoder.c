/* model/sam2/prompt_encoder.c: sam2/modeling/sam/prompt_encoder.py PromptEncoder and its
 * PositionEmbeddingRandom, a fixed Gaussian random-Fourier-feature encoding (weights
 * sam_prompt_encoder.*). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/sam2/sam2.h"

#define I64(x) ((int64_t)(x))

void sam2_prompt_encoder_bind(rt_binder *b, const sam2_config *c, sam2_prompt_encoder_weights *pe) {
    char k[96];
    int C = c->d_model, mc = c->mask_in_chans;
    pe->pe_gaussian = rt_bind(b, "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", 2, I64(2),
                              I64(C / 2));
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "sam_prompt_encoder.point_embeddings.%d.weight", i);
        pe->point_embed[i] = rt_bind(b, k, 2, I64(1), I64(C));
    }
    pe->not_a_point_embed = rt_bind(b, "sam_prompt_encoder.not_a_point_embed.weight", 2, I64(1), I64(C));
    pe->no_mask_embed = rt_bind(b, "sam_prompt_encoder.no_mask_embed.weight", 2, I64(1), I64(C));
    rt_bind_conv(b, &pe->mask_ds_conv[0], "sam_prompt_encoder.mask_downscaling.0", mc / 4, 1, 2, 2, mc / 4);
    rt_bind_norm(b, &pe->mask_ds_norm[0], "sam_prompt_encoder.mask_downscaling.1", mc / 4);
    rt_bind_conv(b, &pe->mask_ds_conv[1], "sam_prompt_encoder.mask_downscaling.3", mc, mc / 4, 2, 2, mc);
    rt_bind_norm(b, &pe->mask_ds_norm[1], "sam_prompt_encoder.mask_downscaling.4", mc);
    rt_bind_conv(b, &pe->mask_ds_conv[2], "sam_prompt_encoder.mask_downscaling.6", C, mc, 1, 1, C);
}

/* PositionEmbeddingRandom._pe_encoding: c in [0,1]^2 -> [sin(2*pi*p@G), cos(2*pi*p@G)], p = 2c-1. */
static void pe_encoding(const float *G /* [2, C/2] */, int C, float cx, float cy, float *out /* [C] */) {
    int half = C / 2;
    float px = 2.0f * cx - 1.0f, py = 2.0f * cy - 1.0f;
    const float two_pi = 6.28318530717958647692f;
    for (int k = 0; k < half; k++) {
        float proj = px * G[k] + py * G[half + k];
        proj = two_pi * proj;
        out[k] = sinf(proj);
        out[half + k] = cosf(proj);
    }
}

/* PositionEmbeddingRandom.forward((h, w)): the dense PE at pixel centres, [C, h, w]. */
void sam2_prompt_encoder_dense_pe(const sam2_model *m, float *out) {
    int C = m->C, g = m->S / 16;
    float pe[1024];
    for (int i = 0; i < g; i++)
        for (int j = 0; j < g; j++) {
            float cx = ((float)j + 0.5f) / (float)g, cy = ((float)i + 0.5f) / (float)g;
            pe_encoding(m->pe_host.pe_gaussian, C, cx, cy, pe);
            for (int c = 0; c < C; c++) out[((size_t)c * g + i) * g + j] = pe[c];
        }
}

/* PromptEncoder._embed_masks: conv2x2/s2 -> LN2d -> GELU -> conv2x2/s2 -> LN2d -> GELU -> conv1x1. */
static void embed_masks(sam2_model *m, const float *mask /* [S/4, S/4] */, float *t0, float *t1, float *dense,
                       int dump_b0) {
    const samc_ops *o = m->rt.ops;
    const sam2_prompt_encoder_weights *pe = &m->pe;
    int L = m->S / 4, mc = m->cfg->mask_in_chans, C = m->C;
    int h1 = L / 2, h2 = L / 4;
    o->conv2d(o, mask, pe->mask_ds_conv[0].w, pe->mask_ds_conv[0].b, t0, 1, L, L, mc / 4, 2, 2, 2, 0);
    if (dump_b0) rt_dump(&m->rt, "prompt.mask_downscaling0", t0, 4, I64(1), I64(mc / 4), I64(h1), I64(h1));
    o->layer_norm2d(o, t0, pe->mask_ds_norm[0].w, pe->mask_ds_norm[0].b, t0, mc / 4, h1 * h1, 1e-6f);
    if (dump_b0) rt_dump(&m->rt, "prompt.mask_downscaling1", t0, 4, I64(1), I64(mc / 4), I64(h1), I64(h1));
    o->gelu(o, t0, (size_t)(mc / 4) * h1 * h1);
    if (dump_b0) rt_dump(&m->rt, "prompt.mask_downscaling2", t0, 4, I64(1), I64(mc / 4), I64(h1), I64(h1));
    o->conv2d(o, t0, pe->mask_ds_conv[1].w, pe->mask_ds_conv[1].b, t1, mc / 4, h1, h1, mc, 2, 2, 2, 0);
    if (dump_b0) rt_dump(&m->rt, "prompt.mask_downscaling3", t1, 4, I64(1), I64(mc), I64(h2), I64(h2));
    o->layer_norm2d(o, t1, pe->mask_ds_norm[1].w, pe->mask_ds_norm[1].b, t1, mc, h2 * h2, 1e-6f);
    if (dump_b0) rt_dump(&m->rt, "prompt.mask_downscaling4", t1, 4, I64(1), I64(mc), I64(h2), I64(h2));
    o->gelu(o, t1, (size_t)mc * h2 * h2);
    if (dump_b0) rt_dump(&m->rt, "prompt.mask_downscaling5", t1, 4, I64(1), I64(mc), I64(h2), I64(h2));
    o->matmul(o, pe->mask_ds_conv[2].w, t1, pe->mask_ds_conv[2].b, dense, C, h2 * h2, mc);
}

/* PromptEncoder._embed_points, on the host (a few tokens): +0.5 to pixel centres,
 * normalise by the input size, encode; label -1 is padding (not_a_point_embed, PE
 * dropped), labels 0..3 add point_embeddings[label]. Into m->h_sparse [B, N, C]. */
void sam2_prompt_encoder_points(sam2_model *m, const float *coords, const int *labels, int B, int N) {
    const sam2_prompt_encoder_weights *pe = &m->pe_host;
    int C = m->C, S = m->S;
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            const float *p = coords + ((size_t)b * N + n) * 2;
            int lab = labels[(size_t)b * N + n];
            float *out = m->h_sparse + ((size_t)b * N + n) * C;
            if (lab == -1) {
                memcpy(out, pe->not_a_point_embed, sizeof(float) * C);
                continue;
            }
            float cx = (p[0] + 0.5f) / (float)S, cy = (p[1] + 0.5f) / (float)S;
            pe_encoding(pe->pe_gaussian, C, cx, cy, out);
            const float *add = pe->point_embed[lab < 0 ? 0 : lab > 3 ? 3 : lab];
            for (int c = 0; c < C; c++) out[c] += add[c];
        }
}

/* PromptEncoder.forward's dense embedding: the mask prompt, or no_mask_embed everywhere
 * (the sparse one is sam2_prompt_encoder_points, uploaded by the caller). */
int sam2_prompt_encoder(sam2_model *m, int B, const float *mask_input, float *dense, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int C = m->C, S = m->S, g = S / 16, L = S / 4, mc = m->cfg->mask_in_chans;
    if (C > 1024) return samc_error_set(err, SAMC_ERR_MODEL, "prompt encoder width %d > 1024 is not supported", C);
    size_t mark = rt_arena_mark(&m->rt);
    float *t0, *t1;
    RT_ALLOC(&m->rt, t0, (size_t)(mc / 4) * (L / 2) * (L / 2));
    RT_ALLOC(&m->rt, t1, (size_t)mc * g * g);
    for (int b = 0; b < B; b++) {
        float *d = dense + (size_t)b * C * g * g;
        if (mask_input) embed_masks(m, mask_input + (size_t)b * L * L, t0, t1, d, b == 0 && B == 1);
        else o->add_channel(o, d, NULL, m->pe.no_mask_embed, C, g * g);
    }
    rt_arena_reset(&m->rt, mark);
    return 0;
}
