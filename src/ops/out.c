/* out= forms of non-elementwise ops: compute out of place inside a scope, then write
 * into the caller's tensor with ct__commit_out (which resizes out when its shape
 * differs and refuses inputs that require grad, as PyTorch does). PyTorch's dtype rule
 * for out differs by op, and so do these:
 *   - sum, prod, cumsum, cumprod: without a dtype argument, compute in out's dtype;
 *   - mean, logsumexp, outer, cat, stack: the result must be castable to out's dtype;
 *   - the rest (amax, norm, mm, gather, sort, ...): out must have the result's dtype.
 * Elementwise ops get theirs from CT_DEFINE_*_VARIANTS in src/ops/elementwise.h. */
#include "ops/elementwise.h"

/* out must have the result's dtype exactly */
static int strict(const char *name, const ct_tensor *out, const ct_tensor *r) {
    if (r && out->dtype != r->dtype)
        return ct__errs(CT_ERR_DTYPE, "%s: Expected out tensor to have dtype %s, but got %s instead", name,
                        ct_dtype_name(r->dtype), ct_dtype_name(out->dtype));
    return 0;
}

#define OUT_(name, call, STRICT)                                                   \
    do {                                                                           \
        CT_CHECK_ARG_S(name, out);                                                 \
        if (ct_scope_begin()) return ct_last_status();                             \
        ct_tensor *r_ = (call);                                                    \
        int rc_ = (STRICT) ? strict(name, out, r_) : 0;                            \
        if (!rc_) rc_ = ct__commit_out(name, out, r_);                             \
        ct_scope_end();                                                            \
        return rc_;                                                                \
    } while (0)
#define OUT1(name, call) OUT_(name, call, false)
#define OUT1S(name, call) OUT_(name, call, true)

/* For (values, indices) results: `call` fills the local `idx_`. */
#define OUT2(name, call)                                                        \
    do {                                                                        \
        CT_CHECK_ARG_S(name, values);                                           \
        CT_CHECK_ARG_S(name, indices);                                          \
        if (indices->dtype != CT_INT64)                                         \
            return ct__errs(CT_ERR_DTYPE, "%s: expected indices to be int64, got %s", name, \
                            ct_dtype_name(indices->dtype));                     \
        if (ct_scope_begin()) return ct_last_status();                          \
        ct_tensor *idx_ = NULL;                                                 \
        ct_tensor *v_ = (call);                                                 \
        int rc_ = strict(name, values, v_);                                     \
        if (!rc_) rc_ = ct__commit_out(name, values, v_);                       \
        if (!rc_) rc_ = ct__commit_out(name, indices, idx_);                    \
        ct_scope_end();                                                         \
        return rc_;                                                             \
    } while (0)

/* ---- reductions ---- */
CT_API int ct_sum_dim_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim, ct_dtype dtype) {
    OUT1("sum", ct_sum_dim(x, ndims, dims, keepdim, dtype != CT_NUM_DTYPES ? dtype : out->dtype));
}
CT_API int ct_mean_dim_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim, ct_dtype dtype) {
    OUT1("mean", ct_mean_dim(x, ndims, dims, keepdim, dtype));
}
CT_API int ct_prod_dim_out(ct_tensor *out, const ct_tensor *x, int dim, bool keepdim, ct_dtype dtype) {
    OUT1("prod", ct_prod_dim(x, dim, keepdim, dtype != CT_NUM_DTYPES ? dtype : out->dtype));
}
CT_API int ct_amax_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    OUT1S("amax", ct_amax(x, ndims, dims, keepdim));
}
CT_API int ct_amin_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    OUT1S("amin", ct_amin(x, ndims, dims, keepdim));
}
CT_API int ct_logsumexp_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    OUT1("logsumexp", ct_logsumexp(x, ndims, dims, keepdim));
}
CT_API int ct_norm_out(ct_tensor *out, const ct_tensor *x, double p, int ndims, const int64_t *dims, bool keepdim) {
    OUT1S("norm", ct_norm(x, p, ndims, dims, keepdim));
}
CT_API int ct_cumsum_out(ct_tensor *out, const ct_tensor *x, int dim, ct_dtype dtype) {
    OUT1("cumsum", ct_cumsum(x, dim, dtype != CT_NUM_DTYPES ? dtype : out->dtype));
}
CT_API int ct_cumprod_out(ct_tensor *out, const ct_tensor *x, int dim, ct_dtype dtype) {
    OUT1("cumprod", ct_cumprod(x, dim, dtype != CT_NUM_DTYPES ? dtype : out->dtype));
}
CT_API int ct_max_dim_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool keepdim) {
    OUT2("max", ct_max_dim(x, dim, keepdim, &idx_));
}
CT_API int ct_min_dim_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool keepdim) {
    OUT2("min", ct_min_dim(x, dim, keepdim, &idx_));
}
CT_API int ct_sort_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool descending, bool stable) {
    OUT2("sort", ct_sort(x, dim, descending, stable, &idx_));
}
CT_API int ct_topk_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int64_t k, int dim, bool largest,
                       bool sorted) {
    OUT2("topk", ct_topk(x, k, dim, largest, sorted, &idx_));
}

CT_API int ct_var_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim) {
    OUT1("var", ct_var(x, ndims, dims, correction, keepdim));
}
CT_API int ct_std_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim) {
    OUT1("std", ct_std(x, ndims, dims, correction, keepdim));
}
CT_API int ct_median_dim_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool keepdim) {
    OUT2("median", ct_median_dim(x, dim, keepdim, &idx_));
}
CT_API int ct_mode_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool keepdim) {
    OUT2("mode", ct_mode(x, dim, keepdim, &idx_));
}
CT_API int ct_cummax_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim) {
    OUT2("cummax", ct_cummax(x, dim, &idx_));
}
CT_API int ct_cummin_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim) {
    OUT2("cummin", ct_cummin(x, dim, &idx_));
}
CT_API int ct_kthvalue_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int64_t k, int dim, bool keepdim) {
    OUT2("kthvalue", ct_kthvalue(x, k, dim, keepdim, &idx_));
}

/* ---- matrix products ---- */
CT_API int ct_mm_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b) { OUT1S("mm", ct_mm(a, b)); }
CT_API int ct_bmm_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b) { OUT1S("bmm", ct_bmm(a, b)); }
CT_API int ct_mv_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *v) { OUT1S("mv", ct_mv(a, v)); }
CT_API int ct_dot_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b) { OUT1S("dot", ct_dot(a, b)); }
CT_API int ct_outer_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b) { OUT1("outer", ct_outer(a, b)); }
CT_API int ct_addmm_out(ct_tensor *out, const ct_tensor *input, const ct_tensor *m1, const ct_tensor *m2, double beta,
                        double alpha) {
    OUT1S("addmm", ct_addmm(input, m1, m2, beta, alpha));
}

CT_API int ct_addmv_out(ct_tensor *out, const ct_tensor *input, const ct_tensor *m, const ct_tensor *v, double beta,
                        double alpha) {
    OUT1S("addmv", ct_addmv(input, m, v, beta, alpha));
}
CT_API int ct_baddbmm_out(ct_tensor *out, const ct_tensor *input, const ct_tensor *b1, const ct_tensor *b2, double beta,
                          double alpha) {
    OUT1S("baddbmm", ct_baddbmm(input, b1, b2, beta, alpha));
}

/* ---- joining and indexing ---- */
CT_API int ct_cat_out(ct_tensor *out, int n, const ct_tensor *const *tensors, int dim) {
    OUT1("cat", ct_cat(n, tensors, dim));
}
CT_API int ct_stack_out(ct_tensor *out, int n, const ct_tensor *const *tensors, int dim) {
    OUT1("stack", ct_stack(n, tensors, dim));
}
CT_API int ct_gather_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index) {
    OUT1S("gather", ct_gather(x, dim, index));
}
CT_API int ct_index_select_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index) {
    OUT1S("index_select", ct_index_select(x, dim, index));
}
CT_API int ct_masked_select_out(ct_tensor *out, const ct_tensor *x, const ct_tensor *mask) {
    OUT1S("masked_select", ct_masked_select(x, mask));
}
CT_API int ct_nonzero_out(ct_tensor *out, const ct_tensor *x) { OUT1S("nonzero", ct_nonzero(x)); }
CT_API int ct_take_out(ct_tensor *out, const ct_tensor *x, const ct_tensor *index) { OUT1S("take", ct_take(x, index)); }
CT_API int ct_tril_out(ct_tensor *out, const ct_tensor *x, int64_t diagonal) { OUT1S("tril", ct_tril(x, diagonal)); }
CT_API int ct_triu_out(ct_tensor *out, const ct_tensor *x, int64_t diagonal) { OUT1S("triu", ct_triu(x, diagonal)); }
CT_API int ct_searchsorted_out(ct_tensor *out, const ct_tensor *sorted_sequence, const ct_tensor *values, bool out_int32,
                               bool right) {
    OUT1S("searchsorted", ct_searchsorted(sorted_sequence, values, out_int32, right));
}
CT_API int ct_bucketize_out(ct_tensor *out, const ct_tensor *x, const ct_tensor *boundaries, bool out_int32, bool right) {
    OUT1S("bucketize", ct_bucketize(x, boundaries, out_int32, right));
}

/* ---- the rest of the reductions ---- */
CT_API int ct_nansum_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    /* like sum: computed in out's dtype */
    CT_CHECK_ARG_S("nansum", out);
    CT_CHECK_ARG_S("nansum", x);
    if (ct_dtype_is_floating(x->dtype) && !ct_dtype_is_floating(out->dtype))
        return ct__errs(CT_ERR_DTYPE, "\"nansum_cpu\" not implemented for '%s'", ct__scalar_type_name(out->dtype));
    if (ct_scope_begin()) return ct_last_status();
    ct_tensor *xc = x->dtype == out->dtype ? (ct_tensor *)x : ct_to_dtype(x, out->dtype);
    /* a bool out sums in bool (a logical or), which the cast of the count gives */
    int rc = ct__commit_out("nansum", out, ct_to_dtype(ct_nansum(xc, ndims, dims, keepdim), out->dtype));
    ct_scope_end();
    return rc;
}
CT_API int ct_nanmean_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    OUT1("nanmean", ct_nanmean(x, ndims, dims, keepdim));
}
CT_API int ct_argmax_out(ct_tensor *out, const ct_tensor *x, int dim, bool keepdim) {
    OUT1S("argmax", ct_argmax(x, dim, keepdim));
}
CT_API int ct_argmin_out(ct_tensor *out, const ct_tensor *x, int dim, bool keepdim) {
    OUT1S("argmin", ct_argmin(x, dim, keepdim));
}
/* all/any: out may be bool or uint8 (torch's rule); the result is cast to it */
static int bool_out(const char *name, const ct_tensor *out) {
    if (out->dtype != CT_BOOL && out->dtype != CT_UINT8)
        return ct__errs(CT_ERR_DTYPE, "%s only supports bool tensor for result, got: %s", name, ct_dtype_name(out->dtype));
    return 0;
}
CT_API int ct_all_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    CT_CHECK_ARG_S("all", out);
    int rc = bool_out("all", out);
    if (rc) return rc;
    OUT1("all", ct_all(x, ndims, dims, keepdim));
}
CT_API int ct_any_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    CT_CHECK_ARG_S("any", out);
    int rc = bool_out("any", out);
    if (rc) return rc;
    OUT1("any", ct_any(x, ndims, dims, keepdim));
}

/* ---- scattering and index updates (out has self's dtype) ---- */
CT_API int ct_scatter_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src) {
    OUT1S("scatter", ct_scatter(x, dim, index, src));
}
CT_API int ct_scatter_value_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, double value) {
    OUT1S("scatter", ct_scatter_value(x, dim, index, value));
}
CT_API int ct_scatter_add_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src) {
    OUT1S("scatter_add", ct_scatter_add(x, dim, index, src));
}
CT_API int ct_scatter_reduce_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src,
                                 const char *reduce, bool include_self) {
    OUT1S("scatter_reduce", ct_scatter_reduce(x, dim, index, src, reduce, include_self));
}
CT_API int ct_index_add_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *source,
                            double alpha) {
    OUT1S("index_add", ct_index_add(x, dim, index, source, alpha));
}
CT_API int ct_index_copy_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *source) {
    OUT1S("index_copy", ct_index_copy(x, dim, index, source));
}
CT_API int ct_diag_out(ct_tensor *out, const ct_tensor *x, int64_t diagonal) {
    OUT1S("diag", ct_diag(x, diagonal));
}
CT_API int ct_take_along_dim_out(ct_tensor *out, const ct_tensor *x, const ct_tensor *index, int dim) {
    OUT1S("take_along_dim", ct_take_along_dim(x, index, dim));
}
