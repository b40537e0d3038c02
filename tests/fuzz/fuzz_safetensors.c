/* tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors reader
 * (loader/safetensors.c; build: make fuzz). A file that opens is used the way the model
 * loader uses it: every tensor looked up by name, float tensors converted to f32, every
 * metadata key read back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/safetensors.h"

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    char err[SAMC_ERRMSG];
    err[0] = 0;
    if (st_open_memory(data, size, "fuzz.safetensors", &f, err) != 0) {
        if (!err[0]) __builtin_trap();
        return 0;
    }
    float acc = 0;
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if (st_find(&f, t->name) != t) __builtin_trap();
        if ((size_t)t->numel * st_dtype_size(t->dtype) != t->nbytes) __builtin_trap();
        if ((t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) && t->numel <= (1 << 20)) {
            float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *dst);
            if (dst && st_read_f32(t, dst, err) == 0)
                for (int64_t k = 0; k < t->numel; k++) acc += dst[k];
            free(dst);
        } else {
            const uint8_t *d = t->data;
            for (size_t k = 0; k < t->nbytes; k++) acc += d[k];
        }
    }
    for (int i = 0; i < f.n_meta; i++)
        if (st_meta_get(&f, f.meta[i].key) == NULL) __builtin_trap();
    sink = acc;
    st_close(&f);
    return 0;
}
