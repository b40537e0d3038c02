/* model/sam3/tokenizer.c: SAM3's CLIP BPE tokenizer (sam3/model/tokenizer_ve.py,
 * SimpleTokenizer): vocabulary and merge tables built once at load, byte-level BPE, ids
 * with the official padding and truncation. Text cleaning and the pre-tokenisation
 * regex are in tokenizer_text.c. Contract and coverage: tokenizer.h. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "model/sam3/tokenizer.h"
#include "util/gzip.h"
#include "model/sam3/tokenizer_text.h"

#define HASH_BITS 17                   /* 131072 slots for <= 49408 strings / 48894 pairs */
#define HASH_SIZE (1u << HASH_BITS)
#define GZ_MAX_BYTES (64u << 20)       /* the official file is 3.2 MB decompressed */

struct sam3_tokenizer {
    char *strings;                     /* every vocabulary entry, NUL-terminated */
    uint32_t off[SAM3_VOCAB_SIZE];     /* entry i starts at strings + off[i] */
    int32_t str_slot[HASH_SIZE];       /* string -> encoder id (last entry wins), -1 empty */
    uint64_t pair_key[HASH_SIZE];      /* (a << 32 | b) + 1 of a merge pair, 0 empty */
    int32_t pair_rank[HASH_SIZE], pair_id[HASH_SIZE];
    int32_t byte_sym[256], byte_sym_end[256]; /* encoder id of byte b's symbol, and with "</w>" */
    int16_t cp_byte[512];              /* bytes_to_unicode inverse: symbol code point -> byte */
    /* Work buffers planned for SAM3_TOKENIZER_MAX_INPUT (cleaning never makes text
     * longer in code points than the input is in bytes, nor more than 3x in bytes). */
    sam3_cpbuf text, work[3];
    uint8_t *piece;                    /* one piece's UTF-8 */
    int32_t *sym;                      /* one piece's BPE symbols */
    size_t piece_cap;
};

/* ---- hash tables -------------------------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32));
}

static uint32_t hash_pair(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33;
    return (uint32_t)k;
}

static int32_t string_id(const sam3_tokenizer *t, const char *s, size_t n) {
    for (uint32_t h = hash_bytes(s, n) & (HASH_SIZE - 1);; h = (h + 1) & (HASH_SIZE - 1)) {
        int32_t id = t->str_slot[h];
        if (id < 0) return -1;
        const char *e = t->strings + t->off[id];
        if (strncmp(e, s, n) == 0 && e[n] == '\0') return id;
    }
}

/* Adds entry id; a string already present now maps to the later id, as Python's
 * dict(zip(vocab, range(len(vocab)))) keeps the last. */
static void string_add(sam3_tokenizer *t, int32_t id) {
    const char *s = t->strings + t->off[id];
    size_t n = strlen(s);
    for (uint32_t h = hash_bytes(s, n) & (HASH_SIZE - 1);; h = (h + 1) & (HASH_SIZE - 1)) {
        int32_t cur = t->str_slot[h];
        if (cur < 0 || strcmp(t->strings + t->off[cur], s) == 0) { t->str_slot[h] = id; return; }
    }
}

static uint32_t pair_slot(const sam3_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t h = hash_pair(key) & (HASH_SIZE - 1);
    while (t->pair_key[h] && t->pair_key[h] != key) h = (h + 1) & (HASH_SIZE - 1);
    return h;
}

/* The merge rank of symbols (a, b), or INT_MAX; *merged gets the result's id. */
static int pair_rank(const sam3_tokenizer *t, int32_t a, int32_t b, int32_t *merged) {
    uint32_t h = pair_slot(t, a, b);
    if (!t->pair_key[h]) return INT_MAX;
    *merged = t->pair_id[h];
    return t->pair_rank[h];
}

/* ---- building the vocabulary --------------------------------------------------------- */

/* bytes_to_unicode: the printable bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand
 * for themselves and come first in the vocabulary; the other 68 become U+0100.. in byte
 * order and follow. Returns byte_at[i], the byte of vocabulary entry i < 256, and fills
 * cp_of[b]. */
static void byte_symbols(uint8_t byte_at[256], uint32_t cp_of[256]) {
    int n = 0, extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (printable) { byte_at[n++] = (uint8_t)b; cp_of[b] = (uint32_t)b; }
    }
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) {
            byte_at[n++] = (uint8_t)b;
            cp_of[b] = 256u + (uint32_t)extra++;
        }
}

/* Writes entry id's string at *pos and records it. */
static void add_entry(sam3_tokenizer *t, size_t *pos, int32_t id, const char *a, size_t na, const char *b, size_t nb) {
    t->off[id] = (uint32_t)*pos;
    memcpy(t->strings + *pos, a, na);
    memcpy(t->strings + *pos + na, b, nb);
    t->strings[*pos + na + nb] = '\0';
    *pos += na + nb + 1;
}

/* One merge line "A B" (already checked): its two symbols. */
static void split_line(const char *line, size_t n, const char **a, size_t *na, const char **b, size_t *nb) {
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    *a = line + i;
    while (i < n && !(line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    *na = (size_t)(line + i - *a);
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    *b = line + i;
    while (i < n && !(line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    *nb = (size_t)(line + i - *b);
}

/* Fills strings, hashes and merge pairs from the 48894 merge lines at line[]/line_len[]. */
static void build_tables(sam3_tokenizer *t, const char *const *line, const size_t *line_len) {
    uint8_t byte_at[256];
    uint32_t cp_of[256];
    byte_symbols(byte_at, cp_of);
    size_t pos = 0;
    memset(t->cp_byte, 0xFF, sizeof t->cp_byte);
    for (int i = 0; i < 256; i++) {
        uint8_t u[4];
        size_t n = 0;
        sam3_utf8_put(cp_of[byte_at[i]], u, sizeof u, &n);
        add_entry(t, &pos, i, (const char *)u, n, "", 0);
        add_entry(t, &pos, 256 + i, (const char *)u, n, "</w>", 4);
        t->cp_byte[cp_of[byte_at[i]]] = byte_at[i];
    }
    for (int r = 0; r < SAM3_N_MERGES; r++) {
        const char *a, *b;
        size_t na, nb;
        split_line(line[r], line_len[r], &a, &na, &b, &nb);
        add_entry(t, &pos, 512 + r, a, na, b, nb);
    }
    add_entry(t, &pos, SAM3_SOT_ID, "<start_of_text>", 15, "", 0);
    add_entry(t, &pos, SAM3_EOT_ID, "<end_of_text>", 13, "", 0);
    memset(t->str_slot, 0xFF, sizeof t->str_slot);
    for (int32_t id = 0; id < SAM3_VOCAB_SIZE; id++) string_add(t, id);
    for (int i = 0; i < 256; i++) {
        t->byte_sym[byte_at[i]] = string_id(t, t->strings + t->off[i], strlen(t->strings + t->off[i]));
        t->byte_sym_end[byte_at[i]] = string_id(t, t->strings + t->off[256 + i], strlen(t->strings + t->off[256 + i]));
    }
    /* bpe_ranks: a pair of strings -> its line; a symbol that is no vocabulary entry can
     * never occur, so such a pair is left out. A repeated pair keeps its last line. */
    for (int r = 0; r < SAM3_N_MERGES; r++) {
        const char *a, *b;
        size_t na, nb;
        split_line(line[r], line_len[r], &a, &na, &b, &nb);
        int32_t ia = string_id(t, a, na), ib = string_id(t, b, nb);
        const char *m = t->strings + t->off[512 + r];
        if (ia < 0 || ib < 0) continue;
        uint32_t h = pair_slot(t, ia, ib);
        t->pair_key[h] = (((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib) + 1;
        t->pair_rank[h] = r;
        t->pair_id[h] = string_id(t, m, strlen(m));
    }
}

/* ---- loading ------------------------------------------------------------------------ */

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Whether a line is exactly two non-empty symbols separated by blanks. */
static int line_ok(const char *s, size_t n) {
    int fields = 0;
    for (size_t i = 0; i < n;) {
        if (is_blank(s[i])) { i++; continue; }
        if (s[i] == '\0') return 0;
        fields++;
        while (i < n && !is_blank(s[i])) i++;
    }
    return fields == 2;
}

static sam3_tokenizer *alloc_tokenizer(size_t strings_size, samc_error *err) {
    sam3_tokenizer *t = calloc(1, sizeof *t);
    size_t cap = SAM3_TOKENIZER_MAX_INPUT + 64;
    if (t) {
        t->strings = malloc(strings_size);
        t->piece_cap = 3 * cap;
        t->piece = malloc(t->piece_cap);
        t->sym = malloc(t->piece_cap * sizeof *t->sym);
        t->text = (sam3_cpbuf){ malloc(cap * sizeof(uint32_t)), 0, cap, 0 };
        for (int k = 0; k < 3; k++) t->work[k] = (sam3_cpbuf){ malloc(cap * sizeof(uint32_t)), 0, cap, 0 };
    }
    if (!t || !t->strings || !t->piece || !t->sym || !t->text.p || !t->work[0].p || !t->work[1].p || !t->work[2].p) {
        sam3_tokenizer_free(t);
        samc_error_set(err, SAMC_ERR_NOMEM, "tokenizer: out of memory (%zu bytes of vocabulary)", strings_size);
        return NULL;
    }
    return t;
}

/* Builds a tokenizer from `text`: with a header (the .gz file), line 0 must be the
 * "#version" line and lines 1..48894 are used, later ones ignored; without (metadata),
 * exactly 48894 lines. `what` names the source in messages. */
static sam3_tokenizer *load_lines(const char *text, size_t len, int header, const char *what, samc_error *err) {
    const char **line = malloc(SAM3_N_MERGES * sizeof *line);
    size_t *line_len = malloc(SAM3_N_MERGES * sizeof *line_len);
    sam3_tokenizer *t = NULL;
    size_t n_lines = 0, used = 0, pos = 0;
    if (!line || !line_len) { samc_error_set(err, SAMC_ERR_NOMEM, "%s: out of memory", what); goto done; }
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        const char *s = text + pos;
        if (n_lines == 0 && header && !memmem(s, n, "#version", 8)) {
            samc_error_set(err, SAMC_ERR_FORMAT, "%s: not a CLIP BPE merges file: the first line is not the "
                           "'#version' header (want bpe_simple_vocab_16e6.txt.gz)", what);
            goto done;
        }
        if (n_lines == 0 && !header && memmem(s, n, "#version", 8)) {
            samc_error_set(err, SAMC_ERR_FORMAT, "%s: starts with the '#version' header line; it holds only "
                           "the merge lines 1..%d of the official file", what, SAM3_N_MERGES);
            goto done;
        }
        if (n_lines >= (size_t)header && used < SAM3_N_MERGES) {
            if (!line_ok(s, n)) {
                samc_error_set(err, SAMC_ERR_FORMAT, "%s: line %zu is not a merge 'A B': '%.40s'", what,
                               n_lines + 1, s);
                goto done;
            }
            line[used] = s;
            line_len[used++] = n;
        }
        n_lines++;
        pos += n + 1;
    }
    if (used < SAM3_N_MERGES || (!header && n_lines != SAM3_N_MERGES)) {
        samc_error_set(err, SAMC_ERR_FORMAT, "%s: %zu lines, need %s%d merge lines (lines 1..%d of "
                       "bpe_simple_vocab_16e6.txt%s)", what, n_lines, header ? "a '#version' header and " : "",
                       SAM3_N_MERGES, SAM3_N_MERGES, header ? "; truncated?" : ", joined with '\\n'");
        goto done;
    }
    size_t strings_size = 256 * 3 + 256 * 7 + 32;
    for (int r = 0; r < SAM3_N_MERGES; r++) strings_size += line_len[r] + 1;
    t = alloc_tokenizer(strings_size, err);
    if (t) build_tables(t, line, line_len);
done:
    free(line);
    free(line_len);
    return t;
}

sam3_tokenizer *sam3_tokenizer_load_merges(const char *text, size_t len, samc_error *err) {
    if (!text) {
        samc_error_set(err, SAMC_ERR_ARG, "tokenizer: no merges text");
        return NULL;
    }
    return load_lines(text, len, 0, SAM3_MERGES_META_KEY, err);
}

sam3_tokenizer *sam3_tokenizer_load_gz(const char *path, samc_error *err) {
    size_t len = 0;
    char *text, emsg[400];
    int kind;
    if (util_read_gz(path, GZ_MAX_BYTES, &text, &len, &kind, emsg, sizeof emsg)) {
        samc_error_set(err, kind == 1 ? SAMC_ERR_IO : kind == 3 ? SAMC_ERR_NOMEM : SAMC_ERR_FORMAT, "%s", emsg);
        return NULL;
    }
    sam3_tokenizer *t = load_lines(text, len, 1, path, err);
    free(text);
    return t;
}

void sam3_tokenizer_free(sam3_tokenizer *t) {
    if (!t) return;
    free(t->strings);
    free(t->piece);
    free(t->sym);
    free(t->text.p);
    for (int k = 0; k < 3; k++) free(t->work[k].p);
    free(t);
}

/* ---- tokenizing --------------------------------------------------------------------- */

/* bpe(): the piece's bytes as symbols, the last one with "</w>", then the lowest-ranked
 * adjacent pair merged everywhere (left to right), until no pair is a merge. Returns the
 * number of symbols left in t->sym. */
static int bpe(sam3_tokenizer *t, const uint8_t *s, size_t n) {
    int32_t *sym = t->sym;
    for (size_t i = 0; i < n; i++) sym[i] = t->byte_sym[s[i]];
    sym[n - 1] = t->byte_sym_end[s[n - 1]];
    size_t len = n;
    while (len > 1) {
        int best = INT_MAX;
        int32_t a = 0, b = 0, merged = 0;
        for (size_t j = 0; j + 1 < len; j++) {
            int32_t m;
            int r = pair_rank(t, sym[j], sym[j + 1], &m);
            if (r < best) { best = r; a = sym[j]; b = sym[j + 1]; merged = m; }
        }
        if (best == INT_MAX) break;
        size_t out = 0;
        for (size_t j = 0; j < len;) {
            if (j + 1 < len && sym[j] == a && sym[j + 1] == b) { sym[out++] = merged; j += 2; }
            else sym[out++] = sym[j++];
        }
        len = out;
    }
    return (int)len;
}

/* Decodes and cleans the input into t->text; reports SAM3_TOK_INPUT_CUT / BAD_UTF8. */
static void prepare(sam3_tokenizer *t, const char *utf8, size_t len, unsigned *flags) {
    const uint8_t *s = (const uint8_t *)utf8;
    *flags = 0;
    if (len > SAM3_TOKENIZER_MAX_INPUT) {
        /* cut before the character that crosses the limit (at most 3 bytes back) */
        size_t n = SAM3_TOKENIZER_MAX_INPUT;
        for (int k = 0; k < 3 && n > 0 && (s[n] & 0xC0) == 0x80; k++) n--;
        len = n;
        *flags |= SAM3_TOK_INPUT_CUT;
    }
    t->text.n = 0;
    t->text.full = 0;
    for (int k = 0; k < 3; k++) t->work[k].full = 0;
    if (sam3_utf8_decode(s, len, &t->text)) *flags |= SAM3_TOK_BAD_UTF8;
    sam3_text_clean(&t->text, t->work);
    if (t->text.full) *flags |= SAM3_TOK_INPUT_CUT;
}

/* Runs the pipeline on t->text and calls fn per piece with its ids (in t->sym). */
static int for_each_piece(sam3_tokenizer *t, sam3_piece_fn fn, void *ctx, unsigned *flags) {
    size_t pos = 0, a, b;
    while (sam3_next_piece(t->text.p, t->text.n, &pos, &a, &b)) {
        size_t n = 0;
        for (size_t i = a; i < b; i++)
            if (sam3_utf8_put(t->text.p[i], t->piece, t->piece_cap, &n) < 0) { *flags |= SAM3_TOK_INPUT_CUT; break; }
        int n_ids;
        if (n == 15 && memcmp(t->piece, "<start_of_text>", 15) == 0) { t->sym[0] = SAM3_SOT_ID; n_ids = 1; }
        else if (n == 13 && memcmp(t->piece, "<end_of_text>", 13) == 0) { t->sym[0] = SAM3_EOT_ID; n_ids = 1; }
        else n_ids = n ? bpe(t, t->piece, n) : 0;
        int rc = fn(ctx, (const char *)t->piece, n, t->sym, n_ids);
        if (rc) return rc;
    }
    return 0;
}

typedef struct {
    int32_t *ids;
    int cap, count;
} id_sink;

static int sink_ids(void *vctx, const char *piece, size_t len, const int32_t *ids, int n_ids) {
    id_sink *s = vctx;
    for (int i = 0; i < n_ids; i++) {
        if (s->count < s->cap) s->ids[s->count] = ids[i];
        s->count++;
    }
    return 0;
}

int sam3_tokenize(sam3_tokenizer *t, const char *utf8, size_t len, int context_length, int32_t *ids_out,
                  int *n_tokens_untruncated, unsigned *flags, samc_error *err) {
    unsigned fl = 0;
    if (!t || (!utf8 && len) || !ids_out || context_length < 1)
        return samc_error_set(err, SAMC_ERR_ARG, "sam3_tokenize: %s", context_length < 1 ? "context length must be >= 1"
                              : "missing tokenizer, text or output");
    prepare(t, utf8 ? utf8 : "", len, &fl);
    id_sink s = { ids_out, context_length, 1 };
    ids_out[0] = SAM3_SOT_ID;
    for_each_piece(t, sink_ids, &s, &fl);
    int total = s.count + 1;   /* + EOT */
    if (total > context_length) {
        ids_out[context_length - 1] = SAM3_EOT_ID;
        fl |= SAM3_TOK_TRUNCATED;
    } else {
        ids_out[total - 1] = SAM3_EOT_ID;
        for (int i = total; i < context_length; i++) ids_out[i] = 0;
    }
    if (n_tokens_untruncated) *n_tokens_untruncated = total;
    if (flags) *flags = fl;
    return 0;
}

void sam3_pad_mask(const int32_t *ids, int n, int32_t *mask) {
    for (int i = 0; i < n; i++) mask[i] = ids[i] == 0;
}

int sam3_tokenizer_clean(sam3_tokenizer *t, const char *utf8, size_t len, char *out, size_t out_size,
                         unsigned *flags, samc_error *err) {
    unsigned fl = 0;
    if (!t || (!utf8 && len) || !out || out_size == 0)
        return samc_error_set(err, SAMC_ERR_ARG, "sam3_tokenizer_clean: missing tokenizer, text or output");
    prepare(t, utf8 ? utf8 : "", len, &fl);
    if (flags) *flags = fl;
    size_t n = 0;
    for (size_t i = 0; i < t->text.n; i++)
        if (sam3_utf8_put(t->text.p[i], (uint8_t *)out, out_size - 1, &n) < 0)
            return samc_error_set(err, SAMC_ERR_ARG, "sam3_tokenizer_clean: output buffer of %zu bytes too small", out_size);
    out[n] = '\0';
    return 0;
}

int sam3_tokenize_pieces(sam3_tokenizer *t, const char *utf8, size_t len, sam3_piece_fn fn, void *ctx,
                         unsigned *flags, samc_error *err) {
    unsigned fl = 0;
    if (!t || (!utf8 && len) || !fn)
        return samc_error_set(err, SAMC_ERR_ARG, "sam3_tokenize_pieces: missing tokenizer, text or callback");
    prepare(t, utf8 ? utf8 : "", len, &fl);
    int rc = for_each_piece(t, fn, ctx, &fl);
    if (flags) *flags = fl;
    return rc;
}

const char *sam3_tokenizer_token(const sam3_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= SAM3_VOCAB_SIZE) return NULL;
    return t->strings + t->off[id];
}

/* Appends the bytes that token id stands for to bytes[*n]: its symbols are code points
 * below 512 (one or two bytes of UTF-8), each one byte through the bytes_to_unicode
 * inverse. -1 on anything else (only a malformed merges file could make one). */
static int token_bytes(const sam3_tokenizer *t, int32_t id, uint8_t *bytes, size_t *n) {
    const uint8_t *s = (const uint8_t *)t->strings + t->off[id];
    for (size_t i = 0; s[i];) {
        uint32_t cp = s[i];
        if (cp >= 0x80) {
            if ((cp & 0xE0) != 0xC0 || (s[i + 1] & 0xC0) != 0x80) return -1;
            cp = ((cp & 0x1F) << 6) | (s[i + 1] & 0x3F);
            i++;
        }
        i++;
        if (cp >= 512 || t->cp_byte[cp] < 0) return -1;
        bytes[(*n)++] = (uint8_t)t->cp_byte[cp];
    }
    return 0;
}

int sam3_tokenizer_decode(const sam3_tokenizer *t, const int32_t *ids, int n, char *out, size_t out_size,
                          samc_error *err) {
    if (!t || (!ids && n) || !out || out_size == 0)
        return samc_error_set(err, SAMC_ERR_ARG, "sam3_tokenizer_decode: missing tokenizer, ids or output");
    size_t cap = 1, nb = 0;   /* a token gives at most as many bytes as its string has */
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < SAM3_VOCAB_SIZE) cap += strlen(t->strings + t->off[ids[i]]);
    uint8_t *bytes = malloc(cap);
    sam3_cpbuf cps = { malloc(cap * sizeof(uint32_t)), 0, cap, 0 };
    int rc = 0;
    if (!bytes || !cps.p) rc = samc_error_set(err, SAMC_ERR_NOMEM, "sam3_tokenizer_decode: out of memory");
    for (int i = 0; i < n && !rc; i++)
        if (ids[i] < 0 || ids[i] >= SAM3_VOCAB_SIZE || token_bytes(t, ids[i], bytes, &nb) < 0)
            rc = samc_error_set(err, SAMC_ERR_ARG, "sam3_tokenizer_decode: bad token id %d", (int)ids[i]);
    if (!rc) sam3_utf8_decode(bytes, nb, &cps);
    size_t o = 0;
    for (size_t i = 0; i < cps.n && !rc; i++) {
        int end_w = i + 3 < cps.n && cps.p[i] == '<' && cps.p[i + 1] == '/' && cps.p[i + 2] == 'w' && cps.p[i + 3] == '>';
        if (sam3_utf8_put(end_w ? ' ' : cps.p[i], (uint8_t *)out, out_size - 1, &o) < 0)
            rc = samc_error_set(err, SAMC_ERR_ARG, "sam3_tokenizer_decode: output buffer of %zu bytes too small", out_size);
        if (end_w) i += 3;
    }
    out[rc ? 0 : o] = '\0';
    free(bytes);
    free(cps.p);
    return rc;
}
