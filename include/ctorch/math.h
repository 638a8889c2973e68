/* ctorch/math.h — elementwise math: unary, binary, ternary, comparisons, logic.
 *
 * Every op follows PyTorch's broadcasting and type promotion (see ct_promote_types;
 * pass Python-like scalars with ct_float(2.5) / ct_int(3) / ct_bool(true)). Integer
 * inputs to floating functions (exp, sin, sqrt, ...) give the default float dtype.
 * Results are new references (ownership: ctorch/core.h); NULL and an error message
 * on bad input, e.g. "add: The size of tensor a (3) must match the size of tensor b
 * (4) at non-singleton dimension 1 (shapes [2, 3] and [4])".
 *
 * Three forms, where PyTorch has them:
 *   ct_tensor *ct_OP(const ct_tensor *a, ...)            out of place, differentiable
 *   int ct_OP_(ct_tensor *self, ...)                      in place (0 or status); the
 *        result must be castable to self's dtype and have self's shape
 *   int ct_OP_out(ct_tensor *out, const ct_tensor *a, ...) into out (resized if its
 *        shape differs); not differentiable
 */
#ifndef CTORCH_MATH_H
#define CTORCH_MATH_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CT_DECLARE_UNARY(name)                                  \
    CT_API ct_tensor *ct_##name(const ct_tensor *x);           \
    CT_API int ct_##name##_(ct_tensor *self);                  \
    CT_API int ct_##name##_out(ct_tensor *out, const ct_tensor *x);

/* ---- unary: torch.<name>(x) ---- */
CT_DECLARE_UNARY(neg)
CT_DECLARE_UNARY(abs)
CT_DECLARE_UNARY(sign)       /* real dtypes */
CT_DECLARE_UNARY(sgn)        /* x/|x| for complex, sign for real */
CT_DECLARE_UNARY(sqrt)
CT_DECLARE_UNARY(rsqrt)
CT_DECLARE_UNARY(reciprocal)
CT_DECLARE_UNARY(square)
CT_DECLARE_UNARY(exp)
CT_DECLARE_UNARY(exp2)
CT_DECLARE_UNARY(expm1)
CT_DECLARE_UNARY(log)
CT_DECLARE_UNARY(log2)
CT_DECLARE_UNARY(log10)
CT_DECLARE_UNARY(log1p)
CT_DECLARE_UNARY(sin)
CT_DECLARE_UNARY(cos)
CT_DECLARE_UNARY(tan)
CT_DECLARE_UNARY(asin)
CT_DECLARE_UNARY(acos)
CT_DECLARE_UNARY(atan)
CT_DECLARE_UNARY(sinh)
CT_DECLARE_UNARY(cosh)
CT_DECLARE_UNARY(tanh)
CT_DECLARE_UNARY(asinh)
CT_DECLARE_UNARY(acosh)
CT_DECLARE_UNARY(atanh)
CT_DECLARE_UNARY(floor)
CT_DECLARE_UNARY(ceil)
CT_DECLARE_UNARY(round)      /* half to even, like torch.round */
CT_DECLARE_UNARY(trunc)
CT_DECLARE_UNARY(frac)
CT_DECLARE_UNARY(sigmoid)
CT_DECLARE_UNARY(erf)
CT_DECLARE_UNARY(erfc)
CT_DECLARE_UNARY(erfinv)
CT_DECLARE_UNARY(lgamma)
CT_DECLARE_UNARY(digamma)
CT_DECLARE_UNARY(logical_not) /* -> bool */
CT_DECLARE_UNARY(bitwise_not) /* integer and bool dtypes */
CT_DECLARE_UNARY(conj)
/* torch.polygamma(n, x): the n-th derivative of digamma (n >= 0), float dtypes. */
CT_API ct_tensor *ct_polygamma(int64_t n, const ct_tensor *x);
/* torch.round(x, decimals=d). */
CT_API ct_tensor *ct_round_decimals(const ct_tensor *x, int decimals);
/* -> bool tensors */
CT_API ct_tensor *ct_isnan(const ct_tensor *x);
CT_API ct_tensor *ct_isinf(const ct_tensor *x);
CT_API ct_tensor *ct_isfinite(const ct_tensor *x);
CT_API ct_tensor *ct_isposinf(const ct_tensor *x);
CT_API ct_tensor *ct_isneginf(const ct_tensor *x);
/* torch.nan_to_num: NaN -> nan, +inf -> posinf, -inf -> neginf; pass NAN for posinf /
 * neginf to use the dtype's largest / lowest finite value (PyTorch's None). */
CT_API ct_tensor *ct_nan_to_num(const ct_tensor *x, double nan, double posinf, double neginf);
CT_API int ct_nan_to_num_(ct_tensor *self, double nan, double posinf, double neginf);
/* Complex parts (real dtypes: real() is x itself, imag() is an error). */
CT_API ct_tensor *ct_real(const ct_tensor *x);
CT_API ct_tensor *ct_imag(const ct_tensor *x);
CT_API ct_tensor *ct_angle(const ct_tensor *x);

#define CT_DECLARE_BINARY(name)                                                 \
    CT_API ct_tensor *ct_##name(const ct_tensor *a, const ct_tensor *b);        \
    CT_API int ct_##name##_(ct_tensor *self, const ct_tensor *b);               \
    CT_API int ct_##name##_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b);

/* ---- binary: torch.<name>(a, b) ---- */
CT_DECLARE_BINARY(add)
CT_DECLARE_BINARY(sub)
CT_DECLARE_BINARY(mul)
CT_DECLARE_BINARY(div)          /* true division: integer / integer -> float */
CT_DECLARE_BINARY(floor_divide)
CT_DECLARE_BINARY(pow)
CT_DECLARE_BINARY(atan2)
CT_DECLARE_BINARY(hypot)
CT_DECLARE_BINARY(fmod)
CT_DECLARE_BINARY(remainder)
CT_DECLARE_BINARY(maximum)      /* propagates NaN */
CT_DECLARE_BINARY(minimum)
CT_DECLARE_BINARY(fmax)         /* ignores NaN */
CT_DECLARE_BINARY(fmin)
CT_DECLARE_BINARY(xlogy)
CT_DECLARE_BINARY(logaddexp)    /* log(e^a + e^b); complex too (PyTorch's branch: max + log1p(e^(min - max))) */
CT_DECLARE_BINARY(logaddexp2)   /* log2(2^a + 2^b) */
CT_DECLARE_BINARY(copysign)     /* |a| with b's sign; integers -> the default float */
CT_DECLARE_BINARY(eq)           /* comparisons -> bool */
CT_DECLARE_BINARY(ne)
CT_DECLARE_BINARY(lt)
CT_DECLARE_BINARY(le)
CT_DECLARE_BINARY(gt)
CT_DECLARE_BINARY(ge)
CT_DECLARE_BINARY(logical_and)  /* -> bool */
CT_DECLARE_BINARY(logical_or)
CT_DECLARE_BINARY(logical_xor)
CT_DECLARE_BINARY(bitwise_and)  /* integer and bool dtypes */
CT_DECLARE_BINARY(bitwise_or)
CT_DECLARE_BINARY(bitwise_xor)
CT_DECLARE_BINARY(bitwise_left_shift)
CT_DECLARE_BINARY(bitwise_right_shift)

/* a + alpha * b and a - alpha * b (torch.add(a, b, alpha=...)). */
CT_API ct_tensor *ct_add_alpha(const ct_tensor *a, const ct_tensor *b, double alpha);
CT_API ct_tensor *ct_sub_alpha(const ct_tensor *a, const ct_tensor *b, double alpha);
CT_API int ct_add_alpha_(ct_tensor *self, const ct_tensor *b, double alpha);
/* torch.div(a, b, rounding_mode=mode): mode NULL (true division), "trunc" or "floor". */
CT_API ct_tensor *ct_div_mode(const ct_tensor *a, const ct_tensor *b, const char *mode);
/* Shorthands with a Python-float scalar (same promotion as ct_float(s)). */
CT_API ct_tensor *ct_add_scalar(const ct_tensor *a, double s);
CT_API ct_tensor *ct_sub_scalar(const ct_tensor *a, double s);
CT_API ct_tensor *ct_mul_scalar(const ct_tensor *a, double s);
CT_API ct_tensor *ct_div_scalar(const ct_tensor *a, double s);
CT_API ct_tensor *ct_pow_scalar(const ct_tensor *a, double exponent);
/* s - a (torch.rsub) */
CT_API ct_tensor *ct_rsub_scalar(const ct_tensor *a, double s);

/* ---- ternary ---- */
/* torch.where(cond, a, b): cond is bool; a, b promote and broadcast with cond. */
CT_API ct_tensor *ct_where(const ct_tensor *cond, const ct_tensor *a, const ct_tensor *b);
/* torch.clamp(x, min, max): min/max tensors (broadcast) or NULL for none; at least one. */
CT_API ct_tensor *ct_clamp(const ct_tensor *x, const ct_tensor *min, const ct_tensor *max);
CT_API int ct_clamp_(ct_tensor *self, const ct_tensor *min, const ct_tensor *max);
/* Scalar bounds; NAN means "no bound". */
CT_API ct_tensor *ct_clamp_scalar(const ct_tensor *x, double min, double max);
CT_API int ct_clamp_scalar_(ct_tensor *self, double min, double max);
/* torch.lerp(start, end, weight): start + weight * (end - start). */
CT_API ct_tensor *ct_lerp(const ct_tensor *start, const ct_tensor *end, const ct_tensor *weight);
/* torch.addcmul(x, t1, t2, value) = x + value * t1 * t2; addcdiv: x + value * t1 / t2. */
CT_API ct_tensor *ct_addcmul(const ct_tensor *x, const ct_tensor *t1, const ct_tensor *t2, double value);
CT_API ct_tensor *ct_addcdiv(const ct_tensor *x, const ct_tensor *t1, const ct_tensor *t2, double value);
CT_API int ct_addcmul_(ct_tensor *self, const ct_tensor *t1, const ct_tensor *t2, double value);
CT_API int ct_addcdiv_(ct_tensor *self, const ct_tensor *t1, const ct_tensor *t2, double value);

#ifdef __cplusplus
}
#endif
#endif
