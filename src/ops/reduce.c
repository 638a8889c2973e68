/* Reductions: front ends (dims, dtype rules, autograd).
 *
 * Kernels run through ct__reduce_raw / ct__dispatch; composite ops (mean, var, norm,
 * logsumexp, ...) are built from public ops. Ops whose PyTorch backward differs from
 * the derivative of their composite forward compute the forward with grad mode off
 * and record their own node (FWD_BEGIN / FWD_END + record()). Backward formulas follow
 * PyTorch's tools/autograd/derivatives.yaml and are written with public ops. */
#include <math.h>

#include "ops/reduce.h"

int ct__reduce_dims(const char *op, const ct_tensor *x, int ndims, const int64_t *dims, bool *mask) {
    int nd = x->ndim;
    if (ndims < 0 || (ndims > 0 && !dims)) return ct__errs(CT_ERR_ARG, "%s: invalid dim list", op), -1;
    for (int d = 0; d < nd; d++) mask[d] = ndims == 0;
    for (int i = 0; i < ndims; i++) {
        if (dims[i] < INT32_MIN || dims[i] > INT32_MAX)
            return ct__errs(CT_ERR_INDEX, "%s: Dimension out of range (got %lld)", op, (long long)dims[i]), -1;
        int d = ct__wrap_dim(op, (int)dims[i], nd);
        if (d < 0) return -1;
        if (nd == 0) continue;
        if (mask[d]) return ct__errs(CT_ERR_ARG, "%s: dim %d appears multiple times in the list of dims", op, d), -1;
        mask[d] = true;
    }
    return 0;
}

void ct__reduced_shape(const ct_tensor *x, const bool *mask, bool keepdim, int *ond, int64_t *osizes) {
    int k = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (!mask[d]) osizes[k++] = x->sizes[d];
        else if (keepdim) osizes[k++] = 1;
    }
    *ond = k;
}

ct_tensor *ct__grad_expand_reduced(const ct_tensor *g, int in_nd, const int64_t *in_sizes, const int64_t *mask, bool keepdim) {
    ct_tensor *r = (ct_tensor *)g;
    if (!keepdim)
        for (int d = 0; d < in_nd; d++)
            if (mask[d]) { r = ct_unsqueeze(r, d); if (!r) return NULL; }
    return ct_expand(r, in_nd, in_sizes);
}

ct_tensor *ct__reduce_raw(ct_op op, const ct_tensor *x, const bool *mask, bool keepdim, ct_dtype out_dt) {
    int ond;
    int64_t osz[CT_MAX_DIMS], kmask[CT_MAX_DIMS];
    ct__reduced_shape(x, mask, keepdim, &ond, osz);
    ct_tensor *out = ct__empty_raw(ond, osz, out_dt);
    if (!out) return NULL;
    for (int d = 0; d < x->ndim; d++) kmask[d] = mask[d];
    ct_kernel_args a = {.op = op, .n_out = 1, .n_in = 1, .out = {out}, .in = {x}, .iv = kmask, .n_iv = x->ndim};
    if (ct__dispatch(&a)) { ct_release(out); return NULL; }
    return out;
}

/* ---- helpers ---- */
#define st_name ct__scalar_type_name
static bool is_fc(ct_dtype dt) { return ct_dtype_is_floating(dt) || ct_dtype_is_complex(dt); }

static int64_t reduced_count(const ct_tensor *x, const bool *mask) {
    int64_t n = 1;
    for (int d = 0; d < x->ndim; d++)
        if (mask[d]) n *= x->sizes[d];
    return n;
}

/* Forward computed with public ops under no-grad inside a private scope; `out` becomes
 * an unregistered fresh header over the result (ready for record()). */
#define FWD_BEGIN                                   \
    bool fwd_prev_ = ct_set_grad_enabled(false);    \
    int fwd_scope_ = ct_scope_begin();              \
    ct_tensor *r_ = NULL;
#define FWD_END(out)                                                                  \
    ct_tensor *out = r_ ? ct__alias(r_, r_->ndim, r_->sizes, r_->strides, r_->offset) : NULL; \
    if (fwd_scope_ == 0) ct_scope_end();                                              \
    ct_set_grad_enabled(fwd_prev_);

/* Runs a composite expression in a private scope and hands its result to the caller's
 * scope (or to the caller). */
#define COMPOSITE_BEGIN int comp_scope_ = ct_scope_begin(); ct_tensor *cr_ = NULL;
#define COMPOSITE_END                         \
    if (cr_) cr_ = ct_keep(cr_);              \
    if (comp_scope_ == 0) ct_scope_end();     \
    return cr_;

/* Node layout: input 0 = x; ivec = reduce mask per input dim; i[0] keepdim, i[1] dim;
 * d[0], d[1] parameters; saved slot 0 = x, 1 = out, 2 = extra (if given). */
static ct_tensor *record(ct_tensor *out, const char *name, ct_backward_fn fn, const ct_tensor *x, const bool *mask,
                         bool keepdim, int dim, double d0, double d1, const ct_tensor *extra) {
    if (!out) return NULL;
    if (is_fc(out->dtype) && ct__needs_grad(1, (const ct_tensor *[]){x})) {
        int64_t km[CT_MAX_DIMS];
        for (int d = 0; d < x->ndim; d++) km[d] = mask ? mask[d] : 0;
        ct_node *n = ct__node_new(name, fn, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_save_meta(n, 0, x) || ct__node_set_ivec(n, x->ndim, km) ||
            ct__save(n, x) < 0 || ct__save_output(n, out, 0) < 0 || (extra && ct__save(n, extra) < 0)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        n->i[0] = keepdim;
        n->i[1] = dim;
        n->d[0] = d0;
        n->d[1] = d1;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

/* g with the reduced dims restored as size 1 (borrowed g if nothing to do). */
static ct_tensor *restore(const ct_tensor *g, const ct_node *n) {
    ct_tensor *r = (ct_tensor *)g;
    if (n->i[0]) return r;
    for (int d = 0; d < n->in_meta[0].ndim; d++)
        if (n->ivec[d]) { r = ct_unsqueeze(r, d); if (!r) return NULL; }
    return r;
}
static ct_tensor *expand_in(const ct_tensor *g, const ct_node *n) {
    return ct__grad_expand_reduced(g, n->in_meta[0].ndim, n->in_meta[0].sizes, n->ivec, n->i[0]);
}
/* The reduce dims of node n as a list. */
static int node_dims(const ct_node *n, int64_t *dims) {
    int k = 0;
    for (int d = 0; d < n->in_meta[0].ndim; d++)
        if (n->ivec[d]) dims[k++] = d;
    return k;
}
static ct_tensor *zero_of(ct_dtype dt) { return ct_scalar_tensor(0, dt); }
#define BW_RET(expr) do { gi[0] = (expr); return gi[0] ? 0 : ct_last_status(); } while (0)

/* ---------------------------------------------------------------------------------- */
/* sum, nansum                                                                         */
/* ---------------------------------------------------------------------------------- */
static int sum_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) { BW_RET(expand_in(go[0], n)); }

CT_API ct_tensor *ct_sum_dim(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim, ct_dtype dtype) {
    CT_CHECK_ARG("sum", x);
    bool mask[CT_MAX_DIMS];
    if ((unsigned)dtype > CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "sum: invalid dtype");
    if (ct__reduce_dims("sum", x, ndims, dims, mask)) return NULL;
    ct_dtype odt = dtype != CT_NUM_DTYPES ? dtype : ct_dtype_is_integral(x->dtype, true) ? CT_INT64 : x->dtype;
    ct_tensor *xin = ct__cast_raw(x, dtype != CT_NUM_DTYPES ? dtype : x->dtype);
    if (!xin) return NULL;
    ct_tensor *out = ct__reduce_raw(CT_OP_SUM, xin, mask, keepdim, odt);
    ct_release(xin);
    return record(out, ndims ? "SumBackward1" : "SumBackward0", sum_backward, x, mask, keepdim, 0, 0, 0, NULL);
}

CT_API ct_tensor *ct_sum(const ct_tensor *x) { return ct_sum_dim(x, 0, NULL, false, CT_NUM_DTYPES); }

static int nansum_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0);
    if (!x) return ct_last_status();
    BW_RET(ct_mul(expand_in(go[0], n), ct_logical_not(ct_isnan(x))));
}

CT_API ct_tensor *ct_nansum(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    CT_CHECK_ARG("nansum", x);
    if (ct_dtype_is_complex(x->dtype)) return ct__err(CT_ERR_DTYPE, "nansum: nansum on CPU does not support complex inputs");
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims("nansum", x, ndims, dims, mask)) return NULL;
    ct_dtype odt = ct_dtype_is_integral(x->dtype, true) ? CT_INT64 : x->dtype;
    ct_tensor *out = ct__reduce_raw(ct_dtype_is_floating(x->dtype) ? CT_OP_NANSUM : CT_OP_SUM, x, mask, keepdim, odt);
    return record(out, "NansumBackward0", nansum_backward, x, mask, keepdim, 0, 0, 0, NULL);
}

/* ---------------------------------------------------------------------------------- */
/* mean, nanmean (composite: sum / count, float16/bfloat16 summed in float32)           */
/* ---------------------------------------------------------------------------------- */
CT_API ct_tensor *ct_mean_dim(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim, ct_dtype dtype) {
    CT_CHECK_ARG("mean", x);
    if ((unsigned)dtype > CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "mean: invalid dtype");
    if (dtype != CT_NUM_DTYPES && !is_fc(dtype))
        return ct__err(CT_ERR_DTYPE, "mean(): could not infer output dtype. Optional dtype must be either a floating "
                                     "point or complex dtype. Got: %s", st_name(dtype));
    if (dtype == CT_NUM_DTYPES && !is_fc(x->dtype))
        return ct__err(CT_ERR_DTYPE, "mean(): could not infer output dtype. Input dtype must be either a floating point "
                                     "or complex dtype. Got: %s", st_name(x->dtype));
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims("mean", x, ndims, dims, mask)) return NULL;
    ct_dtype dt = dtype != CT_NUM_DTYPES ? dtype : x->dtype;
    bool half = ct__is_half(dt);
    double cnt = (double)reduced_count(x, mask);
    COMPOSITE_BEGIN
    ct_tensor *xs = ct_to_dtype(x, dt);
    ct_tensor *s = ct_sum_dim(xs, ndims, dims, keepdim, half ? CT_FLOAT32 : dt);
    cr_ = ct_div_scalar(s, cnt);
    if (half) cr_ = ct_to_dtype(cr_, dt);
    COMPOSITE_END
}
CT_API ct_tensor *ct_mean(const ct_tensor *x) { return ct_mean_dim(x, 0, NULL, false, CT_NUM_DTYPES); }

CT_API ct_tensor *ct_nanmean(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    CT_CHECK_ARG("nanmean", x);
    if (!ct_dtype_is_floating(x->dtype))
        return ct__err(CT_ERR_DTYPE, "nanmean(): expected input to have floating point dtype but got %s",
                       st_name(x->dtype));
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims("nanmean", x, ndims, dims, mask)) return NULL;
    COMPOSITE_BEGIN
    ct_tensor *cnt = ct_sum_dim(ct_logical_not(ct_isnan(x)), ndims, dims, keepdim, CT_NUM_DTYPES);
    cr_ = ct_div(ct_nansum(x, ndims, dims, keepdim), cnt);
    COMPOSITE_END
}

/* ---------------------------------------------------------------------------------- */
/* prod                                                                                */
/* ---------------------------------------------------------------------------------- */
/* grad * prod of all other elements along dim, exact with zeros (exclusive cumprods). */
static ct_tensor *prod_safe_zeros_backward(const ct_tensor *g, const ct_tensor *inp, int dim) {
    if (inp->numel == 0) return ct_expand(g, inp->ndim, inp->sizes);
    int64_t n = inp->sizes[dim];
    int64_t osz[CT_MAX_DIMS];
    memcpy(osz, inp->sizes, sizeof(int64_t) * (size_t)inp->ndim);
    osz[dim] = 1;
    ct_tensor *ones = ct_ones(inp->ndim, osz, inp->dtype);
    int64_t fd[1] = {dim};
    ct_tensor *en = ct_cumprod(ct_cat(2, (const ct_tensor *[]){ones, ct_narrow(inp, dim, 0, n - 1)}, dim), dim,
                               CT_NUM_DTYPES);
    ct_tensor *rev = ct_flip(ct_narrow(inp, dim, 1, n - 1), 1, fd);
    ct_tensor *er = ct_flip(ct_cumprod(ct_cat(2, (const ct_tensor *[]){ones, rev}, dim), dim, CT_NUM_DTYPES), 1, fd);
    return ct_mul(g, ct_conj(ct_mul(en, er)));
}

/* i[2]: 1 for the full reduction */
static int prod_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *res = ct__unpack(n, 1);
    if (!x || !res) return ct_last_status();
    if (x->ndim == 0) BW_RET(ct__pass(go[0]));
    ct_tensor *g = restore(go[0], n), *r = restore(res, n);
    ct_tensor *anyz = ct_any(ct_eq(x, zero_of(x->dtype)), 0, NULL, false);
    if (!g || !r || !anyz) return ct_last_status();
    if (ct_item(anyz) == 0) BW_RET(ct_mul(g, ct_conj(ct_div(r, x))));
    if (n->i[2]) {
        ct_tensor *flat = ct_reshape(x, 1, (const int64_t[]){-1});
        if (!flat) return ct_last_status();
        BW_RET(ct_reshape(prod_safe_zeros_backward(go[0], flat, 0), x->ndim, x->sizes));
    }
    BW_RET(prod_safe_zeros_backward(g, x, (int)n->i[1]));
}

static ct_tensor *prod_impl(const ct_tensor *x, bool all, int dim, bool keepdim, ct_dtype dtype) {
    CT_CHECK_ARG("prod", x);
    if ((unsigned)dtype > CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "prod: invalid dtype");
    bool mask[CT_MAX_DIMS];
    int d = 0;
    if (all) for (int i = 0; i < x->ndim; i++) mask[i] = true;
    else {
        d = ct__wrap_dim("prod", dim, x->ndim);
        if (d < 0) return NULL;
        for (int i = 0; i < x->ndim; i++) mask[i] = i == d;
    }
    ct_dtype odt = dtype != CT_NUM_DTYPES ? dtype : ct_dtype_is_integral(x->dtype, true) ? CT_INT64 : x->dtype;
    ct_tensor *xin = ct__cast_raw(x, dtype != CT_NUM_DTYPES ? dtype : x->dtype);
    if (!xin) return NULL;
    ct_tensor *out = ct__reduce_raw(CT_OP_PROD, xin, mask, keepdim, odt);
    ct_release(xin);
    out = record(out, all ? "ProdBackward0" : "ProdBackward1", prod_backward, x, mask, keepdim, d, 0, 0, NULL);
    if (out && out->grad_fn) out->grad_fn->i[2] = all;
    return out;
}
CT_API ct_tensor *ct_prod(const ct_tensor *x) { return prod_impl(x, true, 0, false, CT_NUM_DTYPES); }
CT_API ct_tensor *ct_prod_dim(const ct_tensor *x, int dim, bool keepdim, ct_dtype dtype) {
    return prod_impl(x, false, dim, keepdim, dtype);
}

/* ---------------------------------------------------------------------------------- */
/* amax / amin / max / min                                                             */
/* ---------------------------------------------------------------------------------- */
/* grad split evenly among the elements equal to the result (scale_grad_by_count) */
static int amaxmin_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *res = ct__unpack(n, 1);
    if (!x || !res) return ct_last_status();
    int64_t dims[CT_MAX_DIMS];
    int nd = node_dims(n, dims);
    ct_tensor *mask = ct_eq(restore(res, n), x);
    ct_tensor *cnt = ct_sum_dim(mask, nd, dims, true, CT_NUM_DTYPES);
    BW_RET(ct_mul(ct_div(restore(go[0], n), cnt), mask));
}

/* evenly_distribute_backward: full max/min/median */
static int evenly_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *res = ct__unpack(n, 1);
    if (!x || !res) return ct_last_status();
    double v = ct_item(res);
    ct_tensor *mask = v != v ? ct_isnan(x) : ct_eq(x, res);
    BW_RET(ct_mul(mask, ct_div(go[0], ct_sum(mask))));
}

static int check_nonempty_dims(const char *op, const ct_tensor *x, const bool *mask, bool all) {
    if (all && x->numel == 0)
        return ct__errs(CT_ERR_INDEX, "%s(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
                                      "reduction dim with the 'dim' argument.", op);
    for (int d = 0; d < x->ndim; d++)
        if (mask[d] && x->sizes[d] == 0)
            return ct__errs(CT_ERR_INDEX, "%s(): Expected reduction dim %d to have non-zero size.", op, d);
    return 0;
}

static ct_tensor *minmax_reduce(const char *op, ct_op code, const ct_tensor *x, int ndims, const int64_t *dims,
                                bool keepdim, bool full) {
    CT_CHECK_ARG(op, x);
    if (ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "%s(): \"%s\" not implemented for '%s'", op, op, st_name(x->dtype));
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims(op, x, ndims, dims, mask)) return NULL;
    if (check_nonempty_dims(op, x, mask, full || (ndims == 0))) return NULL;
    ct_tensor *out = ct__reduce_raw(code, x, mask, keepdim, x->dtype);
    if (full)
        return record(out, code == CT_OP_AMAX ? "MaxBackward1" : "MinBackward1", evenly_backward, x, mask, keepdim, 0,
                      0, 0, NULL);
    return record(out, code == CT_OP_AMAX ? "AmaxBackward0" : "AminBackward0", amaxmin_backward, x, mask, keepdim, 0,
                  0, 0, NULL);
}
CT_API ct_tensor *ct_amax(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    return minmax_reduce("amax", CT_OP_AMAX, x, ndims, dims, keepdim, false);
}
CT_API ct_tensor *ct_amin(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    return minmax_reduce("amin", CT_OP_AMIN, x, ndims, dims, keepdim, false);
}
CT_API ct_tensor *ct_max(const ct_tensor *x) { return minmax_reduce("max", CT_OP_AMAX, x, 0, NULL, false, true); }
CT_API ct_tensor *ct_min(const ct_tensor *x) { return minmax_reduce("min", CT_OP_AMIN, x, 0, NULL, false, true); }

/* value_selecting_reduction_backward: grad goes to the selected index along dim
 * (slot 2: indices). Written with a one-hot mask so it stays differentiable. */
static int select_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *idx = ct__unpack(n, 2);
    if (!x || !idx) return ct_last_status();
    if (x->ndim == 0) BW_RET(ct__pass(go[0]));
    int dim = (int)n->i[1];
    int64_t shp[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shp[d] = d == dim ? x->sizes[d] : 1;
    ct_tensor *ar = ct_reshape(ct_arange(0, (double)x->sizes[dim], 1, CT_INT64), x->ndim, shp);
    ct_tensor *onehot = ct_eq(ar, restore(idx, n));
    BW_RET(ct_where(onehot, restore(go[0], n), zero_of(go[0]->dtype)));
}

/* One-dim reductions with indices: op code writes (values, indices) or indices only. */
static ct_tensor *dim_select(const char *op, ct_op code, const ct_tensor *x, int dim, bool keepdim, ct_tensor **indices,
                             bool values, int64_t i1, const char *node) {
    if (indices) *indices = NULL;
    CT_CHECK_ARG(op, x);
    int d = ct__wrap_dim(op, dim, x->ndim);
    if (d < 0) return NULL;
    if (ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "%s(): \"%s\" not implemented for '%s'", op, op, st_name(x->dtype));
    bool mask[CT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) mask[i] = i == d;
    if (check_nonempty_dims(op, x, mask, false)) return NULL;
    int ond;
    int64_t osz[CT_MAX_DIMS];
    ct__reduced_shape(x, mask, keepdim, &ond, osz);
    ct_tensor *idx = ct__empty_raw(ond, osz, CT_INT64);
    ct_tensor *val = values ? ct__empty_raw(ond, osz, x->dtype) : NULL;
    if (!idx || (values && !val)) { ct_release(idx); ct_release(val); return NULL; }
    ct_kernel_args a = {.op = code, .n_in = 1, .in = {x}, .i = {d, i1}};
    if (values) { a.n_out = 2; a.out[0] = val; a.out[1] = idx; }
    else { a.n_out = 1; a.out[0] = idx; }
    if (x->numel > 0 && ct__dispatch(&a)) { ct_release(idx); ct_release(val); return NULL; }
    if (!values) return ct__ret(idx);
    val = record(val, node, select_backward, x, mask, keepdim, d, 0, 0, idx);
    if (!val) { ct_release(idx); return NULL; }
    if (indices) *indices = ct__ret(idx);
    else ct_release(idx);
    return val;
}

CT_API ct_tensor *ct_max_dim(const ct_tensor *x, int dim, bool keepdim, ct_tensor **indices) {
    return dim_select("max", CT_OP_MAX_DIM, x, dim, keepdim, indices, true, 0, "MaxBackward0");
}
CT_API ct_tensor *ct_min_dim(const ct_tensor *x, int dim, bool keepdim, ct_tensor **indices) {
    return dim_select("min", CT_OP_MIN_DIM, x, dim, keepdim, indices, true, 0, "MinBackward0");
}

static ct_tensor *argmaxmin(const char *op, ct_op code, const ct_tensor *x, int dim, bool keepdim) {
    CT_CHECK_ARG(op, x);
    if (x->dtype == CT_BOOL) return ct__err(CT_ERR_DTYPE, "%s(): does not support bool input", op);
    if (dim != CT_ALL_DIMS) return dim_select(op, code, x, dim, keepdim, NULL, false, 0, NULL);
    if (x->numel == 0)
        return ct__err(CT_ERR_INDEX, "%s(): Expected reduction dim to be specified for input.numel() == 0.", op);
    COMPOSITE_BEGIN
    ct_tensor *flat = ct_reshape(x, 1, (const int64_t[]){-1});
    cr_ = flat ? dim_select(op, code, flat, 0, false, NULL, false, 0, NULL) : NULL;
    if (cr_ && keepdim) {
        int64_t ones[CT_MAX_DIMS];
        for (int d = 0; d < x->ndim; d++) ones[d] = 1;
        cr_ = ct_reshape(cr_, x->ndim, ones);
    }
    COMPOSITE_END
}
CT_API ct_tensor *ct_argmax(const ct_tensor *x, int dim, bool keepdim) { return argmaxmin("argmax", CT_OP_ARGMAX, x, dim, keepdim); }
CT_API ct_tensor *ct_argmin(const ct_tensor *x, int dim, bool keepdim) { return argmaxmin("argmin", CT_OP_ARGMIN, x, dim, keepdim); }

/* ---------------------------------------------------------------------------------- */
/* median, nanmedian, mode                                                             */
/* ---------------------------------------------------------------------------------- */
CT_API ct_tensor *ct_median_dim(const ct_tensor *x, int dim, bool keepdim, ct_tensor **indices) {
    return dim_select("median", CT_OP_MEDIAN, x, dim, keepdim, indices, true, 0, "MedianBackward1");
}
CT_API ct_tensor *ct_mode(const ct_tensor *x, int dim, bool keepdim, ct_tensor **indices) {
    return dim_select("mode", CT_OP_MODE, x, dim, keepdim, indices, true, 0, "ModeBackward0");
}

static ct_tensor *median_all(const char *op, const ct_tensor *x, bool ignore_nan, const char *node) {
    CT_CHECK_ARG(op, x);
    if (ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "%s(): \"%s\" not implemented for '%s'", op, op, st_name(x->dtype));
    FWD_BEGIN
    if (x->numel == 0) /* NaN, converted as PyTorch's CPU conversion does for integers */
        r_ = ct_full(0, NULL, ct_dtype_is_floating(x->dtype) ? NAN : x->dtype == CT_INT32 ? (double)INT32_MIN
                              : x->dtype == CT_INT64 ? (double)INT64_MIN : 0, x->dtype);
    else {
        ct_tensor *flat = ct_reshape(x, 1, (const int64_t[]){-1});
        r_ = flat ? dim_select(op, CT_OP_MEDIAN, flat, 0, false, NULL, true, ignore_nan, node) : NULL;
    }
    FWD_END(out)
    if (!out) return NULL;
    bool mask[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) mask[d] = true;
    return record(out, node, evenly_backward, x, mask, false, 0, 0, 0, NULL);
}
CT_API ct_tensor *ct_median(const ct_tensor *x) { return median_all("median", x, false, "MedianBackward0"); }
CT_API ct_tensor *ct_nanmedian(const ct_tensor *x) { return median_all("nanmedian", x, true, "NanmedianBackward0"); }

/* ---------------------------------------------------------------------------------- */
/* all / any / count_nonzero                                                           */
/* ---------------------------------------------------------------------------------- */
static ct_tensor *allany(const char *op, ct_op code, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    CT_CHECK_ARG(op, x);
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims(op, x, ndims, dims, mask)) return NULL;
    return ct__ret(ct__reduce_raw(code, x, mask, keepdim, x->dtype == CT_UINT8 ? CT_UINT8 : CT_BOOL));
}
CT_API ct_tensor *ct_all(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    return allany("all", CT_OP_ALL, x, ndims, dims, keepdim);
}
CT_API ct_tensor *ct_any(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    return allany("any", CT_OP_ANY, x, ndims, dims, keepdim);
}
CT_API ct_tensor *ct_count_nonzero(const ct_tensor *x, int ndims, const int64_t *dims) {
    CT_CHECK_ARG("count_nonzero", x);
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims("count_nonzero", x, ndims, dims, mask)) return NULL;
    COMPOSITE_BEGIN
    ct_tensor *z = ct_scalar_tensor(0, x->dtype);
    cr_ = ct_sum_dim(ct_ne(ct_detach(x), z), ndims, dims, false, CT_INT64);
    COMPOSITE_END
}

/* ---------------------------------------------------------------------------------- */
/* var / std                                                                           */
/* ---------------------------------------------------------------------------------- */
/* d[0] correction. var_backward: (2 / (N - correction)) * grad * (x - mean) */
static ct_tensor *var_grad(ct_node *n, const ct_tensor *x, const ct_tensor *g) {
    int64_t dims[CT_MAX_DIMS];
    int nd = node_dims(n, dims);
    int64_t N = 1;
    for (int d = 0; d < n->in_meta[0].ndim; d++)
        if (n->ivec[d]) N *= n->in_meta[0].sizes[d];
    double dof = (double)N - n->d[0];
    const ct_tensor *mean = x->ndim ? ct_mean_dim(x, nd, dims, true, CT_NUM_DTYPES) : x;
    if (n->i[2] && dof <= 0) /* full reduction without degrees of freedom: nan where x == mean, else inf */
        return ct_mul(g, ct_where(ct_eq(x, mean), ct_scalar_tensor(NAN, g->dtype), ct_scalar_tensor(INFINITY, g->dtype)));
    return ct_mul(ct_mul_scalar(restore(g, n), 2.0 / dof), ct_sub(x, mean));
}
static int var_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0);
    if (!x) return ct_last_status();
    BW_RET(var_grad(n, x, go[0]));
}
static int std_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *res = ct__unpack(n, 1);
    if (!x || !res) return ct_last_status();
    ct_tensor *gv = ct_where(ct_eq(res, zero_of(res->dtype)), zero_of(go[0]->dtype),
                             ct_div(go[0], ct_mul_scalar(res, 2.0)));
    if (!gv) return ct_last_status();
    BW_RET(var_grad(n, x, gv));
}

/* The VAR_ROWS kernel for a contiguous float32/float64 tensor whose kept dims form one
 * block between reduced ones ([A reduced][B kept][D reduced]: rows, batch-norm
 * channels): sum_{a,d} (x - mean)^2 / dof (uncentred: x^2), sqrt'd or not. NULL
 * with *failed false when the layout does not fit (the caller composes ops instead),
 * with *failed true and the error set if the kernel failed. */
static ct_tensor *var_rows(const ct_tensor *x, const bool *mask, bool keepdim, bool take_sqrt, bool uncentred,
                           double dof, bool *failed) {
    *failed = false;
    int k0 = 0, k1;
    while (k0 < x->ndim && mask[k0]) k0++;
    k1 = k0;
    while (k1 < x->ndim && !mask[k1]) k1++;
    bool grid_ok = (x->dtype == CT_FLOAT32 || x->dtype == CT_FLOAT64) && x->ndim > 0 && ct__is_contiguous(x) &&
                   x->numel > 0;
    for (int d = k1; d < x->ndim && grid_ok; d++) grid_ok = mask[d];
    if (!grid_ok || (k0 == 0 && k1 == x->ndim)) return NULL;
    int ond;
    int64_t osz[CT_MAX_DIMS];
    ct__reduced_shape(x, mask, keepdim, &ond, osz);
    ct_tensor *o = ct__empty_raw(ond, osz, x->dtype);
    *failed = !o;
    if (!o) return NULL;
    ct_kernel_args a = {.op = CT_OP_VAR_ROWS, .n_out = 1, .n_in = 1, .out = {o}, .in = {x}};
    a.i[0] = ct__prod(k0, x->sizes);
    a.i[1] = ct__prod(k1 - k0, x->sizes + k0);
    a.i[2] = ct__prod(x->ndim - k1, x->sizes + k1);
    if (k0 == x->ndim) a.i[0] = 1, a.i[2] = x->numel; /* everything reduced: one row */
    a.i[3] = take_sqrt;
    a.i[4] = uncentred;
    a.d[0] = dof;
    if (ct__dispatch(&a)) {
        ct_release(o);
        *failed = true;
        return NULL;
    }
    return o;
}

static ct_tensor *var_std(const char *op, bool is_std, const ct_tensor *x, int ndims, const int64_t *dims,
                          double correction, bool keepdim) {
    CT_CHECK_ARG(op, x);
    if (!is_fc(x->dtype)) return ct__err(CT_ERR_DTYPE, "%s: std and var only support floating point and complex dtypes", op);
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims(op, x, ndims, dims, mask)) return NULL;
    double dof = (double)reduced_count(x, mask) - correction;
    if (dof < 0) dof = 0;
    /* two passes in double precision (PyTorch accumulates in double on CPU too) */
    bool cpx = ct_dtype_is_complex(x->dtype);
    ct_dtype odt = cpx ? (x->dtype == CT_COMPLEX64 ? CT_FLOAT32 : CT_FLOAT64) : x->dtype;
    bool failed = false;
    ct_tensor *o = dof > 0 ? var_rows(x, mask, keepdim, is_std, false, dof, &failed) : NULL;
    if (failed) return NULL;
    if (o) {
        ct_tensor *out = record(o, is_std ? "StdBackward0" : "VarBackward0", is_std ? std_backward : var_backward, x,
                                mask, keepdim, 0, correction, 0, NULL);
        if (out && out->grad_fn) out->grad_fn->i[2] = ndims == 0 || x->ndim == 0;
        return out;
    }
    FWD_BEGIN
    {
        /* complex: var(real) + var(imag), as PyTorch */
        ct_tensor *xd = ct_to_dtype(x, cpx ? CT_COMPLEX128 : CT_FLOAT64);
        ct_tensor *parts[2] = {cpx ? ct_real(xd) : xd, cpx ? ct_imag(xd) : NULL};
        for (int k = 0; k < (cpx ? 2 : 1); k++) {
            ct_tensor *m = x->ndim ? ct_mean_dim(parts[k], ndims, dims, true, CT_NUM_DTYPES) : parts[k];
            /* corrected two-pass: refine the mean by the mean residual (exact for constant slices) */
            if (x->ndim) m = ct_add(m, ct_mean_dim(ct_sub(parts[k], m), ndims, dims, true, CT_NUM_DTYPES));
            ct_tensor *dv = ct_sub(parts[k], m);
            ct_tensor *v = ct_div_scalar(ct_sum_dim(ct_mul(dv, dv), ndims, dims, keepdim, CT_NUM_DTYPES), dof);
            r_ = k ? ct_add(r_, v) : v;
        }
        if (is_std) r_ = ct_sqrt(r_);
        r_ = ct_to_dtype(r_, odt);
    }
    FWD_END(out)
    out = record(out, is_std ? "StdBackward0" : "VarBackward0", is_std ? std_backward : var_backward, x, mask, keepdim,
                 0, correction, 0, NULL);
    if (out && out->grad_fn) out->grad_fn->i[2] = ndims == 0 || x->ndim == 0;
    return out;
}
CT_API ct_tensor *ct_var(const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim) {
    return var_std("var", false, x, ndims, dims, correction, keepdim);
}
CT_API ct_tensor *ct_std(const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim) {
    return var_std("std", true, x, ndims, dims, correction, keepdim);
}
static ct_tensor *var_std_mean(bool is_std, const ct_tensor *x, int ndims, const int64_t *dims, double correction,
                               bool keepdim, ct_tensor **mean) {
    if (mean) *mean = NULL;
    ct_tensor *v = var_std(is_std ? "std_mean" : "var_mean", is_std, x, ndims, dims, correction, keepdim);
    if (!v) return NULL;
    if (mean) {
        ct_tensor *m = ct_mean_dim(x, ndims, dims, keepdim, CT_NUM_DTYPES);
        if (!m) {
            if (ct_scope_depth() == 0) ct_release(v);
            return NULL;
        }
        *mean = m;
    }
    return v;
}
CT_API ct_tensor *ct_var_mean(const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim,
                              ct_tensor **mean) {
    return var_std_mean(false, x, ndims, dims, correction, keepdim, mean);
}
CT_API ct_tensor *ct_std_mean(const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim,
                              ct_tensor **mean) {
    return var_std_mean(true, x, ndims, dims, correction, keepdim, mean);
}

/* ---------------------------------------------------------------------------------- */
/* norm                                                                                */
/* ---------------------------------------------------------------------------------- */
static int norm_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *res = ct__unpack(n, 1);
    if (!x || !res) return ct_last_status();
    double p = n->d[0];
    ct_tensor *g = restore(go[0], n), *nr = restore(res, n);
    if (!g || !nr) return ct_last_status();
    ct_tensor *z = zero_of(g->dtype);
    ct_tensor *nz = ct_eq(nr, zero_of(nr->dtype));
    if (p == 0) BW_RET(ct_zeros_like(x));
    if (p == 1) BW_RET(ct_mul(ct_sgn(x), g));
    if (p == 2) BW_RET(ct_mul(g, ct_where(nz, z, ct_div(x, nr))));
    if (isinf(p)) {
        int64_t dims[CT_MAX_DIMS];
        int nd = node_dims(n, dims);
        ct_tensor *ax = ct_abs(x);
        ct_tensor *mask = ct_logical_or(ct_eq(ax, nr), ct_isnan(ax));
        ct_tensor *cnt = x->ndim ? ct_sum_dim(mask, nd, dims, true, CT_NUM_DTYPES) : ct_sum(mask);
        BW_RET(ct_mul(ct_sgn(x), ct_mul(ct_div(g, cnt), mask)));
    }
    if (p < 1) {
        ct_tensor *scaled = ct_mul(ct_sgn(x), ct_where(ct_eq(x, zero_of(x->dtype)), z, ct_pow_scalar(ct_abs(x), p - 1)));
        BW_RET(ct_mul(ct_mul(scaled, g), ct_pow_scalar(nr, 1 - p)));
    }
    ct_tensor *scale = ct_where(nz, z, ct_div(g, ct_pow_scalar(nr, p - 1)));
    if (p < 2) BW_RET(ct_mul(ct_mul(ct_sgn(x), ct_pow_scalar(ct_abs(x), p - 1)), scale));
    BW_RET(ct_mul(ct_mul(x, ct_pow_scalar(ct_abs(x), p - 2)), scale));
}

CT_API ct_tensor *ct_norm(const ct_tensor *x, double p, int ndims, const int64_t *dims, bool keepdim) {
    CT_CHECK_ARG("norm", x);
    if (!is_fc(x->dtype))
        return ct__err(CT_ERR_DTYPE, "linalg.vector_norm: Expected a floating point or complex tensor as input. Got %s",
                       st_name(x->dtype));
    if (p != p) return ct__err(CT_ERR_ARG, "linalg.vector_norm: ord must not be NaN");
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims("linalg.vector_norm", x, ndims, dims, mask)) return NULL;
    if (p < 0 || (isinf(p) && p > 0))
        for (int d = 0; d < x->ndim; d++)
            if (mask[d] && x->sizes[d] == 0)
                return ct__err(CT_ERR_ARG, "linalg.vector_norm cannot compute the %g norm on an empty tensor because "
                                           "the operation does not have an identity", p);
    bool all = true;
    for (int d = 0; d < x->ndim; d++) all &= mask[d];
    /* one pass, accumulated in double; a whole large tensor's norm (one output, which the
     * kernel would run on one thread) stays with the parallel sum below */
    if (p == 2 && !(all && x->numel >= CT_GRAIN)) {
        bool failed;
        ct_tensor *o = var_rows(x, mask, keepdim, true, true, 1.0, &failed);
        if (failed) return NULL;
        if (o) return record(o, "LinalgVectorNormBackward0", norm_backward, x, mask, keepdim, 0, p, 0, NULL);
    }
    FWD_BEGIN
    {
        ct_tensor *ax = ct_abs(x);
        if (isinf(p)) r_ = x->numel ? (p > 0 ? ct_amax(ax, ndims, dims, keepdim) : ct_amin(ax, ndims, dims, keepdim))
                                    : ct_sum_dim(ax, ndims, dims, keepdim, CT_NUM_DTYPES);
        else if (p == 0) r_ = ct_sum_dim(ct_ne(ax, zero_of(ax->dtype)), ndims, dims, keepdim, ax ? ax->dtype : CT_FLOAT32);
        else if (p == 1) r_ = ct_sum_dim(ax, ndims, dims, keepdim, CT_NUM_DTYPES);
        else if (p == 2) r_ = ct_sqrt(ct_sum_dim(ct_mul(ax, ax), ndims, dims, keepdim, CT_NUM_DTYPES));
        else r_ = ct_pow_scalar(ct_sum_dim(ct_pow_scalar(ax, p), ndims, dims, keepdim, CT_NUM_DTYPES), 1.0 / p);
    }
    FWD_END(out)
    if (!out) return NULL;
    return record(out, "LinalgVectorNormBackward0", norm_backward, x, mask, keepdim, 0, p, 0, NULL);
}

/* ---------------------------------------------------------------------------------- */
/* logsumexp                                                                           */
/* ---------------------------------------------------------------------------------- */
static int logsumexp_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *res = ct__unpack(n, 1);
    if (!x || !res) return ct_last_status();
    BW_RET(ct_mul(restore(go[0], n), ct_exp(ct_sub(x, restore(res, n)))));
}

CT_API ct_tensor *ct_logsumexp(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim) {
    CT_CHECK_ARG("logsumexp", x);
    if (ct_dtype_is_complex(x->dtype)) return ct__err(CT_ERR_DTYPE, "logsumexp(): Expected floating point type for result tensor, but got: %s", st_name(x->dtype));
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims("logsumexp", x, ndims, dims, mask)) return NULL;
    ct_dtype fdt = ct_dtype_is_floating(x->dtype) ? x->dtype : ct_get_default_dtype();
    FWD_BEGIN
    {
        ct_tensor *xf = ct_to_dtype(x, fdt);
        if (x->numel == 0) r_ = ct_log(ct_sum_dim(ct_exp(xf), ndims, dims, keepdim, CT_NUM_DTYPES));
        else {
            ct_tensor *m = ct_amax(xf, ndims, dims, true);
            m = ct_where(ct_isinf(m), zero_of(fdt), m);
            ct_tensor *s = ct_log(ct_sum_dim(ct_exp(ct_sub(xf, m)), ndims, dims, true, CT_NUM_DTYPES));
            r_ = ct_add(s, m);
            if (r_ && !keepdim) {
                for (int d = x->ndim - 1; d >= 0; d--)
                    if (mask[d]) r_ = ct_squeeze_dim(r_, d);
                r_ = ct_contiguous(r_);
            }
        }
    }
    FWD_END(out)
    if (!out) return NULL;
    return record(out, "LogsumexpBackward0", logsumexp_backward, x, mask, keepdim, 0, 0, 0, NULL);
}

/* ---------------------------------------------------------------------------------- */
/* scans                                                                               */
/* ---------------------------------------------------------------------------------- */
/* Runs a scan kernel along dim into a fresh contiguous tensor of odt (indices too). */
static ct_tensor *scan_raw(ct_op code, const ct_tensor *x, int dim, ct_dtype odt, ct_tensor **indices) {
    ct_tensor *out = ct__empty_raw(x->ndim, x->sizes, odt);
    ct_tensor *idx = indices ? ct__empty_raw(x->ndim, x->sizes, CT_INT64) : NULL;
    if (!out || (indices && !idx)) { ct_release(out); ct_release(idx); return NULL; }
    ct_kernel_args a = {.op = code, .n_out = indices ? 2 : 1, .n_in = 1, .out = {out, idx}, .in = {x}, .i = {dim}};
    if (x->numel > 0 && ct__dispatch(&a)) { ct_release(out); ct_release(idx); return NULL; }
    if (indices) *indices = idx;
    return out;
}

static ct_tensor *flipd(const ct_tensor *t, int dim) { return ct_flip(t, 1, (const int64_t[]){dim}); }

static int cumsum_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    if (n->in_meta[0].ndim == 0) BW_RET(ct__pass(go[0]));
    int dim = (int)n->i[1];
    BW_RET(flipd(ct_cumsum(flipd(go[0], dim), dim, CT_NUM_DTYPES), dim));
}

CT_API ct_tensor *ct_cumsum(const ct_tensor *x, int dim, ct_dtype dtype) {
    CT_CHECK_ARG("cumsum", x);
    if ((unsigned)dtype > CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "cumsum: invalid dtype");
    int d = ct__wrap_dim("cumsum", dim, x->ndim);
    if (d < 0) return NULL;
    ct_dtype odt = dtype != CT_NUM_DTYPES ? dtype : ct_dtype_is_integral(x->dtype, true) ? CT_INT64 : x->dtype;
    ct_tensor *xin = ct__cast_raw(x, odt);
    if (!xin) return NULL;
    ct_tensor *out = scan_raw(CT_OP_CUMSUM, xin, d, odt, NULL);
    ct_release(xin);
    return record(out, "CumsumBackward0", cumsum_backward, x, NULL, true, d, 0, 0, NULL);
}

/* cumprod_backward (PyTorch): without zeros, reversed_cumsum(grad * out) / x; with
 * zeros, the differentiable O(n^2) formula over omitted products. */
static int cumprod_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *out = ct__unpack(n, 1);
    if (!x || !out) return ct_last_status();
    if (x->numel <= 1 || x->ndim == 0) BW_RET(ct__pass(go[0]));
    int dim = (int)n->i[1];
    int64_t N = x->sizes[dim];
    if (N == 1) BW_RET(ct__pass(go[0]));
    ct_tensor *g = go[0];
    bool cpx = ct_dtype_is_complex(x->dtype);
    ct_tensor *anyz = ct_any(ct_eq(x, zero_of(x->dtype)), 0, NULL, false);
    if (!anyz) return ct_last_status();
    if (ct_item(anyz) == 0) {
        ct_tensor *w = ct_mul(cpx ? ct_conj(out) : out, g);
        BW_RET(ct_div(flipd(ct_cumsum(flipd(w, dim), dim, CT_NUM_DTYPES), dim), cpx ? ct_conj(x) : x));
    }
    int64_t osz[CT_MAX_DIMS];
    memcpy(osz, x->sizes, sizeof(int64_t) * (size_t)x->ndim);
    osz[dim] = 1;
    ct_tensor *ones = ct_ones(x->ndim, osz, x->dtype);
    ct_tensor **parts = calloc((size_t)N, sizeof(ct_tensor *));
    if (!parts) return ct__errs(CT_ERR_OOM, "cumprod_backward: out of memory");
    for (int64_t k = 0; k < N; k++) {
        ct_tensor *omitted;
        if (k == 0) {
            ct_tensor *from = ct_cumprod(ct_narrow(x, dim, 1, N - 1), dim, CT_NUM_DTYPES);
            omitted = ct_cat(2, (const ct_tensor *[]){ones, from}, dim);
        } else if (k == N - 1) {
            omitted = ct_prod_dim(ct_narrow(x, dim, 0, k), dim, true, CT_NUM_DTYPES);
        } else {
            ct_tensor *until = ct_prod_dim(ct_narrow(x, dim, 0, k), dim, true, CT_NUM_DTYPES);
            ct_tensor *from = ct_cumprod(ct_narrow(x, dim, k + 1, N - k - 1), dim, CT_NUM_DTYPES);
            omitted = ct_cat(2, (const ct_tensor *[]){until, ct_mul(until, from)}, dim);
        }
        if (cpx) omitted = ct_conj(omitted);
        parts[k] = ct_sum_dim(ct_mul(ct_narrow(g, dim, k, N - k), omitted), 1, (const int64_t[]){dim}, false,
                              CT_NUM_DTYPES);
        if (!parts[k]) { free(parts); return ct_last_status(); }
    }
    gi[0] = ct_stack((int)N, (const ct_tensor *const *)parts, dim);
    free(parts);
    return gi[0] ? 0 : ct_last_status();
}

CT_API ct_tensor *ct_cumprod(const ct_tensor *x, int dim, ct_dtype dtype) {
    CT_CHECK_ARG("cumprod", x);
    if ((unsigned)dtype > CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "cumprod: invalid dtype");
    int d = ct__wrap_dim("cumprod", dim, x->ndim);
    if (d < 0) return NULL;
    ct_dtype odt = dtype != CT_NUM_DTYPES ? dtype : ct_dtype_is_integral(x->dtype, true) ? CT_INT64 : x->dtype;
    ct_tensor *xin = ct__cast_raw(x, odt);
    if (!xin) return NULL;
    ct_tensor *out = scan_raw(CT_OP_CUMPROD, xin, d, odt, NULL);
    /* the backward needs x in the output dtype */
    if (out && is_fc(odt) && ct__needs_grad(1, (const ct_tensor *[]){x}) && odt != x->dtype) {
        ct_release(xin);
        ct_release(out);
        COMPOSITE_BEGIN
        cr_ = ct_cumprod(ct_to_dtype(x, odt), d, CT_NUM_DTYPES);
        COMPOSITE_END
    }
    ct_release(xin);
    return record(out, "CumprodBackward0", cumprod_backward, x, NULL, true, d, 0, 0, NULL);
}

static int cummaxmin_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *idx = ct__unpack(n, 2);
    if (!x || !idx) return ct_last_status();
    if (x->numel == 0 || x->ndim == 0) BW_RET(ct__pass(go[0]));
    ct_dtype gdt = go[0]->dtype;
    if (ct__is_half(gdt)) { /* accumulate in float, as PyTorch's scatter_add does */
        ct_tensor *g32 = ct_to_dtype(go[0], CT_FLOAT32);
        BW_RET(ct_to_dtype(ct_scatter_add(ct_zeros_like(g32), (int)n->i[1], idx, g32), gdt));
    }
    BW_RET(ct_scatter_add(ct_zeros_like(go[0]), (int)n->i[1], idx, go[0]));
}

static ct_tensor *cummaxmin(const char *op, ct_op code, const ct_tensor *x, int dim, ct_tensor **indices,
                            const char *node) {
    if (indices) *indices = NULL;
    CT_CHECK_ARG(op, x);
    if (ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "%s: \"%s_cpu\" not implemented for '%s'", op, op, st_name(x->dtype));
    int d = ct__wrap_dim(op, dim, x->ndim);
    if (d < 0) return NULL;
    ct_tensor *idx = NULL;
    ct_tensor *out = scan_raw(code, x, d, x->dtype, &idx);
    if (!out) return NULL;
    out = record(out, node, cummaxmin_backward, x, NULL, true, d, 0, 0, idx);
    if (!out) { ct_release(idx); return NULL; }
    if (indices) *indices = ct__ret(idx);
    else ct_release(idx);
    return out;
}
CT_API ct_tensor *ct_cummax(const ct_tensor *x, int dim, ct_tensor **indices) {
    return cummaxmin("cummax", CT_OP_CUMMAX, x, dim, indices, "CummaxBackward0");
}
CT_API ct_tensor *ct_cummin(const ct_tensor *x, int dim, ct_tensor **indices) {
    return cummaxmin("cummin", CT_OP_CUMMIN, x, dim, indices, "CumminBackward0");
}

static int logcumsumexp_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0), *res = ct__unpack(n, 1);
    if (!x || !res) return ct_last_status();
    if (x->ndim == 0 || x->numel == 0) BW_RET(ct__pass(go[0]));
    int dim = (int)n->i[1];
    ct_tensor *g = go[0];
    double lowest = g->dtype == CT_FLOAT64 ? -1.79769313486231570815e+308 : g->dtype == CT_FLOAT32 ? -3.40282347e+38
                  : g->dtype == CT_FLOAT16 ? -65504.0 : -3.38953139e+38;
    ct_tensor *gmin = ct_scalar_tensor(lowest, g->dtype);
    ct_tensor *lag = ct_log(ct_abs(g));
    ct_tensor *lpos = ct_where(ct_gt(g, zero_of(g->dtype)), lag, gmin);
    ct_tensor *lneg = ct_where(ct_lt(g, zero_of(g->dtype)), lag, gmin);
    ct_tensor *rp = flipd(ct_logcumsumexp(flipd(ct_sub(lpos, res), dim), dim), dim);
    ct_tensor *rn = flipd(ct_logcumsumexp(flipd(ct_sub(lneg, res), dim), dim), dim);
    BW_RET(ct_sub(ct_exp(ct_add(rp, x)), ct_exp(ct_add(rn, x))));
}

CT_API ct_tensor *ct_logcumsumexp(const ct_tensor *x, int dim) {
    CT_CHECK_ARG("logcumsumexp", x);
    if (!ct_dtype_is_floating(x->dtype))
        return ct__err(CT_ERR_DTYPE, "logcumsumexp: \"logcumsumexp_out_cpu\" not implemented for '%s'", st_name(x->dtype));
    int d = ct__wrap_dim("logcumsumexp", dim, x->ndim);
    if (d < 0) return NULL;
    ct_tensor *out = scan_raw(CT_OP_LOGCUMSUMEXP, x, d, x->dtype, NULL);
    return record(out, "LogcumsumexpBackward0", logcumsumexp_backward, x, NULL, true, d, 0, 0, NULL);
}
