/* Autograd graph nodes, used by op front-ends to record history.
 *
 * Recording an op, in its front-end, after the forward result `out` exists:
 *
 *     if (ct__needs_grad(2, (const ct_tensor *[]){a, b})) {
 *         ct_node *n = ct__node_new("MulBackward0", mul_backward, 2);
 *         if (!n) ...;
 *         ct__node_set_next(n, 0, a); ct__node_set_next(n, 1, b);
 *         ct__save(n, a); ct__save(n, b);
 *         ct__set_history(out, n, 0);    // takes n's reference
 *     }
 *
 * A backward function receives one gradient per output (never NULL: missing ones are
 * zero-filled, unless the node sets keep_missing) and writes one gradient per input into grad_inputs (a new reference, or
 * NULL where no gradient is needed: see ct__node_needs(n, i)). Gradients must be
 * scope-owned: results of public ops, or ct__pass(t) to hand on a tensor unchanged.
 * It runs inside a scope
 * with grad mode set from create_graph, so it is written with ordinary public ops.
 */
#ifndef CT_AUTOGRAD_INTERNAL_H
#define CT_AUTOGRAD_INTERNAL_H

#include "core/internal.h"

typedef int (*ct_backward_fn)(ct_node *node, ct_tensor *const *grad_outputs, ct_tensor **grad_inputs);

typedef struct {
    ct_node *node;
    int input_nr;
} ct_edge;

typedef struct {
    ct_tensor *t;    /* strong; for outputs, a detached alias */
    int64_t version;
    bool is_output;
    int output_nr;
} ct_saved;

typedef struct {
    ct_dtype dtype;
    int ndim;
    int64_t *sizes;                   /* -> small[] up to CT_INLINE_DIMS dims, else heap */
    int64_t small[CT_INLINE_DIMS];
} ct_meta;

typedef struct ct_pre_hook {
    int output_nr;
    int id;
    ct_grad_hook fn;       /* tensor hook on a non-leaf */
    void *user;
    ct_tensor *retain_to;  /* weak: retain_grad target (fn NULL) */
    struct ct_pre_hook *next;
} ct_pre_hook;

struct ct_hook_entry {
    int id;
    ct_grad_hook fn;
    void *user;
    struct ct_hook_entry *next;
};

#define CT_NODE_I 8
#define CT_NODE_D 4

struct ct_node { /* ct__node_new sets every field by name: a new field needs a line there */
    atomic_int refcount;
    const char *name;
    ct_backward_fn backward;
    uint64_t seq;
    int n_next;
    ct_edge *next;
    int n_outputs;
    ct_meta *out_meta;
    int n_saved, cap_saved;
    ct_saved *saved;
    /* op parameters */
    int64_t i[CT_NODE_I];
    double d[CT_NODE_D];
    int64_t *ivec; /* owned */
    int n_ivec;
    ct_meta in_meta[2]; /* optional: shapes/dtypes of inputs 0,1 (ct__node_save_meta) */
    void *ctx;
    void (*ctx_free)(void *ctx);
    bool keep_missing;     /* outputs no gradient reached get NULL in backward, not zeros
                            * (PyTorch's materialize_grads = False); the backward handles NULL */
    ct_tensor *leaf;       /* AccumulateGrad: the leaf (strong) */
    ct_pre_hook *pre_hooks;
    /* inline storage: one allocation per node for the common case */
    ct_edge next_small[4];
    ct_meta out_meta_small[1];
};

/* A new scope-owned reference to t (for backward functions passing a gradient on). */
static inline ct_tensor *ct__pass(ct_tensor *t) { return ct__ret(ct_retain(t)); }

/* New node with n_inputs next edges (all empty) and one output. NULL on OOM. */
ct_node *ct__node_new(const char *name, ct_backward_fn fn, int n_inputs);
/* Declares more outputs (multi-output ops). */
int ct__node_set_outputs(ct_node *n, int n_outputs);
void ct__node_retain(ct_node *n);
void ct__node_release(ct_node *n);
/* Edge i points to where t's gradient goes (its grad_fn, or its AccumulateGrad). */
int ct__node_set_next(ct_node *n, int i, const ct_tensor *t);
/* True if input i of node n needs a gradient. */
static inline bool ct__node_needs(const ct_node *n, int i) { return i < n->n_next && n->next[i].node != NULL; }
/* Saves a tensor for backward (with its current version). Returns slot index or -1. */
int ct__save(ct_node *n, const ct_tensor *t);
/* ct__save(n, t) when needed, else an empty slot (the slots after it keep their numbers):
 * PyTorch saves an operand only for the other operand's gradient (mul saves b for a's
 * gradient, a for b's), so an operand nobody differentiates against is not kept alive. */
int ct__save_if(ct_node *n, const ct_tensor *t, bool needed);
/* Saves an output of n itself (no reference cycle). */
int ct__save_output(ct_node *n, const ct_tensor *out, int output_nr);
/* The saved tensor (borrowed, or scope-registered alias for outputs); NULL + error if
 * it was modified in place since it was saved. */
ct_tensor *ct__unpack(ct_node *n, int slot);
/* Copies an int vector into the node (for sizes, dims...). */
int ct__node_set_ivec(ct_node *n, int count, const int64_t *v);
/* Records dtype and sizes of input i (0 or 1) for backward functions. */
int ct__node_save_meta(ct_node *n, int i, const ct_tensor *t);
/* Makes node n (whose reference the caller hands over) the grad_fn of out. */
void ct__set_history(ct_tensor *out, ct_node *n, int output_nr);
/* Like ct__set_history for every output of a multi-output node (takes n's reference). */
void ct__set_history_multi(ct_tensor **outs, int n_outs, ct_node *n);

/* In-place support. Checks that t may be written in place under autograd. */
int ct__check_inplace(const char *op, const ct_tensor *t);
/* Writes result into t (casting, broadcasting not allowed), bumps t's version and
 * rebases t's history onto result's grad_fn. Returns 0 or status. */
int ct__commit_inplace(const char *op, ct_tensor *t, const ct_tensor *result);
/* After t's data was overwritten in place with values that depend on nothing
 * differentiable (fill_, zero_, random fills): bumps the version and gives t (or its
 * base, for a view) a history through which no gradient reaches the old values. */
int ct__inplace_constant(ct_tensor *t, const char *node_name);
/* Writes result into out for out= variants (resizing an empty out). */
int ct__commit_out(const char *op, ct_tensor *out, const ct_tensor *result);

/* Views and in-place ops (PyTorch's CopySlices): a view records its root base. After
 * an in-place write through one alias, the others' histories are stale; this rebuilds
 * a stale view's grad_fn as a strided view of its base's current history. 0 or status. */
int ct__view_refresh(ct_tensor *t);
/* In-place result r written through view t of a base in a graph: the base's history
 * becomes a scatter of r into its old value, t's a view of that. 0 or status. */
int ct__commit_inplace_view(const char *op, ct_tensor *t, const ct_tensor *r);

/* Called when a tensor header is freed. */
void ct__autograd_tensor_freed(ct_tensor *t);

/* Reduces grad (the gradient of a broadcast result) to the shape of meta i. New ref. */
ct_tensor *ct__sum_to_meta(ct_tensor *grad, const ct_meta *m);
ct_tensor *ct__sum_to_size(ct_tensor *grad, int ndim, const int64_t *sizes);

#endif
