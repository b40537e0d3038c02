/* model/sam3/geometry_encoders.c: sam3/model/geometry_encoders.py SequenceGeometryEncoder
 * (weights geometry_encoder.*): exemplar points and boxes become tokens, followed by a CLS
 * token, then a final projection and a few transformer layers that attend to the raw 1x
 * image level.
 *
 * A point token is label_embed[l] + points_direct_project(x, y)
 *   + points_pool_project(grid_sample(LN(image), 2xy - 1)) + points_pos_enc_project(sine(x, y));
 * a box token label_embed[l] + boxes_direct_project(cx, cy, w, h)
 *   + boxes_pool_project(roi_align(LN(image), xyxy * grid, 7)) + boxes_pos_enc_project(sine(cy, cx), h, w).
 * The sine encodings and the few coordinates are made on the host. */
#include <math.h>
#include <stdio.h>

#include "model/sam3/sam3.h"

#define I64(x) ((int64_t)(x))

void sam3_geometry_bind(rt_binder *b, const sam3_config *c, sam3_geometry_weights *w) {
    const char *g = "geometry_encoder";
    int d = c->d_model;
    char k[256];
    w->label_embed = rt_bind(b, "geometry_encoder.label_embed.weight", 2, I64(2), I64(d));
    w->cls_embed = rt_bind(b, "geometry_encoder.cls_embed.weight", 2, I64(1), I64(d));
    snprintf(k, sizeof k, "%s.points_direct_project", g); rt_bind_linear(b, &w->points_direct_project, k, d, 2, 1);
    snprintf(k, sizeof k, "%s.points_pool_project", g); rt_bind_linear(b, &w->points_pool_project, k, d, d, 1);
    snprintf(k, sizeof k, "%s.points_pos_enc_project", g); rt_bind_linear(b, &w->points_pos_enc_project, k, d, d, 1);
    snprintf(k, sizeof k, "%s.boxes_direct_project", g); rt_bind_linear(b, &w->boxes_direct_project, k, d, 4, 1);
    snprintf(k, sizeof k, "%s.boxes_pool_project", g);
    rt_bind_conv(b, &w->boxes_pool_project, k, d, d, c->roi_size, c->roi_size, d);
    snprintf(k, sizeof k, "%s.boxes_pos_enc_project", g); rt_bind_linear(b, &w->boxes_pos_enc_project, k, d, d + 2, 1);
    snprintf(k, sizeof k, "%s.final_proj", g); rt_bind_linear(b, &w->final_proj, k, d, d, 1);
    snprintf(k, sizeof k, "%s.norm", g); rt_bind_norm(b, &w->norm, k, d);
    snprintf(k, sizeof k, "%s.img_pre_norm", g); rt_bind_norm(b, &w->img_pre_norm, k, d);
    w->layers = c->geo_layers < SAM3_MAX_LAYERS ? c->geo_layers : SAM3_MAX_LAYERS;
    for (int i = 0; i < w->layers; i++) {
        snprintf(k, sizeof k, "%s.encode.%d", g, i);
        sam3_encoder_layer_bind(b, &w->encode[i], k, d, c->geo_heads, c->geo_ffn);
    }
    snprintf(k, sizeof k, "%s.encode_norm", g); rt_bind_norm(b, &w->encode_norm, k, d);
}

/* Host staging of the prompt's coordinates (m->h_small): direct-projection inputs, sine
 * encodings, sampling positions. */
typedef struct {
    float *pt_xy, *pt_grid, *pt_pos;          /* [np, 2], [np, 2], [np, d] */
    float *bx_in, *bx_xyxy, *bx_pos;          /* [nb, 4], [nb, 4], [nb, d + 2] */
} geo_host;

static geo_host host_inputs(sam3_model *m, const sam3_prompt *p) {
    int d = m->D, np = p->n_points, nb = p->n_boxes, half = d / 2;
    geo_host h;
    h.pt_xy = m->h_small;
    h.pt_grid = h.pt_xy + 2 * SAM3_MAX_GEO_INPUTS;
    h.bx_in = h.pt_grid + 2 * SAM3_MAX_GEO_INPUTS;
    h.bx_xyxy = h.bx_in + 4 * SAM3_MAX_GEO_INPUTS;
    h.pt_pos = h.bx_xyxy + 4 * SAM3_MAX_GEO_INPUTS;
    h.bx_pos = h.pt_pos + (size_t)d * SAM3_MAX_GEO_INPUTS;
    for (int i = 0; i < np; i++) {
        float x = p->points[i][0], y = p->points[i][1];
        h.pt_xy[2 * i] = x;
        h.pt_xy[2 * i + 1] = y;
        h.pt_grid[2 * i] = x * 2.0f - 1.0f;
        h.pt_grid[2 * i + 1] = y * 2.0f - 1.0f;
        sam3_sine_encode(x, half, h.pt_pos + (size_t)i * d);          /* points: x, then y */
        sam3_sine_encode(y, half, h.pt_pos + (size_t)i * d + half);
    }
    float g = (float)m->g;
    for (int i = 0; i < nb; i++) {
        const float *b = p->boxes[i];
        for (int k = 0; k < 4; k++) h.bx_in[4 * i + k] = b[k];
        /* box_cxcywh_to_xyxy, then * [W, H, W, H] of the feature map */
        h.bx_xyxy[4 * i] = (b[0] - 0.5f * b[2]) * g;
        h.bx_xyxy[4 * i + 1] = (b[1] - 0.5f * b[3]) * g;
        h.bx_xyxy[4 * i + 2] = (b[0] + 0.5f * b[2]) * g;
        h.bx_xyxy[4 * i + 3] = (b[1] + 0.5f * b[3]) * g;
        float *pos = h.bx_pos + (size_t)i * (d + 2);
        sam3_sine_encode(b[1], half, pos);                            /* boxes: y, x, h, w */
        sam3_sine_encode(b[0], half, pos + half);
        pos[d] = b[3];
        pos[d + 1] = b[2];
    }
    return h;
}

static void dump_inputs(sam3_model *m, const sam3_prompt *p, const geo_host *h) {
    if (!rt_dumping(&m->rt)) return;
    int np = p->n_points, nb = p->n_boxes;
    float lab[SAM3_MAX_GEO_INPUTS], zero[SAM3_MAX_GEO_INPUTS] = { 0 };
    if (nb) {
        for (int i = 0; i < nb; i++) lab[i] = (float)p->box_labels[i];
        rt_dump_host(&m->rt, "geo.in.box_cxcywh", h->bx_in, 3, I64(nb), I64(1), I64(4));
        rt_dump_host(&m->rt, "geo.in.box_labels", lab, 2, I64(1), I64(nb));
        rt_dump_host(&m->rt, "geo.in.box_mask", zero, 2, I64(1), I64(nb));
        rt_dump_host(&m->rt, "geo.boxes_direct_project.in", h->bx_in, 3, I64(nb), I64(1), I64(4));
        rt_dump_host(&m->rt, "geo.boxes_pos_enc_project.in", h->bx_pos, 3, I64(nb), I64(1), I64(m->D + 2));
    }
    if (np) {
        for (int i = 0; i < np; i++) lab[i] = (float)p->point_labels[i];
        rt_dump_host(&m->rt, "geo.in.point_xy", h->pt_xy, 3, I64(np), I64(1), I64(2));
        rt_dump_host(&m->rt, "geo.in.point_labels", lab, 2, I64(1), I64(np));
        rt_dump_host(&m->rt, "geo.points_direct_project.in", h->pt_xy, 3, I64(np), I64(1), I64(2));
        rt_dump_host(&m->rt, "geo.points_pos_enc_project.in", h->pt_pos, 3, I64(np), I64(1), I64(m->D));
    }
}

/* One kind of token (points or boxes): tok[n, d] = label_embed[l] + ((direct + pool) + pos),
 * the official order of the sums. pool [n, d] is computed by the caller. */
static int sum_tokens(sam3_model *m, const rt_linear *direct, int n_direct, const float *h_direct,
                      const float *pool, const rt_linear *pos, int n_pos, const float *h_pos, const int *labels, int n,
                      const char *kind, float *tok, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    int d = m->D;
    size_t mark = rt_arena_mark(&m->rt);
    float *in, *a, *b;
    RT_ALLOC(&m->rt, in, (size_t)n * (d + 2));
    RT_ALLOC(&m->rt, a, (size_t)n * d);
    RT_ALLOC(&m->rt, b, (size_t)n * d);
    char name[64];
    rt_upload(o, in, h_direct, sizeof(float) * (size_t)n * n_direct);
    o->linear(o, in, direct->w, direct->b, a, n, d, n_direct);
    snprintf(name, sizeof name, "geo.%s_direct_project.out", kind);
    rt_dump(&m->rt, name, a, 3, I64(n), I64(1), I64(d));
    o->add(o, a, a, pool, (size_t)n * d, (size_t)n * d);
    rt_upload(o, in, h_pos, sizeof(float) * (size_t)n * n_pos);
    o->linear(o, in, pos->w, pos->b, b, n, d, n_pos);
    snprintf(name, sizeof name, "geo.%s_pos_enc_project.out", kind);
    rt_dump(&m->rt, name, b, 3, I64(n), I64(1), I64(d));
    o->add(o, a, a, b, (size_t)n * d, (size_t)n * d);
    for (int i = 0; i < n; i++)
        o->add(o, tok + (size_t)i * d, a + (size_t)i * d, m->geo.label_embed + (size_t)(labels[i] ? 1 : 0) * d,
               (size_t)d, (size_t)d);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* Point tokens into tok [np, d]; ln_map is LN(image) as [d, g, g]. */
static int encode_points(sam3_model *m, const sam3_prompt *p, const geo_host *h, const float *ln_map, float *tok,
                         samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_geometry_weights *w = &m->geo;
    int d = m->D, n = p->n_points;
    size_t mark = rt_arena_mark(&m->rt);
    float *grid, *sampled, *pool;
    RT_ALLOC(&m->rt, grid, (size_t)2 * n);
    RT_ALLOC(&m->rt, sampled, (size_t)n * d);
    RT_ALLOC(&m->rt, pool, (size_t)n * d);
    rt_upload(o, grid, h->pt_grid, sizeof(float) * 2 * (size_t)n);
    o->grid_sample(o, ln_map, grid, sampled, d, m->g, m->g, n);
    rt_dump(&m->rt, "geo.points_pool_project.in", sampled, 3, I64(n), I64(1), I64(d));
    o->linear(o, sampled, w->points_pool_project.w, w->points_pool_project.b, pool, n, d, d);
    rt_dump(&m->rt, "geo.points_pool_project.out", pool, 3, I64(n), I64(1), I64(d));
    int rc = sum_tokens(m, &w->points_direct_project, 2, h->pt_xy, pool, &w->points_pos_enc_project, d, h->pt_pos,
                        p->point_labels, n, "points", tok, err);
    rt_arena_reset(&m->rt, mark);
    return rc;
}

/* Box tokens into tok [nb, d]: roi_align of each box on LN(image), then the 7x7 conv
 * (one output pixel per box). */
static int encode_boxes(sam3_model *m, const sam3_prompt *p, const geo_host *h, const float *ln_map, float *tok,
                        samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_geometry_weights *w = &m->geo;
    int d = m->D, n = p->n_boxes, r = m->cfg->roi_size;
    size_t mark = rt_arena_mark(&m->rt);
    float *boxes, *roi, *pool;
    RT_ALLOC(&m->rt, boxes, (size_t)4 * n);
    RT_ALLOC(&m->rt, roi, (size_t)n * d * r * r);
    RT_ALLOC(&m->rt, pool, (size_t)n * d);
    rt_upload(o, boxes, h->bx_xyxy, sizeof(float) * 4 * (size_t)n);
    o->roi_align(o, ln_map, boxes, roi, d, m->g, m->g, n, r);
    rt_dump(&m->rt, "geo.boxes_roi_align", roi, 4, I64(n), I64(d), I64(r), I64(r));
    for (int i = 0; i < n; i++)
        o->conv2d(o, roi + (size_t)i * d * r * r, w->boxes_pool_project.w, w->boxes_pool_project.b, pool + (size_t)i * d,
                  d, r, r, d, r, r, 1, 0);
    rt_dump(&m->rt, "geo.boxes_pool_project.out", pool, 4, I64(n), I64(d), I64(1), I64(1));
    int rc = sum_tokens(m, &w->boxes_direct_project, 4, h->bx_in, pool, &w->boxes_pos_enc_project, d + 2, h->bx_pos,
                        p->box_labels, n, "boxes", tok, err);
    rt_arena_reset(&m->rt, mark);
    return rc;
}

/* The geometry layers over seq [G, d] in place: keys = image + PE, values = image. */
static int geometry_layers(sam3_model *m, const float *img_seq, float *seq, int G, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_geometry_weights *w = &m->geo;
    int d = m->D, HW = m->g * m->g;
    size_t mark = rt_arena_mark(&m->rt);
    float *keys;
    RT_ALLOC(&m->rt, keys, (size_t)HW * d);
    o->add(o, keys, img_seq, m->pe_tok, (size_t)HW * d, (size_t)HW * d);
    for (int i = 0; i < w->layers; i++) {
        if (sam3_encoder_layer(m, &w->encode[i], seq, G, NULL, NULL, keys, img_seq, HW, NULL, m->cfg->geo_ffn, err))
            return -1;
        char name[32];
        snprintf(name, sizeof name, "geo.layer%d", i);
        rt_dump(&m->rt, name, seq, 3, I64(G), I64(1), I64(d));
    }
    o->layer_norm(o, seq, w->encode_norm.w, w->encode_norm.b, seq, G, d, 1e-5f);
    rt_arena_reset(&m->rt, mark);
    return 0;
}

/* SequenceGeometryEncoder.forward: [points, boxes, CLS] -> norm(final_proj(.)) -> layers
 * -> encode_norm. With no boxes and no points (a text-only prompt) only CLS remains. */
int sam3_geometry_encoder(sam3_model *m, const sam3_image *img, const sam3_prompt *p, float *out, samc_error *err) {
    const samc_ops *o = m->rt.ops;
    const sam3_geometry_weights *w = &m->geo;
    int d = m->D, g = m->g, HW = g * g, np = p->n_points, nb = p->n_boxes, G = np + nb + 1;
    double t0 = rt_now_ms();
    size_t mark = rt_arena_mark(&m->rt);
    float *img_seq, *ln, *ln_map, *seq;
    RT_ALLOC(&m->rt, img_seq, (size_t)HW * d);
    RT_ALLOC(&m->rt, ln, (size_t)HW * d);
    RT_ALLOC(&m->rt, ln_map, (size_t)HW * d);
    RT_ALLOC(&m->rt, seq, (size_t)G * d);
    o->transpose(o, img->fpn[2], img_seq, 1, d, HW);
    o->layer_norm(o, img_seq, w->img_pre_norm.w, w->img_pre_norm.b, ln, HW, d, 1e-5f);
    rt_dump(&m->rt, "geo.img_pre_norm", ln, 3, I64(HW), I64(1), I64(d));
    o->transpose(o, ln, ln_map, 1, HW, d);
    geo_host h = host_inputs(m, p);
    dump_inputs(m, p, &h);
    if (np && encode_points(m, p, &h, ln_map, seq, err)) return -1;
    if (nb && encode_boxes(m, p, &h, ln_map, seq + (size_t)np * d, err)) return -1;
    o->copy(o, seq + (size_t)(np + nb) * d, w->cls_embed, (size_t)d);
    rt_dump(&m->rt, "geo.seq_in", seq, 3, I64(G), I64(1), I64(d));
    o->linear(o, seq, w->final_proj.w, w->final_proj.b, out, G, d, d);
    o->layer_norm(o, out, w->norm.w, w->norm.b, out, G, d, 1e-5f);
    rt_dump(&m->rt, "geo.seq_proj", out, 3, I64(G), I64(1), I64(d));
    if (geometry_layers(m, img_seq, out, G, err)) return -1;
    rt_dump(&m->rt, "geo.feats", out, 3, I64(G), I64(1), I64(d));
    if (rt_dumping(&m->rt)) {
        float zero[SAM3_MAX_GEO_INPUTS + 1] = { 0 };
        rt_dump_host(&m->rt, "geo.mask", zero, 2, I64(1), I64(G));
    }
    rt_arena_reset(&m->rt, mark);
    m->timings.geometry_ms = rt_now_ms() - t0;
    return 0;
}
