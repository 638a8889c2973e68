/* ctorch/module.h — modules (torch.nn.Module): parameters, buffers, children,
 * state dicts with PyTorch's dotted names, train/eval, dtype conversion, printing,
 * containers (Sequential, ModuleList, ModuleDict) and the simple layers.
 *
 * A MODEL IN C
 *
 *     ct_module *net = ct_nn_sequential(CT_MODULES(
 *         ct_nn_flatten_new(1, -1),
 *         ct_nn_linear_new(784, 256, true),
 *         ct_nn_relu_new(),
 *         ct_nn_linear_new(256, 10, true)));
 *     ct_dict *params = ct_module_named_parameters(net);  // "1.weight", "1.bias", ...
 *     ...
 *     ct_scope_begin();
 *     ct_tensor *logits = ct_module_forward(net, x);
 *     ...
 *     ct_scope_end();
 *     ct_dict_free(params);
 *     ct_module_free(net);
 *
 * OWNERSHIP
 *   Modules are reference counted. A constructor returns a module the caller owns;
 *   ct_module_free() drops that reference (and frees the module, its parameters,
 *   buffers and children when no other reference is left). ct_module_add_module() and
 *   the container appends TAKE OVER the reference passed to them, even when they fail,
 *   so constructors can be nested inline without leaks; a NULL child (a failed
 *   constructor) makes them fail and keeps the first error. ct_module_retain() shares a
 *   module between two parents (a shared submodule appears once in parameters()).
 *   Modules hold their own references to parameters and buffers. Functions returning
 *   ct_tensor* return new references (scope rules of ctorch/core.h); functions
 *   returning ct_module* without "_new" return BORROWED pointers valid while the
 *   parent lives.
 *
 * DEFINING A MODULE (the pattern every built-in layer follows)
 *
 *     typedef struct { int64_t hidden; } my_ctx;
 *     static ct_tensor *my_forward(ct_module *self, ct_tensor *x) {
 *         ct_tensor *h = ct_module_forward(ct_module_child(self, "fc1"), x);
 *         return ct_module_forward(ct_module_child(self, "fc2"), ct_relu(h));
 *     }
 *     static const ct_module_type MY_NET = {.name = "MyNet", .forward = my_forward};
 *     ct_module *my_net_new(void) {
 *         ct_module *m = ct_module_new(&MY_NET, NULL);
 *         if (ct_module_add_module(m, "fc1", ct_nn_linear_new(4, 8, true)) ||
 *             ct_module_add_module(m, "fc2", ct_nn_linear_new(8, 2, true))) {
 *             ct_module_free(m);
 *             return NULL;
 *         }
 *         return m;
 *     }
 *   Parameters are registered with ct_module_register_parameter (they become leaves
 *   that require grad), state with ct_module_register_buffer. Names follow PyTorch so
 *   state dicts move between the two libraries unchanged.
 *
 * THREADS
 *   Forward passes of one module may run on several threads at once (training mode
 *   layers that update buffers, e.g. BatchNorm's running stats, excepted). Everything
 *   that changes a module (registering, loading, train/eval, to_dtype, zero_grad)
 *   must not run concurrently with anything else on the same module.
 */
#ifndef CTORCH_MODULE_H
#define CTORCH_MODULE_H

#include <stdio.h>

#include "ctorch/core.h"
#include "ctorch/dict.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_module ct_module;

/* What a kind of module does. Static storage; every field but name is optional. */
typedef struct ct_module_type {
    const char *name; /* type name for printing, e.g. "Linear" */
    /* One-tensor forward (what ct_module_forward and Sequential call). Returns a new
     * reference or NULL with an error. NULL: the module has no forward (ModuleList). */
    ct_tensor *(*forward)(ct_module *self, ct_tensor *input);
    /* Several-tensor forward (torch's forward(*args) returning a tuple), for modules
     * such as LSTM (input, (h0, c0)) -> (output, (h_n, c_n)) or MultiheadAttention.
     * Reads n_in inputs (optional ones may be NULL), writes up to n_out new references
     * into out (the framework has set them to NULL) and returns how many it wrote, or a
     * negative status with the error set. A type with forward_n and no forward runs
     * under ct_module_forward with one input, returning the first output. */
    int (*forward_n)(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out);
    /* Writes the text inside the repr's parentheses ("in_features=4, out_features=2,
     * bias=True") into buf (snprintf semantics). */
    void (*extra_repr)(const ct_module *self, char *buf, size_t size);
    /* Frees the ctx given to ct_module_new. */
    void (*free_ctx)(void *ctx);
} ct_module_type;

/* ---- lifetime ---- */
/* A new module of the given type carrying ctx (owned by the module when type->free_ctx
 * is set). Training mode on. Caller owns (ct_module_free). NULL on OOM. */
CT_API ct_module *ct_module_new(const ct_module_type *type, void *ctx);
/* Adds a reference; returns m (NULL-safe). */
CT_API ct_module *ct_module_retain(ct_module *m);
/* Drops a reference (frees at zero). NULL-safe. */
CT_API void ct_module_free(ct_module *m);
CT_API void *ct_module_ctx(const ct_module *m);
CT_API const char *ct_module_type_name(const ct_module *m);
/* True if m was made with this type (e.g. checking a child is a Linear). */
CT_API bool ct_module_is(const ct_module *m, const ct_module_type *type);

/* ---- registration ---- */
/* Registers (or replaces) parameter `name`. t becomes a leaf that requires grad (the
 * module keeps its own reference; a tensor with history is refused: detach it). t may
 * be NULL for an absent optional parameter (torch's register_parameter(name, None)):
 * it is then skipped everywhere. 0, CT_ERR_ARG (bad name: empty, contains '.', or
 * clashes with a buffer/child), CT_ERR_AUTOGRAD (non-leaf), CT_ERR_OOM. */
CT_API int ct_module_register_parameter(ct_module *m, const char *name, ct_tensor *t);
/* Registers (or replaces) buffer `name` (no grad). persistent buffers go into the
 * state dict. t may be NULL (absent). Errors as above. */
CT_API int ct_module_register_buffer(ct_module *m, const char *name, ct_tensor *t, bool persistent);
/* Adds child `name`, taking over the caller's reference to child (also on failure).
 * NULL child: fails with the error already recorded. 0 or status. */
CT_API int ct_module_add_module(ct_module *m, const char *name, ct_module *child);

/* ---- access ---- */
/* The parameter / buffer at a dotted path ("features.0.weight") as a new reference,
 * or NULL with CT_ERR_KEY (also for registered-as-absent entries). */
CT_API ct_tensor *ct_module_parameter(const ct_module *m, const char *path);
CT_API ct_tensor *ct_module_buffer(const ct_module *m, const char *path);
/* The child at a dotted path ("features.0"), borrowed; NULL with CT_ERR_KEY. */
CT_API ct_module *ct_module_child(const ct_module *m, const char *path);
/* Direct children in registration order: count, i-th (borrowed) and its name
 * (borrowed); NULL with CT_ERR_INDEX out of range. */
CT_API int64_t ct_module_num_children(const ct_module *m);
CT_API ct_module *ct_module_child_at(const ct_module *m, int64_t i);
CT_API const char *ct_module_child_name(const ct_module *m, int64_t i);
/* Parameters registered on m itself (not its children), in order, for layer code:
 * count and i-th (borrowed pointer, NULL for an absent one). */
CT_API int64_t ct_module_num_own_parameters(const ct_module *m);
CT_API ct_tensor *ct_module_own_parameter(const ct_module *m, int64_t i);

/* ---- collections (new dicts the caller frees with ct_dict_free) ---- */
/* All parameters, recursively, named by dotted path in PyTorch's order (own first,
 * then each child's); a tensor shared by several modules appears once. The dict
 * holds the parameter tensors themselves (training updates them in place). */
CT_API ct_dict *ct_module_named_parameters(const ct_module *m);
/* All buffers (persistent or not), recursively. */
CT_API ct_dict *ct_module_named_buffers(const ct_module *m);
/* Parameters and persistent buffers, in PyTorch's state_dict order, as detached
 * tensors sharing memory with the module. */
CT_API ct_dict *ct_module_state_dict(const ct_module *m);

/* Outcome of a load, for callers that want the key lists (strict=false). */
typedef struct ct_load_result {
    int64_t n_missing, n_unexpected;
    char **missing_keys;    /* malloc'd strings */
    char **unexpected_keys;
} ct_load_result;
CT_API void ct_load_result_free(ct_load_result *r);

/* Copies the values of sd into the module's parameters and persistent buffers (no
 * grad; dtypes are cast like torch's copy_). Shape mismatches are always an error; with
 * strict, missing or unexpected keys are too. The error message lists every problem in
 * PyTorch's format ("Error(s) in loading state_dict for Net:\n\tMissing key(s) in
 * state_dict: "fc.bias". ..."). On error nothing is modified. result (may be NULL)
 * receives the missing / unexpected keys (free with ct_load_result_free).
 * 0, CT_ERR_KEY (missing/unexpected with strict), CT_ERR_SHAPE, CT_ERR_ARG. */
CT_API int ct_module_load_state_dict(ct_module *m, const ct_dict *sd, bool strict, ct_load_result *result);

/* ---- modes and bulk operations ---- */
/* Sets training mode on m and all its children (torch's train(mode)). 0 or CT_ERR_ARG. */
CT_API int ct_module_train(ct_module *m, bool mode);
CT_API int ct_module_eval(ct_module *m);
CT_API bool ct_module_is_training(const ct_module *m);
/* Casts floating-point parameters and buffers (and their grads) to dtype in place:
 * the tensor objects stay the same (optimizers built earlier keep working).
 * dtype must be floating. 0 or status. */
CT_API int ct_module_to_dtype(ct_module *m, ct_dtype dtype);
/* Clears (set_to_none) or zeroes the .grad of every parameter. */
CT_API int ct_module_zero_grad(ct_module *m, bool set_to_none);
/* Sets requires_grad on every parameter (freezing / unfreezing). */
CT_API int ct_module_requires_grad_(ct_module *m, bool requires_grad);
/* Calls fn on every submodule (children first, then m itself, like torch's apply).
 * Stops at the first non-zero return and returns it. */
CT_API int ct_module_apply(ct_module *m, int (*fn)(ct_module *m, void *user), void *user);
/* Number of parameter elements (each shared tensor counted once); trainable_only
 * counts those that require grad. -1 on a NULL module. */
CT_API int64_t ct_module_num_parameters(const ct_module *m, bool trainable_only);

/* ---- running ---- */
/* Runs the module's one-tensor forward. NULL input propagates. New reference. */
CT_API ct_tensor *ct_module_forward(ct_module *m, ct_tensor *input);

/* Runs the module's several-tensor forward (or its one-tensor forward when n_in is 1):
 * inputs[0..n_in) (optional ones NULL, as the module documents), outputs receive up to
 * n_out new references (the rest set to NULL). Returns the number of outputs written
 * (>= 0) or a negative status with the error set. */
CT_API int ct_module_forward_n(ct_module *m, int n_in, ct_tensor *const *inputs, int n_out, ct_tensor **outputs);

/* ---- printing ---- */
/* PyTorch's repr of the module tree, e.g.
 *   Sequential(
 *     (0): Linear(in_features=784, out_features=10, bias=True)
 *     (1): ReLU()
 *   )
 * A malloc'd string the caller free()s; NULL on OOM. */
CT_API char *ct_module_repr(const ct_module *m);
/* A table of every module the forward pass on an input of the given shape runs
 * (depth-indented type and name, output shape, own parameter count) with the totals,
 * from one forward pass on zeros in eval mode without grad (the mode is restored).
 * malloc'd string (free()), or NULL with the error of the forward pass. */
CT_API char *ct_module_summary(ct_module *m, int ndim, const int64_t *input_shape, ct_dtype dtype);

/* ---- containers ---- */
/* Sequential: forward runs the children in order. Children are named "0", "1", ...
 * BatchNorm2d followed by ReLU (and MaxPool2d) on a 4-D float input runs as one fused
 * autograd node (grad_fn "BatchNormReluBackward" / "BatchNormReluMaxPool2DBackward")
 * with the same outputs, running statistics and gradients, bit for bit, as running the
 * modules one by one; ct_module_summary still records each module. */
CT_API ct_module *ct_nn_sequential_new(void);
/* Appends (taking over the reference to m, also on failure). 0 or status. */
CT_API int ct_nn_sequential_append(ct_module *seq, ct_module *m);
/* A Sequential of n modules (taking over all n references, also on failure: if any is
 * NULL the others are freed and NULL is returned with the first error). Caller owns. */
CT_API ct_module *ct_nn_sequential(int n, ct_module *const *mods);
/* CT_MODULES(a, b, c) expands to `3, (ct_module *[]){a, b, c}` for ct_nn_sequential. */
#define CT_MODULES(...) \
    (int)(sizeof((ct_module *[]){__VA_ARGS__}) / sizeof(ct_module *)), (ct_module *[]){__VA_ARGS__}
/* ModuleList: children "0", "1", ...; no forward. */
CT_API ct_module *ct_nn_module_list_new(void);
CT_API int ct_nn_module_list_append(ct_module *list, ct_module *m);
/* ModuleDict: named children; no forward. ct_nn_module_dict_set replaces an existing name. */
CT_API ct_module *ct_nn_module_dict_new(void);
CT_API int ct_nn_module_dict_set(ct_module *dict, const char *name, ct_module *m);

/* ---- simple layers (constructors return a module the caller owns, NULL on error) ---- */
CT_API ct_module *ct_nn_identity_new(void);
/* Linear(in, out, bias): weight [out, in] and bias [out] initialised as PyTorch does
 * (kaiming_uniform_(a=sqrt(5)) then U(-1/sqrt(in), 1/sqrt(in)) for the bias), drawing
 * from the default generator, so the same ct_manual_seed gives torch's numbers. */
CT_API ct_module *ct_nn_linear_new(int64_t in_features, int64_t out_features, bool bias);
/* Flatten(start_dim, end_dim) (torch's defaults: 1, -1); Unflatten(dim, sizes). */
CT_API ct_module *ct_nn_flatten_new(int64_t start_dim, int64_t end_dim);
CT_API ct_module *ct_nn_unflatten_new(int64_t dim, int n, const int64_t *sizes);
/* Dropout(p): active in training mode only; uses the default generator. */
CT_API ct_module *ct_nn_dropout_new(double p);

/* ---- layers over ctorch/nn.h ----
 * Parameters are initialised as PyTorch's reset_parameters() does, drawing from the
 * default generator in the same order, so the same ct_manual_seed gives the same
 * numbers; names and reprs are PyTorch's. */
struct ct_conv_opts;
struct ct_pool_opts;
/* Conv2d(in, out, kernel {kh, kw}, opts (may be NULL), bias): weight [out, in/groups, kh, kw]. */
CT_API ct_module *ct_nn_conv2d_new(int64_t in_channels, int64_t out_channels, const int64_t kernel[2],
                                   const struct ct_conv_opts *opts, bool bias);
/* Conv1d(in, out, k, opts (1-d values in index 0), bias). */
CT_API ct_module *ct_nn_conv1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                   const struct ct_conv_opts *opts, bool bias);
/* MaxPool2d / AvgPool2d(kernel {kh, kw}, opts (may be NULL)); AdaptiveAvgPool2d(size).
 * Reprs print square sizes as one int (torch's MaxPool2d(2)) and the adaptive output
 * size as a pair (AdaptiveAvgPool2d((1, 1))). */
CT_API ct_module *ct_nn_max_pool2d_new(const int64_t kernel[2], const struct ct_pool_opts *opts);
CT_API ct_module *ct_nn_avg_pool2d_new(const int64_t kernel[2], const struct ct_pool_opts *opts);
CT_API ct_module *ct_nn_adaptive_avg_pool2d_new(const int64_t output_size[2]);
/* BatchNorm1d / BatchNorm2d(num_features, eps (torch: 1e-5), momentum (0.1), affine,
 * track_running_stats): parameters weight/bias, buffers running_mean, running_var,
 * num_batches_tracked. */
CT_API ct_module *ct_nn_batch_norm1d_new(int64_t num_features, double eps, double momentum, bool affine,
                                         bool track_running_stats);
CT_API ct_module *ct_nn_batch_norm2d_new(int64_t num_features, double eps, double momentum, bool affine,
                                         bool track_running_stats);
/* LayerNorm(normalized_shape (n dims), eps (1e-5), elementwise_affine). */
CT_API ct_module *ct_nn_layer_norm_new(int n, const int64_t *normalized_shape, double eps, bool elementwise_affine);
/* GroupNorm(num_groups, num_channels, eps 1e-5, affine). */
CT_API ct_module *ct_nn_group_norm_new(int64_t num_groups, int64_t num_channels, double eps, bool affine);
/* RMSNorm(normalized_shape, eps (< 0: None, the dtype's epsilon), elementwise_affine). */
CT_API ct_module *ct_nn_rms_norm_new(int n, const int64_t *normalized_shape, double eps, bool elementwise_affine);
/* InstanceNorm2d(num_features, eps 1e-5, momentum 0.1, affine (False), track_running_stats (False)). */
CT_API ct_module *ct_nn_instance_norm2d_new(int64_t num_features, double eps, double momentum, bool affine,
                                            bool track_running_stats);
/* Embedding(num, dim, padding_idx or CT_NO_PADDING_IDX): weight ~ N(0, 1), padding row 0. */
CT_API ct_module *ct_nn_embedding_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx);

/* Activations as modules (the functional forms are in ctorch/activation.h). */
CT_API ct_module *ct_nn_relu_new(void);
CT_API ct_module *ct_nn_relu6_new(void);
CT_API ct_module *ct_nn_leaky_relu_new(double negative_slope);      /* torch default 0.01 */
CT_API ct_module *ct_nn_elu_new(double alpha);                      /* 1.0 */
CT_API ct_module *ct_nn_selu_new(void);
CT_API ct_module *ct_nn_celu_new(double alpha);                     /* 1.0 */
CT_API ct_module *ct_nn_gelu_new(const char *approximate);          /* "none" or "tanh"; NULL = "none" */
CT_API ct_module *ct_nn_silu_new(void);
CT_API ct_module *ct_nn_mish_new(void);
CT_API ct_module *ct_nn_sigmoid_new(void);
CT_API ct_module *ct_nn_tanh_new(void);
CT_API ct_module *ct_nn_softplus_new(double beta, double threshold); /* 1.0, 20.0 */
CT_API ct_module *ct_nn_softsign_new(void);
CT_API ct_module *ct_nn_hardtanh_new(double min_val, double max_val); /* -1.0, 1.0 */
CT_API ct_module *ct_nn_hardsigmoid_new(void);
CT_API ct_module *ct_nn_hardswish_new(void);
CT_API ct_module *ct_nn_logsigmoid_new(void);
CT_API ct_module *ct_nn_softmax_new(int64_t dim);
CT_API ct_module *ct_nn_log_softmax_new(int64_t dim);
CT_API ct_module *ct_nn_glu_new(int64_t dim);                       /* -1 */

/* ==== vision layers ====
 * (section kept for Conv3d, ConvTranspose, pooling, Upsample, PixelShuffle, Fold/Unfold modules; declarations are added below this line) */

/* Conventions of this section: constructors return a module the caller owns (NULL with
 * an error on bad arguments); parameters are initialised as PyTorch's reset_parameters
 * (kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)), then the bias likewise) from the
 * default generator; names and reprs are PyTorch's. Where a torch argument may be an
 * int or a tuple, the repr prints a pair of equal values as one int (as if an int was
 * given). Modules with return_indices use forward_n: outputs (values, indices). */
struct ct_conv3d_opts;
/* Conv3d(in, out, kernel {kd, kh, kw}, opts (may be NULL), bias): weight
 * [out, in/groups, kd, kh, kw], bias [out]. */
CT_API ct_module *ct_nn_conv3d_new(int64_t in_channels, int64_t out_channels, const int64_t kernel[3],
                                   const struct ct_conv3d_opts *opts, bool bias);
/* ConvTranspose2d / ConvTranspose1d(in, out, kernel, opts (stride, padding,
 * output_padding, groups, dilation; padding strings and fills refused), bias):
 * weight [in, out/groups, k...], fan_in = (out/groups) * prod(k) (torch computes it from
 * the weight's dim 1). forward_n takes (input[, output_size]): output_size, a 1-d int64
 * tensor of the spatial sizes (optionally preceded by the batch/channel sizes), chooses
 * the output_padding as torch's forward(input, output_size) does. */
CT_API ct_module *ct_nn_conv_transpose2d_new(int64_t in_channels, int64_t out_channels, const int64_t kernel[2],
                                             const struct ct_conv_opts *opts, bool bias);
CT_API ct_module *ct_nn_conv_transpose1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                             const struct ct_conv_opts *opts, bool bias);
/* MaxPool1d(kernel, opts (1-d values in index 0), return_indices); AvgPool1d. */
CT_API ct_module *ct_nn_max_pool1d_new(int64_t kernel, const struct ct_pool_opts *opts, bool return_indices);
CT_API ct_module *ct_nn_avg_pool1d_new(int64_t kernel, const struct ct_pool_opts *opts);
/* MaxUnpool2d(kernel, stride (NULL/0: kernel), padding (NULL: 0)); MaxUnpool1d.
 * forward_n inputs: (input, indices[, output_size as a 1-d int64 tensor of the spatial
 * sizes]); one output. */
CT_API ct_module *ct_nn_max_unpool2d_new(const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2]);
CT_API ct_module *ct_nn_max_unpool1d_new(int64_t kernel, int64_t stride, int64_t padding);
/* AdaptiveAvgPool1d(L); AdaptiveMaxPool1d(L, return_indices); AdaptiveMaxPool2d({Ho, Wo},
 * return_indices) (repr: one int when Ho == Wo). */
CT_API ct_module *ct_nn_adaptive_avg_pool1d_new(int64_t output_size);
CT_API ct_module *ct_nn_adaptive_max_pool1d_new(int64_t output_size, bool return_indices);
CT_API ct_module *ct_nn_adaptive_max_pool2d_new(const int64_t output_size[2], bool return_indices);
/* Upsample(size or scale_factor, mode, align_corners, recompute_scale_factor): n values
 * in size / scale_factor (exactly one non-NULL); n == 1 is torch's single int/float
 * (applied to every spatial dim, printed as a scalar), n > 1 a tuple. mode and
 * align_corners as ct_nn_interpolate. */
CT_API ct_module *ct_nn_upsample_new(int n, const int64_t *size, const double *scale_factor, const char *mode,
                                     int align_corners, bool recompute_scale_factor);
/* UpsamplingNearest2d / UpsamplingBilinear2d (align_corners=True), size or scale_factor
 * as Upsample (n values). */
CT_API ct_module *ct_nn_upsampling_nearest2d_new(int n, const int64_t *size, const double *scale_factor);
CT_API ct_module *ct_nn_upsampling_bilinear2d_new(int n, const int64_t *size, const double *scale_factor);
/* PixelShuffle(upscale_factor), PixelUnshuffle(downscale_factor). */
CT_API ct_module *ct_nn_pixel_shuffle_new(int64_t upscale_factor);
CT_API ct_module *ct_nn_pixel_unshuffle_new(int64_t downscale_factor);
/* Fold(output_size, kernel, dilation, padding, stride) and Unfold(kernel, dilation,
 * padding, stride) over ct_nn_fold / ct_nn_unfold (NULL dilation/padding/stride: torch's
 * 1 / 0 / 1). */
CT_API ct_module *ct_nn_fold_new(const int64_t output_size[2], const int64_t kernel[2], const int64_t dilation[2],
                                 const int64_t padding[2], const int64_t stride[2]);
CT_API ct_module *ct_nn_unfold_new(const int64_t kernel[2], const int64_t dilation[2], const int64_t padding[2],
                                   const int64_t stride[2]);

/* ==== other layers and loss modules ====
 * (section kept for Bilinear, Dropout2d, EmbeddingBag, loss modules; declarations are added below this line) */
#include "ctorch/nn.h" /* ct_reduction, CT_NO_PADDING_IDX (has its own guard and extern "C") */
/* Bilinear(in1, in2, out, bias): weight [out, in1, in2], bias [out], both
 * U(-1/sqrt(in1), 1/sqrt(in1)) as torch; forward_n(input1, input2). */
CT_API ct_module *ct_nn_bilinear_new(int64_t in1_features, int64_t in2_features, int64_t out_features, bool bias);
/* Dropout1d / Dropout2d / Dropout3d(p): channel-wise dropout (ct_nn_dropout1d/2d/3d) in
 * training mode, identity in eval; the default generator. */
CT_API ct_module *ct_nn_dropout1d_new(double p);
CT_API ct_module *ct_nn_dropout2d_new(double p);
CT_API ct_module *ct_nn_dropout3d_new(double p);
/* Embedding(num, dim, padding_idx, max_norm (<= 0: None), norm_type (torch: 2.0)): as
 * ct_nn_embedding_new, and with max_norm each forward renormalises the looked-up rows
 * of weight in place (ct_nn_embedding_ex). */
CT_API ct_module *ct_nn_embedding_ex_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                                         double max_norm, double norm_type);
/* EmbeddingBag(num, dim, max_norm (<= 0: None), norm_type (2.0), mode ("sum", "mean",
 * "max"; NULL: "mean"), include_last_offset, padding_idx (CT_NO_PADDING_IDX: none)):
 * weight ~ N(0, 1) with the padding row zeroed; forward_n(input, offsets (may be NULL
 * or left out), per_sample_weights (may be NULL or left out)) = ct_nn_embedding_bag. */
CT_API ct_module *ct_nn_embedding_bag_new(int64_t num_embeddings, int64_t embedding_dim, double max_norm,
                                          double norm_type, const char *mode, bool include_last_offset,
                                          int64_t padding_idx);

/* Loss modules: forward_n takes torch's forward arguments and writes the loss:
 * (input, target) unless noted. Arguments and defaults are those of the functional forms
 * in ctorch/nn.h. Class weights (may be NULL) are registered as buffers under torch's
 * names ("weight", and "pos_weight" for BCEWithLogitsLoss), so they appear in state
 * dicts exactly when torch has them; the module keeps its own reference. Reprs are
 * torch's ("CrossEntropyLoss()"). */
CT_API ct_module *ct_nn_mse_loss_new(ct_reduction reduction);
CT_API ct_module *ct_nn_l1_loss_new(ct_reduction reduction);
CT_API ct_module *ct_nn_smooth_l1_loss_new(ct_reduction reduction, double beta);
CT_API ct_module *ct_nn_huber_loss_new(ct_reduction reduction, double delta);
CT_API ct_module *ct_nn_cross_entropy_loss_new(ct_tensor *weight, int64_t ignore_index, ct_reduction reduction,
                                               double label_smoothing);
CT_API ct_module *ct_nn_nll_loss_new(ct_tensor *weight, int64_t ignore_index, ct_reduction reduction);
CT_API ct_module *ct_nn_bce_loss_new(ct_tensor *weight, ct_reduction reduction);
CT_API ct_module *ct_nn_bce_with_logits_loss_new(ct_tensor *weight, ct_reduction reduction, ct_tensor *pos_weight);
CT_API ct_module *ct_nn_kl_div_loss_new(ct_reduction reduction, bool log_target);
CT_API ct_module *ct_nn_cosine_embedding_loss_new(double margin, ct_reduction reduction); /* (x1, x2, target) */
CT_API ct_module *ct_nn_margin_ranking_loss_new(double margin, ct_reduction reduction);   /* (x1, x2, target) */
CT_API ct_module *ct_nn_hinge_embedding_loss_new(double margin, ct_reduction reduction);
/* (anchor, positive, negative) */
CT_API ct_module *ct_nn_triplet_margin_loss_new(double margin, double p, double eps, bool swap, ct_reduction reduction);
CT_API ct_module *ct_nn_multilabel_soft_margin_loss_new(ct_tensor *weight, ct_reduction reduction);
CT_API ct_module *ct_nn_poisson_nll_loss_new(bool log_input, bool full, double eps, ct_reduction reduction);
CT_API ct_module *ct_nn_gaussian_nll_loss_new(bool full, double eps, ct_reduction reduction); /* (input, target, var) */
/* (log_probs, targets, input_lengths, target_lengths) */
CT_API ct_module *ct_nn_ctc_loss_new(int64_t blank, ct_reduction reduction, bool zero_infinity);

#ifdef __cplusplus
}
#endif

#endif
