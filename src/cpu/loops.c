/* Runs a per-dtype elementwise loop over a kernel call's operands. */
#include "cpu/loops.h"

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

void ct__stream_copy(void *dst, const void *src, size_t n) {
#if defined(__x86_64__)
    char *d = dst;
    const char *s = src;
    size_t head = (16 - ((uintptr_t)d & 15)) & 15;
    if (head > n) head = n;
    memcpy(d, s, head);
    size_t j = head;
    for (; j + 16 <= n; j += 16) _mm_stream_ps((float *)(d + j), _mm_loadu_ps((const float *)(s + j)));
    memcpy(d + j, s + j, n - j);
#else
    memcpy(dst, src, n);
#endif
}

void ct__stream_fence(void) {
#if defined(__x86_64__)
    _mm_sfence();
#endif
}

int ct__cpu_run_loop(const ct_kernel_args *a, ct_loop_fn const *loops, const double *params) {
    const ct_tensor *ops[CT_ITER_MAX_OPS];
    int n = 0;
    for (int i = 0; i < a->n_out; i++) ops[n++] = a->out[i];
    for (int i = 0; i < a->n_in; i++) ops[n++] = a->in[i];
    ct_dtype dt = a->n_in ? a->in[0]->dtype : a->out[0]->dtype;
    ct_loop_fn fn = loops[dt];
    if (!fn) return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(dt));
    int64_t numel = a->out[0]->numel;
    if (numel == 0) return 0;
    if (numel < CT_GRAIN) { /* small and dense, no broadcasting: one call, no iterator */
        char *ptr[CT_ITER_MAX_OPS];
        int64_t st[CT_ITER_MAX_OPS];
        bool flat = true;
        for (int k = 0; k < n && flat; k++) {
            const ct_tensor *t = ops[k];
            flat = t->numel == numel && ct__is_contiguous(t);
            st[k] = (int64_t)ct_dtype_size(t->dtype);
            ptr[k] = (char *)t->storage->data + t->offset * st[k];
        }
        if (flat) {
            fn(ptr, st, numel, (void *)params);
            return 0;
        }
    }
    ct_iter it;
    if (ct__iter_build_any_order(&it, n, a->n_out, ops)) return ct_last_status();
    ct__iter_run(&it, fn, (void *)params, 0);
    return 0;
}
