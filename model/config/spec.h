/* model/config/spec.h: a checkpoint's state-dict specification (every tensor name and
 * shape, in the order the official module's state_dict() yields them) and the matcher
 * that compares a weight file's tensors with it.
 *
 * Each model family's config file (sam2_config.c, ...) derives its specification from the
 * official hyper-parameters with the spec_* builders below, one builder per PyTorch
 * module type (nn.Linear, nn.LayerNorm, nn.Conv2d, MLP). The same specification serves
 * three readers: the loader (which config is this file? which key is missing?), the
 * converter (is this an official checkpoint?) and the synthetic-weight writer (what to
 * write). This folder is the leaf of the model layer: it uses nothing else of samc.
 *
 * Errors: functions return 0, or -1 with a message in err (SPEC_ERRMSG bytes). */
#ifndef SAMC_CONFIG_SPEC_H
#define SAMC_CONFIG_SPEC_H
#include <stddef.h>
#include <stdint.h>

#define SPEC_MAX_DIMS 8
#define SPEC_NAME_MAX 128
#define SPEC_ERRMSG 512

typedef struct {
    char name[SPEC_NAME_MAX];
    int ndim;
    int64_t shape[SPEC_MAX_DIMS];
    int64_t numel;
} spec_entry;

/* Collects entries; the first failure (out of memory, over-long name) sticks and is
 * reported by spec_builder_finish. */
typedef struct {
    spec_entry *e;
    int n, cap;
    int failed;
    char err[SPEC_ERRMSG];
} spec_builder;

/* Appends one tensor; the name is printf-formatted. */
void spec_add(spec_builder *b, int ndim, const int64_t *dims, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define SPEC_DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define SPEC_ADD1(b, a, ...) spec_add(b, 1, SPEC_DIMS(a), __VA_ARGS__)
#define SPEC_ADD2(b, a0, a1, ...) spec_add(b, 2, SPEC_DIMS(a0, a1), __VA_ARGS__)
#define SPEC_ADD3(b, a0, a1, a2, ...) spec_add(b, 3, SPEC_DIMS(a0, a1, a2), __VA_ARGS__)
#define SPEC_ADD4(b, a0, a1, a2, a3, ...) spec_add(b, 4, SPEC_DIMS(a0, a1, a2, a3), __VA_ARGS__)

/* Module prefixes: p must hold 2 * SPEC_NAME_MAX bytes (an over-long final name is
 * caught by spec_add). */
void spec_prefix(char *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* nn.Linear(in, out): weight [out, in], bias [out] (bias = 0: no bias tensor). */
void spec_linear(spec_builder *b, const char *prefix, int in, int out, int bias);
/* nn.LayerNorm / LayerNorm2d / GroupNorm(dim): weight and bias [dim]. */
void spec_norm(spec_builder *b, const char *prefix, int dim);
/* nn.Conv2d(in, out, k, groups): weight [out, in / groups, k, k], bias [out] (bias = 0: none). */
void spec_conv(spec_builder *b, const char *prefix, int in, int out, int k, int groups, int bias);
/* nn.ConvTranspose2d(in, out, k): weight [in, out, k, k], bias [out]. */
void spec_conv_transpose(spec_builder *b, const char *prefix, int in, int out, int k);
/* An MLP of `layers` nn.Linear named <prefix>.layers.<i>: in -> hidden ... -> out
 * (sam2_utils.MLP and sam3's model_misc.MLP). */
void spec_mlp(spec_builder *b, const char *prefix, int in, int hidden, int out, int layers);
/* Ends the build: *out (malloc'd, free with spec_free) and *n, or -1 with b's message. */
int spec_builder_finish(spec_builder *b, spec_entry **out, int *n, char *err);
void spec_free(spec_entry *e);

/* FNV-1a 64 of a tensor name: the matcher's hash, and the seed of samc-synth-v1. */
uint64_t spec_fnv1a64(const char *s);

/* How a file's tensors compare with one specification (spec_detect's report). */
typedef struct {
    int matched, missing, unexpected, mismatched, duplicated;
    int n_required, matched_required;
    char first_missing[SPEC_NAME_MAX];
    const char *first_unexpected, *first_mismatch, *first_duplicate;
    int mismatch_spec;          /* spec index of first_mismatch */
    int mismatch_input;         /* input index of first_mismatch */
} spec_match_report;

/* Config detection over a family's configs: build(i, ...) makes config i's spec (i in
 * [0, n_configs)); `required` says which entries a file must have (NULL: all), the others
 * may be present or absent (the video-only tensors `samc convert --image-only` drops,
 * SAM3's computed RoPE tables). Returns the index of the first config the tensors match exactly, or
 * -1 with, for the closest config (most matched tensors), its index in *closest, its
 * report in *r and "; tensor 'x' has shape [..], expected [..]; missing key 'y'; ..."
 * (the first problem of each kind) in detail[detail_size]; -2 with err on failure. */
typedef int (*spec_build_fn)(int index, spec_entry **out, int *n, char *err);
int spec_detect(int n_configs, spec_build_fn build, int (*required)(const char *name), const char *const *names,
                const int64_t *const *shapes, const int *ndims, int n, int *closest, spec_match_report *r,
                char *detail, size_t detail_size, char *err);

#endif
