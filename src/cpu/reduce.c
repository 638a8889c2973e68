/* CPU reduction kernels and the driver.
 *
 * Simple reductions (SUM, NANSUM, PROD, AMAX, AMIN, ALL, ANY) accumulate in a wide
 * type per dtype category: double for floating dtypes, int64 for integers and bool,
 * double complex for complex. Three schedules:
 *   - rows: each output reduces its block row by row (contiguous rows use 8 lanes, which
 *     the compiler vectorises); parallel over outputs;
 *   - split: few outputs and a big block: each thread reduces a static chunk of the
 *     block and the per-thread partials are combined in thread order (deterministic);
 *   - columns: the kept innermost dim is contiguous and the reduced dims are outer
 *     (e.g. sum over dim 0 of [4096, 1024]): a tile of outputs is accumulated from
 *     contiguous input rows, walking memory in order.
 * Index reductions (MAX_DIM, MIN_DIM, ARGMAX, ARGMIN), MEDIAN and MODE reduce one dim. */
#include <math.h>
#include <omp.h>

#include "cpu/loops.h"
#include "cpu/reduce.h"

void ct__reduce_plan(ct_reduce_plan *p, const ct_tensor *x, const bool *mask) {
    p->nk = p->nr = 0;
    p->n_out = p->n_red = 1;
    p->in_es = ct_dtype_size(x->dtype);
    p->in = (const char *)x->storage->data + x->offset * (int64_t)p->in_es;
    for (int d = 0; d < x->ndim; d++) {
        int64_t sz = x->sizes[d], st = x->strides[d];
        if (mask[d]) {
            p->n_red *= sz;
            if (sz == 1) continue;
            if (p->nr && p->rstride[p->nr - 1] == st * sz) { p->rsize[p->nr - 1] *= sz; p->rstride[p->nr - 1] = st; }
            else { p->rsize[p->nr] = sz; p->rstride[p->nr] = st; p->nr++; }
        } else {
            p->n_out *= sz;
            if (sz == 1) continue;
            if (p->nk && p->kstride[p->nk - 1] == st * sz) { p->ksize[p->nk - 1] *= sz; p->kstride[p->nk - 1] = st; }
            else { p->ksize[p->nk] = sz; p->kstride[p->nk] = st; p->nk++; }
        }
    }
    if (p->nr == 0) { p->rsize[0] = 1; p->rstride[0] = 0; p->nr = 1; }
}

int64_t ct__reduce_out_offset(const ct_reduce_plan *p, int64_t m) {
    int64_t off = 0;
    for (int d = p->nk - 1; d >= 0; d--) { off += (m % p->ksize[d]) * p->kstride[d]; m /= p->ksize[d]; }
    return off;
}

void ct__reduce_visit_rows(const ct_reduce_plan *p, int64_t m, ct_row_fn fn, void *ctx) {
    if (p->n_red == 0) return;
    const char *base = p->in + ct__reduce_out_offset(p, m) * (int64_t)p->in_es;
    int nr = p->nr;
    int64_t rows = 1;
    for (int d = 0; d < nr - 1; d++) rows *= p->rsize[d];
    int64_t es = (int64_t)p->in_es;
    if (nr == 1) { /* one run per output: the common case, no index bookkeeping */
        fn(base, p->rsize[0], p->rstride[0] * es, ctx);
        return;
    }
    int64_t idx[CT_MAX_DIMS];
    memset(idx, 0, sizeof(int64_t) * (size_t)nr);
    const char *row = base;
    for (int64_t r = 0; r < rows; r++) {
        fn(row, p->rsize[nr - 1], p->rstride[nr - 1] * es, ctx);
        for (int d = nr - 2; d >= 0; d--) {
            row += p->rstride[d] * es;
            if (++idx[d] < p->rsize[d]) break;
            row -= p->rsize[d] * p->rstride[d] * es;
            idx[d] = 0;
        }
    }
}

/* ---------------------------------------------------------------------------------- */
/* simple reductions                                                                   */
/* ---------------------------------------------------------------------------------- */
typedef enum { RK_SUM, RK_NANSUM, RK_PROD, RK_MAX, RK_MIN, RK_ALL, RK_ANY } rkind;
typedef enum { CAT_F, CAT_I, CAT_C } rcat;

typedef struct {
    double f;
    int64_t i;
    ct_c128 c;
} racc;

typedef struct {
    rkind k;
    ct_dtype dt;
    racc a;
} rctx;

static rcat cat_of(ct_dtype dt) {
    if (ct_dtype_is_complex(dt)) return CAT_C;
    if (ct_dtype_is_floating(dt)) return CAT_F;
    return CAT_I;
}

static racc acc_init(rkind k) {
    racc a = {0, 0, 0};
    switch (k) {
    case RK_PROD: a.f = 1; a.i = 1; a.c = 1; break;
    case RK_MAX: a.f = -INFINITY; a.i = INT64_MIN; break;
    case RK_MIN: a.f = INFINITY; a.i = INT64_MAX; break;
    case RK_ALL: a.i = 1; break;
    default: break;
    }
    return a;
}

#define C_SUM(a, v) (a) += (v)
#define C_NANSUM(a, v) (a) += ((v) != (v) ? 0 : (v))
#define C_PROD(a, v) (a) *= (v)
/* NaN-propagating max/min in a form that vectorises (a NaN accumulator stays NaN) */
#define C_MAX(a, v) (a) = (((v) > (a) || (v) != (v)) ? (v) : (a))
#define C_MIN(a, v) (a) = (((v) < (a) || (v) != (v)) ? (v) : (a))
#define C_ALL(a, v) (a) &= (v)
#define C_ANY(a, v) (a) |= (v)

#define LD_D(x) ((double)(x))
#define LD_H(x) ((double)ct_half_to_float(x))
#define LD_B(x) ((double)ct_bf16_to_float(x))
#define LD_I(x) ((int64_t)(x))
#define LD_C(x) ((ct_c128)(x))
#define TR_X(x) ((int64_t)((x) != 0))
#define TR_H(x) ((int64_t)(ct_half_to_float(x) != 0))
#define TR_B(x) ((int64_t)(ct_bf16_to_float(x) != 0))

/* Row: acc CMB= LD(row[i]) for n elements, stride sb bytes; 8 lanes when contiguous. */
#define ROW_CASE(DT, T, AT, LD, CMB, ACC, INIT)                                                  \
    case DT: {                                                                                   \
        AT acc = ACC;                                                                            \
        if (sb == (int64_t)sizeof(T)) {                                                          \
            const T *x = (const T *)row;                                                         \
            int64_t i = 0;                                                                       \
            if (n >= 16) {                                                                       \
                AT l[8];                                                                         \
                for (int j = 0; j < 8; j++) l[j] = INIT;                                         \
                for (; i + 8 <= n; i += 8)                                                       \
                    for (int j = 0; j < 8; j++) { AT v = LD(x[i + j]); CMB(l[j], v); }           \
                for (int j = 0; j < 8; j++) CMB(acc, l[j]);                                      \
            }                                                                                    \
            for (; i < n; i++) { AT v = LD(x[i]); CMB(acc, v); }                                 \
        } else                                                                                   \
            for (int64_t i = 0; i < n; i++) { AT v = LD(*(const T *)(row + i * sb)); CMB(acc, v); } \
        ACC = acc;                                                                               \
    } break;

/* Column: acc[c] CMB= LD(x[c]) for c < n (x contiguous). */
#define COL_CASE(DT, T, AT, LD, CMB, ACCARR)                              \
    case DT: {                                                            \
        const T *x = (const T *)row;                                      \
        AT *acc = ACCARR;                                                 \
        for (int64_t c = 0; c < n; c++) { AT v = LD(x[c]); CMB(acc[c], v); } \
    } break;

#define REAL_NUM_CASES(CASE, CMB, F, I)                                                          \
    CASE(CT_FLOAT32, float, double, LD_D, CMB, F) CASE(CT_FLOAT64, double, double, LD_D, CMB, F) \
    CASE(CT_FLOAT16, ct_half, double, LD_H, CMB, F) CASE(CT_BFLOAT16, ct_bf16, double, LD_B, CMB, F) \
    CASE(CT_BOOL, bool, int64_t, LD_I, CMB, I) CASE(CT_UINT8, uint8_t, int64_t, LD_I, CMB, I)       \
    CASE(CT_INT8, int8_t, int64_t, LD_I, CMB, I) CASE(CT_INT16, int16_t, int64_t, LD_I, CMB, I)     \
    CASE(CT_INT32, int32_t, int64_t, LD_I, CMB, I) CASE(CT_INT64, int64_t, int64_t, LD_I, CMB, I)
#define CPX_CASES(CASE, CMB, C) \
    CASE(CT_COMPLEX64, ct_c64, ct_c128, LD_C, CMB, C) CASE(CT_COMPLEX128, ct_c128, ct_c128, LD_C, CMB, C)
#define TRUTH_CASES(CASE, CMB, I)                                                                       \
    CASE(CT_FLOAT32, float, int64_t, TR_X, CMB, I) CASE(CT_FLOAT64, double, int64_t, TR_X, CMB, I)        \
    CASE(CT_FLOAT16, ct_half, int64_t, TR_H, CMB, I) CASE(CT_BFLOAT16, ct_bf16, int64_t, TR_B, CMB, I)    \
    CASE(CT_BOOL, bool, int64_t, TR_X, CMB, I) CASE(CT_UINT8, uint8_t, int64_t, TR_X, CMB, I)             \
    CASE(CT_INT8, int8_t, int64_t, TR_X, CMB, I) CASE(CT_INT16, int16_t, int64_t, TR_X, CMB, I)           \
    CASE(CT_INT32, int32_t, int64_t, TR_X, CMB, I) CASE(CT_INT64, int64_t, int64_t, TR_X, CMB, I)         \
    CASE(CT_COMPLEX64, ct_c64, int64_t, TR_X, CMB, I) CASE(CT_COMPLEX128, ct_c128, int64_t, TR_X, CMB, I)

#define ROW_R(DT, T, AT, LD, CMB, ACC) ROW_CASE(DT, T, AT, LD, CMB, ACC, init_##AT)

/* Contiguous float max/min in the input type: 16 lanes plus a NaN flag (vectorises). */
#define MAXMIN_FAST(NAME, T, CMP, PRAGMA)                                          \
    CT_LOOP_ATTR static double NAME(const T *x, int64_t n) {                     \
        T r = x[0];                                                              \
        int anynan = 0;                                                          \
        _Pragma(PRAGMA)                                                          \
        for (int64_t i = 0; i < n; i++) {                                        \
            T v = x[i];                                                          \
            r = v CMP r ? v : r;                                                 \
            anynan |= v != v;                                                    \
        }                                                                        \
        return anynan ? NAN : (double)r;                                         \
    }
MAXMIN_FAST(max_f32, float, >, "omp simd reduction(max:r) reduction(|:anynan)")
MAXMIN_FAST(min_f32, float, <, "omp simd reduction(min:r) reduction(|:anynan)")
MAXMIN_FAST(max_f64, double, >, "omp simd reduction(max:r) reduction(|:anynan)")
MAXMIN_FAST(min_f64, double, <, "omp simd reduction(min:r) reduction(|:anynan)")

/* Contiguous float sums: blocks of 4096 summed in the input type by four independent
 * 16-lane accumulators (the adds pipeline and stay in float32 like PyTorch's cascade
 * sum), block sums added in double. Lanes combine in a fixed order: results repeat. */
#define HALVE(W) for (int q = 0; q < (W); q++) a0[q] += a0[q + (W)];
#define SUM_FAST(NAME, T, L)                                                               \
    CT_LOOP_ATTR static double NAME(const T *x, int64_t n) {                              \
        double total = 0;                                                                  \
        for (int64_t b = 0; b < n; b += 4096) {                                            \
            int64_t e = n - b < 4096 ? n : b + 4096, i = b;                                \
            T a0[L] = {0}, a1[L] = {0}, a2[L] = {0}, a3[L] = {0}, s = 0;                   \
            for (; i + 4 * L <= e; i += 4 * L)                                             \
                for (int q = 0; q < L; q++) {                                              \
                    a0[q] += x[i + q], a1[q] += x[i + L + q];                              \
                    a2[q] += x[i + 2 * L + q], a3[q] += x[i + 3 * L + q];                  \
                }                                                                          \
            for (; i < e; i++) s += x[i];                                                  \
            for (int q = 0; q < L; q++) a0[q] = (a0[q] + a1[q]) + (a2[q] + a3[q]);         \
            if (L >= 16) HALVE(8) /* pairwise tree in constant-width vector steps */      \
            HALVE(4) HALVE(2) HALVE(1)                                                     \
            total += (double)a0[0] + s;                                                    \
        }                                                                                  \
        return total;                                                                      \
    }
#if defined(__GNUC__) && ((defined(__clang__) && __clang_major__ >= 4) || (!defined(__clang__) && __GNUC__ >= 12))
/* The same sums in vector types: the accumulators stay in registers and the pairwise
 * tree is done with whole-vector halvings (the array form above compiles to a scalar
 * chain of shuffles and adds per row, about a sixth of a 1024-float row's time). The
 * order of every addition is the one above, so the results are the same bits. Two
 * builds of it: 64-byte vectors for AVX-512, and the same lanes held as pairs of 32-byte
 * vectors for AVX2 and the baseline (GCC lowers a 64-byte vector there through the
 * stack: 2.6x slower than PyTorch's sum on an AVX2 CPU). The CPU is read once, when
 * the backend registers. */
/* (the vector types and LOADV: cpu/loops.h) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(CT_NO_MULTIVERSION)
#define SUM_ATTR_512 __attribute__((target("avx512f")))
#define SUM_ATTR_256 __attribute__((target_clones("avx2", "default")))
static bool sum_isa_512; /* set once by ct_cpu_register_reduce */
static void sum_isa_init(void) { sum_isa_512 = ct__cpu_isa() == CT_ISA_AVX512; }
#else
#define SUM_ATTR_512
#define SUM_ATTR_256
static const bool sum_isa_512 = false;
static void sum_isa_init(void) {}
#endif
/* float: 64 lanes in four accumulators; lanes 0-7 and 8-15 of each are lo/hi */
SUM_ATTR_512 static double sum_f32_512(const float *x, int64_t n) {
    double total = 0;
    for (int64_t b = 0; b < n; b += 4096) {
        int64_t e = n - b < 4096 ? n : b + 4096, i = b;
        ct_v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        float s = 0;
        for (; i + 64 <= e; i += 64) {
            a0 += LOADV(ct_v16f, x + i), a1 += LOADV(ct_v16f, x + i + 16);
            a2 += LOADV(ct_v16f, x + i + 32), a3 += LOADV(ct_v16f, x + i + 48);
        }
        for (; i < e; i++) s += x[i];
        a0 = (a0 + a1) + (a2 + a3);
        ct_v8f h8 = __builtin_shufflevector(a0, a0, 0, 1, 2, 3, 4, 5, 6, 7) +
                    __builtin_shufflevector(a0, a0, 8, 9, 10, 11, 12, 13, 14, 15);
        ct_v4f h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) + __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
        float r0 = h4[0] + h4[2], r1 = h4[1] + h4[3];
        total += (double)(r0 + r1) + s;
    }
    return total;
}
SUM_ATTR_256 static double sum_f32_256(const float *x, int64_t n) {
    double total = 0;
    for (int64_t b = 0; b < n; b += 4096) {
        int64_t e = n - b < 4096 ? n : b + 4096, i = b;
        ct_v8f l0 = {0}, h0 = {0}, l1 = {0}, h1 = {0}, l2 = {0}, h2 = {0}, l3 = {0}, h3 = {0};
        float s = 0;
        for (; i + 64 <= e; i += 64) {
            l0 += LOADV(ct_v8f, x + i), h0 += LOADV(ct_v8f, x + i + 8);
            l1 += LOADV(ct_v8f, x + i + 16), h1 += LOADV(ct_v8f, x + i + 24);
            l2 += LOADV(ct_v8f, x + i + 32), h2 += LOADV(ct_v8f, x + i + 40);
            l3 += LOADV(ct_v8f, x + i + 48), h3 += LOADV(ct_v8f, x + i + 56);
        }
        for (; i < e; i++) s += x[i];
        ct_v8f h8 = ((l0 + l1) + (l2 + l3)) + ((h0 + h1) + (h2 + h3));
        ct_v4f h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) + __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
        float r0 = h4[0] + h4[2], r1 = h4[1] + h4[3];
        total += (double)(r0 + r1) + s;
    }
    return total;
}
/* double: 32 lanes in four accumulators; lanes 0-3 and 4-7 of each are lo/hi */
SUM_ATTR_512 static double sum_f64_512(const double *x, int64_t n) {
    double total = 0;
    for (int64_t b = 0; b < n; b += 4096) {
        int64_t e = n - b < 4096 ? n : b + 4096, i = b;
        ct_v8d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        double s = 0;
        for (; i + 32 <= e; i += 32) {
            a0 += LOADV(ct_v8d, x + i), a1 += LOADV(ct_v8d, x + i + 8);
            a2 += LOADV(ct_v8d, x + i + 16), a3 += LOADV(ct_v8d, x + i + 24);
        }
        for (; i < e; i++) s += x[i];
        a0 = (a0 + a1) + (a2 + a3);
        ct_v4d h4 = __builtin_shufflevector(a0, a0, 0, 1, 2, 3) + __builtin_shufflevector(a0, a0, 4, 5, 6, 7);
        ct_v2d h2 = __builtin_shufflevector(h4, h4, 0, 1) + __builtin_shufflevector(h4, h4, 2, 3);
        total += (h2[0] + h2[1]) + s;
    }
    return total;
}
SUM_ATTR_256 static double sum_f64_256(const double *x, int64_t n) {
    double total = 0;
    for (int64_t b = 0; b < n; b += 4096) {
        int64_t e = n - b < 4096 ? n : b + 4096, i = b;
        ct_v4d l0 = {0}, h0 = {0}, l1 = {0}, h1 = {0}, l2 = {0}, h2 = {0}, l3 = {0}, h3 = {0};
        double s = 0;
        for (; i + 32 <= e; i += 32) {
            l0 += LOADV(ct_v4d, x + i), h0 += LOADV(ct_v4d, x + i + 4);
            l1 += LOADV(ct_v4d, x + i + 8), h1 += LOADV(ct_v4d, x + i + 12);
            l2 += LOADV(ct_v4d, x + i + 16), h2 += LOADV(ct_v4d, x + i + 20);
            l3 += LOADV(ct_v4d, x + i + 24), h3 += LOADV(ct_v4d, x + i + 28);
        }
        for (; i < e; i++) s += x[i];
        ct_v4d h4 = ((l0 + l1) + (l2 + l3)) + ((h0 + h1) + (h2 + h3));
        ct_v2d q2 = __builtin_shufflevector(h4, h4, 0, 1) + __builtin_shufflevector(h4, h4, 2, 3);
        total += (q2[0] + q2[1]) + s;
    }
    return total;
}
static double sum_f32(const float *x, int64_t n) { return sum_isa_512 ? sum_f32_512(x, n) : sum_f32_256(x, n); }
static double sum_f64(const double *x, int64_t n) { return sum_isa_512 ? sum_f64_512(x, n) : sum_f64_256(x, n); }
#undef LOADV
#else
SUM_FAST(sum_f32, float, 16)
SUM_FAST(sum_f64, double, 8)
#endif

CT_LOOP_ATTR static void row_reduce(const char *row, int64_t n, int64_t sb, void *vctx) {
    rctx *c = vctx;
    if (c->k == RK_SUM && ((c->dt == CT_FLOAT32 && sb == 4) || (c->dt == CT_FLOAT64 && sb == 8))) {
        c->a.f += c->dt == CT_FLOAT32 ? sum_f32((const float *)row, n) : sum_f64((const double *)row, n);
        return;
    }
    /* float16 / bfloat16 rows: widened 4096 at a time and summed as float32 rows are (the
     * same blocks, so the same value as the sum of the widened row; PyTorch also sums
     * these types in float32). Element by element in double it took 3x PyTorch's time. */
    if (c->k == RK_SUM && ct__is_half(c->dt) && sb == 2) {
        float buf[4096];
        for (int64_t b = 0; b < n; b += 4096) {
            int64_t m = n - b < 4096 ? n - b : 4096;
            ct__half_widen(c->dt, buf, row + 2 * b, m);
            c->a.f += sum_f32(buf, m);
        }
        return;
    }
    if ((c->k == RK_MAX || c->k == RK_MIN) && n > 0 &&
        ((c->dt == CT_FLOAT32 && sb == 4) || (c->dt == CT_FLOAT64 && sb == 8))) {
        double v = c->dt == CT_FLOAT32 ? (c->k == RK_MAX ? max_f32 : min_f32)((const float *)row, n)
                                       : (c->k == RK_MAX ? max_f64 : min_f64)((const double *)row, n);
        if (c->k == RK_MAX) C_MAX(c->a.f, v);
        else C_MIN(c->a.f, v);
        return;
    }
    racc ini = acc_init(c->k);
    double init_double = ini.f;
    int64_t init_int64_t = ini.i;
    ct_c128 init_ct_c128 = ini.c;
    (void)init_double; (void)init_int64_t; (void)init_ct_c128;
    switch (c->k) {
    case RK_SUM:
        switch (c->dt) { REAL_NUM_CASES(ROW_R, C_SUM, c->a.f, c->a.i) CPX_CASES(ROW_R, C_SUM, c->a.c) default: break; }
        break;
    case RK_NANSUM:
        switch (c->dt) { REAL_NUM_CASES(ROW_R, C_NANSUM, c->a.f, c->a.i) default: break; }
        break;
    case RK_PROD:
        switch (c->dt) { REAL_NUM_CASES(ROW_R, C_PROD, c->a.f, c->a.i) CPX_CASES(ROW_R, C_PROD, c->a.c) default: break; }
        break;
    case RK_MAX:
        switch (c->dt) { REAL_NUM_CASES(ROW_R, C_MAX, c->a.f, c->a.i) default: break; }
        break;
    case RK_MIN:
        switch (c->dt) { REAL_NUM_CASES(ROW_R, C_MIN, c->a.f, c->a.i) default: break; }
        break;
    case RK_ALL:
        switch (c->dt) { TRUTH_CASES(ROW_R, C_ALL, c->a.i) default: break; }
        break;
    case RK_ANY:
        switch (c->dt) { TRUTH_CASES(ROW_R, C_ANY, c->a.i) default: break; }
        break;
    }
}

CT_LOOP_ATTR static void col_reduce(rkind k, ct_dtype dt, const char *row, int64_t n, double *af, int64_t *ai, ct_c128 *ac) {
    switch (k) {
    case RK_SUM: switch (dt) { REAL_NUM_CASES(COL_CASE, C_SUM, af, ai) CPX_CASES(COL_CASE, C_SUM, ac) default: break; } break;
    case RK_NANSUM: switch (dt) { REAL_NUM_CASES(COL_CASE, C_NANSUM, af, ai) default: break; } break;
    case RK_PROD: switch (dt) { REAL_NUM_CASES(COL_CASE, C_PROD, af, ai) CPX_CASES(COL_CASE, C_PROD, ac) default: break; } break;
    case RK_MAX: switch (dt) { REAL_NUM_CASES(COL_CASE, C_MAX, af, ai) default: break; } break;
    case RK_MIN: switch (dt) { REAL_NUM_CASES(COL_CASE, C_MIN, af, ai) default: break; } break;
    case RK_ALL: switch (dt) { TRUTH_CASES(COL_CASE, C_ALL, ai) default: break; } break;
    case RK_ANY: switch (dt) { TRUTH_CASES(COL_CASE, C_ANY, ai) default: break; } break;
    }
}

/* acc[c] += r0[c], += r1[c], ... in double, in row order, for nr (1 or 4) float32 or
 * float64 rows: col_reduce's RK_SUM case, with four rows per pass over the accumulators
 * when there are four. */
CT_LOOP_ATTR static void col_sum_float(ct_dtype dt, const char *const *rows, int nr, int64_t n, double *acc) {
    if (dt == CT_FLOAT32) {
        const float *x0 = (const float *)rows[0];
        if (nr == 4) {
            const float *x1 = (const float *)rows[1], *x2 = (const float *)rows[2], *x3 = (const float *)rows[3];
            for (int64_t c = 0; c < n; c++) acc[c] = (((acc[c] + (double)x0[c]) + (double)x1[c]) + (double)x2[c]) + (double)x3[c];
        } else {
            for (int64_t c = 0; c < n; c++) acc[c] += (double)x0[c];
        }
    } else {
        const double *x0 = (const double *)rows[0];
        if (nr == 4) {
            const double *x1 = (const double *)rows[1], *x2 = (const double *)rows[2], *x3 = (const double *)rows[3];
            for (int64_t c = 0; c < n; c++) acc[c] = (((acc[c] + x0[c]) + x1[c]) + x2[c]) + x3[c];
        } else {
            for (int64_t c = 0; c < n; c++) acc[c] += x0[c];
        }
    }
}

/* acc[c] = max (min) of acc[c] and row[c], NaN propagating (C_MAX / C_MIN), in the
 * row's own float type: col_reduce's RK_MAX / RK_MIN cases without the widening to
 * double, so the compare-and-select vectorises (amax over dim 0 of [4096, 1024] float32:
 * 4.3x PyTorch's time through col_reduce). */
CT_LOOP_ATTR static void col_minmax_float(ct_dtype dt, bool is_max, const char *row, int64_t n, char *acc) {
    if (dt == CT_FLOAT32) {
        const float *x = (const float *)row;
        float *a = (float *)acc;
        if (is_max) for (int64_t c = 0; c < n; c++) C_MAX(a[c], x[c]);
        else for (int64_t c = 0; c < n; c++) C_MIN(a[c], x[c]);
    } else {
        const double *x = (const double *)row;
        double *a = (double *)acc;
        if (is_max) for (int64_t c = 0; c < n; c++) C_MAX(a[c], x[c]);
        else for (int64_t c = 0; c < n; c++) C_MIN(a[c], x[c]);
    }
}

/* Combines partial b into a (same kind). */
static void acc_merge(rkind k, rcat cat, racc *a, const racc *b) {
    switch (k) {
    case RK_SUM: case RK_NANSUM: a->f += b->f; a->i += b->i; a->c += b->c; break;
    case RK_PROD: a->f *= b->f; a->i *= b->i; a->c *= b->c; break;
    case RK_MAX: if (cat == CAT_F) C_MAX(a->f, b->f); else C_MAX(a->i, b->i); break;
    case RK_MIN: if (cat == CAT_F) C_MIN(a->f, b->f); else C_MIN(a->i, b->i); break;
    case RK_ALL: a->i &= b->i; break;
    case RK_ANY: a->i |= b->i; break;
    }
}

static void acc_store(char *o, ct_dtype odt, rkind k, rcat cat, const racc *a) {
    if (k == RK_ALL || k == RK_ANY) { ct__store_i64(o, odt, a->i); return; }
    if (cat == CAT_C) ct__store_c128(o, odt, a->c);
    else if (cat == CAT_I) ct__store_i64(o, odt, a->i);
    else ct__store_f64(o, odt, a->f);
}

#define COL_TILE 256

static int simple_reduce(const ct_kernel_args *a, rkind k) {
    const ct_tensor *x = a->in[0];
    ct_tensor *out = a->out[0];
    bool mask[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) mask[d] = a->iv[d] != 0;
    ct_reduce_plan p;
    ct__reduce_plan(&p, x, mask);
    char *o = ct__data(out);
    int64_t oes = (int64_t)ct_dtype_size(out->dtype), es = (int64_t)p.in_es;
    rcat cat = (k == RK_ALL || k == RK_ANY) ? CAT_I : cat_of(x->dtype);
    ct_dtype dt = x->dtype;
    if (p.n_out == 0) return 0;
    if (p.n_red == 0) {
        racc ini = acc_init(k);
        for (int64_t m = 0; m < p.n_out; m++) acc_store(o + m * oes, out->dtype, k, cat, &ini);
        return 0;
    }
    int nt = omp_in_parallel() ? 1 : ct__num_threads();
    bool big = p.n_out * p.n_red >= CT_GRAIN;

    /* columns: kept innermost dim contiguous, reduced dims outside it */
    if (p.nk >= 1 && p.kstride[p.nk - 1] == 1 && p.ksize[p.nk - 1] >= 8 && p.n_red > 1 && p.rstride[p.nr - 1] != 1) {
        int64_t K = p.ksize[p.nk - 1], ntile = (K + COL_TILE - 1) / COL_TILE, nouter = p.n_out / K;
        int64_t jobs = nouter * ntile;
        /* a float sum into its own dtype (a bias's gradient): the same double accumulators
         * without the per-row dtype switch and per-element store switch ([64, 256] over
         * dim 0 inside an MLP's training step: 5.6 -> 2.9 µs) */
        bool float_sum = k == RK_SUM && (dt == CT_FLOAT32 || dt == CT_FLOAT64) && out->dtype == dt;
        bool float_mm = (k == RK_MAX || k == RK_MIN) && (dt == CT_FLOAT32 || dt == CT_FLOAT64) && out->dtype == dt;
        CT_PARALLEL_FOR_IF(big && nt > 1, for (int64_t j = 0; j < jobs; j++), {
            int64_t ob = j / ntile, c0 = (j % ntile) * COL_TILE, len = K - c0 < COL_TILE ? K - c0 : COL_TILE;
            int64_t m0 = ob * K + c0;
            const char *base = p.in + ct__reduce_out_offset(&p, m0) * es;
            double af[COL_TILE];
            int64_t ai[COL_TILE];
            ct_c128 ac[COL_TILE];
            racc ini = acc_init(k);
            char *mm = o + m0 * oes; /* float max/min accumulate in the output itself */
            if (float_sum) for (int64_t c = 0; c < len; c++) af[c] = 0;
            else if (float_mm) for (int64_t c = 0; c < len; c++) ct__store_f64(mm + c * oes, dt, ini.f);
            else for (int64_t c = 0; c < len; c++) { af[c] = ini.f; ai[c] = ini.i; ac[c] = ini.c; }
            int64_t idx[CT_MAX_DIMS] = {0};
            int64_t off = 0;
            const char *rows[4];
            int nrows = 0;
            for (int64_t r = 0; r < p.n_red; r++) {
                if (float_sum) { /* rows gathered in fours, added in order */
                    rows[nrows++] = base + off * es;
                    if (nrows == 4 || r == p.n_red - 1) {
                        if (nrows == 4) col_sum_float(dt, rows, 4, len, af);
                        else
                            for (int q = 0; q < nrows; q++) col_sum_float(dt, rows + q, 1, len, af);
                        nrows = 0;
                    }
                } else if (float_mm) {
                    col_minmax_float(dt, k == RK_MAX, base + off * es, len, mm);
                } else {
                    col_reduce(k, dt, base + off * es, len, af, ai, ac);
                }
                for (int d = p.nr - 1; d >= 0; d--) {
                    off += p.rstride[d];
                    if (++idx[d] < p.rsize[d]) break;
                    off -= p.rsize[d] * p.rstride[d];
                    idx[d] = 0;
                }
            }
            if (float_mm) continue; /* already in place */
            if (float_sum && dt == CT_FLOAT32)
                for (int64_t c = 0; c < len; c++) ((float *)o)[m0 + c] = (float)af[c];
            else if (float_sum)
                for (int64_t c = 0; c < len; c++) ((double *)o)[m0 + c] = af[c];
            else
                for (int64_t c = 0; c < len; c++) {
                    racc v = {af[c], ai[c], ac[c]};
                    acc_store(o + (m0 + c) * oes, out->dtype, k, cat, &v);
                }
        });
        return 0;
    }

    /* float sums of contiguous rows laid out one after the other (sum / mean over the last
     * dim): one tight loop over rows, no per-row visitor, accumulator struct or store switch */
    if (k == RK_SUM && (dt == CT_FLOAT32 || dt == CT_FLOAT64) && out->dtype == dt && p.nr == 1 &&
        p.rstride[0] == 1 && (p.nk == 0 || (p.nk == 1 && p.kstride[0] == p.rsize[0])) &&
        (p.n_out >= nt || p.n_red < CT_GRAIN || nt == 1)) {
        int64_t n = p.rsize[0];
        if (dt == CT_FLOAT32) {
            const float *xin = (const float *)p.in;
            float *y = (float *)o;
            CT_PARALLEL_FOR_IF(big && nt > 1, for (int64_t m = 0; m < p.n_out; m++),
                               y[m] = (float)sum_f32(xin + m * n, n););
        } else {
            const double *xin = (const double *)p.in;
            double *y = (double *)o;
            CT_PARALLEL_FOR_IF(big && nt > 1, for (int64_t m = 0; m < p.n_out; m++), y[m] = sum_f64(xin + m * n, n););
        }
        return 0;
    }
    if (p.n_out >= nt || p.n_red < CT_GRAIN || nt == 1) {
        CT_PARALLEL_FOR_IF(big && nt > 1, for (int64_t m = 0; m < p.n_out; m++), {
            rctx c = {.k = k, .dt = dt, .a = acc_init(k)};
            ct__reduce_visit_rows(&p, m, row_reduce, &c);
            acc_store(o + m * oes, out->dtype, k, cat, &c.a);
        });
        return 0;
    }
    /* few outputs, large blocks: static chunks per thread, partials merged in thread order */
    racc part[256];
    if (nt > 256) nt = 256;
    for (int64_t m = 0; m < p.n_out; m++) {
        const char *base = p.in + ct__reduce_out_offset(&p, m) * es;
        int64_t rows = 1;
        for (int d = 0; d < p.nr - 1; d++) rows *= p.rsize[d];
        int64_t inner = p.rsize[p.nr - 1], sb = p.rstride[p.nr - 1] * es;
        int used = nt;
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
#pragma omp single
            used = T;
            rctx c = {.k = k, .dt = dt, .a = acc_init(k)};
            if (rows == 1) {
                int64_t per = (inner + T - 1) / T, b = t * per, e = b + per < inner ? b + per : inner;
                if (b < e) row_reduce(base + b * sb, e - b, sb, &c);
            } else {
                int64_t per = (rows + T - 1) / T, b = t * per, e = b + per < rows ? b + per : rows;
                for (int64_t r = b; r < e; r++) {
                    int64_t rem = r, off = 0;
                    for (int d = p.nr - 2; d >= 0; d--) { off += (rem % p.rsize[d]) * p.rstride[d]; rem /= p.rsize[d]; }
                    row_reduce(base + off * es, inner, sb, &c);
                }
            }
            part[t] = c.a;
        }
        racc total = acc_init(k);
        for (int t = 0; t < used; t++) acc_merge(k, cat, &total, &part[t]);
        acc_store(o + m * oes, out->dtype, k, cat, &total);
    }
    return 0;
}

static int cpu_sum(const ct_kernel_args *a) { return simple_reduce(a, RK_SUM); }
static int cpu_nansum(const ct_kernel_args *a) { return simple_reduce(a, RK_NANSUM); }
static int cpu_prod(const ct_kernel_args *a) { return simple_reduce(a, RK_PROD); }
static int cpu_amax(const ct_kernel_args *a) { return simple_reduce(a, RK_MAX); }
static int cpu_amin(const ct_kernel_args *a) { return simple_reduce(a, RK_MIN); }
static int cpu_all(const ct_kernel_args *a) { return simple_reduce(a, RK_ALL); }
static int cpu_any(const ct_kernel_args *a) { return simple_reduce(a, RK_ANY); }

/* ---------------------------------------------------------------------------------- */
/* reductions along one dim: i[0] dim                                                  */
/* ---------------------------------------------------------------------------------- */
/* Plans lines along dim: p.kstride gives line starts, *stride the step (elements). */
static void line_plan(ct_reduce_plan *p, const ct_tensor *x, int dim, int64_t *len, int64_t *stride) {
    bool mask[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) mask[d] = d == dim;
    ct__reduce_plan(p, x, mask);
    *len = x->ndim ? x->sizes[dim] : 1;
    *stride = x->ndim ? x->strides[dim] : 0;
}

/* MAX_DIM / MIN_DIM: out[0] values, out[1] indices. ARGMAX / ARGMIN: out[0] indices.
 * First extreme wins; the first NaN wins over everything. */
/* Index of the first maximum (minimum) of a contiguous float row, the first NaN if there
 * is one: what the scalar scan below finds, in two vectorised passes (the extreme with a
 * NaN flag, then the first element equal to it, 64 at a time). Equal zeros of either
 * sign count as equal in both. */
#define FIRST_EXTREME(NAME, T, MAXF, MINF)                                                  \
    CT_LOOP_ATTR static int64_t NAME(const T *x, int64_t n, bool is_max) {                  \
        double r = is_max ? MAXF(x, n) : MINF(x, n);                                        \
        bool nan = r != r;                                                                  \
        T v = (T)r;                                                                         \
        for (int64_t b = 0; b < n; b += 64) {                                               \
            int64_t e = n - b < 64 ? n : b + 64;                                            \
            int hit = 0;                                                                    \
            if (nan) {                                                                      \
                _Pragma("omp simd reduction(| : hit)") for (int64_t i = b; i < e; i++) hit |= x[i] != x[i]; \
            } else {                                                                        \
                _Pragma("omp simd reduction(| : hit)") for (int64_t i = b; i < e; i++) hit |= x[i] == v; \
            }                                                                               \
            if (hit)                                                                        \
                for (int64_t i = b; i < e; i++)                                             \
                    if (nan ? x[i] != x[i] : x[i] == v) return i;                           \
        }                                                                                   \
        return 0;                                                                           \
    }
FIRST_EXTREME(first_extreme_f32, float, max_f32, min_f32)
FIRST_EXTREME(first_extreme_f64, double, max_f64, min_f64)

static int index_reduce(const ct_kernel_args *a, bool is_max, bool with_values) {
    const ct_tensor *x = a->in[0];
    ct_tensor *vals = with_values ? a->out[0] : NULL, *inds = with_values ? a->out[1] : a->out[0];
    int dim = (int)a->i[0];
    ct_reduce_plan p;
    int64_t n, st;
    line_plan(&p, x, dim, &n, &st);
    int64_t es = (int64_t)p.in_es;
    int64_t *oi = ct__data(inds);
    char *ov = vals ? ct__data(vals) : NULL;
    bool fl = ct_dtype_is_floating(x->dtype);
    ct_dtype dt = x->dtype;
    CT_PARALLEL_FOR_IF(p.n_out * n >= CT_GRAIN && !omp_in_parallel(), for (int64_t m = 0; m < p.n_out; m++), {
        const char *b = p.in + ct__reduce_out_offset(&p, m) * es;
        int64_t best = 0;
        if (fl && st == 1 && n > 1 && (dt == CT_FLOAT32 || dt == CT_FLOAT64)) {
            best = dt == CT_FLOAT32 ? first_extreme_f32((const float *)b, n, is_max)
                                    : first_extreme_f64((const double *)b, n, is_max);
        } else if (fl && st == 1 && n > 1 && ct__is_half(dt)) {
            /* widened 4096 at a time (exactly), each block's first extreme by the float32
             * passes; a later block wins only when strictly beyond, the first NaN at once:
             * the index of the scan below ([4096, 1024] bfloat16 max over the last dim on
             * two threads: 5.7 ms element by element, PyTorch 2.2) */
            float buf[4096];
            double bv = 0;
            best = -1;
            for (int64_t b0 = 0; b0 < n; b0 += 4096) {
                int64_t len = n - b0 < 4096 ? n - b0 : 4096;
                ct__half_widen(dt, buf, b + 2 * b0, len);
                int64_t i = first_extreme_f32(buf, len, is_max);
                double v = buf[i];
                if (v != v) {
                    best = b0 + i;
                    break;
                }
                if (best < 0 || (is_max ? v > bv : v < bv)) bv = v, best = b0 + i;
            }
        } else if (fl) {
            double bv = ct__load_f64(b, dt);
            if (dt == CT_FLOAT32 || dt == CT_FLOAT64) {
                for (int64_t i = 1; i < n && bv == bv; i++) {
                    double v = dt == CT_FLOAT32 ? *(const float *)(b + i * st * es) : *(const double *)(b + i * st * es);
                    if (v != v || (is_max ? v > bv : v < bv)) { bv = v; best = i; }
                }
            } else {
                for (int64_t i = 1; i < n && bv == bv; i++) {
                    double v = ct__load_f64(b + i * st * es, dt);
                    if (v != v || (is_max ? v > bv : v < bv)) { bv = v; best = i; }
                }
            }
        } else {
            int64_t bv = ct__load_i64(b, dt);
            for (int64_t i = 1; i < n; i++) {
                int64_t v = ct__load_i64(b + i * st * es, dt);
                if (is_max ? v > bv : v < bv) { bv = v; best = i; }
            }
        }
        oi[m] = best;
        if (ov) memcpy(ov + m * es, b + best * st * es, (size_t)es);
    });
    return 0;
}
static int cpu_max_dim(const ct_kernel_args *a) { return index_reduce(a, true, true); }
static int cpu_min_dim(const ct_kernel_args *a) { return index_reduce(a, false, true); }
static int cpu_argmax(const ct_kernel_args *a) { return index_reduce(a, true, false); }
static int cpu_argmin(const ct_kernel_args *a) { return index_reduce(a, false, false); }

/* ---- MEDIAN (i[1]: ignore NaN) and MODE along dim: out[0] values, out[1] indices ---- */
typedef struct {
    double f;
    int64_t i;
    int64_t idx;
} sel_item;

static int cmp_f(const void *pa, const void *pb) {
    const sel_item *a = pa, *b = pb;
    bool na = a->f != a->f, nb = b->f != b->f; /* NaN sorts last */
    if (na != nb) return na ? 1 : -1;
    if (!na && a->f != b->f) return a->f < b->f ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}
static int cmp_i(const void *pa, const void *pb) {
    const sel_item *a = pa, *b = pb;
    if (a->i != b->i) return a->i < b->i ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}
static bool item_eq(const sel_item *a, const sel_item *b, bool fl) {
    return fl ? (a->f == b->f || (a->f != a->f && b->f != b->f)) : a->i == b->i;
}

static int select_reduce(const ct_kernel_args *a, bool is_mode) {
    const ct_tensor *x = a->in[0];
    int dim = (int)a->i[0];
    bool ignore_nan = a->i[1] != 0;
    ct_reduce_plan p;
    int64_t n, st;
    line_plan(&p, x, dim, &n, &st);
    int64_t es = (int64_t)p.in_es;
    char *ov = ct__data(a->out[0]);
    int64_t *oi = ct__data(a->out[1]);
    bool fl = ct_dtype_is_floating(x->dtype);
    ct_dtype dt = x->dtype;
    int err = 0;
    CT_PARALLEL_IF(p.n_out * n >= CT_GRAIN && !omp_in_parallel(), {
        sel_item *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof(sel_item));
        if (!buf) {
            _Pragma("omp atomic write")
            err = 1;
        }
        _Pragma("omp for schedule(dynamic, 16)")
        for (int64_t m = 0; m < p.n_out; m++) {
            if (!buf) continue;
            const char *b = p.in + ct__reduce_out_offset(&p, m) * es;
            for (int64_t i = 0; i < n; i++) {
                buf[i].idx = i;
                if (fl) buf[i].f = ct__load_f64(b + i * st * es, dt);
                else buf[i].i = ct__load_i64(b + i * st * es, dt);
            }
            int64_t pick = 0;
            if (!is_mode) {
                int64_t first_nan = -1, nnan = 0;
                if (fl)
                    for (int64_t i = 0; i < n; i++)
                        if (buf[i].f != buf[i].f) { if (first_nan < 0) first_nan = i; nnan++; }
                if (first_nan >= 0 && !ignore_nan) { oi[m] = first_nan; memcpy(ov + m * es, b + first_nan * st * es, (size_t)es); continue; }
                qsort(buf, (size_t)n, sizeof(sel_item), fl ? cmp_f : cmp_i);
                int64_t cnt = n - nnan;
                pick = cnt > 0 ? (cnt - 1) / 2 : 0;
                oi[m] = buf[pick].idx;
            } else {
                qsort(buf, (size_t)n, sizeof(sel_item), fl ? cmp_f : cmp_i);
                int64_t best_cnt = 0, best_last = 0;
                for (int64_t i = 0; i < n;) {
                    int64_t j = i + 1;
                    while (j < n && item_eq(&buf[j], &buf[i], fl)) j++;
                    if (j - i > best_cnt) { best_cnt = j - i; best_last = j - 1; }
                    i = j;
                }
                pick = best_last;
                oi[m] = buf[pick].idx;
            }
            memcpy(ov + m * es, b + buf[pick].idx * st * es, (size_t)es);
        }
        free(buf);
    });
    if (err) return ct__errs(CT_ERR_OOM, "%s: out of memory", is_mode ? "mode" : "median");
    return 0;
}
static int cpu_median(const ct_kernel_args *a) { return select_reduce(a, false); }
static int cpu_mode(const ct_kernel_args *a) { return select_reduce(a, true); }

/* Variance of a contiguous float tensor viewed as [A, B, D] over A and D, for each b
 * (trailing dims: A = 1; batch norm: [N, C, H*W]). Two passes in double: the mean, then
 * the squared deviations corrected by the mean residual (as the composite path). */
/* The two passes over one contiguous run of x, in double: its sum; the sums of
 * d = x - m and of d * d (inlined into each ISA clone of their callers). */
#define VAR_RUN(T, SFX)                                                                    \
    __attribute__((always_inline)) static inline double var_run_sum_##SFX(const T *x, int64_t n) { \
        double s = 0;                                                                      \
        _Pragma("omp simd reduction(+:s)")                                                 \
        for (int64_t j = 0; j < n; j++) s += x[j];                                         \
        return s;                                                                          \
    }                                                                                      \
    __attribute__((always_inline)) static inline void var_run_dev_##SFX(const T *x, int64_t n, double m, \
                                                                       double *r_o, double *q_o) { \
        double r = 0, q = 0;                                                               \
        _Pragma("omp simd reduction(+:r, q)")                                              \
        for (int64_t j = 0; j < n; j++) {                                                  \
            double d = (double)x[j] - m;                                                   \
            r += d, q += d * d;                                                            \
        }                                                                                  \
        *r_o += r, *q_o += q;                                                              \
    }
VAR_RUN(float, f32)
VAR_RUN(double, f64)
#define VAR_GRID(NAME, T, SFX)                                                             \
    CT_LOOP_ATTR static double NAME(const T *x, int64_t A, int64_t B, int64_t D, int64_t b, double dof) { \
        double s = 0, r = 0, q = 0;                                                        \
        for (int64_t a = 0; a < A; a++) s += var_run_sum_##SFX(x + (a * B + b) * D, D);    \
        double n = (double)A * (double)D, m = s / n;                                       \
        for (int64_t a = 0; a < A; a++) var_run_dev_##SFX(x + (a * B + b) * D, D, m, &r, &q); \
        return (q - r * r / n) / dof;                                                      \
    }
VAR_GRID(var_grid_f32, float, f32)
VAR_GRID(var_grid_f64, double, f64)
/* the uncentred form: sum_{a,d} x[a,b,d]^2 (the 2-norm's square) in four vector
 * accumulators of VT, each lane taking at most 32 squares before the accumulators are
 * added into a double (float32: a lane's float sum of at most 32 squares, then double;
 * the squares in float as PyTorch's float32 norm, which overflows to inf and underflows
 * to 0 where they do;
 * a single double accumulator made every add wait for the last, and converting each
 * float to double cost as much again: the 2-norm of [4096, 1024]'s rows took 2.5x the
 * time of their sum, now 1.25x) */
#define SUMSQ_GRID(NAME, T, VT)                                                            \
    CT_LOOP_ATTR static double NAME(const T *x, int64_t A, int64_t B, int64_t D, int64_t b, double dof) { \
        enum { L = sizeof(VT) / sizeof(T) };                                               \
        double q = 0;                                                                      \
        for (int64_t a = 0; a < A; a++) {                                                  \
            const T *row = x + (a * B + b) * D;                                            \
            int64_t j = 0;                                                                 \
            while (j + 4 * L <= D) {                                                       \
                VT q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};                                 \
                int64_t end = j + 32 * 4 * L < D ? j + 32 * 4 * L : D;                     \
                for (; j + 4 * L <= end; j += 4 * L) {                                     \
                    VT v0, v1, v2, v3;                                                     \
                    memcpy(&v0, row + j, sizeof v0), memcpy(&v1, row + j + L, sizeof v1);  \
                    memcpy(&v2, row + j + 2 * L, sizeof v2), memcpy(&v3, row + j + 3 * L, sizeof v3); \
                    q0 += v0 * v0, q1 += v1 * v1, q2 += v2 * v2, q3 += v3 * v3;            \
                }                                                                          \
                VT s4 = (q0 + q1) + (q2 + q3);                                             \
                for (int k = 0; k < L; k++) q += (double)s4[k];                            \
            }                                                                              \
            for (; j < D; j++) q += (double)(row[j] * row[j]); /* squared in T, as above */ \
        }                                                                                  \
        return q / dof;                                                                    \
    }
SUMSQ_GRID(sumsq_grid_f32, float, ct_v8f)
SUMSQ_GRID(sumsq_grid_f64, double, ct_v4d)

/* One output over a whole contiguous tensor (var / std over every dim): the two passes
 * of VAR_GRID split between threads, each pass's per-thread sums added in thread order
 * (the same result for the same thread count). Single-threaded, var of [4096, 1024]
 * took 2.9 ms (PyTorch 3.1). */
#define VAR_FLAT(NAME, T, SFX)                                                             \
    CT_LOOP_ATTR static void NAME##_sum(const T *x, int64_t n, double *s_o) { *s_o = var_run_sum_##SFX(x, n); } \
    CT_LOOP_ATTR static void NAME##_dev(const T *x, int64_t n, double m, double *r_o, double *q_o) { \
        *r_o = *q_o = 0;                                                                   \
        var_run_dev_##SFX(x, n, m, r_o, q_o);                                              \
    }
VAR_FLAT(var_flat_f32, float, f32)
VAR_FLAT(var_flat_f64, double, f64)

static double var_flat(const void *x, bool f32, int64_t n, double dof) {
    int nt = ct__num_threads();
    if (nt > 64) nt = 64;
    double part[64][2], s = 0, r = 0, q = 0;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t i0 = n * t / T, i1 = n * (t + 1) / T;
        if (f32) var_flat_f32_sum((const float *)x + i0, i1 - i0, &part[t][0]);
        else var_flat_f64_sum((const double *)x + i0, i1 - i0, &part[t][0]);
#pragma omp barrier
#pragma omp single
        {
            for (int k = 0; k < T; k++) s += part[k][0];
        }
        double m = s / (double)n; /* the single's implicit barrier published s */
        if (f32) var_flat_f32_dev((const float *)x + i0, i1 - i0, m, &part[t][0], &part[t][1]);
        else var_flat_f64_dev((const double *)x + i0, i1 - i0, m, &part[t][0], &part[t][1]);
#pragma omp barrier
#pragma omp single
        {
            for (int k = 0; k < T; k++) r += part[k][0], q += part[k][1];
        }
    }
    return (q - r * r / (double)n) / dof;
}

static int cpu_var_rows(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    ct_tensor *out = a->out[0];
    int64_t A = a->i[0], B = a->i[1], D = a->i[2];
    bool take_sqrt = a->i[3] != 0, centred = a->i[4] == 0;
    double dof = a->d[0];
    const char *xd = ct__data(x);
    char *od = ct__data(out);
    bool f32 = x->dtype == CT_FLOAT32;
    if (B == 1 && centred && A * D >= CT_GRAIN && ct__num_threads() > 1 && !omp_in_parallel()) {
        double v = var_flat(xd, f32, A * D, dof);
        if (v < 0) v = 0;
        if (take_sqrt) v = sqrt(v);
        if (f32) *(float *)od = (float)v;
        else *(double *)od = v;
        return 0;
    }
    CT_PARALLEL_FOR_IF(B > 1 && x->numel >= CT_GRAIN, for (int64_t b = 0; b < B; b++), {
        double v = centred ? (f32 ? var_grid_f32((const float *)xd, A, B, D, b, dof)
                                  : var_grid_f64((const double *)xd, A, B, D, b, dof))
                           : (f32 ? sumsq_grid_f32((const float *)xd, A, B, D, b, dof)
                                  : sumsq_grid_f64((const double *)xd, A, B, D, b, dof));
        if (v < 0) v = 0; /* rounding of the correction */
        if (take_sqrt) v = sqrt(v);
        if (f32) ((float *)od)[b] = (float)v;
        else ((double *)od)[b] = v;
    });
    return 0;
}

void ct_cpu_register_reduce(ct_kernel_fn *k) {
    sum_isa_init();
    k[CT_OP_VAR_ROWS] = cpu_var_rows;
    k[CT_OP_SUM] = cpu_sum;
    k[CT_OP_NANSUM] = cpu_nansum;
    k[CT_OP_PROD] = cpu_prod;
    k[CT_OP_AMAX] = cpu_amax;
    k[CT_OP_AMIN] = cpu_amin;
    k[CT_OP_ALL] = cpu_all;
    k[CT_OP_ANY] = cpu_any;
    k[CT_OP_MAX_DIM] = cpu_max_dim;
    k[CT_OP_MIN_DIM] = cpu_min_dim;
    k[CT_OP_ARGMAX] = cpu_argmax;
    k[CT_OP_ARGMIN] = cpu_argmin;
    k[CT_OP_MEDIAN] = cpu_median;
    k[CT_OP_MODE] = cpu_mode;
    ct__cpu_register_scan(k);
}
