/* Runs a per-dtype elementwise loop over a kernel call's operands. */
#include "cpu/loops.h"

int ct__cpu_run_loop(const ct_kernel_args *a, ct_loop_fn const *loops, const double *params) {
    const ct_tensor *ops[CT_ITER_MAX_OPS];
    int n = 0;
    for (int i = 0; i < a->n_out; i++) ops[n++] = a->out[i];
    for (int i = 0; i < a->n_in; i++) ops[n++] = a->in[i];
    ct_dtype dt = a->n_in ? a->in[0]->dtype : a->out[0]->dtype;
    ct_loop_fn fn = loops[dt];
    if (!fn) return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(dt));
    if (a->out[0]->numel == 0) return 0;
    ct_iter it;
    if (ct__iter_build(&it, n, a->n_out, ops)) return ct_last_status();
    ct__iter_run(&it, fn, (void *)params, 0);
    return 0;
}
