/* See dnnl_common.h. */
#ifdef CT_HAVE_DNNL
#include "cpu/dnnl_common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_CAP 512 /* cached primitives live as long as the process */

typedef struct {
    int64_t key[CT_DNNL_KEY];
    void *obj;
} slot;

static slot cache[CACHE_CAP];
static int cache_n;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
}

dnnl_engine_t ct__dnnl_engine(void) {
    pthread_once(&engine_once, engine_init);
    return engine;
}

void *ct__dnnl_cached(const int64_t key[CT_DNNL_KEY], void *(*build)(const int64_t *key, void *ctx), void *ctx,
                      bool *owned) {
    *owned = false;
    if (!ct__dnnl_engine()) return NULL;
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < cache_n; i++)
        if (memcmp(cache[i].key, key, sizeof cache[i].key) == 0) {
            void *o = cache[i].obj;
            pthread_mutex_unlock(&cache_mu);
            return o;
        }
    void *o = build(key, ctx);
    if (o && cache_n < CACHE_CAP) {
        memcpy(cache[cache_n].key, key, sizeof cache[cache_n].key);
        cache[cache_n++].obj = o;
    } else if (o) {
        *owned = true;
    }
    pthread_mutex_unlock(&cache_mu);
    return o;
}

dnnl_primitive_attr_t ct__dnnl_attr(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

ct_tensor *ct__dnnl_buffer(size_t bytes, bool *ok) {
    if (!bytes) return NULL;
    ct_tensor *t = ct__empty_raw(1, (int64_t[]){(int64_t)bytes}, CT_UINT8);
    if (!t) *ok = false;
    return t;
}

bool ct__dnnl_run(dnnl_primitive_t p, dnnl_stream_t s, int nargs, dnnl_exec_arg_t *args) {
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(p, &pd) != dnnl_success) return false;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    dnnl_memory_t sm = NULL;
    bool ok = true;
    ct_tensor *buf = ct__dnnl_buffer(bytes, &ok);
    if (buf) {
        ok = dnnl_memory_create(&sm, md, ct__dnnl_engine(), ct__data(buf)) == dnnl_success;
        if (ok) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sm};
    }
    ok = ok && dnnl_primitive_execute(p, s, nargs, args) == dnnl_success;
    if (sm) dnnl_memory_destroy(sm);
    ct_release(buf);
    return ok;
}
#endif
