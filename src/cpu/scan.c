/* CPU scan kernels along one dim (i[0]): in[0] -> out[0] (contiguous, same shape; for
 * CUMSUM/CUMPROD the front end has cast the input to the output dtype), out[1] int64
 * indices for CUMMAX/CUMMIN. Floating dtypes accumulate in double, integers in int64,
 * complex in double complex. Parallel over lines. */
#include <math.h>
#include <omp.h>

#include "cpu/loops.h"
#include "cpu/reduce.h"

typedef enum { SK_SUM, SK_PROD, SK_MAX, SK_MIN, SK_LSE } skind;

static double log_add_exp(double a, double b) {
    if (a != a || b != b) return NAN;
    double mn = a < b ? a : b, mx = a < b ? b : a;
    if (mn != mx || isfinite(mn)) return mx + log1p(exp(mn - mx));
    return a; /* both the same infinity */
}

/* Sums and products of float32 / float64 along a dim that is not the innermost, x
 * contiguous [outer, n, inner]: line by line each element is a cache line away from
 * the next (cumsum along dim 0 of [4096, 1024]: 23 ms). Instead the lines of a block of
 * up to SCAN_BLOCK consecutive inner positions advance together, row by row, each with
 * its double accumulator, the same arithmetic as a line alone; blocks are split
 * between threads. */
enum { SCAN_BLOCK = 256 };
#define SCAN_COLS(NAME, T)                                                                                     \
    CT_LOOP_ATTR static void NAME(const T *x, T *o, int64_t n, int64_t inner, int64_t w, bool prod) {           \
        double acc[SCAN_BLOCK];                                                                                \
        for (int64_t j = 0; j < w; j++) acc[j] = prod ? 1.0 : 0.0;                                             \
        for (int64_t i = 0; i < n; i++, x += inner, o += inner) {                                              \
            if (prod)                                                                                          \
                for (int64_t j = 0; j < w; j++) o[j] = (T)(acc[j] *= (double)x[j]);                            \
            else                                                                                               \
                for (int64_t j = 0; j < w; j++) o[j] = (T)(acc[j] += (double)x[j]);                            \
        }                                                                                                      \
    }
SCAN_COLS(scan_cols_f32, float)
SCAN_COLS(scan_cols_f64, double)

/* Along the innermost dim each line is one chain of dependent double operations (3-4
 * cycles each): lines go four at a time in lockstep, four independent chains, each
 * line's own arithmetic unchanged (cumsum along dim 1 of [4096, 1024]: 0.6 of the time
 * line by line, two at a time 0.75; eight at a time, 16 streams 4 KiB apart, measured
 * 4.7x slower). */
#define SCAN_LINES(NAME, T)                                                                                    \
    static void NAME(const T *x, T *o, int64_t n, int lines, bool prod) {                                      \
        double a[4];                                                                                           \
        for (int l = 0; l < 4; l++) a[l] = prod ? 1.0 : 0.0;                                                   \
        if (lines == 4 && prod)                                                                                \
            for (int64_t i = 0; i < n; i++)                                                                    \
                o[i] = (T)(a[0] *= (double)x[i]), o[n + i] = (T)(a[1] *= (double)x[n + i]),                    \
                o[2 * n + i] = (T)(a[2] *= (double)x[2 * n + i]), o[3 * n + i] = (T)(a[3] *= (double)x[3 * n + i]); \
        else if (lines == 4)                                                                                   \
            for (int64_t i = 0; i < n; i++)                                                                    \
                o[i] = (T)(a[0] += (double)x[i]), o[n + i] = (T)(a[1] += (double)x[n + i]),                    \
                o[2 * n + i] = (T)(a[2] += (double)x[2 * n + i]), o[3 * n + i] = (T)(a[3] += (double)x[3 * n + i]); \
        else                                                                                                   \
            for (int l = 0; l < lines; l++)                                                                    \
                for (int64_t i = 0; i < n; i++)                                                                \
                    o[l * n + i] = (T)(prod ? (a[l] *= (double)x[l * n + i]) : (a[l] += (double)x[l * n + i])); \
    }
SCAN_LINES(scan_lines_f32, float)
SCAN_LINES(scan_lines_f64, double)

/* Sums and products of float32 / float64 over contiguous x and out, [outer, n, inner]:
 * typed lines four at a time (inner == 1) or blocks of columns. Returns false for any other case. */
static bool scan_fast(const ct_kernel_args *a, skind k) {
    const ct_tensor *x = a->in[0];
    ct_tensor *out = a->out[0];
    int dim = (int)a->i[0];
    if ((k != SK_SUM && k != SK_PROD) || x->dtype != out->dtype || (x->dtype != CT_FLOAT32 && x->dtype != CT_FLOAT64) ||
        x->ndim == 0 || !ct__is_contiguous(x) || !ct__is_contiguous(out))
        return false;
    int64_t n = x->sizes[dim], inner = ct__prod(x->ndim - dim - 1, x->sizes + dim + 1);
    if (n < 2) return false;
    bool f32 = x->dtype == CT_FLOAT32, prod = k == SK_PROD;
    const char *xd = ct__data(x);
    char *od = ct__data(out);
    if (inner == 1) {
        int64_t rows = x->numel / n, quads = (rows + 3) / 4;
        CT_PARALLEL_FOR_IF(x->numel >= CT_GRAIN && quads > 1 && !omp_in_parallel(),
                           for (int64_t q = 0; q < quads; q++), {
            int64_t off = 4 * q * n;
            int lines = rows - 4 * q < 4 ? (int)(rows - 4 * q) : 4;
            if (f32) scan_lines_f32((const float *)xd + off, (float *)od + off, n, lines, prod);
            else scan_lines_f64((const double *)xd + off, (double *)od + off, n, lines, prod);
        });
        return true;
    }
    int64_t outer = x->numel / (n * inner), nb = (inner + SCAN_BLOCK - 1) / SCAN_BLOCK;
    CT_PARALLEL_FOR_IF(x->numel >= CT_GRAIN && outer * nb > 1 && !omp_in_parallel(),
                       for (int64_t t = 0; t < outer * nb; t++), {
        int64_t ob = t / nb, j0 = t % nb * SCAN_BLOCK, w = inner - j0 < SCAN_BLOCK ? inner - j0 : SCAN_BLOCK;
        int64_t off = ob * n * inner + j0;
        if (f32) scan_cols_f32((const float *)xd + off, (float *)od + off, n, inner, w, prod);
        else scan_cols_f64((const double *)xd + off, (double *)od + off, n, inner, w, prod);
    });
    return true;
}

static int scan(const ct_kernel_args *a, skind k) {
    const ct_tensor *x = a->in[0];
    ct_tensor *out = a->out[0];
    if (x->numel > 0 && scan_fast(a, k)) return 0;
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
    CT_PARALLEL_FOR_IF(x->numel >= CT_GRAIN && !omp_in_parallel(), for (int64_t m = 0; m < px.n_out; m++), {
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
            } else if (dt == CT_FLOAT32 && odt == CT_FLOAT32 && sx == 1 && so == 1 && k != SK_LSE) {
                scan_lines_f32((const float *)xi, (float *)oo, n, 1, k == SK_PROD); /* a unit-stride line */
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
    });
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
