/* add, sub, mul, div and their scalar shorthands, with autograd.
 * Backward formulas use public ops; the engine reduces broadcast gradients to each
 * input's shape and dtype (validate_grad), so formulas stay one line each. */
#include <math.h>

#include "ops/elementwise.h"

/* ---- add / sub: alpha in d[0] ---- */
static int add_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    double alpha = n->d[0];
    if (ct__node_needs(n, 0)) gi[0] = ct__pass(go[0]);
    if (ct__node_needs(n, 1)) gi[1] = alpha == 1.0 ? ct__pass(go[0]) : ct_mul_scalar(go[0], alpha);
    return (ct__node_needs(n, 1) && !gi[1]) ? ct_last_status() : 0;
}

static ct_tensor *addsub(const char *name, const char *node_name, ct_op op, const ct_tensor *a, const ct_tensor *b,
                         double alpha) {
    CT_CHECK_ARG(name, a);
    CT_CHECK_ARG(name, b);
    if (op == CT_OP_SUB && a->dtype == CT_BOOL && b->dtype == CT_BOOL)
        return ct__err(CT_ERR_DTYPE, "%s: Subtraction, the `-` operator, with two bool tensors is not supported. "
                                     "Use the `^` or `logical_xor()` operator instead.", name);
    ct_tensor *out = ct__binary_raw(op, name, a, b, CT_EW_SAME, (double[4]){alpha});
    if (!out) return NULL;
    if (ct__needs_grad(2, (const ct_tensor *[]){a, b})) {
        ct_node *n = ct__node_new(node_name, add_backward, 2);
        if (!n || ct__node_set_next(n, 0, a) || ct__node_set_next(n, 1, b)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        n->d[0] = op == CT_OP_SUB ? -alpha : alpha;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

CT_API ct_tensor *ct_add(const ct_tensor *a, const ct_tensor *b) { return addsub("add", "AddBackward0", CT_OP_ADD, a, b, 1.0); }
CT_API ct_tensor *ct_sub(const ct_tensor *a, const ct_tensor *b) { return addsub("sub", "SubBackward0", CT_OP_SUB, a, b, 1.0); }
CT_API ct_tensor *ct_add_alpha(const ct_tensor *a, const ct_tensor *b, double alpha) {
    return addsub("add", "AddBackward0", CT_OP_ADD, a, b, alpha);
}
CT_API ct_tensor *ct_sub_alpha(const ct_tensor *a, const ct_tensor *b, double alpha) {
    return addsub("sub", "SubBackward0", CT_OP_SUB, a, b, alpha);
}
CT_DEFINE_BINARY_VARIANTS_DIRECT(add, CT_OP_ADD, CT_EW_SAME, ((double[4]){1.0}))
CT_DEFINE_BINARY_VARIANTS_DIRECT(sub, CT_OP_SUB, CT_EW_SAME, ((double[4]){1.0}))

CT_API int ct_add_alpha_(ct_tensor *self, const ct_tensor *b, double alpha) {
    int rc = ct__check_inplace_binary("add_", self, b);
    if (!rc) rc = ct__inplace_binary_direct(CT_OP_ADD, "add_", self, b, CT_EW_SAME, (double[4]){alpha});
    if (rc <= 0) return rc;
    if (ct_scope_begin()) return ct_last_status();
    rc = ct__commit_inplace("add_", self, ct_add_alpha(self, b, alpha));
    ct_scope_end();
    return rc;
}

/* ---- mul ---- */
static int mul_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    if (ct__node_needs(n, 0)) {
        ct_tensor *b = ct__unpack(n, 1);
        if (!b || !(gi[0] = ct_mul(go[0], ct_dtype_is_complex(b->dtype) ? ct_conj(b) : b))) return ct_last_status();
    }
    if (ct__node_needs(n, 1)) {
        ct_tensor *a = ct__unpack(n, 0);
        if (!a || !(gi[1] = ct_mul(go[0], ct_dtype_is_complex(a->dtype) ? ct_conj(a) : a))) return ct_last_status();
    }
    return 0;
}

CT_API ct_tensor *ct_mul(const ct_tensor *a, const ct_tensor *b) {
    ct_tensor *out = ct__binary_raw(CT_OP_MUL, "mul", a, b, CT_EW_SAME, NULL);
    if (!out) return NULL;
    if (ct__needs_grad(2, (const ct_tensor *[]){a, b})) {
        ct_node *n = ct__node_new("MulBackward0", mul_backward, 2);
        /* a is needed only for b's gradient and b only for a's */
        if (!n || ct__node_set_next(n, 0, a) || ct__node_set_next(n, 1, b) ||
            ct__save_if(n, a, ct__node_needs(n, 1)) < 0 || ct__save_if(n, b, ct__node_needs(n, 0)) < 0) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}
CT_DEFINE_BINARY_VARIANTS_DIRECT(mul, CT_OP_MUL, CT_EW_SAME, NULL)

/* ---- div (true division) ---- */
static int div_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *b = ct__unpack(n, 1);
    if (!b) return ct_last_status();
    if (ct_dtype_is_complex(b->dtype)) b = ct_conj(b);
    if (ct__node_needs(n, 0) && !(gi[0] = ct_div(go[0], b))) return ct_last_status();
    if (ct__node_needs(n, 1)) {
        ct_tensor *a = ct__unpack(n, 0);
        if (!a) return ct_last_status();
        if (ct_dtype_is_complex(a->dtype)) a = ct_conj(a);
        /* -grad * a / b^2 */
        gi[1] = ct_neg(ct_div(ct_mul(go[0], a), ct_mul(b, b)));
        if (!gi[1]) return ct_last_status();
    }
    return 0;
}

CT_API ct_tensor *ct_div(const ct_tensor *a, const ct_tensor *b) {
    ct_tensor *out = ct__binary_raw(CT_OP_DIV, "div", a, b, CT_EW_FLOAT, NULL);
    if (!out) return NULL;
    if (ct__needs_grad(2, (const ct_tensor *[]){a, b})) {
        ct_node *n = ct__node_new("DivBackward0", div_backward, 2);
        if (!n || ct__node_set_next(n, 0, a) || ct__node_set_next(n, 1, b) ||
            ct__save_if(n, a, ct__node_needs(n, 1)) < 0 || ct__save(n, b) < 0) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}
CT_DEFINE_BINARY_VARIANTS_DIRECT(div, CT_OP_DIV, CT_EW_FLOAT, NULL)

/* ---- scalar shorthands: a Python-float scalar, as torch.add(t, 2.5) ---- */
static ct_tensor *with_scalar(ct_binary_fn fn, const ct_tensor *a, double s, bool reversed) {
    CT_CHECK_ARG("scalar op", a);
    ct_tensor *sc = ct_float(s);
    if (!sc) return NULL;
    sc = ct__scope_take(sc);
    ct_tensor *r = reversed ? fn(sc, a) : fn(a, sc);
    ct_release(sc);
    return r;
}
CT_API ct_tensor *ct_add_scalar(const ct_tensor *a, double s) { return with_scalar(ct_add, a, s, false); }
CT_API ct_tensor *ct_sub_scalar(const ct_tensor *a, double s) { return with_scalar(ct_sub, a, s, false); }
CT_API ct_tensor *ct_mul_scalar(const ct_tensor *a, double s) { return with_scalar(ct_mul, a, s, false); }
CT_API ct_tensor *ct_div_scalar(const ct_tensor *a, double s) { return with_scalar(ct_div, a, s, false); }
CT_API ct_tensor *ct_rsub_scalar(const ct_tensor *a, double s) { return with_scalar(ct_sub, a, s, true); }
