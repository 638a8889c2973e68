/* Elementwise iteration over broadcast, strided operands. */
#include <omp.h>

#include "core/iter.h"

int ct__broadcast_shapes(const char *op, int na, const int64_t *a, int nb, const int64_t *b, int64_t *out) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = na - n + i, ib = nb - n + i;
        int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            ct__errs(CT_ERR_SHAPE,
                     "%s: The size of tensor a (%lld) must match the size of tensor b (%lld) at non-singleton "
                     "dimension %d (shapes %s and %s)",
                     op, (long long)sa, (long long)sb, i, CT_SIZESSTR(na, a), CT_SIZESSTR(nb, b));
            return -1;
        }
        out[i] = sa == 1 ? sb : sa;
    }
    return n;
}

static int iter_build(ct_iter *it, int n, int n_out, const ct_tensor *const *ops, bool any_order);

int ct__iter_build(ct_iter *it, int n, int n_out, const ct_tensor *const *ops) {
    return iter_build(it, n, n_out, ops, false);
}

int ct__iter_build_any_order(ct_iter *it, int n, int n_out, const ct_tensor *const *ops) {
    return iter_build(it, n, n_out, ops, true);
}

static int iter_build(ct_iter *it, int n, int n_out, const ct_tensor *const *ops, bool any_order) {
    const ct_tensor *o = ops[0];
    int nd = o->ndim;
    if (n > CT_ITER_MAX_OPS) return ct__errs(CT_ERR_ARG, "internal: too many operands");
    it->n_ops = n;
    it->numel = o->numel;
    /* strides aligned to the output shape, in bytes, 0 where broadcast */
    int64_t shape[CT_MAX_DIMS];
    for (int d = 0; d < nd; d++) shape[d] = o->sizes[d];
    for (int k = 0; k < n; k++) {
        const ct_tensor *t = ops[k];
        int64_t es = (int64_t)ct_dtype_size(t->dtype);
        it->data[k] = (char *)t->storage->data + t->offset * es;
        int off = nd - t->ndim;
        if (off < 0) return ct__errs(CT_ERR_SHAPE, "internal: operand rank %d exceeds output rank %d", t->ndim, nd);
        for (int d = 0; d < nd; d++) {
            int td = d - off;
            if (td < 0 || t->sizes[td] == 1) it->strides[k][d] = 0;
            else if (t->sizes[td] != shape[d])
                return ct__errs(CT_ERR_SHAPE, "internal: operand %d of shape %s does not broadcast to %s", k,
                                CT_SHAPESTR(t), CT_SIZESSTR(nd, shape));
            else it->strides[k][d] = t->strides[td] * es;
        }
        CT_UNUSED(n_out);
    }
    /* any order: the dims sorted by the operands' strides (the output's first, as
     * PyTorch's TensorIterator), innermost last, so that a transposed or permuted output
     * is walked through memory in order rather than a stride apart */
    if (any_order && nd > 1) {
        int64_t perm[CT_MAX_DIMS], sh[CT_MAX_DIMS], st[CT_ITER_MAX_OPS][CT_MAX_DIMS];
        const int64_t *sp[CT_ITER_MAX_OPS] = {0};
        for (int k = 0; k < n; k++) sp[k] = it->strides[k];
        ct__dim_order_n(nd, shape, n, sp, perm); /* innermost first */
        for (int i = 0; i < nd; i++) {
            int64_t d = perm[nd - 1 - i];
            sh[i] = shape[d];
            for (int k = 0; k < n; k++) st[k][i] = it->strides[k][d];
        }
        for (int i = 0; i < nd; i++) {
            shape[i] = sh[i];
            for (int k = 0; k < n; k++) it->strides[k][i] = st[k][i];
        }
    }
    /* drop size-1 dims, then merge adjacent dims that are contiguous for every operand */
    int m = 0;
    for (int d = 0; d < nd; d++) {
        if (shape[d] == 1) continue;
        if (m > 0) {
            bool can = true;
            for (int k = 0; k < n && can; k++)
                can = it->strides[k][m - 1] == it->strides[k][d] * shape[d];
            if (can) {
                it->shape[m - 1] *= shape[d];
                for (int k = 0; k < n; k++) it->strides[k][m - 1] = it->strides[k][d];
                continue;
            }
        }
        it->shape[m] = shape[d];
        for (int k = 0; k < n; k++) it->strides[k][m] = it->strides[k][d];
        m++;
    }
    if (m == 0) { /* scalar (or all size-1) */
        it->shape[0] = 1;
        for (int k = 0; k < n; k++) it->strides[k][0] = 0;
        m = 1;
    }
    it->ndim = m;
    return 0;
}

bool ct__iter_is_contiguous(const ct_iter *it) { return it->ndim == 1; }

/* Runs linear elements [begin, end). */
static void run_range(const ct_iter *it, ct_loop_fn loop, void *ctx, int64_t begin, int64_t end) {
    int nd = it->ndim, n = it->n_ops;
    int64_t idx[CT_MAX_DIMS];
    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rem % it->shape[d];
        rem /= it->shape[d];
    }
    char *base[CT_ITER_MAX_OPS], *ptr[CT_ITER_MAX_OPS]; /* base: start of the current row */
    int64_t inner[CT_ITER_MAX_OPS];
    for (int k = 0; k < n; k++) {
        int64_t off = 0;
        for (int d = 0; d < nd - 1; d++) off += idx[d] * it->strides[k][d];
        base[k] = it->data[k] + off;
        inner[k] = it->strides[k][nd - 1];
    }
    int64_t row = it->shape[nd - 1], i0 = idx[nd - 1], pos = begin;
    while (pos < end) {
        int64_t cnt = row - i0 < end - pos ? row - i0 : end - pos;
        for (int k = 0; k < n; k++) ptr[k] = base[k] + i0 * inner[k];
        loop(ptr, inner, cnt, ctx);
        pos += cnt;
        i0 = 0;
        for (int d = nd - 2; d >= 0; d--) {
            for (int k = 0; k < n; k++) base[k] += it->strides[k][d];
            if (++idx[d] < it->shape[d]) break;
            for (int k = 0; k < n; k++) base[k] -= it->shape[d] * it->strides[k][d];
            idx[d] = 0;
        }
    }
}

void ct__iter_run(const ct_iter *it, ct_loop_fn loop, void *ctx, int64_t grain) {
    int64_t total = it->numel;
    if (total == 0) return;
    if (grain <= 0) grain = CT_GRAIN;
    int nt = ct__num_threads();
    if (total < 2 * grain || nt <= 1 || omp_in_parallel()) {
        run_range(it, loop, ctx, 0, total);
        return;
    }
    int64_t chunks = total / grain;
    if (chunks > nt) chunks = nt;
#pragma omp parallel num_threads((int)chunks)
    {
        int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        int64_t per = (total + nth - 1) / nth;
        int64_t b = (int64_t)tid * per, e = b + per < total ? b + per : total;
        if (b < e) run_range(it, loop, ctx, b, e);
    }
}
