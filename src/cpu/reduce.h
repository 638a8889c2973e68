/* CPU reduction driver: splits an input into kept and reduced dimensions, and runs a
 * reducer over the reduced sub-block of every output element, in parallel over
 * outputs, or over rows of the reduced block when there are few outputs. */
#ifndef CT_CPU_REDUCE_H
#define CT_CPU_REDUCE_H

#include "core/dispatch.h"

typedef struct ct_reduce_plan {
    int nk, nr;                 /* kept / reduced dims after merging */
    int64_t ksize[CT_MAX_DIMS], kstride[CT_MAX_DIMS]; /* input strides (elements) of kept dims */
    int64_t rsize[CT_MAX_DIMS], rstride[CT_MAX_DIMS]; /* reduced dims, innermost last */
    int64_t n_out, n_red;
    const char *in;             /* first input element */
    size_t in_es;
} ct_reduce_plan;

/* Plans the reduction of x over the dims flagged in reduce_mask[0..x->ndim). */
void ct__reduce_plan(ct_reduce_plan *p, const ct_tensor *x, const bool *reduce_mask);
/* Input element offset (elements) of output element m's reduced block start. */
int64_t ct__reduce_out_offset(const ct_reduce_plan *p, int64_t m);
/* Visits the reduced block of output m as rows: fn(row_ptr, n, stride_bytes, ctx)
 * for each row of the innermost reduced dim, in C order. */
typedef void (*ct_row_fn)(const char *row, int64_t n, int64_t stride_bytes, void *ctx);
void ct__reduce_visit_rows(const ct_reduce_plan *p, int64_t m, ct_row_fn fn, void *ctx);

/* Scan kernels (src/cpu/scan.c): CUMSUM, CUMPROD, CUMMAX, CUMMIN, LOGCUMSUMEXP. */
void ct__cpu_register_scan(ct_kernel_fn *k);

#endif
