/* tests/pt_writer.h: a tiny writer of torch.save-style files, for tests and fuzz seeds.
 *
 * Builds in memory what torch.save produces: a pickle (pw_pickle_*), and a zip of stored
 * entries (pw_zip) with the layout options torch uses (64-byte aligned data via the
 * local extra field, data descriptors, zip64 end records) plus forced zip64 fields.
 * Written from the zip APPNOTE and CPython's pickletools opcode list, not from torch.
 * Header-only: every function is static inline. */
#ifndef SAMC_PT_WRITER_H
#define SAMC_PT_WRITER_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/pt.h"

typedef struct {
    uint8_t *p;
    size_t n, cap;
} pw_buf;

static inline void pw_put(pw_buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) { fprintf(stderr, "pw_put: out of memory\n"); exit(2); }
        b->p = p; b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void pw_u8(pw_buf *b, unsigned v) { uint8_t x = (uint8_t)v; pw_put(b, &x, 1); }
static inline void pw_u16(pw_buf *b, unsigned v) { pw_u8(b, v & 0xff); pw_u8(b, (v >> 8) & 0xff); }
static inline void pw_u32(pw_buf *b, uint32_t v) { pw_u16(b, v & 0xffff); pw_u16(b, v >> 16); }
static inline void pw_u64(pw_buf *b, uint64_t v) { pw_u32(b, (uint32_t)v); pw_u32(b, (uint32_t)(v >> 32)); }
static inline void pw_free(pw_buf *b) { free(b->p); memset(b, 0, sizeof *b); }

/* ---- pickle ------------------------------------------------------------------------ */

static inline void pk_op(pw_buf *b, unsigned op) { pw_u8(b, op); }
static inline void pk_proto(pw_buf *b, int v) { pw_u8(b, 0x80); pw_u8(b, (unsigned)v); }
static inline void pk_str(pw_buf *b, const char *s) {   /* BINUNICODE, as torch 1.x/2.x (protocol 2) */
    size_t n = strlen(s);
    pw_u8(b, 'X'); pw_u32(b, (uint32_t)n); pw_put(b, s, n);
}
static inline void pk_short_str(pw_buf *b, const char *s) {  /* SHORT_BINUNICODE (protocol 4) */
    size_t n = strlen(s);
    pw_u8(b, 0x8c); pw_u8(b, (unsigned)n); pw_put(b, s, n);
}
static inline void pk_int(pw_buf *b, int64_t v) {
    if (v >= 0 && v < 256) { pw_u8(b, 'K'); pw_u8(b, (unsigned)v); }
    else if (v >= 0 && v < 65536) { pw_u8(b, 'M'); pw_u16(b, (unsigned)v); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { pw_u8(b, 'J'); pw_u32(b, (uint32_t)(int32_t)v); }
    else { pw_u8(b, 0x8a); pw_u8(b, 8); pw_u64(b, (uint64_t)v); }
}
static inline void pk_global(pw_buf *b, const char *mod, const char *name) {
    pw_u8(b, 'c'); pw_put(b, mod, strlen(mod)); pw_u8(b, '\n'); pw_put(b, name, strlen(name)); pw_u8(b, '\n');
}
static inline void pk_stack_global(pw_buf *b, const char *mod, const char *name) {
    pk_short_str(b, mod); pk_short_str(b, name); pw_u8(b, 0x93);
}
static inline void pk_binput(pw_buf *b, unsigned i) { pw_u8(b, 'q'); pw_u8(b, i); }
static inline void pk_binget(pw_buf *b, unsigned i) { pw_u8(b, 'h'); pw_u8(b, i); }

typedef struct {
    const char *storage_type;    /* "FloatStorage", "HalfStorage", ... */
    const char *key;             /* storage record: <prefix>data/<key> */
    int64_t storage_numel;
    int64_t offset;
    int ndim;
    int64_t shape[16], stride[16];   /* more than SAMC_MAX_DIMS, to write bad files */
    int param;                   /* 1: wrap in _rebuild_parameter, 2: _rebuild_parameter_with_state */
    int metadata;                /* pass the 7th (metadata) argument of newer torch */
    int proto4;                  /* protocol-4 spelling: STACK_GLOBAL, SHORT_BINUNICODE, MEMOIZE */
} pk_tensor_desc;

/* Emits _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()[, {}]). */
static inline void pk_tensor(pw_buf *b, const pk_tensor_desc *t) {
    void (*str)(pw_buf *, const char *) = t->proto4 ? pk_short_str : pk_str;
    void (*glob)(pw_buf *, const char *, const char *) = t->proto4 ? pk_stack_global : pk_global;
    if (t->param) glob(b, "torch._utils", t->param == 1 ? "_rebuild_parameter" : "_rebuild_parameter_with_state");
    if (t->param == 2) pk_op(b, '(');   /* 4 arguments: TUPLE from a MARK */
    glob(b, "torch._utils", "_rebuild_tensor_v2");
    if (t->proto4) pk_op(b, 0x94);  /* MEMOIZE */
    pk_op(b, '(');
    pk_op(b, '(');
    str(b, "storage");
    glob(b, "torch", t->storage_type);
    str(b, t->key);
    str(b, "cpu");
    pk_int(b, t->storage_numel);
    pk_op(b, 't');
    pk_op(b, 'Q');
    pk_int(b, t->offset);
    pk_op(b, '(');
    for (int i = 0; i < t->ndim; i++) pk_int(b, t->shape[i]);
    pk_op(b, 't');
    pk_op(b, '(');
    for (int i = 0; i < t->ndim; i++) pk_int(b, t->stride[i]);
    pk_op(b, 't');
    pk_op(b, 0x89);  /* NEWFALSE */
    glob(b, "collections", "OrderedDict");
    pk_op(b, ')');
    pk_op(b, 'R');
    if (t->metadata) pk_op(b, '}');
    pk_op(b, 't');
    pk_op(b, 'R');
    if (t->param) {
        /* (tensor, requires_grad, backward_hooks[, state]) */
        pk_op(b, 0x88);
        glob(b, "collections", "OrderedDict");
        pk_op(b, ')');
        pk_op(b, 'R');
        if (t->param == 2) { pk_op(b, 'N'); pk_op(b, 't'); }
        else pk_op(b, 0x87);   /* TUPLE3 */
        pk_op(b, 'R');
    }
}

/* ---- zip --------------------------------------------------------------------------- */

typedef struct {
    char name[256];
    const void *data;
    size_t n;
    unsigned method;         /* 0 stored; anything else is written as is (data not compressed) */
} pw_entry;

typedef struct {
    int align64;             /* pad the local extra field so data starts at a multiple of 64 */
    int data_descriptor;     /* flag bit 3, zero CRC/sizes in the local header, descriptor after */
    int zip64_end;           /* zip64 end record + locator before the classic EOCD */
    int zip64_fields;        /* saturate the central sizes/offset, real values in a zip64 extra */
    int bad_crc_entry;       /* 1-based index of an entry whose recorded CRC is wrong, 0 none */
} pw_zip_opts;

static inline void pw_zip(pw_buf *z, const pw_entry *e, int n, const pw_zip_opts *o) {
    uint64_t *off = calloc((size_t)n, sizeof *off);
    uint32_t *crc = calloc((size_t)n, sizeof *crc);
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        crc[i] = pt_crc32(0, e[i].data, e[i].n) ^ (o->bad_crc_entry == i + 1 ? 1u : 0u);
        off[i] = z->n;
        size_t xl = 0;
        if (o->align64) {
            xl = (64 - (z->n + 30 + nl + 4) % 64) % 64 + 4;   /* "FB" field of xl-4 bytes */
        }
        pw_u32(z, 0x04034b50); pw_u16(z, 20); pw_u16(z, o->data_descriptor ? 0x0808 : 0x0800);
        pw_u16(z, e[i].method); pw_u16(z, 0); pw_u16(z, 0x21);
        pw_u32(z, o->data_descriptor ? 0 : crc[i]);
        pw_u32(z, o->data_descriptor ? 0 : (uint32_t)e[i].n);
        pw_u32(z, o->data_descriptor ? 0 : (uint32_t)e[i].n);
        pw_u16(z, (unsigned)nl); pw_u16(z, (unsigned)xl);
        pw_put(z, e[i].name, nl);
        if (xl) {
            pw_u16(z, 0x4246); pw_u16(z, (unsigned)(xl - 4));
            for (size_t k = 0; k < xl - 4; k++) pw_u8(z, 'Z');
        }
        pw_put(z, e[i].data, e[i].n);
        if (o->data_descriptor) {
            pw_u32(z, 0x08074b50); pw_u32(z, crc[i]); pw_u32(z, (uint32_t)e[i].n); pw_u32(z, (uint32_t)e[i].n);
        }
    }
    uint64_t cd = z->n;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        int z64 = o->zip64_fields;
        pw_u32(z, 0x02014b50); pw_u16(z, 0x031e); pw_u16(z, z64 ? 45 : 20);
        pw_u16(z, o->data_descriptor ? 0x0808 : 0x0800); pw_u16(z, e[i].method); pw_u16(z, 0); pw_u16(z, 0x21);
        pw_u32(z, crc[i]);
        pw_u32(z, z64 ? 0xffffffffu : (uint32_t)e[i].n);
        pw_u32(z, z64 ? 0xffffffffu : (uint32_t)e[i].n);
        pw_u16(z, (unsigned)nl); pw_u16(z, z64 ? 28 : 0); pw_u16(z, 0);
        pw_u16(z, 0); pw_u16(z, 0); pw_u32(z, 0);
        pw_u32(z, z64 ? 0xffffffffu : (uint32_t)off[i]);
        pw_put(z, e[i].name, nl);
        if (z64) { pw_u16(z, 1); pw_u16(z, 24); pw_u64(z, e[i].n); pw_u64(z, e[i].n); pw_u64(z, off[i]); }
    }
    uint64_t cd_size = z->n - cd;
    if (o->zip64_end) {
        uint64_t rec = z->n;
        pw_u32(z, 0x06064b50); pw_u64(z, 44); pw_u16(z, 0x031e); pw_u16(z, 45);
        pw_u32(z, 0); pw_u32(z, 0); pw_u64(z, (uint64_t)n); pw_u64(z, (uint64_t)n); pw_u64(z, cd_size); pw_u64(z, cd);
        pw_u32(z, 0x07064b50); pw_u32(z, 0); pw_u64(z, rec); pw_u32(z, 1);
    }
    int sat = o->zip64_end && o->zip64_fields;
    pw_u32(z, 0x06054b50); pw_u16(z, 0); pw_u16(z, 0);
    pw_u16(z, sat ? 0xffff : (unsigned)n); pw_u16(z, sat ? 0xffff : (unsigned)n);
    pw_u32(z, sat ? 0xffffffffu : (uint32_t)cd_size); pw_u32(z, sat ? 0xffffffffu : (uint32_t)cd);
    pw_u16(z, 0);
    free(off);
    free(crc);
}

/* ---- whole checkpoints ------------------------------------------------------------- */

typedef struct {
    const char *key;
    const void *data;
    size_t n;
} pw_storage;

typedef struct {
    const char *prefix;      /* folder inside the zip */
    int newer_torch;         /* add byteorder, .data/version, .data/serialization_id */
    int no_model_key;        /* a bare state dict instead of {"model": sd} */
    int build_metadata;      /* OrderedDict with _metadata set through BUILD */
    pw_zip_opts zip;
} pw_ckpt_opts;

/* Pickles {"model": OrderedDict(name -> tensor)} (or the bare OrderedDict) like torch.save. */
static inline void pw_state_dict_pickle(pw_buf *pk, const pw_ckpt_opts *o, const char *const *names, const pk_tensor_desc *t, int nt) {
    pk_proto(pk, 2);
    if (!o->no_model_key) {
        pk_op(pk, '}');
        pk_binput(pk, 0);
        pk_str(pk, "model");
    }
    pk_global(pk, "collections", "OrderedDict");
    pk_op(pk, ')');
    pk_op(pk, 'R');
    pk_op(pk, '(');
    for (int i = 0; i < nt; i++) {
        pk_str(pk, names[i]);
        pk_tensor(pk, &t[i]);
    }
    pk_op(pk, 'u');
    if (o->build_metadata) {
        /* state = {'_metadata': OrderedDict([('', {'version': 1})])} */
        pk_op(pk, '}');
        pk_str(pk, "_metadata");
        pk_global(pk, "collections", "OrderedDict");
        pk_op(pk, ')');
        pk_op(pk, 'R');
        pk_str(pk, "");
        pk_op(pk, '}');
        pk_str(pk, "version");
        pk_int(pk, 1);
        pk_op(pk, 's');
        pk_op(pk, 's');
        pk_op(pk, 's');
        pk_op(pk, 'b');
    }
    if (!o->no_model_key) pk_op(pk, 's');
    pk_op(pk, '.');
}

/* Zips a pickle and storages (at most 35) into a checkpoint laid out as torch.save does. */
static inline void pw_checkpoint_zip(pw_buf *out, const pw_ckpt_opts *o, const pw_buf *pk, const pw_storage *s, int ns) {
    pw_entry e[40];
    int n = 0;
    const char *pre = o->prefix ? o->prefix : "archive";
    snprintf(e[n].name, sizeof e[n].name, "%s/data.pkl", pre);
    e[n].data = pk->p; e[n].n = pk->n; e[n].method = 0; n++;
    if (o->newer_torch) {
        snprintf(e[n].name, sizeof e[n].name, "%s/byteorder", pre);
        e[n].data = "little"; e[n].n = 6; e[n].method = 0; n++;
    }
    for (int i = 0; i < ns && n < 36; i++) {
        snprintf(e[n].name, sizeof e[n].name, "%s/data/%s", pre, s[i].key);
        e[n].data = s[i].data; e[n].n = s[i].n; e[n].method = 0; n++;
    }
    snprintf(e[n].name, sizeof e[n].name, "%s/version", pre);
    e[n].data = "3\n"; e[n].n = 2; e[n].method = 0; n++;
    if (o->newer_torch) {
        snprintf(e[n].name, sizeof e[n].name, "%s/.data/version", pre);
        e[n].data = "3\n"; e[n].n = 2; e[n].method = 0; n++;
        snprintf(e[n].name, sizeof e[n].name, "%s/.data/serialization_id", pre);
        e[n].data = "1234567890123456789012345678901234567890"; e[n].n = 40; e[n].method = 0; n++;
    }
    pw_zip(out, e, n, &o->zip);
}

#endif
