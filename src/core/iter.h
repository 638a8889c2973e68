/* Elementwise iteration (PyTorch's TensorIterator, small): operands of any sizes and
 * strides, broadcast to one shape, dimensions merged where memory allows, and the
 * work split over OpenMP threads above a grain size. A kernel is written once as an
 * inner loop over n elements with a byte stride per operand. */
#ifndef CT_ITER_H
#define CT_ITER_H

#include "core/internal.h"

#define CT_ITER_MAX_OPS 8

/* data[k] points at operand k's first element; strides[k] is its byte stride. */
typedef void (*ct_loop_fn)(char **data, const int64_t *strides, int64_t n, void *ctx);

typedef struct ct_iter {
    int n_ops;            /* outputs first */
    int ndim;             /* after merging; innermost last */
    int64_t shape[CT_MAX_DIMS];
    int64_t strides[CT_ITER_MAX_OPS][CT_MAX_DIMS]; /* bytes */
    char *data[CT_ITER_MAX_OPS];
    int64_t numel;
} ct_iter;

/* Builds an iterator over ops[0..n) (ops[0..n_out) are outputs, already of the
 * broadcast shape). Inputs broadcast to the outputs' shape. Returns 0 or status. */
int ct__iter_build(ct_iter *it, int n, int n_out, const ct_tensor *const *ops);
/* The same, free to visit the elements in any order (elementwise kernels, copies, fills:
 * each element written once, from its own inputs): the dims go in memory order, so
 * transposed and permuted operands stream. Gathers and scatters that accumulate keep
 * ct__iter_build's logical order. */
int ct__iter_build_any_order(ct_iter *it, int n, int n_out, const ct_tensor *const *ops);
/* Runs loop over the iterator; parallel if numel >= grain (grain <= 0: CT_GRAIN). */
void ct__iter_run(const ct_iter *it, ct_loop_fn loop, void *ctx, int64_t grain);
/* True if every operand is contiguous in the merged 1-D iteration (fast paths). */
bool ct__iter_is_contiguous(const ct_iter *it);

/* Broadcast shape of two shapes; returns ndim or -1 with an error naming op. */
int ct__broadcast_shapes(const char *op, int na, const int64_t *a, int nb, const int64_t *b, int64_t *out);

#endif
