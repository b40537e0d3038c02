/* loader/safetensors.c: safetensors reader (mmap + strict header validation) and writer.
 * See safetensors.h for the format. The header parser is a small strict JSON parser
 * specialised to the one shape a safetensors header has (an object of tensor entries
 * plus an optional "__metadata__" object of strings), so malformed or hostile headers
 * are rejected with the byte offset, the tensor key and the offending value. */
/* mmap, strdup, O_CLOEXEC: POSIX.1-2008 (the Makefile also sets _GNU_SOURCE). */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "loader/safetensors.h"
#include "util/half.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Same cap as the reference safetensors library: a header beyond this is not a model. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)
#define ST_MSG_KEY 160 /* characters of a tensor key quoted in a parse message */

static const char *const dtype_names[ST_DTYPE_COUNT] = {"F32", "F16", "BF16", "I32", "I64", "U8", "BOOL"};
static const size_t dtype_sizes[ST_DTYPE_COUNT] = {4, 2, 2, 4, 8, 1, 1};

const char *st_dtype_name(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtype_names[t] : "?"; }

size_t st_dtype_size(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtype_sizes[t] : 0; }

static void set_err(char *err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, SAMC_ERRMSG, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------------------
 * Header parser. */

typedef struct {
    const char *s;      /* header bytes (not NUL-terminated) */
    size_t n, pos;
    const char *file;
    char *err;
    const char *key;    /* tensor key being parsed, for messages; NULL at top level */
} json_in;

static int jfail(json_in *j, const char *fmt, ...) {
    char what[SAMC_ERRMSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (j->key)
        set_err(j->err, "%.200s: header byte %zu: tensor '%.*s': %s", j->file, j->pos,
                ST_MSG_KEY, j->key, what);
    else
        set_err(j->err, "%.200s: header byte %zu: %s", j->file, j->pos, what);
    return -1;
}

static void skip_ws(json_in *j) {
    while (j->pos < j->n) {
        char c = j->s[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        j->pos++;
    }
}

/* Describes the next token for an error message, e.g. "'x'" or "end of header". */
static const char *peek_desc(json_in *j, char *buf, size_t size) {
    if (j->pos >= j->n) return "end of header";
    unsigned char c = (unsigned char)j->s[j->pos];
    if (c >= 0x20 && c < 0x7f) snprintf(buf, size, "'%c'", c);
    else snprintf(buf, size, "byte 0x%02x", c);
    return buf;
}

static int expect(json_in *j, char c) {
    skip_ws(j);
    if (j->pos < j->n && j->s[j->pos] == c) { j->pos++; return 0; }
    char buf[32];
    return jfail(j, "expected '%c', found %s", c, peek_desc(j, buf, sizeof buf));
}

static int hex4(json_in *j, unsigned *out) {
    if (j->n - j->pos < 4) return jfail(j, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->s[j->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return jfail(j, "bad hex digit in \\u escape");
    }
    j->pos += 4;
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n) or 0 if invalid (overlong, surrogate,
 * beyond U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f)); return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f)); return 4;
}

/* Parses a JSON string into a malloc'd NUL-terminated UTF-8 string. Embedded NULs
 * (\u0000) are rejected since names are C strings. */
static int parse_string(json_in *j, char **out) {
    *out = NULL;
    skip_ws(j);
    if (j->pos >= j->n || j->s[j->pos] != '"') {
        char buf[32];
        return jfail(j, "expected a string, found %s", peek_desc(j, buf, sizeof buf));
    }
    size_t start = ++j->pos;
    /* The decoded string is never longer than the raw text. */
    size_t end = start;
    while (end < j->n && j->s[end] != '"') end += (j->s[end] == '\\') ? 2 : 1;
    if (end >= j->n) { j->pos = start - 1; return jfail(j, "unterminated string"); }
    char *o = malloc(end - start + 1);
    if (!o) return jfail(j, "out of memory for a %zu-byte string", end - start);
    size_t k = 0;
    while (j->pos < end) {
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c < 0x20) { free(o); return jfail(j, "control byte 0x%02x in string", c); }
        if (c == '\\') {
            j->pos++;
            char e = j->s[j->pos++];
            unsigned cp;
            switch (e) {
            case '"': o[k++] = '"'; break;
            case '\\': o[k++] = '\\'; break;
            case '/': o[k++] = '/'; break;
            case 'b': o[k++] = '\b'; break;
            case 'f': o[k++] = '\f'; break;
            case 'n': o[k++] = '\n'; break;
            case 'r': o[k++] = '\r'; break;
            case 't': o[k++] = '\t'; break;
            case 'u':
                if (hex4(j, &cp)) { free(o); return -1; }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned lo;
                    if (j->n - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u') {
                        free(o); return jfail(j, "unpaired surrogate \\u%04x", cp);
                    }
                    j->pos += 2;
                    if (hex4(j, &lo)) { free(o); return -1; }
                    if (lo < 0xdc00 || lo > 0xdfff) { free(o); return jfail(j, "unpaired surrogate \\u%04x", cp); }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    free(o); return jfail(j, "unpaired surrogate \\u%04x", cp);
                }
                if (cp == 0) { free(o); return jfail(j, "\\u0000 in string"); }
                /* 6 raw bytes always give at most 4 output bytes. */
                k += put_utf8(o + k, cp);
                break;
            default:
                j->pos--;
                free(o);
                return jfail(j, "bad escape '\\%c'", e);
            }
            if (j->pos > end) { free(o); return jfail(j, "escape runs past the end of the string"); }
        } else {
            size_t len = utf8_len((const unsigned char *)j->s + j->pos, end - j->pos);
            if (!len) { free(o); return jfail(j, "invalid UTF-8 in string"); }
            memcpy(o + k, j->s + j->pos, len);
            k += len; j->pos += len;
        }
    }
    o[k] = 0;
    j->pos = end + 1;
    *out = o;
    return 0;
}

/* Parses a JSON number that must be an integer; *neg set for a minus sign. The
 * magnitude must fit in int64. */
static int parse_int(json_in *j, int64_t *out, const char *what) {
    skip_ws(j);
    size_t start = j->pos;
    int neg = 0;
    if (j->pos < j->n && j->s[j->pos] == '-') { neg = 1; j->pos++; }
    if (j->pos >= j->n || j->s[j->pos] < '0' || j->s[j->pos] > '9') {
        char buf[32];
        j->pos = start;
        return jfail(j, "%s: expected an integer, found %s", what, peek_desc(j, buf, sizeof buf));
    }
    if (j->s[j->pos] == '0' && j->pos + 1 < j->n && j->s[j->pos + 1] >= '0' && j->s[j->pos + 1] <= '9') {
        j->pos = start;
        return jfail(j, "%s: number with a leading zero", what);
    }
    uint64_t v = 0;
    int overflow = 0;
    while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') {
        unsigned d = (unsigned)(j->s[j->pos] - '0');
        if (v > (UINT64_C(0x7fffffffffffffff) - d) / 10) overflow = 1;
        else v = v * 10 + d;
        j->pos++;
    }
    size_t digits_end = j->pos;
    if (j->pos < j->n && (j->s[j->pos] == '.' || j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
        while (j->pos < j->n && strchr("0123456789.eE+-", j->s[j->pos])) j->pos++;
        int len = (int)(j->pos - start);
        j->pos = start;
        return jfail(j, "%s: %.*s is not an integer", what, len > 40 ? 40 : len, j->s + start);
    }
    if (overflow) {
        int len = (int)(digits_end - start);
        j->pos = start;
        return jfail(j, "%s: %.*s does not fit in 64 bits", what, len > 40 ? 40 : len, j->s + start);
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* Returns 1 and consumes c if it is next (after whitespace). */
static int accept(json_in *j, char c) {
    skip_ws(j);
    if (j->pos < j->n && j->s[j->pos] == c) { j->pos++; return 1; }
    return 0;
}

/* Parses "[int, ...]" into v (at most max entries). */
static int parse_int_array(json_in *j, int64_t *v, int max, int *count, const char *what) {
    *count = 0;
    if (expect(j, '[')) return -1;
    if (accept(j, ']')) return 0;
    for (;;) {
        int64_t x = 0;
        if (*count >= max) return jfail(j, "%s has more than %d entries", what, max);
        if (parse_int(j, &x, what)) return -1;
        v[(*count)++] = x;
        if (accept(j, ']')) return 0;
        if (expect(j, ',')) return -1;
    }
}

typedef struct {
    st_tensor t;
    uint64_t begin, end;
} raw_tensor;

/* One tensor entry: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}. */
static int parse_tensor_entry(json_in *j, raw_tensor *rt) {
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (expect(j, '{')) return -1;
    if (!accept(j, '}')) {
        for (;;) {
            char *field;
            size_t field_pos = j->pos;
            if (parse_string(j, &field)) return -1;
            if (expect(j, ':')) { free(field); return -1; }
            int r = 0;
            if (strcmp(field, "dtype") == 0) {
                if (have_dtype) { j->pos = field_pos; r = jfail(j, "duplicate field \"dtype\""); }
                else {
                    char *dt;
                    size_t vpos;
                    skip_ws(j);
                    vpos = j->pos;
                    if (parse_string(j, &dt)) r = -1;
                    else {
                        int found = -1;
                        for (int i = 0; i < ST_DTYPE_COUNT; i++)
                            if (strcmp(dt, dtype_names[i]) == 0) found = i;
                        if (found < 0) {
                            j->pos = vpos;
                            r = jfail(j, "unknown dtype '%.40s' (supported: F32 F16 BF16 I32 I64 U8 BOOL)", dt);
                        } else rt->t.dtype = (st_dtype)found;
                        free(dt);
                    }
                    have_dtype = 1;
                }
            } else if (strcmp(field, "shape") == 0) {
                if (have_shape) { j->pos = field_pos; r = jfail(j, "duplicate field \"shape\""); }
                else {
                    skip_ws(j);
                    size_t vpos = j->pos;
                    r = parse_int_array(j, rt->t.shape, SAMC_MAX_DIMS, &rt->t.ndim, "shape");
                    for (int i = 0; !r && i < rt->t.ndim; i++)
                        if (rt->t.shape[i] < 0) {
                            j->pos = vpos;
                            r = jfail(j, "negative dim %lld at shape index %d", (long long)rt->t.shape[i], i);
                        }
                    have_shape = 1;
                }
            } else if (strcmp(field, "data_offsets") == 0) {
                if (have_offsets) { j->pos = field_pos; r = jfail(j, "duplicate field \"data_offsets\""); }
                else {
                    int64_t off[2];
                    int cnt;
                    skip_ws(j);
                    size_t vpos = j->pos;
                    r = parse_int_array(j, off, 2, &cnt, "data_offsets");
                    if (!r && cnt != 2) { j->pos = vpos; r = jfail(j, "data_offsets has %d entries, expected 2", cnt); }
                    if (!r && (off[0] < 0 || off[1] < 0)) {
                        j->pos = vpos;
                        r = jfail(j, "negative data_offsets [%lld, %lld]", (long long)off[0], (long long)off[1]);
                    }
                    if (!r && off[0] > off[1]) {
                        j->pos = vpos;
                        r = jfail(j, "data_offsets [%lld, %lld] end before begin", (long long)off[0], (long long)off[1]);
                    }
                    if (!r) { rt->begin = (uint64_t)off[0]; rt->end = (uint64_t)off[1]; }
                    have_offsets = 1;
                }
            } else {
                j->pos = field_pos;
                r = jfail(j, "unknown field \"%.40s\"", field);
            }
            free(field);
            if (r) return -1;
            if (accept(j, '}')) break;
            if (expect(j, ',')) return -1;
        }
    }
    if (!have_dtype) return jfail(j, "missing \"dtype\"");
    if (!have_shape) return jfail(j, "missing \"shape\"");
    if (!have_offsets) return jfail(j, "missing \"data_offsets\"");
    return 0;
}

static int parse_metadata(json_in *j, st_meta **meta, int *n_meta) {
    int cap = 0;
    if (expect(j, '{')) return -1;
    if (accept(j, '}')) return 0;
    for (;;) {
        char *k, *v;
        if (parse_string(j, &k)) return -1;
        if (expect(j, ':')) { free(k); return -1; }
        skip_ws(j);
        if (j->pos < j->n && j->s[j->pos] != '"') {
            char buf[32];
            jfail(j, "__metadata__ value of '%.80s' must be a string, found %s", k, peek_desc(j, buf, sizeof buf));
            free(k);
            return -1;
        }
        if (parse_string(j, &v)) { free(k); return -1; }
        if (*n_meta == cap) {
            cap = cap ? cap * 2 : 8;
            st_meta *m = realloc(*meta, (size_t)cap * sizeof *m);
            if (!m) { free(k); free(v); return jfail(j, "out of memory"); }
            *meta = m;
        }
        (*meta)[*n_meta].key = k;
        (*meta)[*n_meta].value = v;
        (*n_meta)++;
        if (accept(j, '}')) return 0;
        if (expect(j, ',')) return -1;
    }
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* Returns the first name that occurs twice or NULL; names[i] point into the records. */
static const char *find_duplicate(char ***names, int n) {
    qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
    for (int i = 1; i < n; i++)
        if (strcmp(*names[i - 1], *names[i]) == 0) return *names[i];
    return NULL;
}

static int cmp_begin(const void *a, const void *b) {
    const raw_tensor *x = *(const raw_tensor *const *)a, *y = *(const raw_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

void st_close(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta[i].key); free(f->meta[i].value); }
    free(f->meta);
    if (f->map) munmap(f->map, f->map_size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* The header length: the first 8 bytes, little-endian; the header must fit the file. */
static int header_length(const unsigned char *buf, size_t size, const char *name, uint64_t *out, char *err) {
    if (size < 8) {
        set_err(err, "%.200s: file is %zu bytes, too short for the 8-byte header length", name, size);
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen < 2) {
        set_err(err, "%.200s: header length %llu is too small (at least 2 bytes: \"{}\")", name,
                (unsigned long long)hlen);
        return -1;
    }
    if (hlen > ST_MAX_HEADER) {
        set_err(err, "%.200s: header length %llu exceeds the %u-byte limit", name,
                (unsigned long long)hlen, ST_MAX_HEADER);
        return -1;
    }
    if (hlen > size - 8) {
        set_err(err, "%.200s: header length %llu is larger than the %zu bytes after the length field "
                "(file truncated?)", name, (unsigned long long)hlen, size - 8);
        return -1;
    }
    *out = hlen;
    return 0;
}

/* The header's entries while they are parsed and checked; owned until handed to st_file. */
typedef struct {
    raw_tensor *rts;
    int n, cap;
    st_meta *meta;
    int n_meta, have_meta;
} st_header;

static void header_free(st_header *h) {
    for (int i = 0; i < h->n; i++) free(h->rts[i].t.name);
    free(h->rts);
    for (int i = 0; i < h->n_meta; i++) { free(h->meta[i].key); free(h->meta[i].value); }
    free(h->meta);
    memset(h, 0, sizeof *h);
}

/* One "key": value member of the header object: __metadata__ or a tensor entry. key is
 * taken (freed or owned by h). */
static int parse_member(json_in *j, st_header *h, char *key, size_t key_pos) {
    if (strcmp(key, "__metadata__") == 0) {
        free(key);
        if (h->have_meta) { j->pos = key_pos; return jfail(j, "duplicate key '__metadata__'"); }
        h->have_meta = 1;
        return parse_metadata(j, &h->meta, &h->n_meta);
    }
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        raw_tensor *r = realloc(h->rts, (size_t)cap * sizeof *r);
        if (!r) { free(key); return jfail(j, "out of memory"); }
        h->rts = r;
        h->cap = cap;
    }
    raw_tensor *rt = &h->rts[h->n++];
    memset(rt, 0, sizeof *rt);
    rt->t.name = key;
    j->key = key;
    if (parse_tensor_entry(j, rt)) return -1;
    j->key = NULL;
    return 0;
}

/* The header: one JSON object of tensor entries and an optional __metadata__, nothing
 * after it. */
static int parse_header(json_in *j, st_header *h) {
    if (expect(j, '{')) return -1;
    if (!accept(j, '}')) {
        for (;;) {
            char *key;
            skip_ws(j);
            size_t key_pos = j->pos;
            if (parse_string(j, &key)) return -1;
            if (expect(j, ':')) { free(key); return -1; }
            if (parse_member(j, h, key, key_pos)) return -1;
            if (accept(j, '}')) break;
            if (expect(j, ',')) return -1;
        }
    }
    skip_ws(j);
    if (j->pos != j->n) {
        char b[32];
        return jfail(j, "unexpected %s after the header object", peek_desc(j, b, sizeof b));
    }
    return 0;
}

/* Duplicate keys: tensors, then metadata. */
static int check_duplicates(const st_header *h, const char *name, char *err) {
    int n = h->n > h->n_meta ? h->n : h->n_meta;
    char ***names = malloc((size_t)n * sizeof *names + 1);
    if (!names) { set_err(err, "%.200s: out of memory", name); return -1; }
    for (int i = 0; i < h->n; i++) names[i] = &h->rts[i].t.name;
    const char *dup = find_duplicate(names, h->n);
    if (dup) set_err(err, "%.200s: duplicate key '%.200s' in header", name, dup);
    for (int i = 0; !dup && i < h->n_meta; i++) names[i] = &h->meta[i].key;
    if (!dup && (dup = find_duplicate(names, h->n_meta)) != NULL)
        set_err(err, "%.200s: duplicate __metadata__ key '%.200s'", name, dup);
    free(names);
    return dup ? -1 : 0;
}

/* A tensor's size from its dtype and shape, checked against its data_offsets and the data
 * section [data, data + data_size); sets numel, nbytes and data. hlen and size only
 * serve the message. */
static int check_extent(raw_tensor *r, const unsigned char *data, size_t data_size, uint64_t hlen, size_t size,
                        const char *name, char *err) {
    st_tensor *t = &r->t;
    uint64_t numel = 1;
    int overflow = 0;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t dim = (uint64_t)t->shape[d];
        if (dim && numel > UINT64_C(0x7fffffffffffffff) / dim) overflow = 1;
        else numel *= dim;
    }
    uint64_t esz = dtype_sizes[t->dtype];
    if (overflow || numel > UINT64_C(0x7fffffffffffffff) / esz) {
        set_err(err, "%.200s: tensor '%.200s': shape product overflows 64 bits", name, t->name);
        return -1;
    }
    char shp[160];
    size_t k = 0;
    shp[k++] = '[';
    for (int d = 0; d < t->ndim && k < sizeof shp - 24; d++)
        k += (size_t)snprintf(shp + k, sizeof shp - k, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    snprintf(shp + k, sizeof shp - k, "]");
    if (numel * esz != r->end - r->begin) {
        set_err(err, "%.200s: tensor '%.200s': shape %s of %s needs %llu bytes but data_offsets "
                "[%llu, %llu] span %llu", name, t->name, shp, dtype_names[t->dtype],
                (unsigned long long)(numel * esz), (unsigned long long)r->begin,
                (unsigned long long)r->end, (unsigned long long)(r->end - r->begin));
        return -1;
    }
    if (r->end > data_size) {
        set_err(err, "%.200s: tensor '%.200s': data_offsets [%llu, %llu] run past the end of the "
                "%zu-byte data section (file offset %llu > file size %zu)", name, t->name,
                (unsigned long long)r->begin, (unsigned long long)r->end, data_size,
                (unsigned long long)(8 + hlen + r->end), size);
        return -1;
    }
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)(numel * esz);
    t->data = data + r->begin;
    return 0;
}

/* No two tensors' bytes overlap. Empty tensors occupy no bytes and cannot overlap
 * anything; among the others, in order of their start, each must start at or after the
 * furthest end seen so far. */
static int check_overlaps(const st_header *h, const char *name, char *err) {
    const raw_tensor **order = malloc((size_t)h->n * sizeof *order + 1);
    if (!order) { set_err(err, "%.200s: out of memory", name); return -1; }
    for (int i = 0; i < h->n; i++) order[i] = &h->rts[i];
    qsort(order, (size_t)h->n, sizeof *order, cmp_begin);
    const raw_tensor *reach = NULL;
    int rc = 0;
    for (int i = 0; i < h->n && rc == 0; i++) {
        const raw_tensor *b = order[i];
        if (b->begin == b->end) continue;
        if (reach && b->begin < reach->end) {
            set_err(err, "%.200s: tensor '%.200s' data_offsets [%llu, %llu] overlap tensor '%.200s' [%llu, %llu]",
                    name, b->t.name, (unsigned long long)b->begin, (unsigned long long)b->end, reach->t.name,
                    (unsigned long long)reach->begin, (unsigned long long)reach->end);
            rc = -1;
        }
        if (!reach || b->end > reach->end) reach = b;
    }
    free(order);
    return rc;
}

/* Validates buf[0..size) and fills out (tensor data pointing into buf). */
static int parse_file(const unsigned char *buf, size_t size, const char *name, st_file *out, char *err) {
    memset(out, 0, sizeof *out);
    uint64_t hlen;
    if (header_length(buf, size, name, &hlen, err)) return -1;
    size_t data_size = size - 8 - (size_t)hlen;
    const unsigned char *data = buf + 8 + hlen;
    json_in j = {.s = (const char *)buf + 8, .n = (size_t)hlen, .file = name, .err = err};
    st_header h = { 0 };
    int rc = -1;
    if (parse_header(&j, &h) || check_duplicates(&h, name, err)) goto done;
    for (int i = 0; i < h.n; i++)
        if (check_extent(&h.rts[i], data, data_size, hlen, size, name, err)) goto done;
    if (check_overlaps(&h, name, err)) goto done;
    out->path = strdup(name);
    out->tensors = malloc((size_t)h.n * sizeof *out->tensors + 1);
    if (!out->path || !out->tensors) {
        free(out->path); free(out->tensors);
        memset(out, 0, sizeof *out);
        set_err(err, "%.200s: out of memory", name);
        goto done;
    }
    for (int i = 0; i < h.n; i++) out->tensors[i] = h.rts[i].t;
    out->n_tensors = h.n;
    out->meta = h.meta; out->n_meta = h.n_meta;
    h.meta = NULL; h.n_meta = 0;
    h.n = 0;     /* names now owned by out */
    rc = 0;
done:
    header_free(&h);
    return rc;
}

int st_open_memory(const void *buf, size_t size, const char *name, st_file *out, char *err) {
    return parse_file(buf, size, name ? name : "<memory>", out, err);
}

int st_open(const char *path, st_file *out, char *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { set_err(err, "%.200s: cannot open: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_err(err, "%.200s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, "%.200s: not a regular file", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        set_err(err, "%.200s: file is %zu bytes, too short for the 8-byte header length", path, size);
        return -1;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { set_err(err, "%.200s: mmap of %zu bytes failed: %s", path, size, strerror(errno)); return -1; }
    if (parse_file(map, size, path, out, err) != 0) { munmap(map, size); return -1; }
    out->map = map;
    out->map_size = size;
    return 0;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *st_meta_get(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

int st_read_f32(const st_tensor *t, float *dst, char *err) {
    const unsigned char *p = t->data;
    size_t n = (size_t)t->numel;
    if (t->nbytes != n * st_dtype_size(t->dtype)) {
        set_err(err, "tensor '%.200s': %zu bytes for %zu %s values", t->name, t->nbytes, n, st_dtype_name(t->dtype));
        return -1;
    }
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(dst, p, n * 4);
        return 0;
    case ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = util_half_to_float((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return 0;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = ((uint32_t)p[2 * i] << 16) | ((uint32_t)p[2 * i + 1] << 24);
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    default:
        set_err(err, "tensor '%.200s': dtype %s cannot be read as float32 (F32, F16 or BF16 expected)",
                t->name, st_dtype_name(t->dtype));
        return -1;
    }
}

/* ------------------------------------------------------------------------------------
 * Writer. */

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t len) {
    if (b->oom) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p; b->cap = cap;
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = 0;
}

static void sb_printf(strbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)len);
}

/* JSON string with the escapes serde_json (used by the reference library) emits. */
static void sb_json_string(strbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if (c < 0x20) sb_printf(b, "\\u%04x", c);
            else sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int write_all(FILE *fp, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, fp) == n ? 0 : -1; }

int st_write(const char *path, const st_tensor *tensors, int n, const st_meta *meta, int n_meta, char *err) {
    strbuf h = {0};
    uint64_t off = 0;
    sb_put(&h, "{", 1);
    for (int i = 0; i < n; i++) {
        const st_tensor *t = &tensors[i];
        if (!t->name || strcmp(t->name, "__metadata__") == 0 || (unsigned)t->dtype >= ST_DTYPE_COUNT ||
            t->ndim < 0 || t->ndim > SAMC_MAX_DIMS) {
            set_err(err, "%.200s: tensor %d '%.200s': invalid name, dtype or ndim %d", path, i,
                    t->name ? t->name : "(null)", t->ndim);
            free(h.s);
            return -1;
        }
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) {
                set_err(err, "%.200s: tensor '%.200s': negative dim %lld", path, t->name, (long long)t->shape[d]);
                free(h.s);
                return -1;
            }
            numel *= (uint64_t)t->shape[d];
        }
        uint64_t nbytes = numel * dtype_sizes[t->dtype];
        if (nbytes != t->nbytes || (nbytes && !t->data)) {
            set_err(err, "%.200s: tensor '%.200s': shape needs %llu bytes of %s but nbytes is %zu%s", path,
                    t->name, (unsigned long long)nbytes, dtype_names[t->dtype], t->nbytes,
                    t->data ? "" : " and data is NULL");
            free(h.s);
            return -1;
        }
        if (i) sb_put(&h, ",", 1);
        sb_json_string(&h, t->name);
        sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_names[t->dtype]);
        for (int d = 0; d < t->ndim; d++) sb_printf(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        sb_printf(&h, "],\"data_offsets\":[%llu,", (unsigned long long)off);
        off += nbytes;
        sb_printf(&h, "%llu]}", (unsigned long long)off);
    }
    if (n_meta > 0) {
        const char *open_meta = n ? ",\"__metadata__\":{" : "\"__metadata__\":{";
        sb_put(&h, open_meta, strlen(open_meta));
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_put(&h, ",", 1);
            sb_json_string(&h, meta[i].key);
            sb_put(&h, ":", 1);
            sb_json_string(&h, meta[i].value);
        }
        sb_put(&h, "}", 1);
    }
    sb_put(&h, "}", 1);
    while (h.n % 8) sb_put(&h, " ", 1);
    if (h.oom) { free(h.s); set_err(err, "%.200s: out of memory building the header", path); return -1; }

    /* Duplicate names would make an unreadable file. */
    char ***names = malloc((size_t)n * sizeof *names + 1);
    if (!names) { free(h.s); set_err(err, "%.200s: out of memory", path); return -1; }
    char **name_copies = malloc((size_t)n * sizeof *name_copies + 1);
    if (!name_copies) { free(names); free(h.s); set_err(err, "%.200s: out of memory", path); return -1; }
    for (int i = 0; i < n; i++) { name_copies[i] = tensors[i].name; names[i] = &name_copies[i]; }
    const char *dup = find_duplicate(names, n);
    if (dup) {
        set_err(err, "%.200s: duplicate tensor name '%.200s'", path, dup);
        free(names); free(name_copies); free(h.s);
        return -1;
    }
    free(names);
    free(name_copies);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) { free(h.s); set_err(err, "%.200s: out of memory", path); return -1; }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        set_err(err, "%.200s: cannot create: %s", tmp, strerror(errno));
        free(tmp); free(h.s);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int bad = write_all(fp, len8, 8) || write_all(fp, h.s, h.n);
    uint64_t written = 0;
    for (int i = 0; i < n && !bad; i++) {
        if (write_all(fp, tensors[i].data, tensors[i].nbytes)) {
            set_err(err, "%.200s: write failed in tensor '%.200s' at data byte %llu: %s", tmp,
                    tensors[i].name, (unsigned long long)written, strerror(errno));
            bad = 2;
        }
        written += tensors[i].nbytes;
    }
    if (bad == 1) set_err(err, "%.200s: write of the header failed: %s", tmp, strerror(errno));
    if (fflush(fp) != 0 && !bad) { set_err(err, "%.200s: flush failed: %s", tmp, strerror(errno)); bad = 1; }
    if (fclose(fp) != 0 && !bad) { set_err(err, "%.200s: close failed: %s", tmp, strerror(errno)); bad = 1; }
    free(h.s);
    if (!bad && rename(tmp, path) != 0) {
        set_err(err, "%.200s: cannot rename to %.200s: %s", tmp, path, strerror(errno));
        bad = 1;
    }
    if (bad) remove(tmp);
    free(tmp);
    return bad ? -1 : 0;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

void st_sort_by_name(st_tensor *tensors, int n) { qsort(tensors, (size_t)n, sizeof *tensors, cmp_tensor_name); }
