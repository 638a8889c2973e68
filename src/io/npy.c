/* .npy files (include/ctorch/io.h): the magic "\x93NUMPY", a version, a header length
 * (2 bytes in version 1, 4 in versions 2 and 3), a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and a
 * newline to a multiple of 64 bytes, then the data. The reader accepts exactly that
 * dict (keys in any order) and checks every size against the bytes present. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/io.h"

static const struct {
    char kind;
    int size;
    ct_dtype dt;
} NPT[] = {{'b', 1, CT_BOOL},    {'u', 1, CT_UINT8},   {'i', 1, CT_INT8},       {'i', 2, CT_INT16},
           {'i', 4, CT_INT32},   {'i', 8, CT_INT64},   {'f', 2, CT_FLOAT16},    {'f', 4, CT_FLOAT32},
           {'f', 8, CT_FLOAT64}, {'c', 8, CT_COMPLEX64}, {'c', 16, CT_COMPLEX128}};
#define N_NPT (int)(sizeof NPT / sizeof NPT[0])

static void *bad(const char *what, const char *msg) { return ct__err(CT_ERR_FORMAT, "npy: %s: %s", what, msg); }

/* finds 'key': in the header and returns the position after the colon and spaces */
static const char *field(const char *h, const char *end, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = h; p + kl + 3 <= end; p++)
        if ((*p == '\'' || *p == '"') && memcmp(p + 1, key, kl) == 0 && p[kl + 1] == *p) {
            const char *q = p + kl + 2;
            while (q < end && (*q == ' ')) q++;
            if (q < end && *q == ':') {
                q++;
                while (q < end && *q == ' ') q++;
                return q < end ? q : NULL; /* a value must follow inside the header */
            }
        }
    return NULL;
}

static ct_tensor *parse(const unsigned char *d, size_t n, const char *what) {
    if (n < 10 || memcmp(d, "\x93NUMPY", 6) != 0) return bad(what, "not a .npy file (bad magic)");
    int major = d[6];
    size_t hl, off;
    if (major == 1) hl = (size_t)d[8] | ((size_t)d[9] << 8), off = 10;
    else if (major == 2 || major == 3) {
        if (n < 12) return bad(what, "truncated header");
        hl = (size_t)d[8] | ((size_t)d[9] << 8) | ((size_t)d[10] << 16) | ((size_t)d[11] << 24), off = 12;
    } else return bad(what, "unsupported format version");
    if (hl > (1u << 20) || hl > n - off) return bad(what, "header length exceeds the file");
    const char *h = (const char *)d + off, *he = h + hl;
    const char *ds = field(h, he, "descr"), *fo = field(h, he, "fortran_order"), *sh = field(h, he, "shape");
    if (!ds || !fo || !sh) return bad(what, "header lacks descr, fortran_order or shape");
    /* descr: '<f4' */
    if (ds + 5 > he || (*ds != '\'' && *ds != '"')) return bad(what, "descr is not a simple type string");
    char endian = ds[1], kind = ds[2];
    int size = 0;
    const char *q = ds + 3;
    while (q < he && *q >= '0' && *q <= '9' && size < 1000) size = size * 10 + (*q++ - '0');
    if (q >= he || *q != ds[0]) return bad(what, "descr is not a simple type string");
    ct_dtype dt = CT_NUM_DTYPES;
    for (int i = 0; i < N_NPT; i++)
        if (NPT[i].kind == kind && NPT[i].size == size) dt = NPT[i].dt;
    if (dt == CT_NUM_DTYPES || (endian != '<' && endian != '>' && endian != '|' && endian != '='))
        return bad(what, "unsupported dtype");
    bool swap = endian == '>' && size > 1;
    bool fortran;
    if (fo + 4 <= he && memcmp(fo, "True", 4) == 0) fortran = true;
    else if (fo + 5 <= he && memcmp(fo, "False", 5) == 0) fortran = false;
    else return bad(what, "fortran_order must be True or False");
    /* shape: (3, 4) or () or (5,) */
    if (sh >= he || *sh != '(') return bad(what, "shape must be a tuple");
    int64_t sizes[CT_MAX_DIMS];
    int nd = 0;
    const char *p = sh + 1;
    uint64_t numel = 1, span = 1; /* span: product of the nonzero sizes (strides must fit) */
    for (;;) {
        while (p < he && (*p == ' ' || *p == ',')) p++;
        if (p < he && *p == ')') break;
        if (p >= he || *p < '0' || *p > '9' || nd >= CT_MAX_DIMS) return bad(what, "bad shape");
        uint64_t v = 0;
        while (p < he && *p >= '0' && *p <= '9') {
            v = v * 10 + (uint64_t)(*p++ - '0');
            if (v > ((uint64_t)1 << 40)) return bad(what, "implausible shape");
        }
        if (v && span > ((uint64_t)1 << 40) / v) return bad(what, "implausible shape");
        numel *= v;
        if (v) span *= v;
        sizes[nd++] = (int64_t)v;
    }
    size_t bytes = (size_t)numel * (size_t)size, data = off + hl;
    if (bytes > n - data) return bad(what, "the data is shorter than the header's shape says (truncated file?)");
    const unsigned char *src = d + data;
    unsigned char *tmp = NULL;
    if (swap || dt == CT_BOOL) {
        tmp = malloc(bytes ? bytes : 1);
        if (!tmp) return ct__err(CT_ERR_OOM, "npy: out of memory");
        memcpy(tmp, src, bytes);
        if (swap) { /* complex: swap each of the two parts */
            int part = kind == 'c' ? size / 2 : size;
            for (size_t i = 0; i < bytes / (size_t)part; i++)
                for (int a = 0, b = part - 1; a < b; a++, b--) {
                    unsigned char x = tmp[i * (size_t)part + (size_t)a];
                    tmp[i * (size_t)part + (size_t)a] = tmp[i * (size_t)part + (size_t)b];
                    tmp[i * (size_t)part + (size_t)b] = x;
                }
        }
        if (dt == CT_BOOL)
            for (size_t i = 0; i < bytes; i++) tmp[i] = tmp[i] != 0;
        src = tmp;
    }
    ct_tensor *t;
    if (!fortran || nd < 2) {
        t = ct_from_data(bytes ? (const void *)src : (const void *)"", nd, sizes, dt);
    } else { /* column-major: read with reversed sizes, then reverse the dims */
        int64_t rev[CT_MAX_DIMS];
        int perm[CT_MAX_DIMS];
        for (int k = 0; k < nd; k++) rev[k] = sizes[nd - 1 - k], perm[k] = nd - 1 - k;
        ct_scope_begin();
        ct_tensor *r = ct_from_data(bytes ? (const void *)src : (const void *)"", nd, rev, dt);
        t = ct_contiguous(ct_permute(r, nd, perm));
        if (t) t = ct_keep(t);
        ct_scope_end();
    }
    free(tmp);
    return t;
}

CT_API ct_tensor *ct_npy_load_buffer(const void *data, size_t size) {
    if (!data && size) return ct__err(CT_ERR_ARG, "npy: NULL buffer");
    return parse(data, size, "buffer");
}

CT_API ct_tensor *ct_npy_load(const char *path) {
    if (!path) return ct__err(CT_ERR_ARG, "npy: NULL path");
    size_t n;
    unsigned char *b = ct__read_file(path, &n, "npy");
    if (!b) return NULL;
    ct_tensor *t = parse(b, n, path);
    free(b);
    return t;
}

CT_API int ct_npy_save_buffer(const ct_tensor *t, void **out, size_t *size) {
    if (!out || !size) return ct__errs(CT_ERR_ARG, "npy: NULL output");
    *out = NULL, *size = 0;
    CT_CHECK_ARG_S("npy_save", t);
    char kind = 0;
    int es = (int)ct_dtype_size(t->dtype);
    for (int i = 0; i < N_NPT; i++)
        if (NPT[i].dt == t->dtype) kind = NPT[i].kind;
    if (!kind) return ct__errs(CT_ERR_DTYPE, "npy: NumPy has no %s dtype", ct_dtype_name(t->dtype));
    char h[4096];
    int k = snprintf(h, sizeof h, "{'descr': '%c%c%d', 'fortran_order': False, 'shape': (", es == 1 ? '|' : '<', kind, es);
    for (int d = 0; d < t->ndim && k < 3900; d++) k += snprintf(h + k, sizeof h - (size_t)k, "%lld, ", (long long)t->sizes[d]);
    if (t->ndim > 1) k -= 2; /* (3, 4) rather than (3, 4, ) ; (5,) keeps its comma */
    else if (t->ndim == 1) k -= 1;
    k += snprintf(h + k, sizeof h - (size_t)k, "), }");
    while ((10 + k + 1) % 64) h[k++] = ' ';
    h[k++] = '\n';
    size_t bytes = (size_t)t->numel * (size_t)es, total = 10 + (size_t)k + bytes;
    unsigned char *b = malloc(total);
    if (!b) return ct__errs(CT_ERR_OOM, "npy: out of memory");
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(k & 0xFF), b[9] = (unsigned char)(k >> 8);
    memcpy(b + 10, h, (size_t)k);
    ct_scope_begin();
    ct_tensor *c = ct_contiguous(t);
    if (c && bytes) memcpy(b + 10 + k, ct__data(c), bytes);
    ct_scope_end();
    if (!c) { free(b); return ct_last_status(); }
    *out = b, *size = total;
    return 0;
}

CT_API int ct_npy_save(const ct_tensor *t, const char *path) {
    if (!path) return ct__errs(CT_ERR_ARG, "npy: NULL path");
    void *b;
    size_t n;
    int st = ct_npy_save_buffer(t, &b, &n);
    if (st) return st;
    st = ct__atomic_write(path, b, n, "npy");
    free(b);
    return st;
}
