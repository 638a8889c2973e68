/* Unary elementwise ops with autograd. */
#include <math.h>

#include "ops/elementwise.h"

/* Records a one-input node on out (raw result) and registers it. */
static ct_tensor *record1(ct_tensor *out, const char *node_name, ct_backward_fn fn, const ct_tensor *x, bool save_x,
                          bool save_out) {
    if (!out) return NULL;
    if (ct__needs_grad(1, (const ct_tensor *[]){x}) && (ct_dtype_is_floating(out->dtype) || ct_dtype_is_complex(out->dtype))) {
        ct_node *n = ct__node_new(node_name, fn, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_save_meta(n, 0, x) || (save_x && ct__save(n, x) < 0) ||
            (save_out && ct__save_output(n, out, 0) < 0)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

static int neg_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    CT_UNUSED(n);
    gi[0] = ct_neg(go[0]);
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_neg(const ct_tensor *x) {
    CT_CHECK_ARG("neg", x);
    if (x->dtype == CT_BOOL)
        return ct__err(CT_ERR_DTYPE, "neg: Negation, the `-` operator, on a bool tensor is not supported. If you are "
                                     "trying to invert a mask, use the `~` or `logical_not()` operator instead.");
    return record1(ct__unary_raw(CT_OP_NEG, "neg", x, CT_EW_SAME, NULL), "NegBackward0", neg_backward, x, false, false);
}
CT_DEFINE_UNARY_VARIANTS(neg)

static int conj_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    CT_UNUSED(n);
    gi[0] = ct_conj(go[0]);
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_conj(const ct_tensor *x) {
    CT_CHECK_ARG("conj", x);
    if (!ct_dtype_is_complex(x->dtype)) return ct__ret(ct_retain((ct_tensor *)x)); /* conj of real is a no-op */
    return record1(ct__unary_raw(CT_OP_CONJ, "conj", x, CT_EW_SAME, NULL), "ConjBackward0", conj_backward, x, false,
                   false);
}
CT_DEFINE_UNARY_VARIANTS(conj)

static int real_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    CT_UNUSED(n);
    gi[0] = ct_to_dtype(go[0], n->in_meta[0].dtype); /* real grad -> complex with zero imaginary part */
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_real(const ct_tensor *x) {
    CT_CHECK_ARG("real", x);
    if (!ct_dtype_is_complex(x->dtype)) return ct__ret(ct_retain((ct_tensor *)x));
    return record1(ct__unary_raw(CT_OP_REAL, "real", x, CT_EW_TO_REAL, NULL), "RealBackward0", real_backward, x, false,
                   false);
}
