/* Autograd: graph nodes, saved tensors, the backward engine, hooks, grad mode,
 * in-place bookkeeping, and gradcheck. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"

static _Thread_local CT_TLS_HOT bool grad_disabled;
static pthread_mutex_t acc_lock = PTHREAD_MUTEX_INITIALIZER; /* guards leaves' grad_acc caches */
static atomic_ullong next_seq;
static atomic_int next_hook_id = 1;

CT_API bool ct_is_grad_enabled(void) { return !grad_disabled; }
CT_API bool ct_set_grad_enabled(bool enabled) {
    bool prev = !grad_disabled;
    grad_disabled = !enabled;
    return prev;
}
bool ct__grad_enabled(void) { return !grad_disabled; }
bool ct__needs_grad(int n, const ct_tensor *const *ts) {
    if (grad_disabled) return false;
    bool any = false;
    for (int i = 0; i < n; i++) {
        ct_tensor *t = (ct_tensor *)ts[i];
        if (t && t->view_base && t->hist_version != t->storage->graph_version) ct__view_refresh(t);
        any |= ct__tensor_requires_grad(t);
    }
    return any;
}

/* ---- nodes ---- */
static void meta_free(ct_meta *m) {
    if (m->sizes != m->small) free(m->sizes);
    m->sizes = NULL;
}

size_t ct__node_size(void) { return sizeof(ct_node); }

ct_node *ct__node_new(const char *name, ct_backward_fn fn, int n_inputs) {
    ct_node *n = ct__hdr_get(CT_HDR_NODE);
    if (!n) return ct__err(CT_ERR_OOM, "out of memory recording %s", name);
    /* field by field, not a memset of the ~550 bytes (a `rep stos` whose start-up was a
     * tenth of a recorded add): the metas are marked empty, the edges in use cleared */
    n->n_saved = n->cap_saved = 0, n->saved = NULL, n->ivec = NULL, n->n_ivec = 0;
    for (int k = 0; k < CT_NODE_I; k++) n->i[k] = 0;
    for (int k = 0; k < CT_NODE_D; k++) n->d[k] = 0;
    ct_meta *metas[3] = {&n->in_meta[0], &n->in_meta[1], &n->out_meta_small[0]};
    for (int k = 0; k < 3; k++) metas[k]->dtype = 0, metas[k]->ndim = 0, metas[k]->sizes = NULL;
    n->ctx = NULL, n->ctx_free = NULL, n->keep_missing = false, n->leaf = NULL, n->pre_hooks = NULL;
    atomic_init(&n->refcount, 1);
    n->name = name;
    n->backward = fn;
    n->seq = atomic_fetch_add(&next_seq, 1);
    n->n_next = n_inputs;
    n->next = NULL;
    if (n_inputs > 4) {
        n->next = calloc((size_t)n_inputs, sizeof *n->next);
        if (!n->next) { ct__hdr_put(CT_HDR_NODE, n); return ct__err(CT_ERR_OOM, "out of memory recording %s", name); }
    } else if (n_inputs) {
        n->next = n->next_small;
        memset(n->next_small, 0, sizeof n->next_small[0] * (size_t)n_inputs);
    }
    n->n_outputs = 1;
    n->out_meta = n->out_meta_small;
    return n;
}

int ct__node_set_outputs(ct_node *n, int k) {
    ct_meta *m = calloc((size_t)k, sizeof *m);
    if (!m) return ct__errs(CT_ERR_OOM, "out of memory recording %s", n->name);
    for (int i = 0; i < n->n_outputs; i++) meta_free(&n->out_meta[i]);
    if (n->out_meta != n->out_meta_small) free(n->out_meta);
    n->out_meta = m;
    n->n_outputs = k;
    return 0;
}

void ct__node_retain(ct_node *n) {
    if (n) atomic_fetch_add(&n->refcount, 1);
}

static void release_saved(ct_node *n) {
    for (int i = 0; i < n->n_saved; i++) ct_release(n->saved[i].t);
    free(n->saved);
    n->saved = NULL;
    n->n_saved = n->cap_saved = 0;
}

/* What a node owns besides its edges, and the node itself. */
static void node_free(ct_node *n) {
    release_saved(n);
    for (ct_pre_hook *h = n->pre_hooks; h;) { ct_pre_hook *nx = h->next; free(h); h = nx; }
    for (int i = 0; i < n->n_outputs; i++) meta_free(&n->out_meta[i]);
    if (n->out_meta != n->out_meta_small) free(n->out_meta);
    meta_free(&n->in_meta[0]);
    meta_free(&n->in_meta[1]);
    free(n->ivec);
    if (n->ctx_free) n->ctx_free(n->ctx);
    if (n->next != n->next_small) free(n->next);
    ct__hdr_put(CT_HDR_NODE, n);
}

static int accumulate_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi);

/* Drops a reference to a leaf's AccumulateGrad node. When the last graph reference goes,
 * the node is parked in the leaf's cache (it stops holding the leaf, so no cycle) for
 * the next op on the leaf to take up again, instead of freed and made anew for every
 * op: on a small op with autograd, the two leaves' nodes were a third of its cost. The
 * count of these nodes reaches 0 and leaves it only under acc_lock (grad_accumulator
 * revives under it too), so a node is parked once per time it is taken up. The leaf
 * frees a parked node when it goes (ct__autograd_tensor_freed). */
static void release_accumulator(ct_node *n) {
    ct_tensor *drop = NULL;
    bool free_it = false;
    pthread_mutex_lock(&acc_lock);
    if (atomic_fetch_sub(&n->refcount, 1) == 1) {
        drop = n->leaf;
        n->leaf = NULL;
        free_it = !drop || drop->grad_acc != n; /* not in a cache: nobody will take it up */
    }
    pthread_mutex_unlock(&acc_lock);
    ct_release(drop); /* may free the leaf, and with it the parked node */
    if (free_it) node_free(n);
}

/* Frees nodes iteratively: a long chain of nodes must not recurse once per node. */
void ct__node_release(ct_node *n) {
    ct_node *local[32], **stack = local; /* the heap only for wide or deep graphs */
    size_t sn = 0, scap = 32;
    while (n || sn) {
        if (!n) n = stack[--sn];
        if (n->backward == accumulate_backward) { release_accumulator(n); n = NULL; continue; }
        if (atomic_fetch_sub(&n->refcount, 1) != 1) { n = NULL; continue; }
        for (int i = 0; i < n->n_next; i++) {
            ct_node *c = n->next[i].node;
            if (!c) continue;
            if (sn == scap) {
                size_t nc = scap ? scap * 2 : 16;
                ct_node **ns = stack == local ? malloc(nc * sizeof *ns) : realloc(stack, nc * sizeof *ns);
                if (!ns) { ct__node_release(c); continue; } /* fall back to recursion */
                if (stack == local) memcpy(ns, local, sn * sizeof *ns);
                stack = ns; scap = nc;
            }
            stack[sn++] = c;
        }
        node_free(n);
        n = NULL;
    }
    if (stack != local) free(stack);
}

/* The AccumulateGrad node of a leaf, created on first use and cached: held by the
 * graphs that reach it (it holds the leaf meanwhile), parked in the leaf when none does
 * (see release_accumulator). The cache is shared between threads recording ops on the
 * same leaf (forward passes over shared parameters): guarded by a lock, under which a
 * parked node (count 0) is taken up again. */
static ct_node *grad_accumulator(ct_tensor *leaf) {
    pthread_mutex_lock(&acc_lock);
    ct_node *n = leaf->grad_acc;
    if (n) {
        if (atomic_fetch_add(&n->refcount, 1) == 0 && !n->leaf) n->leaf = ct_retain(leaf); /* parked: revive */
        pthread_mutex_unlock(&acc_lock);
        return n;
    }
    n = ct__node_new("AccumulateGrad", accumulate_backward, 0);
    if (n) {
        n->leaf = ct_retain(leaf);
        leaf->grad_acc = n;
    }
    pthread_mutex_unlock(&acc_lock);
    return n;
}

int ct__node_set_next(ct_node *n, int i, const ct_tensor *t) {
    if (!t || !ct__tensor_requires_grad(t)) return 0;
    ct_tensor *tt = (ct_tensor *)t;
    if (tt->view_base && tt->storage->graph_version != tt->hist_version) {
        int rc = ct__view_refresh(tt);
        if (rc) return rc;
    }
    if (tt->grad_fn) {
        if (tt->storage->graph_version != tt->hist_version)
            return ct__errs(CT_ERR_AUTOGRAD,
                            "%s: a tensor of shape %s that is a view (output of %s) was modified in place through "
                            "another view; using it in a differentiable op is not supported (clone it first)",
                            n->name, CT_SHAPESTR(t), tt->grad_fn->name);
        ct__node_retain(tt->grad_fn);
        n->next[i].node = tt->grad_fn;
        n->next[i].input_nr = tt->output_nr;
    } else {
        ct_node *acc = grad_accumulator(tt);
        if (!acc) return ct_last_status();
        n->next[i].node = acc;
        n->next[i].input_nr = 0;
    }
    return 0;
}

static int push_saved(ct_node *n, ct_saved s) {
    if (n->n_saved == n->cap_saved) {
        int nc = n->cap_saved ? n->cap_saved * 2 : 4;
        ct_saved *ns = realloc(n->saved, sizeof *ns * (size_t)nc);
        if (!ns) { ct_release(s.t); return ct__errs(CT_ERR_OOM, "out of memory saving a tensor for %s", n->name), -1; }
        n->saved = ns; n->cap_saved = nc;
    }
    n->saved[n->n_saved] = s;
    return n->n_saved++;
}

int ct__save(ct_node *n, const ct_tensor *t) {
    if (!t) return -1;
    ct_saved s = {.t = ct_retain((ct_tensor *)t), .version = t->storage->version};
    return push_saved(n, s);
}

int ct__save_if(ct_node *n, const ct_tensor *t, bool needed) {
    if (needed) return ct__save(n, t);
    return push_saved(n, (ct_saved){0}); /* keeps the slot numbers of the saves after it */
}

int ct__save_output(ct_node *n, const ct_tensor *out, int output_nr) {
    ct_tensor *alias = ct__alias(out, out->ndim, out->sizes, out->strides, out->offset);
    if (!alias) return -1;
    ct_saved s = {.t = alias, .version = out->storage->version, .is_output = true, .output_nr = output_nr};
    return push_saved(n, s);
}

ct_tensor *ct__unpack(ct_node *n, int slot) {
    if (slot < 0 || slot >= n->n_saved || !n->saved)
        return ct__err(CT_ERR_AUTOGRAD,
                       "Trying to backward through the graph a second time (or directly access saved tensors after "
                       "they have already been freed). Saved intermediate values of the graph are freed when you "
                       "call backward(). Specify retain_graph=True if you need to backward through the graph a "
                       "second time.");
    ct_saved *s = &n->saved[slot];
    if (!s->t) return ct__err(CT_ERR_AUTOGRAD, "%s: saved tensor %d was not kept (not needed when recorded)", n->name, slot);
    if (s->t->storage->version != s->version)
        return ct__err(CT_ERR_AUTOGRAD,
                       "one of the variables needed for gradient computation has been modified by an inplace "
                       "operation: [%s %s], which is %s of %s, is at version %lld; expected version %lld instead.",
                       ct_dtype_name(s->t->dtype), CT_SHAPESTR(s->t), s->is_output ? "output" : "an input", n->name,
                       (long long)s->t->storage->version, (long long)s->version);
    if (!s->is_output) return s->t;
    /* re-attach the saved output to this node so create_graph sees its history */
    ct_tensor *t = ct__alias(s->t, s->t->ndim, s->t->sizes, s->t->strides, s->t->offset);
    if (!t) return NULL;
    if (!grad_disabled) {
        ct__node_retain(n);
        t->grad_fn = n;
        t->output_nr = s->output_nr;
        t->hist_version = t->storage->graph_version;
    }
    return ct__ret(t);
}

int ct__node_set_ivec(ct_node *n, int count, const int64_t *v) {
    free(n->ivec);
    n->ivec = NULL;
    n->n_ivec = count;
    if (count == 0) return 0;
    n->ivec = malloc(sizeof(int64_t) * (size_t)count);
    if (!n->ivec) return ct__errs(CT_ERR_OOM, "out of memory recording %s", n->name);
    memcpy(n->ivec, v, sizeof(int64_t) * (size_t)count);
    return 0;
}

static int set_meta(ct_meta *m, const ct_tensor *t) {
    meta_free(m);
    m->dtype = t->dtype;
    m->ndim = t->ndim;
    if (t->ndim) {
        m->sizes = t->ndim <= CT_INLINE_DIMS ? m->small : malloc(sizeof(int64_t) * (size_t)t->ndim);
        if (!m->sizes) return ct__errs(CT_ERR_OOM, "out of memory recording a shape");
        memcpy(m->sizes, t->sizes, sizeof(int64_t) * (size_t)t->ndim);
    }
    return 0;
}

int ct__node_save_meta(ct_node *n, int i, const ct_tensor *t) { return set_meta(&n->in_meta[i], t); }

void ct__set_history(ct_tensor *out, ct_node *n, int output_nr) {
    if (output_nr < n->n_outputs) set_meta(&n->out_meta[output_nr], out);
    if (out->grad_fn) ct__node_release(out->grad_fn);
    out->grad_fn = n;
    out->output_nr = output_nr;
    out->requires_grad = false;
    out->hist_version = out->storage->graph_version;
}

void ct__set_history_multi(ct_tensor **outs, int n_outs, ct_node *n) {
    for (int i = 0; i < n_outs; i++) {
        if (!outs[i]) continue;
        ct__node_retain(n);
        ct__set_history(outs[i], n, i);
    }
    ct__node_release(n);
}

void ct__autograd_tensor_freed(ct_tensor *t) {
    if (t->grad_acc) {
        /* only a parked node can be left: a node in use holds t */
        pthread_mutex_lock(&acc_lock);
        ct_node *n = t->grad_acc;
        t->grad_acc = NULL;
        pthread_mutex_unlock(&acc_lock);
        if (n && atomic_load(&n->refcount) == 0 && !n->leaf) node_free(n);
    }
    if (t->grad_fn) {
        for (ct_pre_hook *h = t->grad_fn->pre_hooks; h; h = h->next)
            if (h->retain_to == t) h->retain_to = NULL;
        ct__node_release(t->grad_fn);
    }
    ct_release(t->grad);
    ct_release(t->view_base);
    for (ct_hook_entry *h = t->hooks; h;) { ct_hook_entry *nx = h->next; free(h); h = nx; }
}

/* ---- public tensor-level autograd API ---- */
CT_API int ct_set_requires_grad(ct_tensor *t, bool rg) {
    CT_CHECK_ARG_S("requires_grad_", t);
    if (t->grad_fn) {
        if (!rg)
            return ct__errs(CT_ERR_AUTOGRAD,
                            "requires_grad_: you can only change requires_grad flags of leaf variables. If you want "
                            "to use a computed variable in a subgraph that doesn't require differentiation use "
                            "var_no_grad = var.detach().");
        return 0;
    }
    if (rg && !ct_dtype_is_floating(t->dtype) && !ct_dtype_is_complex(t->dtype))
        return ct__errs(CT_ERR_DTYPE, "requires_grad_: only Tensors of floating point and complex dtype can require "
                                      "gradients (got %s)", ct_dtype_name(t->dtype));
    t->requires_grad = rg;
    return 0;
}
CT_API bool ct_requires_grad(const ct_tensor *t) { return ct__tensor_requires_grad(t); }
CT_API bool ct_is_leaf(const ct_tensor *t) { return t && !t->grad_fn; }
CT_API ct_tensor *ct_grad(const ct_tensor *t) { return t ? t->grad : NULL; }
CT_API int ct_set_grad(ct_tensor *t, ct_tensor *g) {
    CT_CHECK_ARG_S("set_grad", t);
    if (g && (g->dtype != t->dtype || !ct__same_sizes(g->ndim, g->sizes, t->ndim, t->sizes)))
        return ct__errs(CT_ERR_SHAPE, "set_grad: assigned grad has data of a different type or size (%s %s vs %s %s)",
                        ct_dtype_name(g->dtype), CT_SHAPESTR(g), ct_dtype_name(t->dtype), CT_SHAPESTR(t));
    ct_retain(g);
    ct_release(t->grad);
    t->grad = g;
    return 0;
}
CT_API const char *ct_grad_fn_name(const ct_tensor *t) { return t && t->grad_fn ? t->grad_fn->name : NULL; }

CT_API int ct_retain_grad(ct_tensor *t) {
    CT_CHECK_ARG_S("retain_grad", t);
    if (!ct__tensor_requires_grad(t))
        return ct__errs(CT_ERR_AUTOGRAD, "retain_grad: can't retain_grad on Tensor that has requires_grad=False");
    if (!t->grad_fn || t->retains_grad) return 0;
    ct_pre_hook *h = calloc(1, sizeof *h);
    if (!h) return ct__errs(CT_ERR_OOM, "retain_grad: out of memory");
    h->output_nr = t->output_nr;
    h->retain_to = t;
    h->id = -1;
    /* retain_grad runs after the user's hooks: append */
    ct_pre_hook **pp = &t->grad_fn->pre_hooks;
    while (*pp) pp = &(*pp)->next;
    *pp = h;
    t->retains_grad = true;
    return 0;
}

CT_API ct_tensor *ct_detach(const ct_tensor *t) {
    CT_CHECK_ARG("detach", t);
    return ct__ret(ct__alias(t, t->ndim, t->sizes, t->strides, t->offset));
}

CT_API int ct_detach_(ct_tensor *t) {
    CT_CHECK_ARG_S("detach_", t);
    if (t->grad_fn) { ct__node_release(t->grad_fn); t->grad_fn = NULL; }
    t->requires_grad = false;
    return 0;
}

CT_API int ct_register_hook(ct_tensor *t, ct_grad_hook fn, void *user) {
    CT_CHECK_ARG_S("register_hook", t);
    if (!fn) return ct__errs(CT_ERR_ARG, "register_hook: hook is NULL");
    if (!ct__tensor_requires_grad(t))
        return ct__errs(CT_ERR_AUTOGRAD, "register_hook: cannot register a hook on a tensor that doesn't require gradient");
    int id = atomic_fetch_add(&next_hook_id, 1);
    if (t->grad_fn) {
        ct_pre_hook *h = calloc(1, sizeof *h);
        if (!h) return ct__errs(CT_ERR_OOM, "register_hook: out of memory");
        h->output_nr = t->output_nr; h->fn = fn; h->user = user; h->id = id;
        /* user hooks run in registration order, before retain_grad */
        ct_pre_hook **pp = &t->grad_fn->pre_hooks;
        while (*pp && (*pp)->fn) pp = &(*pp)->next;
        h->next = *pp;
        *pp = h;
    } else {
        ct_hook_entry *h = calloc(1, sizeof *h);
        if (!h) return ct__errs(CT_ERR_OOM, "register_hook: out of memory");
        h->fn = fn; h->user = user; h->id = id;
        ct_hook_entry **pp = &t->hooks;
        while (*pp) pp = &(*pp)->next;
        *pp = h;
    }
    return id;
}

CT_API int ct_remove_hook(ct_tensor *t, int id) {
    CT_CHECK_ARG_S("remove_hook", t);
    for (ct_hook_entry **pp = &t->hooks; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) { ct_hook_entry *h = *pp; *pp = h->next; free(h); return 0; }
    if (t->grad_fn)
        for (ct_pre_hook **pp = &t->grad_fn->pre_hooks; *pp; pp = &(*pp)->next)
            if ((*pp)->id == id) { ct_pre_hook *h = *pp; *pp = h->next; free(h); return 0; }
    return ct__errs(CT_ERR_ARG, "remove_hook: no hook with handle %d on this tensor", id);
}

/* ---- gradient helpers used by backward formulas ---- */
ct_tensor *ct__sum_to_size(ct_tensor *grad, int ndim, const int64_t *sizes) {
    if (!grad) return NULL;
    if (ct__same_sizes(grad->ndim, grad->sizes, ndim, sizes)) return grad;
    int lead = grad->ndim - ndim;
    if (lead < 0) return ct__err(CT_ERR_SHAPE, "sum_to_size: cannot sum %s to %s", CT_SHAPESTR(grad), CT_SIZESSTR(ndim, sizes));
    int64_t dims[CT_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < lead; i++) dims[nd++] = i;
    for (int i = 0; i < ndim; i++)
        if (sizes[i] == 1 && grad->sizes[lead + i] != 1) dims[nd++] = lead + i;
    /* only leading dims, or only kept size-1 dims: the sum has the shape already, and is
     * a fresh tensor (not a view) that AccumulateGrad can take without a copy */
    if (nd && (nd == lead || lead == 0)) return ct_sum_dim(grad, nd, dims, lead == 0, CT_NUM_DTYPES);
    ct_tensor *r = grad;
    if (nd) r = ct_sum_dim(grad, nd, dims, true, CT_NUM_DTYPES);
    return ct_reshape(r, ndim, sizes);
}

ct_tensor *ct__sum_to_meta(ct_tensor *grad, const ct_meta *m) { return ct__sum_to_size(grad, m->ndim, m->sizes); }

/* ---- in-place and out= ---- */
static bool can_cast(ct_dtype from, ct_dtype to) {
    if (ct_dtype_is_complex(from) && !ct_dtype_is_complex(to)) return false;
    if (ct_dtype_is_floating(from) && ct_dtype_is_integral(to, true)) return false;
    if (from != CT_BOOL && to == CT_BOOL) return false;
    return true;
}

/* An in-place op is computed out of place and then written into t. If its node saved
 * t's memory (x.mul_(y) saves x to give y its gradient), keep a copy of the values
 * from before the write, as PyTorch saves original_self. This also keeps t and the
 * node from owning each other when t gets the node as its grad_fn. */
static int preserve_saved(ct_node *n, const ct_tensor *t) {
    for (int i = 0; i < n->n_saved; i++) {
        ct_saved *sv = &n->saved[i];
        if (!sv->t || sv->is_output || sv->t->storage != t->storage) continue;
        ct_tensor *c = ct__empty_raw(sv->t->ndim, sv->t->sizes, sv->t->dtype);
        if (!c || ct__copy_raw(c, sv->t)) { ct_release(c); return ct_last_status(); }
        if (sv->t->grad_fn) { ct__node_retain(sv->t->grad_fn); c->grad_fn = sv->t->grad_fn; c->output_nr = sv->t->output_nr; }
        c->requires_grad = sv->t->requires_grad;
        ct_release(sv->t);
        sv->t = c;
        sv->version = 0;
    }
    return 0;
}

int ct__check_inplace(const char *op, const ct_tensor *t) {
    CT_CHECK_ARG_S(op, t);
    if (!grad_disabled && t->requires_grad && !t->grad_fn)
        return ct__errs(CT_ERR_AUTOGRAD, "%s: a leaf Variable that requires grad is being used in an in-place operation.",
                        op);
    if (!grad_disabled && t->view_base && t->view_base->requires_grad && !t->view_base->grad_fn)
        return ct__errs(CT_ERR_AUTOGRAD, "%s: a view of a leaf Variable that requires grad is being used in an in-place "
                                         "operation.", op);
    return 0;
}

int ct__commit_inplace(const char *op, ct_tensor *t, const ct_tensor *r) {
    if (!r) return ct_last_status();
    if (!can_cast(r->dtype, t->dtype))
        return ct__errs(CT_ERR_DTYPE, "%s: result type %s can't be cast to the desired output type %s", op,
                        ct_dtype_name(r->dtype), ct_dtype_name(t->dtype));
    if (!ct__same_sizes(r->ndim, r->sizes, t->ndim, t->sizes))
        return ct__errs(CT_ERR_SHAPE, "%s: output with shape %s doesn't match the broadcast shape %s", op, CT_SHAPESTR(t),
                        CT_SHAPESTR(r));
    if (r->grad_fn && !ct_dtype_is_floating(t->dtype) && !ct_dtype_is_complex(t->dtype))
        return ct__errs(CT_ERR_AUTOGRAD, "%s: in-place result of dtype %s cannot carry a gradient", op,
                        ct_dtype_name(t->dtype));
    if (r->grad_fn) {
        int rc = preserve_saved(r->grad_fn, t);
        if (rc) return rc;
    }
    if (t->view_base && !grad_disabled && (r->grad_fn || ct__tensor_requires_grad(t->view_base)))
        return ct__commit_inplace_view(op, t, r);
    if (r->storage != t->storage || r->offset != t->offset) {
        int rc = ct__copy_raw(t, r);
        if (rc) return rc;
    }
    ct__bump_version(t);
    if (r->grad_fn) {
        ct_node *n = r->grad_fn;
        ct__node_retain(n);
        atomic_fetch_add(&t->storage->graph_version, 1); /* other aliases' histories are now stale */
        ct__set_history(t, n, r->output_nr);
    }
    return 0;
}

static int no_flow_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    CT_UNUSED(n); CT_UNUSED(go); CT_UNUSED(gi); /* the old values do not reach the output */
    return 0;
}

int ct__inplace_constant(ct_tensor *t, const char *node_name) {
    ct__bump_version(t);
    if (grad_disabled) return 0;
    if (t->view_base && ct__tensor_requires_grad(t->view_base)) {
        ct_tensor *alias = ct__alias(t, t->ndim, t->sizes, t->strides, t->offset); /* the new values, no history */
        if (!alias) return ct_last_status();
        int rc = ct__commit_inplace_view(node_name, t, alias);
        ct_release(alias);
        return rc;
    }
    if (!t->grad_fn) return 0;
    ct_node *n = ct__node_new(node_name, no_flow_backward, 1);
    if (!n) return ct_last_status();
    atomic_fetch_add(&t->storage->graph_version, 1);
    ct__set_history(t, n, 0);
    return 0;
}

int ct__commit_out(const char *op, ct_tensor *out, const ct_tensor *r) {
    if (!r) return ct_last_status();
    if (r->grad_fn || (!grad_disabled && ct__tensor_requires_grad(out)))
        return ct__errs(CT_ERR_AUTOGRAD, "%s(): functions with out=... arguments don't support automatic "
                                         "differentiation, but one of the arguments requires grad.", op);
    if (!can_cast(r->dtype, out->dtype))
        return ct__errs(CT_ERR_DTYPE, "%s: result type %s can't be cast to the desired output type %s", op,
                        ct_dtype_name(r->dtype), ct_dtype_name(out->dtype));
    if (!ct__same_sizes(out->ndim, out->sizes, r->ndim, r->sizes)) {
        /* resize out: a fresh contiguous storage (PyTorch resizes out= tensors too) */
        ct_storage *s = ct__storage_new((size_t)r->numel * ct_dtype_size(out->dtype));
        if (!s) return ct_last_status();
        int64_t *sz = out->sizes;
        if (r->ndim > CT_INLINE_DIMS) {
            sz = malloc(sizeof(int64_t) * 2 * (size_t)r->ndim);
            if (!sz) { ct__storage_release(s); return ct__errs(CT_ERR_OOM, "%s: out of memory", op); }
        } else sz = out->small;
        if (out->sizes != out->small && out->sizes != sz) free(out->sizes);
        out->sizes = sz;
        out->strides = sz == out->small ? out->small + CT_INLINE_DIMS : sz + r->ndim;
        out->ndim = r->ndim;
        memcpy(out->sizes, r->sizes, sizeof(int64_t) * (size_t)r->ndim);
        ct__contiguous_strides(r->ndim, r->sizes, out->strides);
        out->numel = r->numel;
        out->offset = 0;
        atomic_store(&s->version, atomic_load(&out->storage->version));
        ct__storage_release(out->storage);
        out->storage = s;
    }
    int rc = ct__copy_raw(out, r);
    if (rc) return rc;
    ct__bump_version(out);
    return 0;
}

/* ---- the engine ---- */
typedef struct {
    ct_node *node;
    int deps;
    ct_tensor **grads; /* one per output, owned */
} gitem;

typedef struct {
    gitem *items;
    size_t n, cap;
    size_t *table; /* open addressing: index+1, 0 = empty */
    size_t tcap;
} graph_t;

static size_t hash_ptr(const void *p) { return ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull; }

static int graph_find(graph_t *g, ct_node *n) {
    if (!g->tcap) return -1;
    size_t m = g->tcap - 1;
    for (size_t h = hash_ptr(n) & m;; h = (h + 1) & m) {
        if (!g->table[h]) return -1;
        if (g->items[g->table[h] - 1].node == n) return (int)(g->table[h] - 1);
    }
}

static int graph_add(graph_t *g, ct_node *n) {
    if ((g->n + 1) * 2 > g->tcap) {
        size_t nc = g->tcap ? g->tcap * 2 : 64;
        size_t *nt = calloc(nc, sizeof *nt);
        if (!nt) return -1;
        for (size_t i = 0; i < g->n; i++) {
            size_t h = hash_ptr(g->items[i].node) & (nc - 1);
            while (nt[h]) h = (h + 1) & (nc - 1);
            nt[h] = i + 1;
        }
        free(g->table);
        g->table = nt;
        g->tcap = nc;
    }
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 32;
        gitem *ni = realloc(g->items, nc * sizeof *ni);
        if (!ni) return -1;
        g->items = ni;
        g->cap = nc;
    }
    gitem *it = &g->items[g->n];
    it->node = n;
    it->deps = 0;
    it->grads = calloc((size_t)(n->n_outputs ? n->n_outputs : 1), sizeof(ct_tensor *));
    if (!it->grads) return -1;
    size_t h = hash_ptr(n) & (g->tcap - 1);
    while (g->table[h]) h = (h + 1) & (g->tcap - 1);
    g->table[h] = g->n + 1;
    return (int)g->n++;
}

static void graph_free(graph_t *g) {
    for (size_t i = 0; i < g->n; i++) {
        for (int k = 0; k < (g->items[i].node->n_outputs ? g->items[i].node->n_outputs : 1); k++)
            ct_release(g->items[i].grads[k]);
        free(g->items[i].grads);
    }
    free(g->items);
    free(g->table);
}

typedef struct {
    int n_inputs;
    ct_tensor *const *inputs;
    ct_tensor **captured;
    bool create_graph;
    bool accumulate; /* false for autograd.grad */
} run_ctx;

static _Thread_local run_ctx *current_run;

static bool grad_exclusive(const ct_tensor *g);

/* Adds grad (a reference the caller owns) into slot *dst, a node's input buffer. Without
 * create_graph, a buffer only this run holds takes the sum in place (a weight used at
 * every step of an RNN gathers one gradient per step: no new buffer, and its pages stay
 * warm, each time). */
static int accumulate_into(ct_tensor **dst, ct_tensor *grad) {
    if (!*dst) { *dst = grad; return 0; }
    if (current_run && !current_run->create_graph && !ct_is_grad_enabled() && grad_exclusive(*dst) &&
        (*dst)->dtype == grad->dtype && ct__same_sizes((*dst)->ndim, (*dst)->sizes, grad->ndim, grad->sizes) &&
        ct__is_dense(*dst)) {
        int rc = ct_add_(*dst, grad);
        ct_release(grad);
        return rc;
    }
    ct_tensor *sum = ct_add(*dst, grad);
    ct_release(grad);
    if (!sum) return ct_last_status();
    sum = ct__scope_take(sum);
    ct_release(*dst);
    *dst = sum;
    return 0;
}

/* Whether only g can reach g's memory: g has one reference and no history, and its
 * storage is held by g alone, or by g and its view base when only g holds that base. */
static bool grad_exclusive(const ct_tensor *g) {
    if (atomic_load(&g->refcount) != 1 || g->grad_fn) return false;
    int holders = 1;
    if (g->view_base) {
        if (atomic_load(&g->view_base->refcount) != 1 || g->view_base->grad_fn) return false;
        holders += g->view_base->storage == g->storage;
    }
    return atomic_load(&g->storage->refcount) == holders;
}

static int accumulate_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    CT_UNUSED(gi);
    ct_tensor *leaf = n->leaf;
    ct_tensor *g = go[0];
    for (ct_hook_entry *h = leaf->hooks; h; h = h->next) {
        ct_tensor *r = h->fn(g, h->user);
        if (r) g = r; /* r is a new reference owned by the hook's caller scope */
    }
    run_ctx *rc = current_run;
    if (rc && !rc->accumulate) return 0;
    if (!ct__same_sizes(g->ndim, g->sizes, leaf->ndim, leaf->sizes))
        return ct__errs(CT_ERR_SHAPE, "AccumulateGrad: gradient of shape %s does not match the leaf's shape %s",
                        CT_SHAPESTR(g), CT_SHAPESTR(leaf));
    bool create = rc && rc->create_graph;
    if (!leaf->grad) {
        if (create) leaf->grad = ct_retain(g);
        else if (grad_exclusive(g) && ct__is_contiguous(g) && g->offset == 0) {
            /* nobody else sees it: steal (a fresh header when g is a view of a base that
             * only g keeps alive, as the transposed gradient of a linear layer's weight) */
            leaf->grad = g->view_base ? ct__alias(g, g->ndim, g->sizes, g->strides, 0) : ct_retain(g);
            if (!leaf->grad) return ct_last_status();
        } else {
            ct_tensor *c = ct__empty_raw(g->ndim, g->sizes, g->dtype);
            if (!c || ct__copy_raw(c, g)) { ct_release(c); return ct_last_status(); }
            leaf->grad = c;
        }
    } else if (create || leaf->grad->grad_fn) {
        ct_tensor *s = ct_add(leaf->grad, g);
        if (!s) return ct_last_status();
        s = ct__scope_take(s);
        ct_release(leaf->grad);
        leaf->grad = s;
    } else {
        ct_tensor *s = ct_add(leaf->grad, g);
        if (!s) return ct_last_status();
        int rc2 = ct__copy_raw(leaf->grad, s);
        if (rc2) return rc2;
    }
    return 0;
}

static int run_pre_hooks(ct_node *n, ct_tensor **grads) {
    for (ct_pre_hook *h = n->pre_hooks; h; h = h->next) {
        ct_tensor *g = grads[h->output_nr];
        if (!g) continue;
        if (h->fn) {
            ct_tensor *r = h->fn(g, h->user);
            if (r) { r = ct__scope_take(r); ct_release(grads[h->output_nr]); grads[h->output_nr] = r; }
        } else if (h->retain_to) {
            ct_tensor *t = h->retain_to;
            ct_tensor *ng = current_run && current_run->create_graph ? ct_retain(g) : ct__scope_take(ct_detach(g));
            if (!ng) return ct_last_status();
            if (!t->grad) t->grad = ng;
            else {
                ct_tensor *s = ct_add(t->grad, ng);
                ct_release(ng);
                if (!s) return ct_last_status();
                ct_release(t->grad);
                t->grad = ct__scope_take(s);
            }
        }
    }
    return 0;
}

static ct_tensor *zeros_meta(const ct_meta *m) {
    ct_tensor *z = ct__empty_raw(m->ndim, m->sizes, m->dtype);
    if (z && ct__fill_raw(z, 0)) { ct_release(z); return NULL; }
    return z;
}

/* PyTorch's validate_outputs: a gradient flowing into (node, input_nr) is reduced to
 * the shape and cast to the dtype that input had (broadcasting ops need no code of
 * their own for this). *g is replaced by an owned reference. */
static int validate_grad(ct_node *c, int input_nr, ct_tensor **g) {
    ct_dtype dt;
    int nd;
    const int64_t *sz;
    if (c->leaf) { dt = c->leaf->dtype; nd = c->leaf->ndim; sz = c->leaf->sizes; }
    else if (input_nr < c->n_outputs && (c->out_meta[input_nr].sizes || c->out_meta[input_nr].ndim == 0)) {
        dt = c->out_meta[input_nr].dtype; nd = c->out_meta[input_nr].ndim; sz = c->out_meta[input_nr].sizes;
    } else return 0;
    ct_tensor *t = *g;
    bool same_shape = ct__same_sizes(t->ndim, t->sizes, nd, sz);
    if (same_shape && t->dtype == dt) return 0;
    if (ct_scope_begin()) return ct_last_status();
    ct_tensor *r = t;
    if (!same_shape) {
        r = ct__sum_to_size(r, nd, sz);
        if (!r) { ct_scope_end(); return ct__errs(CT_ERR_SHAPE, "%s: invalid gradient - got %s but expected shape compatible with %s",
                                                  c->name, CT_SHAPESTR(t), CT_SIZESSTR(nd, sz)); }
    }
    if (r->dtype != dt) r = ct_to_dtype(r, dt);
    if (!r) { ct_scope_end(); return ct_last_status(); }
    r = (r == t) ? ct_retain(r) : ct__scope_take(r);
    ct_scope_end();
    ct_release(t);
    *g = r;
    return 0;
}

/* Runs the graph from roots. */
static int run_backward(int n_roots, ct_tensor *const *roots, const ct_tensor *const *root_grads, bool retain_graph,
                        run_ctx *rc) {
    graph_t g = {0};
    int status = 0;
    ct_node **stack = NULL;
    size_t sn = 0, scap = 0;
    bool prev_mode = ct_set_grad_enabled(rc->create_graph);
    run_ctx *prev_run = current_run;
    current_run = rc;
    ct_node **root_nodes = calloc((size_t)n_roots, sizeof *root_nodes);
    if (!root_nodes) { status = ct__errs(CT_ERR_OOM, "backward: out of memory"); goto done; }
#define PUSH(nd)                                                                              \
    do {                                                                                      \
        if (sn == scap) {                                                                     \
            size_t nc = scap ? scap * 2 : 64;                                                 \
            ct_node **ns = realloc(stack, nc * sizeof *ns);                                   \
            if (!ns) { status = ct__errs(CT_ERR_OOM, "backward: out of memory"); goto done; } \
            stack = ns; scap = nc;                                                            \
        }                                                                                     \
        stack[sn++] = (nd);                                                                   \
    } while (0)
    /* 1. discover the graph and count dependencies */
    for (int r = 0; r < n_roots; r++) {
        ct_tensor *t = roots[r];
        ct_node *rn;
        if (t->grad_fn) { rn = t->grad_fn; ct__node_retain(rn); }
        else if (t->requires_grad) { rn = grad_accumulator(t); if (!rn) { status = ct_last_status(); goto done; } }
        else { status = ct__errs(CT_ERR_AUTOGRAD, "element %d of tensors does not require grad and does not have a grad_fn", r); goto done; }
        root_nodes[r] = rn;
        if (graph_find(&g, rn) < 0) {
            if (graph_add(&g, rn) < 0) { status = ct__errs(CT_ERR_OOM, "backward: out of memory"); goto done; }
            PUSH(rn);
        }
    }
    while (sn) {
        ct_node *n = stack[--sn];
        for (int i = 0; i < n->n_next; i++) {
            ct_node *c = n->next[i].node;
            if (!c) continue;
            int idx = graph_find(&g, c);
            if (idx < 0) {
                idx = graph_add(&g, c);
                if (idx < 0) { status = ct__errs(CT_ERR_OOM, "backward: out of memory"); goto done; }
                PUSH(c);
            }
            g.items[idx].deps++;
        }
    }
    /* 2. seed the root gradients */
    for (int r = 0; r < n_roots; r++) {
        ct_tensor *t = roots[r];
        ct_tensor *seed;
        if (root_grads && root_grads[r]) {
            const ct_tensor *gr = root_grads[r];
            if (!ct__same_sizes(gr->ndim, gr->sizes, t->ndim, t->sizes)) {
                status = ct__errs(CT_ERR_SHAPE, "backward: Mismatch in shape: grad_output[%d] has a shape of %s and output[%d] has a shape of %s.",
                                  r, CT_SHAPESTR(gr), r, CT_SHAPESTR(t));
                goto done;
            }
            seed = ct_retain((ct_tensor *)gr);
        } else {
            if (t->numel != 1) { status = ct__errs(CT_ERR_AUTOGRAD, "backward: grad can be implicitly created only for scalar outputs (got shape %s)", CT_SHAPESTR(t)); goto done; }
            seed = ct__empty_raw(t->ndim, t->sizes, t->dtype);
            if (!seed || ct__fill_raw(seed, 1)) { ct_release(seed); status = ct_last_status(); goto done; }
        }
        int idx = graph_find(&g, root_nodes[r]);
        int onr = t->grad_fn ? t->output_nr : 0;
        if ((status = accumulate_into(&g.items[idx].grads[onr], seed))) goto done;
    }
    /* capture slots for autograd.grad */
    /* 3. execute in dependency order */
    sn = 0;
    for (int r = 0; r < n_roots; r++) {
        int idx = graph_find(&g, root_nodes[r]);
        if (g.items[idx].deps == 0) {
            bool dup = false;
            for (size_t k = 0; k < sn; k++) dup |= stack[k] == root_nodes[r];
            if (!dup) PUSH(root_nodes[r]);
        }
    }
    while (sn) {
        ct_node *n = stack[--sn];
        int idx = graph_find(&g, n);
        ct_tensor **grads = g.items[idx].grads;
        int nout = n->n_outputs ? n->n_outputs : 1;
        if (ct_scope_begin()) { status = ct_last_status(); goto done; }
        for (int k = 0; k < nout && !status; k++)
            if (!grads[k]) {
                if (n->leaf || n->keep_missing) continue;
                grads[k] = zeros_meta(&n->out_meta[k]);
                if (!grads[k]) status = ct_last_status();
            }
        if (!status) status = run_pre_hooks(n, grads);
        /* autograd.grad: capture gradients of requested inputs */
        if (!status && rc->inputs)
            for (int i = 0; i < rc->n_inputs; i++) {
                ct_tensor *in = rc->inputs[i];
                bool hit = in->grad_fn ? in->grad_fn == n : (n->leaf == in);
                if (hit && grads[in->grad_fn ? in->output_nr : 0]) {
                    ct_tensor *gv = grads[in->grad_fn ? in->output_nr : 0];
                    if (!rc->captured[i]) rc->captured[i] = ct_retain(gv);
                    else {
                        ct_tensor *s = ct_add(rc->captured[i], gv);
                        if (!s) { status = ct_last_status(); break; }
                        ct_release(rc->captured[i]);
                        rc->captured[i] = ct__scope_take(s);
                    }
                }
            }
        ct_tensor *gin_small[8] = {0};
        ct_tensor **gin = n->n_next <= 8 ? gin_small : calloc((size_t)n->n_next, sizeof *gin);
        if (!gin) status = ct__errs(CT_ERR_OOM, "backward: out of memory");
        if (!status && (n->leaf || n->backward)) {
            if (n->leaf) { if (grads[0]) status = accumulate_backward(n, grads, gin); }
            else status = n->backward(n, grads, gin);
            /* gradients are scope-owned (results of ops, or ct__pass); take them out */
            for (int i = 0; i < n->n_next; i++) {
                if (!status && gin[i] && n->next[i].node) gin[i] = ct__scope_take(gin[i]);
                else gin[i] = NULL;
            }
        }
        ct_scope_end();
        /* the node's incoming gradients are no longer needed */
        for (int k = 0; k < nout; k++) { ct_release(grads[k]); grads[k] = NULL; }
        if (status) {
            for (int i = 0; i < n->n_next; i++) ct_release(gin[i]);
            if (gin != gin_small) free(gin);
            goto done;
        }
        for (int i = 0; i < n->n_next; i++) {
            ct_node *c = n->next[i].node;
            if (!c) continue;
            int cidx = graph_find(&g, c);
            if (gin[i] && (status = validate_grad(c, n->next[i].input_nr, &gin[i]))) {
                for (int j = i; j < n->n_next; j++) ct_release(gin[j]);
                if (gin != gin_small) free(gin);
                goto done;
            }
            if (gin[i]) {
                if ((status = accumulate_into(&g.items[cidx].grads[n->next[i].input_nr], gin[i]))) {
                    for (int j = i + 1; j < n->n_next; j++) ct_release(gin[j]);
                    if (gin != gin_small) free(gin);
                    goto done;
                }
            }
            if (--g.items[cidx].deps == 0) PUSH(c);
        }
        if (gin != gin_small) free(gin);
        if (!retain_graph) release_saved(n);
    }
done:
    /* the graph first: it reads the nodes, and a leaf root's AccumulateGrad node lives
     * only as long as root_nodes holds it */
    graph_free(&g);
    for (int r = 0; root_nodes && r < n_roots; r++)
        if (root_nodes[r]) ct__node_release(root_nodes[r]);
    free(root_nodes);
    free(stack);
    current_run = prev_run;
    ct_set_grad_enabled(prev_mode);
#undef PUSH
    return status;
}

CT_API int ct_backward(ct_tensor *root, const ct_tensor *grad, bool retain_graph, bool create_graph) {
    CT_CHECK_ARG_S("backward", root);
    if (!ct__tensor_requires_grad(root))
        return ct__errs(CT_ERR_AUTOGRAD, "backward: element 0 of tensors does not require grad and does not have a grad_fn");
    run_ctx rc = {.create_graph = create_graph, .accumulate = true};
    return run_backward(1, &root, &grad, retain_graph || create_graph, &rc);
}

CT_API int ct_autograd_grad(int n_out, ct_tensor *const *outputs, const ct_tensor *const *grad_outputs, int n_in,
                            ct_tensor *const *inputs, ct_tensor **grads_out, bool retain_graph, bool create_graph,
                            bool allow_unused) {
    if (!outputs || !inputs || !grads_out || n_out <= 0 || n_in <= 0)
        return ct__errs(CT_ERR_ARG, "autograd.grad: outputs and inputs must be non-empty arrays");
    for (int i = 0; i < n_out; i++) {
        CT_CHECK_ARG_S("autograd.grad", outputs[i]);
        if (!ct__tensor_requires_grad(outputs[i]))
            return ct__errs(CT_ERR_AUTOGRAD, "autograd.grad: element %d of tensors does not require grad and does not have a grad_fn", i);
    }
    for (int i = 0; i < n_in; i++) {
        CT_CHECK_ARG_S("autograd.grad", inputs[i]);
        if (!ct__tensor_requires_grad(inputs[i]))
            return ct__errs(CT_ERR_AUTOGRAD, "autograd.grad: One of the differentiated Tensors does not require grad");
        grads_out[i] = NULL;
    }
    ct_tensor **captured = calloc((size_t)n_in, sizeof *captured);
    if (!captured) return ct__errs(CT_ERR_OOM, "autograd.grad: out of memory");
    run_ctx rc = {.n_inputs = n_in, .inputs = inputs, .captured = captured, .create_graph = create_graph, .accumulate = false};
    int st = run_backward(n_out, outputs, grad_outputs, retain_graph || create_graph, &rc);
    if (!st)
        for (int i = 0; i < n_in; i++)
            if (!captured[i] && !allow_unused) {
                st = ct__errs(CT_ERR_AUTOGRAD, "autograd.grad: One of the differentiated Tensors appears to not have "
                                               "been used in the graph. Set allow_unused=True if this is the desired behavior.");
                break;
            }
    for (int i = 0; i < n_in; i++) {
        if (st) ct_release(captured[i]);
        else grads_out[i] = ct__ret(captured[i]);
    }
    free(captured);
    return st;
}

/* ---- gradcheck ---- */
static ct_tensor *call_fn(ct_gradcheck_fn fn, int n, ct_tensor *const *inputs, void *user) {
    ct_tensor *o = fn(n, inputs, user);
    return o;
}

/* Linear element offset (in elements) of flat index j in t. */
static int64_t flat_offset(const ct_tensor *t, int64_t j) {
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (j % t->sizes[d]) * t->strides[d];
        j /= t->sizes[d];
    }
    return off;
}

static int check_inputs(const char *op, int n, ct_tensor *const *inputs) {
    for (int i = 0; i < n; i++) {
        CT_CHECK_ARG_S(op, inputs[i]);
        if (inputs[i]->dtype != CT_FLOAT64 && inputs[i]->dtype != CT_COMPLEX128)
            return ct__errs(CT_ERR_DTYPE, "%s: input %d is %s; gradcheck needs float64 or complex128 inputs", op, i,
                            ct_dtype_name(inputs[i]->dtype));
    }
    return 0;
}

/* Complex tensors are checked as pairs of real coordinates (real, imaginary part): the
 * Jacobian of the real map (Re x, Im x) -> (Re y, Im y). With PyTorch's convention
 * (a gradient is dL/dRe + i dL/dIm), grad_output 1 selects L = Re y_k and grad_output i
 * selects L = Im y_k, and the real and imaginary parts of the input gradient are the
 * rows' entries for Re x_j and Im x_j. */
CT_API int ct_gradcheck(ct_gradcheck_fn fn, int n, ct_tensor *const *inputs, void *user, double eps, double atol,
                        double rtol) {
    if (!fn) return ct__errs(CT_ERR_ARG, "gradcheck: fn is NULL");
    int st = check_inputs("gradcheck", n, inputs);
    if (st) return st;
    if (eps <= 0) eps = 1e-6;
    if (atol < 0) atol = 1e-5;
    if (rtol < 0) rtol = 1e-3;
    int result = 1;
    if (ct_scope_begin()) return ct_last_status();
    bool prev = ct_set_grad_enabled(true);
    ct_tensor *out = call_fn(fn, n, inputs, user);
    if (!out) { result = ct_last_status(); goto end; }
    if (out->dtype != CT_FLOAT64 && out->dtype != CT_COMPLEX128) {
        result = ct__errs(CT_ERR_DTYPE, "gradcheck: output must be float64 or complex128, got %s", ct_dtype_name(out->dtype));
        goto end;
    }
    int out_parts = out->dtype == CT_COMPLEX128 ? 2 : 1;
    int64_t m = out->numel * out_parts; /* real coordinates of the output */
    for (int i = 0; i < n && result == 1; i++) {
        ct_tensor *x = inputs[i];
        if (!ct__tensor_requires_grad(x)) continue;
        int parts = x->dtype == CT_COMPLEX128 ? 2 : 1;
        int64_t nx = x->numel * parts;
        double *num = calloc((size_t)(nx * m) + 1, sizeof(double));
        double *ana = calloc((size_t)(nx * m) + 1, sizeof(double));
        if (!num || !ana) { free(num); free(ana); result = ct__errs(CT_ERR_OOM, "gradcheck: out of memory"); break; }
        /* numerical: perturb each real coordinate in place */
        double *xd = x->storage->data;
        for (int64_t j = 0; j < nx && result == 1; j++) {
            int64_t off = flat_offset(x, j / parts) * parts + j % parts;
            double orig = xd[off];
            xd[off] = orig + eps; /* grad mode stays on: fn may differentiate (gradgradcheck) */
            /* copies: fn may return a view of an input, which the next perturbation changes */
            ct_tensor *op = ct_contiguous(ct_clone(call_fn(fn, n, inputs, user)));
            xd[off] = orig - eps;
            ct_tensor *om = ct_contiguous(ct_clone(call_fn(fn, n, inputs, user)));
            xd[off] = orig;
            if (!op || !om) { result = ct_last_status(); break; }
            const double *pp = ct__data(op), *mp = ct__data(om);
            for (int64_t k = 0; k < m; k++) num[k * nx + j] = (pp[k] - mp[k]) / (2 * eps);
        }
        /* analytical: one backward per real output coordinate */
        for (int64_t k = 0; k < m && result == 1; k++) {
            ct_tensor *go = ct_zeros(out->ndim, out->sizes, out->dtype);
            if (!go) { result = ct_last_status(); break; }
            ((double *)ct__data(go))[k] = 1.0; /* 1 or i */
            ct_tensor *gx = NULL;
            /* an output that does not require grad is constant in the inputs: zero Jacobian */
            int rc = ct__tensor_requires_grad(out)
                         ? ct_autograd_grad(1, &out, (const ct_tensor *const *)&go, 1, &x, &gx, true, false, true)
                         : 0;
            if (rc) { result = rc; break; }
            if (gx) {
                ct_tensor *gc = ct_contiguous(ct_to_dtype(gx, x->dtype));
                if (!gc) { result = ct_last_status(); break; }
                const double *gp = ct__data(gc);
                for (int64_t j = 0; j < nx; j++) ana[k * nx + j] = gp[j];
            }
        }
        for (int64_t q = 0; q < nx * m && result == 1; q++) {
            double a = ana[q], b = num[q];
            if (!(fabs(a - b) <= atol + rtol * fabs(b))) {
                int64_t k = q / nx, j = q % nx;
                ct__errs(CT_ERR_RUNTIME,
                         "gradcheck: Jacobian mismatch for output %lld%s with respect to input %d element %lld%s: "
                         "numerical %.10g, analytical %.10g",
                         (long long)(k / out_parts), out_parts == 2 ? (k % 2 ? " (imag)" : " (real)") : "", i,
                         (long long)(j / parts), parts == 2 ? (j % 2 ? " (imag)" : " (real)") : "", b, a);
                result = 0;
            }
        }
        free(num);
        free(ana);
    }
end:
    ct_set_grad_enabled(prev);
    ct_scope_end();
    return result;
}

typedef struct {
    ct_gradcheck_fn fn;
    void *user;
    ct_tensor **w;   /* random projections of each input gradient */
    ct_tensor *v;    /* random grad_output */
} gg_ctx;

/* s = sum_i <d(<f(x), v>)/dx_i, w_i>, computed with create_graph: its gradient
 * exercises every backward formula's own backward. */
static ct_tensor *gg_fn(int n, ct_tensor *const *inputs, void *user) {
    gg_ctx *c = user;
    ct_tensor *out = c->fn(n, inputs, c->user);
    if (!out) return NULL;
    ct_tensor *grads[16] = {0};
    ct_tensor *req[16];
    int nr = 0;
    for (int i = 0; i < n; i++)
        if (ct__tensor_requires_grad(inputs[i])) req[nr++] = inputs[i];
    if (nr == 0 || nr > 16) return ct__err(CT_ERR_ARG, "gradgradcheck: between 1 and 16 inputs must require grad");
    if (!ct__tensor_requires_grad(out)) return ct_zeros(0, NULL, CT_FLOAT64);
    if (ct_autograd_grad(1, &out, (const ct_tensor *const *)&c->v, nr, req, grads, true, true, true)) return NULL;
    ct_tensor *s = ct_zeros(0, NULL, CT_FLOAT64);
    for (int i = 0; i < nr; i++)
        if (grads[i]) /* a real linear functional of the gradient: Re <g, w> */
            s = ct_add(s, ct_sum(ct_dtype_is_complex(grads[i]->dtype) ? ct_real(ct_mul(grads[i], ct_conj(c->w[i])))
                                                                  : ct_mul(grads[i], c->w[i])));
    return s;
}

CT_API int ct_gradgradcheck(ct_gradcheck_fn fn, int n, ct_tensor *const *inputs, void *user, double eps, double atol,
                            double rtol) {
    if (!fn) return ct__errs(CT_ERR_ARG, "gradgradcheck: fn is NULL");
    int st = check_inputs("gradgradcheck", n, inputs);
    if (st) return st;
    if (ct_scope_begin()) return ct_last_status();
    int result;
    ct_tensor *out = fn(n, inputs, user);
    if (!out) { ct_scope_end(); return ct_last_status(); }
    /* deterministic pseudo-random projections */
    uint64_t state = 0x243F6A8885A308D3ull;
#define NEXT_U() ((state = state * 6364136223846793005ull + 1442695040888963407ull) >> 11) * (1.0 / 9007199254740992.0)
    ct_tensor *v = ct_empty(out->ndim, out->sizes, out->dtype);
    ct_tensor *w[16];
    int nr = 0;
    int vparts = out->dtype == CT_COMPLEX128 ? 2 : 1;
    for (int64_t k = 0; v && k < v->numel * vparts; k++) ((double *)ct__data(v))[k] = NEXT_U() * 2 - 1;
    for (int i = 0; i < n && nr < 16; i++)
        if (ct__tensor_requires_grad(inputs[i])) {
            w[nr] = ct_empty(inputs[i]->ndim, inputs[i]->sizes, inputs[i]->dtype);
            if (!w[nr]) break;
            int wparts = inputs[i]->dtype == CT_COMPLEX128 ? 2 : 1;
            for (int64_t k = 0; k < w[nr]->numel * wparts; k++) ((double *)ct__data(w[nr]))[k] = NEXT_U() * 2 - 1;
            nr++;
        }
#undef NEXT_U
    if (!v) { ct_scope_end(); return ct_last_status(); }
    gg_ctx c = {.fn = fn, .user = user, .w = w, .v = v};
    result = ct_gradcheck(gg_fn, n, inputs, &c, eps, atol, rtol);
    ct_scope_end();
    return result;
}
