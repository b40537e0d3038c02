/* tests/test_data.h: deterministic random inputs for the op tests
 * (test_backend_ops.c). A file may #define TEST_RNG_SEED before including it. */
#ifndef SAMC_TEST_DATA_H
#define SAMC_TEST_DATA_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#endif

static uint64_t rng_state = TEST_RNG_SEED;
static float frand(void) { /* uniform in [-1, 1), xorshift64 */
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rand_buf(size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}
static float *zero_buf(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}
#endif
