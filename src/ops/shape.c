/* Joining, splitting and rearranging: cat, stack, hstack, vstack, split, split_sizes,
 * chunk, flip, fliplr, flipud, roll, rot90, repeat, tile, repeat_interleave, tril,
 * triu, pad, one_hot, meshgrid, diag, diag_embed, trace.
 *
 * Most are compositions of views and cat (autograd from the pieces). cat, flip,
 * tril/triu, diag_embed and constant pad copy with their own kernels and record a node
 * whose backward is again a public op (narrow, flip, tril, diagonal). split and chunk
 * return views (narrow), as PyTorch does; flip always copies (no negative strides). */
#include <stdio.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"

/* Runs a composite body inside a scope and hands its result to the caller's scope. */
#define COMPOSE(expr)                                   \
    do {                                                \
        if (ct_scope_begin()) return NULL;              \
        ct_tensor *r_ = ct_keep(expr);                  \
        ct_scope_end();                                 \
        return r_;                                      \
    } while (0)

static bool is_diff(ct_dtype d) { return ct_dtype_is_floating(d) || ct_dtype_is_complex(d); }

/* ================================ cat ================================ */
static bool cat_skipped(const ct_tensor *t) { return t->ndim == 1 && t->sizes[0] == 0; }

/* ivec[k]: size of input k along dim (-1: a legacy-skipped empty 1-D input); i[0]: dim */
static int cat_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int dim = (int)n->i[0];
    int64_t off = 0;
    for (int k = 0; k < n->n_next; k++) {
        int64_t sz = n->ivec[k];
        if (sz < 0) {
            if (ct__node_needs(n, k) && !(gi[k] = ct_zeros(1, (int64_t[]){0}, go[0]->dtype))) return ct_last_status();
            continue;
        }
        if (ct__node_needs(n, k) && !(gi[k] = ct_narrow(go[0], dim, off, sz))) return ct_last_status();
        off += sz;
    }
    return 0;
}

CT_API ct_tensor *ct_cat(int n, const ct_tensor *const *ts, int dim) {
    if (n <= 0 || !ts) return ct__err(CT_ERR_ARG, "torch.cat(): expected a non-empty list of Tensors");
    for (int k = 0; k < n; k++) CT_CHECK_ARG("cat", ts[k]);
    const ct_tensor *ref = NULL;
    int refi = -1;
    for (int k = 0; k < n; k++) {
        if (ts[k]->ndim == 0)
            return ct__err(CT_ERR_SHAPE, "torch.cat(): zero-dimensional tensor (at position %d) cannot be concatenated", k);
        if (!ref && !cat_skipped(ts[k])) { ref = ts[k]; refi = k; }
    }
    ct_dtype dt = ct__result_type(n, ts);
    if (!ref) { /* every input is an empty 1-D tensor */
        if (ct__wrap_dim("cat", dim, 1) < 0) return NULL;
        ref = ts[0];
        refi = 0;
    }
    int d = ct__wrap_dim("cat", dim, ref->ndim);
    if (d < 0) return NULL;
    int64_t osz[CT_MAX_DIMS];
    memcpy(osz, ref->sizes, sizeof(int64_t) * (size_t)ref->ndim);
    osz[d] = 0;
    for (int k = 0; k < n; k++) {
        const ct_tensor *t = ts[k];
        if (cat_skipped(t) && !(k == refi)) continue;
        if (t->ndim != ref->ndim)
            return ct__err(CT_ERR_SHAPE, "Tensors must have same number of dimensions: got %d and %d", ref->ndim, t->ndim);
        for (int i = 0; i < t->ndim; i++)
            if (i != d && t->sizes[i] != ref->sizes[i])
                return ct__err(CT_ERR_SHAPE, "Sizes of tensors must match except in dimension %d. Expected size %lld but "
                                             "got size %lld for tensor number %d in the list.", d,
                               (long long)ref->sizes[i], (long long)t->sizes[i], k);
        osz[d] += t->sizes[d];
    }
    ct_tensor *out = ct__empty_raw(ref->ndim, osz, dt);
    if (!out) return NULL;
    /* inputs of the result's type, each a contiguous block per index of the dims before
     * d (contiguous tensors, slices along d): one pass in output order where the device
     * has it (cpu/copy.c); else each input copied (and cast) into its slice */
    bool one_pass = ct__has_kernel(out->storage->device.type, CT_OP_CAT);
    for (int k = 0; k < n && one_pass; k++) {
        int64_t os;
        one_pass = (cat_skipped(ts[k]) && k != refi) || !ts[k]->numel ||
                   (ts[k]->dtype == dt && ct__blocks_contiguous(ts[k], d, &os) &&
                    ts[k]->storage->device.type == out->storage->device.type);
    }
    if (one_pass) {
        ct_kernel_args a = {.op = CT_OP_CAT, .n_out = 1, .out = {out}, .tv = ts, .n_tv = n, .i = {d}};
        if (out->numel && ct__dispatch(&a)) { ct_release(out); return NULL; }
    }
    int64_t off = 0;
    for (int k = 0; k < n && !one_pass; k++) {
        const ct_tensor *t = ts[k];
        if (cat_skipped(t) && k != refi) continue;
        if (t->numel) {
            int64_t vs[CT_MAX_DIMS];
            memcpy(vs, osz, sizeof(int64_t) * (size_t)ref->ndim);
            vs[d] = t->sizes[d];
            ct_tensor *v = ct__alias(out, ref->ndim, vs, out->strides, out->offset + off * out->strides[d]);
            int rc = v ? ct__copy_raw(v, t) : -1;
            ct_release(v);
            if (rc) { ct_release(out); return NULL; }
        }
        off += t->sizes[d];
    }
    if (ct__needs_grad(n, ts) && is_diff(dt)) {
        ct_node *nd = ct__node_new("CatBackward0", cat_backward, n);
        int64_t *iv = malloc(sizeof(int64_t) * (size_t)n);
        int rc = (!nd || !iv) ? -1 : 0;
        for (int k = 0; !rc && k < n; k++) {
            rc = ct__node_set_next(nd, k, ts[k]);
            iv[k] = (cat_skipped(ts[k]) && k != refi) ? -1 : ts[k]->sizes[d];
        }
        if (!rc) rc = ct__node_set_ivec(nd, n, iv);
        free(iv);
        if (rc) {
            if (nd) ct__node_release(nd);
            ct_release(out);
            return rc == -1 && ct_last_status() == CT_OK ? ct__err(CT_ERR_OOM, "cat: out of memory") : NULL;
        }
        nd->i[0] = d;
        ct__set_history(out, nd, 0);
    }
    return ct__ret(out);
}

static ct_tensor *stack_impl(int n, const ct_tensor *const *ts, int dim) {
    if (n <= 0 || !ts) return ct__err(CT_ERR_ARG, "stack expects a non-empty TensorList");
    for (int k = 0; k < n; k++) CT_CHECK_ARG("stack", ts[k]);
    for (int k = 1; k < n; k++)
        if (!ct__same_sizes(ts[k]->ndim, ts[k]->sizes, ts[0]->ndim, ts[0]->sizes))
            return ct__err(CT_ERR_SHAPE, "stack expects each tensor to be equal size, but got %s at entry 0 and %s at "
                                         "entry %d", CT_SHAPESTR(ts[0]), CT_SHAPESTR(ts[k]), k);
    int d = ct__wrap_dim("stack", dim, ts[0]->ndim + 1);
    if (d < 0) return NULL;
    const ct_tensor **u = malloc(sizeof(*u) * (size_t)n);
    if (!u) return ct__err(CT_ERR_OOM, "stack: out of memory");
    for (int k = 0; k < n; k++)
        if (!(u[k] = ct_unsqueeze(ts[k], d))) { free(u); return NULL; }
    ct_tensor *r = ct_cat(n, u, d);
    free(u);
    return r;
}
CT_API ct_tensor *ct_stack(int n, const ct_tensor *const *ts, int dim) { COMPOSE(stack_impl(n, ts, dim)); }

static ct_tensor *hvstack(const char *op, int n, const ct_tensor *const *ts, int min_nd) {
    if (n <= 0 || !ts) return ct__err(CT_ERR_ARG, "%s expects a non-empty TensorList", op);
    for (int k = 0; k < n; k++) CT_CHECK_ARG(op, ts[k]);
    const ct_tensor **u = malloc(sizeof(*u) * (size_t)n);
    if (!u) return ct__err(CT_ERR_OOM, "%s: out of memory", op);
    for (int k = 0; k < n; k++) {
        const ct_tensor *t = ts[k];
        if (t->ndim == 0) t = min_nd == 1 ? ct_reshape(t, 1, (int64_t[]){1}) : ct_reshape(t, 2, (int64_t[]){1, 1});
        else if (t->ndim == 1 && min_nd == 2) t = ct_unsqueeze(t, 0);
        if (!(u[k] = t)) { free(u); return NULL; }
    }
    int dim = min_nd == 2 ? 0 : (u[0]->ndim == 1 ? 0 : 1);
    ct_tensor *r = ct_cat(n, u, dim);
    free(u);
    return r;
}
CT_API ct_tensor *ct_hstack(int n, const ct_tensor *const *ts) { COMPOSE(hvstack("hstack", n, ts, 1)); }
CT_API ct_tensor *ct_vstack(int n, const ct_tensor *const *ts) { COMPOSE(hvstack("vstack", n, ts, 2)); }

/* ============================ split / chunk ============================ */
static int64_t fill_narrows(const ct_tensor *x, int d, int64_t count, const int64_t *sizes, int64_t uniform,
                            int64_t last, ct_tensor **out) {
    int64_t off = 0;
    for (int64_t i = 0; i < count; i++) {
        int64_t len = sizes ? sizes[i] : (i == count - 1 ? last : uniform);
        out[i] = ct_narrow(x, d, off, len);
        if (!out[i]) {
            for (int64_t j = 0; j < i; j++) ct_release(ct__scope_take(out[j]));
            return -1;
        }
        off += len;
    }
    return count;
}

CT_API int64_t ct_split(const ct_tensor *x, int64_t split_size, int dim, ct_tensor **out, int64_t max_out) {
    if (!x) { ct__null_arg("split"); return -1; }
    if (x->ndim == 0) { ct__err(CT_ERR_SHAPE, "split expects at least a 1-dimensional tensor"); return -1; }
    int d = ct__wrap_dim("split", dim, x->ndim);
    if (d < 0) return -1;
    if (split_size < 0) {
        ct__err(CT_ERR_ARG, "split expects split_size be non-negative, but got split_size=%lld", (long long)split_size);
        return -1;
    }
    int64_t n = x->sizes[d];
    if (split_size == 0 && n != 0) {
        ct__err(CT_ERR_ARG, "split_size can only be 0 if dimension size is 0, but got dimension size of %lld", (long long)n);
        return -1;
    }
    int64_t count = split_size ? (n + split_size - 1) / split_size : 1;
    if (count < 1) count = 1;
    int64_t last = split_size - (split_size * count - n);
    if (!out) return count;
    if (max_out < count) {
        ct__err(CT_ERR_ARG, "split: output array holds %lld tensors, need %lld", (long long)max_out, (long long)count);
        return -1;
    }
    return fill_narrows(x, d, count, NULL, split_size, last, out);
}

CT_API int64_t ct_split_sizes(const ct_tensor *x, int n_sizes, const int64_t *sizes, int dim, ct_tensor **out) {
    if (!x) { ct__null_arg("split_with_sizes"); return -1; }
    if (x->ndim == 0) { ct__err(CT_ERR_SHAPE, "split expects at least a 1-dimensional tensor"); return -1; }
    int d = ct__wrap_dim("split_with_sizes", dim, x->ndim);
    if (d < 0) return -1;
    if (n_sizes < 0 || (n_sizes && !sizes) || !out) { ct__err(CT_ERR_ARG, "split_with_sizes: invalid arguments"); return -1; }
    int64_t total = 0;
    for (int i = 0; i < n_sizes; i++) {
        if (sizes[i] < 0) {
            ct__err(CT_ERR_ARG, "split_with_sizes expects split_sizes have only non-negative entries, but got "
                                "split_sizes=%s", CT_SIZESSTR(n_sizes, sizes));
            return -1;
        }
        total += sizes[i];
    }
    if (total != x->sizes[d]) {
        ct__err(CT_ERR_SHAPE, "split_with_sizes expects split_sizes to sum exactly to %lld (input tensor's size at "
                              "dimension %d), but got split_sizes=%s", (long long)x->sizes[d], d,
                CT_SIZESSTR(n_sizes, sizes));
        return -1;
    }
    return fill_narrows(x, d, n_sizes, sizes, 0, 0, out);
}

CT_API int64_t ct_chunk(const ct_tensor *x, int64_t chunks, int dim, ct_tensor **out, int64_t max_out) {
    if (!x) { ct__null_arg("chunk"); return -1; }
    if (x->ndim == 0) { ct__err(CT_ERR_SHAPE, "chunk expects at least a 1-dimensional tensor"); return -1; }
    if (chunks <= 0) { ct__err(CT_ERR_ARG, "chunk expects `chunks` to be greater than 0, got: %lld", (long long)chunks); return -1; }
    int d = ct__wrap_dim("chunk", dim, x->ndim);
    if (d < 0) return -1;
    int64_t n = x->sizes[d], split_size = (n + chunks - 1) / chunks;
    if (split_size == 0 && n == 0) {
        if (!out) return chunks;
        if (max_out < chunks) {
            ct__err(CT_ERR_ARG, "chunk: output array holds %lld tensors, need %lld", (long long)max_out, (long long)chunks);
            return -1;
        }
        return fill_narrows(x, d, chunks, NULL, 0, 0, out);
    }
    return ct_split(x, split_size, d, out, max_out);
}

/* ================================ flip ================================ */
static ct_tensor *flip_mask(const ct_tensor *x, const int64_t *mask);

static int flip_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    gi[0] = flip_mask(go[0], n->ivec);
    return gi[0] ? 0 : ct_last_status();
}

/* mask: one flag per dim of x */
static ct_tensor *flip_mask(const ct_tensor *x, const int64_t *mask) {
    ct_tensor *out = ct__empty_raw(x->ndim, x->sizes, x->dtype);
    if (!out) return NULL;
    ct_kernel_args k = {.op = CT_OP_FLIP, .n_out = 1, .n_in = 1, .out = {out}, .in = {x}, .iv = mask, .n_iv = x->ndim};
    if (ct__dispatch(&k)) { ct_release(out); return NULL; }
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new("FlipBackward0", flip_backward, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_set_ivec(n, x->ndim, mask)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

CT_API ct_tensor *ct_flip(const ct_tensor *x, int ndims, const int64_t *dims) {
    CT_CHECK_ARG("flip", x);
    if (ndims < 0 || (ndims && !dims)) return ct__err(CT_ERR_ARG, "flip: invalid dims");
    int64_t mask[CT_MAX_DIMS] = {0};
    for (int i = 0; i < ndims; i++) {
        int d = ct__wrap_dim("flip", (int)dims[i], x->ndim);
        if (d < 0) return NULL;
        if (x->ndim == 0) continue;
        if (mask[d]) return ct__err(CT_ERR_ARG, "flip: dim %d appears multiple times in the list of dims", d);
        mask[d] = 1;
    }
    return flip_mask(x, mask);
}

CT_API ct_tensor *ct_fliplr(const ct_tensor *x) {
    CT_CHECK_ARG("fliplr", x);
    if (x->ndim < 2) return ct__err(CT_ERR_SHAPE, "fliplr: Input must be >= 2-d.");
    return ct_flip(x, 1, (int64_t[]){1});
}

CT_API ct_tensor *ct_flipud(const ct_tensor *x) {
    CT_CHECK_ARG("flipud", x);
    if (x->ndim < 1) return ct__err(CT_ERR_SHAPE, "flipud: Input must be >= 1-d.");
    return ct_flip(x, 1, (int64_t[]){0});
}

/* ============================ roll / rot90 ============================ */
static ct_tensor *roll_dim(const ct_tensor *x, int d, int64_t shift) {
    int64_t n = x->sizes[d];
    if (n == 0) return (ct_tensor *)x;
    int64_t s = ((shift % n) + n) % n;
    if (s == 0) return (ct_tensor *)x;
    const ct_tensor *parts[2] = {ct_narrow(x, d, n - s, s), ct_narrow(x, d, 0, n - s)};
    if (!parts[0] || !parts[1]) return NULL;
    return ct_cat(2, parts, d);
}

static ct_tensor *roll_impl(const ct_tensor *x, int nshifts, const int64_t *shifts, int ndims, const int64_t *dims) {
    if (nshifts <= 0 || !shifts) return ct__err(CT_ERR_ARG, "roll: `shifts` required");
    if (ndims == 0) {
        if (nshifts != 1)
            return ct__err(CT_ERR_ARG, "roll: shifts and dimensions must align. shifts: %d, dims:0", nshifts);
        ct_tensor *f = ct_reshape(x, 1, (int64_t[]){x->numel});
        ct_tensor *r = f ? roll_dim(f, 0, shifts[0]) : NULL;
        return r ? ct_reshape(ct_clone(r), x->ndim, x->sizes) : NULL;
    }
    if (nshifts != ndims)
        return ct__err(CT_ERR_ARG, "roll: shifts and dimensions must align. shifts: %d, dims:%d", nshifts, ndims);
    const ct_tensor *r = x;
    for (int i = 0; i < ndims; i++) {
        int d = ct__wrap_dim("roll", (int)dims[i], x->ndim);
        if (d < 0) return NULL;
        if (x->ndim == 0) continue;
        r = roll_dim(r, d, shifts[i]);
        if (!r) return NULL;
    }
    return r == x ? ct_clone(x) : (ct_tensor *)r;
}
CT_API ct_tensor *ct_roll(const ct_tensor *x, int nshifts, const int64_t *shifts, int ndims, const int64_t *dims) {
    CT_CHECK_ARG("roll", x);
    COMPOSE(roll_impl(x, nshifts, shifts, ndims, dims));
}

static ct_tensor *rot90_impl(const ct_tensor *x, int k, int dim0, int dim1) {
    if (x->ndim < 2) return ct__err(CT_ERR_SHAPE, "rot90: expected total dims >= 2, but got total dims = %d", x->ndim);
    int a = ct__wrap_dim("rot90", dim0, x->ndim), b = a < 0 ? -1 : ct__wrap_dim("rot90", dim1, x->ndim);
    if (a < 0 || b < 0) return NULL;
    if (a == b) return ct__err(CT_ERR_ARG, "rot90: expected rotation dims to be different, but got dim0 = %d and dim1 = %d", a, b);
    k = ((k % 4) + 4) % 4;
    switch (k) {
    case 1: return ct_transpose(ct_flip(x, 1, (int64_t[]){b}), a, b);
    case 2: return ct_flip(x, 2, (int64_t[]){a, b});
    case 3: return ct_transpose(ct_flip(x, 1, (int64_t[]){a}), a, b);
    default: return ct_clone(x);
    }
}
CT_API ct_tensor *ct_rot90(const ct_tensor *x, int k, int dim0, int dim1) {
    CT_CHECK_ARG("rot90", x);
    COMPOSE(rot90_impl(x, k, dim0, dim1));
}

/* ============================ repeat / tile ============================ */
static ct_tensor *repeat_impl(const ct_tensor *x, int n, const int64_t *reps) {
    if (n < x->ndim)
        return ct__err(CT_ERR_ARG, "repeat: Number of dimensions of repeat dims can not be smaller than number of "
                                   "dimensions of tensor");
    if (2 * n > CT_MAX_DIMS) return ct__err(CT_ERR_ARG, "repeat: too many dimensions");
    int64_t osz[CT_MAX_DIMS], isz[CT_MAX_DIMS], esz[CT_MAX_DIMS], usz[CT_MAX_DIMS];
    int lead = n - x->ndim;
    for (int i = 0; i < n; i++) {
        isz[i] = i < lead ? 1 : x->sizes[i - lead];
        osz[i] = isz[i] * reps[i];
    }
    for (int i = 0; i < n; i++)
        if (reps[i] < 0)
            return ct__err(CT_ERR_ARG, "repeat: Trying to create tensor with negative dimension %lld: %s",
                           (long long)osz[i], CT_SIZESSTR(n, osz));
    for (int i = 0; i < n; i++) {
        usz[2 * i] = 1;
        usz[2 * i + 1] = isz[i];
        esz[2 * i] = reps[i];
        esz[2 * i + 1] = isz[i];
    }
    ct_tensor *v = ct_reshape(x, 2 * n, usz);
    ct_tensor *e = ct_expand(v, 2 * n, esz);
    return ct_reshape(ct_contiguous(e), n, osz);
}
CT_API ct_tensor *ct_repeat(const ct_tensor *x, int n, const int64_t *reps) {
    CT_CHECK_ARG("repeat", x);
    if (n < 0 || (n && !reps)) return ct__err(CT_ERR_ARG, "repeat: invalid repeats");
    COMPOSE(repeat_impl(x, n, reps));
}

CT_API ct_tensor *ct_tile(const ct_tensor *x, int n, const int64_t *reps) {
    CT_CHECK_ARG("tile", x);
    if (n < 0 || (n && !reps)) return ct__err(CT_ERR_ARG, "tile: invalid dims");
    if (n >= x->ndim) return ct_repeat(x, n, reps);
    int64_t r[CT_MAX_DIMS];
    int lead = x->ndim - n;
    for (int i = 0; i < x->ndim; i++) r[i] = i < lead ? 1 : reps[i - lead];
    return ct_repeat(x, x->ndim, r);
}

/* ========================== repeat_interleave ========================== */
static ct_tensor *rep_int_impl(const ct_tensor *x, int64_t r, int dim) {
    if (r < 0) return ct__err(CT_ERR_ARG, "repeat_interleave: repeats can not be negative");
    if (dim == CT_ALL_DIMS) { x = ct_reshape(x, 1, (int64_t[]){x->numel}); dim = 0; if (!x) return NULL; }
    int d = ct__wrap_dim("repeat_interleave", dim, x->ndim);
    if (d < 0) return NULL;
    if (x->ndim == 0) x = ct_reshape(x, 1, (int64_t[]){1});
    if (!x) return NULL;
    int64_t esz[CT_MAX_DIMS], osz[CT_MAX_DIMS];
    int nd = x->ndim;
    for (int i = 0, j = 0; i < nd; i++) {
        esz[j++] = x->sizes[i];
        if (i == d) esz[j++] = r;
        osz[i] = x->sizes[i] * (i == d ? r : 1);
    }
    ct_tensor *e = ct_expand(ct_unsqueeze(x, d + 1), nd + 1, esz);
    return ct_reshape(ct_contiguous(e), nd, osz);
}
CT_API ct_tensor *ct_repeat_interleave_int(const ct_tensor *x, int64_t repeats, int dim) {
    CT_CHECK_ARG("repeat_interleave", x);
    COMPOSE(rep_int_impl(x, repeats, dim));
}

static ct_tensor *rep_tensor_impl(const ct_tensor *x, const ct_tensor *rep, int dim) {
    if (rep->dtype != CT_INT64 && rep->dtype != CT_INT32)
        return ct__err(CT_ERR_DTYPE, "repeat_interleave: repeats has to be Long or Int tensor");
    if (rep->ndim > 1) return ct__err(CT_ERR_SHAPE, "repeat_interleave: repeats must be 0-dim or 1-dim tensor");
    if (rep->numel == 1) return rep_int_impl(x, (int64_t)ct_item(rep), dim);
    if (dim == CT_ALL_DIMS) { x = ct_reshape(x, 1, (int64_t[]){x->numel}); dim = 0; if (!x) return NULL; }
    int d = ct__wrap_dim("repeat_interleave", dim, x->ndim);
    if (d < 0) return NULL;
    if (x->ndim == 0) x = ct_reshape(x, 1, (int64_t[]){1});
    if (!x) return NULL;
    int64_t n = x->sizes[d];
    if (rep->numel != n)
        return ct__err(CT_ERR_SHAPE, "repeat_interleave: repeats must have the same size as input along dim, but got "
                                     "repeats.size(0) = %lld and input.size(%d) = %lld", (long long)rep->numel, d,
                       (long long)n);
    int64_t *rv = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    const ct_tensor **parts = malloc(sizeof(*parts) * (size_t)(n ? n : 1));
    if (!rv || !parts) { free(rv); free(parts); return ct__err(CT_ERR_OOM, "repeat_interleave: out of memory"); }
    ct_tensor *res = NULL;
    if (ct_copy_to_buffer(rep, rv, sizeof(int64_t) * (size_t)n, CT_INT64)) goto done;
    int np = 0;
    for (int64_t i = 0; i < n; i++)
        if (rv[i] < 0) { ct__err(CT_ERR_ARG, "repeat_interleave: repeats can not be negative"); goto done; }
    for (int64_t i = 0; i < n; i++) {
        if (!rv[i]) continue;
        int64_t esz[CT_MAX_DIMS];
        memcpy(esz, x->sizes, sizeof(int64_t) * (size_t)x->ndim);
        esz[d] = rv[i];
        if (!(parts[np++] = ct_expand(ct_narrow(x, d, i, 1), x->ndim, esz))) goto done;
    }
    if (np == 0) res = ct_clone(ct_narrow(x, d, 0, 0));
    else res = ct_cat(np, parts, d);
done:
    free(rv);
    free(parts);
    return res;
}
CT_API ct_tensor *ct_repeat_interleave(const ct_tensor *x, const ct_tensor *repeats, int dim) {
    CT_CHECK_ARG("repeat_interleave", x);
    CT_CHECK_ARG("repeat_interleave", repeats);
    COMPOSE(rep_tensor_impl(x, repeats, dim));
}

/* ============================ tril / triu ============================ */
static ct_tensor *tri_impl(const char *op, const ct_tensor *x, int64_t k, bool upper);
static int tri_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    gi[0] = n->i[1] ? ct_triu(go[0], n->i[0]) : ct_tril(go[0], n->i[0]);
    return gi[0] ? 0 : ct_last_status();
}
static ct_tensor *tri_impl(const char *op, const ct_tensor *x, int64_t k, bool upper) {
    CT_CHECK_ARG(op, x);
    if (x->ndim < 2) return ct__err(CT_ERR_SHAPE, "%s: input tensor must have at least 2 dimensions", op);
    ct_tensor *out = ct__empty_raw(x->ndim, x->sizes, x->dtype);
    if (!out) return NULL;
    ct_kernel_args a = {.op = CT_OP_TRIL, .n_out = 1, .n_in = 1, .out = {out}, .in = {x}, .i = {k, upper}};
    if (ct__dispatch(&a)) { ct_release(out); return NULL; }
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new(upper ? "TriuBackward0" : "TrilBackward0", tri_backward, 1);
        if (!n || ct__node_set_next(n, 0, x)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        n->i[0] = k;
        n->i[1] = upper;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}
CT_API ct_tensor *ct_tril(const ct_tensor *x, int64_t diagonal) { return tri_impl("tril", x, diagonal, false); }
CT_API ct_tensor *ct_triu(const ct_tensor *x, int64_t diagonal) { return tri_impl("triu", x, diagonal, true); }

static int tri_inplace(const char *op, ct_tensor *self, int64_t k, bool upper) {
    int rc = ct__check_inplace(op, self);
    if (rc) return rc;
    if (ct_scope_begin()) return ct_last_status();
    rc = ct__commit_inplace(op, self, tri_impl(op, self, k, upper));
    ct_scope_end();
    return rc;
}
CT_API int ct_tril_(ct_tensor *self, int64_t diagonal) { return tri_inplace("tril_", self, diagonal, false); }
CT_API int ct_triu_(ct_tensor *self, int64_t diagonal) { return tri_inplace("triu_", self, diagonal, true); }

/* ================================ pad ================================ */
/* Constant padding of non-negative amounts: ivec = [lo_0, hi_0, lo_1, hi_1, ...] per dim. */
static int cpad_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *g = go[0];
    for (int d = 0; d < g->ndim && g; d++) {
        int64_t lo = n->ivec[2 * d], hi = n->ivec[2 * d + 1];
        if (lo || hi) g = ct_narrow(g, d, lo, g->sizes[d] - lo - hi);
    }
    gi[0] = g == go[0] ? ct__pass(g) : g;
    return gi[0] ? 0 : ct_last_status();
}

static ct_tensor *constant_pad(const ct_tensor *x, const int64_t *lohi, double value) {
    int nd = x->ndim;
    int64_t osz[CT_MAX_DIMS];
    int64_t off = 0;
    ct_tensor *out;
    for (int d = 0; d < nd; d++) osz[d] = x->sizes[d] + lohi[2 * d] + lohi[2 * d + 1];
    out = ct__empty_raw(nd, osz, x->dtype);
    if (!out) return NULL;
    if (ct__fill_raw(out, value)) { ct_release(out); return NULL; }
    for (int d = 0; d < nd; d++) off += lohi[2 * d] * out->strides[d];
    if (x->numel) {
        ct_tensor *v = ct__alias(out, nd, x->sizes, out->strides, out->offset + off);
        int rc = v ? ct__copy_raw(v, x) : -1;
        ct_release(v);
        if (rc) { ct_release(out); return NULL; }
    }
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new("ConstantPadNdBackward0", cpad_backward, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_set_ivec(n, 2 * nd, lohi)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

static ct_tensor *pad_impl(const ct_tensor *x, int npad, const int64_t *pad, const char *mode, double value) {
    if (npad % 2) return ct__err(CT_ERR_ARG, "pad: Padding length must be divisible by 2");
    if (npad / 2 > x->ndim)
        return ct__err(CT_ERR_ARG, "pad: Padding length should be less than or equal to two times the input dimension "
                                   "but got padding length %d and input of dimension %d", npad, x->ndim);
    int nd = x->ndim, np = npad / 2;
    int64_t lohi[2 * CT_MAX_DIMS] = {0};
    for (int i = 0; i < np; i++) {
        int d = nd - 1 - i;
        lohi[2 * d] = pad[2 * i];
        lohi[2 * d + 1] = pad[2 * i + 1];
    }
    if (!mode) mode = "constant";
    bool constant = strcmp(mode, "constant") == 0, reflect = strcmp(mode, "reflect") == 0,
         replicate = strcmp(mode, "replicate") == 0, circular = strcmp(mode, "circular") == 0;
    if (!constant && !reflect && !replicate && !circular)
        return ct__err(CT_ERR_ARG, "pad: Unrecognised padding mode %s", mode);
    if (!constant) {
        /* PyTorch's F.pad: non-constant modes pad the last 1, 2 or 3 dims of a (batched) input */
        if (!((np == 1 && (nd == 2 || nd == 3)) || (np == 2 && (nd == 3 || nd == 4)) || (np == 3 && (nd == 4 || nd == 5))))
            return ct__err(CT_ERR_ARG, "pad: Only 2D, 3D, 4D, 5D padding with non-constant padding are supported for "
                                       "now (got padding length %d for input of dimension %d)", npad, nd);
    }
    for (int d = 0; d < nd; d++) {
        int64_t s = x->sizes[d] + lohi[2 * d] + lohi[2 * d + 1];
        if (s < 0)
            return ct__err(CT_ERR_SHAPE, "pad: The input size %lld, plus negative padding %lld and %lld resulted in a "
                                         "negative output size, which is invalid. Check dimension %d of your input.",
                           (long long)x->sizes[d], (long long)lohi[2 * d], (long long)lohi[2 * d + 1], d);
    }
    /* crop negative amounts first (views) */
    const ct_tensor *t = x;
    for (int d = 0; d < nd; d++) {
        int64_t lo = lohi[2 * d], hi = lohi[2 * d + 1];
        if (lo < 0 || hi < 0) {
            int64_t a = lo < 0 ? -lo : 0, b = hi < 0 ? -hi : 0;
            t = ct_narrow(t, d, a, t->sizes[d] - a - b);
            if (!t) return NULL;
            if (lo < 0) lohi[2 * d] = 0;
            if (hi < 0) lohi[2 * d + 1] = 0;
        }
    }
    if (constant) return constant_pad(t, lohi, value);
    for (int d = 0; d < nd; d++) {
        int64_t lo = lohi[2 * d], hi = lohi[2 * d + 1], n = t->sizes[d];
        if (!lo && !hi) continue;
        if (reflect && (lo >= n || hi >= n))
            return ct__err(CT_ERR_ARG, "pad: Argument #4: Padding size should be less than the corresponding input "
                                       "dimension, but got: padding (%lld, %lld) at dimension %d of input %s",
                           (long long)lo, (long long)hi, d, CT_SHAPESTR(x));
        if (circular && (lo > n || hi > n))
            return ct__err(CT_ERR_ARG, "pad: Padding value causes wrapping around more than once.");
        if (n == 0)
            return ct__err(CT_ERR_SHAPE, "pad: input tensor must have a non-empty dimension %d to pad in %s mode "
                                         "(got %s)", d, mode, CT_SHAPESTR(x));
        const ct_tensor *parts[3];
        int k = 0;
        int64_t esz[CT_MAX_DIMS];
        memcpy(esz, t->sizes, sizeof(int64_t) * (size_t)nd);
        if (lo) {
            if (reflect) parts[k] = ct_flip(ct_narrow(t, d, 1, lo), 1, (int64_t[]){d});
            else if (replicate) { esz[d] = lo; parts[k] = ct_expand(ct_narrow(t, d, 0, 1), nd, esz); }
            else parts[k] = ct_narrow(t, d, n - lo, lo);
            if (!parts[k++]) return NULL;
        }
        parts[k++] = t;
        if (hi) {
            if (reflect) parts[k] = ct_flip(ct_narrow(t, d, n - 1 - hi, hi), 1, (int64_t[]){d});
            else if (replicate) { esz[d] = hi; parts[k] = ct_expand(ct_narrow(t, d, n - 1, 1), nd, esz); }
            else parts[k] = ct_narrow(t, d, 0, hi);
            if (!parts[k++]) return NULL;
        }
        t = ct_cat(k, parts, d);
        if (!t) return NULL;
    }
    return t == x ? ct_clone(x) : (ct_tensor *)t;
}
CT_API ct_tensor *ct_pad(const ct_tensor *x, int npad, const int64_t *pad, const char *mode, double value) {
    CT_CHECK_ARG("pad", x);
    if (npad < 0 || (npad && !pad)) return ct__err(CT_ERR_ARG, "pad: invalid padding");
    COMPOSE(pad_impl(x, npad, pad, mode, value));
}

/* ============================== one_hot ============================== */
CT_API ct_tensor *ct_one_hot(const ct_tensor *x, int64_t num_classes) {
    CT_CHECK_ARG("one_hot", x);
    if (x->dtype != CT_INT64)
        return ct__err(CT_ERR_DTYPE, "one_hot is only applicable to index tensor of type LongTensor.");
    if (num_classes < -1) return ct__err(CT_ERR_ARG, "one_hot: num_classes should be -1 or non-negative, got %lld",
                                         (long long)num_classes);
    int64_t n = x->numel;
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!v) return ct__err(CT_ERR_OOM, "one_hot: out of memory");
    if (ct_copy_to_buffer(x, v, sizeof(int64_t) * (size_t)n, CT_INT64)) { free(v); return NULL; }
    int64_t mx = -1, mn = 0;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] > mx) mx = v[i];
        if (v[i] < mn) mn = v[i];
    }
    if (num_classes == -1) {
        if (n == 0) { free(v); return ct__err(CT_ERR_ARG, "one_hot: Can not infer total number of classes from empty tensor."); }
        num_classes = mx + 1;
    }
    if (n && mn < 0) { free(v); return ct__err(CT_ERR_ARG, "one_hot: Class values must be non-negative."); }
    if (n && mx >= num_classes) { free(v); return ct__err(CT_ERR_ARG, "one_hot: Class values must be smaller than num_classes."); }
    if (x->ndim + 1 > CT_MAX_DIMS) { free(v); return ct__err(CT_ERR_ARG, "one_hot: too many dimensions"); }
    int64_t osz[CT_MAX_DIMS];
    memcpy(osz, x->sizes, sizeof(int64_t) * (size_t)x->ndim);
    osz[x->ndim] = num_classes;
    ct_tensor *out = ct__empty_raw(x->ndim + 1, osz, CT_INT64);
    if (!out) { free(v); return NULL; }
    int64_t *po = ct__data(out);
    memset(po, 0, sizeof(int64_t) * (size_t)out->numel);
    CT_PARALLEL_FOR_IF(n > CT_GRAIN, for (int64_t i = 0; i < n; i++), po[i * num_classes + v[i]] = 1;);
    free(v);
    return ct__ret(out);
}

/* ============================== meshgrid ============================== */
CT_API int ct_meshgrid(int n, const ct_tensor *const *ts, const char *indexing, ct_tensor **out) {
    if (n <= 0 || !ts || !out) return ct__errs(CT_ERR_ARG, "torch.meshgrid: expects a non-empty TensorList");
    for (int k = 0; k < n; k++) CT_CHECK_ARG_S("meshgrid", ts[k]);
    if (n > CT_MAX_DIMS) return ct__errs(CT_ERR_ARG, "torch.meshgrid: too many tensors");
    bool xy;
    if (!indexing || strcmp(indexing, "ij") == 0) xy = false;
    else if (strcmp(indexing, "xy") == 0) xy = true;
    else return ct__errs(CT_ERR_ARG, "torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: %s", indexing);
    for (int k = 0; k < n; k++) {
        if (ts[k]->ndim > 1)
            return ct__errs(CT_ERR_SHAPE, "torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: %s",
                            CT_SHAPESTR(ts[k]));
        if (ts[k]->dtype != ts[0]->dtype)
            return ct__errs(CT_ERR_DTYPE, "torch.meshgrid: expects all tensors to have the same dtype");
    }
    int64_t shape[CT_MAX_DIMS];
    int posn[CT_MAX_DIMS];
    for (int k = 0; k < n; k++) posn[k] = k;
    if (xy && n >= 2) { posn[0] = 1; posn[1] = 0; }
    for (int k = 0; k < n; k++) shape[posn[k]] = ts[k]->numel;
    for (int k = 0; k < n; k++) out[k] = NULL;
    if (ct_scope_begin()) return ct_last_status();
    int rc = 0;
    for (int k = 0; k < n && !rc; k++) {
        int64_t vs[CT_MAX_DIMS];
        for (int i = 0; i < n; i++) vs[i] = 1;
        vs[posn[k]] = ts[k]->numel;
        out[k] = ct_expand(ct_reshape(ts[k], n, vs), n, shape);
        if (!out[k]) rc = ct_last_status();
    }
    if (!rc)
        for (int k = 0; k < n; k++) out[k] = ct_keep(out[k]);
    else
        for (int k = 0; k < n; k++) out[k] = NULL;
    ct_scope_end();
    return rc;
}

/* ====================== diag / diag_embed / trace ====================== */
static int diag_embed_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    gi[0] = ct_diagonal(go[0], n->i[0], (int)n->i[1], (int)n->i[2]);
    return gi[0] ? 0 : ct_last_status();
}

CT_API ct_tensor *ct_diag_embed(const ct_tensor *x, int64_t offset, int dim1, int dim2) {
    CT_CHECK_ARG("diag_embed", x);
    if (x->ndim == 0) return ct__err(CT_ERR_SHAPE, "diag_embed: input must be at least 1-dimensional");
    int ond = x->ndim + 1;
    if (ond > CT_MAX_DIMS) return ct__err(CT_ERR_ARG, "diag_embed: too many dimensions");
    int a = ct__wrap_dim("diag_embed", dim1, ond), b = a < 0 ? -1 : ct__wrap_dim("diag_embed", dim2, ond);
    if (a < 0 || b < 0) return NULL;
    if (a == b) return ct__err(CT_ERR_ARG, "diag_embed: diagonal dimensions cannot be identical %d, %d", dim1, dim2);
    int64_t n = x->sizes[x->ndim - 1], m = n + (offset < 0 ? -offset : offset);
    int64_t osz[CT_MAX_DIMS];
    for (int i = 0, j = 0; i < ond; i++) osz[i] = (i == a || i == b) ? m : x->sizes[j++];
    ct_tensor *out = ct__empty_raw(ond, osz, x->dtype);
    if (!out || ct__fill_raw(out, 0)) { ct_release(out); return NULL; }
    /* the diagonal of out as a raw view: other dims in order, then the diagonal */
    int64_t vs[CT_MAX_DIMS], vst[CT_MAX_DIMS], voff = out->offset;
    int k = 0;
    for (int i = 0; i < ond; i++)
        if (i != a && i != b) { vs[k] = osz[i]; vst[k++] = out->strides[i]; }
    vs[k] = n;
    vst[k++] = out->strides[a] + out->strides[b];
    if (offset >= 0) voff += offset * out->strides[b];
    else voff -= offset * out->strides[a];
    if (x->numel) {
        ct_tensor *v = ct__alias(out, k, vs, vst, voff);
        int rc = v ? ct__copy_raw(v, x) : -1;
        ct_release(v);
        if (rc) { ct_release(out); return NULL; }
    }
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *nd = ct__node_new("DiagEmbedBackward0", diag_embed_backward, 1);
        if (!nd || ct__node_set_next(nd, 0, x)) {
            if (nd) ct__node_release(nd);
            ct_release(out);
            return NULL;
        }
        nd->i[0] = offset;
        nd->i[1] = a;
        nd->i[2] = b;
        ct__set_history(out, nd, 0);
    }
    return ct__ret(out);
}

CT_API ct_tensor *ct_diag(const ct_tensor *x, int64_t diagonal) {
    CT_CHECK_ARG("diag", x);
    if (x->ndim == 1) return ct_diag_embed(x, diagonal, 0, 1);
    if (x->ndim != 2) return ct__err(CT_ERR_SHAPE, "diag(): Supports 1D or 2D tensors. Got %dD", x->ndim);
    COMPOSE(ct_clone(ct_diagonal(x, diagonal, 0, 1)));
}

CT_API ct_tensor *ct_trace(const ct_tensor *x) {
    CT_CHECK_ARG("trace", x);
    if (x->ndim != 2) return ct__err(CT_ERR_SHAPE, "trace: expected a matrix, but got tensor with dim %d", x->ndim);
    COMPOSE(ct_sum(ct_diagonal(x, 0, 0, 1)));
}
