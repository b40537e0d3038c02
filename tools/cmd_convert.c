/* tools/cmd_convert.c: `samc convert`: an official .pt checkpoint to safetensors. */
#include <stdio.h>
#include <string.h>

#include "tools/cli_util.h"
#include "tools/commands.h"
#include "convert/convert.h"
#include "model/samc.h"

void cmd_convert_help(FILE *f) {
    fprintf(f,
"usage: samc convert IN.pt -o OUT.safetensors [--dtype f32|f16|bf16] [--image-only]\n"
"\n"
"Reads an official SAM2.1 checkpoint (sam2.1_hiera_*.pt, a torch.save zip) without\n"
"Python, checks it is a complete SAM2.1 state dict, and writes it as safetensors, which\n"
"loads faster (mmap) and can be smaller. `samc segment` also reads .pt directly.\n"
"\n"
"  -o, --out FILE   output file (written to FILE.tmp, then renamed)\n"
"  --dtype D        f32 (default, exact), f16 or bf16 (half the size)\n"
"  --image-only     drop the memory-side (video) tensors, unused for images\n"
"\n"
"example:\n"
"  samc convert sam2.1_hiera_large.pt -o large_bf16.safetensors --dtype bf16 --image-only\n");
}

int cmd_convert(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "convert");
    const char *in = NULL, *out = NULL, *dtype = "f32", *arg;
    int image_only = 0;
    while ((arg = cli_next(&a)) != NULL) {
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_convert_help(stdout);
            return CLI_OK;
        } else if (!strcmp(arg, "-o") || !strcmp(arg, "--out")) {
            if (!(out = cli_value(&a))) return CLI_USAGE;
        } else if (!strcmp(arg, "--dtype")) {
            if (!(dtype = cli_value(&a))) return CLI_USAGE;
            if (strcmp(dtype, "f32") && strcmp(dtype, "f16") && strcmp(dtype, "bf16")) {
                cli_error("--dtype", "'%s' is not one of f32, f16, bf16", dtype);
                return CLI_USAGE;
            }
        } else if (!strcmp(arg, "--image-only")) {
            if (cli_no_value(&a) != 0) return CLI_USAGE;
            image_only = 1;
        } else if (!cli_is_flag(arg) && !in) {
            in = arg;
        } else {
            cli_refuse(&a, arg);
            return CLI_USAGE;
        }
    }
    if (!in || !out) {
        cli_missing(&a, !in ? "IN.pt" : "-o OUT.safetensors");
        return CLI_USAGE;
    }
    if (cli_check_writable("-o", out) != 0) return CLI_FAIL;
    samc_error err = { 0 };
    double t0 = cli_now_ms();
    if (samc_convert(in, out, dtype, image_only, &err) != 0) {
        cli_lib_error("convert", &err);
        return CLI_FAIL;
    }
    printf("wrote %s (%s%s) in %.1f s\n", out, dtype, image_only ? ", image path only" : "",
           (cli_now_ms() - t0) / 1e3);
    return CLI_OK;
}
