/* bfloat16 <-> float32 in vector registers for the hand-written x86 elementwise kernels
 * (unary.c, binary.c), two float32 vectors at a time: 32 values on AVX-512 (F and BW),
 * 16 on AVX2. Widening is an unpack with zeros (the value into the high half of each
 * 32-bit lane), narrowing a pack of the rounded high halves; both work per 128-bit
 * lane, so the pair holds the values in the unpack's order (values 0-3 of each lane
 * of 8 in the first vector, 4-7 in the second), which the pack undoes. For
 * elementwise kernels only, where the order inside the pair does not matter. One
 * instruction a vector to widen, one per two to narrow (the earlier zero-extend and
 * shift, and narrowing move, took two each). Rounding: to nearest even with any NaN
 * as 0x7fc0, the rounding of ct_float_to_bf16 (core/internal.h). Internal. Only for
 * GCC on x86-64, where those kernels are built (CT_BF16_VEC defined). */
#ifndef CT_CPU_BF16_VEC_H
#define CT_CPU_BF16_VEC_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CT_BF16_VEC 1
#include <x86intrin.h>

#include "core/internal.h"

#define CT_BF16_ATTR512 __attribute__((target("avx512f,avx512bw"), always_inline))
#define CT_BF16_ATTR256 __attribute__((target("avx2,fma"), always_inline))

CT_BF16_ATTR512 static inline void ct_bf16x32_load2(const ct_bf16 *p, __m512 *v0, __m512 *v1) {
    const __m512i x = _mm512_loadu_si512((const void *)p), z = _mm512_setzero_si512();
    *v0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, x));
    *v1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, x));
}
/* v rounded: the bfloat16 bits in the low half of each lane. u + 0x7fff, plus 1 when
 * the kept part is odd, then the high half. */
CT_BF16_ATTR512 static inline __m512i ct_bf16x16_round(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    __m512i r = _mm512_add_epi32(u, _mm512_set1_epi32(0x7fff));
    r = _mm512_mask_add_epi32(r, _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x10000)), r, _mm512_set1_epi32(1));
    r = _mm512_srli_epi32(r, 16);
    return _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
}
CT_BF16_ATTR512 static inline void ct_bf16x32_store2(ct_bf16 *p, __m512 v0, __m512 v1) {
    _mm512_storeu_si512((void *)p, _mm512_packus_epi32(ct_bf16x16_round(v0), ct_bf16x16_round(v1)));
}

CT_BF16_ATTR256 static inline void ct_bf16x16_load2(const ct_bf16 *p, __m256 *v0, __m256 *v1) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)p), z = _mm256_setzero_si256();
    *v0 = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, x));
    *v1 = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, x));
}
CT_BF16_ATTR256 static inline __m256i ct_bf16x8_round(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    return _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7fc0), _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
}
CT_BF16_ATTR256 static inline void ct_bf16x16_store2(ct_bf16 *p, __m256 v0, __m256 v1) {
    _mm256_storeu_si256((__m256i *)p, _mm256_packus_epi32(ct_bf16x8_round(v0), ct_bf16x8_round(v1)));
}

/* float16 the same way, through the F16C conversions (in order; rounding to nearest
 * even, NaN quieted with its payload: the bits of ct__f16_narrow_row's vector part) */
CT_BF16_ATTR512 static inline void ct_f16x32_load2(const ct_half *p, __m512 *v0, __m512 *v1) {
    *v0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    *v1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p + 1));
}
CT_BF16_ATTR512 static inline void ct_f16x32_store2(ct_half *p, __m512 v0, __m512 v1) {
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v0, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    _mm256_storeu_si256((__m256i *)p + 1, _mm512_cvtps_ph(v1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
#define CT_F16_ATTR256 __attribute__((target("avx2,fma,f16c"), always_inline))
CT_F16_ATTR256 static inline void ct_f16x16_load2(const ct_half *p, __m256 *v0, __m256 *v1) {
    *v0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    *v1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p + 1));
}
CT_F16_ATTR256 static inline void ct_f16x16_store2(ct_half *p, __m256 v0, __m256 v1) {
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v0, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    _mm_storeu_si128((__m128i *)p + 1, _mm256_cvtps_ph(v1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
#endif

#endif
