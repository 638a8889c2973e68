/* CPU kernels: ordering (stable sort along a dim, topk, searchsorted).
 * Keys are compared as double (floating dtypes, exact) or int64 (integers, bool);
 * NaN sorts as the largest value, as in PyTorch. */
#include <omp.h>

#include "cpu/loops.h"

void ct_cpu_register_sort(ct_kernel_fn *k);

typedef struct { double k; int64_t i; } kv_f;
typedef struct { int64_t k; int64_t i; } kv_i;

/* a strictly before b? */
#define F_ASC(a, b) (!isnan((a).k) && (isnan((b).k) || (a).k < (b).k))
#define F_DESC(a, b) (!isnan((b).k) && (isnan((a).k) || (a).k > (b).k))
#define I_ASC(a, b) ((a).k < (b).k)
#define I_DESC(a, b) ((a).k > (b).k)

/* Stable bottom-up merge sort of v[0..n) using tmp[0..n). Result in v. */
#define MERGESORT(name, T, BEFORE)                                                        \
    static void name(T *v, T *tmp, int64_t n) {                                           \
        for (int64_t i = 0; i + 1 < n; i += 2) /* runs of 2 */                            \
            if (BEFORE(v[i + 1], v[i])) { T t = v[i]; v[i] = v[i + 1]; v[i + 1] = t; }    \
        T *src = v, *dst = tmp;                                                           \
        for (int64_t w = 2; w < n; w *= 2) {                                              \
            for (int64_t lo = 0; lo < n; lo += 2 * w) {                                   \
                int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n; \
                int64_t i = lo, j = mid, o = lo;                                          \
                while (i < mid && j < hi) dst[o++] = BEFORE(src[j], src[i]) ? src[j++] : src[i++]; \
                while (i < mid) dst[o++] = src[i++];                                      \
                while (j < hi) dst[o++] = src[j++];                                       \
            }                                                                             \
            T *t = src; src = dst; dst = t;                                               \
        }                                                                                 \
        if (src != v) memcpy(v, src, sizeof(T) * (size_t)n);                              \
    }
MERGESORT(sort_f_asc, kv_f, F_ASC)
MERGESORT(sort_f_desc, kv_f, F_DESC)
MERGESORT(sort_i_asc, kv_i, I_ASC)
MERGESORT(sort_i_desc, kv_i, I_DESC)

/* Byte offsets of slice o (over every dim but dim) in x and out. */
static void slice_offsets(const ct_tensor *x, const ct_tensor *out, int dim, int64_t o, int64_t *ox, int64_t *oo) {
    int64_t a = 0, b = 0;
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (d == dim) continue;
        int64_t q = o % x->sizes[d];
        o /= x->sizes[d];
        a += q * x->strides[d];
        b += q * out->strides[d];
    }
    *ox = a, *oo = b;
}

/* ---- topk: the first k of the stable sort without sorting everything ----
 * A heap of the k best seen so far (its root the one that ranks last), then those k
 * sorted. Ranks are the stable sort's: by key, ties by index, so the result is the
 * sort's first k exactly. */
#define RANKS_BEFORE(BEFORE, a, b) (BEFORE(a, b) || (!BEFORE(b, a) && (a).i < (b).i))
#define F_ASC_T(a, b) RANKS_BEFORE(F_ASC, a, b)
#define F_DESC_T(a, b) RANKS_BEFORE(F_DESC, a, b)
#define I_ASC_T(a, b) RANKS_BEFORE(I_ASC, a, b)
#define I_DESC_T(a, b) RANKS_BEFORE(I_DESC, a, b)
MERGESORT(sort_f_asc_t, kv_f, F_ASC_T)
MERGESORT(sort_f_desc_t, kv_f, F_DESC_T)
MERGESORT(sort_i_asc_t, kv_i, I_ASC_T)
MERGESORT(sort_i_desc_t, kv_i, I_DESC_T)

/* The heap of the k best so far, its root the one that ranks last: _sift moves entry p
 * down to its place, _heapify orders h[0..k), _finish sorts it in rank order (tmp: k
 * entries). */
#define TOPK_SELECT(name, T, BEFORE, SORT)                                                \
    static void name##_sift(T *v, int64_t k, int64_t p) {                                 \
        for (;;) {                                                                        \
            int64_t c = 2 * p + 1;                                                        \
            if (c >= k) return;                                                           \
            if (c + 1 < k && BEFORE(v[c], v[c + 1])) c++; /* the child ranking later */  \
            if (!BEFORE(v[p], v[c])) return;                                              \
            T t = v[p]; v[p] = v[c]; v[c] = t;                                            \
            p = c;                                                                        \
        }                                                                                 \
    }                                                                                     \
    static void name##_heapify(T *v, int64_t k) {                                         \
        for (int64_t h = k / 2 - 1; h >= 0; h--) name##_sift(v, k, h);                    \
    }                                                                                     \
    static void name##_finish(T *v, T *tmp, int64_t k) { SORT(v, tmp, k); }
TOPK_SELECT(topk_f_asc, kv_f, F_ASC_T, sort_f_asc_t)
TOPK_SELECT(topk_f_desc, kv_f, F_DESC_T, sort_f_desc_t)
TOPK_SELECT(topk_i_asc, kv_i, I_ASC_T, sort_i_asc_t)
TOPK_SELECT(topk_i_desc, kv_i, I_DESC_T, sort_i_desc_t)

/* The heap pass over one row: h (k entries) takes the row's first k, then each later
 * element that ranks before the root replaces it. Later elements have larger indices,
 * so one equal to the root ranks after it and stays out: the test is a strict compare
 * on the key (NaN the largest). LOAD(j) reads element j. */
#define TOPK_SCAN(h, t, len, k, LOAD, KT, KV, ENTERS, SELECT_SORT)                        \
    do {                                                                                  \
        for (int64_t j_ = 0; j_ < (k); j_++) (h)[j_] = (KV){(KT)(LOAD(j_)), j_};          \
        SELECT_SORT##_heapify(h, k);                                                      \
        KT thr_ = (h)[0].k;                                                               \
        for (int64_t j_ = (k); j_ < (len); j_++) {                                        \
            KT key_ = (KT)(LOAD(j_));                                                     \
            if (ENTERS(key_, thr_)) {                                                     \
                (h)[0] = (KV){key_, j_};                                                  \
                SELECT_SORT##_sift(h, k, 0);                                              \
                thr_ = (h)[0].k;                                                          \
            }                                                                             \
        }                                                                                 \
        SELECT_SORT##_finish(h, t, k);                                                    \
    } while (0)
#define ENTERS_F_DESC(key, thr) ((key) > (thr) || ((key) != (key) && (thr) == (thr)))
#define ENTERS_F_ASC(key, thr) ((key) < (thr) || ((thr) != (thr) && (key) == (key)))
#define ENTERS_I_DESC(key, thr) ((key) > (thr))
#define ENTERS_I_ASC(key, thr) ((key) < (thr))

/* The first k of each slice's stable sort along dim into out[0] (values) and out[1]
 * (int64 indices), both in[0]'s shape with k along dim; descending or ascending. Up to
 * len / 8 through the heap, above it the whole slice sorted. */
static int sort_slices(const ct_kernel_args *a, int dim, bool desc, int64_t k) {
    const ct_tensor *x = a->in[0];
    ct_tensor *vo = a->out[0], *io = a->out[1];
    bool flt = ct_dtype_is_floating(x->dtype);
    if (vo->numel == 0) return 0;
    int64_t len = x->ndim ? x->sizes[dim] : 1, slices = x->numel / len;
    int64_t xsd = x->ndim ? x->strides[dim] : 0, vsd = x->ndim ? vo->strides[dim] : 0,
            isd = x->ndim ? io->strides[dim] : 0;
    bool heap = k * 8 <= len;
    ct_dtype dt = x->dtype;
    size_t es = ct_dtype_size(dt);
    const char *xp = ct__data(x);
    char *vp = ct__data(vo);
    int64_t *ip = ct__data(io);
    bool oom = false;
    /* element loaders of one slice (xs, its stride xsd) */
#define LOAD_F32(j) (((const float *)xs)[(j) * xsd])
#define LOAD_F64(j) (((const double *)xs)[(j) * xsd])
#define LOAD_ANYF(j) ct__load_f64(xs + (j) * xsd * (int64_t)es, dt)
#define LOAD_ANYI(j) ct__load_i64(xs + (j) * xsd * (int64_t)es, dt)
    CT_PARALLEL_IF(x->numel >= CT_GRAIN && slices > 1, {
        void *buf = malloc(sizeof(kv_f) * (size_t)(heap ? 2 * k : 2 * len));
        if (!buf) {
            _Pragma("omp atomic write")
            oom = true;
        }
        _Pragma("omp for")
        for (int64_t s = 0; s < slices; s++) {
            if (!buf) continue;
            int64_t ox, oo, dummy, oi;
            slice_offsets(x, vo, dim, s, &ox, &oo);
            slice_offsets(x, io, dim, s, &dummy, &oi);
            const char *xs = xp + ox * (int64_t)es;
            int64_t *idx = ip + oi;
            char *vs = vp + oo * (int64_t)es;
            if (flt) {
                kv_f *v = buf, *t = v + (heap ? k : len);
                if (!heap) {
                    for (int64_t j = 0; j < len; j++) v[j] = (kv_f){LOAD_ANYF(j), j};
                    desc ? sort_f_desc(v, t, len) : sort_f_asc(v, t, len);
                } else if (dt == CT_FLOAT32) {
                    if (desc) TOPK_SCAN(v, t, len, k, LOAD_F32, double, kv_f, ENTERS_F_DESC, topk_f_desc);
                    else TOPK_SCAN(v, t, len, k, LOAD_F32, double, kv_f, ENTERS_F_ASC, topk_f_asc);
                } else if (dt == CT_FLOAT64) {
                    if (desc) TOPK_SCAN(v, t, len, k, LOAD_F64, double, kv_f, ENTERS_F_DESC, topk_f_desc);
                    else TOPK_SCAN(v, t, len, k, LOAD_F64, double, kv_f, ENTERS_F_ASC, topk_f_asc);
                } else {
                    if (desc) TOPK_SCAN(v, t, len, k, LOAD_ANYF, double, kv_f, ENTERS_F_DESC, topk_f_desc);
                    else TOPK_SCAN(v, t, len, k, LOAD_ANYF, double, kv_f, ENTERS_F_ASC, topk_f_asc);
                }
                for (int64_t j = 0; j < k; j++) idx[j * isd] = v[j].i;
            } else {
                kv_i *v = buf, *t = v + (heap ? k : len);
                if (!heap) {
                    for (int64_t j = 0; j < len; j++) v[j] = (kv_i){LOAD_ANYI(j), j};
                    desc ? sort_i_desc(v, t, len) : sort_i_asc(v, t, len);
                } else if (desc) {
                    TOPK_SCAN(v, t, len, k, LOAD_ANYI, int64_t, kv_i, ENTERS_I_DESC, topk_i_desc);
                } else {
                    TOPK_SCAN(v, t, len, k, LOAD_ANYI, int64_t, kv_i, ENTERS_I_ASC, topk_i_asc);
                }
                for (int64_t j = 0; j < k; j++) idx[j * isd] = v[j].i;
            }
            for (int64_t j = 0; j < k; j++) memcpy(vs + j * vsd * (int64_t)es, xs + idx[j * isd] * xsd * (int64_t)es, es);
        }
        free(buf);
    });
#undef LOAD_F32
#undef LOAD_F64
#undef LOAD_ANYF
#undef LOAD_ANYI
    return oom ? ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op)) : 0;
}

/* SORT: out[0] values, out[1] int64 indices (same shape as in[0]); i[0] dim, i[1] descending. */
static int k_sort(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    return sort_slices(a, (int)a->i[0], a->i[1] != 0, x->ndim ? x->sizes[a->i[0]] : 1);
}
/* TOPK: out[0] values, out[1] int64 indices (in[0]'s shape with k along dim); i[0] dim,
 * i[1] largest, i[2] k (0 < k <= the dim's size, in[0] at least 1-D). */
static int k_topk(const ct_kernel_args *a) { return sort_slices(a, (int)a->i[0], a->i[1] != 0, a->i[2]); }

/* SEARCHSORTED: in[0] sorted rows [..., L] (contiguous), in[1] values (contiguous, same
 * dtype); out[0] int64 or int32 of the values' shape; i[0] right, i[1] in[0] is 1-D. */
static int k_searchsorted(const ct_kernel_args *a) {
    const ct_tensor *seq = a->in[0], *val = a->in[1];
    ct_tensor *out = a->out[0];
    bool right = a->i[0] != 0, one = a->i[1] != 0, flt = ct_dtype_is_floating(seq->dtype);
    int64_t L = seq->ndim ? seq->sizes[seq->ndim - 1] : 1;
    int64_t M = val->ndim ? val->sizes[val->ndim - 1] : 1;
    int64_t n = val->numel;
    size_t es = ct_dtype_size(seq->dtype);
    const char *sp = ct__data(seq), *vp = ct__data(val);
    char *op = ct__data(out);
    bool o32 = out->dtype == CT_INT32;
    CT_PARALLEL_FOR_IF(n >= CT_GRAIN / 8, for (int64_t e = 0; e < n; e++), {
        const char *row = sp + (one ? 0 : (e / M) * L) * (int64_t)es;
        int64_t lo = 0, hi = L;
        if (flt) {
            double v = ct__load_f64(vp + e * (int64_t)es, val->dtype);
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                double s = ct__load_f64(row + mid * (int64_t)es, seq->dtype);
                bool go_right = right ? !(v < s) : (s < v);
                if (go_right) lo = mid + 1; else hi = mid;
            }
        } else {
            int64_t v = ct__load_i64(vp + e * (int64_t)es, val->dtype);
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                int64_t s = ct__load_i64(row + mid * (int64_t)es, seq->dtype);
                bool go_right = right ? !(v < s) : (s < v);
                if (go_right) lo = mid + 1; else hi = mid;
            }
        }
        if (o32) ((int32_t *)op)[e] = (int32_t)lo;
        else ((int64_t *)op)[e] = lo;
    });
    return 0;
}

void ct_cpu_register_sort(ct_kernel_fn *k) {
    k[CT_OP_SORT] = k_sort;
    k[CT_OP_TOPK] = k_topk;
    k[CT_OP_SEARCHSORTED] = k_searchsorted;
}
