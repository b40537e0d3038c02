/* loader/pt.c: the torch.save zip container and a safe pickle subset, in plain C.
 *
 * Mirrors what torch.load(weights_only=True) accepts for a state dict
 * (torch/serialization.py _load, torch/_weights_only_unpickler.py), but shares no code
 * with it. Layout of this file:
 *   1. small helpers: errors, little-endian reads, checked arithmetic, CRC-32, an arena
 *   2. the zip reader (EOCD, zip64, central directory, local headers, stored entries only)
 *   3. the pickle interpreter (protocol 2..5 opcodes torch emits, allow-listed globals)
 *   4. building the state dict (strides, offsets, shared storages, densifying)
 *   5. the public entry points
 *
 * Safety: every offset and size read from the file is checked against the file size with
 * overflow-safe arithmetic before it is used; pickle values live in an arena with a size
 * budget and are never walked recursively, so cycles and deep nesting cannot hurt; the
 * stack, mark stack, memo, string lengths and tensor count are bounded.
 */
#include "loader/pt.h"

#include "loader/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Limits. The largest official checkpoint (sam2.1_hiera_large.pt, ~900 MB) has ~1000
 * tensors and a data.pkl of about 100 KB, so these leave wide margins. */
#define PT_MAX_ENTRIES     (1u << 20)        /* zip entries */
#define PT_MAX_PICKLE      ((uint64_t)256 << 20)
#define PT_MAX_STACK       (1u << 20)        /* pickle stack items */
#define PT_MAX_MARKS       1024              /* open MARKs (tuple/list nesting depth) */
#define PT_MAX_MEMO        (1u << 22)        /* memo indices */
#define PT_MAX_STR         ((uint64_t)1 << 20)  /* one string or bytes object */
#define PT_MAX_TENSORS     (1 << 17)
#define PT_MAX_NAME        4096              /* a state-dict key */
#define PT_MAX_NAMES_BYTES (64 << 20)        /* all state-dict keys together */
#define PT_MAX_SEQ         (1u << 24)        /* items in one tuple, list or dict */
#define PT_ARENA_LIMIT     ((size_t)512 << 20) /* all pickle values together */

/* ------------------------------------------------------------------------------------ */
/* 1. helpers                                                                           */

static int pt_fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pt_fail(char *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, SAMC_ERRMSG, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* [off, off+len) inside [0, size) without overflow. */
static inline int in_bounds(uint64_t off, uint64_t len, uint64_t size) {
    return off <= size && len <= size - off;
}

static inline int mul_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline int add_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_add_overflow(a, b, r); }

/* CRC-32 (zip), slice-by-8: eight 256-entry tables let the loop consume 8 bytes per step,
 * which keeps an optional full check of a 900 MB checkpoint well under a second. */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t pt_crc32(uint32_t crc, const void *data, size_t n) {
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = c ^ rd32(p), hi = rd32(p + 4);
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
            crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
            crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
    }
    while (n--) c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* Bump allocator for pickle values: freed all at once, so no value needs an owner. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

typedef struct {
    arena_block *head;
    size_t total;
} arena;

static void *arena_alloc(arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->total + cap > PT_ARENA_LIMIT) return NULL;
        arena_block *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head; b->used = 0; b->cap = cap;
        a->head = b;
        a->total += cap;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static void arena_free(arena *a) {
    for (arena_block *b = a->head, *nx; b; b = nx) { nx = b->next; free(b); }
    a->head = NULL; a->total = 0;
}

/* ------------------------------------------------------------------------------------ */
/* 2. zip reader (PKWARE APPNOTE 6.3: sections 4.3.7 local header, 4.3.12 central
 *    directory, 4.3.14-16 zip64 end records, 4.5.3 zip64 extra field)                  */

#define SIG_LOCAL   0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD    0x06054b50u
#define SIG_EOCD64  0x06064b50u
#define SIG_LOC64   0x07064b50u

typedef struct {
    const char *name;       /* inside the file, not NUL-terminated */
    size_t name_len;
    uint16_t method, flags;
    uint32_t crc;
    uint64_t csize, usize, local_off;
    uint64_t data_off;      /* resolved from the local header on first use (0 = not yet) */
    int crc_ok;             /* CRC already verified */
} zip_entry;

typedef struct {
    const uint8_t *buf;
    uint64_t size;
    const char *fname;
    zip_entry *e;           /* sorted by name */
    size_t n;
    const char *prefix;     /* "archive/" (points into an entry name) */
    size_t prefix_len;
    char *scratch;          /* name building for lookups */
    size_t scratch_cap;
} zip_reader;

static int entry_cmp(const void *a, const void *b) {
    const zip_entry *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static const zip_entry *zip_find(const zip_reader *z, const char *name, size_t len) {
    zip_entry key = { .name = name, .name_len = len };
    return bsearch(&key, z->e, z->n, sizeof *z->e, entry_cmp);
}

/* Finds <prefix><a><b>; b may be NULL. */
static zip_entry *zip_find_rec(zip_reader *z, const char *a, const char *b, size_t b_len) {
    size_t a_len = strlen(a);
    size_t need = z->prefix_len + a_len + (b ? b_len : 0);
    if (need > 0xffff) return NULL;   /* longer than any zip name */
    if (need > z->scratch_cap) {
        char *s = realloc(z->scratch, need);
        if (!s) return NULL;
        z->scratch = s; z->scratch_cap = need;
    }
    memcpy(z->scratch, z->prefix, z->prefix_len);
    memcpy(z->scratch + z->prefix_len, a, a_len);
    if (b) memcpy(z->scratch + z->prefix_len + a_len, b, b_len);
    return (zip_entry *)zip_find(z, z->scratch, need);
}

static void zip_close(zip_reader *z) {
    free(z->e);
    free(z->scratch);
    memset(z, 0, sizeof *z);
}

/* Reads the zip64 extended-information extra field (id 0x0001) of a central header:
 * only the fields whose 32-bit value is saturated are present, in a fixed order. */
static int zip64_extra(const zip_reader *z, const uint8_t *x, size_t xlen, zip_entry *e,
                       int need_u, int need_c, int need_o, uint64_t at, char *err) {
    size_t i = 0;
    while (i + 4 <= xlen) {
        uint16_t id = rd16(x + i), len = rd16(x + i + 2);
        if (len > xlen - i - 4)
            return pt_fail(err, "%s: central directory entry at byte %llu: extra field overruns its header",
                           z->fname, (unsigned long long)at);
        if (id == 0x0001) {
            const uint8_t *f = x + i + 4;
            size_t k = 0;
            if (need_u) { if (k + 8 > len) goto short_field; e->usize = rd64(f + k); k += 8; }
            if (need_c) { if (k + 8 > len) goto short_field; e->csize = rd64(f + k); k += 8; }
            if (need_o) { if (k + 8 > len) goto short_field; e->local_off = rd64(f + k); k += 8; }
            return 0;
        }
        i += 4 + (size_t)len;
    }
    return pt_fail(err, "%s: central directory entry at byte %llu has 0xFFFFFFFF sizes but no zip64 extra field",
                   z->fname, (unsigned long long)at);
short_field:
    return pt_fail(err, "%s: central directory entry at byte %llu: zip64 extra field too short",
                   z->fname, (unsigned long long)at);
}

/* The archive folder is not fixed ("archive/", "<file stem>/", ...): it is the folder of
 * the one top-level "<folder>/data.pkl". */
static int zip_find_prefix(zip_reader *z, char *err) {
    for (size_t i = 0; i < z->n; i++) {
        const zip_entry *e = &z->e[i];
        if (e->name_len < 10 || memcmp(e->name + e->name_len - 9, "/data.pkl", 9) != 0) continue;
        if (memchr(e->name, '/', e->name_len - 9)) continue;
        if (z->prefix)
            return pt_fail(err, "%s: two pickles in the archive ('%.*s' and '%.*sdata.pkl')", z->fname,
                           (int)e->name_len, e->name, (int)z->prefix_len, z->prefix);
        z->prefix = e->name; z->prefix_len = e->name_len - 8;
    }
    if (!z->prefix)
        return pt_fail(err, "%s: zip archive has no <folder>/data.pkl entry: not a torch.save checkpoint", z->fname);
    return 0;
}

static int zip_open(zip_reader *z, const uint8_t *buf, uint64_t size, const char *fname, char *err) {
    memset(z, 0, sizeof *z);
    z->buf = buf; z->size = size; z->fname = fname;
    if (size == 0) return pt_fail(err, "%s: empty file", fname);

    /* End of central directory: 22 bytes plus a comment of at most 65535 bytes, so it
     * starts in the last 65557 bytes. Search backwards for a record whose comment ends
     * inside the file. */
    uint64_t eocd = UINT64_MAX;
    uint64_t lo = size > 22 + 0xffff ? size - 22 - 0xffff : 0;
    for (uint64_t p = size >= 22 ? size - 22 + 1 : 0; p-- > lo;) {
        if (rd32(buf + p) == SIG_EOCD && rd16(buf + p + 20) <= size - p - 22) { eocd = p; break; }
    }
    if (eocd == UINT64_MAX) {
        if (buf[0] == 0x80 && size > 1 && buf[1] <= 5)
            return pt_fail(err, "%s: a legacy (torch < 1.6) pickle checkpoint, not the zip format; "
                                "re-save it with torch.save in torch >= 1.6", fname);
        if (size >= 4 && rd32(buf) == SIG_LOCAL && size >= 22)
            return pt_fail(err, "%s: zip archive is truncated (no end-of-central-directory record in the "
                                "last %llu bytes of %llu)", fname, (unsigned long long)(size - lo),
                           (unsigned long long)size);
        return pt_fail(err, "%s: not a zip archive (no end-of-central-directory record)", fname);
    }
    const uint8_t *q = buf + eocd;
    uint64_t disk = rd16(q + 4), cd_disk = rd16(q + 6);
    uint64_t n_disk = rd16(q + 8), n_total = rd16(q + 10);
    uint64_t cd_size = rd32(q + 12), cd_off = rd32(q + 16);
    uint64_t cd_limit = eocd;   /* the central directory must end before this */

    /* Zip64: a locator right before the EOCD points at the zip64 end record, whose
     * 64-bit counts and offsets replace the 16/32-bit ones. torch always writes it. */
    if (eocd >= 20 && rd32(buf + eocd - 20) == SIG_LOC64) {
        const uint8_t *l = buf + eocd - 20;
        uint64_t rec = rd64(l + 8);
        if (rd32(l + 4) != 0 || rd32(l + 16) > 1)
            return pt_fail(err, "%s: multi-disk zip archives are not supported", fname);
        if (!in_bounds(rec, 56, eocd - 20) || rd32(buf + rec) != SIG_EOCD64)
            return pt_fail(err, "%s: zip64 end-of-central-directory locator at byte %llu points to byte %llu, "
                                "which holds no zip64 end record", fname, (unsigned long long)(eocd - 20),
                           (unsigned long long)rec);
        const uint8_t *r = buf + rec;
        disk = rd32(r + 16); cd_disk = rd32(r + 20);
        n_disk = rd64(r + 24); n_total = rd64(r + 32);
        cd_size = rd64(r + 40); cd_off = rd64(r + 48);
        cd_limit = rec;
    } else if (n_total == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        return pt_fail(err, "%s: end-of-central-directory record at byte %llu needs zip64 but has no zip64 locator",
                       fname, (unsigned long long)eocd);
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total)
        return pt_fail(err, "%s: multi-disk zip archives are not supported", fname);
    if (!in_bounds(cd_off, cd_size, cd_limit))
        return pt_fail(err, "%s: central directory [%llu, +%llu) lies outside the archive (ends at byte %llu)",
                       fname, (unsigned long long)cd_off, (unsigned long long)cd_size, (unsigned long long)cd_limit);
    if (n_total > PT_MAX_ENTRIES || n_total > cd_size / 46)
        return pt_fail(err, "%s: central directory claims %llu entries in %llu bytes", fname,
                       (unsigned long long)n_total, (unsigned long long)cd_size);
    if (n_total == 0) return pt_fail(err, "%s: zip archive has no entries", fname);

    z->e = calloc(n_total, sizeof *z->e);
    if (!z->e) return pt_fail(err, "%s: out of memory for %llu zip entries", fname, (unsigned long long)n_total);
    uint64_t p = cd_off, cd_end = cd_off + cd_size;
    for (uint64_t i = 0; i < n_total; i++) {
        if (!in_bounds(p, 46, cd_end) || rd32(buf + p) != SIG_CENTRAL) {
            pt_fail(err, "%s: central directory entry %llu at byte %llu is missing or truncated", fname,
                    (unsigned long long)i, (unsigned long long)p);
            goto fail;
        }
        const uint8_t *h = buf + p;
        zip_entry *e = &z->e[i];
        e->flags = rd16(h + 8); e->method = rd16(h + 10); e->crc = rd32(h + 16);
        e->csize = rd32(h + 20); e->usize = rd32(h + 24);
        size_t nlen = rd16(h + 28), xlen = rd16(h + 30), clen = rd16(h + 32);
        uint32_t edisk = rd16(h + 34);
        e->local_off = rd32(h + 42);
        if (!in_bounds(p + 46, (uint64_t)nlen + xlen + clen, cd_end)) {
            pt_fail(err, "%s: central directory entry %llu at byte %llu: name/extra/comment overrun the directory",
                    fname, (unsigned long long)i, (unsigned long long)p);
            goto fail;
        }
        e->name = (const char *)h + 46; e->name_len = nlen;
        int nu = e->usize == 0xffffffffu, nc = e->csize == 0xffffffffu, no = e->local_off == 0xffffffffu;
        if ((nu || nc || no) && zip64_extra(z, h + 46 + nlen, xlen, e, nu, nc, no, p, err)) goto fail;
        if (edisk != 0 && edisk != 0xffff) {
            pt_fail(err, "%s: entry '%.*s' is on disk %u; multi-disk archives are not supported", fname,
                    (int)nlen, e->name, edisk);
            goto fail;
        }
        p += 46 + nlen + xlen + clen;
    }
    if (p != cd_end) {
        pt_fail(err, "%s: central directory holds %llu bytes after its %llu entries", fname,
                (unsigned long long)(cd_end - p), (unsigned long long)n_total);
        goto fail;
    }
    z->n = n_total;
    qsort(z->e, z->n, sizeof *z->e, entry_cmp);
    for (size_t i = 1; i < z->n; i++)
        if (entry_cmp(&z->e[i - 1], &z->e[i]) == 0) {
            pt_fail(err, "%s: duplicate zip entry '%.*s'", fname, (int)z->e[i].name_len, z->e[i].name);
            goto fail;
        }
    if (zip_find_prefix(z, err) == 0) return 0;
fail:
    zip_close(z);
    return -1;
}

/* Resolves an entry's data: stored only, local header consistent, inside the file. */
static int zip_data(zip_reader *z, zip_entry *e, int check_crc, const uint8_t **out, char *err) {
    const char *f = z->fname;
    int nl = (int)e->name_len;
    if (e->flags & 1) return pt_fail(err, "%s: entry '%.*s' is encrypted", f, nl, e->name);
    if (e->method != 0)
        return pt_fail(err, "%s: entry '%.*s' uses unsupported compression method %u%s (torch.save writes "
                            "stored entries)", f, nl, e->name, e->method, e->method == 8 ? " (deflate)" : "");
    if (e->csize != e->usize)
        return pt_fail(err, "%s: stored entry '%.*s' has compressed size %llu != size %llu", f, nl, e->name,
                       (unsigned long long)e->csize, (unsigned long long)e->usize);
    if (!e->data_off) {
        uint64_t lh = e->local_off;
        if (!in_bounds(lh, 30, z->size) || rd32(z->buf + lh) != SIG_LOCAL)
            return pt_fail(err, "%s: entry '%.*s': no local header at byte %llu", f, nl, e->name,
                           (unsigned long long)lh);
        uint64_t lnl = rd16(z->buf + lh + 26), lxl = rd16(z->buf + lh + 28);
        if (lnl != e->name_len || !in_bounds(lh + 30, lnl + lxl, z->size) ||
            memcmp(z->buf + lh + 30, e->name, e->name_len) != 0)
            return pt_fail(err, "%s: entry '%.*s': local header at byte %llu names another file", f, nl, e->name,
                           (unsigned long long)lh);
        /* torch pads the local extra field so that data starts on a 64-byte boundary. */
        uint64_t d = lh + 30 + lnl + lxl;
        if (!in_bounds(d, e->usize, z->size))
            return pt_fail(err, "%s: entry '%.*s': data [%llu, +%llu) runs past the end of the file (%llu bytes)",
                           f, nl, e->name, (unsigned long long)d, (unsigned long long)e->usize,
                           (unsigned long long)z->size);
        e->data_off = d;
    }
    if (check_crc && !e->crc_ok) {
        uint32_t c = pt_crc32(0, z->buf + e->data_off, (size_t)e->usize);
        if (c != e->crc)
            return pt_fail(err, "%s: entry '%.*s': CRC-32 mismatch (stored 0x%08x, computed 0x%08x): file is corrupted",
                           f, nl, e->name, e->crc, c);
        e->crc_ok = 1;
    }
    *out = z->buf + e->data_off;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* 3. pickle interpreter (opcodes as in CPython Lib/pickletools.py)                      */

typedef enum { G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_STATE, G_STORAGE } g_kind;

#define PT_DTYPE_SKIPPED (-2)

typedef struct {
    const char *module, *name;
    g_kind kind;
    int dtype;          /* st_dtype for storages, -1 when samc has no such dtype (refused),
                           PT_DTYPE_SKIPPED for complex storages (listed, not loaded) */
    int elsize;
    const char *torch_dtype;
} pt_global;

/* The only callables a checkpoint may name; everything else is refused, as torch's
 * weights_only unpickler does. */
static const pt_global pt_globals[] = {
    { "collections", "OrderedDict", G_ORDERED_DICT, -1, 0, NULL },
    { "torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, -1, 0, NULL },
    { "torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, -1, 0, NULL },
    { "torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE, -1, 0, NULL },
    { "torch", "FloatStorage", G_STORAGE, ST_F32, 4, "float32" },
    { "torch", "HalfStorage", G_STORAGE, ST_F16, 2, "float16" },
    { "torch", "BFloat16Storage", G_STORAGE, ST_BF16, 2, "bfloat16" },
    { "torch", "DoubleStorage", G_STORAGE, -1, 8, "float64" },
    { "torch", "LongStorage", G_STORAGE, ST_I64, 8, "int64" },
    { "torch", "IntStorage", G_STORAGE, ST_I32, 4, "int32" },
    { "torch", "ShortStorage", G_STORAGE, -1, 2, "int16" },
    { "torch", "CharStorage", G_STORAGE, -1, 1, "int8" },
    { "torch", "ByteStorage", G_STORAGE, ST_U8, 1, "uint8" },
    { "torch", "BoolStorage", G_STORAGE, ST_BOOL, 1, "bool" },
    /* complex buffers (SAM3's ViT RoPE tables, freqs_cis): samc has no complex dtype; such
     * tensors are listed in pt_checkpoint.skipped instead of tensors (see pt.h) */
    { "torch", "ComplexFloatStorage", G_STORAGE, PT_DTYPE_SKIPPED, 8, "complex64" },
    { "torch", "ComplexDoubleStorage", G_STORAGE, PT_DTYPE_SKIPPED, 16, "complex128" },
};

typedef enum { PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_BYTES, PV_TUPLE, PV_LIST, PV_DICT,
               PV_GLOBAL, PV_STORAGE, PV_TENSOR } pv_kind;

static const char *pv_kind_name(int k) {
    static const char *names[] = { "None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict",
                                   "global", "storage", "tensor" };
    return k >= 0 && k <= PV_TENSOR ? names[k] : "?";
}

typedef struct pv pv;
struct pv {
    pv_kind kind;
    union {
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s;          /* points into data.pkl */
        struct { pv **v; size_t n, cap; } seq;          /* tuple, list; dict: v[2k] key, v[2k+1] value */
        const pt_global *g;
        struct { const pt_global *cls; zip_entry *e; uint64_t numel; const char *key; size_t key_len; } st;
        struct { const pv *storage; uint64_t offset, numel; int ndim;
                 int64_t shape[SAMC_MAX_DIMS], stride[SAMC_MAX_DIMS]; } t;
    } u;
};

typedef struct {
    const uint8_t *base, *p, *end;
    zip_reader *z;
    unsigned flags;
    arena a;
    pv **stack; size_t sp, stack_cap;
    size_t marks[PT_MAX_MARKS]; size_t n_marks;
    pv **memo; size_t memo_cap, memo_len;
    int n_tensors;
    size_t op_pos;
    uint8_t op;
    char *err;
} pvm;

static int vm_fail(pvm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vm_fail(pvm *vm, const char *fmt, ...) {
    if (!vm->err) return -1;
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(vm->err, SAMC_ERRMSG, "%.150s: %.*sdata.pkl byte %zu (opcode 0x%02x): %s", vm->z->fname,
             vm->z->prefix_len > 40 ? 40 : (int)vm->z->prefix_len, vm->z->prefix, vm->op_pos, vm->op, what);
    return -1;
}

static pv *vm_new(pvm *vm, pv_kind k) {
    pv *v = arena_alloc(&vm->a, sizeof *v);
    if (!v) { vm_fail(vm, "pickle needs more than %zu MB of values", PT_ARENA_LIMIT >> 20); return NULL; }
    memset(v, 0, sizeof *v);
    v->kind = k;
    return v;
}

static int seq_reserve(pvm *vm, pv *s, size_t extra) {
    if (extra > PT_MAX_SEQ || s->u.seq.n + extra > PT_MAX_SEQ)
        return vm_fail(vm, "%s grows past %u items", pv_kind_name(s->kind), PT_MAX_SEQ);
    size_t need = s->u.seq.n + extra;
    if (need <= s->u.seq.cap) return 0;
    size_t cap = s->u.seq.cap ? s->u.seq.cap : 4;
    while (cap < need) cap *= 2;
    pv **v = arena_alloc(&vm->a, cap * sizeof *v);
    if (!v) return vm_fail(vm, "pickle needs more than %zu MB of values", PT_ARENA_LIMIT >> 20);
    if (s->u.seq.n) memcpy(v, s->u.seq.v, s->u.seq.n * sizeof *v);
    s->u.seq.v = v;
    s->u.seq.cap = cap;
    return 0;
}

static int vm_push(pvm *vm, pv *v) {
    if (!v) return -1;
    if (vm->sp == vm->stack_cap) {
        if (vm->stack_cap >= PT_MAX_STACK) return vm_fail(vm, "pickle stack deeper than %u items", PT_MAX_STACK);
        size_t cap = vm->stack_cap ? vm->stack_cap * 2 : 256;
        pv **s = realloc(vm->stack, cap * sizeof *s);
        if (!s) return vm_fail(vm, "out of memory for the pickle stack");
        vm->stack = s; vm->stack_cap = cap;
    }
    vm->stack[vm->sp++] = v;
    return 0;
}

/* Items above the innermost mark (MARK opens a new frame, like Python's metastack). */
static size_t vm_floor(const pvm *vm) { return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0; }

static pv *vm_pop(pvm *vm) {
    if (vm->sp <= vm_floor(vm)) { vm_fail(vm, "pickle stack underflow"); return NULL; }
    return vm->stack[--vm->sp];
}

static pv *vm_top(pvm *vm) {
    if (vm->sp <= vm_floor(vm)) { vm_fail(vm, "pickle stack underflow"); return NULL; }
    return vm->stack[vm->sp - 1];
}

/* Pops the items above the innermost mark and the mark itself; *items stays valid until
 * the next push. */
static int vm_pop_mark(pvm *vm, pv ***items, size_t *n) {
    if (!vm->n_marks) return vm_fail(vm, "no MARK on the stack");
    size_t m = vm->marks[--vm->n_marks];
    *items = vm->stack ? vm->stack + m : NULL;   /* NULL before the first push */
    *n = vm->sp - m;
    vm->sp = m;
    return 0;
}

static int vm_need(pvm *vm, uint64_t n, const uint8_t **arg) {
    if ((uint64_t)(vm->end - vm->p) < n)
        return vm_fail(vm, "argument of %llu bytes runs past the end of the pickle", (unsigned long long)n);
    *arg = vm->p;
    vm->p += n;
    return 0;
}

static int vm_push_str(pvm *vm, pv_kind k, uint64_t n) {
    if (n > PT_MAX_STR) return vm_fail(vm, "string of %llu bytes is longer than the %llu-byte limit",
                                       (unsigned long long)n, (unsigned long long)PT_MAX_STR);
    const uint8_t *a = NULL;
    if (vm_need(vm, n, &a)) return -1;
    pv *v = vm_new(vm, k);
    if (!v) return -1;
    v->u.s.p = (const char *)a; v->u.s.n = (size_t)n;
    return vm_push(vm, v);
}

static int str_is(const pv *v, const char *s) {
    return v && v->kind == PV_STR && v->u.s.n == strlen(s) && memcmp(v->u.s.p, s, v->u.s.n) == 0;
}

static int vm_global(pvm *vm, const char *mod, size_t mod_n, const char *name, size_t name_n) {
    for (size_t i = 0; i < sizeof pt_globals / sizeof pt_globals[0]; i++) {
        const pt_global *g = &pt_globals[i];
        if (strlen(g->module) == mod_n && memcmp(g->module, mod, mod_n) == 0 && strlen(g->name) == name_n &&
            memcmp(g->name, name, name_n) == 0) {
            pv *v = vm_new(vm, PV_GLOBAL);
            if (!v) return -1;
            v->u.g = g;
            return vm_push(vm, v);
        }
    }
    int mn = mod_n > 200 ? 200 : (int)mod_n, nn = name_n > 200 ? 200 : (int)name_n;
    return vm_fail(vm, "refusing to load global '%.*s.%.*s': a state dict names only OrderedDict, torch tensor "
                       "rebuild functions and storage types (the file may be malicious)", mn, mod, nn, name);
}

/* persistent_load: ('storage', <storage class>, key, location, numel) -> <prefix>data/<key>. */
static int vm_persistent(pvm *vm, pv *pid) {
    if (!pid || pid->kind != PV_TUPLE || pid->u.seq.n != 5 || !str_is(pid->u.seq.v[0], "storage"))
        return vm_fail(vm, "persistent id is not a ('storage', type, key, location, numel) tuple");
    pv **f = pid->u.seq.v;
    if (f[1]->kind != PV_GLOBAL || f[1]->u.g->kind != G_STORAGE)
        return vm_fail(vm, "persistent id names a %s, not a torch storage type", pv_kind_name(f[1]->kind));
    if (f[2]->kind != PV_STR || f[3]->kind != PV_STR || f[4]->kind != PV_INT || f[4]->u.i < 0)
        return vm_fail(vm, "persistent id fields are not (str key, str location, int numel >= 0)");
    const pt_global *cls = f[1]->u.g;
    const char *key = f[2]->u.s.p;
    int kn = f[2]->u.s.n > 200 ? 200 : (int)f[2]->u.s.n;
    zip_entry *e = zip_find_rec(vm->z, "data/", key, f[2]->u.s.n);
    if (!e)
        return vm_fail(vm, "storage '%.*s' has no record '%.*sdata/%.*s' in the archive", kn, key,
                       (int)vm->z->prefix_len, vm->z->prefix, kn, key);
    uint64_t numel = (uint64_t)f[4]->u.i, nbytes;
    if (mul_u64(numel, (uint64_t)cls->elsize, &nbytes) || nbytes > e->usize)
        return vm_fail(vm, "storage '%.*s' declares %llu %s elements but its record holds only %llu bytes", kn, key,
                       (unsigned long long)numel, cls->torch_dtype, (unsigned long long)e->usize);
    const uint8_t *data;
    if (zip_data(vm->z, e, (vm->flags & PT_VERIFY_STORAGE_CRC) != 0, &data, vm->err)) return -1;
    pv *v = vm_new(vm, PV_STORAGE);
    if (!v) return -1;
    v->u.st.cls = cls; v->u.st.e = e; v->u.st.numel = numel; v->u.st.key = key; v->u.st.key_len = f[2]->u.s.n;
    return vm_push(vm, v);
}

/* torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]): a view of `size` with `stride` starting at element
 * storage_offset; checked here so that every element it names lies inside the storage. */
static pv *vm_rebuild_tensor(pvm *vm, pv *args) {
    size_t n = args->u.seq.n;
    pv **a = args->u.seq.v;
    if (n != 6 && n != 7) { vm_fail(vm, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", n); return NULL; }
    if (a[0]->kind != PV_STORAGE) { vm_fail(vm, "_rebuild_tensor_v2: argument 1 is a %s, not a storage", pv_kind_name(a[0]->kind)); return NULL; }
    if (a[1]->kind != PV_INT || a[1]->u.i < 0) { vm_fail(vm, "_rebuild_tensor_v2: storage offset is not an int >= 0"); return NULL; }
    if ((a[2]->kind != PV_TUPLE && a[2]->kind != PV_LIST) || (a[3]->kind != PV_TUPLE && a[3]->kind != PV_LIST)) {
        vm_fail(vm, "_rebuild_tensor_v2: size and stride must be tuples");
        return NULL;
    }
    if (a[4]->kind != PV_BOOL && a[4]->kind != PV_INT) { vm_fail(vm, "_rebuild_tensor_v2: requires_grad is a %s", pv_kind_name(a[4]->kind)); return NULL; }
    if (a[5]->kind != PV_DICT && a[5]->kind != PV_NONE) { vm_fail(vm, "_rebuild_tensor_v2: backward_hooks is a %s", pv_kind_name(a[5]->kind)); return NULL; }
    const pv *st = a[0];
    size_t nd = a[2]->u.seq.n;
    if (nd > SAMC_MAX_DIMS) { vm_fail(vm, "tensor has %zu dimensions; samc supports at most %d", nd, SAMC_MAX_DIMS); return NULL; }
    if (a[3]->u.seq.n != nd) { vm_fail(vm, "tensor size has %zu dims but stride has %zu", nd, a[3]->u.seq.n); return NULL; }
    if (++vm->n_tensors > PT_MAX_TENSORS) { vm_fail(vm, "more than %d tensors", PT_MAX_TENSORS); return NULL; }
    pv *t = vm_new(vm, PV_TENSOR);
    if (!t) return NULL;
    t->u.t.storage = st;
    t->u.t.offset = (uint64_t)a[1]->u.i;
    t->u.t.ndim = (int)nd;
    uint64_t numel = 1, last = t->u.t.offset;   /* last: index of the furthest element */
    for (size_t i = 0; i < nd; i++) {
        const pv *s = a[2]->u.seq.v[i], *d = a[3]->u.seq.v[i];
        if (s->kind != PV_INT || s->u.i < 0 || d->kind != PV_INT || d->u.i < 0) {
            vm_fail(vm, "tensor size/stride entry %zu is not an int >= 0", i);
            return NULL;
        }
        t->u.t.shape[i] = s->u.i;
        t->u.t.stride[i] = d->u.i;
        if (mul_u64(numel, (uint64_t)s->u.i, &numel)) numel = UINT64_MAX;
    }
    if (numel > (uint64_t)INT64_MAX / 8) {
        vm_fail(vm, "tensor of %s elements is too large", numel == UINT64_MAX ? "more than 2^64" : "2^61 or more");
        return NULL;
    }
    t->u.t.numel = numel;
    if (numel > 0) {
        for (size_t i = 0; i < nd; i++) {
            uint64_t span;
            if (mul_u64((uint64_t)t->u.t.shape[i] - 1, (uint64_t)t->u.t.stride[i], &span) || add_u64(last, span, &last)) {
                last = UINT64_MAX;
                break;
            }
        }
        if (last >= st->u.st.numel) {
            char where[32];
            if (last == UINT64_MAX) snprintf(where, sizeof where, "beyond 2^64");
            else snprintf(where, sizeof where, "%llu", (unsigned long long)last);
            vm_fail(vm, "tensor view (offset %llu, %zu dims) reaches element %s of storage '%.*s', which has %llu elements",
                    (unsigned long long)t->u.t.offset, nd, where,
                    st->u.st.key_len > 200 ? 200 : (int)st->u.st.key_len, st->u.st.key,
                    (unsigned long long)st->u.st.numel);
            return NULL;
        }
    }
    return t;
}

static int vm_call(pvm *vm, pv *fn, pv *args) {
    if (!fn || !args) return -1;
    if (fn->kind != PV_GLOBAL) return vm_fail(vm, "REDUCE on a %s, not a callable", pv_kind_name(fn->kind));
    if (args->kind != PV_TUPLE) return vm_fail(vm, "REDUCE arguments are a %s, not a tuple", pv_kind_name(args->kind));
    const pt_global *g = fn->u.g;
    size_t n = args->u.seq.n;
    switch (g->kind) {
    case G_ORDERED_DICT:
        if (n != 0) return vm_fail(vm, "OrderedDict called with %zu arguments", n);
        return vm_push(vm, vm_new(vm, PV_DICT));
    case G_REBUILD_TENSOR_V2:
        return vm_push(vm, vm_rebuild_tensor(vm, args));
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE: {
        /* _rebuild_parameter(data, requires_grad, backward_hooks[, state]): the Parameter
         * wraps the tensor; for inference the tensor is all that matters. */
        size_t want = g->kind == G_REBUILD_PARAMETER ? 3 : 4;
        if (n != want) return vm_fail(vm, "%s takes %zu arguments, got %zu", g->name, want, n);
        if (args->u.seq.v[0]->kind != PV_TENSOR) return vm_fail(vm, "%s of a %s", g->name, pv_kind_name(args->u.seq.v[0]->kind));
        return vm_push(vm, args->u.seq.v[0]);
    }
    case G_STORAGE:
        return vm_fail(vm, "calling %s.%s is not supported", g->module, g->name);
    }
    return vm_fail(vm, "internal: unknown global kind");
}

static int memo_put(pvm *vm, uint64_t idx) {
    pv *v = vm_top(vm);
    if (!v) return -1;
    if (idx >= PT_MAX_MEMO) return vm_fail(vm, "memo index %llu is above the limit %u", (unsigned long long)idx, PT_MAX_MEMO);
    if (idx >= vm->memo_cap) {
        size_t cap = vm->memo_cap ? vm->memo_cap : 256;
        while (cap <= idx) cap *= 2;
        pv **m = realloc(vm->memo, cap * sizeof *m);
        if (!m) return vm_fail(vm, "out of memory for the memo");
        memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof *m);
        vm->memo = m; vm->memo_cap = cap;
    }
    if (!vm->memo[idx]) vm->memo_len++;
    vm->memo[idx] = v;
    return 0;
}

static int memo_get(pvm *vm, uint64_t idx) {
    if (idx >= vm->memo_cap || !vm->memo[idx]) return vm_fail(vm, "memo index %llu was never stored", (unsigned long long)idx);
    return vm_push(vm, vm->memo[idx]);
}

static pv *vm_make_seq(pvm *vm, pv_kind k, pv **items, size_t n) {
    pv *t = vm_new(vm, k);
    if (!t || seq_reserve(vm, t, n)) return NULL;
    if (n) memcpy(t->u.seq.v, items, n * sizeof *items);
    t->u.seq.n = n;
    return t;
}

static int vm_setitems(pvm *vm, pv *d, pv **items, size_t n) {
    if (d->kind != PV_DICT) return vm_fail(vm, "SETITEM(S) on a %s, not a dict", pv_kind_name(d->kind));
    if (n % 2) return vm_fail(vm, "SETITEMS with an odd number (%zu) of items", n);
    if (n == 0) return 0;
    if (seq_reserve(vm, d, n)) return -1;
    memcpy(d->u.seq.v + d->u.seq.n, items, n * sizeof *items);
    d->u.seq.n += n;
    return 0;
}

static int vm_appends(pvm *vm, pv *l, pv **items, size_t n) {
    if (l->kind != PV_LIST) return vm_fail(vm, "APPEND(S) on a %s, not a list", pv_kind_name(l->kind));
    if (n == 0) return 0;
    if (seq_reserve(vm, l, n)) return -1;
    memcpy(l->u.seq.v + l->u.seq.n, items, n * sizeof *items);
    l->u.seq.n += n;
    return 0;
}

/* The opcodes, one function per group. Each returns 0 when it ran op, -1 on an error
 * (vm->err filled), or OP_OTHER when op is not one of its group. */
enum { OP_OTHER = 1 };

/* PROTO, FRAME, MARK, POP, POP_MARK: framing and the stack itself. */
static int vm_op_stack(pvm *vm, uint8_t op) {
    const uint8_t *a = NULL;
    pv **items = NULL;
    size_t n = 0;
    switch (op) {
    case 0x80: /* PROTO */
        if (vm_need(vm, 1, &a)) return -1;
        if (a[0] < 2 || a[0] > 5) return vm_fail(vm, "pickle protocol %u is not supported (2..5)", a[0]);
        return 0;
    case 0x95: /* FRAME: a length hint only; opcodes are read the same inside */
        return vm_need(vm, 8, &a);
    case '(': /* MARK */
        if (vm->n_marks == PT_MAX_MARKS) return vm_fail(vm, "more than %d nested MARKs", PT_MAX_MARKS);
        vm->marks[vm->n_marks++] = vm->sp;
        return 0;
    case '0': /* POP */
        return vm_pop(vm) ? 0 : -1;
    case '1': /* POP_MARK */
        return vm_pop_mark(vm, &items, &n);
    default:
        return OP_OTHER;
    }
}

/* Strings and bytes: the length in 1, 4 or 8 bytes, then the data. */
static int vm_op_text(pvm *vm, uint8_t op) {
    const uint8_t *a = NULL;
    switch (op) {
    case 'X': /* BINUNICODE */
        return vm_need(vm, 4, &a) ? -1 : vm_push_str(vm, PV_STR, rd32(a));
    case 0x8c: /* SHORT_BINUNICODE */
    case 'U':  /* SHORT_BINSTRING (py2 str, read as text by torch's unpickler) */
        return vm_need(vm, 1, &a) ? -1 : vm_push_str(vm, PV_STR, a[0]);
    case 0x8d: /* BINUNICODE8 */
        return vm_need(vm, 8, &a) ? -1 : vm_push_str(vm, PV_STR, rd64(a));
    case 'T': /* BINSTRING: signed 4-byte length */
        if (vm_need(vm, 4, &a)) return -1;
        if ((int32_t)rd32(a) < 0) return vm_fail(vm, "negative BINSTRING length");
        return vm_push_str(vm, PV_STR, rd32(a));
    case 'C': /* SHORT_BINBYTES */
        return vm_need(vm, 1, &a) ? -1 : vm_push_str(vm, PV_BYTES, a[0]);
    case 'B': /* BINBYTES */
        return vm_need(vm, 4, &a) ? -1 : vm_push_str(vm, PV_BYTES, rd32(a));
    case 0x8e: /* BINBYTES8 */
        return vm_need(vm, 8, &a) ? -1 : vm_push_str(vm, PV_BYTES, rd64(a));
    default:
        return OP_OTHER;
    }
}

/* LONG1, LONG4: little-endian two's complement of n bytes, n read in 1 or 4 bytes. */
static int vm_long(pvm *vm, uint8_t op) {
    const uint8_t *a = NULL;
    if (vm_need(vm, op == 0x8a ? 1 : 4, &a)) return -1;
    uint64_t len = op == 0x8a ? a[0] : rd32(a);
    if (len > 8) return vm_fail(vm, "integer of %llu bytes does not fit in 64 bits", (unsigned long long)len);
    if (vm_need(vm, len, &a)) return -1;
    uint64_t u = 0;
    for (size_t i = 0; i < len; i++) u |= (uint64_t)a[i] << (8 * i);
    if (len > 0 && len < 8 && (a[len - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * len);
    pv *v = vm_new(vm, PV_INT);
    if (!v) return -1;
    memcpy(&v->u.i, &u, sizeof u);
    return vm_push(vm, v);
}

/* None, booleans, integers and floats. */
static int vm_op_scalar(pvm *vm, uint8_t op) {
    const uint8_t *a = NULL;
    pv *v;
    switch (op) {
    case 'N':
        return vm_push(vm, vm_new(vm, PV_NONE));
    case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
        if (!(v = vm_new(vm, PV_BOOL))) return -1;
        v->u.i = op == 0x88;
        return vm_push(vm, v);
    case 'J': case 'K': case 'M': { /* BININT (int32), BININT1 (u8), BININT2 (u16) */
        size_t k = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        if (vm_need(vm, k, &a)) return -1;
        if (!(v = vm_new(vm, PV_INT))) return -1;
        v->u.i = op == 'J' ? (int64_t)(int32_t)rd32(a) : op == 'K' ? a[0] : rd16(a);
        return vm_push(vm, v);
    }
    case 0x8a: case 0x8b:
        return vm_long(vm, op);
    case 'G': { /* BINFLOAT: big-endian IEEE double */
        if (vm_need(vm, 8, &a)) return -1;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = u << 8 | a[i];
        if (!(v = vm_new(vm, PV_FLOAT))) return -1;
        memcpy(&v->u.f, &u, sizeof u);
        return vm_push(vm, v);
    }
    default:
        return OP_OTHER;
    }
}

/* Tuples, lists and dicts: empty ones, ones built from the stack, and items added. */
static int vm_op_container(pvm *vm, uint8_t op) {
    pv *v, *w, **items = NULL, *kv[2];
    size_t n = 0;
    switch (op) {
    case '}': return vm_push(vm, vm_new(vm, PV_DICT));
    case ']': return vm_push(vm, vm_new(vm, PV_LIST));
    case ')': return vm_push(vm, vm_new(vm, PV_TUPLE));
    case 't': /* TUPLE */
        if (vm_pop_mark(vm, &items, &n)) return -1;
        return vm_push(vm, vm_make_seq(vm, PV_TUPLE, items, n));
    case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */
        n = (size_t)(op - 0x84);
        if (vm->sp - vm_floor(vm) < n) return vm_fail(vm, "TUPLE%zu with fewer than %zu items", n, n);
        vm->sp -= n;
        return vm_push(vm, vm_make_seq(vm, PV_TUPLE, vm->stack + vm->sp, n));
    case 'l': /* LIST */
        if (vm_pop_mark(vm, &items, &n)) return -1;
        return vm_push(vm, vm_make_seq(vm, PV_LIST, items, n));
    case 'd': /* DICT */
        if (vm_pop_mark(vm, &items, &n) || !(v = vm_new(vm, PV_DICT)) || vm_setitems(vm, v, items, n)) return -1;
        return vm_push(vm, v);
    case 'a': /* APPEND */
        if (!(w = vm_pop(vm)) || !(v = vm_top(vm))) return -1;
        return vm_appends(vm, v, &w, 1);
    case 'e': /* APPENDS */
        if (vm_pop_mark(vm, &items, &n) || !(v = vm_top(vm))) return -1;
        return vm_appends(vm, v, items, n);
    case 's': /* SETITEM */
        if (!(kv[1] = vm_pop(vm)) || !(kv[0] = vm_pop(vm)) || !(v = vm_top(vm))) return -1;
        return vm_setitems(vm, v, kv, 2);
    case 'u': /* SETITEMS */
        if (vm_pop_mark(vm, &items, &n) || !(v = vm_top(vm))) return -1;
        return vm_setitems(vm, v, items, n);
    default:
        return OP_OTHER;
    }
}

/* The memo: objects stored by index (BINPUT, LONG_BINPUT, MEMOIZE) and fetched again. */
static int vm_op_memo(pvm *vm, uint8_t op) {
    const uint8_t *a = NULL;
    switch (op) {
    case 'q': /* BINPUT */
        return vm_need(vm, 1, &a) ? -1 : memo_put(vm, a[0]);
    case 'r': /* LONG_BINPUT */
        return vm_need(vm, 4, &a) ? -1 : memo_put(vm, rd32(a));
    case 0x94: /* MEMOIZE */
        return memo_put(vm, vm->memo_len);
    case 'h': /* BINGET */
        return vm_need(vm, 1, &a) ? -1 : memo_get(vm, a[0]);
    case 'j': /* LONG_BINGET */
        return vm_need(vm, 4, &a) ? -1 : memo_get(vm, rd32(a));
    default:
        return OP_OTHER;
    }
}

/* GLOBAL "module\nname\n": both names within 512 bytes. */
static int vm_global_op(pvm *vm) {
    const uint8_t *m = vm->p, *nl1, *nl2;
    size_t room = (size_t)(vm->end - vm->p);
    if (!(nl1 = memchr(m, '\n', room < 512 ? room : 512)) ||
        !(nl2 = memchr(nl1 + 1, '\n', (size_t)(vm->end - nl1 - 1) < 512 ? (size_t)(vm->end - nl1 - 1) : 512)))
        return vm_fail(vm, "GLOBAL without two newline-terminated names");
    vm->p = nl2 + 1;
    return vm_global(vm, (const char *)m, (size_t)(nl1 - m), (const char *)nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

/* Objects: globals (only the allowed ones), calls of them, BUILD and persistent ids. */
static int vm_op_object(pvm *vm, uint8_t op) {
    pv *v, *w;
    switch (op) {
    case 'c':
        return vm_global_op(vm);
    case 0x93: /* STACK_GLOBAL */
        if (!(w = vm_pop(vm)) || !(v = vm_pop(vm))) return -1;
        if (v->kind != PV_STR || w->kind != PV_STR)
            return vm_fail(vm, "STACK_GLOBAL of a %s and a %s", pv_kind_name(v->kind), pv_kind_name(w->kind));
        return vm_global(vm, v->u.s.p, v->u.s.n, w->u.s.p, w->u.s.n);
    case 'R': /* REDUCE */
        if (!(w = vm_pop(vm)) || !(v = vm_pop(vm))) return -1;
        return vm_call(vm, v, w);
    case 0x81: /* NEWOBJ: cls.__new__(cls, *args); only OrderedDict makes sense here */
        if (!(w = vm_pop(vm)) || !(v = vm_pop(vm))) return -1;
        if (v->kind != PV_GLOBAL || v->u.g->kind != G_ORDERED_DICT)
            return vm_fail(vm, "NEWOBJ is only supported for OrderedDict");
        return vm_call(vm, v, w);
    case 'b': /* BUILD: sets attributes. A state dict's OrderedDict carries _metadata
                (module versions) this way; it does not change any tensor, so it is
                dropped. Anything else would need code we refuse to run. */
        if (!(w = vm_pop(vm)) || !(v = vm_top(vm))) return -1;
        if (v->kind != PV_DICT) return vm_fail(vm, "BUILD on a %s is not supported", pv_kind_name(v->kind));
        if (w->kind != PV_DICT && w->kind != PV_NONE && w->kind != PV_TUPLE)
            return vm_fail(vm, "BUILD with a %s state", pv_kind_name(w->kind));
        return 0;
    case 'Q': /* BINPERSID */
        if (!(v = vm_pop(vm))) return -1;
        return vm_persistent(vm, v);
    default:
        return OP_OTHER;
    }
}

/* Runs data.pkl to STOP and returns the result. */
static pv *vm_run(pvm *vm) {
    for (;;) {
        vm->op_pos = (size_t)(vm->p - vm->base);
        if (vm->p >= vm->end) {
            vm->op = 0;
            vm_fail(vm, "pickle ends without STOP");
            return NULL;
        }
        uint8_t op = vm->op = *vm->p++;
        if (op == '.') { /* STOP */
            pv *v = vm_pop(vm);
            if (v && (vm->sp != 0 || vm->n_marks)) {
                vm_fail(vm, "STOP with %zu items left on the stack", vm->sp);
                return NULL;
            }
            return v;
        }
        int rc = vm_op_stack(vm, op);
        if (rc == OP_OTHER) rc = vm_op_text(vm, op);
        if (rc == OP_OTHER) rc = vm_op_scalar(vm, op);
        if (rc == OP_OTHER) rc = vm_op_container(vm, op);
        if (rc == OP_OTHER) rc = vm_op_memo(vm, op);
        if (rc == OP_OTHER) rc = vm_op_object(vm, op);
        if (rc == OP_OTHER) {
            if (op >= 0x20 && op < 0x7f) vm_fail(vm, "unsupported pickle opcode '%c'", op);
            else vm_fail(vm, "unsupported pickle opcode");
            return NULL;
        }
        if (rc) return NULL;
    }
}

/* ------------------------------------------------------------------------------------ */
/* 4. the state dict                                                                    */

typedef struct {
    void *map; size_t map_size;   /* the mmap'd file (pt_load) or NULL */
    char *names;                  /* all tensor names, NUL-separated */
    void **bufs; int n_bufs;      /* densified / realigned tensor data */
} pt_priv;

static void priv_free(pt_priv *pr) {
    if (!pr) return;
    for (int i = 0; i < pr->n_bufs; i++) free(pr->bufs[i]);
    free(pr->bufs);
    free(pr->names);
    if (pr->map) munmap(pr->map, pr->map_size);
    free(pr);
}

/* Copies a strided view into dense row-major order. */
static void gather(uint8_t *dst, const uint8_t *src, const pv *t, size_t es) {
    int nd = t->u.t.ndim;
    int64_t idx[SAMC_MAX_DIMS] = { 0 };
    uint64_t off = t->u.t.offset;   /* element offset in the storage of the current index */
    for (uint64_t k = 0; k < t->u.t.numel; k++) {
        memcpy(dst + k * es, src + off * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < t->u.t.shape[d]) { off += (uint64_t)t->u.t.stride[d]; break; }
            off -= (uint64_t)t->u.t.stride[d] * (uint64_t)(t->u.t.shape[d] - 1);
            idx[d] = 0;
        }
    }
}

static int str_ptr_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The state dict: the "model" entry of the top-level dict when present, else the dict. */
static const pv *find_state_dict(const pv *root, pt_checkpoint *out, const char *f, char *err) {
    if (!root || root->kind != PV_DICT) {
        pt_fail(err, "%s: the pickle holds a %s, not a dict", f, root ? pv_kind_name(root->kind) : "nothing");
        return NULL;
    }
    const pv *sd = root;
    for (size_t i = 0; i + 1 < root->u.seq.n; i += 2)
        if (str_is(root->u.seq.v[i], "model")) {
            sd = root->u.seq.v[i + 1];
            if (sd->kind != PV_DICT) {
                pt_fail(err, "%s: entry 'model' is a %s, not a dict", f, pv_kind_name(sd->kind));
                return NULL;
            }
            strcpy(out->dict_key, "model");
        }
    return sd;
}

/* Checks every key and value of the state dict; counts the skipped (complex) tensors and
 * the bytes all names need. */
static int check_entries(const pv *sd, const pt_checkpoint *out, const char *f, size_t *n_skipped,
                         size_t *names_len, char *err) {
    size_t n = sd->u.seq.n / 2;
    *n_skipped = *names_len = 0;
    if (n == 0) return pt_fail(err, "%s: the state dict is empty", f);
    /* one tensor object may be listed under many keys (memo), so bound the keys too */
    if (n > PT_MAX_TENSORS) return pt_fail(err, "%s: the state dict has %zu entries, more than %d", f, n, PT_MAX_TENSORS);
    for (size_t i = 0; i < n; i++) {
        const pv *k = sd->u.seq.v[2 * i], *v = sd->u.seq.v[2 * i + 1];
        if (k->kind != PV_STR) return pt_fail(err, "%s: state dict key %zu is a %s, not a string", f, i, pv_kind_name(k->kind));
        int kn = k->u.s.n > 200 ? 200 : (int)k->u.s.n;
        if (k->u.s.n == 0 || k->u.s.n > PT_MAX_NAME || memchr(k->u.s.p, 0, k->u.s.n))
            return pt_fail(err, "%s: state dict key %zu ('%.*s') is empty, too long or holds a NUL", f, i, kn, k->u.s.p);
        if (v->kind != PV_TENSOR)
            return pt_fail(err, "%s: state dict%s%s entry '%.*s' is a %s, not a tensor%s", f, out->dict_key[0] ? " " : "",
                           out->dict_key, kn, k->u.s.p, pv_kind_name(v->kind),
                           out->dict_key[0] ? "" : " (and the top-level dict has no 'model' entry)");
        const pt_global *cls = v->u.t.storage->u.st.cls;
        if (cls->dtype == PT_DTYPE_SKIPPED) (*n_skipped)++;
        else if (cls->dtype < 0)
            return pt_fail(err, "%s: tensor '%.*s' has dtype %s (torch.%s), which samc does not support", f, kn,
                           k->u.s.p, cls->torch_dtype, cls->name);
        *names_len += k->u.s.n + 1;
        if (*names_len > PT_MAX_NAMES_BYTES)
            return pt_fail(err, "%s: tensor names take more than %d bytes", f, PT_MAX_NAMES_BYTES);
    }
    return 0;
}

/* Points t at the tensor's data: straight into the file when dense and aligned, else a
 * densified copy (bounded by *copy_budget). */
static int tensor_data(pvm *vm, const pv *v, st_tensor *t, pt_priv *pr, uint64_t *copied, uint64_t copy_budget,
                       char *err) {
    const pv *st = v->u.t.storage;
    size_t es = (size_t)st->u.st.cls->elsize;
    const uint8_t *base;
    /* storage was resolved by vm_persistent; this only re-reads the cached offset */
    if (zip_data(vm->z, st->u.st.e, 0, &base, err)) return -1;
    int contiguous = 1;
    int64_t want = 1;   /* products of a non-empty tensor's dims are <= numel: no overflow */
    for (int d = t->ndim - 1; d >= 0 && t->numel > 0; d--) {
        if (t->shape[d] != 1 && v->u.t.stride[d] != want) contiguous = 0;
        want *= t->shape[d];
    }
    const uint8_t *src = base + v->u.t.offset * es;
    if (t->numel == 0) {
        t->data = base;
    } else if (contiguous && ((uintptr_t)src % es) == 0) {
        t->data = src;   /* straight into the file */
    } else {
        if (add_u64(*copied, t->nbytes, copied) || *copied > copy_budget)
            return pt_fail(err, "%s: tensor '%s': densifying strided views would need more than %llu bytes",
                           vm->z->fname, t->name, (unsigned long long)copy_budget);
        uint8_t *d = malloc(t->nbytes);
        if (!d) return pt_fail(err, "%s: tensor '%s': out of memory for %zu bytes", vm->z->fname, t->name, t->nbytes);
        pr->bufs[pr->n_bufs++] = d;
        if (contiguous) memcpy(d, src, t->nbytes);
        else gather(d, base, v, es);
        t->data = d;
    }
    return 0;
}

/* Fails on a name that appears twice among the loaded and the skipped tensors. */
static int check_duplicates(const pt_checkpoint *out, const char *f, char *err) {
    size_t n = (size_t)out->n_tensors + (size_t)out->n_skipped;
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names) return pt_fail(err, "%s: out of memory for %zu names", f, n);
    for (int i = 0; i < out->n_tensors; i++) names[i] = out->tensors[i].name;
    for (int i = 0; i < out->n_skipped; i++) names[out->n_tensors + i] = out->skipped[i].name;
    qsort(names, n, sizeof *names, str_ptr_cmp);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (strcmp(names[i - 1], names[i]) == 0) rc = pt_fail(err, "%s: tensor '%s' appears twice in the state dict", f, names[i]);
    free(names);
    return rc;
}

static int build_state_dict(pvm *vm, pv *root, pt_checkpoint *out, pt_priv *pr, uint64_t file_size, char *err) {
    const char *f = vm->z->fname;
    const pv *sd = find_state_dict(root, out, f, err);
    size_t n_skipped, names_len;
    if (!sd || check_entries(sd, out, f, &n_skipped, &names_len, err)) return -1;
    size_t n = sd->u.seq.n / 2, n_loaded = n - n_skipped;
    out->tensors = calloc(n_loaded ? n_loaded : 1, sizeof *out->tensors);
    out->skipped = calloc(n_skipped ? n_skipped : 1, sizeof *out->skipped);
    pr->names = malloc(names_len);
    pr->bufs = calloc(n, sizeof *pr->bufs);
    if (!out->tensors || !out->skipped || !pr->names || !pr->bufs)
        return pt_fail(err, "%s: out of memory for %zu tensors", f, n);
    /* Densified copies are bounded so that stride-0 (expanded) views cannot make a small
     * file allocate without limit. */
    uint64_t copy_budget = 2 * file_size + ((uint64_t)64 << 20), copied = 0;
    char *np = pr->names;
    for (size_t i = 0; i < n; i++) {
        const pv *k = sd->u.seq.v[2 * i], *v = sd->u.seq.v[2 * i + 1];
        memcpy(np, k->u.s.p, k->u.s.n);
        np[k->u.s.n] = 0;
        const pt_global *cls = v->u.t.storage->u.st.cls;
        if (cls->dtype == PT_DTYPE_SKIPPED) {
            pt_skipped_tensor *s = &out->skipped[out->n_skipped++];
            s->name = np;
            s->torch_dtype = cls->torch_dtype;
            s->ndim = v->u.t.ndim;
            for (int d = 0; d < s->ndim; d++) s->shape[d] = v->u.t.shape[d];
        } else {
            st_tensor *t = &out->tensors[out->n_tensors++];
            t->name = np;
            t->dtype = (st_dtype)cls->dtype;
            t->ndim = v->u.t.ndim;
            for (int d = 0; d < t->ndim; d++) t->shape[d] = v->u.t.shape[d];
            t->numel = (int64_t)v->u.t.numel;
            t->nbytes = (size_t)v->u.t.numel * (size_t)cls->elsize;
            if (tensor_data(vm, v, t, pr, &copied, copy_budget, err)) return -1;
        }
        np += k->u.s.n + 1;
    }
    return check_duplicates(out, f, err);
}

/* ------------------------------------------------------------------------------------ */
/* 5. entry points                                                                      */

static int check_small_records(zip_reader *z, char *err) {
    const uint8_t *d;
    zip_entry *e = zip_find_rec(z, "byteorder", NULL, 0);
    if (e) {
        if (zip_data(z, e, 1, &d, err)) return -1;
        if (!(e->usize == 6 && memcmp(d, "little", 6) == 0))
            return pt_fail(err, "%s: record '%.*sbyteorder' is '%.*s'; only little-endian checkpoints are supported",
                           z->fname, (int)z->prefix_len, z->prefix, e->usize > 16 ? 16 : (int)e->usize, (const char *)d);
    }
    /* The format version is "<n>\n" in "version" (or ".data/version" in newer torch);
     * every zip-format version stores tensors the same way, so it is only validated. */
    e = zip_find_rec(z, "version", NULL, 0);
    if (!e) e = zip_find_rec(z, ".data/version", NULL, 0);
    if (e) {
        if (zip_data(z, e, 1, &d, err)) return -1;
        uint64_t len = e->usize, i = 0;
        while (i < len && d[i] >= '0' && d[i] <= '9') i++;
        int ok = i > 0 && i <= 4 && (i == len || (i + 1 == len && d[i] == '\n'));
        if (!ok)
            return pt_fail(err, "%s: record '%.*s' is not a format version number", z->fname, (int)e->name_len, e->name);
    }
    return 0;
}

static int pt_load_impl(const uint8_t *buf, size_t size, const char *name, unsigned flags, void *map,
                        pt_checkpoint *out, char *err) {
    memset(out, 0, sizeof *out);
    if (!name) name = "<memory>";
    pt_priv *pr = calloc(1, sizeof *pr);
    if (!pr) {
        if (map) munmap(map, size);
        return pt_fail(err, "%s: out of memory", name);
    }
    pr->map = map; pr->map_size = size;
    zip_reader z;
    pvm vm;
    memset(&vm, 0, sizeof vm);
    if (zip_open(&z, buf, size, name, err)) { priv_free(pr); return -1; }
    int rc = -1;
    if (check_small_records(&z, err)) goto done;
    zip_entry *pk = zip_find_rec(&z, "data.pkl", NULL, 0);
    const uint8_t *pkl;
    if (!pk) { pt_fail(err, "%s: internal: data.pkl vanished", name); goto done; }
    if (pk->usize > PT_MAX_PICKLE) {
        pt_fail(err, "%s: %.*s is %llu bytes, above the %llu-byte limit", name, (int)pk->name_len, pk->name,
                (unsigned long long)pk->usize, (unsigned long long)PT_MAX_PICKLE);
        goto done;
    }
    if (zip_data(&z, pk, 1, &pkl, err)) goto done;
    vm.base = vm.p = pkl;
    vm.end = pkl + pk->usize;
    vm.z = &z;
    vm.flags = flags;
    vm.err = err;
    pv *root = vm_run(&vm);
    if (!root) goto done;
    if (vm.p != vm.end) {
        pt_fail(err, "%s: %.*s has %zu bytes after STOP", name, (int)pk->name_len, pk->name, (size_t)(vm.end - vm.p));
        goto done;
    }
    if (build_state_dict(&vm, root, out, pr, size, err)) goto done;
    if (!(flags & PT_SKIP_SHA256)) sha256_hex(buf, size, out->sha256);
    rc = 0;
done:
    arena_free(&vm.a);
    free(vm.stack);
    free(vm.memo);
    zip_close(&z);
    if (rc) {
        free(out->tensors);
        free(out->skipped);
        priv_free(pr);
        memset(out, 0, sizeof *out);
    } else {
        out->priv = pr;
    }
    return rc;
}

int pt_load_memory_ex(const void *buf, size_t size, const char *name, unsigned flags, pt_checkpoint *out, char *err) {
    if (!buf && size) {
        memset(out, 0, sizeof *out);
        return pt_fail(err, "%s: NULL buffer", name ? name : "<memory>");
    }
    static const uint8_t empty[1];
    return pt_load_impl(buf ? buf : empty, size, name, flags, NULL, out, err);
}

int pt_load_memory(const void *buf, size_t size, const char *name, pt_checkpoint *out, char *err) {
    return pt_load_memory_ex(buf, size, name, 0, out, err);
}

int pt_load_ex(const char *path, unsigned flags, pt_checkpoint *out, char *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return pt_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) { close(fd); return pt_fail(err, "%s: not a regular file", path); }
    if (sb.st_size == 0) { close(fd); return pt_fail(err, "%s: empty file", path); }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return pt_fail(err, "%s: cannot map %zu bytes: %s", path, size, strerror(e));
    return pt_load_impl(map, size, path, flags, map, out, err);
}

int pt_load(const char *path, pt_checkpoint *out, char *err) { return pt_load_ex(path, 0, out, err); }

void pt_free(pt_checkpoint *c) {
    if (!c) return;
    free(c->tensors);
    free(c->skipped);
    priv_free(c->priv);
    memset(c, 0, sizeof *c);
}

int pt_is_zip_file(const char *path) {
    unsigned char magic[4] = { 0 };
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(magic, "PK\003\004", 4) == 0;
}
