/* tests/test_sam3_convert.c: SAM3 weights (convert/sam3_convert.c, convert/hf_sam3_map.c,
 * convert/sam3_vocab.c, convert/hf_sam3_config.c, convert/hf_sam3_export.c).
 *
 * - vocabulary: the official .gz gives merges 1..48894 joined with '\n' (sha256, size,
 *   first and last line); its unpacked text too; wrong line count, changed merge, no
 *   header, malformed line, truncated gzip, missing file are refused by name;
 * - the transformers name table on the full-size listing (shared/golden/sam3/
 *   hf_transformers_sam3_state_dict.json, 1468 tensors): every HF name maps to a
 *   Sam3Image name with the shape of the official "sam3" spec (q/k/v joined, cls row
 *   added, text projection transposed), every stored official tensor but the 6 point
 *   projections is covered, and the inverse gives back exactly the 1468 names;
 * - micro.pt (official format, with 4 complex RoPE buffers) -> samc: the data section
 *   equals micro.safetensors byte for byte, the vocabulary is in the metadata; f16/bf16;
 *   the tracker side kept / dropped with image_only;
 * - micro.safetensors -> transformers layout (the inverse table): the same tensors, bit
 *   for bit, as transformers' own conversion script writes for micro.pt (digest checked
 *   by hand once, weights/README.md); -> back to samc: every tensor
 *   equals micro.safetensors bit for bit except the two things transformers does not
 *   keep: pos_embed's cls row (zeros; unused by the forward) and the 6 point projections
 *   (zeros; the file says point prompts are unsupported). Also as a Sam3VideoModel file
 *   (detector_model. prefix, tracker tensors, model_type sam3_video);
 * - bad input: truncated sam3.pt, incomplete / reshaped / foreign checkpoints, a SAM2.1
 *   checkpoint with a vocabulary or under the name sam3.pt, a SAM3 file under a SAM2.1
 *   name, complex or integer tensors in the wrong place, bad config.json files;
 * - samc_sam3_file_info_get (samc info). */
#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "convert/convert.h"
#include "convert/dtype.h"
#include "convert/hf_sam3_export.h"
#include "convert/hf_sam3_map.h"
#include "convert/sam3_vocab.h"
#include "loader/safetensors.h"
#include "loader/sha256.h"
#include "model/config/sam3_config.h"
#include "tests/pt_writer.h"
#include "tests/test.h"

#define MERGES_SHA256 "f61f2adf497e6f5357c347aeb4646fabe82f341e946de5bdec5d2858e41bef4a"
#define MERGES_BYTES 524604

/* Scratch files live in one mkdtemp folder, removed (files and sub-folders) at exit. */
static char scratch[64];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void remove_scratch(void) {
    if (scratch[0] && nftw(scratch, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0) fprintf(stderr, "left %s\n", scratch);
}

/* scratch/name; the result stays valid for the next 7 calls. */
static const char *tmp_path(const char *name) {
    static char ring[8][512];
    static unsigned next;
    if (!scratch[0]) {
        strcpy(scratch, "/tmp/samc_sam3_convert.XXXXXX");
        if (!mkdtemp(scratch)) {
            perror(scratch);
            exit(2);
        }
        atexit(remove_scratch);
    }
    char *p = ring[next++ % 8];
    snprintf(p, 512, "%s/%s", scratch, name);
    return p;
}

static const char *golden3(const char *file) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/sam3/%s", test_golden_dir(), file);
    return buf[k];
}

#define MICRO_PT golden3("micro/weights/micro.pt")
#define MICRO_ST golden3("micro/weights/micro.safetensors")
#define VOCAB_GZ golden3("assets/bpe_simple_vocab_16e6.txt.gz")
#define HF_LIST golden3("hf_transformers_sam3_state_dict.json")

static int readable(const char *p) { return access(p, R_OK) == 0; }
static int have_micro(void) { return readable(MICRO_PT) && readable(MICRO_ST) && readable(VOCAB_GZ); }

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)sz + 1);
    *n = p ? fread(p, 1, (size_t)sz, f) : 0;
    if (p) p[*n] = 0;
    fclose(f);
    return p;
}

/* ---- vocabulary ---------------------------------------------------------------------- */

static void test_vocab_official(void) {
    TEST_NEED_GOLDEN(readable(VOCAB_GZ), VOCAB_GZ);
    char *m = NULL, sha[65];
    size_t n = 0;
    samc_error e = { 0 };
    CHECKF(sam3_vocab_read(VOCAB_GZ, &m, &n, &e) == 0, "%s", e.msg);
    if (!m) return;
    sha256_hex(m, n, sha);
    CHECKF(n == MERGES_BYTES && !strcmp(sha, MERGES_SHA256) && strlen(m) == n, "%zu bytes, sha256 %s", n, sha);
    CHECK(sam3_vocab_check(m, n, sha) == 1);
    CHECK(!strncmp(m, "i n\nt h\n", 8) && m[n - 1] != '\n');
    size_t lines = 1;
    for (size_t i = 0; i < n; i++) lines += m[i] == '\n';
    CHECK(lines == SAM3_VOCAB_MERGES);
    /* the unpacked text, with everything after the used merges, is the same vocabulary */
    char *txt = malloc(n + 64);
    int k = snprintf(txt, 64, "\"bpe_simple_vocab_16e6.txt#version: 0.2\n");
    memcpy(txt + k, m, n);
    memcpy(txt + k + n, "\nx y\n", 5);
    CHECK(write_bytes(tmp_path("vocab.txt"), txt, k + n + 5) == 0);
    char *m2 = NULL;
    size_t n2 = 0;
    CHECKF(sam3_vocab_read(tmp_path("vocab.txt"), &m2, &n2, &e) == 0 && n2 == n && !memcmp(m, m2, n), "%s", e.msg);
    m[0] = 'j';
    CHECK(sam3_vocab_check(m, n, sha) == 0);
    free(m2);
    free(txt);
    free(m);
}

/* Writes `text` gzipped to path. */
static int write_gz(const char *path, const char *text, size_t n) {
    gzFile g = gzopen(path, "wb");
    if (!g) return -1;
    int ok = gzwrite(g, text, (unsigned)n) == (int)n;
    return gzclose(g) == Z_OK && ok ? 0 : -1;
}

static void vocab_refused(const char *path, const char *want) {
    char *m = NULL;
    size_t n = 0;
    samc_error e = { 0 };
    int rc = sam3_vocab_read(path, &m, &n, &e);
    CHECKF(rc == -1 && !m && strstr(e.msg, path) && strstr(e.msg, want), "%s: %s (want '%s')", path, e.msg, want);
    free(m);
}

static void test_vocab_bad(void) {
    TEST_NEED_GOLDEN(readable(VOCAB_GZ), VOCAB_GZ);
    char *m = NULL;
    size_t n = 0;
    samc_error e = { 0 };
    if (sam3_vocab_read(VOCAB_GZ, &m, &n, &e)) { CHECKF(0, "%s", e.msg); return; }
    size_t cap = n + 256;
    char *t = malloc(cap);
    /* 1000 merge lines only: the wrong line count, gzipped and plain */
    int k = snprintf(t, cap, "#version: 0.2\n");
    size_t cut = 0;
    for (int lines = 0; lines < 1000; cut++) lines += m[cut] == '\n';
    memcpy(t + k, m, cut);
    CHECK(write_gz(tmp_path("short.txt.gz"), t, k + cut) == 0 && write_bytes(tmp_path("short.txt"), t, k + cut) == 0);
    vocab_refused(tmp_path("short.txt.gz"), "1000 merge lines after the header");
    vocab_refused(tmp_path("short.txt"), "1000 merge lines");
    /* the right count, one merge changed: not the official vocabulary */
    memcpy(t + k, m, n);
    t[k] = 'q';
    CHECK(write_gz(tmp_path("changed.gz"), t, k + n) == 0);
    vocab_refused(tmp_path("changed.gz"), "not the official CLIP BPE vocabulary");
    /* a malformed merge line */
    t[k] = 'i';
    t[k + 1] = '_';
    CHECK(write_bytes(tmp_path("malformed.txt"), t, k + n) == 0);
    vocab_refused(tmp_path("malformed.txt"), "line 2 is not a merge");
    /* no header (the metadata text itself is not a vocabulary file) */
    CHECK(write_bytes(tmp_path("noheader.txt"), m, n) == 0);
    vocab_refused(tmp_path("noheader.txt"), "'#version' header");
    /* a truncated download of the .gz */
    size_t gz_n = 0;
    char *gz = read_all(VOCAB_GZ, &gz_n);
    CHECK(gz && write_bytes(tmp_path("cut.txt.gz"), gz, gz_n / 2) == 0);
    vocab_refused(tmp_path("cut.txt.gz"), "truncated");
    vocab_refused(tmp_path("absent.txt.gz"), "cannot open");
    free(gz);
    free(t);
    free(m);
}

/* ---- the name table on the full-size transformers listing ---------------------------- */

typedef struct {
    char **names;
    int64_t (*shapes)[4];
    int *ndims;
    int n;
} name_list;

static int load_hf_list(name_list *l) {
    size_t len = 0;
    char *text = read_all(HF_LIST, &len);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    const cJSON *ts = cJSON_GetObjectItem(root, "tensors");
    l->n = cJSON_GetArraySize(ts);
    l->names = calloc((size_t)l->n + 1, sizeof *l->names);
    l->shapes = calloc((size_t)l->n + 1, sizeof *l->shapes);
    l->ndims = calloc((size_t)l->n + 1, sizeof *l->ndims);
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, ts) {
        const cJSON *shape = cJSON_GetObjectItem(t, "shape");
        l->names[i] = strdup(cJSON_GetObjectItem(t, "name")->valuestring);
        l->ndims[i] = cJSON_GetArraySize(shape);
        for (int d = 0; d < l->ndims[i] && d < 4; d++) l->shapes[i][d] = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
        i++;
    }
    cJSON_Delete(root);
    free(text);
    return l->n;
}

static void free_list(name_list *l) {
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->shapes);
    free(l->ndims);
}

static int find_name(const name_list *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], name)) return i;
    return -1;
}

/* The official shape an HF tensor implies. */
static void official_shape(hf_sam3_kind kind, const int64_t *hf, int nd, int64_t *out) {
    memcpy(out, hf, (size_t)nd * sizeof *out);
    if (kind == HF_SAM3_QKV) out[0] *= 3;
    if (kind == HF_SAM3_POS_CLS) out[1] += 1;
    if (kind == HF_SAM3_TRANSPOSE) { out[0] = hf[1]; out[1] = hf[0]; }
}

/* HF -> official: every name maps, to a spec entry of that shape; q/k/v come in threes. */
static void check_hf_to_official(const name_list *hf, const spec_entry *spec, int n_spec, int *hits) {
    int unmapped = 0, wrong = 0;
    for (int i = 0; i < hf->n; i++) {
        char off[HF_SAM3_NAME_MAX];
        hf_sam3_kind kind;
        int part, k = -1;
        if (hf_sam3_to_official(hf->names[i], off, sizeof off, &kind, &part) != 0) {
            if (!unmapped++) fprintf(stderr, "  unmapped HF name %s\n", hf->names[i]);
            continue;
        }
        for (int s = 0; s < n_spec && k < 0; s++)
            if (!strcmp(spec[s].name, off)) k = s;
        int64_t want[4];
        official_shape(kind, hf->shapes[i], hf->ndims[i], want);
        int same = k >= 0 && spec[k].ndim == hf->ndims[i];
        for (int d = 0; same && d < spec[k].ndim; d++) same = spec[k].shape[d] == want[d];
        if (!same) {
            if (!wrong++) fprintf(stderr, "  %s -> %s: not in the spec or wrong shape\n", hf->names[i], off);
            continue;
        }
        hits[k] |= 1 << part;
    }
    CHECKF(unmapped == 0 && wrong == 0, "%d unmapped, %d wrong", unmapped, wrong);
}

static void test_map_full_size(void) {
    TEST_NEED_GOLDEN(readable(HF_LIST), HF_LIST);
    name_list hf = { 0 };
    CHECKF(load_hf_list(&hf) == 1468, "%d HF tensors", hf.n);
    spec_entry *spec;
    int n_spec;
    char err[SPEC_ERRMSG];
    if (sam3_config_spec(sam3_config_get("sam3"), &spec, &n_spec, err)) { CHECKF(0, "%s", err); free_list(&hf); return; }
    int *hits = calloc((size_t)n_spec, sizeof *hits);
    check_hf_to_official(&hf, spec, n_spec, hits);
    /* coverage and the inverse */
    int covered = 0, points = 0, rope = 0, bad = 0, inverse = 0;
    char *seen = calloc((size_t)hf.n, 1);
    for (int s = 0; s < n_spec; s++) {
        char names[3][HF_SAM3_NAME_MAX];
        hf_sam3_kind kind;
        hf_sam3_absent why;
        int n = hf_sam3_from_official(spec[s].name, names, &kind, &why);
        if (n == 0) {
            points += why == HF_SAM3_ABSENT_POINTS && strstr(spec[s].name, "geometry_encoder.points_");
            rope += why == HF_SAM3_ABSENT_COMPUTED && !sam3_config_is_stored(spec[s].name);
            bad += hits[s] != 0;
            continue;
        }
        covered += hits[s] == (n == 3 ? 7 : 1);
        for (int k = 0; k < n; k++) {
            int i = find_name(&hf, names[k]);
            if (i < 0 || seen[i]++) {
                if (!bad++) fprintf(stderr, "  inverse of %s: %s %s\n", spec[s].name, names[k], i < 0 ? "unknown" : "twice");
            } else {
                inverse++;
            }
        }
    }
    CHECKF(n_spec == 1134 && covered == 1096 && points == 6 && rope == 32 && bad == 0 && inverse == 1468,
           "spec %d covered %d points %d rope %d bad %d inverse %d", n_spec, covered, points, rope, bad, inverse);
    /* names that are no Sam3Model tensor are refused */
    char off[HF_SAM3_NAME_MAX];
    hf_sam3_kind kind;
    int part;
    CHECK(hf_sam3_to_official("detr_decoder.layers.0.self_attn.x_proj.weight", off, sizeof off, &kind, &part) == -1);
    CHECK(hf_sam3_to_official("vision_encoder.backbone.layers.0.attention.qkv.weight", off, sizeof off, &kind, &part) == -1);
    CHECK(hf_sam3_to_official("geometry_encoder.layers.1.self_attn.o_proj.weight", off, sizeof off, &kind, &part) == 0 &&
          !strcmp(off, "geometry_encoder.encode.1.self_attn.out_proj.weight"));
    free(seen);
    free(hits);
    spec_free(spec);
    free_list(&hf);
}

/* ---- conversions of the micro checkpoint -------------------------------------------- */

static int convert(const char *in, const char *out, const char *dtype, int image_only, const char *vocab,
                   samc_convert_report *rep, samc_error *e) {
    samc_convert_options o = { .dtype = dtype, .image_only = image_only, .vocab = vocab };
    return samc_convert_ex(in, out, &o, rep, e);
}

/* The data section (everything after the header) of a safetensors file. */
static const uint8_t *data_section(const st_file *f, size_t *n) {
    uint64_t hl;
    memcpy(&hl, f->map, 8);
    *n = f->map_size - 8 - (size_t)hl;
    return (const uint8_t *)f->map + 8 + hl;
}

static void test_official_pt(void) {
    TEST_NEED_GOLDEN(have_micro(), MICRO_PT);
    samc_convert_report r;
    samc_error e = { 0 };
    const char *out = tmp_path("micro_pt.safetensors");
    CHECKF(convert(MICRO_PT, out, "f32", 0, VOCAB_GZ, &r, &e) == 0, "%s", e.msg);
    CHECKF(!strcmp(r.family, "SAM3") && !strcmp(r.config, "sam3_micro") && !strcmp(r.layout, "pt") && r.n_written == 316 &&
           r.vocab_embedded && !r.points_zeroed && !r.n_video_kept && !r.n_video_dropped,
           "%s %s %s %d", r.family, r.config, r.layout, r.n_written);
    st_file got, ref;
    char err[SAMC_ERRMSG];
    if (st_open(out, &got, err) || st_open(MICRO_ST, &ref, err)) { CHECKF(0, "%s", err); return; }
    size_t n1, n2;
    const uint8_t *d1 = data_section(&got, &n1), *d2 = data_section(&ref, &n2);
    CHECKF(n1 == n2 && !memcmp(d1, d2, n1) && got.n_tensors == 316, "data sections differ (%zu vs %zu bytes)", n1, n2);
    for (int i = 0; i < got.n_tensors && i < ref.n_tensors; i++) CHECK(!strcmp(got.tensors[i].name, ref.tensors[i].name));
    const char *merges = st_meta_get(&got, SAM3_VOCAB_META_KEY);
    char sha[65] = "";
    if (merges) sha256_hex(merges, strlen(merges), sha);
    CHECKF(!strcmp(sha, MERGES_SHA256), "tokenizer.bpe_merges sha256 '%s'", sha);
    CHECK(!strcmp(st_meta_get(&got, "config"), "sam3_micro") && !strcmp(st_meta_get(&got, "image_size"), "252"));
    CHECK(!st_find(&got, "backbone.vision_backbone.trunk.blocks.0.attn.freqs_cis"));
    st_close(&got);
    /* no vocabulary: the same tensors, no tokenizer key */
    CHECKF(convert(MICRO_PT, out, NULL, 0, NULL, &r, &e) == 0 && !r.vocab_embedded, "%s", e.msg);
    if (st_open(out, &got, err) == 0) {
        CHECK(!st_meta_get(&got, SAM3_VOCAB_META_KEY) && got.n_tensors == 316);
        st_close(&got);
    }
    /* a vocabulary that is not the official one fails the conversion and writes nothing */
    unlink(out);
    CHECK(write_bytes(tmp_path("bad_vocab.txt"), "#version: 0.2\ni n\n", 18) == 0);
    CHECK(convert(MICRO_PT, out, NULL, 0, tmp_path("bad_vocab.txt"), &r, &e) == -1 && strstr(e.msg, "1 merge lines") &&
          !readable(out));
    st_close(&ref);
}

/* Every value of `got` is the f16 / bf16 rounding of `ref`. */
static void test_half(void) {
    TEST_NEED_GOLDEN(have_micro(), MICRO_PT);
    static const char *const dt[2] = { "f16", "bf16" };
    st_file ref;
    char err[SAMC_ERRMSG];
    if (st_open(MICRO_ST, &ref, err)) { CHECKF(0, "%s", err); return; }
    for (int k = 0; k < 2; k++) {
        samc_convert_report r;
        samc_error e = { 0 };
        const char *out = tmp_path(k ? "micro_bf16.safetensors" : "micro_f16.safetensors");
        CHECKF(convert(MICRO_PT, out, dt[k], 0, NULL, &r, &e) == 0, "%s", e.msg);
        st_file got;
        if (st_open(out, &got, err)) { CHECKF(0, "%s", err); continue; }
        int bad = 0;
        for (int i = 0; i < ref.n_tensors; i++) {
            const st_tensor *t = st_find(&got, ref.tensors[i].name);
            if (!t || t->dtype != (k ? ST_BF16 : ST_F16) || t->numel != ref.tensors[i].numel) { bad++; continue; }
            const float *f = ref.tensors[i].data;
            const uint16_t *h = t->data;
            for (int64_t j = 0; j < t->numel; j++) {
                /* f16: the compiler's conversion; bf16: convert/dtype.c, whose rounding
                 * tests/test_convert.c checks against an independent reference */
                _Float16 x = (_Float16)f[j];
                uint16_t want;
                if (k) want = convert_f32_to_bf16(f[j]);
                else memcpy(&want, &x, 2);
                bad += h[j] != want;
            }
        }
        CHECKF(bad == 0 && got.n_tensors == 316, "%s: %d wrong", dt[k], bad);
        st_close(&got);
    }
    st_close(&ref);
}

/* micro.safetensors' tensors under `prefix`, plus `extra` tensors, written to path. */
static int write_variant(const char *path, const char *prefix, const st_tensor *extra, int n_extra,
                         const char *drop, const char *reshape) {
    st_file ref;
    char err[SAMC_ERRMSG];
    if (st_open(MICRO_ST, &ref, err)) return -1;
    st_tensor *t = calloc((size_t)(ref.n_tensors + n_extra), sizeof *t);
    char (*names)[160] = calloc((size_t)ref.n_tensors, sizeof *names);
    int n = 0;
    for (int i = 0; i < ref.n_tensors; i++) {
        if (drop && !strcmp(ref.tensors[i].name, drop)) continue;
        t[n] = ref.tensors[i];
        snprintf(names[n], sizeof names[n], "%s%s", prefix, ref.tensors[i].name);
        t[n].name = names[n];
        if (reshape && !strcmp(ref.tensors[i].name, reshape)) {   /* a 2-D [a, b] stored as [b, a] */
            t[n].shape[0] = ref.tensors[i].shape[1];
            t[n].shape[1] = ref.tensors[i].shape[0];
        }
        n++;
    }
    for (int i = 0; i < n_extra; i++) t[n++] = extra[i];
    int rc = st_write(path, t, n, NULL, 0, err);
    free(names);
    free(t);
    st_close(&ref);
    return rc;
}

static void test_video_side(void) {
    TEST_NEED_GOLDEN(have_micro(), MICRO_ST);
    static float w[6] = { 1, 2, 3, 4, 5, 6 };
    st_tensor extra[2] = {
        { .name = "tracker.maskmem_tpos_enc", .dtype = ST_F32, .ndim = 2, .shape = { 2, 3 }, .numel = 6, .data = w, .nbytes = 24 },
        { .name = "detector.backbone.vision_backbone.sam2_convs.0.conv_1x1.bias", .dtype = ST_F32, .ndim = 1,
          .shape = { 6 }, .numel = 6, .data = w, .nbytes = 24 },
    };
    const char *in = tmp_path("official_layout.safetensors"), *out = tmp_path("video.safetensors");
    CHECK(write_variant(in, "detector.", extra, 2, NULL, NULL) == 0);
    samc_convert_report r;
    samc_error e = { 0 };
    CHECKF(convert(in, out, "bf16", 0, NULL, &r, &e) == 0 && r.n_video_kept == 2 && r.n_written == 318 &&
           !strcmp(r.first_unused, "detector.backbone.vision_backbone.sam2_convs.0.conv_1x1.bias"), "%s", e.msg);
    st_file f;
    char err[SAMC_ERRMSG];
    if (st_open(out, &f, err) == 0) {
        const st_tensor *t = st_find(&f, "tracker.maskmem_tpos_enc");
        CHECK(t && t->dtype == ST_BF16 && st_find(&f, "backbone.vision_backbone.trunk.pos_embed") &&
              !strcmp(st_meta_get(&f, "sam3.video_tensors"), "2"));
        st_close(&f);
    }
    /* the output converts again (samc layout with its video side) ... */
    CHECKF(convert(out, tmp_path("again.safetensors"), NULL, 0, NULL, &r, &e) == 0 && r.n_video_kept == 2, "%s", e.msg);
    /* ... and image_only drops the video side */
    CHECKF(convert(in, out, NULL, 1, NULL, &r, &e) == 0 && r.n_video_dropped == 2 && r.n_written == 316, "%s", e.msg);
}

/* ---- the transformers layout ---------------------------------------------------------- */

/* transformers' own conversion script (convert_sam3_to_hf.py, patched to read micro.pt's
 * "detector." keys and to build the micro Sam3Config; weights/README.md) wrote a
 * model.safetensors for micro.pt whose tensors have this digest: sha256 over the tensors
 * in name order of name, NUL, dtype, NUL, shape "a,b,c", NUL, data bytes. */
#define HF_SCRIPT_MICRO_DIGEST "ca479905f682e0215d4448414942562df932eff5963b74ae580de15e7ad1f63d"

static void tensors_digest(const st_file *f, char hex[65]) {
    st_tensor *t = malloc((size_t)f->n_tensors * sizeof *t + 1);
    memcpy(t, f->tensors, (size_t)f->n_tensors * sizeof *t);
    st_sort_by_name(t, f->n_tensors);
    sha256_ctx c;
    sha256_init(&c);
    for (int i = 0; i < f->n_tensors; i++) {
        char head[300];
        int k = snprintf(head, sizeof head, "%s%c%s%c", t[i].name, 0, st_dtype_name(t[i].dtype), 0);
        for (int d = 0; d < t[i].ndim; d++) k += snprintf(head + k, sizeof head - (size_t)k, d ? ",%lld" : "%lld", (long long)t[i].shape[d]);
        head[k++] = 0;
        sha256_update(&c, head, (size_t)k);
        sha256_update(&c, t[i].data, t[i].nbytes);
    }
    uint8_t d[32];
    sha256_final(&c, d);
    sha256_to_hex(d, hex);
    free(t);
}

/* Compares a converted file with micro.safetensors: *same counts the bit-identical
 * tensors; pos_embed must differ only in its cls row (zeros), the point projections
 * must be zeros. */
static void compare_with_micro(const char *path, int *same, int *pos_ok, int *points_zero) {
    st_file got, ref;
    char err[SAMC_ERRMSG];
    *same = *pos_ok = *points_zero = 0;
    if (st_open(path, &got, err) || st_open(MICRO_ST, &ref, err)) { CHECKF(0, "%s", err); return; }
    CHECK(got.n_tensors == ref.n_tensors);
    for (int i = 0; i < ref.n_tensors; i++) {
        const st_tensor *r = &ref.tensors[i], *g = st_find(&got, r->name);
        if (!g || g->dtype != r->dtype || g->ndim != r->ndim || g->nbytes != r->nbytes ||
            memcmp(g->shape, r->shape, sizeof g->shape)) {
            CHECKF(0, "tensor %s missing or of another dtype / shape", r->name);
            continue;
        }
        if (!memcmp(g->data, r->data, r->nbytes)) {
            (*same)++;
        } else if (!strcmp(r->name, "backbone.vision_backbone.trunk.pos_embed")) {
            size_t row = (size_t)r->shape[2] * 4;
            static const uint8_t zero[4096];
            *pos_ok = row <= sizeof zero && !memcmp(g->data, zero, row) &&
                      !memcmp((const uint8_t *)g->data + row, (const uint8_t *)r->data + row, r->nbytes - row);
        } else if (strstr(r->name, "geometry_encoder.points_")) {
            const float *f = g->data;
            int z = 1;
            for (int64_t j = 0; j < g->numel; j++) z &= f[j] == 0.0f;
            *points_zero += z;
        } else {
            CHECKF(0, "tensor %s differs", r->name);
        }
    }
    st_close(&got);
    st_close(&ref);
}

/* Exports micro.safetensors to the transformers layout in folder tmp/<dir_name>; the
 * folder's path goes to dir[512] (tmp_path's buffers are reused). */
static const char *export_micro(const char *dir_name, char dir[512]) {
    snprintf(dir, 512, "%s", tmp_path(dir_name));
    samc_error e = { 0 };
    mkdir(dir, 0755);
    CHECKF(hf_sam3_export(MICRO_ST, dir, &e) == 0, "%s", e.msg);
    return dir;
}

static void test_transformers_roundtrip(void) {
    TEST_NEED_GOLDEN(have_micro() && readable(HF_LIST), MICRO_ST);
    char dir[512];
    export_micro("hf_micro", dir);
    char model[600];
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    /* the exported names are Sam3Model names (all in the full-size listing) */
    name_list hf = { 0 };
    load_hf_list(&hf);
    st_file f;
    char err[SAMC_ERRMSG];
    int unknown = 0;
    if (st_open(model, &f, err) == 0) {
        for (int i = 0; i < f.n_tensors; i++) unknown += find_name(&hf, f.tensors[i].name) < 0;
        CHECKF(f.n_tensors == 394 && unknown == 0, "%d tensors, %d not in the transformers listing", f.n_tensors, unknown);
        char hex[65];
        tensors_digest(&f, hex);
        CHECKF(!strcmp(hex, HF_SCRIPT_MICRO_DIGEST), "exported tensors' digest %s, transformers' script gave %s", hex,
               HF_SCRIPT_MICRO_DIGEST);
        st_close(&f);
    }
    free_list(&hf);
    /* back, from the folder and from its model.safetensors */
    for (int k = 0; k < 2; k++) {
        samc_convert_report r;
        samc_error e = { 0 };
        const char *out = tmp_path("from_hf.safetensors");
        CHECKF(convert(k ? model : dir, out, NULL, 0, VOCAB_GZ, &r, &e) == 0, "%s", e.msg);
        CHECKF(!strcmp(r.layout, "transformers") && !strcmp(r.config, "sam3_micro") && r.points_zeroed &&
               r.vocab_embedded && r.n_written == 316, "%s %s %d", r.layout, r.config, r.n_written);
        int same, pos_ok, points_zero;
        compare_with_micro(out, &same, &pos_ok, &points_zero);
        CHECKF(same == 309 && pos_ok && points_zero == 6, "%d identical, pos_embed %d, %d zero point tensors", same,
               pos_ok, points_zero);
        if (st_open(out, &f, err) == 0) {
            const char *p = st_meta_get(&f, "sam3.point_prompts");
            CHECK(p && !strncmp(p, "unsupported", 11) && !strcmp(st_meta_get(&f, "format"), "transformers"));
            st_close(&f);
        }
    }
}

/* A Sam3VideoModel checkpoint: detector_model. prefix, tracker tensors, sam3_video config. */
static void test_transformers_video_layout(void) {
    TEST_NEED_GOLDEN(have_micro(), MICRO_ST);
    char dir[512], vdir[512];
    export_micro("hf_micro_v", dir);
    snprintf(vdir, sizeof vdir, "%s", tmp_path("hf_video"));
    mkdir(vdir, 0755);
    char path[600], vpath[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_file f;
    char err[SAMC_ERRMSG];
    if (st_open(path, &f, err)) { CHECKF(0, "%s", err); return; }
    st_tensor *t = calloc((size_t)f.n_tensors + 2, sizeof *t);
    char (*names)[200] = calloc((size_t)f.n_tensors, sizeof *names);
    for (int i = 0; i < f.n_tensors; i++) {
        t[i] = f.tensors[i];
        snprintf(names[i], sizeof names[i], "detector_model.%s", f.tensors[i].name);
        t[i].name = names[i];
    }
    t[f.n_tensors] = f.tensors[0];
    t[f.n_tensors].name = "tracker_model.mask_decoder.iou_token.weight";
    t[f.n_tensors + 1] = f.tensors[1];
    t[f.n_tensors + 1].name = "tracker_neck.fpn_layers.0.proj1.bias";
    snprintf(vpath, sizeof vpath, "%s/model.safetensors", vdir);
    CHECKF(st_write(vpath, t, f.n_tensors + 2, NULL, 0, err) == 0, "%s", err);
    /* config.json: {"model_type": "sam3_video", "detector_config": <the Sam3Config>} */
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n;
    char *text = read_all(path, &n);
    cJSON *det = text ? cJSON_Parse(text) : NULL, *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model_type", "sam3_video");
    cJSON_AddItemToObject(root, "detector_config", det);
    char *js = cJSON_Print(root);
    snprintf(path, sizeof path, "%s/config.json", vdir);
    CHECK(js && write_bytes(path, js, strlen(js)) == 0);
    samc_convert_report r;
    samc_error e = { 0 };
    const char *out = tmp_path("from_video.safetensors");
    CHECKF(convert(vdir, out, NULL, 0, NULL, &r, &e) == 0 && r.n_video_dropped == 2 && r.n_written == 316, "%s", e.msg);
    int same, pos_ok, points_zero;
    compare_with_micro(out, &same, &pos_ok, &points_zero);
    CHECK(same == 309 && pos_ok && points_zero == 6);
    free(js);
    cJSON_Delete(root);
    free(text);
    free(names);
    free(t);
    st_close(&f);
}

static void config_refused(const char *dir, const char *json, const char *want) {
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (json) CHECK(write_bytes(path, json, strlen(json)) == 0);
    else unlink(path);
    samc_error e = { 0 };
    int rc = convert(dir, tmp_path("bad_config.safetensors"), NULL, 0, NULL, NULL, &e);
    CHECKF(rc == -1 && strstr(e.msg, "config.json") && strstr(e.msg, want), "%s (want '%s')", e.msg, want);
}

/* config.json with one change: `key` (a dotted path) set to the JSON `value`, or removed. */
static char *config_with(const char *text, const char *key, const char *value) {
    cJSON *root = cJSON_Parse(text), *obj = root;
    char part[64];
    while (strchr(key, '.')) {
        size_t n = strcspn(key, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, key);
        obj = cJSON_GetObjectItem(obj, part);
        key += n + 1;
    }
    cJSON_DeleteItemFromObject(obj, key);
    if (value) cJSON_AddItemToObject(obj, key, cJSON_Parse(value));
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

static void test_bad_config_json(void) {
    TEST_NEED_GOLDEN(have_micro(), MICRO_ST);
    char dir[512];
    export_micro("hf_bad_config", dir);
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n;
    char *good = read_all(path, &n);
    if (!good) { CHECK(0); return; }
    static const struct { const char *key, *value, *want; } cases[] = {
        { "model_type", "\"sam2\"", "model_type is 'sam2', not a SAM3 model" },
        { "model_type", NULL, "model_type is missing" },
        { "vision_config.backbone_config.window_size", "12", "window_size is 12, but the tensors are SAM3 'sam3_micro', which has 6" },
        { "vision_config.backbone_config.window_size", NULL, "window_size is 24 (absent: transformers' default)" },
        { "detr_decoder_config.num_attention_heads", "8", "detr_decoder_config.num_attention_heads is 8" },
        { "vision_config.backbone_config.global_attn_indexes", "[0, 3]", "global_attn_indexes differs" },
        { "text_config.hidden_size", "\"64\"", "text_config.hidden_size is not an integer" },
        { "text_config.hidden_act", "\"quick_gelu\"", "text_config.hidden_act is 'quick_gelu'; SAM3 uses 'gelu'" },
        { "text_config.hidden_act", NULL, "'quick_gelu' (absent: transformers' default)" },
        { "detr_encoder_config.layer_norm_eps", "1e-5", "detr_encoder_config.layer_norm_eps is 1e-05; SAM3 uses 1e-06" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *js = config_with(good, cases[i].key, cases[i].value);
        config_refused(dir, js, cases[i].want);
        free(js);
    }
    config_refused(dir, "{\"model_type\": \"sam3\", ", "not a JSON object");
    config_refused(dir, "{\"model_type\": \"sam3_video\"}", "without a detector_config");
    config_refused(dir, NULL, "cannot open");
    /* the file restored converts again */
    CHECK(write_bytes(path, good, n) == 0);
    samc_error e = { 0 };
    CHECKF(convert(dir, tmp_path("restored.safetensors"), NULL, 0, NULL, NULL, &e) == 0, "%s", e.msg);
    free(good);
}

/* ---- bad checkpoints ------------------------------------------------------------------ */

static void refused(const char *in, const char *vocab, samc_status status, const char *want, const char *want2) {
    samc_error e = { 0 };
    const char *out = tmp_path("refused.safetensors");
    unlink(out);
    int rc = convert(in, out, NULL, 0, vocab, NULL, &e);
    CHECKF(rc == -1 && e.status == status && strstr(e.msg, want) && (!want2 || strstr(e.msg, want2)) && !readable(out),
           "%s: status %d: %s (want '%s')", in, e.status, e.msg, want);
}

static int copy_file(const char *from, const char *to, size_t max_bytes) {
    size_t n;
    char *p = read_all(from, &n);
    int rc = p ? write_bytes(to, p, n < max_bytes ? n : max_bytes) : -1;
    free(p);
    return rc;
}

static void test_bad_checkpoints(void) {
    TEST_NEED_GOLDEN(have_micro(), MICRO_PT);
    /* a truncated download of sam3.pt */
    const char *cut = tmp_path("sam3.pt");
    CHECK(copy_file(MICRO_PT, cut, 8000000) == 0);
    refused(cut, NULL, SAMC_ERR_FORMAT, cut, NULL);
    /* incomplete and reshaped state dicts (official names, in safetensors) */
    const char *in = tmp_path("variant.safetensors");
    CHECK(write_variant(in, "detector.", NULL, 0, "transformer.decoder.reference_points.weight", NULL) == 0);
    refused(in, NULL, SAMC_ERR_MODEL, "closest is 'sam3_micro'", "missing key 'transformer.decoder.reference_points.weight'");
    CHECK(write_variant(in, "detector.", NULL, 0, NULL, "transformer.decoder.reference_points.weight") == 0);
    refused(in, NULL, SAMC_ERR_MODEL, "'transformer.decoder.reference_points.weight' has shape [4, 20], expected [20, 4]", NULL);
    /* a stray key beside the detector ones, an integer tensor */
    static const int64_t ints[2] = { 1, 2 };
    st_tensor stray = { .name = "optimizer.step", .dtype = ST_F32, .ndim = 1, .shape = { 2 }, .numel = 2, .data = ints, .nbytes = 8 };
    CHECK(write_variant(in, "detector.", &stray, 1, NULL, NULL) == 0);
    refused(in, NULL, SAMC_ERR_MODEL, "unexpected key 'optimizer.step'", NULL);
    st_tensor integer = { .name = "detector.transformer.decoder.reference_points.weight", .dtype = ST_I64, .ndim = 1,
                          .shape = { 2 }, .numel = 2, .data = ints, .nbytes = 16 };
    CHECK(write_variant(in, "detector.", &integer, 1, "transformer.decoder.reference_points.weight", NULL) == 0);
    refused(in, NULL, SAMC_ERR_UNSUPPORTED, "has dtype I64", NULL);
    /* foreign checkpoints */
    static float w[4];
    st_tensor det = { .name = "detector.roi_heads.box_predictor.weight", .dtype = ST_F32, .ndim = 1, .shape = { 4 },
                      .numel = 4, .data = w, .nbytes = 16 };
    char err[SAMC_ERRMSG];
    CHECK(st_write(in, &det, 1, NULL, 0, err) == 0);
    refused(in, NULL, SAMC_ERR_MODEL, "holds no tensor of the SAM3 image model", "detector.roi_heads.box_predictor.weight");
    det.name = "fc.weight";
    CHECK(st_write(in, &det, 1, NULL, 0, err) == 0);
    refused(in, NULL, SAMC_ERR_MODEL, "not a SAM2.1 checkpoint (nor SAM3", "unexpected key 'fc.weight'");
    /* a transformers model.safetensors without its config.json */
    char dir[512];
    export_micro("hf_no_config", dir);
    char model[600], config[600];
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    snprintf(config, sizeof config, "%s/config.json", dir);
    unlink(config);
    refused(model, NULL, SAMC_ERR_IO, "config.json: cannot open", NULL);
}

/* SAM2.1 and SAM3 files confused with each other. */
static void test_wrong_family(void) {
    char sam2[1024];
    snprintf(sam2, sizeof sam2, "%s/micro/weights/micro.pt", test_golden_dir());
    TEST_NEED_GOLDEN(have_micro() && readable(sam2), sam2);
    /* a SAM2.1 checkpoint: with a vocabulary, and saved as sam3.pt */
    refused(sam2, VOCAB_GZ, SAMC_ERR_ARG, "holds a SAM2.1 'micro' model", "SAM3 models only");
    const char *as_sam3 = tmp_path("sam3.pt");
    CHECK(copy_file(sam2, as_sam3, (size_t)-1) == 0);
    refused(as_sam3, NULL, SAMC_ERR_MODEL, "holds a SAM2.1 'micro' model, not SAM3", NULL);
    /* SAMC_VOCAB-style vocabularies are ignored for SAM2.1 */
    samc_convert_options o = { .vocab = VOCAB_GZ, .vocab_if_sam3 = 1 };
    samc_convert_report r;
    samc_error e = { 0 };
    CHECKF(samc_convert_ex(sam2, tmp_path("sam2.safetensors"), &o, &r, &e) == 0 && !strcmp(r.family, "SAM2.1") &&
           !r.vocab_embedded, "%s", e.msg);
    /* a SAM3 checkpoint under an official SAM2.1 name */
    const char *as_sam2 = tmp_path("sam2.1_hiera_tiny.pt");
    CHECK(copy_file(MICRO_PT, as_sam2, (size_t)-1) == 0);
    refused(as_sam2, NULL, SAMC_ERR_MODEL, "holds a SAM3 checkpoint, but sam2.1_hiera_tiny.pt is the official SAM2.1", NULL);
}

/* A complex tensor that is no RoPE table is refused (the loader lists complex tensors
 * without loading them: tests/test_pt.c). */
static void test_complex_tensor(void) {
    static float data[8];
    pk_tensor_desc td[2] = { { "ComplexFloatStorage", "0", 4, 0, 2, { 2, 2 }, { 2, 1 }, 0, 0, 0 },
                             { "FloatStorage", "1", 4, 0, 1, { 4 }, { 1 }, 0, 0, 0 } };
    const char *names[2] = { "detector.transformer.decoder.query_embed.weight", "detector.x.bias" };
    pw_ckpt_opts o = { "archive", 1, 0, 0, { 1, 0, 0, 0, 0 } };
    pw_storage st[2] = { { "0", data, 32 }, { "1", data, 16 } };
    pw_buf pk = { 0 }, z = { 0 };
    pw_state_dict_pickle(&pk, &o, names, td, 2);
    pw_checkpoint_zip(&z, &o, &pk, st, 2);
    const char *in = tmp_path("complex.pt");
    CHECK(write_bytes(in, z.p, z.n) == 0);
    refused(in, NULL, SAMC_ERR_UNSUPPORTED, "'detector.transformer.decoder.query_embed.weight' is complex64", NULL);
    pw_free(&pk);
    pw_free(&z);
}

/* samc_sam3_file_info_get, what `samc info` prints. */
static void test_file_info(void) {
    TEST_NEED_GOLDEN(have_micro(), MICRO_PT);
    samc_sam3_file_info i;
    samc_error e = { 0 };
    CHECKF(samc_sam3_file_info_get(MICRO_PT, &i, &e) == 0 && i.is_sam3 && !strcmp(i.layout, "official") &&
           !strcmp(i.config, "sam3_micro") && i.n_image == 316 && i.n_params == 3813258 && i.vocab == 0 && i.points,
           "%s %s %s %d %lld", e.msg, i.layout, i.config, i.n_image, (long long)i.n_params);
    const char *out = tmp_path("info.safetensors");
    CHECKF(convert(MICRO_PT, out, NULL, 0, VOCAB_GZ, NULL, &e) == 0, "%s", e.msg);
    CHECK(samc_sam3_file_info_get(out, &i, &e) == 0 && !strcmp(i.layout, "samc") && i.vocab == 1 && i.image_size == 252);
    const char *in = tmp_path("incomplete_info.safetensors");
    CHECK(write_variant(in, "", NULL, 0, "transformer.decoder.reference_points.weight", NULL) == 0);
    CHECK(samc_sam3_file_info_get(in, &i, &e) == 0 && i.is_sam3 && !i.config[0] && strstr(i.detail, "missing key"));
    char sam2[1024];
    snprintf(sam2, sizeof sam2, "%s/micro/weights/micro.safetensors", test_golden_dir());
    CHECK(samc_sam3_file_info_get(sam2, &i, &e) == 0 && !i.is_sam3);
}

TEST_MAIN(TEST_CASE(test_vocab_official), TEST_CASE(test_vocab_bad), TEST_CASE(test_map_full_size),
          TEST_CASE(test_official_pt), TEST_CASE(test_half), TEST_CASE(test_video_side),
          TEST_CASE(test_transformers_roundtrip), TEST_CASE(test_transformers_video_layout),
          TEST_CASE(test_bad_config_json), TEST_CASE(test_bad_checkpoints), TEST_CASE(test_wrong_family),
          TEST_CASE(test_complex_tensor), TEST_CASE(test_file_info))
