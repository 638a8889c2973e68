/* Recurrent layers from C: an LSTM and a GRU checked against a plain-C reference of the
 * recurrences, module forwards with and without initial states, shapes (batch_first,
 * bidirectional, proj_size, unbatched), gradients, no-grad runs that keep no graph,
 * a GRU trained to remember the first element of a sequence, gradcheck of the cells,
 * errors (NULL results, no crash, no leak). Leak-free: ct_live_tensors() is checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctorch.h>

#define CHECK_NEAR_TOL 1e-9
#include "check.h"

static double sigm(double v) { return 1.0 / (1.0 + exp(-v)); }

/* y[r] = sum_c W[r, c] x[c] for a row-major [rows, cols] W */
static void matvec(const double *W, int rows, int cols, const double *x, double *y) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += W[r * cols + c] * x[c];
        y[r] = s;
    }
}

static ct_tensor *rand64(int nd, const int64_t *sizes) {
    ct_tensor *t = ct_empty(nd, sizes, CT_FLOAT64);
    ct_uniform_(t, -0.8, 0.8, NULL);
    return t;
}

static const double *data64(const ct_tensor *t) { return (const double *)ct_data_ptr(t); }

/* One LSTM layer (T steps, batch 1) in plain C against ct_nn_lstm. */
static void test_lstm_reference(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    enum { T = 4, I = 3, H = 2 };
    ct_tensor *x = rand64(3, (int64_t[]){T, 1, I});
    ct_tensor *w_ih = rand64(2, (int64_t[]){4 * H, I}), *w_hh = rand64(2, (int64_t[]){4 * H, H});
    ct_tensor *b_ih = rand64(1, (int64_t[]){4 * H}), *b_hh = rand64(1, (int64_t[]){4 * H});
    ct_tensor *h0 = rand64(3, (int64_t[]){1, 1, H}), *c0 = rand64(3, (int64_t[]){1, 1, H});
    ct_tensor *hn = NULL, *cn = NULL;
    ct_tensor *out = ct_nn_lstm(x, h0, c0, 4, (const ct_tensor *[]){w_ih, w_hh, b_ih, b_hh}, NULL, &hn, &cn);
    CHECK(out && hn && cn);
    if (out && hn && cn) {
        CHECK(ct_ndim(out) == 3 && ct_size(out, 0) == T && ct_size(out, 1) == 1 && ct_size(out, 2) == H);
        out = ct_contiguous(out);
        double h[H], c[H], gi[4 * H], gh[4 * H];
        memcpy(h, data64(h0), sizeof h);
        memcpy(c, data64(c0), sizeof c);
        for (int t = 0; t < T; t++) {
            matvec(data64(w_ih), 4 * H, I, data64(x) + t * I, gi);
            matvec(data64(w_hh), 4 * H, H, h, gh);
            for (int k = 0; k < H; k++) {
                double a[4];
                for (int q = 0; q < 4; q++)
                    a[q] = gi[q * H + k] + gh[q * H + k] + data64(b_ih)[q * H + k] + data64(b_hh)[q * H + k];
                c[k] = sigm(a[1]) * c[k] + sigm(a[0]) * tanh(a[2]); /* gates i, f, g, o */
                h[k] = sigm(a[3]) * tanh(c[k]);
            }
            for (int k = 0; k < H; k++) CHECK(NEAR(data64(out)[t * H + k], h[k]));
        }
        for (int k = 0; k < H; k++) CHECK(NEAR(data64(hn)[k], h[k]) && NEAR(data64(cn)[k], c[k]));
    }
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

/* One GRU step in plain C against ct_nn_gru_cell (unbatched, no bias). */
static void test_gru_cell_reference(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    enum { I = 3, H = 4 };
    ct_tensor *x = rand64(1, (int64_t[]){I}), *hx = rand64(1, (int64_t[]){H});
    ct_tensor *w_ih = rand64(2, (int64_t[]){3 * H, I}), *w_hh = rand64(2, (int64_t[]){3 * H, H});
    ct_tensor *h1 = ct_nn_gru_cell(x, hx, w_ih, w_hh, NULL, NULL);
    CHECK(h1 && ct_ndim(h1) == 1 && ct_size(h1, 0) == H);
    if (h1) {
        double gi[3 * H], gh[3 * H];
        matvec(data64(w_ih), 3 * H, I, data64(x), gi);
        matvec(data64(w_hh), 3 * H, H, data64(hx), gh);
        for (int k = 0; k < H; k++) {
            double r = sigm(gi[k] + gh[k]), z = sigm(gi[H + k] + gh[H + k]);
            double n = tanh(gi[2 * H + k] + r * gh[2 * H + k]);
            CHECK(NEAR(data64(h1)[k], (1 - z) * n + z * data64(hx)[k]));
        }
    }
    /* no hidden state: zeros */
    ct_tensor *a = ct_nn_gru_cell(x, NULL, w_ih, w_hh, NULL, NULL);
    ct_tensor *b = ct_nn_gru_cell(x, ct_zeros(CT_SHAPE(H), CT_FLOAT64), w_ih, w_hh, NULL, NULL);
    CHECK(a && b && ct_item(ct_max(ct_abs(ct_sub(a, b)))) == 0);
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

/* Module forwards: shapes of every output for the main configurations. */
static void test_module_shapes(void) {
    int64_t live0 = ct_live_tensors();
    struct {
        ct_module *m;
        int n_out;
        int64_t out_last, h_last, c_last;
    } cases[] = {
        {ct_nn_lstm_new(5, 6, 2, true, true, 0.0, true, 3), 3, 6, 3, 6},     /* batch_first, bi, proj */
        {ct_nn_gru_new(5, 6, 1, false, false, 0.0, false), 2, 6, 6, 0},
        {ct_nn_rnn_new(5, 6, 3, "relu", true, false, 0.5, true), 2, 12, 6, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        ct_module *m = cases[k].m;
        CHECK(m != NULL);
        if (!m) continue;
        ct_scope_begin();
        bool bf = k == 0;
        int64_t layers = k == 2 ? 3 : k == 0 ? 2 : 1, D = k == 1 ? 1 : 2;
        ct_tensor *x = ct_randn(3, bf ? (int64_t[]){2, 7, 5} : (int64_t[]){7, 2, 5}, CT_FLOAT32, NULL);
        ct_tensor *out[3] = {0};
        CHECK(ct_module_forward_n(m, 1, &x, 3, out) == cases[k].n_out);
        CHECK(out[0] && ct_size(out[0], bf ? 0 : 1) == 2 && ct_size(out[0], bf ? 1 : 0) == 7 &&
              ct_size(out[0], 2) == cases[k].out_last);
        CHECK(out[1] && ct_size(out[1], 0) == layers * D && ct_size(out[1], 1) == 2 && ct_size(out[1], 2) == cases[k].h_last);
        if (cases[k].c_last) CHECK(out[2] && ct_size(out[2], 2) == cases[k].c_last);
        else CHECK(out[2] == NULL);
        /* unbatched: [T, I] -> [T, D * Hr] */
        ct_tensor *xu = ct_randn(CT_SHAPE(7, 5), CT_FLOAT32, NULL);
        ct_tensor *y = ct_module_forward(m, xu);
        CHECK(y && ct_ndim(y) == 2 && ct_size(y, 0) == 7 && ct_size(y, 1) == cases[k].out_last);
        ct_scope_end(); /* frees x, the outputs and y (results inside a scope belong to it) */
        ct_module_free(m);
    }
    char *r = NULL;
    ct_module *m = ct_nn_lstm_new(10, 20, 2, true, true, 0.0, true, 0);
    CHECK(m && (r = ct_module_repr(m)) && strcmp(r, "LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True)") == 0);
    free(r);
    /* inside a Sequential (the one-tensor forward gives the output) and in a summary */
    ct_module *seq = ct_nn_sequential(CT_MODULES(ct_module_retain(m), ct_nn_linear_new(40, 3, true)));
    ct_scope_begin();
    ct_tensor *y = ct_module_forward(seq, ct_randn(CT_SHAPE(2, 5, 10), CT_FLOAT32, NULL));
    CHECK(y && ct_size(y, 0) == 2 && ct_size(y, 1) == 5 && ct_size(y, 2) == 3);
    ct_scope_end();
    CHECK((r = ct_module_summary(seq, 3, (int64_t[]){2, 5, 10}, CT_FLOAT32)) && strstr(r, "LSTM"));
    free(r);
    ct_module_free(seq);
    ct_module_free(m);
    m = ct_nn_rnn_cell_new(3, 4, false, "relu");
    CHECK(m && (r = ct_module_repr(m)) && strcmp(r, "RNNCell(3, 4, bias=False, nonlinearity=relu)") == 0);
    free(r);
    ct_module_free(m);
    CHECK(ct_live_tensors() == live0);
}

/* Gradients reach the input, the states and every parameter; no grad mode keeps no graph. */
static void test_gradients_and_no_grad(void) {
    int64_t live0 = ct_live_tensors();
    ct_module *m = ct_nn_lstm_new(3, 4, 2, true, false, 0.0, true, 0);
    ct_scope_begin();
    ct_tensor *x = ct_randn(CT_SHAPE(5, 2, 3), CT_FLOAT32, NULL);
    ct_tensor *h0 = ct_zeros(CT_SHAPE(4, 2, 4), CT_FLOAT32), *c0 = ct_zeros(CT_SHAPE(4, 2, 4), CT_FLOAT32);
    ct_set_requires_grad(x, true), ct_set_requires_grad(h0, true), ct_set_requires_grad(c0, true);
    ct_tensor *out[3];
    CHECK(ct_module_forward_n(m, 3, (ct_tensor *[]){x, h0, c0}, 3, out) == 3);
    ct_tensor *loss = ct_add(ct_sum(ct_mul(out[0], out[0])), ct_add(ct_sum(out[1]), ct_sum(out[2])));
    CHECK(ct_backward(loss, NULL, false, false) == 0);
    CHECK(ct_grad(x) && ct_grad(h0) && ct_grad(c0));
    ct_dict *p = ct_module_named_parameters(m);
    CHECK(ct_dict_size(p) == 16);
    for (int64_t i = 0; i < ct_dict_size(p); i++) {
        ct_tensor *g = ct_grad(ct_dict_value(p, i));
        CHECK(g && ct_numel(g) == ct_numel(ct_dict_value(p, i)));
    }
    ct_dict_free(p);
    /* without grad: no history, and the steps' temporaries are gone at once */
    bool prev = ct_set_grad_enabled(false);
    ct_tensor *y = ct_module_forward(m, x);
    CHECK(y && ct_grad_fn_name(y) == NULL && !ct_requires_grad(y));
    ct_set_grad_enabled(prev);
    ct_scope_end();
    ct_module_zero_grad(m, true);
    ct_module_free(m);
    CHECK(ct_live_tensors() == live0);
}

/* A GRU learns to output the first element of a random sequence (memory over 6 steps). */
static ct_tensor *first_elem_forward(ct_module *self, ct_tensor *x) {
    ct_tensor *outs[2];
    if (ct_module_forward_n(ct_module_child(self, "rnn"), 1, &x, 2, outs) < 0) return NULL;
    return ct_module_forward(ct_module_child(self, "fc"), ct_select(outs[1], 0, 0));
}
static const ct_module_type FIRST = {.name = "First", .forward = first_elem_forward};

static void test_training_remembers(void) {
    int64_t live0 = ct_live_tensors();
    ct_manual_seed(3);
    ct_module *m = ct_module_new(&FIRST, NULL);
    CHECK(ct_module_add_module(m, "rnn", ct_nn_gru_new(1, 16, 1, true, true, 0.0, false)) == 0);
    CHECK(ct_module_add_module(m, "fc", ct_nn_linear_new(16, 1, true)) == 0);
    ct_dict *p = ct_module_named_parameters(m);
    ct_optimizer *opt = ct_optim_adam_new(p, 0.02, 0.9, 0.999, 1e-8, 0.0, false, false);
    double first = 0, last = 0;
    for (int it = 0; it < 150; it++) {
        ct_scope_begin();
        ct_tensor *x = ct_randn(CT_SHAPE(32, 6, 1), CT_FLOAT32, NULL);
        ct_tensor *target = ct_select(x, 1, 0);
        ct_tensor *loss = ct_nn_mse_loss(ct_module_forward(m, x), target, CT_REDUCTION_MEAN);
        CHECK(loss && ct_optim_zero_grad(opt, true) == 0 && ct_backward(loss, NULL, false, false) == 0 &&
              ct_optim_step(opt) == 0);
        double l = loss ? ct_item(loss) : NAN;
        if (it == 0) first = l;
        last = it == 0 ? l : 0.9 * last + 0.1 * l;
        ct_scope_end();
    }
    printf("test_rnn: GRU memory task: loss %.4f -> %.4f\n", first, last);
    CHECK(last < 0.1 * first);
    ct_optim_free(opt);
    ct_dict_free(p);
    ct_module_free(m);
    CHECK(ct_live_tensors() == live0);
}

/* gradcheck / gradgradcheck of the LSTM cell (input, states and weights). */
static ct_tensor *lstm_cell_fn(int n, ct_tensor *const *in, void *user) {
    (void)n, (void)user;
    ct_tensor *cy = NULL;
    ct_tensor *hy = ct_nn_lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5], in[6], &cy);
    return ct_add(hy, ct_mul_scalar(cy, 0.3));
}

static void test_gradcheck(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    ct_tensor *in[7] = {rand64(2, (int64_t[]){2, 3}), rand64(2, (int64_t[]){2, 2}), rand64(2, (int64_t[]){2, 2}),
                        rand64(2, (int64_t[]){8, 3}), rand64(2, (int64_t[]){8, 2}), rand64(1, (int64_t[]){8}),
                        rand64(1, (int64_t[]){8})};
    for (int i = 0; i < 7; i++) ct_set_requires_grad(in[i], true);
    CHECK(ct_gradcheck(lstm_cell_fn, 7, in, NULL, 0, -1, -1) == 1);
    CHECK(ct_gradgradcheck(lstm_cell_fn, 7, in, NULL, 0, -1, -1) == 1);
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

/* Bad arguments: NULL (or a negative status) with a message; nothing leaks. */
static void test_errors(void) {
    int64_t live0 = ct_live_tensors();
    CHECK(ct_nn_lstm_new(3, 4, 1, true, false, 1.5, false, 0) == NULL && strstr(ct_last_error(), "dropout"));
    CHECK(ct_nn_gru_new(3, 0, 1, true, false, 0.0, false) == NULL && strstr(ct_last_error(), "hidden_size"));
    CHECK(ct_nn_rnn_new(3, 4, 0, NULL, true, false, 0.0, false) == NULL && strstr(ct_last_error(), "num_layers"));
    CHECK(ct_nn_rnn_new(3, 4, 1, "gelu", true, false, 0.0, false) == NULL && strstr(ct_last_error(), "nonlinearity"));
    CHECK(ct_nn_lstm_new(3, 4, 1, true, false, 0.0, false, 4) == NULL && strstr(ct_last_error(), "proj_size"));
    CHECK(ct_nn_lstm_cell_new(-1, 4, true) == NULL);
    ct_clear_error();
    ct_module *m = ct_nn_lstm_new(3, 4, 2, true, false, 0.0, false, 0);
    ct_scope_begin();
    ct_tensor *out[3];
    ct_tensor *bad_x = ct_randn(CT_SHAPE(5, 2, 2), CT_FLOAT32, NULL);
    CHECK(ct_module_forward_n(m, 1, &bad_x, 3, out) < 0 && out[0] == NULL && strstr(ct_last_error(), "input_size"));
    ct_tensor *x = ct_randn(CT_SHAPE(5, 2, 3), CT_FLOAT32, NULL), *h0 = ct_zeros(CT_SHAPE(2, 3, 4), CT_FLOAT32);
    CHECK(ct_module_forward_n(m, 2, (ct_tensor *[]){x, h0}, 3, out) < 0 && strstr(ct_last_error(), "hidden[0] size"));
    CHECK(ct_module_forward_n(m, 4, (ct_tensor *[]){x, NULL, NULL, x}, 3, out) < 0);
    CHECK(ct_module_forward(m, NULL) == NULL);
    ct_tensor *e = ct_randn(CT_SHAPE(0, 2, 3), CT_FLOAT32, NULL);
    CHECK(ct_module_forward(m, e) == NULL && strstr(ct_last_error(), "sequence length"));
    CHECK(ct_nn_gru(x, NULL, 3, (const ct_tensor *[]){x, x, x}, NULL, NULL) == NULL);
    CHECK(ct_nn_gru(x, NULL, 2, (const ct_tensor *[]){NULL, NULL}, NULL, NULL) == NULL);
    CHECK(ct_nn_lstm_cell(x, NULL, NULL, h0, h0, NULL, NULL, NULL) == NULL);
    ct_clear_error();
    ct_scope_end();
    ct_module_free(m);
    CHECK(ct_live_tensors() == live0);
}

/* An LSTM's W_hh gradient comes from one collector node fed by every step's backward:
 * under create_graph the gradient has history and a second backward goes through it;
 * graphs and deposits are all gone afterwards (no reference cycle left behind). */
static void test_recurrent_weight_graphs(void) {
    int64_t live0 = ct_live_tensors();
    ct_module *m = ct_nn_lstm_new(3, 4, 1, true, false, 0.0, false, 0);
    CHECK(m && ct_module_to_dtype(m, CT_FLOAT64) == 0);
    ct_dict *p = ct_module_named_parameters(m);
    ct_tensor *whh = p ? ct_dict_get(p, "weight_hh_l0") : NULL; /* a new reference */
    CHECK(whh != NULL);
    ct_scope_begin();
    ct_tensor *x = ct_randn(CT_SHAPE(5, 2, 3), CT_FLOAT64, NULL);
    ct_set_requires_grad(x, true);
    ct_tensor *out = ct_module_forward(m, x);
    ct_tensor *loss = ct_sum(ct_mul(out, out));
    CHECK(ct_backward(loss, NULL, true, true) == 0);
    ct_tensor *g = ct_grad(whh);
    CHECK(g && ct_grad_fn_name(g) != NULL);
    ct_tensor *l2 = ct_sum(ct_mul(g, g));
    CHECK(l2 && ct_module_zero_grad(m, true) == 0 && ct_set_grad(x, NULL) == 0);
    CHECK(ct_backward(l2, NULL, true, false) == 0); /* through the forward graph too: kept */
    CHECK(ct_grad(x) && ct_grad(whh));
    CHECK(ct_backward(loss, NULL, false, false) == 0); /* the first graph, kept, once more */
    CHECK(ct_module_zero_grad(m, true) == 0 && ct_set_grad(x, NULL) == 0);
    /* a graph whose last backward was create_graph: the deposits it handed the collector
     * carry history back to the collector; holding them would be a cycle */
    out = ct_module_forward(m, x);
    CHECK(ct_backward(ct_sum(ct_mul(out, out)), NULL, false, true) == 0);
    CHECK(ct_module_zero_grad(m, true) == 0 && ct_set_grad(x, NULL) == 0);
    ct_scope_end();
    ct_release(whh);
    ct_dict_free(p);
    ct_module_free(m);
    CHECK(ct_live_tensors() == live0);
}

int main(void) {
    int64_t live0 = ct_live_tensors();
    ct_manual_seed(0);
    test_lstm_reference();
    test_gru_cell_reference();
    test_module_shapes();
    test_gradients_and_no_grad();
    test_training_remembers();
    test_gradcheck();
    test_recurrent_weight_graphs();
    test_errors();
    CHECK(ct_live_tensors() == live0);
    printf("test_rnn: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
