/* Shared plumbing of the oneDNN kernels (conv_dnnl.c, matmul_dnnl.c): one CPU engine,
 * a cache of built primitives keyed by shape, and execution with a per-call scratchpad
 * and stream (so a cached primitive may run on several threads at once). Internal. */
#ifndef CT_CPU_DNNL_COMMON_H
#define CT_CPU_DNNL_COMMON_H
#ifdef CT_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

#include "cpu/loops.h"

#define CT_DNNL_KEY 24 /* int64 words per cache key */

/* The CPU engine, NULL if oneDNN could not make one. */
dnnl_engine_t ct__dnnl_engine(void);

/* The cached object for key (zero-padded to CT_DNNL_KEY words): built by build(key,
 * ctx) on first use, NULL when it declines. When the cache is full the object is not
 * kept and *owned is set: the caller frees it after use. */
void *ct__dnnl_cached(const int64_t key[CT_DNNL_KEY], void *(*build)(const int64_t *key, void *ctx), void *ctx,
                      bool *owned);

/* Primitive attributes asking for a user-provided scratchpad (NULL on failure; the
 * caller destroys them). */
dnnl_primitive_attr_t ct__dnnl_attr(void);

/* A byte buffer from the caching allocator (NULL for 0 bytes; *ok set false on OOM). */
ct_tensor *ct__dnnl_buffer(size_t bytes, bool *ok);

/* Executes p on stream s with its scratchpad taken from the caching allocator; args has
 * room for one more entry. */
bool ct__dnnl_run(dnnl_primitive_t p, dnnl_stream_t s, int nargs, dnnl_exec_arg_t *args);

#endif
#endif
