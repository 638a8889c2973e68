/* Reductions: front ends (dims, dtype rules, autograd). */
#include "ops/reduce.h"

int ct__reduce_dims(const char *op, const ct_tensor *x, int ndims, const int64_t *dims, bool *mask) {
    int nd = x->ndim;
    for (int d = 0; d < nd; d++) mask[d] = ndims == 0;
    for (int i = 0; i < ndims; i++) {
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

/* ivec: reduce mask; i[0]: keepdim */
static int sum_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    gi[0] = ct__grad_expand_reduced(go[0], n->in_meta[0].ndim, n->in_meta[0].sizes, n->ivec, n->i[0]);
    return gi[0] ? 0 : ct_last_status();
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

CT_API ct_tensor *ct_sum_dim(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim, ct_dtype dtype) {
    CT_CHECK_ARG("sum", x);
    bool mask[CT_MAX_DIMS];
    if (ct__reduce_dims("sum", x, ndims, dims, mask)) return NULL;
    ct_dtype odt = dtype != CT_NUM_DTYPES ? dtype : ct_dtype_is_integral(x->dtype, true) ? CT_INT64 : x->dtype;
    ct_tensor *xin = ct__cast_raw(x, dtype != CT_NUM_DTYPES ? dtype : x->dtype);
    if (!xin) return NULL;
    ct_tensor *out = ct__reduce_raw(CT_OP_SUM, xin, mask, keepdim, odt);
    ct_release(xin);
    if (!out) return NULL;
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new(ndims ? "SumBackward1" : "SumBackward0", sum_backward, 1);
        int64_t km[CT_MAX_DIMS];
        for (int d = 0; d < x->ndim; d++) km[d] = mask[d];
        if (!n || ct__node_set_next(n, 0, x) || ct__node_save_meta(n, 0, x) || ct__node_set_ivec(n, x->ndim, km)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        n->i[0] = keepdim;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

CT_API ct_tensor *ct_sum(const ct_tensor *x) { return ct_sum_dim(x, 0, NULL, false, CT_NUM_DTYPES); }
