/* convert/dtype.h: float32 -> float16 / bfloat16 storage for the converters, rounding to
 * nearest even (overflow to inf, NaN stays NaN), as PyTorch's .half() / .bfloat16(). */
#ifndef SAMC_CONVERT_DTYPE_H
#define SAMC_CONVERT_DTYPE_H
#include <stdint.h>

#include "loader/safetensors.h"

uint16_t convert_f32_to_bf16(float f);

/* A copy of tensor t's values in dtype `target` (ST_F32, ST_F16 or ST_BF16; t is F32,
 * F16 or BF16): *out is malloc'd (t->numel values; free it), *nbytes its size. Returns 0,
 * or -1 with err naming the tensor. */
int convert_tensor_values(const st_tensor *t, st_dtype target, void **out, size_t *nbytes, char *err);

#endif
