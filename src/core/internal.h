/* Internal core definitions: tensor and storage layout, errors, scopes, dtype
 * helpers. Not installed; nothing here is part of the public API. */
#ifndef CT_INTERNAL_H
#define CT_INTERNAL_H

#include <assert.h>
#include <complex.h>
#include <omp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ctorch.h"

/* C11's CMPLX is missing from some toolchains (clang 14 with glibc): build the value
 * from its parts through a union, which keeps infinities and NaNs intact. */
#ifndef CMPLX
static inline double complex ct__cmplx(double re, double im) {
    union { double complex z; double p[2]; } u = {.p = {re, im}};
    return u.z;
}
#define CMPLX(x, y) ct__cmplx((x), (y))
#endif
#ifndef CMPLXF
static inline float complex ct__cmplxf(float re, float im) {
    union { float complex z; float p[2]; } u = {.p = {re, im}};
    return u.z;
}
#define CMPLXF(x, y) ct__cmplxf((x), (y))
#endif

#define CT_INLINE_DIMS 6
#define CT_MAX_DIMS 64 /* PyTorch's own limit for most ops */
#define CT_ALIGN 64

/* Thread-locals read by every op (grad mode, the scope stack, header caches): the
 * initial-exec model reads them at a fixed offset instead of calling __tls_get_addr
 * (a tenth of a small op's time). They total a few dozen bytes, well inside the
 * static-TLS surplus glibc keeps for libraries loaded with dlopen. */
#if defined(__GNUC__) && defined(__ELF__) && !defined(__EMSCRIPTEN__)
#define CT_TLS_HOT __attribute__((tls_model("initial-exec")))
#else
#define CT_TLS_HOT
#endif
#define CT_UNUSED(x) (void)(x)
#define CT_LIKELY(x) __builtin_expect(!!(x), 1)
#define CT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- storage ---- */
typedef struct ct_storage {
    atomic_int refcount;
    void *data;
    size_t nbytes;
    ct_device device;
    atomic_llong version; /* bumped by every in-place write */
    atomic_llong graph_version; /* bumped when an in-place op rebases the history of an alias */
    void (*deleter)(void *data, void *ctx); /* borrowed memory: called on free */
    void *deleter_ctx;
    bool borrowed;
} ct_storage;

typedef struct ct_node ct_node;
typedef struct ct_hook_entry ct_hook_entry;

struct ct_tensor {
    atomic_int refcount;
    ct_dtype dtype;
    int ndim;
    int64_t *sizes;   /* -> small[] or heap */
    int64_t *strides; /* -> small[CT_INLINE_DIMS] or heap */
    int64_t small[2 * CT_INLINE_DIMS];
    int64_t offset; /* in elements */
    int64_t numel;
    ct_storage *storage;
    /* autograd */
    bool requires_grad;   /* leaves only; non-leaves require grad iff grad_fn */
    bool retains_grad;
    bool is_wrapped_number; /* a Python-like scalar for type promotion */
    int output_nr;
    int64_t hist_version;  /* storage graph_version when grad_fn was last set: older = stale */
    ct_node *grad_fn;      /* strong */
    ct_node *grad_acc;     /* cached AccumulateGrad of a leaf (autograd.c: grad_accumulator) */
    ct_tensor *grad;       /* strong */
    ct_tensor *view_base;  /* strong: the root tensor a view was taken from (NULL if not a view) */
    ct_hook_entry *hooks;  /* leaf hooks (non-leaf hooks live on grad_fn) */
};

/* ---- errors ---- */
/* Records an error (printf-style message) and returns NULL for convenience. */
void *ct__err(ct_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, returning the status. */
int ct__errs(ct_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Called when an op receives a NULL tensor: keeps an earlier error if there is one. */
void *ct__null_arg(const char *op);
#define CT_CHECK_ARG(op, t) \
    do { if (CT_UNLIKELY(!(t))) return ct__null_arg(op); } while (0)
#define CT_CHECK_ARG_S(op, t) \
    do { if (CT_UNLIKELY(!(t))) { ct__null_arg(op); return ct_last_status(); } } while (0)
/* "[2, 3]" into buf. */
char *ct__shape_str(int ndim, const int64_t *sizes, char *buf, size_t n);
#define CT_SHAPESTR(t) ct__shape_str((t)->ndim, (t)->sizes, (char[256]){0}, 256)
#define CT_SIZESSTR(nd, s) ct__shape_str((nd), (s), (char[256]){0}, 256)

/* ---- allocation ---- */
void *ct__alloc(size_t nbytes);  /* 64-byte aligned; NULL + CT_ERR_OOM on failure */
void ct__free(void *p, size_t nbytes);
ct_storage *ct__storage_new(size_t nbytes);
/* Storage over caller memory; deleter(data, ctx) runs when it goes (may be NULL). */
ct_storage *ct__storage_borrow(void *data, size_t nbytes, void (*deleter)(void *, void *), void *ctx);
void ct__storage_release(ct_storage *s);
/* A fresh tensor header over a storage (steals no reference: retains s). */
ct_tensor *ct__tensor_new(ct_storage *s, ct_dtype dtype, int ndim, const int64_t *sizes,
                          const int64_t *strides, int64_t offset);
/* Contiguous uninitialised tensor; not registered in a scope. */
/* Per-thread caches of fixed-size header blocks (src/core/tensor.c): get returns an
 * uninitialised block (NULL on OOM), put hands one back. */
typedef enum { CT_HDR_TENSOR, CT_HDR_STORAGE, CT_HDR_NODE, CT_HDR_KINDS } ct_hdr_kind;
void *ct__hdr_get(ct_hdr_kind k);
void ct__hdr_put(ct_hdr_kind k, void *p);
size_t ct__node_size(void); /* sizeof(ct_node), from autograd.c */
ct_tensor *ct__empty_raw(int ndim, const int64_t *sizes, ct_dtype dtype);
/* t itself (a new reference) when contiguous, else a contiguous copy; no autograd, not
 * registered in a scope; NULL + error on failure. For kernels that need dense input. */
ct_tensor *ct__contiguous_raw(const ct_tensor *t);
/* Uninitialised tensor shaped like `like`, with its dim order (torch's preserve_format). */
ct_tensor *ct__empty_like_raw(const ct_tensor *like, ct_dtype dtype);
/* perm[0] = the fastest-varying dim of a strided layout (PyTorch's stride order). */
void ct__dim_order(int nd, const int64_t *sizes, const int64_t *strides, int64_t *perm);
/* The same over n operands (broadcast strides): the first operand that orders two dims decides. */
void ct__dim_order_n(int nd, const int64_t *sizes, int n, const int64_t *const *strides, int64_t *perm);
/* Result of an elementwise op over inputs ins broadcast to shape, laid out as
 * TensorIterator lays out its output: contiguous unless the inputs share another dense
 * dim order (a transposed or channels-last input gives a result with its strides). */
ct_tensor *ct__empty_ew_raw(int nd, const int64_t *shape, ct_dtype dt, int n, const ct_tensor *const *ins);
/* Registers a freshly created tensor with the innermost scope (if any) and returns it. */
ct_tensor *ct__ret(ct_tensor *t);
/* Takes t out of the innermost scope, giving the caller its reference. */
ct_tensor *ct__scope_take(ct_tensor *t);
/* A view header sharing t's storage with new geometry (not registered). */
ct_tensor *ct__alias(const ct_tensor *t, int ndim, const int64_t *sizes, const int64_t *strides, int64_t offset);
/* The same geometry written into a header the caller holds (on its stack), for handing
 * a reshaped operand to a kernel: the storage is borrowed, not counted, so the header
 * must not outlive t and must never be retained, released or returned. No autograd
 * state. ndim <= CT_INLINE_DIMS. */
/* Inline: the callers pass sizes and strides as compound literals, and a call copied
 * them back out of the stack with 16-byte loads of 8-byte stores, a store-forwarding
 * stall each (a tenth of a 16^3 matmul's 260 ns went here); inlined, they fold into
 * the header's fields. */
static inline void ct__alias_borrowed(ct_tensor *dst, const ct_tensor *t, int ndim, const int64_t *sizes,
                                      const int64_t *strides, int64_t offset) {
    assert(ndim >= 0 && ndim <= CT_INLINE_DIMS);
    /* the autograd fields zeroed; small[] past ndim is never read */
    memset(&dst->requires_grad, 0, sizeof *dst - offsetof(ct_tensor, requires_grad));
    atomic_init(&dst->refcount, 1);
    dst->dtype = t->dtype;
    dst->ndim = ndim;
    dst->sizes = dst->small;
    dst->strides = dst->small + CT_INLINE_DIMS;
    int64_t numel = 1;
    for (int i = 0; i < ndim && i < CT_INLINE_DIMS; i++) {
        dst->sizes[i] = sizes[i];
        dst->strides[i] = strides[i];
        numel *= sizes[i];
    }
    dst->offset = offset;
    dst->numel = numel;
    dst->storage = t->storage;
}
void ct__contiguous_strides(int ndim, const int64_t *sizes, int64_t *strides);
bool ct__is_contiguous(const ct_tensor *t);
/* Whether t, viewed as [outer = prod(sizes[:d]), block = prod(sizes[d:])], has each block
 * contiguous and the blocks evenly spaced: then *outer_stride (elements) is the distance
 * between consecutive blocks (0 when there is only one). A narrow along d of a
 * contiguous tensor qualifies. */
bool ct__blocks_contiguous(const ct_tensor *t, int d, int64_t *outer_stride);
/* Every element at its own place in one gap-free block, in some order of the dims (a
 * contiguous tensor, or a transpose or permutation of one). */
bool ct__is_dense(const ct_tensor *t);
int64_t ct__prod(int ndim, const int64_t *sizes);
/* Normalises a dim for a tensor of rank ndim (ndim 0 accepts -1 and 0). -1 + error if bad. */
int ct__wrap_dim(const char *op, int dim, int ndim);
static inline void *ct__data(const ct_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)ct_dtype_size(t->dtype);
}
static inline bool ct__same_sizes(int na, const int64_t *a, int nb, const int64_t *b) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return false;
    return true;
}
static inline void ct__bump_version(ct_tensor *t) { atomic_fetch_add(&t->storage->version, 1); }

/* ---- dtypes ---- */
typedef struct { uint16_t x; } ct_half;
typedef struct { uint16_t x; } ct_bf16;
typedef float _Complex ct_c64;
typedef double _Complex ct_c128;

static inline float ct_half_to_float(ct_half h) {
    uint32_t sign = (uint32_t)(h.x & 0x8000u) << 16, exp = (h.x >> 10) & 0x1f, man = h.x & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) { man <<= 1; exp--; }
            man &= 0x3ffu;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0); /* NaN quieted, as F16C */
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f; memcpy(&f, &bits, 4); return f;
}
static inline ct_half ct_float_to_half(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    ct_half h;
    if (ax >= 0x7f800000u) { h.x = (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0)); return h; }
    if (ax >= 0x477ff000u) { h.x = (uint16_t)(sign | 0x7c00u); return h; } /* overflow -> inf */
    if (ax < 0x38800000u) { /* subnormal or zero: round to nearest even */
        if (ax < 0x33000000u) { h.x = (uint16_t)sign; return h; }
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* value = m * 2^(e-150); half subnormal unit is 2^-24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        h.x = (uint16_t)(sign | r); return h;
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent */
    uint32_t m = r >> 13, rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (m & 1))) m++;
    h.x = (uint16_t)(sign | m); return h;
}
/* float16 or bfloat16: the types PyTorch's CPU kernels compute in float32 */
static inline bool ct__is_half(ct_dtype dt) { return dt == CT_FLOAT16 || dt == CT_BFLOAT16; }
static inline float ct_bf16_to_float(ct_bf16 b) {
    uint32_t bits = (uint32_t)b.x << 16; float f; memcpy(&f, &bits, 4); return f;
}
static inline ct_bf16 ct_float_to_bf16(float f) {
    uint32_t x; memcpy(&x, &f, 4); ct_bf16 b;
    if ((x & 0x7fffffffu) > 0x7f800000u) { b.x = 0x7fc0; return b; }
    x += 0x7fffu + ((x >> 16) & 1u); /* round to nearest even */
    b.x = (uint16_t)(x >> 16); return b;
}

/* X-macro over every dtype: X(ENUM, ctype, short) */
#define CT_FOR_ALL_DTYPES(X) \
    X(CT_BOOL, bool, b) X(CT_UINT8, uint8_t, u8) X(CT_INT8, int8_t, i8) X(CT_INT16, int16_t, i16) \
    X(CT_INT32, int32_t, i32) X(CT_INT64, int64_t, i64) X(CT_FLOAT16, ct_half, f16) \
    X(CT_BFLOAT16, ct_bf16, bf16) X(CT_FLOAT32, float, f32) X(CT_FLOAT64, double, f64) \
    X(CT_COMPLEX64, ct_c64, c64) X(CT_COMPLEX128, ct_c128, c128)

/* Reading / writing one element of any dtype as double or complex (slow path). */
double ct__load_f64(const void *p, ct_dtype dt);
ct_c128 ct__load_c128(const void *p, ct_dtype dt);
int64_t ct__load_i64(const void *p, ct_dtype dt);
void ct__store_f64(void *p, ct_dtype dt, double v);
void ct__store_c128(void *p, ct_dtype dt, ct_c128 v);
void ct__store_i64(void *p, ct_dtype dt, int64_t v);

/* Result dtype of an op over tensors, PyTorch's result_type (wrapped numbers and
 * 0-dim tensors rank below dimensioned ones unless of a higher category). */
ct_dtype ct__result_type(int n, const ct_tensor *const *ts);
/* Writes buf to path atomically (temporary file in the same directory, fsync, rename);
 * who names the caller in messages. 0 or CT_ERR_IO (src/io/safetensors.c). */
int ct__atomic_write(const char *path, const void *buf, size_t n, const char *who);
/* The whole file at path in a malloc'd buffer (*n bytes), or NULL with CT_ERR_IO /
 * CT_ERR_OOM naming who (src/io/safetensors.c). */
unsigned char *ct__read_file(const char *path, size_t *n, const char *who);
/* PyTorch's ScalarType name of a dtype ("Float", "Long"), for error messages. */
const char *ct__scalar_type_name(ct_dtype dt);
/* Converts in place to the given dtype if needed: returns t retained or a cast copy
 * (unregistered, no autograd). */
ct_tensor *ct__cast_raw(const ct_tensor *t, ct_dtype dt);

/* ---- grad mode / autograd hooks used by ops ---- */
bool ct__grad_enabled(void);
/* True if grad mode is on and any input requires grad. */
bool ct__needs_grad(int n, const ct_tensor *const *ts);
static inline bool ct__tensor_requires_grad(const ct_tensor *t) {
    return t && (t->requires_grad || t->grad_fn != NULL);
}

/* ---- fused ops used by modules (src/ops) ---- */
/* dropout(relu(h), p, training=True) with PyTorch's values and draws, saving only its
 * output for backward (src/ops/activation.c). Scope-owned result. */
ct_tensor *ct__relu_dropout(const ct_tensor *h, double p, struct ct_generator *gen);
/* relu(batch_norm(input)) and max_pool2d(relu(batch_norm(input))) as one node each, with
 * the ops' values and gradients (src/ops/nnf.c): what Sequential runs for BatchNorm2d ->
 * ReLU (-> MaxPool2d) on 4-D input.
 * Arguments as ct_nn_batch_norm's and ct_nn_max_pool2d's; a new tensor (the current
 * scope's), or NULL with the failing op's error. */
struct ct_pool_opts;
ct_tensor *ct__nn_batch_norm_relu(const ct_tensor *input, ct_tensor *rm, ct_tensor *rv, const ct_tensor *w,
                                  const ct_tensor *b, bool training, double momentum, double eps);
ct_tensor *ct__nn_batch_norm_relu_max_pool2d(const ct_tensor *input, ct_tensor *rm, ct_tensor *rv, const ct_tensor *w,
                                             const ct_tensor *b, bool training, double momentum, double eps,
                                             const int64_t kernel[2], const struct ct_pool_opts *opts);

/* ---- threads ---- */
#define CT_GRAIN 32768 /* elements below which a loop stays on one thread */
int ct__num_threads(void);

/* Parallel regions entered only when they will have threads to run on. libgomp runs a
 * region whose if() clause is false as a team of one thread, and that took ~350 ns and a
 * futex system call per call on the AMD EPYC host (half of a 64-element mean's time).
 * These run the loop or block on the calling thread instead when COND is false outside
 * any region; inside an active region they keep the if() region, as a "#pragma omp for"
 * in the block would otherwise bind to the enclosing team. The body is compiled twice.
 *   CT_PARALLEL_FOR_IF(COND, FOR, body...): FOR a for-statement head without commas; as
 *     "#pragma omp parallel for schedule(static) if (COND)" on FOR { body }.
 *   CT_PARALLEL_IF(COND, block...): as "#pragma omp parallel if (COND)" on { block }; on
 *     the calling thread an _Pragma("omp for ...") in it runs the whole loop,
 *     omp_get_thread_num() is 0 and omp_get_num_threads() 1. */
#define CT_PRAGMA_(...) _Pragma(#__VA_ARGS__)
#define CT_PARALLEL_FOR_IF(COND, FOR, ...)                                                            \
    do {                                                                                              \
        if (!(COND) && !omp_in_parallel()) {                                                          \
            FOR { __VA_ARGS__ }                                                                       \
        } else {                                                                                      \
            CT_PRAGMA_(omp parallel for schedule(static) if (COND))                                  \
            FOR { __VA_ARGS__ }                                                                       \
        }                                                                                             \
    } while (0)
#define CT_PARALLEL_IF(COND, ...) CT_PARALLEL_NT_IF(COND, omp_get_max_threads(), __VA_ARGS__)
/* ... with a team of NT threads when COND */
#define CT_PARALLEL_NT_IF(COND, NT, ...)                                                              \
    do {                                                                                              \
        if (!(COND) && !omp_in_parallel()) {                                                          \
            __VA_ARGS__                                                                               \
        } else {                                                                                      \
            CT_PRAGMA_(omp parallel num_threads(NT) if (COND))                                        \
            { __VA_ARGS__ }                                                                           \
        }                                                                                             \
    } while (0)

#endif
