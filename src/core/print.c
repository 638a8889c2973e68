/* Tensor printing, following PyTorch's torch/_tensor_str.py with the default print
 * options (precision 4, threshold 1000, edgeitems 3, linewidth 80):
 *
 *   - one formatter per tensor (two for complex: real and imaginary parts) decides,
 *     from the values that will be shown, between integer mode ("1."), fixed ("1.5000")
 *     and scientific ("1.0000e+05") notation and a common width;
 *   - tensors with more than 1000 elements are summarised: a dim longer than 6 shows
 *     its first and last 3 entries around "...";
 *   - rows are wrapped at 80 columns, nested dims are separated by blank lines;
 *   - suffixes: size= for empty tensors that are not 1-D, dtype= when not implied,
 *     device= for non-CPU tensors, grad_fn=<...> or requires_grad=True. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "core/dispatch.h"

enum { PREC = 4, THRESHOLD = 1000, EDGE = 3, LINEWIDTH = 80 };

/* ---- growable string ---- */
typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_grow(sbuf *b, size_t extra) {
    if (b->oom) return;
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) { b->oom = true; return; }
    b->s = s;
    b->cap = cap;
}
static void sb_putn(sbuf *b, const char *s, size_t n) {
    sb_grow(b, n);
    if (b->oom) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}
static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }
static void sb_spaces(sbuf *b, int n) {
    if (n <= 0) return;
    sb_grow(b, (size_t)n);
    if (b->oom) return;
    memset(b->s + b->len, ' ', (size_t)n);
    b->len += (size_t)n;
    b->s[b->len] = '\0';
}

/* ---- element access ---- */
typedef struct {
    const ct_tensor *t;
    const char *base; /* first element */
    size_t esize;
    bool summarize;
} view;

/* Which value of an element a formatter looks at. */
enum { PART_REAL_DTYPE, PART_RE, PART_IM };

static double elem_f64(const view *v, int64_t off, int part) {
    const void *p = v->base + off * (int64_t)v->esize;
    if (part == PART_REAL_DTYPE) return ct__load_f64(p, v->t->dtype);
    ct_c128 z = ct__load_c128(p, v->t->dtype);
    return part == PART_RE ? creal(z) : cimag(z);
}

/* Visits, in display order, the elements that will be shown (all of them unless the
 * tensor is summarised), like PyTorch's get_summarized_data. */
typedef void (*visit_fn)(const view *v, int64_t off, void *ctx);
static void walk(const view *v, int d, int64_t off, visit_fn fn, void *ctx) {
    const ct_tensor *t = v->t;
    if (d == t->ndim) { fn(v, off, ctx); return; }
    int64_t n = t->sizes[d], st = t->strides[d];
    bool cut = v->summarize && n > 2 * EDGE;
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == EDGE) i = n - EDGE;
        walk(v, d + 1, off + i * st, fn, ctx);
    }
}

/* ---- the formatter (PyTorch's _Formatter) ---- */
typedef struct {
    bool floating;
    bool int_mode;
    bool sci_mode;
    int max_width;
    int part;
    /* scan state */
    int64_t n_nonzero_finite;
    double amin, amax;
} formatter;

/* Lengths of a double printed the three ways the formatter knows. */
static int len_sci(double x) { char tmp[64]; return snprintf(tmp, sizeof tmp, "%.*e", PREC, x); }
static int len_fixed(double x) { char tmp[512]; return snprintf(tmp, sizeof tmp, "%.*f", PREC, x); }
static int len_int(double x) { char tmp[512]; return snprintf(tmp, sizeof tmp, "%.0f", x); }

static void scan_minmax(const view *v, int64_t off, void *ctx) {
    formatter *f = ctx;
    double x = elem_f64(v, off, f->part);
    if (!isfinite(x) || x == 0) return;
    double a = fabs(x);
    if (f->n_nonzero_finite++ == 0) f->amin = f->amax = a;
    else {
        if (a < f->amin) f->amin = a;
        if (a > f->amax) f->amax = a;
    }
    if (x != ceil(x)) f->int_mode = false;
}

static void scan_width(const view *v, int64_t off, void *ctx) {
    formatter *f = ctx;
    int w;
    if (f->floating) {
        double x = elem_f64(v, off, f->part);
        if (!isfinite(x) || x == 0) return;
        if (f->sci_mode) w = len_sci(x);
        else if (f->int_mode) w = len_int(x) + 1; /* room for the trailing "." */
        else w = len_fixed(x);
    } else {
        const void *p = v->base + off * (int64_t)v->esize;
        if (v->t->dtype == CT_BOOL) w = ct__load_i64(p, CT_BOOL) ? 4 : 5;
        else {
            char tmp[32];
            w = snprintf(tmp, sizeof tmp, "%" PRId64, ct__load_i64(p, v->t->dtype));
        }
    }
    if (w > f->max_width) f->max_width = w;
}

static void formatter_init(formatter *f, const view *v, int part) {
    memset(f, 0, sizeof *f);
    f->part = part;
    f->floating = part != PART_REAL_DTYPE || ct_dtype_is_floating(v->t->dtype);
    f->int_mode = true;
    f->sci_mode = false;
    f->max_width = 1;
    if (f->floating) {
        walk(v, 0, 0, scan_minmax, f);
        if (f->n_nonzero_finite == 0) return; /* nothing to decide from: int mode, width 1 */
        f->sci_mode = f->amax / f->amin > 1000.0 || f->amax > 1.0e8 || f->amin < 1.0e-4;
    }
    walk(v, 0, 0, scan_width, f);
}

/* One floating value, right-aligned to the formatter's width. */
static void format_float(const formatter *f, double x, char *out, size_t n) {
    char tmp[512];
    if (isnan(x)) snprintf(tmp, sizeof tmp, "nan"); /* Python never prints "-nan" */
    else if (f->sci_mode) snprintf(tmp, sizeof tmp, "%.*e", PREC, x);
    else if (f->int_mode) snprintf(tmp, sizeof tmp, isinf(x) ? "%.0f" : "%.0f.", x);
    else snprintf(tmp, sizeof tmp, "%.*f", PREC, x);
    int pad = f->max_width - (int)strlen(tmp);
    snprintf(out, n, "%*s%s", pad > 0 ? pad : 0, "", tmp);
}

static void format_elem(const formatter *f1, const formatter *f2, const view *v, int64_t off, sbuf *b) {
    char s1[600], s2[600];
    if (f2) { /* complex: real part, then the imaginary part with its sign and a "j" */
        format_float(f1, elem_f64(v, off, PART_RE), s1, sizeof s1);
        format_float(f2, elem_f64(v, off, PART_IM), s2, sizeof s2);
        const char *im = s2;
        while (*im == ' ') im++;
        sb_puts(b, s1);
        if (*im != '+' && *im != '-') sb_puts(b, "+");
        sb_puts(b, im);
        sb_puts(b, "j");
        return;
    }
    if (f1->floating) {
        format_float(f1, elem_f64(v, off, PART_REAL_DTYPE), s1, sizeof s1);
    } else {
        const void *p = v->base + off * (int64_t)v->esize;
        char tmp[32];
        if (v->t->dtype == CT_BOOL) snprintf(tmp, sizeof tmp, "%s", ct__load_i64(p, CT_BOOL) ? "True" : "False");
        else snprintf(tmp, sizeof tmp, "%" PRId64, ct__load_i64(p, v->t->dtype));
        int pad = f1->max_width - (int)strlen(tmp);
        snprintf(s1, sizeof s1, "%*s%s", pad > 0 ? pad : 0, "", tmp);
    }
    sb_puts(b, s1);
}

/* ---- layout (PyTorch's _vector_str and _tensor_str_with_formatter) ---- */

/* Items shown along a dim of size n: all, or EDGE + "..." + EDGE when summarised.
 * item_index() gives the element index of item j, or -1 for the "..." item. */
static int64_t n_items(const view *v, int64_t n) { return v->summarize && n > 2 * EDGE ? 2 * EDGE + 1 : n; }
static int64_t item_index(const view *v, int64_t n, int64_t j) {
    if (!(v->summarize && n > 2 * EDGE) || j < EDGE) return j;
    if (j == EDGE) return -1;
    return n - EDGE + (j - EDGE - 1);
}

static void put_vector(const view *v, int64_t off, int indent, const formatter *f1, const formatter *f2, sbuf *b) {
    const ct_tensor *t = v->t;
    int64_t n = t->sizes[t->ndim - 1], st = t->strides[t->ndim - 1];
    int elem_len = f1->max_width + 2; /* ", " between elements */
    if (f2) elem_len += f2->max_width + 1; /* imaginary part and its "j" */
    int64_t per_line = (LINEWIDTH - indent) / elem_len;
    if (per_line < 1) per_line = 1;
    int64_t items = n_items(v, n);
    sb_puts(b, "[");
    for (int64_t j = 0; j < items; j++) {
        if (j > 0) {
            if (j % per_line == 0) {
                sb_puts(b, ",\n");
                sb_spaces(b, indent + 1);
            } else sb_puts(b, ", ");
        }
        int64_t i = item_index(v, n, j);
        if (i < 0) sb_puts(b, " ...");
        else format_elem(f1, f2, v, off + i * st, b);
    }
    sb_puts(b, "]");
}

static void put_tensor(const view *v, int d, int64_t off, int indent, const formatter *f1, const formatter *f2,
                       sbuf *b) {
    const ct_tensor *t = v->t;
    int rank = t->ndim - d; /* dims left at this level */
    if (rank == 0) { format_elem(f1, f2, v, off, b); return; }
    if (rank == 1) { put_vector(v, off, indent, f1, f2, b); return; }
    int64_t n = t->sizes[d], st = t->strides[d];
    int64_t items = n_items(v, n);
    sb_puts(b, "[");
    for (int64_t j = 0; j < items; j++) {
        if (j > 0) { /* "," then rank-1 newlines then the indent */
            sb_puts(b, ",");
            for (int k = 0; k < rank - 1; k++) sb_puts(b, "\n");
            sb_spaces(b, indent + 1);
        }
        int64_t i = item_index(v, n, j);
        if (i < 0) sb_puts(b, "...");
        else put_tensor(v, d + 1, off + i * st, indent + 1, f1, f2, b);
    }
    sb_puts(b, "]");
}

/* ---- suffixes (PyTorch's _add_suffixes) ---- */
typedef struct {
    char text[8][1600]; /* a size=(...) tuple may list up to CT_MAX_DIMS sizes */
    int n;
} suffixes;

static void add_suffix(suffixes *sx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_suffix(suffixes *sx, const char *fmt, ...) {
    if (sx->n >= 8) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sx->text[sx->n++], sizeof sx->text[0], fmt, ap);
    va_end(ap);
}

static void put_suffixes(sbuf *b, const suffixes *sx, int indent) {
    /* PyTorch measures the last line as len(s) - s.rfind("\n") + 1, i.e. two more than
     * its length; the same count is kept here so wrapping happens at the same place. */
    size_t nl = 0;
    bool has_nl = false;
    for (size_t i = b->oom ? 0 : b->len; i-- > 0;)
        if (b->s[i] == '\n') { nl = i; has_nl = true; break; }
    int64_t last = has_nl ? (int64_t)(b->len - nl) + 1 : (int64_t)b->len + 2;
    for (int k = 0; k < sx->n; k++) {
        int64_t len = (int64_t)strlen(sx->text[k]);
        if (last + len + 2 > LINEWIDTH) {
            sb_puts(b, ",\n");
            sb_spaces(b, indent);
            last = indent + len;
        } else {
            sb_puts(b, ", ");
            last += len + 2;
        }
        sb_puts(b, sx->text[k]);
    }
    sb_puts(b, ")");
}

static void put_size_tuple(char *out, size_t n, const ct_tensor *t) {
    size_t pos = 0;
    pos += (size_t)snprintf(out + pos, n - pos, "size=(");
    for (int d = 0; d < t->ndim && pos < n; d++)
        pos += (size_t)snprintf(out + pos, n - pos, d ? ", %" PRId64 : "%" PRId64, t->sizes[d]);
    if (pos < n) snprintf(out + pos, n - pos, t->ndim == 1 ? ",)" : ")");
}

static const char *device_name(ct_device_type type) {
    switch (type) {
    case CT_DEVICE_CPU: return "cpu";
    case CT_DEVICE_OPENCL: return "opencl";
    case CT_DEVICE_CUDA: return "cuda";
    default: return "unknown";
    }
}

/* ---- entry points ---- */
CT_API char *ct_to_string(const ct_tensor *t) {
    CT_CHECK_ARG("to_string", t);
    static const char prefix[] = "tensor(";
    const int indent = (int)sizeof prefix - 1;
    sbuf b = {0};
    suffixes sx = {.n = 0};

    ct_device dev = t->storage->device;
    if (dev.type != CT_DEVICE_CPU) add_suffix(&sx, "device='%s:%d'", device_name(dev.type), dev.index);

    ct_dtype dflt = ct_get_default_dtype();
    ct_dtype dflt_complex = dflt == CT_FLOAT64 ? CT_COMPLEX128 : CT_COMPLEX64;
    bool implied_dtype = t->dtype == dflt || t->dtype == dflt_complex || t->dtype == CT_INT64 || t->dtype == CT_BOOL;

    sb_puts(&b, prefix);
    if (t->numel == 0) {
        /* the shape is shown unless it is (0,); the dtype unless it is the default */
        if (t->ndim != 1) {
            char tmp[1600];
            put_size_tuple(tmp, sizeof tmp, t);
            add_suffix(&sx, "%s", tmp);
        }
        if (t->dtype != dflt) add_suffix(&sx, "dtype=torch.%s", ct_dtype_name(t->dtype));
        sb_puts(&b, "[]");
    } else {
        if (!implied_dtype) add_suffix(&sx, "dtype=torch.%s", ct_dtype_name(t->dtype));
        ct_tensor *cpu = NULL;
        const ct_tensor *src = t;
        if (dev.type != CT_DEVICE_CPU) {
            cpu = ct__to_cpu_raw(t);
            if (!cpu) { free(b.s); return NULL; }
            src = cpu;
        }
        view v = {.t = src, .base = ct__data(src), .esize = ct_dtype_size(src->dtype),
                  .summarize = src->numel > THRESHOLD};
        formatter f1, f2;
        if (ct_dtype_is_complex(src->dtype)) {
            formatter_init(&f1, &v, PART_RE);
            formatter_init(&f2, &v, PART_IM);
            put_tensor(&v, 0, 0, indent, &f1, &f2, &b);
        } else {
            formatter_init(&f1, &v, PART_REAL_DTYPE);
            put_tensor(&v, 0, 0, indent, &f1, NULL, &b);
        }
        ct_release(cpu);
    }

    const char *fn = ct_grad_fn_name(t);
    if (fn) add_suffix(&sx, "grad_fn=<%s>", fn);
    else if (ct_requires_grad(t)) add_suffix(&sx, "requires_grad=True");

    put_suffixes(&b, &sx, indent);
    if (b.oom) {
        free(b.s);
        return ct__err(CT_ERR_OOM, "to_string: out of memory");
    }
    return b.s;
}

CT_API int ct_print(const ct_tensor *t) {
    CT_CHECK_ARG_S("print", t);
    char *s = ct_to_string(t);
    if (!s) return ct_last_status();
    int rc = puts(s) < 0 ? ct__errs(CT_ERR_RUNTIME, "print: cannot write to stdout") : 0;
    free(s);
    return rc;
}
