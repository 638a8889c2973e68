/* ctorch/core.h — version, dtypes, devices, errors, ownership scopes, threads.
 *
 * OWNERSHIP (the one rule every function follows)
 *   Every function that returns a `ct_tensor *` returns a NEW REFERENCE.
 *   - If a scope is open (ct_scope_begin), that reference belongs to the innermost
 *     scope and is released by ct_scope_end(). Call ct_keep(t) to move it out of the
 *     scope: into the enclosing scope if there is one, otherwise to you.
 *   - If no scope is open, the reference is yours: release it with ct_release().
 *   - Never ct_release() a reference a scope owns (ct_keep() it first).
 *   Arguments are borrowed: functions never take over a reference you pass in.
 *   Objects that store tensors (autograd graphs, modules, optimizers) take their own
 *   references, so releasing yours early is always safe.
 *
 * ERRORS
 *   Functions returning a pointer return NULL on failure; functions returning int
 *   return 0 on success and a negative ct_status on failure. The reason is kept in a
 *   thread-local record: ct_last_error() gives a message that names the op and the
 *   offending shapes, e.g. "matmul: cannot multiply [2, 3] by [4, 5]".
 *   A NULL tensor argument makes an op fail quietly: the first error message is kept,
 *   so a chain of calls can be checked once at its end. Nothing in ctorch aborts or
 *   exits on bad input; out-of-memory is reported as CT_ERR_OOM.
 *
 * THREADS
 *   ctorch uses one OpenMP thread pool, shared with OpenBLAS (its OpenMP build).
 *   Error records, scopes and grad mode are thread-local. Tensors may be shared
 *   read-only between threads (reference counts are atomic): independent threads may
 *   run forward passes over shared parameters. Writing to a tensor (in-place ops,
 *   backward into the same .grad) while another thread reads it is a data race: the
 *   caller must serialise such access.
 */
#ifndef CTORCH_CORE_H
#define CTORCH_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  ifdef CT_BUILDING
#    define CT_API __declspec(dllexport)
#  else
#    define CT_API
#  endif
#else
#  define CT_API __attribute__((visibility("default")))
#endif

/* ---- version (semantic versioning; the shared library's soname is MAJOR.MINOR) ---- */
#define CT_VERSION_MAJOR 0
#define CT_VERSION_MINOR 1
#define CT_VERSION_PATCH 0
/* Returns a static string such as "0.1.0". Never NULL; do not free. */
CT_API const char *ct_version(void);

/* ---- dtypes: the same set and order of promotion categories as PyTorch ---- */
typedef enum ct_dtype {
    CT_BOOL = 0,
    CT_UINT8,
    CT_INT8,
    CT_INT16,
    CT_INT32,
    CT_INT64,
    CT_FLOAT16,
    CT_BFLOAT16,
    CT_FLOAT32,
    CT_FLOAT64,
    CT_COMPLEX64,
    CT_COMPLEX128,
    CT_NUM_DTYPES
} ct_dtype;

/* Name as PyTorch prints it ("float32", "int64", ...). Static string, never NULL. */
CT_API const char *ct_dtype_name(ct_dtype dtype);
/* Bytes per element; 0 for an invalid dtype. */
CT_API size_t ct_dtype_size(ct_dtype dtype);
CT_API bool ct_dtype_is_floating(ct_dtype dtype);
CT_API bool ct_dtype_is_complex(ct_dtype dtype);
CT_API bool ct_dtype_is_integral(ct_dtype dtype, bool include_bool);
/* torch.promote_types(a, b). */
CT_API ct_dtype ct_promote_types(ct_dtype a, ct_dtype b);
/* The default floating dtype (float32 unless changed, like torch.set_default_dtype). */
CT_API ct_dtype ct_get_default_dtype(void);
/* Accepts CT_FLOAT32 or CT_FLOAT64; returns 0 or CT_ERR_DTYPE. */
CT_API int ct_set_default_dtype(ct_dtype dtype);

/* ---- devices ---- */
typedef enum ct_device_type { CT_DEVICE_CPU = 0, CT_DEVICE_OPENCL = 1, CT_DEVICE_CUDA = 2, CT_NUM_DEVICE_TYPES } ct_device_type;
typedef struct ct_device {
    ct_device_type type;
    int index;
} ct_device;
#define CT_CPU ((ct_device){CT_DEVICE_CPU, 0})

/* ---- errors ---- */
typedef enum ct_status {
    CT_OK = 0,
    CT_ERR_ARG = -1,       /* invalid argument value (NULL, bad option) */
    CT_ERR_SHAPE = -2,     /* incompatible shapes */
    CT_ERR_DTYPE = -3,     /* unsupported or mismatched dtype */
    CT_ERR_DEVICE = -4,    /* wrong or unsupported device */
    CT_ERR_INDEX = -5,     /* dim or index out of range */
    CT_ERR_OOM = -6,       /* out of memory */
    CT_ERR_AUTOGRAD = -7,  /* autograd misuse (e.g. modified by an inplace operation) */
    CT_ERR_RUNTIME = -8,   /* anything else (internal) */
    CT_ERR_NULL = -9,      /* a NULL tensor argument with no earlier error recorded */
    CT_ERR_IO = -10,       /* a file could not be opened, read, written or renamed */
    CT_ERR_FORMAT = -11,   /* malformed, truncated or unsupported file or data */
    CT_ERR_KEY = -12       /* a name not found (state dicts, dictionaries) */
} ct_status;

/* Message of the last error on this thread ("" if none). Valid until the next error
 * or ct_clear_error() on this thread; do not free. */
CT_API const char *ct_last_error(void);
/* Code of the last error on this thread (CT_OK if none). */
CT_API ct_status ct_last_status(void);
CT_API void ct_clear_error(void);
/* Records an error (printf-style message) on this thread, as the library's own
 * functions do: for user code that plugs into ctorch (module forwards, datasets,
 * collate functions, LambdaLR callbacks). Returns status, so `return ct_set_error(...)`
 * reads naturally; CT_OK clears the error. */
CT_API int ct_set_error(ct_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Static description of a status code. */
CT_API const char *ct_status_str(ct_status status);
/* Optional hook called on every new error on any thread (e.g. to log or abort in
 * debug builds). NULL removes it. */
typedef void (*ct_error_handler)(ct_status status, const char *message, void *user);
CT_API void ct_set_error_handler(ct_error_handler handler, void *user);

/* ---- tensors: opaque, reference counted ---- */
typedef struct ct_tensor ct_tensor;

/* Adds a reference (not registered in any scope). Returns t (NULL-safe). */
CT_API ct_tensor *ct_retain(ct_tensor *t);
/* Drops a reference; frees the tensor (and its storage, when the last view goes)
 * when none is left. NULL-safe. Never release a reference that a scope owns. */
CT_API void ct_release(ct_tensor *t);

/* ---- scopes ---- */
/* Opens a scope on this thread. Returns 0, or CT_ERR_OOM. */
CT_API int ct_scope_begin(void);
/* Releases every reference the innermost scope owns and closes it. Returns 0, or
 * CT_ERR_ARG if no scope is open. */
CT_API int ct_scope_end(void);
/* Moves t (owned by the innermost scope) to the enclosing scope, or to the caller if
 * there is none. Returns t; NULL if t is NULL. If t is not owned by the innermost
 * scope, a new reference is added instead, owned as described above. */
CT_API ct_tensor *ct_keep(ct_tensor *t);
/* Number of open scopes on this thread. */
CT_API int ct_scope_depth(void);

/* ---- threads ---- */
/* Sets the number of threads for ctorch's and BLAS's loops (>= 1). */
CT_API void ct_set_num_threads(int n);
CT_API int ct_get_num_threads(void);
/* torch.set_flush_denormal: treat denormal floats as zero (x86 FTZ/DAZ) on this thread
 * and the current OpenMP pool, avoiding the large slowdown denormal arithmetic causes
 * late in training. Returns false where the CPU has no such mode. Call it again after
 * raising the thread count. */
CT_API bool ct_set_flush_denormal(bool on);

/* ---- memory (CPU caching allocator) ----
 * Freed storage is kept in size classes for reuse, up to CTORCH_CACHE_LIMIT_MB
 * (environment, default 1024). */
CT_API int64_t ct_memory_allocated(void); /* bytes in live storages (rounded to size classes) */
CT_API int64_t ct_memory_peak(void);      /* highest ct_memory_allocated() so far */
CT_API void ct_memory_reset_peak(void);
CT_API int64_t ct_memory_cached(void);    /* bytes held for reuse */
CT_API void ct_empty_cache(void);         /* returns cached blocks to the system */
CT_API int64_t ct_live_tensors(void);     /* tensor handles alive (leak checks) */

#ifdef __cplusplus
}
#endif
#endif
