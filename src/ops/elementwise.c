/* Elementwise front-end machinery: dtype rules, broadcasting, allocation, dispatch,
 * and the in-place / out= wrappers. */
#include "ops/elementwise.h"

#include "core/iter.h"

ct_tensor *ct__cast_raw(const ct_tensor *t, ct_dtype dt) {
    if (t->dtype == dt) return ct_retain((ct_tensor *)t);
    ct_tensor *r = ct__empty_like_raw(t, dt);
    if (!r) return NULL;
    if (ct__copy_raw(r, t)) { ct_release(r); return NULL; }
    return r;
}

int ct__ew_compute_dtype(const char *name, ct_dtype dt, ct_ew_kind kind) {
    switch (kind) {
    case CT_EW_FLOAT:
    case CT_EW_FLOAT_REAL:
        if (ct_dtype_is_integral(dt, true)) dt = ct_get_default_dtype();
        break;
    case CT_EW_INTEGRAL:
        if (!ct_dtype_is_integral(dt, true))
            return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s' (integer and bool tensors only)", name,
                            ct_dtype_name(dt)), -1;
        break;
    default: break;
    }
    if ((kind == CT_EW_REAL || kind == CT_EW_FLOAT_REAL) && ct_dtype_is_complex(dt))
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", name, ct_dtype_name(dt)), -1;
    return (int)dt;
}

/* t itself (borrowed, *owned NULL) when it has dtype dt, else a converted copy that the
 * caller releases through *owned: an operand already in the compute dtype costs no
 * reference-count traffic (two atomic pairs of a ~100 ns add). NULL on failure. */
static const ct_tensor *in_dtype(const ct_tensor *t, ct_dtype dt, ct_tensor **owned) {
    *owned = NULL;
    if (t->dtype == dt) return t;
    return *owned = ct__cast_raw(t, dt);
}

static ct_dtype out_dtype(ct_dtype compute, ct_ew_kind kind) {
    if (kind == CT_EW_TO_REAL && ct_dtype_is_complex(compute)) return compute == CT_COMPLEX64 ? CT_FLOAT32 : CT_FLOAT64;
    return (kind == CT_EW_BOOL_OUT || kind == CT_EW_LOGICAL) ? CT_BOOL : compute;
}

ct_tensor *ct__unary_raw(ct_op op, const char *name, const ct_tensor *x, ct_ew_kind kind, const double *params) {
    CT_CHECK_ARG(name, x);
    int cd = ct__ew_compute_dtype(name, x->dtype, kind);
    if (cd < 0) return NULL;
    ct_tensor *xown;
    const ct_tensor *xin = in_dtype(x, (ct_dtype)cd, &xown);
    if (!xin) return NULL;
    ct_tensor *out = ct__empty_ew_raw(x->ndim, x->sizes, out_dtype((ct_dtype)cd, kind), 1, &x);
    if (!out) { ct_release(xown); return NULL; }
    ct_kernel_args a = {.op = op, .n_out = 1, .n_in = 1, .out = {out}, .in = {xin}};
    if (params) memcpy(a.d, params, sizeof(double) * 4);
    int rc = ct__dispatch(&a);
    ct_release(xown);
    if (rc) { ct_release(out); return NULL; }
    return out;
}

/* float16/bfloat16 mul and div by a single value: PyTorch's CPU kernels take that value
 * as a float32 of the original operand (a Python number, or a 0-dim float64 tensor),
 * not rounded to the half type first (add and sub do round it). Returns the parameters
 * that tell the kernel so (p[0] the value, p[1] = 1: cpu/binary.c HALF_BY_SCALAR), or
 * `params` unchanged. */
static const double *half_scalar_params(ct_op op, ct_dtype cd, const ct_tensor *b, const double *params, double *sp) {
    if ((op != CT_OP_MUL && op != CT_OP_DIV) || (cd != CT_FLOAT16 && cd != CT_BFLOAT16) || params || b->numel != 1 ||
        b->storage->device.type != CT_DEVICE_CPU)
        return params;
    sp[0] = ct__load_f64(ct__data(b), b->dtype);
    sp[1] = 1.0;
    sp[2] = sp[3] = 0.0;
    return sp;
}

ct_tensor *ct__binary_raw(ct_op op, const char *name, const ct_tensor *a, const ct_tensor *b, ct_ew_kind kind,
                          const double *params) {
    CT_CHECK_ARG(name, a);
    CT_CHECK_ARG(name, b);
    int64_t shape[CT_MAX_DIMS];
    int nd = ct__broadcast_shapes(name, a->ndim, a->sizes, b->ndim, b->sizes, shape);
    if (nd < 0) return NULL;
    ct_dtype promoted = ct__result_type(2, (const ct_tensor *[]){a, b});
    ct_dtype cd;
    if (kind == CT_EW_LOGICAL) cd = promoted;
    else {
        int c = ct__ew_compute_dtype(name, promoted, kind);
        if (c < 0) return NULL;
        cd = (ct_dtype)c;
    }
    ct_tensor *aown, *bown = NULL;
    const ct_tensor *ain = in_dtype(a, cd, &aown), *bin = ain ? in_dtype(b, cd, &bown) : NULL;
    ct_tensor *out = bin ? ct__empty_ew_raw(nd, shape, out_dtype(cd, kind), 2, (const ct_tensor *[]){a, b}) : NULL;
    int rc = -1;
    double sp[4];
    params = half_scalar_params(op, cd, b, params, sp);
    if (out) {
        ct_kernel_args k = {.op = op, .n_out = 1, .n_in = 2, .out = {out}, .in = {ain, bin}};
        if (params) memcpy(k.d, params, sizeof(double) * 4);
        rc = ct__dispatch(&k);
    }
    ct_release(aown);
    ct_release(bown);
    if (rc) { ct_release(out); return NULL; }
    return out;
}

/* byte range [lo, hi] of t's elements in its storage (empty: hi < lo) */
static void byte_range(const ct_tensor *t, int64_t *lo, int64_t *hi) {
    int64_t es = (int64_t)ct_dtype_size(t->dtype), a = t->offset * es, b = a;
    for (int i = 0; i < t->ndim; i++) {
        if (t->sizes[i] == 0) { *lo = 0, *hi = -1; return; }
        int64_t span = (t->sizes[i] - 1) * t->strides[i] * es;
        if (span > 0) b += span;
        else a += span;
    }
    *lo = a, *hi = b + es - 1;
}

static int check_no_partial_overlap(const char *name, const ct_tensor *self, const ct_tensor *b) {
    if (!self || !b || self->storage != b->storage) return 0;
    if (b->offset == self->offset && b->dtype == self->dtype &&
        ct__same_sizes(b->ndim, b->sizes, self->ndim, self->sizes) &&
        (self->ndim == 0 || memcmp(b->strides, self->strides, sizeof(int64_t) * (size_t)self->ndim) == 0))
        return 0; /* the very same elements */
    int64_t a0, a1, b0, b1;
    byte_range(self, &a0, &a1);
    byte_range(b, &b0, &b1);
    if (a1 < a0 || b1 < b0 || a1 < b0 || b1 < a0) return 0;
    return ct__errs(CT_ERR_ARG, "%s: unsupported operation: some elements of the input tensor and the written-to "
                                "tensor refer to a single memory location. Please clone() the tensor before "
                                "performing the operation.", name);
}

int ct__check_inplace_binary(const char *name, ct_tensor *self, const ct_tensor *b) {
    int rc = ct__check_inplace(name, self);
    return rc ? rc : check_no_partial_overlap(name, self, b);
}

int ct__inplace_binary_direct(ct_op op, const char *name, ct_tensor *self, const ct_tensor *b, ct_ew_kind kind,
                              const double *params) {
    if (!self || !b || self->storage->device.type != b->storage->device.type ||
        self->storage->device.index != b->storage->device.index ||
        !ct__is_dense(self))
        return 1;
    if (ct_is_grad_enabled() && (ct__tensor_requires_grad(self) || ct__tensor_requires_grad(b) ||
                                 (self->view_base && ct__tensor_requires_grad(self->view_base))))
        return 1;
    if (b->ndim > self->ndim) return 1;
    for (int i = 0; i < b->ndim; i++) {
        int64_t bs = b->sizes[b->ndim - 1 - i];
        if (bs != 1 && bs != self->sizes[self->ndim - 1 - i]) return 1;
    }
    ct_dtype promoted = ct__result_type(2, (const ct_tensor *[]){self, b});
    if (kind == CT_EW_LOGICAL || promoted != self->dtype) return 1;
    int c = ct__ew_compute_dtype(name, promoted, kind);
    if (c < 0) { ct_clear_error(); return 1; }
    if ((ct_dtype)c != self->dtype || out_dtype((ct_dtype)c, kind) != self->dtype) return 1;
    ct_tensor *bin = ct__cast_raw(b, self->dtype);
    if (!bin) return ct_last_status();
    ct_kernel_args k = {.op = op, .n_out = 1, .n_in = 2, .out = {self}, .in = {self, bin}};
    double sp[4];
    params = half_scalar_params(op, self->dtype, b, params, sp);
    if (params) memcpy(k.d, params, sizeof(double) * 4);
    int rc = ct__dispatch(&k);
    ct_release(bin);
    if (!rc) ct__bump_version(self);
    return rc;
}

int ct__inplace_unary(const char *name, ct_tensor *self, ct_unary_fn fn) {
    int rc = ct__check_inplace(name, self);
    if (rc) return rc;
    if (ct_scope_begin()) return ct_last_status();
    ct_tensor *r = fn(self);
    rc = ct__commit_inplace(name, self, r);
    ct_scope_end();
    return rc;
}

int ct__out_unary(const char *name, ct_tensor *out, const ct_tensor *x, ct_unary_fn fn) {
    CT_CHECK_ARG_S(name, out);
    if (ct_scope_begin()) return ct_last_status();
    ct_tensor *r = fn(x);
    int rc = ct__commit_out(name, out, r);
    ct_scope_end();
    return rc;
}

/* the general in-place path, after the checks: a result, committed into self */
static int inplace_binary_general(const char *name, ct_tensor *self, const ct_tensor *b, ct_binary_fn fn) {
    if (ct_scope_begin()) return ct_last_status();
    ct_tensor *r = fn(self, b);
    int rc = ct__commit_inplace(name, self, r);
    ct_scope_end();
    return rc;
}

int ct__inplace_binary(const char *name, ct_tensor *self, const ct_tensor *b, ct_binary_fn fn) {
    int rc = ct__check_inplace_binary(name, self, b);
    return rc ? rc : inplace_binary_general(name, self, b, fn);
}

int ct__inplace_binary_op(const char *name, ct_tensor *self, const ct_tensor *b, ct_binary_fn fn, ct_op op,
                          ct_ew_kind kind, const double *params) {
    int rc = ct__check_inplace_binary(name, self, b);
    if (!rc) rc = ct__inplace_binary_direct(op, name, self, b, kind, params);
    return rc <= 0 ? rc : inplace_binary_general(name, self, b, fn);
}

int ct__out_binary(const char *name, ct_tensor *out, const ct_tensor *a, const ct_tensor *b, ct_binary_fn fn) {
    CT_CHECK_ARG_S(name, out);
    if (ct_scope_begin()) return ct_last_status();
    ct_tensor *r = fn(a, b);
    int rc = ct__commit_out(name, out, r);
    ct_scope_end();
    return rc;
}

ct_tensor *ct__record_binary(ct_tensor *out, const char *node_name, ct_backward_fn fn, const ct_tensor *a,
                             const ct_tensor *b, bool save_out, double d0) {
    if (!out) return NULL;
    if (ct__needs_grad(2, (const ct_tensor *[]){a, b}) &&
        (ct_dtype_is_floating(out->dtype) || ct_dtype_is_complex(out->dtype))) {
        ct_node *n = ct__node_new(node_name, fn, 2);
        if (!n || ct__node_set_next(n, 0, a) || ct__node_set_next(n, 1, b) || ct__save(n, a) < 0 ||
            ct__save(n, b) < 0 || (save_out && ct__save_output(n, out, 0) < 0)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        n->d[0] = d0;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

ct_tensor *ct__record_unary(ct_tensor *out, const char *node_name, ct_backward_fn fn, const ct_tensor *x, bool save_x,
                            bool save_out, const double *d) {
    if (!out) return NULL;
    if (ct__needs_grad(1, (const ct_tensor *[]){x}) && (ct_dtype_is_floating(out->dtype) || ct_dtype_is_complex(out->dtype))) {
        ct_node *n = ct__node_new(node_name, fn, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_save_meta(n, 0, x) || (save_x && ct__save(n, x) < 0) ||
            (save_out && ct__save_output(n, out, 0) < 0)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        if (d) memcpy(n->d, d, sizeof(double) * CT_NODE_D);
        n->i[CT_NODE_I - 1] = (save_x ? 1 : 0) | (save_out ? 2 : 0);
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}
