/* loader/sha256.h: SHA-256 (FIPS 180-4), small and dependency-free.
 *
 * Used to identify checkpoint files (the official SAM2.1 .pt files are checked against
 * their published hashes, and converted files record the hash of their source). */
#ifndef SAMC_SHA256_H
#define SAMC_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t n_bytes;     /* total bytes fed so far */
    uint8_t block[64];
    size_t fill;          /* bytes waiting in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
void sha256_final(sha256_ctx *c, uint8_t digest[32]);

/* One-shot helpers; hex is 64 lowercase hex digits plus the terminating NUL. */
void sha256(const void *data, size_t n, uint8_t digest[32]);
void sha256_hex(const void *data, size_t n, char hex[65]);
void sha256_to_hex(const uint8_t digest[32], char hex[65]);

/* The x86 SHA-extension path is used when the CPU has it. sha256_use_accel(0) forces the
 * portable code (for tests and benchmarks; process-wide); returns whether the
 * accelerated path is now in use. */
int sha256_use_accel(int enable);

#endif
