/* torch.save (.pt) and NumPy .npz files (include/ctorch/io.h).
 *
 * A torch.save file is a zip archive "<name>/data.pkl, <name>/byteorder,
 * <name>/data/<key>..., <name>/version": the pickle describes the object (for a state
 * dict an OrderedDict of _rebuild_tensor_v2 calls over persistent storage ids) and
 * each storage's bytes are one stored entry. Loading goes through the restricted
 * unpickler of src/io/pickle.c; saving writes the same layout as torch's writer
 * (protocol 2, 64-byte aligned storages, ZIP64 end record), one storage per distinct
 * ctorch storage so views keep sharing it.
 *
 * An .npz file is a zip archive of .npy entries named "<key>.npy", stored (np.savez)
 * or deflated (np.savez_compressed); each entry goes through the .npy reader. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/io.h"
#include "io/pickle.h"
#include "io/zip.h"

/* ---- .pt loading ---- */
static ct_dict *pt_parse(const unsigned char *data, size_t size, const char *what) {
    if (size >= 2 && data[0] == 0x80 && data[1] == 0x02)
        return ct__err(CT_ERR_FORMAT, "pt: %s: a legacy (non-zip) torch.save file; re-save it with a current torch", what);
    ct__zip z;
    if (ct__zip_open(&z, data, size, "pt", what)) return NULL;
    /* the archive's records share one top directory: find its data.pkl */
    int64_t pk = -1;
    for (int64_t i = 0; i < z.n && pk < 0; i++) {
        const char *nm = z.e[i].name, *sl = strchr(nm, '/');
        if (sl && sl != nm && strcmp(sl + 1, "data.pkl") == 0) pk = i;
    }
    if (pk < 0) {
        ct__zip_close(&z);
        return ct__err(CT_ERR_FORMAT, "pt: %s: no <archive>/data.pkl record (not a torch.save file)", what);
    }
    size_t pl = (size_t)(strchr(z.e[pk].name, '/') - z.e[pk].name) + 1;
    char prefix[96];
    if (pl >= sizeof prefix - 16) {
        ct__zip_close(&z);
        return ct__err(CT_ERR_FORMAT, "pt: %s: archive name too long", what);
    }
    memcpy(prefix, z.e[pk].name, pl);
    prefix[pl] = 0;
    bool big = false;
    char name[128];
    snprintf(name, sizeof name, "%sbyteorder", prefix);
    int64_t bo = ct__zip_find(&z, name);
    if (bo >= 0) {
        unsigned char *b;
        size_t n;
        if (ct__zip_read(&z, bo, &b, &n)) { ct__zip_close(&z); return NULL; }
        bool little = n == 6 && memcmp(b, "little", 6) == 0;
        big = n == 3 && memcmp(b, "big", 3) == 0;
        free(b);
        if (!little && !big) {
            ct__zip_close(&z);
            return ct__err(CT_ERR_FORMAT, "pt: %s: byteorder record is neither 'little' nor 'big'", what);
        }
    }
    unsigned char *pkl;
    size_t pn;
    if (ct__zip_read(&z, pk, &pkl, &pn)) { ct__zip_close(&z); return NULL; }
    ct_dict *d = ct__pt_unpickle(pkl, pn, &z, prefix, big, what);
    free(pkl);
    ct__zip_close(&z);
    return d;
}

CT_API ct_dict *ct_io_load_pt_buffer(const void *data, size_t size) {
    if (!data && size) return ct__err(CT_ERR_ARG, "pt: NULL buffer");
    return pt_parse(data, size, "buffer");
}

CT_API ct_dict *ct_io_load_pt(const char *path) {
    if (!path) return ct__err(CT_ERR_ARG, "pt: NULL path");
    size_t n;
    unsigned char *b = ct__read_file(path, &n, "pt");
    if (!b) return NULL;
    ct_dict *d = pt_parse(b, n, path);
    free(b);
    return d;
}

/* ---- .pt saving: a protocol-2 pickle like torch's ---- */
typedef struct {
    unsigned char *b;
    size_t n, cap;
    bool oom;
} pbuf;
static void pput(pbuf *p, const void *s, size_t n) {
    if (p->oom) return;
    if (p->n + n > p->cap) {
        size_t c = p->cap ? p->cap : 1024;
        while (c < p->n + n) c *= 2;
        unsigned char *x = realloc(p->b, c);
        if (!x) { p->oom = true; return; }
        p->b = x, p->cap = c;
    }
    memcpy(p->b + p->n, s, n);
    p->n += n;
}
static void pop1(pbuf *p, unsigned char c) { pput(p, &c, 1); }
static void pstr(pbuf *p, const char *s) {
    size_t n = strlen(s);
    unsigned char h[5] = {'X', (unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
    pput(p, h, 5);
    pput(p, s, n);
}
static void pint(pbuf *p, int64_t v) {
    unsigned char h[10];
    if (v >= 0 && v < 256) h[0] = 'K', h[1] = (unsigned char)v, pput(p, h, 2);
    else if (v >= 0 && v < 65536) h[0] = 'M', h[1] = (unsigned char)v, h[2] = (unsigned char)(v >> 8), pput(p, h, 3);
    else if (v >= INT32_MIN && v <= INT32_MAX) {
        uint32_t u = (uint32_t)(int32_t)v;
        h[0] = 'J';
        for (int k = 0; k < 4; k++) h[1 + k] = (unsigned char)(u >> (8 * k));
        pput(p, h, 5);
    } else {
        uint64_t u = (uint64_t)v;
        h[0] = 0x8a, h[1] = 8;
        for (int k = 0; k < 8; k++) h[2 + k] = (unsigned char)(u >> (8 * k));
        pput(p, h, 10);
    }
}
static void ptuple(pbuf *p, int n, const int64_t *v) {
    if (n == 0) { pop1(p, ')'); return; }
    if (n > 3) pop1(p, '(');
    for (int k = 0; k < n; k++) pint(p, v[k]);
    pop1(p, n > 3 ? 't' : (unsigned char)(0x84 + n));
}

static const char *storage_name(ct_dtype dt) {
    switch (dt) {
    case CT_FLOAT32: return "FloatStorage";
    case CT_FLOAT64: return "DoubleStorage";
    case CT_FLOAT16: return "HalfStorage";
    case CT_BFLOAT16: return "BFloat16Storage";
    case CT_INT64: return "LongStorage";
    case CT_INT32: return "IntStorage";
    case CT_INT16: return "ShortStorage";
    case CT_INT8: return "CharStorage";
    case CT_UINT8: return "ByteStorage";
    case CT_BOOL: return "BoolStorage";
    case CT_COMPLEX64: return "ComplexFloatStorage";
    case CT_COMPLEX128: return "ComplexDoubleStorage";
    default: return NULL;
    }
}

typedef struct {
    ct_tensor *t;       /* the tensor as written (scope-owned) */
    int64_t key;        /* its storage record */
    int64_t off;
    const void *data;   /* storage bytes to write (when this entry owns the record) */
    size_t nbytes;
    bool owner;
} went;

CT_API int ct_io_save_pt_buffer(const ct_dict *d, void **out, size_t *size) {
    if (!d || !out || !size) return ct__errs(CT_ERR_ARG, "save_pt: NULL argument");
    *out = NULL, *size = 0;
    int64_t n = ct_dict_size(d);
    went *w = calloc((size_t)(n ? n : 1), sizeof *w);
    if (!w) return ct__errs(CT_ERR_OOM, "save_pt: out of memory");
    int st = 0;
    int64_t nkeys = 0;
    pbuf p = {0};
    ct__zipw z = {0};
    ct_scope_begin();
    for (int64_t i = 0; i < n && !st; i++) {
        ct_tensor *t = ct_dict_value(d, i);
        if (!t) { st = ct_last_status(); break; }
        if (!storage_name(t->dtype)) {
            st = ct__errs(CT_ERR_DTYPE, "save_pt: tensor '%s' has dtype %s, which torch cannot store", ct_dict_key(d, i),
                          ct_dtype_name(t->dtype));
            break;
        }
        /* a CPU view with non-negative strides inside its storage shares the record of
         * earlier tensors on the same storage and dtype; anything else is copied */
        size_t es = ct_dtype_size(t->dtype);
        bool share = t->storage && t->storage->device.type == CT_DEVICE_CPU && t->offset >= 0;
        int64_t max = t->offset;
        for (int k = 0; share && k < t->ndim; k++) {
            if (t->strides[k] < 0) share = false;
            else if (t->sizes[k] == 0) max = -1;
            else if (max >= 0) max += (t->sizes[k] - 1) * t->strides[k];
        }
        if (share && max >= 0 && (uint64_t)(max + 1) * es > t->storage->nbytes) share = false;
        if (!share) {
            t = ct_contiguous(t);
            if (t && t->storage->device.type != CT_DEVICE_CPU) t = NULL, ct__errs(CT_ERR_DEVICE, "save_pt: tensors must be on the CPU");
            if (!t) { st = ct_last_status(); break; }
        }
        w[i].t = t, w[i].off = t->offset;
        w[i].key = -1;
        for (int64_t j = 0; j < i; j++)
            if (w[j].t->storage == t->storage && w[j].t->dtype == t->dtype) { w[i].key = w[j].key; break; }
        if (w[i].key < 0) {
            w[i].key = nkeys++, w[i].owner = true;
            w[i].data = t->storage->data, w[i].nbytes = t->storage->nbytes / es * es;
        }
    }
    if (!st) {
        static const char hdr[] = "\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01";
        pput(&p, hdr, sizeof hdr - 1);
        for (int64_t i = 0; i < n; i++) {
            if (i % 1000 == 0) pop1(&p, '(');
            ct_tensor *t = w[i].t;
            pstr(&p, ct_dict_key(d, i));
            if (i == 0) {
                static const char rb[] = "ctorch._utils\n_rebuild_tensor_v2\nq\x02";
                pput(&p, rb, sizeof rb - 1);
            } else pput(&p, "h\x02", 2);
            pput(&p, "((", 2);
            pstr(&p, "storage");
            char g[64], key[32];
            snprintf(g, sizeof g, "ctorch\n%s\n", storage_name(t->dtype));
            pput(&p, g, strlen(g));
            snprintf(key, sizeof key, "%lld", (long long)w[i].key);
            pstr(&p, key);
            pstr(&p, "cpu");
            pint(&p, (int64_t)(t->storage->nbytes / ct_dtype_size(t->dtype)));
            pput(&p, "tQ", 2);
            pint(&p, w[i].off);
            ptuple(&p, t->ndim, t->sizes);
            ptuple(&p, t->ndim, t->strides);
            pput(&p, "\x89h\x00)Rt", 6); /* requires_grad False, OrderedDict() hooks */
            pop1(&p, 'R');
            if (i % 1000 == 999 || i == n - 1) pop1(&p, 'u');
        }
        pop1(&p, '.');
        if (p.oom) st = ct__errs(CT_ERR_OOM, "save_pt: out of memory");
    }
    char name[64];
    if (!st) st = ct__zipw_add(&z, "archive/data.pkl", p.b, p.n, false);
    if (!st) st = ct__zipw_add(&z, "archive/.format_version", "1", 1, false);
    if (!st) st = ct__zipw_add(&z, "archive/.storage_alignment", "64", 2, false);
    if (!st) st = ct__zipw_add(&z, "archive/byteorder", "little", 6, false);
    for (int64_t i = 0; i < n && !st; i++) {
        if (!w[i].owner) continue;
        snprintf(name, sizeof name, "archive/data/%lld", (long long)w[i].key);
        st = ct__zipw_add(&z, name, w[i].nbytes ? w[i].data : "", w[i].nbytes, false);
    }
    if (!st) st = ct__zipw_add(&z, "archive/version", "3\n", 2, false);
    if (!st) st = ct__zipw_finish(&z, out, size);
    else ct__zipw_free(&z);
    free(p.b);
    ct_scope_end();
    free(w);
    return st;
}

CT_API int ct_io_save_pt(const char *path, const ct_dict *d) {
    if (!path) return ct__errs(CT_ERR_ARG, "save_pt: NULL path");
    void *b;
    size_t n;
    int st = ct_io_save_pt_buffer(d, &b, &n);
    if (st) return st;
    st = ct__atomic_write(path, b, n, "save_pt");
    free(b);
    return st;
}

/* ---- .npz ---- */
static ct_dict *npz_parse(const unsigned char *data, size_t size, const char *what) {
    ct__zip z;
    if (ct__zip_open(&z, data, size, "npz", what)) return NULL;
    ct_dict *d = ct_dict_new();
    int st = d ? 0 : CT_ERR_OOM;
    for (int64_t i = 0; i < z.n && !st; i++) {
        const char *nm = z.e[i].name;
        size_t l = z.e[i].name_len;
        if (l < 5 || strcmp(nm + l - 4, ".npy") != 0) {
            st = ct__errs(CT_ERR_FORMAT, "npz: %s: entry '%.100s' is not a .npy file", what, nm);
            break;
        }
        unsigned char *b;
        size_t n;
        if ((st = ct__zip_read(&z, i, &b, &n))) break;
        ct_tensor *t = ct_npy_load_buffer(b, n);
        free(b);
        if (!t) {
            st = ct__errs(CT_ERR_FORMAT, "npz: %s: entry '%.100s': %s", what, nm, ct_last_error());
            break;
        }
        char key[4096];
        if (l - 4 >= sizeof key) st = ct__errs(CT_ERR_FORMAT, "npz: %s: entry name too long", what);
        else {
            memcpy(key, nm, l - 4);
            key[l - 4] = 0;
            st = ct_dict_set(d, key, t);
        }
        ct_release(t);
    }
    ct__zip_close(&z);
    if (st) { ct_dict_free(d); return NULL; }
    return d;
}

CT_API ct_dict *ct_io_load_npz_buffer(const void *data, size_t size) {
    if (!data && size) return ct__err(CT_ERR_ARG, "npz: NULL buffer");
    return npz_parse(data, size, "buffer");
}

CT_API ct_dict *ct_io_load_npz(const char *path) {
    if (!path) return ct__err(CT_ERR_ARG, "npz: NULL path");
    size_t n;
    unsigned char *b = ct__read_file(path, &n, "npz");
    if (!b) return NULL;
    ct_dict *d = npz_parse(b, n, path);
    free(b);
    return d;
}

CT_API int ct_io_save_npz_buffer(const ct_dict *d, bool compressed, void **out, size_t *size) {
    if (!d || !out || !size) return ct__errs(CT_ERR_ARG, "save_npz: NULL argument");
    *out = NULL, *size = 0;
    ct__zipw z = {0};
    int st = 0;
    for (int64_t i = 0; i < ct_dict_size(d) && !st; i++) {
        ct_scope_begin();
        ct_tensor *t = ct_dict_value(d, i);
        void *b = NULL;
        size_t n = 0;
        st = t ? ct_npy_save_buffer(t, &b, &n) : ct_last_status();
        ct_scope_end();
        if (st) break;
        const char *k = ct_dict_key(d, i);
        size_t kl = strlen(k);
        char *name = malloc(kl + 5);
        if (!name) st = ct__errs(CT_ERR_OOM, "save_npz: out of memory");
        else {
            memcpy(name, k, kl);
            memcpy(name + kl, ".npy", 5);
            st = ct__zipw_add(&z, name, b, n, compressed);
            free(name);
        }
        free(b);
    }
    if (!st) return ct__zipw_finish(&z, out, size);
    ct__zipw_free(&z);
    return st;
}

CT_API int ct_io_save_npz(const char *path, const ct_dict *d, bool compressed) {
    if (!path) return ct__errs(CT_ERR_ARG, "save_npz: NULL path");
    void *b;
    size_t n;
    int st = ct_io_save_npz_buffer(d, compressed, &b, &n);
    if (st) return st;
    st = ct__atomic_write(path, b, n, "save_npz");
    free(b);
    return st;
}
