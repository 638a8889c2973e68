/* ctorch/activation.h — activation functions (torch.nn.functional), all
 * differentiable, with PyTorch's defaults noted. Results are new references; NULL
 * and an error message on bad input. In-place forms return 0 or a status. */
#ifndef CTORCH_ACTIVATION_H
#define CTORCH_ACTIVATION_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ct_generator;

CT_API ct_tensor *ct_relu(const ct_tensor *x);
CT_API int ct_relu_(ct_tensor *self);
CT_API ct_tensor *ct_relu6(const ct_tensor *x);
/* F.threshold: x <= threshold ? value : x (threshold and value taken in x's dtype). */
CT_API ct_tensor *ct_threshold(const ct_tensor *x, double threshold, double value);
CT_API int ct_threshold_(ct_tensor *self, double threshold, double value);
/* aten::threshold_backward: self <= threshold ? 0 : grad_output (broadcasting), relu's
 * and threshold's backward; differentiable in grad_output. */
CT_API ct_tensor *ct_threshold_backward(const ct_tensor *grad_output, const ct_tensor *self, double threshold);
CT_API ct_tensor *ct_leaky_relu(const ct_tensor *x, double negative_slope); /* default 0.01 */
CT_API ct_tensor *ct_elu(const ct_tensor *x, double alpha);                 /* default 1.0 */
CT_API ct_tensor *ct_selu(const ct_tensor *x);
CT_API ct_tensor *ct_celu(const ct_tensor *x, double alpha);                /* default 1.0 */
/* approximate_tanh false: exact erf form (approximate='none'); true: 'tanh'. */
CT_API ct_tensor *ct_gelu(const ct_tensor *x, bool approximate_tanh);
CT_API ct_tensor *ct_silu(const ct_tensor *x);
CT_API ct_tensor *ct_mish(const ct_tensor *x);
CT_API ct_tensor *ct_softplus(const ct_tensor *x, double beta, double threshold); /* defaults 1, 20 */
CT_API ct_tensor *ct_softsign(const ct_tensor *x);
CT_API ct_tensor *ct_hardtanh(const ct_tensor *x, double min_val, double max_val); /* defaults -1, 1 */
CT_API ct_tensor *ct_hardsigmoid(const ct_tensor *x);
CT_API ct_tensor *ct_hardswish(const ct_tensor *x);
CT_API ct_tensor *ct_logsigmoid(const ct_tensor *x);
/* softmax / log_softmax over dim; dtype CT_NUM_DTYPES keeps x's dtype (else casts first). */
CT_API ct_tensor *ct_softmax(const ct_tensor *x, int dim, ct_dtype dtype);
CT_API ct_tensor *ct_log_softmax(const ct_tensor *x, int dim, ct_dtype dtype);
/* GLU: first half * sigmoid(second half) along dim (default -1). */
CT_API ct_tensor *ct_glu(const ct_tensor *x, int dim);
/* Dropout: in training, zeroes elements with probability p and scales the rest by
 * 1/(1-p), drawing from gen (NULL: the default generator); identity if !training. */
CT_API ct_tensor *ct_dropout(const ct_tensor *x, double p, bool training, struct ct_generator *gen);

#ifdef __cplusplus
}
#endif
#endif
