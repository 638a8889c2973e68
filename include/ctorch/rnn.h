/* ctorch/rnn.h — recurrent layers: the cells RNNCell, LSTMCell, GRUCell and the full
 * layers RNN, LSTM (with projections), GRU, as functions and as modules.
 *
 * Semantics are PyTorch's:
 *   RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu
 *   LSTM  gates i, f, g, o (this order in the rows of W_ih / W_hh):
 *         i, f, o = sigmoid(...), g = tanh(...), c' = f * c + i * g, h' = o * tanh(c'),
 *         and with a projection h' = W_hr (o * tanh(c'))
 *   GRU   gates r, z, n: r, z = sigmoid(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z}),
 *         n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h
 * Shapes (L layers, D = 2 if bidirectional else 1, H hidden size, Hr = proj_size or H):
 *   input   [T, B, I] ([B, T, I] with batch_first), or unbatched [T, I]
 *   h0/h_n  [L * D, B, Hr]  (unbatched [L * D, Hr]); c0/c_n [L * D, B, H]
 *   output  [T, B, D * Hr]  ([B, T, D * Hr] with batch_first; unbatched [T, D * Hr]);
 *           for D = 2 the last dim is [forward, reverse]
 *   h_n / c_n rows go layer by layer, the forward direction before the reverse one.
 * Everything is built from differentiable ops (one input-projection matmul per layer
 * and direction for the whole sequence, then one hidden matmul per step), so gradients
 * with respect to the input, the initial states and every weight, and second
 * derivatives, come from autograd. float32 and float64 (all tensors of one dtype).
 *
 * Ownership: tensors are borrowed; results are new references (scope rules of
 * ctorch/core.h), also those written through out-pointers. On error NULL (or a negative
 * status) with a message naming the layer and the shapes.
 */
#ifndef CTORCH_RNN_H
#define CTORCH_RNN_H

#include "ctorch/core.h"
#include "ctorch/module.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cells (torch.rnn_tanh_cell, torch.lstm_cell, ...) ----
 * input [B, I] or unbatched [I]; hx (and cx) [B, H] or [H] (NULL: zeros); w_ih [G*H, I],
 * w_hh [G*H, H] (G = 1, 4, 3 for RNN, LSTM, GRU); b_ih, b_hh [G*H] or both NULL.
 * Return h' [B, H] (or [H]), a new reference; NULL on error. */
CT_API ct_tensor *ct_nn_rnn_tanh_cell(const ct_tensor *input, const ct_tensor *hx, const ct_tensor *w_ih,
                                      const ct_tensor *w_hh, const ct_tensor *b_ih, const ct_tensor *b_hh);
CT_API ct_tensor *ct_nn_rnn_relu_cell(const ct_tensor *input, const ct_tensor *hx, const ct_tensor *w_ih,
                                      const ct_tensor *w_hh, const ct_tensor *b_ih, const ct_tensor *b_hh);
/* LSTM cell: returns h'; *cy (if cy is not NULL) receives c' (a new reference, NULL on error). */
CT_API ct_tensor *ct_nn_lstm_cell(const ct_tensor *input, const ct_tensor *hx, const ct_tensor *cx,
                                  const ct_tensor *w_ih, const ct_tensor *w_hh, const ct_tensor *b_ih,
                                  const ct_tensor *b_hh, ct_tensor **cy);
CT_API ct_tensor *ct_nn_gru_cell(const ct_tensor *input, const ct_tensor *hx, const ct_tensor *w_ih,
                                 const ct_tensor *w_hh, const ct_tensor *b_ih, const ct_tensor *b_hh);

/* ---- full layers (torch.rnn_tanh, torch.lstm, torch.gru) ----
 * params: the weights in PyTorch's _flat_weights order: for each layer, for each
 * direction (forward, then reverse): w_ih, w_hh, then b_ih, b_hh if the layer has
 * biases, then w_hr [Hr, H] if it has a projection (LSTM only). The number of tensors per
 * layer and direction (2, 3, 4 or 5) tells which: n_params / (num_layers * D).
 * A zero-initialised ct_rnn_opts means: 1 layer, unidirectional, sequence first, no
 * dropout. dropout is applied to the outputs of every layer but the last when train is
 * set, drawing from the default generator (as torch's). */
typedef struct ct_rnn_opts {
    int64_t num_layers; /* 0 means 1 */
    bool bidirectional;
    bool batch_first;
    bool train;         /* dropout is active only when set */
    double dropout;     /* probability in [0, 1] */
} ct_rnn_opts;

/* Return the output, a new reference; *h_n (and *c_n) if not NULL receive the final
 * states (new references). h0 / c0 may be NULL (zeros). opts NULL: the defaults. */
CT_API ct_tensor *ct_nn_rnn_tanh(const ct_tensor *input, const ct_tensor *h0, int n_params,
                                 const ct_tensor *const *params, const ct_rnn_opts *opts, ct_tensor **h_n);
CT_API ct_tensor *ct_nn_rnn_relu(const ct_tensor *input, const ct_tensor *h0, int n_params,
                                 const ct_tensor *const *params, const ct_rnn_opts *opts, ct_tensor **h_n);
CT_API ct_tensor *ct_nn_lstm(const ct_tensor *input, const ct_tensor *h0, const ct_tensor *c0, int n_params,
                             const ct_tensor *const *params, const ct_rnn_opts *opts, ct_tensor **h_n,
                             ct_tensor **c_n);
CT_API ct_tensor *ct_nn_gru(const ct_tensor *input, const ct_tensor *h0, int n_params,
                            const ct_tensor *const *params, const ct_rnn_opts *opts, ct_tensor **h_n);

/* ---- modules (torch.nn.RNNCell, LSTMCell, GRUCell, RNN, LSTM, GRU) ----
 * Parameters have PyTorch's names and registration order (weight_ih, weight_hh,
 * bias_ih, bias_hh for cells; weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0,
 * weight_hr_l0, then the same with _reverse, then l1, ... for layers), and are all drawn
 * from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) in that order from the default
 * generator, so ct_manual_seed(s) followed by a constructor gives the weights of
 * torch.manual_seed(s) followed by the torch constructor. Reprs are PyTorch's.
 * Constructors return a module the caller owns (ct_module_free), NULL on bad arguments.
 *
 * Forward (ct_module_forward_n):
 *   cells:  inputs (x, hx) or for LSTMCell (x, hx, cx), states optional (NULL: zeros);
 *           outputs (h') or for LSTMCell (h', c').
 *   layers: inputs (x, h0) or for LSTM (x, h0, c0), states optional (NULL: zeros);
 *           outputs (output, h_n) or for LSTM (output, h_n, c_n).
 *   ct_module_forward(m, x) returns the first output (h' or output). */

/* RNNCell(input_size, hidden_size, bias, nonlinearity "tanh" (NULL) or "relu"). */
CT_API ct_module *ct_nn_rnn_cell_new(int64_t input_size, int64_t hidden_size, bool bias, const char *nonlinearity);
CT_API ct_module *ct_nn_lstm_cell_new(int64_t input_size, int64_t hidden_size, bool bias);
CT_API ct_module *ct_nn_gru_cell_new(int64_t input_size, int64_t hidden_size, bool bias);
/* torch's argument order and defaults: RNN(input_size, hidden_size, num_layers=1,
 * nonlinearity="tanh" (NULL), bias=true, batch_first=false, dropout=0, bidirectional=false). */
CT_API ct_module *ct_nn_rnn_new(int64_t input_size, int64_t hidden_size, int64_t num_layers,
                                const char *nonlinearity, bool bias, bool batch_first, double dropout,
                                bool bidirectional);
/* LSTM(input_size, hidden_size, num_layers=1, bias=true, batch_first=false, dropout=0,
 * bidirectional=false, proj_size=0). */
CT_API ct_module *ct_nn_lstm_new(int64_t input_size, int64_t hidden_size, int64_t num_layers, bool bias,
                                 bool batch_first, double dropout, bool bidirectional, int64_t proj_size);
/* GRU(input_size, hidden_size, num_layers=1, bias=true, batch_first=false, dropout=0,
 * bidirectional=false). */
CT_API ct_module *ct_nn_gru_new(int64_t input_size, int64_t hidden_size, int64_t num_layers, bool bias,
                                bool batch_first, double dropout, bool bidirectional);

#ifdef __cplusplus
}
#endif

#endif
