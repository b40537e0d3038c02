/* kernels/cuda/variants.cu: the backend's switches (kernels/cuda/variants.txt, compiled in
 * as $(BUILD)/gen/kernels/cuda/variants.inc by the Makefile). Per switch, at create:
 * SAMC_CUDA_VARIANT_<NAME> when set (it must be one of the switch's values), else the
 * `choose` line for the device's compute capability, else the switch's first value. The
 * one place that reads them (cuda_variants_read) turns each into the field its kernels
 * test, so `make gpu-check` times every switch of the backend through the same names. */
#include "kernels/cuda/cuda_common.cuh"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name, *values; /* values: space-separated, the first is the default */
} variant_switch;

typedef struct {
    const char *name;
    int sm;
    const char *value;
} variant_choice;

#define SAMC_VARIANT_SWITCH(name, values) { name, values },
#define SAMC_VARIANT_CHOOSE(name, sm, value)
static const variant_switch g_switches[] = {
#include "kernels/cuda/variants.inc"
    { NULL, NULL }
};
#undef SAMC_VARIANT_SWITCH
#undef SAMC_VARIANT_CHOOSE

#define SAMC_VARIANT_SWITCH(name, values)
#define SAMC_VARIANT_CHOOSE(name, sm, value) { name, sm, value },
static const variant_choice g_choices[] = {
#include "kernels/cuda/variants.inc"
    { NULL, 0, NULL }
};
#undef SAMC_VARIANT_SWITCH
#undef SAMC_VARIANT_CHOOSE

/* Whether `v` is one of the space-separated words of `list`. */
static int listed(const char *list, const char *v) {
    size_t n = strlen(v);
    for (const char *p = list; *p;) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, " ");
        if (len && len == n && !strncmp(p, v, n)) return 1;
        p += len;
    }
    return 0;
}

int cuda_variant(samc_cuda_ctx *c, const char *name, char *out, size_t n) {
    const variant_switch *s = g_switches;
    while (s->name && strcmp(s->name, name)) s++;
    if (!s->name) {
        snprintf(out, n, "?");
        return cuda_fail(c, __FILE__, __LINE__, name, "not a switch of kernels/cuda/variants.txt");
    }
    char env[96];
    snprintf(env, sizeof env, "SAMC_CUDA_VARIANT_%s", name);
    const char *v = getenv(env);
    if (v && *v) {
        snprintf(out, n, "%s", v);
        if (listed(s->values, v)) return 0;
        char why[sizeof env + 40 + 16 + 150 + 2]; /* room for every part the format allows */
        snprintf(why, sizeof why, "%s=%.40s is not one of: %.150s", env, v, s->values);
        return cuda_fail(c, __FILE__, __LINE__, "variants", why);
    }
    for (const variant_choice *ch = g_choices; ch->name; ch++)
        if (!strcmp(ch->name, name) && ch->sm == c->cc) {
            snprintf(out, n, "%s", ch->value);
            return 0;
        }
    size_t len = strcspn(s->values, " ");
    snprintf(out, n, "%.*s", (int)len, s->values);
    return 0;
}

/* Switch NAME as the index of its value among `values` (NULL-terminated, in the order of
 * variants.txt); -1 (error recorded) when variants.txt and this list disagree. */
static int variant_index(samc_cuda_ctx *c, const char *name, const char *const *values) {
    char v[32];
    if (cuda_variant(c, name, v, sizeof v)) return -1;
    for (int k = 0; values[k]; k++)
        if (!strcmp(v, values[k])) return k;
    char why[128];
    snprintf(why, sizeof why, "value %.31s of variants.txt has no kernel in variants.cu", v);
    return cuda_fail(c, __FILE__, __LINE__, name, why);
}

int cuda_variants_read(samc_cuda_ctx *c) {
    static const char *const graphs[] = { "on", "off", NULL };
    /* attention on 16-bit q, k, v: the tensor-core flash kernel, or the fp32 FMA one */
    static const char *const attn[] = { "tc", "fma", NULL };
    /* queries per block of the tensor-core kernel: 64 (4 warps) or 128 (8 warps) */
    static const char *const attn_bq[] = { "64", "128", NULL };
    /* few queries, many keys (the decoder's token -> image): keys split over blocks */
    static const char *const splitkv[] = { "auto", "off", NULL };
    /* the mask decoder's activations in the reduced modes: fp32 (accurate), or 16-bit */
    static const char *const decoder[] = { "fp32", "lowp", NULL };
    /* 16-bit linear: cublasGemmEx + own epilogue pass, cuBLASLt with bias / residual, our
     * tensor-core GEMM with the whole epilogue, or cuBLASLt but ours where GELU follows
     * (the order of cuda_common.cuh's CUDA_GEMM_*) */
    static const char *const gemm[] = { "gemmex", "lt", "tc", "lt_tc", NULL };
    /* a convolution with a long reduction in the reduced modes: im2col + 16-bit GEMM on
     * the tensor cores, or the direct fp32 FMA kernel (conv.cu) */
    static const char *const conv[] = { "gemm", "direct", NULL };
    int g = variant_index(c, "GRAPHS", graphs);
    c->sw.attn = variant_index(c, "ATTN", attn);
    c->sw.attn_bq128 = variant_index(c, "ATTN_BQ", attn_bq);
    c->sw.splitkv_off = variant_index(c, "SPLITKV", splitkv);
    c->sw.decoder_lowp = variant_index(c, "DECODER", decoder);
    c->sw.gemm = variant_index(c, "GEMM", gemm);
    c->sw.conv_direct = variant_index(c, "CONV", conv);
    c->use_graphs = g == 0;
    int bad = g < 0 || c->sw.attn < 0 || c->sw.attn_bq128 < 0 || c->sw.splitkv_off < 0 || c->sw.decoder_lowp < 0 ||
              c->sw.gemm < 0 || c->sw.conv_direct < 0;
    return bad ? -1 : 0;
}
