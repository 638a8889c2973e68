/* bfloat16 <-> float32 in vector registers for the hand-written x86 kernels (unary.c,
 * binary.c): widened by a shift; rounded to nearest even with NaN kept quiet, the
 * rounding of ct_float_to_bf16 (core/internal.h), 16 or 8 values at a time. Internal.
 * Only for GCC on x86-64, where those kernels are built (CT_BF16_VEC defined). */
#ifndef CT_CPU_BF16_VEC_H
#define CT_CPU_BF16_VEC_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CT_BF16_VEC 1
#include <x86intrin.h>

#include "core/internal.h"

__attribute__((target("avx512f"), always_inline)) static inline __m512 ct_bf16x16_load(const ct_bf16 *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
__attribute__((target("avx512f"), always_inline)) static inline void ct_bf16x16_store(ct_bf16 *p, __m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __mmask16 nan =
        _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_blend_epi32(nan, r, _mm512_set1_epi32(0x7fc0));
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(r));
}
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 ct_bf16x8_load(const ct_bf16 *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
__attribute__((target("avx2,fma"), always_inline)) static inline void ct_bf16x8_store(ct_bf16 *p, __m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i nan =
        _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7fc0), nan);
    /* 16-bit halves packed per 128-bit lane, then the two lanes' low quadwords joined */
    const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128((__m128i *)p, _mm256_castsi256_si128(pk));
}
#endif

#endif
