/* tools/cmd_synth.c: `samc synth`: samc-synth-v1 synthetic weights for one config. */
#include <stdio.h>
#include <string.h>

#include "tools/cli_util.h"
#include "tools/commands.h"
#include "convert/convert.h"
#include "model/samc.h"

void cmd_synth_help(FILE *f) {
    fprintf(f,
"usage: samc synth --config NAME -o FILE.safetensors\n"
"\n"
"Writes the deterministic samc-synth-v1 weights (shared/golden/README.md, section 1) of\n"
"one SAM2.1 or SAM3 config as F32 safetensors with every tensor of the official\n"
"checkpoint (SAM3: the image model's, without the RoPE tables computed at load).\n"
"They are not trained: masks are meaningless, but every number is reproducible, which\n"
"is what tests and benchmarks need when no real checkpoint is at hand.\n"
"\n"
"  --config NAME   SAM2.1: micro (tests only, 256x256 input), tiny, small, base_plus, large\n"
"                  SAM3: sam3 (official, 1008x1008, 3.4 GB), sam3_micro (tests only, 252x252)\n"
"  -o, --out FILE  output file (written to FILE.tmp, then renamed)\n"
"\n"
"example:\n"
"  samc synth --config tiny -o weights/tiny_synth.safetensors\n"
"  samc synth --config sam3_micro -o sam3_micro.safetensors\n");
}

static int known_config(const char *name) {
    static const char *names[] = { "micro", "tiny", "small", "base_plus", "large", "sam3", "sam3_micro" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) return 1;
    return 0;
}

int cmd_synth(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "synth");
    const char *config = NULL, *out = NULL, *arg;
    while ((arg = cli_next(&a)) != NULL) {
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_synth_help(stdout);
            return CLI_OK;
        } else if (!strcmp(arg, "--config")) {
            if (!(config = cli_value(&a))) return CLI_USAGE;
        } else if (!strcmp(arg, "-o") || !strcmp(arg, "--out")) {
            if (!(out = cli_value(&a))) return CLI_USAGE;
        } else {
            cli_refuse(&a, arg);
            return CLI_USAGE;
        }
    }
    if (!config || !out) {
        cli_missing(&a, !config ? "--config NAME" : "-o FILE");
        return CLI_USAGE;
    }
    if (!known_config(config)) {
        cli_error("--config", "unknown config '%s' (micro, tiny, small, base_plus, large, sam3, sam3_micro)", config);
        return CLI_USAGE;
    }
    if (cli_check_writable("-o", out) != 0) return CLI_FAIL;
    samc_error err = { 0 };
    double t0 = cli_now_ms();
    if (samc_synth_write(config, out, &err) != 0) {
        cli_lib_error("synth", &err);
        return CLI_FAIL;
    }
    printf("wrote %s (samc-synth-v1, config %s) in %.1f s\n", out, config, (cli_now_ms() - t0) / 1e3);
    return CLI_OK;
}
