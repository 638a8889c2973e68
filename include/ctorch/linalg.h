/* ctorch/linalg.h — matrix products (BLAS underneath for float32/float64/complex).
 * Results are new references; NULL and an error naming the shapes on mismatch, as
 * PyTorch words it, e.g. "mm: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)".
 * Operands must share one dtype (no promotion, like PyTorch): "expected m1 and m2 to
 * have the same dtype, but got: float != double". bool is not supported; integer and
 * float16/bfloat16 products use a C loop (accumulating in int64 / float).
 * Summation order: a float32 product's last bits depend on its shape and layout (the
 * library and its blocks are chosen by shape) and, where the BLAS library threads a
 * product itself, may depend on the thread count, as in PyTorch; and in grad
 * mode a product x @ W whose W is a leaf that requires grad (a weight being trained)
 * may sum its K halves on separate threads, so it can differ in the last bits from the
 * same product under no_grad. */
#ifndef CTORCH_LINALG_H
#define CTORCH_LINALG_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* torch.matmul: 1-D x 1-D dot, 2-D x 2-D mm, 1-D/2-D with batches broadcast (all cases). */
CT_API ct_tensor *ct_matmul(const ct_tensor *a, const ct_tensor *b);
CT_API int ct_matmul_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b);
CT_API ct_tensor *ct_mm(const ct_tensor *a, const ct_tensor *b);   /* [n,k] x [k,m] */
CT_API ct_tensor *ct_bmm(const ct_tensor *a, const ct_tensor *b);  /* [b,n,k] x [b,k,m] */
CT_API ct_tensor *ct_mv(const ct_tensor *a, const ct_tensor *v);   /* [n,k] x [k] */
CT_API ct_tensor *ct_dot(const ct_tensor *a, const ct_tensor *b);  /* 1-D, same dtype */
CT_API ct_tensor *ct_vdot(const ct_tensor *a, const ct_tensor *b); /* conj(a) . b */
CT_API ct_tensor *ct_outer(const ct_tensor *a, const ct_tensor *b);
/* beta * input + alpha * (m1 @ m2); input broadcasts to the product's shape. */
CT_API ct_tensor *ct_addmm(const ct_tensor *input, const ct_tensor *m1, const ct_tensor *m2, double beta, double alpha);
CT_API ct_tensor *ct_baddbmm(const ct_tensor *input, const ct_tensor *b1, const ct_tensor *b2, double beta,
                             double alpha);
CT_API ct_tensor *ct_addmv(const ct_tensor *input, const ct_tensor *m, const ct_tensor *v, double beta, double alpha);
/* torch.einsum(equation, operands...), e.g. "bij,bjk->bik"; "..." broadcasting supported. */
CT_API ct_tensor *ct_einsum(const char *equation, int n, const ct_tensor *const *operands);

/* out= forms: the result is written into `out` (resized if its shape differs); 0 or a
 * negative status, also when an input requires grad. As in PyTorch, outer, cat and stack
 * accept an out whose dtype the result can be cast to; the others need out of exactly
 * the result's dtype. */
CT_API int ct_mm_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b);
CT_API int ct_bmm_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b);
CT_API int ct_mv_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *v);
CT_API int ct_dot_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b);
CT_API int ct_outer_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b);
CT_API int ct_addmm_out(ct_tensor *out, const ct_tensor *input, const ct_tensor *m1, const ct_tensor *m2, double beta,
                        double alpha);
CT_API int ct_addmv_out(ct_tensor *out, const ct_tensor *input, const ct_tensor *m, const ct_tensor *v, double beta,
                        double alpha);
CT_API int ct_baddbmm_out(ct_tensor *out, const ct_tensor *input, const ct_tensor *b1, const ct_tensor *b2, double beta,
                          double alpha);

#ifdef __cplusplus
}
#endif
#endif
