/* tests/test_sam3_config.c: the SAM3 configs and state-dict specification against the
 * golden state_dict.json files (names, order, shapes, which entries are computed),
 * samc-synth-v1 on them (first values, sums), `samc synth --config sam3_micro` against
 * micro.safetensors tensor for tensor, and config detection (both configs, any order,
 * the RoPE tables present or not, truncated and foreign tensor lists).
 * Missing golden data is a failure, not a skip. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/convert.h"
#include "convert/synth.h"
#include "loader/safetensors.h"
#include "model/config/sam2_config.h"
#include "model/config/sam3_config.h"
#include "tests/test.h"
#include "tests/golden.h"

static cJSON *load_state_dict(const char *folder) {
    char path[512];
    snprintf(path, sizeof path, "%s/sam3/%s/state_dict.json", test_golden_dir(), folder);
    char *text = test_read_text(path);
    CHECKF(text != NULL, "golden file %s is missing", path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECKF(!text || root, "cannot parse %s", path);
    return root;
}

/* One spec entry against one state_dict.json row: name, shape, stored or computed, FNV,
 * and for stored entries the synthetic values (first 4; the float64 sum when with_sum). */
static int check_entry(const spec_entry *s, cJSON *t, int with_sum, float **v, int64_t *v_cap) {
    const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
    cJSON *shape = cJSON_GetObjectItem(t, "shape");
    int bad = strcmp(name, s->name) != 0 || cJSON_GetArraySize(shape) != s->ndim;
    for (int d = 0; !bad && d < s->ndim; d++) bad = cJSON_GetArrayItem(shape, d)->valuedouble != (double)s->shape[d];
    if (bad) {
        fprintf(stderr, "  spec '%s' (ndim %d) vs golden '%s'\n", s->name, s->ndim, name);
        return 1;
    }
    const char *rule = cJSON_GetObjectItem(t, "rule")->valuestring;
    int computed = strcmp(rule, "computed_rope") == 0;
    if (computed == sam3_config_is_stored(s->name)) {
        fprintf(stderr, "  %s: rule %s, but is_stored says %d\n", s->name, rule, sam3_config_is_stored(s->name));
        return 1;
    }
    if (computed) return 0;
    char fnv[32];
    snprintf(fnv, sizeof fnv, "0x%016llx", (unsigned long long)spec_fnv1a64(s->name));
    if (strcmp(fnv, cJSON_GetObjectItem(t, "fnv1a64")->valuestring) != 0) {
        fprintf(stderr, "  %s: fnv %s\n", s->name, fnv);
        return 1;
    }
    /* The first values depend only on the name and the fan-in, so without the sum a
     * [1, fan] (or 4-value 1-D) tensor of the same rule gives them cheaply. */
    int64_t fan = s->ndim >= 2 ? s->numel / s->shape[0] : 1;
    int64_t small[2] = { s->ndim >= 2 ? 1 : (s->numel < 4 ? s->numel : 4), fan };
    int64_t n = with_sum ? s->numel : s->ndim >= 2 ? fan : small[0];
    if (n > *v_cap) {
        free(*v);
        *v_cap = n;
        *v = malloc((size_t)n * sizeof **v);
    }
    if (with_sum) synth_fill(s->name, s->ndim, s->shape, *v);
    else synth_fill(s->name, s->ndim >= 2 ? 2 : 1, small, *v);
    cJSON *first4 = cJSON_GetObjectItem(t, "first4");
    for (int k = 0; k < 4 && k < s->numel; k++)
        if ((double)(*v)[k] != cJSON_GetArrayItem(first4, k)->valuedouble) {
            fprintf(stderr, "  %s[%d] = %.17g, want %.17g\n", s->name, k, (double)(*v)[k],
                    cJSON_GetArrayItem(first4, k)->valuedouble);
            return 1;
        }
    if (!with_sum) return 0;
    double sum = 0, sum_abs = 0;
    for (int64_t k = 0; k < s->numel; k++) { sum += (*v)[k]; sum_abs += fabs((*v)[k]); }
    double want = cJSON_GetObjectItem(t, "sum")->valuedouble;
    if (fabs(sum - want) > 1e-6 * fabs(want) + 1e-12 * sum_abs) {
        fprintf(stderr, "  %s: sum %.17g, want %.17g\n", s->name, sum, want);
        return 1;
    }
    return 0;
}

/* The spec of `config` against <folder>/state_dict.json: count, order, shapes, rules;
 * synthetic sums of the tensors up to sum_limit values. */
static void check_state_dict(const char *config, const char *folder, int want_n, int64_t sum_limit) {
    cJSON *root = load_state_dict(folder);
    if (!root) return;
    cJSON *tensors = cJSON_GetObjectItem(root, "tensors");
    int n_ref = cJSON_GetArraySize(tensors);
    CHECK(n_ref == want_n && n_ref == cJSON_GetObjectItem(root, "num_tensors")->valueint);
    const sam3_config *c = sam3_config_get(config);
    CHECK(c != NULL);
    spec_entry *e = NULL;
    int n = 0;
    char err[SPEC_ERRMSG];
    CHECKF(c && sam3_config_spec(c, &e, &n, err) == 0, "%s", err);
    CHECKF(n == n_ref, "%s: spec has %d entries, state_dict.json %d", config, n, n_ref);
    int errors = 0, i = 0;
    int64_t total = 0;
    float *v = NULL;
    int64_t v_cap = 0;
    cJSON *t;
    cJSON_ArrayForEach(t, tensors) {
        if (i >= n) break;
        const spec_entry *s = &e[i++];
        errors += check_entry(s, t, s->numel <= sum_limit, &v, &v_cap);
        total += s->numel;
        if (errors > 5) break;
    }
    CHECKF(errors == 0, "%s: %d mismatches", config, errors);
    /* num_values counts every element, a complex one once (3,824,778 and 841,689,398) */
    CHECKF(total == (int64_t)cJSON_GetObjectItem(root, "num_values")->valuedouble, "%s: %lld values", config,
           (long long)total);
    free(v);
    spec_free(e);
    cJSON_Delete(root);
}

static void test_state_dict_micro(void) { check_state_dict("sam3_micro", "micro", 320, INT64_MAX); }
/* every name, shape and first values; sums of the tensors up to 4M values */
static void test_state_dict_full(void) { check_state_dict("sam3", "sam3", 1134, 1 << 22); }

static void test_config_facts(void) {
    const sam3_config *c = sam3_config_get("sam3"), *m = sam3_config_get("sam3_micro");
    CHECK(c && m && sam3_config_count() == 2 && sam3_config_at(2) == NULL && !sam3_config_get("micro"));
    if (!c || !m) return;
    CHECK(sam3_config_grid(c) == 72 && sam3_config_grid(m) == 18);
    CHECK(sam3_config_block_is_global(c, 31) && !sam3_config_block_is_global(c, 30));
    CHECK(sam3_config_rope_tokens(c, 7) == 5184 && sam3_config_rope_tokens(c, 0) == 576);
    CHECK(sam3_config_rope_tokens(m, 1) == 324 && sam3_config_rope_tokens(m, 2) == 36);
    CHECK(sam3_config_is_stored("backbone.vision_backbone.trunk.blocks.0.attn.qkv.weight"));
    CHECK(!sam3_config_is_stored("backbone.vision_backbone.trunk.blocks.3.attn.freqs_cis"));
}

/* ---- samc synth --config sam3_micro against micro.safetensors ----------------------- */

static void test_synth_micro(void) {
    char golden[512], err[SAMC_ERRMSG];
    snprintf(golden, sizeof golden, "%s/sam3/micro/weights/micro.safetensors", test_golden_dir());
    st_file a, b;
    int ra = st_open(golden, &a, err);
    CHECKF(ra == 0, "golden weights: %s", err);
    char dir[] = "/tmp/samc_test_sam3_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/sam3_micro.safetensors", dir);
    samc_error se = { 0 };
    CHECKF(samc_synth_write("sam3_micro", path, &se) == 0, "%s", se.msg);
    int rb = st_open(path, &b, err);
    CHECKF(rb == 0, "%s", err);
    if (!ra && !rb) {
        CHECKF(a.n_tensors == 316 && b.n_tensors == 316, "%d and %d tensors", a.n_tensors, b.n_tensors);
        int same_all = 1;
        for (int i = 0; i < a.n_tensors; i++) {
            const st_tensor *x = &a.tensors[i], *y = st_find(&b, x->name);
            int same = y && x->dtype == ST_F32 && y->dtype == ST_F32 && x->ndim == y->ndim && x->nbytes == y->nbytes;
            for (int d = 0; same && d < x->ndim; d++) same = x->shape[d] == y->shape[d];
            same = same && memcmp(x->data, y->data, x->nbytes) == 0;
            if (!same && same_all) fprintf(stderr, "  first difference: tensor '%s'\n", x->name);
            same_all &= same;
        }
        CHECKF(same_all, "synthetic sam3_micro differs from %s", golden);
        const char *cfg = st_meta_get(&b, "config"), *size = st_meta_get(&b, "image_size");
        CHECK(cfg && !strcmp(cfg, "sam3_micro") && size && !strcmp(size, "252"));
    }
    if (!ra) st_close(&a);
    if (!rb) st_close(&b);
    unlink(path);
    rmdir(dir);
}

/* ---- detection ------------------------------------------------------------------------- */

typedef struct {
    int n;
    const char **names;
    const int64_t **shapes;
    int *ndims;
} name_list;

/* The spec's entries (stored ones only unless with_computed), reversed when reverse. */
static name_list list_of(const spec_entry *e, int n, int with_computed, int reverse) {
    name_list l = { 0 };
    l.names = malloc(sizeof *l.names * (size_t)n);
    l.shapes = malloc(sizeof *l.shapes * (size_t)n);
    l.ndims = malloc(sizeof *l.ndims * (size_t)n);
    for (int k = 0; k < n; k++) {
        int i = reverse ? n - 1 - k : k;
        if (!with_computed && !sam3_config_is_stored(e[i].name)) continue;
        l.names[l.n] = e[i].name;
        l.shapes[l.n] = e[i].shape;
        l.ndims[l.n] = e[i].ndim;
        l.n++;
    }
    return l;
}

static void list_free(name_list *l) { free(l->names); free(l->shapes); free(l->ndims); }

static void test_detect_configs(void) {
    char err[SPEC_ERRMSG];
    for (int ci = 0; ci < sam3_config_count(); ci++) {
        const sam3_config *want = sam3_config_at(ci), *got = NULL;
        spec_entry *e;
        int n;
        CHECKF(sam3_config_spec(want, &e, &n, err) == 0, "%s", err);
        for (int variant = 0; variant < 4; variant++) {
            name_list l = list_of(e, n, variant & 1, variant & 2);
            int rc = sam3_config_detect(l.names, l.shapes, l.ndims, l.n, &got, err);
            CHECKF(rc == 0 && got == want, "%s variant %d: %s", want->name, variant, rc ? err : got->name);
            CHECK(sam3_config_looks_like(l.names, l.n));
            list_free(&l);
        }
        /* one stored tensor missing: named */
        name_list l = list_of(e, n, 0, 0);
        const char *dropped = l.names[17];
        l.names[17] = l.names[--l.n];
        CHECK(sam3_config_detect(l.names, l.shapes, l.ndims, l.n, &got, err) == -1 && got == NULL);
        CHECKF(strstr(err, dropped) && strstr(err, want->name), "%s", err);
        /* a wrong shape: named with both shapes */
        int64_t bad[SPEC_MAX_DIMS];
        l.n++;
        l.names[17] = dropped;
        memcpy(bad, e[17].shape, sizeof bad);
        bad[0]++;
        l.shapes[17] = bad;
        CHECK(sam3_config_detect(l.names, l.shapes, l.ndims, l.n, &got, err) == -1);
        CHECKF(strstr(err, "wrong shape") && strstr(err, "has shape"), "%s", err);
        list_free(&l);
        spec_free(e);
    }
    /* a SAM2.1 checkpoint is not taken for SAM3 */
    spec_entry *e2;
    int n2;
    CHECK(sam2_config_spec(sam2_config_get("tiny"), &e2, &n2, err) == 0);
    name_list l = list_of(e2, n2, 1, 0);
    const sam3_config *got = NULL;
    CHECK(!sam3_config_looks_like(l.names, l.n));
    CHECK(sam3_config_detect(l.names, l.shapes, l.ndims, l.n, &got, err) == -1);
    CHECKF(strstr(err, "match no SAM3 config"), "%s", err);
    CHECK(sam3_config_detect(l.names, l.shapes, l.ndims, 0, &got, err) == -1);
    list_free(&l);
    spec_free(e2);
}

/* micro.safetensors itself (no "detector." prefix, no RoPE tables) is sam3_micro. */
static void test_detect_golden_file(void) {
    char golden[512], err[SAMC_ERRMSG];
    snprintf(golden, sizeof golden, "%s/sam3/micro/weights/micro.safetensors", test_golden_dir());
    st_file f;
    int rc = st_open(golden, &f, err);
    CHECKF(rc == 0, "golden weights: %s", err);
    if (rc) return;
    const char **names = malloc(sizeof *names * (size_t)f.n_tensors);
    const int64_t **shapes = malloc(sizeof *shapes * (size_t)f.n_tensors);
    int *ndims = malloc(sizeof *ndims * (size_t)f.n_tensors);
    for (int i = 0; i < f.n_tensors; i++) {
        names[i] = f.tensors[i].name;
        shapes[i] = f.tensors[i].shape;
        ndims[i] = f.tensors[i].ndim;
    }
    const sam3_config *got = NULL;
    CHECK(sam3_config_looks_like(names, f.n_tensors));
    CHECKF(sam3_config_detect(names, shapes, ndims, f.n_tensors, &got, err) == 0 && got &&
               !strcmp(got->name, "sam3_micro"),
           "%s", err);
    /* the file without its last tensor */
    CHECK(sam3_config_detect(names, shapes, ndims, f.n_tensors - 1, &got, err) == -1);
    CHECKF(strstr(err, "missing key") && strstr(err, "sam3_micro"), "%s", err);
    free(names);
    free(shapes);
    free(ndims);
    st_close(&f);
}

TEST_MAIN(TEST_CASE(test_config_facts), TEST_CASE(test_state_dict_micro), TEST_CASE(test_state_dict_full),
          TEST_CASE(test_synth_micro), TEST_CASE(test_detect_configs), TEST_CASE(test_detect_golden_file))
