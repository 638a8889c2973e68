/* Ternary elementwise ops: where, clamp, lerp, addcmul, addcdiv, with autograd
 * following PyTorch's derivatives.yaml (written with public ops: double backward works). */
#include <math.h>

#include "ops/elementwise.h"

#include "core/iter.h"

#define TRY(x) do { if (!(x)) return ct_last_status(); } while (0)
static ct_tensor *cj(ct_tensor *t) { return t && ct_dtype_is_complex(t->dtype) ? ct_conj(t) : t; }
static ct_tensor *zero0(const ct_tensor *g) { return ct_scalar_tensor(0.0, g->dtype); }

/* Broadcast shape of three tensors into shape; returns ndim or -1. */
static int broadcast3(const char *name, const ct_tensor *x, const ct_tensor *y, const ct_tensor *z, int64_t *shape) {
    int64_t s1[CT_MAX_DIMS];
    int nd = ct__broadcast_shapes(name, x->ndim, x->sizes, y->ndim, y->sizes, s1);
    if (nd < 0) return -1;
    return ct__broadcast_shapes(name, nd, s1, z->ndim, z->sizes, shape);
}

/* Runs a ternary kernel: inputs x, y, z are cast to cd (except cond for where, which
 * stays bool), the output has dtype od. Unregistered result, no autograd. */
static ct_tensor *ternary_raw(ct_op op, const char *name, const ct_tensor *x, const ct_tensor *y, const ct_tensor *z,
                              ct_dtype cd, ct_dtype od, double value) {
    int64_t shape[CT_MAX_DIMS];
    int nd = broadcast3(name, x, y, z, shape);
    if (nd < 0) return NULL;
    ct_tensor *in[3] = {NULL, NULL, NULL}, *out = NULL;
    const ct_tensor *src[3] = {x, y, z};
    int rc = -1;
    for (int i = 0; i < 3; i++)
        if (!(in[i] = ct__cast_raw(src[i], (op == CT_OP_WHERE && i == 0) ? CT_BOOL : cd))) goto done;
    if (!(out = ct__empty_raw(nd, shape, od))) goto done;
    ct_kernel_args k = {.op = op, .n_out = 1, .n_in = 3, .out = {out}, .in = {in[0], in[1], in[2]}, .d = {value}};
    rc = ct__dispatch(&k);
done:
    for (int i = 0; i < 3; i++) ct_release(in[i]);
    if (rc) { ct_release(out); return NULL; }
    return out;
}

/* Records a 3-input node (inputs saved in slots 0..2; NULL inputs are skipped but
 * keep their slot order via i[]: i[k] = slot of input k or -1). */
static ct_tensor *record3(ct_tensor *out, const char *node_name, ct_backward_fn fn, const ct_tensor *const *ins,
                          double d0) {
    if (!out) return NULL;
    if (ct__needs_grad(3, ins) && (ct_dtype_is_floating(out->dtype) || ct_dtype_is_complex(out->dtype))) {
        ct_node *n = ct__node_new(node_name, fn, 3);
        if (!n) { ct_release(out); return NULL; }
        for (int k = 0; k < 3; k++) {
            n->i[k] = -1;
            if (!ins[k]) continue;
            if (ct__node_set_next(n, k, ins[k]) || (n->i[k] = ct__save(n, ins[k])) < 0) {
                ct__node_release(n);
                ct_release(out);
                return NULL;
            }
        }
        n->d[0] = d0;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}
static ct_tensor *slot(ct_node *n, int k) { return n->i[k] >= 0 ? ct__unpack(n, (int)n->i[k]) : NULL; }

static int inplace3(const char *name, ct_tensor *self, ct_tensor *(*fn)(const ct_tensor *, const ct_tensor *,
                                                                        const ct_tensor *, double),
                    const ct_tensor *t1, const ct_tensor *t2, double value) {
    int rc = ct__check_inplace(name, self);
    if (rc) return rc;
    if (ct_scope_begin()) return ct_last_status();
    rc = ct__commit_inplace(name, self, fn(self, t1, t2, value));
    ct_scope_end();
    return rc;
}

/* ---- where ---- */
static int where_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *c = slot(n, 0);
    TRY(c);
    if (ct__node_needs(n, 1)) TRY(gi[1] = ct_where(c, go[0], zero0(go[0])));
    if (ct__node_needs(n, 2)) TRY(gi[2] = ct_where(c, zero0(go[0]), go[0]));
    return 0;
}
CT_API ct_tensor *ct_where(const ct_tensor *cond, const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG("where", cond);
    CT_CHECK_ARG("where", a);
    CT_CHECK_ARG("where", b);
    if (cond->dtype != CT_BOOL)
        return ct__err(CT_ERR_DTYPE, "where expected condition to be a boolean tensor, but got a tensor with dtype %s",
                       ct_dtype_name(cond->dtype));
    ct_dtype dt = ct__result_type(2, (const ct_tensor *[]){a, b});
    return record3(ternary_raw(CT_OP_WHERE, "where", cond, a, b, dt, dt, 0), "WhereBackward0", where_backward,
                   (const ct_tensor *[]){cond, a, b}, 0);
}

/* ---- clamp with tensor bounds ----
 * Gradients as PyTorch's ClampBackward0: with one bound, ties split like
 * maximum/minimum; with both, boundary ties split between x and the bound touched
 * (x gets all when min == max == x), values below min go to min, above max to max,
 * and min > max sends everything to max. */
static int clamp_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = slot(n, 0), *lo = n->i[1] >= 0 ? slot(n, 1) : NULL, *hi = n->i[2] >= 0 ? slot(n, 2) : NULL;
    TRY(x && (n->i[1] < 0 || lo) && (n->i[2] < 0 || hi));
    ct_tensor *g = go[0], *z = zero0(g), *half = ct_mul_scalar(g, 0.5);
    TRY(z && half);
    if (lo && hi) {
        ct_tensor *inv = ct_gt(lo, hi), *below = ct_lt(x, lo), *above = ct_gt(x, hi);
        ct_tensor *tie_lo = ct_logical_and(ct_eq(x, lo), ct_lt(x, hi));
        ct_tensor *tie_hi = ct_logical_and(ct_eq(x, hi), ct_gt(x, lo));
        if (ct__node_needs(n, 0)) {
            ct_tensor *out = ct_logical_or(inv, ct_logical_or(below, above));
            TRY(gi[0] = ct_where(out, z, ct_where(ct_logical_or(tie_lo, tie_hi), half, g)));
        }
        if (ct__node_needs(n, 1)) TRY(gi[1] = ct_where(inv, z, ct_where(below, g, ct_where(tie_lo, half, z))));
        if (ct__node_needs(n, 2)) TRY(gi[2] = ct_where(inv, g, ct_where(above, g, ct_where(tie_hi, half, z))));
        return 0;
    }
    ct_tensor *b = lo ? lo : hi;
    ct_tensor *t = ct_where(ct_eq(x, b), half, g);
    TRY(t);
    if (ct__node_needs(n, 0)) TRY(gi[0] = ct_where(lo ? ct_lt(x, b) : ct_gt(x, b), z, t));
    int k = lo ? 1 : 2;
    if (ct__node_needs(n, k)) TRY(gi[k] = ct_where(lo ? ct_gt(x, b) : ct_lt(x, b), z, t));
    return 0;
}

static ct_tensor *clamp_raw(const ct_tensor *x, const ct_tensor *lo, const ct_tensor *hi) {
    if (ct_dtype_is_complex(x->dtype) || (lo && ct_dtype_is_complex(lo->dtype)) || (hi && ct_dtype_is_complex(hi->dtype)))
        return ct__err(CT_ERR_DTYPE, "clamp is not supported for complex types");
    if (!lo && !hi) return ct__err(CT_ERR_ARG, "torch.clamp: At least one of 'min' or 'max' must not be None");
    if (!hi) return ct__binary_raw(CT_OP_MAXIMUM, "clamp", x, lo, CT_EW_REAL, NULL);
    if (!lo) return ct__binary_raw(CT_OP_MINIMUM, "clamp", x, hi, CT_EW_REAL, NULL);
    ct_dtype dt = ct__result_type(3, (const ct_tensor *[]){x, lo, hi});
    return ternary_raw(CT_OP_CLAMP, "clamp", x, lo, hi, dt, dt, 0);
}

CT_API ct_tensor *ct_clamp(const ct_tensor *x, const ct_tensor *min, const ct_tensor *max) {
    CT_CHECK_ARG("clamp", x);
    return record3(clamp_raw(x, min, max), "ClampBackward0", clamp_backward, (const ct_tensor *[]){x, min, max}, 0);
}
CT_API int ct_clamp_(ct_tensor *self, const ct_tensor *min, const ct_tensor *max) {
    int rc = ct__check_inplace("clamp_", self);
    if (rc) return rc;
    if (ct_scope_begin()) return ct_last_status();
    rc = ct__commit_inplace("clamp_", self, ct_clamp(self, min, max));
    ct_scope_end();
    return rc;
}

/* ---- clamp with scalar bounds (NAN = none) ----
 * A bound with an integral value keeps an integer tensor's dtype (like a Python int);
 * others promote like a Python float. Gradient: grad where min < x < max, else 0. */
static int clamp_scalar_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *x = slot(n, 0);
    TRY(x);
    double lo = n->d[0], hi = n->d[1];
    ct_tensor *mask = NULL;
    if (!isnan(lo)) mask = ct_gt(x, ct_float(lo));
    if (!isnan(hi)) {
        ct_tensor *m2 = ct_lt(x, ct_float(hi));
        mask = mask ? ct_logical_and(mask, m2) : m2;
    }
    TRY(mask);
    TRY(gi[0] = ct_where(mask, go[0], zero0(go[0])));
    return 0;
}
static ct_tensor *scalar_bound(const ct_tensor *x, double v) {
    if (isnan(v)) return NULL;
    if (ct_dtype_is_integral(x->dtype, true) && v == trunc(v) && fabs(v) < 9.2e18) return ct_int((int64_t)v);
    return ct_float(v);
}
CT_API ct_tensor *ct_clamp_scalar(const ct_tensor *x, double min, double max) {
    CT_CHECK_ARG("clamp", x);
    if (ct_scope_begin()) return NULL;
    ct_tensor *lo = scalar_bound(x, min), *hi = scalar_bound(x, max);
    ct_tensor *out = (isnan(min) || lo) && (isnan(max) || hi) ? clamp_raw(x, lo, hi) : NULL;
    ct_scope_end();
    if (!out) return NULL;
    if (ct__needs_grad(1, (const ct_tensor *[]){x}) && ct_dtype_is_floating(out->dtype)) {
        ct_node *n = ct__node_new("ClampBackward1", clamp_scalar_backward, 1);
        if (!n || ct__node_set_next(n, 0, x) || (n->i[0] = ct__save(n, x)) < 0) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        n->d[0] = min;
        n->d[1] = max;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}
CT_API int ct_clamp_scalar_(ct_tensor *self, double min, double max) {
    int rc = ct__check_inplace("clamp_", self);
    if (rc) return rc;
    if (ct_scope_begin()) return ct_last_status();
    rc = ct__commit_inplace("clamp_", self, ct_clamp_scalar(self, min, max));
    ct_scope_end();
    return rc;
}

/* ---- lerp ---- */
static int lerp_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *s = slot(n, 0), *e = slot(n, 1), *w = slot(n, 2);
    TRY(s && e && w);
    if (ct__node_needs(n, 0)) TRY(gi[0] = ct_mul(go[0], cj(ct_rsub_scalar(w, 1.0))));
    if (ct__node_needs(n, 1)) TRY(gi[1] = ct_mul(go[0], cj(w)));
    if (ct__node_needs(n, 2)) TRY(gi[2] = ct_mul(go[0], cj(ct_sub(e, s))));
    return 0;
}
CT_API ct_tensor *ct_lerp(const ct_tensor *start, const ct_tensor *end, const ct_tensor *weight) {
    CT_CHECK_ARG("lerp", start);
    CT_CHECK_ARG("lerp", end);
    CT_CHECK_ARG("lerp", weight);
    if (end->dtype != start->dtype)
        return ct__err(CT_ERR_DTYPE, "lerp: expected dtype %s for `end` but got dtype %s", ct_dtype_name(start->dtype),
                       ct_dtype_name(end->dtype));
    if (weight->ndim > 0 && weight->dtype != start->dtype)
        return ct__err(CT_ERR_DTYPE, "lerp: expected dtype %s for `weight` but got dtype %s",
                       ct_dtype_name(start->dtype), ct_dtype_name(weight->dtype));
    return record3(ternary_raw(CT_OP_LERP, "lerp", start, end, weight, start->dtype, start->dtype, 0), "LerpBackward1",
                   lerp_backward, (const ct_tensor *[]){start, end, weight}, 0);
}

/* ---- addcmul / addcdiv: d[0] = value, d[1] = 1 for addcdiv ---- */
static int addc_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    double v = n->d[0];
    bool is_div = n->d[1] != 0;
    if (ct__node_needs(n, 0)) TRY(gi[0] = ct__pass(go[0]));
    if (!ct__node_needs(n, 1) && !ct__node_needs(n, 2)) return 0;
    ct_tensor *t1 = slot(n, 1), *t2 = slot(n, 2);
    TRY(t1 && t2);
    if (!is_div) {
        if (ct__node_needs(n, 1)) TRY(gi[1] = ct_mul(go[0], cj(ct_mul_scalar(t2, v))));
        if (ct__node_needs(n, 2)) TRY(gi[2] = ct_mul(go[0], cj(ct_mul_scalar(t1, v))));
    } else {
        if (ct__node_needs(n, 1)) TRY(gi[1] = ct_mul(go[0], cj(ct_div(ct_float(v), t2))));
        if (ct__node_needs(n, 2))
            TRY(gi[2] = ct_neg(ct_mul(go[0], cj(ct_div(ct_mul_scalar(t1, v), ct_mul(t2, t2))))));
    }
    return 0;
}
static ct_tensor *addc(bool is_div, const ct_tensor *x, const ct_tensor *t1, const ct_tensor *t2, double value) {
    const char *name = is_div ? "addcdiv" : "addcmul";
    CT_CHECK_ARG(name, x);
    CT_CHECK_ARG(name, t1);
    CT_CHECK_ARG(name, t2);
    if (is_div && ct_dtype_is_integral(t1->dtype, true) && ct_dtype_is_integral(t2->dtype, true))
        return ct__err(CT_ERR_DTYPE,
                       "addcdiv: Integer division with addcdiv is no longer supported, and in a future release addcdiv "
                       "will perform a true division of tensor1 and tensor2. The historic addcdiv behavior can be "
                       "implemented as (input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer "
                       "inputs and as (input + value * tensor1 / tensor2) for float inputs. The future addcdiv behavior "
                       "is just the latter implementation: (input + value * tensor1 / tensor2), for all dtypes.");
    ct_dtype dt = ct__result_type(3, (const ct_tensor *[]){x, t1, t2});
    ct_tensor *out = ternary_raw(is_div ? CT_OP_ADDCDIV : CT_OP_ADDCMUL, name, x, t1, t2, dt, dt, value);
    if (!out) return NULL;
    ct_tensor *r = record3(out, is_div ? "AddcdivBackward0" : "AddcmulBackward0", addc_backward,
                           (const ct_tensor *[]){x, t1, t2}, value);
    if (r && r->grad_fn && r->grad_fn->backward == addc_backward) r->grad_fn->d[1] = is_div;
    return r;
}
CT_API ct_tensor *ct_addcmul(const ct_tensor *x, const ct_tensor *t1, const ct_tensor *t2, double value) {
    return addc(false, x, t1, t2, value);
}
CT_API ct_tensor *ct_addcdiv(const ct_tensor *x, const ct_tensor *t1, const ct_tensor *t2, double value) {
    return addc(true, x, t1, t2, value);
}
CT_API int ct_addcmul_(ct_tensor *self, const ct_tensor *t1, const ct_tensor *t2, double value) {
    return inplace3("addcmul_", self, ct_addcmul, t1, t2, value);
}
CT_API int ct_addcdiv_(ct_tensor *self, const ct_tensor *t1, const ct_tensor *t2, double value) {
    return inplace3("addcdiv_", self, ct_addcdiv, t1, t2, value);
}
