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

#include "cpu/loops.h"

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

/* y = x * scale + shift over channel c */
#define BN_APPLY(NAME, T)                                                                                    \
    CT_LOOP_ATTR static void NAME(const T *x, T *y, bn_shape s, int64_t c, T scale, T shift) {               \
        for (int64_t n = 0; n < s.N; n++) {                                                                  \
            const T *p = x + (n * s.C + c) * s.S;                                                            \
            T *q = y + (n * s.C + c) * s.S;                                                                  \
            for (int64_t i = 0; i < s.S; i++) q[i] = p[i] * scale + shift;                                   \
        }                                                                                                    \
    }
BN_APPLY(bn_apply_f32, float)
BN_APPLY(bn_apply_f64, double)

/* Σ g and Σ g * (x - mean) over channel c, in double */
#define BN_GSUMS(NAME, T)                                                                                    \
    CT_LOOP_ATTR static void NAME(const T *g, const T *x, bn_shape s, int64_t c, T mean, double *sg,         \
                                  double *sgx) {                                                             \
        double a = 0, b = 0;                                                                                 \
        for (int64_t n = 0; n < s.N; n++) {                                                                  \
            const T *gp = g + (n * s.C + c) * s.S, *xp = x + (n * s.C + c) * s.S;                            \
            _Pragma("omp simd reduction(+ : a, b)") for (int64_t i = 0; i < s.S; i++) {                      \
                a += (double)gp[i];                                                                          \
                b += (double)gp[i] * (double)(xp[i] - mean);                                                 \
            }                                                                                                \
        }                                                                                                    \
        *sg = a, *sgx = b;                                                                                   \
    }
BN_GSUMS(bn_gsums_f32, float)
BN_GSUMS(bn_gsums_f64, double)

/* gx = k * (g - mg - (x - mean) * proj) over channel c (evaluation: mg = proj = 0) */
#define BN_GX(NAME, T)                                                                                       \
    CT_LOOP_ATTR static void NAME(const T *g, const T *x, T *gx, bn_shape s, int64_t c, T mean, T k, T mg,   \
                                  T proj) {                                                                  \
        for (int64_t n = 0; n < s.N; n++) {                                                                  \
            const T *gp = g + (n * s.C + c) * s.S, *xp = x + (n * s.C + c) * s.S;                            \
            T *o = gx + (n * s.C + c) * s.S;                                                                 \
            for (int64_t i = 0; i < s.S; i++) o[i] = k * (gp[i] - mg - (xp[i] - mean) * proj);              \
        }                                                                                                    \
    }
BN_GX(bn_gx_f32, float)
BN_GX(bn_gx_f64, double)

static double ld(const ct_tensor *t, int64_t i) {
    return t->dtype == CT_FLOAT32 ? ((const float *)ct__data(t))[i] : ((const double *)ct__data(t))[i];
}
static void st(ct_tensor *t, int64_t i, double v) {
    if (t->dtype == CT_FLOAT32) ((float *)ct__data(t))[i] = (float)v;
    else ((double *)ct__data(t))[i] = v;
}

static int cpu_batch_norm(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0], *w = a->in[1], *b = a->in[2];
    ct_tensor *y = a->out[0], *mean = a->out[1], *invstd = a->out[2], *rm = a->out[3], *rv = a->out[4];
    bn_shape s = bn_shape_of(x);
    bool training = a->i[0], f32 = x->dtype == CT_FLOAT32;
    double eps = a->d[0], mom = a->d[1];
    int64_t M = s.N * s.S;
    const void *xp = ct__data(x);
    void *yp = ct__data(y);
#pragma omp parallel for schedule(static) if (s.C > 1 && s.C * M >= CT_GRAIN)
    for (int64_t c = 0; c < s.C; c++) {
        double m, v;
        if (training) {
            if (f32) bn_stats_f32(xp, s, c, &m, &v);
            else bn_stats_f64(xp, s, c, &m, &v);
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
            bn_apply_f32(xp, yp, s, c, scale, (float)bc - mf * scale);
        } else {
            double scale = is * wc;
            bn_apply_f64(xp, yp, s, c, scale, bc - m * scale);
        }
    }
    return 0;
}

static int cpu_batch_norm_bwd(const ct_kernel_args *a) {
    const ct_tensor *g = a->in[0], *x = a->in[1], *w = a->in[2], *mean = a->in[3], *invstd = a->in[4];
    ct_tensor *gx = a->out[0], *gw = a->out[1], *gb = a->out[2];
    bn_shape s = bn_shape_of(x);
    bool training = a->i[0], f32 = x->dtype == CT_FLOAT32;
    int64_t M = s.N * s.S;
    const void *gp = ct__data(g), *xp = ct__data(x);
#pragma omp parallel for schedule(static) if (s.C > 1 && s.C * M >= CT_GRAIN)
    for (int64_t c = 0; c < s.C; c++) {
        double m = ld(mean, c), is = ld(invstd, c), sg, sgx;
        if (f32) bn_gsums_f32(gp, xp, s, c, (float)m, &sg, &sgx);
        else bn_gsums_f64(gp, xp, s, c, m, &sg, &sgx);
        if (gw) st(gw, c, sgx * is);
        if (gb) st(gb, c, sg);
        if (!gx) continue;
        double k = is * (w ? ld(w, c) : 1.0);
        /* training: gx = w * is * (g - mean(g) - xhat * mean(g * xhat)), xhat = (x - m) * is */
        double mg = training ? sg / (double)M : 0, proj = training ? sgx / (double)M * is * is : 0;
        if (f32) bn_gx_f32(gp, xp, ct__data(gx), s, c, (float)m, (float)k, (float)mg, (float)proj);
        else bn_gx_f64(gp, xp, ct__data(gx), s, c, m, k, mg, proj);
    }
    return 0;
}

void ct_cpu_register_batchnorm(ct_kernel_fn *k) {
    k[CT_OP_BATCH_NORM] = cpu_batch_norm;
    k[CT_OP_BATCH_NORM_BWD] = cpu_batch_norm_bwd;
}
