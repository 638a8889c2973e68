/* ctorch/nn.h — neural-network functions (torch.nn.functional): convolutions,
 * unfold/fold, pooling, linear layers, normalisation, losses.
 *
 * Every function follows ctorch/core.h: tensors are borrowed, results are new
 * references (scope rules), NULL with an error message naming the op and the shapes
 * on bad input. Inputs are NCHW like PyTorch; an unbatched [C, H, W] (or [C, L]) input
 * gives an unbatched result, as in PyTorch. All are differentiable, with backward
 * formulas written in differentiable ops (double backward works). The convolutions,
 * unfold/fold, pooling and vision functions take float32 and float64, and float16 /
 * bfloat16 computed in float32 on the widened operands and rounded once (gradients
 * likewise); integer inputs are refused (CT_ERR_DTYPE), as in PyTorch.
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
    /* Modules only (nn.Conv*d's padding_mode): how `padding` is filled: NULL/"zeros",
     * "reflect", "replicate" or "circular". */
    const char *padding_fill;
} ct_conv_opts;

/* conv2d(input [N, C, H, W] or [C, H, W], weight [O, C/groups, kh, kw], bias [O] or NULL).
 * float32 / float64; float16 / bfloat16 computed in float32 and rounded once (the
 * conv1d / conv_transpose functions below likewise). opts may be NULL (all defaults).
 * Returns a new tensor the caller releases, or NULL with the error set. */
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

/* ---- linear layers, normalisation, embedding ---- */
/* linear(x [..., in], weight [out, in], bias [out] or NULL) = x @ weight^T + bias. */
CT_API ct_tensor *ct_nn_linear(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias);
/* batch_norm over input [N, C, ...]: in training, normalises with the batch statistics
 * (biased variance) and, if running_mean/running_var are given, updates them in place
 * (running = (1 - momentum) * running + momentum * batch, with the unbiased variance), as
 * PyTorch; in eval it uses the running statistics. weight/bias [C] may be NULL. */
CT_API ct_tensor *ct_nn_batch_norm(const ct_tensor *input, ct_tensor *running_mean, ct_tensor *running_var,
                                   const ct_tensor *weight, const ct_tensor *bias, bool training, double momentum,
                                   double eps);
/* layer_norm over the trailing dims normalized_shape (n of them); weight/bias of that
 * shape or NULL. */
CT_API ct_tensor *ct_nn_layer_norm(const ct_tensor *input, int n, const int64_t *normalized_shape,
                                   const ct_tensor *weight, const ct_tensor *bias, double eps);
/* group_norm(input [N, C, ...], num_groups, weight/bias [C] or NULL, eps). */
CT_API ct_tensor *ct_nn_group_norm(const ct_tensor *input, int64_t num_groups, const ct_tensor *weight,
                                   const ct_tensor *bias, double eps);
/* rms_norm over the trailing dims normalized_shape; eps < 0 means torch's default (the
 * dtype's machine epsilon). weight of normalized_shape or NULL. */
CT_API ct_tensor *ct_nn_rms_norm(const ct_tensor *input, int n, const int64_t *normalized_shape,
                                 const ct_tensor *weight, double eps);
/* instance_norm(input [N, C, ...]): each (n, c) slice normalised over its spatial dims;
 * running stats (may be NULL) updated with the batch mean of the instance statistics
 * when use_input_stats, used instead of them otherwise. */
CT_API ct_tensor *ct_nn_instance_norm(const ct_tensor *input, ct_tensor *running_mean, ct_tensor *running_var,
                                      const ct_tensor *weight, const ct_tensor *bias, bool use_input_stats,
                                      double momentum, double eps);
/* embedding(indices (int64, any shape), weight [num, dim]) -> [..., dim]. padding_idx < 0
 * (after wrapping a negative index once, as PyTorch: pass CT_NO_PADDING_IDX for none)
 * marks a row that gets no gradient. */
#define CT_NO_PADDING_IDX INT64_MIN
CT_API ct_tensor *ct_nn_embedding(const ct_tensor *indices, const ct_tensor *weight, int64_t padding_idx);

/* ---- losses ----
 * reduction: the zero value is PyTorch's default ("mean"). */
typedef enum ct_reduction {
    CT_REDUCTION_MEAN = 0,
    CT_REDUCTION_SUM = 1,
    CT_REDUCTION_NONE = 2,
    CT_REDUCTION_BATCHMEAN = 3 /* kl_div only */
} ct_reduction;

CT_API ct_tensor *ct_nn_mse_loss(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction);
CT_API ct_tensor *ct_nn_l1_loss(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction);
CT_API ct_tensor *ct_nn_smooth_l1_loss(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction,
                                       double beta); /* beta: torch default 1.0 */
CT_API ct_tensor *ct_nn_huber_loss(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction,
                                   double delta);    /* delta: torch default 1.0 */
/* nll_loss(log-probabilities [N, C] / [N, C, d1, ...] / [C], int64 class targets [N] /
 * [N, d1, ...] / []): weight [C] or NULL; targets equal to ignore_index (torch's default
 * -100) contribute nothing; "mean" divides by the summed weights of the counted targets. */
CT_API ct_tensor *ct_nn_nll_loss(const ct_tensor *input, const ct_tensor *target, const ct_tensor *weight,
                                 int64_t ignore_index, ct_reduction reduction);
/* cross_entropy(logits, target): target is int64 class indices (as nll_loss) or float
 * class probabilities shaped like input; label_smoothing in [0, 1]. */
CT_API ct_tensor *ct_nn_cross_entropy(const ct_tensor *input, const ct_tensor *target, const ct_tensor *weight,
                                      int64_t ignore_index, ct_reduction reduction, double label_smoothing);
/* binary_cross_entropy(probabilities, target, weight or NULL); log clamped at -100. */
CT_API ct_tensor *ct_nn_binary_cross_entropy(const ct_tensor *input, const ct_tensor *target, const ct_tensor *weight,
                                             ct_reduction reduction);
/* binary_cross_entropy_with_logits(logits, target, weight, pos_weight (both may be NULL)). */
CT_API ct_tensor *ct_nn_binary_cross_entropy_with_logits(const ct_tensor *input, const ct_tensor *target,
                                                         const ct_tensor *weight, const ct_tensor *pos_weight,
                                                         ct_reduction reduction);
/* kl_div(input (log-probabilities), target (probabilities, or log-probabilities if
 * log_target)); reduction may be CT_REDUCTION_BATCHMEAN. */
CT_API ct_tensor *ct_nn_kl_div(const ct_tensor *input, const ct_tensor *target, ct_reduction reduction,
                               bool log_target);

/* cosine_embedding_loss(x1, x2 [N, D] or [D], target of 1 / -1, margin 0). */
CT_API ct_tensor *ct_nn_cosine_embedding_loss(const ct_tensor *x1, const ct_tensor *x2, const ct_tensor *target,
                                              double margin, ct_reduction reduction);
/* margin_ranking_loss: max(0, -y (x1 - x2) + margin). */
CT_API ct_tensor *ct_nn_margin_ranking_loss(const ct_tensor *x1, const ct_tensor *x2, const ct_tensor *target,
                                            double margin, ct_reduction reduction);
/* hinge_embedding_loss(x, target of 1 / -1, margin 1.0). */
CT_API ct_tensor *ct_nn_hinge_embedding_loss(const ct_tensor *input, const ct_tensor *target, double margin,
                                             ct_reduction reduction);
/* triplet_margin_loss(anchor, positive, negative, margin 1.0, p 2, eps 1e-6, swap). */
CT_API ct_tensor *ct_nn_triplet_margin_loss(const ct_tensor *anchor, const ct_tensor *positive,
                                            const ct_tensor *negative, double margin, double p, double eps, bool swap,
                                            ct_reduction reduction);
/* multilabel_soft_margin_loss(x [N, C], y [N, C] of 0/1, weight [C] or NULL). */
CT_API ct_tensor *ct_nn_multilabel_soft_margin_loss(const ct_tensor *input, const ct_tensor *target,
                                                    const ct_tensor *weight, ct_reduction reduction);
/* poisson_nll_loss(input, target, log_input (True), full (False), eps 1e-8). */
CT_API ct_tensor *ct_nn_poisson_nll_loss(const ct_tensor *input, const ct_tensor *target, bool log_input, bool full,
                                         double eps, ct_reduction reduction);
/* gaussian_nll_loss(input, target, var (same shape, one fewer trailing dim, or a
 * trailing 1), full (False), eps 1e-6). */
CT_API ct_tensor *ct_nn_gaussian_nll_loss(const ct_tensor *input, const ct_tensor *target, const ct_tensor *var,
                                          bool full, double eps, ct_reduction reduction);

/* ==== vision functionals ====
 * (section kept for conv3d, pooling, upsampling and pixel-shuffle functional forms; declarations are added below this line) */

/* ---- 3-d convolution ----
 * Options of conv3d; zero fields mean PyTorch's defaults (stride 1, padding 0,
 * dilation 1, groups 1). padding_mode: NULL (explicit `padding`), "valid" or "same"
 * (stride 1 only; the odd extra goes at the end, as PyTorch). padding_fill is read by
 * the Conv3d module only (nn.Conv3d's padding_mode: NULL/"zeros", "reflect",
 * "replicate" or "circular"). */
typedef struct ct_conv3d_opts {
    int64_t stride[3];
    int64_t padding[3];
    int64_t dilation[3];
    int64_t groups;
    const char *padding_mode;
    const char *padding_fill;
} ct_conv3d_opts;
/* conv3d(input [N, C, D, H, W] or [C, D, H, W], weight [O, C/groups, kd, kh, kw], bias
 * [O] or NULL). float32 / float64. Composite (depth taps stacked into channels, then
 * conv2d): differentiable to any order in input, weight and bias. New reference. */
CT_API ct_tensor *ct_nn_conv3d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                               const ct_conv3d_opts *opts);

/* ---- unpooling and adaptive pooling ---- */
/* max_unpool2d(input [N, C, H, W] or [C, H, W], indices (int64, input's shape, as
 * max_pool2d returns them), kernel {kh, kw}, stride (NULL or 0: the kernel), padding
 * (NULL: 0), output_size {Ho, Wo} (NULL: (H-1)*stride - 2*padding + kernel)): zeros
 * with each input value written at its flat h*Wo+w index. An index outside the output
 * is an error. New reference; differentiable in input (a gather). */
CT_API ct_tensor *ct_nn_max_unpool2d(const ct_tensor *input, const ct_tensor *indices, const int64_t kernel[2],
                                     const int64_t stride[2], const int64_t padding[2], const int64_t output_size[2]);
/* max_unpool1d over [N, C, L] / [C, L]; stride 0 = kernel; output_size 0 = default. */
CT_API ct_tensor *ct_nn_max_unpool1d(const ct_tensor *input, const ct_tensor *indices, int64_t kernel, int64_t stride,
                                     int64_t padding, int64_t output_size);
/* adaptive_avg_pool1d([N, C, L] / [C, L]) to output_size (PyTorch's window rule). */
CT_API ct_tensor *ct_nn_adaptive_avg_pool1d(const ct_tensor *input, int64_t output_size);
/* adaptive_max_pool2d([N, C, H, W] / [C, H, W]) to {Ho, Wo}: window i covers
 * [floor(i*H/Ho), ceil((i+1)*H/Ho)). indices (may be NULL) receives the int64 flat
 * h*W+w index of each maximum (return_indices=True), a new reference. */
CT_API ct_tensor *ct_nn_adaptive_max_pool2d(const ct_tensor *input, const int64_t output_size[2], ct_tensor **indices);
/* adaptive_max_pool1d([N, C, L] / [C, L]); indices as above (positions along L). */
CT_API ct_tensor *ct_nn_adaptive_max_pool1d(const ct_tensor *input, int64_t output_size, ct_tensor **indices);

/* ---- resampling ---- */
/* interpolate(input [N, C, *spatial] (1 to 3 spatial dims), size, scale_factor, mode,
 * align_corners, recompute_scale_factor) as torch.nn.functional.interpolate.
 * size / scale_factor: one value per spatial dim; exactly one of them non-NULL.
 * mode: "nearest" (NULL), "nearest-exact", "linear" (3-d input), "bilinear" (4-d),
 * "bicubic" (4-d, A = -0.75, clamped taps), "trilinear" (5-d) or "area"
 * (adaptive_avg_pool1d/2d, 3-d and 4-d input).
 * align_corners: CT_ALIGN_CORNERS_NONE (torch's None; False for the interpolating
 * modes), 0 or 1; nearest, nearest-exact and area refuse 0 and 1 as torch does. With a
 * scale_factor and no recompute, the source index uses 1/scale_factor (torch's scales);
 * with recompute_scale_factor (always, for area) the output size floor(in*scale) alone
 * defines it. Indices and weights follow ATen's UpSample.h formulas (float arithmetic
 * for float32).
 * float32 / float64 (uint8 too for the nearest modes, as torch); differentiable to
 * any order (index_select compositions). */
#define CT_ALIGN_CORNERS_NONE (-1)
CT_API ct_tensor *ct_nn_interpolate(const ct_tensor *input, const int64_t *size, const double *scale_factor,
                                    const char *mode, int align_corners, bool recompute_scale_factor);
/* pixel_shuffle([*, C*r*r, H, W]) -> [*, C, H*r, W*r]; pixel_unshuffle the inverse.
 * Any dtype; new (contiguous) reference. */
CT_API ct_tensor *ct_nn_pixel_shuffle(const ct_tensor *input, int64_t upscale_factor);
CT_API ct_tensor *ct_nn_pixel_unshuffle(const ct_tensor *input, int64_t downscale_factor);

/* ==== embedding, bilinear, CTC functionals ====
 * (section kept for embedding_bag, bilinear, dropout2d, ctc_loss; declarations are added below this line) */
struct ct_generator;
/* bilinear(x1 [..., in1], x2 [..., in2], weight [out, in1, in2], bias [out] or NULL)
 * -> [..., out]: y = x1^T W x2 + b. The leading dims of x1 and x2 must be equal. */
CT_API ct_tensor *ct_nn_bilinear(const ct_tensor *input1, const ct_tensor *input2, const ct_tensor *weight,
                                 const ct_tensor *bias);
/* Channel-wise dropout (torch's feature_dropout): in training, each channel x[n, c] is
 * zeroed with probability p (one bernoulli(1 - p) draw per (n, c), drawn from gen or the
 * default generator in torch's order) and the rest scaled by 1 / (1 - p).
 * dropout1d: [N, C, L] or unbatched [C, L] (other ranks are an error, as in torch);
 * dropout2d: any input of >= 2 dims as [N, C, ...] (torch warns outside 3-D/4-D and, like
 *   torch, treats a 3-D input as [N, C, L]);
 * dropout3d: [N, C, D, H, W]; any other rank gets a batch dim added (torch's rule). */
CT_API ct_tensor *ct_nn_dropout1d(const ct_tensor *x, double p, bool training, struct ct_generator *gen);
CT_API ct_tensor *ct_nn_dropout2d(const ct_tensor *x, double p, bool training, struct ct_generator *gen);
CT_API ct_tensor *ct_nn_dropout3d(const ct_tensor *x, double p, bool training, struct ct_generator *gen);
/* embedding_renorm_(weight, indices, max_norm, norm_type): every row of weight that
 * indices name whose norm_type-norm exceeds max_norm is scaled in place (no grad) by
 * max_norm / (norm + 1e-7), as torch.embedding_renorm_. 0 or a negative status. */
CT_API int ct_nn_embedding_renorm_(ct_tensor *weight, const ct_tensor *indices, double max_norm, double norm_type);
/* F.embedding with max_norm: max_norm > 0 first renormalises the looked-up rows of
 * weight IN PLACE (ct_nn_embedding_renorm_, norm_type torch default 2.0); max_norm <= 0
 * means None. padding_idx as ct_nn_embedding (CT_NO_PADDING_IDX for none). */
CT_API ct_tensor *ct_nn_embedding_ex(const ct_tensor *indices, ct_tensor *weight, int64_t padding_idx, double max_norm,
                                     double norm_type);
/* embedding_bag(input, weight [num, dim], offsets, max_norm, norm_type, mode,
 * per_sample_weights, include_last_offset, padding_idx) -> [B, dim]:
 *   input 1-D int64/int32 indices with offsets (1-D, offsets[0] == 0, non-decreasing):
 *     bag b is input[offsets[b] : offsets[b + 1]], the last bag running to the end of
 *     input; with include_last_offset offsets has one entry more than there are bags,
 *     the end of the last bag (torch's contract: the length of input); input 2-D
 *     [B, L]: B bags of L (offsets must be NULL).
 *   mode "sum", "mean" (NULL: torch's default "mean") or "max"; empty bags give zeros.
 *   per_sample_weights (shaped like input, weight's dtype; "sum" only) scale each row.
 *   Entries equal to padding_idx (CT_NO_PADDING_IDX: none) are left out of their bag
 *   (not counted by "mean") and get no gradient. max_norm > 0 renormalises the rows first.
 * Differentiable w.r.t. weight and per_sample_weights; "max" sends the gradient to the
 * first maximal row per feature, as torch. */
CT_API ct_tensor *ct_nn_embedding_bag(const ct_tensor *input, ct_tensor *weight, const ct_tensor *offsets,
                                      double max_norm, double norm_type, const char *mode,
                                      const ct_tensor *per_sample_weights, bool include_last_offset,
                                      int64_t padding_idx);
/* ctc_loss(log_probs [T, N, C] or unbatched [T, C] (float32/float64, log_softmax
 * outputs), targets (integer: padded [N, S] or the concatenation of all targets, 1-D),
 * input_lengths [N], target_lengths [N] (integer tensors; 0-dim for unbatched), blank,
 * reduction, zero_infinity): the per-sample negative log likelihood over all alignments
 * (alpha recursion in log space, float64); "mean" divides each by its target length
 * (at least 1) and takes the mean; "none" gives [N] ([] unbatched). zero_infinity
 * replaces infinite losses (impossible alignments) and their gradients by 0. The gradient
 * w.r.t. log_probs is torch's (exp(log_probs) - occupancy / likelihood, which assumes
 * log_softmax inputs); it is not itself differentiable w.r.t. log_probs (as in torch). */
CT_API ct_tensor *ct_nn_ctc_loss(const ct_tensor *log_probs, const ct_tensor *targets, const ct_tensor *input_lengths,
                                 const ct_tensor *target_lengths, int64_t blank, ct_reduction reduction,
                                 bool zero_infinity);

#ifdef __cplusplus
}
#endif

#endif
