/* Modules: ownership, names, state dicts, loading errors, modes, dtype conversion,
 * printing, containers and a small model trained to fit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"

typedef struct {
    int calls;
} net_ctx;

static ct_tensor *net_forward(ct_module *self, ct_tensor *x) {
    ((net_ctx *)ct_module_ctx(self))->calls++;
    ct_tensor *h = ct_module_forward(ct_module_child(self, "features"), x);
    return ct_module_forward(ct_module_child(self, "head"), h);
}
static const ct_module_type NET = {.name = "Net", .forward = net_forward, .free_ctx = free};

static ct_module *net_new(void) {
    net_ctx *c = calloc(1, sizeof *c);
    ct_module *m = ct_module_new(&NET, c);
    if (ct_module_add_module(m, "features", ct_nn_sequential(CT_MODULES(ct_nn_linear_new(4, 8, true), ct_nn_tanh_new()))) ||
        ct_module_add_module(m, "head", ct_nn_linear_new(8, 3, false))) {
        ct_module_free(m);
        return NULL;
    }
    ct_scope_begin(); /* the module keeps its own references to the buffers */
    ct_module_register_buffer(m, "steps", ct_zeros(0, NULL, CT_INT64), true);
    ct_module_register_buffer(m, "scratch", ct_zeros(CT_SHAPE(2), CT_FLOAT32), false);
    ct_scope_end();
    return m;
}

static void test_names_and_state_dict(void) {
    ct_scope_begin();
    ct_module *net = net_new();
    CHECK(net != NULL);
    ct_dict *p = ct_module_named_parameters(net);
    CHECK(ct_dict_size(p) == 3);
    CHECK(strcmp(ct_dict_key(p, 0), "features.0.weight") == 0);
    CHECK(strcmp(ct_dict_key(p, 1), "features.0.bias") == 0);
    CHECK(strcmp(ct_dict_key(p, 2), "head.weight") == 0);
    CHECK(ct_requires_grad(ct_dict_value(p, 0)));
    ct_dict_free(p);
    ct_dict *sd = ct_module_state_dict(net);
    CHECK(ct_dict_size(sd) == 4); /* + persistent buffer "steps", not "scratch" */
    CHECK(strcmp(ct_dict_key(sd, 0), "steps") == 0); /* own entries first, like torch */
    CHECK(!ct_requires_grad(ct_dict_get(sd, "head.weight")));
    CHECK(ct_module_num_parameters(net, false) == 4 * 8 + 8 + 8 * 3);
    CHECK(ct_module_child(net, "features.1") != NULL);
    CHECK(strcmp(ct_module_type_name(ct_module_child(net, "features.0")), "Linear") == 0);
    CHECK(ct_module_parameter(net, "features.0.bias") != NULL);
    ct_clear_error();
    CHECK(ct_module_parameter(net, "features.9.bias") == NULL && ct_last_status() == CT_ERR_KEY);
    ct_clear_error();

    /* load: round trip through a modified copy */
    ct_module *other = net_new();
    ct_dict *sd2 = ct_module_state_dict(other);
    CHECK(ct_module_load_state_dict(net, sd2, true, NULL) == 0);
    ct_tensor *x = ct_randn(CT_SHAPE(5, 4), CT_FLOAT32, NULL);
    CHECK(ct_item(ct_amax(ct_abs(ct_sub(ct_module_forward(net, x), ct_module_forward(other, x))), 0, NULL, false)) == 0);
    /* missing + unexpected + size mismatch, in PyTorch's message format; nothing changes */
    ct_dict *bad = ct_dict_copy(sd2);
    ct_dict_remove(bad, "head.weight");
    ct_dict_set(bad, "extra", ct_zeros(CT_SHAPE(1), CT_FLOAT32));
    ct_dict_set(bad, "features.0.bias", ct_zeros(CT_SHAPE(7), CT_FLOAT32));
    CHECK(ct_module_load_state_dict(net, bad, true, NULL) == CT_ERR_SHAPE);
    const char *msg = ct_last_error();
    CHECK(strstr(msg, "Error(s) in loading state_dict for Net:") != NULL);
    CHECK(strstr(msg, "Missing key(s) in state_dict: \"head.weight\".") != NULL);
    CHECK(strstr(msg, "Unexpected key(s) in state_dict: \"extra\".") != NULL);
    CHECK(strstr(msg, "size mismatch for features.0.bias: copying a param with shape torch.Size([7]) from "
                      "checkpoint, the shape in current model is torch.Size([8]).") != NULL);
    ct_clear_error();
    /* non-strict: reports keys, loads the rest (the size mismatch removed) */
    ct_dict_set(bad, "features.0.bias", ct_zeros(CT_SHAPE(8), CT_FLOAT32));
    ct_load_result r;
    CHECK(ct_module_load_state_dict(net, bad, false, &r) == 0);
    CHECK(r.n_missing == 1 && strcmp(r.missing_keys[0], "head.weight") == 0);
    CHECK(r.n_unexpected == 1 && strcmp(r.unexpected_keys[0], "extra") == 0);
    ct_load_result_free(&r);
    CHECK(ct_item(ct_sum(ct_module_parameter(net, "features.0.bias"))) == 0);
    ct_dict_free(bad);
    ct_dict_free(sd2);
    ct_dict_free(sd);
    ct_module_free(other);
    ct_module_free(net);
    ct_scope_end();
}

static void test_repr_and_summary(void) {
    ct_module *net = net_new();
    char *s = ct_module_repr(net);
    const char *want = "Net(\n"
                       "  (features): Sequential(\n"
                       "    (0): Linear(in_features=4, out_features=8, bias=True)\n"
                       "    (1): Tanh()\n"
                       "  )\n"
                       "  (head): Linear(in_features=8, out_features=3, bias=False)\n"
                       ")";
    CHECK(s && strcmp(s, want) == 0);
    if (s && strcmp(s, want)) fprintf(stderr, "got:\n%s\n", s);
    free(s);
    ct_module *l = ct_nn_module_list_new();
    for (int i = 0; i < 3; i++) ct_nn_module_list_append(l, ct_nn_relu_new());
    ct_nn_module_list_append(l, ct_nn_leaky_relu_new(0.2));
    s = ct_module_repr(l);
    CHECK(s && strcmp(s, "ModuleList(\n  (0-2): 3 x ReLU()\n  (3): LeakyReLU(negative_slope=0.2)\n)") == 0);
    free(s);
    ct_clear_error();
    ct_scope_begin();
    CHECK(ct_module_forward(l, ct_zeros(CT_SHAPE(1), CT_FLOAT32)) == NULL); /* ModuleList has no forward */
    ct_scope_end();
    ct_clear_error();
    ct_module_free(l);
    ct_module_train(net, true);
    s = ct_module_summary(net, 2, (const int64_t[]){2, 4}, CT_FLOAT32);
    CHECK(s && strstr(s, "Linear (features.0)") && strstr(s, "[2, 8]") && strstr(s, "[2, 3]"));
    CHECK(s && strstr(s, "Total params: 64"));
    free(s);
    CHECK(ct_module_is_training(ct_module_child(net, "head"))); /* mode restored */
    CHECK(((net_ctx *)ct_module_ctx(net))->calls == 1);
    ct_module_free(net);
}

static void test_ownership_and_errors(void) {
    int64_t live0 = ct_live_tensors();
    /* a failed constructor inside a container: the others are freed, the error kept */
    ct_clear_error();
    ct_module *seq = ct_nn_sequential(CT_MODULES(ct_nn_linear_new(2, 2, true), ct_nn_dropout_new(1.5)));
    CHECK(seq == NULL && strstr(ct_last_error(), "dropout probability"));
    ct_clear_error();
    ct_module *m = ct_nn_linear_new(3, 2, true);
    CHECK(ct_module_add_module(m, "a.b", ct_nn_relu_new()) == CT_ERR_ARG);
    CHECK(ct_module_register_parameter(m, "weight", NULL) == 0); /* absent now */
    CHECK(ct_module_num_parameters(m, false) == 2);
    ct_clear_error();
    CHECK(ct_module_add_module(m, "bias", ct_nn_relu_new()) == CT_ERR_ARG); /* name taken */
    ct_clear_error();
    CHECK(ct_module_to_dtype(m, CT_INT32) == CT_ERR_DTYPE);
    ct_clear_error();
    ct_module_free(m);
    /* shared submodule: parameters once */
    ct_module *shared = ct_nn_linear_new(2, 2, true);
    ct_module *seq2 = ct_nn_sequential(CT_MODULES(ct_module_retain(shared), ct_module_retain(shared)));
    ct_module_free(shared);
    ct_dict *p = ct_module_named_parameters(seq2);
    CHECK(ct_dict_size(p) == 2 && strcmp(ct_dict_key(p, 0), "0.weight") == 0);
    ct_dict_free(p);
    ct_module_free(seq2);
    CHECK(ct_live_tensors() == live0);
}

static void test_to_dtype_and_training(void) {
    int64_t live0 = ct_live_tensors();
    ct_manual_seed(0);
    ct_module *net = ct_nn_sequential(CT_MODULES(ct_nn_linear_new(2, 16, true), ct_nn_relu_new(), ct_nn_linear_new(16, 1, true)));
    ct_tensor *w = ct_module_parameter(net, "0.weight"); /* no scope: ours */
    CHECK(ct_module_to_dtype(net, CT_FLOAT64) == 0);
    CHECK(ct_get_dtype(w) == CT_FLOAT64); /* same object, new dtype */
    /* fit y = x0 * x1 on a grid with plain SGD */
    double xs[64 * 2], ys[64];
    for (int i = 0; i < 64; i++) {
        xs[2 * i] = (i % 8) / 4.0 - 1, xs[2 * i + 1] = (i / 8) / 4.0 - 1;
        ys[i] = xs[2 * i] * xs[2 * i + 1];
    }
    ct_tensor *x = ct_from_data(xs, CT_SHAPE(64, 2), CT_FLOAT64), *y = ct_from_data(ys, CT_SHAPE(64, 1), CT_FLOAT64);
    ct_dict *params = ct_module_named_parameters(net);
    double first = 0, last = 0;
    for (int step = 0; step < 500; step++) {
        ct_scope_begin();
        ct_tensor *d = ct_sub(ct_module_forward(net, x), y);
        ct_tensor *loss = ct_mean(ct_mul(d, d));
        if (step == 0) first = ct_item(loss);
        last = ct_item(loss);
        ct_module_zero_grad(net, true);
        ct_backward(loss, NULL, false, false);
        bool prev = ct_set_grad_enabled(false);
        for (int64_t i = 0; i < ct_dict_size(params); i++) {
            ct_tensor *t = ct_dict_value(params, i);
            ct_sub_(t, ct_mul_scalar(ct_grad(t), 0.2));
        }
        ct_set_grad_enabled(prev);
        ct_scope_end();
    }
    CHECK(last < first / 10);
    ct_dict_free(params);
    ct_release(x), ct_release(y), ct_release(w);
    ct_module_free(net);
    CHECK(ct_live_tensors() == live0);
}

static double at1(ct_tensor *t, int64_t i) {
    ct_scope_begin();
    double v = ct_item(ct_select(t, 0, i));
    ct_scope_end();
    return v;
}

/* A two-in, two-out module: (a, b) -> (a + b, a * b); b optional (defaults to a). */
static int pair_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    (void)self;
    if (n_in < 1 || !in[0]) {
        ct_set_error(CT_ERR_ARG, "Pair: needs an input");
        return CT_ERR_ARG;
    }
    ct_tensor *b = n_in > 1 && in[1] ? in[1] : in[0];
    if (n_out > 0) out[0] = ct_add(in[0], b);
    if (n_out > 1) out[1] = ct_mul(in[0], b);
    return n_out < 2 ? n_out : 2;
}
static const ct_module_type PAIR = {.name = "Pair", .forward_n = pair_forward_n};

static void test_forward_n(void) {
    int64_t live0 = ct_live_tensors();
    ct_module *m = ct_module_new(&PAIR, NULL);
    ct_tensor *a = f64(2, (double[]){1, 2}), *b = f64(2, (double[]){3, 5});
    ct_tensor *out[3];
    CHECK(ct_module_forward_n(m, 2, (ct_tensor *[]){a, b}, 3, out) == 2);
    CHECK(out[2] == NULL);
    CHECK(at1(out[0], 1) == 7 && at1(out[1], 1) == 10);
    ct_release(out[0]), ct_release(out[1]);
    /* one-tensor forward runs forward_n and returns the first output */
    ct_tensor *y = ct_module_forward(m, a);
    CHECK(y && at1(y, 0) == 2);
    ct_release(y);
    /* inside a Sequential */
    ct_module *seq = ct_nn_sequential(CT_MODULES(ct_module_retain(m), ct_nn_identity_new()));
    y = ct_module_forward(seq, b);
    CHECK(y && at1(y, 1) == 10);
    ct_release(y);
    char *sum = ct_module_summary(seq, 1, (int64_t[]){2}, CT_FLOAT32);
    CHECK(sum && strstr(sum, "Pair"));
    free(sum);
    ct_module_free(seq);
    /* errors: the module's own, a one-tensor module given two inputs, bad counts */
    CHECK(ct_module_forward_n(m, 1, (ct_tensor *[]){NULL}, 1, out) == CT_ERR_ARG && out[0] == NULL);
    ct_module *lin = ct_nn_identity_new();
    CHECK(ct_module_forward_n(lin, 2, (ct_tensor *[]){a, b}, 1, out) == CT_ERR_ARG);
    CHECK(strstr(ct_last_error(), "Identity.forward takes 1 input"));
    CHECK(ct_module_forward_n(lin, 1, (ct_tensor *[]){a}, 1, out) == 1 && out[0]);
    ct_release(out[0]);
    CHECK(ct_module_forward_n(NULL, 1, (ct_tensor *[]){a}, 1, out) < 0);
    CHECK(ct_module_forward_n(lin, -1, NULL, 1, out) == CT_ERR_ARG);
    ct_module_free(lin);
    ct_module_free(m);
    ct_release(a), ct_release(b);
    CHECK(ct_live_tensors() == live0);
}

/* the same bytes (contiguous tensors of the same shape and dtype; NaN compares by bits) */
static bool same_bits(const ct_tensor *a, const ct_tensor *b) {
    return a && b && ct_numel(a) == ct_numel(b) && ct_get_dtype(a) == ct_get_dtype(b) &&
           memcmp(ct_data_ptr(a), ct_data_ptr(b), (size_t)ct_numel(a) * ct_dtype_size(ct_get_dtype(a))) == 0;
}

/* Sequential runs BatchNorm2d -> ReLU (-> MaxPool2d) as one fused node: the output, the
 * running statistics and every gradient are the functional ops' bit for bit, over the
 * 2x2 fast path (full and short steps, odd sizes left over), the generic path
 * (overlapping windows) and no pooling; and after the fused run the module still works
 * in eval mode and frees everything (run under the sanitizers in CI). */
static void test_fused_bn_relu_pool(void) {
    static const int64_t shapes[][4] = {{3, 4, 28, 28}, {2, 3, 9, 11}, {2, 2, 14, 30}, {4, 2, 2, 2}};
    static const ct_pool_opts p3 = {.stride = {2, 2}, .padding = {1, 1}}, pceil = {.ceil_mode = true};
    for (int dt = 0; dt < 2; dt++)
        for (int pk = 0; pk < 4; pk++) /* 2x2, 3x3 stride 2 padded, no pooling, 2x2 ceil mode */
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
                ct_scope_begin();
                const int64_t *sh = shapes[si], C = sh[1];
                ct_dtype dtype = dt ? CT_FLOAT64 : CT_FLOAT32;
                int64_t k[2] = {pk == 1 ? 3 : 2, pk == 1 ? 3 : 2};
                const ct_pool_opts *po = pk == 1 ? &p3 : pk == 3 ? &pceil : NULL;
                ct_module *seq = pk != 2 ? ct_nn_sequential(CT_MODULES(ct_nn_batch_norm2d_new(C, 1e-5, 0.1, true, true),
                                                                      ct_nn_relu_new(), ct_nn_max_pool2d_new(k, po)))
                                        : ct_nn_sequential(CT_MODULES(ct_nn_batch_norm2d_new(C, 1e-5, 0.1, true, true),
                                                                      ct_nn_relu_new()));
                CHECK(seq && ct_module_to_dtype(seq, dtype) == 0);
                ct_tensor *w = ct_module_parameter(seq, "0.weight"), *b = ct_module_parameter(seq, "0.bias");
                ct_tensor *rm = ct_module_buffer(seq, "0.running_mean"), *rv = ct_module_buffer(seq, "0.running_var");
                bool prev = ct_set_grad_enabled(false);
                ct_copy_(w, ct_randn(1, &C, dtype, NULL));
                ct_copy_(b, ct_randn(1, &C, dtype, NULL));
                ct_set_grad_enabled(prev);
                ct_tensor *w2 = ct_detach(ct_clone(w)), *b2 = ct_detach(ct_clone(b));
                ct_tensor *rm2 = ct_clone(rm), *rv2 = ct_clone(rv);
                ct_set_requires_grad(w2, true);
                ct_set_requires_grad(b2, true);
                ct_tensor *x = ct_randn(4, sh, dtype, NULL), *x2 = ct_detach(ct_clone(x));
                ct_set_requires_grad(x, true);
                ct_set_requires_grad(x2, true);
                ct_tensor *y = ct_module_forward(seq, x);
                ct_tensor *y2 = ct_relu(ct_nn_batch_norm(x2, rm2, rv2, w2, b2, true, 0.1, 1e-5));
                if (pk != 2) y2 = ct_nn_max_pool2d(y2, k, po, NULL);
                CHECK(y && y2 &&
                      strcmp(ct_grad_fn_name(y), pk != 2 ? "BatchNormReluMaxPool2DBackward" : "BatchNormReluBackward") == 0);
                CHECK(same_bits(y, y2) && same_bits(rm, rm2) && same_bits(rv, rv2));
                ct_tensor *gy = y2 ? ct_randn(4, ct_sizes(y2), dtype, NULL) : NULL;
                CHECK(ct_backward(y, gy, false, false) == 0 && ct_backward(y2, gy, false, false) == 0);
                CHECK(same_bits(ct_grad(x), ct_grad(x2)));
                CHECK(same_bits(ct_grad(w), ct_grad(w2)) && same_bits(ct_grad(b), ct_grad(b2)));
                ct_module_eval(seq);
                ct_tensor *ye = ct_module_forward(seq, x);
                ct_tensor *ye2 = ct_relu(ct_nn_batch_norm(x2, rm2, rv2, w2, b2, false, 0.1, 1e-5));
                if (pk != 2) ye2 = ct_nn_max_pool2d(ye2, k, po, NULL);
                CHECK(same_bits(ye, ye2));
                ct_module_free(seq);
                ct_scope_end();
            }
}

int main(void) {
    int64_t live0 = ct_live_tensors();
    test_names_and_state_dict();
    test_repr_and_summary();
    test_ownership_and_errors();
    test_to_dtype_and_training();
    test_forward_n();
    test_fused_bn_relu_pool();
    CHECK(ct_live_tensors() == live0);
    printf("test_module: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
