/* Runs a per-dtype elementwise loop over a kernel call's operands. */
#include "cpu/loops.h"
#include "cpu/bf16_vec.h"

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

void ct__stream_copy(void *dst, const void *src, size_t n) {
#if defined(__x86_64__)
    char *d = dst;
    const char *s = src;
    size_t head = (16 - ((uintptr_t)d & 15)) & 15;
    if (head > n) head = n;
    memcpy(d, s, head);
    size_t j = head;
    for (; j + 16 <= n; j += 16) _mm_stream_ps((float *)(d + j), _mm_loadu_ps((const float *)(s + j)));
    memcpy(d + j, s + j, n - j);
#else
    memcpy(dst, src, n);
#endif
}

/* bfloat16 <-> float32 rows in order (cpu/loops.h): 16 values a step on AVX-512 (a
 * zero-extension and a shift to widen; ct_bf16x16_round and one vpmovdw to narrow), 8
 * or 16 on AVX2, the tails and other CPUs element by element with the same bits. */
#ifdef CT_BF16_VEC
__attribute__((target("avx512f,avx512bw"))) static int64_t bf16_widen_v512(float *o, const ct_bf16 *x, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + j)));
        _mm512_storeu_si512((void *)(o + j), _mm512_slli_epi32(v, 16));
    }
    return j;
}
__attribute__((target("avx512f,avx512bw"))) static int64_t bf16_narrow_v512(ct_bf16 *o, const float *x, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        _mm256_storeu_si256((__m256i *)(o + j), _mm512_cvtepi32_epi16(ct_bf16x16_round(_mm512_loadu_ps(x + j))));
    return j;
}
__attribute__((target("avx2,fma"))) static int64_t bf16_widen_v256(float *o, const ct_bf16 *x, int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + j)));
        _mm256_storeu_si256((__m256i *)(o + j), _mm256_slli_epi32(v, 16));
    }
    return j;
}
__attribute__((target("avx2,fma"))) static int64_t bf16_narrow_v256(ct_bf16 *o, const float *x, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256i r = _mm256_packus_epi32(ct_bf16x8_round(_mm256_loadu_ps(x + j)),
                                        ct_bf16x8_round(_mm256_loadu_ps(x + j + 8)));
        _mm256_storeu_si256((__m256i *)(o + j), _mm256_permute4x64_epi64(r, 0xd8));
    }
    return j;
}

/* float16 <-> float32 by the CPU's conversions (AVX-512F; F16C beside AVX2), which
 * round to nearest even and quiet NaNs as ct_half_to_float / ct_float_to_half do */
__attribute__((target("avx512f"))) static int64_t f16_widen_v512(float *o, const ct_half *x, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(o + j, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + j))));
    return j;
}
__attribute__((target("avx512f"))) static int64_t f16_narrow_v512(ct_half *o, const float *x, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        _mm256_storeu_si256((__m256i *)(o + j), _mm512_cvtps_ph(_mm512_loadu_ps(x + j), _MM_FROUND_TO_NEAREST_INT));
    return j;
}
__attribute__((target("avx2,f16c"))) static int64_t f16_widen_v256(float *o, const ct_half *x, int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(o + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + j))));
    return j;
}
__attribute__((target("avx2,f16c"))) static int64_t f16_narrow_v256(ct_half *o, const float *x, int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm_storeu_si128((__m128i *)(o + j), _mm256_cvtps_ph(_mm256_loadu_ps(x + j), _MM_FROUND_TO_NEAREST_INT));
    return j;
}
#endif

void ct__f16_widen_row(float *o, const ct_half *x, int64_t n) {
    int64_t j = 0;
#ifdef CT_BF16_VEC
    if (ct__cpu_isa() == CT_ISA_AVX512) j = f16_widen_v512(o, x, n);
    else if (ct__cpu_isa() == CT_ISA_AVX2) j = f16_widen_v256(o, x, n);
#endif
    for (; j < n; j++) o[j] = ct_half_to_float(x[j]);
}

void ct__f16_narrow_row(ct_half *o, const float *x, int64_t n) {
    int64_t j = 0;
#ifdef CT_BF16_VEC
    if (ct__cpu_isa() == CT_ISA_AVX512) j = f16_narrow_v512(o, x, n);
    else if (ct__cpu_isa() == CT_ISA_AVX2) j = f16_narrow_v256(o, x, n);
#endif
    for (; j < n; j++) o[j] = ct_float_to_half(x[j]);
}

void ct__bf16_widen_row(float *o, const ct_bf16 *x, int64_t n) {
    int64_t j = 0;
#ifdef CT_BF16_VEC
    if (ct__cpu_isa() == CT_ISA_AVX512) j = bf16_widen_v512(o, x, n);
    else if (ct__cpu_isa() == CT_ISA_AVX2) j = bf16_widen_v256(o, x, n);
#endif
    for (; j < n; j++) o[j] = ct_bf16_to_float(x[j]);
}

void ct__bf16_narrow_row(ct_bf16 *o, const float *x, int64_t n) {
    int64_t j = 0;
#ifdef CT_BF16_VEC
    if (ct__cpu_isa() == CT_ISA_AVX512) j = bf16_narrow_v512(o, x, n);
    else if (ct__cpu_isa() == CT_ISA_AVX2) j = bf16_narrow_v256(o, x, n);
#endif
    ct__bf16_narrow(o + j, x + j, n - j);
}

void ct__stream_fence(void) {
#if defined(__x86_64__)
    _mm_sfence();
#endif
}

int ct__cpu_run_loop(const ct_kernel_args *a, ct_loop_fn const *loops, const double *params) {
    const ct_tensor *ops[CT_ITER_MAX_OPS];
    int n = 0;
    for (int i = 0; i < a->n_out; i++) ops[n++] = a->out[i];
    for (int i = 0; i < a->n_in; i++) ops[n++] = a->in[i];
    ct_dtype dt = a->n_in ? a->in[0]->dtype : a->out[0]->dtype;
    ct_loop_fn fn = loops[dt];
    if (!fn) return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(dt));
    int64_t numel = a->out[0]->numel;
    if (numel == 0) return 0;
    if (numel < CT_GRAIN) { /* small and dense, no broadcasting: one call, no iterator */
        char *ptr[CT_ITER_MAX_OPS];
        int64_t st[CT_ITER_MAX_OPS];
        bool flat = true;
        for (int k = 0; k < n && flat; k++) {
            const ct_tensor *t = ops[k];
            flat = t->numel == numel && ct__is_contiguous(t);
            st[k] = (int64_t)ct_dtype_size(t->dtype);
            ptr[k] = (char *)t->storage->data + t->offset * st[k];
        }
        if (flat) {
            fn(ptr, st, numel, (void *)params);
            return 0;
        }
    }
    ct_iter it;
    if (ct__iter_build_any_order(&it, n, a->n_out, ops)) return ct_last_status();
    ct__iter_run(&it, fn, (void *)params, 0);
    return 0;
}
