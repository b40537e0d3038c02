/* model/config/spec.c: state-dict specifications and the matcher. See spec.h. */
#include "model/config/spec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void spec_add(spec_builder *b, int ndim, const int64_t *dims, const char *fmt, ...) {
    if (b->failed) return;
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 512;
        spec_entry *e = realloc(b->e, (size_t)cap * sizeof *e);
        if (!e) {
            snprintf(b->err, sizeof b->err, "state-dict spec: out of memory at %d entries", b->n);
            b->failed = 1;
            return;
        }
        b->e = e;
        b->cap = cap;
    }
    spec_entry *t = &b->e[b->n];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int)sizeof t->name) {
        snprintf(b->err, sizeof b->err, "state-dict spec: tensor name longer than %d bytes: '%s...'",
                 SPEC_NAME_MAX - 1, t->name);
        b->failed = 1;
        return;
    }
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = dims[i];
        t->numel *= dims[i];
    }
    b->n++;
}

void spec_prefix(char *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, 2 * SPEC_NAME_MAX, fmt, ap);
    va_end(ap);
}

void spec_linear(spec_builder *b, const char *prefix, int in, int out, int bias) {
    SPEC_ADD2(b, out, in, "%s.weight", prefix);
    if (bias) SPEC_ADD1(b, out, "%s.bias", prefix);
}

void spec_norm(spec_builder *b, const char *prefix, int dim) {
    SPEC_ADD1(b, dim, "%s.weight", prefix);
    SPEC_ADD1(b, dim, "%s.bias", prefix);
}

void spec_conv(spec_builder *b, const char *prefix, int in, int out, int k, int groups, int bias) {
    SPEC_ADD4(b, out, in / groups, k, k, "%s.weight", prefix);
    if (bias) SPEC_ADD1(b, out, "%s.bias", prefix);
}

void spec_conv_transpose(spec_builder *b, const char *prefix, int in, int out, int k) {
    SPEC_ADD4(b, in, out, k, k, "%s.weight", prefix);
    SPEC_ADD1(b, out, "%s.bias", prefix);
}

void spec_mlp(spec_builder *b, const char *prefix, int in, int hidden, int out, int layers) {
    char p[2 * SPEC_NAME_MAX];
    for (int i = 0; i < layers; i++) {
        spec_prefix(p, "%s.layers.%d", prefix, i);
        spec_linear(b, p, i == 0 ? in : hidden, i == layers - 1 ? out : hidden, 1);
    }
}

int spec_builder_finish(spec_builder *b, spec_entry **out, int *n, char *err) {
    if (b->failed) {
        snprintf(err, SPEC_ERRMSG, "%s", b->err);
        free(b->e);
        *out = NULL;
        *n = 0;
        return -1;
    }
    *out = b->e;
    *n = b->n;
    return 0;
}

void spec_free(spec_entry *e) { free(e); }

uint64_t spec_fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Open-addressing table of spec indices by name; -1 = empty. */
static int *name_table(const spec_entry *e, int ne, size_t *cap_out) {
    size_t cap = 1;
    while (cap < (size_t)ne * 2) cap <<= 1;
    int *table = malloc(cap * sizeof *table);
    if (!table) return NULL;
    for (size_t i = 0; i < cap; i++) table[i] = -1;
    for (int i = 0; i < ne; i++) {
        size_t h = (size_t)spec_fnv1a64(e[i].name) & (cap - 1);
        while (table[h] >= 0) h = (h + 1) & (cap - 1);
        table[h] = i;
    }
    *cap_out = cap;
    return table;
}

static int table_find(const int *table, size_t cap, const spec_entry *e, const char *name) {
    size_t h = (size_t)spec_fnv1a64(name) & (cap - 1);
    while (table[h] >= 0) {
        if (strcmp(e[table[h]].name, name) == 0) return table[h];
        h = (h + 1) & (cap - 1);
    }
    return -1;
}

static int spec_match(const spec_entry *e, int ne, int (*required)(const char *name), const char *const *names,
               const int64_t *const *shapes, const int *ndims, int n, spec_match_report *r, char *err) {
    memset(r, 0, sizeof *r);
    size_t cap;
    int *table = name_table(e, ne, &cap);
    int *seen = calloc((size_t)ne + 1, sizeof *seen);
    if (!table || !seen) {
        free(table);
        free(seen);
        snprintf(err, SPEC_ERRMSG, "state-dict match: out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int k = table_find(table, cap, e, names[i]);
        if (k < 0) {
            if (!r->unexpected++) r->first_unexpected = names[i];
            continue;
        }
        if (seen[k]++) {
            if (!r->duplicated++) r->first_duplicate = names[i];
            continue;
        }
        int same = ndims[i] == e[k].ndim;
        for (int d = 0; same && d < e[k].ndim; d++) same = shapes[i][d] == e[k].shape[d];
        if (same) {
            r->matched++;
            r->matched_required += !required || required(e[k].name);
        } else if (!r->mismatched++) {
            r->first_mismatch = names[i];
            r->mismatch_spec = k;
            r->mismatch_input = i;
        }
    }
    for (int k = 0; k < ne; k++) {
        int req = !required || required(e[k].name);
        r->n_required += req;
        if (req && !seen[k] && !r->missing++) snprintf(r->first_missing, sizeof r->first_missing, "%s", e[k].name);
    }
    free(table);
    free(seen);
    return 0;
}

static int spec_match_exact(const spec_match_report *r) {
    return !r->missing && !r->unexpected && !r->mismatched && !r->duplicated;
}

static void fmt_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
}

static void spec_match_details(const spec_match_report *r, const spec_entry *spec, const int64_t *const *shapes,
                        const int *ndims, char *buf, size_t size) {
    size_t k = 0;
    buf[0] = 0;
    if (r->mismatched && k < size) {
        char got[96], want[96];
        int i = r->mismatch_input;
        const spec_entry *s = &spec[r->mismatch_spec];
        fmt_shape(got, sizeof got, ndims[i] < SPEC_MAX_DIMS ? ndims[i] : SPEC_MAX_DIMS, shapes[i]);
        fmt_shape(want, sizeof want, s->ndim, s->shape);
        k += (size_t)snprintf(buf + k, size - k, "; tensor '%.100s' has shape %s, expected %s", r->first_mismatch,
                              got, want);
    }
    if (r->missing && k < size) k += (size_t)snprintf(buf + k, size - k, "; missing key '%.100s'", r->first_missing);
    if (r->unexpected && k < size)
        k += (size_t)snprintf(buf + k, size - k, "; unexpected key '%.100s'", r->first_unexpected);
    if (r->duplicated && k < size)
        snprintf(buf + k, size - k, "; duplicate key '%.100s'", r->first_duplicate);
}

int spec_detect(int n_configs, spec_build_fn build, int (*required)(const char *name), const char *const *names,
                const int64_t *const *shapes, const int *ndims, int n, int *closest, spec_match_report *r,
                char *detail, size_t detail_size, char *err) {
    int best = -1;
    spec_entry *best_spec = NULL;
    for (int ci = 0; ci < n_configs; ci++) {
        spec_match_report cr;
        spec_entry *spec;
        int ns;
        if (build(ci, &spec, &ns, err) || spec_match(spec, ns, required, names, shapes, ndims, n, &cr, err)) {
            spec_free(best_spec);
            return -2;
        }
        if (spec_match_exact(&cr)) {
            spec_free(spec);
            spec_free(best_spec);
            return ci;
        }
        if (best < 0 || cr.matched > r->matched) {
            spec_free(best_spec);
            best = ci;
            *r = cr;
            best_spec = spec;
        } else {
            spec_free(spec);
        }
    }
    *closest = best;
    detail[0] = 0;
    if (best_spec) spec_match_details(r, best_spec, shapes, ndims, detail, detail_size);
    spec_free(best_spec);
    return -1;
}
