/* tools/cli_util.c: argument parsing and error reporting (see cli_util.h). */
#include "tools/cli_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/strict_number.h"

void cli_error(const char *what, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "samc: error: %s: ", what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_lib_error(const char *what, const samc_error *err) {
    /* Library messages are single lines by contract; guard anyway so the one-line
     * promise of the CLI holds even if one is not. */
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg[0] ? err->msg : samc_status_name(err->status));
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    cli_error(what, "%s", msg);
}

int cli_parse_long(const char *s, long min, long max, long *out) {
    /* strtol skips leading spaces and takes a sign; only a plain optional '-' is a number */
    if (!s || !*s || isspace((unsigned char)s[0]) || s[0] == '+') return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, float *out) {
    double v;
    /* only values that fit a float make sense as pixel coordinates */
    if (strict_double(s, &v) != 0 || fabs(v) > 1e30) return -1;
    *out = (float)v;
    return 0;
}

int cli_parse_floats(const char *s, float *out, int n, int *got) {
    *got = 0;
    if (!s) return -1;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        if (*got >= n || len == 0 || len >= sizeof item) return -1;
        memcpy(item, p, len);
        item[len] = '\0';
        if (cli_parse_float(item, &out[*got]) != 0) return -1;
        (*got)++;
        if (!comma) break;
        p = comma + 1;
    }
    return *got == n ? 0 : -1;
}

static int count_items(const char *s) {
    int n = 1;
    for (; *s; s++) n += *s == ',';
    return n;
}

int cli_parse_point(const char *s, cli_point *p, char *why, size_t why_size) {
    float v[3];
    int got = 0, n = count_items(s);
    if ((n != 2 && n != 3) || cli_parse_floats(s, v, n, &got) != 0) {
        snprintf(why, why_size, "'%s' is not X,Y or X,Y,L (numbers separated by commas)", s);
        return -1;
    }
    if (n == 3 && v[2] != 0.0f && v[2] != 1.0f) {
        snprintf(why, why_size, "label in '%s' must be 1 (foreground) or 0 (background)", s);
        return -1;
    }
    p->x = v[0];
    p->y = v[1];
    p->label = n == 3 ? (int)v[2] : 1;
    return 0;
}

int cli_parse_box(const char *s, float box[4], char *why, size_t why_size) {
    int got = 0;
    if (cli_parse_floats(s, box, 4, &got) != 0) {
        snprintf(why, why_size, "'%s' is not X0,Y0,X1,Y1 (four numbers separated by commas)", s);
        return -1;
    }
    if (box[2] <= box[0] || box[3] <= box[1]) {
        snprintf(why, why_size, "'%s' is inverted or empty: need X1 > X0 and Y1 > Y0", s);
        return -1;
    }
    return 0;
}

int cli_parse_box_label(const char *s, float box[4], int *label, char *why, size_t why_size) {
    float v[5];
    int got = 0, n = count_items(s);
    if ((n != 4 && n != 5) || cli_parse_floats(s, v, n, &got) != 0) {
        snprintf(why, why_size, "'%s' is not X0,Y0,X1,Y1 or X0,Y0,X1,Y1,L (numbers separated by commas)", s);
        return -1;
    }
    if (n == 5 && v[4] != 0.0f && v[4] != 1.0f) {
        snprintf(why, why_size, "label in '%s' must be 1 (positive exemplar) or 0 (negative)", s);
        return -1;
    }
    if (v[2] <= v[0] || v[3] <= v[1]) {
        snprintf(why, why_size, "'%s' is inverted or empty: need X1 > X0 and Y1 > Y0", s);
        return -1;
    }
    memcpy(box, v, 4 * sizeof *box);
    *label = n == 5 ? (int)v[4] : 1;
    return 0;
}

int cli_inside_image(float x, float y, int w, int h) {
    return x >= 0.0f && y >= 0.0f && x <= (float)w && y <= (float)h;
}

int cli_check_inside(const cli_point *points, int n_points, const float (*boxes)[4], int n_boxes, int w, int h) {
    for (int i = 0; i < n_points; i++) {
        const cli_point *p = &points[i];
        if (!cli_inside_image(p->x, p->y, w, h)) {
            cli_error("--point", "%g,%g is outside the %dx%d image (x must be in [0, %d], "
                      "y in [0, %d])", p->x, p->y, w, h, w, h);
            return -1;
        }
    }
    for (int b = 0; b < n_boxes; b++) {
        const float *x = boxes[b];
        if (!cli_inside_image(x[0], x[1], w, h) || !cli_inside_image(x[2], x[3], w, h)) {
            cli_error("--box", "%g,%g,%g,%g is outside the %dx%d image (x must be in [0, %d], "
                      "y in [0, %d])", x[0], x[1], x[2], x[3], w, h, w, h);
            return -1;
        }
    }
    return 0;
}

int cli_parse_backend(const char *s, samc_backend *out) {
    static const struct { const char *name; samc_backend b; } names[] = {
        { "auto", SAMC_BACKEND_AUTO }, { "ref", SAMC_BACKEND_CPU_REF },
        { "cpu_ref", SAMC_BACKEND_CPU_REF }, { "fast", SAMC_BACKEND_CPU_FAST },
        { "cpu_fast", SAMC_BACKEND_CPU_FAST }, { "cuda", SAMC_BACKEND_CUDA },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s && strcmp(s, names[i].name) == 0) { *out = names[i].b; return 0; }
    return -1;
}

/* Backend default from the SAMC_BACKEND environment variable (used by scripts that cannot
 * pass flags, e.g. the golden checker); prints an error and returns -1 if it is invalid. */
static int cli_backend_from_env(samc_backend *out) {
    const char *e = getenv("SAMC_BACKEND");
    *out = SAMC_BACKEND_AUTO;
    if (!e || !*e) return 0;
    if (cli_parse_backend(e, out) != 0) {
        cli_error("SAMC_BACKEND", "'%s' is not one of auto, ref, fast, cuda", e);
        return -1;
    }
    return 0;
}

void cli_args_init(cli_args *a, int argc, char **argv, const char *cmd) {
    memset(a, 0, sizeof *a);
    a->argc = argc;
    a->argv = argv;
    a->i = 0;   /* argv[0] is the command name; cli_next() moves to argv[1] first */
    a->cmd = cmd;
}

int cli_is_flag(const char *arg) {
    if (arg[0] != '-' || arg[1] == '\0') return 0;   /* "-" alone is a value (stdin-like) */
    return !(arg[1] >= '0' && arg[1] <= '9') && arg[1] != '.';
}

const char *cli_next(cli_args *a) {
    a->inline_value = NULL;
    if (++a->i >= a->argc) return NULL;
    const char *arg = a->argv[a->i];
    if (strncmp(arg, "--", 2) == 0) {
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof a->flag) len = sizeof a->flag - 1;
        memcpy(a->flag, arg, len);
        a->flag[len] = '\0';
        a->inline_value = eq ? eq + 1 : NULL;
        return a->flag;
    }
    snprintf(a->flag, sizeof a->flag, "%s", arg);
    return arg;
}

const char *cli_value(cli_args *a) {
    if (a->inline_value) return a->inline_value;
    /* The value is the next argument unless that is another long flag, so that
     * "--model --json" says what is missing instead of loading a file named --json. */
    if (a->i + 1 < a->argc && strncmp(a->argv[a->i + 1], "--", 2) != 0)
        return a->argv[++a->i];
    cli_error(a->flag, "missing value (see samc %s --help)", a->cmd);
    return NULL;
}

int cli_value_long(cli_args *a, long min, long max, long *out) {
    const char *flag = a->flag;
    const char *v = cli_value(a);
    if (!v) return -1;
    if (cli_parse_long(v, min, max, out) != 0) {
        cli_error(flag, "'%s' is not an integer in [%ld, %ld]", v, min, max);
        return -1;
    }
    return 0;
}

int cli_value_double(cli_args *a, double lo, double hi, int hi_open, double *out) {
    const char *flag = a->flag;
    char why[300];
    const char *v = cli_value(a);
    if (!v) return -1;
    if (strict_number(NULL, v, lo, hi, hi_open ? STRICT_HI_OPEN : STRICT_REAL, out, why, sizeof why) != 0) {
        cli_error(flag, "%s", why);
        return -1;
    }
    return 0;
}

int cli_no_value(cli_args *a) {
    if (!a->inline_value) return 0;
    cli_error(a->flag, "takes no value (got '%s')", a->inline_value);
    return -1;
}

void cli_unknown_flag(const cli_args *a) {
    cli_error(a->cmd, "unknown option '%s' (see samc %s --help)", a->argv[a->i], a->cmd);
}

void cli_extra_arg(const cli_args *a) {
    cli_error(a->cmd, "unexpected argument '%s' (see samc %s --help)", a->argv[a->i], a->cmd);
}

int cli_refuse(const cli_args *a, const char *arg) {
    if (cli_is_flag(arg)) cli_unknown_flag(a);
    else cli_extra_arg(a);
    return -1;
}

int cli_missing(const cli_args *a, const char *what) {
    cli_error(a->cmd, "missing %s (see samc %s --help)", what, a->cmd);
    return -1;
}

/* ---- --device, --precision, --backend ------------------------------------------------ */

int cli_parse_device(const char *s, cli_device *out) {
    static const struct { const char *name; cli_device d; } names[] = {
        { "auto", CLI_DEVICE_AUTO }, { "cpu", CLI_DEVICE_CPU }, { "cuda", CLI_DEVICE_CUDA },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s && strcmp(s, names[i].name) == 0) { *out = names[i].d; return 0; }
    return -1;
}

int cli_parse_precision(const char *s, samc_precision *out) {
    static const struct { const char *name; samc_precision p; } names[] = {
        { "fp32", SAMC_PRECISION_FP32 }, { "bf16", SAMC_PRECISION_BF16 }, { "fp16", SAMC_PRECISION_FP16 },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s && strcmp(s, names[i].name) == 0) { *out = names[i].p; return 0; }
    return -1;
}

#define BACKEND_NAMES "auto, ref, fast, cuda"
#define DEVICE_NAMES "auto, cpu, cuda"
#define PRECISION_NAMES "fp32, bf16, fp16"

int cli_compute_init(cli_compute *c) {
    memset(c, 0, sizeof *c);
    c->backend = SAMC_BACKEND_AUTO;
    c->precision = SAMC_PRECISION_FP32;
    if (cli_backend_from_env(&c->backend) != 0) return -1;
    const char *e = getenv("SAMC_BACKEND");
    if (e && *e) c->backend_from = CLI_FROM_ENV;
    if ((e = getenv("SAMC_DEVICE")) && *e) {
        if (cli_parse_device(e, &c->device) != 0) {
            cli_error("SAMC_DEVICE", "'%s' is not one of " DEVICE_NAMES, e);
            return -1;
        }
        c->device_from = CLI_FROM_ENV;
    }
    if ((e = getenv("SAMC_PRECISION")) && *e) {
        if (cli_parse_precision(e, &c->precision) != 0) {
            cli_error("SAMC_PRECISION", "'%s' is not one of " PRECISION_NAMES, e);
            return -1;
        }
        c->precision_from = CLI_FROM_ENV;
    }
    return 0;
}

int cli_compute_flag(cli_args *a, const char *arg, cli_compute *c) {
    int backend = !strcmp(arg, "--backend"), device = !strcmp(arg, "--device"), precision = !strcmp(arg, "--precision");
    if (!backend && !device && !precision) return 0;
    const char *v = cli_value(a);
    if (!v) return -1;
    if (backend) {
        if (cli_parse_backend(v, &c->backend) != 0) {
            cli_error("--backend", "'%s' is not one of " BACKEND_NAMES, v);
            return -1;
        }
        c->backend_from = CLI_FROM_FLAG;
    } else if (device) {
        if (cli_parse_device(v, &c->device) != 0) {
            cli_error("--device", "'%s' is not one of " DEVICE_NAMES, v);
            return -1;
        }
        c->device_from = CLI_FROM_FLAG;
    } else {
        if (cli_parse_precision(v, &c->precision) != 0) {
            cli_error("--precision", "'%s' is not one of " PRECISION_NAMES, v);
            return -1;
        }
        c->precision_from = CLI_FROM_FLAG;
    }
    return 1;
}

static const char *backend_word(samc_backend b) {
    switch (b) {
    case SAMC_BACKEND_CPU_REF: return "ref";
    case SAMC_BACKEND_CPU_FAST: return "fast";
    case SAMC_BACKEND_CUDA: return "cuda";
    default: return "auto";
    }
}

static const char *device_word(cli_device d) {
    return d == CLI_DEVICE_CPU ? "cpu" : d == CLI_DEVICE_CUDA ? "cuda" : "auto";
}

int cli_compute_resolve(const cli_compute *c, samc_options *opt) {
    samc_backend backend = c->backend;
    cli_device device = c->device;
    opt->precision = c->precision;
    int backend_cpu = backend == SAMC_BACKEND_CPU_REF || backend == SAMC_BACKEND_CPU_FAST;
    int clash = (device == CLI_DEVICE_CPU && backend == SAMC_BACKEND_CUDA) || (device == CLI_DEVICE_CUDA && backend_cpu);
    if (clash) {
        /* The flag beats the environment; two flags (or two variables) that disagree are an error. */
        if (c->device_from > c->backend_from) {
            backend = SAMC_BACKEND_AUTO;
        } else if (c->backend_from > c->device_from) {
            device = CLI_DEVICE_UNSET;
        } else {
            int env = c->device_from == CLI_FROM_ENV;
            cli_error(env ? "SAMC_DEVICE" : "--device", "'%s' contradicts %s%s%s", device_word(device),
                      env ? "SAMC_BACKEND" : "--backend", env ? "=" : " ", backend_word(backend));
            return -1;
        }
    }
    switch (device) {
    case CLI_DEVICE_UNSET:
        opt->backend = backend;
        break;
    case CLI_DEVICE_CPU:
        opt->backend = backend;   /* auto, ref or fast: all on the CPU */
        break;
    case CLI_DEVICE_CUDA:
        opt->backend = SAMC_BACKEND_CUDA;
        break;
    case CLI_DEVICE_AUTO: {
        char why[512];
        if (backend == SAMC_BACKEND_CUDA || samc_cuda_device(why, sizeof why) == 0) {
            opt->backend = SAMC_BACKEND_CUDA;
            break;
        }
        /* No device: the CPU backend --backend names (auto: the fastest), in bf16 when
         * that was asked for and the fast backend has it here (AMX), else in fp32. */
        opt->backend = backend;
        char no_bf16[512] = "";
        int keep = c->precision == SAMC_PRECISION_BF16 && backend != SAMC_BACKEND_CPU_REF &&
                   samc_cpu_bf16(no_bf16, sizeof no_bf16);
        if (c->precision == SAMC_PRECISION_FP32 || keep)
            fprintf(stderr, "samc: no CUDA device (%s): running on the CPU%s\n", why, keep ? " in bf16 (AMX)" : "");
        else
            fprintf(stderr, "samc: no CUDA device (%s): running on the CPU in fp32 instead of %s%s%s\n", why,
                    samc_precision_name(c->precision), no_bf16[0] ? ": " : "", no_bf16);
        if (!keep) opt->precision = SAMC_PRECISION_FP32;
        break;
    }
    }
    return 0;
}

int cli_check_weights_file(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_error("--model", "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) return 0;
    unsigned char b[9] = { 0 };
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    if (!f) {
        cli_error("--model", "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | b[i];
    int zip = n >= 4 && !memcmp(b, "PK\3\4", 4);
    int st_file = n == 9 && len >= 2 && len <= (uint64_t)st.st_size - 8 && b[8] == '{';
    if (zip || st_file) return 0;
    char start[40] = "";
    for (size_t i = 0; i < n && i < 8; i++) snprintf(start + 3 * i, sizeof start - 3 * i, i ? " %02x" : "%02x", b[i]);
    cli_error("--model", "'%s' is not a weight file: neither safetensors (an 8-byte header length, then "
              "'{') nor a PyTorch .pt checkpoint (a zip); it is %lld bytes and starts with %s", path,
              (long long)st.st_size, n ? start : "nothing (empty)");
    return -1;
}

int cli_check_family(const char *cmd, const char *model, const samc_model_info *info, samc_family want) {
    if (info->family == want) return 0;
    if (want == SAMC_FAMILY_SAM3)
        cli_error("--model", "%s is a SAM2.1 model (config %s): samc %s needs SAM3 weights (samc convert sam3.pt, "
                  "or samc synth --config sam3_micro for a test model); points and boxes on SAM2.1 are samc segment's",
                  model, info->config, cmd);
    else
        cli_error("--model", "%s is a SAM3 model (config %s): samc %s needs SAM2.1 weights; SAM3 finds every "
                  "instance of a concept with samc find IMAGE --text \"...\"%s", model, info->config, cmd,
                  strcmp(cmd, "mosaic") ? "" : " or samc mosaic --text");
    return -1;
}

/* Length of the well-formed UTF-8 character at s (2 to 4 bytes), else 0. */
static int utf8_char_len(const unsigned char *s) {
    int n = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) || (s[0] == 0xF0 && s[1] < 0x90) ||
        (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;   /* overlong, surrogate or beyond U+10FFFF */
    return n;
}

/* Text for a message: at most 48 characters of s in single quotes, control characters
 * and bytes that are not UTF-8 as \xHH, "..." after it when cut. size >= 16; 220 bytes
 * always hold it. */
static void cli_quote(const char *s, char *out, size_t size) {
    size_t n = 0, shown = 0;
    if (size < 16) {
        if (size) out[0] = '\0';
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    out[n++] = '\'';
    while (*p && shown < 48 && n + 10 < size) {
        int len = *p >= 0x80 ? utf8_char_len(p) : 0;
        if (len) {
            memcpy(out + n, p, (size_t)len);
            n += (size_t)len;
            p += len;
        } else {
            if (*p >= 32 && *p < 127) out[n++] = (char)*p;
            else n += (size_t)snprintf(out + n, size - n, "\\x%02x", *p);
            p++;
        }
        shown++;
    }
    out[n++] = '\'';
    if (*p) n += (size_t)snprintf(out + n, size - n, "...");
    out[n] = '\0';
}

int cli_check_texts(const char *model_path, samc_model *m, const char *const *texts, int n,
                    int32_t (*ids)[SAMC_CONCEPT_CONTEXT]) {
    for (int i = 0; i < n; i++) {
        samc_error err = { 0 };
        samc_text_tokens tok;
        char q[220];
        cli_quote(texts[i], q, sizeof q);
        if (samc_text_tokenize(m, texts[i], &tok, &err) != 0) {
            if (err.status == SAMC_ERR_UNSUPPORTED)
                cli_error("--vocab", "%s has no vocabulary inside (no tokenizer.bpe_merges metadata), so --text needs "
                          "one: pass --vocab bpe_simple_vocab_16e6.txt.gz (the official CLIP merges, "
                          "weights/download.sh sam3 fetches it) or set SAMC_VOCAB, or embed it with samc convert "
                          "--vocab", model_path);
            else
                cli_lib_error("--text", &err);
            return -1;
        }
        const char *why = tok.invalid_utf8 ? "is not valid UTF-8"
                          : tok.n_tokens <= 2 ? "is empty (or only spaces): give a noun phrase such as \"roof\", or "
                                                "only --box exemplars for a visual prompt"
                          : tok.n_words == 0 ? "has no letter or digit: give a noun phrase such as \"roof\""
                          : NULL;
        if (why) {
            cli_error("--text", "%s %s", q, why);
            return -1;
        }
        if (tok.truncated)
            fprintf(stderr, "samc: notice: --text %s is %d tokens: cut to %d as the official tokenizer does "
                    "(the last kept id becomes <end_of_text>)\n", q, tok.n_tokens, SAMC_CONCEPT_CONTEXT);
        if (ids) memcpy(ids[i], tok.ids, sizeof tok.ids);
    }
    return 0;
}

void cli_log_stderr(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "samc: %s\n", line);
}

int cli_debug_env(void) {
    const char *e = getenv("SAMC_DEBUG");
    return e && *e && strcmp(e, "0") != 0;
}

double cli_now_ms(void) { return monotonic_ms(); }

int cli_check_writable(const char *what, const char *path) {
    char dir[4096];
    if (!path || !*path) {
        cli_error(what, "empty path");
        return -1;
    }
    if (strlen(path) >= sizeof dir) {
        cli_error(what, "path too long (%zu bytes)", strlen(path));
        return -1;
    }
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    struct stat st;
    if (stat(dir, &st) != 0) {
        cli_error(what, "cannot write '%s': directory '%s': %s", path, dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error(what, "cannot write '%s': '%s' is not a directory", path, dir);
        return -1;
    }
    if (access(dir, W_OK) != 0) {
        cli_error(what, "cannot write '%s': directory '%s': %s", path, dir, strerror(errno));
        return -1;
    }
    return 0;
}

int cli_prepare_out_dir(const char *what, const char *dir) {
    struct stat st;
    if (strlen(dir) > 4000) {
        cli_error(what, "path too long (%zu bytes)", strlen(dir));
        return -1;
    }
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0777) != 0) {
            cli_error(what, "cannot create folder '%s': %s", dir, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error(what, "'%s' exists and is not a folder", dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        cli_error(what, "cannot write into folder '%s': %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int cli_write_atomic(const char *what, const char *path, int (*write)(FILE *f, void *ctx), void *ctx) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        cli_error(what, "cannot write '%s': %s", tmp, strerror(errno));
        return -1;
    }
    errno = 0;
    int ok = write(f, ctx) == 0 && !ferror(f);
    int err = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        cli_error(what, "cannot write '%s': %s", tmp, strerror(err ? err : errno ? errno : EIO));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        cli_error(what, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void cli_default_name(const char *image, const char *suffix, char *out, size_t size) {
    const char *base = strrchr(image, '/');
    base = base ? base + 1 : image;
    size_t len = strlen(base), room = size - strlen(suffix) - 1;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) len = (size_t)(dot - base);
    if (len > room) len = room;
    snprintf(out, size, "%.*s%s", (int)len, base, suffix);
}
