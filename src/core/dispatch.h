/* Backend dispatch: every op reaches its kernel through the table of the tensor's
 * device. A backend is a folder (src/cpu, later src/opencl, src/cuda) that fills one
 * ct_backend: memory functions plus kernels[op]. An op with no kernel on a device
 * runs on the CPU with explicit copies (counted in ct_fallback_count). */
#ifndef CT_DISPATCH_H
#define CT_DISPATCH_H

#include "core/internal.h"

typedef enum ct_op {
#define CT_OP(e, name) CT_OP_##e,
#include "core/ops.def"
#undef CT_OP
    CT_OP_COUNT
} ct_op;

const char *ct__op_name(ct_op op);

/* Arguments of one kernel call. Tensors are borrowed. Front ends have already checked
 * shapes, dtypes and devices, and allocated the outputs. */
typedef struct ct_kernel_args {
    ct_op op;
    int n_out, n_in;
    ct_tensor *out[6];
    const ct_tensor *in[6];
    double d[6];          /* scalar parameters, per op */
    int64_t i[6];         /* integer parameters, per op */
    const int64_t *iv;    /* e.g. reduced dims */
    int n_iv;
    const ct_tensor *const *tv; /* a variable number of inputs (cat), on out[0]'s device */
    int n_tv;
} ct_kernel_args;

/* 0 on success, negative ct_status (with ct__err message) on failure. */
typedef int (*ct_kernel_fn)(const ct_kernel_args *a);

typedef struct ct_backend {
    const char *name;
    ct_device_type type;
    ct_kernel_fn kernels[CT_OP_COUNT];
} ct_backend;

/* Registers a backend for its device type (called once at startup). */
void ct__register_backend(ct_backend *b);
/* Whether the backend of device type dt has a kernel for op (for fused ops that fall
 * back to their parts elsewhere). */
bool ct__has_kernel(ct_device_type dt, ct_op op);
/* Runs op on the device of the first output (or input). */
int ct__dispatch(ct_kernel_args *a);

/* Convenience wrappers around COPY and FILL. */
int ct__copy_raw(ct_tensor *dst, const ct_tensor *src); /* broadcast + cast */
int ct__fill_raw(ct_tensor *dst, double v);
ct_tensor *ct__to_cpu_raw(const ct_tensor *t);

/* CPU backend families: each file in src/cpu fills its slots. */
void ct_cpu_register_copy(ct_kernel_fn *k);
void ct_cpu_register_unary(ct_kernel_fn *k);
void ct_cpu_register_binary(ct_kernel_fn *k);
void ct_cpu_register_reduce(ct_kernel_fn *k);
void ct_cpu_register_linalg(ct_kernel_fn *k);
void ct_cpu_register_index(ct_kernel_fn *k);
void ct_cpu_register_random(ct_kernel_fn *k);
void ct_cpu_register_conv(ct_kernel_fn *k);
void ct_cpu_register_batchnorm(ct_kernel_fn *k);
void ct_cpu_register_norm(ct_kernel_fn *k);
void ct_cpu_register_rnn(ct_kernel_fn *k);
void ct_cpu_register_attention(ct_kernel_fn *k);

#endif
