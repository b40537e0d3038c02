/* tools/cmd_convert.c: `samc convert`: an official checkpoint (SAM2.1 or SAM3, .pt or the
 * transformers layout) to one samc safetensors file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli_util.h"
#include "tools/commands.h"
#include "convert/convert.h"
#include "model/samc.h"

void cmd_convert_help(FILE *f) {
    fprintf(f,
"usage: samc convert IN -o OUT.safetensors [--dtype f32|f16|bf16] [--image-only]\n"
"                   [--vocab bpe_simple_vocab_16e6.txt.gz]\n"
"\n"
"Reads an official checkpoint without Python, checks it is a complete state dict of a\n"
"known config (naming the closest one and the first bad key otherwise), and writes it as\n"
"safetensors, which loads faster (mmap) and can be smaller:\n"
"  SAM2.1  sam2.1_hiera_*.pt (a torch.save zip). `samc segment` also reads .pt directly.\n"
"  SAM3    sam3.pt (facebook/sam3), or the HuggingFace transformers layout: a folder\n"
"          with model.safetensors and config.json (what Sam3Model.from_pretrained\n"
"          reads). The output has the official Sam3Image names, no RoPE tables (samc\n"
"          computes them) and, with --vocab, the text tokenizer's vocabulary, so that\n"
"          the one file is the whole model. The transformers layout has no point-prompt\n"
"          weights: such a file runs text and box prompts only.\n"
"\n"
"  -o, --out FILE   output file (written to FILE.tmp, then renamed)\n"
"  --dtype D        f32 (default, exact), f16 or bf16 (half the size; round to nearest even)\n"
"  --image-only     drop the video-side tensors, unused for images (SAM2.1 memory\n"
"                   modules; the SAM3 tracker)\n"
"  --vocab FILE     SAM3: the official bpe_simple_vocab_16e6.txt.gz (or SAMC_VOCAB) to\n"
"                   embed; without it the file needs --vocab whenever it is run\n"
"\n"
"examples:\n"
"  samc convert sam2.1_hiera_large.pt -o large_bf16.safetensors --dtype bf16 --image-only\n"
"  samc convert sam3.pt -o sam3.safetensors --vocab bpe_simple_vocab_16e6.txt.gz --image-only\n"
"  samc convert ./sam3-hf/ -o sam3.safetensors --vocab bpe_simple_vocab_16e6.txt.gz\n");
}

static void print_report(const char *out, const char *dtype, int image_only, const samc_convert_report *r,
                         const char *vocab, double seconds) {
    printf("wrote %s: %s '%s' from the %s layout, %d tensors (%s%s) in %.1f s\n", out, r->family, r->config,
           r->layout, r->n_written, dtype, image_only ? ", image path only" : "", seconds);
    if (strcmp(r->family, "SAM3") != 0) return;
    if (r->n_video_kept) printf("  video side kept: %d tensors (--image-only drops them)\n", r->n_video_kept);
    if (r->n_video_dropped) printf("  video side dropped: %d tensors\n", r->n_video_dropped);
    if (r->first_unused[0])
        printf("  tensors the image model does not use went with the video side (first: %s)\n", r->first_unused);
    if (r->points_zeroed)
        printf("  note: the transformers layout has no point-prompt weights; this file runs text and box prompts only\n");
    fflush(stdout);
    if (r->vocab_embedded) printf("  vocabulary: embedded from %s\n", vocab);
    else
        fprintf(stderr, "samc: notice: no vocabulary embedded (give --vocab bpe_simple_vocab_16e6.txt.gz or set "
                        "SAMC_VOCAB): text prompts on %s will need --vocab at run time\n", out);
}

int cmd_convert(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "convert");
    const char *in = NULL, *out = NULL, *arg;
    samc_convert_options opt = { .dtype = "f32" };
    while ((arg = cli_next(&a)) != NULL) {
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_convert_help(stdout);
            return CLI_OK;
        } else if (!strcmp(arg, "-o") || !strcmp(arg, "--out")) {
            if (!(out = cli_value(&a))) return CLI_USAGE;
        } else if (!strcmp(arg, "--dtype")) {
            if (!(opt.dtype = cli_value(&a))) return CLI_USAGE;
            if (strcmp(opt.dtype, "f32") && strcmp(opt.dtype, "f16") && strcmp(opt.dtype, "bf16")) {
                cli_error("--dtype", "'%s' is not one of f32, f16, bf16", opt.dtype);
                return CLI_USAGE;
            }
        } else if (!strcmp(arg, "--image-only")) {
            if (cli_no_value(&a) != 0) return CLI_USAGE;
            opt.image_only = 1;
        } else if (!strcmp(arg, "--vocab")) {
            if (!(opt.vocab = cli_value(&a))) return CLI_USAGE;
        } else if (!cli_is_flag(arg) && !in) {
            in = arg;
        } else {
            cli_refuse(&a, arg);
            return CLI_USAGE;
        }
    }
    if (!in || !out) {
        cli_missing(&a, !in ? "IN" : "-o OUT.safetensors");
        return CLI_USAGE;
    }
    if (cli_check_writable("-o", out) != 0) return CLI_FAIL;
    /* SAMC_VOCAB applies to SAM3 only: a SAM2.1 conversion ignores it. */
    const char *env = getenv("SAMC_VOCAB");
    int from_env = !opt.vocab && env && *env;
    if (from_env) {
        opt.vocab = env;
        opt.vocab_if_sam3 = 1;
    }
    samc_convert_report rep;
    samc_error err = { 0 };
    double t0 = cli_now_ms();
    if (samc_convert_ex(in, out, &opt, &rep, &err) != 0) {
        cli_lib_error(from_env ? "convert (vocabulary from SAMC_VOCAB)" : "convert", &err);
        return CLI_FAIL;
    }
    print_report(out, opt.dtype, opt.image_only, &rep, from_env ? "SAMC_VOCAB" : opt.vocab, (cli_now_ms() - t0) / 1e3);
    return CLI_OK;
}
