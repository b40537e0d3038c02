/* pipelines/mosaic/labels.c: label-image operations of the mosaic pipeline (see labels.h).
 *
 * Mirrors the post-processing of the sam-mosaic tool: merge/discontinuity.py
 * (merge_at_discontinuities: pair counting across a tile border, the best_match /
 * mutual_best / min_contact strategies, a union-find whose smaller root wins, one LUT)
 * and merge/combined.py (merge_enclosed_and_remove_small). The tool works on the whole
 * label mosaic in memory; here the same decisions are made tile by tile and border by
 * border so that memory stays bounded. */
#include "pipelines/mosaic/labels.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- union-find ------------------------------------------------------------------- */

int mosaic_uf_init(mosaic_uf *uf, uint32_t n, samc_error *err) {
    uf->parent = NULL;
    uf->n = uf->cap = 0;
    return mosaic_uf_grow(uf, n, err);
}

int mosaic_uf_grow(mosaic_uf *uf, uint32_t n, samc_error *err) {
    if (n <= uf->n) return 0;
    if (n > uf->cap) {
        /* doubling, so that growing one tile's ids at a time costs O(1) per id */
        uint64_t cap = uf->cap ? (uint64_t)uf->cap * 2 : 1024;
        if (cap < n) cap = n;
        if (cap > UINT32_MAX) cap = UINT32_MAX;
        uint32_t *p = realloc(uf->parent, (size_t)cap * sizeof *p);
        if (!p)
            return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic_uf_grow: out of memory for %llu label ids (%llu bytes)",
                               (unsigned long long)cap, (unsigned long long)cap * sizeof *p);
        uf->parent = p;
        uf->cap = (uint32_t)cap;
    }
    for (uint32_t i = uf->n; i < n; i++) uf->parent[i] = i;
    uf->n = n;
    return 0;
}

uint32_t mosaic_uf_find(mosaic_uf *uf, uint32_t a) {
    uint32_t *p = uf->parent, r = a;
    while (p[r] != r) r = p[r];
    while (p[a] != r) {
        uint32_t next = p[a];
        p[a] = r;
        a = next;
    }
    return r;
}

int mosaic_uf_union(mosaic_uf *uf, uint32_t a, uint32_t b) {
    uint32_t ra = mosaic_uf_find(uf, a), rb = mosaic_uf_find(uf, b);
    if (ra == rb) return 0;
    /* discontinuity.py's find_root/union: the smaller root becomes the parent */
    if (ra < rb) uf->parent[rb] = ra;
    else uf->parent[ra] = rb;
    return 1;
}

void mosaic_uf_free(mosaic_uf *uf) {
    free(uf->parent);
    uf->parent = NULL;
    uf->n = uf->cap = 0;
}

/* ---- merge at tile discontinuities ------------------------------------------------ */

static const char *const strategy_names[] = { "best_match", "mutual_best", "min_contact", "none" };

int mosaic_merge_strategy_parse(const char *s, mosaic_merge_strategy *out) {
    for (int i = 0; s && i < (int)(sizeof strategy_names / sizeof strategy_names[0]); i++)
        if (!strcmp(s, strategy_names[i])) {
            *out = (mosaic_merge_strategy)i;
            return 0;
        }
    return -1;
}

const char *mosaic_merge_strategy_name(mosaic_merge_strategy s) {
    if ((int)s < 0 || (int)s >= (int)(sizeof strategy_names / sizeof strategy_names[0])) return "unknown";
    return strategy_names[s];
}

/* One distinct (side1 label a, side2 label b) pair in contact and its contact count. */
typedef struct {
    uint32_t a, b;
    uint32_t count;
    uint32_t best;     /* PAIR_BEST_FOR_A: b is a's best partner; PAIR_BEST_FOR_B: the reverse */
} contact_pair;

enum { PAIR_BEST_FOR_A = 1, PAIR_BEST_FOR_B = 2 };

static int cmp_ab(const void *x, const void *y) {
    const contact_pair *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    if (p->b != q->b) return p->b < q->b ? -1 : 1;
    return 0;
}

static int cmp_ba(const void *x, const void *y) {
    const contact_pair *p = x, *q = y;
    if (p->b != q->b) return p->b < q->b ? -1 : 1;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return 0;
}

static int contact_valid(uint32_t a, uint32_t b) { return a != b && a && b; }

/* discontinuity.py: _build_best_match_dicts and the three _collect_pairs_* functions.
 * Pixels along a border come in long runs of the same pair, so the pixels are first
 * run-length coded; only the runs are sorted (n log n in the worst case, a pixel-wise
 * alternating border, and far less on real segmentations). */
int mosaic_merge_boundary(const uint32_t *side1, const uint32_t *side2, int64_t n,
                          mosaic_merge_strategy strategy, int min_contact, mosaic_uf *uf,
                          mosaic_merge_stats *stats, samc_error *err) {
    if (n < 0) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_merge_boundary: n = %lld < 0", (long long)n);
    if ((int)strategy < 0 || strategy > MOSAIC_MERGE_NONE)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic_merge_boundary: unknown merge strategy %d", (int)strategy);
    if (strategy == MOSAIC_MERGE_MIN_CONTACT && min_contact < 0)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic_merge_boundary: min_contact = %d < 0", min_contact);
    if (n == 0) return 0;
    if (!side1 || !side2 || !uf)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic_merge_boundary: NULL %s", !side1 ? "side1" : !side2 ? "side2" : "uf");

    /* pass 1: check the ids against the union-find and count the runs of valid pairs */
    int64_t n_runs = 0;
    uint32_t pa = 0, pb = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t a = side1[i], b = side2[i];
        if (a >= uf->n || b >= uf->n)
            return samc_error_set(err, SAMC_ERR_ARG,
                               "mosaic_merge_boundary: pixel %lld of the border has labels (%u, %u) but the union-find "
                               "covers ids 0..%u only",
                               (long long)i, a, b, uf->n ? uf->n - 1 : 0);
        if (!contact_valid(a, b)) {
            pa = pb = 0;
            continue;
        }
        if (a != pa || b != pb) n_runs++;
        pa = a;
        pb = b;
    }
    if (n_runs == 0) return 0;

    contact_pair *pairs = malloc((size_t)n_runs * sizeof *pairs);
    if (!pairs)
        return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic_merge_boundary: out of memory for %lld contact runs",
                           (long long)n_runs);
    int64_t k = -1;
    pa = pb = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t a = side1[i], b = side2[i];
        if (!contact_valid(a, b)) {
            pa = pb = 0;
            continue;
        }
        if (a != pa || b != pb) pairs[++k] = (contact_pair){ a, b, 0, 0 };
        pairs[k].count++;
        pa = a;
        pb = b;
    }

    /* distinct pairs: sort by (a, b) and add up equal neighbours */
    qsort(pairs, (size_t)n_runs, sizeof *pairs, cmp_ab);
    int64_t m = 0;
    for (int64_t i = 0; i < n_runs; i++) {
        if (m > 0 && pairs[m - 1].a == pairs[i].a && pairs[m - 1].b == pairs[i].b) pairs[m - 1].count += pairs[i].count;
        else pairs[m++] = pairs[i];
    }

    if (strategy == MOSAIC_MERGE_BEST_MATCH || strategy == MOSAIC_MERGE_MUTUAL_BEST) {
        /* Best partner of each side1 label: the largest count; sorted by b within a, so
         * keeping the first maximum breaks ties towards the smaller partner label. */
        for (int64_t i = 0; i < m;) {
            int64_t j = i, best = i;
            for (; j < m && pairs[j].a == pairs[i].a; j++)
                if (pairs[j].count > pairs[best].count) best = j;
            pairs[best].best |= PAIR_BEST_FOR_A;
            i = j;
        }
        qsort(pairs, (size_t)m, sizeof *pairs, cmp_ba);
        for (int64_t i = 0; i < m;) {
            int64_t j = i, best = i;
            for (; j < m && pairs[j].b == pairs[i].b; j++)
                if (pairs[j].count > pairs[best].count) best = j;
            pairs[best].best |= PAIR_BEST_FOR_B;
            i = j;
        }
    }

    int64_t joined = 0;
    for (int64_t i = 0; i < m; i++) {
        const contact_pair *p = &pairs[i];
        int join = 0;
        switch (strategy) {
        case MOSAIC_MERGE_BEST_MATCH: join = p->best != 0; break;
        case MOSAIC_MERGE_MUTUAL_BEST: join = p->best == (PAIR_BEST_FOR_A | PAIR_BEST_FOR_B); break;
        case MOSAIC_MERGE_MIN_CONTACT: join = p->count >= (uint32_t)min_contact; break;
        case MOSAIC_MERGE_NONE: join = 0; break;
        }
        if (join) {
            mosaic_uf_union(uf, p->a, p->b);
            joined++;
        }
    }
    free(pairs);
    if (stats) {
        stats->pairs_found += m;
        stats->pairs_joined += joined;
    }
    return 0;
}

/* ---- per-tile cleanup -------------------------------------------------------------- */

#define NO_COMP UINT32_MAX

enum { FRAG_BORDER = 1, FRAG_BACKGROUND = 2, FRAG_MANY = 4 };

/* Root of provisional component a in the labelling's own union-find (path halving). */
static uint32_t comp_find(uint32_t *par, uint32_t a) {
    while (par[a] != a) {
        par[a] = par[par[a]];
        a = par[a];
    }
    return a;
}

/* Per-fragment summary of what lies around it. */
typedef struct {
    uint32_t area;
    uint32_t label;     /* its own label */
    uint32_t nb;        /* the first non-zero other label seen beside it, 0: none */
    uint32_t flags;     /* FRAG_* */
} fragment;

static void frag_note(fragment *f, uint32_t v) {
    if (!v) f->flags |= FRAG_BACKGROUND;
    else if (!f->nb) f->nb = v;
    else if (f->nb != v) f->flags |= FRAG_MANY;
}

/* combined.py: merge_enclosed_and_remove_small, per label instead of per component of
 * the foreground union (see labels.h). One two-pass connected-component labelling of
 * "same label, 4-connected" (provisional ids joined in a union-find whose smaller root
 * wins, so resolving the roots in increasing order is one sweep), then one sweep over the
 * horizontal and vertical pixel pairs for area, border, background and neighbour labels,
 * then one relabelling sweep. stats are added to (NULL: not wanted). */
int mosaic_cleanup_fragments(uint32_t *labels, int w, int h, int min_area, int enclosed_max_area,
                             mosaic_cleanup_stats *stats, samc_error *err) {
    if (w < 0 || h < 0)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic_cleanup_fragments: label image is %dx%d pixels", w, h);
    if (min_area < 0 || enclosed_max_area < 0)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic_cleanup_fragments: min_area = %d, enclosed_max_area = %d: "
                           "expected >= 0 (0 disables)", min_area, enclosed_max_area);
    if (w == 0 || h == 0) return 0;
    if (!labels) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_cleanup_fragments: NULL labels for %dx%d pixels", w, h);
    size_t np = (size_t)w * (size_t)h;
    if ((uint64_t)np >= NO_COMP)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic_cleanup_fragments: %dx%d pixels: more than %u", w, h, NO_COMP - 1);

    uint32_t *comp = malloc(np * sizeof *comp);
    size_t par_cap = 4096, n_prov = 0;
    uint32_t *par = malloc(par_cap * sizeof *par);
    fragment *frag = NULL;
    if (!comp || !par) goto nomem;

    /* pass 1: provisional components, joined where the upper and left neighbours meet */
    for (int y = 0; y < h; y++) {
        const uint32_t *row = labels + (size_t)y * w;
        uint32_t *crow = comp + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            uint32_t v = row[x];
            if (!v) {
                crow[x] = NO_COMP;
                continue;
            }
            uint32_t left = x > 0 && row[x - 1] == v ? crow[x - 1] : NO_COMP;
            uint32_t up = y > 0 && row[x - w] == v ? crow[x - w] : NO_COMP;
            if (left != NO_COMP) {
                crow[x] = left;
                if (up != NO_COMP && up != left) {
                    uint32_t ra = comp_find(par, left), rb = comp_find(par, up);
                    if (ra < rb) par[rb] = ra;
                    else if (rb < ra) par[ra] = rb;
                }
            } else if (up != NO_COMP) {
                crow[x] = up;
            } else {
                if (n_prov == par_cap) {
                    uint32_t *p = realloc(par, 2 * par_cap * sizeof *par);
                    if (!p) goto nomem;
                    par = p;
                    par_cap *= 2;
                }
                par[n_prov] = (uint32_t)n_prov;
                crow[x] = (uint32_t)n_prov++;
            }
        }
    }

    /* Resolve: a non-root's parent is smaller than itself, so in increasing order its
     * parent already holds the final fragment id; par[] becomes provisional -> fragment. */
    uint32_t n_frag = 0;
    for (size_t i = 0; i < n_prov; i++) par[i] = par[i] == i ? n_frag++ : par[par[i]];

    frag = calloc(n_frag ? n_frag : 1, sizeof *frag);
    if (!frag) goto nomem;

    /* pass 2: final ids, areas, own labels, image border */
    for (int y = 0; y < h; y++) {
        const uint32_t *row = labels + (size_t)y * w;
        uint32_t *crow = comp + (size_t)y * w;
        int edge_row = y == 0 || y == h - 1;
        for (int x = 0; x < w; x++) {
            if (crow[x] == NO_COMP) continue;
            uint32_t c = crow[x] = par[crow[x]];
            fragment *f = &frag[c];
            f->area++;
            f->label = row[x];
            if (edge_row || x == 0 || x == w - 1) f->flags |= FRAG_BORDER;
        }
    }

    /* pass 3: what each fragment sees across its outline (labels differ <=> fragments
     * differ, since a fragment is a maximal 4-connected piece of one label) */
    for (int y = 0; y < h; y++) {
        const uint32_t *row = labels + (size_t)y * w;
        const uint32_t *crow = comp + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            uint32_t v = row[x];
            if (x + 1 < w && row[x + 1] != v) {
                if (v) frag_note(&frag[crow[x]], row[x + 1]);
                if (row[x + 1]) frag_note(&frag[crow[x + 1]], v);
            }
            if (y + 1 < h && row[x + w] != v) {
                if (v) frag_note(&frag[crow[x]], row[x + w]);
                if (row[x + w]) frag_note(&frag[crow[x + w]], v);
            }
        }
    }

    /* Decisions, all on the input labels: frag[].nb becomes the new label. A piece goes
     * to L even when L's piece around it is itself merged or removed in this call (two
     * segments enclosing pieces of each other swap them); the rare nested case is the
     * price of a result that does not depend on the order of the fragments. */
    int64_t merged = 0, removed = 0, px_removed = 0;
    for (uint32_t i = 0; i < n_frag; i++) {
        fragment *f = &frag[i];
        uint32_t out = f->label;
        if (enclosed_max_area > 0 && f->area <= (uint32_t)enclosed_max_area &&
            !(f->flags & (FRAG_BORDER | FRAG_BACKGROUND | FRAG_MANY)) && f->nb) {
            out = f->nb;
            merged++;
        } else if (min_area > 0 && f->area < (uint32_t)min_area && !(f->flags & FRAG_BORDER)) {
            out = 0;
            removed++;
            px_removed += f->area;
        }
        f->nb = out;
    }
    if (merged || removed)
        for (size_t i = 0; i < np; i++)
            if (comp[i] != NO_COMP) labels[i] = frag[comp[i]].nb;

    if (stats) {
        stats->fragments += n_frag;
        stats->merged_enclosed += merged;
        stats->removed_small += removed;
        stats->pixels_removed += px_removed;
    }
    free(frag);
    free(par);
    free(comp);
    return 0;

nomem:
    free(frag);
    free(par);
    free(comp);
    return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic_cleanup_fragments: out of memory for a %dx%d label image", w, h);
}

/* ---- compaction -------------------------------------------------------------------- */

/* Open-addressing map label -> new id; key 0 marks an empty slot (0 is never a key). */
typedef struct {
    uint32_t *keys, *vals;
    size_t mask, used;
} id_map;

static size_t id_slot(const id_map *m, uint32_t key) {
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & m->mask;
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & m->mask;
    return i;
}

static int id_map_alloc(id_map *m, size_t cap) {
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    m->mask = cap - 1;
    m->used = 0;
    return m->keys && m->vals ? 0 : -1;
}

static void id_map_free(id_map *m) {
    free(m->keys);
    free(m->vals);
}

/* Doubles the table (kept at most half full). */
static int id_map_grow(id_map *m) {
    id_map g;
    if (id_map_alloc(&g, (m->mask + 1) * 2)) {
        id_map_free(&g);
        return -1;
    }
    for (size_t i = 0; i <= m->mask; i++)
        if (m->keys[i]) {
            size_t s = id_slot(&g, m->keys[i]);
            g.keys[s] = m->keys[i];
            g.vals[s] = m->vals[i];
        }
    g.used = m->used;
    id_map_free(m);
    *m = g;
    return 0;
}

/* Two sweeps: the first gives ids in order of first appearance and checks the range
 * before anything is written, so a failure leaves labels as they were. */
int mosaic_labels_compact(uint32_t *labels, int64_t n, uint32_t first_id, uint32_t *n_ids, samc_error *err) {
    if (n < 0) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_labels_compact: n = %lld < 0", (long long)n);
    if (first_id == 0)
        return samc_error_set(err, SAMC_ERR_ARG, "mosaic_labels_compact: first_id 0 is the background label");
    if (n > 0 && !labels) return samc_error_set(err, SAMC_ERR_ARG, "mosaic_labels_compact: NULL labels");
    id_map m;
    if (id_map_alloc(&m, 1024)) {
        id_map_free(&m);
        return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic_labels_compact: out of memory");
    }
    uint32_t last_key = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = labels[i];
        if (!v || v == last_key) continue;   /* runs of one label: one look-up */
        size_t s = id_slot(&m, v);
        if (!m.keys[s]) {
            if (2 * (m.used + 1) > m.mask + 1) {
                if (id_map_grow(&m)) {
                    size_t want = m.used + 1;
                    id_map_free(&m);
                    return samc_error_set(err, SAMC_ERR_NOMEM, "mosaic_labels_compact: out of memory for %zu distinct labels",
                                       want);
                }
                s = id_slot(&m, v);
            }
            m.keys[s] = v;
            m.vals[s] = (uint32_t)m.used++;   /* offset from first_id, checked below */
        }
        last_key = v;
    }
    if (m.used > 0 && (uint64_t)first_id + m.used - 1 > (uint64_t)UINT32_MAX - 1) {
        size_t used = m.used;
        id_map_free(&m);
        return samc_error_set(err, SAMC_ERR_ARG,
                           "mosaic_labels_compact: %zu labels from first_id %u would pass the largest id %u", used,
                           first_id, UINT32_MAX - 1);
    }
    last_key = 0;
    uint32_t last_val = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = labels[i];
        if (!v) continue;
        if (v != last_key) {
            last_key = v;
            last_val = first_id + m.vals[id_slot(&m, v)];
        }
        labels[i] = last_val;
    }
    if (n_ids) *n_ids = (uint32_t)m.used;
    id_map_free(&m);
    return 0;
}
