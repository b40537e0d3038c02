/* model/sam3/tokenizer_text.h: the text side of the SAM3 tokenizer (internal to
 * model/sam3/tokenizer*.c): UTF-8 in, the official cleaning, the pre-tokenisation regex.
 *
 * Text is handled as arrays of code points (uint32_t), in buffers the tokenizer plans
 * once; every writer checks its capacity, so a full buffer cuts the text (and says so)
 * instead of overflowing. See tokenizer.h for what the cleaning covers. */
#ifndef SAMC_SAM3_TOKENIZER_TEXT_H
#define SAMC_SAM3_TOKENIZER_TEXT_H
#include <stddef.h>
#include <stdint.h>

/* A code point buffer with its capacity; `full` is set when a write did not fit. */
typedef struct {
    uint32_t *p;
    size_t n, cap;
    int full;
} sam3_cpbuf;

/* Decodes UTF-8 as Python's bytes.decode("utf-8", errors="replace") does: each maximal
 * ill-formed subpart becomes one U+FFFD. Returns how many replacements were made. */
int sam3_utf8_decode(const uint8_t *s, size_t len, sam3_cpbuf *out);
/* Appends the UTF-8 encoding of cp to out[*n] (capacity cap); 0, or -1 if it does not fit. */
int sam3_utf8_put(uint32_t cp, uint8_t *out, size_t cap, size_t *n);

/* The official clean_fn ("lower"), in place on text: ftfy.fix_text (the subset in
 * tokenizer.h), html.unescape twice, strip, whitespace runs to one space, strip,
 * str.lower(). work: three scratch buffers with text's capacity. text->full is set if
 * any step ran out of room. */
void sam3_text_clean(sam3_cpbuf *text, sam3_cpbuf work[3]);

/* The next piece of the pre-tokenisation regex in t[*pos..n): returns 1 with the piece
 * in t[*start, *end), or 0 at the end. Skipped code points (whitespace, and the few
 * that no alternative matches) are passed over. */
int sam3_next_piece(const uint32_t *t, size_t n, size_t *pos, size_t *start, size_t *end);

#endif
