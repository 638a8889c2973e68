/* CPU scan kernels along one dim (i[0]): in[0] -> out[0] (contiguous, same shape; for
 * CUMSUM/CUMPROD the front end has cast the input to the output dtype), out[1] int64
 * indices for CUMMAX/CUMMIN. Floating dtypes accumulate in double, integers in int64,
 * complex in double complex. Parallel over lines. */
#include <math.h>
#include <omp.h>

#include "cpu/reduce.h"

typedef enum { SK_SUM, SK_PROD, SK_MAX, SK_MIN, SK_LSE } skind;

static double log_add_exp(double a, double b) {
    if (a != a || b != b) return NAN;
    double mn = a < b ? a : b, mx = a < b ? b : a;
    if (mn != mx || isfinite(mn)) return mx + log1p(exp(mn - mx));
    return a; /* both the same infinity */
}

static int scan(const ct_kernel_args *a, skind k) {
    const ct_tensor *x = a->in[0];
    ct_tensor *out = a->out[0];
    int64_t *oi = a->n_out > 1 ? ct__data(a->out[1]) : NULL;
    int dim = (int)a->i[0];
    bool mask[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) mask[d] = d == dim;
    ct_reduce_plan px, po;
    ct__reduce_plan(&px, x, mask);
    ct__reduce_plan(&po, out, mask);
    int64_t n = x->ndim ? x->sizes[dim] : 1;
    int64_t sx = x->ndim ? x->strides[dim] : 0, so = out->ndim ? out->strides[dim] : 0;
    int64_t es = (int64_t)ct_dtype_size(x->dtype), oes = (int64_t)ct_dtype_size(out->dtype);
    ct_dtype dt = x->dtype, odt = out->dtype;
    bool cpx = ct_dtype_is_complex(dt), fl = ct_dtype_is_floating(dt);
    if (x->numel == 0) return 0;
    char *obase = ct__data(out);
#pragma omp parallel for schedule(static) if (x->numel >= CT_GRAIN && !omp_in_parallel())
    for (int64_t m = 0; m < px.n_out; m++) {
        const char *xi = px.in + ct__reduce_out_offset(&px, m) * es;
        int64_t ooff = ct__reduce_out_offset(&po, m);
        char *oo = obase + ooff * oes;
        int64_t *ii = oi ? oi + ooff : NULL;
        if (cpx) {
            ct_c128 acc = k == SK_PROD ? 1 : 0;
            for (int64_t i = 0; i < n; i++) {
                ct_c128 v = ct__load_c128(xi + i * sx * es, dt);
                if (k == SK_PROD) acc *= v; else acc += v;
                ct__store_c128(oo + i * so * oes, odt, acc);
            }
        } else if (fl) {
            if (k == SK_MAX || k == SK_MIN) {
                double best = 0;
                int64_t bi = 0;
                for (int64_t i = 0; i < n; i++) {
                    double v = ct__load_f64(xi + i * sx * es, dt);
                    if (i == 0 || v != v || (best == best && (k == SK_MAX ? v >= best : v <= best))) { best = v; bi = i; }
                    memcpy(oo + i * so * oes, xi + bi * sx * es, (size_t)es);
                    ii[i * so] = bi;
                }
            } else if (dt == CT_FLOAT32 && odt == CT_FLOAT32 && sx == 1 && so == 1 && k == SK_SUM) {
                const float *xf = (const float *)xi;
                float *of = (float *)oo;
                double acc = 0;
                for (int64_t i = 0; i < n; i++) { acc += xf[i]; of[i] = (float)acc; }
            } else {
                double acc = k == SK_PROD ? 1 : k == SK_LSE ? -INFINITY : 0;
                for (int64_t i = 0; i < n; i++) {
                    double v = ct__load_f64(xi + i * sx * es, dt);
                    if (k == SK_SUM) acc += v;
                    else if (k == SK_PROD) acc *= v;
                    else acc = log_add_exp(acc, v);
                    ct__store_f64(oo + i * so * oes, odt, acc);
                }
            }
        } else {
            if (k == SK_MAX || k == SK_MIN) {
                int64_t best = 0, bi = 0;
                for (int64_t i = 0; i < n; i++) {
                    int64_t v = ct__load_i64(xi + i * sx * es, dt);
                    if (i == 0 || (k == SK_MAX ? v >= best : v <= best)) { best = v; bi = i; }
                    memcpy(oo + i * so * oes, xi + bi * sx * es, (size_t)es);
                    ii[i * so] = bi;
                }
            } else {
                uint64_t acc = k == SK_PROD ? 1 : 0; /* wrap-around like PyTorch */
                for (int64_t i = 0; i < n; i++) {
                    uint64_t v = (uint64_t)ct__load_i64(xi + i * sx * es, dt);
                    if (k == SK_PROD) acc *= v; else acc += v;
                    ct__store_i64(oo + i * so * oes, odt, (int64_t)acc);
                }
            }
        }
    }
    return 0;
}

static int cpu_cumsum(const ct_kernel_args *a) { return scan(a, SK_SUM); }
static int cpu_cumprod(const ct_kernel_args *a) { return scan(a, SK_PROD); }
static int cpu_cummax(const ct_kernel_args *a) { return scan(a, SK_MAX); }
static int cpu_cummin(const ct_kernel_args *a) { return scan(a, SK_MIN); }
static int cpu_logcumsumexp(const ct_kernel_args *a) { return scan(a, SK_LSE); }

void ct__cpu_register_scan(ct_kernel_fn *k) {
    k[CT_OP_CUMSUM] = cpu_cumsum;
    k[CT_OP_CUMPROD] = cpu_cumprod;
    k[CT_OP_CUMMAX] = cpu_cummax;
    k[CT_OP_CUMMIN] = cpu_cummin;
    k[CT_OP_LOGCUMSUMEXP] = cpu_logcumsumexp;
}
