/* kernels/cpu_fast_vm512.h: kernels/cpu_fast_vecmath.h instantiated for __m512 (exp512,
 * erf512, gelu512), for the AVX-512 kernels: cpu_fast_avx512.c (its softmax pieces and
 * GELU). Not part of the public interface; include once per file. */
#ifndef SAMC_CPU_FAST_VM512_H
#define SAMC_CPU_FAST_VM512_H
#define VM_T __m512
#define VM_M __mmask16
#define VM_FN(name) name##512
#define VM_SET1 _mm512_set1_ps
#define VM_ADD _mm512_add_ps
#define VM_MUL _mm512_mul_ps
#define VM_DIV _mm512_div_ps
#define VM_MAX _mm512_max_ps
#define VM_MIN _mm512_min_ps
#define VM_FMADD _mm512_fmadd_ps
#define VM_FNMADD _mm512_fnmadd_ps
#define VM_AND _mm512_and_ps
#define VM_OR _mm512_or_ps
#define VM_XOR _mm512_xor_ps
#define VM_ANDNOT _mm512_andnot_ps
#define VM_ROUND(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VM_LDEXP(p, n) \
    _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23)))
#define VM_LE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ)
#define VM_GE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
#define VM_SELECT(m, yes, no) _mm512_mask_blend_ps(m, no, yes)
#include "kernels/cpu_fast_vecmath.h"
#endif
