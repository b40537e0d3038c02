/* tests/cuda_sim/cu2cpp.c: turns a .cu file into C++ that g++ / clang++ compile against
 * the simulator's headers (tests/cuda_sim/include). Only the three constructs of CUDA C++
 * that are not C++ are rewritten; everything else, comments included, is copied, and
 * line breaks are kept so that __LINE__ and compiler messages point into the .cu file:
 *
 *   callee<<<grid, block[, smem[, stream]]>>>(args)
 *       -> cudasim::launch(__FILE__, __LINE__, cudasim::cfg(grid, block, ...), "callee",
 *                          CUDASIM_KEY(callee), [=](auto... a) { callee(a...); }, args)
 *   __shared__ T a[N][M], b[K];      (inside a kernel)
 *       -> static auto &a = cudasim::shared_var<T[N][M]>(__FILE__, __LINE__, "a"); ...
 *   extern __shared__ T name[];
 *       -> T *const name = (T *)cudasim::dynamic_shared();
 *
 * The callee is the expression right before <<<: names, ::, template arguments <...> and
 * subscripts [...]. `--replace FROM TO` (repeatable) first replaces text that must occur
 * exactly once in the input, and `--drop-barrier K` turns the K-th __syncthreads() call
 * (from 1, in file order, comments skipped) into a no-op: tests/cuda_sim/teeth.sh builds
 * mutated kernels with them.
 *
 * usage: cu2cpp [--replace FROM TO]... [--drop-barrier K] in.cu out.cpp */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *s; size_t n, cap; } buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) { fprintf(stderr, "cu2cpp: out of memory\n"); exit(2); }
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void die(const char *path, const char *src, const char *at, const char *what) {
    int line = 1;
    for (const char *p = src; p < at; p++) line += *p == '\n';
    fprintf(stderr, "%s:%d: cu2cpp: %s\n", path, line, what);
    exit(1);
}

static int is_ident(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Copies the newlines of [a, b) so that the output keeps the input's line numbers. */
static void keep_lines(buf *out, const char *a, const char *b) {
    for (; a < b; a++)
        if (*a == '\n') put(out, "\n", 1);
}

/* Skips a comment, string or character literal starting at p; returns p if none. */
static const char *skip_literal(const char *p) {
    if (p[0] == '/' && p[1] == '/') {
        while (*p && *p != '\n') p++;
        return p;
    }
    if (p[0] == '/' && p[1] == '*') {
        const char *e = strstr(p + 2, "*/");
        return e ? e + 2 : p + strlen(p);
    }
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        while (*p && *p != q) p += (*p == '\\' && p[1]) ? 2 : 1;
        return *p ? p + 1 : p;
    }
    return p;
}

/* Start of the callee expression that ends at `end` (exclusive) in out[0, end). */
static size_t callee_start(const char *s, size_t end) {
    size_t i = end;
    while (i > 0 && isspace((unsigned char)s[i - 1])) i--;
    for (;;) {
        if (i > 0 && (s[i - 1] == ']' || s[i - 1] == '>')) {
            char close = s[i - 1], open = close == ']' ? '[' : '<';
            int depth = 0;
            while (i > 0) {
                char c = s[--i];
                depth += c == close ? 1 : c == open ? -1 : 0;
                if (!depth) break;
            }
        } else if (i > 0 && is_ident(s[i - 1])) {
            while (i > 0 && is_ident(s[i - 1])) i--;
        } else if (i > 1 && s[i - 1] == ':' && s[i - 2] == ':') {
            i -= 2;
        } else {
            return i;
        }
    }
}

static const char *rewrite_launch(const char *path, const char *src, const char *p, buf *out) {
    size_t start = callee_start(out->s, out->n);
    while (start < out->n && isspace((unsigned char)out->s[start])) start++;
    if (start == out->n) die(path, src, p, "<<< without a kernel before it");
    char callee[256];
    size_t cl = out->n - start;
    while (cl && isspace((unsigned char)out->s[start + cl - 1])) cl--;
    if (cl >= sizeof callee) die(path, src, p, "kernel expression too long");
    memcpy(callee, out->s + start, cl);
    callee[cl] = '\0';
    out->n = start;
    const char *cfg = p + 3, *cfg_end = strstr(cfg, ">>>");
    if (!cfg_end) die(path, src, p, "<<< without >>>");
    const char *q = cfg_end + 3;
    while (isspace((unsigned char)*q)) q++;
    if (*q != '(') die(path, src, p, "kernel launch without its argument list");
    const char *r = q + 1;
    while (isspace((unsigned char)*r)) r++;
    puts_(out, "cudasim::launch(__FILE__, __LINE__, cudasim::cfg(");
    put(out, cfg, (size_t)(cfg_end - cfg));
    puts_(out, "), \"");
    puts_(out, callee);
    puts_(out, "\", CUDASIM_KEY(");
    puts_(out, callee);
    puts_(out, "), [=](auto... cudasim_a_) { ");
    puts_(out, callee);
    puts_(out, "(cudasim_a_...); }");
    if (*r != ')') puts_(out, ", ");
    keep_lines(out, p, q + 1);
    return q + 1;
}

/* One declarator "name[d1][d2]" of a __shared__ declaration with element type `type`. */
static void shared_declarator(buf *out, const char *type, const char *align, const char *d, size_t n) {
    while (n && isspace((unsigned char)*d)) d++, n--;
    while (n && isspace((unsigned char)d[n - 1])) n--;
    size_t name_len = 0;
    while (name_len < n && is_ident(d[name_len])) name_len++;
    puts_(out, "static auto &");
    put(out, d, name_len);
    puts_(out, " = cudasim::shared_var<");
    puts_(out, type);
    put(out, d + name_len, n - name_len);
    if (*align) {
        puts_(out, ", ");
        puts_(out, align);
    }
    puts_(out, ">(__FILE__, __LINE__, \"");
    put(out, d, name_len);
    puts_(out, "\"); ");
}

/* `__shared__ [__align__(n)] T d1, d2;` with p just past __shared__. */
static const char *rewrite_shared(const char *path, const char *src, const char *p, buf *out) {
    const char *end = strchr(p, ';');
    if (!end) die(path, src, p, "__shared__ declaration without ';'");
    char align[32] = "", type[128];
    while (isspace((unsigned char)*p)) p++;
    if (!strncmp(p, "__align__(", 10)) {
        const char *c = strchr(p, ')');
        if (!c || c - p - 10 >= (long)sizeof align) die(path, src, p, "bad __align__");
        memcpy(align, p + 10, (size_t)(c - p - 10));
        align[c - p - 10] = '\0';
        p = c + 1;
    }
    /* the type is everything before the first declarator's name: the last identifier
     * before the first '[', ',' or ';' */
    const char *stop = p;
    while (stop < end && *stop != '[' && *stop != ',') stop++;
    const char *name = stop;
    while (name > p && isspace((unsigned char)name[-1])) name--;
    while (name > p && is_ident(name[-1])) name--;
    if (name == p || (size_t)(name - p) >= sizeof type) die(path, src, p, "cannot read this __shared__ declaration");
    memcpy(type, p, (size_t)(name - p));
    type[name - p] = '\0';
    for (const char *d = name; d < end;) {
        const char *c = d;
        int depth = 0;
        while (c < end && (depth || *c != ',')) depth += (*c == '[') - (*c == ']'), c++;
        shared_declarator(out, type, align, d, (size_t)(c - d));
        d = c < end ? c + 1 : c;
    }
    keep_lines(out, p, end);
    return end + 1;
}

/* `extern __shared__ T name[];` with p just past __shared__. */
static const char *rewrite_dynamic_shared(const char *path, const char *src, const char *p, buf *out) {
    const char *end = strchr(p, ';');
    const char *br = end ? strchr(p, '[') : NULL;
    if (!end || !br || br > end) die(path, src, p, "extern __shared__ must declare an array: T name[];");
    const char *name = br;
    while (name > p && isspace((unsigned char)name[-1])) name--;
    const char *name_end = name;
    while (name > p && is_ident(name[-1])) name--;
    puts_(out, "");
    put(out, p, (size_t)(name - p));
    puts_(out, "*const ");
    put(out, name, (size_t)(name_end - name));
    puts_(out, " = (");
    put(out, p, (size_t)(name - p));
    puts_(out, "*)cudasim::dynamic_shared();");
    keep_lines(out, p, end);
    return end + 1;
}

static int g_drop_barrier, g_barriers_seen;

static void rewrite(const char *path, const char *src, buf *out) {
    const char *p = src;
    while (*p) {
        const char *q = skip_literal(p);
        if (q != p) {
            put(out, p, (size_t)(q - p));
            p = q;
        } else if (!strncmp(p, "<<<", 3)) {
            p = rewrite_launch(path, src, p, out);
        } else if (is_ident(*p) && (p == src || !is_ident(p[-1]))) {
            const char *e = p;
            while (is_ident(*e)) e++;
            size_t n = (size_t)(e - p);
            const char *after = e;
            while (isspace((unsigned char)*after)) after++;
            if (n == 6 && !strncmp(p, "extern", 6) && !strncmp(after, "__shared__", 10) && !is_ident(after[10])) {
                p = rewrite_dynamic_shared(path, src, after + 10, out);
            } else if (n == 10 && !strncmp(p, "__shared__", 10)) {
                p = rewrite_shared(path, src, e, out);
            } else if (n == 13 && !strncmp(p, "__syncthreads", 13) && !strncmp(after, "()", 2) &&
                       ++g_barriers_seen == g_drop_barrier) {
                puts_(out, "((void)0)");
                p = after + 2;
            } else {
                put(out, p, n);
                p = e;
            }
        } else {
            put(out, p, 1);
            p++;
        }
    }
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "cu2cpp: cannot read %s\n", path); exit(2); }
    s[n] = '\0';
    fclose(f);
    return s;
}

/* Replaces the one occurrence of `from` in *src by `to`; fails unless there is exactly one,
 * so a mutation test cannot pass because its target moved. */
static void replace_once(const char *path, char **src, const char *from, const char *to) {
    char *hit = strstr(*src, from);
    if (!hit || strstr(hit + 1, from)) {
        fprintf(stderr, "cu2cpp: --replace: \"%s\" occurs %s in %s (must be exactly once)\n", from,
                hit ? "more than once" : "nowhere", path);
        exit(1);
    }
    size_t head = (size_t)(hit - *src), nf = strlen(from), nt = strlen(to), tail = strlen(hit + nf);
    char *s = malloc(head + nt + tail + 1);
    if (!s) { fprintf(stderr, "cu2cpp: out of memory\n"); exit(2); }
    memcpy(s, *src, head);
    memcpy(s + head, to, nt);
    memcpy(s + head + nt, hit + nf, tail + 1);
    free(*src);
    *src = s;
}

int main(int argc, char **argv) {
    const char *rep[32][2];
    int nrep = 0, i = 1;
    for (; i + 2 < argc && !strcmp(argv[i], "--replace") && nrep < 32; i += 3) {
        rep[nrep][0] = argv[i + 1];
        rep[nrep++][1] = argv[i + 2];
    }
    if (i + 1 < argc && !strcmp(argv[i], "--drop-barrier")) {
        g_drop_barrier = atoi(argv[i + 1]);
        i += 2;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: cu2cpp [--replace FROM TO]... [--drop-barrier K] in.cu out.cpp\n");
        return 2;
    }
    char *src = read_file(argv[i]);
    for (int r = 0; r < nrep; r++) replace_once(argv[i], &src, rep[r][0], rep[r][1]);
    buf out = { 0 };
    puts_(&out, "#line 1 \"");
    puts_(&out, argv[i]);
    puts_(&out, "\"\n");
    rewrite(argv[i], src, &out);
    if (g_drop_barrier > g_barriers_seen) {
        fprintf(stderr, "cu2cpp: --drop-barrier %d: %s has %d __syncthreads() calls\n", g_drop_barrier, argv[i],
                g_barriers_seen);
        return 1;
    }
    FILE *f = fopen(argv[i + 1], "wb");
    if (!f || fwrite(out.s, 1, out.n, f) != out.n || fclose(f) != 0) {
        fprintf(stderr, "cu2cpp: cannot write %s\n", argv[i + 1]);
        return 2;
    }
    free(src);
    free(out.s);
    return 0;
}
