/* Unary elementwise ops with autograd (torch.<name>), following PyTorch's dtype rules
 * and tools/autograd/derivatives.yaml (complex: grad * conj(f'(z))). */
#include <float.h>
#include <math.h>

#include "ops/elementwise.h"

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
    return ct__record_unary(ct__unary_raw(CT_OP_NEG, "neg", x, CT_EW_SAME, NULL), "NegBackward0", neg_backward, x, false, false, NULL);
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
    return ct__record_unary(ct__unary_raw(CT_OP_CONJ, "conj", x, CT_EW_SAME, NULL), "ConjBackward0", conj_backward, x, false,
                   false, NULL);
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
    return ct__record_unary(ct__unary_raw(CT_OP_REAL, "real", x, CT_EW_TO_REAL, NULL), "RealBackward0", real_backward, x, false,
                   false, NULL);
}

/* ---- helpers for backward formulas ---- */
static ct_tensor *cj(ct_tensor *t) { return t && ct_dtype_is_complex(t->dtype) ? ct_conj(t) : t; }

/* Unpacks x (slot 0 if saved) and the output (next slot if saved). */
static int unpack_xy(ct_node *n, ct_tensor **x, ct_tensor **y) {
    int f = (int)n->i[CT_NODE_I - 1], slot = 0;
    *x = *y = NULL;
    if (f & 1) { if (!(*x = ct__unpack(n, slot++))) return ct_last_status(); }
    if (f & 2) { if (!(*y = ct__unpack(n, slot))) return ct_last_status(); }
    return 0;
}

#define UNARY_BACKWARD(name, EXPR)                                                     \
    static int name##_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {     \
        ct_tensor *g = go[0], *x, *y;                                                  \
        int rc_ = unpack_xy(n, &x, &y);                                                \
        if (rc_) return rc_;                                                           \
        (void)g; (void)x; (void)y;                                                     \
        gi[0] = (EXPR);                                                                \
        return gi[0] ? 0 : ct_last_status();                                          \
    }

/* A differentiable unary op: kernel OPC, dtype rule KIND, saved x / output flags. */
#define UNARY_OP(name, OPC, KIND, NODE, SX, SY, EXPR)                                                     \
    UNARY_BACKWARD(name, EXPR)                                                                            \
    CT_API ct_tensor *ct_##name(const ct_tensor *x) {                                                     \
        CT_CHECK_ARG(#name, x);                                                                           \
        return ct__record_unary(ct__unary_raw(CT_OP_##OPC, #name, x, KIND, NULL), NODE, name##_backward, x, SX, SY, NULL); \
    }                                                                                                     \
    CT_DEFINE_UNARY_VARIANTS(name)

#define SQ(t) ct_mul((t), (t))

UNARY_OP(sqrt, SQRT, CT_EW_FLOAT, "SqrtBackward0", false, true, ct_div(g, ct_mul_scalar(cj(y), 2.0)))
UNARY_OP(rsqrt, RSQRT, CT_EW_FLOAT, "RsqrtBackward0", false, true,
         ct_mul(ct_mul_scalar(g, -0.5), cj(ct_mul(SQ(y), y))))
UNARY_OP(reciprocal, RECIPROCAL, CT_EW_FLOAT, "ReciprocalBackward0", false, true, ct_neg(ct_mul(g, cj(SQ(y)))))
UNARY_OP(exp, EXP, CT_EW_FLOAT, "ExpBackward0", false, true, ct_mul(g, cj(y)))
UNARY_OP(exp2, EXP2, CT_EW_FLOAT, "Exp2Backward0", false, true, ct_mul(g, ct_mul_scalar(cj(y), M_LN2)))
UNARY_OP(expm1, EXPM1, CT_EW_FLOAT, "Expm1Backward0", false, true, ct_mul(g, ct_add_scalar(cj(y), 1.0)))
UNARY_OP(log, LOG, CT_EW_FLOAT, "LogBackward0", true, false, ct_div(g, cj(x)))
UNARY_OP(log2, LOG2, CT_EW_FLOAT, "Log2Backward0", true, false, ct_div(g, ct_mul_scalar(cj(x), M_LN2)))
UNARY_OP(log10, LOG10, CT_EW_FLOAT, "Log10Backward0", true, false, ct_div(g, ct_mul_scalar(cj(x), M_LN10)))
UNARY_OP(log1p, LOG1P, CT_EW_FLOAT, "Log1PBackward0", true, false, ct_div(g, ct_add_scalar(cj(x), 1.0)))
UNARY_OP(sin, SIN, CT_EW_FLOAT, "SinBackward0", true, false, ct_mul(g, cj(ct_cos(x))))
UNARY_OP(cos, COS, CT_EW_FLOAT, "CosBackward0", true, false, ct_neg(ct_mul(g, cj(ct_sin(x)))))
UNARY_OP(tan, TAN, CT_EW_FLOAT, "TanBackward0", false, true, ct_mul(g, cj(ct_add_scalar(SQ(y), 1.0))))
UNARY_OP(asin, ASIN, CT_EW_FLOAT, "AsinBackward0", true, false, ct_mul(g, cj(ct_rsqrt(ct_rsub_scalar(SQ(x), 1.0)))))
UNARY_OP(acos, ACOS, CT_EW_FLOAT, "AcosBackward0", true, false,
         ct_neg(ct_mul(g, cj(ct_rsqrt(ct_rsub_scalar(SQ(x), 1.0))))))
UNARY_OP(atan, ATAN, CT_EW_FLOAT, "AtanBackward0", true, false, ct_div(g, cj(ct_add_scalar(SQ(x), 1.0))))
UNARY_OP(sinh, SINH, CT_EW_FLOAT, "SinhBackward0", true, false, ct_mul(g, cj(ct_cosh(x))))
UNARY_OP(cosh, COSH, CT_EW_FLOAT, "CoshBackward0", true, false, ct_mul(g, cj(ct_sinh(x))))
UNARY_OP(tanh, TANH, CT_EW_FLOAT, "TanhBackward0", false, true, ct_mul(g, cj(ct_rsub_scalar(SQ(y), 1.0))))
UNARY_OP(asinh, ASINH, CT_EW_FLOAT, "AsinhBackward0", true, false, ct_mul(g, cj(ct_rsqrt(ct_add_scalar(SQ(x), 1.0)))))
UNARY_OP(acosh, ACOSH, CT_EW_FLOAT, "AcoshBackward0", true, false,
         ct_mul(g, cj(ct_mul(ct_rsqrt(ct_sub_scalar(x, 1.0)), ct_rsqrt(ct_add_scalar(x, 1.0))))))
UNARY_OP(atanh, ATANH, CT_EW_FLOAT, "AtanhBackward0", true, false, ct_div(g, cj(ct_rsub_scalar(SQ(x), 1.0))))
UNARY_OP(sigmoid, SIGMOID, CT_EW_FLOAT, "SigmoidBackward0", false, true,
         ct_mul(g, cj(ct_mul(y, ct_rsub_scalar(y, 1.0)))))
UNARY_OP(erf, ERF, CT_EW_FLOAT_REAL, "ErfBackward0", true, false,
         ct_mul(g, ct_mul_scalar(ct_exp(ct_neg(SQ(x))), M_2_SQRTPI)))
UNARY_OP(erfc, ERFC, CT_EW_FLOAT_REAL, "ErfcBackward0", true, false,
         ct_mul(g, ct_mul_scalar(ct_exp(ct_neg(SQ(x))), -M_2_SQRTPI)))
UNARY_OP(erfinv, ERFINV, CT_EW_FLOAT_REAL, "ErfinvBackward0", false, true,
         ct_mul(g, ct_mul_scalar(ct_exp(SQ(y)), 0.88622692545275801365))) /* sqrt(pi)/2 */
UNARY_OP(lgamma, LGAMMA, CT_EW_FLOAT_REAL, "LgammaBackward0", true, false, ct_mul(g, ct_digamma(x)))

/* polygamma(n, x): d/dx polygamma(n, x) = polygamma(n + 1, x), so every higher
 * derivative of lgamma and digamma is available. */
static int polygamma_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = ct__unpack(n, 0);
    if (!x) return ct_last_status();
    gi[0] = ct_mul(go[0], ct_polygamma((int64_t)n->d[0] + 1, x));
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_polygamma(int64_t order, const ct_tensor *x) {
    CT_CHECK_ARG("polygamma", x);
    if (order < 0) return ct__err(CT_ERR_ARG, "polygamma(n, x) does not support negative n.");
    double d[4] = {(double)order};
    ct_op op = order == 1 ? CT_OP_TRIGAMMA : CT_OP_POLYGAMMA;
    return ct__record_unary(ct__unary_raw(op, "polygamma", x, CT_EW_FLOAT_REAL, d), "PolygammaBackward0",
                            polygamma_backward, x, true, false, d);
}
static ct_tensor *trigamma(const ct_tensor *x) { return ct_polygamma(1, x); }
UNARY_OP(digamma, DIGAMMA, CT_EW_FLOAT_REAL, "DigammaBackward0", true, false, ct_mul(g, trigamma(x)))

/* ---- abs, sign, sgn, square ---- */
UNARY_BACKWARD(abs, ct_mul(g, ct_sgn(x)))
CT_API ct_tensor *ct_abs(const ct_tensor *x) {
    CT_CHECK_ARG("abs", x);
    if (x->dtype == CT_BOOL) return ct__err(CT_ERR_DTYPE, "abs: not implemented for 'bool'");
    return ct__record_unary(ct__unary_raw(CT_OP_ABS, "abs", x, CT_EW_TO_REAL, NULL), "AbsBackward0", abs_backward, x, true, false, NULL);
}
CT_DEFINE_UNARY_VARIANTS(abs)

UNARY_BACKWARD(zero, ct_zeros_like(g))
CT_API ct_tensor *ct_sign(const ct_tensor *x) {
    CT_CHECK_ARG("sign", x);
    if (ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "sign: Unlike NumPy, torch.sign is not intended to support complex numbers. "
                                     "Please use torch.sgn instead.");
    return ct__record_unary(ct__unary_raw(CT_OP_SIGN, "sign", x, CT_EW_SAME, NULL), "SignBackward0", zero_backward, x, false,
                   false, NULL);
}
CT_DEFINE_UNARY_VARIANTS(sign)

/* sgn(z) = z / |z|: grad_in = (g - Re(g conj(s)) s) / |z|, 0 where z == 0 */
static int sgn_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *g = go[0], *x, *y;
    int rc = unpack_xy(n, &x, &y);
    if (rc) return rc;
    if (!ct_dtype_is_complex(x->dtype)) gi[0] = ct_zeros_like(g);
    else {
        ct_tensor *r = ct_abs(x);
        ct_tensor *num = ct_sub(g, ct_mul(ct_real(ct_mul(g, ct_conj(y))), y));
        gi[0] = ct_where(ct_eq(r, ct_float(0.0)), ct_float(0.0), ct_div(num, r));
    }
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_sgn(const ct_tensor *x) {
    CT_CHECK_ARG("sgn", x);
    return ct__record_unary(ct__unary_raw(CT_OP_SGN, "sgn", x, CT_EW_SAME, NULL), "SgnBackward0", sgn_backward, x, true, true, NULL);
}
CT_DEFINE_UNARY_VARIANTS(sgn)

UNARY_BACKWARD(square, ct_mul(g, ct_mul_scalar(cj(x), 2.0)))
CT_API ct_tensor *ct_square(const ct_tensor *x) {
    CT_CHECK_ARG("square", x);
    if (x->dtype == CT_BOOL) { /* pow(bool, 2) promotes to int64 */
        ct_tensor *xi = ct__cast_raw(x, CT_INT64);
        if (!xi) return NULL;
        ct_tensor *r = ct__unary_raw(CT_OP_SQUARE, "square", xi, CT_EW_SAME, NULL);
        ct_release(xi);
        return r ? ct__ret(r) : NULL;
    }
    return ct__record_unary(ct__unary_raw(CT_OP_SQUARE, "square", x, CT_EW_SAME, NULL), "PowBackward0", square_backward, x, true,
                   false, NULL);
}
CT_DEFINE_UNARY_VARIANTS(square)

/* ---- rounding: integers are returned unchanged (a copy), bool is an error ---- */
static ct_tensor *rounding(const char *name, const char *node, ct_op op, const ct_tensor *x, const double *params) {
    CT_CHECK_ARG(name, x);
    if (x->dtype == CT_BOOL) return ct__err(CT_ERR_DTYPE, "%s: not implemented for 'bool'", name);
    if (ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "%s: %s is not supported for complex inputs", name, name);
    if (ct_dtype_is_integral(x->dtype, false)) return ct_clone(x);
    return ct__record_unary(ct__unary_raw(op, name, x, CT_EW_REAL, params), node, zero_backward, x, false, false, NULL);
}
CT_API ct_tensor *ct_floor(const ct_tensor *x) { return rounding("floor", "FloorBackward0", CT_OP_FLOOR, x, NULL); }
CT_API ct_tensor *ct_ceil(const ct_tensor *x) { return rounding("ceil", "CeilBackward0", CT_OP_CEIL, x, NULL); }
CT_API ct_tensor *ct_trunc(const ct_tensor *x) { return rounding("trunc", "TruncBackward0", CT_OP_TRUNC, x, NULL); }
CT_API ct_tensor *ct_round(const ct_tensor *x) { return rounding("round", "RoundBackward0", CT_OP_ROUND, x, NULL); }
CT_DEFINE_UNARY_VARIANTS(floor)
CT_DEFINE_UNARY_VARIANTS(ceil)
CT_DEFINE_UNARY_VARIANTS(trunc)
CT_DEFINE_UNARY_VARIANTS(round)
CT_API ct_tensor *ct_round_decimals(const ct_tensor *x, int decimals) {
    CT_CHECK_ARG("round", x);
    if (!ct_dtype_is_floating(x->dtype)) /* as torch: even decimals=0 is an error for integers */
        return ct__err(CT_ERR_DTYPE, "round: not implemented for '%s' with decimals", ct_dtype_name(x->dtype));
    if (decimals == 0) return ct_round(x);
    return ct__record_unary(ct__unary_raw(CT_OP_ROUND, "round", x, CT_EW_REAL, (double[4]){(double)decimals}),
                            "RoundBackward1", zero_backward, x, false, false, NULL);
}

UNARY_BACKWARD(frac, ct__pass(g))
CT_API ct_tensor *ct_frac(const ct_tensor *x) {
    CT_CHECK_ARG("frac", x);
    return ct__record_unary(ct__unary_raw(CT_OP_FRAC, "frac", x, CT_EW_REAL, NULL), "FracBackward0", frac_backward, x, false,
                   false, NULL);
}
CT_DEFINE_UNARY_VARIANTS(frac)

/* ---- logical / bitwise (never differentiable) ---- */
CT_API ct_tensor *ct_logical_not(const ct_tensor *x) {
    CT_CHECK_ARG("logical_not", x);
    ct_tensor *r = ct__unary_raw(CT_OP_LOGICAL_NOT, "logical_not", x, CT_EW_LOGICAL, NULL);
    return r ? ct__ret(r) : NULL;
}
CT_DEFINE_UNARY_VARIANTS(logical_not)
CT_API ct_tensor *ct_bitwise_not(const ct_tensor *x) {
    CT_CHECK_ARG("bitwise_not", x);
    ct_tensor *r = ct__unary_raw(CT_OP_BITWISE_NOT, "bitwise_not", x, CT_EW_INTEGRAL, NULL);
    return r ? ct__ret(r) : NULL;
}
CT_DEFINE_UNARY_VARIANTS(bitwise_not)

/* ---- classification -> bool ---- */
static ct_tensor *classify(const char *name, ct_op op, const ct_tensor *x, double mode, bool int_value) {
    CT_CHECK_ARG(name, x);
    if (!ct_dtype_is_floating(x->dtype) && !ct_dtype_is_complex(x->dtype)) {
        ct_tensor *r = int_value ? ct_ones(x->ndim, x->sizes, CT_BOOL) : ct_zeros(x->ndim, x->sizes, CT_BOOL);
        return r;
    }
    ct_tensor *r = ct__unary_raw(op, name, x, CT_EW_BOOL_OUT, (double[4]){mode});
    return r ? ct__ret(r) : NULL;
}
CT_API ct_tensor *ct_isnan(const ct_tensor *x) { return classify("isnan", CT_OP_ISNAN, x, 0, false); }
CT_API ct_tensor *ct_isinf(const ct_tensor *x) { return classify("isinf", CT_OP_ISINF, x, 0, false); }
CT_API ct_tensor *ct_isfinite(const ct_tensor *x) { return classify("isfinite", CT_OP_ISFINITE, x, 0, true); }
CT_API ct_tensor *ct_isposinf(const ct_tensor *x) {
    CT_CHECK_ARG("isposinf", x);
    if (ct_dtype_is_complex(x->dtype)) return ct__err(CT_ERR_DTYPE, "isposinf: isposinf does not support complex inputs.");
    return classify("isposinf", CT_OP_ISINF, x, 1, false);
}
CT_API ct_tensor *ct_isneginf(const ct_tensor *x) {
    CT_CHECK_ARG("isneginf", x);
    if (ct_dtype_is_complex(x->dtype)) return ct__err(CT_ERR_DTYPE, "isneginf: isneginf does not support complex inputs.");
    return classify("isneginf", CT_OP_ISINF, x, -1, false);
}

/* ---- nan_to_num ---- */
static double dtype_max(ct_dtype dt) {
    switch (dt) {
    case CT_FLOAT16: return 65504.0;
    case CT_BFLOAT16: return 3.3895313892515355e38;
    case CT_FLOAT32: case CT_COMPLEX64: return FLT_MAX;
    default: return DBL_MAX;
    }
}
UNARY_BACKWARD(nan_to_num, ct_mul(g, ct_isfinite(x)))
CT_API ct_tensor *ct_nan_to_num(const ct_tensor *x, double nan, double posinf, double neginf) {
    CT_CHECK_ARG("nan_to_num", x);
    if (ct_dtype_is_integral(x->dtype, true)) return ct_clone(x);
    double mx = dtype_max(x->dtype);
    double p[4] = {nan, isnan(posinf) ? mx : posinf, isnan(neginf) ? -mx : neginf, 0};
    return ct__record_unary(ct__unary_raw(CT_OP_NAN_TO_NUM, "nan_to_num", x, CT_EW_SAME, p), "NanToNumBackward0",
                   nan_to_num_backward, x, true, false, NULL);
}
CT_API int ct_nan_to_num_(ct_tensor *self, double nan, double posinf, double neginf) {
    int rc = ct__check_inplace("nan_to_num_", self);
    if (rc) return rc;
    if (ct_scope_begin()) return ct_last_status();
    rc = ct__commit_inplace("nan_to_num_", self, ct_nan_to_num(self, nan, posinf, neginf));
    ct_scope_end();
    return rc;
}

/* ---- imag, angle ---- */
UNARY_BACKWARD(imag, ct_mul(g, ct_complex(0.0, 1.0))) /* real grad -> i * grad */
CT_API ct_tensor *ct_imag(const ct_tensor *x) {
    CT_CHECK_ARG("imag", x);
    if (!ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "imag: imag is not implemented for tensors with non-complex dtypes.");
    return ct__record_unary(ct__unary_raw(CT_OP_IMAG, "imag", x, CT_EW_TO_REAL, NULL), "ImagBackward0", imag_backward, x, false,
                   false, NULL);
}

/* complex: where(z == 0, 0, g * z / |z|^2 * i); real: zeros */
static int angle_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *g = go[0], *x, *y;
    int rc = unpack_xy(n, &x, &y);
    if (rc) return rc;
    if (!ct_dtype_is_complex(x->dtype)) gi[0] = ct_zeros_like(g);
    else {
        ct_tensor *r2 = SQ(ct_abs(x));
        gi[0] = ct_where(ct_eq(x, ct_float(0.0)), ct_float(0.0),
                         ct_mul(ct_div(ct_mul(g, x), r2), ct_complex(0.0, 1.0)));
    }
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_angle(const ct_tensor *x) {
    CT_CHECK_ARG("angle", x);
    if (ct_dtype_is_integral(x->dtype, true)) { /* integers: computed in the default float dtype */
        ct_tensor *xf = ct__cast_raw(x, ct_get_default_dtype());
        if (!xf) return NULL;
        ct_tensor *r = ct__unary_raw(CT_OP_ANGLE, "angle", xf, CT_EW_TO_REAL, NULL);
        ct_release(xf);
        return r ? ct__ret(r) : NULL;
    }
    return ct__record_unary(ct__unary_raw(CT_OP_ANGLE, "angle", x, CT_EW_TO_REAL, NULL), "AngleBackward0", angle_backward, x,
                   true, false, NULL);
}
