/* Shared front-end machinery for elementwise ops: dtype rules, broadcasting,
 * allocation and dispatch. Each public op adds its own autograd recording. */
#ifndef CT_OPS_ELEMENTWISE_H
#define CT_OPS_ELEMENTWISE_H

#include "core/autograd_internal.h"
#include "core/dispatch.h"

typedef enum {
    CT_EW_SAME,      /* result = promoted dtype (add, mul, maximum, ...) */
    CT_EW_FLOAT,     /* promoted, integers/bool -> default float (div, exp, atan2, ...) */
    CT_EW_BOOL_OUT,  /* computed in the promoted dtype, result bool (eq, lt, isnan, ...) */
    CT_EW_LOGICAL,   /* inputs read as truth values, result bool (logical_and, ...) */
    CT_EW_INTEGRAL,  /* integer and bool dtypes only (bitwise ops) */
    CT_EW_REAL,      /* like SAME but complex inputs are an error (maximum, floor, ...) */
    CT_EW_FLOAT_REAL, /* like FLOAT, complex an error (atan2, erf, ...) */
    CT_EW_TO_REAL    /* like SAME, but complex results become real (abs, real, imag, angle) */
} ct_ew_kind;

/* Runs a unary kernel: returns an unregistered result (no autograd) or NULL. params
 * (up to 4) go to the kernel in d[]. */
ct_tensor *ct__unary_raw(ct_op op, const char *name, const ct_tensor *x, ct_ew_kind kind, const double *params);
/* Runs a binary kernel with broadcasting and promotion; unregistered, no autograd. */
ct_tensor *ct__binary_raw(ct_op op, const char *name, const ct_tensor *a, const ct_tensor *b, ct_ew_kind kind,
                          const double *params);
/* The compute dtype a binary op of this kind would use (or -1 + error). */
int ct__ew_compute_dtype(const char *name, ct_dtype promoted, ct_ew_kind kind);

/* Records a one-input node on a raw result `out` when x needs grad (and out is
 * floating or complex): saves x and/or out as asked, input meta, parameters d[0..3]
 * (may be NULL), and i[CT_NODE_I-1] = (save_x | save_out << 1). Registers and returns
 * out; NULL (out released) on error. */
ct_tensor *ct__record_unary(ct_tensor *out, const char *node_name, ct_backward_fn fn, const ct_tensor *x, bool save_x,
                            bool save_out, const double *d);

/* Records a two-input node on a raw result `out` when a or b needs grad (and out is
 * floating or complex): saves a and b (and out, slot 2, if save_out), d[0] = d0.
 * Registers and returns out; NULL (out released) on error. */
ct_tensor *ct__record_binary(ct_tensor *out, const char *node_name, ct_backward_fn fn, const ct_tensor *a,
                             const ct_tensor *b, bool save_out, double d0);

/* Helpers for in-place / out= variants built from an out-of-place function. */
typedef ct_tensor *(*ct_unary_fn)(const ct_tensor *);
typedef ct_tensor *(*ct_binary_fn)(const ct_tensor *, const ct_tensor *);
int ct__inplace_unary(const char *name, ct_tensor *self, ct_unary_fn fn);
int ct__out_unary(const char *name, ct_tensor *out, const ct_tensor *x, ct_unary_fn fn);
int ct__inplace_binary(const char *name, ct_tensor *self, const ct_tensor *b, ct_binary_fn fn);
int ct__out_binary(const char *name, ct_tensor *out, const ct_tensor *a, const ct_tensor *b, ct_binary_fn fn);

/* The in-place form of a one-kernel binary op when nothing is recorded (grad mode off,
 * or neither operand nor self's base requires grad), self is dense (contiguous, or a permutation of a contiguous block) and already the
 * result's shape and dtype: the kernel writes into self, no temporary and no copy back.
 * Returns 1 when that does not apply (the caller takes the general path, which also
 * reports any error), else 0 or a status. The caller has run ct__check_inplace_binary. */
int ct__inplace_binary_direct(ct_op op, const char *name, ct_tensor *self, const ct_tensor *b, ct_ew_kind kind,
                              const double *params);

/* The checks of an in-place binary op: ct__check_inplace, and PyTorch's refusal of an
 * operand that shares some but not all of self's memory (x[1:] += x[:-1]). 0 or status. */
int ct__check_inplace_binary(const char *name, ct_tensor *self, const ct_tensor *b);
/* The in-place form of a one-kernel op: the checks, then ct__inplace_binary_direct, else
 * the general path through fn. */
int ct__inplace_binary_op(const char *name, ct_tensor *self, const ct_tensor *b, ct_binary_fn fn, ct_op op,
                          ct_ew_kind kind, const double *params);

/* Defines ct_NAME_ and ct_NAME_out from ct_NAME. */
#define CT_DEFINE_UNARY_VARIANTS(name)                                                                  \
    CT_API int ct_##name##_(ct_tensor *self) { return ct__inplace_unary(#name "_", self, ct_##name); } \
    CT_API int ct_##name##_out(ct_tensor *out, const ct_tensor *x) { return ct__out_unary(#name, out, x, ct_##name); }
#define CT_DEFINE_BINARY_VARIANTS(name)                                                       \
    CT_API int ct_##name##_(ct_tensor *self, const ct_tensor *b) {                            \
        return ct__inplace_binary(#name "_", self, b, ct_##name);                             \
    }                                                                                         \
    CT_API int ct_##name##_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b) {      \
        return ct__out_binary(#name, out, a, b, ct_##name);                                   \
    }

/* The same for an op that is one kernel (op, kind, params): ct_NAME_ writes straight
 * into self when ct__inplace_binary_direct applies. */
#define CT_DEFINE_BINARY_VARIANTS_DIRECT(name, op, kind, params)                                \
    CT_API int ct_##name##_(ct_tensor *self, const ct_tensor *b) {                            \
        return ct__inplace_binary_op(#name "_", self, b, ct_##name, op, kind, params);        \
    }                                                                                         \
    CT_API int ct_##name##_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b) {      \
        return ct__out_binary(#name, out, a, b, ct_##name);                                   \
    }

#endif
