/* ctorch/index.h — joining, splitting, gathering, scattering, ordering, and other
 * shape and indexing ops. Index tensors are int64 (int32 accepted where PyTorch
 * accepts it). Results are new references; functions filling an array of outputs
 * return the count (or -1 on error) and store new references. NULL and an error on
 * bad input, e.g. "gather: index 5 is out of bounds for dimension 1 with size 3". */
#ifndef CTORCH_INDEX_H
#define CTORCH_INDEX_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- joining and splitting ---- */
CT_API ct_tensor *ct_cat(int n, const ct_tensor *const *tensors, int dim);
CT_API ct_tensor *ct_stack(int n, const ct_tensor *const *tensors, int dim);
CT_API ct_tensor *ct_hstack(int n, const ct_tensor *const *tensors);
CT_API ct_tensor *ct_vstack(int n, const ct_tensor *const *tensors);
/* cat promotes dtypes across inputs and skips empty 1-D inputs ([0]) as PyTorch does.
 * split / split_sizes / chunk store views (narrow) of x in out[] (new references) and
 * return their count; ct_split and ct_chunk return just the count when out is NULL, and
 * fail if max_out is smaller than it. chunk follows PyTorch's size rule
 * (ceil(size / chunks) per chunk, so fewer than `chunks` may come back). */
/* Views of chunks of split_size along dim (the last may be smaller). */
CT_API int64_t ct_split(const ct_tensor *x, int64_t split_size, int dim, ct_tensor **out, int64_t max_out);
CT_API int64_t ct_split_sizes(const ct_tensor *x, int n_sizes, const int64_t *sizes, int dim, ct_tensor **out);
CT_API int64_t ct_chunk(const ct_tensor *x, int64_t chunks, int dim, ct_tensor **out, int64_t max_out);

/* ---- gathering and scattering ---- */
CT_API ct_tensor *ct_gather(const ct_tensor *x, int dim, const ct_tensor *index);
/* Out-of-place scatter (torch.scatter) and in-place forms. */
CT_API ct_tensor *ct_scatter(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src);
CT_API ct_tensor *ct_scatter_value(const ct_tensor *x, int dim, const ct_tensor *index, double value);
CT_API int ct_scatter_(ct_tensor *self, int dim, const ct_tensor *index, const ct_tensor *src);
CT_API ct_tensor *ct_scatter_add(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src);
CT_API int ct_scatter_add_(ct_tensor *self, int dim, const ct_tensor *index, const ct_tensor *src);
/* reduce: "sum", "prod", "mean", "amax" or "amin". */
CT_API ct_tensor *ct_scatter_reduce(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src,
                                    const char *reduce, bool include_self);
CT_API ct_tensor *ct_index_select(const ct_tensor *x, int dim, const ct_tensor *index);
/* x with alpha * source added / copied at index along dim. */
CT_API ct_tensor *ct_index_add(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *source,
                               double alpha);
CT_API int ct_index_add_(ct_tensor *self, int dim, const ct_tensor *index, const ct_tensor *source, double alpha);
CT_API ct_tensor *ct_index_copy(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *source);
CT_API int ct_index_copy_(ct_tensor *self, int dim, const ct_tensor *index, const ct_tensor *source);
CT_API ct_tensor *ct_index_fill(const ct_tensor *x, int dim, const ct_tensor *index, double value);
/* Advanced indexing x[i0, i1, ...]: n index tensors (int64 or bool masks); a NULL entry
 * stands for a full slice ':'. Follows NumPy/PyTorch placement of the indexed dims. */
CT_API ct_tensor *ct_index(const ct_tensor *x, int n, const ct_tensor *const *indices);
/* x[indices] = values (accumulate: +=), out of place and in place. */
CT_API ct_tensor *ct_index_put(const ct_tensor *x, int n, const ct_tensor *const *indices, const ct_tensor *values,
                               bool accumulate);
CT_API int ct_index_put_(ct_tensor *self, int n, const ct_tensor *const *indices, const ct_tensor *values,
                         bool accumulate);
CT_API ct_tensor *ct_masked_fill(const ct_tensor *x, const ct_tensor *mask, const ct_tensor *value);
CT_API int ct_masked_fill_(ct_tensor *self, const ct_tensor *mask, const ct_tensor *value);
CT_API ct_tensor *ct_masked_scatter(const ct_tensor *x, const ct_tensor *mask, const ct_tensor *source);
CT_API ct_tensor *ct_masked_select(const ct_tensor *x, const ct_tensor *mask);
/* [n, ndim] int64 coordinates of the nonzero elements, in C order. */
CT_API ct_tensor *ct_nonzero(const ct_tensor *x);
CT_API ct_tensor *ct_take(const ct_tensor *x, const ct_tensor *index);
CT_API ct_tensor *ct_take_along_dim(const ct_tensor *x, const ct_tensor *index, int dim);

/* ---- ordering ---- */
CT_API ct_tensor *ct_sort(const ct_tensor *x, int dim, bool descending, bool stable, ct_tensor **indices);
CT_API ct_tensor *ct_argsort(const ct_tensor *x, int dim, bool descending, bool stable);
CT_API ct_tensor *ct_topk(const ct_tensor *x, int64_t k, int dim, bool largest, bool sorted, ct_tensor **indices);
CT_API ct_tensor *ct_kthvalue(const ct_tensor *x, int64_t k, int dim, bool keepdim, ct_tensor **indices);
/* torch.unique (sorted): inverse / counts are optional outputs (NULL to skip). dim
 * CT_ALL_DIMS for the flattened tensor, else unique slices along dim. */
CT_API ct_tensor *ct_unique(const ct_tensor *x, bool sorted, int dim, ct_tensor **inverse, ct_tensor **counts);
CT_API ct_tensor *ct_unique_consecutive(const ct_tensor *x, int dim, ct_tensor **inverse, ct_tensor **counts);
CT_API ct_tensor *ct_bucketize(const ct_tensor *x, const ct_tensor *boundaries, bool out_int32, bool right);
CT_API ct_tensor *ct_searchsorted(const ct_tensor *sorted_sequence, const ct_tensor *values, bool out_int32,
                                  bool right);

/* ---- rearranging ---- */
CT_API ct_tensor *ct_flip(const ct_tensor *x, int ndims, const int64_t *dims);
CT_API ct_tensor *ct_fliplr(const ct_tensor *x);
CT_API ct_tensor *ct_flipud(const ct_tensor *x);
/* ndims == 0: roll the flattened tensor by shifts[0]. */
CT_API ct_tensor *ct_roll(const ct_tensor *x, int nshifts, const int64_t *shifts, int ndims, const int64_t *dims);
CT_API ct_tensor *ct_rot90(const ct_tensor *x, int k, int dim0, int dim1);
CT_API ct_tensor *ct_repeat(const ct_tensor *x, int n, const int64_t *repeats);
CT_API ct_tensor *ct_tile(const ct_tensor *x, int n, const int64_t *reps);
/* repeats: an int64 tensor (one per element / slice) or a 1-element one; dim
 * CT_ALL_DIMS flattens first. */
CT_API ct_tensor *ct_repeat_interleave(const ct_tensor *x, const ct_tensor *repeats, int dim);
CT_API ct_tensor *ct_repeat_interleave_int(const ct_tensor *x, int64_t repeats, int dim);
CT_API ct_tensor *ct_tril(const ct_tensor *x, int64_t diagonal);
CT_API ct_tensor *ct_triu(const ct_tensor *x, int64_t diagonal);
CT_API int ct_tril_(ct_tensor *self, int64_t diagonal);
CT_API int ct_triu_(ct_tensor *self, int64_t diagonal);
/* F.pad: npad values (left, right) pairs from the last dim backwards; mode "constant",
 * "reflect", "replicate" or "circular"; negative padding crops (constant mode). */
CT_API ct_tensor *ct_pad(const ct_tensor *x, int npad, const int64_t *pad, const char *mode, double value);
/* F.one_hot: int64 input, num_classes -1 infers max+1; -> int64. */
CT_API ct_tensor *ct_one_hot(const ct_tensor *x, int64_t num_classes);
/* torch.meshgrid: indexing "ij" or "xy"; fills out[0..n). Returns 0 or status. */
CT_API int ct_meshgrid(int n, const ct_tensor *const *tensors, const char *indexing, ct_tensor **out);
/* 1-D -> diagonal matrix, 2-D -> its diagonal (torch.diag). */
CT_API ct_tensor *ct_diag(const ct_tensor *x, int64_t diagonal);
CT_API ct_tensor *ct_diag_embed(const ct_tensor *x, int64_t offset, int dim1, int dim2);
CT_API ct_tensor *ct_trace(const ct_tensor *x);

/* out= forms: the result is written into `out` (resized if its shape differs); 0 or a
 * negative status, also when an input requires grad. As in PyTorch, outer, cat and stack
 * accept an out whose dtype the result can be cast to; the others need out of exactly
 * the result's dtype.
 * sort_out / topk_out write values and int64 indices. */
CT_API int ct_cat_out(ct_tensor *out, int n, const ct_tensor *const *tensors, int dim);
CT_API int ct_stack_out(ct_tensor *out, int n, const ct_tensor *const *tensors, int dim);
CT_API int ct_gather_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index);
CT_API int ct_index_select_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index);
CT_API int ct_masked_select_out(ct_tensor *out, const ct_tensor *x, const ct_tensor *mask);
CT_API int ct_nonzero_out(ct_tensor *out, const ct_tensor *x);
CT_API int ct_take_out(ct_tensor *out, const ct_tensor *x, const ct_tensor *index);
CT_API int ct_sort_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool descending, bool stable);
CT_API int ct_topk_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int64_t k, int dim, bool largest,
                       bool sorted);
CT_API int ct_kthvalue_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int64_t k, int dim, bool keepdim);
CT_API int ct_tril_out(ct_tensor *out, const ct_tensor *x, int64_t diagonal);
CT_API int ct_triu_out(ct_tensor *out, const ct_tensor *x, int64_t diagonal);
/* out must be int32 if out_int32, else int64 (as torch). */
CT_API int ct_searchsorted_out(ct_tensor *out, const ct_tensor *sorted_sequence, const ct_tensor *values, bool out_int32,
                               bool right);
CT_API int ct_bucketize_out(ct_tensor *out, const ct_tensor *x, const ct_tensor *boundaries, bool out_int32, bool right);
/* Scatter / index updates written to out (out must have x's dtype; x is not modified). */
CT_API int ct_scatter_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src);
CT_API int ct_scatter_value_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, double value);
CT_API int ct_scatter_add_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src);
CT_API int ct_scatter_reduce_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index,
                                 const ct_tensor *src, const char *reduce, bool include_self);
CT_API int ct_index_add_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index,
                            const ct_tensor *source, double alpha);
CT_API int ct_index_copy_out(ct_tensor *out, const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *source);
CT_API int ct_diag_out(ct_tensor *out, const ct_tensor *x, int64_t diagonal);
CT_API int ct_take_along_dim_out(ct_tensor *out, const ct_tensor *x, const ct_tensor *index, int dim);

#ifdef __cplusplus
}
#endif
#endif
