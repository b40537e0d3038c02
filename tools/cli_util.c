/* tools/cli_util.c: argument parsing and error reporting (see cli_util.h). */
#include "cli_util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    if (!s || !*s || isspace((unsigned char)s[0])) return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    /* strtod accepts "inf", "nan" and hex floats; only finite values that fit a float
     * make sense as pixel coordinates. */
    if (errno || end == s || *end != '\0' || !isfinite(v) || fabs(v) > 1e30)
        return -1;
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

int cli_inside_image(float x, float y, int w, int h) {
    return x >= 0.0f && y >= 0.0f && x <= (float)w && y <= (float)h;
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

int cli_backend_from_env(samc_backend *out) {
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

void cli_log_stderr(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "samc: %s\n", line);
}

int cli_debug_env(void) {
    const char *e = getenv("SAMC_DEBUG");
    return e && *e && strcmp(e, "0") != 0;
}

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

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

void cli_default_name(const char *image, const char *suffix, char *out, size_t size) {
    const char *base = strrchr(image, '/');
    base = base ? base + 1 : image;
    size_t len = strlen(base), room = size - strlen(suffix) - 1;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) len = (size_t)(dot - base);
    if (len > room) len = room;
    snprintf(out, size, "%.*s%s", (int)len, base, suffix);
}
