/* tests/golden.h: reading the golden reference data (shared/golden/<family>/<config>/) and
 * comparing the model's dumped tensors with it, for tests/test_golden.c (SAM2.1) and
 * tests/test_sam3_golden.c (SAM3).
 *
 * A config folder holds groups (set_image, one folder per case), each a manifest.json
 * (per tensor: shape, dtype, how it is stored, suggested_tol_abs) and a
 * tensors.safetensors. A tensor is stored in full (F32, F16, I32, U8), as 4096 samples
 * (<name>.sample_idx / .sample_val) or as `same_as` another group's tensor. The model's
 * dump hook hands every named intermediate to golden_compare_tensor, which finds the
 * golden values and checks them within the manifest's tolerance (0 for integers and the
 * uint8 image; float16 storage adds its own rounding |x| 2^-11). */
#ifndef SAMC_TESTS_GOLDEN_H
#define SAMC_TESTS_GOLDEN_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "loader/safetensors.h"
#include "tests/test.h"

/* The config folder the groups are read from. */
static char golden_root[512] __attribute__((unused));

typedef struct {
    char name[64];
    cJSON *manifest;
    st_file st;
    int ok;
} golden_group;

#define GOLDEN_MAX_GROUPS 16
static golden_group golden_groups[GOLDEN_MAX_GROUPS] __attribute__((unused));
static int golden_n_groups __attribute__((unused));

static inline void golden_groups_close(void) {
    for (int i = 0; i < golden_n_groups; i++) {
        cJSON_Delete(golden_groups[i].manifest);
        if (golden_groups[i].ok) st_close(&golden_groups[i].st);
    }
    golden_n_groups = 0;
}

/* The group (opened on first use; ok = 0 when its files are missing or unreadable). */
static inline golden_group *golden_group_get(const char *name) {
    for (int i = 0; i < golden_n_groups; i++)
        if (!strcmp(golden_groups[i].name, name)) return &golden_groups[i];
    if (golden_n_groups == GOLDEN_MAX_GROUPS) return NULL;
    golden_group *g = &golden_groups[golden_n_groups++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    char path[700], err[SAMC_ERRMSG];
    snprintf(path, sizeof path, "%s/%s/manifest.json", golden_root, name);
    char *txt = test_read_text(path);
    g->manifest = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    snprintf(path, sizeof path, "%s/%s/tensors.safetensors", golden_root, name);
    g->ok = g->manifest && st_open(path, &g->st, err) == 0;
    if (!g->ok) fprintf(stderr, "  cannot open golden group %s\n", path);
    return g;
}

static inline cJSON *golden_entry(const char *group, const char *name) {
    golden_group *g = golden_group_get(group);
    return g && g->ok ? cJSON_GetObjectItem(cJSON_GetObjectItem(g->manifest, "tensors"), name) : NULL;
}

/* Values of a tensor, following same_as links: vals[n] at flat indices idx[n] (idx NULL:
 * the full tensor in order); numel of the whole tensor; f16 when stored as float16. */
typedef struct { float *vals; int32_t *idx; int64_t n, numel; int f16; } golden_tensor;

static inline void golden_free(golden_tensor *t) { free(t->vals); free(t->idx); memset(t, 0, sizeof *t); }

static inline int golden_values(const st_tensor *t, float *out) {
    char err[SAMC_ERRMSG];
    if (t->dtype == ST_I32)
        for (int64_t i = 0; i < t->numel; i++) out[i] = (float)((const int32_t *)t->data)[i];
    else if (t->dtype == ST_U8)
        for (int64_t i = 0; i < t->numel; i++) out[i] = (float)((const uint8_t *)t->data)[i];
    else
        return st_read_f32(t, out, err);
    return 0;
}

/* 0 if found, -1 if the group does not record `name`. */
static inline int golden_load(const char *group, const char *name, golden_tensor *out, int depth) {
    memset(out, 0, sizeof *out);
    cJSON *e = golden_entry(group, name);
    const char *stored = e ? cJSON_GetStringValue(cJSON_GetObjectItem(e, "stored")) : NULL;
    if (!stored || depth > 4) return -1;
    if (!strcmp(stored, "same_as")) {
        char ref[200];
        snprintf(ref, sizeof ref, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(e, "same_as")));
        char *slash = strchr(ref, '/');
        if (!slash) return -1;
        *slash = 0;
        return golden_load(ref, slash + 1, out, depth + 1);
    }
    golden_group *g = golden_group_get(group);
    char key[200];
    const st_tensor *tv, *ti = NULL;
    if (!strcmp(stored, "sample4096")) {
        snprintf(key, sizeof key, "%s.sample_val", name);
        tv = st_find(&g->st, key);
        snprintf(key, sizeof key, "%s.sample_idx", name);
        if (!(ti = st_find(&g->st, key))) return -1;
    } else {
        tv = st_find(&g->st, name);
    }
    if (!tv) return -1;
    out->n = tv->numel;
    out->f16 = tv->dtype == ST_F16;
    out->numel = 1;
    cJSON *sh = cJSON_GetObjectItem(e, "shape");
    for (cJSON *d = sh ? sh->child : NULL; d; d = d->next) out->numel *= (int64_t)d->valuedouble;
    out->vals = malloc(sizeof(float) * (size_t)(out->n ? out->n : 1));
    if (golden_values(tv, out->vals)) { golden_free(out); return -1; }
    if (ti) {
        out->idx = malloc(sizeof(int32_t) * (size_t)out->n);
        memcpy(out->idx, ti->data, sizeof(int32_t) * (size_t)out->n);
    }
    return 0;
}

/* The numbers of a (nested) JSON array, flattened: out[max]; returns how many. */
static inline int golden_floats(cJSON *a, float *out, int max) {
    int n = 0;
    for (cJSON *x = a ? a->child : NULL; x && n < max; x = x->next) {
        if (cJSON_IsArray(x)) n += golden_floats(x, out + n, max - n);
        else out[n++] = (float)x->valuedouble;
    }
    return n;
}

/* suggested_tol_abs, or 0 (exact) for the integer tensors and the uint8 image. */
static inline double golden_tol(const char *group, const char *name) {
    cJSON *t = cJSON_GetObjectItem(golden_entry(group, name), "suggested_tol_abs");
    return cJSON_IsNumber(t) ? t->valuedouble : 0.0;
}

/* ---- comparing dumps ------------------------------------------------------------------- */

typedef struct {
    const char *group;
    const char *prefix;          /* prepended to the dumped names (SAM3 f_two_texts: "t0.") */
    int mute;                    /* ignore dumps (a computation the golden does not record) */
    char seen[192][96];
    int n_seen, n_checked, n_bad;
    double worst_ratio;
    char worst[96];
} golden_compare;

static inline int golden_verbose(void) {
    const char *v = getenv("SAMC_TEST_VERBOSE");
    return v && *v && *v != '0';
}

/* One tensor against the group's golden (nothing when the group does not record it). */
static inline void golden_compare_tensor(golden_compare *c, const char *name, const float *data, int64_t numel) {
    golden_tensor g;
    if (golden_load(c->group, name, &g, 0)) return;
    if (c->n_seen < 192) snprintf(c->seen[c->n_seen++], sizeof c->seen[0], "%s", name);
    c->n_checked++;
    double tol = golden_tol(c->group, name);
    if (g.numel != numel) {
        fprintf(stderr, "  NOT OK %s/%s: %lld values, golden has %lld\n", c->group, name, (long long)numel,
                (long long)g.numel);
        c->n_bad++;
        test_failures_in_current++;
        golden_free(&g);
        return;
    }
    double maxerr = 0.0, worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < g.n; i++) {
        int64_t k = g.idx ? g.idx[i] : i;
        double e = fabs((double)data[k] - (double)g.vals[i]);
        double beyond = e - (g.f16 ? fabs((double)g.vals[i]) * 0x1p-11 : 0.0);
        if (!(e <= maxerr)) maxerr = e;
        if (!(beyond <= worst)) { worst = beyond; at = k; }
    }
    double ratio = tol > 0 ? worst / tol : (worst > 0 ? INFINITY : 0.0);
    int ok = worst <= tol;
    if (ratio > c->worst_ratio) { c->worst_ratio = ratio; snprintf(c->worst, sizeof c->worst, "%s", name); }
    if (!ok || golden_verbose())
        fprintf(stderr, "  %s %s/%s: max |err| %.3g at %lld (got %.9g) tol %.3g%s\n", ok ? "OK    " : "NOT OK",
                c->group, name, maxerr, (long long)at, (double)data[at], tol, g.idx ? " (sampled)" : "");
    if (!ok) { c->n_bad++; test_failures_in_current++; }
    golden_free(&g);
}

/* Every tensor the group records must have been produced, except those skip() names. */
static inline void golden_check_all_seen(golden_compare *c, int (*skip)(const char *name)) {
    golden_group *g = golden_group_get(c->group);
    cJSON *ts = g && g->ok ? cJSON_GetObjectItem(g->manifest, "tensors") : NULL;
    for (cJSON *e = ts ? ts->child : NULL; e; e = e->next) {
        if (skip && skip(e->string)) continue;
        int seen = 0;
        for (int i = 0; i < c->n_seen && !seen; i++) seen = !strcmp(c->seen[i], e->string);
        CHECKF(seen, "%s/%s was never produced by the engine", c->group, e->string);
    }
}

/* One line per group: "  OK     [label ]group: N tensors compared, worst <name> at r x tol". */
static inline void golden_report(const golden_compare *c, const char *label) {
    printf("  %-6s %s%s%s: %d tensors compared, worst %s at %.2f x tol\n", c->n_bad ? "NOT OK" : "OK",
           label ? label : "", label ? " " : "", c->group, c->n_checked, c->worst[0] ? c->worst : "-",
           c->worst_ratio);
}

#endif
