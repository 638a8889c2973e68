/* ctorch/autograd.h — define-by-run reverse-mode automatic differentiation.
 *
 * Semantics follow PyTorch: a tensor created by the user is a leaf; an op on tensors
 * that require grad records a node (grad_fn) while grad mode is enabled; backward()
 * accumulates into the .grad of leaves that require grad (and of non-leaves that
 * called ct_retain_grad). Gradients are computed with ctorch's own differentiable
 * ops, so with create_graph the backward pass is itself recorded and higher
 * derivatives follow. A tensor saved for backward and then modified in place makes
 * backward fail with "... modified by an inplace operation" instead of giving a wrong
 * gradient.
 */
#ifndef CTORCH_AUTOGRAD_H
#define CTORCH_AUTOGRAD_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sets requires_grad on a leaf (error on a non-leaf being set to false, or on a
 * dtype that is not floating/complex). Returns 0 or status. */
CT_API int ct_set_requires_grad(ct_tensor *t, bool requires_grad);
CT_API bool ct_requires_grad(const ct_tensor *t);
CT_API bool ct_is_leaf(const ct_tensor *t);
/* The accumulated gradient: a borrowed pointer (NULL if none), valid until the
 * next backward or ct_zero_grad / ct_set_grad on t. ct_retain() it to keep it. */
CT_API ct_tensor *ct_grad(const ct_tensor *t);
/* Replaces .grad (NULL clears it). The tensor takes its own reference. */
CT_API int ct_set_grad(ct_tensor *t, ct_tensor *grad);
/* Name of the node that created t ("MulBackward0", ...), or NULL for leaves. Static string. */
CT_API const char *ct_grad_fn_name(const ct_tensor *t);
/* Keep .grad for a non-leaf as well. */
CT_API int ct_retain_grad(ct_tensor *t);
/* A view of t that shares its data but is cut from the graph (new reference). */
CT_API ct_tensor *ct_detach(const ct_tensor *t);
/* In place: cuts t from the graph. */
CT_API int ct_detach_(ct_tensor *t);

/* Backward from root. grad may be NULL for a 1-element root (implicit ones).
 * retain_graph keeps the graph for another backward; create_graph records the
 * backward pass (implies retain_graph). Returns 0 or status. */
CT_API int ct_backward(ct_tensor *root, const ct_tensor *grad, bool retain_graph, bool create_graph);
/* torch.autograd.grad: gradients of outputs w.r.t. inputs, returned in grads_out[i]
 * as new references (NULL where an input is unreachable and allow_unused is set;
 * an error otherwise). Does not touch .grad. grad_outputs may be NULL. */
CT_API int ct_autograd_grad(int n_outputs, ct_tensor *const *outputs, const ct_tensor *const *grad_outputs,
                            int n_inputs, ct_tensor *const *inputs, ct_tensor **grads_out,
                            bool retain_graph, bool create_graph, bool allow_unused);

/* Grad mode (thread-local, like torch.no_grad / enable_grad).
 * ct_set_grad_enabled returns the previous value so it can be restored. */
CT_API bool ct_is_grad_enabled(void);
CT_API bool ct_set_grad_enabled(bool enabled);
#define ct_no_grad_begin() ct_set_grad_enabled(false)
#define ct_grad_mode_restore(prev) ct_set_grad_enabled(prev)

/* Tensor hooks: called with the gradient flowing into t during backward. A hook may
 * return a replacement gradient (a new reference) or NULL to keep it. Returns a handle
 * >= 0 for ct_remove_hook, or a negative status. */
typedef ct_tensor *(*ct_grad_hook)(ct_tensor *grad, void *user);
CT_API int ct_register_hook(ct_tensor *t, ct_grad_hook hook, void *user);
CT_API int ct_remove_hook(ct_tensor *t, int handle);

/* gradcheck: compares analytic gradients of fn with central finite differences in
 * float64 (inputs and output float64 or complex128; a complex value is checked as its
 * real and imaginary parts, with PyTorch's convention for complex gradients). fn receives
 * the inputs and returns one output tensor; it runs inside a scope that gradcheck
 * opens, so it must not ct_release results of ops (the scope owns them). eps 1e-6,
 * atol 1e-5, rtol 1e-3 are PyTorch's defaults (pass <= 0 / < 0 for them). Returns 1 if all match, 0 if not (ct_last_error() names the first
 * mismatch), negative status on error. */
typedef ct_tensor *(*ct_gradcheck_fn)(int n, ct_tensor *const *inputs, void *user);
CT_API int ct_gradcheck(ct_gradcheck_fn fn, int n, ct_tensor *const *inputs, void *user,
                        double eps, double atol, double rtol);
/* Second-order: gradcheck of the gradient (with a fixed random grad_output). */
CT_API int ct_gradgradcheck(ct_gradcheck_fn fn, int n, ct_tensor *const *inputs, void *user,
                            double eps, double atol, double rtol);

#ifdef __cplusplus
}
#endif
#endif
