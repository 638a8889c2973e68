/* safetensors reader and writer (include/ctorch/io.h).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [2, 3],
 *    "data_offsets": [begin, end]}, ...}
 * padded with spaces to a multiple of 8, then the data buffer; offsets are relative to
 * the buffer. The reader is strict like the reference implementation: the header must
 * fit the file, keys are unique, every size matches its shape and dtype, and the
 * tensors tile the buffer exactly (no gaps, no overlaps, nothing after). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "ctorch/io.h"

#define MAX_HEADER (100u << 20) /* the reference implementation's limit */

static const struct {
    const char *name;
    ct_dtype dt;
} DTYPES[] = {{"F64", CT_FLOAT64}, {"F32", CT_FLOAT32}, {"F16", CT_FLOAT16}, {"BF16", CT_BFLOAT16},
              {"I64", CT_INT64},   {"I32", CT_INT32},   {"I16", CT_INT16},   {"I8", CT_INT8},
              {"U8", CT_UINT8},    {"BOOL", CT_BOOL}};
#define N_DT (int)(sizeof DTYPES / sizeof DTYPES[0])

/* ---- a small strict JSON reader for the header ---- */
typedef struct {
    const char *s, *end, *base;
    const char *what; /* file name for messages */
    char err[160];
} jp;

static void jfail(jp *p, const char *msg) {
    if (!p->err[0]) snprintf(p->err, sizeof p->err, "%s at header byte %td", msg, p->s - p->base);
}
static void ws(jp *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\n' || *p->s == '\r' || *p->s == '\t')) p->s++;
}
static bool lit(jp *p, char c) {
    ws(p);
    if (p->s < p->end && *p->s == c) {
        p->s++;
        return true;
    }
    return false;
}
/* A JSON string into a malloc'd buffer (escapes \" \\ \/ \b \f \n \r \t \uXXXX (BMP, as UTF-8)). */
static char *jstr(jp *p) {
    ws(p);
    if (p->s >= p->end || *p->s != '"') {
        jfail(p, "expected a string");
        return NULL;
    }
    p->s++;
    size_t cap = 16, n = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    while (p->s < p->end && *p->s != '"') {
        unsigned c = (unsigned char)*p->s++;
        if (c < 0x20) { jfail(p, "control character in string"); free(b); return NULL; }
        unsigned char out[4];
        int k = 1;
        out[0] = (unsigned char)c;
        if (c == '\\') {
            if (p->s >= p->end) break;
            char e = *p->s++;
            switch (e) {
            case '"': out[0] = '"'; break;
            case '\\': out[0] = '\\'; break;
            case '/': out[0] = '/'; break;
            case 'b': out[0] = '\b'; break;
            case 'f': out[0] = '\f'; break;
            case 'n': out[0] = '\n'; break;
            case 'r': out[0] = '\r'; break;
            case 't': out[0] = '\t'; break;
            case 'u': {
                if (p->end - p->s < 4) { jfail(p, "short \\u escape"); free(b); return NULL; }
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *p->s++;
                    v = v * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                       : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 99);
                    if (v > 0xFFFF) { jfail(p, "bad \\u escape"); free(b); return NULL; }
                }
                if (v < 0x80) out[0] = (unsigned char)v;
                else if (v < 0x800) out[0] = (unsigned char)(0xC0 | (v >> 6)), out[1] = (unsigned char)(0x80 | (v & 63)), k = 2;
                else out[0] = (unsigned char)(0xE0 | (v >> 12)), out[1] = (unsigned char)(0x80 | ((v >> 6) & 63)),
                     out[2] = (unsigned char)(0x80 | (v & 63)), k = 3;
                break;
            }
            default: jfail(p, "bad escape"); free(b); return NULL;
            }
        }
        if (n + (size_t)k + 1 > cap) {
            cap *= 2;
            char *nb = realloc(b, cap);
            if (!nb) { free(b); return NULL; }
            b = nb;
        }
        memcpy(b + n, out, (size_t)k);
        n += (size_t)k;
    }
    if (p->s >= p->end) { jfail(p, "unterminated string"); free(b); return NULL; }
    p->s++;
    b[n] = 0;
    return b;
}
static bool juint(jp *p, uint64_t *v) {
    ws(p);
    if (p->s >= p->end || *p->s < '0' || *p->s > '9') { jfail(p, "expected a non-negative integer"); return false; }
    uint64_t x = 0;
    while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
        unsigned d = (unsigned)(*p->s++ - '0');
        if (x > (UINT64_MAX - d) / 10) { jfail(p, "integer overflow"); return false; }
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

typedef struct {
    char *name;
    ct_dtype dt;
    int ndim;
    int64_t shape[CT_MAX_DIMS];
    uint64_t begin, end;
} entry;

static int cmp_begin(const void *a, const void *b) {
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static void *fmt_err(const char *what, const char *msg) {
    return ct__err(CT_ERR_FORMAT, "safetensors: %s: %s", what, msg);
}

static ct_dict *parse(const unsigned char *data, size_t size, const char *what) {
    if (size < 8) return fmt_err(what, "file is shorter than the 8-byte header length");
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | data[i];
    if (n > MAX_HEADER) return fmt_err(what, "header is larger than 100 MB");
    if (n > size - 8) return fmt_err(what, "header length exceeds the file size (truncated file?)");
    if (n < 2 || data[8] != '{') return fmt_err(what, "header does not start with '{'");
    jp p = {.s = (const char *)data + 8, .end = (const char *)data + 8 + n, .base = (const char *)data + 8, .what = what};
    const unsigned char *buf = data + 8 + n;
    uint64_t buf_size = size - 8 - n;
    ct_dict *d = ct_dict_new();
    entry *ents = NULL;
    int64_t ne = 0, cap = 0;
    bool ok = d != NULL;
    if (ok && !lit(&p, '{')) ok = false, jfail(&p, "expected '{'");
    bool first = true;
    while (ok && !lit(&p, '}')) {
        if (!first && !lit(&p, ',')) { jfail(&p, "expected ',' or '}'"); ok = false; break; }
        first = false;
        char *key = jstr(&p);
        if (!key || !lit(&p, ':')) { free(key); jfail(&p, "expected a key and ':'"); ok = false; break; }
        if (strcmp(key, "__metadata__") == 0) {
            free(key);
            if (!lit(&p, '{')) { jfail(&p, "__metadata__ must be an object"); ok = false; break; }
            bool f2 = true;
            while (ok && !lit(&p, '}')) {
                if (!f2 && !lit(&p, ',')) { jfail(&p, "expected ',' in __metadata__"); ok = false; break; }
                f2 = false;
                char *k = jstr(&p), *v = NULL;
                if (k && lit(&p, ':')) v = jstr(&p);
                if (!k || !v) { jfail(&p, "__metadata__ values must be strings"); free(k); free(v); ok = false; break; }
                if (ct_dict_meta(d, k)) { jfail(&p, "duplicate key in __metadata__"); ok = false; }
                else if (ct_dict_set_meta(d, k, v)) ok = false;
                free(k);
                free(v);
            }
            continue;
        }
        for (int64_t i = 0; i < ne; i++)
            if (strcmp(ents[i].name, key) == 0) { jfail(&p, "duplicate tensor name"); ok = false; }
        if (!ok) { free(key); break; }
        if (ne == cap) {
            cap = cap ? 2 * cap : 16;
            entry *e2 = realloc(ents, (size_t)cap * sizeof *e2);
            if (!e2) { free(key); ok = false; ct__err(CT_ERR_OOM, "safetensors: out of memory"); break; }
            ents = e2;
        }
        entry *e = &ents[ne++];
        memset(e, 0, sizeof *e);
        e->name = key;
        e->dt = CT_NUM_DTYPES;
        bool have_dt = false, have_shape = false, have_off = false;
        if (!lit(&p, '{')) { jfail(&p, "tensor entry must be an object"); ok = false; break; }
        bool f3 = true;
        while (ok && !lit(&p, '}')) {
            if (!f3 && !lit(&p, ',')) { jfail(&p, "expected ','"); ok = false; break; }
            f3 = false;
            char *field = jstr(&p);
            if (!field || !lit(&p, ':')) { free(field); jfail(&p, "expected a field"); ok = false; break; }
            if (strcmp(field, "dtype") == 0 && !have_dt) {
                char *v = jstr(&p);
                for (int i = 0; v && i < N_DT; i++)
                    if (strcmp(DTYPES[i].name, v) == 0) e->dt = DTYPES[i].dt;
                if (!v || e->dt == CT_NUM_DTYPES) { jfail(&p, "unsupported dtype"); ok = false; }
                free(v);
                have_dt = true;
            } else if (strcmp(field, "shape") == 0 && !have_shape) {
                if (!lit(&p, '[')) { jfail(&p, "shape must be a list"); ok = false; }
                while (ok && !lit(&p, ']')) {
                    if (e->ndim && !lit(&p, ',')) { jfail(&p, "expected ',' in shape"); ok = false; break; }
                    uint64_t v;
                    if (e->ndim >= CT_MAX_DIMS) { jfail(&p, "too many dimensions"); ok = false; break; }
                    if (!juint(&p, &v) || v > (uint64_t)INT64_MAX) { ok = false; break; }
                    e->shape[e->ndim++] = (int64_t)v;
                }
                have_shape = true;
            } else if (strcmp(field, "data_offsets") == 0 && !have_off) {
                ok = lit(&p, '[') && juint(&p, &e->begin) && lit(&p, ',') && juint(&p, &e->end) && lit(&p, ']');
                if (!ok) jfail(&p, "data_offsets must be [begin, end]");
                have_off = true;
            } else {
                jfail(&p, "unknown or repeated field in a tensor entry");
                ok = false;
            }
            free(field);
        }
        if (ok && !(have_dt && have_shape && have_off)) { jfail(&p, "tensor entry lacks dtype, shape or data_offsets"); ok = false; }
        if (ok) { /* size consistency, overflow-safe */
            uint64_t numel = 1;
            for (int i = 0; i < e->ndim; i++) {
                uint64_t s = (uint64_t)e->shape[i];
                if (s && numel > UINT64_MAX / s) { jfail(&p, "shape overflows"); ok = false; break; }
                numel *= s;
            }
            uint64_t es = ct_dtype_size(e->dt);
            if (ok && numel > UINT64_MAX / es) { jfail(&p, "shape overflows"); ok = false; }
            if (ok && (e->end < e->begin || e->end - e->begin != numel * es)) {
                jfail(&p, "data_offsets do not match shape and dtype");
                ok = false;
            }
            if (ok && e->end > buf_size) { jfail(&p, "data_offsets point past the end of the file"); ok = false; }
        }
    }
    if (ok) {
        ws(&p);
        if (p.s != p.end) { jfail(&p, "trailing bytes after the header object"); ok = false; }
    }
    if (ok) { /* tensors tile the buffer exactly */
        entry **order = malloc(sizeof *order * (size_t)(ne ? ne : 1));
        if (!order) ok = false;
        for (int64_t i = 0; ok && i < ne; i++) order[i] = &ents[i];
        if (ok) qsort(order, (size_t)ne, sizeof *order, cmp_begin);
        uint64_t at = 0;
        for (int64_t i = 0; ok && i < ne; i++) {
            if (order[i]->begin != at) { jfail(&p, "tensor data overlaps or leaves a gap"); ok = false; }
            at = order[i]->end;
        }
        if (ok && at != buf_size) { jfail(&p, "data buffer has bytes no tensor describes"); ok = false; }
        free(order);
    }
    if (ok) {
        ct_scope_begin();
        for (int64_t i = 0; ok && i < ne; i++) {
            ct_tensor *t = ct_from_data(buf + ents[i].begin, ents[i].ndim, ents[i].shape, ents[i].dt);
            if (!t || ct_dict_set(d, ents[i].name, t)) ok = false;
        }
        ct_scope_end();
    }
    for (int64_t i = 0; i < ne; i++) free(ents[i].name);
    free(ents);
    if (!ok) {
        if (p.err[0]) fmt_err(what, p.err);
        ct_dict_free(d);
        return NULL;
    }
    return d;
}

CT_API ct_dict *ct_safetensors_load_buffer(const void *data, size_t size) {
    if (!data && size) return ct__err(CT_ERR_ARG, "safetensors: NULL buffer");
    return parse(data, size, "buffer");
}

unsigned char *ct__read_file(const char *path, size_t *n, const char *who) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct__err(CT_ERR_IO, "%s: cannot open %s: %s", who, path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return ct__err(CT_ERR_IO, "%s: cannot seek %s", who, path); }
    long sz = ftell(f);
    rewind(f);
    if (sz < 0) { fclose(f); return ct__err(CT_ERR_IO, "%s: cannot size %s", who, path); }
    unsigned char *b = malloc((size_t)sz + 1);
    if (!b) { fclose(f); return ct__err(CT_ERR_OOM, "%s: out of memory reading %s (%ld bytes)", who, path, sz); }
    size_t got = fread(b, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) { free(b); return ct__err(CT_ERR_IO, "%s: short read from %s", who, path); }
    *n = got;
    return b;
}

CT_API ct_dict *ct_safetensors_load(const char *path) {
    if (!path) return ct__err(CT_ERR_ARG, "safetensors: NULL path");
    size_t n;
    unsigned char *b = ct__read_file(path, &n, "safetensors");
    if (!b) return NULL;
    ct_dict *d = parse(b, n, path);
    free(b);
    return d;
}

/* ---- writer ---- */
typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;
static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) c *= 2;
        char *x = realloc(b->s, c);
        if (!x) { b->oom = true; return; }
        b->s = x, b->cap = c;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }
static void put_json_str(sbuf *b, const char *s) {
    puts_(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\', e[1] = (char)c; put(b, e, 2); }
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); puts_(b, e); }
        else put(b, (const char *)&c, 1);
    }
    puts_(b, "\"");
}

typedef struct {
    const char *name;
    ct_tensor *t; /* contiguous, borrowed from the scope */
    size_t es;
} wentry;

static int cmp_w(const void *a, const void *b) {
    const wentry *x = a, *y = b;
    if (x->es != y->es) return x->es > y->es ? -1 : 1; /* larger elements first: aligned offsets */
    return strcmp(x->name, y->name);
}

static const char *dt_name(ct_dtype dt) {
    for (int i = 0; i < N_DT; i++)
        if (DTYPES[i].dt == dt) return DTYPES[i].name;
    return NULL;
}

CT_API int ct_safetensors_save_buffer(const ct_dict *d, void **out, size_t *size) {
    if (!d || !out || !size) return ct__errs(CT_ERR_ARG, "safetensors: NULL argument");
    *out = NULL, *size = 0;
    int64_t n = ct_dict_size(d);
    wentry *w = calloc((size_t)(n ? n : 1), sizeof *w);
    if (!w) return ct__errs(CT_ERR_OOM, "safetensors: out of memory");
    int st = 0;
    ct_scope_begin();
    for (int64_t i = 0; i < n && !st; i++) {
        ct_tensor *t = ct_dict_value(d, i);
        if (!dt_name(t->dtype)) {
            st = ct__errs(CT_ERR_DTYPE, "safetensors: tensor '%s' has dtype %s, which the format does not have",
                          ct_dict_key(d, i), ct_dtype_name(t->dtype));
            break;
        }
        w[i] = (wentry){ct_dict_key(d, i), ct_contiguous(t), ct_dtype_size(t->dtype)};
        if (!w[i].t) st = ct_last_status();
    }
    sbuf h = {0};
    if (!st) {
        qsort(w, (size_t)n, sizeof *w, cmp_w);
        puts_(&h, "{");
        bool comma = false;
        if (ct_dict_meta_size(d)) {
            puts_(&h, "\"__metadata__\":{");
            for (int64_t i = 0; i < ct_dict_meta_size(d); i++) {
                if (i) puts_(&h, ",");
                put_json_str(&h, ct_dict_meta_key(d, i));
                puts_(&h, ":");
                put_json_str(&h, ct_dict_meta_value(d, i));
            }
            puts_(&h, "}");
            comma = true;
        }
        uint64_t at = 0;
        char num[64];
        for (int64_t i = 0; i < n; i++) {
            if (comma) puts_(&h, ",");
            comma = true;
            put_json_str(&h, w[i].name);
            puts_(&h, ":{\"dtype\":\"");
            puts_(&h, dt_name(w[i].t->dtype));
            puts_(&h, "\",\"shape\":[");
            for (int k = 0; k < w[i].t->ndim; k++) {
                snprintf(num, sizeof num, "%s%lld", k ? "," : "", (long long)w[i].t->sizes[k]);
                puts_(&h, num);
            }
            uint64_t bytes = (uint64_t)w[i].t->numel * w[i].es;
            snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at,
                     (unsigned long long)(at + bytes));
            puts_(&h, num);
            at += bytes;
        }
        puts_(&h, "}");
        while (!h.oom && h.n % 8) puts_(&h, " ");
        if (h.oom) st = ct__errs(CT_ERR_OOM, "safetensors: out of memory");
        size_t total = 8 + h.n + (size_t)at;
        unsigned char *b = st ? NULL : malloc(total ? total : 1);
        if (!st && !b) st = ct__errs(CT_ERR_OOM, "safetensors: out of memory (%zu bytes)", total);
        if (!st) {
            uint64_t hl = h.n;
            for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hl >> (8 * i));
            memcpy(b + 8, h.s, h.n);
            size_t off = 8 + h.n;
            for (int64_t i = 0; i < n; i++) {
                size_t bytes = (size_t)w[i].t->numel * w[i].es;
                if (bytes) memcpy(b + off, ct__data(w[i].t), bytes);
                off += bytes;
            }
            *out = b, *size = total;
        }
    }
    free(h.s);
    ct_scope_end();
    free(w);
    return st;
}

/* Writes buf to path atomically: temporary file in the same directory, fsync, rename. */
int ct__atomic_write(const char *path, const void *buf, size_t n, const char *who) {
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 32);
    if (!tmp) return ct__errs(CT_ERR_OOM, "%s: out of memory", who);
    snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(tmp);
        return ct__errs(CT_ERR_IO, "%s: cannot create %s: %s", who, path, strerror(e));
    }
    bool ok = fwrite(buf, 1, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) != 0) ok = false;
    int e = errno;
    if (!ok) remove(tmp);
    free(tmp);
    return ok ? 0 : ct__errs(CT_ERR_IO, "%s: cannot write %s: %s", who, path, strerror(e));
}

CT_API int ct_safetensors_save(const ct_dict *d, const char *path) {
    if (!path) return ct__errs(CT_ERR_ARG, "safetensors: NULL path");
    void *b;
    size_t n;
    int st = ct_safetensors_save_buffer(d, &b, &n);
    if (st) return st;
    st = ct__atomic_write(path, b, n, "safetensors");
    free(b);
    return st;
}
