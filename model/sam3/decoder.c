/* model/sam3/decoder.c: sam3/model/decoder.py TransformerDecoderLayer and
 * TransformerDecoder (weights transformer.decoder.*): a DETR decoder with box refinement,
 * a presence token and the box relative-position bias ("boxRPB", log mode).
 *
 * Each layer's reference boxes (Q x 4 values) live on the host: the sine code of the
 * boxes (query_sine) and the relative-position inputs are made there, the MLPs and the
 * attention run on the backend, and the refined boxes come back (one small download per
 * layer). The presence token is row 0 of the queries in every attention, with a zero
 * position and a zero bias row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

void sam3_decoder_bind(rt_binder *b, const sam3_config *c, sam3_decoder_weights *w) {
    const char *t = "transformer.decoder";
    int d = c->d_model, h = c->dec_heads;
    char k[256];
    w->layers = c->dec_layers < SAM3_MAX_LAYERS ? c->dec_layers : SAM3_MAX_LAYERS;
    for (int i = 0; i < w->layers; i++) {
        sam3_decoder_layer_weights *l = &w->layer[i];
        snprintf(k, sizeof k, "%s.layers.%d.cross_attn", t, i); sam3_mha_bind(b, &l->cross_attn, k, d, h);
        snprintf(k, sizeof k, "%s.layers.%d.norm1", t, i); rt_bind_norm(b, &l->norm1, k, d);
        snprintf(k, sizeof k, "%s.layers.%d.ca_text", t, i); sam3_mha_bind(b, &l->ca_text, k, d, h);
        snprintf(k, sizeof k, "%s.layers.%d.catext_norm", t, i); rt_bind_norm(b, &l->catext_norm, k, d);
        snprintf(k, sizeof k, "%s.layers.%d.self_attn", t, i); sam3_mha_bind(b, &l->self_attn, k, d, h);
        snprintf(k, sizeof k, "%s.layers.%d.norm2", t, i); rt_bind_norm(b, &l->norm2, k, d);
        snprintf(k, sizeof k, "%s.layers.%d.linear1", t, i); rt_bind_linear(b, &l->linear1, k, c->dec_ffn, d, 1);
        snprintf(k, sizeof k, "%s.layers.%d.linear2", t, i); rt_bind_linear(b, &l->linear2, k, d, c->dec_ffn, 1);
        snprintf(k, sizeof k, "%s.layers.%d.norm3", t, i); rt_bind_norm(b, &l->norm3, k, d);
    }
    snprintf(k, sizeof k, "%s.norm", t); rt_bind_norm(b, &w->norm, k, d);
    snprintf(k, sizeof k, "%s.bbox_embed", t); rt_bind_mlp(b, &w->bbox_embed, k, d, d, 4, 3);
    snprintf(k, sizeof k, "%s.query_embed.weight", t);
    w->query_embed = rt_bind(b, k, 2, I64(c->num_queries), I64(d));
    snprintf(k, sizeof k, "%s.boxRPB_embed_x", t); rt_bind_mlp(b, &w->boxRPB_embed_x, k, 2, d, h, 2);
    snprintf(k, sizeof k, "%s.boxRPB_embed_y", t); rt_bind_mlp(b, &w->boxRPB_embed_y, k, 2, d, h, 2);
    snprintf(k, sizeof k, "%s.presence_token.weight", t);
    w->presence_token = rt_bind(b, k, 2, I64(1), I64(d));
    snprintf(k, sizeof k, "%s.presence_token_head", t); rt_bind_mlp(b, &w->presence_token_head, k, d, d, 1, 3);
    snprintf(k, sizeof k, "%s.presence_token_out_norm", t); rt_bind_norm(b, &w->presence_token_out_norm, k, d);
    snprintf(k, sizeof k, "%s.ref_point_head", t); rt_bind_mlp(b, &w->ref_point_head, k, 2 * d, d, d, 2);
}

/* ---- host side ------------------------------------------------------------------------- */

/* Host staging (m->h_dec) of one decoder pass. */
typedef struct {
    float *ref;                   /* [Q, 4] the current reference boxes (cx, cy, w, h) */
    float *sine;                  /* [Q, 2d] gen_sineembed_for_position(ref) */
    float *dx, *dy;               /* [Q, g, 2] relative-position inputs */
    float *delta;                 /* [Q, 4] bbox_embed(hs) */
    float *presence;              /* [1] */
} dec_host;

size_t sam3_decoder_host_floats(const sam3_model *m) {
    return (size_t)m->Q * (4 + 2 * m->D + 4 * m->g + 4) + 16;
}

static dec_host dec_host_of(sam3_model *m) {
    dec_host h;
    int Q = m->Q;
    h.ref = m->h_dec;
    h.sine = h.ref + (size_t)Q * 4;
    h.dx = h.sine + (size_t)Q * 2 * m->D;
    h.dy = h.dx + (size_t)Q * 2 * m->g;
    h.delta = h.dy + (size_t)Q * 2 * m->g;
    h.presence = h.delta + (size_t)Q * 4;
    return h;
}

/* gen_sineembed_for_position of (cx, cy, w, h): [sine(y), sine(x), sine(w), sine(h)],
 * d/2 channels each. */
static void query_sine(const sam3_model *m, const float *ref, float *sine) {
    int d = m->D, half = d / 2;
    for (int q = 0; q < m->Q; q++) {
        const float *r = ref + 4 * (size_t)q;
        float *s = sine + (size_t)q * 2 * d;
        sam3_sine_encode(r[1], half, s);
        sam3_sine_encode(r[0], half, s + half);
        sam3_sine_encode(r[2], half, s + 2 * half);
        sam3_sine_encode(r[3], half, s + 3 * half);
    }
}

/* sign(8 v) log2(|8 v| + 1) / log2(8): the "log" boxRPB coordinates */
static float rpb_log(float v) {
    float e = v * 8.0f;
    float s = e > 0.0f ? 1.0f : e < 0.0f ? -1.0f : 0.0f;
    return s * log2f(fabsf(e) + 1.0f) / 3.0f;
}

/* _get_rpb_matrix's inputs: for grid coordinates j / g, dx[q, j] = (j/g - x0, j/g - x1)
 * and dy[q, j] = (j/g - y0, j/g - y1) of the box in xyxy, log-scaled. */
static void rpb_inputs(const sam3_model *m, const float *ref, float *dx, float *dy) {
    int g = m->g;
    for (int q = 0; q < m->Q; q++) {
        const float *r = ref + 4 * (size_t)q;
        float x0 = r[0] - 0.5f * r[2], y0 = r[1] - 0.5f * r[3], x1 = r[0] + 0.5f * r[2], y1 = r[1] + 0.5f * r[3];
        for (int j = 0; j < g; j++) {
            float c = (float)j / (float)g;
            float *px = dx + ((size_t)q * g + j) * 2, *py = dy + ((size_t)q * g + j) * 2;
            px[0] = rpb_log(c - x0);
            px[1] = rpb_log(c - x1);
            py[0] = rpb_log(c - y0);
            py[1] = rpb_log(c - y1);
        }
    }
}

/* ---- layers -------------------------------------------------------------------------- */

/* TransformerDecoderLayer.forward (post-norm) on T = 1 + Q rows (presence first), in place:
 *   tgt = norm2(tgt + self_attn(q = k = tgt + pos, v = tgt))
 *   tgt = catext_norm(tgt + ca_text(q = tgt + pos, k = v = prompt, prompt mask))
 *   tgt = norm1(tgt + cross_attn(q = tgt + pos, k = memory + PE, v = memory, box bias))
 *   tgt = norm3(tgt + linear2(relu(linear1(tgt))))                                    */
static int decoder_layer(sam3_model *m, const sam3_decoder_layer_weights *w, float *tgt, const float *pos,
                         const float *prompt, int S, const samc_attention_bias *prompt_bias, const float *mem_k,
                         const float *memory, const samc_attention_bias *rpb, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int d = m->D, T = 1 + m->Q, HW = m->g * m->g;
    size_t n = (size_t)T * d, mark = rt_arena_mark(&m->rt);
    float *qp, *a;
    RT_ALLOC(&m->rt, qp, n);
    RT_ALLOC(&m->rt, a, n);
    /* the three attentions: module, keys, values, count, mask, then the post-norm */
    const sam3_mha_weights *att[3] = { &w->self_attn, &w->ca_text, &w->cross_attn };
    const float *keys[3] = { qp, prompt, mem_k }, *vals[3] = { tgt, prompt, memory };
    const int nk[3] = { T, S, HW };
    const samc_attention_bias *bias[3] = { NULL, prompt_bias, rpb };
    const rt_norm *norm[3] = { &w->norm2, &w->catext_norm, &w->norm1 };
    for (int i = 0; i < 3; i++) {
        o->add(o, qp, tgt, pos, n, n);
        if (sam3_multihead_attention(m, att[i], qp, keys[i], vals[i], T, nk[i], bias[i], a, err)) return -1;
        o->add(o, tgt, tgt, a, n, n);
        o->layer_norm(o, tgt, norm[i]->w, norm[i]->b, tgt, T, d, 1e-5f);
    }
    if (sam3_ffn(m, &w->linear1, &w->linear2, tgt, T, m->cfg->dec_ffn, a, err)) return -1;
    o->add(o, tgt, tgt, a, n, n);
    o->layer_norm(o, tgt, w->norm3.w, w->norm3.b, tgt, T, d, 1e-5f);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* The bias [heads, 1 + Q, HW] without the presence rows, for the golden dump. */
static void dump_rpb(const sam3_model *m, int l, const float *rpb) {
    if (!rt_dumping(&m->rt)) return;
    int nh = m->cfg->dec_heads, Q = m->Q;
    size_t HW = (size_t)m->g * m->g;
    float *all = malloc(sizeof(float) * nh * (Q + 1) * HW), *rows = malloc(sizeof(float) * nh * Q * HW); /* debug */
    if (all && rows) {
        rt_download(m->rt.ops, all, rpb, sizeof(float) * nh * (Q + 1) * HW);
        for (int h = 0; h < nh; h++)
            memcpy(rows + (size_t)h * Q * HW, all + ((size_t)h * (Q + 1) + 1) * HW, sizeof(float) * Q * HW);
        char name[48];
        snprintf(name, sizeof name, "dec.layer%d.rpb_bias", l);
        rt_dump_host(&m->rt, name, rows, 3, I64(nh), I64(Q), I64(HW));
    }
    free(all);
    free(rows);
}

/* One layer's device side, the same ops on the same buffers for every find (so one graph
 * per layer on device backends: rt_graph_run), between the host's uploads of the layer's
 * sine / dxy and its downloads of delta / presence. */
typedef struct {
    sam3_model *m;
    int l, S;
    float *tgt, *pos, *rpb, *sine, *dxy, *bx, *by, *hs_l, *delta, *pn, *pl;
    const float *prompt, *mem_k, *memory;
    const samc_attention_bias *prompt_bias, *bias;
} dec_layer_job;

/* The per-layer inputs made from the reference boxes (uploaded: sine, dxy): pos rows
 * 1..Q = ref_point_head(sine), the box bias rpb [heads, 1 + Q, HW]; the layer; after it
 * hs_l = norm(queries), delta = bbox_embed(hs_l), presence logit =
 * presence_token_head(out_norm(presence)). */
static int layer_enqueue(void *ctx, samc_error *err) {
    const dec_layer_job *j = ctx;
    sam3_model *m = j->m;
    const samc_ops *o = m->rt.ops;
    const sam3_decoder_weights *w = &m->dec;
    int d = m->D, Q = m->Q, g = m->g, nh = m->cfg->dec_heads, l = j->l;
    char name[48];
    snprintf(name, sizeof name, "dec.layer%d.query_sine", l);
    rt_dump(&m->rt, name, j->sine, 3, I64(Q), I64(1), I64(2 * d));
    if (sam3_mlp(m, &w->ref_point_head, j->sine, Q, 2 * d, d, d, j->pos + d, err)) return -1;
    snprintf(name, sizeof name, "dec.layer%d.query_pos", l);
    rt_dump(&m->rt, name, j->pos + d, 3, I64(Q), I64(1), I64(d));
    if (sam3_mlp(m, &w->boxRPB_embed_x, j->dxy, Q * g, 2, d, nh, j->bx, err) ||
        sam3_mlp(m, &w->boxRPB_embed_y, j->dxy + (size_t)Q * g * 2, Q * g, 2, d, nh, j->by, err))
        return -1;
    o->box_rpb_bias(o, j->by, j->bx, j->rpb, Q, g, g, nh, 1);
    dump_rpb(m, l, j->rpb);
    if (decoder_layer(m, &w->layer[l], j->tgt, j->pos, j->prompt, j->S, j->prompt_bias, j->mem_k, j->memory, j->bias,
                      err))
        return -1;
    snprintf(name, sizeof name, "dec.layer%d.out", l);
    rt_dump(&m->rt, name, j->tgt + d, 3, I64(Q), I64(1), I64(d));
    snprintf(name, sizeof name, "dec.layer%d.presence_out", l);
    rt_dump(&m->rt, name, j->tgt, 3, I64(1), I64(1), I64(d));
    o->layer_norm(o, j->tgt + d, w->norm.w, w->norm.b, j->hs_l, Q, d, 1e-5f);
    if (sam3_mlp(m, &w->bbox_embed, j->hs_l, Q, d, d, 4, j->delta, err)) return -1;
    o->layer_norm(o, j->tgt, w->presence_token_out_norm.w, w->presence_token_out_norm.b, j->pn, 1, d, 1e-5f);
    return sam3_mlp(m, &w->presence_token_head, j->pn, 1, d, d, 1, j->pl, err);
}

/* TransformerDecoder.forward with box refinement and the presence token. Returns hs [L,
 * Q, d] (backend), ref_boxes [L, Q, 4] (host: each layer's input boxes), presence [L]
 * (host logits, unclamped: the official clamp discards its result) and, in m->h_dec's
 * ref, the last refined boxes (= pred_boxes). Per layer the host makes the box inputs
 * (query_sine, rpb_inputs) and refines the boxes (ref = sigmoid(inverse_sigmoid(ref) +
 * delta)) around the device side (layer_enqueue: a graph per layer, keyed by the layer
 * and the prompt's length). */
int sam3_decoder(sam3_model *m, const float *memory, const float *prompt, int S, const samc_attention_bias *prompt_bias,
                 float *hs, float *ref_boxes, float *presence, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_decoder_weights *w = &m->dec;
    int d = m->D, Q = m->Q, T = 1 + Q, HW = m->g * m->g, nh = m->cfg->dec_heads, g = m->g;
    double t0 = rt_now_ms();
    size_t mark = rt_arena_mark(&m->rt);
    float *tgt, *pos, *mem_k, *rpb, *sine, *dxy, *bx, *by, *delta, *pn, *pl;
    RT_ALLOC(&m->rt, tgt, (size_t)T * d);
    RT_ALLOC(&m->rt, pos, (size_t)T * d);
    RT_ALLOC(&m->rt, mem_k, (size_t)HW * d);
    RT_ALLOC(&m->rt, rpb, (size_t)nh * T * HW);
    RT_ALLOC(&m->rt, sine, (size_t)Q * 2 * d);
    RT_ALLOC(&m->rt, dxy, (size_t)Q * g * 4);
    RT_ALLOC(&m->rt, bx, (size_t)Q * g * nh);
    RT_ALLOC(&m->rt, by, (size_t)Q * g * nh);
    RT_ALLOC(&m->rt, delta, (size_t)Q * 4);
    RT_ALLOC(&m->rt, pn, (size_t)d);
    RT_ALLOC(&m->rt, pl, 1);
    o->copy(o, tgt, w->presence_token, (size_t)d);
    o->copy(o, tgt + d, w->query_embed, (size_t)Q * d);
    o->copy(o, pos, m->zeros, (size_t)d);
    o->add(o, mem_k, memory, m->pe_tok, (size_t)HW * d, (size_t)HW * d);
    dec_host hh = dec_host_of(m);
    memcpy(hh.ref, m->h_ref_init, sizeof(float) * (size_t)Q * 4);
    samc_attention_bias bias = { rpb, 0, (ptrdiff_t)T * HW, HW };
    dec_layer_job job = { m, 0, S, tgt, pos, rpb, sine, dxy, bx, by, NULL, delta, pn, pl, prompt, mem_k, memory,
                          prompt_bias, &bias };
    for (int l = 0; l < w->layers; l++) {
        memcpy(ref_boxes + (size_t)l * Q * 4, hh.ref, sizeof(float) * (size_t)Q * 4);
        query_sine(m, hh.ref, hh.sine);
        rt_upload(o, sine, hh.sine, sizeof(float) * (size_t)Q * 2 * d);
        rpb_inputs(m, hh.ref, hh.dx, hh.dy);
        rt_upload(o, dxy, hh.dx, sizeof(float) * (size_t)Q * g * 4); /* dx then dy, adjacent on the host */
        job.l = l;
        job.hs_l = hs + (size_t)l * Q * d;
        if (rt_graph_run(&m->rt, SAM3_GRAPH_DECODER | (uint64_t)l << 16 | (uint64_t)S, layer_enqueue, &job, err))
            return -1;
        rt_download(o, hh.delta, delta, sizeof(float) * (size_t)Q * 4);
        rt_download(o, hh.presence, pl, sizeof(float));
        if (rt_sync(&m->rt, "decoder", err)) return -1;
        for (int i = 0; i < Q * 4; i++) {
            float u = hh.delta[i] + sam3_inverse_sigmoid(hh.ref[i]);
            hh.ref[i] = 1.0f / (1.0f + expf(-u));
        }
        presence[l] = hh.presence[0];
    }
    rt_dump(&m->rt, "dec.hs", hs, 4, I64(w->layers), I64(Q), I64(1), I64(d));
    rt_dump_host(&m->rt, "dec.ref_boxes", ref_boxes, 4, I64(w->layers), I64(Q), I64(1), I64(4));
    rt_dump_host(&m->rt, "dec.presence_logits", presence, 3, I64(w->layers), I64(1), I64(1));
    rt_arena_reset(&m->rt, mark);
    m->timings.decoder_ms = rt_now_ms() - t0;
    return 0;
}
