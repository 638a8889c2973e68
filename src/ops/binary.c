/* Binary elementwise ops beyond add/sub/mul/div: rounding divisions, pow, atan2,
 * hypot, fmod, remainder, maximum/minimum/fmax/fmin, xlogy, comparisons, logical and
 * bitwise ops; with autograd following PyTorch's derivatives.yaml, written with
 * public ops so double backward works. */
#include <math.h>

#include "ops/elementwise.h"

/* ---- shared helpers ---- */
static ct_tensor *cj(ct_tensor *t) { return t && ct_dtype_is_complex(t->dtype) ? ct_conj(t) : t; }
static ct_tensor *zero_like0(const ct_tensor *g) { return ct_scalar_tensor(0.0, g->dtype); }
#define TRY(x) do { if (!(x)) return ct_last_status(); } while (0)

/* Records a node over inputs a, b (both saved; out saved too if save_out) on a raw
 * result and registers it. Only floating/complex results carry history. */
/* Ops whose inputs promote and whose result has no gradient (comparisons, logic). */
static ct_tensor *nograd2(ct_op op, const char *name, const ct_tensor *a, const ct_tensor *b, ct_ew_kind kind) {
    ct_tensor *out = ct__binary_raw(op, name, a, b, kind, NULL);
    return out ? ct__ret(out) : NULL;
}

/* ---- div with rounding mode, floor_divide ---- */
static int div_round_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    for (int i = 0; i < 2; i++)
        if (ct__node_needs(n, i)) TRY(gi[i] = ct_zeros_like(go[0]));
    return 0;
}
static int not_implemented_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    CT_UNUSED(go);
    CT_UNUSED(gi);
    return ct__errs(CT_ERR_AUTOGRAD, "the derivative for '%s' is not implemented.", n->name);
}

static ct_tensor *div_rounding(const char *name, const ct_tensor *a, const ct_tensor *b, bool floor_mode,
                               bool differentiable) {
    ct_tensor *out = ct__binary_raw(floor_mode ? CT_OP_DIV_FLOOR : CT_OP_DIV_TRUNC, name, a, b, CT_EW_REAL, NULL);
    if (differentiable) return ct__record_binary(out, "DivBackward2", div_round_backward, a, b, false, 0);
    return ct__record_binary(out, "floor_divide", not_implemented_backward, a, b, false, 0);
}

CT_API ct_tensor *ct_div_mode(const ct_tensor *a, const ct_tensor *b, const char *mode) {
    CT_CHECK_ARG("div", a);
    CT_CHECK_ARG("div", b);
    if (!mode) return ct_div(a, b);
    if (!strcmp(mode, "trunc")) return div_rounding("div", a, b, false, true);
    if (!strcmp(mode, "floor")) return div_rounding("div", a, b, true, true);
    return ct__err(CT_ERR_ARG, "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '%s'", mode);
}

CT_API ct_tensor *ct_floor_divide(const ct_tensor *a, const ct_tensor *b) {
    return div_rounding("floor_divide", a, b, true, false);
}
CT_DEFINE_BINARY_VARIANTS(floor_divide)

/* ---- pow ---- */
/* d[0] = 1 if the exponent is a Python-like scalar whose value is d[1] */
static int pow_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *a = ct__unpack(n, 0), *e = ct__unpack(n, 1);
    TRY(a && e);
    if (ct__node_needs(n, 0)) {
        ct_tensor *g;
        if (n->d[0] != 0) { /* scalar exponent: grad * (e * a^(e-1)).conj(), zero for e == 0 */
            double ev = n->d[1];
            g = ev == 0 ? ct_zeros_like(go[0])
                        : ct_mul(go[0], cj(ct_mul_scalar(ct_pow_scalar(a, ev - 1.0), ev)));
        } else {
            ct_tensor *d = cj(ct_mul(e, ct_pow(a, ct_sub_scalar(e, 1.0))));
            ct_tensor *z = ct_eq(e, ct_int(0));
            g = ct_where(z, zero_like0(go[0]), ct_mul(go[0], d));
        }
        TRY(gi[0] = g);
    }
    if (ct__node_needs(n, 1)) {
        /* grad * result * log(a), zero where a == 0 and the exponent is >= 0 */
        ct_tensor *r = ct__unpack(n, 2);
        TRY(r);
        ct_tensor *cond;
        if (ct_dtype_is_complex(e->dtype))
            cond = ct_logical_and(ct_eq(ct_imag(e), ct_int(0)), ct_ge(ct_real(e), ct_int(0)));
        else cond = ct_ge(e, ct_int(0));
        ct_tensor *ap = ct_to_dtype(a, r->dtype);
        ct_tensor *mask = ct_logical_and(cond, ct_eq(ap, ct_int(0)));
        ct_tensor *val = ct_mul(go[0], cj(ct_mul(r, ct_log(ap))));
        TRY(gi[1] = ct_where(mask, zero_like0(go[0]), val));
    }
    return 0;
}

CT_API ct_tensor *ct_pow(const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG("pow", a);
    CT_CHECK_ARG("pow", b);
    bool scalar_exp = b->is_wrapped_number && !ct_dtype_is_complex(b->dtype);
    double ev = scalar_exp ? ct_item(b) : 0;
    if (scalar_exp && ct_dtype_is_integral(a->dtype, true) && ct_dtype_is_integral(b->dtype, true) && ev < 0)
        return ct__err(CT_ERR_ARG, "pow: Integers to negative integer powers are not allowed.");
    /* bool ** bool exists only with a Python-bool exponent (torch.pow(bool_tensor, True)) */
    if (!b->is_wrapped_number && ct__result_type(2, (const ct_tensor *[]){a, b}) == CT_BOOL)
        return ct__err(CT_ERR_DTYPE, "pow: not implemented for 'bool'");
    ct_tensor *out = ct__binary_raw(CT_OP_POW, "pow", a, b, CT_EW_SAME, NULL);
    if (!out) return NULL;
    if (ct__needs_grad(2, (const ct_tensor *[]){a, b}) &&
        (ct_dtype_is_floating(out->dtype) || ct_dtype_is_complex(out->dtype))) {
        ct_node *n = ct__node_new(scalar_exp ? "PowBackward0" : (a->is_wrapped_number ? "PowBackward2" : "PowBackward1"),
                                  pow_backward, 2);
        if (!n || ct__node_set_next(n, 0, a) || ct__node_set_next(n, 1, b) || ct__save(n, a) < 0 ||
            ct__save(n, b) < 0 || ct__save_output(n, out, 0) < 0) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        n->d[0] = scalar_exp;
        n->d[1] = ev;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}
CT_DEFINE_BINARY_VARIANTS(pow)

CT_API ct_tensor *ct_pow_scalar(const ct_tensor *a, double exponent) {
    CT_CHECK_ARG("pow", a);
    ct_tensor *e = ct_float(exponent);
    if (!e) return NULL;
    e = ct__scope_take(e);
    ct_tensor *r = ct_pow(a, e);
    ct_release(e);
    return r;
}

/* ---- atan2, hypot ---- */
static int atan2_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *a = ct__unpack(n, 0), *b = ct__unpack(n, 1);
    TRY(a && b);
    ct_tensor *den = ct_add(ct_mul(a, a), ct_mul(b, b));
    if (ct__node_needs(n, 0)) TRY(gi[0] = ct_div(ct_mul(go[0], b), den));
    if (ct__node_needs(n, 1)) TRY(gi[1] = ct_div(ct_mul(go[0], ct_neg(a)), den));
    return 0;
}
CT_API ct_tensor *ct_atan2(const ct_tensor *a, const ct_tensor *b) {
    return ct__record_binary(ct__binary_raw(CT_OP_ATAN2, "atan2", a, b, CT_EW_FLOAT_REAL, NULL), "Atan2Backward0", atan2_backward,
                   a, b, false, 0);
}
CT_DEFINE_BINARY_VARIANTS(atan2)

static int hypot_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *r = ct__unpack(n, 2);
    TRY(r);
    for (int i = 0; i < 2; i++)
        if (ct__node_needs(n, i)) {
            ct_tensor *x = ct__unpack(n, i);
            TRY(x && (gi[i] = ct_div(ct_mul(go[0], x), r)));
        }
    return 0;
}
CT_API ct_tensor *ct_hypot(const ct_tensor *a, const ct_tensor *b) {
    return ct__record_binary(ct__binary_raw(CT_OP_HYPOT, "hypot", a, b, CT_EW_REAL, NULL), "HypotBackward0", hypot_backward, a, b,
                   true, 0);
}
CT_DEFINE_BINARY_VARIANTS(hypot)

/* ---- fmod / remainder: d[0] = 1 for floor (remainder) ---- */
static int mod_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    if (ct__node_needs(n, 0)) TRY(gi[0] = ct__pass(go[0]));
    if (ct__node_needs(n, 1)) {
        ct_tensor *a = ct__unpack(n, 0), *b = ct__unpack(n, 1);
        TRY(a && b);
        TRY(gi[1] = ct_neg(ct_mul(go[0], ct_div_mode(a, b, n->d[0] != 0 ? "floor" : "trunc"))));
    }
    return 0;
}
CT_API ct_tensor *ct_fmod(const ct_tensor *a, const ct_tensor *b) {
    return ct__record_binary(ct__binary_raw(CT_OP_FMOD, "fmod", a, b, CT_EW_REAL, NULL), "FmodBackward1", mod_backward, a, b,
                   false, 0);
}
CT_DEFINE_BINARY_VARIANTS(fmod)
CT_API ct_tensor *ct_remainder(const ct_tensor *a, const ct_tensor *b) {
    return ct__record_binary(ct__binary_raw(CT_OP_REMAINDER, "remainder", a, b, CT_EW_REAL, NULL), "RemainderBackward1",
                   mod_backward, a, b, false, 1);
}
CT_DEFINE_BINARY_VARIANTS(remainder)

/* ---- maximum / minimum / fmax / fmin ----
 * d[0]: 0 maximum, 1 minimum, 2 fmax, 3 fmin. Ties split the gradient in halves. */
static int minmax_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *a = ct__unpack(n, 0), *b = ct__unpack(n, 1);
    TRY(a && b);
    int kind = (int)n->d[0];
    ct_tensor *z = zero_like0(go[0]);
    ct_tensor *t = ct_where(ct_eq(a, b), ct_mul_scalar(go[0], 0.5), go[0]);
    TRY(z && t);
    for (int i = 0; i < 2; i++) {
        if (!ct__node_needs(n, i)) continue;
        ct_tensor *x = i == 0 ? a : b, *y = i == 0 ? b : a;
        if (kind < 2) { /* zero where this input lost */
            ct_tensor *lost = kind == 0 ? ct_lt(x, y) : ct_gt(x, y);
            TRY(gi[i] = ct_where(lost, z, t));
        } else {
            /* fmax: self keeps (a >= b) | isnan(b); other is zero where (a > b) | isnan(b) */
            ct_tensor *bnan = ct_ne(b, b);
            ct_tensor *cmp = kind == 2 ? (i == 0 ? ct_ge(a, b) : ct_gt(a, b)) : (i == 0 ? ct_le(a, b) : ct_lt(a, b));
            ct_tensor *sel = ct_logical_or(cmp, bnan);
            TRY(gi[i] = i == 0 ? ct_where(sel, t, z) : ct_where(sel, z, t));
        }
    }
    return 0;
}
static ct_tensor *minmax(ct_op op, const char *name, const char *node, int kind, const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG(name, a);
    CT_CHECK_ARG(name, b);
    if (ct_dtype_is_complex(a->dtype) || ct_dtype_is_complex(b->dtype))
        return ct__err(CT_ERR_DTYPE, "%s not implemented for complex tensors.", name);
    return ct__record_binary(ct__binary_raw(op, name, a, b, CT_EW_REAL, NULL), node, minmax_backward, a, b, false, kind);
}
CT_API ct_tensor *ct_maximum(const ct_tensor *a, const ct_tensor *b) {
    return minmax(CT_OP_MAXIMUM, "maximum", "MaximumBackward0", 0, a, b);
}
CT_API ct_tensor *ct_minimum(const ct_tensor *a, const ct_tensor *b) {
    return minmax(CT_OP_MINIMUM, "minimum", "MinimumBackward0", 1, a, b);
}
CT_API ct_tensor *ct_fmax(const ct_tensor *a, const ct_tensor *b) { return minmax(CT_OP_FMAX, "fmax", "FmaxBackward0", 2, a, b); }
CT_API ct_tensor *ct_fmin(const ct_tensor *a, const ct_tensor *b) { return minmax(CT_OP_FMIN, "fmin", "FminBackward0", 3, a, b); }
CT_DEFINE_BINARY_VARIANTS(maximum)
CT_DEFINE_BINARY_VARIANTS(minimum)
CT_DEFINE_BINARY_VARIANTS(fmax)
CT_DEFINE_BINARY_VARIANTS(fmin)

/* ---- xlogy ---- */
static int xlogy_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *a = ct__unpack(n, 0), *b = ct__unpack(n, 1);
    TRY(a && b);
    if (ct__node_needs(n, 0)) {
        ct_tensor *mask = ct_logical_and(ct_eq(a, ct_int(0)), ct_le(b, ct_int(0)));
        TRY(gi[0] = ct_where(mask, zero_like0(go[0]), ct_xlogy(go[0], b)));
    }
    if (ct__node_needs(n, 1)) TRY(gi[1] = ct_div(ct_mul(go[0], a), b));
    return 0;
}
CT_API ct_tensor *ct_xlogy(const ct_tensor *a, const ct_tensor *b) {
    return ct__record_binary(ct__binary_raw(CT_OP_XLOGY, "xlogy", a, b, CT_EW_FLOAT_REAL, NULL), "XlogyBackward0", xlogy_backward,
                   a, b, false, 0);
}
CT_DEFINE_BINARY_VARIANTS(xlogy)

/* ---- logaddexp, logaddexp2 (d[0] = 1 for base 2), copysign ----
 * d/da log(e^a + e^b) = 1 / (1 + e^(b - a)); base 2 the same with 2^(b - a); complex
 * (logaddexp only): grad / conj(1 + e^(b - a)), as PyTorch's derivatives.yaml. */
static int logaddexp_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *a = ct__unpack(n, 0), *b = ct__unpack(n, 1);
    TRY(a && b);
    for (int i = 0; i < 2; i++) {
        if (!ct__node_needs(n, i)) continue;
        ct_tensor *d = i == 0 ? ct_sub(b, a) : ct_sub(a, b);
        ct_tensor *e = n->d[0] != 0 ? ct_exp2(d) : ct_exp(d);
        TRY(gi[i] = ct_div(go[0], ct_conj(ct_add_scalar(e, 1.0))));
    }
    return 0;
}
CT_API ct_tensor *ct_logaddexp(const ct_tensor *a, const ct_tensor *b) {
    return ct__record_binary(ct__binary_raw(CT_OP_LOGADDEXP, "logaddexp", a, b, CT_EW_SAME, NULL), "LogaddexpBackward0",
                             logaddexp_backward, a, b, false, 0);
}
CT_DEFINE_BINARY_VARIANTS(logaddexp)
CT_API ct_tensor *ct_logaddexp2(const ct_tensor *a, const ct_tensor *b) {
    return ct__record_binary(ct__binary_raw(CT_OP_LOGADDEXP2, "logaddexp2", a, b, CT_EW_REAL, NULL),
                             "Logaddexp2Backward0", logaddexp_backward, a, b, false, 1);
}
CT_DEFINE_BINARY_VARIANTS(logaddexp2)

/* copysign: d/da = result / a (+-1), 0 where a == 0 (PyTorch's choice); b gets zeros */
static int copysign_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    if (ct__node_needs(n, 0)) {
        ct_tensor *a = ct__unpack(n, 0), *r = ct__unpack(n, 2);
        TRY(a && r);
        TRY(gi[0] = ct_mul(go[0], ct_where(ct_eq(a, ct_int(0)), zero_like0(go[0]), ct_div(r, a))));
    }
    if (ct__node_needs(n, 1)) {
        ct_tensor *b = ct__unpack(n, 1);
        TRY(b && (gi[1] = ct_zeros_like(b)));
    }
    return 0;
}
CT_API ct_tensor *ct_copysign(const ct_tensor *a, const ct_tensor *b) {
    return ct__record_binary(ct__binary_raw(CT_OP_COPYSIGN, "copysign", a, b, CT_EW_FLOAT_REAL, NULL),
                             "CopysignBackward0", copysign_backward, a, b, true, 0);
}
CT_DEFINE_BINARY_VARIANTS(copysign)

/* ---- comparisons, logical and bitwise ops: never differentiable ---- */
#define NOGRAD_BINARY(name, OP, KIND)                                                                    \
    CT_API ct_tensor *ct_##name(const ct_tensor *a, const ct_tensor *b) { return nograd2(OP, #name, a, b, KIND); } \
    CT_DEFINE_BINARY_VARIANTS(name)
NOGRAD_BINARY(eq, CT_OP_EQ, CT_EW_BOOL_OUT)
NOGRAD_BINARY(ne, CT_OP_NE, CT_EW_BOOL_OUT)
NOGRAD_BINARY(lt, CT_OP_LT, CT_EW_BOOL_OUT)
NOGRAD_BINARY(le, CT_OP_LE, CT_EW_BOOL_OUT)
NOGRAD_BINARY(gt, CT_OP_GT, CT_EW_BOOL_OUT)
NOGRAD_BINARY(ge, CT_OP_GE, CT_EW_BOOL_OUT)
NOGRAD_BINARY(logical_and, CT_OP_LOGICAL_AND, CT_EW_LOGICAL)
NOGRAD_BINARY(logical_or, CT_OP_LOGICAL_OR, CT_EW_LOGICAL)
NOGRAD_BINARY(logical_xor, CT_OP_LOGICAL_XOR, CT_EW_LOGICAL)
NOGRAD_BINARY(bitwise_and, CT_OP_BITWISE_AND, CT_EW_INTEGRAL)
NOGRAD_BINARY(bitwise_or, CT_OP_BITWISE_OR, CT_EW_INTEGRAL)
NOGRAD_BINARY(bitwise_xor, CT_OP_BITWISE_XOR, CT_EW_INTEGRAL)
NOGRAD_BINARY(bitwise_left_shift, CT_OP_BITWISE_LSHIFT, CT_EW_INTEGRAL)
NOGRAD_BINARY(bitwise_right_shift, CT_OP_BITWISE_RSHIFT, CT_EW_INTEGRAL)
