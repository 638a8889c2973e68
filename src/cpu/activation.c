/* Fused CPU kernels for softmax and log_softmax.
 *
 * Contract (CT_OP_SOFTMAX / CT_OP_LOG_SOFTMAX): in[0] and out[0] are contiguous
 * tensors of the same dtype and numel, viewed as [i[0] outer, i[1] dim, i[2] inner]; the
 * op normalises along the middle axis. float32 or float64; float16 and bfloat16 only
 * along the last axis (inner 1). */
#include <math.h>
#include <stdlib.h>

#include "cpu/loops.h"

void ct__cpu_vexp_f32(float *o, const float *x, int64_t n);
double ct__cpu_exp_shift_sum_f32(const float *x, float *o, int64_t n, float shift, bool store);
double ct__cpu_exp_shift_sum_f64(const double *x, double *o, int64_t n, double shift, bool store);
void ct__cpu_exp_shift_sum_rows_f32(const float *x, float *o, int64_t rows, int64_t n, const float *shift,
                                    double *sums);
void ct__cpu_vexp_f64(double *o, const double *x, int64_t n);
void ct_cpu_register_activation(ct_kernel_fn *k);

enum { SHORT_ROW = 16, SHORT_CHUNK = 64 };

/* Up to SHORT_CHUNK float32 rows of dim <= SHORT_ROW (inner 1): the exps of all of them
 * in one vector pass (ct__cpu_exp_shift_sum_rows_f32), the same numbers as row by row.
 * [64, 10] log_softmax: 5.4-7.3 -> 2.6 µs per call. */
CT_LOOP_ATTR static void softmax_short_rows(const float *x, float *o, int64_t rows, int64_t dim, bool log_) {
    float mx[SHORT_CHUNK] = {0}; /* rows >= 1 always; zeroed for the compiler's flow analysis */
    double s[SHORT_CHUNK];
    /* the max and the finish of softmax_block's row pass, as plain loops: for 16
     * elements or fewer, omp simd's reduction set-up and remainder cost more than the
     * row (the max's value is the same in any order; only a zero's sign could differ,
     * and x - mx feeds exp and the subtraction, where it cannot show) */
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float m = -INFINITY;
        bool anynan = false;
        for (int64_t j = 0; j < dim; j++) {
            m = xr[j] > m ? xr[j] : m;
            anynan |= xr[j] != xr[j];
        }
        mx[r] = anynan ? NAN : isinf(m) && m < 0 ? 0 : m;
    }
    ct__cpu_exp_shift_sum_rows_f32(x, o, rows, dim, mx, s);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *orow = o + r * dim;
        if (log_) {
            float ls = (float)log(s[r]);
            for (int64_t j = 0; j < dim; j++) orow[j] = xr[j] - mx[r] - ls;
        } else {
            float rc = (float)(1.0 / s[r]);
            for (int64_t j = 0; j < dim; j++) orow[j] *= rc;
        }
    }
}

/* One [dim, inner] block: x, o point at its start; buf holds 2 * inner doubles. */
#define SOFTMAX_BLOCK(T, VEXP, ESUM)                                                                           \
    CT_LOOP_ATTR static void softmax_block_##T(const T *x, T *o, int64_t dim, int64_t inner, bool log_, double *buf) { \
        if (inner == 1) {                                                                                \
            /* max with a NaN flag and the sum as SIMD reductions (omp simd: the lanes  */                   \
            /* combine in a fixed order, so results repeat run to run)                  */                   \
            T mx = -INFINITY;                                                                            \
            int32_t anynan = 0;                                                                          \
            _Pragma("omp simd reduction(max:mx) reduction(|:anynan)")                                    \
            for (int64_t j = 0; j < dim; j++) {                                                          \
                T v = x[j];                                                                              \
                mx = v > mx ? v : mx;                                                                    \
                anynan |= v != v;                                                                        \
            }                                                                                            \
            if (anynan) mx = NAN;                                                                        \
            if (isinf(mx) && mx < 0) mx = 0; /* all -inf: exp gives 0s, sum 0 -> NaN like torch */       \
            double s = ESUM(x, o, dim, mx, !log_); /* o = exp(x - mx) (kept for softmax) */           \
            if (log_) {                                                                                  \
                T ls = (T)log(s);                                                                        \
                _Pragma("omp simd")                                                                      \
                for (int64_t j = 0; j < dim; j++) o[j] = x[j] - mx - ls;                                 \
            } else {                                                                                     \
                T r = (T)(1.0 / s);                                                                      \
                _Pragma("omp simd")                                                                      \
                for (int64_t j = 0; j < dim; j++) o[j] *= r;                                             \
            }                                                                                            \
            return;                                                                                      \
        }                                                                                                \
        double *mx = buf, *sum = buf + inner;                                                            \
        for (int64_t k = 0; k < inner; k++) { mx[k] = -INFINITY; sum[k] = 0; }                           \
        for (int64_t j = 0; j < dim; j++) {                                                              \
            const T *xr = x + j * inner;                                                                 \
            for (int64_t k = 0; k < inner; k++) mx[k] = ((double)xr[k] > mx[k] || isnan(xr[k])) ? xr[k] : mx[k]; \
        }                                                                                                \
        for (int64_t k = 0; k < inner; k++) if (isinf(mx[k]) && mx[k] < 0) mx[k] = 0;                   \
        for (int64_t j = 0; j < dim; j++) {                                                              \
            const T *xr = x + j * inner;                                                                 \
            T *orow = o + j * inner;                                                                     \
            for (int64_t k = 0; k < inner; k++) orow[k] = xr[k] - (T)mx[k];                              \
        }                                                                                                \
        VEXP(o, o, dim * inner);                                                                         \
        for (int64_t j = 0; j < dim; j++) {                                                              \
            const T *orow = o + j * inner;                                                               \
            for (int64_t k = 0; k < inner; k++) sum[k] += orow[k];                                       \
        }                                                                                                \
        if (log_) {                                                                                      \
            for (int64_t k = 0; k < inner; k++) sum[k] = mx[k] + log(sum[k]);                            \
            for (int64_t j = 0; j < dim; j++) {                                                          \
                const T *xr = x + j * inner;                                                             \
                T *orow = o + j * inner;                                                                 \
                for (int64_t k = 0; k < inner; k++) orow[k] = xr[k] - (T)sum[k];                         \
            }                                                                                            \
        } else {                                                                                         \
            for (int64_t k = 0; k < inner; k++) sum[k] = 1.0 / sum[k];                                   \
            for (int64_t j = 0; j < dim; j++) {                                                          \
                T *orow = o + j * inner;                                                                 \
                for (int64_t k = 0; k < inner; k++) orow[k] *= (T)sum[k];                                \
            }                                                                                            \
        }                                                                                                \
    }
SOFTMAX_BLOCK(float, ct__cpu_vexp_f32, ct__cpu_exp_shift_sum_f32)
SOFTMAX_BLOCK(double, ct__cpu_vexp_f64, ct__cpu_exp_shift_sum_f64)

/* A float16 / bfloat16 row (inner 1): widened into t[0, dim), the float32 row kernel
 * into t[dim, 2 dim), rounded back once: the numbers of a float32 softmax of the widened
 * tensor rounded to the half type (PyTorch's: the op in float32), with the row's
 * conversions in cache instead of two whole-tensor casts ([4096, 1024] bfloat16 on two
 * threads: 3.8 ms through the casts, 1.53 row by row; PyTorch 1.84). */
CT_LOOP_ATTR static void softmax_half_row(ct_dtype dt, const void *x, void *o, int64_t dim, bool log_, float *t) {
    ct__half_widen(dt, t, x, dim);
    softmax_block_float(t, t + dim, dim, 1, log_, NULL);
    ct__half_narrow(dt, o, t + dim, dim);
}

static int softmax_half(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    int64_t outer = a->i[0], dim = a->i[1];
    const char *xd = ct__data(x);
    char *od = ct__data(a->out[0]);
    int failed = 0;
    CT_PARALLEL_IF(outer > 1 && outer * dim > CT_GRAIN, {
        float *t = malloc(sizeof(float) * 2 * (size_t)dim);
        if (!t) {
            _Pragma("omp atomic write")
            failed = 1;
        }
        _Pragma("omp for schedule(static)")
        for (int64_t i = 0; i < outer; i++)
            if (t) softmax_half_row(x->dtype, xd + i * dim * 2, od + i * dim * 2, dim, a->op == CT_OP_LOG_SOFTMAX, t);
        free(t);
    });
    if (failed) return ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op));
    return 0;
}

static int cpu_softmax(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    ct_tensor *out = a->out[0];
    int64_t outer = a->i[0], dim = a->i[1], inner = a->i[2];
    bool log_ = a->op == CT_OP_LOG_SOFTMAX;
    bool half = ct__is_half(x->dtype) && inner == 1;
    if (x->dtype != CT_FLOAT32 && x->dtype != CT_FLOAT64 && !half)
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(x->dtype));
    if (outer * dim * inner == 0) return 0;
    if (half) return softmax_half(a);
    size_t esz = ct_dtype_size(x->dtype);
    const char *xd = ct__data(x);
    char *od = ct__data(out);
    int64_t block = dim * inner;
    if (inner == 1 && dim <= SHORT_ROW && x->dtype == CT_FLOAT32) {
        int64_t nch = (outer + SHORT_CHUNK - 1) / SHORT_CHUNK;
        CT_PARALLEL_FOR_IF(nch > 1 && outer * block > CT_GRAIN, for (int64_t c = 0; c < nch; c++), {
            int64_t r0 = c * SHORT_CHUNK, rows = outer - r0 < SHORT_CHUNK ? outer - r0 : SHORT_CHUNK;
            softmax_short_rows((const float *)xd + r0 * dim, (float *)od + r0 * dim, rows, dim, log_);
        });
        return 0;
    }
    int failed = 0;
    CT_PARALLEL_IF(outer > 1 && outer * block > CT_GRAIN, {
        double *buf = inner > 1 ? malloc(sizeof(double) * 2 * (size_t)inner) : NULL;
        bool ok = !(inner > 1 && !buf);
        if (!ok) {
            _Pragma("omp atomic write")
            failed = 1;
        }
        _Pragma("omp for schedule(static)")
        for (int64_t i = 0; i < outer; i++) {
            if (!ok) continue;
            if (x->dtype == CT_FLOAT32)
                softmax_block_float((const float *)(xd + i * block * esz), (float *)(od + i * block * esz), dim, inner,
                                    log_, buf);
            else
                softmax_block_double((const double *)(xd + i * block * esz), (double *)(od + i * block * esz), dim,
                                     inner, log_, buf);
        }
        free(buf);
    });
    if (failed) return ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op));
    return 0;
}

/* ---- softmax / log_softmax backward over rows (contract in core/ops.def) ----
 * The formulas of the differentiable backward (src/ops/activation.c), element by
 * element in the same operations, in one pass over each row instead of four
 * whole-tensor ops: the row sum in double (the composite's float sum rounds a running
 * total; this one rounds once), exp by the same vector kernel as ct_exp. [4096, 1024]
 * float32 backward on two threads: ~7 ms as the composite, PyTorch's ~4.9. */
#define SOFTMAX_BWD_ROW(T, VEXP)                                                                         \
    CT_LOOP_ATTR static void softmax_bwd_row_##T(const T *g, const T *y, T *dx, int64_t n, bool log_) {  \
        double s = 0;                                                                                    \
        if (log_) {                                                                                      \
            _Pragma("omp simd reduction(+:s)") for (int64_t j = 0; j < n; j++) s += (double)g[j];        \
            T sf = (T)s;                                                                                 \
            VEXP(dx, y, n);                                                                              \
            _Pragma("omp simd") for (int64_t j = 0; j < n; j++) dx[j] = g[j] - dx[j] * sf;               \
        } else {                                                                                         \
            _Pragma("omp simd reduction(+:s)") for (int64_t j = 0; j < n; j++) s += (double)(g[j] * y[j]); \
            T sf = (T)s;                                                                                 \
            _Pragma("omp simd") for (int64_t j = 0; j < n; j++) dx[j] = y[j] * (g[j] - sf);              \
        }                                                                                                \
    }
SOFTMAX_BWD_ROW(float, ct__cpu_vexp_f32)
SOFTMAX_BWD_ROW(double, ct__cpu_vexp_f64)

static int cpu_softmax_backward(const ct_kernel_args *a) {
    const ct_tensor *g = a->in[0], *y = a->in[1];
    ct_tensor *dx = a->out[0];
    int64_t rows = a->i[0], n = a->i[1];
    bool log_ = a->i[2] != 0;
    if ((g->dtype != CT_FLOAT32 && g->dtype != CT_FLOAT64) || y->dtype != g->dtype || dx->dtype != g->dtype)
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(g->dtype));
    const char *gd = ct__data(g), *yd = ct__data(y);
    char *od = ct__data(dx);
    size_t es = ct_dtype_size(g->dtype);
    CT_PARALLEL_FOR_IF(rows > 1 && rows * n > CT_GRAIN, for (int64_t i = 0; i < rows; i++), {
        size_t off = (size_t)(i * n) * es;
        if (g->dtype == CT_FLOAT32)
            softmax_bwd_row_float((const float *)(gd + off), (const float *)(yd + off), (float *)(od + off), n, log_);
        else
            softmax_bwd_row_double((const double *)(gd + off), (const double *)(yd + off), (double *)(od + off), n,
                                   log_);
    });
    return 0;
}

/* ---- cross_entropy's parts after log_softmax (contract in core/ops.def) ---- */
#define NLL_PICK_ROWS(T, SFX)                                                                              \
    static int nll_pick_##SFX(const T *logp, const int64_t *t, const T *wt, int64_t N, int64_t C, int64_t ign, \
                              T *loss, T *w) {                                                             \
        for (int64_t i = 0; i < N; i++)                                                                    \
            if (t[i] != ign && (t[i] < 0 || t[i] >= C))                                                    \
                return ct__errs(CT_ERR_INDEX, "cross_entropy: Target %lld is out of bounds.", (long long)t[i]); \
        for (int64_t i = 0; i < N; i++) {                                                                  \
            bool skip = t[i] == ign;                                                                       \
            int64_t k = skip ? 0 : t[i];                                                                   \
            T wi = skip ? (T)0 : wt ? wt[k] : (T)1;                                                        \
            w[i] = wi;                                                                                     \
            loss[i] = -(logp[i * C + k] * wi);                                                             \
        }                                                                                                  \
        return 0;                                                                                          \
    }                                                                                                      \
    /* dx = go_i w_i (exp(logp) - onehot(t_i)): the row's exps with exp's own vector loop */               \
    CT_LOOP_ATTR static void ce_bwd_row_##SFX(T g, const T *logp, int64_t k, int64_t C, T *dx) {           \
        ct__cpu_unary_contig(CT_OP_EXP, sizeof(T) == 4 ? CT_FLOAT32 : CT_FLOAT64, dx, logp, C);             \
        for (int64_t j = 0; j < C; j++) dx[j] *= g;                                                        \
        dx[k] -= g;                                                                                        \
    }
NLL_PICK_ROWS(float, f32)
NLL_PICK_ROWS(double, f64)

static int cpu_nll_pick(const ct_kernel_args *a) {
    const ct_tensor *logp = a->in[0], *t = a->in[1], *wt = a->in[2];
    int64_t N = logp->sizes[0], C = logp->sizes[1];
    const int64_t *td = ct__data(t);
    if (logp->dtype == CT_FLOAT32)
        return nll_pick_f32(ct__data(logp), td, wt ? ct__data(wt) : NULL, N, C, a->i[0], ct__data(a->out[0]),
                            ct__data(a->out[1]));
    if (logp->dtype == CT_FLOAT64)
        return nll_pick_f64(ct__data(logp), td, wt ? ct__data(wt) : NULL, N, C, a->i[0], ct__data(a->out[0]),
                            ct__data(a->out[1]));
    return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(logp->dtype));
}

static int cpu_cross_entropy_bwd(const ct_kernel_args *a) {
    const ct_tensor *go = a->in[0], *logp = a->in[1], *t = a->in[2], *w = a->in[3];
    ct_tensor *dx = a->out[0];
    int64_t N = logp->sizes[0], C = logp->sizes[1];
    const int64_t *td = ct__data(t);
    bool f32 = logp->dtype == CT_FLOAT32;
    if (!f32 && logp->dtype != CT_FLOAT64)
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(logp->dtype));
    CT_PARALLEL_FOR_IF(N > 1 && N * C >= CT_GRAIN, for (int64_t i = 0; i < N; i++), {
        int64_t k = td[i] >= 0 && td[i] < C ? td[i] : 0; /* ignored rows have w 0 */
        if (f32) {
            float g = ((const float *)ct__data(go))[i] * ((const float *)ct__data(w))[i];
            ce_bwd_row_f32(g, (const float *)ct__data(logp) + i * C, k, C, (float *)ct__data(dx) + i * C);
        } else {
            double g = ((const double *)ct__data(go))[i] * ((const double *)ct__data(w))[i];
            ce_bwd_row_f64(g, (const double *)ct__data(logp) + i * C, k, C, (double *)ct__data(dx) + i * C);
        }
    });
    return 0;
}

void ct_cpu_register_activation(ct_kernel_fn *k) {
    k[CT_OP_SOFTMAX] = cpu_softmax;
    k[CT_OP_LOG_SOFTMAX] = cpu_softmax;
    k[CT_OP_SOFTMAX_BACKWARD] = cpu_softmax_backward;
    k[CT_OP_NLL_PICK] = cpu_nll_pick;
    k[CT_OP_CROSS_ENTROPY_BWD] = cpu_cross_entropy_bwd;
}
