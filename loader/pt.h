/* loader/pt.h: read the official PyTorch checkpoint (torch.save zip container) in pure C.
 *
 * A .pt file is a zip archive: <prefix>/data.pkl (a pickle), <prefix>/data/<key> (one raw
 * little-endian storage per tensor), <prefix>/version, and in newer torch <prefix>/byteorder
 * and <prefix>/.data/serialization_id. The pickle is read by a small safe interpreter that
 * knows only what torch writes for a state dict (OrderedDict, _rebuild_tensor_v2,
 * _rebuild_parameter, storage classes); any other global is refused by name, so a hostile
 * file can never run code. Sizes, memo and stack are bounded. Tensors of a dtype samc
 * cannot hold are refused (float64, int8, int16), except complex ones, which are listed
 * in pt_checkpoint.skipped with their shapes so that the caller decides.
 *
 * Errors: 0 on success, -1 with a message in err (SAMC_ERRMSG bytes) naming the file,
 * entry, opcode or tensor and the byte offset.
 */
#ifndef SAMC_PT_H
#define SAMC_PT_H
#include "loader/safetensors.h"

/* A tensor of a dtype samc has no type for but can safely pass over: complex64 and
 * complex128 (SAM3's official checkpoint holds its ViT RoPE tables as complex64
 * buffers, which samc computes instead). Its data is not read. */
typedef struct {
    const char *name;
    const char *torch_dtype;   /* "complex64", "complex128" */
    int ndim;
    int64_t shape[SAMC_MAX_DIMS];
} pt_skipped_tensor;

typedef struct {
    int n_tensors;
    st_tensor *tensors;   /* in pickle (state-dict) order; data owned by the checkpoint,
                             always dense row-major (non-contiguous tensors are densified) */
    int n_skipped;
    pt_skipped_tensor *skipped;   /* complex tensors, in state-dict order (not in tensors) */
    char dict_key[64];    /* which dict was taken: "model" or "" for a bare state dict */
    char sha256[65];      /* hex sha256 of the whole file ("" with PT_SKIP_SHA256) */
    void *priv;           /* reader-owned memory */
} pt_checkpoint;

/* Loads the state dict: the "model" entry of the top-level dict when present, otherwise
 * the top-level dict itself. */
int pt_load(const char *path, pt_checkpoint *out, char *err);
int pt_load_memory(const void *buf, size_t size, const char *name, pt_checkpoint *out, char *err);
void pt_free(pt_checkpoint *c);

/* Flags for the _ex variants (pt_load = pt_load_ex with flags 0). */
enum {
    PT_VERIFY_STORAGE_CRC = 1u << 0,  /* also check the CRC-32 of every storage the state dict
                                         uses (data.pkl and small records are always checked) */
    PT_SKIP_SHA256 = 1u << 1          /* do not hash the file; sha256 stays "" */
};
int pt_load_ex(const char *path, unsigned flags, pt_checkpoint *out, char *err);
int pt_load_memory_ex(const void *buf, size_t size, const char *name, unsigned flags,
                      pt_checkpoint *out, char *err);

/* 1 if the file starts with a zip local-file header (what torch.save writes; safetensors
 * files start with their header length), 0 if not or unreadable. */
int pt_is_zip_file(const char *path);

/* CRC-32 as used by zip (reflected polynomial 0xEDB88320); start with crc = 0 and chain. */
uint32_t pt_crc32(uint32_t crc, const void *data, size_t n);

#endif
