/* Linear layers, normalisation and embedding (torch.nn.functional). Composites of
 * differentiable ops run in a private scope and hand their result to the caller's;
 * batch_norm and layer_norm have fused kernels (src/cpu/batchnorm.c, src/cpu/norm.c)
 * whose backward switches to the differentiable formula under create_graph. */
#include <math.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"
#include "ctorch.h"
#include "ctorch/nn.h"

#include "ops/compose.h"
#include "ops/nn_common.h"
#define BEGIN CT_COMPOSE_BEGIN
#define END CT_COMPOSE_END

CT_API ct_tensor *ct_nn_linear(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias) {
    CT_CHECK_ARG("linear", input);
    CT_CHECK_ARG("linear", weight);
    if (weight->ndim != 2)
        return ct__err(CT_ERR_SHAPE, "linear: weight must be 2-D, got %s", CT_SHAPESTR(weight));
    if (input->ndim == 0 || input->sizes[input->ndim - 1] != weight->sizes[1])
        return ct__err(CT_ERR_SHAPE, "linear: mat1 and mat2 shapes cannot be multiplied (%s and %s^T)",
                       CT_SHAPESTR(input), CT_SHAPESTR(weight));
    BEGIN
    if (input->ndim == 2 && bias) r_ = ct_addmm(bias, input, ct_t(weight), 1.0, 1.0);
    else {
        r_ = ct_matmul(input, ct_t(weight));
        if (bias) r_ = ct_add(r_, bias);
    }
    END
}

/* ---- batch_norm: fused kernels (src/cpu/batchnorm.c) for float32/float64 ----
 * The forward kernel computes the statistics, the output and the running-stat update in
 * two passes over x; the backward kernel the three gradients in two more. Under
 * create_graph the backward is instead the same formula written in differentiable ops
 * (the statistics recomputed from x), so double backward still comes free. */
static bool bn_vec_ok(const ct_tensor *v, const ct_tensor *x) {
    return !v || (v->ndim == 1 && v->dtype == x->dtype && ct__is_contiguous(v));
}

/* reduce dims (all but 1) and the [1, C, 1, ...] broadcast shape of x */
static int bn_dims(const ct_tensor *x, int64_t *rdims, int64_t *bshape) {
    int nr = 0;
    for (int d = 0; d < x->ndim; d++) {
        bshape[d] = d == 1 ? x->sizes[1] : 1;
        if (d != 1) rdims[nr++] = d;
    }
    return nr;
}

/* bn's three gradients from g (the gradient at its output) in differentiable ops, the
 * statistics recomputed from x so that they carry its history: the create_graph
 * backward of bn's node and of the fused node below. n: i[0] training, d[0] eps; the
 * inputs x, weight, bias. */
static int bn_backward_graph(ct_node *n, ct_tensor *x, ct_tensor *mean, ct_tensor *invstd, ct_tensor *w,
                             ct_tensor *g, ct_tensor **gi) {
    bool training = n->i[0];
    int64_t rdims[CT_MAX_DIMS], bshape[CT_MAX_DIMS];
    int nd = x->ndim, nr = bn_dims(x, rdims, bshape);
    ct_tensor *xhat, *is;
    if (training) {
        ct_tensor *m = ct_mean_dim(x, nr, rdims, true, CT_NUM_DTYPES);
        is = ct_rsqrt(ct_add_scalar(ct_var(x, nr, rdims, 0.0, true), n->d[0]));
        xhat = ct_mul(ct_sub(x, m), is);
    } else {
        is = ct_reshape(invstd, nd, bshape);
        xhat = ct_mul(ct_sub(x, ct_reshape(mean, nd, bshape)), is);
    }
    if (ct__node_needs(n, 0)) {
        ct_tensor *k = w ? ct_mul(is, ct_reshape(w, nd, bshape)) : is;
        ct_tensor *inner = g;
        if (training)
            inner = ct_sub(ct_sub(g, ct_mean_dim(g, nr, rdims, true, CT_NUM_DTYPES)),
                           ct_mul(xhat, ct_mean_dim(ct_mul(g, xhat), nr, rdims, true, CT_NUM_DTYPES)));
        if (!(gi[0] = ct_mul(inner, k))) return ct_last_status();
    }
    if (ct__node_needs(n, 1) && !(gi[1] = ct_sum_dim(ct_mul(g, xhat), nr, rdims, false, CT_NUM_DTYPES)))
        return ct_last_status();
    if (ct__node_needs(n, 2) && !(gi[2] = ct_sum_dim(g, nr, rdims, false, CT_NUM_DTYPES))) return ct_last_status();
    return 0;
}

/* Runs a bn backward kernel (BATCH_NORM_BWD or the fused one) for the gradients node n
 * needs; in: the kernel's inputs, whose x is in[xslot]. */
static int bn_backward_kernel(ct_node *n, ct_op op, int n_in, const ct_tensor *const *in, int xslot, ct_tensor **gi) {
    const ct_tensor *x = in[xslot];
    int64_t C = x->sizes[1];
    ct_tensor *out[3] = {NULL, NULL, NULL};
    int rc = 0;
    if (ct__node_needs(n, 0) && !(out[0] = ct__empty_raw(x->ndim, x->sizes, x->dtype))) rc = ct_last_status();
    for (int k = 1; k < 3 && !rc; k++)
        if (ct__node_needs(n, k) && !(out[k] = ct__empty_raw(1, &C, x->dtype))) rc = ct_last_status();
    if (!rc) {
        ct_kernel_args a = {.op = op, .n_out = 3, .n_in = n_in, .out = {out[0], out[1], out[2]},
                            .i = {n->i[0], n->i[2]}};
        for (int k = 0; k < n_in; k++) a.in[k] = in[k];
        rc = ct__dispatch(&a);
    }
    for (int k = 0; k < 3; k++) {
        if (rc) ct_release(out[k]);
        else if (out[k]) gi[k] = ct__ret(out[k]);
    }
    return rc;
}

static int bn_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    bool has_w = n->i[1];
    ct_tensor *x = ct__unpack(n, 0), *mean = ct__unpack(n, 1), *invstd = ct__unpack(n, 2);
    ct_tensor *w = has_w ? ct__unpack(n, 3) : NULL;
    if (!x || !mean || !invstd || (has_w && !w)) return ct_last_status();
    if (ct_is_grad_enabled()) return bn_backward_graph(n, x, mean, invstd, w, go[0], gi); /* create_graph */
    /* first order: the fused kernel */
    ct_tensor *g = ct__contiguous_raw(go[0]), *xc = g ? ct__contiguous_raw(x) : NULL;
    int rc = xc ? bn_backward_kernel(n, CT_OP_BATCH_NORM_BWD, 5, (const ct_tensor *[]){g, xc, w, mean, invstd}, 1, gi)
                : ct_last_status();
    ct_release(g);
    ct_release(xc);
    return rc;
}

/* Records out's node (fn) of bn's inputs: saved 0 input, 1 mean, 2 invstd, 3 weight
 * (an empty slot without one), 4 extra (when given; extra_is_out: out itself, saved
 * as an output); i[0] training, i[1] has weight, i[2] flag (the fused kernel's i[1]),
 * i[3] an extra that is not the output, d[0] eps. 0 or status. */
static int bn_record(ct_tensor *out, const char *name, ct_backward_fn fn, const ct_tensor *input, const ct_tensor *w,
                     const ct_tensor *b, const ct_tensor *mean, const ct_tensor *invstd, const ct_tensor *extra,
                     bool extra_is_out, bool training, int64_t flag, double eps) {
    ct_node *n = ct__node_new(name, fn, 3);
    if (!n || ct__node_set_next(n, 0, input) || ct__node_set_next(n, 1, w) || ct__node_set_next(n, 2, b) ||
        ct__save(n, input) < 0 || ct__save(n, mean) < 0 || ct__save(n, invstd) < 0 ||
        ct__save_if(n, w, w != NULL) < 0 ||
        (extra && (extra_is_out ? ct__save_output(n, extra, 0) : ct__save(n, extra)) < 0)) {
        if (n) ct__node_release(n);
        return ct_last_status();
    }
    n->i[0] = training, n->i[1] = w != NULL, n->i[2] = flag, n->i[3] = extra && !extra_is_out, n->d[0] = eps;
    ct__set_history(out, n, 0);
    return 0;
}

static ct_tensor *bn_fused(const ct_tensor *input, ct_tensor *rm, ct_tensor *rv, const ct_tensor *w,
                           const ct_tensor *b, bool training, double momentum, double eps) {
    int64_t C = input->sizes[1];
    ct_tensor *x = ct__contiguous_raw(input);
    ct_tensor *y = x ? ct__empty_raw(x->ndim, x->sizes, x->dtype) : NULL;
    ct_tensor *mean = y ? ct__empty_raw(1, &C, x->dtype) : NULL, *invstd = mean ? ct__empty_raw(1, &C, x->dtype) : NULL;
    int rc = invstd ? 0 : ct_last_status();
    if (!rc) {
        ct_kernel_args a = {.op = CT_OP_BATCH_NORM, .n_out = 5, .n_in = 3, .out = {y, mean, invstd, rm, rv},
                            .in = {x, w, b}, .i = {training}, .d = {eps, momentum}};
        rc = ct__dispatch(&a);
        if (!rc && training && rm) ct__bump_version(rm);
        if (!rc && training && rv) ct__bump_version(rv);
    }
    if (!rc && ct__needs_grad(3, (const ct_tensor *[]){input, w, b}))
        rc = bn_record(y, "NativeBatchNormBackward0", bn_backward, input, w, b, mean, invstd, NULL, false, training, 0,
                       eps);
    ct_release(x);
    ct_release(mean);
    ct_release(invstd);
    if (rc) { ct_release(y); return NULL; }
    return ct__ret(y);
}

/* batch_norm's argument checks: 0 or a status with PyTorch's message */
static int bn_check(const ct_tensor *input, const ct_tensor *running_mean, const ct_tensor *running_var,
                    const ct_tensor *weight, const ct_tensor *bias, bool training) {
    if (input->ndim < 2)
        return ct__errs(CT_ERR_SHAPE, "batch_norm: expected 2D or more input (got %dD input)", input->ndim);
    int64_t C = input->sizes[1], count = input->numel / (C ? C : 1);
    const ct_tensor *vecs[4] = {running_mean, running_var, weight, bias};
    static const char *names[4] = {"running_mean", "running_var", "weight", "bias"};
    for (int k = 0; k < 4; k++)
        if (vecs[k] && vecs[k]->numel != C)
            return ct__errs(CT_ERR_SHAPE, "batch_norm: running_mean should contain %lld elements not %lld (%s)",
                            (long long)C, (long long)vecs[k]->numel, names[k]);
    if (!training && (!running_mean || !running_var))
        return ct__errs(CT_ERR_ARG, "batch_norm: running_mean and running_var must be defined in evaluation mode");
    if (training && count <= 1)
        return ct__errs(CT_ERR_ARG,
                        "batch_norm: Expected more than 1 value per channel when training, got input size %s",
                        CT_SHAPESTR(input));
    return 0;
}

/* whether bn's fused kernels take these arguments */
static bool bn_fusable(const ct_tensor *input, const ct_tensor *rm, const ct_tensor *rv, const ct_tensor *w,
                       const ct_tensor *b) {
    return (input->dtype == CT_FLOAT32 || input->dtype == CT_FLOAT64) && input->numel > 0 && bn_vec_ok(rm, input) &&
           bn_vec_ok(rv, input) && bn_vec_ok(w, input) && bn_vec_ok(b, input);
}

CT_API ct_tensor *ct_nn_batch_norm(const ct_tensor *input, ct_tensor *running_mean, ct_tensor *running_var,
                                   const ct_tensor *weight, const ct_tensor *bias, bool training, double momentum,
                                   double eps) {
    CT_CHECK_ARG("batch_norm", input);
    if (bn_check(input, running_mean, running_var, weight, bias, training)) return NULL;
    int64_t C = input->sizes[1], count = input->numel / (C ? C : 1);
    if (bn_fusable(input, running_mean, running_var, weight, bias))
        return bn_fused(input, running_mean, running_var, weight, bias, training, momentum, eps);
    int nd = input->ndim;
    int64_t bshape[CT_MAX_DIMS], rdims[CT_MAX_DIMS];
    int nr = bn_dims(input, rdims, bshape);
    BEGIN
    ct_tensor *mean, *var;
    if (training) {
        mean = ct_mean_dim(input, nr, rdims, true, CT_NUM_DTYPES);
        var = ct_var(input, nr, rdims, 0.0, true);
        if (running_mean && running_var && mean && var) {
            bool prev = ct_set_grad_enabled(false);
            ct_tensor *m = ct_reshape(mean, 1, (int64_t[]){C});
            ct_tensor *v = ct_mul_scalar(ct_reshape(var, 1, (int64_t[]){C}), (double)count / (double)(count - 1));
            ct_mul_(running_mean, ct_scalar_tensor(1.0 - momentum, running_mean->dtype));
            ct_add_alpha_(running_mean, ct_to_dtype(m, running_mean->dtype), momentum);
            ct_mul_(running_var, ct_scalar_tensor(1.0 - momentum, running_var->dtype));
            ct_add_alpha_(running_var, ct_to_dtype(v, running_var->dtype), momentum);
            ct_set_grad_enabled(prev);
        }
    } else {
        mean = ct_reshape(running_mean, nd, bshape);
        var = ct_reshape(running_var, nd, bshape);
    }
    ct_tensor *y = ct_mul(ct_sub(input, mean), ct_rsqrt(ct_add_scalar(var, eps)));
    if (weight) y = ct_mul(y, ct_reshape(weight, nd, bshape));
    if (bias) y = ct_add(y, ct_reshape(bias, nd, bshape));
    r_ = y;
    END
}

/* ---- relu(batch_norm(x)) and max_pool2d(relu(batch_norm(x))) as one node each
 * (src/cpu/batchnorm.c) ----
 * What Sequential runs for BatchNorm2d -> ReLU (-> MaxPool2d) (src/nn/module.c). The
 * values and the gradients are the ops' own: the kernels compute bn's output as
 * BATCH_NORM does, relu as RELU and pool with max_pool2d's kernel, and the backward
 * forms threshold_backward's (and max_pool2d's) gradient at bn's output before bn's
 * own sums and formula. One node saves x, the statistics and relu's output (with
 * pooling: an int32 index per output, -1 where relu stops the gradient, instead of
 * bn's output, relu's output and an int64 index), and the kernels read and write each
 * activation far less often. Elsewhere (other dtypes, devices without the kernel, bad
 * arguments) it is the ops one by one, with their errors. */
static int bn_relu_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    bool has_w = n->i[1], pooled = n->i[3];
    ct_tensor *x = ct__unpack(n, 0), *mean = ct__unpack(n, 1), *invstd = ct__unpack(n, 2), *zi = ct__unpack(n, 4);
    ct_tensor *w = has_w ? ct__unpack(n, 3) : NULL;
    if (!x || !mean || !invstd || !zi || (has_w && !w)) return ct_last_status();
    if (!ct_is_grad_enabled()) {
        ct_tensor *g = ct__contiguous_raw(go[0]), *xc = g ? ct__contiguous_raw(x) : NULL;
        int rc = xc ? bn_backward_kernel(n, pooled ? CT_OP_BN_RELU_MAX_POOL2D_BWD : CT_OP_BN_RELU_BWD, 6,
                                         (const ct_tensor *[]){g, zi, xc, w, mean, invstd}, 2, gi)
                    : ct_last_status();
        ct_release(g);
        ct_release(xc);
        return rc;
    }
    /* create_graph: the gradient at bn's output in differentiable ops (relu's
     * threshold_backward; with pooling, the pooled gradient where relu passes it, added
     * at its index), then bn's formula */
    ct_tensor *gy;
    if (!pooled) {
        gy = ct_threshold_backward(go[0], zi, 0.0);
    } else {
        int64_t N = x->sizes[0], C = x->sizes[1], flat[3] = {N, C, -1};
        ct_tensor *keep = ct_ge(zi, ct_scalar_tensor(0, CT_INT32));
        ct_tensor *gk = ct_where(keep, go[0], ct_scalar_tensor(0, go[0]->dtype));
        ct_tensor *ik = ct_where(keep, ct_to_dtype(zi, CT_INT64), ct_scalar_tensor(0, CT_INT64));
        ct_tensor *z = ct_zeros(3, (int64_t[]){N, C, x->sizes[2] * x->sizes[3]}, go[0]->dtype);
        gy = ct_reshape(ct_scatter_add(z, 2, ct_reshape(ik, 3, flat), ct_reshape(gk, 3, flat)), 4, x->sizes);
    }
    return gy ? bn_backward_graph(n, x, mean, invstd, w, gy, gi) : ct_last_status();
}

/* kernel NULL: relu(batch_norm(input)); else max_pool2d of it */
static ct_tensor *bn_relu_fused(const ct_tensor *input, ct_tensor *rm, ct_tensor *rv, const ct_tensor *w,
                                const ct_tensor *b, bool training, double momentum, double eps, const int64_t *kernel,
                                const ct_pool_opts *opts) {
    CT_CHECK_ARG("batch_norm", input);
    int64_t kv[10];
    bool pooled = kernel != NULL;
    if (input->ndim != 4 || !bn_fusable(input, rm, rv, w, b) ||
        !ct__has_kernel(input->storage->device.type, pooled ? CT_OP_BN_RELU_MAX_POOL2D : CT_OP_BN_RELU) ||
        input->sizes[2] * input->sizes[3] > INT32_MAX || bn_check(input, rm, rv, w, b, training) ||
        (pooled && ct__max_pool2d_geometry(input, kernel, opts, kv))) {
        if (ct_scope_begin()) return NULL;
        ct_tensor *r = ct_relu(ct_nn_batch_norm(input, rm, rv, w, b, training, momentum, eps));
        if (pooled) r = ct_nn_max_pool2d(r, kernel, opts, NULL);
        r = ct_keep(r);
        ct_scope_end();
        return r;
    }
    int64_t C = input->sizes[1], osz[4] = {input->sizes[0], C, pooled ? kv[8] : input->sizes[2],
                                            pooled ? kv[9] : input->sizes[3]};
    /* whole 2x2 windows at stride 2 (kh kw dh dw ph pw sh sw Ho Wo; no ceil-mode partial
     * window): each input in at most one window */
    bool pool2 = pooled && kv[0] == 2 && kv[1] == 2 && kv[2] == 1 && kv[3] == 1 && kv[4] == 0 && kv[5] == 0 &&
                 kv[6] == 2 && kv[7] == 2 && 2 * kv[8] <= input->sizes[2] && 2 * kv[9] <= input->sizes[3];
    ct_tensor *x = ct__contiguous_raw(input);
    ct_tensor *z = x ? ct__empty_raw(4, osz, x->dtype) : NULL;
    ct_tensor *idx = z && pooled ? ct__empty_raw(4, osz, CT_INT32) : NULL;
    ct_tensor *mean = z && (idx || !pooled) ? ct__empty_raw(1, &C, x->dtype) : NULL;
    ct_tensor *invstd = mean ? ct__empty_raw(1, &C, x->dtype) : NULL;
    int rc = invstd ? 0 : ct_last_status();
    if (!rc) {
        ct_kernel_args a = pooled ? (ct_kernel_args){.op = CT_OP_BN_RELU_MAX_POOL2D, .n_out = 6, .n_in = 3,
                                                     .out = {z, idx, mean, invstd, rm, rv}, .in = {x, w, b},
                                                     .i = {training, pool2}, .d = {eps, momentum}, .iv = kv,
                                                     .n_iv = 10}
                                  : (ct_kernel_args){.op = CT_OP_BN_RELU, .n_out = 5, .n_in = 3,
                                                     .out = {z, mean, invstd, rm, rv}, .in = {x, w, b},
                                                     .i = {training}, .d = {eps, momentum}};
        rc = ct__dispatch(&a);
        if (!rc && training && rm) ct__bump_version(rm);
        if (!rc && training && rv) ct__bump_version(rv);
    }
    if (!rc && ct__needs_grad(3, (const ct_tensor *[]){input, w, b})) {
        rc = pooled ? bn_record(z, "BatchNormReluMaxPool2DBackward", bn_relu_backward, input, w, b, mean, invstd, idx,
                                false, training, pool2, eps)
                    : bn_record(z, "BatchNormReluBackward", bn_relu_backward, input, w, b, mean, invstd, z, true,
                                training, 0, eps);
    }
    ct_release(x);
    ct_release(idx);
    ct_release(mean);
    ct_release(invstd);
    if (rc) { ct_release(z); return NULL; }
    return ct__ret(z);
}

ct_tensor *ct__nn_batch_norm_relu_max_pool2d(const ct_tensor *input, ct_tensor *rm, ct_tensor *rv, const ct_tensor *w,
                                             const ct_tensor *b, bool training, double momentum, double eps,
                                             const int64_t kernel[2], const ct_pool_opts *opts) {
    if (!kernel) return ct__err(CT_ERR_ARG, "max_pool2d: kernel_size is required");
    return bn_relu_fused(input, rm, rv, w, b, training, momentum, eps, kernel, opts);
}

ct_tensor *ct__nn_batch_norm_relu(const ct_tensor *input, ct_tensor *rm, ct_tensor *rv, const ct_tensor *w,
                                  const ct_tensor *b, bool training, double momentum, double eps) {
    return bn_relu_fused(input, rm, rv, w, b, training, momentum, eps, NULL, NULL);
}

/* ---- layer_norm: a fused row kernel for float32 / float64 / float16 / bfloat16 on the
 * CPU (PyTorch's native_layer_norm; the half types computed in float32), the composite
 * of public ops for everything else ---- */

/* The fused forward of layer_norm and group_norm: kernel op (i: its integer
 * parameters) over contiguous input, weight and bias, writing y, mean and rstd (rows
 * statistics); the node (name, backward fn) saves x, mean, rstd and the weight, with
 * i[0] = what (layer_norm's number of dims, group_norm's groups), i[1] = has a weight,
 * d[0] = eps. */
static ct_tensor *norm_fused(ct_op op, const int64_t *ki, int64_t rows, const char *name, ct_backward_fn fn,
                             int64_t what, const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                             double eps) {
    ct_dtype dt = input->dtype;
    ct_tensor *xc = ct__contiguous_raw(input), *wc = weight ? ct__contiguous_raw(weight) : NULL;
    ct_tensor *bc = bias ? ct__contiguous_raw(bias) : NULL;
    ct_tensor *y = ct__empty_raw(input->ndim, input->sizes, dt);
    /* the row statistics of a half type in float32, as the kernel computes them */
    ct_dtype sdt = ct__is_half(dt) ? CT_FLOAT32 : dt;
    ct_tensor *mean = ct__empty_raw(1, &rows, sdt), *rstd = ct__empty_raw(1, &rows, sdt);
    int rc = 0;
    if (!xc || (weight && !wc) || (bias && !bc) || !y || !mean || !rstd) rc = -1;
    else {
        ct_kernel_args a = {.op = op, .n_out = 3, .n_in = 3, .out = {y, mean, rstd}, .in = {xc, wc, bc}, .d = {eps},
                            .i = {ki[0], ki[1], ki[2], ki[3]}};
        rc = ct__dispatch(&a);
    }
    ct_release(xc);
    ct_release(wc);
    ct_release(bc);
    if (!rc && ct__needs_grad(3, (const ct_tensor *[]){input, weight, bias})) {
        ct_node *nd = ct__node_new(name, fn, 3);
        if (!nd || ct__node_set_next(nd, 0, input) || ct__node_set_next(nd, 1, weight) ||
            ct__node_set_next(nd, 2, bias) || ct__save(nd, input) < 0 || ct__save(nd, mean) < 0 ||
            ct__save(nd, rstd) < 0 || (weight && ct__save(nd, weight) < 0)) {
            if (nd) ct__node_release(nd);
            rc = -1;
        } else {
            nd->i[0] = what;
            nd->i[1] = weight != NULL;
            nd->d[0] = eps;
            ct__set_history(y, nd, 0);
        }
    }
    ct_release(mean);
    ct_release(rstd);
    if (rc) {
        ct_release(y);
        return NULL;
    }
    return ct__ret(y);
}

/* What both backwards start from: the saved x, mean, rstd and weight (NULL without one),
 * which of the input, weight and bias gradients are wanted, and whether the fused
 * kernel serves (no graph to build, a CPU gradient of x's dtype). */
typedef struct {
    ct_tensor *x, *mean, *rstd, *w;
    bool need[3], fused;
} norm_state;

/* Nonzero: a saved tensor is gone. */
static int norm_saved(ct_node *nd, ct_tensor *g, norm_state *st) {
    bool has_w = nd->i[1] != 0;
    st->x = ct__unpack(nd, 0), st->mean = ct__unpack(nd, 1), st->rstd = ct__unpack(nd, 2);
    st->w = has_w ? ct__unpack(nd, 3) : NULL;
    if (!st->x || !st->mean || !st->rstd || (has_w && !st->w)) return ct_last_status();
    st->need[0] = ct__node_needs(nd, 0), st->need[1] = has_w && ct__node_needs(nd, 1);
    st->need[2] = ct__node_needs(nd, 2);
    st->fused = !ct__needs_grad(3, (const ct_tensor *[]){g, st->x, st->w}) && g->dtype == st->x->dtype &&
                g->storage->device.type == CT_DEVICE_CPU;
    return 0;
}

/* The fused backward kernel of both (op, i as the forward's): the gradients wanted of
 * x (its shape), the weight and the bias (pn dims pshape) into gi. */
static int norm_backward_fused(ct_op op, const int64_t *ki, ct_tensor *g, const norm_state *st, int pn,
                               const int64_t *pshape, ct_tensor **gi) {
    const ct_tensor *x = st->x, *w = st->w;
    const bool *need = st->need;
    ct_tensor *dy = ct__contiguous_raw(g), *xc = ct__contiguous_raw(x), *wc = w ? ct__contiguous_raw(w) : NULL;
    ct_tensor *dx = need[0] ? ct__empty_raw(x->ndim, x->sizes, x->dtype) : NULL;
    ct_tensor *dw = need[1] ? ct__empty_raw(pn, pshape, x->dtype) : NULL;
    ct_tensor *db = need[2] ? ct__empty_raw(pn, pshape, x->dtype) : NULL;
    int rc = 0;
    if (!dy || !xc || (w && !wc) || (need[0] && !dx) || (need[1] && !dw) || (need[2] && !db)) rc = ct_last_status();
    else {
        ct_kernel_args a = {.op = op, .n_out = 0 /* some may be NULL */, .n_in = 5, .out = {dx, dw, db},
                            .in = {dy, xc, st->mean, st->rstd, wc}, .i = {ki[0], ki[1], ki[2], ki[3]}};
        rc = ct__dispatch(&a);
    }
    ct_release(dy);
    ct_release(xc);
    ct_release(wc);
    if (rc) {
        ct_release(dx);
        ct_release(dw);
        ct_release(db);
        return rc;
    }
    gi[0] = dx ? ct__ret(dx) : NULL;
    gi[1] = dw ? ct__ret(dw) : NULL;
    gi[2] = db ? ct__ret(db) : NULL;
    return 0;
}

/* Saved: 0 x, 1 mean [N], 2 rstd [N], 3 weight (i[1]); i[0] number of normalised dims; d[0] eps.
 * Without a graph to build (no create_graph, or nothing involved requires grad) the fused
 * backward kernel; otherwise the same gradients from differentiable ops (the statistics
 * recomputed from x so that they carry x's history), for double backward. */
static int layer_norm_backward(ct_node *nd, ct_tensor *const *go, ct_tensor **gi) {
    int n = (int)nd->i[0];
    double eps = nd->d[0];
    ct_tensor *g = go[0];
    norm_state st;
    if (norm_saved(nd, g, &st)) return ct_last_status();
    ct_tensor *x = st.x, *w = st.w;
    bool need_x = st.need[0], need_w = st.need[1], need_b = st.need[2];
    int nd_ = x->ndim, nlead = nd_ - n;
    const int64_t *nshape = x->sizes + nlead;
    if (st.fused) {
        int64_t M = ct__prod(n, nshape), N = M ? x->numel / M : 0;
        return norm_backward_fused(CT_OP_LAYER_NORM_BACKWARD, (int64_t[4]){N, M}, g, &st, n, nshape, gi);
    }
    int64_t dims[CT_MAX_DIMS], lead[CT_MAX_DIMS];
    for (int k = 0; k < n; k++) dims[k] = nlead + k;
    for (int k = 0; k < nlead; k++) lead[k] = k;
    ct_tensor *xh = NULL;
    if (need_x || need_w) {
        ct_tensor *mu = ct_mean_dim(x, n, dims, true, CT_NUM_DTYPES);
        ct_tensor *rs = ct_rsqrt(ct_add_scalar(ct_var(x, n, dims, 0.0, true), eps));
        xh = ct_mul(ct_sub(x, mu), rs);
        if (!xh) return ct_last_status();
        if (need_x) { /* rstd * (g w - mean(g w) - xh * mean(g w xh)) */
            ct_tensor *gw = w ? ct_mul(g, w) : g;
            gi[0] = ct_mul(rs, ct_sub(ct_sub(gw, ct_mean_dim(gw, n, dims, true, CT_NUM_DTYPES)),
                                      ct_mul(xh, ct_mean_dim(ct_mul(gw, xh), n, dims, true, CT_NUM_DTYPES))));
            if (!gi[0]) return ct_last_status();
        }
    }
    if (need_w) {
        ct_tensor *gx = ct_mul(g, xh);
        gi[1] = nlead ? ct_sum_dim(gx, nlead, lead, false, CT_NUM_DTYPES) : gx;
        if (!gi[1]) return ct_last_status();
    }
    if (need_b) {
        gi[2] = nlead ? ct_sum_dim(g, nlead, lead, false, CT_NUM_DTYPES) : ct__pass(g);
        if (!gi[2]) return ct_last_status();
    }
    return 0;
}

static ct_tensor *layer_norm_fused(const ct_tensor *input, int n, const ct_tensor *weight, const ct_tensor *bias,
                                   double eps) {
    int64_t M = ct__prod(n, input->sizes + input->ndim - n), N = input->numel / M;
    return norm_fused(CT_OP_LAYER_NORM, (int64_t[4]){N, M}, N, "NativeLayerNormBackward0", layer_norm_backward, n,
                      input, weight, bias, eps);
}

CT_API ct_tensor *ct_nn_layer_norm(const ct_tensor *input, int n, const int64_t *normalized_shape,
                                   const ct_tensor *weight, const ct_tensor *bias, double eps) {
    CT_CHECK_ARG("layer_norm", input);
    if (n < 1 || n > input->ndim || !normalized_shape)
        return ct__err(CT_ERR_SHAPE, "layer_norm: normalized_shape of %d dims does not fit input of size %s", n,
                       CT_SHAPESTR(input));
    for (int k = 0; k < n; k++)
        if (input->sizes[input->ndim - n + k] != normalized_shape[k])
            return ct__err(CT_ERR_SHAPE, "layer_norm: Given normalized_shape=%s, expected input with shape [*, %s], but "
                           "got input of size%s", CT_SIZESSTR(n, normalized_shape), CT_SIZESSTR(n, normalized_shape) + 1,
                           CT_SHAPESTR(input));
    const ct_tensor *wb[2] = {weight, bias};
    for (int k = 0; k < 2; k++)
        if (wb[k] && !ct__same_sizes(wb[k]->ndim, wb[k]->sizes, n, normalized_shape))
            return ct__err(CT_ERR_SHAPE, "layer_norm: Expected %s to be of same shape as normalized_shape, but got %s "
                           "of shape %s and normalized_shape = %s", k ? "bias" : "weight", k ? "bias" : "weight",
                           CT_SHAPESTR(wb[k]), CT_SIZESSTR(n, normalized_shape));
    ct_dtype dt = input->dtype;
    bool fused = (dt == CT_FLOAT32 || dt == CT_FLOAT64 || ct__is_half(dt)) &&
                 input->numel > 0 && input->storage->device.type == CT_DEVICE_CPU;
    for (int k = 0; k < 2; k++)
        if (wb[k] && (wb[k]->dtype != input->dtype || wb[k]->storage->device.type != CT_DEVICE_CPU)) fused = false;
    if (fused) return layer_norm_fused(input, n, weight, bias, eps);
    int64_t dims[CT_MAX_DIMS];
    for (int k = 0; k < n; k++) dims[k] = input->ndim - n + k;
    BEGIN
    ct_tensor *mean = ct_mean_dim(input, n, dims, true, CT_NUM_DTYPES);
    ct_tensor *var = ct_var(input, n, dims, 0.0, true);
    ct_tensor *y = ct_mul(ct_sub(input, mean), ct_rsqrt(ct_add_scalar(var, eps)));
    if (weight) y = ct_mul(y, weight);
    if (bias) y = ct_add(y, bias);
    r_ = y;
    END
}

/* ---- group_norm: a fused kernel for float32 / float64 on the CPU (PyTorch's
 * native_group_norm; src/cpu/norm.c), layer_norm over [N, G, L] and the affine otherwise ---- */

/* Saved: 0 x, 1 mean [N * G], 2 rstd, 3 weight (i[1]); i[0] G; d[0] eps. As layer_norm's:
 * the fused backward kernel without a graph to build, otherwise differentiable ops. */
static int group_norm_backward(ct_node *nd, ct_tensor *const *go, ct_tensor **gi) {
    int64_t G = nd->i[0];
    double eps = nd->d[0];
    ct_tensor *g = go[0];
    norm_state st;
    if (norm_saved(nd, g, &st)) return ct_last_status();
    ct_tensor *x = st.x, *w = st.w;
    bool need_x = st.need[0], need_w = st.need[1], need_b = st.need[2];
    int nd_ = x->ndim;
    int64_t N = x->sizes[0], C = x->sizes[1], HW = ct__prod(nd_ - 2, x->sizes + 2);
    if (st.fused)
        return norm_backward_fused(CT_OP_GROUP_NORM_BACKWARD, (int64_t[4]){N, C, HW, G}, g, &st, 1, &C, gi);
    /* layer_norm's formula over the rows of [N, G, L]; weight and bias gradients summed
     * over every dim but the channels */
    int64_t rows[3] = {N, G, G ? C / G * HW : 0}, last = 2, red[CT_MAX_DIMS], bshape[CT_MAX_DIMS];
    int nred = 0;
    for (int d = 0; d < nd_; d++) {
        bshape[d] = d == 1 ? C : 1;
        if (d != 1) red[nred++] = d;
    }
    ct_tensor *xh = NULL;
    if (need_x || need_w) {
        ct_tensor *xg = ct_reshape(x, 3, rows);
        ct_tensor *mu = ct_mean_dim(xg, 1, &last, true, CT_NUM_DTYPES);
        ct_tensor *rs = ct_rsqrt(ct_add_scalar(ct_var(xg, 1, &last, 0.0, true), eps));
        xh = ct_mul(ct_sub(xg, mu), rs);
        if (!xh) return ct_last_status();
        if (need_x) {
            ct_tensor *gw = ct_reshape(w ? ct_mul(g, ct_reshape(w, nd_, bshape)) : g, 3, rows);
            ct_tensor *dxh = ct_sub(ct_sub(gw, ct_mean_dim(gw, 1, &last, true, CT_NUM_DTYPES)),
                                    ct_mul(xh, ct_mean_dim(ct_mul(gw, xh), 1, &last, true, CT_NUM_DTYPES)));
            gi[0] = ct_reshape(ct_mul(rs, dxh), nd_, x->sizes);
            if (!gi[0]) return ct_last_status();
        }
    }
    if (need_w) {
        gi[1] = ct_sum_dim(ct_mul(g, ct_reshape(xh, nd_, x->sizes)), nred, red, false, CT_NUM_DTYPES);
        if (!gi[1]) return ct_last_status();
    }
    if (need_b) {
        gi[2] = ct_sum_dim(g, nred, red, false, CT_NUM_DTYPES);
        if (!gi[2]) return ct_last_status();
    }
    return 0;
}

static ct_tensor *group_norm_fused(const ct_tensor *input, int64_t G, const ct_tensor *weight, const ct_tensor *bias,
                                   double eps) {
    int64_t N = input->sizes[0], C = input->sizes[1], HW = ct__prod(input->ndim - 2, input->sizes + 2);
    return norm_fused(CT_OP_GROUP_NORM, (int64_t[4]){N, C, HW, G}, N * G, "NativeGroupNormBackward0",
                      group_norm_backward, G, input, weight, bias, eps);
}

CT_API ct_tensor *ct_nn_group_norm(const ct_tensor *input, int64_t num_groups, const ct_tensor *weight,
                                   const ct_tensor *bias, double eps) {
    CT_CHECK_ARG("group_norm", input);
    if (input->ndim < 2)
        return ct__err(CT_ERR_SHAPE, "group_norm: Expected at least 2 dimensions for input tensor but received %d",
                       input->ndim);
    int64_t N = input->sizes[0], C = input->sizes[1];
    if (num_groups <= 0 || C % num_groups != 0)
        return ct__err(CT_ERR_SHAPE, "group_norm: Expected number of channels in input to be divisible by num_groups, "
                       "but got input of shape %s and num_groups=%lld", CT_SHAPESTR(input), (long long)num_groups);
    if (C == 0) return ct__err(CT_ERR_SHAPE, "group_norm: Expected number of channels to be greater than 0, got 0");
    int64_t HW = ct__prod(input->ndim - 2, input->sizes + 2);
    if (HW == 0) return ct__err(CT_ERR_SHAPE, "group_norm: Expected HxW to be greater than 0, got 0");
    if (N * (C / num_groups) * HW == 1) { /* F.group_norm's check on [N * C / G, G, *spatial] */
        int64_t vs[CT_MAX_DIMS];
        vs[0] = N * C / num_groups, vs[1] = num_groups;
        for (int d = 2; d < input->ndim; d++) vs[d] = input->sizes[d];
        return ct__err(CT_ERR_SHAPE, "group_norm: Expected more than 1 value per channel when training, got input "
                       "size %s", CT_SIZESSTR(input->ndim, vs));
    }
    const ct_tensor *wb[2] = {weight, bias};
    for (int k = 0; k < 2; k++)
        if (wb[k] && (wb[k]->ndim != 1 || wb[k]->numel != C))
            return ct__err(CT_ERR_SHAPE, "group_norm: Expected %s to be a vector of size equal to the number of channels "
                           "in input, but got %s of shape %s and input of shape %s", k ? "bias" : "weight",
                           k ? "bias" : "weight", CT_SHAPESTR(wb[k]), CT_SHAPESTR(input));
    bool fused = (input->dtype == CT_FLOAT32 || input->dtype == CT_FLOAT64) && input->numel > 0 &&
                 input->storage->device.type == CT_DEVICE_CPU;
    for (int k = 0; k < 2; k++)
        if (wb[k] && (wb[k]->dtype != input->dtype || wb[k]->storage->device.type != CT_DEVICE_CPU)) fused = false;
    if (fused) return group_norm_fused(input, num_groups, weight, bias, eps);
    int nd = input->ndim;
    int64_t bshape[CT_MAX_DIMS];
    for (int d = 0; d < nd; d++) bshape[d] = d == 1 ? C : 1;
    BEGIN
    /* each (sample, group) is a row normalised as layer_norm does (biased variance, eps
     * inside the root), then the per-channel affine as a multiply and an add */
    int64_t L = C / num_groups * ct__prod(nd - 2, input->sizes + 2);
    ct_tensor *g = ct_reshape(input, 3, (int64_t[]){N, num_groups, L});
    ct_tensor *y = ct_reshape(ct_nn_layer_norm(g, 1, &L, NULL, NULL, eps), nd, input->sizes);
    ct_tensor *w = weight ? ct_reshape(weight, nd, bshape) : NULL, *b = bias ? ct_reshape(bias, nd, bshape) : NULL;
    if (w && b) y = ct_add(ct_mul(y, w), b);
    else if (w) y = ct_mul(y, w);
    else if (b) y = ct_add(y, b);
    r_ = y;
    END
}

CT_API ct_tensor *ct_nn_rms_norm(const ct_tensor *input, int n, const int64_t *normalized_shape,
                                 const ct_tensor *weight, double eps) {
    CT_CHECK_ARG("rms_norm", input);
    if (n < 1 || n > input->ndim || !normalized_shape)
        return ct__err(CT_ERR_SHAPE, "rms_norm: normalized_shape of %d dims does not fit input of size %s", n,
                       CT_SHAPESTR(input));
    for (int k = 0; k < n; k++)
        if (input->sizes[input->ndim - n + k] != normalized_shape[k])
            return ct__err(CT_ERR_SHAPE, "rms_norm: Given normalized_shape=%s, expected input with shape [*, %s], but "
                           "got input of size%s", CT_SIZESSTR(n, normalized_shape), CT_SIZESSTR(n, normalized_shape) + 1,
                           CT_SHAPESTR(input));
    if (weight && !ct__same_sizes(weight->ndim, weight->sizes, n, normalized_shape))
        return ct__err(CT_ERR_SHAPE, "rms_norm: weight of shape %s does not match normalized_shape %s",
                       CT_SHAPESTR(weight), CT_SIZESSTR(n, normalized_shape));
    if (!ct_dtype_is_floating(input->dtype))
        return ct__err(CT_ERR_DTYPE, "rms_norm: expected a floating point input, got %s", ct_dtype_name(input->dtype));
    if (eps < 0) /* torch.finfo(dtype).eps */
        eps = input->dtype == CT_FLOAT64 ? 2.220446049250313e-16 : input->dtype == CT_FLOAT32 ? 1.1920928955078125e-07
              : input->dtype == CT_BFLOAT16 ? 0.0078125 : 0.0009765625;
    int64_t dims[CT_MAX_DIMS];
    for (int k = 0; k < n; k++) dims[k] = input->ndim - n + k;
    BEGIN
    ct_tensor *ms = ct_mean_dim(ct_mul(input, input), n, dims, true, CT_NUM_DTYPES);
    ct_tensor *y = ct_mul(input, ct_rsqrt(ct_add_scalar(ms, eps)));
    if (weight) y = ct_mul(y, weight);
    r_ = y;
    END
}

CT_API ct_tensor *ct_nn_instance_norm(const ct_tensor *input, ct_tensor *running_mean, ct_tensor *running_var,
                                      const ct_tensor *weight, const ct_tensor *bias, bool use_input_stats,
                                      double momentum, double eps) {
    CT_CHECK_ARG("instance_norm", input);
    if (input->ndim < 3)
        return ct__err(CT_ERR_SHAPE, "instance_norm: expected 3D or more input (got %dD input)", input->ndim);
    int64_t N = input->sizes[0], C = input->sizes[1];
    if (!use_input_stats && (!running_mean || !running_var))
        return ct__err(CT_ERR_ARG, "instance_norm: Expected running_mean and running_var to be defined when "
                       "use_input_stats is false");
    int nd = input->ndim;
    int64_t shp[CT_MAX_DIMS];
    shp[0] = 1, shp[1] = N * C;
    for (int d = 2; d < nd; d++) shp[d] = input->sizes[d];
    BEGIN
    /* as PyTorch: a batch norm over [1, N*C, ...] with the statistics repeated per sample */
    ct_tensor *rm = running_mean ? ct_contiguous(ct_tile(running_mean, 1, (int64_t[]){N})) : NULL;
    ct_tensor *rv = running_var ? ct_contiguous(ct_tile(running_var, 1, (int64_t[]){N})) : NULL;
    if (rm) rm = ct_clone(rm);
    if (rv) rv = ct_clone(rv);
    ct_tensor *w = weight ? ct_tile(weight, 1, (int64_t[]){N}) : NULL, *b = bias ? ct_tile(bias, 1, (int64_t[]){N}) : NULL;
    ct_tensor *y = ct_nn_batch_norm(ct_reshape(input, nd, shp), rm, rv, w, b, use_input_stats, momentum, eps);
    if (y && use_input_stats) {
        bool prev = ct_set_grad_enabled(false);
        if (running_mean) ct_copy_(running_mean, ct_mean_dim(ct_reshape(rm, 2, (int64_t[]){N, C}), 1, (int64_t[]){0}, false,
                                                            CT_NUM_DTYPES));
        if (running_var) ct_copy_(running_var, ct_mean_dim(ct_reshape(rv, 2, (int64_t[]){N, C}), 1, (int64_t[]){0}, false,
                                                          CT_NUM_DTYPES));
        ct_set_grad_enabled(prev);
    }
    r_ = ct_reshape(y, nd, input->sizes);
    END
}

ct_tensor *ct__embedding_rows(const ct_tensor *weight, const ct_tensor *flat, int64_t padding_idx); /* ops/index.c */
CT_API ct_tensor *ct_nn_embedding(const ct_tensor *indices, const ct_tensor *weight, int64_t padding_idx) {
    CT_CHECK_ARG("embedding", indices);
    CT_CHECK_ARG("embedding", weight);
    if (weight->ndim != 2) return ct__err(CT_ERR_SHAPE, "embedding: 'weight' must be 2-D, got %s", CT_SHAPESTR(weight));
    if (indices->dtype != CT_INT64 && indices->dtype != CT_INT32)
        return ct__err(CT_ERR_DTYPE, "embedding: Expected tensor for argument #1 'indices' to have one of the following "
                       "scalar types: Long, Int; but got %s instead", ct__scalar_type_name(indices->dtype));
    int64_t num = weight->sizes[0];
    if (padding_idx != CT_NO_PADDING_IDX) {
        if (padding_idx >= num || padding_idx < -num)
            return ct__err(CT_ERR_INDEX, "embedding: Padding_idx must be within num_embeddings");
        if (padding_idx < 0) padding_idx += num;
    }
    int64_t shp[CT_MAX_DIMS + 1];
    for (int d = 0; d < indices->ndim; d++) shp[d] = indices->sizes[d];
    shp[indices->ndim] = weight->sizes[1];
    BEGIN
    /* rows of weight; its gradient skips the padding row (src/ops/index.c) */
    ct_tensor *rows = ct__embedding_rows(weight, ct_reshape(indices, 1, (int64_t[]){-1}),
                                         padding_idx != CT_NO_PADDING_IDX ? padding_idx : -1);
    r_ = ct_reshape(rows, indices->ndim + 1, shp);
    END
}
