/* convert/sam3_vocab.h: the SAM3 BPE vocabulary a converted model file carries.
 *
 * Metadata key SAM3_VOCAB_META_KEY holds the merge lines 1..48894 of the official CLIP
 * file bpe_simple_vocab_16e6.txt.gz (no "#version" header, no final newline) joined with
 * '\n': the format model/sam3/tokenizer.h loads (sam3_tokenizer_load_merges). */
#ifndef SAMC_SAM3_VOCAB_H
#define SAMC_SAM3_VOCAB_H
#include <stddef.h>

#include "model/samc.h"

#define SAM3_VOCAB_META_KEY "tokenizer.bpe_merges"
#define SAM3_VOCAB_MERGES 48894

/* Reads the vocabulary file (the official .gz, its unpacked text, or CLIP's merges.txt:
 * a "#version" header line, then the merges) and returns its merges 1..48894 joined with
 * '\n' in *merges (malloc'd, NUL-terminated; *len bytes without the NUL). Fails with a
 * message naming the file when it cannot be read, is not a merges file, has fewer merge
 * lines than SAM3 uses, or its merges are not the official ones (sha256). */
int sam3_vocab_read(const char *path, char **merges, size_t *len, samc_error *err);

/* sha256 of merges text (as stored in the metadata) into sha_hex; 1 when it is the
 * official vocabulary, else 0. */
int sam3_vocab_check(const char *merges, size_t len, char sha_hex[65]);

#endif
