/* Recurrent modules: RNNCell, LSTMCell, GRUCell, RNN, LSTM, GRU. PyTorch's parameter
 * names, registration order, initialisation (every parameter U(-1/sqrt(hidden),
 * 1/sqrt(hidden)) in registration order) and reprs. Forwards take and return several
 * tensors (ct_module_type.forward_n) and call the functions of src/ops/rnn.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/rnn.h"
#include "nn/module_internal.h"

typedef enum { K_TANH, K_RELU, K_LSTM, K_GRU } rnn_kind;

typedef struct {
    rnn_kind kind;
    int64_t input_size, hidden_size, num_layers, proj_size;
    bool bias, batch_first, bidirectional;
    double dropout;
} rnn_ctx;

static int64_t gates(rnn_kind k) { return k == K_LSTM ? 4 : k == K_GRU ? 3 : 1; }

/* ---- cells ---- */
static int cell_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    const rnn_ctx *c = ct_module_ctx(self);
    const char *name = ct_module_type_name(self);
    int max_in = c->kind == K_LSTM ? 3 : 2;
    if (n_in < 1 || n_in > max_in)
        return ct__errs(CT_ERR_ARG, "%s.forward takes 1 to %d inputs (input, hx%s), got %d", name, max_in,
                        c->kind == K_LSTM ? ", cx" : "", n_in);
    CT_CHECK_ARG_S(name, in[0]);
    ct_tensor *hx = n_in > 1 ? in[1] : NULL, *cx = n_in > 2 ? in[2] : NULL;
    ct_tensor *w_ih = ct__mod_param(self, 0), *w_hh = ct__mod_param(self, 1);
    ct_tensor *b_ih = ct__mod_param(self, 2), *b_hh = ct__mod_param(self, 3);
    ct_tensor *h = NULL, *cy = NULL;
    switch (c->kind) {
    case K_TANH: h = ct_nn_rnn_tanh_cell(in[0], hx, w_ih, w_hh, b_ih, b_hh); break;
    case K_RELU: h = ct_nn_rnn_relu_cell(in[0], hx, w_ih, w_hh, b_ih, b_hh); break;
    case K_LSTM: h = ct_nn_lstm_cell(in[0], hx, cx, w_ih, w_hh, b_ih, b_hh, n_out > 1 ? &cy : NULL); break;
    case K_GRU: h = ct_nn_gru_cell(in[0], hx, w_ih, w_hh, b_ih, b_hh); break;
    }
    if (!h) return ct_last_status();
    int n = 0;
    if (n_out > 0) out[n++] = h;
    if (n_out > 1 && c->kind == K_LSTM) out[n++] = cy;
    return n;
}

static void cell_repr(const ct_module *self, char *buf, size_t n) {
    const rnn_ctx *c = ct_module_ctx(self);
    snprintf(buf, n, "%lld, %lld%s%s", (long long)c->input_size, (long long)c->hidden_size, c->bias ? "" : ", bias=False",
             c->kind == K_RELU ? ", nonlinearity=relu" : "");
}

static const ct_module_type RNN_CELL = {.name = "RNNCell", .forward_n = cell_forward_n, .extra_repr = cell_repr, .free_ctx = free};
static const ct_module_type LSTM_CELL = {.name = "LSTMCell", .forward_n = cell_forward_n, .extra_repr = cell_repr, .free_ctx = free};
static const ct_module_type GRU_CELL = {.name = "GRUCell", .forward_n = cell_forward_n, .extra_repr = cell_repr, .free_ctx = free};

static ct_module *module_with(const ct_module_type *type, rnn_ctx v) {
    rnn_ctx *c = malloc(sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "%s: out of memory", type->name);
    *c = v;
    ct_module *m = ct_module_new(type, c);
    if (!m) free(c);
    return m;
}

/* torch's RNNCellBase: weight_ih [G*H, I], weight_hh [G*H, H], bias_ih, bias_hh [G*H]
 * (registered as absent without bias), then reset_parameters draws each present one. */
static ct_module *cell_new(const ct_module_type *type, rnn_kind kind, int64_t input_size, int64_t hidden_size,
                           bool bias) {
    if (input_size < 0 || hidden_size < 0)
        return ct__err(CT_ERR_ARG, "%s: input_size and hidden_size must be non-negative, got %lld and %lld", type->name,
                       (long long)input_size, (long long)hidden_size);
    ct_module *m = module_with(type, (rnn_ctx){.kind = kind, .input_size = input_size, .hidden_size = hidden_size,
                                               .num_layers = 1, .bias = bias});
    if (!m) return NULL;
    int64_t G = gates(kind), H = hidden_size;
    double bound = H > 0 ? 1.0 / sqrt((double)H) : 0.0;
    int st = ct__mod_uniform_param(m, "weight_ih", 2, (int64_t[]){G * H, input_size}, bound);
    if (!st) st = ct__mod_uniform_param(m, "weight_hh", 2, (int64_t[]){G * H, H}, bound);
    if (!st && bias) st = ct__mod_uniform_param(m, "bias_ih", 1, (int64_t[]){G * H}, bound);
    if (!st && bias) st = ct__mod_uniform_param(m, "bias_hh", 1, (int64_t[]){G * H}, bound);
    if (!st && !bias) st = ct_module_register_parameter(m, "bias_ih", NULL);
    if (!st && !bias) st = ct_module_register_parameter(m, "bias_hh", NULL);
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

CT_API ct_module *ct_nn_rnn_cell_new(int64_t input_size, int64_t hidden_size, bool bias, const char *nonlinearity) {
    rnn_kind k = K_TANH;
    if (nonlinearity && strcmp(nonlinearity, "relu") == 0) k = K_RELU;
    else if (nonlinearity && strcmp(nonlinearity, "tanh") != 0)
        return ct__err(CT_ERR_ARG, "RNNCell: Unknown nonlinearity: %s", nonlinearity);
    return cell_new(&RNN_CELL, k, input_size, hidden_size, bias);
}
CT_API ct_module *ct_nn_lstm_cell_new(int64_t input_size, int64_t hidden_size, bool bias) {
    return cell_new(&LSTM_CELL, K_LSTM, input_size, hidden_size, bias);
}
CT_API ct_module *ct_nn_gru_cell_new(int64_t input_size, int64_t hidden_size, bool bias) {
    return cell_new(&GRU_CELL, K_GRU, input_size, hidden_size, bias);
}

/* ---- full layers ---- */
static int layer_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    const rnn_ctx *c = ct_module_ctx(self);
    const char *name = ct_module_type_name(self);
    int max_in = c->kind == K_LSTM ? 3 : 2;
    if (n_in < 1 || n_in > max_in)
        return ct__errs(CT_ERR_ARG, "%s.forward takes 1 to %d inputs (input, h0%s), got %d", name, max_in,
                        c->kind == K_LSTM ? ", c0" : "", n_in);
    CT_CHECK_ARG_S(name, in[0]);
    ct_tensor *h0 = n_in > 1 ? in[1] : NULL, *c0 = n_in > 2 ? in[2] : NULL;
    /* every registered parameter, in _flat_weights order (none is absent) */
    int np = (int)ct_module_num_own_parameters(self);
    const ct_tensor **params = malloc((size_t)(np > 0 ? np : 1) * sizeof *params);
    if (!params) return ct__errs(CT_ERR_OOM, "%s: out of memory", name);
    for (int i = 0; i < np; i++) params[i] = ct__mod_param(self, i);
    ct_rnn_opts o = {.num_layers = c->num_layers, .bidirectional = c->bidirectional, .batch_first = c->batch_first,
                     .train = ct_module_is_training(self), .dropout = c->dropout};
    ct_tensor *hn = NULL, *cn = NULL, **want_h = n_out > 1 ? &hn : NULL, *y = NULL;
    switch (c->kind) {
    case K_TANH: y = ct_nn_rnn_tanh(in[0], h0, np, params, &o, want_h); break;
    case K_RELU: y = ct_nn_rnn_relu(in[0], h0, np, params, &o, want_h); break;
    case K_LSTM: y = ct_nn_lstm(in[0], h0, c0, np, params, &o, want_h, n_out > 2 ? &cn : NULL); break;
    case K_GRU: y = ct_nn_gru(in[0], h0, np, params, &o, want_h); break;
    }
    free(params);
    if (!y) return ct_last_status();
    int n = 0;
    if (n_out > 0) out[n++] = y;
    if (n_out > 1) out[n++] = hn;
    if (n_out > 2 && c->kind == K_LSTM) out[n++] = cn;
    return n;
}

static void layer_repr(const ct_module *self, char *buf, size_t n) {
    const rnn_ctx *c = ct_module_ctx(self);
    char d[64];
    int k = snprintf(buf, n, "%lld, %lld", (long long)c->input_size, (long long)c->hidden_size);
#define ADD(...) k += snprintf(buf + k, (size_t)k < n ? n - (size_t)k : 0, __VA_ARGS__)
    if (c->proj_size) ADD(", proj_size=%lld", (long long)c->proj_size);
    if (c->num_layers != 1) ADD(", num_layers=%lld", (long long)c->num_layers);
    if (!c->bias) ADD(", bias=False");
    if (c->batch_first) ADD(", batch_first=True");
    if (c->dropout != 0) ADD(", dropout=%s", ct__pyfloat(c->dropout, d, sizeof d));
    if (c->bidirectional) ADD(", bidirectional=True");
#undef ADD
}

static const ct_module_type RNN = {.name = "RNN", .forward_n = layer_forward_n, .extra_repr = layer_repr, .free_ctx = free};
static const ct_module_type LSTM = {.name = "LSTM", .forward_n = layer_forward_n, .extra_repr = layer_repr, .free_ctx = free};
static const ct_module_type GRU = {.name = "GRU", .forward_n = layer_forward_n, .extra_repr = layer_repr, .free_ctx = free};

/* torch's RNNBase.__init__: checks, then for each layer and direction weight_ih,
 * weight_hh, [bias_ih, bias_hh], [weight_hr], then reset_parameters. */
static ct_module *layer_new(const ct_module_type *type, rnn_kind kind, int64_t input_size, int64_t hidden_size,
                            int64_t num_layers, bool bias, bool batch_first, double dropout, bool bidirectional,
                            int64_t proj_size) {
    const char *tn = type->name;
    if (!(dropout >= 0 && dropout <= 1))
        return ct__err(CT_ERR_ARG, "%s: dropout should be a number in range [0, 1] representing the probability of an "
                                   "element being zeroed", tn);
    if (input_size <= 0) return ct__err(CT_ERR_ARG, "%s: input_size must be greater than zero", tn);
    if (hidden_size <= 0) return ct__err(CT_ERR_ARG, "%s: hidden_size must be greater than zero", tn);
    if (num_layers <= 0) return ct__err(CT_ERR_ARG, "%s: num_layers must be greater than zero", tn);
    if (num_layers > (1 << 16)) return ct__err(CT_ERR_ARG, "%s: num_layers %lld is too large", tn, (long long)num_layers);
    if (proj_size < 0)
        return ct__err(CT_ERR_ARG, "%s: proj_size should be a positive integer or zero to disable projections", tn);
    if (proj_size >= hidden_size) return ct__err(CT_ERR_ARG, "%s: proj_size has to be smaller than hidden_size", tn);
    ct_module *m = module_with(type, (rnn_ctx){.kind = kind, .input_size = input_size, .hidden_size = hidden_size,
                                               .num_layers = num_layers, .proj_size = proj_size, .bias = bias,
                                               .batch_first = batch_first, .bidirectional = bidirectional,
                                               .dropout = dropout});
    if (!m) return NULL;
    int D = bidirectional ? 2 : 1;
    int64_t G = gates(kind) * hidden_size, Hr = proj_size > 0 ? proj_size : hidden_size;
    double bound = 1.0 / sqrt((double)hidden_size);
    int st = 0;
    char nm[64];
    for (int64_t l = 0; l < num_layers && !st; l++)
        for (int d = 0; d < D && !st; d++) {
            const char *sfx = d ? "_reverse" : "";
            int64_t in = l == 0 ? input_size : Hr * D;
            snprintf(nm, sizeof nm, "weight_ih_l%lld%s", (long long)l, sfx);
            st = ct__mod_uniform_param(m, nm, 2, (int64_t[]){G, in}, bound);
            snprintf(nm, sizeof nm, "weight_hh_l%lld%s", (long long)l, sfx);
            if (!st) st = ct__mod_uniform_param(m, nm, 2, (int64_t[]){G, Hr}, bound);
            if (bias) {
                snprintf(nm, sizeof nm, "bias_ih_l%lld%s", (long long)l, sfx);
                if (!st) st = ct__mod_uniform_param(m, nm, 1, (int64_t[]){G}, bound);
                snprintf(nm, sizeof nm, "bias_hh_l%lld%s", (long long)l, sfx);
                if (!st) st = ct__mod_uniform_param(m, nm, 1, (int64_t[]){G}, bound);
            }
            if (proj_size > 0) {
                snprintf(nm, sizeof nm, "weight_hr_l%lld%s", (long long)l, sfx);
                if (!st) st = ct__mod_uniform_param(m, nm, 2, (int64_t[]){proj_size, hidden_size}, bound);
            }
        }
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

CT_API ct_module *ct_nn_rnn_new(int64_t input_size, int64_t hidden_size, int64_t num_layers,
                                const char *nonlinearity, bool bias, bool batch_first, double dropout,
                                bool bidirectional) {
    rnn_kind k = K_TANH;
    if (nonlinearity && strcmp(nonlinearity, "relu") == 0) k = K_RELU;
    else if (nonlinearity && strcmp(nonlinearity, "tanh") != 0)
        return ct__err(CT_ERR_ARG, "RNN: Unknown nonlinearity '%s'. Select from 'tanh' or 'relu'.", nonlinearity);
    return layer_new(&RNN, k, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0);
}
CT_API ct_module *ct_nn_lstm_new(int64_t input_size, int64_t hidden_size, int64_t num_layers, bool bias,
                                 bool batch_first, double dropout, bool bidirectional, int64_t proj_size) {
    return layer_new(&LSTM, K_LSTM, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                     proj_size);
}
CT_API ct_module *ct_nn_gru_new(int64_t input_size, int64_t hidden_size, int64_t num_layers, bool bias,
                                bool batch_first, double dropout, bool bidirectional) {
    return layer_new(&GRU, K_GRU, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0);
}
