/* Activation functions (torch.nn.functional) with autograd. Elementwise forwards run
 * fused CPU kernels; backward formulas (PyTorch's derivatives.yaml) use public ops so
 * that double backward works. */
#include <math.h>

#include "ctorch.h"
#include "ops/elementwise.h"

/* Backward with g, saved tensor s (x or output, slot 0) and parameters p. */
#define ACT_BACKWARD(name, EXPR)                                                   \
    static int name##_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) { \
        ct_tensor *g = go[0], *s = ct__unpack(n, 0);                               \
        const double *p = n->d;                                                    \
        (void)p;                                                                   \
        if (!s) return ct_last_status();                                           \
        gi[0] = (EXPR);                                                            \
        return gi[0] ? 0 : ct_last_status();                                       \
    }

static ct_tensor *S(double v) { return ct_float(v); }

/* ---- threshold_backward: one pass over grad and self (relu's and threshold's
 * backward); differentiable in grad, a zero gradient for self (derivatives.yaml) ---- */
static int threshold_backward_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *self = ct__unpack(n, 1);
    if (!self) return ct_last_status();
    if (ct__node_needs(n, 0) && !(gi[0] = ct_threshold_backward(go[0], self, n->d[0]))) return ct_last_status();
    if (ct__node_needs(n, 1) && !(gi[1] = ct_zeros_like(self))) return ct_last_status();
    return 0;
}
CT_API ct_tensor *ct_threshold_backward(const ct_tensor *grad_output, const ct_tensor *self, double threshold) {
    CT_CHECK_ARG("threshold_backward", grad_output);
    CT_CHECK_ARG("threshold_backward", self);
    const ct_tensor *ts[2] = {grad_output, self};
    for (int i = 0; i < 2; i++)
        if (ts[i]->dtype == CT_BOOL || ct_dtype_is_complex(ts[i]->dtype))
            return ct__err(CT_ERR_DTYPE, "threshold_backward: not implemented for '%s'", ct_dtype_name(ts[i]->dtype));
    double d[4] = {threshold};
    return ct__record_binary(
        ct__binary_raw(CT_OP_THRESHOLD_BACKWARD, "threshold_backward", grad_output, self, CT_EW_REAL, d),
        "ThresholdBackwardBackward0", threshold_backward_backward, grad_output, self, false, threshold);
}

/* ---- threshold: x <= threshold ? value : x ---- */
ACT_BACKWARD(threshold, ct_threshold_backward(g, s, p[0]))
CT_API ct_tensor *ct_threshold(const ct_tensor *x, double threshold, double value) {
    CT_CHECK_ARG("threshold", x);
    if (x->dtype == CT_BOOL || ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "threshold: not implemented for '%s'", ct_dtype_name(x->dtype));
    double d[4] = {threshold, value};
    return ct__record_unary(ct__unary_raw(CT_OP_THRESHOLD, "threshold", x, CT_EW_REAL, d), "ThresholdBackward0",
                            threshold_backward, x, true, false, d);
}
CT_API int ct_threshold_(ct_tensor *self, double threshold, double value) {
    int rc = ct__check_inplace("threshold_", self);
    if (rc) return rc;
    if (ct_scope_begin()) return ct_last_status();
    rc = ct__commit_inplace("threshold_", self, ct_threshold(self, threshold, value));
    ct_scope_end();
    return rc;
}

/* ---- relu ---- */
/* threshold_backward(g, result, 0) (s = result) */
ACT_BACKWARD(relu, ct_threshold_backward(g, s, 0.0))
CT_API ct_tensor *ct_relu(const ct_tensor *x) {
    CT_CHECK_ARG("relu", x);
    if (x->dtype == CT_BOOL) return ct__err(CT_ERR_DTYPE, "relu: Boolean inputs not supported for relu");
    if (ct_dtype_is_complex(x->dtype)) return ct__err(CT_ERR_DTYPE, "relu: clamp is not supported for complex types");
    return ct__record_unary(ct__unary_raw(CT_OP_RELU, "relu", x, CT_EW_REAL, NULL), "ReluBackward0", relu_backward, x, false, true,
               NULL);
}
CT_API int ct_relu_(ct_tensor *self) { return ct__inplace_unary("relu_", self, ct_relu); }

/* ---- hardtanh / relu6: grad where min < x < max ---- */
ACT_BACKWARD(hardtanh, ct_where(ct_logical_and(ct_gt(s, S(p[0])), ct_lt(s, S(p[1]))), g, S(0.0)))
CT_API ct_tensor *ct_hardtanh(const ct_tensor *x, double min_val, double max_val) {
    CT_CHECK_ARG("hardtanh", x);
    if (x->dtype == CT_BOOL || ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "hardtanh: not implemented for '%s'", ct_dtype_name(x->dtype));
    if (min_val > max_val)
        return ct__err(CT_ERR_ARG, "hardtanh: min_val (%g) cannot be greater than max_val (%g)", min_val, max_val);
    double d[4] = {min_val, max_val};
    return ct__record_unary(ct__unary_raw(CT_OP_HARDTANH, "hardtanh", x, CT_EW_REAL, d), "HardtanhBackward0", hardtanh_backward, x,
               true, false, d);
}
CT_API ct_tensor *ct_relu6(const ct_tensor *x) { return ct_hardtanh(x, 0.0, 6.0); }

/* ---- leaky_relu ---- */
ACT_BACKWARD(leaky_relu, ct_where(ct_gt(s, S(0.0)), g, ct_mul_scalar(g, p[0])))
CT_API ct_tensor *ct_leaky_relu(const ct_tensor *x, double negative_slope) {
    CT_CHECK_ARG("leaky_relu", x);
    double d[4] = {negative_slope};
    return ct__record_unary(ct__unary_raw(CT_OP_LEAKY_RELU, "leaky_relu", x, CT_EW_REAL, d), "LeakyReluBackward0",
               leaky_relu_backward, x, true, false, d);
}

/* ---- elu family: p = alpha, scale, input_scale ---- */
ACT_BACKWARD(elu, ct_where(ct_le(s, S(0.0)),
                           ct_mul(g, ct_mul_scalar(ct_exp(ct_mul_scalar(s, p[2])), p[0] * p[1] * p[2])),
                           ct_mul_scalar(g, p[1])))
static ct_tensor *elu_impl(const char *name, const char *node, const ct_tensor *x, double alpha, double scale,
                           double input_scale) {
    CT_CHECK_ARG(name, x);
    double d[4] = {alpha, scale, input_scale};
    return ct__record_unary(ct__unary_raw(CT_OP_ELU, name, x, CT_EW_REAL, d), node, elu_backward, x, true, false, d);
}
CT_API ct_tensor *ct_elu(const ct_tensor *x, double alpha) { return elu_impl("elu", "EluBackward0", x, alpha, 1.0, 1.0); }
CT_API ct_tensor *ct_selu(const ct_tensor *x) {
    return elu_impl("selu", "EluBackward0", x, 1.6732632423543772848170429916717, 1.0507009873554804934193349852946, 1.0);
}
CT_API ct_tensor *ct_celu(const ct_tensor *x, double alpha) {
    if (alpha == 0.0) return ct__err(CT_ERR_ARG, "celu: ZeroDivisionError: alpha cannot be 0 for CELU");
    return elu_impl("celu", "EluBackward0", x, alpha, 1.0, 1.0 / alpha);
}

/* ---- gelu ---- */
static int gelu_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *g = go[0], *x = ct__unpack(n, 0);
    if (!x) return ct_last_status();
    ct_tensor *d;
    if (n->i[0] == 0) {
        /* cdf + x * pdf */
        ct_tensor *cdf = ct_mul_scalar(ct_add_scalar(ct_erf(ct_mul_scalar(x, M_SQRT1_2)), 1.0), 0.5);
        ct_tensor *pdf = ct_mul_scalar(ct_exp(ct_mul_scalar(ct_mul(x, x), -0.5)), 0.3989422804014327); /* 1/sqrt(2 pi) */
        d = ct_add(cdf, ct_mul(x, pdf));
    } else {
        const double k = 0.7978845608028654, c = 0.044715;
        ct_tensor *x2 = ct_mul(x, x);
        ct_tensor *t = ct_tanh(ct_mul_scalar(ct_add(x, ct_mul_scalar(ct_mul(x2, x), c)), k));
        ct_tensor *left_d = ct_mul_scalar(ct_add_scalar(t, 1.0), 0.5);
        ct_tensor *right_d = ct_mul(ct_rsub_scalar(ct_mul(t, t), 1.0), ct_mul_scalar(ct_add_scalar(ct_mul_scalar(x2, 3 * c), 1.0), k));
        d = ct_add(left_d, ct_mul(ct_mul_scalar(x, 0.5), right_d));
    }
    gi[0] = ct_mul(g, d);
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_gelu(const ct_tensor *x, bool approximate_tanh) {
    CT_CHECK_ARG("gelu", x);
    ct_tensor *out = ct__record_unary(ct__unary_raw(approximate_tanh ? CT_OP_GELU_TANH : CT_OP_GELU, "gelu", x, CT_EW_REAL, NULL),
                         "GeluBackward0", gelu_backward, x, true, false, NULL);
    if (out && out->grad_fn) out->grad_fn->i[0] = approximate_tanh;
    return out;
}

/* ---- silu, mish ---- */
static int silu_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *g = go[0], *x = ct__unpack(n, 0);
    if (!x) return ct_last_status();
    ct_tensor *sg = ct_sigmoid(x);
    ct_tensor *d = ct_mul(sg, ct_add_scalar(ct_mul(x, ct_rsub_scalar(sg, 1.0)), 1.0));
    gi[0] = ct_mul(g, d && ct_dtype_is_complex(d->dtype) ? ct_conj(d) : d);
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_silu(const ct_tensor *x) {
    CT_CHECK_ARG("silu", x);
    return ct__record_unary(ct__unary_raw(CT_OP_SILU, "silu", x, CT_EW_SAME, NULL), "SiluBackward0", silu_backward, x, true, false,
               NULL);
}
static int mish_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *g = go[0], *x = ct__unpack(n, 0);
    if (!x) return ct_last_status();
    ct_tensor *tsp = ct_tanh(ct_softplus(x, 1.0, 20.0));
    gi[0] = ct_mul(g, ct_add(tsp, ct_mul(ct_mul(x, ct_sigmoid(x)), ct_rsub_scalar(ct_mul(tsp, tsp), 1.0))));
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_mish(const ct_tensor *x) {
    CT_CHECK_ARG("mish", x);
    return ct__record_unary(ct__unary_raw(CT_OP_MISH, "mish", x, CT_EW_REAL, NULL), "MishBackward0", mish_backward, x, true, false,
               NULL);
}

/* ---- softplus: p = beta, threshold ---- */
static int softplus_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *g = go[0], *x = ct__unpack(n, 0);
    if (!x) return ct_last_status();
    ct_tensor *z = ct_mul_scalar(x, n->d[0]);
    gi[0] = ct_where(ct_gt(z, S(n->d[1])), g, ct_mul(g, ct_sigmoid(z)));
    return gi[0] ? 0 : ct_last_status();
}
CT_API ct_tensor *ct_softplus(const ct_tensor *x, double beta, double threshold) {
    CT_CHECK_ARG("softplus", x);
    double d[4] = {beta, threshold};
    return ct__record_unary(ct__unary_raw(CT_OP_SOFTPLUS, "softplus", x, CT_EW_REAL, d), "SoftplusBackward0", softplus_backward, x,
               true, false, d);
}

/* ---- softsign = x / (1 + |x|) ---- */
ACT_BACKWARD(softsign, ct_div(g, ct_pow_scalar(ct_add_scalar(ct_abs(s), 1.0), 2.0)))
CT_API ct_tensor *ct_softsign(const ct_tensor *x) {
    CT_CHECK_ARG("softsign", x);
    if (x->dtype == CT_BOOL) return ct__err(CT_ERR_DTYPE, "softsign: abs: not implemented for 'bool'");
    if (ct_dtype_is_complex(x->dtype)) { /* torch's composite form x / (1 + |x|) */
        if (ct_scope_begin()) return NULL;
        ct_tensor *r = ct_keep(ct_div(x, ct_add_scalar(ct_abs(x), 1.0)));
        ct_scope_end();
        return r;
    }
    return ct__record_unary(ct__unary_raw(CT_OP_SOFTSIGN, "softsign", x, CT_EW_FLOAT_REAL, NULL), "SoftsignBackward0",
               softsign_backward, x, true, false, NULL);
}

/* ---- hardsigmoid, hardswish ---- */
ACT_BACKWARD(hardsigmoid, ct_where(ct_logical_and(ct_gt(s, S(-3.0)), ct_lt(s, S(3.0))), ct_div_scalar(g, 6.0), S(0.0)))
CT_API ct_tensor *ct_hardsigmoid(const ct_tensor *x) {
    CT_CHECK_ARG("hardsigmoid", x);
    return ct__record_unary(ct__unary_raw(CT_OP_HARDSIGMOID, "hardsigmoid", x, CT_EW_REAL, NULL), "HardsigmoidBackward0",
               hardsigmoid_backward, x, true, false, NULL);
}
ACT_BACKWARD(hardswish, ct_where(ct_lt(s, S(-3.0)), S(0.0),
                                 ct_where(ct_le(s, S(3.0)), ct_mul(g, ct_add_scalar(ct_div_scalar(s, 3.0), 0.5)), g)))
CT_API ct_tensor *ct_hardswish(const ct_tensor *x) {
    CT_CHECK_ARG("hardswish", x);
    return ct__record_unary(ct__unary_raw(CT_OP_HARDSWISH, "hardswish", x, CT_EW_REAL, NULL), "HardswishBackward0",
               hardswish_backward, x, true, false, NULL);
}

/* ---- logsigmoid ---- */
ACT_BACKWARD(logsigmoid, ct_mul(g, ct_sigmoid(ct_neg(s))))
CT_API ct_tensor *ct_logsigmoid(const ct_tensor *x) {
    CT_CHECK_ARG("logsigmoid", x);
    return ct__record_unary(ct__unary_raw(CT_OP_LOGSIGMOID, "log_sigmoid", x, CT_EW_REAL, NULL), "LogSigmoidBackward0",
               logsigmoid_backward, x, true, false, NULL);
}

/* ---- softmax / log_softmax ---- */
/* Along the last axis of float32 / float64 on the CPU, without a graph to build, one
 * fused pass per row (CT_OP_SOFTMAX_BACKWARD: the same formulas) into *dx: 0 done,
 * 1 does not apply (the differentiable formula serves), < 0 failed (error set). */
static int softmax_backward_fused(ct_tensor *g, ct_tensor *y, int64_t dim, bool log_, ct_tensor **dx) {
    if (y->ndim == 0 || dim != y->ndim - 1 || (y->dtype != CT_FLOAT32 && y->dtype != CT_FLOAT64) ||
        g->dtype != y->dtype || !ct__same_sizes(g->ndim, g->sizes, y->ndim, y->sizes) ||
        y->storage->device.type != CT_DEVICE_CPU || g->storage->device.type != CT_DEVICE_CPU ||
        ct__needs_grad(2, (const ct_tensor *[]){g, y}) || y->numel == 0)
        return 1;
    ct_tensor *gc = ct__contiguous_raw(g), *yc = ct__contiguous_raw(y);
    ct_tensor *r = gc && yc ? ct__empty_raw(y->ndim, y->sizes, y->dtype) : NULL;
    int64_t n = y->sizes[dim];
    ct_kernel_args a = {.op = CT_OP_SOFTMAX_BACKWARD, .n_out = 1, .n_in = 2, .out = {r}, .in = {gc, yc},
                        .i = {y->numel / n, n, log_}};
    int rc = r ? ct__dispatch(&a) : ct_last_status();
    ct_release(gc);
    ct_release(yc);
    if (rc) {
        ct_release(r);
        return rc < 0 ? rc : CT_ERR_ARG;
    }
    *dx = ct__ret(r);
    return 0;
}

static int softmax_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *g = go[0], *y = ct__unpack(n, 0);
    if (!y) return ct_last_status();
    int64_t dim = n->i[0];
    int rc = softmax_backward_fused(g, y, dim, n->i[1] != 0, &gi[0]);
    if (rc <= 0) return rc;
    if (n->i[1] == 0) /* y * (g - sum(g * y)) */
        gi[0] = ct_mul(y, ct_sub(g, ct_sum_dim(ct_mul(g, y), 1, &dim, true, CT_NUM_DTYPES)));
    else /* g - exp(y) * sum(g) */
        gi[0] = ct_sub(g, ct_mul(ct_exp(y), ct_sum_dim(g, 1, &dim, true, CT_NUM_DTYPES)));
    return gi[0] ? 0 : ct_last_status();
}

static ct_tensor *softmax_impl(const char *name, const ct_tensor *x0, int dim0, ct_dtype dtype, bool log_) {
    CT_CHECK_ARG(name, x0);
    if ((int)dtype < 0 || dtype > CT_NUM_DTYPES) return ct__err(CT_ERR_ARG, "%s: invalid dtype %d", name, (int)dtype);
    int dim = ct__wrap_dim(name, dim0, x0->ndim);
    if (dim < 0) return NULL;
    if (ct_scope_begin()) return NULL;
    const ct_tensor *x = dtype == CT_NUM_DTYPES ? x0 : ct_to_dtype(x0, dtype);
    ct_tensor *out = NULL;
    if (!x) goto done;
    if (!ct_dtype_is_floating(x->dtype)) {
        ct__err(CT_ERR_DTYPE, "%s: not implemented for '%s'", name, ct_dtype_name(x->dtype));
        goto done;
    }
    int64_t inner = 1;
    for (int i = dim + 1; i < x->ndim; i++) inner *= x->sizes[i];
    /* float32 / float64 as they are; a half type along its last axis by the kernel's
     * rows (widened and rounded row by row); otherwise a half type through float32 */
    bool half_rows = ct__is_half(x->dtype) && inner == 1 &&
                     x->storage->device.type == CT_DEVICE_CPU;
    ct_dtype cd = x->dtype == CT_FLOAT64 ? CT_FLOAT64 : half_rows ? x->dtype : CT_FLOAT32;
    ct_tensor *xin = ct__cast_raw(x, cd);
    if (xin && !ct__is_contiguous(xin)) {
        ct_tensor *c = ct__contiguous_raw(xin);
        ct_release(xin);
        xin = c;
    }
    if (!xin) goto done;
    ct_tensor *res = ct__empty_raw(x->ndim, x->sizes, cd);
    if (res) {
        int64_t outer = 1, size = x->ndim ? x->sizes[dim] : 1;
        for (int i = 0; i < dim; i++) outer *= x->sizes[i];
        ct_kernel_args a = {.op = log_ ? CT_OP_LOG_SOFTMAX : CT_OP_SOFTMAX, .n_out = 1, .n_in = 1, .out = {res},
                            .in = {xin}, .i = {outer, size, inner}};
        if (ct__dispatch(&a)) { ct_release(res); res = NULL; }
    }
    ct_release(xin);
    if (res && cd != x->dtype) {
        ct_tensor *r2 = ct__cast_raw(res, x->dtype);
        ct_release(res);
        res = r2;
    }
    if (!res) goto done;
    out = ct__record_unary(res, log_ ? "LogSoftmaxBackward0" : "SoftmaxBackward0", softmax_backward, x, false, true, NULL);
    if (out && out->grad_fn) { out->grad_fn->i[0] = dim; out->grad_fn->i[1] = log_; }
    if (out) out = ct_keep(out);
done:
    ct_scope_end();
    return out; /* ct_keep moved it to the enclosing scope (or to the caller) */
}
CT_API ct_tensor *ct_softmax(const ct_tensor *x, int dim, ct_dtype dtype) { return softmax_impl("softmax", x, dim, dtype, false); }
CT_API ct_tensor *ct_log_softmax(const ct_tensor *x, int dim, ct_dtype dtype) {
    return softmax_impl("log_softmax", x, dim, dtype, true);
}

/* ---- glu: a * sigmoid(b) with a, b the halves of x along dim ---- */
CT_API ct_tensor *ct_glu(const ct_tensor *x, int dim) {
    CT_CHECK_ARG("glu", x);
    if (x->ndim == 0) return ct__err(CT_ERR_SHAPE, "glu: glu does not support scalars because halving size must be even");
    int d = ct__wrap_dim("glu", dim, x->ndim);
    if (d < 0) return NULL;
    if (x->sizes[d] % 2)
        return ct__err(CT_ERR_SHAPE, "glu: Halving dimension must be even, but dimension %d is size %lld", d,
                       (long long)x->sizes[d]);
    if (!ct_dtype_is_floating(x->dtype))
        return ct__err(CT_ERR_DTYPE, "glu: not implemented for '%s'", ct_dtype_name(x->dtype));
    int64_t h = x->sizes[d] / 2;
    if (ct_scope_begin()) return NULL;
    ct_tensor *r = ct_mul(ct_narrow(x, d, 0, h), ct_sigmoid(ct_narrow(x, d, h, h)));
    if (r) r = ct_keep(r);
    ct_scope_end();
    return r;
}

/* ---- dropout: PyTorch's CPU formula, x * bernoulli(1 - p) / (1 - p); a node of its own
 * keeps the draws as a bool mask, and its backward, grad * where(mask, v, 0), is written
 * in differentiable ops so double backward works ---- */
static int dropout_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *mask = ct__unpack(n, 0), *v = ct__unpack(n, 1);
    if (!mask || !v) return ct_last_status();
    gi[0] = ct_mul(go[0], ct_where(mask, v, ct_scalar_tensor(0.0, v->dtype)));
    return gi[0] ? 0 : ct_last_status();
}

/* The draws of dropout(x, p) (0 < p < 1): a bool mask from bernoulli_(1 - p), as
 * PyTorch draws its noise, and the kept scale v = 1 / (1 - p) in x's dtype; and x times
 * the noise where(mask, v, 0), computed without autograd. All three scope-owned. */
static int dropout_draw(const ct_tensor *x, double p, struct ct_generator *gen, ct_tensor **mask, ct_tensor **v) {
    *mask = ct__ret(ct__empty_like_raw(x, CT_BOOL));
    *v = ct_div(ct_scalar_tensor(1.0, x->dtype), ct_float(1 - p));
    if (!*mask || !*v) return ct_last_status();
    return ct_bernoulli_(*mask, 1 - p, gen);
}
static ct_tensor *dropout_apply(const ct_tensor *x, const ct_tensor *mask, const ct_tensor *v) {
    bool prev = ct_set_grad_enabled(false);
    ct_tensor *r = ct_mul(x, ct_where(mask, v, ct_scalar_tensor(0.0, x->dtype)));
    ct_set_grad_enabled(prev);
    return r;
}

CT_API ct_tensor *ct_dropout(const ct_tensor *x, double p, bool training, struct ct_generator *gen) {
    CT_CHECK_ARG("dropout", x);
    if (!(p >= 0 && p <= 1))
        return ct__err(CT_ERR_ARG, "dropout: dropout probability has to be between 0 and 1, but got %g", p);
    if (!training || p == 0 || x->numel == 0) return ct__ret(ct_retain((ct_tensor *)x));
    if (!ct_dtype_is_floating(x->dtype) && !ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "dropout: expected a floating point tensor, got %s", ct_dtype_name(x->dtype));
    if (ct_scope_begin()) return NULL;
    ct_tensor *r = NULL;
    if (p == 1) r = ct_mul(x, ct_zeros(0, NULL, x->dtype));
    else {
        /* PyTorch's CPU dropout is x * noise, noise = bernoulli_(1 - p).div_(1 - p) in x's
         * dtype, and its MulBackward0 keeps the noise. The same draws go into a bool mask
         * instead (a quarter of float32's memory, for as long as the graph lives); the
         * noise is made from it when needed, so the values are the same. */
        ct_tensor *mask, *v;
        if (!dropout_draw(x, p, gen, &mask, &v) && (r = dropout_apply(x, mask, v)) &&
            ct__needs_grad(1, (const ct_tensor *[]){x})) {
            ct_node *n = ct__node_new("MulBackward0", dropout_backward, 1);
            if (!n || ct__node_set_next(n, 0, x) || ct__save(n, mask) < 0 || ct__save(n, v) < 0) {
                if (n) ct__node_release(n);
                r = NULL;
            } else {
                ct__set_history(r, n, 0);
            }
        }
    }
    r = ct_keep(r); /* to the enclosing scope, or to the caller */
    ct_scope_end();
    return r;
}

/* ---- dropout(relu(h)) as one node (the feed-forward block of a Transformer layer) ----
 * The values are PyTorch's, relu(h) * noise with the same draws, but the node saves only
 * its output y, which the next linear layer saves anyway: y > 0 exactly where h > 0 and
 * the element was kept, so the gradient is threshold_backward(grad * v, y, 0). The
 * separate ops would keep relu's output and the mask as well (for an [N, 1024] float32
 * activation, 5 bytes per element). The gradients are the same except where a
 * non-finite gradient meets a dropped element (PyTorch's grad * 0 is then NaN, here 0). */
static int relu_dropout_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *y = ct__unpack(n, 0), *v = ct__unpack(n, 1);
    if (!y || !v) return ct_last_status();
    gi[0] = ct_threshold_backward(ct_mul(go[0], v), y, 0.0);
    return gi[0] ? 0 : ct_last_status();
}

ct_tensor *ct__relu_dropout(const ct_tensor *h, double p, struct ct_generator *gen) {
    CT_CHECK_ARG("relu_dropout", h);
    if (!(p > 0 && p < 1) || !ct_dtype_is_floating(h->dtype) || h->numel == 0)
        return ct_dropout(ct_relu(h), p, true, gen);
    if (ct_scope_begin()) return NULL;
    ct_tensor *mask, *v, *r = NULL;
    bool prev = ct_set_grad_enabled(false);
    ct_tensor *a = ct_relu(h);
    ct_set_grad_enabled(prev);
    if (a && !dropout_draw(h, p, gen, &mask, &v) && (r = dropout_apply(a, mask, v)) &&
        ct__needs_grad(1, (const ct_tensor *[]){h})) {
        ct_node *n = ct__node_new("ReluDropoutBackward", relu_dropout_backward, 1);
        if (!n || ct__node_set_next(n, 0, h) || ct__save_output(n, r, 0) < 0 || ct__save(n, v) < 0) {
            if (n) ct__node_release(n);
            r = NULL;
        } else {
            ct__set_history(r, n, 0);
        }
    }
    r = ct_keep(r);
    ct_scope_end();
    return r;
}
