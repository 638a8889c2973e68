/* Storage, tensor headers, properties and creation. */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"


/* ---- header blocks ----
 * Every op makes a tensor header and a storage header (and an autograd node when it
 * records), and most free as many. Each thread keeps up to HDR_KEEP freed headers of
 * each kind for reuse (a destructor frees them when the thread ends), and a storage
 * block has room for INLINE_BYTES of data after the header, so a small tensor costs no
 * separate data allocation either (512: up to 128 floats, as a bias, a small batch's
 * logits or the 100-element ops of the per-op benchmark, skip the caching allocator and
 * its lock; add of 100 floats 141 -> 115 ns). */
#define STORAGE_HDR 128 /* >= sizeof(ct_storage), a multiple of CT_ALIGN */
#define INLINE_BYTES 512
#define STORAGE_BLOCK (STORAGE_HDR + INLINE_BYTES)
#define HDR_KEEP 256

typedef struct hdr {
    struct hdr *next;
} hdr;
typedef struct hdr_cache {
    hdr *list[CT_HDR_KINDS];
    int n[CT_HDR_KINDS];
    bool registered;
    /* Tensors made minus tensors freed by this thread (either may be negative: a
     * tensor can be freed by another thread than its maker). Written only by its
     * thread with plain (relaxed) stores, so counting costs no locked instruction;
     * ct_live_tensors() sums the threads' counts. */
    atomic_llong live;
    struct hdr_cache *prev, *next; /* the registered threads (under reg_lock) */
} hdr_cache;
static _Thread_local CT_TLS_HOT hdr_cache tlc;
static pthread_key_t tlc_key;
static pthread_once_t tlc_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static hdr_cache *reg_head;  /* threads that made or freed tensors */
static int64_t live_retired; /* counts of threads that have ended (under reg_lock) */

static void tlc_free(void *p) {
    hdr_cache *c = p;
    for (int k = 0; k < CT_HDR_KINDS; k++) {
        while (c->list[k]) { hdr *n = c->list[k]->next; free(c->list[k]); c->list[k] = n; }
        c->n[k] = 0;
    }
    pthread_mutex_lock(&reg_lock);
    live_retired += atomic_load_explicit(&c->live, memory_order_relaxed);
    atomic_store_explicit(&c->live, 0, memory_order_relaxed);
    if (c->prev) c->prev->next = c->next;
    else reg_head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->registered = false; /* a later use in this thread's exit registers it again */
    pthread_mutex_unlock(&reg_lock);
}
static void tlc_init(void) { (void)pthread_key_create(&tlc_key, tlc_free); }

static hdr_cache *hcache(void) {
    if (CT_UNLIKELY(!tlc.registered)) {
        pthread_once(&tlc_once, tlc_init);
        pthread_setspecific(tlc_key, &tlc);
        pthread_mutex_lock(&reg_lock);
        tlc.prev = NULL;
        tlc.next = reg_head;
        if (reg_head) reg_head->prev = &tlc;
        reg_head = &tlc;
        pthread_mutex_unlock(&reg_lock);
        tlc.registered = true;
    }
    return &tlc;
}

static void live_add(int d) {
    hdr_cache *c = hcache();
    atomic_store_explicit(&c->live, atomic_load_explicit(&c->live, memory_order_relaxed) + d, memory_order_relaxed);
}

CT_API int64_t ct_live_tensors(void) {
    pthread_mutex_lock(&reg_lock);
    int64_t n = live_retired;
    for (const hdr_cache *c = reg_head; c; c = c->next) n += atomic_load_explicit(&c->live, memory_order_relaxed);
    pthread_mutex_unlock(&reg_lock);
    return n;
}

static size_t hdr_size(ct_hdr_kind k) {
    return k == CT_HDR_TENSOR ? sizeof(ct_tensor) : k == CT_HDR_STORAGE ? STORAGE_BLOCK : ct__node_size();
}

void *ct__hdr_get(ct_hdr_kind k) {
    hdr_cache *c = hcache();
    if (c->list[k]) {
        hdr *h = c->list[k];
        c->list[k] = h->next;
        c->n[k]--;
        return h;
    }
    return aligned_alloc(CT_ALIGN, (hdr_size(k) + CT_ALIGN - 1) / CT_ALIGN * CT_ALIGN);
}

void ct__hdr_put(ct_hdr_kind k, void *p) {
    hdr_cache *c = hcache();
    if (c->n[k] >= HDR_KEEP) { free(p); return; }
    hdr *h = p;
    h->next = c->list[k];
    c->list[k] = h;
    c->n[k]++;
}

static ct_storage *storage_hdr(void) {
    _Static_assert(sizeof(ct_storage) <= STORAGE_HDR, "storage header block too small");
    ct_storage *s = ct__hdr_get(CT_HDR_STORAGE);
    if (!s) return ct__err(CT_ERR_OOM, "out of memory allocating a storage");
    memset(s, 0, sizeof *s);
    atomic_init(&s->refcount, 1);
    s->device = CT_CPU;
    return s;
}

static bool data_inline(const ct_storage *s) { return s->data == (const char *)s + STORAGE_HDR; }

ct_storage *ct__storage_new(size_t nbytes) {
    ct_storage *s = storage_hdr();
    if (!s) return NULL;
    s->data = nbytes <= INLINE_BYTES ? (char *)s + STORAGE_HDR : ct__alloc(nbytes);
    if (!s->data) { ct__hdr_put(CT_HDR_STORAGE, s); return NULL; }
    s->nbytes = nbytes;
    return s;
}

ct_storage *ct__storage_borrow(void *data, size_t nbytes, void (*deleter)(void *, void *), void *ctx) {
    ct_storage *s = storage_hdr();
    if (!s) return NULL;
    s->data = data;
    s->nbytes = nbytes;
    s->borrowed = true;
    s->deleter = deleter;
    s->deleter_ctx = ctx;
    return s;
}

/* Drops one reference; true when it was the last. A count of 1 is the caller's own
 * reference, which no other thread can copy: no locked decrement then. */
static inline bool drop_ref(atomic_int *rc) {
    return atomic_load_explicit(rc, memory_order_acquire) == 1 || atomic_fetch_sub(rc, 1) == 1;
}

void ct__storage_release(ct_storage *s) {
    if (!s || !drop_ref(&s->refcount)) return;
    if (s->borrowed) {
        if (s->deleter) s->deleter(s->data, s->deleter_ctx);
    } else if (!data_inline(s)) ct__free(s->data, s->nbytes);
    ct__hdr_put(CT_HDR_STORAGE, s);
}

int64_t ct__prod(int ndim, const int64_t *sizes) {
    int64_t p = 1;
    for (int i = 0; i < ndim; i++) p *= sizes[i];
    return p;
}

void ct__contiguous_strides(int ndim, const int64_t *sizes, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= sizes[i] > 1 ? sizes[i] : 1;
    }
}

bool ct__is_contiguous(const ct_tensor *t) {
    if (t->numel < 2) return true;
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->sizes[i] != 1 && t->strides[i] != s) return false;
        s *= t->sizes[i];
    }
    return true;
}

bool ct__blocks_contiguous(const ct_tensor *t, int d, int64_t *outer_stride) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= d; i--) {
        if (t->sizes[i] != 1 && t->strides[i] != s) return false;
        s *= t->sizes[i];
    }
    int64_t os = 0, next = 0; /* the outer dims must collapse into one stride (0: expanded) */
    bool first = true;
    for (int i = d - 1; i >= 0; i--) {
        if (t->sizes[i] == 1) continue;
        if (first) os = t->strides[i], first = false;
        else if (t->strides[i] != next) return false;
        next = t->strides[i] * t->sizes[i];
    }
    *outer_stride = os;
    return true;
}

int ct__wrap_dim(const char *op, int dim, int ndim) {
    int n = ndim > 0 ? ndim : 1;
    if (dim < -n || dim >= n) {
        ct__errs(CT_ERR_INDEX, "%s: Dimension out of range (expected to be in range of [%d, %d], but got %d)", op, -n,
                 n - 1, dim);
        return -1;
    }
    return dim < 0 ? dim + n : dim;
}

ct_tensor *ct__tensor_new(ct_storage *s, ct_dtype dtype, int ndim, const int64_t *sizes, const int64_t *strides,
                          int64_t offset) {
    if (ndim < 0 || ndim > CT_MAX_DIMS)
        return ct__err(CT_ERR_ARG, "tensors of rank %d are not supported (at most %d dims)", ndim, CT_MAX_DIMS);
    ct_tensor *t = ct__hdr_get(CT_HDR_TENSOR);
    if (!t) return ct__err(CT_ERR_OOM, "out of memory allocating a tensor");
    memset(t, 0, offsetof(ct_tensor, small));
    memset((char *)t + offsetof(ct_tensor, offset), 0, sizeof *t - offsetof(ct_tensor, offset));
    atomic_init(&t->refcount, 1);
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim <= CT_INLINE_DIMS) {
        t->sizes = t->small;
        t->strides = t->small + CT_INLINE_DIMS;
    } else {
        t->sizes = malloc(sizeof(int64_t) * 2 * (size_t)ndim);
        if (!t->sizes) { ct__hdr_put(CT_HDR_TENSOR, t); return ct__err(CT_ERR_OOM, "out of memory allocating a tensor"); }
        t->strides = t->sizes + ndim;
    }
    if (ndim) memcpy(t->sizes, sizes, sizeof(int64_t) * (size_t)ndim);
    if (strides) { if (ndim) memcpy(t->strides, strides, sizeof(int64_t) * (size_t)ndim); }
    else ct__contiguous_strides(ndim, sizes, t->strides);
    t->offset = offset;
    t->numel = ct__prod(ndim, sizes);
    t->storage = s;
    atomic_fetch_add(&s->refcount, 1);
    live_add(1);
    return t;
}

static int check_sizes(const char *op, int ndim, const int64_t *sizes) {
    if (ndim < 0 || ndim > CT_MAX_DIMS || (ndim > 0 && !sizes))
        return ct__errs(CT_ERR_ARG, "%s: invalid rank %d", op, ndim);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (sizes[i] < 0)
            return ct__errs(CT_ERR_ARG, "%s: Trying to create tensor with negative dimension %lld: %s", op,
                            (long long)sizes[i], CT_SIZESSTR(ndim, sizes));
        if (sizes[i] && n > INT64_MAX / 16 / sizes[i])
            return ct__errs(CT_ERR_OOM, "%s: tensor of size %s is too large", op, CT_SIZESSTR(ndim, sizes));
        n *= sizes[i];
    }
    return 0;
}

/* A tensor on a storage of its own. The storage is not yet visible to another thread,
 * so the creator's reference is handed over with a plain store, not a locked decrement. */
static ct_tensor *on_new_storage(size_t nbytes, ct_dtype dtype, int ndim, const int64_t *sizes,
                                 const int64_t *strides) {
    ct_storage *s = ct__storage_new(nbytes);
    if (!s) return NULL;
    ct_tensor *t = ct__tensor_new(s, dtype, ndim, sizes, strides, 0);
    if (t) atomic_store_explicit(&s->refcount, 1, memory_order_relaxed);
    else ct__storage_release(s);
    return t;
}

ct_tensor *ct__empty_raw(int ndim, const int64_t *sizes, ct_dtype dtype) {
    if ((unsigned)dtype >= CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "empty: invalid dtype %d", (int)dtype);
    if (check_sizes("empty", ndim, sizes)) return NULL;
    return on_new_storage((size_t)ct__prod(ndim, sizes) * ct_dtype_size(dtype), dtype, ndim, sizes, NULL);
}

ct_tensor *ct__contiguous_raw(const ct_tensor *t) {
    if (ct__is_contiguous(t)) return ct_retain((ct_tensor *)t);
    ct_tensor *c = ct__empty_raw(t->ndim, t->sizes, t->dtype);
    if (c && ct__copy_raw(c, t)) {
        ct_release(c);
        return NULL;
    }
    return c;
}

ct_tensor *ct__alias(const ct_tensor *t, int ndim, const int64_t *sizes, const int64_t *strides, int64_t offset) {
    ct_tensor *v = ct__tensor_new(t->storage, t->dtype, ndim, sizes, strides, offset);
    return v;
}

CT_API ct_tensor *ct_retain(ct_tensor *t) {
    if (t) atomic_fetch_add(&t->refcount, 1);
    return t;
}

CT_API void ct_release(ct_tensor *t) {
    if (!t || !drop_ref(&t->refcount)) return;
    ct__autograd_tensor_freed(t);
    ct__storage_release(t->storage);
    if (t->sizes != t->small) free(t->sizes);
    live_add(-1);
    ct__hdr_put(CT_HDR_TENSOR, t);
}

/* ---- properties ---- */
CT_API int ct_ndim(const ct_tensor *t) { return t ? t->ndim : 0; }
CT_API int64_t ct_size(const ct_tensor *t, int dim) {
    if (!t) { ct__null_arg("size"); return -1; }
    int d = ct__wrap_dim("size", dim, t->ndim);
    if (d < 0) return -1;
    return t->ndim ? t->sizes[d] : 1;
}
CT_API int64_t ct_stride(const ct_tensor *t, int dim) {
    if (!t) { ct__null_arg("stride"); return -1; }
    int d = ct__wrap_dim("stride", dim, t->ndim);
    if (d < 0) return -1;
    return t->ndim ? t->strides[d] : 1;
}
CT_API const int64_t *ct_sizes(const ct_tensor *t) { return t ? t->sizes : NULL; }
CT_API const int64_t *ct_strides(const ct_tensor *t) { return t ? t->strides : NULL; }
CT_API int64_t ct_numel(const ct_tensor *t) { return t ? t->numel : 0; }
CT_API int64_t ct_storage_offset(const ct_tensor *t) { return t ? t->offset : 0; }
CT_API ct_dtype ct_get_dtype(const ct_tensor *t) { return t ? t->dtype : CT_NUM_DTYPES; }
CT_API ct_device ct_get_device(const ct_tensor *t) { return t ? t->storage->device : CT_CPU; }
CT_API bool ct_is_contiguous(const ct_tensor *t) { return t && ct__is_contiguous(t); }
CT_API void *ct_data_ptr(const ct_tensor *t) { return t ? ct__data(t) : NULL; }
CT_API bool ct_shares_storage(const ct_tensor *a, const ct_tensor *b) { return a && b && a->storage == b->storage; }
CT_API int64_t ct_version_counter(const ct_tensor *t) { return t ? (int64_t)t->storage->version : 0; }

/* ---- creation ---- */
CT_API ct_tensor *ct_empty(int ndim, const int64_t *sizes, ct_dtype dtype) {
    return ct__ret(ct__empty_raw(ndim, sizes, dtype));
}

CT_API ct_tensor *ct_empty_strided(int ndim, const int64_t *sizes, const int64_t *strides, ct_dtype dtype) {
    if ((unsigned)dtype >= CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "empty_strided: invalid dtype");
    if (check_sizes("empty_strided", ndim, sizes)) return NULL;
    int64_t extent = 0;
    bool any_zero = false;
    for (int i = 0; i < ndim; i++) {
        if (strides[i] < 0) return ct__err(CT_ERR_ARG, "empty_strided: negative strides are not supported");
        if (sizes[i] == 0) any_zero = true;
        else extent += (sizes[i] - 1) * strides[i];
    }
    size_t nbytes = any_zero ? 0 : (size_t)(extent + 1) * ct_dtype_size(dtype);
    return ct__ret(on_new_storage(nbytes, dtype, ndim, sizes, strides));
}

static ct_tensor *filled(const char *op, int ndim, const int64_t *sizes, ct_dtype dtype, double v) {
    ct_tensor *t = ct__empty_raw(ndim, sizes, dtype);
    if (!t) return NULL;
    if (ct__fill_raw(t, v)) { ct_release(t); return NULL; }
    return ct__ret(t);
}
CT_API ct_tensor *ct_zeros(int ndim, const int64_t *sizes, ct_dtype dtype) { return filled("zeros", ndim, sizes, dtype, 0); }
CT_API ct_tensor *ct_ones(int ndim, const int64_t *sizes, ct_dtype dtype) { return filled("ones", ndim, sizes, dtype, 1); }
CT_API ct_tensor *ct_full(int ndim, const int64_t *sizes, double v, ct_dtype dtype) {
    return filled("full", ndim, sizes, dtype, v);
}
/* PyTorch's dimension order for a tensor's strides (TensorIterator::reorder_dimensions
 * for one operand, and infer_dense_strides): perm[0] is the fastest-varying dim.
 * Stable insertion sort by stride; a zero stride makes a comparison ambiguous (the
 * dim stays put) and equal strides put the smaller size first. */
static int order_cmp(const int64_t *sizes, int n, const int64_t *const *strides, int64_t d0, int64_t d1) {
    for (int k = 0; k < n; k++) { /* the first operand that orders the two dims decides */
        int64_t s0 = strides[k][d0], s1 = strides[k][d1];
        if (s0 == 0 || s1 == 0) continue;
        if (s0 < s1) return -1;
        if (s0 > s1) return 1;
        if (sizes[d0] > sizes[d1]) return 1;
    }
    return 0;
}

void ct__dim_order_n(int nd, const int64_t *sizes, int n, const int64_t *const *strides, int64_t *perm) {
    for (int i = 0; i < nd; i++) perm[i] = nd - 1 - i;
    for (int i = 1; i < nd; i++) {
        int d1 = i;
        for (int d0 = i - 1; d0 >= 0; d0--) {
            int c = order_cmp(sizes, n, strides, perm[d0], perm[d1]);
            if (c > 0) {
                int64_t tmp = perm[d0];
                perm[d0] = perm[d1];
                perm[d1] = tmp;
                d1 = d0;
            } else if (c < 0) break;
        }
    }
}

void ct__dim_order(int nd, const int64_t *sizes, const int64_t *strides, int64_t *perm) {
    ct__dim_order_n(nd, sizes, 1, (const int64_t *const[]){strides}, perm);
}

bool ct__is_dense(const ct_tensor *t) {
    if (ct__is_contiguous(t)) return true;
    int64_t perm[CT_MAX_DIMS], s = 1;
    ct__dim_order(t->ndim, t->sizes, t->strides, perm);
    for (int i = 0; i < t->ndim; i++) { /* innermost first */
        int64_t d = perm[i];
        if (t->sizes[d] != 1 && t->strides[d] != s) return false;
        s *= t->sizes[d];
    }
    return true;
}

/* Dense strides for sizes in the order perm (perm[0] fastest). */
static ct_tensor *empty_in_order(int nd, const int64_t *sizes, const int64_t *perm, ct_dtype dt) {
    int64_t strides[CT_MAX_DIMS], st = 1, numel = ct__prod(nd, sizes);
    for (int k = 0; k < nd; k++) {
        strides[perm[k]] = st;
        if (sizes[perm[k]] > 1) st *= sizes[perm[k]];
    }
    return on_new_storage((size_t)numel * ct_dtype_size(dt), dt, nd, sizes, strides);
}

ct_tensor *ct__empty_ew_raw(int nd, const int64_t *shape, ct_dtype dt, int n, const ct_tensor *const *ins) {
    bool plain = true;
    for (int k = 0; k < n && plain; k++) plain = ins[k]->ndim == 0 || ct__is_contiguous(ins[k]);
    if (nd < 2 || plain) return ct__empty_raw(nd, shape, dt);
    int64_t bstr[6][CT_MAX_DIMS];
    const int64_t *sp[6];
    int m = 0;
    for (int k = 0; k < n && m < 6; k++) {
        const ct_tensor *t = ins[k];
        if (t->ndim == 0) continue;
        int off = nd - t->ndim;
        for (int d = 0; d < nd; d++) {
            int td = d - off;
            bstr[m][d] = (td < 0 || (t->sizes[td] == 1 && shape[d] != 1)) ? 0 : t->strides[td];
        }
        sp[m] = bstr[m];
        m++;
    }
    int64_t perm[CT_MAX_DIMS];
    ct__dim_order_n(nd, shape, m, sp, perm);
    return empty_in_order(nd, shape, perm, dt);
}

/* torch's empty_like(preserve_format): dense strides in like's dim order, so a
 * transposed input gives a transposed result (and random fills draw in the same
 * memory order as torch's). */
ct_tensor *ct__empty_like_raw(const ct_tensor *like, ct_dtype dt) {
    if (like->ndim < 2) return ct__empty_raw(like->ndim, like->sizes, dt);
    int64_t perm[CT_MAX_DIMS];
    ct__dim_order(like->ndim, like->sizes, like->strides, perm);
    return empty_in_order(like->ndim, like->sizes, perm, dt);
}

CT_API ct_tensor *ct_empty_like(const ct_tensor *t) {
    CT_CHECK_ARG("empty_like", t);
    return ct__ret(ct__empty_like_raw(t, t->dtype));
}
static ct_tensor *filled_like(const ct_tensor *t, double v) {
    ct_tensor *r = ct__empty_like_raw(t, t->dtype);
    if (r && ct__fill_raw(r, v)) { ct_release(r); return NULL; }
    return ct__ret(r);
}
CT_API ct_tensor *ct_zeros_like(const ct_tensor *t) {
    CT_CHECK_ARG("zeros_like", t);
    return filled_like(t, 0);
}
CT_API ct_tensor *ct_ones_like(const ct_tensor *t) {
    CT_CHECK_ARG("ones_like", t);
    return filled_like(t, 1);
}
CT_API ct_tensor *ct_full_like(const ct_tensor *t, double v) {
    CT_CHECK_ARG("full_like", t);
    return filled_like(t, v);
}
CT_API ct_tensor *ct_scalar_tensor(double v, ct_dtype dtype) { return filled("scalar_tensor", 0, NULL, dtype, v); }

static ct_tensor *wrapped(ct_dtype dt, const void *val) {
    ct_tensor *t = ct__empty_raw(0, NULL, dt);
    if (!t) return NULL;
    memcpy(t->storage->data, val, ct_dtype_size(dt));
    t->is_wrapped_number = true;
    return ct__ret(t);
}
CT_API ct_tensor *ct_float(double v) { return wrapped(CT_FLOAT64, &v); }
CT_API ct_tensor *ct_int(int64_t v) { return wrapped(CT_INT64, &v); }
CT_API ct_tensor *ct_bool(bool v) { return wrapped(CT_BOOL, &v); }
CT_API ct_tensor *ct_complex(double re, double im) {
    ct_c128 z = re + im * I;
    return wrapped(CT_COMPLEX128, &z);
}

CT_API ct_tensor *ct_from_data(const void *data, int ndim, const int64_t *sizes, ct_dtype dtype) {
    if (!data && ct__prod(ndim, sizes) > 0) return ct__err(CT_ERR_ARG, "from_data: data is NULL");
    ct_tensor *t = ct__empty_raw(ndim, sizes, dtype);
    if (!t) return NULL;
    if (t->numel) memcpy(t->storage->data, data, (size_t)t->numel * ct_dtype_size(dtype));
    return ct__ret(t);
}

CT_API ct_tensor *ct_from_blob(void *data, int ndim, const int64_t *sizes, const int64_t *strides, ct_dtype dtype,
                               void (*deleter)(void *, void *), void *ctx) {
    if ((unsigned)dtype >= CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "from_blob: invalid dtype");
    if (check_sizes("from_blob", ndim, sizes)) return NULL;
    if (!data && ct__prod(ndim, sizes) > 0) return ct__err(CT_ERR_ARG, "from_blob: data is NULL");
    int64_t extent = 0;
    for (int i = 0; i < ndim; i++)
        if (sizes[i] > 0) extent += (sizes[i] - 1) * (strides ? strides[i] : 1);
    ct_storage *s = ct__storage_borrow(data, (size_t)(extent + 1) * ct_dtype_size(dtype), deleter, ctx);
    if (!s) return NULL;
    ct_tensor *t = ct__tensor_new(s, dtype, ndim, sizes, strides, 0);
    ct__storage_release(s);
    return ct__ret(t);
}

static bool is_integer_valued(double v) { return floor(v) == v && fabs(v) < 9e15; }

CT_API ct_tensor *ct_arange(double start, double end, double step, ct_dtype dtype) {
    if (step == 0) return ct__err(CT_ERR_ARG, "arange: step must be nonzero");
    if (!isfinite(start) || !isfinite(end)) return ct__err(CT_ERR_ARG, "arange: unsupported range: %g -> %g", start, end);
    if ((step > 0 && end < start) || (step < 0 && end > start))
        return ct__err(CT_ERR_ARG, "arange: upper bound and larger bound inconsistent with step sign");
    if (dtype == CT_NUM_DTYPES)
        dtype = is_integer_valued(start) && is_integer_valued(end) && is_integer_valued(step) ? CT_INT64
                                                                                              : ct_get_default_dtype();
    if ((unsigned)dtype >= CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "arange: invalid dtype");
    if (dtype == CT_BOOL || ct_dtype_is_complex(dtype))
        return ct__err(CT_ERR_DTYPE, "arange: \"arange_cpu\" not implemented for '%s'", ct_dtype_name(dtype));
    double n = ceil((end - start) / step);
    if (n > 1e15) return ct__err(CT_ERR_OOM, "arange: too many elements (%g)", n);
    int64_t len = (int64_t)n;
    ct_tensor *t = ct__empty_raw(1, &len, dtype);
    if (!t) return NULL;
    size_t es = ct_dtype_size(dtype);
    char *p = t->storage->data;
    if (ct_dtype_is_integral(dtype, true))
        for (int64_t i = 0; i < len; i++) ct__store_i64(p + i * es, dtype, (int64_t)(start + (double)i * step));
    else
        for (int64_t i = 0; i < len; i++) ct__store_f64(p + i * es, dtype, start + (double)i * step);
    return ct__ret(t);
}

CT_API ct_tensor *ct_linspace(double start, double end, int64_t steps, ct_dtype dtype) {
    if (steps < 0) return ct__err(CT_ERR_ARG, "linspace: number of steps must be non-negative");
    if (dtype == CT_NUM_DTYPES) dtype = ct_get_default_dtype();
    ct_tensor *t = ct__empty_raw(1, &steps, dtype);
    if (!t) return NULL;
    size_t es = ct_dtype_size(dtype);
    char *p = t->storage->data;
    double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
    int64_t half = steps == 1 ? 1 : steps / 2; /* steps == 1 gives [start], as PyTorch */
    /* PyTorch's symmetric formula: from start for the first half, from end for the rest */
    for (int64_t i = 0; i < steps; i++) {
        double v = i < half ? start + step * (double)i : end - step * (double)(steps - i - 1);
        if (ct_dtype_is_integral(dtype, true)) ct__store_i64(p + i * es, dtype, (int64_t)v);
        else ct__store_f64(p + i * es, dtype, v);
    }
    return ct__ret(t);
}

CT_API ct_tensor *ct_logspace(double start, double end, int64_t steps, double base, ct_dtype dtype) {
    if (steps < 0) return ct__err(CT_ERR_ARG, "logspace: number of steps must be non-negative");
    if (dtype == CT_NUM_DTYPES) dtype = ct_get_default_dtype();
    ct_tensor *t = ct__empty_raw(1, &steps, dtype);
    if (!t) return NULL;
    size_t es = ct_dtype_size(dtype);
    char *p = t->storage->data;
    double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
    int64_t half = steps == 1 ? 1 : steps / 2;
    for (int64_t i = 0; i < steps; i++) {
        double e = i < half ? start + step * (double)i : end - step * (double)(steps - i - 1);
        double v = pow(base, e);
        if (ct_dtype_is_integral(dtype, true)) ct__store_i64(p + i * es, dtype, (int64_t)v);
        else ct__store_f64(p + i * es, dtype, v);
    }
    return ct__ret(t);
}

CT_API ct_tensor *ct_eye(int64_t n, int64_t m, ct_dtype dtype) {
    if (m < 0) m = n;
    if (n < 0) return ct__err(CT_ERR_ARG, "eye: n must be greater or equal to 0, got %lld", (long long)n);
    if (dtype == CT_NUM_DTYPES) dtype = ct_get_default_dtype();
    ct_tensor *t = ct__empty_raw(2, (int64_t[]){n, m}, dtype);
    if (!t) return NULL;
    if (ct__fill_raw(t, 0)) { ct_release(t); return NULL; }
    size_t es = ct_dtype_size(dtype);
    char *p = t->storage->data;
    for (int64_t i = 0; i < n && i < m; i++) ct__store_f64(p + (i * m + i) * (int64_t)es, dtype, 1.0);
    return ct__ret(t);
}

/* ---- element access ---- */
CT_API double ct_item(const ct_tensor *t) {
    if (!t) { ct__null_arg("item"); return NAN; }
    if (t->numel != 1) {
        ct__err(CT_ERR_ARG, "item: a Tensor with %lld elements cannot be converted to Scalar", (long long)t->numel);
        return NAN;
    }
    if (t->storage->device.type != CT_DEVICE_CPU) {
        ct_tensor *c = ct__to_cpu_raw(t);
        if (!c) return NAN;
        double v = ct__load_f64(ct__data(c), c->dtype);
        ct_release(c);
        return v;
    }
    return ct__load_f64(ct__data(t), t->dtype);
}

CT_API double ct_get(const ct_tensor *t, const int64_t *index) {
    if (!t) { ct__null_arg("get"); return NAN; }
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        int64_t i = index[d];
        if (i < 0) i += t->sizes[d];
        if (i < 0 || i >= t->sizes[d]) {
            ct__err(CT_ERR_INDEX, "get: index %lld is out of bounds for dimension %d with size %lld",
                    (long long)index[d], d, (long long)t->sizes[d]);
            return NAN;
        }
        off += i * t->strides[d];
    }
    return ct__load_f64((char *)ct__data(t) + off * (int64_t)ct_dtype_size(t->dtype), t->dtype);
}

CT_API int ct_copy_to_buffer(const ct_tensor *t, void *buf, size_t bufsize, ct_dtype dtype) {
    CT_CHECK_ARG_S("copy_to_buffer", t);
    if ((unsigned)dtype >= CT_NUM_DTYPES) return ct__errs(CT_ERR_DTYPE, "copy_to_buffer: invalid dtype");
    size_t need = (size_t)t->numel * ct_dtype_size(dtype);
    if (bufsize < need)
        return ct__errs(CT_ERR_ARG, "copy_to_buffer: buffer of %zu bytes is too small for %s %s (%zu bytes)", bufsize,
                        ct_dtype_name(dtype), CT_SHAPESTR(t), need);
    if (t->numel == 0) return 0;
    ct_storage *s = ct__storage_borrow(buf, need, NULL, NULL);
    if (!s) return ct_last_status();
    ct_tensor *dst = ct__tensor_new(s, dtype, t->ndim, t->sizes, NULL, 0);
    ct__storage_release(s);
    if (!dst) return ct_last_status();
    ct_tensor *src = (ct_tensor *)t;
    ct_tensor *cpu = NULL;
    if (t->storage->device.type != CT_DEVICE_CPU) {
        cpu = ct__to_cpu_raw(t);
        if (!cpu) { ct_release(dst); return ct_last_status(); }
        src = cpu;
    }
    int rc = ct__copy_raw(dst, src);
    ct_release(cpu);
    ct_release(dst);
    return rc;
}

CT_API void ct_free_string(char *s) { free(s); }
