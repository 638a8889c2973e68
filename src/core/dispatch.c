/* Backend registry and dispatch. */
#include <omp.h>
#include <pthread.h>

#include "core/dispatch.h"

static const char *const op_names[CT_OP_COUNT] = {
#define CT_OP(e, name) name,
#include "core/ops.def"
#undef CT_OP
};

const char *ct__op_name(ct_op op) { return (unsigned)op < CT_OP_COUNT ? op_names[op] : "?"; }

static ct_backend *backends[CT_NUM_DEVICE_TYPES];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

ct_backend *ct_cpu_backend(void);

void ct__register_backend(ct_backend *b) { backends[b->type] = b; }

static void init_backends(void) { ct__register_backend(ct_cpu_backend()); }

static const char *dev_name(ct_device_type t) {
    switch (t) {
    case CT_DEVICE_CPU: return "cpu";
    case CT_DEVICE_OPENCL: return "opencl";
    case CT_DEVICE_CUDA: return "cuda";
    default: return "?";
    }
}

bool ct__has_kernel(ct_device_type dt, ct_op op) {
    pthread_once(&init_once, init_backends);
    return (int)dt >= 0 && dt < CT_NUM_DEVICE_TYPES && backends[dt] && backends[dt]->kernels[op];
}

int ct__dispatch(ct_kernel_args *a) {
    pthread_once(&init_once, init_backends);
    const ct_tensor *first = NULL; /* the first tensor given (optional slots may be NULL) */
    for (int i = 0; i < a->n_out && !first; i++) first = a->out[i];
    for (int i = 0; i < a->n_in && !first; i++) first = a->in[i];
    if (!first) return ct__errs(CT_ERR_RUNTIME, "%s: internal error: a kernel call without tensors", ct__op_name(a->op));
    ct_device_type dt = first->storage->device.type;
    for (int i = 0; i < a->n_in + a->n_tv; i++) {
        const ct_tensor *t = i < a->n_in ? a->in[i] : a->tv[i - a->n_in];
        if (t && t->storage->device.type != dt)
            return ct__errs(CT_ERR_DEVICE,
                            "%s: Expected all tensors to be on the same device, but found at least two devices, %s and %s",
                            ct__op_name(a->op), dev_name(dt), dev_name(t->storage->device.type));
    }
    ct_backend *b = backends[dt];
    if (!b) return ct__errs(CT_ERR_DEVICE, "%s: no backend for device %s", ct__op_name(a->op), dev_name(dt));
    ct_kernel_fn fn = b->kernels[a->op];
    if (!fn)
        return ct__errs(CT_ERR_DEVICE, "%s: not implemented on device %s", ct__op_name(a->op), dev_name(dt));
    return fn(a);
}

int ct__copy_raw(ct_tensor *dst, const ct_tensor *src) {
    ct_kernel_args a = {.op = CT_OP_COPY, .n_out = 1, .n_in = 1, .out = {dst}, .in = {src}};
    if (dst->numel == 0) return 0;
    return ct__dispatch(&a);
}

int ct__fill_raw(ct_tensor *dst, double v) {
    ct_kernel_args a = {.op = CT_OP_FILL, .n_out = 1, .out = {dst}, .d = {v, 0}};
    if (dst->numel == 0) return 0;
    return ct__dispatch(&a);
}

ct_tensor *ct__to_cpu_raw(const ct_tensor *t) {
    if (t->storage->device.type == CT_DEVICE_CPU) return ct_retain((ct_tensor *)t);
    return ct__err(CT_ERR_DEVICE, "to_cpu: no backend can copy from device %s", dev_name(t->storage->device.type));
}

/* ---- threads ---- */
CT_API void ct_set_num_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
}
CT_API int ct_get_num_threads(void) { return omp_get_max_threads(); }

/* torch.set_flush_denormal: MXCSR's flush-to-zero and denormals-are-zero bits, on the
 * calling thread and on every thread of the OpenMP pool (shared with OpenBLAS). */
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
static void set_ftz(bool on) {
    unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? (csr | 0x8040u) : (csr & ~0x8040u));
}
CT_API bool ct_set_flush_denormal(bool on) {
    set_ftz(on);
#pragma omp parallel
    set_ftz(on);
    return true;
}
#else
CT_API bool ct_set_flush_denormal(bool on) {
    (void)on;
    return false;
}
#endif
int ct__num_threads(void) { return omp_get_max_threads(); }
