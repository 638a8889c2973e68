/* ctorch/reduce.h — reductions and scans.
 *
 * Dimension lists: (ndims, dims); (0, NULL) reduces over all dimensions (PyTorch's
 * dim=None). keepdim keeps reduced dims with size 1. dtype CT_NUM_DTYPES means
 * PyTorch's default (integer/bool sums accumulate to int64). Results are new
 * references; out-parameters (`indices`, `mean`) receive a new reference owned by the
 * same rule as the return value (the innermost scope, or you); pass NULL to skip them. NULL and an error on bad input, e.g.
 * "max(): Expected reduction dim to be specified for input.numel() == 0".
 */
#ifndef CTORCH_REDUCE_H
#define CTORCH_REDUCE_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sum of all elements (0-dim). */
CT_API ct_tensor *ct_sum(const ct_tensor *x);
CT_API ct_tensor *ct_sum_dim(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim, ct_dtype dtype);
CT_API ct_tensor *ct_nansum(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
/* Mean: floating or complex input (an integer input is an error, as in PyTorch). */
CT_API ct_tensor *ct_mean(const ct_tensor *x);
CT_API ct_tensor *ct_mean_dim(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim, ct_dtype dtype);
CT_API ct_tensor *ct_nanmean(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
CT_API ct_tensor *ct_prod(const ct_tensor *x);
CT_API ct_tensor *ct_prod_dim(const ct_tensor *x, int dim, bool keepdim, ct_dtype dtype);
/* max/min of all elements (error for an empty tensor); NaN propagates. */
CT_API ct_tensor *ct_max(const ct_tensor *x);
CT_API ct_tensor *ct_min(const ct_tensor *x);
/* (values, indices) along dim; the index of the first extreme is returned. */
CT_API ct_tensor *ct_max_dim(const ct_tensor *x, int dim, bool keepdim, ct_tensor **indices);
CT_API ct_tensor *ct_min_dim(const ct_tensor *x, int dim, bool keepdim, ct_tensor **indices);
CT_API ct_tensor *ct_amax(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
CT_API ct_tensor *ct_amin(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
/* argmax/argmin along dim, or over the flattened tensor if dim == CT_ALL_DIMS. */
#define CT_ALL_DIMS (-2147483647 - 1)
CT_API ct_tensor *ct_argmax(const ct_tensor *x, int dim, bool keepdim);
CT_API ct_tensor *ct_argmin(const ct_tensor *x, int dim, bool keepdim);
/* Variance / standard deviation with Bessel's correction (1 = unbiased, PyTorch's default). */
CT_API ct_tensor *ct_var(const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim);
CT_API ct_tensor *ct_std(const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim);
/* (var, mean) and (std, mean) in one call; *mean gets a new reference. */
CT_API ct_tensor *ct_var_mean(const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim,
                              ct_tensor **mean);
CT_API ct_tensor *ct_std_mean(const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim,
                              ct_tensor **mean);
/* Vector p-norm (torch.norm / linalg.vector_norm): p may be INFINITY, -INFINITY or 0. */
CT_API ct_tensor *ct_norm(const ct_tensor *x, double p, int ndims, const int64_t *dims, bool keepdim);
CT_API ct_tensor *ct_logsumexp(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
/* -> bool (uint8 for a uint8 input, as PyTorch) */
CT_API ct_tensor *ct_all(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
CT_API ct_tensor *ct_any(const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
/* -> int64 */
CT_API ct_tensor *ct_count_nonzero(const ct_tensor *x, int ndims, const int64_t *dims);
/* Median of all elements (lower middle for an even count) / along dim with indices. */
CT_API ct_tensor *ct_median(const ct_tensor *x);
CT_API ct_tensor *ct_median_dim(const ct_tensor *x, int dim, bool keepdim, ct_tensor **indices);
CT_API ct_tensor *ct_nanmedian(const ct_tensor *x);
/* Most frequent value along dim (the smallest among equally frequent values) and the
 * index of its last occurrence, as PyTorch on the CPU. */
CT_API ct_tensor *ct_mode(const ct_tensor *x, int dim, bool keepdim, ct_tensor **indices);
/* Scans along dim. */
CT_API ct_tensor *ct_cumsum(const ct_tensor *x, int dim, ct_dtype dtype);
CT_API ct_tensor *ct_cumprod(const ct_tensor *x, int dim, ct_dtype dtype);
/* cummax/cummin: running extreme and, among equal values, the index of the last one. */
CT_API ct_tensor *ct_cummax(const ct_tensor *x, int dim, ct_tensor **indices);
CT_API ct_tensor *ct_cummin(const ct_tensor *x, int dim, ct_tensor **indices);
CT_API ct_tensor *ct_logcumsumexp(const ct_tensor *x, int dim);

/* ---- out= forms: write the result into `out` (resized if its shape differs) and
 * return 0, or a negative status, also when an input requires grad (out= is not
 * differentiable, as in PyTorch). Dtypes as PyTorch: sum/prod/cumsum/cumprod without a
 * dtype compute in out's dtype; mean and logsumexp need a result castable to out's;
 * amax/amin/norm and the (values, indices) forms need out of exactly the result's
 * dtype (indices int64). ---- */
CT_API int ct_sum_dim_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim, ct_dtype dtype);
CT_API int ct_mean_dim_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim, ct_dtype dtype);
CT_API int ct_prod_dim_out(ct_tensor *out, const ct_tensor *x, int dim, bool keepdim, ct_dtype dtype);
CT_API int ct_amax_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
CT_API int ct_amin_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
CT_API int ct_logsumexp_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
CT_API int ct_norm_out(ct_tensor *out, const ct_tensor *x, double p, int ndims, const int64_t *dims, bool keepdim);
CT_API int ct_cumsum_out(ct_tensor *out, const ct_tensor *x, int dim, ct_dtype dtype);
CT_API int ct_cumprod_out(ct_tensor *out, const ct_tensor *x, int dim, ct_dtype dtype);
CT_API int ct_max_dim_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool keepdim);
CT_API int ct_min_dim_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool keepdim);
CT_API int ct_var_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim);
CT_API int ct_std_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, double correction, bool keepdim);
CT_API int ct_median_dim_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool keepdim);
CT_API int ct_mode_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim, bool keepdim);
CT_API int ct_cummax_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim);
CT_API int ct_cummin_out(ct_tensor *values, ct_tensor *indices, const ct_tensor *x, int dim);
/* nansum_out computes in out's dtype (like sum_out); nanmean_out casts the result to out's
 * dtype; argmax/argmin need an int64 out; all/any need a bool or uint8 out. */
CT_API int ct_nansum_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
CT_API int ct_nanmean_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
CT_API int ct_argmax_out(ct_tensor *out, const ct_tensor *x, int dim, bool keepdim);
CT_API int ct_argmin_out(ct_tensor *out, const ct_tensor *x, int dim, bool keepdim);
CT_API int ct_all_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);
CT_API int ct_any_out(ct_tensor *out, const ct_tensor *x, int ndims, const int64_t *dims, bool keepdim);

#ifdef __cplusplus
}
#endif
#endif
