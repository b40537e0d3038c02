/* util/gzip.h: reading a whole file that may be gzip-compressed (zlib reads a plain file
 * as it is), e.g. CLIP's bpe_simple_vocab_16e6.txt.gz or its unpacked text. */
#ifndef SAMC_UTIL_GZIP_H
#define SAMC_UTIL_GZIP_H
#include <stddef.h>

/* The decompressed bytes of path in a malloc'd buffer with a terminating NUL (not counted
 * in *len), at most max_bytes of them. Returns 0, or -1 with a message naming the file in
 * err (errlen bytes): cannot open, damaged or truncated gzip data, over max_bytes, out of
 * memory. *kind is set to 1 for a file that could not be opened or read, 2 for bad data,
 * 3 for out of memory (so callers can map it to their own status). */
int util_read_gz(const char *path, size_t max_bytes, char **out, size_t *len, int *kind, char *err, size_t errlen);

#endif
