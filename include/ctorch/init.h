/* ctorch/init.h — parameter initialisation (torch.nn.init).
 *
 * Every function fills t IN PLACE without recording autograd history (torch's
 * no_grad), so it works on module parameters (leaves that require grad). gen NULL means
 * the default generator. The draws are torch's, in torch's order and with torch's
 * formulas: after ct_manual_seed(s), ct_nn_init_<name>_(t, ...) gives the values
 * torch.manual_seed(s); nn.init.<name>_(t, ...) gives (orthogonal_ to float tolerance:
 * its QR is a double-precision Householder QR, torch's is LAPACK's in t's dtype).
 * Returns 0 or a negative status with a message naming the function (fewer dims than
 * the function supports, a bad mode or nonlinearity, ...). t must be floating point.
 */
#ifndef CTORCH_INIT_H
#define CTORCH_INIT_H

#include "ctorch/core.h"
#include "ctorch/random.h"

#ifdef __cplusplus
extern "C" {
#endif

/* nn.init.calculate_gain(nonlinearity, param): "linear", "conv1d/2d/3d",
 * "conv_transpose1d/2d/3d", "sigmoid" -> 1; "tanh" -> 5/3; "relu" -> sqrt(2);
 * "leaky_relu" -> sqrt(2 / (1 + param^2)) with param NAN meaning None (slope 0.01);
 * "selu" -> 3/4. Unknown names: NAN with CT_ERR_ARG ("Unsupported nonlinearity ..."). */
CT_API double ct_nn_init_calculate_gain(const char *nonlinearity, double param);

/* uniform_(t, a, b): U(a, b) (torch defaults 0, 1). */
CT_API int ct_nn_init_uniform_(ct_tensor *t, double a, double b, ct_generator *gen);
/* normal_(t, mean, std) (torch defaults 0, 1). */
CT_API int ct_nn_init_normal_(ct_tensor *t, double mean, double std, ct_generator *gen);
/* trunc_normal_(t, mean, std, a, b) (torch defaults 0, 1, -2, 2): N(mean, std^2)
 * restricted to [a, b], with torch 2.x's sampler: when the mass inside [a, b] exceeds
 * 0.3, normal draws with the out-of-range ones redrawn (whole-tensor rounds); otherwise
 * rejection sampling from U(a, b) against the normal density. */
CT_API int ct_nn_init_trunc_normal_(ct_tensor *t, double mean, double std, double a, double b, ct_generator *gen);
/* constant_(t, val), ones_(t), zeros_(t). */
CT_API int ct_nn_init_constant_(ct_tensor *t, double val);
CT_API int ct_nn_init_ones_(ct_tensor *t);
CT_API int ct_nn_init_zeros_(ct_tensor *t);
/* eye_(t): 2-D only; the identity (ones on the main diagonal). */
CT_API int ct_nn_init_eye_(ct_tensor *t);
/* dirac_(t, groups): 3-, 4- or 5-D convolution weights; size 0 divisible by groups. */
CT_API int ct_nn_init_dirac_(ct_tensor *t, int64_t groups);
/* xavier_uniform_ / xavier_normal_(t, gain) (gain 1): std = gain * sqrt(2 / (fan_in +
 * fan_out)) with torch's fans (t has >= 2 dims; dims 2.. are the receptive field). */
CT_API int ct_nn_init_xavier_uniform_(ct_tensor *t, double gain, ct_generator *gen);
CT_API int ct_nn_init_xavier_normal_(ct_tensor *t, double gain, ct_generator *gen);
/* kaiming_uniform_ / kaiming_normal_(t, a, mode, nonlinearity) (torch defaults 0,
 * "fan_in", "leaky_relu"; NULL strings take the defaults): std = gain(nonlinearity, a) /
 * sqrt(fan). A tensor with a zero-size dim is left as is (torch warns and returns). */
CT_API int ct_nn_init_kaiming_uniform_(ct_tensor *t, double a, const char *mode, const char *nonlinearity,
                                       ct_generator *gen);
CT_API int ct_nn_init_kaiming_normal_(ct_tensor *t, double a, const char *mode, const char *nonlinearity,
                                      ct_generator *gen);
/* orthogonal_(t, gain) (gain 1): t (>= 2 dims) viewed as [rows, numel / rows] becomes a
 * (semi-)orthogonal matrix times gain: the Q of a QR of a standard normal matrix (drawn
 * as [rows, cols], transposed when rows < cols) with its columns' signs fixed by diag(R).
 * float32 / float64 (torch's linalg.qr dtypes); an empty t is left as is. */
CT_API int ct_nn_init_orthogonal_(ct_tensor *t, double gain, ct_generator *gen);
/* sparse_(t, sparsity, std) (std 0.01): 2-D t; N(0, std^2) drawn from gen, then in each
 * column ceil(sparsity * rows) rows set to 0, chosen by a randperm from the DEFAULT
 * generator (as torch does, whatever gen is). */
CT_API int ct_nn_init_sparse_(ct_tensor *t, double sparsity, double std, ct_generator *gen);

#ifdef __cplusplus
}
#endif
#endif
