/* bench_ctorch — the ctorch half of the benchmark suite (bench/run.py drives it).
 *
 * Usage:
 *   bench_ctorch [options] CASE [key=value ...]    one case
 *   bench_ctorch [options] --json FILE             a JSON list of flat objects, each
 *                                                  {"case": CASE, "name": ..., key: value, ...}
 *                                                  (FILE "-" reads standard input)
 *   bench_ctorch --first-result                    computes ones(1) + 1 and prints it (run.py
 *                                                  times this whole process: start to result)
 *   bench_ctorch --version
 * Options:
 *   --threads N    ct_set_num_threads(N) (default: the OpenMP default, all cores)
 *   --warmup W     calls before timing (default 3)
 *   --repeat R     timed repeats (default 15)
 *   --target S     each repeat runs the case `number` times, number chosen so that a
 *                  repeat takes at least S seconds (default 0.02)
 *   --rss          also measure the process's peak resident memory over the case
 *                  (resets VmHWM through /proc/self/clear_refs; run one case per process)
 *
 * Output: one JSON object per line and case:
 *   {"name", "case", "status": "ok", "median_s", "min_s", "max_s", "q1_s", "q3_s",
 *    "samples_s" (each repeat's seconds per call, sorted), "repeats", "number", "mem_peak_bytes" (ct_memory_peak over the timed calls, beyond
 *    what was allocated before them), [for matmul: "openblas_s" and "onednn_s" (when
 *    built with oneDNN), the same product through each library's sgemm directly, their
 *    repeats taking turns with ctorch's, and "blas_s", the faster of the two],
 *    ["rss_peak_delta_bytes", "rss_hwm_bytes" with --rss]}
 *   or "status": "unavailable" with "reason" (ops ctorch does not have yet), or
 *   "status": "error" with "error" (ct_last_error()).
 * Timings are seconds per call. The timing policy is the same as run.py's PyTorch side.
 */
#define _GNU_SOURCE
#include <cblas.h>
#ifdef CT_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif
#include <ctype.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ctorch/activation.h>
#include <ctorch/autograd.h>
#include <ctorch/core.h>
#include <ctorch/index.h>
#include <ctorch/linalg.h>
#include <ctorch/module.h>
#include <ctorch/nn.h>
#include <ctorch/optim.h>
#include <ctorch/math.h>
#include <ctorch/random.h>
#include <ctorch/reduce.h>
#include <ctorch/tensor.h>
#include <ctorch/rnn.h>
#include <ctorch/transformer.h>

#include "../examples/demo_common.h" /* demo_cnn(): the demo's model */
#include "../examples/resnet18.h"

/* ------------------------------------------------------------------ ops, resolved at run time
 * Ops are looked up in the loaded library by name (with the types their headers
 * declare), so this program builds and runs while some ops are still missing from
 * libctorch: a case whose ops are absent is reported as unavailable, naming them. */

#define BENCH_OPS(X)                                                                             \
    X(ct_add) X(ct_sub) X(ct_mul) X(ct_neg) X(ct_exp) X(ct_tanh) X(ct_sigmoid) X(ct_rsqrt)       \
    X(ct_add_scalar) X(ct_gelu) X(ct_relu) X(ct_softmax) X(ct_log_softmax) X(ct_sum)             \
    X(ct_sum_dim) X(ct_mean) X(ct_mean_dim) X(ct_max_dim) X(ct_var) X(ct_matmul) X(ct_gather)    \
    X(ct_add_alpha_) X(ct_mul_scalar) X(ct_nn_layer_norm)
#define BENCH_DECL(n) static __typeof__(&n) p_##n;
BENCH_OPS(BENCH_DECL)
#define OP(n) p_##n

static void resolve_ops(void) {
#define BENCH_RESOLVE(n) p_##n = (__typeof__(p_##n))dlsym(RTLD_DEFAULT, #n);
    BENCH_OPS(BENCH_RESOLVE)
}

/* ------------------------------------------------------------------ case specs */

#define MAX_KV 32
typedef struct {
    int n;
    char key[MAX_KV][48];
    char val[MAX_KV][160];
} spec;

static const char *spec_str(const spec *s, const char *key, const char *dflt) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->key[i], key) == 0) return s->val[i];
    return dflt;
}
static int64_t spec_int(const spec *s, const char *key, int64_t dflt) {
    const char *v = spec_str(s, key, NULL);
    if (!v) return dflt;
    if (strcmp(v, "true") == 0) return 1;
    if (strcmp(v, "false") == 0) return 0;
    return (int64_t)strtod(v, NULL);
}
static double spec_num(const spec *s, const char *key, double dflt) {
    const char *v = spec_str(s, key, NULL);
    return v ? strtod(v, NULL) : dflt;
}
static int spec_set(spec *s, const char *key, size_t klen, const char *val, size_t vlen) {
    if (s->n >= MAX_KV || klen >= sizeof s->key[0] || vlen >= sizeof s->val[0]) return -1;
    memcpy(s->key[s->n], key, klen);
    s->key[s->n][klen] = 0;
    memcpy(s->val[s->n], val, vlen);
    s->val[s->n][vlen] = 0;
    s->n++;
    return 0;
}

/* A small reader for what run.py writes: [ {"k": "string" | number | true | false}, ... ]
 * (no nesting, no escapes beyond \" and \\). Returns the number of specs, -1 on bad input. */
static const char *skip_ws(const char *p) {
    while (*p && isspace((unsigned char)*p)) p++;
    return p;
}
static const char *read_json_string(const char *p, char *out, size_t cap, size_t *len) {
    if (*p != '"') return NULL;
    p++;
    size_t n = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\' && *p) c = *p++;
        if (n + 1 >= cap) return NULL;
        out[n++] = c;
    }
    if (*p != '"') return NULL;
    out[n] = 0;
    *len = n;
    return p + 1;
}
static int parse_specs(const char *text, spec **out) {
    int cap = 16, n = 0;
    spec *v = calloc((size_t)cap, sizeof *v);
    const char *p = skip_ws(text);
    if (!v || *p != '[') goto bad;
    p = skip_ws(p + 1);
    while (*p == '{') {
        if (n == cap) {
            spec *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) goto bad;
            v = nv;
        }
        spec *s = &v[n++];
        memset(s, 0, sizeof *s);
        p = skip_ws(p + 1);
        while (*p == '"') {
            char key[48], val[160];
            size_t klen, vlen;
            p = read_json_string(p, key, sizeof key, &klen);
            if (!p) goto bad;
            p = skip_ws(p);
            if (*p != ':') goto bad;
            p = skip_ws(p + 1);
            if (*p == '"') {
                p = read_json_string(p, val, sizeof val, &vlen);
                if (!p) goto bad;
            } else {
                vlen = 0;
                while (*p && *p != ',' && *p != '}' && !isspace((unsigned char)*p) && vlen + 1 < sizeof val)
                    val[vlen++] = *p++;
                val[vlen] = 0;
            }
            if (spec_set(s, key, klen, val, vlen)) goto bad;
            p = skip_ws(p);
            if (*p == ',') p = skip_ws(p + 1);
        }
        if (*p != '}') goto bad;
        p = skip_ws(p + 1);
        if (*p == ',') p = skip_ws(p + 1);
    }
    if (*p != ']') goto bad;
    *out = v;
    return n;
bad:
    free(v);
    return -1;
}

/* ------------------------------------------------------------------ output */

static void json_escape(const char *s, char *out, size_t cap) {
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = 0;
}

static void print_head(const spec *s) {
    char name[400], kind[200];
    json_escape(spec_str(s, "name", spec_str(s, "case", "?")), name, sizeof name);
    json_escape(spec_str(s, "case", "?"), kind, sizeof kind);
    printf("{\"name\": \"%s\", \"case\": \"%s\"", name, kind);
}
static void print_unavailable(const spec *s, const char *reason) {
    char r[600];
    json_escape(reason, r, sizeof r);
    print_head(s);
    printf(", \"status\": \"unavailable\", \"reason\": \"%s\"}\n", r);
    fflush(stdout);
}
static void print_error(const spec *s, const char *what) {
    char e[1200], buf[1100];
    snprintf(buf, sizeof buf, "%s%s%s", what, *ct_last_error() ? ": " : "", ct_last_error());
    json_escape(buf, e, sizeof e);
    print_head(s);
    printf(", \"status\": \"error\", \"error\": \"%s\"}\n", e);
    fflush(stdout);
    ct_clear_error();
}

/* ------------------------------------------------------------------ timing */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef int (*step_fn)(void *ctx); /* one call of the case; 0 or negative on failure */

typedef struct {
    int warmup, repeat;
    double target;
    int64_t max_number;
} policy;

typedef struct {
    double median, min, max, q1, q3;
    int64_t number;
    int repeats;
    double *samples; /* the repeats' seconds per call, in the order they ran (owned) */
} timing;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
/* Linear interpolation between closest ranks (numpy's default percentile). */
static double percentile(const double *sorted, int n, double q) {
    double pos = q * (n - 1);
    int lo = (int)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

static int run_number(step_fn fn, void *ctx, int64_t number, double *elapsed) {
    double t0 = now();
    for (int64_t i = 0; i < number; i++)
        if (fn(ctx) < 0) return -1;
    *elapsed = now() - t0;
    return 0;
}

/* warm-up calls; then `number` doubled (or scaled up) until one repeat lasts
 * >= target. */
static int calibrate(step_fn fn, void *ctx, const policy *pol, int64_t *number_out) {
    double t;
    for (int i = 0; i < pol->warmup; i++)
        if (fn(ctx) < 0) return -1;
    int64_t number = 1;
    for (;;) {
        if (run_number(fn, ctx, number, &t)) return -1;
        if (t >= pol->target || number >= pol->max_number) break;
        int64_t next = t > 0 ? (int64_t)ceil((double)number * pol->target / t * 1.05) : number * 10;
        if (next < number * 2) next = number * 2;
        if (next > pol->max_number) next = pol->max_number;
        number = next;
    }
    *number_out = number;
    return 0;
}

/* The median, quartiles and extremes of the repeats' seconds per call v into *out,
 * which takes v over with the repeats in the order they ran; -1 when out of memory. */
static int summarize(double *v, int repeat, int64_t number, timing *out) {
    double *sorted = malloc(sizeof(double) * (size_t)repeat);
    if (!sorted) return -1;
    memcpy(sorted, v, sizeof(double) * (size_t)repeat);
    qsort(sorted, (size_t)repeat, sizeof *sorted, cmp_double);
    out->median = percentile(sorted, repeat, 0.5);
    out->q1 = percentile(sorted, repeat, 0.25);
    out->q3 = percentile(sorted, repeat, 0.75);
    out->min = sorted[0];
    out->max = sorted[repeat - 1];
    out->number = number;
    out->repeats = repeat;
    out->samples = v;
    free(sorted);
    return 0;
}

/* Times nf functions with `repeat` timed repeats of `number` calls each (a number per
 * function); the repeats take turns (f0, f1, f2, f0, f1, ...) so that a drift in the
 * machine's speed (a neighbour on the VM's cores, the clock) lands on all alike: the
 * matmul cases report ctorch against the GEMM libraries timed this way. */
static int time_cases(int nf, const step_fn *fns, void *ctx, const policy *pol, timing *outs) {
    int64_t num[4];
    double *v[4] = {NULL};
    for (int f = 0; f < nf; f++)
        if (calibrate(fns[f], ctx, pol, &num[f]) || !(v[f] = malloc(sizeof(double) * (size_t)pol->repeat))) goto fail;
    for (int r = 0; r < pol->repeat; r++)
        for (int k = 0; k < nf; k++) {
            double t;
            if (run_number(fns[k], ctx, num[k], &t)) goto fail;
            v[k][r] = t / (double)num[k];
        }
    for (int k = 0; k < nf; k++)
        if (summarize(v[k], pol->repeat, num[k], &outs[k])) goto fail;
    return 0;
fail:
    for (int k = 0; k < nf; k++) free(v[k]); /* NULL past the last allocated */
    return -1;
}
/* ---- resident memory (Linux): VmHWM can be reset by writing 5 to clear_refs ---- */
static int64_t proc_status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int64_t kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtoll(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}
static int reset_hwm(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* ------------------------------------------------------------------ helpers */

static int parse_dtype(const char *s, ct_dtype *dt) {
    for (int d = 0; d < CT_NUM_DTYPES; d++)
        if (strcmp(s, ct_dtype_name((ct_dtype)d)) == 0) {
            *dt = (ct_dtype)d;
            return 0;
        }
    return -1;
}

/* randn of the given shape in float32, converted to dtype; owned by the caller. */
static ct_tensor *randn_dt(int ndim, const int64_t *sizes, ct_dtype dt) {
    ct_tensor *f = ct_randn(ndim, sizes, CT_FLOAT32, NULL);
    if (!f || dt == CT_FLOAT32) return f;
    ct_tensor *r = ct_to_dtype(f, dt);
    ct_release(f);
    return r;
}

/* Every case keeps its tensors here; released by ctx_free. */
#define MAX_T 16
typedef struct {
    ct_tensor *t[MAX_T];
    int nt;
    int op;       /* case-specific selector */
    int grad;     /* record autograd */
    int64_t dims[1];
    int nred;     /* reduce: dims reduced (1: dims[0]; 0: all) */
    double lr;
    const char *note; /* printed with the result: how the case deviates from PyTorch's */
    /* matmul through BLAS directly */
    float *a, *b, *c;
    int64_t bm, bk, bn, bb;
    /* nn cases */
    ct_module *m;
    ct_optimizer *opt;
    ct_dict *params;
    ct_conv_opts co;
    int64_t k2[2];
    ct_pool_opts po;
} ctx;

static ct_tensor *hold(ctx *c, ct_tensor *t) {
    if (t && c->nt < MAX_T) c->t[c->nt++] = t;
    return t;
}
static void ctx_free(ctx *c) {
    ct_optim_free(c->opt);
    ct_dict_free(c->params);
    ct_module_free(c->m);
    for (int i = 0; i < c->nt; i++) ct_release(c->t[i]);
    free(c->a);
    free(c->b);
    free(c->c);
    memset(c, 0, sizeof *c);
}
static int release_ok(ct_tensor *r) {
    if (!r) return -1;
    ct_release(r);
    return 0;
}

/* ------------------------------------------------------------------ cases */

/* add: a + b of n elements; grad=1 makes both inputs require grad (the graph is
 * recorded and freed with the result). */
static int step_add(void *p) {
    ctx *c = p;
    return release_ok(OP(ct_add)(c->t[0], c->t[1]));
}

/* chain: 20 small ops (5 x [mul, add, tanh, sub]); grad=1 adds sum + backward. */
static int step_chain(void *p) {
    ctx *c = p;
    if (ct_scope_begin()) return -1;
    ct_tensor *y = c->t[0];
    for (int i = 0; i < 5; i++) {
        y = OP(ct_mul)(y, c->t[1]);
        y = OP(ct_add)(y, c->t[2]);
        y = OP(ct_tanh)(y);
        y = OP(ct_sub)(y, c->t[3]);
    }
    int rc = y ? 0 : -1;
    if (!rc && c->grad) {
        rc = ct_backward(OP(ct_sum)(y), NULL, false, false);
        if (!rc) rc = ct_set_grad(c->t[0], NULL);
    }
    ct_scope_end();
    return rc;
}

enum { U_EXP, U_TANH, U_SIGMOID, U_GELU, U_RELU, B_ADD, B_MUL };
static int step_elementwise(void *p) {
    ctx *c = p;
    switch (c->op) {
    case U_EXP: return release_ok(OP(ct_exp)(c->t[0]));
    case U_TANH: return release_ok(OP(ct_tanh)(c->t[0]));
    case U_SIGMOID: return release_ok(OP(ct_sigmoid)(c->t[0]));
    case U_GELU: return release_ok(OP(ct_gelu)(c->t[0], false));
    case U_RELU: return release_ok(OP(ct_relu)(c->t[0]));
    case B_ADD: return release_ok(OP(ct_add)(c->t[0], c->t[1]));
    case B_MUL: return release_ok(OP(ct_mul)(c->t[0], c->t[1]));
    }
    return -1;
}

enum { R_SUM, R_MEAN, R_MAX, R_VAR, R_SOFTMAX, R_LOG_SOFTMAX, R_LAYER_NORM };
static int step_reduce(void *p) {
    ctx *c = p;
    ct_tensor *x = c->t[0];
    switch (c->op) {
    case R_SUM: return release_ok(OP(ct_sum_dim)(x, c->nred, c->dims, false, CT_NUM_DTYPES));
    case R_MEAN: return release_ok(OP(ct_mean_dim)(x, c->nred, c->dims, false, CT_NUM_DTYPES));
    case R_MAX: { /* values and indices, like torch.max(x, dim=-1) */
        ct_tensor *idx = NULL;
        ct_tensor *v = OP(ct_max_dim)(x, -1, false, &idx);
        ct_release(idx);
        return release_ok(v);
    }
    case R_VAR: return release_ok(OP(ct_var)(x, c->nred, c->dims, 1.0, false));
    case R_SOFTMAX: return release_ok(OP(ct_softmax)(x, -1, CT_NUM_DTYPES));
    case R_LOG_SOFTMAX: return release_ok(OP(ct_log_softmax)(x, -1, CT_NUM_DTYPES));
    case R_LAYER_NORM: {
        int64_t cols = ct_size(x, -1);
        return release_ok(OP(ct_nn_layer_norm)(x, 1, &cols, c->t[1], c->t[2], 1e-5));
    }
    }
    return -1;
}

static int step_matmul(void *p) {
    ctx *c = p;
    return release_ok(OP(ct_matmul)(c->t[0], c->t[1]));
}
/* n floats for the direct sgemm call, aligned as ctorch's allocator aligns tensors
 * (64 bytes; 2 MiB from 2 MiB up): oneDNN's sgemm runs measurably faster or slower
 * with the alignment of its operands on some hosts (on an AVX2 EPYC, 512^3 with B
 * 64-byte aligned ran 1.3x slower than with B 16 bytes past it), so the reference
 * gets the alignment ctorch's tensors have and the ratio measures ctorch alone. */
static float *blas_buffer(size_t n) {
    size_t bytes = (sizeof(float) * n + 63) / 64 * 64, align = bytes >= ((size_t)2 << 20) ? (size_t)2 << 20 : 64;
    return aligned_alloc(align, (bytes + align - 1) / align * align);
}

/* The same product through the two GEMM libraries ctorch's kernel can call (oneDNN's
 * dnnl_sgemm when built with it, and OpenBLAS's cblas_sgemm) on private buffers (no
 * ctorch involved); the reference is the faster of the two for the shape. */
#ifdef CT_HAVE_DNNL
static int step_dnnl(void *p) {
    ctx *c = p;
    for (int64_t i = 0; i < c->bb; i++)
        dnnl_sgemm('N', 'N', c->bm, c->bn, c->bk, 1.0f, c->a + i * c->bm * c->bk, c->bk, c->b + i * c->bk * c->bn,
                   c->bn, 0.0f, c->c + i * c->bm * c->bn, c->bn);
    return 0;
}
#endif
static int step_openblas(void *p) {
    ctx *c = p;
    for (int64_t i = 0; i < c->bb; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->bm, (int)c->bn, (int)c->bk, 1.0f,
                    c->a + i * c->bm * c->bk, (int)c->bk, c->b + i * c->bk * c->bn, (int)c->bn, 0.0f,
                    c->c + i * c->bm * c->bn, (int)c->bn);
    return 0;
}

/* One training step of an MLP in-hidden-out with core ops: forward, backward, manual
 * SGD update (p -= lr * grad under no_grad), gradients cleared (set to None). */
static int step_mlp(void *p) {
    ctx *c = p;
    ct_tensor *x = c->t[0], *y = c->t[1], *w1 = c->t[2], *b1 = c->t[3], *w2 = c->t[4], *b2 = c->t[5];
    if (ct_scope_begin()) return -1;
    ct_tensor *h = OP(ct_relu)(OP(ct_add)(OP(ct_matmul)(x, w1), b1));
    ct_tensor *logits = OP(ct_add)(OP(ct_matmul)(h, w2), b2);
    ct_tensor *lp = OP(ct_log_softmax)(logits, 1, CT_NUM_DTYPES);
    ct_tensor *picked = OP(ct_gather)(lp, 1, y);
    ct_tensor *mean = OP(ct_mean) ? OP(ct_mean)(picked)
                                  : OP(ct_mul_scalar)(OP(ct_sum)(picked), 1.0 / (double)ct_numel(y));
    ct_tensor *loss = OP(ct_neg)(mean);
    int rc = loss ? ct_backward(loss, NULL, false, false) : -1;
    if (!rc) {
        bool prev = ct_set_grad_enabled(false);
        for (int i = 2; i < 6 && !rc; i++) {
            ct_tensor *g = ct_grad(c->t[i]);
            rc = g ? OP(ct_add_alpha_)(c->t[i], g, -c->lr) : -1;
            if (!rc) rc = ct_set_grad(c->t[i], NULL);
        }
        ct_set_grad_enabled(prev);
    }
    ct_scope_end();
    return rc;
}

/* conv2d forward + backward (input, weight and bias gradients) with a fixed grad_output */
static int step_conv(void *p) {
    ctx *c = p;
    if (ct_scope_begin()) return -1;
    ct_tensor *y = ct_nn_conv2d(c->t[0], c->t[1], c->t[2], &c->co);
    int rc = y ? ct_backward(y, c->t[3], false, false) : -1;
    for (int i = 0; i < 3 && !rc; i++) rc = ct_set_grad(c->t[i], NULL);
    ct_scope_end();
    return rc;
}
static int step_pool(void *p) {
    ctx *c = p;
    return release_ok(ct_nn_max_pool2d(c->t[0], c->k2, &c->po, NULL));
}
static int step_avg_pool(void *p) {
    ctx *c = p;
    return release_ok(ct_nn_avg_pool2d(c->t[0], c->k2, &c->po));
}
static int step_bn(void *p) {
    ctx *c = p;
    return release_ok(ct_nn_batch_norm(c->t[0], c->t[1], c->t[2], c->t[3], c->t[4], true, 0.1, 1e-5));
}
/* row ops on x [rows, cols]: topk along rows, a transposed copy, the 2-norm of rows */
static int step_rows(void *p) {
    ctx *c = p;
    if (c->op == 0) {
        ct_tensor *idx = NULL;
        ct_tensor *v = ct_topk(c->t[0], c->dims[0], 1, true, true, &idx);
        ct_release(idx);
        return release_ok(v);
    }
    if (c->op == 1) {
        ct_tensor *t = ct_transpose(c->t[0], 0, 1);
        ct_tensor *r = t ? ct_contiguous(t) : NULL;
        ct_release(t);
        return release_ok(r);
    }
    switch (c->op) {
    case 2: return release_ok(ct_norm(c->t[0], 2.0, 1, (int64_t[]){1}, false));
    case 3: return release_ok(ct_cumsum(c->t[0], 0, CT_NUM_DTYPES));
    case 4: return release_ok(ct_cumsum(c->t[0], 1, CT_NUM_DTYPES));
    case 5: return release_ok(ct_tril(c->t[0], 0));
    case 6: return release_ok(ct_roll(c->t[0], 1, (int64_t[]){5}, 1, (int64_t[]){1}));
    case 7: return release_ok(ct_flip(c->t[0], 1, (int64_t[]){1}));
    default: { /* pixel_shuffle by 2 of the rows' elements as [N, 256, 32, 32] */
        int64_t n = ct_numel(c->t[0]) / (256 * 32 * 32);
        ct_tensor *v = ct_reshape(c->t[0], 4, (int64_t[]){n, 256, 32, 32});
        ct_tensor *r = v ? ct_nn_pixel_shuffle(v, 2) : NULL;
        ct_release(v);
        return release_ok(r);
    }
    }
}
static int step_group_norm(void *p) {
    ctx *c = p;
    return release_ok(ct_nn_group_norm(c->t[0], c->dims[0], c->t[1], c->t[2], 1e-5));
}
/* group_norm forward, then backward of a given output gradient into x, weight, bias */
static int step_group_norm_bwd(void *p) {
    ctx *c = p;
    if (ct_scope_begin()) return -1;
    ct_tensor *y = ct_nn_group_norm(c->t[0], c->dims[0], c->t[1], c->t[2], 1e-5);
    int rc = y ? ct_backward(y, c->t[3], false, false) : -1;
    for (int i = 0; i < 3 && !rc; i++) rc = ct_set_grad(c->t[i], NULL);
    ct_scope_end();
    return rc;
}
/* embedding lookup, then backward of a given output gradient into the weight */
static int step_embedding(void *p) {
    ctx *c = p;
    if (ct_scope_begin()) return -1;
    ct_tensor *y = ct_nn_embedding(c->t[1], c->t[0], CT_NO_PADDING_IDX);
    int rc = y ? ct_backward(y, c->t[2], false, false) : -1;
    if (!rc) rc = ct_set_grad(c->t[0], NULL);
    ct_scope_end();
    return rc;
}
/* one LSTM layer: forward, backward of a given output gradient, gradients cleared */
static int step_lstm(void *p) {
    ctx *c = p;
    if (ct_scope_begin()) return -1;
    ct_tensor *out[3];
    int rc = ct_module_forward_n(c->m, 1, (ct_tensor *[]){c->t[0]}, 3, out) < 0 ? -1 : 0;
    if (!rc) rc = ct_backward(out[0], c->t[1], false, false); /* outputs belong to the scope */
    if (!rc) rc = ct_module_zero_grad(c->m, true);
    if (!rc) rc = ct_set_grad(c->t[0], NULL);
    ct_scope_end();
    return rc;
}
/* causal scaled dot-product attention: forward and backward into q, k, v */
static int step_sdpa(void *p) {
    ctx *c = p;
    if (ct_scope_begin()) return -1;
    ct_tensor *y = ct_nn_scaled_dot_product_attention(c->t[0], c->t[1], c->t[2], NULL, 0.0, true, 0.0, false);
    int rc = y ? ct_backward(y, c->t[3], false, false) : -1;
    for (int i = 0; i < 3 && !rc; i++) rc = ct_set_grad(c->t[i], NULL);
    ct_scope_end();
    return rc;
}
/* Transformer encoder: forward, MSE to a target, backward, Adam step */
static int step_transformer(void *p) {
    ctx *c = p;
    if (ct_scope_begin()) return -1;
    ct_tensor *loss = ct_nn_mse_loss(ct_module_forward(c->m, c->t[0]), c->t[1], CT_REDUCTION_MEAN);
    int rc = loss ? 0 : -1;
    if (!rc) rc = ct_optim_zero_grad(c->opt, true);
    if (!rc) rc = ct_backward(loss, NULL, false, false);
    if (!rc) rc = ct_optim_step(c->opt);
    ct_scope_end();
    return rc;
}
/* inference: a forward pass in eval mode without autograd */
static int step_infer(void *p) {
    ctx *c = p;
    if (ct_scope_begin()) return -1;
    bool prev = ct_set_grad_enabled(false);
    int rc = ct_module_forward(c->m, c->t[0]) ? 0 : -1;
    ct_set_grad_enabled(prev);
    ct_scope_end();
    return rc;
}
/* the demo's CNN: forward, cross-entropy, backward, Adam step */
static int step_cnn(void *p) {
    ctx *c = p;
    if (ct_scope_begin()) return -1;
    ct_tensor *loss = ct_nn_cross_entropy(ct_module_forward(c->m, c->t[0]), c->t[1], NULL, -100, CT_REDUCTION_MEAN, 0.0);
    int rc = loss ? 0 : -1;
    if (!rc) rc = ct_optim_zero_grad(c->opt, true);
    if (!rc) rc = ct_backward(loss, NULL, false, false);
    if (!rc) rc = ct_optim_step(c->opt);
    ct_scope_end();
    return rc;
}

/* an optimizer step alone, the gradients fixed (set once) */
static int step_optim(void *p) {
    ctx *c = p;
    return ct_optim_step(c->opt);
}

/* nn.TransformerEncoder(layers x TransformerEncoderLayer(d_model, heads, ff, batch_first)) */
static ct_module *encoder_new(const spec *s) {
    ct_transformer_opts to = ct_transformer_default_opts();
    to.dim_feedforward = spec_int(s, "ff", 1024);
    to.batch_first = true;
    return ct_nn_transformer_encoder_new(
        ct_nn_transformer_encoder_layer_new(spec_int(s, "d_model", 256), spec_int(s, "heads", 4), &to),
        spec_int(s, "layers", 6), NULL);
}

/* Cases of the issue that need ops ctorch does not have yet: listed so that the
 * suite reports them as unavailable (and says so once the ops appear). */
static const struct {
    const char *kind;
    const char *syms[4];
} planned[] = {
    {"_none", {"ct_none"}},
};

static int lookup(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

/* Ops (space separated) that a case calls: 1 if all are in the library; else the case
 * is printed as unavailable, naming the missing ones, and 0 is returned. */
static int need(const spec *s, const char *names) {
    char missing[400] = "", buf[400];
    snprintf(buf, sizeof buf, "%s", names);
    for (char *save = NULL, *n = strtok_r(buf, " ", &save); n; n = strtok_r(NULL, " ", &save))
        if (!dlsym(RTLD_DEFAULT, n)) {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof missing - len, " %s", n);
        }
    if (!*missing) return 1;
    char reason[500];
    snprintf(reason, sizeof reason, "not available: ctorch lacks%s", missing);
    print_unavailable(s, reason);
    return 0;
}

static void run_spec(const spec *s, const policy *pol, int rss) {
    const char *kind = spec_str(s, "case", "");
    ctx c;
    memset(&c, 0, sizeof c);
    step_fn fn = NULL;
    ct_dtype dt = CT_FLOAT32;
    if (parse_dtype(spec_str(s, "dtype", "float32"), &dt)) {
        print_unavailable(s, "unknown dtype");
        return;
    }
    ct_manual_seed((uint64_t)spec_int(s, "seed", 0));
    int64_t rss0 = 0;
    if (rss && reset_hwm() == 0) rss0 = proc_status_kb("VmRSS");

    if (strcmp(kind, "add") == 0 || strcmp(kind, "chain") == 0) {
        int64_t n = spec_int(s, "n", 1);
        c.grad = (int)spec_int(s, "grad", 0);
        if (!need(s, kind[0] == 'a' ? "ct_add" : c.grad ? "ct_mul ct_add ct_tanh ct_sub ct_sum" : "ct_mul ct_add ct_tanh ct_sub"))
            return;
        for (int i = 0; i < 4; i++) hold(&c, randn_dt(1, (int64_t[]){n}, dt));
        if (c.grad)
            for (int i = 0; i < (kind[0] == 'a' ? 2 : 1); i++) ct_set_requires_grad(c.t[i], true);
        fn = kind[0] == 'a' ? step_add : step_chain;
        if (c.nt < 4) goto fail;
    } else if (strcmp(kind, "unary") == 0 || strcmp(kind, "binary") == 0) {
        static const char *const ops[] = {"exp", "tanh", "sigmoid", "gelu", "relu", "add", "mul"};
        c.op = lookup(spec_str(s, "op", ""), ops, 7);
        if (c.op < 0) {
            print_unavailable(s, "unknown elementwise op");
            return;
        }
        char opname[64];
        snprintf(opname, sizeof opname, "ct_%s", spec_str(s, "op", ""));
        if (!need(s, opname)) return;
        int64_t n = spec_int(s, "n", 1 << 20);
        hold(&c, randn_dt(1, (int64_t[]){n}, dt));
        hold(&c, randn_dt(1, (int64_t[]){n}, dt));
        if (c.nt < 2) goto fail;
        fn = step_elementwise;
    } else if (strcmp(kind, "reduce") == 0) {
        static const char *const ops[] = {"sum", "mean", "max", "var", "softmax", "log_softmax", "layer_norm"};
        c.op = lookup(spec_str(s, "op", ""), ops, 7);
        if (c.op < 0) {
            print_unavailable(s, "unknown reduction");
            return;
        }
        static const char *const needs[] = {"ct_sum_dim", "ct_mean_dim", "ct_max_dim", "ct_var", "ct_softmax",
                                            "ct_log_softmax",
                                            "ct_sum_dim ct_mul_scalar ct_sub ct_mul ct_rsqrt ct_add_scalar ct_add"};
        if (!need(s, needs[c.op])) return;
        int64_t rows = spec_int(s, "rows", 4096), cols = spec_int(s, "cols", 1024);
        c.dims[0] = -1;
        c.nred = spec_int(s, "all", 0) ? 0 : 1; /* all=1: over every dim (sum, mean, var) */
        hold(&c, randn_dt(2, (int64_t[]){rows, cols}, dt));
        hold(&c, randn_dt(1, (int64_t[]){cols}, dt)); /* layer_norm weight and bias */
        hold(&c, randn_dt(1, (int64_t[]){cols}, dt));
        if (c.nt < 3) goto fail;
        fn = step_reduce;
    } else if (strcmp(kind, "matmul") == 0) {
        if (!need(s, "ct_matmul")) return;
        int64_t b = spec_int(s, "b", 0), m = spec_int(s, "m", 64), k = spec_int(s, "k", 64), n = spec_int(s, "n", 64);
        if (b > 0) {
            hold(&c, randn_dt(3, (int64_t[]){b, m, k}, dt));
            hold(&c, randn_dt(3, (int64_t[]){b, k, n}, dt));
        } else {
            hold(&c, randn_dt(2, (int64_t[]){m, k}, dt));
            hold(&c, randn_dt(2, (int64_t[]){k, n}, dt));
        }
        if (c.nt < 2) goto fail;
        fn = step_matmul;
        if (dt == CT_FLOAT32) {
            c.bb = b > 0 ? b : 1, c.bm = m, c.bk = k, c.bn = n;
            c.a = blas_buffer((size_t)(c.bb * m * k));
            c.b = blas_buffer((size_t)(c.bb * k * n));
            c.c = blas_buffer((size_t)(c.bb * m * n));
            if (!c.a || !c.b || !c.c) goto fail;
            if (ct_copy_to_buffer(c.t[0], c.a, sizeof(float) * (size_t)(c.bb * m * k), CT_FLOAT32) ||
                ct_copy_to_buffer(c.t[1], c.b, sizeof(float) * (size_t)(c.bb * k * n), CT_FLOAT32))
                goto fail;
        }
    } else if (strcmp(kind, "conv2d") == 0) {
        int64_t n = spec_int(s, "n", 1), ci = spec_int(s, "c", 64), h = spec_int(s, "h", 56), o = spec_int(s, "o", 64),
                k = spec_int(s, "k", 3), st = spec_int(s, "stride", 1), pd = spec_int(s, "pad", 1);
        int64_t ho = (h + 2 * pd - k) / st + 1;
        c.co = (ct_conv_opts){.stride = {st, st}, .padding = {pd, pd}};
        hold(&c, ct_randn(CT_SHAPE(n, ci, h, h), CT_FLOAT32, NULL));
        hold(&c, ct_randn(CT_SHAPE(o, ci, k, k), CT_FLOAT32, NULL));
        hold(&c, ct_randn(CT_SHAPE(o), CT_FLOAT32, NULL));
        hold(&c, ct_randn(CT_SHAPE(n, o, ho, ho), CT_FLOAT32, NULL));
        if (c.nt < 4) goto fail;
        for (int i = 0; i < 3; i++) ct_set_requires_grad(c.t[i], true);
        fn = step_conv;
    } else if (strcmp(kind, "max_pool2d") == 0) {
        hold(&c, ct_randn(CT_SHAPE(spec_int(s, "n", 32), spec_int(s, "c", 64), spec_int(s, "h", 112), spec_int(s, "h", 112)),
                          CT_FLOAT32, NULL));
        if (c.nt < 1) goto fail;
        c.k2[0] = c.k2[1] = 3;
        c.po = (ct_pool_opts){.stride = {2, 2}, .padding = {1, 1}};
        fn = step_pool;
    } else if (strcmp(kind, "avg_pool2d") == 0) { /* k x k windows, stride s, padding p */
        hold(&c, ct_randn(CT_SHAPE(spec_int(s, "n", 16), spec_int(s, "c", 64), spec_int(s, "h", 56), spec_int(s, "h", 56)),
                          CT_FLOAT32, NULL));
        if (c.nt < 1) goto fail;
        c.k2[0] = c.k2[1] = spec_int(s, "k", 7);
        int64_t st = spec_int(s, "s", c.k2[0]), pd = spec_int(s, "p", 0);
        c.po = (ct_pool_opts){.stride = {st, st}, .padding = {pd, pd}};
        fn = step_avg_pool;
    } else if (strcmp(kind, "batch_norm2d") == 0) {
        int64_t C = spec_int(s, "c", 64), h = spec_int(s, "h", 56);
        hold(&c, ct_randn(CT_SHAPE(spec_int(s, "n", 32), C, h, h), CT_FLOAT32, NULL));
        hold(&c, ct_zeros(CT_SHAPE(C), CT_FLOAT32));
        hold(&c, ct_ones(CT_SHAPE(C), CT_FLOAT32));
        hold(&c, ct_ones(CT_SHAPE(C), CT_FLOAT32));
        hold(&c, ct_zeros(CT_SHAPE(C), CT_FLOAT32));
        if (c.nt < 5) goto fail;
        fn = step_bn;
    } else if (strcmp(kind, "resnet18_train") == 0 || strcmp(kind, "resnet18_infer") == 0) {
        bool train = kind[9] == 't';
        int64_t bs = spec_int(s, "batch", train ? 32 : 1), hw = spec_int(s, "hw", train ? 32 : 224);
        c.m = resnet18_new(train ? 10 : 1000);
        hold(&c, ct_randn(CT_SHAPE(bs, 3, hw, hw), CT_FLOAT32, NULL));
        hold(&c, ct_randint(0, train ? 10 : 1000, CT_SHAPE(bs), CT_INT64, NULL));
        if (!c.m || c.nt < 2) goto fail;
        if (train) {
            c.params = ct_module_named_parameters(c.m);
            c.opt = ct_optim_sgd_new(c.params, 0.1, 0.9, 0.0, 5e-4, false, false);
            if (!c.opt) goto fail;
            fn = step_cnn;
        } else {
            ct_module_eval(c.m);
            fn = step_infer;
        }
    } else if (strcmp(kind, "lstm") == 0) {
        int64_t T = spec_int(s, "seq", 64), B = spec_int(s, "batch", 32), In = spec_int(s, "input", 256),
                H = spec_int(s, "hidden", 256);
        c.m = ct_nn_lstm_new(In, H, 1, true, false, 0.0, false, 0);
        hold(&c, ct_randn(CT_SHAPE(T, B, In), CT_FLOAT32, NULL));
        hold(&c, ct_randn(CT_SHAPE(T, B, H), CT_FLOAT32, NULL));
        if (!c.m || c.nt < 2) goto fail;
        ct_set_requires_grad(c.t[0], true);
        fn = step_lstm;
    } else if (strcmp(kind, "sdpa") == 0) {
        int64_t B = spec_int(s, "batch", 16), Hh = spec_int(s, "heads", 4), L = spec_int(s, "seq", 128),
                E = spec_int(s, "dim", 64);
        for (int i = 0; i < 4; i++) hold(&c, ct_randn(CT_SHAPE(B, Hh, L, E), CT_FLOAT32, NULL));
        if (c.nt < 4) goto fail;
        for (int i = 0; i < 3; i++) ct_set_requires_grad(c.t[i], true);
        fn = step_sdpa;
    } else if (strcmp(kind, "transformer_train") == 0) {
        int64_t B = spec_int(s, "batch", 16), T = spec_int(s, "seq", 128), D = spec_int(s, "d_model", 256);
        c.m = encoder_new(s);
        hold(&c, ct_randn(CT_SHAPE(B, T, D), CT_FLOAT32, NULL));
        hold(&c, ct_randn(CT_SHAPE(B, T, D), CT_FLOAT32, NULL));
        if (!c.m || c.nt < 2) goto fail;
        c.params = ct_module_named_parameters(c.m);
        c.opt = ct_optim_adam_new(c.params, 1e-4, 0.9, 0.999, 1e-8, 0.0, false, false);
        if (!c.opt) goto fail;
        fn = step_transformer;
    } else if (strcmp(kind, "embedding") == 0) {
        if (!need(s, "ct_nn_embedding")) return;
        int64_t V = spec_int(s, "vocab", 30000), D = spec_int(s, "dim", 256), B = spec_int(s, "batch", 64),
                T = spec_int(s, "seq", 128);
        hold(&c, ct_randn(CT_SHAPE(V, D), CT_FLOAT32, NULL));
        hold(&c, ct_randint(0, V, CT_SHAPE(B, T), CT_INT64, NULL));
        hold(&c, ct_randn(CT_SHAPE(B, T, D), CT_FLOAT32, NULL));
        if (c.nt < 3) goto fail;
        ct_set_requires_grad(c.t[0], true);
        fn = step_embedding;
    } else if (strcmp(kind, "cnn_train") == 0) {
        int64_t bs = spec_int(s, "batch", 64);
        c.m = demo_cnn();
        c.params = ct_module_named_parameters(c.m);
        c.opt = ct_optim_adam_new(c.params, 1e-3, 0.9, 0.999, 1e-8, 0.0, false, false);
        hold(&c, ct_randn(CT_SHAPE(bs, 1, 28, 28), CT_FLOAT32, NULL));
        hold(&c, ct_randint(0, 10, CT_SHAPE(bs), CT_INT64, NULL));
        if (!c.m || !c.opt || c.nt < 2) goto fail;
        fn = step_cnn;
    } else if (strcmp(kind, "rows") == 0) {
        static const char *const ops[] = {"topk", "transpose_copy", "norm2", "cumsum0", "cumsum1", "tril", "roll",
                                          "flip", "pixel_shuffle"};
        c.op = lookup(spec_str(s, "op", ""), ops, 9);
        if (c.op < 0) {
            print_unavailable(s, "unknown row op");
            return;
        }
        c.dims[0] = spec_int(s, "k", 10);
        hold(&c, ct_randn(CT_SHAPE(spec_int(s, "rows", 4096), spec_int(s, "cols", 1024)), CT_FLOAT32, NULL));
        if (c.nt < 1) goto fail;
        fn = step_rows;
    } else if (strcmp(kind, "group_norm") == 0) {
        int64_t C = spec_int(s, "c", 64), H = spec_int(s, "h", 56);
        c.dims[0] = spec_int(s, "groups", 32);
        hold(&c, ct_randn(CT_SHAPE(spec_int(s, "n", 32), C, H, H), CT_FLOAT32, NULL));
        hold(&c, ct_randn(CT_SHAPE(C), CT_FLOAT32, NULL));
        hold(&c, ct_randn(CT_SHAPE(C), CT_FLOAT32, NULL));
        fn = step_group_norm;
        if (spec_int(s, "backward", 0)) { /* x, w, b require grad; t[3] the output gradient */
            hold(&c, ct_randn_like(c.nt > 0 ? c.t[0] : NULL, NULL));
            for (int i = 0; i < 3 && c.nt == 4; i++) ct_set_requires_grad(c.t[i], true);
            fn = step_group_norm_bwd;
        }
        if (c.nt < (fn == step_group_norm ? 3 : 4)) goto fail;
    } else if (strcmp(kind, "optim_step") == 0) {
        /* Adam (lr 1e-3) over a model's parameters with fixed random gradients */
        bool cnn = strcmp(spec_str(s, "model", "cnn"), "cnn") == 0;
        c.m = cnn ? demo_cnn() : encoder_new(s);
        c.params = c.m ? ct_module_named_parameters(c.m) : NULL;
        c.opt = c.params ? ct_optim_adam_new(c.params, 1e-3, 0.9, 0.999, 1e-8, 0.0, false, false) : NULL;
        if (!c.opt) goto fail;
        for (int64_t i = 0; i < ct_dict_size(c.params); i++) {
            ct_tensor *p = ct_dict_value(c.params, i);
            ct_tensor *g = p ? ct_randn_like(p, NULL) : NULL;
            int rc = g ? ct_set_grad(p, g) : -1;
            ct_release(g);
            ct_release(p);
            if (rc) goto fail;
        }
        fn = step_optim;
    } else if (strcmp(kind, "mlp_train") == 0) {
        int64_t bs = spec_int(s, "batch", 64), in = spec_int(s, "in", 784), hid = spec_int(s, "hidden", 256),
                out = spec_int(s, "out", 10);
        c.lr = spec_num(s, "lr", 0.01);
        if (!need(s, OP(ct_mean) ? "ct_matmul ct_add ct_relu ct_log_softmax ct_gather ct_mean ct_neg ct_add_alpha_"
                                 : "ct_matmul ct_add ct_relu ct_log_softmax ct_gather ct_sum ct_mul_scalar "
                                   "ct_neg ct_add_alpha_"))
            return;
        if (!OP(ct_mean)) c.note = "ctorch lacks ct_mean: the loss's mean is sum * (1/n)";
        hold(&c, ct_randn(2, (int64_t[]){bs, in}, CT_FLOAT32, NULL));
        hold(&c, ct_randint(0, out, 2, (int64_t[]){bs, 1}, CT_INT64, NULL));
        /* the same init scale as nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
        double s1 = 1.0 / sqrt((double)in), s2 = 1.0 / sqrt((double)hid);
        /* each temporary released as soon as the next one exists, as Python frees
         * torch.rand(...) * (2 * s) - s: the peak resident memory is compared */
        const int64_t shapes[4][2] = {{in, hid}, {hid, 0}, {hid, out}, {out, 0}};
        for (int i = 0; i < 4; i++) {
            double sc = i < 2 ? s1 : s2;
            ct_tensor *u = ct_rand(shapes[i][1] ? 2 : 1, shapes[i], CT_FLOAT32, NULL);
            ct_tensor *w = ct_mul_scalar(u, 2 * sc);
            ct_release(u);
            ct_tensor *w2 = ct_sub_scalar(w, sc);
            ct_release(w);
            if (hold(&c, w2)) ct_set_requires_grad(w2, true);
        }
        if (c.nt < 6) goto fail;
        fn = step_mlp;
    } else {
        for (size_t i = 0; i < sizeof planned / sizeof planned[0]; i++)
            if (strcmp(kind, planned[i].kind) == 0) {
                char reason[400] = "not available: ctorch lacks";
                char have[300] = "";
                int missing = 0;
                for (int j = 0; j < 4 && planned[i].syms[j]; j++) {
                    int present = dlsym(RTLD_DEFAULT, planned[i].syms[j]) != NULL;
                    char *dst = present ? have : reason;
                    size_t len = strlen(dst), cap = present ? sizeof have : sizeof reason;
                    snprintf(dst + len, cap - len, " %s", planned[i].syms[j]);
                    missing += !present;
                }
                if (!missing) snprintf(reason, sizeof reason, "not available: bench_ctorch has no %s case yet", kind);
                if (*have) {
                    size_t len = strlen(reason);
                    snprintf(reason + len, sizeof reason - len, " (present:%s)", have);
                }
                print_unavailable(s, reason);
                return;
            }
        print_unavailable(s, "not available: unknown case kind");
        return;
    }

    int64_t base = ct_memory_allocated();
    ct_memory_reset_peak();
    /* matmul: ctorch, then OpenBLAS, then oneDNN when built with it */
    step_fn fns[3] = {fn, step_openblas, NULL};
    int nf = 1;
    if (c.a) {
        nf = 2;
#ifdef CT_HAVE_DNNL
        fns[nf++] = step_dnnl;
#endif
    }
    timing tt[3] = {{0}}, t;
    if (time_cases(nf, fns, &c, pol, tt)) goto fail;
    t = tt[0];
    int64_t peak = ct_memory_peak() - base;
    print_head(s);
    printf(", \"status\": \"ok\", \"median_s\": %.6e, \"min_s\": %.6e, \"max_s\": %.6e, \"q1_s\": %.6e, "
           "\"q3_s\": %.6e, \"repeats\": %d, \"number\": %lld, \"mem_peak_bytes\": %lld",
           t.median, t.min, t.max, t.q1, t.q3, t.repeats, (long long)t.number, (long long)peak);
    printf(", \"samples_s\": [");
    for (int i = 0; i < t.repeats; i++) printf("%s%.6e", i ? ", " : "", t.samples[i]);
    printf("]");
    free(t.samples);
    if (c.note) {
        char note[300];
        json_escape(c.note, note, sizeof note);
        printf(", \"note\": \"%s\"", note);
    }
    if (c.a) {
        int best = 1;
        for (int k = 2; k < nf; k++) best = tt[k].median < tt[best].median ? k : best;
        printf(", \"blas_s\": %.6e, \"openblas_s\": %.6e", tt[best].median, tt[1].median);
        if (nf > 2) printf(", \"onednn_s\": %.6e", tt[2].median);
        /* the faster library's samples, repeat by repeat: each ran right after ctorch's
         * sample of the same index (time_cases), so run.py can pair them */
        printf(", \"blas_samples_s\": [");
        for (int i = 0; i < tt[best].repeats; i++) printf("%s%.6e", i ? ", " : "", tt[best].samples[i]);
        printf("]");
        for (int k = 1; k < nf; k++) free(tt[k].samples);
    }
    if (rss) {
        int64_t hwm = proc_status_kb("VmHWM");
        if (hwm >= 0) printf(", \"rss_hwm_bytes\": %lld", (long long)hwm * 1024);
        if (hwm >= 0 && rss0 > 0) printf(", \"rss_peak_delta_bytes\": %lld", (long long)(hwm - rss0) * 1024);
    }
    printf("}\n");
    fflush(stdout);
    ctx_free(&c);
    return;
fail:
    print_error(s, "case failed");
    ctx_free(&c);
}

/* ------------------------------------------------------------------ main */

static char *read_all(const char *path) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            } else {
                buf = nb;
            }
        }
    }
    if (buf) buf[n] = 0;
    if (f != stdin) fclose(f);
    return buf;
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_ctorch [--threads N] [--warmup W] [--repeat R] [--target SEC] [--rss]\n"
            "                    (CASE [key=value ...] | --json FILE)\n"
            "       bench_ctorch --first-result | --version\n"
            "cases: add chain unary binary reduce matmul conv2d max_pool2d avg_pool2d batch_norm2d embedding lstm sdpa\n"
            "       mlp_train cnn_train resnet18_train transformer_train resnet18_infer optim_step rows\n"
            "       group_norm\n"
            "       (see bench/README.md)\n");
}

int main(int argc, char **argv) {
    resolve_ops();
    policy pol = {3, 15, 0.02, 1000000};
    int rss = 0, i = 1;
    const char *json = NULL;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *o = argv[i];
        int has_arg = i + 1 < argc;
        if (strcmp(o, "--version") == 0) {
            printf("%s\n", ct_version());
            return 0;
        } else if (strcmp(o, "--first-result") == 0) {
            ct_tensor *one = ct_ones(CT_SHAPE(1), CT_FLOAT32);
            ct_tensor *r = ct_add_scalar(one, 1.0);
            if (!r) {
                fprintf(stderr, "bench_ctorch: %s\n", ct_last_error());
                return 1;
            }
            printf("%g\n", ct_item(r));
            ct_release(r);
            ct_release(one);
            return 0;
        } else if (strcmp(o, "--threads") == 0 && has_arg) {
            int n = atoi(argv[++i]);
            if (n > 0) ct_set_num_threads(n);
        } else if (strcmp(o, "--warmup") == 0 && has_arg) {
            pol.warmup = atoi(argv[++i]);
        } else if (strcmp(o, "--repeat") == 0 && has_arg) {
            pol.repeat = atoi(argv[++i]);
        } else if (strcmp(o, "--target") == 0 && has_arg) {
            pol.target = atof(argv[++i]);
        } else if (strcmp(o, "--json") == 0 && has_arg) {
            json = argv[++i];
        } else if (strcmp(o, "--rss") == 0) {
            rss = 1;
        } else {
            usage();
            return 2;
        }
    }
    if (pol.warmup < 0 || pol.repeat < 1 || !(pol.target >= 0)) {
        usage();
        return 2;
    }
    if (json) {
        char *text = read_all(json);
        spec *specs = NULL;
        int n = text ? parse_specs(text, &specs) : -1;
        free(text);
        if (n < 0) {
            fprintf(stderr, "bench_ctorch: cannot read a JSON list of cases from %s\n", json);
            return 2;
        }
        for (int k = 0; k < n; k++) run_spec(&specs[k], &pol, rss);
        free(specs);
        return 0;
    }
    if (i >= argc) {
        usage();
        return 2;
    }
    spec s;
    memset(&s, 0, sizeof s);
    spec_set(&s, "case", 4, argv[i], strlen(argv[i]));
    for (i++; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || spec_set(&s, argv[i], (size_t)(eq - argv[i]), eq + 1, strlen(eq + 1))) {
            usage();
            return 2;
        }
    }
    run_spec(&s, &pol, rss);
    return 0;
}
