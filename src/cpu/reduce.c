/* CPU reduction kernels (SUM so far; the family grows here) and the driver. */
#include <omp.h>

#include "cpu/loops.h"
#include "cpu/reduce.h"

void ct__reduce_plan(ct_reduce_plan *p, const ct_tensor *x, const bool *mask) {
    p->nk = p->nr = 0;
    p->n_out = p->n_red = 1;
    p->in_es = ct_dtype_size(x->dtype);
    p->in = (const char *)x->storage->data + x->offset * (int64_t)p->in_es;
    for (int d = 0; d < x->ndim; d++) {
        int64_t sz = x->sizes[d], st = x->strides[d];
        if (mask[d]) {
            p->n_red *= sz;
            if (sz == 1) continue;
            if (p->nr && p->rstride[p->nr - 1] == st * sz) { p->rsize[p->nr - 1] *= sz; p->rstride[p->nr - 1] = st; }
            else { p->rsize[p->nr] = sz; p->rstride[p->nr] = st; p->nr++; }
        } else {
            p->n_out *= sz;
            if (sz == 1) continue;
            if (p->nk && p->kstride[p->nk - 1] == st * sz) { p->ksize[p->nk - 1] *= sz; p->kstride[p->nk - 1] = st; }
            else { p->ksize[p->nk] = sz; p->kstride[p->nk] = st; p->nk++; }
        }
    }
    if (p->nr == 0) { p->rsize[0] = 1; p->rstride[0] = 0; p->nr = 1; }
}

int64_t ct__reduce_out_offset(const ct_reduce_plan *p, int64_t m) {
    int64_t off = 0;
    for (int d = p->nk - 1; d >= 0; d--) { off += (m % p->ksize[d]) * p->kstride[d]; m /= p->ksize[d]; }
    return off;
}

void ct__reduce_visit_rows(const ct_reduce_plan *p, int64_t m, ct_row_fn fn, void *ctx) {
    if (p->n_red == 0) return;
    const char *base = p->in + ct__reduce_out_offset(p, m) * (int64_t)p->in_es;
    int nr = p->nr;
    int64_t rows = 1;
    for (int d = 0; d < nr - 1; d++) rows *= p->rsize[d];
    int64_t idx[CT_MAX_DIMS] = {0};
    const char *row = base;
    int64_t es = (int64_t)p->in_es;
    for (int64_t r = 0; r < rows; r++) {
        fn(row, p->rsize[nr - 1], p->rstride[nr - 1] * es, ctx);
        for (int d = nr - 2; d >= 0; d--) {
            row += p->rstride[d] * es;
            if (++idx[d] < p->rsize[d]) break;
            row -= p->rsize[d] * p->rstride[d] * es;
            idx[d] = 0;
        }
    }
}

/* ---- SUM: float dtypes accumulate in double, integers in int64, complex in double complex ---- */
typedef struct { ct_dtype dt; double f; int64_t i; ct_c128 c; } sum_acc;

static void sum_row(const char *row, int64_t n, int64_t sb, void *ctx) {
    sum_acc *a = ctx;
    switch (a->dt) {
    case CT_FLOAT32: {
        double s = 0;
        if (sb == 4) { const float *x = (const float *)row; for (int64_t i = 0; i < n; i++) s += x[i]; }
        else for (int64_t i = 0; i < n; i++) s += *(const float *)(row + i * sb);
        a->f += s;
    } break;
    case CT_FLOAT64: {
        double s = 0;
        if (sb == 8) { const double *x = (const double *)row; for (int64_t i = 0; i < n; i++) s += x[i]; }
        else for (int64_t i = 0; i < n; i++) s += *(const double *)(row + i * sb);
        a->f += s;
    } break;
    case CT_FLOAT16: case CT_BFLOAT16:
        for (int64_t i = 0; i < n; i++) a->f += ct__load_f64(row + i * sb, a->dt);
        break;
    case CT_COMPLEX64: case CT_COMPLEX128:
        for (int64_t i = 0; i < n; i++) a->c += ct__load_c128(row + i * sb, a->dt);
        break;
    default:
        for (int64_t i = 0; i < n; i++) a->i += ct__load_i64(row + i * sb, a->dt);
        break;
    }
}

static void sum_store(char *o, ct_dtype odt, const sum_acc *a) {
    if (ct_dtype_is_complex(a->dt)) ct__store_c128(o, odt, a->c);
    else if (ct_dtype_is_integral(a->dt, true)) ct__store_i64(o, odt, a->i);
    else ct__store_f64(o, odt, a->f);
}

/* out[0]: contiguous, numel = plan.n_out; a->iv: reduce mask as 0/1 per input dim. */
static int cpu_sum(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    ct_tensor *out = a->out[0];
    bool mask[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) mask[d] = a->iv[d] != 0;
    ct_reduce_plan p;
    ct__reduce_plan(&p, x, mask);
    char *o = ct__data(out);
    int64_t oes = (int64_t)ct_dtype_size(out->dtype);
    int nt = ct__num_threads();
    if (p.n_out >= nt || p.n_red < CT_GRAIN || nt == 1) {
#pragma omp parallel for schedule(static) if (p.n_out * p.n_red >= CT_GRAIN && !omp_in_parallel())
        for (int64_t m = 0; m < p.n_out; m++) {
            sum_acc acc = {.dt = x->dtype};
            ct__reduce_visit_rows(&p, m, sum_row, &acc);
            sum_store(o + m * oes, out->dtype, &acc);
        }
        return 0;
    }
    /* few outputs, large blocks: split the rows of each block between threads */
    for (int64_t m = 0; m < p.n_out; m++) {
        sum_acc total = {.dt = x->dtype};
        const char *base = p.in + ct__reduce_out_offset(&p, m) * (int64_t)p.in_es;
        int64_t rows = 1;
        for (int d = 0; d < p.nr - 1; d++) rows *= p.rsize[d];
        int64_t inner = p.rsize[p.nr - 1], sb = p.rstride[p.nr - 1] * (int64_t)p.in_es;
        if (rows == 1) { /* split the single row */
#pragma omp parallel
            {
                int t = omp_get_thread_num(), T = omp_get_num_threads();
                int64_t per = (inner + T - 1) / T, b = t * per, e = b + per < inner ? b + per : inner;
                sum_acc acc = {.dt = x->dtype};
                if (b < e) sum_row(base + b * sb, e - b, sb, &acc);
#pragma omp critical
                { total.f += acc.f; total.i += acc.i; total.c += acc.c; }
            }
        } else {
#pragma omp parallel
            {
                sum_acc acc = {.dt = x->dtype};
#pragma omp for schedule(static)
                for (int64_t r = 0; r < rows; r++) {
                    int64_t rem = r, off = 0;
                    for (int d = p.nr - 2; d >= 0; d--) { off += (rem % p.rsize[d]) * p.rstride[d]; rem /= p.rsize[d]; }
                    sum_row(base + off * (int64_t)p.in_es, inner, sb, &acc);
                }
#pragma omp critical
                { total.f += acc.f; total.i += acc.i; total.c += acc.c; }
            }
        }
        sum_store(o + m * oes, out->dtype, &total);
    }
    return 0;
}

void ct_cpu_register_reduce(ct_kernel_fn *k) { k[CT_OP_SUM] = cpu_sum; }
