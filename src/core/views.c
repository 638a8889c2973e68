/* Views: new geometry over the same storage, with autograd.
 *
 * Backward of a view:
 *   reshape-like (view, reshape, squeeze, unsqueeze, flatten, unflatten): reshape back;
 *   permute-like (permute, transpose, t, movedim): the inverse permutation;
 *   expand: sum to the input's shape;
 *   strided sub-views (narrow, select, slice, diagonal, as_strided, unbind, split):
 *     the geometry is recorded relative to a contiguous tensor of the input's shape,
 *     and the gradient is embedded into zeros of that shape (ct__embed), whose own
 *     backward takes the same strided view again, so double backward works. */
#include "core/autograd_internal.h"
#include "core/dispatch.h"

/* ---- autograd plumbing shared by all views ---- */
static int reshape_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    gi[0] = ct_reshape(go[0], n->in_meta[0].ndim, n->in_meta[0].sizes);
    return gi[0] ? 0 : ct_last_status();
}

static int permute_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int nd = n->n_ivec, inv[CT_MAX_DIMS];
    for (int i = 0; i < nd; i++) inv[n->ivec[i]] = i;
    gi[0] = ct_permute(go[0], nd, inv);
    return gi[0] ? 0 : ct_last_status();
}

static int expand_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *r = ct__sum_to_size(go[0], n->in_meta[0].ndim, n->in_meta[0].sizes);
    gi[0] = r == go[0] ? ct__pass(r) : r;
    return gi[0] ? 0 : ct_last_status();
}

ct_tensor *ct__embed(const ct_tensor *g, int in_nd, const int64_t *in_sizes, int v_nd, const int64_t *v_sizes,
                     const int64_t *v_strides, int64_t v_off);

/* ivec layout for strided views: [v_nd, v_sizes..., v_strides..., v_off] */
static int strided_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int vnd = (int)n->ivec[0];
    gi[0] = ct__embed(go[0], n->in_meta[0].ndim, n->in_meta[0].sizes, vnd, n->ivec + 1, n->ivec + 1 + vnd,
                      n->ivec[1 + 2 * vnd]);
    return gi[0] ? 0 : ct_last_status();
}

typedef enum { V_RESHAPE, V_PERMUTE, V_EXPAND, V_STRIDED } view_kind;

/* Finishes a view: records autograd and registers the result. For V_STRIDED the
 * geometry is given relative to the input's own storage; it is rebased onto a
 * contiguous tensor of the input's shape when the input is contiguous, and otherwise
 * recorded through a contiguous-geometry trick: we compute it by applying the same
 * (sizes, strides-in-input-index-space) mapping. */
static ct_tensor *finish_view(const char *node_name, view_kind kind, const ct_tensor *x, ct_tensor *v,
                              const int *perm, int nperm, const int64_t *geom_sizes, const int64_t *geom_strides,
                              int64_t geom_off) {
    if (!v) return NULL;
    v->hist_version = x->hist_version; /* a view is as current as its source */
    v->view_base = ct_retain(x->view_base ? x->view_base : (ct_tensor *)x);
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_backward_fn fn = kind == V_RESHAPE ? reshape_backward
                            : kind == V_PERMUTE ? permute_backward
                            : kind == V_EXPAND  ? expand_backward
                                                : strided_backward;
        ct_node *n = ct__node_new(node_name, fn, 1);
        int rc = n ? ct__node_set_next(n, 0, x) : -1;
        if (!rc) rc = ct__node_save_meta(n, 0, x);
        if (!rc && kind == V_PERMUTE) {
            int64_t p[CT_MAX_DIMS];
            for (int i = 0; i < nperm; i++) p[i] = perm[i];
            rc = ct__node_set_ivec(n, nperm, p);
        }
        if (!rc && kind == V_STRIDED) {
            int vnd = v->ndim;
            int64_t *iv = malloc(sizeof(int64_t) * (size_t)(2 + 2 * vnd));
            if (!iv) rc = ct__errs(CT_ERR_OOM, "out of memory recording a view");
            else {
                iv[0] = vnd;
                for (int i = 0; i < vnd; i++) { iv[1 + i] = geom_sizes[i]; iv[1 + vnd + i] = geom_strides[i]; }
                iv[1 + 2 * vnd] = geom_off;
                rc = ct__node_set_ivec(n, 2 + 2 * vnd, iv);
                free(iv);
            }
        }
        if (rc) {
            if (n) ct__node_release(n);
            ct_release(v);
            return NULL;
        }
        ct__set_history(v, n, 0);
    }
    return ct__ret(v);
}

/* Maps a strided view of x (sizes/strides/offset in x's storage) into the index space
 * of a contiguous tensor with x's shape. Views built from x's own dims (narrow,
 * select, slice, diagonal) have strides that are integer combinations of x's strides:
 * we build the geometry directly from the dim-level description instead. */

/* ---- reshape family ---- */
static int infer_size(const char *op, int ndim, const int64_t *in, int64_t numel, int64_t *out) {
    int neg = -1;
    int64_t prod = 1;
    for (int i = 0; i < ndim; i++) {
        if (in[i] == -1) {
            if (neg >= 0) return ct__errs(CT_ERR_ARG, "%s: only one dimension can be inferred", op);
            neg = i;
        } else if (in[i] < 0) return ct__errs(CT_ERR_ARG, "%s: invalid shape dimension %lld", op, (long long)in[i]);
        else prod *= in[i];
        out[i] = in[i];
    }
    if (neg >= 0) {
        if (prod == 0 || numel % prod)
            return ct__errs(CT_ERR_SHAPE, "%s: shape '%s' is invalid for input of size %lld", op, CT_SIZESSTR(ndim, in),
                            (long long)numel);
        out[neg] = numel / prod;
    } else if (prod != numel)
        return ct__errs(CT_ERR_SHAPE, "%s: shape '%s' is invalid for input of size %lld", op, CT_SIZESSTR(ndim, in),
                        (long long)numel);
    return 0;
}

/* PyTorch's computeStride: strides for viewing x as sizes without copying, or false. */
static bool compute_view_strides(const ct_tensor *x, int nd, const int64_t *sizes, int64_t *strides) {
    if (x->numel == 0 || x->ndim == 0) { /* empty or 0-dim: any shape of the same numel is a view */
        ct__contiguous_strides(nd, sizes, strides);
        return true;
    }
    int view_d = nd - 1;
    int64_t chunk_base_stride = x->ndim ? x->strides[x->ndim - 1] : 1;
    int64_t tensor_numel = 1, view_numel = 1;
    for (int tensor_d = x->ndim - 1; tensor_d >= 0; tensor_d--) {
        tensor_numel *= x->sizes[tensor_d];
        if (tensor_d == 0 || (x->sizes[tensor_d - 1] != 1 && x->strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || sizes[view_d] == 1)) {
                strides[view_d] = view_numel * chunk_base_stride;
                view_numel *= sizes[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (tensor_d > 0) {
                chunk_base_stride = x->strides[tensor_d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    if (view_d != -1) return false;
    return true;
}

static ct_tensor *view_impl(const char *op, const char *node, const ct_tensor *x, int ndim, const int64_t *sizes,
                            bool allow_copy) {
    CT_CHECK_ARG(op, x);
    if (ndim < 0 || ndim > CT_MAX_DIMS || (ndim && !sizes)) return ct__err(CT_ERR_ARG, "%s: invalid rank %d", op, ndim);
    int64_t shape[CT_MAX_DIMS], strides[CT_MAX_DIMS];
    if (infer_size(op, ndim, sizes, x->numel, shape)) return NULL;
    if (!compute_view_strides(x, ndim, shape, strides)) {
        if (!allow_copy)
            return ct__err(CT_ERR_SHAPE, "%s: view size is not compatible with input tensor's size and stride (at least "
                                         "one dimension spans across two contiguous subspaces). Use .reshape(...) "
                                         "instead.", op);
        ct_tensor *c = ct_contiguous(x);
        if (!c) return NULL;
        c = ct__scope_take(c);
        ct__contiguous_strides(ndim, shape, strides);
        ct_tensor *v = ct__alias(c, ndim, shape, strides, c->offset);
        ct_tensor *r = finish_view(node, V_RESHAPE, c, v, NULL, 0, NULL, NULL, 0);
        ct_release(c);
        return r;
    }
    return finish_view(node, V_RESHAPE, x, ct__alias(x, ndim, shape, strides, x->offset), NULL, 0, NULL, NULL, 0);
}

CT_API ct_tensor *ct_view(const ct_tensor *x, int ndim, const int64_t *sizes) {
    return view_impl("view", "ViewBackward0", x, ndim, sizes, false);
}
CT_API ct_tensor *ct_reshape(const ct_tensor *x, int ndim, const int64_t *sizes) {
    return view_impl("reshape", "ViewBackward0", x, ndim, sizes, true);
}

CT_API ct_tensor *ct_flatten(const ct_tensor *x, int start, int end) {
    CT_CHECK_ARG("flatten", x);
    if (x->ndim == 0) return ct_reshape(x, 1, (int64_t[]){1});
    int s = ct__wrap_dim("flatten", start, x->ndim), e = s < 0 ? -1 : ct__wrap_dim("flatten", end, x->ndim);
    if (s < 0 || e < 0) return NULL;
    if (s > e) return ct__err(CT_ERR_ARG, "flatten() has invalid args: start_dim cannot come after end_dim");
    int64_t sh[CT_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < s; i++) sh[nd++] = x->sizes[i];
    int64_t p = 1;
    for (int i = s; i <= e; i++) p *= x->sizes[i];
    sh[nd++] = p;
    for (int i = e + 1; i < x->ndim; i++) sh[nd++] = x->sizes[i];
    return ct_reshape(x, nd, sh);
}

CT_API ct_tensor *ct_unflatten(const ct_tensor *x, int dim, int ndim, const int64_t *sizes) {
    CT_CHECK_ARG("unflatten", x);
    int d = ct__wrap_dim("unflatten", dim, x->ndim);
    if (d < 0) return NULL;
    if (ndim < 1) return ct__err(CT_ERR_ARG, "unflatten: sizes must be non-empty");
    int64_t inner[CT_MAX_DIMS];
    if (infer_size("unflatten", ndim, sizes, x->ndim ? x->sizes[d] : 1, inner)) return NULL;
    int64_t sh[CT_MAX_DIMS];
    int nd = 0;
    if (x->ndim + ndim - 1 > CT_MAX_DIMS) return ct__err(CT_ERR_ARG, "unflatten: too many dimensions");
    for (int i = 0; i < d; i++) sh[nd++] = x->sizes[i];
    for (int i = 0; i < ndim; i++) sh[nd++] = inner[i];
    for (int i = d + 1; i < x->ndim; i++) sh[nd++] = x->sizes[i];
    return ct_view(x, nd, sh);
}

CT_API ct_tensor *ct_squeeze(const ct_tensor *x) {
    CT_CHECK_ARG("squeeze", x);
    int64_t sh[CT_MAX_DIMS], st[CT_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (x->sizes[i] != 1) { sh[nd] = x->sizes[i]; st[nd++] = x->strides[i]; }
    return finish_view("SqueezeBackward0", V_RESHAPE, x, ct__alias(x, nd, sh, st, x->offset), NULL, 0, NULL, NULL, 0);
}

CT_API ct_tensor *ct_squeeze_dim(const ct_tensor *x, int dim) {
    CT_CHECK_ARG("squeeze", x);
    int d = ct__wrap_dim("squeeze", dim, x->ndim);
    if (d < 0) return NULL;
    if (x->ndim == 0 || x->sizes[d] != 1)
        return finish_view("SqueezeBackward1", V_RESHAPE, x, ct__alias(x, x->ndim, x->sizes, x->strides, x->offset), NULL,
                           0, NULL, NULL, 0);
    int64_t sh[CT_MAX_DIMS], st[CT_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != d) { sh[nd] = x->sizes[i]; st[nd++] = x->strides[i]; }
    return finish_view("SqueezeBackward1", V_RESHAPE, x, ct__alias(x, nd, sh, st, x->offset), NULL, 0, NULL, NULL, 0);
}

CT_API ct_tensor *ct_unsqueeze(const ct_tensor *x, int dim) {
    CT_CHECK_ARG("unsqueeze", x);
    int d = ct__wrap_dim("unsqueeze", dim, x->ndim + 1);
    if (d < 0) return NULL;
    if (x->ndim + 1 > CT_MAX_DIMS) return ct__err(CT_ERR_ARG, "unsqueeze: too many dimensions");
    int64_t sh[CT_MAX_DIMS], st[CT_MAX_DIMS];
    for (int i = 0, j = 0; i <= x->ndim; i++) {
        if (i == d) {
            sh[i] = 1;
            st[i] = d < x->ndim ? x->sizes[d] * x->strides[d] : 1;
        } else { sh[i] = x->sizes[j]; st[i] = x->strides[j]; j++; }
    }
    return finish_view("UnsqueezeBackward0", V_RESHAPE, x, ct__alias(x, x->ndim + 1, sh, st, x->offset), NULL, 0, NULL,
                       NULL, 0);
}

/* ---- permutations ---- */
CT_API ct_tensor *ct_permute(const ct_tensor *x, int ndim, const int *dims) {
    CT_CHECK_ARG("permute", x);
    if (ndim != x->ndim)
        return ct__err(CT_ERR_ARG, "permute(sparse_coo): number of dimensions in the tensor input does not match the "
                                   "length of the desired ordering of dimensions i.e. input.dim() = %d is not equal to "
                                   "len(dims) = %d", x->ndim, ndim);
    int p[CT_MAX_DIMS];
    bool seen[CT_MAX_DIMS] = {0};
    int64_t sh[CT_MAX_DIMS], st[CT_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        int d = ct__wrap_dim("permute", dims[i], ndim);
        if (d < 0) return NULL;
        if (seen[d]) return ct__err(CT_ERR_ARG, "permute(): duplicate dims are not allowed.");
        seen[d] = true;
        p[i] = d;
        sh[i] = x->sizes[d];
        st[i] = x->strides[d];
    }
    return finish_view("PermuteBackward0", V_PERMUTE, x, ct__alias(x, ndim, sh, st, x->offset), p, ndim, NULL, NULL, 0);
}

CT_API ct_tensor *ct_transpose(const ct_tensor *x, int d0, int d1) {
    CT_CHECK_ARG("transpose", x);
    int a = ct__wrap_dim("transpose", d0, x->ndim), b = a < 0 ? -1 : ct__wrap_dim("transpose", d1, x->ndim);
    if (a < 0 || b < 0) return NULL;
    if (x->ndim == 0) return finish_view("TransposeBackward0", V_RESHAPE, x, ct__alias(x, 0, NULL, NULL, x->offset), NULL, 0, NULL, NULL, 0);
    int p[CT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) p[i] = i;
    p[a] = b;
    p[b] = a;
    int64_t sh[CT_MAX_DIMS], st[CT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) { sh[i] = x->sizes[p[i]]; st[i] = x->strides[p[i]]; }
    return finish_view("TransposeBackward0", V_PERMUTE, x, ct__alias(x, x->ndim, sh, st, x->offset), p, x->ndim, NULL,
                       NULL, 0);
}

CT_API ct_tensor *ct_t(const ct_tensor *x) {
    CT_CHECK_ARG("t", x);
    if (x->ndim > 2) return ct__err(CT_ERR_ARG, "t() expects a tensor with <= 2 dimensions, but self is %dD", x->ndim);
    if (x->ndim < 2) return ct_transpose(x, 0, 0);
    return ct_transpose(x, 0, 1);
}

CT_API ct_tensor *ct_movedim(const ct_tensor *x, int src, int dst) {
    CT_CHECK_ARG("movedim", x);
    int s = ct__wrap_dim("movedim", src, x->ndim), d = s < 0 ? -1 : ct__wrap_dim("movedim", dst, x->ndim);
    if (s < 0 || d < 0) return NULL;
    int p[CT_MAX_DIMS], k = 0;
    int n = x->ndim ? x->ndim : 0;
    for (int i = 0; i < n; i++)
        if (i != s) p[k++] = i;
    for (int i = n - 1; i > d; i--) p[i] = p[i - 1];
    if (n) p[d] = s;
    return ct_permute(x, n, p);
}

/* ---- expand ---- */
CT_API ct_tensor *ct_expand(const ct_tensor *x, int ndim, const int64_t *sizes) {
    CT_CHECK_ARG("expand", x);
    if (ndim < x->ndim)
        return ct__err(CT_ERR_SHAPE, "expand: the number of sizes provided (%d) must be greater or equal to the number "
                                     "of dimensions in the tensor (%d)", ndim, x->ndim);
    if (ndim > CT_MAX_DIMS) return ct__err(CT_ERR_ARG, "expand: too many dimensions");
    int64_t sh[CT_MAX_DIMS], st[CT_MAX_DIMS];
    for (int i = ndim - 1; i >= 0; i--) {
        int off = ndim - x->ndim, xd = i - off;
        int64_t want = sizes[i];
        if (xd < 0) {
            if (want < 0) return ct__err(CT_ERR_ARG, "expand: The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension %d", i);
            sh[i] = want;
            st[i] = 0;
        } else {
            int64_t have = x->sizes[xd];
            if (want == -1) want = have;
            if (have == want) { sh[i] = have; st[i] = x->strides[xd]; }
            else if (have == 1) { sh[i] = want; st[i] = 0; }
            else
                return ct__err(CT_ERR_SHAPE, "expand: The expanded size of the tensor (%lld) must match the existing "
                                             "size (%lld) at non-singleton dimension %d.  Target sizes: %s.  Tensor "
                                             "sizes: %s", (long long)want, (long long)have, i, CT_SIZESSTR(ndim, sizes),
                               CT_SHAPESTR(x));
        }
    }
    return finish_view("ExpandBackward0", V_EXPAND, x, ct__alias(x, ndim, sh, st, x->offset), NULL, 0, NULL, NULL, 0);
}

CT_API ct_tensor *ct_expand_as(const ct_tensor *x, const ct_tensor *other) {
    CT_CHECK_ARG("expand_as", other);
    return ct_expand(x, other->ndim, other->sizes);
}

/* ---- strided sub-views ----
 * A sub-view takes, per output dim, (size, a linear combination of input dims with
 * integer coefficients) and an offset that is a combination of input strides. We
 * describe it with coefficients over input dims so the same view can be replayed on
 * a contiguous tensor of the input's shape. */
typedef struct {
    int nd;
    int64_t sizes[CT_MAX_DIMS];
    int64_t coef_dim[CT_MAX_DIMS][2]; /* up to two input dims per output dim (diagonal) */
    int64_t coef_mul[CT_MAX_DIMS][2];
    int64_t off_idx[CT_MAX_DIMS];      /* index into each input dim for the offset */
} subview;

static ct_tensor *apply_subview(const char *node, const ct_tensor *x, const subview *sv) {
    int64_t st[CT_MAX_DIMS], gst[CT_MAX_DIMS], cst[CT_MAX_DIMS];
    ct__contiguous_strides(x->ndim, x->sizes, cst);
    /* contiguous strides for geometry must not treat size-1 dims specially */
    int64_t s = 1;
    for (int i = x->ndim - 1; i >= 0; i--) { cst[i] = s; s *= x->sizes[i]; }
    int64_t off = x->offset, goff = 0;
    for (int i = 0; i < x->ndim; i++) { off += sv->off_idx[i] * x->strides[i]; goff += sv->off_idx[i] * cst[i]; }
    for (int i = 0; i < sv->nd; i++) {
        st[i] = 0;
        gst[i] = 0;
        for (int k = 0; k < 2; k++) {
            if (sv->coef_dim[i][k] < 0) continue;
            st[i] += sv->coef_mul[i][k] * x->strides[sv->coef_dim[i][k]];
            gst[i] += sv->coef_mul[i][k] * cst[sv->coef_dim[i][k]];
        }
    }
    ct_tensor *v = ct__alias(x, sv->nd, sv->sizes, st, off);
    return finish_view(node, V_STRIDED, x, v, NULL, 0, sv->sizes, gst, goff);
}

static void subview_identity(const ct_tensor *x, subview *sv) {
    sv->nd = x->ndim;
    for (int i = 0; i < x->ndim; i++) {
        sv->sizes[i] = x->sizes[i];
        sv->coef_dim[i][0] = i; sv->coef_mul[i][0] = 1;
        sv->coef_dim[i][1] = -1; sv->coef_mul[i][1] = 0;
        sv->off_idx[i] = 0;
    }
}

CT_API ct_tensor *ct_slice(const ct_tensor *x, int dim, int64_t start, int64_t end, int64_t step) {
    CT_CHECK_ARG("slice", x);
    if (x->ndim == 0) return ct__err(CT_ERR_INDEX, "slice() cannot be applied to a 0-dim tensor.");
    int d = ct__wrap_dim("slice", dim, x->ndim);
    if (d < 0) return NULL;
    if (step <= 0) return ct__err(CT_ERR_ARG, "slice: slice step must be positive");
    int64_t n = x->sizes[d];
    if (start < 0) start += n;
    if (end < 0) end += n;
    if (start < 0) start = 0;
    if (start > n) start = n;
    if (end < start) end = start;
    if (end > n) end = n;
    subview sv;
    subview_identity(x, &sv);
    sv.sizes[d] = (end - start + step - 1) / step;
    sv.coef_mul[d][0] = step;
    sv.off_idx[d] = start;
    return apply_subview("SliceBackward0", x, &sv);
}

CT_API ct_tensor *ct_narrow(const ct_tensor *x, int dim, int64_t start, int64_t length) {
    CT_CHECK_ARG("narrow", x);
    if (x->ndim == 0) return ct__err(CT_ERR_INDEX, "narrow() cannot be applied to a 0-dim tensor.");
    int d = ct__wrap_dim("narrow", dim, x->ndim);
    if (d < 0) return NULL;
    int64_t n = x->sizes[d];
    if (start < -n || start > n)
        return ct__err(CT_ERR_INDEX, "narrow(): start (%lld) is out of bounds for dimension %d with size %lld",
                       (long long)start, d, (long long)n);
    if (start < 0) start += n;
    if (length < 0 || start + length > n)
        return ct__err(CT_ERR_INDEX, "narrow(): start (%lld) + length (%lld) exceeds dimension size (%lld).",
                       (long long)start, (long long)length, (long long)n);
    subview sv;
    subview_identity(x, &sv);
    sv.sizes[d] = length;
    sv.off_idx[d] = start;
    return apply_subview("NarrowBackward0", x, &sv);
}

CT_API ct_tensor *ct_select(const ct_tensor *x, int dim, int64_t index) {
    CT_CHECK_ARG("select", x);
    if (x->ndim == 0) return ct__err(CT_ERR_INDEX, "select() cannot be applied to a 0-dim tensor.");
    int d = ct__wrap_dim("select", dim, x->ndim);
    if (d < 0) return NULL;
    int64_t n = x->sizes[d];
    if (index < -n || index >= n)
        return ct__err(CT_ERR_INDEX, "select(): index %lld out of range for tensor of size %s at dimension %d",
                       (long long)index, CT_SHAPESTR(x), d);
    if (index < 0) index += n;
    subview sv, id;
    subview_identity(x, &id);
    sv.nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        sv.off_idx[i] = 0;
        if (i == d) continue;
        sv.sizes[sv.nd] = id.sizes[i];
        sv.coef_dim[sv.nd][0] = i; sv.coef_mul[sv.nd][0] = 1;
        sv.coef_dim[sv.nd][1] = -1; sv.coef_mul[sv.nd][1] = 0;
        sv.nd++;
    }
    sv.off_idx[d] = index;
    return apply_subview("SelectBackward0", x, &sv);
}

CT_API ct_tensor *ct_diagonal(const ct_tensor *x, int64_t offset, int dim1, int dim2) {
    CT_CHECK_ARG("diagonal", x);
    int a = ct__wrap_dim("diagonal", dim1, x->ndim), b = a < 0 ? -1 : ct__wrap_dim("diagonal", dim2, x->ndim);
    if (a < 0 || b < 0) return NULL;
    if (x->ndim < 2) return ct__err(CT_ERR_ARG, "diagonal: input must have at least 2 dimensions, got %d", x->ndim);
    if (a == b) return ct__err(CT_ERR_ARG, "diagonal dimensions cannot be identical %d, %d", dim1, dim2);
    subview sv;
    sv.nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        sv.off_idx[i] = 0;
        if (i == a || i == b) continue;
        sv.sizes[sv.nd] = x->sizes[i];
        sv.coef_dim[sv.nd][0] = i; sv.coef_mul[sv.nd][0] = 1;
        sv.coef_dim[sv.nd][1] = -1; sv.coef_mul[sv.nd][1] = 0;
        sv.nd++;
    }
    int64_t len;
    if (offset >= 0) {
        len = x->sizes[a] < x->sizes[b] - offset ? x->sizes[a] : x->sizes[b] - offset;
        if (len > 0) sv.off_idx[b] = offset;
    } else {
        len = x->sizes[a] + offset < x->sizes[b] ? x->sizes[a] + offset : x->sizes[b];
        if (len > 0) sv.off_idx[a] = -offset;
    }
    if (len < 0) len = 0;
    sv.sizes[sv.nd] = len;
    sv.coef_dim[sv.nd][0] = a; sv.coef_mul[sv.nd][0] = 1;
    sv.coef_dim[sv.nd][1] = b; sv.coef_mul[sv.nd][1] = 1;
    sv.nd++;
    return apply_subview("DiagonalBackward0", x, &sv);
}

CT_API int64_t ct_unbind(const ct_tensor *x, int dim, ct_tensor **out, int64_t max_out) {
    if (!x) { ct__null_arg("unbind"); return -1; }
    if (x->ndim == 0) { ct__err(CT_ERR_INDEX, "unbind: Dimension specified as 0 but tensor has no dimensions"); return -1; }
    int d = ct__wrap_dim("unbind", dim, x->ndim);
    if (d < 0) return -1;
    int64_t n = x->sizes[d];
    if (!out || max_out < n) { ct__err(CT_ERR_ARG, "unbind: output array holds %lld tensors, need %lld", (long long)max_out, (long long)n); return -1; }
    for (int64_t i = 0; i < n; i++) {
        out[i] = ct_select(x, d, i);
        if (!out[i]) return -1;
    }
    return n;
}

/* as_strided: geometry in x's storage. Its backward needs the geometry relative to a
 * contiguous tensor of x's shape: exact when x is contiguous with offset 0 relative
 * to its storage start; otherwise we go through a contiguous copy. */
CT_API ct_tensor *ct_as_strided(const ct_tensor *x, int ndim, const int64_t *sizes, const int64_t *strides,
                                int64_t offset) {
    CT_CHECK_ARG("as_strided", x);
    if (ndim < 0 || ndim > CT_MAX_DIMS) return ct__err(CT_ERR_ARG, "as_strided: invalid rank %d", ndim);
    if (offset < 0) return ct__err(CT_ERR_ARG, "as_strided: Negative storage offset %lld", (long long)offset);
    int64_t max = offset;
    for (int i = 0; i < ndim; i++) {
        if (sizes[i] < 0) return ct__err(CT_ERR_ARG, "as_strided: negative size %lld", (long long)sizes[i]);
        if (strides[i] < 0) return ct__err(CT_ERR_ARG, "as_strided: negative strides are not supported");
        if (sizes[i] == 0) { max = -1; break; }
        max += (sizes[i] - 1) * strides[i];
    }
    size_t es = ct_dtype_size(x->dtype);
    if (max >= 0 && (size_t)(max + 1) * es > x->storage->nbytes)
        return ct__err(CT_ERR_INDEX, "as_strided: setStorage: sizes %s, strides %s, storage offset %lld require %lld "
                                     "bytes, but the storage has %zu", CT_SIZESSTR(ndim, sizes), CT_SIZESSTR(ndim, strides),
                       (long long)offset, (long long)((max + 1) * (int64_t)es), x->storage->nbytes);
    ct_tensor *v = ct__alias(x, ndim, sizes, strides, offset);
    if (!v) return NULL;
    if (!ct__needs_grad(1, (const ct_tensor *[]){x})) return ct__ret(v);
    if (!ct__is_contiguous(x)) {
        ct_release(v);
        return ct__err(CT_ERR_AUTOGRAD, "as_strided: differentiating through as_strided of a non-contiguous tensor "
                                        "is not supported; call contiguous() first");
    }
    return finish_view("AsStridedBackward0", V_STRIDED, x, v, NULL, 0, sizes, strides, offset - x->offset);
}

/* view_as_real and view_as_complex are each other's backward. */
static int as_complex_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    CT_UNUSED(n);
    ct_tensor *c = ct_contiguous(go[0]);
    gi[0] = c ? ct_view_as_complex(c) : NULL;
    return gi[0] ? 0 : ct_last_status();
}
static int as_real_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    CT_UNUSED(n);
    gi[0] = ct_view_as_real(go[0]);
    return gi[0] ? 0 : ct_last_status();
}

static ct_tensor *finish_custom_view(const char *node_name, const ct_tensor *x, ct_tensor *v, ct_backward_fn fn) {
    if (!v) return NULL;
    v->hist_version = x->hist_version; /* a view is as current as its source */
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new(node_name, fn, 1);
        if (!n || ct__node_set_next(n, 0, x)) {
            if (n) ct__node_release(n);
            ct_release(v);
            return NULL;
        }
        ct__set_history(v, n, 0);
    }
    return ct__ret(v);
}

CT_API ct_tensor *ct_view_as_real(const ct_tensor *x) {
    CT_CHECK_ARG("view_as_real", x);
    if (!ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "view_as_real is only supported for complex tensors (got %s)", ct_dtype_name(x->dtype));
    int64_t sh[CT_MAX_DIMS], st[CT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) { sh[i] = x->sizes[i]; st[i] = x->strides[i] * 2; }
    sh[x->ndim] = 2;
    st[x->ndim] = 1;
    ct_tensor *v = ct__alias(x, x->ndim + 1, sh, st, x->offset * 2);
    if (v) v->dtype = x->dtype == CT_COMPLEX64 ? CT_FLOAT32 : CT_FLOAT64;
    return finish_custom_view("ViewAsRealBackward0", x, v, as_complex_backward);
}

CT_API ct_tensor *ct_view_as_complex(const ct_tensor *x) {
    CT_CHECK_ARG("view_as_complex", x);
    if (x->dtype != CT_FLOAT32 && x->dtype != CT_FLOAT64)
        return ct__err(CT_ERR_DTYPE, "view_as_complex is only supported for float and double tensors, but got a tensor of scalar type: %s", ct_dtype_name(x->dtype));
    if (x->ndim == 0 || x->sizes[x->ndim - 1] != 2 || x->strides[x->ndim - 1] != 1)
        return ct__err(CT_ERR_SHAPE, "view_as_complex: Tensor must have a last dimension of size 2 and stride 1 (got %s)", CT_SHAPESTR(x));
    int64_t st[CT_MAX_DIMS];
    for (int i = 0; i < x->ndim - 1; i++) {
        if (x->strides[i] % 2) return ct__err(CT_ERR_SHAPE, "view_as_complex: Tensor must have a stride divisible by 2 for all but last dimension");
        st[i] = x->strides[i] / 2;
    }
    if (x->offset % 2) return ct__err(CT_ERR_SHAPE, "view_as_complex: Tensor must have a storage_offset divisible by 2");
    ct_tensor *v = ct__alias(x, x->ndim - 1, x->sizes, st, x->offset / 2);
    if (v) v->dtype = x->dtype == CT_FLOAT32 ? CT_COMPLEX64 : CT_COMPLEX128;
    return finish_custom_view("ViewAsComplexBackward0", x, v, as_real_backward);
}

/* ---- embed: the backward of strided views ---- */
static int embed_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int vnd = (int)n->ivec[0];
    ct_tensor *c = ct_contiguous(go[0]);
    if (!c) return ct_last_status();
    gi[0] = ct_as_strided(c, vnd, n->ivec + 1, n->ivec + 1 + vnd, c->offset + n->ivec[1 + 2 * vnd]);
    return gi[0] ? 0 : ct_last_status();
}

static bool geometry_overlaps(int nd, const int64_t *sizes, const int64_t *strides) {
    /* sort dims by stride; non-overlapping iff each stride exceeds the extent of the smaller ones */
    int idx[CT_MAX_DIMS], m = 0;
    for (int i = 0; i < nd; i++)
        if (sizes[i] > 1) idx[m++] = i;
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0 && strides[idx[j]] < strides[idx[j - 1]]; j--) { int t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t; }
    int64_t extent = 0;
    for (int i = 0; i < m; i++) {
        if (strides[idx[i]] <= extent) return true;
        extent += (sizes[idx[i]] - 1) * strides[idx[i]];
    }
    return false;
}

ct_tensor *ct__embed(const ct_tensor *g, int in_nd, const int64_t *in_sizes, int v_nd, const int64_t *v_sizes,
                     const int64_t *v_strides, int64_t v_off) {
    CT_CHECK_ARG("embed", g);
    ct_tensor *z = ct__empty_raw(in_nd, in_sizes, g->dtype);
    if (!z || ct__fill_raw(z, 0)) { ct_release(z); return NULL; }
    /* z was allocated contiguous including size-1 dims: its strides may differ for size-1
     * dims from the geometry's; the geometry only addresses elements, so build the view
     * directly on z's storage */
    ct_tensor *zv = ct__alias(z, v_nd, v_sizes, v_strides, v_off);
    if (!zv) { ct_release(z); return NULL; }
    int rc = 0;
    if (!geometry_overlaps(v_nd, v_sizes, v_strides)) rc = ct__copy_raw(zv, g);
    else {
        /* overlapping view: accumulate element by element */
        ct_tensor *gc = ct__empty_raw(g->ndim, g->sizes, g->dtype);
        if (!gc || ct__copy_raw(gc, g)) rc = ct_last_status();
        else {
            size_t es = ct_dtype_size(g->dtype);
            char *zp = z->storage->data;
            const char *gp = gc->storage->data;
            for (int64_t j = 0; j < gc->numel; j++) {
                int64_t rem = j, off = v_off;
                for (int d = v_nd - 1; d >= 0; d--) { off += (rem % v_sizes[d]) * v_strides[d]; rem /= v_sizes[d]; }
                ct_c128 acc = ct__load_c128(zp + off * (int64_t)es, g->dtype) + ct__load_c128(gp + j * (int64_t)es, g->dtype);
                ct__store_c128(zp + off * (int64_t)es, g->dtype, acc);
            }
        }
        ct_release(gc);
    }
    ct_release(zv);
    if (rc) { ct_release(z); return NULL; }
    if (ct__needs_grad(1, (const ct_tensor *[]){g})) {
        ct_node *n = ct__node_new("AsStridedScatterBackward0", embed_backward, 1);
        int64_t *iv = malloc(sizeof(int64_t) * (size_t)(2 + 2 * v_nd));
        int r2 = (!n || !iv) ? ct__errs(CT_ERR_OOM, "out of memory recording embed") : ct__node_set_next(n, 0, g);
        if (!r2) {
            iv[0] = v_nd;
            for (int i = 0; i < v_nd; i++) { iv[1 + i] = v_sizes[i]; iv[1 + v_nd + i] = v_strides[i]; }
            iv[1 + 2 * v_nd] = v_off;
            r2 = ct__node_set_ivec(n, 2 + 2 * v_nd, iv);
        }
        free(iv);
        if (r2) { if (n) ct__node_release(n); ct_release(z); return NULL; }
        ct__set_history(z, n, 0);
    }
    return ct__ret(z);
}

/* ---- in-place writes through views (PyTorch's CopySlices) ----
 * A view records its root base. An in-place op on view t of a base that is part of a
 * graph gives the base a new history: scatter(base_old, r, geometry of t), whose
 * backward sends the gradient outside the region to base_old and the region to r.
 * Every other alias is then stale (storage graph_version moved on) and rebuilds its
 * grad_fn from the base the next time it is used (ct__view_refresh). */

/* ivec: [v_nd, sizes..., strides..., offset] as in strided_backward. */
static int scatter_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int vnd = (int)n->ivec[0];
    const int64_t *vs = n->ivec + 1, *vst = n->ivec + 1 + vnd, voff = n->ivec[1 + 2 * vnd];
    ct_tensor *g = ct_contiguous(go[0]);
    if (!g) return ct_last_status();
    if (ct__node_needs(n, 0)) {
        /* the region was overwritten: zero it (a differentiable embed of -region) */
        ct_tensor *region = ct_as_strided(g, vnd, vs, vst, g->offset + voff);
        ct_tensor *z = region ? ct__embed(region, g->ndim, g->sizes, vnd, vs, vst, voff) : NULL;
        gi[0] = z ? ct_sub(g, z) : NULL;
        if (!gi[0]) return ct_last_status();
    }
    if (ct__node_needs(n, 1)) {
        gi[1] = ct_as_strided(g, vnd, vs, vst, g->offset + voff);
        if (!gi[1]) return ct_last_status();
    }
    return 0;
}

static int set_geometry(ct_node *n, const ct_tensor *v, const ct_tensor *base) {
    int vnd = v->ndim;
    int64_t iv[2 + 2 * CT_MAX_DIMS];
    iv[0] = vnd;
    for (int i = 0; i < vnd; i++) { iv[1 + i] = v->sizes[i]; iv[1 + vnd + i] = v->strides[i]; }
    iv[1 + 2 * vnd] = v->offset - base->offset;
    return ct__node_set_ivec(n, 2 + 2 * vnd, iv);
}

int ct__view_refresh(ct_tensor *t) {
    ct_tensor *base = t->view_base;
    if (!base || t->hist_version == t->storage->graph_version) return 0;
    if (!ct__tensor_requires_grad(base)) {
        if (t->grad_fn) { ct__node_release(t->grad_fn); t->grad_fn = NULL; }
        t->hist_version = t->storage->graph_version;
        return 0;
    }
    if (!ct__is_contiguous(base))
        return ct__errs(CT_ERR_AUTOGRAD, "a view of shape %s was modified in place through another alias of a "
                                         "non-contiguous base; clone the base first", CT_SHAPESTR(t));
    ct_node *n = ct__node_new("AsStridedBackward0", strided_backward, 1);
    if (!n || ct__node_set_next(n, 0, base) || ct__node_save_meta(n, 0, base) || set_geometry(n, t, base)) {
        if (n) ct__node_release(n);
        return ct_last_status();
    }
    ct__set_history(t, n, 0);
    return 0;
}

int ct__commit_inplace_view(const char *op, ct_tensor *t, const ct_tensor *r) {
    ct_tensor *base = t->view_base;
    if (!ct__is_contiguous(base))
        return ct__errs(CT_ERR_AUTOGRAD, "%s: in-place operation on a view of a non-contiguous tensor that is part of "
                                         "an autograd graph is not supported; clone the base first", op);
    if (ct_dtype_is_integral(base->dtype, true))
        return ct__errs(CT_ERR_AUTOGRAD, "%s: in-place result cannot carry a gradient into a %s tensor", op,
                        ct_dtype_name(base->dtype));
    /* the node first (its edge 0 is the base's history before this write) */
    ct_node *n = ct__node_new("CopySlices", scatter_backward, 2);
    int rc = n ? 0 : ct_last_status();
    if (!rc) rc = ct__node_set_next(n, 0, base);
    if (!rc) rc = ct__node_set_next(n, 1, r);
    if (!rc) rc = set_geometry(n, t, base);
    if (!rc && (r->storage != t->storage || r->offset != t->offset)) rc = ct__copy_raw(t, r);
    if (rc) {
        if (n) ct__node_release(n);
        return rc;
    }
    ct__bump_version(t);
    atomic_fetch_add(&t->storage->graph_version, 1); /* every alias is stale now */
    ct__set_history(base, n, 0);
    return ct__view_refresh(t);
}
