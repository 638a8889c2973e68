/* Helpers shared by the convolution, pooling and vision front ends (src/ops/conv.c,
 * pool.c, vision.c). Internal. */
#ifndef CT_OPS_NN_COMMON_H
#define CT_OPS_NN_COMMON_H

#include "core/internal.h"
#include "ctorch/nn.h"

/* An option of 0 means PyTorch's default of 1 (stride, dilation, groups). */
static inline int64_t ct__or1(int64_t v) { return v ? v : 1; }

/* These ops' kernels compute in float32 or float64; float16 and bfloat16 inputs are
 * taken through float32 (CT_VIA_F32), as PyTorch's CPU kernels accumulate them in
 * float32. Integer and bool inputs are refused, as PyTorch does. 0 or status. */
static inline int ct__check_float(const char *op, const ct_tensor *x) {
    if (x->dtype != CT_FLOAT32 && x->dtype != CT_FLOAT64 && !ct__is_half(x->dtype))
        return ct__errs(CT_ERR_DTYPE, "%s: \"%s\" not implemented for '%s' (floating types only)", op, op,
                        ct__scalar_type_name(x->dtype));
    return 0;
}

/* A float16 / bfloat16 input x through float32: CALL (an expression of the same op on
 * `xf`, x widened by the differentiable cast) rounded back to x's dtype once, so the
 * value and the gradient are the float32 op's on the widened tensor, rounded. KEEP runs
 * after success inside the scope (to keep an extra result, such as indices). Gives a
 * new reference, or NULL with the inner op's error. */
#define CT_VIA_F32(x, xf, CALL, KEEP)                                \
    ({                                                              \
        ct_tensor *r_ = NULL;                                       \
        if (ct_scope_begin() == 0) {                                \
            ct_tensor *xf = ct_to_dtype((x), CT_FLOAT32);           \
            r_ = xf ? ct_to_dtype((CALL), (x)->dtype) : NULL;       \
            if (r_) {                                               \
                r_ = ct_keep(r_);                                   \
                KEEP;                                               \
            }                                                       \
            ct_scope_end();                                         \
        }                                                           \
        r_;                                                         \
    })

/* max_pool2d's geometry for the 4-D input x, in CT_OP_MAX_POOL2D's kernel order (kh kw
 * dh dw ph pw sh sw Ho Wo); opts NULL: the defaults. 0, or a status with max_pool2d's
 * message (src/ops/pool.c). */
int ct__max_pool2d_geometry(const ct_tensor *x, const int64_t k[2], const ct_pool_opts *opts, int64_t kv[10]);

#endif
