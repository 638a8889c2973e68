/* Fused CPU kernels for layer normalisation (torch.native_layer_norm and its backward).
 *
 * CT_OP_LAYER_NORM: in[0] x contiguous, viewed as [i[0] rows N, i[1] row size M];
 *   in[1] weight, in[2] bias (contiguous [M], either may be NULL); d[0] eps.
 *   out[0] y (contiguous like x), out[1] mean [N], out[2] rstd [N]:
 *   mean = sum(x) / M, rstd = 1 / sqrt(var_biased + eps), y = (x * rstd - mean * rstd) * w + b.
 * CT_OP_LAYER_NORM_BACKWARD: in[0] dy, in[1] x (contiguous [N, M]), in[2] mean, in[3] rstd
 *   ([N]), in[4] weight ([M] or NULL); i[0] N, i[1] M. out[0] dx ([N, M]), out[1] dweight,
 *   out[2] dbias ([M]); each may be NULL (not wanted), so the call has n_out 0 and
 *   dispatches on in[0]'s device.
 * All tensors float32 or float64, one dtype. Statistics accumulate in the tensor's type
 * (PyTorch's opmath for these dtypes); the column sums of dweight and dbias in double. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/loops.h"

/* One row forward. Two passes: the mean, then the squared deviations corrected by the
 * mean's residual (sum of deviations), which absorbs the rounding of the mean. */
#define LN_FWD_ROW(T, SFX, SQRT)                                                                           \
    CT_LOOP_ATTR static void ln_fwd_row_##SFX(const T *x, const T *w, const T *b, T *y, T *mean_o, T *rstd_o, \
                                              int64_t M, T eps) {                                         \
        T s = 0;                                                                                          \
        _Pragma("omp simd reduction(+:s)")                                                                \
        for (int64_t j = 0; j < M; j++) s += x[j];                                                        \
        T mean = s / (T)M, r = 0, q = 0;                                                                  \
        _Pragma("omp simd reduction(+:r, q)")                                                             \
        for (int64_t j = 0; j < M; j++) {                                                                 \
            T d = x[j] - mean;                                                                            \
            r += d, q += d * d;                                                                           \
        }                                                                                                 \
        T var = (q - r * r / (T)M) / (T)M;                                                                \
        if (var < 0) var = 0;                                                                             \
        T rstd = (T)1 / SQRT(var + eps), nb = -mean * rstd;                                               \
        *mean_o = mean, *rstd_o = rstd;                                                                   \
        if (w && b) {                                                                                     \
            _Pragma("omp simd")                                                                           \
            for (int64_t j = 0; j < M; j++) y[j] = (x[j] * rstd + nb) * w[j] + b[j];                      \
        } else if (w) {                                                                                   \
            _Pragma("omp simd")                                                                           \
            for (int64_t j = 0; j < M; j++) y[j] = (x[j] * rstd + nb) * w[j];                             \
        } else if (b) {                                                                                   \
            _Pragma("omp simd")                                                                           \
            for (int64_t j = 0; j < M; j++) y[j] = (x[j] * rstd + nb) + b[j];                             \
        } else {                                                                                          \
            _Pragma("omp simd")                                                                           \
            for (int64_t j = 0; j < M; j++) y[j] = x[j] * rstd + nb;                                      \
        }                                                                                                 \
    }
LN_FWD_ROW(float, f32, sqrtf)
LN_FWD_ROW(double, f64, sqrt)

/* One row backward: with g = dy * w and xh = (x - mean) * rstd,
 * dx = rstd * (g - mean(g) - xh * mean(g * xh)); dw += dy * xh; db += dy. */
#define LN_BWD_ROW(T, SFX)                                                                                 \
    CT_LOOP_ATTR static void ln_bwd_row_##SFX(const T *dy, const T *x, const T *w, T mean, T rstd, int64_t M, \
                                              T *dx, double *dw, double *db) {                            \
        if (dx) {                                                                                         \
            T sg = 0, sgx = 0;                                                                            \
            if (w) {                                                                                      \
                _Pragma("omp simd reduction(+:sg, sgx)")                                                  \
                for (int64_t j = 0; j < M; j++) {                                                         \
                    T g = dy[j] * w[j];                                                                   \
                    sg += g, sgx += g * ((x[j] - mean) * rstd);                                           \
                }                                                                                         \
            } else {                                                                                      \
                _Pragma("omp simd reduction(+:sg, sgx)")                                                  \
                for (int64_t j = 0; j < M; j++) {                                                         \
                    T g = dy[j];                                                                          \
                    sg += g, sgx += g * ((x[j] - mean) * rstd);                                           \
                }                                                                                         \
            }                                                                                             \
            T c1 = sg / (T)M, c2 = sgx / (T)M;                                                            \
            if (w) {                                                                                      \
                _Pragma("omp simd")                                                                       \
                for (int64_t j = 0; j < M; j++)                                                           \
                    dx[j] = rstd * (dy[j] * w[j] - c1 - ((x[j] - mean) * rstd) * c2);                     \
            } else {                                                                                      \
                _Pragma("omp simd")                                                                       \
                for (int64_t j = 0; j < M; j++) dx[j] = rstd * (dy[j] - c1 - ((x[j] - mean) * rstd) * c2); \
            }                                                                                             \
        }                                                                                                 \
        if (dw) {                                                                                         \
            _Pragma("omp simd")                                                                           \
            for (int64_t j = 0; j < M; j++) dw[j] += (double)(dy[j] * ((x[j] - mean) * rstd));            \
        }                                                                                                 \
        if (db) {                                                                                         \
            _Pragma("omp simd")                                                                           \
            for (int64_t j = 0; j < M; j++) db[j] += (double)dy[j];                                       \
        }                                                                                                 \
    }
LN_BWD_ROW(float, f32)
LN_BWD_ROW(double, f64)

static bool ln_dtype_ok(const ct_kernel_args *a) {
    ct_dtype dt = a->in[0]->dtype;
    if (dt != CT_FLOAT32 && dt != CT_FLOAT64) return false;
    for (int k = 0; k < a->n_in; k++)
        if (a->in[k] && a->in[k]->dtype != dt) return false;
    for (int k = 0; k < 3; k++)
        if (a->out[k] && a->out[k]->dtype != dt) return false;
    return true;
}

static int cpu_layer_norm(const ct_kernel_args *a) {
    if (!ln_dtype_ok(a))
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(a->in[0]->dtype));
    int64_t N = a->i[0], M = a->i[1];
    if (N == 0 || M == 0) return 0;
    const ct_tensor *x = a->in[0], *w = a->in[1], *b = a->in[2];
    ct_tensor *y = a->out[0], *mo = a->out[1], *ro = a->out[2];
    double eps = a->d[0];
    if (x->dtype == CT_FLOAT32) {
        const float *xd = ct__data(x), *wd = w ? ct__data(w) : NULL, *bd = b ? ct__data(b) : NULL;
        float *yd = ct__data(y), *md = ct__data(mo), *rd = ct__data(ro);
#pragma omp parallel for schedule(static) if (N > 1 && N * M >= CT_GRAIN)
        for (int64_t i = 0; i < N; i++) ln_fwd_row_f32(xd + i * M, wd, bd, yd + i * M, md + i, rd + i, M, (float)eps);
    } else {
        const double *xd = ct__data(x), *wd = w ? ct__data(w) : NULL, *bd = b ? ct__data(b) : NULL;
        double *yd = ct__data(y), *md = ct__data(mo), *rd = ct__data(ro);
#pragma omp parallel for schedule(static) if (N > 1 && N * M >= CT_GRAIN)
        for (int64_t i = 0; i < N; i++) ln_fwd_row_f64(xd + i * M, wd, bd, yd + i * M, md + i, rd + i, M, eps);
    }
    return 0;
}

static int cpu_layer_norm_backward(const ct_kernel_args *a) {
    if (!ln_dtype_ok(a))
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(a->in[0]->dtype));
    int64_t N = a->i[0], M = a->i[1];
    const ct_tensor *dy = a->in[0], *x = a->in[1], *mean = a->in[2], *rstd = a->in[3], *w = a->in[4];
    ct_tensor *dx = a->out[0], *dw = a->out[1], *db = a->out[2];
    bool f32 = x->dtype == CT_FLOAT32;
    if (M == 0) return 0;
    /* Rows split into one contiguous block per thread; each thread sums its block's
     * dweight / dbias columns into its own double buffer, and the buffers are added in
     * thread order (the same result for the same thread count). */
    int nt = N > 1 && N * M >= CT_GRAIN ? ct__num_threads() : 1;
    if (nt > N) nt = (int)N;
    if (nt < 1) nt = 1;
    double *part = NULL;
    if (dw || db) {
        part = calloc((size_t)nt * 2 * (size_t)M, sizeof(double));
        if (!part) return ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op));
    }
    const char *dyd = ct__data(dy), *xd = ct__data(x), *md = ct__data(mean), *rd = ct__data(rstd);
    const char *wd = w ? ct__data(w) : NULL;
    char *dxd = dx ? ct__data(dx) : NULL;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t r0 = N * t / T, r1 = N * (t + 1) / T;
        double *pw = part && dw ? part + (size_t)t * 2 * (size_t)M : NULL;
        double *pb = part && db ? part + (size_t)t * 2 * (size_t)M + M : NULL;
        for (int64_t i = r0; i < r1; i++) {
            if (f32)
                ln_bwd_row_f32((const float *)dyd + i * M, (const float *)xd + i * M, (const float *)wd,
                               ((const float *)md)[i], ((const float *)rd)[i], M, dxd ? (float *)dxd + i * M : NULL,
                               pw, pb);
            else
                ln_bwd_row_f64((const double *)dyd + i * M, (const double *)xd + i * M, (const double *)wd,
                               ((const double *)md)[i], ((const double *)rd)[i], M,
                               dxd ? (double *)dxd + i * M : NULL, pw, pb);
        }
    }
    for (int k = 0; k < 2; k++) {
        ct_tensor *o = k ? db : dw;
        if (!o) continue;
        char *od = ct__data(o);
        for (int64_t j = 0; j < M; j++) {
            double s = 0;
            for (int t = 0; t < nt; t++) s += part[(size_t)t * 2 * (size_t)M + (size_t)k * (size_t)M + (size_t)j];
            if (f32) ((float *)od)[j] = (float)s;
            else ((double *)od)[j] = s;
        }
    }
    free(part);
    return 0;
}

void ct_cpu_register_norm(ct_kernel_fn *k) {
    k[CT_OP_LAYER_NORM] = cpu_layer_norm;
    k[CT_OP_LAYER_NORM_BACKWARD] = cpu_layer_norm_backward;
}
