/* CPU kernels: ordering (stable sort along a dim, searchsorted).
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

/* SORT: out[0] values, out[1] int64 indices (same shape as in[0]); i[0] dim, i[1] descending. */
static int k_sort(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    ct_tensor *vo = a->out[0], *io = a->out[1];
    int dim = (int)a->i[0];
    bool desc = a->i[1] != 0, flt = ct_dtype_is_floating(x->dtype);
    if (x->numel == 0) return 0;
    int64_t len = x->ndim ? x->sizes[dim] : 1, slices = x->numel / len;
    int64_t xsd = x->ndim ? x->strides[dim] : 0, vsd = x->ndim ? vo->strides[dim] : 0, isd = x->ndim ? io->strides[dim] : 0;
    size_t es = ct_dtype_size(x->dtype);
    const char *xp = ct__data(x);
    char *vp = ct__data(vo);
    int64_t *ip = ct__data(io);
    bool oom = false;
#pragma omp parallel if (x->numel >= CT_GRAIN && slices > 1)
    {
        void *buf = malloc(2 * sizeof(kv_f) * (size_t)len);
        if (!buf) {
#pragma omp atomic write
            oom = true;
        }
#pragma omp for
        for (int64_t s = 0; s < slices; s++) {
            if (!buf) continue;
            int64_t ox, oo;
            slice_offsets(x, vo, dim, s, &ox, &oo);
            int64_t dummy, oi;
            slice_offsets(x, io, dim, s, &dummy, &oi);
            const char *xs = xp + ox * (int64_t)es;
            int64_t *idx = ip + oi;
            char *vs = vp + oo * (int64_t)es;
            if (flt) {
                kv_f *v = buf, *t = v + len;
                for (int64_t j = 0; j < len; j++) v[j] = (kv_f){ct__load_f64(xs + j * xsd * (int64_t)es, x->dtype), j};
                if (desc) sort_f_desc(v, t, len); else sort_f_asc(v, t, len);
                for (int64_t j = 0; j < len; j++) idx[j * isd] = v[j].i;
            } else {
                kv_i *v = buf, *t = v + len;
                for (int64_t j = 0; j < len; j++) v[j] = (kv_i){ct__load_i64(xs + j * xsd * (int64_t)es, x->dtype), j};
                if (desc) sort_i_desc(v, t, len); else sort_i_asc(v, t, len);
                for (int64_t j = 0; j < len; j++) idx[j * isd] = v[j].i;
            }
            for (int64_t j = 0; j < len; j++) memcpy(vs + j * vsd * (int64_t)es, xs + idx[j * isd] * xsd * (int64_t)es, es);
        }
        free(buf);
    }
    return oom ? ct__errs(CT_ERR_OOM, "sort: out of memory") : 0;
}

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
#pragma omp parallel for if (n >= CT_GRAIN / 8)
    for (int64_t e = 0; e < n; e++) {
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
    }
    return 0;
}

void ct_cpu_register_sort(ct_kernel_fn *k) {
    k[CT_OP_SORT] = k_sort;
    k[CT_OP_SEARCHSORTED] = k_searchsorted;
}
