/* model/sam3/tokenizer.h: SAM3's text tokenizer, the CLIP byte-level BPE of
 * sam3/model/tokenizer_ve.py (SimpleTokenizer, clean="lower"), giving the same ids.
 *
 * Pipeline (../shared/golden/sam3/README.md section 4):
 *   UTF-8 bytes -> code points (invalid bytes: one U+FFFD per maximal ill-formed
 *   subpart, as Python's bytes.decode("utf-8", errors="replace"); SAM3_TOK_BAD_UTF8)
 *   -> ftfy.fix_text (the subset below) -> html.unescape twice -> str.strip()
 *   -> regex.sub(r"\s+", " ") -> str.strip() -> str.lower() (full mapping: "İ" -> "i̇";
 *   final sigma) -> regex.findall of
 *   `<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
 *   with IGNORECASE -> each piece's UTF-8 bytes through bytes_to_unicode, "</w>" on the
 *   last symbol -> BPE by merge rank -> ids. A piece that is exactly "<start_of_text>"
 *   or "<end_of_text>" is the special id itself.
 * ids = [49406] + bpe + [49407], zero-padded to the context length (32 for SAM3); a
 * longer list is cut to the context length and its last position set to 49407.
 * The model's pad mask is ids == 0, which also hits the byte token "!" (id 0) when BPE
 * leaves a bare "!" (e.g. "wow!~" -> 2781, 0, 349): kept, it is what the model sees.
 *
 * Unicode classes, whitespace, str.lower and the HTML tables are generated from Python
 * (tools/gen_sam3_tokenizer_tables.py; versions in sam3_tables_versions).
 *
 * html.unescape: exact (every html5 named reference, with and without ';', the longest-
 * prefix rule, numeric references with Python's replacements and removals).
 *
 * ftfy.fix_text (ftfy 6.1.1, default config) is NOT re-implemented in general. Covered,
 * in ftfy's order and repeated until the text stops changing, per '\n'-ended segment:
 *   * its HTML unescaping when the text has no '<' so far (html5 names ending in ';',
 *     its upper-cased names such as "&EACUTE;", whole numeric references);
 *   * mojibake, only these UTF-8-read-as-Windows-1252/Latin-1 sequences, which ftfy
 *     repairs in any context: "Ã©"-style pairs (Â or Ã + one byte 80..BF: U+0080..U+00FF,
 *     except bytes 85 8C 8E 92 9C A5), "â€"+byte (U+2000..U+203F: ’ “ ” – — …),
 *     "â‚¬" (€) and "ðŸ"+2 bytes (U+1F000..U+1FFFF: emoji);
 *   * C1 controls U+0080..U+009F read as Windows-1252; Latin ligatures and digraphs
 *     (ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ ŉ Ǆ..ǌ Ǳ..ǳ); halfwidth/fullwidth forms (U+FF01..U+FFEF, per
 *     character) and U+3000 -> space; curly quotes (U+02BC, U+2018..U+201F) -> ' and ";
 *     line breaks; ANSI terminal escapes; the control characters ftfy removes.
 * Not covered (the C output can differ from Python's on such text): ftfy's heuristic
 * mojibake repair of anything else (other leads, e.g. "Ð¿Ñ€" Cyrillic or "Å¡" Czech,
 * "â„¢", sloppy Windows-1250/1251/..., MacRoman, cp437, "Ã " with a plain space,
 * replace_lossy_sequences); ftfy's judgement of a whole line (next to characters it
 * reads as mojibake of another code page, such as Greek capitals, "İ" or runs of
 * accented capitals and symbols, it may leave the sequences above alone, or repair more,
 * where the C port repairs exactly them); and the final NFC normalisation: text not already in NFC
 * (decomposed accents "e"+U+0301, Hangul jamo, singletons such as U+212B ANGSTROM SIGN,
 * halfwidth katakana followed by a voicing mark) is tokenised as it is. Plain ASCII and
 * NFC text without such sequences is unaffected by ftfy, so the port is exact there.
 *
 * Memory: everything is allocated at load. One call handles at most
 * SAM3_TOKENIZER_MAX_INPUT bytes: longer input is cut at the last whole UTF-8 character
 * before that (SAM3_TOK_INPUT_CUT), far beyond what 32 tokens can hold. A tokenizer is
 * used by one thread at a time (its buffers are shared by the calls).
 */
#ifndef SAMC_SAM3_TOKENIZER_H
#define SAMC_SAM3_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

#include "model/samc.h"

#define SAM3_CONTEXT_LENGTH 32
#define SAM3_SOT_ID 49406
#define SAM3_EOT_ID 49407
#define SAM3_VOCAB_SIZE 49408
#define SAM3_N_MERGES 48894          /* lines 1..48894 of bpe_simple_vocab_16e6.txt */
#define SAM3_TOKENIZER_MAX_INPUT 8192
/* safetensors metadata key of a model file that carries its vocabulary: the merge
 * lines 1..48894 of the official file (no "#version" header) joined with '\n'. */
#define SAM3_MERGES_META_KEY "tokenizer.bpe_merges"

/* Flags a tokenizing call reports. */
enum {
    SAM3_TOK_TRUNCATED = 1,   /* more tokens than the context length: cut, last = EOT */
    SAM3_TOK_INPUT_CUT = 2,   /* input longer than SAM3_TOKENIZER_MAX_INPUT bytes: cut */
    SAM3_TOK_BAD_UTF8 = 4,    /* invalid UTF-8 bytes were replaced by U+FFFD */
};

typedef struct sam3_tokenizer sam3_tokenizer;

/* From the 48894 merge lines ("a b", '\n'-separated, optional final '\n'; no header line),
 * as the model metadata holds them. NULL with err filled on a wrong line count or a
 * malformed line. */
sam3_tokenizer *sam3_tokenizer_load_merges(const char *text, size_t len, samc_error *err);
/* From the official bpe_simple_vocab_16e6.txt.gz: its first line is the "#version"
 * header, the next 48894 lines are used, the rest ignored (as the official code does). */
sam3_tokenizer *sam3_tokenizer_load_gz(const char *path, samc_error *err);
void sam3_tokenizer_free(sam3_tokenizer *t);

/* Tokenizes utf8[len] (need not be NUL-terminated; NUL bytes are text) into
 * ids_out[context_length] as above; context_length >= 1. n_tokens_untruncated (may be
 * NULL): 2 + the number of BPE tokens. flags (may be NULL): SAM3_TOK_*. */
int sam3_tokenize(sam3_tokenizer *t, const char *utf8, size_t len, int context_length, int32_t *ids_out,
                  int *n_tokens_untruncated, unsigned *flags, samc_error *err);

/* The model's padding mask: mask[i] = ids[i] == 0 (1 = masked), as VETextEncoder does. */
void sam3_pad_mask(const int32_t *ids, int n, int32_t *mask);

/* For debugging and the tests. The cleaned text as UTF-8 into out[out_size] (NUL-
 * terminated; -1 if it does not fit). */
int sam3_tokenizer_clean(sam3_tokenizer *t, const char *utf8, size_t len, char *out, size_t out_size,
                         unsigned *flags, samc_error *err);
/* Calls fn for each regex piece in order: the piece's UTF-8 and its BPE ids. fn returns
 * 0 to go on, non-zero to stop (the call then returns that value). */
typedef int (*sam3_piece_fn)(void *ctx, const char *piece, size_t piece_len, const int32_t *ids, int n_ids);
int sam3_tokenize_pieces(sam3_tokenizer *t, const char *utf8, size_t len, sam3_piece_fn fn, void *ctx,
                         unsigned *flags, samc_error *err);
/* The vocabulary entry of an id ("roof</w>", "Ã©", "<start_of_text>"), NULL if out of range. */
const char *sam3_tokenizer_token(const sam3_tokenizer *t, int32_t id);
/* The official decode: token strings joined, mapped back to bytes, decoded as UTF-8
 * with U+FFFD for invalid bytes, "</w>" -> " ". NUL-terminated in out; -1 if it does not
 * fit or an id is out of range. A debugging aid: unlike tokenizing, it allocates. */
int sam3_tokenizer_decode(const sam3_tokenizer *t, const int32_t *ids, int n, char *out, size_t out_size,
                          samc_error *err);

#endif
