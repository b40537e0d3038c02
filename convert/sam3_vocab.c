/* convert/sam3_vocab.c: the SAM3 text vocabulary that `samc convert` embeds in a model
 * file (convert/sam3_convert.h).
 *
 * SAM3's tokenizer (sam3/model/tokenizer_ve.py, SimpleTokenizer) reads the CLIP file
 * bpe_simple_vocab_16e6.txt.gz, skips its first line (the "#version" header) and uses the
 * merge lines 1..48894 (`merges[1:49152-256-2+1]`). The same 48894 lines, joined with '\n'
 * and without the header, are what a model file carries in its metadata
 * (SAM3_VOCAB_META_KEY; model/sam3/tokenizer.h reads that format).
 *
 * The file may be gzipped (the official .gz) or plain text (its unpacked .txt, or CLIP's
 * merges.txt, which holds the header and the same first merges). It is accepted only
 * when its first 48894 merges are byte for byte the official ones (their sha256 below):
 * the text encoder's 49408-row token embedding is indexed by these merges, so any other
 * list would give wrong token ids without an error. */
#include "convert/sam3_vocab.h"
#include "util/gzip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/sha256.h"

/* sha256 of the 48894 merge lines joined with '\n' (524604 bytes), computed from
 * bpe_simple_vocab_16e6.txt.gz of shared/golden/sam3/assets, whose md5 933b7abb...464f
 * is that of the file the official repositories ship (weights/README.md). */
#define OFFICIAL_MERGES_SHA256 "f61f2adf497e6f5357c347aeb4646fabe82f341e946de5bdec5d2858e41bef4a"
#define OFFICIAL_MERGE_LINES 262144      /* merge lines of the official file after its header */
#define VOCAB_MAX_BYTES (64u << 20)      /* the official file is 1.36 MB unpacked */

/* A merge line is two non-empty symbols separated by one space. */
static int merge_line_ok(const char *s, size_t n) {
    const char *sp = memchr(s, ' ', n);
    return sp && sp > s && sp < s + n - 1 && !memchr(sp + 1, ' ', (size_t)(s + n - sp - 1)) && !memchr(s, '\r', n);
}

/* Picks the merge lines out of the unpacked text: the header line, then the first
 * SAM3_VOCAB_MERGES lines, each checked; counts all merge lines. */
static int take_merges(const char *path, const char *text, size_t len, size_t *merges_off, size_t *merges_len,
                       samc_error *err) {
    const char *nl = memchr(text, '\n', len);
    size_t first = nl ? (size_t)(nl - text) : len;
    if (!memmem(text, first, "#version", 8))
        return samc_error_set(err, SAMC_ERR_FORMAT, "vocabulary %s: not a CLIP BPE merges file: its first line is "
                              "not the '#version' header (want bpe_simple_vocab_16e6.txt.gz)", path);
    size_t pos = nl ? first + 1 : len, lines = 0, end = pos;
    while (pos < len) {
        const char *e = memchr(text + pos, '\n', len - pos);
        size_t n = e ? (size_t)(e - (text + pos)) : len - pos;
        if (lines < SAM3_VOCAB_MERGES && !merge_line_ok(text + pos, n))
            return samc_error_set(err, SAMC_ERR_FORMAT, "vocabulary %s: line %zu is not a merge 'A B': '%.40s'", path,
                                  lines + 2, text + pos);
        lines++;
        if (lines == SAM3_VOCAB_MERGES) end = pos + n;
        pos += n + 1;
    }
    if (lines < SAM3_VOCAB_MERGES)
        return samc_error_set(err, SAMC_ERR_FORMAT, "vocabulary %s: %zu merge lines after the header; the official "
                              "bpe_simple_vocab_16e6.txt has %d and SAM3 uses the first %d (wrong or truncated file)",
                              path, lines, OFFICIAL_MERGE_LINES, SAM3_VOCAB_MERGES);
    *merges_off = first + 1;
    *merges_len = end - (first + 1);
    return 0;
}

int sam3_vocab_check(const char *merges, size_t len, char sha_hex[65]) {
    sha256_hex(merges, len, sha_hex);
    return strcmp(sha_hex, OFFICIAL_MERGES_SHA256) == 0;
}

int sam3_vocab_read(const char *path, char **merges, size_t *len, samc_error *err) {
    *merges = NULL;
    *len = 0;
    char *text = NULL, emsg[400];
    size_t text_len = 0, off = 0, n = 0;
    int kind;
    if (util_read_gz(path, VOCAB_MAX_BYTES, &text, &text_len, &kind, emsg, sizeof emsg))
        return samc_error_set(err, kind == 1 ? SAMC_ERR_IO : kind == 3 ? SAMC_ERR_NOMEM : SAMC_ERR_FORMAT,
                              "vocabulary %s", emsg);
    if (take_merges(path, (const char *)text, text_len, &off, &n, err)) {
        free(text);
        return -1;
    }
    char sha[65];
    if (!sam3_vocab_check((const char *)text + off, n, sha)) {
        free(text);
        return samc_error_set(err, SAMC_ERR_FORMAT, "vocabulary %s: not the official CLIP BPE vocabulary: its merges "
                              "1..%d have sha256 %s, the official ones %s", path, SAM3_VOCAB_MERGES, sha,
                              OFFICIAL_MERGES_SHA256);
    }
    memmove(text, text + off, n);
    text[n] = 0;   /* n < text_len: the header line came before */
    *merges = (char *)text;
    *len = n;
    return 0;
}
