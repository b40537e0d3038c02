/* tools/cli_util.h: argument parsing and error reporting shared by the samc commands.
 *
 * Every user-facing error goes through cli_error(), which prints exactly one line
 *   samc: error: <what>: <detail>
 * on stderr. Parsers validate the whole string (no trailing junk, no overflow, finite
 * numbers) and either print that one line and return -1, or return 0. Commands then just
 * return a non-zero exit code, so a failure never prints twice.
 */
#ifndef SAMC_CLI_UTIL_H
#define SAMC_CLI_UTIL_H
#include <stddef.h>
#include <stdio.h>
#include "model/samc.h"

/* Exit codes: 0 success, 1 runtime failure (file, model, inference), 2 bad usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

void cli_error(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a library failure: "samc: error: <what>: <err->msg>". */
void cli_lib_error(const char *what, const samc_error *err);

/* Strict number parsing: the whole string must be one number. Return 0 or -1 (no output). */
int cli_parse_long(const char *s, long min, long max, long *out);
int cli_parse_float(const char *s, float *out);
/* A comma-separated list of exactly n floats ("1.5,2,3"). Returns -1 on a bad item or count. */
int cli_parse_floats(const char *s, float *out, int n, int *got);

typedef struct {
    float x, y;
    int label;        /* 1 foreground (default), 0 background */
} cli_point;

/* "X,Y" or "X,Y,L" with L 0 or 1. On failure writes why into `why` and returns -1. */
int cli_parse_point(const char *s, cli_point *p, char *why, size_t why_size);
/* "X0,Y0,X1,Y1" with X1 > X0 and Y1 > Y0. */
int cli_parse_box(const char *s, float box[4], char *why, size_t why_size);
/* "X0,Y0,X1,Y1" or "X0,Y0,X1,Y1,L" with L 1 (default) or 0, for exemplar boxes. */
int cli_parse_box_label(const char *s, float box[4], int *label, char *why, size_t why_size);
/* Whether (x, y) is inside a w x h image (edges included, as samc_predict requires). */
int cli_inside_image(float x, float y, int w, int h);
/* Every point and box corner inside the w x h image, else one error line naming --point
 * or --box and the allowed ranges. boxes: [n_boxes][4]. 0 or -1. */
int cli_check_inside(const cli_point *points, int n_points, const float (*boxes)[4], int n_boxes, int w, int h);

/* "auto", "ref", "fast", "cuda" (also the full names "cpu_ref", "cpu_fast"). */
int cli_parse_backend(const char *s, samc_backend *out);

/* Walks argv for one command. A flag's value is the next argument or follows '='
 * ("--threads 4" or "--threads=4"). */
typedef struct {
    int argc;
    char **argv;
    int i;              /* index of the current argument */
    const char *cmd;    /* command name, for "see samc <cmd> --help" */
    const char *inline_value; /* value after '=' in the current flag, or NULL */
    char flag[64];      /* current flag without its "=value" */
} cli_args;

void cli_args_init(cli_args *a, int argc, char **argv, const char *cmd);
/* Next argument, or NULL at the end. Flags come back without any "=value" part. */
const char *cli_next(cli_args *a);
/* Whether the current argument is a flag (starts with '-' and is not a negative number). */
int cli_is_flag(const char *arg);
/* The value of the current flag; prints "missing value" and returns NULL if absent. */
const char *cli_value(cli_args *a);
/* Value parsers for the current flag; print the error themselves. */
int cli_value_long(cli_args *a, long min, long max, long *out);
/* A strict number in [lo, hi], or [lo, hi) when hi_open (util/strict_number.h). */
int cli_value_double(cli_args *a, double lo, double hi, int hi_open, double *out);
/* Errors on a flag that takes no value but was given one ("--json=1"). */
int cli_no_value(cli_args *a);
void cli_unknown_flag(const cli_args *a);
void cli_extra_arg(const cli_args *a);
/* The argument no branch of a command's loop took: cli_unknown_flag for a flag, else
 * cli_extra_arg. Returns -1. */
int cli_refuse(const cli_args *a, const char *arg);
/* "<cmd>: missing <what> (see samc <cmd> --help)". Returns -1. */
int cli_missing(const cli_args *a, const char *what);

/* Where a command runs and in what precision: --device, --precision and --backend, with
 * defaults from SAMC_DEVICE, SAMC_PRECISION and SAMC_BACKEND (a flag beats the
 * environment). A command keeps one cli_compute, calls cli_compute_init before its
 * argument loop, cli_compute_flag for each flag, and cli_compute_resolve into its
 * samc_options just before loading the model.
 *
 * --device cpu    the CPU backends (--backend ref / fast / auto picks among them)
 * --device cuda   the CUDA backend (fails at load when there is no usable device)
 * --device auto   CUDA when samc_cuda_device() finds a device, else the CPU with one
 *                 notice line on stderr; a reduced --precision then falls back to fp32,
 *                 but bf16 where the fast CPU backend has it (samc_cpu_bf16: AMX)
 * no --device     what --backend says (default auto: the CPU backends), as before. */
typedef enum { CLI_DEVICE_UNSET = 0, CLI_DEVICE_AUTO, CLI_DEVICE_CPU, CLI_DEVICE_CUDA } cli_device;
enum { CLI_FROM_DEFAULT = 0, CLI_FROM_ENV, CLI_FROM_FLAG };

typedef struct {
    samc_backend backend;
    cli_device device;
    samc_precision precision;
    int backend_from, device_from, precision_from;   /* CLI_FROM_* */
} cli_compute;

/* "auto", "cpu", "cuda". */
int cli_parse_device(const char *s, cli_device *out);
/* "fp32", "bf16", "fp16". */
int cli_parse_precision(const char *s, samc_precision *out);
/* Defaults, then SAMC_BACKEND / SAMC_DEVICE / SAMC_PRECISION; prints the error and
 * returns -1 if one is invalid. */
int cli_compute_init(cli_compute *c);
/* If arg (the current flag of a) is --backend, --device or --precision, reads its value:
 * 1 done, 0 not one of these flags, -1 bad value (error printed). */
int cli_compute_flag(cli_args *a, const char *arg, cli_compute *c);
/* Sets opt->backend and opt->precision. Returns 0, or -1 with the error printed when
 * --device and --backend contradict each other (cpu with cuda, cuda with ref / fast). */
int cli_compute_resolve(const cli_compute *c, samc_options *opt);

/* A first look at a weight file before loading it: a safetensors file (its 8-byte header
 * length then '{') or a PyTorch .pt zip; a folder is left to the loader. If not, one
 * error line names --model, what the file starts with and what was expected. 0 or -1. */
int cli_check_weights_file(const char *path);
/* Whether the loaded model is of the family a command needs (SAM2.1 for segment,
 * everything, the automatic mosaic; SAM3 for find); if not, one error line naming
 * --model says which command takes such weights. 0 or -1. */
int cli_check_family(const char *cmd, const char *model, const samc_model_info *info, samc_family want);

/* SAM3 text prompts checked through the model's tokenizer before any (long) encode:
 * refused with one error line naming --text when empty, only spaces or punctuation, or
 * not UTF-8, or naming --vocab when the model has no vocabulary (how to give one); a
 * notice on stderr when one is cut to the context length. ids[n] (may be NULL) gets the
 * token ids samc_find will see. 0 or -1. */
int cli_check_texts(const char *model_path, samc_model *m, const char *const *texts, int n,
                    int32_t (*ids)[SAMC_CONCEPT_CONTEXT]);

/* Trace hook for samc_options.log: one line per call on stderr. */
void cli_log_stderr(void *ctx, const char *line);
/* SAMC_DEBUG set to anything but "" or "0". */
int cli_debug_env(void);

/* A monotonic clock in milliseconds (util/clock.h; the commands' name for it). */
double cli_now_ms(void);
/* Whether path's directory exists and can be written; prints the error if not. */
int cli_check_writable(const char *what, const char *path);

/* DIR exists as a writable folder afterwards (created if missing), or one error line
 * names it (as `what`). 0 or -1. */
int cli_prepare_out_dir(const char *what, const char *dir);
/* Writes path through path.tmp.<pid> and a rename, so that a reader never sees half a
 * file: write(f, ctx) returns 0 or -1 (a write error is also found by ferror). 0, or -1
 * with one error line naming `what`. */
int cli_write_atomic(const char *what, const char *path, int (*write)(FILE *f, void *ctx), void *ctx);

/* "<image name without directory and extension><suffix>" in the current directory, the
 * default output name of segment ("_mask") and everything ("_masks"). */
void cli_default_name(const char *image, const char *suffix, char *out, size_t size);

#endif
