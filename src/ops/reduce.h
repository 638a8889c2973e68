/* Shared pieces of reduction front ends. */
#ifndef CT_OPS_REDUCE_H
#define CT_OPS_REDUCE_H

#include "ops/elementwise.h"

/* Fills mask[0..x->ndim) from a dim list ((0, NULL): all dims). 0 or -1 + error. */
int ct__reduce_dims(const char *op, const ct_tensor *x, int ndims, const int64_t *dims, bool *mask);
/* Output shape of a reduction. */
void ct__reduced_shape(const ct_tensor *x, const bool *mask, bool keepdim, int *ond, int64_t *osizes);
/* Runs a reduction kernel (op) of x over mask into a new tensor of out_dt
 * (unregistered, no autograd). The kernel receives the mask in iv[]. */
ct_tensor *ct__reduce_raw(ct_op op, const ct_tensor *x, const bool *mask, bool keepdim, ct_dtype out_dt);
/* Broadcasts a reduction's gradient back to the input shape (differentiable). */
ct_tensor *ct__grad_expand_reduced(const ct_tensor *g, int in_nd, const int64_t *in_sizes, const int64_t *mask,
                                   bool keepdim);

#endif
