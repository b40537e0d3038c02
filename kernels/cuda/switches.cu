/* kernels/cuda/switches.cu: the kernel variants of the compute core, chosen once at
 * create (kernels/cuda/variants.txt declares the same names and values; `make gpu-check`
 * times each value and records the winner per GPU generation there).
 *
 * A switch NAME takes $SAMC_CUDA_<NAME> when set (an unknown value fails the create with
 * the list of values), else its default: the first value. Choosing per compute
 * capability from variants.txt's `choose` lines is the reader of cuda_backend.cu
 * (kernels/cuda/NOTES.md, "Kernel variants"): it plugs in at cuda_switch_default. */
#include "kernels/cuda/cuda_common.cuh"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NAME, then its values (the default first), NULL-terminated; `off` the ctx field. */
typedef struct {
    const char *name;
    const char *values[4];
    size_t off;
} cuda_switch_def;

static const cuda_switch_def switch_defs[] = {
    /* attention on 16-bit q, k, v: the tensor-core flash kernel, or the fp32 FMA one */
    { "ATTN", { "tc", "fma", NULL }, offsetof(cuda_switches, attn) },
    /* queries per block of the tensor-core kernel: 64 (4 warps) or 128 (8 warps) */
    { "ATTN_BQ", { "64", "128", NULL }, offsetof(cuda_switches, attn_bq128) },
    /* few queries, many keys (the decoder's token -> image): keys split over blocks */
    { "SPLITKV", { "auto", "off", NULL }, offsetof(cuda_switches, splitkv_off) },
    /* the mask decoder's activations in the reduced modes: fp32 (accurate), or 16-bit */
    { "DECODER", { "fp32", "lowp", NULL }, offsetof(cuda_switches, decoder_lowp) },
};

/* The value index a device of compute capability cc takes when the environment says
 * nothing: the default for now (the variants.txt reader will consult its table here). */
static int cuda_switch_default(const cuda_switch_def *d, int cc) {
    (void)d;
    (void)cc;
    return 0;
}

int cuda_switches_read(samc_cuda_ctx *c) {
    for (size_t i = 0; i < sizeof switch_defs / sizeof switch_defs[0]; i++) {
        const cuda_switch_def *d = &switch_defs[i];
        char env[64];
        snprintf(env, sizeof env, "SAMC_CUDA_%s", d->name);
        const char *v = getenv(env);
        int idx = v && *v ? -1 : cuda_switch_default(d, c->cc);
        for (int k = 0; idx < 0 && k < 4 && d->values[k]; k++)
            if (!strcmp(v, d->values[k])) idx = k;
        if (idx < 0) {
            char why[200];
            snprintf(why, sizeof why, "%s=%.40s is not one of %s%s%s%s%s", env, v, d->values[0],
                     d->values[1] ? ", " : "", d->values[1] ? d->values[1] : "", d->values[2] ? ", " : "",
                     d->values[2] ? d->values[2] : "");
            return cuda_fail(c, __FILE__, __LINE__, "kernel variants", why);
        }
        *(int *)((char *)&c->sw + d->off) = idx;
    }
    return 0;
}
