/* tests/fuzz/gen_seeds.c: writes the seed corpora of the fuzzers (make fuzz-seeds):
 *   corpus_pt/  small .pt checkpoints in the layouts torch writes, and bare pickles that
 *               fuzz_pt.c zips next to its storages "0".."3";
 *   corpus_st/  small safetensors files written by st_write.
 * usage: gen_seeds DIR   (DIR/corpus_pt and DIR/corpus_st must exist) */
#include <stdio.h>

#include "tests/pt_writer.h"
#include "loader/safetensors.h"

static const char *dir;

static void save(const char *sub, const char *name, const pw_buf *b) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->n, f) != b->n) { perror(path); exit(1); }
    fclose(f);
}

/* Views over the storages fuzz_pt.c provides: "0" 16 floats, "1" 3 floats, "2" 64 bytes. */
static void seed_tensors(pk_tensor_desc *t, int proto4) {
    memset(t, 0, 6 * sizeof *t);
    t[0] = (pk_tensor_desc){ "FloatStorage", "0", 16, 0, 2, { 4, 4 }, { 4, 1 }, 0, 0, proto4 };
    t[1] = (pk_tensor_desc){ "FloatStorage", "0", 16, 1, 2, { 3, 2 }, { 1, 4 }, 1, 0, proto4 };
    t[2] = (pk_tensor_desc){ "FloatStorage", "1", 3, 0, 1, { 3 }, { 1 }, 0, 1, proto4 };
    t[3] = (pk_tensor_desc){ "HalfStorage", "2", 32, 4, 3, { 2, 2, 2 }, { 4, 2, 1 }, 0, 0, proto4 };
    t[4] = (pk_tensor_desc){ "BFloat16Storage", "2", 32, 0, 0, { 0 }, { 0 }, 2, 0, proto4 };
    t[5] = (pk_tensor_desc){ "ByteStorage", "2", 64, 0, 2, { 8, 8 }, { 0, 1 }, 0, 0, proto4 };
}

static const char *names[6] = { "w", "w.T", "bias", "h", "bf_scalar", "u8" };

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: gen_seeds DIR\n"); return 2; }
    dir = argv[1];
    static float f[16];
    static uint8_t b[64];
    for (int i = 0; i < 16; i++) f[i] = (float)i - 7.5f;
    for (int i = 0; i < 64; i++) b[i] = (uint8_t)(i * 37);
    pw_storage st[4] = { { "0", f, sizeof f }, { "1", f, 12 }, { "2", b, sizeof b }, { "3", "", 0 } };
    struct { const char *file; pw_ckpt_opts o; int proto4; } ck[] = {
        { "torch113.pt", { "micro", 0, 0, 0, { 1, 1, 1, 0, 0 } }, 0 },
        { "newer_zip64.pt", { "archive", 1, 0, 1, { 1, 1, 1, 1, 0 } }, 0 },
        { "proto4_bare.pt", { "sam2.1_hiera_tiny", 1, 1, 0, { 1, 0, 1, 0, 0 } }, 1 },
        { "plain.pt", { "x", 0, 0, 1, { 0, 0, 0, 0, 0 } }, 0 },
    };
    pk_tensor_desc t[6];
    for (size_t k = 0; k < sizeof ck / sizeof ck[0]; k++) {
        pw_buf pk = { 0 }, z = { 0 };
        seed_tensors(t, ck[k].proto4);
        pw_state_dict_pickle(&pk, &ck[k].o, names, t, 6);
        pw_checkpoint_zip(&z, &ck[k].o, &pk, st, 4);
        save("corpus_pt", ck[k].file, &z);
        if (k < 3) {
            char name[64];
            snprintf(name, sizeof name, "pickle_%zu.pkl", k);
            save("corpus_pt", name, &pk);
        }
        pw_free(&pk);
        pw_free(&z);
    }
    /* a refused global, for the fuzzer to mutate around */
    pw_buf pk = { 0 };
    pk_proto(&pk, 2);
    pk_global(&pk, "posix", "system");
    pk_str(&pk, "true");
    pk_op(&pk, 0x85);
    pk_op(&pk, 'R');
    pk_op(&pk, '.');
    save("corpus_pt", "evil.pkl", &pk);
    pw_free(&pk);

    /* safetensors seeds */
    static uint16_t h[6] = { 0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00 };
    static int64_t i64[2] = { -1, 1 };
    static uint8_t bl[3] = { 1, 0, 1 };
    st_tensor ts[] = {
        { .name = "a.weight", .dtype = ST_F32, .ndim = 2, .shape = { 2, 4 }, .numel = 8, .data = f, .nbytes = 32 },
        { .name = "a.bias", .dtype = ST_F16, .ndim = 1, .shape = { 6 }, .numel = 6, .data = h, .nbytes = 12 },
        { .name = "b", .dtype = ST_BF16, .ndim = 3, .shape = { 1, 3, 1 }, .numel = 3, .data = h, .nbytes = 6 },
        { .name = "idx", .dtype = ST_I64, .ndim = 1, .shape = { 2 }, .numel = 2, .data = i64, .nbytes = 16 },
        { .name = "mask", .dtype = ST_BOOL, .ndim = 1, .shape = { 3 }, .numel = 3, .data = bl, .nbytes = 3 },
        { .name = "scalar", .dtype = ST_F32, .ndim = 0, .numel = 1, .data = f, .nbytes = 4 },
        { .name = "empty", .dtype = ST_F32, .ndim = 2, .shape = { 0, 3 }, .numel = 0, .data = NULL, .nbytes = 0 },
    };
    st_meta meta[2] = { { "format", "pt" }, { "config", "micro" } };
    char err[SAMC_ERRMSG], path[1024];
    struct { const char *file; int n, n_meta; } sf[] = { { "mixed.safetensors", 7, 2 }, { "one.safetensors", 1, 0 },
                                                          { "halves.safetensors", 3, 1 } };
    for (size_t k = 0; k < sizeof sf / sizeof sf[0]; k++) {
        snprintf(path, sizeof path, "%s/corpus_st/%s", dir, sf[k].file);
        if (st_write(path, ts, sf[k].n, meta, sf[k].n_meta, err)) { fprintf(stderr, "%s\n", err); return 1; }
    }
    return 0;
}
