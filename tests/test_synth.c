/* tests/test_synth.c: samc-synth-v1 and the state-dict specification against the golden
 * state_dict.json files, the official parameter counts of the larger sizes, the
 * synthetic-checkpoint writer against micro.safetensors, and config detection. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/safetensors.h"
#include "model/config/sam2_config.h"
#include "convert/synth.h"
#include "convert/convert.h"
#include "tests/test.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

/* ---- formula: the check table of shared/golden/README.md section 1 ------------- */

static void test_check_table(void) {
    static const struct {
        const char *name;
        int ndim;
        int64_t shape[4];
        uint64_t fnv;
        float first4[4];
    } rows[] = {
        {"image_encoder.trunk.patch_embed.proj.weight", 4, {96, 3, 7, 7}, 0xfe6fef5226d7af02ULL,
         {-0.00807785429f, -0.0411417596f, 0.0299272127f, -0.016844986f}},
        {"image_encoder.trunk.blocks.0.norm1.weight", 1, {96}, 0x39c5b5d6fbcfd488ULL,
         {0.970848978f, 1.06134772f, 0.997250319f, 1.04481149f}},
        {"image_encoder.trunk.blocks.0.norm1.bias", 1, {96}, 0x812e966183c061bdULL,
         {0.00408757944f, -0.0165222436f, 0.0103352545f, -0.0118892547f}},
        {"sam_mask_decoder.iou_token.weight", 2, {1, 256}, 0x7ac2464a60962ee9ULL,
         {0.0117120221f, 0.0323360339f, 0.0279946327f, 0.0338190272f}},
        {"sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", 2, {2, 128}, 0xbb7ed212ba1f2da9ULL,
         {-0.024960354f, 0.0553946868f, 0.0101562524f, 0.0472226776f}},
        {"no_mem_embed", 3, {1, 1, 256}, 0xe5edc8d33ca9cf6aULL,
         {-0.0313281789f, -0.0094153285f, -0.0485653877f, 0.00979551673f}},
    };
    CHECK(spec_fnv1a64("") == 0xcbf29ce484222325ULL);
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        CHECKF(spec_fnv1a64(rows[r].name) == rows[r].fnv, "%s: fnv %016llx", rows[r].name,
               (unsigned long long)spec_fnv1a64(rows[r].name));
        int64_t numel = 1;
        for (int d = 0; d < rows[r].ndim; d++) numel *= rows[r].shape[d];
        float *v = malloc((size_t)numel * sizeof *v);
        synth_fill(rows[r].name, rows[r].ndim, rows[r].shape, v);
        for (int i = 0; i < 4; i++)
            CHECKF(v[i] == rows[r].first4[i], "%s[%d] = %.9g, want %.9g", rows[r].name, i, v[i], rows[r].first4[i]);
        free(v);
    }
    /* The 0-D / non-weight 1-D rule and the value ranges of each rule. */
    int64_t s1 = 4096, s2[2] = {64, 4096};
    float *v = malloc(64 * 4096 * sizeof *v);
    synth_fill("memory_encoder.fuser.layers.0.gamma", 1, &s1, v);
    float lo = 1, hi = -1;
    for (int i = 0; i < 4096; i++) { lo = fminf(lo, v[i]); hi = fmaxf(hi, v[i]); }
    CHECKF(lo >= -0.02f && hi < 0.02f && hi - lo > 0.039f, "gamma range [%g, %g]", lo, hi);
    synth_fill("x.weight", 1, &s1, v);
    lo = 2; hi = 0;
    for (int i = 0; i < 4096; i++) { lo = fminf(lo, v[i]); hi = fmaxf(hi, v[i]); }
    CHECKF(lo >= 0.9f && hi < 1.1f && hi - lo > 0.19f, "norm weight range [%g, %g]", lo, hi);
    synth_fill("x.weight", 2, s2, v);
    lo = 1; hi = -1;
    for (int i = 0; i < 64 * 4096; i++) { lo = fminf(lo, v[i]); hi = fmaxf(hi, v[i]); }
    CHECKF(lo >= -1.0f / 64 && hi < 1.0f / 64 && hi - lo > 1.99f / 64, "fan range [%g, %g]", lo, hi);
    free(v);
}

/* ---- spec + formula against state_dict.json -------------------------------------- */

static void check_state_dict(const char *config) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/state_dict.json", test_golden_dir(), config);
    char *text = slurp(path);
    TEST_NEED_GOLDEN(text != NULL, path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    CHECKF(root != NULL, "cannot parse %s", path);
    if (!root) return;
    cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    int n_ref = cJSON_GetArraySize(tensors);
    CHECK(n_ref == cJSON_GetObjectItemCaseSensitive(root, "num_tensors")->valueint);

    spec_entry *e;
    int n;
    char err[SAMC_ERRMSG];
    const sam2_config *c = sam2_config_get(config);
    CHECK(c != NULL);
    CHECKF(sam2_config_spec(c, &e, &n, err) == 0, "%s", err);
    CHECKF(n == n_ref, "%s: spec has %d tensors, state_dict.json %d", config, n, n_ref);
    int64_t total = 0;
    int errors = 0;
    float *v = NULL;
    int64_t v_cap = 0;
    int i = 0;
    cJSON *t;
    cJSON_ArrayForEach(t, tensors) {
        if (i >= n) break;
        const spec_entry *s = &e[i++];
        const char *name = cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring;
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        int bad = strcmp(name, s->name) != 0 || cJSON_GetArraySize(shape) != s->ndim;
        for (int d = 0; !bad && d < s->ndim; d++) bad = cJSON_GetArrayItem(shape, d)->valuedouble != (double)s->shape[d];
        if (bad) {
            if (errors++ < 5) fprintf(stderr, "  %s #%d: spec '%s' (ndim %d) vs golden '%s'\n", config, i - 1, s->name, s->ndim, name);
            continue;
        }
        char fnv[32];
        snprintf(fnv, sizeof fnv, "0x%016llx", (unsigned long long)spec_fnv1a64(s->name));
        if (strcmp(fnv, cJSON_GetObjectItemCaseSensitive(t, "fnv1a64")->valuestring) != 0 && errors++ < 5)
            fprintf(stderr, "  %s: fnv %s\n", s->name, fnv);
        if (s->numel > v_cap) {
            free(v);
            v_cap = s->numel;
            v = malloc((size_t)v_cap * sizeof *v);
        }
        synth_fill(s->name, s->ndim, s->shape, v);
        cJSON *first4 = cJSON_GetObjectItemCaseSensitive(t, "first4");
        for (int k = 0; k < 4 && k < s->numel; k++) {
            double want = cJSON_GetArrayItem(first4, k)->valuedouble;
            if ((double)v[k] != want && errors++ < 5)
                fprintf(stderr, "  %s[%d] = %.17g, want %.17g\n", s->name, k, (double)v[k], want);
        }
        double sum = 0, sum_abs = 0;
        for (int64_t k = 0; k < s->numel; k++) { sum += v[k]; sum_abs += fabs(v[k]); }
        double want = cJSON_GetObjectItemCaseSensitive(t, "sum")->valuedouble;
        /* relative to the sum; the absolute floor covers sums that cancel to near 0 */
        if (fabs(sum - want) > 1e-6 * fabs(want) + 1e-12 * sum_abs && errors++ < 5)
            fprintf(stderr, "  %s: sum %.17g, want %.17g\n", s->name, sum, want);
        total += s->numel;
    }
    CHECKF(errors == 0, "%s: %d mismatches against %s", config, errors, path);
    CHECKF(total == (int64_t)cJSON_GetObjectItemCaseSensitive(root, "num_params")->valuedouble,
           "%s: %lld values", config, (long long)total);
    free(v);
    spec_free(e);
    cJSON_Delete(root);
}

static void test_state_dict_micro(void) { check_state_dict("micro"); }
static void test_state_dict_tiny(void) { check_state_dict("tiny"); }

/* ---- the larger sizes ------------------------------------------------------------- */

static const spec_entry *find_entry(const spec_entry *e, int n, const char *name) {
    for (int i = 0; i < n; i++) if (strcmp(e[i].name, name) == 0) return &e[i];
    return NULL;
}

static void test_spec_sizes(void) {
    /* Parameter counts in millions as the official SAM2.1 README lists them (38.9, 46,
     * 80.8, 224.4: truncated to one decimal), block counts sum(stages) from the YAMLs,
     * last-stage width embed_dim * 8. */
    static const struct {
        const char *name;
        int tenths_of_millions, blocks, last_dim, embed, bkg, win0;
        int64_t channel_list[4];
    } rows[] = {
        {"tiny", 389, 12, 768, 96, 7, 8, {768, 384, 192, 96}},
        {"small", 460, 16, 768, 96, 7, 8, {768, 384, 192, 96}},
        {"base_plus", 808, 24, 896, 112, 14, 8, {896, 448, 224, 112}},
        {"large", 2244, 48, 1152, 144, 7, 8, {1152, 576, 288, 144}},
    };
    char err[SAMC_ERRMSG], name[SPEC_NAME_MAX];
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const sam2_config *c = sam2_config_get(rows[r].name);
        CHECKF(c != NULL, "%s", rows[r].name);
        if (!c) continue;
        spec_entry *e;
        int n;
        CHECKF(sam2_config_spec(c, &e, &n, err) == 0, "%s", err);
        int64_t total = 0;
        int max_block = -1, n_proj = 0;
        for (int i = 0; i < n; i++) {
            total += e[i].numel;
            int b;
            char rest[SPEC_NAME_MAX];
            if (sscanf(e[i].name, "image_encoder.trunk.blocks.%d.%127s", &b, rest) == 2) {
                if (b > max_block) max_block = b;
                if (strcmp(rest, "proj.weight") == 0) n_proj++;
            }
        }
        CHECKF(total / 100000 == rows[r].tenths_of_millions, "%s: %lld parameters", c->name, (long long)total);
        CHECKF(max_block + 1 == rows[r].blocks && sam2_config_trunk_depth(c) == rows[r].blocks, "%s: %d blocks",
               c->name, max_block + 1);
        CHECKF(n_proj == 3, "%s: %d width changes", c->name, n_proj);
        snprintf(name, sizeof name, "image_encoder.trunk.blocks.%d.norm2.weight", rows[r].blocks - 1);
        const spec_entry *t = find_entry(e, n, name);
        CHECKF(t && t->shape[0] == rows[r].last_dim, "%s: %s", c->name, name);
        t = find_entry(e, n, "image_encoder.trunk.pos_embed");
        CHECK(t && t->ndim == 4 && t->shape[1] == rows[r].embed && t->shape[2] == rows[r].bkg && t->shape[3] == rows[r].bkg);
        t = find_entry(e, n, "image_encoder.trunk.pos_embed_window");
        CHECK(t && t->shape[2] == rows[r].win0 && t->shape[3] == rows[r].win0);
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "image_encoder.neck.convs.%d.conv.weight", k);
            t = find_entry(e, n, name);
            CHECKF(t && t->shape[0] == 256 && t->shape[1] == rows[r].channel_list[k], "%s: %s", c->name, name);
        }
        /* The memory side is the same for all four official sizes. */
        t = find_entry(e, n, "memory_attention.layers.3.cross_attn_image.k_proj.weight");
        CHECK(t && t->shape[0] == 256 && t->shape[1] == 64);
        spec_free(e);
    }
    CHECK(sam2_config_get("nope") == NULL && sam2_config_get(NULL) == NULL);
    CHECK(sam2_config_count() == 5);
    for (int i = 0; i < sam2_config_count(); i++) CHECK(sam2_config_get(sam2_config_at(i)->name) == sam2_config_at(i));

    /* Micro trunk layout from README section 2: widths change in blocks 1, 2, 4;
     * block 3 is global; heads 1/2/4/8. */
    const sam2_config *m = sam2_config_get("micro");
    static const int stage_of[5] = {0, 1, 2, 2, 3};
    for (int b = 0; b < 5; b++) {
        CHECKF(sam2_config_block_stage(m, b) == stage_of[b], "micro block %d stage %d", b, sam2_config_block_stage(m, b));
        CHECK(sam2_config_block_is_global(m, b) == (b == 3));
    }
    CHECK(sam2_config_stage_dim(m, 3) == 128 && sam2_config_stage_heads(m, 3) == 8);
    const sam2_config *l = sam2_config_get("large");
    CHECK(sam2_config_block_stage(l, 1) == 0 && sam2_config_block_stage(l, 2) == 1 && sam2_config_block_stage(l, 8) == 2 &&
          sam2_config_block_stage(l, 44) == 3 && sam2_config_block_stage(l, 43) == 2);
    CHECK(sam2_config_block_is_global(l, 33) && !sam2_config_block_is_global(l, 34));
}

/* ---- samc_synth_write against the golden file ----------------------------------------- */

static void test_write_micro(void) {
    char golden[512];
    snprintf(golden, sizeof golden, "%s/micro/weights/micro.safetensors", test_golden_dir());
    struct stat sb;
    TEST_NEED_GOLDEN(stat(golden, &sb) == 0, golden);
    char dir[] = "/tmp/samc_test_synth_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/micro.safetensors", dir);
    char err[SAMC_ERRMSG];
    samc_error se = { 0 };
    CHECKF(samc_synth_write("micro", path, &se) == 0, "%s", se.msg);
    CHECK(samc_synth_write("huge", path, &se) == -1);
    CHECKF(strstr(se.msg, "huge"), "%s", se.msg);

    st_file a, b;
    int ra = st_open(golden, &a, err);
    CHECKF(ra == 0, "%s", err);
    int rb = st_open(path, &b, err);
    CHECKF(rb == 0, "%s", err);
    if (!ra && !rb) {
        CHECK(a.n_tensors == b.n_tensors);
        const unsigned char *da = a.n_tensors ? a.tensors[0].data : NULL, *db = b.n_tensors ? b.tensors[0].data : NULL;
        for (int i = 0; i < a.n_tensors && i < b.n_tensors; i++) {
            const st_tensor *x = &a.tensors[i], *y = &b.tensors[i];
            int same = strcmp(x->name, y->name) == 0 && x->dtype == y->dtype && x->ndim == y->ndim &&
                       x->nbytes == y->nbytes &&
                       (const unsigned char *)x->data - da == (const unsigned char *)y->data - db;
            for (int d = 0; same && d < x->ndim; d++) same = x->shape[d] == y->shape[d];
            CHECKF(same, "entry %d: '%s' vs '%s'", i, x->name, y->name);
            if (!same) break;
        }
        /* Data sections: from the first tensor to the end of the file. */
        size_t la = (size_t)((const unsigned char *)a.map + a.map_size - da);
        size_t lb = (size_t)((const unsigned char *)b.map + b.map_size - db);
        CHECKF(la == lb && la == 919370 * 4 && memcmp(da, db, la) == 0, "data sections differ (%zu vs %zu bytes)", la, lb);
        const char *want[][2] = {{"format", "pt"}, {"formula", "samc-synth-v1"}, {"config", "micro"}, {"image_size", "256"}};
        CHECK(b.n_meta == 4);
        for (int k = 0; k < 4; k++) {
            const char *got = st_meta_get(&b, want[k][0]);
            CHECKF(got && strcmp(got, want[k][1]) == 0, "metadata %s = %s", want[k][0], got ? got : "(absent)");
        }
    }
    if (!ra) st_close(&a);
    if (!rb) st_close(&b);
    unlink(path);
    rmdir(dir);
}

/* ---- config detection ------------------------------------------------------------- */

typedef struct {
    int n;
    const char **names;
    const int64_t **shapes;
    int *ndims;
    int64_t (*store)[SAMC_MAX_DIMS];
} tensor_list;

static tensor_list list_from_spec(const spec_entry *e, int n, int image_only) {
    tensor_list l = {0};
    l.names = malloc((size_t)n * sizeof *l.names);
    l.shapes = malloc((size_t)n * sizeof *l.shapes);
    l.ndims = malloc((size_t)n * sizeof *l.ndims);
    l.store = malloc((size_t)n * sizeof *l.store);
    for (int i = 0; i < n; i++) {
        if (image_only && !sam2_config_is_image_path(e[i].name)) continue;
        l.names[l.n] = e[i].name;
        memcpy(l.store[l.n], e[i].shape, sizeof l.store[l.n]);
        l.shapes[l.n] = l.store[l.n];
        l.ndims[l.n] = e[i].ndim;
        l.n++;
    }
    return l;
}

static void list_free(tensor_list *l) { free(l->names); free(l->shapes); free(l->ndims); free(l->store); }

static int detect(const tensor_list *l, sam2_match_mode mode, const sam2_config **c, char *err) {
    return sam2_config_detect(l->names, l->shapes, l->ndims, l->n, mode, c, err);
}

static void test_detect(void) {
    char err[SAMC_ERRMSG];
    for (int ci = 0; ci < sam2_config_count(); ci++) {
        const sam2_config *want = sam2_config_at(ci), *got = NULL;
        spec_entry *e;
        int n;
        CHECKF(sam2_config_spec(want, &e, &n, err) == 0, "%s", err);
        tensor_list l = list_from_spec(e, n, 0);
        /* Reverse the order: detection must not depend on it. */
        for (int i = 0; i < l.n / 2; i++) {
            int j = l.n - 1 - i;
            const char *tn = l.names[i]; l.names[i] = l.names[j]; l.names[j] = tn;
            const int64_t *ts = l.shapes[i]; l.shapes[i] = l.shapes[j]; l.shapes[j] = ts;
            int td = l.ndims[i]; l.ndims[i] = l.ndims[j]; l.ndims[j] = td;
        }
        CHECKF(detect(&l, SAM2_MATCH_FULL, &got, err) == 0 && got == want, "%s: %s", want->name, err);
        CHECKF(detect(&l, SAM2_MATCH_IMAGE_ONLY, &got, err) == 0 && got == want, "%s image-only: %s", want->name, err);

        /* One tensor removed (a memory-side one: fatal only in full mode). */
        int k = -1;
        for (int i = 0; i < l.n; i++) if (strcmp(l.names[i], "memory_attention.norm.bias") == 0) k = i;
        CHECK(k >= 0);
        tensor_list cut = l;
        cut.names = malloc((size_t)l.n * sizeof *cut.names);
        cut.shapes = malloc((size_t)l.n * sizeof *cut.shapes);
        cut.ndims = malloc((size_t)l.n * sizeof *cut.ndims);
        cut.n = 0;
        for (int i = 0; i < l.n; i++) {
            if (i == k) continue;
            cut.names[cut.n] = l.names[i]; cut.shapes[cut.n] = l.shapes[i]; cut.ndims[cut.n] = l.ndims[i];
            cut.n++;
        }
        CHECK(detect(&cut, SAM2_MATCH_FULL, &got, err) == -1 && got == NULL);
        CHECKF(strstr(err, "missing key 'memory_attention.norm.bias'") && strstr(err, want->name), "%s", err);
        CHECKF(detect(&cut, SAM2_MATCH_IMAGE_ONLY, &got, err) == 0 && got == want, "%s", err);
        free(cut.names); free(cut.shapes); free(cut.ndims);

        /* One shape changed. */
        for (int i = 0; i < l.n; i++) if (strcmp(l.names[i], "sam_mask_decoder.iou_token.weight") == 0) k = i;
        l.store[n - 1 - k][1] += 1; /* store is in spec order; l was reversed */
        CHECK(l.shapes[k][1] == want->d_model + 1);
        CHECK(detect(&l, SAM2_MATCH_FULL, &got, err) == -1);
        char expect[200];
        snprintf(expect, sizeof expect, "'sam_mask_decoder.iou_token.weight' has shape [1, %d], expected [1, %d]",
                 want->d_model + 1, want->d_model);
        CHECKF(strstr(err, expect) && strstr(err, want->name), "%s", err);
        CHECK(detect(&l, SAM2_MATCH_IMAGE_ONLY, &got, err) == -1);
        CHECKF(strstr(err, expect), "%s", err);
        l.store[n - 1 - k][1] -= 1;

        /* An extra key. */
        tensor_list extra = l;
        extra.names = malloc((size_t)(l.n + 1) * sizeof *extra.names);
        extra.shapes = malloc((size_t)(l.n + 1) * sizeof *extra.shapes);
        extra.ndims = malloc((size_t)(l.n + 1) * sizeof *extra.ndims);
        memcpy(extra.names, l.names, (size_t)l.n * sizeof *l.names);
        memcpy(extra.shapes, l.shapes, (size_t)l.n * sizeof *l.shapes);
        memcpy(extra.ndims, l.ndims, (size_t)l.n * sizeof *l.ndims);
        extra.names[l.n] = "image_encoder.trunk.extra";
        extra.shapes[l.n] = l.shapes[0];
        extra.ndims[l.n] = l.ndims[0];
        extra.n = l.n + 1;
        CHECK(detect(&extra, SAM2_MATCH_FULL, &got, err) == -1);
        CHECKF(strstr(err, "unexpected key 'image_encoder.trunk.extra'"), "%s", err);
        /* A duplicate key. */
        extra.names[l.n] = l.names[3];
        CHECK(detect(&extra, SAM2_MATCH_FULL, &got, err) == -1);
        CHECKF(strstr(err, "duplicate key") && strstr(err, l.names[3]), "%s", err);
        free(extra.names); free(extra.shapes); free(extra.ndims);
        list_free(&l);

        /* Image-only file: fails the full match, passes the image-only one. */
        l = list_from_spec(e, n, 1);
        CHECK(l.n < n);
        CHECK(detect(&l, SAM2_MATCH_FULL, &got, err) == -1);
        CHECKF(strstr(err, "missing key 'maskmem_tpos_enc'"), "%s", err);
        CHECKF(detect(&l, SAM2_MATCH_IMAGE_ONLY, &got, err) == 0 && got == want, "%s", err);
        /* ... but not with an image-path tensor gone. */
        for (int i = 0; i < l.n; i++)
            if (strcmp(l.names[i], "no_mem_embed") == 0) { l.names[i] = l.names[l.n - 1]; l.shapes[i] = l.shapes[l.n - 1]; l.ndims[i] = l.ndims[l.n - 1]; }
        l.n--;
        CHECK(detect(&l, SAM2_MATCH_IMAGE_ONLY, &got, err) == -1);
        CHECKF(strstr(err, "missing key 'no_mem_embed'") && strstr(err, "image-only"), "%s", err);
        list_free(&l);
        spec_free(e);
    }

    /* A SAM 1 style checkpoint and an unrelated file. */
    const char *sam1[] = {"image_encoder.pos_embed", "image_encoder.blocks.0.norm1.weight",
                          "prompt_encoder.no_mask_embed.weight", "mask_decoder.iou_token.weight"};
    int64_t sh[4][4] = {{1, 64, 64, 768}, {768}, {1, 256}, {1, 256}};
    const int64_t *shp[4] = {sh[0], sh[1], sh[2], sh[3]};
    int nd[4] = {4, 1, 2, 2};
    const sam2_config *got = NULL;
    CHECK(sam2_config_detect(sam1, shp, nd, 4, SAM2_MATCH_FULL, &got, err) == -1 && got == NULL);
    CHECKF(strstr(err, "SAM 1") && strstr(err, "unexpected key 'image_encoder.pos_embed'") && strstr(err, "missing key"),
           "%s", err);
    const char *rnd[] = {"weight"};
    CHECK(sam2_config_detect(rnd, shp, nd, 1, SAM2_MATCH_IMAGE_ONLY, &got, err) == -1);
    CHECKF(strstr(err, "unexpected key 'weight'") && !strstr(err, "SAM 1"), "%s", err);
    CHECK(sam2_config_detect(rnd, shp, nd, 0, SAM2_MATCH_FULL, &got, err) == -1);
    CHECKF(strstr(err, "no tensors"), "%s", err);
}

/* Detection straight from the golden file, as the loader will use it. */
static void test_detect_golden_file(void) {
    char golden[512];
    snprintf(golden, sizeof golden, "%s/micro/weights/micro.safetensors", test_golden_dir());
    struct stat sb;
    TEST_NEED_GOLDEN(stat(golden, &sb) == 0, golden);
    st_file f;
    char err[SAMC_ERRMSG];
    int rc = st_open(golden, &f, err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return;
    const char **names = malloc((size_t)f.n_tensors * sizeof *names);
    const int64_t **shapes = malloc((size_t)f.n_tensors * sizeof *shapes);
    int *ndims = malloc((size_t)f.n_tensors * sizeof *ndims);
    for (int i = 0; i < f.n_tensors; i++) {
        names[i] = f.tensors[i].name; shapes[i] = f.tensors[i].shape; ndims[i] = f.tensors[i].ndim;
    }
    const sam2_config *c = NULL;
    CHECKF(sam2_config_detect(names, shapes, ndims, f.n_tensors, SAM2_MATCH_FULL, &c, err) == 0, "%s", err);
    CHECK(c == sam2_config_get("micro"));
    free(names); free(shapes); free(ndims);
    st_close(&f);
}

TEST_MAIN(TEST_CASE(test_check_table), TEST_CASE(test_state_dict_micro), TEST_CASE(test_state_dict_tiny),
          TEST_CASE(test_spec_sizes), TEST_CASE(test_write_micro), TEST_CASE(test_detect),
          TEST_CASE(test_detect_golden_file))
