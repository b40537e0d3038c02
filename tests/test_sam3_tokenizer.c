/* tests/test_sam3_tokenizer.c: the SAM3 tokenizer (model/sam3/tokenizer.h) against the
 * official one.
 *
 * 1. Every string of ../shared/golden/sam3/unit_tokenizer (43, from the official
 *    tokenizer_ve.SimpleTokenizer with ftfy 6.1.1): ctx-32 ids and pad mask against
 *    tensors.safetensors and the manifest, the untruncated ids, the cleaned text, the
 *    regex pieces, the BPE pieces and the decoded text against manifest.json. One
 *    verdict line per string.
 * 2. Cases beyond the golden (bad UTF-8, empty, whitespace or punctuation only, NUL,
 *    special-token text, final sigma, the ftfy and html.unescape rules covered), with
 *    ids and cleaned text taken from the official tokenizer.
 * 3. Loading: the merges text as the model metadata holds it, wrong line counts,
 *    malformed lines, missing or broken .gz files; very long input; context lengths.
 * Without the golden data (SAMC_GOLDEN, default ../shared/golden) every check fails:
 * the tokenizer has nothing to be compared with. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "loader/safetensors.h"
#include "model/sam3/tokenizer.h"
#include "tests/test.h"

#define N_GOLDEN 43
#define BIG_CONTEXT 4096

static sam3_tokenizer *tok;           /* from the official .gz */
static cJSON *manifest;
static st_file tensors;
static int have_tensors;
static char vocab_path[1024];
static int passed, failed;

static void verdict(const char *name) {
    if (test_failures_in_current) { failed++; printf("NOT OK test_sam3_tokenizer.%s\n", name); }
    else { passed++; printf("OK     test_sam3_tokenizer.%s\n", name); }
    fflush(stdout);
    test_failures_in_current = 0;
}


/* Loads the vocabulary, the manifest and the tensors; 0 or -1 with the reason printed. */
static int load_golden(void) {
    char path[1024], msg[SAMC_ERRMSG];
    samc_error err = { 0 };
    snprintf(vocab_path, sizeof vocab_path, "%s/sam3/assets/bpe_simple_vocab_16e6.txt.gz", test_golden_dir());
    tok = sam3_tokenizer_load_gz(vocab_path, &err);
    if (!tok) { fprintf(stderr, "  %s\n", err.msg); return -1; }
    snprintf(path, sizeof path, "%s/sam3/unit_tokenizer/manifest.json", test_golden_dir());
    char *txt = test_read_text(path);
    manifest = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    if (!manifest) { fprintf(stderr, "  %s: missing or not JSON\n", path); return -1; }
    snprintf(path, sizeof path, "%s/sam3/unit_tokenizer/tensors.safetensors", test_golden_dir());
    if (st_open(path, &tensors, msg) != 0) { fprintf(stderr, "  %s\n", msg); return -1; }
    have_tensors = 1;
    return 0;
}

static int json_ints(const cJSON *a, int32_t *out, int max) {
    int n = 0;
    for (const cJSON *x = a ? a->child : NULL; x && n < max; x = x->next) out[n++] = (int32_t)x->valueint;
    return a ? cJSON_GetArraySize(a) : -1;
}

static size_t hex_decode(const char *hex, char *out, size_t cap) {
    size_t n = 0;
    for (; hex[0] && hex[1] && n < cap; hex += 2) {
        unsigned v;
        if (sscanf(hex, "%2x", &v) != 1) break;
        out[n++] = (char)v;
    }
    return n;
}

/* The pieces of one golden string, compared as they come. */
typedef struct {
    const cJSON *regex_pieces, *bpe_pieces;
    int index, count;
} piece_check;

static int check_piece(void *vctx, const char *piece, size_t len, const int32_t *ids, int n_ids) {
    piece_check *c = vctx;
    const cJSON *want = cJSON_GetArrayItem(c->regex_pieces, c->count);
    const cJSON *want_bpe = cJSON_GetArrayItem(c->bpe_pieces, c->count);
    c->count++;
    const char *w = cJSON_GetStringValue(want);
    CHECKF(w && strlen(w) == len && memcmp(w, piece, len) == 0, "[%d] piece %d: got '%.*s', want '%s'",
           c->index, c->count - 1, (int)len, piece, w ? w : "(none)");
    CHECKF(cJSON_GetArraySize(want_bpe) == n_ids, "[%d] piece '%s': %d BPE tokens, want %d", c->index,
           w ? w : "", n_ids, cJSON_GetArraySize(want_bpe));
    for (int k = 0; k < n_ids && k < cJSON_GetArraySize(want_bpe); k++) {
        const char *wt = cJSON_GetStringValue(cJSON_GetArrayItem(want_bpe, k));
        const char *got = sam3_tokenizer_token(tok, ids[k]);
        CHECKF(wt && got && strcmp(wt, got) == 0, "[%d] piece '%s' token %d: got '%s', want '%s'", c->index,
               w ? w : "", k, got ? got : "(null)", wt ? wt : "(none)");
    }
    return 0;
}

/* Row i of an I32 [43, 32] golden tensor. */
static int tensor_row(const char *name, int i, int32_t *row) {
    const st_tensor *t = st_find(&tensors, name);
    if (!t || t->dtype != ST_I32 || t->ndim != 2 || t->shape[0] != N_GOLDEN || t->shape[1] != SAM3_CONTEXT_LENGTH)
        return -1;
    memcpy(row, (const int32_t *)t->data + (size_t)i * SAM3_CONTEXT_LENGTH, SAM3_CONTEXT_LENGTH * sizeof *row);
    return 0;
}

static void check_golden_string(int i, const cJSON *s) {
    char text[4096], cleaned[4 * 4096], decoded[4 * 4096];
    size_t len = hex_decode(cJSON_GetStringValue(cJSON_GetObjectItem(s, "text_utf8_hex")), text, sizeof text);
    int32_t ids[SAM3_CONTEXT_LENGTH], mask[SAM3_CONTEXT_LENGTH], want[SAM3_CONTEXT_LENGTH], want_mask[SAM3_CONTEXT_LENGTH];
    int32_t full[BIG_CONTEXT], want_full[BIG_CONTEXT];
    int n_tokens = 0, n_full = 0;
    unsigned flags = 0, flags_full = 0;
    samc_error err = { 0 };
    CHECKF(sam3_tokenize(tok, text, len, SAM3_CONTEXT_LENGTH, ids, &n_tokens, &flags, &err) == 0, "%s", err.msg);
    sam3_pad_mask(ids, SAM3_CONTEXT_LENGTH, mask);
    CHECKF(tensor_row("token_ids", i, want) == 0 && tensor_row("pad_mask", i, want_mask) == 0,
           "tensors.safetensors lacks token_ids / pad_mask as I32 [43, 32]");
    for (int k = 0; k < SAM3_CONTEXT_LENGTH; k++) {
        CHECKF(ids[k] == want[k], "[%d] token_ids[%d]: got %d, want %d", i, k, ids[k], want[k]);
        CHECKF(mask[k] == want_mask[k], "[%d] pad_mask[%d]: got %d, want %d", i, k, mask[k], want_mask[k]);
    }
    int32_t m_ids[SAM3_CONTEXT_LENGTH], m_mask[SAM3_CONTEXT_LENGTH];
    CHECK(json_ints(cJSON_GetObjectItem(s, "ids_ctx32"), m_ids, SAM3_CONTEXT_LENGTH) == SAM3_CONTEXT_LENGTH);
    CHECK(json_ints(cJSON_GetObjectItem(s, "model_pad_mask_ctx32"), m_mask, SAM3_CONTEXT_LENGTH) == SAM3_CONTEXT_LENGTH);
    CHECKF(memcmp(m_ids, ids, sizeof ids) == 0 && memcmp(m_mask, mask, sizeof mask) == 0,
           "[%d] ids / pad mask differ from the manifest's ids_ctx32 / model_pad_mask_ctx32", i);

    int n_want = json_ints(cJSON_GetObjectItem(s, "ids_untruncated"), want_full, BIG_CONTEXT);
    CHECK(sam3_tokenize(tok, text, len, BIG_CONTEXT, full, &n_full, &flags_full, &err) == 0);
    CHECKF(n_full == n_want && n_tokens == n_want, "[%d] %d tokens untruncated, want %d", i, n_full, n_want);
    for (int k = 0; k < n_full && k < n_want; k++)
        CHECKF(full[k] == want_full[k], "[%d] ids_untruncated[%d]: got %d, want %d", i, k, full[k], want_full[k]);
    CHECKF(((flags & SAM3_TOK_TRUNCATED) != 0) == (n_want > SAM3_CONTEXT_LENGTH) && !(flags_full & SAM3_TOK_TRUNCATED),
           "[%d] truncated flag %u with %d tokens", i, flags, n_want);
    CHECKF(!(flags & (SAM3_TOK_INPUT_CUT | SAM3_TOK_BAD_UTF8)), "[%d] flags %u on valid short input", i, flags);

    const char *want_clean = cJSON_GetStringValue(cJSON_GetObjectItem(s, "cleaned"));
    CHECK(sam3_tokenizer_clean(tok, text, len, cleaned, sizeof cleaned, NULL, &err) == 0);
    CHECKF(want_clean && strcmp(cleaned, want_clean) == 0, "[%d] cleaned '%s', want '%s'", i, cleaned,
           want_clean ? want_clean : "(none)");

    piece_check pc = { cJSON_GetObjectItem(s, "regex_pieces"), cJSON_GetObjectItem(s, "bpe_pieces"), i, 0 };
    CHECK(sam3_tokenize_pieces(tok, text, len, check_piece, &pc, NULL, &err) == 0);
    CHECKF(pc.count == cJSON_GetArraySize(pc.regex_pieces), "[%d] %d pieces, want %d", i, pc.count,
           cJSON_GetArraySize(pc.regex_pieces));

    const char *want_dec = cJSON_GetStringValue(cJSON_GetObjectItem(s, "decoded"));
    int inner = n_want >= 2 ? n_want - 2 : 0;
    CHECK(sam3_tokenizer_decode(tok, want_full + 1, inner, decoded, sizeof decoded, &err) == 0);
    CHECKF(want_dec && strcmp(decoded, want_dec) == 0, "[%d] decoded '%s', want '%s'", i, decoded,
           want_dec ? want_dec : "(none)");
}

static void test_golden_strings(void) {
    const cJSON *list = cJSON_GetObjectItem(manifest, "strings");
    CHECKF(cJSON_GetArraySize(list) == N_GOLDEN, "manifest has %d strings, want %d", cJSON_GetArraySize(list), N_GOLDEN);
    const cJSON *vs = cJSON_GetObjectItem(manifest, "vocab_size");
    CHECKF(vs && vs->valueint == SAM3_VOCAB_SIZE, "manifest vocab_size is not %d", SAM3_VOCAB_SIZE);
    verdict("golden.manifest");
    int i = 0;
    for (const cJSON *s = list ? list->child : NULL; s; s = s->next, i++) {
        check_golden_string(i, s);
        char name[160];
        snprintf(name, sizeof name, "golden[%02d] %.60s", i, cJSON_GetStringValue(cJSON_GetObjectItem(s, "why")));
        verdict(name);
    }
}

/* ---- beyond the golden: expected values from the official tokenizer (ftfy 6.1.1) ---- */

#define S(lit) lit, sizeof(lit) - 1
typedef struct {
    const char *in;
    size_t in_len;
    const char *cleaned;
    int32_t ids[16];
} known_case;

static const known_case known[] = {
    /* 'a\ufffdb' -> 'a\ufffdb' */
    {S("\x61\xff\x62"), "\x61\xef\xbf\xbd\x62", {49406, 320, 39802, 321, 49407}},
    /* '\ufffd' -> '\ufffd' */
    {S("\xe2\x82"), "\xef\xbf\xbd", {49406, 39802, 49407}},
    /* '\ufffd\ufffd\ufffdx' -> '\ufffd\ufffd\ufffdx' */
    {S("\xed\xa0\x80\x78"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\x78", {49406, 47356, 47356, 39802, 343, 49407}},
    /* '\ufffd\ufffd\ufffd' -> '\ufffd\ufffd\ufffd' */
    {S("\xf0\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", {49406, 47356, 47356, 39802, 49407}},
    /* 'caf\ufffd' -> 'caf\ufffd' */
    {S("\x63\x61\x66\xc3"), "\x63\x61\x66\xef\xbf\xbd", {49406, 20867, 39802, 49407}},
    /* '   \t\n ' -> '' */
    {S("\x20\x20\x20\x09\x0a\x20"), "", {49406, 49407}},
    /* '!!!' -> '!!!' */
    {S("\x21\x21\x21"), "\x21\x21\x21", {49406, 995, 49407}},
    /* '...' -> '...' */
    {S("\x2e\x2e\x2e"), "\x2e\x2e\x2e", {49406, 678, 49407}},
    /* 'a\x00b' -> 'ab' */
    {S("\x61\x00\x62"), "\x61\x62", {49406, 3937, 49407}},
    /* '<end_of_text>' -> '<end_of_text>' */
    {S("\x3c\x65\x6e\x64\x5f\x6f\x66\x5f\x74\x65\x78\x74\x3e"), "\x3c\x65\x6e\x64\x5f\x6f\x66\x5f\x74\x65\x78\x74\x3e", {49406, 49407, 49407}},
    /* '<\u017ftart_of_text>' -> '<\u017ftart_of_text>' */
    {S("\x3c\xc5\xbf\x74\x61\x72\x74\x5f\x6f\x66\x5f\x74\x65\x78\x74\x3e"), "\x3c\xc5\xbf\x74\x61\x72\x74\x5f\x6f\x66\x5f\x74\x65\x78\x74\x3e", {49406, 27, 129, 123, 16707, 62, 684, 62, 18169, 285, 49407}},
    /* '\u039f\u0394\u039f\u03a3 \u0391\u03a3' -> '\u03bf\u03b4\u03bf\u03c2 \u03b1\u03c2' */
    {S("\xce\x9f\xce\x94\xce\x9f\xce\xa3\x20\xce\x91\xce\xa3"), "\xce\xbf\xce\xb4\xce\xbf\xcf\x82\x20\xce\xb1\xcf\x82", {49406, 138, 123, 138, 112, 138, 123, 139, 480, 138, 109, 139, 480, 49407}},
    /* 'don\xe2\u20ac\u2122t' -> "don't" */
    {S("\x64\x6f\x6e\xc3\xa2\xe2\x82\xac\xe2\x84\xa2\x74"), "\x64\x6f\x6e\x27\x74", {49406, 847, 713, 49407}},
    /* '&EACUTE;cole' -> '\xe9cole' */
    {S("\x26\x45\x41\x43\x55\x54\x45\x3b\x63\x6f\x6c\x65"), "\xc3\xa9\x63\x6f\x6c\x65", {49406, 3459, 8166, 49407}},
    /* '\ufb03' -> 'ffi' */
    {S("\xef\xac\x83"), "\x66\x66\x69", {49406, 1021, 328, 49407}},
    /* '\uff76' -> '\u30ab' */
    {S("\xef\xbd\xb6"), "\xe3\x82\xab", {49406, 3909, 360, 49407}},
    /* 'a\x1b[31mred\x1b[0m' -> 'ared' */
    {S("\x61\x1b\x5b\x33\x31\x6d\x72\x65\x64\x1b\x5b\x30\x6d"), "\x61\x72\x65\x64", {49406, 5369, 49407}},
    /* '&notin; &notit; &amp &#x41;&#0;&#128;' -> '\u2209 \xacit; & a\ufffd\u20ac' */
    {S("\x26\x6e\x6f\x74\x69\x6e\x3b\x20\x26\x6e\x6f\x74\x69\x74\x3b\x20\x26\x61\x6d\x70\x20\x26\x23\x78\x34\x31\x3b\x26\x23\x30\x3b\x26\x23\x31\x32\x38\x3b"), "\xe2\x88\x89\x20\xc2\xac\x69\x74\x3b\x20\x26\x20\x61\xef\xbf\xbd\xe2\x82\xac", {49406, 17788, 487, 126, 361, 585, 282, 261, 320, 47356, 6309, 49407}},
    /* 'a\x85b' -> 'a\u2026b' */
    {S("\x61\xc2\x85\x62"), "\x61\xe2\x80\xa6\x62", {49406, 320, 959, 321, 49407}},
    /* '&amp;amp;amp;amp;' -> '&' */
    {S("\x26\x61\x6d\x70\x3b\x61\x6d\x70\x3b\x61\x6d\x70\x3b\x61\x6d\x70\x3b"), "\x26", {49406, 261, 49407}},
    /* '<&amp;amp;amp;' -> '<&amp;' */
    {S("\x3c\x26\x61\x6d\x70\x3b\x61\x6d\x70\x3b\x61\x6d\x70\x3b"), "\x3c\x26\x61\x6d\x70\x3b", {49406, 27, 261, 6259, 282, 49407}},
    /* 'x\u0345y' -> 'x\u0345y' */
    {S("\x78\xcd\x85\x79"), "\x78\xcd\x85\x79", {49406, 343, 344, 49407}},
    /* "it'\u017f" -> "it'\u017f" */
    {S("\x69\x74\x27\xc5\xbf"), "\x69\x74\x27\xc5\xbf", {49406, 585, 6, 129, 379, 49407}},
    /* '\u01c5' -> 'd\u017e' */
    {S("\xc7\x85"), "\x64\xc5\xbe", {49406, 67, 129, 378, 49407}},
    /* '\xf0\u0178\u02dc\u20ac' -> '\U0001f600' */
    {S("\xc3\xb0\xc5\xb8\xcb\x9c\xe2\x82\xac"), "\xf0\x9f\x98\x80", {49406, 7334, 49407}},
    /* '\xe2\u201a\xac5' -> '\u20ac5' */
    {S("\xc3\xa2\xe2\x80\x9a\xc2\xac\x35"), "\xe2\x82\xac\x35", {49406, 6309, 276, 49407}},
    /* '\u201cquoted\u201d' -> '"quoted"' */
    {S("\xe2\x80\x9c\x71\x75\x6f\x74\x65\x64\xe2\x80\x9d"), "\x22\x71\x75\x6f\x74\x65\x64\x22", {49406, 257, 27706, 257, 49407}},
};

static void test_known_cases(void) {
    for (size_t c = 0; c < sizeof known / sizeof known[0]; c++) {
        const known_case *k = &known[c];
        char cleaned[1024];
        int32_t ids[64];
        int n = 0, n_want = 0;
        unsigned flags = 0;
        samc_error err = { 0 };
        while (n_want < 16 && k->ids[n_want]) n_want++;
        CHECK(sam3_tokenizer_clean(tok, k->in, k->in_len, cleaned, sizeof cleaned, NULL, &err) == 0);
        CHECKF(strcmp(cleaned, k->cleaned) == 0, "case %zu: cleaned '%s', want '%s'", c, cleaned, k->cleaned);
        CHECK(sam3_tokenize(tok, k->in, k->in_len, 64, ids, &n, &flags, &err) == 0);
        CHECKF(n == n_want, "case %zu ('%s'): %d tokens, want %d", c, k->cleaned, n, n_want);
        for (int i = 0; i < n && i < n_want; i++)
            CHECKF(ids[i] == k->ids[i], "case %zu ('%s'): id %d is %d, want %d", c, k->cleaned, i, ids[i], k->ids[i]);
        int bad = strstr(k->cleaned, "\xef\xbf\xbd") && !strstr(k->in, "&#0;");
        CHECKF(((flags & SAM3_TOK_BAD_UTF8) != 0) == bad, "case %zu: invalid-UTF-8 flag %u", c, flags);
    }
    verdict("known_cases (bad UTF-8, empty, punctuation, NUL, specials, sigma, ftfy and HTML rules)");
}

/* The tokenizer from the merges text as a model file's metadata holds it: lines 1..48894
 * of the official file joined with '\n'. Returns the text (malloc'd) or NULL. */
static char *merges_text(size_t *len) {
    gzFile f = gzopen(vocab_path, "rb");
    size_t cap = 8u << 20, n = 0;
    char *buf = f ? malloc(cap) : NULL;
    int got;
    while (buf && (got = gzread(f, buf + n, (unsigned)(cap - n))) > 0) n += (size_t)got;
    if (f) gzclose(f);
    if (!buf) return NULL;
    char *start = memchr(buf, '\n', n), *end = start;
    for (int line = 0; end && line < SAM3_N_MERGES; line++) end = memchr(end + 1, '\n', (size_t)(buf + n - end - 1));
    if (!start || !end) { free(buf); return NULL; }
    *len = (size_t)(end - start - 1);
    memmove(buf, start + 1, *len);
    return buf;
}

static void test_load_from_merges_text(void) {
    size_t len = 0;
    samc_error err = { 0 };
    char *text = merges_text(&len);
    CHECKF(text != NULL, "cannot read %s", vocab_path);
    if (!text) { verdict("load_merges_text"); return; }
    sam3_tokenizer *t = sam3_tokenizer_load_merges(text, len, &err);
    CHECKF(t != NULL, "%s", err.msg);
    const cJSON *list = cJSON_GetObjectItem(manifest, "strings");
    for (const cJSON *s = list ? list->child : NULL; s && t; s = s->next) {
        char in[4096];
        size_t n = hex_decode(cJSON_GetStringValue(cJSON_GetObjectItem(s, "text_utf8_hex")), in, sizeof in);
        int32_t a[SAM3_CONTEXT_LENGTH], b[SAM3_CONTEXT_LENGTH];
        CHECK(sam3_tokenize(t, in, n, SAM3_CONTEXT_LENGTH, a, NULL, NULL, &err) == 0);
        CHECK(sam3_tokenize(tok, in, n, SAM3_CONTEXT_LENGTH, b, NULL, NULL, &err) == 0);
        CHECKF(memcmp(a, b, sizeof a) == 0, "'%s': metadata and .gz vocabularies give different ids",
               cJSON_GetStringValue(cJSON_GetObjectItem(s, "text")));
    }
    sam3_tokenizer_free(t);
    /* a trailing newline is accepted */
    text[len] = '\n';
    t = sam3_tokenizer_load_merges(text, len + 1, &err);
    CHECKF(t != NULL, "with a final newline: %s", err.msg);
    sam3_tokenizer_free(t);
    /* one line short, one line more, a malformed line, the header line kept */
    char *last = memrchr(text, '\n', len);
    t = sam3_tokenizer_load_merges(text, (size_t)(last - text), &err);
    CHECKF(!t && err.status == SAMC_ERR_FORMAT && strstr(err.msg, "48893 lines") && strstr(err.msg, "48894"),
           "one line short: %s", err.msg);
    sam3_tokenizer_free(t);
    memcpy(text + len, "\nx y", 4);
    t = sam3_tokenizer_load_merges(text, len + 4, &err);
    CHECKF(!t && strstr(err.msg, "48895 lines"), "one line more: %s", err.msg);
    sam3_tokenizer_free(t);
    char saved = text[1];
    text[1] = 'X';   /* "i n" -> "iXn": one symbol */
    t = sam3_tokenizer_load_merges(text, len, &err);
    CHECKF(!t && strstr(err.msg, "line 1 ") && strstr(err.msg, "iXn"), "malformed line: %s", err.msg);
    sam3_tokenizer_free(t);
    text[1] = saved;
    char with_header[64 + 16];
    snprintf(with_header, sizeof with_header, "#version: 0.2\n%.40s", text);
    t = sam3_tokenizer_load_merges(with_header, strlen(with_header), &err);
    CHECKF(!t && strstr(err.msg, "#version"), "header line: %s", err.msg);
    sam3_tokenizer_free(t);
    t = sam3_tokenizer_load_merges("", 0, &err);
    CHECKF(!t && strstr(err.msg, "0 lines"), "empty: %s", err.msg);
    free(text);
    verdict("load_merges_text (metadata form, and its errors)");
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static void test_load_gz_errors(void) {
    samc_error err = { 0 };
    char dir[] = "/tmp/samc_tok_XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    sam3_tokenizer *t = sam3_tokenizer_load_gz("/nonexistent/bpe_simple_vocab_16e6.txt.gz", &err);
    CHECKF(!t && err.status == SAMC_ERR_IO && strstr(err.msg, "cannot open"), "missing: %s", err.msg);
    snprintf(path, sizeof path, "%s/text.gz", dir);
    CHECK(write_file(path, "hello world\nthis is no vocabulary\n", 34) == 0);
    t = sam3_tokenizer_load_gz(path, &err);
    CHECKF(!t && err.status == SAMC_ERR_FORMAT && strstr(err.msg, "#version"), "plain text: %s", err.msg);
    size_t n = 0;
    char *gz = NULL;
    FILE *f = fopen(vocab_path, "rb");
    if (f) {
        gz = malloc(2u << 20);
        n = gz ? fread(gz, 1, 2u << 20, f) : 0;
        fclose(f);
    }
    CHECK(gz && n > 100000);
    snprintf(path, sizeof path, "%s/truncated.gz", dir);
    CHECK(gz && write_file(path, gz, n / 2) == 0);
    t = sam3_tokenizer_load_gz(path, &err);
    CHECKF(!t && err.status == SAMC_ERR_FORMAT && strstr(err.msg, "gzip"), "truncated: %s", err.msg);
    if (gz) gz[n / 3] ^= 0x55;
    snprintf(path, sizeof path, "%s/corrupt.gz", dir);
    CHECK(gz && write_file(path, gz, n) == 0);
    t = sam3_tokenizer_load_gz(path, &err);
    CHECKF(!t && err.status == SAMC_ERR_FORMAT, "corrupt: %s", err.msg);
    snprintf(path, sizeof path, "%s/short.gz", dir);
    gzFile g = gzopen(path, "wb");
    if (g) { gzputs(g, "#version: 0.2\ni n\nt h\n"); gzclose(g); }
    t = sam3_tokenizer_load_gz(path, &err);
    CHECKF(!t && strstr(err.msg, "3 lines") && strstr(err.msg, "48894"), "short: %s", err.msg);
    free(gz);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    verdict("load_gz_errors (missing, not gzip, truncated, corrupt, too few lines)");
}

/* Long input: cut at SAM3_TOKENIZER_MAX_INPUT bytes on a character boundary, flagged,
 * and the ids are still those of the text's start. */
static void test_long_input(void) {
    size_t n = 100000;
    char *s = malloc(n);
    int32_t ids[SAM3_CONTEXT_LENGTH];
    int n_tokens = 0;
    unsigned flags = 0;
    samc_error err = { 0 };
    CHECK(s != NULL);
    if (!s) { verdict("long_input"); return; }
    for (size_t i = 0; i < n; i++) s[i] = "word "[i % 5];
    CHECK(sam3_tokenize(tok, s, n, SAM3_CONTEXT_LENGTH, ids, &n_tokens, &flags, &err) == 0);
    CHECKF(flags == (SAM3_TOK_TRUNCATED | SAM3_TOK_INPUT_CUT), "flags %u", flags);
    CHECKF(n_tokens == SAM3_TOKENIZER_MAX_INPUT / 5 + 1 + 2, "%d tokens", n_tokens);  /* 8192 bytes: 1638 words + "wo" */
    CHECK(ids[0] == SAM3_SOT_ID && ids[31] == SAM3_EOT_ID);
    for (int i = 1; i < 31; i++) CHECKF(ids[i] == 2653, "ids[%d] = %d, want 2653 (word</w>)", i, ids[i]);
    /* a two-byte character across the limit is left out whole */
    memset(s, 'a', SAM3_TOKENIZER_MAX_INPUT - 1);
    memcpy(s + SAM3_TOKENIZER_MAX_INPUT - 1, "\xc3\xa9zz", 4);
    char *cleaned = malloc(4 * SAM3_TOKENIZER_MAX_INPUT);
    CHECK(cleaned && sam3_tokenizer_clean(tok, s, SAM3_TOKENIZER_MAX_INPUT + 3, cleaned, 4 * SAM3_TOKENIZER_MAX_INPUT,
                                          &flags, &err) == 0);
    CHECKF(flags == SAM3_TOK_INPUT_CUT, "flags %u (a cut character must not become U+FFFD)", flags);
    CHECK(cleaned && strlen(cleaned) == SAM3_TOKENIZER_MAX_INPUT - 1);
    free(cleaned);
    /* the worst case for BPE: one piece of 8192 letters that merge slowly */
    for (size_t i = 0; i < SAM3_TOKENIZER_MAX_INPUT; i++) s[i] = (char)('a' + (i * 7 + i / 26) % 26);
    clock_t t0 = clock();
    CHECK(sam3_tokenize(tok, s, SAM3_TOKENIZER_MAX_INPUT, SAM3_CONTEXT_LENGTH, ids, &n_tokens, &flags, &err) == 0);
    double sec = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECKF(sec < 5.0, "one 8192-letter word took %.2f s", sec);
    CHECK(flags == SAM3_TOK_TRUNCATED && n_tokens > 1000);
    free(s);
    verdict("long_input (cut at the byte limit, whole characters, bounded time)");
}

static void test_context_and_api(void) {
    int32_t ids[8], mask[8];
    int n = 0;
    unsigned flags = 0;
    samc_error err = { 0 };
    CHECK(sam3_tokenize(tok, "a red car", 9, 1, ids, &n, &flags, &err) == 0);
    CHECK(ids[0] == SAM3_EOT_ID && n == 5 && flags == SAM3_TOK_TRUNCATED);   /* tokens[:1], last = EOT */
    CHECK(sam3_tokenize(tok, "a red car", 9, 3, ids, &n, &flags, &err) == 0);
    CHECK(ids[0] == SAM3_SOT_ID && ids[1] == 320 && ids[2] == SAM3_EOT_ID);
    CHECK(sam3_tokenize(tok, "a red car", 9, 5, ids, &n, &flags, &err) == 0 && flags == 0 && ids[4] == SAM3_EOT_ID);
    CHECK(sam3_tokenize(tok, NULL, 0, 8, ids, &n, &flags, &err) == 0 && n == 2 && ids[1] == SAM3_EOT_ID && ids[7] == 0);
    sam3_pad_mask(ids, 8, mask);
    CHECK(mask[0] == 0 && mask[1] == 0 && mask[2] == 1 && mask[7] == 1);
    CHECK(sam3_tokenize(tok, "x", 1, 0, ids, &n, &flags, &err) != 0 && err.status == SAMC_ERR_ARG);
    CHECK(sam3_tokenize(NULL, "x", 1, 8, ids, &n, &flags, &err) != 0);
    CHECK(strcmp(sam3_tokenizer_token(tok, 0), "!") == 0 && strcmp(sam3_tokenizer_token(tok, 256), "!</w>") == 0);
    CHECK(strcmp(sam3_tokenizer_token(tok, SAM3_SOT_ID), "<start_of_text>") == 0);
    CHECK(sam3_tokenizer_token(tok, SAM3_VOCAB_SIZE) == NULL && sam3_tokenizer_token(tok, -1) == NULL);
    char out[16];
    int32_t bad_id = SAM3_VOCAB_SIZE;
    CHECK(sam3_tokenizer_decode(tok, &bad_id, 1, out, sizeof out, &err) != 0 && strstr(err.msg, "49408"));
    int32_t roof = 6449;
    CHECK(sam3_tokenizer_decode(tok, &roof, 1, out, 4, &err) != 0);   /* "roof " needs 6 bytes */
    CHECK(sam3_tokenizer_clean(tok, "abc", 3, out, 3, NULL, &err) != 0);
    verdict("context_and_api (context 1, 3, 5, empty, argument errors, token strings, decode)");
}

int main(void) {
    if (load_golden() != 0) {
        printf("NOT OK test_sam3_tokenizer.golden: no SAM3 tokenizer golden data under %s/sam3 "
               "(set SAMC_GOLDEN to the golden folder); nothing to compare with\n", test_golden_dir());
        printf("test_sam3_tokenizer: 0 passed, 1 failed, 0 skipped\n");
        return 1;
    }
    test_golden_strings();
    test_known_cases();
    test_load_from_merges_text();
    test_load_gz_errors();
    test_long_input();
    test_context_and_api();
    sam3_tokenizer_free(tok);
    cJSON_Delete(manifest);
    if (have_tensors) st_close(&tensors);
    printf("test_sam3_tokenizer: %d passed, %d failed, 0 skipped\n", passed, failed);
    return failed ? 1 : 0;
}
