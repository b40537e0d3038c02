/* kernels/cuda/variants.cu: the backend's switches (kernels/cuda/variants.txt, compiled in
 * as $(BUILD)/gen/kernels/cuda/variants.inc by the Makefile). Per switch, at create:
 * SAMC_CUDA_VARIANT_<NAME> when set (it must be one of the switch's values), else the
 * `choose` line for the device's compute capability, else the switch's first value. */
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
        char why[256];
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
