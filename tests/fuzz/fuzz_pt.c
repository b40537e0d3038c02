/* tests/fuzz/fuzz_pt.c: libFuzzer target for loader/pt.c (build: make fuzz).
 *
 * Each input is tried twice:
 *   1. as a whole .pt file (zip container + pickle), as it would come from disk;
 *   2. as the bytes of data.pkl, zipped here with a correct CRC next to a few storages,
 *      so that mutations reach the pickle interpreter instead of stopping at the CRC.
 * A successful load is walked completely so that every tensor byte handed out is read. */
#include <stdint.h>
#include <string.h>

#include "loader/pt.h"
#include "tests/pt_writer.h"

static volatile uint8_t sink;

static void touch(const pt_checkpoint *c) {
    uint8_t x = 0;
    for (int i = 0; i < c->n_tensors; i++) {
        const st_tensor *t = &c->tensors[i];
        if ((size_t)t->numel * st_dtype_size(t->dtype) != t->nbytes) __builtin_trap();
        const uint8_t *d = t->data;
        for (size_t k = 0; k < t->nbytes; k++) x ^= d[k];
        x ^= (uint8_t)strlen(t->name);
    }
    sink = x;
}

static void load(const uint8_t *data, size_t size, unsigned flags) {
    pt_checkpoint c;
    char err[SAMC_ERRMSG];
    err[0] = 0;
    if (pt_load_memory_ex(data, size, "fuzz.pt", flags, &c, err) == 0) {
        touch(&c);
        pt_free(&c);
    } else if (!err[0] || c.tensors || c.priv || c.n_tensors) {
        __builtin_trap();   /* a failure must leave a message and an empty checkpoint */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load(data, size, PT_SKIP_SHA256 | (size & 1 ? PT_VERIFY_STORAGE_CRC : 0));

    static const float f[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    static const uint8_t b[64] = { 0x3c, 0x00, 0x3f, 0x80 };
    pw_entry e[6] = {
        { "archive/data.pkl", data, size, 0 },
        { "archive/data/0", f, sizeof f, 0 },
        { "archive/data/1", f, 12, 0 },
        { "archive/data/2", b, sizeof b, 0 },
        { "archive/data/3", "", 0, 0 },
        { "archive/version", "3\n", 2, 0 },
    };
    pw_zip_opts o = { 1, 1, 1, 0, 0 };
    pw_buf z = { 0 };
    pw_zip(&z, e, 6, &o);
    load(z.p, z.n, PT_SKIP_SHA256);
    pw_free(&z);
    return 0;
}
