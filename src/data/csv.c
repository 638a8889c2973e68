/* CSV files (include/ctorch/data.h): numeric tables as [rows, cols] tensors. A strict
 * reader: every row has the header's (or the first row's) number of fields, every field
 * is a number of the requested dtype (NaN for an empty float field), and errors name the
 * line and column. Quoted fields ("1.5") are accepted; blank lines are skipped. Memory is
 * bounded by the size of the input. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/internal.h"
#include "ctorch/data.h"

typedef union {
    double d;
    int64_t i;
} num;
typedef struct {
    num *v;
    int64_t n, cap;
} vals;

static int push_val(vals *a, num x) {
    if (a->n == a->cap) {
        int64_t c = a->cap ? 2 * a->cap : 1024;
        num *nv = realloc(a->v, sizeof(num) * (size_t)c);
        if (!nv) return ct__errs(CT_ERR_OOM, "read_csv: out of memory");
        a->v = nv, a->cap = c;
    }
    a->v[a->n++] = x;
    return 0;
}

/* One field [s, e) with surrounding spaces and one pair of quotes removed, into a
 * NUL-terminated buffer (fields longer than the buffer are not numbers anyway). */
static bool field_text(const char *s, const char *e, char *buf, size_t size, bool *quoted_bad) {
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    *quoted_bad = false;
    if (e > s && *s == '"') {
        if (e - s < 2 || e[-1] != '"') {
            *quoted_bad = true;
            return false;
        }
        s++, e--;
    }
    if ((size_t)(e - s) >= size) return false;
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = 0;
    return true;
}

static char *dup_range(const char *s, const char *e) {
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') s++, e--;
    char *r = malloc((size_t)(e - s) + 1);
    if (r) memcpy(r, s, (size_t)(e - s)), r[e - s] = 0;
    return r;
}

CT_API void ct_data_csv_names_free(char **names, int64_t n) {
    if (!names) return;
    for (int64_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The end of the field starting at p in a line ending at end: the next delimiter
 * outside quotes. */
static const char *field_end(const char *p, const char *end, char delim) {
    bool q = false;
    for (; p < end; p++) {
        if (*p == '"') q = !q;
        else if (*p == delim && !q) return p;
    }
    return end;
}

CT_API ct_tensor *ct_data_read_csv_buffer(const void *data, size_t size, const ct_csv_opts *opts, char ***names,
                                          int64_t *n_names) {
    ct_csv_opts o = CT_CSV_DEFAULTS;
    if (opts) o = *opts;
    if (names) *names = NULL;
    if (n_names) *n_names = 0;
    if (!data && size) return ct__err(CT_ERR_ARG, "read_csv: NULL data");
    if (o.dtype != CT_FLOAT32 && o.dtype != CT_FLOAT64 && o.dtype != CT_INT64 && o.dtype != CT_INT32)
        return ct__err(CT_ERR_DTYPE, "read_csv: dtype must be float32, float64, int32 or int64, got %s",
                       ct_dtype_name(o.dtype));
    if (!o.delimiter || o.delimiter == '"' || o.delimiter == '\n' || o.delimiter == '\r')
        return ct__err(CT_ERR_ARG, "read_csv: bad delimiter 0x%02x", (unsigned char)o.delimiter);
    if (o.skip_rows < 0) return ct__err(CT_ERR_ARG, "read_csv: skip_rows must be non-negative");
    const char *p = data, *end = p + size;
    vals a = {0};
    char **hdr = NULL;
    int64_t ncols = -1, rows = 0, line_no = 0, skipped = 0;
    bool want_header = o.header, is_float = o.dtype == CT_FLOAT32 || o.dtype == CT_FLOAT64;
    int st = 0;
    while (p < end && !st) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line_no++;
        const char *q = p;
        p = nl ? nl + 1 : end;
        if (skipped < o.skip_rows) {
            skipped++;
            continue;
        }
        const char *t = q;
        while (t < le && (*t == ' ' || *t == '\t' || *t == '\r')) t++;
        if (t == le) continue; /* blank line */
        if (o.comment && *t == o.comment) continue;
        /* count the fields */
        int64_t nf = 0;
        for (const char *f = q;; nf++) {
            const char *fe = field_end(f, le, o.delimiter);
            if (fe == le) {
                nf++;
                break;
            }
            f = fe + 1;
        }
        if (want_header) {
            want_header = false;
            ncols = nf;
            hdr = calloc((size_t)nf, sizeof(char *));
            if (!hdr) st = ct__errs(CT_ERR_OOM, "read_csv: out of memory");
            const char *f = q;
            for (int64_t c = 0; c < nf && !st; c++) {
                const char *fe = field_end(f, le, o.delimiter);
                if (!(hdr[c] = dup_range(f, fe))) st = ct__errs(CT_ERR_OOM, "read_csv: out of memory");
                f = fe + 1;
            }
            continue;
        }
        if (ncols < 0) ncols = nf;
        if (nf != ncols) {
            st = ct__errs(CT_ERR_FORMAT, "read_csv: line %lld has %lld fields, expected %lld", (long long)line_no,
                          (long long)nf, (long long)ncols);
            break;
        }
        const char *f = q;
        for (int64_t c = 0; c < nf && !st; c++) {
            const char *fe = field_end(f, le, o.delimiter);
            char buf[128];
            bool bad_quote;
            bool ok = field_text(f, fe, buf, sizeof buf, &bad_quote);
            num v = {.d = NAN};
            if (ok && buf[0] == 0) {
                if (!is_float) ok = false; /* an empty integer field */
            } else if (ok) {
                char *stop;
                errno = 0;
                if (is_float) {
                    v.d = strtod(buf, &stop);
                } else {
                    long long iv = strtoll(buf, &stop, 10);
                    v.i = iv;
                    if (errno == ERANGE || (o.dtype == CT_INT32 && (iv < INT32_MIN || iv > INT32_MAX))) ok = false;
                }
                if (stop == buf || *stop) ok = false;
            }
            if (!ok) {
                int n = (int)(fe - f) > 40 ? 40 : (int)(fe - f);
                st = ct__errs(CT_ERR_FORMAT, "read_csv: line %lld, column %lld: '%.*s' is not %s%s", (long long)line_no,
                              (long long)c + 1, n, f, is_float ? "a number" : "an integer",
                              bad_quote ? " (unbalanced quotes)" : "");
                break;
            }
            st = push_val(&a, v);
            f = fe + 1;
        }
        rows++;
    }
    ct_tensor *out = NULL;
    if (!st) {
        if (ncols < 0) ncols = 0;
        ct_dtype parsed = is_float ? CT_FLOAT64 : CT_INT64;
        ct_tensor *t = ct_from_data(a.v ? (const void *)a.v : (const void *)"", 2, (int64_t[]){rows, ncols}, parsed);
        out = t && o.dtype != parsed ? ct_to_dtype(t, o.dtype) : t;
        if (t && out != t) ct_release(t);
        if (!out) st = ct_last_status();
    }
    free(a.v);
    if (!st && names) {
        *names = hdr;
        if (n_names) *n_names = hdr ? ncols : 0;
        hdr = NULL;
    }
    ct_data_csv_names_free(hdr, hdr ? ncols : 0);
    return st ? NULL : out;
}

CT_API ct_tensor *ct_data_read_csv(const char *path, const ct_csv_opts *opts, char ***names, int64_t *n_names) {
    if (names) *names = NULL;
    if (n_names) *n_names = 0;
    if (!path) return ct__err(CT_ERR_ARG, "read_csv: NULL path");
    gzFile f = gzopen(path, "rb"); /* plain and gzip'd files alike */
    if (!f) return ct__err(CT_ERR_IO, "read_csv: cannot open %s", path);
    char *buf = NULL;
    size_t got = 0, cap = 0;
    for (;;) {
        if (got == cap) {
            size_t nc = cap ? 2 * cap : 1 << 16;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                gzclose(f);
                return ct__err(CT_ERR_OOM, "read_csv: out of memory reading %s", path);
            }
            buf = nb, cap = nc;
        }
        size_t want = cap - got > (1u << 30) ? (1u << 30) : cap - got;
        int r = gzread(f, buf + got, (unsigned)want);
        if (r < 0) {
            free(buf);
            gzclose(f);
            return ct__err(CT_ERR_IO, "read_csv: error reading %s", path);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    gzclose(f);
    ct_tensor *t = ct_data_read_csv_buffer(buf, got, opts, names, n_names);
    free(buf);
    return t;
}
