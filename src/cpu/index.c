/* CPU kernels: index family (gather, scatter and its reductions, index_select,
 * advanced indexing get/put, nonzero, consecutive-run detection).
 * Front ends (src/ops/index.c, src/ops/sort.c) check shapes and dtypes, allocate the
 * outputs and pass index tensors as int64; kernels bounds-check every index. */
#include <omp.h>

#include "cpu/loops.h"

void ct_cpu_register_sort(ct_kernel_fn *k);

/* First out-of-range index seen by a (possibly parallel) loop. */
typedef struct {
    atomic_int bad;
    int64_t bad_index, bad_dim, bad_size;
} ix_err;

static void ix_err_set(ix_err *e, int64_t index, int64_t dim, int64_t size) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&e->bad, &expected, 1)) {
        e->bad_index = index;
        e->bad_dim = dim;
        e->bad_size = size;
    }
}

static int ix_err_report(const ix_err *e, const char *op) {
    if (!atomic_load(&e->bad)) return 0;
    return ct__errs(CT_ERR_INDEX, "%s: index %lld is out of bounds for dimension %lld with size %lld", op,
                    (long long)e->bad_index, (long long)e->bad_dim, (long long)e->bad_size);
}

/* ---- gather: out[0] = in[0].gather(i[0], in[1]); all of rank >= 1 ---- */
typedef struct {
    int64_t sd, size, dim;
    size_t es;
    ix_err err;
} gather_ctx;

static void gather_loop(char **d, const int64_t *s, int64_t n, void *vctx) {
    gather_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        int64_t ix = *(const int64_t *)(d[2] + i * s[2]);
        if (CT_UNLIKELY(ix < 0 || ix >= c->size)) {
            ix_err_set(&c->err, ix, c->dim, c->size);
            continue;
        }
        memcpy(d[0] + i * s[0], d[1] + i * s[1] + ix * c->sd, c->es);
    }
}

static int k_gather(const ct_kernel_args *a) {
    ct_tensor *out = a->out[0];
    const ct_tensor *x = a->in[0], *idx = a->in[1];
    int dim = (int)a->i[0];
    int64_t st[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) st[d] = d == dim ? 0 : x->strides[d];
    ct_tensor *xr = ct__alias(x, idx->ndim, idx->sizes, st, x->offset);
    if (!xr) return ct_last_status();
    gather_ctx c = {.sd = x->strides[dim] * (int64_t)ct_dtype_size(x->dtype), .size = x->sizes[dim], .dim = dim,
                    .es = ct_dtype_size(x->dtype)};
    atomic_init(&c.err.bad, 0);
    ct_iter it;
    int rc = ct__iter_build(&it, 3, 1, (const ct_tensor *[]){out, xr, idx});
    if (!rc) ct__iter_run(&it, gather_loop, &c, 0);
    ct_release(xr);
    return rc ? rc : ix_err_report(&c.err, "gather");
}

/* ---- scatter family: out[0] (contiguous destination, already holding self) gets
 * in[1] (src, or the value d[0] when NULL) at in[0] along i[0].
 * i[1] mode: 0 assign, 1 sum, 2 prod, 3 mean, 4 amax, 5 amin; i[2] include_self.
 * Parallel over the non-indexed dims of index: two rows never write the same element. */
enum { SC_ASSIGN, SC_SUM, SC_PROD, SC_MEAN, SC_AMAX, SC_AMIN };

typedef struct {
    int nd; /* dims of index other than dim */
    int64_t osz[CT_MAX_DIMS], ost_self[CT_MAX_DIMS], ost_idx[CT_MAX_DIMS], ost_src[CT_MAX_DIMS];
    int64_t outer, len;          /* rows, index.size(dim) */
    int64_t sd_self, sd_idx, sd_src, size, dim;
    char *self, *src;
    const char *idx;
    double value;
    int mode;
    bool include_self;
    int64_t *cnt; /* per destination element (mean or !include_self) */
    ix_err err;
} scat_geom;

static inline void scat_offsets(const scat_geom *g, int64_t o, int64_t *os, int64_t *oi, int64_t *oc) {
    int64_t s = 0, i = 0, c = 0;
    for (int d = g->nd - 1; d >= 0; d--) {
        int64_t q = o % g->osz[d];
        o /= g->osz[d];
        s += q * g->ost_self[d];
        i += q * g->ost_idx[d];
        c += q * g->ost_src[d];
    }
    *os = s, *oi = i, *oc = c;
}

#define REAL_GT(a, b) ((a) > (b))
#define REAL_NAN(a) ((a) != (a))
#define NO_NAN(a) false
#define UINT_DIV(a, n) ((a) / (n))
#define MUL_PLAIN(a, b) ((a) * (b))
#define MUL_BOOL(a, b) ((a) && (b))
#define CPLX_GT(a, b) (creal(a) > creal(b))
#define FLT_DIV(a, n) ((a) / (n))
#define INT_DIV(a, n) ((a) / (n) - (((a) % (n) != 0) && (((a) < 0) != ((n) < 0))))
#define BOOL_DIV(a, n) (a)

#define SCAT_KERNEL(sfx, ST, CT, LD, STO, GT, ISNAN, DIVN, MUL)                                            \
    static void scat_##sfx(scat_geom *g) {                                                            \
        int64_t total = g->outer * g->len;                                                            \
        CT_PARALLEL_FOR_IF(total >= CT_GRAIN && g->outer > 1, for (int64_t o = 0; o < g->outer; o++), {   \
            int64_t os, oi, oc;                                                                       \
            scat_offsets(g, o, &os, &oi, &oc);                                                        \
            for (int64_t j = 0; j < g->len; j++) {                                                    \
                int64_t ix = *(const int64_t *)(g->idx + oi + j * g->sd_idx);                         \
                if (CT_UNLIKELY(ix < 0 || ix >= g->size)) {                                           \
                    ix_err_set(&g->err, ix, g->dim, g->size);                                         \
                    continue;                                                                         \
                }                                                                                     \
                ST *p = (ST *)(g->self + os + ix * g->sd_self);                                       \
                CT v = g->src ? LD(*(const ST *)(g->src + oc + j * g->sd_src)) : (CT)g->value;        \
                if (g->cnt) {                                                                         \
                    int64_t *c = g->cnt + (p - (ST *)g->self);                                        \
                    if (!g->include_self && *c == 0) {                                                \
                        *c = 1;                                                                       \
                        *p = STO(v);                                                                  \
                        continue;                                                                     \
                    }                                                                                 \
                    (*c)++;                                                                           \
                }                                                                                     \
                CT cur;                                                                               \
                switch (g->mode) {                                                                    \
                case SC_ASSIGN: *p = STO(v); break;                                                   \
                case SC_SUM:                                                                          \
                case SC_MEAN: cur = LD(*p); *p = STO((CT)(cur + v)); break;                           \
                case SC_PROD: cur = LD(*p); *p = STO((CT)MUL(cur, v)); break;                           \
                case SC_AMAX:                                                                         \
                    cur = LD(*p);                                                                     \
                    if (!ISNAN(cur) && (ISNAN(v) || GT(v, cur))) *p = STO(v);                         \
                    break;                                                                            \
                case SC_AMIN:                                                                         \
                    cur = LD(*p);                                                                     \
                    if (!ISNAN(cur) && (ISNAN(v) || GT(cur, v))) *p = STO(v);                         \
                    break;                                                                            \
                }                                                                                     \
            }                                                                                         \
        });                                                                                           \
    }                                                                                                 \
    static void scat_mean_##sfx(char *self, const int64_t *cnt, int64_t n, bool include_self) {       \
        for (int64_t i = 0; i < n; i++) {                                                             \
            int64_t c = cnt[i] + (include_self ? 1 : 0);                                              \
            if (cnt[i] == 0 || c <= 1) continue;                                                      \
            ST *p = (ST *)self + i;                                                                   \
            CT cur = LD(*p);                                                                          \
            *p = STO((CT)DIVN(cur, (CT)c));                                                           \
        }                                                                                             \
    }

SCAT_KERNEL(b, bool, bool, LD_ID, ST_ID, REAL_GT, NO_NAN, BOOL_DIV, MUL_BOOL)
SCAT_KERNEL(u8, uint8_t, uint8_t, LD_ID, ST_ID, REAL_GT, NO_NAN, UINT_DIV, MUL_PLAIN)
SCAT_KERNEL(i8, int8_t, int8_t, LD_ID, ST_ID, REAL_GT, NO_NAN, INT_DIV, MUL_PLAIN)
SCAT_KERNEL(i16, int16_t, int16_t, LD_ID, ST_ID, REAL_GT, NO_NAN, INT_DIV, MUL_PLAIN)
SCAT_KERNEL(i32, int32_t, int32_t, LD_ID, ST_ID, REAL_GT, NO_NAN, INT_DIV, MUL_PLAIN)
SCAT_KERNEL(i64, int64_t, int64_t, LD_ID, ST_ID, REAL_GT, NO_NAN, INT_DIV, MUL_PLAIN)
SCAT_KERNEL(f16, ct_half, float, LD_F16, ST_F16, REAL_GT, REAL_NAN, FLT_DIV, MUL_PLAIN)
SCAT_KERNEL(bf16, ct_bf16, float, LD_BF16, ST_BF16, REAL_GT, REAL_NAN, FLT_DIV, MUL_PLAIN)
SCAT_KERNEL(f32, float, float, LD_ID, ST_ID, REAL_GT, REAL_NAN, FLT_DIV, MUL_PLAIN)
SCAT_KERNEL(f64, double, double, LD_ID, ST_ID, REAL_GT, REAL_NAN, FLT_DIV, MUL_PLAIN)
SCAT_KERNEL(c64, ct_c64, ct_c64, LD_ID, ST_ID, CPLX_GT, NO_NAN, FLT_DIV, MUL_PLAIN)
SCAT_KERNEL(c128, ct_c128, ct_c128, LD_ID, ST_ID, CPLX_GT, NO_NAN, FLT_DIV, MUL_PLAIN)

static int k_scatter(const ct_kernel_args *a) {
    ct_tensor *self = a->out[0];
    const ct_tensor *idx = a->in[0], *src = a->in[1];
    int dim = (int)a->i[0];
    scat_geom g = {0};
    g.mode = (int)a->i[1];
    g.include_self = a->i[2] != 0;
    g.value = a->d[0];
    int64_t es = (int64_t)ct_dtype_size(self->dtype);
    g.outer = 1;
    for (int d = 0; d < idx->ndim; d++) {
        if (d == dim) continue;
        g.osz[g.nd] = idx->sizes[d];
        g.ost_self[g.nd] = self->strides[d] * es;
        g.ost_idx[g.nd] = idx->strides[d] * 8;
        g.ost_src[g.nd] = src ? src->strides[d] * es : 0;
        g.outer *= idx->sizes[d];
        g.nd++;
    }
    g.len = idx->sizes[dim];
    g.sd_self = self->strides[dim] * es;
    g.sd_idx = idx->strides[dim] * 8;
    g.sd_src = src ? src->strides[dim] * es : 0;
    g.size = self->sizes[dim];
    g.dim = dim;
    g.self = ct__data(self);
    g.idx = ct__data(idx);
    g.src = src ? ct__data(src) : NULL;
    atomic_init(&g.err.bad, 0);
    if (g.outer * g.len == 0) return 0;
    if (g.mode == SC_MEAN || (!g.include_self && g.mode != SC_ASSIGN)) {
        if (!ct__is_contiguous(self)) return ct__errs(CT_ERR_RUNTIME, "scatter_reduce: internal: destination not contiguous");
        g.cnt = calloc((size_t)self->numel, sizeof(int64_t));
        if (!g.cnt) return ct__errs(CT_ERR_OOM, "scatter_reduce: out of memory");
    }
    switch (self->dtype) {
#define SC_CASE(E, T, S) case E: scat_##S(&g); if (g.mode == SC_MEAN) scat_mean_##S(g.self, g.cnt, self->numel, g.include_self); break;
        CT_FOR_ALL_DTYPES(SC_CASE)
#undef SC_CASE
    default: break;
    }
    free(g.cnt);
    return ix_err_report(&g.err, a->op == CT_OP_SCATTER ? "scatter" : a->op == CT_OP_SCATTER_ADD ? "scatter_add" : "scatter_reduce");
}

/* ---- index_select: out[0] (contiguous) = in[0] (contiguous, rank >= 1) at in[1] (1-D int64) ---- */
static int k_index_select(const ct_kernel_args *a) {
    ct_tensor *out = a->out[0];
    const ct_tensor *x = a->in[0], *idx = a->in[1];
    int dim = (int)a->i[0];
    int64_t outer = 1, inner = (int64_t)ct_dtype_size(x->dtype), size = x->sizes[dim];
    for (int d = 0; d < dim; d++) outer *= x->sizes[d];
    for (int d = dim + 1; d < x->ndim; d++) inner *= x->sizes[d];
    int64_t n = idx->numel, ist = idx->ndim ? idx->strides[0] : 1;
    const int64_t *ip = ct__data(idx);
    for (int64_t j = 0; j < n; j++)
        if (ip[j * ist] < 0 || ip[j * ist] >= size)
            return ct__errs(CT_ERR_INDEX, "index_select(): index %lld is out of bounds for dimension %d with size %lld",
                            (long long)ip[j * ist], dim, (long long)size);
    const char *xp = ct__data(x);
    char *op = ct__data(out);
    int64_t total = outer * n;
    CT_PARALLEL_FOR_IF(total * inner >= CT_GRAIN * 4 && total > 1, for (int64_t t = 0; t < total; t++), {
        int64_t o = t / n, j = t % n;
        memcpy(op + t * inner, xp + (o * size + ip[j * ist]) * inner, (size_t)inner);
    });
    return 0;
}

/* ---- index_add: out[0] (contiguous, rank >= 1) += in[1] (contiguous, out's shape but
 * idx->numel along dim) at the positions in[0] (1-D contiguous int64) along dim i[0];
 * rows whose index equals i[1] (>= 0) are skipped (embedding's padding_idx).
 * Each destination slice [o, idx[j], :] gets whole contiguous rows added, in index order.
 * Parallel by destination: each thread owns a range of destination rows (or of outer
 * slices) and scans all indices, so no two threads write the same row and every row sees
 * its additions in the serial order: results are deterministic and equal to one thread.
 * The row adds are cloned for AVX2/AVX-512 (index_add of 8192 rows of 1024 floats into
 * [4096, 1024]: 0.85 of the baseline build's time, six of six interleaved runs). */
#define IA_ROW(sfx, T, EXPR)                                                                       \
    CT_LOOP_ATTR static void ia_row_##sfx(char *restrict dst, const char *restrict src, int64_t n) {  \
        T *restrict d = (T *)dst;                                                                  \
        const T *restrict s = (const T *)src;                                                      \
        for (int64_t k = 0; k < n; k++) d[k] = EXPR;                                               \
    }
IA_ROW(b, bool, d[k] || s[k])
IA_ROW(u8, uint8_t, (uint8_t)(d[k] + s[k]))
IA_ROW(i8, int8_t, (int8_t)(d[k] + s[k]))
IA_ROW(i16, int16_t, (int16_t)(d[k] + s[k]))
IA_ROW(i32, int32_t, (int32_t)((uint32_t)d[k] + (uint32_t)s[k]))
IA_ROW(i64, int64_t, (int64_t)((uint64_t)d[k] + (uint64_t)s[k]))
IA_ROW(f16, ct_half, ct_float_to_half(ct_half_to_float(d[k]) + ct_half_to_float(s[k])))
IA_ROW(bf16, ct_bf16, ct_float_to_bf16(ct_bf16_to_float(d[k]) + ct_bf16_to_float(s[k])))
IA_ROW(f32, float, d[k] + s[k])
IA_ROW(f64, double, d[k] + s[k])
IA_ROW(c64, ct_c64, d[k] + s[k])
IA_ROW(c128, ct_c128, d[k] + s[k])
#undef IA_ROW

static int k_index_add(const ct_kernel_args *a) {
    ct_tensor *out = a->out[0];
    const ct_tensor *idx = a->in[0], *src = a->in[1];
    int dim = (int)a->i[0];
    int64_t skip = a->i[1];
    if (!ct__is_contiguous(out) || !ct__is_contiguous(src) || !ct__is_contiguous(idx))
        return ct__errs(CT_ERR_RUNTIME, "index_add: internal: operands not contiguous");
    void (*row)(char *restrict, const char *restrict, int64_t) = NULL;
    switch (out->dtype) {
#define IA_CASE(E, T, S) case E: row = ia_row_##S; break;
        CT_FOR_ALL_DTYPES(IA_CASE)
#undef IA_CASE
    default: break;
    }
    if (!row) return ct__errs(CT_ERR_DTYPE, "index_add: unsupported dtype %s", ct_dtype_name(out->dtype));
    int64_t outer = 1, inner = 1, size = out->sizes[dim], n = idx->numel;
    for (int d = 0; d < dim; d++) outer *= out->sizes[d];
    for (int d = dim + 1; d < out->ndim; d++) inner *= out->sizes[d];
    const int64_t *ip = ct__data(idx);
    for (int64_t j = 0; j < n; j++)
        if (ip[j] < 0 || ip[j] >= size)
            return ct__errs(CT_ERR_INDEX, "index_add(): index %lld is out of bounds for dimension %d with size %lld",
                            (long long)ip[j], dim, (long long)size);
    if (outer * n * inner == 0) return 0;
    int64_t es = (int64_t)ct_dtype_size(out->dtype), rb = inner * es;
    char *op = ct__data(out);
    const char *sp = ct__data(src);
    int nt = omp_in_parallel() ? 1 : ct__num_threads();
    if (outer * n * inner < CT_GRAIN || nt < 2) nt = 1;
    if (outer >= nt) {
        /* nt is 1 or the whole team */
        CT_PARALLEL_FOR_IF(nt > 1, for (int64_t o = 0; o < outer; o++),
                           for (int64_t j = 0; j < n; j++)
                               if (ip[j] != skip) row(op + (o * size + ip[j]) * rb, sp + (o * n + j) * rb, inner););
    } else {
        /* few outer slices: split the destination rows of each among the threads */
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int64_t lo = size * t / T, hi = size * (t + 1) / T;
            for (int64_t o = 0; o < outer; o++)
                for (int64_t j = 0; j < n; j++) {
                    int64_t ix = ip[j];
                    if (ix >= lo && ix < hi && ix != skip) row(op + (o * size + ix) * rb, sp + (o * n + j) * rb, inner);
                }
        }
    }
    return 0;
}

/* ---- advanced indexing: INDEX: out[0] = in[0] (x restrided to the result shape, 0
 * strides over the broadcast index dims) at offsets from in[1..K]; INDEX_PUT: out[0]
 * (restrided destination) gets in[0] (values in the result shape), i[1] accumulate.
 * iv[2k], iv[2k+1]: size and byte stride of the k-th indexed dim, iv[2K + k] its dim. */
typedef struct {
    int K;
    const int64_t *iv;
    size_t es;
    ct_dtype dt;
    bool put, accumulate;
    ix_err err;
} adv_ctx;

static void add_elem(char *dst, const char *src, ct_dtype dt) {
    switch (dt) {
#define ADD_CASE(E, T, S) case E: { T s_; memcpy(&s_, src, sizeof(T)); T *d_ = (T *)dst; ADD_##S(d_, s_); } break;
#define ADD_PLAIN(d, s) (*(d) = *(d) + (s))
#define ADD_b(d, s) (*(d) = *(d) || (s))
#define ADD_u8 ADD_PLAIN
#define ADD_i8 ADD_PLAIN
#define ADD_i16 ADD_PLAIN
#define ADD_i32 ADD_PLAIN
#define ADD_i64 ADD_PLAIN
#define ADD_f32 ADD_PLAIN
#define ADD_f64 ADD_PLAIN
#define ADD_c64 ADD_PLAIN
#define ADD_c128 ADD_PLAIN
#define ADD_f16(d, s) (*(d) = ct_float_to_half(ct_half_to_float(*(d)) + ct_half_to_float(s)))
#define ADD_bf16(d, s) (*(d) = ct_float_to_bf16(ct_bf16_to_float(*(d)) + ct_bf16_to_float(s)))
        CT_FOR_ALL_DTYPES(ADD_CASE)
#undef ADD_CASE
    default: break;
    }
}

static void adv_loop(char **d, const int64_t *s, int64_t n, void *vctx) {
    adv_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        bool ok = true;
        for (int k = 0; k < c->K; k++) {
            int64_t ix = *(const int64_t *)(d[2 + k] + i * s[2 + k]), size = c->iv[2 * k];
            if (ix < 0) ix += size;
            if (CT_UNLIKELY(ix < 0 || ix >= size)) {
                ix_err_set(&c->err, *(const int64_t *)(d[2 + k] + i * s[2 + k]), c->iv[2 * c->K + k], size);
                ok = false;
                break;
            }
            off += ix * c->iv[2 * k + 1];
        }
        if (!ok) continue;
        if (!c->put) memcpy(d[0] + i * s[0], d[1] + i * s[1] + off, c->es);
        else if (!c->accumulate) memcpy(d[0] + i * s[0] + off, d[1] + i * s[1], c->es);
        else add_elem(d[0] + i * s[0] + off, d[1] + i * s[1], c->dt);
    }
}

static int k_index(const ct_kernel_args *a) {
    int K = (int)a->i[0];
    const ct_tensor *ops[CT_ITER_MAX_OPS];
    ops[0] = a->out[0];
    for (int k = 0; k <= K; k++) ops[1 + k] = a->in[k];
    adv_ctx c = {.K = K, .iv = a->iv, .es = ct_dtype_size(a->out[0]->dtype), .dt = a->out[0]->dtype,
                 .put = a->op == CT_OP_INDEX_PUT, .accumulate = a->op == CT_OP_INDEX_PUT && a->i[1]};
    atomic_init(&c.err.bad, 0);
    ct_iter it;
    int rc = ct__iter_build(&it, K + 2, 1, ops);
    if (rc) return rc;
    ct__iter_run(&it, adv_loop, &c, c.accumulate ? INT64_MAX / 4 : 0);
    return ix_err_report(&c.err, "index");
}

/* ---- nonzero: i[0] == 0: out[0] (0-dim int64) = count; else out[0] [count, ndim] ---- */
static bool is_nonzero(const char *p, ct_dtype dt) {
    switch (dt) {
    case CT_BOOL: return *(const bool *)p;
    case CT_UINT8: return *(const uint8_t *)p != 0;
    case CT_INT8: return *(const int8_t *)p != 0;
    case CT_INT16: return *(const int16_t *)p != 0;
    case CT_INT32: return *(const int32_t *)p != 0;
    case CT_INT64: return *(const int64_t *)p != 0;
    case CT_FLOAT16: return ct_half_to_float(*(const ct_half *)p) != 0;
    case CT_BFLOAT16: return ct_bf16_to_float(*(const ct_bf16 *)p) != 0;
    case CT_FLOAT32: return *(const float *)p != 0;
    case CT_FLOAT64: return *(const double *)p != 0;
    case CT_COMPLEX64: return *(const ct_c64 *)p != 0;
    case CT_COMPLEX128: return *(const ct_c128 *)p != 0;
    default: return false;
    }
}

static int k_nonzero(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    int nd = x->ndim;
    int64_t es = (int64_t)ct_dtype_size(x->dtype), pos[CT_MAX_DIMS] = {0}, count = 0;
    const char *p = ct__data(x);
    int64_t *o = ct__data(a->out[0]);
    bool fill = a->i[0] != 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (is_nonzero(p, x->dtype)) {
            if (fill) for (int d = 0; d < nd; d++) o[count * nd + d] = pos[d];
            count++;
        }
        for (int d = nd - 1; d >= 0; d--) {
            p += x->strides[d] * es;
            if (++pos[d] < x->sizes[d]) break;
            p -= x->sizes[d] * x->strides[d] * es;
            pos[d] = 0;
        }
    }
    if (!fill) *o = count;
    return 0;
}

/* ---- runs of equal consecutive rows: in[0] [n, m] contiguous; out[0] [n] group id
 * per row, out[1] [n] count per group, out[2] [n] first row per group (n_groups used) ---- */
static bool elem_eq(const char *a, const char *b, ct_dtype dt) {
    if (ct_dtype_is_complex(dt)) return ct__load_c128(a, dt) == ct__load_c128(b, dt);
    if (ct_dtype_is_floating(dt)) return ct__load_f64(a, dt) == ct__load_f64(b, dt);
    return ct__load_i64(a, dt) == ct__load_i64(b, dt);
}

static int k_unique_consec(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    int64_t n = x->sizes[0], m = x->ndim > 1 ? x->sizes[1] : 1, es = (int64_t)ct_dtype_size(x->dtype);
    const char *p = ct__data(x);
    int64_t *ids = ct__data(a->out[0]), *cnt = ct__data(a->out[1]), *first = ct__data(a->out[2]);
    int64_t g = -1;
    for (int64_t r = 0; r < n; r++) {
        bool same = r > 0;
        for (int64_t j = 0; same && j < m; j++)
            same = elem_eq(p + (r * m + j) * es, p + ((r - 1) * m + j) * es, x->dtype);
        if (!same) {
            g++;
            cnt[g] = 0;
            first[g] = r;
        }
        cnt[g]++;
        ids[r] = g;
    }
    return 0;
}

void ct_cpu_register_index(ct_kernel_fn *k) {
    k[CT_OP_GATHER] = k_gather;
    k[CT_OP_SCATTER] = k_scatter;
    k[CT_OP_SCATTER_ADD] = k_scatter;
    k[CT_OP_SCATTER_REDUCE] = k_scatter;
    k[CT_OP_INDEX_SELECT] = k_index_select;
    k[CT_OP_INDEX_ADD] = k_index_add;
    k[CT_OP_INDEX] = k_index;
    k[CT_OP_INDEX_PUT] = k_index;
    k[CT_OP_NONZERO] = k_nonzero;
    k[CT_OP_UNIQUE_CONSEC] = k_unique_consec;
    ct_cpu_register_sort(k);
}
