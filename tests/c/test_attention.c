/* Attention and Transformers from C: scaled_dot_product_attention on inputs with known
 * answers, masks and errors; MultiheadAttention through ct_module_forward_n; encoder
 * clones; a Transformer forward/backward; ownership (no leaks, also on failures). The
 * numerics against PyTorch are in tests/conformance/test_attention.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static ct_tensor *randn(int nd, const int64_t *s) { return ct_randn(nd, s, CT_FLOAT64, NULL); }

/* q = 0: every key gets the same weight, so the output rows are means of value rows. */
static void test_sdpa_known_values(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    ct_tensor *q = ct_zeros(3, (int64_t[]){2, 3, 4}, CT_FLOAT64);
    ct_tensor *k = randn(3, (int64_t[]){2, 3, 4});
    ct_tensor *v = ct_reshape(ct_arange(0, 18, 1, CT_FLOAT64), 3, (int64_t[]){2, 3, 3});
    ct_tensor *o = ct_nn_scaled_dot_product_attention(q, k, v, NULL, 0, false, 0, false);
    CHECK(o && ct_size(o, 0) == 2 && ct_size(o, 1) == 3 && ct_size(o, 2) == 3);
    /* batch 0: value rows (0,1,2), (3,4,5), (6,7,8): mean (3, 4, 5) */
    CHECK(NEAR(ct_get(o, (int64_t[]){0, 1, 0}), 3) && NEAR(ct_get(o, (int64_t[]){1, 2, 2}), 14));
    /* causal: row i averages value rows 0..i */
    o = ct_nn_scaled_dot_product_attention(q, k, v, NULL, 0, true, 0, false);
    CHECK(o && NEAR(ct_get(o, (int64_t[]){0, 0, 0}), 0) && NEAR(ct_get(o, (int64_t[]){0, 1, 0}), 1.5) &&
          NEAR(ct_get(o, (int64_t[]){0, 2, 1}), 4));
    /* a bool mask (True = attend) equal to the causal one gives the same */
    ct_tensor *tri = ct_tril(ct_ones(2, (int64_t[]){3, 3}, CT_BOOL), 0);
    ct_tensor *o2 = ct_nn_scaled_dot_product_attention(q, k, v, tri, 0, false, 0, false);
    CHECK(o2 && ct_item(ct_amax(ct_abs(ct_sub(o, o2)), 0, NULL, false)) < 1e-12);
    /* a row with nothing to attend to gives zeros, not NaN, and so do its gradients */
    bool none[9] = {1, 1, 1, 0, 0, 0, 1, 0, 1};
    ct_tensor *m = ct_from_data(none, 2, (int64_t[]){3, 3}, CT_BOOL);
    ct_tensor *qg = randn(3, (int64_t[]){2, 3, 4});
    ct_set_requires_grad(qg, true);
    o = ct_nn_scaled_dot_product_attention(qg, k, v, m, 0, false, 0, false);
    CHECK(o && ct_get(o, (int64_t[]){1, 1, 2}) == 0 && !isnan(ct_item(ct_sum(o))));
    CHECK(ct_backward(ct_sum(o), NULL, false, false) == 0);
    ct_tensor *g = ct_grad(qg);
    CHECK(g && ct_get(g, (int64_t[]){0, 1, 3}) == 0 && !isnan(ct_item(ct_sum(g))));
    /* generate_square_subsequent_mask */
    ct_tensor *sm = ct_nn_generate_square_subsequent_mask(3, CT_FLOAT32);
    CHECK(sm && ct_get(sm, (int64_t[]){0, 1}) == -INFINITY && ct_get(sm, (int64_t[]){1, 1}) == 0 &&
          ct_get(sm, (int64_t[]){2, 0}) == 0);
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

/* Causal attention from 128 x 128 query-key pairs on runs the fused kernel: q = 0 gives
 * known means (row i averages value rows 0..i; without the mask, the batched passes: the
 * mean of all) over several key blocks; forward, backward, a graph kept for
 * create_graph, everything released (ASan's leak check). */
static void test_sdpa_fused(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    const int64_t L = 130, S = 600;
    ct_tensor *q = ct_zeros(3, (int64_t[]){2, L, 8}, CT_FLOAT32), *k = ct_randn(3, (int64_t[]){2, S, 8}, CT_FLOAT32, NULL);
    ct_tensor *v = ct_reshape(ct_arange(0, 2 * S, 1, CT_FLOAT32), 3, (int64_t[]){2, S, 1});
    ct_set_requires_grad(q, true);
    ct_set_requires_grad(k, true);
    ct_tensor *o = ct_nn_scaled_dot_product_attention(q, k, v, NULL, 0, false, 0, false);
    CHECK(o && fabs(ct_get(o, (int64_t[]){0, 5, 0}) - (S - 1) / 2.0) < 1e-3 &&
          fabs(ct_get(o, (int64_t[]){1, 129, 0}) - (S + (S - 1) / 2.0)) < 1e-3);
    ct_tensor *oc = ct_nn_scaled_dot_product_attention(q, k, v, NULL, 0, true, 0, false);
    CHECK(oc && ct_get(oc, (int64_t[]){0, 0, 0}) == 0 && fabs(ct_get(oc, (int64_t[]){0, 129, 0}) - 64.5) < 1e-4 &&
          fabs(ct_get(oc, (int64_t[]){1, 100, 0}) - (S + 50)) < 1e-3);
    CHECK(ct_backward(ct_sum(ct_add(o, oc)), NULL, false, false) == 0);
    CHECK(ct_grad(q) && ct_grad(k) && !isnan(ct_item(ct_sum(ct_grad(q)))));
    /* create_graph: the gradients' own graph (the differentiable formulas), then freed */
    oc = ct_nn_scaled_dot_product_attention(q, k, v, NULL, 0, true, 0, false);
    ct_tensor *gq = NULL;
    CHECK(ct_autograd_grad(1, (ct_tensor *[]){ct_sum(ct_mul(oc, oc))}, NULL, 1, (ct_tensor *[]){k}, &gq, false, true,
                           false) == 0);
    CHECK(gq && ct_requires_grad(gq) && ct_backward(ct_sum(gq), NULL, false, false) == 0);
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

static void test_sdpa_errors(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    ct_tensor *q = randn(4, (int64_t[]){1, 4, 3, 8}), *k = randn(4, (int64_t[]){1, 2, 5, 8});
    ct_tensor *mask = ct_ones(2, (int64_t[]){3, 5}, CT_BOOL);
    CHECK(!ct_nn_scaled_dot_product_attention(q, k, k, mask, 0, true, 0, false));
    CHECK(strstr(ct_last_error(), "is_causal"));
    CHECK(!ct_nn_scaled_dot_product_attention(randn(4, (int64_t[]){1, 3, 3, 8}), k, k, NULL, 0, false, 0, true));
    CHECK(strstr(ct_last_error(), "must divide"));
    CHECK(!ct_nn_scaled_dot_product_attention(q, ct_to_dtype(k, CT_FLOAT32), k, NULL, 0, false, 0, false));
    CHECK(strstr(ct_last_error(), "same dtype"));
    CHECK(!ct_nn_scaled_dot_product_attention(q, k, k, ct_ones(2, (int64_t[]){3, 5}, CT_INT64), 0, false, 0, false));
    CHECK(!ct_nn_scaled_dot_product_attention(q, k, k, NULL, 1.5, false, 0, false));
    CHECK(!ct_nn_scaled_dot_product_attention(NULL, k, k, NULL, 0, false, 0, false));
    /* GQA works: 4 query heads over 2 key/value heads */
    ct_tensor *o = ct_nn_scaled_dot_product_attention(q, k, k, mask, 0, false, 0.5, true);
    CHECK(o && ct_size(o, 1) == 4 && ct_size(o, 2) == 3 && ct_size(o, 3) == 8);
    CHECK(!ct_nn_generate_square_subsequent_mask(-1, CT_FLOAT32));
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

static void test_mha(void) {
    int64_t live0 = ct_live_tensors();
    ct_manual_seed(0);
    ct_mha_opts o = ct_mha_default_opts();
    o.batch_first = true;
    o.add_bias_kv = true;
    ct_module *mha = ct_nn_multihead_attention_new(8, 2, &o);
    CHECK(mha != NULL);
    ct_dict *sd = ct_module_state_dict(mha);
    CHECK(sd && ct_dict_size(sd) == 6 && !strcmp(ct_dict_key(sd, 0), "in_proj_weight") &&
          !strcmp(ct_dict_key(sd, 2), "bias_k") && !strcmp(ct_dict_key(sd, 5), "out_proj.bias"));
    ct_dict_free(sd);
    char *r = ct_module_repr(mha);
    CHECK(r && strstr(r, "(out_proj): NonDynamicallyQuantizableLinear(in_features=8, out_features=8, bias=True)"));
    free(r);
    /* forward_n without a scope: outputs are the caller's references */
    ct_tensor *x = ct_randn(3, (int64_t[]){2, 5, 8}, CT_FLOAT32, NULL);
    ct_tensor *out[2];
    CHECK(ct_module_forward_n(mha, 3, (ct_tensor *[]){x, x, x}, 2, out) == 2);
    CHECK(out[0] && ct_size(out[0], 0) == 2 && ct_size(out[0], 1) == 5 && ct_size(out[0], 2) == 8);
    /* averaged weights [N, L, S+1] (bias_k adds a key); rows sum to 1 */
    CHECK(out[1] && ct_size(out[1], 2) == 6);
    ct_scope_begin();
    ct_tensor *rows = ct_sum_dim(out[1], 1, (int64_t[]){-1}, false, CT_NUM_DTYPES);
    CHECK(rows && fabs(ct_item(ct_amax(rows, 0, NULL, false)) - 1) < 1e-5 && fabs(ct_item(ct_amin(rows, 0, NULL, false)) - 1) < 1e-5);
    ct_scope_end();
    /* backward reaches the parameters */
    ct_scope_begin();
    CHECK(ct_backward(ct_sum(out[0]), NULL, false, false) == 0);
    ct_tensor *w = ct_module_parameter(mha, "in_proj_weight");
    CHECK(w && ct_grad(w) != NULL);
    ct_scope_end();
    ct_release(out[0]), ct_release(out[1]);
    /* masks: key padding (bool) through forward_n; errors leave no outputs */
    bool pad[10] = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
    ct_tensor *kpm = ct_from_data(pad, 2, (int64_t[]){2, 5}, CT_BOOL);
    CHECK(ct_module_forward_n(mha, 4, (ct_tensor *[]){x, x, x, kpm}, 2, out) == 2);
    CHECK(out[1] && ct_get(out[1], (int64_t[]){0, 0, 3}) == 0);
    ct_release(out[0]), ct_release(out[1]);
    ct_tensor *bad = ct_zeros(2, (int64_t[]){4, 4}, CT_FLOAT32);
    CHECK(ct_module_forward_n(mha, 5, (ct_tensor *[]){x, x, x, NULL, bad}, 2, out) < 0 && !out[0] && !out[1]);
    CHECK(strstr(ct_last_error(), "attn_mask"));
    ct_release(bad), ct_release(kpm), ct_release(x);
    ct_module_free(mha);
    CHECK(!ct_nn_multihead_attention_new(8, 3, NULL) && strstr(ct_last_error(), "divisible"));
    CHECK(ct_live_tensors() == live0);
}

static void test_encoder_and_transformer(void) {
    int64_t live0 = ct_live_tensors();
    ct_manual_seed(1);
    ct_transformer_opts o = ct_transformer_default_opts();
    o.dim_feedforward = 16;
    o.batch_first = true;
    o.norm_first = true;
    ct_module *layer = ct_nn_transformer_encoder_layer_new(8, 2, &o);
    /* cloning draws no random numbers */
    uint8_t before[CT_GENERATOR_STATE_SIZE], after[CT_GENERATOR_STATE_SIZE];
    int64_t ns = ct_generator_get_state(NULL, before, sizeof before);
    ct_module *enc = ct_nn_transformer_encoder_new(layer, 3, ct_nn_layer_norm_new(1, (int64_t[]){8}, 1e-5, true));
    CHECK(enc != NULL);
    CHECK(ct_generator_get_state(NULL, after, sizeof after) == ns && !memcmp(before, after, (size_t)ns));
    ct_scope_begin();
    ct_tensor *w0 = ct_module_parameter(enc, "layers.0.linear1.weight");
    ct_tensor *w2 = ct_module_parameter(enc, "layers.2.linear1.weight");
    CHECK(w0 && w2 && w0 != w2 && ct_item(ct_amax(ct_abs(ct_sub(w0, w2)), 0, NULL, false)) == 0);
    CHECK(ct_module_parameter(enc, "norm.weight") != NULL);
    /* causal forward + backward (eval: no dropout) */
    ct_module_eval(enc);
    ct_tensor *x = ct_randn(3, (int64_t[]){2, 6, 8}, CT_FLOAT32, NULL);
    ct_tensor *mask = ct_nn_generate_square_subsequent_mask(6, CT_FLOAT32);
    ct_tensor *y = ct_nn_transformer_encoder_forward(enc, x, mask, NULL, 1);
    ct_tensor *y2 = ct_nn_transformer_encoder_forward(enc, x, mask, NULL, -1);
    CHECK(y && y2 && ct_item(ct_amax(ct_abs(ct_sub(y, y2)), 0, NULL, false)) < 1e-5);
    CHECK(ct_backward(ct_sum(ct_square(y)), NULL, false, false) == 0);
    CHECK(ct_grad(w2) != NULL && ct_grad(w0) != NULL);
    ct_scope_end();
    char *r = ct_module_repr(enc);
    CHECK(r && strstr(r, "(0-2): 3 x TransformerEncoderLayer("));
    free(r);
    ct_module_free(enc);

    /* Transformer: forward_n (src, tgt) */
    o = ct_transformer_default_opts();
    o.dim_feedforward = 16, o.num_encoder_layers = 1, o.num_decoder_layers = 2;
    ct_module *t = ct_nn_transformer_new(8, 2, &o);
    CHECK(t != NULL);
    ct_tensor *src = ct_randn(3, (int64_t[]){5, 2, 8}, CT_FLOAT32, NULL), *tgt = ct_randn(3, (int64_t[]){4, 2, 8}, CT_FLOAT32, NULL);
    ct_tensor *out[1];
    CHECK(ct_module_forward_n(t, 2, (ct_tensor *[]){src, tgt}, 1, out) == 1);
    CHECK(out[0] && ct_size(out[0], 0) == 4 && ct_size(out[0], 1) == 2 && ct_size(out[0], 2) == 8);
    ct_release(out[0]);
    ct_tensor *bad = ct_randn(3, (int64_t[]){4, 3, 8}, CT_FLOAT32, NULL);
    CHECK(ct_module_forward_n(t, 2, (ct_tensor *[]){src, bad}, 1, out) < 0 && strstr(ct_last_error(), "batch number"));
    ct_release(bad), ct_release(src), ct_release(tgt);
    ct_module_free(t);

    /* failures free what they were given */
    CHECK(!ct_nn_transformer_encoder_new(ct_nn_transformer_decoder_layer_new(8, 2, NULL), 2, ct_nn_identity_new()));
    CHECK(strstr(ct_last_error(), "TransformerEncoderLayer"));
    CHECK(!ct_nn_transformer_encoder_new(NULL, 2, ct_nn_identity_new()));
    CHECK(!ct_nn_transformer_decoder_new(ct_nn_transformer_decoder_layer_new(8, 2, NULL), 0, NULL));
    o.activation = "tanh";
    CHECK(!ct_nn_transformer_encoder_layer_new(8, 2, &o) && strstr(ct_last_error(), "relu/gelu"));
    CHECK(ct_live_tensors() == live0);
}

int main(void) {
    int64_t live0 = ct_live_tensors();
    test_sdpa_known_values();
    test_sdpa_fused();
    test_sdpa_errors();
    test_mha();
    test_encoder_and_transformer();
    CHECK(ct_live_tensors() == live0);
    printf("test_attention: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
