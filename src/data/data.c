/* Datasets, data loaders and IDX files (include/ctorch/data.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/internal.h"
#include "ctorch/data.h"
#include "ctorch/io.h"

#define CT__MAX_BATCH_FIELDS 16

struct ct_dataset {
    atomic_int refcount;
    const ct_dataset_type *type;
    int n_fields;
    void *ctx;
};

CT_API ct_dataset *ct_data_dataset_new(const ct_dataset_type *type, int n_fields, void *ctx) {
    if (!type || !type->len || !type->get || n_fields < 1 || n_fields > 16)
        return ct__err(CT_ERR_ARG, "dataset_new: a type with len and get and 1 to 16 fields is required");
    ct_dataset *d = calloc(1, sizeof *d);
    if (!d) return ct__err(CT_ERR_OOM, "dataset_new: out of memory");
    atomic_init(&d->refcount, 1);
    d->type = type, d->n_fields = n_fields, d->ctx = ctx;
    return d;
}
CT_API ct_dataset *ct_data_dataset_retain(ct_dataset *ds) {
    if (ds) atomic_fetch_add(&ds->refcount, 1);
    return ds;
}
CT_API void ct_data_dataset_free(ct_dataset *ds) {
    if (!ds || atomic_fetch_sub(&ds->refcount, 1) != 1) return;
    if (ds->type->free_ctx) ds->type->free_ctx(ds->ctx);
    free(ds);
}
CT_API void *ct_data_dataset_ctx(const ct_dataset *ds) { return ds ? ds->ctx : NULL; }
CT_API int64_t ct_data_dataset_len(const ct_dataset *ds) { return ds ? ds->type->len(ds) : -1; }
CT_API int ct_data_dataset_fields(const ct_dataset *ds) { return ds ? ds->n_fields : 0; }

CT_API int ct_data_dataset_get(const ct_dataset *ds, int64_t i, ct_tensor **out) {
    if (!ds || !out) return ct__errs(CT_ERR_ARG, "dataset_get: NULL dataset or output");
    int64_t n = ds->type->len(ds);
    if (i < 0) i += n;
    if (i < 0 || i >= n)
        return ct__errs(CT_ERR_INDEX, "dataset_get: index %lld is out of range for a dataset of %lld items", (long long)i,
                        (long long)n);
    return ds->type->get(ds, i, out);
}

/* ---- TensorDataset ---- */
typedef struct {
    int n;
    ct_tensor *t[16];
} tds;
static int64_t tds_len(const ct_dataset *ds) { return ct_size(((tds *)ds->ctx)->t[0], 0); }
static int tds_get(const ct_dataset *ds, int64_t i, ct_tensor **out) {
    const tds *c = ds->ctx;
    for (int k = 0; k < c->n; k++)
        if (!(out[k] = ct_select(c->t[k], 0, i))) return ct_last_status();
    return 0;
}
static void tds_free(void *p) {
    tds *c = p;
    for (int k = 0; k < c->n; k++) ct_release(c->t[k]);
    free(c);
}
static const ct_dataset_type TDS = {"TensorDataset", tds_len, tds_get, tds_free};

CT_API ct_dataset *ct_data_tensor_dataset_new(int n, ct_tensor *const *tensors) {
    if (n < 1 || n > 16 || !tensors) return ct__err(CT_ERR_ARG, "TensorDataset: 1 to 16 tensors are required");
    for (int k = 0; k < n; k++) {
        CT_CHECK_ARG("TensorDataset", tensors[k]);
        if (tensors[k]->ndim < 1 || tensors[k]->sizes[0] != tensors[0]->sizes[0])
            return ct__err(CT_ERR_SHAPE, "TensorDataset: Size mismatch between tensors (%s and %s)",
                           CT_SHAPESTR(tensors[0]), CT_SHAPESTR(tensors[k]));
    }
    tds *c = calloc(1, sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "TensorDataset: out of memory");
    c->n = n;
    for (int k = 0; k < n; k++) c->t[k] = ct_retain(tensors[k]);
    ct_dataset *d = ct_data_dataset_new(&TDS, n, c);
    if (!d) tds_free(c);
    return d;
}

/* ---- Subset ---- */
typedef struct {
    ct_dataset *base;
    int64_t n;
    int64_t *idx;
} subset;
static int64_t sub_len(const ct_dataset *ds) { return ((subset *)ds->ctx)->n; }
static int sub_get(const ct_dataset *ds, int64_t i, ct_tensor **out) {
    const subset *c = ds->ctx;
    return ct_data_dataset_get(c->base, c->idx[i], out);
}
static void sub_free(void *p) {
    subset *c = p;
    ct_data_dataset_free(c->base);
    free(c->idx);
    free(c);
}
static const ct_dataset_type SUBSET = {"Subset", sub_len, sub_get, sub_free};

CT_API ct_dataset *ct_data_subset_new(ct_dataset *ds, int64_t n, const int64_t *indices) {
    if (!ds || n < 0 || (n && !indices)) return ct__err(CT_ERR_ARG, "Subset: NULL dataset or indices");
    subset *c = calloc(1, sizeof *c);
    if (c) c->idx = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!c || !c->idx) {
        if (c) free(c);
        return ct__err(CT_ERR_OOM, "Subset: out of memory");
    }
    if (n) memcpy(c->idx, indices, sizeof(int64_t) * (size_t)n);
    c->n = n;
    c->base = ct_data_dataset_retain(ds);
    ct_dataset *d = ct_data_dataset_new(&SUBSET, ds->n_fields, c);
    if (!d) sub_free(c);
    return d;
}

CT_API int ct_data_random_split(ct_dataset *ds, int n, const int64_t *lengths, ct_generator *gen, ct_dataset **out) {
    if (!ds || n < 1 || !lengths || !out) return ct__errs(CT_ERR_ARG, "random_split: bad arguments");
    for (int k = 0; k < n; k++) out[k] = NULL;
    int64_t total = 0, len = ct_data_dataset_len(ds);
    for (int k = 0; k < n; k++) total += lengths[k];
    if (total != len)
        return ct__errs(CT_ERR_ARG, "Sum of input lengths does not equal the length of the input dataset!");
    ct_scope_begin();
    ct_tensor *perm = ct_randperm(total, CT_INT64, gen);
    int st = perm ? 0 : ct_last_status();
    int64_t off = 0;
    for (int k = 0; k < n; k++) out[k] = NULL;
    for (int k = 0; k < n && !st; k++) {
        out[k] = ct_data_subset_new(ds, lengths[k], (const int64_t *)ct_data_ptr(perm) + off);
        if (!out[k]) st = ct_last_status();
        off += lengths[k];
    }
    ct_scope_end();
    if (st)
        for (int k = 0; k < n; k++) ct_data_dataset_free(out[k]), out[k] = NULL;
    return st;
}

/* ---- DataLoader ----
 * Batch k of an epoch holds samples order[k*bs .. k*bs+m). Without workers the calling
 * thread builds each batch in ct_data_loader_next. With workers, persistent threads
 * claim batch numbers in order and build them into a ring of num_workers *
 * prefetch_factor slots, running at most that far ahead of the consumer; batches are
 * handed out in order (torch's in_order=True). The sample order is always drawn by the
 * calling thread, so the batches are the same with or without workers. */
typedef struct {
    int state; /* 0 free, 1 being built, 2 ready */
    int64_t k;
    int status;
    char msg[256];
    ct_tensor *out[CT__MAX_BATCH_FIELDS];
} slot_t;

struct ct_data_loader {
    ct_dataset *ds;
    ct_loader_opts o;
    int64_t n, n_batches, next_out;
    int n_out;
    int64_t *order; /* the epoch's sample order */
    bool in_epoch;
    /* workers */
    int nw, cap;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    slot_t *slots;
    int64_t next_claim;
    bool stop, sync_ok;
};

/* Builds the batch of samples idx[0..m) into out[0..n_out) (references owned by the
 * enclosing scope, or by the caller when none is open). */
static int build_batch(const ct_data_loader *l, const int64_t *idx, int64_t m, ct_tensor **out) {
    int nf = l->ds->n_fields;
    ct_tensor **items = calloc((size_t)(m * nf), sizeof(ct_tensor *));
    if (!items) return ct__errs(CT_ERR_OOM, "DataLoader: out of memory");
    ct_tensor *field[CT__MAX_BATCH_FIELDS] = {0};
    int st = 0;
    ct_scope_begin();
    for (int64_t j = 0; j < m && !st; j++) {
        st = ct_data_dataset_get(l->ds, idx[j], items + j * nf);
        for (int f = 0; f < nf && !st; f++)
            if (!items[j * nf + f]) st = ct__errs(CT_ERR_RUNTIME, "DataLoader: the dataset returned a NULL field");
    }
    if (!st && l->o.collate) {
        st = l->o.collate(m, nf, items, field, l->o.collate_user);
        if (!st)
            for (int f = 0; f < l->n_out && !st; f++)
                if (!field[f]) st = ct__errs(CT_ERR_RUNTIME, "DataLoader: collate left output %d NULL", f);
        if (st > 0) st = ct__errs(CT_ERR_RUNTIME, "DataLoader: collate returned %d", st);
    } else if (!st) { /* default_collate: stack each field along a new dim 0 */
        ct_tensor **rows = malloc(sizeof(ct_tensor *) * (size_t)m);
        if (!rows) st = ct__errs(CT_ERR_OOM, "DataLoader: out of memory");
        for (int f = 0; f < nf && !st; f++) {
            for (int64_t j = 0; j < m; j++) rows[j] = items[j * nf + f];
            field[f] = ct_stack((int)m, (const ct_tensor *const *)rows, 0);
            if (!field[f]) st = ct_last_status();
        }
        free(rows);
    }
    for (int f = 0; f < l->n_out && !st; f++) out[f] = ct_keep(field[f]);
    ct_scope_end();
    free(items);
    return st;
}

static int64_t batch_size_of(const ct_data_loader *l, int64_t k) {
    int64_t start = k * l->o.batch_size, left = l->n - start;
    return left < l->o.batch_size ? left : l->o.batch_size;
}

static void *worker_main(void *arg) {
    ct_data_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (l->in_epoch && l->next_claim < l->n_batches && l->next_claim < l->next_out + l->cap) {
            int64_t k = l->next_claim++;
            slot_t *s = &l->slots[k % l->cap];
            s->state = 1, s->k = k;
            pthread_mutex_unlock(&l->mu);
            ct_tensor *out[CT__MAX_BATCH_FIELDS] = {0};
            ct_clear_error();
            int st = build_batch(l, l->order + k * l->o.batch_size, batch_size_of(l, k), out);
            pthread_mutex_lock(&l->mu);
            s->status = st;
            if (st) snprintf(s->msg, sizeof s->msg, "%s", ct_last_error());
            memcpy(s->out, out, sizeof out);
            s->state = 2;
            pthread_cond_broadcast(&l->cv_done);
        } else {
            pthread_cond_wait(&l->cv_work, &l->mu);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

CT_API ct_data_loader *ct_data_loader_new(ct_dataset *ds, const ct_loader_opts *opts) {
    if (!ds) return ct__err(CT_ERR_ARG, "DataLoader: NULL dataset");
    ct_loader_opts o = {0};
    if (opts) o = *opts;
    if (o.batch_size == 0) o.batch_size = 1;
    if (o.batch_size < 0)
        return ct__err(CT_ERR_ARG, "batch_size should be a positive integer value, but got batch_size=%lld",
                       (long long)o.batch_size);
    if (o.num_workers < 0)
        return ct__err(CT_ERR_ARG, "num_workers option should be non-negative; use num_workers=0 to disable "
                       "multiprocessing.");
    if (o.prefetch_factor < 0) return ct__err(CT_ERR_ARG, "DataLoader: prefetch_factor must be non-negative");
    int n_out = o.collate ? (o.collate_outputs > 0 ? o.collate_outputs : ct_data_dataset_fields(ds))
                          : ct_data_dataset_fields(ds);
    if (n_out > CT__MAX_BATCH_FIELDS)
        return ct__err(CT_ERR_ARG, "DataLoader: at most %d batch fields, got %d", CT__MAX_BATCH_FIELDS, n_out);
    ct_data_loader *l = calloc(1, sizeof *l);
    if (!l) return ct__err(CT_ERR_OOM, "DataLoader: out of memory");
    l->o = o;
    l->n_out = n_out;
    l->ds = ct_data_dataset_retain(ds);
    l->n = ct_data_dataset_len(ds);
    l->order = malloc(sizeof(int64_t) * (size_t)(l->n ? l->n : 1));
    if (!l->order) {
        ct_data_loader_free(l);
        return ct__err(CT_ERR_OOM, "DataLoader: out of memory");
    }
    if (o.num_workers > 0) {
        int pf = o.prefetch_factor ? o.prefetch_factor : 2;
        l->cap = o.num_workers * pf;
        l->slots = calloc((size_t)l->cap, sizeof *l->slots);
        l->th = calloc((size_t)o.num_workers, sizeof *l->th);
        if (!l->slots || !l->th) {
            ct_data_loader_free(l);
            return ct__err(CT_ERR_OOM, "DataLoader: out of memory");
        }
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv_work, NULL);
        pthread_cond_init(&l->cv_done, NULL);
        l->sync_ok = true;
        for (int i = 0; i < o.num_workers; i++) {
            if (pthread_create(&l->th[i], NULL, worker_main, l)) {
                ct_data_loader_free(l);
                return ct__err(CT_ERR_RUNTIME, "DataLoader: cannot start worker thread %d", i);
            }
            l->nw++;
        }
    }
    return l;
}

CT_API void ct_data_loader_free(ct_data_loader *l) {
    if (!l) return;
    if (l->sync_ok) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < l->nw; i++) pthread_join(l->th[i], NULL);
        for (int i = 0; i < l->cap; i++)
            if (l->slots[i].state == 2)
                for (int f = 0; f < l->n_out; f++) ct_release(l->slots[i].out[f]);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv_work);
        pthread_cond_destroy(&l->cv_done);
    }
    free(l->th);
    free(l->slots);
    ct_data_dataset_free(l->ds);
    free(l->order);
    free(l);
}

CT_API int64_t ct_data_loader_len(const ct_data_loader *l) {
    if (!l) return -1;
    return l->o.drop_last ? l->n / l->o.batch_size : (l->n + l->o.batch_size - 1) / l->o.batch_size;
}

static int new_epoch(ct_data_loader *l) {
    /* torch's DataLoader draws its iterator's base seed (an int64 random_()) from the
     * generator first, then RandomSampler takes torch.randperm(n, generator=...) */
    ct_scope_begin();
    ct_tensor *seed = ct_empty(0, NULL, CT_INT64);
    int st = seed ? ct_random_(seed, l->o.generator) : ct_last_status();
    ct_scope_end();
    if (st) return st;
    if (l->o.shuffle) {
        ct_scope_begin();
        ct_tensor *p = ct_randperm(l->n, CT_INT64, l->o.generator);
        if (p) memcpy(l->order, ct_data_ptr(p), sizeof(int64_t) * (size_t)l->n);
        ct_scope_end();
        if (!p) return ct_last_status();
    } else {
        for (int64_t i = 0; i < l->n; i++) l->order[i] = i;
    }
    if (l->nw) pthread_mutex_lock(&l->mu);
    l->n_batches = ct_data_loader_len(l);
    l->next_out = 0;
    l->next_claim = 0;
    l->in_epoch = true;
    if (l->nw) {
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
    }
    return 0;
}

CT_API int ct_data_loader_next(ct_data_loader *l, ct_tensor **batch) {
    if (!l || !batch) return ct__errs(CT_ERR_ARG, "DataLoader next: NULL loader or batch");
    if (!l->in_epoch) {
        int st = new_epoch(l);
        if (st) return st;
    }
    if (l->next_out >= l->n_batches) {
        if (l->nw) pthread_mutex_lock(&l->mu);
        l->in_epoch = false;
        if (l->nw) pthread_mutex_unlock(&l->mu);
        if (l->o.shuffle) { /* RandomSampler's trailing randperm for num_samples % n, drawn as it runs out */
            ct_scope_begin();
            ct_tensor *p = ct_randperm(l->n, CT_INT64, l->o.generator);
            ct_scope_end();
            if (!p) return ct_last_status();
        }
        return 0;
    }
    int64_t k = l->next_out;
    if (!l->nw) {
        int st = build_batch(l, l->order + k * l->o.batch_size, batch_size_of(l, k), batch);
        l->next_out++;
        return st ? st : 1;
    }
    pthread_mutex_lock(&l->mu);
    slot_t *s = &l->slots[k % l->cap];
    while (!(s->state == 2 && s->k == k)) pthread_cond_wait(&l->cv_done, &l->mu);
    int st = s->status;
    ct_tensor *out[CT__MAX_BATCH_FIELDS];
    memcpy(out, s->out, sizeof out);
    char msg[256];
    memcpy(msg, s->msg, sizeof msg);
    s->state = 0;
    l->next_out++;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    if (st) {
        for (int f = 0; f < l->n_out; f++) ct_release(out[f]);
        return ct__errs(st, "%s", msg);
    }
    for (int f = 0; f < l->n_out; f++) { /* the worker's references become the caller's (its scope's) */
        batch[f] = ct__ret(out[f]);
        if (!batch[f]) st = ct_last_status();
    }
    return st ? st : 1;
}

/* ---- IDX files ---- */
/* The bytes of an IDX file: a gzFile (plain or gzip'd file) or a memory buffer, which
 * is inflated when it starts with the gzip magic. */
typedef struct {
    gzFile f;
    const unsigned char *p;
    size_t left;
    z_stream zs;
    bool inflating, done;
} idx_src;

static int idx_read(idx_src *s, void *buf, unsigned n) {
    if (s->f) return gzread(s->f, buf, n);
    if (!s->inflating) {
        size_t k = n < s->left ? n : s->left;
        if (k) memcpy(buf, s->p, k);
        s->p += k, s->left -= k;
        return (int)k;
    }
    if (s->done) return 0;
    s->zs.next_out = buf, s->zs.avail_out = n;
    while (s->zs.avail_out) {
        unsigned ci = s->left > (1u << 30) ? (1u << 30) : (unsigned)s->left;
        s->zs.next_in = (unsigned char *)(uintptr_t)s->p, s->zs.avail_in = ci;
        int r = inflate(&s->zs, Z_NO_FLUSH);
        size_t used = ci - s->zs.avail_in;
        s->p += used, s->left -= used;
        if (r == Z_STREAM_END) { s->done = true; break; }
        if (r != Z_OK || (used == 0 && s->zs.avail_out)) return -1;
    }
    return (int)(n - s->zs.avail_out);
}

static void idx_close(idx_src *s) {
    if (s->f) gzclose(s->f);
    if (s->inflating) inflateEnd(&s->zs);
}

/* After the data: a gzip stream must end there intact (CRC and length trailer). */
static bool idx_complete(idx_src *s) {
    unsigned char x;
    int r = idx_read(s, &x, 1);
    return s->inflating ? r == 0 && s->done : r >= 0;
}

static ct_tensor *idx_parse(idx_src *f, const char *path);

CT_API ct_tensor *ct_data_read_idx(const char *path) {
    if (!path) return ct__err(CT_ERR_ARG, "read_idx: NULL path");
    idx_src s = {.f = gzopen(path, "rb")}; /* reads plain and gzip'd files alike */
    if (!s.f) return ct__err(CT_ERR_IO, "read_idx: cannot open %s", path);
    return idx_parse(&s, path);
}

CT_API ct_tensor *ct_data_read_idx_buffer(const void *data, size_t size) {
    if (!data && size) return ct__err(CT_ERR_ARG, "read_idx: NULL buffer");
    idx_src s = {.p = data, .left = size};
    if (size >= 2 && s.p[0] == 0x1f && s.p[1] == 0x8b) {
        if (inflateInit2(&s.zs, 16 + MAX_WBITS) != Z_OK) return ct__err(CT_ERR_OOM, "read_idx: zlib init failed");
        s.inflating = true;
    }
    return idx_parse(&s, "buffer");
}

static ct_tensor *idx_parse(idx_src *f, const char *path) {
    unsigned char h[4];
    ct_tensor *t = NULL;
    if (idx_read(f, h, 4) != 4 || h[0] || h[1]) {
        idx_close(f);
        return ct__err(CT_ERR_FORMAT, "read_idx: %s is not an IDX file (bad magic)", path);
    }
    static const struct { unsigned char code; ct_dtype dt; } T[] = {
        {0x08, CT_UINT8}, {0x09, CT_INT8}, {0x0B, CT_INT16}, {0x0C, CT_INT32}, {0x0D, CT_FLOAT32}, {0x0E, CT_FLOAT64}};
    ct_dtype dt = CT_NUM_DTYPES;
    for (int i = 0; i < 6; i++)
        if (T[i].code == h[2]) dt = T[i].dt;
    int nd = h[3];
    if (dt == CT_NUM_DTYPES || nd < 1 || nd > 8) {
        idx_close(f);
        return ct__err(CT_ERR_FORMAT, "read_idx: %s has an unknown type code 0x%02x or %d dims", path, h[2], nd);
    }
    int64_t sizes[8], numel = 1, span = 1; /* span: product of the nonzero sizes (strides must fit) */
    for (int d = 0; d < nd; d++) {
        unsigned char b[4];
        if (idx_read(f, b, 4) != 4) {
            idx_close(f);
            return ct__err(CT_ERR_FORMAT, "read_idx: %s is truncated in its header", path);
        }
        sizes[d] = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | b[3];
        if (sizes[d] && span > ((int64_t)1 << 40) / sizes[d]) {
            idx_close(f);
            return ct__err(CT_ERR_FORMAT, "read_idx: %s declares an implausible size", path);
        }
        numel *= sizes[d];
        if (sizes[d]) span *= sizes[d];
    }
    size_t es = ct_dtype_size(dt), bytes = (size_t)numel * es;
    /* read in chunks so a lying header cannot make us allocate more than the data holds */
    unsigned char *buf = NULL;
    size_t got = 0, cap = 0;
    while (got < bytes) {
        if (got == cap) {
            size_t nc = cap ? 2 * cap : 1 << 16;
            if (nc > bytes) nc = bytes;
            unsigned char *nb = realloc(buf, nc);
            if (!nb) { free(buf); idx_close(f); return ct__err(CT_ERR_OOM, "read_idx: out of memory"); }
            buf = nb, cap = nc;
        }
        size_t want = cap - got;
        if (want > (1u << 30)) want = 1u << 30;
        int r = idx_read(f, buf + got, (unsigned)want);
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got == bytes && !idx_complete(f)) {
        free(buf);
        idx_close(f);
        return ct__err(CT_ERR_FORMAT, "read_idx: %s: truncated or corrupt gzip stream", path);
    }
    idx_close(f);
    if (got != bytes) {
        free(buf);
        return ct__err(CT_ERR_FORMAT, "read_idx: %s holds %zu data bytes, its header declares %zu", path, got, bytes);
    }
    if (es > 1) /* big-endian to host */
        for (size_t i = 0; i < (size_t)numel; i++) {
            unsigned char *p = buf + i * es;
            for (size_t a = 0, b = es - 1; a < b; a++, b--) {
                unsigned char x = p[a];
                p[a] = p[b], p[b] = x;
            }
        }
    t = ct_from_data(buf ? (const void *)buf : (const void *)"", nd, sizes, dt);
    free(buf);
    return t;
}
