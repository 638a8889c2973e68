/* ctorch/nn.h — neural-network functions (torch.nn.functional): convolutions,
 * unfold/fold, pooling, linear layers, normalisation, losses.
 *
 * Every function follows ctorch/core.h: tensors are borrowed, results are new
 * references (scope rules), NULL with an error message naming the op and the shapes
 * on bad input. Inputs are NCHW like PyTorch; an unbatched [C, H, W] (or [C, L]) input
 * gives an unbatched result, as in PyTorch. All are differentiable, with backward
 * formulas written in differentiable ops (double backward works).
 */
#ifndef CTORCH_NN_H
#define CTORCH_NN_H

#include "ctorch/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- convolution ----
 * Options shared by the convolutions; zero fields mean PyTorch's defaults (stride 1,
 * padding 0, dilation 1, groups 1, output_padding 0). For 1-d ops only index 0 is
 * used. padding_mode: NULL (explicit `padding`), "valid" or "same" (stride 1 only;
 * asymmetric padding when the total is odd, as PyTorch). */
typedef struct ct_conv_opts {
    int64_t stride[2];
    int64_t padding[2];
    int64_t dilation[2];
    int64_t groups;
    int64_t output_padding[2]; /* transposed convolutions only */
    const char *padding_mode;  /* NULL, "valid" or "same" */
} ct_conv_opts;

/* conv2d(input [N, C, H, W] or [C, H, W], weight [O, C/groups, kh, kw], bias [O] or NULL).
 * float32 / float64. opts may be NULL (all defaults). */
CT_API ct_tensor *ct_nn_conv2d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                               const ct_conv_opts *opts);
/* conv1d(input [N, C, L] or [C, L], weight [O, C/groups, k], bias). */
CT_API ct_tensor *ct_nn_conv1d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                               const ct_conv_opts *opts);
/* conv_transpose2d(input [N, C, H, W], weight [C, O/groups, kh, kw], bias [O]). */
CT_API ct_tensor *ct_nn_conv_transpose2d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                                         const ct_conv_opts *opts);
CT_API ct_tensor *ct_nn_conv_transpose1d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                                         const ct_conv_opts *opts);

/* unfold (im2col): input [N, C, H, W] or [C, H, W] -> [N, C*kh*kw, L] (or [C*kh*kw, L]).
 * kernel, dilation, padding, stride: 2 values each (dilation/stride 0 mean 1). */
CT_API ct_tensor *ct_nn_unfold(const ct_tensor *input, const int64_t kernel[2], const int64_t dilation[2],
                               const int64_t padding[2], const int64_t stride[2]);
/* fold (col2im): input [N, C*kh*kw, L] or [C*kh*kw, L] -> [N, C, H, W] with output_size {H, W},
 * summing overlapping values. */
CT_API ct_tensor *ct_nn_fold(const ct_tensor *input, const int64_t output_size[2], const int64_t kernel[2],
                             const int64_t dilation[2], const int64_t padding[2], const int64_t stride[2]);

/* ---- pooling ----
 * kernel 2 values; stride 0/NULL = kernel; padding, dilation as conv. */
typedef struct ct_pool_opts {
    int64_t stride[2];   /* 0: the kernel size */
    int64_t padding[2];
    int64_t dilation[2]; /* max pooling only; 0 = 1 */
    bool ceil_mode;
    bool count_include_pad_false; /* avg pooling: PyTorch's count_include_pad=False */
    int64_t divisor_override;     /* avg pooling: 0 = none */
} ct_pool_opts;

/* max_pool2d(input [N, C, H, W] or [C, H, W]); indices (may be NULL) receives the int64
 * flat h*W+w index of each maximum (return_indices=True), a new reference. */
CT_API ct_tensor *ct_nn_max_pool2d(const ct_tensor *input, const int64_t kernel[2], const ct_pool_opts *opts,
                                   ct_tensor **indices);
CT_API ct_tensor *ct_nn_avg_pool2d(const ct_tensor *input, const int64_t kernel[2], const ct_pool_opts *opts);
/* 1-d forms over [N, C, L] or [C, L]. */
CT_API ct_tensor *ct_nn_max_pool1d(const ct_tensor *input, int64_t kernel, const ct_pool_opts *opts,
                                   ct_tensor **indices);
CT_API ct_tensor *ct_nn_avg_pool1d(const ct_tensor *input, int64_t kernel, const ct_pool_opts *opts);
/* adaptive_avg_pool2d to output_size {Ho, Wo} (PyTorch's start/end index rule). */
CT_API ct_tensor *ct_nn_adaptive_avg_pool2d(const ct_tensor *input, const int64_t output_size[2]);

#ifdef __cplusplus
}
#endif

#endif
