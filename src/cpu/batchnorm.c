/* CPU kernels of batch normalisation over a contiguous [N, C, S] tensor (S: the product
 * of the spatial sizes, 1 for BatchNorm1d on [N, C]); float32 and float64. Statistics
 * and gradient sums accumulate in double, as PyTorch's CPU kernels do. Work is split
 * over channels.
 *
 * BATCH_NORM: out[0] y; out[1] mean, out[2] invstd (the saved statistics, [C]);
 *   out[3], out[4] running mean / var or NULL (training: updated with momentum d[1] and
 *   the unbiased variance; evaluation: read); in[0] x, in[1] weight or NULL, in[2] bias
 *   or NULL; i[0] training; d[0] eps.
 * BATCH_NORM_BWD: out[0] grad_input, out[1] grad_weight, out[2] grad_bias (each NULL
 *   when not wanted); in[0] grad_output, in[1] x, in[2] weight or NULL, in[3] mean,
 *   in[4] invstd; i[0] training (the statistics depend on x). */
#include <math.h>
#include <string.h>

#include "cpu/loops.h"
#include "cpu/pool.h"

typedef struct {
    int64_t N, C, S;
} bn_shape;

static bn_shape bn_shape_of(const ct_tensor *x) {
    bn_shape s = {x->sizes[0], x->sizes[1], 1};
    for (int d = 2; d < x->ndim; d++) s.S *= x->sizes[d];
    return s;
}

/* Σ x and Σ (x - m)^2 of channel c, accumulated in double (SIMD lanes via omp simd) */
#define BN_STATS(NAME, T)                                                                                    \
    CT_LOOP_ATTR static void NAME(const T *x, bn_shape s, int64_t c, double *mean, double *var) {            \
        double acc = 0;                                                                                      \
        for (int64_t n = 0; n < s.N; n++) {                                                                  \
            const T *p = x + (n * s.C + c) * s.S;                                                            \
            _Pragma("omp simd reduction(+ : acc)") for (int64_t i = 0; i < s.S; i++) acc += (double)p[i];    \
        }                                                                                                    \
        T mt = (T)(acc / (double)(s.N * s.S)); /* rounded to T before the second pass, as PyTorch */        \
        double sq = 0;                                                                                       \
        for (int64_t n = 0; n < s.N; n++) {                                                                  \
            const T *p = x + (n * s.C + c) * s.S;                                                            \
            _Pragma("omp simd reduction(+ : sq)") for (int64_t i = 0; i < s.S; i++) {                        \
                double d = (double)(p[i] - mt);                                                              \
                sq += d * d;                                                                                 \
            }                                                                                                \
        }                                                                                                    \
        *mean = (double)mt, *var = sq / (double)(s.N * s.S);                                                 \
    }
BN_STATS(bn_stats_f32, float)
BN_STATS(bn_stats_f64, double)

/* y = x * scale + shift over one plane of S values (the fused kernels below compute
 * bn's output with the same expression, so the same values as BATCH_NORM) */
#define BN_APPLY_PLANE(NAME, T)                                                                              \
    static inline __attribute__((always_inline)) void NAME(const T *p, T *q, int64_t S, T scale, T shift) {  \
        for (int64_t i = 0; i < S; i++) q[i] = p[i] * scale + shift;                                         \
    }
BN_APPLY_PLANE(bn_apply_plane_f32, float)
BN_APPLY_PLANE(bn_apply_plane_f64, double)

/* y = x * scale + shift over channel c */
#define BN_APPLY(NAME, T, PLANE)                                                                             \
    CT_LOOP_ATTR static void NAME(const T *x, T *y, bn_shape s, int64_t c, T scale, T shift) {               \
        for (int64_t n = 0; n < s.N; n++)                                                                    \
            PLANE(x + (n * s.C + c) * s.S, y + (n * s.C + c) * s.S, s.S, scale, shift);                      \
    }
BN_APPLY(bn_apply_f32, float, bn_apply_plane_f32)
BN_APPLY(bn_apply_f64, double, bn_apply_plane_f64)

/* Σ g and Σ g * (x - mean) over one plane, added to *sg, *sgx (double) */
#define BN_GSUMS_PLANE(NAME, T)                                                                              \
    static inline __attribute__((always_inline)) void NAME(const T *gp, const T *xp, int64_t S, T mean,      \
                                                           double *sg, double *sgx) {                        \
        double a = *sg, b = *sgx;                                                                            \
        _Pragma("omp simd reduction(+ : a, b)") for (int64_t i = 0; i < S; i++) {                            \
            a += (double)gp[i];                                                                              \
            b += (double)gp[i] * (double)(xp[i] - mean);                                                     \
        }                                                                                                    \
        *sg = a, *sgx = b;                                                                                   \
    }
BN_GSUMS_PLANE(bn_gsums_plane_f32, float)
BN_GSUMS_PLANE(bn_gsums_plane_f64, double)

/* the same over channel c */
#define BN_GSUMS(NAME, T, PLANE)                                                                             \
    CT_LOOP_ATTR static void NAME(const T *g, const T *x, bn_shape s, int64_t c, T mean, double *sg,         \
                                  double *sgx) {                                                             \
        *sg = 0, *sgx = 0;                                                                                   \
        for (int64_t n = 0; n < s.N; n++) {                                                                  \
            int64_t off = (n * s.C + c) * s.S;                                                               \
            PLANE(g + off, x + off, s.S, mean, sg, sgx);                                                     \
        }                                                                                                    \
    }
BN_GSUMS(bn_gsums_f32, float, bn_gsums_plane_f32)
BN_GSUMS(bn_gsums_f64, double, bn_gsums_plane_f64)

/* gx = k * (g - mg - (x - mean) * proj) over one plane (evaluation: mg = proj = 0) */
#define BN_GX_PLANE(NAME, T)                                                                                 \
    static inline __attribute__((always_inline)) void NAME(const T *gp, const T *xp, T *o, int64_t S, T mean, \
                                                           T k, T mg, T proj) {                              \
        for (int64_t i = 0; i < S; i++) o[i] = k * (gp[i] - mg - (xp[i] - mean) * proj);                    \
    }
BN_GX_PLANE(bn_gx_plane_f32, float)
BN_GX_PLANE(bn_gx_plane_f64, double)

/* the same over channel c */
#define BN_GX(NAME, T, PLANE)                                                                                \
    CT_LOOP_ATTR static void NAME(const T *g, const T *x, T *gx, bn_shape s, int64_t c, T mean, T k, T mg,   \
                                  T proj) {                                                                  \
        for (int64_t n = 0; n < s.N; n++) {                                                                  \
            int64_t off = (n * s.C + c) * s.S;                                                               \
            PLANE(g + off, x + off, gx + off, s.S, mean, k, mg, proj);                                       \
        }                                                                                                    \
    }
BN_GX(bn_gx_f32, float, bn_gx_plane_f32)
BN_GX(bn_gx_f64, double, bn_gx_plane_f64)

static double ld(const ct_tensor *t, int64_t i) {
    return t->dtype == CT_FLOAT32 ? ((const float *)ct__data(t))[i] : ((const double *)ct__data(t))[i];
}
static void st(ct_tensor *t, int64_t i, double v) {
    if (t->dtype == CT_FLOAT32) ((float *)ct__data(t))[i] = (float)v;
    else ((double *)ct__data(t))[i] = v;
}

/* Channel c's statistics (training: from x; evaluation: the running ones) into mean and
 * invstd, the running statistics updated, and bn's output as y = x * scale + shift.
 * Shared by BATCH_NORM and the fused kernel below. a: either op's arguments (x, weight,
 * bias in in[0..2], i[0] training, d[0] eps, d[1] momentum). */
typedef struct {
    double scale, shift; /* float32: the float values, exactly */
} bn_affine;

static bn_affine bn_channel(const ct_kernel_args *a, bn_shape s, int64_t c, ct_tensor *mean, ct_tensor *invstd,
                            ct_tensor *rm, ct_tensor *rv) {
    const ct_tensor *x = a->in[0], *w = a->in[1], *b = a->in[2];
    bool training = a->i[0], f32 = x->dtype == CT_FLOAT32;
    double eps = a->d[0], mom = a->d[1], m, v;
    int64_t M = s.N * s.S;
    if (training) {
        if (f32) bn_stats_f32(ct__data(x), s, c, &m, &v);
        else bn_stats_f64(ct__data(x), s, c, &m, &v);
    } else {
        m = ld(rm, c), v = ld(rv, c);
    }
    double is = 1.0 / sqrt(v + eps);
    st(mean, c, m);
    st(invstd, c, is);
    if (training && rm) st(rm, c, (1 - mom) * ld(rm, c) + mom * m);
    if (training && rv) st(rv, c, (1 - mom) * ld(rv, c) + mom * (M > 1 ? v * (double)M / (double)(M - 1) : v));
    /* y = (x - m) * is * w + b = x * scale + shift, in the input's precision as the
     * composite formula rounds: scale and shift from the rounded statistics */
    double wc = w ? ld(w, c) : 1.0, bc = b ? ld(b, c) : 0.0;
    if (f32) {
        float mf = (float)m, isf = (float)is, scale = isf * (float)wc;
        return (bn_affine){scale, (float)bc - mf * scale};
    }
    double scale = is * wc;
    return (bn_affine){scale, bc - m * scale};
}

static int cpu_batch_norm(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    bn_shape s = bn_shape_of(x);
    bool f32 = x->dtype == CT_FLOAT32;
    const void *xp = ct__data(x);
    void *yp = ct__data(a->out[0]);
    CT_PARALLEL_FOR_IF(s.C > 1 && s.C * s.N * s.S >= CT_GRAIN, for (int64_t c = 0; c < s.C; c++), {
        bn_affine k = bn_channel(a, s, c, a->out[1], a->out[2], a->out[3], a->out[4]);
        if (f32) bn_apply_f32(xp, yp, s, c, (float)k.scale, (float)k.shift);
        else bn_apply_f64(xp, yp, s, c, k.scale, k.shift);
    });
    return 0;
}

/* The gradient coefficients of channel c from its sums Σ g (sg) and Σ g * (x - mean)
 * (sgx): grad_weight and grad_bias stored, and gx = k * (g - mg - (x - mean) * proj). */
typedef struct {
    double mean, k, mg, proj;
} bn_gcoef;

static bn_gcoef bn_grad_coefs(const ct_kernel_args *a, const ct_tensor *w, const ct_tensor *mean,
                              const ct_tensor *invstd, bn_shape s, int64_t c, double sg, double sgx) {
    double m = ld(mean, c), is = ld(invstd, c), M = (double)(s.N * s.S);
    bool training = a->i[0];
    if (a->out[1]) st(a->out[1], c, sgx * is);
    if (a->out[2]) st(a->out[2], c, sg);
    /* training: gx = w * is * (g - mean(g) - xhat * mean(g * xhat)), xhat = (x - m) * is */
    return (bn_gcoef){m, is * (w ? ld(w, c) : 1.0), training ? sg / M : 0, training ? sgx / M * is * is : 0};
}

static int cpu_batch_norm_bwd(const ct_kernel_args *a) {
    const ct_tensor *g = a->in[0], *x = a->in[1], *w = a->in[2], *mean = a->in[3], *invstd = a->in[4];
    ct_tensor *gx = a->out[0];
    bn_shape s = bn_shape_of(x);
    bool f32 = x->dtype == CT_FLOAT32;
    const void *gp = ct__data(g), *xp = ct__data(x);
    CT_PARALLEL_FOR_IF(s.C > 1 && s.C * s.N * s.S >= CT_GRAIN, for (int64_t c = 0; c < s.C; c++), {
        double sg, sgx;
        if (f32) bn_gsums_f32(gp, xp, s, c, (float)ld(mean, c), &sg, &sgx);
        else bn_gsums_f64(gp, xp, s, c, ld(mean, c), &sg, &sgx);
        bn_gcoef k = bn_grad_coefs(a, w, mean, invstd, s, c, sg, sgx);
        if (!gx) continue;
        if (f32) bn_gx_f32(gp, xp, ct__data(gx), s, c, (float)k.mean, (float)k.k, (float)k.mg, (float)k.proj);
        else bn_gx_f64(gp, xp, ct__data(gx), s, c, k.mean, k.k, k.mg, k.proj);
    });
    return 0;
}

/* ---- relu(batch_norm(x)) and max_pool2d of it in one kernel each (src/ops/nnf.c) ----
 * y = x * scale + shift as BATCH_NORM computes it, then relu as RELU does (y < 0 gives
 * 0; NaN and -0 pass), over one plane. */
#define BN_RELU_PLANE_INLINE(NAME, T)                                                                        \
    static inline __attribute__((always_inline)) void NAME(const T *p, T *q, int64_t S, T scale, T shift) {  \
        for (int64_t i = 0; i < S; i++) {                                                                    \
            T y = p[i] * scale + shift;                                                                      \
            q[i] = y < 0 ? (T)0 : y;                                                                         \
        }                                                                                                    \
    }
BN_RELU_PLANE_INLINE(bn_relu_plane_inl_f32, float)
BN_RELU_PLANE_INLINE(bn_relu_plane_inl_f64, double)

/* With pooling: per [H, W] plane, bn's output and relu go to a buffer of the thread and
 * max_pool2d's own plane kernel pools the buffer, so the values and the window's index
 * are the three ops'. relu's gradient reaches that index only where the pooled value is
 * not <= 0 (threshold_backward's rule); the kernel keeps the index (h*W+w, int32) for
 * those outputs and -1 for the others, so the output and index are all that is written:
 * one read of x after the statistics' (which read each channel while it is in cache),
 * against bn's, relu's and pooling's six passes. */
#define BN_POOL_PLANE(NAME, T, BNRELU, F32)                                                                  \
    CT_LOOP_ATTR static void NAME(const T *x, T *y, T *z, int32_t *zi, int64_t *pix, int64_t H, int64_t W,  \
                                  int64_t osz, const int64_t *iv, T scale, T shift) {                        \
        BNRELU(x, y, H * W, scale, shift);                                                                   \
        ct__cpu_max_pool_plane(F32, y, z, pix, H, W, iv);                                                    \
        for (int64_t o = 0; o < osz; o++) zi[o] = z[o] <= 0 ? -1 : (int32_t)pix[o];                          \
    }
BN_POOL_PLANE(bn_pool_plane_f32, float, bn_relu_plane_inl_f32, true)
BN_POOL_PLANE(bn_pool_plane_f64, double, bn_relu_plane_inl_f64, false)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CT_BN_POOL_AVX2 1
/* The 2x2 / stride-2 / unpadded case for float32 with AVX2, straight from x: eight
 * windows per step from two rows of sixteen values, y = x * scale + shift as a multiply
 * then an add (the target leaves out FMA, so nothing is contracted and y rounds as
 * BATCH_NORM's loop rounds it), relu, then max_pool2d's comparisons in its order.
 * The short last step of a row (Wo = 14, 7) loads under a mask and stores through a
 * buffer (masked stores are microcoded on AMD). */
__attribute__((target("avx2"))) static void bn_pool2_plane_f32_avx2(const float *x, float *z, int32_t *zi,
                                                                    int64_t W, int64_t Ho, int64_t Wo, float scale,
                                                                    float shift) {
    const __m256 vs = _mm256_set1_ps(scale), vt = _mm256_set1_ps(shift), zero = _mm256_setzero_ps();
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i one = _mm256_set1_epi32(1), vW = _mm256_set1_epi32((int)W), none = _mm256_set1_epi32(-1);
    for (int64_t oh = 0; oh < Ho; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        for (int64_t ow = 0; ow < Wo; ow += 8) {
            int64_t m = Wo - ow < 8 ? Wo - ow : 8;
            const float *p0 = r0 + 2 * ow, *p1 = r1 + 2 * ow;
            __m256 lo0, hi0, lo1, hi1;
            if (m == 8) {
                lo0 = _mm256_loadu_ps(p0), hi0 = _mm256_loadu_ps(p0 + 8);
                lo1 = _mm256_loadu_ps(p1), hi1 = _mm256_loadu_ps(p1 + 8);
            } else {
                __m256i mlo = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(2 * m < 8 ? 2 * m : 8)), iota);
                __m256i mhi = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(2 * m > 8 ? 2 * m - 8 : 0)), iota);
                lo0 = _mm256_maskload_ps(p0, mlo), hi0 = _mm256_maskload_ps(p0 + 8, mhi);
                lo1 = _mm256_maskload_ps(p1, mlo), hi1 = _mm256_maskload_ps(p1 + 8, mhi);
            }
#define BN_RELU_V(v) _mm256_andnot_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), v) /* y < 0 gives +0; NaN, -0 pass */
            lo0 = BN_RELU_V(_mm256_add_ps(_mm256_mul_ps(lo0, vs), vt));
            hi0 = BN_RELU_V(_mm256_add_ps(_mm256_mul_ps(hi0, vs), vt));
            lo1 = BN_RELU_V(_mm256_add_ps(_mm256_mul_ps(lo1, vs), vt));
            hi1 = BN_RELU_V(_mm256_add_ps(_mm256_mul_ps(hi1, vs), vt));
#undef BN_RELU_V
            __m256 best;
            __m256i k;
            CT_POOL_PICK4(lo0, hi0, lo1, hi1, best, k);
            /* the gradient passes where best is not <= 0 (> 0 or NaN): index h*W+w of the pick */
            __m256 keep = _mm256_cmp_ps(best, zero, _CMP_NLE_UQ);
            __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)(2 * oh * W + 2 * ow)), even);
            idx = _mm256_add_epi32(idx, _mm256_and_si256(k, one));
            idx = _mm256_add_epi32(idx, _mm256_and_si256(_mm256_cmpgt_epi32(k, one), vW));
            idx = _mm256_blendv_epi8(none, idx, _mm256_castps_si256(keep));
            float zb[8];
            int32_t ib[8];
            float *zd = m == 8 ? z + oh * Wo + ow : zb;
            int32_t *id = m == 8 ? zi + oh * Wo + ow : ib;
            _mm256_storeu_ps(zd, best);
            _mm256_storeu_si256((__m256i *)id, idx);
            for (int64_t j = 0; m < 8 && j < m; j++) z[oh * Wo + ow + j] = zb[j], zi[oh * Wo + ow + j] = ib[j];
        }
    }
}

/* The backward's gradient at bn's output for the same case: each pooled gradient put at
 * its window's kept position and zeros at the other three, eight windows per step (the
 * index compared with the four positions, then the columns interleaved back). Writes
 * every value of the 2 * Ho rows' first 2 * Wo columns of buf [H, W]; a plane with an
 * odd row or column left over needs those zeroed first. */
__attribute__((target("avx2"))) static void bn_pool2_expand_f32_avx2(const float *g, const int32_t *ix, float *buf,
                                                                     int64_t W, int64_t Ho, int64_t Wo) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i one = _mm256_set1_epi32(1), vW = _mm256_set1_epi32((int)W);
    for (int64_t oh = 0; oh < Ho; oh++) {
        float *r0 = buf + 2 * oh * W, *r1 = r0 + W;
        for (int64_t ow = 0; ow < Wo; ow += 8) {
            int64_t m = Wo - ow < 8 ? Wo - ow : 8;
            __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)m), iota);
            __m256 gv = _mm256_maskload_ps(g + oh * Wo + ow, mk);
            __m256i iv = _mm256_maskload_epi32(ix + oh * Wo + ow, mk); /* masked-off lanes: 0, never a position here but (0, 0)'s, whose g is 0 */
            __m256i e0 = _mm256_add_epi32(_mm256_set1_epi32((int)(2 * oh * W + 2 * ow)), even);
            __m256i e2 = _mm256_add_epi32(e0, vW);
            __m256 v0 = _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(iv, e0)));
            __m256 v1 = _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(iv, _mm256_add_epi32(e0, one))));
            __m256 v2 = _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(iv, e2)));
            __m256 v3 = _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(iv, _mm256_add_epi32(e2, one))));
            __m256 a = _mm256_unpacklo_ps(v0, v1), b = _mm256_unpackhi_ps(v0, v1);
            __m256 c = _mm256_unpacklo_ps(v2, v3), d = _mm256_unpackhi_ps(v2, v3);
            float t[32];
            float *d0 = m == 8 ? r0 + 2 * ow : t, *d1 = m == 8 ? r1 + 2 * ow : t + 16;
            _mm256_storeu_ps(d0, _mm256_permute2f128_ps(a, b, 0x20));
            _mm256_storeu_ps(d0 + 8, _mm256_permute2f128_ps(a, b, 0x31));
            _mm256_storeu_ps(d1, _mm256_permute2f128_ps(c, d, 0x20));
            _mm256_storeu_ps(d1 + 8, _mm256_permute2f128_ps(c, d, 0x31));
            for (int64_t j = 0; m < 8 && j < 2 * m; j++) r0[2 * ow + j] = t[j], r1[2 * ow + j] = t[16 + j];
        }
    }
}

/* The same two kernels with AVX-512: sixteen windows per step, so the short rows of
 * small images (Wo = 14, 7) take one masked step, loaded and stored under masks,
 * instead of a full step and a short one through a buffer. The same operations in the
 * same order as the AVX2 forms: the same values and indices. */
#define CT_BN_POOL_AVX512 1
__attribute__((target("avx512f"))) static void bn_pool2_plane_f32_avx512(const float *x, float *z, int32_t *zi,
                                                                         int64_t W, int64_t Ho, int64_t Wo,
                                                                         float scale, float shift) {
    const __m512 vs = _mm512_set1_ps(scale), vt = _mm512_set1_ps(shift), zero = _mm512_setzero_ps();
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i one = _mm512_set1_epi32(1), vW = _mm512_set1_epi32((int)W), none = _mm512_set1_epi32(-1);
    for (int64_t oh = 0; oh < Ho; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        for (int64_t ow = 0; ow < Wo; ow += 16) {
            const int64_t m = Wo - ow < 16 ? Wo - ow : 16, n2 = 2 * m;
            const __mmask16 mlo = n2 >= 16 ? 0xFFFF : (__mmask16)((1u << n2) - 1);
            const __mmask16 mhi = n2 <= 16 ? 0 : n2 >= 32 ? 0xFFFF : (__mmask16)((1u << (n2 - 16)) - 1);
            const __mmask16 mo = m >= 16 ? 0xFFFF : (__mmask16)((1u << m) - 1);
            const float *p0 = r0 + 2 * ow, *p1 = r1 + 2 * ow;
            __m512 lo0 = _mm512_maskz_loadu_ps(mlo, p0), hi0 = _mm512_maskz_loadu_ps(mhi, p0 + 16);
            __m512 lo1 = _mm512_maskz_loadu_ps(mlo, p1), hi1 = _mm512_maskz_loadu_ps(mhi, p1 + 16);
#define BN_RELU_V16(v) /* y < 0 gives +0; NaN, -0 pass */                                                  \
    do {                                                                                                    \
        v = _mm512_add_ps(_mm512_mul_ps(v, vs), vt);                                                        \
        v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);                           \
    } while (0)
            BN_RELU_V16(lo0);
            BN_RELU_V16(hi0);
            BN_RELU_V16(lo1);
            BN_RELU_V16(hi1);
#undef BN_RELU_V16
            __m512 best;
            __m512i k;
            CT_POOL_PICK16(lo0, hi0, lo1, hi1, best, k);
            /* the gradient passes where best is not <= 0 (> 0 or NaN): index h*W+w of the pick */
            const __mmask16 keep = _mm512_cmp_ps_mask(best, zero, _CMP_NLE_UQ);
            __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int)(2 * oh * W + 2 * ow)), even);
            idx = _mm512_add_epi32(idx, _mm512_and_si512(k, one));
            idx = _mm512_mask_add_epi32(idx, _mm512_cmpgt_epi32_mask(k, one), idx, vW);
            idx = _mm512_mask_mov_epi32(none, keep, idx);
            _mm512_mask_storeu_ps(z + oh * Wo + ow, mo, best);
            _mm512_mask_storeu_epi32(zi + oh * Wo + ow, mo, idx);
        }
    }
}

__attribute__((target("avx512f"))) static void bn_pool2_expand_f32_avx512(const float *g, const int32_t *ix,
                                                                          float *buf, int64_t W, int64_t Ho,
                                                                          int64_t Wo) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i one = _mm512_set1_epi32(1), vW = _mm512_set1_epi32((int)W);
    /* interleaving two vectors' lanes: a0 b0 a1 b1 ... (first 8 pairs, then the last 8) */
    const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi = _mm512_add_epi32(ilo, _mm512_set1_epi32(8));
    for (int64_t oh = 0; oh < Ho; oh++) {
        float *r0 = buf + 2 * oh * W, *r1 = r0 + W;
        for (int64_t ow = 0; ow < Wo; ow += 16) {
            const int64_t m = Wo - ow < 16 ? Wo - ow : 16, n2 = 2 * m;
            const __mmask16 mlo = n2 >= 16 ? 0xFFFF : (__mmask16)((1u << n2) - 1);
            const __mmask16 mhi = n2 <= 16 ? 0 : n2 >= 32 ? 0xFFFF : (__mmask16)((1u << (n2 - 16)) - 1);
            const __mmask16 mo = m >= 16 ? 0xFFFF : (__mmask16)((1u << m) - 1);
            const __m512 gv = _mm512_maskz_loadu_ps(mo, g + oh * Wo + ow);
            const __m512i iv = _mm512_maskz_loadu_epi32(mo, ix + oh * Wo + ow);
            const __m512i e0 = _mm512_add_epi32(_mm512_set1_epi32((int)(2 * oh * W + 2 * ow)), even);
            const __m512i e2 = _mm512_add_epi32(e0, vW);
            const __m512 v0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(iv, e0), gv);
            const __m512 v1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(iv, _mm512_add_epi32(e0, one)), gv);
            const __m512 v2 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(iv, e2), gv);
            const __m512 v3 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(iv, _mm512_add_epi32(e2, one)), gv);
            _mm512_mask_storeu_ps(r0 + 2 * ow, mlo, _mm512_permutex2var_ps(v0, ilo, v1));
            _mm512_mask_storeu_ps(r0 + 2 * ow + 16, mhi, _mm512_permutex2var_ps(v0, ihi, v1));
            _mm512_mask_storeu_ps(r1 + 2 * ow, mlo, _mm512_permutex2var_ps(v2, ilo, v3));
            _mm512_mask_storeu_ps(r1 + 2 * ow + 16, mhi, _mm512_permutex2var_ps(v2, ihi, v3));
        }
    }
}
#endif

/* The fused kernels' geometry: x [N, C, H, W] pooled to [N, C, Ho, Wo]. */
typedef struct {
    int64_t H, W, Ho, Wo, osz;
    size_t es;
    bool f32, pool2; /* pool2: float32 2x2 windows at stride 2 with the AVX2 kernels */
    bool avx512;     /* ... or their AVX-512 forms */
} bn_pool_geom;

/* Runs fn for every channel, the channels split over threads, each thread with a buffer
 * of bsz bytes. 0, or CT_ERR_OOM. */
typedef void (*bn_channel_fn)(const ct_kernel_args *a, bn_shape s, const bn_pool_geom *g, int64_t c, char *buf);
static int bn_each_channel(const ct_kernel_args *a, bn_shape s, const bn_pool_geom *g, size_t bsz, bn_channel_fn fn) {
    int rc = 0;
    CT_PARALLEL_IF(s.C > 1 && s.C * s.N * s.S >= CT_GRAIN, {
        char *buf = ct__alloc(bsz);
        if (!buf) {
            _Pragma("omp atomic write")
            rc = 1;
        }
        _Pragma("omp for schedule(static)")
        for (int64_t c = 0; c < s.C; c++)
            if (buf) fn(a, s, g, c, buf);
        ct__free(buf, bsz);
    });
    return rc ? ct__errs(CT_ERR_OOM, "%s: out of memory for a scratch buffer", ct__op_name(a->op)) : 0;
}

/* buf: the plane's int64 indices, then bn's output (the generic path) */
static void bn_pool_fwd_channel(const ct_kernel_args *a, bn_shape s, const bn_pool_geom *g, int64_t c, char *buf) {
    const char *xp = ct__data(a->in[0]);
    char *zp = ct__data(a->out[0]);
    int32_t *ip = ct__data(a->out[1]);
    int64_t osz = g->osz, *pix = (int64_t *)buf;
    bn_affine k = bn_channel(a, s, c, a->out[2], a->out[3], a->out[4], a->out[5]);
    for (int64_t n = 0; n < s.N; n++) {
        int64_t p = n * s.C + c;
#ifdef CT_BN_POOL_AVX2
        if (g->pool2) {
            (g->avx512 ? bn_pool2_plane_f32_avx512 : bn_pool2_plane_f32_avx2)(
                (const float *)xp + p * s.S, (float *)zp + p * osz, ip + p * osz, g->W, g->Ho, g->Wo, (float)k.scale,
                (float)k.shift);
            continue;
        }
#endif
        if (g->f32)
            bn_pool_plane_f32((const float *)xp + p * s.S, (float *)(pix + osz), (float *)zp + p * osz, ip + p * osz,
                              pix, g->H, g->W, osz, a->iv, (float)k.scale, (float)k.shift);
        else
            bn_pool_plane_f64((const double *)xp + p * s.S, (double *)(pix + osz), (double *)zp + p * osz,
                              ip + p * osz, pix, g->H, g->W, osz, a->iv, k.scale, k.shift);
    }
}

static int cpu_bn_relu_max_pool(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    const int64_t *iv = a->iv; /* kh kw dh dw ph pw sh sw Ho Wo */
    bn_shape s = bn_shape_of(x);
    bn_pool_geom g = {x->sizes[2], x->sizes[3], iv[8], iv[9], iv[8] * iv[9], ct_dtype_size(x->dtype),
                      x->dtype == CT_FLOAT32, false, false};
#ifdef CT_BN_POOL_AVX2
    g.pool2 = g.f32 && a->i[1] && ct__cpu_isa() >= CT_ISA_AVX2;
    g.avx512 = ct__cpu_isa() == CT_ISA_AVX512;
#endif
    return bn_each_channel(a, s, &g, (size_t)g.osz * sizeof(int64_t) + (size_t)s.S * g.es, bn_pool_fwd_channel);
}

/* The gradient at bn's output over one plane, into buf: the pooled gradient added at
 * its indices in output order, as max_pool2d's backward adds it (a dropped output adds
 * 0 at index 0, branch-free: about half the outputs are dropped, at random); then bn's
 * sums over the plane, the loop BATCH_NORM_BWD runs. */
#define BN_POOL_FILL_SUMS(NAME, T, SUMS)                                                                     \
    CT_LOOP_ATTR static void NAME(bool filled, const T *g, const int32_t *ix, const T *x, T *buf, int64_t S, \
                                  int64_t osz, T mean, double *sg, double *sgx) {                            \
        if (!filled) {                                                                                       \
            memset(buf, 0, sizeof(T) * (size_t)S);                                                           \
            for (int64_t o = 0; o < osz; o++) buf[ix[o] < 0 ? 0 : ix[o]] += ix[o] < 0 ? (T)0 : g[o];         \
        }                                                                                                    \
        SUMS(buf, x, S, mean, sg, sgx);                                                                      \
    }
BN_POOL_FILL_SUMS(bn_pool_fill_sums_f32, float, bn_gsums_plane_f32)
BN_POOL_FILL_SUMS(bn_pool_fill_sums_f64, double, bn_gsums_plane_f64)

#define BN_POOL_GX(NAME, T, GX)                                                                              \
    CT_LOOP_ATTR static void NAME(const T *gy, const T *x, T *gx, int64_t S, T mean, T k, T mg, T proj) {    \
        GX(gy, x, gx, S, mean, k, mg, proj);                                                                 \
    }
BN_POOL_GX(bn_pool_gx_f32, float, bn_gx_plane_f32)
BN_POOL_GX(bn_pool_gx_f64, double, bn_gx_plane_f64)

/* BN_RELU (no pooling): the gradient at bn's output is threshold_backward's, the output
 * gradient where relu's output z is not <= 0 (> 0 or NaN), written into buf; then the
 * sums, as above. */
#define BN_RELU_FILL_SUMS(NAME, T, SUMS)                                                                     \
    CT_LOOP_ATTR static void NAME(const T *g, const T *z, const T *x, T *buf, int64_t S, T mean, double *sg, \
                                  double *sgx) {                                                             \
        for (int64_t i = 0; i < S; i++) buf[i] = z[i] <= 0 ? (T)0 : g[i];                                    \
        SUMS(buf, x, S, mean, sg, sgx);                                                                      \
    }
BN_RELU_FILL_SUMS(bn_relu_fill_sums_f32, float, bn_gsums_plane_f32)
BN_RELU_FILL_SUMS(bn_relu_fill_sums_f64, double, bn_gsums_plane_f64)

/* asks for the n bytes at p to be brought into cache (the hardware's prefetcher does
 * not follow the jumps between the planes of a channel) */
static inline void prefetch_run(const void *p, size_t n) {
    for (size_t i = 0; i < n; i += 64) __builtin_prefetch((const char *)p + i);
}

/* One channel: the gradient at bn's output plane by plane into buf ([N, S]) with the
 * sums, then (when wanted) the input gradient from buf and x, which the first pass has
 * just read (a channel of x is often still in cache). */
static void bn_pool_bwd_channel(const ct_kernel_args *a, bn_shape s, const bn_pool_geom *g, int64_t c, char *buf) {
    const ct_tensor *w = a->in[3], *mean = a->in[4], *invstd = a->in[5];
    const char *gp = ct__data(a->in[0]), *xp = ct__data(a->in[2]);
    const char *zp = ct__data(a->in[1]); /* BN_RELU_BWD: relu's output; else the int32 index */
    const int32_t *ip = (const int32_t *)zp;
    bool pooled = a->op == CT_OP_BN_RELU_MAX_POOL2D_BWD;
    char *gxp = a->out[0] ? ct__data(a->out[0]) : NULL;
    int64_t osz = pooled ? g->osz : s.S; /* values of the output gradient per plane */
    size_t es = g->es, isz = pooled ? sizeof(int32_t) : es;
    double sg = 0, sgx = 0, m = ld(mean, c);
    for (int64_t n = 0; n < s.N; n++) {
        int64_t p = n * s.C + c;
        char *gy = buf + (size_t)(n * s.S) * es;
        const float *xf = (const float *)xp + p * s.S;
        const double *xd = (const double *)xp + p * s.S;
        if (n + 1 < s.N) { /* the next plane's index (or z), gradient and x: a channel's planes lie C apart */
            prefetch_run(zp + (size_t)((p + s.C) * osz) * isz, (size_t)osz * isz);
            prefetch_run(gp + (size_t)((p + s.C) * osz) * es, (size_t)osz * es);
            prefetch_run(xp + (size_t)((p + s.C) * s.S) * es, (size_t)s.S * es);
        }
        if (!pooled) {
            if (g->f32)
                bn_relu_fill_sums_f32((const float *)gp + p * osz, (const float *)zp + p * osz, xf, (float *)gy, s.S,
                                      (float)m, &sg, &sgx);
            else
                bn_relu_fill_sums_f64((const double *)gp + p * osz, (const double *)zp + p * osz, xd, (double *)gy,
                                      s.S, m, &sg, &sgx);
            continue;
        }
#ifdef CT_BN_POOL_AVX2
        if (g->pool2) {
            if (2 * g->Ho < g->H || 2 * g->Wo < g->W) memset(gy, 0, (size_t)s.S * es); /* a row or column left over */
            (g->avx512 ? bn_pool2_expand_f32_avx512 : bn_pool2_expand_f32_avx2)(
                (const float *)gp + p * osz, ip + p * osz, (float *)gy, g->W, g->Ho, g->Wo);
        }
#endif
        if (g->f32)
            bn_pool_fill_sums_f32(g->pool2, (const float *)gp + p * osz, ip + p * osz, xf, (float *)gy, s.S, osz,
                                  (float)m, &sg, &sgx);
        else
            bn_pool_fill_sums_f64(false, (const double *)gp + p * osz, ip + p * osz, xd, (double *)gy, s.S, osz, m,
                                  &sg, &sgx);
    }
    bn_gcoef k = bn_grad_coefs(a, w, mean, invstd, s, c, sg, sgx);
    for (int64_t n = 0; gxp && n < s.N; n++) {
        int64_t p = n * s.C + c;
        const char *gy = buf + (size_t)(n * s.S) * es;
        if (g->f32)
            bn_pool_gx_f32((const float *)gy, (const float *)xp + p * s.S, (float *)gxp + p * s.S, s.S,
                           (float)k.mean, (float)k.k, (float)k.mg, (float)k.proj);
        else
            bn_pool_gx_f64((const double *)gy, (const double *)xp + p * s.S, (double *)gxp + p * s.S, s.S, k.mean,
                           k.k, k.mg, k.proj);
    }
}

/* BN_RELU_MAX_POOL2D_BWD and BN_RELU_BWD */
static int cpu_bn_relu_max_pool_bwd(const ct_kernel_args *a) {
    const ct_tensor *g = a->in[0], *x = a->in[2];
    bn_shape s = bn_shape_of(x);
    bn_pool_geom pg = {x->sizes[2], x->sizes[3], g->sizes[2], g->sizes[3], g->sizes[2] * g->sizes[3],
                       ct_dtype_size(x->dtype), x->dtype == CT_FLOAT32, false, false};
#ifdef CT_BN_POOL_AVX2
    pg.pool2 = a->op == CT_OP_BN_RELU_MAX_POOL2D_BWD && pg.f32 && a->i[1] && ct__cpu_isa() >= CT_ISA_AVX2;
    pg.avx512 = ct__cpu_isa() == CT_ISA_AVX512;
#endif
    return bn_each_channel(a, s, &pg, (size_t)(s.N * s.S) * pg.es, bn_pool_bwd_channel);
}

/* ---- relu(batch_norm(x)) (BN_RELU): bn's output and relu in one pass per plane ---- */
#define BN_RELU_PLANE(NAME, T, INL)                                                                          \
    CT_LOOP_ATTR static void NAME(const T *p, T *q, int64_t S, T scale, T shift) { INL(p, q, S, scale, shift); }
BN_RELU_PLANE(bn_relu_plane_f32, float, bn_relu_plane_inl_f32)
BN_RELU_PLANE(bn_relu_plane_f64, double, bn_relu_plane_inl_f64)

static void bn_relu_fwd_channel(const ct_kernel_args *a, bn_shape s, const bn_pool_geom *g, int64_t c, char *buf) {
    (void)buf;
    const char *xp = ct__data(a->in[0]);
    char *zp = ct__data(a->out[0]);
    bn_affine k = bn_channel(a, s, c, a->out[1], a->out[2], a->out[3], a->out[4]);
    for (int64_t n = 0; n < s.N; n++) {
        int64_t off = (n * s.C + c) * s.S;
        if (g->f32) bn_relu_plane_f32((const float *)xp + off, (float *)zp + off, s.S, (float)k.scale, (float)k.shift);
        else bn_relu_plane_f64((const double *)xp + off, (double *)zp + off, s.S, k.scale, k.shift);
    }
}

static int cpu_bn_relu(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    bn_shape s = bn_shape_of(x);
    bn_pool_geom g = {.es = ct_dtype_size(x->dtype), .f32 = x->dtype == CT_FLOAT32};
    return bn_each_channel(a, s, &g, 64, bn_relu_fwd_channel);
}

void ct_cpu_register_batchnorm(ct_kernel_fn *k) {
    k[CT_OP_BATCH_NORM] = cpu_batch_norm;
    k[CT_OP_BATCH_NORM_BWD] = cpu_batch_norm_bwd;
    k[CT_OP_BN_RELU_MAX_POOL2D] = cpu_bn_relu_max_pool;
    k[CT_OP_BN_RELU_MAX_POOL2D_BWD] = cpu_bn_relu_max_pool_bwd;
    k[CT_OP_BN_RELU] = cpu_bn_relu;
    k[CT_OP_BN_RELU_BWD] = cpu_bn_relu_max_pool_bwd;
}
