/* Loss functions (torch.nn.functional), composed from differentiable ops with
 * PyTorch's formulas, so gradients (and double backward) come from autograd. */
#include <math.h>
#include <string.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"
#include "core/internal.h"
#include "core/iter.h"
#include "ctorch/nn.h"

#include "ops/compose.h"
#define BEGIN CT_COMPOSE_BEGIN
#define END CT_COMPOSE_END

static ct_tensor *reduce(ct_tensor *l, ct_reduction r) {
    switch (r) {
    case CT_REDUCTION_MEAN: return ct_mean(l);
    case CT_REDUCTION_SUM: return ct_sum(l);
    case CT_REDUCTION_NONE: return l;
    default: return ct__err(CT_ERR_ARG, "loss: invalid reduction %d", (int)r);
    }
}

static int check_reduction(const char *op, ct_reduction r, bool batchmean_ok) {
    if (r == CT_REDUCTION_MEAN || r == CT_REDUCTION_SUM || r == CT_REDUCTION_NONE ||
        (batchmean_ok && r == CT_REDUCTION_BATCHMEAN))
        return 0;
    return ct__errs(CT_ERR_ARG, "%s: %d is not a valid value for reduction", op, (int)r);
}

static int check_pair(const char *op, const ct_tensor *x, const ct_tensor *t) {
    CT_CHECK_ARG_S(op, x);
    CT_CHECK_ARG_S(op, t);
    if (!ct_dtype_is_floating(x->dtype))
        return ct__errs(CT_ERR_DTYPE, "%s: expected a floating point input, got %s", op, ct_dtype_name(x->dtype));
    int64_t shape[CT_MAX_DIMS];
    if (ct__broadcast_shapes(op, x->ndim, x->sizes, t->ndim, t->sizes, shape) < 0) return ct_last_status();
    return 0;
}

CT_API ct_tensor *ct_nn_mse_loss(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction) {
    if (check_pair("mse_loss", input, target) || check_reduction("mse_loss", reduction, false)) return NULL;
    BEGIN
    ct_tensor *d = ct_sub(input, target);
    r_ = reduce(ct_mul(d, d), reduction);
    END
}

CT_API ct_tensor *ct_nn_l1_loss(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction) {
    if (check_pair("l1_loss", input, target) || check_reduction("l1_loss", reduction, false)) return NULL;
    BEGIN
    r_ = reduce(ct_abs(ct_sub(input, target)), reduction);
    END
}

CT_API ct_tensor *ct_nn_smooth_l1_loss(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction,
                                       double beta) {
    if (check_pair("smooth_l1_loss", input, target) || check_reduction("smooth_l1_loss", reduction, false)) return NULL;
    if (beta < 0) return ct__err(CT_ERR_ARG, "smooth_l1_loss does not support negative values for beta.");
    BEGIN
    ct_tensor *a = ct_abs(ct_sub(input, target));
    if (beta == 0) r_ = reduce(a, reduction);
    else {
        ct_tensor *quad = ct_div_scalar(ct_mul_scalar(ct_mul(a, a), 0.5), beta);
        r_ = reduce(ct_where(ct_lt(a, ct_scalar_tensor(beta, a->dtype)), quad, ct_sub_scalar(a, 0.5 * beta)), reduction);
    }
    END
}

CT_API ct_tensor *ct_nn_huber_loss(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction,
                                   double delta) {
    if (check_pair("huber_loss", input, target) || check_reduction("huber_loss", reduction, false)) return NULL;
    if (delta <= 0) return ct__err(CT_ERR_ARG, "huber_loss does not support non-positive values for delta.");
    BEGIN
    ct_tensor *a = ct_abs(ct_sub(input, target));
    ct_tensor *quad = ct_mul_scalar(ct_mul(a, a), 0.5);
    ct_tensor *lin = ct_mul_scalar(ct_sub_scalar(a, 0.5 * delta), delta);
    r_ = reduce(ct_where(ct_lt(a, ct_scalar_tensor(delta, a->dtype)), quad, lin), reduction);
    END
}

/* class dim of an input: 1, or 0 for an unbatched [C] input */
static int class_dim(const ct_tensor *x) { return x->ndim == 1 ? 0 : 1; }

static int check_nll(const char *op, const ct_tensor *input, const ct_tensor *target, const ct_tensor *weight) {
    CT_CHECK_ARG_S(op, input);
    CT_CHECK_ARG_S(op, target);
    if (input->ndim < 1)
        return ct__errs(CT_ERR_SHAPE, "%s: input tensor should be 1D or more, got %s", op, CT_SHAPESTR(input));
    if (!ct_dtype_is_floating(input->dtype))
        return ct__errs(CT_ERR_DTYPE, "%s: expected a floating point input, got %s", op, ct_dtype_name(input->dtype));
    int cd = class_dim(input);
    int64_t C = input->sizes[cd];
    if (weight && (weight->ndim != 1 || weight->numel != C))
        return ct__errs(CT_ERR_SHAPE, "%s: weight tensor should be defined either for all %lld classes or no classes but "
                        "got weight tensor of shape: %s", op, (long long)C, CT_SHAPESTR(weight));
    return 0;
}

/* nll over class indices: (per-element loss, per-element weight) with the class dim
 * removed; ignored targets get weight 0. */
static int nll_parts(const char *op, const ct_tensor *logp, const ct_tensor *target, const ct_tensor *weight,
                     int64_t ignore_index, ct_tensor **loss, ct_tensor **w_out) {
    int cd = class_dim(logp);
    int64_t C = logp->sizes[cd];
    if (target->dtype != CT_INT64 && target->dtype != CT_UINT8 && target->dtype != CT_INT32)
        return ct__errs(CT_ERR_DTYPE, "%s: expected scalar type Long but found %s", op,
                        ct__scalar_type_name(target->dtype));
    /* shape: target == input without the class dim */
    bool ok = target->ndim == logp->ndim - 1;
    for (int d = 0, t = 0; ok && d < logp->ndim; d++) {
        if (d == cd) continue;
        ok = target->sizes[t++] == logp->sizes[d];
    }
    if (!ok) {
        if (logp->ndim >= 2 && target->ndim >= 1 && target->sizes[0] != logp->sizes[0])
            return ct__errs(CT_ERR_SHAPE, "%s: Expected input batch_size (%lld) to match target batch_size (%lld).", op,
                            (long long)logp->sizes[0], (long long)target->sizes[0]);
        return ct__errs(CT_ERR_SHAPE, "%s: expected target of size %s for input of size %s, got %s", op,
                        "input without the class dim", CT_SHAPESTR(logp), CT_SHAPESTR(target));
    }
    ct_tensor *t64 = ct_to_dtype(target, CT_INT64);
    ct_tensor *ign = ct_eq(t64, ct_scalar_tensor((double)ignore_index, CT_INT64));
    ct_tensor *safe = ct_where(ign, ct_scalar_tensor(0, CT_INT64), t64);
    /* out-of-range targets (other than ignore_index) are an error, as in PyTorch */
    if (safe && safe->numel) {
        /* (ignored targets are not checked: with no classes at all their safe 0 is out of range too) */
        ct_tensor *bad = ct_logical_and(ct_logical_not(ign), ct_logical_or(ct_lt(safe, ct_scalar_tensor(0, CT_INT64)),
                                                                           ct_ge(safe, ct_scalar_tensor((double)C, CT_INT64))));
        if (bad && ct_item(ct_any(bad, 0, NULL, false)) != 0) {
            ct_tensor *which = ct_masked_select(safe, bad);
            return ct__errs(CT_ERR_INDEX, "%s: Target %lld is out of bounds.", op, (long long)ct_item(ct_select(which, 0, 0)));
        }
    }
    /* no classes (every target ignored, or the error above): the sum over the empty class
     * dim is the zeros gather cannot give, still linked to logp for its (empty) gradient */
    ct_tensor *picked = C > 0 ? ct_squeeze_dim(ct_gather(logp, cd, ct_unsqueeze(safe, cd)), cd)
                              : ct_sum_dim(logp, 1, (int64_t[]){cd}, false, CT_NUM_DTYPES);
    ct_tensor *w = weight ? ct_index_select(ct_to_dtype(weight, logp->dtype), 0, ct_reshape(safe, 1, (int64_t[]){-1}))
                          : NULL;
    if (w) w = ct_reshape(w, safe->ndim, safe->sizes);
    else w = ct_ones_like(picked);
    w = ct_where(ign, ct_scalar_tensor(0, logp->dtype), w);
    *loss = ct_neg(ct_mul(picked, w));
    *w_out = w;
    return *loss && *w_out ? 0 : ct_last_status();
}

static ct_tensor *nll_reduce(ct_tensor *loss, ct_tensor *w, ct_reduction r) {
    if (r == CT_REDUCTION_NONE) return loss;
    if (r == CT_REDUCTION_SUM) return ct_sum(loss);
    return ct_div(ct_sum(loss), ct_sum(w));
}

CT_API ct_tensor *ct_nn_nll_loss(const ct_tensor *input, const ct_tensor *target, const ct_tensor *weight,
                                 int64_t ignore_index, ct_reduction reduction) {
    if (check_nll("nll_loss", input, target, weight) || check_reduction("nll_loss", reduction, false)) return NULL;
    BEGIN
    ct_tensor *loss = NULL, *w = NULL;
    if (!nll_parts("nll_loss", input, target, weight, ignore_index, &loss, &w)) r_ = nll_reduce(loss, w, reduction);
    END
}

/* ---- cross_entropy over class indices as one node ----
 * [N, C] float32/float64 logits with integer targets and no label smoothing, the common
 * classifier loss: log_softmax's own kernel, then one pass picking -logp[i, t_i] * w_i
 * (CT_OP_NLL_PICK), so the per-row losses and their weights are the composed path's bits
 * (nll_loss(log_softmax(x)), checked in the tests), and the reduction is nll_reduce as
 * there; the ~15 small ops of the composed path (target checks, gather, where, ...) and
 * their autograd nodes become two kernels and one node. [64, 10] forward + backward:
 * 14.4-16.3 -> 9.6-10 µs (forward 7.7-8.4 -> 4.4). The node saves logp, t, w and x; its
 * backward is one kernel, go_i w_i (exp(logp) - onehot(t)), or under create_graph
 * (softmax(x) - onehot(t)) * (go * w) in differentiable ops, so second derivatives work. */
static int ce_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *logp = ct__unpack(n, 0), *t = ct__unpack(n, 1), *w = ct__unpack(n, 2), *x = ct__unpack(n, 3);
    if (!logp || !t || !w || !x) return ct_last_status();
    if (!ct__needs_grad(2, (const ct_tensor *[]){go[0], x})) { /* no graph to build (grad mode is off then) */
        ct_tensor *g = ct__contiguous_raw(go[0]), *dx = ct__empty_raw(2, logp->sizes, logp->dtype);
        int rc = 0;
        if (!g || !dx) rc = ct_last_status();
        else {
            ct_kernel_args k = {.op = CT_OP_CROSS_ENTROPY_BWD, .n_out = 1, .n_in = 4, .out = {dx}, .in = {g, logp, t, w}};
            rc = ct__dispatch(&k);
        }
        ct_release(g);
        if (rc) { ct_release(dx); return rc; }
        gi[0] = ct__ret(dx);
        return 0;
    }
    int64_t C = logp->sizes[1];
    ct_tensor *safe = ct_clamp_scalar(t, 0.0, (double)(C - 1)); /* only ignored rows leave the range; their w is 0 */
    ct_tensor *onehot = ct_to_dtype(ct_one_hot(safe, C), logp->dtype);
    gi[0] = ct_mul(ct_sub(ct_softmax(x, 1, CT_NUM_DTYPES), onehot), ct_unsqueeze(ct_mul(go[0], w), 1));
    return gi[0] ? 0 : ct_last_status();
}

static bool ce_fusable(const ct_tensor *input, const ct_tensor *target, const ct_tensor *weight, double smoothing) {
    ct_dtype dt = input->dtype;
    return input->ndim == 2 && input->sizes[1] > 0 && (dt == CT_FLOAT32 || dt == CT_FLOAT64) && smoothing == 0 &&
           target->ndim == 1 &&
           target->sizes[0] == input->sizes[0] &&
           (target->dtype == CT_INT64 || target->dtype == CT_INT32 || target->dtype == CT_UINT8) &&
           (!weight || (weight->ndim == 1 && weight->numel == input->sizes[1] && !ct_requires_grad(weight) &&
                        weight->storage->device.type == input->storage->device.type)) &&
           target->storage->device.type == input->storage->device.type &&
           ct__has_kernel(input->storage->device.type, CT_OP_NLL_PICK) &&
           ct__has_kernel(input->storage->device.type, CT_OP_CROSS_ENTROPY_BWD);
}

/* (per-row loss, per-row weight) of the fused path, scope-registered; NULL on error */
static ct_tensor *ce_fused(const ct_tensor *input, const ct_tensor *target, const ct_tensor *weight,
                           int64_t ignore_index, ct_tensor **w_out) {
    ct_dtype dt = input->dtype;
    int64_t N = input->sizes[0], C = input->sizes[1];
    ct_tensor *x = ct__contiguous_raw(input);
    ct_tensor *t = ct_contiguous(ct_to_dtype(target, CT_INT64));
    ct_tensor *wt = weight ? ct_contiguous(ct_to_dtype(weight, dt)) : NULL;
    ct_tensor *logp = ct__empty_raw(2, input->sizes, dt), *loss = ct__empty_raw(1, &N, dt), *w = ct__empty_raw(1, &N, dt);
    int rc = 0;
    if (!x || !t || (weight && !wt) || !logp || !loss || !w) rc = ct_last_status();
    if (!rc && N * C > 0) {
        ct_kernel_args k = {.op = CT_OP_LOG_SOFTMAX, .n_out = 1, .n_in = 1, .out = {logp}, .in = {x}, .i = {N, C, 1}};
        rc = ct__dispatch(&k);
    }
    if (!rc && N) {
        ct_kernel_args k = {.op = CT_OP_NLL_PICK, .n_out = 2, .n_in = 3, .out = {loss, w}, .in = {logp, t, wt},
                            .i = {ignore_index}};
        rc = ct__dispatch(&k);
    }
    if (!rc && ct__needs_grad(1, (const ct_tensor *[]){input})) {
        ct_node *n = ct__node_new("CrossEntropyBackward", ce_backward, 1);
        if (!n || ct__node_set_next(n, 0, input) || ct__save(n, logp) < 0 || ct__save(n, t) < 0 ||
            ct__save(n, w) < 0 || ct__save(n, input) < 0) {
            if (n) ct__node_release(n);
            rc = ct_last_status();
        } else {
            ct__set_history(loss, n, 0);
        }
    }
    ct_release(x);
    ct_release(logp);
    if (rc) {
        ct_release(loss);
        ct_release(w);
        return NULL;
    }
    *w_out = ct__ret(w);
    return ct__ret(loss);
}

CT_API ct_tensor *ct_nn_cross_entropy(const ct_tensor *input, const ct_tensor *target, const ct_tensor *weight,
                                      int64_t ignore_index, ct_reduction reduction, double label_smoothing) {
    if (check_nll("cross_entropy", input, target, weight) || check_reduction("cross_entropy", reduction, false))
        return NULL;
    if (label_smoothing < 0 || label_smoothing > 1)
        return ct__err(CT_ERR_ARG, "cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: %g", label_smoothing);
    int cd = class_dim(input);
    int64_t C = input->sizes[cd];
    int nd = input->ndim;
    int64_t wshape[CT_MAX_DIMS];
    for (int d = 0; d < nd; d++) wshape[d] = d == cd ? C : 1;
    BEGIN
    if (ce_fusable(input, target, weight, label_smoothing)) {
        ct_tensor *w = NULL, *loss = ce_fused(input, target, weight, ignore_index, &w);
        r_ = loss ? nll_reduce(loss, w, reduction) : NULL;
        goto done;
    }
    ct_tensor *logp = ct_log_softmax(input, cd, CT_NUM_DTYPES);
    ct_tensor *wv = weight ? ct_reshape(ct_to_dtype(weight, input->dtype), nd, wshape) : NULL;
    if (ct_dtype_is_floating(target->dtype)) {
        /* class probabilities */
        if (!ct__same_sizes(target->ndim, target->sizes, input->ndim, input->sizes)) {
            ct__err(CT_ERR_SHAPE, "cross_entropy: Expected target size %s, got %s", CT_SHAPESTR(input), CT_SHAPESTR(target));
        } else {
            ct_tensor *t = ct_to_dtype(target, input->dtype);
            if (label_smoothing > 0) t = ct_add_scalar(ct_mul_scalar(t, 1 - label_smoothing), label_smoothing / (double)C);
            ct_tensor *prod = ct_mul(logp, t);
            if (wv) prod = ct_mul(prod, wv);
            ct_tensor *l = ct_neg(ct_sum_dim(prod, 1, (int64_t[]){cd}, false, CT_NUM_DTYPES));
            if (reduction == CT_REDUCTION_MEAN)
                r_ = input->numel ? ct_div_scalar(ct_sum(l), (double)(input->numel / C)) : ct_mean(l);
            else
                r_ = reduce(l, reduction);
        }
    } else {
        ct_tensor *loss = NULL, *w = NULL;
        if (!nll_parts("cross_entropy", logp, target, weight, ignore_index, &loss, &w)) {
            ct_tensor *nll = nll_reduce(loss, w, reduction);
            if (label_smoothing > 0) {
                ct_tensor *lw = wv ? ct_mul(logp, wv) : logp;
                ct_tensor *smooth = ct_neg(ct_sum_dim(lw, 1, (int64_t[]){cd}, false, CT_NUM_DTYPES));
                ct_tensor *keep = ct_logical_not(ct_eq(ct_to_dtype(target, CT_INT64),
                                                       ct_scalar_tensor((double)ignore_index, CT_INT64)));
                smooth = ct_where(keep, smooth, ct_scalar_tensor(0, smooth->dtype));
                ct_tensor *sr;
                if (reduction == CT_REDUCTION_NONE) sr = smooth;
                else if (reduction == CT_REDUCTION_SUM) sr = ct_sum(smooth);
                else if (weight) sr = ct_div(ct_sum(smooth), ct_sum(w));
                else sr = ct_div(ct_sum(smooth), ct_sum(ct_to_dtype(keep, smooth->dtype)));
                nll = ct_add(ct_mul_scalar(nll, 1 - label_smoothing), ct_mul_scalar(sr, label_smoothing / (double)C));
            }
            r_ = nll;
        }
    }
done:
    END
}

CT_API ct_tensor *ct_nn_binary_cross_entropy(const ct_tensor *input, const ct_tensor *target, const ct_tensor *weight,
                                             ct_reduction reduction) {
    if (check_pair("binary_cross_entropy", input, target) || check_reduction("binary_cross_entropy", reduction, false))
        return NULL;
    if (!ct__same_sizes(input->ndim, input->sizes, target->ndim, target->sizes))
        return ct__err(CT_ERR_SHAPE, "binary_cross_entropy: Using a target size (%s) that is different to the input "
                       "size (%s) is deprecated. Please ensure they have the same size.", CT_SHAPESTR(target),
                       CT_SHAPESTR(input));
    BEGIN
    ct_tensor *lo = ct_scalar_tensor(-100.0, input->dtype);
    ct_tensor *l1 = ct_maximum(ct_log(input), lo), *l0 = ct_maximum(ct_log(ct_rsub_scalar(input, 1.0)), lo);
    ct_tensor *l = ct_neg(ct_add(ct_mul(target, l1), ct_mul(ct_rsub_scalar(target, 1.0), l0)));
    if (weight) l = ct_mul(l, weight);
    r_ = reduce(l, reduction);
    END
}

CT_API ct_tensor *ct_nn_binary_cross_entropy_with_logits(const ct_tensor *input, const ct_tensor *target,
                                                         const ct_tensor *weight, const ct_tensor *pos_weight,
                                                         ct_reduction reduction) {
    if (check_pair("binary_cross_entropy_with_logits", input, target) ||
        check_reduction("binary_cross_entropy_with_logits", reduction, false))
        return NULL;
    if (!ct__same_sizes(input->ndim, input->sizes, target->ndim, target->sizes))
        return ct__err(CT_ERR_SHAPE, "binary_cross_entropy_with_logits: Target size (%s) must be the same as input size "
                       "(%s)", CT_SHAPESTR(target), CT_SHAPESTR(input));
    BEGIN
    /* (1 - t) x + lw (log1p(exp(-|x|)) + max(-x, 0)), lw = 1 + (pos_weight - 1) t */
    ct_tensor *sp = ct_add(ct_log1p(ct_exp(ct_neg(ct_abs(input)))), ct_relu(ct_neg(input)));
    ct_tensor *lw = pos_weight ? ct_add_scalar(ct_mul(ct_sub_scalar(pos_weight, 1.0), target), 1.0) : NULL;
    ct_tensor *l = ct_add(ct_mul(ct_rsub_scalar(target, 1.0), input), lw ? ct_mul(lw, sp) : sp);
    if (weight) l = ct_mul(l, weight);
    r_ = reduce(l, reduction);
    END
}

CT_API ct_tensor *ct_nn_kl_div(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction,
                               bool log_target) {
    if (check_pair("kl_div", input, target) || check_reduction("kl_div", reduction, true)) return NULL;
    BEGIN
    ct_tensor *l = log_target ? ct_mul(ct_exp(target), ct_sub(target, input)) : ct_sub(ct_xlogy(target, target),
                                                                                       ct_mul(target, input));
    if (reduction == CT_REDUCTION_BATCHMEAN)
        r_ = input->ndim ? ct_div_scalar(ct_sum(l), (double)input->sizes[0]) : ct_sum(l);
    else
        r_ = reduce(l, reduction);
    END
}

/* ---- embedding and ranking losses, count and distribution likelihoods ---- */
CT_API ct_tensor *ct_nn_cosine_embedding_loss(const ct_tensor *x1, const ct_tensor *x2, const ct_tensor *target,
                                              double margin, ct_reduction reduction) {
    CT_CHECK_ARG("cosine_embedding_loss", x1);
    CT_CHECK_ARG("cosine_embedding_loss", x2);
    CT_CHECK_ARG("cosine_embedding_loss", target);
    if (check_reduction("cosine_embedding_loss", reduction, false)) return NULL;
    if (x1->ndim != x2->ndim || x1->ndim < 1 || x1->ndim > 2 || !ct__same_sizes(x1->ndim, x1->sizes, x2->ndim, x2->sizes))
        return ct__err(CT_ERR_SHAPE, "cosine_embedding_loss: expected input1 and input2 of the same 1D or 2D shape, "
                       "got %s and %s", CT_SHAPESTR(x1), CT_SHAPESTR(x2));
    if (target->ndim != x1->ndim - 1)
        return ct__err(CT_ERR_SHAPE, "cosine_embedding_loss: %dD target tensor expected, %dD target tensor given",
                       x1->ndim - 1, target->ndim);
    int64_t td = x1->ndim - 1;
    BEGIN
    ct_tensor *prod = ct_sum_dim(ct_mul(x1, x2), 1, &td, false, CT_NUM_DTYPES);
    ct_tensor *m1 = ct_add_scalar(ct_sum_dim(ct_mul(x1, x1), 1, &td, false, CT_NUM_DTYPES), 1e-12);
    ct_tensor *m2 = ct_add_scalar(ct_sum_dim(ct_mul(x2, x2), 1, &td, false, CT_NUM_DTYPES), 1e-12);
    ct_tensor *cosv = ct_div(prod, ct_sqrt(ct_mul(m1, m2)));
    ct_tensor *zero = ct_zeros_like(cosv);
    ct_tensor *pos = ct_where(ct_eq(target, ct_scalar_tensor(1, target->dtype)), ct_rsub_scalar(cosv, 1.0), zero);
    ct_tensor *neg = ct_where(ct_eq(target, ct_scalar_tensor(-1, target->dtype)), ct_relu(ct_sub_scalar(cosv, margin)),
                              zero);
    r_ = reduce(ct_add(pos, neg), reduction);
    END
}

CT_API ct_tensor *ct_nn_margin_ranking_loss(const ct_tensor *x1, const ct_tensor *x2, const ct_tensor *target,
                                            double margin, ct_reduction reduction) {
    if (check_pair("margin_ranking_loss", x1, x2) || check_reduction("margin_ranking_loss", reduction, false)) return NULL;
    CT_CHECK_ARG("margin_ranking_loss", target);
    BEGIN
    r_ = reduce(ct_relu(ct_add_scalar(ct_mul(ct_neg(target), ct_sub(x1, x2)), margin)), reduction);
    END
}

CT_API ct_tensor *ct_nn_hinge_embedding_loss(const ct_tensor *input, const ct_tensor *target, double margin,
                                             ct_reduction reduction) {
    if (check_pair("hinge_embedding_loss", input, target) || check_reduction("hinge_embedding_loss", reduction, false))
        return NULL;
    BEGIN
    ct_tensor *zero = ct_zeros_like(input);
    ct_tensor *m = ct_where(ct_ne(target, ct_scalar_tensor(1, target->dtype)), ct_relu(ct_rsub_scalar(input, margin)), zero);
    ct_tensor *x = ct_where(ct_ne(target, ct_scalar_tensor(-1, target->dtype)), input, zero);
    r_ = reduce(ct_add(m, x), reduction);
    END
}

static ct_tensor *pairwise_distance(const ct_tensor *a, const ct_tensor *b, double p, double eps) {
    int64_t last = -1;
    return ct_norm(ct_add_scalar(ct_sub(a, b), eps), p, 1, &last, false);
}

CT_API ct_tensor *ct_nn_triplet_margin_loss(const ct_tensor *anchor, const ct_tensor *positive,
                                            const ct_tensor *negative, double margin, double p, double eps, bool swap,
                                            ct_reduction reduction) {
    CT_CHECK_ARG("triplet_margin_loss", anchor);
    CT_CHECK_ARG("triplet_margin_loss", positive);
    CT_CHECK_ARG("triplet_margin_loss", negative);
    if (check_reduction("triplet_margin_loss", reduction, false)) return NULL;
    if (anchor->ndim != positive->ndim || anchor->ndim != negative->ndim || anchor->ndim < 1 || anchor->ndim > 2)
        return ct__err(CT_ERR_SHAPE, "triplet_margin_loss: The anchor, positive, and negative tensors are expected to have "
                       "the same number of dimensions (1 or 2), but got: anchor %s, positive %s, negative %s",
                       CT_SHAPESTR(anchor), CT_SHAPESTR(positive), CT_SHAPESTR(negative));
    if (margin <= 0) return ct__err(CT_ERR_ARG, "triplet_margin_loss: margin must be greater than 0, got %g", margin);
    BEGIN
    ct_tensor *dp = pairwise_distance(anchor, positive, p, eps), *dn = pairwise_distance(anchor, negative, p, eps);
    if (swap) dn = ct_minimum(dn, pairwise_distance(positive, negative, p, eps));
    r_ = reduce(ct_relu(ct_add_scalar(ct_sub(dp, dn), margin)), reduction);
    END
}

CT_API ct_tensor *ct_nn_multilabel_soft_margin_loss(const ct_tensor *input, const ct_tensor *target,
                                                    const ct_tensor *weight, ct_reduction reduction) {
    if (check_pair("multilabel_soft_margin_loss", input, target) ||
        check_reduction("multilabel_soft_margin_loss", reduction, false))
        return NULL;
    if (input->ndim < 1) return ct__err(CT_ERR_SHAPE, "multilabel_soft_margin_loss: input must have a class dimension");
    int64_t cd = input->ndim - 1, C = input->sizes[cd];
    BEGIN
    ct_tensor *l = ct_neg(ct_add(ct_mul(target, ct_logsigmoid(input)),
                                 ct_mul(ct_rsub_scalar(target, 1.0), ct_logsigmoid(ct_neg(input)))));
    if (weight) l = ct_mul(l, weight);
    l = ct_div_scalar(ct_sum_dim(l, 1, &cd, false, CT_NUM_DTYPES), (double)C);
    r_ = reduce(l, reduction);
    END
}

CT_API ct_tensor *ct_nn_poisson_nll_loss(const ct_tensor *input, const ct_tensor *target, bool log_input, bool full,
                                         double eps, ct_reduction reduction) {
    if (check_pair("poisson_nll_loss", input, target) || check_reduction("poisson_nll_loss", reduction, false)) return NULL;
    BEGIN
    ct_tensor *l = log_input ? ct_sub(ct_exp(input), ct_mul(target, input))
                             : ct_sub(input, ct_mul(target, ct_log(ct_add_scalar(input, eps))));
    if (full) { /* Stirling's term for target > 1 */
        ct_tensor *st = ct_add(ct_sub(ct_mul(target, ct_log(target)), target),
                               ct_mul_scalar(ct_log(ct_mul_scalar(target, 2 * M_PI)), 0.5));
        l = ct_add(l, ct_where(ct_gt(target, ct_scalar_tensor(1, target->dtype)), st, ct_zeros_like(st)));
    }
    r_ = reduce(l, reduction);
    END
}

CT_API ct_tensor *ct_nn_gaussian_nll_loss(const ct_tensor *input, const ct_tensor *target, const ct_tensor *var,
                                          bool full, double eps, ct_reduction reduction) {
    if (check_pair("gaussian_nll_loss", input, target) || check_reduction("gaussian_nll_loss", reduction, false))
        return NULL;
    CT_CHECK_ARG("gaussian_nll_loss", var);
    int nd = input->ndim;
    bool same = ct__same_sizes(var->ndim, var->sizes, nd, input->sizes);
    bool drop_last = !same && nd >= 1 && ct__same_sizes(var->ndim, var->sizes, nd - 1, input->sizes);
    bool last_one = !same && !drop_last && var->ndim == nd && nd >= 1 && var->sizes[nd - 1] == 1 &&
                    ct__same_sizes(nd - 1, var->sizes, nd - 1, input->sizes);
    if (!same && !drop_last && !last_one)
        return ct__err(CT_ERR_SHAPE, "gaussian_nll_loss: var is of incorrect size (%s for input %s)", CT_SHAPESTR(var),
                       CT_SHAPESTR(input));
    BEGIN
    ct_tensor *v = drop_last ? ct_unsqueeze(var, -1) : (ct_tensor *)var;
    /* var clamped at eps without a gradient through the clamp (torch clamps a copy under no_grad) */
    ct_tensor *clamp_shift = ct_detach(ct_sub(ct_clamp_scalar(v, eps, INFINITY), v));
    v = ct_add(v, clamp_shift);
    ct_tensor *d = ct_sub(input, target);
    ct_tensor *l = ct_mul_scalar(ct_add(ct_log(v), ct_div(ct_mul(d, d), v)), 0.5);
    if (full) l = ct_add_scalar(l, 0.5 * log(2 * M_PI));
    r_ = reduce(l, reduction);
    END
}
