/* Internal layout of modules, shared by the module framework and the layer files in
 * src/nn/. Not installed. */
#ifndef CT_MODULE_INTERNAL_H
#define CT_MODULE_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>

#include "ctorch/module.h"

typedef struct {
    char *name;
    ct_tensor *t; /* strong; NULL for a registered-absent entry */
    bool persistent;
} ct__mod_entry;

typedef struct {
    char *name;
    ct_module *m; /* strong */
} ct__mod_child;

struct ct_module {
    atomic_int refcount;
    const ct_module_type *type;
    void *ctx;
    bool training;
    ct__mod_entry *params, *buffers;
    int64_t n_params, cap_params, n_buffers, cap_buffers;
    ct__mod_child *children;
    int64_t n_children, cap_children;
};

/* Parameter / buffer i of m itself (borrowed; NULL if absent): for layer forwards. */
static inline ct_tensor *ct__mod_param(const ct_module *m, int64_t i) { return m->params[i].t; }
static inline ct_tensor *ct__mod_buffer(const ct_module *m, int64_t i) { return m->buffers[i].t; }

/* Layer construction helpers (src/nn/layers.c). Register a fresh float32 parameter drawn
 * from U(-bound, bound) (drawing even when bound is 0, like torch's init); register
 * "weight" = ones and (with_bias) "bias" = zeros of shape, or absent ones when !affine.
 * 0 or status. */
int ct__mod_uniform_param(ct_module *m, const char *name, int nd, const int64_t *sizes, double bound);
int ct__mod_affine_params(ct_module *m, bool affine, bool with_bias, int nd, const int64_t *shape);
/* PyTorch's reset_parameters of Linear, Conv*, Bilinear: "weight" of wshape, then
 * "bias" [bias_n] (or an absent one), both drawn from U(-bound, bound) in that order.
 * 0 or status. */
int ct__mod_weight_bias(ct_module *m, int nd, const int64_t *wshape, int64_t bias_n, bool bias, double bound);

/* p of a Dropout module, -1 for any other module (src/nn/layers.c). */
double ct__mod_dropout_p(const ct_module *m);
/* whether m is a ReLU module (src/nn/layers.c) */
bool ct__mod_is_relu(const ct_module *m);
/* Sequential's fused runs (src/nn/layers_nn.c): when ch[0..n) starts with modules that
 * run as one fused op on x, runs them, sets *y (their output, or NULL with the error)
 * and returns how many it ran; else 0. */
int64_t ct__mod_seq_fuse(const ct__mod_child *ch, int64_t n, ct_tensor *x, ct_tensor **y);

/* A growable string for reprs (ct__sb_take returns it malloc'd, or NULL + error on OOM). */
typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} ct__sb;
void ct__sb_init(ct__sb *b);
void ct__sb_add(ct__sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *ct__sb_take(ct__sb *b);

/* Python-style formatting used by extra_repr: "True"/"False", floats like repr(float). */
static inline const char *ct__pybool(bool b) { return b ? "True" : "False"; }
/* repr(float) of Python: shortest round-trip digits ("0.01", "1.0", "1e-05"). */
const char *ct__pyfloat(double v, char *buf, size_t n);
/* "(3, 3)" for a tuple of n ints, or "3" when n == 1 and scalar is set. */
const char *ct__pytuple(int n, const int64_t *v, char *buf, size_t size);

#endif
