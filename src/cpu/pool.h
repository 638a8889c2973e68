/* Pooling kernels shared between CPU kernel files. Internal. */
#ifndef CT_CPU_POOL_H
#define CT_CPU_POOL_H

#include <stdbool.h>
#include <stdint.h>

/* max_pool2d of one contiguous [H, W] plane of float32 (f32) or float64 values into o
 * [Ho, Wo] and the argmax indices h*W+w into ix; iv: the kernel geometry of
 * CT_OP_MAX_POOL2D (kh kw dh dw ph pw sh sw Ho Wo). The same values and indices as
 * CT_OP_MAX_POOL2D (src/cpu/conv.c). */
void ct__cpu_max_pool_plane(bool f32, const void *x, void *o, int64_t *ix, int64_t H, int64_t W, const int64_t *iv);

/* The 2x2 / stride-2 max pooling of eight windows with AVX2 (conv.c, batchnorm.c), for
 * use inside functions compiled for AVX2: from two rows of sixteen values each (lo0 hi0,
 * lo1 hi1), best = each window's maximum and k = its position (0 1 / 2 3), visited in
 * max_pool2d's order with its rule (a later value replaces the best when greater or
 * NaN). Built from the even and odd columns of 16 values and one visit. */
#define CT_POOL_EVEN(lo, hi) \
    _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8))
#define CT_POOL_ODD(lo, hi) \
    _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1))), 0xD8))
#define CT_POOL_TAKE(best, k, v, kv)                                                                        \
    do {                                                                                                    \
        __m256 u_ = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));     \
        best = _mm256_blendv_ps(best, v, u_);                                                               \
        k = _mm256_blendv_epi8(k, kv, _mm256_castps_si256(u_));                                              \
    } while (0)
#define CT_POOL_PICK4(lo0, hi0, lo1, hi1, best, k)                                                          \
    do {                                                                                                    \
        __m256 b_ = CT_POOL_ODD(lo0, hi0), d_ = CT_POOL_EVEN(lo1, hi1), e_ = CT_POOL_ODD(lo1, hi1);          \
        best = CT_POOL_EVEN(lo0, hi0), k = _mm256_setzero_si256();                                          \
        CT_POOL_TAKE(best, k, b_, _mm256_set1_epi32(1));                                                    \
        CT_POOL_TAKE(best, k, d_, _mm256_set1_epi32(2));                                                    \
        CT_POOL_TAKE(best, k, e_, _mm256_set1_epi32(3));                                                    \
    } while (0)

/* The same for sixteen windows with AVX-512 (conv.c, batchnorm.c), inside functions
 * compiled for AVX-512F: from two rows of 32 values each (lo0 hi0, lo1 hi1), best and
 * k (__m512i, positions 0-3) in max_pool2d's order and rule; the even and odd columns
 * by two-source permutes. */
#define CT_POOL_TAKE16(best, k, v, kv)                                                                      \
    do {                                                                                                    \
        __mmask16 u_ = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);    \
        best = _mm512_mask_blend_ps(u_, best, v);                                                           \
        k = _mm512_mask_blend_epi32(u_, k, _mm512_set1_epi32(kv));                                          \
    } while (0)
#define CT_POOL_PICK16(lo0, hi0, lo1, hi1, best, k)                                                         \
    do {                                                                                                    \
        const __m512i ev_ = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);   \
        const __m512i od_ = _mm512_add_epi32(ev_, _mm512_set1_epi32(1));                                     \
        __m512 b_ = _mm512_permutex2var_ps(lo0, od_, hi0), d_ = _mm512_permutex2var_ps(lo1, ev_, hi1);      \
        __m512 e_ = _mm512_permutex2var_ps(lo1, od_, hi1);                                                  \
        best = _mm512_permutex2var_ps(lo0, ev_, hi0), k = _mm512_setzero_si512();                           \
        CT_POOL_TAKE16(best, k, b_, 1);                                                                     \
        CT_POOL_TAKE16(best, k, d_, 2);                                                                     \
        CT_POOL_TAKE16(best, k, e_, 3);                                                                     \
    } while (0)

#endif
