/* tools/samc_main.c: the samc command line: dispatch, general help, `samc version`. */
#include <stdio.h>
#include <string.h>

#include "tools/cli_util.h"
#include "model/sam3/tokenizer_tables.h"
#include "tools/commands.h"
#include "model/samc.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *f);
    const char *summary;
} command;

static const command commands[] = {
    { "segment", cmd_segment, cmd_segment_help, "masks for point / box / mask prompts on one image" },
    { "find", cmd_find, cmd_find_help, "SAM3: every instance of a concept (\"roof\") or exemplar box" },
    { "everything", cmd_everything, cmd_everything_help, "all objects of an image: automatic mask generation" },
    { "mosaic", cmd_mosaic, cmd_mosaic_help, "segment a huge GeoTIFF in tiles: labels.tif, polygons, stats" },
    { "serve", cmd_serve, cmd_serve_help, "HTTP service and click-to-segment page (docs/api.md)" },
    { "info", cmd_info, cmd_info_help, "describe a weight file: config, sizes, tensors, metadata" },
    { "bench", cmd_bench, cmd_bench_help, "time the encoder and decoder stage by stage" },
    { "synth", cmd_synth, cmd_synth_help, "write samc-synth-v1 synthetic weights for a config" },
    { "convert", cmd_convert, cmd_convert_help, "convert an official .pt checkpoint to safetensors" },
    { "tokenize", cmd_tokenize, cmd_tokenize_help, "SAM3 text prompt to token ids (CLIP BPE)" },
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f) {
    fprintf(f,
        "samc %s: Segment Anything (SAM2.1, SAM3) image segmentation in C\n"
        "\n"
        "usage: samc <command> [options]     samc <command> --help for details\n"
        "\n"
        "commands:\n", SAMC_VERSION);
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
        "  version    version and build features\n"
        "  help       this list, or `samc help <command>`\n"
        "\n"
        "quick start:\n"
        "  samc synth --config tiny -o tiny.safetensors        # or convert a real checkpoint\n"
        "  samc segment truck.jpg --model tiny.safetensors --point 500,375\n"
        "\n"
        "environment:\n"
        "  SAMC_DEBUG=1      trace every load / inference stage on stderr (like --verbose)\n"
        "  SAMC_BACKEND=...  default backend (auto, ref, fast, cuda) when --backend is not given\n");
}

static int cmd_version(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: samc version\n\nPrints the samc version and the features compiled in.\n");
        return CLI_OK;
    }
    if (argc > 1) {
        cli_error("version", "unexpected argument '%s' (see samc --help)", argv[1]);
        return CLI_USAGE;
    }
    printf("samc %s\nfeatures: %s\n", SAMC_VERSION, samc_build_features());
    printf("sam3 tokenizer tables: %s\n", sam3_tables_versions);
    return CLI_OK;
}

static const command *find_command(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stdout);
        return CLI_OK;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        if (argc > 2) {
            const command *c = find_command(argv[2]);
            if (c) {
                c->help(stdout);
                return CLI_OK;
            }
            if (strcmp(argv[2], "version") != 0) {
                cli_error("help", "unknown command '%s' (see samc help)", argv[2]);
                return CLI_USAGE;
            }
            return cmd_version(2, (char *[]){ "version", "--help", NULL });
        }
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    const command *c = find_command(name);
    if (!c) {
        cli_error("samc", "unknown command '%s' (see samc help)", name);
        return CLI_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
