/* ctorch/tensor.h — tensor creation, properties, views, data access, printing.
 *
 * Sizes are outermost-first, as in PyTorch. Strides and the storage offset are in
 * elements. Every returned tensor is a new reference (see ctorch/core.h for the
 * ownership and error rules); NULL means failure and ct_last_error() says why.
 *
 * CT_SHAPE(2, 3) expands to the (ndim, sizes) pair most functions take:
 *     ct_tensor *z = ct_zeros(CT_SHAPE(2, 3), CT_FLOAT32);
 * A 0-dim tensor is (0, NULL).
 */
#ifndef CTORCH_TENSOR_H
#define CTORCH_TENSOR_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CT_SHAPE(...) \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

/* ---- properties (t must not be NULL; they return 0/false/NULL-ish values if it is) ---- */
CT_API int ct_ndim(const ct_tensor *t);
/* Size of dim (negative dims count from the end); -1 and an error if out of range. */
CT_API int64_t ct_size(const ct_tensor *t, int dim);
CT_API int64_t ct_stride(const ct_tensor *t, int dim);
/* Borrowed pointers to ndim sizes / strides, valid while t lives. */
CT_API const int64_t *ct_sizes(const ct_tensor *t);
CT_API const int64_t *ct_strides(const ct_tensor *t);
CT_API int64_t ct_numel(const ct_tensor *t);
CT_API int64_t ct_storage_offset(const ct_tensor *t);
CT_API ct_dtype ct_get_dtype(const ct_tensor *t);
CT_API ct_device ct_get_device(const ct_tensor *t);
CT_API bool ct_is_contiguous(const ct_tensor *t);
/* Borrowed pointer to the first element (storage data + offset), CPU tensors only. */
CT_API void *ct_data_ptr(const ct_tensor *t);
/* True if a and b share a storage (one is a view of the other, or both of a third). */
CT_API bool ct_shares_storage(const ct_tensor *a, const ct_tensor *b);
/* The storage's version counter: bumped by every in-place write. */
CT_API int64_t ct_version_counter(const ct_tensor *t);
/* Shape as text, "[2, 3]". Writes at most n bytes including the NUL; returns buf. */
CT_API char *ct_shape_str(const ct_tensor *t, char *buf, size_t n);

/* ---- creation (CPU; dtype as given) ---- */
CT_API ct_tensor *ct_empty(int ndim, const int64_t *sizes, ct_dtype dtype);
CT_API ct_tensor *ct_empty_strided(int ndim, const int64_t *sizes, const int64_t *strides, ct_dtype dtype);
CT_API ct_tensor *ct_zeros(int ndim, const int64_t *sizes, ct_dtype dtype);
CT_API ct_tensor *ct_ones(int ndim, const int64_t *sizes, ct_dtype dtype);
CT_API ct_tensor *ct_full(int ndim, const int64_t *sizes, double value, ct_dtype dtype);
CT_API ct_tensor *ct_empty_like(const ct_tensor *t);
CT_API ct_tensor *ct_zeros_like(const ct_tensor *t);
CT_API ct_tensor *ct_ones_like(const ct_tensor *t);
CT_API ct_tensor *ct_full_like(const ct_tensor *t, double value);
/* A 0-dim tensor holding value, of the given dtype. */
CT_API ct_tensor *ct_scalar_tensor(double value, ct_dtype dtype);
/* Python-number-like scalars: 0-dim "wrapped numbers" that take part in type
 * promotion the way a Python float / int / bool / complex does (they never raise a
 * tensor's dtype within its category: int32_tensor + ct_int(5) is int32,
 * int32_tensor + ct_float(2.5) is float32). */
CT_API ct_tensor *ct_float(double value);
CT_API ct_tensor *ct_int(int64_t value);
CT_API ct_tensor *ct_bool(bool value);
CT_API ct_tensor *ct_complex(double re, double im);
/* Copies n = prod(sizes) elements of dtype from data (C order). */
CT_API ct_tensor *ct_from_data(const void *data, int ndim, const int64_t *sizes, ct_dtype dtype);
/* Wraps caller memory without copying. The memory must outlive every tensor viewing
 * it; deleter(data, ctx) is called when the last one goes (NULL: nothing is called).
 * strides may be NULL (C-contiguous). */
CT_API ct_tensor *ct_from_blob(void *data, int ndim, const int64_t *sizes, const int64_t *strides,
                               ct_dtype dtype, void (*deleter)(void *data, void *ctx), void *ctx);
/* torch.arange(start, end, step); dtype int64 if CT_NUM_DTYPES is passed and all of
 * start/end/step are integers, else the default float dtype. */
CT_API ct_tensor *ct_arange(double start, double end, double step, ct_dtype dtype);
CT_API ct_tensor *ct_linspace(double start, double end, int64_t steps, ct_dtype dtype);
CT_API ct_tensor *ct_logspace(double start, double end, int64_t steps, double base, ct_dtype dtype);
CT_API ct_tensor *ct_eye(int64_t n, int64_t m, ct_dtype dtype);

/* ---- element access (slow; for tests and small code) ---- */
/* Value of a 1-element tensor as double (real part for complex). */
CT_API double ct_item(const ct_tensor *t);
/* Copies t's elements (any layout) in C order into buf as dtype; bufsize in bytes.
 * Returns 0 or an error status. */
CT_API int ct_copy_to_buffer(const ct_tensor *t, void *buf, size_t bufsize, ct_dtype dtype);
/* Element at a multi-index as double. */
CT_API double ct_get(const ct_tensor *t, const int64_t *index);

/* ---- conversion and copies ---- */
/* A tensor of dtype; returns t itself (new reference) if it already has it. Differentiable. */
CT_API ct_tensor *ct_to_dtype(const ct_tensor *t, ct_dtype dtype);
/* A copy with its own storage. Differentiable. */
CT_API ct_tensor *ct_clone(const ct_tensor *t);
/* t if contiguous (new reference), else a contiguous copy. Differentiable. */
CT_API ct_tensor *ct_contiguous(const ct_tensor *t);
/* Copies src into dst in place (broadcasting src, casting dtype). Returns 0 or status. */
CT_API int ct_copy_(ct_tensor *dst, const ct_tensor *src);
/* Fills dst in place. */
CT_API int ct_fill_(ct_tensor *dst, double value);
CT_API int ct_zero_(ct_tensor *dst);

/* ---- views: share storage with the input ---- */
CT_API ct_tensor *ct_view(const ct_tensor *t, int ndim, const int64_t *sizes); /* one size may be -1 */
CT_API ct_tensor *ct_reshape(const ct_tensor *t, int ndim, const int64_t *sizes); /* view when possible */
CT_API ct_tensor *ct_as_strided(const ct_tensor *t, int ndim, const int64_t *sizes, const int64_t *strides,
                                int64_t storage_offset);
CT_API ct_tensor *ct_permute(const ct_tensor *t, int ndim, const int *dims);
CT_API ct_tensor *ct_transpose(const ct_tensor *t, int dim0, int dim1);
CT_API ct_tensor *ct_t(const ct_tensor *t); /* 2-D transpose; 0/1-D returned as is */
CT_API ct_tensor *ct_expand(const ct_tensor *t, int ndim, const int64_t *sizes); /* -1 keeps a size */
CT_API ct_tensor *ct_expand_as(const ct_tensor *t, const ct_tensor *other);
CT_API ct_tensor *ct_narrow(const ct_tensor *t, int dim, int64_t start, int64_t length);
CT_API ct_tensor *ct_select(const ct_tensor *t, int dim, int64_t index);
/* t[start:end:step] along dim (Python slicing: negative and out-of-range bounds are clamped;
 * step > 0). Use INT64_MAX for "to the end". */
CT_API ct_tensor *ct_slice(const ct_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
CT_API ct_tensor *ct_squeeze(const ct_tensor *t);
CT_API ct_tensor *ct_squeeze_dim(const ct_tensor *t, int dim);
CT_API ct_tensor *ct_unsqueeze(const ct_tensor *t, int dim);
CT_API ct_tensor *ct_flatten(const ct_tensor *t, int start_dim, int end_dim);
CT_API ct_tensor *ct_unflatten(const ct_tensor *t, int dim, int ndim, const int64_t *sizes);
/* Fills out[0..size(dim)-1] with new references (views). Returns the count, or -1. */
CT_API int64_t ct_unbind(const ct_tensor *t, int dim, ct_tensor **out, int64_t max_out);
CT_API ct_tensor *ct_diagonal(const ct_tensor *t, int64_t offset, int dim1, int dim2);
CT_API ct_tensor *ct_movedim(const ct_tensor *t, int src, int dst);
/* View of a complex tensor as real with a trailing dim of 2, and back. */
CT_API ct_tensor *ct_view_as_real(const ct_tensor *t);
CT_API ct_tensor *ct_view_as_complex(const ct_tensor *t);

/* ---- printing: as PyTorch prints (precision 4, summarised beyond 1000 elements) ---- */
/* Returns a malloc'd string the caller frees with ct_free_string(). NULL on error. */
CT_API char *ct_to_string(const ct_tensor *t);
CT_API void ct_free_string(char *s);
/* Prints ct_to_string(t) and a newline to stdout. Returns 0 or status. */
CT_API int ct_print(const ct_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
