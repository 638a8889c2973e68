/* Helpers shared by the convolution, pooling and vision front ends (src/ops/conv.c,
 * pool.c, vision.c). Internal. */
#ifndef CT_OPS_NN_COMMON_H
#define CT_OPS_NN_COMMON_H

#include "core/internal.h"
#include "ctorch/nn.h"

/* An option of 0 means PyTorch's default of 1 (stride, dilation, groups). */
static inline int64_t ct__or1(int64_t v) { return v ? v : 1; }

/* These ops compute in float32 or float64 only, as PyTorch's CPU kernels. 0 or status. */
static inline int ct__check_float(const char *op, const ct_tensor *x) {
    if (x->dtype != CT_FLOAT32 && x->dtype != CT_FLOAT64)
        return ct__errs(CT_ERR_DTYPE, "%s: \"%s\" not implemented for '%s' (float32 and float64 only)", op, op,
                        ct__scalar_type_name(x->dtype));
    return 0;
}

/* max_pool2d's geometry for the 4-D input x, in CT_OP_MAX_POOL2D's kernel order (kh kw
 * dh dw ph pw sh sw Ho Wo); opts NULL: the defaults. 0, or a status with max_pool2d's
 * message (src/ops/pool.c). */
int ct__max_pool2d_geometry(const ct_tensor *x, const int64_t k[2], const ct_pool_opts *opts, int64_t kv[10]);

#endif
