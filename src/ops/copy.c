/* Conversions and copies: to(dtype), clone, contiguous, copy_, fill_, zero_. */
#include "ops/elementwise.h"
#include "core/iter.h"

static int to_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_dtype in = n->in_meta[0].dtype;
    ct_tensor *g = go[0];
    if (ct_dtype_is_complex(g->dtype) && !ct_dtype_is_complex(in)) g = ct_real(g);
    gi[0] = ct_to_dtype(g, in);
    return gi[0] ? 0 : ct_last_status();
}

static int identity_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    CT_UNUSED(n);
    gi[0] = ct__pass(go[0]);
    return 0;
}

/* A fresh contiguous copy of x in dtype dt, recorded as node_name. */
static ct_tensor *copy_as(const char *node_name, const ct_tensor *x, ct_dtype dt, ct_backward_fn fn) {
    ct_tensor *r = ct__empty_raw(x->ndim, x->sizes, dt);
    if (!r) return NULL;
    if (ct__copy_raw(r, x)) { ct_release(r); return NULL; }
    if (ct__needs_grad(1, (const ct_tensor *[]){x}) && (ct_dtype_is_floating(dt) || ct_dtype_is_complex(dt))) {
        ct_node *n = ct__node_new(node_name, fn, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_save_meta(n, 0, x)) {
            if (n) ct__node_release(n);
            ct_release(r);
            return NULL;
        }
        ct__set_history(r, n, 0);
    }
    return ct__ret(r);
}

CT_API ct_tensor *ct_to_dtype(const ct_tensor *x, ct_dtype dt) {
    CT_CHECK_ARG("to", x);
    if ((unsigned)dt >= CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "to: invalid dtype %d", (int)dt);
    if (x->dtype == dt) return ct__ret(ct_retain((ct_tensor *)x));
    return copy_as("ToCopyBackward0", x, dt, to_backward);
}

CT_API ct_tensor *ct_clone(const ct_tensor *x) {
    CT_CHECK_ARG("clone", x);
    return copy_as("CloneBackward0", x, x->dtype, identity_backward);
}

CT_API ct_tensor *ct_contiguous(const ct_tensor *x) {
    CT_CHECK_ARG("contiguous", x);
    if (ct__is_contiguous(x)) return ct__ret(ct_retain((ct_tensor *)x));
    return copy_as("CloneBackward0", x, x->dtype, identity_backward);
}

CT_API int ct_copy_(ct_tensor *dst, const ct_tensor *src) {
    CT_CHECK_ARG_S("copy_", dst);
    CT_CHECK_ARG_S("copy_", src);
    int rc = ct__check_inplace("copy_", dst);
    if (rc) return rc;
    if (!ct__needs_grad(2, (const ct_tensor *[]){dst, src})) {
        int64_t shape[CT_MAX_DIMS];
        int nd = ct__broadcast_shapes("copy_", dst->ndim, dst->sizes, src->ndim, src->sizes, shape);
        if (nd < 0) return ct_last_status();
        if (!ct__same_sizes(nd, shape, dst->ndim, dst->sizes))
            return ct__errs(CT_ERR_SHAPE, "copy_: source of shape %s cannot be broadcast to destination shape %s",
                            CT_SHAPESTR(src), CT_SHAPESTR(dst));
        if ((rc = ct__copy_raw(dst, src))) return rc;
        ct__bump_version(dst);
        return 0;
    }
    if (ct_scope_begin()) return ct_last_status();
    ct_tensor *r = ct_clone(ct_expand(ct_to_dtype(src, dst->dtype), dst->ndim, dst->sizes));
    rc = r ? ct__commit_inplace("copy_", dst, r) : ct_last_status();
    ct_scope_end();
    return rc;
}

CT_API int ct_fill_(ct_tensor *dst, double v) {
    CT_CHECK_ARG_S("fill_", dst);
    int rc = ct__check_inplace("fill_", dst);
    if (rc) return rc;
    if ((rc = ct__fill_raw(dst, v))) return rc;
    return ct__inplace_constant(dst, "FillBackward0");
}

CT_API int ct_zero_(ct_tensor *dst) { return ct_fill_(dst, 0); }
