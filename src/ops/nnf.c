/* Linear layers, normalisation and embedding (torch.nn.functional), composed from
 * differentiable ops: gradients and double backward come from autograd. Each runs in
 * a private scope and hands its result to the caller's. */
#include <math.h>

#include "core/internal.h"
#include "ctorch/nn.h"

#include "ops/compose.h"
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

CT_API ct_tensor *ct_nn_batch_norm(const ct_tensor *input, ct_tensor *running_mean, ct_tensor *running_var,
                                   const ct_tensor *weight, const ct_tensor *bias, bool training, double momentum,
                                   double eps) {
    CT_CHECK_ARG("batch_norm", input);
    if (input->ndim < 2)
        return ct__err(CT_ERR_SHAPE, "batch_norm: expected 2D or more input (got %dD input)", input->ndim);
    int64_t C = input->sizes[1], count = input->numel / (C ? C : 1);
    const ct_tensor *vecs[4] = {running_mean, running_var, weight, bias};
    static const char *names[4] = {"running_mean", "running_var", "weight", "bias"};
    for (int k = 0; k < 4; k++)
        if (vecs[k] && vecs[k]->numel != C)
            return ct__err(CT_ERR_SHAPE, "batch_norm: running_mean should contain %lld elements not %lld (%s)",
                           (long long)C, (long long)vecs[k]->numel, names[k]);
    if (!training && (!running_mean || !running_var))
        return ct__err(CT_ERR_ARG, "batch_norm: running_mean and running_var must be defined in evaluation mode");
    if (training && count <= 1)
        return ct__err(CT_ERR_ARG, "batch_norm: Expected more than 1 value per channel when training, got input size %s",
                       CT_SHAPESTR(input));
    int nd = input->ndim;
    int64_t bshape[CT_MAX_DIMS], rdims[CT_MAX_DIMS];
    int nr = 0;
    for (int d = 0; d < nd; d++) {
        bshape[d] = d == 1 ? C : 1;
        if (d != 1) rdims[nr++] = d;
    }
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
    const ct_tensor *wb[2] = {weight, bias};
    for (int k = 0; k < 2; k++)
        if (wb[k] && (wb[k]->ndim != 1 || wb[k]->numel != C))
            return ct__err(CT_ERR_SHAPE, "group_norm: Expected %s to be a vector of size equal to the number of channels "
                           "in input, but got %s of shape %s and input of shape %s", k ? "bias" : "weight",
                           k ? "bias" : "weight", CT_SHAPESTR(wb[k]), CT_SHAPESTR(input));
    int nd = input->ndim;
    int64_t bshape[CT_MAX_DIMS];
    for (int d = 0; d < nd; d++) bshape[d] = d == 1 ? C : 1;
    BEGIN
    ct_tensor *g = ct_reshape(input, 3, (int64_t[]){N, num_groups, -1});
    ct_tensor *mean = ct_mean_dim(g, 1, (int64_t[]){2}, true, CT_NUM_DTYPES);
    ct_tensor *var = ct_var(g, 1, (int64_t[]){2}, 0.0, true);
    ct_tensor *y = ct_reshape(ct_mul(ct_sub(g, mean), ct_rsqrt(ct_add_scalar(var, eps))), nd, input->sizes);
    if (weight) y = ct_mul(y, ct_reshape(weight, nd, bshape));
    if (bias) y = ct_add(y, ct_reshape(bias, nd, bshape));
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
