/* tools/cmd_info.c: `samc info FILE`: what a weight file holds and what samc makes of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli_util.h"
#include "tools/commands.h"
#include "tools/report.h"
#include "convert/convert.h"
#include "model/samc.h"

void cmd_info_help(FILE *f) {
    fprintf(f,
"usage: samc info FILE [--tensors] [--device D] [--precision P] [--backend B] [--threads N]\n"
"\n"
"Loads a weight file (.safetensors or an official .pt checkpoint) as `samc segment`\n"
"would and prints the detected SAM2.1 config, input size, parameter count, the\n"
"tensors by dtype and by module, the file's metadata, and the memory samc plans.\n"
"For a SAM3 file (sam3.pt, a `samc convert` output, the transformers layout) it\n"
"describes the file itself: config, parameters by module, whether the text\n"
"vocabulary is embedded, whether point prompts can run, the video-side tensors.\n"
"With --device cuda it prints the device-memory plan (weights, 16-bit weights, scratch,\n"
"per image), computed without running anything there: it needs no GPU.\n"
"\n"
"  --tensors     also list every tensor: name, dtype, shape\n"
"  --device D    cpu (default), cuda, or auto: CUDA when a GPU is usable, else the CPU\n"
"                with a notice on stderr (or SAMC_DEVICE)\n"
"  --precision P fp32 (default); bf16 (CUDA, sm_80+) or fp16 (CUDA, sm_60+): matrix\n"
"                products in 16 bits with fp32 accumulation (or SAMC_PRECISION);\n"
"                bf16 also on a CPU with Intel AMX (Xeon 4th generation or later)\n"
"  --backend B   auto (default), ref, fast, cuda (or SAMC_BACKEND)\n"
"  --threads N   CPU threads\n"
"\n"
"examples:\n"
"  samc info sam2.1_hiera_tiny.pt\n"
"  samc info sam3.safetensors\n"
"  samc info tiny.safetensors --tensors | grep mask_decoder\n"
"  samc info sam2.1_hiera_large.safetensors --device cuda --precision bf16   # fits a 4 GB card?\n");
}

/* Tensor totals by dtype and by top-level module ("image_encoder", "memory_attention"...). */
#define INFO_MAX_GROUPS 32
typedef struct {
    char module[INFO_MAX_GROUPS][64];
    int64_t count[INFO_MAX_GROUPS], numel[INFO_MAX_GROUPS];
    int n;
} group_table;

#define INFO_MAX_META 64
typedef struct {
    group_table dtypes, modules;
    int list;
    int n_meta;
    char *meta[INFO_MAX_META];   /* "key  value" lines, printed after the tensors */
} info_ctx;

static void group_add(group_table *g, const char *key, size_t key_len, int64_t numel) {
    int i = 0;
    while (i < g->n && !(strlen(g->module[i]) == key_len && !strncmp(g->module[i], key, key_len)))
        i++;
    if (i == g->n) {
        if (g->n == INFO_MAX_GROUPS) i = g->n - 1;   /* the last row collects the rest */
        else {
            if (key_len >= sizeof g->module[i]) key_len = sizeof g->module[i] - 1;
            memcpy(g->module[i], key, key_len);
            g->module[i][key_len] = '\0';
            g->n++;
        }
    }
    g->count[i]++;
    g->numel[i] += numel;
}

/* The module of a tensor: its first name component, two for SAM3's "backbone" and
 * "transformer" (vision / language backbone, fusion encoder / decoder). */
static size_t module_len(const char *name) {
    const char *dot = strchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : strlen(name);
    if (dot && ((n == 8 && !strncmp(name, "backbone", 8)) || (n == 11 && !strncmp(name, "transformer", 11)))) {
        const char *dot2 = strchr(dot + 1, '.');
        if (dot2) n = (size_t)(dot2 - name);
    }
    return n;
}

static void on_tensor(void *vctx, const samc_tensor_desc *t) {
    info_ctx *c = vctx;
    group_add(&c->dtypes, t->dtype, strlen(t->dtype), t->numel);
    group_add(&c->modules, t->name, module_len(t->name), t->numel);
    if (!c->list) return;
    printf("  %-70s %-5s [", t->name, t->dtype);
    for (int i = 0; i < t->ndim; i++) printf("%s%lld", i ? ", " : "", (long long)t->shape[i]);
    printf("]\n");
}

static size_t count_lines(const char *s) {
    size_t n = *s != 0;
    for (; *s; s++) n += *s == '\n' && s[1];
    return n;
}

static void on_meta(void *vctx, const char *key, const char *value) {
    info_ctx *c = vctx;
    if (c->n_meta == INFO_MAX_META) return;
    size_t n = strlen(key) + strlen(value) + 32;
    char *line = malloc(n);
    if (!line) return;
    if (strlen(value) > 200)   /* the SAM3 vocabulary: a summary, not half a megabyte */
        snprintf(line, n, "  %-20s (%zu bytes, %zu lines)", key, strlen(value), count_lines(value));
    else
        snprintf(line, n, "  %-20s %s", key, value);
    c->meta[c->n_meta++] = line;
}

static void print_groups(const char *title, const group_table *g) {
    printf("%s:\n", title);
    for (int i = 0; i < g->n; i++)
        printf("  %-24s %6lld tensors %12lld values\n", g->module[i], (long long)g->count[i],
               (long long)g->numel[i]);
}

/* The backend, its scratch and (plan_only on CUDA) the device-memory plan. */
static void print_plan(const samc_model_info *info) {
    char backend[128];
    report_backend_text(info, backend, sizeof backend);
    printf("backend:     %s, %.1f MiB scratch planned\n", backend, (double)info->scratch_bytes / (1 << 20));
    if (!info->planned) return;
    printf("device plan: %.1f MiB for the model", (double)info->backend_bytes / (1 << 20));
    if (info->lowp_bytes)
        printf(" (%.1f MiB of it 16-bit: %.1f MiB linear weights kept in 16 bits only, %.1f MiB the 16-bit copy of "
               "the other weights and the conversion scratch)", (double)info->lowp_bytes / (1 << 20),
               (double)info->weights16_bytes / (1 << 20),
               (double)(info->lowp_bytes - info->weights16_bytes) / (1 << 20));
    printf(", + %.1f MiB per encoded image; the CUDA context (a few hundred MiB) comes on top\n",
           (double)info->image_bytes / (1 << 20));
}

/* What samc_model_load made of the file (SAM2.1). */
static void print_model(const char *path, samc_model *m) {
    samc_model_info info;
    samc_model_get_info(m, &info);
    printf("file:        %s\n", path);
    printf("config:      %s (image %dx%d, trunk embed dim %d, d_model %d)\n", info.config,
           info.image_size, info.image_size, info.embed_dim, info.d_model);
    printf("parameters:  %lld in %lld tensors (%.1f MiB as loaded)\n", (long long)info.n_params,
           (long long)info.n_tensors, (double)info.weight_bytes / (1 << 20));
    print_plan(&info);
}

/* A SAM3 file, described from its tensors and metadata. */
static void print_sam3(const char *path, const samc_sam3_file_info *s) {
    printf("file:        %s\n", path);
    if (s->config[0])
        printf("config:      SAM3 %s (image %dx%d), %s layout\n", s->config, s->image_size, s->image_size, s->layout);
    else
        printf("config:      SAM3, %s layout, no complete model: %s\n", s->layout, s->detail);
    printf("parameters:  %lld in %d image-model tensors%s\n", (long long)s->n_params, s->n_image,
           strcmp(s->layout, "official") ? "" : " (after removing 'detector.'; RoPE tables computed, not stored)");
    if (s->n_video) printf("video side:  %d tracker tensors (unused for images; samc convert --image-only drops them)\n", s->n_video);
    if (s->vocab > 0) printf("vocabulary:  embedded (tokenizer.bpe_merges: the official CLIP BPE merges)\n");
    else if (s->vocab < 0) printf("vocabulary:  embedded but NOT the official CLIP BPE merges (sha256 %s)\n", s->vocab_sha256);
    else printf("vocabulary:  none: text prompts need --vocab bpe_simple_vocab_16e6.txt.gz (or SAMC_VOCAB)\n");
    if (!s->points) printf("points:      no point-prompt weights (converted from the transformers layout)\n");
}

int cmd_info(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "info");
    const char *path = NULL, *arg;
    samc_options opt = { 0 };
    info_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    cli_compute compute;
    if (cli_compute_init(&compute) != 0) return CLI_USAGE;
    if (cli_debug_env()) opt.log = cli_log_stderr;
    while ((arg = cli_next(&a)) != NULL) {
        long n;
        int rc;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_info_help(stdout);
            return CLI_OK;
        } else if (!strcmp(arg, "--tensors")) {
            if (cli_no_value(&a) != 0) return CLI_USAGE;
            ctx.list = 1;
        } else if (!strcmp(arg, "--threads")) {
            if (cli_value_long(&a, 1, 4096, &n) != 0) return CLI_USAGE;
            opt.n_threads = (int)n;
        } else if ((rc = cli_compute_flag(&a, arg, &compute)) != 0) {
            if (rc < 0) return CLI_USAGE;
        } else if (!cli_is_flag(arg) && !path) {
            path = arg;
        } else {
            cli_refuse(&a, arg);
            return CLI_USAGE;
        }
    }
    if (!path) {
        cli_missing(&a, "FILE");
        return CLI_USAGE;
    }
    if (cli_compute_resolve(&compute, &opt) != 0) return CLI_USAGE;
    /* On CUDA, info reports the device-memory plan: computed without the device, so it
     * answers on any machine (will this model fit that card?). */
    opt.plan_only = opt.backend == SAMC_BACKEND_CUDA;
    samc_error err = { 0 };
    samc_sam3_file_info s3;
    if (samc_sam3_file_info_get(path, &s3, &err) != 0) {
        cli_lib_error("model", &err);
        return CLI_FAIL;
    }
    if (s3.is_sam3) {
        print_sam3(path, &s3);
        if (opt.plan_only && s3.config[0]) { /* the device plan needs the whole model */
            samc_model *m = samc_model_load(path, &opt, &err);
            if (!m) {
                cli_lib_error("model", &err);
                return CLI_FAIL;
            }
            samc_model_info info;
            samc_model_get_info(m, &info);
            print_plan(&info);
            samc_model_free(m);
        }
    } else {
        samc_model *m = samc_model_load(path, &opt, &err);
        if (!m) {
            cli_lib_error("model", &err);
            return CLI_FAIL;
        }
        print_model(path, m);
        samc_model_free(m);
    }
    if (ctx.list) printf("tensors:\n");
    int rc = samc_weights_describe(path, on_tensor, on_meta, &ctx, &err);
    if (rc == 0) {
        printf("metadata:\n");
        for (int i = 0; i < ctx.n_meta; i++) printf("%s\n", ctx.meta[i]);
        print_groups("dtypes in file", &ctx.dtypes);
        print_groups("modules in file", &ctx.modules);
    } else {
        cli_lib_error("describe", &err);
    }
    for (int i = 0; i < ctx.n_meta; i++) free(ctx.meta[i]);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
