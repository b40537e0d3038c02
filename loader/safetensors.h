/* loader/safetensors.h: read (mmap) and write safetensors files.
 *
 * Format (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N,
 * N bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * ..., "__metadata__": {"key": "string", ...}}, then the data; offsets are relative to
 * the start of the data. The reader validates everything before handing out a pointer:
 * header size within the file, well-formed JSON, known dtype, shape product * dtype size
 * == end - begin, offsets inside the data, no overlaps, no duplicate keys.
 *
 * Errors: functions return 0 on success and -1 on failure, with a message naming the
 * file, tensor and offending value in err (at least SAMC_ERRMSG bytes).
 */
#ifndef SAMC_SAFETENSORS_H
#define SAMC_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#define SAMC_ERRMSG 512
#define SAMC_MAX_DIMS 8

typedef enum { ST_F32 = 0, ST_F16, ST_BF16, ST_I32, ST_I64, ST_U8, ST_BOOL, ST_DTYPE_COUNT } st_dtype;

const char *st_dtype_name(st_dtype t); /* "F32", ... */
size_t st_dtype_size(st_dtype t);

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[SAMC_MAX_DIMS];
    int64_t numel;
    const void *data;   /* inside the mapping (reader) or caller memory (writer) */
    size_t nbytes;
} st_tensor;

typedef struct {
    char *key, *value;
} st_meta;

typedef struct {
    char *path;
    void *map; size_t map_size;     /* whole file, read-only mmap (NULL for in-memory) */
    int n_tensors; st_tensor *tensors;  /* in file (header) order */
    int n_meta; st_meta *meta;
} st_file;

/* Opens and validates; on failure *out is left empty and nothing leaks. */
int st_open(const char *path, st_file *out, char *err);
/* Same, over a caller-owned buffer that must outlive the st_file (used by tests/fuzzers). */
int st_open_memory(const void *buf, size_t size, const char *name, st_file *out, char *err);
void st_close(st_file *f);

const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta_get(const st_file *f, const char *key);

/* Converts a tensor of dtype F32/F16/BF16 to float32 into dst[numel]. */
int st_read_f32(const st_tensor *t, float *dst, char *err);

/* Writer: tensors are written in the order given, with data offsets packed in that order;
 * the header is compact JSON ({"name":{"dtype":..,"shape":[..],"data_offsets":[..]},...})
 * with "__metadata__" last and padded with spaces to a multiple of 8 bytes. To reproduce
 * the files the Python safetensors library writes, pass tensors sorted by name
 * (st_sort_by_name). Writes to path+".tmp" then renames, so a failed write never leaves a
 * half file under the final name. */
int st_write(const char *path, const st_tensor *tensors, int n, const st_meta *meta, int n_meta, char *err);
void st_sort_by_name(st_tensor *tensors, int n);

#endif
