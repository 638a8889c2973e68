/* Gathering and scattering: gather, scatter (+ add / reduce), index_select,
 * index_add / index_copy / index_fill, advanced indexing (index, index_put),
 * masked_fill / masked_scatter / masked_select, nonzero, take, take_along_dim.
 * Kernels live in src/cpu/index.c; backward formulas use public ops only. */
#include <math.h>

#include "core/iter.h"
#include "ops/elementwise.h"

/* Composite-op scope helpers: run inside a scope, hand the result to the caller's. */
#define SCOPE_BEGIN() do { if (ct_scope_begin()) return NULL; } while (0)
static ct_tensor *scope_return(ct_tensor *r) {
    r = ct_keep(r);
    ct_scope_end();
    return r;
}
static int scope_return_status(int rc) {
    ct_scope_end();
    return rc;
}

/* A rank >= 1 alias of t (0-dim -> [1]); unregistered new reference. */
static ct_tensor *atleast1(const ct_tensor *t) {
    if (t->ndim > 0) return ct_retain((ct_tensor *)t);
    return ct__alias(t, 1, (const int64_t[]){1}, (const int64_t[]){1}, t->offset);
}

static int64_t size1(const ct_tensor *t, int d) { return t->ndim ? t->sizes[d] : 1; }

static void release_all(int n, ct_tensor **ts) {
    for (int i = 0; i < n; i++) ct_release(ts[i]);
}

static void node_fail(ct_node *n, ct_tensor *out) {
    if (n) ct__node_release(n);
    ct_release(out);
}

/* ======================= gather ======================= */
static int gather_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *index = ct__unpack(n, 0);
    if (!index) return ct_last_status();
    ct_tensor *z = ct_zeros(n->n_ivec, n->ivec, go[0]->dtype);
    gi[0] = ct_scatter_add(z, (int)n->i[0], index, go[0]);
    return gi[0] ? 0 : ct_last_status();
}

CT_API ct_tensor *ct_gather(const ct_tensor *x, int dim, const ct_tensor *index) {
    CT_CHECK_ARG("gather", x);
    CT_CHECK_ARG("gather", index);
    if (index->dtype != CT_INT64) return ct__err(CT_ERR_DTYPE, "gather(): Expected dtype int64 for index");
    int d = ct__wrap_dim("gather", dim, x->ndim);
    if (d < 0) return NULL;
    int nd = x->ndim ? x->ndim : 1;
    if ((index->ndim ? index->ndim : 1) != nd)
        return ct__err(CT_ERR_SHAPE, "gather(): Index tensor must have the same number of dimensions as input tensor "
                                     "(got index %s and input %s)", CT_SHAPESTR(index), CT_SHAPESTR(x));
    for (int i = 0; i < nd; i++)
        if (i != d && size1(index, i) > size1(x, i))
            return ct__err(CT_ERR_SHAPE, "gather(): Size does not match at dimension %d expected index %s to be no "
                                         "larger than self %s apart from dimension %d",
                           i, CT_SHAPESTR(index), CT_SHAPESTR(x), d);
    ct_tensor *out = ct__empty_raw(index->ndim, index->sizes, x->dtype);
    if (!out) return NULL;
    if (out->numel > 0) {
        if (size1(x, d) == 0 && x->numel == 0) {
            ct_release(out);
            return ct__err(CT_ERR_INDEX, "gather(): index %lld is out of bounds for dimension %d with size 0",
                           (long long)ct_item(index), d);
        }
        ct_tensor *o1 = atleast1(out), *x1 = atleast1(x), *i1 = atleast1(index);
        ct_kernel_args a = {.op = CT_OP_GATHER, .n_out = 1, .n_in = 2, .out = {o1}, .in = {x1, i1}, .i = {d}};
        int rc = (o1 && x1 && i1) ? ct__dispatch(&a) : ct_last_status();
        release_all(3, (ct_tensor *[]){o1, x1, i1});
        if (rc) {
            ct_release(out);
            return NULL;
        }
    }
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new("GatherBackward0", gather_backward, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__save(n, index) < 0 || ct__node_set_ivec(n, x->ndim, x->sizes)) {
            node_fail(n, out);
            return NULL;
        }
        n->i[0] = d;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

/* ======================= scatter family ======================= */
enum { SC_ASSIGN, SC_SUM, SC_PROD, SC_MEAN, SC_AMAX, SC_AMIN };
static const char *const sc_names[] = {"assign", "sum", "prod", "mean", "amax", "amin"};

/* grad (of the src's index-shaped part) padded with zeros to src's sizes. */
static ct_tensor *pad_to(ct_tensor *g, int nd, const int64_t *sizes) {
    if (!g || ct__same_sizes(g->ndim, g->sizes, nd, sizes)) return g;
    int64_t pad[2 * CT_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        pad[2 * i] = 0;
        pad[2 * i + 1] = sizes[nd - 1 - i] - g->sizes[nd - 1 - i];
    }
    return ct_pad(g, 2 * nd, pad, "constant", 0.0);
}

/* saved: 0 index, 1 src (if any), 2 self, 3 result (amax/amin/prod) */
static int scatter_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int dim = (int)n->i[0], mode = (int)n->i[1];
    bool include_self = n->i[2], has_src = n->i[3];
    ct_tensor *g = go[0];
    ct_tensor *index = ct__unpack(n, 0);
    if (!index) return ct_last_status();
    const int64_t *src_sizes = n->ivec;
    int src_nd = n->n_ivec;
    if (mode == SC_ASSIGN || mode == SC_SUM) {
        if (ct__node_needs(n, 0))
            gi[0] = (mode == SC_SUM && include_self) ? ct__pass(g) : ct_scatter_value(g, dim, index, 0.0);
        if (has_src && ct__node_needs(n, 1)) gi[1] = pad_to(ct_gather(g, dim, index), src_nd, src_sizes);
    } else if (mode == SC_MEAN) {
        ct_tensor *src = ct__unpack(n, 1);
        if (!src) return ct_last_status();
        ct_tensor *base = include_self ? ct_ones_like(g) : ct_zeros_like(g);
        ct_tensor *cnt = ct_scatter_add(base, dim, index, ct_ones(index->ndim, index->sizes, g->dtype));
        cnt = ct_clamp_scalar(cnt, 1.0, INFINITY);
        ct_tensor *gd = ct_div(g, cnt);
        if (ct__node_needs(n, 0)) gi[0] = include_self ? ct__pass(gd) : ct_scatter_value(g, dim, index, 0.0);
        if (ct__node_needs(n, 1)) gi[1] = pad_to(ct_gather(gd, dim, index), src_nd, src_sizes);
    } else {
        ct_tensor *src = ct__unpack(n, 1), *self = ct__unpack(n, 2), *res = ct__unpack(n, 3);
        if (!src || !self || !res) return ct_last_status();
        if (mode == SC_PROD) {
            /* The derivative of a product by one factor is the product of the others. With
             * zeros among the factors that is not result / factor: as PyTorch, recompute the
             * product with the factor in question replaced by 1 where needed. */
            ct_tensor *one = ct_scalar_tensor(1.0, self->dtype), *zero = ct_scalar_tensor(0.0, self->dtype);
            if (ct__node_needs(n, 0)) {
                if (include_self) {
                    ct_tensor *ms = ct_where(ct_eq(self, zero), one, self);
                    ct_tensor *msr = ct_scatter_reduce(ms, dim, index, src, "prod", true);
                    gi[0] = ct_div(ct_mul(g, msr), ms);
                } else {
                    gi[0] = ct_scatter_value(g, dim, index, 0.0);
                }
            }
            if (ct__node_needs(n, 1)) {
                ct_tensor *sz = ct_eq(src, zero);
                ct_tensor *nz = ct_gather(ct_scatter_add(ct_zeros_like(self), dim, index, ct_to_dtype(sz, self->dtype)),
                                          dim, index);
                ct_tensor *single = ct_logical_and(sz, ct_eq(nz, one));
                ct_tensor *msrc = ct_where(single, one, src);
                ct_tensor *msr = ct_scatter_reduce(self, dim, index, msrc, "prod", include_self);
                ct_tensor *others = ct_gather(ct_mul(g, msr), dim, index);
                ct_tensor *plain = ct_div(ct_gather(ct_mul(g, res), dim, index), ct_where(sz, one, src));
                gi[1] = pad_to(ct_where(single, others, plain), src_nd, src_sizes);
            }
        } else {
            ct_tensor *value = ct_gather(res, dim, index);
            ct_tensor *self_is = ct_to_dtype(ct_eq(self, res), g->dtype);
            if (!include_self) self_is = ct_scatter_value(self_is, dim, index, 0.0);
            ct_tensor *src_is = ct_to_dtype(ct_eq(src, value), g->dtype);
            ct_tensor *cnt = ct_scatter_add(self_is, dim, index, src_is);
            ct_tensor *gd = ct_div(g, cnt);
            if (ct__node_needs(n, 0)) gi[0] = ct_mul(self_is, gd);
            if (ct__node_needs(n, 1)) gi[1] = pad_to(ct_mul(src_is, ct_gather(gd, dim, index)), src_nd, src_sizes);
        }
    }
    if ((ct__node_needs(n, 0) && !gi[0]) || (has_src && ct__node_needs(n, 1) && !gi[1])) return ct_last_status();
    return 0;
}

static ct_tensor *scatter_impl(const char *op, const char *node_name, ct_op opcode, const ct_tensor *x, int dim,
                               const ct_tensor *index, const ct_tensor *src, double value, int mode,
                               bool include_self) {
    CT_CHECK_ARG(op, x);
    CT_CHECK_ARG(op, index);
    if (index->dtype != CT_INT64) return ct__err(CT_ERR_DTYPE, "%s(): Expected dtype int64 for index", op);
    if (src && src->dtype != x->dtype)
        return ct__err(CT_ERR_DTYPE, "%s(): Expected self.dtype to be equal to src.dtype (got %s and %s)", op,
                       ct_dtype_name(x->dtype), ct_dtype_name(src->dtype));
    if ((mode == SC_AMAX || mode == SC_AMIN) && ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "%s(): reduce argument %s is not supported for complex inputs", op,
                       sc_names[mode]);
    int d = ct__wrap_dim(op, dim, x->ndim);
    if (d < 0) return NULL;
    int nd = x->ndim ? x->ndim : 1;
    if ((index->ndim ? index->ndim : 1) != nd || (src && (src->ndim ? src->ndim : 1) != nd)) {
        if (index->numel != 0 || !src)
            return ct__err(CT_ERR_SHAPE, "%s(): Index tensor must have the same number of dimensions as self tensor "
                                         "(got index %s, self %s)", op, CT_SHAPESTR(index), CT_SHAPESTR(x));
    }
    if (index->numel > 0)
        for (int i = 0; i < nd; i++)
            if ((i != d && size1(index, i) > size1(x, i)) || (src && size1(index, i) > size1(src, i)))
                return ct__err(CT_ERR_SHAPE, "%s(): Expected index %s to be no larger than self %s apart from "
                                             "dimension %d and to be no larger size than src %s",
                               op, CT_SHAPESTR(index), CT_SHAPESTR(x), d, src ? CT_SHAPESTR(src) : "(value)");
    ct_tensor *out = ct__empty_raw(x->ndim, x->sizes, x->dtype);
    if (!out) return NULL;
    if (ct__copy_raw(out, x)) {
        ct_release(out);
        return NULL;
    }
    if (index->numel > 0) {
        ct_tensor *o1 = atleast1(out), *i1 = atleast1(index), *s1 = src ? atleast1(src) : NULL;
        ct_kernel_args a = {.op = opcode, .n_out = 1, .n_in = 2, .out = {o1}, .in = {i1, s1},
                            .i = {d, mode, include_self}, .d = {value}};
        int rc = (o1 && i1 && (!src || s1)) ? ct__dispatch(&a) : ct_last_status();
        release_all(3, (ct_tensor *[]){o1, i1, s1});
        if (rc) {
            ct_release(out);
            return NULL;
        }
    }
    const ct_tensor *ins[2] = {x, src};
    if (ct__needs_grad(src ? 2 : 1, ins)) {
        ct_node *n = ct__node_new(node_name, scatter_backward, src ? 2 : 1);
        bool bad = !n || ct__node_set_next(n, 0, x) || (src && ct__node_set_next(n, 1, src)) || ct__save(n, index) < 0;
        if (!bad && src) bad = ct__save(n, src) < 0 || ct__node_set_ivec(n, src->ndim, src->sizes);
        if (!bad && (mode == SC_PROD || mode == SC_AMAX || mode == SC_AMIN))
            bad = ct__save(n, x) < 0 || ct__save_output(n, out, 0) < 0;
        if (bad) {
            node_fail(n, out);
            return NULL;
        }
        n->i[0] = d;
        n->i[1] = mode;
        n->i[2] = include_self;
        n->i[3] = src != NULL;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

CT_API ct_tensor *ct_scatter(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src) {
    CT_CHECK_ARG("scatter", src);
    return scatter_impl("scatter", "ScatterBackward0", CT_OP_SCATTER, x, dim, index, src, 0, SC_ASSIGN, true);
}
CT_API ct_tensor *ct_scatter_value(const ct_tensor *x, int dim, const ct_tensor *index, double value) {
    return scatter_impl("scatter", "ScatterBackward1", CT_OP_SCATTER, x, dim, index, NULL, value, SC_ASSIGN, true);
}
CT_API ct_tensor *ct_scatter_add(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src) {
    CT_CHECK_ARG("scatter_add", src);
    return scatter_impl("scatter_add", "ScatterAddBackward0", CT_OP_SCATTER_ADD, x, dim, index, src, 0, SC_SUM, true);
}
CT_API ct_tensor *ct_scatter_reduce(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *src,
                                    const char *reduce, bool include_self) {
    CT_CHECK_ARG("scatter_reduce", src);
    int mode = -1;
    for (int m = SC_SUM; m <= SC_AMIN && reduce; m++)
        if (!strcmp(reduce, sc_names[m])) mode = m;
    if (mode < 0)
        return ct__err(CT_ERR_ARG, "scatter_reduce(): reduce argument must be either sum, prod, mean, amax or amin, "
                                   "got %s", reduce ? reduce : "(null)");
    return scatter_impl("scatter_reduce", "ScatterReduceBackward0", CT_OP_SCATTER_REDUCE, x, dim, index, src, 0,
                        mode, include_self);
}

static int inplace_via(const char *op, ct_tensor *self, ct_tensor *(*make)(const void *), const void *ctx) {
    int rc = ct__check_inplace(op, self);
    if (rc) return rc;
    if (ct_scope_begin()) return ct_last_status();
    return scope_return_status(ct__commit_inplace(op, self, make(ctx)));
}
typedef struct {
    const ct_tensor *self, *index, *src;
    int dim;
    double alpha;
} ip_args;
static ct_tensor *mk_scatter(const void *c) {
    const ip_args *p = c;
    return ct_scatter(p->self, p->dim, p->index, p->src);
}
static ct_tensor *mk_scatter_add(const void *c) {
    const ip_args *p = c;
    return ct_scatter_add(p->self, p->dim, p->index, p->src);
}
static ct_tensor *mk_index_add(const void *c) {
    const ip_args *p = c;
    return ct_index_add(p->self, p->dim, p->index, p->src, p->alpha);
}
static ct_tensor *mk_index_copy(const void *c) {
    const ip_args *p = c;
    return ct_index_copy(p->self, p->dim, p->index, p->src);
}
CT_API int ct_scatter_(ct_tensor *self, int dim, const ct_tensor *index, const ct_tensor *src) {
    return inplace_via("scatter_", self, mk_scatter, &(ip_args){self, index, src, dim, 1});
}
CT_API int ct_scatter_add_(ct_tensor *self, int dim, const ct_tensor *index, const ct_tensor *src) {
    return inplace_via("scatter_add_", self, mk_scatter_add, &(ip_args){self, index, src, dim, 1});
}

/* ======================= index_select ======================= */
/* index as int64 (int32 accepted), checked to be a vector. Scope-owned or NULL. */
static ct_tensor *index_vector(const char *op, const ct_tensor *index) {
    if (index->dtype != CT_INT64 && index->dtype != CT_INT32)
        return ct__err(CT_ERR_DTYPE, "%s(): Expected dtype int32/int64 for index (got %s)", op,
                       ct_dtype_name(index->dtype));
    if (index->ndim > 1) return ct__err(CT_ERR_SHAPE, "%s(): Index is supposed to be a vector (got %s)", op, CT_SHAPESTR(index));
    return ct_to_dtype(index, CT_INT64);
}

static ct_tensor *index_add_zeros(int nd, const int64_t *sizes, int d, const ct_tensor *idx, const ct_tensor *src,
                                  int64_t skip);

static int index_select_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *index = ct__unpack(n, 0);
    if (!index) return ct_last_status();
    gi[0] = index_add_zeros(n->n_ivec, n->ivec, (int)n->i[0], index, go[0], -1);
    return gi[0] ? 0 : ct_last_status();
}

CT_API ct_tensor *ct_index_select(const ct_tensor *x, int dim, const ct_tensor *index) {
    CT_CHECK_ARG("index_select", x);
    CT_CHECK_ARG("index_select", index);
    int d = ct__wrap_dim("index_select", dim, x->ndim);
    if (d < 0) return NULL;
    SCOPE_BEGIN();
    ct_tensor *idx = index_vector("index_select", index), *xc = ct_contiguous(ct_detach(x));
    if (!idx || !xc) return scope_return(NULL);
    int64_t sizes[CT_MAX_DIMS];
    int nd = x->ndim;
    memcpy(sizes, x->sizes, sizeof(int64_t) * (size_t)nd);
    if (nd) sizes[d] = idx->numel;
    else if (idx->numel != 1)
        return scope_return(ct__err(CT_ERR_INDEX, "index_select(): Index to scalar can have only 1 value, got %lld "
                                                  "value(s)", (long long)idx->numel));
    ct_tensor *out = ct__empty_raw(nd, sizes, x->dtype);
    if (!out) return scope_return(NULL);
    if (out->numel > 0 || idx->numel > 0) {
        ct_tensor *o1 = atleast1(out), *x1 = atleast1(xc);
        ct_kernel_args a = {.op = CT_OP_INDEX_SELECT, .n_out = 1, .n_in = 2, .out = {o1}, .in = {x1, idx}, .i = {d}};
        int rc = (o1 && x1) ? ct__dispatch(&a) : ct_last_status();
        release_all(2, (ct_tensor *[]){o1, x1});
        if (rc) {
            ct_release(out);
            return scope_return(NULL);
        }
    }
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new("IndexSelectBackward0", index_select_backward, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__save(n, idx) < 0 || ct__node_set_ivec(n, x->ndim, x->sizes)) {
            node_fail(n, out);
            return scope_return(NULL);
        }
        n->i[0] = d;
        ct__set_history(out, n, 0);
    }
    return scope_return(ct__ret(out));
}

/* ======================= index_add / index_copy / index_fill ======================= */
/* The 1-D index viewed along dim of a rank-nd tensor and expanded to sizes. */
static ct_tensor *expand_index(const ct_tensor *idx, int nd, int d, const int64_t *sizes) {
    int64_t vs[CT_MAX_DIMS];
    for (int i = 0; i < nd; i++) vs[i] = i == d ? idx->numel : 1;
    return ct_expand(ct_reshape(idx, nd, vs), nd, sizes);
}

/* Shared checks for index_add / index_copy: returns the int64 index (scope-owned). */
static ct_tensor *index_src_check(const char *op, const ct_tensor *x, int d, const ct_tensor *index,
                                  const ct_tensor *src) {
    ct_tensor *idx = index_vector(op, index);
    if (!idx) return NULL;
    if (src->dtype != x->dtype)
        return ct__err(CT_ERR_DTYPE, "%s(): self (%s) and source (%s) must have the same scalar type", op,
                       ct_dtype_name(x->dtype), ct_dtype_name(src->dtype));
    int nd = x->ndim ? x->ndim : 1;
    if ((src->ndim ? src->ndim : 1) != nd)
        return ct__err(CT_ERR_SHAPE, "%s(): Source/destination tensor must have same number of dimensions (got %s "
                                     "and %s)", op, CT_SHAPESTR(src), CT_SHAPESTR(x));
    if (size1(src, d) != idx->numel)
        return ct__err(CT_ERR_SHAPE, "%s(): Number of indices (%lld) should be equal to source.size(dim) (%lld)", op,
                       (long long)idx->numel, (long long)size1(src, d));
    for (int i = 0; i < nd; i++)
        if (i != d && size1(src, i) != size1(x, i))
            return ct__err(CT_ERR_SHAPE, "%s(): Source/destination tensor must have same slice shapes. Destination "
                                         "shape %s, source shape %s, dim %d", op, CT_SHAPESTR(x), CT_SHAPESTR(src), d);
    for (int64_t j = 0, st = idx->ndim ? idx->strides[0] : 0; j < idx->numel; j++) {
        int64_t v = ((const int64_t *)ct__data(idx))[j * st];
        if (v < 0 || v >= size1(x, d))
            return ct__err(CT_ERR_INDEX, "%s(): index %lld is out of bounds for dimension %d with size %lld", op,
                           (long long)v, d, (long long)size1(x, d));
    }
    return idx;
}

/* index_add core: out = (x, or zeros of sizes if x is NULL) with src's slices along d
 * added at idx (1-D int64, in range); slices whose index equals skip (>= 0) are left out
 * (embedding's padding_idx). src has the destination's rank (>= 1 unless x is 0-dim). One
 * row-wise kernel (CT_OP_INDEX_ADD) on contiguous operands, no scatter index is built.
 * saved: 0 idx. i[0] dim, i[1] skip, i[2] whether x is an input; ivec: src's sizes. */
static int index_add_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *idx = ct__unpack(n, 0);
    if (!idx) return ct_last_status();
    int d = (int)n->i[0], si = n->i[2] ? 1 : 0;
    int64_t skip = n->i[1];
    ct_tensor *g = go[0];
    if (si && ct__node_needs(n, 0)) gi[0] = ct__pass(g);
    if (ct__node_needs(n, si)) {
        ct_tensor *g1 = g->ndim == 0 ? ct_reshape(g, 1, (const int64_t[]){1}) : g;
        ct_tensor *r = ct_index_select(g1, d, idx);
        if (r && skip >= 0) { /* skipped slices got no gradient */
            int64_t vs[CT_MAX_DIMS];
            for (int i = 0; i < r->ndim; i++) vs[i] = i == d ? idx->numel : 1;
            ct_tensor *keep = ct_reshape(ct_ne(idx, ct_scalar_tensor((double)skip, CT_INT64)), r->ndim, vs);
            r = ct_mul(r, ct_to_dtype(keep, r->dtype));
        }
        gi[si] = r ? ct_reshape(r, n->n_ivec, n->ivec) : NULL;
    }
    if ((si && ct__node_needs(n, 0) && !gi[0]) || (ct__node_needs(n, si) && !gi[si])) return ct_last_status();
    return 0;
}

static ct_tensor *index_add_core(const ct_tensor *x, int nd, const int64_t *sizes, ct_dtype dt, int d,
                                 const ct_tensor *idx, const ct_tensor *src, int64_t skip) {
    ct_tensor *ic = ct_contiguous(idx), *sc = ct_contiguous(ct_detach(src));
    if (!ic || !sc) return NULL;
    ct_tensor *out = x ? ct__empty_raw(nd, sizes, dt) : ct_zeros(nd, sizes, dt);
    if (!out) return NULL;
    if (x && ct__copy_raw(out, x)) {
        ct_release(out);
        return NULL;
    }
    if (!x) out = ct_retain(out); /* ct_zeros' result belongs to the scope */
    if (idx->numel > 0 && out->numel > 0) {
        ct_tensor *o1 = atleast1(out), *s1 = atleast1(sc);
        ct_kernel_args a = {.op = CT_OP_INDEX_ADD, .n_out = 1, .n_in = 2, .out = {o1}, .in = {ic, s1}, .i = {d, skip}};
        int rc = (o1 && s1) ? ct__dispatch(&a) : ct_last_status();
        release_all(2, (ct_tensor *[]){o1, s1});
        if (rc) {
            ct_release(out);
            return NULL;
        }
    }
    const ct_tensor *ins[2] = {x ? x : src, x ? src : NULL};
    if (ct__needs_grad(x ? 2 : 1, ins)) {
        ct_node *n = ct__node_new("IndexAddBackward0", index_add_backward, x ? 2 : 1);
        bool bad = !n || ct__node_set_next(n, 0, ins[0]) || (x && ct__node_set_next(n, 1, src)) ||
                   ct__save(n, ic) < 0 || ct__node_set_ivec(n, src->ndim, src->sizes);
        if (bad) {
            node_fail(n, out);
            return NULL;
        }
        n->i[0] = d;
        n->i[1] = skip;
        n->i[2] = x != NULL;
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

static ct_tensor *index_add_zeros(int nd, const int64_t *sizes, int d, const ct_tensor *idx, const ct_tensor *src,
                                  int64_t skip) {
    SCOPE_BEGIN();
    ct_tensor *i64 = ct_to_dtype(idx, CT_INT64);
    return scope_return(i64 ? index_add_core(NULL, nd, sizes, src->dtype, d, i64, src, skip) : NULL);
}

static ct_tensor *alpha_scaled(const ct_tensor *x, const ct_tensor *source, double alpha) {
    if (alpha == 1.0) return (ct_tensor *)source;
    ct_tensor *a = ct_dtype_is_floating(x->dtype) || ct_dtype_is_complex(x->dtype) ? ct_float(alpha)
                                                                                   : ct_int((int64_t)alpha);
    return ct_mul(source, a);
}

CT_API ct_tensor *ct_index_add(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *source,
                               double alpha) {
    CT_CHECK_ARG("index_add", x);
    CT_CHECK_ARG("index_add", index);
    CT_CHECK_ARG("index_add", source);
    int d = ct__wrap_dim("index_add", dim, x->ndim);
    if (d < 0) return NULL;
    SCOPE_BEGIN();
    ct_tensor *idx = index_src_check("index_add", x, d, index, source);
    if (!idx) return scope_return(NULL);
    const ct_tensor *src = alpha_scaled(x, source, alpha);
    if (!src) return scope_return(NULL);
    return scope_return(index_add_core(x, x->ndim, x->sizes, x->dtype, d, idx, src, -1));
}

/* Embedding's lookup with its own backward: the weight's gradient is one zeroed table
 * with the output gradient's rows added at the indices (skipping padding_idx, if >= 0). */
static int embedding_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *idx = ct__unpack(n, 0);
    if (!idx) return ct_last_status();
    gi[0] = index_add_zeros(n->n_ivec, n->ivec, 0, idx, go[0], n->i[0]);
    return gi[0] ? 0 : ct_last_status();
}

/* rows [idx->numel, D] of weight [num, D] at flat (1-D int64/int32); padding_idx < 0: none. */
ct_tensor *ct__embedding_rows(const ct_tensor *weight, const ct_tensor *flat, int64_t padding_idx);
ct_tensor *ct__embedding_rows(const ct_tensor *weight, const ct_tensor *flat, int64_t padding_idx) {
    SCOPE_BEGIN();
    ct_tensor *idx = index_vector("embedding", flat);
    ct_tensor *rows = idx ? ct_index_select(ct_detach(weight), 0, idx) : NULL;
    if (!rows) return scope_return(NULL);
    if (ct__needs_grad(1, (const ct_tensor *[]){weight})) {
        ct_node *n = ct__node_new("EmbeddingBackward0", embedding_backward, 1);
        if (!n || ct__node_set_next(n, 0, weight) || ct__save(n, idx) < 0 ||
            ct__node_set_ivec(n, weight->ndim, weight->sizes)) {
            if (n) ct__node_release(n);
            return scope_return(NULL);
        }
        n->i[0] = padding_idx;
        ct__set_history(rows, n, 0);
    }
    return scope_return(rows);
}

CT_API int ct_index_add_(ct_tensor *self, int dim, const ct_tensor *index, const ct_tensor *source, double alpha) {
    CT_CHECK_ARG_S("index_add_", self);
    CT_CHECK_ARG_S("index_add_", index);
    CT_CHECK_ARG_S("index_add_", source);
    /* no autograd and no aliasing: add into self's own rows */
    if (ct__is_contiguous(self) && self->numel > 0 && source->storage != self->storage &&
        index->storage != self->storage && !ct__needs_grad(2, (const ct_tensor *[]){self, source}) &&
        !(self->view_base && ct__needs_grad(1, (const ct_tensor *[]){self->view_base}))) {
        int d = ct__wrap_dim("index_add_", dim, self->ndim);
        if (d < 0) return ct_last_status();
        if (ct_scope_begin()) return ct_last_status();
        ct_tensor *idx = index_src_check("index_add_", self, d, index, source);
        const ct_tensor *src = idx ? alpha_scaled(self, source, alpha) : NULL;
        ct_tensor *ic = idx ? ct_contiguous(idx) : NULL, *sc = src ? ct_contiguous(src) : NULL;
        int rc = sc && ic ? 0 : ct_last_status();
        if (!rc && idx->numel > 0) {
            ct_tensor *o1 = atleast1(self), *s1 = atleast1(sc);
            ct_kernel_args a = {.op = CT_OP_INDEX_ADD, .n_out = 1, .n_in = 2, .out = {o1}, .in = {ic, s1}, .i = {d, -1}};
            rc = (o1 && s1) ? ct__dispatch(&a) : ct_last_status();
            release_all(2, (ct_tensor *[]){o1, s1});
        }
        if (!rc) ct__bump_version(self);
        return scope_return_status(rc);
    }
    return inplace_via("index_add_", self, mk_index_add, &(ip_args){self, index, source, dim, alpha});
}

CT_API ct_tensor *ct_index_copy(const ct_tensor *x, int dim, const ct_tensor *index, const ct_tensor *source) {
    CT_CHECK_ARG("index_copy", x);
    CT_CHECK_ARG("index_copy", index);
    CT_CHECK_ARG("index_copy", source);
    int d = ct__wrap_dim("index_copy", dim, x->ndim);
    if (d < 0) return NULL;
    SCOPE_BEGIN();
    ct_tensor *idx = index_src_check("index_copy", x, d, index, source);
    if (!idx) return scope_return(NULL);
    ct_tensor *s1 = source->ndim == 0 ? ct_reshape(source, 1, (const int64_t[]){1}) : (ct_tensor *)source;
    ct_tensor *x1 = x->ndim == 0 ? ct_reshape(x, 1, (const int64_t[]){1}) : (ct_tensor *)x;
    if (!s1 || !x1) return scope_return(NULL);
    ct_tensor *r = ct_scatter(x1, d, expand_index(idx, s1->ndim, d, s1->sizes), s1);
    if (r && x->ndim == 0) r = ct_reshape(r, 0, NULL);
    return scope_return(r);
}
CT_API int ct_index_copy_(ct_tensor *self, int dim, const ct_tensor *index, const ct_tensor *source) {
    return inplace_via("index_copy_", self, mk_index_copy, &(ip_args){self, index, source, dim, 1});
}

CT_API ct_tensor *ct_index_fill(const ct_tensor *x, int dim, const ct_tensor *index, double value) {
    CT_CHECK_ARG("index_fill", x);
    CT_CHECK_ARG("index_fill", index);
    int d = ct__wrap_dim("index_fill", dim, x->ndim);
    if (d < 0) return NULL;
    SCOPE_BEGIN();
    ct_tensor *idx = index_vector("index_fill", index);
    if (!idx) return scope_return(NULL);
    ct_tensor *x1 = x->ndim == 0 ? ct_reshape(x, 1, (const int64_t[]){1}) : (ct_tensor *)x;
    if (!x1) return scope_return(NULL);
    /* negative indices wrap, as in PyTorch */
    int64_t size = x1->sizes[d];
    ct_tensor *w = ct_where(ct_lt(idx, ct_int(0)), ct_add(idx, ct_int(size)), idx);
    if (!w) return scope_return(NULL);
    int64_t sizes[CT_MAX_DIMS];
    memcpy(sizes, x1->sizes, sizeof(int64_t) * (size_t)x1->ndim);
    sizes[d] = idx->numel;
    ct_tensor *r = ct_scatter_value(x1, d, expand_index(w, x1->ndim, d, sizes), value);
    if (r && x->ndim == 0) r = ct_reshape(r, 0, NULL);
    return scope_return(r);
}

/* ======================= advanced indexing ======================= */
#define ADV_MAX 5 /* index tensors per kernel call (kernel argument slots) */

/* Converts the user's index list into one int64 tensor or NULL per dim of *xp (bool
 * masks become their nonzero() columns; a 0-dim bool mask inserts a dim into *xp).
 * Entries are scope-owned; returns the count (== (*xp)->ndim) or -1. */
static int prep_indices(const char *op, const ct_tensor **xp, int n, const ct_tensor *const *in, ct_tensor **out) {
    const ct_tensor *x = *xp;
    int d = 0;
    for (int j = 0; j < n; j++) {
        const ct_tensor *t = in ? in[j] : NULL;
        if (!t) {
            if (d >= x->ndim) goto too_many;
            out[d++] = NULL;
            continue;
        }
        if (t->dtype == CT_BOOL || t->dtype == CT_UINT8) {
            if (t->ndim == 0) { /* x[True] / x[False]: a new dim of size 1 indexed by the mask */
                ct_tensor *u = ct_unsqueeze(x, d);
                if (!u) return -1;
                x = *xp = u;
                t = ct_reshape(t, 1, (const int64_t[]){1});
                if (!t) return -1;
            }
            if (d + t->ndim > x->ndim) goto too_many;
            for (int k = 0; k < t->ndim; k++)
                if (t->sizes[k] != x->sizes[d + k]) {
                    ct__errs(CT_ERR_INDEX, "%s: The shape of the mask %s at index %d does not match the shape of the "
                                           "indexed tensor %s at index %d",
                             op, CT_SHAPESTR(t), k, CT_SHAPESTR(x), d + k);
                    return -1;
                }
            ct_tensor *nz = ct_nonzero(t);
            if (!nz) return -1;
            for (int k = 0; k < t->ndim; k++)
                if (!(out[d++] = ct_select(nz, 1, k))) return -1;
            continue;
        }
        if (t->dtype != CT_INT64 && t->dtype != CT_INT32) {
            ct__errs(CT_ERR_INDEX, "%s: tensors used as indices must be long, int, byte or bool tensors (got %s)", op,
                     ct_dtype_name(t->dtype));
            return -1;
        }
        if (d >= x->ndim) goto too_many;
        if (!(out[d++] = ct_to_dtype(t, CT_INT64))) return -1;
    }
    while (d < x->ndim) out[d++] = NULL;
    return d;
too_many:
    ct__errs(CT_ERR_INDEX, "%s: too many indices for tensor of dimension %d", op, (*xp)->ndim);
    return -1;
}

typedef struct {
    int K, rnd;
    int64_t rsizes[CT_MAX_DIMS];
    int64_t xr_strides[CT_MAX_DIMS]; /* x's strides over the result shape (elements) */
    int64_t iv[3 * ADV_MAX];
    ct_tensor *idx_r[ADV_MAX];       /* unregistered aliases in the result shape */
} adv_geom;

static void adv_geom_free(adv_geom *g) {
    for (int k = 0; k < g->K; k++) ct_release(g->idx_r[k]);
}

/* Result geometry of x[idx...] (NumPy rules for adjacent / separated index dims). */
static int adv_geometry(const char *op, const ct_tensor *x, ct_tensor *const *idx, adv_geom *g) {
    memset(g, 0, sizeof *g);
    int nd = x->ndim, first = -1, last = -1, K = 0;
    int64_t bs[CT_MAX_DIMS];
    int bnd = 0;
    for (int d = 0; d < nd; d++) {
        if (!idx[d]) continue;
        if (first < 0) first = d;
        last = d;
        K++;
        int64_t tmp[CT_MAX_DIMS];
        int r = ct__broadcast_shapes(op, bnd, bs, idx[d]->ndim, idx[d]->sizes, tmp);
        if (r < 0) {
            ct__errs(CT_ERR_INDEX, "%s: shape mismatch: indexing tensors could not be broadcast together with shapes %s "
                                   "and %s", op, CT_SIZESSTR(bnd, bs), CT_SHAPESTR(idx[d]));
            return -1;
        }
        bnd = r;
        memcpy(bs, tmp, sizeof(int64_t) * (size_t)r);
    }
    if (K > ADV_MAX)
        return ct__errs(CT_ERR_ARG, "%s: at most %d index tensors are supported (got %d)", op, ADV_MAX, K);
    bool adjacent = K > 0 && (last - first + 1 == K);
    int bstart = adjacent ? first : 0; /* where the broadcast dims go in the result */
    int r = 0;
    int64_t ist[ADV_MAX][CT_MAX_DIMS];
    memset(ist, 0, sizeof ist);
    int map_nonidx = 0;
    for (int d = 0; d < nd && r < bstart; d++) /* leading non-indexed dims (adjacent case) */
        if (!idx[d]) {
            g->rsizes[r] = x->sizes[d];
            g->xr_strides[r++] = x->strides[d];
            map_nonidx = d + 1;
        }
    for (int b = 0; b < bnd; b++) {
        g->rsizes[r] = bs[b];
        g->xr_strides[r] = 0;
        int k = 0;
        for (int d = 0; d < nd; d++) {
            if (!idx[d]) continue;
            const ct_tensor *t = idx[d];
            int td = b - (bnd - t->ndim);
            ist[k][r] = (td >= 0 && t->sizes[td] != 1) ? t->strides[td] : 0;
            k++;
        }
        r++;
    }
    for (int d = map_nonidx; d < nd; d++)
        if (!idx[d]) {
            g->rsizes[r] = x->sizes[d];
            g->xr_strides[r++] = x->strides[d];
        }
    g->rnd = r;
    g->K = K;
    int k = 0;
    for (int d = 0; d < nd; d++) {
        if (!idx[d]) continue;
        g->iv[2 * k] = x->sizes[d];
        g->iv[2 * k + 1] = x->strides[d] * (int64_t)ct_dtype_size(x->dtype);
        g->iv[2 * K + k] = d;
        g->idx_r[k] = ct__alias(idx[d], r, g->rsizes, ist[k], idx[d]->offset);
        if (!g->idx_r[k]) {
            g->K = k;
            adv_geom_free(g);
            return ct_last_status();
        }
        k++;
    }
    return 0;
}

/* full index list (NULL = slice) for backward: saved slots 0..K-1, dims in ivec after sizes */
static int unpack_indices(ct_node *n, int nd, ct_tensor **list) {
    int K = (int)n->i[0];
    for (int d = 0; d < nd; d++) list[d] = NULL;
    for (int k = 0; k < K; k++) {
        ct_tensor *t = ct__unpack(n, k);
        if (!t) return -1;
        list[n->ivec[nd + k]] = t;
    }
    return 0;
}

static int save_indices(ct_node *n, const ct_tensor *x, ct_tensor *const *idx) {
    int64_t v[2 * CT_MAX_DIMS];
    int nd = x->ndim, K = 0;
    memcpy(v, x->sizes, sizeof(int64_t) * (size_t)nd);
    for (int d = 0; d < nd; d++)
        if (idx[d]) {
            if (ct__save(n, idx[d]) < 0) return -1;
            v[nd + K++] = d;
        }
    n->i[0] = K;
    n->i[1] = nd;
    return ct__node_set_ivec(n, nd + K, v);
}

static int index_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int nd = (int)n->i[1];
    ct_tensor *list[CT_MAX_DIMS];
    if (unpack_indices(n, nd, list)) return ct_last_status();
    ct_tensor *z = ct_zeros(nd, n->ivec, go[0]->dtype);
    gi[0] = ct_index_put(z, nd, (const ct_tensor *const *)list, go[0], true);
    return gi[0] ? 0 : ct_last_status();
}

CT_API ct_tensor *ct_index(const ct_tensor *x, int n, const ct_tensor *const *indices) {
    CT_CHECK_ARG("index", x);
    if (n < 0 || (n > 0 && !indices)) return ct__err(CT_ERR_ARG, "index: bad index list");
    SCOPE_BEGIN();
    const ct_tensor *xx = x;
    ct_tensor *idx[CT_MAX_DIMS + 1];
    if (n > CT_MAX_DIMS + 1 || prep_indices("index", &xx, n, indices, idx) < 0) {
        if (n > CT_MAX_DIMS + 1) ct__err(CT_ERR_INDEX, "index: too many indices for tensor of dimension %d", x->ndim);
        return scope_return(NULL);
    }
    adv_geom g;
    if (adv_geometry("index", xx, idx, &g)) return scope_return(NULL);
    ct_tensor *out = NULL;
    if (g.K == 0) { /* only slices: a copy-free alias, as x[:] */
        adv_geom_free(&g);
        return scope_return(ct_as_strided(xx, xx->ndim, xx->sizes, xx->strides, xx->offset));
    }
    out = ct__empty_raw(g.rnd, g.rsizes, xx->dtype);
    ct_tensor *xr = out ? ct__alias(xx, g.rnd, g.rsizes, g.xr_strides, xx->offset) : NULL;
    int rc = xr ? 0 : ct_last_status();
    if (!rc && out->numel > 0) {
        ct_kernel_args a = {.op = CT_OP_INDEX, .n_out = 1, .n_in = 1 + g.K, .out = {out}, .in = {xr},
                            .i = {g.K}, .iv = g.iv, .n_iv = 3 * g.K};
        for (int k = 0; k < g.K; k++) a.in[1 + k] = g.idx_r[k];
        rc = ct__dispatch(&a);
    }
    ct_release(xr);
    adv_geom_free(&g);
    if (rc) {
        ct_release(out);
        return scope_return(NULL);
    }
    if (ct__needs_grad(1, (const ct_tensor *[]){xx})) {
        ct_node *nd = ct__node_new("IndexBackward0", index_backward, 1);
        if (!nd || ct__node_set_next(nd, 0, xx) || save_indices(nd, xx, idx)) {
            node_fail(nd, out);
            return scope_return(NULL);
        }
        ct__set_history(out, nd, 0);
    }
    return scope_return(ct__ret(out));
}

static int index_put_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int nd = (int)n->i[1];
    bool accumulate = n->i[2];
    ct_tensor *list[CT_MAX_DIMS];
    if (unpack_indices(n, nd, list)) return ct_last_status();
    if (ct__node_needs(n, 0)) {
        gi[0] = accumulate ? ct__pass(go[0])
                           : ct_index_put(go[0], nd, (const ct_tensor *const *)list,
                                          ct_zeros(0, NULL, go[0]->dtype), false);
        if (!gi[0]) return ct_last_status();
    }
    if (ct__node_needs(n, 1)) {
        gi[1] = ct_index(go[0], nd, (const ct_tensor *const *)list);
        if (!gi[1]) return ct_last_status();
    }
    return 0;
}

CT_API ct_tensor *ct_index_put(const ct_tensor *x, int n, const ct_tensor *const *indices, const ct_tensor *values,
                               bool accumulate) {
    CT_CHECK_ARG("index_put", x);
    CT_CHECK_ARG("index_put", values);
    if (n < 0 || (n > 0 && !indices)) return ct__err(CT_ERR_ARG, "index_put: bad index list");
    if (values->dtype != x->dtype)
        return ct__err(CT_ERR_DTYPE, "Index put requires the source and destination dtypes match, got %s for the "
                                     "destination and %s for the source.",
                       ct_dtype_name(x->dtype), ct_dtype_name(values->dtype));
    for (int j = 0; j < n; j++)
        if (indices[j] && indices[j]->ndim == 0 && (indices[j]->dtype == CT_BOOL || indices[j]->dtype == CT_UINT8))
            return ct__err(CT_ERR_ARG, "index_put: 0-dim boolean indices are not supported");
    SCOPE_BEGIN();
    const ct_tensor *xx = x;
    ct_tensor *idx[CT_MAX_DIMS + 1];
    if (n > CT_MAX_DIMS + 1) return scope_return(ct__err(CT_ERR_INDEX, "index_put: too many indices"));
    if (prep_indices("index_put", &xx, n, indices, idx) < 0) return scope_return(NULL);
    ct_tensor *out = ct__empty_raw(xx->ndim, xx->sizes, xx->dtype), *dr = NULL, *vr = NULL;
    if (!out || ct__copy_raw(out, xx)) {
        ct_release(out);
        return scope_return(NULL);
    }
    adv_geom g;
    if (adv_geometry("index_put", out, idx, &g)) {
        ct_release(out);
        return scope_return(NULL);
    }
    int rc = 0;
    /* values broadcast to the indexing result's shape */
    int64_t vst[CT_MAX_DIMS];
    if (values->ndim > g.rnd) rc = -1;
    for (int r = 0; !rc && r < g.rnd; r++) {
        int vd = r - (g.rnd - values->ndim);
        if (vd < 0) vst[r] = 0;
        else if (values->sizes[vd] == g.rsizes[r]) vst[r] = values->strides[vd];
        else if (values->sizes[vd] == 1) vst[r] = 0;
        else rc = -1;
    }
    if (rc) {
        adv_geom_free(&g);
        ct_release(out);
        return scope_return(ct__err(CT_ERR_SHAPE, "shape mismatch: value tensor of shape %s cannot be broadcast to "
                                                  "indexing result of shape %s",
                                    CT_SHAPESTR(values), CT_SIZESSTR(g.rnd, g.rsizes)));
    }
    if (g.K > 0 && ct__prod(g.rnd, g.rsizes) > 0) {
        dr = ct__alias(out, g.rnd, g.rsizes, g.xr_strides, out->offset);
        vr = ct__alias(values, g.rnd, g.rsizes, vst, values->offset);
        if (!dr || !vr) rc = ct_last_status();
        else {
            ct_kernel_args a = {.op = CT_OP_INDEX_PUT, .n_out = 1, .n_in = 1 + g.K, .out = {dr}, .in = {vr},
                                .i = {g.K, accumulate}, .iv = g.iv, .n_iv = 3 * g.K};
            for (int k = 0; k < g.K; k++) a.in[1 + k] = g.idx_r[k];
            rc = ct__dispatch(&a);
        }
    }
    ct_release(dr);
    ct_release(vr);
    adv_geom_free(&g);
    if (rc) {
        ct_release(out);
        return scope_return(NULL);
    }
    if (ct__needs_grad(2, (const ct_tensor *[]){xx, values})) {
        ct_node *nd = ct__node_new("IndexPutBackward0", index_put_backward, 2);
        if (!nd || ct__node_set_next(nd, 0, xx) || ct__node_set_next(nd, 1, values) || save_indices(nd, xx, idx)) {
            node_fail(nd, out);
            return scope_return(NULL);
        }
        nd->i[2] = accumulate;
        ct__set_history(out, nd, 0);
    }
    return scope_return(ct__ret(out));
}

typedef struct {
    ct_tensor *self;
    int n;
    const ct_tensor *const *indices;
    const ct_tensor *values;
    bool accumulate;
} iput_args;
static ct_tensor *mk_index_put(const void *c) {
    const iput_args *p = c;
    return ct_index_put(p->self, p->n, p->indices, p->values, p->accumulate);
}
CT_API int ct_index_put_(ct_tensor *self, int n, const ct_tensor *const *indices, const ct_tensor *values,
                         bool accumulate) {
    return inplace_via("index_put_", self, mk_index_put, &(iput_args){self, n, indices, values, accumulate});
}

/* ======================= masked ops ======================= */
static int check_mask(const char *op, const ct_tensor *mask) {
    if (mask->dtype != CT_BOOL)
        return ct__errs(CT_ERR_DTYPE, "%s only supports boolean masks, but got mask with dtype %s", op,
                        ct_dtype_name(mask->dtype));
    return 0;
}

CT_API ct_tensor *ct_masked_fill(const ct_tensor *x, const ct_tensor *mask, const ct_tensor *value) {
    CT_CHECK_ARG("masked_fill", x);
    CT_CHECK_ARG("masked_fill", mask);
    CT_CHECK_ARG("masked_fill", value);
    if (check_mask("masked_fill_", mask)) return NULL;
    if (value->ndim != 0)
        return ct__err(CT_ERR_ARG, "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with %d "
                                   "dimension(s).", value->ndim);
    SCOPE_BEGIN();
    return scope_return(ct_where(mask, ct_to_dtype(value, x->dtype), x));
}
typedef struct {
    ct_tensor *self;
    const ct_tensor *mask, *value;
} mf_args;
static ct_tensor *mk_masked_fill(const void *c) {
    const mf_args *p = c;
    return ct_masked_fill(p->self, p->mask, p->value);
}
CT_API int ct_masked_fill_(ct_tensor *self, const ct_tensor *mask, const ct_tensor *value) {
    return inplace_via("masked_fill_", self, mk_masked_fill, &(mf_args){self, mask, value});
}

/* x and mask broadcast together; scope-owned views */
static int broadcast_pair(const char *op, const ct_tensor *x, const ct_tensor *mask, ct_tensor **xe, ct_tensor **me) {
    int64_t bs[CT_MAX_DIMS];
    int nd = ct__broadcast_shapes(op, x->ndim, x->sizes, mask->ndim, mask->sizes, bs);
    if (nd < 0) return -1;
    *xe = ct_expand(x, nd, bs);
    *me = ct_expand(mask, nd, bs);
    return (*xe && *me) ? 0 : -1;
}

CT_API ct_tensor *ct_masked_select(const ct_tensor *x, const ct_tensor *mask) {
    CT_CHECK_ARG("masked_select", x);
    CT_CHECK_ARG("masked_select", mask);
    if (check_mask("masked_select:", mask)) return NULL;
    SCOPE_BEGIN();
    ct_tensor *xe, *me;
    if (broadcast_pair("masked_select", x, mask, &xe, &me)) return scope_return(NULL);
    if (xe->ndim == 0) {
        xe = ct_reshape(xe, 1, (const int64_t[]){1});
        me = ct_reshape(me, 1, (const int64_t[]){1});
    }
    return scope_return(ct_index(xe, 1, (const ct_tensor *[]){me}));
}

CT_API ct_tensor *ct_masked_scatter(const ct_tensor *x, const ct_tensor *mask, const ct_tensor *source) {
    CT_CHECK_ARG("masked_scatter", x);
    CT_CHECK_ARG("masked_scatter", mask);
    CT_CHECK_ARG("masked_scatter", source);
    if (check_mask("masked_scatter_", mask)) return NULL;
    if (source->dtype != x->dtype)
        return ct__err(CT_ERR_DTYPE, "masked_scatter_: expected self and source to have same dtypes but got %s and %s",
                       ct_dtype_name(x->dtype), ct_dtype_name(source->dtype));
    SCOPE_BEGIN();
    ct_tensor *xe, *me;
    if (broadcast_pair("masked_scatter", x, mask, &xe, &me)) return scope_return(NULL);
    if (xe->ndim == 0) {
        xe = ct_reshape(xe, 1, (const int64_t[]){1});
        me = ct_reshape(me, 1, (const int64_t[]){1});
    }
    ct_tensor *nz = ct_nonzero(me);
    if (!nz) return scope_return(NULL);
    int64_t cnt = nz->sizes[0];
    if (cnt > source->numel)
        return scope_return(ct__err(CT_ERR_SHAPE, "masked_scatter: Number of elements of source (%lld) < number of "
                                                  "ones in mask (%lld)", (long long)source->numel, (long long)cnt));
    ct_tensor *src = ct_narrow(ct_reshape(source, 1, (const int64_t[]){-1}), 0, 0, cnt);
    ct_tensor *r = ct_index_put(xe, 1, (const ct_tensor *[]){me}, src, false);
    if (r && x->ndim == 0 && mask->ndim == 0) r = ct_reshape(r, 0, NULL);
    return scope_return(r);
}

CT_API ct_tensor *ct_nonzero(const ct_tensor *x) {
    CT_CHECK_ARG("nonzero", x);
    ct_tensor *cnt = ct__empty_raw(0, NULL, CT_INT64);
    if (!cnt) return NULL;
    ct_kernel_args a = {.op = CT_OP_NONZERO, .n_out = 1, .n_in = 1, .out = {cnt}, .in = {x}, .i = {0}};
    if (ct__dispatch(&a)) {
        ct_release(cnt);
        return NULL;
    }
    int64_t n = *(int64_t *)ct__data(cnt);
    ct_release(cnt);
    ct_tensor *out = ct__empty_raw(2, (const int64_t[]){n, x->ndim}, CT_INT64);
    if (!out) return NULL;
    a.out[0] = out;
    a.i[0] = 1;
    if (n > 0 && x->ndim > 0 && ct__dispatch(&a)) {
        ct_release(out);
        return NULL;
    }
    return ct__ret(out);
}

CT_API ct_tensor *ct_take(const ct_tensor *x, const ct_tensor *index) {
    CT_CHECK_ARG("take", x);
    CT_CHECK_ARG("take", index);
    if (index->dtype != CT_INT64)
        return ct__err(CT_ERR_DTYPE, "take(): Expected a long tensor for index, but got %s", ct_dtype_name(index->dtype));
    SCOPE_BEGIN();
    ct_tensor *flat = ct_reshape(x, 1, (const int64_t[]){-1});
    if (!flat) return scope_return(NULL);
    if (flat->numel == 0 && index->numel > 0)
        return scope_return(ct__err(CT_ERR_INDEX, "take(): tried to take from an empty tensor"));
    return scope_return(ct_index(flat, 1, (const ct_tensor *[]){index}));
}

CT_API ct_tensor *ct_take_along_dim(const ct_tensor *x, const ct_tensor *index, int dim) {
    CT_CHECK_ARG("take_along_dim", x);
    CT_CHECK_ARG("take_along_dim", index);
    if (index->dtype != CT_INT64)
        return ct__err(CT_ERR_DTYPE, "torch.take_along_dim(): dtype of indices should be Long but got %s",
                       ct_dtype_name(index->dtype));
    SCOPE_BEGIN();
    if (dim == CT_ALL_DIMS) {
        ct_tensor *fx = ct_reshape(x, 1, (const int64_t[]){-1}), *fi = ct_reshape(index, 1, (const int64_t[]){-1});
        if (!fx || !fi) return scope_return(NULL);
        return scope_return(ct_gather(fx, 0, fi));
    }
    if (x->ndim != index->ndim)
        return scope_return(ct__err(CT_ERR_SHAPE, "torch.take_along_dim(): input and indices should have the same "
                                                  "number of dimensions, but got %d dimensions for input, and %d "
                                                  "dimensions for indices", x->ndim, index->ndim));
    int d = ct__wrap_dim("take_along_dim", dim, x->ndim);
    if (d < 0) return scope_return(NULL);
    int nd = x->ndim;
    int64_t xs[CT_MAX_DIMS], is[CT_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        if (i == d) {
            xs[i] = x->sizes[i];
            is[i] = index->sizes[i];
            continue;
        }
        int64_t a = x->sizes[i], b = index->sizes[i];
        if (a != b && a != 1 && b != 1)
            return scope_return(ct__err(CT_ERR_SHAPE, "take_along_dim: The size of tensor a (%lld) must match the size "
                                                      "of tensor b (%lld) at non-singleton dimension %d",
                                        (long long)a, (long long)b, i));
        xs[i] = is[i] = a == 1 ? b : a;
    }
    return scope_return(ct_gather(ct_expand(x, nd, xs), d, ct_expand(index, nd, is)));
}
