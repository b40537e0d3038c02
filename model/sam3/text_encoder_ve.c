/* model/sam3/text_encoder_ve.c: the text encoder, sam3/model/text_encoder_ve.py:
 * ResidualAttentionBlock, TextTransformer, VETextEncoder (weights
 * backbone.language_backbone.*). A CLIP-style causal transformer over the 32 token ids;
 * every position is computed (the padding mask ids == 0 is applied downstream only),
 * then ln_final and the resizer to d_model. text_projection is in the checkpoint but the
 * image model never uses it. */
#include <math.h>
#include <stdio.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

void sam3_text_bind(rt_binder *b, const sam3_config *c, sam3_text_weights *w) {
    const char *e = "backbone.language_backbone.encoder";
    int W = c->text_width;
    char k[256];
    w->layers = c->text_layers;
    if (w->layers > SAM3_MAX_TEXT_LAYERS) {
        if (b->ok) samc_error_set(b->err, SAMC_ERR_MODEL, "%d text layers, more than supported (%d)", w->layers,
                                  SAM3_MAX_TEXT_LAYERS);
        b->ok = 0;
        return;
    }
    snprintf(k, sizeof k, "%s.token_embedding.weight", e);
    w->token_embedding = rt_bind(b, k, 2, I64(c->vocab), I64(W));
    snprintf(k, sizeof k, "%s.positional_embedding", e);
    w->positional_embedding = rt_bind(b, k, 2, I64(c->text_ctx), I64(W));
    for (int i = 0; i < w->layers; i++) {
        sam3_text_block_weights *bl = &w->blocks[i];
        snprintf(k, sizeof k, "%s.transformer.resblocks.%d.attn", e, i); sam3_mha_bind(b, &bl->attn, k, W, c->text_heads);
        snprintf(k, sizeof k, "%s.transformer.resblocks.%d.ln_1", e, i); rt_bind_norm(b, &bl->ln_1, k, W);
        snprintf(k, sizeof k, "%s.transformer.resblocks.%d.ln_2", e, i); rt_bind_norm(b, &bl->ln_2, k, W);
        snprintf(k, sizeof k, "%s.transformer.resblocks.%d.mlp.c_fc", e, i); rt_bind_linear(b, &bl->c_fc, k, 4 * W, W, 1);
        snprintf(k, sizeof k, "%s.transformer.resblocks.%d.mlp.c_proj", e, i); rt_bind_linear(b, &bl->c_proj, k, W, 4 * W, 1);
    }
    snprintf(k, sizeof k, "%s.ln_final", e);
    rt_bind_norm(b, &w->ln_final, k, W);
    rt_bind_linear(b, &w->resizer, "backbone.language_backbone.resizer", c->d_model, W, 1);
}

/* ResidualAttentionBlock.forward: x += attn(ln_1(x), causal mask); x += mlp(ln_2(x))
 * with mlp = c_fc -> GELU (erf) -> c_proj. x [T, W]. */
static int residual_attention_block(sam3_model *m, const sam3_text_block_weights *bl, float *x, int T,
                                    samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int W = m->cfg->text_width;
    size_t mark = rt_arena_mark(&m->rt);
    float *xn, *a, *h;
    RT_ALLOC(&m->rt, xn, (size_t)T * W);
    RT_ALLOC(&m->rt, a, (size_t)T * W);
    RT_ALLOC(&m->rt, h, (size_t)T * 4 * W);
    samc_attention_bias causal = { m->causal, 0, 0, T };
    o->layer_norm(o, x, bl->ln_1.w, bl->ln_1.b, xn, T, W, 1e-5f);
    if (sam3_multihead_attention(m, &bl->attn, xn, xn, xn, T, T, &causal, a, err)) return -1;
    o->add(o, x, x, a, (size_t)T * W, (size_t)T * W);
    o->layer_norm(o, x, bl->ln_2.w, bl->ln_2.b, xn, T, W, 1e-5f);
    o->linear_act(o, xn, bl->c_fc.w, bl->c_fc.b, h, T, 4 * W, W, SAMC_ACT_GELU, NULL);
    o->linear(o, h, bl->c_proj.w, bl->c_proj.b, a, T, W, 4 * W);
    o->add(o, x, x, a, (size_t)T * W, (size_t)T * W);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* The ids and padding mask as recorded (ints, dumped as floats). */
static void dump_ids(const sam3_model *m, const int32_t *ids) {
    if (!rt_dumping(&m->rt)) return;
    float f[SAM3_CTX], mask[SAM3_CTX];
    for (int t = 0; t < SAM3_CTX; t++) {
        f[t] = (float)ids[t];
        mask[t] = ids[t] == 0;
    }
    rt_dump_host(&m->rt, "text.token_ids", f, 2, I64(1), I64(SAM3_CTX));
    rt_dump_host(&m->rt, "text.pad_mask", mask, 2, I64(1), I64(SAM3_CTX));
}

/* What follows the token gather, a fixed sequence of ops on fixed buffers: one graph. */
typedef struct {
    sam3_model *m;
    float *x, *features;
} text_job;

static int text_enqueue(void *ctx, samc_error *err) {
    const text_job *j = ctx;
    sam3_model *m = j->m;
    const samc_ops *o = m->rt.ops;
    const sam3_text_weights *w = &m->text;
    int T = SAM3_CTX, W = m->cfg->text_width;
    float *x = j->x;
    o->add(o, x, x, w->positional_embedding, (size_t)T * W, (size_t)T * W);
    rt_dump(&m->rt, "text.embed_plus_pos", x, 3, I64(1), I64(T), I64(W));
    for (int i = 0; i < w->layers; i++) {
        if (residual_attention_block(m, &w->blocks[i], x, T, err)) return -1;
        char name[32];
        snprintf(name, sizeof name, "text.block%02d", i);
        rt_dump(&m->rt, name, x, 3, I64(1), I64(T), I64(W));
    }
    o->layer_norm(o, x, w->ln_final.w, w->ln_final.b, x, T, W, 1e-5f);
    rt_dump(&m->rt, "text.ln_final", x, 3, I64(1), I64(T), I64(W));
    o->linear(o, x, w->resizer.w, w->resizer.b, j->features, T, m->D, W);
    return 0;
}

/* VETextEncoder.forward: token_embedding[ids] + positional_embedding, the blocks,
 * ln_final, resizer: ids [ctx] -> features [ctx, d] (seq-first (ctx, 1, d)). The rows of
 * the embedding table are gathered with backend copies (the table is in its memory);
 * the rest, the same ops on the same buffers for every text, runs as one graph on device
 * backends (rt_graph_run: captured for the first text, replayed for the next ones: about
 * 500 launches of small kernels, 32 tokens x 1024 wide, become one). */
int sam3_text_encoder(sam3_model *m, const int32_t *ids, float *features, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_text_weights *w = &m->text;
    int T = SAM3_CTX, W = m->cfg->text_width;
    size_t mark = rt_arena_mark(&m->rt);
    float *x;
    RT_ALLOC(&m->rt, x, (size_t)T * W);
    dump_ids(m, ids);
    for (int t = 0; t < T; t++) {
        int id = ids[t] >= 0 && ids[t] < m->cfg->vocab ? ids[t] : 0;   /* checked by the caller */
        o->copy(o, x + (size_t)t * W, w->token_embedding + (size_t)id * W, (size_t)W);
    }
    rt_dump(&m->rt, "text.token_embed", x, 3, I64(1), I64(T), I64(W));
    text_job job = { m, x, features };
    /* the graph holds x (the arena position, which rt_graph_run matches) and features (its
     * address, in the key: user-space addresses fit 56 bits) */
    uint64_t key = SAM3_GRAPH_TEXT | ((uint64_t)(uintptr_t)features & (((uint64_t)1 << 56) - 1));
    if (rt_graph_run(&m->rt, key, text_enqueue, &job, err)) return -1;
    rt_dump(&m->rt, "text.features", features, 3, I64(T), I64(1), I64(m->D));
    rt_arena_reset(&m->rt, mark);
    return 0;
}
