/* Ordering: sort, argsort, topk, kthvalue, unique, unique_consecutive, bucketize,
 * searchsorted. Kernels in src/cpu/sort.c (SORT, SEARCHSORTED) and src/cpu/index.c
 * (UNIQUE_CONSEC). Sorting is stable; NaN sorts as the largest value. */
#include <math.h>

#include "ops/elementwise.h"

static ct_tensor *scope_return(ct_tensor *r) {
    r = ct_keep(r);
    ct_scope_end();
    return r;
}

/* ---- sort ---- */
static int sort_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *idx = ct__unpack(n, 0);
    if (!idx) return ct_last_status();
    ct_tensor *z = ct_zeros(n->n_ivec, n->ivec, go[0]->dtype);
    gi[0] = ct_scatter(z, (int)n->i[0], idx, go[0]);
    return gi[0] ? 0 : ct_last_status();
}

/* v's graph node when x needs a gradient: v holds x's elements at indices idx along
 * dim d (sort, topk), so the gradient scatters back through them. 0 or status. */
static int record_pick(ct_tensor *v, const char *name, const ct_tensor *x, ct_tensor *idx, int d) {
    if (!ct__needs_grad(1, (const ct_tensor *[]){x})) return 0;
    ct_node *n = ct__node_new(name, sort_backward, 1);
    if (!n || ct__node_set_next(n, 0, x) || ct__save(n, idx) < 0 || ct__node_set_ivec(n, x->ndim, x->sizes)) {
        if (n) ct__node_release(n);
        return ct_last_status();
    }
    n->i[0] = d;
    ct__set_history(v, n, 0);
    return 0;
}

/* values and indices as new unregistered references (values carries autograd). */
static int sort_raw(const char *op, const ct_tensor *x, int dim, bool descending, ct_tensor **values,
                    ct_tensor **indices, int *wrapped) {
    *values = *indices = NULL;
    if (ct_dtype_is_complex(x->dtype))
        return ct__errs(CT_ERR_DTYPE, "%s(): input tensor must be of non-complex type (got %s)", op,
                        ct_dtype_name(x->dtype));
    int d = ct__wrap_dim(op, dim, x->ndim);
    if (d < 0) return ct_last_status();
    *wrapped = d;
    ct_tensor *v = ct__empty_raw(x->ndim, x->sizes, x->dtype), *i = ct__empty_raw(x->ndim, x->sizes, CT_INT64);
    if (!v || !i) goto fail;
    ct_kernel_args a = {.op = CT_OP_SORT, .n_out = 2, .n_in = 1, .out = {v, i}, .in = {x}, .i = {d, descending}};
    if (ct__dispatch(&a) || record_pick(v, "SortBackward0", x, i, d)) goto fail;
    *values = v;
    *indices = i;
    return 0;
fail:
    ct_release(v);
    ct_release(i);
    return ct_last_status();
}

CT_API ct_tensor *ct_sort(const ct_tensor *x, int dim, bool descending, bool stable, ct_tensor **indices) {
    CT_UNUSED(stable); /* always stable */
    if (indices) *indices = NULL;
    CT_CHECK_ARG("sort", x);
    ct_tensor *v, *i;
    int d;
    if (sort_raw("sort", x, dim, descending, &v, &i, &d)) return NULL;
    if (indices) *indices = ct__ret(i);
    else ct_release(i);
    return ct__ret(v);
}

CT_API ct_tensor *ct_argsort(const ct_tensor *x, int dim, bool descending, bool stable) {
    CT_UNUSED(stable);
    CT_CHECK_ARG("argsort", x);
    ct_tensor *v, *i;
    int d;
    if (sort_raw("argsort", x, dim, descending, &v, &i, &d)) return NULL;
    ct_release(v);
    return ct__ret(i);
}

CT_API ct_tensor *ct_topk(const ct_tensor *x, int64_t k, int dim, bool largest, bool sorted, ct_tensor **indices) {
    CT_UNUSED(sorted); /* results always come sorted */
    if (indices) *indices = NULL;
    CT_CHECK_ARG("topk", x);
    int d = ct__wrap_dim("topk", dim, x->ndim);
    if (d < 0) return NULL;
    int64_t size = x->ndim ? x->sizes[d] : 1;
    if (k < 0 || k > size) return ct__err(CT_ERR_INDEX, "topk(): selected index k out of range");
    if (ct_dtype_is_complex(x->dtype)) return ct__err(CT_ERR_DTYPE, "topk does not support complex dtypes on CPU");
    if (x->ndim == 0) { /* a 0-dim tensor: its one value, or none */
        if (ct_scope_begin()) return NULL;
        ct_tensor *i = NULL;
        ct_tensor *v = ct_sort(x, 0, largest, true, &i);
        if (!v || !i) return scope_return(NULL);
        if (indices) *indices = ct_keep(i);
        return scope_return(v);
    }
    /* the kernel (src/cpu/sort.c): the sort's first k, ties by index */
    int64_t osz[CT_MAX_DIMS];
    memcpy(osz, x->sizes, sizeof(int64_t) * (size_t)x->ndim);
    osz[d] = k;
    ct_tensor *v = ct__empty_raw(x->ndim, osz, x->dtype), *i = ct__empty_raw(x->ndim, osz, CT_INT64);
    ct_kernel_args a = {.op = CT_OP_TOPK, .n_out = 2, .n_in = 1, .out = {v, i}, .in = {x}, .i = {d, largest, k}};
    if (!v || !i || ct__dispatch(&a) || record_pick(v, "TopkBackward0", x, i, d)) goto fail;
    if (indices) *indices = ct__ret(i);
    else ct_release(i);
    return ct__ret(v);
fail:
    ct_release(v);
    ct_release(i);
    return NULL;
}

CT_API ct_tensor *ct_kthvalue(const ct_tensor *x, int64_t k, int dim, bool keepdim, ct_tensor **indices) {
    if (indices) *indices = NULL;
    CT_CHECK_ARG("kthvalue", x);
    int d = ct__wrap_dim("kthvalue", dim, x->ndim);
    if (d < 0) return NULL;
    int64_t size = x->ndim ? x->sizes[d] : 1;
    if (k < 1 || k > size)
        return ct__err(CT_ERR_INDEX, "kthvalue(): selected number k out of range for dimension %d", d);
    if (ct_scope_begin()) return NULL;
    ct_tensor *i = NULL;
    ct_tensor *v = ct_sort(x, d, false, true, &i);
    if (v && x->ndim) {
        v = ct_select(v, d, k - 1);
        i = ct_select(i, d, k - 1);
        if (keepdim) {
            v = ct_unsqueeze(v, d);
            i = ct_unsqueeze(i, d);
        }
        v = ct_contiguous(v);
        i = ct_contiguous(i);
    }
    if (!v || !i) return scope_return(NULL);
    if (indices) *indices = ct_keep(i);
    return scope_return(v);
}

/* ---- unique ---- */
/* Runs of equal rows in rows2d ([n, m], any layout): group id per row, counts and
 * first row per group (length G). Scope-owned. */
static int consec_runs(const ct_tensor *rows2d, ct_tensor **ids, ct_tensor **counts, ct_tensor **firsts) {
    ct_tensor *rc = ct_contiguous(rows2d);
    if (!rc) return ct_last_status();
    int64_t n = rc->sizes[0];
    ct_tensor *a = ct__ret(ct__empty_raw(1, &n, CT_INT64)), *b = ct__ret(ct__empty_raw(1, &n, CT_INT64)),
              *c = ct__ret(ct__empty_raw(1, &n, CT_INT64));
    if (!a || !b || !c) return ct_last_status();
    int64_t G = 0;
    if (n > 0) {
        ct_kernel_args k = {.op = CT_OP_UNIQUE_CONSEC, .n_out = 3, .n_in = 1, .out = {a, b, c}, .in = {rc}};
        if (ct__dispatch(&k)) return ct_last_status();
        G = ((int64_t *)ct__data(a))[n - 1] + 1;
    }
    *ids = a;
    *counts = ct_narrow(b, 0, 0, G);
    *firsts = ct_narrow(c, 0, 0, G);
    return (*counts && *firsts) ? 0 : ct_last_status();
}

/* Rows of x along dim ([n, rest]) plus the shape to restore. Scope-owned. */
static ct_tensor *rows_along(const ct_tensor *x, int d) {
    ct_tensor *m = ct_movedim(x, d, 0);
    if (!m) return NULL;
    int64_t n = x->sizes[d], rest = n ? x->numel / n : ct__prod(x->ndim, x->sizes) / (n ? n : 1);
    if (n == 0) {
        rest = 1;
        for (int i = 0; i < x->ndim; i++)
            if (i != d) rest *= x->sizes[i];
    }
    return ct_reshape(ct_contiguous(m), 2, (const int64_t[]){n, rest});
}

/* values of unique rows (firsts of sorted rows) back in x's layout along d. */
static ct_tensor *rows_back(const ct_tensor *x, int d, ct_tensor *rows) {
    int64_t sizes[CT_MAX_DIMS];
    int k = 0;
    sizes[k++] = rows->sizes[0];
    for (int i = 0; i < x->ndim; i++)
        if (i != d) sizes[k++] = x->sizes[i];
    return ct_movedim(ct_reshape(rows, x->ndim, sizes), 0, d);
}

static ct_tensor *unique_impl(const char *op, const ct_tensor *x, bool do_sort, int dim, ct_tensor **inverse,
                              ct_tensor **counts) {
    if (inverse) *inverse = NULL;
    if (counts) *counts = NULL;
    CT_CHECK_ARG(op, x);
    if (ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "%s: complex tensors are not supported", op);
    if (ct_scope_begin()) return NULL;
    bool prev = ct_set_grad_enabled(false);
    ct_tensor *values = NULL, *inv = NULL, *cnt = NULL;
    ct_tensor *rows, *perm = NULL;
    int d = 0;
    if (dim == CT_ALL_DIMS) {
        rows = ct_reshape(x, 2, (const int64_t[]){x->numel, 1});
    } else {
        d = ct__wrap_dim(op, dim, x->ndim);
        if (d < 0) goto done;
        if (x->ndim == 0) {
            ct__err(CT_ERR_INDEX, "%s: Dimension out of range (expected to be in range of [-1, 0], but got %d)", op,
                    dim);
            goto done;
        }
        rows = rows_along(x, d);
    }
    if (!rows) goto done;
    int64_t n = rows->sizes[0], m = rows->sizes[1];
    if (do_sort && n > 0) {
        /* lexicographic stable sort of the rows: by the last column first */
        perm = ct_arange(0, (double)n, 1, CT_INT64);
        for (int64_t c = m - 1; c >= 0 && perm; c--) {
            ct_tensor *key = ct_index_select(ct_select(rows, 1, c), 0, perm);
            perm = ct_index_select(perm, 0, ct_argsort(key, 0, false, true));
        }
        if (!perm) goto done;
        rows = ct_index_select(rows, 0, perm);
        if (!rows) goto done;
    }
    ct_tensor *ids = NULL, *firsts = NULL;
    if (consec_runs(rows, &ids, &cnt, &firsts)) goto done;
    ct_tensor *vrows = ct_index_select(rows, 0, firsts);
    if (!vrows) goto done;
    if (dim == CT_ALL_DIMS) values = ct_reshape(vrows, 1, (const int64_t[]){-1});
    else values = rows_back(x, d, vrows);
    if (perm) ids = ct_scatter(ct_zeros(1, &n, CT_INT64), 0, perm, ids);
    if (!ids) {
        values = NULL;
        goto done;
    }
    inv = dim == CT_ALL_DIMS ? ct_reshape(ids, x->ndim, x->sizes) : ids;
    if (values) values = ct_contiguous(values);
done:
    ct_set_grad_enabled(prev);
    if (values) {
        if (inverse) *inverse = ct_keep(ct_contiguous(inv));
        if (counts) *counts = ct_keep(ct_contiguous(cnt));
    }
    return scope_return(values);
}

CT_API ct_tensor *ct_unique(const ct_tensor *x, bool sorted, int dim, ct_tensor **inverse, ct_tensor **counts) {
    CT_UNUSED(sorted); /* results always come sorted, as on PyTorch's CPU */
    return unique_impl("unique", x, true, dim, inverse, counts);
}

CT_API ct_tensor *ct_unique_consecutive(const ct_tensor *x, int dim, ct_tensor **inverse, ct_tensor **counts) {
    return unique_impl("unique_consecutive", x, false, dim, inverse, counts);
}

/* ---- searchsorted / bucketize ---- */
static ct_tensor *searchsorted_impl(const char *op, const ct_tensor *seq, const ct_tensor *values, bool out_int32,
                                    bool right) {
    bool one = seq->ndim == 1;
    if (seq->ndim == 0)
        return ct__err(CT_ERR_SHAPE, "%s(): boundaries tensor should have at least 1 dimension (got 0)", op);
    if (!one) {
        bool ok = seq->ndim == values->ndim;
        for (int i = 0; ok && i < seq->ndim - 1; i++) ok = seq->sizes[i] == values->sizes[i];
        if (!ok)
            return ct__err(CT_ERR_SHAPE, "%s(): boundaries tensor should be 1 dimension or the first N-1 dimensions of "
                                         "boundaries tensor and input value tensor must match, but we got boundaries "
                                         "tensor %s and input value tensor %s",
                           op, CT_SHAPESTR(seq), CT_SHAPESTR(values));
    }
    if (ct_dtype_is_complex(seq->dtype) || ct_dtype_is_complex(values->dtype))
        return ct__err(CT_ERR_DTYPE, "%s(): complex tensors are not supported", op);
    ct_dtype dt = ct_promote_types(seq->dtype, values->dtype);
    if (ct_scope_begin()) return NULL;
    ct_tensor *s = ct_contiguous(ct_to_dtype(ct_detach(seq), dt)), *v = ct_contiguous(ct_to_dtype(ct_detach(values), dt));
    if (!s || !v) return scope_return(NULL);
    ct_tensor *out = ct__empty_raw(values->ndim, values->sizes, out_int32 ? CT_INT32 : CT_INT64);
    if (!out) return scope_return(NULL);
    if (out->numel > 0) {
        ct_kernel_args a = {.op = CT_OP_SEARCHSORTED, .n_out = 1, .n_in = 2, .out = {out}, .in = {s, v},
                            .i = {right, one}};
        if (ct__dispatch(&a)) {
            ct_release(out);
            return scope_return(NULL);
        }
    }
    return scope_return(ct__ret(out));
}

CT_API ct_tensor *ct_searchsorted(const ct_tensor *sorted_sequence, const ct_tensor *values, bool out_int32,
                                  bool right) {
    CT_CHECK_ARG("searchsorted", sorted_sequence);
    CT_CHECK_ARG("searchsorted", values);
    return searchsorted_impl("torch.searchsorted", sorted_sequence, values, out_int32, right);
}

CT_API ct_tensor *ct_bucketize(const ct_tensor *x, const ct_tensor *boundaries, bool out_int32, bool right) {
    CT_CHECK_ARG("bucketize", x);
    CT_CHECK_ARG("bucketize", boundaries);
    if (boundaries->ndim != 1)
        return ct__err(CT_ERR_SHAPE, "bucketize(): boundaries tensor must be 1 dimension, but got dim(%d)",
                       boundaries->ndim);
    return searchsorted_impl("torch.bucketize", boundaries, x, out_int32, right);
}
